/*
 * The per-thread body of the elementwise kernel (elementwise.cu) as a __host__ __device__ function, so
 * the host test replays whole launches (every block and thread of a small grid) and checks that each
 * output element is written once with the right value, for every broadcast mode, vector/scalar path
 * and ragged tail.
 *
 * out[i] = fn(in0, in1, in2) for i < n over a rows x cols view; each operand is a full tensor p[i], a
 * device scalar p[0], a host immediate, a row vector p[c] or a per-row value p[r].
 */
#ifndef D4J_ELEMENTWISE_CUH
#define D4J_ELEMENTWISE_CUH

#include <stdint.h>
#include <string.h>

#include "index_math.cuh"
#include "ops_math.cuh"

namespace d4j {

/* Operand source. The first four equal the D4J_BCAST_* codes. */
enum Src : int {
    SRC_TENSOR = D4J_BCAST_NONE,      // p[i]
    SRC_SCALAR = D4J_BCAST_SCALAR,    // p[0] (device memory)
    SRC_ROW = D4J_BCAST_ROW,          // p[c]
    SRC_PER_ROW = D4J_BCAST_PER_ROW,  // p[r]
    SRC_IMM = 4,                      // imm (host value)
};

struct Operand {
    const float *p;
    int src;
    float imm;
};

template <int N>
struct EwArgs {
    float *out;
    Operand in[N];
    int64_t n;
    int64_t cols;  // >= 1
    bool vec;      // out and every SRC_TENSOR operand 16-byte aligned: float4 path
    bool need_rc;  // some operand is SRC_ROW or SRC_PER_ROW
};

/* Four floats moved as one 16-byte access (float4 on the device, memcpy on the host). */
struct Vec4 {
    float v[4];
};

D4J_HD Vec4 load4(const float *p, int64_t group) {
    Vec4 r;
#ifdef __CUDA_ARCH__
    const float4 q = reinterpret_cast<const float4 *>(p)[group];
    r.v[0] = q.x;
    r.v[1] = q.y;
    r.v[2] = q.z;
    r.v[3] = q.w;
#else
    memcpy(r.v, p + group * 4, sizeof r.v);
#endif
    return r;
}

D4J_HD void store4(float *p, int64_t group, const Vec4 &r) {
#ifdef __CUDA_ARCH__
    reinterpret_cast<float4 *>(p)[group] = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
#else
    memcpy(p + group * 4, r.v, sizeof r.v);
#endif
}

// Functors: f(x0, x1, x2) -> out. Unused arguments are unnamed.
template <int OP>
struct BinaryFn {
    D4J_HD float operator()(float a, float b, float) const { return binary_op<OP>(a, b); }
};
template <int OP>
struct UnaryFn {
    D4J_HD float operator()(float a, float, float) const { return unary_op<OP>(a); }
};
struct AxpbyFn {
    float alpha, beta;
    D4J_HD float operator()(float x, float y, float) const { return axpby(alpha, x, beta, y); }
};
struct FmaFn {
    D4J_HD float operator()(float a, float b, float c) const { return fma3(a, b, c); }
};
struct ScaleShiftFn {
    float s, t;
    D4J_HD float operator()(float a, float, float) const { return scale_shift(a, s, t); }
};

/* One element of an operand at flat index i, row r, col c; `uniform` is its scalar/immediate value. */
template <typename I>
D4J_HD float load_one(const Operand &o, float uniform, I i, I r, I c) {
    switch (o.src) {
    case SRC_TENSOR: return o.p[i];
    case SRC_ROW: return o.p[c];
    case SRC_PER_ROW: return o.p[r];
    default: return uniform;
    }
}

/* Row/col walker when some operand needs it (kRc), else a stand-in that costs no registers. */
template <typename I, bool kRc>
struct MaybeRowCol : RowCol<I> {
    D4J_HD MaybeRowCol(I i, I step, I cols) : RowCol<I>(i, step, cols) {}
};
template <typename I>
struct MaybeRowCol<I, false> {
    I r, c;
    D4J_HD MaybeRowCol(I, I, I) : r(0), c(0) {}
    D4J_HD void advance() {}
};

/* Everything thread `tid` of a grid of `stride` threads does (grid-stride loop, then the tail).
 * kRc must be true when args.need_rc is (ROW / PER_ROW operands); flat ops use kRc = false. */
template <typename I, int N, typename Fn, bool kRc>
D4J_HD void ew_thread(const EwArgs<N> &args, const Fn &fn, I tid, I stride) {
    float uniform[N];
    for (int k = 0; k < N; ++k) {
        const Operand &o = args.in[k];
        uniform[k] = o.src == SRC_SCALAR ? o.p[0] : o.imm;
    }
    const I n = static_cast<I>(args.n);
    const I cols = static_cast<I>(args.cols);

    if (args.vec) {
        const I n4 = n / 4;
        MaybeRowCol<I, kRc> rc(tid * 4, stride * 4, cols);  // row/col of the group's first element
        for (I v = tid; v < n4; v += stride, rc.advance()) {
            I rr[4] = {rc.r, rc.r, rc.r, rc.r};
            I cc[4] = {rc.c, rc.c, rc.c, rc.c};
            if (kRc) {
                for (int j = 1; j < 4; ++j) {
                    rr[j] = rr[j - 1];
                    cc[j] = cc[j - 1];
                    next_rc(rr[j], cc[j], cols);
                }
            }
            Vec4 x[3] = {};
            for (int k = 0; k < N; ++k) {
                const Operand &o = args.in[k];
                if (o.src == SRC_TENSOR) {
                    x[k] = load4(o.p, static_cast<int64_t>(v));
                } else {
                    for (int j = 0; j < 4; ++j) {
                        x[k].v[j] = load_one<I>(o, uniform[k], v * 4 + static_cast<I>(j), rr[j], cc[j]);
                    }
                }
            }
            Vec4 res;
            for (int j = 0; j < 4; ++j) {
                res.v[j] = fn(x[0].v[j], x[1].v[j], x[2].v[j]);
            }
            store4(args.out, static_cast<int64_t>(v), res);
        }
        // Tail: the last n % 4 elements, one each for the first threads of the grid.
        for (I i = n4 * 4 + tid; i < n; i += stride) {
            const I r = kRc ? i / cols : 0;
            const I c = kRc ? i - r * cols : 0;
            float x[3] = {0.0f, 0.0f, 0.0f};
            for (int k = 0; k < N; ++k) {
                x[k] = load_one<I>(args.in[k], uniform[k], i, r, c);
            }
            args.out[i] = fn(x[0], x[1], x[2]);
        }
    } else {
        MaybeRowCol<I, kRc> rc(tid, stride, cols);
        for (I i = tid; i < n; i += stride, rc.advance()) {
            float x[3] = {0.0f, 0.0f, 0.0f};
            for (int k = 0; k < N; ++k) {
                x[k] = load_one<I>(args.in[k], uniform[k], i, rc.r, rc.c);
            }
            args.out[i] = fn(x[0], x[1], x[2]);
        }
    }
}

}  // namespace d4j

#endif /* D4J_ELEMENTWISE_CUH */
