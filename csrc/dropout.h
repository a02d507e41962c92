// dropout.h — see dropout.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// y = x * mask and mask = (u >= rate) * T(1 / (1 - rate)) (0 when rate >= 1), u[i] the uniform
// double NumPy's Generator(Philox(key=(key0, key1))).random(n)[i] draws: base.py's
// dropout_forward, bit for bit. x, y, mask: (n,); 0 <= rate <= 1.
void dropout_forward(float* y, float* mask, const float* x, int64_t n, double rate, uint64_t key0, uint64_t key1);
void dropout_forward(double* y, double* mask, const double* x, int64_t n, double rate, uint64_t key0,
                     uint64_t key1);

}  // namespace pyminidl::kernels
