// bind_norm.cpp — batch normalization and layer normalization, forward and backward (float32).
//
// Checked before any memory is touched: dtypes, the axis (batch norm: one axis in range;
// layer norm: the trailing axes, which the kernels view as rows), the shapes of gamma, beta,
// mean and variance against x, a finite epsilon >= 0, and a non-empty reduction.
#include "bind_common.h"
#include "bind_spatial.h"

#include "norm.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

// An optional (None) or required float32 parameter of shape `want`, made contiguous.
std::optional<py::array_t<float, py::array::c_style>> param(const std::string& op, const char* arg,
                                                             const py::object& obj,
                                                             const std::vector<py::ssize_t>& want, bool required) {
    if (obj.is_none()) {
        if (required) value_error(op, std::string("argument '") + arg + "' is required here; received None");
        return std::nullopt;
    }
    py::array a = as_array(op, arg, obj);
    require_dtype<float>(op, arg, a);
    if (shape_of(a) != want) {
        value_error(op, std::string("argument '") + arg + "' must have shape " + tuple_str(want) +
                            ". Received: shape=" + shape_str(a));
    }
    return contiguous<float>(a);
}

const float* ptr(const std::optional<py::array_t<float, py::array::c_style>>& a) {
    return a ? a->data() : nullptr;
}

void check_eps(const std::string& op, double eps) {
    if (!std::isfinite(eps) || eps < 0.0) {
        value_error(op, "epsilon must be a finite number >= 0. Received: epsilon=" + std::to_string(eps));
    }
}

struct BnView {
    int64_t o, c, i;
    std::vector<py::ssize_t> param_shape;
};

BnView bn_view(const std::string& op, const py::array& x, int64_t axis) {
    require_dtype<float>(op, "x", x);
    const int64_t nd = x.ndim();
    if (nd < 1 || axis < -nd || axis >= nd) {
        value_error(op, "axis " + std::to_string(axis) + " is out of range for x of shape " + shape_str(x));
    }
    const int64_t ax = axis < 0 ? axis + nd : axis;
    BnView v{1, x.shape(ax), 1, {x.shape(ax)}};
    for (int64_t k = 0; k < ax; ++k) v.o *= x.shape(k);
    for (int64_t k = ax + 1; k < nd; ++k) v.i *= x.shape(k);
    return v;
}

py::tuple py_batch_norm_forward(const py::array& x, const py::object& gamma, const py::object& beta, int64_t axis,
                                double epsilon, const py::object& mean, const py::object& variance) {
    const std::string op = "batch_norm_forward";
    const BnView v = bn_view(op, x, axis);
    check_eps(op, epsilon);
    auto g = param(op, "gamma", gamma, v.param_shape, false), b = param(op, "beta", beta, v.param_shape, false);
    if (mean.is_none() != variance.is_none()) value_error(op, "pass both mean and variance, or neither");
    const bool training = mean.is_none();
    if (training && v.o * v.i == 0) {
        value_error(op, "batch statistics of an empty batch: x.shape=" + shape_str(x));
    }
    auto m = param(op, "mean", mean, v.param_shape, false), s = param(op, "variance", variance, v.param_shape, false);
    auto xc = contiguous<float>(x);
    py::array_t<float> y(shape_of(x)), mean_out(v.param_shape), var_out(v.param_shape);
    float *yp = y.mutable_data(), *mp = mean_out.mutable_data(), *sp = var_out.mutable_data();
    const float *xp = xc.data(), *gp = ptr(g), *bp = ptr(b), *mi = ptr(m), *si = ptr(s);
    const float eps = float(epsilon);
    {
        py::gil_scoped_release nogil;
        if (training) {
            kernels::batch_norm_forward(yp, mp, sp, xp, gp, bp, v.o, v.c, v.i, eps);
        } else {
            std::copy(mi, mi + v.c, mp);
            std::copy(si, si + v.c, sp);
            kernels::batch_norm_apply(yp, xp, mi, si, gp, bp, v.o, v.c, v.i, eps);
        }
    }
    return py::make_tuple(y, mean_out, var_out);
}

py::tuple py_batch_norm_backward(const py::array& dy, const py::array& x, const py::object& gamma,
                                 const py::object& mean, const py::object& variance, int64_t axis, double epsilon,
                                 bool training) {
    const std::string op = "batch_norm_backward";
    const BnView v = bn_view(op, x, axis);
    check_eps(op, epsilon);
    require_dtype<float>(op, "dy", dy);
    require_same_shape(op, "dy", dy, "x", x);
    auto g = param(op, "gamma", gamma, v.param_shape, false);
    auto m = param(op, "mean", mean, v.param_shape, true), s = param(op, "variance", variance, v.param_shape, true);
    auto dyc = contiguous<float>(dy);
    auto xc = contiguous<float>(x);
    py::array_t<float> dx(shape_of(x)), dg(v.param_shape), db(v.param_shape);
    float *dxp = dx.mutable_data(), *dgp = dg.mutable_data(), *dbp = db.mutable_data();
    const float *dyp = dyc.data(), *xp = xc.data(), *gp = ptr(g), *mp = ptr(m), *sp = ptr(s);
    {
        py::gil_scoped_release nogil;
        kernels::batch_norm_backward(dxp, dgp, dbp, dyp, xp, gp, mp, sp, v.o, v.c, v.i, float(epsilon), training);
    }
    return py::make_tuple(dx, dg, db);
}

struct LnView {
    int64_t r, d;
    std::vector<py::ssize_t> param_shape, stat_shape;
};

// The axes must be the trailing ones (in any order, each once): rows of D = their product.
LnView ln_view(const std::string& op, const py::array& x, std::vector<int64_t> axes) {
    require_dtype<float>(op, "x", x);
    const int64_t nd = x.ndim();
    for (auto& a : axes) {
        if (a < -nd || a >= nd) value_error(op, "axis " + std::to_string(a) + " is out of range for x of shape " + shape_str(x));
        if (a < 0) a += nd;
    }
    std::sort(axes.begin(), axes.end());
    const int64_t k = int64_t(axes.size());
    bool trailing = k >= 1;
    for (int64_t j = 0; trailing && j < k; ++j) trailing = axes[j] == nd - k + j;
    if (!trailing) value_error(op, "the kernel normalizes over the trailing axes only (each once); x.shape=" + shape_str(x));
    LnView v{1, 1, {}, {}};
    for (int64_t j = 0; j < nd; ++j) {
        const bool normed = j >= nd - k;
        (normed ? v.d : v.r) *= x.shape(j);
        if (normed) v.param_shape.push_back(x.shape(j));
        v.stat_shape.push_back(normed ? 1 : x.shape(j));
    }
    if (v.d == 0) value_error(op, "normalizing over zero elements: x.shape=" + shape_str(x));
    return v;
}

py::tuple py_layer_norm_forward(const py::array& x, const py::object& gamma, const py::object& beta,
                                const std::vector<int64_t>& axis, double epsilon) {
    const std::string op = "layer_norm_forward";
    const LnView v = ln_view(op, x, axis);
    check_eps(op, epsilon);
    auto g = param(op, "gamma", gamma, v.param_shape, false), b = param(op, "beta", beta, v.param_shape, false);
    auto xc = contiguous<float>(x);
    py::array_t<float> y(shape_of(x)), mean(v.stat_shape), var(v.stat_shape);
    float *yp = y.mutable_data(), *mp = mean.mutable_data(), *sp = var.mutable_data();
    const float *xp = xc.data(), *gp = ptr(g), *bp = ptr(b);
    {
        py::gil_scoped_release nogil;
        kernels::layer_norm_forward(yp, mp, sp, xp, gp, bp, v.r, v.d, float(epsilon));
    }
    return py::make_tuple(y, mean, var);
}

py::tuple py_layer_norm_backward(const py::array& dy, const py::array& x, const py::object& gamma,
                                 const py::object& mean, const py::object& variance,
                                 const std::vector<int64_t>& axis, double epsilon) {
    const std::string op = "layer_norm_backward";
    const LnView v = ln_view(op, x, axis);
    check_eps(op, epsilon);
    require_dtype<float>(op, "dy", dy);
    require_same_shape(op, "dy", dy, "x", x);
    auto g = param(op, "gamma", gamma, v.param_shape, false);
    auto m = param(op, "mean", mean, v.stat_shape, true), s = param(op, "variance", variance, v.stat_shape, true);
    auto dyc = contiguous<float>(dy);
    auto xc = contiguous<float>(x);
    py::array_t<float> dx(shape_of(x)), dg(v.param_shape), db(v.param_shape);
    float *dxp = dx.mutable_data(), *dgp = dg.mutable_data(), *dbp = db.mutable_data();
    const float *dyp = dyc.data(), *xp = xc.data(), *gp = ptr(g), *mp = ptr(m), *sp = ptr(s);
    {
        py::gil_scoped_release nogil;
        kernels::layer_norm_backward(dxp, dgp, dbp, dyp, xp, gp, mp, sp, v.r, v.d, float(epsilon));
    }
    return py::make_tuple(dx, dg, db);
}

}  // namespace

void bind_norm(py::module_& m) {
    m.def("batch_norm_forward", &py_batch_norm_forward, py::arg("x"), py::arg("gamma"), py::arg("beta"),
          py::arg("axis"), py::arg("epsilon"), py::arg("mean") = py::none(), py::arg("variance") = py::none(),
          "Batch norm over every axis but `axis`: (y, mean, variance); batch statistics unless given.");
    m.def("batch_norm_backward", &py_batch_norm_backward, py::arg("dy"), py::arg("x"), py::arg("gamma"),
          py::arg("mean"), py::arg("variance"), py::arg("axis"), py::arg("epsilon"), py::arg("training") = true,
          "(dx, dgamma, dbeta) of batch norm.");
    m.def("layer_norm_forward", &py_layer_norm_forward, py::arg("x"), py::arg("gamma"), py::arg("beta"),
          py::arg("axis"), py::arg("epsilon"), "Layer norm over the trailing `axis` axes: (y, mean, variance).");
    m.def("layer_norm_backward", &py_layer_norm_backward, py::arg("dy"), py::arg("x"), py::arg("gamma"),
          py::arg("mean"), py::arg("variance"), py::arg("axis"), py::arg("epsilon"),
          "(dx, dgamma, dbeta) of layer norm.");
}

}  // namespace pyminidl::bind
