// team.h — whether the OpenMP team's workers are still awake: team_awake(), team_warm().
//
// After a parallel region libgomp's workers spin for GOMP_SPINCOUNT PAUSEs (pyminidl sets a
// short spin, backend/_compat.py) and then sleep; waking a sleeping worker costs ~20-40 us,
// which a short kernel cannot repay, while a spinning one starts at once. Kernels note the end
// of their regions (note_team_region) and the GEMM each call (note_team_call); within the spin
// window of the last region the workers still spin (team_awake), and within that of the last
// call too, calls come in a stream (a training step, a loop of products) where one wake-up
// serves every call after it (team_warm). A kernel may then give a second thread work far
// shorter than a wake-up needs. The answer only picks a thread count: every kernel here
// returns the same bits for any.
#pragma once

#include <cstdint>

namespace pyminidl {

// A parallel region of more than one thread ends now.
void note_team_region();

// A kernel call (of any thread count) ends now.
void note_team_call();

// True when the last note_team_region() lies within the spin window of the wait policy in
// force (team_spin_window_ns): the workers still spin.
bool team_awake();

// team_awake(), or the last note_team_call() lies within the spin window.
bool team_warm();

// How long workers spin after a region, in ns, read once from OMP_WAIT_POLICY and
// GOMP_SPINCOUNT as libgomp reads them (passive: 0; active or "infinite": unbounded;
// neither: libgomp's 300000 spins) at half the PAUSE time measured on this CPU.
int64_t team_spin_window_ns();

// team_spin_window_ns's rule on given settings (nullptr: unset) and PAUSE time.
int64_t spin_window_ns(const char* wait_policy, const char* spincount, double pause_ns);

}  // namespace pyminidl
