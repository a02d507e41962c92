// rnn.h — whole-sequence SimpleRNN / LSTM / GRU forward and backpropagation through time, and
// the Embedding gather / scatter-add (float32; see rnn.cpp for the algorithm).
//
// Layouts are Keras's: x (N, T, I) batch-major; kernel W (I, k*U), recurrent kernel R (U, k*U),
// gates in the order LSTM i, f, c, o and GRU z, r, h. mask: (N, T) bytes (0 = masked) or nullptr;
// a masked step carries the state over and repeats the previous output (zeros before the first
// valid step), as Keras's rnn loop. h0/c0/bias/dhT/dcT may be nullptr (zeros / none).
// Caches the forward returns for the backward (all (N, T, .) batch-major):
//   gates  activated gate values of every step (SimpleRNN: the new state),
//   hprev  the state entering every step (cprev: the LSTM cell state),
//   extra  GRU: the recurrent h-part q_h (reset_after) or r * h_{t-1} (reset_after = false).
#pragma once

#include "common.h"

namespace pyminidl::kernels {

// Activation codes the recurrent kernels take (their derivatives follow from the output).
enum RnnAct : int { RNN_TANH = 0, RNN_SIGMOID = 1, RNN_RELU = 2, RNN_HARD_SIGMOID = 3, RNN_LINEAR = 4 };

struct RnnShape {
    int64_t N, T, I, U;
};

// y, gates, hprev: (N, T, U); hT: (N, U). Overwrites every output.
void simple_rnn_forward(float* y, float* hT, float* gates, float* hprev, const float* x, const float* W,
                        const float* R, const float* b, const float* h0, const uint8_t* mask, RnnShape s,
                        int act);
// dx: (N, T, I) or nullptr (not wanted); dW: (I, U); dR: (U, U); db: (U,) or nullptr; dh0: (N, U).
// dy: (N, T, U). work: (N, T, U) scratch.
void simple_rnn_backward(float* dx, float* dW, float* dR, float* db, float* dh0, const float* dy,
                         const float* dhT, const float* x, const float* W, const float* R, const uint8_t* mask,
                         const float* gates, const float* hprev, RnnShape s, int act, float* work);

// y, hprev, cprev: (N, T, U); gates: (N, T, 4U); hT, cT: (N, U).
void lstm_forward(float* y, float* hT, float* cT, float* gates, float* hprev, float* cprev, const float* x,
                  const float* W, const float* R, const float* b, const float* h0, const float* c0,
                  const uint8_t* mask, RnnShape s, int act, int ract);
// dW: (I, 4U); dR: (U, 4U); db: (4U,) or nullptr; dh0, dc0: (N, U). work: (N, T, 4U) scratch.
void lstm_backward(float* dx, float* dW, float* dR, float* db, float* dh0, float* dc0, const float* dy,
                   const float* dhT, const float* dcT, const float* x, const float* W, const float* R,
                   const uint8_t* mask, const float* gates, const float* hprev, const float* cprev, RnnShape s,
                   int act, int ract, float* work);

// y, hprev, extra: (N, T, U); gates: (N, T, 3U); b: (2, 3U) when reset_after else (3U,).
void gru_forward(float* y, float* hT, float* gates, float* hprev, float* extra, const float* x, const float* W,
                 const float* R, const float* b, const float* h0, const uint8_t* mask, RnnShape s, int act,
                 int ract, bool reset_after);
// dW: (I, 3U); dR: (U, 3U); db like b or nullptr; dh0: (N, U). work: 2 * (N, T, 3U) scratch.
void gru_backward(float* dx, float* dW, float* dR, float* db, float* dh0, const float* dy, const float* dhT,
                  const float* x, const float* W, const float* R, const uint8_t* mask, const float* gates,
                  const float* hprev, const float* extra, RnnShape s, int act, int ract, bool reset_after,
                  float* work);

// Inference forward (no backward follows): y (N, T, U), hT (and cT): (N, U); no caches are kept.
// Overwrites every output.
void lstm_inference(float* y, float* hT, float* cT, const float* x, const float* W, const float* R, const float* b,
                    const float* h0, const float* c0, const uint8_t* mask, RnnShape s, int act, int ract);
void simple_rnn_inference(float* y, float* hT, const float* x, const float* W, const float* R, const float* b,
                          const float* h0, const uint8_t* mask, RnnShape s, int act);
// b: (2, 3U) when reset_after else (3U,), or nullptr.
void gru_inference(float* y, float* hT, const float* x, const float* W, const float* R, const float* b,
                   const float* h0, const uint8_t* mask, RnnShape s, int act, int ract, bool reset_after);

// y: (n, D) = table[ids]; ids: (n,) already checked to lie in [0, V).
void embedding_forward(float* y, const int64_t* ids, const float* table, int64_t n, int64_t D);
// dtable: (V, D) = sum of dy rows by id, each row summed in position order (thread-count free).
void embedding_backward(float* dtable, const float* dy, const int64_t* ids, int64_t n, int64_t V, int64_t D);

// Batch rows per thread below which the per-step recurrence runs on fewer threads (measured in
// benchmarks/bench_rnn.py; each thread owns whole rows for the whole sequence, so no barrier runs per step).
int64_t rnn_min_rows_per_thread();

}  // namespace pyminidl::kernels
