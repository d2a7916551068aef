package org.diffusion4j.cuda;

import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of the C ABI in {@code native/include/diffusion4j.h}, one static method per function,
 * with the same names and argument order.
 *
 * <p>Device and pinned-host pointers cross as {@code long} addresses (typically
 * {@link java.lang.foreign.MemorySegment#address()}), cast to the C pointer type by JavaCPP
 * ({@code @Cast("float*") long}); a call costs about 9 ns. Out-parameters are one-element Java arrays.
 * Every function returns the library's status: 0 on success, a {@code cudaError_t} value (&gt; 0) or a
 * negative {@code D4J_ERR_*} code, with the text in {@link #d4j_last_error()}.
 *
 * <p>Do not call anything here before {@link NativeLoader#load()} has succeeded: this class has no static
 * initialiser, so a missing library surfaces as a {@link LinkageError} in one place (the loader) rather
 * than at the first touch of an op. The JNI library is built by the JavaCPP Maven plugin
 * ({@code java/pom.xml}) and packed beside {@code libdiffusion4j.so} under
 * {@code org/diffusion4j/cuda/linux-x86_64/}.
 */
@Platform(include = "diffusion4j.h", link = "diffusion4j")
public final class NativeLib {

    private NativeLib() {
    }

    /** {@code D4J_OK}. */
    public static final int OK = 0;
    /** {@code D4J_ERR_INVALID}: bad argument. */
    public static final int ERR_INVALID = -1;
    /** {@code D4J_ERR_UNSUPPORTED}: valid request this build or device cannot do. */
    public static final int ERR_UNSUPPORTED = -2;
    /** {@code D4J_ERR_SELF_TEST}: the self-test kernel returned a wrong result. */
    public static final int ERR_SELF_TEST = -3;

    // ---------------------------------------------------------------- runtime, devices, memory

    public static native @Cast("const char*") String d4j_last_error();

    public static native int d4j_version();

    public static native int d4j_device_count(@Cast("int*") int[] count);

    public static native int d4j_device_info(int device, @Cast("char*") byte[] name, int nameCapacity,
                                             @Cast("int*") int[] ccMajor, @Cast("int*") int[] ccMinor,
                                             @Cast("int64_t*") long[] totalMemoryBytes,
                                             @Cast("int*") int[] multiprocessors, @Cast("int*") int[] driverVersion,
                                             @Cast("int*") int[] runtimeVersion);

    public static native int d4j_set_device(int device);

    public static native int d4j_self_test();

    /** {@code *ptr[0] = cudaMalloc(bytes)}. */
    public static native int d4j_malloc(@Cast("void**") long[] ptr, @Cast("int64_t") long bytes);

    public static native int d4j_free(@Cast("void*") long ptr);

    public static native int d4j_malloc_host(@Cast("void**") long[] hostPtr, @Cast("int64_t") long bytes);

    public static native int d4j_free_host(@Cast("void*") long hostPtr);

    public static native int d4j_memcpy_h2d(@Cast("void*") long dst, @Cast("const void*") long hostSrc,
                                            @Cast("int64_t") long bytes, @Cast("void*") long stream);

    public static native int d4j_memcpy_d2h(@Cast("void*") long hostDst, @Cast("const void*") long src,
                                            @Cast("int64_t") long bytes, @Cast("void*") long stream);

    public static native int d4j_memcpy_d2d(@Cast("void*") long dst, @Cast("const void*") long src,
                                            @Cast("int64_t") long bytes, @Cast("void*") long stream);

    public static native int d4j_stream_create(@Cast("void**") long[] stream);

    public static native int d4j_stream_destroy(@Cast("void*") long stream);

    public static native int d4j_stream_synchronize(@Cast("void*") long stream);

    // ---------------------------------------------------------------- fill, copy, cast

    public static native int d4j_fill(@Cast("void*") long out, int dtype, @Cast("int64_t") long n, float value,
                                      @Cast("void*") long stream);

    public static native int d4j_copy_strided(@Cast("const void*") long src, @Cast("void*") long dst, int elemSize,
                                              int rank, @Cast("const int64_t*") long[] hostShape,
                                              @Cast("const int64_t*") long[] hostSrcStrides,
                                              @Cast("void*") long stream);

    public static native int d4j_cast(@Cast("const void*") long src, int srcDtype, @Cast("void*") long dst,
                                      int dstDtype, @Cast("int64_t") long n, @Cast("void*") long stream);

    // ---------------------------------------------------------------- elementwise (F32)

    public static native int d4j_binary_f32(int op, @Cast("const float*") long a, @Cast("const float*") long b,
                                            int bcast, @Cast("float*") long out, @Cast("int64_t") long rows,
                                            @Cast("int64_t") long cols, @Cast("void*") long stream);

    public static native int d4j_binary_scalar_f32(int op, @Cast("const float*") long a, float s,
                                                   @Cast("float*") long out, @Cast("int64_t") long n,
                                                   @Cast("void*") long stream);

    public static native int d4j_unary_f32(int op, @Cast("const float*") long a, @Cast("float*") long out,
                                           @Cast("int64_t") long n, @Cast("void*") long stream);

    public static native int d4j_axpby_f32(float alpha, @Cast("const float*") long x, float beta,
                                           @Cast("const float*") long y, @Cast("float*") long out,
                                           @Cast("int64_t") long n, @Cast("void*") long stream);

    public static native int d4j_fma_f32(@Cast("const float*") long a, @Cast("const float*") long b, int bBcast,
                                         @Cast("const float*") long c, int cBcast, @Cast("float*") long out,
                                         @Cast("int64_t") long rows, @Cast("int64_t") long cols,
                                         @Cast("void*") long stream);

    public static native int d4j_scale_shift_f32(@Cast("const float*") long a, float s, float t,
                                                 @Cast("float*") long out, @Cast("int64_t") long n,
                                                 @Cast("void*") long stream);

    // ---------------------------------------------------------------- reductions, softmax (F32)

    public static native int d4j_reduce_last_f32(int op, @Cast("const float*") long x, @Cast("float*") long out,
                                                 @Cast("int64_t") long rows, @Cast("int64_t") long cols,
                                                 @Cast("void*") long stream);

    public static native @Cast("int64_t") long d4j_sum_squares_workspace_bytes(@Cast("int64_t") long n);

    public static native int d4j_sum_squares_f32(@Cast("const float*") long x, @Cast("int64_t") long n,
                                                 @Cast("void*") long workspace, @Cast("double*") double[] hostResult,
                                                 @Cast("void*") long stream);

    public static native int d4j_softmax_last_f32(@Cast("const float*") long x, @Cast("float*") long out,
                                                  @Cast("int64_t") long rows, @Cast("int64_t") long cols,
                                                  @Cast("void*") long stream);

    // ---------------------------------------------------------------- indexing, random

    public static native int d4j_gather_rows_f32(@Cast("const float*") long table, @Cast("int64_t") long vocab,
                                                 @Cast("int64_t") long dim, @Cast("const int32_t*") long idx,
                                                 @Cast("int64_t") long n, @Cast("float*") long out,
                                                 @Cast("void*") long stream);

    public static native int d4j_random_f32(@Cast("float*") long out, @Cast("int64_t") long n,
                                            @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId, int normal,
                                            @Cast("void*") long stream);

    // ---------------------------------------------------------------- fused diffusion ops (F32)

    public static native int d4j_forward_noise_f32(@Cast("const float*") long x0, @Cast("float*") long xt,
                                                   @Cast("float*") long target, @Cast("float*") long eps,
                                                   @Cast("int64_t") long batch, @Cast("int64_t") long n,
                                                   @Cast("const float*") float[] hostCoef,
                                                   @Cast("const uint64_t*") long[] hostKeys,
                                                   @Cast("const uint64_t*") long[] hostIds,
                                                   @Cast("uint64_t") long noiseStream,
                                                   @Cast("uint64_t") long offsetStream, float offsetStrength,
                                                   @Cast("int64_t") long channels, @Cast("void*") long stream);

    public static native @Cast("int64_t") long d4j_sampler_step_workspace_bytes(@Cast("int64_t") long batch,
                                                                                @Cast("int64_t") long n);

    public static native int d4j_sampler_step_f32(@Cast("const float*") long x, @Cast("const float*") long xIn,
                                                  @Cast("const float*") long cond, @Cast("const float*") long uncond,
                                                  @Cast("const float*") long hist, @Cast("float*") long xOut,
                                                  @Cast("float*") long histOut, @Cast("int64_t") long batch,
                                                  @Cast("int64_t") long n, @Cast("const float*") float[] hostCoef,
                                                  float guidanceMinus1, double rescale,
                                                  @Cast("const uint64_t*") long[] hostKeys,
                                                  @Cast("const uint64_t*") long[] hostIds,
                                                  @Cast("uint64_t") long noiseStream, @Cast("void*") long workspace,
                                                  @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

    public static native int d4j_scale_add_noise_f32(@Cast("const float*") long x, @Cast("float*") long out,
                                                     @Cast("int64_t") long batch, @Cast("int64_t") long n,
                                                     @Cast("const float*") float[] hostCoef,
                                                     @Cast("const uint64_t*") long[] hostKeys,
                                                     @Cast("const uint64_t*") long[] hostIds,
                                                     @Cast("uint64_t") long noiseStream, @Cast("void*") long stream);

    // ---------------------------------------------------------------- layer ops (F32)

    public static native int d4j_activation_f32(int act, @Cast("const float*") long x, @Cast("const float*") long bias,
                                                @Cast("float*") long pre, @Cast("float*") long out,
                                                @Cast("int64_t") long rows, @Cast("int64_t") long cols,
                                                @Cast("void*") long stream);

    public static native int d4j_activation_backward_f32(int act, @Cast("const float*") long pre,
                                                         @Cast("const float*") long dy, @Cast("float*") long dx,
                                                         @Cast("int64_t") long n, @Cast("void*") long stream);

    public static native int d4j_adamw_f32(@Cast("float*") long param, @Cast("const float*") long grad,
                                           @Cast("float*") long m, @Cast("float*") long v, @Cast("int64_t") long n,
                                           @Cast("const float*") float[] hostCoef, @Cast("void*") long stream);

    public static native int d4j_layer_norm_f32(@Cast("const float*") long x, @Cast("const float*") long gamma,
                                                @Cast("const float*") long beta, @Cast("const float*") long shift,
                                                @Cast("int64_t") long shiftStride, @Cast("const float*") long scale,
                                                @Cast("int64_t") long scaleStride, float eps, @Cast("float*") long out,
                                                @Cast("float*") long mean, @Cast("float*") long rstd,
                                                @Cast("int64_t") long batch, @Cast("int64_t") long tokens,
                                                @Cast("int64_t") long dim, @Cast("void*") long stream);

    public static native int d4j_gated_residual_f32(@Cast("const float*") long x, @Cast("const float*") long gate,
                                                    @Cast("int64_t") long gateStride, @Cast("const float*") long f,
                                                    @Cast("float*") long out, @Cast("int64_t") long batch,
                                                    @Cast("int64_t") long tokens, @Cast("int64_t") long dim,
                                                    @Cast("void*") long stream);

    public static native int d4j_gated_residual_backward_f32(@Cast("const float*") long gate,
                                                             @Cast("int64_t") long gateStride,
                                                             @Cast("const float*") long f,
                                                             @Cast("const float*") long dy, @Cast("float*") long df,
                                                             @Cast("float*") long dGate,
                                                             @Cast("int64_t") long dGateStride,
                                                             @Cast("int64_t") long batch, @Cast("int64_t") long tokens,
                                                             @Cast("int64_t") long dim, @Cast("void*") long stream);

    // ---------------------------------------------------------------- layer-op reductions (F32)

    public static native int d4j_column_sum_f32(@Cast("const float*") long dy, @Cast("float*") long out,
                                                @Cast("int64_t") long rows, @Cast("int64_t") long cols, int accumulate,
                                                @Cast("void*") long stream);

    public static native int d4j_layer_norm_backward_f32(@Cast("const float*") long x, @Cast("const float*") long gamma,
                                                         @Cast("const float*") long beta,
                                                         @Cast("const float*") long scale,
                                                         @Cast("int64_t") long scaleStride,
                                                         @Cast("const float*") long mean,
                                                         @Cast("const float*") long rstd,
                                                         @Cast("const float*") long dy, @Cast("float*") long dx,
                                                         @Cast("float*") long dGamma, @Cast("float*") long dBeta,
                                                         @Cast("float*") long dShift,
                                                         @Cast("int64_t") long dShiftStride,
                                                         @Cast("float*") long dScale,
                                                         @Cast("int64_t") long dScaleStride,
                                                         @Cast("int64_t") long batch, @Cast("int64_t") long tokens,
                                                         @Cast("int64_t") long dim, @Cast("void*") long stream);

    public static native int d4j_embedding_backward_f32(@Cast("const float*") long dy, @Cast("float*") long dTable,
                                                        @Cast("int64_t") long vocab, @Cast("int64_t") long dim,
                                                        @Cast("const int32_t*") long plan, @Cast("int64_t") long n,
                                                        @Cast("int64_t") long touched, @Cast("void*") long stream);

    // ---------------------------------------------------------------- fused attention

    public static native int d4j_attention_forward_f32(@Cast("const float*") long q, @Cast("const float*") long k,
                                                       @Cast("const float*") long v, @Cast("float*") long out,
                                                       @Cast("float*") long lse, @Cast("int64_t") long bh,
                                                       @Cast("int64_t") long tq, @Cast("int64_t") long tk,
                                                       @Cast("int64_t") long dh, float scale,
                                                       @Cast("void*") long stream);

    public static native int d4j_attention_forward_bf16(@Cast("const float*") long q, @Cast("const float*") long k,
                                                        @Cast("const float*") long v, @Cast("float*") long out,
                                                        @Cast("float*") long lse, @Cast("int64_t") long bh,
                                                        @Cast("int64_t") long tq, @Cast("int64_t") long tk,
                                                        @Cast("int64_t") long dh, float scale,
                                                        @Cast("void*") long stream);

    public static native int d4j_attention_backward_f32(@Cast("const float*") long q, @Cast("const float*") long k,
                                                        @Cast("const float*") long v, @Cast("const float*") long out,
                                                        @Cast("const float*") long lse,
                                                        @Cast("const float*") long dOut, @Cast("float*") long dq,
                                                        @Cast("float*") long dk, @Cast("float*") long dv,
                                                        @Cast("int64_t") long bh, @Cast("int64_t") long tq,
                                                        @Cast("int64_t") long tk, @Cast("int64_t") long dh,
                                                        float scale, @Cast("void*") long stream);

    public static native int d4j_attention_backward_bf16(@Cast("const float*") long q, @Cast("const float*") long k,
                                                         @Cast("const float*") long v, @Cast("const float*") long out,
                                                         @Cast("const float*") long lse,
                                                         @Cast("const float*") long dOut, @Cast("float*") long dq,
                                                         @Cast("float*") long dk, @Cast("float*") long dv,
                                                         @Cast("int64_t") long bh, @Cast("int64_t") long tq,
                                                         @Cast("int64_t") long tk, @Cast("int64_t") long dh,
                                                         float scale, @Cast("void*") long stream);
}
