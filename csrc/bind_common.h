// bind_common.h — what every binding file shares: argument validation (dtype, rank,
// shape, contiguity, aliasing) with errors naming the argument and what was received, and
// the float32/float64 dispatch. Only the binding files (bind_*.cpp, module.cpp) include it:
// with them, the only files that see pybind11.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <algorithm>
#include <utility>
#include <vector>

#include "common.h"

namespace py = pybind11;

namespace pyminidl::bind {

inline std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

// The most threads set_num_threads accepts (and fma_ceiling probes): far above any core count,
// below what OpenMP can create.
inline int max_threads_allowed() {
    const unsigned hw = std::thread::hardware_concurrency();
    return static_cast<int>(std::max<unsigned>(64, 4 * hw));
}

[[noreturn]] inline void value_error(const std::string& op, const std::string& msg) {
    throw py::value_error(op + ": " + msg);
}

[[noreturn]] inline void type_error(const std::string& op, const std::string& msg) {
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

inline void require_ndim(const std::string& op, const char* arg, const py::array& a, py::ssize_t ndim) {
    if (a.ndim() != ndim) {
        value_error(op, std::string("argument '") + arg + "' must be " + std::to_string(ndim) +
                            "-D. Received: shape=" + shape_str(a));
    }
}

inline void require_c_contiguous(const std::string& op, const char* arg, const py::array& a) {
    if (!(a.flags() & py::array::c_style)) {
        value_error(op, std::string("argument '") + arg +
                            "' must be C-contiguous. Received a strided view of shape=" +
                            shape_str(a));
    }
}

inline void require_writeable(const std::string& op, const char* arg, const py::array& a) {
    if (!a.writeable()) {
        value_error(op, std::string("argument '") + arg + "' is read-only; it is updated in place");
    }
}

// The bytes [lo, hi) an array's elements span, from its strides: data + nbytes is wrong for
// a strided view (it spans more) and for negative strides (data points at the last element
// of the axis, the span lies below it), which made the alias check answer by heap layout.
inline std::pair<const char*, const char*> byte_span(const py::array& a) {
    const char* lo = static_cast<const char*>(a.data());
    const char* hi = lo + a.itemsize();
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        const py::ssize_t reach = a.strides(i) * (a.shape(i) - 1);
        (reach < 0 ? lo : hi) += reach;
    }
    return {lo, hi};
}

inline bool overlaps(const py::array& a, const py::array& b) {
    if (a.size() == 0 || b.size() == 0) return false;
    const auto [a0, a1] = byte_span(a);
    const auto [b0, b1] = byte_span(b);
    return a0 < b1 && b0 < a1;
}

inline void require_no_alias(const std::string& op, const char* arg_a, const py::array& a,
                      const char* arg_b, const py::array& b) {
    if (overlaps(a, b)) {
        value_error(op, std::string("arguments '") + arg_a + "' and '" + arg_b +
                            "' share memory; pass distinct arrays");
    }
}

inline void require_same_shape(const std::string& op, const char* arg_a, const py::array& a,
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
inline py::array as_array(const std::string& op, const char* arg, const py::object& obj) {
    py::array a = py::array::ensure(obj);
    if (!a) {
        type_error(op, std::string("argument '") + arg + "' must be an array. Received: " +
                           std::string(py::str(py::type::of(obj))));
    }
    return a;
}

inline std::vector<py::ssize_t> shape_of(const py::array& a) {
    return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}


// The float32/float64 dispatch of every binding. float_bits is the check: the float type of
// an argument (32 or 64) or a TypeError naming it, so no other dtype reaches a kernel.
// with_float is the dispatch: f(T{}) with T float or double, so a kernel call is written once,
// as a generic lambda. They are apart because some bindings check the dtype first and other
// arguments before the dispatch (the order their error messages promise); dispatch_float is
// the two in one, for the bindings that dispatch at once.
inline int float_bits(const std::string& op, const char* arg, const py::array& a) {
    if (py::dtype::of<float>().equal(a.dtype())) return 32;
    if (py::dtype::of<double>().equal(a.dtype())) return 64;
    type_error(op, std::string("argument '") + arg + "' must have dtype float32 or float64. "
                   "Received: dtype=" + std::string(py::str(a.dtype())) + ", shape=" + shape_str(a));
}

template <typename F>
auto with_float(int bits, F&& f) {
    if (bits == 32) return f(float{});
    return f(double{});
}

template <typename F>
auto dispatch_float(const std::string& op, const char* arg, const py::array& a, F&& f) {
    return with_float(float_bits(op, arg, a), std::forward<F>(f));
}

inline void require_same_dtype(const std::string& op, const char* arg_a, const py::array& a,
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

// One per family; module.cpp calls each.
void bind_config(py::module_& m);
void bind_gemm(py::module_& m);
void bind_activations(py::module_& m);
void bind_losses(py::module_& m);
void bind_optim(py::module_& m);
void bind_image(py::module_& m);
// Recurrent layers and Embedding (bind_rnn.cpp).
void bind_rnn(py::module_& m);
// Convolution (bind_conv.cpp).
void bind_conv(py::module_& m);
// Pooling and normalization (issue 9).
void bind_pool(py::module_& m);
void bind_norm(py::module_& m);
void bind_depthwise(py::module_& m);
// Row gather of the training loop's batches (bind_gather.cpp).
void bind_gather(py::module_& m);
// The dropout mask from an integer seed (bind_dropout.cpp).
void bind_dropout(py::module_& m);

}  // namespace pyminidl::bind
