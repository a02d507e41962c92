// norm.h — see norm.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// Batch normalization views x as (O, C, I): C the normalized axis, O the axes before it, I
// the axes after it (channels_last: I = 1). mean, var: (C,); gamma, beta: (C,) or nullptr
// (scale=False / center=False). The statistics reduce over O and I.

// mean, var: (C,); x: (O, C, I). Overwrites mean and the biased variance (divides by O * I).
void batch_norm_stats(float* mean, float* var, const float* x, int64_t o, int64_t c, int64_t i);

// y, x: (O, C, I). y = (x - mean) / sqrt(var + eps) * gamma + beta. Overwrites y.
void batch_norm_apply(float* y, const float* x, const float* mean, const float* var, const float* gamma,
                      const float* beta, int64_t o, int64_t c, int64_t i, float eps);

// Training forward: the batch statistics, then y. Overwrites y, mean, var.
void batch_norm_forward(float* y, float* mean, float* var, const float* x, const float* gamma,
                        const float* beta, int64_t o, int64_t c, int64_t i, float eps);

// dx, dy, x: (O, C, I); dgamma, dbeta: (C,). Overwrites dx, dgamma, dbeta. batch_stats: mean
// and var were the batch's (training), so dx includes their gradient; else they were constants.
void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* gamma, const float* mean, const float* var, int64_t o, int64_t c,
                         int64_t i, float eps, bool batch_stats);

// Layer normalization over the last D elements of each of R rows. x, y: (R, D); mean, var:
// (R,); gamma, beta: (D,) or nullptr. Overwrites y, mean and the biased variance.
void layer_norm_forward(float* y, float* mean, float* var, const float* x, const float* gamma,
                        const float* beta, int64_t r, int64_t d, float eps);

// dx, dy, x: (R, D); dgamma, dbeta: (D,). Overwrites dx, dgamma, dbeta.
void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* gamma, const float* mean, const float* var, int64_t r, int64_t d,
                         float eps);

}  // namespace pyminidl::kernels
