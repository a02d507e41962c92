// team.h — whether the OpenMP team's workers are still awake: team_awake(), team_warm().
//
// After a parallel region libgomp's workers spin for GOMP_SPINCOUNT PAUSEs (pyminidl sets a
// short spin, backend/_compat.py) and then sleep; waking a sleeping worker costs ~20-40 us,
// which a short kernel cannot repay, while a spinning one starts at once. Kernels note the end
// of their regions (TeamRegion::end) and the GEMM each call (note_team_call); within the spin
// window of the last region the workers still spin (team_awake), and within that of the last
// call too, calls come in a stream (a training step, a loop of products) where one wake-up
// serves every call after it (team_warm). A kernel may then give a second thread work far
// shorter than a wake-up needs. The answer only picks a thread count: every kernel here
// returns the same bits for any.
//
// A worker may also be kept from its core: another library's threads spin there (NumPy's
// OpenBLAS busy-waits ~0.1 s after each product) or the process has fewer CPUs than threads,
// and the scheduler then queues the woken worker behind the caller, which finishes its share
// and waits for it. Each region times its workers' arrival (TeamRegion); one that arrived
// late for the region's length makes the team contended (team_free() false) for a while,
// doubling while it recurs, and kernels run on the calling thread alone meanwhile. The rule is
// opt-in (PYMINIDL_SERIAL_WHEN_CONTENDED=1, team.cpp says why); the timing always runs.
#pragma once

#include <atomic>
#include <cstdint>

namespace pyminidl {

// One parallel region's timing: construct it right before the region, call arrive() first
// thing inside it on every thread and end() right after it. end() notes the region's end
// (for team_awake) and judges the workers' arrival for team_free().
class TeamRegion {
  public:
    TeamRegion() noexcept;
    void arrive() noexcept;
    void end() noexcept;

  private:
    int64_t fork_ns_;
    bool awake_;  // the workers still spun at the fork (team_awake)
    std::atomic<int64_t> last_arrival_ns_;
};

// False while the team is contended (see above): kernels then run on one thread. Always true
// unless PYMINIDL_SERIAL_WHEN_CONTENDED=1.
bool team_free();

// TeamRegion::end()'s verdict on a region whose last worker arrived `late_ns` after the fork,
// which took `span_ns` in all and whose workers were `awake` (still spinning) at the fork
// (a test seam: _C.team_judge_region).
void judge_region(int64_t late_ns, int64_t span_ns, bool awake);
void judge_region(int64_t late_ns, int64_t span_ns, bool awake, int64_t now_ns);

// Whether such a region's workers had their cores taken.
bool region_was_late(int64_t late_ns, int64_t span_ns, bool awake);

// How long the team stays contended after a late region, given how long it stayed after the
// late region before (0: none since the team was last counted free of contention).
int64_t contended_for_ns(int64_t previous_ns);

// Counters for tests and bug reports: regions timed, regions late, the last timed region's
// latest worker arrival (ns after its fork), the present contended period (ns; 0 once enough
// regions in a row came on time) and whether the team is free now.
struct TeamState {
    int64_t timed, late, last_arrival_ns, backoff_ns;
    bool free;
    bool rule_on;  // PYMINIDL_SERIAL_WHEN_CONTENDED=1 (as team.cpp reads it)
};
TeamState team_state();

// A kernel call (of any thread count) ends now.
void note_team_call();

// True when the last region's end (TeamRegion::end) lies within the spin window of the wait policy in
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
