// common.h — conventions shared by every kernel file.
//
// Dimension letters used in the shape comment that opens each kernel:
//   N batch, H/W spatial, C in-channels, F filters, KH/KW kernel size,
//   T time, U units, M/N/K the GEMM dimensions (C[M,N] = A[M,K] B[K,N]).
// Arrays are row-major (C order) unless a stride/leading dimension says otherwise.
// Kernels overwrite their outputs (BLAS beta = 0) unless documented as in-place updates.
//
// This is the only file that includes <omp.h>; it is guarded so that a compiler
// without OpenMP builds a correct serial library.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(PYMINIDL_OPENMP)
#include <omp.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PMD_RESTRICT __restrict__
#define PMD_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PMD_RESTRICT
#define PMD_ALWAYS_INLINE inline
#endif

namespace pyminidl {

inline int omp_max_threads() {
#if defined(PYMINIDL_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int omp_thread_id() {
#if defined(PYMINIDL_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Threads in the current team (1 outside a parallel region); a team may be smaller than
// num_threads asked for, so work split inside a region must use this.
inline int omp_team_size() {
#if defined(PYMINIDL_OPENMP)
    return omp_get_num_threads();
#else
    return 1;
#endif
}

inline void omp_set_threads(int n) {
#if defined(PYMINIDL_OPENMP)
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

// True on a thread of an active parallel region (a team of more than one).
inline bool omp_in_region() {
#if defined(PYMINIDL_OPENMP)
    return omp_in_parallel() != 0;
#else
    return false;
#endif
}

inline bool openmp_enabled() {
#if defined(PYMINIDL_OPENMP)
    return true;
#else
    return false;
#endif
}

// ceil(a / b) for a >= 0, b > 0: tile and block counts.
inline constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Elementwise loops below this many elements run on one thread: starting a
// parallel region costs more than the work.
constexpr int64_t PARALLEL_GRAIN = 32768;

}  // namespace pyminidl
