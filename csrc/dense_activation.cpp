// dense_activation.cpp — dense_activation_grad (gemm.h): the fused Dense backward's dL/dz,
// written into the incoming gradient dz (relu, sigmoid, tanh), with activation_backward's
// formulas operand for operand, so the two give the same bits; dense_activation_bias_grad:
// the same, and the bias gradient db = sum over rows of the new dz in the same sweep (one
// pass over dz instead of two; bias_grad's order, so bias_grad's bits).
//
// Layout: dz and the saved tensor contiguous. dense_activation_grad is elementwise: threads
// take contiguous blocks (parallel_blocks); dense_activation_bias_grad reads (N, U) rows:
// threads take blocks of columns, each column summed by one thread in row order. Any thread
// count gives the same bits. Compiled with the elementwise flags (CMakeLists.txt):
// -fno-trapping-math lets GCC if-convert relu's select and vectorise.
#include <algorithm>
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

// Calls run(grad) with grad(g, s) = dL/dz for the kind. The formulas are
// activation_backward's, operand for operand, so both give the same bits.
template <typename T, typename Run>
void with_grad(DenseActivation kind, Run run) {
    switch (kind) {
        case DenseActivation::relu:  // dL/dz = dy * [z > 0] (NaN z: 0)
            return run([](T g, T z) { return g * (z > T(0) ? T(1) : T(0)); });
        case DenseActivation::sigmoid:  // dL/dz = dy * y * (1 - y)
            return run([](T g, T y) { return g * y * (T(1) - y); });
        case DenseActivation::tanh:  // dL/dz = dy * (1 - y)(1 + y): 1 - y*y cancels near |y| = 1
            return run([](T g, T y) { return g * ((T(1) - y) * (T(1) + y)); });
    }
}

template <typename T>
void dense_activation_grad_t(T* dz, const T* s, int64_t n, DenseActivation kind) {
    with_grad<T>(kind, [&](auto grad) {
        parallel_blocks(n, 1, [&](int64_t lo, int64_t hi) { apply_in_place(dz, s, lo, hi, grad); });
    });
}

// Columns per work item of the fused bias gradient: bias_grad's block (gemm.cpp), a row of
// accumulators that stays in L1.
constexpr int64_t BIAS_COLS = 64;

// One row's columns [0, nu): d = grad(d, v), acc += the new d. restrict (the binding rejects
// an aliased saved tensor): GCC then vectorises the loop without run-time overlap checks.
template <typename T, typename F>
PMD_ALWAYS_INLINE void apply_and_add(T* PMD_RESTRICT d, const T* PMD_RESTRICT v, T* PMD_RESTRICT acc,
                                     int64_t nu, F grad) {
    for (int64_t u = 0; u < nu; ++u) {
        const T g = grad(d[u], v[u]);
        d[u] = g;
        acc[u] += g;
    }
}

// Columns [u0, u0 + nu) of (N, U) dz and s: dz = grad(dz, s), db = the column sums of the new
// dz, accumulated in T from 0 in row order (bias_grad's order and bits).
template <typename T, typename F>
void apply_and_sum(T* dz, T* db, const T* s, int64_t N, int64_t U, int64_t u0, int64_t nu, F grad) {
    T acc[BIAS_COLS] = {};
    for (int64_t n = 0; n < N; ++n) apply_and_add(dz + n * U + u0, s + n * U + u0, acc, nu, grad);
    std::copy(acc, acc + nu, db + u0);
}

template <typename T>
void dense_activation_bias_grad_t(T* dz, T* db, const T* s, int64_t N, int64_t U, DenseActivation kind) {
    const int64_t blocks = (U + BIAS_COLS - 1) / BIAS_COLS;
    with_grad<T>(kind, [&](auto grad) {
        // Over column blocks, never rows: db does not depend on the thread count.
        parallel_blocks(blocks, N * BIAS_COLS, [&](int64_t lo, int64_t hi) {
            for (int64_t b = lo; b < hi; ++b) {
                apply_and_sum(dz, db, s, N, U, b * BIAS_COLS, std::min(BIAS_COLS, U - b * BIAS_COLS), grad);
            }
        });
    });
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

void dense_activation_bias_grad(float* dz, float* db, const float* s, int64_t N, int64_t U,
                                DenseActivation kind) {
    // dz, s: (N, U) contiguous, dz updated in place; db: (U,), overwritten.
    dense_activation_bias_grad_t(dz, db, s, N, U, kind);
}

void dense_activation_bias_grad(double* dz, double* db, const double* s, int64_t N, int64_t U,
                                DenseActivation kind) {
    // dz, s: (N, U) contiguous, dz updated in place; db: (U,), overwritten.
    dense_activation_bias_grad_t(dz, db, s, N, U, kind);
}

}  // namespace pyminidl::kernels
