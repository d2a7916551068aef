package org.diffusion4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/** The sample plots of vector data: scatter of the first two coordinates, curves for long vectors. */
class PlotsTest {

    @Test
    void shortVectorsScatterAndLongOnesAreDrawnAsCurves(@TempDir Path dir) throws IOException {
        float[] points = new float[20 * 2];
        for (int i = 0; i < points.length; i++) {
            points[i] = (float) Math.sin(i);
        }
        Path scatter = dir.resolve("scatter.png");
        Plots.samples(scatter, points, 20, null, new long[] {2}, 5, null);
        BufferedImage a = ImageIO.read(scatter.toFile());
        assertNotNull(a);
        assertEquals(640, a.getWidth());

        int d = 32;
        float[] waves = new float[20 * d];
        for (int i = 0; i < 20; i++) {
            for (int j = 0; j < d; j++) {
                waves[i * d + j] = (float) Math.sin(0.4 * j + i);
            }
        }
        Path curves = dir.resolve("curves.png");
        Plots.samples(curves, waves, 20, null, new long[] {d}, 5, null);
        BufferedImage b = ImageIO.read(curves.toFile());
        assertNotNull(b);
        assertEquals(800, b.getWidth(), "the curve plot, not the 640-pixel scatter");
    }
}
