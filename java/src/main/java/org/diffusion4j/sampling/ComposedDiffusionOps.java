package org.diffusion4j.sampling;

import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * {@link DiffusionOps} composed from the unfused {@link Backend} ops ({@code binary}, {@code axpby}, {@code fma},
 * {@code reduceLastDim}, {@code copy}) with per-sample coefficients as {@code [B, 1]} tensors (per-row
 * broadcast). It computes what the fused ops compute, in the same float operations where the backend's ops allow
 * it (a {@code fma} here is a float product then a float sum, like {@link FusedMath}), so it is the reference the
 * fused implementations are tested against, and the path on backends without fused kernels (CUDA for now).
 *
 * <p>Differences from a fused op: several passes over memory with temporaries (allocated per call); Philox noise
 * is generated on the host ({@link Philox#fillNormal}, the same numbers) and copied in; the rescale statistics are
 * two-pass row variances (equal to the fused sums up to rounding); zero coefficients are multiplied, not skipped
 * (so a NaN operand with coefficient 0 gives NaN here), except that {@code x} is not read by
 * {@link #scaleAddNoise} when every scale is 0.
 */
public final class ComposedDiffusionOps implements DiffusionOps {

    private final Backend backend;

    /** The composed ops on {@code backend}. */
    public ComposedDiffusionOps(Backend backend) {
        this.backend = Objects.requireNonNull(backend, "backend");
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public String toString() {
        return "ComposedDiffusionOps[" + backend.name() + "]";
    }

    @Override
    public void forwardNoise(NoisingCoefficients k, NoiseSeeds seeds, double offsetStrength, Tensor x0, Tensor xt,
                             Tensor target, Tensor eps) {
        long n = DiffusionOps.checkNoising(backend, k, seeds, offsetStrength, x0, xt, target, eps);
        int batch = k.batch();
        if (n == 0 || batch == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor z = noise(tmp, seeds, NoiseSeeds.DRAW_INITIAL, batch, n);
            if (offsetStrength > 0) {
                long channels = x0.shape(1);
                Tensor delta = offsetTensor(tmp, seeds, batch, n, channels);
                Tensor strength = backend.fromArray(tmp, new float[] {(float) offsetStrength}, 1);
                backend.fma(delta, strength, z, z);                  // ε + strength·δ
            }
            Tensor x = x0.reshape(batch, n);
            Tensor outX = backend.empty(tmp, DType.F32, batch, n);
            Tensor outT = backend.empty(tmp, DType.F32, batch, n);
            backend.binary(Ops.Binary.MUL, x, column(tmp, k.a()), outX);    // a·x0
            backend.fma(z, column(tmp, k.s()), outX, outX);                  // + s·ε
            backend.binary(Ops.Binary.MUL, x, column(tmp, k.c()), outT);    // c·x0
            backend.fma(z, column(tmp, k.d()), outT, outT);                  // + d·ε
            backend.copy(outX, xt.reshape(batch, n));
            backend.copy(outT, target.reshape(batch, n));
            if (eps != null) {
                backend.copy(z, eps.reshape(batch, n));
            }
        }
    }

    @Override
    public void samplerStep(FusedStep p, Tensor x, Tensor xIn, Tensor cond, Tensor uncond, Tensor hist, Tensor xOut,
                            Tensor histOut) {
        long n = DiffusionOps.checkStep(backend, p, x, xIn, cond, uncond, hist, xOut, histOut);
        int batch = p.batch();
        if (n == 0 || batch == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor c = cond.reshape(batch, n);
            Tensor g = backend.empty(tmp, DType.F32, batch, n);
            if (uncond != null) {
                backend.binary(Ops.Binary.SUB, c, uncond.reshape(batch, n), g);           // c − u
                backend.axpby(1f, c, (float) (p.guidance() - 1.0), g, g);                 // c + (w−1)(c − u)
                if (p.rescale() != 0) {
                    float[] varC = rowVariances(tmp, c);
                    float[] varG = rowVariances(tmp, g);
                    double[] f = new double[batch];
                    for (int b = 0; b < batch; b++) {
                        f[b] = FusedMath.rescaleFactor(p.rescale(), varC[b], varG[b]);
                    }
                    backend.binary(Ops.Binary.MUL, g, column(tmp, f), g);                 // f_b·g
                }
            } else {
                backend.copy(c, g);
            }
            Tensor in = xIn.reshape(batch, n);
            Tensor out = backend.empty(tmp, DType.F32, batch, n);
            backend.binary(Ops.Binary.MUL, x.reshape(batch, n), column(tmp, p.ax()), out);  // ax·x
            backend.fma(in, column(tmp, p.ai()), out, out);                                 // + ai·xIn
            backend.fma(g, column(tmp, p.ag()), out, out);                                  // + ag·g
            if (hist != null) {
                backend.fma(hist.reshape(batch, n), column(tmp, p.ah()), out, out);         // + ah·h
            }
            if (p.hasNoise()) {
                Tensor z = noise(tmp, p.seeds(), p.draw(), batch, n);
                backend.fma(z, column(tmp, p.az()), out, out);                              // + az·z
            }
            Tensor d = null;
            if (histOut != null) {
                d = backend.empty(tmp, DType.F32, batch, n);
                backend.binary(Ops.Binary.MUL, in, column(tmp, p.ka()), d);                 // ka·xIn
                backend.fma(g, column(tmp, p.kb()), d, d);                                  // + kb·g
            }
            backend.copy(out, xOut.reshape(batch, n));
            if (d != null) {
                backend.copy(d, histOut.reshape(batch, n));
            }
        }
    }

    @Override
    public void scaleAddNoise(double[] scale, double[] noiseScale, NoiseSeeds seeds, long draw, Tensor x, Tensor out) {
        long n = DiffusionOps.checkNoise(backend, scale, noiseScale, seeds, x, out);
        int batch = scale.length;
        if (n == 0 || batch == 0) {
            return;
        }
        boolean readX = false;
        for (double s : scale) {
            readX |= s != 0;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor z = noise(tmp, seeds, draw, batch, n);
            Tensor o = backend.empty(tmp, DType.F32, batch, n);
            if (readX) {
                backend.binary(Ops.Binary.MUL, x.reshape(batch, n), column(tmp, scale), o);  // a·x
                backend.fma(z, column(tmp, noiseScale), o, o);                               // + s·z
            } else {
                backend.binary(Ops.Binary.MUL, z, column(tmp, noiseScale), o);
            }
            backend.copy(o, out.reshape(batch, n));
        }
    }

    /** Per-row population variances of {@code v [B, n]} (two passes: mean, then mean of squared deviations). */
    private float[] rowVariances(TensorScope tmp, Tensor v) {
        long batch = v.shape(0);
        long n = v.shape(1);
        Tensor mean = backend.empty(tmp, DType.F32, batch, 1);
        backend.reduceLastDim(Ops.Reduce.MEAN, v, mean);
        Tensor dev = backend.empty(tmp, DType.F32, batch, n);
        backend.binary(Ops.Binary.SUB, v, mean, dev);
        backend.unary(Ops.Unary.SQUARE, dev, dev);
        Tensor var = backend.empty(tmp, DType.F32, batch, 1);
        backend.reduceLastDim(Ops.Reduce.MEAN, dev, var);
        return var.toFloatArray();
    }

    /** A {@code [B, 1]} tensor of per-sample coefficients, rounded to float. */
    private Tensor column(TensorScope tmp, double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return backend.fromArray(tmp, f, v.length, 1);
    }

    /** {@code [B, n]} noise of draw {@code draw}: element (b, j) is {@code seeds.normal(b, n, draw, j)}. */
    private Tensor noise(TensorScope tmp, NoiseSeeds seeds, long draw, int batch, long n) {
        Tensor z = backend.empty(tmp, DType.F32, batch, n);
        try (TensorScope host = TensorScope.open()) {
            MemorySegment buf = host.allocate(n * 4, 64);
            for (int b = 0; b < batch; b++) {
                Philox.fillNormal(buf, n, seeds.key(b), seeds.streamOf(draw), seeds.index(b, n, 0));
                backend.copyFromHost(buf, z.slice(0, b, b + 1));
            }
        }
        return z;
    }

    /** {@code [B, n]} offset draws {@code δ(b, j / (n/C))} (draw 2, index {@code id(b)·C + c}). */
    private Tensor offsetTensor(TensorScope tmp, NoiseSeeds seeds, int batch, long n, long channels) {
        long spatial = n / channels;
        float[] all = new float[Math.toIntExact(batch * n)];
        for (int b = 0; b < batch; b++) {
            for (long ch = 0; ch < channels; ch++) {
                float delta = Philox.normal(seeds.key(b), seeds.streamOf(NoiseSeeds.DRAW_OFFSET),
                        seeds.index(b, channels, ch));
                for (long s = 0; s < spatial; s++) {
                    all[(int) (b * n + ch * spatial + s)] = delta;
                }
            }
        }
        return backend.fromArray(tmp, all, batch, n);
    }
}
