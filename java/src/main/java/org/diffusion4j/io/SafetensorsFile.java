package org.diffusion4j.io;

import org.diffusion4j.tensor.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * The tensors and metadata read from a safetensors file by {@link Safetensors#read}. The tensors belong to
 * the {@link org.diffusion4j.tensor.TensorScope} given to {@code read} (zero-copy tensors included: their
 * file mapping is released when that scope closes).
 *
 * @param tensors  the tensors by name, in the order of their data offsets
 * @param metadata the {@code "__metadata__"} strings (empty when the file has none)
 * @param zeroCopy names of the tensors that wrap the file mapping instead of holding a copy
 * @param header   the validated header
 */
public record SafetensorsFile(Map<String, Tensor> tensors, Map<String, String> metadata, Set<String> zeroCopy,
                              SafetensorsHeader header) {

    /** Copies the maps and the set (unmodifiable); the tensors themselves are shared, not copied. */
    public SafetensorsFile {
        tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        metadata = Map.copyOf(metadata);
        zeroCopy = Set.copyOf(zeroCopy);
    }

    /**
     * The tensor named {@code name}.
     *
     * @throws NoSuchElementException naming the tensor and the names the file has
     */
    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new NoSuchElementException("no tensor '" + name + "' was read; the names are " + tensors.keySet());
        }
        return t;
    }

    /** True when tensor {@code name} wraps the memory-mapped file without a copy. */
    public boolean isZeroCopy(String name) {
        return zeroCopy.contains(name);
    }
}
