package org.diffusion4j.cuda;

import org.diffusion4j.nn.Activation;
import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.ComposedNnOps;
import org.diffusion4j.nn.NnMath;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * The layer and optimizer ops ({@link NnOps}) as CUDA kernels ({@code native/src/nn.cu}), with the per-element
 * arithmetic of {@link NnMath} evaluated with the same float operations in the same order (never contracted into
 * FMAs). One kernel per op:
 * <ul>
 *   <li>{@link #activation} (SiLU, GELU-tanh, identity, with the bias and {@code pre}) and
 *       {@link #activationBackward}: one pass, 4–12 bytes per element; <b>bitwise equal to
 *       {@link org.diffusion4j.cpu.CpuNnOps}</b> except where the device's double {@code exp} and Java's
 *       {@code Math.exp} differ by an ulp and the float rounding does not hide it (rare; ≤ 1 float ulp);</li>
 *   <li>{@link #adamw}: one pass reading {@code param, grad, m, v} and writing {@code param, m, v}; bitwise equal
 *       to the CPU (no transcendental: {@code sqrt} is correctly rounded on both);</li>
 *   <li>{@link #layerNorm} (optional affine and adaLN modulation; Ba et al. 2016, eq. 4; Peebles &amp; Xie 2023,
 *       §3.2): one block per row, float64 row statistics added in a fixed tree order (deterministic; the float
 *       mean and rstd may differ from the CPU's sequential sums in the last bit);</li>
 *   <li>{@link #gatedResidual} (bitwise the CPU) and {@link #gatedResidualBackward} (one thread per
 *       {@code (sample, feature)} summing {@code dGate} over the tokens in order in float64; {@code df} bitwise
 *       the CPU).</li>
 * </ul>
 * {@link #columnSum}, {@link #layerNormBackward} and {@link #embeddingBackward} have no kernel yet and run as
 * {@link ComposedNnOps} compositions on the same backend.
 *
 * <p>Ops are queued on the backend's stream without synchronisation; scalar coefficients travel in the kernel
 * parameters. Thread-safe; {@link #close()} releases nothing of the backend.
 */
public final class CudaNnOps implements NnOps {

    private final CudaBackend backend;
    private final int device;
    private final ComposedNnOps composed;

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
        this.composed = new ComposedNnOps(backend);
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
        composed.close();
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
        Objects.requireNonNull(act, "act");
        NnOps.checkTensor(backend, "pre", pre, false);
        NnOps.checkLike(backend, "dy", dy, "pre", pre, false);
        NnOps.checkLike(backend, "dx", dx, "pre", pre, false);
        long n = pre.numel();
        if (n == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_activation_backward_f32(act.ordinal(), pre.address(), dy.address(), dx.address(), n,
                        backend.stream()),
                "activationBackward", "d4j_activation_backward_f32", act + " of pre " + pre);
    }

    // ---------------------------------------------------------------- composed (no kernel yet)

    @Override
    public void columnSum(Tensor dy, Tensor out, boolean accumulate) {
        composed.columnSum(dy, out, accumulate);
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor gamma, Tensor beta, Tensor scale, Tensor mean, Tensor rstd,
                                  Tensor dy, Tensor dx, Tensor dGamma, Tensor dBeta, Tensor dShift, Tensor dScale) {
        composed.layerNormBackward(x, gamma, beta, scale, mean, rstd, dy, dx, dGamma, dBeta, dShift, dScale);
    }

    @Override
    public void embeddingBackward(Tensor indices, Tensor dy, Tensor dTable) {
        composed.embeddingBackward(indices, dy, dTable);
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
