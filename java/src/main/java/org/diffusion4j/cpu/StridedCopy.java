package org.diffusion4j.cpu;

import java.lang.foreign.MemorySegment;

import static org.diffusion4j.cpu.Elementwise.I16;
import static org.diffusion4j.cpu.Elementwise.I32;

/**
 * Copies a strided view (any non-negative element strides) into a contiguous row-major destination, bit for
 * bit, for 2- and 4-byte elements. This is how permuted, transposed and sliced views are materialised and
 * how {@code copyToHost} reads any view.
 *
 * <p>The view is first simplified: size-1 dims are dropped and dims whose strides chain are merged (the
 * element order is unchanged). Then one of three paths runs:
 * <ul>
 *   <li>contiguous: one bulk copy (split into 1 MiB pieces over the pool when large);</li>
 *   <li>unit inner stride: one bulk copy per inner row;</li>
 *   <li>otherwise (e.g. a transpose): the last two dims are walked in 32 x 32 tiles, so that both the
 *       reads and the writes of a tile stay within a few cache lines each.</li>
 * </ul>
 */
final class StridedCopy {

    /** Tile edge of the 2-D path. */
    private static final int TILE = 32;
    /** Bytes per task of the bulk path. */
    private static final long BULK_PIECE = 1 << 20;

    private StridedCopy() {
    }

    /**
     * Copies the view {@code (src, offset, shape, strides)} with element size {@code es} (2 or 4 bytes) into
     * {@code dst} from byte 0, row-major.
     */
    static void copy(WorkerPool pool, MemorySegment src, long offset, long[] shape, long[] strides, int es,
                     MemorySegment dst) {
        long numel = 1;
        for (long d : shape) {
            numel *= d;
        }
        if (numel == 0) {
            return;
        }
        long[][] c = coalesce(shape, strides);
        long[] s = c[0];
        long[] st = c[1];
        int r = s.length;
        if (r == 0 || (r == 1 && st[0] == 1)) {
            bulk(pool, src, offset * es, dst, 0, numel * es);
            return;
        }
        if (st[r - 1] == 1) {
            long inner = s[r - 1];
            long outer = numel / inner;
            pool.forRows(outer, inner, (o0, o1) -> {
                for (long o = o0; o < o1; o++) {
                    long base = offset + outerOffset(o, s, st, r - 1);
                    MemorySegment.copy(src, base * es, dst, o * inner * es, inner * es);
                }
            });
            return;
        }
        if (r == 1) {
            long n = s[0];
            long stride = st[0];
            pool.forRange(n, WorkerPool.GRAIN, (e0, e1) -> gather1d(src, offset, stride, es, dst, e0, e1));
            return;
        }
        // 2-D tiles over the last two dims [n0, n1] with strides (s0, s1), for each outer index.
        long n0 = s[r - 2];
        long n1 = s[r - 1];
        long s0 = st[r - 2];
        long s1 = st[r - 1];
        long outer = numel / (n0 * n1);
        long tileRows = (n0 + TILE - 1) / TILE;
        long units = outer * tileRows;
        pool.forRows(units, TILE * n1, (u0, u1) -> {
            for (long u = u0; u < u1; u++) {
                long o = u / tileRows;
                long i0 = (u % tileRows) * TILE;
                long i1 = Math.min(n0, i0 + TILE);
                long srcBase = offset + outerOffset(o, s, st, r - 2);
                long dstBase = o * n0 * n1;
                for (long j0 = 0; j0 < n1; j0 += TILE) {
                    long j1 = Math.min(n1, j0 + TILE);
                    tile(src, srcBase, s0, s1, es, dst, dstBase, n1, i0, i1, j0, j1);
                }
            }
        });
    }

    private static void tile(MemorySegment src, long srcBase, long s0, long s1, int es, MemorySegment dst,
                             long dstBase, long n1, long i0, long i1, long j0, long j1) {
        if (es == 4) {
            for (long i = i0; i < i1; i++) {
                long si = srcBase + i * s0;
                long di = dstBase + i * n1;
                for (long j = j0; j < j1; j++) {
                    dst.setAtIndex(I32, di + j, src.getAtIndex(I32, si + j * s1));
                }
            }
        } else {
            for (long i = i0; i < i1; i++) {
                long si = srcBase + i * s0;
                long di = dstBase + i * n1;
                for (long j = j0; j < j1; j++) {
                    dst.setAtIndex(I16, di + j, src.getAtIndex(I16, si + j * s1));
                }
            }
        }
    }

    private static void gather1d(MemorySegment src, long offset, long stride, int es, MemorySegment dst,
                                 long e0, long e1) {
        if (es == 4) {
            for (long e = e0; e < e1; e++) {
                dst.setAtIndex(I32, e, src.getAtIndex(I32, offset + e * stride));
            }
        } else {
            for (long e = e0; e < e1; e++) {
                dst.setAtIndex(I16, e, src.getAtIndex(I16, offset + e * stride));
            }
        }
    }

    /** Bulk byte copy of {@code bytes} bytes, in 1 MiB pieces over the pool when large. */
    static void bulk(WorkerPool pool, MemorySegment src, long srcByte, MemorySegment dst, long dstByte, long bytes) {
        long pieces = (bytes + BULK_PIECE - 1) / BULK_PIECE;
        if (pieces <= 1) {
            MemorySegment.copy(src, srcByte, dst, dstByte, bytes);
            return;
        }
        pool.forTasks((int) pieces, bytes >= 4 * BULK_PIECE, t -> {
            long from = t * BULK_PIECE;
            long n = Math.min(BULK_PIECE, bytes - from);
            MemorySegment.copy(src, srcByte + from, dst, dstByte + from, n);
        });
    }

    /** Element offset of outer index {@code o} over dims {@code [0, k)} (row-major). */
    private static long outerOffset(long o, long[] s, long[] st, int k) {
        long off = 0;
        for (int d = k - 1; d >= 0; d--) {
            long i = o % s[d];
            o /= s[d];
            off += i * st[d];
        }
        return off;
    }

    /**
     * Drops size-1 dims and merges dims {@code d, d+1} whose strides chain ({@code stride[d] == stride[d+1] *
     * shape[d+1]}); the row-major element order is unchanged. Returns {@code {shape, strides}}.
     */
    static long[][] coalesce(long[] shape, long[] strides) {
        long[] s = new long[shape.length];
        long[] st = new long[shape.length];
        int r = 0;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 1) {
                continue;
            }
            if (r > 0 && st[r - 1] == strides[d] * shape[d]) {
                s[r - 1] *= shape[d];
                st[r - 1] = strides[d];
            } else {
                s[r] = shape[d];
                st[r] = strides[d];
                r++;
            }
        }
        return new long[][] {java.util.Arrays.copyOf(s, r), java.util.Arrays.copyOf(st, r)};
    }
}
