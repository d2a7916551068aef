/*
 * Internal helpers shared by the kernel files (host side only): error recording, argument checks,
 * stream casts, grid sizing. Not part of the public ABI.
 *
 * d4j_fail and d4j_check_launch are defined in runtime.cu next to d4j_last_error, which owns the
 * thread-local error text.
 */
#ifndef D4J_INTERNAL_CUH
#define D4J_INTERNAL_CUH

#include <cuda_runtime.h>

#include <atomic>
#include <stdint.h>

#include "diffusion4j.h"

#if defined(__GNUC__) || defined(__clang__)
#define D4J_PRINTF_LIKE(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define D4J_PRINTF_LIKE(fmt_index, first_arg)
#endif

/* Records "op: <formatted message>" as this thread's last error and returns `status` unchanged. */
int d4j_fail(int status, const char *op, const char *fmt, ...) D4J_PRINTF_LIKE(3, 4);

/* cudaGetLastError() after a launch: D4J_OK, or the error recorded (name, message, op) and returned. */
int d4j_check_launch(const char *op);

namespace d4j {

/* A CUDA runtime call's result as a status: D4J_OK, or the error recorded with the op's name. The
 * runtime's non-sticky last error is cleared so the next launch check does not report it again. */
inline int cuda_status(cudaError_t err, const char *op) {
    if (err == cudaSuccess) {
        return D4J_OK;
    }
    (void)cudaGetLastError();
    return d4j_fail(static_cast<int>(err), op, "%s: %s", cudaGetErrorName(err), cudaGetErrorString(err));
}

inline cudaStream_t as_stream(void *stream) { return static_cast<cudaStream_t>(stream); }

inline bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

inline bool aligned_to(const void *p, uintptr_t bytes) {
    return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

/* True when element indices below n fit the 32-bit kernel variants (i + grid stride never wraps). */
inline bool fits_u32(int64_t n) { return n <= INT32_MAX; }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* rows * cols into *n; false on overflow (both already known non-negative). */
inline bool checked_mul(int64_t a, int64_t b, int64_t *n) {
    if (a != 0 && b > INT64_MAX / a) {
        return false;
    }
    *n = a * b;
    return true;
}

/* Multiprocessor count of the current device, cached per device (64 devices at most; others query). */
inline int sm_count() {
    static std::atomic<int> cache[64];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return 132;
    }
    if (dev >= 0 && dev < 64) {
        int v = cache[dev].load(std::memory_order_relaxed);
        if (v > 0) {
            return v;
        }
    }
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0) {
        (void)cudaGetLastError();
        return 132;  // not cached: the launch that follows reports the real error
    }
    if (dev >= 0 && dev < 64) {
        cache[dev].store(v, std::memory_order_relaxed);
    }
    return v;
}

/* Resident blocks per SM of `Kernel` at `threads` threads and no dynamic shared memory, cached per
 * kernel from the first device that asks (a mixed-GPU host reuses it: it only sizes grids, every kernel
 * is correct for any grid). */
template <auto Kernel>
inline int blocks_per_sm(int threads) {
    static std::atomic<int> cache{0};
    int v = cache.load(std::memory_order_relaxed);
    if (v > 0) {
        return v;
    }
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, Kernel, threads, 0) != cudaSuccess || v <= 0) {
        (void)cudaGetLastError();
        return 1;  // not cached: the launch that follows reports the real error
    }
    cache.store(v, std::memory_order_relaxed);
    return v;
}

/* Grid for a grid-stride kernel over `work` items of `per_block` items per block pass: enough blocks to
 * cover the work once, at most one full wave of resident blocks. work must be > 0. */
template <auto Kernel>
inline unsigned grid_for(int64_t work, int threads, int64_t per_block) {
    const int64_t wave = static_cast<int64_t>(sm_count()) * blocks_per_sm<Kernel>(threads);
    int64_t blocks = ceil_div(work, per_block);
    if (blocks > wave) {
        blocks = wave;
    }
    return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

}  // namespace d4j

/* Argument check: returns D4J_ERR_INVALID with the op name and a message when `cond` is false. */
#define D4J_REQUIRE(cond, op, ...)                                  \
    do {                                                            \
        if (!(cond)) {                                              \
            return d4j_fail(D4J_ERR_INVALID, (op), __VA_ARGS__);    \
        }                                                           \
    } while (0)

#endif /* D4J_INTERNAL_CUH */
