// bind_conv.cpp — conv_forward, conv_maxpool_forward, conv_maxpool_backward, conv_backward, conv_transpose_forward, conv_transpose_backward.
//
// The arrays are NHWC (a 1-D convolution comes as height 1), the kernel (KH, KW, C/G, F) as
// Keras stores it (a transposed convolution's kernel is (KH, KW, out_channels, in_channels),
// also Keras's). The geometry arrives explicit: strides, the padding *before* each spatial
// axis and, where the input does not fix it, the output size; the backend turns Keras's
// 'valid' / 'same' / 'causal' into these numbers. Every window must touch the input (the
// first starts at most KH-1 dilated taps before it, the last starts inside it): that holds
// for every Keras padding and keeps a hostile geometry from asking for an absurd output.
#include <memory>

#include "bind_common.h"
#include "bind_spatial.h"

#include "conv.h"
#include "gemm.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

using Pair = std::array<int64_t, 2>;
constexpr double MAX_OUTPUT = 1e13;  // elements; beyond any memory, far below int64 overflow

// One spatial axis: output `out` of input `in` with kernel k, stride s, dilation d, pad p.
void check_axis(const std::string& op, const char* axis, int64_t in, int64_t out, int64_t k, int64_t s,
                int64_t d, int64_t p) {
    const bool ok = p <= (k - 1) * d && (out == 0 || (out - 1) * s - p <= in - 1) && out >= 0;
    if (!ok) {
        value_error(op, std::string("the ") + axis + " geometry leaves a window outside the input: input " +
                            std::to_string(in) + ", output " + std::to_string(out) + ", kernel " +
                            std::to_string(k) + ", stride " + std::to_string(s) + ", dilation " +
                            std::to_string(d) + ", padding before " + std::to_string(p));
    }
}

// The geometry of a convolution from in_shape (N, H, W, C) to (N, OH, OW, F) with kernel w,
// every argument checked; w must be (KH, KW, C/G, F).
kernels::ConvGeom make_geom(const std::string& op, const std::vector<py::ssize_t>& in, const Pair& out,
                            const py::array& w, const Pair& strides, const Pair& pads, const Pair& dil,
                            int64_t groups) {
    require_ndim(op, "w", w, 4);
    require_spatial_ints(op, "strides", strides, 2, 1);
    require_spatial_ints(op, "padding", pads, 2, 0);
    require_spatial_ints(op, "dilation_rate", dil, 2, 1);
    if (groups < 1 || groups > MAX_SPATIAL_PARAM) value_error(op, "groups must be >= 1. Received: groups=" + std::to_string(groups));
    kernels::ConvGeom g{in[0], in[1], in[2], in[3], out[0], out[1], w.shape(3), w.shape(0), w.shape(1),
                        strides[0], strides[1], pads[0], pads[1], dil[0], dil[1], groups};
    if (g.C % groups != 0 || g.F % groups != 0 || w.shape(2) * groups != g.C) {
        value_error(op, "the kernel must be (KH, KW, C / groups, F) with groups dividing C and F. Received: "
                        "input channels=" + std::to_string(g.C) + ", w.shape=" + shape_str(w) +
                        ", groups=" + std::to_string(groups));
    }
    if (g.KH < 1 || g.KW < 1) value_error(op, "the kernel needs a nonzero size. Received: w.shape=" + shape_str(w));
    check_axis(op, "height", g.H, g.OH, g.KH, g.SH, g.DH, g.PH);
    check_axis(op, "width", g.W, g.OW, g.KW, g.SW, g.DW, g.PW);
    const double elems = double(g.N) * double(std::max(g.OH * g.OW, g.H * g.W)) * double(std::max(g.F, g.C));
    if (elems > MAX_OUTPUT) value_error(op, "the output would have too many elements");
    return g;
}

template <typename T>
py::array_t<T, py::array::c_style> input4(const std::string& op, const char* arg, const py::array& a,
                                          const py::array& like) {
    require_same_dtype(op, "x", like, arg, a);
    require_ndim(op, arg, a, 4);
    return contiguous<T>(a);
}

template <typename T>
py::array_t<T, py::array::c_style> bias_of(const std::string& op, const py::object& b_obj, int64_t F) {
    py::array b = as_array(op, "b", b_obj);
    require_dtype<T>(op, "b", b);
    if (b.ndim() != 1 || b.shape(0) != F) {
        value_error(op, "argument 'b' must have shape (" + std::to_string(F) + ",). Received: shape=" + shape_str(b));
    }
    return contiguous<T>(b);
}

template <typename T>
py::array_t<T> empty4(int64_t a, int64_t b, int64_t c, int64_t d) {
    return py::array_t<T>(std::vector<py::ssize_t>{a, b, c, d});
}

// The three kernels with their workspaces, sized here (the caller owns them, gemm.h). The work is
// left uninitialised: the kernels write what they read (a zero-filled vector cost a pass over up
// to a few MiB per call, ~2% of a 14x14 layer's forward).
template <typename T>
void run_forward(T* y, const T* x, const T* w, const T* b, const kernels::ConvGeom& g) {
    const int64_t n = kernels::conv_forward_workspace_elems(g, omp_max_threads(), sizeof(T) == 8);
    const std::unique_ptr<T[]> work(new T[static_cast<size_t>(n)]);
    kernels::conv_forward(y, x, w, b, g, work.get(), n);
}
template <typename T>
void run_input(T* dx, const T* dy, const T* w, const kernels::ConvGeom& g) {
    const int64_t n = kernels::conv_backward_input_workspace_elems(g, omp_max_threads(), sizeof(T) == 8);
    const std::unique_ptr<T[]> work(new T[static_cast<size_t>(n)]);
    kernels::conv_backward_input(dx, dy, w, g, work.get(), n);
}
template <typename T>
void run_weight(T* dw, T* db, const T* dy, const T* x, const kernels::ConvGeom& g) {
    const int64_t n = kernels::conv_backward_weight_workspace_elems(g, omp_max_threads(), sizeof(T) == 8);
    const std::unique_ptr<T[]> work(new T[static_cast<size_t>(n)]);
    kernels::conv_backward_weight(dw, db, dy, x, g, work.get(), n);
}

template <typename T>
py::array conv_forward_t(const py::array& x_in, const py::array& w_in, const py::object& b_obj, Pair strides,
                         Pair pads, Pair out, Pair dil, int64_t groups) {
    const std::string op = "conv_forward";
    require_ndim(op, "x", x_in, 4);
    auto w = input4<T>(op, "w", w_in, x_in);
    const kernels::ConvGeom g = make_geom(op, shape_of(x_in), out, w, strides, pads, dil, groups);
    py::array_t<T, py::array::c_style> b;
    if (!b_obj.is_none()) b = bias_of<T>(op, b_obj, g.F);
    auto x = contiguous<T>(x_in);
    auto y = empty4<T>(g.N, g.OH, g.OW, g.F);
    T* yp = y.mutable_data();
    const T* bp = b_obj.is_none() ? nullptr : b.data();
    {
        py::gil_scoped_release nogil;
        run_forward<T>(yp, x.data(), w.data(), bp, g);
    }
    return y;
}

// maxpool_forward(conv_forward(x)) in one call (conv.h): the pooled output and its argmax, the
// convolution's output unseen. float32, as the pooling kernels.
py::tuple conv_maxpool_forward_py(const py::array& x_in, const py::array& w_in, const py::object& b_obj, Pair strides,
                                  Pair pads, Pair out, Pair dil, int64_t groups, const std::vector<int64_t>& pool,
                                  const std::vector<int64_t>& pool_strides, const std::string& pool_padding) {
    const std::string op = "conv_maxpool_forward";
    require_dtype<float>(op, "x", x_in);
    require_ndim(op, "x", x_in, 4);
    auto w = input4<float>(op, "w", w_in, x_in);
    const kernels::ConvGeom g = make_geom(op, shape_of(x_in), out, w, strides, pads, dil, groups);
    const kernels::PoolGeom pg = pool_geometry(op, {g.N, g.OH, g.OW, g.F}, pool, pool_strides, pool_padding);
    py::array_t<float, py::array::c_style> b;
    if (!b_obj.is_none()) b = bias_of<float>(op, b_obj, g.F);
    auto x = contiguous<float>(x_in);
    auto y = empty4<float>(pg.n, pg.oh, pg.ow, pg.c);
    py::array_t<int32_t> argmax(std::vector<py::ssize_t>{pg.n, pg.oh, pg.ow, pg.c});
    float* yp = y.mutable_data();
    int32_t* ap = argmax.mutable_data();
    const float* bp = b_obj.is_none() ? nullptr : b.data();
    {
        py::gil_scoped_release nogil;
        const int64_t n = kernels::conv_maxpool_forward_workspace_elems(g, omp_max_threads());
        const std::unique_ptr<float[]> work(new float[static_cast<size_t>(n)]);
        kernels::conv_maxpool_forward(yp, ap, x.data(), w.data(), bp, g, pg, work.get(), n);
    }
    return py::make_tuple(y, argmax);
}

// The weight and bias gradients of conv_maxpool_forward from the pooling's gradient dp and the
// argmax that call returned (conv.h): (dw, db or None), the convolution's output gradient unseen.
// float32, as the pooling kernels; the input gradient is not computed (a first layer's backward).
py::tuple conv_maxpool_backward_py(const py::array& dp_in, const py::array& argmax_in, const py::array& x_in,
                                   const py::array& w_in, Pair strides, Pair pads, Pair out, Pair dil, int64_t groups,
                                   const std::vector<int64_t>& pool, const std::vector<int64_t>& pool_strides,
                                   const std::string& pool_padding, bool has_bias) {
    const std::string op = "conv_maxpool_backward";
    require_dtype<float>(op, "x", x_in);
    require_ndim(op, "x", x_in, 4);
    auto w = input4<float>(op, "w", w_in, x_in);
    require_dtype<float>(op, "dp", dp_in);
    require_dtype<int32_t>(op, "argmax", argmax_in);
    const kernels::ConvGeom g = make_geom(op, shape_of(x_in), out, w, strides, pads, dil, groups);
    const kernels::PoolGeom pg = pool_geometry(op, {g.N, g.OH, g.OW, g.F}, pool, pool_strides, pool_padding);
    require_out_shape(op, "dp", dp_in, pg);
    require_out_shape(op, "argmax", argmax_in, pg);
    auto dp = contiguous<float>(dp_in);
    auto am = contiguous<int32_t>(argmax_in);
    auto x = contiguous<float>(x_in);
    auto dw = empty4<float>(w.shape(0), w.shape(1), w.shape(2), w.shape(3));
    py::array_t<float> db(std::vector<py::ssize_t>{g.F});
    float* dwp = dw.mutable_data();
    float* dbp = db.mutable_data();
    bool matched = true;
    {
        py::gil_scoped_release nogil;
        const int64_t n = kernels::conv_maxpool_backward_workspace_elems(g, pg, omp_max_threads());
        const std::unique_ptr<float[]> work(new float[static_cast<size_t>(std::max<int64_t>(n, 1))]);
        matched = kernels::conv_maxpool_backward(dwp, dbp, dp.data(), am.data(), x.data(), g, pg, work.get(), n);
    }
    if (!matched) {
        const int64_t bad = kernels::maxpool_first_bad_argmax(am.data(), pg);
        if (bad < 0) throw std::runtime_error(op + ": the argmax check and the window check disagree (a bug)");
        value_error(op, "argmax value " + std::to_string(am.data()[bad]) + " at flat index " + std::to_string(bad) +
                            " lies outside its pooling window");
    }
    return py::make_tuple(dw, has_bias ? py::object(db) : py::object(py::none()));
}

// db[f] = sum of dy over (N, H, W): the transposed convolution's bias gradient.
template <typename T>
py::object bias_grad_of(const py::array_t<T, py::array::c_style>& dy, int64_t rows, int64_t F) {
    py::array_t<T> db(std::vector<py::ssize_t>{F});
    T* out = db.mutable_data();
    py::gil_scoped_release nogil;
    kernels::bias_grad(out, dy.data(), std::max<int64_t>(F, 1), rows, F);
    return std::move(db);
}

template <typename T>
py::tuple conv_backward_t(const py::array& dy_in, const py::array& x_in, const py::array& w_in, Pair strides,
                          Pair pads, Pair dil, int64_t groups, bool has_bias, bool need_dx) {
    const std::string op = "conv_backward";
    require_ndim(op, "x", x_in, 4);
    auto dy = input4<T>(op, "dy", dy_in, x_in);
    auto w = input4<T>(op, "w", w_in, x_in);
    const kernels::ConvGeom g = make_geom(op, shape_of(x_in), {dy.shape(1), dy.shape(2)}, w, strides, pads, dil, groups);
    if (dy.shape(0) != g.N || dy.shape(3) != g.F) {
        value_error(op, "dy must be (N, OH, OW, F) = (" + std::to_string(g.N) + ", ..., " + std::to_string(g.F) +
                            "). Received: dy.shape=" + shape_str(dy) + ", x.shape=" + shape_str(x_in));
    }
    auto x = contiguous<T>(x_in);
    auto dw = empty4<T>(w.shape(0), w.shape(1), w.shape(2), w.shape(3));
    py::object dx = py::none();
    T* dwp = dw.mutable_data();
    T* dxp = nullptr;
    if (need_dx) {
        auto a = empty4<T>(g.N, g.H, g.W, g.C);
        dxp = a.mutable_data();
        dx = std::move(a);
    }
    py::object db = py::none();
    T* dbp = nullptr;
    if (has_bias) {  // summed by the weight gradient's parts, as they read dy (conv.cpp)
        py::array_t<T> a(std::vector<py::ssize_t>{g.F});
        dbp = a.mutable_data();
        db = std::move(a);
    }
    {
        py::gil_scoped_release nogil;
        run_weight<T>(dwp, dbp, dy.data(), x.data(), g);
        if (dxp != nullptr) run_input<T>(dxp, dy.data(), w.data(), g);
    }
    return py::make_tuple(dx, dw, db);
}

// The transposed convolution from x (N, H, W, Cin) to (N, OH, OW, Cout) with w (KH, KW, Cout,
// Cin) is the input gradient of the convolution from (N, OH, OW, Cout) to x.
template <typename T>
py::array conv_transpose_forward_t(const py::array& x_in, const py::array& w_in, const py::object& b_obj,
                                   Pair strides, Pair pads, Pair out, Pair dil) {
    const std::string op = "conv_transpose_forward";
    require_ndim(op, "x", x_in, 4);
    auto w = input4<T>(op, "w", w_in, x_in);
    require_spatial_ints(op, "output_size", out, 2, 0);
    const std::vector<py::ssize_t> conv_in{x_in.shape(0), out[0], out[1], w.shape(2)};
    const kernels::ConvGeom g = make_geom(op, conv_in, {x_in.shape(1), x_in.shape(2)}, w, strides, pads, dil, 1);
    if (x_in.shape(3) != g.F) {
        value_error(op, "x's channels must equal w.shape[3]. Received: x.shape=" + shape_str(x_in) +
                            ", w.shape=" + shape_str(w));
    }
    py::array_t<T, py::array::c_style> b;
    if (!b_obj.is_none()) b = bias_of<T>(op, b_obj, g.C);
    auto x = contiguous<T>(x_in);
    auto y = empty4<T>(g.N, g.H, g.W, g.C);
    T* yp = y.mutable_data();
    const T* bp = b_obj.is_none() ? nullptr : b.data();
    {
        py::gil_scoped_release nogil;
        run_input<T>(yp, x.data(), w.data(), g);
        if (bp != nullptr) kernels::bias_add(yp, yp, std::max<int64_t>(g.C, 1), bp, g.N * g.H * g.W, g.C);
    }
    return y;
}

template <typename T>
py::tuple conv_transpose_backward_t(const py::array& dy_in, const py::array& x_in, const py::array& w_in,
                                    Pair strides, Pair pads, Pair dil, bool has_bias, bool need_dx) {
    const std::string op = "conv_transpose_backward";
    require_ndim(op, "x", x_in, 4);
    auto dy = input4<T>(op, "dy", dy_in, x_in);
    auto w = input4<T>(op, "w", w_in, x_in);
    const kernels::ConvGeom g = make_geom(op, shape_of(dy), {x_in.shape(1), x_in.shape(2)}, w, strides, pads, dil, 1);
    if (x_in.shape(0) != g.N || x_in.shape(3) != g.F) {
        value_error(op, "x must be (N, H, W, w.shape[3]) with dy's batch. Received: x.shape=" + shape_str(x_in) +
                            ", dy.shape=" + shape_str(dy) + ", w.shape=" + shape_str(w));
    }
    auto x = contiguous<T>(x_in);
    auto dw = empty4<T>(w.shape(0), w.shape(1), w.shape(2), w.shape(3));
    py::object dx = py::none();
    T* dwp = dw.mutable_data();
    T* dxp = nullptr;
    if (need_dx) {
        auto a = empty4<T>(g.N, g.OH, g.OW, g.F);
        dxp = a.mutable_data();
        dx = std::move(a);
    }
    {
        py::gil_scoped_release nogil;
        run_weight<T>(dwp, static_cast<T*>(nullptr), x.data(), dy.data(), g);  // the convolution's output gradient is x
        if (dxp != nullptr) run_forward<T>(dxp, dy.data(), w.data(), nullptr, g);
    }
    py::object db = has_bias ? bias_grad_of<T>(dy, g.N * g.H * g.W, g.C) : py::none();
    return py::make_tuple(dx, dw, db);
}

}  // namespace

void bind_conv(py::module_& m) {
    m.def("conv_forward", [](const py::array& x, const py::array& w, const py::object& b, Pair s, Pair p, Pair o,
                             Pair d, int64_t groups) {
        return dispatch_float("conv_forward", "x", x, [&](auto t) { return conv_forward_t<decltype(t)>(x, w, b, s, p, o, d, groups); });
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("strides"), py::arg("padding"), py::arg("output_size"),
          py::arg("dilation_rate"), py::arg("groups"),
          "NHWC convolution. x: (N, H, W, C), w: (KH, KW, C/groups, F), b: (F,) or None; padding: before (H, W).");
    m.def("conv_maxpool_forward", &conv_maxpool_forward_py, py::arg("x"), py::arg("w"), py::arg("b"),
          py::arg("strides"), py::arg("padding"), py::arg("output_size"), py::arg("dilation_rate"), py::arg("groups"),
          py::arg("pool_size"), py::arg("pool_strides"), py::arg("pool_padding"),
          "maxpool_forward(conv_forward(x, ...), pool_size, pool_strides, pool_padding) in one call, float32: "
          "(y, argmax) as maxpool_forward returns them, bit for bit.");
    m.def("conv_maxpool_backward", &conv_maxpool_backward_py, py::arg("dp"), py::arg("argmax"), py::arg("x"),
          py::arg("w"), py::arg("strides"), py::arg("padding"), py::arg("output_size"), py::arg("dilation_rate"),
          py::arg("groups"), py::arg("pool_size"), py::arg("pool_strides"), py::arg("pool_padding"),
          py::arg("has_bias") = true,
          "(dw, db or None) of conv_maxpool_forward from the pooled gradient dp and its argmax, float32: the weight "
          "gradient of conv_backward(maxpool_backward(dp, argmax, ...)) within rounding; no input gradient.");
    m.def("conv_backward", [](const py::array& dy, const py::array& x, const py::array& w, Pair s, Pair p, Pair d,
                              int64_t groups, bool has_bias, bool need_dx) {
        return dispatch_float("conv_backward", "x", x, [&](auto t) { return conv_backward_t<decltype(t)>(dy, x, w, s, p, d, groups, has_bias, need_dx); });
    }, py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("strides"), py::arg("padding"), py::arg("dilation_rate"),
          py::arg("groups"), py::arg("has_bias") = true, py::arg("need_dx") = true,
          "(dx or None, dw, db or None) of conv_forward; dy: (N, OH, OW, F).");
    m.def("conv_transpose_forward", [](const py::array& x, const py::array& w, const py::object& b, Pair s, Pair p,
                                       Pair o, Pair d) {
        return dispatch_float("conv_transpose_forward", "x", x, [&](auto t) { return conv_transpose_forward_t<decltype(t)>(x, w, b, s, p, o, d); });
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("strides"), py::arg("padding"), py::arg("output_size"),
          py::arg("dilation_rate"),
          "Transposed NHWC convolution. x: (N, H, W, Cin), w: (KH, KW, Cout, Cin) -> (N, OH, OW, Cout).");
    m.def("conv_transpose_backward", [](const py::array& dy, const py::array& x, const py::array& w, Pair s, Pair p,
                                        Pair d, bool has_bias, bool need_dx) {
        return dispatch_float("conv_transpose_backward", "x", x, [&](auto t) { return conv_transpose_backward_t<decltype(t)>(dy, x, w, s, p, d, has_bias, need_dx); });
    }, py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("strides"), py::arg("padding"), py::arg("dilation_rate"),
          py::arg("has_bias") = true, py::arg("need_dx") = true,
          "(dx or None, dw, db or None) of conv_transpose_forward; dy: (N, OH, OW, Cout).");
}

}  // namespace pyminidl::bind
