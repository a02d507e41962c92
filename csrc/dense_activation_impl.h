// dense_activation_impl.h — the serial loops of the fused Dense backward's dL/dz (relu,
// sigmoid, tanh), of its column sums fused with it, and of the plain column sums that every
// bias gradient takes (bias_grad, the convolutions' db), compiled once per instruction
// set: dense_activation.cpp (baseline x86-64, float64, every non-x86 target),
// dense_activation_avx2.cpp and dense_activation_avx512.cpp include this file. Internal
// linkage (an anonymous namespace), so each translation unit keeps its own copy built with its
// own -m flags. Built with the elementwise flags (-ffp-contract=off: no FMA is contracted, and
// the loops only multiply, select and add), so every ISA path returns the baseline's bits; the
// column sums run in row order per column at any vector width.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common.h"
#include "gemm.h"

namespace pyminidl::kernels {
namespace {

// Columns per work item of the fused bias gradient: bias_grad's block (gemm.cpp), a row of
// accumulators that stays in L1.
constexpr int64_t BIAS_COLS = 64;

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

// sum (NC,) (+)= the column sums of dy (rows, NC), row stride ld, each column in row order
// from sum's value (first: from 0). NC is a constant, so the sums stay in registers across
// the rows (restrict: sum is not dy); NC == 0 is the runtime width nc (a tail narrower than 16).
// The sums live in sum itself, not in a local array: a stack array that the AVX-512 copy
// reads with aligned loads faulted under AddressSanitizer's fake stack (misaligned frames).
template <int64_t NC, typename T>
PMD_ALWAYS_INLINE void column_block(T* PMD_RESTRICT sum, const T* PMD_RESTRICT dy, int64_t ld, int64_t rows,
                                    int64_t nc, bool first) {
    const int64_t w = NC > 0 ? NC : nc;
    if (first) {
        for (int64_t u = 0; u < w; ++u) sum[u] = T(0);
    }
    for (int64_t r = 0; r < rows; ++r, dy += ld) {
        for (int64_t u = 0; u < w; ++u) sum[u] += dy[u];
    }
}

// sum (cols,) (+)= the column sums of dy (rows, cols), row stride ld: each column summed in row
// order from sum's value (first: from 0), so any split of the columns gives the same bits. The
// columns go in blocks of 64, then one of 32 and one of 16, then the rest.
template <typename T>
void sum_columns(T* sum, const T* dy, int64_t ld, int64_t rows, int64_t cols, bool first) {
    int64_t u = 0;
    for (; u + BIAS_COLS <= cols; u += BIAS_COLS) column_block<BIAS_COLS>(sum + u, dy + u, ld, rows, 0, first);
    if (u + 32 <= cols) column_block<32>(sum + u, dy + u, ld, rows, 0, first), u += 32;
    if (u + 16 <= cols) column_block<16>(sum + u, dy + u, ld, rows, 0, first), u += 16;
    if (u < cols) column_block<0>(sum + u, dy + u, ld, rows, cols - u, first);
}

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

// dz[i] = f'-scaled dz[i] over [lo, hi) of the flat (n,) arrays. dz, s: (n,).
template <typename T>
void dense_act_span(T* PMD_RESTRICT dz, const T* PMD_RESTRICT s, int64_t lo, int64_t hi, DenseActivation kind) {
    with_grad<T>(kind, [&](auto grad) {
        for (int64_t i = lo; i < hi; ++i) dz[i] = grad(dz[i], s[i]);
    });
}

// Column blocks [b_lo, b_hi) of BIAS_COLS columns of (N, U) dz and s: dz = grad(dz, s), db =
// the column sums of the new dz, accumulated in T from 0 in row order (bias_grad's order and
// bits). db: (U,).
template <typename T>
void dense_act_bias_cols(T* dz, T* db, const T* s, int64_t N, int64_t U, int64_t b_lo, int64_t b_hi,
                         DenseActivation kind) {
    with_grad<T>(kind, [&](auto grad) {
        for (int64_t b = b_lo; b < b_hi; ++b) {
            const int64_t u0 = b * BIAS_COLS, nu = std::min(BIAS_COLS, U - u0);
            T acc[BIAS_COLS] = {};
            for (int64_t n = 0; n < N; ++n) apply_and_add(dz + n * U + u0, s + n * U + u0, acc, nu, grad);
            std::copy(acc, acc + nu, db + u0);
        }
    });
}

}  // namespace
}  // namespace pyminidl::kernels
