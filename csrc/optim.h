// optim.h — see optim.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// Fused, in-place optimizer updates of Keras 3. Every array is (n,) contiguous (a parameter
// and its slots flattened). param and the slots are updated in place (read, then written);
// grad is read only. A null slot means the option that needs it is off. weight_decay is
// decoupled and applied first: param -= lr * weight_decay * param.

// param, velocity (or nullptr: plain SGD), grad: (n,).
template <typename T>
void sgd_update(T* param, T* velocity, const T* grad, int64_t n, double lr, double momentum,
                bool nesterov, double weight_decay);

// param, m, v, vhat (nullptr unless amsgrad), grad: (n,). step counts from 1.
template <typename T>
void adam_update(T* param, T* m, T* v, T* vhat, const T* grad, int64_t n, double lr, int64_t step,
                 double beta_1, double beta_2, double epsilon, double weight_decay);

// param, velocity, momentum_buf (nullptr when momentum == 0), average_grad (nullptr unless
// centered), grad: (n,).
template <typename T>
void rmsprop_update(T* param, T* velocity, T* momentum_buf, T* average_grad, const T* grad,
                    int64_t n, double lr, double rho, double momentum, double epsilon,
                    double weight_decay);

// params[j], velocities[j] (or velocities == nullptr: plain SGD), grads[j]: (sizes[j],) for
// j < count; one parallel region over all the tensors.
template <typename T>
void sgd_update_multi(T* const* params, T* const* velocities, const T* const* grads, const int64_t* sizes,
                      int64_t count, double lr, double momentum, bool nesterov, double weight_decay);

// params[j], ms[j], vs[j], vhats[j] (or vhats == nullptr unless amsgrad), grads[j]: (sizes[j],)
// for j < count; one parallel region over all the tensors. step counts from 1.
template <typename T>
void adam_update_multi(T* const* params, T* const* ms, T* const* vs, T* const* vhats, const T* const* grads,
                       const int64_t* sizes, int64_t count, double lr, int64_t step, double beta_1,
                       double beta_2, double epsilon, double weight_decay);

// param, accumulator, grad: (n,).
template <typename T>
void adagrad_update(T* param, T* accumulator, const T* grad, int64_t n, double lr, double epsilon,
                    double weight_decay);

}  // namespace pyminidl::kernels
