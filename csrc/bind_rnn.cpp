// bind_rnn.cpp — the whole-sequence recurrent ops (simple_rnn / lstm / gru, forward and
// backward) and the Embedding gather / scatter-add, float32. Every shape of every array
// (caches included) is checked against (N, T, I, U) before a kernel runs, and token ids against
// the table size, so no argument can make a kernel read out of bounds.
#include "bind_common.h"

#include "rnn.h"

#include <memory>

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

using farr = py::array_t<float, py::array::c_style>;

std::string dims_str(const std::vector<int64_t>& d) {
    std::string s = "(";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + (d.size() == 1 ? ",)" : ")");
}

// A float32 array of exactly `dims`, C-contiguous (strided views copied).
farr required(const std::string& op, const char* arg, const py::array& a, const std::vector<int64_t>& dims) {
    require_dtype<float>(op, arg, a);
    bool ok = a.ndim() == py::ssize_t(dims.size());
    for (size_t i = 0; ok && i < dims.size(); ++i) ok = a.shape(i) == dims[i];
    if (!ok) value_error(op, std::string("argument '") + arg + "' must have shape " + dims_str(dims) +
                                 ". Received: shape=" + shape_str(a));
    return contiguous<float>(a);
}

std::optional<farr> optional_arr(const std::string& op, const char* arg, const py::object& o,
                                 const std::vector<int64_t>& dims) {
    if (o.is_none()) return std::nullopt;
    return required(op, arg, as_array(op, arg, o), dims);
}

const float* ptr(const std::optional<farr>& a) { return a ? a->data() : nullptr; }

// The mask: None or a bool array (N, T), as bytes.
std::optional<py::array_t<bool, py::array::c_style>> mask_arg(const std::string& op, const py::object& o,
                                                              int64_t N, int64_t T) {
    if (o.is_none()) return std::nullopt;
    py::array a = as_array(op, "mask", o);
    if (!py::dtype::of<bool>().equal(a.dtype()))
        type_error(op, "argument 'mask' must have dtype bool. Received: dtype=" + std::string(py::str(a.dtype())));
    if (a.ndim() != 2 || a.shape(0) != N || a.shape(1) != T)
        value_error(op, "argument 'mask' must have shape " + dims_str({N, T}) + ". Received: shape=" + shape_str(a));
    return py::array_t<bool, py::array::c_style>(a);
}

const uint8_t* mask_ptr(const std::optional<py::array_t<bool, py::array::c_style>>& m) {
    return m ? reinterpret_cast<const uint8_t*>(m->data()) : nullptr;
}

int act_code(const std::string& op, const std::string& name) {
    static const char* names[] = {"tanh", "sigmoid", "relu", "hard_sigmoid", "linear"};
    for (int i = 0; i < 5; ++i)
        if (name == names[i]) return i;
    value_error(op, "activation '" + name + "' is not supported by the recurrent kernels; use one of "
                    "tanh, sigmoid, relu, hard_sigmoid, linear");
}

// (N, T, I) from x and U from the recurrent kernel (U, k U), both float32 and consistent.
kernels::RnnShape seq_shape(const std::string& op, const py::array& x, const py::array& r, int64_t k) {
    require_dtype<float>(op, "x", x);
    require_ndim(op, "x", x, 3);
    require_dtype<float>(op, "recurrent_kernel", r);
    require_ndim(op, "recurrent_kernel", r, 2);
    if (r.shape(1) != k * r.shape(0))
        value_error(op, "argument 'recurrent_kernel' must have shape (U, " + std::to_string(k) +
                            " * U). Received: shape=" + shape_str(r));
    return {x.shape(0), x.shape(1), x.shape(2), r.shape(0)};
}

farr out(std::vector<py::ssize_t> shape) { return farr(shape); }

// A backward's scratch, not zero-filled: the kernels write all of it before reading it (a
// zeroed std::vector cost a memset of the whole (N, T, k U) per call).
std::unique_ptr<float[]> scratch(int64_t elems) {
    return std::unique_ptr<float[]>(new float[size_t(std::max<int64_t>(elems, 1))]);
}

py::object none_or(const std::optional<farr>& a) { return a ? py::object(*a) : py::none(); }

}  // namespace

namespace {

// The common inputs of a forward: x, kernel (I, k U), recurrent kernel, bias (bias_dims), h0.
struct FwdArgs {
    kernels::RnnShape s;
    farr x, w, r;
    std::optional<farr> b, h0;
    std::optional<py::array_t<bool, py::array::c_style>> mask;
};

FwdArgs fwd_args(const std::string& op, const py::array& x, const py::array& w, const py::array& r,
                 const py::object& b, const py::object& h0, const py::object& mask, int64_t k,
                 bool bias_two_rows = false) {
    const auto s = seq_shape(op, x, r, k);
    const std::vector<int64_t> bias_dims = bias_two_rows ? std::vector<int64_t>{2, k * s.U}
                                                         : std::vector<int64_t>{k * s.U};
    FwdArgs a{s, required(op, "x", x, {s.N, s.T, s.I}), required(op, "kernel", w, {s.I, k * s.U}),
              required(op, "recurrent_kernel", r, {s.U, k * s.U}), optional_arr(op, "bias", b, bias_dims),
              optional_arr(op, "h0", h0, {s.N, s.U}), mask_arg(op, mask, s.N, s.T)};
    return a;
}

// The common inputs of a backward: dy (N, T, U), dh (N, U) or None, the forward's x and weights,
// mask, and the caches gates (N, T, k U) and hprev (N, T, U).
struct BwdArgs {
    kernels::RnnShape s;
    farr dy, x, w, r, gates, hprev;
    std::optional<farr> dh;
    std::optional<py::array_t<bool, py::array::c_style>> mask;
};

BwdArgs bwd_args(const std::string& op, const py::array& dy, const py::object& dh, const py::array& x,
                 const py::array& w, const py::array& r, const py::object& mask, const py::array& gates,
                 const py::array& hprev, int64_t k) {
    const auto s = seq_shape(op, x, r, k);
    BwdArgs a{s, required(op, "dy", dy, {s.N, s.T, s.U}), required(op, "x", x, {s.N, s.T, s.I}),
              required(op, "kernel", w, {s.I, k * s.U}), required(op, "recurrent_kernel", r, {s.U, k * s.U}),
              required(op, "gates", gates, {s.N, s.T, k * s.U}), required(op, "hprev", hprev, {s.N, s.T, s.U}),
              optional_arr(op, "dh", dh, {s.N, s.U}), mask_arg(op, mask, s.N, s.T)};
    return a;
}

py::tuple py_simple_rnn_forward(py::array x, py::array w, py::array r, py::object b, py::object h0,
                                py::object mask, const std::string& activation) {
    const std::string op = "simple_rnn_forward";
    auto a = fwd_args(op, x, w, r, b, h0, mask, 1);
    const int act = act_code(op, activation);
    const auto s = a.s;
    farr y = out({s.N, s.T, s.U}), hT = out({s.N, s.U}), gates = out({s.N, s.T, s.U}), hprev = out({s.N, s.T, s.U});
    float *py_ = y.mutable_data(), *ph = hT.mutable_data(), *pg = gates.mutable_data(), *pp = hprev.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::simple_rnn_forward(py_, ph, pg, pp, a.x.data(), a.w.data(), a.r.data(), ptr(a.b), ptr(a.h0),
                                    mask_ptr(a.mask), s, act);
    }
    return py::make_tuple(y, hT, gates, hprev);
}

// The inference forward: (y, hT), no caches.
py::tuple py_simple_rnn_inference(py::array x, py::array w, py::array r, py::object b, py::object h0,
                                  py::object mask, const std::string& activation) {
    const std::string op = "simple_rnn_inference";
    auto a = fwd_args(op, x, w, r, b, h0, mask, 1);
    const int act = act_code(op, activation);
    const auto s = a.s;
    farr y = out({s.N, s.T, s.U}), hT = out({s.N, s.U});
    float *py_ = y.mutable_data(), *ph = hT.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::simple_rnn_inference(py_, ph, a.x.data(), a.w.data(), a.r.data(), ptr(a.b), ptr(a.h0),
                                      mask_ptr(a.mask), s, act);
    }
    return py::make_tuple(y, hT);
}

py::tuple py_simple_rnn_backward(py::array dy, py::object dh, py::array x, py::array w, py::array r, py::object mask,
                                 py::array gates, py::array hprev, bool has_bias, const std::string& activation,
                                 bool need_dx) {
    const std::string op = "simple_rnn_backward";
    auto a = bwd_args(op, dy, dh, x, w, r, mask, gates, hprev, 1);
    const int act = act_code(op, activation);
    const auto s = a.s;
    std::optional<farr> dx, db;
    if (need_dx) dx = out({s.N, s.T, s.I});
    if (has_bias) db = out({s.U});
    farr dW = out({s.I, s.U}), dR = out({s.U, s.U}), dh0 = out({s.N, s.U});
    const auto work = scratch(s.N * s.T * s.U);
    float *pdx = dx ? dx->mutable_data() : nullptr, *pdb = db ? db->mutable_data() : nullptr;
    float *pdw = dW.mutable_data(), *pdr = dR.mutable_data(), *pdh = dh0.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::simple_rnn_backward(pdx, pdw, pdr, pdb, pdh, a.dy.data(), ptr(a.dh), a.x.data(), a.w.data(),
                                     a.r.data(), mask_ptr(a.mask), a.gates.data(), a.hprev.data(), s, act, work.get());
    }
    return py::make_tuple(none_or(dx), dW, dR, none_or(db), dh0);
}

py::tuple py_lstm_forward(py::array x, py::array w, py::array r, py::object b, py::object h0, py::object c0,
                          py::object mask, const std::string& activation, const std::string& recurrent_activation) {
    const std::string op = "lstm_forward";
    auto a = fwd_args(op, x, w, r, b, h0, mask, 4);
    const auto c0a = optional_arr(op, "c0", c0, {a.s.N, a.s.U});
    const int act = act_code(op, activation), ract = act_code(op, recurrent_activation);
    const auto s = a.s;
    farr y = out({s.N, s.T, s.U}), hT = out({s.N, s.U}), cT = out({s.N, s.U}), gates = out({s.N, s.T, 4 * s.U}),
         hprev = out({s.N, s.T, s.U}), cprev = out({s.N, s.T, s.U});
    float *p0 = y.mutable_data(), *p1 = hT.mutable_data(), *p2 = cT.mutable_data(), *p3 = gates.mutable_data(),
          *p4 = hprev.mutable_data(), *p5 = cprev.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::lstm_forward(p0, p1, p2, p3, p4, p5, a.x.data(), a.w.data(), a.r.data(), ptr(a.b), ptr(a.h0),
                              ptr(c0a), mask_ptr(a.mask), s, act, ract);
    }
    return py::make_tuple(y, hT, cT, gates, hprev, cprev);
}

// The inference forward: (y, hT, cT), no caches (nothing is kept for a backward).
py::tuple py_lstm_inference(py::array x, py::array w, py::array r, py::object b, py::object h0, py::object c0,
                            py::object mask, const std::string& activation, const std::string& recurrent_activation) {
    const std::string op = "lstm_inference";
    auto a = fwd_args(op, x, w, r, b, h0, mask, 4);
    const auto c0a = optional_arr(op, "c0", c0, {a.s.N, a.s.U});
    const int act = act_code(op, activation), ract = act_code(op, recurrent_activation);
    const auto s = a.s;
    farr y = out({s.N, s.T, s.U}), hT = out({s.N, s.U}), cT = out({s.N, s.U});
    float *p0 = y.mutable_data(), *p1 = hT.mutable_data(), *p2 = cT.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::lstm_inference(p0, p1, p2, a.x.data(), a.w.data(), a.r.data(), ptr(a.b), ptr(a.h0), ptr(c0a),
                                mask_ptr(a.mask), s, act, ract);
    }
    return py::make_tuple(y, hT, cT);
}

py::tuple py_lstm_backward(py::array dy, py::object dh, py::object dc, py::array x, py::array w, py::array r,
                           py::object mask, py::array gates, py::array hprev, py::array cprev, bool has_bias,
                           const std::string& activation, const std::string& recurrent_activation, bool need_dx) {
    const std::string op = "lstm_backward";
    auto a = bwd_args(op, dy, dh, x, w, r, mask, gates, hprev, 4);
    const auto s = a.s;
    const auto dca = optional_arr(op, "dc", dc, {s.N, s.U});
    const auto cp = required(op, "cprev", cprev, {s.N, s.T, s.U});
    const int act = act_code(op, activation), ract = act_code(op, recurrent_activation);
    std::optional<farr> dx, db;
    if (need_dx) dx = out({s.N, s.T, s.I});
    if (has_bias) db = out({4 * s.U});
    farr dW = out({s.I, 4 * s.U}), dR = out({s.U, 4 * s.U}), dh0 = out({s.N, s.U}), dc0 = out({s.N, s.U});
    const auto work = scratch(s.N * s.T * 4 * s.U);
    float *pdx = dx ? dx->mutable_data() : nullptr, *pdb = db ? db->mutable_data() : nullptr;
    float *pdw = dW.mutable_data(), *pdr = dR.mutable_data(), *pdh = dh0.mutable_data(), *pdc = dc0.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::lstm_backward(pdx, pdw, pdr, pdb, pdh, pdc, a.dy.data(), ptr(a.dh), ptr(dca), a.x.data(), a.w.data(),
                               a.r.data(), mask_ptr(a.mask), a.gates.data(), a.hprev.data(), cp.data(), s, act, ract,
                               work.get());
    }
    return py::make_tuple(none_or(dx), dW, dR, none_or(db), dh0, dc0);
}

py::tuple py_gru_forward(py::array x, py::array w, py::array r, py::object b, py::object h0, py::object mask,
                         const std::string& activation, const std::string& recurrent_activation, bool reset_after) {
    const std::string op = "gru_forward";
    auto a = fwd_args(op, x, w, r, b, h0, mask, 3, reset_after);
    const int act = act_code(op, activation), ract = act_code(op, recurrent_activation);
    const auto s = a.s;
    farr y = out({s.N, s.T, s.U}), hT = out({s.N, s.U}), gates = out({s.N, s.T, 3 * s.U}),
         hprev = out({s.N, s.T, s.U}), extra = out({s.N, s.T, s.U});
    float *p0 = y.mutable_data(), *p1 = hT.mutable_data(), *p2 = gates.mutable_data(), *p3 = hprev.mutable_data(),
          *p4 = extra.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::gru_forward(p0, p1, p2, p3, p4, a.x.data(), a.w.data(), a.r.data(), ptr(a.b), ptr(a.h0),
                             mask_ptr(a.mask), s, act, ract, reset_after);
    }
    return py::make_tuple(y, hT, gates, hprev, extra);
}

// The inference forward: (y, hT), no caches.
py::tuple py_gru_inference(py::array x, py::array w, py::array r, py::object b, py::object h0, py::object mask,
                           const std::string& activation, const std::string& recurrent_activation, bool reset_after) {
    const std::string op = "gru_inference";
    auto a = fwd_args(op, x, w, r, b, h0, mask, 3, reset_after);
    const int act = act_code(op, activation), ract = act_code(op, recurrent_activation);
    const auto s = a.s;
    farr y = out({s.N, s.T, s.U}), hT = out({s.N, s.U});
    float *p0 = y.mutable_data(), *p1 = hT.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::gru_inference(p0, p1, a.x.data(), a.w.data(), a.r.data(), ptr(a.b), ptr(a.h0), mask_ptr(a.mask), s,
                               act, ract, reset_after);
    }
    return py::make_tuple(y, hT);
}

py::tuple py_gru_backward(py::array dy, py::object dh, py::array x, py::array w, py::array r, py::object mask,
                          py::array gates, py::array hprev, py::array extra, bool has_bias,
                          const std::string& activation, const std::string& recurrent_activation, bool reset_after,
                          bool need_dx) {
    const std::string op = "gru_backward";
    auto a = bwd_args(op, dy, dh, x, w, r, mask, gates, hprev, 3);
    const auto s = a.s;
    const auto ex = required(op, "extra", extra, {s.N, s.T, s.U});
    const int act = act_code(op, activation), ract = act_code(op, recurrent_activation);
    std::optional<farr> dx, db;
    if (need_dx) dx = out({s.N, s.T, s.I});
    if (has_bias) db = reset_after ? out({2, 3 * s.U}) : out({3 * s.U});
    farr dW = out({s.I, 3 * s.U}), dR = out({s.U, 3 * s.U}), dh0 = out({s.N, s.U});
    const auto work = scratch(2 * s.N * s.T * 3 * s.U);
    float *pdx = dx ? dx->mutable_data() : nullptr, *pdb = db ? db->mutable_data() : nullptr;
    float *pdw = dW.mutable_data(), *pdr = dR.mutable_data(), *pdh = dh0.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::gru_backward(pdx, pdw, pdr, pdb, pdh, a.dy.data(), ptr(a.dh), a.x.data(), a.w.data(), a.r.data(),
                              mask_ptr(a.mask), a.gates.data(), a.hprev.data(), ex.data(), s, act, ract, reset_after,
                              work.get());
    }
    return py::make_tuple(none_or(dx), dW, dR, none_or(db), dh0);
}

// Token ids as int64 (int32 widened), each checked to lie in [0, input_dim): the kernels index with them.
py::array_t<int64_t, py::array::c_style> checked_ids(const std::string& op, const py::array& ids, int64_t input_dim) {
    if (!py::dtype::of<int32_t>().equal(ids.dtype()) && !py::dtype::of<int64_t>().equal(ids.dtype()))
        type_error(op, "argument 'ids' must have dtype int32 or int64. Received: dtype=" +
                           std::string(py::str(ids.dtype())) + ", shape=" + shape_str(ids));
    auto c = py::array_t<int64_t, py::array::c_style | py::array::forcecast>(ids);
    const int64_t* p = c.data();
    int64_t lo = 0, hi = -1;
    for (int64_t i = 0; i < int64_t(c.size()); ++i) lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
    if (lo < 0 || hi >= input_dim)
        value_error(op, "ids must lie in [0, input_dim=" + std::to_string(input_dim) + "). Received: largest id " +
                            std::to_string(hi) + ", smallest id " + std::to_string(lo));
    return c;
}

std::vector<py::ssize_t> ids_shape_plus(const py::array& ids, int64_t d) {
    auto shape = shape_of(ids);
    shape.push_back(d);
    return shape;
}

py::array_t<float> py_embedding_forward(py::array ids, py::array table) {
    const std::string op = "embedding_forward";
    require_dtype<float>(op, "table", table);
    require_ndim(op, "table", table, 2);
    const auto c = checked_ids(op, ids, table.shape(0));
    const auto t = contiguous<float>(table);
    const int64_t n = c.size(), d = table.shape(1);
    farr y(ids_shape_plus(ids, d));
    float* py_ = y.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::embedding_forward(py_, c.data(), t.data(), n, d);
    }
    return y;
}

py::array_t<float> py_embedding_backward(py::array dy, py::array ids, int64_t input_dim) {
    const std::string op = "embedding_backward";
    if (input_dim < 0) value_error(op, "input_dim must be >= 0. Received: input_dim=" + std::to_string(input_dim));
    require_dtype<float>(op, "dy", dy);
    if (dy.ndim() != ids.ndim() + 1 || [&] {
            for (py::ssize_t i = 0; i < ids.ndim(); ++i)
                if (dy.shape(i) != ids.shape(i)) return true;
            return false;
        }())
        value_error(op, "argument 'dy' must have shape ids.shape + (D,). Received: dy.shape=" + shape_str(dy) +
                            ", ids.shape=" + shape_str(ids));
    const auto c = checked_ids(op, ids, input_dim);
    const auto g = contiguous<float>(dy);
    const int64_t n = c.size(), d = dy.shape(dy.ndim() - 1);
    farr dt(std::vector<py::ssize_t>{input_dim, d});
    float* p = dt.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::embedding_backward(p, g.data(), c.data(), n, input_dim, d);
    }
    return dt;
}

}  // namespace

void bind_rnn(py::module_& m) {
    using namespace py::literals;
    m.def("simple_rnn_forward", &py_simple_rnn_forward, "x"_a, "kernel"_a, "recurrent_kernel"_a, "bias"_a = py::none(),
          "h0"_a = py::none(), "mask"_a = py::none(), "activation"_a = "tanh");
    m.def("simple_rnn_backward", &py_simple_rnn_backward, "dy"_a, "dh"_a, "x"_a, "kernel"_a, "recurrent_kernel"_a,
          "mask"_a, "gates"_a, "hprev"_a, "has_bias"_a = true, "activation"_a = "tanh", "need_dx"_a = true);
    m.def("lstm_forward", &py_lstm_forward, "x"_a, "kernel"_a, "recurrent_kernel"_a, "bias"_a = py::none(),
          "h0"_a = py::none(), "c0"_a = py::none(), "mask"_a = py::none(), "activation"_a = "tanh",
          "recurrent_activation"_a = "sigmoid");
    m.def("lstm_backward", &py_lstm_backward, "dy"_a, "dh"_a, "dc"_a, "x"_a, "kernel"_a, "recurrent_kernel"_a,
          "mask"_a, "gates"_a, "hprev"_a, "cprev"_a, "has_bias"_a = true, "activation"_a = "tanh",
          "recurrent_activation"_a = "sigmoid", "need_dx"_a = true);
    m.def("simple_rnn_inference", &py_simple_rnn_inference, "x"_a, "kernel"_a, "recurrent_kernel"_a,
          "bias"_a = py::none(), "h0"_a = py::none(), "mask"_a = py::none(), "activation"_a = "tanh");
    m.def("lstm_inference", &py_lstm_inference, "x"_a, "kernel"_a, "recurrent_kernel"_a, "bias"_a = py::none(),
          "h0"_a = py::none(), "c0"_a = py::none(), "mask"_a = py::none(), "activation"_a = "tanh",
          "recurrent_activation"_a = "sigmoid");
    m.def("gru_forward", &py_gru_forward, "x"_a, "kernel"_a, "recurrent_kernel"_a, "bias"_a = py::none(),
          "h0"_a = py::none(), "mask"_a = py::none(), "activation"_a = "tanh", "recurrent_activation"_a = "sigmoid",
          "reset_after"_a = true);
    m.def("gru_inference", &py_gru_inference, "x"_a, "kernel"_a, "recurrent_kernel"_a, "bias"_a = py::none(),
          "h0"_a = py::none(), "mask"_a = py::none(), "activation"_a = "tanh", "recurrent_activation"_a = "sigmoid",
          "reset_after"_a = true);
    m.def("gru_backward", &py_gru_backward, "dy"_a, "dh"_a, "x"_a, "kernel"_a, "recurrent_kernel"_a, "mask"_a,
          "gates"_a, "hprev"_a, "extra"_a, "has_bias"_a = true, "activation"_a = "tanh",
          "recurrent_activation"_a = "sigmoid", "reset_after"_a = true, "need_dx"_a = true);
    m.def("embedding_forward", &py_embedding_forward, "ids"_a, "table"_a);
    m.def("embedding_backward", &py_embedding_backward, "dy"_a, "ids"_a, "input_dim"_a);
}

}  // namespace pyminidl::bind
