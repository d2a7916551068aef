package org.diffusion4j.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The EXIF orientation of a JPEG (TIFF tag 0x0112 in IFD0 of the APP1 "Exif" segment; CIPA DC-008 / JEITA CP-3451,
 * "Exif 2.32", §4.6.4 A) or of a PNG (its "eXIf" chunk), and its application to a square plane, as PIL's {@code ImageOps.exif_transpose}.
 *
 * <p>Values: 1 as stored, 2 mirrored left-right, 3 turned 180°, 4 mirrored top-bottom, 5 transposed (mirrored along
 * the main diagonal), 6 to be turned 90° clockwise, 7 transversed (mirrored along the other diagonal), 8 to be turned
 * 90° counter-clockwise.
 */
final class Exif {

    private Exif() {
    }

    /** JPEG segments before the first scan looked at for the APP1 "Exif" segment before giving up. */
    private static final int MAX_SEGMENTS = 256;

    /**
     * The orientation (1–8) of {@code file} when it is a JPEG or PNG with a valid EXIF orientation tag, else 1; a broken or
     * absent EXIF block is not an error (the image decoder reports a broken file). Reads the segment headers up to
     * the first scan, skipping their contents, and the APP1 segment's (at most 64 KiB).
     */
    static int orientation(Path file) {
        try (InputStream in = new java.io.BufferedInputStream(Files.newInputStream(file), 1024)) {
            return orientation(in);
        } catch (IOException | RuntimeException e) {
            return 1;
        }
    }

    /** {@link #orientation(Path)} of a file's first bytes. */
    static int orientation(byte[] b) {
        try {
            return orientation(new java.io.ByteArrayInputStream(b));
        } catch (IOException e) {
            return 1;
        }
    }

    private static int orientation(InputStream in) throws IOException {
        int first = in.read();
        if (first == 0x89) {
            return pngOrientation(in);
        }
        if (first != 0xFF || in.read() != 0xD8) {
            return 1;                                               // not a JPEG: read no further
        }
        for (int seg = 0; seg < MAX_SEGMENTS; seg++) {
            int ff = in.read();
            if (ff != 0xFF) {
                return 1;
            }
            int marker = in.read();
            while (marker == 0xFF) {                                 // fill bytes
                marker = in.read();
            }
            if (marker < 0 || marker == 0xDA || marker == 0xD9) {    // end of data, start of scan, end of image
                return 1;
            }
            int hi = in.read();
            int lo = in.read();
            if ((hi | lo) < 0) {
                return 1;
            }
            int len = (hi << 8) | lo;
            if (len < 2) {
                return 1;
            }
            if (marker == 0xE1) {
                byte[] body = in.readNBytes(len - 2);
                if (body.length == len - 2 && body.length >= 6 && body[0] == 'E' && body[1] == 'x' && body[2] == 'i'
                        && body[3] == 'f' && body[4] == 0 && body[5] == 0) {
                    return fromTiff(body, 6, body.length);           // the first Exif segment decides, as in PIL
                }
            } else {
                in.skipNBytes(len - 2);                              // EOFException (an IOException) when short
            }
        }
        return 1;
    }

    /** PNG chunks before the image data looked at for an "eXIf" chunk before giving up. */
    private static final int MAX_CHUNKS = 1024;

    /** The largest eXIf chunk read (larger ones count as absent). */
    private static final int MAX_EXIF_CHUNK = 1 << 20;

    /**
     * The orientation of a PNG's "eXIf" chunk (PNG Third Edition §11.3.3.6, the TIFF structure without the JPEG's
     * "Exif\0\0" prefix; PIL reads it and {@code exif_transpose} applies it), looked for before the first IDAT;
     * {@code in} is past the signature's first byte.
     */
    private static int pngOrientation(InputStream in) throws IOException {
        byte[] rest = in.readNBytes(7);
        if (rest.length != 7 || rest[0] != 'P' || rest[1] != 'N' || rest[2] != 'G') {
            return 1;
        }
        for (int c = 0; c < MAX_CHUNKS; c++) {
            byte[] head = in.readNBytes(8);
            if (head.length != 8) {
                return 1;
            }
            long len = u32(head, 0, false);
            String type = new String(head, 4, 4, java.nio.charset.StandardCharsets.ISO_8859_1);
            if (type.equals("IDAT") || type.equals("IEND")) {
                return 1;
            }
            if (type.equals("eXIf") && len <= MAX_EXIF_CHUNK) {
                byte[] body = in.readNBytes((int) len);
                return body.length == len ? fromTiff(body, 0, body.length) : 1;
            }
            in.skipNBytes(len + 4);                                  // data and CRC; EOFException when short
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
                if (u32(b, e + 4, little) < 1) {
                    return 1;
                }
                // SHORT as the specification says; LONG and extra values read as PIL does (the first value)
                long values = u32(b, e + 4, little);
                long v = type == 3 && values <= 2 ? u16(b, e + 8, little)          // inline values only
                        : type == 4 && values == 1 ? u32(b, e + 8, little) : 0;
                return v >= 1 && v <= 8 ? (int) v : 1;
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
