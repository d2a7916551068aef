/*
 * diffusion4j native library: a flat C ABI over hand-written CUDA kernels.
 *
 * Conventions
 *  - Every function returns an int status: 0 (D4J_OK) on success, otherwise a cudaError_t value (> 0)
 *    or one of the negative D4J_ERR_* codes. d4j_last_error() gives the text of the calling thread's
 *    last failure (the CUDA error name and message plus the op that failed).
 *  - Sizes and counts are int64_t. Pointers are device pointers unless named host_*.
 *  - `stream` is a cudaStream_t passed as void* (NULL = the legacy default stream). Ops are asynchronous;
 *    d4j_stream_synchronize waits.
 *  - Tensors are row-major. "rows x cols" ops treat a tensor [..., N] as rows = numel / N, cols = N.
 *  - Op codes equal the ordinals of the Java enums in org.diffusion4j.tensor.Ops and DType; the Java
 *    side checks shapes before calling, the C side re-checks what it needs for memory safety
 *    (negative sizes, null pointers) and returns D4J_ERR_INVALID.
 */
#ifndef DIFFUSION4J_H
#define DIFFUSION4J_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define D4J_OK 0
#define D4J_ERR_INVALID (-1)      /* bad argument (negative size, null pointer, unknown op/dtype) */
#define D4J_ERR_UNSUPPORTED (-2)  /* valid request this build or device cannot do */
#define D4J_ERR_SELF_TEST (-3)    /* the self-test kernel returned a wrong result */

/* dtype codes = org.diffusion4j.tensor.DType ordinals */
#define D4J_F32 0
#define D4J_BF16 1
#define D4J_F16 2
#define D4J_I32 3

/* binary op codes = Ops.Binary ordinals */
#define D4J_ADD 0
#define D4J_SUB 1
#define D4J_MUL 2
#define D4J_DIV 3
#define D4J_MAX 4
#define D4J_MIN 5

/* unary op codes = Ops.Unary ordinals */
#define D4J_NEG 0
#define D4J_ABS 1
#define D4J_EXP 2
#define D4J_LOG 3
#define D4J_SQRT 4
#define D4J_RSQRT 5
#define D4J_SQUARE 6
#define D4J_RECIPROCAL 7
#define D4J_TANH 8
#define D4J_SIGMOID 9

/* reduction codes = Ops.Reduce ordinals */
#define D4J_SUM 0
#define D4J_MEAN 1
#define D4J_RMAX 2

/* broadcast codes = Ops.Broadcast ordinals: how operand b (rows x cols view of a) is read */
#define D4J_BCAST_NONE 0    /* b[r*cols + c] */
#define D4J_BCAST_SCALAR 1  /* b[0] */
#define D4J_BCAST_ROW 2     /* b[c] */
#define D4J_BCAST_PER_ROW 3 /* b[r] */

/* ---------------------------------------------------------------- runtime, devices, memory */

/* Text of this thread's last failure ("" when none). Valid until the thread's next failing call. */
const char *d4j_last_error(void);

/* Version of this library as major*10000 + minor*100 + patch. Never fails. */
int d4j_version(void);

/* Number of CUDA devices. With no driver returns cudaErrorInsufficientDriver (35) or
 * cudaErrorNoDevice (100) and sets *count = 0. */
int d4j_device_count(int *count);

/* Properties of device `device`. name_capacity bytes are available at `name` (NUL-terminated). */
int d4j_device_info(int device, char *name, int name_capacity, int *cc_major, int *cc_minor,
                    int64_t *total_memory_bytes, int *multiprocessors, int *driver_version,
                    int *runtime_version);

/* Makes `device` current for the calling thread. */
int d4j_set_device(int device);

/* Runs a tiny kernel on the current device (writes i*3+1 to 1024 elements, copies back, checks).
 * D4J_OK when the round trip is exact, D4J_ERR_SELF_TEST when values differ. */
int d4j_self_test(void);

int d4j_malloc(void **ptr, int64_t bytes);
int d4j_free(void *ptr);
int d4j_malloc_host(void **host_ptr, int64_t bytes); /* pinned */
int d4j_free_host(void *host_ptr);
int d4j_memcpy_h2d(void *dst, const void *host_src, int64_t bytes, void *stream); /* async; pinned src for overlap */
int d4j_memcpy_d2h(void *host_dst, const void *src, int64_t bytes, void *stream); /* async */
int d4j_memcpy_d2d(void *dst, const void *src, int64_t bytes, void *stream);      /* async */
int d4j_stream_create(void **stream);
int d4j_stream_destroy(void *stream);
int d4j_stream_synchronize(void *stream);

/* ---------------------------------------------------------------- fill, copy, cast */

/* out[i] = value for i < n; elem_size 2 or 4 bytes (value converted to the dtype of `dtype`: BF16/F16
 * round to nearest even, I32 like Java's (int) cast). */
int d4j_fill(void *out, int dtype, int64_t n, float value, void *stream);

/* dst (contiguous, elem_size bytes per element) = src read with element strides src_strides over
 * `shape` (rank <= 8), starting at src. Covers permute and transpose. elem_size is 1, 2, 4 or 8; strides
 * may be zero or negative; src and dst must not overlap. */
int d4j_copy_strided(const void *src, void *dst, int elem_size, int rank, const int64_t *host_shape,
                     const int64_t *host_src_strides, void *stream);

/* dst[i] = convert(src[i]) for float dtypes F32, BF16, F16; round to nearest even. Equal dtypes copy.
 * Overlapping src and dst return D4J_ERR_INVALID, except the same pointer with equal dtypes (a no-op). */
int d4j_cast(const void *src, int src_dtype, void *dst, int dst_dtype, int64_t n, void *stream);

/* ---------------------------------------------------------------- elementwise (F32) */

/* out = a OP b, a and out rows x cols, b read per `bcast`. */
int d4j_binary_f32(int op, const float *a, const float *b, int bcast, float *out, int64_t rows,
                   int64_t cols, void *stream);
/* out = a OP s */
int d4j_binary_scalar_f32(int op, const float *a, float s, float *out, int64_t n, void *stream);
/* out = OP(a) */
int d4j_unary_f32(int op, const float *a, float *out, int64_t n, void *stream);
/* out = alpha*x + beta*y */
int d4j_axpby_f32(float alpha, const float *x, float beta, const float *y, float *out, int64_t n,
                  void *stream);
/* out = a*b + c, b and c each read per its broadcast code */
int d4j_fma_f32(const float *a, const float *b, int b_bcast, const float *c, int c_bcast, float *out,
                int64_t rows, int64_t cols, void *stream);
/* out = a*s + t */
int d4j_scale_shift_f32(const float *a, float s, float t, float *out, int64_t n, void *stream);

/* ---------------------------------------------------------------- reductions, softmax (F32) */

/* out[r] = reduce(x[r, 0..cols)); SUM and MEAN accumulate in double. cols = 0 gives SUM 0, MEAN NaN,
 * MAX -Inf. */
int d4j_reduce_last_f32(int op, const float *x, float *out, int64_t rows, int64_t cols, void *stream);

/* *host_result = sum_i x[i]^2 accumulated in double in a fixed order (deterministic), synchronous.
 * `workspace` is device memory of at least d4j_sum_squares_workspace_bytes(n) bytes (8-byte aligned; 0
 * bytes for n = 0; the function returns D4J_ERR_INVALID for n < 0). The order depends on n only, so the
 * result is the same on every run and device. */
int64_t d4j_sum_squares_workspace_bytes(int64_t n);
int d4j_sum_squares_f32(const float *x, int64_t n, void *workspace, double *host_result, void *stream);

/* out[r, :] = softmax(x[r, :]) (max-subtracted) */
int d4j_softmax_last_f32(const float *x, float *out, int64_t rows, int64_t cols, void *stream);

/* ---------------------------------------------------------------- indexing, random */

/* out[i, :] = table[idx[i], :] for i < n; table is vocab x dim. An index outside [0, vocab) leaves its
 * row unwritten and makes the call return D4J_ERR_INVALID after a synchronise, with the first bad
 * position and value in d4j_last_error(). */
int d4j_gather_rows_f32(const float *table, int64_t vocab, int64_t dim, const int32_t *idx, int64_t n,
                        float *out, void *stream);

/* out[i] = Philox4x32-10 standard normal (normal=1) or uniform in (0,1] (normal=0) of
 * (seed, stream_id, i) for i < n: the same values as org.diffusion4j.random.Philox. */
int d4j_random_f32(float *out, int64_t n, uint64_t seed, uint64_t stream_id, int normal, void *stream);


/* ---------------------------------------------------------------- fused diffusion ops (F32)
 *
 * org.diffusion4j.sampling.DiffusionOps on CUDA; the per-element formulas are FusedMath's, evaluated with the
 * same float operations in the same order (no contraction). Tensors are [batch, n] contiguous; sample b's
 * coefficients are host_coef[k*batch + b] (k = the coefficient's position in the list of each function);
 * its Gaussian noise of stream `s` at element j is Philox normal (host_keys[b], s, host_ids[b]*n + j)
 * (org.diffusion4j.sampling.NoiseSeeds), bit-identical to the CPU. Outputs may alias the input of the
 * same role (xt = x0, x_out = x, hist_out = hist, out = x) but must not partially overlap anything. */

/* Forward noising: eps = z(b, j, noise_stream) [+ offset_strength * delta(b, c)] with delta(b, c) the normal
 * (host_keys[b], offset_stream, host_ids[b]*channels + c) of channel c = j / (n / channels) (offset noise when
 * channels > 0, which must divide n; channels = 0: none); xt = a x0 + s eps, target = c x0 + d eps, eps
 * written when not null. host_coef: a, s, c, d (4 * batch floats). */
int d4j_forward_noise_f32(const float *x0, float *xt, float *target, float *eps, int64_t batch, int64_t n,
                          const float *host_coef, const uint64_t *host_keys, const uint64_t *host_ids,
                          uint64_t noise_stream, uint64_t offset_stream, float offset_strength, int64_t channels,
                          void *stream);

/* Bytes of device workspace d4j_sampler_step_f32 needs for a rescaled guided step (0 for an empty batch);
 * D4J_ERR_INVALID for negative sizes or overflow. */
int64_t d4j_sampler_step_workspace_bytes(int64_t batch, int64_t n);

/* One sampler-step pass: g = (c + (w-1)(c - u)) * f_b (u = 0 and w-1 = 0 when uncond is null; f_b = 1 unless
 * uncond is given and rescale != 0, then f_b = rescale * std(c_b)/std(g_b) + 1 - rescale over the sample,
 * from double sums, 1 when var(g_b) is not > 0); hist_out = ka x_in + kb g (when not null);
 * x_out = ax x + ai x_in + ag g + ah hist + az z(b, j, noise_stream). A term whose coefficient is 0 for a
 * sample reads nothing (x, x_in, hist may be null when no sample needs them; host_keys/host_ids when every az
 * is 0). host_coef: ax, ai, ag, ah, az, ka, kb (7 * batch floats). The rescale needs `workspace` (device,
 * 8-byte aligned) of d4j_sampler_step_workspace_bytes(batch, n) bytes; it is not read otherwise. */
int d4j_sampler_step_f32(const float *x, const float *x_in, const float *cond, const float *uncond,
                         const float *hist, float *x_out, float *hist_out, int64_t batch, int64_t n,
                         const float *host_coef, float guidance_minus_1, double rescale, const uint64_t *host_keys,
                         const uint64_t *host_ids, uint64_t noise_stream, void *workspace, int64_t workspace_bytes,
                         void *stream);

/* Noise injection out = a x + s z(b, j, noise_stream); x is not read (may be null) where a = 0, no noise is
 * drawn where s = 0. host_coef: a, s (2 * batch floats). */
int d4j_scale_add_noise_f32(const float *x, float *out, int64_t batch, int64_t n, const float *host_coef,
                            const uint64_t *host_keys, const uint64_t *host_ids, uint64_t noise_stream,
                            void *stream);

/* ---------------------------------------------------------------- layer ops (F32)
 *
 * org.diffusion4j.nn.NnOps on CUDA; the per-element formulas are NnMath's, evaluated with the same float
 * operations in the same order (no contraction). Token tensors are [batch, tokens, dim] contiguous; per-sample
 * operands (shift, scale, gate, d_gate) are [batch, dim] with unit stride along dim and a row stride (elements)
 * >= dim (ignored for batch <= 1). Activation codes: 0 identity, 1 SiLU, 2 GELU (tanh approximation). */

/* out = act(x + bias[col]) over rows x cols (no add when bias is null); pre = x + bias when pre is not null.
 * out may be x, pre may be x, pre and out must differ. */
int d4j_activation_f32(int act, const float *x, const float *bias, float *pre, float *out, int64_t rows,
                       int64_t cols, void *stream);

/* dx = dy * act'(pre) over n elements; dx may be dy. */
int d4j_activation_backward_f32(int act, const float *pre, const float *dy, float *dx, int64_t n, void *stream);

/* One AdamW step over n elements, param, m, v updated in place. host_coef: decay, beta1, 1 - beta1, beta2,
 * 1 - beta2, step size, 1/sqrt(1 - beta2^t), eps, gradient scale (9 floats, org.diffusion4j.nn.AdamWStep). */
int d4j_adamw_f32(float *param, const float *grad, float *m, float *v, int64_t n, const float *host_coef,
                  void *stream);

/* LayerNorm over dim of each of the batch*tokens rows, statistics in double: y = ((x - mu) rstd [* gamma]
 * [+ beta]) [* (1 + scale_b)] [+ shift_b] (each optional operand may be null); mean and rstd (batch*tokens
 * floats each) written when not null. out may be x. eps must be finite and > 0. */
int d4j_layer_norm_f32(const float *x, const float *gamma, const float *beta, const float *shift,
                       int64_t shift_stride, const float *scale, int64_t scale_stride, float eps, float *out,
                       float *mean, float *rstd, int64_t batch, int64_t tokens, int64_t dim, void *stream);

/* adaLN-Zero gated residual out = x + gate_b * f; out may be x. */
int d4j_gated_residual_f32(const float *x, const float *gate, int64_t gate_stride, const float *f, float *out,
                           int64_t batch, int64_t tokens, int64_t dim, void *stream);

/* Its backward: df = dy * gate_b (when df is not null; df may be f) and d_gate[b, d] = sum over tokens of
 * dy * f in double, in token order (when d_gate is not null; 0 for tokens = 0). */
int d4j_gated_residual_backward_f32(const float *gate, int64_t gate_stride, const float *f, const float *dy,
                                    float *df, float *d_gate, int64_t d_gate_stride, int64_t batch, int64_t tokens,
                                    int64_t dim, void *stream);


/* ---------------------------------------------------------------- layer-op reductions (F32)
 *
 * The rest of org.diffusion4j.nn.NnOps: deterministic (no atomics; every sum in a fixed order that depends on the
 * shape only), float64 sums rounded to float once. */

/* out[c] = (float) ([(double) out[c] +] sum_r dy[r, c]) over rows x cols (accumulate != 0 adds to out). */
int d4j_column_sum_f32(const float *dy, float *out, int64_t rows, int64_t cols, int accumulate, void *stream);

/* Backward of d4j_layer_norm_f32 given its saved mean and rstd (batch*tokens floats each): dx (may be dy) =
 * rstd (dxhat - m1 - xhat m2) with dn = dy (1 + scale_b), dxhat = dn gamma, m1 = mean(dxhat),
 * m2 = mean(dxhat xhat) per row;
 * d_gamma += sum dn xhat and d_beta += sum dn over all rows (added to); d_shift[b] = sum_t dy and d_scale[b] =
 * sum_t dy n with n = xhat gamma + beta (overwritten; 0 for tokens = 0). gamma, beta, scale (per-sample, row stride
 * scale_stride) as in the forward, each may be null; every gradient output may be null (not wanted); d_gamma needs
 * gamma. */
int d4j_layer_norm_backward_f32(const float *x, const float *gamma, const float *beta, const float *scale,
                                int64_t scale_stride, const float *mean, const float *rstd, const float *dy, float *dx,
                                float *d_gamma, float *d_beta, float *d_shift, int64_t d_shift_stride, float *d_scale,
                                int64_t d_scale_stride, int64_t batch, int64_t tokens, int64_t dim, void *stream);

/* Embedding gradient d_table[idx[i], :] += dy[i, :] (dy [n, dim], d_table [vocab, dim]), rows added in order of i
 * in float (bitwise the sequential sum). `plan` (device, n + 2*touched + 1 int32) groups the positions by table row:
 * order[n] (the positions i, grouped by idx[i], increasing within a group) | start[touched + 1] (group u is
 * order[start[u] .. start[u+1])) | rows[touched] (the table row of group u). The caller validates the indices;
 * a group whose row is outside [0, vocab) is skipped. */
int d4j_embedding_backward_f32(const float *dy, float *d_table, int64_t vocab, int64_t dim, const int32_t *plan,
                               int64_t n, int64_t touched, void *stream);

/* ---------------------------------------------------------------- fused attention (F32 tensors)
 *
 * org.diffusion4j.nn.attention.AttentionOps on CUDA: FlashAttention-2 (Dao 2023, Algorithms 1 and 2). q [bh, tq,
 * dh], k and v [bh, tk, dh], out [bh, tq, dh], lse [bh, tq] (natural log-sum-exp of scale*q.k per query row),
 * contiguous F32, bh = batch*heads. 1 <= dh <= 128 (D4J_ERR_INVALID otherwise), tk >= 1 when tq > 0, scale finite
 * and >= 0. The softmax arithmetic is org.diffusion4j.nn.attention.AttentionMath's. Outputs must not overlap
 * inputs. */

/* Forward in F32 (FMA dot products). lse may be null. */
int d4j_attention_forward_f32(const float *q, const float *k, const float *v, float *out, float *lse, int64_t bh,
                              int64_t tq, int64_t tk, int64_t dh, float scale, void *stream);

/* Forward with both products on BF16 tensor cores (mma.sync m16n8k16, F32 accumulation): q, k, v and P are rounded
 * to BF16; the softmax, out and lse are F32. Needs compute capability >= 8.0. */
int d4j_attention_forward_bf16(const float *q, const float *k, const float *v, float *out, float *lse, int64_t bh,
                               int64_t tq, int64_t tk, int64_t dh, float scale, void *stream);

/* Backward in F32 given the forward's out and lse: dq, dk, dv overwritten (dk = dv = 0 when tq = 0).
 * Deterministic: no atomics (dQ and dK/dV are separate kernels that each recompute P). */
int d4j_attention_backward_f32(const float *q, const float *k, const float *v, const float *out, const float *lse,
                               const float *dout, float *dq, float *dk, float *dv, int64_t bh, int64_t tq, int64_t tk,
                               int64_t dh, float scale, void *stream);

/* Backward with the tile products on BF16 tensor cores (mma.sync m16n8k16, F32 accumulation): q, k, v, dout and the
 * recomputed P and dS are rounded to BF16; D = rowsum(dout o out), the softmax and the accumulators are F32.
 * Deterministic like d4j_attention_backward_f32. Needs compute capability >= 8.0. */
int d4j_attention_backward_bf16(const float *q, const float *k, const float *v, const float *out, const float *lse,
                                const float *dout, float *dq, float *dk, float *dv, int64_t bh, int64_t tq, int64_t tk,
                                int64_t dh, float scale, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* DIFFUSION4J_H */
