package org.diffusion4j.tensor;

/**
 * Element types a {@link Tensor} can hold.
 *
 * <p>{@code F32} is the working type of every op. {@code BF16} and {@code F16} are storage types for
 * the GPU paths (converted with {@link Backend#cast}); {@code I32} holds indices (e.g. for
 * {@link Backend#gatherRows}).
 */
public enum DType {
    /** IEEE-754 binary32, 4 bytes. */
    F32(4),
    /** bfloat16: the upper 16 bits of a binary32 (8-bit exponent, 7-bit mantissa), 2 bytes. */
    BF16(2),
    /** IEEE-754 binary16 (5-bit exponent, 10-bit mantissa), 2 bytes. */
    F16(2),
    /** Two's-complement 32-bit integer, 4 bytes. */
    I32(4);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Size of one element in bytes. */
    public int byteSize() {
        return byteSize;
    }

    /** True for the floating-point types. */
    public boolean isFloatingPoint() {
        return this != I32;
    }
}
