// blas_threads.h — NumPy's OpenBLAS runs its threaded calls on pyminidl's OpenMP team.
//
// A process that loads both keeps two thread pools: OpenBLAS's workers busy-wait ~0.1 s after
// each product (2^28 TSC cycles unless OPENBLAS_THREAD_TIMEOUT is set before NumPy loads) and
// take the cores from pyminidl's, and pyminidl's spin for GOMP_SPINCOUNT and take them from
// OpenBLAS's: a loop alternating NumPy and pyminidl products ran pyminidl's 2-thread GEMMs at
// 0.04-0.4x their speed. OpenBLAS (0.3.27 on) lets the caller run its parallel jobs
// (openblas_set_threads_callback_function); handed to this library's team, both libraries'
// work runs on one pool of threads, which spin briefly and then sleep, and neither waits for
// the other's spinners. The jobs and their split are OpenBLAS's own, so NumPy's results keep
// their bits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyminidl {

// Hand (on) or give back (off) the threading of every OpenBLAS loaded in this process that
// takes a threads callback; returns the files of those libraries. A build without OpenMP
// hands over nothing. Not thread-safe against a BLAS call in flight on another thread only
// in the sense OpenBLAS documents: a call already running finishes on the threads it began on.
std::vector<std::string> share_blas_threads(bool on);

// The libraries whose threading runs on this team now.
std::vector<std::string> blas_threads_shared();

// OpenBLAS calls that ran their jobs here (more than one job each).
int64_t blas_calls_run();

// OpenBLAS's level-3 jobs wait for each other, so all of a call's jobs must run at once:
// runs `jobs` stand-in jobs through the callback, each waiting (up to 2 s) until all have
// started, from this thread or from one thread of a 2-thread OpenMP region (where a nested
// team gets one thread); true when all started together (a test seam: _C.blas_jobs_probe).
bool blas_jobs_probe(int jobs, bool inside_region);

// In a fork() child: give every library its own threads back (libgomp's pool stays in the
// parent, and OpenBLAS starts its threads again in the child).
void unshare_blas_threads_in_child();

}  // namespace pyminidl
