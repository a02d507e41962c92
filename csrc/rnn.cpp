// rnn.cpp — the public recurrent entry points (dispatching to the per-ISA copies of
// rnn_impl.h that active_isa() allows) and the Embedding gather / scatter-add.
#define PMD_RNN_ISA baseline
#include "rnn_impl.h"
#include "rnn_infer_impl.h"
#include "rnn_isa.h"

namespace pyminidl::kernels {

// Each thread runs its rows through the whole sequence inside one parallel region (no fork or
// barrier per step), so a split costs one region start per call; 16 rows keeps each thread's
// per-step GEMM at M >= 16. On the shared 2-core test machine (load ~15) 1 vs 2 threads at
// batch 64 x 128 units measured 0.93x (forward + backward): the gain is not confirmed there.
int64_t rnn_min_rows_per_thread() { return 16; }

#if defined(PYMINIDL_X86)
#define PMD_RNN_DISPATCH(fn, ...)                                  \
    switch (active_isa()) {                                        \
        case Isa::avx512: return avx512::fn(__VA_ARGS__);          \
        case Isa::avx2: return avx2::fn(__VA_ARGS__);              \
        default: return baseline::fn(__VA_ARGS__);                 \
    }
#else
#define PMD_RNN_DISPATCH(fn, ...) return baseline::fn(__VA_ARGS__);
#endif

void simple_rnn_forward(float* y, float* hT, float* gates, float* hprev, const float* x, const float* W,
                        const float* R, const float* b, const float* h0, const uint8_t* mask, RnnShape s, int act) {
    PMD_RNN_DISPATCH(simple_rnn_forward, y, hT, gates, hprev, x, W, R, b, h0, mask, s, act)
}

void simple_rnn_backward(float* dx, float* dW, float* dR, float* db, float* dh0, const float* dy,
                         const float* dhT, const float* x, const float* W, const float* R, const uint8_t* mask,
                         const float* gates, const float* hprev, RnnShape s, int act, float* work) {
    PMD_RNN_DISPATCH(simple_rnn_backward, dx, dW, dR, db, dh0, dy, dhT, x, W, R, mask, gates, hprev, s, act, work)
}

void lstm_forward(float* y, float* hT, float* cT, float* gates, float* hprev, float* cprev, const float* x,
                  const float* W, const float* R, const float* b, const float* h0, const float* c0,
                  const uint8_t* mask, RnnShape s, int act, int ract) {
    PMD_RNN_DISPATCH(lstm_forward, y, hT, cT, gates, hprev, cprev, x, W, R, b, h0, c0, mask, s, act, ract)
}

void lstm_backward(float* dx, float* dW, float* dR, float* db, float* dh0, float* dc0, const float* dy,
                   const float* dhT, const float* dcT, const float* x, const float* W, const float* R,
                   const uint8_t* mask, const float* gates, const float* hprev, const float* cprev, RnnShape s,
                   int act, int ract, float* work) {
    PMD_RNN_DISPATCH(lstm_backward, dx, dW, dR, db, dh0, dc0, dy, dhT, dcT, x, W, R, mask, gates, hprev, cprev, s,
                     act, ract, work)
}

void gru_forward(float* y, float* hT, float* gates, float* hprev, float* extra, const float* x, const float* W,
                 const float* R, const float* b, const float* h0, const uint8_t* mask, RnnShape s, int act,
                 int ract, bool reset_after) {
    PMD_RNN_DISPATCH(gru_forward, y, hT, gates, hprev, extra, x, W, R, b, h0, mask, s, act, ract, reset_after)
}

void gru_backward(float* dx, float* dW, float* dR, float* db, float* dh0, const float* dy, const float* dhT,
                  const float* x, const float* W, const float* R, const uint8_t* mask, const float* gates,
                  const float* hprev, const float* extra, RnnShape s, int act, int ract, bool reset_after,
                  float* work) {
    PMD_RNN_DISPATCH(gru_backward, dx, dW, dR, db, dh0, dy, dhT, x, W, R, mask, gates, hprev, extra, s, act, ract,
                     reset_after, work)
}

void lstm_inference(float* y, float* hT, float* cT, const float* x, const float* W, const float* R, const float* b,
                    const float* h0, const float* c0, const uint8_t* mask, RnnShape s, int act, int ract) {
    PMD_RNN_DISPATCH(lstm_inference, y, hT, cT, x, W, R, b, h0, c0, mask, s, act, ract)
}

void simple_rnn_inference(float* y, float* hT, const float* x, const float* W, const float* R, const float* b,
                          const float* h0, const uint8_t* mask, RnnShape s, int act) {
    PMD_RNN_DISPATCH(simple_rnn_inference, y, hT, x, W, R, b, h0, mask, s, act)
}

void gru_inference(float* y, float* hT, const float* x, const float* W, const float* R, const float* b,
                   const float* h0, const uint8_t* mask, RnnShape s, int act, int ract, bool reset_after) {
    PMD_RNN_DISPATCH(gru_inference, y, hT, x, W, R, b, h0, mask, s, act, ract, reset_after)
}

// ---------------------------------------------------------------- Embedding

void embedding_forward(float* y, const int64_t* ids, const float* table, int64_t n, int64_t D) {
    parallel_blocks(n, D, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) std::copy_n(table + ids[i] * D, D, y + i * D);
    });
}

// Each thread owns a range of table rows and scans every position in order, adding the rows
// whose id it owns: repeated ids never race and every row is summed in position order.
void embedding_backward(float* dtable, const float* dy, const int64_t* ids, int64_t n, int64_t V, int64_t D) {
    parallel_blocks(V, std::max<int64_t>(1, n * D / std::max<int64_t>(V, 1)), [&](int64_t lo, int64_t hi) {
        std::fill(dtable + lo * D, dtable + hi * D, 0.0f);
        for (int64_t i = 0; i < n; ++i) {
            const int64_t v = ids[i];
            if (v < lo || v >= hi) continue;
            float* PMD_RESTRICT d = dtable + v * D;
            const float* PMD_RESTRICT g = dy + i * D;
            for (int64_t j = 0; j < D; ++j) d[j] += g[j];
        }
    });
}

}  // namespace pyminidl::kernels
