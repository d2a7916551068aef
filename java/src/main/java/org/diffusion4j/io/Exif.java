package org.diffusion4j.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The EXIF orientation of a JPEG (TIFF tag 0x0112 in IFD0 of the APP1 "Exif" segment; CIPA DC-008 / JEITA CP-3451,
 * "Exif 2.32", §4.6.4 A) and its application to a square plane, as PIL's {@code ImageOps.exif_transpose}.
 *
 * <p>Values: 1 as stored, 2 mirrored left-right, 3 turned 180°, 4 mirrored top-bottom, 5 transposed (mirrored along
 * the main diagonal), 6 to be turned 90° clockwise, 7 transversed (mirrored along the other diagonal), 8 to be turned
 * 90° counter-clockwise.
 */
final class Exif {

    private Exif() {
    }

    /** Bytes of a JPEG's header searched for the APP1 segment (normally right after SOI or APP0) before giving up. */
    private static final int MAX_SCAN = 1 << 18;

    /**
     * The orientation (1–8) of {@code file} when it is a JPEG with a valid EXIF orientation tag, else 1; a broken or
     * absent EXIF block is not an error (the image decoder reports a broken file).
     */
    static int orientation(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] soi = in.readNBytes(2);
            if (soi.length < 2 || (soi[0] & 0xff) != 0xFF || (soi[1] & 0xff) != 0xD8) {
                return 1;                                           // not a JPEG: read no further
            }
            byte[] rest = in.readNBytes(MAX_SCAN - 2);
            byte[] head = new byte[2 + rest.length];
            head[0] = soi[0];
            head[1] = soi[1];
            System.arraycopy(rest, 0, head, 2, rest.length);
            return orientation(head);
        } catch (IOException | RuntimeException e) {
            return 1;
        }
    }

    /** {@link #orientation(Path)} of a file's first bytes. */
    static int orientation(byte[] b) {
        if (b.length < 4 || (b[0] & 0xff) != 0xFF || (b[1] & 0xff) != 0xD8) {
            return 1;                                               // not a JPEG
        }
        int p = 2;
        while (p + 4 <= b.length) {
            if ((b[p] & 0xff) != 0xFF) {
                return 1;
            }
            int marker = b[p + 1] & 0xff;
            if (marker == 0xFF) {                                    // fill byte
                p++;
                continue;
            }
            if (marker == 0xDA || marker == 0xD9) {                  // start of scan / end of image: no EXIF
                return 1;
            }
            int len = ((b[p + 2] & 0xff) << 8) | (b[p + 3] & 0xff);
            if (len < 2 || p + 2 + len > b.length) {
                return 1;
            }
            if (marker == 0xE1 && len >= 8 && b[p + 4] == 'E' && b[p + 5] == 'x' && b[p + 6] == 'i' && b[p + 7] == 'f'
                    && b[p + 8] == 0 && b[p + 9] == 0) {
                return fromTiff(b, p + 10, p + 2 + len);
            }
            p += 2 + len;
        }
        return 1;
    }

    /** The orientation tag of the TIFF structure in {@code b[start, end)}, or 1. */
    private static int fromTiff(byte[] b, int start, int end) {
        if (end - start < 8) {
            return 1;
        }
        boolean little;
        if (b[start] == 'I' && b[start + 1] == 'I') {
            little = true;
        } else if (b[start] == 'M' && b[start + 1] == 'M') {
            little = false;
        } else {
            return 1;
        }
        if (u16(b, start + 2, little) != 42) {
            return 1;
        }
        long ifd = u32(b, start + 4, little);
        if (ifd < 8 || ifd > end - start - 2) {
            return 1;
        }
        int q = start + (int) ifd;
        int count = u16(b, q, little);
        for (int i = 0; i < count; i++) {
            int e = q + 2 + 12 * i;
            if (e + 12 > end) {
                return 1;
            }
            if (u16(b, e, little) == 0x0112) {
                int type = u16(b, e + 2, little);
                if (type != 3 || u32(b, e + 4, little) != 1) {       // SHORT, one value
                    return 1;
                }
                int v = u16(b, e + 8, little);
                return v >= 1 && v <= 8 ? v : 1;
            }
        }
        return 1;
    }

    private static int u16(byte[] b, int i, boolean little) {
        int x = b[i] & 0xff;
        int y = b[i + 1] & 0xff;
        return little ? x | (y << 8) : (x << 8) | y;
    }

    private static long u32(byte[] b, int i, boolean little) {
        long lo = u16(b, little ? i : i + 2, little);
        long hi = u16(b, little ? i + 2 : i, little);
        return (hi << 16) | lo;
    }

    /**
     * The square plane {@code [r, r]} (row-major) as displayed under {@code orientation}: the pixel shown at row
     * {@code y}, column {@code x} of the result. Returns {@code plane} itself for orientation 1.
     */
    static double[] orient(double[] plane, int r, int orientation) {
        if (orientation <= 1 || orientation > 8) {
            return plane;
        }
        double[] out = new double[plane.length];
        int m = r - 1;
        for (int y = 0; y < r; y++) {
            for (int x = 0; x < r; x++) {
                int sy;
                int sx;
                switch (orientation) {
                    case 2 -> { sy = y; sx = m - x; }
                    case 3 -> { sy = m - y; sx = m - x; }
                    case 4 -> { sy = m - y; sx = x; }
                    case 5 -> { sy = x; sx = y; }
                    case 6 -> { sy = m - x; sx = y; }
                    case 7 -> { sy = m - x; sx = m - y; }
                    default -> { sy = x; sx = m - y; }                 // 8
                }
                out[y * r + x] = plane[sy * r + sx];
            }
        }
        return out;
    }
}
