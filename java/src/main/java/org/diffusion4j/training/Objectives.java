package org.diffusion4j.training;

import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;

/** Checks that a (schedule, target) training objective is well defined over the sampled time range. */
public final class Objectives {

    private Objectives() {
    }

    /**
     * {@link #requireDefined(NoiseSchedule, Prediction, double)} over the whole range, {@code t_max = 1}.
     *
     * @throws IllegalArgumentException see there
     */
    public static void requireDefined(NoiseSchedule schedule, Prediction target) {
        requireDefined(schedule, target, 1.0);
    }

    /**
     * Refuses an {@code EPSILON} target when the sampled times reach zero SNR ({@code α(t_max) = 0}): zero
     * terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.2),
     * rectified flow at {@code t = 1}, the continuous cosine schedule at {@code t = 1}. There
     * {@code x_t = σ ε}: predicting ε is trivial and says nothing about {@code x0} ({@code x0 = (x_t − σ ε)/α}
     * is infinite, min-SNR weights are 0/0). Use {@code V} or {@code VELOCITY}, or sample {@code t ≤ t_max} with
     * {@code α(t_max) > 0}.
     *
     * @param tMax the largest time the t-sampler can produce, in {@code [0, 1]}
     * @throws IllegalArgumentException as described, naming the schedule
     */
    public static void requireDefined(NoiseSchedule schedule, Prediction target, double tMax) {
        NoiseSchedule.requireT(tMax);
        if (target == Prediction.EPSILON && schedule.alpha(tMax) == 0) {
            throw new IllegalArgumentException("an EPSILON target is undefined at zero SNR: " + schedule
                    + " has alpha(" + tMax + ") = 0 (zero terminal SNR; Lin et al. 2023, sec. 3.2). Use a V or"
                    + " VELOCITY target, or sample t <= tMax with alpha(tMax) > 0");
        }
    }
}
