package org.diffusion4j.io;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PushbackInputStream;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;
import java.util.zip.ZipException;

/**
 * A gzip decoder (RFC 1952) that, unlike {@link java.util.zip.GZIPInputStream}, refuses bytes after the last member:
 * the JDK's stream reads concatenated members but silently drops anything else that follows, so a file with junk
 * appended (a broken download, two files glued together) would load as if it were whole. Each member's header is
 * checked (magic, method 8 = deflate, reserved flags clear; optional extra field, name, comment and header CRC are
 * skipped), its data inflated and its trailer checked (CRC-32 and length mod 2^32). Errors are
 * {@link ZipException} (bad data) or {@link EOFException} (truncation), as the JDK's stream throws.
 */
final class StrictGzipInputStream extends InputStream {

    private static final int CHUNK = 1 << 16;

    private final PushbackInputStream in;
    private final Inflater inflater = new Inflater(true);
    private final byte[] input = new byte[CHUNK];
    private final CRC32 crc = new CRC32();
    private long memberBytes;
    /** Valid bytes in {@link #input} since the last {@code setInput}. */
    private int inputLen;
    private boolean done;

    StrictGzipInputStream(InputStream source) throws IOException {
        this.in = new PushbackInputStream(source, CHUNK);
        readHeader(true);
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xFF;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        while (!done) {
            int n;
            try {
                n = inflater.inflate(b, off, len);
            } catch (DataFormatException e) {
                throw new ZipException("invalid deflate data: " + e.getMessage());
            }
            if (n > 0) {
                crc.update(b, off, n);
                memberBytes += n;
                return n;
            }
            if (inflater.finished()) {
                endMember();
            } else if (inflater.needsDictionary()) {
                throw new ZipException("deflate data asks for a preset dictionary, which gzip does not have");
            } else if (inflater.needsInput()) {
                int r = in.read(input, 0, input.length);
                if (r < 0) {
                    throw new EOFException("unexpected end of the gzip data");
                }
                inputLen = r;
                inflater.setInput(input, 0, r);
            }
        }
        return -1;
    }

    /** Checks the member's trailer; then EOF ends the stream, a gzip magic starts a member, anything else fails. */
    private void endMember() throws IOException {
        int rest = inflater.getRemaining();
        if (rest > 0) {                                        // bytes after the deflate data: the trailer on
            in.unread(input, inputLen - rest, rest);
        }
        long storedCrc = readLe32();
        long storedSize = readLe32();
        if (storedCrc != crc.getValue()) {
            throw new ZipException(String.format("CRC-32 mismatch: the trailer says %08x, the data give %08x",
                    storedCrc, crc.getValue()));
        }
        if (storedSize != (memberBytes & 0xFFFF_FFFFL)) {
            throw new ZipException("length mismatch: the trailer says " + storedSize + " bytes (mod 2^32), the data "
                    + "give " + memberBytes);
        }
        int b0 = in.read();
        if (b0 < 0) {
            done = true;
            inflater.end();
            return;
        }
        int b1 = in.read();
        if (b0 != 0x1f || b1 != 0x8b) {
            throw new ZipException("bytes follow the end of the gzip data (neither the end of the file nor another "
                    + "gzip member): trailing garbage");
        }
        in.unread(new byte[] {(byte) b0, (byte) b1});
        inflater.reset();
        crc.reset();
        memberBytes = 0;
        readHeader(false);
    }

    private void readHeader(boolean first) throws IOException {
        int id1 = in.read();
        int id2 = in.read();
        if (id1 != 0x1f || id2 != 0x8b) {
            throw new ZipException(first ? "not in gzip format" : "bad gzip member header");
        }
        int method = readByte();
        if (method != 8) {
            throw new ZipException("unsupported gzip compression method " + method + " (only 8, deflate)");
        }
        int flags = readByte();
        if ((flags & 0xE0) != 0) {
            throw new ZipException("reserved gzip header flags set: " + flags);
        }
        skip(6);                                               // MTIME, XFL, OS
        if ((flags & 4) != 0) {                                // FEXTRA
            int xlen = readByte() | readByte() << 8;
            skip(xlen);
        }
        if ((flags & 8) != 0) {                                // FNAME, zero-terminated
            while (readByte() != 0) {
                // skip
            }
        }
        if ((flags & 16) != 0) {                               // FCOMMENT, zero-terminated
            while (readByte() != 0) {
                // skip
            }
        }
        if ((flags & 2) != 0) {                                // FHCRC
            skip(2);
        }
    }

    private int readByte() throws IOException {
        int b = in.read();
        if (b < 0) {
            throw new EOFException("unexpected end of a gzip header or trailer");
        }
        return b;
    }

    private void skip(int n) throws IOException {
        for (int i = 0; i < n; i++) {
            readByte();
        }
    }

    private long readLe32() throws IOException {
        return readByte() | (long) readByte() << 8 | (long) readByte() << 16 | (long) readByte() << 24;
    }

    @Override
    public void close() throws IOException {
        inflater.end();
        in.close();
    }
}
