package org.diffusion4j.nn.attention;

import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * Scaled dot-product attention {@code O = softmax(scale·Q·Kᵀ)·V} per (batch, head), forward and backward, with
 * the row log-sum-exp {@code L} saved by the forward for the backward (Vaswani et al. 2017, eq. 1; the fused
 * algorithm is FlashAttention-2, Dao 2023, Algorithms 1 and 2 — see {@link AttentionMath}).
 *
 * <p><b>Layout.</b> {@code q [B, H, Tq, Dh]}, {@code k} and {@code v [B, H, Tk, Dh]}, {@code out [B, H, Tq, Dh]},
 * {@code lse [B, H, Tq]}: F32, contiguous (row-major, {@code Dh} fastest), alive, on {@link #backend()}'s device.
 * {@code Tq = Tk} for self-attention; cross-attention ({@code Tq ≠ Tk}) is allowed. {@code B}, {@code H} and
 * {@code Tq} may be 0 (nothing is computed); {@code Tk ≥ 1}; {@code 1 ≤ Dh ≤ }{@value #MAX_HEAD_DIM}.
 * {@code scale} is finite and {@code ≥ 0}; {@link #defaultScale} gives {@code 1/√Dh}.
 *
 * <p><b>Outputs</b> are preallocated and overwritten (never accumulated into); they must not overlap any input or
 * each other. A violation throws {@link IllegalArgumentException} (or {@link IllegalStateException} for a closed
 * scope) naming the argument and its shape, before memory is touched.
 *
 * <p>Implementations: {@link CpuAttention} (fused: tiles of queries × keys with an online softmax, the tile
 * products on OpenBLAS, never a {@code Tq×Tk} matrix; bitwise the same for any thread count),
 * {@link org.diffusion4j.cuda.CudaAttention} (fused FlashAttention-2 kernels on CUDA, F32 or BF16 tile products;
 * it falls back to {@link ComposedAttention} on the same backend for head dims or tile sizes its kernels do not
 * cover) and {@link ComposedAttention} (matmul–softmax–matmul from generic {@link Backend} ops, materialising
 * {@code Tq×Tk} per (batch, head); the reference in tests and the path on backends without a fused kernel).
 * {@link #forBackend} picks one.
 */
public interface AttentionOps extends AutoCloseable {

    /** Largest supported head dim. */
    int MAX_HEAD_DIM = 256;

    /** The backend whose tensors this instance operates on. */
    Backend backend();

    /**
     * Forward: {@code out = softmax(scale·q·kᵀ)·v} and {@code lse[b,h,i] = ln Σ_j exp(scale·q_i·k_j)}.
     *
     * @param q     queries {@code [B, H, Tq, Dh]}
     * @param k     keys {@code [B, H, Tk, Dh]}
     * @param v     values {@code [B, H, Tk, Dh]}
     * @param scale the logit scale, finite, {@code ≥ 0} (usually {@link #defaultScale})
     * @param out   output {@code [B, H, Tq, Dh]}
     * @param lse   output natural log-sum-exp {@code [B, H, Tq]} (needed by {@link #backward}), or null
     * @throws NullPointerException     when {@code q}, {@code k}, {@code v} or {@code out} is null
     * @throws IllegalArgumentException naming the bad argument, its shape and the expectation (see the class
     *                                  comment), or an output that overlaps an input or the other output
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void forward(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse);

    /** {@link #forward} with {@code scale = 1/√Dh}. */
    default void forward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        Objects.requireNonNull(q, "q");
        forward(q, k, v, defaultScale(q.rank() == 4 ? q.shape(3) : 1), out, lse);
    }

    /**
     * Backward of {@link #forward}: given {@code dOut = ∂loss/∂out}, writes {@code dq}, {@code dk}, {@code dv}
     * (overwriting them). {@code out} and {@code lse} are the forward's outputs for the same inputs and scale
     * (Dao 2023, Algorithm 2: {@code P} is recomputed from {@code lse}, never stored). All tensors F32, contiguous,
     * on {@link #backend()}'s device.
     *
     * @param q     the forward's queries {@code [B, H, Tq, Dh]}
     * @param k     the forward's keys {@code [B, H, Tk, Dh]}
     * @param v     the forward's values {@code [B, H, Tk, Dh]}
     * @param out   the forward's output {@code [B, H, Tq, Dh]}
     * @param lse   the forward's natural log-sum-exp {@code [B, H, Tq]}; required here (not null)
     * @param dOut  upstream gradient {@code [B, H, Tq, Dh]}
     * @param scale the forward's logit scale, finite, {@code ≥ 0}
     * @param dq    output {@code [B, H, Tq, Dh]}
     * @param dk    output {@code [B, H, Tk, Dh]}
     * @param dv    output {@code [B, H, Tk, Dh]}
     * @throws NullPointerException     when a tensor, {@code lse} included, is null
     * @throws IllegalArgumentException naming the bad argument, its shape and the expectation (see the class
     *                                  comment), or an output that overlaps an input or another output
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, float scale, Tensor dq,
                  Tensor dk, Tensor dv);

    /** Releases resources (worker threads, scratch memory); the backend stays open. */
    @Override
    default void close() {
    }

    /**
     * The attention ops for {@code backend}: {@link CpuAttention} on the CPU,
     * {@link org.diffusion4j.cuda.CudaAttention} (F32 precision) on a {@link org.diffusion4j.cuda.CudaBackend}, and
     * {@link ComposedAttention} on any other backend.
     *
     * @param backend the backend the returned ops work on; it stays owned by the caller
     * @return new ops; close them (they do not close {@code backend})
     * @throws NullPointerException when {@code backend} is null
     */
    static AttentionOps forBackend(Backend backend) {
        Objects.requireNonNull(backend, "backend");
        if (backend.device().type() == Device.Type.CPU) {
            return new CpuAttention(backend);
        }
        return backend instanceof org.diffusion4j.cuda.CudaBackend ? new org.diffusion4j.cuda.CudaAttention(backend)
                : new ComposedAttention(backend);
    }

    /**
     * {@code 1/√Dh}, the scale of Vaswani et al. 2017, §3.2.1, rounded to float.
     *
     * @throws IllegalArgumentException when {@code headDim < 1}
     */
    static float defaultScale(long headDim) {
        if (headDim < 1) {
            throw new IllegalArgumentException("head dim must be >= 1, got " + headDim);
        }
        return (float) (1.0 / Math.sqrt(headDim));
    }

    // ---------------------------------------------------------------- argument checks for implementations

    /**
     * Checks the arguments of {@link #forward} (the class comment's rules) and returns the sizes.
     *
     * <p>SPI helper, for backend implementations of this interface ({@code cpu}, {@code cuda}, {@link
     * ComposedAttention}); public only because interface members are. Not for callers of the attention ops, which check
     * their arguments themselves.
     *
     * @throws NullPointerException     naming a required argument that is null
     * @throws IllegalArgumentException naming the bad argument, its shape and the expectation
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    static AttentionDims checkForward(Backend backend, Tensor q, Tensor k, Tensor v, float scale, Tensor out,
                                      Tensor lse) {
        AttentionDims d = checkInputs(backend, q, k, v, scale);
        checkOperand(backend, "out", out, d.batch(), d.heads(), d.queries(), d.headDim());
        if (lse != null) {
            checkLse(backend, lse, d);
        }
        Tensor[] inputs = {q, k, v};
        String[] inNames = {"q", "k", "v"};
        requireDisjoint("out", out, inNames, inputs);
        if (lse != null) {
            requireDisjoint("lse", lse, inNames, inputs);
            requireDisjoint("lse", lse, new String[] {"out"}, new Tensor[] {out});
        }
        return d;
    }

    /**
     * Checks the arguments of {@link #backward} and returns the sizes.
     *
     * <p>SPI helper, for backend implementations of this interface (see {@link #checkForward}).
     *
     * @throws NullPointerException     naming a required argument that is null
     * @throws IllegalArgumentException naming the bad argument, its shape and the expectation
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    static AttentionDims checkBackward(Backend backend, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                                       Tensor dOut, float scale, Tensor dq, Tensor dk, Tensor dv) {
        AttentionDims d = checkInputs(backend, q, k, v, scale);
        checkOperand(backend, "out", out, d.batch(), d.heads(), d.queries(), d.headDim());
        Objects.requireNonNull(lse, "lse (the forward's log-sum-exp) must not be null in backward");
        checkLse(backend, lse, d);
        checkOperand(backend, "dOut", dOut, d.batch(), d.heads(), d.queries(), d.headDim());
        checkOperand(backend, "dq", dq, d.batch(), d.heads(), d.queries(), d.headDim());
        checkOperand(backend, "dk", dk, d.batch(), d.heads(), d.keys(), d.headDim());
        checkOperand(backend, "dv", dv, d.batch(), d.heads(), d.keys(), d.headDim());
        String[] inNames = {"q", "k", "v", "out", "lse", "dOut"};
        Tensor[] inputs = {q, k, v, out, lse, dOut};
        requireDisjoint("dq", dq, inNames, inputs);
        requireDisjoint("dk", dk, inNames, inputs);
        requireDisjoint("dv", dv, inNames, inputs);
        requireDisjoint("dk", dk, new String[] {"dq"}, new Tensor[] {dq});
        requireDisjoint("dv", dv, new String[] {"dq", "dk"}, new Tensor[] {dq, dk});
        return d;
    }

    private static AttentionDims checkInputs(Backend backend, Tensor q, Tensor k, Tensor v, float scale) {
        Objects.requireNonNull(backend, "backend");
        if (!Float.isFinite(scale) || scale < 0f) {
            throw new IllegalArgumentException("attention scale must be finite and >= 0, got " + scale);
        }
        checkTensor(backend, "q", q);
        checkTensor(backend, "k", k);
        checkTensor(backend, "v", v);
        Shape.requireRank("q [B, H, Tq, Dh]", q, 4);
        long b = q.shape(0);
        long h = q.shape(1);
        long tq = q.shape(2);
        long dh = q.shape(3);
        if (dh < 1 || dh > MAX_HEAD_DIM) {
            throw new IllegalArgumentException("q " + q + " has head dim Dh = " + dh + "; attention supports 1 <= Dh <= "
                    + MAX_HEAD_DIM);
        }
        Shape.requireRank("k [B, H, Tk, Dh]", k, 4);
        long tk = k.shape(2);
        if (k.shape(0) != b || k.shape(1) != h || k.shape(3) != dh) {
            throw new IllegalArgumentException("k " + k + " must be [B=" + b + ", H=" + h + ", Tk, Dh=" + dh
                    + "] to match q " + q);
        }
        if (tk < 1) {
            throw new IllegalArgumentException("k " + k + " has no keys (Tk = 0): the softmax over an empty set is "
                    + "undefined");
        }
        checkOperand(backend, "v", v, b, h, tk, dh);
        return new AttentionDims(b, h, tq, tk, dh);
    }

    private static void checkLse(Backend backend, Tensor lse, AttentionDims d) {
        checkTensor(backend, "lse", lse);
        if (lse.rank() != 3 || lse.shape(0) != d.batch() || lse.shape(1) != d.heads()
                || lse.shape(2) != d.queries()) {
            throw new IllegalArgumentException("lse " + lse + " must be [B, H, Tq] = [" + d.batch() + ", " + d.heads()
                    + ", " + d.queries() + "]");
        }
    }

    private static void checkOperand(Backend backend, String name, Tensor t, long b, long h, long rows, long dh) {
        checkTensor(backend, name, t);
        if (t.rank() != 4 || t.shape(0) != b || t.shape(1) != h || t.shape(2) != rows || t.shape(3) != dh) {
            throw new IllegalArgumentException(name + " " + t + " must be [" + b + ", " + h + ", " + rows + ", " + dh
                    + "]");
        }
    }

    private static void checkTensor(Backend backend, String name, Tensor t) {
        Objects.requireNonNull(t, name);
        Shape.requireOn(name, t, backend);
        Shape.requireDType(name, t, DType.F32);
        Shape.requireContiguous(name, t);
    }

    /** Rejects an output whose bytes overlap those of any listed tensor (all contiguous, one device). */
    private static void requireDisjoint(String outName, Tensor out, String[] names, Tensor[] others) {
        if (out.numel() == 0) {
            return;
        }
        long o0 = out.address();
        long o1 = o0 + out.byteSize();
        for (int i = 0; i < others.length; i++) {
            Tensor t = others[i];
            if (t.numel() == 0) {
                continue;
            }
            long t0 = t.address();
            long t1 = t0 + t.byteSize();
            if (o0 < t1 && t0 < o1) {
                throw new IllegalArgumentException("attention: " + outName + " " + out + " overlaps " + names[i] + " "
                        + t + " in memory");
            }
        }
    }
}
