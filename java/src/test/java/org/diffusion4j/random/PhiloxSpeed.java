package org.diffusion4j.random;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Locale;

/**
 * A quick single-thread harness (not a test, not a JMH benchmark): ns per element of {@link Philox#fillNormal}
 * and {@link Philox#fillUniform} into a 16 MiB native segment, beside the memory-copy time of the same bytes,
 * median of repeated runs after 3 s of warm-up. Run from the repository root after {@code mvn test-compile}:
 * {@code java -cp java/target/test-classes:java/target/classes org.diffusion4j.random.PhiloxSpeed}.
 */
public final class PhiloxSpeed {

    private PhiloxSpeed() {
    }

    public static void main(String[] args) {
        long n = args.length > 0 ? Long.parseLong(args[0]) : 1L << 22;
        int reps = 25;
        double[] normal = new double[reps];
        double[] uniform = new double[reps];
        double[] copy = new double[reps];
        double[] single = new double[reps];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(4 * n, 64);
            MemorySegment src = arena.allocate(4 * n, 64);
            src.fill((byte) 1);
            float sink = 0;
            long warmUntil = System.nanoTime() + 3_000_000_000L;   // by time: C2 must finish compiling
            for (int warm = 0; System.nanoTime() < warmUntil; warm++) {
                Philox.fillNormal(out, n, warm, 1, warm & 7);       // aligned and unaligned starts
                Philox.fillUniform(out, n, warm, 1, warm & 7);
                sink += Philox.normal(warm, 1, warm);
            }
            for (int r = 0; r < reps; r++) {
                long t0 = System.nanoTime();
                Philox.fillNormal(out, n, r, 1, 3);
                long t1 = System.nanoTime();
                Philox.fillUniform(out, n, r, 1, 3);
                long t2 = System.nanoTime();
                MemorySegment.copy(src, 0, out, 0, 4 * n);
                long t3 = System.nanoTime();
                long m = n / 64;
                for (long i = 0; i < m; i++) {
                    sink += Philox.normal(r, 1, i);
                }
                long t4 = System.nanoTime();
                normal[r] = (t1 - t0) / (double) n;
                uniform[r] = (t2 - t1) / (double) n;
                copy[r] = (t3 - t2) / (double) n;
                single[r] = (t4 - t3) / (double) m;
            }
            System.out.printf(Locale.ROOT, "%d floats (%d MiB), median of %d, one thread:%n", n, 4 * n >> 20, reps);
            System.out.printf(Locale.ROOT, "  fillNormal   %6.2f ns/element  (%5.2f GB/s written)%n", median(normal),
                    4 / median(normal));
            System.out.printf(Locale.ROOT, "  fillUniform  %6.2f ns/element  (%5.2f GB/s written)%n", median(uniform),
                    4 / median(uniform));
            System.out.printf(Locale.ROOT, "  normal(i)    %6.2f ns/element  (one at a time)%n", median(single));
            System.out.printf(Locale.ROOT, "  memory copy  %6.2f ns/element  (%5.2f GB/s read + written)%n",
                    median(copy), 8 / median(copy));
            if (sink == 42) {
                System.out.println();
            }
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
