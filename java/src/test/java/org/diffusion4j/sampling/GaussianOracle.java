package org.diffusion4j.sampling;

import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.tensor.Tensor;

/**
 * Closed forms for Gaussian data, the oracles of the sampler tests (DESIGN.md §5).
 *
 * <p><b>Single Gaussian</b> {@code x0 ~ N(μ, diag(s²))} per element {@code j} of a sample: {@code x_t ~ N(αμ,
 * α²s² + σ²)}, the optimal denoiser is {@code E[x0 | x_t] = μ + α s²/(α²s² + σ²)·(x_t − αμ)}, and the
 * probability-flow ODE keeps the standardised value {@code (x − αμ)/√(α²s² + σ²)} constant (for Gaussian
 * marginals {@code N(m, v)} the PF-ODE velocity is {@code m' + v'/(2v)·(x − m)}), which gives its exact solution
 * between any two levels.
 *
 * <p><b>Gaussian mixture</b> with full covariances in {@code d} dims:
 * {@code E[x0 | x_t] = Σ_k w_k(x_t)·(m_k + α C_k (α²C_k + σ²I)⁻¹ (x_t − α m_k))},
 * {@code w_k ∝ π_k N(x_t; α m_k, α²C_k + σ²I)}.
 */
final class GaussianOracle {

    private GaussianOracle() {
    }

    /** A per-element Gaussian over samples of {@code d} elements. */
    record Diagonal(double[] mu, double[] s) {

        int dim() {
            return mu.length;
        }

        double denoised(int j, double x, double alpha, double sigma) {
            double s2 = s[j] * s[j];
            return mu[j] + alpha * s2 / (alpha * alpha * s2 + sigma * sigma) * (x - alpha * mu[j]);
        }

        /** Exact PF-ODE solution at {@code to} of {@code x} at {@code from}. */
        double flow(int j, double x, Level from, Level to) {
            double s2 = s[j] * s[j];
            double z = (x - from.alpha() * mu[j]) / Math.sqrt(from.alpha() * from.alpha() * s2
                    + from.sigma() * from.sigma());
            return to.alpha() * mu[j] + Math.sqrt(to.alpha() * to.alpha() * s2 + to.sigma() * to.sigma()) * z;
        }

        /** The optimal model of prediction type {@code p}. */
        Denoiser model(Prediction p) {
            return (xt, levels, cond, out) -> {
                float[] x = xt.toFloatArray();
                float[] o = new float[x.length];
                int d = dim();
                int n = x.length / levels.batch();           // elements per sample; element j uses (μ, s)[j % d]
                for (int i = 0; i < x.length; i++) {
                    int b = i / n;
                    double a = levels.alpha(b);
                    double sg = levels.sigma(b);
                    o[i] = (float) express(p, x[i], denoised((i % n) % d, x[i], a, sg), a, sg);
                }
                out.copyFrom(o);
            };
        }
    }

    /** A Gaussian mixture in {@code d} dims with full covariances. */
    record Mixture(double[] pi, double[][] means, double[][][] covs) {

        int dim() {
            return means[0].length;
        }

        double[] mean() {
            int d = dim();
            double[] m = new double[d];
            for (int k = 0; k < pi.length; k++) {
                for (int i = 0; i < d; i++) {
                    m[i] += pi[k] * means[k][i];
                }
            }
            return m;
        }

        double[][] covariance() {
            int d = dim();
            double[] m = mean();
            double[][] c = new double[d][d];
            for (int k = 0; k < pi.length; k++) {
                for (int i = 0; i < d; i++) {
                    for (int j = 0; j < d; j++) {
                        c[i][j] += pi[k] * (covs[k][i][j] + means[k][i] * means[k][j]);
                    }
                }
            }
            for (int i = 0; i < d; i++) {
                for (int j = 0; j < d; j++) {
                    c[i][j] -= m[i] * m[j];
                }
            }
            return c;
        }

        /** {@code E[x0 | x_t = x]} into {@code out}. */
        void denoised(double[] x, double alpha, double sigma, double[] out) {
            int d = dim();
            int kk = pi.length;
            double[] logw = new double[kk];
            double[][] post = new double[kk][d];
            for (int k = 0; k < kk; k++) {
                double[][] cov = new double[d][d];     // α²C_k + σ²I
                for (int i = 0; i < d; i++) {
                    for (int j = 0; j < d; j++) {
                        cov[i][j] = alpha * alpha * covs[k][i][j] + (i == j ? sigma * sigma : 0);
                    }
                }
                double[][] l = cholesky(cov);
                double[] r = new double[d];
                for (int i = 0; i < d; i++) {
                    r[i] = x[i] - alpha * means[k][i];
                }
                double[] sol = solve(l, r);            // (α²C + σ²I)⁻¹ r
                double quad = 0;
                double logDet = 0;
                for (int i = 0; i < d; i++) {
                    quad += r[i] * sol[i];
                    logDet += 2 * Math.log(l[i][i]);
                }
                logw[k] = Math.log(pi[k]) - 0.5 * quad - 0.5 * logDet;
                for (int i = 0; i < d; i++) {
                    double acc = means[k][i];
                    for (int j = 0; j < d; j++) {
                        acc += alpha * covs[k][i][j] * sol[j];
                    }
                    post[k][i] = acc;
                }
            }
            double max = Double.NEGATIVE_INFINITY;
            for (double v : logw) {
                max = Math.max(max, v);
            }
            double sum = 0;
            for (int k = 0; k < kk; k++) {
                logw[k] = Math.exp(logw[k] - max);
                sum += logw[k];
            }
            for (int i = 0; i < d; i++) {
                double acc = 0;
                for (int k = 0; k < kk; k++) {
                    acc += logw[k] / sum * post[k][i];
                }
                out[i] = acc;
            }
        }

        /** Per-level precomputation: {@code (α²C_k + σ²I)⁻¹}, {@code α C_k (α²C_k + σ²I)⁻¹} and log-determinants. */
        private record Prepared(double[][][] inv, double[][][] gain, double[] logNorm) {
        }

        private Prepared prepare(double alpha, double sigma) {
            int d = dim();
            int kk = pi.length;
            double[][][] inv = new double[kk][d][d];
            double[][][] gain = new double[kk][d][d];
            double[] logNorm = new double[kk];
            for (int k = 0; k < kk; k++) {
                double[][] cov = new double[d][d];
                for (int i = 0; i < d; i++) {
                    for (int j = 0; j < d; j++) {
                        cov[i][j] = alpha * alpha * covs[k][i][j] + (i == j ? sigma * sigma : 0);
                    }
                }
                double[][] l = cholesky(cov);
                double logDet = 0;
                for (int i = 0; i < d; i++) {
                    logDet += 2 * Math.log(l[i][i]);
                    double[] e = new double[d];
                    e[i] = 1;
                    double[] col = solve(l, e);
                    for (int j = 0; j < d; j++) {
                        inv[k][j][i] = col[j];
                    }
                }
                for (int i = 0; i < d; i++) {
                    for (int j = 0; j < d; j++) {
                        double acc = 0;
                        for (int m = 0; m < d; m++) {
                            acc += alpha * covs[k][i][m] * inv[k][m][j];
                        }
                        gain[k][i][j] = acc;
                    }
                }
                logNorm[k] = Math.log(pi[k]) - 0.5 * logDet;
            }
            return new Prepared(inv, gain, logNorm);
        }

        private void denoised(Prepared pr, double[] x, double alpha, double[] out, double[] r, double[] w) {
            int d = dim();
            int kk = pi.length;
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < kk; k++) {
                double quad = 0;
                for (int i = 0; i < d; i++) {
                    r[i] = x[i] - alpha * means[k][i];
                }
                for (int i = 0; i < d; i++) {
                    double acc = 0;
                    for (int j = 0; j < d; j++) {
                        acc += pr.inv()[k][i][j] * r[j];
                    }
                    quad += r[i] * acc;
                }
                w[k] = pr.logNorm()[k] - 0.5 * quad;
                max = Math.max(max, w[k]);
            }
            double sum = 0;
            for (int k = 0; k < kk; k++) {
                w[k] = Math.exp(w[k] - max);
                sum += w[k];
            }
            java.util.Arrays.fill(out, 0);
            for (int k = 0; k < kk; k++) {
                for (int i = 0; i < d; i++) {
                    r[i] = x[i] - alpha * means[k][i];
                }
                for (int i = 0; i < d; i++) {
                    double acc = means[k][i];
                    for (int j = 0; j < d; j++) {
                        acc += pr.gain()[k][i][j] * r[j];
                    }
                    out[i] += w[k] / sum * acc;
                }
            }
        }

        Denoiser model(Prediction p) {
            return (xt, levels, cond, out) -> {
                float[] x = xt.toFloatArray();
                float[] o = new float[x.length];
                int d = dim();
                double[] xs = new double[d];
                double[] den = new double[d];
                double[] r = new double[d];
                double[] w = new double[pi.length];
                Prepared pr = null;
                Level prepared = null;
                for (int b = 0; b < x.length / d; b++) {
                    double a = levels.alpha(b);
                    double sg = levels.sigma(b);
                    if (!levels.level(b).equals(prepared)) {
                        pr = prepare(a, sg);
                        prepared = levels.level(b);
                    }
                    for (int i = 0; i < d; i++) {
                        xs[i] = x[b * d + i];
                    }
                    denoised(pr, xs, a, den, r, w);
                    for (int i = 0; i < d; i++) {
                        o[b * d + i] = (float) express(p, xs[i], den[i], a, sg);
                    }
                }
                out.copyFrom(o);
            };
        }
    }

    /** The prediction of type {@code p} whose denoised value is {@code d} at {@code x}. */
    static double express(Prediction p, double x, double d, double alpha, double sigma) {
        return switch (p) {
            case SAMPLE -> d;
            case EPSILON -> (x - alpha * d) / sigma;
            case V -> alpha * (x - alpha * d) / sigma - sigma * d;
            case VELOCITY -> (x - alpha * d) / sigma - d;
        };
    }

    static double[][] cholesky(double[][] a) {
        int n = a.length;
        double[][] l = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = a[i][j];
                for (int k = 0; k < j; k++) {
                    s -= l[i][k] * l[j][k];
                }
                l[i][j] = i == j ? Math.sqrt(s) : s / l[j][j];
            }
        }
        return l;
    }

    /** Solves {@code L Lᵀ y = r}. */
    static double[] solve(double[][] l, double[] r) {
        int n = r.length;
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            double s = r[i];
            for (int k = 0; k < i; k++) {
                s -= l[i][k] * y[k];
            }
            y[i] = s / l[i][i];
        }
        double[] x = new double[n];
        for (int i = n - 1; i >= 0; i--) {
            double s = y[i];
            for (int k = i + 1; k < n; k++) {
                s -= l[k][i] * x[k];
            }
            x[i] = s / l[i][i];
        }
        return x;
    }

    /** {@code ‖a − b‖ / ‖b‖} in double. */
    static double relErr(float[] a, float[] b) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            num += d * d;
            den += (double) b[i] * b[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }

    static float[] values(Tensor t) {
        return t.toFloatArray();
    }
}
