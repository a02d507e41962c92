// losses.cpp — fused softmax cross-entropy, forward and backward, dense or sparse labels.
//
// Contents:
//   softmax_cross_entropy_forward / _backward             labels (N, C) probabilities
//   sparse_softmax_cross_entropy_forward / _backward      labels (N,) int32 / int64 classes
//
// Layout: logits, probs, dlogits are (N, C) row-major; a row is one sample.
//
// The spec is base.py's softmax_cross_entropy_forward/backward (Keras 3 categorical and
// sparse categorical cross-entropy with from_logits=True and label_smoothing):
//   log_p = log_softmax(logits);  loss = -sum_j t_j log_p_j;  probs = exp(log_p)
//   dlogits = dloss * (probs * sum_j t_j - t)   (targets need not sum to 1)
// The sparse kernels build the smoothed one-hot target on the fly, one row at a time,
// and take the same full sum as the dense ones, so 0 * (-inf) gives the reference's NaN.
// One thread owns a row and sums it in double in a fixed order: the result does not
// depend on the thread count. exp is fastmath.h's (vectorisable in float32, <= 2 ulp).
// Built with -fno-math-errno, never -ffast-math.
#include "losses.h"

#include <cmath>

#include "activations.h"
#include "fastmath.h"

namespace pyminidl::kernels {

namespace {

// t_ij of dense labels, smoothed (label_smoothing = 0 leaves them exact: t * 1 + 0).
template <typename T>
struct DenseTarget {
    const T* labels;
    int64_t c;
    T keep, add;
    PMD_ALWAYS_INLINE T operator()(int64_t i, int64_t j) const { return labels[i * c + j] * keep + add; }
};

// t_ij of a one-hot row built from the class index labels[i], smoothed.
template <typename T, typename I>
struct SparseTarget {
    const I* labels;
    T keep, add;
    PMD_ALWAYS_INLINE T operator()(int64_t i, int64_t j) const {
        return (int64_t(labels[i]) == j ? T(1) : T(0)) * keep + add;
    }
};

// loss: (N,), probs: (N, C), logits: (N, C). Overwrites loss and probs.
template <typename T, typename Target>
void ce_forward(T* loss, T* probs, const T* logits, int64_t n, int64_t c, Target target) {
#pragma omp parallel for schedule(static) if (n * c > PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; ++i) {
        const T* x = logits + i * c;
        T* p = probs + i * c;
        // log-sum-exp shifted by the row max: every exp <= 1, no overflow.
        const T mx = row_max(x, c);
        for (int64_t j = 0; j < c; ++j) p[j] = exp_v(x[j] - mx);  // vectorises (fastmath.h)
        const double s = row_sum(p, c);  // fixed-order double sum
        const double lse = std::log(s), inv = 1.0 / s;
        double acc = 0.0;
        for (int64_t j = 0; j < c; ++j) {
            const double log_p = double(x[j] - mx) - lse;
            acc += double(target(i, j)) * log_p;
            p[j] = T(p[j] * inv);
        }
        loss[i] = T(-acc);
    }
}

// dlogits: (N, C), dloss: (N,), probs: (N, C). Overwrites dlogits.
template <typename T, typename Target>
void ce_backward(T* dlogits, const T* dloss, const T* probs, int64_t n, int64_t c, Target target) {
    // dL/dlogits_ij = dloss_i * (probs_ij * sum_k t_ik - t_ij)
#pragma omp parallel for schedule(static) if (n * c > PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; ++i) {
        const T* p = probs + i * c;
        T* d = dlogits + i * c;
        double total = 0.0;
        for (int64_t j = 0; j < c; ++j) total += target(i, j);
        const double g = dloss[i];
        for (int64_t j = 0; j < c; ++j) d[j] = T(g * (p[j] * total - double(target(i, j))));
    }
}

template <typename T>
DenseTarget<T> dense_target(const T* labels, int64_t c, double ls) {
    return DenseTarget<T>{labels, c, T(1.0 - ls), T(ls / double(c))};
}

template <typename T, typename I>
SparseTarget<T, I> sparse_target(const I* labels, int64_t c, double ls) {
    return SparseTarget<T, I>{labels, T(1.0 - ls), T(ls / double(c))};
}

}  // namespace

template <typename T>
void softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const T* labels,
                                   int64_t n, int64_t c, double label_smoothing) {
    ce_forward(loss, probs, logits, n, c, dense_target(labels, c, label_smoothing));
}

template <typename T, typename I>
void sparse_softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const I* labels,
                                          int64_t n, int64_t c, double label_smoothing) {
    ce_forward(loss, probs, logits, n, c, sparse_target<T>(labels, c, label_smoothing));
}

template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* dloss, const T* probs, const T* labels,
                                    int64_t n, int64_t c, double label_smoothing) {
    ce_backward(dlogits, dloss, probs, n, c, dense_target(labels, c, label_smoothing));
}

template <typename T, typename I>
void sparse_softmax_cross_entropy_backward(T* dlogits, const T* dloss, const T* probs,
                                           const I* labels, int64_t n, int64_t c,
                                           double label_smoothing) {
    ce_backward(dlogits, dloss, probs, n, c, sparse_target<T>(labels, c, label_smoothing));
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
