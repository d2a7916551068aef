package org.diffusion4j.training;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link TrainingConfig.Builder}: fields set in any order and checked once; the same record as the {@code with…}
 * chain; a bad final combination is refused by name.
 */
class TrainingConfigBuilderTest {

    @Test
    void anOrderThatTheWithChainRefusesBuilds() {
        // ε-prediction is undefined at t = 1 of the cosine schedule (α = 0): the with-chain must narrow the time
        // sampler first, the builder takes the two in either order
        assertThrows(IllegalArgumentException.class,
                () -> TrainingConfig.defaults(1, 8, 100).withObjective(TrainingConfig.Objective.EPSILON, "cosine"));
        TrainingConfig viaWith = TrainingConfig.defaults(1, 8, 100).withTimeSampling("uniform:0:0.99", "none")
                .withObjective(TrainingConfig.Objective.EPSILON, "cosine").withMicroBatch(4);
        TrainingConfig viaBuilder = TrainingConfig.builder(1, 8, 100)
                .objective(TrainingConfig.Objective.EPSILON, "cosine").microBatch(4)
                .timeSampling("uniform:0:0.99", "none").build();
        assertEquals(viaWith, viaBuilder);
        assertEquals(viaBuilder, viaBuilder.toBuilder().build());
        assertEquals(TrainingConfig.defaults(3, 16, 50), TrainingConfig.builder(3, 16, 50).build());
    }

    @Test
    void everySetterReachesItsField() {
        var adamw = new org.diffusion4j.optim.AdamW.Hyper(0.8, 0.95, 1e-6, 0.01);
        var ema = new org.diffusion4j.optim.Ema.Schedule(0.99, 0, 1, 0.75, 0);
        TrainingConfig c = TrainingConfig.builder(1, 8, 100).seed(9).batch(12, 300).learningRate(2e-3, 10, 1e-5)
                .adamw(adamw).maxGradNorm(0.5).ema(ema).objective(TrainingConfig.Objective.V, "vp")
                .timeSampling("logit-normal", "min-snr:5").labelDropout(0.2).randomFlip(true).microBatch(3).build();
        assertEquals(new TrainingConfig(9, 12, 300, 2e-3, 10, 1e-5, adamw, 0.5, ema, TrainingConfig.Objective.V, "vp",
                "logit-normal", "min-snr:5", 0.2, true, 3), c);
    }

    /** {@code linear:T} with T beyond an int was cut to its low 32 bits ({@code 2^32 + 1} trained with T = 1). */
    @Test
    void aScheduleLengthBeyondAnIntIsRefused() {
        for (String spec : new String[] {"linear:4294967297", "linear:2147483648", "linear:0", "linear:-5"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TrainingConfig.parseSchedule(TrainingConfig.Objective.EPSILON, spec), spec);
            assertTrue(e.getMessage().contains(spec), e.getMessage());
        }
        assertEquals(1000, ((org.diffusion4j.schedule.DiscreteVpSchedule) TrainingConfig.parseSchedule(
                TrainingConfig.Objective.V, "linear")).numTrainTimesteps());
        assertEquals(50, ((org.diffusion4j.schedule.DiscreteVpSchedule) TrainingConfig.parseSchedule(
                TrainingConfig.Objective.V, "linear:50")).numTrainTimesteps());
        for (String spec : new String[] {"linear:50:3", "rf:3:1"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TrainingConfig.parseSchedule(TrainingConfig.Objective.FLOW, spec), spec);
            assertTrue(e.getMessage().contains("needs 1 parameter(s), got 2"), e.getMessage());
        }
    }

    @Test
    void aBadCombinationIsRefusedWhenBuilt() {
        TrainingConfig.Builder b = TrainingConfig.builder(1, 8, 100).microBatch(3);   // no error yet
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
        assertTrue(e.getMessage().contains("microBatch must divide batchSize 8"), e.getMessage());
    }
}
