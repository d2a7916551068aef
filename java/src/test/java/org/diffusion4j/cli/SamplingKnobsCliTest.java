package org.diffusion4j.cli;

import org.diffusion4j.io.Npy;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code sample/eval --threshold}, {@code --eta}, {@code --s-churn}. Thresholding: by default ({@code auto}) an ε-prediction image model's {@code x̂0} is clipped to
 * [−1, 1] at every step (its samples stay in the data range) while flow models are left alone; explicit kinds work;
 * bad spellings and thresholds on vectors are refused in one line. {@code --eta} and {@code --s-churn} reach the
 * samplers that take them (η = 0 turns the ancestral and SDE samplers into their ODE forms) and are refused elsewhere.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SamplingKnobsCliTest {

    private Path dir;
    private Path eps;
    private Path flow;
    private Path data;

    private static TrainSampleEvalTest.Result run(String... args) {
        return TrainSampleEvalTest.run(args);
    }

    @BeforeAll
    void train(@TempDir Path tmp) throws IOException {
        dir = tmp;
        data = TinyData.idxFolder(dir.resolve("tiny"), 48, 12);
        eps = dir.resolve("eps");
        flow = dir.resolve("flow");
        for (Path out : new Path[] {eps, flow}) {
            TrainSampleEvalTest.Result r = run("train", "--data", data.toString(), "--out", out.toString(), "--model",
                    "mlp", "--hidden", "32", "--cond", "--objective", out == eps ? "eps" : "flow", "--steps", "6",
                    "--batch", "8", "--sample-every", "0", "--backend", "cpu", "--seed", "1");
            assertEquals(0, r.code(), r::toString);
        }
    }

    private float[] sample(Path run, String name, String... extra) throws IOException {
        Path raw = dir.resolve(name + ".npy");
        String[] base = {"sample", "--checkpoint", run.toString(), "--n", "6", "--steps", "4", "--backend", "cpu",
            "--out", dir.resolve(name + ".png").toString(), "--save-raw", raw.toString()};
        String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(extra))
                .toArray(String[]::new);
        TrainSampleEvalTest.Result r = run(args);
        assertEquals(0, r.code(), r::toString);
        boolean thresholded = r.out().contains("x0 thresholded");
        assertEquals(extra.length > 0 ? !extra[extra.length - 1].equals("none") : run == eps, thresholded,
                r::toString);
        return Npy.read(raw).values();
    }

    private static double maxAbs(float[] v) {
        double m = 0;
        for (float f : v) {
            m = Math.max(m, Math.abs(f));
        }
        return m;
    }

    @Test
    void epsImageModelsAreClippedByDefaultFlowModelsAreNot() throws IOException {
        float[] auto = sample(eps, "auto");
        float[] none = sample(eps, "none", "--threshold", "none");
        float[] clip = sample(eps, "clip", "--threshold", "clip");
        float[] dynamic = sample(eps, "dynamic", "--threshold", "dynamic:0.9:2");
        assertTrue(maxAbs(auto) <= 1.0, "auto = clip:1 keeps samples in [-1, 1]: " + maxAbs(auto));
        assertTrue(maxAbs(dynamic) <= 1.0, "dynamic thresholding ends in [-1, 1]: " + maxAbs(dynamic));
        assertTrue(maxAbs(none) > 1.5, "the barely trained eps model overshoots without: " + maxAbs(none));
        assertEquals(java.util.Arrays.toString(auto), java.util.Arrays.toString(clip), "auto is clip:1 here");
        assertNotEquals(java.util.Arrays.toString(auto), java.util.Arrays.toString(dynamic));
        float[] flowAuto = sample(flow, "flow-auto");
        float[] flowNone = sample(flow, "flow-none", "--threshold", "none");
        assertEquals(java.util.Arrays.toString(flowNone), java.util.Arrays.toString(flowAuto),
                "flow models: auto is none");
    }

    @Test
    void badThresholdsAreRefusedInOneLine() throws IOException {
        for (String bad : new String[] {"clip:0", "dynamic:2", "sometimes", "clip:1:2"}) {
            TrainSampleEvalTest.Result r = run("sample", "--checkpoint", eps.toString(), "--n", "2", "--steps", "2",
                    "--backend", "cpu", "--out", dir.resolve("bad.png").toString(), "--threshold", bad);
            assertNotEquals(0, r.code(), r::toString);
            assertTrue(r.err().contains("--threshold") && r.err().contains(bad), r::toString);
            assertEquals(1, r.err().strip().lines().count(), r::toString);
        }
        assertFalse(Files.exists(dir.resolve("bad.png")));
        // vectors are standardised, not bounded: a threshold there is refused
        StringBuilder csv = new StringBuilder("a,b\n");
        for (int i = 0; i < 64; i++) {
            csv.append(Math.sin(i)).append(',').append(Math.cos(3 * i)).append('\n');
        }
        Path file = dir.resolve("v.csv");
        Files.writeString(file, csv);
        Path vec = dir.resolve("vec");
        TrainSampleEvalTest.Result t = run("train", "--data", file.toString(), "--out", vec.toString(), "--objective",
                "eps", "--steps", "3", "--batch", "8", "--sample-every", "0", "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        TrainSampleEvalTest.Result r = run("sample", "--checkpoint", vec.toString(), "--n", "4", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("vec.png").toString(), "--threshold", "clip");
        assertNotEquals(0, r.code(), r::toString);
        assertTrue(r.err().contains("vectors"), r::toString);
        TrainSampleEvalTest.Result ok = run("sample", "--checkpoint", vec.toString(), "--n", "4", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("vec.png").toString());
        assertEquals(0, ok.code(), ok::toString);
        assertFalse(ok.out().contains("thresholded"), ok::toString);
        // eval --samples: sampling options are refused there
        Path npy = dir.resolve("auto.npy");
        if (!Files.exists(npy)) {
            sample(eps, "auto");
        }
        TrainSampleEvalTest.Result e = run("eval", "--samples", npy.toString(), "--data", data.toString(),
                "--threshold", "clip", "--backend", "cpu");
        assertNotEquals(0, e.code(), e::toString);
        assertTrue(e.err().contains("--threshold"), e::toString);
    }

    @Test
    void etaAndChurnReachTheSamplersThatTakeThem() throws IOException {
        float[] euler = sample(eps, "euler", "--sampler", "euler", "--threshold", "none");
        float[] ancestral0 = sample(eps, "ea0", "--sampler", "euler-ancestral", "--eta", "0", "--threshold", "none");
        float[] ancestral = sample(eps, "ea1", "--sampler", "euler-ancestral", "--threshold", "none");
        assertClose(euler, ancestral0, "euler-ancestral at eta 0 is Euler");
        assertNotEquals(java.util.Arrays.toString(euler), java.util.Arrays.toString(ancestral));
        float[] ddim = sample(eps, "ddim", "--sampler", "ddim", "--threshold", "none");
        float[] ddim0 = sample(eps, "ddim0", "--sampler", "ddim", "--eta", "0", "--threshold", "none");
        float[] ddim1 = sample(eps, "ddim1", "--sampler", "ddim", "--eta", "1", "--threshold", "none");
        assertEquals(java.util.Arrays.toString(ddim), java.util.Arrays.toString(ddim0), "eta 0 is DDIM's default");
        assertNotEquals(java.util.Arrays.toString(ddim), java.util.Arrays.toString(ddim1));
        float[] sde0 = sample(eps, "sde0", "--sampler", "dpmpp-2m-sde", "--eta", "0", "--threshold", "none");
        float[] ode = sample(eps, "ode", "--sampler", "dpmpp-2m", "--threshold", "none");
        assertClose(ode, sde0, "dpmpp-2m-sde at eta 0 is dpmpp-2m");
        float[] heun = sample(eps, "heun", "--sampler", "heun", "--threshold", "none");
        float[] churned = sample(eps, "churn", "--sampler", "heun", "--s-churn", "40", "--threshold", "none");
        assertNotEquals(java.util.Arrays.toString(heun), java.util.Arrays.toString(churned));
        String[][] bad = {{"--sampler", "dpmpp-2m", "--eta", "1"}, {"--sampler", "ddim", "--eta", "-0.5"},
            {"--sampler", "euler", "--s-churn", "10"}, {"--sampler", "heun", "--s-churn", "Infinity"}};
        for (String[] b : bad) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("sample", "--checkpoint",
                    eps.toString(), "--n", "2", "--steps", "2", "--backend", "cpu", "--out",
                    dir.resolve("bad.png").toString()), java.util.Arrays.stream(b)).toArray(String[]::new);
            TrainSampleEvalTest.Result r = run(args);
            assertNotEquals(0, r.code(), r::toString);
            assertTrue(r.err().contains(b[2]), r::toString);
        }
    }

    private static void assertClose(float[] a, float[] b, String what) {
        assertEquals(a.length, b.length);
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], b[i], 1e-4 * Math.max(1, Math.abs(a[i])), what + " at " + i);
        }
    }

    /** {@code --save-images DIR}: one PNG per sample, equal to the tiles of the grid; foreign files refused. */
    @Test
    void saveImagesWritesOnePngPerSample() throws IOException {
        Path imgs = dir.resolve("each/deeper");
        TrainSampleEvalTest.Result r = run("sample", "--checkpoint", flow.toString(), "--n", "11", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("each.png").toString(), "--save-raw",
                dir.resolve("each.npy").toString(), "--save-images", imgs.toString());
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("11 PNGs in " + imgs.toAbsolutePath().normalize() + " (00000.png .. 00010.png)"),
                r::toString);
        float[] raw = Npy.read(dir.resolve("each.npy")).values();
        int per = TinyData.SIDE * TinyData.SIDE;
        for (int i = 0; i < 11; i++) {
            java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(imgs.resolve(String.format("%05d.png", i))
                    .toFile());
            assertEquals(TinyData.SIDE, img.getWidth());
            for (int p = 0; p < per; p += 37) {
                float v = Math.max(-1, Math.min(1, raw[i * per + p]));
                int want = (int) Math.floor((v + 1) / 2 * 255 + 0.5);
                assertEquals(want, img.getRaster().getSample(p % TinyData.SIDE, p / TinyData.SIDE, 0), "image " + i);
            }
        }
        Files.writeString(imgs.resolve("00001.png"), "my notes");
        TrainSampleEvalTest.Result refused = run("sample", "--checkpoint", flow.toString(), "--n", "3", "--steps",
                "2", "--backend", "cpu", "--out", dir.resolve("each2.png").toString(), "--save-images",
                imgs.toString());
        assertNotEquals(0, refused.code(), refused::toString);
        assertTrue(refused.err().contains("00001.png exists and is not a PNG"), refused::toString);
        assertEquals("my notes", Files.readString(imgs.resolve("00001.png")));
    }
}
