// norm_impl.h — the bodies of batch normalization (any axis) and layer normalization (the
// trailing axes), each a fused forward and a fused backward, compiled once per instruction
// set: norm.cpp (baseline x86-64, and every non-x86 target), norm_avx2.cpp and
// norm_avx512.cpp include this file and nothing else defines these functions. Internal
// linkage (an anonymous namespace), as activations_impl.h: each translation unit keeps its
// own copy, compiled with its own -m flags.
//
// Layout: batch norm views x as (O, C, I) with C the normalized axis (channels_last: I = 1,
// rows of C contiguous channels, vectorised over C; channels_first: I = H * W contiguous
// cells per channel). Layer norm views x as (R, D) rows.
//
// Determinism: every reduction over the batch is split into fixed chunks (ROWS rows of the
// (O * I) axis, or one o of the (O, C, I) view) whose partial results are combined in chunk
// order, in double. The chunks depend on the shape alone, so results are bit-identical run
// to run and for every thread count. Batch statistics are one pass over memory: each chunk
// (ROWS x C floats, in L1) gives its mean and sum of squared deviations exactly (two passes
// over the chunk), and chunks combine by Chan et al.'s pairwise update, so a large mean does
// not cancel the variance away as the sum of squares would.
// Every vector lane runs the scalar code's operations in the scalar code's order (the float
// partial sums keep eight named accumulators, never a width-dependent split) and the files
// are built with -ffp-contract=off, so the AVX2 and AVX-512 copies return the baseline's bits.
// Reference: Ioffe & Szegedy, Batch Normalization (2015); Ba et al., Layer Normalization
// (2016); Chan, Golub & LeVeque, Algorithms for computing the sample variance (1983).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "channel_blocks.h"
#include "norm.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace {

constexpr int64_t ROWS = 64;  // rows per chunk: 64 x C floats stay in L1 for C <= 128

// Eight float accumulators, lane k summing elements k, k + 8, ..., so a contiguous row's sum
// vectorises without -ffast-math; then the lanes in order, in double. The accumulators are
// GCC vector types of the translation unit's width (one ymm with AVX2 and AVX-512, two xmm on
// the baseline), held in registers: as a plain float[8] loop GCC's AVX-512 copy vectorised
// the outer loop with an in-order (fold-left) reduction, lane by lane, twice as slow as
// AVX2, and one 8-float generic vector on SSE2 lived on the stack. The same operations in
// the same order on every path, so the same bits.
#if defined(__AVX__)
constexpr int ACC_VEC = 8;
#else
constexpr int ACC_VEC = 4;
#endif
constexpr int ACC_N = 8 / ACC_VEC;
typedef float AccV __attribute__((vector_size(ACC_VEC * sizeof(float))));

struct Acc8 {
    AccV v[ACC_N];
};

// acc += f(p[i..i+8), q[i..i+8)) lane by lane.
template <typename F>
PMD_ALWAYS_INLINE void acc8_step(Acc8& acc, const float* p, const float* q, F f) {
    for (int u = 0; u < ACC_N; ++u) {
        AccV a, b;
        std::memcpy(&a, p + u * ACC_VEC, sizeof a);
        std::memcpy(&b, q + u * ACC_VEC, sizeof b);
        acc.v[u] += f(a, b);
    }
}

PMD_ALWAYS_INLINE double lanes_sum(const Acc8& acc) {
    double s = 0.0;
    for (int u = 0; u < ACC_N; ++u)
        for (int k = 0; k < ACC_VEC; ++k) s += acc.v[u][k];
    return s;
}

inline double sum_row(const float* PMD_RESTRICT p, int64_t n, float shift) {
    Acc8 acc{};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc8_step(acc, p + i, p + i, [shift](AccV a, AccV) { return a - shift; });
    double s = lanes_sum(acc);
    for (; i < n; ++i) s += p[i] - shift;
    return s;
}

inline double sq_dev_row(const float* PMD_RESTRICT p, int64_t n, float mean) {
    Acc8 acc{};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc8_step(acc, p + i, p + i, [mean](AccV a, AccV) { return (a - mean) * (a - mean); });
    double s = lanes_sum(acc);
    for (; i < n; ++i) s += double(p[i] - mean) * (p[i] - mean);
    return s;
}

// sum, m2: (n,) channels of rows [r0, r1) of x: (R, C), x offset to the block's first
// channel; m2 about the chunk's own mean. The block's sums stay in registers over the chunk.
template <typename N>
PMD_ALWAYS_INLINE void moments_lanes(double* PMD_RESTRICT sum, double* PMD_RESTRICT m2, const float* PMD_RESTRICT x,
                                     int64_t r0, int64_t r1, int64_t c, N n) {
    float acc[LANES], sq[LANES];
    for (int64_t l = 0; l < n; ++l) acc[l] = sq[l] = 0.0f;
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t l = 0; l < n; ++l) acc[l] += x[r * c + l];
    const float inv = 1.0f / float(r1 - r0);
    for (int64_t l = 0; l < n; ++l) {
        sum[l] = acc[l];
        acc[l] *= inv;  // the chunk mean
    }
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t l = 0; l < n; ++l) sq[l] += (x[r * c + l] - acc[l]) * (x[r * c + l] - acc[l]);
    for (int64_t l = 0; l < n; ++l) m2[l] = sq[l];
}

// sum, m2: (C,) of rows [r0, r1) of x: (R, C).
void chunk_moments_rows(double* PMD_RESTRICT sum, double* PMD_RESTRICT m2, const float* PMD_RESTRICT x, int64_t r0,
                        int64_t r1, int64_t c) {
    channel_blocks(c, [&](int64_t j, auto n) { moments_lanes(sum + j, m2 + j, x + j, r0, r1, c, n); });
}

// Combine chunk moments (nchunks, C) of `count` elements each (the last may hold fewer) in
// chunk order: mean and biased variance. Chunks outer, channels inner: the channels are
// independent, so the divisions vectorise across them instead of forming one serial chain
// per channel.
void combine_moments(float* PMD_RESTRICT mean, float* PMD_RESTRICT var, const double* PMD_RESTRICT sum,
                     const double* PMD_RESTRICT m2, int64_t nchunks, int64_t c, int64_t count, int64_t total) {
    std::vector<double> mu_v(static_cast<size_t>(c), 0.0), q_v(static_cast<size_t>(c), 0.0);
    double* PMD_RESTRICT mu = mu_v.data();
    double* PMD_RESTRICT q = q_v.data();
    double n = 0.0;
    for (int64_t k = 0; k < nchunks; ++k) {
        const double nb = double(std::min(count, total - k * count)), n2 = n + nb;
        const double* PMD_RESTRICT sk = sum + k * c;
        const double* PMD_RESTRICT mk = m2 + k * c;
        if (n > 0.0) {
            for (int64_t j = 0; j < c; ++j) {
                const double mb = sk[j] / nb, delta = mb - mu[j];
                q[j] += mk[j] + delta * delta * n * nb / n2;
                mu[j] = (n * mu[j] + nb * mb) / n2;  // weighted form: an inf mean stays inf
            }
        } else {
            for (int64_t j = 0; j < c; ++j) {
                q[j] += mk[j];
                mu[j] = sk[j] / nb;
            }
        }
        n = n2;
    }
    for (int64_t j = 0; j < c; ++j) {
        mean[j] = float(mu[j]);
        var[j] = float(q[j] / n);
    }
}

void batch_norm_stats_impl(float* mean, float* var, const float* x, int64_t o, int64_t c, int64_t i) {
    if (i == 1) {
        const int64_t nchunks = ceil_div(o, ROWS);
        std::vector<double> sum(static_cast<size_t>(nchunks * c)), m2(static_cast<size_t>(nchunks * c));
        team_region(threads_if(o * c > PARALLEL_GRAIN), [&] {
#pragma omp for schedule(static)
            for (int64_t k = 0; k < nchunks; ++k)
                chunk_moments_rows(sum.data() + k * c, m2.data() + k * c, x, k * ROWS, std::min(o, (k + 1) * ROWS), c);
        });
        combine_moments(mean, var, sum.data(), m2.data(), nchunks, c, ROWS, o);
        return;
    }
    // channels_first: one chunk per (o, channel) row of I contiguous cells.
    std::vector<double> sum(static_cast<size_t>(o * c)), m2(static_cast<size_t>(o * c));
    team_region(threads_if(o * c * i > PARALLEL_GRAIN), [&] {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < o * c; ++t) {
            const float* p = x + t * i;
            sum[t] = sum_row(p, i, 0.0f);
            m2[t] = sq_dev_row(p, i, float(sum[t] / double(i)));
        }
    });
    combine_moments(mean, var, sum.data(), m2.data(), o, c, i, o * i);
}

// sum(a * (b - shift)) of contiguous rows (b == nullptr: sum(a)), eight accumulators.
inline double dot_row(const float* PMD_RESTRICT a, const float* PMD_RESTRICT b, int64_t n, float shift) {
    if (b == nullptr) return sum_row(a, n, 0.0f);
    Acc8 acc{};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc8_step(acc, a + i, b + i, [shift](AccV va, AccV vb) { return va * (vb - shift); });
    double s = lanes_sum(acc);
    for (; i < n; ++i) s += double(a[i]) * (b[i] - shift);
    return s;
}

// Per-channel scale = gamma / sqrt(var + eps) (gamma = 1 when absent).
std::vector<float> bn_scale(const float* var, const float* gamma, int64_t c, float eps) {
    std::vector<float> s(static_cast<size_t>(c));
    for (int64_t j = 0; j < c; ++j) s[j] = (gamma ? gamma[j] : 1.0f) / std::sqrt(var[j] + eps);
    return s;
}

// y = (x - mean) * scale + beta over rows [r0, r1) of (R, C).
void apply_rows(float* PMD_RESTRICT y, const float* PMD_RESTRICT x, const float* PMD_RESTRICT mean,
                const float* PMD_RESTRICT scale, const float* beta, int64_t r0, int64_t r1, int64_t c) {
    for (int64_t r = r0; r < r1; ++r) {
        float* PMD_RESTRICT yr = y + r * c;
        const float* PMD_RESTRICT xr = x + r * c;
        for (int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - mean[j]) * scale[j];
        if (beta)
            for (int64_t j = 0; j < c; ++j) yr[j] += beta[j];
    }
}

// s1 = sum dy, s2 = sum dy * (x - mean) over rows [r0, r1) of (R, C) for the n channels of a
// block (dy, x, mean offset to it), in float registers, stored in double.
template <typename N>
PMD_ALWAYS_INLINE void grad_sums_lanes(double* PMD_RESTRICT s1, double* PMD_RESTRICT s2, const float* PMD_RESTRICT dy,
                                       const float* PMD_RESTRICT x, const float* PMD_RESTRICT mean, int64_t r0,
                                       int64_t r1, int64_t c, N n) {
    float a1[LANES], a2[LANES], m[LANES];
    for (int64_t l = 0; l < n; ++l) {
        a1[l] = a2[l] = 0.0f;
        m[l] = mean[l];
    }
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t l = 0; l < n; ++l) {
            a1[l] += dy[r * c + l];
            a2[l] += dy[r * c + l] * (x[r * c + l] - m[l]);
        }
    for (int64_t l = 0; l < n; ++l) {
        s1[l] = a1[l];
        s2[l] = a2[l];
    }
}

// The full block of grad_sums_lanes in channel_blocks.h's native vectors: as a lane loop over
// float arrays GCC kept the dy sum in 16 scalar adds per row (the product's sum vectorised).
// Same per-lane operations in the same order, so the same bits.
PMD_ALWAYS_INLINE void grad_sums_lanes(double* PMD_RESTRICT s1, double* PMD_RESTRICT s2, const float* PMD_RESTRICT dy,
                                       const float* PMD_RESTRICT x, const float* PMD_RESTRICT mean, int64_t r0,
                                       int64_t r1, int64_t c, FullBlock) {
    VecF a1[NVEC], a2[NVEC], m[NVEC];
    load_vecs(m, mean);
    for (int u = 0; u < NVEC; ++u) a1[u] = a2[u] = VecF{};
    for (int64_t r = r0; r < r1; ++r) {
        VecF d[NVEC], v[NVEC];
        load_vecs(d, dy + r * c);
        load_vecs(v, x + r * c);
        for (int u = 0; u < NVEC; ++u) {
            a1[u] += d[u];
            a2[u] += d[u] * (v[u] - m[u]);
        }
    }
    for (int u = 0; u < NVEC; ++u)
        for (int k = 0; k < VEC; ++k) {
            s1[u * VEC + k] = a1[u][k];
            s2[u * VEC + k] = a2[u][k];
        }
}

void grad_sums_rows(double* PMD_RESTRICT s1, double* PMD_RESTRICT s2, const float* PMD_RESTRICT dy,
                    const float* PMD_RESTRICT x, const float* PMD_RESTRICT mean, int64_t r0, int64_t r1, int64_t c) {
    channel_blocks(c, [&](int64_t j, auto n) { grad_sums_lanes(s1 + j, s2 + j, dy + j, x + j, mean + j, r0, r1, c, n); });
}

// dx = a * (dy - m1) + b * (x - mean) over rows [r0, r1) of (R, C) (per-channel a, m1, b); without
// batch statistics dx = a * dy, x unread (an infinite x must not turn 0 * inf into NaN).
void dx_rows(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy, const float* PMD_RESTRICT x,
             const float* PMD_RESTRICT mean, const float* PMD_RESTRICT coef, int64_t r0, int64_t r1, int64_t c,
             bool batch_stats) {
    const float *PMD_RESTRICT a = coef, *PMD_RESTRICT m1 = coef + c, *PMD_RESTRICT b = coef + 2 * c;
    for (int64_t r = r0; r < r1; ++r) {
        if (!batch_stats) {
            for (int64_t j = 0; j < c; ++j) dx[r * c + j] = a[j] * dy[r * c + j];
            continue;
        }
        for (int64_t j = 0; j < c; ++j)
            dx[r * c + j] = a[j] * ((dy[r * c + j] - m1[j]) + b[j] * (x[r * c + j] - mean[j]));
    }
}

// Reduce (nchunks, C) partials in chunk order.
void reduce_chunks(double* out, const double* part, int64_t nchunks, int64_t c) {
    for (int64_t j = 0; j < c; ++j) out[j] = 0.0;
    for (int64_t k = 0; k < nchunks; ++k)
        for (int64_t j = 0; j < c; ++j) out[j] += part[k * c + j];
}

void batch_norm_apply_impl(float* y, const float* x, const float* mean, const float* var, const float* gamma,
                      const float* beta, int64_t o, int64_t c, int64_t i, float eps) {
    const std::vector<float> scale = bn_scale(var, gamma, c, eps);
    const float* sc = scale.data();
    if (i == 1) {
        parallel_blocks(o, c, [&](int64_t lo, int64_t hi) { apply_rows(y, x, mean, sc, beta, lo, hi, c); });
        return;
    }
    parallel_blocks(o * c, i, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
            const int64_t j = t % c;
            const float m = mean[j], s = sc[j], b = beta ? beta[j] : 0.0f;
            float* PMD_RESTRICT yr = y + t * i;
            const float* PMD_RESTRICT xr = x + t * i;
            for (int64_t k = 0; k < i; ++k) yr[k] = (xr[k] - m) * s + b;
        }
    });
}

// S1 = sum dy, S2 = sum dy * (x - mean) per channel (C,), in fixed chunks.
void bn_grad_sums(double* s1, double* s2, const float* dy, const float* x, const float* mean, int64_t o,
                  int64_t c, int64_t i) {
    const int64_t nchunks = i == 1 ? ceil_div(o, ROWS) : o;
    std::vector<double> p1(static_cast<size_t>(nchunks * c)), p2(static_cast<size_t>(nchunks * c));
    if (i == 1) {
        team_region(threads_if(o * c > PARALLEL_GRAIN), [&] {
#pragma omp for schedule(static)
            for (int64_t k = 0; k < nchunks; ++k)
                grad_sums_rows(p1.data() + k * c, p2.data() + k * c, dy, x, mean, k * ROWS, std::min(o, (k + 1) * ROWS), c);
        });
    } else {
        team_region(threads_if(o * c * i > PARALLEL_GRAIN), [&] {
#pragma omp for schedule(static)
            for (int64_t t = 0; t < o * c; ++t) {
                p1[t] = dot_row(dy + t * i, nullptr, i, 0.0f);
                p2[t] = dot_row(dy + t * i, x + t * i, i, mean[t % c]);
            }
        });
    }
    reduce_chunks(s1, p1.data(), nchunks, c);
    reduce_chunks(s2, p2.data(), nchunks, c);
}

void batch_norm_backward_impl(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* gamma, const float* mean, const float* var, int64_t o, int64_t c,
                         int64_t i, float eps, bool batch_stats) {
    std::vector<double> s1(static_cast<size_t>(c)), s2(static_cast<size_t>(c));
    bn_grad_sums(s1.data(), s2.data(), dy, x, mean, o, c, i);
    // dL/dx = g inv ((dy - S1/n) - inv^2 (x - mean) S2/n) with batch statistics; g inv dy without.
    // g inv is applied last, as the reference does: with an infinite gamma the bracket's terms stay
    // finite and the product is an infinity where two infinite terms would have made NaN.
    std::vector<float> coef(static_cast<size_t>(3 * c));
    const double n = double(o * i);
    for (int64_t j = 0; j < c; ++j) {
        const double inv = 1.0 / std::sqrt(double(var[j]) + eps), g = gamma ? gamma[j] : 1.0;
        dbeta[j] = float(s1[j]);
        dgamma[j] = n > 0.0 ? float(s2[j] * inv) : 0.0f;  // dL/dgamma = sum dy * xhat (an empty sum: 0)
        coef[j] = float(g * inv);
        coef[c + j] = batch_stats ? float(s1[j] / n) : 0.0f;
        coef[2 * c + j] = batch_stats ? float(-inv * inv * s2[j] / n) : 0.0f;
    }
    const float* cf = coef.data();
    if (i == 1) {
        parallel_blocks(o, c, [&](int64_t lo, int64_t hi) { dx_rows(dx, dy, x, mean, cf, lo, hi, c, batch_stats); });
        return;
    }
    parallel_blocks(o * c, i, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
            const int64_t j = t % c;
            const float a = cf[j], m1 = cf[c + j], b = cf[2 * c + j], m = mean[j];
            if (!batch_stats) {
                for (int64_t k = 0; k < i; ++k) dx[t * i + k] = a * dy[t * i + k];
                continue;
            }
            for (int64_t k = 0; k < i; ++k) dx[t * i + k] = a * ((dy[t * i + k] - m1) + b * (x[t * i + k] - m));
        }
    });
}

// ---------------------------------------------------------------- layer norm

// One row: mean, biased variance, y = (x - mean) / sqrt(var + eps) * gamma + beta.
void ln_row(float* PMD_RESTRICT y, float* mean, float* var, const float* PMD_RESTRICT x, const float* gamma,
            const float* beta, int64_t d, float eps) {
    const float m = float(sum_row(x, d, 0.0f) / double(d));
    const float v = float(sq_dev_row(x, d, m) / double(d));
    const float inv = 1.0f / std::sqrt(v + eps);
    *mean = m;
    *var = v;
    if (gamma && beta) {  // one pass; the same operations in the same order as the three below
        for (int64_t k = 0; k < d; ++k) y[k] = (x[k] - m) * inv * gamma[k] + beta[k];
        return;
    }
    for (int64_t k = 0; k < d; ++k) y[k] = (x[k] - m) * inv;
    if (gamma)
        for (int64_t k = 0; k < d; ++k) y[k] *= gamma[k];
    if (beta)
        for (int64_t k = 0; k < d; ++k) y[k] += beta[k];
}

// One row of dx, and its share of dgamma (pg += dy * xhat) and dbeta (pb += dy).
// dL/dx = inv (g dy - mean(g dy) - xhat mean(g dy xhat)). gd, xh: (D,) scratch.
void ln_grad_row(float* PMD_RESTRICT dx, float* PMD_RESTRICT pg, float* PMD_RESTRICT pb, float* PMD_RESTRICT gd,
                 float* PMD_RESTRICT xh, const float* PMD_RESTRICT dy, const float* PMD_RESTRICT x,
                 const float* gamma, float mean, float var, int64_t d, float eps) {
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t k = 0; k < d; ++k) {
        xh[k] = (x[k] - mean) * inv;
        gd[k] = gamma ? dy[k] * gamma[k] : dy[k];
        pg[k] += dy[k] * xh[k];
        pb[k] += dy[k];
    }
    const float a = float(dot_row(gd, nullptr, d, 0.0f) / double(d));
    const float b = float(dot_row(gd, xh, d, 0.0f) / double(d));
    for (int64_t k = 0; k < d; ++k) dx[k] = inv * (gd[k] - a - xh[k] * b);
}

void layer_norm_forward_impl(float* y, float* mean, float* var, const float* x, const float* gamma,
                        const float* beta, int64_t r, int64_t d, float eps) {
    parallel_blocks(r, d, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) ln_row(y + t * d, mean + t, var + t, x + t * d, gamma, beta, d, eps);
    });
}

void layer_norm_backward_impl(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* gamma, const float* mean, const float* var, int64_t r, int64_t d,
                         float eps) {
    const int64_t nchunks = ceil_div(r, ROWS);
    std::vector<float> pg(static_cast<size_t>(nchunks * d), 0.0f), pb(static_cast<size_t>(nchunks * d), 0.0f);
    team_region(threads_if(r * d > PARALLEL_GRAIN), [&] {
        std::vector<float> scratch(static_cast<size_t>(2 * d));
#pragma omp for schedule(static)
        for (int64_t k = 0; k < nchunks; ++k)
            for (int64_t t = k * ROWS; t < std::min(r, (k + 1) * ROWS); ++t)
                ln_grad_row(dx + t * d, pg.data() + k * d, pb.data() + k * d, scratch.data(), scratch.data() + d, dy + t * d,
                            x + t * d, gamma, mean[t], var[t], d, eps);
    });
    for (int64_t j = 0; j < d; ++j) {
        double g = 0.0, b = 0.0;
        for (int64_t k = 0; k < nchunks; ++k) {
            g += pg[k * d + j];
            b += pb[k * d + j];
        }
        dgamma[j] = float(g);
        dbeta[j] = float(b);
    }
}

}  // namespace
}  // namespace pyminidl::kernels
