package org.diffusion4j.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A file that exists and can be read but whose contents are not what its format requires: a wrong magic
 * number, a header that contradicts the file size, truncated data, a value that is not a finite number.
 * The message starts with the file and then names the problem, e.g.
 * {@code "/data/train-images-idx3-ubyte: truncated: the header promises 47040000 data bytes, the file holds 1200"}.
 *
 * <p>Missing or unreadable files keep the JDK's own exceptions ({@link java.nio.file.NoSuchFileException},
 * {@link java.nio.file.AccessDeniedException}), which also name the file.
 */
public class FileFormatException extends IOException {

    private final transient Path file;
    private final String problem;

    /**
     * @param file    the offending file (or folder)
     * @param problem what is wrong with it, without the file name
     */
    public FileFormatException(Path file, String problem) {
        this(file, problem, null);
    }

    /**
     * @param file    the offending file (or folder)
     * @param problem what is wrong with it, without the file name
     * @param cause   the lower-level exception (a decoder's, a parser's), or null
     */
    public FileFormatException(Path file, String problem, Throwable cause) {
        super(Objects.requireNonNull(file, "file") + ": " + Objects.requireNonNull(problem, "problem"), cause);
        this.file = file;
        this.problem = problem;
    }

    /** The offending file or folder. */
    public Path file() {
        return file;
    }

    /** What is wrong, without the file name. */
    public String problem() {
        return problem;
    }
}
