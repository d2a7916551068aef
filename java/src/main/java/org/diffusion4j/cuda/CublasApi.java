package org.diffusion4j.cuda;

/**
 * The cuBLAS calls {@link CudaBackend#gemm} needs, with two implementations, tried in this order by
 * {@link #open}:
 * <ol>
 *   <li>{@link CublasPreset}: the bytedeco cuda presets (13.1), i.e. {@code libcublas.so.13};</li>
 *   <li>{@link CublasFfm}: the same four C functions called through {@code java.lang.foreign} from whichever
 *       {@code libcublas.so.13} or {@code libcublas.so.12} the dynamic linker finds, so that a GPU machine
 *       whose only cuBLAS is the CUDA 12 one of its PyTorch still runs GEMMs. The functions and enum
 *       values used are identical in cuBLAS 12 and 13.</li>
 * </ol>
 *
 * <p>Row-major products use the usual operand swap: a row-major {@code [M, N]} matrix is the column-major
 * {@code [N, M]} matrix of the same memory, so {@code C = op(A) op(B)} (row-major) is computed as the
 * column-major {@code C^T = op(B)^T op(A)^T}: cuBLAS is called with {@code (B, A)}, {@code m = N},
 * {@code n = M}, each operand keeping its own transpose flag and its row-major leading dimension (cuBLAS
 * Library User Guide, {@code cublasGemmStridedBatchedEx}; the same swap as llm.c's
 * {@code matmul_forward_cublaslt}). {@link CudaBackend#gemm} does the swap; implementations are plain
 * column-major.
 */
interface CublasApi extends AutoCloseable {

    // cublas_api.h / library_types.h values (identical in CUDA 12 and 13)
    int CUBLAS_STATUS_SUCCESS = 0;
    int CUBLAS_OP_N = 0;
    int CUBLAS_OP_T = 1;
    int CUBLAS_GEMM_DEFAULT = -1;
    int CUBLAS_COMPUTE_32F = 68;
    int CUBLAS_COMPUTE_32F_FAST_16BF = 75;
    int CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
    int CUDA_R_32F = 0;

    /** E.g. {@code "cuBLAS 13.1.0 (bytedeco cuda presets)"}. */
    String description();

    /**
     * Column-major strided-batched GEMM with fp32 storage of A, B and C on the handle's stream:
     * {@code C_i = alpha op(A_i) op(B_i) + beta C_i}, {@code C_i} m x n, {@code i < batch}.
     *
     * @throws CudaException naming the cuBLAS status and {@code operands}
     */
    void gemmF32(boolean transA, boolean transB, long m, long n, long k, float alpha, long a, long lda, long strideA,
                 long b, long ldb, long strideB, float beta, long c, long ldc, long strideC, long batch,
                 CudaBackend.GemmMath math, String operands);

    @Override
    void close();

    /**
     * A handle on {@code device} queuing on {@code stream}, from the first implementation that loads.
     *
     * @throws IllegalStateException naming why each implementation failed to load
     */
    static CublasApi open(int device, long stream) {
        try {
            return CublasPreset.create(device, stream);
        } catch (IllegalStateException preset) {
            try {
                return CublasFfm.create(device, stream);
            } catch (IllegalStateException ffm) {
                IllegalStateException e = new IllegalStateException("no usable cuBLAS: " + preset.getMessage()
                        + "; and through java.lang.foreign: " + ffm.getMessage());
                e.addSuppressed(preset);
                e.addSuppressed(ffm);
                throw e;
            }
        }
    }

    static int computeType(CudaBackend.GemmMath math) {
        return switch (math) {
            case FP32 -> CUBLAS_COMPUTE_32F;
            case TF32 -> CUBLAS_COMPUTE_32F_FAST_TF32;
            case BF16 -> CUBLAS_COMPUTE_32F_FAST_16BF;
        };
    }

    static boolean fitsInt(long... xs) {
        for (long x : xs) {
            if (x > Integer.MAX_VALUE) {
                return false;
            }
        }
        return true;
    }

    /** cuBLAS version number (major*10000 + minor*100 + patch) as text. */
    static String versionText(int v) {
        return (v / 10000) + "." + (v / 100 % 100) + "." + (v % 100);
    }
}
