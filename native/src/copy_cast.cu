/*
 * Strided copy (permute / transpose materialisation) and float dtype casts.
 *
 * d4j_copy_strided plans on the host (index_math.cuh): extent-1 dims are dropped, dims that form one
 * strided run are merged, a unit-stride inner dim is widened to 16-byte elements when alignment allows.
 * Then one of: cudaMemcpyAsync (src contiguous), a 32x32 shared-memory tiled transpose (the
 * dst-contiguous last dim is strided in src but another dim is src-contiguous: both sides coalesced), or a
 * per-element gather (dst coalesced; src coalesced whenever its inner stride is 1).
 *
 * d4j_cast converts F32 <-> BF16 <-> F16 with the round-to-nearest-even functions of ops_math.cuh,
 * four elements per thread with vector loads/stores when both pointers allow.
 */
#include "index_math.cuh"
#include "internal.cuh"
#include "ops_math.cuh"

namespace d4j {
namespace {

constexpr int kThreads = 256;

struct alignas(8) Bytes8 {
    uint32_t lo, hi;
};

/*
 * dst[i] = src[copy_src_offset(plan, i)] for i < plan.numel, T of plan.elem_size bytes.
 * Launch: 256 threads, grid-stride, one wave at most. Bytes: numel * elem_size read and written; writes
 * coalesced, reads coalesced when the inner src stride is 1 (else one sector per element).
 */
template <typename T, typename I>
__global__ void __launch_bounds__(kThreads) copy_general_kernel(const T *src, T *dst, const CopyPlan plan) {
    const I n = static_cast<I>(plan.numel);
    const I stride = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
    for (I i = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x); i < n;
         i += stride) {
        dst[i] = src[copy_src_offset<I>(plan, i)];
    }
}

constexpr int kTileRows = 8;  // 32 x 8 threads move a 32 x 32 tile, 4 elements per thread

/*
 * Batched tiled transpose: j = plan.tdim (src stride 1), l = last dim (dst stride 1).
 * Each 32x32 tile is read along j (coalesced in src) into shared memory and written along l (coalesced
 * in dst); the +1 column of padding keeps the column reads free of bank conflicts for 4-byte T.
 * Launch: 32 x 8 threads, grid-stride over tiles (batch x j-tiles x l-tiles), one wave at most.
 * Bytes: numel * elem_size read and written, all in full sectors except at ragged tile edges.
 */
template <typename T>
__global__ void __launch_bounds__(kTile *kTileRows) copy_transpose_kernel(const T *src, T *dst, const CopyPlan plan,
                                                                         int64_t tiles_j, int64_t tiles_l,
                                                                         int64_t tiles) {
    __shared__ T tile[kTile][kTile + 1];  // [l offset][j offset]
    const int64_t nj = plan.shape[plan.tdim];
    const int64_t nl = plan.shape[plan.rank - 1];
    const int64_t sl = plan.sstride[plan.rank - 1];
    const int64_t dj = plan.dstride[plan.tdim];
    const int tx = static_cast<int>(threadIdx.x);
    const int ty = static_cast<int>(threadIdx.y);
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        const TransposeTile tt = transpose_tile(plan, t, tiles_j, tiles_l);
        {
            const int64_t j = tt.j0 + tx;  // lanes walk j: unit stride in src
#pragma unroll
            for (int k = ty; k < kTile; k += kTileRows) {
                const int64_t l = tt.l0 + k;
                if (j < nj && l < nl) {
                    tile[k][tx] = src[tt.src_base + j + l * sl];
                }
            }
        }
        __syncthreads();
        {
            const int64_t l = tt.l0 + tx;  // lanes walk l: unit stride in dst
#pragma unroll
            for (int k = ty; k < kTile; k += kTileRows) {
                const int64_t j = tt.j0 + k;
                if (j < nj && l < nl) {
                    dst[tt.dst_base + j * dj + l] = tile[tx][k];
                }
            }
        }
        __syncthreads();  // the tile is reused by the next iteration
    }
}

template <typename T, typename I>
int launch_general(const void *src, void *dst, const CopyPlan &plan, cudaStream_t stream) {
    constexpr auto kernel = copy_general_kernel<T, I>;
    const unsigned grid = grid_for<kernel>(plan.numel, kThreads, kThreads);
    kernel<<<grid, kThreads, 0, stream>>>(static_cast<const T *>(src), static_cast<T *>(dst), plan);
    return d4j_check_launch("d4j_copy_strided");
}

template <typename T>
int launch_transpose(const void *src, void *dst, const CopyPlan &plan, cudaStream_t stream) {
    constexpr auto kernel = copy_transpose_kernel<T>;
    const int64_t tiles_j = transpose_tiles_j(plan);
    const int64_t tiles_l = transpose_tiles_l(plan);
    const int64_t tiles = plan.numel / (plan.shape[plan.tdim] * plan.shape[plan.rank - 1]) * tiles_j * tiles_l;
    const unsigned grid = grid_for<kernel>(tiles, kTile * kTileRows, 1);
    kernel<<<grid, dim3(kTile, kTileRows), 0, stream>>>(static_cast<const T *>(src), static_cast<T *>(dst), plan,
                                                        tiles_j, tiles_l, tiles);
    return d4j_check_launch("d4j_copy_strided");
}

template <typename T>
int launch_general_sized(const void *src, void *dst, const CopyPlan &plan, cudaStream_t stream) {
    return fits_u32(plan.numel) ? launch_general<T, uint32_t>(src, dst, plan, stream)
                                : launch_general<T, int64_t>(src, dst, plan, stream);
}

// ------------------------------------------------------------------ cast

template <int DT>
struct Dtype;
template <>
struct Dtype<D4J_F32> {
    using Raw = float;
    using Raw4 = float4;
    __device__ static float to_f32(float r) { return r; }
    __device__ static float from_f32(float f) { return f; }
    __device__ static void unpack(const float4 &q, float (&x)[4]) {
        x[0] = q.x;
        x[1] = q.y;
        x[2] = q.z;
        x[3] = q.w;
    }
    __device__ static float4 pack(const float (&x)[4]) { return make_float4(x[0], x[1], x[2], x[3]); }
};
template <int DT>
struct Dtype16 {
    using Raw = uint16_t;
    using Raw4 = uint2;  // 4 x 16 bits
    __device__ static float to_f32(uint16_t r) { return DT == D4J_BF16 ? bf16_to_f32(r) : f16_to_f32(r); }
    __device__ static uint16_t from_f32(float f) { return DT == D4J_BF16 ? f32_to_bf16(f) : f32_to_f16(f); }
    __device__ static void unpack(const uint2 &q, float (&x)[4]) {
        x[0] = to_f32(static_cast<uint16_t>(q.x & 0xffffu));
        x[1] = to_f32(static_cast<uint16_t>(q.x >> 16));
        x[2] = to_f32(static_cast<uint16_t>(q.y & 0xffffu));
        x[3] = to_f32(static_cast<uint16_t>(q.y >> 16));
    }
    __device__ static uint2 pack(const float (&x)[4]) {
        uint2 q;
        q.x = static_cast<uint32_t>(from_f32(x[0])) | (static_cast<uint32_t>(from_f32(x[1])) << 16);
        q.y = static_cast<uint32_t>(from_f32(x[2])) | (static_cast<uint32_t>(from_f32(x[3])) << 16);
        return q;
    }
};
template <>
struct Dtype<D4J_BF16> : Dtype16<D4J_BF16> {};
template <>
struct Dtype<D4J_F16> : Dtype16<D4J_F16> {};

/*
 * dst[i] = convert(src[i]) through an exact f32 intermediate (so BF16 <-> F16 rounds once).
 * Launch: 256 threads, grid-stride over groups of 4 (one vector load of 16 or 8 bytes, one vector store)
 * when both pointers are aligned to 4 elements, scalar otherwise; n % 4 tail scalar.
 * Bytes: n * (src size + dst size).
 */
template <int SRC, int DST, typename I>
__global__ void __launch_bounds__(kThreads) cast_kernel(const void *src_v, void *dst_v, I n, bool vec) {
    using S = Dtype<SRC>;
    using D = Dtype<DST>;
    const auto *src = static_cast<const typename S::Raw *>(src_v);
    auto *dst = static_cast<typename D::Raw *>(dst_v);
    const I tid = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
    const I stride = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
    I done = 0;
    if (vec) {
        const I n4 = n / 4;
        const auto *src4 = reinterpret_cast<const typename S::Raw4 *>(src);
        auto *dst4 = reinterpret_cast<typename D::Raw4 *>(dst);
        for (I v = tid; v < n4; v += stride) {
            float x[4];
            S::unpack(src4[v], x);
            dst4[v] = D::pack(x);
        }
        done = n4 * 4;
    }
    for (I i = done + tid; i < n; i += stride) {
        dst[i] = D::from_f32(S::to_f32(src[i]));
    }
}

template <int SRC, int DST>
int launch_cast(const void *src, void *dst, int64_t n, cudaStream_t stream) {
    const bool vec = aligned_to(src, 4 * sizeof(typename Dtype<SRC>::Raw)) &&
                     aligned_to(dst, 4 * sizeof(typename Dtype<DST>::Raw));
    const int64_t work = vec ? (n / 4 > 0 ? n / 4 : 1) : n;
    if (fits_u32(n)) {
        constexpr auto kernel = cast_kernel<SRC, DST, uint32_t>;
        kernel<<<grid_for<kernel>(work, kThreads, kThreads), kThreads, 0, stream>>>(src, dst,
                                                                                   static_cast<uint32_t>(n), vec);
    } else {
        constexpr auto kernel = cast_kernel<SRC, DST, int64_t>;
        kernel<<<grid_for<kernel>(work, kThreads, kThreads), kThreads, 0, stream>>>(src, dst, n, vec);
    }
    return d4j_check_launch("d4j_cast");
}

bool is_float_dtype(int dt) { return dt == D4J_F32 || dt == D4J_BF16 || dt == D4J_F16; }
int64_t dtype_bytes(int dt) { return dt == D4J_F32 ? 4 : 2; }

}  // namespace
}  // namespace d4j

using namespace d4j;

extern "C" int d4j_copy_strided(const void *src, void *dst, int elem_size, int rank, const int64_t *host_shape,
                                const int64_t *host_src_strides, void *stream) {
    const char *op = "d4j_copy_strided";
    D4J_REQUIRE(rank >= 0 && rank <= kMaxRank, op, "rank %d outside [0, %d]", rank, kMaxRank);
    D4J_REQUIRE(elem_size == 1 || elem_size == 2 || elem_size == 4 || elem_size == 8, op,
                "elem_size %d is not 1, 2, 4 or 8", elem_size);
    D4J_REQUIRE(rank == 0 || (host_shape != nullptr && host_src_strides != nullptr), op,
                "host_shape or host_src_strides is null with rank %d", rank);
    for (int d = 0; d < rank; ++d) {
        D4J_REQUIRE(host_shape[d] >= 0, op, "negative extent shape[%d]=%lld", d, (long long)host_shape[d]);
    }
    CopyPlan plan;
    D4J_REQUIRE(plan_copy(&plan, elem_size, rank, host_shape, host_src_strides, reinterpret_cast<uintptr_t>(src),
                          reinterpret_cast<uintptr_t>(dst)),
                op, "element count times elem_size %d overflows int64", elem_size);
    if (plan.kind == COPY_EMPTY) {
        return D4J_OK;
    }
    D4J_REQUIRE(src != nullptr && dst != nullptr, op, "src or dst is null with %lld elements", (long long)plan.numel);
    const cudaStream_t s = as_stream(stream);
    switch (plan.kind) {
    case COPY_CONTIGUOUS:
        return cuda_status(cudaMemcpyAsync(dst, src, static_cast<size_t>(plan.numel * plan.elem_size),
                                           cudaMemcpyDeviceToDevice, s),
                           op);
    case COPY_TRANSPOSE:
        switch (plan.elem_size) {
        case 1: return launch_transpose<uint8_t>(src, dst, plan, s);
        case 2: return launch_transpose<uint16_t>(src, dst, plan, s);
        case 4: return launch_transpose<uint32_t>(src, dst, plan, s);
        default: return launch_transpose<Bytes8>(src, dst, plan, s);
        }
    default:
        switch (plan.elem_size) {
        case 1: return launch_general_sized<uint8_t>(src, dst, plan, s);
        case 2: return launch_general_sized<uint16_t>(src, dst, plan, s);
        case 4: return launch_general_sized<uint32_t>(src, dst, plan, s);
        case 8: return launch_general_sized<Bytes8>(src, dst, plan, s);
        default: return launch_general_sized<uint4>(src, dst, plan, s);
        }
    }
}

extern "C" int d4j_cast(const void *src, int src_dtype, void *dst, int dst_dtype, int64_t n, void *stream) {
    const char *op = "d4j_cast";
    D4J_REQUIRE(is_float_dtype(src_dtype), op, "src_dtype %d is not F32 (0), BF16 (1) or F16 (2)", src_dtype);
    D4J_REQUIRE(is_float_dtype(dst_dtype), op, "dst_dtype %d is not F32 (0), BF16 (1) or F16 (2)", dst_dtype);
    D4J_REQUIRE(n >= 0, op, "negative size n=%lld", (long long)n);
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(src != nullptr && dst != nullptr, op, "src or dst is null with n=%lld", (long long)n);
    D4J_REQUIRE(n <= INT64_MAX / 4, op, "n=%lld overflows the byte count", (long long)n);
    const cudaStream_t s = as_stream(stream);
    if (src_dtype == dst_dtype && src == dst) {
        return D4J_OK;
    }
    const uintptr_t s0 = reinterpret_cast<uintptr_t>(src), d0 = reinterpret_cast<uintptr_t>(dst);
    const uintptr_t s1 = s0 + static_cast<uintptr_t>(n * dtype_bytes(src_dtype));
    const uintptr_t d1 = d0 + static_cast<uintptr_t>(n * dtype_bytes(dst_dtype));
    D4J_REQUIRE(s1 <= d0 || d1 <= s0, op, "src %p and dst %p overlap (n=%lld, dtypes %d -> %d)", src, dst,
                (long long)n, src_dtype, dst_dtype);
    if (src_dtype == dst_dtype) {
        return cuda_status(
            cudaMemcpyAsync(dst, src, static_cast<size_t>(n * dtype_bytes(src_dtype)), cudaMemcpyDeviceToDevice, s), op);
    }
    switch (src_dtype * 3 + dst_dtype) {
    case D4J_F32 * 3 + D4J_BF16: return launch_cast<D4J_F32, D4J_BF16>(src, dst, n, s);
    case D4J_F32 * 3 + D4J_F16: return launch_cast<D4J_F32, D4J_F16>(src, dst, n, s);
    case D4J_BF16 * 3 + D4J_F32: return launch_cast<D4J_BF16, D4J_F32>(src, dst, n, s);
    case D4J_BF16 * 3 + D4J_F16: return launch_cast<D4J_BF16, D4J_F16>(src, dst, n, s);
    case D4J_F16 * 3 + D4J_F32: return launch_cast<D4J_F16, D4J_F32>(src, dst, n, s);
    default: return launch_cast<D4J_F16, D4J_BF16>(src, dst, n, s);
    }
}
