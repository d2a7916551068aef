package org.diffusion4j.cli;

import org.diffusion4j.io.Csv;
import org.diffusion4j.io.FileFormatException;
import org.diffusion4j.io.ImageFolder;
import org.diffusion4j.io.Npy;
import org.diffusion4j.io.Standardization;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * What {@code sample --init} (and {@code --mask}) start from: {@code count} inputs in the model's data space
 * ({@code [count, ...sampleShape]} row-major; images in {@code [-1, 1]}, vectors standardised as in training) and,
 * for inpainting, a mask of the same size (1 = generate, 0 = keep; diffusers' convention). Sample {@code i} starts
 * from input {@code i mod count}.
 *
 * <ul>
 *   <li>Image models: {@code --init} is a PNG or JPEG (centre-cropped and resampled to the model's square images, as
 *       training folders are) or an NPY {@code [K, C, H, W]} / {@code [C, H, W]} in {@code [-1, 1]} (what
 *       {@code --save-raw} writes); {@code --mask} a PNG or JPEG resampled the same way, white = generate,
 *       black = keep, binarised at 50 % grey (as diffusers' inpainting pipelines do) and applied to every channel.</li>
 *   <li>Vector models: {@code --init} is a CSV or NPY of rows in the data's units (the model's standardisation is
 *       applied); empty, {@code NaN} or {@code NA} cells are the values to generate (imputation), so no
 *       {@code --mask} is needed. A CSV whose header names the model's features may hold one more column (e.g.
 *       the class labels), which is skipped.</li>
 * </ul>
 *
 * @param init  the inputs; 0 where a vector cell was missing
 * @param mask  null for image-to-image without inpainting
 * @param count number of inputs {@code K}
 * @param generated fraction of the mask's values that are generated (1 = generate; 0 without a mask)
 * @param source how the inputs were read, for the command's output
 */
record EditInput(float[] init, float[] mask, int count, double generated, String source) {

    /**
     * Reads {@code --init} (and {@code --mask}) for a model of samples {@code sampleShape} ({@code image}: its image
     * shape {@code [C, H, W]}, or null for vectors).
     *
     * @throws IllegalArgumentException naming the option, file and problem (wrong size, unreadable file, a mask
     *                                  for a vector model, a non-square model for an image file)
     */
    static EditInput read(Path initFile, Path maskFile, long[] sampleShape, long[] image,
                          Standardization scaling, List<String> featureNames) throws IOException {
        long per = 1;
        for (long d : sampleShape) {
            per *= d;
        }
        requireFile("--init", initFile);
        String name = lower(initFile);
        float[] init;
        int count;
        float[] mask = null;
        String source;
        if (image != null) {
            int c = Math.toIntExact(image[0]);
            int h = Math.toIntExact(image[1]);
            int w = Math.toIntExact(image[2]);
            if (name.endsWith(".npy")) {
                Npy.Array a = npy(initFile);
                init = a.values().clone();
                count = countOf("--init", initFile, a.shape(), per, image);
                source = initFile + " (" + count + " image" + (count == 1 ? "" : "s") + " from NPY)";
                requireFinite("--init", initFile, init);
            } else {
                requireSquare("--init", h, w);
                init = image("--init", initFile, h, c);
                count = 1;
                source = initFile + " (resampled to " + c + "x" + h + "x" + w + ")";
            }
            if (maskFile != null) {
                requireFile("--mask", maskFile);
                if (lower(maskFile).endsWith(".npy")) {
                    throw new IllegalArgumentException("--mask takes a PNG or JPEG (white = generate, black = keep), "
                            + "got " + maskFile);
                }
                requireSquare("--mask", h, w);
                float[] grey = image("--mask", maskFile, h, 1);
                mask = new float[Math.toIntExact(count * per)];
                int plane = h * w;
                for (int k = 0; k < count; k++) {
                    for (int ch = 0; ch < c; ch++) {
                        for (int p = 0; p < plane; p++) {
                            mask[(k * c + ch) * plane + p] = grey[p] >= 0f ? 1f : 0f;   // [-1, 1]: 50 % grey is 0
                        }
                    }
                }
            }
        } else {
            if (maskFile != null) {
                throw new IllegalArgumentException("--mask is for image models; for vectors leave the cells to generate"
                        + " empty (or NaN) in --init");
            }
            int d = Math.toIntExact(per);
            if (name.endsWith(".npy")) {
                Npy.Array a = npy(initFile);
                init = a.values().clone();
                count = countOf("--init", initFile, a.shape(), per, null);
                source = initFile + " (" + count + " row" + (count == 1 ? "" : "s") + " from NPY)";
            } else if (name.endsWith(".csv") || name.endsWith(".txt")) {
                Csv.Table t = readCsv(initFile, d, featureNames);
                init = t.values();
                count = t.rows();
                source = initFile + " (" + count + " row" + (count == 1 ? "" : "s") + ")";
            } else {
                throw new IllegalArgumentException("--init for a vector model takes a .csv or .npy file of rows, got "
                        + initFile);
            }
            for (int i = 0; i < init.length; i++) {
                if (Float.isInfinite(init[i])) {
                    throw new IllegalArgumentException("--init: " + initFile + " row " + (i / d + 1) + ", feature "
                            + (i % d + 1) + " is infinite");
                }
            }
            boolean anyMissing = false;
            float[] m = new float[init.length];
            for (int i = 0; i < init.length; i++) {
                if (Float.isNaN(init[i])) {
                    m[i] = 1f;
                    anyMissing = true;
                }
            }
            if (scaling != null) {
                scaling.standardize(init);                       // NaN stays NaN
            }
            if (anyMissing) {
                mask = m;
                for (int i = 0; i < init.length; i++) {
                    if (Float.isNaN(init[i])) {
                        init[i] = 0f;                            // any finite value: generated, never read as kept
                    }
                }
                for (int r = 0; r < count; r++) {
                    boolean all = true;
                    for (int j = 0; j < d && all; j++) {
                        all = m[r * d + j] == 1f;
                    }
                    if (all && d > 0) {
                        source += "; note: row " + (r + 1) + " has no known value (it is sampled freely)";
                        break;
                    }
                }
            }
        }
        if (count < 1) {
            throw new IllegalArgumentException("--init: " + initFile + " holds no input");
        }
        double generated = 0;
        if (mask != null) {
            for (float v : mask) {
                generated += v;
            }
            generated /= mask.length;
        }
        return new EditInput(init, mask, count, generated, source);
    }

    /** The inputs for samples {@code from … from + n − 1} (input {@code i mod count}), {@code n × per} values. */
    float[] rows(float[] values, int from, int n) {
        int per = values.length / count;
        float[] out = new float[n * per];
        for (int i = 0; i < n; i++) {
            System.arraycopy(values, Math.floorMod(from + i, count) * per, out, i * per, per);
        }
        return out;
    }

    private static Npy.Array npy(Path file) throws IOException {
        try {
            return Npy.read(file);
        } catch (FileFormatException e) {
            throw new IllegalArgumentException("--init: " + e.getMessage(), e);
        }
    }

    private static float[] image(String option, Path file, int resolution, int channels) throws IOException {
        try {
            return ImageFolder.loadImage(file, resolution, channels);
        } catch (FileFormatException e) {
            throw new IllegalArgumentException(option + ": " + e.getMessage(), e);
        }
    }

    /**
     * The number of inputs {@code K} of an NPY of shape {@code shape}: images {@code [K, C, H, W]} or {@code [C, H, W]}
     * (grey models also {@code [K, H, W]} and {@code [H, W]}); vectors {@code [K, D]} or {@code [D]}.
     */
    private static int countOf(String option, Path file, long[] shape, long per, long[] image) {
        long[] sample = image != null ? image : new long[] {per};
        java.util.List<long[]> one = new ArrayList<>();
        one.add(sample);
        if (image != null && image[0] == 1) {
            one.add(new long[] {image[1], image[2]});
        }
        for (long[] s : one) {
            if (Arrays.equals(shape, s)) {
                return 1;
            }
            if (shape.length == s.length + 1 && Arrays.equals(Arrays.copyOfRange(shape, 1, shape.length), s)) {
                if (shape[0] < 1) {
                    throw new IllegalArgumentException(option + ": " + file + " holds no input (shape "
                            + Arrays.toString(shape) + ")");
                }
                return Math.toIntExact(shape[0]);
            }
        }
        throw new IllegalArgumentException(option + ": " + file + " has shape " + Arrays.toString(shape) + "; the "
                + "model's samples are " + Arrays.toString(sample) + ", so it needs [K, "
                + Arrays.toString(sample).substring(1));
    }

    private static Csv.Table readCsv(Path file, int d, List<String> featureNames) throws IOException {
        List<String> header = Csv.featureNames(file, Csv.Header.AUTO, null);
        String ignored = null;
        if (!header.isEmpty() && !featureNames.isEmpty() && header.size() == d + 1
                && header.containsAll(featureNames)) {
            List<String> extra = new ArrayList<>(header);
            extra.removeAll(featureNames);
            if (extra.size() == 1) {
                ignored = extra.get(0);
            }
        }
        Csv.Table t;
        try {
            t = Csv.readWithMissing(file, Csv.Header.AUTO, ignored);
        } catch (FileFormatException e) {
            throw new IllegalArgumentException("--init: " + e.getMessage(), e);
        }
        if (t.cols() != d) {
            throw new IllegalArgumentException("--init: " + file + " has " + t.cols() + " columns " + t.columns()
                    + "; the model has " + d + " features" + (featureNames.isEmpty() ? "" : " " + featureNames));
        }
        if (!header.isEmpty() && !featureNames.isEmpty() && !t.columns().equals(featureNames)) {
            throw new IllegalArgumentException("--init: " + file + " has columns " + t.columns() + "; the model's "
                    + "features are " + featureNames + " (same names, same order)");
        }
        return t;
    }

    private static void requireFile(String option, Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(option + ": " + file + (Files.exists(file) ? " is not a file"
                    : " does not exist"));
        }
    }

    private static void requireSquare(String option, int h, int w) {
        if (h != w) {
            throw new IllegalArgumentException(option + ": the model's images are " + h + "x" + w + ", not square; "
                    + "an image file is centre-cropped to a square, so give --init as an NPY [K, C, " + h + ", " + w
                    + "] instead" + (option.equals("--mask") ? " (and inpaint through the library)" : ""));
        }
    }

    private static void requireFinite(String option, Path file, float[] v) {
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new IllegalArgumentException(option + ": " + file + " holds " + v[i] + " at flat index " + i
                        + "; images must be finite (in [-1, 1])");
            }
        }
    }

    private static String lower(Path p) {
        return p.getFileName().toString().toLowerCase(Locale.ROOT);
    }
}
