package org.diffusion4j.sampling;

import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.VpSchedule;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@link SamplingGrid#standard}: the documented grid for each kind of schedule. */
class StandardGridTest {

    @Test
    void rectifiedFlowIsUniformInTime() {
        SamplingGrid flow = SamplingGrid.standard(RectifiedFlowSchedule.unshifted(), 4, true);
        assertEquals(5, flow.levels().length);
        for (int i = 0; i <= 4; i++) {
            assertEquals(1 - i / 4.0, flow.level(i).t(), 1e-15, "level " + i);
        }
        // other samplers convert to ε, undefined at α = 0: they start at t = 0.999
        assertEquals(0.999, SamplingGrid.standard(RectifiedFlowSchedule.unshifted(), 4, false).first().t(), 1e-15);
        assertEquals(0.0, SamplingGrid.standard(RectifiedFlowSchedule.unshifted(), 4, false).last().t(), 0);
    }

    @Test
    void discreteVpTakesTrailingTimesteps() {
        DiscreteVpSchedule d = DiscreteVpSchedule.scaledLinear(1000);
        SamplingGrid g = SamplingGrid.standard(d, 4, false);
        SamplingGrid want = SamplingGrid.ofTimesteps(d, 999, 749, 499, 249);
        assertEquals(want.levels().length, g.levels().length);
        for (int i = 0; i < g.levels().length; i++) {
            assertEquals(want.level(i), g.level(i), "level " + i);
        }
        assertEquals(11, SamplingGrid.standard(DiscreteVpSchedule.scaledLinear(10), 50, false).levels().length,
                "at most the training timesteps");
    }

    @Test
    void continuousSchedulesAreUniformInLogSnrThenClean() {
        VpSchedule vp = VpSchedule.song2021();
        SamplingGrid g = SamplingGrid.standard(vp, 5, false);
        assertEquals(6, g.levels().length);
        double l0 = vp.logSnr(g.level(0).t());
        double step = vp.logSnr(g.level(1).t()) - l0;
        for (int i = 1; i < 5; i++) {
            assertEquals(step, vp.logSnr(g.level(i).t()) - vp.logSnr(g.level(i - 1).t()), 1e-9, "level " + i);
        }
        assertEquals(1e-3, g.level(4).t(), 1e-12);
        assertEquals(0.0, g.last().t(), 0);
        assertThrows(IllegalArgumentException.class, () -> SamplingGrid.standard(vp, 5, true), "flow sampler");
        assertThrows(IllegalArgumentException.class, () -> SamplingGrid.standard(vp, 0, false));
    }
}
