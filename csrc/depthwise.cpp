// depthwise.cpp — NHWC depthwise convolution (channel_multiplier M), forward, input gradient
// and weight gradient, float32: the public entry points. 1-D runs as 2-D with H = KH = 1.
//
// A direct kernel, vectorised over channels: the grouped implicit GEMM of conv.cpp with one
// input channel per group runs a K = KH*KW matrix product per group, far below what packing
// a GEMM panel pays for. The kernel bodies and their layout, padding and determinism rules are
// in depthwise_impl.h. This file compiles them for baseline x86-64 (and any other target) and
// sends each call to the AVX2 or AVX-512 copy when active_isa() allows; every path gives the
// same bits.
#include "depthwise.h"

#include <stdexcept>
#include <string>

#include "cpu_features.h"
#include "depthwise_impl.h"
#include "depthwise_isa.h"

namespace pyminidl::kernels {

namespace {
void check_work(const char* op, int64_t have, int64_t need) {
    if (have < need) {
        throw std::invalid_argument(std::string(op) + ": workspace of " + std::to_string(have) +
                                    " elements is smaller than the " + std::to_string(need) + " needed");
    }
}
}  // namespace

// x expanded to (N, H, W, C*M) (depthwise_impl.h); M = 1 reads x as it is.
int64_t depthwise_forward_workspace_elems(const DepthwiseGeom& g) { return g.m == 1 ? 0 : g.n * g.h * g.w * g.c * g.m; }

int64_t depthwise_backward_input_workspace_elems(const DepthwiseGeom&) { return 0; }

// One partial weight and bias gradient per row chunk, then the expanded x of the forward.
int64_t depthwise_backward_weight_workspace_elems(const DepthwiseGeom& g) {
    return depthwise_weight_chunks(g) * (g.kh * g.kw + 1) * g.m * g.c + depthwise_forward_workspace_elems(g);
}

void depthwise_forward(float* y, const float* x, const float* w, const float* b, const DepthwiseGeom& g,
                       float* work, int64_t work_elems) {
    check_work("depthwise_forward", work_elems, depthwise_forward_workspace_elems(g));
    PMD_ISA_DISPATCH(depthwise_forward, y, x, w, b, g, work)
    depthwise_forward_impl(y, x, w, b, g, work);
}

void depthwise_backward_input(float* dx, const float* dy, const float* w, const DepthwiseGeom& g, float* work,
                              int64_t work_elems) {
    check_work("depthwise_backward_input", work_elems, depthwise_backward_input_workspace_elems(g));
    PMD_ISA_DISPATCH(depthwise_backward_input, dx, dy, w, g, work)
    depthwise_backward_input_impl(dx, dy, w, g, work);
}

void depthwise_backward_weight(float* dw, float* db, const float* dy, const float* x, const DepthwiseGeom& g,
                               float* work, int64_t work_elems) {
    check_work("depthwise_backward_weight", work_elems, depthwise_backward_weight_workspace_elems(g));
    PMD_ISA_DISPATCH(depthwise_backward_weight, dw, db, dy, x, g, work)
    depthwise_backward_weight_impl(dw, db, dy, x, g, work);
}

}  // namespace pyminidl::kernels
