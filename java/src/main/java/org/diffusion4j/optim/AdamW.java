package org.diffusion4j.optim;

import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * AdamW (Loshchilov &amp; Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2) with bias-corrected
 * moments (Kingma &amp; Ba 2015, Algorithm 1), in the update order and with the weight-decay convention of
 * PyTorch's {@code torch.optim.AdamW}: per parameter one fused pass ({@link NnOps#adamw}) that decays the weights
 * by {@code 1 − lr·λ}, updates both moments and applies {@code lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε)}. A
 * gradient scale (e.g. the factor of {@link GradClip#clipFactor}) is folded into the same pass.
 *
 * <p><b>Weight decay λ.</b> The paper's Algorithm 2 (line 12) updates
 * {@code θ_t = θ_{t−1} − η_t·(α·m̂_t/(√v̂_t + ε) + λ·θ_{t−1})}: the decay is {@code η_t·λ}, scaled by the schedule
 * multiplier {@code η_t} only, independent of the step size {@code α}. PyTorch (and this class) couple λ with the
 * learning rate {@code lr = η_t·α} instead: the decay is {@code lr·λ}. A λ taken from the paper therefore
 * corresponds to {@code λ_paper/α} here; a λ taken from PyTorch code carries over unchanged.
 *
 * <p>The moments {@code m}, {@code v} (zero-initialised, each parameter's shape) live in a scope owned by this
 * optimizer and are freed by {@link #close()}; {@link #firstMoments()}/{@link #secondMoments()} expose them by
 * parameter name for checkpoints, and {@link #setStepCount} restores the step counter.
 */
public final class AdamW implements AutoCloseable {

    /**
     * Hyper-parameters.
     *
     * @param beta1       first-moment decay in {@code [0, 1)} (PyTorch default 0.9)
     * @param beta2       second-moment decay in {@code [0, 1)} (0.999)
     * @param eps         {@code ≥} {@link Float#MIN_NORMAL} (1e-8; the step runs in float32)
     * @param weightDecay decoupled decay {@code λ ≥ 0} (0.01), applied as {@code 1 − lr·λ} per step (see the class
     *                    comment for how it relates to the paper's λ)
     */
    public record Hyper(double beta1, double beta2, double eps, double weightDecay) {

        /**
         * Validates (through {@link AdamWStep#of}).
         *
         * @throws IllegalArgumentException naming the bad value: {@code beta1} or {@code beta2} outside
         *                                  {@code [0, 1)}, {@code eps} outside
         *                                  {@code [}{@link Float#MIN_NORMAL}{@code , }{@link Float#MAX_VALUE}{@code ]},
         *                                  or a negative or non-finite {@code weightDecay}
         */
        public Hyper {
            AdamWStep.of(0, beta1, beta2, eps, weightDecay, 1, 1);
        }

        /** PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, λ = 0.01. */
        public static Hyper defaults() {
            return new Hyper(0.9, 0.999, 1e-8, 0.01);
        }

        /**
         * These values with weight decay {@code λ}.
         *
         * @param lambda decoupled weight decay {@code ≥ 0}, finite (coupled with the learning rate, see the class
         *               comment)
         * @throws IllegalArgumentException for a negative or non-finite {@code lambda}
         */
        public Hyper withWeightDecay(double lambda) {
            return new Hyper(beta1, beta2, eps, lambda);
        }
    }

    private final NnOps ops;
    private final Hyper hyper;
    private final TensorScope scope = TensorScope.open();
    private final List<String> names = new ArrayList<>();
    private final List<Parameter> params = new ArrayList<>();
    private final List<Boolean> decays = new ArrayList<>();
    private final Map<String, Tensor> m = new LinkedHashMap<>();
    private final Map<String, Tensor> v = new LinkedHashMap<>();
    private long steps;

    /**
     * An optimizer for every parameter, all with weight decay.
     *
     * @param ops        the ops that run the fused step; their backend holds the parameters and the moments
     * @param parameters the parameters by state-dict name (F32; the map is read once, in its iteration order)
     * @param hyper      the hyper-parameters
     * @throws NullPointerException     when an argument is null
     * @throws IllegalArgumentException when a parameter is not a contiguous F32 tensor on {@code ops}' backend
     * @throws IllegalStateException    when a parameter's scope is closed
     */
    public AdamW(NnOps ops, Map<String, Parameter> parameters, Hyper hyper) {
        this(ops, parameters, hyper, name -> true);
    }

    /**
     * An optimizer for {@code parameters} (by state-dict name).
     *
     * @param ops        the ops that run the fused step; their backend holds the parameters and the moments
     * @param parameters the parameters by state-dict name (F32; the map is read once, in its iteration order)
     * @param hyper      the hyper-parameters
     * @param decayed    which parameters get weight decay (by name; e.g. exclude biases and norms)
     * @throws NullPointerException     when an argument is null
     * @throws IllegalArgumentException when a parameter is not a contiguous F32 tensor on {@code ops}' backend
     * @throws IllegalStateException    when a parameter's scope is closed
     */
    public AdamW(NnOps ops, Map<String, Parameter> parameters, Hyper hyper, Predicate<String> decayed) {
        this.ops = Objects.requireNonNull(ops, "ops");
        this.hyper = Objects.requireNonNull(hyper, "hyper");
        Objects.requireNonNull(decayed, "decayed");
        try {
            for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
                Parameter p = e.getValue();
                NnOps.checkTensor(ops.backend(), e.getKey(), p.value(), false);
                names.add(e.getKey());
                params.add(p);
                decays.add(decayed.test(e.getKey()));
                m.put(e.getKey(), ops.backend().zeros(scope, DType.F32, p.shape()));
                v.put(e.getKey(), ops.backend().zeros(scope, DType.F32, p.shape()));
            }
        } catch (RuntimeException ex) {
            scope.close();
            throw ex;
        }
    }

    /** The hyper-parameters. */
    public Hyper hyper() {
        return hyper;
    }

    /** Steps taken so far. */
    public long stepCount() {
        return steps;
    }

    /**
     * Sets the step counter (when resuming; the next step is {@code steps + 1}).
     *
     * @param steps steps already taken, in {@code [0, 2^63 − 2]}
     * @throws IllegalArgumentException when {@code steps} is negative or {@link Long#MAX_VALUE}
     */
    public void setStepCount(long steps) {
        if (steps < 0 || steps == Long.MAX_VALUE) {
            throw new IllegalArgumentException("step count must be in [0, 2^63 - 2] (the next step is counted "
                    + "with it), got " + steps);
        }
        this.steps = steps;
    }

    /** {@code m} by parameter name (live tensors). */
    public Map<String, Tensor> firstMoments() {
        return Collections.unmodifiableMap(m);
    }

    /** {@code v} by parameter name (live tensors). */
    public Map<String, Tensor> secondMoments() {
        return Collections.unmodifiableMap(v);
    }

    /**
     * One step at learning rate {@code lr} with unscaled gradients.
     *
     * @param lr the learning rate of this step, finite, {@code ≥ 0}
     * @throws IllegalArgumentException for a negative or non-finite {@code lr}, or one whose step size overflows
     *                                  float32
     * @throws IllegalStateException    after {@link #close()}, or when a parameter's scope is closed
     */
    public void step(double lr) {
        step(lr, 1.0);
    }

    /**
     * One step: every parameter updated from its {@code grad·gradScale} in one fused pass.
     *
     * @param lr        the learning rate of this step, finite, {@code ≥ 0}
     * @param gradScale factor applied to every gradient, finite, {@code ≥ 0} (e.g. {@link GradClip#clipFactor})
     * @throws IllegalArgumentException for a negative or non-finite {@code lr} or {@code gradScale}, or one that
     *                                  overflows float32
     * @throws IllegalStateException    after {@link #close()}, or when a parameter's scope is closed
     */
    public void step(double lr, double gradScale) {
        if (!scope.isAlive()) {
            throw new IllegalStateException("AdamW is closed");
        }
        long t = steps + 1;
        AdamWStep withDecay = AdamWStep.of(lr, hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay(), t,
                gradScale);
        AdamWStep noDecay = AdamWStep.of(lr, hyper.beta1(), hyper.beta2(), hyper.eps(), 0.0, t, gradScale);
        for (Parameter p : params) {                   // all or nothing: no parameter updated when one is freed
            p.value().checkAlive();
            p.grad().checkAlive();
        }
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            String name = names.get(i);
            ops.adamw(decays.get(i) ? withDecay : noDecay, p.value(), p.grad(), m.get(name), v.get(name));
        }
        steps = t;
    }

    /** Frees the moments. */
    @Override
    public void close() {
        if (scope.isAlive()) {
            scope.close();
        }
    }
}
