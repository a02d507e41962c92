// gather.h — see gather.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// out: (n_idx, row_bytes) bytes; x: (n_rows, row_bytes) bytes, both contiguous; idx: (n_idx,)
// row numbers in [-n_rows, n_rows) (negative ones count from the end, as NumPy's take).
// out[r] = x[idx[r]] for every r. Overwrites out. The caller has checked every index.
void gather_rows(char* out, const char* x, int64_t row_bytes, const int64_t* idx, int64_t n_idx,
                 int64_t n_rows);

// The index of idx that is outside [-n_rows, n_rows), or -1 when all are in range.
int64_t first_bad_row_index(const int64_t* idx, int64_t n_idx, int64_t n_rows);

}  // namespace pyminidl::kernels
