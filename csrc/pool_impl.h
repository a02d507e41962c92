// pool_impl.h — the bodies of the NHWC pooling kernels, compiled once per instruction set:
// pool.cpp (baseline x86-64, and every non-x86 target), pool_avx2.cpp and pool_avx512.cpp
// include this file and nothing else defines these functions.
//
// Layout: x/dx (N, H, W, C) and y/dy/argmax (N, OH, OW, C), C-contiguous, so the inner loop
// of every kernel runs over contiguous channels of one cell, in blocks of 16 held in
// registers across the window (channel_blocks.h), vectorised at the width of the
// translation unit's ISA (4, 8 or 16 floats). Padding ('same', Keras's rule:
// the extra cell goes bottom/right) is virtual: windows are clipped to the image, so padded
// cells are never read; average pooling divides by the number of input cells in the window
// (Keras/TF leave padded cells out of the mean).
//
// Parallel over disjoint outputs: the forwards over (n, output row), the backwards over
// (n, input row), each input cell gathering from the windows that cover it in ascending
// (oh, ow) order. No thread writes another's cells, so there are no races and the result
// is bit-identical for every thread count. Max backward gathers where argmax names the
// cell, so each dy reaches exactly one input cell (the forward's tie rule decides which).
// It counts the entries it routes as it goes (Routed): the binding's argmax validation, with
// no pass of its own. Windows over WINDOW_L1_BYTES of channels (global pooling) are scanned
// one row at a time, every channel block of a row while it is in L1.
// Every channel is computed on its own, in the same order on every path, and the files are
// built with -ffp-contract=off: the AVX2 and AVX-512 copies return the baseline's bits.
//
// Internal linkage (an anonymous namespace), as activations_impl.h: each translation unit
// keeps its own copy, compiled with its own -m flags.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "channel_blocks.h"
#include "parallel.h"
#include "pool.h"

namespace pyminidl::kernels {
namespace {

struct Range {
    int64_t lo, hi;  // [lo, hi)
};

// The input cells of output o's window along one axis, clipped to [0, size).
inline Range window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size) {
    const int64_t start = o * stride - pad;
    return {std::max<int64_t>(start, 0), std::min(start + k, size)};
}

// The outputs whose windows cover input cell i along one axis, clipped to [0, out).
inline Range covering(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t out) {
    const int64_t last_before = i + pad - k;  // windows starting at or below this miss i
    const int64_t lo = last_before < 0 ? 0 : last_before / stride + 1;
    return {lo, std::min(out, (i + pad) / stride + 1)};
}

// y, a: (n,) channels of one output cell; img: (H, W, C) offset to the block's first channel.
// The window's maximum per channel: strict > keeps the first of equal values; a NaN replaces
// a number and is then kept (the first NaN).
template <typename N>
PMD_ALWAYS_INLINE void max_lanes(float* PMD_RESTRICT y, int32_t* PMD_RESTRICT a, const float* PMD_RESTRICT img,
                                 int64_t w, int64_t c, Range r, Range q, N n) {
    float m[LANES];
    int32_t at[LANES];
    const int32_t k0 = int32_t(r.lo * w + q.lo);
    for (int64_t l = 0; l < n; ++l) {
        m[l] = img[k0 * c + l];
        at[l] = k0;
    }
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        for (int64_t iw = (ih == r.lo ? q.lo + 1 : q.lo); iw < q.hi; ++iw) {
            const int32_t k = int32_t(ih * w + iw);
            const float* PMD_RESTRICT p = img + k * c;
            for (int64_t l = 0; l < n; ++l) {
                const float v = p[l], b = m[l];
                const bool take = (v > b) | ((v != v) & (b == b));
                m[l] = take ? v : b;
                at[l] = take ? k : at[l];
            }
        }
    }
    for (int64_t l = 0; l < n; ++l) {
        y[l] = m[l];
        a[l] = at[l];
    }
}

// The full block of max_lanes in channel_blocks.h's native vectors: the loop form's float
// compare selecting an int32 index does not vectorise once the loop is unrolled, and the
// select must stay branch-free. Same per-lane rule as max_lanes.

PMD_ALWAYS_INLINE void max_lanes(float* PMD_RESTRICT y, int32_t* PMD_RESTRICT a, const float* PMD_RESTRICT img,
                                 int64_t w, int64_t c, Range r, Range q, FullBlock) {
    const int32_t k0 = int32_t(r.lo * w + q.lo);
    VecF m[NVEC];
    VecI at[NVEC];
    load_vecs(m, img + k0 * c);
    for (int u = 0; u < NVEC; ++u) at[u] = VecI{} + k0;
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        for (int64_t iw = (ih == r.lo ? q.lo + 1 : q.lo); iw < q.hi; ++iw) {
            const int32_t k = int32_t(ih * w + iw);
            VecF v[NVEC];
            load_vecs(v, img + k * c);
            for (int u = 0; u < NVEC; ++u) {
                const VecI take = (v[u] > m[u]) | ((v[u] != v[u]) & (m[u] == m[u]));
                m[u] = take ? v[u] : m[u];
                at[u] = take ? VecI{} + k : at[u];
            }
        }
    }
    store_vecs(y, m);
    store_vecs(a, at);
}

// y, a: (n,) running maxima and their indices over earlier window rows; m, at: (n,) a later
// row's. Strict > keeps the earlier of equal values and a number yields only to a first NaN:
// max_lanes's rule, so merging rows in order equals one scan of the whole window.
template <typename N>
PMD_ALWAYS_INLINE void merge_max_lanes(float* PMD_RESTRICT y, int32_t* PMD_RESTRICT a, const float* PMD_RESTRICT m,
                                       const int32_t* PMD_RESTRICT at, N n) {
    for (int64_t l = 0; l < n; ++l) {
        const bool take = (m[l] > y[l]) | ((m[l] != m[l]) & (y[l] == y[l]));
        y[l] = take ? m[l] : y[l];
        a[l] = take ? at[l] : a[l];
    }
}

PMD_ALWAYS_INLINE void merge_max_lanes(float* PMD_RESTRICT y, int32_t* PMD_RESTRICT a, const float* PMD_RESTRICT m,
                                       const int32_t* PMD_RESTRICT at, FullBlock) {
    VecF vy[NVEC], vm[NVEC];
    VecI va[NVEC], vat[NVEC];
    load_vecs(vy, y);
    load_vecs(vm, m);
    load_vecs(va, a);
    load_vecs(vat, at);
    for (int u = 0; u < NVEC; ++u) {
        const VecI take = (vm[u] > vy[u]) | ((vm[u] != vm[u]) & (vy[u] == vy[u]));
        vy[u] = take ? vm[u] : vy[u];
        va[u] = take ? vat[u] : va[u];
    }
    store_vecs(y, vy);
    store_vecs(a, va);
}

// A window of more than this many bytes of channels is scanned row by row (scan_by_rows).
constexpr int64_t WINDOW_L1_BYTES = 16 * 1024;

// Whether a window is scanned one row at a time (global pooling): scanned block by block, each
// channel block of a window over WINDOW_L1_BYTES would re-walk the whole window from L2.
inline bool scan_by_rows(int64_t c, Range r, Range q) {
    const int64_t bytes = (r.hi - r.lo) * (q.hi - q.lo) * c * int64_t(sizeof(float));
    return c > LANES && r.hi - r.lo > 1 && bytes > WINDOW_L1_BYTES;
}

// y, a: (C,); img: (H, W, C).
void max_cell(float* PMD_RESTRICT y, int32_t* PMD_RESTRICT a, const float* PMD_RESTRICT img,
              int64_t w, int64_t c, Range r, Range q) {
    if (!scan_by_rows(c, r, q)) {
        channel_blocks(c, [&](int64_t j, auto n) { max_lanes(y + j, a + j, img + j, w, c, r, q, n); });
        return;
    }
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        const Range row{ih, ih + 1};
        channel_blocks(c, [&](int64_t j, auto n) {
            if (ih == r.lo) return max_lanes(y + j, a + j, img + j, w, c, row, q, n);
            alignas(64) float m[LANES];
            alignas(64) int32_t at[LANES];
            max_lanes(m, at, img + j, w, c, row, q, n);
            merge_max_lanes(y + j, a + j, m, at, n);
        });
    }
}

// y: (n,); img: (H, W, C) offset to the block. The sum of the window's input cells, times inv;
// carry: the sum continues from y (an earlier row's, stored times 1), in the same order.
template <typename N>
PMD_ALWAYS_INLINE void avg_lanes(float* PMD_RESTRICT y, const float* PMD_RESTRICT img, int64_t w, int64_t c,
                                 Range r, Range q, float inv, bool carry, N n) {
    float acc[LANES];
    for (int64_t l = 0; l < n; ++l) acc[l] = carry ? y[l] : 0.0f;
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        for (int64_t iw = q.lo; iw < q.hi; ++iw) {
            const float* PMD_RESTRICT p = img + (ih * w + iw) * c;
            for (int64_t l = 0; l < n; ++l) acc[l] += p[l];
        }
    }
    for (int64_t l = 0; l < n; ++l) y[l] = acc[l] * inv;
}

// The full block of avg_lanes in native vectors, as max_lanes's: GCC kept the lane loop's
// sums in stack memory, moved lane by lane. Same per-lane operations and order.
PMD_ALWAYS_INLINE void avg_lanes(float* PMD_RESTRICT y, const float* PMD_RESTRICT img, int64_t w, int64_t c,
                                 Range r, Range q, float inv, bool carry, FullBlock) {
    VecF acc[NVEC];
    if (carry) load_vecs(acc, y);
    else
        for (int u = 0; u < NVEC; ++u) acc[u] = VecF{};
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        for (int64_t iw = q.lo; iw < q.hi; ++iw) {
            VecF v[NVEC];
            load_vecs(v, img + (ih * w + iw) * c);
            for (int u = 0; u < NVEC; ++u) acc[u] += v[u];
        }
    }
    for (int u = 0; u < NVEC; ++u) acc[u] *= inv;
    store_vecs(y, acc);
}

// y: (C,); img: (H, W, C). The mean of the window's input cells per channel.
void avg_cell(float* PMD_RESTRICT y, const float* PMD_RESTRICT img, int64_t w, int64_t c, Range r, Range q) {
    const float inv = 1.0f / float((r.hi - r.lo) * (q.hi - q.lo));
    if (!scan_by_rows(c, r, q)) {
        channel_blocks(c, [&](int64_t j, auto n) { avg_lanes(y + j, img + j, w, c, r, q, inv, false, n); });
        return;
    }
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        const float scale = ih + 1 == r.hi ? inv : 1.0f;  // times 1 is exact: the sum carries on unrounded
        channel_blocks(c, [&](int64_t j, auto n) {
            avg_lanes(y + j, img + j, w, c, Range{ih, ih + 1}, q, scale, ih > r.lo, n);
        });
    }
}

// The argmax entries a gather found naming its cell, counted as it routes them: every entry is
// compared with each cell of its own window (distinct indices), so it matches at most once, and
// the count equals the number of entries exactly when every argmax lies in its window. This is
// the backward's validation, with no pass and no division of its own (the binding reports the
// first bad entry only when the count falls short). lanes: -1 per match in the full blocks,
// flushed once per input row (a lane can match at most its channels' entries of one output
// image, far below 2^31 for any image memory can hold); tail: the scalar tail blocks' matches.
struct Routed {
    VecI lanes{};
    int64_t tail = 0;
    int64_t flush() {
        int64_t s = tail;
        for (int l = 0; l < VEC; ++l) s -= lanes[l];
        lanes = VecI{};
        tail = 0;
        return s;
    }
};

// dx: (n,) of input cell k; dy, a: (OH, OW, C) of its image, offset to the block. Sums the dy
// whose argmax is k.
template <typename N>
PMD_ALWAYS_INLINE void max_gather_lanes(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy,
                                        const int32_t* PMD_RESTRICT a, int64_t ow, int64_t c, int32_t k, Range r,
                                        Range q, Routed& routed, N n) {
    float acc[LANES];
    int64_t hits = 0;
    for (int64_t l = 0; l < n; ++l) acc[l] = 0.0f;
    for (int64_t oh = r.lo; oh < r.hi; ++oh) {
        for (int64_t o = q.lo; o < q.hi; ++o) {
            const float* PMD_RESTRICT g = dy + (oh * ow + o) * c;
            const int32_t* PMD_RESTRICT ga = a + (oh * ow + o) * c;
            for (int64_t l = 0; l < n; ++l) {
                const float v = g[l];  // loaded unconditionally, so the select vectorises
                acc[l] += ga[l] == k ? v : 0.0f;
                hits += ga[l] == k;
            }
        }
    }
    for (int64_t l = 0; l < n; ++l) dx[l] = acc[l];
    routed.tail += hits;
}

// The full block of max_gather_lanes in native GCC vector types, as max_lanes's.
PMD_ALWAYS_INLINE void max_gather_lanes(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy,
                                        const int32_t* PMD_RESTRICT a, int64_t ow, int64_t c, int32_t k, Range r,
                                        Range q, Routed& routed, FullBlock) {
    const VecI key = VecI{} + k;
    VecF acc[NVEC];
    for (int u = 0; u < NVEC; ++u) acc[u] = VecF{};
    for (int64_t oh = r.lo; oh < r.hi; ++oh) {
        for (int64_t o = q.lo; o < q.hi; ++o) {
            VecF v[NVEC];
            VecI ga[NVEC];
            load_vecs(v, dy + (oh * ow + o) * c);
            load_vecs(ga, a + (oh * ow + o) * c);
            for (int u = 0; u < NVEC; ++u) {
                const VecI hit = ga[u] == key;
                acc[u] += hit ? v[u] : VecF{};
                routed.lanes += hit;
            }
        }
    }
    store_vecs(dx, acc);
}

// dx: (C,) of input cell k; dy, a: (OH, OW, C) of its image.
void max_gather(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy, const int32_t* PMD_RESTRICT a,
                int64_t ow, int64_t c, int32_t k, Range r, Range q, Routed& routed) {
    channel_blocks(c, [&](int64_t j, auto n) { max_gather_lanes(dx + j, dy + j, a + j, ow, c, k, r, q, routed, n); });
}

// dx: (n,) of one input cell; dy: (OH, OW, C) offset to the block; inv: (OH, OW) 1 / count of
// each window. dL/dx = sum over the covering windows, in (oh, ow) order, of dy / count.
template <typename N>
PMD_ALWAYS_INLINE void avg_gather_lanes(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy,
                                        const float* PMD_RESTRICT inv, int64_t ow, int64_t c, Range r, Range q,
                                        N n) {
    float acc[LANES];
    for (int64_t l = 0; l < n; ++l) acc[l] = 0.0f;
    for (int64_t oh = r.lo; oh < r.hi; ++oh) {
        for (int64_t o = q.lo; o < q.hi; ++o) {
            const float* PMD_RESTRICT gy = dy + (oh * ow + o) * c;
            const float s = inv[oh * ow + o];
            for (int64_t l = 0; l < n; ++l) acc[l] += gy[l] * s;
        }
    }
    for (int64_t l = 0; l < n; ++l) dx[l] = acc[l];
}

// The full block of avg_gather_lanes in native vectors (as avg_lanes's).
PMD_ALWAYS_INLINE void avg_gather_lanes(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy,
                                        const float* PMD_RESTRICT inv, int64_t ow, int64_t c, Range r, Range q,
                                        FullBlock) {
    VecF acc[NVEC];
    for (int u = 0; u < NVEC; ++u) acc[u] = VecF{};
    for (int64_t oh = r.lo; oh < r.hi; ++oh) {
        for (int64_t o = q.lo; o < q.hi; ++o) {
            VecF v[NVEC];
            load_vecs(v, dy + (oh * ow + o) * c);
            const float s = inv[oh * ow + o];
            for (int u = 0; u < NVEC; ++u) acc[u] += v[u] * s;
        }
    }
    store_vecs(dx, acc);
}

// dx: (C,) of one input cell; dy: (OH, OW, C); inv: (OH, OW).
void avg_gather(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy, const float* PMD_RESTRICT inv,
                const PoolGeom& g, Range r, Range q) {
    channel_blocks(g.c, [&](int64_t j, auto n) { avg_gather_lanes(dx + j, dy + j, inv, g.ow, g.c, r, q, n); });
}

// 1 / (input cells in the window) of every output cell (OH, OW), once per call: recomputed per
// input cell for each covering window it cost more than the cell's gather.
std::vector<float> window_inverse_counts(const PoolGeom& g) {
    std::vector<float> inv(static_cast<size_t>(g.oh * g.ow));
    for (int64_t oh = 0; oh < g.oh; ++oh) {
        const Range wr = window(oh, g.sh, g.pt, g.kh, g.h);
        for (int64_t o = 0; o < g.ow; ++o) {
            const Range wq = window(o, g.sw, g.pl, g.kw, g.w);
            inv[oh * g.ow + o] = 1.0f / float((wr.hi - wr.lo) * (wq.hi - wq.lo));
        }
    }
    return inv;
}

bool worth_threads(int64_t elements) { return elements > PARALLEL_GRAIN; }

// The covering windows of every input column, computed once per call: two integer divisions
// per cell cost more than a cell's C-channel gather.
std::vector<Range> column_coverage(const PoolGeom& g) {
    std::vector<Range> cols(static_cast<size_t>(g.w));
    for (int64_t iw = 0; iw < g.w; ++iw) cols[iw] = covering(iw, g.sw, g.pl, g.kw, g.ow);
    return cols;
}



// The forward traversal both pools share: cell(n, out, rows, cols) for every output cell, with out
// the cell's offset in y and its clipped input window; parallel over the (n, oh) output rows.
template <typename Cell>
void for_each_output_cell(const PoolGeom& g, Cell cell) {
    const int64_t rows = g.n * g.oh;
    team_region(threads_if(worth_threads(rows * g.ow * g.c * g.kh * g.kw)), [&] {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < rows; ++t) {
            const int64_t n = t / g.oh, oh = t % g.oh;
            const Range r = window(oh, g.sh, g.pt, g.kh, g.h);
            for (int64_t ow = 0; ow < g.ow; ++ow) {
                cell(n, (t * g.ow + ow) * g.c, r, window(ow, g.sw, g.pl, g.kw, g.w));
            }
        }
    });
}

void maxpool_forward_impl(float* y, int32_t* argmax, const float* x, const PoolGeom& g) {
    const int64_t image = g.h * g.w * g.c;
    for_each_output_cell(g, [&](int64_t n, int64_t out, const Range& r, const Range& c) {
        max_cell(y + out, argmax + out, x + n * image, g.w, g.c, r, c);
    });
}

int64_t maxpool_backward_impl(float* dx, const float* dy, const int32_t* argmax, const PoolGeom& g) {
    const int64_t rows = g.n * g.h, out_image = g.oh * g.ow * g.c;
    const std::vector<Range> cols = column_coverage(g);
    int64_t routed_total = 0;  // an integer sum: the same for every thread count
    team_region(threads_if(worth_threads(rows * g.w * g.c)), [&] {
#pragma omp for schedule(static) reduction(+ : routed_total)
        for (int64_t t = 0; t < rows; ++t) {
            const int64_t n = t / g.h, ih = t % g.h;
            const Range r = covering(ih, g.sh, g.pt, g.kh, g.oh);
            Routed routed;
            for (int64_t iw = 0; iw < g.w; ++iw) {
                max_gather(dx + (t * g.w + iw) * g.c, dy + n * out_image, argmax + n * out_image, g.ow, g.c,
                           int32_t(ih * g.w + iw), r, cols[iw], routed);
            }
            routed_total += routed.flush();
        }
    });
    return routed_total;
}

void avgpool_forward_impl(float* y, const float* x, const PoolGeom& g) {
    const int64_t image = g.h * g.w * g.c;
    for_each_output_cell(g, [&](int64_t n, int64_t out, const Range& r, const Range& c) {
        avg_cell(y + out, x + n * image, g.w, g.c, r, c);
    });
}

void avgpool_backward_impl(float* dx, const float* dy, const PoolGeom& g) {
    const int64_t rows = g.n * g.h, out_image = g.oh * g.ow * g.c;
    const std::vector<Range> cols = column_coverage(g);
    const std::vector<float> inv = window_inverse_counts(g);
    team_region(threads_if(worth_threads(rows * g.w * g.c)), [&] {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < rows; ++t) {
            const int64_t n = t / g.h, ih = t % g.h;
            const Range r = covering(ih, g.sh, g.pt, g.kh, g.oh);
            for (int64_t iw = 0; iw < g.w; ++iw)
                avg_gather(dx + (t * g.w + iw) * g.c, dy + n * out_image, inv.data(), g, r, cols[iw]);
        }
    });
}

}  // namespace
}  // namespace pyminidl::kernels
