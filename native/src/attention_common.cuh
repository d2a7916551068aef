/*
 * Host-side helpers shared by the fused attention kernel files (attention_f32.cu, attention_bf16.cu): argument
 * checks of the C ABI, the head-dim bucket, and the opt-in for more than 48 KiB of dynamic shared memory.
 * Not part of the public ABI.
 */
#ifndef DIFFUSION4J_ATTENTION_COMMON_CUH
#define DIFFUSION4J_ATTENTION_COMMON_CUH

#include <cfloat>
#include <type_traits>

#include "internal.cuh"

namespace d4j {
namespace attn {

/* Largest head dim with a kernel; larger ones return D4J_ERR_INVALID (the Java side runs them composed before
 * calling native code). */
constexpr int64_t kMaxKernelHeadDim = 128;

/* The compiled head dim a call runs with: the smallest of 32, 64, 128 that is >= dh (the tiles are zero-padded
 * from dh to it). */
inline int head_bucket(int64_t dh) { return dh <= 32 ? 32 : dh <= 64 ? 64 : 128; }

/* Calls launch(std::integral_constant<int, DH>{}) with DH = head_bucket(dh): the one place that maps a runtime head
 * dim to the compiled kernels, for every entry point of every precision. */
template <typename Launch>
inline int with_head_bucket(int64_t dh, Launch launch) {
    switch (head_bucket(dh)) {
        case 32:
            return launch(std::integral_constant<int, 32>{});
        case 64:
            return launch(std::integral_constant<int, 64>{});
        default:
            return launch(std::integral_constant<int, 128>{});
    }
}

/* Sizes of one call: bh (batch*heads) problems of tq queries and tk keys of head dim dh. Checks what memory safety
 * needs; `blocks_per_problem` of the caller's grid must keep bh * blocks within int32. */
inline int check_sizes(const char *op, int64_t bh, int64_t tq, int64_t tk, int64_t dh, float scale) {
    D4J_REQUIRE(bh >= 0 && tq >= 0 && tk >= 0, op, "negative size: bh=%lld, tq=%lld, tk=%lld", (long long)bh,
                (long long)tq, (long long)tk);
    D4J_REQUIRE(dh >= 1 && dh <= kMaxKernelHeadDim, op, "head dim %lld outside [1, %lld]", (long long)dh,
                (long long)kMaxKernelHeadDim);
    D4J_REQUIRE(scale >= 0.0f && scale <= FLT_MAX, op, "scale must be finite and >= 0, got %g", (double)scale);
    D4J_REQUIRE(tq == 0 || bh == 0 || tk >= 1, op, "no keys (tk = 0) for %lld queries", (long long)tq);
    int64_t rows = 0;
    int64_t n = 0;
    D4J_REQUIRE(checked_mul(bh, tq > tk ? tq : tk, &rows) && checked_mul(rows, dh, &n) && n <= INT64_MAX / 4, op,
                "bh*T*dh overflows: bh=%lld, tq=%lld, tk=%lld, dh=%lld", (long long)bh, (long long)tq, (long long)tk,
                (long long)dh);
    D4J_REQUIRE(tq <= INT32_MAX && tk <= INT32_MAX, op, "sequence too long: tq=%lld, tk=%lld", (long long)tq,
                (long long)tk);
    return D4J_OK;
}

/* Everything a forward entry point checks before touching memory: the sizes (check_sizes), then the operands.
 * Returns D4J_OK with *empty = true when there is nothing to compute (no problems or no queries). */
inline int check_forward(const char *op, const float *q, const float *k, const float *v, const float *out,
                         int64_t bh, int64_t tq, int64_t tk, int64_t dh, float scale, bool *empty) {
    *empty = false;
    const int rc = check_sizes(op, bh, tq, tk, dh, scale);
    if (rc != D4J_OK) {
        return rc;
    }
    if (bh == 0 || tq == 0) {
        *empty = true;
        return D4J_OK;
    }
    D4J_REQUIRE(q != nullptr && k != nullptr && v != nullptr && out != nullptr, op, "q, k, v and out must not be null");
    return D4J_OK;
}

/* The same for a backward entry point: nothing to compute without problems or keys; with no queries only dK and dV
 * (zeros) are written, so only the key-side operands must exist. */
inline int check_backward(const char *op, const float *q, const float *k, const float *v, const float *out,
                          const float *lse, const float *dout, const float *dq, const float *dk, const float *dv,
                          int64_t bh, int64_t tq, int64_t tk, int64_t dh, float scale, bool *empty) {
    *empty = false;
    const int rc = check_sizes(op, bh, tq, tk, dh, scale);
    if (rc != D4J_OK) {
        return rc;
    }
    if (bh == 0 || tk == 0) {
        *empty = true;
        return D4J_OK;
    }
    D4J_REQUIRE(k != nullptr && v != nullptr && dk != nullptr && dv != nullptr, op,
                "k, v, dk and dv must not be null");
    D4J_REQUIRE(tq == 0 || (q != nullptr && out != nullptr && lse != nullptr && dout != nullptr && dq != nullptr), op,
                "q, out, lse, dout and dq must not be null");
    return D4J_OK;
}

/* Blocks of a grid of bh * tiles blocks (one per (problem, tile)), checked against the int32 grid limit. */
inline int grid_blocks(const char *op, int64_t bh, int64_t tiles, unsigned *blocks) {
    int64_t n = 0;
    D4J_REQUIRE(checked_mul(bh, tiles, &n) && n <= INT32_MAX, op, "too many blocks: bh=%lld x %lld tiles",
                (long long)bh, (long long)tiles);
    *blocks = static_cast<unsigned>(n);
    return D4J_OK;
}

/* Allows `Kernel` `bytes` of dynamic shared memory (needed above 48 KiB; the attribute is per kernel and device,
 * setting it again is cheap). */
template <auto Kernel>
inline int allow_shared(const char *op, size_t bytes) {
    if (bytes <= 48u * 1024u) {
        return D4J_OK;
    }
    // sm_86/89/120 (A10, L4, L40S, RTX 30/40/50) allow 99 KiB per block, sm_80 163 KiB, sm_90 227 KiB: report a
    // tile set that does not fit as unsupported (the Java side then runs the composed attention) instead of
    // failing the attribute call with cudaErrorInvalidValue.
    int dev = 0;
    int optin = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err == cudaSuccess) {
        err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    }
    if (err != cudaSuccess) {
        return cuda_status(err, op);
    }
    if (bytes > static_cast<size_t>(optin)) {
        return d4j_fail(D4J_ERR_UNSUPPORTED, op, "tiles need %zu bytes of shared memory per block, device %d allows %d",
                        bytes, dev, optin);
    }
    return cuda_status(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)),
                       op);
}

}  // namespace attn
}  // namespace d4j

#endif /* DIFFUSION4J_ATTENTION_COMMON_CUH */
