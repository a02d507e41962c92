// losses.cpp — fused softmax cross-entropy, forward and backward, dense or sparse labels:
// the public entry points.
//
// Contents:
//   softmax_cross_entropy_forward / _backward             labels (N, C) probabilities
//   sparse_softmax_cross_entropy_forward / _backward      labels (N,) int32 / int64 classes
//
// Layout: logits, probs, dlogits are (N, C) row-major; a row is one sample.
//
// The kernel bodies and their spec are in losses_impl.h. This file compiles them for
// baseline x86-64 (and any other target) and sends float32 calls to the AVX2 or AVX-512
// copy (losses_avx2.cpp, losses_avx512.cpp) when active_isa() allows; float64, which exists
// for gradient checks, always runs the baseline copy. Every path gives the same bits.
#include "losses.h"

#include <type_traits>

#include "cpu_features.h"
#include "losses_impl.h"
#include "losses_isa.h"

namespace pyminidl::kernels {

template <typename T>
void softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const T* labels,
                                   int64_t n, int64_t c, double label_smoothing) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(dense_ce_forward_f32, loss, probs, logits, labels, n, c, label_smoothing)
    }
    dense_ce_forward_impl(loss, probs, logits, labels, n, c, label_smoothing);
}

template <typename T, typename I>
void sparse_softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const I* labels,
                                          int64_t n, int64_t c, double label_smoothing) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(sparse_ce_forward_f32, loss, probs, logits, labels, n, c, label_smoothing)
    }
    sparse_ce_forward_impl(loss, probs, logits, labels, n, c, label_smoothing);
}

template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* dloss, const T* probs, const T* labels,
                                    int64_t n, int64_t c, double label_smoothing) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(dense_ce_backward_f32, dlogits, dloss, probs, labels, n, c, label_smoothing)
    }
    dense_ce_backward_impl(dlogits, dloss, probs, labels, n, c, label_smoothing);
}

template <typename T, typename I>
void sparse_softmax_cross_entropy_backward(T* dlogits, const T* dloss, const T* probs,
                                           const I* labels, int64_t n, int64_t c,
                                           double label_smoothing) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(sparse_ce_backward_f32, dlogits, dloss, probs, labels, n, c, label_smoothing)
    }
    sparse_ce_backward_impl(dlogits, dloss, probs, labels, n, c, label_smoothing);
}

#define PMD_INSTANTIATE(T)                                                                       \
    template void softmax_cross_entropy_forward<T>(T*, T*, const T*, const T*, int64_t, int64_t, double); \
    template void softmax_cross_entropy_backward<T>(T*, const T*, const T*, const T*, int64_t,   \
                                                    int64_t, double);
#define PMD_INSTANTIATE_SPARSE(T, I)                                                             \
    template void sparse_softmax_cross_entropy_forward<T, I>(T*, T*, const T*, const I*, int64_t, \
                                                             int64_t, double);                   \
    template void sparse_softmax_cross_entropy_backward<T, I>(T*, const T*, const T*, const I*,  \
                                                              int64_t, int64_t, double);
PMD_INSTANTIATE(float)
PMD_INSTANTIATE(double)
PMD_INSTANTIATE_SPARSE(float, int32_t)
PMD_INSTANTIATE_SPARSE(float, int64_t)
PMD_INSTANTIATE_SPARSE(double, int32_t)
PMD_INSTANTIATE_SPARSE(double, int64_t)
#undef PMD_INSTANTIATE
#undef PMD_INSTANTIATE_SPARSE

}  // namespace pyminidl::kernels
