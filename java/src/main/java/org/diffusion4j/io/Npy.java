package org.diffusion4j.io;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * NumPy's {@code .npy} format (NumPy Enhancement Proposal 1, "A simple file format for NumPy arrays", and
 * {@code numpy/lib/format.py}):
 *
 * <pre>
 * "\x93NUMPY" major minor             magic and version: 1.0, 2.0 (or 3.0: UTF-8 header)
 * HEADER_LEN                          u16 little-endian (1.0) or u32 (2.0, 3.0)
 * HEADER                              a Python dict literal, padded with spaces and ending in '\n':
 *                                     {'descr': '&lt;f4', 'fortran_order': False, 'shape': (N, D), }
 * data                                the elements, C order
 * </pre>
 *
 * <p>Reads {@code descr} {@code '<f4'}, {@code '<f8'}, {@code '<i4'}, {@code '<i8'} (NumPy's and PyTorch's
 * default integers), {@code '|u1'} (and {@code '>f4'}, {@code '>f8'}, {@code '>i4'}, {@code '>i8'}, {@code '<u1'})
 * in C order into floats ({@code f8}, {@code i4} and {@code i8} beyond {@code 2^24} rounded to nearest). {@code fortran_order: True},
 * structured and other dtypes are refused with a {@link FileFormatException}, as are headers longer than
 * {@link #MAX_HEADER_BYTES} (NumPy's own default {@code max_header_size}), a malformed dict, missing or extra
 * keys, truncated data and bytes after the data. Writes {@code '<f4'} (and, for labels, {@code '<i4'}) C-order arrays, version 1.0 (2.0 when
 * the header does not fit 65535 bytes), the header padded so the data start at a multiple of 64 bytes
 * ({@code ARRAY_ALIGN} in {@code format.py}), atomically.
 */
public final class Npy {

    /** The longest header read: 10000 bytes, {@code numpy.lib.format._MAX_HEADER_SIZE}. */
    public static final int MAX_HEADER_BYTES = 10_000;

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};

    /**
     * An array read from an {@code .npy} file.
     *
     * @param descr  the stored dtype descriptor, e.g. {@code "<f4"}
     * @param shape  the dims (rank 0 for a scalar)
     * @param values the elements in C order, as floats
     */
    public record Array(String descr, long[] shape, float[] values) {

        /**
         * Copies {@code shape}; {@code values} is taken as is.
         *
         * @throws NullPointerException when {@code descr} or {@code shape} is null
         */
        public Array {
            Objects.requireNonNull(descr, "descr");
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Array a && descr.equals(a.descr) && Arrays.equals(shape, a.shape)
                    && Arrays.equals(values, a.values);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * descr.hashCode() + Arrays.hashCode(shape)) + Arrays.hashCode(values);
        }

        @Override
        public String toString() {
            return "Npy.Array[" + descr + " " + Arrays.toString(shape) + "]";
        }
    }

    private Npy() {
    }

    // ---------------------------------------------------------------- read

    /**
     * Reads an {@code .npy} file.
     *
     * @throws FileFormatException naming the file and the problem (see the class comment)
     * @throws java.nio.file.NoSuchFileException when the file does not exist
     */
    public static Array read(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        long fileSize = Files.size(file);
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
            byte[] pre = in.readNBytes(8);
            if (pre.length < 8 || !Arrays.equals(Arrays.copyOf(pre, 6), MAGIC)) {
                throw new FileFormatException(file, "not an .npy file: it does not start with \\x93NUMPY");
            }
            int major = Byte.toUnsignedInt(pre[6]);
            int minor = Byte.toUnsignedInt(pre[7]);
            if (major < 1 || major > 3 || minor != 0) {
                throw new FileFormatException(file, "unsupported .npy format version " + major + "." + minor
                        + " (1.0, 2.0 and 3.0 are known)");
            }
            int lenBytes = major == 1 ? 2 : 4;
            byte[] lb = in.readNBytes(lenBytes);
            if (lb.length < lenBytes) {
                throw new FileFormatException(file, "truncated: the file ends inside the header length");
            }
            ByteBuffer lbb = ByteBuffer.wrap(lb).order(ByteOrder.LITTLE_ENDIAN);
            long headerLen = major == 1 ? Short.toUnsignedInt(lbb.getShort()) : Integer.toUnsignedLong(lbb.getInt());
            if (headerLen > MAX_HEADER_BYTES) {
                throw new FileFormatException(file, "header length " + headerLen + " exceeds " + MAX_HEADER_BYTES
                        + " bytes (NumPy's default max_header_size)");
            }
            byte[] hb = in.readNBytes((int) headerLen);
            if (hb.length < headerLen) {
                throw new FileFormatException(file, "truncated: the header length is " + headerLen
                        + " bytes but only " + hb.length + " follow");
            }
            String header = new String(hb, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            Map<String, Object> dict = new HeaderParser(file, header).parse();
            if (!dict.keySet().equals(java.util.Set.of("descr", "fortran_order", "shape"))) {
                throw new FileFormatException(file, "header keys are " + dict.keySet()
                        + "; expected exactly descr, fortran_order, shape");
            }
            if (!(dict.get("descr") instanceof String descr)) {
                throw new FileFormatException(file, "descr " + dict.get("descr")
                        + " is not a simple dtype string (structured dtypes are not supported)");
            }
            if (!(dict.get("fortran_order") instanceof Boolean fortran)) {
                throw new FileFormatException(file, "fortran_order must be True or False, is " + dict.get("fortran_order"));
            }
            if (!(dict.get("shape") instanceof long[] shape)) {
                throw new FileFormatException(file, "shape must be a tuple of integers, is " + dict.get("shape"));
            }
            if (fortran) {
                throw new FileFormatException(file, "fortran_order is True (column-major data); save the array in C "
                        + "order, e.g. numpy.save(f, numpy.ascontiguousarray(a))");
            }
            int itemBytes;
            ByteOrder order;
            switch (descr) {
                case "<f4", ">f4" -> itemBytes = 4;
                case "<f8", ">f8" -> itemBytes = 8;
                case "|u1", "<u1", ">u1" -> itemBytes = 1;
                case "<i4", ">i4" -> itemBytes = 4;
                case "<i8", ">i8" -> itemBytes = 8;
                default -> throw new FileFormatException(file, "dtype '" + descr
                        + "' is not supported; use '<f4', '<f8', '<i4', '<i8' or '|u1'");
            }
            order = descr.charAt(0) == '>' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
            long count = 1;
            for (long d : shape) {
                if (d < 0) {
                    throw new FileFormatException(file, "shape " + Arrays.toString(shape) + " has a negative dim");
                }
                count = d == 0 || count == 0 ? 0 : (count > Idx.MAX_BYTES / d ? Idx.MAX_BYTES + 1 : count * d);
            }
            if (count > Idx.MAX_BYTES / itemBytes || count > Integer.MAX_VALUE - 8) {
                throw new FileFormatException(file, "shape " + Arrays.toString(shape) + " is too large to load");
            }
            long dataStart = 8 + lenBytes + headerLen;
            long dataBytes = count * itemBytes;
            if (fileSize - dataStart != dataBytes) {
                throw new FileFormatException(file, (fileSize - dataStart < dataBytes ? "truncated: " : "")
                        + "the header (" + descr + " " + Arrays.toString(shape) + ") promises " + dataBytes
                        + " data bytes, the file holds " + (fileSize - dataStart));
            }
            byte[] data = in.readNBytes((int) dataBytes);
            if (data.length != dataBytes) {
                throw new FileFormatException(file, "truncated while reading: " + data.length + " of " + dataBytes
                        + " data bytes");
            }
            float[] values = new float[(int) count];
            ByteBuffer b = ByteBuffer.wrap(data).order(order);
            boolean integer = descr.charAt(1) == 'i';
            for (int i = 0; i < values.length; i++) {
                values[i] = switch (itemBytes) {
                    case 1 -> Byte.toUnsignedInt(data[i]);
                    case 4 -> integer ? (float) b.getInt(i * 4) : b.getFloat(i * 4);
                    default -> integer ? (float) b.getLong(i * 8) : (float) b.getDouble(i * 8);
                };
            }
            return new Array(descr, shape, values);
        }
    }

    /**
     * Loads an {@code .npy} array as a dataset: {@code shape[0]} samples of shape {@code shape[1:]} (a rank-1 array is
     * {@code N} samples of shape {@code [1]}). Class labels come from {@code x.labels.npy} beside {@code x.npy} when
     * it exists ({@code N} non-negative integers, as {@code diffusion4j sample --save-raw x.npy} writes them), their
     * names from {@code x.classes.json} (a JSON list of strings) when that exists too; without them the dataset is
     * unlabelled.
     *
     * @throws FileFormatException naming the file and the element (sample and position) when a value is NaN or
     *                             infinite, or when the array is a scalar or has no samples; naming the labels file
     *                             when it holds other than {@code N} labels, a label that is not a class index, or
     *                             (the names file) no JSON list of names for every label
     */
    public static Dataset load(Path file) throws IOException {
        return dataset(file, read(file));
    }

    /**
     * {@link #load} of an array already read from {@code file} (an {@code .npy}, or an IDX file read as the same
     * record): the same checks, and the labels beside {@code file}.
     *
     * @throws FileFormatException as {@link #load}
     */
    public static Dataset dataset(Path file, Array a) throws IOException {
        long[] s = a.shape();
        if (s.length == 0) {
            throw new FileFormatException(file, "holds a scalar; a dataset needs an array [N, ...]");
        }
        if (s[0] == 0) {
            throw new FileFormatException(file, "holds no samples (shape " + Arrays.toString(s) + ")");
        }
        long[] sample = s.length == 1 ? new long[] {1} : Arrays.copyOfRange(s, 1, s.length);
        long per = 1;
        for (long d : sample) {
            per *= d;
        }
        if (per == 0) {
            throw new FileFormatException(file, "samples of shape " + Arrays.toString(sample) + " are empty");
        }
        float[] v = a.values();
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new FileFormatException(file, "element " + (i % per) + " of sample " + (i / per) + " is "
                        + v[i] + (Float.isInfinite(v[i]) ? " (infinite, or beyond float32's range of +-3.4e38)" : "")
                        + "; data must be finite");
            }
        }
        return withLabelsBeside(file, v, sample);
    }

    /**
     * {@code Dataset.of(values, sample, labels, names)} with the labels of {@code x.labels.npy} and the names of
     * {@code x.classes.json} beside the data file {@code x.EXT} when they exist (unlabelled otherwise): the files
     * {@code diffusion4j sample --save-raw x.npy|x.idx} writes.
     *
     * @throws FileFormatException naming the labels or names file when it does not fit (see {@link #load})
     */
    public static Dataset withLabelsBeside(Path file, float[] values, long[] sample) throws IOException {
        float[] v = values;
        long per = 1;
        for (long d : sample) {
            per *= d;
        }
        long n = per == 0 ? 0 : v.length / per;
        String name = file.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        Path labelsFile = file.resolveSibling(stem + ".labels.npy");
        if (!Files.isRegularFile(labelsFile) || labelsFile.equals(file)) {
            return Dataset.of(v, sample, null, List.of());
        }
        float[] lv = read(labelsFile).values();
        if (lv.length != n) {
            throw new FileFormatException(labelsFile, "holds " + lv.length + " labels for the " + n + " samples of "
                    + file.getFileName());
        }
        List<String> names = List.of();
        Path namesFile = file.resolveSibling(stem + ".classes.json");
        if (Files.isRegularFile(namesFile)) {
            try {
                names = List.of(new com.fasterxml.jackson.databind.ObjectMapper().readValue(namesFile.toFile(),
                        String[].class));
            } catch (IOException | RuntimeException e) {       // malformed JSON, nulls in the list
                throw new FileFormatException(namesFile, "is not a JSON list of class names", e);
            }
        }
        int[] labels = new int[lv.length];
        for (int i = 0; i < lv.length; i++) {
            if (!(lv[i] >= 0 && lv[i] < Dataset.MAX_CLASSES && lv[i] == Math.rint(lv[i]))
                    || (!names.isEmpty() && lv[i] >= names.size())) {
                String shown = lv[i] == Math.rint(lv[i]) && Math.abs(lv[i]) < 0x1p62 ? Long.toString((long) lv[i])
                        : Float.toString(lv[i]);       // 16777216, not 1.6777216E7, which looked like a valid index
                throw new FileFormatException(labelsFile, "label " + i + " = " + shown + " is not a class index (0 .. "
                        + ((names.isEmpty() ? Dataset.MAX_CLASSES : names.size()) - 1) + ")"
                        + (names.isEmpty() ? "" : " of the " + names.size() + " names in " + namesFile.getFileName()));
            }
            labels[i] = (int) lv[i];
        }
        try {
            return Dataset.of(v, sample, labels, names);
        } catch (IllegalArgumentException e) {                // e.g. a repeated or empty class name
            if (names.isEmpty()) {
                throw e;
            }
            throw new FileFormatException(namesFile, e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- write

    /**
     * Writes {@code values} as a {@code '<f4'} C-order array of {@code shape}, atomically.
     *
     * @throws IllegalArgumentException when the value count does not match the shape
     */
    public static void write(Path file, float[] values, long... shape) throws IOException {
        Objects.requireNonNull(values, "values");
        ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        data.asFloatBuffer().put(values);
        write(file, "<f4", values.length, data, shape);
    }

    /**
     * Writes {@code values} as a {@code '<i4'} (int32) C-order array of {@code shape}, atomically (e.g. class
     * labels).
     *
     * @throws IllegalArgumentException when the value count does not match the shape
     */
    public static void writeInt32(Path file, int[] values, long... shape) throws IOException {
        Objects.requireNonNull(values, "values");
        ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        data.asIntBuffer().put(values);
        write(file, "<i4", values.length, data, shape);
    }

    private static void write(Path file, String descr, int count, ByteBuffer data, long... shape) throws IOException {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dim in shape " + Arrays.toString(shape));
            }
        }
        if (Arrays.stream(shape).anyMatch(x -> x == 0)) {
            n = 0;
        } else {
            for (long d : shape) {
                try {
                    n = Math.multiplyExact(n, d);
                } catch (ArithmeticException e) {           // a wrapped product could match the count
                    throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has more than 2^63 - 1 "
                            + "elements");
                }
            }
        }
        if (n != count) {
            throw new IllegalArgumentException(count + " values for shape " + Arrays.toString(shape)
                    + " (" + n + " elements)");
        }
        StringBuilder dict = new StringBuilder("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (");
        for (int i = 0; i < shape.length; i++) {
            dict.append(shape[i]).append(i == 0 && shape.length == 1 ? "," : i < shape.length - 1 ? ", " : "");
        }
        dict.append("), }");
        byte[] text = dict.toString().getBytes(StandardCharsets.ISO_8859_1);
        int major = 8 + 2 + text.length + 1 <= 65535 ? 1 : 2;
        int pre = 8 + (major == 1 ? 2 : 4);
        int total = pre + text.length + 1;
        int pad = (64 - total % 64) % 64;
        int headerLen = text.length + pad + 1;
        ByteBuffer head = ByteBuffer.allocate(pre + headerLen).order(ByteOrder.LITTLE_ENDIAN);
        head.put(MAGIC).put((byte) major).put((byte) 0);
        if (major == 1) {
            head.putShort((short) headerLen);
        } else {
            head.putInt(headerLen);
        }
        head.put(text);
        for (int i = 0; i < pad; i++) {
            head.put((byte) ' ');
        }
        head.put((byte) '\n');
        AtomicFiles.write(file, ch -> {
            AtomicFiles.writeFully(ch, head.flip());
            AtomicFiles.writeFully(ch, data);
        });
    }

    /**
     * Writes an F32 tensor (any backend, any strides) as {@code '<f4'} of its shape, atomically.
     *
     * @throws IllegalArgumentException when the tensor is not F32
     * @throws IOException              when the file cannot be written (nothing is left at {@code file} then)
     */
    public static void write(Path file, Tensor t) throws IOException {
        if (t.dtype() != DType.F32) {
            throw new IllegalArgumentException("Npy.write needs an F32 tensor, " + t + " is " + t.dtype());
        }
        write(file, t.toFloatArray(), t.shape());
    }

    // ---------------------------------------------------------------- the header's Python literal

    /** Parses the dict literal NumPy writes: string keys; string, True/False and int-tuple values. */
    private static final class HeaderParser {
        private final Path file;
        private final String s;
        private int pos;

        HeaderParser(Path file, String s) {
            this.file = file;
            this.s = s;
        }

        Map<String, Object> parse() throws FileFormatException {
            Map<String, Object> out = new LinkedHashMap<>();
            skipSpace();
            expect('{');
            skipSpace();
            while (peek() != '}') {
                String key = string();
                skipSpace();
                expect(':');
                skipSpace();
                if (out.put(key, value()) != null) {
                    throw error("key '" + key + "' appears twice");
                }
                skipSpace();
                if (peek() == ',') {
                    pos++;
                    skipSpace();
                } else if (peek() != '}') {
                    throw error("expected ',' or '}'");
                }
            }
            pos++;
            skipSpace();
            if (pos != s.length()) {
                throw error("text after the closing '}'");
            }
            return out;
        }

        private Object value() throws FileFormatException {
            char c = peek();
            if (c == '\'' || c == '"') {
                return string();
            }
            if (s.startsWith("True", pos)) {
                pos += 4;
                return Boolean.TRUE;
            }
            if (s.startsWith("False", pos)) {
                pos += 5;
                return Boolean.FALSE;
            }
            if (c == '(') {
                pos++;
                List<Long> dims = new ArrayList<>();
                skipSpace();
                while (peek() != ')') {
                    dims.add(integer());
                    skipSpace();
                    if (peek() == ',') {
                        pos++;
                        skipSpace();
                    } else if (peek() != ')') {
                        throw error("expected ',' or ')' in the shape tuple");
                    }
                }
                pos++;
                return dims.stream().mapToLong(Long::longValue).toArray();
            }
            if (c == '[') {
                throw error("a list value (structured dtype) is not supported");
            }
            throw error("unexpected value");
        }

        private long integer() throws FileFormatException {
            int start = pos;
            if (peek() == '-') {
                pos++;
            }
            while (pos < s.length() && Character.isDigit(s.charAt(pos))) {
                pos++;
            }
            if (pos == start || (pos == start + 1 && s.charAt(start) == '-')) {
                throw error("expected an integer");
            }
            String digits = s.substring(start, pos);
            if (pos < s.length() && s.charAt(pos) == 'L') { // Python 2 long suffix, written by old NumPy
                pos++;
            }
            try {
                return Long.parseLong(digits);
            } catch (NumberFormatException e) {
                throw error("integer " + digits + " out of range");
            }
        }

        private String string() throws FileFormatException {
            char q = peek();
            if (q != '\'' && q != '"') {
                throw error("expected a quoted string");
            }
            int end = s.indexOf(q, pos + 1);
            if (end < 0) {
                throw error("unterminated string");
            }
            String v = s.substring(pos + 1, end);
            pos = end + 1;
            return v;
        }

        private void skipSpace() {
            while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) {
                pos++;
            }
        }

        private char peek() throws FileFormatException {
            if (pos >= s.length()) {
                throw error("header ends early");
            }
            return s.charAt(pos);
        }

        private void expect(char c) throws FileFormatException {
            if (peek() != c) {
                throw error("expected '" + c + "'");
            }
            pos++;
        }

        private FileFormatException error(String what) {
            String shown = s.strip();
            if (shown.length() > 120) {
                shown = shown.substring(0, 117) + "...";
            }
            return new FileFormatException(file, "malformed header at character " + pos + ": " + what + " in " + shown);
        }
    }
}
