// bind_spatial.h — the argument checks the spatial bindings share (bind_conv.cpp,
// bind_pool.cpp, bind_norm.cpp): sizes printed as Python prints a tuple, and the per-axis
// integer arguments (pool sizes, strides, paddings, dilation rates) counted and in range.
// Binding files only, like bind_common.h.
#pragma once

#include "bind_common.h"

#include <vector>

#include "pool.h"

namespace pyminidl::bind {

// The largest pool size, stride, padding, dilation or group count accepted: beyond any
// image, and small enough that a product of two stays far inside int64.
constexpr int64_t MAX_SPATIAL_PARAM = int64_t(1) << 31;

// v[0..n) as Python prints a tuple: "(2, 3)", "(5,)", "()".
template <typename Int>
std::string tuple_str(const Int* v, size_t n) {
    std::ostringstream s;
    s << "(";
    for (size_t i = 0; i < n; ++i) s << (i ? ", " : "") << v[i];
    if (n == 1) s << ",";
    s << ")";
    return s.str();
}

template <typename Seq>
std::string tuple_str(const Seq& v) {
    return tuple_str(v.data(), v.size());
}

// v must hold `count` integers in [lo, MAX_SPATIAL_PARAM]; else a ValueError naming arg and
// what was received.
template <typename Seq>
void require_spatial_ints(const std::string& op, const char* arg, const Seq& v, size_t count, int64_t lo) {
    bool ok = v.size() == count;
    for (size_t i = 0; ok && i < v.size(); ++i) ok = v[i] >= lo && v[i] <= MAX_SPATIAL_PARAM;
    if (!ok) {
        value_error(op, std::string("argument '") + arg + "' must be " + std::to_string(count) + " integers >= " +
                            std::to_string(lo) + ". Received: " + arg + "=" + tuple_str(v));
    }
}

// A pooling's geometry over an input of `shape` (N, H, W, C): pool sizes and strides >= 1,
// padding 'valid' or 'same' (Keras's rule), a non-empty output (bind_pool.cpp).
kernels::PoolGeom pool_geometry(const std::string& op, const std::vector<int64_t>& shape, const std::vector<int64_t>& pool,
                                const std::vector<int64_t>& strides, const std::string& padding);

// a must have a pooling's output shape (N, OH, OW, C) for geometry g (a gradient or an argmax
// of it); else a ValueError naming arg and both shapes (bind_pool.cpp).
void require_out_shape(const std::string& op, const char* arg, const py::array& a, const kernels::PoolGeom& g);

}  // namespace pyminidl::bind
