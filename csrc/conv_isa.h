// conv_isa.h — the per-ISA convolution kernels (conv_simd.h compiled into avx2:: and avx512::
// by conv_avx2.cpp / conv_avx512.cpp with their own flags), declared for conv.cpp's dispatch.
#pragma once

#include "conv.h"

namespace pyminidl::kernels {
#define PMD_CONV_ISA_DECLS                                                                        \
    /* y: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C/G, F), b: (F,) or nullptr; zeros: C/G   \
       zeros. Overwrites output pixels [p0, p0 + rows) of image n, filters of group grp. */        \
    void conv_forward_rows(float* y, const float* x, const float* w, const float* b,              \
                           const ConvGeom& g, int64_t n, int64_t grp, int64_t p0, int64_t rows,   \
                           const float* zeros);
namespace avx2 {
PMD_CONV_ISA_DECLS
}  // namespace avx2
namespace avx512 {
PMD_CONV_ISA_DECLS
}  // namespace avx512
#undef PMD_CONV_ISA_DECLS
}  // namespace pyminidl::kernels
