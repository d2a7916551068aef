package org.diffusion4j.io;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Checkpoints of CUDA tensors: written through device-to-host copies (contiguous tensors, a transposed view,
 * BF16, I32, a tensor above the 64 MiB staging chunk), read back onto the device by host-to-device copies from
 * the mapped file, and bit-identical to the same checkpoint on the CPU. Skipped without a usable device,
 * failed instead with {@code -Dd4j.cuda.required=true} ({@code benchmarks/gpu/check.sh}).
 */
@Tag("cuda")
class SafetensorsCudaTest {

    private static Backend gpu;
    private static Backend cpu;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        CudaRuntime.Status s = CudaRuntime.probe(0);
        if (!s.usable()) {
            if (Boolean.getBoolean("d4j.cuda.required")) {
                fail("CUDA is required here but device 0 is not usable: " + s.description());
            }
            Assumptions.abort("no CUDA device: " + s.description());
        }
        gpu = CudaRuntime.createBackend(0);
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        if (cpu != null) {
            cpu.close();
        }
        if (gpu != null) {
            gpu.close();
        }
    }

    @Test
    void deviceCheckpointsRoundTripAndMatchTheCpu() throws IOException {
        SplittableRandom r = IoTestSupport.random("cuda");
        try (TensorScope scope = TensorScope.open()) {
            float[] w = IoTestSupport.gaussian(r, 37 * 129);
            float[] big = IoTestSupport.gaussian(r, 17_000_001); // 68 MB: more than one staging chunk
            int[] labels = r.ints(11, -50, 50).toArray();
            Map<String, Tensor> onGpu = new LinkedHashMap<>();
            Map<String, Tensor> onCpu = new LinkedHashMap<>();
            for (Backend be : new Backend[] {gpu, cpu}) {
                Map<String, Tensor> m = be == gpu ? onGpu : onCpu;
                Tensor wt = be.fromArray(scope, w, 37, 129);
                m.put("w", wt);
                m.put("w.T", wt.transpose(0, 1));
                Tensor bf = be.empty(scope, DType.BF16, 37, 129);
                be.cast(wt, bf);
                m.put("w.bf16", bf);
                m.put("labels", IoTestSupport.ints(be, scope, labels, 11));
                m.put("big", be.fromArray(scope, big, big.length));
            }
            Path g = dir.resolve("gpu.safetensors");
            Path c = dir.resolve("cpu.safetensors");
            Safetensors.write(g, onGpu, Map.of("device", "cuda"));
            Safetensors.write(c, onCpu, Map.of("device", "cuda"));
            assertArrayEquals(java.nio.file.Files.readAllBytes(c), java.nio.file.Files.readAllBytes(g),
                    "the same checkpoint from either device; " + IoTestSupport.seedOf("cuda"));
            try (TensorScope back = TensorScope.open()) {
                SafetensorsFile f = Safetensors.read(g, back, gpu);
                assertTrue(f.zeroCopy().isEmpty(), "device tensors are copies");
                for (Map.Entry<String, Tensor> e : onCpu.entrySet()) {
                    Tensor t = f.tensor(e.getKey());
                    assertEquals(Device.cuda(0), t.device());
                    assertArrayEquals(IoTestSupport.bytesOf(e.getValue()), IoTestSupport.bytesOf(t), e.getKey());
                }
            }
        }
    }
}
