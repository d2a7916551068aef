package org.diffusion4j.cpu;

import org.diffusion4j.nn.attention.AttentionDims;
import org.diffusion4j.nn.attention.AttentionMath;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * Fused scaled dot-product attention on host memory: FlashAttention-2 (Dao 2023, Algorithms 1 and 2) with the
 * tile products on OpenBLAS and the online softmax in Java loops. No {@code Tq×Tk} matrix is ever formed; the
 * working set of a task is a few tiles of at most {@value #BLOCK_Q}×{@value #BLOCK_K} floats. The arithmetic is
 * {@link AttentionMath}.
 *
 * <p><b>Tiling.</b> Queries are cut into blocks of {@value #BLOCK_Q} rows, keys into tiles of {@value #BLOCK_K}
 * (the last block or tile may be shorter; both counted from the start of each (batch, head)).
 * <ul>
 *   <li><b>Forward</b>: one task per (batch, head, query block) — Algorithm 1's parallel outer loop. For each key
 *       tile {@code j}: {@code Sᵀ = K_j·Q_iᵀ} (sgemm, {@code [bk, bq]}: the tile is kept transposed so that the
 *       per-query max and sum are column reductions, vectorisable as elementwise folds), new maxima,
 *       {@code Pᵀ = exp2(c·Sᵀ − mc)}, sums, rescale of the rows of {@code O_i} whose maximum changed,
 *       {@code O_i += (Pᵀ)ᵀ·V_j} (sgemm, accumulated in {@code out} itself). At the end {@code O_i /= l} and
 *       {@code L_i = mc·ln 2 + ln l}.</li>
 *   <li><b>Backward</b>: one task per (batch, head) — Algorithm 2 with its outer loop over key tiles and inner
 *       loop over query blocks run in order inside the task, so {@code dQ_i} is accumulated in a fixed order
 *       without atomics: five sgemms per tile ({@code S}, {@code dV_j += Pᵀ·dO_i}, {@code dP = dO_i·V_jᵀ},
 *       {@code dQ_i += scale·dS·K_j}, {@code dK_j += scale·dSᵀ·Q_i}), accumulated in {@code dq}, {@code dk},
 *       {@code dv} themselves. A call with fewer (batch, head) pairs than threads leaves threads idle.</li>
 * </ul>
 *
 * <p><b>Threads.</b> Tasks run on a fixed pool of {@code threads} threads (the caller plus workers, started at the
 * first call large enough); OpenBLAS runs single-threaded inside them (registered through
 * {@code OpenBlas.acquire(1)} for the whole call), so the pool and BLAS never compete for cores: measured on 2
 * cores at {@code B = 2, H = 4, T = 1024, Dh = 64}, letting OpenBLAS use 2 threads for the tile products (with or
 * without our pool) is 10–20× slower, as its threads are woken for every 64×128 product. Task
 * boundaries depend only on the shapes, each task writes only its own rows, and every reduction has one fixed
 * order, so <b>results are bitwise the same for any thread count</b> (and for any batch composition).
 *
 * <p><b>Cost.</b> Forward {@code 4·B·H·Tq·Tk·Dh} FLOPs in two sgemms per tile plus about 15 float operations per
 * score for the softmax (max fold, exponential, sum fold, tile copies); backward 2.5× the FLOPs in five sgemms per
 * tile plus the exponential and {@code dS}. Bytes: {@code q}, {@code out} once,
 * {@code k}, {@code v} once per query block (from cache for short sequences).
 *
 * <p>Works with any {@link Backend} whose device is the CPU. Thread-safe. {@link #close()} frees the scratch
 * memory; later calls throw {@link IllegalStateException}.
 */
public final class CpuAttention implements AttentionOps {

    /** Query rows per block ({@code B_r} of FlashAttention-2). */
    public static final int BLOCK_Q = 64;
    /** Keys per tile ({@code B_c}). */
    public static final int BLOCK_K = 128;
    /** FLOPs below which a call runs on the calling thread alone (a pool hand-off costs a few microseconds). */
    static final double SERIAL_MAX_FLOPS = 1 << 20;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    private static final int TILE = BLOCK_Q * BLOCK_K;

    private final Backend backend;
    private final Arena arena = Arena.ofShared();               // scratch memory of this instance
    private final ConcurrentLinkedDeque<Scratch> free = new ConcurrentLinkedDeque<>();
    private final OpsPool pool;

    /**
     * Fused attention on {@code backend}'s tensors with its thread count ({@link CpuBackend#threads()}), or
     * {@link CpuBackend#defaultThreads()} for another host backend.
     *
     * @throws IllegalArgumentException when the backend's device is not the CPU
     */
    public CpuAttention(Backend backend) {
        this(backend, OpsPool.threadsOf(backend));
    }

    /**
     * Fused attention on {@code threads} threads.
     *
     * @throws IllegalArgumentException when the backend's device is not the CPU or {@code threads < 1}
     */
    public CpuAttention(Backend backend, int threads) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.pool = new OpsPool("CpuAttention", backend, threads);
    }

    @Override
    public Backend backend() {
        return backend;
    }

    /** Calls inside {@link #run} now (guarded by {@code this}); {@link #close()} refuses while there are any. */
    private int active;

    /** Threads a call runs on. */
    public int threads() {
        return pool.threads();
    }

    @Override
    public String toString() {
        return "CpuAttention[" + pool.threads() + " threads, tiles " + BLOCK_Q + "x" + BLOCK_K + " on " + backend.name() + "]";
    }

    /**
     * Shuts the worker threads down and frees the scratch memory; later calls throw. Idempotent.
     *
     * @throws IllegalStateException changing nothing while calls on other threads are running (close after they
     *                               return)
     */
    @Override
    public synchronized void close() {
        if (pool.isClosed()) {
            return;
        }
        if (active > 0) {
            throw new IllegalStateException("CpuAttention is in use by " + active + " call" + (active == 1 ? "" : "s")
                    + " on other threads; close it after they return");
        }
        pool.close();
        free.clear();
        arena.close();
    }

    // ---------------------------------------------------------------- forward

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        AttentionDims d = AttentionOps.checkForward(backend, q, k, v, scale, out, lse);
        long problems = d.problems();
        if (problems == 0 || d.queries() == 0) {
            return;
        }
        int tq = toInt("Tq", d.queries());
        int tk = toInt("Tk", d.keys());
        int dh = (int) d.headDim();
        int qBlocks = ceilDiv(tq, BLOCK_Q);
        long taskCount = problems * qBlocks;
        if (taskCount > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("attention " + d + " has too many query blocks (" + taskCount + ")");
        }
        MemorySegment qs = q.segment();
        MemorySegment ks = k.segment();
        MemorySegment vs = v.segment();
        MemorySegment os = out.segment();
        MemorySegment ls = lse == null ? null : lse.segment();
        float c = AttentionMath.log2Scale(scale);
        run((int) taskCount, d.forwardFlops(), (sc, blas, t) -> {
            long bh = t / qBlocks;
            int i0 = (t % qBlocks) * BLOCK_Q;
            int bq = Math.min(BLOCK_Q, tq - i0);
            long row0 = bh * tq + i0;                                     // first query row of the block
            forwardBlock(sc, blas, qs.asSlice(row0 * dh * 4), ks.asSlice(bh * tk * dh * 4),
                    vs.asSlice(bh * tk * dh * 4), os.asSlice(row0 * dh * 4), ls, row0, bq, tk, dh, c);
        });
    }

    /**
     * Algorithm 1 for one block of {@code bq} query rows: {@code qi [bq, Dh]}, {@code kh}, {@code vh [Tk, Dh]} of
     * its (batch, head), {@code oi [bq, Dh]} written, {@code lse[row0 .. row0 + bq)} written when present.
     *
     * <p>The score tile is formed transposed, {@code Sᵀ = K_j·Q_iᵀ [bk, bq]} (one column per query), so that the
     * per-query maxima and sums are column reductions: elementwise max/add of whole halves of the tile, which C2
     * vectorises, where row reductions over 128 keys would run scalar.
     */
    private static void forwardBlock(Scratch sc, OpenBlas blas, MemorySegment qi, MemorySegment kh, MemorySegment vh,
                                     MemorySegment oi, MemorySegment ls, long row0, int bq, int tk, int dh, float c) {
        float[] st = sc.s;
        float[] m = sc.m;
        float[] mc = sc.mc;
        float[] alpha = sc.alpha;
        float[] red = sc.red;
        double[] l = sc.l;
        for (int j0 = 0; j0 < tk; j0 += BLOCK_K) {
            int bk = Math.min(BLOCK_K, tk - j0);
            int n = bk * bq;
            boolean first = j0 == 0;
            // Sᵀ = K_j·Q_iᵀ  [bk, bq]
            blas.sgemm(false, true, bk, bq, dh, 1f, kh.asSlice((long) j0 * dh * 4), dh, qi, dh, 0f, sc.tile, bq);
            MemorySegment.copy(sc.tile, F32, 0, st, 0, n);
            columnMax(st, bk, bq, sc.fold, red);                          // rowmax(S_ij) per query
            for (int r = 0; r < bq; r++) {
                float mNew = first ? red[r] : Math.max(m[r], red[r]);
                float mcNew = mNew * c;
                alpha[r] = first ? 0f : AttentionMath.rescale(mc[r], mcNew);
                m[r] = mNew;
                mc[r] = mcNew;
                sc.negShift[r] = -mcNew;
            }
            for (int j = 0; j < bk; j++) {
                System.arraycopy(sc.negShift, 0, sc.shift, j * bq, bq);
            }
            exp2(sc, st, n, c);                                           // Pᵀ = exp2(c·Sᵀ − mc)
            columnSum(st, bk, bq, sc.fold, red);                          // rowsum(P) per query
            for (int r = 0; r < bq; r++) {
                l[r] = first ? red[r] : alpha[r] * l[r] + red[r];
            }
            MemorySegment.copy(st, 0, sc.tile, F32, 0, n);
            if (!first) {
                for (int r = 0; r < bq; r++) {
                    if (alpha[r] != 1f) {
                        scaleRow(oi, (long) r * dh, dh, alpha[r]);            // O_i = diag(α)·O_i
                    }
                }
            }
            // O_i (+)= P·V_j = (Pᵀ)ᵀ·V_j  [bq, Dh]
            blas.sgemm(true, false, bq, dh, bk, 1f, sc.tile, bq, vh.asSlice((long) j0 * dh * 4), dh,
                    first ? 0f : 1f, oi, dh);
        }
        for (int r = 0; r < bq; r++) {
            scaleRow(oi, (long) r * dh, dh, (float) (1.0 / l[r]));              // O_i = diag(l)⁻¹·O_i
            if (ls != null) {
                ls.setAtIndex(F32, row0 + r, AttentionMath.logSumExp(mc[r], l[r]));
            }
        }
    }

    // ---------------------------------------------------------------- backward

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, float scale, Tensor dq,
                         Tensor dk, Tensor dv) {
        AttentionDims d = AttentionOps.checkBackward(backend, q, k, v, out, lse, dOut, scale, dq, dk, dv);
        long problems = d.problems();
        if (problems == 0) {
            return;
        }
        if (d.queries() == 0) { // no query attends: every key and value gradient is zero
            backend.fill(dk, 0f);
            backend.fill(dv, 0f);
            return;
        }
        if (problems > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("attention " + d + " has too many (batch, head) pairs");
        }
        int tq = toInt("Tq", d.queries());
        int tk = toInt("Tk", d.keys());
        int dh = (int) d.headDim();
        MemorySegment qs = q.segment();
        MemorySegment ks = k.segment();
        MemorySegment vs = v.segment();
        MemorySegment os = out.segment();
        MemorySegment ls = lse.segment();
        MemorySegment dos = dOut.segment();
        MemorySegment dqs = dq.segment();
        MemorySegment dks = dk.segment();
        MemorySegment dvs = dv.segment();
        float c = AttentionMath.log2Scale(scale);
        run((int) problems, d.backwardFlops(), (sc, blas, t) -> {
            long qo = (long) t * tq * dh * 4;                               // byte offset of this head's queries
            long ko = (long) t * tk * dh * 4;
            backwardHead(sc, blas, qs.asSlice(qo), ks.asSlice(ko), vs.asSlice(ko), os.asSlice(qo),
                    ls.asSlice((long) t * tq * 4), dos.asSlice(qo), dqs.asSlice(qo), dks.asSlice(ko), dvs.asSlice(ko),
                    tq, tk, dh, scale, c);
        });
    }

    /** Algorithm 2 for one (batch, head): every segment starts at that head's row 0. */
    private static void backwardHead(Scratch sc, OpenBlas blas, MemorySegment qh, MemorySegment kh, MemorySegment vh,
                                     MemorySegment oh, MemorySegment lh, MemorySegment doh, MemorySegment dqh,
                                     MemorySegment dkh, MemorySegment dvh, int tq, int tk, int dh, float scale,
                                     float c) {
        float[] dRow = sc.rows(tq);                                       // D_i = rowsum(dO∘O)
        float[] lc = sc.rows2(tq);                                        // Lc_i = L_i·log2(e)
        for (int i = 0; i < tq; i++) {
            dRow[i] = rowDot(doh, oh, (long) i * dh, dh, sc.rowA, sc.rowB);
            lc[i] = AttentionMath.lseShift(lh.getAtIndex(F32, i));
        }
        float[] p = sc.s;
        float[] dp = sc.dp;
        for (int j0 = 0; j0 < tk; j0 += BLOCK_K) {
            int bk = Math.min(BLOCK_K, tk - j0);
            long kOff = (long) j0 * dh * 4;
            MemorySegment kj = kh.asSlice(kOff);
            MemorySegment vj = vh.asSlice(kOff);
            MemorySegment dkj = dkh.asSlice(kOff);
            MemorySegment dvj = dvh.asSlice(kOff);
            for (int i0 = 0; i0 < tq; i0 += BLOCK_Q) {
                int bq = Math.min(BLOCK_Q, tq - i0);
                long qOff = (long) i0 * dh * 4;
                MemorySegment qi = qh.asSlice(qOff);
                MemorySegment doi = doh.asSlice(qOff);
                float accK = i0 == 0 ? 0f : 1f;                           // dK_j, dV_j: first query block overwrites
                float accQ = j0 == 0 ? 0f : 1f;                           // dQ_i: first key tile overwrites
                // S = Q_i·K_jᵀ, P = exp2(c·S − Lc)  [bq, bk]
                blas.sgemm(false, true, bq, bk, dh, 1f, qi, dh, kj, dh, 0f, sc.tile, bk);
                MemorySegment.copy(sc.tile, F32, 0, p, 0, bq * bk);
                for (int r = 0; r < bq; r++) {
                    Arrays.fill(sc.shift, r * bk, (r + 1) * bk, -lc[i0 + r]);
                    Arrays.fill(sc.dFill, r * bk, (r + 1) * bk, dRow[i0 + r]);
                }
                exp2(sc, p, bq * bk, c);
                MemorySegment.copy(p, 0, sc.tile, F32, 0, bq * bk);
                // dV_j (+)= Pᵀ·dO_i  [bk, Dh]
                blas.sgemm(true, false, bk, dh, bq, 1f, sc.tile, bk, doi, dh, accK, dvj, dh);
                // dP = dO_i·V_jᵀ  [bq, bk]
                blas.sgemm(false, true, bq, bk, dh, 1f, doi, dh, vj, dh, 0f, sc.tile2, bk);
                MemorySegment.copy(sc.tile2, F32, 0, dp, 0, bq * bk);
                dScore(p, dp, sc.dFill, bq * bk);                             // dS = P∘(dP − D)
                MemorySegment.copy(dp, 0, sc.tile2, F32, 0, bq * bk);
                // dQ_i (+)= scale·dS·K_j  [bq, Dh]
                blas.sgemm(false, false, bq, dh, bk, scale, sc.tile2, bk, kj, dh, accQ, dqh.asSlice(qOff), dh);
                // dK_j (+)= scale·dSᵀ·Q_i  [bk, Dh]
                blas.sgemm(true, false, bk, dh, bq, scale, sc.tile2, bk, qi, dh, accK, dkj, dh);
            }
        }
    }

    // ---------------------------------------------------------------- row kernels (the AttentionMath formulas)

    /**
     * {@code out[c] = max_j a[j·w + c]} for {@code a [rows, w]}, {@code rows ≥ 1}: the rows are folded in halves,
     * {@code t[i] = max(t[i], t[i + ⌈r/2⌉·w])}, until one row is left — long elementwise loops that C2 vectorises, in
     * an order that depends only on {@code rows}. NaN-propagating. {@code a} is not modified.
     */
    static void columnMax(float[] a, int rows, int w, float[] t, float[] out) {
        if (rows == 1) {
            System.arraycopy(a, 0, out, 0, w);
            return;
        }
        int half = rows / 2;
        int keep = rows - half;
        int n = half * w;
        int shift = keep * w;
        for (int i = 0; i < n; i++) {
            t[i] = Math.max(a[i], a[i + shift]);
        }
        if (keep > half) {
            System.arraycopy(a, n, t, n, w);
        }
        for (int r = keep; r > 1; r = keep) {
            half = r / 2;
            keep = r - half;
            n = half * w;
            shift = keep * w;
            for (int i = 0; i < n; i++) {
                t[i] = Math.max(t[i], t[i + shift]);
            }
        }
        System.arraycopy(t, 0, out, 0, w);
    }

    /**
     * {@code out[c] = Σ_j a[j·w + c]} in float for {@code a [rows, w]}, {@code rows ≥ 1}, by the same pairwise
     * folding as {@link #columnMax} (a fixed tree that depends only on {@code rows}).
     */
    static void columnSum(float[] a, int rows, int w, float[] t, float[] out) {
        if (rows == 1) {
            System.arraycopy(a, 0, out, 0, w);
            return;
        }
        int half = rows / 2;
        int keep = rows - half;
        int n = half * w;
        int shift = keep * w;
        for (int i = 0; i < n; i++) {
            t[i] = a[i] + a[i + shift];
        }
        if (keep > half) {
            System.arraycopy(a, n, t, n, w);
        }
        for (int r = keep; r > 1; r = keep) {
            half = r / 2;
            keep = r - half;
            n = half * w;
            shift = keep * w;
            for (int i = 0; i < n; i++) {
                t[i] = t[i] + t[i + shift];
            }
        }
        System.arraycopy(t, 0, out, 0, w);
    }

    /**
     * {@code s[i] = exp2(fma(s[i], c, shift[i]))} for {@code i < n} ({@link AttentionMath#exp2}, bitwise), as three
     * plain counted loops over the whole tile that C2 vectorises: (1) clamp, integer part {@code k} and the
     * polynomial {@code 2^f}; (2) the exponent bits of {@code 2^k} in an int array, reinterpreted as floats by a
     * bulk copy (C2 does not vectorise {@code Float.intBitsToFloat}); (3) the product. Whole-tile loops rather than
     * per-row ones because C2's unrolled vector loop needs a few hundred iterations to pay off; the per-row shift
     * comes in through {@code shift[]}.
     */
    static void exp2(Scratch sc, float[] s, int n, float c) {
        float[] shift = sc.shift;
        float[] kf = sc.kf;
        for (int i = 0; i < n; i++) {
            float x = Math.max(Math.fma(s[i], c, shift[i]), AttentionMath.EXP2_MIN);
            float k = (x + AttentionMath.ROUNDER) - AttentionMath.ROUNDER;
            float f = x - k;
            s[i] = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(AttentionMath.E7, f,
                    AttentionMath.E6), f, AttentionMath.E5), f, AttentionMath.E4), f, AttentionMath.E3), f,
                    AttentionMath.E2), f, AttentionMath.E1), f, 1f);
            kf[i] = k;
        }
        int[] bits = sc.bits;
        for (int i = 0; i < n; i++) {
            bits[i] = ((int) kf[i] + 127) << 23;
        }
        MemorySegment.copy(sc.bitsSeg, 0, sc.powSeg, 0, (long) n * 4);
        float[] pow = sc.pow;
        for (int i = 0; i < n; i++) {
            s[i] *= pow[i];
        }
    }

    /** {@code dp[i] = p[i]·(dp[i] − d[i])} for {@code i < n} ({@link AttentionMath#dScore}). */
    static void dScore(float[] p, float[] dp, float[] d, int n) {
        for (int i = 0; i < n; i++) {
            dp[i] = p[i] * (dp[i] - d[i]);
        }
    }

    /** Multiplies {@code n} floats of {@code seg} from element {@code off} by {@code a}. */
    private static void scaleRow(MemorySegment seg, long off, int n, float a) {
        for (int i = 0; i < n; i++) {
            seg.setAtIndex(F32, off + i, seg.getAtIndex(F32, off + i) * a);
        }
    }

    /** {@code Σ_d a[off + d]·b[off + d]} in float64 in the fixed four-lane order of {@link Reductions}, rounded once. */
    private static float rowDot(MemorySegment a, MemorySegment b, long off, int n, float[] bufA, float[] bufB) {
        MemorySegment.copy(a, F32, off * 4, bufA, 0, n);
        MemorySegment.copy(b, F32, off * 4, bufB, 0, n);
        return (float) Reductions.dotOf(bufA, bufB, n);
    }

    // ---------------------------------------------------------------- tasks and scratch

    /** A task body: runs task {@code t} with a scratch area of its own. */
    @FunctionalInterface
    private interface TileTask {
        void run(Scratch sc, OpenBlas blas, int t);
    }

    /**
     * Runs tasks {@code [0, tasks)} with OpenBLAS held single-threaded: on the pool when there is more than one task
     * and the call is large enough, else in order on the calling thread. Either way the results are the same.
     */
    private void run(int tasks, double flops, TileTask body) {
        WorkerPool p;
        synchronized (this) {
            if (pool.isClosed()) {
                throw new IllegalStateException("CpuAttention is closed");
            }
            p = pool.poolFor(tasks, flops, SERIAL_MAX_FLOPS);
            active++;
        }
        OpenBlas blas = OpenBlas.get();
        try {
            blas.acquire(1);
        } catch (RuntimeException | Error e) {
            endCall();
            throw e;
        }
        try {
            WorkerPool.Task task = t -> {
                Scratch sc = take();
                try {
                    body.run(sc, blas, t);
                } finally {
                    free.push(sc);
                }
            };
            pool.runCounted(p, tasks, task);
        } finally {
            blas.release();
            endCall();
        }
    }

    private synchronized void endCall() {
        active--;
    }

    private Scratch take() {
        Scratch sc = free.poll();
        if (sc != null) {
            return sc;
        }
        synchronized (this) {
            if (pool.isClosed()) {
                throw new IllegalStateException("CpuAttention is closed");
            }
            return new Scratch(arena);
        }
    }

    /** Per-task working memory: native tiles for OpenBLAS, heap rows for the Java loops. */
    static final class Scratch {
        final MemorySegment tile;      // S, then P  [BLOCK_Q, BLOCK_K], native
        final MemorySegment tile2;     // dP, then dS (backward), native
        final float[] s = new float[TILE];
        final float[] dp = new float[TILE];
        final float[] kf = new float[TILE];
        final float[] shift = new float[TILE];
        final float[] dFill = new float[TILE];
        final int[] bits = new int[TILE];
        final float[] pow = new float[TILE];
        final MemorySegment bitsSeg = MemorySegment.ofArray(bits);
        final MemorySegment powSeg = MemorySegment.ofArray(pow);
        final float[] fold = new float[TILE];
        final float[] red = new float[BLOCK_Q];
        final float[] negShift = new float[BLOCK_Q];
        final float[] m = new float[BLOCK_Q];
        final float[] mc = new float[BLOCK_Q];
        final float[] alpha = new float[BLOCK_Q];
        final double[] l = new double[BLOCK_Q];
        final float[] rowA = new float[AttentionOps.MAX_HEAD_DIM];
        final float[] rowB = new float[AttentionOps.MAX_HEAD_DIM];
        private float[] perRow = new float[0];
        private float[] perRow2 = new float[0];

        Scratch(Arena arena) {
            tile = arena.allocate((long) TILE * 4, 64);
            tile2 = arena.allocate((long) TILE * 4, 64);
        }

        float[] rows(int n) {
            if (perRow.length < n) {
                perRow = new float[n];
            }
            return perRow;
        }

        float[] rows2(int n) {
            if (perRow2.length < n) {
                perRow2 = new float[n];
            }
            return perRow2;
        }
    }

    private static int toInt(String what, long n) {
        if (n > Integer.MAX_VALUE / BLOCK_K) {
            throw new IllegalArgumentException("attention: " + what + " = " + n + " is too long (max "
                    + Integer.MAX_VALUE / BLOCK_K + ")");
        }
        return (int) n;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
