// fastmath.h — exp, expm1, tanh, log1p and Phi for the elementwise kernels, vectorisable in
// float32, and the row reductions of the softmax kernels.
//
// glibc's expf/tanhf are opaque scalar calls (its SIMD variants are only declared under
// -ffast-math), so a loop calling them runs one element at a time. The float overloads
// below are branch-free polynomials that GCC vectorises at -O3:
//   exp_f(x)   Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (Cephes
//              expf), 2^n applied as two normal powers of two so denormal results survive.
//   tanh_f(x)  |x| < 0.625: odd polynomial (Cephes tanhf), no cancellation near 0;
//              else sign(x) (1 - 2 / (exp(2|x|) + 1)), on exp_normal_f (exp_f without its
//              clamp below and its denormal scaling, which that arm never needs).
//   expm1_f(x) |x| < 0.5: Taylor polynomial; else exp_f(x) - 1.
//   log1p_unit_f(u)  u in [0, 1] only (softplus): Cephes logf of 1 + u plus the rounding
//              correction (u - ((1 + u) - 1)) / (1 + u).
//   normal_cdf_f(x)  Phi(x) for exact GELU: own polynomial fits of erf and erfc, evaluated
//              in double (see there).
// Measured over sweeps of every float32 input range against double: exp 0.99 ulp, tanh
// 1.33, expm1 1.19, log1p 1.23, Phi 1.64 (the reference's float32 1 + erf(u) cancels to
// 0 in the left tail). +-inf, overflow, underflow and NaN give what std:: gives.
// The double overloads are the std:: functions: float64 exists for gradient checks.
// Everything here has internal linkage (an anonymous namespace): the per-ISA translation
// units (activations_impl.h) compile their own copies with their own -m flags, and no copy
// built for AVX-512 can be linked into the baseline path.
// Reference: S. Moshier, Cephes Math Library (expf.c, tanhf.c, logf.c).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "channel_blocks.h"
#include "common.h"

namespace pyminidl::kernels {
namespace {

PMD_ALWAYS_INLINE float float_from_bits(int32_t i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}

// exp(x) = y 2^n: the Cody-Waite reduction and the Cephes polynomial; returns y, sets n (an
// integer). x must be finite and within exp_f's clamps.
PMD_ALWAYS_INLINE float exp_reduced(float x, float& n) {
    const float shifter = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
    n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f;  // ln 2 in two parts, the first exact in float
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}

PMD_ALWAYS_INLINE float exp_f(float x) {
    // Clamp by selects that also map NaN to a finite value (a NaN -> int conversion would be
    // undefined); the NaN is put back at the end. exp(89) overflows, exp(-104) underflows.
    float xc = x >= -104.0f ? x : -104.0f;
    xc = xc <= 89.0f ? xc : 89.0f;
    float n;
    const float y = exp_reduced(xc, n);
    const int32_t ni = int32_t(n);  // in [-150, 128]: both halves give normal powers of two
    const int32_t n1 = ni >> 1, n2 = ni - n1;
    const float s = (y * float_from_bits((n1 + 127) << 23)) * float_from_bits((n2 + 127) << 23);
    return x != x ? x : s;
}

// exp(x) for x in [-87, 88] (no NaN): the result and 2^n are normal there, so one multiply
// applies the power of two, with exp_f's bits (its two steps exist for denormal results).
PMD_ALWAYS_INLINE float exp_normal_f(float x) {
    float n;
    const float y = exp_reduced(x, n);
    return y * float_from_bits((int32_t(n) + 127) << 23);
}

PMD_ALWAYS_INLINE float tanh_f(float x) {
    const float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = p * z * x + x;
    // The large arm sees 2|x| >= 1.25, clamped at 88 (select: NaN -> 88): from 2|x| = 18 on,
    // 1 - 2 / (exp(2|x|) + 1) is exactly 1 in float, so the clamp changes no result.
    const float a2 = 2.0f * std::abs(x);
    const float large = std::copysign(1.0f - 2.0f / (exp_normal_f(a2 < 88.0f ? a2 : 88.0f) + 1.0f), x);
    return x != x ? x : std::abs(x) < 0.625f ? small : large;
}

PMD_ALWAYS_INLINE float expm1_f(float x) {
    // |x| < 0.5: Taylor series to x^8 (truncation < 2e-8 relative), no cancellation near 0;
    // elsewhere exp(x) - 1 loses nothing (|result| > 0.39). -inf -> -1, NaN -> NaN.
    float p = 2.48015873e-5f;  // 1/8!
    p = p * x + 1.98412698e-4f;
    p = p * x + 1.38888889e-3f;
    p = p * x + 8.33333333e-3f;
    p = p * x + 4.16666667e-2f;
    p = p * x + 1.66666667e-1f;
    p = p * x + 0.5f;
    const float small = x == 0.0f ? x : x + x * x * p;  // keeps -0, like std::expm1
    const float large = exp_f(x) - 1.0f;
    return std::abs(x) < 0.5f ? small : large;
}

PMD_ALWAYS_INLINE int32_t float_bits(float f) {
    int32_t i;
    std::memcpy(&i, &f, sizeof i);
    return i;
}

PMD_ALWAYS_INLINE float log1p_unit_f(float u) {
    // log1p(u) for u in [0, 1] (softplus's log1p(exp(-|x|))), NaN -> NaN. w = 1 + u is in
    // [1, 2]: log(w) by Cephes logf (w = 2^e m, m in [sqrt(1/2), sqrt 2), polynomial in m - 1),
    // plus (u - (w - 1)) / w, the rounding lost in forming w, which keeps tiny u exact.
    const float w = 1.0f + u;
    const int32_t bits = float_bits(w);
    float e = float(((bits >> 23) & 0xff) - 126);
    float m = float_from_bits((bits & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
    const bool low = m < 0.707106781186547524f;
    e = low ? e - 1.0f : e;
    m = low ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float p = 7.0376836292e-2f;
    p = p * m - 1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m - 1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m - 1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m - 2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    float y = p * m * z;
    y += e * -2.12194440e-4f;
    y += -0.5f * z;
    const float log_w = (m + y) + e * 0.693359375f;
    return log_w + (u - (w - 1.0f)) / w;
}

PMD_ALWAYS_INLINE float normal_cdf_f(float x) {
    // Phi(x) = (1 + erf(u)) / 2, u = x / sqrt 2, for exact GELU. Below 0 it is erfc(|u|) / 2,
    // computed directly, so the left tail keeps full relative precision where the reference's
    // 1 + erf(u) cancels. The polynomials run in double (still vectorised, half as wide):
    // float Horner sums round to ~2 ulp and 1 - erf near |u| = 1 would multiply that by 5.
    // Coefficients: this project's own weighted least-squares (near-minimax) fits in double:
    //   |u| < 1:  erf = a P(a^2), a = |u| (relative error 1.3e-10).
    //   |u| >= 1: erfc = exp(-a^2) R(1/a) / a, R a fit of erfc(a) a exp(a^2) over a in [1, 4]
    //             (2.8e-9) and another over [4, 10.5] (1.2e-9); beyond, Phi is below the
    //             smallest float and the right tail is exactly 1.
    const float u = x / 1.41421356237309504880f;  // rounded in float, as the reference does
    const double a = std::abs(double(u)), z = a * a;  // exact: a has 24 significant bits
    double p = -9.395787218758954e-06;
    p = p * z + 1.1167471193544307e-04;
    p = p * z - 8.469881846033307e-04;
    p = p * z + 5.220000552815666e-03;
    p = p * z - 2.6865036332948768e-02;
    p = p * z + 1.1283774977519405e-01;
    p = p * z - 3.761263787368327e-01;
    p = p * z + 1.1283791669481757;
    const double erf_small = a * p;
    const double t = 1.0 / a;
    const double s1 = (t - 0.625) * 2.6666666666666665;  // a in [1, 4]
    double r1 = 1.2999109475971244e-06;
    r1 = r1 * s1 - 6.979083140715891e-06;
    r1 = r1 * s1 + 1.8219821199842677e-05;
    r1 = r1 * s1 - 2.5737997174649156e-05;
    r1 = r1 * s1 - 2.8374781920438526e-05;
    r1 = r1 * s1 + 3.679744747923493e-04;
    r1 = r1 * s1 - 1.5431806083282004e-03;
    r1 = r1 * s1 + 3.802232628707147e-03;
    r1 = r1 * s1 - 1.8204789864214056e-04;
    r1 = r1 * s1 - 6.434461795814486e-02;
    r1 = r1 * s1 + 4.895247876478673e-01;
    const double s2 = (t - 0.17261904761904762) * 12.923076923076923;  // a in [4, 10.5]
    double r2 = 6.168788143783126e-08;
    r2 = r2 * s2 - 1.2311553395554199e-06;
    r2 = r2 * s2 + 4.070036759010401e-06;
    r2 = r2 * s2 + 9.640337251539396e-05;
    r2 = r2 * s2 - 1.306946961033437e-03;
    r2 = r2 * s2 - 6.928730985924522e-03;
    r2 = r2 * s2 + 5.561342044863458e-01;
    const double r = a < 4.0 ? r1 : r2;
    // exp(-a^2) = exp_f(-z_hi) (1 - z_lo), z = z_hi + z_lo with z_hi = float(z): z_lo is
    // below 2^-17 z, so the first-order factor is exact to float precision.
    const float z_hi = float(z);
    const double z_lo = z < 1e30 ? z - double(z_hi) : 0.0;  // 0 for a = inf (inf - inf)
    const double erfc_large = double(exp_f(-z_hi)) * (1.0 - z_lo) * r * t;
    const double erf_a = a < 1.0 ? erf_small : 1.0 - erfc_large;
    const double erfc_a = a < 1.0 ? 1.0 - erf_small : erfc_large;
    return float(u >= 0.0f ? 0.5 * (1.0 + erf_a) : 0.5 * erfc_a);  // NaN takes the second arm
}

PMD_ALWAYS_INLINE float exp_v(float x) { return exp_f(x); }
PMD_ALWAYS_INLINE float expm1_v(float x) { return expm1_f(x); }
PMD_ALWAYS_INLINE double expm1_v(double x) { return std::expm1(x); }
PMD_ALWAYS_INLINE float log1p_unit_v(float u) { return log1p_unit_f(u); }
PMD_ALWAYS_INLINE double log1p_unit_v(double u) { return std::log1p(u); }
PMD_ALWAYS_INLINE double exp_v(double x) { return std::exp(x); }
PMD_ALWAYS_INLINE float tanh_v(float x) { return tanh_f(x); }
PMD_ALWAYS_INLINE double tanh_v(double x) { return std::tanh(x); }
PMD_ALWAYS_INLINE float normal_cdf_v(float x) { return normal_cdf_f(x); }
// float64 keeps the reference's own formula (math.erf is std::erf).
PMD_ALWAYS_INLINE double normal_cdf_v(double x) { return 0.5 * (1.0 + std::erf(x / 1.41421356237309504880)); }

// The row reductions of the softmax kernels. x, a, b: (n,).
//   row_max(x, n)   max(x), n >= 1; NaN if any x is NaN (as numpy.max: the first NaN), so a
//                   NaN anywhere in a row makes the whole row NaN like the reference.
//   row_sum(a, n)   sum(a) in double.   row_dot(a, b, n)   sum(a * b) in double.
// The sums run in a fixed order that does not depend on the SIMD width or the thread count,
// so every ISA path gives the same bits. float rows (the training dtype) run in blocks of
// LANES (channel_blocks.h): lane k takes elements k, k + 16, ..., in double; the lanes meet in
// lanes_total's fixed tree; the last n % 16 elements add four interleaved partial sums.
// float64 rows (gradient checks) keep the four partial sums alone.

template <typename T>
PMD_ALWAYS_INLINE T row_max_tail(const T* x, int64_t j, int64_t n, T mx) {
    for (; j < n; ++j) {
        if (x[j] > mx || x[j] != x[j]) mx = x[j];
        if (mx != mx) break;
    }
    return mx;
}

template <typename T>
PMD_ALWAYS_INLINE T row_max(const T* x, int64_t cols) {
    return row_max_tail(x, 1, cols, x[0]);
}

// The max is exact in any order; the NaN test rides along as a lane mask, and a row that
// holds a NaN is scanned again in order for its first NaN.
PMD_ALWAYS_INLINE float row_max(const float* x, int64_t n) {
    if (n < LANES) return row_max_tail(x, 1, n, x[0]);
    VecF m[NVEC];
    VecI nan[NVEC];
    for (int u = 0; u < NVEC; ++u) {
        m[u] = VecF{} + x[0];
        nan[u] = VecI{};
    }
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        VecF v[NVEC];
        load_vecs(v, x + j);
        for (int u = 0; u < NVEC; ++u) {
            m[u] = v[u] > m[u] ? v[u] : m[u];
            nan[u] |= v[u] != v[u];
        }
    }
    float mx = x[0];
    int32_t any_nan = 0;
    for (int u = 0; u < NVEC; ++u)
        for (int k = 0; k < VEC; ++k) {
            mx = m[u][k] > mx ? m[u][k] : mx;
            any_nan |= nan[u][k];
        }
    return any_nan ? row_max_tail(x, 0, n, x[0]) : row_max_tail(x, j, n, mx);
}

// f(j): the j-th term in double; four partial sums combined as (s0 + s1) + (s2 + s3).
template <typename F>
PMD_ALWAYS_INLINE double sum4(int64_t j, int64_t n, F f) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (; j + 4 <= n; j += 4) {
        s0 += f(j);
        s1 += f(j + 1);
        s2 += f(j + 2);
        s3 += f(j + 3);
    }
    for (; j < n; ++j) s0 += f(j);
    return (s0 + s1) + (s2 + s3);
}

// block(acc, j): adds the terms j .. j + LANES to acc's lanes; term(j): one term in double,
// the same value block adds for it. Returns the sum of terms 0 .. n.
template <typename Block, typename Term>
PMD_ALWAYS_INLINE double lanes_sum(int64_t n, Block block, Term term) {
    if (n < LANES) return sum4(0, n, term);
    WideLanes acc{};
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) block(acc, j);
    return lanes_total(acc) + sum4(j, n, term);
}

template <typename T>
PMD_ALWAYS_INLINE double row_sum(const T* a, int64_t n) {
    return sum4(0, n, [a](int64_t j) { return double(a[j]); });
}

PMD_ALWAYS_INLINE double row_sum(const float* a, int64_t n) {
    return lanes_sum(
        n,
        [a](WideLanes& acc, int64_t j) {
            for (int u = 0; u < NHALF; ++u) acc.v[u] += load_widened(a + j + u * HALF);
        },
        [a](int64_t j) { return double(a[j]); });
}

template <typename T>
PMD_ALWAYS_INLINE double row_dot(const T* a, const T* b, int64_t n) {
    return sum4(0, n, [a, b](int64_t j) { return double(a[j]) * double(b[j]); });
}

PMD_ALWAYS_INLINE double row_dot(const float* a, const float* b, int64_t n) {
    return lanes_sum(
        n,
        [a, b](WideLanes& acc, int64_t j) {
            for (int u = 0; u < NHALF; ++u)
                acc.v[u] += load_widened(a + j + u * HALF) * load_widened(b + j + u * HALF);
        },
        [a, b](int64_t j) { return double(a[j]) * double(b[j]); });
}

}  // namespace
}  // namespace pyminidl::kernels
