package org.diffusion4j.cuda;

/**
 * A CUDA call failed. The message names the native function, the CUDA error name and text (from
 * {@code d4j_last_error}) and the op with its operand shapes, e.g.
 * {@code "binary MUL: d4j_binary_f32 failed: cudaErrorIllegalAddress (an illegal memory access was
 * encountered) [a Tensor[f32 [3, 5] cuda:0], b Tensor[f32 [5] cuda:0]]"}.
 *
 * <p>Errors that CUDA calls "sticky" (illegal address, launch failure) leave the device unusable for this
 * process; the message then says so.
 */
public final class CudaException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int status;
    private final String function;

    CudaException(String op, String function, int status, String nativeText, String operands) {
        super(op + ": " + function + " failed with status " + status + " (" + statusName(status) + "): "
                + (nativeText == null || nativeText.isEmpty() ? "no error text" : nativeText)
                + (operands == null || operands.isEmpty() ? "" : " [" + operands + "]")
                + (isSticky(status) ? "; this error is sticky: the CUDA context is unusable until the process exits" : ""));
        this.status = status;
        this.function = function;
    }

    /** The status the native function returned: a {@code cudaError_t} (&gt; 0) or a {@code D4J_ERR_*} (&lt; 0). */
    public int status() {
        return status;
    }

    /** The native function that failed, e.g. {@code "d4j_binary_f32"} or {@code "cublasGemmStridedBatchedEx"}. */
    public String function() {
        return function;
    }

    /** Name of a status code: {@code D4J_ERR_*} names, or the {@code cudaError_t} value when it is one. */
    static String statusName(int status) {
        return switch (status) {
            case 0 -> "D4J_OK";
            case NativeLib.ERR_INVALID -> "D4J_ERR_INVALID";
            case NativeLib.ERR_UNSUPPORTED -> "D4J_ERR_UNSUPPORTED";
            case NativeLib.ERR_SELF_TEST -> "D4J_ERR_SELF_TEST";
            default -> status > 0 ? "cudaError_t " + status : "unknown";
        };
    }

    /**
     * Errors after which the CUDA context is corrupted (CUDA Runtime API, enum cudaError: "the process is
     * left in an inconsistent state ... the process must be terminated"): illegal address (700), hardware
     * stack error (714), illegal instruction (715), misaligned address (716), invalid address space (717),
     * invalid PC (718), launch failure (719).
     */
    static boolean isSticky(int status) {
        return status == 700 || (status >= 714 && status <= 719);
    }
}
