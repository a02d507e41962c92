// gemm_avx2.cpp — AVX2+FMA micro-kernels of the GEMM: packed (float32 6x16, float64 6x8;
// float32 edge rows as 2x16 / 4x16 on the same panels)
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
    static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
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
    // Lane l = the sum of v[l]: pairs interleaved and added within 128-bit lanes (unpack ps,
    // then pd), then the two halves folded across vectors: 7 adds and 14 shuffles for 8 sums.
    PMD_ALWAYS_INLINE static V reduce_lanes(const V (&v)[8]) {
        V a[4], b[2];
        #pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) {  // half h: [x0+x2, y0+y2, x1+x3, y1+y3]
            a[k] = _mm256_add_ps(_mm256_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm256_unpackhi_ps(v[2 * k], v[2 * k + 1]));
        }
        #pragma GCC unroll 8
        for (int k = 0; k < 2; ++k) {  // half h: the sums of half h of v[4k .. 4k + 3]
            const __m256d x = _mm256_castps_pd(a[2 * k]), y = _mm256_castps_pd(a[2 * k + 1]);
            b[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)), _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
        }
        return _mm256_add_ps(_mm256_permute2f128_ps(b[0], b[1], 0x20), _mm256_permute2f128_ps(b[0], b[1], 0x31));
    }
};

struct YmmF64 {
    using T = double;
    using V = __m256d;
    using Mask = __m256i;
    static constexpr int W = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V load(const T* p) { return _mm256_load_pd(p); }
    static V loadu(const T* p) { return _mm256_loadu_pd(p); }
    static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
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
    // Lane l = the sum of v[l] (halves, then pairs; the same tree for every lane).
    PMD_ALWAYS_INLINE static V reduce_lanes(const V (&v)[4]) {
        const __m256d a = _mm256_hadd_pd(v[0], v[1]), b = _mm256_hadd_pd(v[2], v[3]);  // pairs within halves
        return _mm256_add_pd(_mm256_permute2f128_pd(a, b, 0x20), _mm256_permute2f128_pd(a, b, 0x31));
    }
};

}  // namespace

// One k step of the 6x16 tile: 2 B vectors, 6 broadcasts, 12 FMAs.
#define PMD_S6X16_STEP(P)                                                                   \
    do {                                                                                   \
        const __m256 b0 = _mm256_load_ps(b + (P) * 16), b1 = _mm256_load_ps(b + (P) * 16 + 8); \
        __m256 ai = _mm256_broadcast_ss(a + (P) * 6 + 0);                                  \
        c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);            \
        ai = _mm256_broadcast_ss(a + (P) * 6 + 1);                                         \
        c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);            \
        ai = _mm256_broadcast_ss(a + (P) * 6 + 2);                                         \
        c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);            \
        ai = _mm256_broadcast_ss(a + (P) * 6 + 3);                                         \
        c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);            \
        ai = _mm256_broadcast_ss(a + (P) * 6 + 4);                                         \
        c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);            \
        ai = _mm256_broadcast_ss(a + (P) * 6 + 5);                                         \
        c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);            \
    } while (0)

// c[0..16) = alpha * (x0, x1) (+ beta * c): unmasked, the tile is whole.
PMD_ALWAYS_INLINE void store_row16(float* c, __m256 x0, __m256 x1, __m256 va, __m256 vb, bool beta0) {
    if (beta0) {  // c may be uninitialised: never read it
        _mm256_storeu_ps(c, _mm256_mul_ps(va, x0));
        _mm256_storeu_ps(c + 8, _mm256_mul_ps(va, x1));
    } else {
        _mm256_storeu_ps(c, _mm256_fmadd_ps(va, x0, _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
        _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, x1, _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8))));
    }
}

void sgemm_ukernel_avx2(int64_t kc, const float* PMD_RESTRICT a, const float* PMD_RESTRICT b,
                        float* c, int64_t ldc, float alpha, float beta) {
    // a: (kc, 6) packed, b: (kc, 16) packed, c: (6, 16) row stride ldc.
    // The C tile is fetched while the k loop runs (its lines are cold: the whole of C is
    // swept once per KC block), and the A panel a few steps ahead (it streams from L2;
    // B's panel is in L1). Unrolled by 4 so the loop overhead stays off the FMA ports.
    for (int i = 0; i < 6; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4, a += 24, b += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(a + 96), _MM_HINT_T0);
        PMD_S6X16_STEP(0);
        PMD_S6X16_STEP(1);
        PMD_S6X16_STEP(2);
        PMD_S6X16_STEP(3);
    }
    for (; p < kc; ++p, a += 6, b += 16) PMD_S6X16_STEP(0);
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const bool beta0 = beta == 0.0f;
    store_row16(c, c00, c01, va, vb, beta0);
    store_row16(c + ldc, c10, c11, va, vb, beta0);
    store_row16(c + 2 * ldc, c20, c21, va, vb, beta0);
    store_row16(c + 3 * ldc, c30, c31, va, vb, beta0);
    store_row16(c + 4 * ldc, c40, c41, va, vb, beta0);
    store_row16(c + 5 * ldc, c50, c51, va, vb, beta0);
}
#undef PMD_S6X16_STEP

void sgemm_ukernel_rows_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                             float alpha, float beta) {
    // a: (kc, 6) packed, b: (kc, 16) packed, c: (mr, 16) row stride ldc, mr < 6. The generic
    // kernel's arithmetic per element is sgemm_ukernel_avx2's (k-order FMAs, the same store).
    constexpr int MR = AVX2_SGEMM_MR, NV = AVX2_SGEMM_NR / 8;
    if (mr <= 2) return ukernel_packed<YmmF32, MR, NV, 0, 2>(kc, a, b, c, ldc, alpha, beta, mr);
    if (mr <= 4) return ukernel_packed<YmmF32, MR, NV, 0, 4>(kc, a, b, c, ldc, alpha, beta, mr);
    ukernel_packed<YmmF32, MR, NV>(kc, a, b, c, ldc, alpha, beta, mr);
}

void sgemm_ukernel_cols_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                             int64_t nr, float alpha, float beta) {
    // a: (kc, 6) packed, b: (kc, 16) packed, c: (mr, nr) row stride ldc, mr <= 6, nr < 16.
    ukernel_packed_cols<YmmF32, AVX2_SGEMM_MR, AVX2_SGEMM_NR / 8, 0, 2>(kc, a, b, c, ldc, mr, nr, alpha, beta);
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

void sgemm_dot_avx2(int64_t kc, const float* a, int64_t lda, int64_t mr, const float* bt,
                    int64_t ldbt, int64_t nc, float* c, int64_t ldc, float alpha, float beta) {
    // a: (mr <= 4, kc) row stride lda; bt: (nc <= 2, kc) row stride ldbt; c: (mr, nc).
    ukernel_dot<YmmF32, AVX2_SDOT_RR, DOT_NC>(kc, a, lda, mr, bt, ldbt, nc, c, ldc, alpha, beta);
}

void dgemm_dot_avx2(int64_t kc, const double* a, int64_t lda, int64_t mr, const double* bt,
                    int64_t ldbt, int64_t nc, double* c, int64_t ldc, double alpha, double beta) {
    // a: (mr <= 2, kc) row stride lda; bt: (nc <= 2, kc) row stride ldbt; c: (mr, nc).
    ukernel_dot<YmmF64, AVX2_DDOT_RR, DOT_NC>(kc, a, lda, mr, bt, ldbt, nc, c, ldc, alpha, beta);
}

double fma_probe_avx2(int64_t iters) {
    // 12 independent chains cover 2 FMA pipes x 4 cycles of latency (+ margin): the ceiling
    // a register-tiled micro-kernel can reach. Returns a sum that keeps the loop alive.
    __m256 acc[12];
    for (auto& a : acc) a = _mm256_set1_ps(0.0f);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
        for (auto& a : acc) a = _mm256_fmadd_ps(a, x, y);
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

}  // namespace pyminidl::kernels::detail
