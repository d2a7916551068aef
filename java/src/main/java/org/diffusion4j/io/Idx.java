package org.diffusion4j.io;

import java.io.BufferedInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.zip.GZIPOutputStream;
import java.util.zip.ZipException;

/**
 * The IDX format of the MNIST database (Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten
 * digits", file-format section) and of Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf, arXiv:1708.07747):
 *
 * <pre>
 * bytes 0-1   0x00 0x00
 * byte  2     element type: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
 * byte  3     number of dims d
 * then        d dims, each an unsigned 32-bit big-endian integer
 * then        the elements, row-major, big-endian
 * </pre>
 *
 * MNIST images are {@code 0x00000803} (u8 {@code [N, H, W]}), labels {@code 0x00000801} (u8 {@code [N]}).
 * Files may be gzip-compressed ({@code *.gz}, as distributed): compression is detected by the gzip magic
 * bytes {@code 1f 8b}, not by the name.
 *
 * <p>Every read checks the magic, the dims and the exact data length (missing or extra bytes are errors) and
 * reports problems as {@link FileFormatException} naming the file. A compressed file's size is not known in
 * advance, so data is read in chunks and memory grows only with the bytes actually present.
 */
public final class Idx {

    /** Element types by IDX type code. */
    public enum Type {
        U8(0x08, 1), I8(0x09, 1), I16(0x0B, 2), I32(0x0C, 4), F32(0x0D, 4), F64(0x0E, 8);

        final int code;
        final int bytes;

        Type(int code, int bytes) {
            this.code = code;
            this.bytes = bytes;
        }

        /** The type byte of the magic number. */
        public int code() {
            return code;
        }

        /** Bytes per element. */
        public int bytes() {
            return bytes;
        }

        static Type of(int code) {
            for (Type t : values()) {
                if (t.code == code) {
                    return t;
                }
            }
            return null;
        }
    }

    /**
     * An IDX array: element type, dims and the elements' bytes exactly as stored (big-endian).
     *
     * @param type the element type
     * @param dims the dims (each ≥ 0)
     * @param data {@code prod(dims) × type.bytes()} big-endian bytes
     */
    public record Array(Type type, int[] dims, byte[] data) {

        /**
         * Checks the array: {@code dims} is copied, {@code data} taken as is.
         *
         * @throws IllegalArgumentException for a negative dim, more than 2^31 − 1 elements, or a {@code data} length
         *                                  other than {@code prod(dims) × type.bytes()}
         * @throws NullPointerException     when an argument is null
         */
        public Array {
            Objects.requireNonNull(type, "type");
            dims = dims.clone();
            long n = 1;
            for (int d : dims) {
                if (d < 0) {
                    throw new IllegalArgumentException("negative dim in " + Arrays.toString(dims));
                }
            }
            if (Arrays.stream(dims).anyMatch(d -> d == 0)) {
                n = 0;
            }
            for (int d : dims) {
                n *= d;
                if (n > Integer.MAX_VALUE) {             // also stops the product before it could wrap
                    throw new IllegalArgumentException(type + " " + Arrays.toString(dims) + " has more than 2^31 - 1 "
                            + "elements");
                }
            }
            if (n * type.bytes != data.length) {
                throw new IllegalArgumentException(type + " " + Arrays.toString(dims) + " needs " + n * type.bytes
                        + " bytes, got " + data.length);
            }
        }

        /**
         * A u8 array over {@code data} (taken, not copied).
         *
         * @throws IllegalArgumentException as the constructor, e.g. when {@code data.length != prod(dims)}
         */
        public static Array ofU8(byte[] data, int... dims) {
            return new Array(Type.U8, dims, data);
        }

        /**
         * An f32 array holding {@code values} (converted to big-endian bytes).
         *
         * @throws IllegalArgumentException as the constructor, e.g. when {@code values.length != prod(dims)}
         */
        public static Array ofF32(float[] values, int... dims) {
            ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.BIG_ENDIAN);
            b.asFloatBuffer().put(values);
            return new Array(Type.F32, dims, b.array());
        }

        @Override
        public int[] dims() {
            return dims.clone();
        }

        /** Number of elements. */
        public int numel() {
            return data.length / type.bytes;
        }

        /** The elements as floats (f64 rounded to nearest, i32 rounded when beyond 2^24). */
        public float[] toFloatArray() {
            int n = numel();
            float[] out = new float[n];
            ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.BIG_ENDIAN);
            for (int i = 0; i < n; i++) {
                out[i] = switch (type) {
                    case U8 -> Byte.toUnsignedInt(data[i]);
                    case I8 -> data[i];
                    case I16 -> b.getShort(i * 2);
                    case I32 -> b.getInt(i * 4);
                    case F32 -> b.getFloat(i * 4);
                    case F64 -> (float) b.getDouble(i * 8);
                };
            }
            return out;
        }

        /**
         * The elements as ints.
         *
         * @throws IllegalStateException for the float types
         */
        public int[] toIntArray() {
            int n = numel();
            int[] out = new int[n];
            ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.BIG_ENDIAN);
            for (int i = 0; i < n; i++) {
                out[i] = switch (type) {
                    case U8 -> Byte.toUnsignedInt(data[i]);
                    case I8 -> data[i];
                    case I16 -> b.getShort(i * 2);
                    case I32 -> b.getInt(i * 4);
                    case F32, F64 -> throw new IllegalStateException("IDX " + type + " data are not integers");
                };
            }
            return out;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Array a && type == a.type && Arrays.equals(dims, a.dims) && Arrays.equals(data, a.data);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * type.hashCode() + Arrays.hashCode(dims)) + Arrays.hashCode(data);
        }

        @Override
        public String toString() {
            return "Idx.Array[" + type + " " + Arrays.toString(dims) + "]";
        }
    }

    /** Largest data size read: what one Java array holds. */
    static final long MAX_BYTES = Integer.MAX_VALUE - 8;
    private static final int MAX_DIMS = 32;

    private Idx() {
    }

    // ---------------------------------------------------------------- read

    /**
     * Reads an IDX file (raw or gzip-compressed).
     *
     * @throws FileFormatException naming the file: not IDX, unknown type code, no dims, dims too large,
     *                             truncated or trailing data, corrupt gzip stream
     * @throws java.nio.file.NoSuchFileException when the file does not exist
     */
    public static Array read(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        try (InputStream raw = Files.newInputStream(file);
             BufferedInputStream buffered = new BufferedInputStream(raw, 1 << 16)) {
            buffered.mark(2);
            int b0 = buffered.read();
            int b1 = buffered.read();
            buffered.reset();
            boolean gz = b0 == 0x1f && b1 == 0x8b;
            long rawSize = gz ? -1 : Files.size(file);
            try (InputStream in = gz ? new StrictGzipInputStream(buffered) : buffered) {
                return parse(file, in, rawSize, gz);
            } catch (ZipException | EOFException e) {
                if (!gz) {
                    throw e;
                }
                throw new FileFormatException(file, "corrupt or truncated gzip data: " + e.getMessage(), e);
            }
        }
    }

    private static Array parse(Path file, InputStream in, long rawSize, boolean gz) throws IOException {
        String where = gz ? "after decompression, " : "";
        byte[] magic = in.readNBytes(4);
        if (magic.length < 4) {
            throw new FileFormatException(file, where + "only " + magic.length
                    + " bytes, too short for the 4-byte IDX magic number");
        }
        if (magic[0] != 0 || magic[1] != 0) {
            throw new FileFormatException(file, String.format(Locale.ROOT,
                    "not an IDX file: magic number 0x%02X%02X%02X%02X does not start with 0x0000", magic[0], magic[1],
                    magic[2], magic[3]));
        }
        Type type = Type.of(Byte.toUnsignedInt(magic[2]));
        if (type == null) {
            throw new FileFormatException(file, String.format(Locale.ROOT,
                    "unknown IDX element type 0x%02X (known: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64)",
                    magic[2]));
        }
        int rank = Byte.toUnsignedInt(magic[3]);
        if (rank == 0 || rank > MAX_DIMS) {
            throw new FileFormatException(file, "IDX header declares " + rank + " dims; expected 1 to " + MAX_DIMS);
        }
        byte[] dimBytes = in.readNBytes(4 * rank);
        if (dimBytes.length < 4 * rank) {
            throw new FileFormatException(file, "truncated header: " + rank + " dims need " + 4 * rank
                    + " bytes after the magic number, found " + dimBytes.length);
        }
        ByteBuffer db = ByteBuffer.wrap(dimBytes).order(ByteOrder.BIG_ENDIAN);
        int[] dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++) {
            long d = Integer.toUnsignedLong(db.getInt());
            if (d > Integer.MAX_VALUE) {
                throw new FileFormatException(file, String.format(Locale.ROOT,
                        "dim %d of the %d that the magic number 0x%02X%02X%02X%02X declares is %d, too large (is the "
                        + "rank byte right? MNIST images are 0x00000803, labels 0x00000801)", i, rank, magic[0],
                        magic[1], magic[2], magic[3], d));
            }
            dims[i] = (int) d;
            count *= d; // at most 32 factors < 2^31 could overflow: checked below
            if (count > MAX_BYTES) {
                count = MAX_BYTES + 1; // saturate
            }
        }
        long bytes = count > MAX_BYTES ? Long.MAX_VALUE : count * type.bytes;
        if (bytes > MAX_BYTES) {
            throw new FileFormatException(file, "dims " + Arrays.toString(dims) + " of " + type
                    + " hold more than " + MAX_BYTES + " bytes, too large to load");
        }
        long headerBytes = 4 + 4L * rank;
        if (rawSize >= 0 && rawSize - headerBytes != bytes) {
            throw new FileFormatException(file, (rawSize - headerBytes < bytes ? "truncated: " : "")
                    + "the header (" + type + " " + Arrays.toString(dims) + ") promises " + bytes
                    + " data bytes, the file holds " + (rawSize - headerBytes));
        }
        byte[] data = in.readNBytes((int) bytes);
        if (data.length < bytes) {
            throw new FileFormatException(file, "truncated: " + where + "the header (" + type + " "
                    + Arrays.toString(dims) + ") promises " + bytes + " data bytes, the file holds " + data.length);
        }
        if (in.read() >= 0) {
            throw new FileFormatException(file, where + "data continue past the " + bytes + " bytes that the header ("
                    + type + " " + Arrays.toString(dims) + ") promises");
        }
        return new Array(type, dims, data);
    }

    /**
     * Reads an MNIST-style image file: magic {@code 0x00000803}, u8 {@code [N, H, W]}.
     *
     * @throws FileFormatException when the file is valid IDX of another type or rank
     */
    public static Array readImages(Path file) throws IOException {
        Array a = read(file);
        if (a.type() != Type.U8 || a.dims.length != 3) {
            throw new FileFormatException(file, "expected MNIST-style images (magic 0x00000803: u8 [N, H, W]), found "
                    + a.type() + " " + Arrays.toString(a.dims));
        }
        return a;
    }

    /**
     * Reads an MNIST-style label file: magic {@code 0x00000801}, u8 {@code [N]}.
     *
     * @throws FileFormatException when the file is valid IDX of another type or rank
     */
    public static Array readLabels(Path file) throws IOException {
        Array a = read(file);
        if (a.type() != Type.U8 || a.dims.length != 1) {
            throw new FileFormatException(file, "expected MNIST-style labels (magic 0x00000801: u8 [N]), found "
                    + a.type() + " " + Arrays.toString(a.dims));
        }
        return a;
    }

    /**
     * Loads an image file and its label file as a dataset {@code [N, 1, H, W]} with pixels {@code v} mapped
     * to {@code v / 127.5 − 1} in {@code [-1, 1]} and labels {@code 0 … max}.
     *
     * @param images     u8 {@code [N, H, W]} IDX (raw or gzip)
     * @param labels     u8 {@code [N]} IDX, or null for an unlabelled set
     * @param classNames names of the labels, or an empty list
     * @throws FileFormatException naming both files when the counts differ
     */
    public static Dataset load(Path images, Path labels, List<String> classNames) throws IOException {
        Array img = readImages(images);
        int[] d = img.dims;
        int[] lab = null;
        if (labels != null) {
            Array l = readLabels(labels);
            if (l.dims[0] != d[0]) {
                throw new FileFormatException(labels, "holds " + l.dims[0] + " labels but the image file " + images
                        + " holds " + d[0] + " images");
            }
            lab = l.toIntArray();
            if (!classNames.isEmpty()) {
                for (int i = 0; i < lab.length; i++) {
                    if (lab[i] >= classNames.size()) {
                        throw new FileFormatException(labels, "label " + lab[i] + " of item " + i
                                + " is beyond the " + classNames.size() + " class names");
                    }
                }
            }
        }
        byte[] px = img.data();
        float[] x = new float[px.length];
        for (int i = 0; i < px.length; i++) {
            x[i] = toUnit(Byte.toUnsignedInt(px[i]));
        }
        return Dataset.of(x, new long[] {1, d[1], d[2]}, lab, lab == null ? List.of() : classNames);
    }

    /** An 8-bit value {@code v ∈ [0, 255]} mapped to {@code v / 127.5 − 1 ∈ [-1, 1]} (0 → −1, 255 → 1 exactly). */
    static float toUnit(int v) {
        return (float) (v / 127.5 - 1.0);
    }

    // ---------------------------------------------------------------- write

    /**
     * Writes {@code array} to {@code file} atomically ({@link AtomicFiles}), gzip-compressed when the file
     * name ends with {@code .gz}.
     *
     * @throws IllegalArgumentException when the array has no dims or more than {@code MAX_DIMS}
     * @throws IOException              when the file cannot be written (nothing is left at {@code file} then)
     */
    public static void write(Path file, Array array) throws IOException {
        Objects.requireNonNull(array, "array");
        if (array.dims.length == 0 || array.dims.length > MAX_DIMS) {
            throw new IllegalArgumentException("IDX needs 1 to " + MAX_DIMS + " dims, got " + array.dims.length);
        }
        boolean gz = file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gz");
        AtomicFiles.writeStream(file, sink -> {
            OutputStream os = gz ? new GZIPOutputStream(sink, 1 << 16) : sink;
            DataOutputStream out = new DataOutputStream(os);
            out.writeShort(0);
            out.writeByte(array.type().code());
            out.writeByte(array.dims.length);
            for (int dim : array.dims) {
                out.writeInt(dim);
            }
            out.write(array.data());
            out.flush();
            if (os instanceof GZIPOutputStream g) {
                g.finish();
            }
        });
    }
}
