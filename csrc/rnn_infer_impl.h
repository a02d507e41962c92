// rnn_infer_impl.h — the recurrent inference forwards (lstm_inference, simple_rnn_inference,
// gru_inference): no backward follows (predict, evaluate), so no per-step cache is kept.
// Compiled per ISA path with rnn_impl.h (whose helpers it uses: StepB, RowScratch, with_acts,
// over_row_blocks) into the namespace PMD_RNN_ISA names.
//
// Nothing of a step outlives the next one: each thread keeps [x_t, h_{t-1}] of its rows in one
// (rows, I + U) buffer and runs one GEMM per step against a stacked [W; R] (I + U, G) (GRU: three
// column blocks), packed once per call, into a (rows, G) gate buffer that stays in cache. No (N, T, G) projection is written
// and read back, and no gates / hprev / cprev arrays are allocated (and page-faulted) per call.
// One row loop (infer_rows) serves every cell; a cell is a functor that updates one valid row
// from its pre-activations (and, for GRU without reset_after, runs a second product per step).
// The per-row math is the training forward's; only the summation order of the pre-activation
// differs (one K = I + U product, bias added after).
// GRU's gates read [x, h] for z and r but only one side for h: reset_after keeps x W_h and h R_h
// apart (hh = act(x W_h + b_h + r (h R_h + b_rec_h))), so G = 4U columns [x W_zr + h R_zr, x W_h,
// h R_h], three column blocks of the step product (one stacked matrix would multiply zero blocks:
// 4 (I + U) U against (2 (I + U) + I + U) U); reset_after = false needs r before (r h) R_h, so
// G = 3U [x W_zr + h R_zr, x W_h] and the cell's per-block stage runs (r h) R_h.
#pragma once

#include "rnn_impl.h"

#include <memory>
#include <utility>

namespace pyminidl::kernels {
namespace PMD_RNN_ISA {
namespace {

// The per-step product g (rows, G) = [x_t, h_{t-1}] times the stacked weights, as column blocks,
// each packed once per call (StepB) and read from its own K range of [x_t, h_{t-1}]: a block that
// would be zeros in one stacked matrix (GRU's) is not multiplied. store: the stacked copies the
// blocks read (a moved std::vector keeps its buffer, so their pointers survive store's growth).
class StepProducts {
public:
    explicit StepProducts(int64_t G) : G_(G) {}
    // g[:, c0 : c0 + cols] = [x_t, h_{t-1}][:, k0 : k0 + k] B, B (k, cols) with row stride ldb.
    void add(const float* b, int64_t ldb, int64_t k0, int64_t k, int64_t c0, int64_t cols) {
        parts_.push_back(std::make_unique<StepB>(b, ldb, false, k, cols));
        at_.push_back({k0, c0});
    }
    void run(float* g, const float* xh, int64_t K, int64_t rows, RowScratch& sc) const {
        for (size_t j = 0; j < parts_.size(); ++j)
            parts_[j]->run(g + at_[j].c0, G_, xh + at_[j].k0, K, rows, 0.0f, sc);
    }
    int64_t cols() const { return G_; }
    std::vector<std::vector<float>> store;

private:
    struct At {
        int64_t k0, c0;
    };
    int64_t G_;
    std::vector<std::unique_ptr<StepB>> parts_;
    std::vector<At> at_;
};

// [W; R] as one contiguous (I + U, G) copy.
std::vector<float> stack_wr(const float* W, const float* R, const RnnShape& s, int64_t G) {
    std::vector<float> v(size_t(std::max<int64_t>(1, (s.I + s.U) * G)));
    std::copy_n(W, s.I * G, v.data());
    std::copy_n(R, s.U * G, v.data() + s.I * G);
    return v;
}

// The bias of the G stacked columns (zeros when there is none), shared read-only by the threads.
std::vector<float> padded_bias(const float* b, int64_t G) {
    std::vector<float> v(size_t(std::max<int64_t>(G, 1)), 0.0f);
    if (b) std::copy_n(b, G, v.data());
    return v;
}

// Per-thread state of one row block: xh (rows, I + U) = [x_t, h_{t-1}], c (rows, CW) the cell's
// own per-row state or scratch (LSTM: c; GRU without reset_after: r h and (r h) R_h), g (rows, G)
// the step's pre-activations. The GEMM workspace fits products up to (rows, G, I + U).
struct InferRows {
    RowScratch sc;
    float *xh, *c, *g;
    int64_t K, CW;
    InferRows(const RnnShape& s, int64_t G, int64_t cw, int64_t lo, int64_t hi, const float* h0, const float* c0)
        : sc(hi - lo, G, s.I + s.U, (hi - lo) * (s.I + s.U + cw + G)), K(s.I + s.U), CW(cw) {
        const int64_t rows = hi - lo, U = s.U;
        xh = sc.q.data(), c = xh + rows * K, g = c + rows * cw;
        for (int64_t r = 0; r < rows; ++r) {
            float* h = xh + r * K + s.I;
            for (int64_t u = 0; u < U; ++u) h[u] = h0 ? h0[(lo + r) * U + u] : 0.0f;
        }
        for (int64_t i = 0; i < rows * cw; ++i) c[i] = c0 ? c0[lo * cw + i] : 0.0f;
    }
    // xh[:, :I] = x_t of the block's rows; then g = [x_t, h_{t-1}] [W; R].
    void step_product(const float* x, const StepProducts& wr, const RnnShape& s, int64_t lo, int64_t hi, int64_t t) {
        for (int64_t n = lo; n < hi; ++n) std::copy_n(x + (n * s.T + t) * s.I, s.I, xh + (n - lo) * K);
        wr.run(g, xh, K, hi - lo, sc);
    }
    float* h(int64_t r, const RnnShape& s) const { return xh + r * K + s.I; }
    void store_final(float* hT, float* cT, const RnnShape& s, int64_t lo, int64_t hi) const {
        for (int64_t n = lo; n < hi; ++n) std::copy_n(h(n - lo, s), s.U, hT + n * s.U);
        if (cT) std::copy_n(c, (hi - lo) * CW, cT + lo * CW);
    }
};

// A masked step repeats the previous output (zeros before the first step) and keeps the state.
PMD_ALWAYS_INLINE void repeat_output(float* yo, const RnnShape& s, int64_t t) {
    if (t > 0) std::copy_n(yo - s.U, s.U, yo);
    else std::fill(yo, yo + s.U, 0.0f);
}

// The one row loop of every inference forward. Per step: the block's product, the cell's
// per-block stage (cell.block: nothing for most cells), then cell(g, h, c) on each valid row
// (g: its G pre-activations without the bias; h, c updated in place) and h copied to y.
// cT (the cell's per-row state, CW wide) may be nullptr.
template <class Cell>
void infer_rows(float* y, float* hT, float* cT, const float* x, const StepProducts& wr, const float* h0, const float* c0,
                const uint8_t* mask, const RnnShape& s, int64_t CW, Cell cell, int64_t lo, int64_t hi) {
    const int64_t U = s.U, G = wr.cols();
    InferRows st(s, G, CW, lo, hi, h0, c0);
    for (int64_t t = 0; t < s.T; ++t) {
        st.step_product(x, wr, s, lo, hi, t);
        cell.block(st, s, hi - lo);
        for (int64_t n = lo; n < hi; ++n) {
            const int64_t r = n - lo;
            float *yo = y + (n * s.T + t) * U, *h = st.h(r, s);
            if (!valid_at(mask, s, n, t)) {
                repeat_output(yo, s, t);
                continue;
            }
            cell(st.g + r * G, h, st.c + r * CW);
            std::copy_n(h, U, yo);
        }
    }
    st.store_final(hT, cT, s, lo, hi);
}

struct NoBlockStage {
    void block(InferRows&, const RnnShape&, int64_t) const {}
};

// h_t = act(x W + h R + b).
template <class A>
struct SimpleRnnCell : NoBlockStage {
    const float* bias;
    int64_t U;
    A acts;
    PMD_ALWAYS_INLINE void operator()(const float* PMD_RESTRICT g, float* PMD_RESTRICT h, float*) const {
        for (int64_t u = 0; u < U; ++u) h[u] = acts.act(g[u] + bias[u]);
    }
};

// The LSTM cell in one pass over the units (no backward needs the gate values, so none is stored).
template <class A>
struct LstmCell : NoBlockStage {
    const float* b;
    int64_t U;
    A acts;
    PMD_ALWAYS_INLINE void operator()(const float* PMD_RESTRICT g, float* PMD_RESTRICT h, float* PMD_RESTRICT c) const {
        for (int64_t u = 0; u < U; ++u) {
            const float i = acts.ract(g[u] + b[u]), f = acts.ract(g[U + u] + b[U + u]);
            const float gg = acts.act(g[2 * U + u] + b[2 * U + u]), o = acts.ract(g[3 * U + u] + b[3 * U + u]);
            c[u] = f * c[u] + i * gg;    // c_t = f c_{t-1} + i g
            h[u] = o * acts.act(c[u]);  // h_t = o act(c_t)
        }
    }
};

// GRU, reset_after: g = [x W_zr + h R_zr, x W_h, h R_h]; b = [b_zr + b_rec_zr, b_h, b_rec_h].
template <class A>
struct GruAfterCell : NoBlockStage {
    const float* b;
    int64_t U;
    A acts;
    PMD_ALWAYS_INLINE void operator()(const float* PMD_RESTRICT g, float* PMD_RESTRICT h, float*) const {
        for (int64_t u = 0; u < U; ++u) {
            const float z = acts.ract(g[u] + b[u]), r = acts.ract(g[U + u] + b[U + u]);
            const float hh = acts.act(g[2 * U + u] + b[2 * U + u] + r * (g[3 * U + u] + b[3 * U + u]));
            h[u] = z * h[u] + (1.0f - z) * hh;  // h_t = z h_{t-1} + (1 - z) hh
        }
    }
};

// GRU, reset_after = false: g = [x W_zr + h R_zr, x W_h]; b = [b_zr, b_h]. Per block: c[:, :U] =
// r h_{t-1}, then c[:, U:] = (r h_{t-1}) R_h; per row: hh = act(x W_h + b_h + c[:, U:]).
template <class A>
struct GruBeforeCell {
    const float* b;
    const StepB& Rh;
    int64_t U;
    A acts;
    void block(InferRows& st, const RnnShape& s, int64_t rows) const {
        for (int64_t r = 0; r < rows; ++r) {
            const float* PMD_RESTRICT g = st.g + r * 3 * U;
            const float* PMD_RESTRICT h = st.h(r, s);
            float* PMD_RESTRICT rh = st.c + r * 2 * U;
            for (int64_t u = 0; u < U; ++u) rh[u] = acts.ract(g[U + u] + b[U + u]) * h[u];
        }
        Rh.run(st.c + U, 2 * U, st.c, 2 * U, rows, 0.0f, st.sc);
    }
    PMD_ALWAYS_INLINE void operator()(const float* PMD_RESTRICT g, float* PMD_RESTRICT h,
                                      float* PMD_RESTRICT c) const {
        for (int64_t u = 0; u < U; ++u) {
            const float z = acts.ract(g[u] + b[u]);
            const float hh = acts.act(g[2 * U + u] + b[2 * U + u] + c[U + u]);
            h[u] = z * h[u] + (1.0f - z) * hh;
        }
    }
};

// [W; R] (I + U, G) as one block.
std::unique_ptr<StepProducts> stacked_products(const float* W, const float* R, const RnnShape& s, int64_t G) {
    auto p = std::make_unique<StepProducts>(G);
    p->store.push_back(stack_wr(W, R, s, G));
    p->add(p->store.back().data(), G, 0, s.I + s.U, 0, G);
    return p;
}

// GRU's blocks (see the file comment): [x, h] [W_zr; R_zr], x W_h, and (reset_after) h R_h.
std::unique_ptr<StepProducts> gru_products(const float* W, const float* R, const RnnShape& s, bool reset_after) {
    const int64_t U = s.U;
    auto p = std::make_unique<StepProducts>(reset_after ? 4 * U : 3 * U);
    std::vector<float> zr(size_t(std::max<int64_t>(1, (s.I + U) * 2 * U)));
    for (int64_t i = 0; i < s.I; ++i) std::copy_n(W + i * 3 * U, 2 * U, zr.data() + i * 2 * U);
    for (int64_t k = 0; k < U; ++k) std::copy_n(R + k * 3 * U, 2 * U, zr.data() + (s.I + k) * 2 * U);
    p->store.push_back(std::move(zr));
    p->add(p->store.back().data(), 2 * U, 0, s.I + U, 0, 2 * U);
    p->add(W + 2 * U, 3 * U, 0, s.I, 2 * U, U);
    if (reset_after) p->add(R + 2 * U, 3 * U, s.I, U, 3 * U, U);
    return p;
}

// GRU's bias of the stacked columns: reset_after [b_zr + b_rec_zr, b_h, b_rec_h], else b.
std::vector<float> gru_bias(const float* b, int64_t U, bool reset_after) {
    if (!reset_after || b == nullptr) return padded_bias(b, reset_after ? 4 * U : 3 * U);
    std::vector<float> v(size_t(std::max<int64_t>(4 * U, 1)));
    for (int64_t j = 0; j < 2 * U; ++j) v[j] = b[j] + b[3 * U + j];
    std::copy_n(b + 2 * U, U, v.data() + 2 * U);
    std::copy_n(b + 5 * U, U, v.data() + 3 * U);
    return v;
}

}  // namespace

// Rows per thread of the inference forwards. Its only per-step work is the product, so a block
// of 16 rows (two 12-row AVX-512 tiles, 8 rows of padding) costs nearly what 32 rows do: measured
// (2 threads, loaded 2-core test machine, 128 units, 80 steps) splitting batch 32 in two ran 0.75x
// (SimpleRNN) and 0.87x (LSTM) of one thread; batch 64 split in two ran 1.25x and 1.29x.
constexpr int64_t INFER_MIN_ROWS = 32;

void lstm_inference(float* y, float* hT, float* cT, const float* x, const float* W, const float* R, const float* b,
                    const float* h0, const float* c0, const uint8_t* mask, RnnShape s, int act, int ract) {
    const auto wr = stacked_products(W, R, s, 4 * s.U);
    const std::vector<float> bias = padded_bias(b, 4 * s.U);
    with_acts(act, ract, [&](auto acts) {
        const LstmCell<decltype(acts)> cell{{}, bias.data(), s.U, acts};
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) {
            infer_rows(y, hT, cT, x, *wr, h0, c0, mask, s, s.U, cell, lo, hi);
        }, INFER_MIN_ROWS);
    });
}

void simple_rnn_inference(float* y, float* hT, const float* x, const float* W, const float* R, const float* b,
                          const float* h0, const uint8_t* mask, RnnShape s, int act) {
    const auto wr = stacked_products(W, R, s, s.U);
    const std::vector<float> bias = padded_bias(b, s.U);
    with_acts(act, RNN_SIGMOID, [&](auto acts) {
        const SimpleRnnCell<decltype(acts)> cell{{}, bias.data(), s.U, acts};
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) {
            infer_rows(y, hT, nullptr, x, *wr, h0, nullptr, mask, s, 0, cell, lo, hi);
        }, INFER_MIN_ROWS);
    });
}

void gru_inference(float* y, float* hT, const float* x, const float* W, const float* R, const float* b,
                   const float* h0, const uint8_t* mask, RnnShape s, int act, int ract, bool reset_after) {
    const int64_t U = s.U;
    const auto wr = gru_products(W, R, s, reset_after);
    const StepB rh(R + 2 * U, 3 * U, false, reset_after ? 0 : U, reset_after ? 0 : U);
    const std::vector<float> bias = gru_bias(b, U, reset_after);
    with_acts(act, ract, [&](auto acts) {
        using Acts = decltype(acts);
        over_row_blocks(s.N, [&](int64_t lo, int64_t hi) {
            if (reset_after)
                infer_rows(y, hT, nullptr, x, *wr, h0, nullptr, mask, s, 0, GruAfterCell<Acts>{{}, bias.data(), U, acts},
                           lo, hi);
            else
                infer_rows(y, hT, nullptr, x, *wr, h0, nullptr, mask, s, 2 * U,
                           GruBeforeCell<Acts>{bias.data(), rh, U, acts}, lo, hi);
        }, INFER_MIN_ROWS);
    });
}

}  // namespace PMD_RNN_ISA
}  // namespace pyminidl::kernels
