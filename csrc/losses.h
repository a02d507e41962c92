// losses.h — see losses.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// Fused softmax cross-entropy over the class axis, N samples by C classes. Targets are the
// labels smoothed as Keras does: t = labels * (1 - label_smoothing) + label_smoothing / C.
// Dense labels are (N, C) in the logits' type; sparse labels are (N,) class indices that
// the caller has checked lie in [0, C) (the kernels index with them unchecked).

// loss: (N,), probs: (N, C), logits: (N, C), labels: (N, C). Overwrites loss and probs.
template <typename T>
void softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const T* labels,
                                   int64_t n, int64_t c, double label_smoothing);

// loss: (N,), probs: (N, C), logits: (N, C), labels: (N,) in [0, C). Overwrites loss and probs.
template <typename T, typename I>
void sparse_softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const I* labels,
                                          int64_t n, int64_t c, double label_smoothing);

// dlogits: (N, C), dloss: (N,), probs: (N, C), labels: (N, C). Overwrites dlogits.
template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* dloss, const T* probs, const T* labels,
                                    int64_t n, int64_t c, double label_smoothing);

// dlogits: (N, C), dloss: (N,), probs: (N, C), labels: (N,) in [0, C). Overwrites dlogits.
template <typename T, typename I>
void sparse_softmax_cross_entropy_backward(T* dlogits, const T* dloss, const T* probs,
                                           const I* labels, int64_t n, int64_t c,
                                           double label_smoothing);

}  // namespace pyminidl::kernels
