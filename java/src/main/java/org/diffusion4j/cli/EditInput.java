package org.diffusion4j.cli;

import org.diffusion4j.io.Csv;
import org.diffusion4j.io.FileFormatException;
import org.diffusion4j.io.ImageFolder;
import org.diffusion4j.io.Npy;
import org.diffusion4j.io.Standardization;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
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
 *       {@code --save-raw} writes; uint8 NPY pixels are scaled from 0..255 as training data is); {@code --mask} a
 *       PNG or JPEG resampled the same way, white = generate, black = keep, binarised at 50 % grey (as diffusers'
 *       inpainting pipelines do) and applied to every channel.</li>
 *   <li>Vector models: {@code --init} is a CSV or NPY of rows in the data's units (the model's standardisation is
 *       applied); empty, {@code NaN} or {@code NA} cells are the values to generate (imputation), so no
 *       {@code --mask} is needed. A CSV whose header names the model's features may hold one more column: the class
 *       of each row when its values are the model's class names (or indices), else skipped.</li>
 * </ul>
 *
 * @param init      the inputs; 0 where a vector cell was missing
 * @param mask      null for image-to-image without inpainting
 * @param count     number of inputs {@code K}
 * @param generated fraction of the mask's values that are generated (1 = generate; 0 without a mask)
 * @param kept      for vector inputs, the values as read (before standardisation; NaN where missing), which the
 *                  samples get back exactly where they are kept; null for images
 * @param labels    the class of each input from a CSV label column ({@code -1}: an empty cell), or null
 * @param source    how the inputs were read, for the command's output
 * @param notes     things the user should know (ignored columns, a mask that keeps everything, size mismatches)
 */
record EditInput(float[] init, float[] mask, int count, double generated, float[] kept, int[] labels, String source,
                 List<String> notes) {

    /** The model an input is read for. */
    record Target(long[] sampleShape, long[] image, Standardization scaling, List<String> featureNames,
                  List<String> classNames, int numClasses) {
    }

    /**
     * Reads {@code --init} (and {@code --mask}) for {@code model}.
     *
     * @throws IllegalArgumentException naming the option, file and problem (wrong size, unreadable file, a mask
     *                                  for a vector model, a non-square model for an image file, values out of range)
     */
    static EditInput read(Path initFile, Path maskFile, Target model) throws IOException {
        long per = 1;
        for (long d : model.sampleShape()) {
            per *= d;
        }
        requireFile("--init", initFile);
        return model.image() != null ? readImages(initFile, maskFile, model.image(), per)
                : readRows(initFile, maskFile, model, Math.toIntExact(per));
    }

    private static EditInput readImages(Path initFile, Path maskFile, long[] image, long per) throws IOException {
        int c = Math.toIntExact(image[0]);
        int h = Math.toIntExact(image[1]);
        int w = Math.toIntExact(image[2]);
        List<String> notes = new ArrayList<>();
        String name = lower(initFile);
        float[] init;
        int count;
        String source;
        int[] initSize = null;
        if (name.endsWith(".npy")) {
            Npy.Array a = npy(initFile);
            init = a.values().clone();
            count = countOf("--init", initFile, a.shape(), per, image);
            if (a.descr().endsWith("u1")) {
                for (int i = 0; i < init.length; i++) {
                    init[i] = (float) (init[i] / 127.5 - 1.0);       // 0..255 pixels, as training data is scaled
                }
            }
            requireImageRange(initFile, init);
            source = initFile + " (" + count + " image" + (count == 1 ? "" : "s") + " from NPY"
                    + (a.descr().endsWith("u1") ? ", uint8 scaled to [-1, 1]" : "") + ")";
        } else if (isImageFile(name)) {
            requireSquare("--init", h, w);
            initSize = pixelSize("--init", initFile);
            init = image("--init", initFile, h, c);
            count = 1;
            source = initFile + " (" + initSize[0] + "x" + initSize[1]
                    + (initSize[0] == w && initSize[1] == h ? "" : ", centre-cropped and resampled to " + w + "x" + h)
                    + ")";
        } else {
            throw new IllegalArgumentException("--init for an image model takes a PNG, JPEG or NPY file, got "
                    + initFile);
        }
        float[] mask = null;
        if (maskFile != null) {
            requireFile("--mask", maskFile);
            if (!isImageFile(lower(maskFile))) {
                throw new IllegalArgumentException("--mask takes a PNG or JPEG (white = generate, black = keep), got "
                        + maskFile);
            }
            requireSquare("--mask", h, w);
            int[] maskSize = pixelSize("--mask", maskFile);
            if (initSize != null && !Arrays.equals(initSize, maskSize)) {
                notes.add("the mask is " + maskSize[0] + "x" + maskSize[1] + " pixels, --init " + initSize[0] + "x"
                        + initSize[1] + ": each is centre-cropped to a square and resampled to " + w + "x" + h
                        + " on its own, so check that they line up");
            } else if (initSize == null && maskSize[0] != maskSize[1]) {
                notes.add("the mask is " + maskSize[0] + "x" + maskSize[1] + " pixels: it is centre-cropped to a "
                        + "square before resampling to " + w + "x" + h);
            }
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
        return finish(init, mask, count, null, null, source, notes);
    }

    private static EditInput readRows(Path initFile, Path maskFile, Target model, int d) throws IOException {
        if (maskFile != null) {
            throw new IllegalArgumentException("--mask is for image models; for vectors leave the cells to generate"
                    + " empty (or NaN) in --init");
        }
        List<String> notes = new ArrayList<>();
        String name = lower(initFile);
        float[] init;
        int count;
        int[] labels = null;
        String source;
        if (name.endsWith(".npy")) {
            Npy.Array a = npy(initFile);
            init = a.values().clone();
            count = countOf("--init", initFile, a.shape(), d, null);
            source = initFile + " (" + count + " row" + (count == 1 ? "" : "s") + " from NPY)";
        } else if (name.endsWith(".csv") || name.endsWith(".txt")) {
            Csv.Rows rows = readCsv(initFile, d, model.featureNames());
            init = rows.table().values();
            count = rows.table().rows();
            source = initFile + " (" + count + " row" + (count == 1 ? "" : "s") + ")";
            if (rows.labelColumn() != null) {
                labels = classesOf(initFile, rows, model, notes);
            }
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
        float[] kept = init.clone();
        float[] m = new float[init.length];
        boolean anyMissing = false;
        for (int i = 0; i < init.length; i++) {
            if (Float.isNaN(init[i])) {
                m[i] = 1f;
                anyMissing = true;
            }
        }
        if (model.scaling() != null) {
            model.scaling().standardize(init);                  // NaN stays NaN
        }
        float[] mask = null;
        if (anyMissing) {
            mask = m;
            for (int i = 0; i < init.length; i++) {
                if (Float.isNaN(init[i])) {
                    init[i] = 0f;                                // any finite value: generated, never read as kept
                }
            }
            for (int r = 0; r < count; r++) {
                boolean all = true;
                for (int j = 0; j < d && all; j++) {
                    all = m[r * d + j] == 1f;
                }
                if (all) {
                    notes.add("row " + (r + 1) + " of --init has no known value: it is sampled freely");
                    break;
                }
            }
        }
        return finish(init, mask, count, kept, labels, source, notes);
    }

    private static EditInput finish(float[] init, float[] mask, int count, float[] kept, int[] labels, String source,
                                    List<String> notes) {
        if (count < 1) {
            throw new IllegalArgumentException("--init holds no input");
        }
        double generated = 0;
        if (mask != null) {
            for (float v : mask) {
                generated += v;
            }
            generated /= mask.length;
            if (generated == 0) {
                notes.add("the mask keeps every value: the samples will be the input itself (white marks what to "
                        + "generate)");
            }
        }
        return new EditInput(init, mask, count, generated, kept, labels, source, List.copyOf(notes));
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

    /**
     * Puts the kept values of vector inputs back into {@code samples} (in the data's units, after the standardisation
     * was undone) exactly as they were read: {@code (v − μ)/s·s + μ} is not always {@code v} in float arithmetic.
     */
    void restoreKept(float[] samples) {
        if (kept == null || mask == null) {
            return;
        }
        int per = kept.length / count;
        for (int i = 0; i < samples.length; i++) {
            int src = Math.floorMod(i / per, count) * per + i % per;
            if (mask[src] == 0f) {
                samples[i] = kept[src];
            }
        }
    }

    /** The class index of each CSV row's label: a class name of the model (or an index); null to skip the column. */
    private static int[] classesOf(Path file, Csv.Rows rows, Target model, List<String> notes) {
        String column = rows.labelColumn();
        if (model.numClasses() == 0) {
            notes.add("column '" + column + "' of --init is not used (the model is unconditional)");
            return null;
        }
        int[] out = new int[rows.labels().size()];
        int empty = 0;
        for (int r = 0; r < out.length; r++) {
            String v = rows.labels().get(r);
            if (v.isEmpty()) {
                out[r] = -1;                                     // unknown: the null class
                empty++;
                continue;
            }
            int idx = model.classNames().indexOf(v);
            if (idx < 0 && v.matches("\\d{1,9}") && model.classNames().isEmpty()) {
                idx = Integer.parseInt(v);
            }
            if (idx < 0 || idx >= model.numClasses()) {
                throw new IllegalArgumentException("--init: " + file + " row " + (r + 1) + " has class "
                        + DataLoading.showName(v) + " in column '" + column + "', not one of the model's classes "
                        + DataLoading.listNames(model.classNames(), 10, false) + " (leave the cell empty for no "
                        + "class, or use --class)");
            }
            out[r] = idx;
        }
        notes.add("each sample has the class of its --init row (column '" + column + "'"
                + (empty > 0 ? "; " + empty + " empty cell" + (empty == 1 ? "" : "s") + ": no class, the "
                + "unconditional model" : "") + "); --class overrides it");
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

    /** Width and height from the image's header (no decoding). */
    private static int[] pixelSize(String option, Path file) throws IOException {
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
            if (readers == null || !readers.hasNext()) {
                throw new IllegalArgumentException(option + ": " + file + " is not a PNG or JPEG image");
            }
            ImageReader r = readers.next();
            try {
                r.setInput(in, true, true);
                return new int[] {r.getWidth(0), r.getHeight(0)};
            } catch (IOException | RuntimeException e) {
                throw new IllegalArgumentException(option + ": " + file + " cannot be read as an image ("
                        + e.getMessage() + ")");
            } finally {
                r.dispose();
            }
        }
    }

    /**
     * The number of inputs {@code K} of an NPY of shape {@code shape}: images {@code [K, C, H, W]} or {@code [C, H, W]}
     * (grey models also {@code [K, H, W]} and {@code [H, W]}); vectors {@code [K, D]} or {@code [D]}.
     */
    private static int countOf(String option, Path file, long[] shape, long per, long[] image) {
        long[] sample = image != null ? image : new long[] {per};
        List<long[]> one = new ArrayList<>();
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

    private static Csv.Rows readCsv(Path file, int d, List<String> featureNames) throws IOException {
        List<String> header;
        Csv.Header mode = Csv.Header.AUTO;
        try {
            header = Csv.featureNames(file, Csv.Header.AUTO, null);
        } catch (FileFormatException e) {
            throw new IllegalArgumentException("--init: " + e.getMessage(), e);
        }
        if (!header.isEmpty() && header.stream().allMatch(h -> h.isEmpty() || h.equalsIgnoreCase("nan")
                || h.equalsIgnoreCase("na"))) {
            header = List.of();                                  // a first row of missing cells is data, not names
            mode = Csv.Header.ABSENT;
        }
        String extra = null;
        if (!header.isEmpty() && !featureNames.isEmpty() && header.containsAll(featureNames)
                && header.size() > featureNames.size()) {
            List<String> others = new ArrayList<>(header);
            others.removeAll(featureNames);
            if (others.size() != 1) {
                throw new IllegalArgumentException("--init: " + file + " has " + others.size() + " columns besides the "
                        + "model's features " + featureNames + ": " + others + " (at most one, e.g. the class labels)");
            }
            extra = others.get(0);
        }
        Csv.Rows rows;
        try {
            rows = Csv.readWithMissing(file, mode, extra);
        } catch (FileFormatException e) {
            throw new IllegalArgumentException("--init: " + e.getMessage(), e);
        }
        Csv.Table t = rows.table();
        if (t.cols() != d) {
            throw new IllegalArgumentException("--init: " + file + " has " + t.cols() + " columns " + t.columns()
                    + "; the model has " + d + " features" + (featureNames.isEmpty() ? "" : " " + featureNames));
        }
        if (!header.isEmpty() && !featureNames.isEmpty() && !t.columns().equals(featureNames)) {
            throw new IllegalArgumentException("--init: " + file + " has columns " + t.columns() + "; the model's "
                    + "features are " + featureNames + " (same names, same order)");
        }
        return rows;
    }

    private static boolean isImageFile(String lowerName) {
        return lowerName.endsWith(".png") || lowerName.endsWith(".jpg") || lowerName.endsWith(".jpeg");
    }

    /** @throws IllegalArgumentException naming {@code option} when {@code file} is missing or not a regular file */
    static void requireFile(String option, Path file) {
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

    /**
     * Image inputs are in {@code [-1, 1]}; samples written by {@code --save-raw} overshoot it (those of a barely
     * trained model by far), so up to {@code |v| ≤ 8} is taken; beyond that the file is in another scale (e.g. float
     * pixels 0..255).
     */
    private static void requireImageRange(Path file, float[] v) {
        for (int i = 0; i < v.length; i++) {
            if (!(Math.abs(v[i]) <= 8f)) {
                throw new IllegalArgumentException("--init: " + file + " holds " + v[i] + " at flat index " + i
                        + "; image inputs are in [-1, 1] (pixels 0..255 map to v/127.5 - 1; uint8 NPY files are "
                        + "scaled so)");
            }
        }
    }

    private static String lower(Path p) {
        return p.getFileName().toString().toLowerCase(Locale.ROOT);
    }
}
