package org.diffusion4j.io;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes files so that a reader (or a crash) never sees a half-written one: the contents go to a temporary
 * file in the target's folder ({@code .NAME.RANDOM.tmp}), which is flushed to the device
 * ({@link FileChannel#force(boolean)}) and then renamed over the target with
 * {@link StandardCopyOption#ATOMIC_MOVE} (POSIX {@code rename(2)}: the target is either the old file or the
 * new one). Finally the folder is flushed too, where the platform allows it, so that the rename itself
 * survives a power cut. When anything fails the temporary file is deleted and the target is untouched.
 *
 * <p>Unlike {@link Files#createTempFile}, the temporary file is created with the process's default
 * permissions (umask), and takes those of the file it replaces, so the renamed file has the permissions a plain write
 * would give it.
 *
 * <p>The temporary files in flight are kept in a process-wide registry, so that a shutdown hook (SIGINT, SIGTERM)
 * can delete them with {@link #deleteInFlight()}; failures creating or writing the temporary file are reported
 * with the target's path, not the temporary one.
 */
public final class AtomicFiles {

    /** Temporary files created and not yet renamed or deleted. */
    private static final Set<Path> IN_FLIGHT = ConcurrentHashMap.newKeySet();

    /** Writes the contents through a channel positioned at 0. */
    @FunctionalInterface
    public interface ChannelBody {
        void write(FileChannel channel) throws IOException;
    }

    /** Writes the contents to a stream; the stream must not be closed by the body. */
    @FunctionalInterface
    public interface StreamBody {
        void write(OutputStream out) throws IOException;
    }

    private AtomicFiles() {
    }

    /**
     * Atomically replaces (or creates) {@code target} with what {@code body} writes. A symbolic link is followed: the
     * file it points to is replaced and the link kept.
     *
     * @throws NoSuchFileException   when the target's folder does not exist
     * @throws FileSystemException   when the target is a folder, a device, a pipe or a socket (never replaced by a
     *                               regular file), or a symbolic link to nothing
     * @throws IOException           from the body, the flush or the rename, naming the target; the target is then
     *                               unchanged
     */
    public static void write(Path target, ChannelBody body) throws IOException {
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(body, "body");
        Path abs = target.toAbsolutePath().normalize();
        if (Files.isSymbolicLink(abs)) {
            if (!Files.exists(abs)) {
                throw new FileSystemException(abs.toString(), null, "is a symbolic link to a missing file ("
                        + Files.readSymbolicLink(abs) + "); refusing to replace the link");
            }
            abs = abs.toRealPath();                         // write the file the link points to; keep the link
        }
        Path dir = abs.getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new NoSuchFileException(abs.toString(), null, "its folder does not exist");
        }
        if (Files.isDirectory(abs)) {
            throw new FileSystemException(abs.toString(), null, "is a folder, cannot write a file there");
        }
        if (Files.exists(abs) && !Files.isRegularFile(abs)) {
            throw new FileSystemException(abs.toString(), null, "is not a regular file (a device, pipe or socket); "
                    + "refusing to replace it with one");
        }
        Path tmp;
        try {
            tmp = createTemporary(dir, abs.getFileName().toString());
        } catch (FileSystemException e) {
            throw new FileSystemException(abs.toString(), null, "cannot write here ("
                    + (e.getReason() != null ? e.getReason() : e.getClass().getSimpleName()) + ")");
        }
        IN_FLIGHT.add(tmp);
        boolean moved = false;
        try {
            keepPermissions(abs, tmp);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                body.write(ch);
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
            moved = true;
        } catch (java.nio.channels.ClosedByInterruptException e) {
            InterruptedIOException ie = new InterruptedIOException("interrupted while writing " + abs + " (the thread's "
                    + "interrupt status is set; the file keeps its previous contents)");
            ie.initCause(e);
            throw ie;
        } catch (FileSystemException e) {
            if (tmp.toString().equals(e.getFile())) {
                throw new FileSystemException(abs.toString(), null, "cannot write ("
                        + (e.getReason() != null ? e.getReason() : e.getClass().getSimpleName()) + ")");
            }
            throw e;
        } catch (IOException e) {
            if (e.getClass() == IOException.class && (e.getMessage() == null
                    || !e.getMessage().contains(abs.toString()))) {
                // e.g. "No space left on device" from the channel: say which file (it keeps its old contents)
                throw new IOException("cannot write " + abs + ": " + e.getMessage() + " (the file is unchanged)", e);
            }
            throw e;
        } finally {
            if (!moved) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the original failure is the one worth reporting
                }
            }
            IN_FLIGHT.remove(tmp);
        }
        forceFolder(dir);
    }

    /**
     * Deletes every temporary file of a write still in progress (for a shutdown hook: the writes are abandoned, and
     * their targets keep their previous contents). Safe to call from any thread.
     *
     * @return how many temporary files were deleted
     */
    public static int deleteInFlight() {
        int n = 0;
        for (Path tmp : IN_FLIGHT.toArray(Path[]::new)) {
            try {
                if (Files.deleteIfExists(tmp)) {
                    n++;
                }
            } catch (IOException ignored) {
                // best effort during shutdown
            }
            IN_FLIGHT.remove(tmp);
        }
        return n;
    }

    /** The temporary files of writes in progress (a snapshot). */
    public static Set<Path> inFlight() {
        return Set.copyOf(IN_FLIGHT);
    }

    /** Like {@link #write(Path, ChannelBody)} for a body that writes to a stream. */
    public static void writeStream(Path target, StreamBody body) throws IOException {
        Objects.requireNonNull(body, "body");
        write(target, ch -> {
            OutputStream raw = Channels.newOutputStream(ch);
            OutputStream out = new java.io.BufferedOutputStream(new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    raw.write(b);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    raw.write(b, off, len);
                }
                // close() deliberately not forwarded: the channel is forced and closed by write()
            }, 1 << 16);
            body.write(out);
            out.flush();
        });
    }

    /** Atomically replaces (or creates) {@code target} with {@code bytes}. */
    public static void writeBytes(Path target, byte[] bytes) throws IOException {
        Objects.requireNonNull(bytes, "bytes");
        write(target, ch -> writeFully(ch, java.nio.ByteBuffer.wrap(bytes)));
    }

    /** Writes every remaining byte of {@code buf}. */
    static void writeFully(FileChannel ch, java.nio.ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    private static Path createTemporary(Path dir, String name) throws IOException {
        for (int attempt = 0; ; attempt++) {
            byte[] r = new byte[6];
            ThreadLocalRandom.current().nextBytes(r);
            Path tmp = dir.resolve("." + name + "." + HexFormat.of().formatHex(r) + ".tmp");
            try {
                Files.newByteChannel(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
                return tmp;
            } catch (FileAlreadyExistsException e) {
                if (attempt >= 16) {
                    throw e;
                }
            }
        }
    }

    /**
     * A replaced file keeps its permissions (a {@code chmod 600} checkpoint stays private), as a plain write would;
     * a new one has the process's defaults. Best effort where the file system has no POSIX permissions.
     */
    private static void keepPermissions(Path target, Path tmp) {
        try {
            if (Files.isRegularFile(target)) {
                Files.setPosixFilePermissions(tmp, Files.getPosixFilePermissions(target));
            }
        } catch (IOException | UnsupportedOperationException e) {
            // no POSIX view (e.g. Windows), or not ours to read: the default permissions stand
        }
    }

    /** fsync of the folder so the rename is durable; not every platform can open a folder, which is fine. */
    private static void forceFolder(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // e.g. Windows: folders cannot be opened as channels; the rename is already done
        }
    }
}
