package org.diffusion4j.cuda;

import org.diffusion4j.nn.attention.AttentionDims;
import org.diffusion4j.nn.attention.AttentionMath;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.nn.attention.ComposedAttention;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * Fused scaled dot-product attention on CUDA ({@code native/src/attention_f32.cu}, {@code attention_bf16.cu}):
 * FlashAttention-2 (Dao 2023, Algorithm 1 forward, Algorithm 2 backward; Dao et al. 2022, FlashAttention) — tiles
 * of {@code Q}, {@code K}, {@code V} in shared memory, the online softmax of {@link AttentionMath}, never a
 * {@code Tq×Tk} matrix, the row log-sum-exp saved for the backward. Layouts, scale and the {@code lse} convention
 * are {@link AttentionOps}'s ({@code [B, H, T, Dh]} F32 tensors; {@code lse} natural log), so results compare
 * directly with {@link org.diffusion4j.cpu.CpuAttention}.
 *
 * <p><b>Precision.</b>
 * <ul>
 *   <li>{@link Precision#F32}: every product in float FMAs; the softmax arithmetic is bitwise the CPU's
 *       ({@code attention_math.cuh} = {@link AttentionMath}), the dot products are summed in another order than
 *       OpenBLAS, so results agree with {@link org.diffusion4j.cpu.CpuAttention} to float rounding (about
 *       {@code 1e-6} relative), not bitwise.</li>
 *   <li>{@link Precision#BF16}: every tile product on tensor cores ({@code mma.sync.aligned.m16n8k16} BF16 with F32
 *       accumulation; compute capability ≥ 8.0) — forward {@code Q·Kᵀ}, {@code P·V}; backward {@code Q·Kᵀ},
 *       {@code dO·Vᵀ}, {@code Pᵀ·dO}, {@code dSᵀ·Q}, {@code dS·K}. The operands ({@code q}, {@code k}, {@code v},
 *       {@code dOut}, and the recomputed {@code P}, {@code dS}) are rounded to BF16 in shared memory or registers;
 *       the softmax, {@code D = rowsum(dO∘O)}, the accumulators and all outputs stay F32. About three significant
 *       digits: relative error up to ~{@code 1e-2} ({@code dq}, {@code dk} a little more where {@code dP − D}
 *       cancels). The backward recomputes {@code P} from BF16-rounded {@code q}, {@code k} and the given
 *       log-sum-exp, so pair it with a BF16 forward: an F32 forward's log-sum-exp makes the rows of {@code P} sum to
 *       slightly more or less than 1 (gradients off by up to ~10 % at large logits, e.g. scale 2.5 with
 *       {@code Dh = 128}). When {@code Dh} is divisible by 4 and the views are aligned (16 bytes for {@code k},
 *       {@code v}; 8 for {@code q}, {@code out}), the forward runs a pipelined kernel ({@code cp.async} copies,
 *       {@code ldmatrix} fragments) whose per-score exponential is the hardware's {@code ex2.approx} (relative error
 *       ~{@code 2^-22}, far below the BF16 rounding) instead of {@link AttentionMath}'s polynomial; otherwise a
 *       staged kernel with {@link AttentionMath}'s softmax throughout.</li>
 * </ul>
 *
 * <p><b>Head dims.</b> {@code 1 ≤ Dh ≤ }{@value #MAX_KERNEL_HEAD_DIM} run on kernels compiled for 32, 64 and 128
 * (a smaller {@code Dh} is zero-padded to the next of them, which adds exact zeros); larger head dims (up to
 * {@link AttentionOps#MAX_HEAD_DIM}) run as {@link ComposedAttention} on the same backend, and so does a call whose
 * tiles need more shared memory per block than the device allows (the F32 kernels and the BF16 backward at
 * {@code Dh > 64} need 104–114 KiB: fine on sm_80 and sm_90, above the 99 KiB of sm_86/89/120 cards). Any sequence length:
 * the ragged last query block and key tile are masked.
 *
 * <p><b>Determinism.</b> No atomics: the backward computes {@code dK, dV} (one block per key tile, looping over the
 * query blocks in order) and {@code dQ} (one block per query block, looping over the key tiles in order) in two
 * kernels, each recomputing {@code P} from the saved log-sum-exp — seven tile products per tile pair instead of
 * FlashAttention-2's five with an atomic {@code dQ}, bought for run-to-run identical gradients.
 *
 * <p>Calls are queued on the backend's stream without synchronisation. Thread-safe; {@link #close()} releases
 * nothing of the backend.
 */
public final class CudaAttention implements AttentionOps {

    /** Arithmetic of the tile products. */
    public enum Precision {
        /** Float FMAs throughout. */
        F32,
        /** Tile products on BF16 tensor cores with F32 accumulation (forward and backward). */
        BF16
    }

    /** Largest head dim with a kernel; larger ones run composed. */
    public static final int MAX_KERNEL_HEAD_DIM = 128;

    private final CudaBackend backend;
    private final int device;
    private final Precision precision;
    private final ComposedAttention composed;

    /**
     * F32 attention on {@code backend}'s tensors.
     *
     * @throws IllegalArgumentException when {@code backend} is not a {@link CudaBackend}
     */
    public CudaAttention(Backend backend) {
        this(backend, Precision.F32);
    }

    /**
     * Attention with the given tile-product precision.
     *
     * @throws IllegalArgumentException when {@code backend} is not a {@link CudaBackend}
     * @throws NullPointerException     when {@code precision} is null
     */
    public CudaAttention(Backend backend, Precision precision) {
        Objects.requireNonNull(backend, "backend");
        this.precision = Objects.requireNonNull(precision, "precision");
        if (!(backend instanceof CudaBackend cuda)) {
            throw new IllegalArgumentException("CudaAttention needs a CudaBackend, got " + backend.name() + " on "
                    + backend.device());
        }
        this.backend = cuda;
        this.device = cuda.deviceInfo().index();
        this.composed = new ComposedAttention(backend);
    }

    @Override
    public Backend backend() {
        return backend;
    }

    /** The tile-product precision of this instance. */
    public Precision precision() {
        return precision;
    }

    @Override
    public String toString() {
        return "CudaAttention[" + precision + " on " + backend.name() + "]";
    }

    @Override
    public void close() {
        composed.close();
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        AttentionDims d = AttentionOps.checkForward(backend, q, k, v, scale, out, lse);
        if (d.problems() == 0 || d.queries() == 0) {
            return;
        }
        if (d.headDim() > MAX_KERNEL_HEAD_DIM) {
            composed.forward(q, k, v, scale, out, lse);
            return;
        }
        prepare();
        long lseAddress = lse == null ? 0L : lse.address();
        boolean half = precision == Precision.BF16;
        int rc = half
                ? NativeLib.d4j_attention_forward_bf16(q.address(), k.address(), v.address(), out.address(),
                        lseAddress, d.problems(), d.queries(), d.keys(), d.headDim(), scale, backend.stream())
                : NativeLib.d4j_attention_forward_f32(q.address(), k.address(), v.address(), out.address(),
                        lseAddress, d.problems(), d.queries(), d.keys(), d.headDim(), scale, backend.stream());
        if (rc == NativeLib.ERR_UNSUPPORTED) { // tiles above this device's shared memory per block; nothing launched
            composed.forward(q, k, v, scale, out, lse);
            return;
        }
        check(rc, "attention forward", half ? "d4j_attention_forward_bf16" : "d4j_attention_forward_f32", d);
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, float scale, Tensor dq,
                         Tensor dk, Tensor dv) {
        AttentionDims d = AttentionOps.checkBackward(backend, q, k, v, out, lse, dOut, scale, dq, dk, dv);
        if (d.problems() == 0) {
            return;
        }
        if (d.queries() == 0) { // no query attends: every key and value gradient is zero
            backend.fill(dk, 0f);
            backend.fill(dv, 0f);
            return;
        }
        if (d.headDim() > MAX_KERNEL_HEAD_DIM) {
            composed.backward(q, k, v, out, lse, dOut, scale, dq, dk, dv);
            return;
        }
        prepare();
        boolean half = precision == Precision.BF16;
        int rc = half
                ? NativeLib.d4j_attention_backward_bf16(q.address(), k.address(), v.address(), out.address(),
                        lse.address(), dOut.address(), dq.address(), dk.address(), dv.address(), d.problems(),
                        d.queries(), d.keys(), d.headDim(), scale, backend.stream())
                : NativeLib.d4j_attention_backward_f32(q.address(), k.address(), v.address(), out.address(),
                        lse.address(), dOut.address(), dq.address(), dk.address(), dv.address(), d.problems(),
                        d.queries(), d.keys(), d.headDim(), scale, backend.stream());
        if (rc == NativeLib.ERR_UNSUPPORTED) { // checked for both kernels before either is launched
            if (half) {
                // out and lse came from the BF16 forward, which fits where this backward does not (sm_86/89/120 at
                // Dh > 64): recompute both in F32, so that the P the composed backward rebuilds sums to 1 per row
                try (TensorScope tmp = TensorScope.open()) {
                    Tensor out32 = backend.empty(tmp, DType.F32, out.shape());
                    Tensor lse32 = backend.empty(tmp, DType.F32, lse.shape());
                    composed.forward(q, k, v, scale, out32, lse32);
                    composed.backward(q, k, v, out32, lse32, dOut, scale, dq, dk, dv);
                }
            } else {
                composed.backward(q, k, v, out, lse, dOut, scale, dq, dk, dv);
            }
            return;
        }
        check(rc, "attention backward", half ? "d4j_attention_backward_bf16" : "d4j_attention_backward_f32", d);
    }

    /** Makes the backend's device current on the calling thread. */
    private void prepare() {
        int rc = CudaBackend.selectDevice(device);
        if (rc != 0) {
            throw new CudaException("select device", "d4j_set_device", rc, NativeLib.d4j_last_error(),
                    "device " + device);
        }
    }

    private static void check(int rc, String op, String function, AttentionDims d) {
        if (rc != 0) {
            throw new CudaException(op, function, rc, NativeLib.d4j_last_error(), "attention " + d);
        }
    }
}
