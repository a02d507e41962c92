// optim_impl.h — the per-element loops of the SGD and Adam steps, compiled once per
// instruction set: optim.cpp (baseline x86-64, float64, and every non-x86 target),
// optim_avx2.cpp and optim_avx512.cpp include this file. The loops have internal linkage
// (an anonymous namespace), so each translation unit keeps its own copy built with its own
// -m flags and the linker can never hand an AVX-512 copy to the baseline path. The step
// structs are plain data, filled in optim.cpp. Built with -fno-math-errno -fno-trapping-math
// -ffp-contract=off: the loops vectorise, sqrt and division are correctly rounded in every
// copy and no FMA is contracted, so every ISA path returns the baseline's exact bits.
#pragma once

#include <cmath>

#include "common.h"

namespace pyminidl::kernels {

// The hyper-parameters of an SGD step, in the parameter type. plain: no velocity (or
// momentum 0); decayed: weight_decay != 0 (the reference skips it: 0 * inf would be NaN).
template <typename T>
struct SgdStep {
    T lr, mom, decay;
    bool decayed, plain, nesterov;
};

// The hyper-parameters of an Adam step, in the parameter type; alpha is the step size with
// the bias correction folded in: lr sqrt(1 - b2^t) / (1 - b1^t).
template <typename T>
struct AdamStep {
    T alpha, one_b1, one_b2, eps, decay;
    bool decayed;
};

namespace {

// One serial run of the SGD step over n elements (called per thread block: the restrict
// pointers keep it vectorised, see parallel.h). param, velocity (unused when plain), grad: (n,).
template <typename T>
void sgd_span(T* PMD_RESTRICT param, T* PMD_RESTRICT velocity, const T* PMD_RESTRICT grad, int64_t n,
              const SgdStep<T>& s) {
    for (int64_t i = 0; i < n; ++i) {
        T p = param[i];
        const T g = grad[i];
        if (s.decayed) p -= s.decay * p;
        if (s.plain) {
            p -= s.lr * g;
        } else {
            const T v = velocity[i] * s.mom - s.lr * g;  // v = momentum v - lr g
            velocity[i] = v;
            p += s.nesterov ? s.mom * v - s.lr * g : v;
        }
        param[i] = p;
    }
}

// One serial run of the Adam step. param, m, v, vhat (or nullptr), grad: (n,).
template <typename T>
void adam_span(T* PMD_RESTRICT param, T* PMD_RESTRICT m, T* PMD_RESTRICT v, T* PMD_RESTRICT vhat,
               const T* PMD_RESTRICT grad, int64_t n, const AdamStep<T>& s) {
    for (int64_t i = 0; i < n; ++i) {
        T p = param[i];
        const T g = grad[i];
        if (s.decayed) p -= s.decay * p;
        const T mi = m[i] + (g - m[i]) * s.one_b1;
        const T vi = v[i] + (g * g - v[i]) * s.one_b2;
        m[i] = mi;
        v[i] = vi;
        T denom = vi;
        if (vhat != nullptr) {
            // AMSGrad: vhat = max(vhat, v), NaN-propagating like numpy.maximum.
            const T h = (vi > vhat[i] || vi != vi) ? vi : vhat[i];
            vhat[i] = h;
            denom = h;
        }
        param[i] = p - (s.alpha * mi) / (std::sqrt(denom) + s.eps);
    }
}

}  // namespace
}  // namespace pyminidl::kernels
