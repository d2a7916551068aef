package org.diffusion4j.cli;

import org.diffusion4j.Backends;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import picocli.CommandLine.Option;

import java.util.Locale;

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

    /** Set once {@code --backend auto} has chosen the CPU in this process (and {@link Backends} said why). */
    private static volatile boolean autoChoseCpu;

    /**
     * Creates the backend of {@code spec} through {@link Backends#create}, except that {@code auto} after an
     * earlier {@code auto} in this process chose the CPU creates the CPU backend directly: a command that makes
     * several backends ({@code eval}: sampling, then metrics) says "CUDA not used: ..." once, not once per backend.
     * CUDA's usability does not change within a process, so the choice is the same.
     *
     * @throws IllegalArgumentException as {@link Backends#create}
     * @throws IllegalStateException    as {@link Backends#create}
     */
    static Backend createBackend(String spec) {
        boolean auto = spec == null || spec.trim().toLowerCase(Locale.ROOT).equals("auto");
        if (auto && autoChoseCpu) {
            return new CpuBackend();
        }
        Backend be = Backends.create(spec);
        if (auto && be instanceof CpuBackend) {
            autoChoseCpu = true;
        }
        return be;
    }

    /**
     * Sets the CPU backend's thread count ({@link CpuBackend#THREADS_PROPERTY}) from {@code --threads}; does nothing
     * when it was not given. Call before creating the backend.
     *
     * @throws IllegalArgumentException if {@code --threads} is below 1
     */
    void applyThreads() {
        if (threads != null) {
            if (threads < 1 || threads > CpuBackend.MAX_THREADS) {
                throw new IllegalArgumentException("--threads must be in [1, " + CpuBackend.MAX_THREADS + "], got "
                        + threads);
            }
            int cores = Runtime.getRuntime().availableProcessors();
            if (threads > cores) {
                org.slf4j.LoggerFactory.getLogger(RuntimeOptions.class).warn("--threads {} is more than the {} "
                        + "available cores: the threads take turns, which is slower, not faster", threads, cores);
            }
            System.setProperty(CpuBackend.THREADS_PROPERTY, Integer.toString(threads));
        }
    }
}
