// bind_image.cpp — resize and affine sampling of NHWC float32 image batches (image.h).
#include "bind_common.h"

#include "image.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

kernels::Interp interp_code(const std::string& op, const std::string& name) {
    if (name == "bilinear") return kernels::Interp::bilinear;
    if (name == "nearest") return kernels::Interp::nearest;
    value_error(op, "interpolation must be 'bilinear' or 'nearest'. Received: interpolation='" + name + "'");
}

kernels::Fill fill_code(const std::string& op, const std::string& name) {
    if (name == "reflect") return kernels::Fill::reflect;
    if (name == "wrap") return kernels::Fill::wrap;
    if (name == "constant") return kernels::Fill::constant;
    if (name == "nearest") return kernels::Fill::nearest;
    value_error(op, "fill_mode must be one of 'reflect', 'wrap', 'constant', 'nearest'. Received: fill_mode='" +
                        name + "'");
}

using contiguous_f32 = py::array_t<float, py::array::c_style>;

// x: an (N, H, W, C) float32 batch with H, W, C >= 1; returned C-contiguous (a strided view is
// copied once: the kernels read rows of W*C floats).
contiguous_f32 check_images(const std::string& op, const py::array& x) {
    require_dtype<float>(op, "x", x);
    require_ndim(op, "x", x, 4);
    if (x.shape(1) < 1 || x.shape(2) < 1 || x.shape(3) < 1) {
        value_error(op, "argument 'x' needs height, width and channels >= 1. Received: shape=" + shape_str(x));
    }
    return contiguous_f32::ensure(x);
}

// transforms: (N, 8) finite float32, N = x.shape[0]; returned C-contiguous.
contiguous_f32 check_transforms(const std::string& op, const py::array& transforms, const py::array& x) {
    require_dtype<float>(op, "transforms", transforms);
    require_ndim(op, "transforms", transforms, 2);
    if (transforms.shape(0) != x.shape(0) || transforms.shape(1) != 8) {
        value_error(op, "argument 'transforms' must have shape (N, 8) with N = x.shape[0]. Received: "
                        "transforms.shape=" + shape_str(transforms) + ", x.shape=" + shape_str(x));
    }
    contiguous_f32 t = contiguous_f32::ensure(transforms);
    const float* v = t.data();
    for (py::ssize_t i = 0; i < t.size(); ++i) {
        if (!std::isfinite(v[i])) {
            value_error(op, "argument 'transforms' must be finite. Received: " + std::to_string(v[i]) +
                                " at flat index " + std::to_string(i));
        }
    }
    return t;
}

py::array_t<float> py_resize_forward(const py::array& x, int64_t height, int64_t width,
                                     const std::string& interpolation) {
    const std::string op = "resize_forward";
    const contiguous_f32 xc = check_images(op, x);
    const auto interp = interp_code(op, interpolation);
    if (height < 1 || width < 1 || height > (int64_t(1) << 24) || width > (int64_t(1) << 24)) {
        value_error(op, "the output height and width must be in [1, 2**24]. Received: height=" +
                            std::to_string(height) + ", width=" + std::to_string(width));
    }
    const int64_t n = x.shape(0), h = x.shape(1), w = x.shape(2), c = x.shape(3);
    py::array_t<float> y(std::vector<py::ssize_t>{py::ssize_t(n), py::ssize_t(height), py::ssize_t(width),
                                                  py::ssize_t(c)});
    float* out = y.mutable_data();
    const float* in = xc.data();
    {
        py::gil_scoped_release nogil;
        kernels::resize_forward(out, in, n, h, w, c, height, width, interp);
    }
    return y;
}

py::array_t<float> py_affine_transform_forward(const py::array& x, const py::array& transforms,
                                               const std::string& interpolation, const std::string& fill_mode,
                                               double fill_value) {
    const std::string op = "affine_transform_forward";
    const contiguous_f32 xc = check_images(op, x);
    const contiguous_f32 tc = check_transforms(op, transforms, x);
    const auto interp = interp_code(op, interpolation);
    const auto fill = fill_code(op, fill_mode);
    if (!std::isfinite(fill_value)) {
        value_error(op, "fill_value must be finite. Received: fill_value=" + std::to_string(fill_value));
    }
    const int64_t n = x.shape(0), h = x.shape(1), w = x.shape(2), c = x.shape(3);
    py::array_t<float> y(shape_of(x));
    float* out = y.mutable_data();
    const float* in = xc.data();
    const float* t = tc.data();
    const float fv = float(fill_value);
    {
        py::gil_scoped_release nogil;
        kernels::affine_transform_forward(out, in, t, n, h, w, c, interp, fill, fv);
    }
    return y;
}

}  // namespace

void bind_image(py::module_& m) {
    m.def("resize_forward", &py_resize_forward, py::arg("x"), py::arg("height"), py::arg("width"),
          py::arg("interpolation"),
          "y = R_h x R_w^T: (N, H, W, C) float32 -> (N, height, width, C); half-pixel centres, no antialias.");
    m.def("affine_transform_forward", &py_affine_transform_forward, py::arg("x"), py::arg("transforms"),
          py::arg("interpolation"), py::arg("fill_mode"), py::arg("fill_value"),
          "Each image of x (N, H, W, C) float32 sampled through its Keras transform (N, 8).");
}

}  // namespace pyminidl::bind
