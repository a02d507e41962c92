// bench_kernels.cpp — times the GEMM kernels without Python and prints GFLOP/s.
//
// Contents: a practical peak (a loop of independent FMAs, one per thread), then sgemm on the
// shapes of benchmarks/bench_gemm.py (squares 64..2048 and the Dense layers of an MNIST MLP
// at batch 128), each checked against sgemm_naive before it is timed (llm.c dev/cpu style).
// Usage: pyminidl_bench [threads] [isa]   e.g. `pyminidl_bench 2 avx2`
// Layout: row-major operands, as the Python binding passes them.
// Built only with -DPYMINIDL_BUILD_BENCH=ON (CMakeLists.txt).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "cpu_features.h"
#include "gemm.h"

#if defined(PYMINIDL_X86)
#include <immintrin.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

#if defined(PYMINIDL_X86) && (defined(__GNUC__) || defined(__clang__))
// 12 independent FMA chains: enough to cover 2 pipes x 4 cycles of latency. Compiled for
// AVX2+FMA only here (target attribute) and run only when the CPU has them; on Zen 4 this
// is also the AVX-512 peak (its 512-bit FMAs are double-pumped on the same two pipes).
__attribute__((target("avx2,fma"))) double fma_loop(int64_t iters) {
    __m256 acc[12];
    for (auto& a : acc) a = _mm256_set1_ps(0.0f);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; ++i) {
        for (auto& a : acc) a = _mm256_fmadd_ps(a, x, y);
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
    alignas(32) float out[8];
    _mm256_store_ps(out, s);
    return out[0];
}

// GFLOP/s of all threads running fma_loop at once.
double practical_peak() {
    if (!pyminidl::cpu_features().fma) return 0.0;
    const int64_t iters = 50'000'000;
    double sink = 0.0;
    const auto t0 = Clock::now();
#pragma omp parallel reduction(+ : sink)
    sink += fma_loop(iters);
    const double t = seconds_since(t0);
    if (sink == 42.0) std::printf(" ");  // keeps the loop alive
    return pyminidl::omp_max_threads() * iters * 12.0 * 8 * 2 / t / 1e9;
}
#else
double practical_peak() { return 0.0; }
#endif

struct Case {
    const char* name;
    int64_t M, N, K;
    bool ta, tb;
};

// Max |C - C_naive| relative to max |C_naive|.
double check(const Case& c, const std::vector<float>& A, const std::vector<float>& B) {
    std::vector<float> got(c.M * c.N), want(c.M * c.N);
    const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
    pyminidl::kernels::sgemm(got.data(), c.N, A.data(), lda, c.ta, B.data(), ldb, c.tb, c.M, c.N, c.K, 1.f, 0.f);
    pyminidl::kernels::sgemm_naive(want.data(), c.N, A.data(), lda, c.ta, B.data(), ldb, c.tb, c.M, c.N, c.K, 1.f, 0.f);
    double err = 0.0, scale = 1e-30;
    for (size_t i = 0; i < got.size(); ++i) {
        err = std::max(err, std::fabs(double(got[i]) - double(want[i])));
        scale = std::max(scale, std::fabs(double(want[i])));
    }
    return err / scale;
}

// Median seconds of one sgemm call over enough reps to fill ~0.3 s.
double time_case(const Case& c, const std::vector<float>& A, const std::vector<float>& B) {
    std::vector<float> C(c.M * c.N);
    const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
    auto run = [&] {
        pyminidl::kernels::sgemm(C.data(), c.N, A.data(), lda, c.ta, B.data(), ldb, c.tb, c.M, c.N, c.K, 1.f, 0.f);
    };
    run();
    auto t0 = Clock::now();
    run();
    const double once = std::max(seconds_since(t0), 1e-7);
    const int reps = static_cast<int>(std::clamp(0.3 / once, 5.0, 2000.0));
    std::vector<double> ts(reps);
    for (double& t : ts) {
        t0 = Clock::now();
        run();
        t = seconds_since(t0);
    }
    std::nth_element(ts.begin(), ts.begin() + reps / 2, ts.end());
    return ts[reps / 2];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) pyminidl::omp_set_threads(std::max(1, std::atoi(argv[1])));
    pyminidl::Isa isa;
    if (argc > 2 && pyminidl::parse_isa(argv[2], &isa)) pyminidl::set_isa_cap(isa);
    const int threads = pyminidl::omp_max_threads();
    const double peak = practical_peak();
    std::printf("pyminidl sgemm: threads=%d isa=%s practical FMA peak=%.1f GFLOP/s\n", threads,
                pyminidl::isa_name(pyminidl::active_isa()), peak);
    const Case cases[] = {
        {"square 64", 64, 64, 64, false, false},       {"square 128", 128, 128, 128, false, false},
        {"square 256", 256, 256, 256, false, false},   {"square 512", 512, 512, 512, false, false},
        {"square 1024", 1024, 1024, 1024, false, false}, {"square 2048", 2048, 2048, 2048, false, false},
        {"fwd1 x@W1", 128, 256, 784, false, false},    {"fwd2 h@W2", 128, 10, 256, false, false},
        {"dW1 x.T@dy", 784, 256, 128, true, false},    {"dX1 dy@W1.T", 128, 784, 256, false, true},
        {"dW2 h.T@dy", 256, 10, 128, true, false},     {"dh dy@W2.T", 128, 256, 10, false, true},
    };
    std::printf("%-12s %16s %5s %10s %9s %8s %10s\n", "case", "M,N,K", "tA,tB", "median ms", "GFLOP/s",
                "%peak", "rel.err");
    std::mt19937 gen(0);
    std::normal_distribution<float> dist;
    for (const Case& c : cases) {
        std::vector<float> A(c.M * c.K), B(c.K * c.N);
        for (float& v : A) v = dist(gen);
        for (float& v : B) v = dist(gen);
        const double err = c.M * c.N * c.K <= 512LL * 512 * 512 ? check(c, A, B) : 0.0;
        if (err > 1e-4) {
            std::printf("%-12s WRONG: relative error %.3g\n", c.name, err);
            return 1;
        }
        const double t = time_case(c, A, B), gf = 2.0 * c.M * c.N * c.K / t / 1e9;
        char shape[48];
        std::snprintf(shape, sizeof shape, "%lld,%lld,%lld", (long long)c.M, (long long)c.N, (long long)c.K);
        std::printf("%-12s %16s %3s%s %10.3f %9.1f %7.1f%% %10.2g\n", c.name, shape, c.ta ? "T" : "N",
                    c.tb ? "T" : "N", t * 1e3, gf, peak > 0 ? 100.0 * gf / peak : 0.0, err);
    }
    return 0;
}
