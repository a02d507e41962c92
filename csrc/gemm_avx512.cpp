// gemm_avx512.cpp — AVX-512F micro-kernels of the blocked GEMM (float32 12x32, float64 12x16).
//
// Compiled with -mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma (CMakeLists.txt) and called
// only when pyminidl::active_isa() says the CPU and OS support AVX-512, so the rest of the
// library stays baseline x86-64.
//
// Layout: packed A micro-panel a[p * MR + i], packed B micro-panel b[p * NR + j], both
// 64-byte aligned (see gemm_ukernels.h); C tile row-major with row stride ldc.
// Each of the MR rows holds NR / VW zmm accumulators (VW = lanes per register): 24 of the
// 32 zmm registers, leaving room for the B vectors and the A broadcast. On Zen 4 a zmm FMA
// issues once per cycle with a 4-cycle latency, so 24 independent chains hide the latency.
//
// Reference: BLIS "skx" sgemm/dgemm micro-kernels (github.com/flame/blis, kernels/skx),
// transposed to our row-major C: the vector axis is N.
#include <immintrin.h>

#include "gemm_ukernels.h"

namespace pyminidl::kernels::detail {

namespace {

template <typename T>
struct Zmm;

template <>
struct Zmm<float> {
    using V = __m512;
    static constexpr int W = 16;
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_load_ps(p); }
    static V loadu(const float* p) { return _mm512_loadu_ps(p); }
    static V bcast(const float* p) { return _mm512_set1_ps(*p); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
};

template <>
struct Zmm<double> {
    using V = __m512d;
    static constexpr int W = 8;
    static V zero() { return _mm512_setzero_pd(); }
    static V load(const double* p) { return _mm512_load_pd(p); }
    static V loadu(const double* p) { return _mm512_loadu_pd(p); }
    static V bcast(const double* p) { return _mm512_set1_pd(*p); }
    static V set1(double x) { return _mm512_set1_pd(x); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
};

// a: (kc, MR) packed, b: (kc, NR) packed, c: (MR, NR) row stride ldc.
// c = alpha * a b + beta * c; c is not read when beta == 0.
template <typename T, int MR, int NV>
PMD_ALWAYS_INLINE void ukernel_zmm(int64_t kc, const T* PMD_RESTRICT a, const T* PMD_RESTRICT b,
                                   T* PMD_RESTRICT c, int64_t ldc, T alpha, T beta) {
    using Z = Zmm<T>;
    constexpr int NR = NV * Z::W;
    typename Z::V acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = Z::zero();
    for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
        typename Z::V bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = Z::load(b + v * Z::W);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const typename Z::V ai = Z::bcast(a + i);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[i][v] = Z::fmadd(ai, bv[v], acc[i][v]);
        }
    }
    const typename Z::V va = Z::set1(alpha), vb = Z::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            T* ci = c + i * ldc + v * Z::W;
            // beta == 0 must not read c: it may be uninitialised (or hold NaN).
            const typename Z::V r = beta == T(0) ? Z::mul(va, acc[i][v])
                                                 : Z::fmadd(va, acc[i][v], Z::mul(vb, Z::loadu(ci)));
            Z::storeu(ci, r);
        }
    }
}

}  // namespace

void sgemm_ukernel_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                          float alpha, float beta) {
    // a: (kc, 12), b: (kc, 32), c: (12, 32) row stride ldc.
    ukernel_zmm<float, AVX512_SGEMM_MR, AVX512_SGEMM_NR / 16>(kc, a, b, c, ldc, alpha, beta);
}

void dgemm_ukernel_avx512(int64_t kc, const double* a, const double* b, double* c,
                          int64_t ldc, double alpha, double beta) {
    // a: (kc, 12), b: (kc, 16), c: (12, 16) row stride ldc.
    ukernel_zmm<double, AVX512_DGEMM_MR, AVX512_DGEMM_NR / 8>(kc, a, b, c, ldc, alpha, beta);
}

}  // namespace pyminidl::kernels::detail
