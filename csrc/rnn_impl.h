// rnn_impl.h — SimpleRNN / LSTM / GRU over a whole sequence, forward and backward through time.
// Compiled once per ISA path (rnn.cpp baseline, rnn_avx2.cpp, rnn_avx512.cpp) into the namespace
// PMD_RNN_ISA names, so the pointwise loops (exp/tanh polynomials) run 4, 8 or 16 lanes wide;
// rnn.cpp dispatches on active_isa().
//
// Forward: the input projection of every step is one (threaded) GEMM, x (N*T, I) W (+ b for
// SimpleRNN and LSTM), written into the gates buffer; then each step runs the recurrent GEMM
// h_{t-1} R on the rows of the batch (SimpleRNN and LSTM: accumulated straight onto the step's
// gate rows) and one fused pointwise pass (gate activations, state update, mask carry) that
// overwrites the pre-activations with the gate values the backward needs. The recurrent kernel
// is packed into the GEMM's panels once per call (StepB), not once per step. Rows of the batch are
// independent through time, so each thread owns a block of rows for the whole sequence: the
// per-step GEMMs are sgemm_serial calls on the thread's rows, with its own workspace, and no
// barrier runs per step. The state entering each step is stored batch-major (hprev), so the
// per-step GEMM reads it with leading dimension T*U and the backward's weight gradients are one
// GEMM over all N*T rows: dW = x^T dz, dR = hprev^T dz (GRU: dx = dz W^T too).
// Backward: the per-step recurrence (dz_t, then dh_{t-1} = pass + dz_t R^T) runs on the same
// row blocks; masked rows get dz = 0, keep dh/dc and carry their output gradient one step back.
// SimpleRNN and LSTM fold dx into the step's product ([dx_t | dh] = dz_t [W; R]^T) and sum db per
// row as dz is made (BackProduct, back_rows), so no pass after the loop re-reads all of dz for them.
// The training loops prefetch each row's span of the next step (prefetch_span).
// Results are independent of the thread count within rounding (per-row math is the same; only
// the GEMM's row blocking changes) and bit-identical run to run.
// Reference: Keras's rnn loop (keras/src/backend/*/rnn.py), the LSTM of Hochreiter &
// Schmidhuber 1997 with forget gate, the GRU of Cho et al. 2014 (reset_after as cuDNN).
#pragma once

#include "rnn.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fastmath.h"
#include "gemm.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace PMD_RNN_ISA {
namespace {

// 1 / (1 + e^-x), with -x clamped to [-87, 88] (selects; NaN is put back) so that e^-x takes
// exp_normal_f's one scaling: below, 1 + e^-x is 1 in float anyway; above (x < -88), the gate
// is 6.1e-39 instead of a smaller denormal or 0.
PMD_ALWAYS_INLINE float sigmoid_f(float x) {
    float t = -x > -87.0f ? -x : -87.0f;
    t = t < 88.0f ? t : 88.0f;
    const float s = 1.0f / (1.0f + exp_normal_f(t));
    return x != x ? x : s;
}

PMD_ALWAYS_INLINE float act_apply(int code, float x) {
    switch (code) {
        case RNN_TANH: return tanh_f(x);
        case RNN_SIGMOID: return sigmoid_f(x);
        case RNN_RELU: return x > 0.0f ? x : 0.0f;
        case RNN_HARD_SIGMOID: return std::min(1.0f, std::max(0.0f, x / 6.0f + 0.5f));
        default: return x;
    }
}

// d act / dx from the output y = act(x).
PMD_ALWAYS_INLINE float act_grad(int code, float y) {
    switch (code) {
        case RNN_TANH: return 1.0f - y * y;
        case RNN_SIGMOID: return y * (1.0f - y);
        case RNN_RELU: return y > 0.0f ? 1.0f : 0.0f;
        case RNN_HARD_SIGMOID: return (y > 0.0f && y < 1.0f) ? 1.0f / 6.0f : 0.0f;
        default: return 1.0f;
    }
}

// Keras's defaults, inlined so the pointwise loops vectorise; other pairs take the switch.
struct DefaultActs {
    PMD_ALWAYS_INLINE float act(float x) const { return tanh_f(x); }
    PMD_ALWAYS_INLINE float dact(float y) const { return 1.0f - y * y; }
    PMD_ALWAYS_INLINE float ract(float x) const { return sigmoid_f(x); }
    PMD_ALWAYS_INLINE float dract(float y) const { return y * (1.0f - y); }
};
struct CodeActs {
    int a, ra;
    PMD_ALWAYS_INLINE float act(float x) const { return act_apply(a, x); }
    PMD_ALWAYS_INLINE float dact(float y) const { return act_grad(a, y); }
    PMD_ALWAYS_INLINE float ract(float x) const { return act_apply(ra, x); }
    PMD_ALWAYS_INLINE float dract(float y) const { return act_grad(ra, y); }
};

template <class F>
void with_acts(int act, int ract, F body) {
    if (act == RNN_TANH && ract == RNN_SIGMOID) body(DefaultActs{});
    else body(CodeActs{act, ract});
}

// body(lo, hi) on blocks of batch rows, one per thread, at least min_rows rows each.
template <class F>
void over_row_blocks(int64_t n, F body, int64_t min_rows = rnn_min_rows_per_thread()) {
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(omp_max_threads(), n / min_rows));
    team_region(int(parts), [&] {
        int64_t lo, hi;
        team_range(n, &lo, &hi);
        if (lo < hi) body(lo, hi);
    });
}

// The state entering step t of row n (t == T: the final state).
PMD_ALWAYS_INLINE float* slot(float* prev, float* last, const RnnShape& s, int64_t n, int64_t t) {
    return t < s.T ? prev + (n * s.T + t) * s.U : last + n * s.U;
}

void init_state(float* prev, float* last, const float* init, const RnnShape& s, int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
        float* d = slot(prev, last, s, n, 0);
        if (init) std::copy_n(init + n * s.U, s.U, d);
        else std::fill(d, d + s.U, 0.0f);
    }
}

// After row n's step t: a masked step keeps the state and repeats the previous output.
void finish_row(float* y, float* next, const float* cur, const RnnShape& s, int64_t n, int64_t t, bool valid) {
    float* yo = y + (n * s.T + t) * s.U;
    if (valid) {
        std::copy_n(next, s.U, yo);
        return;
    }
    std::copy_n(cur, s.U, next);
    if (t > 0) std::copy_n(yo - s.U, s.U, yo);
    else std::fill(yo, yo + s.U, 0.0f);
}

// After a masked step t of row n whose valid output was written in place: keep the state and
// repeat the previous output instead (finish_row's masked half).
void mask_row(float* y, float* next, const float* cur, const RnnShape& s, int64_t n, int64_t t) {
    finish_row(y, next, cur, s, n, t, false);
}

PMD_ALWAYS_INLINE bool valid_at(const uint8_t* mask, const RnnShape& s, int64_t n, int64_t t) {
    return mask == nullptr || mask[n * s.T + t] != 0;
}

// Batch-major caches put a row's consecutive steps next to each other but its neighbouring rows
// T steps apart (a multiple of 4 KiB whenever T k U is one of 1024): each step touches one short
// span per row in as many pages, more streams than the hardware prefetcher follows, so every row
// of every step waited on memory. The training loops prefetch each row's span of the step they
// run next (into L2: the spans of all rows of a step share a few L1 sets) while they run this one.
PMD_ALWAYS_INLINE void prefetch_span(const float* p, int64_t n, bool for_write) {
    for (int64_t j = 0; j < n; j += 16) {
        if (for_write) __builtin_prefetch(p + j, 1, 2);
        else __builtin_prefetch(p + j, 0, 2);
    }
}

// pre += q + b over n elements (b may be nullptr): the gates' pre-activations of one row.
PMD_ALWAYS_INLINE void add_pre(float* PMD_RESTRICT g, const float* PMD_RESTRICT q, const float* PMD_RESTRICT b,
                               int64_t n) {
    if (b) {
        for (int64_t u = 0; u < n; ++u) g[u] += q[u] + b[u];
    } else {
        for (int64_t u = 0; u < n; ++u) g[u] += q[u];
    }
}

PMD_ALWAYS_INLINE void add_bias(float* PMD_RESTRICT g, const float* PMD_RESTRICT b, int64_t n) {
    if (b)
        for (int64_t u = 0; u < n; ++u) g[u] += b[u];
}

// Per-thread buffers of one row block: GEMM workspace and the recurrent products.
struct RowScratch {
    std::vector<float> work, q;
    RowScratch(int64_t rows, int64_t cols, int64_t k, int64_t q_elems)
        : work(size_t(std::max<int64_t>(1, sgemm_workspace_elems(rows, cols, k)))), q(size_t(q_elems)) {}
};


// op(B) (k, cols) of a per-step product, the same at every step of the sequence: packed once per
// call into the GEMM's panels (shared read-only by the row-block threads), so that no step
// re-packs it. Built before the parallel region.
class StepB {
public:
    StepB(const float* b, int64_t ldb, bool tb, int64_t k, int64_t cols)
        : b_(b), ldb_(std::max<int64_t>(ldb, 1)), tb_(tb), k_(k), cols_(cols) {
        if (!prepack_pays(k, cols)) return;
        // The micro-kernels load packed panels with aligned 64-byte loads: 16 floats of slack.
        store_.resize(size_t(sgemm_packed_b_elems(cols, k) + 16));
        const auto at = reinterpret_cast<std::uintptr_t>(store_.data());
        packed_ = reinterpret_cast<float*>((at + 63) / 64 * 64);
        sgemm_pack_b(packed_, b, ldb_, tb, cols, k);
    }
    StepB(const StepB&) = delete;  // packed_ points into store_
    StepB& operator=(const StepB&) = delete;
    // C (rows, cols) = beta C + A (rows, k) op(B), serially on this thread.
    void run(float* c, int64_t ldc, const float* a, int64_t lda, int64_t rows, float beta, RowScratch& sc) const {
        const int64_t lc = std::max<int64_t>(ldc, 1), la = std::max<int64_t>(lda, 1);
        if (packed_ == nullptr) {
            sgemm_serial(c, lc, a, la, false, b_, ldb_, tb_, rows, cols_, k_, 1.0f, beta, sc.work.data(),
                         int64_t(sc.work.size()));
        } else {
            sgemm_serial_packed_b(c, lc, a, la, false, packed_, rows, cols_, k_, 1.0f, beta, sc.work.data(),
                                  int64_t(sc.work.size()));
        }
    }
    int64_t k() const { return k_; }
    int64_t cols() const { return cols_; }

private:
    // Measured (batch 64, 80 steps, 128 units, 2 threads, both ISA paths): packing once is
    // 1.05-1.15x faster than the per-step product (which packs R on every call on the AVX2 path
    // and reads it unpacked on the AVX-512 direct path).
    static bool prepack_pays(int64_t k, int64_t cols) { return k > 0 && cols > 0; }
    const float* b_;
    int64_t ldb_;
    bool tb_;
    int64_t k_, cols_;
    std::vector<float> store_;
    float* packed_ = nullptr;
};

// gates (N*T, G) = x (N*T, I) W (I, G): the input projection of every step.
void input_projection(float* gates, const float* x, const float* W, const RnnShape& s, int64_t G) {
    sgemm(gates, std::max<int64_t>(G, 1), x, std::max<int64_t>(s.I, 1), false, W, std::max<int64_t>(G, 1), false,
          s.N * s.T, G, s.I, 1.0f, 0.0f);
}

// gates (N*T, G) = x W + b (b may be nullptr), for kernels whose recurrent product then
// accumulates straight onto each step's gate rows (beta = 1, no separate h R buffer or add pass).
void input_projection_bias(float* gates, const float* x, const float* W, const float* b, const RnnShape& s,
                           int64_t G) {
    if (b == nullptr) return input_projection(gates, x, W, s, G);
    dense_forward(gates, x, std::max<int64_t>(s.I, 1), false, W, std::max<int64_t>(G, 1), false, b, s.N * s.T, s.I, G);
}

// dW = x^T dz, dR(:, cols) = h^T dz(:, cols), dx = dz W^T; one GEMM each over every step.
void weight_grads(float* dx, float* dW, const float* dz, const float* x, const float* W, const RnnShape& s,
                  int64_t G) {
    const int64_t NT = s.N * s.T, g1 = std::max<int64_t>(G, 1), i1 = std::max<int64_t>(s.I, 1);
    sgemm(dW, g1, x, i1, true, dz, g1, false, s.I, G, NT, 1.0f, 0.0f);
    if (dx) sgemm(dx, i1, dz, g1, false, W, g1, true, NT, s.I, G, 1.0f, 0.0f);
}

void recurrent_grad(float* dR, int64_t ldr, const float* h, const float* dz, int64_t lddz, const RnnShape& s,
                    int64_t cols) {
    sgemm(dR, std::max<int64_t>(ldr, 1), h, std::max<int64_t>(s.U, 1), true, dz, std::max<int64_t>(lddz, 1), false,
          s.U, cols, s.N * s.T, 1.0f, 0.0f);
}

// The per-step product of the SimpleRNN / LSTM backward: [dx_t | dh] += dz_t [W; R]^T, one GEMM of
// K = G against [W; R] packed once per call. dx is produced step by step from the dz rows the
// pointwise pass has just written (still in cache), not by a GEMM over all N*T rows afterwards
// that re-reads and re-packs the whole (N, T, G) dz. Without dx (not wanted) only R is stacked.
// Each thread's rows live in a (rows, KX) buffer: dx_t in the first XI columns, dh after them.
struct BackProduct {
    int64_t XI, KX;
    std::vector<float> wr;  // [W; R] ((XI + U), G)
    StepB b;
    BackProduct(const float* W, const float* R, const RnnShape& s, int64_t G, bool want_dx)
        : XI(want_dx ? s.I : 0), KX(XI + s.U), wr(stacked(W, R, XI, s.U, G)), b(wr.data(), G, true, G, KX) {}
    static std::vector<float> stacked(const float* W, const float* R, int64_t XI, int64_t U, int64_t G) {
        std::vector<float> v(size_t(std::max<int64_t>(1, (XI + U) * G)));
        std::copy_n(W, XI * G, v.data());
        std::copy_n(R, U * G, v.data() + XI * G);
        return v;
    }
};

// One thread's backward state: dxh (rows, KX) as BackProduct lays it out, dc (rows, U) (LSTM),
// carry (rows, U) the output gradients of masked steps, kept (rows, U) the dh a masked step
// passes on (the product overwrites dh), and the GEMM workspace.
struct BackRows {
    RowScratch sc;
    float *dxh, *dc, *carry, *kept;
    int64_t KX, XI;
    BackRows(const BackProduct& p, const RnnShape& s, int64_t G, int64_t lo, int64_t hi, const float* dhT,
             const float* dcT)
        : sc(hi - lo, p.KX, G, (hi - lo) * (p.KX + 3 * s.U)), KX(p.KX), XI(p.XI) {
        const int64_t rows = hi - lo, U = s.U;
        dxh = sc.q.data(), dc = dxh + rows * KX, carry = dc + rows * U, kept = carry + rows * U;
        for (int64_t r = 0; r < rows; ++r) {
            float* dh = dxh + r * KX + XI;
            for (int64_t u = 0; u < U; ++u) {
                dh[u] = dhT ? dhT[(lo + r) * U + u] : 0.0f;
                dc[r * U + u] = dcT ? dcT[(lo + r) * U + u] : 0.0f;
                carry[r * U + u] = 0.0f;
            }
        }
    }
    float* dh(int64_t r) { return dxh + r * KX + XI; }
    // After the rows' pointwise pass of step t: [dx_t | dh] = dz_t [W; R]^T (beta = 0: nothing to
    // clear first), the dh of masked rows put back, then dx_t out to its rows.
    void product(float* dx, const float* dz, const uint8_t* mask, const BackProduct& p, const RnnShape& s,
                 int64_t G, int64_t lo, int64_t hi, int64_t t) {
        p.b.run(dxh, KX, dz + (lo * s.T + t) * G, s.T * G, hi - lo, 0.0f, sc);
        for (int64_t n = lo; n < hi && mask; ++n)
            if (!valid_at(mask, s, n, t)) std::copy_n(kept + (n - lo) * s.U, s.U, dh(n - lo));
        for (int64_t n = lo; n < hi && XI > 0; ++n) std::copy_n(dxh + (n - lo) * KX, XI, dx + (n * s.T + t) * s.I);
    }
    void store_final(float* dh0, float* dc0, const RnnShape& s, int64_t lo, int64_t hi) {
        for (int64_t r = 0; r < hi - lo; ++r) {
            std::copy_n(dh(r), s.U, dh0 + (lo + r) * s.U);
            if (dc0) std::copy_n(dc + r * s.U, s.U, dc0 + (lo + r) * s.U);
        }
    }
};

// acc += z over n elements: a row's bias gradient, summed over the steps in order (T-1 down to 0).
PMD_ALWAYS_INLINE void accumulate_row(float* PMD_RESTRICT acc, const float* PMD_RESTRICT z, int64_t n) {
    for (int64_t j = 0; j < n; ++j) acc[j] += z[j];
}

// db (G,) = the rows of per_row (N, G) summed in row order: with each row's own sum over its
// steps, db does not depend on how rows are split over threads (and no pass re-reads dz).
void sum_rows(float* db, const float* per_row, int64_t N, int64_t G) {
    std::fill(db, db + G, 0.0f);
    for (int64_t n = 0; n < N; ++n) accumulate_row(db, per_row + n * G, G);
}

struct SeqBack {  // the SimpleRNN / LSTM backward's arrays, shared by the row-block loops
    float *dz, *dx, *dbrows;  // dz (N, T, G); dx (N, T, I) or nullptr; dbrows (N, G) or nullptr
    float *dh0, *dc0;         // (N, U); dc0 nullptr for SimpleRNN
    const float *dy, *dhT, *dcT, *gates, *cprev;
    const uint8_t* mask;
    const BackProduct& p;
};

// What the backward of row-step `at` reads and writes (the step before the one running now).
PMD_ALWAYS_INLINE void prefetch_step(const SeqBack& k, int64_t G, int64_t U, int64_t at) {
    prefetch_span(k.gates + at * G, G, false);
    prefetch_span(k.dy + at * U, U, false);
    if (k.cprev) prefetch_span(k.cprev + at * U, U, false);
    prefetch_span(k.dz + at * G, G, true);
}

// The backward through time of rows [lo, hi): at each step (last first) every row's pointwise
// pass, cell(z, dh, dc, carry, at) for a valid step (z = dL/dpre; dh read, then overwritten by
// the product), then the step's product. A masked step passes dh (and dc) on unchanged, gets
// dz = 0, and carries its output gradient one step back.
template <class Cell>
void back_rows(const SeqBack& k, const RnnShape& s, int64_t G, int64_t lo, int64_t hi, Cell cell) {
    const int64_t U = s.U;
    BackRows st(k.p, s, G, lo, hi, k.dhT, k.dcT);
    if (k.dbrows) std::fill(k.dbrows + lo * G, k.dbrows + hi * G, 0.0f);
    for (int64_t t = s.T - 1; t >= 0; --t) {
        for (int64_t n = lo; n < hi; ++n) {
            const int64_t at = n * s.T + t, r = n - lo;
            float *z = k.dz + at * G, *carry = st.carry + r * U;
            if (!valid_at(k.mask, s, n, t)) {
                for (int64_t u = 0; u < U; ++u) carry[u] += k.dy[at * U + u];
                std::fill(z, z + G, 0.0f);
                std::copy_n(st.dh(r), U, st.kept + r * U);
                continue;
            }
            if (t > 0) prefetch_step(k, G, U, at - 1);
            cell(z, st.dh(r), st.dc + r * U, carry, at);
            if (k.dbrows) accumulate_row(k.dbrows + n * G, z, G);
        }
        st.product(k.dx, k.dz, k.mask, k.p, s, G, lo, hi, t);
    }
    st.store_final(k.dh0, k.dc0, s, lo, hi);
}

}  // namespace


// ---------------------------------------------------------------- SimpleRNN

namespace {

// What the forward of row n at step t writes: its gate row (which the step's product updates),
// y at t, and hprev / cprev (nullptr: none) at t + 1, the state step t leaves.
PMD_ALWAYS_INLINE void prefetch_forward_step(const float* gates, int64_t G, const float* y, const float* hprev,
                                             const float* cprev, const RnnShape& s, int64_t n, int64_t t) {
    const int64_t at = n * s.T + t;
    prefetch_span(gates + at * G, G, true);
    prefetch_span(y + at * s.U, s.U, true);
    if (t + 1 == s.T) return;
    prefetch_span(hprev + (at + 1) * s.U, s.U, true);
    if (cprev) prefetch_span(cprev + (at + 1) * s.U, s.U, true);
}

// gates hold x W + b already; each step's h R accumulates onto its rows.
template <class A>
void simple_rnn_rows(float* y, float* hT, float* gates, float* hprev, const StepB& R, const uint8_t* mask,
                     const RnnShape& s, A acts, int64_t lo, int64_t hi) {
    const int64_t U = s.U, rows = hi - lo;
    RowScratch sc(rows, U, U, 0);
    for (int64_t t = 0; t < s.T; ++t) {
        R.run(gates + (lo * s.T + t) * U, s.T * U, slot(hprev, hT, s, lo, t), s.T * U, rows, 1.0f, sc);
        for (int64_t n = lo; n < hi; ++n) {
            float* PMD_RESTRICT g = gates + (n * s.T + t) * U;
            float* PMD_RESTRICT next = slot(hprev, hT, s, n, t + 1);
            if (t + 1 < s.T) prefetch_forward_step(gates, U, y, hprev, nullptr, s, n, t + 1);
            float* PMD_RESTRICT yo = y + (n * s.T + t) * U;
            for (int64_t u = 0; u < U; ++u) g[u] = next[u] = yo[u] = acts.act(g[u]);  // h_t = act(x W + h R + b)
            if (!valid_at(mask, s, n, t)) mask_row(y, next, slot(hprev, hT, s, n, t), s, n, t);
        }
    }
}

template <class A>
void simple_rnn_back_rows(const SeqBack& k, const RnnShape& s, A acts, int64_t lo, int64_t hi) {
    const int64_t U = s.U;
    back_rows(k, s, U, lo, hi, [&](float* PMD_RESTRICT z, float* PMD_RESTRICT d, float*, float* PMD_RESTRICT c,
                                   int64_t at) {
        const float* PMD_RESTRICT dy = k.dy + at * U;
        const float* PMD_RESTRICT g = k.gates + at * U;
        for (int64_t u = 0; u < U; ++u) {
            const float dhn = d[u] + dy[u] + c[u];
            z[u] = dhn * acts.dact(g[u]);  // dL/dpre = dh * act'(pre)
            c[u] = 0.0f;
        }
    });
}

}  // namespace

void simple_rnn_forward(float* y, float* hT, float* gates, float* hprev, const float* x, const float* W,
                        const float* R, const float* b, const float* h0, const uint8_t* mask, RnnShape s, int act) {
    input_projection_bias(gates, x, W, b, s, s.U);
    const StepB rb(R, s.U, false, s.U, s.U);
    with_acts(act, RNN_SIGMOID, [&](auto acts) {
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) {
            init_state(hprev, hT, h0, s, lo, hi);
            simple_rnn_rows(y, hT, gates, hprev, rb, mask, s, acts, lo, hi);
        });
    });
}

void simple_rnn_backward(float* dx, float* dW, float* dR, float* db, float* dh0, const float* dy,
                         const float* dhT, const float* x, const float* W, const float* R, const uint8_t* mask,
                         const float* gates, const float* hprev, RnnShape s, int act, float* work) {
    const BackProduct p(W, R, s, s.U, dx != nullptr);
    std::vector<float> dbrows(db ? size_t(s.N * s.U) : 0);
    const SeqBack k{work, dx, db ? dbrows.data() : nullptr, dh0, nullptr, dy, dhT, nullptr, gates, nullptr, mask, p};
    with_acts(act, RNN_SIGMOID, [&](auto acts) {
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) { simple_rnn_back_rows(k, s, acts, lo, hi); });
    });
    weight_grads(nullptr, dW, work, x, W, s, s.U);
    recurrent_grad(dR, s.U, hprev, work, s.U, s, s.U);
    if (db) sum_rows(db, dbrows.data(), s.N, s.U);
}

// ---------------------------------------------------------------- LSTM

namespace {

// One row's cell: activations in separate unit-stride loops (each vectorises), then the update.
// g: the row's pre-activations x W + b + h R on entry, the gate values on exit; h_t goes to both
// the next state hn and the output yo (no second pass copies one to the other).
template <class A>
void lstm_cell_row(float* PMD_RESTRICT g, float* PMD_RESTRICT hn, float* PMD_RESTRICT yo, float* PMD_RESTRICT cn,
                   const float* PMD_RESTRICT c, int64_t U, A acts) {
    for (int64_t u = 0; u < 2 * U; ++u) g[u] = acts.ract(g[u]);
    for (int64_t u = 2 * U; u < 3 * U; ++u) g[u] = acts.act(g[u]);
    for (int64_t u = 3 * U; u < 4 * U; ++u) g[u] = acts.ract(g[u]);
    const float *i = g, *f = g + U, *gg = g + 2 * U, *o = g + 3 * U;
    for (int64_t u = 0; u < U; ++u) cn[u] = f[u] * c[u] + i[u] * gg[u];  // c_t = f c_{t-1} + i g
    for (int64_t u = 0; u < U; ++u) hn[u] = yo[u] = o[u] * acts.act(cn[u]);  // h_t = o act(c_t)
}

template <class A>
void lstm_rows(float* y, float* hT, float* cT, float* gates, float* hprev, float* cprev, const StepB& R,
               const uint8_t* mask, const RnnShape& s, A acts, int64_t lo, int64_t hi) {
    const int64_t U = s.U, G = 4 * U, rows = hi - lo;
    RowScratch sc(rows, G, U, 0);
    for (int64_t t = 0; t < s.T; ++t) {
        R.run(gates + (lo * s.T + t) * G, s.T * G, slot(hprev, hT, s, lo, t), s.T * U, rows, 1.0f, sc);
        for (int64_t n = lo; n < hi; ++n) {
            float* cnext = slot(cprev, cT, s, n, t + 1);
            const float* ccur = slot(cprev, cT, s, n, t);
            float* hnext = slot(hprev, hT, s, n, t + 1);
            const bool valid = valid_at(mask, s, n, t);
            if (t + 1 < s.T) prefetch_forward_step(gates, G, y, hprev, cprev, s, n, t + 1);
            lstm_cell_row(gates + (n * s.T + t) * G, hnext, y + (n * s.T + t) * U, cnext, ccur, U, acts);
            if (valid) continue;
            std::copy_n(ccur, U, cnext);
            mask_row(y, hnext, slot(hprev, hT, s, n, t), s, n, t);
        }
    }
}

// One valid row of the LSTM backward step: dz from dh (+ the output gradients) and dc; dc becomes
// dL/dc_{t-1} (dh becomes dz R^T in the step's product).
template <class A>
void lstm_back_row(float* PMD_RESTRICT z, float* PMD_RESTRICT dh, float* PMD_RESTRICT dc, float* PMD_RESTRICT carry,
                   const float* PMD_RESTRICT dy, const float* PMD_RESTRICT g, const float* PMD_RESTRICT cp, int64_t U,
                   A acts) {
    for (int64_t u = 0; u < U; ++u) {
        const float i = g[u], f = g[U + u], gg = g[2 * U + u], o = g[3 * U + u];
        const float a = acts.act(f * cp[u] + i * gg);
        const float dhn = dh[u] + dy[u] + carry[u];
        const float dcn = dc[u] + dhn * o * acts.dact(a);  // dL/dc_t = dc + dh o act'(c_t)
        z[u] = dcn * gg * acts.dract(i);
        z[U + u] = dcn * cp[u] * acts.dract(f);
        z[2 * U + u] = dcn * i * acts.dact(gg);
        z[3 * U + u] = dhn * a * acts.dract(o);
        dc[u] = dcn * f;
        carry[u] = 0.0f;
    }
}

template <class A>
void lstm_back_rows(const SeqBack& k, const RnnShape& s, A acts, int64_t lo, int64_t hi) {
    const int64_t U = s.U, G = 4 * U;
    back_rows(k, s, G, lo, hi, [&](float* z, float* dh, float* dc, float* carry, int64_t at) {
        lstm_back_row(z, dh, dc, carry, k.dy + at * U, k.gates + at * G, k.cprev + at * U, U, acts);
    });
}

}  // namespace

void lstm_forward(float* y, float* hT, float* cT, float* gates, float* hprev, float* cprev, const float* x,
                  const float* W, const float* R, const float* b, const float* h0, const float* c0,
                  const uint8_t* mask, RnnShape s, int act, int ract) {
    input_projection_bias(gates, x, W, b, s, 4 * s.U);
    const StepB rb(R, 4 * s.U, false, s.U, 4 * s.U);
    with_acts(act, ract, [&](auto acts) {
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) {
            init_state(hprev, hT, h0, s, lo, hi);
            init_state(cprev, cT, c0, s, lo, hi);
            lstm_rows(y, hT, cT, gates, hprev, cprev, rb, mask, s, acts, lo, hi);
        });
    });
}

void lstm_backward(float* dx, float* dW, float* dR, float* db, float* dh0, float* dc0, const float* dy,
                   const float* dhT, const float* dcT, const float* x, const float* W, const float* R,
                   const uint8_t* mask, const float* gates, const float* hprev, const float* cprev, RnnShape s,
                   int act, int ract, float* work) {
    const int64_t G = 4 * s.U;
    const BackProduct p(W, R, s, G, dx != nullptr);
    std::vector<float> dbrows(db ? size_t(s.N * G) : 0);
    const SeqBack k{work, dx, db ? dbrows.data() : nullptr, dh0, dc0, dy, dhT, dcT, gates, cprev, mask, p};
    with_acts(act, ract, [&](auto acts) {
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) { lstm_back_rows(k, s, acts, lo, hi); });
    });
    weight_grads(nullptr, dW, work, x, W, s, G);
    recurrent_grad(dR, G, hprev, work, G, s, G);
    if (db) sum_rows(db, dbrows.data(), s.N, G);
}

// ---------------------------------------------------------------- GRU

namespace {

struct GruBias {  // the input-side and recurrent-side biases (reset_after) or one bias; nullptr: none
    const float *in, *rec;
};

// reset_after: z, r = ract(xW + b_in + q + b_rec); hh = act(xW_h + b_in_h + r (q_h + b_rec_h)).
// q (this row's h R) is scratch and takes the recurrent bias in place.
template <class A>
void gru_after_row(float* PMD_RESTRICT g, float* PMD_RESTRICT hn, float* PMD_RESTRICT ex, float* PMD_RESTRICT q,
                   const float* PMD_RESTRICT hp, GruBias b, int64_t U, A acts) {
    add_bias(q, b.rec, 3 * U);
    add_bias(g, b.in, 3 * U);
    add_pre(g, q, nullptr, 2 * U);
    for (int64_t u = 0; u < 2 * U; ++u) g[u] = acts.ract(g[u]);
    for (int64_t u = 0; u < U; ++u) ex[u] = q[2 * U + u], g[2 * U + u] += g[U + u] * q[2 * U + u];
    for (int64_t u = 2 * U; u < 3 * U; ++u) g[u] = acts.act(g[u]);
    for (int64_t u = 0; u < U; ++u) hn[u] = g[u] * hp[u] + (1.0f - g[u]) * g[2 * U + u];  // z h + (1 - z) hh
}

template <class A>
void gru_rows(float* y, float* hT, float* gates, float* hprev, float* extra, const StepB& Rzr, const StepB& Rh, GruBias b,
              const uint8_t* mask, const RnnShape& s, A acts, bool reset_after, int64_t lo, int64_t hi) {
    const int64_t U = s.U, G = 3 * U, rows = hi - lo;
    RowScratch sc(rows, G, U, rows * G);
    for (int64_t t = 0; t < s.T; ++t) {
        float* q = sc.q.data();
        Rzr.run(q, G, slot(hprev, hT, s, lo, t), s.T * U, rows, 0.0f, sc);
        for (int64_t n = lo; n < hi && reset_after; ++n) {
            const int64_t at = n * s.T + t;
            gru_after_row(gates + at * G, slot(hprev, hT, s, n, t + 1), extra + at * U, q + (n - lo) * G,
                          slot(hprev, hT, s, n, t), b, U, acts);
        }
        if (!reset_after) {  // z, r first; then hh needs (r h_{t-1}) R_h, a second GEMM
            for (int64_t n = lo; n < hi; ++n) {
                const int64_t at = n * s.T + t;
                float* g = gates + at * G;
                const float *qr = q + (n - lo) * G, *hp = slot(hprev, hT, s, n, t);
                add_bias(g, b.in, 3 * U);
                add_pre(g, qr, nullptr, 2 * U);
                for (int64_t u = 0; u < 2 * U; ++u) g[u] = acts.ract(g[u]);
                for (int64_t u = 0; u < U; ++u) extra[at * U + u] = g[U + u] * hp[u];
            }
            Rh.run(q, G, extra + lo * s.T * U + t * U, s.T * U, rows, 0.0f, sc);
            for (int64_t n = lo; n < hi; ++n) {
                float *g = gates + (n * s.T + t) * G, *hn = slot(hprev, hT, s, n, t + 1);
                const float *qh = q + (n - lo) * G, *hp = slot(hprev, hT, s, n, t);
                for (int64_t u = 0; u < U; ++u) g[2 * U + u] = acts.act(g[2 * U + u] + qh[u]);
                for (int64_t u = 0; u < U; ++u) hn[u] = g[u] * hp[u] + (1.0f - g[u]) * g[2 * U + u];
            }
        }
        for (int64_t n = lo; n < hi; ++n)
            finish_row(y, slot(hprev, hT, s, n, t + 1), slot(hprev, hT, s, n, t), s, n, t, valid_at(mask, s, n, t));
    }
}

// One valid row, reset_after: dgx = [dz, dr, dhh], dgr = [dz, dr, dhh r]; dh = dhn z (+ dgr R^T later).
template <class A>
void gru_after_back_row(float* PMD_RESTRICT gx, float* PMD_RESTRICT gr, float* PMD_RESTRICT dh, float* PMD_RESTRICT carry,
                        const float* PMD_RESTRICT dy, const float* PMD_RESTRICT g, const float* PMD_RESTRICT hp,
                        const float* PMD_RESTRICT ex, int64_t U, A acts) {
    for (int64_t u = 0; u < U; ++u) {
        const float z = g[u], r = g[U + u], hh = g[2 * U + u];
        const float dhn = dh[u] + dy[u] + carry[u];
        const float dz = dhn * (hp[u] - hh) * acts.dract(z);  // dh_t/dz = h_{t-1} - hh
        const float dhh = dhn * (1.0f - z) * acts.dact(hh);
        const float dr = dhh * ex[u] * acts.dract(r);
        gx[u] = gr[u] = dz;
        gx[U + u] = gr[U + u] = dr;
        gx[2 * U + u] = dhh;
        gr[2 * U + u] = dhh * r;
        dh[u] = dhn * z;
        carry[u] = 0.0f;
    }
}

// One valid row, reset_after = false, first half: dz, dhh; dhn kept for the second half.
template <class A>
void gru_before_back_row(float* PMD_RESTRICT gx, float* PMD_RESTRICT dhn_out, float* PMD_RESTRICT dh,
                         float* PMD_RESTRICT carry, const float* PMD_RESTRICT dy, const float* PMD_RESTRICT g,
                         const float* PMD_RESTRICT hp, int64_t U, A acts) {
    for (int64_t u = 0; u < U; ++u) {
        const float z = g[u], hh = g[2 * U + u];
        const float dhn = dh[u] + dy[u] + carry[u];
        gx[u] = dhn * (hp[u] - hh) * acts.dract(z);
        gx[2 * U + u] = dhn * (1.0f - z) * acts.dact(hh);
        dhn_out[u] = dhn;
        carry[u] = 0.0f;
    }
}

// reset_after = false, second half: drh = dhh R_h^T (given), dr = drh h_{t-1} ract'(r), dh = dhn z + drh r.
template <class A>
void gru_before_back_row2(float* PMD_RESTRICT gx, float* PMD_RESTRICT dh, const float* PMD_RESTRICT drh,
                          const float* PMD_RESTRICT dhn, const float* PMD_RESTRICT g, const float* PMD_RESTRICT hp,
                          int64_t U, A acts) {
    for (int64_t u = 0; u < U; ++u) {
        const float z = g[u], r = g[U + u];
        gx[U + u] = drh[u] * hp[u] * acts.dract(r);
        dh[u] = dhn[u] * z + drh[u] * r;
    }
}

struct GruBack {  // the backward's inputs and per-step buffers, shared by the row-block loops
    const float *dy, *dhT, *gates, *hprev, *extra;
    const StepB &Rt, &Rht;  // dh += dgr R^T (reset_after: all gates; else z, r) and drh = dhh R_h^T
    const uint8_t* mask;
    float *gx, *gr;
};

template <class A>
void gru_back_rows(float* dh0, const GruBack& k, const RnnShape& s, A acts, bool reset_after, int64_t lo, int64_t hi) {
    const int64_t U = s.U, G = 3 * U, rows = hi - lo;
    RowScratch sc(rows, U, G, 4 * rows * U);
    float *dh = sc.q.data(), *carry = dh + rows * U, *dhn = carry + rows * U, *drh = dhn + rows * U;
    for (int64_t i = 0; i < rows * U; ++i) dh[i] = k.dhT ? k.dhT[lo * U + i] : 0.0f, carry[i] = 0.0f;
    for (int64_t t = s.T - 1; t >= 0; --t) {
        for (int64_t n = lo; n < hi; ++n) {
            const int64_t at = n * s.T + t, r = (n - lo) * U;
            if (!valid_at(k.mask, s, n, t)) {  // dh passes; the output gradient carries one step back
                for (int64_t u = 0; u < U; ++u) carry[r + u] += k.dy[at * U + u];
                std::fill(k.gx + at * G, k.gx + (at + 1) * G, 0.0f);
                if (reset_after) std::fill(k.gr + at * G, k.gr + (at + 1) * G, 0.0f);
                else std::fill(dhn + r, dhn + r + U, 0.0f);
            } else if (reset_after) {
                gru_after_back_row(k.gx + at * G, k.gr + at * G, dh + r, carry + r, k.dy + at * U, k.gates + at * G,
                                   k.hprev + at * U, k.extra + at * U, U, acts);
            } else {
                gru_before_back_row(k.gx + at * G, dhn + r, dh + r, carry + r, k.dy + at * U, k.gates + at * G,
                                    k.hprev + at * U, U, acts);
            }
        }
        const int64_t at0 = lo * s.T + t;
        if (reset_after) {
            k.Rt.run(dh, U, k.gr + at0 * G, s.T * G, rows, 1.0f, sc);  // dh += dgr R^T
            continue;
        }
        k.Rht.run(drh, U, k.gx + at0 * G + 2 * U, s.T * G, rows, 0.0f, sc);
        for (int64_t n = lo; n < hi; ++n) {
            const int64_t at = n * s.T + t, r = (n - lo) * U;
            if (valid_at(k.mask, s, n, t))
                gru_before_back_row2(k.gx + at * G, dh + r, drh + r, dhn + r, k.gates + at * G, k.hprev + at * U, U, acts);
        }
        k.Rt.run(dh, U, k.gx + at0 * G, s.T * G, rows, 1.0f, sc);  // dh += dgx_zr R_zr^T
    }
    std::copy_n(dh, rows * U, dh0 + lo * U);
}

}  // namespace

void gru_forward(float* y, float* hT, float* gates, float* hprev, float* extra, const float* x, const float* W,
                 const float* R, const float* b, const float* h0, const uint8_t* mask, RnnShape s, int act,
                 int ract, bool reset_after) {
    input_projection(gates, x, W, s, 3 * s.U);
    const GruBias bias{b, (b && reset_after) ? b + 3 * s.U : nullptr};
    // reset_after: one product over all three gates; else z, r first, then (r h) R_h.
    const StepB rzr(R, 3 * s.U, false, s.U, reset_after ? 3 * s.U : 2 * s.U);
    const StepB rh(R + 2 * s.U, 3 * s.U, false, reset_after ? 0 : s.U, reset_after ? 0 : s.U);
    with_acts(act, ract, [&](auto acts) {
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) {
            init_state(hprev, hT, h0, s, lo, hi);
            gru_rows(y, hT, gates, hprev, extra, rzr, rh, bias, mask, s, acts, reset_after, lo, hi);
        });
    });
}

void gru_backward(float* dx, float* dW, float* dR, float* db, float* dh0, const float* dy, const float* dhT,
                  const float* x, const float* W, const float* R, const uint8_t* mask, const float* gates,
                  const float* hprev, const float* extra, RnnShape s, int act, int ract, bool reset_after,
                  float* work) {
    const int64_t G = 3 * s.U, NT = s.N * s.T;
    const StepB rt(R, G, true, reset_after ? G : 2 * s.U, s.U);
    const StepB rht(R + 2 * s.U, G, true, reset_after ? 0 : s.U, reset_after ? 0 : s.U);
    const GruBack k{dy, dhT, gates, hprev, extra, rt, rht, mask, work, work + NT * G};
    with_acts(act, ract, [&](auto acts) {
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) { gru_back_rows(dh0, k, s, acts, reset_after, lo, hi); });
    });
    weight_grads(dx, dW, k.gx, x, W, s, G);
    if (reset_after) {
        recurrent_grad(dR, G, hprev, k.gr, G, s, G);
    } else {
        recurrent_grad(dR, G, hprev, k.gx, G, s, 2 * s.U);
        sgemm(dR + 2 * s.U, std::max<int64_t>(G, 1), extra, std::max<int64_t>(s.U, 1), true, k.gx + 2 * s.U,
              std::max<int64_t>(G, 1), false, s.U, s.U, NT, 1.0f, 0.0f);  // dR_h = (r h)^T dhh
    }
    if (db) {
        bias_grad(db, k.gx, std::max<int64_t>(G, 1), NT, G);
        if (reset_after) bias_grad(db + G, k.gr, std::max<int64_t>(G, 1), NT, G);
    }
}

}  // namespace PMD_RNN_ISA
}  // namespace pyminidl::kernels
