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

/** Plots of a run, rendered headless with XChart and written as PNG atomically. */
final class Plots {

    private Plots() {
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
        // log scale only for a range over a decade: within one, XChart's log axis labels too few ticks
        chart.getStyler().setYAxisLogarithmic(positive && hi > 10 * lo);
        chart.getStyler().setYAxisLogarithmicDecadeOnly(false);                 // label 0.3, 0.5, ... not only 1
        chart.getStyler().setYAxisDecimalPattern("0.###");
        chart.getStyler().setXAxisDecimalPattern("#");
        chart.getStyler().setXAxisMaxLabelCount(10);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        XYSeries raw = chart.addSeries("loss per step", x, y);
        raw.setMarker(SeriesMarkers.NONE);
        raw.setLineColor(new Color(31, 119, 180, 90));
        if (window > 1) {                                                        // of one step it is the loss
            XYSeries smooth = chart.addSeries("moving average (" + window + " steps)", x, avg);
            smooth.setMarker(SeriesMarkers.NONE);
            smooth.setLineColor(new Color(214, 39, 40));
        }
        byte[] bytes = BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        AtomicFiles.writeBytes(png, bytes);
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
        samples(png, x, n, imageShape, sampleShape, columns, reference, 1);
    }

    /** {@link #samples} with an image grid drawn {@code zoom} times larger ({@link ImageGrid#zoom}). */
    static void samples(Path png, float[] x, int n, long[] imageShape, long[] sampleShape, int columns,
                        float[] reference, int zoom) throws IOException {
        if (imageShape != null) {
            ImageGrid.writePng(png, ImageGrid.zoom(ImageGrid.render(x, new long[] {n, imageShape[0], imageShape[1],
                imageShape[2]}, columns, 2, 1f), zoom));
            return;
        }
        System.setProperty("java.awt.headless", "true");
        int d = (int) sampleShape[0];
        if (d >= SERIES_MIN_DIM && reference == null) {
            seriesPlot(png, x, n, d);
            return;
        }
        XYChart chart = new XYChartBuilder().width(640).height(640).title(n + " samples"
                + (d > 2 ? " (first two of " + d + " coordinates)" : "")).xAxisTitle("x0").yAxisTitle(d > 1 ? "x1"
                : "").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setMarkerSize(3);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        if (reference != null) {
            addPoints(chart, "data", reference, d, new Color(31, 119, 180, 90));
        }
        addPoints(chart, "samples", x, d, new Color(214, 39, 40, 110));
        AtomicFiles.writeBytes(png, BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
    }

    /** Vectors of at least this many coordinates are drawn as curves (time series, spectra), not scattered. */
    static final int SERIES_MIN_DIM = 8;

    /** Up to 12 samples, each a curve of value against coordinate index. */
    private static void seriesPlot(Path png, float[] x, int n, int d) throws IOException {
        int shown = Math.min(n, 12);
        XYChart chart = new XYChartBuilder().width(800).height(480).title(shown + " of " + n + " samples, "
                + d + " coordinates each").xAxisTitle("coordinate").yAxisTitle("value").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendVisible(false);
        double[] idx = new double[d];
        for (int j = 0; j < d; j++) {
            idx[j] = j;
        }
        for (int i = 0; i < shown; i++) {
            double[] y = new double[d];
            for (int j = 0; j < d; j++) {
                y[j] = x[i * d + j];
            }
            XYSeries s = chart.addSeries("sample " + i, idx, y);
            s.setMarker(SeriesMarkers.NONE);
        }
        AtomicFiles.writeBytes(png, BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
    }

    private static void addPoints(XYChart chart, String name, float[] v, int d, Color color) {
        int n = v.length / d;
        double[] xs = new double[n];
        double[] ys = new double[n];
        for (int i = 0; i < n; i++) {
            xs[i] = v[i * d];
            ys[i] = d > 1 ? v[i * d + 1] : 0;
        }
        XYSeries s = chart.addSeries(name, xs, ys);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setMarkerColor(color);
    }
}
