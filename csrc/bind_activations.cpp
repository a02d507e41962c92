// bind_activations.cpp — activation_forward/_backward (every kind of the activation table) and the row-wise softmax pairs.
#include "bind_common.h"

#include "activations.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {
// The last axis is the row: (rows, cols) of a softmax over it, or a ValueError.
std::pair<int64_t, int64_t> last_axis_rows(const std::string& op, const char* arg, const py::array& a) {
    if (a.ndim() < 1) value_error(op, std::string("argument '") + arg + "' must be at least 1-D. Received: shape=()");
    const int64_t cols = a.shape(a.ndim() - 1);
    if (cols < 1) {
        value_error(op, std::string("argument '") + arg + "' has an empty last axis; softmax over "
                        "zero classes is undefined. Received: shape=" + shape_str(a));
    }
    return {int64_t(a.size()) / cols, cols};
}

// The one table of activation names (Python reads it as _C.ACTIVATIONS): the name a caller
// passes -> the kernel kind. swish and silu are one function; gelu's `approximate` picks the
// tanh form.
using A = kernels::Activation;
constexpr std::pair<const char*, A> ACTIVATION_TABLE[] = {
    {"linear", A::linear}, {"step", A::step}, {"sigmoid", A::sigmoid},
    {"hard_sigmoid", A::hard_sigmoid}, {"tanh", A::tanh}, {"relu", A::relu},
    {"leaky_relu", A::leaky_relu}, {"elu", A::elu}, {"selu", A::selu},
    {"softplus", A::softplus}, {"softsign", A::softsign}, {"swish", A::swish},
    {"silu", A::swish}, {"gelu", A::gelu}, {"exponential", A::exponential}};

kernels::Activation parse_activation(const std::string& op, const std::string& name, bool approximate) {
    for (const auto& [key, kind] : ACTIVATION_TABLE) {
        if (name == key) return (kind == A::gelu && approximate) ? A::gelu_tanh : kind;
    }
    std::string known;
    for (const auto& entry : ACTIVATION_TABLE) known += std::string(known.empty() ? "" : ", ") + "'" + entry.first + "'";
    value_error(op, "unknown activation '" + name + "'. Expected one of " + known);
}

// A NaN parameter makes every comparison false, and then the kernel and the reference pick
// different branches: it is refused rather than given a meaning.
void require_not_nan(const std::string& op, const char* arg, double value) {
    if (std::isnan(value)) value_error(op, std::string("parameter '") + arg + "' must not be NaN");
}

kernels::ActivationParams activation_params(const std::string& op, kernels::Activation kind,
                                            std::optional<double> negative_slope,
                                            std::optional<double> max_value, double threshold, double alpha) {
    if (negative_slope) require_not_nan(op, "negative_slope", *negative_slope);
    if (max_value) require_not_nan(op, "max_value", *max_value);
    require_not_nan(op, "threshold", threshold);
    require_not_nan(op, "alpha", alpha);
    kernels::ActivationParams p;
    // Without an explicit slope each activation keeps its Keras default.
    p.negative_slope = negative_slope.value_or(kind == kernels::Activation::leaky_relu ? 0.2 : 0.0);
    p.has_max_value = max_value.has_value();
    if (max_value) p.max_value = *max_value;
    p.threshold = threshold;
    p.alpha = alpha;
    return p;
}

// `out`, where given, receives the result and is returned: a writeable C-contiguous ndarray of
// `like`'s dtype and shape (a copy could not stand in for it, the writes would be lost).
py::array out_array(const std::string& op, const py::object& out_obj, const char* like_arg, const py::array& like) {
    if (!py::isinstance<py::array>(out_obj)) {
        type_error(op, "argument 'out' is written in place and must be a numpy.ndarray or None. Received: " +
                           std::string(py::str(py::type::of(out_obj))));
    }
    auto out = py::reinterpret_borrow<py::array>(out_obj);
    require_same_dtype(op, like_arg, like, "out", out);
    require_same_shape(op, like_arg, like, "out", out);
    require_c_contiguous(op, "out", out);
    require_writeable(op, "out", out);
    return out;
}

// The kernels read element i of their first input just before writing element i of the output, so
// `out` may be that input itself; any other overlap would read values already overwritten.
void require_same_or_apart(const std::string& op, const char* arg, const py::array& in, const py::array& out) {
    if (in.data() != out.data() && overlaps(in, out)) {
        value_error(op, std::string("argument 'out' must be '") + arg + "' itself or share no memory with it");
    }
}

template <typename T>
py::array activation_forward_t(const std::string& op, const py::array& x, const py::object& out_obj,
                               kernels::Activation kind, const kernels::ActivationParams& p) {
    auto xc = contiguous<T>(x);
    py::array y = out_obj.is_none() ? py::array(py::array_t<T>(shape_of(x))) : out_array(op, out_obj, "x", x);
    if (!out_obj.is_none()) require_same_or_apart(op, "x", xc, y);
    T* out = static_cast<T*>(y.mutable_data());
    const T* in = xc.data();
    const int64_t n = x.size();
    {
        py::gil_scoped_release nogil;
        kernels::activation_forward(out, in, n, kind, p);
    }
    return y;
}

template <typename T>
py::array activation_backward_t(const std::string& op, const py::array& dy, const std::optional<py::array>& x,
                                const std::optional<py::array>& y, const py::object& out_obj,
                                kernels::Activation kind, const kernels::ActivationParams& p) {
    auto dyc = contiguous<T>(dy);
    py::array_t<T, py::array::c_style> xc, yc;
    if (x) xc = contiguous<T>(*x);
    if (y) yc = contiguous<T>(*y);
    py::array dx = out_obj.is_none() ? py::array(py::array_t<T>(shape_of(dy))) : out_array(op, out_obj, "dy", dy);
    if (!out_obj.is_none()) {
        require_same_or_apart(op, "dy", dyc, dx);
        if (x) require_no_alias(op, "x", xc, "out", dx);
        if (y) require_no_alias(op, "y", yc, "out", dx);
    }
    T* out = static_cast<T*>(dx.mutable_data());
    const T *g = dyc.data(), *xp = x ? xc.data() : nullptr, *yp = y ? yc.data() : nullptr;
    const int64_t n = dy.size();
    {
        py::gil_scoped_release nogil;
        kernels::activation_backward(out, g, xp, yp, n, kind, p);
    }
    return dx;
}

// f(y, x, rows, cols) over the last axis: one helper for softmax_forward and log_softmax_forward.
template <typename T, typename Kernel>
py::array row_forward_t(const std::string& op, const py::array& x, Kernel kernel) {
    const auto [rows, cols] = last_axis_rows(op, "x", x);
    auto xc = contiguous<T>(x);
    py::array_t<T> y(shape_of(x));
    T* out = y.mutable_data();
    const T* in = xc.data();
    {
        py::gil_scoped_release nogil;
        kernel(out, in, rows, cols);
    }
    return std::move(y);
}

// f(dx, dy, y, rows, cols) over the last axis: softmax_backward and log_softmax_backward.
template <typename T, typename Kernel>
py::array row_backward_t(const std::string& op, const py::array& dy, const py::array& y, Kernel kernel) {
    require_same_dtype(op, "dy", dy, "y", y);
    require_same_shape(op, "dy", dy, "y", y);
    const auto [rows, cols] = last_axis_rows(op, "y", y);
    auto dyc = contiguous<T>(dy);
    auto yc = contiguous<T>(y);
    py::array_t<T> dx(shape_of(y));
    T* out = dx.mutable_data();
    const T *g = dyc.data(), *v = yc.data();
    {
        py::gil_scoped_release nogil;
        kernel(out, g, v, rows, cols);
    }
    return std::move(dx);
}

}  // namespace

void bind_activations(py::module_& m) {
    py::list names;
    for (const auto& entry : ACTIVATION_TABLE) names.append(entry.first);
    m.attr("ACTIVATIONS") = py::tuple(names);
    m.def("activation_forward",
          [](const std::string& name, const py::array& x, std::optional<double> negative_slope,
             std::optional<double> max_value, double threshold, double alpha, bool approximate,
             const py::object& out) {
              const std::string op = "activation_forward('" + name + "')";
              const auto kind = parse_activation(op, name, approximate);
              const auto p = activation_params(op, kind, negative_slope, max_value, threshold, alpha);
              return dispatch_float(op, "x", x, [&](auto t) { return activation_forward_t<decltype(t)>(op, x, out, kind, p); });
          },
          py::arg("name"), py::arg("x"), py::kw_only(), py::arg("negative_slope") = py::none(),
          py::arg("max_value") = py::none(), py::arg("threshold") = 0.0, py::arg("alpha") = 1.0,
          py::arg("approximate") = false, py::arg("out") = py::none(),
          "y = activation(x), elementwise; formulas and parameters as Backend.<name>_forward. "
          "out: None, x itself (in place) or an array of x's shape and dtype sharing no memory with it.");
    m.def("activation_backward",
          [](const std::string& name, const py::array& dy, std::optional<py::array> x,
             std::optional<py::array> y, std::optional<double> negative_slope,
             std::optional<double> max_value, double threshold, double alpha, bool approximate,
             const py::object& out) {
              const std::string op = "activation_backward('" + name + "')";
              const auto kind = parse_activation(op, name, approximate);
              const auto p = activation_params(op, kind, negative_slope, max_value, threshold, alpha);
              const int bits = float_bits(op, "dy", dy);
              // Only the saved tensors this derivative reads are required and checked.
              const bool need_x = kernels::activation_backward_needs_x(kind);
              const bool need_y = kernels::activation_backward_needs_y(kind);
              if (need_x && !x) value_error(op, "needs argument 'x'; received None");
              if (need_y && !y) value_error(op, "needs argument 'y'; received None");
              if (!need_x) x.reset();
              if (!need_y) y.reset();
              if (x) {
                  require_same_dtype(op, "dy", dy, "x", *x);
                  require_same_shape(op, "dy", dy, "x", *x);
              }
              if (y) {
                  require_same_dtype(op, "dy", dy, "y", *y);
                  require_same_shape(op, "dy", dy, "y", *y);
              }
              return with_float(bits, [&](auto t) { return activation_backward_t<decltype(t)>(op, dy, x, y, out, kind, p); });
          },
          py::arg("name"), py::arg("dy"), py::arg("x") = py::none(), py::arg("y") = py::none(),
          py::kw_only(), py::arg("negative_slope") = py::none(), py::arg("max_value") = py::none(),
          py::arg("threshold") = 0.0, py::arg("alpha") = 1.0, py::arg("approximate") = false,
          py::arg("out") = py::none(),
          "dx of activation(x) given dy and the saved x and/or y (as Backend.<name>_backward). "
          "out: None, dy itself (in place) or an array of dy's shape and dtype sharing no memory with dy, x or y.");

    m.def("softmax_forward", [](const py::array& x) {
        return dispatch_float("softmax_forward", "x", x, [&](auto t) {
            using T = decltype(t);
            return row_forward_t<T>("softmax_forward", x, kernels::softmax_forward<T>);
        });
    }, py::arg("x"), "y = softmax(x) over the last axis.");
    m.def("softmax_backward", [](const py::array& dy, const py::array& y) {
        return dispatch_float("softmax_backward", "dy", dy, [&](auto t) {
            using T = decltype(t);
            return row_backward_t<T>("softmax_backward", dy, y, kernels::softmax_backward<T>);
        });
    }, py::arg("dy"), py::arg("y"), "dx = y * (dy - sum(dy * y)) over the last axis.");
    m.def("log_softmax_forward", [](const py::array& x) {
        return dispatch_float("log_softmax_forward", "x", x, [&](auto t) {
            using T = decltype(t);
            return row_forward_t<T>("log_softmax_forward", x, kernels::log_softmax_forward<T>);
        });
    }, py::arg("x"), "y = log_softmax(x) over the last axis.");
    m.def("log_softmax_backward", [](const py::array& dy, const py::array& y) {
        return dispatch_float("log_softmax_backward", "dy", dy, [&](auto t) {
            using T = decltype(t);
            return row_backward_t<T>("log_softmax_backward", dy, y, kernels::log_softmax_backward<T>);
        });
    }, py::arg("dy"), py::arg("y"), "dx = dy - exp(y) * sum(dy) over the last axis.");
}

}  // namespace pyminidl::bind
