package org.diffusion4j.io;

import java.nio.file.Path;

/**
 * A safetensors file that breaks the format: a header length beyond the file or above
 * {@link Safetensors#MAX_HEADER_BYTES}, a header that is not UTF-8 JSON of the required shape, an unknown
 * dtype, a shape whose byte count differs from its {@code data_offsets} range, offsets that overlap, leave
 * holes or run past the file, a duplicated name. The message names the file, the tensor and the values.
 */
public final class SafetensorsFormatException extends FileFormatException {

    /**
     * @param file    the offending file
     * @param problem what is wrong with it, without the file name
     */
    public SafetensorsFormatException(Path file, String problem) {
        super(file, problem);
    }

    /**
     * @param file    the offending file
     * @param problem what is wrong with it, without the file name
     * @param cause   the parser's exception
     */
    public SafetensorsFormatException(Path file, String problem, Throwable cause) {
        super(file, problem, cause);
    }
}
