// bind_depthwise.cpp — depthwise_conv_forward, depthwise_conv_backward (float32).
//
// NHWC arrays (a 1-D convolution comes as height 1) and the Keras depthwise kernel
// (KH, KW, C, M). As in bind_conv.cpp the geometry arrives explicit (strides, the padding
// before each spatial axis, the output size where the input does not fix it), the backend
// turning Keras's paddings into these numbers, and every window must touch the input. All of
// it is checked here before any memory is touched; a call with an empty axis returns zeros of
// the right shapes without running a kernel.
#include "bind_common.h"
#include "bind_spatial.h"

#include <algorithm>

#include "depthwise.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

using Pair = std::array<int64_t, 2>;
using F32 = py::array_t<float, py::array::c_style>;
constexpr double MAX_ELEMENTS = 1e13;  // beyond any memory, far below int64 overflow

void check_axis(const std::string& op, const char* axis, int64_t in, int64_t out, int64_t k, int64_t s,
                int64_t d, int64_t p) {
    const bool ok = out >= 0 && p <= (k - 1) * d && (out == 0 || (out - 1) * s - p <= in - 1);
    if (!ok) {
        value_error(op, std::string("the ") + axis + " geometry leaves a window outside the input: input " +
                            std::to_string(in) + ", output " + std::to_string(out) + ", kernel " +
                            std::to_string(k) + ", stride " + std::to_string(s) + ", dilation " +
                            std::to_string(d) + ", padding before " + std::to_string(p));
    }
}

// x (N, H, W, C) and w (KH, KW, C, M) float32, every geometry argument in range.
kernels::DepthwiseGeom make_geom(const std::string& op, const py::array& x, const py::array& w, const Pair& strides,
                                 const Pair& pads, const Pair& out, const Pair& dil) {
    require_dtype<float>(op, "x", x);
    require_ndim(op, "x", x, 4);
    require_dtype<float>(op, "w", w);
    require_ndim(op, "w", w, 4);
    require_spatial_ints(op, "strides", strides, 2, 1);
    require_spatial_ints(op, "padding", pads, 2, 0);
    require_spatial_ints(op, "dilation_rate", dil, 2, 1);
    if (w.shape(2) != x.shape(3) || w.shape(0) < 1 || w.shape(1) < 1) {
        value_error(op, "the kernel must be (KH >= 1, KW >= 1, C, depth_multiplier) with C the input's channels. "
                        "Received: x.shape=" + shape_str(x) + ", w.shape=" + shape_str(w));
    }
    kernels::DepthwiseGeom g{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(3), w.shape(0), w.shape(1),
                             strides[0], strides[1], pads[0], pads[1], dil[0], dil[1], out[0], out[1]};
    check_axis(op, "height", g.h, g.oh, g.kh, g.sh, g.dh, g.ph);
    check_axis(op, "width", g.w, g.ow, g.kw, g.sw, g.dw, g.pw);
    const double cells = double(g.n) * double(std::max(g.oh * g.ow, g.h * g.w)) * double(g.c) * double(g.m);
    if (cells > MAX_ELEMENTS) value_error(op, "the output would have too many elements");
    return g;
}

bool is_empty(const kernels::DepthwiseGeom& g) { return g.n * g.h * g.w * g.c * g.m * g.oh * g.ow == 0; }

// An output array: zeros when the call has an empty axis (no kernel runs, every sum is empty),
// else left for the kernel to overwrite.
F32 output(std::vector<py::ssize_t> shape, bool empty) {
    F32 a(shape);
    if (empty) std::fill(a.mutable_data(), a.mutable_data() + a.size(), 0.0f);
    return a;
}

py::array py_forward(const py::array& x_in, const py::array& w_in, const py::object& b_obj, Pair strides, Pair pads,
                     Pair out, Pair dil) {
    const std::string op = "depthwise_conv_forward";
    require_spatial_ints(op, "output_size", out, 2, 0);
    const kernels::DepthwiseGeom g = make_geom(op, x_in, w_in, strides, pads, out, dil);
    F32 b;
    if (!b_obj.is_none()) {
        py::array ba = as_array(op, "b", b_obj);
        require_dtype<float>(op, "b", ba);
        if (ba.ndim() != 1 || ba.shape(0) != g.c * g.m) {
            value_error(op, "argument 'b' must have shape (" + std::to_string(g.c * g.m) +
                                ",) (channels * depth_multiplier). Received: shape=" + shape_str(ba));
        }
        b = contiguous<float>(ba);
    }
    auto x = contiguous<float>(x_in);
    auto w = contiguous<float>(w_in);
    const bool empty = is_empty(g);
    F32 y = output({g.n, g.oh, g.ow, g.c * g.m}, empty);
    if (empty) return y;
    float* yp = y.mutable_data();
    const float* bp = b_obj.is_none() ? nullptr : b.data();
    {
        py::gil_scoped_release nogil;
        std::vector<float> work(size_t(kernels::depthwise_forward_workspace_elems(g)));
        kernels::depthwise_forward(yp, x.data(), w.data(), bp, g, work.data(), int64_t(work.size()));
    }
    return y;
}

py::tuple py_backward(const py::array& dy_in, const py::array& x_in, const py::array& w_in, Pair strides, Pair pads,
                      Pair dil, bool has_bias, bool need_dx) {
    const std::string op = "depthwise_conv_backward";
    require_dtype<float>(op, "dy", dy_in);
    require_ndim(op, "dy", dy_in, 4);
    const kernels::DepthwiseGeom g =
        make_geom(op, x_in, w_in, strides, pads, {dy_in.shape(1), dy_in.shape(2)}, dil);
    if (dy_in.shape(0) != g.n || dy_in.shape(3) != g.c * g.m) {
        value_error(op, "dy must be (N, OH, OW, C * depth_multiplier) = (" + std::to_string(g.n) + ", ..., " +
                            std::to_string(g.c * g.m) + "). Received: dy.shape=" + shape_str(dy_in) +
                            ", x.shape=" + shape_str(x_in) + ", w.shape=" + shape_str(w_in));
    }
    auto dy = contiguous<float>(dy_in);
    auto x = contiguous<float>(x_in);
    auto w = contiguous<float>(w_in);
    const bool empty = is_empty(g);
    F32 dw = output({g.kh, g.kw, g.c, g.m}, empty);
    F32 dx = need_dx ? output({g.n, g.h, g.w, g.c}, empty) : F32();
    F32 db = has_bias ? output({g.c * g.m}, empty) : F32();
    if (!empty) {
        float* dwp = dw.mutable_data();
        float* dxp = need_dx ? dx.mutable_data() : nullptr;
        float* dbp = has_bias ? db.mutable_data() : nullptr;
        py::gil_scoped_release nogil;
        std::vector<float> work(size_t(std::max(kernels::depthwise_backward_weight_workspace_elems(g),
                                                kernels::depthwise_backward_input_workspace_elems(g))));
        const auto elems = int64_t(work.size());
        kernels::depthwise_backward_weight(dwp, dbp, dy.data(), x.data(), g, work.data(), elems);
        if (dxp != nullptr) kernels::depthwise_backward_input(dxp, dy.data(), w.data(), g, work.data(), elems);
    }
    return py::make_tuple(need_dx ? py::object(dx) : py::none(), dw, has_bias ? py::object(db) : py::none());
}

}  // namespace

void bind_depthwise(py::module_& m) {
    m.def("depthwise_conv_forward", &py_forward, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("strides"),
          py::arg("padding"), py::arg("output_size"), py::arg("dilation_rate"),
          "NHWC depthwise convolution: x (N, H, W, C), w (KH, KW, C, M), b (C*M,) or None -> (N, OH, OW, C*M).");
    m.def("depthwise_conv_backward", &py_backward, py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("strides"),
          py::arg("padding"), py::arg("dilation_rate"), py::arg("has_bias") = true, py::arg("need_dx") = true,
          "(dx or None, dw, db or None) of depthwise_conv_forward.");
}

}  // namespace pyminidl::bind
