package org.diffusion4j.io;

import org.diffusion4j.random.Philox;

/**
 * Seeded random permutations and bounded integers drawn from the Philox4x32-10 stream {@code (seed, stream)}
 * ({@link Philox}): draw {@code k} uses the word {@code Philox.word(seed, stream, k)}, so a permutation
 * depends only on {@code (n, seed, stream)}, on every machine and JDK.
 *
 * <p>Permutations are the Fisher–Yates shuffle (Durstenfeld's in-place form, Knuth TAOCP vol. 2, §3.4.2,
 * Algorithm P): for {@code i = n−1 … 1} swap element {@code i} with a uniform {@code j ∈ [0, i]}. Bounded
 * integers use Lemire's multiply-and-reject method (D. Lemire, "Fast Random Integer Generation in an
 * Interval", ACM TOMACS 29(1), 2019, Algorithm 5): {@code m = x·s} for a 32-bit word {@code x}; the low half
 * {@code l} is rejected while {@code l < 2^32 mod s}, which makes {@code m >> 32} exactly uniform on
 * {@code [0, s)}.
 */
public final class PhiloxShuffle {

    private final long seed;
    private final long stream;
    private final int[] block = new int[4];
    private long next;

    /** A draw sequence starting at word 0 of {@code (seed, stream)}. */
    public PhiloxShuffle(long seed, long stream) {
        this.seed = seed;
        this.stream = stream;
    }

    /** Number of 32-bit words drawn so far. */
    public long wordsDrawn() {
        return next;
    }

    /** The next 32-bit word: {@code Philox.word(seed, stream, wordsDrawn())}. */
    public int nextWord() {
        long i = next++;
        int lane = (int) (i & 3);
        if (lane == 0) { // draws are sequential from word 0, so a block is entered at its lane 0
            Philox.block(seed, stream, i >>> 2, block, 0);
        }
        return block[lane];
    }

    /**
     * A uniform integer in {@code [0, bound)}.
     *
     * @throws IllegalArgumentException when {@code bound <= 0}
     */
    public int nextInt(int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("bound must be positive, got " + bound);
        }
        long s = bound;
        long m = (nextWord() & 0xFFFF_FFFFL) * s;
        long low = m & 0xFFFF_FFFFL;
        if (low < s) {
            long threshold = (0x1_0000_0000L - s) % s; // 2^32 mod s
            while (low < threshold) {
                m = (nextWord() & 0xFFFF_FFFFL) * s;
                low = m & 0xFFFF_FFFFL;
            }
        }
        return (int) (m >>> 32);
    }

    /**
     * A uniformly random permutation of {@code 0 … n−1} from stream {@code (seed, stream)}.
     *
     * @throws IllegalArgumentException when {@code n < 0}
     */
    public static int[] permutation(int n, long seed, long stream) {
        if (n < 0) {
            throw new IllegalArgumentException("permutation size must be >= 0, got " + n);
        }
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        PhiloxShuffle r = new PhiloxShuffle(seed, stream);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
