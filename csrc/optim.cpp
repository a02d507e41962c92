// optim.cpp — fused in-place optimizer updates: SGD (momentum, Nesterov), Adam/AdamW
// (amsgrad), RMSprop (momentum, centered), Adagrad.
//
// Layout: param, grad and every slot are flat (n,) contiguous buffers of one type.
//
// The spec is base.py's *_update methods, which transcribe Keras 3's update_step of
// keras/src/optimizers/{sgd,adam,rmsprop,adagrad}.py and the decoupled weight decay of
// BaseOptimizer._apply_weight_decay (param -= lr * wd * param, before the step). Scalars
// are folded in double and cast to the parameter type once, as Keras casts its
// hyper-parameters to the variable's dtype; the per-element arithmetic runs in that type
// in the reference's order. One pass over memory instead of NumPy's ~10 temporaries.
// Elementwise and thread-count independent. Built with -fno-math-errno so std::sqrt is
// one instruction and the loops vectorise; never -ffast-math.
// Reference: Kingma & Ba, Adam (2015); Reddi et al., AMSGrad (2018); Loshchilov & Hutter,
// AdamW (2019).
#include "optim.h"

#include <cmath>

namespace pyminidl::kernels {

// param, velocity (or nullptr), grad: (n,).
template <typename T>
void sgd_update(T* PMD_RESTRICT param, T* PMD_RESTRICT velocity, const T* PMD_RESTRICT grad,
                int64_t n, double lr, double momentum, bool nesterov, double weight_decay) {
    const T lr_t = T(lr), mom = T(momentum), decay = T(lr * weight_decay);
    const bool decayed = weight_decay != 0.0;  // the reference skips it: 0 * inf would be NaN
    const bool plain = velocity == nullptr || momentum == 0.0;
#pragma omp parallel for schedule(static) if (n > PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; ++i) {
        T p = param[i];
        const T g = grad[i];
        if (decayed) p -= decay * p;
        if (plain) {
            p -= lr_t * g;
        } else {
            const T v = velocity[i] * mom - lr_t * g;  // v = momentum v - lr g
            velocity[i] = v;
            p += nesterov ? mom * v - lr_t * g : v;
        }
        param[i] = p;
    }
}

// param, m, v, vhat (or nullptr), grad: (n,).
template <typename T>
void adam_update(T* PMD_RESTRICT param, T* PMD_RESTRICT m, T* PMD_RESTRICT v, T* PMD_RESTRICT vhat,
                 const T* PMD_RESTRICT grad, int64_t n, double lr, int64_t step, double beta_1,
                 double beta_2, double epsilon, double weight_decay) {
    // Bias correction folded into the step size: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t).
    const double t = double(step);
    const T alpha = T(lr * std::sqrt(1.0 - std::pow(beta_2, t)) / (1.0 - std::pow(beta_1, t)));
    const T one_b1 = T(1.0 - beta_1), one_b2 = T(1.0 - beta_2), eps = T(epsilon);
    const T decay = T(lr * weight_decay);
    const bool decayed = weight_decay != 0.0;
#pragma omp parallel for schedule(static) if (n > PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; ++i) {
        T p = param[i];
        const T g = grad[i];
        if (decayed) p -= decay * p;
        const T mi = m[i] + (g - m[i]) * one_b1;
        const T vi = v[i] + (g * g - v[i]) * one_b2;
        m[i] = mi;
        v[i] = vi;
        T denom = vi;
        if (vhat != nullptr) {
            // AMSGrad: vhat = max(vhat, v), NaN-propagating like numpy.maximum.
            const T h = (vi > vhat[i] || vi != vi) ? vi : vhat[i];
            vhat[i] = h;
            denom = h;
        }
        param[i] = p - (alpha * mi) / (std::sqrt(denom) + eps);
    }
}

// param, velocity, momentum_buf (or nullptr), average_grad (or nullptr), grad: (n,).
template <typename T>
void rmsprop_update(T* PMD_RESTRICT param, T* PMD_RESTRICT velocity, T* PMD_RESTRICT momentum_buf,
                    T* PMD_RESTRICT average_grad, const T* PMD_RESTRICT grad, int64_t n, double lr,
                    double rho, double momentum, double epsilon, double weight_decay) {
    const T lr_t = T(lr), rho_t = T(rho), one_rho = T(1.0 - rho), mom = T(momentum);
    const T eps = T(epsilon), decay = T(lr * weight_decay);
    const bool decayed = weight_decay != 0.0;
#pragma omp parallel for schedule(static) if (n > PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; ++i) {
        T p = param[i];
        const T g = grad[i];
        if (decayed) p -= decay * p;
        const T vel = velocity[i] * rho_t + one_rho * g * g;  // v = rho v + (1 - rho) g^2
        velocity[i] = vel;
        T denom = vel;
        if (average_grad != nullptr) {
            // Centered: divide by an estimate of the variance, v - E[g]^2.
            const T a = average_grad[i] * rho_t + one_rho * g;
            average_grad[i] = a;
            denom = vel - a * a;
        }
        const T inc = lr_t * g / std::sqrt(denom + eps);
        if (momentum_buf != nullptr) {
            const T b = momentum_buf[i] * mom + inc;
            momentum_buf[i] = b;
            p -= b;
        } else {
            p -= inc;
        }
        param[i] = p;
    }
}

// param, accumulator, grad: (n,).
template <typename T>
void adagrad_update(T* PMD_RESTRICT param, T* PMD_RESTRICT accumulator, const T* PMD_RESTRICT grad,
                    int64_t n, double lr, double epsilon, double weight_decay) {
    const T lr_t = T(lr), eps = T(epsilon), decay = T(lr * weight_decay);
    const bool decayed = weight_decay != 0.0;
#pragma omp parallel for schedule(static) if (n > PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; ++i) {
        T p = param[i];
        const T g = grad[i];
        if (decayed) p -= decay * p;
        const T acc = accumulator[i] + g * g;  // acc += g^2
        accumulator[i] = acc;
        param[i] = p - lr_t * g / std::sqrt(acc + eps);
    }
}

#define PMD_INSTANTIATE(T)                                                                      \
    template void sgd_update<T>(T*, T*, const T*, int64_t, double, double, bool, double);       \
    template void adam_update<T>(T*, T*, T*, T*, const T*, int64_t, double, int64_t, double,    \
                                 double, double, double);                                       \
    template void rmsprop_update<T>(T*, T*, T*, T*, const T*, int64_t, double, double, double,  \
                                    double, double);                                            \
    template void adagrad_update<T>(T*, T*, const T*, int64_t, double, double, double);
PMD_INSTANTIATE(float)
PMD_INSTANTIATE(double)
#undef PMD_INSTANTIATE

}  // namespace pyminidl::kernels
