// team.cpp — the spin window of the OpenMP team's workers (team.h).
#include "team.h"

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

bool team_warm() {
    return within_window(std::max(last_region_ns.load(std::memory_order_relaxed),
                                  last_call_ns.load(std::memory_order_relaxed)));
}

}  // namespace pyminidl
