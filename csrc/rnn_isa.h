// rnn_isa.h — the per-ISA copies of the recurrent kernels (rnn_impl.h compiled into
// baseline::, avx2::, avx512::), declared for rnn.cpp's dispatch.
#pragma once

#include "rnn.h"

namespace pyminidl::kernels {
namespace baseline {
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

}  // namespace baseline
namespace avx2 {
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

}  // namespace avx2
namespace avx512 {
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

}  // namespace avx512
}  // namespace pyminidl::kernels
