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

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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
    if (!py::dtype::of<T>().is(a.dtype())) {
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

std::vector<py::ssize_t> shape_of(const py::array& a) {
    return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// ---------------------------------------------------------------- core

void bind_core(py::module_& m) {
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
        omp_set_threads(n);
    }, py::arg("n"));
}

// ---------------------------------------------------------------- gemm

void bind_gemm(py::module_& m) {
    (void)m;  // filled by the GEMM work
}

// ---------------------------------------------------------------- activations

void bind_activations(py::module_& m) {
    (void)m;  // filled by the activation kernels
}

// ---------------------------------------------------------------- losses

void bind_losses(py::module_& m) {
    (void)m;  // filled by the fused loss kernels
}

// ---------------------------------------------------------------- optim

void bind_optim(py::module_& m) {
    (void)m;  // filled by the fused optimizer kernels
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
