package org.diffusion4j.cli;

import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.io.Npy;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The GPU check of the command-line tool (issue 6: "the same commands run with {@code --backend cuda}"): {@code train},
 * {@code sample} and {@code eval} of a tiny class-conditional DiT on generated IDX data, once on the CPU and once on
 * CUDA; the CUDA run's per-step losses and samples must follow the CPU run's. Runs on every {@code @Tag("cuda")} pass
 * of {@code benchmarks/gpu/check.sh}; aborts with the probe's reason where no device exists.
 */
@Tag("cuda")
class CudaCliTest {

    @BeforeAll
    static void device() {
        CudaRuntime.Status s = CudaRuntime.probe(0);
        if (!s.usable()) {
            if (Boolean.getBoolean("d4j.cuda.required")) {
                fail("CUDA is required here but device 0 is not usable: " + s.description());
            }
            Assumptions.abort("no CUDA device: " + s.description());
        }
    }

    private static String[] train(Path data, Path out, String backend) {
        return new String[] {"train", "--data", data.toString(), "--out", out.toString(), "--model", "dit", "--cond",
            "--hidden", "32", "--depth", "2", "--heads", "2", "--patch", "4", "--steps", "12", "--batch", "16",
            "--lr", "2e-3", "--checkpoint-every", "12", "--sample-every", "12", "--sample-steps", "3",
            "--backend", backend, "--seed", "3"};
    }

    private static double[] losses(Path run) throws IOException {
        List<String> lines = Files.readAllLines(run.resolve("loss.csv"));
        double[] l = new double[lines.size() - 1];
        for (int i = 1; i < lines.size(); i++) {
            String[] f = lines.get(i).split(",");
            l[i - 1] = Double.parseDouble(f[1]);
        }
        return l;
    }

    /**
     * The device run's losses follow the CPU run's step for step: same data, noise and t (Philox is identical on
     * both); only float rounding (GEMM order, TF32 off) differs.
     */
    private static void assertLossesFollow(Path cpuRun, Path gpuRun, String what) throws IOException {
        double[] lc = losses(cpuRun);
        double[] lg = losses(gpuRun);
        assertEquals(lc.length, lg.length);
        for (int i = 0; i < lc.length; i++) {
            assertTrue(Math.abs(lg[i] - lc[i]) <= 2e-2 * Math.abs(lc[i]), "step " + i + ": " + what + " " + lg[i]
                    + " vs cpu " + lc[i]);
        }
    }

    @Test
    void trainSampleEvalOnCudaFollowTheCpu(@TempDir Path dir) throws IOException {
        Path data = TinyData.idxFolder(dir.resolve("tiny"), 64, 24);
        Path cpuRun = dir.resolve("cpu");
        Path gpuRun = dir.resolve("gpu");
        var c = TrainSampleEvalTest.run(train(data, cpuRun, "cpu"));
        assertEquals(0, c.code(), c::toString);
        var g = TrainSampleEvalTest.run(train(data, gpuRun, "cuda"));
        assertEquals(0, g.code(), g::toString);
        assertTrue(g.out().contains("cuda"), "the run reports the CUDA backend:\n" + g);
        assertLossesFollow(cpuRun, gpuRun, "cuda");
        for (String backend : new String[] {"cpu", "cuda"}) {
            var s = TrainSampleEvalTest.run("sample", "--checkpoint", gpuRun.toString(), "--n", "6", "--steps", "4",
                    "--seed", "9", "--out", dir.resolve(backend + ".png").toString(), "--save-raw",
                    dir.resolve(backend + ".npy").toString(), "--backend", backend);
            assertEquals(0, s.code(), s::toString);
        }
        float[] sc = Npy.read(dir.resolve("cpu.npy")).values();
        float[] sg = Npy.read(dir.resolve("cuda.npy")).values();
        assertEquals(sc.length, sg.length);
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < sc.length; i++) {
            diff += (sc[i] - sg[i]) * (double) (sc[i] - sg[i]);
            norm += sc[i] * (double) sc[i];
        }
        assertTrue(Math.sqrt(diff / norm) < 1e-3, "samples from the same checkpoint and seed: cuda vs cpu relative "
                + "error " + Math.sqrt(diff / norm));
        var e = TrainSampleEvalTest.run("eval", "--checkpoint", gpuRun.toString(), "--n", "12", "--steps", "3",
                "--reference", "12", "--cache-dir", dir.resolve("cache").toString(), "--backend", "cuda");
        assertEquals(0, e.code(), e::toString);
        assertTrue(Files.isRegularFile(gpuRun.resolve("eval.json")), e::toString);
        // export from the device (the BF16 cast runs there), then sample the export on the CPU: it matches the CPU
        // samples of the run within BF16 rounding of the weights
        Path exported = dir.resolve("export/gpu-bf16.safetensors");
        var x = TrainSampleEvalTest.run("export", "--checkpoint", gpuRun.toString(), "--out", exported.toString(),
                "--dtype", "bf16", "--backend", "cuda");
        assertEquals(0, x.code(), x::toString);
        var fromExport = TrainSampleEvalTest.run("sample", "--checkpoint", exported.toString(), "--n", "6", "--steps",
                "4", "--seed", "9", "--out", dir.resolve("export.png").toString(), "--save-raw",
                dir.resolve("export.npy").toString(), "--backend", "cpu");
        assertEquals(0, fromExport.code(), fromExport::toString);
        float[] sx = Npy.read(dir.resolve("export.npy")).values();
        double dx = 0;
        for (int i = 0; i < sc.length; i++) {
            dx += (sc[i] - sx[i]) * (double) (sc[i] - sx[i]);
        }
        assertTrue(Math.sqrt(dx / norm) < 5e-2, "samples of the BF16 export vs the run's: relative error "
                + Math.sqrt(dx / norm));
    }

    /** Gradient accumulation and inpainting on the device: micro-batches follow the CPU's whole batch, kept pixels stay. */
    @Test
    void microBatchesAndInpaintingOnCuda(@TempDir Path dir) throws IOException {
        Path data = TinyData.idxFolder(dir.resolve("tiny"), 64, 24);
        Path cpuRun = dir.resolve("cpu");
        Path gpuRun = dir.resolve("gpu");
        var c = TrainSampleEvalTest.run(train(data, cpuRun, "cpu"));
        assertEquals(0, c.code(), c::toString);
        String[] args = train(data, gpuRun, "cuda");
        String[] micro = java.util.Arrays.copyOf(args, args.length + 2);
        micro[args.length] = "--micro-batch";
        micro[args.length + 1] = "4";
        var g = TrainSampleEvalTest.run(micro);
        assertEquals(0, g.code(), g::toString);
        assertTrue(g.out().contains("in 4 passes of 4"), g::toString);
        assertLossesFollow(cpuRun, gpuRun, "cuda micro-batched");
        float[] init = new float[16 * 16];
        float[] mask = new float[16 * 16];
        byte[] img = TinyData.image(1, 3);
        java.awt.image.BufferedImage maskPng = new java.awt.image.BufferedImage(16, 16,
                java.awt.image.BufferedImage.TYPE_BYTE_GRAY);
        for (int p = 0; p < init.length; p++) {
            init[p] = (float) ((img[p] & 0xff) / 127.5 - 1);
            mask[p] = p % 16 < 8 ? 1f : 0f;
            maskPng.getRaster().setSample(p % 16, p / 16, 0, p % 16 < 8 ? 255 : 0);
        }
        Npy.write(dir.resolve("init.npy"), init, 1, 1, 16, 16);
        javax.imageio.ImageIO.write(maskPng, "png", dir.resolve("mask.png").toFile());
        var s = TrainSampleEvalTest.run("sample", "--checkpoint", gpuRun.toString(), "--init",
                dir.resolve("init.npy").toString(), "--mask", dir.resolve("mask.png").toString(), "--sampler", "repaint",
                "--steps", "6", "--n", "3", "--out", dir.resolve("paint.png").toString(), "--save-raw",
                dir.resolve("paint.npy").toString(), "--backend", "cuda");
        assertEquals(0, s.code(), s::toString);
        float[] x = Npy.read(dir.resolve("paint.npy")).values();
        for (int k = 0; k < 3; k++) {
            for (int p = 0; p < init.length; p++) {
                if (mask[p] == 0f) {
                    assertEquals(init[p], x[k * init.length + p], 0f, "kept pixel " + p + " of sample " + k);
                }
            }
        }
    }
}
