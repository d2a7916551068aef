package org.diffusion4j.training;

/**
 * Standard normal quantile function, for turning a uniform draw into a normal one (stratified and
 * quasi-random sampling of normal-based time samplers).
 */
public final class Gaussian {

    // Wichura 1988, Algorithm AS 241 (PPND16), coefficients of the three rational approximations.
    private static final double[] A = {
        3.3871328727963666080e0, 1.3314166789178437745e+2, 1.9715909503065514427e+3, 1.3731693765509461125e+4,
        4.5921953931549871457e+4, 6.7265770927008700853e+4, 3.3430575583588128105e+4, 2.5090809287301226727e+3};
    private static final double[] B = {
        1.0, 4.2313330701600911252e+1, 6.8718700749205790830e+2, 5.3941960214247511077e+3,
        2.1213794301586595867e+4, 3.9307895800092710610e+4, 2.8729085735721942674e+4, 5.2264952788528545610e+3};
    private static final double[] C = {
        1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0, 3.64784832476320460504e0,
        1.27045825245236838258e0, 2.41780725177450611770e-1, 2.27238449892691845833e-2, 7.74545014278341407640e-4};
    private static final double[] D = {
        1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
        1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4, 1.05075007164441684324e-9};
    private static final double[] E = {
        6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0, 2.96560571828504891230e-1,
        2.65321895265761230930e-2, 1.24266094738807843860e-3, 2.71155556874348757815e-5, 2.01033439929228813265e-7};
    private static final double[] F = {
        1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
        7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7, 2.04426310338993978564e-15};

    private Gaussian() {
    }

    /**
     * {@code Φ⁻¹(p)}, the standard normal quantile, to about 1e-16 relative (Wichura 1988, "Algorithm AS 241: The
     * Percentage Points of the Normal Distribution", Applied Statistics 37(3), PPND16). {@code Φ⁻¹(0) = −∞},
     * {@code Φ⁻¹(1) = +∞}.
     *
     * @throws IllegalArgumentException for {@code p} outside {@code [0, 1]} or NaN
     */
    public static double quantile(double p) {
        if (!(p >= 0 && p <= 1)) {
            throw new IllegalArgumentException("probability must be in [0, 1], got " + p);
        }
        if (p == 0) {
            return Double.NEGATIVE_INFINITY;
        }
        if (p == 1) {
            return Double.POSITIVE_INFINITY;
        }
        double q = p - 0.5;
        if (Math.abs(q) <= 0.425) {
            double r = 0.180625 - q * q;
            return q * poly(A, r) / poly(B, r);
        }
        double r = Math.sqrt(-Math.log(q < 0 ? p : 1.0 - p));
        double z = r <= 5.0 ? poly(C, r - 1.6) / poly(D, r - 1.6) : poly(E, r - 5.0) / poly(F, r - 5.0);
        return q < 0 ? -z : z;
    }

    /** Standard normal density {@code φ(z) = e^{−z²/2}/√(2π)}. */
    public static double density(double z) {
        return Math.exp(-0.5 * z * z) / Math.sqrt(2.0 * Math.PI);
    }

    /** Horner evaluation of {@code c[0] + c[1] x + … + c[7] x⁷}. */
    private static double poly(double[] c, double x) {
        double acc = c[c.length - 1];
        for (int i = c.length - 2; i >= 0; i--) {
            acc = acc * x + c[i];
        }
        return acc;
    }
}
