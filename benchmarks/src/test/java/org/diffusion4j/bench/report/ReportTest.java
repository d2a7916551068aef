package org.diffusion4j.bench.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The report pipeline on synthetic JMH JSON (the format of JMH 1.37's {@code -rf json}): values and fractions land
 * in the generated section, the hand-written parts of RESULTS.md stay, rerunning is idempotent, and charts are PNGs.
 */
class ReportTest {

    /** One JMH JSON result with a {@code bytes} secondary metric; raw iterations per fork. */
    private static String result(String method, String numel, double[][] bytesRaw) {
        StringBuilder raw = new StringBuilder("[");
        double sum = 0;
        int n = 0;
        for (int f = 0; f < bytesRaw.length; f++) {
            raw.append(f == 0 ? "" : ",").append('[');
            for (int i = 0; i < bytesRaw[f].length; i++) {
                raw.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT, "%.1f", bytesRaw[f][i]));
                sum += bytesRaw[f][i];
                n++;
            }
            raw.append(']');
        }
        raw.append(']');
        double mean = sum / n;
        return """
                {"jmhVersion":"1.37","benchmark":"org.diffusion4j.bench.DiffusionOpsBench.%s","mode":"thrpt",
                 "threads":1,"forks":%d,"jdkVersion":"25.0.3","params":{"numel":"%s"},
                 "primaryMetric":{"score":1.0,"scoreError":"NaN","scoreUnit":"ops/s","rawData":[[1.0]]},
                 "secondaryMetrics":{"bytes":{"score":%s,"scoreError":"NaN","scoreUnit":"#/s","rawData":%s}}}
                """.formatted(method, bytesRaw.length, numel, String.format(Locale.ROOT, "%.1f", mean), raw);
    }

    @Test
    void generatedSectionHasRatesFractionsAndSpreadAndKeepsHandWrittenText(@TempDir Path dir) throws IOException {
        Path results = Files.createDirectories(dir.resolve("out"));
        // numel 1024: copy 10 GB/s and 8 GB/s (best 10), fused noising 5 GB/s (0.50 of copy), composed 2 GB/s.
        String json = "[" + String.join(",",
                result("segmentCopy", "1024", new double[][]{{9e9, 11e9}, {10e9, 10e9}}),
                result("backendCopy", "1024", new double[][]{{8e9, 8e9}}),
                result("fusedForwardNoise", "1024", new double[][]{{4e9, 6e9}}),
                result("composedForwardNoise", "1024", new double[][]{{2e9, 2e9}})) + "]";
        Files.writeString(results.resolve("memory.json"), json);
        Files.writeString(results.resolve("compare.json"), """
                {"setup": "synthetic", "rows": [{"case": "forward noising", "peer": "torch-eager", "ours": "1.0",
                 "theirs": "7.0", "speedup": 7.0, "spread": "6–8", "target": ">= 5", "target_ratio": 5.0}]}
                """);
        Path md = dir.resolve("RESULTS.md");
        String head = "# results\n\nhand-written intro\n\n";
        String tail = "\n## Earlier runs\n\nhand-written table\n";
        Files.writeString(md, head + Report.BEGIN + "\nold generated text\n" + Report.END + "\n" + tail);
        Path charts = dir.resolve("charts");

        Report.main(new String[]{results.toString(), md.toString(), charts.toString(), "test run"});
        String out = Files.readString(md);

        assertTrue(out.startsWith(head), "hand-written head kept");
        assertTrue(out.endsWith(tail), "hand-written tail kept");
        assertFalse(out.contains("old generated text"), "old generated section replaced");
        // fused: mean 5.00 GB/s, min–max 4.00–6.00; fraction of the better copy (segmentCopy, 10 GB/s) 0.50;
        // fusion gain 5/2 = 2.50.
        assertTrue(out.contains("| 5.00 (4.00–6.00) | 0.50 | 2.00 (2.00–2.00) | 0.20 | 2.50× |"), out);
        // the copy row shows the fork-mean range of the two-fork case: forks 10.0–10.0
        assertTrue(out.contains("10.0 (9.0–11.0) forks 10.0–10.0"), out);
        assertTrue(out.contains("| CPU: fused forward noising ≥ 0.5 × in-run copy (largest size, 1,024 floats per "
                + "operand) | 0.50 × | met |"), out);
        assertTrue(out.contains("| CPU: forward noising vs PyTorch torch-eager ≥ 5.0 × | 7.00 × | met |"), out);

        byte[] png = Files.readAllBytes(charts.resolve("compare.png"));
        assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G'}, java.util.Arrays.copyOf(png, 4));

        Report.main(new String[]{results.toString(), md.toString(), charts.toString(), "test run"});
        assertEquals(out, Files.readString(md), "a second run with the same JSON gives the same file");
    }

    @Test
    void spliceAppendsTheSectionWhenThereAreNoMarkers() {
        String s = Report.splice("# results\n", Report.BEGIN + "\nx\n" + Report.END + "\n");
        assertEquals("# results\n\n" + Report.BEGIN + "\nx\n" + Report.END + "\n", s);
    }
}
