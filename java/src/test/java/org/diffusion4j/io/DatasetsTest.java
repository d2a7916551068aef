package org.diffusion4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.diffusion4j.io.IoTestSupport.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Choosing the reader for a path, and the atomic writer every format uses. */
class DatasetsTest {

    @TempDir
    Path dir;

    @Test
    void gatherMirrorsTheLastDimOfTheFlaggedSamples() {
        // two samples [C=2, H=1, W=3]
        float[] values = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        Dataset d = Dataset.of(values, new long[] {2, 1, 3}, null, List.of());
        try (org.diffusion4j.cpu.CpuBackend cpu = new org.diffusion4j.cpu.CpuBackend(1);
             org.diffusion4j.tensor.TensorScope s = org.diffusion4j.tensor.TensorScope.open()) {
            org.diffusion4j.tensor.Tensor x = cpu.empty(s, org.diffusion4j.tensor.DType.F32, 3, 2, 1, 3);
            d.gather(new int[] {1, 0, 1}, new boolean[] {true, false, false}, x, null);
            assertArrayEquals(new float[] {9, 8, 7, 12, 11, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
                    x.toFloatArray());
            assertThrows(IllegalArgumentException.class,
                    () -> d.gather(new int[] {0}, new boolean[] {true, true}, cpu.empty(s,
                            org.diffusion4j.tensor.DType.F32, 1, 2, 1, 3), null));
            Dataset vectors = Dataset.of(new float[] {1, 2, 3, 4}, new long[] {2}, null, List.of());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> vectors.gather(
                    new int[] {0}, new boolean[] {true}, cpu.empty(s, org.diffusion4j.tensor.DType.F32, 1, 2), null));
            assertTrue(e.getMessage().contains("rank >= 2"), e.getMessage());
        }
    }

    @Test
    void idxFoldersInTheDebianLayout() throws IOException {
        Path fashion = Files.createDirectories(dir.resolve("fashion-mnist"));
        Files.write(fashion.resolve("train-images-idx3-ubyte.gz"), IdxTest.gzip(IdxTest.handMadeImages()));
        Files.write(fashion.resolve("train-labels-idx1-ubyte.gz"), IdxTest.gzip(IdxTest.labels(0, 9)));
        Dataset train = Datasets.load(fashion, Datasets.Options.defaults());
        assertEquals(2, train.size());
        assertEquals(Datasets.FASHION_MNIST_CLASSES, train.classNames());
        assertEquals("Ankle boot", train.classNames().get(train.label(1)));
        Datasets.Options test = Datasets.Options.defaults().withSplit(Datasets.Split.TEST);
        assertEquals(new Datasets.Options(28, 1, Datasets.Split.TEST, Csv.Header.AUTO), test);
        assertEquals(new Datasets.Options(64, 3, Datasets.Split.TEST, Csv.Header.AUTO), test.withImages(64, 3));
        assertFails(FileFormatException.class, fashion, () -> Datasets.load(fashion, test), "t10k-images-idx3-ubyte");
        Files.write(fashion.resolve("t10k-images-idx3-ubyte"), IdxTest.handMadeImages());
        assertFails(FileFormatException.class, fashion, () -> Datasets.load(fashion, test), "no t10k-labels-idx1-ubyte");
        Files.write(fashion.resolve("t10k-labels-idx1-ubyte"), IdxTest.labels(4, 4));
        assertArrayEquals(new int[] {4, 4}, Datasets.load(fashion, test).labels());
        // other data in a folder named "fashion": a label beyond Fashion-MNIST's 10 keeps numbered classes
        Path mine = Files.createDirectories(dir.resolve("my_fashion"));
        Files.write(mine.resolve("train-images-idx3-ubyte"), IdxTest.handMadeImages());
        Files.write(mine.resolve("train-labels-idx1-ubyte"), IdxTest.labels(3, 12));
        Dataset thirteen = Datasets.load(mine, Datasets.Options.defaults());
        assertArrayEquals(new int[] {3, 12}, thirteen.labels());
        assertEquals(13, thirteen.numClasses());
        // a single image file with its labels beside it; a plain folder name gets no class names
        Path mnist = Files.createDirectories(dir.resolve("mnist"));
        Path images = mnist.resolve("train-images-idx3-ubyte");
        Files.write(images, IdxTest.handMadeImages());
        Files.write(mnist.resolve("train-labels-idx1-ubyte"), IdxTest.labels(1, 2));
        Dataset one = Datasets.load(images, Datasets.Options.defaults());
        assertArrayEquals(new int[] {1, 2}, one.labels());
        assertEquals(List.of(), one.classNames());
    }

    @Test
    void filesByExtensionAndImageFolders() throws IOException {
        Path csv = Files.writeString(dir.resolve("points.CSV"), "x,y\n1,2\n3,4\n5,6\n");
        assertEquals(3, Datasets.load(csv, Datasets.Options.defaults()).size());
        Path npy = dir.resolve("rows.npy");
        Npy.write(npy, new float[] {1, 2, 3, 4}, 2, 2);
        assertArrayEquals(new long[] {2}, Datasets.load(npy, Datasets.Options.defaults()).sampleShape());
        Path images = Files.createDirectories(dir.resolve("pics/one"));
        assertTrue(ImageIO.write(new BufferedImage(5, 5, BufferedImage.TYPE_BYTE_GRAY), "png",
                images.resolve("a.png").toFile()));
        Dataset pics = Datasets.load(dir.resolve("pics"), new Datasets.Options(4, 3, Datasets.Split.TRAIN,
                Csv.Header.AUTO));
        assertArrayEquals(new long[] {3, 4, 4}, pics.sampleShape());
        Path other = Files.writeString(dir.resolve("model.bin"), "?");
        assertFails(FileFormatException.class, other, () -> Datasets.load(other, Datasets.Options.defaults()),
                "not a dataset");
        assertThrows(NoSuchFileException.class, () -> Datasets.load(dir.resolve("nothing"), Datasets.Options.defaults()));
    }

    @Test
    void atomicWritesKeepPermissionsAndCleanUpOnFailure() throws IOException {
        Path plain = Files.writeString(dir.resolve("plain.txt"), "a");
        Path atomic = dir.resolve("atomic.txt");
        AtomicFiles.writeBytes(atomic, new byte[] {1, 2, 3});
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(atomic));
        if (Files.getFileStore(dir).supportsFileAttributeView("posix")) {
            assertEquals(PosixFilePermissions.toString(Files.getPosixFilePermissions(plain)),
                    PosixFilePermissions.toString(Files.getPosixFilePermissions(atomic)),
                    "same permissions as a plain write (not createTempFile's 0600)");
        }
        IOException boom = assertThrows(IOException.class, () -> AtomicFiles.write(atomic, ch -> {
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {9, 9, 9, 9, 9}));
            throw new IOException("disk full (simulated)");
        }));
        assertEquals("cannot write " + atomic.toAbsolutePath().normalize() + ": disk full (simulated) (the file is "
                + "unchanged)", boom.getMessage());
        assertEquals("disk full (simulated)", boom.getCause().getMessage());
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(atomic), "old contents intact");
        try (var listing = Files.list(dir)) {
            assertEquals(2, listing.count(), "no temporary file left");
        }
        Path folder = Files.createDirectories(dir.resolve("sub"));
        assertThrows(FileSystemException.class, () -> AtomicFiles.writeBytes(folder, new byte[1]));
        assertThrows(NoSuchFileException.class, () -> AtomicFiles.writeBytes(dir.resolve("no/dir/x"), new byte[1]));
    }
}
