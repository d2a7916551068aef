package org.diffusion4j.random;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The golden table {@code native/tests/philox_golden.inc}: {@code (kind, seed, stream, index) -> 32 bits},
 * written once from this class ({@link #main}) and asserted by both {@code PhiloxGoldenTest} (Java) and
 * {@code native/tests/test_philox.cpp} (the CUDA header compiled for the host). Equal bits on both sides are
 * what proves that the CPU and GPU generators agree.
 *
 * <p>Kinds: {@code W} raw word of element {@code index}, {@code U} uniform, {@code N} normal (seed, stream,
 * index); {@code R} Box–Muller radius, {@code C} cos, {@code S} sin of the word {@code index}; {@code L}
 * {@link Philox#log} of the float whose bits are {@code index} (seed and stream 0 for these).
 *
 * <p>Regenerate (only when the contract deliberately changes) from the repository root with
 * {@code java -cp java/target/test-classes:java/target/classes org.diffusion4j.random.PhiloxGolden}.
 */
final class PhiloxGolden {

    /** One row of the table. */
    record Row(char kind, long seed, long stream, long index, int bits) {

        /** The bits this row's computation gives now. */
        int compute() {
            return switch (kind) {
                case 'W' -> Philox.word(seed, stream, index);
                case 'U' -> Float.floatToRawIntBits(Philox.uniform(seed, stream, index));
                case 'N' -> Float.floatToRawIntBits(Philox.normal(seed, stream, index));
                case 'R' -> Float.floatToRawIntBits(Philox.radius((int) index));
                case 'C' -> Float.floatToRawIntBits(Philox.cosTurns((int) index));
                case 'S' -> Float.floatToRawIntBits(Philox.sinTurns((int) index));
                case 'L' -> Float.floatToRawIntBits(Philox.log(Float.intBitsToFloat((int) index)));
                default -> throw new IllegalArgumentException("unknown kind " + kind);
            };
        }

        String line() {
            return String.format(Locale.ROOT, "D4J_GOLDEN('%c', 0x%016xull, 0x%016xull, 0x%016xull, 0x%08xu)",
                    kind, seed, stream, index, bits);
        }
    }

    static final String RELATIVE_PATH = "native/tests/philox_golden.inc";
    private static final Pattern LINE = Pattern.compile(
            "D4J_GOLDEN\\('(\\w)', 0x(\\p{XDigit}{16})ull, 0x(\\p{XDigit}{16})ull, 0x(\\p{XDigit}{16})ull, "
                    + "0x(\\p{XDigit}{8})u\\)");

    private PhiloxGolden() {
    }

    /** The inputs of the table (bits filled in from the current implementation). */
    static List<Row> compute() {
        List<Row> rows = new ArrayList<>();
        long[][] streams = {
            {0L, 0L}, {1L, 0L}, {42L, 7L}, {0xDEAD_BEEF_CAFE_F00DL, 0x0123_4567_89AB_CDEFL},
            {-1L, -1L}, {1L << 32, 0xFFFF_FFFFL}, {0x9E37_79B9_7F4A_7C15L, 1L << 32}, {12345L, 3L},
        };
        long[] indices = {
            0, 1, 2, 3, 4, 5, 6, 7, 1021, 1022, 1023, 1024, 1025,
            (1L << 34) - 2, (1L << 34) - 1, 1L << 34, (1L << 34) + 1,   // block 2^32 - 1 -> 2^32 (high counter word)
            0x7FFF_FFFF_FFFF_FFFFL, Long.MIN_VALUE, -2L, -1L,           // the top of the unsigned index range
        };
        for (long[] ss : streams) {
            for (long i : indices) {
                rows.add(new Row('W', ss[0], ss[1], i, 0));
                rows.add(new Row('U', ss[0], ss[1], i, 0));
                rows.add(new Row('N', ss[0], ss[1], i, 0));
            }
        }
        SplittableRandom rnd = new SplittableRandom(20261101L);
        for (int n = 0; n < 64; n++) {
            long seed = rnd.nextLong();
            long stream = rnd.nextLong();
            long i = rnd.nextLong() >>> rnd.nextInt(64);
            rows.add(new Row('U', seed, stream, i, 0));
            rows.add(new Row('N', seed, stream, i, 0));
        }
        // transforms of extreme and boundary words
        List<Integer> words = new ArrayList<>(List.of(0, 1, 2, 3, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF,
                0x00FF_FFFF, 0x0100_0000, 0x0000_01FF, 0x0000_0200, 0xB504_F300, 0xB504_F3FF, 0xB504_F400,
                0x5A82_7980, 0x5A82_79FF, 0x5A82_7A00));
        for (int k : new int[] {0, 1, (1 << 21) - 1, 1 << 21, (1 << 21) + 1, (1 << 22) - 1, 1 << 22, 3 << 21,
                1 << 23, 5 << 21, 3 << 22, 7 << 21, (1 << 24) - (1 << 21) - 1, (1 << 24) - 1}) {
            words.add(k << 8);
            words.add((k << 8) | 0xFF);
        }
        for (int n = 0; n < 32; n++) {
            words.add(rnd.nextInt());
        }
        for (int w : words) {
            rows.add(new Row('R', 0, 0, w & 0xFFFF_FFFFL, 0));
            rows.add(new Row('C', 0, 0, w & 0xFFFF_FFFFL, 0));
            rows.add(new Row('S', 0, 0, w & 0xFFFF_FFFFL, 0));
        }
        float[] logArgs = {0x1p-32f, 0x1.000002p-32f, 0x1p-24f, 0.5f, 0.70710677f, 0.7071068f, 0.99999994f, 1f,
                0.64189273f, 0.1f, 0.3f, 0x1.fffffep-2f};
        for (float u : logArgs) {
            rows.add(new Row('L', 0, 0, Float.floatToRawIntBits(u) & 0xFFFF_FFFFL, 0));
        }
        List<Row> out = new ArrayList<>(rows.size());
        for (Row r : rows) {
            out.add(new Row(r.kind(), r.seed(), r.stream(), r.index(), r.compute()));
        }
        return out;
    }

    /** Finds {@code native/tests/philox_golden.inc} from the working directory (module or repository root). */
    static Path locate() {
        Path dir = Path.of("").toAbsolutePath();
        for (Path d = dir; d != null; d = d.getParent()) {
            Path p = d.resolve(RELATIVE_PATH);
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        throw new IllegalStateException("cannot find " + RELATIVE_PATH + " above " + dir);
    }

    /** Parses the committed table. */
    static List<Row> load() throws IOException {
        List<Row> rows = new ArrayList<>();
        for (String line : Files.readAllLines(locate(), StandardCharsets.UTF_8)) {
            Matcher m = LINE.matcher(line);
            if (m.find()) {
                rows.add(new Row(m.group(1).charAt(0), Long.parseUnsignedLong(m.group(2), 16),
                        Long.parseUnsignedLong(m.group(3), 16), Long.parseUnsignedLong(m.group(4), 16),
                        Integer.parseUnsignedInt(m.group(5), 16)));
            }
        }
        return rows;
    }

    /** Writes the table to {@code args[0]} (default: {@code native/tests/philox_golden.inc} found from here). */
    public static void main(String[] args) throws IOException {
        Path target = args.length > 0 ? Path.of(args[0]) : locate();
        List<Row> rows = compute();
        StringBuilder sb = new StringBuilder();
        sb.append("/* Philox4x32-10 golden values: D4J_GOLDEN(kind, seed, stream, index, bits).\n")
          .append(" * Generated by org.diffusion4j.random.PhiloxGolden (java/src/test); do not edit by hand.\n")
          .append(" * Asserted by PhiloxGoldenTest (Java) and native/tests/test_philox.cpp (philox.cuh on the host):\n")
          .append(" * equal bits on both sides prove that the CPU and GPU generators agree.\n")
          .append(" * Kinds: W raw word, U uniform, N normal of (seed, stream, index); R radius, C cos, S sin of the\n")
          .append(" * word `index`; L log of the float with bits `index`. Float results are given as their bits. */\n");
        for (Row r : rows) {
            sb.append(r.line()).append('\n');
        }
        Files.writeString(target, sb.toString(), StandardCharsets.UTF_8);
        System.out.println("wrote " + rows.size() + " rows to " + target);
    }
}
