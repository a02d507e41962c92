// conv.h — NHWC convolution with the Keras kernel layout (KH, KW, C/G, F): forward, input
// gradient and weight gradient, float32 and float64, built on the serial GEMM entry
// (gemm.h). A 1-D convolution is a 2-D one with H = KH = 1; a transposed convolution is the
// input-gradient kernel run forward (see conv.cpp).
#pragma once

#include "common.h"
#include "pool.h"

namespace pyminidl::kernels {

// One convolution's geometry. Input (N, H, W, C), output (N, OH, OW, F), kernel
// (KH, KW, C / G, F); output pixel (oh, ow) reads input (oh*SH - PH + kh*DH, ow*SW - PW + kw*DW),
// taps outside the input read zero (PH, PW: the padding before; the output size fixes the rest).
// Group g maps input channels [g*C/G, (g+1)*C/G) to filters [g*F/G, (g+1)*F/G).
struct ConvGeom {
    int64_t N, H, W, C, OH, OW, F, KH, KW, SH, SW, PH, PW, DH, DW, G;
};

// Elements of the caller-owned work each kernel needs for `threads` threads.
int64_t conv_forward_workspace_elems(const ConvGeom& g, int threads, bool dbl);
int64_t conv_backward_input_workspace_elems(const ConvGeom& g, int threads, bool dbl);
int64_t conv_backward_weight_workspace_elems(const ConvGeom& g, int threads, bool dbl);

// y: (N, OH, OW, F); x: (N, H, W, C); w: (KH, KW, C/G, F); b: (F,) or nullptr.
void conv_forward(float* y, const float* x, const float* w, const float* b, const ConvGeom& g,
                  float* work, int64_t work_elems);
void conv_forward(double* y, const double* x, const double* w, const double* b, const ConvGeom& g,
                  double* work, int64_t work_elems);
// dx: (N, H, W, C); dy: (N, OH, OW, F); w: (KH, KW, C/G, F). dx = conv^T(dy).
void conv_backward_input(float* dx, const float* dy, const float* w, const ConvGeom& g,
                         float* work, int64_t work_elems);
void conv_backward_input(double* dx, const double* dy, const double* w, const ConvGeom& g,
                         double* work, int64_t work_elems);
// dw: (KH, KW, C/G, F); db: (F,) or nullptr; dy: (N, OH, OW, F); x: (N, H, W, C).
// dw = sum over n, pixels of patch^T dy; db = sum of dy over (N, OH, OW) (the bias gradient).
void conv_backward_weight(float* dw, float* db, const float* dy, const float* x, const ConvGeom& g,
                          float* work, int64_t work_elems);
void conv_backward_weight(double* dw, double* db, const double* dy, const double* x, const ConvGeom& g,
                          double* work, int64_t work_elems);

// y, argmax: (N, OH', OW', F) = maxpool_forward(conv_forward(x)) with pool geometry pg (its input
// (N, OH, OW, F), the convolution's output), bit for bit, without the convolution's output where
// a first layer's images can be pooled one by one (conv.cpp).
int64_t conv_maxpool_forward_workspace_elems(const ConvGeom& g, int threads);
void conv_maxpool_forward(float* y, int32_t* argmax, const float* x, const float* w, const float* b,
                          const ConvGeom& g, const PoolGeom& pg, float* work, int64_t work_elems);

// dw: (KH, KW, C/G, F) and db: (F,) or nullptr of the convolution under a max pooling whose
// gradient dp and argmax, (N, OH', OW', F) with pool geometry pg, are given: the weight gradient
// of maxpool_backward(dp)'s dz without dz where a first layer's products can be summed per pooled
// cell (conv.cpp, pooled_path), within rounding of it. False when an argmax entry lies outside
// its window (the results are then not to be used).
int64_t conv_maxpool_backward_workspace_elems(const ConvGeom& g, const PoolGeom& pg, int threads);
bool conv_maxpool_backward(float* dw, float* db, const float* dp, const int32_t* argmax, const float* x,
                           const ConvGeom& g, const PoolGeom& pg, float* work, int64_t work_elems);

// Triple-loop forward: the in-C++ reference for the workbench.
void conv_forward_naive(float* y, const float* x, const float* w, const float* b, const ConvGeom& g);

}  // namespace pyminidl::kernels
