package org.diffusion4j.nn.attention;

import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad arguments are rejected before any memory is touched, with a message naming the argument (and its shape or
 * value), by both implementations; outputs stay untouched.
 */
class AttentionArgumentsTest {

    private static CpuBackend backend;
    private static CpuAttention fused;
    private static ComposedAttention composed;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        fused = new CpuAttention(backend, 2);
        composed = new ComposedAttention(backend);
    }

    @AfterAll
    static void tearDown() {
        fused.close();
        backend.close();
    }

    private static Tensor t(TensorScope s, long... shape) {
        return backend.zeros(s, DType.F32, shape);
    }

    /** Asserts that {@code call} throws {@code type} with a message containing every {@code words}. */
    private static void rejects(Class<? extends Throwable> type, Executable call, String... words) {
        Throwable e = assertThrows(Throwable.class, call);
        assertInstanceOf(type, e, "wrong exception: " + e);
        for (String w : words) {
            assertTrue(e.getMessage() != null && e.getMessage().contains(w),
                    "message '" + e.getMessage() + "' should name '" + w + "'");
        }
    }

    @Test
    void forwardRejectsBadShapesDtypesLayoutsAndScales() {
        for (AttentionOps ops : new AttentionOps[] {fused, composed}) {
            try (TensorScope s = TensorScope.open()) {
                Tensor q = t(s, 2, 3, 5, 8);
                Tensor k = t(s, 2, 3, 7, 8);
                Tensor v = t(s, 2, 3, 7, 8);
                Tensor out = t(s, 2, 3, 5, 8);
                Tensor lse = t(s, 2, 3, 5);
                Class<IllegalArgumentException> iae = IllegalArgumentException.class;
                rejects(iae, () -> ops.forward(t(s, 6, 5, 8), k, v, 1f, out, lse), "q", "rank 4");
                rejects(iae, () -> ops.forward(q, t(s, 2, 3, 7, 9), v, 1f, out, lse), "k", "Dh=8");
                rejects(iae, () -> ops.forward(q, t(s, 2, 4, 7, 8), v, 1f, out, lse), "k", "H=3");
                rejects(iae, () -> ops.forward(q, k, t(s, 2, 3, 6, 8), 1f, out, lse), "v", "[2, 3, 7, 8]");
                rejects(iae, () -> ops.forward(q, k, v, 1f, t(s, 2, 3, 7, 8), lse), "out", "[2, 3, 5, 8]");
                rejects(iae, () -> ops.forward(q, k, v, 1f, out, t(s, 2, 3, 5, 1)), "lse", "[2, 3, 5]");
                rejects(iae, () -> ops.forward(t(s, 1, 1, 2, 300), t(s, 1, 1, 2, 300), t(s, 1, 1, 2, 300), 1f,
                        t(s, 1, 1, 2, 300), null), "Dh = 300", "256");
                rejects(iae, () -> ops.forward(q, t(s, 2, 3, 0, 8), t(s, 2, 3, 0, 8), 1f, out, lse), "k", "Tk = 0");
                rejects(iae, () -> ops.forward(backend.zeros(s, DType.BF16, 2, 3, 5, 8), k, v, 1f, out, lse), "q",
                        "F32");
                Tensor qT = t(s, 2, 3, 8, 5).transpose(2, 3);
                rejects(iae, () -> ops.forward(qT, k, v, 1f, out, lse), "q", "contiguous");
                rejects(iae, () -> ops.forward(q, k, v, Float.NaN, out, lse), "scale", "NaN");
                rejects(iae, () -> ops.forward(q, k, v, -1f, out, lse), "scale", "-1.0");
                rejects(iae, () -> ops.forward(q, k, v, 1f, q, lse), "out", "overlaps", "q");
                Tensor big = t(s, 2 * 3 * 5 * 8 + 2 * 3 * 5);
                Tensor outView = big.slice(0, 0, 240).reshape(2, 3, 5, 8);
                Tensor lseView = big.slice(0, 200, 230).reshape(2, 3, 5);
                rejects(iae, () -> ops.forward(q, k, v, 1f, outView, lseView), "lse", "overlaps", "out");
                rejects(NullPointerException.class, () -> ops.forward(q, k, null, 1f, out, lse), "v");
            }
        }
    }

    @Test
    void backwardRejectsBadShapesAndAliasing() {
        for (AttentionOps ops : new AttentionOps[] {fused, composed}) {
            try (TensorScope s = TensorScope.open()) {
                Tensor q = t(s, 1, 2, 5, 4);
                Tensor k = t(s, 1, 2, 3, 4);
                Tensor out = t(s, 1, 2, 5, 4);
                Tensor lse = t(s, 1, 2, 5);
                Tensor dOut = t(s, 1, 2, 5, 4);
                Tensor dq = t(s, 1, 2, 5, 4);
                Tensor dk = t(s, 1, 2, 3, 4);
                Tensor dv = t(s, 1, 2, 3, 4);
                Class<IllegalArgumentException> iae = IllegalArgumentException.class;
                rejects(NullPointerException.class, () -> ops.backward(q, k, k, out, null, dOut, 1f, dq, dk, dv),
                        "lse");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, t(s, 1, 2, 3, 4), 1f, dq, dk, dv), "dOut");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, dOut, 1f, t(s, 1, 2, 3, 4), dk, dv), "dq");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, dOut, 1f, dq, t(s, 1, 2, 5, 4), dv), "dk");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, dOut, 1f, dq, dk, t(s, 2, 2, 3, 4)), "dv");
                rejects(iae, () -> ops.backward(q, k, k, out, t(s, 1, 2, 3), dOut, 1f, dq, dk, dv), "lse");
                rejects(iae, () -> ops.backward(q, k, k, t(s, 1, 2, 5, 3), lse, dOut, 1f, dq, dk, dv), "out");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, dOut, 1f, dq, dk, dk), "dv", "overlaps", "dk");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, dOut, 1f, dOut, dk, dv), "dq", "overlaps", "dOut");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, dOut, 1f, dq, k, dv), "dk", "overlaps", "k");
                rejects(iae, () -> ops.backward(q, k, k, out, lse, dOut, Float.POSITIVE_INFINITY, dq, dk, dv),
                        "scale");
            }
        }
    }

    @Test
    void closedScopesAndClosedOpsAreReported() {
        Tensor q;
        try (TensorScope s = TensorScope.open()) {
            q = t(s, 1, 1, 2, 4);
        }
        try (TensorScope s = TensorScope.open()) {
            Tensor k = t(s, 1, 1, 2, 4);
            Tensor out = t(s, 1, 1, 2, 4);
            rejects(IllegalStateException.class, () -> fused.forward(q, k, k, 1f, out, null), "closed");
            CpuAttention closed = new CpuAttention(backend, 2);
            closed.close();
            closed.close(); // idempotent
            rejects(IllegalStateException.class, () -> closed.forward(k, k, k, 1f, out, null), "closed");
        }
    }

    @Test
    void defaultScaleAndFactory() {
        assertEquals((float) (1 / Math.sqrt(64)), AttentionOps.defaultScale(64));
        rejects(IllegalArgumentException.class, () -> AttentionOps.defaultScale(0), "0");
        try (AttentionOps ops = AttentionOps.forBackend(backend)) {
            assertInstanceOf(CpuAttention.class, ops);
            assertEquals(backend, ops.backend());
        }
        rejects(IllegalArgumentException.class, () -> new CpuAttention(backend, 0), "0");
    }
}
