package org.diffusion4j.cuda;

import org.bytedeco.javacpp.annotation.Platform;
import org.diffusion4j.Backends;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Device;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fallback paths of {@link CudaRuntime#probe}: each reason a device can be unusable, real where this
 * machine has it (no driver on the build machine) and simulated otherwise, and what {@link Backends} makes
 * of it: {@code auto} falls back to the CPU, an explicit {@code cuda} throws with the reason.
 */
@Tag("cuda") // part of the GPU check too; runs (and passes) on every machine
class CudaRuntimeTest {

    /** A JavaCPP binding whose JNI library exists nowhere: loading it fails like a build without nvcc. */
    @Platform(include = "diffusion4j.h", link = "d4j_library_that_does_not_exist")
    static final class MissingBinding {
        private MissingBinding() {
        }

        static native int d4j_version();
    }

    /** Simulated devices: each method returns what the field says. */
    static final class FakeDevices implements NativeDevices {
        int countStatus;
        int count = 1;
        DeviceInfo info = new DeviceInfo(0, "NVIDIA H200", 9, 0, 150_000_000_000L, 132, 13000, 13000);
        int infoStatus;
        int setDeviceStatus;
        int selfTestStatus;
        String lastError = "";
        int selfTests;

        @Override
        public int deviceCount(int[] c) {
            c[0] = countStatus == 0 ? count : 0;
            return countStatus;
        }

        @Override
        public int deviceInfo(int device, DeviceInfo[] out) {
            if (infoStatus == 0) {
                out[0] = new DeviceInfo(device, info.name(), info.ccMajor(), info.ccMinor(), info.totalMemoryBytes(),
                        info.multiprocessors(), info.driverVersion(), info.runtimeVersion());
            }
            return infoStatus;
        }

        @Override
        public int setDevice(int device) {
            return setDeviceStatus;
        }

        @Override
        public int selfTest() {
            selfTests++;
            return selfTestStatus;
        }

        @Override
        public String lastError() {
            return lastError;
        }
    }

    static CudaRuntime.Probe probe(FakeDevices d) {
        return CudaRuntime.probe(0, NativeLoader.Outcome.OK, d);
    }

    // ---------------------------------------------------------------- simulated machines

    @Test
    void libraryAbsentIsReportedNotThrown() {
        NativeLoader.Outcome o = NativeLoader.tryLoad(MissingBinding.class);
        assertFalse(o.loaded());
        assertFalse(o.packaged());
        assertTrue(o.failure().contains("no native CUDA library"), o.failure());
        CudaRuntime.Probe p = CudaRuntime.probe(0, o, new FakeDevices());
        assertEquals(CudaRuntime.Availability.NOT_BUILT, p.kind());
        assertFalse(p.status().usable());
        assertEquals(o.failure(), p.status().description());
        assertNull(p.info());
    }

    @Test
    void noDriver() {
        FakeDevices d = new FakeDevices();
        d.countStatus = 35;
        d.lastError = "d4j_device_count: cudaErrorInsufficientDriver: CUDA driver version is insufficient";
        CudaRuntime.Probe p = probe(d);
        assertEquals(CudaRuntime.Availability.NO_DRIVER, p.kind());
        assertTrue(p.status().description().startsWith("no usable CUDA driver: cudaErrorInsufficientDriver (35)"),
                p.status().description());
        assertEquals("no usable CUDA driver", p.status().brief(), "the log line's short form");
        assertEquals("CUDA is disabled by -Dd4j.cuda=off",
                new CudaRuntime.Status(false, "CUDA is disabled by -Dd4j.cuda=off").brief(), "no detail: all of it");
        assertTrue(p.status().description().contains(d.lastError));
    }

    @Test
    void noDevice() {
        FakeDevices d = new FakeDevices();
        d.countStatus = 100;
        assertEquals(CudaRuntime.Availability.NO_DEVICE, probe(d).kind());
        assertTrue(probe(d).status().description().contains("cudaErrorNoDevice"));
        d.countStatus = 0;
        d.count = 0;
        assertEquals(CudaRuntime.Availability.NO_DEVICE, probe(d).kind());
        d.count = 2;
        CudaRuntime.Probe p = CudaRuntime.probe(2, NativeLoader.Outcome.OK, d);
        assertEquals(CudaRuntime.Availability.NO_DEVICE, p.kind());
        assertTrue(p.status().description().contains("device 2 does not exist") && p.status().description().contains("2 devices"),
                p.status().description());
        assertEquals(CudaRuntime.Availability.NO_DEVICE, CudaRuntime.probe(-1, NativeLoader.Outcome.OK, d).kind());
    }

    @Test
    void unsupportedComputeCapability() {
        FakeDevices d = new FakeDevices();
        d.info = new DeviceInfo(0, "Tesla T4", 7, 5, 16L << 30, 40, 13000, 13000);
        CudaRuntime.Probe p = probe(d);
        assertEquals(CudaRuntime.Availability.UNSUPPORTED_DEVICE, p.kind());
        assertTrue(p.status().description().contains("Tesla T4") && p.status().description().contains("7.5")
                && p.status().description().contains("8.0"), p.status().description());
        assertEquals(0, d.selfTests, "no kernel is launched on an unsupported device");
        assertNotNull(p.info());
    }

    @Test
    void selfTestFailureAndQueryFailures() {
        FakeDevices d = new FakeDevices();
        d.selfTestStatus = NativeLib.ERR_SELF_TEST;
        d.lastError = "d4j_self_test: element 5 is 0, expected 16";
        CudaRuntime.Probe p = probe(d);
        assertEquals(CudaRuntime.Availability.FAILED, p.kind());
        assertTrue(p.status().description().contains("self-test") && p.status().description().contains("element 5"),
                p.status().description());
        d = new FakeDevices();
        d.infoStatus = 999;
        assertEquals(CudaRuntime.Availability.FAILED, probe(d).kind());
        d = new FakeDevices();
        d.setDeviceStatus = 46; // cudaErrorDevicesUnavailable (exclusive-process mode, busy)
        d.lastError = "d4j_set_device: cudaErrorDevicesUnavailable: CUDA-capable device(s) is/are busy or unavailable";
        assertTrue(probe(d).status().description().contains("busy"));
        d = new FakeDevices();
        d.countStatus = 3; // cudaErrorInitializationError
        assertEquals(CudaRuntime.Availability.FAILED, probe(d).kind());
    }

    @Test
    void usableDeviceIsDescribed() {
        FakeDevices d = new FakeDevices();
        CudaRuntime.Probe p = probe(d);
        assertEquals(CudaRuntime.Availability.USABLE, p.kind());
        assertTrue(p.status().usable());
        assertEquals("NVIDIA H200, compute capability 9.0, 139.7 GiB, 132 SMs, driver CUDA 13.0, runtime CUDA 13.0",
                p.status().description());
        assertEquals(1, d.selfTests);
    }

    // ---------------------------------------------------------------- this machine, as it is

    @Test
    void probeNeverThrowsAndBackendsFollowIt() {
        CudaRuntime.Status st = CudaRuntime.probe(0);
        assertNotNull(st.description());
        assertFalse(st.description().isBlank());
        assertFalse(CudaRuntime.probe(64).usable(), "no machine has 65 GPUs here");
        try (Backend auto = Backends.create("auto")) {
            assertEquals(st.usable() ? Device.cuda(0) : Device.CPU, auto.device());
        }
        if (!st.usable()) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.create("cuda"));
            assertTrue(e.getMessage().contains(st.description()), e.getMessage());
            assertThrows(IllegalStateException.class, () -> Backends.create("cuda:0"));
            assertThrows(IllegalStateException.class, () -> CudaRuntime.createBackend(0));
        }
        assertThrows(IllegalStateException.class, () -> Backends.create("cuda:64"));
    }

    @Test
    void onAMachineWithoutDriverTheRealReasonIsTheDriver() {
        CudaRuntime.Probe p = CudaRuntime.probeDetailed(0);
        org.junit.jupiter.api.Assumptions.assumeTrue(NativeLoader.load().loaded(),
                "this build has no native library: " + NativeLoader.load().failure());
        org.junit.jupiter.api.Assumptions.assumeFalse(p.status().usable(), "a device is usable here");
        assertTrue(p.kind() == CudaRuntime.Availability.NO_DRIVER || p.kind() == CudaRuntime.Availability.NO_DEVICE,
                p.kind() + ": " + p.status().description());
    }

    @Test
    void disabledByProperty() {
        String old = System.getProperty("d4j.cuda");
        System.setProperty("d4j.cuda", "off");
        try {
            CudaRuntime.Status st = CudaRuntime.probe(0);
            assertFalse(st.usable());
            assertTrue(st.description().contains("-Dd4j.cuda=off"));
            try (Backend auto = Backends.create("auto")) {
                assertEquals(Device.CPU, auto.device());
            }
            assertNull(CudaRuntime.libraryVersion());
        } finally {
            if (old == null) {
                System.clearProperty("d4j.cuda");
            } else {
                System.setProperty("d4j.cuda", old);
            }
        }
    }

    @Test
    void cublasLoadingFailsWithAReasonWithoutADevice() {
        org.junit.jupiter.api.Assumptions.assumeFalse(CudaRuntime.probe(0).usable(), "a device is usable here");
        // Normally only a backend whose device answered opens cuBLAS; here both ways must fail cleanly.
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> CublasApi.open(0, 0));
        assertTrue(e.getMessage().contains("bytedeco") && e.getMessage().contains("libcublas.so.12"), e.getMessage());
    }

    // ---------------------------------------------------------------- pure Java parts of the backend

    @Test
    void coalesceMergesChainedDimsAndDropsOnes() {
        long[][] c = CudaBackend.coalesce(new long[] {2, 3, 4}, new long[] {12, 4, 1});
        assertEquals("[[24], [1]]", java.util.Arrays.deepToString(c));
        c = CudaBackend.coalesce(new long[] {2, 1, 4, 3}, new long[] {12, 99, 1, 4}); // [2, 4, 3] of a transposed view
        assertEquals("[[2, 4, 3], [12, 1, 4]]", java.util.Arrays.deepToString(c));
        c = CudaBackend.coalesce(new long[] {1, 1}, new long[] {5, 7});
        assertEquals("[[1], [1]]", java.util.Arrays.deepToString(c));
    }

    @Test
    void cudaExceptionNamesFunctionStatusAndOperands() {
        CudaException e = new CudaException("binary MUL", "d4j_binary_f32", 700,
                "d4j_binary_f32: cudaErrorIllegalAddress: an illegal memory access was encountered", "a [3, 5]");
        assertTrue(e.getMessage().startsWith("binary MUL: d4j_binary_f32 failed with status 700"), e.getMessage());
        assertTrue(e.getMessage().contains("cudaErrorIllegalAddress") && e.getMessage().contains("[a [3, 5]]")
                && e.getMessage().contains("sticky"), e.getMessage());
        assertEquals(700, e.status());
        assertEquals("d4j_binary_f32", e.function());
        assertFalse(new CudaException("x", "f", -1, "bad", "").getMessage().contains("sticky"));
    }

    @Test
    void gemmMathFromProperty() {
        assertEquals(CudaBackend.GemmMath.FP32, CudaBackend.GemmMath.fromProperty());
        String old = System.getProperty("d4j.cuda.gemm");
        try {
            System.setProperty("d4j.cuda.gemm", "tf32");
            assertEquals(CudaBackend.GemmMath.TF32, CudaBackend.GemmMath.fromProperty());
            System.setProperty("d4j.cuda.gemm", "fp8");
            assertThrows(IllegalArgumentException.class, CudaBackend.GemmMath::fromProperty);
        } finally {
            if (old == null) {
                System.clearProperty("d4j.cuda.gemm");
            } else {
                System.setProperty("d4j.cuda.gemm", old);
            }
        }
    }
}
