package org.diffusion4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link AtomicFiles} on targets that are not plain files (found by an adversarial trial: a checkpoint saved to
 * {@code /dev/full} turned the device into a regular file): a pipe is refused untouched, a symbolic link is written
 * through (the link stays), a dangling link is refused, and a failing body names the file and leaves it unchanged.
 */
class AtomicFilesTest {

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void pipesAreRefusedAndLeftAlone(@TempDir Path dir) throws Exception {
        Path fifo = dir.resolve("pipe");
        Process p = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assertEquals(0, p.waitFor(), "mkfifo");
        FileSystemException e = assertThrows(FileSystemException.class,
                () -> AtomicFiles.writeBytes(fifo, bytes("x")));
        assertTrue(e.getMessage().contains(fifo.toString()) && e.getMessage().contains("not a regular file"),
                e.getMessage());
        assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), "still a pipe");
        try (var s = Files.list(dir)) {
            assertEquals(1, s.count(), "no temporary file left");
        }
    }

    @Test
    void symbolicLinksAreWrittenThroughAndKept(@TempDir Path dir) throws IOException {
        Path real = dir.resolve("real.bin");
        Files.write(real, bytes("old"));
        Path link = Files.createSymbolicLink(dir.resolve("link.bin"), real.getFileName());
        AtomicFiles.writeBytes(link, bytes("new"));
        assertTrue(Files.isSymbolicLink(link), "the link stays a link");
        assertEquals("new", Files.readString(real));
        Path dangling = Files.createSymbolicLink(dir.resolve("dangling.bin"), dir.resolve("missing.bin"));
        FileSystemException e = assertThrows(FileSystemException.class,
                () -> AtomicFiles.writeBytes(dangling, bytes("x")));
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
        assertTrue(Files.isSymbolicLink(dangling));
        assertFalse(Files.exists(dir.resolve("missing.bin")));
    }

    @Test
    void aFailingBodyNamesTheFileAndLeavesItUnchanged(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ckpt.bin");
        Files.write(f, bytes("previous"));
        IOException e = assertThrows(IOException.class, () -> AtomicFiles.write(f, ch -> {
            throw new IOException("No space left on device");
        }));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("No space left on device"),
                e.getMessage());
        assertEquals("previous", Files.readString(f));
        try (var s = Files.list(dir)) {
            assertEquals(1, s.count(), "the temporary file is gone");
        }
    }

    /** Found by an adversarial trial: a chmod 600 file became 644 when replaced. */
    @Test
    void aReplacedFileKeepsItsPermissions(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("private.bin");
        Files.write(f, bytes("old"));
        if (!Files.getFileStore(dir).supportsFileAttributeView("posix")) {
            return;                                         // nothing to keep there
        }
        var mode = java.nio.file.attribute.PosixFilePermissions.fromString("rw-------");
        Files.setPosixFilePermissions(f, mode);
        AtomicFiles.writeBytes(f, bytes("new"));
        assertEquals("new", Files.readString(f));
        assertEquals(mode, Files.getPosixFilePermissions(f));
    }
}
