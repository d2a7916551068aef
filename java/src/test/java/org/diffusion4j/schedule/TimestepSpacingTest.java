package org.diffusion4j.schedule;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class TimestepSpacingTest {

    @Test
    void trailingMatchesLinEtAl() {
        // diffusers timestep_spacing="trailing" (Lin et al. 2023, Table 2), T = 1000, N = 13:
        // np.round(np.arange(1000, 0, -1000/13)) - 1.
        assertArrayEquals(new int[] {999, 922, 845, 768, 691, 614, 537, 461, 384, 307, 230, 153, 76},
                TimestepSpacing.TRAILING.timesteps(1000, 13));
    }

    @Test
    void linspaceMatchesDiffusers() {
        // diffusers timestep_spacing="linspace", T = 1000, N = 10: round(linspace(0, 999, 10))[::-1].
        assertArrayEquals(new int[] {999, 888, 777, 666, 555, 444, 333, 222, 111, 0},
                TimestepSpacing.LINSPACE.timesteps(1000, 10));
    }

    @Test
    void leadingWithStableDiffusionOffset() {
        // diffusers tests/schedulers/test_scheduler_ddim.py::test_steps_offset: T = 1000, steps_offset = 1,
        // set_timesteps(5) -> [801, 601, 401, 201, 1].
        assertArrayEquals(new int[] {801, 601, 401, 201, 1}, TimestepSpacing.LEADING.timesteps(1000, 5, 1));
        // Derived from the same rule, k_i = (N-1-i)*floor(T/N) + 1 (Stable Diffusion's scheduler config,
        // steps_offset = 1): N = 10 -> step 100; N = 50 (the default of SD pipelines) -> step 20, 981 ... 1.
        assertArrayEquals(new int[] {901, 801, 701, 601, 501, 401, 301, 201, 101, 1},
                TimestepSpacing.LEADING.timesteps(1000, 10, 1));
        int[] fifty = TimestepSpacing.LEADING.timesteps(1000, 50, 1);
        assertEquals(50, fifty.length);
        assertEquals(981, fifty[0]);
        assertEquals(961, fifty[1]);
        assertEquals(1, fifty[49]);
        // Lin et al. 2023, Table 2: leading never samples the last training timestep T-1.
        assertArrayEquals(new int[] {900, 800, 700, 600, 500, 400, 300, 200, 100, 0},
                TimestepSpacing.LEADING.timesteps(1000, 10));
        // Non-divisible T: step = floor(1000/3) = 333.
        assertArrayEquals(new int[] {667, 334, 1}, TimestepSpacing.LEADING.timesteps(1000, 3, 1));
    }

    @Test
    void stepsOffsetOnlyMovesLeading() {
        assertArrayEquals(TimestepSpacing.TRAILING.timesteps(1000, 7),
                TimestepSpacing.TRAILING.timesteps(1000, 7, 1));
        assertArrayEquals(TimestepSpacing.LINSPACE.timesteps(1000, 7),
                TimestepSpacing.LINSPACE.timesteps(1000, 7, 1));
    }

    @Test
    void oneStepGrids() {
        assertArrayEquals(new int[] {999}, TimestepSpacing.TRAILING.timesteps(1000, 1));
        assertArrayEquals(new int[] {0}, TimestepSpacing.LINSPACE.timesteps(1000, 1));
        assertArrayEquals(new int[] {1}, TimestepSpacing.LEADING.timesteps(1000, 1, 1));
        assertArrayEquals(new int[] {0}, TimestepSpacing.TRAILING.timesteps(1, 1));
        assertArrayEquals(new int[] {0}, TimestepSpacing.LINSPACE.timesteps(1, 1));
        assertArrayEquals(new int[] {0}, TimestepSpacing.LEADING.timesteps(1, 1));
    }

    @Test
    void nEqualsTIsEveryTimestep() {
        int[] all = new int[1000];
        for (int i = 0; i < 1000; i++) {
            all[i] = 999 - i;
        }
        for (TimestepSpacing s : TimestepSpacing.values()) {
            assertArrayEquals(all, s.timesteps(1000, 1000), s.name());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TimestepSpacing.LEADING.timesteps(1000, 1000, 1));
        assertTrue(e.getMessage().contains("1000"), e.getMessage());
    }

    @Test
    void everyNAndTGivesStrictlyDecreasingInRangeGrids() {
        for (int t : new int[] {1, 2, 3, 7, 10, 97, 1000}) {
            for (int n = 1; n <= t; n++) {
                for (TimestepSpacing s : TimestepSpacing.values()) {
                    int[] g = s.timesteps(t, n);
                    assertEquals(n, g.length, s + " T=" + t + " N=" + n);
                    TimestepSpacing.requireTimesteps(g, t);  // throws on duplicates or out-of-range
                }
                if ((n - 1) * (t / n) + 1 <= t - 1) {
                    TimestepSpacing.requireTimesteps(TimestepSpacing.LEADING.timesteps(t, n, 1), t);
                }
            }
        }
        // Trailing always starts at T-1, linspace always covers both ends.
        for (int n = 1; n <= 50; n++) {
            assertEquals(999, TimestepSpacing.TRAILING.timesteps(1000, n)[0]);
        }
        int[] l = TimestepSpacing.LINSPACE.timesteps(1000, 37);
        assertEquals(999, l[0]);
        assertEquals(0, l[36]);
    }

    @Test
    void refusesImpossibleRequests() {
        assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.TRAILING.timesteps(1000, 0));
        assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.TRAILING.timesteps(1000, 1001));
        assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.LINSPACE.timesteps(0, 1));
        assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.LEADING.timesteps(1000, 10, -1));
    }

    @Test
    void userTimestepsAreValidated() {
        assertArrayEquals(new int[] {999, 500, 0}, TimestepSpacing.requireTimesteps(new int[] {999, 500, 0}, 1000));
        int[][] bad = {{}, {1000, 5}, {5, -1}, {5, 5}, {3, 7}};
        for (int[] g : bad) {
            assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.requireTimesteps(g, 1000),
                    java.util.Arrays.toString(g));
        }
        for (int t : new int[] {0, -5}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TimestepSpacing.requireTimesteps(new int[] {3, 1}, t));
            assertTrue(e.getMessage().contains("numTrainTimesteps must be >= 1, got " + t), e.getMessage());
        }
    }

    @Test
    void duplicateTimestepsFromRoundingAreDroppedAndUsable() {
        // A Karras σ grid quantized to the nearest training timestep: ρ = 7 crowds the low-noise end, so many σ
        // round to the same k. After distinct() the grid is valid and every coefficient is finite.
        DiscreteVpSchedule sched = DiscreteVpSchedule.scaledLinear(1000);
        double[] sigmas = SigmaGrids.karras(400, sched.sigmaVeAt(0), sched.sigmaVeAt(999), 7);
        int[] quantized = new int[sigmas.length];
        for (int i = 0; i < sigmas.length; i++) {
            quantized[i] = sched.nearestTimestepFromSigmaVe(sigmas[i]);
        }
        int[] unique = TimestepSpacing.distinct(quantized);
        assertTrue(unique.length < quantized.length, "the quantized grid must contain duplicates");
        assertEquals(999, unique[0]);
        assertEquals(0, unique[unique.length - 1]);
        TimestepSpacing.requireTimesteps(unique, 1000);
        for (int k : unique) {
            assertTrue(Double.isFinite(sched.alphaAt(k)) && Double.isFinite(sched.sigmaAt(k)));
            assertTrue(Double.isFinite(sched.logSnrAt(k)));
        }
        assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.requireTimesteps(quantized, 1000));
        assertArrayEquals(new int[] {5, 3}, TimestepSpacing.distinct(new int[] {5, 5, 3, 3}));
        assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.distinct(new int[] {3, 5}));
    }

    @Test
    void namesFollowDiffusers() {
        assertEquals(TimestepSpacing.TRAILING, TimestepSpacing.fromName("trailing"));
        assertEquals(TimestepSpacing.LEADING, TimestepSpacing.fromName(" Leading "));
        assertEquals(TimestepSpacing.LINSPACE, TimestepSpacing.fromName("linspace"));
        assertThrows(IllegalArgumentException.class, () -> TimestepSpacing.fromName("karras"));
    }
}
