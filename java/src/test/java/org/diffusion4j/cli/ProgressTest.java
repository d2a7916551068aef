package org.diffusion4j.cli;

import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.SigmaGrids;
import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The sampling heartbeat: a line per level when due, none for the last level, none before the interval. */
class ProgressTest {

    @Test
    void stepLinesAreThrottled() {
        SamplingGrid grid = SamplingGrid.ofFlowSigmas(RectifiedFlowSchedule.unshifted(), SigmaGrids.linspace(1, 0, 5));
        StringWriter every = new StringWriter();
        var always = Progress.stepLines(new PrintWriter(every, true), 0);
        StringWriter rarely = new StringWriter();
        var never = Progress.stepLines(new PrintWriter(rarely, true), 3600);
        for (int level = 1; level <= grid.steps(); level++) {
            always.onStep(level, grid, null);
            never.onStep(level, grid, null);
        }
        String[] lines = every.toString().split("\n");
        assertEquals(3, lines.length, every.toString());            // levels 1..3 of 4: not the final one
        assertEquals(true, lines[0].startsWith("sampling    level 1/4  elapsed 0:00:0"), lines[0]);
        assertEquals("", rarely.toString());
    }

    /** Notes are lines of their own, also under a live bar (which they erase first): never only the bar's tail. */
    @Test
    void notesStayAsLinesUnderALiveBar() {
        StringWriter plain = new StringWriter();
        try (Progress p = Progress.start("train", 0, 10, new PrintWriter(plain, true), false)) {
            p.note("held-out    loss 1.4300 at step 5");
        }
        assertEquals("held-out    loss 1.4300 at step 5\n", plain.toString());
        StringWriter live = new StringWriter();
        java.io.PrintStream err = System.err;
        try {
            System.setErr(new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));   // the bar's own output
            try (Progress p = Progress.start("train", 0, 10, new PrintWriter(live, true), true)) {
                p.update(3, 1.5, 3, 100);
                p.note("best        held-out loss 1.4300 at step 5: checkpoints/best.safetensors");
            }
        } finally {
            System.setErr(err);
        }
        assertEquals("\r\033[2Kbest        held-out loss 1.4300 at step 5: checkpoints/best.safetensors\n",
                live.toString());
    }
}
