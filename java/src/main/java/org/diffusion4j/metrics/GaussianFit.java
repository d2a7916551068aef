package org.diffusion4j.metrics;

import java.util.Objects;
import java.util.stream.IntStream;

/**
 * A Gaussian {@code N(mean, covariance)} in {@code D} dimensions, fitted to a feature set or given exactly: the
 * statistics the {@link FrechetDistance} compares, and what a caller caches for a fixed reference set (e.g.
 * the classifier features of a training split).
 *
 * <p>Arrays are copied in and out. The constructor checks shapes ({@code mean [D]}, {@code covariance [D, D]},
 * {@code D >= 1}), finiteness, non-negative variances and symmetry
 * ({@code |c_ij − c_ji| <= 1e-6 · (|c_ii| + |c_jj|) / 2}); positive semi-definiteness is checked where the
 * eigenvalues are computed ({@link FrechetDistance}).
 *
 * @param mean       {@code μ [D]}
 * @param covariance {@code Σ [D, D]}, symmetric positive semi-definite
 * @param count      number of samples it was fitted to, or 0 for a Gaussian given exactly
 */
public record GaussianFit(double[] mean, double[][] covariance, int count) {

    /**
     * @throws IllegalArgumentException naming the bad entry when a check of the class comment fails
     */
    public GaussianFit {
        Objects.requireNonNull(mean, "mean");
        Objects.requireNonNull(covariance, "covariance");
        int d = mean.length;
        if (d == 0) {
            throw new IllegalArgumentException("mean is empty: a Gaussian needs D >= 1");
        }
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, got " + count);
        }
        if (covariance.length != d) {
            throw new IllegalArgumentException("covariance has " + covariance.length + " rows but mean has D = " + d);
        }
        mean = mean.clone();
        double[][] c = new double[d][];
        for (int i = 0; i < d; i++) {
            if (covariance[i] == null || covariance[i].length != d) {
                throw new IllegalArgumentException("covariance[" + i + "] has "
                        + (covariance[i] == null ? "no row" : covariance[i].length + " columns") + ", expected " + d);
            }
            c[i] = covariance[i].clone();
        }
        for (int i = 0; i < d; i++) {
            if (!Double.isFinite(mean[i])) {
                throw new IllegalArgumentException("mean[" + i + "] is " + mean[i]);
            }
            for (int j = 0; j < d; j++) {
                if (!Double.isFinite(c[i][j])) {
                    throw new IllegalArgumentException("covariance[" + i + "][" + j + "] is " + c[i][j]);
                }
            }
            if (c[i][i] < 0) {
                throw new IllegalArgumentException("covariance[" + i + "][" + i + "] = " + c[i][i]
                        + " is a negative variance");
            }
        }
        for (int i = 0; i < d; i++) {
            for (int j = i + 1; j < d; j++) {
                double tol = 1e-6 * 0.5 * (c[i][i] + c[j][j]);
                if (Math.abs(c[i][j] - c[j][i]) > tol) {
                    throw new IllegalArgumentException("covariance is not symmetric: [" + i + "][" + j + "] = " + c[i][j]
                            + " but [" + j + "][" + i + "] = " + c[j][i]);
                }
            }
        }
        covariance = c;
    }

    /**
     * The sample mean and the unbiased sample covariance {@code Σ = 1/(N−1) Σ_i (x_i − μ)(x_i − μ)ᵀ} (the
     * estimator of Heusel et al. 2017's reference code and of {@code numpy.cov}) of {@code features [N, D]}, in
     * float64. Cost {@code N D (D + 1) / 2} multiply-adds, rows of {@code Σ} in parallel (deterministic).
     *
     * @throws IllegalArgumentException when {@code N < 2}
     */
    public static GaussianFit of(PointSet features) {
        PointSet.requireAtLeast(features, 2, "a covariance");
        int n = features.size();
        int d = features.dim();
        float[] v = features.values();
        double[] mu = new double[d];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) {
                mu[k] += v[i * d + k];
            }
        }
        for (int k = 0; k < d; k++) {
            mu[k] /= n;
        }
        double[] c = new double[n * d];                        // centred copy, [N, D]
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) {
                c[i * d + k] = v[i * d + k] - mu[k];
            }
        }
        double[][] cov = new double[d][d];
        IntStream.range(0, d).parallel().forEach(j -> {
            double[] acc = new double[d - j];                  // Σ_i c_ij c_ik for k >= j
            for (int i = 0; i < n; i++) {
                double cij = c[i * d + j];
                int o = i * d + j;
                for (int k = 0; k < acc.length; k++) {
                    acc[k] += cij * c[o + k];
                }
            }
            for (int k = 0; k < acc.length; k++) {
                cov[j][j + k] = acc[k] / (n - 1);
            }
        });
        for (int j = 0; j < d; j++) {
            for (int k = 0; k < j; k++) {
                cov[j][k] = cov[k][j];
            }
        }
        return new GaussianFit(mu, cov, n);
    }

    /** {@code D}. */
    public int dim() {
        return mean.length;
    }

    /** A copy of {@code μ}. */
    @Override
    public double[] mean() {
        return mean.clone();
    }

    /** A copy of {@code Σ}. */
    @Override
    public double[][] covariance() {
        double[][] c = new double[covariance.length][];
        for (int i = 0; i < c.length; i++) {
            c[i] = covariance[i].clone();
        }
        return c;
    }

    /** {@code "GaussianFit[D = .., count = ..]"} (the arrays are not printed). */
    @Override
    public String toString() {
        return "GaussianFit[D = " + mean.length + ", count = " + count + "]";
    }

    /** {@code μ} itself (package use only: not to be written). */
    double[] meanRef() {
        return mean;
    }

    /** {@code Σ} itself (package use only: not to be written). */
    double[][] covarianceRef() {
        return covariance;
    }
}
