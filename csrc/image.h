// image.h — see image.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// Interpolation and fill-mode codes shared with the binding (bind_image.cpp).
enum class Interp : int { bilinear = 0, nearest = 1 };
enum class Fill : int { reflect = 0, wrap = 1, constant = 2, nearest = 3 };

// y: (N, OH, OW, C), x: (N, H, W, C), all contiguous. Overwrites y. Half-pixel centres, no
// antialias (PyTorch's interpolate(align_corners=False) and "nearest-exact").
void resize_forward(float* y, const float* x, int64_t n, int64_t h, int64_t w, int64_t c,
                    int64_t oh, int64_t ow, Interp interp);

// y, x: (N, H, W, C); transforms: (N, 8) Keras projective transforms. Overwrites y.
void affine_transform_forward(float* y, const float* x, const float* transforms, int64_t n, int64_t h,
                              int64_t w, int64_t c, Interp interp, Fill fill, float fill_value);

}  // namespace pyminidl::kernels
