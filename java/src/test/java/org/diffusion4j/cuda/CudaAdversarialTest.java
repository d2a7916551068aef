package org.diffusion4j.cuda;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hostile inputs of {@code CpuAdversarialTest} on {@link CudaBackend}: non-finite values, empty tensors,
 * degenerate products, closed scopes and foreign tensors must behave as on the CPU backend (the same NaN
 * pattern, the same exception types), never crash the JVM or the device.
 */
@Tag("cuda")
class CudaAdversarialTest {

    static final float NAN = Float.NaN;
    static final float INF = Float.POSITIVE_INFINITY;

    static CudaBackend gpu;
    static Backend cpu;
    TensorScope scope;

    @BeforeAll
    static void start() {
        if (CudaRuntime.probe(0).usable()) {
            gpu = CudaRuntime.createBackend(0, CudaBackend.GemmMath.FP32);
            cpu = new CpuBackend();
        }
    }

    @AfterAll
    static void stop() {
        if (gpu != null) {
            gpu.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    @BeforeEach
    void open() {
        CudaTestSupport.assumeDevice();
        scope = TensorScope.open();
    }

    @AfterEach
    void close() {
        if (scope != null) {
            scope.close();
        }
    }

    Tensor g(float[] v, long... shape) {
        return gpu.fromArray(scope, v, shape);
    }

    /** Bit patterns with every NaN mapped to one value, so NaN positions compare but payloads do not. */
    static int[] canon(float[] v) {
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            b[i] = Float.isNaN(v[i]) ? 0x7fc00000 : Float.floatToIntBits(v[i]);
        }
        return b;
    }

    @Test
    void softmaxOfNonFiniteRowsMatchesTheCpu() {
        for (int cols : new int[] {2, 33, 1500}) { // warp-per-row and block-per-row kernels
            float[] v = new float[5 * cols];
            for (int c = 0; c < cols; c++) {
                v[c] = -INF;                         // row 0: all -inf
                v[cols + c] = c % 3;                 // row 1: finite
                v[2 * cols + c] = c == 1 ? INF : 0;  // row 2: one +inf
                v[3 * cols + c] = c == 0 ? NAN : 1;  // row 3: one NaN
                v[4 * cols + c] = c == cols - 1 ? 0 : -INF; // row 4: one finite among -inf
            }
            Tensor x = g(v, 5, cols);
            gpu.softmaxLastDim(x, x);
            Tensor y = cpu.fromArray(scope, v, 5, cols);
            cpu.softmaxLastDim(y, y);
            float[] got = x.toFloatArray();
            float[] ref = y.toFloatArray();
            for (int i = 0; i < got.length; i++) {
                int row = i / cols;
                if (row == 1) {
                    assertEquals(ref[i], got[i], 1e-6f, "cols " + cols + " element " + i);
                } else {
                    assertEquals(Float.isNaN(ref[i]), Float.isNaN(got[i]), "cols " + cols + " row " + row + ": cpu "
                            + ref[i] + ", cuda " + got[i]);
                    if (!Float.isNaN(ref[i])) {
                        assertEquals(ref[i], got[i], "cols " + cols + " row " + row);
                    }
                }
            }
        }
    }

    @Test
    void reductionsWithNaNAndEmptyRowsMatchTheCpu() {
        float[] v = {NAN, 1, 2, NAN, -0f, 0f, -INF, -INF, 3e38f, 3e38f};
        Tensor out = gpu.empty(scope, DType.F32, 5);
        Tensor ref = cpu.empty(scope, DType.F32, 5);
        for (Ops.Reduce op : Ops.Reduce.values()) {
            gpu.reduceLastDim(op, g(v, 5, 2), out);
            cpu.reduceLastDim(op, cpu.fromArray(scope, v, 5, 2), ref);
            assertArrayEquals(canon(ref.toFloatArray()), canon(out.toFloatArray()), op.name());
        }
        Tensor empty = gpu.empty(scope, DType.F32, 3, 0);
        Tensor perRow = gpu.empty(scope, DType.F32, 3);
        gpu.reduceLastDim(Ops.Reduce.SUM, empty, perRow);
        assertArrayEquals(new float[] {0, 0, 0}, perRow.toFloatArray());
        gpu.reduceLastDim(Ops.Reduce.MAX, empty, perRow);
        assertArrayEquals(new float[] {-INF, -INF, -INF}, perRow.toFloatArray());
        assertEquals(cpu.globalNorm(List.of(cpu.fromArray(scope, new float[] {3e38f, -3e38f}, 2))),
                gpu.globalNorm(List.of(g(new float[] {3e38f, -3e38f}, 2))), 1e26);
        assertTrue(Double.isNaN(gpu.globalNorm(List.of(g(new float[] {INF, NAN}, 2)))));
        assertEquals(0.0, gpu.globalNorm(List.of(empty)));
    }

    @Test
    void everyOpAcceptsEmptyTensors() {
        Tensor e = gpu.empty(scope, DType.F32, 0, 3);
        Tensor e2 = gpu.empty(scope, DType.F32, 0, 3);
        gpu.fill(e, 1f);
        gpu.copy(e, e2);
        gpu.copy(gpu.empty(scope, DType.F32, 0, 5).slice(1, 5, 5), gpu.empty(scope, DType.F32, 0, 0));
        gpu.cast(e, gpu.empty(scope, DType.BF16, 0, 3));
        gpu.binary(Ops.Binary.ADD, e, e2, e2);
        gpu.binary(Ops.Binary.MUL, e, 2f, e2);
        gpu.unary(Ops.Unary.LOG, e, e2);
        gpu.axpby(1f, e, 2f, e2, e2);
        gpu.fma(e, e2, e2, e2);
        gpu.scaleShift(e, 1f, 2f, e2);
        gpu.softmaxLastDim(e, e2);
        Tensor rows = gpu.empty(scope, DType.F32, 3, 0);
        gpu.softmaxLastDim(rows, rows);
        gpu.randn(e, 1, 2);
        gpu.rand(e, 1, 2);
        gpu.gatherRows(gpu.empty(scope, DType.F32, 0, 4), gpu.empty(scope, DType.I32, 0),
                gpu.empty(scope, DType.F32, 0, 4));
        gpu.gemm(false, false, 1f, gpu.empty(scope, DType.F32, 0, 2), gpu.empty(scope, DType.F32, 2, 3), 0f,
                gpu.empty(scope, DType.F32, 0, 3));
        assertArrayEquals(new float[0], e.toFloatArray());
        gpu.synchronize();
    }

    @Test
    void gemmWithKZeroOrBetaZeroNeverReadsC() {
        Tensor c = g(new float[] {NAN, 1, INF, 3, 4, NAN}, 2, 3);
        gpu.gemm(false, false, 1f, gpu.empty(scope, DType.F32, 2, 0), gpu.empty(scope, DType.F32, 0, 3), 0f, c);
        assertArrayEquals(new float[6], c.toFloatArray());
        Tensor c2 = g(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        gpu.gemm(false, false, 1f, gpu.empty(scope, DType.F32, 2, 0), gpu.empty(scope, DType.F32, 0, 3), 2f, c2);
        assertArrayEquals(new float[] {2, 4, 6, 8, 10, 12}, c2.toFloatArray());
        Tensor c3 = g(new float[] {NAN, NAN, NAN, NAN, NAN, NAN}, 2, 3);
        gpu.gemm(false, false, 1f, g(new float[] {1, 2}, 2, 1), g(new float[] {1, 2, 3}, 1, 3), 0f, c3);
        assertArrayEquals(new float[] {1, 2, 3, 2, 4, 6}, c3.toFloatArray());
        Tensor sq = g(new float[] {1, 2, 3, 4}, 2, 2);
        assertThrows(IllegalArgumentException.class, () -> gpu.gemm(false, false, 1f, sq, sq, 0f, sq));
    }

    @Test
    void castsOfNaNInfinitiesAndSubnormalsAreBitwiseTheCpus() {
        float[] v = {NAN, INF, -INF, Float.MIN_VALUE, -Float.MIN_NORMAL, 3.4e38f, 65504f, 65520f, -0f, 1e-7f};
        for (DType half : new DType[] {DType.BF16, DType.F16}) {
            Tensor h = gpu.empty(scope, half, v.length);
            Tensor back = gpu.empty(scope, DType.F32, v.length);
            gpu.cast(g(v, v.length), h);
            gpu.cast(h, back);
            Tensor hc = cpu.empty(scope, half, v.length);
            Tensor backc = cpu.empty(scope, DType.F32, v.length);
            cpu.cast(cpu.fromArray(scope, v, v.length), hc);
            cpu.cast(hc, backc);
            assertArrayEquals(canon(backc.toFloatArray()), canon(back.toFloatArray()), half.name());
        }
    }

    @Test
    void badIndicesClosedScopesAndForeignTensorsThrowTheCpusExceptions() {
        Tensor table = g(new float[] {1, 2, 3, 4}, 2, 2);
        for (int bad : new int[] {-1, 2, Integer.MIN_VALUE}) {
            Tensor idx = gpu.empty(scope, DType.I32, 2);
            idx.copyFrom(MemorySegment.ofArray(new int[] {0, bad}));
            Tensor out = g(new float[] {9, 9, 9, 9}, 2, 2);
            // Backend#gatherRows leaves out unspecified after a bad index (the CPU leaves it untouched, CUDA
            // may have copied the good rows): only the exception and its message are checked
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                    () -> gpu.gatherRows(table, idx, out));
            assertTrue(e.getMessage().contains(String.valueOf(bad)), e.getMessage());
        }
        Tensor dead;
        try (TensorScope inner = TensorScope.open()) {
            dead = gpu.fromArray(inner, new float[] {1, 2, 3, 4}, 2, 2);
        }
        Tensor d = dead;
        assertThrows(IllegalStateException.class, d::toFloatArray);
        assertThrows(IllegalStateException.class, () -> gpu.fill(d, 0f));
        assertThrows(IllegalStateException.class, () -> gpu.unary(Ops.Unary.EXP, d, d));
        assertThrows(IllegalStateException.class, () -> gpu.gemm(false, false, 1f, d, d, 0f, gpu.empty(scope, DType.F32, 2, 2)));
        assertThrows(IllegalStateException.class, () -> d.copyFrom(new float[4]));
        assertThrows(IllegalStateException.class, () -> gpu.empty(TensorScopes.closed(), DType.F32, 2));
        Tensor host = cpu.fromArray(scope, new float[] {1, 2, 3, 4}, 2, 2);
        assertThrows(IllegalArgumentException.class, () -> gpu.fill(host, 0f));
        assertThrows(IllegalArgumentException.class, () -> gpu.copy(host, table));
        assertThrows(IllegalArgumentException.class, () -> cpu.copy(table, host));
    }

    /** A closed scope. */
    static final class TensorScopes {
        static TensorScope closed() {
            TensorScope s = TensorScope.open();
            s.close();
            return s;
        }
    }
}
