package org.diffusion4j.cli;

import org.diffusion4j.io.AtomicFiles;
import org.diffusion4j.io.ImageGrid;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** Plots of a run, rendered headless with XChart and written as PNG atomically. */
final class Plots {

    private Plots() {
    }

    /**
     * A chart that cannot be drawn because Java finds no fonts: a bare container or server image without fontconfig
     * or without a single font file. The JDK reports that as a RuntimeException ("Fontconfig head is null") or an
     * Error ("No physical fonts found") on the first text drawn; this names the picture and the remedy, and callers
     * that draw pictures beside their real work (loss curves, training grids) note it and go on.
     */
    static final class NoFontsException extends IllegalStateException {
        NoFontsException(Path png, Throwable cause) {
            super("cannot draw " + png.getFileName() + ": Java found no usable fonts (" + cause.getMessage()
                    + "); install fontconfig and a font, e.g. the fonts-dejavu-core package", cause);
        }
    }

    /**
     * Draws one line of text off-screen: a picture of {@code png} with text can be drawn on this machine.
     *
     * @throws NoFontsException when Java finds no fonts
     */
    static void requireFonts(Path png) throws IOException {
        System.setProperty("java.awt.headless", "true");
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(8, 8,
                java.awt.image.BufferedImage.TYPE_INT_RGB);
        java.awt.Graphics2D g = img.createGraphics();
        try {
            withFonts(png, () -> {
                g.setFont(new java.awt.Font(java.awt.Font.SANS_SERIF, java.awt.Font.PLAIN, 10));
                g.drawString("0", 1, 7);
                return null;
            });
        } finally {
            g.dispose();
        }
    }

    /** Something that draws text with AWT. */
    @FunctionalInterface
    interface TextDrawing<T> {
        T draw() throws IOException;
    }

    /**
     * Runs {@code drawing}, turning the JDK's "no fonts" failures into a {@link NoFontsException} naming {@code png};
     * other exceptions and errors pass unchanged.
     */
    static <T> T withFonts(Path png, TextDrawing<T> drawing) throws IOException {
        try {
            return drawing.draw();
        } catch (VirtualMachineError e) {
            throw e;
        } catch (RuntimeException | Error e) {
            if (isFontFailure(e)) {
                throw new NoFontsException(png, e);
            }
            throw e;
        }
    }

    /** Whether {@code t} (or a cause) comes from the JDK's font loading: named so, or thrown inside it. */
    static boolean isFontFailure(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            String m = c.getMessage();
            if (m != null && m.toLowerCase(java.util.Locale.ROOT).contains("font")) {
                return true;
            }
            for (StackTraceElement f : c.getStackTrace()) {
                String k = f.getClassName();
                if (k.startsWith("sun.font.") || k.startsWith("sun.awt.FontConfiguration")
                        || k.startsWith("sun.awt.X11FontManager") || k.startsWith("sun.awt.FcFontManager")) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * The loss curve: the loss of every step (light) and its moving average (dark), log-scaled when every value is
     * positive and they span more than a decade.
     *
     * @param steps  step numbers (1-based), ascending
     * @param losses loss of each step
     * @throws IllegalArgumentException when the arrays differ in length or are empty
     */
    static void lossCurve(Path png, long[] steps, double[] losses, String title) throws IOException {
        lossCurve(png, steps, losses, new long[0], new double[0], title);
    }

    /**
     * {@link #lossCurve(Path, long[], double[], String)} with the held-out losses measured at {@code heldSteps}
     * drawn as a second series with markers (none when empty).
     */
    static void lossCurve(Path png, long[] steps, double[] losses, long[] heldSteps, double[] heldLosses,
                          String title) throws IOException {
        if (heldSteps.length != heldLosses.length) {
            throw new IllegalArgumentException("held-out curve needs equal step and loss arrays, got "
                    + heldSteps.length + " and " + heldLosses.length);
        }
        if (steps.length != losses.length || steps.length == 0) {
            throw new IllegalArgumentException("loss curve needs equal, non-empty step and loss arrays, got "
                    + steps.length + " and " + losses.length);
        }
        System.setProperty("java.awt.headless", "true");
        int n = steps.length;
        double[] x = new double[n];
        double[] y = new double[n];
        boolean positive = true;
        for (int i = 0; i < n; i++) {
            x[i] = steps[i];
            y[i] = Double.isFinite(losses[i]) ? losses[i] : Double.NaN;
            positive &= y[i] > 0;
        }
        int window = Math.max(1, n / 50);
        double[] avg = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += y[i];
            if (i >= window) {
                sum -= y[i - window];
            }
            avg[i] = sum / Math.min(i + 1, window);
        }
        XYChart chart = new XYChartBuilder().width(800).height(480).title(title).xAxisTitle("step")
                .yAxisTitle("loss").build();
        chart.getStyler().setLegendVisible(true);
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNE);
        double lo = Double.POSITIVE_INFINITY;
        double hi = 0;
        for (double v : y) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        double[] hx = new double[heldSteps.length];
        double[] hy = new double[heldSteps.length];
        for (int i = 0; i < hx.length; i++) {
            hx[i] = heldSteps[i];
            hy[i] = Double.isFinite(heldLosses[i]) ? heldLosses[i] : Double.NaN;
            positive &= hy[i] > 0;
            lo = Math.min(lo, hy[i]);
            hi = Math.max(hi, hy[i]);
        }
        // log scale only for a range over a decade: within one, XChart's log axis labels too few ticks
        chart.getStyler().setYAxisLogarithmic(positive && hi > 10 * lo);
        chart.getStyler().setYAxisLogarithmicDecadeOnly(false);                 // label 0.3, 0.5, ... not only 1
        chart.getStyler().setYAxisDecimalPattern("0.###");
        chart.getStyler().setXAxisDecimalPattern("#,###");
        chart.getStyler().setXAxisTickMarkSpacingHint(90);                       // 2000 steps: labels apart
        chart.getStyler().setXAxisMin(0.0);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        XYSeries raw = chart.addSeries("loss per step", x, y);
        raw.setMarker(SeriesMarkers.NONE);
        raw.setLineColor(new Color(31, 119, 180, 90));
        if (window > 1) {                                                        // of one step it is the loss
            XYSeries smooth = chart.addSeries("moving average (" + window + " steps)", x, avg);
            smooth.setMarker(SeriesMarkers.NONE);
            smooth.setLineColor(new Color(214, 39, 40));
        }
        if (hx.length > 0) {
            XYSeries h = chart.addSeries("held-out loss", hx, hy);
            h.setMarker(SeriesMarkers.CIRCLE);
            h.setMarkerColor(new Color(44, 160, 44));
            h.setLineColor(new Color(44, 160, 44));
        }
        byte[] bytes = withFonts(png, () -> BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
        AtomicFiles.writeBytes(png, bytes);
    }

    /**
     * A guidance sweep ({@code eval --guidance-sweep}): two panels side by side, the distances (each metric over its
     * largest magnitude across the scales, so that FD and kernel distance share an axis) and the fractions (precision,
     * recall, coverage, class accuracy), against the guidance scale. Metrics absent from a report are skipped.
     *
     * @param guidance the scales, ascending
     * @param metrics  one report's metrics per scale
     */
    static void guidanceSweep(Path png, double[] guidance, List<Map<String, Double>> metrics, String title)
            throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYChart distances = new XYChartBuilder().width(560).height(420).title(title + ": distances")
                .xAxisTitle("guidance scale").yAxisTitle("over its largest magnitude").build();
        XYChart fractions = new XYChartBuilder().width(560).height(420).title(title + ": fractions")
                .xAxisTitle("guidance scale").yAxisTitle("fraction").build();
        int c = 0;
        for (String key : List.of("classifier_fd", "classifier_kid", "sliced_wasserstein", "mmd2_u")) {
            double[] y = column(metrics, key);
            double big = 0;
            for (int i = 0; y != null && i < y.length; i++) {
                big = Math.max(big, Math.abs(y[i]));
            }
            if (big > 0) {                      // each over its largest |value|: signs kept (MMD² may be < 0)
                for (int i = 0; i < y.length; i++) {
                    y[i] /= big;
                }
                XYSeries sr = distances.addSeries(key, guidance, y);
                sr.setMarker(SeriesMarkers.CIRCLE);
                sr.setLineColor(PALETTE[c % PALETTE.length]);
                sr.setMarkerColor(PALETTE[c++ % PALETTE.length]);
            }
        }
        for (String key : List.of("precision", "recall", "coverage", "classifier_accuracy", "knn_class_accuracy")) {
            double[] y = column(metrics, key);
            if (y != null) {
                XYSeries sr = fractions.addSeries(key, guidance, y);
                sr.setMarker(SeriesMarkers.CIRCLE);
                sr.setLineColor(PALETTE[c % PALETTE.length]);
                sr.setMarkerColor(PALETTE[c++ % PALETTE.length]);
            }
        }
        fractions.getStyler().setYAxisMin(0.0).setYAxisMax(1.0);
        for (XYChart chart : List.of(distances, fractions)) {
            chart.getStyler().setChartBackgroundColor(Color.WHITE);
            chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideS);
            chart.getStyler().setLegendLayout(org.knowm.xchart.style.Styler.LegendLayout.Horizontal);
        }
        java.awt.image.BufferedImage left = withFonts(png, () -> BitmapEncoder.getBufferedImage(distances));
        java.awt.image.BufferedImage right = withFonts(png, () -> BitmapEncoder.getBufferedImage(fractions));
        java.awt.image.BufferedImage both = new java.awt.image.BufferedImage(left.getWidth() + right.getWidth(),
                Math.max(left.getHeight(), right.getHeight()), java.awt.image.BufferedImage.TYPE_INT_RGB);
        java.awt.Graphics2D g = both.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, both.getWidth(), both.getHeight());
        g.drawImage(left, 0, 0, null);
        g.drawImage(right, left.getWidth(), 0, null);
        g.dispose();
        org.diffusion4j.io.ImageGrid.writePng(png, both);
    }

    /** The values of {@code key} across the reports, or null when a report lacks it. */
    private static double[] column(List<Map<String, Double>> metrics, String key) {
        double[] y = new double[metrics.size()];
        for (int i = 0; i < y.length; i++) {
            Double v = metrics.get(i).get(key);
            if (v == null) {
                return null;
            }
            y[i] = v;
        }
        return y;
    }

    /**
     * What a plot of vector samples can say about them: the class of each sample (null: none), the class names
     * (empty: "class k") and the feature names (empty: x0, x1, ...).
     */
    record VectorLabels(int[] labels, List<String> classNames, List<String> featureNames) {

        static final VectorLabels NONE = new VectorLabels(null, List.of(), List.of());

        /** The legend name of class {@code c}: its name shortened to 24 characters, or "class c". */
        String className(int c) {
            String n = c < classNames.size() ? classNames.get(c) : "class " + c;
            return n.length() <= 24 ? n : n.substring(0, 21) + "...";
        }

        String axis(int j) {
            return j < featureNames.size() ? featureNames.get(j) : "x" + j;
        }
    }

    /**
     * A picture of samples: images {@code [n, C, H, W]} as a grid of {@code columns} per row ({@link ImageGrid});
     * vectors {@code [n, D]} as a scatter plot of their first two coordinates (the value against 0 for
     * {@code D = 1}), over the {@code reference} points (same layout) when given.
     *
     * @param imageShape  {@code [C, H, W]} when the samples are images (also for a flattened MLP), else null
     * @param sampleShape the model's sample shape (the vector length for vectors)
     */
    static void samples(Path png, float[] x, int n, long[] imageShape, long[] sampleShape, int columns,
                        float[] reference) throws IOException {
        samples(png, x, n, imageShape, sampleShape, columns, reference, 1, VectorLabels.NONE);
    }

    /**
     * {@link #samples} with an image grid drawn {@code zoom} times larger ({@link ImageGrid#zoom}) and vector samples
     * drawn in a colour per class, named, on named axes.
     */
    static void samples(Path png, float[] x, int n, long[] imageShape, long[] sampleShape, int columns,
                        float[] reference, int zoom, VectorLabels labels) throws IOException {
        if (imageShape != null) {
            ImageGrid.writePng(png, ImageGrid.zoom(ImageGrid.render(x, new long[] {n, imageShape[0], imageShape[1],
                imageShape[2]}, columns, 2, 1f), zoom));
            return;
        }
        System.setProperty("java.awt.headless", "true");
        int d = (int) sampleShape[0];
        int[] cls = labels.labels();
        int single = cls == null ? -1 : cls[0];
        for (int i = 0; cls != null && i < n && single >= 0; i++) {
            single = cls[i] == single ? single : -1;
        }
        String of = single >= 0 ? " of " + labels.className(single) : "";
        if (d >= SERIES_MIN_DIM && reference == null) {
            seriesPlot(png, x, n, d, of, single >= 0 ? null : labels);
            return;
        }
        XYChart chart = new XYChartBuilder().width(640).height(640).title(n + " samples" + of + (reference != null ? " over " + reference.length / d + " data points" : "")
                + (d > 2 ? " (first two of " + d + " coordinates)" : "")).xAxisTitle(labels.axis(0))
                .yAxisTitle(d > 1 ? labels.axis(1) : "").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setMarkerSize(3);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        java.util.Set<String> used = new java.util.HashSet<>();
        if (reference != null) {                              // behind the samples; grey beside class colours
            addPoints(chart, unique(cls == null ? "data" : "data (all classes)", used), reference,
                    reference.length / d, d, null, -1, cls == null ? new Color(31, 119, 180, 90)
                    : new Color(110, 110, 110, 80));
        }
        if (cls == null || single >= 0) {
            addPoints(chart, unique(single >= 0 ? labels.className(single) : "samples", used), x, n, d, null, -1,
                    single >= 0 ? withAlpha(PALETTE[single % PALETTE.length], 140) : new Color(214, 39, 40, 110));
        } else {
            int classes = Arrays.stream(cls, 0, n).max().orElse(0) + 1;
            // a legend of more than MAX_LEGEND classes says nothing (XChart would show an arbitrary slice)
            chart.getStyler().setLegendVisible(classes <= MAX_LEGEND);
            for (int c = 0; c < classes; c++) {
                addPoints(chart, unique(labels.className(c), used), x, n, d, cls, c,
                        withAlpha(PALETTE[c % PALETTE.length], 140));
            }
        }
        AtomicFiles.writeBytes(png, withFonts(png, () -> BitmapEncoder.getBitmapBytes(chart,
                BitmapEncoder.BitmapFormat.PNG)));
    }

    /** Twenty colours: the "tab20" palette of matplotlib (d3's category20), dark and light of each hue. */
    private static final Color[] PALETTE = {new Color(31, 119, 180), new Color(255, 127, 14), new Color(44, 160, 44),
        new Color(214, 39, 40), new Color(148, 103, 189), new Color(140, 86, 75), new Color(227, 119, 194),
        new Color(127, 127, 127), new Color(188, 189, 34), new Color(23, 190, 207), new Color(174, 199, 232),
        new Color(255, 187, 120), new Color(152, 223, 138), new Color(255, 152, 150), new Color(197, 176, 213),
        new Color(196, 156, 148), new Color(247, 182, 210), new Color(199, 199, 199), new Color(219, 219, 141),
        new Color(158, 218, 229)};

    /** Most classes a plot names in its legend (and tells apart by colour). */
    static final int MAX_LEGEND = 20;

    /**
     * {@code name}, made distinct from the series names already {@code used} (XChart refuses a repeated name): a
     * class called like another series must not fail a plot.
     */
    private static String unique(String name, java.util.Set<String> used) {
        String n = name;
        while (!used.add(n)) {
            n = n + "\u200b";                                   // zero-width space: looks the same in the legend
        }
        return n;
    }

    private static Color withAlpha(Color c, int alpha) {
        return new Color(c.getRed(), c.getGreen(), c.getBlue(), alpha);
    }

    /** Vectors of at least this many coordinates are drawn as curves (time series, spectra), not scattered. */
    static final int SERIES_MIN_DIM = 8;

    /** Up to 12 samples, each a curve of value against coordinate index; coloured by class when labelled. */
    private static void seriesPlot(Path png, float[] x, int n, int d, String of, VectorLabels labels)
            throws IOException {
        int shown = Math.min(n, 12);
        int[] cls = labels == null ? null : labels.labels();
        XYChart chart = new XYChartBuilder().width(800).height(480).title(shown + " of " + n + " samples" + of + ", "
                + d + " coordinates each").xAxisTitle("coordinate").yAxisTitle("value").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendVisible(cls != null);
        double[] idx = new double[d];
        for (int j = 0; j < d; j++) {
            idx[j] = j;
        }
        java.util.Set<Integer> named = new java.util.HashSet<>();
        java.util.Set<String> used = new java.util.HashSet<>();
        for (int i = 0; i < shown; i++) {
            double[] y = new double[d];
            for (int j = 0; j < d; j++) {
                y[j] = x[i * d + j];
            }
            boolean first = cls != null && named.add(cls[i]);
            XYSeries s = chart.addSeries(unique(first ? labels.className(cls[i]) : "sample " + i, used), idx, y);
            s.setMarker(SeriesMarkers.NONE);
            if (cls != null) {
                s.setLineColor(PALETTE[cls[i] % PALETTE.length]);
                s.setShowInLegend(first);
            }
        }
        AtomicFiles.writeBytes(png, withFonts(png, () -> BitmapEncoder.getBitmapBytes(chart,
                BitmapEncoder.BitmapFormat.PNG)));
    }

    /** Rows {@code i < n} of {@code v} (of {@code class} {@code c} when {@code cls} is given) as one scatter series. */
    private static void addPoints(XYChart chart, String name, float[] v, int n, int d, int[] cls, int c, Color color) {
        int count = 0;
        for (int i = 0; i < n; i++) {
            count += cls == null || cls[i] == c ? 1 : 0;
        }
        if (count == 0) {
            return;
        }
        double[] xs = new double[count];
        double[] ys = new double[count];
        for (int i = 0, p = 0; i < n; i++) {
            if (cls == null || cls[i] == c) {
                xs[p] = v[i * d];
                ys[p++] = d > 1 ? v[i * d + 1] : 0;
            }
        }
        XYSeries s = chart.addSeries(name, xs, ys);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setMarkerColor(color);
    }
}
