/*
 * Row gather (embedding lookup) with bad-index reporting.
 *
 * One kernel validates and copies: threads first scan idx[0..n) and atomicMin the position of any index
 * outside [0, vocab) into a device word (so dim = 0 is validated too), then copy out[i, :] =
 * table[idx[i], :] over the flat n x dim (or n x dim/4 float4) index space with a row/col walker,
 * skipping bad rows. The host reads the word back after a stream synchronise and, when set, reads the
 * offending index value and reports both.
 */
#include "index_math.cuh"
#include "internal.cuh"

namespace d4j {
namespace {

constexpr int kThreads = 256;
constexpr unsigned long long kNoBadIndex = ~0ull;

/*
 * Launch: 256 threads, grid-stride, one wave at most; V = float4 (dim % 4 == 0, table and out 16-byte
 * aligned) or float. Bytes: 4 n (indices, read twice but the second read hits L1/L2) + 2 * 4 n dim.
 */
template <typename V, typename I>
__global__ void __launch_bounds__(kThreads) gather_kernel(const V *table, int64_t vocab, I dimv, const int32_t *idx,
                                                          I n, V *out, unsigned long long *bad) {
    const I tid = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
    const I stride = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
    for (I i = tid; i < n; i += stride) {
        const int32_t k = idx[i];
        if (k < 0 || static_cast<int64_t>(k) >= vocab) {
            atomicMin(bad, static_cast<unsigned long long>(i));
        }
    }
    if (dimv == 0) {
        return;
    }
    const I total = n * dimv;
    RowCol<I> rc(tid, stride, dimv);
    for (I e = tid; e < total; e += stride, rc.advance()) {
        const int32_t k = idx[rc.r];
        if (k >= 0 && static_cast<int64_t>(k) < vocab) {
            out[e] = table[static_cast<int64_t>(k) * static_cast<int64_t>(dimv) + static_cast<int64_t>(rc.c)];
        }
    }
}

template <typename V, typename I>
int launch_gather(const void *table, int64_t vocab, int64_t dimv, const int32_t *idx, int64_t n, void *out,
                  unsigned long long *bad, cudaStream_t stream) {
    constexpr auto kernel = gather_kernel<V, I>;
    const int64_t work = n * dimv > n ? n * dimv : n;
    kernel<<<grid_for<kernel>(work, kThreads, kThreads), kThreads, 0, stream>>>(
        static_cast<const V *>(table), vocab, static_cast<I>(dimv), idx, static_cast<I>(n), static_cast<V *>(out), bad);
    return d4j_check_launch("d4j_gather_rows_f32");
}

/* The bad-position word: stream-ordered pool memory when the device supports it, else cudaMalloc. */
struct BadWord {
    unsigned long long *ptr = nullptr;
    bool pooled = false;
};

int gather_rows(const float *table, int64_t vocab, int64_t dim, const int32_t *idx, int64_t n, float *out,
                cudaStream_t s, BadWord &bad) {
    const char *op = "d4j_gather_rows_f32";
    cudaError_t err = cudaMallocAsync(reinterpret_cast<void **>(&bad.ptr), sizeof(unsigned long long), s);
    if (err == cudaSuccess) {
        bad.pooled = true;
    } else {
        (void)cudaGetLastError();
        bad.ptr = nullptr;
        int st = cuda_status(cudaMalloc(reinterpret_cast<void **>(&bad.ptr), sizeof(unsigned long long)), op);
        if (st != D4J_OK) {
            bad.ptr = nullptr;
            return st;
        }
    }
    int st = cuda_status(cudaMemsetAsync(bad.ptr, 0xff, sizeof(unsigned long long), s), op);
    if (st != D4J_OK) {
        return st;
    }
    const bool vec = dim % 4 == 0 && aligned16(table) && aligned16(out);
    const int64_t dimv = vec ? dim / 4 : dim;
    const bool narrow = fits_u32(n * dimv > n ? n * dimv : n);
    if (vec) {
        st = narrow ? launch_gather<float4, uint32_t>(table, vocab, dimv, idx, n, out, bad.ptr, s)
                    : launch_gather<float4, int64_t>(table, vocab, dimv, idx, n, out, bad.ptr, s);
    } else {
        st = narrow ? launch_gather<float, uint32_t>(table, vocab, dimv, idx, n, out, bad.ptr, s)
                    : launch_gather<float, int64_t>(table, vocab, dimv, idx, n, out, bad.ptr, s);
    }
    if (st != D4J_OK) {
        return st;
    }
    unsigned long long pos = kNoBadIndex;
    st = cuda_status(cudaMemcpyAsync(&pos, bad.ptr, sizeof pos, cudaMemcpyDeviceToHost, s), op);
    if (st == D4J_OK) {
        st = cuda_status(cudaStreamSynchronize(s), op);
    }
    if (st != D4J_OK || pos == kNoBadIndex) {
        return st;
    }
    int32_t value = 0;
    st = cuda_status(cudaMemcpyAsync(&value, idx + pos, sizeof value, cudaMemcpyDeviceToHost, s), op);
    if (st == D4J_OK) {
        st = cuda_status(cudaStreamSynchronize(s), op);
    }
    if (st != D4J_OK) {
        return st;
    }
    return d4j_fail(D4J_ERR_INVALID, op, "index %d at position %llu of %lld is outside [0, %lld)",
                    static_cast<int>(value), pos, (long long)n, (long long)vocab);
}

}  // namespace
}  // namespace d4j

using namespace d4j;

extern "C" int d4j_gather_rows_f32(const float *table, int64_t vocab, int64_t dim, const int32_t *idx, int64_t n,
                                   float *out, void *stream) {
    const char *op = "d4j_gather_rows_f32";
    D4J_REQUIRE(vocab >= 0 && dim >= 0 && n >= 0, op, "negative size: vocab=%lld, dim=%lld, n=%lld", (long long)vocab,
                (long long)dim, (long long)n);
    int64_t out_n = 0;
    int64_t table_n = 0;
    D4J_REQUIRE(checked_mul(n, dim, &out_n) && checked_mul(vocab, dim, &table_n), op,
                "size overflows: vocab=%lld, dim=%lld, n=%lld", (long long)vocab, (long long)dim, (long long)n);
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(idx != nullptr, op, "idx is null with n=%lld", (long long)n);
    D4J_REQUIRE(dim == 0 || (out != nullptr && (vocab == 0 || table != nullptr)), op,
                "table or out is null with vocab=%lld, dim=%lld, n=%lld", (long long)vocab, (long long)dim,
                (long long)n);
    const cudaStream_t s = as_stream(stream);
    BadWord bad;
    const int st = gather_rows(table, vocab, dim, idx, n, out, s, bad);
    if (bad.ptr != nullptr) {
        // Freed whatever happened; a failure here only matters when the gather itself succeeded.
        const cudaError_t err = bad.pooled ? cudaFreeAsync(bad.ptr, s) : cudaFree(bad.ptr);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            if (st == D4J_OK) {
                return cuda_status(err, op);
            }
        }
    }
    return st;
}
