package org.diffusion4j.cuda;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Shared by the CUDA tests: the device gate, random inputs, the relative-error comparison and the
 * per-op error report that {@code benchmarks/gpu/check.sh} prints as its closing table.
 *
 * <p>System properties: {@code -Dd4j.cuda.required=true} turns "no device" into a failure (check.sh sets
 * it: on the GPU machine a skip would hide a broken setup); {@code -Dd4j.cuda.report=FILE} appends one
 * TSV line per comparison; the random inputs come from {@link org.diffusion4j.TestSeed} (fixed
 * unless {@code -Dd4j.test.seed=N|random} says otherwise; every failure message names its seed).
 */
final class CudaTestSupport {

    private CudaTestSupport() {
    }

    static final boolean REQUIRED = Boolean.getBoolean("d4j.cuda.required");
    static final long BASE_SEED = org.diffusion4j.TestSeed.BASE;

    private static volatile boolean skipPrinted;

    /** Closes each non-null resource in the given order (a test class's {@code @AfterAll}: ops before backends). */
    static void closeAll(AutoCloseable... resources) throws Exception {
        for (AutoCloseable r : resources) {
            if (r != null) {
                r.close();
            }
        }
    }

    /**
     * Gate for every CUDA test class ({@code @BeforeAll}): returns when device 0 is usable; skips, printing
     * the reason once, when there is simply no CUDA here (no native library in this build, no driver, no
     * device, or -Dd4j.cuda=off); fails when a device is present but unusable (library does not load,
     * compute capability too old, self-test fails) or when CUDA is required.
     */
    static void assumeDevice() {
        CudaRuntime.Probe p = CudaRuntime.probeDetailed(0);
        if (p.kind() == CudaRuntime.Availability.USABLE) {
            return;
        }
        String why = p.kind() + ": " + p.status().description();
        if (REQUIRED) {
            fail("CUDA is required here (-Dd4j.cuda.required=true) but device 0 is not usable: " + why);
        }
        if (!p.kind().absent()) {
            fail("a CUDA device seems present but is not usable: " + why);
        }
        if (!skipPrinted) {
            skipPrinted = true;
            System.out.println("[diffusion4j] CUDA op tests skipped: " + why);
        }
        Assumptions.abort("no CUDA device: " + why);
    }

    /** A generator for one test case; the message of a failure should include {@link #seedOf}. */
    static SplittableRandom random(String testCase) {
        return new SplittableRandom(BASE_SEED ^ testCase.hashCode() * 0x9E3779B97F4A7C15L);
    }

    static String seedOf(String testCase) {
        return "-Dd4j.test.seed=" + BASE_SEED + " (case " + testCase + ")";
    }

    /** Uniform values in [lo, hi). */
    static float[] uniform(SplittableRandom r, long n, double lo, double hi) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return a;
    }

    /** Values with |x| in [minAbs, maxAbs) and a random sign (safe divisors). */
    static float[] awayFromZero(SplittableRandom r, long n, double minAbs, double maxAbs) {
        float[] a = uniform(r, n, minAbs, maxAbs);
        for (int i = 0; i < a.length; i++) {
            if (r.nextBoolean()) {
                a[i] = -a[i];
            }
        }
        return a;
    }

    /** ‖got − ref‖₂ / ‖ref‖₂ in float64 (absolute when ‖ref‖ = 0); infinite when got has a NaN ref lacks. */
    static double relativeError(float[] got, float[] ref) {
        if (got.length != ref.length) {
            return Double.POSITIVE_INFINITY;
        }
        double num = 0;
        double den = 0;
        for (int i = 0; i < got.length; i++) {
            boolean gn = Float.isNaN(got[i]);
            boolean rn = Float.isNaN(ref[i]);
            if (gn != rn) {
                return Double.POSITIVE_INFINITY;
            }
            if (gn) {
                continue;
            }
            if (Float.isInfinite(got[i]) || Float.isInfinite(ref[i])) {
                if (got[i] != ref[i]) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            double d = (double) got[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    /**
     * Asserts {@code relativeError(got, ref) <= tol}, records the comparison for the report, and names the
     * first element that differs most on failure.
     */
    static void assertClose(String op, String shape, float[] got, float[] ref, double tol, String seed) {
        double err = relativeError(got, ref);
        boolean ok = err <= tol;
        record(op, shape, err, tol, ok);
        if (!ok) {
            int worst = -1;
            double worstDiff = -1;
            for (int i = 0; i < Math.min(got.length, ref.length); i++) {
                double d = Float.isNaN(got[i]) != Float.isNaN(ref[i]) ? Double.POSITIVE_INFINITY
                        : Math.abs((double) got[i] - ref[i]);
                if (d > worstDiff || worst < 0) {
                    worst = i;
                    worstDiff = d;
                }
            }
            fail(String.format(Locale.ROOT, "%s %s: relative error %.3e > %.1e; worst element %d: cuda %s, cpu %s; %s",
                    op, shape, err, tol, worst, worst < got.length ? got[worst] : "-",
                    worst < ref.length ? ref[worst] : "-", seed));
        }
    }

    /** Bit-exact comparison, recorded like {@link #assertClose} with tolerance 0. */
    static void assertBitwise(String op, String shape, float[] got, float[] ref, String seed) {
        int bad = -1;
        for (int i = 0; i < Math.min(got.length, ref.length) && bad < 0; i++) {
            if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(ref[i])) {
                bad = i;
            }
        }
        boolean ok = bad < 0 && got.length == ref.length;
        record(op, shape, ok ? 0 : relativeError(got, ref), 0, ok);
        if (!ok) {
            fail(op + " " + shape + ": not bit-identical to the CPU"
                    + (bad >= 0 ? " at element " + bad + ": cuda " + got[bad] + ", cpu " + ref[bad]
                    : "; lengths " + got.length + " vs " + ref.length) + "; " + seed);
        }
    }

    /** Appends {@code op, shape, error, tolerance, ok} to the -Dd4j.cuda.report file, if set. */
    static synchronized void record(String op, String shape, double err, double tol, boolean ok) {
        String file = System.getProperty("d4j.cuda.report");
        if (file == null || file.isEmpty()) {
            return;
        }
        String line = String.format(Locale.ROOT, "%s\t%s\t%.3e\t%.1e\t%s%n", op, shape, err, tol, ok ? "ok" : "FAIL");
        try {
            Files.writeString(Path.of(file), line, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            System.err.println("cannot append to " + file + ": " + e);
        }
    }
}
