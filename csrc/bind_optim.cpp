// bind_optim.cpp — the in-place optimizer updates (sgd, adam, rmsprop, adagrad).
#include "bind_common.h"

#include "optim.h"

#include <algorithm>
#include <deque>

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

// The hyper-parameters of SGD and Adam, as the single- and multi-tensor updates check them.
void check_sgd_hypers(const std::string& op, double lr, double momentum, double weight_decay) {
    check_hyper(op, "lr", lr, 0.0, INF, true);
    check_hyper(op, "momentum", momentum, 0.0, 1.0, false);
    check_hyper(op, "weight_decay", weight_decay, 0.0, INF, true);
}

void check_adam_hypers(const std::string& op, double lr, int64_t step, double beta_1, double beta_2,
                       double epsilon, double weight_decay) {
    check_hyper(op, "lr", lr, 0.0, INF, true);
    if (step < 1) value_error(op, "step counts from 1. Received: step=" + std::to_string(step));
    check_hyper(op, "beta_1", beta_1, 0.0, 1.0, true);
    check_hyper(op, "beta_2", beta_2, 0.0, 1.0, true);
    check_hyper(op, "epsilon", epsilon, 0.0, INF, true);
    check_hyper(op, "weight_decay", weight_decay, 0.0, INF, true);
}

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

void py_sgd_update(const py::object& param_obj, const py::array& grad, const py::object& velocity,
                   double lr, double momentum, bool nesterov, double weight_decay) {
    const std::string op = "sgd_update";
    py::array param = inplace_array(op, "param", param_obj);
    const int bits = check_param_grad(op, param, grad);
    check_sgd_hypers(op, lr, momentum, weight_decay);
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
    check_adam_hypers(op, lr, step, beta_1, beta_2, epsilon, weight_decay);
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

// ---------------------------------------------------------------- multi-tensor updates

// The validated arrays of a multi-tensor update: per tensor j, params[j], grads[j] (read from
// a C-contiguous array of params[j]'s dtype, a copy when needed) and slots[s][j].
struct TensorLists {
    std::vector<py::array> params, grads;
    std::vector<std::vector<py::array>> slots;
    std::vector<int64_t> sizes;
    std::deque<std::string> names;  // the argument names the checks keep pointers to
    int bits = 32;

    const char* name(const char* list, std::size_t j) {
        names.push_back(std::string(list) + "[" + std::to_string(j) + "]");
        return names.back().c_str();
    }
};

py::sequence as_sequence(const std::string& op, const char* arg, const py::object& obj, std::size_t n) {
    if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj)) {
        type_error(op, std::string("argument '") + arg + "' must be a list of arrays. Received: " +
                           std::string(py::str(py::type::of(obj))));
    }
    auto seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() != n) {
        value_error(op, std::string("argument '") + arg + "' must hold one array per param (" + std::to_string(n) +
                            "). Received: " + std::to_string(seq.size()));
    }
    return seq;
}

// No in-place array of one tensor may share memory with any array of another tensor (the
// threads of the one region would read values another had overwritten); grads may share
// with each other, being read only.
void require_no_alias_across(const std::string& op, TensorLists& t) {
    // list: 0 params, 1 grads, 2 + k slot list k; names are built only for an error
    struct Span { const char *lo, *hi; std::size_t tensor, list; };
    std::vector<Span> spans;
    spans.reserve(t.params.size() * (2 + t.slots.size()));
    auto add = [&](const py::array& a, std::size_t j, std::size_t list) {
        if (a.size() == 0) return;
        auto [lo, hi] = byte_span(a);
        spans.push_back({lo, hi, j, list});
    };
    for (std::size_t j = 0; j < t.params.size(); ++j) {
        add(t.params[j], j, 0);
        add(t.grads[j], j, 1);
        for (std::size_t k = 0; k < t.slots.size(); ++k) add(t.slots[k][j], j, 2 + k);
    }
    auto name = [](const Span& s) {
        const std::string j = std::to_string(s.tensor);
        if (s.list < 2) return std::string(s.list == 0 ? "params[" : "grads[") + j + "]";
        return "slot " + std::to_string(s.list - 2) + " of params[" + j + "]";
    };
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.lo < b.lo; });
    for (std::size_t i = 0; i < spans.size(); ++i) {
        for (std::size_t k = i + 1; k < spans.size() && spans[k].lo < spans[i].hi; ++k) {
            const Span &a = spans[i], &b = spans[k];
            if (a.tensor != b.tensor && (a.list != 1 || b.list != 1)) {
                value_error(op, "arguments '" + name(a) + "' and '" + name(b) + "' share memory; pass distinct arrays");
            }
        }
    }
}

// params and grads: lists of one length; each (param, grad) pair checked as the single-tensor
// update checks it (naming params[j] / grads[j]), all of params[0]'s dtype.
TensorLists check_tensor_lists(const std::string& op, const py::object& params_obj, const py::object& grads_obj) {
    if (!py::isinstance<py::list>(params_obj) && !py::isinstance<py::tuple>(params_obj)) {
        type_error(op, "argument 'params' must be a list of arrays. Received: " +
                           std::string(py::str(py::type::of(params_obj))));
    }
    auto params = py::reinterpret_borrow<py::sequence>(params_obj);
    auto grads = as_sequence(op, "grads", grads_obj, params.size());
    TensorLists t;
    for (std::size_t j = 0; j < params.size(); ++j) {
        const char* pname = t.name("params", j);
        py::array p = inplace_array(op, pname, params[j]);
        const char* gname = t.name("grads", j);
        py::array g = as_array(op, gname, grads[j]);
        t.bits = float_bits(op, pname, p);
        if (j > 0) require_same_dtype(op, "params[0]", t.params[0], pname, p);
        require_same_dtype(op, pname, p, gname, g);
        require_same_shape(op, pname, p, gname, g);
        require_no_alias(op, pname, p, gname, g);
        t.params.push_back(p);
        t.grads.push_back(g);
        t.sizes.push_back(static_cast<int64_t>(p.size()));
    }
    return t;
}

// The slot list `arg` (one slot per param, each checked as check_slot does) appended to
// t.slots. Returns true, so that an optional list reads `!obj.is_none() && add_slot_list(...)`.
bool add_slot_list(const std::string& op, const char* arg, const py::object& obj, TensorLists& t,
                   std::vector<std::vector<std::pair<const char*, py::array>>>& seen) {
    auto seq = as_sequence(op, arg, obj, t.params.size());
    std::vector<py::array> slots;
    for (std::size_t j = 0; j < t.params.size(); ++j) {
        slots.push_back(check_slot(op, t.name(arg, j), seq[j], t.params[j], t.grads[j], seen[j]));
    }
    t.slots.push_back(std::move(slots));
    return true;
}

template <typename T>
std::vector<T*> pointers(std::vector<py::array>& arrays) {
    std::vector<T*> out;
    for (auto& a : arrays) out.push_back(static_cast<T*>(a.mutable_data()));
    return out;
}

// The grads as C-contiguous arrays of T (copies where needed), kept alive by `keep`.
template <typename T>
std::vector<const T*> grad_pointers(TensorLists& t, std::vector<py::array_t<T, py::array::c_style>>& keep) {
    std::vector<const T*> out;
    for (auto& g : t.grads) {
        keep.push_back(contiguous<T>(g));
        out.push_back(keep.back().data());
    }
    return out;
}

void py_sgd_update_multi(const py::object& params, const py::object& grads, const py::object& velocities,
                         double lr, double momentum, bool nesterov, double weight_decay) {
    const std::string op = "sgd_update_multi";
    TensorLists t = check_tensor_lists(op, params, grads);
    check_sgd_hypers(op, lr, momentum, weight_decay);
    std::vector<std::vector<std::pair<const char*, py::array>>> seen(t.params.size());
    const bool has_velocity = !velocities.is_none() && add_slot_list(op, "velocities", velocities, t, seen);
    require_no_alias_across(op, t);
    with_float(t.bits, [&](auto tag) {
        using T = decltype(tag);
        std::vector<py::array_t<T, py::array::c_style>> keep;
        auto g = grad_pointers<T>(t, keep);
        auto p = pointers<T>(t.params);
        std::vector<T*> v = has_velocity && momentum != 0.0 ? pointers<T>(t.slots[0]) : std::vector<T*>();
        py::gil_scoped_release nogil;
        kernels::sgd_update_multi<T>(p.data(), v.empty() ? nullptr : v.data(), g.data(), t.sizes.data(),
                                     static_cast<int64_t>(p.size()), lr, momentum, nesterov, weight_decay);
    });
}

void py_adam_update_multi(const py::object& params, const py::object& grads, const py::object& ms,
                          const py::object& vs, const py::object& vhats, double lr, int64_t step, double beta_1,
                          double beta_2, double epsilon, bool amsgrad, double weight_decay) {
    const std::string op = "adam_update_multi";
    TensorLists t = check_tensor_lists(op, params, grads);
    check_adam_hypers(op, lr, step, beta_1, beta_2, epsilon, weight_decay);
    std::vector<std::vector<std::pair<const char*, py::array>>> seen(t.params.size());
    add_slot_list(op, "ms", ms, t, seen);
    add_slot_list(op, "vs", vs, t, seen);
    if (amsgrad && vhats.is_none()) value_error(op, "needs argument 'vhats' (amsgrad=True); received None");
    // A list that is passed is checked even when unused, so aliasing is never accepted.
    const bool has_vhat = !vhats.is_none() && add_slot_list(op, "vhats", vhats, t, seen);
    require_no_alias_across(op, t);
    with_float(t.bits, [&](auto tag) {
        using T = decltype(tag);
        std::vector<py::array_t<T, py::array::c_style>> keep;
        auto g = grad_pointers<T>(t, keep);
        auto p = pointers<T>(t.params), m1 = pointers<T>(t.slots[0]), v1 = pointers<T>(t.slots[1]);
        std::vector<T*> h = has_vhat && amsgrad ? pointers<T>(t.slots[2]) : std::vector<T*>();
        py::gil_scoped_release nogil;
        kernels::adam_update_multi<T>(p.data(), m1.data(), v1.data(), h.empty() ? nullptr : h.data(), g.data(),
                                      t.sizes.data(), static_cast<int64_t>(p.size()), lr, step, beta_1, beta_2,
                                      epsilon, weight_decay);
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
    m.def("sgd_update_multi", &py_sgd_update_multi,
          py::arg("params"), py::arg("grads"), py::arg("velocities"), py::arg("lr"),
          py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("weight_decay") = 0.0,
          "In place: sgd_update over lists of params, grads and velocities (or None), one parallel region.");
    m.def("adam_update_multi", &py_adam_update_multi,
          py::arg("params"), py::arg("grads"), py::arg("ms"), py::arg("vs"), py::arg("vhats"),
          py::arg("lr"), py::arg("step"), py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
          py::arg("epsilon") = 1e-7, py::arg("amsgrad") = false, py::arg("weight_decay") = 0.0,
          "In place: adam_update over lists of params, grads and slots (vhats None without amsgrad), "
          "one parallel region.");
}

}  // namespace pyminidl::bind
