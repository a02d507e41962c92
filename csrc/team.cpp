// team.cpp — the spin window of the OpenMP team's workers (team.h).
#include "team.h"

#include "common.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cctype>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pyminidl {
namespace {

constexpr int64_t UNBOUNDED = std::numeric_limits<int64_t>::max() / 4;
// libgomp's spin count when neither variable is set (OMP_WAIT_POLICY unset).
constexpr double LIBGOMP_DEFAULT_SPINS = 300000.0;
// Only this share of the measured spin counts: libgomp's loop does more than PAUSE, but a
// busy machine may stretch nothing and a frequency change may shorten PAUSE.
constexpr double WINDOW_SHARE = 0.5;

// The last region end and the last call end, ns on the steady clock; "long ago" at first.
std::atomic<int64_t> last_region_ns{std::numeric_limits<int64_t>::min() / 2};
std::atomic<int64_t> last_call_ns{std::numeric_limits<int64_t>::min() / 2};

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// a == b ignoring ASCII case, as libgomp compares the variables' words.
bool same_word(const char* a, const char* b) {
    for (; *a != '\0' && *b != '\0'; ++a, ++b) {
        if (std::tolower(static_cast<unsigned char>(*a)) != std::tolower(static_cast<unsigned char>(*b))) return false;
    }
    return *a == *b;
}

// The time of one spin of libgomp's wait loop, measured once (x86: PAUSE, whose length differs
// more than tenfold between CPU generations; 24.7 ns on Zen 4); 1 ns elsewhere (a short window).
double pause_ns() {
#if defined(__x86_64__) || defined(__i386__)
    constexpr int SPINS = 4096;
    double best = std::numeric_limits<double>::max();
    for (int rep = 0; rep < 3; ++rep) {
        const int64_t t0 = now_ns();
        for (int i = 0; i < SPINS; ++i) _mm_pause();
        best = std::min(best, static_cast<double>(now_ns() - t0) / SPINS);
    }
    return best;
#else
    return 1.0;
#endif
}

// GOMP_SPINCOUNT's value: a count with an optional k/M/G/T suffix, or "infinite"/"infinity";
// negative when unreadable.
double parse_spincount(const char* s) {
    if (same_word(s, "infinite") || same_word(s, "infinity")) return static_cast<double>(UNBOUNDED);
    char* end = nullptr;
    const double n = std::strtod(s, &end);
    if (end == s || n < 0.0) return -1.0;
    switch (*end) {
        case '\0': return n;
        case 'k': case 'K': return n * 1e3;
        case 'M': return n * 1e6;
        case 'G': return n * 1e9;
        case 'T': return n * 1e12;
        default: return -1.0;
    }
}

}  // namespace

// libgomp spins less (its throttled count) when a team has more threads than the machine has
// CPUs: there the window overstates, and a kernel may wake a worker it counted awake. That
// costs a slower call, never a different result.
int64_t spin_window_ns(const char* wait_policy, const char* spincount, double pause) {
    if (wait_policy != nullptr && same_word(wait_policy, "passive")) return 0;
    double spins = LIBGOMP_DEFAULT_SPINS;
    if (wait_policy != nullptr && same_word(wait_policy, "active")) spins = static_cast<double>(UNBOUNDED);
    if (spincount != nullptr) {
        const double n = parse_spincount(spincount);
        if (n < 0.0) return 0;  // unreadable: assume nothing
        spins = n;
    }
    const double window = spins * pause * WINDOW_SHARE;
    return window >= static_cast<double>(UNBOUNDED) ? UNBOUNDED : static_cast<int64_t>(window);
}

int64_t team_spin_window_ns() {
    static const int64_t window =
        spin_window_ns(std::getenv("OMP_WAIT_POLICY"), std::getenv("GOMP_SPINCOUNT"), pause_ns());
    return window;
}

void note_team_call() { last_call_ns.store(now_ns(), std::memory_order_relaxed); }

namespace {

// True when `last` lies within the spin window of `now` (ns on the steady clock).
bool within_window(int64_t last, int64_t now) {
    const int64_t window = team_spin_window_ns();
    return window > 0 && now - last < window;
}

bool within_window(int64_t last) { return within_window(last, now_ns()); }

}  // namespace

bool team_awake() { return within_window(last_region_ns.load(std::memory_order_relaxed)); }

namespace {

constexpr int64_t NOBODY = std::numeric_limits<int64_t>::min();
// A worker that was still spinning at the fork (team_awake) and starts this long after it had
// its core taken: here behind NumPy's spinning OpenBLAS workers such a worker started 490-550 us
// late (10th-90th percentile), against 0-2 us on a free machine.
constexpr int64_t LATE_AWAKE_NS = 200'000;
// A worker asleep at the fork must first be woken, and where its CPU idled the wake-up alone
// can take long: 25-40 us after 1 ms of quiet here, 680-800 us after 3 ms or more (a virtual
// machine's halted vCPU). Behind NumPy's OpenBLAS a sleeping worker started 490 us late at the
// median and 1.8 ms at the 90th percentile, so only a start past any wake-up seen counts.
constexpr int64_t LATE_ASLEEP_NS = 1'500'000;
// ... and only counts when that wait is more than this share of the region: a long product
// whose worker started a few ms late has lost little to it.
constexpr int64_t LATE_SHARE = 16;
// The first contended period and the cap of its doubling: OpenBLAS's workers spin ~0.1 s
// after each product; each period ends with one region on every thread, the next probe.
constexpr int64_t FIRST_CONTENDED_NS = 1'000'000;
constexpr int64_t MOST_CONTENDED_NS = 128'000'000;
// Regions on time in a row after which the doubling starts again from the first period.
// Behind a spinning OpenBLAS some regions still come on time (one in ten), so one such
// region forgets nothing.
constexpr int64_t ON_TIME_TO_FORGET = 8;

std::atomic<int64_t> contended_until_ns{std::numeric_limits<int64_t>::min() / 2};
std::atomic<int64_t> backoff_ns{0};
std::atomic<int64_t> on_time_streak{0};
std::atomic<int64_t> regions_timed{0}, regions_late{0}, last_arrival{0};

}  // namespace

bool region_was_late(int64_t late_ns, int64_t span_ns, bool awake) {
    return late_ns > (awake ? LATE_AWAKE_NS : LATE_ASLEEP_NS) && late_ns * LATE_SHARE > span_ns;
}

int64_t contended_for_ns(int64_t previous_ns) {
    return previous_ns <= 0 ? FIRST_CONTENDED_NS : std::min(MOST_CONTENDED_NS, 2 * previous_ns);
}

TeamRegion::TeamRegion() noexcept
    : fork_ns_(now_ns()),
      awake_(within_window(last_region_ns.load(std::memory_order_relaxed), fork_ns_)),
      last_arrival_ns_(NOBODY) {}

void TeamRegion::arrive() noexcept {
    if (omp_thread_id() == 0) return;
    const int64_t t = now_ns();
    int64_t seen = last_arrival_ns_.load(std::memory_order_relaxed);
    while (t > seen && !last_arrival_ns_.compare_exchange_weak(seen, t, std::memory_order_relaxed)) {
    }
}

void TeamRegion::end() noexcept {
    const int64_t now = now_ns();
    last_region_ns.store(now, std::memory_order_relaxed);
    const int64_t arrived = last_arrival_ns_.load(std::memory_order_relaxed);
    if (arrived != NOBODY) judge_region(arrived - fork_ns_, now - fork_ns_, awake_, now);  // else a team of one
}

void judge_region(int64_t late_ns, int64_t span_ns, bool awake, int64_t now) {
    regions_timed.fetch_add(1, std::memory_order_relaxed);
    last_arrival.store(late_ns, std::memory_order_relaxed);
    if (!region_was_late(late_ns, span_ns, awake)) {
        if (on_time_streak.fetch_add(1, std::memory_order_relaxed) + 1 >= ON_TIME_TO_FORGET) {
            backoff_ns.store(0, std::memory_order_relaxed);
        }
        return;
    }
    regions_late.fetch_add(1, std::memory_order_relaxed);
    on_time_streak.store(0, std::memory_order_relaxed);
    const int64_t period = contended_for_ns(backoff_ns.load(std::memory_order_relaxed));
    backoff_ns.store(period, std::memory_order_relaxed);
    contended_until_ns.store(now + period, std::memory_order_relaxed);
}

void judge_region(int64_t late_ns, int64_t span_ns, bool awake) { judge_region(late_ns, span_ns, awake, now_ns()); }

namespace {

// The rule is opt-in: PYMINIDL_SERIAL_WHEN_CONTENDED=1. On by default it misfired on this
// project's virtual machines, where workers also come late with no other library running (a
// plain benchmark loop ran at one thread's speed), so without the variable every region runs
// on the team it asks for, late workers or not.
bool serial_when_contended() {
    static const bool on = [] {
        const char* v = std::getenv("PYMINIDL_SERIAL_WHEN_CONTENDED");
        return v != nullptr && (same_word(v, "1") || same_word(v, "true") || same_word(v, "on"));
    }();
    return on;
}

}  // namespace

bool team_free() {
    return !serial_when_contended() || now_ns() >= contended_until_ns.load(std::memory_order_relaxed);
}

TeamState team_state() {
    return TeamState{regions_timed.load(std::memory_order_relaxed), regions_late.load(std::memory_order_relaxed),
                     last_arrival.load(std::memory_order_relaxed), backoff_ns.load(std::memory_order_relaxed),
                     team_free(), serial_when_contended()};
}

bool team_warm() {
    return within_window(std::max(last_region_ns.load(std::memory_order_relaxed),
                                  last_call_ns.load(std::memory_order_relaxed)));
}

}  // namespace pyminidl
