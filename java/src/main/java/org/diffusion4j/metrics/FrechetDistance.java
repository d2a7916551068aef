package org.diffusion4j.metrics;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

import java.util.Objects;

/**
 * The Fréchet distance between two Gaussians fitted to feature sets — here the features of a small classifier
 * trained on the dataset, so this is a <b>classifier-feature Fréchet distance ("FD")</b>, comparable only between
 * runs that use the same classifier; it is <b>not</b> the Inception FID, whose numbers come from Inception-v3
 * pool features.
 *
 * <p>The squared 2-Wasserstein distance between {@code N(μ1, Σ1)} and {@code N(μ2, Σ2)} (Dowson and Landau,
 * J. Multivariate Anal. 12, 1982), as used for FID by Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter,
 * "GANs trained by a two time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017
 * (arXiv:1706.08500), their FID formula:
 *
 * <pre>
 *   FD = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})
 * </pre>
 *
 * <p>Units: squared feature units. {@code FD >= 0}, 0 for identical Gaussians.
 *
 * <p><b>The matrix square root.</b> {@code Σ1 Σ2} is not symmetric, and the general {@code sqrtm} used by the
 * reference code (Schur method) can return complex parts or fail for singular covariances (e.g. fewer samples
 * than dimensions). With {@code S1 = Σ1^{1/2}} (symmetric PSD), {@code Σ1 Σ2 = S1 (S1 Σ2 S1) S1^{-1}} when
 * {@code S1} is invertible, so {@code Σ1 Σ2} is similar to the symmetric PSD matrix {@code S1 Σ2 S1} and has its
 * real, non-negative eigenvalues (by continuity also for singular {@code Σ1}); the trace of the principal square
 * root is the sum of their square roots:
 *
 * <pre>
 *   Tr((Σ1 Σ2)^{1/2}) = Tr((S1 Σ2 S1)^{1/2}) = Σ_i √λ_i(S1 Σ2 S1)
 * </pre>
 *
 * <p>computed with two symmetric eigendecompositions (EJML's symmetric QR algorithm, float64):
 * {@code Σ1 = V diag(λ) Vᵀ} gives {@code S1 = V diag(√max(λ, 0)) Vᵀ}; then the eigenvalues of the symmetrised
 * {@code S1 Σ2 S1}. Rounding leaves the zero eigenvalues of singular PSD matrices at about {@code ±1e-16} of the
 * largest, which a square root would turn into {@code ±1e-8}; eigenvalues at or below {@code 10 D ε λ_max}
 * ({@code ε = 2^-52}) are therefore taken as 0 (a true eigenvalue that small changes the trace by less than
 * {@code √(10 D ε λ_max)} each). An eigenvalue of {@code Σ1} or {@code Σ2} below
 * {@code −}{@value #PSD_TOLERANCE}{@code · λ_max} means the matrix is not a covariance and is rejected. A result
 * below 0 by rounding (identical inputs) is returned as 0.
 *
 * <p><b>Cost.</b> Fitting: {@code N D (D + 1) / 2} multiply-adds per set ({@link GaussianFit#of}); the distance:
 * three {@code D x D} eigendecompositions and two products, {@code O(D³)}.
 */
public final class FrechetDistance {

    /** Relative tolerance for negative eigenvalues of a covariance: below {@code −tol · λ_max} is rejected. */
    public static final double PSD_TOLERANCE = 1e-6;

    private FrechetDistance() {
    }

    /**
     * FD between Gaussians fitted to {@code x [N, D]} and {@code y [M, D]} ({@link GaussianFit#of}).
     *
     * @param x features of the generated samples {@code [N, D]} (the package's order; the value is symmetric)
     * @param y features of the real (reference) data {@code [M, D]}
     * @return the distance in squared feature units, {@code >= 0}
     * @throws IllegalArgumentException when the dims differ or a set has fewer than 2 points
     */
    public static double compute(PointSet x, PointSet y) {
        PointSet.requireSameDim(x, y);
        return between(GaussianFit.of(x), GaussianFit.of(y));
    }

    /**
     * FD between two Gaussians.
     *
     * @throws IllegalArgumentException when the dims differ or a covariance is not positive semi-definite
     */
    public static double between(GaussianFit a, GaussianFit b) {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        if (a.dim() != b.dim()) {
            throw new IllegalArgumentException("the Gaussians differ in dimension: " + a.dim() + " vs " + b.dim());
        }
        double[] m1 = a.meanRef();
        double[] m2 = b.meanRef();
        double[][] s1 = a.covarianceRef();
        double[][] s2 = b.covarianceRef();
        double meanTerm = 0;
        double trace = 0;
        for (int i = 0; i < m1.length; i++) {
            double t = m1[i] - m2[i];
            meanTerm += t * t;
            trace += s1[i][i] + s2[i][i];
        }
        double fd = meanTerm + trace - 2 * traceSqrtProduct(s1, s2);
        return Math.max(fd, 0);
    }

    /**
     * {@code Tr((Σ1 Σ2)^{1/2})} for symmetric PSD {@code Σ1, Σ2 [D, D]}, through the symmetric form of the class
     * comment.
     *
     * @throws IllegalArgumentException when the shapes differ, a matrix is not square, or a matrix has an
     *                                  eigenvalue below {@code −PSD_TOLERANCE · λ_max}
     */
    public static double traceSqrtProduct(double[][] sigma1, double[][] sigma2) {
        DMatrixRMaj s1 = matrix("sigma1", sigma1);
        DMatrixRMaj s2 = matrix("sigma2", sigma2);
        if (s1.numRows != s2.numRows) {
            throw new IllegalArgumentException("sigma1 is " + s1.numRows + " x " + s1.numRows + " but sigma2 is "
                    + s2.numRows + " x " + s2.numRows);
        }
        requirePsd("sigma2", s2);
        DMatrixRMaj root1 = sqrtPsd("sigma1", s1);
        int d = s1.numRows;
        DMatrixRMaj tmp = new DMatrixRMaj(d, d);
        DMatrixRMaj mid = new DMatrixRMaj(d, d);
        CommonOps_DDRM.mult(root1, s2, tmp);
        CommonOps_DDRM.mult(tmp, root1, mid);                  // S1 Σ2 S1, symmetric up to rounding
        symmetrise(mid);
        double[] lambda = eigenvalues("S1 sigma2 S1", mid, null);
        double floor = noiseFloor(lambda);
        double tr = 0;
        for (double l : lambda) {
            tr += l > floor ? Math.sqrt(l) : 0;
        }
        return tr;
    }

    /**
     * The symmetric PSD square root {@code S = V diag(√max(λ, 0)) Vᵀ} of a symmetric PSD {@code sigma [D, D]}
     * ({@code S S = Σ}, {@code S = Sᵀ}), negative rounding eigenvalues clamped to 0.
     *
     * @throws IllegalArgumentException when the matrix is not square or has an eigenvalue below
     *                                  {@code −PSD_TOLERANCE · λ_max}
     */
    public static double[][] sqrtPsd(double[][] sigma) {
        DMatrixRMaj s = sqrtPsd("sigma", matrix("sigma", sigma));
        double[][] out = new double[s.numRows][s.numCols];
        for (int i = 0; i < s.numRows; i++) {
            for (int j = 0; j < s.numCols; j++) {
                out[i][j] = s.get(i, j);
            }
        }
        return out;
    }

    private static DMatrixRMaj sqrtPsd(String name, DMatrixRMaj sigma) {
        int d = sigma.numRows;
        DMatrixRMaj sym = sigma.copy();
        symmetrise(sym);
        DMatrixRMaj vectors = new DMatrixRMaj(d, d);
        double[] lambda = eigenvalues(name, sym, vectors);
        checkPsd(name, lambda);
        double floor = noiseFloor(lambda);
        DMatrixRMaj scaled = vectors.copy();                   // V diag(√λ)
        for (int c = 0; c < d; c++) {
            double r = lambda[c] > floor ? Math.sqrt(lambda[c]) : 0;
            for (int i = 0; i < d; i++) {
                scaled.set(i, c, scaled.get(i, c) * r);
            }
        }
        DMatrixRMaj root = new DMatrixRMaj(d, d);
        CommonOps_DDRM.multTransB(scaled, vectors, root);      // V diag(√λ) Vᵀ
        symmetrise(root);
        return root;
    }

    /**
     * {@code 10 D ε λ_max}: eigenvalues of a symmetric PSD matrix at or below this are rounding noise of the
     * symmetric QR algorithm (backward error {@code O(D ε ‖A‖)}, e.g. Golub and Van Loan, "Matrix Computations",
     * 4th ed., Sec. 8.3) and are taken as 0, so that the square root does not amplify them to {@code √(ε λ_max)}.
     */
    private static double noiseFloor(double[] lambda) {
        double max = 0;
        for (double l : lambda) {
            max = Math.max(max, Math.abs(l));
        }
        return 10 * lambda.length * Math.ulp(1.0) * max;
    }

    private static void requirePsd(String name, DMatrixRMaj sigma) {
        DMatrixRMaj sym = sigma.copy();
        symmetrise(sym);
        checkPsd(name, eigenvalues(name, sym, null));
    }

    private static void checkPsd(String name, double[] lambda) {
        double max = 0;
        double min = Double.POSITIVE_INFINITY;
        for (double l : lambda) {
            max = Math.max(max, Math.abs(l));
            min = Math.min(min, l);
        }
        if (min < -PSD_TOLERANCE * max) {
            throw new IllegalArgumentException(name + " is not positive semi-definite: it has eigenvalue " + min
                    + " below -" + PSD_TOLERANCE + " x " + max + " (its largest |eigenvalue|)");
        }
    }

    /**
     * Eigenvalues of symmetric {@code a} (not modified), and, when {@code vectors} is given, the matching unit
     * eigenvectors as its columns.
     */
    private static double[] eigenvalues(String name, DMatrixRMaj a, DMatrixRMaj vectors) {
        int d = a.numRows;
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(d, vectors != null, true);
        if (!eig.decompose(a.copy())) {
            throw new IllegalArgumentException("the symmetric eigendecomposition of " + name + " (" + d + " x " + d
                    + ") did not converge");
        }
        double[] lambda = new double[d];
        for (int i = 0; i < d; i++) {
            lambda[i] = eig.getEigenvalue(i).real;
            if (vectors != null) {
                DMatrixRMaj v = eig.getEigenVector(i);
                for (int r = 0; r < d; r++) {
                    vectors.set(r, i, v.get(r, 0));
                }
            }
        }
        return lambda;
    }

    private static void symmetrise(DMatrixRMaj m) {
        int d = m.numRows;
        for (int i = 0; i < d; i++) {
            for (int j = i + 1; j < d; j++) {
                double v = 0.5 * (m.get(i, j) + m.get(j, i));
                m.set(i, j, v);
                m.set(j, i, v);
            }
        }
    }

    private static DMatrixRMaj matrix(String name, double[][] a) {
        Objects.requireNonNull(a, name);
        int d = a.length;
        if (d == 0) {
            throw new IllegalArgumentException(name + " is empty");
        }
        DMatrixRMaj m = new DMatrixRMaj(d, d);
        for (int i = 0; i < d; i++) {
            if (a[i] == null || a[i].length != d) {
                throw new IllegalArgumentException(name + "[" + i + "] has "
                        + (a[i] == null ? "no row" : a[i].length + " columns") + " but " + name + " has " + d + " rows");
            }
            for (int j = 0; j < d; j++) {
                if (!Double.isFinite(a[i][j])) {
                    throw new IllegalArgumentException(name + "[" + i + "][" + j + "] is " + a[i][j]);
                }
                m.set(i, j, a[i][j]);
            }
        }
        return m;
    }
}
