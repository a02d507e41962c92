// depthwise_impl.h — the bodies of the NHWC depthwise convolution kernels, compiled once per
// instruction set: depthwise.cpp (baseline x86-64, and every non-x86 target),
// depthwise_avx2.cpp and depthwise_avx512.cpp include this file and nothing else defines these.
//
// Layout: x/dx (N, H, W, C), y/dy (N, OH, OW, C*M), kernel (KH, KW, C, M) = (taps, C*M). The
// kernels run on the C*M output channels as lanes, in blocks of 16 held in registers across a
// cell's taps (channel_blocks.h), the last C*M % 16 lanes of a row as the same code on masked
// loads and stores (AVX-512 masks, AVX2 vmaskmov, a lane loop on the baseline). A multiplier
// M > 1 is the same kernel on C*M channels: the forward and the weight gradient read x expanded
// to (N, H, W, C*M) in the caller's work (channel c*M + m holds x channel c), the input gradient
// writes each row's C*M sums to a per-thread row and adds every channel's M of them.
//
// Register blocking: CELLS output cells of a row share each weight load in the forward (cells
// ow .. ow + CELLS - 1, their taps all inside the image), CELLS input cells of a width parity
// class (iw, iw + SW, ...: the same kernel columns reach them, at consecutive outputs) in the
// input gradient, and the weight gradient sums up to TAP_GROUP taps (a 3 x 3 kernel on AVX-512)
// at once from one load of each dy cell.
//
// Padded cells are zeros that are multiplied like any other: a padded tap adds 0 * w (forward)
// or 0 * dy (weight gradient), so an Inf or NaN there gives NaN exactly where the zero-padded
// reference (and PyTorch) gives it.
//
// Determinism: the forward runs parallel over (n, oh) output rows, the input gradient over
// (n, ih) input rows, each cell gathering its taps in (kh, kw) order (and then, with M > 1, its
// M channels' sums in m order): no thread writes another's cells. The weight gradient splits the
// (n, oh) rows into depthwise_weight_chunks(g) chunks fixed by the geometry alone, sums each
// chunk row by row (each row's sum over ow, ascending, then added to the chunk's total) into its
// own slice of the caller's work, then adds the chunks in ascending order: the same bits at
// every thread count. The bias gradient (the sum of dy) rides along the first tap group's pass
// over dy, in the same order. Every lane is computed on its own, in the same order on every path and
// whatever the blocking, and the files are built with -ffp-contract=off: the AVX2 and AVX-512
// copies return the baseline's bits.
//
// Internal linkage (an anonymous namespace), as pool_impl.h.
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "channel_blocks.h"
#include "depthwise.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace {

struct Span {
    int64_t lo, hi;  // [lo, hi)
};

// The outputs o in [0, out) whose tap k reads inside [0, size): o * s - p + k * d in range.
inline Span reading_inside(int64_t k, int64_t s, int64_t p, int64_t d, int64_t size, int64_t out) {
    const int64_t off = k * d - p;  // input index of output 0
    const int64_t lo = off >= 0 ? 0 : ceil_div(-off, s);
    const int64_t hi = size - 1 - off < 0 ? 0 : (size - 1 - off) / s + 1;
    return {std::min(lo, out), std::clamp<int64_t>(hi, std::min(lo, out), out)};
}

inline Span intersect(Span a, Span b) {
    const int64_t lo = std::max(a.lo, b.lo);
    return {lo, std::max(lo, std::min(a.hi, b.hi))};
}

inline bool worth_threads(int64_t work) { return work > PARALLEL_GRAIN; }

// Cells per register block: 8 zmm accumulators on AVX-512, 4 x 2 ymm on AVX2 (16 registers).
constexpr int64_t CELLS = VEC == 16 ? 8 : 4;
// Weight-gradient taps per pass over a row: 9 zmm sums (a 3 x 3 kernel at once), 4 x 2 ymm.
constexpr int64_t TAP_GROUP = VEC == 16 ? 9 : 4;
// Channels per weight-gradient item: its rows' blocks read adjacent lines of the same cells.
constexpr int64_t ROW_CHANNELS = 4 * LANES;

template <int64_t Q>
using Cells = std::integral_constant<int64_t, Q>;

// Calls f(Cells<Q>) for the largest Q in {CELLS, ..., 4, 2, 1} <= count (>= 1) and returns Q: a
// run of cells goes in groups, its last few in smaller ones (a lone cell's taps are one chain of
// dependent adds, a group's are Q independent chains).
template <typename F>
PMD_ALWAYS_INLINE int64_t cell_group(int64_t count, F f) {
    if constexpr (CELLS >= 8) {
        if (count >= 8) return f(Cells<8>{}), 8;
    }
    if (count >= 4) return f(Cells<4>{}), 4;
    if (count >= 2) return f(Cells<2>{}), 2;
    return f(Cells<1>{}), 1;
}

// Every loop over a block's vectors or a group's cells unrolled, so no array of vectors is
// indexed at run time (that would keep it on the stack).
#define PMD_UNROLL _Pragma("GCC unroll 16")

struct Block {
    VecF v[NVEC];
};

// One vector at a time: a single memcpy of the whole block went through the stack in 16-byte
// pieces, read back as full vectors (a store-forwarding stall per load).
PMD_ALWAYS_INLINE Block load(const float* p, FullBlock) {
    Block b;
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) std::memcpy(&b.v[u], p + u * VEC, sizeof(VecF));
    return b;
}
PMD_ALWAYS_INLINE void store(float* p, const Block& b, FullBlock) {
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) std::memcpy(p + u * VEC, &b.v[u], sizeof(VecF));
}

// The first n < LANES lanes (the others load as zeros and are never stored): masked accesses
// touch no float past p[n - 1].
PMD_ALWAYS_INLINE Block load(const float* p, int64_t n) {
    Block b;
#if defined(__AVX512F__)
    b.v[0] = (VecF)_mm512_maskz_loadu_ps(__mmask16((1u << n) - 1u), p);
#elif defined(__AVX2__)
    const VecI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) {
        const VecI mask = iota < (VecI{} + int32_t(n - u * VEC));
        b.v[u] = (VecF)_mm256_maskload_ps(p + u * VEC, (__m256i)mask);
    }
#else
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) {
        b.v[u] = VecF{};
        for (int l = 0; l < VEC && u * VEC + l < n; ++l) b.v[u][l] = p[u * VEC + l];
    }
#endif
    return b;
}
PMD_ALWAYS_INLINE void store(float* p, const Block& b, int64_t n) {
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1u), (__m512)b.v[0]);
#elif defined(__AVX2__)
    const VecI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) {
        const VecI mask = iota < (VecI{} + int32_t(n - u * VEC));
        _mm256_maskstore_ps(p + u * VEC, (__m256i)mask, (__m256)b.v[u]);
    }
#else
    PMD_UNROLL for (int u = 0; u < NVEC; ++u)
        for (int l = 0; l < VEC && u * VEC + l < n; ++l) p[u * VEC + l] = b.v[u][l];
#endif
}

PMD_ALWAYS_INLINE void mul_add(Block& acc, const Block& a, const Block& b) {
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) acc.v[u] += a.v[u] * b.v[u];
}
PMD_ALWAYS_INLINE void add(Block& acc, const Block& a) {
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) acc.v[u] += a.v[u];
}
PMD_ALWAYS_INLINE Block zero_block() {
    Block b;
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) b.v[u] = VecF{};
    return b;
}

// The geometry on the C*M output channels with M = 1 (lanes = g.c afterwards).
DepthwiseGeom lanes_geom(const DepthwiseGeom& g) {
    DepthwiseGeom e = g;
    e.c = g.c * g.m;
    e.m = 1;
    return e;
}

// work (N, H, W, C*M): channel c*M + m = x channel c. M = 1 reads x as it is.
const float* expand_channels(const float* x, const DepthwiseGeom& g, float* work) {
    if (g.m == 1) return x;
    const int64_t cells = g.n * g.h * g.w;
    team_region(threads_if(worth_threads(cells * g.c * g.m)), [&] {
#pragma omp for schedule(static)
        for (int64_t p = 0; p < cells; ++p)
            for (int64_t c = 0; c < g.c; ++c)
                for (int64_t m = 0; m < g.m; ++m) work[(p * g.c + c) * g.m + m] = x[p * g.c + c];
    });
    return work;
}

// Q output cells iw0 + q * SW (of adjacent outputs y + q * C) of lanes [j, j + n) (pointers at j).
// img: (H, W, C); wt: (taps, C); (ih0, iw0): the input cell of tap (0, 0) of cell 0. CHECK tests
// each tap's column (Q = 1 at the borders); without it every column is inside.
// y = sum over taps in (kh, kw) order of x * w, then + b.
template <int64_t Q, bool CHECK, typename N>
PMD_ALWAYS_INLINE void forward_cells(float* PMD_RESTRICT y, const float* PMD_RESTRICT img,
                                     const float* PMD_RESTRICT wt, const float* PMD_RESTRICT b,
                                     const DepthwiseGeom& g, int64_t ih0, int64_t iw0, N n) {
    Block acc[Q];
    PMD_UNROLL for (auto& a : acc) a = zero_block();
    const Block none = zero_block();
    for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = ih0 + kh * g.dh;
        const bool row_in = ih >= 0 && ih < g.h;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
            const int64_t iw = iw0 + kw * g.dw;
            const Block wv = load(wt + (kh * g.kw + kw) * g.c, n);
            if (row_in && (!CHECK || (iw >= 0 && iw < g.w))) {
                const float* PMD_RESTRICT p = img + (ih * g.w + iw) * g.c;
                PMD_UNROLL for (int64_t q = 0; q < Q; ++q) mul_add(acc[q], load(p + q * g.sw * g.c, n), wv);
            } else {
                PMD_UNROLL for (int64_t q = 0; q < Q; ++q) mul_add(acc[q], none, wv);
            }
        }
    }
    PMD_UNROLL for (int64_t q = 0; q < Q; ++q) {
        if (b != nullptr) add(acc[q], load(b, n));
        store(y + q * g.c, acc[q], n);
    }
}

// g on lanes (M = 1): y (N, OH, OW, C), x (N, H, W, C), wt (taps, C).
void forward_rows(float* y, const float* x, const float* wt, const float* b, const DepthwiseGeom& g) {
    const int64_t rows = g.n * g.oh;
    // The outputs whose every tap column is inside the image (empty when none is).
    const Span inner = intersect(reading_inside(0, g.sw, g.pw, g.dw, g.w, g.ow),
                                 reading_inside(g.kw - 1, g.sw, g.pw, g.dw, g.w, g.ow));
    // A strided group of 8 reads 8 * SW + KW - 2 columns of KH rows: at 256 channels of a 28-wide
    // image (column stride 1 KiB, row stride 7 times L1's 4 KiB set span) a block's 3 x 17 lines
    // fall in 4 sets, past their 12 ways; a group of 4 puts 7 lines in each.
    const int64_t most = g.sw == 1 ? CELLS : 4;
    team_region(threads_if(worth_threads(rows * g.ow * g.c * g.kh * g.kw)), [&] {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < rows; ++t) {
            const float* img = x + (t / g.oh) * g.h * g.w * g.c;
            const int64_t ih0 = (t % g.oh) * g.sh - g.ph;
            for (int64_t ow = 0; ow < g.ow;) {
                float* cell = y + (t * g.ow + ow) * g.c;
                const int64_t iw0 = ow * g.sw - g.pw;
                const int64_t run = ow >= inner.lo ? inner.hi - ow : 0;  // cells from ow with every tap inside
                if (run > 0) {
                    ow += cell_group(std::min(run, most), [&](auto q) {
                        channel_blocks(g.c, [&](int64_t j, auto n) {
                            const float* bj = b == nullptr ? nullptr : b + j;
                            forward_cells<decltype(q)::value, false>(cell + j, img + j, wt + j, bj, g, ih0, iw0, n);
                        });
                    });
                } else {
                    channel_blocks(g.c, [&](int64_t j, auto n) {
                        forward_cells<1, true>(cell + j, img + j, wt + j, b == nullptr ? nullptr : b + j, g, ih0, iw0, n);
                    });
                    ++ow;
                }
            }
        }
    });
}

void depthwise_forward_impl(float* y, const float* x, const float* w, const float* b, const DepthwiseGeom& g,
                            float* work) {
    forward_rows(y, expand_channels(x, g, work), w, b, lanes_geom(g));
}

struct Tap {
    int64_t k, o;  // kernel index, the output it reaches
};

// The taps (k, o) along one axis by which input cell i reaches output o, k ascending.
void taps_of(std::vector<Tap>& out, int64_t i, int64_t k, int64_t s, int64_t p, int64_t d, int64_t n_out) {
    out.clear();
    for (int64_t t = 0; t < k; ++t) {
        const int64_t num = i + p - t * d;
        if (num >= 0 && num % s == 0 && num / s < n_out) out.push_back({t, num / s});
    }
}

// Whether every kernel tap congruent to input cell i (modulo the stride) reaches an output:
// then a run of complete cells i, i + s, i + 2s, ... shares those taps, at
// consecutive outputs.
bool complete_taps(int64_t i, int64_t k, int64_t s, int64_t p, int64_t d, int64_t n_out) {
    for (int64_t t = 0; t < k; ++t) {
        const int64_t num = i + p - t * d;
        if (((num % s) + s) % s == 0 && (num < 0 || num / s >= n_out)) return false;
    }
    return true;
}

// Q input cells iw + q * SW of lanes [j, j + n) (pointers at j) sharing the column taps ct (cell
// q reaches output ct.o + q). dx: cell 0 of a (W, C) row; dyimg: (OH, OW, C); wt: (taps, C).
// dx = sum over the cell's taps in (kh, kw) order of dy * w.
template <int64_t Q, typename N>
PMD_ALWAYS_INLINE void input_cells(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dyimg,
                                   const float* PMD_RESTRICT wt, const DepthwiseGeom& g, const std::vector<Tap>& rt,
                                   const Tap* ct, int64_t nct, N n) {
    Block acc[Q];
    PMD_UNROLL for (auto& a : acc) a = zero_block();
    for (const Tap& r : rt) {
        for (int64_t i = 0; i < nct; ++i) {
            const Block wv = load(wt + (r.k * g.kw + ct[i].k) * g.c, n);
            const float* PMD_RESTRICT p = dyimg + (r.o * g.ow + ct[i].o) * g.c;
            PMD_UNROLL for (int64_t q = 0; q < Q; ++q) mul_add(acc[q], load(p + q * g.c, n), wv);
        }
    }
    PMD_UNROLL for (int64_t q = 0; q < Q; ++q) store(dx + q * g.sw * g.c, acc[q], n);
}

// Every column's taps once per call, flattened: taps[start[iw] .. start[iw + 1]).
struct ColumnTaps {
    std::vector<Tap> taps;
    std::vector<int64_t> start{0};
    std::vector<int64_t> run;  // complete cells iw, iw + SW, ... in a row (complete_taps)
};

ColumnTaps column_taps(const DepthwiseGeom& g) {
    ColumnTaps ct;
    std::vector<Tap> one;
    for (int64_t iw = 0; iw < g.w; ++iw) {
        taps_of(one, iw, g.kw, g.sw, g.pw, g.dw, g.ow);
        ct.taps.insert(ct.taps.end(), one.begin(), one.end());
        ct.start.push_back(int64_t(ct.taps.size()));
    }
    ct.run.assign(size_t(g.w), 0);
    for (int64_t iw = g.w - 1; iw >= 0; --iw) {
        if (complete_taps(iw, g.kw, g.sw, g.pw, g.dw, g.ow)) ct.run[iw] = 1 + (iw + g.sw < g.w ? ct.run[iw + g.sw] : 0);
    }
    return ct;
}

// One input row's cells (W, C) on lanes: each width parity class iw = p, p + SW, ... in groups
// (cell_group) over its runs of complete cells, else cell by cell.
void input_row(float* dxrow, const float* dyimg, const float* wt, const DepthwiseGeom& g, const ColumnTaps& ct,
               const std::vector<Tap>& rt) {
    for (int64_t p = 0; p < std::min(g.sw, g.w); ++p) {
        for (int64_t iw = p; iw < g.w;) {
            const Tap* taps = ct.taps.data() + ct.start[iw];
            const int64_t nt = ct.start[iw + 1] - ct.start[iw];
            float* cell = dxrow + iw * g.c;
            iw += g.sw * cell_group(std::max<int64_t>(ct.run[iw], 1), [&](auto q) {
                channel_blocks(g.c, [&](int64_t j, auto n) {
                    input_cells<decltype(q)::value>(cell + j, dyimg + j, wt + j, g, rt, taps, nt, n);
                });
            });
        }
    }
}

// dx[c] = the sum over m ascending of row[c*M + m]; row: (W, C*M), dx: (W, C).
void add_multipliers(float* PMD_RESTRICT dx, const float* PMD_RESTRICT row, int64_t cells, int64_t m) {
    for (int64_t i = 0; i < cells; ++i) {
        float s = row[i * m];
        for (int64_t k = 1; k < m; ++k) s += row[i * m + k];
        dx[i] = s;
    }
}

void depthwise_backward_input_impl(float* dx, const float* dy, const float* w, const DepthwiseGeom& g, float*) {
    const DepthwiseGeom e = lanes_geom(g);
    const ColumnTaps ct = column_taps(e);
    const int64_t rows = g.n * g.h, out_image = e.oh * e.ow * e.c;
    team_region(threads_if(worth_threads(rows * e.w * e.c * e.kh * e.kw)), [&] {
        std::vector<Tap> rt;                                              // per thread: one input row's taps
        std::vector<float> lanes(size_t(g.m == 1 ? 0 : e.w * e.c));  // per thread: its C*M sums (M > 1)
#pragma omp for schedule(static)
        for (int64_t t = 0; t < rows; ++t) {
            taps_of(rt, t % g.h, g.kh, g.sh, g.ph, g.dh, g.oh);
            float* dxrow = dx + t * g.w * g.c;
            input_row(g.m == 1 ? dxrow : lanes.data(), dy + (t / g.h) * out_image, w, e, ct, rt);
            if (g.m > 1) add_multipliers(dxrow, lanes.data(), g.w * g.c, g.m);
        }
    });
}

// G taps t0 .. t0 + G - 1 (in (kh, kw) order) of output row r on lanes [j, j + n) (pointers at j):
// adds to tot[t] (taps, C) the sum over ow, ascending, of x(tap cell) * dy (a padded tap cell adds
// 0 * dy), and with `sum` the sum over ow of dy to tot[taps]. x: (N, H, W, C); dy: (N, OH, OW, C);
// cols: per kw, the outputs whose tap reads inside the image. One load of each dy cell serves the
// G taps, whose sums are G independent chains (one tap's chain of dependent adds ran at an add's
// latency per cell).
template <int64_t G, typename N>
PMD_ALWAYS_INLINE void weight_taps(float* PMD_RESTRICT tot, const float* PMD_RESTRICT x,
                                   const float* PMD_RESTRICT dy, const DepthwiseGeom& g, int64_t r, int64_t t0,
                                   const Span* cols, bool sum, N n) {
    const int64_t ih0 = (r % g.oh) * g.sh - g.ph;
    Span in[G];
    int64_t off[G];  // x offset of tap t0 + i's cell for output 0, from the row's (ih0, -pw) cell
    Span all{0, g.ow};
    PMD_UNROLL for (int64_t i = 0; i < G; ++i) {
        const int64_t kh = (t0 + i) / g.kw, kw = (t0 + i) % g.kw, ih = ih0 + kh * g.dh;
        in[i] = ih >= 0 && ih < g.h ? cols[kw] : Span{g.ow, g.ow};
        off[i] = (kh * g.dh * g.w + kw * g.dw) * g.c;
        all = intersect(all, in[i]);
    }
    const float* PMD_RESTRICT drow = dy + r * g.ow * g.c;
    // The (ih0, -pw) cell (used only with a tap's offset, inside the tap's span).
    const float* PMD_RESTRICT xrow = x + (((r / g.oh) * g.h + ih0) * g.w - g.pw) * g.c;
    const Block none = zero_block();
    Block acc[G];
    PMD_UNROLL for (auto& a : acc) a = zero_block();
    Block dsum = zero_block();
    auto checked = [&](int64_t ow) {
        const Block d = load(drow + ow * g.c, n);
        PMD_UNROLL for (int64_t i = 0; i < G; ++i) {
            const bool inside = ow >= in[i].lo && ow < in[i].hi;
            mul_add(acc[i], inside ? load(xrow + off[i] + ow * g.sw * g.c, n) : none, d);
        }
        if (sum) add(dsum, d);
    };
    const int64_t lo = all.hi == all.lo ? g.ow : all.lo;
    for (int64_t ow = 0; ow < lo; ++ow) checked(ow);
    for (int64_t ow = lo; ow < all.hi; ++ow) {
        const Block d = load(drow + ow * g.c, n);
        const float* PMD_RESTRICT p = xrow + ow * g.sw * g.c;
        PMD_UNROLL for (int64_t i = 0; i < G; ++i) mul_add(acc[i], load(p + off[i], n), d);
        if (sum) add(dsum, d);
    }
    for (int64_t ow = std::max(lo, all.hi); ow < g.ow; ++ow) checked(ow);
    auto add_to = [&](float* tp, const Block& a) {
        Block t = load(tp, n);
        add(t, a);
        store(tp, t, n);
    };
    PMD_UNROLL for (int64_t i = 0; i < G; ++i) add_to(tot + (t0 + i) * g.c, acc[i]);
    if (sum) add_to(tot + g.kh * g.kw * g.c, dsum);
}

// Calls f(Cells<k>) for k = count in [1, TAP_GROUP].
template <typename F>
PMD_ALWAYS_INLINE void tap_group(int64_t count, F f) {
    if constexpr (TAP_GROUP > 4) {
        switch (count) {
            case 9: return f(Cells<9>{});
            case 8: return f(Cells<8>{});
            case 7: return f(Cells<7>{});
            case 6: return f(Cells<6>{});
            case 5: return f(Cells<5>{});
            default: break;
        }
    }
    switch (count) {
        case 1: return f(Cells<1>{});
        case 2: return f(Cells<2>{});
        case 3: return f(Cells<3>{});
        default: return f(Cells<4>{});
    }
}

// Every tap of output row r in groups of up to TAP_GROUP taps; with `sum` the row's dy sum in the
// first group.
template <typename N>
PMD_ALWAYS_INLINE void weight_row(float* tot, const float* x, const float* dy, const DepthwiseGeom& g, int64_t r,
                                  const Span* cols, bool sum, N n) {
    const int64_t taps = g.kh * g.kw;
    for (int64_t t = 0; t < taps; t += TAP_GROUP) {
        const bool s = sum && t == 0;
        tap_group(std::min(TAP_GROUP, taps - t), [&](auto k) {
            weight_taps<decltype(k)::value>(tot, x, dy, g, r, t, cols, s, n);
        });
    }
}

// g on lanes. part: (chunks, taps + 1, C): each chunk's tap sums and, with `sum`, its dy sum.
// Item (chunk k, ROW_CHANNELS channels from c0) sums the chunk's rows into its slice, each row's
// channel blocks in turn: they read adjacent lines of the same cells (one block per item read
// 64 of every C * 4 bytes of x, a stride the hardware prefetcher does not follow).
void weight_chunks(float* part, const float* dy, const float* x, const DepthwiseGeom& g, bool sum) {
    const int64_t rows = g.n * g.oh, chunks = depthwise_weight_chunks(g), taps = g.kh * g.kw;
    const int64_t groups = ceil_div(g.c, ROW_CHANNELS);
    std::vector<Span> cols(size_t(g.kw));
    for (int64_t kw = 0; kw < g.kw; ++kw) cols[kw] = reading_inside(kw, g.sw, g.pw, g.dw, g.w, g.ow);
    team_region(threads_if(worth_threads(rows * g.ow * g.c * taps)), [&] {
#pragma omp for schedule(static)
        for (int64_t item = 0; item < chunks * groups; ++item) {
            const int64_t k = item / groups, c0 = (item % groups) * ROW_CHANNELS;
            const int64_t r0 = k * rows / chunks, r1 = (k + 1) * rows / chunks;
            const int64_t cn = std::min(ROW_CHANNELS, g.c - c0);
            float* slice = part + k * (taps + 1) * g.c + c0;
            channel_blocks(cn, [&](int64_t j, auto n) {
                for (int64_t t = 0; t <= taps; ++t) store(slice + t * g.c + j, zero_block(), n);
            });
            for (int64_t r = r0; r < r1; ++r) {
                channel_blocks(cn, [&](int64_t j, auto n) {
                    weight_row(slice + j, x + c0 + j, dy + c0 + j, g, r, cols.data(), sum, n);
                });
            }
        }
    });
}

void depthwise_backward_weight_impl(float* dw, float* db, const float* dy, const float* x, const DepthwiseGeom& g,
                                    float* work) {
    const DepthwiseGeom e = lanes_geom(g);
    const int64_t chunks = depthwise_weight_chunks(g), taps = e.kh * e.kw, slice = (taps + 1) * e.c;
    weight_chunks(work, dy, expand_channels(x, g, work + chunks * slice), e, db != nullptr);
    // dw (taps, C*M) and db (C*M) = the chunks' partial sums added in ascending chunk order.
    const int64_t outs = (db != nullptr ? taps + 1 : taps) * e.c;
    team_region(threads_if(worth_threads(outs * chunks)), [&] {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < outs; ++i) {
            float s = 0.0f;
            for (int64_t k = 0; k < chunks; ++k) s += work[k * slice + i];
            (i < taps * e.c ? dw[i] : db[i - taps * e.c]) = s;
        }
    });
}

}  // namespace
}  // namespace pyminidl::kernels
