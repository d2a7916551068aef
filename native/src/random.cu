/*
 * Philox4x32-10 uniform and standard normal fills, bit-identical to org.diffusion4j.random.Philox: all the
 * arithmetic is in philox.cuh (shared with the host test and spelled with _rn intrinsics on the device).
 */
#include "internal.cuh"
#include "philox.cuh"

namespace d4j {
namespace {

constexpr int kThreads = 256;

/*
 * out[i] = uniform or normal of (seed, stream, i) for i < n. One thread per Philox block j: elements
 * 4j .. 4j+3 come from one 10-round encipherment (normals: two Box-Muller pairs), stored as one float4
 * when out is 16-byte aligned; the ragged last block is stored element by element.
 * Launch: 256 threads, grid-stride over ceil(n / 4) blocks, one wave at most.
 * Bytes: 4 n written, nothing read; about 200 instructions per block (normal), so on an H200 the fill is
 * near the balance point of compute and bandwidth.
 */
template <bool kNormal, typename I>
__global__ void __launch_bounds__(kThreads) random_kernel(float *out, I n, uint64_t seed, uint64_t stream, bool vec) {
    const I blocks = n / 4 + (n % 4 != 0 ? 1 : 0);
    const I stride = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
    for (I j = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x); j < blocks;
         j += stride) {
        float z[4];
        if (kNormal) {
            philox_normal4(seed, stream, static_cast<uint64_t>(j), z);
        } else {
            philox_uniform4(seed, stream, static_cast<uint64_t>(j), z);
        }
        const I i = j * 4;
        if (vec && n - i >= 4) {
            reinterpret_cast<float4 *>(out)[j] = make_float4(z[0], z[1], z[2], z[3]);
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                if (static_cast<I>(k) < n - i) {
                    out[i + k] = z[k];
                }
            }
        }
    }
}

template <bool kNormal, typename I>
int launch_random(float *out, int64_t n, uint64_t seed, uint64_t stream_id, cudaStream_t stream) {
    constexpr auto kernel = random_kernel<kNormal, I>;
    const int64_t blocks = n / 4 + (n % 4 != 0 ? 1 : 0);
    kernel<<<grid_for<kernel>(blocks, kThreads, kThreads), kThreads, 0, stream>>>(out, static_cast<I>(n), seed,
                                                                                  stream_id, aligned16(out));
    return d4j_check_launch("d4j_random_f32");
}

}  // namespace
}  // namespace d4j

using namespace d4j;

extern "C" int d4j_random_f32(float *out, int64_t n, uint64_t seed, uint64_t stream_id, int normal, void *stream) {
    const char *op = "d4j_random_f32";
    D4J_REQUIRE(n >= 0, op, "negative size n=%lld", (long long)n);
    D4J_REQUIRE(normal == 0 || normal == 1, op, "normal must be 0 (uniform) or 1 (normal), got %d", normal);
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(out != nullptr, op, "out is null with n=%lld", (long long)n);
    const cudaStream_t s = as_stream(stream);
    if (fits_u32(n)) {
        return normal ? launch_random<true, uint32_t>(out, n, seed, stream_id, s)
                      : launch_random<false, uint32_t>(out, n, seed, stream_id, s);
    }
    return normal ? launch_random<true, int64_t>(out, n, seed, stream_id, s)
                  : launch_random<false, int64_t>(out, n, seed, stream_id, s);
}
