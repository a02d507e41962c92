// conv_avx2.cpp — conv_simd.h on 256-bit ymm registers (-mavx2 -mfma, CMakeLists.txt), chosen at
// run time by conv.cpp when active_isa() is AVX2. Tiles of 12 accumulators (of 16 ymm): 3 pixels
// x 32 filters when a group's filters come in 32s, else 6 x 16 (the GEMM's AVX2 direct tile), 12 x
// 8 when a group has <= 8 filters. 3 x 32 sets up 3 row pointers per tap where 6 x 16 sets up 6
// for as many products (GCC reads the fourth kernel vector as an FMA memory operand, no spill):
// forced AVX2 on Zen 4, 1 thread, 28x28 1->32 17-20 -> 31 GFLOP/s, 32x32 3->32 44 -> 62,
// 14x14 32->64 94 -> 102, 32x32 64->64 103 -> 108; their input gradients run on it too.
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
    // The pooled weight gradient's lane selection: lanes whose argmax equals a candidate's index.
    using IV = __m256i;
    using Sel = __m256i;
    static IV maskz_iloadu(Mask m, const int32_t* p) { return _mm256_maskload_epi32(p, m); }
    static Sel eq(Mask lanes, IV a, int32_t idx) { return _mm256_and_si256(lanes, _mm256_cmpeq_epi32(a, _mm256_set1_epi32(idx))); }
    static Sel sel_or(Sel a, Sel b) { return _mm256_or_si256(a, b); }
    static V select(V v, Sel m) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }
    static bool none(Sel s) { return _mm256_testz_si256(s, s) != 0; }
    static bool covers(Sel s, Mask lanes) { return _mm256_movemask_epi8(_mm256_cmpeq_epi32(s, lanes)) == -1; }
};
constexpr int QUAD_MR = 3, WIDE_MR = 6, WIDE_DEEP_MR = 0, NARROW_MR = 12;
constexpr int WG_QUAD_MR = 0, WG_WIDE_MR = 6, WG_WIDE_ALT_MR = 0, WG_NARROW_MR = 12;  // the weight gradient's tiles

}  // namespace
}  // namespace pyminidl::kernels::avx2

#include "conv_simd.h"
