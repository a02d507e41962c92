// dense_activation.cpp — dense_activation_grad (gemm.h): the fused Dense backward's dL/dz,
// written into the incoming gradient dz (relu, sigmoid, tanh), with activation_backward's
// formulas operand for operand, so the two give the same bits; dense_activation_bias_grad:
// the same, and the bias gradient db = sum over rows of the new dz in the same sweep (one
// pass over dz instead of two; bias_grad's order, so bias_grad's bits); column_sums: the
// serial column sums of every bias gradient (bias_grad per block of columns, the
// convolutions' db band by band).
//
// Layout: dz and the saved tensor contiguous. dense_activation_grad is elementwise: threads
// take contiguous blocks (parallel_blocks); dense_activation_bias_grad reads (N, U) rows:
// threads take blocks of columns, each column summed by one thread in row order. Any thread
// count gives the same bits. The loops (dense_activation_impl.h) also run from AVX2 / AVX-512
// copies (dense_activation_avx2.cpp, _avx512.cpp) in float32 when active_isa() allows, with
// the baseline's bits.
#include <algorithm>
#include <cstdint>

#include "cpu_features.h"
#include "dense_activation_impl.h"
#include "dense_activation_isa.h"
#include "gemm.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace {

// The widest copy active_isa() allows (float32; float64 keeps the baseline).
void act_span(float* dz, const float* s, int64_t lo, int64_t hi, DenseActivation kind) {
    PMD_ISA_DISPATCH(dense_act_span_f32, dz, s, lo, hi, kind)
    dense_act_span(dz, s, lo, hi, kind);
}

void act_span(double* dz, const double* s, int64_t lo, int64_t hi, DenseActivation kind) {
    dense_act_span(dz, s, lo, hi, kind);
}

void act_bias_cols(float* dz, float* db, const float* s, int64_t N, int64_t U, int64_t b_lo, int64_t b_hi,
                   DenseActivation kind) {
    PMD_ISA_DISPATCH(dense_act_bias_cols_f32, dz, db, s, N, U, b_lo, b_hi, kind)
    dense_act_bias_cols(dz, db, s, N, U, b_lo, b_hi, kind);
}

void act_bias_cols(double* dz, double* db, const double* s, int64_t N, int64_t U, int64_t b_lo, int64_t b_hi,
                   DenseActivation kind) {
    dense_act_bias_cols(dz, db, s, N, U, b_lo, b_hi, kind);
}

template <typename T>
void dense_activation_grad_t(T* dz, const T* s, int64_t n, DenseActivation kind) {
    parallel_blocks(n, 1, [&](int64_t lo, int64_t hi) { act_span(dz, s, lo, hi, kind); });
}

template <typename T>
void dense_activation_bias_grad_t(T* dz, T* db, const T* s, int64_t N, int64_t U, DenseActivation kind) {
    // Over column blocks, never rows: db does not depend on the thread count.
    const int64_t blocks = ceil_div(U, BIAS_COLS);
    parallel_blocks(blocks, N * BIAS_COLS, [&](int64_t lo, int64_t hi) {
        act_bias_cols(dz, db, s, N, U, lo, hi, kind);
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

void column_sums(float* sum, const float* dy, int64_t ld, int64_t rows, int64_t cols, bool first) {
    // sum: (cols,); dy: (rows, cols) row stride ld. Serial.
    PMD_ISA_DISPATCH(column_sums_f32, sum, dy, ld, rows, cols, first)
    sum_columns(sum, dy, ld, rows, cols, first);
}

void column_sums(double* sum, const double* dy, int64_t ld, int64_t rows, int64_t cols, bool first) {
    // sum: (cols,); dy: (rows, cols) row stride ld. Serial.
    sum_columns(sum, dy, ld, rows, cols, first);
}

}  // namespace pyminidl::kernels
