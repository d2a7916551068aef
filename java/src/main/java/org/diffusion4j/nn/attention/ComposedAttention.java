package org.diffusion4j.nn.attention;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * {@link AttentionOps} composed from generic {@link Backend} ops — the naive matmul–softmax–matmul that
 * materialises the score matrix {@code S [Tq, Tk]} of every (batch, head):
 * <pre>
 * forward   S = scale·Q·Kᵀ                 (gemm, batched over B·H)
 *           L = max S + ln Σ exp(S − max S) (reduceLastDim MAX, binary SUB, unary EXP, reduceLastDim SUM, LOG, ADD)
 *           P = softmax(S)                  (softmaxLastDim)
 *           O = P·V                         (gemm)
 * backward  P = exp(S − L)                  (recomputed from the saved L)
 *           dV = Pᵀ·dO,  dP = dO·Vᵀ,  D = rowsum(dO∘O),  dS = P∘(dP − D)
 *           dQ = scale·dS·K,  dK = scale·dSᵀ·Q
 * </pre>
 * It is the test reference of the fused implementations, the "naive" side of the attention benchmark, and the
 * path on backends without a fused kernel. Temporaries ({@code S}, {@code P}, {@code dP}: {@code 3·Tq·Tk} floats
 * per (batch, head)) are allocated per call, for groups of (batch, head) problems of at most
 * {@value #GROUP_ELEMENTS} score elements.
 */
public final class ComposedAttention implements AttentionOps {

    /** Score elements ({@code problems·Tq·Tk}) per group of (batch, head) problems: 64 MiB of F32 per temporary. */
    static final long GROUP_ELEMENTS = 1L << 24;

    private final Backend backend;

    /** The composed ops on {@code backend}. */
    public ComposedAttention(Backend backend) {
        this.backend = Objects.requireNonNull(backend, "backend");
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public String toString() {
        return "ComposedAttention[" + backend.name() + "]";
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        AttentionDims d = AttentionOps.checkForward(backend, q, k, v, scale, out, lse);
        long n = d.problems();
        long tq = d.queries();
        long tk = d.keys();
        long dh = d.headDim();
        if (n == 0 || tq == 0) {
            return;
        }
        Tensor q3 = q.reshape(n, tq, dh);
        Tensor k3 = k.reshape(n, tk, dh);
        Tensor v3 = v.reshape(n, tk, dh);
        Tensor o3 = out.reshape(n, tq, dh);
        Tensor l3 = lse == null ? null : lse.reshape(n, tq, 1);
        long g = groupSize(n, tq, tk);
        try (TensorScope tmp = TensorScope.open()) {
            Tensor sAll = backend.empty(tmp, DType.F32, g, tq, tk);
            Tensor eAll = lse == null ? null : backend.empty(tmp, DType.F32, g, tq, tk);
            Tensor mAll = lse == null ? null : backend.empty(tmp, DType.F32, g, tq, 1);
            Tensor zAll = lse == null ? null : backend.empty(tmp, DType.F32, g, tq, 1);
            for (long p0 = 0; p0 < n; p0 += g) {
                long p1 = Math.min(n, p0 + g);
                long gn = p1 - p0;
                Tensor s = sAll.slice(0, 0, gn);                                      // [g, Tq, Tk]
                backend.gemm(false, true, scale, q3.slice(0, p0, p1), k3.slice(0, p0, p1), 0f, s); // scale·Q·Kᵀ
                if (lse != null) {
                    Tensor m = mAll.slice(0, 0, gn);                                  // [g, Tq, 1]
                    Tensor e = eAll.slice(0, 0, gn);
                    Tensor z = zAll.slice(0, 0, gn);
                    backend.reduceLastDim(Ops.Reduce.MAX, s, m);
                    backend.binary(Ops.Binary.SUB, s, m, e);                          // S − max
                    backend.unary(Ops.Unary.EXP, e, e);
                    backend.reduceLastDim(Ops.Reduce.SUM, e, z);                       // Σ exp(S − max)
                    backend.unary(Ops.Unary.LOG, z, z);
                    backend.binary(Ops.Binary.ADD, z, m, l3.slice(0, p0, p1));         // L = max + ln Σ
                }
                backend.softmaxLastDim(s, s);                                         // P
                backend.gemm(false, false, 1f, s, v3.slice(0, p0, p1), 0f, o3.slice(0, p0, p1)); // O = P·V
            }
        }
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, float scale, Tensor dq,
                         Tensor dk, Tensor dv) {
        AttentionDims d = AttentionOps.checkBackward(backend, q, k, v, out, lse, dOut, scale, dq, dk, dv);
        long n = d.problems();
        long tq = d.queries();
        long tk = d.keys();
        long dh = d.headDim();
        if (n == 0) {
            return;
        }
        if (tq == 0) { // no query attends: every key and value gradient is zero
            backend.fill(dk, 0f);
            backend.fill(dv, 0f);
            return;
        }
        Tensor q3 = q.reshape(n, tq, dh);
        Tensor k3 = k.reshape(n, tk, dh);
        Tensor v3 = v.reshape(n, tk, dh);
        Tensor o3 = out.reshape(n, tq, dh);
        Tensor l3 = lse.reshape(n, tq, 1);
        Tensor do3 = dOut.reshape(n, tq, dh);
        Tensor dq3 = dq.reshape(n, tq, dh);
        Tensor dk3 = dk.reshape(n, tk, dh);
        Tensor dv3 = dv.reshape(n, tk, dh);
        long g = groupSize(n, tq, tk);
        try (TensorScope tmp = TensorScope.open()) {
            Tensor pAll = backend.empty(tmp, DType.F32, g, tq, tk);
            Tensor dpAll = backend.empty(tmp, DType.F32, g, tq, tk);
            Tensor prodAll = backend.empty(tmp, DType.F32, g, tq, dh);
            Tensor dAll = backend.empty(tmp, DType.F32, g, tq, 1);
            for (long p0 = 0; p0 < n; p0 += g) {
                long p1 = Math.min(n, p0 + g);
                long gn = p1 - p0;
                Tensor qg = q3.slice(0, p0, p1);
                Tensor kg = k3.slice(0, p0, p1);
                Tensor dog = do3.slice(0, p0, p1);
                Tensor p = pAll.slice(0, 0, gn);                                     // [g, Tq, Tk]
                Tensor dp = dpAll.slice(0, 0, gn);
                Tensor dd = dAll.slice(0, 0, gn);                                    // [g, Tq, 1]
                backend.gemm(false, true, scale, qg, kg, 0f, p);                      // S = scale·Q·Kᵀ
                backend.binary(Ops.Binary.SUB, p, l3.slice(0, p0, p1), p);           // S − L
                backend.unary(Ops.Unary.EXP, p, p);                                   // P
                backend.gemm(true, false, 1f, p, dog, 0f, dv3.slice(0, p0, p1));      // dV = Pᵀ·dO
                backend.gemm(false, true, 1f, dog, v3.slice(0, p0, p1), 0f, dp);      // dP = dO·Vᵀ
                Tensor prod = prodAll.slice(0, 0, gn);
                backend.binary(Ops.Binary.MUL, dog, o3.slice(0, p0, p1), prod);
                backend.reduceLastDim(Ops.Reduce.SUM, prod, dd);                      // D = rowsum(dO∘O)
                backend.binary(Ops.Binary.SUB, dp, dd, dp);
                backend.binary(Ops.Binary.MUL, dp, p, dp);                            // dS = P∘(dP − D)
                backend.gemm(false, false, scale, dp, kg, 0f, dq3.slice(0, p0, p1));  // dQ = scale·dS·K
                backend.gemm(true, false, scale, dp, qg, 0f, dk3.slice(0, p0, p1));   // dK = scale·dSᵀ·Q
            }
        }
    }

    /** Problems per group so that {@code group·Tq·Tk ≤ GROUP_ELEMENTS} (at least one). */
    private static long groupSize(long problems, long tq, long tk) {
        long per = Math.max(1, tq * tk);
        return Math.max(1, Math.min(problems, GROUP_ELEMENTS / per));
    }
}
