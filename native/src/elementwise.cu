/*
 * Elementwise F32 ops: fill, binary (with broadcast), binary with a scalar, unary, axpby, fma,
 * scale_shift. One grid-stride kernel template serves them all: it reads up to three operands, each a
 * full tensor, a device scalar, a host immediate, a row vector b[c] or a per-row value b[r], and applies
 * a functor from ops_math.cuh.
 *
 * Memory: each element of out written once, each tensor operand read once (broadcast operands are
 * L1/L2-resident re-reads). float4 loads/stores when out and every full-tensor operand are 16-byte
 * aligned (the usual case: cudaMalloc is 256-byte aligned), with a tail of n % 4 scalars; scalar code
 * otherwise. Row/col of ROW / PER_ROW operands come from a walker (index_math.cuh): one division per
 * thread, then adds; flat launches use kernels without it. 32-bit indices when n < 2^31, 64-bit otherwise.
 * The per-thread body lives in elementwise.cuh, where the host test replays whole launches.
 */
#include "elementwise.cuh"
#include "internal.cuh"
#include "ops_math.cuh"

namespace d4j {
namespace {

constexpr int kThreads = 256;

/*
 * out[i] = fn(in0[i'], in1[i'], in2[i']) for i < n (i' per operand source); body in elementwise.cuh.
 * Launch: 256 threads, grid = min(work / 256, one wave of resident blocks), grid-stride; work is n/4
 * float4 groups (vec) or n scalars. Bytes: 4 * n * (1 + number of SRC_TENSOR operands).
 */
template <typename I, int N, typename Fn, bool kRc>
__global__ void __launch_bounds__(kThreads) ew_kernel(const EwArgs<N> args, const Fn fn) {
    const I tid = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
    const I stride = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
    ew_thread<I, N, Fn, kRc>(args, fn, tid, stride);
}

template <typename I, bool kRc, int N, typename Fn>
int launch_ew_typed(const char *op, const EwArgs<N> &args, const Fn &fn, cudaStream_t stream) {
    constexpr auto kernel = ew_kernel<I, N, Fn, kRc>;
    const int64_t work = args.vec ? (args.n / 4 > 0 ? args.n / 4 : 1) : args.n;
    const unsigned grid = grid_for<kernel>(work, kThreads, kThreads);
    kernel<<<grid, kThreads, 0, stream>>>(args, fn);
    return d4j_check_launch(op);
}

/* Validates operands, decides vec / need_rc / index width, launches. n = rows * cols. kMayRc: whether
 * operands may be ROW / PER_ROW (binary, fma); flat ops instantiate only the walker-free kernels. */
template <bool kMayRc, int N, typename Fn>
int launch_ew(const char *op, float *out, const Operand (&in)[N], int64_t rows, int64_t cols, const Fn &fn,
              void *stream) {
    D4J_REQUIRE(rows >= 0 && cols >= 0, op, "negative size: rows=%lld, cols=%lld", (long long)rows,
                (long long)cols);
    int64_t n = 0;
    D4J_REQUIRE(checked_mul(rows, cols, &n), op, "rows*cols overflows: rows=%lld, cols=%lld", (long long)rows,
                (long long)cols);
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(out != nullptr, op, "out is null with n=%lld", (long long)n);
    EwArgs<N> args;
    args.out = out;
    args.n = n;
    args.cols = cols;
    args.vec = aligned16(out);
    args.need_rc = false;
    for (int k = 0; k < N; ++k) {
        const Operand &o = in[k];
        D4J_REQUIRE(o.src >= SRC_TENSOR && o.src <= SRC_IMM, op, "unknown broadcast code %d for operand %d",
                    o.src, k);
        D4J_REQUIRE(o.src == SRC_IMM || o.p != nullptr, op, "operand %d is null with n=%lld", k, (long long)n);
        if (o.src == SRC_TENSOR) {
            args.vec = args.vec && aligned16(o.p);
        }
        if (o.src == SRC_ROW || o.src == SRC_PER_ROW) {
            args.need_rc = true;
        }
        args.in[k] = o;
    }
    const cudaStream_t s = as_stream(stream);
    if constexpr (kMayRc) {
        if (args.need_rc) {
            return fits_u32(n) ? launch_ew_typed<uint32_t, true>(op, args, fn, s)
                               : launch_ew_typed<int64_t, true>(op, args, fn, s);
        }
    } else {
        D4J_REQUIRE(!args.need_rc, op, "row broadcast in a flat op");
    }
    return fits_u32(n) ? launch_ew_typed<uint32_t, false>(op, args, fn, s)
                       : launch_ew_typed<int64_t, false>(op, args, fn, s);
}

template <int N, typename Fn>
int launch_flat(const char *op, float *out, const Operand (&in)[N], int64_t n, const Fn &fn, void *stream) {
    D4J_REQUIRE(n >= 0, op, "negative size n=%lld", (long long)n);
    return launch_ew<false>(op, out, in, n == 0 ? 0 : 1, n, fn, stream);
}

template <typename Dispatch>
int dispatch_binary(int op, Dispatch &&d) {
    switch (op) {
    case D4J_ADD: return d(BinaryFn<D4J_ADD>{});
    case D4J_SUB: return d(BinaryFn<D4J_SUB>{});
    case D4J_MUL: return d(BinaryFn<D4J_MUL>{});
    case D4J_DIV: return d(BinaryFn<D4J_DIV>{});
    case D4J_MAX: return d(BinaryFn<D4J_MAX>{});
    case D4J_MIN: return d(BinaryFn<D4J_MIN>{});
    default: return D4J_ERR_INVALID;
    }
}

// ------------------------------------------------------------------ fill

/*
 * out[i] = pattern for i < n elements of T (uint16_t or uint32_t).
 * Launch: 256 threads, grid-stride over 16-byte groups (uint4 stores) when out is 16-byte aligned, then
 * a scalar tail; scalar stores otherwise. Bytes: n * sizeof(T) written, nothing read.
 */
template <typename T, typename I>
__global__ void __launch_bounds__(kThreads) fill_kernel(T *out, I n, uint32_t pattern32, bool vec) {
    const I tid = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
    const I stride = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
    const T value = static_cast<T>(pattern32);
    if (vec) {
        constexpr I kPer = 16 / sizeof(T);
        const I groups = n / kPer;
        const uint4 q = make_uint4(pattern32, pattern32, pattern32, pattern32);
        uint4 *out16 = reinterpret_cast<uint4 *>(out);
        for (I g = tid; g < groups; g += stride) {
            out16[g] = q;
        }
        for (I i = groups * kPer + tid; i < n; i += stride) {  // tail: fewer than 16 bytes
            out[i] = value;
        }
    } else {
        for (I i = tid; i < n; i += stride) {
            out[i] = value;
        }
    }
}

template <typename T, typename I>
int launch_fill(T *out, int64_t n, uint32_t pattern32, cudaStream_t stream) {
    constexpr auto kernel = fill_kernel<T, I>;
    const bool vec = aligned16(out);
    const int64_t work = vec ? (n * static_cast<int64_t>(sizeof(T)) / 16 > 0 ? n * static_cast<int64_t>(sizeof(T)) / 16 : 1) : n;
    const unsigned grid = grid_for<kernel>(work, kThreads, kThreads);
    kernel<<<grid, kThreads, 0, stream>>>(out, static_cast<I>(n), pattern32, vec);
    return d4j_check_launch("d4j_fill");
}

}  // namespace
}  // namespace d4j

using namespace d4j;

extern "C" int d4j_fill(void *out, int dtype, int64_t n, float value, void *stream) {
    const char *op = "d4j_fill";
    D4J_REQUIRE(n >= 0, op, "negative size n=%lld", (long long)n);
    D4J_REQUIRE(dtype >= D4J_F32 && dtype <= D4J_I32, op, "unknown dtype %d", dtype);
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(out != nullptr, op, "out is null with n=%lld", (long long)n);
    const int64_t elem = (dtype == D4J_BF16 || dtype == D4J_F16) ? 2 : 4;
    D4J_REQUIRE(n <= INT64_MAX / elem, op, "n=%lld elements of %lld bytes overflow", (long long)n, (long long)elem);
    uint32_t bits = encode_dtype(dtype, value);
    if (elem == 2) {
        bits = (bits & 0xffffu) | (bits << 16);
    }
    if (bits == 0) {  // zeros (of any dtype, -0 excluded): the runtime's memset is as fast as it gets
        return cuda_status(cudaMemsetAsync(out, 0, static_cast<size_t>(n * elem), as_stream(stream)), op);
    }
    if (elem == 2) {
        return fits_u32(n) ? launch_fill<uint16_t, uint32_t>(static_cast<uint16_t *>(out), n, bits, as_stream(stream))
                           : launch_fill<uint16_t, int64_t>(static_cast<uint16_t *>(out), n, bits, as_stream(stream));
    }
    return fits_u32(n) ? launch_fill<uint32_t, uint32_t>(static_cast<uint32_t *>(out), n, bits, as_stream(stream))
                       : launch_fill<uint32_t, int64_t>(static_cast<uint32_t *>(out), n, bits, as_stream(stream));
}

extern "C" int d4j_binary_f32(int op, const float *a, const float *b, int bcast, float *out, int64_t rows,
                              int64_t cols, void *stream) {
    const char *name = "d4j_binary_f32";
    D4J_REQUIRE(op >= D4J_ADD && op <= D4J_MIN, name, "unknown binary op %d", op);
    D4J_REQUIRE(bcast >= D4J_BCAST_NONE && bcast <= D4J_BCAST_PER_ROW, name, "unknown broadcast code %d", bcast);
    const Operand in[2] = {{a, SRC_TENSOR, 0.0f}, {b, bcast, 0.0f}};
    return dispatch_binary(op, [&](auto fn) { return launch_ew<true>(name, out, in, rows, cols, fn, stream); });
}

extern "C" int d4j_binary_scalar_f32(int op, const float *a, float s, float *out, int64_t n, void *stream) {
    const char *name = "d4j_binary_scalar_f32";
    D4J_REQUIRE(op >= D4J_ADD && op <= D4J_MIN, name, "unknown binary op %d", op);
    const Operand in[2] = {{a, SRC_TENSOR, 0.0f}, {nullptr, SRC_IMM, s}};
    return dispatch_binary(op, [&](auto fn) { return launch_flat(name, out, in, n, fn, stream); });
}

extern "C" int d4j_unary_f32(int op, const float *a, float *out, int64_t n, void *stream) {
    const char *name = "d4j_unary_f32";
    const Operand in[1] = {{a, SRC_TENSOR, 0.0f}};
    switch (op) {
    case D4J_NEG: return launch_flat(name, out, in, n, UnaryFn<D4J_NEG>{}, stream);
    case D4J_ABS: return launch_flat(name, out, in, n, UnaryFn<D4J_ABS>{}, stream);
    case D4J_EXP: return launch_flat(name, out, in, n, UnaryFn<D4J_EXP>{}, stream);
    case D4J_LOG: return launch_flat(name, out, in, n, UnaryFn<D4J_LOG>{}, stream);
    case D4J_SQRT: return launch_flat(name, out, in, n, UnaryFn<D4J_SQRT>{}, stream);
    case D4J_RSQRT: return launch_flat(name, out, in, n, UnaryFn<D4J_RSQRT>{}, stream);
    case D4J_SQUARE: return launch_flat(name, out, in, n, UnaryFn<D4J_SQUARE>{}, stream);
    case D4J_RECIPROCAL: return launch_flat(name, out, in, n, UnaryFn<D4J_RECIPROCAL>{}, stream);
    case D4J_TANH: return launch_flat(name, out, in, n, UnaryFn<D4J_TANH>{}, stream);
    case D4J_SIGMOID: return launch_flat(name, out, in, n, UnaryFn<D4J_SIGMOID>{}, stream);
    default: return d4j_fail(D4J_ERR_INVALID, name, "unknown unary op %d", op);
    }
}

extern "C" int d4j_axpby_f32(float alpha, const float *x, float beta, const float *y, float *out, int64_t n,
                             void *stream) {
    const Operand in[2] = {{x, SRC_TENSOR, 0.0f}, {y, SRC_TENSOR, 0.0f}};
    return launch_flat("d4j_axpby_f32", out, in, n, AxpbyFn{alpha, beta}, stream);
}

extern "C" int d4j_fma_f32(const float *a, const float *b, int b_bcast, const float *c, int c_bcast, float *out,
                           int64_t rows, int64_t cols, void *stream) {
    const char *name = "d4j_fma_f32";
    D4J_REQUIRE(b_bcast >= D4J_BCAST_NONE && b_bcast <= D4J_BCAST_PER_ROW, name, "unknown broadcast code %d for b",
                b_bcast);
    D4J_REQUIRE(c_bcast >= D4J_BCAST_NONE && c_bcast <= D4J_BCAST_PER_ROW, name, "unknown broadcast code %d for c",
                c_bcast);
    const Operand in[3] = {{a, SRC_TENSOR, 0.0f}, {b, b_bcast, 0.0f}, {c, c_bcast, 0.0f}};
    return launch_ew<true>(name, out, in, rows, cols, FmaFn{}, stream);
}

extern "C" int d4j_scale_shift_f32(const float *a, float s, float t, float *out, int64_t n, void *stream) {
    const Operand in[1] = {{a, SRC_TENSOR, 0.0f}};
    return launch_flat("d4j_scale_shift_f32", out, in, n, ScaleShiftFn{s, t}, stream);
}
