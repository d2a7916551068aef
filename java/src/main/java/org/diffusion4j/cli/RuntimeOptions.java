package org.diffusion4j.cli;

import org.diffusion4j.cpu.CpuBackend;
import picocli.CommandLine.Option;

/**
 * The runtime options that {@code train}, {@code sample} and {@code eval} share (a picocli mixin):
 * {@code --backend}, {@code --threads} and {@code --verbose} ({@code --verbose} is read by {@link Main} from the
 * parse result).
 */
final class RuntimeOptions {

    @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default: "
            + "${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;

    @Option(names = "--verbose", description = "stack traces on errors")
    boolean verbose;

    /**
     * Sets the CPU backend's thread count ({@link CpuBackend#THREADS_PROPERTY}) from {@code --threads}; does nothing
     * when it was not given. Call before creating the backend.
     *
     * @throws IllegalArgumentException if {@code --threads} is below 1
     */
    void applyThreads() {
        if (threads != null) {
            if (threads < 1) {
                throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
            }
            System.setProperty(CpuBackend.THREADS_PROPERTY, Integer.toString(threads));
        }
    }
}
