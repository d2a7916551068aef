/*
 * Index arithmetic shared by the kernels and the host test: row/col walkers for grid-stride loops over a
 * rows x cols view, and the plan of a strided copy (dimension coalescing, element widening, choice of
 * the tiled-transpose kernel). Everything here is __host__ __device__ so test_ops_math.cpp can replay
 * the kernels' index maps on the CPU.
 */
#ifndef D4J_INDEX_MATH_CUH
#define D4J_INDEX_MATH_CUH

#include <stdint.h>

#include "ops_math.cuh"

namespace d4j {

/* (row, col) of a flat index i of a rows x cols view, advanced by a fixed step without dividing:
 * one division at the start, then an add and a compare per step. cols >= 1; step may exceed cols. */
template <typename I>
struct RowCol {
    I r, c, dr, dc, cols;

    D4J_HD RowCol(I i, I step, I cols_) : r(i / cols_), c(i % cols_), dr(step / cols_), dc(step % cols_), cols(cols_) {}

    /* i += step */
    D4J_HD void advance() {
        r += dr;
        c += dc;
        if (c >= cols) {  // c < cols and dc < cols, so one wrap is enough
            c -= cols;
            ++r;
        }
    }
};

/* (row, col) of i + 1 given those of i. */
template <typename I>
D4J_HD void next_rc(I &r, I &c, I cols) {
    if (++c == cols) {
        c = 0;
        ++r;
    }
}

// ------------------------------------------------------------------ strided copy plan

constexpr int kMaxRank = 8;

enum CopyKind : int {
    COPY_EMPTY = 0,      // nothing to copy
    COPY_CONTIGUOUS = 1, // src is one contiguous run: cudaMemcpyAsync
    COPY_TRANSPOSE = 2,  // tiled transpose of dims (tdim, rank-1); src stride of tdim is 1
    COPY_GENERAL = 3,    // per-element gather: dst[i] = src[offset(i)]
};

struct CopyPlan {
    int kind;
    int rank;            // >= 1 after planning (unless empty)
    int elem_size;       // bytes per element after widening: 1, 2, 4, 8 or 16
    int tdim;            // COPY_TRANSPOSE: the dim whose src stride is 1
    int64_t numel;       // elements of elem_size bytes
    int64_t shape[kMaxRank];
    int64_t sstride[kMaxRank];  // src strides in elements of elem_size
    int64_t dstride[kMaxRank];  // dst (contiguous) strides in elements of elem_size
};

/* Smallest extent of both transposed dims for which the tiled kernel is used. */
constexpr int64_t kTransposeMinExtent = 8;

/* Plans dst (contiguous) = src viewed with `strides` over `shape`. src_addr/dst_addr are the byte
 * addresses (for the widening alignment test). Returns false on an invalid request (rank outside 0..8,
 * negative extent, elem_size not 1/2/4/8, byte count overflowing int64). Pure: no CUDA calls. */
D4J_HD bool plan_copy(CopyPlan *p, int elem_size, int rank, const int64_t *shape, const int64_t *strides,
                      uint64_t src_addr, uint64_t dst_addr) {
    if (rank < 0 || rank > kMaxRank || !(elem_size == 1 || elem_size == 2 || elem_size == 4 || elem_size == 8)) {
        return false;
    }
    int64_t numel = 1;
    for (int d = 0; d < rank; ++d) {
        if (shape[d] < 0) {
            return false;
        }
    }
    for (int d = 0; d < rank; ++d) {
        if (shape[d] == 0) {
            numel = 0;
            break;
        }
        if (numel > INT64_MAX / elem_size / shape[d]) {
            return false;
        }
        numel *= shape[d];
    }
    p->kind = COPY_EMPTY;
    p->rank = 0;
    p->elem_size = elem_size;
    p->tdim = -1;
    p->numel = numel;
    for (int d = 0; d < kMaxRank; ++d) {
        p->shape[d] = 1;
        p->sstride[d] = 0;
        p->dstride[d] = 0;
    }
    if (numel == 0) {
        return true;
    }
    // Drop extent-1 dims and merge each dim into the next inner one when the pair is one strided run.
    int r = 0;
    for (int d = 0; d < rank; ++d) {
        if (shape[d] == 1) {
            continue;
        }
        // unsigned product: no overflow UB for nonsense strides (a valid view's product fits anyway)
        if (r > 0 && static_cast<uint64_t>(p->sstride[r - 1]) ==
                         static_cast<uint64_t>(strides[d]) * static_cast<uint64_t>(shape[d])) {
            p->shape[r - 1] *= shape[d];
            p->sstride[r - 1] = strides[d];
        } else {
            p->shape[r] = shape[d];
            p->sstride[r] = strides[d];
            ++r;
        }
    }
    if (r == 0) {  // a single element
        p->shape[0] = 1;
        p->sstride[0] = 1;
        r = 1;
    }
    p->rank = r;
    const int last = r - 1;
    if (r == 1 && p->sstride[0] == 1) {
        p->kind = COPY_CONTIGUOUS;
        p->dstride[0] = 1;
        return true;
    }
    // Widen: k consecutive elements along a unit-stride inner dim become one element of k*elem_size
    // bytes (at most 16) when every other stride, the inner extent and both base addresses allow.
    if (p->sstride[last] == 1) {
        for (int k = 16 / p->elem_size; k >= 2; k /= 2) {
            const uint64_t bytes = static_cast<uint64_t>(k) * static_cast<uint64_t>(p->elem_size);
            bool ok = p->shape[last] % k == 0 && src_addr % bytes == 0 && dst_addr % bytes == 0;
            for (int d = 0; d < last && ok; ++d) {
                ok = p->sstride[d] % k == 0;
            }
            if (ok) {
                p->shape[last] /= k;
                for (int d = 0; d < last; ++d) {
                    p->sstride[d] /= k;
                }
                p->elem_size *= k;
                p->numel /= k;
                break;
            }
        }
    }
    int64_t run = 1;
    for (int d = last; d >= 0; --d) {
        p->dstride[d] = run;
        run *= p->shape[d];
    }
    p->kind = COPY_GENERAL;
    if (p->sstride[last] != 1) {
        for (int d = 0; d < last; ++d) {
            if (p->sstride[d] == 1 && p->shape[d] >= kTransposeMinExtent && p->shape[last] >= kTransposeMinExtent) {
                p->kind = COPY_TRANSPOSE;
                p->tdim = d;
                break;
            }
        }
    }
    return true;
}

/* Source element offset of destination element i (row-major over the planned shape). */
template <typename I>
D4J_HD int64_t copy_src_offset(const CopyPlan &p, I i) {
    int64_t off = 0;
    for (int d = p.rank - 1; d > 0; --d) {
        const I extent = static_cast<I>(p.shape[d]);
        const I q = i / extent;
        off += static_cast<int64_t>(i - q * extent) * p.sstride[d];
        i = q;
    }
    return off + static_cast<int64_t>(i) * p.sstride[0];
}

/* Tiled transpose geometry: tile t of the (batch, j-tile, l-tile) grid, where j = tdim (src-contiguous)
 * and l = the last dim (dst-contiguous). Gives the src/dst offsets of the tile's batch coordinates and
 * the first j and l of the tile. */
struct TransposeTile {
    int64_t src_base, dst_base, j0, l0;
};

constexpr int kTile = 32;

D4J_HD int64_t transpose_tiles_j(const CopyPlan &p) { return (p.shape[p.tdim] + kTile - 1) / kTile; }
D4J_HD int64_t transpose_tiles_l(const CopyPlan &p) { return (p.shape[p.rank - 1] + kTile - 1) / kTile; }

D4J_HD TransposeTile transpose_tile(const CopyPlan &p, int64_t t, int64_t tiles_j, int64_t tiles_l) {
    TransposeTile tt;
    const int64_t tl = t % tiles_l;
    t /= tiles_l;
    const int64_t tj = t % tiles_j;
    int64_t b = t / tiles_j;
    tt.j0 = tj * kTile;
    tt.l0 = tl * kTile;
    tt.src_base = 0;
    tt.dst_base = 0;
    for (int d = p.rank - 2; d >= 0; --d) {
        if (d == p.tdim) {
            continue;
        }
        const int64_t q = b / p.shape[d];
        const int64_t coord = b - q * p.shape[d];
        tt.src_base += coord * p.sstride[d];
        tt.dst_base += coord * p.dstride[d];
        b = q;
    }
    return tt;
}

}  // namespace d4j

#endif /* D4J_INDEX_MATH_CUH */
