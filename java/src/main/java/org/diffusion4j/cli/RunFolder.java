package org.diffusion4j.cli;

import org.diffusion4j.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * The layout of a run folder ({@code train --out}):
 * <pre>
 *   run.json                         configuration and measured numbers ({@link RunJson})
 *   checkpoints/step-000500.safetensors, …   periodic checkpoints (full training state)
 *   checkpoints/latest.safetensors   a copy of the newest one (what --resume, sample and eval read)
 *   samples/step-000500.png, …       sample grids (one row per class for a class-conditional model)
 *   samples/latest.png               a copy of the newest grid
 *   loss.csv                         step,loss of every step
 *   loss.png                         the loss curve
 * </pre>
 * Every file is written atomically ({@link AtomicFiles}).
 */
record RunFolder(Path root) {

    static final String RUN_JSON = "run.json";
    static final String LATEST = "latest.safetensors";

    Path runJson() {
        return root.resolve(RUN_JSON);
    }

    Path checkpoints() {
        return root.resolve("checkpoints");
    }

    Path checkpoint(long step) {
        return checkpoints().resolve(String.format(Locale.ROOT, "step-%06d.safetensors", step));
    }

    Path latestCheckpoint() {
        return checkpoints().resolve(LATEST);
    }

    Path samples() {
        return root.resolve("samples");
    }

    Path grid(long step) {
        return samples().resolve(String.format(Locale.ROOT, "step-%06d.png", step));
    }

    Path latestGrid() {
        return samples().resolve("latest.png");
    }

    Path lossCsv() {
        return root.resolve("loss.csv");
    }

    Path lossPng() {
        return root.resolve("loss.png");
    }

    /** Creates the folder and its sub-folders. */
    void create() throws IOException {
        Files.createDirectories(checkpoints());
        Files.createDirectories(samples());
    }

    /** {@code file} relative to the root, with '/' separators. */
    String relative(Path file) {
        return root.relativize(file).toString().replace('\\', '/');
    }

    /** Atomically replaces {@code target} with a copy of {@code source}. */
    static void copyAtomically(Path source, Path target) throws IOException {
        Path tmp = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".tmp");
        try {
            Files.copy(source, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * The checkpoint a {@code --checkpoint} argument names: a file as is, or a run folder's
     * {@code checkpoints/latest.safetensors}.
     *
     * @throws java.nio.file.NoSuchFileException when neither exists
     */
    static Path resolveCheckpoint(Path arg) throws IOException {
        if (Files.isDirectory(arg)) {
            Path latest = new RunFolder(arg).latestCheckpoint();
            if (!Files.isRegularFile(latest)) {
                throw new java.nio.file.NoSuchFileException(latest.toString(), null,
                        "the run folder has no checkpoint yet");
            }
            return latest;
        }
        if (!Files.isRegularFile(arg)) {
            throw new java.nio.file.NoSuchFileException(arg.toString(), null, "no such checkpoint file");
        }
        return arg;
    }

    /** The run folder a checkpoint belongs to (…/run/checkpoints/x.safetensors → …/run), when it has a run.json. */
    static RunFolder ofCheckpoint(Path checkpoint) {
        Path dir = checkpoint.toAbsolutePath().getParent();
        if (dir != null && dir.getFileName() != null && dir.getFileName().toString().equals("checkpoints")) {
            RunFolder f = new RunFolder(dir.getParent());
            if (Files.isRegularFile(f.runJson())) {
                return f;
            }
        }
        return null;
    }
}
