package org.diffusion4j.tensor;

import org.diffusion4j.cpu.CpuBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.MemorySegment;
import java.nio.FloatBuffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Views of {@link Tensor} (reshape, slice, permute, transpose), contiguity, materialising views with
 * {@link Backend#copy}, host transfers and their error messages, on the CPU backend.
 */
class TensorViewTest {

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

    /** 0, 1, 2, ... as an F32 tensor of {@code shape}. */
    Tensor iota(long... shape) {
        float[] v = new float[(int) Shape.numel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = i;
        }
        return cpu.fromArray(scope, v, shape);
    }

    static void iae(Executable call, String... mustContain) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), "message lacks '" + s + "': " + e.getMessage());
        }
    }

    @Test
    void intArraysRoundTripThroughI32TensorsAndViews() {
        Tensor labels = cpu.fromArray(scope, new int[] {3, -1, 7, 0, 2, 9}, 2, 3);
        assertEquals(DType.I32, labels.dtype());
        assertArrayEquals(new int[] {3, -1, 7, 0, 2, 9}, labels.toIntArray());
        assertArrayEquals(new int[] {3, 0, -1, 2, 7, 9}, labels.transpose(0, 1).toIntArray());
        assertThrows(IllegalArgumentException.class, () -> cpu.fromArray(scope, new int[] {1, 2}, 3));
        assertThrows(IllegalArgumentException.class, () -> cpu.fromArray(scope, new float[] {1}, 1).toIntArray());
        assertThrows(IllegalArgumentException.class, () -> cpu.empty(scope, DType.F32, 2).copyFrom(new int[] {1, 2}));
    }

    @Test
    void descriptors() {
        Tensor t = iota(2, 3, 4);
        assertEquals(3, t.rank());
        assertEquals(24, t.numel());
        assertEquals(96, t.byteSize());
        assertEquals(6, t.rows());
        assertEquals(4, t.cols());
        assertArrayEquals(new long[] {12, 4, 1}, t.strides());
        assertEquals(4, t.shape(-1));
        assertEquals(12, t.stride(0));
        assertEquals(DType.F32, t.dtype());
        assertEquals(Device.CPU, t.device());
        assertTrue(t.isContiguous());
        assertTrue(t.isAlive());
        assertEquals("Tensor[f32 [2, 3, 4] cpu]", t.toString());
        Tensor scalar = cpu.fromArray(scope, new float[] {5f});
        assertEquals(0, scalar.rank());
        assertEquals(1, scalar.rows());
        assertEquals(1, scalar.cols());
        assertEquals(5f, scalar.item());
        Tensor empty = cpu.empty(scope, DType.F32, 3, 0);
        assertEquals(3, empty.rows()); // rows are the product of all dims but the last
        assertEquals(0, empty.cols());
        assertEquals(0, cpu.empty(scope, DType.F32, 0, 5).rows());
        iae(() -> t.shape(3), "dim 3", "rank 3");
        iae(() -> t.shape(-4), "dim -4");
    }

    @Test
    void reshapeSharesStorage() {
        Tensor t = iota(2, 3, 4);
        Tensor r = t.reshape(4, -1);
        assertArrayEquals(new long[] {4, 6}, r.shape());
        assertSame(t.storage(), r.storage());
        assertArrayEquals(t.toFloatArray(), r.toFloatArray());
        cpu.fill(r, 7f);
        assertEquals(7f, t.toFloatArray()[23]);
        iae(() -> t.reshape(5, 5), "[5, 5]", "24 elements");
        iae(() -> t.reshape(-1, -1), "more than one -1");
        iae(() -> t.reshape(7, -1), "[7, -1]");
        iae(() -> t.reshape(-2, 12), "negative");
        iae(() -> t.transpose(0, 2).reshape(24), "non-contiguous");
        assertArrayEquals(new long[] {0, 5}, cpu.empty(scope, DType.F32, 0, 5).reshape(0, 5).shape());
    }

    @Test
    void sliceViewsAndBounds() {
        Tensor t = iota(4, 5);
        Tensor rows = t.slice(0, 1, 3);
        assertArrayEquals(new long[] {2, 5}, rows.shape());
        assertEquals(5, rows.offset());
        assertTrue(rows.isContiguous());
        assertArrayEquals(new float[] {5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, rows.toFloatArray());
        Tensor cols = t.slice(-1, 2, 4);
        assertFalse(cols.isContiguous());
        assertArrayEquals(new float[] {2, 3, 7, 8, 12, 13, 17, 18}, cols.toFloatArray());
        Tensor none = t.slice(1, 3, 3);
        assertEquals(0, none.numel());
        assertTrue(none.isContiguous());
        assertEquals(0, none.toFloatArray().length);
        iae(() -> t.slice(0, 2, 5), "[2, 5)", "dim 0", "size 4");
        iae(() -> t.slice(1, -1, 2), "[-1, 2)");
        iae(() -> t.slice(1, 3, 2), "[3, 2)");
        iae(() -> t.slice(2, 0, 1), "dim 2");
        // writes through a slice land in the parent
        cpu.fill(rows, -1f);
        assertEquals(-1f, t.toFloatArray()[14]);
        assertEquals(15f, t.toFloatArray()[15]);
    }

    @Test
    void permuteAndTranspose() {
        Tensor t = iota(2, 3, 4);
        Tensor p = t.permute(2, 0, 1);
        assertArrayEquals(new long[] {4, 2, 3}, p.shape());
        assertArrayEquals(new long[] {1, 12, 4}, p.strides());
        assertFalse(p.isContiguous());
        float[] v = p.toFloatArray();
        assertEquals(4 * 0 + 12 * 1 + 1 * 2, v[(2 * 2 + 1) * 3]); // p[2, 1, 0] = t[1, 0, 2]
        Tensor tt = t.transpose(-1, -2);
        assertArrayEquals(new long[] {2, 4, 3}, tt.shape());
        assertArrayEquals(t.toFloatArray(), tt.transpose(1, 2).toFloatArray());
        assertTrue(tt.transpose(1, 2).isContiguous());
        assertArrayEquals(t.shape(), t.permute(0, 1, 2).shape());
        iae(() -> t.permute(0, 1), "[0, 1]", "rank 3");
        iae(() -> t.permute(0, 1, 1), "repeats dim 1");
        iae(() -> t.permute(0, 1, 3), "dim 3");
        iae(() -> t.transpose(0, 5), "dim 5");
        iae(() -> t.permute(-1, 0, 1, 2), "rank 3");
    }

    @Test
    void contiguityIgnoresSizeOneDimsAndEmptyTensors() {
        Tensor t = iota(3, 1, 4);
        assertTrue(t.permute(1, 0, 2).isContiguous()); // moving a size-1 dim keeps the layout
        assertFalse(t.permute(2, 1, 0).isContiguous());
        assertTrue(iota(1, 5).transpose(0, 1).isContiguous());
        assertTrue(cpu.empty(scope, DType.F32, 3, 0).transpose(0, 1).isContiguous());
        assertEquals(1, t.permute(1, 0, 2).segment().byteSize() / 48);
    }

    @Test
    void copyMaterialisesPermutedViews() {
        Tensor t = iota(3, 4, 5, 6);
        int[][] perms = {{0, 2, 1, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {0, 1, 3, 2}};
        float[] v = t.toFloatArray();
        for (int[] perm : perms) {
            Tensor view = t.permute(perm);
            Tensor out = cpu.empty(scope, DType.F32, view.shape());
            cpu.fill(out, Float.NaN);
            cpu.copy(view, out);
            assertTrue(out.isContiguous());
            float[] got = out.toFloatArray();
            long[] s = view.shape();
            long[] st = view.strides();
            int k = 0;
            for (int a = 0; a < s[0]; a++) {
                for (int b = 0; b < s[1]; b++) {
                    for (int c = 0; c < s[2]; c++) {
                        for (int d = 0; d < s[3]; d++) {
                            assertEquals(v[(int) (a * st[0] + b * st[1] + c * st[2] + d * st[3])], got[k++]);
                        }
                    }
                }
            }
            // the view reads back the same elements without an explicit copy
            assertArrayEquals(got, view.toFloatArray());
        }
        Tensor tr = cpu.empty(scope, DType.F32, 3, 4, 6, 5);
        cpu.transposeLast2(t, tr);
        assertArrayEquals(t.transpose(-1, -2).toFloatArray(), tr.toFloatArray());
        // a copy is independent of its source
        cpu.fill(t, 0f);
        assertEquals(1f, tr.toFloatArray()[5]);
    }

    @Test
    void hostTransfersThroughTheTensor() {
        Tensor t = cpu.empty(scope, DType.F32, 2, 3);
        t.copyFrom(FloatBuffer.wrap(new float[] {1, 2, 3, 4, 5, 6}));
        FloatBuffer out = FloatBuffer.allocate(6);
        t.transpose(0, 1).copyTo(out);
        assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, out.array());
        MemorySegment seg = MemorySegment.ofArray(new float[6]);
        t.copyTo(seg);
        assertEquals(6f, seg.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 5));
        t.copyFrom(MemorySegment.ofArray(new float[] {6, 5, 4, 3, 2, 1}));
        assertArrayEquals(new float[] {6, 5, 4, 3, 2, 1}, t.toFloatArray());
        iae(() -> t.copyFrom(new float[5]), "5 values", "6");
        iae(() -> t.copyTo(MemorySegment.ofArray(new float[5])), "20 bytes", "24");
        iae(() -> t.copyFrom(MemorySegment.ofArray(new float[7])), "28 bytes", "24");
        iae(() -> t.transpose(0, 1).copyFrom(new float[6]), "non-contiguous");
        iae(() -> cpu.empty(scope, DType.BF16, 6).toFloatArray(), "F32", "BF16");
        iae(() -> cpu.empty(scope, DType.I32, 6).copyFrom(new float[6]), "i32");
        iae(() -> t.item(), "one element");
    }

    @Test
    void closedScopeInvalidatesEveryView() {
        Tensor t;
        Tensor view;
        try (TensorScope inner = TensorScope.open()) {
            t = cpu.zeros(inner, DType.F32, 4, 4);
            view = t.transpose(0, 1).slice(0, 1, 3);
        }
        assertFalse(t.isAlive());
        Tensor tv = view;
        IllegalStateException e = assertThrows(IllegalStateException.class, tv::toFloatArray);
        assertTrue(e.getMessage().contains("closed") && e.getMessage().contains("[2, 4]"), e.getMessage());
        assertThrows(IllegalStateException.class, t::segment);
        assertThrows(IllegalStateException.class, t::storage);
        assertThrows(IllegalStateException.class, t::address);
        // views are descriptors: making one needs no memory
        assertArrayEquals(new long[] {16}, t.reshape(16).shape());
    }

    @Test
    void broadcastRules() {
        Tensor a = iota(2, 3, 4);
        assertEquals(Ops.Broadcast.NONE, Ops.Broadcast.of(a, iota(2, 3, 4)));
        assertEquals(Ops.Broadcast.SCALAR, Ops.Broadcast.of(a, iota(1)));
        assertEquals(Ops.Broadcast.SCALAR, Ops.Broadcast.of(a, iota(1, 1, 1)));
        assertEquals(Ops.Broadcast.ROW, Ops.Broadcast.of(a, iota(4)));
        assertEquals(Ops.Broadcast.PER_ROW, Ops.Broadcast.of(a, iota(2, 3, 1)));
        iae(() -> Ops.Broadcast.of(a, iota(3, 4)), "[3, 4]", "[2, 3, 4]");
        iae(() -> Ops.Broadcast.of(a, iota(2, 1, 1)), "[2, 1, 1]");
        assertEquals(Ops.Broadcast.PER_ROW, Ops.Broadcast.of(cpu.empty(scope, DType.F32, 3, 0), iota(3, 1)));
    }

    @Test
    void spanBytesIsZeroForEveryEmptyTensorAndExactOtherwise() {
        for (long[] shape : new long[][] {{0}, {0, 4}, {4, 0}, {0, 0}, {2, 0, 3}, {3, 5, 0}}) {
            Tensor t = cpu.empty(scope, DType.F32, shape);
            assertEquals(0, Shape.spanBytes(t), java.util.Arrays.toString(shape));
            assertEquals(0, Shape.spanBytes(t.transpose(0, -1)), "transposed " + java.util.Arrays.toString(shape));
        }
        Tensor x = iota(3, 4);
        assertEquals(48, Shape.spanBytes(x));
        assertEquals(48, Shape.spanBytes(x.transpose(0, 1)));
        assertEquals(4 * (4 + 2), Shape.spanBytes(x.slice(0, 0, 2).slice(1, 1, 3)));  // rows 0-1, cols 1-2
    }
}
