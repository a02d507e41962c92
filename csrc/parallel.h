// parallel.h — team_range() and parallel_blocks(): the OpenMP split of the kernels' items.
//
// Each thread gets one contiguous block [lo, hi) of the n items and runs a plain serial
// loop on it. A loop written directly under `omp parallel for` lives in GCC's outlined
// function, where the restrict pointers are lost and many loops stay scalar; calling a
// serial function with restrict parameters from the region keeps them vectorised.
// Blocks are fixed by (n, thread count) and each item is computed by exactly one thread,
// so the result is the same for every thread count. Internal linkage, like fastmath.h: each
// per-ISA translation unit keeps its own copy.
#pragma once

#include <algorithm>

#include "common.h"
#include "team.h"

namespace pyminidl::kernels {
namespace {

// [lo, hi) of n items for this thread of the team (all of them outside a parallel region):
// an even split, fixed by (n, team size). Every kernel's own region splits its items with it.
inline void team_range(int64_t n, int64_t* lo, int64_t* hi) {
    const int64_t nt = omp_team_size(), t = omp_thread_id(), chunk = ceil_div(n, nt);
    *lo = std::min(n, t * chunk);
    *hi = std::min(n, *lo + chunk);
}

// body(lo, hi) over [0, n): in parallel when n * cost > PARALLEL_GRAIN, else on this thread.
// A region's end is noted for team_awake() (team.h).
template <typename F>
void parallel_blocks(int64_t n, int64_t cost, F body) {
#if defined(PYMINIDL_OPENMP)
    if (n > 1 && n * cost > PARALLEL_GRAIN) {
#pragma omp parallel
        {
            int64_t lo, hi;
            team_range(n, &lo, &hi);
            if (lo < hi) body(lo, hi);
        }
        note_team_region();
        return;
    }
#endif
    (void)cost;
    body(int64_t(0), n);
}

}  // namespace
}  // namespace pyminidl::kernels
