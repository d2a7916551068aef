package org.diffusion4j.cuda;

import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The closing table of {@code benchmarks/gpu/check.sh}: the device, the JUnit totals (from the console
 * launcher's XML reports), one line per op with its worst relative error against the CPU (from the
 * {@code -Dd4j.cuda.report} file the CUDA tests append to), and the failed tests.
 *
 * <pre>java -cp ... org.diffusion4j.cuda.GpuCheckReport &lt;junit reports dir&gt; &lt;report.tsv&gt;</pre>
 */
public final class GpuCheckReport {

    private GpuCheckReport() {
    }

    record OpLine(String op, int cases, String worstShape, double worstErr, double tol, boolean ok) {
    }

    public static void main(String[] args) throws Exception {
        Path reports = Path.of(args.length > 0 ? args[0] : "junit");
        Path tsv = Path.of(args.length > 1 ? args[1] : "cuda-report.tsv");
        StringBuilder out = new StringBuilder();
        out.append("\n==================== diffusion4j CUDA check ====================\n");
        CudaRuntime.Status st = CudaRuntime.probe(0);
        out.append(String.format(Locale.ROOT, "device   %s%n", (st.usable() ? "" : "NOT USABLE: ") + st.description()));
        if (st.usable()) {
            String blas;
            try (CudaBackend be = CudaRuntime.createBackend(0, CudaBackend.GemmMath.FP32)) {
                blas = be.gemmLibrary();
            } catch (RuntimeException e) {
                blas = "NOT USABLE: " + firstLine(e.getMessage());
            }
            out.append(String.format(Locale.ROOT, "gemm     %s%n", blas));
        }

        int tests = 0;
        int failed = 0;
        int skipped = 0;
        List<String[]> failures = new ArrayList<>();
        List<String> skippedNames = new ArrayList<>();
        if (Files.isDirectory(reports)) {
            try (Stream<Path> files = Files.list(reports)) {
                for (Path f : files.filter(p -> p.getFileName().toString().matches("TEST-.*\\.xml")).toList()) {
                    Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(f.toFile());
                    NodeList cases = doc.getElementsByTagName("testcase");
                    for (int i = 0; i < cases.getLength(); i++) {
                        Element c = (Element) cases.item(i);
                        tests++;
                        String name = shortClass(c.getAttribute("classname")) + "." + c.getAttribute("name");
                        if (c.getElementsByTagName("skipped").getLength() > 0) {
                            skipped++;
                            skippedNames.add(name);
                        } else if (c.getElementsByTagName("failure").getLength() > 0
                                || c.getElementsByTagName("error").getLength() > 0) {
                            failed++;
                            Element e = (Element) (c.getElementsByTagName("failure").getLength() > 0
                                    ? c.getElementsByTagName("failure").item(0) : c.getElementsByTagName("error").item(0));
                            failures.add(new String[] {name, firstLine(e.getAttribute("message"))});
                        }
                    }
                }
            }
        }
        out.append(String.format(Locale.ROOT, "tests    %d run: %d passed, %d failed, %d skipped%n", tests,
                tests - failed - skipped, failed, skipped));

        Map<String, OpLine> ops = readOps(tsv);
        if (!ops.isEmpty()) {
            out.append(String.format(Locale.ROOT, "%-34s %6s %12s %10s  %-6s %s%n", "op (vs CPU)", "cases", "max rel err",
                    "tolerance", "result", "worst case"));
            for (OpLine l : ops.values()) {
                out.append(String.format(Locale.ROOT, "%-34s %6d %12.3e %10.1e  %-6s %s%n", l.op(), l.cases(), l.worstErr(),
                        l.tol(), l.ok() ? "ok" : "FAIL", l.worstShape()));
            }
        } else {
            out.append("no op comparisons were recorded (" + tsv + " is missing or empty)\n");
        }
        // Failures sharing one message (e.g. every test of a class when no device is usable) print once.
        Map<String, List<String>> byMessage = new LinkedHashMap<>();
        for (String[] f : failures) {
            byMessage.computeIfAbsent(f[1], k -> new ArrayList<>()).add(f[0]);
        }
        for (Map.Entry<String, List<String>> e : byMessage.entrySet()) {
            List<String> names = e.getValue();
            String who = names.size() == 1 ? names.get(0) : names.size() + " tests (" + names.get(0) + ", ...)";
            out.append("FAILED   ").append(who).append(": ").append(e.getKey()).append('\n');
        }
        for (String sk : skippedNames) {
            out.append("skipped  ").append(sk).append('\n');
        }
        out.append(failed == 0 && tests > skipped ? "RESULT   passed: " + (tests - skipped) + " CUDA tests, 0 failed"
                + (skipped > 0 ? " (" + skipped + " skipped: they apply only to machines without a device)" : "") + "\n"
                : "RESULT   FAILED: " + failed + " failed, " + skipped + " skipped of " + tests + "\n");
        System.out.print(out);
    }

    /** Groups the TSV lines by op family, keeping the case with the largest error relative to its tolerance. */
    static Map<String, OpLine> readOps(Path tsv) throws IOException {
        Map<String, OpLine> ops = new LinkedHashMap<>();
        if (!Files.isRegularFile(tsv)) {
            return ops;
        }
        for (String line : Files.readAllLines(tsv)) {
            String[] f = line.split("\t");
            if (f.length < 5) {
                continue;
            }
            String op = family(f[0]);
            String where = f[0].equals(op) ? f[1] : f[0] + " " + f[1];
            double err = Double.parseDouble(f[2]);
            double tol = Double.parseDouble(f[3]);
            boolean ok = f[4].equals("ok");
            OpLine prev = ops.get(op);
            if (prev == null) {
                ops.put(op, new OpLine(op, 1, where, err, tol, ok));
            } else {
                boolean worse = score(err, tol, ok) > score(prev.worstErr(), prev.tol(), prev.ok());
                ops.put(op, new OpLine(op, prev.cases() + 1, worse ? where : prev.worstShape(),
                        worse ? err : prev.worstErr(), worse ? tol : prev.tol(), prev.ok() && ok));
            }
        }
        return ops;
    }

    /**
     * The table row of a recorded op label: its first word ("binary MUL ROW" -> "binary"), except that GEMM
     * keeps its math mode ("gemm tf32"), whose tolerance differs.
     */
    static String family(String label) {
        String[] w = label.split(" ");
        return w[0].equals("gemm") && w.length > 1 ? w[0] + " " + w[1] : w[0];
    }

    private static double score(double err, double tol, boolean ok) {
        return (ok ? 0 : 1e300) + (tol > 0 ? err / tol : err);
    }

    private static String shortClass(String fqcn) {
        int dot = fqcn.lastIndexOf('.');
        return dot < 0 ? fqcn : fqcn.substring(dot + 1);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        String l = nl < 0 ? s : s.substring(0, nl);
        return l.length() > 300 ? l.substring(0, 300) + "..." : l;
    }
}
