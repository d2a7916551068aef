package org.diffusion4j.cli;

import org.diffusion4j.random.Philox;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The toy distributions: exact support (noise is bounded by {@link Philox#MAX_ABS_NORMAL}) and first moments within
 * five standard errors of their analytic values, plus Philox determinism.
 */
class Toy2dTest {

    static final int N = 16_000;
    static final long SEED = 12345;
    /** Largest length of a 2-D Philox normal pair, in units of its std. */
    static final double MAX_PAIR = Philox.MAX_ABS_NORMAL * Math.sqrt(2);

    @Test
    void checkerboardFillsTheDarkSquaresEvenly() {
        float[] p = Toy2d.CHECKERBOARD.sample(N, SEED, 7, 0);
        int[] counts = new int[16];
        double fracX = 0;
        double fracY = 0;
        for (int i = 0; i < N; i++) {
            double x = p[2 * i];
            double y = p[2 * i + 1];
            assertTrue(x >= -2 && x < 2 && y >= -2 && y < 2, "point " + i + " (" + x + ", " + y + ") off the board");
            int cx = (int) Math.floor(x);
            int cy = (int) Math.floor(y);
            assertEquals(0, Math.floorMod(cx + cy, 2), "point " + i + " (" + x + ", " + y + ") on a light square");
            counts[4 * (cy + 2) + (cx + 2)]++;
            fracX += x - cx;
            fracY += y - cy;
        }
        // each dark square holds a Binomial(N, 1/8) count: mean 2000, std sqrt(N/8 · 7/8) ≈ 41.8
        double sd = Math.sqrt(N / 8.0 * 7 / 8);
        for (int k = 0; k < 16; k++) {
            if (Math.floorMod(k % 4 + k / 4, 2) == 0) {
                assertEquals(N / 8.0, counts[k], 5 * sd, "square " + k + ": " + Arrays.toString(counts));
            } else {
                assertEquals(0, counts[k], "light square " + k);
            }
        }
        // uniform within a square: the offset has mean 1/2 and std sqrt(1/12)
        double se = Math.sqrt(1 / 12.0 / N);
        assertEquals(0.5, fracX / N, 5 * se);
        assertEquals(0.5, fracY / N, 5 * se);
    }

    @Test
    void eightGaussiansHaveMeanZeroAndStayNearTheirModes() {
        float[] p = Toy2d.GAUSSIANS8.sample(N, SEED, 3, 0);
        double sx = 0;
        double sy = 0;
        double r2 = 0;
        double d2 = 0;
        int[] modes = new int[8];
        double bound = Toy2d.GAUSSIAN_STD * MAX_PAIR + 1e-5;
        for (int i = 0; i < N; i++) {
            double x = p[2 * i];
            double y = p[2 * i + 1];
            sx += x;
            sy += y;
            r2 += x * x + y * y;
            int k = Math.floorMod((int) Math.round(Math.atan2(y, x) / (Math.PI / 4)), 8);
            double d = Math.hypot(x - 2 * Math.cos(Math.PI * k / 4), y - 2 * Math.sin(Math.PI * k / 4));
            assertTrue(d <= bound, "point " + i + " is " + d + " from its nearest mode (bound " + bound + ")");
            modes[k]++;
            d2 += d * d;
        }
        // per coordinate variance 4·E[cos²] + s² = 2 + s²
        double se = Math.sqrt((2 + Toy2d.GAUSSIAN_STD * Toy2d.GAUSSIAN_STD) / N);
        assertEquals(0, sx / N, 5 * se);
        assertEquals(0, sy / N, 5 * se);
        // |p|² = 4 + 4s(μ̂·ε) + s²|ε|²: mean 4 + 2s², variance 16s² + 4s⁴ (ε standard normal in 2-D)
        double s = Toy2d.GAUSSIAN_STD;
        assertEquals(4 + 2 * s * s, r2 / N, 5 * Math.sqrt((16 * s * s + 4 * s * s * s * s) / N));
        // squared distance to the mode: s²|ε|², mean 2s², variance 4s⁴
        assertEquals(2 * s * s, d2 / N, 5 * 2 * s * s / Math.sqrt(N));
        double sd = Math.sqrt(N / 8.0 * 7 / 8);
        for (int c : modes) {
            assertEquals(N / 8.0, c, 5 * sd, Arrays.toString(modes));
        }
    }

    @Test
    void moonsLieOnTheirTwoArcsAndAreCentred() {
        float[] p = Toy2d.MOONS.sample(N, SEED, 5, 0);
        double bound = Toy2d.MOONS_NOISE * MAX_PAIR / 1.5 + 1e-5;               // in the unscaled moon units
        double sx = 0;
        double sy = 0;
        for (int i = 0; i < N; i++) {
            sx += p[2 * i];
            sy += p[2 * i + 1];
            double x = p[2 * i] / 1.5 + 0.5;
            double y = p[2 * i + 1] / 1.5 + 0.25;
            double d = Math.min(arc(x, y, 0, 0, true), arc(x, y, 1, 0.5, false));
            assertTrue(d <= bound, "point " + i + " is " + d + " from both moons (bound " + bound + ")");
        }
        // x: 1.5·(mx − 1/2) with Var(mx) = 3/4 → Var 1.6875 + noise²; y: Var(my) = 1/2 − ... < 1, so 1.5² bounds it
        double se = Math.sqrt(2.25 + 0.01) / Math.sqrt(N);
        assertEquals(0, sx / N, 5 * se);
        assertEquals(0, sy / N, 5 * se);
    }

    /** Distance from (x, y) to the unit half circle about (cx, cy): the upper half when {@code upper}, else the lower. */
    static double arc(double x, double y, double cx, double cy, boolean upper) {
        double dx = x - cx;
        double dy = y - cy;
        if (upper ? dy >= 0 : dy <= 0) {
            return Math.abs(Math.hypot(dx, dy) - 1);
        }
        return Math.min(Math.hypot(dx - 1, dy), Math.hypot(dx + 1, dy));
    }

    @Test
    void swissRollStaysInItsRadiusBand() {
        float[] p = Toy2d.SWISS_ROLL.sample(N, SEED, 9, 0);
        double noise = Toy2d.SWISS_NOISE * MAX_PAIR + 1e-5;
        double lo = 1.5 * Math.PI / 5 - noise;
        double hi = 4.5 * Math.PI / 5 + noise;
        double sr = 0;
        for (int i = 0; i < N; i++) {
            double r = Math.hypot(p[2 * i], p[2 * i + 1]);
            assertTrue(r >= lo && r <= hi, "point " + i + " at radius " + r + " outside [" + lo + ", " + hi + "]");
            sr += r;
        }
        // r/5 is uniform on [0.3π, 0.9π] before noise: mean 0.6π, std 0.6π/sqrt(12); the noise moves |p| by <= noise
        double se = 0.6 * Math.PI / Math.sqrt(12) / Math.sqrt(N);
        assertEquals(0.6 * Math.PI, sr / N, 5 * se + 0.01);
    }

    @Test
    void drawsAreDeterministicAndIndexAddressed() {
        for (Toy2d d : Toy2d.values()) {
            float[] all = d.sample(100, SEED, 1, 0);
            assertArrayEquals(all, d.sample(100, SEED, 1, 0), d.id());
            assertArrayEquals(Arrays.copyOfRange(all, 60, 200), d.sample(70, SEED, 1, 30), d.id() + " chunk");
            assertFalse(Arrays.equals(all, d.sample(100, SEED + 1, 1, 0)), d.id() + " seed");
            assertFalse(Arrays.equals(all, d.sample(100, SEED, 2, 0)), d.id() + " stream");
            assertEquals(d, Toy2d.byName(d.id().toUpperCase()));
        }
        assertEquals(Toy2d.MOONS, Toy2d.byName("two-moons"));
        assertEquals(Toy2d.GAUSSIANS8, Toy2d.byName("8-gaussians"));
        assertEquals(Toy2d.SWISS_ROLL, Toy2d.byName("swiss_roll"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Toy2d.byName("spiral"));
        assertTrue(e.getMessage().contains("spiral"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Toy2d.CHECKERBOARD.sample(-1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> Toy2d.CHECKERBOARD.sample(1, 0, 0, -1));
    }
}
