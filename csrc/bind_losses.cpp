// bind_losses.cpp — the fused softmax cross-entropy pair (dense and sparse labels).
#include "bind_common.h"

#include "losses.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

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

}  // namespace

void bind_losses(py::module_& m) {
    m.def("softmax_cross_entropy_forward",
          [](const py::array& logits, const py::array& labels, bool sparse, double label_smoothing) {
              const std::string op = "softmax_cross_entropy_forward";
              const int bits = check_class_matrix(op, "logits", logits);
              const int label_bits = check_labels(op, labels, "logits", logits, sparse, label_smoothing);
              return with_float(bits, [&](auto t) {
                  using T = decltype(t);
                  if (label_bits == 0) return dense_ce_forward_t<T>(logits, labels, label_smoothing);
                  if (label_bits == 32) return sparse_ce_forward_t<T, int32_t>(op, logits, labels, label_smoothing);
                  return sparse_ce_forward_t<T, int64_t>(op, logits, labels, label_smoothing);
              });
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
              return with_float(bits, [&](auto t) {
                  using T = decltype(t);
                  if (label_bits == 0) return dense_ce_backward_t<T>(dloss, probs, labels, label_smoothing);
                  if (label_bits == 32)
                      return sparse_ce_backward_t<T, int32_t>(op, dloss, probs, labels, label_smoothing);
                  return sparse_ce_backward_t<T, int64_t>(op, dloss, probs, labels, label_smoothing);
              });
          },
          py::arg("dloss"), py::arg("probs"), py::arg("labels"), py::arg("sparse") = false,
          py::arg("label_smoothing") = 0.0, "dlogits (N, C) = dloss[:, None] * (probs * sum(t) - t).");
}

}  // namespace pyminidl::bind
