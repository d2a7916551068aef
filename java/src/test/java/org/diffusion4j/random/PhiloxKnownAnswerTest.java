package org.diffusion4j.random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Philox4x32-10 against the published known-answer vectors, and the mapping of {@code (seed, stream, i)} onto
 * key, counter, block and lane that the class contract fixes.
 */
class PhiloxKnownAnswerTest {

    /**
     * Random123 {@code tests/kat_vectors} (github.com/DEShawResearch/random123), the three
     * {@code philox4x32 10} lines: counter[4], key[2], expected[4].
     */
    private static final int[][] KAT = {
        {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
            0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
            0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
            0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };

    @Test
    void philox4x32_10MatchesRandom123KnownAnswers() {
        for (int[] v : KAT) {
            int[] got = Philox.philox4x32_10(v[0], v[1], v[2], v[3], v[4], v[5]);
            assertArrayEquals(new int[] {v[6], v[7], v[8], v[9]}, got,
                    () -> String.format("counter %08x %08x %08x %08x key %08x %08x", v[0], v[1], v[2], v[3], v[4], v[5]));
        }
    }

    @Test
    void keyIsSeedAndCounterIsBlockThenStream() {
        // key = (low32(seed), high32(seed)); counter = (low32(j), high32(j), low32(stream), high32(stream))
        assertArrayEquals(new int[] {KAT[0][6], KAT[0][7], KAT[0][8], KAT[0][9]}, Philox.block(0, 0, 0));
        assertArrayEquals(new int[] {KAT[1][6], KAT[1][7], KAT[1][8], KAT[1][9]}, Philox.block(-1L, -1L, -1L));
        long seed = 0x299f31d0_a4093822L;
        long stream = 0x03707344_13198a2eL;
        long j = 0x85a308d3_243f6a88L;
        assertArrayEquals(new int[] {KAT[2][6], KAT[2][7], KAT[2][8], KAT[2][9]}, Philox.block(seed, stream, j));
        SplittableRandom rnd = new SplittableRandom(5);
        for (int n = 0; n < 200; n++) {
            long s = rnd.nextLong();
            long t = rnd.nextLong();
            long b = rnd.nextLong();
            assertArrayEquals(Philox.philox4x32_10((int) b, (int) (b >>> 32), (int) t, (int) (t >>> 32), (int) s,
                    (int) (s >>> 32)), Philox.block(s, t, b));
        }
    }

    @Test
    void allocationFreeBlockWritesAtOffset() {
        int[] out = {7, 7, 7, 7, 7, 7};
        Philox.block(42, 3, 1000, out, 1);
        int[] expected = Philox.block(42, 3, 1000);
        assertEquals(7, out[0]);
        assertEquals(7, out[5]);
        for (int l = 0; l < 4; l++) {
            assertEquals(expected[l], out[1 + l]);
        }
        assertThrows(IndexOutOfBoundsException.class, () -> Philox.block(1, 2, 3, new int[5], 2));
    }

    @Test
    void elementIUsesLaneIMod4OfBlockIDiv4() {
        long[] seeds = {0, 1, -1, 0xDEAD_BEEF_0000_0001L};
        long[] blocks = {0, 1, 0xFFFF_FFFFL, 1L << 32, (1L << 62) - 1};
        for (long seed : seeds) {
            for (long j : blocks) {
                int[] w = Philox.block(seed, 9, j);
                for (int lane = 0; lane < 4; lane++) {
                    long i = 4 * j + lane;
                    assertEquals(w[lane], Philox.word(seed, 9, i));
                    assertEquals(Float.floatToRawIntBits(Philox.uniformOf(w[lane])),
                            Float.floatToRawIntBits(Philox.uniform(seed, 9, i)));
                }
                // Box–Muller over lane pairs (0, 1) and (2, 3)
                assertBits(Philox.radius(w[0]) * Philox.cosTurns(w[1]), Philox.normal(seed, 9, 4 * j));
                assertBits(Philox.radius(w[0]) * Philox.sinTurns(w[1]), Philox.normal(seed, 9, 4 * j + 1));
                assertBits(Philox.radius(w[2]) * Philox.cosTurns(w[3]), Philox.normal(seed, 9, 4 * j + 2));
                assertBits(Philox.radius(w[2]) * Philox.sinTurns(w[3]), Philox.normal(seed, 9, 4 * j + 3));
            }
        }
        // indices are unsigned: the last element 2^64 - 1 is lane 3 of block 2^62 - 1
        assertEquals(Philox.block(5, 6, (1L << 62) - 1)[3], Philox.word(5, 6, -1L));
    }

    @Test
    void uniformIsTheTop24BitsPlusOneTimes2ToMinus24() {
        assertEquals(0x1p-24f, Philox.uniformOf(0));
        assertEquals(0x1p-24f, Philox.uniformOf(0xFF));
        assertEquals(0x2p-24f, Philox.uniformOf(0x100));
        assertEquals(0.5f, Philox.uniformOf(0x7FFF_FF00));
        assertEquals(1f, Philox.uniformOf(0xFFFF_FFFF));
        SplittableRandom rnd = new SplittableRandom(6);
        for (int n = 0; n < 100_000; n++) {
            int r = rnd.nextInt();
            double exact = ((r >>> 8) + 1) / 16777216.0;
            assertEquals(exact, Philox.uniformOf(r), 0.0);
        }
    }

    private static void assertBits(float expected, float actual) {
        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
                () -> "expected " + expected + " got " + actual);
    }
}
