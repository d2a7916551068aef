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

    /**
     * Class colours in both plot kinds; a class named like another series ("sample 2", "data", twice after
     * shortening) or hundreds of classes must not fail a plot (found by an adversarial trial: XChart refuses repeated
     * series names, and training stopped at its first grid).
     */
    @Test
    void classNamesNeverFailAPlot(@TempDir Path dir) throws IOException {
        int n = 24;
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 2 == 0 ? 0 : i % 4 == 1 ? 1 : 2;   // sample 2 is class 0's second: a curve "sample 2"
        }
        String longName = "x".repeat(30);                      // two names that shorten alike in the legend
        java.util.List<String> names = java.util.List.of("sample 2", longName + "a", longName + "b");
        for (int d : new int[] {1, 2, 8}) {
            float[] v = new float[n * d];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) Math.cos(i);
            }
            Path png = dir.resolve("classes-" + d + ".png");
            Plots.samples(png, v, n, null, new long[] {d}, 1, null, 1,
                    new Plots.VectorLabels(labels, names, java.util.List.of()));
            assertNotNull(ImageIO.read(png.toFile()), "D = " + d);
        }
        int many = 600;
        int[] manyLabels = new int[many];
        float[] pts = new float[many * 2];
        for (int i = 0; i < many; i++) {
            manyLabels[i] = i;
            pts[2 * i] = i;
            pts[2 * i + 1] = -i;
        }
        Path crowd = dir.resolve("crowd.png");
        Plots.samples(crowd, pts, many, null, new long[] {2}, 1, null, 1,
                new Plots.VectorLabels(manyLabels, java.util.List.of(), java.util.List.of("a", "b")));
        assertNotNull(ImageIO.read(crowd.toFile()));
    }
}
