// gemm.cpp — placeholder naive GEMM (the blocked BLIS-style GEMM replaces it).
#include "gemm.h"

namespace pyminidl::kernels {

namespace {
template <typename T>
void gemm_naive_t(T* C, int64_t ldc, const T* A, int64_t lda, bool ta, const T* B, int64_t ldb,
                  bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta) {
    for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
            T acc = 0;
            for (int64_t p = 0; p < K; ++p) {
                const T a = ta ? A[p * lda + i] : A[i * lda + p];
                const T b = tb ? B[j * ldb + p] : B[p * ldb + j];
                acc += a * b;
            }
            C[i * ldc + j] = beta == T(0) ? alpha * acc : alpha * acc + beta * C[i * ldc + j];
        }
    }
}
}  // namespace

void sgemm_naive(float* C, int64_t ldc, const float* A, int64_t lda, bool ta, const float* B,
                 int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    gemm_naive_t(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta);
}
void dgemm_naive(double* C, int64_t ldc, const double* A, int64_t lda, bool ta, const double* B,
                 int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    gemm_naive_t(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta);
}
void sgemm(float* C, int64_t ldc, const float* A, int64_t lda, bool ta, const float* B,
           int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    gemm_naive_t(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta);
}
void dgemm(double* C, int64_t ldc, const double* A, int64_t lda, bool ta, const double* B,
           int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    gemm_naive_t(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta);
}

}  // namespace pyminidl::kernels
