package org.diffusion4j.cuda;

import org.diffusion4j.nn.Activation;
import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.NnMath;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The layer and optimizer ops ({@link NnOps}) as CUDA kernels ({@code native/src/nn.cu},
 * {@code nn_backward.cu}), with the per-element arithmetic of {@link NnMath} evaluated with the same float
 * operations in the same order (never contracted into FMAs). One kernel per op:
 * <ul>
 *   <li>{@link #activation} (SiLU, GELU-tanh, identity, with the bias and {@code pre}) and
 *       {@link #activationBackward}: one pass, 4–12 bytes per element; <b>bitwise equal to
 *       {@link org.diffusion4j.cpu.CpuNnOps}</b> except where the device's double {@code exp} and Java's
 *       {@code Math.exp} differ by an ulp and the float rounding does not hide it (rare; ≤ 1 float ulp);</li>
 *   <li>{@link #adamw}: one pass reading {@code param, grad, m, v} and writing {@code param, m, v}; bitwise equal
 *       to the CPU (no transcendental: {@code sqrt} is correctly rounded on both);</li>
 *   <li>{@link #layerNorm} (optional affine and adaLN modulation; Ba et al. 2016, eq. 4; Peebles &amp; Xie 2023,
 *       §3.2): one block per row, float64 row statistics added in a fixed tree order (deterministic; the float
 *       mean and rstd may differ from the CPU's four-lane sums in the last bit);</li>
 *   <li>{@link #gatedResidual} (bitwise the CPU) and {@link #gatedResidualBackward} (one thread per
 *       {@code (sample, feature)} summing {@code dGate} over the tokens in order in float64; {@code df} bitwise
 *       the CPU).</li>
 *   <li>{@link #columnSum}, the parameter gradients of {@link #layerNormBackward} ({@code dGamma}, {@code dBeta},
 *       {@code dShift}, {@code dScale}): column reductions, each block owning 32 columns with 16 row lanes that add
 *       in float64 in a fixed order, the lanes then added in order — deterministic without atomics, equal to the
 *       CPU up to the last float bit (its float64 partial sums run in another order);</li>
 *   <li>{@link #layerNormBackward} {@code dx}: one block per row as in the forward (within 1e-5 relative of the
 *       CPU: the row sums {@code m1}, {@code m2} are float64 sums added in another fixed order);</li>
 *   <li>{@link #embeddingBackward}: the host checks and groups the indices by table row, one block per touched row
 *       adds its rows in order of position — bitwise the CPU.</li>
 * </ul>
 *
 * <p>Ops are queued on the backend's stream without synchronisation; scalar coefficients travel in the kernel
 * parameters. Thread-safe; {@link #close()} releases nothing of the backend.
 */
public final class CudaNnOps implements NnOps {

    private final CudaBackend backend;
    private final int device;

    /**
     * Layer ops on {@code backend}'s tensors.
     *
     * @throws IllegalArgumentException when {@code backend} is not a {@link CudaBackend}
     */
    public CudaNnOps(Backend backend) {
        Objects.requireNonNull(backend, "backend");
        if (!(backend instanceof CudaBackend cuda)) {
            throw new IllegalArgumentException("CudaNnOps needs a CudaBackend, got " + backend.name() + " on "
                    + backend.device());
        }
        this.backend = cuda;
        this.device = cuda.deviceInfo().index();
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public String toString() {
        return "CudaNnOps[" + backend.name() + "]";
    }

    @Override
    public void close() {
    }

    // ---------------------------------------------------------------- activations

    @Override
    public void activation(Activation act, Tensor x, Tensor bias, Tensor pre, Tensor out) {
        NnOps.checkActivation(backend, act, x, bias, pre, out);
        if (x.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_activation_f32(act.ordinal(), x.address(), address(bias), address(pre), out.address(),
                        x.rows(), x.cols(), backend.stream()),
                "activation", "d4j_activation_f32", act + " of x " + x);
    }

    @Override
    public void activationBackward(Activation act, Tensor pre, Tensor dy, Tensor dx) {
        NnOps.checkActivationBackward(backend, act, pre, dy, dx);
        long n = pre.numel();
        if (n == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_activation_backward_f32(act.ordinal(), pre.address(), dy.address(), dx.address(), n,
                        backend.stream()),
                "activationBackward", "d4j_activation_backward_f32", act + " of pre " + pre);
    }

    // ---------------------------------------------------------------- reductions (native/src/nn_backward.cu)

    @Override
    public void columnSum(Tensor dy, Tensor out, boolean accumulate) {
        long cols = NnOps.checkColumnSum(backend, dy, out);
        if (cols == 0) {
            return;
        }
        long rows = dy.numel() == 0 ? 0 : dy.rows();
        prepare();
        check(NativeLib.d4j_column_sum_f32(rows == 0 ? 0L : dy.address(), out.address(), rows, cols,
                        accumulate ? 1 : 0, backend.stream()),
                "columnSum", "d4j_column_sum_f32", "dy " + dy);
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor gamma, Tensor beta, Tensor scale, Tensor mean, Tensor rstd,
                                  Tensor dy, Tensor dx, Tensor dGamma, Tensor dBeta, Tensor dShift, Tensor dScale) {
        NnOps.Tokens k = NnOps.checkLayerNormBackward(backend, x, gamma, beta, scale, mean, rstd, dy, dx, dGamma,
                dBeta, dShift, dScale);
        if (k.batch() == 0 || k.dim() == 0) {
            return;
        }
        boolean empty = k.rows() == 0;
        prepare();
        // rows = 0 still runs: dShift and dScale are the empty sums, 0
        check(NativeLib.d4j_layer_norm_backward_f32(empty ? 0L : x.address(), address(gamma), address(beta),
                        rowAddress(scale), rowStride(scale), empty ? 0L : mean.address(),
                        empty ? 0L : rstd.address(), empty ? 0L : dy.address(), empty ? 0L : dx.address(),
                        address(dGamma), address(dBeta), rowAddress(dShift), rowStride(dShift), rowAddress(dScale),
                        rowStride(dScale), k.batch(), k.tokens(), k.dim(), backend.stream()),
                "layerNormBackward", "d4j_layer_norm_backward_f32", "x " + x);
    }

    /**
     * {@inheritDoc}
     *
     * <p>The indices are copied to the host (synchronously) and checked there, then grouped by table row (a
     * stable counting sort, {@code O(N + V)}); the kernel gives each touched row one block, which adds its
     * {@code dy} rows in order of position: bitwise the CPU's sequential sums, without atomics.
     */
    @Override
    public void embeddingBackward(Tensor indices, Tensor dy, Tensor dTable) {
        NnOps.checkEmbeddingBackward(backend, indices, dy, dTable);
        long n = indices.shape(0);
        long vocab = dTable.shape(0);
        long dim = dTable.shape(1);
        if (n == 0 || dim == 0) {
            return;
        }
        int[] plan = EmbeddingPlan.build(indices, vocab, dTable);
        int touched = EmbeddingPlan.touched(plan);
        prepare();
        try (TensorScope scope = TensorScope.open()) {
            Tensor p = backend.empty(scope, DType.I32, plan.length);
            p.copyFrom(MemorySegment.ofArray(plan));
            check(NativeLib.d4j_embedding_backward_f32(dy.address(), dTable.address(), vocab, dim, p.address(), n,
                            touched, backend.stream()),
                    "embeddingBackward", "d4j_embedding_backward_f32", "dy " + dy + ", dTable " + dTable);
            backend.synchronize(); // the plan's memory is freed when the scope closes
        }
    }

    /** The host side of {@link #embeddingBackward}: index checks and the grouping of positions by table row. */
    static final class EmbeddingPlan {

        private EmbeddingPlan() {
        }

        /**
         * {@code order[n] | start[touched + 1] | rows[touched]} (the layout of {@code d4j_embedding_backward_f32}),
         * with {@code touched} appended as the last element (read it with {@link #touched}).
         *
         * @throws IndexOutOfBoundsException naming the position and value of the first index outside
         *                                   {@code [0, vocab)}
         */
        static int[] build(Tensor indices, long vocab, Tensor dTable) {
            int n = Math.toIntExact(indices.shape(0));
            int[] idx = new int[n];
            indices.backend().copyToHost(indices, MemorySegment.ofArray(idx));
            return build(idx, vocab, dTable);
        }

        static int[] build(int[] idx, long vocab, Object table) {
            int n = idx.length;
            for (int i = 0; i < n; i++) {
                if (idx[i] < 0 || idx[i] >= vocab) {
                    throw new IndexOutOfBoundsException("indices[" + i + "] = " + idx[i] + " is outside [0, " + vocab
                            + ") of dTable " + table);
                }
            }
            // counting sort over the touched rows only: rows in order of first appearance, positions increasing
            java.util.HashMap<Integer, Integer> group = new java.util.HashMap<>();
            int[] groupOf = new int[n];
            int[] counts = new int[n];
            int[] rowOf = new int[n];
            int touched = 0;
            for (int i = 0; i < n; i++) {
                Integer g = group.get(idx[i]);
                if (g == null) {
                    g = touched++;
                    group.put(idx[i], g);
                    rowOf[g] = idx[i];
                }
                groupOf[i] = g;
                counts[g]++;
            }
            int[] plan = new int[n + 2 * touched + 2];
            int startAt = n;
            int rowsAt = n + touched + 1;
            int acc = 0;
            for (int g = 0; g < touched; g++) {
                plan[startAt + g] = acc;
                acc += counts[g];
                plan[rowsAt + g] = rowOf[g];
            }
            plan[startAt + touched] = acc;
            int[] fill = new int[touched];
            for (int i = 0; i < n; i++) {
                int g = groupOf[i];
                plan[plan[startAt + g] + fill[g]++] = i;
            }
            plan[plan.length - 1] = touched;
            return plan;
        }

        /** The number of touched rows stored by {@link #build}. */
        static int touched(int[] plan) {
            return plan[plan.length - 1];
        }
    }

    // ---------------------------------------------------------------- LayerNorm + modulation

    @Override
    public void layerNorm(Tensor x, Tensor gamma, Tensor beta, Tensor shift, Tensor scale, float eps, Tensor out,
                          Tensor mean, Tensor rstd) {
        NnOps.Tokens k = NnOps.checkLayerNorm(backend, x, gamma, beta, shift, scale, eps, out, mean, rstd);
        if (k.rows() == 0 || k.dim() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_layer_norm_f32(x.address(), address(gamma), address(beta), rowAddress(shift),
                        rowStride(shift), rowAddress(scale), rowStride(scale), eps, out.address(), address(mean),
                        address(rstd), k.batch(), k.tokens(), k.dim(), backend.stream()),
                "layerNorm", "d4j_layer_norm_f32", "x " + x + ", eps " + eps);
    }

    // ---------------------------------------------------------------- gated residual

    @Override
    public void gatedResidual(Tensor x, Tensor gate, Tensor f, Tensor out) {
        NnOps.Tokens k = NnOps.checkGatedResidual(backend, x, gate, f, out);
        if (k.rows() == 0 || k.dim() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_gated_residual_f32(x.address(), rowAddress(gate), rowStride(gate), f.address(),
                        out.address(), k.batch(), k.tokens(), k.dim(), backend.stream()),
                "gatedResidual", "d4j_gated_residual_f32", "x " + x + ", gate " + gate);
    }

    @Override
    public void gatedResidualBackward(Tensor gate, Tensor f, Tensor dy, Tensor df, Tensor dGate) {
        NnOps.Tokens k = NnOps.checkGatedResidualBackward(backend, gate, f, dy, df, dGate);
        if (k.batch() == 0 || k.dim() == 0 || (df == null && dGate == null)) {
            return;
        }
        prepare();
        // tokens = 0 still runs: dGate is the empty sum, 0
        check(NativeLib.d4j_gated_residual_backward_f32(rowAddress(gate), rowStride(gate), f.address(),
                        dy.address(), address(df), rowAddress(dGate), rowStride(dGate), k.batch(), k.tokens(),
                        k.dim(), backend.stream()),
                "gatedResidualBackward", "d4j_gated_residual_backward_f32", "dy " + dy + ", gate " + gate);
    }

    // ---------------------------------------------------------------- AdamW

    @Override
    public void adamw(AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v) {
        NnOps.checkAdamw(backend, step, param, grad, m, v);
        long n = param.numel();
        if (n == 0) {
            return;
        }
        float[] coef = {step.decay(), step.beta1(), step.oneMinusBeta1(), step.beta2(), step.oneMinusBeta2(),
            step.stepSize(), step.invSqrtBc2(), step.eps(), step.gradScale()};
        prepare();
        check(NativeLib.d4j_adamw_f32(param.address(), grad.address(), m.address(), v.address(), n, coef,
                        backend.stream()),
                "adamw", "d4j_adamw_f32", "param " + param);
    }

    // ---------------------------------------------------------------- helpers

    /** Makes the backend's device current on the calling thread. */
    private void prepare() {
        check(CudaBackend.selectDevice(device), "select device", "d4j_set_device", "device " + device);
    }

    private static long address(Tensor t) {
        return t == null ? 0L : t.address();
    }

    /** First-element address of a per-sample {@code [B, D]} operand that may be a row-strided slice (0 when absent). */
    private static long rowAddress(Tensor t) {
        return t == null ? 0L : t.firstElementAddress();
    }

    /** Row stride in elements of a per-sample {@code [B, D]} operand (0 when absent or {@code B ≤ 1}). */
    private static long rowStride(Tensor t) {
        return t == null || t.shape(0) <= 1 ? 0L : t.stride(0);
    }

    private static void check(int rc, String op, String function, String operands) {
        if (rc != 0) {
            throw new CudaException(op, function, rc, NativeLib.d4j_last_error(), operands);
        }
    }
}
