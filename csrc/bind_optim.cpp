// bind_optim.cpp — the in-place optimizer updates (sgd, adam, rmsprop, adagrad).
#include "bind_common.h"

#include "optim.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

std::string num_str(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

// A hyper-parameter must be finite and in [lo, hi] ([lo, hi) when hi_open).
void check_hyper(const std::string& op, const char* name, double v, double lo, double hi, bool hi_open) {
    const bool ok = std::isfinite(v) && v >= lo && (hi_open ? v < hi : v <= hi);
    if (!ok) {
        value_error(op, std::string(name) + " must be a finite number in [" + num_str(lo) + ", " + num_str(hi) +
                            (hi_open ? ")" : "]") + ". Received: " + name + "=" + num_str(v));
    }
}

constexpr double INF = std::numeric_limits<double>::infinity();

// An argument updated in place: a real ndarray (a list would be converted to a temporary
// and the update lost), C-contiguous (no copy may stand in for it) and writeable.
py::array inplace_array(const std::string& op, const char* arg, const py::object& obj) {
    if (!py::isinstance<py::array>(obj)) {
        type_error(op, std::string("argument '") + arg + "' is updated in place and must be a numpy.ndarray. "
                       "Received: " + std::string(py::str(py::type::of(obj))));
    }
    auto a = py::reinterpret_borrow<py::array>(obj);
    require_c_contiguous(op, arg, a);
    require_writeable(op, arg, a);
    return a;
}

// param and grad: float type, same dtype and shape, distinct memory. Returns 32 or 64.
int check_param_grad(const std::string& op, const py::array& param, const py::array& grad) {
    const int bits = float_bits(op, "param", param);
    require_same_dtype(op, "param", param, "grad", grad);
    require_same_shape(op, "param", param, "grad", grad);
    require_no_alias(op, "param", param, "grad", grad);
    return bits;
}

// A slot the optimizer's options need: in place, the dtype and shape of param, and sharing
// memory with none of param, grad or the slots checked before it (the fused loop would read
// values it had already overwritten).
py::array check_slot(const std::string& op, const char* arg, const py::object& obj, const py::array& param,
                     const py::array& grad, std::vector<std::pair<const char*, py::array>>& seen) {
    if (obj.is_none()) {
        value_error(op, std::string("needs argument '") + arg + "' (a slot shaped like param); received None");
    }
    py::array a = inplace_array(op, arg, obj);
    require_same_dtype(op, "param", param, arg, a);
    require_same_shape(op, "param", param, arg, a);
    require_no_alias(op, arg, a, "param", param);
    require_no_alias(op, arg, a, "grad", grad);
    for (const auto& [other, b] : seen) require_no_alias(op, arg, a, other, b);
    seen.emplace_back(arg, a);
    return a;
}

template <typename T>
T* data_or_null(std::optional<py::array>& a) {
    return a ? static_cast<T*>(a->mutable_data()) : nullptr;
}

// Calls f(T{}) with T the float type of `bits`.
template <typename F>
void with_float(int bits, F f) {
    if (bits == 32) f(float{});
    else f(double{});
}

void py_sgd_update(const py::object& param_obj, const py::array& grad, const py::object& velocity,
                   double lr, double momentum, bool nesterov, double weight_decay) {
    const std::string op = "sgd_update";
    py::array param = inplace_array(op, "param", param_obj);
    const int bits = check_param_grad(op, param, grad);
    check_hyper(op, "lr", lr, 0.0, INF, true);
    check_hyper(op, "momentum", momentum, 0.0, 1.0, false);
    check_hyper(op, "weight_decay", weight_decay, 0.0, INF, true);
    std::vector<std::pair<const char*, py::array>> seen;
    std::optional<py::array> vel;
    // As the reference: no velocity (or momentum 0) means plain SGD. A velocity that is
    // passed is checked even then, so an aliased or mis-shaped slot is never accepted.
    if (!velocity.is_none()) vel = check_slot(op, "velocity", velocity, param, grad, seen);
    if (momentum == 0.0) vel.reset();
    with_float(bits, [&](auto tag) {
        using T = decltype(tag);
        auto g = contiguous<T>(grad);
        T *p = static_cast<T*>(param.mutable_data()), *v = data_or_null<T>(vel);
        const T* gp = g.data();
        const int64_t n = param.size();
        py::gil_scoped_release nogil;
        kernels::sgd_update<T>(p, v, gp, n, lr, momentum, nesterov, weight_decay);
    });
}

void py_adam_update(const py::object& param_obj, const py::array& grad, const py::object& m_obj,
                    const py::object& v_obj, const py::object& vhat_obj, double lr, int64_t step,
                    double beta_1, double beta_2, double epsilon, bool amsgrad,
                    double weight_decay) {
    const std::string op = "adam_update";
    py::array param = inplace_array(op, "param", param_obj);
    const int bits = check_param_grad(op, param, grad);
    check_hyper(op, "lr", lr, 0.0, INF, true);
    if (step < 1) value_error(op, "step counts from 1. Received: step=" + std::to_string(step));
    check_hyper(op, "beta_1", beta_1, 0.0, 1.0, true);
    check_hyper(op, "beta_2", beta_2, 0.0, 1.0, true);
    check_hyper(op, "epsilon", epsilon, 0.0, INF, true);
    check_hyper(op, "weight_decay", weight_decay, 0.0, INF, true);
    std::vector<std::pair<const char*, py::array>> seen;
    py::array m1 = check_slot(op, "m", m_obj, param, grad, seen);
    py::array v1 = check_slot(op, "v", v_obj, param, grad, seen);
    std::optional<py::array> vhat;
    // A slot that is passed is checked even when unused, so aliasing is never accepted.
    if (amsgrad || !vhat_obj.is_none()) vhat = check_slot(op, "vhat", vhat_obj, param, grad, seen);
    if (!amsgrad) vhat.reset();
    with_float(bits, [&](auto tag) {
        using T = decltype(tag);
        auto g = contiguous<T>(grad);
        T *p = static_cast<T*>(param.mutable_data()), *mp = static_cast<T*>(m1.mutable_data());
        T *vp = static_cast<T*>(v1.mutable_data()), *hp = data_or_null<T>(vhat);
        const T* gp = g.data();
        const int64_t n = param.size();
        py::gil_scoped_release nogil;
        kernels::adam_update<T>(p, mp, vp, hp, gp, n, lr, step, beta_1, beta_2, epsilon, weight_decay);
    });
}

void py_rmsprop_update(const py::object& param_obj, const py::array& grad,
                       const py::object& velocity_obj, const py::object& momentum_obj,
                       const py::object& average_obj, double lr, double rho, double momentum,
                       double epsilon, bool centered, double weight_decay) {
    const std::string op = "rmsprop_update";
    py::array param = inplace_array(op, "param", param_obj);
    const int bits = check_param_grad(op, param, grad);
    check_hyper(op, "lr", lr, 0.0, INF, true);
    check_hyper(op, "rho", rho, 0.0, 1.0, true);
    check_hyper(op, "momentum", momentum, 0.0, 1.0, false);
    check_hyper(op, "epsilon", epsilon, 0.0, INF, true);
    check_hyper(op, "weight_decay", weight_decay, 0.0, INF, true);
    std::vector<std::pair<const char*, py::array>> seen;
    py::array vel = check_slot(op, "velocity", velocity_obj, param, grad, seen);
    std::optional<py::array> mom, avg;
    // A slot that is passed is checked even when unused, so aliasing is never accepted.
    if (momentum > 0.0 || !momentum_obj.is_none()) mom = check_slot(op, "momentum_buf", momentum_obj, param, grad, seen);
    if (centered || !average_obj.is_none()) avg = check_slot(op, "average_grad", average_obj, param, grad, seen);
    if (!(momentum > 0.0)) mom.reset();
    if (!centered) avg.reset();
    with_float(bits, [&](auto tag) {
        using T = decltype(tag);
        auto g = contiguous<T>(grad);
        T *p = static_cast<T*>(param.mutable_data()), *vp = static_cast<T*>(vel.mutable_data());
        T *mp = data_or_null<T>(mom), *ap = data_or_null<T>(avg);
        const T* gp = g.data();
        const int64_t n = param.size();
        py::gil_scoped_release nogil;
        kernels::rmsprop_update<T>(p, vp, mp, ap, gp, n, lr, rho, momentum, epsilon, weight_decay);
    });
}

void py_adagrad_update(const py::object& param_obj, const py::array& grad,
                       const py::object& acc_obj, double lr, double epsilon, double weight_decay) {
    const std::string op = "adagrad_update";
    py::array param = inplace_array(op, "param", param_obj);
    const int bits = check_param_grad(op, param, grad);
    check_hyper(op, "lr", lr, 0.0, INF, true);
    check_hyper(op, "epsilon", epsilon, 0.0, INF, true);
    check_hyper(op, "weight_decay", weight_decay, 0.0, INF, true);
    std::vector<std::pair<const char*, py::array>> seen;
    py::array acc = check_slot(op, "accumulator", acc_obj, param, grad, seen);
    with_float(bits, [&](auto tag) {
        using T = decltype(tag);
        auto g = contiguous<T>(grad);
        T *p = static_cast<T*>(param.mutable_data()), *ap = static_cast<T*>(acc.mutable_data());
        const T* gp = g.data();
        const int64_t n = param.size();
        py::gil_scoped_release nogil;
        kernels::adagrad_update<T>(p, ap, gp, n, lr, epsilon, weight_decay);
    });
}

}  // namespace

void bind_optim(py::module_& m) {
    m.def("sgd_update", &py_sgd_update,
          py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"),
          py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("weight_decay") = 0.0,
          "In place: Keras SGD (momentum, nesterov, decoupled weight decay).");
    m.def("adam_update", &py_adam_update,
          py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::arg("vhat"),
          py::arg("lr"), py::arg("step"), py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
          py::arg("epsilon") = 1e-7, py::arg("amsgrad") = false, py::arg("weight_decay") = 0.0,
          "In place: Keras Adam / AdamW (amsgrad, bias-corrected step size, decoupled weight decay).");
    m.def("rmsprop_update", &py_rmsprop_update,
          py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("momentum_buf"),
          py::arg("average_grad"), py::arg("lr"), py::arg("rho") = 0.9, py::arg("momentum") = 0.0,
          py::arg("epsilon") = 1e-7, py::arg("centered") = false, py::arg("weight_decay") = 0.0,
          "In place: Keras RMSprop (momentum, centered, decoupled weight decay).");
    m.def("adagrad_update", &py_adagrad_update,
          py::arg("param"), py::arg("grad"), py::arg("accumulator"), py::arg("lr"),
          py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0,
          "In place: Keras Adagrad (decoupled weight decay).");
}

}  // namespace pyminidl::bind
