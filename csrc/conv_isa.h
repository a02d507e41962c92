// conv_isa.h — the per-ISA convolution kernels (conv_simd.h compiled into avx2:: and avx512::
// by conv_avx2.cpp / conv_avx512.cpp with their own flags), declared for conv.cpp's dispatch.
#pragma once

#include "conv.h"

namespace pyminidl::kernels {

// One band of the implicit weight gradient, one group: `rows` output rows of `images` images (more
// than one only when the rows are whole images, whose dy rows then follow on). Each image's padded
// input rows are Cg planes of `plane` = (input rows, Wp) floats and start img_step after the
// last's; output row r reads padded row r*SH + kh*DH.
struct WgradBand {
    int64_t images, img_step, rows, OW, F, Fg, Cg, KH, KW, DH, DW, Wp, plane;
    int64_t pix_step, row_step;  // SW, SH*Wp: one output pixel, one output row
    // [lo, hi) pairs: row_span[2*kh..] the band's output rows (per image) and col_span[2*kw..] the
    // output columns whose tap reads inside the image; the others read padding, whose zero
    // products a tile skips.
    const int64_t* row_span;
    const int64_t* col_span;
    // The next band's x and dy (lengths in floats, 0: none), requested into L2 while this band's
    // tiles run.
    const float* ahead[2];
    int64_t ahead_len[2];
};
constexpr int64_t WGRAD_MAX_NR = 64;  // the widest weight-gradient tile's filters (AVX-512, 4 x 16)

// The pooled weight gradient (conv_maxpool_backward) of one image: the max pooling's gradient dp
// and argmax, (cells, F), read against the image's zero-padded copy xp (padded_image: no padding
// left). Pooled cell i's window holds POOLED_CELLS candidate cells of the convolution's output:
// cand_idx[i*POOLED_CELLS + q] is candidate q's flat index oh*OW + ow (the argmax it matches; -1 for
// a cell outside the output: an argmax of -1 is refused), cand_at[..] where its patch starts in xp. Patch
// row r (tap, channel) lies row_at[r] past that. row_at holds K rounded up to POOLED_ROWS entries
// (the extra ones repeat row 0: their sums are not stored).
constexpr int POOLED_CELLS = 4;  // windows of up to 4 cells (2x2, 1x2, 2x1, 1x1)
constexpr int POOLED_ROWS = 9;   // patch rows summed in registers at a time (3x3 x 1, 3x3 x 3 in three)
struct PooledWgrad {
    int64_t cells, F, K;
    const int32_t* cand_idx;
    const int64_t* cand_at;
    const int64_t* row_at;
};

#define PMD_CONV_ISA_DECLS                                                                         \
    /* y: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C/G, F), b: (F,) or nullptr; zeros: C/G     \
       zeros. Overwrites output pixels [p0, p0 + rows) counted over all images (n*OH*OW + pixel),  \
       filters of group grp. */                                                                    \
    void conv_forward_rows(float* y, const float* x, const float* w, const float* b,               \
                           const ConvGeom& g, int64_t grp, int64_t p0, int64_t rows,               \
                           const float* zeros);                                                    \
    /* acc: (KH*KW*C/G, F) at the group's first filter; xb: the band's padded input rows;          \
       dyb: dy at the band's first pixel and the group's first filter; dyp: scratch for            \
       (band pixels, WGRAD_MAX_NR). first: overwrite acc, else add to it. */                       \
    void conv_weight_band(float* acc, const float* xb, const float* dyb, float* dyp,               \
                          const WgradBand& b, bool first);                                         \
    /* xb: (C/G, in_rows, Wp), image n's input rows from oh0*SH - PH on, columns from -PW, group   \
       grp's channels, one plane per channel; 0 where that falls outside the image. */            \
    void conv_pad_band(float* xb, const float* x, const ConvGeom& g, int64_t n, int64_t grp,       \
                       int64_t oh0, int64_t in_rows, int64_t Wp);                                  \
    /* acc: (K, F) and db: (F,) or nullptr, added to: one image's dw and db from its pooled        \
       gradient dp and argmax (cells, F) and padded copy xp. False when some argmax entry matched  \
       no cell of its window (that entry added nothing to acc; its dp still went into db). */      \
    bool conv_pooled_weight_image(float* acc, float* db, const float* xp, const float* dp,          \
                                  const int32_t* argmax, const PooledWgrad& p);
namespace avx2 {
PMD_CONV_ISA_DECLS
}  // namespace avx2
namespace avx512 {
PMD_CONV_ISA_DECLS
}  // namespace avx512
#undef PMD_CONV_ISA_DECLS
}  // namespace pyminidl::kernels
