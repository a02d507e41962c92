// channel_blocks.h — the channel blocking of the NHWC pooling and batch-norm kernels, and
// the 16-lane blocks of the softmax row reductions (fastmath.h).
//
// A block of LANES channels keeps its running max / sum in registers (one zmm, two ymm or
// four xmm) across a whole window or chunk of rows, where a loop over all C channels per
// cell would load and store its accumulators at every cell. The main loop runs blocks of
// exactly LANES (a compile-time count, so the lane loops unroll fully); the last C % LANES
// channels run the same code with a run-time count. Each channel still sees its cells in
// the same order, so results do not depend on the block split or the vector width.
// Internal linkage, like parallel.h: each per-ISA translation unit keeps its own copy.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common.h"

namespace pyminidl::kernels {
namespace {

constexpr int64_t LANES = 16;
using FullBlock = std::integral_constant<int64_t, LANES>;

// A full block in GCC vector types of the translation unit's native width (NVEC vectors of VEC
// floats): a vector variable stays in a register across a window or a tap loop, where a lane loop
// over a float array keeps its accumulators in memory, and a wider generic vector would be lowered
// piecewise, partly to scalars. Each kernel keeps the same per-lane arithmetic as its lane loop.
#if defined(__AVX512F__)
constexpr int VEC = 16;
#elif defined(__AVX2__)
constexpr int VEC = 8;
#else
constexpr int VEC = 4;
#endif
constexpr int NVEC = int(LANES) / VEC;
typedef float VecF __attribute__((vector_size(VEC * sizeof(float))));
typedef int32_t VecI __attribute__((vector_size(VEC * sizeof(int32_t))));
// Half a float vector and the double vector it widens to (VecD holds HALF doubles): sums of
// float rows in double run on these, NHALF of them to a block of LANES.
constexpr int HALF = VEC / 2;
constexpr int NHALF = int(LANES) / HALF;
typedef float HalfF __attribute__((vector_size(HALF * sizeof(float))));
typedef int32_t HalfI __attribute__((vector_size(HALF * sizeof(int32_t))));
typedef double VecD __attribute__((vector_size(HALF * sizeof(double))));

// A full block's NVEC vectors from p / to p, one vector at a time: one memcpy of the whole block
// went through the stack in 16-byte pieces on AVX2, read back as full vectors (a store-forwarding
// stall per load; average pooling ran at a third of the lane loop's speed).
template <typename V, typename T>
PMD_ALWAYS_INLINE void load_vecs(V (&v)[NVEC], const T* p) {
    for (int u = 0; u < NVEC; ++u) std::memcpy(&v[u], p + u * VEC, sizeof(V));
}
template <typename V, typename T>
PMD_ALWAYS_INLINE void store_vecs(T* p, const V (&v)[NVEC]) {
    for (int u = 0; u < NVEC; ++u) std::memcpy(p + u * VEC, &v[u], sizeof(V));
}

// HALF floats from p, widened to double.
PMD_ALWAYS_INLINE VecD load_widened(const float* p) {
    HalfF h;
    std::memcpy(&h, p, sizeof h);
    return __builtin_convertvector(h, VecD);
}

PMD_ALWAYS_INLINE void store_narrowed(float* p, VecD v) {
    const HalfF h = __builtin_convertvector(v, HalfF);
    std::memcpy(p, &h, sizeof h);
}

// LANES double sums, lane k of the block in v[k / HALF][k % HALF].
struct WideLanes {
    VecD v[NHALF];
};

// The sum of the LANES lanes as one fixed tree over the lane index (lane k + lane k + 8, then
// + 4, + 2, + 1): the same additions on every vector width, so the same bits.
PMD_ALWAYS_INLINE double lanes_total(WideLanes a) {
    for (int m = NHALF / 2; m >= 1; m /= 2)
        for (int u = 0; u < m; ++u) a.v[u] += a.v[u + m];
    VecD v = a.v[0];
    for (int s = HALF / 2; s >= 1; s /= 2)
        for (int k = 0; k < s; ++k) v[k] += v[k + s];
    return v[0];
}

// Calls block(j, n) for channel blocks [j, j + n) covering [0, c): n = FullBlock{} then a
// run-time tail n < LANES.
template <typename F>
PMD_ALWAYS_INLINE void channel_blocks(int64_t c, F block) {
    int64_t j = 0;
    for (; j + LANES <= c; j += LANES) block(j, FullBlock{});
    if (j < c) block(j, c - j);
}

}  // namespace
}  // namespace pyminidl::kernels
