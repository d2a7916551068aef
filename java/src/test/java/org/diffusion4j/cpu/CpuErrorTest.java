package org.diffusion4j.cpu;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every argument check of {@link CpuBackend}: the exception type, a message that names the offending
 * argument with its shape or dtype, and no memory touched (outputs keep their values).
 */
class CpuErrorTest {

    static CpuBackend cpu;
    TensorScope scope;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    @BeforeEach
    void open() {
        scope = TensorScope.open();
    }

    @AfterEach
    void close() {
        scope.close();
    }

    static void iae(Executable call, String... mustContain) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), "message lacks '" + s + "': " + e.getMessage());
        }
    }

    static void ise(Executable call, String... mustContain) {
        IllegalStateException e = assertThrows(IllegalStateException.class, call);
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), "message lacks '" + s + "': " + e.getMessage());
        }
    }

    @Test
    void shapeMismatchesNameBothShapes() {
        Tensor a = cpu.zeros(scope, DType.F32, 3, 5);
        Tensor wrong = cpu.zeros(scope, DType.F32, 4, 5);
        Tensor out = cpu.zeros(scope, DType.F32, 3, 5);
        iae(() -> cpu.binary(Ops.Binary.ADD, a, wrong, out), "[4, 5]", "[3, 5]");
        iae(() -> cpu.binary(Ops.Binary.ADD, a, cpu.zeros(scope, DType.F32, 3), out), "[3]", "[3, 5]");
        iae(() -> cpu.binary(Ops.Binary.ADD, a, a, wrong), "out", "[4, 5]");
        iae(() -> cpu.binary(Ops.Binary.ADD, a, 1f, wrong), "out", "[4, 5]");
        iae(() -> cpu.unary(Ops.Unary.EXP, a, wrong), "[4, 5]");
        iae(() -> cpu.axpby(1, a, 1, wrong, out), "y", "[4, 5]");
        iae(() -> cpu.axpby(1, a, 1, a, wrong), "out", "[4, 5]");
        iae(() -> cpu.fma(a, a, wrong, out), "c ", "[4, 5]");
        iae(() -> cpu.fma(a, wrong, a, out), "b ", "[4, 5]");
        iae(() -> cpu.scaleShift(a, 1, 1, wrong), "[4, 5]");
        iae(() -> cpu.reduceLastDim(Ops.Reduce.SUM, a, out), "3 elements", "[3, 5]");
        iae(() -> cpu.softmaxLastDim(a, wrong), "[4, 5]");
        iae(() -> cpu.copy(a, wrong), "[4, 5]", "[3, 5]");
        iae(() -> cpu.cast(a, cpu.empty(scope, DType.BF16, 5, 3)), "[5, 3]");
        iae(() -> cpu.permute(a, out, 1, 0), "[3, 5]", "[5, 3]");
        assertArrayEquals(new float[15], out.toFloatArray());
    }

    @Test
    void dtypeMismatchesNameTheDtype() {
        Tensor a = cpu.zeros(scope, DType.F32, 3, 5);
        Tensor h = cpu.zeros(scope, DType.BF16, 3, 5);
        Tensor i = cpu.zeros(scope, DType.I32, 3, 5);
        iae(() -> cpu.binary(Ops.Binary.ADD, a, h, a), "b", "BF16");
        iae(() -> cpu.unary(Ops.Unary.EXP, h, a), "a", "BF16");
        iae(() -> cpu.unary(Ops.Unary.EXP, a, i), "out", "I32");
        iae(() -> cpu.axpby(1, a, 1, a, h), "out", "BF16");
        iae(() -> cpu.softmaxLastDim(h, h), "x", "BF16");
        iae(() -> cpu.reduceLastDim(Ops.Reduce.MAX, a, cpu.zeros(scope, DType.F16, 3)), "out", "F16");
        iae(() -> cpu.globalNorm(List.of(a, h)), "xs[1]", "BF16");
        iae(() -> cpu.randn(h, 1, 2), "out", "BF16");
        iae(() -> cpu.copy(a, h), "dtype", "F32", "BF16");
        iae(() -> cpu.cast(a, i), "I32");
        iae(() -> cpu.gemm(false, true, 1, a, h, 0, cpu.zeros(scope, DType.F32, 3, 3)), "b", "BF16");
    }

    @Test
    void nonContiguousOperandsAreRejected() {
        Tensor a = cpu.zeros(scope, DType.F32, 3, 5);
        Tensor t = a.transpose(0, 1);
        Tensor out = cpu.zeros(scope, DType.F32, 5, 3);
        iae(() -> cpu.unary(Ops.Unary.EXP, t, out), "a", "contiguous", "[5, 3]");
        iae(() -> cpu.binary(Ops.Binary.ADD, out, t, out), "b", "contiguous");
        iae(() -> cpu.copy(out, t), "dst", "contiguous");
        iae(() -> cpu.fill(t, 1f), "out", "contiguous");
        iae(() -> cpu.softmaxLastDim(a.slice(1, 1, 4), cpu.zeros(scope, DType.F32, 3, 3)), "x", "contiguous");
        // copy reads any strides
        cpu.copy(t, out);
    }

    @Test
    void partialOverlapsOfOutputAndInputAreRejected() {
        Tensor buf = cpu.zeros(scope, DType.F32, 2, 100);
        Tensor flat = buf.reshape(200);
        Tensor x = flat.slice(0, 0, 100);
        Tensor shifted = flat.slice(0, 1, 101);  // one element after x
        iae(() -> cpu.unary(Ops.Unary.EXP, x, shifted), "unary", "overlaps", "[100]");
        iae(() -> cpu.binary(Ops.Binary.ADD, x, x, shifted), "binary", "overlaps");
        iae(() -> cpu.binary(Ops.Binary.ADD, x, 1f, shifted), "overlaps");
        iae(() -> cpu.axpby(1, x, 1, cpu.zeros(scope, DType.F32, 100), shifted), "axpby", "overlaps");
        iae(() -> cpu.fma(x, x, x, shifted), "fma", "overlaps");
        iae(() -> cpu.scaleShift(x, 1, 1, shifted), "scaleShift", "overlaps");
        iae(() -> cpu.softmaxLastDim(x, shifted), "softmaxLastDim", "overlaps");
        iae(() -> cpu.reduceLastDim(Ops.Reduce.SUM, x.reshape(4, 25), flat.slice(0, 3, 7)), "reduceLastDim",
                "overlaps");
        iae(() -> cpu.cast(x, flat.slice(0, 50, 150).reshape(100).slice(0, 0, 100)), "cast", "overlaps");
        iae(() -> cpu.copy(x, flat.slice(0, 50, 150)), "copy", "overlaps");
        Tensor table = buf.reshape(20, 10);
        iae(() -> cpu.gatherRows(table, cpu.zeros(scope, DType.I32, 3), buf.reshape(20, 10).slice(0, 0, 3)),
                "gatherRows", "overlaps");
        // exactly the same tensor is an in-place op, allowed
        cpu.unary(Ops.Unary.NEG, x, x);
        cpu.softmaxLastDim(x, x);
        cpu.cast(x, x);
    }

    @Test
    void closedScopesThrowIllegalState() {
        Tensor dead;
        try (TensorScope inner = TensorScope.open()) {
            dead = cpu.zeros(inner, DType.F32, 3, 5);
        }
        Tensor live = cpu.zeros(scope, DType.F32, 3, 5);
        Tensor d = dead;
        ise(() -> cpu.unary(Ops.Unary.EXP, d, live), "closed", "[3, 5]");
        ise(() -> cpu.unary(Ops.Unary.EXP, live, d), "closed");
        ise(() -> cpu.binary(Ops.Binary.ADD, live, d, live), "closed");
        ise(() -> cpu.copy(d, live), "closed");
        ise(() -> cpu.copyToHost(d, java.lang.foreign.MemorySegment.ofArray(new float[15])), "closed");
        ise(() -> cpu.copyFromHost(java.lang.foreign.MemorySegment.ofArray(new float[15]), d), "closed");
        ise(() -> cpu.gemm(false, false, 1, d, live.reshape(5, 3), 0, cpu.zeros(scope, DType.F32, 3, 3)),
                "closed");
        ise(() -> cpu.globalNorm(List.of(live, d)), "closed");
        ise(() -> d.segment(), "closed");
        ise(d::toFloatArray, "closed");
    }

    @Test
    void nullArgumentsThrowNullPointerNamingTheArgument() {
        Tensor a = cpu.zeros(scope, DType.F32, 3);
        NullPointerException e = assertThrows(NullPointerException.class,
                () -> cpu.binary(Ops.Binary.ADD, a, null, a));
        assertTrue("b".equals(e.getMessage()), e.getMessage());
        assertThrows(NullPointerException.class, () -> cpu.unary(null, a, a));
        assertThrows(NullPointerException.class, () -> cpu.empty(null, DType.F32, 3));
    }
}
