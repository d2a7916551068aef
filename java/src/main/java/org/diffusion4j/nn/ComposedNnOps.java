package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * {@link NnOps} composed from generic {@link Backend} ops ({@code binary}, {@code unary}, {@code fma},
 * {@code scaleShift}, {@code axpby}, {@code reduceLastDim}, {@code gemm}, {@code copy}) with temporaries allocated
 * per call: the path on backends without the fused kernels (CUDA for now) and a second implementation the fused
 * CPU ops are tested against. It computes the formulas of {@link NnMath}; results agree with the fused ops to a
 * few float ulps (not bit for bit: sums over rows and columns here are GEMMs against a ones vector, and
 * transcendentals are the backend's).
 *
 * <p>Compositions: per-sample {@code [B, D]} operands are broadcast over the tokens by a batched GEMM
 * {@code ones[T, 1] @ s[B, 1, D]}; per-sample token sums are {@code ones[1, T] @ v[B, T, D]}; column sums are
 * {@code ones[1, R] @ v[R, N]}; the embedding scatter-add is {@code onehot[N, V]ᵀ @ dy[N, D]} with the one-hot
 * matrix built on the host from the indices. Each op makes several passes over memory.
 */
public final class ComposedNnOps implements NnOps {

    private final Backend backend;

    /** The composed ops on {@code backend}. */
    public ComposedNnOps(Backend backend) {
        this.backend = Objects.requireNonNull(backend, "backend");
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public String toString() {
        return "ComposedNnOps[" + backend.name() + "]";
    }

    // ---------------------------------------------------------------- activations

    @Override
    public void activation(Activation act, Tensor x, Tensor bias, Tensor pre, Tensor out) {
        NnOps.checkActivation(backend, act, x, bias, pre, out);
        if (x.numel() == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor z = backend.empty(tmp, DType.F32, x.shape());
            if (bias != null) {
                backend.binary(Ops.Binary.ADD, x, bias, z);                 // z = x + b (row broadcast)
            } else {
                backend.copy(x, z);
            }
            if (pre != null) {
                backend.copy(z, pre);
            }
            Tensor y = backend.empty(tmp, DType.F32, x.shape());
            switch (act) {
                case IDENTITY -> backend.copy(z, y);
                case SILU -> {
                    backend.unary(Ops.Unary.SIGMOID, z, y);                 // σ(z)
                    backend.binary(Ops.Binary.MUL, z, y, y);                // z·σ(z)
                }
                case GELU_TANH -> {
                    Tensor sg = geluGate(tmp, z);                           // σ(2u)
                    backend.binary(Ops.Binary.MUL, z, sg, y);               // z·σ(2u)
                }
            }
            backend.copy(y, out);
        }
    }

    /** {@code σ(2u)} with {@code u = c·(z + k·z³)} (= {@code 0.5·(1 + tanh u)}). */
    private Tensor geluGate(TensorScope tmp, Tensor z) {
        Tensor u = backend.empty(tmp, DType.F32, z.shape());
        backend.unary(Ops.Unary.SQUARE, z, u);                              // z²
        backend.binary(Ops.Binary.MUL, u, z, u);                            // z³
        backend.scaleShift(u, NnMath.GELU_K, 0f, u);                        // k·z³
        backend.binary(Ops.Binary.ADD, z, u, u);                            // z + k·z³
        backend.scaleShift(u, NnMath.GELU_C, 0f, u);                        // u = c·(...)
        backend.binary(Ops.Binary.MUL, u, 2f, u);                           // 2u
        backend.unary(Ops.Unary.SIGMOID, u, u);
        return u;
    }

    @Override
    public void activationBackward(Activation act, Tensor pre, Tensor dy, Tensor dx) {
        NnOps.checkActivationBackward(backend, act, pre, dy, dx);
        if (pre.numel() == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor d = backend.empty(tmp, DType.F32, pre.shape());
            switch (act) {
                case IDENTITY -> backend.copy(dy, d);
                case SILU -> {
                    Tensor s = backend.empty(tmp, DType.F32, pre.shape());
                    backend.unary(Ops.Unary.SIGMOID, pre, s);               // σ
                    backend.scaleShift(s, -1f, 1f, d);                      // 1 − σ
                    backend.binary(Ops.Binary.MUL, pre, d, d);              // z·(1 − σ)
                    backend.scaleShift(d, 1f, 1f, d);                       // 1 + z·(1 − σ)
                    backend.binary(Ops.Binary.MUL, s, d, d);                // σ·(1 + z·(1 − σ))
                    backend.binary(Ops.Binary.MUL, dy, d, d);
                }
                case GELU_TANH -> {
                    Tensor zc = backend.empty(tmp, DType.F32, pre.shape());
                    backend.binary(Ops.Binary.MAX, pre, -NnMath.GELU_GRAD_CLAMP, zc);
                    backend.binary(Ops.Binary.MIN, zc, NnMath.GELU_GRAD_CLAMP, zc);   // z clamped
                    Tensor sg = geluGate(tmp, zc);                          // s = σ(2u)
                    Tensor q = backend.empty(tmp, DType.F32, pre.shape());
                    backend.binary(Ops.Binary.MUL, zc, sg, d);              // z·s
                    backend.scaleShift(sg, -1f, 1f, q);                     // 1 − s
                    backend.binary(Ops.Binary.MUL, d, q, d);                // z·s·(1 − s)
                    backend.binary(Ops.Binary.MUL, d, NnMath.GELU_2C, d);   // ·2c
                    backend.unary(Ops.Unary.SQUARE, zc, q);                 // z²
                    backend.scaleShift(q, NnMath.GELU_3K, 1f, q);           // 1 + 3k·z²
                    backend.binary(Ops.Binary.MUL, d, q, d);                // right
                    backend.binary(Ops.Binary.ADD, sg, d, d);               // s + right
                    backend.binary(Ops.Binary.MUL, dy, d, d);
                }
            }
            backend.copy(d, dx);
        }
    }

    // ---------------------------------------------------------------- bias gradient

    @Override
    public void columnSum(Tensor dy, Tensor out, boolean accumulate) {
        long cols = NnOps.checkColumnSum(backend, dy, out);
        if (cols == 0) {
            return;
        }
        long rows = dy.numel() == 0 ? 0 : dy.rows();
        if (rows == 0) {
            if (!accumulate) {
                backend.fill(out, 0f);
            }
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor ones = ones(tmp, 1, rows);
            backend.gemm(false, false, 1f, ones, dy.reshape(rows, cols), accumulate ? 1f : 0f, out.reshape(1, cols));
        }
    }

    // ---------------------------------------------------------------- LayerNorm + modulation

    @Override
    public void layerNorm(Tensor x, Tensor gamma, Tensor beta, Tensor shift, Tensor scale, float eps, Tensor out,
                          Tensor mean, Tensor rstd) {
        Tokens k = NnOps.checkLayerNorm(backend, x, gamma, beta, shift, scale, eps, out, mean, rstd);
        long rows = k.rows();
        long d = k.dim();
        if (rows == 0 || d == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor x2 = x.reshape(rows, d);
            Tensor mu = backend.empty(tmp, DType.F32, rows, 1);
            Tensor rs = backend.empty(tmp, DType.F32, rows, 1);
            Tensor n = normalized(tmp, x2, eps, mu, rs);                     // x̂
            affine(n, gamma, beta);                                         // x̂·γ + β
            if (scale != null || shift != null) {
                modulate(tmp, k, n, shift, scale);
            }
            backend.copy(n, out.reshape(rows, d));
            if (mean != null) {
                backend.copy(mu, mean.reshape(rows, 1));
            }
            if (rstd != null) {
                backend.copy(rs, rstd.reshape(rows, 1));
            }
        }
    }

    /** {@code x̂ [R, D]} with {@code mu}, {@code rs} {@code [R, 1]} filled. */
    private Tensor normalized(TensorScope tmp, Tensor x2, float eps, Tensor mu, Tensor rs) {
        long rows = x2.shape(0);
        long d = x2.shape(1);
        backend.reduceLastDim(Ops.Reduce.MEAN, x2, mu);                     // μ
        Tensor c = backend.empty(tmp, DType.F32, rows, d);
        backend.binary(Ops.Binary.SUB, x2, mu, c);                          // x − μ
        Tensor sq = backend.empty(tmp, DType.F32, rows, d);
        backend.unary(Ops.Unary.SQUARE, c, sq);
        backend.reduceLastDim(Ops.Reduce.MEAN, sq, rs);                     // var
        backend.binary(Ops.Binary.ADD, rs, eps, rs);
        backend.unary(Ops.Unary.RSQRT, rs, rs);                             // 1/√(var + eps)
        backend.binary(Ops.Binary.MUL, c, rs, c);                           // x̂
        return c;
    }

    private void affine(Tensor n, Tensor gamma, Tensor beta) {
        if (gamma != null) {
            backend.binary(Ops.Binary.MUL, n, gamma, n);
        }
        if (beta != null) {
            backend.binary(Ops.Binary.ADD, n, beta, n);
        }
    }

    /** {@code n [R, D] = n·(1 + scale_b) + shift_b} in place. */
    private void modulate(TensorScope tmp, Tokens k, Tensor n, Tensor shift, Tensor scale) {
        if (scale != null) {
            Tensor s = expand(tmp, k, scale);
            backend.scaleShift(s, 1f, 1f, s);                               // 1 + scale
            backend.binary(Ops.Binary.MUL, n, s, n);
        }
        if (shift != null) {
            Tensor s = expand(tmp, k, shift);
            backend.binary(Ops.Binary.ADD, n, s, n);
        }
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor gamma, Tensor beta, Tensor scale, Tensor mean, Tensor rstd,
                                  Tensor dy, Tensor dx, Tensor dGamma, Tensor dBeta, Tensor dShift, Tensor dScale) {
        Tokens k = NnOps.checkLayerNormBackward(backend, x, gamma, beta, scale, mean, rstd, dy, dx, dGamma, dBeta,
                dShift, dScale);
        long rows = k.rows();
        long d = k.dim();
        if (d == 0 || k.batch() == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            if (rows == 0) {
                storePerSample(backend.zeros(tmp, DType.F32, k.batch(), d), dShift);
                storePerSample(backend.zeros(tmp, DType.F32, k.batch(), d), dScale);
                return;
            }
            Tensor x2 = x.reshape(rows, d);
            Tensor g2 = dy.reshape(rows, d);
            Tensor mu = mean.reshape(rows, 1);
            Tensor rs = rstd.reshape(rows, 1);
            Tensor xh = backend.empty(tmp, DType.F32, rows, d);
            backend.binary(Ops.Binary.SUB, x2, mu, xh);
            backend.binary(Ops.Binary.MUL, xh, rs, xh);                     // x̂
            if (dShift != null) {
                storePerSample(tokenSums(tmp, k, g2), dShift);              // Σ_t dy
            }
            if (dScale != null) {
                Tensor n = backend.empty(tmp, DType.F32, rows, d);
                backend.copy(xh, n);
                affine(n, gamma, beta);
                backend.binary(Ops.Binary.MUL, n, g2, n);                   // dy·n
                storePerSample(tokenSums(tmp, k, n), dScale);               // Σ_t dy·n
            }
            Tensor dn = backend.empty(tmp, DType.F32, rows, d);
            if (scale != null) {
                Tensor s = expand(tmp, k, scale);
                backend.scaleShift(s, 1f, 1f, s);
                backend.binary(Ops.Binary.MUL, g2, s, dn);                  // dy·(1 + scale)
            } else {
                backend.copy(g2, dn);
            }
            Tensor prod = backend.empty(tmp, DType.F32, rows, d);
            if (dGamma != null) {
                backend.binary(Ops.Binary.MUL, dn, xh, prod);
                columnSum(prod, dGamma, true);                              // dγ += Σ dn·x̂
            }
            if (dBeta != null) {
                columnSum(dn, dBeta, true);                                 // dβ += Σ dn
            }
            if (gamma != null) {
                backend.binary(Ops.Binary.MUL, dn, gamma, dn);              // dx̂
            }
            Tensor m1 = backend.empty(tmp, DType.F32, rows, 1);
            Tensor m2 = backend.empty(tmp, DType.F32, rows, 1);
            backend.reduceLastDim(Ops.Reduce.MEAN, dn, m1);
            backend.binary(Ops.Binary.MUL, dn, xh, prod);
            backend.reduceLastDim(Ops.Reduce.MEAN, prod, m2);
            backend.binary(Ops.Binary.MUL, xh, m2, prod);                   // x̂·m2
            backend.binary(Ops.Binary.SUB, dn, prod, prod);                 // dx̂ − x̂·m2
            backend.binary(Ops.Binary.SUB, prod, m1, prod);                 // − m1
            backend.binary(Ops.Binary.MUL, prod, rs, prod);                 // ·rstd
            backend.copy(prod, dx.reshape(rows, d));
        }
    }

    // ---------------------------------------------------------------- gated residual

    @Override
    public void gatedResidual(Tensor x, Tensor gate, Tensor f, Tensor out) {
        Tokens k = NnOps.checkGatedResidual(backend, x, gate, f, out);
        long rows = k.rows();
        long d = k.dim();
        if (rows == 0 || d == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor g = expand(tmp, k, gate);
            Tensor o = backend.empty(tmp, DType.F32, rows, d);
            backend.binary(Ops.Binary.MUL, g, f.reshape(rows, d), o);       // gate·f
            backend.binary(Ops.Binary.ADD, x.reshape(rows, d), o, o);       // x + gate·f
            backend.copy(o, out.reshape(rows, d));
        }
    }

    @Override
    public void gatedResidualBackward(Tensor gate, Tensor f, Tensor dy, Tensor df, Tensor dGate) {
        Tokens k = NnOps.checkGatedResidualBackward(backend, gate, f, dy, df, dGate);
        long rows = k.rows();
        long d = k.dim();
        if (d == 0 || k.batch() == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            if (rows == 0) {
                storePerSample(backend.zeros(tmp, DType.F32, k.batch(), d), dGate);
                return;
            }
            Tensor g2 = dy.reshape(rows, d);
            Tensor prod = backend.empty(tmp, DType.F32, rows, d);
            if (dGate != null) {
                backend.binary(Ops.Binary.MUL, g2, f.reshape(rows, d), prod);
                storePerSample(tokenSums(tmp, k, prod), dGate);            // Σ_t dy·f
            }
            if (df != null) {
                backend.binary(Ops.Binary.MUL, g2, expand(tmp, k, gate), prod);
                backend.copy(prod, df.reshape(rows, d));                    // dy·gate
            }
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
        int[] idx = new int[n];
        backend.copyToHost(indices, MemorySegment.ofArray(idx));
        for (int i = 0; i < n; i++) {
            if (idx[i] < 0 || idx[i] >= v) {
                throw new IndexOutOfBoundsException("indices[" + i + "] = " + idx[i] + " is outside [0, " + v
                        + ") of dTable " + dTable);
            }
        }
        float[] onehot = new float[Math.multiplyExact(n, Math.toIntExact(v))];
        for (int i = 0; i < n; i++) {
            onehot[(int) (i * v + idx[i])] = 1f;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor oh = backend.fromArray(tmp, onehot, n, v);
            backend.gemm(true, false, 1f, oh, dy, 1f, dTable);              // dTable += onehotᵀ·dy
        }
    }

    // ---------------------------------------------------------------- AdamW

    @Override
    public void adamw(AdamWStep st, Tensor param, Tensor grad, Tensor m, Tensor v) {
        NnOps.checkAdamw(backend, st, param, grad, m, v);
        if (param.numel() == 0) {
            return;
        }
        try (TensorScope tmp = TensorScope.open()) {
            Tensor g = backend.empty(tmp, DType.F32, param.shape());
            backend.binary(Ops.Binary.MUL, grad, st.gradScale(), g);        // g = gradScale·grad
            backend.binary(Ops.Binary.MUL, param, st.decay(), param);       // p·(1 − lr·λ)
            backend.axpby(st.beta1(), m, st.oneMinusBeta1(), g, m);         // m = β1 m + (1 − β1) g
            Tensor g2 = backend.empty(tmp, DType.F32, param.shape());
            backend.binary(Ops.Binary.MUL, g, st.oneMinusBeta2(), g2);      // (1 − β2)·g
            backend.binary(Ops.Binary.MUL, g2, g, g2);                      // (1 − β2)·g·g
            backend.axpby(st.beta2(), v, 1f, g2, v);                        // v = β2 v + (1 − β2) g²
            backend.unary(Ops.Unary.SQRT, v, g);
            backend.scaleShift(g, st.invSqrtBc2(), st.eps(), g);            // √v·invSqrtBc2 + eps
            backend.binary(Ops.Binary.DIV, m, g, g);                        // m / denom
            backend.axpby(1f, param, -st.stepSize(), g, param);             // p − stepSize·(...)
        }
    }

    // ---------------------------------------------------------------- helpers

    /** A ones matrix {@code [r, c]}. */
    private Tensor ones(TensorScope tmp, long r, long c) {
        Tensor t = backend.empty(tmp, DType.F32, r, c);
        backend.fill(t, 1f);
        return t;
    }

    /** The per-sample {@code [B, D]} operand broadcast over tokens as {@code [B·T, D]}. */
    private Tensor expand(TensorScope tmp, Tokens k, Tensor perSample) {
        long b = k.batch();
        long t = k.tokens();
        long d = k.dim();
        Tensor s = contiguous(tmp, perSample).reshape(b, 1, d);
        Tensor e = backend.empty(tmp, DType.F32, b, t, d);
        backend.gemm(false, false, 1f, ones(tmp, t, 1), s, 0f, e);         // ones[T,1] @ s[B,1,D]
        return e.reshape(b * t, d);
    }

    /** {@code Σ_t v[b, t, :]} as {@code [B, D]} for {@code v [B·T, D]}. */
    private Tensor tokenSums(TensorScope tmp, Tokens k, Tensor v) {
        long b = k.batch();
        long t = k.tokens();
        long d = k.dim();
        Tensor out = backend.empty(tmp, DType.F32, b, 1, d);
        backend.gemm(false, false, 1f, ones(tmp, 1, t), v.reshape(b, t, d), 0f, out);   // ones[1,T] @ v[B,T,D]
        return out.reshape(b, d);
    }

    /** A contiguous copy of a per-sample operand (the operand itself when already contiguous). */
    private Tensor contiguous(TensorScope tmp, Tensor t) {
        if (t.isContiguous()) {
            return t;
        }
        Tensor c = backend.empty(tmp, DType.F32, t.shape());
        backend.copy(t, c);
        return c;
    }

    /** Writes contiguous {@code src [B, D]} into a per-sample output (row by row when its rows are strided). */
    private void storePerSample(Tensor src, Tensor dst) {
        if (dst == null) {
            return;
        }
        if (dst.isContiguous()) {
            backend.copy(src, dst);
            return;
        }
        for (long b = 0; b < dst.shape(0); b++) {
            backend.copy(src.slice(0, b, b + 1), dst.slice(0, b, b + 1));
        }
    }

}
