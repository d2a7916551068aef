package org.diffusion4j.random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Modifier;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Accuracy of the float transforms against float64 references of the same inputs, and the extremes of the
 * Box–Muller inputs. Errors are in ulps of the float nearest the reference. The bounds are the measured maxima
 * rounded up (exhaustive runs: log 0.94 ulp on every float of [2^-32, 1], sin/cos 1.015 ulp on all 2^24
 * angles, normals 2.59 ulp on 5e7 random word pairs).
 */
class PhiloxAccuracyTest {

    private static double ulpError(float got, double ref) {
        float r = (float) ref;
        double ulp = Math.ulp(r == 0f ? Float.MIN_NORMAL : Math.abs(r));
        return Math.abs(got - ref) / ulp;
    }

    /** cos and sin of {@code 2 pi u2}, {@code u2 = (b >>> 8) / 2^24}, in float64 with an exact quarter-turn reduction. */
    private static double[] cosSinRef(int b) {
        int k = b >>> 8;
        int q = (k + 0x20_0000) >>> 22;
        double t = (k - ((long) q << 22)) / 16777216.0;   // exact
        double c = Math.cos(2 * Math.PI * t);
        double s = Math.sin(2 * Math.PI * t);
        return switch (q & 3) {
            case 0 -> new double[] {c, s};
            case 1 -> new double[] {-s, c};
            case 2 -> new double[] {-c, -s};
            default -> new double[] {s, -c};
        };
    }

    @Test
    void logIsWithinOneUlpOnTheBoxMullerRange() {
        // every 5th float of [2^-32, 1] (all 32 binades) plus the exact powers of two and the reduction edges
        double worst = 0;
        float worstAt = 0;
        int lo = Float.floatToRawIntBits(0x1p-32f);
        int hi = Float.floatToRawIntBits(1f);
        for (int bits = lo; bits <= hi; bits += 5) {
            float u = Float.intBitsToFloat(bits);
            double err = ulpError(Philox.log(u), Math.log(u));
            if (err > worst) {
                worst = err;
                worstAt = u;
            }
        }
        for (int e = -32; e <= 0; e++) {
            for (float u : new float[] {Math.scalb(1f, e), Math.scalb(0.70710677f, e), Math.scalb(0.7071068f, e),
                    Math.scalb(0.99999994f, e)}) {
                if (u >= 0x1p-32f && u <= 1f) {
                    worst = Math.max(worst, ulpError(Philox.log(u), Math.log(u)));
                }
            }
        }
        assertEquals(0f, Philox.log(1f));
        assertTrue(worst <= 0.95, "log error " + worst + " ulp at " + worstAt);
    }

    /**
     * {@code Philox.log} looked like {@code Math.log} but gives finite nonsense outside its domain ({@code log(0)}
     * is -88.03): it is not public API.
     */
    @Test
    void theNarrowLogarithmIsNotPublic() throws NoSuchMethodException {
        int modifiers = Philox.class.getDeclaredMethod("log", float.class).getModifiers();
        assertTrue(!Modifier.isPublic(modifiers) && !Modifier.isProtected(modifiers),
                "Philox.log must stay package-private: " + Modifier.toString(modifiers));
    }

    @Test
    void radiusIsWithinOneUlp() {
        double worst = 0;
        for (long w = 0; w < (1L << 32); w += 4099) {
            int a = (int) w;
            double ref = Math.sqrt(-2 * Math.log(Philox.boxMullerU1(a)));
            worst = Math.max(worst, ulpError(Philox.radius(a), ref));
        }
        assertTrue(worst <= 1.0, "radius error " + worst + " ulp");
    }

    @Test
    void cosAndSinAreWithinAboutOneUlpOnEveryAngle() {
        double worstC = 0;
        double worstS = 0;
        for (int k = 0; k < (1 << 24); k++) {
            int b = k << 8 | (k & 0xFF);                    // the low 8 bits of the word must not matter
            double[] ref = cosSinRef(b);
            worstC = Math.max(worstC, ulpError(Philox.cosTurns(b), ref[0]));
            worstS = Math.max(worstS, ulpError(Philox.sinTurns(b), ref[1]));
        }
        assertTrue(worstC <= 1.02 && worstS <= 1.02, "cos " + worstC + " ulp, sin " + worstS + " ulp");
        // exact at the quarter turns
        assertEquals(1f, Philox.cosTurns(0));
        assertEquals(0f, Philox.sinTurns(0));
        assertEquals(1f, Philox.sinTurns(0x40_0000 << 8));
        assertEquals(-1f, Philox.cosTurns(0x80_0000 << 8));
        assertEquals(-1f, Philox.sinTurns(0xC0_0000 << 8));
    }

    @Test
    void normalsAreWithinThreeUlpOfFloat64BoxMuller() {
        SplittableRandom rnd = new SplittableRandom(7);
        double worstUlp = 0;
        double worstScaled = 0;                              // |z - ref| / max(1, R) in units of 2^-24
        for (int n = 0; n < 2_000_000; n++) {
            int a = n < 4096 ? n - 2048 : rnd.nextInt();     // include both ends of u1
            int b = rnd.nextInt();
            double r = Math.sqrt(-2 * Math.log(Philox.boxMullerU1(a)));
            double[] cs = cosSinRef(b);
            float radius = Philox.radius(a);
            float z0 = radius * Philox.cosTurns(b);
            float z1 = radius * Philox.sinTurns(b);
            worstUlp = Math.max(worstUlp, Math.max(ulpError(z0, r * cs[0]), ulpError(z1, r * cs[1])));
            double scale = 0x1p-24 * Math.max(1, r);
            worstScaled = Math.max(worstScaled,
                    Math.max(Math.abs(z0 - r * cs[0]), Math.abs(z1 - r * cs[1])) / scale);
        }
        assertTrue(worstUlp <= 3.0, "normal error " + worstUlp + " ulp");
        assertTrue(worstScaled <= 3.5, "normal error " + worstScaled + " * 2^-24 * max(1, R)");
    }

    @Test
    void boxMullerExtremesAreFinite() {
        // u1 = 2^-32 at a = 0 and 1: the largest radius sqrt(64 ln 2)
        assertEquals(0x1p-32f, Philox.boxMullerU1(0));
        assertEquals(0x1p-32f, Philox.boxMullerU1(1));
        assertEquals(Philox.MAX_ABS_NORMAL, Philox.radius(0));
        assertEquals(Math.sqrt(64 * Math.log(2)), Philox.radius(0), 1e-6);
        // u1 = 1 - 2^-24 at a = 2^32 - 1: the smallest radius, still positive
        assertEquals(1f - 0x1p-24f, Philox.boxMullerU1(-1));
        float rMin = Philox.radius(-1);
        assertEquals(Math.sqrt(-2 * Math.log1p(-0x1p-24)), rMin, 1e-10);
        assertTrue(rMin > 3.45e-4f);
        // u1 is (a | 1) * 2^-32 truncated to 24 bits: exact below 2^24, and never above the exact value
        SplittableRandom rnd = new SplittableRandom(8);
        for (int n = 0; n < 100_000; n++) {
            int a = rnd.nextInt() >>> rnd.nextInt(32);
            double exact = ((a | 1) & 0xFFFF_FFFFL) * 0x1p-32;
            float u1 = Philox.boxMullerU1(a);
            assertTrue(u1 <= exact && exact - u1 < Math.ulp(u1), a + ": u1 " + u1 + " exact " + exact);
            if (((a | 1) & 0xFFFF_FFFFL) < (1L << 24)) {
                assertEquals(exact, u1, 0.0);
            }
        }
        // every radius finite and in range; every normal within MAX_ABS_NORMAL
        for (long w = 0; w < (1L << 32); w += 65_537) {
            float r = Philox.radius((int) w);
            assertTrue(r >= rMin && r <= Philox.MAX_ABS_NORMAL, "radius " + r + " of word " + w);
            float z = r * Philox.cosTurns((int) (w * 0x9E3779B9L));
            assertTrue(Math.abs(z) <= Philox.MAX_ABS_NORMAL);
        }
    }
}
