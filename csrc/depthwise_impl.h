// depthwise_impl.h — the bodies of the NHWC depthwise convolution kernels, compiled once per
// instruction set: depthwise.cpp (baseline x86-64, and every non-x86 target),
// depthwise_avx2.cpp and depthwise_avx512.cpp include this file and nothing else defines these.
//
// Layout: x/dx (N, H, W, C), y/dy (N, OH, OW, C*M), kernel (KH, KW, C, M). The lanes of every
// inner loop are input channels, in blocks of 16 held in registers across a cell's taps
// (channel_blocks.h); output channel c*M + m is then a stride-M access (contiguous for the
// common M = 1, compiled as its own copy), and the kernel is first copied to (KH, KW, M, C)
// (channel_major) so that its loads are contiguous too.
//
// Padded cells are zeros that are multiplied like any other: a padded tap adds 0 * w (forward)
// or 0 * dy (weight gradient), so an Inf or NaN there gives NaN exactly where the zero-padded
// reference (and PyTorch) gives it.
//
// Determinism: the forward runs parallel over (n, oh) output rows, the input gradient over
// (n, ih) input rows, each cell gathering its taps in (kh, kw, m) order: no thread writes
// another's cells. The weight gradient splits the (n, oh) rows into depthwise_weight_chunks(g)
// chunks fixed by the geometry alone, sums each chunk row by row (each row's sum over ow, then
// added to the chunk's total) into its own slice of the caller's work, then adds the chunks in
// ascending order: the same bits at every thread
// count. Every channel is computed on its own, in the same order on every path, and the files
// are built with -ffp-contract=off: the AVX2 and AVX-512 copies return the baseline's bits.
//
// Internal linkage (an anonymous namespace), as pool_impl.h.
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "channel_blocks.h"
#include "depthwise.h"

namespace pyminidl::kernels {
namespace {

using Unit = std::integral_constant<int64_t, 1>;  // depth_multiplier 1: contiguous outputs

struct Span {
    int64_t lo, hi;  // [lo, hi)
};

// The outputs o in [0, out) whose tap k reads inside [0, size): o * s - p + k * d in range.
inline Span reading_inside(int64_t k, int64_t s, int64_t p, int64_t d, int64_t size, int64_t out) {
    const int64_t off = k * d - p;  // input index of output 0
    const int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
    const int64_t hi = size - 1 - off < 0 ? 0 : (size - 1 - off) / s + 1;
    return {std::min(lo, out), std::clamp<int64_t>(hi, std::min(lo, out), out)};
}

inline bool worth_threads(int64_t work) { return work > PARALLEL_GRAIN; }

// Full blocks of LANES channels run on channel_blocks.h's native vectors (VecF), whose
// accumulators stay in registers across the taps.

// Every loop over a block's vectors or a group's cells unrolled, so no array of vectors is
// indexed at run time (that would keep it on the stack).
#define PMD_UNROLL _Pragma("GCC unroll 16")

struct Block {
    VecF v[NVEC];
};

// One vector at a time: a single memcpy of the whole block went through the stack in 16-byte
// pieces, read back as full vectors (a store-forwarding stall per load).
PMD_ALWAYS_INLINE Block load(const float* p) {
    Block b;
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) std::memcpy(&b.v[u], p + u * VEC, sizeof(VecF));
    return b;
}
PMD_ALWAYS_INLINE void store(float* p, const Block& b) {
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) std::memcpy(p + u * VEC, &b.v[u], sizeof(VecF));
}
PMD_ALWAYS_INLINE void mul_add(Block& acc, const Block& a, const Block& b) {
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) acc.v[u] += a.v[u] * b.v[u];
}
PMD_ALWAYS_INLINE Block zero_block() {
    Block b;
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) b.v[u] = VecF{};
    return b;
}

// w (KH*KW, C, M) -> work (KH*KW, M, C), so each multiplier's column is contiguous over
// channels; M = 1 needs no copy.
const float* channel_major(const float* w, const DepthwiseGeom& g, float* work) {
    if (g.m == 1) return w;
    for (int64_t t = 0; t < g.kh * g.kw; ++t)
        for (int64_t c = 0; c < g.c; ++c)
            for (int64_t j = 0; j < g.m; ++j) work[(t * g.m + j) * g.c + c] = w[(t * g.c + c) * g.m + j];
    return work;
}

// y: one output cell at channel (j, m) (stride M between lanes); img: (H, W, C) at channel j;
// wt: (taps, M, C) at (tap 0, m, j); (ih0, iw0): the input cell of tap (0, 0).
// y = sum over taps in (kh, kw) order of x * w, then + b.
template <typename M, typename N>
PMD_ALWAYS_INLINE void forward_lanes(float* PMD_RESTRICT y, const float* PMD_RESTRICT img,
                                     const float* PMD_RESTRICT wt, const float* PMD_RESTRICT b,
                                     const DepthwiseGeom& g, int64_t ih0, int64_t iw0, M mult, N n) {
    float acc[LANES];
    for (int64_t l = 0; l < n; ++l) acc[l] = 0.0f;
    for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = ih0 + kh * g.dh;
        const bool row_in = ih >= 0 && ih < g.h;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
            const int64_t iw = iw0 + kw * g.dw;
            const float* PMD_RESTRICT wp = wt + (kh * g.kw + kw) * mult * g.c;
            if (row_in && iw >= 0 && iw < g.w) {
                const float* PMD_RESTRICT p = img + (ih * g.w + iw) * g.c;
                for (int64_t l = 0; l < n; ++l) acc[l] += p[l] * wp[l];
            } else {
                for (int64_t l = 0; l < n; ++l) acc[l] += 0.0f * wp[l];
            }
        }
    }
    if (b != nullptr) {
        for (int64_t l = 0; l < n; ++l) y[l * mult] = acc[l] + b[l * mult];
    } else {
        for (int64_t l = 0; l < n; ++l) y[l * mult] = acc[l];
    }
}

// forward_lanes for a full block of contiguous outputs (M = 1).
PMD_ALWAYS_INLINE void forward_lanes(float* PMD_RESTRICT y, const float* PMD_RESTRICT img,
                                     const float* PMD_RESTRICT wt, const float* PMD_RESTRICT b,
                                     const DepthwiseGeom& g, int64_t ih0, int64_t iw0, Unit, FullBlock) {
    Block acc = zero_block();
    const Block none = zero_block();
    for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = ih0 + kh * g.dh;
        const bool row_in = ih >= 0 && ih < g.h;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
            const int64_t iw = iw0 + kw * g.dw;
            const Block wv = load(wt + (kh * g.kw + kw) * g.c);
            mul_add(acc, row_in && iw >= 0 && iw < g.w ? load(img + (ih * g.w + iw) * g.c) : none, wv);
        }
    }
    if (b != nullptr) {
        const Block bv = load(b);
        PMD_UNROLL for (int u = 0; u < NVEC; ++u) acc.v[u] += bv.v[u];
    }
    store(y, acc);
}

// QUAD adjacent output cells (ow .. ow + QUAD - 1) of a full block with M = 1 whose tap columns
// all lie inside the image: each weight is loaded once for the QUAD cells, and their sums are
// independent chains. Per cell the same sums in the same order as forward_lanes.
constexpr int64_t QUAD = 4;

PMD_ALWAYS_INLINE void forward_quad(float* PMD_RESTRICT y, const float* PMD_RESTRICT img,
                                    const float* PMD_RESTRICT wt, const float* PMD_RESTRICT b,
                                    const DepthwiseGeom& g, int64_t ih0, int64_t iw0) {
    Block acc[QUAD];
    PMD_UNROLL for (auto& a : acc) a = zero_block();
    const Block none = zero_block();
    for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = ih0 + kh * g.dh;
        const bool row_in = ih >= 0 && ih < g.h;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
            const Block wv = load(wt + (kh * g.kw + kw) * g.c);
            if (row_in) {
                const float* PMD_RESTRICT p = img + (ih * g.w + iw0 + kw * g.dw) * g.c;
                PMD_UNROLL for (int64_t q = 0; q < QUAD; ++q) mul_add(acc[q], load(p + q * g.sw * g.c), wv);
            } else {
                PMD_UNROLL for (int64_t q = 0; q < QUAD; ++q) mul_add(acc[q], none, wv);
            }
        }
    }
    PMD_UNROLL for (int64_t q = 0; q < QUAD; ++q) {
        if (b != nullptr) {
            const Block bv = load(b);
            PMD_UNROLL for (int u = 0; u < NVEC; ++u) acc[q].v[u] += bv.v[u];
        }
        store(y + q * g.c, acc[q]);
    }
}

template <typename M>
void forward_rows(float* y, const float* x, const float* wt, const float* b, const DepthwiseGeom& g, M mult) {
    const int64_t rows = g.n * g.oh, cm = g.c * mult;
    // The outputs whose every tap column is inside the image (empty when none is).
    const Span first = reading_inside(0, g.sw, g.pw, g.dw, g.w, g.ow);
    const Span last = reading_inside(g.kw - 1, g.sw, g.pw, g.dw, g.w, g.ow);
    const Span inner{std::max(first.lo, last.lo), std::max(std::min(first.hi, last.hi), std::max(first.lo, last.lo))};
#pragma omp parallel for schedule(static) if (worth_threads(rows * g.ow * cm * g.kh * g.kw))
    for (int64_t t = 0; t < rows; ++t) {
        const float* img = x + (t / g.oh) * g.h * g.w * g.c;
        const int64_t ih0 = (t % g.oh) * g.sh - g.ph;
        for (int64_t ow = 0; ow < g.ow;) {
            float* cell = y + (t * g.ow + ow) * cm;
            const int64_t iw0 = ow * g.sw - g.pw;
            if constexpr (std::is_same_v<M, Unit>) {
                if (ow >= inner.lo && ow + QUAD <= inner.hi) {
                    channel_blocks(g.c, [&](int64_t j, auto n) {
                        if constexpr (std::is_same_v<decltype(n), FullBlock>) {
                            forward_quad(cell + j, img + j, wt + j, b == nullptr ? nullptr : b + j, g, ih0, iw0);
                        } else {
                            PMD_UNROLL for (int64_t q = 0; q < QUAD; ++q)
                                forward_lanes(cell + q * cm + j, img + j, wt + j, b == nullptr ? nullptr : b + j, g,
                                              ih0, iw0 + q * g.sw, mult, n);
                        }
                    });
                    ow += QUAD;
                    continue;
                }
            }
            for (int64_t m = 0; m < mult; ++m) {
                channel_blocks(g.c, [&](int64_t j, auto n) {
                    forward_lanes(cell + j * mult + m, img + j, wt + m * g.c + j,
                                  b == nullptr ? nullptr : b + j * mult + m, g, ih0, iw0, mult, n);
                });
            }
            ++ow;
        }
    }
}

void depthwise_forward_impl(float* y, const float* x, const float* w, const float* b, const DepthwiseGeom& g,
                            float* work) {
    const float* wt = channel_major(w, g, work);
    if (g.m == 1) {
        forward_rows(y, x, wt, b, g, Unit{});
    } else {
        forward_rows(y, x, wt, b, g, g.m);
    }
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

// dx: one input cell at channel j; dyimg: (OH, OW, C*M) at channel j*M; wt: (taps, M, C) at j.
// dx = sum over the cell's taps in (kh, kw) order, then m ascending, of dy * w.
template <typename M, typename N>
PMD_ALWAYS_INLINE void input_lanes(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dyimg,
                                   const float* PMD_RESTRICT wt, const DepthwiseGeom& g, const std::vector<Tap>& rt,
                                   const Tap* ct, int64_t nct, M mult, N n) {
    const int64_t cm = g.c * mult;
    float acc[LANES];
    for (int64_t l = 0; l < n; ++l) acc[l] = 0.0f;
    for (const Tap& r : rt) {
        for (int64_t q = 0; q < nct; ++q) {
            const float* PMD_RESTRICT d = dyimg + (r.o * g.ow + ct[q].o) * cm;
            const float* PMD_RESTRICT wp = wt + (r.k * g.kw + ct[q].k) * mult * g.c;
            for (int64_t m = 0; m < mult; ++m) {
                for (int64_t l = 0; l < n; ++l) acc[l] += d[l * mult + m] * wp[m * g.c + l];
            }
        }
    }
    for (int64_t l = 0; l < n; ++l) dx[l] = acc[l];
}

// input_lanes for a full block with M = 1 (contiguous dy).
PMD_ALWAYS_INLINE void input_lanes(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dyimg,
                                   const float* PMD_RESTRICT wt, const DepthwiseGeom& g, const std::vector<Tap>& rt,
                                   const Tap* ct, int64_t nct, Unit, FullBlock) {
    Block acc = zero_block();
    for (const Tap& r : rt) {
        for (int64_t q = 0; q < nct; ++q) {
            mul_add(acc, load(dyimg + (r.o * g.ow + ct[q].o) * g.c), load(wt + (r.k * g.kw + ct[q].k) * g.c));
        }
    }
    store(dx, acc);
}

// QUAD adjacent input cells (iw .. iw + QUAD - 1) of a full block with M = 1 and width stride 1,
// every kernel column reaching an output: each weight loaded once for the QUAD cells. Per cell the
// same taps in the same order as input_lanes (rows rt, then kw ascending).
PMD_ALWAYS_INLINE void input_quad(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dyimg,
                                  const float* PMD_RESTRICT wt, const DepthwiseGeom& g, const std::vector<Tap>& rt,
                                  int64_t iw) {
    Block acc[QUAD];
    PMD_UNROLL for (auto& a : acc) a = zero_block();
    for (const Tap& r : rt) {
        for (int64_t kw = 0; kw < g.kw; ++kw) {
            const Block wv = load(wt + (r.k * g.kw + kw) * g.c);
            const float* PMD_RESTRICT p = dyimg + (r.o * g.ow + iw + g.pw - kw * g.dw) * g.c;
            PMD_UNROLL for (int64_t q = 0; q < QUAD; ++q) mul_add(acc[q], load(p + q * g.c), wv);
        }
    }
    PMD_UNROLL for (int64_t q = 0; q < QUAD; ++q) store(dx + q * g.c, acc[q]);
}

template <typename M>
void input_rows(float* dx, const float* dy, const float* wt, const DepthwiseGeom& g, M mult) {
    // Every column's taps once per call, flattened: col_taps[col_start[iw] .. col_start[iw + 1]).
    std::vector<Tap> col_taps, one;
    std::vector<int64_t> col_start{0};
    for (int64_t iw = 0; iw < g.w; ++iw) {
        taps_of(one, iw, g.kw, g.sw, g.pw, g.dw, g.ow);
        col_taps.insert(col_taps.end(), one.begin(), one.end());
        col_start.push_back(int64_t(col_taps.size()));
    }
    const int64_t rows = g.n * g.h, out_image = g.oh * g.ow * g.c * mult;
    // With stride 1: the input columns every kernel column reaches (iw + PW - kw * DW in [0, OW)).
    const int64_t inner_lo = (g.kw - 1) * g.dw - g.pw, inner_hi = g.ow - g.pw;
#pragma omp parallel if (worth_threads(rows * g.w * g.c * mult * g.kh * g.kw))
    {
        std::vector<Tap> rt;  // per thread: the taps of one input row
#pragma omp for schedule(static)
        for (int64_t t = 0; t < rows; ++t) {
            taps_of(rt, t % g.h, g.kh, g.sh, g.ph, g.dh, g.oh);
            const float* dyimg = dy + (t / g.h) * out_image;
            for (int64_t iw = 0; iw < g.w; ++iw) {
                if constexpr (std::is_same_v<M, Unit>) {
                    if (g.sw == 1 && iw >= inner_lo && iw + QUAD <= inner_hi) {
                        float* cell = dx + (t * g.w + iw) * g.c;
                        channel_blocks(g.c, [&](int64_t j, auto n) {
                            if constexpr (std::is_same_v<decltype(n), FullBlock>) {
                                input_quad(cell + j, dyimg + j, wt + j, g, rt, iw);
                            } else {
                                PMD_UNROLL for (int64_t q = 0; q < QUAD; ++q)
                                    input_lanes(cell + q * g.c + j, dyimg + j, wt + j, g, rt,
                                                col_taps.data() + col_start[iw + q], g.kw, mult, n);
                            }
                        });
                        iw += QUAD - 1;
                        continue;
                    }
                }
                const Tap* ct = col_taps.data() + col_start[iw];
                const int64_t nct = col_start[iw + 1] - col_start[iw];
                channel_blocks(g.c, [&](int64_t j, auto n) {
                    input_lanes(dx + (t * g.w + iw) * g.c + j, dyimg + j * mult, wt + j, g, rt, ct, nct, mult, n);
                });
            }
        }
    }
}

void depthwise_backward_input_impl(float* dx, const float* dy, const float* w, const DepthwiseGeom& g,
                                   float* work) {
    const float* wt = channel_major(w, g, work);
    if (g.m == 1) {
        input_rows(dx, dy, wt, g, Unit{});
    } else {
        input_rows(dx, dy, wt, g, g.m);
    }
}

// tot: (n,) running sums at channel j of one tap (kh, kw) and multiplier m; x: (N, H, W, C) at
// channel j; dy: (N, OH, OW, C*M) at channel (j, m); cols: the outputs whose tap kw reads inside
// the image. Adds the sum over ow, ascending, of output row r's x(tap cell) * dy to tot (a padded
// tap cell adds 0 * dy). Row by row with every tap of the row in turn, so a row of x and dy is
// read from L1 for all the taps.
template <typename M, typename N>
PMD_ALWAYS_INLINE void weight_row_lanes(float* PMD_RESTRICT tot, const float* PMD_RESTRICT x,
                                        const float* PMD_RESTRICT dy, const DepthwiseGeom& g, int64_t r, int64_t kh,
                                        int64_t kw, Span cols, M mult, N n) {
    const int64_t cm = g.c * mult, ih = (r % g.oh) * g.sh - g.ph + kh * g.dh;
    const Span q = ih >= 0 && ih < g.h ? cols : Span{g.ow, g.ow};
    const float* PMD_RESTRICT drow = dy + r * g.ow * cm;
    const int64_t row = ((r / g.oh) * g.h + ih) * g.w;  // used only inside q
    float acc[LANES];
    for (int64_t l = 0; l < n; ++l) acc[l] = 0.0f;
    for (int64_t ow = 0; ow < q.lo; ++ow)
        for (int64_t l = 0; l < n; ++l) acc[l] += 0.0f * drow[ow * cm + l * mult];
    for (int64_t ow = q.lo; ow < q.hi; ++ow) {
        const float* PMD_RESTRICT p = x + (row + ow * g.sw - g.pw + kw * g.dw) * g.c;
        for (int64_t l = 0; l < n; ++l) acc[l] += p[l] * drow[ow * cm + l * mult];
    }
    for (int64_t ow = q.hi; ow < g.ow; ++ow)
        for (int64_t l = 0; l < n; ++l) acc[l] += 0.0f * drow[ow * cm + l * mult];
    for (int64_t l = 0; l < n; ++l) tot[l] += acc[l];
}

// weight_row_lanes for a full block with M = 1 (contiguous dy): the same sums.
PMD_ALWAYS_INLINE void weight_row_lanes(float* PMD_RESTRICT tot, const float* PMD_RESTRICT x,
                                        const float* PMD_RESTRICT dy, const DepthwiseGeom& g, int64_t r, int64_t kh,
                                        int64_t kw, Span cols, Unit, FullBlock) {
    const int64_t ih = (r % g.oh) * g.sh - g.ph + kh * g.dh;
    const Span q = ih >= 0 && ih < g.h ? cols : Span{g.ow, g.ow};
    const float* PMD_RESTRICT drow = dy + r * g.ow * g.c;
    const int64_t row = ((r / g.oh) * g.h + ih) * g.w;  // used only inside q
    Block acc = zero_block();
    const Block none = zero_block();
    for (int64_t ow = 0; ow < q.lo; ++ow) mul_add(acc, none, load(drow + ow * g.c));
    for (int64_t ow = q.lo; ow < q.hi; ++ow)
        mul_add(acc, load(x + (row + ow * g.sw - g.pw + kw * g.dw) * g.c), load(drow + ow * g.c));
    for (int64_t ow = q.hi; ow < g.ow; ++ow) mul_add(acc, none, load(drow + ow * g.c));
    Block t = load(tot);
    PMD_UNROLL for (int u = 0; u < NVEC; ++u) t.v[u] += acc.v[u];
    store(tot, t);
}

// part: (chunks, taps, M, C). Item (chunk k, channel block j) sums the chunk's rows into its slice.
template <typename M>
void weight_chunks(float* part, const float* dy, const float* x, const DepthwiseGeom& g, M mult) {
    const int64_t rows = g.n * g.oh, chunks = depthwise_weight_chunks(g), taps = g.kh * g.kw;
    const int64_t blocks = (g.c + LANES - 1) / LANES;
    std::vector<Span> cols(size_t(g.kw));
    for (int64_t kw = 0; kw < g.kw; ++kw) cols[kw] = reading_inside(kw, g.sw, g.pw, g.dw, g.w, g.ow);
#pragma omp parallel for schedule(static) if (worth_threads(rows * g.ow * g.c * mult * taps))
    for (int64_t item = 0; item < chunks * blocks; ++item) {
        const int64_t k = item / blocks, j = (item % blocks) * LANES;
        const int64_t r0 = k * rows / chunks, r1 = (k + 1) * rows / chunks;
        auto run = [&](auto n) {
            float* slice = part + k * taps * mult * g.c + j;
            for (int64_t t = 0; t < taps * mult; ++t)
                for (int64_t l = 0; l < n; ++l) slice[t * g.c + l] = 0.0f;
            for (int64_t m = 0; m < mult; ++m) {
                for (int64_t r = r0; r < r1; ++r) {
                    for (int64_t t = 0; t < taps; ++t) {
                        weight_row_lanes(slice + (t * mult + m) * g.c, x + j, dy + j * mult + m, g, r, t / g.kw,
                                         t % g.kw, cols[t % g.kw], mult, n);
                    }
                }
            }
        };
        if (j + LANES <= g.c) {
            run(FullBlock{});
        } else {
            run(g.c - j);
        }
    }
}

void depthwise_backward_weight_impl(float* dw, const float* dy, const float* x, const DepthwiseGeom& g,
                                    float* work) {
    if (g.m == 1) {
        weight_chunks(work, dy, x, g, Unit{});
    } else {
        weight_chunks(work, dy, x, g, g.m);
    }
    // dw[t, c, m] = the chunks' partial sums (t, m, c) added in ascending chunk order.
    const int64_t chunks = depthwise_weight_chunks(g), slice = g.kh * g.kw * g.m * g.c;
#pragma omp parallel for schedule(static) if (worth_threads(slice * chunks))
    for (int64_t t = 0; t < g.kh * g.kw; ++t) {
        for (int64_t c = 0; c < g.c; ++c) {
            for (int64_t m = 0; m < g.m; ++m) {
                float s = 0.0f;
                for (int64_t k = 0; k < chunks; ++k) s += work[k * slice + (t * g.m + m) * g.c + c];
                dw[(t * g.c + c) * g.m + m] = s;
            }
        }
    }
}

}  // namespace
}  // namespace pyminidl::kernels
