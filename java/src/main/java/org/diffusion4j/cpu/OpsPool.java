package org.diffusion4j.cpu;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Device;

import java.util.Objects;

/**
 * The threads of one CPU op family ({@link CpuDiffusionOps}, {@link CpuNnOps}, {@link CpuAttention}): the
 * {@link CpuBackend}'s own pool when the thread counts match (so the families never put more spinning threads
 * to work than there are cores), else a pool of its own, started at the first call large enough to split and
 * shut down with the family.
 */
final class OpsPool implements AutoCloseable {

    private final String family;
    private final Backend backend;
    private final int threads;
    private WorkerPool pool;   // guarded by this; null until first needed
    private boolean owns;      // whether close() shuts pool down
    private boolean closed;    // guarded by this

    /**
     * @param family the op family's name, for messages
     * @throws IllegalArgumentException when the backend's device is not the CPU or {@code threads < 1}
     */
    OpsPool(String family, Backend backend, int threads) {
        this.family = family;
        this.backend = Objects.requireNonNull(backend, "backend");
        if (backend.device().type() != Device.Type.CPU) {
            throw new IllegalArgumentException(family + " needs a backend on the CPU, " + backend.name() + " is on "
                    + backend.device());
        }
        if (threads < 1) {
            throw new IllegalArgumentException(family + " needs at least 1 thread, got " + threads);
        }
        this.threads = threads;
    }

    /** The thread count of {@code backend} when it is a {@link CpuBackend}, else the default. */
    static int threadsOf(Backend backend) {
        return backend instanceof CpuBackend cpu ? cpu.threads() : CpuBackend.defaultThreads();
    }

    int threads() {
        return threads;
    }

    synchronized boolean isClosed() {
        return closed;
    }

    /**
     * The pool for a call of {@code tasks} tasks over {@code work} units, or null when the call should run on the
     * calling thread: one thread, one task, {@code work < serialMax}, or closed.
     */
    synchronized WorkerPool poolFor(long tasks, double work, double serialMax) {
        if (closed || threads == 1 || tasks < 2 || work < serialMax) {
            return null;
        }
        if (pool == null) {
            WorkerPool shared = CpuBackend.sharedPool(backend, threads);
            owns = shared == null;
            pool = owns ? new WorkerPool(threads) : shared;
        }
        return pool;
    }

    /** Runs tasks {@code [0, tasks)} on {@link #poolFor} or, when that is null, in order on the calling thread. */
    void forTasks(long tasks, double work, double serialMax, WorkerPool.Task body) {
        if (tasks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(family + ": a call needs too many tasks (" + tasks + ")");
        }
        runCounted(poolFor(tasks, work, serialMax), (int) tasks, body);
    }

    /**
     * {@link #run} counted as a call of the {@link CpuBackend} (when the backend is one), so that its
     * {@code close()} refuses while this family's work runs on its threads or its memory.
     */
    void runCounted(WorkerPool pool, int tasks, WorkerPool.Task body) {
        CpuBackend cpu = backend instanceof CpuBackend c ? c : null;
        if (cpu != null) {
            cpu.enter();
        }
        try {
            run(pool, tasks, body);
        } finally {
            if (cpu != null) {
                cpu.exit();
            }
        }
    }

    /** Runs tasks {@code [0, tasks)} on {@code pool}, or in order on the calling thread when it is null. */
    static void run(WorkerPool pool, int tasks, WorkerPool.Task body) {
        if (pool == null) {
            for (int t = 0; t < tasks; t++) {
                body.run(t);
            }
        } else {
            pool.forTasks(tasks, true, body);
        }
    }

    /** Shuts an owned pool down; later calls run on the calling thread. Idempotent. */
    @Override
    public synchronized void close() {
        closed = true;
        if (pool != null && owns) {
            pool.close();
        }
        pool = null;
    }
}
