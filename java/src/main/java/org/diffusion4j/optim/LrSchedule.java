package org.diffusion4j.optim;

/**
 * A learning rate per optimizer step {@code step = 0, 1, 2, ...} (the number of steps taken before this one). The
 * value is the {@code lr} of {@link AdamW#step(double)} (called {@code learningRate} in the training
 * configuration).
 */
@FunctionalInterface
public interface LrSchedule {

    /**
     * The learning rate of step {@code step}.
     *
     * @param step steps taken before this one, {@code ≥ 0}
     * @return the learning rate, finite and {@code ≥ 0} for the schedules of this interface
     * @throws IllegalArgumentException for a negative {@code step} (the schedules of this interface)
     */
    double lr(long step);

    /**
     * The same rate at every step.
     *
     * @param lr the learning rate, finite, {@code ≥ 0}
     * @throws IllegalArgumentException for a negative or non-finite {@code lr}
     */
    static LrSchedule constant(double lr) {
        if (!(lr >= 0 && Double.isFinite(lr))) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + lr);
        }
        return step -> {
            if (step < 0) {
                throw new IllegalArgumentException("step must be >= 0, got " + step);
            }
            return lr;
        };
    }

    /**
     * Linear warm-up then cosine decay (Loshchilov &amp; Hutter 2017, SGDR, eq. 5, one half-cycle; Goyal et al.
     * 2017 for the warm-up), as {@code get_cosine_schedule_with_warmup} of transformers/diffusers with a floor:
     * <pre>
     *   step &lt; warmup:  lr = peak·step/warmup
     *   otherwise:      q = min(1, (step − warmup)/max(1, total − warmup)),
     *                   lr = minLr + (peak − minLr)·½(1 + cos(π q))
     * </pre>
     * so {@code lr(0) = 0} with warm-up, {@code lr(warmup) = peak}, {@code lr(total) = minLr}, and
     * {@code minLr} after {@code total} (transformers' schedule has no floor and rises again past {@code total}).
     *
     * @param peak   {@code ≥ 0}
     * @param warmup warm-up steps {@code ≥ 0}
     * @param total  total steps {@code ≥ warmup}
     * @param minLr  in {@code [0, peak]}
     * @throws IllegalArgumentException naming the bad value
     */
    static LrSchedule warmupCosine(double peak, long warmup, long total, double minLr) {
        if (!(peak >= 0 && Double.isFinite(peak))) {
            throw new IllegalArgumentException("peak learning rate must be finite and >= 0, got " + peak);
        }
        if (warmup < 0 || total < warmup) {
            throw new IllegalArgumentException("need 0 <= warmup <= total, got warmup=" + warmup + ", total=" + total);
        }
        if (!(minLr >= 0 && minLr <= peak)) {
            throw new IllegalArgumentException("minimum learning rate must be in [0, peak = " + peak + "], got "
                    + minLr);
        }
        return step -> {
            if (step < 0) {
                throw new IllegalArgumentException("step must be >= 0, got " + step);
            }
            if (step < warmup) {
                double v = peak * step;                    // (peak·step)/warmup as always, unless it overflows
                return Double.isFinite(v) ? v / warmup : peak * ((double) step / warmup);
            }
            double q = Math.min(1.0, (double) (step - warmup) / Math.max(1, total - warmup));
            return minLr + (peak - minLr) * 0.5 * (1.0 + Math.cos(Math.PI * q));
        };
    }
}
