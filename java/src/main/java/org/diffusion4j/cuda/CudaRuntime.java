package org.diffusion4j.cuda;

import org.diffusion4j.tensor.Backend;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Entry point to the CUDA side: loads the native library on first use and tells whether a device is
 * usable, with the precise reason when it is not.
 *
 * <p>A device is usable when, in this order: the native library loads ({@code libdiffusion4j.so} and its
 * JNI binding, built only where nvcc was found); the CUDA runtime finds a driver (status 35,
 * {@code cudaErrorInsufficientDriver}, means none or one too old) and a device (100,
 * {@code cudaErrorNoDevice}); the device's compute capability is at least {@value #MIN_COMPUTE_CAPABILITY_TEXT}
 * (the library carries sm_80 and sm_90 code and compute_90 PTX); and a self-test kernel round-trips 1024
 * values exactly.
 *
 * <p>System properties: {@code -Dd4j.cuda=off} disables CUDA (probe reports it, {@code auto} picks the CPU);
 * {@code -Dd4j.cuda.gemm=fp32|tf32|bf16} sets the default {@link CudaBackend.GemmMath} of new backends.
 */
public final class CudaRuntime {

    /** Lowest supported compute capability, as {@code 10*major + minor} (keep in sync with cmake/D4jCudaArchitectures.cmake). */
    public static final int MIN_COMPUTE_CAPABILITY = 80;
    static final String MIN_COMPUTE_CAPABILITY_TEXT = "8.0";

    /** cudaErrorInsufficientDriver: no driver (no libcuda.so.1) or one older than the runtime. */
    static final int CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
    /** cudaErrorNoDevice. */
    static final int CUDA_ERROR_NO_DEVICE = 100;

    private static final Map<Integer, Probe> PROBES = new ConcurrentHashMap<>();

    private CudaRuntime() {
    }

    /** Outcome of probing one device: whether it is usable and why (or why not), with the technical detail. */
    public record Status(boolean usable, String description) {

        /** The reason without its technical detail: {@link #description()} up to its first {@code ": "}. */
        public String brief() {
            int colon = description.indexOf(": ");
            return colon > 0 ? description.substring(0, colon) : description;
        }
    }

    /** Why a device is or is not usable, for callers that act on the kind rather than the text (tests). */
    enum Availability {
        USABLE,
        /** {@code -Dd4j.cuda=off}. */
        DISABLED,
        /** This build carries no native library (built where nvcc was not found). */
        NOT_BUILT,
        /** The native library is packaged but did not load. */
        LOAD_FAILED,
        /** No driver or one too old (cudaErrorInsufficientDriver). */
        NO_DRIVER,
        /** A driver but no device, or no device with this index. */
        NO_DEVICE,
        /** A device whose compute capability is below {@link #MIN_COMPUTE_CAPABILITY}. */
        UNSUPPORTED_DEVICE,
        /** A device that is there but failed a query or the self-test. */
        FAILED;

        /** True when there is simply no CUDA hardware or software here, as opposed to a broken setup. */
        boolean absent() {
            return this == DISABLED || this == NOT_BUILT || this == NO_DRIVER || this == NO_DEVICE;
        }
    }

    /** A status, its kind and, when the device answered, its properties. */
    record Probe(Availability kind, Status status, DeviceInfo info) {
        Probe(Availability kind, String description, DeviceInfo info) {
            this(kind, new Status(kind == Availability.USABLE, description), info);
        }
    }

    /**
     * Probes CUDA device {@code index}; never throws. The result is computed once per index (the self-test
     * runs once) unless CUDA is disabled by {@code -Dd4j.cuda=off}.
     */
    public static Status probe(int index) {
        return probeDetailed(index).status();
    }

    /** The properties of device {@code index} when the runtime could read them, else null. Never throws. */
    public static DeviceInfo deviceInfo(int index) {
        return probeDetailed(index).info();
    }

    static Probe probeDetailed(int index) {
        if (disabled()) {
            return new Probe(Availability.DISABLED, "CUDA is disabled by -Dd4j.cuda=off", null);
        }
        return PROBES.computeIfAbsent(index, i -> {
            try {
                return probe(i, NativeLoader.load(), NativeDevices.REAL);
            } catch (LinkageError | RuntimeException e) {
                return new Probe(Availability.FAILED, "probing CUDA device " + i + " failed: " + NativeLoader.firstLine(e), null);
            }
        });
    }

    /**
     * The probe logic over a load outcome and a device-query implementation (tests pass simulated ones).
     * Never throws.
     */
    static Probe probe(int index, NativeLoader.Outcome loaded, NativeDevices devices) {
        if (index < 0) {
            return new Probe(Availability.NO_DEVICE, "CUDA device index must be >= 0, got " + index, null);
        }
        if (!loaded.loaded()) {
            return new Probe(loaded.packaged() ? Availability.LOAD_FAILED : Availability.NOT_BUILT, loaded.failure(), null);
        }
        int[] count = new int[1];
        int rc = devices.deviceCount(count);
        if (rc == CUDA_ERROR_INSUFFICIENT_DRIVER) {
            return new Probe(Availability.NO_DRIVER, "no usable CUDA driver: cudaErrorInsufficientDriver (35): libcuda.so.1 "
                    + "is missing or older than the CUDA runtime the library was built with [" + devices.lastError() + "]", null);
        }
        if (rc == CUDA_ERROR_NO_DEVICE || (rc == 0 && count[0] == 0)) {
            return new Probe(Availability.NO_DEVICE, "no CUDA device: a driver is installed but it reports no GPU"
                    + (rc == 0 ? "" : " (cudaErrorNoDevice, 100)"), null);
        }
        if (rc != 0) {
            return new Probe(Availability.FAILED, "counting CUDA devices failed with status " + rc + ": " + devices.lastError(), null);
        }
        if (index >= count[0]) {
            return new Probe(Availability.NO_DEVICE, "CUDA device " + index + " does not exist: the driver reports "
                    + count[0] + " device" + (count[0] == 1 ? "" : "s") + " (0.." + (count[0] - 1) + ")", null);
        }
        DeviceInfo[] info = new DeviceInfo[1];
        rc = devices.deviceInfo(index, info);
        if (rc != 0 || info[0] == null) {
            return new Probe(Availability.FAILED, "reading the properties of CUDA device " + index + " failed with status "
                    + rc + ": " + devices.lastError(), null);
        }
        DeviceInfo d = info[0];
        if (d.computeCapability() < MIN_COMPUTE_CAPABILITY) {
            return new Probe(Availability.UNSUPPORTED_DEVICE, String.format(Locale.ROOT,
                    "CUDA device %d (%s) has compute capability %d.%d; diffusion4j needs %s or newer (its kernels are "
                            + "built for sm_80, sm_90 and compute_90)", index, d.name(), d.ccMajor(), d.ccMinor(),
                    MIN_COMPUTE_CAPABILITY_TEXT), d);
        }
        rc = devices.setDevice(index);
        if (rc != 0) {
            return new Probe(Availability.FAILED, "selecting CUDA device " + index + " (" + d.name() + ") failed with status "
                    + rc + ": " + devices.lastError(), d);
        }
        rc = devices.selfTest();
        if (rc != 0) {
            return new Probe(Availability.FAILED, "the self-test kernel failed on CUDA device " + index + " (" + d.name()
                    + ") with status " + rc + ": " + devices.lastError(), d);
        }
        return new Probe(Availability.USABLE, d.toString(), d);
    }

    /**
     * Creates the CUDA backend for device {@code index} with the default GEMM math
     * ({@code -Dd4j.cuda.gemm}, FP32 when unset).
     *
     * @throws IllegalStateException with the probe's reason when the device is not usable
     */
    public static Backend createBackend(int index) {
        return createBackend(index, CudaBackend.GemmMath.fromProperty());
    }

    /** Creates the CUDA backend for device {@code index} with the given GEMM math. */
    public static CudaBackend createBackend(int index, CudaBackend.GemmMath gemmMath) {
        Probe p = probeDetailed(index);
        if (!p.status().usable()) {
            throw new IllegalStateException("CUDA device " + index + " is not usable: " + p.status().description());
        }
        return new CudaBackend(p.info(), gemmMath);
    }

    /** Version of the loaded native library, or null when it did not load. Never throws. */
    public static String libraryVersion() {
        if (disabled() || !NativeLoader.load().loaded()) {
            return null;
        }
        return NativeLoader.version();
    }

    private static boolean disabled() {
        String v = System.getProperty("d4j.cuda", "").trim().toLowerCase(Locale.ROOT);
        return v.equals("off") || v.equals("false") || v.equals("disabled");
    }
}
