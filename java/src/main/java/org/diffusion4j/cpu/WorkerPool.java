package org.diffusion4j.cpu;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The CPU backend's fixed pool: {@code threads - 1} daemon workers plus the calling thread, which always
 * takes part, so an op runs on exactly {@code threads} threads.
 *
 * <p>Work is cut into tasks whose boundaries depend only on the problem (its size and a fixed grain), never
 * on the thread count, and every task writes its own outputs; that is what makes every op's result bitwise
 * the same for any thread count. Which thread runs which task is decided at run time (an atomic counter),
 * which balances load without changing results.
 *
 * <p>Problems below {@link #SERIAL_MAX} elements run on the calling thread without touching the pool (a
 * hand-off costs a few microseconds, as long as such an op takes).
 */
final class WorkerPool implements AutoCloseable {

    /** Ops on fewer elements than this run on the calling thread. */
    static final long SERIAL_MAX = 32 * 1024;
    /** Elements per task of the elementwise ops: 64 KiB of F32, a multiple of every inner block size. */
    static final long GRAIN = 16 * 1024;

    /** A task body: runs task {@code t}. */
    @FunctionalInterface
    interface Task {
        void run(int t);
    }

    /** A range body: handles elements (or rows) {@code [from, to)}. */
    @FunctionalInterface
    interface Range {
        void run(long from, long to);
    }

    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    /** Runs everything on the calling thread (for memory only that thread may touch). */
    static final WorkerPool CALLER_ONLY = new WorkerPool(1);

    private final int threads;
    private final ThreadPoolExecutor workers; // null when threads == 1

    WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("the CPU backend needs at least 1 thread, got " + threads);
        }
        this.threads = threads;
        if (threads == 1) {
            workers = null;
        } else {
            int id = POOL_IDS.incrementAndGet();
            AtomicInteger n = new AtomicInteger();
            ThreadFactory tf = r -> {
                Thread t = new Thread(r, "d4j-cpu-" + id + "-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            };
            workers = new ThreadPoolExecutor(threads - 1, threads - 1, 0, TimeUnit.SECONDS,
                    new LinkedBlockingQueue<>(), tf);
            workers.prestartAllCoreThreads();
        }
    }

    int threads() {
        return threads;
    }

    /**
     * Runs {@code body} over {@code [0, total)}: on the calling thread in one call when {@code total} is
     * below {@link #SERIAL_MAX}, else as tasks of {@code grain} elements spread over the pool. Only for
     * bodies whose result per element does not depend on how the range is cut.
     */
    void forRange(long total, long grain, Range body) {
        if (total <= 0) {
            return;
        }
        if (workers == null || total < SERIAL_MAX || total <= grain) {
            body.run(0, total);
            return;
        }
        long g = Math.max(grain, ceilDiv(total, Integer.MAX_VALUE));
        int tasks = (int) ceilDiv(total, g);
        run(tasks, t -> body.run(t * g, Math.min(total, (t + 1) * g)));
    }

    /**
     * Runs {@code body} over rows {@code [0, rows)} of {@code cols} elements each, in groups of whole rows of
     * about {@link #GRAIN} elements; on the calling thread when the whole problem is small.
     */
    void forRows(long rows, long cols, Range body) {
        if (rows <= 0) {
            return;
        }
        long perTask = Math.max(1, GRAIN / Math.max(cols, 1));
        if (workers == null || rows * Math.max(cols, 1) < SERIAL_MAX || rows <= perTask) {
            body.run(0, rows);
            return;
        }
        long g = Math.max(perTask, ceilDiv(rows, Integer.MAX_VALUE));
        int tasks = (int) ceilDiv(rows, g);
        run(tasks, t -> body.run(t * g, Math.min(rows, (t + 1) * g)));
    }

    /**
     * Runs {@code body.run(t)} for every {@code t} in {@code [0, tasks)}: in parallel when {@code parallel}
     * holds and there is more than one task, else in order on the calling thread.
     */
    void forTasks(int tasks, boolean parallel, Task body) {
        if (tasks <= 0) {
            return;
        }
        if (!parallel || workers == null || tasks == 1) {
            for (int t = 0; t < tasks; t++) {
                body.run(t);
            }
            return;
        }
        run(tasks, body);
    }

    private void run(int tasks, Task body) {
        Job job = new Job(tasks, body, Thread.currentThread());
        int helpers = Math.min(threads - 1, tasks - 1);
        try {
            for (int h = 0; h < helpers; h++) {
                workers.execute(job);
            }
        } catch (RejectedExecutionException e) {
            // closed concurrently: the calling thread finishes the job alone
        }
        job.run();
        job.await();
        Throwable error = job.error;
        if (error instanceof RuntimeException re) {
            throw re;
        }
        if (error instanceof Error err) {
            throw err;
        }
        if (error != null) {
            throw new IllegalStateException(error);
        }
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    /** Shuts the workers down; running ops finish first. */
    @Override
    public void close() {
        if (workers != null) {
            workers.shutdown();
        }
    }

    /** One parallel run: tasks are claimed from a counter by the caller and the helpers. */
    private static final class Job implements Runnable {
        private final int tasks;
        private final Task body;
        private final Thread caller;
        private final AtomicInteger next = new AtomicInteger();
        private final AtomicInteger done = new AtomicInteger();
        private volatile Throwable error;

        Job(int tasks, Task body, Thread caller) {
            this.tasks = tasks;
            this.body = body;
            this.caller = caller;
        }

        @Override
        public void run() {
            int t;
            while ((t = next.getAndIncrement()) < tasks) {
                try {
                    if (error == null) {
                        body.run(t);
                    }
                } catch (Throwable e) {
                    synchronized (this) {
                        if (error == null) {
                            error = e;
                        }
                    }
                } finally {
                    if (done.incrementAndGet() == tasks) {
                        LockSupport.unpark(caller);
                    }
                }
            }
        }

        void await() {
            for (int spin = 0; spin < 2000 && done.get() < tasks; spin++) {
                Thread.onSpinWait();
            }
            while (done.get() < tasks) {
                LockSupport.park(this);
            }
        }
    }
}
