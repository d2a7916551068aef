package org.diffusion4j.cli;

import org.diffusion4j.training.TrainingConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Where the CLI's sampling grids start: at pure noise for models trained up to it (logit-normal's largest draw,
 * 0.99973, counts as reaching it, as SD3 samples from σ = 1), at the trained range's end for ranges that stop short.
 */
class SamplingGridStartTest {

    @Test
    void gridsStartAtPureNoiseUnlessTrainingStoppedShortOfIt() {
        TrainingConfig flow = TrainingConfig.defaults(0, 8, 100);
        assertEquals(1.0, Sampling.grid(flow, "flow-midpoint", 8).first().t(), 0, "uniform");
        assertEquals(1.0, Sampling.grid(flow.withTimeSampling("logit-normal", "none"), "flow-midpoint", 8).first().t(),
                0, "logit-normal");
        assertEquals(1.0, Sampling.grid(flow.withTimeSampling("mode:1.29", "none"), "flow-euler", 8).first().t(), 0,
                "mode (decreasing in u)");
        assertEquals(0.9, Sampling.grid(flow.withTimeSampling("uniform:0:0.9", "none"), "flow-euler", 8).first().t(),
                1e-12, "a range that stops short");
        TrainingConfig eps = flow.withTimeSampling("uniform:0:0.99", "none")       // the range first: eps needs it
                .withObjective(TrainingConfig.Objective.EPSILON, "cosine");
        assertEquals(0.99, Sampling.grid(eps, "dpmpp-2m", 8).first().t(), 1e-12, "eps on cosine");
    }
}
