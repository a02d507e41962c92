// depthwise.h — see depthwise.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// The geometry of one NHWC depthwise convolution: input (N, H, W, C), kernel (KH, KW, C, M)
// as Keras stores it (M = depth_multiplier), output (N, OH, OW, C * M) whose channel c * M + m
// reads input channel c through kernel column (c, m). Output (oh, ow) reads input
// (oh * SH - PH + kh * DH, ow * SW - PW + kw * DW); cells outside the input are zeros (PH, PW:
// the padding before; the output size fixes the rest). The caller checks every size >= 1.
struct DepthwiseGeom {
    int64_t n, h, w, c, m;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t oh, ow;
};

// The weight gradient's fixed split of the N * OH output rows (depthwise_impl.h): a function of
// the geometry alone, so its sums are the same at every thread count.
inline int64_t depthwise_weight_chunks(const DepthwiseGeom& g) { return g.n * g.oh < 32 ? g.n * g.oh : 32; }

// Elements of the caller-owned work of each kernel (0 where it needs none).
int64_t depthwise_forward_workspace_elems(const DepthwiseGeom& g);
int64_t depthwise_backward_input_workspace_elems(const DepthwiseGeom& g);
int64_t depthwise_backward_weight_workspace_elems(const DepthwiseGeom& g);

// y: (N, OH, OW, C*M); x: (N, H, W, C); w: (KH, KW, C, M); b: (C*M,) or nullptr. Overwrites y.
void depthwise_forward(float* y, const float* x, const float* w, const float* b, const DepthwiseGeom& g,
                       float* work, int64_t work_elems);

// dx: (N, H, W, C); dy: (N, OH, OW, C*M); w: (KH, KW, C, M). Overwrites dx.
void depthwise_backward_input(float* dx, const float* dy, const float* w, const DepthwiseGeom& g, float* work,
                              int64_t work_elems);

// dw: (KH, KW, C, M); db: (C*M,) or nullptr; dy: (N, OH, OW, C*M); x: (N, H, W, C). Overwrites
// dw with the sum over (n, oh, ow) of x(tap cell) * dy and db with the sum of dy, in an order
// fixed by the geometry alone.
void depthwise_backward_weight(float* dw, float* db, const float* dy, const float* x, const DepthwiseGeom& g,
                               float* work, int64_t work_elems);

}  // namespace pyminidl::kernels
