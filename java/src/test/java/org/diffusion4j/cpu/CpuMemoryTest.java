package org.diffusion4j.cpu;

import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.diffusion4j.cpu.CpuTestSupport.assertBitwise;
import static org.diffusion4j.cpu.CpuTestSupport.fromShorts;
import static org.diffusion4j.cpu.CpuTestSupport.ints;
import static org.diffusion4j.cpu.CpuTestSupport.poisoned;
import static org.diffusion4j.cpu.CpuTestSupport.random;
import static org.diffusion4j.cpu.CpuTestSupport.s;
import static org.diffusion4j.cpu.CpuTestSupport.seedOf;
import static org.diffusion4j.cpu.CpuTestSupport.shorts;
import static org.diffusion4j.cpu.CpuTestSupport.uniform;
import static org.diffusion4j.cpu.Reference.numel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Memory, transfers, fill, copy, cast, gather and random numbers of {@link CpuBackend}. */
class CpuMemoryTest {

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

    // ---------------------------------------------------------------- backend

    @Test
    void nameDeviceAndThreads() {
        assertTrue(cpu.name().matches("cpu \\(2 threads, OpenBLAS \\d+\\.\\d+\\.\\d+\\)"), cpu.name());
        assertEquals(Device.CPU, cpu.device());
        assertEquals(2, cpu.threads());
        try (CpuBackend one = new CpuBackend(1)) {
            assertTrue(one.name().startsWith("cpu (1 thread, "), one.name());
        }
        assertThrows(IllegalArgumentException.class, () -> new CpuBackend(0));
        IllegalArgumentException many = assertThrows(IllegalArgumentException.class,
                () -> new CpuBackend(CpuBackend.MAX_THREADS + 1));
        assertTrue(many.getMessage().contains("at most 1024 threads"), many.getMessage());
    }

    @Test
    void defaultThreadsComeFromTheSystemProperty() {
        String old = System.getProperty(CpuBackend.THREADS_PROPERTY);
        try {
            System.setProperty(CpuBackend.THREADS_PROPERTY, "3");
            assertEquals(3, CpuBackend.defaultThreads());
            try (CpuBackend be = new CpuBackend()) {
                assertEquals(3, be.threads());
            }
            System.setProperty(CpuBackend.THREADS_PROPERTY, "lots");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, CpuBackend::defaultThreads);
            assertTrue(e.getMessage().contains("lots") && e.getMessage().contains("d4j.threads"), e.getMessage());
            System.clearProperty(CpuBackend.THREADS_PROPERTY);
            if (System.getenv(CpuBackend.THREADS_ENV) == null) {
                assertEquals(Runtime.getRuntime().availableProcessors(), CpuBackend.defaultThreads());
            }
        } finally {
            if (old == null) {
                System.clearProperty(CpuBackend.THREADS_PROPERTY);
            } else {
                System.setProperty(CpuBackend.THREADS_PROPERTY, old);
            }
        }
    }

    @Test
    void closedBackendThrowsIllegalState() {
        CpuBackend be = new CpuBackend(3);
        Tensor t = be.zeros(scope, DType.F32, 100_000);
        be.close();
        be.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> be.fill(t, 1f));
        assertThrows(IllegalStateException.class, () -> be.empty(scope, DType.F32, 3));
    }

    // ---------------------------------------------------------------- memory

    @Test
    void emptyIsAlignedAndOwnedByTheScope() {
        Tensor t;
        try (TensorScope inner = TensorScope.open()) {
            for (DType dt : DType.values()) {
                Tensor x = cpu.empty(inner, dt, 3, 7);
                assertEquals(0, x.address() % 64, "alignment of " + dt);
                assertEquals(21L * dt.byteSize(), x.byteSize());
                assertSame(cpu, x.backend());
            }
            t = cpu.zeros(inner, DType.F32, 1000, 1000);
            assertEquals(0f, t.toFloatArray()[999_999]);
            assertEquals(0, cpu.empty(inner, DType.F32, 0, 5).numel());
        }
        Tensor dead = t;
        IllegalStateException e = assertThrows(IllegalStateException.class, dead::toFloatArray);
        assertTrue(e.getMessage().contains("[1000, 1000]"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> cpu.fill(dead, 1f));
        assertThrows(IllegalStateException.class, () -> cpu.empty(scopeClosed(), DType.F32, 3));
        IllegalArgumentException neg = assertThrows(IllegalArgumentException.class,
                () -> cpu.empty(scope, DType.F32, 3, -2));
        assertTrue(neg.getMessage().contains("-2"), neg.getMessage());
    }

    static TensorScope scopeClosed() {
        TensorScope s = TensorScope.open();
        s.close();
        return s;
    }

    @Test
    void wrapIsZeroCopyOfNativeMemory() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(4 * 12, 16);
            for (int i = 0; i < 12; i++) {
                seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            }
            Tensor t = cpu.wrap(seg, DType.F32, 3, 4);
            assertEquals(seg.address(), t.address());
            assertEquals(7f, t.toFloatArray()[7]);
            cpu.fill(t, 2f); // writes are visible through the caller's segment
            assertEquals(2f, seg.getAtIndex(ValueLayout.JAVA_FLOAT, 11));
            cpu.scaleShift(t, 3f, 1f, t);
            assertEquals(7f, seg.getAtIndex(ValueLayout.JAVA_FLOAT, 0));
            MemorySegment big = arena.allocate(4 * 200_000, 64); // used by the pool threads
            Tensor b = cpu.wrap(big, DType.F32, 200_000);
            cpu.fill(b, 5f);
            assertEquals(5f, big.getAtIndex(ValueLayout.JAVA_FLOAT, 199_999));
        }
        try (Arena confined = Arena.ofConfined(); CpuBackend one = new CpuBackend(1)) {
            MemorySegment seg = confined.allocate(4 * 200_000, 64);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.wrap(seg, DType.F32, 200_000));
            assertTrue(e.getMessage().contains("confined"), e.getMessage());
            Tensor t = one.wrap(seg, DType.F32, 200_000); // one thread: the caller only
            one.fill(t, 2f);
            assertEquals(2f, seg.getAtIndex(ValueLayout.JAVA_FLOAT, 199_999));
        }
    }

    @Test
    void wrapRejectsHeapSmallMisalignedAndReadOnlySegments() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cpu.wrap(MemorySegment.ofArray(new float[15]), DType.F32, 3, 5));
        assertTrue(e.getMessage().contains("heap"), e.getMessage());
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(64, 8);
            e = assertThrows(IllegalArgumentException.class, () -> cpu.wrap(seg, DType.F32, 5, 5));
            assertTrue(e.getMessage().contains("64 bytes") && e.getMessage().contains("100 bytes"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> cpu.wrap(seg.asSlice(2), DType.F32, 3));
            assertTrue(e.getMessage().contains("aligned") && e.getMessage().contains(Long.toHexString(
                    seg.address() + 2)), e.getMessage());
            cpu.wrap(seg.asSlice(2), DType.BF16, 3); // 2-byte alignment is enough for BF16
            e = assertThrows(IllegalArgumentException.class, () -> cpu.wrap(seg.asReadOnly(), DType.F32, 3));
            assertTrue(e.getMessage().contains("read-only"), e.getMessage());
        }
        MemorySegment closed;
        try (Arena arena = Arena.ofConfined()) {
            closed = arena.allocate(64, 8);
        }
        MemorySegment c = closed;
        assertThrows(IllegalStateException.class, () -> cpu.wrap(c, DType.F32, 4));
    }

    @Test
    void hostTransfersWithHeapAndNativeSegments() {
        String tc = "transfers";
        SplittableRandom r = random(tc);
        for (long n : new long[] {0, 1, 1023, 300_001, 1_500_000}) {
            float[] v = uniform(r, n, -1, 1);
            Tensor t = cpu.empty(scope, DType.F32, n);
            cpu.copyFromHost(MemorySegment.ofArray(v), t);
            assertBitwise("copyFromHost heap " + n, v, t.toFloatArray(), seedOf(tc));
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment nat = arena.allocate(Math.max(4, 4 * n), 4);
                cpu.copyToHost(t, nat);
                assertBitwise("copyToHost native " + n, v, nat.asSlice(0, 4 * n).toArray(ValueLayout.JAVA_FLOAT),
                        seedOf(tc));
                Tensor u = cpu.empty(scope, DType.F32, n);
                cpu.copyFromHost(nat, u);
                assertBitwise("copyFromHost native " + n, v, u.toFloatArray(), seedOf(tc));
            }
        }
        // a byte[] destination (alignment 1) and a larger-than-needed source
        Tensor small = cpu.fromArray(scope, new float[] {1f, 2f, 3f}, 3);
        byte[] bytes = new byte[13];
        cpu.copyToHost(small.slice(0, 1, 3), MemorySegment.ofArray(bytes).asSlice(1));
        assertEquals(2f, MemorySegment.ofArray(bytes).get(ValueLayout.JAVA_FLOAT_UNALIGNED, 1));
        cpu.copyFromHost(MemorySegment.ofArray(new float[] {9, 8, 7, 6}), small);
        assertArrayEquals(new float[] {9, 8, 7}, small.toFloatArray());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cpu.copyFromHost(MemorySegment.ofArray(new float[2]), small));
        assertTrue(e.getMessage().contains("8 bytes") && e.getMessage().contains("12"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.copyToHost(small, MemorySegment.ofArray(new float[2])));
        assertTrue(e.getMessage().contains("8 bytes"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.copyToHost(small, MemorySegment.ofArray(new float[3]).asReadOnly()));
        assertTrue(e.getMessage().contains("read-only"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> small.transpose(0, 0).reshape(3)
                .permute(0).slice(0, 0, 2).copyFrom(new float[3]));
        assertTrue(e.getMessage().contains("3"), e.getMessage());
    }

    @Test
    void copyToHostReadsStridedViews() {
        String tc = "strided reads";
        long[] shape = {4, 6, 35};
        float[] v = uniform(random(tc), numel(shape), -1, 1);
        Tensor x = cpu.fromArray(scope, v, shape);
        assertBitwise("permute(2, 0, 1)", Reference.permute(v, shape, new int[] {2, 0, 1}),
                x.permute(2, 0, 1).toFloatArray(), seedOf(tc));
        Tensor sl = x.slice(1, 1, 5).slice(2, 3, 34);
        float[] expect = new float[4 * 4 * 31];
        int k = 0;
        for (int i = 0; i < 4; i++) {
            for (int j = 1; j < 5; j++) {
                for (int l = 3; l < 34; l++) {
                    expect[k++] = v[(i * 6 + j) * 35 + l];
                }
            }
        }
        assertBitwise("slices", expect, sl.toFloatArray(), seedOf(tc));
    }

    // ---------------------------------------------------------------- fill

    @Test
    void fillEveryDtype() {
        for (long[] shape : CpuTestSupport.SHAPES) {
            for (float value : new float[] {0f, -0f, -2.5f, 1e-30f, Float.NaN, Float.intBitsToFloat(0x7fa00001)}) {
                Tensor t = poisoned(cpu, scope, shape);
                cpu.fill(t, value);
                float[] got = t.toFloatArray();
                for (int i = 0; i < got.length; i++) {
                    if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(value)) {
                        fail("fill " + value + " " + s(shape) + ": element " + i + " has bits 0x"
                                + Integer.toHexString(Float.floatToRawIntBits(got[i])));
                    }
                }
            }
        }
        for (DType dt : new DType[] {DType.BF16, DType.F16}) {
            for (long n : new long[] {0, 3, 99_999}) {
                Tensor t = cpu.empty(scope, dt, n);
                cpu.fill(t, 1.3f);
                short want = dt == DType.BF16 ? Reference.toBf16(1.3f) : Reference.toF16(1.3f);
                for (short h : shorts(t)) {
                    assertEquals(want, h, dt + " fill of 1.3");
                }
            }
        }
        Tensor i32 = cpu.empty(scope, DType.I32, 77);
        cpu.fill(i32, 0f);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(4 * 77);
            i32.copyTo(m);
            assertArrayEquals(new int[77], m.toArray(ValueLayout.JAVA_INT));
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cpu.fill(i32, 3f));
        assertTrue(e.getMessage().contains("I32") && e.getMessage().contains("3.0"), e.getMessage());
    }

    // ---------------------------------------------------------------- copy

    record PermCase(long[] shape, int[] perm) {
    }

    @Test
    void copyMaterialisesPermutesTransposesAndSlices() {
        PermCase[] cases = {
            new PermCase(new long[] {5, 7}, new int[] {1, 0}),
            new PermCase(new long[] {300, 257}, new int[] {1, 0}),
            new PermCase(new long[] {2, 3, 67}, new int[] {2, 0, 1}),
            new PermCase(new long[] {2, 3, 4, 33}, new int[] {0, 2, 1, 3}),
            new PermCase(new long[] {2, 3, 4, 33}, new int[] {3, 1, 2, 0}),
            new PermCase(new long[] {1, 5, 1, 9}, new int[] {3, 2, 1, 0}),
            new PermCase(new long[] {8, 16, 64, 32}, new int[] {0, 2, 1, 3}),
            new PermCase(new long[] {3, 0, 5}, new int[] {2, 1, 0}),
            new PermCase(new long[] {7}, new int[] {0}),
            new PermCase(new long[] {}, new int[] {}),
        };
        for (PermCase k : cases) {
            String tc = "copy permute " + s(k.shape());
            float[] v = uniform(random(tc), numel(k.shape()), -1, 1);
            Tensor x = cpu.fromArray(scope, v, k.shape());
            long[] ps = x.permute(k.perm()).shape();
            Tensor out = poisoned(cpu, scope, ps);
            cpu.permute(x, out, k.perm());
            assertBitwise(tc, Reference.permute(v, k.shape(), k.perm()), out.toFloatArray(), seedOf(tc));
        }
        String tc = "copy slice / transpose";
        float[] v = uniform(random(tc), 9 * 41, -1, 1);
        Tensor x = cpu.fromArray(scope, v, 9, 41);
        Tensor o = poisoned(cpu, scope, 4, 38);
        cpu.copy(x.slice(0, 2, 6).slice(1, 3, 41), o);
        float[] expect = new float[4 * 38];
        for (int i = 0; i < 4; i++) {
            System.arraycopy(v, (i + 2) * 41 + 3, expect, i * 38, 38);
        }
        assertBitwise("copy (slice)", expect, o.toFloatArray(), seedOf(tc));
        Tensor t = poisoned(cpu, scope, 41, 9);
        cpu.transposeLast2(x, t);
        assertBitwise("transposeLast2", Reference.permute(v, new long[] {9, 41}, new int[] {1, 0}),
                t.toFloatArray(), seedOf(tc));
        // a column: 1-D strided gather
        Tensor col = poisoned(cpu, scope, 9, 1);
        cpu.copy(x.slice(1, 5, 6), col);
        float[] ce = new float[9];
        for (int i = 0; i < 9; i++) {
            ce[i] = v[i * 41 + 5];
        }
        assertBitwise("copy (column)", ce, col.toFloatArray(), seedOf(tc));
    }

    @Test
    void copyOfTwoByteDtypesAndNaNPayloads() {
        String tc = "copy bf16";
        SplittableRandom r = random(tc);
        short[] bits = new short[9 * 41];
        for (int i = 0; i < bits.length; i++) {
            bits[i] = (short) r.nextInt();
        }
        Tensor h = fromShorts(cpu, scope, DType.BF16, bits, 9, 41);
        Tensor ht = cpu.empty(scope, DType.BF16, 41, 9);
        cpu.transposeLast2(h, ht);
        short[] got = shorts(ht);
        for (int i = 0; i < 9; i++) {
            for (int j = 0; j < 41; j++) {
                assertEquals(bits[i * 41 + j], got[j * 9 + i], seedOf(tc));
            }
        }
        float[] nan = {Float.intBitsToFloat(0x7f800001), Float.intBitsToFloat(0xffc12345), 1f};
        Tensor src = cpu.fromArray(scope, nan, 3);
        Tensor dst = poisoned(cpu, scope, 3);
        cpu.copy(src, dst);
        assertBitwise("copy keeps NaN payloads", nan, dst.toFloatArray(), "");
    }

    // ---------------------------------------------------------------- cast

    static float[] castInputs(SplittableRandom r) {
        float[] v = uniform(r, 4099 + 70_000, -70000, 70000);
        float[] special = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE,
            -Float.MIN_NORMAL, 65504f, 65520f, 65519.996f, 1e-8f, 6e-5f, 1f + 0x1p-8f, 1f + 0x1p-8f + 0x1p-23f,
            1f + 3 * 0x1p-8f, 1f + 0x1p-11f, 1f + 3 * 0x1p-11f, 0x1p-25f, 0x1.000002p-25f, 0x1p-24f, 0x1.8p-24f,
            Float.MAX_VALUE, 3.3895314e38f, 3.3895313e38f, Float.intBitsToFloat(0x7f800001),
            Float.intBitsToFloat(0xff812345), Float.intBitsToFloat(0x7fbfffff)};
        System.arraycopy(special, 0, v, 0, special.length);
        for (int i = special.length; i < 3000; i++) {
            v[i] *= (float) Math.pow(2, -r.nextInt(45)); // small magnitudes, F16 subnormals, ties
        }
        for (int i = 3000; i < 4000; i++) { // exact ties of BF16 and F16
            int u = Float.floatToRawIntBits(v[i]);
            v[i] = Float.intBitsToFloat(i % 2 == 0 ? (u & 0xffff0000) | 0x8000 : (u & 0xffffe000) | 0x1000);
        }
        return v;
    }

    @Test
    void castRoundsToNearestEvenBitForBit() {
        String tc = "cast";
        float[] v = castInputs(random(tc));
        Tensor x = cpu.fromArray(scope, v, v.length);
        for (DType dt : new DType[] {DType.BF16, DType.F16}) {
            Tensor h = cpu.empty(scope, dt, v.length);
            cpu.cast(x, h);
            short[] got = shorts(h);
            for (int i = 0; i < v.length; i++) {
                short want = dt == DType.BF16 ? Reference.toBf16(v[i]) : Reference.toF16(v[i]);
                if (got[i] != want) {
                    fail("cast F32->" + dt + " of " + v[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(v[i]))
                            + ") gave 0x" + Integer.toHexString(got[i] & 0xffff) + ", expected 0x"
                            + Integer.toHexString(want & 0xffff) + "; " + seedOf(tc));
                }
            }
            Tensor back = poisoned(cpu, scope, v.length);
            cpu.cast(h, back);
            float[] b = back.toFloatArray();
            for (int i = 0; i < v.length; i++) {
                int want = dt == DType.BF16 ? Reference.fromBf16(got[i]) : Reference.fromF16(got[i]);
                if (Float.floatToRawIntBits(b[i]) != want) {
                    fail("cast " + dt + "->F32 of 0x" + Integer.toHexString(got[i] & 0xffff) + " gave 0x"
                            + Integer.toHexString(Float.floatToRawIntBits(b[i])) + ", expected 0x"
                            + Integer.toHexString(want) + "; " + seedOf(tc));
                }
            }
        }
        // BF16 <-> F16 rounds once, through the exact F32 value
        Tensor bf = cpu.empty(scope, DType.BF16, v.length);
        Tensor hf = cpu.empty(scope, DType.F16, v.length);
        cpu.cast(x, bf);
        cpu.cast(bf, hf);
        short[] bfs = shorts(bf);
        short[] hfs = shorts(hf);
        for (int i = 0; i < v.length; i++) {
            assertEquals(Reference.toF16(Float.intBitsToFloat(Reference.fromBf16(bfs[i]))), hfs[i],
                    "BF16->F16 at " + i + "; " + seedOf(tc));
        }
        Tensor bf2 = cpu.empty(scope, DType.BF16, v.length);
        cpu.cast(hf, bf2);
        short[] bf2s = shorts(bf2);
        for (int i = 0; i < v.length; i++) {
            assertEquals(Reference.toBf16(Float.intBitsToFloat(Reference.fromF16(hfs[i]))), bf2s[i],
                    "F16->BF16 at " + i + "; " + seedOf(tc));
        }
    }

    @Test
    void everyF16AndBf16CodeConvertsExactlyToF32() {
        short[] all = new short[65536];
        for (int i = 0; i < all.length; i++) {
            all[i] = (short) i;
        }
        for (DType dt : new DType[] {DType.BF16, DType.F16}) {
            Tensor h = fromShorts(cpu, scope, dt, all, all.length);
            Tensor f = poisoned(cpu, scope, all.length);
            cpu.cast(h, f);
            float[] got = f.toFloatArray();
            for (int i = 0; i < all.length; i++) {
                int want = dt == DType.BF16 ? Reference.fromBf16(all[i]) : Reference.fromF16(all[i]);
                assertEquals(want, Float.floatToRawIntBits(got[i]), dt + " code 0x" + Integer.toHexString(i));
            }
        }
    }

    @Test
    void castOfEqualDtypesCopiesAndI32IsRejected() {
        float[] v = {1f, -2f, Float.NaN};
        Tensor a = cpu.fromArray(scope, v, 3);
        Tensor b = poisoned(cpu, scope, 3);
        cpu.cast(a, b);
        assertBitwise("cast F32->F32", v, b.toFloatArray(), "");
        cpu.cast(a, a);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cpu.cast(a, cpu.empty(scope, DType.I32, 3)));
        assertTrue(e.getMessage().contains("I32"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> cpu.cast(a, cpu.empty(scope, DType.BF16, 4)));
        assertTrue(e.getMessage().contains("[3]") && e.getMessage().contains("[4]"), e.getMessage());
    }

    // ---------------------------------------------------------------- gather

    @Test
    void gatherRows() {
        for (int[] vdn : new int[][] {{50, 33, 77}, {7, 1, 5}, {1000, 300, 4000}, {3, 0, 4}, {5, 8, 0}}) {
            int vocab = vdn[0];
            int dim = vdn[1];
            int n = vdn[2];
            String tc = "gatherRows " + vocab + " " + dim + " " + n;
            SplittableRandom r = random(tc);
            float[] table = uniform(r, (long) vocab * dim, -1, 1);
            int[] idx = new int[n];
            for (int i = 0; i < n; i++) {
                idx[i] = i == 0 ? 0 : i == 1 ? vocab - 1 : r.nextInt(vocab);
            }
            Tensor t = cpu.fromArray(scope, table, vocab, dim);
            Tensor out = poisoned(cpu, scope, n, dim);
            cpu.gatherRows(t, ints(cpu, scope, idx), out);
            assertBitwise(tc, Reference.gatherRows(table, dim, idx), out.toFloatArray(), seedOf(tc));
        }
    }

    @Test
    void gatherRowsNamesTheFirstBadIndexAndLeavesOutUntouched() {
        Tensor table = cpu.fromArray(scope, uniform(random("gather bad"), 50 * 3, -1, 1), 50, 3);
        int[] idx = new int[77];
        idx[40] = 50;
        idx[60] = -7;
        Tensor out = cpu.zeros(scope, DType.F32, 77, 3);
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                () -> cpu.gatherRows(table, ints(cpu, scope, idx), out));
        assertTrue(e.getMessage().contains("indices[40] = 50") && e.getMessage().contains("[0, 50)"), e.getMessage());
        assertArrayEquals(new float[77 * 3], out.toFloatArray());
        idx[40] = 0;
        e = assertThrows(IndexOutOfBoundsException.class, () -> cpu.gatherRows(table, ints(cpu, scope, idx), out));
        assertTrue(e.getMessage().contains("indices[60] = -7"), e.getMessage());
        IllegalArgumentException a = assertThrows(IllegalArgumentException.class,
                () -> cpu.gatherRows(table, cpu.zeros(scope, DType.F32, 77), out));
        assertTrue(a.getMessage().contains("indices") && a.getMessage().contains("I32"), a.getMessage());
        a = assertThrows(IllegalArgumentException.class,
                () -> cpu.gatherRows(table, cpu.zeros(scope, DType.I32, 76), out));
        assertTrue(a.getMessage().contains("[76, 3]"), a.getMessage());
    }

    // ---------------------------------------------------------------- random numbers

    @Test
    void randnAndRandArePhiloxByIndex() {
        long[][] seeds = {{0, 0}, {42, 7}, {-1L, Long.MIN_VALUE}};
        for (long[] sd : seeds) {
            for (long[] shape : new long[][] {{1}, {5}, {3, 0}, {4099}, {3, 33_335}, {1, 100_003}}) {
                String what = s(shape) + " seed " + sd[0] + " stream " + sd[1];
                Tensor o = poisoned(cpu, scope, shape);
                cpu.randn(o, sd[0], sd[1]);
                assertBitwise("randn " + what, Reference.randn(numel(shape), sd[0], sd[1]), o.toFloatArray(), "");
                cpu.rand(o, sd[0], sd[1]);
                assertBitwise("rand " + what, Reference.rand(numel(shape), sd[0], sd[1]), o.toFloatArray(), "");
            }
        }
        Tensor a = poisoned(cpu, scope, 10);
        cpu.randn(a, 1, 2);
        assertEquals(Philox.normal(1, 2, 9), a.toFloatArray()[9]);
    }
}
