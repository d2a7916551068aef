package org.diffusion4j.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * cuBLAS called through {@code java.lang.foreign} (the fallback {@link CublasApi}): {@code dlopen} of
 * {@code libcublas.so.13}, else {@code libcublas.so.12}, by the dynamic linker's search
 * ({@code LD_LIBRARY_PATH}; {@code benchmarks/gpu/check.sh} puts the host's CUDA library folders there),
 * and of the {@code libcudart} of the same major version for {@code cudaSetDevice}.
 *
 * <p>Used functions (cuBLAS Library User Guide, CUDA 12.x and 13.x): {@code cublasCreate_v2},
 * {@code cublasSetStream_v2}, {@code cublasGetVersion_v2}, {@code cublasGemmStridedBatchedEx} (and its
 * {@code _64} form for dims past 2^31 - 1), {@code cublasGetStatusName}, {@code cublasDestroy_v2}.
 */
final class CublasFfm implements CublasApi {

    private static final Linker LINKER = Linker.nativeLinker();

    private final int device;
    private final String library;
    private final MethodHandle setDevice;
    private final MethodHandle getVersion;
    private final MethodHandle gemm;
    private final MethodHandle gemm64;
    private final MethodHandle statusName;
    private final MethodHandle destroy;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment handle;
    private final MemorySegment alpha;
    private final MemorySegment beta;
    private boolean closed;

    private CublasFfm(int device, String library, SymbolLookup blas, SymbolLookup rt) {
        this.device = device;
        this.library = library;
        this.setDevice = fn(rt, "cudaSetDevice", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        this.getVersion = fn(blas, "cublasGetVersion_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        this.gemm = fn(blas, "cublasGemmStridedBatchedEx", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT));
        this.gemm64 = optionalFn(blas, "cublasGemmStridedBatchedEx_64", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS,
                ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG,
                ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS,
                ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT));
        this.statusName = fn(blas, "cublasGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        this.destroy = fn(blas, "cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        this.handle = arena.allocate(ADDRESS);
        this.alpha = arena.allocate(ValueLayout.JAVA_FLOAT);
        this.beta = arena.allocate(ValueLayout.JAVA_FLOAT);
    }

    /**
     * Opens cuBLAS 13 or 12 and creates a handle on {@code device} bound to {@code stream}.
     *
     * @throws IllegalStateException when neither library loads (the message names what was tried)
     */
    @SuppressWarnings("restricted") // dlopen of the host's cuBLAS; downcalls with fixed signatures
    static CublasFfm create(int device, long stream) {
        StringBuilder tried = new StringBuilder();
        for (int major : new int[] {13, 12}) {
            String blasName = "libcublas.so." + major;
            SymbolLookup blas;
            SymbolLookup rt;
            try {
                // cudart first: libcublas needs it, and so does cudaSetDevice.
                rt = SymbolLookup.libraryLookup("libcudart.so." + major, Arena.global());
                blas = SymbolLookup.libraryLookup(blasName, Arena.global());
            } catch (IllegalArgumentException e) {
                tried.append(tried.isEmpty() ? "" : "; ").append(blasName).append(": ").append(e.getMessage());
                continue;
            }
            CublasFfm c = new CublasFfm(device, blasName, blas, rt);
            c.init(blas, stream);
            return c;
        }
        throw new IllegalStateException("neither libcublas.so.13 nor libcublas.so.12 (with its libcudart) could be "
                + "opened from LD_LIBRARY_PATH or the system folders (" + tried + ")");
    }

    @SuppressWarnings("restricted")
    private void init(SymbolLookup blas, long stream) {
        MethodHandle create = fn(blas, "cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        MethodHandle setStream = fn(blas, "cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        selectDevice("cublasCreate_v2");
        check(invokeInt(create, handle), "cublasCreate_v2", "device " + device);
        int st = invokeInt(setStream, handle.get(ADDRESS, 0), MemorySegment.ofAddress(stream));
        if (st != CUBLAS_STATUS_SUCCESS) {
            invokeInt(destroy, handle.get(ADDRESS, 0));
        }
        check(st, "cublasSetStream_v2", "device " + device);
    }

    @Override
    public String description() {
        MemorySegment v = arena.allocate(JAVA_INT);
        check(invokeInt(getVersion, handle.get(ADDRESS, 0), v), "cublasGetVersion_v2", "");
        return "cuBLAS " + CublasApi.versionText(v.get(JAVA_INT, 0)) + " (" + library + " through java.lang.foreign)";
    }

    @Override
    @SuppressWarnings("restricted")
    public synchronized void gemmF32(boolean transA, boolean transB, long m, long n, long k, float alphaValue,
                                     long a, long lda, long strideA, long b, long ldb, long strideB, float betaValue,
                                     long c, long ldc, long strideC, long batch, CudaBackend.GemmMath math,
                                     String operands) {
        if (closed) {
            throw new IllegalStateException("cuBLAS handle is closed");
        }
        selectDevice(operands);
        alpha.set(ValueLayout.JAVA_FLOAT, 0, alphaValue);
        beta.set(ValueLayout.JAVA_FLOAT, 0, betaValue);
        int opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
        int opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
        int compute = CublasApi.computeType(math);
        MemorySegment h = handle.get(ADDRESS, 0);
        MemorySegment pa = MemorySegment.ofAddress(a);
        MemorySegment pb = MemorySegment.ofAddress(b);
        MemorySegment pc = MemorySegment.ofAddress(c);
        int st;
        String fn;
        try {
            if (CublasApi.fitsInt(m, n, k, lda, ldb, ldc, batch)) {
                fn = "cublasGemmStridedBatchedEx";
                st = (int) gemm.invokeExact(h, opA, opB, (int) m, (int) n, (int) k, alpha,
                        pa, CUDA_R_32F, (int) lda, strideA, pb, CUDA_R_32F, (int) ldb, strideB, beta,
                        pc, CUDA_R_32F, (int) ldc, strideC, (int) batch, compute, CUBLAS_GEMM_DEFAULT);
            } else {
                fn = "cublasGemmStridedBatchedEx_64";
                if (gemm64 == null) {
                    throw new IllegalArgumentException("gemm: a dim of " + operands + " exceeds 2^31 - 1 and "
                            + library + " has no cublasGemmStridedBatchedEx_64");
                }
                st = (int) gemm64.invokeExact(h, opA, opB, m, n, k, alpha,
                        pa, CUDA_R_32F, lda, strideA, pb, CUDA_R_32F, ldb, strideB, beta,
                        pc, CUDA_R_32F, ldc, strideC, batch, compute, CUBLAS_GEMM_DEFAULT);
            }
        } catch (IllegalArgumentException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("calling cuBLAS failed: " + t, t);
        }
        check(st, fn, operands);
    }

    private void selectDevice(String operands) {
        int rc = invokeInt(setDevice, device);
        if (rc != 0) {
            throw new CudaException("gemm", "cudaSetDevice (" + library.replace("cublas", "cudart") + ")", rc,
                    "cudaError_t " + rc, operands);
        }
    }

    @SuppressWarnings("restricted")
    private void check(int status, String fn, String operands) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            String name;
            try {
                MemorySegment p = (MemorySegment) statusName.invokeExact(status);
                name = p.reinterpret(256).getString(0);
            } catch (Throwable t) {
                name = "cublasStatus_t " + status;
            }
            throw new CudaException("gemm", fn + " (" + library + ")", status, name, operands);
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            invokeInt(setDevice, device);
            invokeInt(destroy, handle.get(ADDRESS, 0));
            arena.close();
        }
    }

    @SuppressWarnings("restricted")
    private static MethodHandle fn(SymbolLookup lib, String name, FunctionDescriptor d) {
        MemorySegment sym = lib.find(name).orElseThrow(() -> new IllegalStateException("symbol " + name + " not found"));
        return LINKER.downcallHandle(sym, d);
    }

    @SuppressWarnings("restricted")
    private static MethodHandle optionalFn(SymbolLookup lib, String name, FunctionDescriptor d) {
        return lib.find(name).map(sym -> LINKER.downcallHandle(sym, d)).orElse(null);
    }

    private static int invokeInt(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException("calling " + h + " failed: " + t, t);
        }
    }
}
