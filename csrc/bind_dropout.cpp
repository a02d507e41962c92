// bind_dropout.cpp — dropout_forward: the mask from an integer seed and the masked input, float32
// and float64 arrays of any shape (dropout.h).
#include "bind_common.h"

#include "dropout.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

template <typename T>
py::tuple dropout_forward_t(const py::array& x_in, double rate, uint64_t key0, uint64_t key1) {
    auto x = contiguous<T>(x_in);
    const std::vector<py::ssize_t> shape = shape_of(x_in);
    py::array_t<T> y(shape), mask(shape);
    T* yp = y.mutable_data();
    T* mp = mask.mutable_data();
    const T* xp = x.data();
    const int64_t n = static_cast<int64_t>(x.size());
    {
        py::gil_scoped_release nogil;
        kernels::dropout_forward(yp, mp, xp, n, rate, key0, key1);
    }
    return py::make_tuple(y, mask);
}

}  // namespace

void bind_dropout(py::module_& m) {
    m.def("dropout_forward", [](const py::array& x, double rate, uint64_t key0, uint64_t key1) {
        const std::string op = "dropout_forward";
        if (!(rate >= 0.0 && rate <= 1.0)) {  // NaN fails both
            value_error(op, "argument 'rate' must be in [0, 1]. Received: rate=" + py::str(py::float_(rate)).cast<std::string>());
        }
        return dispatch_float(op, "x", x, [&](auto t) { return dropout_forward_t<decltype(t)>(x, rate, key0, key1); });
    }, py::arg("x"), py::arg("rate"), py::arg("key0"), py::arg("key1"),
          "(x * mask, mask) with mask = (u >= rate) / (1 - rate), u = Generator(Philox(key=(key0, key1))).random(x.shape), "
          "float32 or float64, bit for bit.");
}

}  // namespace pyminidl::bind
