package org.diffusion4j.tensor;

import org.diffusion4j.cpu.CpuBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.FloatBuffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile inputs to {@link Tensor} views, host transfers and {@link Shape}: dims whose product overflows a
 * long, empty views at the end of their storage, buffers of the wrong size, closed scopes and partially
 * overlapping operands. Every case must end in the documented exception, never another one.
 */
class TensorAdversarialTest {

    static Backend cpu;
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
            assertTrue(e.getMessage().contains(s), "message '" + e.getMessage() + "' lacks '" + s + "'");
        }
    }

    @Test
    void reshapeToDimsWhoseProductOverflowsIsAnIllegalArgument() {
        // was ArithmeticException: the product of the requested dims overflowed a long
        Tensor empty = cpu.empty(scope, DType.F32, 0, 5);
        iae(() -> empty.reshape(Long.MAX_VALUE, Long.MAX_VALUE), "9223372036854775807");
        iae(() -> empty.reshape(-1, Long.MAX_VALUE, 2), "cannot reshape");
        iae(() -> cpu.empty(scope, DType.F32, 4, 4).reshape(-1, 1L << 32, 1L << 32), "cannot reshape");
        iae(() -> cpu.empty(scope, DType.F32, 4).reshape(-2, -2), "negative dim");
        iae(() -> cpu.empty(scope, DType.F32, 4).reshape(-1, -1), "more than one -1");
        assertArrayEquals(new long[] {0, 5, 1}, empty.reshape(0, 5, 1).shape());
    }

    @Test
    void tensorOfWithAByteCountBeyondALongIsAnIllegalArgument() {
        // was ArithmeticException from numel * byteSize
        iae(() -> Tensor.of(cpu, MemorySegment.NULL, DType.F32, 1L << 62), "2^63");
        iae(() -> Tensor.of(cpu, MemorySegment.NULL, DType.F32, 1L << 40, 1L << 40), "2^63");
        iae(() -> cpu.empty(scope, DType.F32, -1), "negative dim");
    }

    @Test
    void emptyViewPastTheEndOfItsStorageHasAnEmptySegment() {
        // slice(1, 5, 5) of a [0, 5] tensor has offset 5 in a 0-byte storage: segment() threw
        // IndexOutOfBoundsException
        Tensor e = cpu.empty(scope, DType.F32, 0, 5);
        Tensor v = e.slice(1, 5, 5);
        assertEquals(0, v.segment().byteSize());
        v.address();
        assertArrayEquals(new float[0], v.toFloatArray());
        cpu.fill(v, 1f);
        Tensor t = cpu.empty(scope, DType.F32, 2, 3);
        assertEquals(0, t.slice(0, 2, 2).segment().byteSize());
        assertEquals(0, t.slice(1, 3, 3).segment().byteSize());
        cpu.copy(v, cpu.empty(scope, DType.F32, 0, 0));
    }

    @Test
    void copyToAFloatBufferThatIsTooSmallOrReadOnlyIsAnIllegalArgumentAndLeavesItAlone() {
        // was BufferOverflowException / ReadOnlyBufferException
        Tensor t = cpu.fromArray(scope, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        FloatBuffer small = FloatBuffer.allocate(8);
        small.position(3);
        iae(() -> t.copyTo(small), "5 floats remaining", "6");
        assertEquals(3, small.position());
        iae(() -> t.copyTo(FloatBuffer.allocate(6).asReadOnlyBuffer()), "read-only");
        FloatBuffer ok = FloatBuffer.allocate(9);
        ok.position(2);
        t.transpose(0, 1).slice(0, 0, 3).copyTo(ok);
        assertEquals(8, ok.position());
        assertArrayEquals(new float[] {0, 0, 1, 4, 2, 5, 3, 6, 0}, ok.array());
    }

    @Test
    void copyFromAFloatBufferAdvancesOnlyOnSuccess() {
        // was: the buffer advanced although the copy failed on a closed scope
        Tensor dead;
        try (TensorScope inner = TensorScope.open()) {
            dead = cpu.empty(inner, DType.F32, 3);
        }
        FloatBuffer src = FloatBuffer.wrap(new float[] {7, 8, 9});
        Tensor d = dead;
        assertThrows(IllegalStateException.class, () -> d.copyFrom(src));
        assertEquals(0, src.position());
        iae(() -> cpu.empty(scope, DType.F32, 2).copyFrom(src), "3 values");
        assertEquals(0, src.position());
        Tensor live = cpu.empty(scope, DType.F32, 3).copyFrom(src);
        assertEquals(3, src.position());
        assertArrayEquals(new float[] {7, 8, 9}, live.toFloatArray());
    }

    @Test
    void everyMemoryMethodOfAClosedTensorThrowsIllegalState() {
        Tensor t;
        try (TensorScope inner = TensorScope.open()) {
            t = cpu.fromArray(inner, new float[] {1, 2, 3, 4}, 2, 2);
        }
        Tensor v = t.transpose(0, 1).slice(0, 0, 1);
        Executable[] calls = {
            t::storage, t::segment, t::address, t::toFloatArray, t::checkAlive,
            () -> t.reshape(4).slice(0, 0, 1).item(), () -> t.copyFrom(new float[4]), () -> t.copyFrom(MemorySegment.ofArray(new float[4])),
            () -> t.copyFrom(FloatBuffer.allocate(4)), () -> t.copyTo(FloatBuffer.allocate(4)),
            () -> t.copyTo(MemorySegment.ofArray(new float[4])), v::toFloatArray, v::storage,
            () -> cpu.fill(t, 0f), () -> cpu.copy(v, cpu.empty(scope, DType.F32, 1, 2)),
            () -> cpu.copy(cpu.empty(scope, DType.F32, 2, 2), t), () -> cpu.unary(Ops.Unary.EXP, t, t),
            () -> cpu.softmaxLastDim(t, t), () -> cpu.globalNorm(java.util.List.of(t)),
            () -> cpu.gemm(false, false, 1f, t, t, 0f, cpu.empty(scope, DType.F32, 2, 2)),
            () -> cpu.randn(t, 1, 2), () -> Shape.requireSameOrDisjoint("op", "out", t, "in", t),
        };
        for (int i = 0; i < calls.length; i++) {
            IllegalStateException e = assertThrows(IllegalStateException.class, calls[i], "call " + i);
            assertTrue(e.getMessage() != null && !e.getMessage().isEmpty(), "call " + i);
        }
        // descriptors need no memory
        assertEquals(2, t.rank());
        assertEquals("Tensor[f32 [2, 2] cpu]", t.toString());
    }

    @Test
    void wrapRejectsEverySegmentItCannotServe() {
        iae(() -> cpu.wrap(MemorySegment.ofArray(new float[4]), DType.F32, 4), "heap segment");
        iae(() -> cpu.wrap(Arena.global().allocate(16, 8).asReadOnly(), DType.F32, 4), "read-only");
        iae(() -> cpu.wrap(Arena.global().allocate(32, 8).asSlice(1, 16), DType.F32, 4), "not aligned");
        iae(() -> cpu.wrap(Arena.global().allocate(12, 8), DType.F32, 4), "12 bytes", "16 bytes");
        iae(() -> cpu.wrap(Arena.global().allocate(16, 8), DType.F32, 1L << 62), "2^63");
        Arena closed = Arena.ofShared();
        MemorySegment gone = closed.allocate(16, 8);
        closed.close();
        assertThrows(IllegalStateException.class, () -> cpu.wrap(gone, DType.F32, 4));
        try (Arena confined = Arena.ofConfined()) {
            iae(() -> cpu.wrap(confined.allocate(16, 8), DType.F32, 4), "confined");
        }
    }

    @Test
    void requireSameOrDisjointAcceptsInPlaceAndDisjointAndRejectsPartialOverlap() {
        Tensor x = cpu.fromArray(scope, new float[] {0, 1, 2, 3, 4, 5, 6, 7}, 8);
        Tensor y = cpu.empty(scope, DType.F32, 8);
        Shape.requireSameOrDisjoint("op", "out", x, "in", x);
        Shape.requireSameOrDisjoint("op", "out", x.reshape(2, 4), "in", x.reshape(2, 4));
        Shape.requireSameOrDisjoint("op", "out", y, "in", x);
        Shape.requireSameOrDisjoint("op", "out", x.slice(0, 4, 8), "in", x.slice(0, 0, 4));
        Shape.requireSameOrDisjoint("op", "out", x.slice(0, 4, 4), "in", x);
        iae(() -> Shape.requireSameOrDisjoint("add", "out", x.slice(0, 1, 8), "a", x.slice(0, 0, 7)),
                "add", "out", "partially overlaps", "a");
        iae(() -> Shape.requireSameOrDisjoint("op", "out", x.slice(0, 0, 4), "in", x), "partially overlaps");
        iae(() -> Shape.requireSameOrDisjoint("op", "out", x.reshape(2, 4), "in", x.reshape(4, 2).transpose(0, 1)),
                "partially overlaps");
        Tensor asBf16 = Tensor.of(cpu, x.storage(), DType.BF16, 8);
        iae(() -> Shape.requireSameOrDisjoint("cast", "dst", asBf16, "src", x), "partially overlaps");
        // a strided view spans from its first to its last element
        Tensor cols = x.reshape(4, 2).slice(1, 0, 1);
        iae(() -> Shape.requireSameOrDisjoint("op", "out", x.slice(0, 3, 4), "in", cols), "partially overlaps");
        Shape.requireSameOrDisjoint("op", "out", x.slice(0, 7, 8), "in", cols);
    }
}
