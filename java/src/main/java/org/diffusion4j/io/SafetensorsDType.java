package org.diffusion4j.io;

import org.diffusion4j.tensor.DType;

import java.util.Optional;

/**
 * The element types a safetensors header may name, with their widths in bits, as in the reference
 * implementation's {@code Dtype} enum (huggingface/safetensors, {@code safetensors/src/tensor.rs},
 * {@code Dtype::bitsize}). The declaration order is the reference's, which its writer uses to order tensors
 * (descending) so that every tensor starts aligned to its element size.
 *
 * <p>{@link Safetensors#read} loads {@code F32}, {@code BF16}, {@code F16} and {@code I32} as they are
 * (zero-copy where possible), converts {@code F64} to {@code F32} (round to nearest even) and the integer
 * types {@code BOOL, U8, I8, I16, U16, U32, I64, U64} to {@code I32} (exact; a value outside the
 * {@code int} range is an error), and refuses the 4-, 6- and 8-bit float types and {@code C64}.
 */
public enum SafetensorsDType {
    BOOL(8), F4(4), F6_E2M3(6), F6_E3M2(6), U8(8), I8(8), F8_E5M2(8), F8_E4M3(8), F8_E8M0(8),
    I16(16), U16(16), F16(16), BF16(16), I32(32), U32(32), F32(32), C64(64), F64(64), I64(64), U64(64);

    private final int bits;

    SafetensorsDType(int bits) {
        this.bits = bits;
    }

    /** Width of one element in bits (4 and 6 for the packed micro-scaling floats). */
    public int bits() {
        return bits;
    }

    /** The header name, e.g. {@code "BF16"}. */
    public String headerName() {
        return name();
    }

    /** The file dtype that stores a tensor of {@code dtype} unchanged. */
    public static SafetensorsDType of(DType dtype) {
        return switch (dtype) {
            case F32 -> F32;
            case BF16 -> BF16;
            case F16 -> F16;
            case I32 -> I32;
        };
    }

    /** The header name's dtype, or empty when the name is not one the format defines. */
    public static Optional<SafetensorsDType> parse(String headerName) {
        for (SafetensorsDType d : values()) {
            if (d.name().equals(headerName)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }

    /** The tensor dtype this file dtype is stored in unchanged, or empty when it is not one. */
    public Optional<DType> nativeType() {
        return switch (this) {
            case F32 -> Optional.of(DType.F32);
            case BF16 -> Optional.of(DType.BF16);
            case F16 -> Optional.of(DType.F16);
            case I32 -> Optional.of(DType.I32);
            default -> Optional.empty();
        };
    }

    /**
     * The tensor dtype {@link Safetensors#read} gives a tensor of this file dtype: itself for the native
     * types, {@code F32} for {@code F64}, {@code I32} for the integer types; empty for the types that are
     * refused.
     */
    public Optional<DType> loadedAs() {
        return switch (this) {
            case F32, F64 -> Optional.of(DType.F32);
            case BF16 -> Optional.of(DType.BF16);
            case F16 -> Optional.of(DType.F16);
            case I32, BOOL, U8, I8, I16, U16, U32, I64, U64 -> Optional.of(DType.I32);
            default -> Optional.empty();
        };
    }
}
