// conv_avx2.cpp — conv_simd.h on 256-bit ymm registers (-mavx2 -mfma, CMakeLists.txt), chosen at
// run time by conv.cpp when active_isa() is AVX2. Tiles as the GEMM's AVX2 direct kernels:
// 6 pixels x 16 filters = 12 accumulators of 16 ymm; 12 x 8 when a group has <= 8 filters. (3 x 32
// measured slower on Zen 4: 12 accumulators + 4 B vectors + a broadcast spill one of 16 ymm.)
#include <immintrin.h>

#include <algorithm>

#include "common.h"

#define PMD_CONV_ISA avx2

namespace pyminidl::kernels::avx2 {
namespace {

struct Simd {
    using V = __m256;
    using Mask = __m256i;
    static constexpr int W = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V loadu(const float* p) { return _mm256_loadu_ps(p); }
    static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static Mask mask_for(int64_t n) {  // lane l is on when l < n
        const int k = static_cast<int>(std::clamp<int64_t>(n, 0, W));
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V maskz_loadu(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
    static void mask_storeu(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
};
constexpr int QUAD_MR = 0, WIDE_MR = 6, WIDE_DEEP_MR = 0, NARROW_MR = 12;
constexpr int WG_QUAD_MR = 0, WG_WIDE_MR = 6, WG_WIDE_ALT_MR = 0, WG_NARROW_MR = 12;  // the weight gradient's tiles

}  // namespace
}  // namespace pyminidl::kernels::avx2

#include "conv_simd.h"
