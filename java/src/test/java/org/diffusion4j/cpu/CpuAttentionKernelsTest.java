package org.diffusion4j.cpu;

import org.diffusion4j.nn.attention.AttentionMath;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The row kernels of {@link CpuAttention} against their scalar definitions: the tile exponential equals
 * {@link AttentionMath#exp2} bit for bit (after C2 has compiled and vectorised it), the column max and column sum
 * equal the plain loops (up to the order of the float sum).
 */
class CpuAttentionKernelsTest {

    static final long SEED = org.diffusion4j.TestSeed.BASE;

    @Test
    void tileExp2EqualsScalarBitForBit() {
        SplittableRandom r = new SplittableRandom(SEED);
        try (Arena arena = Arena.ofConfined()) {
            CpuAttention.Scratch sc = new CpuAttention.Scratch(arena);
            int n = CpuAttention.BLOCK_Q * CpuAttention.BLOCK_K;
            float[] s = new float[n];
            float[] in = new float[n];
            // many rounds so that the loops run interpreted, then compiled and vectorised
            for (int round = 0; round < 3000; round++) {
                float c = (float) r.nextDouble(0.01, 1);
                int len = round % 7 == 0 ? 1 + r.nextInt(n) : n;
                for (int i = 0; i < len; i++) {
                    in[i] = (float) (r.nextGaussian() * 30);
                    sc.shift[i] = (float) (r.nextGaussian() * 10);
                }
                if (round == 5) {
                    in[3] = Float.NaN;
                }
                System.arraycopy(in, 0, s, 0, len);
                CpuAttention.exp2(sc, s, len, c);
                if (round % 100 == 0 || round == 5) {
                    for (int i = 0; i < len; i++) {
                        float want = AttentionMath.exp2(Math.fma(in[i], c, sc.shift[i]));
                        if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(s[i])
                                && !(Float.isNaN(want) && Float.isNaN(s[i]))) {
                            throw new AssertionError("round " + round + " element " + i + ": " + s[i] + " != " + want
                                    + " (seed " + SEED + ")");
                        }
                    }
                }
            }
        }
    }

    @Test
    void columnMaxAndColumnSum() {
        SplittableRandom r = new SplittableRandom(SEED + 1);
        float[] t = new float[CpuAttention.BLOCK_Q * CpuAttention.BLOCK_K];
        float[] out = new float[CpuAttention.BLOCK_Q];
        for (int rows = 1; rows <= CpuAttention.BLOCK_K; rows += rows < 10 ? 1 : 13) {
            for (int w : new int[] {1, 7, CpuAttention.BLOCK_Q}) {
                float[] a = new float[rows * w];
                for (int i = 0; i < a.length; i++) {
                    a[i] = (float) r.nextGaussian();
                }
                float[] keep = a.clone();
                CpuAttention.columnMax(a, rows, w, t, out);
                for (int c = 0; c < w; c++) {
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < rows; j++) {
                        max = Math.max(max, a[j * w + c]);
                    }
                    assertEquals(max, out[c], "max of column " + c + " of [" + rows + ", " + w + "], seed " + SEED);
                }
                CpuAttention.columnSum(a, rows, w, t, out);
                for (int c = 0; c < w; c++) {
                    double sum = 0;
                    for (int j = 0; j < rows; j++) {
                        sum += a[j * w + c];
                    }
                    assertEquals(sum, out[c], 1e-6 * rows, "sum of column " + c + " of [" + rows + ", " + w
                            + "], seed " + SEED);
                }
                assertArrayEquals(keep, a, "the input must not be modified");
            }
        }
        float[] nan = {1, 2, Float.NaN, 4, 5, 6};
        CpuAttention.columnMax(nan, 3, 2, t, out);
        assertTrue(Float.isNaN(out[0]) && out[1] == 6f, "NaN propagates in its own column only");
    }
}
