// bind_gemm.cpp — gemm, dense_forward (with its output activation), bias_add, bias_grad, dense_activation_grad (in place, with the bias gradient on request), the serial entry (test hook), the GEMM context and the FMA ceiling probe.
#include "bind_common.h"

#include <optional>

#include "activations.h"
#include "cpu_features.h"
#include "gemm.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

// A 2-D operand as the kernel reads it: pointer, row stride and whether it is transposed.
// A view whose last axis is contiguous is passed as is (its row stride becomes the leading
// dimension); a view whose first axis is contiguous (Fortran order, a transposed view) is
// the transpose of such a view, so trans flips; anything else is copied.
template <typename T>
struct GemmOperand {
    py::array keep;  // owns the copy, when one was made
    const T* data;
    int64_t ld;
    bool trans;
};

template <typename T>
GemmOperand<T> gemm_operand(const py::array& a, bool trans) {
    const py::ssize_t isz = static_cast<py::ssize_t>(sizeof(T));
    const py::ssize_t r = a.shape(0), c = a.shape(1), s0 = a.strides(0), s1 = a.strides(1);
    const T* p = static_cast<const T*>(a.data());
    if ((c <= 1 || s1 == isz) && s0 % isz == 0 && (r <= 1 || s0 / isz >= std::max<py::ssize_t>(c, 1))) {
        return {a, p, r <= 1 ? std::max<int64_t>(c, 1) : s0 / isz, trans};
    }
    if ((r <= 1 || s0 == isz) && s1 % isz == 0 && (c <= 1 || s1 / isz >= std::max<py::ssize_t>(r, 1))) {
        return {a, p, c <= 1 ? std::max<int64_t>(r, 1) : s1 / isz, !trans};
    }
    auto copy = py::array_t<T, py::array::c_style>(a);  // throws the copy's own MemoryError
    return {copy, copy.data(), std::max<int64_t>(c, 1), trans};
}

std::string pair_str(int64_t a, int64_t b) {
    return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

// out[i, j] = c[i, j] for any strides of c (its memory order is the caller's business).
template <typename T>
void copy_strided(T* out, const py::array& c) {
    const char* base = static_cast<const char*>(c.data());
    const py::ssize_t M = c.shape(0), N = c.shape(1), s0 = c.strides(0), s1 = c.strides(1);
    for (py::ssize_t i = 0; i < M; ++i) {
        for (py::ssize_t j = 0; j < N; ++j) {
            out[i * N + j] = *reinterpret_cast<const T*>(base + i * s0 + j * s1);
        }
    }
}

template <typename T>
void gemm_call(T* C, int64_t ldc, const GemmOperand<T>& a, const GemmOperand<T>& b, int64_t M,
               int64_t N, int64_t K, T alpha, T beta) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::sgemm(C, ldc, a.data, a.ld, a.trans, b.data, b.ld, b.trans, M, N, K, alpha, beta);
    } else {
        kernels::dgemm(C, ldc, a.data, a.ld, a.trans, b.data, b.ld, b.trans, M, N, K, alpha, beta);
    }
}

template <typename T>
py::array py_gemm_t(const py::array& a, const py::array& b, bool trans_a, bool trans_b,
                    double alpha, double beta, const py::object& c_obj) {
    const std::string op = "gemm";
    require_dtype<T>(op, "b", b);
    require_ndim(op, "a", a, 2);
    require_ndim(op, "b", b, 2);
    const int64_t M = a.shape(trans_a ? 1 : 0), K = a.shape(trans_a ? 0 : 1);
    const int64_t Kb = b.shape(trans_b ? 1 : 0), N = b.shape(trans_b ? 0 : 1);
    if (K != Kb) {
        value_error(op, "inner dimensions differ: op(a).shape=" + pair_str(M, K) +
                            ", op(b).shape=" + pair_str(Kb, N));
    }
    py::array_t<T> out({static_cast<py::ssize_t>(M), static_cast<py::ssize_t>(N)});
    T* C = out.mutable_data();
    bool use_c = false;
    if (!c_obj.is_none()) {
        py::array c = as_array(op, "c", c_obj);
        require_dtype<T>(op, "c", c);
        if (c.ndim() != 2 || c.shape(0) != M || c.shape(1) != N) {
            value_error(op, "argument 'c' must have shape (M, N)=" + pair_str(M, N) +
                                ". Received: shape=" + shape_str(c));
        }
        use_c = beta != 0.0;
        if (use_c) copy_strided<T>(C, c);
    }
    const GemmOperand<T> ga = gemm_operand<T>(a, trans_a), gb = gemm_operand<T>(b, trans_b);
    {
        py::gil_scoped_release nogil;
        gemm_call<T>(C, std::max<int64_t>(N, 1), ga, gb, M, N, K, static_cast<T>(alpha),
                     use_c ? static_cast<T>(beta) : T(0));
    }
    return out;
}

py::array py_gemm(const py::array& a, const py::array& b, bool trans_a, bool trans_b,
                  double alpha, double beta, const py::object& c) {
    return dispatch_float("gemm", "a", a, [&](auto t) {
        return py_gemm_t<decltype(t)>(a, b, trans_a, trans_b, alpha, beta, c);
    });
}

// The activation dense_forward applies to its output in place: None, 'relu', 'sigmoid' or 'tanh'
// (their default parameters; the kinds a Dense layer's backward reads from the output alone).
std::optional<kernels::Activation> dense_output_activation(const std::string& op, const py::object& name_obj) {
    if (name_obj.is_none()) return std::nullopt;
    const std::string name = py::str(name_obj);
    if (name == "relu") return kernels::Activation::relu;
    if (name == "sigmoid") return kernels::Activation::sigmoid;
    if (name == "tanh") return kernels::Activation::tanh;
    value_error(op, "argument 'activation' must be None, 'relu', 'sigmoid' or 'tanh'. Received: '" + name + "'");
}

// x: (N, I) row-strided view, w: (I, U), b: (U,) or None -> y: (N, U), activated in place when act.
template <typename T>
py::array py_dense_forward_t(const py::array& x, const py::array& w, const py::object& b_obj,
                             std::optional<kernels::Activation> act) {
    const std::string op = "dense_forward";
    require_dtype<T>(op, "w", w);
    require_ndim(op, "x", x, 2);
    require_ndim(op, "w", w, 2);
    const int64_t N = x.shape(0), I = x.shape(1), U = w.shape(1);
    if (w.shape(0) != I) {
        value_error(op, "x.shape[1] must equal w.shape[0]. Received: x.shape=" + shape_str(x) +
                            ", w.shape=" + shape_str(w));
    }
    py::array_t<T, py::array::c_style> b;  // a default array_t is an empty array, not null
    const bool has_bias = !b_obj.is_none();
    if (has_bias) {
        py::array b_in = as_array(op, "b", b_obj);
        require_dtype<T>(op, "b", b_in);
        if (b_in.ndim() != 1 || b_in.shape(0) != U) {
            value_error(op, "argument 'b' must have shape (" + std::to_string(U) +
                                ",). Received: shape=" + shape_str(b_in));
        }
        b = py::array_t<T, py::array::c_style>(b_in);
    }
    py::array_t<T> y({static_cast<py::ssize_t>(N), static_cast<py::ssize_t>(U)});
    const GemmOperand<T> gx = gemm_operand<T>(x, false), gw = gemm_operand<T>(w, false);
    T* out = y.mutable_data();
    const T* bias = has_bias ? b.data() : nullptr;
    {
        py::gil_scoped_release nogil;
        kernels::dense_forward(out, gx.data, gx.ld, gx.trans, gw.data, gw.ld, gw.trans, bias, N, I, U);
        // The same kernel as activation_forward, on y while the GEMM's threads still hold it.
        if (act) kernels::activation_forward(out, out, N * U, *act, kernels::ActivationParams{});
    }
    return y;
}

// dy: (..., U) -> db: (U,), summed over every other axis.
template <typename T>
py::array py_bias_grad_t(const py::array& dy) {
    require_ndim("bias_grad", "dy", dy, 2);
    const GemmOperand<T> g = gemm_operand<T>(dy, false);
    const int64_t N = dy.shape(0), U = dy.shape(1);
    // bias_grad reads rows; a transposed (Fortran) view is copied to C order first.
    py::array_t<T, py::array::c_style> rows;
    if (g.trans) rows = py::array_t<T, py::array::c_style>(dy);
    const T* p = g.trans ? rows.data() : g.data;
    const int64_t ld = g.trans ? std::max<int64_t>(U, 1) : g.ld;
    py::array_t<T> db(static_cast<py::ssize_t>(U));
    T* out = db.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::bias_grad(out, p, ld, N, U);
    }
    return db;
}

// x: (N, U), b: (U,) -> y = x + b.
template <typename T>
py::array py_bias_add_t(const py::array& x, const py::array& b) {
    const std::string op = "bias_add";
    require_dtype<T>(op, "b", b);
    require_ndim(op, "x", x, 2);
    require_ndim(op, "b", b, 1);
    const int64_t N = x.shape(0), U = x.shape(1);
    if (b.shape(0) != U) {
        value_error(op, "b.shape[0] must equal x.shape[1]. Received: x.shape=" + shape_str(x) +
                            ", b.shape=" + shape_str(b));
    }
    auto xc = py::array_t<T, py::array::c_style>(x);
    auto bc = py::array_t<T, py::array::c_style>(b);
    py::array_t<T> y({static_cast<py::ssize_t>(N), static_cast<py::ssize_t>(U)});
    T* out = y.mutable_data();
    const T *xp = xc.data(), *bp = bc.data();
    {
        py::gil_scoped_release nogil;
        kernels::bias_add(out, xp, std::max<int64_t>(U, 1), bp, N, U);
    }
    return y;
}

// dz (updated in place and returned) *= f'(saved); saved: relu's input, sigmoid's / tanh's output.
// With bias_grad, dz must be (N, U) and (dz, db) is returned: db = the column sums of the new dz.
template <typename T>
py::object py_dense_activation_grad_t(const std::string& op, py::array dz, const py::array& saved,
                                      kernels::DenseActivation kind, bool bias_grad) {
    require_same_dtype(op, "dz", dz, "saved", saved);
    require_same_shape(op, "dz", dz, "saved", saved);
    if (bias_grad) require_ndim(op, "dz", dz, 2);
    require_c_contiguous(op, "dz", dz);
    require_writeable(op, "dz", dz);
    require_no_alias(op, "dz", dz, "saved", saved);  // read while dz is written: a partial overlap races
    auto sc = contiguous<T>(saved);  // a strided saved tensor is copied; dz never is
    T* g = static_cast<T*>(dz.mutable_data());
    const T* v = sc.data();
    if (!bias_grad) {
        const int64_t n = dz.size();
        py::gil_scoped_release nogil;
        kernels::dense_activation_grad(g, v, n, kind);
        return std::move(dz);
    }
    const int64_t N = dz.shape(0), U = dz.shape(1);
    py::array_t<T> db(std::vector<py::ssize_t>{static_cast<py::ssize_t>(U)});
    T* out = db.mutable_data();
    {
        py::gil_scoped_release nogil;
        kernels::dense_activation_bias_grad(g, out, v, N, U, kind);
    }
    return py::make_tuple(dz, db);
}

py::object py_dense_activation_grad(const std::string& name, py::array dz, const py::array& saved, bool bias_grad) {
    const std::string op = "dense_activation_grad('" + name + "')";
    kernels::DenseActivation kind;
    if (name == "relu") {
        kind = kernels::DenseActivation::relu;
    } else if (name == "sigmoid") {
        kind = kernels::DenseActivation::sigmoid;
    } else if (name == "tanh") {
        kind = kernels::DenseActivation::tanh;
    } else {
        value_error(op, "name must be 'relu', 'sigmoid' or 'tanh'. Received: '" + name + "'");
    }
    return dispatch_float(op, "dz", dz, [&](auto t) {
        return py_dense_activation_grad_t<decltype(t)>(op, dz, saved, kind, bias_grad);
    });
}

py::dict gemm_config_dict(Isa isa) {
    const kernels::GemmPathConfig c = kernels::gemm_config(isa);
    auto blocks = [](const kernels::GemmBlockInfo& b) {
        py::dict d;
        d["MR"] = b.MR; d["NR"] = b.NR; d["MC"] = b.MC; d["KC"] = b.KC; d["NC"] = b.NC;
        return d;
    };
    py::dict caches;
    caches["l1d"] = c.caches.l1d; caches["l2"] = c.caches.l2; caches["l3"] = c.caches.l3;
    caches["source"] = c.caches.source;
    py::dict d;
    d["isa"] = c.isa; d["blocks_from"] = c.blocks_from; d["caches"] = caches;
    d["float32"] = blocks(c.f32); d["float64"] = blocks(c.f64);
    d["direct_a_bytes"] = c.direct_a_bytes; d["dot_path"] = c.dot;
    return d;
}

Isa isa_arg(const char* fn, const py::object& name) {
    if (name.is_none()) return active_isa();
    Isa isa;
    const std::string s = py::str(name);
    if (!parse_isa(s, &isa)) {
        value_error(fn, "isa must be one of 'baseline', 'avx2', 'avx512' or None. Received: '" + s + "'");
    }
    return isa;
}

// Test hook for the serial entry: a, b C-contiguous 2-D arrays of one dtype; work_elems < 0
// sizes the workspace with *gemm_workspace_elems, otherwise that many elements are passed.
template <typename T>
py::array py_gemm_serial_t(py::array_t<T, py::array::c_style> a, py::array_t<T, py::array::c_style> b,
                           bool ta, bool tb, int64_t work_elems) {
    require_ndim("_gemm_serial", "a", a, 2);
    require_ndim("_gemm_serial", "b", b, 2);
    const int64_t M = a.shape(ta ? 1 : 0), K = a.shape(ta ? 0 : 1), N = b.shape(tb ? 0 : 1);
    if (K != b.shape(tb ? 1 : 0)) value_error("_gemm_serial", "inner dimensions differ");
    const bool f32 = std::is_same_v<T, float>;
    const int64_t need = f32 ? kernels::sgemm_workspace_elems(M, N, K) : kernels::dgemm_workspace_elems(M, N, K);
    std::vector<T> work(static_cast<std::size_t>(std::max<int64_t>(work_elems < 0 ? need : work_elems, 1)));
    py::array_t<T> out({static_cast<py::ssize_t>(M), static_cast<py::ssize_t>(N)});
    const int64_t lda = std::max<int64_t>(a.shape(1), 1), ldb = std::max<int64_t>(b.shape(1), 1);
    const int64_t we = work_elems < 0 ? need : work_elems;
    try {
        if constexpr (std::is_same_v<T, float>) {
            kernels::sgemm_serial(out.mutable_data(), std::max<int64_t>(N, 1), a.data(), lda, ta, b.data(), ldb, tb,
                                  M, N, K, 1.0f, 0.0f, work.data(), we);
        } else {
            kernels::dgemm_serial(out.mutable_data(), std::max<int64_t>(N, 1), a.data(), lda, ta, b.data(), ldb, tb,
                                  M, N, K, 1.0, 0.0, work.data(), we);
        }
    } catch (const std::invalid_argument& e) {
        value_error("_gemm_serial", e.what());
    }
    return out;
}

}  // namespace

void bind_gemm(py::module_& m) {
    m.def("_gemm_serial", [](const py::array& a, const py::array& b, bool ta, bool tb, int64_t work_elems) {
        return dispatch_float("_gemm_serial", "a", a, [&](auto t) { return py_gemm_serial_t<decltype(t)>(a, b, ta, tb, work_elems); });
    }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
          py::arg("work_elems") = -1, "Test hook: the serial GEMM entry with a caller-owned workspace.");
    m.def("gemm_config", [](const py::object& isa) { return gemm_config_dict(isa_arg("gemm_config", isa)); },
          py::arg("isa") = py::none(),
          "The GEMM context of an ISA path (default: the active one): caches seen, tiles, blocks.");
    m.def("_gemm_set_caches", [](const py::object& sizes) {
        if (sizes.is_none()) return kernels::gemm_set_caches(nullptr);
        const auto t = sizes.cast<std::tuple<int64_t, int64_t, int64_t>>();
        CacheSizes c;
        c.l1d = std::get<0>(t); c.l2 = std::get<1>(t); c.l3 = std::get<2>(t);
        c.source = "test";
        kernels::gemm_set_caches(&c);
    }, py::arg("sizes"), "Test hook: derive the blocks from (l1d, l2, l3) bytes (0 = missing); None restores.");
    m.def("fma_ceiling", [](const py::object& isa, int threads, double seconds) {
        const Isa i = isa_arg("fma_ceiling", isa);
        if (threads < 1 || threads > max_threads_allowed()) {
            value_error("fma_ceiling", "threads must be in [1, " + std::to_string(max_threads_allowed()) +
                                           "]. Received: " + std::to_string(threads));
        }
        if (!(seconds > 0.0 && seconds <= 10.0)) {
            value_error("fma_ceiling", "seconds must be in (0, 10]. Received: " + std::to_string(seconds));
        }
        py::gil_scoped_release release;
        return kernels::fma_ceiling_gflops(i, threads, seconds);
    }, py::arg("isa") = py::none(), py::arg("threads") = 1, py::arg("seconds") = 0.2,
          "Measured float32 FMA ceiling (GFLOP/s) of an ISA path on `threads` threads.");
    m.def("gemm", &py_gemm, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
          py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
          py::arg("c") = py::none(),
          "alpha * op(a) @ op(b) + beta * c -> new (M, N) array; float32 or float64, 2-D.");
    m.def("dense_forward", [](const py::array& x, const py::array& w, const py::object& b, const py::object& activation) {
        const auto act = dense_output_activation("dense_forward", activation);
        return dispatch_float("dense_forward", "x", x, [&](auto t) { return py_dense_forward_t<decltype(t)>(x, w, b, act); });
    }, py::arg("x"), py::arg("w"), py::arg("b") = py::none(), py::arg("activation") = py::none(),
          "y = activation(x @ w + b). x: (N, I), w: (I, U), b: (U,) or None; activation None, 'relu', 'sigmoid' or "
          "'tanh' (activation_forward's bits), applied to y in place.");
    m.def("bias_add", [](const py::array& x, const py::array& b) {
        return dispatch_float("bias_add", "x", x, [&](auto t) { return py_bias_add_t<decltype(t)>(x, b); });
    }, py::arg("x"), py::arg("b"), "y = x + b. x: (N, U), b: (U,).");
    m.def("dense_activation_grad", &py_dense_activation_grad, py::arg("name"), py::arg("dz"), py::arg("saved"),
          py::kw_only(), py::arg("bias_grad") = false,
          "dz *= f'(saved) in place, returns dz; with bias_grad=True, dz (N, U) and returns (dz, db), db = the "
          "column sums of the new dz (bias_grad's bits). name: 'relu' (saved = its input or output), 'sigmoid' "
          "or 'tanh' (its output).");
    m.def("bias_grad", [](const py::array& dy) {
        return dispatch_float("bias_grad", "dy", dy, [&](auto t) { return py_bias_grad_t<decltype(t)>(dy); });
    }, py::arg("dy"), "db = dy.sum(axis=0). dy: (N, U) -> (U,); deterministic at any thread count.");
}

}  // namespace pyminidl::bind
