package org.diffusion4j.cuda;

import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

/**
 * cuBLAS through the bytedeco cuda presets (the preferred {@link CublasApi}): one handle per
 * {@link CudaBackend}, bound to the backend's stream. The presets' JNI libraries need {@code libcuda.so.1},
 * {@code libcudart.so.13} and {@code libcublas.so.13}, so merely loading them on a machine without a
 * driver fails; {@link CublasApi#open} calls this only for a device that answered.
 */
final class CublasPreset implements CublasApi {

    private final int device;
    private final cublasContext handle;
    private final FloatPointer alpha = new FloatPointer(1);
    private final FloatPointer beta = new FloatPointer(1);
    private boolean closed;

    private CublasPreset(int device, cublasContext handle) {
        this.device = device;
        this.handle = handle;
    }

    /**
     * Loads the presets and creates a handle on {@code device} that queues on {@code stream}.
     *
     * @throws IllegalStateException when the cuBLAS libraries cannot be loaded (the message says which)
     * @throws CudaException         when cuBLAS fails to initialise
     */
    static CublasPreset create(int device, long stream) {
        try {
            Loader.load(cudart.class);
            Loader.load(cublas.class);
        } catch (LinkageError | RuntimeException e) {
            throw new IllegalStateException("cuBLAS (bytedeco cuda presets, needing libcudart.so.13, libcublasLt.so.13 "
                    + "and libcublas.so.13 on the library path) could not be loaded: " + NativeLoader.firstLine(e), e);
        }
        // The presets link their own libcudart; its current device is separate from the one in our
        // statically linked runtime, so select the device there too.
        int rc = cudart.cudaSetDevice(device);
        if (rc != 0) {
            throw new CudaException("gemm", "cudaSetDevice (presets' libcudart)", rc, cudaErrorName(rc), "device " + device);
        }
        cublasContext h = new cublasContext();
        int st = cublas.cublasCreate_v2(h);
        check(st, "cublasCreate_v2", "device " + device);
        st = cublas.cublasSetStream_v2(h, new CUstream_st(new Address(stream)));
        if (st != cublas.CUBLAS_STATUS_SUCCESS) {
            cublas.cublasDestroy_v2(h);
        }
        check(st, "cublasSetStream_v2", "device " + device);
        return new CublasPreset(device, h);
    }

    @Override
    public String description() {
        int[] v = new int[1];
        check(cublas.cublasGetVersion_v2(handle, v), "cublasGetVersion_v2", "");
        return "cuBLAS " + CublasApi.versionText(v[0]) + " (bytedeco cuda presets)";
    }

    @Override
    public synchronized void gemmF32(boolean transA, boolean transB, long m, long n, long k, float alphaValue,
                              long a, long lda, long strideA, long b, long ldb, long strideB, float betaValue,
                              long c, long ldc, long strideC, long batch, CudaBackend.GemmMath math, String operands) {
        if (closed) {
            throw new IllegalStateException("cuBLAS handle is closed");
        }
        int rc = cudart.cudaSetDevice(device);
        if (rc != 0) {
            throw new CudaException("gemm", "cudaSetDevice (presets' libcudart)", rc, cudaErrorName(rc), operands);
        }
        alpha.put(0, alphaValue);
        beta.put(0, betaValue);
        int opA = transA ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N;
        int opB = transB ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N;
        int compute = CublasApi.computeType(math);
        int f32 = CUDA_R_32F;
        int st;
        String fn;
        if (CublasApi.fitsInt(m, n, k, lda, ldb, ldc, batch)) {
            fn = "cublasGemmStridedBatchedEx";
            st = cublas.cublasGemmStridedBatchedEx(handle, opA, opB, (int) m, (int) n, (int) k, alpha,
                    new Address(a), f32, (int) lda, strideA, new Address(b), f32, (int) ldb, strideB, beta,
                    new Address(c), f32, (int) ldc, strideC, (int) batch, compute, cublas.CUBLAS_GEMM_DEFAULT);
        } else {
            fn = "cublasGemmStridedBatchedEx_64";
            st = cublas.cublasGemmStridedBatchedEx_64(handle, opA, opB, m, n, k, alpha,
                    new Address(a), f32, lda, strideA, new Address(b), f32, ldb, strideB, beta,
                    new Address(c), f32, ldc, strideC, batch, compute, cublas.CUBLAS_GEMM_DEFAULT);
        }
        check(st, fn, operands);
    }

    private static void check(int status, String fn, String operands) {
        if (status != cublas.CUBLAS_STATUS_SUCCESS) {
            String name = cublas.cublasGetStatusName(status).getString();
            String text = cublas.cublasGetStatusString(status).getString();
            throw new CudaException("gemm", fn, status, name + " (" + text + ")", operands);
        }
    }

    private static String cudaErrorName(int rc) {
        return cudart.cudaGetErrorName(rc).getString();
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            cudart.cudaSetDevice(device);
            cublas.cublasDestroy_v2(handle);
            alpha.close();
            beta.close();
        }
    }

    /** A JavaCPP pointer to a raw (device) address; never dereferenced from Java. */
    static final class Address extends Pointer {
        Address(long address) {
            this.address = address;
        }
    }
}
