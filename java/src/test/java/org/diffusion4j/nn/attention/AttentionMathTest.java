package org.diffusion4j.nn.attention;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link AttentionMath#exp2} against float64 {@code 2^x} over its whole domain, and its edge cases. */
class AttentionMathTest {

    @Test
    void exp2IsWithinAnUlpOfFloat64() {
        double worst = 0;
        float worstAt = 0;
        for (int i = 0; i <= 1_300_000; i++) {
            float x = (float) (-125.0 + i * 1e-4 * 0.9617);     // a non-round step, so f takes many values
            if (x > 0.5f) {
                break;
            }
            double ref = Math.pow(2, x);
            double rel = Math.abs(AttentionMath.exp2(x) - ref) / ref;
            if (rel > worst) {
                worst = rel;
                worstAt = x;
            }
        }
        // float spacing is 2^-23 ~ 1.19e-7 relative at worst; measured ~7e-8
        assertTrue(worst < 1.2e-7, "max relative error " + worst + " at x = " + worstAt);
    }

    @Test
    void exp2EdgeCases() {
        for (int k = 0; k <= 125; k++) {
            assertEquals((float) Math.pow(2, -k), AttentionMath.exp2(-k), "2^-" + k + " must be exact");
        }
        assertEquals((float) Math.pow(2, -125), AttentionMath.exp2(-1000f), "clamped below -125");
        assertEquals((float) Math.pow(2, -125), AttentionMath.exp2(Float.NEGATIVE_INFINITY), "clamped below -125");
        assertTrue(Float.isNaN(AttentionMath.exp2(Float.NaN)), "NaN propagates");
        assertEquals(1f, AttentionMath.rescale(3.5f, 3.5f), "no rescale when the maximum is unchanged");
        assertEquals(0.25f, AttentionMath.rescale(1f, 3f));
    }

    @Test
    void logSumExpAndShiftInvertEachOther() {
        // L = mc ln2 + ln l; Lc = L log2 e = mc + log2 l
        float l = AttentionMath.logSumExp(10f, 4.0);
        assertEquals(10 * Math.log(2) + Math.log(4), l, 1e-6);
        assertEquals(12.0, AttentionMath.lseShift(l), 1e-5);
        assertEquals(0.5f * (3f - 1f), AttentionMath.dScore(0.5f, 3f, 1f));
    }
}
