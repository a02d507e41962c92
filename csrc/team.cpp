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

void note_team_region() { last_region_ns.store(now_ns(), std::memory_order_relaxed); }

void note_team_call() { last_call_ns.store(now_ns(), std::memory_order_relaxed); }

namespace {

// True when `last` (ns on the steady clock) lies within the spin window.
bool within_window(int64_t last) {
    const int64_t window = team_spin_window_ns();
    return window > 0 && now_ns() - last < window;
}

}  // namespace

bool team_awake() { return within_window(last_region_ns.load(std::memory_order_relaxed)); }

namespace {

constexpr int64_t NOBODY = std::numeric_limits<int64_t>::min();
// A worker that starts this long after the fork waited for a core: here a sleeping worker on
// a free core starts 25-55 us after it (90th percentile), 75 us at the 99th; behind NumPy's
// spinning OpenBLAS threads 500 us at the median and up to 4 ms.
constexpr int64_t LATE_NS = 200'000;
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

bool region_was_late(int64_t late_ns, int64_t span_ns) {
    return late_ns > LATE_NS && late_ns * LATE_SHARE > span_ns;
}

int64_t contended_for_ns(int64_t previous_ns) {
    return previous_ns <= 0 ? FIRST_CONTENDED_NS : std::min(MOST_CONTENDED_NS, 2 * previous_ns);
}

TeamRegion::TeamRegion() noexcept : fork_ns_(now_ns()), last_arrival_ns_(NOBODY) {}

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
    if (arrived != NOBODY) judge_region(arrived - fork_ns_, now - fork_ns_, now);  // else a team of one
}

void judge_region(int64_t late_ns, int64_t span_ns, int64_t now) {
    regions_timed.fetch_add(1, std::memory_order_relaxed);
    last_arrival.store(late_ns, std::memory_order_relaxed);
    if (!region_was_late(late_ns, span_ns)) {
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

void judge_region(int64_t late_ns, int64_t span_ns) { judge_region(late_ns, span_ns, now_ns()); }

namespace {

// PYMINIDL_SERIAL_WHEN_CONTENDED=0 keeps every region on the team it asks for, late workers
// or not: for timing the threaded kernels alone, and for tests that must run 2 threads.
bool serial_when_contended() {
    static const bool on = [] {
        const char* v = std::getenv("PYMINIDL_SERIAL_WHEN_CONTENDED");
        return v == nullptr || !(same_word(v, "0") || same_word(v, "false") || same_word(v, "off"));
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
                     team_free()};
}

bool team_warm() {
    return within_window(std::max(last_region_ns.load(std::memory_order_relaxed),
                                  last_call_ns.load(std::memory_order_relaxed)));
}

}  // namespace pyminidl
