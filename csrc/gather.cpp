// gather.cpp — gather_rows: the rows of a contiguous array picked by an index vector (a
// shuffled batch x[perm[start:stop]] in the training loop), and the index check its binding
// runs first.
//
// Layout: rows are opaque runs of row_bytes bytes, so one kernel serves every dtype and any
// trailing shape. Each row is one memcpy; threads take contiguous runs of output rows
// (parallel_blocks), so they write disjoint memory and the result is the same bytes for any
// thread count. A shuffled batch reads rows scattered over a dataset far larger than the
// caches: each row is a DRAM latency chain, and two threads keep twice the misses in flight
// (NumPy's take copies on one thread).
#include "gather.h"

#include <cstring>

#include "parallel.h"

namespace pyminidl::kernels {

void gather_rows(char* out, const char* x, int64_t row_bytes, const int64_t* idx, int64_t n_idx,
                 int64_t n_rows) {
    // out: (n_idx, row_bytes); x: (n_rows, row_bytes); idx: (n_idx,), each in [-n_rows, n_rows).
    // The grain counts in floats' worth of bytes: a 3 KiB MNIST row weighs ~800 elements.
    const int64_t cost = std::max<int64_t>(1, row_bytes / 4);
    parallel_blocks(n_idx, cost, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
            const int64_t i = idx[r] < 0 ? idx[r] + n_rows : idx[r];
            std::memcpy(out + r * row_bytes, x + i * row_bytes, static_cast<std::size_t>(row_bytes));
        }
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
