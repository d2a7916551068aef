package org.diffusion4j.training;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A checkpoint that does not fit what it is loaded into, or whose metadata is missing or malformed: the message
 * names the file and the tensor or metadata key (missing, unexpected, shape or dtype mismatch, bad value).
 */
public final class CheckpointException extends IOException {

    private static final long serialVersionUID = 1L;

    /** A problem with {@code file}. */
    public CheckpointException(Path file, String message) {
        super(file + ": " + message);
    }

    /** A problem with {@code file} caused by {@code cause}. */
    public CheckpointException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
    }
}
