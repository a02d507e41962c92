// dense_activation_isa.h — float32 entry points of the per-ISA copies of
// dense_activation_impl.h's loops.
//
// dense_activation_avx2.cpp and dense_activation_avx512.cpp each define these in their
// namespace (avx2::, avx512::) with PMD_DEFINE_DENSE_ACT_ENTRY_POINTS; dense_activation.cpp
// calls the one active_isa() (cpu_features.h, capped by PYMINIDL_CPU_CAPABILITY) selects.
#pragma once

#include "dense_activation_impl.h"

#define PMD_DENSE_ACT_ENTRY_POINTS                                                                 \
    void dense_act_span_f32(float* dz, const float* s, int64_t lo, int64_t hi, DenseActivation kind); \
    void dense_act_bias_cols_f32(float* dz, float* db, const float* s, int64_t N, int64_t U,       \
                                 int64_t b_lo, int64_t b_hi, DenseActivation kind);                \
    void column_sums_f32(float* sum, const float* dy, int64_t ld, int64_t rows, int64_t cols, bool first);

// The definitions: each forwards to this translation unit's copy of the loop.
#define PMD_DEFINE_DENSE_ACT_ENTRY_POINTS                                                          \
    void dense_act_span_f32(float* dz, const float* s, int64_t lo, int64_t hi, DenseActivation kind) { \
        dense_act_span(dz, s, lo, hi, kind);                                                       \
    }                                                                                              \
    void dense_act_bias_cols_f32(float* dz, float* db, const float* s, int64_t N, int64_t U,       \
                                 int64_t b_lo, int64_t b_hi, DenseActivation kind) {               \
        dense_act_bias_cols(dz, db, s, N, U, b_lo, b_hi, kind);                                    \
    }                                                                                              \
    void column_sums_f32(float* sum, const float* dy, int64_t ld, int64_t rows, int64_t cols, bool first) { \
        sum_columns(sum, dy, ld, rows, cols, first);                                               \
    }

namespace pyminidl::kernels {
namespace avx2 {
PMD_DENSE_ACT_ENTRY_POINTS
}  // namespace avx2
namespace avx512 {
PMD_DENSE_ACT_ENTRY_POINTS
}  // namespace avx512
}  // namespace pyminidl::kernels
