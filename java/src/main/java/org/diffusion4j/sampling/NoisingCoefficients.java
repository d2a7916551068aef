package org.diffusion4j.sampling;

import java.util.Objects;

/**
 * Per-sample coefficients of the fused forward-noising op ({@link DiffusionOps#forwardNoise}):
 * {@code x_t = a_b·x0 + s_b·ε} and {@code target = c_b·x0 + d_b·ε}, computed on the host in {@code double}
 * (for a schedule: {@code a = α(t_b)}, {@code s = σ(t_b)}, {@code (c, d)} from
 * {@link org.diffusion4j.schedule.Prediction#x0Coefficient} / {@code epsCoefficient}).
 *
 * <p>The arrays are shared, not copied, on construction and on access (this record is built once per pass on a
 * hot path): the compact constructor's checks hold for their contents at that moment only, so do not modify an
 * array after handing it over.
 *
 * @param a coefficient of {@code x0} in {@code x_t}
 * @param s coefficient of {@code ε} in {@code x_t}
 * @param c coefficient of {@code x0} in the target
 * @param d coefficient of {@code ε} in the target
 */
public record NoisingCoefficients(double[] a, double[] s, double[] c, double[] d) {

    /**
     * Validates equal lengths and values finite in float32 (the kernels' arithmetic).
     *
     * @throws IllegalArgumentException naming the offending array and index
     */
    public NoisingCoefficients {
        double[][] all = {a, s, c, d};
        String[] names = {"a", "s", "c", "d"};
        for (int i = 0; i < 4; i++) {
            Objects.requireNonNull(all[i], names[i]);
            if (all[i].length != a.length) {
                throw new IllegalArgumentException("noising coefficient " + names[i] + " has " + all[i].length
                        + " values, a has " + a.length);
            }
            for (int b = 0; b < a.length; b++) {
                if (!(Math.abs(all[i][b]) <= Float.MAX_VALUE)) {
                    throw new IllegalArgumentException("noising coefficient " + names[i] + "[" + b + "] = "
                            + all[i][b] + " is not finite in float32 (the kernels' arithmetic)");
                }
            }
        }
    }

    /** Number of samples. */
    public int batch() {
        return a.length;
    }
}
