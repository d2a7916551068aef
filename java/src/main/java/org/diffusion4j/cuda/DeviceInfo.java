package org.diffusion4j.cuda;

import java.util.Locale;

/**
 * What the CUDA runtime reports about one device.
 *
 * @param index             device ordinal
 * @param name              e.g. {@code "NVIDIA H200"}
 * @param ccMajor           compute capability, major (9 for Hopper)
 * @param ccMinor           compute capability, minor
 * @param totalMemoryBytes  global memory in bytes
 * @param multiprocessors   number of SMs
 * @param driverVersion     CUDA version the driver supports, as 1000*major + 10*minor (13000 = 13.0)
 * @param runtimeVersion    CUDA runtime version linked into libdiffusion4j, same encoding
 */
public record DeviceInfo(int index, String name, int ccMajor, int ccMinor, long totalMemoryBytes,
                         int multiprocessors, int driverVersion, int runtimeVersion) {

    /** Compute capability as {@code 10*major + minor}, e.g. 90. */
    public int computeCapability() {
        return ccMajor * 10 + ccMinor;
    }

    /** {@code 13000 -> "13.0"}. */
    static String cudaVersion(int v) {
        return (v / 1000) + "." + (v % 1000 / 10);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s, compute capability %d.%d, %.1f GiB, %d SMs, driver CUDA %s, runtime CUDA %s",
                name, ccMajor, ccMinor, totalMemoryBytes / (double) (1L << 30), multiprocessors,
                cudaVersion(driverVersion), cudaVersion(runtimeVersion));
    }
}
