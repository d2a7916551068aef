package org.diffusion4j.io;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * Tiles a batch of images {@code [N, C, H, W]} (C = 1 grey or 3 RGB, values in {@code [-1, 1]}) into one
 * grid picture and writes it as PNG, atomically ({@link AtomicFiles}).
 *
 * <p>Layout as torchvision's {@code make_grid}: {@code columns} images a row, {@code ceil(N / columns)} rows,
 * {@code padding} pixels of {@code padValue} around and between the tiles, so the picture is
 * {@code rows·(H + p) + p} by {@code columns·(W + p) + p}. A value {@code x} becomes the 8-bit
 * {@code clamp(floor((x + 1) / 2 · 255 + 0.5), 0, 255)} (torchvision's {@code save_image} rounding of
 * {@code (x + 1) / 2}); NaN becomes 0.
 */
public final class ImageGrid {

    private ImageGrid() {
    }

    /** Columns for {@code n} images when none are given: {@code ceil(sqrt(n))}. */
    public static int defaultColumns(int n) {
        return Math.max(1, (int) Math.ceil(Math.sqrt(n)));
    }

    /**
     * Renders the grid.
     *
     * @param values   {@code N·C·H·W} values, row-major {@code [N, C, H, W]}
     * @param shape    {@code {N, C, H, W}} (or {@code {N, H, W}}, read as C = 1)
     * @param columns  images per row, {@code >= 1}
     * @param padding  pixels between and around tiles, {@code >= 0}
     * @param padValue the padding's value in {@code [-1, 1]} (−1 black, 1 white)
     * @throws IllegalArgumentException naming the bad argument
     */
    public static BufferedImage render(float[] values, long[] shape, int columns, int padding, float padValue) {
        Objects.requireNonNull(values, "values");
        long[] s = shape.length == 3 ? new long[] {shape[0], 1, shape[1], shape[2]} : shape.clone();
        if (s.length != 4) {
            throw new IllegalArgumentException("images must be [N, C, H, W] or [N, H, W], got " + Arrays.toString(shape));
        }
        long n = s[0];
        long c = s[1];
        long h = s[2];
        long w = s[3];
        if (c != 1 && c != 3) {
            throw new IllegalArgumentException("images need 1 or 3 channels, got C = " + c + " in " + Arrays.toString(shape));
        }
        if (n < 1 || h < 1 || w < 1) {
            throw new IllegalArgumentException("no pixels to draw in images of shape " + Arrays.toString(shape));
        }
        if (n * c * h * w != values.length) {
            throw new IllegalArgumentException(values.length + " values for images of shape " + Arrays.toString(shape));
        }
        if (columns < 1) {
            throw new IllegalArgumentException("columns must be >= 1, got " + columns);
        }
        if (padding < 0) {
            throw new IllegalArgumentException("padding must be >= 0, got " + padding);
        }
        checkSize(n, h, w, columns, padding, 1);
        long cols = Math.min(columns, n);
        long rows = (n + cols - 1) / cols;
        long width = cols * (w + padding) + padding;
        long height = rows * (h + padding) + padding;
        BufferedImage img = new BufferedImage((int) width, (int) height,
                c == 1 ? BufferedImage.TYPE_BYTE_GRAY : BufferedImage.TYPE_3BYTE_BGR);
        WritableRaster r = img.getRaster();
        int pad = toByte(padValue);
        int bands = (int) c;
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                for (int b = 0; b < bands; b++) {
                    r.setSample(x, y, b, pad);
                }
            }
        }
        for (int i = 0; i < n; i++) {
            int x0 = (int) ((i % cols) * (w + padding) + padding);
            int y0 = (int) ((i / cols) * (h + padding) + padding);
            for (int b = 0; b < bands; b++) {
                long base = ((long) i * c + b) * h * w;
                for (int y = 0; y < h; y++) {
                    for (int x = 0; x < w; x++) {
                        r.setSample(x0 + x, y0 + y, b, toByte(values[(int) (base + y * w + x)]));
                    }
                }
            }
        }
        return img;
    }

    /**
     * Renders the F32 tensor {@code images [N, C, H, W]} (any backend) and writes it to {@code file} as PNG,
     * atomically.
     *
     * @throws IllegalArgumentException when the tensor is not F32, or as {@link #render} for its shape, columns or
     *                                  padding
     * @throws IOException              when the file cannot be written (nothing is left at {@code file} then)
     */
    public static void write(Path file, Tensor images, int columns, int padding) throws IOException {
        Objects.requireNonNull(images, "images");
        if (images.dtype() != DType.F32) {
            throw new IllegalArgumentException("images " + images + " must be F32, is " + images.dtype());
        }
        write(file, images.toFloatArray(), images.shape(), columns, padding, -1f);
    }

    /**
     * Checks that a grid of {@code n} images of {@code h × w} pixels, {@code columns} per row, {@code padding} pixels
     * apart, drawn {@code zoom} times larger, fits a PNG this class writes (at most 65535 pixels a side and
     * {@code 2^28} pixels); callers check before expensive work, {@link #render} and {@link #zoom} check again.
     *
     * @throws IllegalArgumentException naming the grid's size when it is too large
     */
    public static void checkSize(long n, long h, long w, int columns, int padding, int zoom) {
        long cols = Math.max(1, Math.min(columns, n));
        long rows = (n + cols - 1) / cols;
        long width = (cols * (w + padding) + padding) * zoom;
        long height = (rows * (h + padding) + padding) * zoom;
        if (width > 65_535 || height > 65_535 || width * height > (1L << 28)) {
            throw new IllegalArgumentException("grid of " + width + " x " + height + " pixels"
                    + (zoom > 1 ? " (zoom " + zoom + ")" : "") + " is too large (at most 65535 a side and 2^28 in all)");
        }
    }

    /**
     * {@code img} enlarged {@code zoom} times, each pixel drawn as a {@code zoom × zoom} square (nearest neighbour:
     * no new values); {@code img} itself for {@code zoom = 1}.
     *
     * @throws IllegalArgumentException when {@code zoom} is not in {@code [1, 64]} or the result is too large
     */
    public static BufferedImage zoom(BufferedImage img, int zoom) {
        Objects.requireNonNull(img, "img");
        if (zoom < 1 || zoom > 64) {
            throw new IllegalArgumentException("zoom must be in [1, 64], got " + zoom);
        }
        if (zoom == 1) {
            return img;
        }
        long width = (long) img.getWidth() * zoom;
        long height = (long) img.getHeight() * zoom;
        if (width > 65_535 || height > 65_535 || width * height > (1L << 28)) {
            throw new IllegalArgumentException("grid of " + width + " x " + height + " pixels (zoom " + zoom
                    + ") is too large");
        }
        BufferedImage out = new BufferedImage((int) width, (int) height, img.getType());
        WritableRaster src = img.getRaster();
        WritableRaster dst = out.getRaster();
        int bands = src.getNumBands();
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                for (int b = 0; b < bands; b++) {
                    dst.setSample(x, y, b, src.getSample(x / zoom, y / zoom, b));
                }
            }
        }
        return out;
    }

    /**
     * Renders the grid ({@link #render}) and writes it to {@code file} as PNG, atomically.
     *
     * @throws IllegalArgumentException as {@link #render}
     * @throws IOException              when the file cannot be written (nothing is left at {@code file} then)
     */
    public static void write(Path file, float[] values, long[] shape, int columns, int padding, float padValue)
            throws IOException {
        Objects.requireNonNull(file, "file");
        BufferedImage img = render(values, shape, columns, padding, padValue);
        writePng(file, img);
    }

    /** Writes any picture as PNG, atomically. */
    public static void writePng(Path file, BufferedImage img) throws IOException {
        AtomicFiles.writeStream(file, out -> {
            if (!ImageIO.write(img, "png", out)) {
                throw new IOException("no PNG writer for an image of type " + img.getType());
            }
        });
    }

    /** {@code x ∈ [-1, 1]} to {@code clamp(floor((x + 1) / 2 · 255 + 0.5), 0, 255)}; NaN to 0. */
    static int toByte(float x) {
        if (Float.isNaN(x)) {
            return 0;
        }
        double v = Math.floor((x + 1.0) / 2.0 * 255.0 + 0.5);
        return (int) Math.clamp(v, 0.0, 255.0);
    }
}
