package org.diffusion4j.random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * The bulk fills: element {@code i} depends only on {@code (seed, stream, i)}, whatever range a fill covers and
 * however a range is split, across chunk, 2^32-block and 2^64 wrap boundaries; no write beyond {@code count};
 * argument errors.
 */
class PhiloxFillTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final float POISON = Float.intBitsToFloat(0x7FC0_DEAD);
    private static final long[] FIRSTS = {
        0, 1, 2, 3, 4, 5, 1021, 1023, -7, -1, (1L << 34) - 1001, (1L << 34) - 3, 0x7FFF_FFFF_FFFF_FFF0L,
        Long.MIN_VALUE - 9,
    };
    /** Counts within one and across many of the 1024-element pieces the segment fills stage through. */
    private static final int[] COUNTS = {0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 1023, 1024, 1025, 1027, 3001, 4095, 4096, 4097,
        8193, 12289};
    private static final int MAX_COUNT = 12_300;

    private static void fill(boolean normal, MemorySegment out, long count, long seed, long stream, long first) {
        if (normal) {
            Philox.fillNormal(out, count, seed, stream, first);
        } else {
            Philox.fillUniform(out, count, seed, stream, first);
        }
    }

    private static float single(boolean normal, long seed, long stream, long i) {
        return normal ? Philox.normal(seed, stream, i) : Philox.uniform(seed, stream, i);
    }

    @Test
    void fillsEqualTheSingleElementFormsBitForBit() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4L * MAX_COUNT);
            for (boolean normal : new boolean[] {true, false}) {
                for (long first : FIRSTS) {
                    for (int count : COUNTS) {
                        seg.fill((byte) 0);
                        for (int k = 0; k < MAX_COUNT; k++) {
                            seg.setAtIndex(F, k, POISON);
                        }
                        fill(normal, seg, count, 0xC0FFEE, 17, first);
                        for (int k = 0; k < count; k++) {
                            int got = Float.floatToRawIntBits(seg.getAtIndex(F, k));
                            int want = Float.floatToRawIntBits(single(normal, 0xC0FFEE, 17, first + k));
                            if (got != want) {
                                throw new AssertionError((normal ? "normal" : "uniform") + " first " + first
                                        + " count " + count + " element " + k + ": " + Integer.toHexString(got)
                                        + " vs " + Integer.toHexString(want));
                            }
                        }
                        for (int k = count; k < MAX_COUNT; k++) {
                            assertEquals(Float.floatToRawIntBits(POISON), Float.floatToRawIntBits(seg.getAtIndex(F, k)),
                                    "wrote past count " + count + " at " + k);
                        }
                    }
                }
            }
        }
    }

    @Test
    void aRangeEqualsTheConcatenationOfItsSubRangesStartingAtOddOffsets() {
        long first = 1_000_001;                            // odd
        int total = 10_007;
        int[] cuts = {0, 1, 4, 9, 130, 1031, 1032, 2047, 5001, 9999, total};
        try (Arena arena = Arena.ofConfined()) {
            for (boolean normal : new boolean[] {true, false}) {
                MemorySegment whole = arena.allocate(4L * total);
                MemorySegment parts = arena.allocate(4L * total);
                fill(normal, whole, total, 77, 5, first);
                for (int c = 0; c + 1 < cuts.length; c++) {
                    long from = cuts[c];
                    long n = cuts[c + 1] - cuts[c];
                    fill(normal, parts.asSlice(4 * from, 4 * n), n, 77, 5, first + from);
                }
                assertEquals(-1L, whole.mismatch(parts), (normal ? "normal" : "uniform") + " ranges differ");
            }
        }
    }

    @Test
    void fillsWorkOnHeapAndUnalignedSegments() {
        float[] heap = new float[1001];
        Philox.fillNormal(MemorySegment.ofArray(heap), heap.length, 3, 4, 5);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment raw = arena.allocate(4L * 1001 + 3);
            MemorySegment unaligned = raw.asSlice(3);
            Philox.fillNormal(unaligned, 1001, 3, 4, 5);
            for (int k = 0; k < heap.length; k++) {
                assertEquals(Float.floatToRawIntBits(Philox.normal(3, 4, 5 + k)), Float.floatToRawIntBits(heap[k]));
                assertEquals(Float.floatToRawIntBits(heap[k]), Float.floatToRawIntBits(unaligned.getAtIndex(F, k)));
            }
        }
    }

    @Test
    void concurrentFillsAgreeWithASingleThread() throws Exception {
        int n = 50_000;
        float[] expected = new float[n];
        Philox.fillNormal(MemorySegment.ofArray(expected), n, 8, 9, 10);
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<float[]>> futures = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                futures.add(pool.submit(() -> {
                    float[] out = new float[n];
                    for (int rep = 0; rep < 3; rep++) {
                        Philox.fillNormal(MemorySegment.ofArray(out), n, 8, 9, 10);
                    }
                    return out;
                }));
            }
            for (Future<float[]> f : futures) {
                float[] got = f.get();
                for (int k = 0; k < n; k++) {
                    assertEquals(Float.floatToRawIntBits(expected[k]), Float.floatToRawIntBits(got[k]));
                }
            }
        }
    }

    @Test
    void arrayFillsEqualTheSingleElementFormsAndStayInsideTheirRange() {
        int pad = 5;
        for (boolean normal : new boolean[] {true, false}) {
            for (long first : FIRSTS) {
                for (int count : COUNTS) {
                    float[] out = new float[count + 2 * pad];
                    java.util.Arrays.fill(out, POISON);
                    if (normal) {
                        Philox.fillNormal(out, pad, count, 0xC0FFEE, 17, first);
                    } else {
                        Philox.fillUniform(out, pad, count, 0xC0FFEE, 17, first);
                    }
                    for (int k = 0; k < out.length; k++) {
                        int want = k < pad || k >= pad + count ? Float.floatToRawIntBits(POISON)
                                : Float.floatToRawIntBits(single(normal, 0xC0FFEE, 17, first + k - pad));
                        if (Float.floatToRawIntBits(out[k]) != want) {
                            throw new AssertionError((normal ? "normal" : "uniform") + " first " + first + " count "
                                    + count + " slot " + k + ": " + Integer.toHexString(Float.floatToRawIntBits(out[k]))
                                    + " vs " + Integer.toHexString(want));
                        }
                    }
                }
            }
        }
    }

    @Test
    void arrayFillsRejectRangesOutsideTheArrayBeforeWriting() {
        float[] out = {POISON, POISON, POISON};
        assertThrows(IndexOutOfBoundsException.class, () -> Philox.fillNormal(out, 1, 3, 0, 0, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> Philox.fillUniform(out, -1, 1, 0, 0, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> Philox.fillNormal(out, 0, -1, 0, 0, 0));
        assertThrows(NullPointerException.class, () -> Philox.fillNormal(null, 0, 1, 0, 0, 0));
        for (float v : out) {
            assertEquals(Float.floatToRawIntBits(POISON), Float.floatToRawIntBits(v));
        }
    }

    @Test
    void badArgumentsAreRejectedBeforeWriting() {
        float[] heap = {POISON, POISON};
        MemorySegment seg = MemorySegment.ofArray(heap);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Philox.fillNormal(seg, 3, 0, 0, 0));
        assertTrue(e.getMessage().contains("3 floats") && e.getMessage().contains("8 bytes"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Philox.fillUniform(seg, -1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> Philox.fillUniform(seg, Long.MAX_VALUE, 0, 0, 0));
        assertThrows(NullPointerException.class, () -> Philox.fillNormal(null, 1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> Philox.fillNormal(seg.asReadOnly(), 1, 0, 0, 0));
        assertEquals(Float.floatToRawIntBits(POISON), Float.floatToRawIntBits(heap[0]));
        Philox.fillNormal(seg, 0, 0, 0, 0);             // count 0 writes nothing
        assertEquals(Float.floatToRawIntBits(POISON), Float.floatToRawIntBits(heap[1]));
    }
}
