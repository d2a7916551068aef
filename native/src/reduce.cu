/*
 * Row reductions (SUM / MEAN / MAX over the last dim), the deterministic global sum of squares, and the
 * row softmax. The combine arithmetic lives in ops_math.cuh (SumAcc, MaxAcc, SoftmaxAcc).
 *
 * Row kernels pick one warp per row for cols <= 1024 (8 rows per 256-thread block, no shared memory, no
 * barriers) and one 512-thread block per row above that. Row loads are float4 after peeling the 0..3
 * elements before the row's first 16-byte boundary, so every row vectorises whatever cols is.
 * Limitation: a handful of very long rows (rows << number of SMs) use only `rows` SMs; the C ABI gives
 * no workspace for a split-row pass.
 */
#include "index_math.cuh"
#include "internal.cuh"
#include "ops_math.cuh"

namespace d4j {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpThreads = 256;  // warp-per-row kernels: 8 rows in flight per block
constexpr int kRowsPerBlock = kWarpThreads / kWarp;
constexpr int kBlockThreads = 512;  // block-per-row kernels
constexpr int64_t kWarpMaxCols = 1024;
constexpr unsigned kFull = 0xffffffffu;

// ------------------------------------------------------------------ warp / block combine

__device__ __forceinline__ void warp_merge(SumAcc &a) {
#pragma unroll
    for (int o = kWarp / 2; o > 0; o /= 2) {
        a.merge(__shfl_xor_sync(kFull, a.v, o));
    }
}

__device__ __forceinline__ void warp_merge(MaxAcc &a) {
#pragma unroll
    for (int o = kWarp / 2; o > 0; o /= 2) {
        a.merge(__shfl_xor_sync(kFull, a.v, o));
    }
}

__device__ __forceinline__ void warp_merge(SoftmaxAcc &a) {
#pragma unroll
    for (int o = kWarp / 2; o > 0; o /= 2) {
        const float m2 = __shfl_xor_sync(kFull, a.m, o);
        const float s2 = __shfl_xor_sync(kFull, a.s, o);
        a.merge(m2, s2);
    }
}

/* Every thread of the block ends with the block's combined value. `scratch` holds one Acc per warp;
 * the trailing barrier lets the caller reuse it at once. Fixed combine order: deterministic. */
template <typename Acc>
__device__ __forceinline__ void block_merge(Acc &a, Acc *scratch) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int warps = static_cast<int>(blockDim.x) / kWarp;
    warp_merge(a);
    if (lane == 0) {
        scratch[warp] = a;
    }
    __syncthreads();
    Acc b = lane < warps ? scratch[lane] : Acc();
    warp_merge(b);  // every warp reduces the per-warp values: no second broadcast step needed
    a = b;
    __syncthreads();
}

// ------------------------------------------------------------------ row loads

/* Accumulates row[c] for c = t, t + nt, ... < cols: scalar head up to the first 16-byte boundary, float4
 * body, scalar tail. `add4(x0..x3)` takes a body group, `add(x)` a single element. */
template <typename Add, typename Add4>
__device__ __forceinline__ void for_row(const float *row, int64_t cols, int t, int nt, Add add, Add4 add4) {
    const uintptr_t addr = reinterpret_cast<uintptr_t>(row);
    int64_t head = (addr & 3u) != 0 ? cols : static_cast<int64_t>(((16u - (addr & 15u)) & 15u) / 4u);
    if (head > cols) {
        head = cols;
    }
    for (int64_t c = t; c < head; c += nt) {
        add(row[c]);
    }
    const int64_t groups = (cols - head) / 4;
    const float4 *body = reinterpret_cast<const float4 *>(row + head);
    for (int64_t g = t; g < groups; g += nt) {
        const float4 q = body[g];
        add4(q.x, q.y, q.z, q.w);
    }
    for (int64_t c = head + groups * 4 + t; c < cols; c += nt) {
        add(row[c]);
    }
}

template <int OP>
struct RowAcc {
    using type = SumAcc;
};
template <>
struct RowAcc<D4J_RMAX> {
    using type = MaxAcc;
};

template <typename Acc>
__device__ __forceinline__ void accumulate_row(Acc &acc, const float *row, int64_t cols, int t, int nt) {
    for_row(
        row, cols, t, nt, [&](float x) { acc.add(x); },
        [&](float x0, float x1, float x2, float x3) {
            acc.add(x0);
            acc.add(x1);
            acc.add(x2);
            acc.add(x3);
        });
}

__device__ __forceinline__ float finish(const SumAcc &a, int op, int64_t cols) {
    return reduce_finish(op, a.v, 0.0f, cols);
}
__device__ __forceinline__ float finish(const MaxAcc &a, int op, int64_t cols) {
    return reduce_finish(op, 0.0, a.v, cols);
}

// ------------------------------------------------------------------ reduce_last

/*
 * out[r] = reduce(x[r, :]), one warp per row, rows grid-strided by 8 per block.
 * Launch: 256 threads, grid = min(ceil(rows / 8), one wave). Bytes: 4 * rows * (cols + 1).
 */
template <int OP>
__global__ void __launch_bounds__(kWarpThreads) reduce_warp_kernel(const float *x, float *out, int64_t rows,
                                                                  int64_t cols) {
    using Acc = typename RowAcc<OP>::type;
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int64_t step = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
    for (int64_t r = first; r < rows; r += step) {
        Acc acc;
        accumulate_row(acc, x + r * cols, cols, lane, kWarp);
        warp_merge(acc);
        if (lane == 0) {
            out[r] = finish(acc, OP, cols);
        }
    }
}

/*
 * out[r] = reduce(x[r, :]), one 512-thread block per row, rows grid-strided.
 * Launch: 512 threads, grid = min(rows, one wave). Bytes: 4 * rows * (cols + 1).
 */
template <int OP>
__global__ void __launch_bounds__(kBlockThreads) reduce_block_kernel(const float *x, float *out, int64_t rows,
                                                                    int64_t cols) {
    using Acc = typename RowAcc<OP>::type;
    __shared__ __align__(16) unsigned char scratch_raw[sizeof(Acc) * (kBlockThreads / kWarp)];
    Acc *scratch = reinterpret_cast<Acc *>(scratch_raw);  // Acc has a constructor
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        Acc acc;
        accumulate_row(acc, x + r * cols, cols, static_cast<int>(threadIdx.x), kBlockThreads);
        block_merge(acc, scratch);
        if (threadIdx.x == 0) {
            out[r] = finish(acc, OP, cols);
        }
    }
}

template <int OP>
int launch_reduce(const float *x, float *out, int64_t rows, int64_t cols, cudaStream_t stream) {
    if (cols <= kWarpMaxCols) {
        constexpr auto kernel = reduce_warp_kernel<OP>;
        kernel<<<grid_for<kernel>(rows, kWarpThreads, kRowsPerBlock), kWarpThreads, 0, stream>>>(x, out, rows, cols);
    } else {
        constexpr auto kernel = reduce_block_kernel<OP>;
        kernel<<<grid_for<kernel>(rows, kBlockThreads, 1), kBlockThreads, 0, stream>>>(x, out, rows, cols);
    }
    return d4j_check_launch("d4j_reduce_last_f32");
}

// ------------------------------------------------------------------ sum of squares

constexpr int kSsqThreads = 256;
constexpr int kSsqMaxBlocks = 1024;            // one wave of 8 x 256-thread blocks on a 132-SM H100/H200
constexpr int64_t kSsqPerBlock = kSsqThreads * 16;  // at least 16 elements per thread before adding blocks

/* Pass-1 block count: a function of n alone, so the summation order (and the result) is the same on
 * every device and every run. */
int64_t ssq_blocks(int64_t n) {
    if (n <= 0) {
        return 0;
    }
    const int64_t b = ceil_div(n, kSsqPerBlock);
    return b < kSsqMaxBlocks ? b : kSsqMaxBlocks;
}

/*
 * Pass 1: partial[b] = sum of x[i]^2 (fp64) over the 4-element groups g = b*256 + t + k*blocks*256.
 * The order depends on n only: a group is one float4 load when x is 16-byte aligned and four scalar
 * loads otherwise, added in the same order either way.
 * Launch: 256 threads x ssq_blocks(n) blocks. Bytes: 4 n read, 8 per block written.
 */
__global__ void __launch_bounds__(kSsqThreads, 8) ssq_partial_kernel(const float *x, int64_t n, bool vec,
                                                                    double *partial) {
    __shared__ __align__(16) unsigned char scratch_raw[sizeof(SumAcc) * (kSsqThreads / kWarp)];
    SumAcc *scratch = reinterpret_cast<SumAcc *>(scratch_raw);  // Acc has a constructor
    const int64_t groups = (n + 3) / 4;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * kSsqThreads;
    SumAcc acc;
    for (int64_t g = static_cast<int64_t>(blockIdx.x) * kSsqThreads + threadIdx.x; g < groups; g += stride) {
        const int64_t i = g * 4;
        float v[4];
        if (vec && i + 4 <= n) {
            const float4 q = reinterpret_cast<const float4 *>(x)[g];
            v[0] = q.x;
            v[1] = q.y;
            v[2] = q.z;
            v[3] = q.w;
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                v[k] = i + k < n ? x[i + k] : 0.0f;
            }
        }
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            acc.merge(square_f64(v[k]));
        }
    }
    block_merge(acc, scratch);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc.v;
    }
}

/* Pass 2: ws[0] = sum of partial[0..blocks) in a fixed tree order. Launch: 1 block of 1024 threads. */
__global__ void __launch_bounds__(kSsqMaxBlocks) ssq_final_kernel(double *ws, int blocks) {
    __shared__ __align__(16) unsigned char scratch_raw[sizeof(SumAcc) * (kSsqMaxBlocks / kWarp)];
    SumAcc *scratch = reinterpret_cast<SumAcc *>(scratch_raw);  // Acc has a constructor
    SumAcc acc;
    if (static_cast<int>(threadIdx.x) < blocks) {
        acc.merge(ws[threadIdx.x]);
    }
    block_merge(acc, scratch);  // all reads of ws happen before this barrier
    if (threadIdx.x == 0) {
        ws[0] = acc.v;
    }
}

// ------------------------------------------------------------------ softmax

/*
 * Row softmax for cols <= 32 * K, one warp per row, the row held in registers (K values per lane):
 * read once, max, exp and sum, scale, write once. Loads/stores are lane-consecutive (coalesced).
 * Launch: 256 threads (8 rows per block), grid = min(ceil(rows / 8), one wave).
 * Bytes: 8 * rows * cols (the minimum).
 */
template <int K>
__global__ void __launch_bounds__(kWarpThreads) softmax_warp_kernel(const float *x, float *out, int64_t rows,
                                                                   int64_t cols) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int64_t step = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
    const int ncols = static_cast<int>(cols);  // <= 1024
    for (int64_t r = first; r < rows; r += step) {
        const float *row = x + r * cols;
        float v[K];
        MaxAcc mx;
#pragma unroll
        for (int k = 0; k < K; ++k) {
            const int c = lane + k * kWarp;
            v[k] = c < ncols ? row[c] : -f32_inf();
            mx.add(v[k]);
        }
        warp_merge(mx);
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < K; ++k) {
            const int c = lane + k * kWarp;
            if (c < ncols) {
                v[k] = expf(v[k] - mx.v);
                s += v[k];
            }
        }
#pragma unroll
        for (int o = kWarp / 2; o > 0; o /= 2) {
            s += __shfl_xor_sync(kFull, s, o);
        }
        const float inv = 1.0f / s;
        float *orow = out + r * cols;
#pragma unroll
        for (int k = 0; k < K; ++k) {
            const int c = lane + k * kWarp;
            if (c < ncols) {
                orow[c] = v[k] * inv;
            }
        }
    }
}

/*
 * Row softmax for long rows, one 512-thread block per row: pass 1 reads the row once with the online
 * (max, sum) update (SoftmaxAcc, 5 exps per float4), merged across the block; pass 2 re-reads (mostly
 * from L2) and writes exp(x - max) / sum. In-place safe: pass 2 reads and writes each element in the
 * same thread. Launch: 512 threads, grid = min(rows, one wave). Bytes: 12 * rows * cols.
 */
__global__ void __launch_bounds__(kBlockThreads) softmax_block_kernel(const float *x, float *out, int64_t rows,
                                                                     int64_t cols) {
    __shared__ __align__(16) unsigned char scratch_raw[sizeof(SoftmaxAcc) * (kBlockThreads / kWarp)];
    SoftmaxAcc *scratch = reinterpret_cast<SoftmaxAcc *>(scratch_raw);  // Acc has a constructor
    const int t = static_cast<int>(threadIdx.x);
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *row = x + r * cols;
        SoftmaxAcc acc;
        for_row(
            row, cols, t, kBlockThreads, [&](float v) { acc.add(v); },
            [&](float x0, float x1, float x2, float x3) { acc.add4(x0, x1, x2, x3); });
        block_merge(acc, scratch);
        const float m = acc.m;
        const float inv = 1.0f / acc.s;
        float *orow = out + r * cols;
        for (int64_t c = t; c < cols; c += kBlockThreads) {
            orow[c] = expf(row[c] - m) * inv;
        }
    }
}

template <int K>
void launch_softmax_warp(const float *x, float *out, int64_t rows, int64_t cols, cudaStream_t stream) {
    constexpr auto kernel = softmax_warp_kernel<K>;
    kernel<<<grid_for<kernel>(rows, kWarpThreads, kRowsPerBlock), kWarpThreads, 0, stream>>>(x, out, rows, cols);
}

}  // namespace
}  // namespace d4j

using namespace d4j;

extern "C" int d4j_reduce_last_f32(int op, const float *x, float *out, int64_t rows, int64_t cols, void *stream) {
    const char *name = "d4j_reduce_last_f32";
    D4J_REQUIRE(op == D4J_SUM || op == D4J_MEAN || op == D4J_RMAX, name, "unknown reduction %d", op);
    D4J_REQUIRE(rows >= 0 && cols >= 0, name, "negative size: rows=%lld, cols=%lld", (long long)rows,
                (long long)cols);
    int64_t n = 0;
    D4J_REQUIRE(checked_mul(rows, cols, &n), name, "rows*cols overflows: rows=%lld, cols=%lld", (long long)rows,
                (long long)cols);
    if (rows == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(out != nullptr && (cols == 0 || x != nullptr), name, "x or out is null with rows=%lld, cols=%lld",
                (long long)rows, (long long)cols);
    const cudaStream_t s = as_stream(stream);
    switch (op) {
    case D4J_SUM: return launch_reduce<D4J_SUM>(x, out, rows, cols, s);
    case D4J_MEAN: return launch_reduce<D4J_MEAN>(x, out, rows, cols, s);
    default: return launch_reduce<D4J_RMAX>(x, out, rows, cols, s);
    }
}

extern "C" int64_t d4j_sum_squares_workspace_bytes(int64_t n) {
    if (n < 0) {
        return D4J_ERR_INVALID;
    }
    return ssq_blocks(n) * static_cast<int64_t>(sizeof(double));
}

extern "C" int d4j_sum_squares_f32(const float *x, int64_t n, void *workspace, double *host_result, void *stream) {
    const char *op = "d4j_sum_squares_f32";
    D4J_REQUIRE(n >= 0, op, "negative size n=%lld", (long long)n);
    D4J_REQUIRE(host_result != nullptr, op, "host_result is null");
    if (n == 0) {
        *host_result = 0.0;
        return D4J_OK;
    }
    D4J_REQUIRE(x != nullptr && workspace != nullptr, op, "x or workspace is null with n=%lld", (long long)n);
    D4J_REQUIRE(aligned_to(workspace, alignof(double)), op, "workspace %p is not 8-byte aligned", workspace);
    const cudaStream_t s = as_stream(stream);
    const int blocks = static_cast<int>(ssq_blocks(n));
    double *ws = static_cast<double *>(workspace);
    ssq_partial_kernel<<<blocks, kSsqThreads, 0, s>>>(x, n, aligned16(x), ws);
    int st = d4j_check_launch(op);
    if (st != D4J_OK) {
        return st;
    }
    ssq_final_kernel<<<1, kSsqMaxBlocks, 0, s>>>(ws, blocks);
    st = d4j_check_launch(op);
    if (st != D4J_OK) {
        return st;
    }
    double result = 0.0;
    st = cuda_status(cudaMemcpyAsync(&result, ws, sizeof result, cudaMemcpyDeviceToHost, s), op);
    if (st != D4J_OK) {
        return st;
    }
    st = cuda_status(cudaStreamSynchronize(s), op);
    if (st != D4J_OK) {
        return st;
    }
    *host_result = result;
    return D4J_OK;
}

extern "C" int d4j_softmax_last_f32(const float *x, float *out, int64_t rows, int64_t cols, void *stream) {
    const char *op = "d4j_softmax_last_f32";
    D4J_REQUIRE(rows >= 0 && cols >= 0, op, "negative size: rows=%lld, cols=%lld", (long long)rows, (long long)cols);
    int64_t n = 0;
    D4J_REQUIRE(checked_mul(rows, cols, &n), op, "rows*cols overflows: rows=%lld, cols=%lld", (long long)rows,
                (long long)cols);
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(x != nullptr && out != nullptr, op, "x or out is null with rows=%lld, cols=%lld", (long long)rows,
                (long long)cols);
    const cudaStream_t s = as_stream(stream);
    if (cols <= 32) {
        launch_softmax_warp<1>(x, out, rows, cols, s);
    } else if (cols <= 64) {
        launch_softmax_warp<2>(x, out, rows, cols, s);
    } else if (cols <= 128) {
        launch_softmax_warp<4>(x, out, rows, cols, s);
    } else if (cols <= 256) {
        launch_softmax_warp<8>(x, out, rows, cols, s);
    } else if (cols <= 512) {
        launch_softmax_warp<16>(x, out, rows, cols, s);
    } else if (cols <= kWarpMaxCols) {
        launch_softmax_warp<32>(x, out, rows, cols, s);
    } else {
        constexpr auto kernel = softmax_block_kernel;
        kernel<<<grid_for<kernel>(rows, kBlockThreads, 1), kBlockThreads, 0, s>>>(x, out, rows, cols);
    }
    return d4j_check_launch(op);
}
