// conv_isa.h — the per-ISA convolution kernels (conv_simd.h compiled into avx2:: and avx512::
// by conv_avx2.cpp / conv_avx512.cpp with their own flags), declared for conv.cpp's dispatch.
#pragma once

#include "conv.h"

namespace pyminidl::kernels {

// One band of output rows of one image and group for the implicit weight gradient: its padded
// input rows are (Wp pixels of Cg channels) each, output row r reads padded row r*SH + kh*DH.
struct WgradBand {
    int64_t rows, OW, F, Fg, Cg, KH, KW, DH, DW, Wp;
    int64_t pix_step, row_step;  // SW*Cg, SH*Wp*Cg: one output pixel, one output row
};

#define PMD_CONV_ISA_DECLS                                                                        \
    /* y: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C/G, F), b: (F,) or nullptr; zeros: C/G   \
       zeros. Overwrites output pixels [p0, p0 + rows) of image n, filters of group grp. */        \
    void conv_forward_rows(float* y, const float* x, const float* w, const float* b,              \
                           const ConvGeom& g, int64_t n, int64_t grp, int64_t p0, int64_t rows,   \
                           const float* zeros);                                           \
    /* acc: (KH*KW*C/G, F) at the group's first filter; xb: the band's padded input rows;        \
       dyb: dy at the band's first pixel and the group's first filter. first: overwrite acc,     \
       else add to it. */                                                                         \
    void conv_weight_band(float* acc, const float* xb, const float* dyb, const WgradBand& b, bool first);
namespace avx2 {
PMD_CONV_ISA_DECLS
}  // namespace avx2
namespace avx512 {
PMD_CONV_ISA_DECLS
}  // namespace avx512
#undef PMD_CONV_ISA_DECLS
}  // namespace pyminidl::kernels
