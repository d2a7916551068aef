/*
 * The fused diffusion ops (org.diffusion4j.sampling.DiffusionOps on CUDA): forward noising, one sampler-step
 * pass with classifier-free guidance and optional rescale, and noise injection. Each op is one kernel over
 * the batch (the rescaled step adds a statistics kernel before it); the per-element arithmetic is
 * diffusion_math.cuh (= FusedMath in Java, same float operations in the same order, never contracted) and the
 * noise is in-kernel Philox (philox.cuh, bit-identical to org.diffusion4j.random.Philox).
 *
 * Layout. Tensors are [B, n] contiguous F32. Per-sample coefficients and noise seeds come from the host and
 * travel by value in the kernel parameters (up to kBigCap samples per launch: CUDA >= 12.1 allows 32 KiB of
 * parameters on sm_70+), so an op needs no device staging memory and no synchronisation. A launch covers a
 * group of samples: gridDim.y = samples of the group (one sample per block row), gridDim.x blocks grid-stride
 * over the sample's Philox groups (diffusion_math.cuh: group g = one Philox block of 4 normals = up to 4
 * consecutive elements). When n % 4 == 0 and every pointer is 16-byte aligned, group g is exactly elements
 * 4g..4g+3 (the Philox phase (id*n) & 3 is 0), loaded and stored as float4; otherwise elements are accessed
 * one by one (still coalesced: a warp covers 128 consecutive elements).
 *
 * Batches larger than kBigCap samples run as consecutive launches of kBigCap samples on the same stream
 * (each still a full-GPU launch).
 */
#include <cfloat>
#include <initializer_list>

#include "diffusion_math.cuh"
#include "internal.cuh"

namespace d4j {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kSmallCap = 8;    /* samples per launch, small-batch kernels (sampling) */
constexpr int kBigCap = 512;    /* samples per launch, large-batch kernels (training) */
constexpr int64_t kStatChunk = 16384;   /* elements per block of the rescale statistics (multiple of 4*kThreads) */
constexpr int64_t kSharedChannels = 2048; /* offset-noise draws cached in shared memory up to this many channels */

/* ------------------------------------------------------------------ parameter blocks (by value) */

template <int kCap>
struct NoiseParams {       /* forward noising */
    float a[kCap];
    float s[kCap];
    float c[kCap];
    float d[kCap];
    uint64_t key[kCap];
    uint64_t id[kCap];
};

template <int kCap>
struct StepParams {        /* sampler step */
    float ax[kCap];
    float ai[kCap];
    float ag[kCap];
    float ah[kCap];
    float az[kCap];
    float ka[kCap];
    float kb[kCap];
    uint64_t key[kCap];
    uint64_t id[kCap];
};

template <int kCap>
struct InjectParams {      /* noise injection */
    float a[kCap];
    float s[kCap];
    uint64_t key[kCap];
    uint64_t id[kCap];
};

/* ------------------------------------------------------------------ element groups */

/* The up-to-4 elements of group g: vec: elements 4g..4g+3 as a float4; else j = 4g + k - phase. */
__device__ __forceinline__ void load4(const float *p, int64_t g, int64_t phase, int64_t n, bool vec, float v[4]) {
    if (vec) {
        const float4 q = reinterpret_cast<const float4 *>(p)[g];
        v[0] = q.x;
        v[1] = q.y;
        v[2] = q.z;
        v[3] = q.w;
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const int64_t j = 4 * g + k - phase;
            v[k] = (j >= 0 && j < n) ? p[j] : 0.0f;
        }
    }
}

__device__ __forceinline__ void store4(float *p, int64_t g, int64_t phase, int64_t n, bool vec, const float v[4]) {
    if (vec) {
        reinterpret_cast<float4 *>(p)[g] = make_float4(v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const int64_t j = 4 * g + k - phase;
            if (j >= 0 && j < n) {
                p[j] = v[k];
            }
        }
    }
}

__device__ __forceinline__ void zero4(float v[4]) {
    v[0] = 0.0f;
    v[1] = 0.0f;
    v[2] = 0.0f;
    v[3] = 0.0f;
}

/* Fixed-order sum of four doubles over the block (warp xor tree, then warps in order by thread 0): only
 * thread 0's result is meaningful. Every thread must call it (it has barriers). */
__device__ __forceinline__ void block_sum4(double v[4], double (*scratch)[4]) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
#pragma unroll
        for (int o = kWarp / 2; o > 0; o /= 2) {
            v[k] = __dadd_rn(v[k], __shfl_xor_sync(kFull, v[k], o));
        }
    }
    __syncthreads();  // scratch may still be read from a previous call
    if (lane == 0) {
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            scratch[warp][k] = v[k];
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const int warps = static_cast<int>(blockDim.x) / kWarp;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            double s = scratch[0][k];
            for (int w = 1; w < warps; ++w) {
                s = __dadd_rn(s, scratch[w][k]);
            }
            v[k] = s;
        }
    }
}

/* ------------------------------------------------------------------ forward noising */

/* delta(b, ch) = Philox normal (key, offset stream, id*C + ch) of the offset noise (NoiseSeeds draw 2). */
__device__ __forceinline__ float offset_draw(uint64_t key, uint64_t stream, uint64_t id, int64_t channels,
                                             int64_t ch) {
    return philox_normal(key, stream, id * static_cast<uint64_t>(channels) + static_cast<uint64_t>(ch));
}

/*
 * Per sample b (blockIdx.y) and element j: eps = z(b, j) [+ strength * delta(b, j / spatial)],
 * xt = a_b x0 + s_b eps, target = c_b x0 + d_b eps, eps written when asked.
 * Launch: 256 threads, grid (x blocks grid-striding over the sample's Philox groups, samples of the launch).
 * Bytes per element: 4 read (x0) + 8 written (+4 with eps); one Philox block per 4 elements. With offset noise
 * and C <= kSharedChannels the C draws of the block's sample are computed once per block into shared memory.
 */
template <int kCap, bool kOffset>
__global__ void __launch_bounds__(kThreads)
forward_noise_kernel(const float *x0, float *xt, float *target, float *eps, int64_t n, const NoiseParams<kCap> p,
                     uint64_t noise_stream, uint64_t offset_stream, float strength, int64_t channels, bool vec) {
    __shared__ float delta_cache[kOffset ? kSharedChannels : 1];
    const int b = static_cast<int>(blockIdx.y);
    const int64_t base = static_cast<int64_t>(b) * n;
    const float *xs = x0 + base;
    float *xo = xt + base;
    float *to = target + base;
    float *eo = eps == nullptr ? nullptr : eps + base;
    const uint64_t key = p.key[b];
    const uint64_t id = p.id[b];
    const float ab = p.a[b];
    const float sb = p.s[b];
    const float cb = p.c[b];
    const float db = p.d[b];
    const fused::NoiseLayout layout = fused::noise_layout(id, n);
    const int64_t phase = vec ? 0 : layout.phase;
    const int64_t groups = fused::group_count(n, phase);
    int64_t spatial = 1;
    bool cached = false;
    if (kOffset) {
        spatial = n / channels;
        cached = channels <= kSharedChannels;
        if (cached) {
            for (int64_t ch = threadIdx.x; ch < channels; ch += blockDim.x) {
                delta_cache[ch] = offset_draw(key, offset_stream, id, channels, ch);
            }
            __syncthreads();
        }
    }
    int64_t last_ch = -1;
    float last_delta = 0.0f;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
        float z[4];
        philox_normal4(key, noise_stream, fused::group_block(layout, static_cast<uint64_t>(g)), z);
        if (kOffset) {
            int64_t j = 4 * g - phase;  /* may be negative for g = 0: those lanes are not stored */
            int64_t ch = j < 0 ? 0 : j / spatial;
            int64_t rem = j < 0 ? j : j - ch * spatial;
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                if (rem >= spatial) {
                    rem = 0;
                    ++ch;
                }
                if (rem >= 0 && ch < channels) {
                    float delta;
                    if (cached) {
                        delta = delta_cache[ch];
                    } else {
                        if (ch != last_ch) {
                            last_delta = offset_draw(key, offset_stream, id, channels, ch);
                            last_ch = ch;
                        }
                        delta = last_delta;
                    }
                    z[k] = fused::offset(z[k], strength, delta);
                }
                ++rem;
            }
        }
        float x[4];
        load4(xs, g, phase, n, vec, x);
        float o[4];
        float t[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            o[k] = fused::noised(ab, x[k], sb, z[k]);
            t[k] = fused::noised(cb, x[k], db, z[k]);
        }
        store4(xo, g, phase, n, vec, o);
        store4(to, g, phase, n, vec, t);
        if (eo != nullptr) {
            store4(eo, g, phase, n, vec, z);
        }
    }
}

/* ------------------------------------------------------------------ sampler step */

/*
 * Phase 1 of a rescaled step: block (q, b) sums, in double, the shifted values of cond and of the unrescaled
 * guided output over elements [q*kStatChunk, (q+1)*kStatChunk) of sample b (shift: the sample's element 0)
 * and writes (s1c, s2c, s1g, s2g) to partial[(b*chunks + q)*4 ..]. Fixed order: deterministic.
 * Launch: 256 threads, grid (chunks, samples). Bytes per element: 8 read.
 */
template <int kCap>
__global__ void __launch_bounds__(kThreads)
step_stats_kernel(const float *cond, const float *uncond, int64_t n, float w_minus_1, int64_t chunks,
                  double *partial, bool vec) {
    __shared__ double scratch[kThreads / kWarp][4];
    const int b = static_cast<int>(blockIdx.y);
    const int64_t q = blockIdx.x;
    const float *cs = cond + static_cast<int64_t>(b) * n;
    const float *us = uncond + static_cast<int64_t>(b) * n;
    const float kc = cs[0];
    const float kg = fused::guide(kc, us[0], w_minus_1);
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    const int64_t begin = q * kStatChunk;
    const int64_t end = begin + kStatChunk < n ? begin + kStatChunk : n;
    if (vec) {
        for (int64_t e = begin + 4 * static_cast<int64_t>(threadIdx.x); e < end; e += 4 * kThreads) {
            const float4 c4 = *reinterpret_cast<const float4 *>(cs + e);
            const float4 u4 = *reinterpret_cast<const float4 *>(us + e);
            const float cv[4] = {c4.x, c4.y, c4.z, c4.w};
            const float uv[4] = {u4.x, u4.y, u4.z, u4.w};
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                fused::accumulate(cv[k], kc, acc[0], acc[1]);
                fused::accumulate(fused::guide(cv[k], uv[k], w_minus_1), kg, acc[2], acc[3]);
            }
        }
    } else {
        for (int64_t e = begin + threadIdx.x; e < end; e += kThreads) {
            const float c = cs[e];
            fused::accumulate(c, kc, acc[0], acc[1]);
            fused::accumulate(fused::guide(c, us[e], w_minus_1), kg, acc[2], acc[3]);
        }
    }
    block_sum4(acc, scratch);
    if (threadIdx.x == 0) {
        double *out = partial + (static_cast<int64_t>(b) * chunks + q) * 4;
        out[0] = acc[0];
        out[1] = acc[1];
        out[2] = acc[2];
        out[3] = acc[3];
    }
}

/*
 * The step update of CpuDiffusionOps.stepBlock per sample b (blockIdx.y) and element:
 *   g = guide(c, u, w - 1) * f_b;  histOut = ka xIn + kb g;  xOut = ax x + ai xIn + ag g + ah h + az z,
 * an operand whose coefficient is 0 for the sample is not read (0 instead) and no noise is drawn for az = 0.
 * With the rescale each block first sums the sample's phase-1 partials in chunk order (the same fixed order
 * in every block) and computes f_b = FusedMath.rescaleFactor in double.
 * Launch: 256 threads, grid (x blocks grid-striding over the sample's groups, samples of the launch).
 * Bytes per element: 4 per operand read (cond, uncond, x, xIn when distinct from x, hist) + 4 per output.
 */
template <int kCap>
__global__ void __launch_bounds__(kThreads)
step_kernel(const float *x, const float *x_in, const float *cond, const float *uncond, const float *hist,
            float *x_out, float *hist_out, int64_t n, const StepParams<kCap> p, float w_minus_1, double rescale,
            const double *partial, int64_t chunks, uint64_t noise_stream, bool vec) {
    __shared__ double scratch[kThreads / kWarp][4];
    __shared__ float f_shared;
    const int b = static_cast<int>(blockIdx.y);
    const int64_t base = static_cast<int64_t>(b) * n;
    const bool guided = uncond != nullptr;
    float f = 1.0f;
    if (partial != nullptr) {
        double acc[4] = {0.0, 0.0, 0.0, 0.0};
        const double *ps = partial + static_cast<int64_t>(b) * chunks * 4;
        for (int64_t q = threadIdx.x; q < chunks; q += kThreads) {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                acc[k] = __dadd_rn(acc[k], ps[q * 4 + k]);
            }
        }
        block_sum4(acc, scratch);
        if (threadIdx.x == 0) {
            f_shared = fused::rescale_of_sums(rescale, n, acc[0], acc[1], acc[2], acc[3]);
        }
        __syncthreads();
        f = f_shared;
    }
    const float ax = p.ax[b];
    const float ai = p.ai[b];
    const float ag = p.ag[b];
    const float ah = p.ah[b];
    const float az = p.az[b];
    const float ka = p.ka[b];
    const float kb = p.kb[b];
    const bool read_x = ax != 0.0f;
    const bool read_in = ai != 0.0f || (hist_out != nullptr && ka != 0.0f);
    const bool same_in = read_in && read_x && x_in == x; /* as on the CPU: xIn unread (zeros) when !read_in */
    const bool read_h = ah != 0.0f;
    const bool noise = az != 0.0f;
    const uint64_t key = noise ? p.key[b] : 0;
    const fused::NoiseLayout layout = fused::noise_layout(noise ? p.id[b] : 0, n);
    const int64_t phase = vec ? 0 : layout.phase;
    const int64_t groups = fused::group_count(n, phase);
    const float *xs = read_x ? x + base : nullptr;
    const float *is = read_in && !same_in ? x_in + base : nullptr;
    const float *cs = cond + base;
    const float *us = guided ? uncond + base : nullptr;
    const float *hs = read_h ? hist + base : nullptr;
    float *os = x_out + base;
    float *ho = hist_out == nullptr ? nullptr : hist_out + base;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
        float c[4];
        float u[4];
        float xv[4];
        float iv[4];
        float hv[4];
        float z[4];
        load4(cs, g, phase, n, vec, c);
        if (guided) {
            load4(us, g, phase, n, vec, u);
        } else {
            zero4(u);
        }
        if (read_x) {
            load4(xs, g, phase, n, vec, xv);
        } else {
            zero4(xv);
        }
        if (same_in) {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                iv[k] = xv[k];
            }
        } else if (read_in) {
            load4(is, g, phase, n, vec, iv);
        } else {
            zero4(iv);
        }
        if (read_h) {
            load4(hs, g, phase, n, vec, hv);
        } else {
            zero4(hv);
        }
        if (noise) {
            philox_normal4(key, noise_stream, fused::group_block(layout, static_cast<uint64_t>(g)), z);
        } else {
            zero4(z);
        }
        float o[4];
        float d[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const float gk = fused::guided(c[k], u[k], w_minus_1, f);
            d[k] = fused::prediction(ka, iv[k], kb, gk);
            o[k] = fused::update(ax, xv[k], ai, iv[k], ag, gk, ah, hv[k], az, z[k]);
        }
        store4(os, g, phase, n, vec, o);
        if (ho != nullptr) {
            store4(ho, g, phase, n, vec, d);
        }
    }
}

/* ------------------------------------------------------------------ noise injection */

/*
 * out = a_b x + s_b z(b, j) per sample b (blockIdx.y); x not read where a_b = 0, no noise where s_b = 0.
 * Launch: 256 threads, grid (x blocks over the sample's groups, samples of the launch).
 * Bytes per element: 4 read (when a_b != 0) + 4 written.
 */
template <int kCap>
__global__ void __launch_bounds__(kThreads)
inject_kernel(const float *x, float *out, int64_t n, const InjectParams<kCap> p, uint64_t noise_stream, bool vec) {
    const int b = static_cast<int>(blockIdx.y);
    const int64_t base = static_cast<int64_t>(b) * n;
    const float ab = p.a[b];
    const float sb = p.s[b];
    const bool read_x = ab != 0.0f;
    const bool noise = sb != 0.0f;
    const fused::NoiseLayout layout = fused::noise_layout(noise ? p.id[b] : 0, n);
    const int64_t phase = vec ? 0 : layout.phase;
    const int64_t groups = fused::group_count(n, phase);
    const uint64_t key = p.key[b];
    const float *xs = read_x ? x + base : nullptr;
    float *os = out + base;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
        float xv[4];
        float z[4];
        if (read_x) {
            load4(xs, g, phase, n, vec, xv);
        } else {
            zero4(xv);
        }
        if (noise) {
            philox_normal4(key, noise_stream, fused::group_block(layout, static_cast<uint64_t>(g)), z);
        } else {
            zero4(z);
        }
        float o[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            o[k] = fused::scale_add(ab, xv[k], sb, z[k]);
        }
        store4(os, g, phase, n, vec, o);
    }
}

/* ------------------------------------------------------------------ host helpers */

/* Grid of a per-sample kernel: `samples` block rows, enough x blocks to cover ceil(n/4)+1 groups once, at
 * most about one wave of resident blocks in all. */
template <auto Kernel>
dim3 sample_grid(int64_t n, int samples) {
    const int64_t wave = static_cast<int64_t>(sm_count()) * blocks_per_sm<Kernel>(kThreads);
    const int64_t need = ceil_div(n / 4 + 1, kThreads);
    int64_t per_sample = ceil_div(wave, samples);
    if (per_sample > need) {
        per_sample = need;
    }
    if (per_sample < 1) {
        per_sample = 1;
    }
    if (per_sample > INT32_MAX) {
        per_sample = INT32_MAX;
    }
    return dim3(static_cast<unsigned>(per_sample), static_cast<unsigned>(samples), 1);
}

/* n and batch valid, batch*n without overflow; the pointers given must not be null. */
int check_sizes(const char *op, int64_t batch, int64_t n) {
    D4J_REQUIRE(batch >= 0 && n >= 0, op, "negative size: batch=%lld, n=%lld", (long long)batch, (long long)n);
    int64_t total = 0;
    D4J_REQUIRE(checked_mul(batch, n, &total), op, "batch*n overflows: batch=%lld, n=%lld", (long long)batch,
                (long long)n);
    D4J_REQUIRE(total <= INT64_MAX / 4, op, "batch*n=%lld elements overflow a byte count", (long long)total);
    return D4J_OK;
}

/* p + off, or null for a null p (an absent optional operand). */
template <typename T>
T *at(T *p, int64_t off) {
    return p == nullptr ? nullptr : p + off;
}

bool all_aligned(std::initializer_list<const void *> ps) {
    for (const void *p : ps) {
        if (p != nullptr && !aligned16(p)) {
            return false;
        }
    }
    return true;
}

template <int kCap, bool kOffset>
int launch_forward(const float *x0, float *xt, float *target, float *eps, int64_t batch, int64_t n,
                   const float *host_coef, const uint64_t *host_keys, const uint64_t *host_ids, uint64_t noise_stream,
                   uint64_t offset_stream, float strength, int64_t channels, bool vec, cudaStream_t stream) {
    constexpr auto kernel = forward_noise_kernel<kCap, kOffset>;
    for (int64_t b0 = 0; b0 < batch; b0 += kCap) {
        const int samples = static_cast<int>(batch - b0 < kCap ? batch - b0 : kCap);
        NoiseParams<kCap> p = {};
        for (int i = 0; i < samples; ++i) {
            p.a[i] = host_coef[0 * batch + b0 + i];
            p.s[i] = host_coef[1 * batch + b0 + i];
            p.c[i] = host_coef[2 * batch + b0 + i];
            p.d[i] = host_coef[3 * batch + b0 + i];
            p.key[i] = host_keys[b0 + i];
            p.id[i] = host_ids[b0 + i];
        }
        const int64_t off = b0 * n;
        kernel<<<sample_grid<kernel>(n, samples), kThreads, 0, stream>>>(
            x0 + off, xt + off, target + off, at(eps, off), n, p, noise_stream,
            offset_stream, strength, channels, vec);
        const int rc = d4j_check_launch("d4j_forward_noise_f32");
        if (rc != D4J_OK) {
            return rc;
        }
    }
    return D4J_OK;
}

template <int kCap>
int launch_step(const float *x, const float *x_in, const float *cond, const float *uncond, const float *hist,
                float *x_out, float *hist_out, int64_t batch, int64_t n, const float *host_coef, float w_minus_1,
                double rescale, const uint64_t *host_keys, const uint64_t *host_ids, uint64_t noise_stream,
                double *partial, int64_t chunks, bool vec, cudaStream_t stream) {
    const char *op = "d4j_sampler_step_f32";
    constexpr auto stats = step_stats_kernel<kCap>;
    constexpr auto kernel = step_kernel<kCap>;
    for (int64_t b0 = 0; b0 < batch; b0 += kCap) {
        const int samples = static_cast<int>(batch - b0 < kCap ? batch - b0 : kCap);
        StepParams<kCap> p = {};
        for (int i = 0; i < samples; ++i) {
            p.ax[i] = host_coef[0 * batch + b0 + i];
            p.ai[i] = host_coef[1 * batch + b0 + i];
            p.ag[i] = host_coef[2 * batch + b0 + i];
            p.ah[i] = host_coef[3 * batch + b0 + i];
            p.az[i] = host_coef[4 * batch + b0 + i];
            p.ka[i] = host_coef[5 * batch + b0 + i];
            p.kb[i] = host_coef[6 * batch + b0 + i];
            p.key[i] = host_keys == nullptr ? 0 : host_keys[b0 + i];
            p.id[i] = host_ids == nullptr ? 0 : host_ids[b0 + i];
        }
        const int64_t off = b0 * n;
        double *part = partial == nullptr ? nullptr : partial + b0 * chunks * 4;
        if (part != nullptr) {
            stats<<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(samples), 1), kThreads, 0, stream>>>(
                cond + off, uncond + off, n, w_minus_1, chunks, part, vec);
            const int rc = d4j_check_launch(op);
            if (rc != D4J_OK) {
                return rc;
            }
        }
        kernel<<<sample_grid<kernel>(n, samples), kThreads, 0, stream>>>(
            at(x, off), at(x_in, off), cond + off, at(uncond, off), at(hist, off), x_out + off, at(hist_out, off), n, p,
            w_minus_1, rescale, part, chunks, noise_stream, vec);
        const int rc = d4j_check_launch(op);
        if (rc != D4J_OK) {
            return rc;
        }
    }
    return D4J_OK;
}

template <int kCap>
int launch_inject(const float *x, float *out, int64_t batch, int64_t n, const float *host_coef,
                  const uint64_t *host_keys, const uint64_t *host_ids, uint64_t noise_stream, bool vec,
                  cudaStream_t stream) {
    constexpr auto kernel = inject_kernel<kCap>;
    for (int64_t b0 = 0; b0 < batch; b0 += kCap) {
        const int samples = static_cast<int>(batch - b0 < kCap ? batch - b0 : kCap);
        InjectParams<kCap> p = {};
        for (int i = 0; i < samples; ++i) {
            p.a[i] = host_coef[0 * batch + b0 + i];
            p.s[i] = host_coef[1 * batch + b0 + i];
            p.key[i] = host_keys[b0 + i];
            p.id[i] = host_ids[b0 + i];
        }
        const int64_t off = b0 * n;
        kernel<<<sample_grid<kernel>(n, samples), kThreads, 0, stream>>>(at(x, off), out + off, n, p, noise_stream, vec);
        const int rc = d4j_check_launch("d4j_scale_add_noise_f32");
        if (rc != D4J_OK) {
            return rc;
        }
    }
    return D4J_OK;
}

int64_t stat_chunks(int64_t n) { return ceil_div(n, kStatChunk); }

}  // namespace
}  // namespace d4j

using namespace d4j;

extern "C" int d4j_forward_noise_f32(const float *x0, float *xt, float *target, float *eps, int64_t batch,
                                     int64_t n, const float *host_coef, const uint64_t *host_keys,
                                     const uint64_t *host_ids, uint64_t noise_stream, uint64_t offset_stream,
                                     float offset_strength, int64_t channels, void *stream) {
    const char *op = "d4j_forward_noise_f32";
    const int rc = check_sizes(op, batch, n);
    if (rc != D4J_OK) {
        return rc;
    }
    D4J_REQUIRE(offset_strength == offset_strength && offset_strength >= 0.0f && offset_strength <= FLT_MAX, op,
                "offset strength must be finite and >= 0, got %g", (double)offset_strength);
    D4J_REQUIRE(channels >= 0 && (channels == 0 || n % channels == 0), op,
                "channels must be 0 (no offset noise) or divide n: channels=%lld, n=%lld", (long long)channels,
                (long long)n);
    const bool offset = channels > 0;
    if (batch == 0 || n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(x0 != nullptr && xt != nullptr && target != nullptr, op, "x0, xt and target must not be null");
    D4J_REQUIRE(host_coef != nullptr && host_keys != nullptr && host_ids != nullptr, op,
                "host_coef, host_keys and host_ids must not be null");
    const bool vec = n % 4 == 0 && all_aligned({x0, xt, target, eps});
    const cudaStream_t s = as_stream(stream);
    if (batch <= kSmallCap) {
        return offset ? launch_forward<kSmallCap, true>(x0, xt, target, eps, batch, n, host_coef, host_keys, host_ids,
                                                        noise_stream, offset_stream, offset_strength, channels, vec, s)
                      : launch_forward<kSmallCap, false>(x0, xt, target, eps, batch, n, host_coef, host_keys,
                                                         host_ids, noise_stream, offset_stream, 0.0f, 1, vec, s);
    }
    return offset ? launch_forward<kBigCap, true>(x0, xt, target, eps, batch, n, host_coef, host_keys, host_ids,
                                                  noise_stream, offset_stream, offset_strength, channels, vec, s)
                  : launch_forward<kBigCap, false>(x0, xt, target, eps, batch, n, host_coef, host_keys, host_ids,
                                                   noise_stream, offset_stream, 0.0f, 1, vec, s);
}

extern "C" int64_t d4j_sampler_step_workspace_bytes(int64_t batch, int64_t n) {
    if (batch < 0 || n < 0) {
        return D4J_ERR_INVALID;
    }
    if (batch == 0 || n == 0) {
        return 0;
    }
    int64_t cells = 0;
    if (!checked_mul(batch, stat_chunks(n), &cells) || cells > INT64_MAX / 32) {
        return D4J_ERR_INVALID;
    }
    return cells * 32;
}

extern "C" int d4j_sampler_step_f32(const float *x, const float *x_in, const float *cond, const float *uncond,
                                    const float *hist, float *x_out, float *hist_out, int64_t batch, int64_t n,
                                    const float *host_coef, float guidance_minus_1, double rescale,
                                    const uint64_t *host_keys, const uint64_t *host_ids, uint64_t noise_stream,
                                    void *workspace, int64_t workspace_bytes, void *stream) {
    const char *op = "d4j_sampler_step_f32";
    const int rc = check_sizes(op, batch, n);
    if (rc != D4J_OK) {
        return rc;
    }
    D4J_REQUIRE(rescale >= 0.0 && rescale <= 1.0, op, "rescale must be in [0, 1], got %g", rescale);
    if (batch == 0 || n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(host_coef != nullptr, op, "host_coef must not be null");
    D4J_REQUIRE(cond != nullptr && x_out != nullptr, op, "cond and x_out must not be null");
    bool need_x = false;
    bool need_in = false;
    bool need_h = false;
    bool need_z = false;
    for (int64_t b = 0; b < batch; ++b) {
        need_x |= host_coef[0 * batch + b] != 0.0f;
        need_in |= host_coef[1 * batch + b] != 0.0f || (hist_out != nullptr && host_coef[5 * batch + b] != 0.0f);
        need_h |= host_coef[3 * batch + b] != 0.0f;
        need_z |= host_coef[4 * batch + b] != 0.0f;
    }
    D4J_REQUIRE(!need_x || x != nullptr, op, "x is null but a sample has ax != 0");
    D4J_REQUIRE(!need_in || x_in != nullptr, op, "x_in is null but a sample reads it (ai != 0 or ka != 0)");
    D4J_REQUIRE(!need_h || hist != nullptr, op, "hist is null but a sample has ah != 0");
    D4J_REQUIRE(!need_z || (host_keys != nullptr && host_ids != nullptr), op,
                "host_keys/host_ids are null but a sample has az != 0");
    const bool rescaled = uncond != nullptr && rescale != 0.0;
    const int64_t chunks = stat_chunks(n);
    double *partial = nullptr;
    if (rescaled) {
        const int64_t need = d4j_sampler_step_workspace_bytes(batch, n);
        D4J_REQUIRE(need >= 0, op, "workspace size overflows for batch=%lld, n=%lld", (long long)batch, (long long)n);
        D4J_REQUIRE(workspace != nullptr && workspace_bytes >= need && aligned_to(workspace, 8), op,
                    "the rescale needs an 8-byte aligned workspace of %lld bytes, got %lld bytes at %p",
                    (long long)need, (long long)workspace_bytes, workspace);
        D4J_REQUIRE(chunks <= 0x7fffffff, op, "n=%lld is too large for the rescale statistics", (long long)n);
        partial = static_cast<double *>(workspace);
    }
    const bool vec = n % 4 == 0 && all_aligned({x, x_in, cond, uncond, hist, x_out, hist_out});
    const cudaStream_t s = as_stream(stream);
    if (batch <= kSmallCap) {
        return launch_step<kSmallCap>(x, x_in, cond, uncond, hist, x_out, hist_out, batch, n, host_coef,
                                      guidance_minus_1, rescale, host_keys, host_ids, noise_stream, partial, chunks,
                                      vec, s);
    }
    return launch_step<kBigCap>(x, x_in, cond, uncond, hist, x_out, hist_out, batch, n, host_coef, guidance_minus_1,
                                rescale, host_keys, host_ids, noise_stream, partial, chunks, vec, s);
}

extern "C" int d4j_scale_add_noise_f32(const float *x, float *out, int64_t batch, int64_t n, const float *host_coef,
                                       const uint64_t *host_keys, const uint64_t *host_ids, uint64_t noise_stream,
                                       void *stream) {
    const char *op = "d4j_scale_add_noise_f32";
    const int rc = check_sizes(op, batch, n);
    if (rc != D4J_OK) {
        return rc;
    }
    if (batch == 0 || n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(out != nullptr, op, "out must not be null");
    D4J_REQUIRE(host_coef != nullptr && host_keys != nullptr && host_ids != nullptr, op,
                "host_coef, host_keys and host_ids must not be null");
    bool need_x = false;
    for (int64_t b = 0; b < batch; ++b) {
        need_x |= host_coef[b] != 0.0f;
    }
    D4J_REQUIRE(!need_x || x != nullptr, op, "x is null but a sample has a scale != 0");
    const bool vec = n % 4 == 0 && all_aligned({x, out});
    const cudaStream_t s = as_stream(stream);
    if (batch <= kSmallCap) {
        return launch_inject<kSmallCap>(x, out, batch, n, host_coef, host_keys, host_ids, noise_stream, vec, s);
    }
    return launch_inject<kBigCap>(x, out, batch, n, host_coef, host_keys, host_ids, noise_stream, vec, s);
}
