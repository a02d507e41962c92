// dense_activation.cpp — dense_activation_grad (gemm.h): the fused Dense backward's dL/dz,
// written into the incoming gradient dz (relu, sigmoid, tanh), with activation_backward's
// formulas operand for operand, so the two give the same bits.
//
// Layout: dz and the saved tensor contiguous, elementwise; threads take contiguous blocks
// (parallel_blocks), so any thread count gives the same bits. Compiled with the elementwise
// flags (CMakeLists.txt): -fno-trapping-math lets GCC if-convert relu's select and vectorise.
#include <cstdint>

#include "gemm.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace {

// dz[i] = grad(dz[i], s[i]) over [lo, hi). Plain pointers, no restrict: dz is read and
// written in place (a serial function, so the loop vectorises outside the OpenMP outline).
template <typename T, typename F>
void apply_in_place(T* dz, const T* s, int64_t lo, int64_t hi, F grad) {
    for (int64_t i = lo; i < hi; ++i) dz[i] = grad(dz[i], s[i]);
}

// The formulas are activation_backward's, operand for operand, so both give the same bits.
template <typename T>
void dense_activation_grad_t(T* dz, const T* s, int64_t n, DenseActivation kind) {
    auto run = [&](auto grad) {
        parallel_blocks(n, 1, [&](int64_t lo, int64_t hi) { apply_in_place(dz, s, lo, hi, grad); });
    };
    switch (kind) {
        case DenseActivation::relu:  // dL/dz = dy * [z > 0] (NaN z: 0)
            return run([](T g, T z) { return g * (z > T(0) ? T(1) : T(0)); });
        case DenseActivation::sigmoid:  // dL/dz = dy * y * (1 - y)
            return run([](T g, T y) { return g * y * (T(1) - y); });
        case DenseActivation::tanh:  // dL/dz = dy * (1 - y)(1 + y): 1 - y*y cancels near |y| = 1
            return run([](T g, T y) { return g * ((T(1) - y) * (T(1) + y)); });
    }
}

}  // namespace

void dense_activation_grad(float* dz, const float* s, int64_t n, DenseActivation kind) {
    // dz, s: (n,) contiguous; dz updated in place.
    dense_activation_grad_t(dz, s, n, kind);
}

void dense_activation_grad(double* dz, const double* s, int64_t n, DenseActivation kind) {
    // dz, s: (n,) contiguous; dz updated in place.
    dense_activation_grad_t(dz, s, n, kind);
}

}  // namespace pyminidl::kernels
