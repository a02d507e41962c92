// team.h — whether the OpenMP team's workers are still awake: team_awake().
//
// After a parallel region libgomp's workers spin for GOMP_SPINCOUNT PAUSEs (pyminidl sets a
// short spin, backend/_compat.py) and then sleep; waking a sleeping worker costs ~20-40 us,
// which a short product cannot repay, while a spinning one starts at once. Kernels note the
// end of their regions, and the GEMM each call, with note_team_use(); team_warm() then says
// whether the last such moment lies within the spin window: the workers still spin, or calls
// come in a stream (a training step, a loop of products), where one wake-up serves every call
// after it. A kernel may then give a second thread a product far shorter than a wake-up needs.
// The answer only picks a thread count: every kernel here returns the same bits for any.
#pragma once

#include <cstdint>

namespace pyminidl {

// A parallel region of more than one thread, or a kernel call, ends now.
void note_team_use();

// True when the last note_team_use() lies within the spin window of the wait policy in
// force (team_spin_window_ns).
bool team_warm();

// How long workers spin after a region, in ns, read once from OMP_WAIT_POLICY and
// GOMP_SPINCOUNT as libgomp reads them (passive: 0; active or "infinite": unbounded;
// neither: libgomp's 300000 spins) at half the PAUSE time measured on this CPU.
int64_t team_spin_window_ns();

// team_spin_window_ns's rule on given settings (nullptr: unset) and PAUSE cost; for tests.
int64_t spin_window_ns(const char* wait_policy, const char* spincount, double pause_ns);

}  // namespace pyminidl
