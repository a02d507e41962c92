// gather.cpp — gather_rows: the rows of a contiguous array picked by an index vector (a
// shuffled batch x[perm[start:stop]] in the training loop), and the index check its binding
// runs first.
//
// Layout: rows are opaque runs of row_bytes bytes, so one kernel serves every dtype and any
// trailing shape. Each row is one memcpy; threads take contiguous runs of output rows
// (parallel_blocks, for gathers of 1 MiB and more, or of 64 KiB while the team is awake), so
// they write disjoint memory and the result is the same bytes for any thread count. A
// shuffled batch reads rows scattered over a dataset far larger than the caches: each row is
// a DRAM latency chain, and two threads keep twice the misses in flight
// (NumPy's take copies on one thread).
#include "gather.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"
#include "team.h"

namespace pyminidl::kernels {
namespace {

// The row PREFETCH_ROWS ahead is fetched into L2 (up to PREFETCH_BYTES of it) while the current
// row is copied: the hardware prefetcher follows a row once it has started, not the jump to the
// next one, and L2's miss queue holds more lines in flight than L1's fill buffers. Measured on
// the MNIST batch (128 random rows of 3136 B out of 60000, thread CPU time): the first 4 lines
// 4 rows ahead into L1, 43 us; whole rows 8 ahead into L2, 36 us.
constexpr int64_t PREFETCH_ROWS = 8;
constexpr int64_t PREFETCH_BYTES = 4096;
// A second thread pays from about this many bytes: waking it costs ~10-30 us (more on a
// loaded machine, where a descheduled worker holds the whole copy back), and a 128-row MNIST
// batch (400 KB) copies in ~50-70 us on one.
constexpr int64_t PARALLEL_GATHER_BYTES = int64_t{1} << 20;
// While the workers still spin (team_awake: at the start of a training step, right after the
// last one's optimizer update) there is nothing to wake, and a second thread pays from far
// fewer bytes.
constexpr int64_t AWAKE_PARALLEL_GATHER_BYTES = int64_t{64} << 10;

// Rows [lo, hi) of the gather, one memcpy each.
void copy_rows(char* out, const char* x, int64_t row_bytes, const int64_t* idx, int64_t n_idx,
               int64_t n_rows, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
        if (r + PREFETCH_ROWS < n_idx) {
            const int64_t q = idx[r + PREFETCH_ROWS];
            const char* ahead = x + (q < 0 ? q + n_rows : q) * row_bytes;
            const int64_t bytes = std::min(row_bytes, PREFETCH_BYTES);
            for (int64_t l = 0; l < bytes; l += 64) __builtin_prefetch(ahead + l, 0, 1);  // prefetcht2: L2
        }
        const int64_t i = idx[r] < 0 ? idx[r] + n_rows : idx[r];
        std::memcpy(out + r * row_bytes, x + i * row_bytes, static_cast<std::size_t>(row_bytes));
    }
}

}  // namespace

void gather_rows(char* out, const char* x, int64_t row_bytes, const int64_t* idx, int64_t n_idx,
                 int64_t n_rows) {
    // out: (n_idx, row_bytes); x: (n_rows, row_bytes); idx: (n_idx,), each in [-n_rows, n_rows).
    // parallel_blocks counts cost in units of PARALLEL_GRAIN per item: scaled so that a
    // gather goes parallel once it moves two_from bytes.
    const int64_t two_from = team_awake() ? AWAKE_PARALLEL_GATHER_BYTES : PARALLEL_GATHER_BYTES;
    const int64_t cost = std::max<int64_t>(1, row_bytes * PARALLEL_GRAIN / two_from);
    parallel_blocks(n_idx, cost, [&](int64_t lo, int64_t hi) {
        copy_rows(out, x, row_bytes, idx, n_idx, n_rows, lo, hi);
    });
}

int64_t first_bad_row_index(const int64_t* idx, int64_t n_idx, int64_t n_rows) {
    // idx: (n_idx,). A plain scan: it is n_idx compares against the n_idx row copies that follow.
    for (int64_t r = 0; r < n_idx; ++r) {
        if (idx[r] < -n_rows || idx[r] >= n_rows) return r;
    }
    return -1;
}

}  // namespace pyminidl::kernels
