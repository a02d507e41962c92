// gemm_avx2.cpp — AVX2+FMA micro-kernels of the GEMM: packed (float32 6x16, float64 6x8)
// and direct (the same tiles, plus narrow 12x8 / 12x4 tiles for small N).
//
// Compiled with -mavx2 -mfma (CMakeLists.txt) and called only when pyminidl::active_isa()
// says the CPU supports AVX2 and FMA, so the rest of the library stays baseline x86-64. The
// kernel bodies are in gemm_simd.h; this file supplies the 256-bit traits and fixes the tile
// shapes of gemm_ukernels.h.
//
// Layout: packed a[p * MR + i] and b[p * NR + j], 64-byte aligned; C row-major, stride ldc.
// 6 rows x 2 ymm = 12 accumulators of the 16 ymm registers, plus 2 for the B vectors and 1
// for the A broadcast (the classic Haswell 6x16 tile); two FMA pipes with a 4-cycle latency
// need >= 8 independent chains. Edge lanes use vmaskmov (AVX has no mask registers).
//
// Reference: BLIS "haswell" sgemm 6x16 / dgemm 6x8 micro-kernels (github.com/flame/blis,
// kernels/haswell/3), written with intrinsics for our row-major C.
#include <immintrin.h>

#include "gemm_simd.h"
#include "gemm_ukernels.h"

namespace pyminidl::kernels::detail {

namespace {

struct YmmF32 {
    using T = float;
    using V = __m256;
    using Mask = __m256i;
    static constexpr int W = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const T* p) { return _mm256_load_ps(p); }
    static V loadu(const T* p) { return _mm256_loadu_ps(p); }
    static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
    static V set1(T x) { return _mm256_set1_ps(x); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static Mask mask_for(int64_t n) {  // lane l is on when l < n
        const int k = static_cast<int>(std::clamp<int64_t>(n, 0, W));
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V maskz_loadu(Mask m, const T* p) { return _mm256_maskload_ps(p, m); }
    static void mask_storeu(T* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
};

struct YmmF64 {
    using T = double;
    using V = __m256d;
    using Mask = __m256i;
    static constexpr int W = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V load(const T* p) { return _mm256_load_pd(p); }
    static V loadu(const T* p) { return _mm256_loadu_pd(p); }
    static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
    static V set1(T x) { return _mm256_set1_pd(x); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static Mask mask_for(int64_t n) {
        const int64_t k = std::clamp<int64_t>(n, 0, W);
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static V maskz_loadu(Mask m, const T* p) { return _mm256_maskload_pd(p, m); }
    static void mask_storeu(T* p, Mask m, V v) { _mm256_maskstore_pd(p, m, v); }
};

}  // namespace

void sgemm_ukernel_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                        float alpha, float beta) {
    // a: (kc, 6) packed, b: (kc, 16) packed, c: (6, 16) row stride ldc.
    ukernel_packed<YmmF32, AVX2_SGEMM_MR, AVX2_SGEMM_NR / 8>(kc, a, b, c, ldc, alpha, beta);
}

void dgemm_ukernel_avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                        double alpha, double beta) {
    // a: (kc, 6) packed, b: (kc, 8) packed, c: (6, 8) row stride ldc.
    ukernel_packed<YmmF64, AVX2_DGEMM_MR, AVX2_DGEMM_NR / 4>(kc, a, b, c, ldc, alpha, beta);
}

void sgemm_direct_avx2(int64_t kc, const float* a, int64_t rsa, int64_t csa, const float* b,
                       int64_t ldb, float* c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                       float beta) {
    // op(A): (mr <= 6, kc) strides (rsa, csa); op(B): (kc, nr <= 16) row stride ldb; c: (mr, nr).
    ukernel_direct_any<YmmF32, AVX2_SGEMM_MR, AVX2_SGEMM_NR / 8>(kc, a, rsa, csa, b, ldb, c, ldc,
                                                                  mr, nr, alpha, beta);
}

void sgemm_direct_narrow_avx2(int64_t kc, const float* a, int64_t rsa, int64_t csa,
                              const float* b, int64_t ldb, float* c, int64_t ldc, int64_t mr,
                              int64_t nr, float alpha, float beta) {
    // op(A): (mr <= 12, kc) strides (rsa, csa); op(B): (kc, nr <= 8) row stride ldb; c: (mr, nr).
    ukernel_direct_any<YmmF32, AVX2_SDIRECT_NARROW_MR, AVX2_SDIRECT_NARROW_NR / 8>(
        kc, a, rsa, csa, b, ldb, c, ldc, mr, nr, alpha, beta);
}

void dgemm_direct_avx2(int64_t kc, const double* a, int64_t rsa, int64_t csa, const double* b,
                       int64_t ldb, double* c, int64_t ldc, int64_t mr, int64_t nr,
                       double alpha, double beta) {
    // op(A): (mr <= 6, kc) strides (rsa, csa); op(B): (kc, nr <= 8) row stride ldb; c: (mr, nr).
    ukernel_direct_any<YmmF64, AVX2_DGEMM_MR, AVX2_DGEMM_NR / 4>(kc, a, rsa, csa, b, ldb, c, ldc,
                                                                  mr, nr, alpha, beta);
}

void dgemm_direct_narrow_avx2(int64_t kc, const double* a, int64_t rsa, int64_t csa,
                              const double* b, int64_t ldb, double* c, int64_t ldc, int64_t mr,
                              int64_t nr, double alpha, double beta) {
    // op(A): (mr <= 12, kc) strides (rsa, csa); op(B): (kc, nr <= 4) row stride ldb; c: (mr, nr).
    ukernel_direct_any<YmmF64, AVX2_DDIRECT_NARROW_MR, AVX2_DDIRECT_NARROW_NR / 4>(
        kc, a, rsa, csa, b, ldb, c, ldc, mr, nr, alpha, beta);
}

}  // namespace pyminidl::kernels::detail
