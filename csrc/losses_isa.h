// losses_isa.h — float32 entry points of the per-ISA copies of losses_impl.h's kernels.
//
// losses_avx2.cpp and losses_avx512.cpp each define these in their namespace (avx2::, avx512::)
// with PMD_DEFINE_LOSS_ENTRY_POINTS; losses.cpp calls the one active_isa() (cpu_features.h,
// capped by PYMINIDL_CPU_CAPABILITY) selects.
#pragma once

#include <cstdint>

#define PMD_LOSS_ENTRY_POINTS                                                                      \
    void dense_ce_forward_f32(float* loss, float* probs, const float* logits, const float* labels, \
                              int64_t n, int64_t c, double ls);                                    \
    void sparse_ce_forward_f32(float* loss, float* probs, const float* logits, const int32_t* labels, \
                               int64_t n, int64_t c, double ls);                                   \
    void sparse_ce_forward_f32(float* loss, float* probs, const float* logits, const int64_t* labels, \
                               int64_t n, int64_t c, double ls);                                   \
    void dense_ce_backward_f32(float* dlogits, const float* dloss, const float* probs,            \
                               const float* labels, int64_t n, int64_t c, double ls);              \
    void sparse_ce_backward_f32(float* dlogits, const float* dloss, const float* probs,           \
                                const int32_t* labels, int64_t n, int64_t c, double ls);           \
    void sparse_ce_backward_f32(float* dlogits, const float* dloss, const float* probs,           \
                                const int64_t* labels, int64_t n, int64_t c, double ls);

// The definitions: each forwards to this translation unit's copy of the kernel.
#define PMD_DEFINE_LOSS_ENTRY_POINTS                                                               \
    void dense_ce_forward_f32(float* loss, float* probs, const float* logits, const float* labels, \
                              int64_t n, int64_t c, double ls) {                                   \
        dense_ce_forward_impl(loss, probs, logits, labels, n, c, ls);                              \
    }                                                                                              \
    void sparse_ce_forward_f32(float* loss, float* probs, const float* logits, const int32_t* labels, \
                               int64_t n, int64_t c, double ls) {                                  \
        sparse_ce_forward_impl(loss, probs, logits, labels, n, c, ls);                             \
    }                                                                                              \
    void sparse_ce_forward_f32(float* loss, float* probs, const float* logits, const int64_t* labels, \
                               int64_t n, int64_t c, double ls) {                                  \
        sparse_ce_forward_impl(loss, probs, logits, labels, n, c, ls);                             \
    }                                                                                              \
    void dense_ce_backward_f32(float* dlogits, const float* dloss, const float* probs,            \
                               const float* labels, int64_t n, int64_t c, double ls) {             \
        dense_ce_backward_impl(dlogits, dloss, probs, labels, n, c, ls);                           \
    }                                                                                              \
    void sparse_ce_backward_f32(float* dlogits, const float* dloss, const float* probs,           \
                                const int32_t* labels, int64_t n, int64_t c, double ls) {          \
        sparse_ce_backward_impl(dlogits, dloss, probs, labels, n, c, ls);                          \
    }                                                                                              \
    void sparse_ce_backward_f32(float* dlogits, const float* dloss, const float* probs,           \
                                const int64_t* labels, int64_t n, int64_t c, double ls) {          \
        sparse_ce_backward_impl(dlogits, dloss, probs, labels, n, c, ls);                          \
    }

namespace pyminidl::kernels {
namespace avx2 {
PMD_LOSS_ENTRY_POINTS
}  // namespace avx2
namespace avx512 {
PMD_LOSS_ENTRY_POINTS
}  // namespace avx512
}  // namespace pyminidl::kernels
