// conv_avx512.cpp — conv_simd.h on 512-bit zmm registers (-mavx512f ..., CMakeLists.txt), chosen
// at run time by conv.cpp when active_isa() allows AVX-512. Tiles of 24 accumulators (of 32 zmm):
// 6 pixels x 64 filters when a group's filters come in 64s (measured on Zen 4, 64->64 3x3 on
// 32x32: 105-110 GFLOP/s on one core against 88-95 with 12 x 32, whose 12 row pointers do not fit
// the 16 general registers), else 12 x 32, or 8 x 32 (16 accumulators) when each tap has 16 or
// more channels: there the 12 row pointers' spills cost in every channel step (Xeon, input gradient
// of 14x14 32->64, 64 channels per tap: 8 rows 1.06-1.08x faster than 12, 9 rows 1.02x, 10 rows
// 1.03x, 6 rows 1.05x), where a first layer's 1-3 channels per tap spend the tile on its per-tap and
// per-tile set-up (28x28 1->32: 8 rows 1.26x slower); 16 x 16 when a group has <= 16 filters.
#include <immintrin.h>

#include "common.h"

#define PMD_CONV_ISA avx512

namespace pyminidl::kernels::avx512 {
namespace {

struct Simd {
    using V = __m512;
    using Mask = __mmask16;
    static constexpr int W = 16;
    static V zero() { return _mm512_setzero_ps(); }
    static V loadu(const float* p) { return _mm512_loadu_ps(p); }
    static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V bcast(const float* p) { return _mm512_set1_ps(*p); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static Mask mask_for(int64_t n) { return n >= W ? Mask(0xFFFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1u); }
    static V maskz_loadu(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
    static void mask_storeu(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
    // The pooled weight gradient's lane selection: lanes whose argmax equals a candidate's index.
    using IV = __m512i;
    using Sel = __mmask16;
    static IV maskz_iloadu(Mask m, const int32_t* p) { return _mm512_maskz_loadu_epi32(m, p); }
    static Sel eq(Mask lanes, IV a, int32_t idx) { return _mm512_mask_cmpeq_epi32_mask(lanes, a, _mm512_set1_epi32(idx)); }
    static Sel sel_or(Sel a, Sel b) { return static_cast<Sel>(a | b); }
    static V select(V v, Sel m) { return _mm512_maskz_mov_ps(m, v); }
    static bool none(Sel s) { return s == 0; }
    static bool covers(Sel s, Mask lanes) { return s == lanes; }
};
constexpr int QUAD_MR = 6, WIDE_MR = 12, WIDE_DEEP_MR = 8, NARROW_MR = 16;
constexpr int WG_QUAD_MR = 6, WG_WIDE_MR = 12, WG_WIDE_ALT_MR = 9, WG_NARROW_MR = 16;  // the weight gradient's tiles

}  // namespace
}  // namespace pyminidl::kernels::avx512

#include "conv_simd.h"
