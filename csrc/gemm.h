// gemm.h — C = alpha * op(A) op(B) + beta * C, float32 and float64.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// C: (M, N), row stride ldc. op(A): (M, K) — A is (M, K) with row stride lda, or (K, M)
// when trans_a. op(B): (K, N) — B is (K, N) with row stride ldb, or (N, K) when trans_b.
// When beta == 0, C is not read (it may be uninitialised).
void sgemm(float* C, int64_t ldc, const float* A, int64_t lda, bool trans_a,
           const float* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
           float alpha, float beta);
void dgemm(double* C, int64_t ldc, const double* A, int64_t lda, bool trans_a,
           const double* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
           double alpha, double beta);

// Triple loop: the in-C++ reference and the fallback for degenerate shapes.
void sgemm_naive(float* C, int64_t ldc, const float* A, int64_t lda, bool trans_a,
                 const float* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
                 float alpha, float beta);
void dgemm_naive(double* C, int64_t ldc, const double* A, int64_t lda, bool trans_a,
                 const double* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
                 double alpha, double beta);

}  // namespace pyminidl::kernels
