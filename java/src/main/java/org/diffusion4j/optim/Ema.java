package org.diffusion4j.optim;

import org.diffusion4j.nn.Parameter;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Exponential moving average of the weights with warm-up, as diffusers' {@code EMAModel} with
 * {@code use_ema_warmup=True}: at the {@code n}-th {@link #update()} (1-based) with {@code k = n − updateAfterStep
 * − 1}, the decay is 0 for {@code k ≤ 0} (the average restarts at the weights) and otherwise
 * {@code clamp(1 − (1 + k/invGamma)^(−p), minDecay, maxDecay)} ({@code invGamma} is diffusers' and k-diffusion's
 * {@code inv_gamma}, the divisor of the step count; k-diffusion's documentation calls it γ); then {@code ema = d·ema + (1 − d)·θ} (one
 * {@link Backend#axpby} per parameter). With {@code γ = 1}, {@code p = 2/3} the decay reaches 0.999 after about
 * 31.6K and 0.9999 after 1M steps; with {@code p = 3/4} after 10K and 215.4K (the documentation of k-diffusion's
 * {@code EMAWarmup}, where this schedule comes from, repeated by diffusers' {@code EMAModel}).
 *
 * <p>The averages live in a scope owned by this object ({@link #close()} frees them) and start as a copy of the
 * weights.
 */
public final class Ema implements AutoCloseable {

    /**
     * Warm-up schedule.
     *
     * @param maxDecay        upper clamp in {@code [0, 1]} (diffusers default 0.9999)
     * @param minDecay        lower clamp in {@code [0, maxDecay]} (0)
     * @param invGamma        {@code inv_gamma > 0}, finite (1): the step count is divided by it, {@code k/invGamma}
     *                        (despite the name, not its inverse)
     * @param power           {@code p > 0} (2/3)
     * @param updateAfterStep updates before averaging starts {@code ≥ 0} (0)
     */
    public record Schedule(double maxDecay, double minDecay, double invGamma, double power, long updateAfterStep) {

        /**
         * Validates.
         *
         * @throws IllegalArgumentException naming the bad value (ranges as in the component descriptions)
         */
        public Schedule {
            if (!(maxDecay >= 0 && maxDecay <= 1)) {
                throw new IllegalArgumentException("EMA max decay must be in [0, 1], got " + maxDecay);
            }
            if (!(minDecay >= 0 && minDecay <= maxDecay)) {
                throw new IllegalArgumentException("EMA min decay must be in [0, maxDecay = " + maxDecay + "], got "
                        + minDecay);
            }
            if (!(invGamma > 0 && Double.isFinite(invGamma))) {
                throw new IllegalArgumentException("EMA inv_gamma must be finite and > 0, got " + invGamma);
            }
            if (!(power > 0 && Double.isFinite(power))) {
                throw new IllegalArgumentException("EMA power must be finite and > 0, got " + power);
            }
            if (updateAfterStep < 0) {
                throw new IllegalArgumentException("EMA updateAfterStep must be >= 0, got " + updateAfterStep);
            }
        }

        /** diffusers' defaults with warm-up: max 0.9999, min 0, {@code inv_gamma = 1}, p = 2/3, no delay. */
        public static Schedule defaults() {
            return new Schedule(0.9999, 0.0, 1.0, 2.0 / 3.0, 0);
        }

        /**
         * The decay used by the {@code n}-th update (1-based): 0 when {@code k = n − updateAfterStep − 1 ≤ 0},
         * else {@code min(maxDecay, max(minDecay, 1 − (1 + k/invGamma)^(−p)))}.
         *
         * @param n the update number, 1-based (0 and negative numbers give 0)
         * @return the decay in {@code [0, maxDecay]}
         */
        public double decay(long n) {
            if (n <= updateAfterStep) {             // also keeps n − updateAfterStep − 1 from overflowing below
                return 0.0;
            }
            long k = n - updateAfterStep - 1;
            if (k <= 0) {
                return 0.0;
            }
            double d = 1.0 - Math.pow(1.0 + k / invGamma, -power);
            return Math.max(minDecay, Math.min(maxDecay, d));
        }
    }

    private final Backend backend;
    private final Schedule schedule;
    private final TensorScope scope = TensorScope.open();
    private final Map<String, Parameter> params;
    private final Map<String, Tensor> shadow = new LinkedHashMap<>();
    private long updates;

    /**
     * Averages of {@code parameters} (by state-dict name), initialised to their current values.
     *
     * @param backend    the backend of the parameters; the F32 averages are allocated on it
     * @param parameters the parameters by state-dict name (the map is copied; its iteration order is kept)
     * @param schedule   the warm-up schedule
     * @throws NullPointerException     when an argument is null
     * @throws IllegalArgumentException when a parameter is not on {@code backend}'s device or not F32
     * @throws IllegalStateException    when a parameter's scope is closed
     */
    public Ema(Backend backend, Map<String, Parameter> parameters, Schedule schedule) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        this.params = new LinkedHashMap<>(parameters);
        try {
            for (Map.Entry<String, Parameter> e : params.entrySet()) {
                Tensor s = backend.empty(scope, DType.F32, e.getValue().shape());
                backend.copy(e.getValue().value(), s);
                shadow.put(e.getKey(), s);
            }
        } catch (RuntimeException ex) {
            scope.close();
            throw ex;
        }
    }

    /** The schedule. */
    public Schedule schedule() {
        return schedule;
    }

    /** Updates so far. */
    public long updates() {
        return updates;
    }

    /**
     * Sets the update counter (when resuming; the next update is number {@code n + 1}).
     *
     * @param n updates already made, in {@code [0, 2^63 − 2]}
     * @throws IllegalArgumentException when {@code n} is negative or {@link Long#MAX_VALUE}
     */
    public void setUpdates(long n) {
        if (n < 0 || n == Long.MAX_VALUE) {
            throw new IllegalArgumentException("EMA update count must be in [0, 2^63 - 2] (the next update is "
                    + "counted with it), got " + n);
        }
        updates = n;
    }

    /** The averaged weights by parameter name (live tensors). */
    public Map<String, Tensor> averages() {
        return Collections.unmodifiableMap(shadow);
    }

    /**
     * One update after an optimizer step: {@code ema = d·ema + (1 − d)·θ} with {@code d = schedule.decay(n)}.
     *
     * @return the decay used
     * @throws IllegalStateException after {@link #close()}, when a parameter's scope is closed (nothing is changed
     *                               then), or when the update count would pass {@code 2^63 − 1}
     */
    public double update() {
        if (!scope.isAlive()) {
            throw new IllegalStateException("Ema is closed");
        }
        if (updates == Long.MAX_VALUE) {
            throw new IllegalStateException("EMA update count " + updates + " cannot grow further");
        }
        for (Parameter p : params.values()) {           // all or nothing: no average moved when a parameter is freed
            p.value().checkAlive();
        }
        updates++;
        double d = schedule.decay(updates);
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            Tensor s = shadow.get(e.getKey());
            backend.axpby((float) d, s, (float) (1.0 - d), e.getValue().value(), s);
        }
        return d;
    }

    /**
     * Copies the averages into the parameters' values (e.g. for evaluation or export).
     *
     * @throws IllegalStateException after {@link #close()}, or when a parameter's scope is closed
     */
    public void copyToParameters() {
        if (!scope.isAlive()) {
            throw new IllegalStateException("Ema is closed");
        }
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            backend.copy(shadow.get(e.getKey()), e.getValue().value());
        }
    }

    /** Frees the averages. */
    @Override
    public void close() {
        if (scope.isAlive()) {
            scope.close();
        }
    }
}
