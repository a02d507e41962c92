// conv_simd.h — the implicit-GEMM forward convolution, written once over a SIMD traits class S
// and compiled by conv_avx2.cpp (S = ymm) and conv_avx512.cpp (S = zmm), each with its own ISA
// flags, into the namespace PMD_CONV_ISA names. Internal: included by those two files only.
//
// The forward is the product of the patch matrix (pixels, KH*KW*C/G) with the kernel viewed as
// (KH*KW*C/G, F). im2col writes that patch matrix out and the GEMM reads it back; here a register
// tile of MR output pixels x NR filters reads the patches straight from the NHWC input instead:
// for each tap (kh, kw) every pixel's row pointer moves to its input pixel (or to a row of zeros
// when the tap falls in the padding; a tile with no tap in the padding steps all its pointers by
// the tap's offset instead), and the C/G channels of that tap are one stretch of k. The
// k order (tap, channel) is im2col's, with one fused multiply-add per product in a single running
// sum per output, as the GEMM's direct kernel does. The weight gradient's register tiles
// (wgrad_tile) and the copy of a band of input rows into channel planes that they read
// (conv_pad_band, W x W transposes in registers) are here too.
//
// The including file defines, in its namespace, Simd (the traits: V, Mask, W lanes, zero, loadu,
// bcast, fmadd, add, mask_for, maskz_loadu, mask_storeu, as gemm_simd.h's; storeu) and the tiles' rows:
// QUAD_MR (x 4 vectors of filters, for F/G a multiple of 4 W; 0: not used), WIDE_MR (x 2 vectors),
// WIDE_DEEP_MR (x 2 vectors where each tap has WIDE_DEEP_MIN_C or more channels; 0: not used) and
// NARROW_MR (x 1 vector, for F/G <= W).
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv_isa.h"

namespace pyminidl::kernels::PMD_CONV_ISA {
namespace {

constexpr int64_t WIDE_DEEP_MIN_C = 16;  // channels per tap from which WIDE_DEEP_MR's tile is used

// y: output pixels q0.. (counted over all images, n*OH*OW + pixel) at column j of the group (row
// stride F); xs: x at the group's first channel; wg: the kernel at filter column j; bg: the bias at
// j or nullptr. mr <= MR pixels, nr <= NV*W filters. FULL: nr == NV*W (no masks in the k loop). A
// tile may run on into the next image: 14x14's 196 pixels in tiles of 12 would leave 8 rows of
// the last tile of each image idle.
template <class S, int MR, int NV, bool FULL>
PMD_ALWAYS_INLINE void implicit_tile(float* y, const float* xs, const float* wg, const float* bg,
                                     const ConvGeom& g, const float* zeros, int64_t q0, int64_t mr,
                                     int64_t nr) {
    using V = typename S::V;
    const int64_t Cg = g.C / g.G;
    int64_t ih0[MR], iw0[MR];
    const float* xn[MR];
    // Pixel q0's (image, row, column), then stepped: two divisions per tile, not per pixel.
    int64_t n = q0 / (g.OH * g.OW), oh = q0 % (g.OH * g.OW) / g.OW, ow = q0 % g.OW;
    for (int i = 0; i < MR; ++i) {  // rows past mr repeat the last pixel and are not stored
        xn[i] = xs + n * g.H * g.W * g.C;
        ih0[i] = oh * g.SH - g.PH;
        iw0[i] = ow * g.SW - g.PW;
        if (i + 1 < mr && ++ow == g.OW) {
            ow = 0;
            if (++oh == g.OH) oh = 0, ++n;
        }
    }
    typename S::Mask m[NV];
    for (int v = 0; v < NV; ++v) m[v] = S::mask_for(nr - v * S::W);
    V acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
    // The products of one tap: row i's C/G channels from ar[i] + off (off: floats past each row
    // pointer) times the kernel's rows from bp.
    const auto tap = [&](const float* const (&ar)[MR], int64_t off, const float* bp) {
        for (int64_t c = 0; c < Cg; ++c, bp += g.F) {
            V bv[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) bv[v] = FULL ? S::loadu(bp + v * S::W) : S::maskz_loadu(m[v], bp + v * S::W);
#pragma GCC unroll 32
            for (int i = 0; i < MR; ++i) {
                const V a = S::bcast(ar[i] + off + c);
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(a, bv[v], acc[i][v]);
            }
        }
    };
    // A tile whose every tap of every row lies inside the image (a first layer's 28x28 'same':
    // about half the tiles of 12 pixels, most of 3) keeps one pointer per row and steps all of them
    // by the tap's offset: no bounds test per row and tap, the set-up that dominates when each tap
    // has 1-3 channels.
    bool inside = true;
    for (int i = 0; i < MR; ++i) {
        inside = inside && ih0[i] >= 0 && ih0[i] + (g.KH - 1) * g.DH < g.H && iw0[i] >= 0 &&
                 iw0[i] + (g.KW - 1) * g.DW < g.W;
    }
    if (inside) {
        const float* at[MR];
        for (int i = 0; i < MR; ++i) at[i] = xn[i] + (ih0[i] * g.W + iw0[i]) * g.C;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
            for (int64_t kw = 0; kw < g.KW; ++kw) {
                tap(at, (kh * g.DH * g.W + kw * g.DW) * g.C, wg + (kh * g.KW + kw) * Cg * g.F);
            }
        }
    } else {
        for (int64_t kh = 0; kh < g.KH; ++kh) {
            for (int64_t kw = 0; kw < g.KW; ++kw) {
                const float* ar[MR];
                for (int i = 0; i < MR; ++i) {
                    const int64_t ih = ih0[i] + kh * g.DH, iw = iw0[i] + kw * g.DW;
                    const bool in = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
                    ar[i] = in ? xn[i] + (ih * g.W + iw) * g.C : zeros;
                }
                tap(ar, 0, wg + (kh * g.KW + kw) * Cg * g.F);
            }
        }
    }
    V bias[NV];
    for (int v = 0; v < NV; ++v) bias[v] = bg != nullptr ? S::maskz_loadu(m[v], bg + v * S::W) : S::zero();
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
        if (i >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            const V r = bg != nullptr ? S::add(acc[i][v], bias[v]) : acc[i][v];
            float* p = y + (q0 + i) * g.F + v * S::W;
            FULL ? S::storeu(p, r) : S::mask_storeu(p, m[v], r);  // AVX2's masked store is slow on Zen
        }
    }
}

// Filter strips of NV*W outside, pixel tiles of MR inside: a strip of the kernel (KH*KW*C/G x
// NV*W) stays in cache while every tile of the rows reads it.
template <class S, int MR, int NV>
void implicit_rows(float* yn, const float* xn, const float* wg, const float* bg, const ConvGeom& g,
                   const float* zeros, int64_t p0, int64_t rows) {
    constexpr int NR = NV * S::W;
    const int64_t Fg = g.F / g.G;
    for (int64_t j = 0; j < Fg; j += NR) {
        const int64_t nr = std::min<int64_t>(NR, Fg - j);
        const float* bj = bg != nullptr ? bg + j : nullptr;
        for (int64_t q = p0; q < p0 + rows; q += MR) {
            const int64_t mr = std::min<int64_t>(MR, p0 + rows - q);
            if (nr == NR) {
                implicit_tile<S, MR, NV, true>(yn + j, xn, wg + j, bj, g, zeros, q, mr, nr);
            } else {
                implicit_tile<S, MR, NV, false>(yn + j, xn, wg + j, bj, g, zeros, q, mr, nr);
            }
        }
    }
}

// r[i] = row i of a W x W block of floats in, column i out: the unpack/shuffle network of 3 stages
// (AVX2: 2 stages and a cross-lane one). A template: each file instantiates only its own width.
template <class V>
PMD_ALWAYS_INLINE void transpose(V* r) {
    if constexpr (sizeof(V) == 64) {
        V t[16], u[16];
        for (int i = 0; i < 8; ++i) {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 4; ++i) {  // lane L of u[4i + j]: column 4L + j of rows 4i..4i+3
            u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
            u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
            u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
            u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
        }
        for (int j = 0; j < 4; ++j) {
            t[j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
            t[4 + j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
            t[8 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
            t[12 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        }
        for (int j = 0; j < 4; ++j) {
            r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
            r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
            r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
            r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD);
        }
    } else {
        V t[8], u[8];
        for (int i = 0; i < 4; ++i) {
            t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 2; ++i) {
            u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
            u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
            u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
            u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
        }
        for (int j = 0; j < 4; ++j) {
            r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
            r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
        }
    }
}

// d[c * plane + p] = the input at column col0 + p of the row at s (pixel stride ps), channel c,
// or 0 outside [0, w), for p < np (<= W) and c < W: a W x W block of one band row through
// registers (a scalar copy stores every float on its own), the padding's zeros with it.
template <class S>
PMD_ALWAYS_INLINE void pad_block(float* d, const float* s, int64_t ps, int64_t plane, int64_t col0, int64_t w,
                                 int64_t np) {
    typename S::V r[S::W];
#pragma GCC unroll 16
    for (int p = 0; p < S::W; ++p) r[p] = col0 + p >= 0 && col0 + p < w ? S::loadu(s + (col0 + p) * ps) : S::zero();
    transpose(r);
    const typename S::Mask m = S::mask_for(np);
#pragma GCC unroll 16
    for (int c = 0; c < S::W; ++c) np == S::W ? S::storeu(d + c * plane, r[c]) : S::mask_storeu(d + c * plane, m, r[c]);
}

// The Wp columns of one band row (input column wp - PW of the row at s) of Cg channels into the
// planes at d: blocks of W columns x W channels, the last one overlapping the one before it (no
// masks) where the row has W columns, then the channels past the last block one at a time. Every
// float of the row is stored once, its padding's zeros too, where zeroing the band first stored
// the inside twice.
template <class S>
void pad_row(float* PMD_RESTRICT d, const float* PMD_RESTRICT s, const ConvGeom& g, int64_t plane, int64_t Wp,
             int64_t Cg) {
    constexpr int W = S::W;
    const int64_t cw = Cg / W * W;
    for (int64_t q0 = 0; q0 < Wp; q0 += W) {
        const int64_t q = Wp >= W ? std::min(q0, Wp - W) : 0;
        for (int64_t c = 0; c < cw; c += W) {
            pad_block<S>(d + c * plane + q, s + c, g.C, plane, q - g.PW, g.W, std::min<int64_t>(W, Wp - q));
        }
    }
    for (int64_t c = cw; c < Cg; ++c) {
        for (int64_t wp = 0; wp < Wp; ++wp) {
            const int64_t iw = wp - g.PW;
            d[c * plane + wp] = iw >= 0 && iw < g.W ? s[iw * g.C + c] : 0.0f;
        }
    }
}

// s += the products of `count` pixels of one output row: a at the first one's patch (row k at
// a + off[k]), d at its dy.
template <class S, int MR, int NV, bool FULL>
PMD_ALWAYS_INLINE void wgrad_row(typename S::V (&s)[MR][NV], const float* a, const float* d, const int64_t (&off)[MR],
                                 const typename S::Mask (&m)[NV], int64_t pix_step, int64_t ds, int64_t count) {
    using V = typename S::V;
    for (int64_t q = 0; q < count; ++q, a += pix_step, d += ds) {
        V dv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) dv[v] = FULL ? S::loadu(d + v * S::W) : S::maskz_loadu(m[v], d + v * S::W);
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
            const V av = S::bcast(a + off[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) s[i][v] = S::fmadd(av, dv[v], s[i][v]);
        }
    }
}

// Walks b.ahead a few lines at a time, spread over the band's tile rows: the next band's
// conv_pad_band and column_sums (db) are the first to read its x and dy, and with nothing to
// overlap them they waited on memory, where this band's tiles are bound by their multiply-adds
// and leave loads to spare.
class Ahead {
  public:
    Ahead(const WgradBand& b, int64_t tile_rows) {
        for (int i = 0; i < 2; ++i) p_[i] = b.ahead[i], end_[i] = b.ahead[i] + b.ahead_len[i];
        const int64_t lines = ceil_div(b.ahead_len[0] + b.ahead_len[1], LINE);
        per_row_ = ceil_div(lines, std::max<int64_t>(tile_rows, 1));
    }
    bool on() const { return per_row_ > 0; }
    PMD_ALWAYS_INLINE void next() {
        for (int64_t k = 0; k < per_row_; ++k) {
            while (p_[i_] >= end_[i_]) {
                if (++i_ == 2) return void(per_row_ = 0);
            }
            __builtin_prefetch(p_[i_], 0, 2);
            p_[i_] += LINE;
        }
    }

  private:
    static constexpr int64_t LINE = 64 / sizeof(float);
    const float* p_[2];
    const float* end_[2];
    int64_t per_row_ = 0;
    int i_ = 0;
};

// The weight gradient dw = patches^T dy is the forward's product with the pixels as its k: a
// register tile of MR patch rows (taps x channels, im2col's k order) x NV vectors of filters sums
// x_patch[p, k] * dy[p, f] over the band's pixels p. It reads a zero-padded copy of the band's
// input rows (conv.cpp, weight_band), so every patch row k is the pixel's own pointer plus a fixed
// offset off[k] and no tap needs a bounds test; rows may cross taps (a first layer's 27 rows of
// 3 channels fill whole tiles). One running sum per dw element over the pixels in order.
// acc: rows k0.. of the (K, F) sum at filter column j; xb: the band at the group's channel 0;
// dyb: dy at the band's first pixel, column j, pixel stride ds. first: overwrite acc, else add.
template <class S, int MR, int NV, bool FULL, bool AHEAD>
PMD_ALWAYS_INLINE void wgrad_tile(float* acc, const float* xb, const float* dyb, int64_t ds, const WgradBand& b,
                                  int64_t k0, int64_t mr, int64_t nr, bool first, Ahead& ahead) {
    using V = typename S::V;
    int64_t off[MR];
    int64_t tap = k0 / b.Cg, c = k0 % b.Cg;  // row k's (tap, channel), stepped: no division per row
    for (int i = 0; i < MR; ++i) {  // rows past mr repeat the last one and are not stored
        off[i] = c * b.plane + (tap / b.KW) * b.DH * b.Wp + (tap % b.KW) * b.DW;
        if (i + 1 < mr && ++c == b.Cg) c = 0, ++tap;
    }
    typename S::Mask m[NV];
    for (int v = 0; v < NV; ++v) m[v] = S::mask_for(nr - v * S::W);
    V s[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            s[i][v] = first || i >= mr ? S::zero()
                      : FULL          ? S::loadu(acc + (k0 + i) * b.F + v * S::W)
                                      : S::maskz_loadu(m[v], acc + (k0 + i) * b.F + v * S::W);
    // The pixels whose patch rows k0.. read inside the image for some row of the tile: the others
    // add only products with the padding's zeros, skipped (the pixels kept go in the same order).
    int64_t rlo = b.rows, rhi = 0, qlo = b.OW, qhi = 0;
    for (int64_t t = k0 / b.Cg; t <= (k0 + mr - 1) / b.Cg; ++t) {
        const int64_t* rs = b.row_span + 2 * (t / b.KW);
        const int64_t* cs = b.col_span + 2 * (t % b.KW);
        if (rs[0] >= rs[1] || cs[0] >= cs[1]) continue;
        rlo = std::min(rlo, rs[0]), rhi = std::max(rhi, rs[1]);
        qlo = std::min(qlo, cs[0]), qhi = std::max(qhi, cs[1]);
    }
    // Images, then rows [rlo, rhi) of each, the pointers stepped from row to row: a first layer's
    // band is many short rows (28x28: 18 images of 28 rows of 28 pixels), where a division and a
    // modulo per row (which image, which row) cost 3-4%.
    const float* an = xb + rlo * b.row_step + qlo * b.pix_step;
    const float* dn = dyb + (rlo * b.OW + qlo) * ds;  // dy's rows run on across images
    for (int64_t n = 0; n < b.images; ++n, an += b.img_step, dn += b.rows * b.OW * ds) {
        const float* a = an;
        const float* d = dn;
        for (int64_t r = rlo; r < rhi; ++r, a += b.row_step, d += b.OW * ds) {
            if constexpr (AHEAD) ahead.next();  // a flag: a band with nothing ahead runs the plain loop
            wgrad_row<S, MR, NV, FULL>(s, a, d, off, m, b.pix_step, ds, qhi - qlo);
        }
    }
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
        if (i >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {  // unmasked where it can: AVX2's masked store is slow on Zen
            float* p = acc + (k0 + i) * b.F + v * S::W;
            FULL ? S::storeu(p, s[i][v]) : S::mask_storeu(p, m[v], s[i][v]);
        }
    }
}

// Filter strips of NV*W outside, patch-row tiles of MR inside: the band's dy strip stays in cache
// while every tile of k reads it. A strip narrower than dy's rows is first packed into dyp
// (pixels, NR): read in place, its lines sit F floats apart and fall into a fraction of L1's
// sets (F = 128: 8 of 64), so every tile would fetch them again from L2.
template <class S, int MR, int NV>
void wgrad_band(float* acc, const float* xb, const float* dyb, float* dyp, const WgradBand& b, bool first) {
    constexpr int NR = NV * S::W;
    const int64_t K = b.KH * b.KW * b.Cg, P = b.images * b.rows * b.OW;
    Ahead ahead(b, ceil_div(b.Fg, NR) * ceil_div(K, MR) * b.images * b.rows);
    for (int64_t j = 0; j < b.Fg; j += NR) {
        const int64_t nr = std::min<int64_t>(NR, b.Fg - j);
        const float* d = dyb + j;
        int64_t ds = b.F;
        if (b.F != NR && ceil_div(K, MR) >= 4) {  // a first layer's 1-3 tiles: not worth a pass
            for (int64_t p = 0; p < P; ++p) {  // whole strips in vectors: std::copy called memmove per pixel
                const float* src = dyb + p * b.F + j;
                if (nr < NR) {
                    std::copy(src, src + nr, dyp + p * NR);
                    continue;
                }
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) S::storeu(dyp + p * NR + v * S::W, S::loadu(src + v * S::W));
            }
            d = dyp, ds = NR;
        }
        for (int64_t k0 = 0; k0 < K; k0 += MR) {
            const int64_t mr = std::min<int64_t>(MR, K - k0);
            if (nr == NR && ahead.on()) {
                wgrad_tile<S, MR, NV, true, true>(acc + j, xb, d, ds, b, k0, mr, nr, first, ahead);
            } else if (nr == NR) {
                wgrad_tile<S, MR, NV, true, false>(acc + j, xb, d, ds, b, k0, mr, nr, first, ahead);
            } else {
                wgrad_tile<S, MR, NV, false, true>(acc + j, xb, d, ds, b, k0, mr, nr, first, ahead);
            }
        }
    }
}

// The pooled weight gradient of one image over one vector of filters [f0, f0 + W) and patch rows
// [r0, r0 + POOLED_ROWS), summed over the pooled cells in order. Per cell, dp is masked once per
// candidate to the lanes (filters) whose argmax names it, and each candidate's patch multiplied by
// its masked dp: the products of maxpool_backward's dz with the weight gradient's patches, less
// the pixels no window covers, without dz. (Picking each lane's patch value by masked broadcasts
// and multiplying once measured no faster on Zen 4, AVX-512, and 1.4x slower on AVX2, where the
// blends take the FMA pipes.) The rows past K run on row 0's offsets and are not stored.
template <class S>
PMD_ALWAYS_INLINE bool pooled_rows(float* acc, float* db, const float* xp, const float* dp, const int32_t* am,
                                   const PooledWgrad& p, int64_t f0, int64_t r0) {
    using V = typename S::V;
    using Sel = typename S::Sel;
    constexpr int Q = POOLED_CELLS, R = POOLED_ROWS;
    const int64_t F = p.F, cells = p.cells;
    const int32_t* cand_idx = p.cand_idx;
    const int64_t* cand_at = p.cand_at;
    const typename S::Mask lanes = S::mask_for(F - f0);
    int64_t row[R];
    for (int r = 0; r < R; ++r) row[r] = p.row_at[r0 + r];
    V s[R], sd = S::zero();
    for (int r = 0; r < R; ++r) s[r] = S::zero();
    bool matched = true;
    for (int64_t i = 0; i < cells; ++i) {
        const V d = S::maskz_loadu(lanes, dp + i * F + f0);
        const typename S::IV a = S::maskz_iloadu(lanes, am + i * F + f0);
        Sel m[Q];
        const float* at[Q];
#pragma GCC unroll 4
        for (int q = 0; q < Q; ++q) {
            m[q] = S::eq(lanes, a, cand_idx[i * Q + q]);
            at[q] = xp + cand_at[i * Q + q];
        }
        if (r0 == 0) {  // the first row block checks the argmax (-1 marks no cell: never valid) and sums db
            matched &= S::covers(S::sel_or(S::sel_or(m[0], m[1]), S::sel_or(m[2], m[3])), lanes) &&
                       S::none(S::eq(lanes, a, -1));
            sd = S::add(sd, d);
        }
        V dq[Q];
#pragma GCC unroll 4
        for (int q = 0; q < Q; ++q) dq[q] = S::select(d, m[q]);
#pragma GCC unroll 9
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
            for (int q = 0; q < Q; ++q) s[r] = S::fmadd(dq[q], S::bcast(at[q] + row[r]), s[r]);
        }
    }
    const int64_t stored = std::min<int64_t>(R, p.K - r0);
#pragma GCC unroll 9
    for (int r = 0; r < R; ++r) {  // unrolled with a test, so that s stays in registers
        if (r < stored) {
            float* out = acc + (r0 + r) * F + f0;
            S::mask_storeu(out, lanes, S::add(S::maskz_loadu(lanes, out), s[r]));
        }
    }
    if (r0 == 0 && db != nullptr) S::mask_storeu(db + f0, lanes, S::add(S::maskz_loadu(lanes, db + f0), sd));
    return matched;
}

}  // namespace

void conv_forward_rows(float* y, const float* x, const float* w, const float* b, const ConvGeom& g,
                       int64_t grp, int64_t p0, int64_t rows, const float* zeros) {
    // y: (N, OH, OW, F); x: (N, H, W, C); w: (KH, KW, C/G, F); b: (F,) or nullptr.
    const int64_t Cg = g.C / g.G, Fg = g.F / g.G;
    float* yn = y + grp * Fg;
    const float* xn = x + grp * Cg;
    const float* bg = b != nullptr ? b + grp * Fg : nullptr;
    if (Fg <= Simd::W) {  // one vector of filters: the narrow tile, more pixels
        implicit_rows<Simd, NARROW_MR, 1>(yn, xn, w + grp * Fg, bg, g, zeros, p0, rows);
        return;
    }
    if constexpr (QUAD_MR > 0) {  // whole strips of 4 vectors: fewer pixel rows, so fewer row pointers
        if (Fg % (4 * Simd::W) == 0) {
            return implicit_rows<Simd, QUAD_MR, 4>(yn, xn, w + grp * Fg, bg, g, zeros, p0, rows);
        }
    }
    if constexpr (WIDE_DEEP_MR > 0) {
        if (Cg >= WIDE_DEEP_MIN_C) return implicit_rows<Simd, WIDE_DEEP_MR, 2>(yn, xn, w + grp * Fg, bg, g, zeros, p0, rows);
    }
    implicit_rows<Simd, WIDE_MR, 2>(yn, xn, w + grp * Fg, bg, g, zeros, p0, rows);
}

}  // namespace pyminidl::kernels::PMD_CONV_ISA

namespace pyminidl::kernels::PMD_CONV_ISA {

void conv_pad_band(float* xb, const float* x, const ConvGeom& g, int64_t n, int64_t grp, int64_t oh0,
                   int64_t in_rows, int64_t Wp) {
    // xb: (C/G, in_rows, Wp); x: (N, H, W, C).
    const int64_t Cg = g.C / g.G, plane = in_rows * Wp;
    for (int64_t r = 0; r < in_rows; ++r) {
        const int64_t ih = oh0 * g.SH - g.PH + r;
        float* d = xb + r * Wp;
        if (ih < 0 || ih >= g.H) {
            for (int64_t c = 0; c < Cg; ++c) std::fill(d + c * plane, d + c * plane + Wp, 0.0f);
            continue;
        }
        const float* s = x + (n * g.H + ih) * g.W * g.C + grp * Cg;
        if (Cg >= Simd::W) {
            pad_row<Simd>(d, s, g, plane, Wp, Cg);
            continue;
        }
        const int64_t lo = std::clamp<int64_t>(g.PW, 0, Wp), hi = std::clamp<int64_t>(g.PW + g.W, lo, Wp);
        for (int64_t c = 0; c < Cg; ++c) {  // a first layer's 1-3 channels: no block to fill
            float* dc = d + c * plane;
            const float* sc = s + (lo - g.PW) * g.C + c;
            for (int64_t wp = 0; wp < lo; ++wp) dc[wp] = 0.0f;
            for (int64_t wp = lo; wp < hi; ++wp) dc[wp] = sc[(wp - lo) * g.C];
            for (int64_t wp = hi; wp < Wp; ++wp) dc[wp] = 0.0f;
        }
    }
}

bool conv_pooled_weight_image(float* acc, float* db, const float* xp, const float* dp, const int32_t* argmax,
                              const PooledWgrad& p) {
    // acc: (K, F), db: (F,) or nullptr; xp: the padded image; dp, argmax: (cells, F).
    bool matched = true;
    for (int64_t f0 = 0; f0 < p.F; f0 += Simd::W) {
        for (int64_t r0 = 0; r0 < p.K; r0 += POOLED_ROWS) matched &= pooled_rows<Simd>(acc, db, xp, dp, argmax, p, f0, r0);
    }
    return matched;
}

void conv_weight_band(float* acc, const float* xb, const float* dyb, float* dyp, const WgradBand& b, bool first) {
    // acc: (KH*KW*C/G, F) at the group's filter 0; xb: (images, C/G, band rows, Wp); dyb: dy at the band's
    // first pixel and the group's filter 0, pixel stride F.
    if (b.Fg <= Simd::W) return wgrad_band<Simd, WG_NARROW_MR, 1>(acc, xb, dyb, dyp, b, first);
    if constexpr (WG_QUAD_MR > 0) {
        if (b.Fg % (4 * Simd::W) == 0) return wgrad_band<Simd, WG_QUAD_MR, 4>(acc, xb, dyb, dyp, b, first);
    }
    if constexpr (WG_WIDE_ALT_MR > 0) {  // fewer rows per tile where they waste fewer (K = 9, 27)
        const int64_t K = b.KH * b.KW * b.Cg;
        const auto padded = [K](int64_t mr) { return ceil_div(K, mr) * mr; };
        if (padded(WG_WIDE_ALT_MR) < padded(WG_WIDE_MR)) {
            return wgrad_band<Simd, WG_WIDE_ALT_MR, 2>(acc, xb, dyb, dyp, b, first);
        }
    }
    wgrad_band<Simd, WG_WIDE_MR, 2>(acc, xb, dyb, dyp, b, first);
}

}  // namespace pyminidl::kernels::PMD_CONV_ISA
