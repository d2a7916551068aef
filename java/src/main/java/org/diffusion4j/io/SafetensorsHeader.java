package org.diffusion4j.io;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The validated header of a safetensors file ({@link Safetensors#readHeader}).
 *
 * @param headerBytes the JSON header length {@code N} from the file's first 8 bytes
 * @param entries     the tensors in the order of their data offsets
 * @param metadata    the {@code "__metadata__"} strings (empty when the file has none)
 */
public record SafetensorsHeader(long headerBytes, List<Entry> entries, Map<String, String> metadata) {

    /** Copies the entry list and the metadata (unmodifiable). */
    public SafetensorsHeader {
        entries = List.copyOf(entries);
        metadata = Map.copyOf(metadata);
    }

    /** Offset in the file of the byte buffer: {@code 8 + headerBytes}. */
    public long dataStart() {
        return 8 + headerBytes;
    }

    /** Size of the byte buffer: the end of the last tensor (0 for a file without tensors). */
    public long dataBytes() {
        return entries.isEmpty() ? 0 : entries.getLast().end();
    }

    /** The entry named {@code name}, or null. */
    public Entry entry(String name) {
        for (Entry e : entries) {
            if (e.name().equals(name)) {
                return e;
            }
        }
        return null;
    }

    /**
     * One tensor of the header.
     *
     * @param name  the tensor's name
     * @param dtype its element type in the file
     * @param shape its dims (row-major, "C" order)
     * @param begin first byte of its data, relative to the byte buffer
     * @param end   one past its last byte, relative to the byte buffer
     */
    public record Entry(String name, SafetensorsDType dtype, long[] shape, long begin, long end) {

        /**
         * Copies {@code shape}.
         *
         * @throws NullPointerException when {@code name}, {@code dtype} or {@code shape} is null
         */
        public Entry {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(dtype, "dtype");
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        /** Number of elements. */
        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Entry e && name.equals(e.name) && dtype == e.dtype && Arrays.equals(shape, e.shape)
                    && begin == e.begin && end == e.end;
        }

        @Override
        public int hashCode() {
            return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
        }

        @Override
        public String toString() {
            return "'" + name + "' " + dtype + " " + Arrays.toString(shape) + " [" + begin + ", " + end + ")";
        }
    }
}
