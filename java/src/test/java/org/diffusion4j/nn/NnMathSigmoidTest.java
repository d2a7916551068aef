package org.diffusion4j.nn;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link NnMath#sigmoid} (branch-free polynomial with scaling and squaring, unclamped) against {@code 1/(1 + Math.exp(−z))} in
 * float64 rounded to float: within 1 ulp of the rounded reference everywhere, subnormal results included, and the
 * exact saturation and special values.
 */
class NnMathSigmoidTest {

    private static void check(float z) {
        float ref = (float) (1.0 / (1.0 + Math.exp(-(double) z)));
        float got = NnMath.sigmoid(z);
        assertTrue(Math.abs(got - ref) <= Math.ulp(ref), "sigmoid(" + z + ") = " + got + ", float64 reference " + ref);
    }

    @Test
    void withinOneUlpOfTheFloat64ReferenceOverTheWholeRange() {
        SplittableRandom r = new SplittableRandom(20261130L);
        for (int i = 0; i < 200_000; i++) {
            check((float) r.nextDouble(-120, 120));      // includes the subnormal outputs below z ≈ −87.3
            check((float) r.nextDouble(-1, 1));
            check((float) (r.nextDouble(-1, 1) * Math.pow(10, r.nextInt(-40, 3))));
            // |z| beyond the polynomial's fitted range [0, 104] and beyond e^|z|'s float64 overflow at 709.8
            check((float) Math.copySign(Math.pow(10, r.nextDouble(2, 38.5)), r.nextDouble(-1, 1)));
        }
        for (float z = -104.5f; z <= 20f; z += 0.25f) {  // both sides of the clamp and of z = 0
            check(z);
        }
    }

    @Test
    void specialValuesAndSaturation() {
        assertEquals(0.5f, NnMath.sigmoid(0f));
        assertEquals(0.5f, NnMath.sigmoid(-0f));
        assertEquals(0.5f, NnMath.sigmoid(Float.MIN_VALUE));
        assertEquals(0f, NnMath.sigmoid(-104f), "e^-104 is below half the smallest subnormal");
        assertEquals(0f, NnMath.sigmoid(-500f));
        assertEquals(0f, NnMath.sigmoid(Float.NEGATIVE_INFINITY));
        assertEquals(0f, NnMath.sigmoid(-Float.MAX_VALUE));
        assertEquals(1f, NnMath.sigmoid(18f), "1 − e^-18 rounds to 1 in float");
        assertEquals(1f, NnMath.sigmoid(500f));
        assertEquals(1f, NnMath.sigmoid(Float.POSITIVE_INFINITY));
        assertTrue(Float.isNaN(NnMath.sigmoid(Float.NaN)));
        assertTrue(NnMath.sigmoid(-100f) > 0f, "subnormal result, not flushed: " + NnMath.sigmoid(-100f));
    }

    @Test
    void bulkFormEqualsTheScalarFormBitForBit() {
        SplittableRandom r = new SplittableRandom(7);
        float[] z = new float[100_003];
        for (int i = 0; i < z.length; i++) {
            z[i] = switch (i % 4) {
                case 0 -> (float) r.nextDouble(-120, 120);
                case 1 -> (float) r.nextDouble(-3, 3);
                case 2 -> (float) (r.nextDouble(-1, 1) * Math.pow(10, r.nextInt(-45, 39)));
                default -> Float.intBitsToFloat(r.nextInt());     // every bit pattern: NaNs, infinities, subnormals
            };
        }
        float[] out = new float[z.length];
        NnMath.sigmoid(z, out, z.length - 1);
        assertEquals(0f, out[z.length - 1], "len elements written, no more");
        for (int i = 0; i < z.length - 1; i++) {                   // NaN payloads may differ; NaN stays NaN
            assertEquals(Float.floatToIntBits(NnMath.sigmoid(z[i])), Float.floatToIntBits(out[i]),
                    "element " + i + ", z = " + z[i]);
        }
        NnMath.sigmoid(z, z, z.length);                            // in place
        for (int i = 0; i < z.length - 1; i++) {
            assertEquals(Float.floatToIntBits(out[i]), Float.floatToIntBits(z[i]), "in place, element " + i);
        }
    }
}
