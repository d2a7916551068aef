package org.diffusion4j.io;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;

/**
 * Reads and writes checkpoints in the <b>safetensors</b> format of Hugging Face
 * (github.com/huggingface/safetensors; the reference implementation is its Rust crate,
 * {@code safetensors/src/tensor.rs}, cited below as "the reference").
 *
 * <h2>Format</h2>
 * <pre>
 * [8 bytes]  N, unsigned 64-bit little-endian: the length of the header
 * [N bytes]  UTF-8 JSON object:
 *              {"__metadata__": {"key": "value", ...},                      (optional, strings only)
 *               "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
 * [rest]     the byte buffer; tensor bytes are little-endian, row-major, at [begin, end) of the buffer
 * </pre>
 *
 * <h2>Writing</h2>
 * {@link #write} stores {@code F32}, {@code BF16}, {@code F16} and {@code I32} tensors of any backend
 * (device tensors are copied to the host through {@link Tensor#copyTo(MemorySegment)}; views of any strides
 * are written row-major) with string metadata. As the reference writer does, tensors are ordered by
 * descending dtype (in the reference's dtype order: F32, I32, BF16, F16) and then by name, and the header is
 * padded with spaces to a multiple of 8 bytes, so every tensor starts at a multiple of its element size in
 * the file and maps aligned. The write is atomic ({@link AtomicFiles}): temporary file, fsync, rename.
 *
 * <h2>Reading</h2>
 * {@link #read} validates the whole header before it touches the buffer (see below), then maps the file
 * with {@link FileChannel#map(FileChannel.MapMode, long, long, Arena)} into the caller's
 * {@link TensorScope}'s arena. On a host ({@link Device#CPU}) backend, a tensor whose bytes are aligned to
 * its element size is <b>zero-copy</b>: {@link Backend#wrap} over the mapping. The mapping is
 * {@link FileChannel.MapMode#PRIVATE} (copy-on-write): ops may write into such tensors and the file never
 * changes; a private mapping needs the file to be openable for writing, and when it is not (read-only
 * file or file system) every tensor is copied instead. Tensors whose bytes are <b>not aligned</b> (files
 * from writers that do not pad the header, as the reference's first versions did not) are copied into
 * scope memory, as are all tensors for non-host backends (through {@link Tensor#copyFrom(MemorySegment)})
 * and converted dtypes ({@link SafetensorsDType#loadedAs()}: F64 to F32, integers to I32). The mapping
 * lives until the scope closes. Do not truncate or rewrite in place a file while tensors mapped from it are in
 * use: the operating system reports access to the lost pages as a bus error, which Java code turns into an
 * {@link InternalError} but which kills the process inside native code (BLAS, as with any memory-mapped array in
 * other ecosystems). {@link #write} replaces files by rename, which never disturbs an existing mapping; when
 * another program may rewrite a file in place, read it with {@link Mode#COPY} (what {@code Checkpoint} does for
 * the tensors it keeps: it copies them out of a mapping that it releases before returning).
 *
 * <h2>Validation (hostile files)</h2>
 * Every problem is a {@link SafetensorsFormatException} naming the file and, where there is one, the tensor
 * and the values — never an out-of-bounds read:
 * <ul>
 *   <li>a file shorter than 8 bytes; a header length above {@link #MAX_HEADER_BYTES} (100,000,000 bytes,
 *       the reference's {@code MAX_HEADER_SIZE}) or beyond the end of the file;</li>
 *   <li>a header that is not UTF-8, not JSON, not one JSON object (trailing tokens included; trailing
 *       spaces are the padding and fine), or has a duplicated name;</li>
 *   <li>an entry that is not an object with a string {@code dtype}, a {@code shape} array of integers
 *       {@code >= 0} and a {@code data_offsets} array of two integers {@code >= 0}; an unknown dtype;
 *       a {@code __metadata__} that is not an object of strings;</li>
 *   <li>a shape whose element or byte count overflows 64 bits; a byte count not a whole number of bytes
 *       (packed 4- and 6-bit types); {@code end < begin}; {@code end} beyond the buffer; a range length
 *       that differs from {@code numel * bits / 8};</li>
 *   <li>ranges that overlap, leave a hole or leave bytes after the last tensor. The reference requires the
 *       ranges, sorted by offset, to tile the buffer exactly from 0 to the end of the file
 *       ({@code Metadata::validate}: each {@code begin} equals the previous {@code end}, else
 *       {@code InvalidOffset}; and {@code read_metadata}: {@code buffer_end + 8 + N == file length}, else
 *       {@code MetadataIncompleteBuffer}); this reader does the same.</li>
 * </ul>
 *
 * <p>Requires a little-endian host (x86-64, AArch64), like the tensors themselves.
 */
public final class Safetensors {

    /** The largest header accepted: 100,000,000 bytes, the reference's {@code MAX_HEADER_SIZE}. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** Key of the string-to-string metadata object in the header. */
    public static final String METADATA_KEY = "__metadata__";

    /** Bytes moved per write call / host staging buffer. */
    private static final long CHUNK = 64L << 20;

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.USE_BIG_INTEGER_FOR_INTS)
            .build();

    private Safetensors() {
    }

    // ================================================================ write

    /**
     * Writes {@code tensors} and {@code metadata} to {@code file} atomically.
     *
     * @param file     the target; its folder must exist; an existing file is replaced
     * @param tensors  tensors by name (F32, BF16, F16 or I32; any backend, any strides); the name
     *                 {@value #METADATA_KEY} is reserved
     * @param metadata string metadata (may be empty; omitted from the header when empty)
     * @throws IllegalArgumentException naming the tensor or key when a name is reserved or not encodable
     * @throws IllegalStateException    when a tensor's scope is closed (checked before anything is written)
     * @throws IOException              on a write failure; {@code file} is then unchanged
     * @throws UnsupportedOperationException on a big-endian host (the format is little-endian; every read and write
     *                                       refuses such a host before touching a file)
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(metadata, "metadata");
        requireLittleEndian();
        List<Map.Entry<String, Tensor>> order = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String name = Objects.requireNonNull(e.getKey(), "a tensor name is null");
            Tensor t = Objects.requireNonNull(e.getValue(), () -> "tensor '" + name + "' is null");
            if (name.equals(METADATA_KEY)) {
                throw new IllegalArgumentException("a tensor may not be named " + METADATA_KEY
                        + ": the header reserves it for the metadata");
            }
            requireEncodable("tensor name", name);
            t.checkAlive();
            order.add(Map.entry(name, t));
        }
        TreeMap<String, String> meta = new TreeMap<>();
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            String k = Objects.requireNonNull(e.getKey(), "a metadata key is null");
            String v = Objects.requireNonNull(e.getValue(), () -> "metadata value of '" + k + "' is null");
            requireEncodable("metadata key", k);
            requireEncodable("metadata value of '" + k + "'", v);
            meta.put(k, v);
        }
        // The reference's writer order (tensor.rs, prepare): dtype descending, then name.
        order.sort(Comparator.<Map.Entry<String, Tensor>>comparingInt(
                        e -> -SafetensorsDType.of(e.getValue().dtype()).ordinal())
                .thenComparing(Map.Entry::getKey));
        byte[] header = headerJson(order, meta);
        AtomicFiles.write(file, ch -> {
            ByteBuffer head = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(header.length).put(header).flip();
            AtomicFiles.writeFully(ch, head);
            for (Map.Entry<String, Tensor> e : order) {
                writeTensorData(ch, e.getValue());
            }
        });
    }

    /** The header JSON, padded with spaces to a multiple of 8 bytes. */
    private static byte[] headerJson(List<Map.Entry<String, Tensor>> order, Map<String, String> meta) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.getFactory().createGenerator(bytes)) {
            g.writeStartObject();
            if (!meta.isEmpty()) {
                g.writeObjectFieldStart(METADATA_KEY);
                for (Map.Entry<String, String> e : meta.entrySet()) {
                    g.writeStringField(e.getKey(), e.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (Map.Entry<String, Tensor> e : order) {
                Tensor t = e.getValue();
                long n = t.byteSize();
                g.writeObjectFieldStart(e.getKey());
                g.writeStringField("dtype", SafetensorsDType.of(t.dtype()).headerName());
                g.writeArrayFieldStart("shape");
                for (long d : t.shape()) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(offset + n);
                g.writeEndArray();
                g.writeEndObject();
                offset += n;
            }
            g.writeEndObject();
        }
        int pad = (8 - bytes.size() % 8) % 8;
        for (int i = 0; i < pad; i++) {
            bytes.write(' ');
        }
        return bytes.toByteArray();
    }

    /** Writes the row-major bytes of {@code t}: straight from host memory when possible, else staged. */
    private static void writeTensorData(FileChannel ch, Tensor t) throws IOException {
        long bytes = t.byteSize();
        if (bytes == 0) {
            return;
        }
        if (t.device().type() == Device.Type.CPU && t.isContiguous()) {
            writeSegment(ch, t.segment());
            return;
        }
        try (Arena staging = Arena.ofConfined()) {
            if (t.rank() == 0 || bytes <= CHUNK) {
                MemorySegment buf = staging.allocate(bytes, 8);
                t.copyTo(buf);
                writeSegment(ch, buf);
                return;
            }
            long rows = t.shape(0);
            long rowBytes = bytes / rows;
            long perChunk = Math.max(1, CHUNK / rowBytes);
            MemorySegment buf = staging.allocate(Math.min(perChunk, rows) * rowBytes, 8);
            for (long r = 0; r < rows; r += perChunk) {
                Tensor part = t.slice(0, r, Math.min(rows, r + perChunk));
                MemorySegment dst = buf.asSlice(0, part.byteSize());
                part.copyTo(dst);
                writeSegment(ch, dst);
            }
        }
    }

    private static void writeSegment(FileChannel ch, MemorySegment seg) throws IOException {
        for (long off = 0; off < seg.byteSize(); off += CHUNK) {
            AtomicFiles.writeFully(ch, seg.asSlice(off, Math.min(CHUNK, seg.byteSize() - off)).asByteBuffer());
        }
    }

    private static void requireEncodable(String what, String s) {
        if (!StandardCharsets.UTF_8.newEncoder().canEncode(s)) {
            throw new IllegalArgumentException(what + " '" + s + "' is not valid Unicode (a lone surrogate?)");
        }
    }

    // ================================================================ read

    /**
     * Reads every tensor of {@code file} into {@code scope} on {@code backend}; see the class comment for
     * when tensors are zero-copy and which dtypes are converted.
     *
     * @throws SafetensorsFormatException when the file breaks the format (see the class comment) or holds a
     *                                    tensor of a dtype that cannot be loaded, or an integer outside the
     *                                    {@code int} range
     * @throws java.nio.file.NoSuchFileException when the file does not exist
     * @throws IOException                on a read failure
     * @throws IllegalStateException      when {@code scope} is closed
     */
    public static SafetensorsFile read(Path file, TensorScope scope, Backend backend) throws IOException {
        return read(file, scope, backend, name -> true);
    }

    /**
     * Like {@link #read(Path, TensorScope, Backend)} for the tensors whose names {@code select} accepts
     * (the whole header is validated all the same).
     */
    public static SafetensorsFile read(Path file, TensorScope scope, Backend backend, Predicate<String> select)
            throws IOException {
        return read(file, scope, backend, select, Mode.ZERO_COPY);
    }

    /** How {@link #read} hands out tensors of a host backend. */
    public enum Mode {
        /** Map the file and wrap aligned native-dtype tensors in place (the default; see the class comment). */
        ZERO_COPY,
        /** Copy every tensor into the scope's own memory; the file is mapped only while reading. */
        COPY
    }

    /**
     * Like {@link #read(Path, TensorScope, Backend, Predicate)}; with {@link Mode#COPY} no tensor refers to the
     * file after the call returns, so later changes to the file cannot affect them.
     */
    public static SafetensorsFile read(Path file, TensorScope scope, Backend backend, Predicate<String> select,
                                       Mode mode) throws IOException {
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(scope, "scope");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(select, "select");
        requireLittleEndian();
        if (!scope.isAlive()) {
            throw new IllegalStateException("cannot read " + file + " into a closed tensor scope");
        }
        requireNotDirectory(file);
        boolean host = backend.device().type() == Device.Type.CPU && mode == Mode.ZERO_COPY;
        FileChannel ch = null;
        boolean privateMap = false;
        if (host) {
            try {
                ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
                privateMap = true;
            } catch (FileSystemException | UnsupportedOperationException e) {
                // read-only file or file system: map read-only and copy (a NoSuchFileException recurs below)
            }
        }
        if (ch == null) {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        }
        try (FileChannel channel = ch) {
            long size = channel.size();
            SafetensorsHeader header = parseHeader(file, readHeaderBytes(file, channel, size), size);
            List<SafetensorsHeader.Entry> wanted = new ArrayList<>();
            for (SafetensorsHeader.Entry e : header.entries()) {
                if (select.test(e.name())) {
                    if (e.dtype().loadedAs().isEmpty()) {
                        throw new SafetensorsFormatException(file, "tensor '" + e.name() + "' has dtype " + e.dtype()
                                + ", which diffusion4j cannot load (it loads F32, BF16, F16 and I32, converts F64 to "
                                + "F32 and BOOL/U8/I8/I16/U16/U32/I64/U64 to I32)");
                    }
                    wanted.add(e);
                }
            }
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            Set<String> zeroCopy = new HashSet<>();
            boolean anyZeroCopy = privateMap && wanted.stream().anyMatch(e -> zeroCopyable(header, e));
            // Zero-copy tensors keep the mapping alive for the scope's lifetime; otherwise map temporarily.
            Arena temporary = anyZeroCopy ? null : Arena.ofConfined();
            try {
                Arena owner = anyZeroCopy ? scope.arena() : temporary;
                FileChannel.MapMode mapMode = anyZeroCopy ? FileChannel.MapMode.PRIVATE : FileChannel.MapMode.READ_ONLY;
                MemorySegment mapped = channel.map(mapMode, 0, size, owner);
                for (SafetensorsHeader.Entry e : wanted) {
                    MemorySegment bytes = mapped.asSlice(header.dataStart() + e.begin(), e.end() - e.begin());
                    if (anyZeroCopy && zeroCopyable(header, e)) {
                        tensors.put(e.name(), backend.wrap(bytes, e.dtype().nativeType().orElseThrow(), e.shape()));
                        zeroCopy.add(e.name());
                    } else {
                        tensors.put(e.name(), load(file, e, bytes, scope, backend));
                    }
                }
            } finally {
                if (temporary != null) {
                    temporary.close();
                }
            }
            return new SafetensorsFile(tensors, header.metadata(), zeroCopy, header);
        } catch (java.nio.channels.ClosedByInterruptException e) {
            throw interrupted(file, e);
        }
    }

    /** Native dtype whose file position is a multiple of its size (the mapping itself is page-aligned). */
    private static boolean zeroCopyable(SafetensorsHeader h, SafetensorsHeader.Entry e) {
        if (e.dtype().nativeType().isEmpty()) {
            return false;
        }
        long elementBytes = e.dtype().bits() / 8;
        return (h.dataStart() + e.begin()) % elementBytes == 0;
    }

    /** A copied (and possibly converted) tensor in {@code scope}. */
    private static Tensor load(Path file, SafetensorsHeader.Entry e, MemorySegment bytes, TensorScope scope,
                               Backend backend) throws SafetensorsFormatException {
        DType target = e.dtype().loadedAs().orElseThrow();
        Tensor t = backend.empty(scope, target, e.shape());
        if (e.dtype().nativeType().isPresent()) {
            t.copyFrom(bytes);
            return t;
        }
        long n = e.numel();
        try (Arena staging = Arena.ofConfined()) {
            MemorySegment out = staging.allocate(Math.max(1, n * 4), 8).asSlice(0, n * 4);
            convert(file, e, bytes, out, n);
            t.copyFrom(out);
        }
        return t;
    }

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble LE_DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** F64 to F32 (round to nearest even, Java's narrowing) and integers to I32 (exact or an error). */
    private static void convert(Path file, SafetensorsHeader.Entry e, MemorySegment in, MemorySegment out, long n)
            throws SafetensorsFormatException {
        switch (e.dtype()) {
            case F64 -> {
                for (long i = 0; i < n; i++) {
                    out.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) in.get(LE_DOUBLE, i * 8));
                }
            }
            case BOOL, U8 -> {
                for (long i = 0; i < n; i++) {
                    out.setAtIndex(ValueLayout.JAVA_INT, i, Byte.toUnsignedInt(in.get(ValueLayout.JAVA_BYTE, i)));
                }
            }
            case I8 -> {
                for (long i = 0; i < n; i++) {
                    out.setAtIndex(ValueLayout.JAVA_INT, i, in.get(ValueLayout.JAVA_BYTE, i));
                }
            }
            case I16 -> {
                for (long i = 0; i < n; i++) {
                    out.setAtIndex(ValueLayout.JAVA_INT, i, in.get(LE_SHORT, i * 2));
                }
            }
            case U16 -> {
                for (long i = 0; i < n; i++) {
                    out.setAtIndex(ValueLayout.JAVA_INT, i, Short.toUnsignedInt(in.get(LE_SHORT, i * 2)));
                }
            }
            case U32 -> {
                for (long i = 0; i < n; i++) {
                    int v = in.get(LE_INT, i * 4);
                    if (v < 0) {
                        throw outOfIntRange(file, e, i, Integer.toUnsignedString(v));
                    }
                    out.setAtIndex(ValueLayout.JAVA_INT, i, v);
                }
            }
            case I64, U64 -> {
                for (long i = 0; i < n; i++) {
                    long v = in.get(LE_LONG, i * 8);
                    if (v != (int) v || (e.dtype() == SafetensorsDType.U64 && v < 0)) {
                        throw outOfIntRange(file, e, i,
                                e.dtype() == SafetensorsDType.U64 ? Long.toUnsignedString(v) : Long.toString(v));
                    }
                    out.setAtIndex(ValueLayout.JAVA_INT, i, (int) v);
                }
            }
            default -> throw new IllegalStateException("no conversion for " + e.dtype());
        }
    }

    private static SafetensorsFormatException outOfIntRange(Path file, SafetensorsHeader.Entry e, long i, String v) {
        return new SafetensorsFormatException(file, "tensor '" + e.name() + "' (" + e.dtype() + ") holds " + v
                + " at element " + i + ", outside the I32 range that integers are loaded into");
    }

    // ================================================================ header

    /**
     * Reads and validates the header of {@code file} without mapping its data (all the checks of the class
     * comment, including the coverage of the byte buffer).
     *
     * @throws SafetensorsFormatException when the header breaks the format
     * @throws IOException                on a read failure
     */
    public static SafetensorsHeader readHeader(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        requireNotDirectory(file);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            return parseHeader(file, readHeaderBytes(file, ch, size), size);
        } catch (java.nio.channels.ClosedByInterruptException e) {
            throw interrupted(file, e);
        }
    }

    /**
     * Refuses a directory with its path (the channel's own error says only "Is a directory"), pointing at a run
     * folder's newest checkpoint when {@code file} is one.
     */
    private static void requireNotDirectory(Path file) throws IOException {
        if (java.nio.file.Files.isDirectory(file)) {
            Path latest = file.resolve("checkpoints").resolve("latest.safetensors");
            throw new java.nio.file.FileSystemException(file.toString(), null, "is a directory, not a safetensors file"
                    + (java.nio.file.Files.isRegularFile(latest) ? " (a run folder: its newest checkpoint is "
                    + latest + ")" : ""));
        }
    }

    /** An interrupt of the reading thread (which closes the channel), named with the file. */
    private static java.io.InterruptedIOException interrupted(Path file, java.nio.channels.ClosedByInterruptException e) {
        java.io.InterruptedIOException ie = new java.io.InterruptedIOException("interrupted while reading " + file
                + " (the thread's interrupt status is set)");
        ie.initCause(e);
        return ie;
    }

    private static byte[] readHeaderBytes(Path file, FileChannel ch, long size) throws IOException {
        if (size < 8 && !java.nio.file.Files.isRegularFile(file)) {    // /dev/zero, /proc files: sizes of 0 that say nothing
            throw new SafetensorsFormatException(file, "is not a regular file (a device, pipe or special file), so "
                    + "not a safetensors file");
        }
        if (size < 8) {
            throw new SafetensorsFormatException(file, "file has " + size
                    + " bytes, fewer than the 8-byte header length that starts a safetensors file");
        }
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, len, 0);
        long n = len.flip().getLong();
        String kind = otherFormat(len.array());
        if (kind != null && (n < 0 || n > MAX_HEADER_BYTES || n > size - 8)) {
            throw new SafetensorsFormatException(file, "is not a safetensors file: it starts like " + kind);
        }
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new SafetensorsFormatException(file, "header length " + Long.toUnsignedString(n)
                    + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes (the reference's MAX_HEADER_SIZE): not a "
                    + "safetensors file, or a damaged one");
        }
        if (n > size - 8) {
            throw new SafetensorsFormatException(file, "header length " + n + " runs past the end of the file ("
                    + size + " bytes, so at most " + (size - 8) + " header bytes)");
        }
        ByteBuffer json = ByteBuffer.allocate((int) n);
        readFully(ch, json, 8);
        return json.array();
    }

    /** The format whose signature starts {@code head} (the first 8 bytes), for a clearer refusal; null if none. */
    private static String otherFormat(byte[] head) {
        String ascii = new String(head, java.nio.charset.StandardCharsets.ISO_8859_1);
        if ((head[0] & 0xFF) == 0x93 && ascii.startsWith("NUMPY", 1)) {
            return "an NPY array";
        }
        if ((head[0] & 0xFF) == 0x89 && ascii.startsWith("PNG", 1)) {
            return "a PNG image";
        }
        if ((head[0] & 0xFF) == 0xFF && (head[1] & 0xFF) == 0xD8) {
            return "a JPEG image";
        }
        if (ascii.startsWith("PK")) {
            return "a zip archive (a PyTorch .pt/.pth or .npz file?)";
        }
        if ((head[0] & 0xFF) == 0x1F && (head[1] & 0xFF) == 0x8B) {
            return "a gzip file";
        }
        if (head[0] == 0 && head[1] == 0 && (head[2] & 0xFF) >= 0x08 && (head[2] & 0xFF) <= 0x0E) {
            return "an IDX file";
        }
        String t = ascii.stripLeading();
        if (t.startsWith("{") || t.startsWith("[")) {
            return "a JSON file (run.json?)";
        }
        return null;
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int r = ch.read(buf, pos);
            if (r < 0) {
                throw new java.io.EOFException("file ended at byte " + pos + " while reading");
            }
            pos += r;
        }
    }

    /** Validates a header (the JSON bytes) against a file of {@code fileSize} bytes. */
    static SafetensorsHeader parseHeader(Path file, byte[] json, long fileSize) throws SafetensorsFormatException {
        String text;
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(json));
            text = chars.toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsFormatException(file, "header is not valid UTF-8", e);
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            String msg = e.getOriginalMessage();
            String what = msg != null && msg.toLowerCase(java.util.Locale.ROOT).startsWith("duplicate")
                    ? "header has a duplicated name: " : "header is not valid JSON: ";
            throw new SafetensorsFormatException(file, what + msg, e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsFormatException(file, "header is not a JSON object but "
                    + (root == null ? "empty" : root.getNodeType().toString().toLowerCase(java.util.Locale.ROOT)));
        }
        long headerBytes = json.length;
        long bufferBytes = fileSize - 8 - headerBytes;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<SafetensorsHeader.Entry> entries = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            String name = field.getKey();
            JsonNode v = field.getValue();
            if (name.equals(METADATA_KEY)) {
                parseMetadata(file, v, metadata);
                continue;
            }
            entries.add(parseEntry(file, name, v, bufferBytes));
        }
        // The reference sorts by (begin, end) and requires each begin to equal the previous end.
        entries.sort(Comparator.comparingLong(SafetensorsHeader.Entry::begin).thenComparingLong(SafetensorsHeader.Entry::end));
        long expect = 0;
        SafetensorsHeader.Entry previous = null;
        for (SafetensorsHeader.Entry e : entries) {
            if (e.begin() < expect) {
                throw new SafetensorsFormatException(file, "tensor " + e + " overlaps tensor " + previous);
            }
            if (e.begin() > expect) {
                throw new SafetensorsFormatException(file, "bytes [" + expect + ", " + e.begin()
                        + ") of the data buffer belong to no tensor (a hole before tensor " + e
                        + "); the data_offsets must cover the buffer without gaps");
            }
            expect = e.end();
            previous = e;
        }
        if (expect != bufferBytes) {
            throw new SafetensorsFormatException(file, "the tensors cover " + expect + " of the " + bufferBytes
                    + " bytes after the header; the data_offsets must cover the buffer up to the end of the file");
        }
        return new SafetensorsHeader(headerBytes, entries, metadata);
    }

    private static void parseMetadata(Path file, JsonNode v, Map<String, String> metadata)
            throws SafetensorsFormatException {
        if (v.isNull()) {
            return;
        }
        if (!v.isObject()) {
            throw new SafetensorsFormatException(file, METADATA_KEY + " must be an object of strings, is "
                    + kind(v));
        }
        for (Map.Entry<String, JsonNode> m : v.properties()) {
            if (!m.getValue().isTextual()) {
                throw new SafetensorsFormatException(file, METADATA_KEY + " value of '" + m.getKey()
                        + "' must be a string, is " + kind(m.getValue()));
            }
            metadata.put(m.getKey(), m.getValue().textValue());
        }
    }

    private static SafetensorsHeader.Entry parseEntry(Path file, String name, JsonNode v, long bufferBytes)
            throws SafetensorsFormatException {
        String where = "tensor '" + name + "'";
        if (!v.isObject()) {
            throw new SafetensorsFormatException(file, where + " must be an object {dtype, shape, data_offsets}, is "
                    + kind(v));
        }
        JsonNode dt = v.get("dtype");
        if (dt == null || !dt.isTextual()) {
            throw new SafetensorsFormatException(file, where + " has no string \"dtype\""
                    + (dt == null ? "" : " (it is " + kind(dt) + ")"));
        }
        SafetensorsDType dtype = SafetensorsDType.parse(dt.textValue()).orElseThrow(() ->
                new SafetensorsFormatException(file, where + " has unknown dtype \"" + dt.textValue()
                        + "\"; the format defines " + Arrays.toString(SafetensorsDType.values())));
        long[] shape = integers(file, where, "shape", v.get("shape"), -1);
        long[] offsets = integers(file, where, "data_offsets", v.get("data_offsets"), 2);
        long begin = offsets[0];
        long end = offsets[1];
        long bits;
        try {
            long numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            bits = Math.multiplyExact(numel, (long) dtype.bits());
        } catch (ArithmeticException ex) {
            throw new SafetensorsFormatException(file, where + " has shape " + Arrays.toString(shape)
                    + " whose size in bits overflows 64 bits");
        }
        try {
            org.diffusion4j.tensor.Shape.checked(shape);   // the tensor's strides must fit too (zero dims as 1)
        } catch (IllegalArgumentException ex) {
            throw new SafetensorsFormatException(file, where + ": " + ex.getMessage());
        }
        if (bits % 8 != 0) {
            throw new SafetensorsFormatException(file, where + " (" + dtype + " " + Arrays.toString(shape)
                    + ") is " + bits + " bits, not a whole number of bytes");
        }
        if (end < begin) {
            throw new SafetensorsFormatException(file, where + " has data_offsets [" + begin + ", " + end
                    + "] with end before begin");
        }
        if (end > bufferBytes) {
            throw new SafetensorsFormatException(file, where + " has data_offsets [" + begin + ", " + end
                    + "] beyond the data buffer, which holds " + bufferBytes + " bytes: a truncated or damaged file");
        }
        if (end - begin != bits / 8) {
            throw new SafetensorsFormatException(file, where + " is " + dtype + " " + Arrays.toString(shape)
                    + " = " + bits / 8 + " bytes, but its data_offsets [" + begin + ", " + end + "] span "
                    + (end - begin) + " bytes");
        }
        return new SafetensorsHeader.Entry(name, dtype, shape, begin, end);
    }

    /** An array of integers {@code >= 0} that fit a long, of length {@code length} (any when negative). */
    private static long[] integers(Path file, String where, String key, JsonNode v, int length)
            throws SafetensorsFormatException {
        if (v == null || !v.isArray()) {
            throw new SafetensorsFormatException(file, where + " has no \"" + key + "\" array"
                    + (v == null ? "" : " (it is " + kind(v) + ")"));
        }
        if (length >= 0 && v.size() != length) {
            throw new SafetensorsFormatException(file, where + " \"" + key + "\" must have " + length
                    + " numbers, has " + v.size() + ": " + v);
        }
        long[] out = new long[v.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode x = v.get(i);
            if (!x.isIntegralNumber()) {
                throw new SafetensorsFormatException(file, where + " \"" + key + "\" holds " + x
                        + ", not an integer: " + v);
            }
            BigInteger b = x.bigIntegerValue();
            if (b.signum() < 0) {
                throw new SafetensorsFormatException(file, where + " \"" + key + "\" holds negative " + b + ": " + v);
            }
            if (b.bitLength() > 63) {
                throw new SafetensorsFormatException(file, where + " \"" + key + "\" holds " + b
                        + ", beyond 2^63 - 1: " + v);
            }
            out[i] = b.longValue();
        }
        return out;
    }

    private static String kind(JsonNode v) {
        return v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT) + " " + abbreviate(v.toString());
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    private static void requireLittleEndian() {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("safetensors I/O needs a little-endian host; this one is "
                    + ByteOrder.nativeOrder());
        }
    }
}
