package org.diffusion4j.cli;

import org.diffusion4j.random.Philox;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Built-in 2-D toy distributions for the {@code demo} command, drawn from Philox so a {@code (seed, stream)} pair and
 * a point index always give the same point, on any machine and in any order.
 *
 * <p>Point {@code i} of stream {@code (seed, stream)} uses the Philox elements {@code 4i .. 4i+3} of that stream:
 * uniforms {@link Philox#uniform} and normals {@link Philox#normal}. The shapes follow the usual toy sets of the
 * normalising-flow and flow-matching literature (e.g. Grathwohl et al. 2019, "FFJORD", §5.1 and its
 * {@code toy_data} generators; scikit-learn's {@code make_moons} / {@code make_swiss_roll} for the two curves);
 * the scales below are this class's own, chosen so every set spans roughly {@code [-2.5, 2.5]²}.
 */
public enum Toy2d {

    /**
     * Uniform on the "dark" unit squares of a 4×4 board on {@code [-2, 2)²}: those with
     * {@code floor(x) + floor(y)} even (8 squares, density 1/8 on each).
     */
    CHECKERBOARD("checkerboard"),
    /**
     * Two interleaved half circles of radius 1 ({@code make_moons}: upper {@code (cos θ, sin θ)}, lower
     * {@code (1 − cos θ, 1/2 − sin θ)}, {@code θ ~ U[0, π]}), centred by {@code (−1/2, −1/4)}, scaled by 1.5, plus
     * Gaussian noise of std {@link #MOONS_NOISE}.
     */
    MOONS("moons"),
    /**
     * An equal mixture of 8 Gaussians of std {@link #GAUSSIAN_STD} centred at
     * {@code 2·(cos(kπ/4), sin(kπ/4))}, {@code k = 0..7}; mean exactly 0.
     */
    GAUSSIANS8("8gaussians"),
    /**
     * A 2-D Swiss roll: {@code r = 1.5π(1 + 2u)}, {@code u ~ U[0, 1)}, point {@code (r cos r, r sin r)/5} plus
     * Gaussian noise of std {@link #SWISS_NOISE}.
     */
    SWISS_ROLL("swissroll");

    /** Std of each component of {@link #GAUSSIANS8}. */
    public static final double GAUSSIAN_STD = 0.1;
    /** Noise std of {@link #MOONS}, in output units. */
    public static final double MOONS_NOISE = 0.06;
    /** Noise std of {@link #SWISS_ROLL}, in output units. */
    public static final double SWISS_NOISE = 0.05;

    private final String id;

    Toy2d(String id) {
        this.id = id;
    }

    /** The command-line name ({@code checkerboard}, {@code moons}, {@code 8gaussians}, {@code swissroll}). */
    public String id() {
        return id;
    }

    /**
     * The distribution named {@code name} (its {@link #id()}, case-insensitive; {@code two-moons}, {@code 8-gaussians}
     * and {@code swiss-roll} are accepted too).
     *
     * @throws IllegalArgumentException naming {@code name} and the valid names
     */
    public static Toy2d byName(String name) {
        String n = name == null ? "" : name.toLowerCase(Locale.ROOT).replace("-", "").replace("_", "");
        for (Toy2d d : values()) {
            if (d.id.equals(n)) {
                return d;
            }
        }
        switch (n) {
            case "twomoons":
                return MOONS;
            case "gaussians", "eightgaussians":
                return GAUSSIANS8;
            default:
                throw new IllegalArgumentException("--dataset: unknown dataset '" + name + "'; choose one of "
                        + Arrays.stream(values()).map(Toy2d::id).collect(Collectors.joining(", ")));
        }
    }

    /**
     * Points {@code first .. first + n − 1} of stream {@code (seed, stream)}, row-major {@code [n, 2]} float32.
     *
     * @throws IllegalArgumentException when {@code n < 0} or {@code first < 0}
     */
    public float[] sample(int n, long seed, long stream, long first) {
        if (n < 0 || first < 0) {
            throw new IllegalArgumentException("need n >= 0 and first >= 0, got n=" + n + ", first=" + first);
        }
        float[] out = new float[2 * n];
        for (int i = 0; i < n; i++) {
            long e = 4 * (first + i);
            // u0, u1 ∈ [0, 1) from Philox's (0, 1] uniforms; n2, n3 standard normals (one Box–Muller pair)
            double u0 = 1.0 - Philox.uniform(seed, stream, e);
            double u1 = 1.0 - Philox.uniform(seed, stream, e + 1);
            double n2 = Philox.normal(seed, stream, e + 2);
            double n3 = Philox.normal(seed, stream, e + 3);
            double x;
            double y;
            switch (this) {
                case CHECKERBOARD -> {
                    x = -2 + 4 * u0;
                    int cx = (int) Math.floor(x);                     // -2 .. 1
                    // u1 picks one of the two rows r ∈ {-2..1} with cx + r even, and the offset within it
                    double v = 2 * u1;                                 // [0, 2)
                    int pick = (int) Math.floor(v);                    // 0 or 1
                    int r = (Math.floorMod(cx, 2) == 0 ? -2 : -1) + 2 * pick;
                    y = r + (v - pick);
                }
                case MOONS -> {
                    double theta = Math.PI * u1;
                    double mx;
                    double my;
                    if (u0 < 0.5) {
                        mx = Math.cos(theta);
                        my = Math.sin(theta);
                    } else {
                        mx = 1 - Math.cos(theta);
                        my = 0.5 - Math.sin(theta);
                    }
                    x = 1.5 * (mx - 0.5) + MOONS_NOISE * n2;
                    y = 1.5 * (my - 0.25) + MOONS_NOISE * n3;
                }
                case GAUSSIANS8 -> {
                    int k = Math.min(7, (int) (8 * u0));
                    double a = Math.PI * k / 4;
                    x = 2 * Math.cos(a) + GAUSSIAN_STD * n2;
                    y = 2 * Math.sin(a) + GAUSSIAN_STD * n3;
                }
                case SWISS_ROLL -> {
                    double r = 1.5 * Math.PI * (1 + 2 * u0);
                    x = r * Math.cos(r) / 5 + SWISS_NOISE * n2;
                    y = r * Math.sin(r) / 5 + SWISS_NOISE * n3;
                }
                default -> throw new AssertionError(this);
            }
            out[2 * i] = (float) x;
            out[2 * i + 1] = (float) y;
        }
        return out;
    }
}
