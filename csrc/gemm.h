// gemm.h — C = alpha * op(A) op(B) + beta * C, float32 and float64, and the Dense helpers
// built on it (see gemm.cpp for the algorithm).
#pragma once

#include "common.h"
#include "cpu_features.h"

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

// The entry for other kernels' loops (a convolution's tiles, an RNN's steps): one thread, no
// OpenMP region and no allocation; packing buffers come from the caller's work, at least
// *gemm_workspace_elems(M, N, K) elements (for the ISA path active when sized; a smaller
// work throws std::invalid_argument). Call it from inside the caller's own parallel region,
// one work per thread. Results are bit-identical to sgemm/dgemm on the same arguments.
int64_t sgemm_workspace_elems(int64_t M, int64_t N, int64_t K);
int64_t dgemm_workspace_elems(int64_t M, int64_t N, int64_t K);
void sgemm_serial(float* C, int64_t ldc, const float* A, int64_t lda, bool trans_a,
                  const float* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, float beta, float* work, int64_t work_elems);
void dgemm_serial(double* C, int64_t ldc, const double* A, int64_t lda, bool trans_a,
                  const double* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
                  double alpha, double beta, double* work, int64_t work_elems);

// op(B) packed once for many serial products with the same B (an RNN's recurrent kernel at
// every step): bp, 64-byte aligned, holds sgemm_packed_b_elems(N, K) elements, laid out by sgemm_pack_b for the
// ISA path active then (pack and multiply on the same path). sgemm_serial_packed_b runs
// C = alpha op(A) op(B) + beta C on the packed loop nest reading bp's panels in place, one
// thread, work as sgemm_serial's (sgemm_workspace_elems(M, N, K)). Each row of C depends on
// its row of op(A) alone, not on M or on where the row sits.
int64_t sgemm_packed_b_elems(int64_t N, int64_t K);
void sgemm_pack_b(float* bp, const float* B, int64_t ldb, bool trans_b, int64_t N, int64_t K);
void sgemm_serial_packed_b(float* C, int64_t ldc, const float* A, int64_t lda, bool trans_a, const float* bp,
                           int64_t M, int64_t N, int64_t K, float alpha, float beta, float* work,
                           int64_t work_elems);

// Triple loop: the in-C++ reference and the fallback for degenerate shapes.
void sgemm_naive(float* C, int64_t ldc, const float* A, int64_t lda, bool trans_a,
                 const float* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
                 float alpha, float beta);
void dgemm_naive(double* C, int64_t ldc, const double* A, int64_t lda, bool trans_a,
                 const double* B, int64_t ldb, bool trans_b, int64_t M, int64_t N, int64_t K,
                 double alpha, double beta);

// Dense helpers, float32 and float64 overloads.
// y: (N, U) contiguous; op(x): (N, I), x row stride ldx; op(w): (I, U), w row stride ldw;
// b: (U,) or nullptr. y = op(x) op(w) + b.
void dense_forward(float* y, const float* x, int64_t ldx, bool trans_x, const float* w,
                   int64_t ldw, bool trans_w, const float* b, int64_t N, int64_t I, int64_t U);
void dense_forward(double* y, const double* x, int64_t ldx, bool trans_x, const double* w,
                   int64_t ldw, bool trans_w, const double* b, int64_t N, int64_t I, int64_t U);
// y: (N, U) contiguous; x: (N, U) row stride ldx; b: (U,). y = x + b.
void bias_add(float* y, const float* x, int64_t ldx, const float* b, int64_t N, int64_t U);
void bias_add(double* y, const double* x, int64_t ldx, const double* b, int64_t N, int64_t U);
// db: (U,); dy: (N, U) row stride lddy. db[u] = sum over n of dy[n, u], summed in row order
// by one thread per column, so db does not depend on the thread count.
void bias_grad(float* db, const float* dy, int64_t lddy, int64_t N, int64_t U);
void bias_grad(double* db, const double* dy, int64_t lddy, int64_t N, int64_t U);
// sum: (cols,); dy: (rows, cols) row stride ld. sum[u] (+)= sum over r of dy[r, u], in row
// order from sum[u] (first: from 0): bias_grad's order and bits, serial (dense_activation.cpp).
// A convolution's db continues it band by band as each band's dy is read.
void column_sums(float* sum, const float* dy, int64_t ld, int64_t rows, int64_t cols, bool first);
void column_sums(double* sum, const double* dy, int64_t ld, int64_t rows, int64_t cols, bool first);
// The activations whose derivative the fused Dense backward applies in place.
enum class DenseActivation : int { relu, sigmoid, tanh };
// dz: (n,) contiguous, updated in place: dz *= f'(.), the same formulas (and bits) as
// activation_backward. s: (n,) what f' reads: relu its input z or its output (f' = [z > 0] =
// [relu(z) > 0]), sigmoid and tanh their output y (y (1 - y), (1 - y)(1 + y)). dz gets no new array: the Dense backward
// owns its incoming gradient and overwrites it with dL/dz.
void dense_activation_grad(float* dz, const float* s, int64_t n, DenseActivation kind);
void dense_activation_grad(double* dz, const double* s, int64_t n, DenseActivation kind);
// dz, s: (N, U) contiguous; db: (U,). dense_activation_grad on dz, and db = the column sums
// of the new dz in the same pass, with bias_grad's order and bits.
void dense_activation_bias_grad(float* dz, float* db, const float* s, int64_t N, int64_t U,
                                DenseActivation kind);
void dense_activation_bias_grad(double* dz, double* db, const double* s, int64_t N, int64_t U,
                                DenseActivation kind);

// The GEMM's configuration on one ISA path (what show_config reports): register tile and
// cache blocks per dtype, the caches they were derived from, and where the blocks came from
// ("caches", "caches (missing levels defaulted)" or "PYMINIDL_GEMM_BLOCKS").
struct GemmBlockInfo {
    int64_t MR, NR, MC, KC, NC;
};
struct GemmPathConfig {
    const char* isa;
    const char* blocks_from;
    CacheSizes caches;
    GemmBlockInfo f32, f64;
    int64_t direct_a_bytes;
    bool dot;  // a dot path for thin outputs
};
GemmPathConfig gemm_config(Isa isa);
// The float32 FMA ceiling of an ISA path in GFLOP/s: threads run independent FMA chains
// (multiply + add on the baseline path) for about `seconds`. "% of peak" is against this.
double fma_ceiling_gflops(Isa isa, int threads, double seconds);
// Test hook: rebuild every path's blocks as if the CPU reported these caches (nullptr: the
// detected ones). Not thread-safe: no GEMM may run at the same time.
void gemm_set_caches(const CacheSizes* caches);

}  // namespace pyminidl::kernels
