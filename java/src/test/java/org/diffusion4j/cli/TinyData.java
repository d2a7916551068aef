package org.diffusion4j.cli;

import org.diffusion4j.io.Idx;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Small synthetic datasets written in the tests: IDX image folders of three visually distinct classes. */
final class TinyData {

    static final int SIDE = 16;
    static final int CLASSES = 3;

    private TinyData() {
    }

    /**
     * Image {@code i} of class {@code c}: a horizontal bar (0), a vertical bar (1) or a hollow square (2), at a
     * position and brightness that vary with {@code i}, over a faint deterministic texture; u8 {@code [SIDE, SIDE]}.
     */
    static byte[] image(int c, int i) {
        byte[] img = new byte[SIDE * SIDE];
        int off = i % 5;
        int level = 180 + (i * 7) % 70;
        for (int y = 0; y < SIDE; y++) {
            for (int x = 0; x < SIDE; x++) {
                int v = ((x * 31 + y * 17 + i * 13) % 23);                     // faint texture
                boolean on = switch (c) {
                    case 0 -> y >= 5 + off && y < 8 + off && x >= 2 && x < 14;
                    case 1 -> x >= 5 + off && x < 8 + off && y >= 2 && y < 14;
                    default -> (x == 3 + off / 2 || x == 12 - off / 2 || y == 3 + off / 2 || y == 12 - off / 2)
                            && x >= 3 + off / 2 && x <= 12 - off / 2 && y >= 3 + off / 2 && y <= 12 - off / 2;
                };
                img[y * SIDE + x] = (byte) (on ? level : v);
            }
        }
        return img;
    }

    /** Writes {@code prefix-images-idx3-ubyte[.gz]} and labels with {@code n} images cycling through the classes. */
    static void writeIdx(Path dir, String prefix, int n, int firstId, boolean gz) throws IOException {
        Files.createDirectories(dir);
        byte[] images = new byte[n * SIDE * SIDE];
        byte[] labels = new byte[n];
        for (int i = 0; i < n; i++) {
            int c = i % CLASSES;
            labels[i] = (byte) c;
            System.arraycopy(image(c, firstId + i), 0, images, i * SIDE * SIDE, SIDE * SIDE);
        }
        String ext = gz ? ".gz" : "";
        Idx.write(dir.resolve(prefix + "-images-idx3-ubyte" + ext), Idx.Array.ofU8(images, n, SIDE, SIDE));
        Idx.write(dir.resolve(prefix + "-labels-idx1-ubyte" + ext), Idx.Array.ofU8(labels, n));
    }

    /** An IDX folder with {@code train} training and {@code test} t10k images (gzipped). */
    static Path idxFolder(Path dir, int train, int test) throws IOException {
        writeIdx(dir, "train", train, 0, true);
        writeIdx(dir, "t10k", test, 100_000, true);
        return dir;
    }
}
