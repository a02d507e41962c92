// channel_blocks.h — the channel blocking of the NHWC pooling and batch-norm kernels.
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
