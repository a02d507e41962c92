// bindings.cpp — the only pybind11 file: validate, allocate outputs, release the GIL,
// call a kernel. Nothing here computes.
//
// Every binding checks dtype, rank, shapes, contiguity and aliasing before it touches
// memory and raises ValueError/TypeError naming the argument and the shapes it saw, so no
// input can crash the process. Inputs are taken as py::array (no forcecast: a float64
// array passed where float32 is expected is a TypeError, not a silent copy).
//
// Sections, one per kernel family, each with its own bind_<family>(m):
//   core (build info, CPU features, threads) · gemm · activations · losses · optim
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "activations.h"
#include "common.h"
#include "cpu_features.h"
#include "gemm.h"
#include "losses.h"
#include "optim.h"

namespace py = pybind11;
using namespace pyminidl;

namespace {

// ---------------------------------------------------------------- validation helpers

std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

[[noreturn]] void value_error(const std::string& op, const std::string& msg) {
    throw py::value_error(op + ": " + msg);
}

[[noreturn]] void type_error(const std::string& op, const std::string& msg) {
    throw py::type_error(op + ": " + msg);
}

// dtype must be exactly T (float32 or float64) — no silent casts.
template <typename T>
void require_dtype(const std::string& op, const char* arg, const py::array& a) {
    if (!py::dtype::of<T>().equal(a.dtype())) {
        type_error(op, std::string("argument '") + arg + "' must have dtype " +
                           std::string(py::str(py::dtype::of<T>())) + ". Received: dtype=" +
                           std::string(py::str(a.dtype())) + ", shape=" + shape_str(a));
    }
}

void require_ndim(const std::string& op, const char* arg, const py::array& a, py::ssize_t ndim) {
    if (a.ndim() != ndim) {
        value_error(op, std::string("argument '") + arg + "' must be " + std::to_string(ndim) +
                            "-D. Received: shape=" + shape_str(a));
    }
}

void require_c_contiguous(const std::string& op, const char* arg, const py::array& a) {
    if (!(a.flags() & py::array::c_style)) {
        value_error(op, std::string("argument '") + arg +
                            "' must be C-contiguous. Received a strided view of shape=" +
                            shape_str(a));
    }
}

void require_writeable(const std::string& op, const char* arg, const py::array& a) {
    if (!a.writeable()) {
        value_error(op, std::string("argument '") + arg + "' is read-only; it is updated in place");
    }
}

bool overlaps(const py::array& a, const py::array& b) {
    const char* a0 = static_cast<const char*>(a.data());
    const char* b0 = static_cast<const char*>(b.data());
    const char* a1 = a0 + a.nbytes();
    const char* b1 = b0 + b.nbytes();
    return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b1 && b0 < a1;
}

void require_no_alias(const std::string& op, const char* arg_a, const py::array& a,
                      const char* arg_b, const py::array& b) {
    if (overlaps(a, b)) {
        value_error(op, std::string("arguments '") + arg_a + "' and '" + arg_b +
                            "' share memory; pass distinct arrays");
    }
}

void require_same_shape(const std::string& op, const char* arg_a, const py::array& a,
                        const char* arg_b, const py::array& b) {
    bool same = a.ndim() == b.ndim();
    for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
    if (!same) {
        value_error(op, std::string("arguments '") + arg_a + "' and '" + arg_b +
                            "' must have the same shape. Received: " + arg_a + ".shape=" +
                            shape_str(a) + ", " + arg_b + ".shape=" + shape_str(b));
    }
}

// An optional array argument taken as py::object (None allowed by the caller): convert
// anything array-like as pybind11 does for py::array parameters. Casting a non-ndarray
// object (a NumPy scalar, a list) straight to py::array would read it as one.
py::array as_array(const std::string& op, const char* arg, const py::object& obj) {
    py::array a = py::array::ensure(obj);
    if (!a) {
        type_error(op, std::string("argument '") + arg + "' must be an array. Received: " +
                           std::string(py::str(py::type::of(obj))));
    }
    return a;
}

std::vector<py::ssize_t> shape_of(const py::array& a) {
    return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// ---------------------------------------------------------------- core

// Training allocates the same MB-sized temporaries every step (batches, activations,
// gradients). glibc serves blocks above its mmap threshold (128 KB at start, raised only
// slowly) with mmap/munmap, so every step page-faults them in again, and with 2 threads
// the faults serialise on the process's memory-map lock. A fixed 32 MB threshold and up to
// 64 MB of freed heap kept for reuse remove that churn: the first MLP epoch of
// benchmarks/bench_train.py goes from ~58k to ~120k samples/s at 2 threads. A user's own
// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ settings are left alone.
bool tune_allocator() {
#if defined(__GLIBC__)
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) {
        return false;
    }
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1;
#else
    return false;
#endif
}

int max_threads_allowed() {
    const unsigned hw = std::thread::hardware_concurrency();
    return static_cast<int>(std::max<unsigned>(64, 4 * hw));
}

void bind_core(py::module_& m) {
    m.def("tune_allocator", &tune_allocator,
          "Keep glibc from mmap/munmap-ing every per-step temporary; False where not applied.");
    m.def("build_info", []() {
        py::dict info;
        info["openmp"] = openmp_enabled();
        info["max_threads"] = omp_max_threads();
        info["compiler"] = PYMINIDL_COMPILER;
        info["flags"] = PYMINIDL_FLAGS;
        info["isa"] = isa_name(active_isa());
        return info;
    }, "Build facts for bug reports: OpenMP, threads, compiler, flags, active ISA.");
    m.def("cpu_features", []() {
        const CpuFeatures& f = cpu_features();
        py::dict d;
        d["sse4_2"] = f.sse42; d["avx"] = f.avx; d["avx2"] = f.avx2; d["fma"] = f.fma;
        d["avx512f"] = f.avx512f; d["avx512dq"] = f.avx512dq;
        d["avx512bw"] = f.avx512bw; d["avx512vl"] = f.avx512vl;
        d["best"] = isa_name(best_supported_isa());
        d["active"] = isa_name(active_isa());
        return d;
    }, "The CPU's features, the best ISA path it supports and the path in use.");
    m.def("set_cpu_capability", [](const std::string& name) {
        Isa isa;
        if (!parse_isa(name, &isa)) {
            value_error("set_cpu_capability", "expected one of 'baseline', 'avx2', 'avx512'. "
                        "Received: '" + name + "'");
        }
        set_isa_cap(isa);
        return std::string(isa_name(active_isa()));
    }, py::arg("name"), "Cap the ISA path; returns the path now in use.");
    m.def("get_num_threads", []() { return omp_max_threads(); });
    m.def("set_num_threads", [](int n) {
        if (n < 1) value_error("set_num_threads", "n must be >= 1. Received: " + std::to_string(n));
        // OpenMP aborts the process when it cannot create a team that large.
        const int limit = max_threads_allowed();
        if (n > limit) {
            value_error("set_num_threads", "n must be <= " + std::to_string(limit) +
                                               " (4 x the hardware threads, at least 64). Received: " + std::to_string(n));
        }
        omp_set_threads(n);
    }, py::arg("n"));
}

// ---------------------------------------------------------------- gemm

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
    if (py::dtype::of<float>().equal(a.dtype())) return py_gemm_t<float>(a, b, trans_a, trans_b, alpha, beta, c);
    if (py::dtype::of<double>().equal(a.dtype())) return py_gemm_t<double>(a, b, trans_a, trans_b, alpha, beta, c);
    type_error("gemm", "argument 'a' must have dtype float32 or float64. Received: dtype=" +
                           std::string(py::str(a.dtype())) + ", shape=" + shape_str(a));
}

// x: (N, I) row-strided view, w: (I, U), b: (U,) or None -> y: (N, U).
template <typename T>
py::array py_dense_forward_t(const py::array& x, const py::array& w, const py::object& b_obj) {
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

// Dispatch on the dtype of the first argument: float32 or float64, else TypeError.
template <typename F32, typename F64>
py::array by_dtype(const char* op, const char* arg, const py::array& a, F32 f32, F64 f64) {
    if (py::dtype::of<float>().equal(a.dtype())) return f32();
    if (py::dtype::of<double>().equal(a.dtype())) return f64();
    type_error(op, std::string("argument '") + arg + "' must have dtype float32 or float64. "
                   "Received: dtype=" + std::string(py::str(a.dtype())) + ", shape=" + shape_str(a));
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

void bind_gemm(py::module_& m) {
    m.def("_gemm_serial", [](const py::array& a, const py::array& b, bool ta, bool tb, int64_t work_elems) {
        return by_dtype("_gemm_serial", "a", a, [&] { return py_gemm_serial_t<float>(a, b, ta, tb, work_elems); },
                        [&] { return py_gemm_serial_t<double>(a, b, ta, tb, work_elems); });
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
    m.def("dense_forward", [](const py::array& x, const py::array& w, const py::object& b) {
        return by_dtype("dense_forward", "x", x, [&] { return py_dense_forward_t<float>(x, w, b); },
                        [&] { return py_dense_forward_t<double>(x, w, b); });
    }, py::arg("x"), py::arg("w"), py::arg("b") = py::none(), "y = x @ w + b. x: (N, I), w: (I, U), b: (U,) or None.");
    m.def("bias_add", [](const py::array& x, const py::array& b) {
        return by_dtype("bias_add", "x", x, [&] { return py_bias_add_t<float>(x, b); },
                        [&] { return py_bias_add_t<double>(x, b); });
    }, py::arg("x"), py::arg("b"), "y = x + b. x: (N, U), b: (U,).");
    m.def("bias_grad", [](const py::array& dy) {
        return by_dtype("bias_grad", "dy", dy, [&] { return py_bias_grad_t<float>(dy); },
                        [&] { return py_bias_grad_t<double>(dy); });
    }, py::arg("dy"), "db = dy.sum(axis=0). dy: (N, U) -> (U,); deterministic at any thread count.");
}

// ---------------------------------------------------------------- activations

// Shared by the activation, loss and optimizer sections: the float type of an argument
// (32 or 64) or a TypeError naming it; no other dtype reaches a kernel.
int float_bits(const std::string& op, const char* arg, const py::array& a) {
    if (py::dtype::of<float>().equal(a.dtype())) return 32;
    if (py::dtype::of<double>().equal(a.dtype())) return 64;
    type_error(op, std::string("argument '") + arg + "' must have dtype float32 or float64. "
                   "Received: dtype=" + std::string(py::str(a.dtype())) + ", shape=" + shape_str(a));
}

void require_same_dtype(const std::string& op, const char* arg_a, const py::array& a,
                        const char* arg_b, const py::array& b) {
    if (!a.dtype().equal(b.dtype())) {
        type_error(op, std::string("arguments '") + arg_a + "' and '" + arg_b +
                           "' must have the same dtype. Received: " + arg_a + ".dtype=" +
                           std::string(py::str(a.dtype())) + ", " + arg_b + ".dtype=" +
                           std::string(py::str(b.dtype())));
    }
}

// A C-contiguous view of a read-only input whose dtype is already checked to be T; strided
// views are copied (never done for outputs or in-place arguments). The constructor, not
// array_t::ensure: ensure() answers a failed copy (a huge zero-stride view) with a null
// handle and a cleared error, which the callers would dereference.
template <typename T>
py::array_t<T, py::array::c_style> contiguous(const py::array& a) {
    return py::array_t<T, py::array::c_style>(a);
}

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

kernels::Activation parse_activation(const std::string& op, const std::string& name, bool approximate) {
    using A = kernels::Activation;
    static const std::pair<const char*, A> table[] = {
        {"linear", A::linear}, {"step", A::step}, {"sigmoid", A::sigmoid},
        {"hard_sigmoid", A::hard_sigmoid}, {"tanh", A::tanh}, {"relu", A::relu},
        {"leaky_relu", A::leaky_relu}, {"elu", A::elu}, {"selu", A::selu},
        {"softplus", A::softplus}, {"softsign", A::softsign}, {"swish", A::swish},
        {"silu", A::swish}, {"gelu", A::gelu}, {"exponential", A::exponential}};
    for (const auto& [key, kind] : table) {
        if (name == key) return (kind == A::gelu && approximate) ? A::gelu_tanh : kind;
    }
    std::string known;
    for (const auto& entry : table) known += std::string(known.empty() ? "" : ", ") + "'" + entry.first + "'";
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

template <typename T>
py::array activation_forward_t(const py::array& x, kernels::Activation kind, const kernels::ActivationParams& p) {
    auto xc = contiguous<T>(x);
    py::array_t<T> y(shape_of(x));
    T* out = y.mutable_data();
    const T* in = xc.data();
    const int64_t n = x.size();
    {
        py::gil_scoped_release nogil;
        kernels::activation_forward(out, in, n, kind, p);
    }
    return std::move(y);
}

template <typename T>
py::array activation_backward_t(const py::array& dy, const std::optional<py::array>& x,
                                const std::optional<py::array>& y, kernels::Activation kind,
                                const kernels::ActivationParams& p) {
    auto dyc = contiguous<T>(dy);
    py::array_t<T, py::array::c_style> xc, yc;
    if (x) xc = contiguous<T>(*x);
    if (y) yc = contiguous<T>(*y);
    py::array_t<T> dx(shape_of(dy));
    T* out = dx.mutable_data();
    const T *g = dyc.data(), *xp = x ? xc.data() : nullptr, *yp = y ? yc.data() : nullptr;
    const int64_t n = dy.size();
    {
        py::gil_scoped_release nogil;
        kernels::activation_backward(out, g, xp, yp, n, kind, p);
    }
    return std::move(dx);
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

void bind_activations(py::module_& m) {
    m.def("activation_forward",
          [](const std::string& name, const py::array& x, std::optional<double> negative_slope,
             std::optional<double> max_value, double threshold, double alpha, bool approximate) {
              const std::string op = "activation_forward('" + name + "')";
              const auto kind = parse_activation(op, name, approximate);
              const auto p = activation_params(op, kind, negative_slope, max_value, threshold, alpha);
              if (float_bits(op, "x", x) == 32) return activation_forward_t<float>(x, kind, p);
              return activation_forward_t<double>(x, kind, p);
          },
          py::arg("name"), py::arg("x"), py::kw_only(), py::arg("negative_slope") = py::none(),
          py::arg("max_value") = py::none(), py::arg("threshold") = 0.0, py::arg("alpha") = 1.0,
          py::arg("approximate") = false,
          "y = activation(x), elementwise; formulas and parameters as Backend.<name>_forward.");
    m.def("activation_backward",
          [](const std::string& name, const py::array& dy, std::optional<py::array> x,
             std::optional<py::array> y, std::optional<double> negative_slope,
             std::optional<double> max_value, double threshold, double alpha, bool approximate) {
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
              if (bits == 32) return activation_backward_t<float>(dy, x, y, kind, p);
              return activation_backward_t<double>(dy, x, y, kind, p);
          },
          py::arg("name"), py::arg("dy"), py::arg("x") = py::none(), py::arg("y") = py::none(),
          py::kw_only(), py::arg("negative_slope") = py::none(), py::arg("max_value") = py::none(),
          py::arg("threshold") = 0.0, py::arg("alpha") = 1.0, py::arg("approximate") = false,
          "dx of activation(x) given dy and the saved x and/or y (as Backend.<name>_backward).");

    m.def("softmax_forward", [](const py::array& x) {
        if (float_bits("softmax_forward", "x", x) == 32)
            return row_forward_t<float>("softmax_forward", x, kernels::softmax_forward<float>);
        return row_forward_t<double>("softmax_forward", x, kernels::softmax_forward<double>);
    }, py::arg("x"), "y = softmax(x) over the last axis.");
    m.def("softmax_backward", [](const py::array& dy, const py::array& y) {
        if (float_bits("softmax_backward", "dy", dy) == 32)
            return row_backward_t<float>("softmax_backward", dy, y, kernels::softmax_backward<float>);
        return row_backward_t<double>("softmax_backward", dy, y, kernels::softmax_backward<double>);
    }, py::arg("dy"), py::arg("y"), "dx = y * (dy - sum(dy * y)) over the last axis.");
    m.def("log_softmax_forward", [](const py::array& x) {
        if (float_bits("log_softmax_forward", "x", x) == 32)
            return row_forward_t<float>("log_softmax_forward", x, kernels::log_softmax_forward<float>);
        return row_forward_t<double>("log_softmax_forward", x, kernels::log_softmax_forward<double>);
    }, py::arg("x"), "y = log_softmax(x) over the last axis.");
    m.def("log_softmax_backward", [](const py::array& dy, const py::array& y) {
        if (float_bits("log_softmax_backward", "dy", dy) == 32)
            return row_backward_t<float>("log_softmax_backward", dy, y, kernels::log_softmax_backward<float>);
        return row_backward_t<double>("log_softmax_backward", dy, y, kernels::log_softmax_backward<double>);
    }, py::arg("dy"), py::arg("y"), "dx = dy - exp(y) * sum(dy) over the last axis.");
}

// ---------------------------------------------------------------- losses

// Checks that every sparse label lies in [0, classes): the kernels index with them, so an
// out-of-range label must stop here, before any memory is read.
template <typename I>
void check_sparse_labels(const std::string& op, const py::array_t<I, py::array::c_style>& labels,
                         int64_t classes) {
    const I* l = labels.data();
    for (int64_t i = 0; i < int64_t(labels.size()); ++i) {
        if (l[i] < 0 || int64_t(l[i]) >= classes) {
            value_error(op, "label value " + std::to_string(int64_t(l[i])) + " at index " +
                                std::to_string(i) + " is out of range for " + std::to_string(classes) +
                                " classes; expected 0 <= label < " + std::to_string(classes));
        }
    }
}

// Checks labels against (n, classes) logits/probs named `ref`; returns 32/64 for sparse
// int32/int64 labels and 0 for dense ones.
int check_labels(const std::string& op, const py::array& labels, const char* ref_arg, const py::array& ref,
                 bool sparse, double label_smoothing) {
    if (!std::isfinite(label_smoothing) || label_smoothing < 0.0 || label_smoothing > 1.0) {
        value_error(op, "label_smoothing must be in [0, 1]. Received: label_smoothing=" +
                            std::to_string(label_smoothing));
    }
    if (!sparse) {
        require_same_dtype(op, ref_arg, ref, "labels", labels);
        require_same_shape(op, ref_arg, ref, "labels", labels);
        return 0;
    }
    int bits = 0;
    if (py::dtype::of<int32_t>().equal(labels.dtype())) bits = 32;
    if (py::dtype::of<int64_t>().equal(labels.dtype())) bits = 64;
    if (bits == 0) {
        type_error(op, "sparse 'labels' must have dtype int32 or int64. Received: dtype=" +
                           std::string(py::str(labels.dtype())) + ", shape=" + shape_str(labels));
    }
    if (labels.ndim() != 1 || labels.shape(0) != ref.shape(0)) {
        value_error(op, std::string("sparse 'labels' must have shape (N,) with N = ") + ref_arg +
                            ".shape[0]. Received: labels.shape=" + shape_str(labels) + ", " + ref_arg +
                            ".shape=" + shape_str(ref));
    }
    return bits;
}

// (N, C) float matrix with C >= 1: the logits or probs of a cross-entropy call.
int check_class_matrix(const std::string& op, const char* arg, const py::array& a) {
    const int bits = float_bits(op, arg, a);
    require_ndim(op, arg, a, 2);
    if (a.shape(1) < 1) {
        value_error(op, std::string("argument '") + arg + "' needs at least one class. Received: shape=" +
                            shape_str(a));
    }
    return bits;
}

template <typename T, typename I>
py::tuple sparse_ce_forward_t(const std::string& op, const py::array& logits, const py::array& labels, double ls) {
    const int64_t n = logits.shape(0), c = logits.shape(1);
    auto xc = contiguous<T>(logits);
    auto lc = py::array_t<I, py::array::c_style>(labels);
    check_sparse_labels<I>(op, lc, c);
    py::array_t<T> loss(std::vector<py::ssize_t>{n}), probs(shape_of(logits));
    T *lo = loss.mutable_data(), *pr = probs.mutable_data();
    const T* x = xc.data();
    const I* l = lc.data();
    {
        py::gil_scoped_release nogil;
        kernels::sparse_softmax_cross_entropy_forward<T, I>(lo, pr, x, l, n, c, ls);
    }
    return py::make_tuple(loss, probs);
}

template <typename T>
py::tuple dense_ce_forward_t(const py::array& logits, const py::array& labels, double ls) {
    const int64_t n = logits.shape(0), c = logits.shape(1);
    auto xc = contiguous<T>(logits);
    auto lc = contiguous<T>(labels);
    py::array_t<T> loss(std::vector<py::ssize_t>{n}), probs(shape_of(logits));
    T *lo = loss.mutable_data(), *pr = probs.mutable_data();
    const T *x = xc.data(), *l = lc.data();
    {
        py::gil_scoped_release nogil;
        kernels::softmax_cross_entropy_forward<T>(lo, pr, x, l, n, c, ls);
    }
    return py::make_tuple(loss, probs);
}

template <typename T, typename I>
py::array sparse_ce_backward_t(const std::string& op, const py::array& dloss, const py::array& probs,
                               const py::array& labels, double ls) {
    const int64_t n = probs.shape(0), c = probs.shape(1);
    auto dc = contiguous<T>(dloss);
    auto pc = contiguous<T>(probs);
    auto lc = py::array_t<I, py::array::c_style>(labels);
    check_sparse_labels<I>(op, lc, c);
    py::array_t<T> dlogits(shape_of(probs));
    T* out = dlogits.mutable_data();
    const T *g = dc.data(), *p = pc.data();
    const I* l = lc.data();
    {
        py::gil_scoped_release nogil;
        kernels::sparse_softmax_cross_entropy_backward<T, I>(out, g, p, l, n, c, ls);
    }
    return std::move(dlogits);
}

template <typename T>
py::array dense_ce_backward_t(const py::array& dloss, const py::array& probs, const py::array& labels, double ls) {
    const int64_t n = probs.shape(0), c = probs.shape(1);
    auto dc = contiguous<T>(dloss);
    auto pc = contiguous<T>(probs);
    auto lc = contiguous<T>(labels);
    py::array_t<T> dlogits(shape_of(probs));
    T* out = dlogits.mutable_data();
    const T *g = dc.data(), *p = pc.data(), *l = lc.data();
    {
        py::gil_scoped_release nogil;
        kernels::softmax_cross_entropy_backward<T>(out, g, p, l, n, c, ls);
    }
    return std::move(dlogits);
}

void bind_losses(py::module_& m) {
    m.def("softmax_cross_entropy_forward",
          [](const py::array& logits, const py::array& labels, bool sparse, double label_smoothing) {
              const std::string op = "softmax_cross_entropy_forward";
              const int bits = check_class_matrix(op, "logits", logits);
              const int label_bits = check_labels(op, labels, "logits", logits, sparse, label_smoothing);
              if (bits == 32) {
                  if (label_bits == 0) return dense_ce_forward_t<float>(logits, labels, label_smoothing);
                  if (label_bits == 32) return sparse_ce_forward_t<float, int32_t>(op, logits, labels, label_smoothing);
                  return sparse_ce_forward_t<float, int64_t>(op, logits, labels, label_smoothing);
              }
              if (label_bits == 0) return dense_ce_forward_t<double>(logits, labels, label_smoothing);
              if (label_bits == 32) return sparse_ce_forward_t<double, int32_t>(op, logits, labels, label_smoothing);
              return sparse_ce_forward_t<double, int64_t>(op, logits, labels, label_smoothing);
          },
          py::arg("logits"), py::arg("labels"), py::arg("sparse") = false, py::arg("label_smoothing") = 0.0,
          "(loss (N,), probs (N, C)) of softmax cross-entropy; labels (N, C), or (N,) int classes when sparse.");
    m.def("softmax_cross_entropy_backward",
          [](const py::array& dloss, const py::array& probs, const py::array& labels, bool sparse,
             double label_smoothing) {
              const std::string op = "softmax_cross_entropy_backward";
              const int bits = check_class_matrix(op, "probs", probs);
              require_same_dtype(op, "probs", probs, "dloss", dloss);
              if (dloss.ndim() != 1 || dloss.shape(0) != probs.shape(0)) {
                  value_error(op, "'dloss' must have shape (N,) with N = probs.shape[0]. Received: dloss.shape=" +
                                      shape_str(dloss) + ", probs.shape=" + shape_str(probs));
              }
              const int label_bits = check_labels(op, labels, "probs", probs, sparse, label_smoothing);
              if (bits == 32) {
                  if (label_bits == 0) return dense_ce_backward_t<float>(dloss, probs, labels, label_smoothing);
                  if (label_bits == 32)
                      return sparse_ce_backward_t<float, int32_t>(op, dloss, probs, labels, label_smoothing);
                  return sparse_ce_backward_t<float, int64_t>(op, dloss, probs, labels, label_smoothing);
              }
              if (label_bits == 0) return dense_ce_backward_t<double>(dloss, probs, labels, label_smoothing);
              if (label_bits == 32)
                  return sparse_ce_backward_t<double, int32_t>(op, dloss, probs, labels, label_smoothing);
              return sparse_ce_backward_t<double, int64_t>(op, dloss, probs, labels, label_smoothing);
          },
          py::arg("dloss"), py::arg("probs"), py::arg("labels"), py::arg("sparse") = false,
          py::arg("label_smoothing") = 0.0, "dlogits (N, C) = dloss[:, None] * (probs * sum(t) - t).");
}

// ---------------------------------------------------------------- optim

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

}  // namespace

PYBIND11_MODULE(_C, m) {
    m.doc() = "pyminidl C++/OpenMP kernels";
    bind_core(m);
    bind_gemm(m);
    bind_activations(m);
    bind_losses(m);
    bind_optim(m);
}
