package org.diffusion4j.metrics;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Arrays;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * The pairwise terms of the sample metrics over two point sets {@code a [N, D]} and {@code b [M, D]}: sums of a
 * kernel or of distances over all {@code N * M} pairs, and each point's nearest-neighbour distance. Two
 * engines compute them:
 *
 * <ul>
 *   <li>{@link #host()}: plain float64 loops over {@code ‖a_i − b_j‖² = Σ_k (a_ik − b_jk)²}, {@code O(N M D)}
 *       multiply-adds, run over fixed blocks of 64 rows of {@code a} on the common fork-join pool (partial sums
 *       combined in block order, so the result does not depend on the thread count). Exact to float64
 *       rounding; about 1–2 GFLOP/s per core, so right for small sets and as a reference.</li>
 *   <li>{@link #on(Backend)}: blocked GEMM through the {@link Backend} (OpenBLAS on the CPU, cuBLAS on CUDA),
 *       tiles of {@code T x T} pairs. Both sets are centred on their pooled mean (distances do not change,
 *       the norms shrink) and augmented to {@code D + 2} columns, {@code â_i = [a_i, ‖a_i‖², 1]} and
 *       {@code b̂_j = [−2 b_j, 1, ‖b_j‖²]}, so one product {@code â_i · b̂_j = ‖a_i − b_j‖²} gives a tile of
 *       squared distances; the kernel, square root or minimum runs on the tile with the backend's
 *       elementwise and row-reduction ops, and only one float per tile row comes back to the host, where the
 *       sums are accumulated in float64. The squared distances are float32: their absolute error is about
 *       {@code 1e-6 · (‖a_i‖² + ‖b_j‖²)} (centred), so distances much below {@code 1e-3} of the data's
 *       RMS norm are not resolved (use {@link #host()} when they matter).</li>
 * </ul>
 *
 * <p>When both arguments are the same {@link PointSet} object, the sums use the symmetry
 * {@code Σ_ij f(d_ij) = N f(0) + 2 Σ_{i<j} f(d_ij)} and touch each pair once.
 *
 * <p><b>Measured</b> ({@code MetricsSpeed} in the tests; 2-core AMD EPYC build machine shared with other builds,
 * load average 7–12, so these are upper bounds; 2026-11-30): at {@code N = M = 10,000}, {@code D = 64} the GEMM
 * engine on the CPU backend took 0.9–4.2 s for the {@code 10^8} RBF pairs of one cross term (the scalar
 * {@code Math.exp} of the backend's EXP dominates) and 0.15–1.4 s for {@code 10^8} distances; the host engine
 * runs at about 130–160 ns per pair at {@code D = 64} (some 15–30 s for the same term). The two are about equal
 * near {@code N = M = 700}, hence {@link #auto}. On an NVIDIA H200 (cuBLAS FP32) the same cross term took 12 ms.
 */
public final class Pairwise {

    /** Default tile edge {@code T} of the GEMM engine: a {@code T x T} F32 tile is 4 MiB, cache-sized. */
    public static final int DEFAULT_TILE = 1024;

    /** Rows of {@code a} per task of the host engine (fixed, so results do not depend on the threads). */
    private static final int HOST_ROW_BLOCK = 64;
    /** Rows of {@code b} per cache block of the host engine. */
    private static final int HOST_COL_BLOCK = 256;

    /**
     * Multiply-adds {@code N M D} of one pairwise term below which {@link #auto} uses the host loops: about
     * {@code N = M = 700} at {@code D = 64}, where the two engines took about the same time on the 2-core build
     * machine (the GEMM engine's fixed costs — uploads, per-tile op launches — dominate below).
     */
    public static final long AUTO_HOST_MAX_MACS = 32L << 20;

    private final Backend backend;
    private final int tile;
    private final boolean auto;

    private Pairwise(Backend backend, int tile, boolean auto) {
        this.backend = backend;
        this.tile = tile;
        this.auto = auto;
    }

    /** The float64 host engine (see the class comment). */
    public static Pairwise host() {
        return new Pairwise(null, 0, false);
    }

    /**
     * The GEMM engine on {@code backend} for terms of at least {@link #AUTO_HOST_MAX_MACS} multiply-adds, the
     * float64 host loops for smaller ones: the faster of the two at each size.
     */
    public static Pairwise auto(Backend backend) {
        Objects.requireNonNull(backend, "backend");
        return new Pairwise(backend, DEFAULT_TILE, true);
    }

    /** The blocked-GEMM engine on {@code backend} with {@link #DEFAULT_TILE}. */
    public static Pairwise on(Backend backend) {
        return on(backend, DEFAULT_TILE);
    }

    /**
     * The blocked-GEMM engine on {@code backend} with tiles of {@code tile x tile} pairs.
     *
     * @throws IllegalArgumentException when {@code tile < 1} or {@code tile > 16384}
     */
    public static Pairwise on(Backend backend, int tile) {
        Objects.requireNonNull(backend, "backend");
        if (tile < 1 || tile > 16384) {
            throw new IllegalArgumentException("tile must be in [1, 16384], got " + tile);
        }
        return new Pairwise(backend, tile, false);
    }

    /** The backend of the GEMM engine, or {@code null} for {@link #host()}. */
    public Backend backend() {
        return backend;
    }

    /** {@code "host float64"}, {@code "gemm on <backend> (tile T)"} or {@code "auto: ..."}. */
    @Override
    public String toString() {
        return backend == null ? "host float64" : (auto ? "auto: host float64 below " + AUTO_HOST_MAX_MACS
                + " multiply-adds, else " : "") + "gemm on " + backend.name() + " (tile " + tile + ")";
    }

    /** Whether the pairs of {@code a x b} go through the GEMM engine. */
    private boolean gemm(PointSet a, PointSet b) {
        return backend != null && (!auto || (long) a.size() * b.size() * a.dim() >= AUTO_HOST_MAX_MACS);
    }

    // ---------------------------------------------------------------- public sums

    /**
     * {@code Σ_i Σ_j exp(−‖a_i − b_j‖² / (2 h²))} over all {@code N * M} pairs (including {@code i = j} when
     * {@code a == b}, each contributing 1): the Gaussian RBF kernel sums of MMD (Gretton et al. 2012, JMLR 13).
     *
     * @param bandwidth {@code h > 0}, in the units of the data
     * @throws IllegalArgumentException when the dims differ or {@code h} is not finite and positive
     */
    public double rbfSum(PointSet a, PointSet b, double bandwidth) {
        PointSet.requireSameDim(a, b);
        if (!(bandwidth > 0) || !Double.isFinite(bandwidth)) {
            throw new IllegalArgumentException("RBF bandwidth must be finite and > 0, got " + bandwidth);
        }
        double gamma = 1.0 / (2.0 * bandwidth * bandwidth);
        if (!Double.isFinite(gamma)) {
            throw new IllegalArgumentException("RBF bandwidth " + bandwidth + " is too small: 1/(2h^2) overflows");
        }
        return gemm(a, b) && (float) gamma < Float.POSITIVE_INFINITY ? gemmSum(a, b, Kind.RBF, gamma)
                : hostSum(a, b, Kind.RBF, gamma);
    }

    /**
     * {@code Σ_i Σ_j ‖a_i − b_j‖} (Euclidean) over all {@code N * M} pairs: the distance sums of the energy
     * distance (Székely and Rizzo 2013, J. Stat. Plann. Inference 143, Sec. 2).
     *
     * @throws IllegalArgumentException when the dims differ
     */
    public double distanceSum(PointSet a, PointSet b) {
        PointSet.requireSameDim(a, b);
        return gemm(a, b) ? gemmSum(a, b, Kind.DISTANCE, 0) : hostSum(a, b, Kind.DISTANCE, 0);
    }

    /**
     * For each query point, the Euclidean distance to its nearest reference point,
     * {@code out[i] = min_j ‖query_i − reference_j‖}, {@code [N]}. A point that also occurs in
     * {@code reference} has distance 0 (up to the engine's rounding).
     *
     * @throws IllegalArgumentException when the dims differ
     */
    public double[] nearestDistances(PointSet query, PointSet reference) {
        PointSet.requireSameDim(query, reference);
        return gemm(query, reference) ? gemmNearest(query, reference) : hostNearest(query, reference);
    }

    /**
     * {@code Σ_i Σ_j (γ a_i·b_j + c)^p} over all {@code N * M} pairs (including {@code i = j} when {@code a == b}):
     * the polynomial kernel sums of the kernel distance of Bińkowski et al. 2018 ("Demystifying MMD GANs", ICLR,
     * Sec. 4: {@code p = 3}, {@code γ = 1/D}, {@code c = 1}, i.e. KID in Inception features). The kernel is not
     * translation-invariant, so the points are used as given (not centred); the GEMM engine forms
     * {@code γ a_i·b_j} in float32 and the power per element, and sums in float64 across tiles.
     *
     * @param degree {@code p}, in {@code [1, 8]}
     * @param gamma  {@code γ}, finite
     * @param coef0  {@code c}, finite
     * @throws IllegalArgumentException when the dims differ or a parameter is out of range
     */
    public double polynomialSum(PointSet a, PointSet b, int degree, double gamma, double coef0) {
        PointSet.requireSameDim(a, b);
        if (degree < 1 || degree > 8) {
            throw new IllegalArgumentException("polynomial kernel degree must be in [1, 8], got " + degree);
        }
        if (!Double.isFinite(gamma) || !Double.isFinite(coef0)) {
            throw new IllegalArgumentException("polynomial kernel gamma and coef0 must be finite, got gamma = " + gamma
                    + ", coef0 = " + coef0);
        }
        // float32 tiles hold base^p with |base| <= γ max‖a‖ max‖b‖ + |c| (Cauchy–Schwarz): beyond ~1e30 (with room
        // for the row sums below float32's 3.4e38), or with gamma/coef0 out of float range, float64 loops instead
        double bound = Math.abs(gamma) * maxNorm(a) * maxNorm(b) + Math.abs(coef0);
        double power = Math.pow(bound, degree);
        boolean floatRange = power <= 1e30 && !(power > 0 && power < 1e-30)         // float32's range, both ends
                && (gamma == 0 || Math.abs(gamma) >= Float.MIN_NORMAL)
                && (coef0 == 0 || Math.abs(coef0) >= Float.MIN_NORMAL);
        if (!gemm(a, b) || !floatRange) {
            return hostPolynomialSum(a, b, degree, gamma, coef0);
        }
        return gemmPolynomialSum(a, b, degree, (float) gamma, (float) coef0);
    }

    /**
     * Receives one tile of squared distances from {@link #squaredDistanceTiles}: {@code d2[r * cols + c] =
     * ‖a_{i0 + r} − b_{j0 + c}‖²} for {@code r < rows}, {@code c < cols} (the array may be longer; only valid
     * during the call). Tiles of different row ranges may arrive concurrently on different threads; all tiles of
     * one row range arrive on one thread in increasing {@code j0}, so state kept per row of {@code a} needs no
     * locking.
     */
    @FunctionalInterface
    interface TileVisitor {
        void visit(int i0, int j0, int rows, int cols, double[] d2);
    }

    /**
     * Every squared distance {@code ‖a_i − b_j‖²} (clamped at 0), tile by tile, to {@code visitor}: for the
     * {@code k}-nearest-neighbour counts of {@link PrecisionRecall}, which need more than a sum or a minimum per
     * row. Float64 on the host engine; float32 through the GEMM on a backend (see the class comment).
     */
    void squaredDistanceTiles(PointSet a, PointSet b, TileVisitor visitor) {
        PointSet.requireSameDim(a, b);
        Objects.requireNonNull(visitor, "visitor");
        if (gemm(a, b)) {
            double[] mean = pooledMean(a, b);
            float[] la = augmented(a, mean, true);
            float[] rb = augmented(b, mean, false);
            if (finite(la) && finite(rb) && !tooSmall(a, b, mean)) {
                gemmTiles(la, rb, a.size(), b.size(), a.dim() + 2, visitor);
                return;
            }
        }
        hostTiles(a, b, visitor);
    }

    // ---------------------------------------------------------------- host engine

    private enum Kind { RBF, DISTANCE }

    /** {@code f(d²)}: the pair term of {@code kind}. */
    private static double term(Kind kind, double d2, double gamma) {
        return kind == Kind.RBF ? Math.exp(-gamma * d2) : Math.sqrt(d2);
    }

    private static double squaredDistance(float[] x, int xo, float[] y, int yo, int d) {
        double s = 0;
        for (int k = 0; k < d; k++) {
            double t = (double) x[xo + k] - y[yo + k];
            s += t * t;
        }
        return s;
    }

    private static double hostSum(PointSet a, PointSet b, Kind kind, double gamma) {
        return hostPairSum(a, b, (x, xo, y, yo, d) -> term(kind, squaredDistance(x, xo, y, yo, d), gamma));
    }

    /** The float64 value of one pair, rows at offsets {@code xo} of {@code x} and {@code yo} of {@code y}. */
    @FunctionalInterface
    private interface PairTerm {
        double of(float[] x, int xo, float[] y, int yo, int d);
    }

    /**
     * {@code Σ_ij term(a_i, b_j)} in float64 over fixed row blocks (summed in block order: the result does not depend
     * on the threads); for {@code a == b}, {@code Σ_i term(a_i, a_i) + 2 Σ_{i<j} term(a_i, a_j)} (a symmetric term).
     */
    private static double hostPairSum(PointSet a, PointSet b, PairTerm term) {
        boolean symmetric = a == b;
        int n = a.size();
        int m = b.size();
        int d = a.dim();
        float[] x = a.values();
        float[] y = b.values();
        int blocks = (n + HOST_ROW_BLOCK - 1) / HOST_ROW_BLOCK;
        double[] partial = new double[blocks];
        IntStream.range(0, blocks).parallel().forEach(blk -> {
            int i0 = blk * HOST_ROW_BLOCK;
            int i1 = Math.min(n, i0 + HOST_ROW_BLOCK);
            double s = 0;
            for (int j0 = symmetric ? i0 : 0; j0 < m; j0 += HOST_COL_BLOCK) {
                int j1 = Math.min(m, j0 + HOST_COL_BLOCK);
                for (int i = i0; i < i1; i++) {
                    for (int j = symmetric ? Math.max(j0, i + 1) : j0; j < j1; j++) {
                        s += term.of(x, i * d, y, j * d, d);
                    }
                }
            }
            partial[blk] = s;
        });
        double total = 0;
        for (double p : partial) {
            total += p;
        }
        if (!symmetric) {
            return total;
        }
        double diagonal = 0;
        for (int i = 0; i < n; i++) {
            diagonal += term.of(x, i * d, x, i * d, d);
        }
        return 2 * total + diagonal;
    }

    private static double[] hostNearest(PointSet q, PointSet r) {
        int n = q.size();
        int m = r.size();
        int d = q.dim();
        float[] x = q.values();
        float[] y = r.values();
        double[] best = new double[n];
        Arrays.fill(best, Double.POSITIVE_INFINITY);
        int blocks = (n + HOST_ROW_BLOCK - 1) / HOST_ROW_BLOCK;
        IntStream.range(0, blocks).parallel().forEach(blk -> {
            int i0 = blk * HOST_ROW_BLOCK;
            int i1 = Math.min(n, i0 + HOST_ROW_BLOCK);
            for (int j0 = 0; j0 < m; j0 += HOST_COL_BLOCK) {
                int j1 = Math.min(m, j0 + HOST_COL_BLOCK);
                for (int i = i0; i < i1; i++) {
                    double bi = best[i];
                    for (int j = j0; j < j1; j++) {
                        bi = Math.min(bi, squaredDistance(x, i * d, y, j * d, d));
                    }
                    best[i] = bi;
                }
            }
        });
        for (int i = 0; i < n; i++) {
            best[i] = Math.sqrt(best[i]);
        }
        return best;
    }

    /** {@code max_i ‖p_i‖} in float64. */
    private static double maxNorm(PointSet p) {
        return Math.sqrt(maxCentredNorm2(p, new double[p.dim()]));
    }

    private static double hostPolynomialSum(PointSet a, PointSet b, int degree, double gamma, double coef0) {
        return hostPairSum(a, b, (x, xo, y, yo, d) -> {
            double dot = 0;
            for (int k = 0; k < d; k++) {
                dot += (double) x[xo + k] * y[yo + k];
            }
            double base = gamma * dot + coef0;
            double v = base;
            for (int p = 1; p < degree; p++) {
                v *= base;
            }
            return v;
        });
    }

    private static void hostTiles(PointSet a, PointSet b, TileVisitor visitor) {
        int n = a.size();
        int m = b.size();
        int d = a.dim();
        float[] x = a.values();
        float[] y = b.values();
        int blocks = (n + HOST_ROW_BLOCK - 1) / HOST_ROW_BLOCK;
        IntStream.range(0, blocks).parallel().forEach(blk -> {
            int i0 = blk * HOST_ROW_BLOCK;
            int i1 = Math.min(n, i0 + HOST_ROW_BLOCK);
            double[] t = new double[HOST_ROW_BLOCK * HOST_COL_BLOCK];
            for (int j0 = 0; j0 < m; j0 += HOST_COL_BLOCK) {
                int j1 = Math.min(m, j0 + HOST_COL_BLOCK);
                int cols = j1 - j0;
                for (int i = i0; i < i1; i++) {
                    for (int j = j0; j < j1; j++) {
                        t[(i - i0) * cols + (j - j0)] = squaredDistance(x, i * d, y, j * d, d);
                    }
                }
                visitor.visit(i0, j0, i1 - i0, cols, t);
            }
        });
    }

    // ---------------------------------------------------------------- GEMM engine

    /** The pooled mean of {@code a} and {@code b} (of {@code a} alone when they are one object), {@code [D]}. */
    static double[] pooledMean(PointSet a, PointSet b) {
        int d = a.dim();
        double[] mean = new double[d];
        accumulate(a, mean);
        int count = a.size();
        if (b != a) {
            accumulate(b, mean);
            count += b.size();
        }
        for (int k = 0; k < d; k++) {
            mean[k] /= count;
        }
        return mean;
    }

    private static void accumulate(PointSet p, double[] sum) {
        int d = p.dim();
        float[] v = p.values();
        for (int i = 0; i < p.size(); i++) {
            for (int k = 0; k < d; k++) {
                sum[k] += v[i * d + k];
            }
        }
    }

    /**
     * Centred, augmented rows {@code [N, D + 2]}: {@code [x − μ, ‖x − μ‖², 1]} for the left operand,
     * {@code [−2 (x − μ), 1, ‖x − μ‖²]} for the right one.
     */
    private static float[] augmented(PointSet p, double[] mean, boolean left) {
        int n = p.size();
        int d = p.dim();
        int k2 = d + 2;
        float[] v = p.values();
        float[] out = new float[n * k2];
        for (int i = 0; i < n; i++) {
            double norm2 = 0;
            for (int k = 0; k < d; k++) {
                double c = v[i * d + k] - mean[k];
                norm2 += c * c;
                out[i * k2 + k] = (float) (left ? c : -2 * c);
            }
            out[i * k2 + d] = left ? (float) norm2 : 1f;
            out[i * k2 + d + 1] = left ? 1f : (float) norm2;
        }
        return out;
    }

    /**
     * Whether the points lie so close together (centred squared norms below {@code 1e-30}, but not all 0) that the
     * float32 products of their squared distances underflow: the float64 host engine is used instead (at a scale of
     * 1e-30 every distance had come out 0).
     */
    private static boolean tooSmall(PointSet a, PointSet b, double[] mean) {
        double max = Math.max(maxCentredNorm2(a, mean), b == a ? 0 : maxCentredNorm2(b, mean));
        return max > 0 && max < 1e-30;
    }

    private static double maxCentredNorm2(PointSet p, double[] mean) {
        int d = p.dim();
        float[] v = p.values();
        double max = 0;
        for (int i = 0; i < p.size(); i++) {
            double s = 0;
            for (int k = 0; k < d; k++) {
                double c = v[i * d + k] - mean[k];
                s += c * c;
            }
            max = Math.max(max, s);
        }
        return max;
    }

    /**
     * Whether every value is finite, and small enough that the GEMM's sums of products of them stay finite in float32
     * (the squared norms are up to {@code 2^64}; beyond, the float64 host engine is used).
     */
    private static boolean finite(float[] v) {
        for (float x : v) {
            if (!(Math.abs(x) <= 0x1p64f)) {
                return false;
            }
        }
        return true;
    }

    /** What runs on each product tile: {@code c} holds {@code [i1 − i0, j1 − j0]}, {@code rows} has {@code i1 − i0}. */
    @FunctionalInterface
    private interface ProductTile {
        void accept(int i0, int j0, Tensor c, Tensor rows);
    }

    /**
     * Every tile {@code c = alpha · left[i0:i1] · right[j0:j1]ᵀ} ({@code T x T}, the edge tiles smaller), on the
     * backend, to {@code body}; with {@code upper} only the tiles with {@code j0 >= i0} (a symmetric sum).
     */
    private void forEachProductTile(TensorScope scope, Tensor left, Tensor right, float alpha, boolean upper,
                                    ProductTile body) {
        Backend be = backend;
        int n = (int) left.shape(0);
        int m = (int) right.shape(0);
        int t = tile;
        Tensor tileBuf = be.empty(scope, DType.F32, (long) Math.min(t, n) * Math.min(t, m));
        Tensor rowBuf = be.empty(scope, DType.F32, Math.min(t, n));
        for (int i0 = 0; i0 < n; i0 += t) {
            int i1 = Math.min(n, i0 + t);
            Tensor ai = left.slice(0, i0, i1);
            for (int j0 = upper ? i0 : 0; j0 < m; j0 += t) {
                int j1 = Math.min(m, j0 + t);
                Tensor c = tileBuf.slice(0, 0, (long) (i1 - i0) * (j1 - j0)).reshape(i1 - i0, j1 - j0);
                be.gemm(false, true, alpha, ai, right.slice(0, j0, j1), 0f, c);
                body.accept(i0, j0, c, rowBuf.slice(0, 0, i1 - i0));
            }
        }
    }

    /** {@code Σ} of a row-sum tensor's values, in float64. */
    private static double sum(Tensor rows) {
        double s = 0;
        for (float v : rows.toFloatArray()) {
            s += v;
        }
        return s;
    }

    private double gemmSum(PointSet a, PointSet b, Kind kind, double gamma) {
        boolean symmetric = a == b;
        double[] mean = pooledMean(a, b);
        float[] la = augmented(a, mean, true);
        float[] rb = augmented(b, mean, false);
        if (!finite(la) || !finite(rb) || tooSmall(a, b, mean)) {
            return hostSum(a, b, kind, gamma);                          // ‖x − μ‖² beyond float32: float64 instead
        }
        Backend be = backend;
        double[] total = {0};
        try (TensorScope scope = TensorScope.open()) {
            Tensor left = be.fromArray(scope, la, a.size(), a.dim() + 2);           // [N, D + 2]
            Tensor right = be.fromArray(scope, rb, b.size(), a.dim() + 2);          // [M, D + 2]
            float alpha = kind == Kind.RBF ? (float) -gamma : 1f;
            forEachProductTile(scope, left, right, alpha, symmetric, (i0, j0, c, rows) -> {   // α‖a_i − b_j‖²
                if (kind == Kind.RBF) {
                    be.binary(Ops.Binary.MIN, c, 0f, c);                             // rounding can make d² < 0
                    be.unary(Ops.Unary.EXP, c, c);                                   // exp(−γ d²) ≤ 1
                } else {
                    be.binary(Ops.Binary.MAX, c, 0f, c);                             // rounding can make d² < 0
                    be.unary(Ops.Unary.SQRT, c, c);                                  // d
                }
                be.reduceLastDim(Ops.Reduce.SUM, c, rows);
                double s = sum(rows);
                total[0] += symmetric && j0 != i0 ? 2 * s : s;
            });
        }
        return total[0];
    }

    private double[] gemmNearest(PointSet q, PointSet r) {
        int n = q.size();
        double[] mean = pooledMean(q, r);
        float[] lq = augmented(q, mean, true);
        float[] rr = augmented(r, mean, false);
        if (!finite(lq) || !finite(rr) || tooSmall(q, r, mean)) {
            return hostNearest(q, r);
        }
        Backend be = backend;
        double[] best = new double[n];                                              // max over tiles of −d²
        Arrays.fill(best, Double.NEGATIVE_INFINITY);
        try (TensorScope scope = TensorScope.open()) {
            Tensor left = be.fromArray(scope, lq, n, q.dim() + 2);
            Tensor right = be.fromArray(scope, rr, r.size(), q.dim() + 2);
            forEachProductTile(scope, left, right, -1f, false, (i0, j0, c, rows) -> {          // −d²
                be.reduceLastDim(Ops.Reduce.MAX, c, rows);                           // −min_j d²
                float[] h = rows.toFloatArray();
                for (int i = 0; i < h.length; i++) {
                    best[i0 + i] = Math.max(best[i0 + i], h[i]);
                }
            });
        }
        for (int i = 0; i < n; i++) {
            best[i] = Math.sqrt(Math.max(0, -best[i]));
        }
        return best;
    }

    private void gemmTiles(float[] la, float[] rb, int n, int m, int k2, TileVisitor visitor) {
        Backend be = backend;
        try (TensorScope scope = TensorScope.open()) {
            Tensor left = be.fromArray(scope, la, n, k2);
            Tensor right = be.fromArray(scope, rb, m, k2);
            double[] host = new double[Math.min(tile, n) * Math.min(tile, m)];
            forEachProductTile(scope, left, right, 1f, false, (i0, j0, c, rows) -> {           // d²
                float[] f = c.toFloatArray();
                for (int q = 0; q < f.length; q++) {
                    host[q] = Math.max(0, f[q]);                                    // rounding can make d² < 0
                }
                visitor.visit(i0, j0, (int) c.shape(0), (int) c.shape(1), host);
            });
        }
    }

    private double gemmPolynomialSum(PointSet a, PointSet b, int degree, float gamma, float coef0) {
        boolean symmetric = a == b;
        int n = a.size();
        int m = b.size();
        Backend be = backend;
        double[] total = {0};
        try (TensorScope scope = TensorScope.open()) {
            Tensor left = be.fromArray(scope, a.values(), n, a.dim());
            Tensor right = symmetric ? left : be.fromArray(scope, b.values(), m, a.dim());
            Tensor powBuf = be.empty(scope, DType.F32, (long) Math.min(tile, n) * Math.min(tile, m));
            forEachProductTile(scope, left, right, gamma, symmetric, (i0, j0, c, rows) -> {    // γ a_i·b_j
                Tensor pw = powBuf.slice(0, 0, c.numel()).reshape(c.shape());
                be.binary(Ops.Binary.ADD, c, coef0, c);                               // base = γ a·b + c
                be.copy(c, pw);
                for (int p = 1; p < degree; p++) {
                    be.binary(Ops.Binary.MUL, pw, c, pw);                             // base^p
                }
                be.reduceLastDim(Ops.Reduce.SUM, pw, rows);
                double s = sum(rows);
                total[0] += symmetric && j0 != i0 ? 2 * s : s;
            });
        }
        return total[0];
    }
}
