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
// The *_multi variants run one step over a list of tensors in one parallel region (PyTorch's
// multi-tensor "foreach" optimizers): a training step makes one call for all its variables.
// SGD's and Adam's float32 loops (optim_impl.h) also run from AVX2 / AVX-512 copies
// (optim_avx2.cpp, optim_avx512.cpp) when active_isa() allows, with the baseline's bits.
// Elementwise and thread-count independent. Built with -fno-math-errno so std::sqrt is
// one instruction and the loops vectorise; never -ffast-math. Every update runs with
// subnormals flushed to zero (FlushSubnormals below); with normal numbers the bits are the
// reference's.
// Reference: Kingma & Ba, Adam (2015); Reddi et al., AMSGrad (2018); Loshchilov & Hutter,
// AdamW (2019).
#include "optim.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu_features.h"
#include "optim_impl.h"
#include "optim_isa.h"
#include "parallel.h"

#if defined(PYMINIDL_X86)
#include <immintrin.h>  // _mm_getcsr / _mm_setcsr: SSE, part of every x86-64
#endif

namespace pyminidl::kernels {

namespace {

// While it lives, this thread flushes subnormal results to zero (x86: MXCSR's FTZ; aarch64:
// FPCR.FZ, which also reads subnormal operands as 0); elsewhere the numbers are IEEE's, bit for
// bit. Why: where a gradient stays 0 (a ReLU unit that died), the slots decay geometrically into
// the subnormal range and stay there, since m + (0 - m) * 0.1 rounds back to m below
// 5 * denorm_min (v below 500 * denorm_min). An MLP trained on [0, 1) inputs had 37% of Adam's
// state subnormal after 6 epochs, and an Adam pass over such state took 1.4-1.7x as long on
// Zen 4 (Intel cores take a microcode assist per subnormal operand). Flushed, the decay stops
// where its step would be subnormal (m below 10 * FLT_MIN, v below 1000 * FLT_MIN): normal
// numbers, within 1.2e-35 of the reference's slot, too small to move a parameter either way.
// A subnormal slot handed in is drained by its first update. x86 still reads subnormal
// operands (no DAZ), so a subnormal hyper-parameter (the fuzzer's float64 momentum of 1e-308)
// times an inf velocity is the reference's inf, not NaN. TensorFlow's CPU kernels flush
// subnormals too. The thread's own mode comes back at scope exit: NumPy and the other kernels
// keep IEEE subnormals.
class FlushSubnormals {
public:
#if defined(PYMINIDL_X86)
    FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | FTZ); }
    ~FlushSubnormals() { _mm_setcsr(saved_); }

private:
    static constexpr unsigned FTZ = 0x8000;
    unsigned saved_;
#elif defined(__aarch64__)
    FlushSubnormals() {
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
        __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_ | FZ));
    }
    ~FlushSubnormals() { __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_)); }

private:
    static constexpr uint64_t FZ = uint64_t(1) << 24;
    uint64_t saved_;
#endif
    FlushSubnormals(const FlushSubnormals&) = delete;
    FlushSubnormals& operator=(const FlushSubnormals&) = delete;
};

// parallel_blocks over n elements, each block run with subnormals flushed on its thread.
template <typename F>
void update_blocks(int64_t n, F body) {
    parallel_blocks(n, 1, [&](int64_t lo, int64_t hi) {
        const FlushSubnormals flush;
        body(lo, hi);
    });
}

template <typename T>
SgdStep<T> sgd_step(double lr, double momentum, bool nesterov, double weight_decay, bool has_velocity) {
    return {T(lr), T(momentum), T(lr * weight_decay), weight_decay != 0.0, !has_velocity || momentum == 0.0,
            nesterov};
}

template <typename T>
AdamStep<T> adam_step(double lr, int64_t step, double beta_1, double beta_2, double epsilon, double weight_decay) {
    const double t = double(step);
    return {T(lr * std::sqrt(1.0 - std::pow(beta_2, t)) / (1.0 - std::pow(beta_1, t))), T(1.0 - beta_1),
            T(1.0 - beta_2), T(epsilon), T(lr * weight_decay), weight_decay != 0.0};
}

template <typename T>
using SgdSpan = void (*)(T*, T*, const T*, int64_t, const SgdStep<T>&);
template <typename T>
using AdamSpan = void (*)(T*, T*, T*, T*, const T*, int64_t, const AdamStep<T>&);

// The loop of the widest per-ISA copy active_isa() allows (float32; float64 keeps the baseline).
template <typename T>
SgdSpan<T> sgd_span_for() {
#if defined(PYMINIDL_X86)
    if constexpr (std::is_same_v<T, float>) {
        switch (active_isa()) {
            case Isa::avx512: return avx512::sgd_span_f32;
            case Isa::avx2: return avx2::sgd_span_f32;
            default: break;
        }
    }
#endif
    return sgd_span<T>;
}

template <typename T>
AdamSpan<T> adam_span_for() {
#if defined(PYMINIDL_X86)
    if constexpr (std::is_same_v<T, float>) {
        switch (active_isa()) {
            case Isa::avx512: return avx512::adam_span_f32;
            case Isa::avx2: return avx2::adam_span_f32;
            default: break;
        }
    }
#endif
    return adam_span<T>;
}

// Calls span(j, lo, hi) for the part [lo, hi) of tensor j that falls in the block [from, to) of
// the concatenated index space of `count` tensors of `sizes` elements.
template <typename F>
void for_tensors_in(const int64_t* sizes, int64_t count, int64_t from, int64_t to, F span) {
    int64_t start = 0;
    for (int64_t j = 0; j < count && start < to; start += sizes[j], ++j) {
        const int64_t lo = std::max(from, start) - start, hi = std::min(to, start + sizes[j]) - start;
        if (lo < hi) span(j, lo, hi);
    }
}

int64_t total_size(const int64_t* sizes, int64_t count) {
    int64_t n = 0;
    for (int64_t j = 0; j < count; ++j) n += sizes[j];
    return n;
}

}  // namespace

// param, velocity (or nullptr), grad: (n,).
template <typename T>
void sgd_update(T* PMD_RESTRICT param, T* PMD_RESTRICT velocity, const T* PMD_RESTRICT grad,
                int64_t n, double lr, double momentum, bool nesterov, double weight_decay) {
    const SgdStep<T> s = sgd_step<T>(lr, momentum, nesterov, weight_decay, velocity != nullptr);
    const SgdSpan<T> span = sgd_span_for<T>();
    update_blocks(n, [&](int64_t lo, int64_t hi) {
        span(param + lo, s.plain ? nullptr : velocity + lo, grad + lo, hi - lo, s);
    });
}

// params[j], velocities[j] (or velocities == nullptr), grads[j]: (sizes[j],), j < count. One
// parallel region over all the tensors' elements: each thread takes one block of their
// concatenation, so a step of many small variables costs one call, not one per variable.
template <typename T>
void sgd_update_multi(T* const* params, T* const* velocities, const T* const* grads, const int64_t* sizes,
                      int64_t count, double lr, double momentum, bool nesterov, double weight_decay) {
    const SgdStep<T> s = sgd_step<T>(lr, momentum, nesterov, weight_decay, velocities != nullptr);
    const SgdSpan<T> span = sgd_span_for<T>();
    update_blocks(total_size(sizes, count), [&](int64_t from, int64_t to) {
        for_tensors_in(sizes, count, from, to, [&](int64_t j, int64_t lo, int64_t hi) {
            span(params[j] + lo, s.plain ? nullptr : velocities[j] + lo, grads[j] + lo, hi - lo, s);
        });
    });
}

// param, m, v, vhat (or nullptr), grad: (n,).
template <typename T>
void adam_update(T* PMD_RESTRICT param, T* PMD_RESTRICT m, T* PMD_RESTRICT v, T* PMD_RESTRICT vhat,
                 const T* PMD_RESTRICT grad, int64_t n, double lr, int64_t step, double beta_1,
                 double beta_2, double epsilon, double weight_decay) {
    const AdamStep<T> s = adam_step<T>(lr, step, beta_1, beta_2, epsilon, weight_decay);
    const AdamSpan<T> span = adam_span_for<T>();
    update_blocks(n, [&](int64_t lo, int64_t hi) {
        span(param + lo, m + lo, v + lo, vhat == nullptr ? nullptr : vhat + lo, grad + lo, hi - lo, s);
    });
}

// params[j], ms[j], vs[j], vhats[j] (or vhats == nullptr), grads[j]: (sizes[j],), j < count;
// one parallel region over all of them, as sgd_update_multi.
template <typename T>
void adam_update_multi(T* const* params, T* const* ms, T* const* vs, T* const* vhats, const T* const* grads,
                       const int64_t* sizes, int64_t count, double lr, int64_t step, double beta_1,
                       double beta_2, double epsilon, double weight_decay) {
    const AdamStep<T> s = adam_step<T>(lr, step, beta_1, beta_2, epsilon, weight_decay);
    const AdamSpan<T> span = adam_span_for<T>();
    update_blocks(total_size(sizes, count), [&](int64_t from, int64_t to) {
        for_tensors_in(sizes, count, from, to, [&](int64_t j, int64_t lo, int64_t hi) {
            span(params[j] + lo, ms[j] + lo, vs[j] + lo, vhats == nullptr ? nullptr : vhats[j] + lo,
                      grads[j] + lo, hi - lo, s);
        });
    });
}

// param, velocity, momentum_buf (or nullptr), average_grad (or nullptr), grad: (n,).
template <typename T>
void rmsprop_update(T* PMD_RESTRICT param, T* PMD_RESTRICT velocity, T* PMD_RESTRICT momentum_buf,
                    T* PMD_RESTRICT average_grad, const T* PMD_RESTRICT grad, int64_t n, double lr,
                    double rho, double momentum, double epsilon, double weight_decay) {
    const T lr_t = T(lr), rho_t = T(rho), one_rho = T(1.0 - rho), mom = T(momentum);
    const T eps = T(epsilon), decay = T(lr * weight_decay);
    const bool decayed = weight_decay != 0.0;
    update_blocks(n, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
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
    });
}

// param, accumulator, grad: (n,).
template <typename T>
void adagrad_update(T* PMD_RESTRICT param, T* PMD_RESTRICT accumulator, const T* PMD_RESTRICT grad,
                    int64_t n, double lr, double epsilon, double weight_decay) {
    const T lr_t = T(lr), eps = T(epsilon), decay = T(lr * weight_decay);
    const bool decayed = weight_decay != 0.0;
    update_blocks(n, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
            T p = param[i];
            const T g = grad[i];
            if (decayed) p -= decay * p;
            const T acc = accumulator[i] + g * g;  // acc += g^2
            accumulator[i] = acc;
            param[i] = p - lr_t * g / std::sqrt(acc + eps);
        }
    });
}

#define PMD_INSTANTIATE(T)                                                                      \
    template void sgd_update<T>(T*, T*, const T*, int64_t, double, double, bool, double);       \
    template void adam_update<T>(T*, T*, T*, T*, const T*, int64_t, double, int64_t, double,    \
                                 double, double, double);                                       \
    template void rmsprop_update<T>(T*, T*, T*, T*, const T*, int64_t, double, double, double,  \
                                    double, double);                                            \
    template void adagrad_update<T>(T*, T*, const T*, int64_t, double, double, double);      \
    template void sgd_update_multi<T>(T* const*, T* const*, const T* const*, const int64_t*,  \
                                      int64_t, double, double, bool, double);                 \
    template void adam_update_multi<T>(T* const*, T* const*, T* const*, T* const*,            \
                                       const T* const*, const int64_t*, int64_t, double,      \
                                       int64_t, double, double, double, double);
PMD_INSTANTIATE(float)
PMD_INSTANTIATE(double)
#undef PMD_INSTANTIATE

}  // namespace pyminidl::kernels
