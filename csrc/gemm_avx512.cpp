// gemm_avx512.cpp — AVX-512F micro-kernels of the GEMM: packed (float32 12x32, float64 12x16;
// float32 edge rows as 4x32 / 8x32 and edge columns as 16 or 32 masked lanes on the same panels),
// direct (the same tiles, plus narrow 16x16 / 16x8 tiles for small N) and dot (8 x 2 / 4 x 2
// tiles vectorised over k, for N <= 12).
//
// Compiled with -mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma (CMakeLists.txt) and called
// only when pyminidl::active_isa() says the CPU and OS support AVX-512, so the rest of the
// library stays baseline x86-64. The kernel bodies are in gemm_simd.h; this file supplies
// the 512-bit traits and fixes the tile shapes of gemm_ukernels.h.
//
// Layout: packed a[p * MR + i] and b[p * NR + j], 64-byte aligned; C row-major, stride ldc.
// 12 rows x 2 zmm = 24 accumulators of the 32 zmm registers, leaving room for the two B
// vectors and the A broadcast; on Zen 4 a zmm FMA issues once per cycle with a 4-cycle
// latency, so 24 independent chains hide the latency. Edge lanes use AVX-512 masks. The
// float32 packed kernel prefetches its C tile and its panels (AVX512_SGEMM_PF_K, gemm_simd.h).
//
// Reference: BLIS "skx" micro-kernels (github.com/flame/blis, kernels/skx), transposed to our
// row-major C (the vector axis is N).
#include <immintrin.h>

#include "gemm_simd.h"
#include "gemm_ukernels.h"

namespace pyminidl::kernels::detail {

namespace {

struct ZmmF32 {
    using T = float;
    using V = __m512;
    using Mask = __mmask16;
    static constexpr int W = 16;
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const T* p) { return _mm512_load_ps(p); }
    static V loadu(const T* p) { return _mm512_loadu_ps(p); }
    static void storeu(T* p, V v) { _mm512_storeu_ps(p, v); }
    static V bcast(const T* p) { return _mm512_set1_ps(*p); }
    static V set1(T x) { return _mm512_set1_ps(x); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static Mask mask_for(int64_t n) {
        return n >= W ? Mask(0xFFFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1u);
    }
    static V maskz_loadu(Mask m, const T* p) { return _mm512_maskz_loadu_ps(m, p); }
    static void mask_storeu(T* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
    // Lane l = the sum of v[l]: pairs of vectors interleaved and added within 128-bit lanes
    // (unpack ps, then pd), then the four 128-bit quarters folded across vectors (shuffle_f32x4):
    // 15 adds and 30 shuffles for 16 sums, against 8 operations for each by _mm512_reduce_add_ps.
    PMD_ALWAYS_INLINE static V reduce_lanes(const V (&v)[16]) {
        V a[8], b[4], c[2];
        #pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {  // quarter q: [x0+x2, y0+y2, x1+x3, y1+y3]
            a[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
        }
        #pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) {  // quarter q: the sums of quarter q of v[4k .. 4k + 3]
            const __m512d x = _mm512_castps_pd(a[2 * k]), y = _mm512_castps_pd(a[2 * k + 1]);
            b[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
        }
        #pragma GCC unroll 8
        for (int k = 0; k < 2; ++k) {  // [b0 (q0+q1), b0 (q2+q3), b1 (q0+q1), b1 (q2+q3)]
            c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
        }
        return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    }
};

struct ZmmF64 {
    using T = double;
    using V = __m512d;
    using Mask = __mmask8;
    static constexpr int W = 8;
    static V zero() { return _mm512_setzero_pd(); }
    static V load(const T* p) { return _mm512_load_pd(p); }
    static V loadu(const T* p) { return _mm512_loadu_pd(p); }
    static void storeu(T* p, V v) { _mm512_storeu_pd(p, v); }
    static V bcast(const T* p) { return _mm512_set1_pd(*p); }
    static V set1(T x) { return _mm512_set1_pd(x); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static Mask mask_for(int64_t n) {
        return n >= W ? Mask(0xFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1u);
    }
    static V maskz_loadu(Mask m, const T* p) { return _mm512_maskz_loadu_pd(m, p); }
    static void mask_storeu(T* p, Mask m, V v) { _mm512_mask_storeu_pd(p, m, v); }
    PMD_ALWAYS_INLINE static V reduce_lanes(const V (&v)[8]) {  // lane l = _mm512_reduce_add_pd(v[l])
        alignas(64) T s[8];
        for (int l = 0; l < 8; ++l) s[l] = _mm512_reduce_add_pd(v[l]);
        return _mm512_load_pd(s);
    }
};

}  // namespace

void sgemm_ukernel_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                          float alpha, float beta) {
    // a: (kc, 12) packed, b: (kc, 32) packed, c: (12, 32) row stride ldc.
    ukernel_packed<ZmmF32, AVX512_SGEMM_MR, AVX512_SGEMM_NR / 16, AVX512_SGEMM_PF_K>(kc, a, b, c, ldc, alpha,
                                                                                beta);
}

void sgemm_ukernel_rows_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                               float alpha, float beta) {
    // a: (kc, 12) packed, b: (kc, 32) packed, c: (mr, 32) row stride ldc, mr < 12. Rows in steps
    // of 4: a batch of 64 is 5 x 12 + 4 rows, split in two 2 x 12 + 8.
    constexpr int MR = AVX512_SGEMM_MR, NV = AVX512_SGEMM_NR / 16, PF = AVX512_SGEMM_PF_K;
    if (mr <= 4) return ukernel_packed<ZmmF32, MR, NV, PF, 4>(kc, a, b, c, ldc, alpha, beta, mr);
    if (mr <= 8) return ukernel_packed<ZmmF32, MR, NV, PF, 8>(kc, a, b, c, ldc, alpha, beta, mr);
    ukernel_packed<ZmmF32, MR, NV, PF>(kc, a, b, c, ldc, alpha, beta, mr);
}

void sgemm_ukernel_cols_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                               int64_t nr, float alpha, float beta) {
    // a: (kc, 12) packed, b: (kc, 32) packed, c: (mr, nr) row stride ldc, mr <= 12, nr < 32.
    ukernel_packed_cols<ZmmF32, AVX512_SGEMM_MR, AVX512_SGEMM_NR / 16, AVX512_SGEMM_PF_K, 4>(kc, a, b, c, ldc, mr, nr,
                                                                                      alpha, beta);
}

void dgemm_ukernel_avx512(int64_t kc, const double* a, const double* b, double* c,
                          int64_t ldc, double alpha, double beta) {
    // a: (kc, 12) packed, b: (kc, 16) packed, c: (12, 16) row stride ldc.
    ukernel_packed<ZmmF64, AVX512_DGEMM_MR, AVX512_DGEMM_NR / 8>(kc, a, b, c, ldc, alpha, beta);
}

void sgemm_direct_avx512(int64_t kc, const float* a, int64_t rsa, int64_t csa, const float* b,
                         int64_t ldb, float* c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                         float beta) {
    // op(A): (mr <= 12, kc) strides (rsa, csa); op(B): (kc, nr <= 32) row stride ldb; c: (mr, nr).
    ukernel_direct_any<ZmmF32, AVX512_SGEMM_MR, AVX512_SGEMM_NR / 16>(kc, a, rsa, csa, b, ldb, c,
                                                                       ldc, mr, nr, alpha, beta);
}

void sgemm_direct_narrow_avx512(int64_t kc, const float* a, int64_t rsa, int64_t csa,
                                const float* b, int64_t ldb, float* c, int64_t ldc, int64_t mr,
                                int64_t nr, float alpha, float beta) {
    // op(A): (mr <= 16, kc) strides (rsa, csa); op(B): (kc, nr <= 16) row stride ldb; c: (mr, nr).
    ukernel_direct_any<ZmmF32, AVX512_SDIRECT_NARROW_MR, AVX512_SDIRECT_NARROW_NR / 16>(
        kc, a, rsa, csa, b, ldb, c, ldc, mr, nr, alpha, beta);
}

void dgemm_direct_avx512(int64_t kc, const double* a, int64_t rsa, int64_t csa, const double* b,
                         int64_t ldb, double* c, int64_t ldc, int64_t mr, int64_t nr,
                         double alpha, double beta) {
    // op(A): (mr <= 12, kc) strides (rsa, csa); op(B): (kc, nr <= 16) row stride ldb; c: (mr, nr).
    ukernel_direct_any<ZmmF64, AVX512_DGEMM_MR, AVX512_DGEMM_NR / 8>(kc, a, rsa, csa, b, ldb, c,
                                                                      ldc, mr, nr, alpha, beta);
}

void dgemm_direct_narrow_avx512(int64_t kc, const double* a, int64_t rsa, int64_t csa,
                                const double* b, int64_t ldb, double* c, int64_t ldc, int64_t mr,
                                int64_t nr, double alpha, double beta) {
    // op(A): (mr <= 16, kc) strides (rsa, csa); op(B): (kc, nr <= 8) row stride ldb; c: (mr, nr).
    ukernel_direct_any<ZmmF64, AVX512_DDIRECT_NARROW_MR, AVX512_DDIRECT_NARROW_NR / 8>(
        kc, a, rsa, csa, b, ldb, c, ldc, mr, nr, alpha, beta);
}

void sgemm_dot_avx512(int64_t kc, const float* a, int64_t lda, int64_t mr, const float* bt,
                      int64_t ldbt, int64_t nc, float* c, int64_t ldc, float alpha, float beta) {
    // op(A): (mr <= 8, kc) row stride lda; op(B)^T: (nc <= 2, kc) row stride ldbt; c: (mr, nc).
    ukernel_dot<ZmmF32, AVX512_SDOT_RR, DOT_NC>(kc, a, lda, mr, bt, ldbt, nc, c, ldc, alpha, beta);
}

void dgemm_dot_avx512(int64_t kc, const double* a, int64_t lda, int64_t mr, const double* bt,
                      int64_t ldbt, int64_t nc, double* c, int64_t ldc, double alpha, double beta) {
    // op(A): (mr <= 4, kc) row stride lda; op(B)^T: (nc <= 2, kc) row stride ldbt; c: (mr, nc).
    ukernel_dot<ZmmF64, AVX512_DDOT_RR, DOT_NC>(kc, a, lda, mr, bt, ldbt, nc, c, ldc, alpha, beta);
}

double fma_probe_avx512(int64_t iters) {
    // As fma_probe_avx2, on zmm: 24 chains (2 pipes x 4 cycles, x 3 for margin).
    __m512 acc[24];
    for (auto& a : acc) a = _mm512_set1_ps(0.0f);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 24
        for (auto& a : acc) a = _mm512_fmadd_ps(a, x, y);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

}  // namespace pyminidl::kernels::detail
