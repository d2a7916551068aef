package org.diffusion4j.cpu;

import org.diffusion4j.nn.Activation;
import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.NnMath;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * The layer and optimizer ops ({@link NnOps}) on host memory, with the per-element arithmetic of {@link NnMath}.
 * Every op is one pass over its operands (the LayerNorm backward reads each row of {@code x} and {@code dy} once
 * into per-thread scratch and makes its two passes there), staged in blocks of {@value #BLOCK} floats through
 * per-thread arrays so that the inner loops run over plain arrays.
 *
 * <p><b>Work split.</b> Pointwise ops are cut into tasks of whole rows (about {@value #GRAIN} elements each) or of
 * {@value #GRAIN} elements; row reductions run within one task; column and per-sample reductions (bias, γ/β,
 * shift/scale/gate gradients) take per-task float64 partial sums over fixed row chunks — at least
 * {@value #MIN_ROWS} rows, never straddling a sample when a per-sample sum is taken — and add them in task order.
 * Task boundaries depend only on the shapes, never on the thread count, so <b>every result is bitwise the same for
 * any thread count</b>. Tasks run on a fixed pool of {@code threads} threads (the caller plus workers), started at
 * the first op of at least {@code 32 Ki} elements; smaller ops run on the calling thread.
 *
 * <p>Works with any {@link Backend} whose device is the CPU. Thread-safe.
 */
public final class CpuNnOps implements NnOps {

    /** Floats staged per inner block. */
    static final int BLOCK = 1024;
    /** Elements per task of a pointwise op. */
    static final long GRAIN = WorkerPool.GRAIN;
    /** Fewest rows of a reduction task (bounds the partial-sum memory by 1/16 of the input). */
    static final long MIN_ROWS = 16;
    /** Columns per task of the embedding scatter-add. */
    static final long EMBED_COLS = 1024;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private final Backend backend;
    private final OpsPool pool;

    /**
     * Ops on {@code backend}'s tensors with its thread count ({@link CpuBackend#threads()}), or
     * {@link CpuBackend#defaultThreads()} for another host backend.
     *
     * @throws IllegalArgumentException when the backend's device is not the CPU
     */
    public CpuNnOps(Backend backend) {
        this(backend, OpsPool.threadsOf(backend));
    }

    /**
     * Ops on {@code threads} threads.
     *
     * @throws IllegalArgumentException when the backend's device is not the CPU or {@code threads < 1}
     */
    public CpuNnOps(Backend backend, int threads) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.pool = new OpsPool("CpuNnOps", backend, threads);
    }

    @Override
    public Backend backend() {
        return backend;
    }

    /** Threads an op runs on. */
    public int threads() {
        return pool.threads();
    }

    /** Shuts this instance's worker threads down (if any were started); later ops run on the calling thread. */
    @Override
    public void close() {
        pool.close();
    }

    @Override
    public String toString() {
        return "CpuNnOps[" + pool.threads() + " threads on " + backend.name() + "]";
    }

    private void forTasks(long tasks, long elements, WorkerPool.Task body) {
        pool.forTasks(tasks, elements, WorkerPool.SERIAL_MAX, body);
    }

    /** Rows per task of a pointwise row op over rows of {@code cols} elements. */
    private static long pointwiseRows(long cols) {
        return Math.max(1, GRAIN / Math.max(1, cols));
    }

    /** Rows per task of a reducing row op. */
    private static long reductionRows(long cols) {
        return Math.max(MIN_ROWS, ceilDiv(GRAIN, Math.max(1, cols)));
    }

    // ---------------------------------------------------------------- activations

    @Override
    public void activation(Activation act, Tensor x, Tensor bias, Tensor pre, Tensor out) {
        NnOps.checkActivation(backend, act, x, bias, pre, out);
        long n = x.numel();
        if (n == 0) {
            return;
        }
        long cols = x.cols();
        long rows = x.rows();
        float[] b = bias == null ? null : bias.toFloatArray();
        MemorySegment xs = x.segment();
        MemorySegment ps = pre == null ? null : pre.segment();
        MemorySegment os = out.segment();
        long rpt = pointwiseRows(cols);
        forTasks(ceilDiv(rows, rpt), n, t -> {
            Scratch sc = SCRATCH.get();
            float[] z = sc.a(BLOCK);
            float[] y = sc.b(BLOCK);
            long r1 = Math.min(rows, (t + 1) * rpt);
            for (long r = t * rpt; r < r1; r++) {
                for (long c0 = 0; c0 < cols; c0 += BLOCK) {
                    int len = (int) Math.min(BLOCK, cols - c0);
                    long off = (r * cols + c0) * 4;
                    MemorySegment.copy(xs, F32, off, z, 0, len);
                    if (b != null) {
                        int base = (int) c0;
                        for (int i = 0; i < len; i++) {
                            z[i] = z[i] + b[base + i];
                        }
                    }
                    if (ps != null) {
                        MemorySegment.copy(z, 0, ps, F32, off, len);
                    }
                    activate(act, z, y, len);
                    MemorySegment.copy(y, 0, os, F32, off, len);
                }
            }
        });
    }

    private static void activate(Activation act, float[] z, float[] y, int len) {
        switch (act) {
            case IDENTITY -> System.arraycopy(z, 0, y, 0, len);
            case SILU -> {
                NnMath.sigmoid(z, y, len);
                for (int i = 0; i < len; i++) {
                    y[i] = z[i] * y[i];                                   // = NnMath.silu(z)
                }
            }
            case GELU_TANH -> {
                // three simple loops (argument, σ, product) rather than one: the JIT vectorises each of them, but
                // not the fused loop (measured: 1.8 vs 11.7 ns per element on Zen 4, JDK 25); σ is the bulk form,
                // whose loop body calls nothing (see NnMath.sigmoid(float[], float[], int))
                for (int i = 0; i < len; i++) {
                    y[i] = 2f * NnMath.geluInner(z[i]);
                }
                NnMath.sigmoid(y, y, len);
                for (int i = 0; i < len; i++) {
                    y[i] = z[i] * y[i];                                   // = NnMath.gelu(z)
                }
            }
        }
    }

    @Override
    public void activationBackward(Activation act, Tensor pre, Tensor dy, Tensor dx) {
        NnOps.checkActivationBackward(backend, act, pre, dy, dx);
        long n = pre.numel();
        if (n == 0) {
            return;
        }
        MemorySegment zs = pre.segment();
        MemorySegment gs = dy.segment();
        MemorySegment os = dx.segment();
        forTasks(ceilDiv(n, GRAIN), n, t -> {
            Scratch sc = SCRATCH.get();
            float[] z = sc.a(BLOCK);
            float[] g = sc.b(BLOCK);
            float[] s = sc.c(BLOCK);
            long e1 = Math.min(n, (t + 1) * GRAIN);
            for (long e = t * GRAIN; e < e1; e += BLOCK) {
                int len = (int) Math.min(BLOCK, e1 - e);
                MemorySegment.copy(zs, F32, e * 4, z, 0, len);
                MemorySegment.copy(gs, F32, e * 4, g, 0, len);
                switch (act) {         // separate simple loops, each vectorised (see activate)
                    case IDENTITY -> { }
                    case SILU -> {
                        NnMath.sigmoid(z, s, len);
                        for (int i = 0; i < len; i++) {
                            g[i] = NnMath.siluBackward(z[i], s[i], g[i]);
                        }
                    }
                    case GELU_TANH -> {
                        for (int i = 0; i < len; i++) {
                            z[i] = NnMath.geluGradClamp(z[i]);
                        }
                        for (int i = 0; i < len; i++) {
                            s[i] = 2f * NnMath.geluInner(z[i]);
                        }
                        NnMath.sigmoid(s, s, len);
                        for (int i = 0; i < len; i++) {
                            g[i] = NnMath.geluBackward(z[i], s[i], g[i]);
                        }
                    }
                }
                MemorySegment.copy(g, 0, os, F32, e * 4, len);
            }
        });
    }

    // ---------------------------------------------------------------- bias gradient

    @Override
    public void columnSum(Tensor dy, Tensor out, boolean accumulate) {
        long cols = NnOps.checkColumnSum(backend, dy, out);
        if (cols == 0) {
            return;
        }
        long rows = dy.numel() == 0 ? 0 : dy.rows();
        long rpt = reductionRows(cols);
        long tasks = ceilDiv(rows, rpt);
        int d = Math.toIntExact(cols);
        double[] partial = partials(tasks, d);
        MemorySegment gs = rows == 0 ? null : dy.segment();
        forTasks(tasks, rows * cols, t -> {
            Scratch sc = SCRATCH.get();
            float[] g = sc.a(BLOCK);
            int base = Math.toIntExact(t * (long) d);
            long r1 = Math.min(rows, (t + 1) * rpt);
            for (long r = t * rpt; r < r1; r++) {
                for (int c0 = 0; c0 < d; c0 += BLOCK) {
                    int len = Math.min(BLOCK, d - c0);
                    MemorySegment.copy(gs, F32, (r * cols + c0) * 4, g, 0, len);
                    for (int i = 0; i < len; i++) {
                        partial[base + c0 + i] += g[i];
                    }
                }
            }
        });
        float[] o = accumulate ? out.toFloatArray() : new float[d];
        for (int c = 0; c < d; c++) {
            double s = accumulate ? o[c] : 0.0;
            for (long t = 0; t < tasks; t++) {
                s += partial[(int) (t * d + c)];
            }
            o[c] = (float) s;
        }
        out.copyFrom(o);
    }

    // ---------------------------------------------------------------- LayerNorm + modulation

    @Override
    public void layerNorm(Tensor x, Tensor gamma, Tensor beta, Tensor shift, Tensor scale, float eps, Tensor out,
                          Tensor mean, Tensor rstd) {
        NnOps.Tokens k = NnOps.checkLayerNorm(backend, x, gamma, beta, shift, scale, eps, out, mean, rstd);
        long rows = k.rows();
        long tokens = k.tokens();
        int d = Math.toIntExact(k.dim());
        if (rows == 0 || d == 0) {
            return;
        }
        float[] g = gamma == null ? null : gamma.toFloatArray();
        float[] bt = beta == null ? null : beta.toFloatArray();
        PerSample sh = PerSample.of(shift);
        PerSample sc = PerSample.of(scale);
        MemorySegment xs = x.segment();
        MemorySegment os = out.segment();
        MemorySegment ms = mean == null ? null : mean.segment();
        MemorySegment rs = rstd == null ? null : rstd.segment();
        long rpt = pointwiseRows(d);
        forTasks(ceilDiv(rows, rpt), rows * d, t -> {
            Scratch s = SCRATCH.get();
            float[] row = s.a(d);
            float[] ops = sc == null ? null : s.b(d);
            float[] shf = sh == null ? null : s.c(d);
            long loaded = -1;
            long r1 = Math.min(rows, (t + 1) * rpt);
            for (long r = t * rpt; r < r1; r++) {
                long b = r / tokens;
                if (b != loaded) {
                    if (ops != null) {
                        sc.load(b, ops, d);
                        for (int i = 0; i < d; i++) {
                            ops[i] = 1f + ops[i];
                        }
                    }
                    if (shf != null) {
                        sh.load(b, shf, d);
                    }
                    loaded = b;
                }
                long off = r * d * 4;
                MemorySegment.copy(xs, F32, off, row, 0, d);
                float mu = (float) (Reductions.sumOf(row, 0, d) / d);
                float rs1 = NnMath.rstd(Reductions.sumSquaredDeviationsOf(row, 0, d, mu) / d, eps);
                for (int i = 0; i < d; i++) {
                    row[i] = NnMath.normalize(row[i], mu, rs1);
                }
                if (g != null) {
                    for (int i = 0; i < d; i++) {
                        row[i] = row[i] * g[i];
                    }
                }
                if (bt != null) {
                    for (int i = 0; i < d; i++) {
                        row[i] = row[i] + bt[i];
                    }
                }
                if (ops != null || shf != null) {
                    for (int i = 0; i < d; i++) {
                        row[i] = NnMath.modulate(row[i], ops == null ? 1f : ops[i], shf == null ? 0f : shf[i]);
                    }
                }
                MemorySegment.copy(row, 0, os, F32, off, d);
                if (ms != null) {
                    ms.setAtIndex(F32, r, mu);
                }
                if (rs != null) {
                    rs.setAtIndex(F32, r, rs1);
                }
            }
        });
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor gamma, Tensor beta, Tensor scale, Tensor mean, Tensor rstd,
                                  Tensor dy, Tensor dx, Tensor dGamma, Tensor dBeta, Tensor dShift, Tensor dScale) {
        NnOps.Tokens k = NnOps.checkLayerNormBackward(backend, x, gamma, beta, scale, mean, rstd, dy, dx, dGamma,
                dBeta, dShift, dScale);
        long rows = k.rows();
        long tokens = k.tokens();
        int d = Math.toIntExact(k.dim());
        if (rows == 0 || d == 0) {
            if (k.batch() > 0 && d > 0) {
                zero(dShift);
                zero(dScale);
            }
            return;
        }
        float[] g = gamma == null ? null : gamma.toFloatArray();
        float[] bt = beta == null ? null : beta.toFloatArray();
        PerSample sc = PerSample.of(scale);
        boolean perSample = dShift != null || dScale != null;
        Chunks ch = Chunks.of(k.batch(), tokens, reductionRows(d), perSample);
        double[] pGamma = dGamma == null ? null : partials(ch.count, d);
        double[] pBeta = dBeta == null ? null : partials(ch.count, d);
        double[] pShift = dShift == null ? null : partials(ch.count, d);
        double[] pScale = dScale == null ? null : partials(ch.count, d);
        MemorySegment xs = x.segment();
        MemorySegment gs = dy.segment();
        MemorySegment os = dx.segment();
        MemorySegment ms = mean.segment();
        MemorySegment rs = rstd.segment();
        forTasks(ch.count, rows * d, t -> {
            Scratch s = SCRATCH.get();
            float[] xh = s.a(d);
            float[] dn = s.b(d);
            float[] ops = sc == null ? null : s.c(d);
            float[] gy = s.d(d);
            int base = Math.toIntExact(t * (long) d);
            long loaded = -1;
            long r0 = ch.start(t);
            long r1 = ch.end(t, rows);
            for (long r = r0; r < r1; r++) {
                long b = r / tokens;
                if (ops != null && b != loaded) {
                    sc.load(b, ops, d);
                    for (int i = 0; i < d; i++) {
                        ops[i] = 1f + ops[i];
                    }
                    loaded = b;
                }
                long off = r * d * 4;
                MemorySegment.copy(xs, F32, off, xh, 0, d);
                MemorySegment.copy(gs, F32, off, gy, 0, d);
                float mu = ms.getAtIndex(F32, r);
                float rs1 = rs.getAtIndex(F32, r);
                for (int i = 0; i < d; i++) {
                    xh[i] = NnMath.normalize(xh[i], mu, rs1);
                }
                if (pShift != null) {
                    for (int i = 0; i < d; i++) {
                        pShift[base + i] += gy[i];
                    }
                }
                if (pScale != null) {
                    for (int i = 0; i < d; i++) {
                        float nv = g == null ? xh[i] : xh[i] * g[i];
                        if (bt != null) {
                            nv = nv + bt[i];
                        }
                        pScale[base + i] += (double) gy[i] * nv;
                    }
                }
                if (ops != null) {
                    for (int i = 0; i < d; i++) {
                        dn[i] = gy[i] * ops[i];
                    }
                } else {
                    System.arraycopy(gy, 0, dn, 0, d);
                }
                if (pGamma != null) {
                    for (int i = 0; i < d; i++) {
                        pGamma[base + i] += (double) dn[i] * xh[i];
                    }
                }
                if (pBeta != null) {
                    for (int i = 0; i < d; i++) {
                        pBeta[base + i] += dn[i];
                    }
                }
                if (g != null) {
                    for (int i = 0; i < d; i++) {
                        dn[i] = dn[i] * g[i];           // dx̂
                    }
                }
                float m1 = (float) (Reductions.sumOf(dn, 0, d) / d);
                float m2 = (float) (Reductions.dotOf(dn, xh, d) / d);
                for (int i = 0; i < d; i++) {
                    dn[i] = NnMath.layerNormInputGrad(rs1, dn[i], m1, xh[i], m2);
                }
                MemorySegment.copy(dn, 0, os, F32, off, d);
            }
        });
        if (pGamma != null) {
            addColumns(dGamma, pGamma, ch.count, d);
        }
        if (pBeta != null) {
            addColumns(dBeta, pBeta, ch.count, d);
        }
        if (pShift != null) {
            perSampleSums(dShift, pShift, ch, k.batch(), d);
        }
        if (pScale != null) {
            perSampleSums(dScale, pScale, ch, k.batch(), d);
        }
    }

    // ---------------------------------------------------------------- gated residual

    @Override
    public void gatedResidual(Tensor x, Tensor gate, Tensor f, Tensor out) {
        NnOps.Tokens k = NnOps.checkGatedResidual(backend, x, gate, f, out);
        long rows = k.rows();
        long tokens = k.tokens();
        int d = Math.toIntExact(k.dim());
        if (rows == 0 || d == 0) {
            return;
        }
        PerSample gt = PerSample.of(gate);
        MemorySegment xs = x.segment();
        MemorySegment fs = f.segment();
        MemorySegment os = out.segment();
        long rpt = pointwiseRows(d);
        forTasks(ceilDiv(rows, rpt), rows * d, t -> {
            Scratch s = SCRATCH.get();
            float[] gv = s.a(d);
            float[] xv = s.b(BLOCK);
            float[] fv = s.c(BLOCK);
            long loaded = -1;
            long r1 = Math.min(rows, (t + 1) * rpt);
            for (long r = t * rpt; r < r1; r++) {
                long b = r / tokens;
                if (b != loaded) {
                    gt.load(b, gv, d);
                    loaded = b;
                }
                for (int c0 = 0; c0 < d; c0 += BLOCK) {
                    int len = Math.min(BLOCK, d - c0);
                    long off = (r * d + c0) * 4;
                    MemorySegment.copy(xs, F32, off, xv, 0, len);
                    MemorySegment.copy(fs, F32, off, fv, 0, len);
                    for (int i = 0; i < len; i++) {
                        xv[i] = NnMath.gatedResidual(xv[i], gv[c0 + i], fv[i]);
                    }
                    MemorySegment.copy(xv, 0, os, F32, off, len);
                }
            }
        });
    }

    @Override
    public void gatedResidualBackward(Tensor gate, Tensor f, Tensor dy, Tensor df, Tensor dGate) {
        NnOps.Tokens k = NnOps.checkGatedResidualBackward(backend, gate, f, dy, df, dGate);
        long rows = k.rows();
        long tokens = k.tokens();
        int d = Math.toIntExact(k.dim());
        if (rows == 0 || d == 0) {
            if (k.batch() > 0 && d > 0) {
                zero(dGate);
            }
            return;
        }
        if (df == null && dGate == null) {
            return;
        }
        PerSample gt = PerSample.of(gate);
        Chunks ch = Chunks.of(k.batch(), tokens, reductionRows(d), dGate != null);
        double[] pGate = dGate == null ? null : partials(ch.count, d);
        MemorySegment fs = f.segment();
        MemorySegment gs = dy.segment();
        MemorySegment os = df == null ? null : df.segment();
        forTasks(ch.count, rows * d, t -> {
            Scratch s = SCRATCH.get();
            float[] gv = s.a(d);
            float[] yv = s.b(BLOCK);
            float[] fv = s.c(BLOCK);
            int base = Math.toIntExact(t * (long) d);
            long loaded = -1;
            long r1 = ch.end(t, rows);
            for (long r = ch.start(t); r < r1; r++) {
                long b = r / tokens;
                if (b != loaded) {
                    gt.load(b, gv, d);
                    loaded = b;
                }
                for (int c0 = 0; c0 < d; c0 += BLOCK) {
                    int len = Math.min(BLOCK, d - c0);
                    long off = (r * d + c0) * 4;
                    MemorySegment.copy(gs, F32, off, yv, 0, len);
                    MemorySegment.copy(fs, F32, off, fv, 0, len);
                    if (pGate != null) {
                        for (int i = 0; i < len; i++) {
                            pGate[base + c0 + i] += (double) yv[i] * fv[i];
                        }
                    }
                    if (os != null) {
                        for (int i = 0; i < len; i++) {
                            yv[i] = yv[i] * gv[c0 + i];
                        }
                        MemorySegment.copy(yv, 0, os, F32, off, len);
                    }
                }
            }
        });
        if (pGate != null) {
            perSampleSums(dGate, pGate, ch, k.batch(), d);
        }
    }

    // ---------------------------------------------------------------- embedding

    @Override
    public void embeddingBackward(Tensor indices, Tensor dy, Tensor dTable) {
        NnOps.checkEmbeddingBackward(backend, indices, dy, dTable);
        int n = Math.toIntExact(indices.shape(0));
        long v = dTable.shape(0);
        long d = dTable.shape(1);
        if (n == 0 || d == 0) {
            return;
        }
        int[] idx = indices.segment().toArray(ValueLayout.JAVA_INT);
        for (int i = 0; i < n; i++) {
            if (idx[i] < 0 || idx[i] >= v) {
                throw new IndexOutOfBoundsException("indices[" + i + "] = " + idx[i] + " is outside [0, " + v
                        + ") of dTable " + dTable);
            }
        }
        MemorySegment gs = dy.segment();
        MemorySegment ts = dTable.segment();
        forTasks(ceilDiv(d, EMBED_COLS), (long) n * d, t -> {
            Scratch s = SCRATCH.get();
            float[] acc = s.a(BLOCK);
            float[] row = s.b(BLOCK);
            long c1 = Math.min(d, (t + 1) * EMBED_COLS);
            for (long c0 = t * EMBED_COLS; c0 < c1; c0 += BLOCK) {
                int len = (int) Math.min(BLOCK, c1 - c0);
                for (int i = 0; i < n; i++) {
                    long to = (idx[i] * d + c0) * 4;
                    MemorySegment.copy(ts, F32, to, acc, 0, len);
                    MemorySegment.copy(gs, F32, (i * d + c0) * 4, row, 0, len);
                    for (int j = 0; j < len; j++) {
                        acc[j] = acc[j] + row[j];
                    }
                    MemorySegment.copy(acc, 0, ts, F32, to, len);
                }
            }
        });
    }

    // ---------------------------------------------------------------- AdamW

    @Override
    public void adamw(AdamWStep st, Tensor param, Tensor grad, Tensor m, Tensor v) {
        NnOps.checkAdamw(backend, st, param, grad, m, v);
        long n = param.numel();
        if (n == 0) {
            return;
        }
        MemorySegment ps = param.segment();
        MemorySegment gs = grad.segment();
        MemorySegment mss = m.segment();
        MemorySegment vs = v.segment();
        float gradScale = st.gradScale();
        float decay = st.decay();
        float b1 = st.beta1();
        float c1 = st.oneMinusBeta1();
        float b2 = st.beta2();
        float c2 = st.oneMinusBeta2();
        float stepSize = st.stepSize();
        float ib2 = st.invSqrtBc2();
        float eps = st.eps();
        forTasks(ceilDiv(n, GRAIN), n, t -> {
            Scratch s = SCRATCH.get();
            float[] p = s.a(BLOCK);
            float[] g = s.b(BLOCK);
            float[] mv = s.c(BLOCK);
            float[] vv = s.d(BLOCK);
            long e1 = Math.min(n, (t + 1) * GRAIN);
            for (long e = t * GRAIN; e < e1; e += BLOCK) {
                int len = (int) Math.min(BLOCK, e1 - e);
                long off = e * 4;
                MemorySegment.copy(ps, F32, off, p, 0, len);
                MemorySegment.copy(gs, F32, off, g, 0, len);
                MemorySegment.copy(mss, F32, off, mv, 0, len);
                MemorySegment.copy(vs, F32, off, vv, 0, len);
                for (int i = 0; i < len; i++) {
                    // the operations and their order of NnMath.adamw
                    float gi = gradScale * g[i];
                    float pd = p[i] * decay;
                    float m1 = b1 * mv[i] + c1 * gi;
                    float v1 = b2 * vv[i] + c2 * gi * gi;
                    float denom = (float) Math.sqrt(v1) * ib2 + eps;
                    p[i] = pd - stepSize * (m1 / denom);
                    mv[i] = m1;
                    vv[i] = v1;
                }
                MemorySegment.copy(p, 0, ps, F32, off, len);
                MemorySegment.copy(mv, 0, mss, F32, off, len);
                MemorySegment.copy(vv, 0, vs, F32, off, len);
            }
        });
    }

    // ---------------------------------------------------------------- helpers

    /** Row chunks of a reduction: {@code count} chunks of at most {@code rpt} rows, within samples if asked. */
    private record Chunks(long count, long rpt, long tokens, long perSample, boolean bySample) {

        static Chunks of(long batch, long tokens, long rpt, boolean bySample) {
            if (bySample) {
                long per = ceilDiv(tokens, rpt);
                return new Chunks(batch * per, rpt, tokens, per, true);
            }
            return new Chunks(ceilDiv(batch * tokens, rpt), rpt, tokens, 0, false);
        }

        long start(long t) {
            return bySample ? (t / perSample) * tokens + (t % perSample) * rpt : t * rpt;
        }

        long end(long t, long rows) {
            if (bySample) {
                long b = t / perSample;
                return Math.min((b + 1) * tokens, start(t) + rpt);
            }
            return Math.min(rows, (t + 1) * rpt);
        }
    }

    private static double[] partials(long tasks, int d) {
        long n = tasks * d;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("reduction over " + tasks + " chunks of " + d + " columns is too large");
        }
        return new double[(int) n];
    }

    /** {@code out[c] = (float)(out[c] + Σ_t partial[t][c])}, tasks in order. */
    private static void addColumns(Tensor out, double[] partial, long tasks, int d) {
        float[] o = out.toFloatArray();
        for (int c = 0; c < d; c++) {
            double s = o[c];
            for (long t = 0; t < tasks; t++) {
                s += partial[(int) (t * d + c)];
            }
            o[c] = (float) s;
        }
        out.copyFrom(o);
    }

    /** {@code out[b, c] = (float) Σ_{t of sample b} partial[t][c]}, tasks in order. */
    private static void perSampleSums(Tensor out, double[] partial, Chunks ch, long batch, int d) {
        PerSample o = PerSample.of(out);
        float[] row = new float[d];
        for (long b = 0; b < batch; b++) {
            for (int c = 0; c < d; c++) {
                double s = 0;
                for (long q = 0; q < ch.perSample; q++) {
                    s += partial[(int) ((b * ch.perSample + q) * d + c)];
                }
                row[c] = (float) s;
            }
            o.store(b, row, d);
        }
    }

    private static void zero(Tensor perSample) {
        if (perSample == null) {
            return;
        }
        PerSample o = PerSample.of(perSample);
        int d = Math.toIntExact(perSample.shape(1));
        float[] row = new float[d];
        for (long b = 0; b < perSample.shape(0); b++) {
            o.store(b, row, d);
        }
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    /** A per-sample {@code [B, D]} operand: unit stride along D, any row stride. */
    private record PerSample(MemorySegment storage, long offset, long rowStride) {

        static PerSample of(Tensor t) {
            if (t == null) {
                return null;
            }
            return new PerSample(t.storage(), t.offset(), t.shape(0) > 1 ? t.stride(0) : 0);
        }

        void load(long b, float[] dst, int d) {
            MemorySegment.copy(storage, F32, (offset + b * rowStride) * 4, dst, 0, d);
        }

        void store(long b, float[] src, int d) {
            MemorySegment.copy(src, 0, storage, F32, (offset + b * rowStride) * 4, d);
        }
    }

    /** Per-thread scratch arrays, grown on demand. */
    private static final class Scratch {
        private float[] a = new float[BLOCK];
        private float[] b = new float[BLOCK];
        private float[] c = new float[BLOCK];
        private float[] d = new float[BLOCK];

        float[] a(int n) {
            return a.length >= n ? a : (a = new float[n]);
        }

        float[] b(int n) {
            return b.length >= n ? b : (b = new float[n]);
        }

        float[] c(int n) {
            return c.length >= n ? c : (c = new float[n]);
        }

        float[] d(int n) {
            return d.length >= n ? d : (d = new float[n]);
        }
    }
}
