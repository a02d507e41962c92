// parallel.h — team_region(), team_range() and parallel_blocks(): the OpenMP regions of the kernels.
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

// body() on a team of up to `threads` threads, or on this thread alone when threads <= 1 or
// the team is contended (team_free, team.h). Every region of the kernels goes through here,
// so that each is timed for team_free and notes its end for team_awake. A `#pragma omp for`
// inside body splits its loop over the team, or runs it whole on this thread.
template <typename F>
void team_region(int threads, F body) {
#if defined(PYMINIDL_OPENMP)
    if (threads > 1 && team_free()) {
        TeamRegion region;
#pragma omp parallel num_threads(threads)
        {
            region.arrive();
            body();
        }
        region.end();
        return;
    }
    if (omp_in_region()) {
        // Called by one thread of another kernel's region (a convolution's bias gradient): a
        // `#pragma omp for` in body would bind to that team and share out this thread's loop.
        // A team of one of its own keeps the loop whole here.
#pragma omp parallel num_threads(1)
        body();
        return;
    }
#endif
    (void)threads;
    body();
}

// The team's threads when `worth` says a region pays, else 1: team_region's argument.
inline int threads_if(bool worth) { return worth ? omp_max_threads() : 1; }

// body(lo, hi) over [0, n): in parallel when n * cost > PARALLEL_GRAIN, else on this thread.
template <typename F>
void parallel_blocks(int64_t n, int64_t cost, F body) {
    team_region(threads_if(n > 1 && n * cost > PARALLEL_GRAIN), [&] {
        int64_t lo, hi;
        team_range(n, &lo, &hi);
        if (lo < hi) body(lo, hi);
    });
}

}  // namespace
}  // namespace pyminidl::kernels
