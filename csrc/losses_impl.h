// losses_impl.h — the bodies of the fused softmax cross-entropy kernels, compiled once per
// instruction set: losses.cpp (baseline x86-64, every non-x86 target, and float64),
// losses_avx2.cpp and losses_avx512.cpp include this file and nothing else defines these
// functions. Internal linkage (an anonymous namespace), as activations_impl.h explains.
//
// The spec is base.py's softmax_cross_entropy_forward/backward (Keras 3 categorical and
// sparse categorical cross-entropy with from_logits=True and label_smoothing):
//   log_p = log_softmax(logits);  loss = -sum_j t_j log_p_j;  probs = exp(log_p)
//   dlogits = dloss * (probs * sum_j t_j - t)   (targets need not sum to 1)
// The sparse kernels build the smoothed one-hot target on the fly and take the same full sum
// as the dense ones, so 0 * (-inf) gives the reference's NaN, and a one-hot dense row gives
// the sparse row's bits. One thread owns a row; its sums run in double in fastmath.h's fixed
// order (float rows in blocks of 16 lanes), so the bits do not depend on the thread count or
// the ISA path. exp is fastmath.h's (vectorised in float32, <= 2 ulp). Built with
// -fno-math-errno -fno-trapping-math -ffp-contract=off, never -ffast-math.
#pragma once

#include <cmath>
#include <cstring>
#include <type_traits>

#include "channel_blocks.h"
#include "fastmath.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace {

// t_ij of dense labels, smoothed (label_smoothing = 0 leaves them exact: t * 1 + 0).
template <typename T>
struct DenseTarget {
    const T* labels;
    int64_t c;
    T keep, add;
    PMD_ALWAYS_INLINE T operator()(int64_t i, int64_t j) const { return labels[i * c + j] * keep + add; }
    // t_ij .. t_i(j+HALF) of float labels, the same arithmetic lane by lane.
    PMD_ALWAYS_INLINE HalfF half(int64_t i, int64_t j) const {
        HalfF l;
        std::memcpy(&l, labels + i * c + j, sizeof l);
        return l * keep + add;
    }
};

// t_ij of a one-hot row built from the class index labels[i], smoothed.
template <typename T, typename I>
struct SparseTarget {
    const I* labels;
    T keep, add;
    PMD_ALWAYS_INLINE T operator()(int64_t i, int64_t j) const {
        return (int64_t(labels[i]) == j ? T(1) : T(0)) * keep + add;
    }
    PMD_ALWAYS_INLINE HalfF half(int64_t i, int64_t j) const {
        const int64_t at = int64_t(labels[i]) - j;  // the label's lane in this block, if any
        HalfI lane;
        for (int k = 0; k < HALF; ++k) lane[k] = k;
        const int32_t hit = at >= 0 && at < HALF ? int32_t(at) : -1;
        const HalfF on = HalfF{} + (T(1) * keep + add), off = HalfF{} + (T(0) * keep + add);
        return lane == hit ? on : off;
    }
};

// -sum_j t_ij log_p_ij of row i, log_p_ij = (x_j - mx) - lse in double.
template <typename T, typename Target>
PMD_ALWAYS_INLINE double row_cross_entropy(const T* x, T mx, double lse, int64_t i, int64_t c, const Target& target) {
    auto term = [&](int64_t j) { return double(target(i, j)) * (double(x[j] - mx) - lse); };
    if constexpr (std::is_same_v<T, float>) {
        return -lanes_sum(
            c,
            [&](WideLanes& acc, int64_t j) {
                for (int u = 0; u < NHALF; ++u) {
                    const int64_t k = j + u * HALF;
                    HalfF v;
                    std::memcpy(&v, x + k, sizeof v);
                    const VecD log_p = __builtin_convertvector(v - mx, VecD) - lse;
                    acc.v[u] += __builtin_convertvector(target.half(i, k), VecD) * log_p;
                }
            },
            term);
    } else {
        return -sum4(0, c, term);
    }
}

// sum_j t_ij of row i in double.
template <typename T, typename Target>
PMD_ALWAYS_INLINE double row_target_total(int64_t i, int64_t c, const Target& target) {
    auto term = [&](int64_t j) { return double(target(i, j)); };
    if constexpr (std::is_same_v<T, float>) {
        return lanes_sum(
            c,
            [&](WideLanes& acc, int64_t j) {
                for (int u = 0; u < NHALF; ++u) acc.v[u] += __builtin_convertvector(target.half(i, j + u * HALF), VecD);
            },
            term);
    } else {
        return sum4(0, c, term);
    }
}

// loss: (N,), probs: (N, C), logits: (N, C). Overwrites loss and probs.
template <typename T, typename Target>
void ce_forward(T* loss, T* probs, const T* logits, int64_t n, int64_t c, Target target) {
    parallel_blocks(n, c, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
            const T* PMD_RESTRICT x = logits + i * c;
            T* PMD_RESTRICT p = probs + i * c;
            // log-sum-exp shifted by the row max: every exp <= 1, no overflow.
            const T mx = row_max(x, c);
            for (int64_t j = 0; j < c; ++j) p[j] = exp_v(x[j] - mx);
            const double s = row_sum(p, c);
            const double lse = std::log(s), inv = 1.0 / s;
            loss[i] = T(row_cross_entropy(x, mx, lse, i, c, target));
            for (int64_t j = 0; j < c; ++j) p[j] = T(p[j] * inv);
        }
    });
}

// dlogits: (N, C), dloss: (N,), probs: (N, C). Overwrites dlogits.
template <typename T, typename Target>
void ce_backward(T* dlogits, const T* dloss, const T* probs, int64_t n, int64_t c, Target target) {
    // dL/dlogits_ij = dloss_i * (probs_ij * sum_k t_ik - t_ij)
    parallel_blocks(n, c, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
            const T* PMD_RESTRICT p = probs + i * c;
            T* PMD_RESTRICT d = dlogits + i * c;
            const double total = row_target_total<T>(i, c, target), g = dloss[i];
            int64_t j = 0;
            if constexpr (std::is_same_v<T, float>) {
                for (; j + HALF <= c; j += HALF) {
                    const VecD t = __builtin_convertvector(target.half(i, j), VecD);
                    store_narrowed(d + j, g * (load_widened(p + j) * total - t));
                }
            }
            for (; j < c; ++j) d[j] = T(g * (p[j] * total - double(target(i, j))));
        }
    });
}

template <typename T>
DenseTarget<T> dense_target(const T* labels, int64_t c, double ls) {
    return DenseTarget<T>{labels, c, T(1.0 - ls), T(ls / double(c))};
}

template <typename T, typename I>
SparseTarget<T, I> sparse_target(const I* labels, int64_t c, double ls) {
    return SparseTarget<T, I>{labels, T(1.0 - ls), T(ls / double(c))};
}

template <typename T>
void dense_ce_forward_impl(T* loss, T* probs, const T* logits, const T* labels, int64_t n, int64_t c, double ls) {
    ce_forward(loss, probs, logits, n, c, dense_target(labels, c, ls));
}

template <typename T, typename I>
void sparse_ce_forward_impl(T* loss, T* probs, const T* logits, const I* labels, int64_t n, int64_t c, double ls) {
    ce_forward(loss, probs, logits, n, c, sparse_target<T>(labels, c, ls));
}

template <typename T>
void dense_ce_backward_impl(T* dlogits, const T* dloss, const T* probs, const T* labels, int64_t n, int64_t c,
                            double ls) {
    ce_backward(dlogits, dloss, probs, n, c, dense_target(labels, c, ls));
}

template <typename T, typename I>
void sparse_ce_backward_impl(T* dlogits, const T* dloss, const T* probs, const I* labels, int64_t n, int64_t c,
                             double ls) {
    ce_backward(dlogits, dloss, probs, n, c, sparse_target<T>(labels, c, ls));
}

}  // namespace
}  // namespace pyminidl::kernels
