package org.diffusion4j.cli;

import org.diffusion4j.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The layout of a run folder ({@code train --out}):
 * <pre>
 *   run.json                         configuration and measured numbers ({@link RunJson})
 *   checkpoints/step-000500.safetensors, …   periodic checkpoints (full training state)
 *   checkpoints/latest.safetensors   a copy of the newest one (what --resume, sample and eval read)
 *   samples/step-000500.png, …       sample grids (one column per class for a class-conditional model)
 *   samples/latest.png               a copy of the newest grid
 *   loss.csv                         step,loss of every step
 *   loss.png                         the loss curve
 *   .lock                            locked ({@link FileChannel#tryLock()}) by the process writing the folder
 * </pre>
 * Every file is written atomically ({@link AtomicFiles}); a killed process can leave only temporary files
 * ({@code .NAME.RANDOM.tmp}), never a partial file under a final name, and {@code --resume} deletes them.
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

    /**
     * Deletes the step checkpoints ({@code checkpoints/step-N.safetensors}) but the newest {@code keep} by step
     * number; {@code latest} and {@code best} are separate files and stay. Returns how many were deleted.
     *
     * @throws IOException when the folder cannot be listed or a file cannot be deleted
     */
    int pruneCheckpoints(int keep) throws IOException {
        List<long[]> steps = new ArrayList<>();                     // {step, index into names}
        List<Path> files = new ArrayList<>();
        try (var st = Files.list(checkpoints())) {
            st.forEach(p -> {
                String n = p.getFileName().toString();
                if (n.matches("step-\\d{1,18}\\.safetensors")) {
                    steps.add(new long[] {Long.parseLong(n.substring(5, n.length() - 12)), files.size()});
                    files.add(p);
                }
            });
        }
        steps.sort((a, b) -> Long.compare(b[0], a[0]));             // newest first
        int deleted = 0;
        for (int i = keep; i < steps.size(); i++) {
            Files.deleteIfExists(files.get((int) steps.get(i)[1]));
            deleted++;
        }
        return deleted;
    }

    Path latestCheckpoint() {
        return checkpoints().resolve(LATEST);
    }

    /** {@code checkpoints/best.safetensors}: the checkpoint of the lowest held-out loss so far. */
    Path bestCheckpoint() {
        return checkpoints().resolve("best.safetensors");
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

    /** {@code held_out_loss.csv}: {@code step,held_out_loss} rows ({@code train --held-out-loss-every}). */
    Path heldOutLossCsv() {
        return root.resolve("held_out_loss.csv");
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
        try (FileChannel in = FileChannel.open(source, StandardOpenOption.READ)) {
            long size = in.size();
            AtomicFiles.write(target, ch -> {
                long pos = 0;
                while (pos < size) {
                    long n = ch.transferFrom(in, pos, size - pos);
                    if (n <= 0) {
                        throw new java.io.EOFException(source + " shrank while being copied");
                    }
                    pos += n;
                }
            });
        }
    }

    /** Name of the lock file held by the process writing the run folder. */
    static final String LOCK = ".lock";

    /**
     * Deletes stale temporary files ({@code .*.tmp}, left by a killed process) in the root, {@code checkpoints/}
     * and {@code samples/}.
     *
     * @return how many were deleted
     */
    int removeStaleTemporaries() throws IOException {
        int n = 0;
        for (Path dir : new Path[] {root, checkpoints(), samples()}) {
            if (!Files.isDirectory(dir)) {
                continue;
            }
            try (var s = Files.list(dir)) {
                for (Path p : (Iterable<Path>) s::iterator) {
                    String name = p.getFileName().toString();
                    if (name.startsWith(".") && name.endsWith(".tmp") && Files.isRegularFile(p)
                            && !AtomicFiles.inFlight().contains(p.toAbsolutePath().normalize())
                            && Files.deleteIfExists(p)) {
                        n++;
                    }
                }
            }
        }
        return n;
    }

    /**
     * Locks the run folder (creating it) for this process: an exclusive {@link FileChannel#tryLock()} on its
     * {@value #LOCK} file, held until the returned lock is closed.
     *
     * @throws IllegalStateException when another process (or another command in this one) holds it
     */
    Lock lock() throws IOException {
        Files.createDirectories(root);
        FileChannel ch = FileChannel.open(root.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (java.nio.channels.OverlappingFileLockException e) {
            l = null;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        if (l == null) {
            ch.close();
            throw new IllegalStateException("run folder " + root + " is in use by another process");
        }
        return new Lock(ch, l);
    }

    /** A held run-folder lock. */
    record Lock(FileChannel channel, FileLock lock) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            try {
                lock.release();
            } finally {
                channel.close();
            }
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
            RunFolder folder = new RunFolder(arg);
            Path latest = folder.latestCheckpoint();
            if (!Files.isRegularFile(latest)) {
                if (!Files.exists(folder.runJson())) {
                    throw new java.nio.file.NoSuchFileException(arg.toString(), null, "not a run folder (no run.json, "
                            + "no checkpoints/latest.safetensors); give a run folder of train or a .safetensors file");
                }
                String newest = null;
                if (Files.isDirectory(folder.checkpoints())) {
                    try (var files = Files.list(folder.checkpoints())) {
                        newest = files.map(f -> f.getFileName().toString())
                                .filter(n -> n.matches("step-\\d{1,18}\\.safetensors"))
                                .max(java.util.Comparator.comparingLong(n -> Long.parseLong(
                                        n.substring(5, n.length() - ".safetensors".length())))).orElse(null);
                    }
                }
                throw new java.nio.file.NoSuchFileException(latest.toString(), null, newest != null
                        ? "missing; the newest step checkpoint is " + folder.checkpoints().resolve(newest)
                        + ": give that file"
                        : Files.isRegularFile(folder.bestCheckpoint())
                        ? "missing, and no step checkpoint either; the run's best checkpoint is "
                        + folder.bestCheckpoint() + ": give that file"
                        : "the run folder has no checkpoint yet");
            }
            return latest;
        }
        if (!Files.exists(arg)) {
            throw new java.nio.file.NoSuchFileException(arg.toString(), null, "no such checkpoint file");
        }
        if (!Files.isRegularFile(arg)) {
            throw new java.nio.file.FileSystemException(arg.toString(), null,
                    "not a regular file (give a checkpoint file or a run folder)");
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
