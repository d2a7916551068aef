package org.diffusion4j.cli;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Locale;

/**
 * Training progress: step, loss, images/s and ETA. On a terminal it is a live bar (me.tongfei progressbar) on
 * stdout; otherwise (redirected output, tests, CI) it prints a plain line to {@code out} about every tenth of the run
 * and at least every {@value #PLAIN_INTERVAL_SECONDS} seconds, so logs stay short and readable.
 */
final class Progress implements AutoCloseable {

    /** Longest gap between two plain lines, seconds. */
    static final int PLAIN_INTERVAL_SECONDS = 30;

    private final PrintWriter out;
    private final ProgressBar bar;
    private final long first;
    private final long total;
    private final long startNanos = System.nanoTime();
    private long lastLineNanos = System.nanoTime();
    private long lastLineStep;
    private String unit = "img/s";
    private boolean closed;

    private Progress(PrintWriter out, ProgressBar bar, long first, long total) {
        this.out = out;
        this.bar = bar;
        this.first = first;
        this.total = total;
        this.lastLineStep = first;
    }

    /**
     * Progress over steps {@code first .. total}.
     *
     * @param interactive a live bar (only when stdin and stdout are a terminal: {@link #isTerminal()})
     */
    static Progress start(String task, long first, long total, PrintWriter out, boolean interactive) {
        ProgressBar bar = null;
        if (interactive) {
            // on stdout, the stream isTerminal() checks and the notes' (stderr may go to a file); the plain console
            // consumer redraws the bar in place on the cursor's line ("\r" + bar), so a note can take that line and
            // the bar continues on the next (the interactive consumer draws it on the line above the cursor)
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                    .setConsumer(new ConsoleProgressBarConsumer(System.out)).setUpdateIntervalMillis(500)
                    .startsFrom(first, Duration.ZERO).build();
        }
        return new Progress(out, bar, first, total);
    }

    /** Names the throughput unit ({@code "img/s"} by default; e.g. {@code "samples/s"} for vectors). */
    Progress unit(String u) {
        this.unit = u;
        return this;
    }

    /** True when the JVM's console is an interactive terminal. */
    static boolean isTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal() && !"dumb".equals(System.getenv("TERM"));
    }

    /**
     * Reports that {@code step} steps are done.
     *
     * @param loss          the mean loss of the last {@code lossSteps} steps
     * @param lossSteps     how many steps {@code loss} averages
     * @param imagesPerSec  recent throughput, samples/s
     */
    void update(long step, double loss, int lossSteps, double imagesPerSec) {
        String msg = String.format(Locale.ROOT, "loss %.4f (mean of %d)  %.0f %s", loss, lossSteps, imagesPerSec,
                unit);
        if (bar != null) {
            bar.stepTo(step);
            bar.setExtraMessage(msg);
            return;
        }
        long now = System.nanoTime();
        long tenth = Math.max(1, (total - first) / 10);
        if (step - lastLineStep >= tenth || step == total
                || (now - lastLineNanos) / 1e9 >= PLAIN_INTERVAL_SECONDS) {
            double elapsed = (now - startNanos) / 1e9;
            double eta = step > first ? elapsed / (step - first) * (total - step) : Double.NaN;
            out.printf(Locale.ROOT, "step %d/%d  %s  elapsed %s  ETA %s%n", step, total, msg, clock(elapsed),
                    clock(eta));
            out.flush();
            lastLineNanos = now;
            lastLineStep = step;
        }
    }

    /**
     * Prints a line between steps (a held-out loss, a new best checkpoint, what a pause is for). Under a live bar
     * the bar's line is erased first ({@code CR}, {@code ESC [2K}) and the note takes it, so notes stay on the screen
     * above the bar, which redraws itself on the next line at its next refresh (as tqdm's {@code write} does).
     */
    void note(String what) {
        if (bar != null && !closed) {
            out.print("\r\033[2K");
        }
        out.println(what);
        out.flush();
    }

    /**
     * A consumer of "samples done" counts (one call per model batch) that prints
     * {@code sampling    k/n  elapsed h:mm:ss  ETA h:mm:ss} lines for {@code sample} and {@code eval}.
     */
    static java.util.function.IntConsumer samplingLines(PrintWriter out, int n) {
        long start = System.nanoTime();
        return done -> {
            double elapsed = (System.nanoTime() - start) / 1e9;
            double eta = done > 0 ? elapsed / done * (n - done) : Double.NaN;
            out.printf(Locale.ROOT, "sampling    %d/%d  elapsed %s  ETA %s%n", done, n, clock(elapsed), clock(eta));
            out.flush();
        };
    }

    /**
     * A step listener for one long batch: a line {@code sampling    level k/N  elapsed ...} at most every
     * {@code everySeconds} (none for a run shorter than that).
     */
    static org.diffusion4j.sampling.SamplerContext.StepListener stepLines(PrintWriter out, double everySeconds) {
        long start = System.nanoTime();
        long[] lastLine = {start};
        return (level, grid, x) -> {
            long now = System.nanoTime();
            if ((now - lastLine[0]) / 1e9 >= everySeconds && level < grid.steps()) {
                lastLine[0] = now;
                out.printf(Locale.ROOT, "sampling    level %d/%d  elapsed %s%n", level, grid.steps(),
                        clock((now - start) / 1e9));
                out.flush();
            }
        };
    }

    /** {@code h:mm:ss}, or {@code ?} when unknown. */
    static String clock(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }

    @Override
    public void close() {
        if (bar != null && !closed) {
            bar.close();
        }
        closed = true;
    }
}
