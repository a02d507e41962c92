// pool.h — see pool.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// The geometry of one NHWC pooling call: input (N, H, W, C), window (KH, KW), strides
// (SH, SW), top/left padding (PT, PL) and output (OH, OW). Padding is virtual: padded cells
// are never read (max ignores them, average leaves them out of the count). The caller
// checks every size >= 1 and that each window overlaps at least one input cell.
struct PoolGeom {
    int64_t n, h, w, c;
    int64_t kh, kw, sh, sw, pt, pl;
    int64_t oh, ow;
};

// y, argmax: (N, OH, OW, C); x: (N, H, W, C). Overwrites y and argmax; argmax holds the
// flat index ih * W + iw of the window's maximum, the first in row-major window order on
// ties; a NaN wins over numbers (the first NaN), so NaN propagates as in Keras.
void maxpool_forward(float* y, int32_t* argmax, const float* x, const PoolGeom& g);

// dx: (N, H, W, C); dy, argmax: (N, OH, OW, C). Overwrites dx: each dy goes to its argmax.
// Returns the number of entries routed: N * OH * OW * C exactly when every argmax lies in its
// window (argmax is compared, never used as an address, so any values are memory-safe; an
// entry outside its window reaches no cell).
int64_t maxpool_backward(float* dx, const float* dy, const int32_t* argmax, const PoolGeom& g);

// Index of the first argmax entry outside its window (or not in [0, H*W)), -1 if none.
int64_t maxpool_first_bad_argmax(const int32_t* argmax, const PoolGeom& g);

// y: (N, OH, OW, C); x: (N, H, W, C). Overwrites y: the mean of each window's input cells.
void avgpool_forward(float* y, const float* x, const PoolGeom& g);

// dx: (N, H, W, C); dy: (N, OH, OW, C). Overwrites dx.
void avgpool_backward(float* dx, const float* dy, const PoolGeom& g);

}  // namespace pyminidl::kernels
