// bind_pool.cpp — NHWC max/average pooling, forward and backward (float32).
//
// Every geometry argument is checked here, before any memory is touched: pool sizes and
// strides >= 1, padding 'valid' or 'same', a non-empty output, the shapes of dy/argmax
// against the geometry, and every argmax inside its window (counted by the backward as it
// routes: it compares argmax with each cell, never indexes with it).
#include "bind_common.h"
#include "bind_spatial.h"

#include <limits>
#include <stdexcept>

#include "pool.h"

using namespace pyminidl;
using kernels::PoolGeom;

namespace pyminidl::bind {
namespace {

std::vector<int64_t> dims(const py::array& a) { return std::vector<int64_t>(a.shape(), a.shape() + a.ndim()); }

PoolGeom forward_geom(const std::string& op, const py::array& x, const std::vector<int64_t>& pool,
                      const std::vector<int64_t>& strides, const std::string& padding) {
    require_dtype<float>(op, "x", x);
    require_ndim(op, "x", x, 4);
    return pool_geometry(op, dims(x), pool, strides, padding);
}

py::tuple py_maxpool_forward(const py::array& x, const std::vector<int64_t>& pool,
                             const std::vector<int64_t>& strides, const std::string& padding) {
    const std::string op = "maxpool_forward";
    const PoolGeom g = forward_geom(op, x, pool, strides, padding);
    auto xc = contiguous<float>(x);
    const std::vector<py::ssize_t> out{g.n, g.oh, g.ow, g.c};
    py::array_t<float> y(out);
    py::array_t<int32_t> argmax(out);
    float* yp = y.mutable_data();
    int32_t* ap = argmax.mutable_data();
    const float* xp = xc.data();
    {
        py::gil_scoped_release nogil;
        if (g.n * g.c > 0) kernels::maxpool_forward(yp, ap, xp, g);
    }
    return py::make_tuple(y, argmax);
}

py::array_t<float> py_avgpool_forward(const py::array& x, const std::vector<int64_t>& pool,
                                      const std::vector<int64_t>& strides, const std::string& padding) {
    const std::string op = "avgpool_forward";
    const PoolGeom g = forward_geom(op, x, pool, strides, padding);
    auto xc = contiguous<float>(x);
    py::array_t<float> y(std::vector<py::ssize_t>{g.n, g.oh, g.ow, g.c});
    float* yp = y.mutable_data();
    const float* xp = xc.data();
    {
        py::gil_scoped_release nogil;
        if (g.n * g.c > 0) kernels::avgpool_forward(yp, xp, g);
    }
    return y;
}

py::array_t<float> py_maxpool_backward(const py::array& dy, const py::array& argmax,
                                       const std::vector<int64_t>& input_shape, const std::vector<int64_t>& pool,
                                       const std::vector<int64_t>& strides, const std::string& padding) {
    const std::string op = "maxpool_backward";
    require_dtype<float>(op, "dy", dy);
    require_dtype<int32_t>(op, "argmax", argmax);
    const PoolGeom g = pool_geometry(op, input_shape, pool, strides, padding);
    require_out_shape(op, "dy", dy, g);
    require_out_shape(op, "argmax", argmax, g);
    auto dyc = contiguous<float>(dy);
    auto ac = contiguous<int32_t>(argmax);
    py::array_t<float> dx(std::vector<py::ssize_t>(input_shape.begin(), input_shape.end()));
    float* dxp = dx.mutable_data();
    const float* dyp = dyc.data();
    const int32_t* ap = ac.data();
    int64_t routed = 0;
    {
        py::gil_scoped_release nogil;
        // The kernel validates as it routes (it compares argmax, never indexes with it): one
        // pass over argmax instead of a serial check before the parallel backward.
        if (g.n * g.c > 0) routed = kernels::maxpool_backward(dxp, dyp, ap, g);
    }
    if (routed != g.n * g.oh * g.ow * g.c) {
        const int64_t bad = kernels::maxpool_first_bad_argmax(ap, g);
        if (bad < 0) throw std::runtime_error(op + ": routed count and window check disagree (a bug)");
        value_error(op, "argmax value " + std::to_string(ap[bad]) + " at flat index " + std::to_string(bad) +
                            " lies outside its pooling window");
    }
    return dx;
}

py::array_t<float> py_avgpool_backward(const py::array& dy, const std::vector<int64_t>& input_shape,
                                       const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                                       const std::string& padding) {
    const std::string op = "avgpool_backward";
    require_dtype<float>(op, "dy", dy);
    const PoolGeom g = pool_geometry(op, input_shape, pool, strides, padding);
    require_out_shape(op, "dy", dy, g);
    auto dyc = contiguous<float>(dy);
    py::array_t<float> dx(std::vector<py::ssize_t>(input_shape.begin(), input_shape.end()));
    float* dxp = dx.mutable_data();
    const float* dyp = dyc.data();
    {
        py::gil_scoped_release nogil;
        if (g.n * g.c > 0) kernels::avgpool_backward(dxp, dyp, g);
    }
    return dx;
}

}  // namespace

namespace {

// Output size and leading pad along one axis, Keras's rule ('same': out = ceil(size / s),
// the odd padded cell at the end).
std::pair<int64_t, int64_t> out_and_pad(int64_t size, int64_t k, int64_t s, bool same) {
    if (same) {
        const int64_t out = ceil_div(size, s);
        const int64_t total = std::max<int64_t>((out - 1) * s + k - size, 0);
        return {out, total / 2};
    }
    return {size >= k ? (size - k) / s + 1 : 0, 0};
}

}  // namespace

void require_out_shape(const std::string& op, const char* arg, const py::array& a, const PoolGeom& g) {
    const std::vector<int64_t> want{g.n, g.oh, g.ow, g.c};
    if (dims(a) != want) {
        value_error(op, std::string("argument '") + arg + "' must have shape " + tuple_str(want) +
                            " for this input shape and geometry. Received: shape=" + shape_str(a));
    }
}

PoolGeom pool_geometry(const std::string& op, const std::vector<int64_t>& shape, const std::vector<int64_t>& pool,
                       const std::vector<int64_t>& strides, const std::string& padding) {
    if (shape.size() != 4 || std::any_of(shape.begin(), shape.end(), [](int64_t s) { return s < 0; })) {
        value_error(op, "input shape must be 4 sizes >= 0 (N, H, W, C). Received: " + tuple_str(shape));
    }
    constexpr int64_t i32 = std::numeric_limits<int32_t>::max();
    if (shape[1] > i32 || shape[2] > i32 || shape[1] * shape[2] > i32) {
        value_error(op, "H * W must fit int32 (the argmax index). Received: shape=" + tuple_str(shape));
    }
    require_spatial_ints(op, "pool_size", pool, 2, 1);
    require_spatial_ints(op, "strides", strides, 2, 1);
    if (padding != "valid" && padding != "same") {
        value_error(op, "padding must be 'valid' or 'same'. Received: padding='" + padding + "'");
    }
    const bool same = padding == "same";
    const auto [oh, pt] = out_and_pad(shape[1], pool[0], strides[0], same);
    const auto [ow, pl] = out_and_pad(shape[2], pool[1], strides[1], same);
    if (oh < 1 || ow < 1) {
        value_error(op, "the output would be empty: input shape " + tuple_str(shape) + ", pool_size=" +
                            tuple_str(pool) + ", strides=" + tuple_str(strides) + ", padding='" + padding + "'");
    }
    return {shape[0], shape[1], shape[2], shape[3], pool[0], pool[1], strides[0], strides[1], pt, pl, oh, ow};
}

void bind_pool(py::module_& m) {
    m.def("maxpool_forward", &py_maxpool_forward, py::arg("x"), py::arg("pool_size"), py::arg("strides"),
          py::arg("padding"), "NHWC max pooling: (y, argmax), argmax = ih * W + iw of each window's max.");
    m.def("maxpool_backward", &py_maxpool_backward, py::arg("dy"), py::arg("argmax"), py::arg("input_shape"),
          py::arg("pool_size"), py::arg("strides"), py::arg("padding"),
          "dx of max pooling: each dy goes to its argmax cell.");
    m.def("avgpool_forward", &py_avgpool_forward, py::arg("x"), py::arg("pool_size"), py::arg("strides"),
          py::arg("padding"), "NHWC average pooling (padded cells left out of the mean).");
    m.def("avgpool_backward", &py_avgpool_backward, py::arg("dy"), py::arg("input_shape"), py::arg("pool_size"),
          py::arg("strides"), py::arg("padding"), "dx of average pooling.");
}

}  // namespace pyminidl::bind
