package org.diffusion4j.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.diffusion4j.bench.Workloads;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.Styler;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Turns the JMH JSON files of {@code benchmarks/run.sh} (and the {@code compare.json} of
 * {@code benchmarks/compare/run.sh}, when present) into the generated section of {@code benchmarks/RESULTS.md}
 * (between {@value #BEGIN} and {@value #END}; the rest of the file is kept) and PNG charts (XChart) under
 * {@code benchmarks/charts/}.
 *
 * <p>Every case is given in its field's unit and as a fraction of its floor (DESIGN.md §6): memory-bound ops in GB/s
 * over the better of the two in-run copies of the same size ({@code DiffusionOpsBench.segmentCopy} and
 * {@code backendCopy}); products, attention and training steps in GFLOP/s over the in-run GEMM ceiling (the best
 * {@code GemmBench.tensorGemm} rate). Spread: JMH's 99.9% error where it has one, and the min–max over every
 * measured iteration of every fork; with several forks also the range of the fork means.
 *
 * <p>Usage: {@code Report <results-dir> <RESULTS.md> <charts-dir> [run description]}.
 */
public final class Report {

    /** Start marker of the generated section. */
    public static final String BEGIN = "<!-- BEGIN GENERATED: benchmarks/report.sh -->";
    /** End marker of the generated section. */
    public static final String END = "<!-- END GENERATED: benchmarks/report.sh -->";

    /** One metric of one case: score, JMH error, per-fork raw iteration values. */
    record Stat(double score, double error, String unit, double[][] raw) {

        double min() {
            return Arrays.stream(raw).flatMapToDouble(Arrays::stream).min().orElse(Double.NaN);
        }

        double max() {
            return Arrays.stream(raw).flatMapToDouble(Arrays::stream).max().orElse(Double.NaN);
        }

        double[] forkMeans() {
            return Arrays.stream(raw).mapToDouble(r -> Arrays.stream(r).average().orElse(Double.NaN)).toArray();
        }

        Stat scaled(double f) {
            double[][] r = new double[raw.length][];
            for (int i = 0; i < raw.length; i++) {
                r[i] = Arrays.stream(raw[i]).map(v -> v * f).toArray();
            }
            return new Stat(score * f, error * f, unit, r);
        }

        /** {@code 12.3 ± 0.4 (11.9–12.8)}, with the fork-mean range when there are several forks. */
        String show(int digits) {
            String f = "%." + digits + "f";
            StringBuilder s = new StringBuilder(String.format(Locale.ROOT, f, score));
            if (Double.isFinite(error) && error > 0) {
                s.append(String.format(Locale.ROOT, " ± " + f, error));
            }
            s.append(String.format(Locale.ROOT, " (" + f + "–" + f + ")", min(), max()));
            double[] fm = forkMeans();
            if (fm.length > 1) {
                double lo = Arrays.stream(fm).min().orElse(Double.NaN);
                double hi = Arrays.stream(fm).max().orElse(Double.NaN);
                s.append(String.format(Locale.ROOT, " forks " + f + "–" + f, lo, hi));
            }
            return s.toString();
        }
    }

    /** One JMH result: class simple name, method, parameters, primary and secondary metrics. */
    record Case(String bench, String method, Map<String, String> params, Stat primary, Map<String, Stat> secondary,
                String jdk, int threads, int forks) {

        boolean matches(String b, String m, String... kv) {
            if (!bench.equals(b) || !method.equals(m)) {
                return false;
            }
            for (int i = 0; i + 1 < kv.length; i += 2) {
                if (!kv[i + 1].equals(params.get(kv[i]))) {
                    return false;
                }
            }
            return true;
        }
    }

    private final List<Case> cases = new ArrayList<>();
    private final JsonNode compare;
    private final long l2Bytes;
    private final long llcBytes;
    private final List<String> targets = new ArrayList<>();

    Report(Path results) throws IOException {
        ObjectMapper om = new ObjectMapper();
        JsonNode cmp = null;
        try (Stream<Path> files = Files.list(results)) {
            for (Path p : files.sorted().toList()) {
                String name = p.getFileName().toString();
                if (!name.endsWith(".json")) {
                    continue;
                }
                JsonNode root = om.readTree(p.toFile());
                if (name.equals("compare.json")) {
                    cmp = root;
                } else if (root.isArray()) {
                    for (JsonNode n : root) {
                        cases.add(parse(n));
                    }
                }
            }
        }
        compare = cmp;
        l2Bytes = cacheBytes(2, 1L << 20);
        llcBytes = cacheBytes(3, 32L << 20);
    }

    private static Case parse(JsonNode n) {
        String full = n.get("benchmark").asText();
        int dot = full.lastIndexOf('.');
        String method = full.substring(dot + 1);
        String cls = full.substring(0, dot);
        cls = cls.substring(cls.lastIndexOf('.') + 1);
        Map<String, String> params = new LinkedHashMap<>();
        JsonNode p = n.get("params");
        if (p != null) {
            p.properties().forEach(e -> params.put(e.getKey(), e.getValue().asText()));
        }
        Map<String, Stat> sec = new LinkedHashMap<>();
        JsonNode s = n.get("secondaryMetrics");
        if (s != null) {
            s.properties().forEach(e -> sec.put(e.getKey(), stat(e.getValue())));
        }
        return new Case(cls, method, params, stat(n.get("primaryMetric")), sec, n.path("jdkVersion").asText(""),
                n.path("threads").asInt(1), n.path("forks").asInt(1));
    }

    private static Stat stat(JsonNode m) {
        JsonNode raw = m.get("rawData");
        double[][] r = new double[raw == null ? 0 : raw.size()][];
        for (int i = 0; i < r.length; i++) {
            JsonNode fork = raw.get(i);
            r[i] = new double[fork.size()];
            for (int j = 0; j < fork.size(); j++) {
                r[i][j] = fork.get(j).asDouble();
            }
        }
        double err = m.path("scoreError").asDouble(Double.NaN);
        return new Stat(m.get("score").asDouble(), err, m.path("scoreUnit").asText(""), r);
    }

    private static long cacheBytes(int level, long fallback) {
        Path dir = Path.of("/sys/devices/system/cpu/cpu0/cache");
        try (Stream<Path> idx = Files.list(dir)) {
            for (Path p : idx.toList()) {
                Path lv = p.resolve("level");
                if (Files.isReadable(lv) && Files.readString(lv).trim().equals(String.valueOf(level))) {
                    String s = Files.readString(p.resolve("size")).trim();
                    long mult = s.endsWith("K") ? 1024 : s.endsWith("M") ? 1 << 20 : 1;
                    return Long.parseLong(s.replaceAll("[^0-9]", "")) * mult;
                }
            }
        } catch (IOException | RuntimeException e) {
            return fallback;
        }
        return fallback;
    }

    Case find(String bench, String method, String... kv) {
        for (Case c : cases) {
            if (c.matches(bench, method, kv)) {
                return c;
            }
        }
        return null;
    }

    /** The secondary metric {@code key} scaled by {@code f}, or null when the case did not run. */
    Stat sec(String bench, String method, String key, double f, String... kv) {
        Case c = find(bench, method, kv);
        if (c == null || !c.secondary.containsKey(key)) {
            return null;
        }
        return c.secondary.get(key).scaled(f);
    }

    TreeSet<Long> paramValues(String bench, String param) {
        TreeSet<Long> s = new TreeSet<>();
        for (Case c : cases) {
            if (c.bench.equals(bench) && c.params.containsKey(param)) {
                s.add(Long.parseLong(c.params.get(param)));
            }
        }
        return s;
    }

    static String show(Stat s, int digits) {
        return s == null ? "–" : s.show(digits);
    }

    static String ratio(Stat a, Stat b) {
        return a == null || b == null || b.score == 0 ? "–" : String.format(Locale.ROOT, "%.2f", a.score / b.score);
    }

    static String bytes(long b) {
        if (b >= 1L << 20) {
            return String.format(Locale.ROOT, "%.0f MiB", b / (double) (1 << 20));
        }
        return String.format(Locale.ROOT, "%.0f KiB", b / 1024.0);
    }

    String where(long footprint) {
        if (footprint <= l2Bytes) {
            return "L2";
        }
        if (footprint <= llcBytes) {
            return "L3";
        }
        return String.format(Locale.ROOT, "%.0fx L3", footprint / (double) llcBytes);
    }

    /** The in-run GEMM ceiling in GFLOP/s (best tensorGemm), or null. */
    Stat gemmCeiling() {
        Stat best = null;
        for (Case c : cases) {
            if (c.bench.equals("GemmBench") && c.method.equals("tensorGemm") && c.secondary.containsKey("flop")) {
                Stat s = c.secondary.get("flop").scaled(1e-9);
                if (best == null || s.score > best.score) {
                    best = s;
                }
            }
        }
        return best;
    }

    // ------------------------------------------------------------------------------------------------ tables

    record MemOp(String label, String bench, String fused, String composed, int operands, String targetNote) {
    }

    static final List<MemOp> MEM_OPS = List.of(
            new MemOp("forward noising (x0 → xt, v target; Philox noise)", "DiffusionOpsBench", "fusedForwardNoise",
                    "composedForwardNoise", 3, "≥ 0.5 × copy"),
            new MemOp("DPM-Solver++(2M) step + CFG (in place)", "DiffusionOpsBench", "fusedSamplerStep",
                    "composedSamplerStep", 4, null),
            new MemOp("LayerNorm + adaLN modulate [8, T, 256]", "NnOpsBench", "fusedLayerNormModulate",
                    "composedLayerNormModulate", 2, null),
            new MemOp("AdamW step", "NnOpsBench", "fusedAdamw", "composedAdamw", 4, null));

    String memoryTable() {
        TreeSet<Long> sizes = paramValues("DiffusionOpsBench", "numel");
        sizes.addAll(paramValues("NnOpsBench", "numel"));
        if (sizes.isEmpty()) {
            return "";
        }
        StringBuilder s = new StringBuilder();
        s.append("### Memory-bound ops, fused vs composed from unfused ops (GB/s)\n\n");
        s.append("GB/s = compulsory bytes (each input read once, each output written once) per second; floor = the "
                + "better of the two in-run copies of one operand at the same size (`MemorySegment.copy`, 1 thread; "
                + "`CpuBackend.copy`, the pool). Cache level by the op's footprint (all operands) against L2 "
                + bytes(l2Bytes) + " per core and L3 " + bytes(llcBytes) + ".\n\n");
        s.append("| floats per operand | op | footprint | fused GB/s | fused / copy | composed GB/s | composed / copy "
                + "| fusion gain |\n|---:|---|---|---:|---:|---:|---:|---:|\n");
        for (long n : sizes) {
            String p = String.valueOf(n);
            Stat seg = sec("DiffusionOpsBench", "segmentCopy", "bytes", 1e-9, "numel", p);
            Stat pool = sec("DiffusionOpsBench", "backendCopy", "bytes", 1e-9, "numel", p);
            Stat copy = seg == null ? pool : pool == null ? seg : seg.score >= pool.score ? seg : pool;
            for (MemOp op : MEM_OPS) {
                Stat f = sec(op.bench, op.fused, "bytes", 1e-9, "numel", p);
                Stat c = sec(op.bench, op.composed, "bytes", 1e-9, "numel", p);
                if (f == null && c == null) {
                    continue;
                }
                long fp = 4L * n * op.operands;
                s.append(String.format(Locale.ROOT, "| %,d | %s | %s (%s) | %s | %s | %s | %s | %s× |\n", n,
                        op.label, bytes(fp), where(fp), show(f, 2), ratio(f, copy), show(c, 2), ratio(c, copy),
                        ratio(f, c)));
            }
            s.append(String.format(Locale.ROOT, "| %,d | copy: `MemorySegment.copy` / `CpuBackend.copy` | %s (%s) | "
                            + "%s / %s | 1 | | | |\n", n, bytes(8L * n), where(8L * n), show(seg, 1), show(pool, 1)));
        }
        long largest = sizes.last();
        String p = String.valueOf(largest);
        Stat seg = sec("DiffusionOpsBench", "segmentCopy", "bytes", 1e-9, "numel", p);
        Stat pool = sec("DiffusionOpsBench", "backendCopy", "bytes", 1e-9, "numel", p);
        Stat copy = seg == null ? pool : pool == null ? seg : seg.score >= pool.score ? seg : pool;
        Stat noise = sec("DiffusionOpsBench", "fusedForwardNoise", "bytes", 1e-9, "numel", p);
        if (noise != null && copy != null) {
            double r = noise.score / copy.score;
            targets.add(String.format(Locale.ROOT, "| CPU: fused forward noising ≥ 0.5 × in-run copy (largest size, "
                    + "%,d floats per operand) | %.2f × | %s |", largest, r, r >= 0.5 ? "met" : "**not met**"));
        }
        s.append('\n');
        return s.toString();
    }

    String gemmTable() {
        TreeSet<Long> ns = paramValues("GemmBench", "n");
        if (ns.isEmpty()) {
            return "";
        }
        StringBuilder s = new StringBuilder("### GEMM, F32 `C[n, n] = A[n, n]·B[n, n]` (GFLOP/s, `2 n³` FLOP)\n\n"
                + "The best `CpuBackend.gemm` rate here is the in-run GEMM ceiling that the FLOP-bound rows below are "
                + "divided by.\n\n| n | `CpuBackend.gemm` | raw `cblas_sgemm` (FFM) | tensor / raw |\n"
                + "|---:|---:|---:|---:|\n");
        for (long n : ns) {
            String p = String.valueOf(n);
            Stat t = sec("GemmBench", "tensorGemm", "flop", 1e-9, "n", p);
            Stat r = sec("GemmBench", "rawOpenBlas", "flop", 1e-9, "n", p);
            s.append(String.format(Locale.ROOT, "| %d | %s | %s | %s |\n", n, show(t, 1), show(r, 1), ratio(t, r)));
        }
        return s.append('\n').toString();
    }

    String attentionTable() {
        TreeSet<Long> ts = paramValues("AttentionBench", "seqLen");
        if (ts.isEmpty()) {
            return "";
        }
        Stat ceil = gemmCeiling();
        StringBuilder s = new StringBuilder("### Attention, fused (FlashAttention-2 tiles) vs naive matmul–softmax–"
                + "matmul (GFLOP/s)\n\n`q, k, v [B = 2, H = 4, T, Dh = 64]`; FLOPs `4·B·H·T²·Dh` forward, 3.5× that "
                + "forward + backward (FlashAttention-2's convention); fraction = of the in-run GEMM ceiling.\n\n"
                + "| T | fwd fused | fwd naive | gain | fused / GEMM | fwd+bwd fused | fwd+bwd naive | gain | "
                + "fused / GEMM |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (long t : ts) {
            String p = String.valueOf(t);
            Stat ff = sec("AttentionBench", "forward", "flop", 1e-9, "seqLen", p, "impl", "fused");
            Stat fn = sec("AttentionBench", "forward", "flop", 1e-9, "seqLen", p, "impl", "naive");
            Stat bf = sec("AttentionBench", "forwardBackward", "flop", 1e-9, "seqLen", p, "impl", "fused");
            Stat bn = sec("AttentionBench", "forwardBackward", "flop", 1e-9, "seqLen", p, "impl", "naive");
            s.append(String.format(Locale.ROOT, "| %d | %s | %s | %s× | %s | %s | %s | %s× | %s |\n", t, show(ff, 1),
                    show(fn, 1), ratio(ff, fn), ratio(ff, ceil), show(bf, 1), show(bn, 1), ratio(bf, bn),
                    ratio(bf, ceil)));
        }
        return s.append('\n').toString();
    }

    String linearTable() {
        if (find("LinearGeluBench", "forward") == null && find("LinearGeluBench", "forwardBackward") == null) {
            return "";
        }
        Stat ceil = gemmCeiling();
        StringBuilder s = new StringBuilder("### Linear + GELU(tanh), bias and activation fused vs unfused (GFLOP/s)"
                + "\n\nA: `[128·49, 128] → 512` (DiT A's MLP), B: `[128·196, 192] → 768` (DiT B's); FLOPs "
                + "`2·rows·in·out` forward, 3× that forward + backward.\n\n| shape | fwd fused | fwd unfused | gain | "
                + "fused / GEMM | fwd+bwd fused | fwd+bwd unfused | gain |\n"
                + "|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (String sh : List.of("A", "B")) {
            Stat ff = sec("LinearGeluBench", "forward", "flop", 1e-9, "shape", sh, "impl", "fused");
            Stat fu = sec("LinearGeluBench", "forward", "flop", 1e-9, "shape", sh, "impl", "unfused");
            Stat bf = sec("LinearGeluBench", "forwardBackward", "flop", 1e-9, "shape", sh, "impl", "fused");
            Stat bu = sec("LinearGeluBench", "forwardBackward", "flop", 1e-9, "shape", sh, "impl", "unfused");
            if (ff == null && bf == null) {
                continue;
            }
            s.append(String.format(Locale.ROOT, "| %s | %s | %s | %s× | %s | %s | %s | %s× |\n", sh, show(ff, 1),
                    show(fu, 1), ratio(ff, fu), ratio(ff, ceil), show(bf, 1), show(bu, 1), ratio(bf, bu)));
        }
        return s.append('\n').toString();
    }

    String endToEndTable() {
        Stat ceil = gemmCeiling();
        StringBuilder s = new StringBuilder();
        List<String> rows = new ArrayList<>();
        for (String impl : List.of("trainer", "minimal")) {
            for (String m : List.of("mlp", "ditA", "ditB")) {
                Case c = find("TrainingBench", "trainStep", "model", m, "impl", impl);
                if (c == null) {
                    continue;
                }
                Stat img = c.secondary.get("images");
                Stat fl = c.secondary.get("flop").scaled(1e-9);
                Stat msPerStep = new Stat(1000 / c.primary.score, Double.NaN, "ms", new double[][]{
                        Arrays.stream(c.primary.raw).flatMapToDouble(Arrays::stream).map(v -> 1000 / v).toArray()});
                String label = switch (m) {
                    case "mlp" -> "MLP denoiser 784 → 512 × 3 blocks";
                    case "ditA" -> "DiT A: 28×28×1, patch 4, hidden 128, depth 4, 4 heads";
                    default -> "DiT B: 28×28×1, patch 2, hidden 192, depth 6, 6 heads";
                };
                String how = impl.equals("trainer") ? "`Trainer.step()`" : "minimal step (as the PyTorch peer)";
                rows.add(String.format(Locale.ROOT, "| train step, %s, batch 128, %s | %s images/s | %s ms | %s | %s |",
                        label, how, show(img, 1), show(msPerStep, 0), show(fl, 1), ratio(fl, ceil)));
            }
        }
        Case step = find("SamplingBench", "step");
        if (step != null) {
            String m = step.params.getOrDefault("model", "ditA");
            // One guided model call of batch 2·64 per step (forward only).
            double gflop = Workloads.forwardFlopsPerSample(m) * 2 * Workloads.SAMPLE_BATCH / 1e9;
            Stat rate = new Stat(gflop / (step.primary.score / 1e3), Double.NaN, "GFLOP/s", new double[0][]);
            rows.add(String.format(Locale.ROOT, "| sampling step, DiT %s, batch 64, DPM-Solver++(2M) + CFG 4 (one "
                    + "model call of 2·64) | | %s ms | %.1f | %s |", m.replace("dit", ""), show(step.primary, 1),
                    rate.score, ratio(rate, ceil)));
        }
        Case whole = find("SamplingBench", "sample50");
        if (whole != null) {
            String m = whole.params.getOrDefault("model", "ditA");
            double gflop = 50 * Workloads.forwardFlopsPerSample(m) * 2 * Workloads.SAMPLE_BATCH / 1e9;
            Stat rate = new Stat(gflop / whole.primary.score, Double.NaN, "GFLOP/s", new double[0][]);
            rows.add(String.format(Locale.ROOT, "| whole 50-step DPM-Solver++(2M) + CFG sampling, DiT %s, 64 images "
                    + "28×28 | | %s s | %.1f | %s |", m.replace("dit", ""), show(whole.primary, 2), rate.score,
                    ratio(rate, ceil)));
        }
        if (rows.isEmpty()) {
            return "";
        }
        s.append("### Training and sampling, end to end\n\n`Trainer.step()` = the library's trainer (batch drawing, "
                + "label dropout, forward noising, loss, backward, gradient clipping, AdamW, EMA); minimal step = "
                + "fused forward noising, forward, MSE gradient, backward, AdamW, as "
                + "`benchmarks/compare/torch_peer.py` does it. GFLOP/s counts the matrix products only (3× forward "
                + "per step); fraction = of the in-run GEMM ceiling.\n\n| case | rate | time | GFLOP/s | / GEMM |\n"
                + "|---|---:|---:|---:|---:|\n");
        rows.forEach(r -> s.append(r).append('\n'));
        return s.append('\n').toString();
    }

    String compareTable() {
        if (compare == null) {
            return "";
        }
        StringBuilder s = new StringBuilder("### Against PyTorch (`benchmarks/compare/run.sh`)\n\n");
        s.append(compare.path("setup").asText("")).append("\n\n");
        s.append("speed-up = PyTorch median time / our median time (> 1: we are faster); spread = the speed-up of "
                + "each repetition (min–max).\n\n| case | ours (ms, median, min–max) | PyTorch variant | PyTorch (ms) "
                + "| speed-up | spread | target |\n|---|---:|---|---:|---:|---|---|\n");
        for (JsonNode r : compare.path("rows")) {
            double sp = r.path("speedup").asDouble();
            String target = r.path("target").asText("");
            String met = "";
            if (r.has("target_ratio")) {
                met = sp >= r.get("target_ratio").asDouble() ? " — met" : " — **not met**";
                targets.add(String.format(Locale.ROOT, "| CPU: %s vs PyTorch %s ≥ %s × | %.2f × | %s |",
                        r.path("case").asText(), r.path("peer").asText(), r.get("target_ratio").asText(), sp,
                        met.contains("not") ? "**not met**" : "met"));
            }
            s.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %.2f | %s | %s%s |\n", r.path("case").asText(),
                    r.path("ours").asText(), r.path("peer").asText(), r.path("theirs").asText(), sp,
                    r.path("spread").asText(), target, met));
        }
        return s.append('\n').toString();
    }

    String environment(String description) {
        Case any = cases.isEmpty() ? null : cases.getFirst();
        StringBuilder s = new StringBuilder();
        s.append("Generated by `benchmarks/report.sh` from `benchmarks/out/*.json`");
        if (description != null && !description.isBlank()) {
            s.append(": ").append(description.trim());
        }
        s.append(".\n");
        if (any != null) {
            s.append("JDK ").append(any.jdk).append(", JMH benchmark threads ").append(any.threads)
                    .append(", forks ").append(cases.stream().mapToInt(Case::forks).max().orElse(1)).append(".\n");
        }
        s.append("Numbers: score ± JMH 99.9% error (min–max over all measured iterations of all forks; with several "
                + "forks also the range of the fork means).\n\n");
        return s.toString();
    }

    String section(String description, Path charts, Path resultsMd) throws IOException {
        StringBuilder s = new StringBuilder();
        s.append(BEGIN).append("\n\n## Current suite (generated)\n\n");
        s.append(environment(description));
        String mem = memoryTable();
        String gemm = gemmTable();
        String att = attentionTable();
        String lin = linearTable();
        String e2e = endToEndTable();
        String cmp = compareTable();
        boolean quick = description != null && description.contains("QUICK run");
        if (!targets.isEmpty()) {
            s.append("### Issue 7 targets checked by this run\n\n");
            if (quick) {                                    // 300 ms of warm-up: C2 has not finished compiling
                s.append("**A quick run: its numbers can be half of a full run's (short warm-up), so the met / not "
                        + "met column is no verdict; `benchmarks/run.sh` without `--quick` gives one.**\n\n");
            }
            s.append("| target | measured | |\n|---|---:|---|\n");
            targets.forEach(t -> s.append(quick ? t.replace("**not met**", "not met (quick run)")
                    .replaceAll("\\| met \\|$", "| met (quick run) |") : t).append('\n'));
            s.append('\n');
        }
        if (compare == null) {
            cmp = "### Against PyTorch\n\nNot in this report: `benchmarks/out/compare.json` is missing (run "
                    + "`benchmarks/compare/run.sh --report`, which writes it and regenerates this section).\n\n";
        }
        s.append(mem).append(gemm).append(att).append(lin).append(e2e).append(cmp);
        List<String> made = charts(charts);
        if (!made.isEmpty()) {
            s.append("### Charts\n\n");
            Path base = resultsMd.toAbsolutePath().getParent();
            for (String c : made) {
                String rel = base.relativize(charts.toAbsolutePath().resolve(c)).toString();
                s.append("![").append(c).append("](").append(rel).append(")\n\n");
            }
        }
        s.append(END).append('\n');
        return s.toString();
    }

    // ------------------------------------------------------------------------------------------------ charts

    List<String> charts(Path dir) throws IOException {
        Files.createDirectories(dir);
        List<String> made = new ArrayList<>();
        TreeSet<Long> sizes = paramValues("DiffusionOpsBench", "numel");
        sizes.addAll(paramValues("NnOpsBench", "numel"));
        if (sizes.size() >= 2) {
            XYChart c = new XYChartBuilder().width(1000).height(600).title("Memory-bound ops on the CPU: fused vs "
                    + "composed, beside the in-run copy").xAxisTitle("MiB per operand").yAxisTitle("GB/s").build();
            c.getStyler().setXAxisLogarithmic(true).setYAxisLogarithmic(true)
                    .setLegendPosition(Styler.LegendPosition.OutsideE);
            addSeries(c, "copy (best of 2)", sizes, true, n -> {
                Stat a = sec("DiffusionOpsBench", "segmentCopy", "bytes", 1e-9, "numel", n);
                Stat b = sec("DiffusionOpsBench", "backendCopy", "bytes", 1e-9, "numel", n);
                return a == null ? b : b == null ? a : a.score >= b.score ? a : b;
            });
            Color[] palette = {new Color(0xD62728), new Color(0x2CA02C), new Color(0x9467BD), new Color(0xFF7F0E)};
            style(c, "copy (best of 2)", Color.BLACK, SeriesLines.SOLID);
            for (int i = 0; i < MEM_OPS.size(); i++) {
                MemOp op = MEM_OPS.get(i);
                Color col = palette[i % palette.length];
                String shortName = op.label.replaceAll(" \\(.*", "").replaceAll(" \\[.*", "");
                addSeries(c, shortName + " fused", sizes, true,
                        n -> sec(op.bench, op.fused, "bytes", 1e-9, "numel", n));
                addSeries(c, shortName + " composed", sizes, true,
                        n -> sec(op.bench, op.composed, "bytes", 1e-9, "numel", n));
                style(c, shortName + " fused", col, SeriesLines.SOLID);
                style(c, shortName + " composed", col, SeriesLines.DASH_DASH);
            }
            if (!c.getSeriesMap().isEmpty()) {
                BitmapEncoder.saveBitmap(c, dir.resolve("memory-bound.png").toString(), BitmapEncoder.BitmapFormat.PNG);
                made.add("memory-bound.png");
            }
        }
        TreeSet<Long> ts = paramValues("AttentionBench", "seqLen");
        if (!ts.isEmpty()) {
            XYChart c = new XYChartBuilder().width(1000).height(600).title("Attention on the CPU (B 2, H 4, Dh 64)")
                    .xAxisTitle("sequence length T").yAxisTitle("GFLOP/s").build();
            c.getStyler().setXAxisLogarithmic(true).setLegendPosition(Styler.LegendPosition.OutsideE);
            for (String impl : List.of("fused", "naive")) {
                for (String m : List.of("forward", "forwardBackward")) {
                    String name = impl + " " + (m.equals("forward") ? "fwd" : "fwd+bwd");
                    addSeries(c, name, ts, false,
                            t -> sec("AttentionBench", m, "flop", 1e-9, "seqLen", t, "impl", impl));
                    style(c, name, m.equals("forward") ? new Color(0x1F77B4) : new Color(0xD62728),
                            impl.equals("fused") ? SeriesLines.SOLID : SeriesLines.DASH_DASH);
                }
            }
            Stat ceil = gemmCeiling();
            if (ceil != null && ts.size() >= 2) {
                c.addSeries("GEMM ceiling", new double[]{ts.first(), ts.last()}, new double[]{ceil.score, ceil.score});
                style(c, "GEMM ceiling", Color.GRAY, SeriesLines.DOT_DOT);
            }
            BitmapEncoder.saveBitmap(c, dir.resolve("attention.png").toString(), BitmapEncoder.BitmapFormat.PNG);
            made.add("attention.png");
        }
        if (compare != null && compare.path("rows").size() > 0) {
            CategoryChart c = new CategoryChartBuilder().width(1000).height(700).title("diffusion4j vs PyTorch on "
                    + "the CPU (speed-up, > 1 = faster; the line: 1 = equal)").xAxisTitle("case / PyTorch variant")
                    .yAxisTitle("PyTorch time / our time").build();
            c.getStyler().setLegendVisible(false);
            c.getStyler().setXAxisLabelRotation(60);          // the case names overlapped unrotated
            c.getStyler().setOverlapped(true);                // the parity line drawn over the bars
            List<String> names = new ArrayList<>();
            List<Double> vals = new ArrayList<>();
            for (JsonNode r : compare.path("rows")) {
                names.add(r.path("case").asText() + " / " + r.path("peer").asText());
                vals.add(r.path("speedup").asDouble());
            }
            c.addSeries("speed-up", names, vals);
            List<Double> ones = new ArrayList<>(java.util.Collections.nCopies(names.size(), 1.0));
            var parity = c.addSeries("parity", names, ones);
            parity.setChartCategorySeriesRenderStyle(org.knowm.xchart.CategorySeries.CategorySeriesRenderStyle.Line);
            parity.setLineColor(Color.DARK_GRAY);
            parity.setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
            BitmapEncoder.saveBitmap(c, dir.resolve("compare.png").toString(), BitmapEncoder.BitmapFormat.PNG);
            made.add("compare.png");
        }
        return made;
    }

    private static void style(XYChart c, String name, Color color, BasicStroke line) {
        XYSeries s = c.getSeriesMap().get(name);
        if (s != null) {
            s.setMarkerColor(color);
            s.setLineColor(color);
            s.setLineStyle(line);
        }
    }

    /** Adds {@code f(x)} over {@code xs} with error bars to the spread; {@code mib}: x in MiB of F32 operands. */
    private static void addSeries(XYChart c, String name, TreeSet<Long> xs, boolean mib,
                                  java.util.function.Function<String, Stat> f) {
        List<Double> x = new ArrayList<>();
        List<Double> y = new ArrayList<>();
        List<Double> err = new ArrayList<>();
        for (long v : xs) {
            Stat s = f.apply(String.valueOf(v));
            if (s == null) {
                continue;
            }
            x.add(mib ? v * 4.0 / (1 << 20) : v);
            y.add(s.score);
            err.add(Math.max(s.score - s.min(), s.max() - s.score));
        }
        if (!x.isEmpty()) {
            c.addSeries(name, x, y, err);
        }
    }

    // ------------------------------------------------------------------------------------------------ main

    /** Replaces (or appends) the generated section of {@code md}. */
    static String splice(String md, String section) {
        int b = md.indexOf(BEGIN);
        int e = md.indexOf(END);
        if (b >= 0 && e > b) {
            int after = e + END.length();
            if (after < md.length() && md.charAt(after) == '\n') {
                after++;
            }
            return md.substring(0, b) + section + md.substring(after);
        }
        return md + (md.endsWith("\n") ? "\n" : "\n\n") + section;
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 3) {
            System.err.println("usage: Report <results-dir> <RESULTS.md> <charts-dir> [run description]");
            System.exit(2);
        }
        System.setProperty("java.awt.headless", "true");
        Path results = Path.of(args[0]);
        Path md = Path.of(args[1]);
        Path charts = Path.of(args[2]);
        String description = args.length > 3 ? args[3] : "";
        if (!Files.isDirectory(results)) {
            System.err.println("no results folder " + results + ": run benchmarks/run.sh first");
            System.exit(2);
        }
        Report r = new Report(results);
        if (r.cases.isEmpty() && r.compare == null) {
            System.err.println("no JMH JSON or compare.json in " + results);
            System.exit(2);
        }
        r.cases.sort(Comparator.comparing(Case::bench).thenComparing(Case::method));
        String section = r.section(description, charts, md);
        String old = Files.exists(md) ? Files.readString(md, StandardCharsets.UTF_8)
                : "# diffusion4j benchmark results\n";
        Files.writeString(md, splice(old, section), StandardCharsets.UTF_8);
        System.out.println("report: " + r.cases.size() + " JMH results" + (r.compare != null ? " + compare.json" : "")
                + " -> " + md + " (generated section), charts in " + charts);
    }
}
