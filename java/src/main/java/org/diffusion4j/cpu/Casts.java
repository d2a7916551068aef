package org.diffusion4j.cpu;

import org.diffusion4j.tensor.DType;

import java.lang.foreign.MemorySegment;

import static org.diffusion4j.cpu.Elementwise.BLOCK;
import static org.diffusion4j.cpu.Elementwise.F32;
import static org.diffusion4j.cpu.Elementwise.I16;

/**
 * Conversions between F32, BF16 and F16, round to nearest even, bit for bit the functions of
 * {@code native/src/ops_math.cuh} ({@code f32_to_bf16}, {@code f32_to_f16}, ...): overflow rounds to
 * infinity, subnormals are kept, NaN stays a quiet NaN with its sign and top payload bits. BF16 ↔ F16 goes
 * through the exact F32 value, so it rounds once.
 *
 * <p>F16 uses {@link Float#floatToFloat16} and {@link Float#float16ToFloat} (C2 intrinsics that vectorise),
 * followed by a scalar fix-up of NaN elements only, because the NaN payload those methods produce differs
 * between the interpreter and the intrinsic.
 */
final class Casts {

    private Casts() {
    }

    /** binary32 to bfloat16 bits, round to nearest even; NaN becomes quiet with sign and top payload kept. */
    static short f32ToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fff_ffff) > 0x7f80_0000) {
            return (short) ((u >>> 16) | 0x0040);
        }
        return (short) ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16);
    }

    /** bfloat16 bits to binary32 (exact). */
    static float bf16ToF32(short h) {
        return Float.intBitsToFloat((h & 0xffff) << 16);
    }

    /** binary32 to binary16 bits, round to nearest even; NaN becomes quiet with sign and top payload kept. */
    static short f32ToF16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fff_ffff) > 0x7f80_0000) {
            return nanToF16(u);
        }
        return Float.floatToFloat16(f);
    }

    private static short nanToF16(int u) {
        return (short) (((u >>> 16) & 0x8000) | 0x7e00 | ((u >>> 13) & 0x03ff));
    }

    /** binary16 bits to binary32 (exact); a NaN keeps its sign and payload. */
    static float f16ToF32(short h) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0) {
            return nanFromF16(h);
        }
        return Float.float16ToFloat(h);
    }

    private static float nanFromF16(short h) {
        return Float.intBitsToFloat(((h & 0x8000) << 16) | 0x7f80_0000 | ((h & 0x03ff) << 13));
    }

    /** The storage bits of {@code value} in a 16-bit float dtype. */
    static short encode16(DType dtype, float value) {
        return dtype == DType.BF16 ? f32ToBf16(value) : f32ToF16(value);
    }

    /**
     * Converts elements {@code [from, to)} of {@code src} (dtype {@code sd}) into {@code dst} (dtype
     * {@code dd}); both float dtypes, different.
     */
    static void convert(DType sd, MemorySegment src, DType dd, MemorySegment dst, long from, long to) {
        Elementwise.Scratch s = Elementwise.scratch();
        float[] f = s.x;
        short[] h = s.h;
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            // load as F32
            switch (sd) {
                case F32 -> MemorySegment.copy(src, F32, e * 4, f, 0, n);
                case BF16 -> {
                    MemorySegment.copy(src, I16, e * 2, h, 0, n);
                    bf16ToF32(h, f, n);
                }
                case F16 -> {
                    MemorySegment.copy(src, I16, e * 2, h, 0, n);
                    f16ToF32(h, f, n);
                }
                default -> throw new IllegalArgumentException("not a float dtype: " + sd);
            }
            // store as dd
            switch (dd) {
                case F32 -> MemorySegment.copy(f, 0, dst, F32, e * 4, n);
                case BF16 -> {
                    f32ToBf16(f, h, n);
                    MemorySegment.copy(h, 0, dst, I16, e * 2, n);
                }
                case F16 -> {
                    f32ToF16(f, h, n);
                    MemorySegment.copy(h, 0, dst, I16, e * 2, n);
                }
                default -> throw new IllegalArgumentException("not a float dtype: " + dd);
            }
        }
    }

    private static void bf16ToF32(short[] h, float[] f, int n) {
        for (int i = 0; i < n; i++) {
            f[i] = Float.intBitsToFloat((h[i] & 0xffff) << 16);
        }
    }

    private static void f32ToBf16(float[] f, short[] h, int n) {
        for (int i = 0; i < n; i++) {
            h[i] = f32ToBf16(f[i]);
        }
    }

    private static void f16ToF32(short[] h, float[] f, int n) {
        for (int i = 0; i < n; i++) {
            f[i] = Float.float16ToFloat(h[i]);
        }
        for (int i = 0; i < n; i++) {
            if ((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x03ff) != 0) {
                f[i] = nanFromF16(h[i]);
            }
        }
    }

    private static void f32ToF16(float[] f, short[] h, int n) {
        for (int i = 0; i < n; i++) {
            h[i] = Float.floatToFloat16(f[i]);
        }
        for (int i = 0; i < n; i++) {
            float v = f[i];
            if (v != v) {
                h[i] = nanToF16(Float.floatToRawIntBits(v));
            }
        }
    }
}
