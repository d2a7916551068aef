package org.diffusion4j.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
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
 * <p><b>Hand-off.</b> A run is posted in one volatile field; idle workers watch it. After helping with a
 * run a worker spins for {@link #SPIN_NANOS} before it parks, so that back-to-back ops (the usual case: a
 * layer is a sequence of ops) find it awake: waking a parked thread costs about as long as a 64 Ki-element
 * axpby takes (~14 µs on one core), and with parked workers that axpby measured slower on 2 threads than on 1;
 * with the spin it is 1.56x faster. Problems below {@link #SERIAL_MAX} elements run on the calling thread
 * without touching the pool.
 */
final class WorkerPool implements AutoCloseable {

    /** Ops on fewer elements than this run on the calling thread. */
    static final long SERIAL_MAX = 32 * 1024;
    /** Elements per task of the elementwise ops: 64 KiB of F32, a multiple of every inner block size. */
    static final long GRAIN = 16 * 1024;
    /** How long an idle worker keeps watching for the next run before it parks. */
    static final long SPIN_NANOS = 50_000;

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
    private final Worker[] workers;
    /** The run workers should help with; null when none. */
    private final AtomicReference<Job> posted = new AtomicReference<>();
    private volatile boolean closed;

    WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("the CPU backend needs at least 1 thread, got " + threads);
        }
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        if (threads > 1) {
            int id = POOL_IDS.incrementAndGet();
            for (int w = 0; w < workers.length; w++) {
                workers[w] = new Worker();
                Thread t = new Thread(workers[w], "d4j-cpu-" + id + "-" + (w + 1));
                t.setDaemon(true);
                workers[w].thread = t;
            }
            for (Worker w : workers) {
                w.thread.start();
            }
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
        if (threads == 1 || total < SERIAL_MAX || total <= grain) {
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
        if (threads == 1 || rows * Math.max(cols, 1) < SERIAL_MAX || rows <= perTask) {
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
        if (!parallel || threads == 1 || tasks == 1) {
            for (int t = 0; t < tasks; t++) {
                body.run(t);
            }
            return;
        }
        run(tasks, body);
    }

    private void run(int tasks, Task body) {
        Job job = new Job(tasks, body, Thread.currentThread());
        if (!closed) {
            posted.set(job);
            for (Worker w : workers) {
                if (w.parked) {
                    LockSupport.unpark(w.thread);
                }
            }
        }
        job.run();
        job.await();
        posted.compareAndSet(job, null);
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

    /** Stops the workers (after the run they are helping with); later runs use the calling thread alone. */
    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) {
            LockSupport.unpark(w.thread);
        }
    }

    /** A worker: helps with each newly posted run, spins a while when idle, then parks. */
    private final class Worker implements Runnable {
        Thread thread;
        volatile boolean parked;

        @Override
        public void run() {
            Job last = null;
            long idleSince = System.nanoTime();
            while (!closed) {
                Job j = posted.get();
                if (j != null && j != last) {
                    last = j;
                    j.run();
                    idleSince = System.nanoTime();
                    continue;
                }
                if (System.nanoTime() - idleSince < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                parked = true;                    // announce, then re-check: a poster that missed the flag
                j = posted.get();                 // has already published its run, which we see here
                if (j == null || j == last) {
                    LockSupport.park(this);
                }
                parked = false;
                idleSince = System.nanoTime();
            }
        }
    }

    /** One parallel run: tasks are claimed from a counter by the caller and the helpers. */
    private static final class Job {
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

        void run() {
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
            for (int spin = 0; spin < 4000 && done.get() < tasks; spin++) {
                Thread.onSpinWait();
            }
            boolean interrupted = false;
            while (done.get() < tasks) {
                LockSupport.park(this);
                // park returns at once while the interrupt status is set: clear it (and set it again below) rather
                // than spin at full speed until the job ends
                interrupted |= Thread.interrupted();
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
