// bind_gather.cpp — take_rows: x.take(idx, axis=0) for a C-contiguous array of a plain
// numeric dtype and a 1-D int64 index vector (the training loop's shuffled batches).
#include "bind_common.h"

#include "gather.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

// Bytes of plain values only: an object (or structured) array holds references whose copy
// would need their reference counts raised.
bool plain_numeric(const py::array& a) {
    const char kind = a.dtype().kind();
    return kind == 'b' || kind == 'i' || kind == 'u' || kind == 'f' || kind == 'c';
}

py::array py_take_rows(const py::array& x, const py::array& idx) {
    const std::string op = "take_rows";
    if (!plain_numeric(x)) {
        type_error(op, "argument 'x' must have a boolean, integer, float or complex dtype. Received: dtype=" +
                           std::string(py::str(x.dtype())) + ", shape=" + shape_str(x));
    }
    if (!py::dtype::of<int64_t>().equal(idx.dtype())) {
        type_error(op, "argument 'idx' must have dtype int64. Received: dtype=" + std::string(py::str(idx.dtype())) +
                           ", shape=" + shape_str(idx));
    }
    if (x.ndim() < 1) value_error(op, "argument 'x' must have at least 1 dimension. Received: shape=" + shape_str(x));
    require_ndim(op, "idx", idx, 1);
    if (!(x.flags() & py::array::c_style) || !(idx.flags() & py::array::c_style)) {
        value_error(op, "arguments 'x' and 'idx' must be C-contiguous. Received: x.strides=" +
                            std::to_string(x.strides(0)) + "..., idx.strides=(" + std::to_string(idx.strides(0)) + ",)");
    }
    const int64_t n_rows = x.shape(0), n_idx = idx.shape(0);
    const auto* ids = static_cast<const int64_t*>(idx.data());
    const int64_t bad = kernels::first_bad_row_index(ids, n_idx, n_rows);
    if (bad >= 0) {  // NumPy's IndexError and message, so callers see what x.take would raise
        throw py::index_error("index " + std::to_string(ids[bad]) + " is out of bounds for axis 0 with size " +
                              std::to_string(n_rows));
    }
    std::vector<py::ssize_t> shape = shape_of(x);
    shape[0] = static_cast<py::ssize_t>(n_idx);
    py::array out(x.dtype(), shape);
    const int64_t row_bytes = n_rows > 0 ? static_cast<int64_t>(x.nbytes()) / n_rows
                                         : static_cast<int64_t>(out.nbytes()) / std::max<int64_t>(n_idx, 1);
    char* dst = static_cast<char*>(out.mutable_data());
    const char* src = static_cast<const char*>(x.data());
    {
        py::gil_scoped_release nogil;
        kernels::gather_rows(dst, src, row_bytes, ids, n_idx, n_rows);
    }
    return out;
}

}  // namespace

void bind_gather(py::module_& m) {
    m.def("take_rows", &py_take_rows, py::arg("x"), py::arg("idx"),
          "x.take(idx, axis=0): x C-contiguous (n, ...) of a numeric dtype, idx (k,) int64 in [-n, n).");
}

}  // namespace pyminidl::bind
