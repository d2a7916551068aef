package org.diffusion4j;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Device;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Locale;

/**
 * Chooses and creates a {@link Backend}.
 *
 * <p>{@code "cpu"}, {@code "cuda"}, {@code "cuda:N"} ask for one backend explicitly; {@code "auto"} takes
 * CUDA device 0 when it is usable (the native library loads, a device is present, its compute capability
 * is supported and a self-test kernel round-trips) and the CPU otherwise. Either way one log line says
 * what was chosen and why.
 */
public final class Backends {

    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    private Backends() {
    }

    /**
     * Creates the backend named by {@code spec}: {@code auto}, {@code cpu}, {@code cuda} or {@code cuda:N}.
     *
     * @throws IllegalArgumentException when {@code spec} is none of these
     * @throws IllegalStateException    when CUDA is asked for explicitly and is not usable (the message
     *                                  gives the reason)
     */
    public static Backend create(String spec) {
        String s = spec == null ? "auto" : spec.trim().toLowerCase(Locale.ROOT);
        if (s.equals("auto")) {
            CudaRuntime.Status status = CudaRuntime.probe(0);
            if (status.usable()) {
                LOG.info("backend: cuda:0 ({}) chosen automatically", status.description());
                return CudaRuntime.createBackend(0);
            }
            Backend cpu = new CpuBackend();
            LOG.info("backend: {} chosen automatically; CUDA not used: {} (details: `diffusion4j info`, or "
                    + "CudaRuntime.probe(0).description())", cpu.name(),
                    status.brief());
            LOG.debug("CUDA probe: {}", status.description());
            return cpu;
        }
        Device device;
        try {
            device = Device.parse(s);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown backend '" + spec + "': expected auto, cpu, cuda or cuda:N");
        }
        if (device.type() == Device.Type.CPU) {
            Backend cpu = new CpuBackend();
            LOG.info("backend: {} (asked for)", cpu.name());
            return cpu;
        }
        CudaRuntime.Status status = CudaRuntime.probe(device.index());
        if (!status.usable()) {
            throw new IllegalStateException("backend '" + spec + "' was asked for but CUDA is not usable: "
                    + status.description());
        }
        LOG.info("backend: {} ({}) (asked for)", device, status.description());
        return CudaRuntime.createBackend(device.index());
    }
}
