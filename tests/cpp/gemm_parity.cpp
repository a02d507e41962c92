// gemm_parity.cpp — C++ parity checks of the GEMM without Python, for builds the Python
// suite cannot reach (a cross-compiled aarch64 library run under qemu-user: see
// tools/cross_aarch64.sh). Correctness only: timings under an emulator mean nothing.
//
// Checks, on every ISA path the CPU runs (PYMINIDL_CPU_CAPABILITY still caps them):
//   sgemm / dgemm against sgemm_naive / dgemm_naive on shapes with 1, primes and tails
//   off every tile, all four transpose pairs, alpha/beta (beta = 0 never reads C: C starts
//   as NaN), a C with a row stride wider than N; the relative error bound grows with K;
//   1 and 2 threads give identical bits; sgemm_serial / dgemm_serial equal the threaded call.
// Exit status 0 when every check passes; each failure prints one line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common.h"
#include "cpu_features.h"
#include "gemm.h"

namespace {

namespace k = pyminidl::kernels;

template <typename T>
struct Api;
template <>
struct Api<float> {
    static constexpr auto gemm = k::sgemm;
    static constexpr auto naive = k::sgemm_naive;
    static constexpr auto serial = k::sgemm_serial;
    static constexpr auto work = k::sgemm_workspace_elems;
    static constexpr double eps = 6e-8;
};
template <>
struct Api<double> {
    static constexpr auto gemm = k::dgemm;
    static constexpr auto naive = k::dgemm_naive;
    static constexpr auto serial = k::dgemm_serial;
    static constexpr auto work = k::dgemm_workspace_elems;
    static constexpr double eps = 1.2e-16;
};

struct Shape {
    int64_t M, N, K;
};

int failures = 0;

// One product on the active path: error against the naive loop, thread-count and serial
// entry identity.
template <typename T>
void check(const Shape& s, bool ta, bool tb, T alpha, T beta, std::mt19937& gen) {
    std::normal_distribution<double> dist;
    const int64_t lda = ta ? s.M : s.K, ldb = tb ? s.K : s.N, ldc = s.N + 3;
    std::vector<T> A(s.M * s.K), B(s.K * s.N), C0(s.M * ldc);
    for (T& v : A) v = T(dist(gen));
    for (T& v : B) v = T(dist(gen));
    for (T& v : C0) v = beta == T(0) ? std::numeric_limits<T>::quiet_NaN() : T(dist(gen));
    std::vector<T> want = C0, one = C0, two = C0, ser = C0;
    Api<T>::naive(want.data(), ldc, A.data(), lda, ta, B.data(), ldb, tb, s.M, s.N, s.K, alpha, beta);
    pyminidl::omp_set_threads(1);
    Api<T>::gemm(one.data(), ldc, A.data(), lda, ta, B.data(), ldb, tb, s.M, s.N, s.K, alpha, beta);
    pyminidl::omp_set_threads(2);
    Api<T>::gemm(two.data(), ldc, A.data(), lda, ta, B.data(), ldb, tb, s.M, s.N, s.K, alpha, beta);
    std::vector<T> work(Api<T>::work(s.M, s.N, s.K));
    Api<T>::serial(ser.data(), ldc, A.data(), lda, ta, B.data(), ldb, tb, s.M, s.N, s.K, alpha, beta,
                   work.data(), static_cast<int64_t>(work.size()));
    // |error| <= c * K * eps * (|alpha| sum |a||b| + |beta c|) per element, bounded here by
    // the largest magnitude of the result's terms (entries are N(0, 1)).
    const double bound = 8.0 * (static_cast<double>(s.K) + 2.0) * Api<T>::eps *
                          (std::fabs(double(alpha)) * std::sqrt(double(s.K)) * 6.0 + 6.0);
    double err = 0.0;
    for (int64_t i = 0; i < s.M; ++i) {
        for (int64_t j = 0; j < s.N; ++j) {
            const double d = std::fabs(double(one[i * ldc + j]) - double(want[i * ldc + j]));
            err = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(err, d);
        }
        for (int64_t j = s.N; j < ldc; ++j) {  // columns past N are not touched
            const bool same = std::memcmp(&one[i * ldc + j], &C0[i * ldc + j], sizeof(T)) == 0;
            if (!same) err = std::numeric_limits<double>::infinity();
        }
    }
    const bool det = std::memcmp(one.data(), two.data(), sizeof(T) * one.size()) == 0;
    const bool sereq = std::memcmp(one.data(), ser.data(), sizeof(T) * one.size()) == 0;
    if (err > bound || !det || !sereq) {
        ++failures;
        std::printf("FAIL %s %s M=%lld N=%lld K=%lld t=%c%c alpha=%g beta=%g: err %.3g (bound %.3g)%s%s\n",
                    pyminidl::isa_name(pyminidl::active_isa()), sizeof(T) == 4 ? "f32" : "f64",
                    (long long)s.M, (long long)s.N, (long long)s.K, ta ? 'T' : 'N', tb ? 'T' : 'N',
                    double(alpha), double(beta), err, bound, det ? "" : ", 1 vs 2 threads differ",
                    sereq ? "" : ", serial entry differs");
    }
}

template <typename T>
int run_path(std::mt19937& gen) {
    const Shape shapes[] = {{1, 1, 1},    {7, 3, 17},    {17, 65, 7},    {65, 257, 33},
                            {128, 10, 256}, {128, 256, 10}, {263, 301, 777}, {300, 40, 1300},
                            {13, 1000, 5}, {520, 530, 90}};
    int cases = 0;
    for (const Shape& s : shapes) {
        for (int t = 0; t < 4; ++t) {
            check<T>(s, t & 1, t & 2, T(1), T(0), gen);
            check<T>(s, t & 1, t & 2, T(0.5), T(-1.5), gen);
            cases += 2;
        }
    }
    return cases;
}

}  // namespace

int main() {
    std::mt19937 gen(0);
    const pyminidl::Isa best = pyminidl::active_isa();
    int cases = 0;
    for (int i = 0; i <= static_cast<int>(best); ++i) {
        pyminidl::set_isa_cap(static_cast<pyminidl::Isa>(i));
        cases += run_path<float>(gen) + run_path<double>(gen);
        const auto cfg = k::gemm_config(pyminidl::active_isa());
        std::printf("%-8s sgemm %lldx%lld MC=%lld KC=%lld NC=%lld  dgemm %lldx%lld: checked\n", cfg.isa,
                    (long long)cfg.f32.MR, (long long)cfg.f32.NR, (long long)cfg.f32.MC,
                    (long long)cfg.f32.KC, (long long)cfg.f32.NC, (long long)cfg.f64.MR,
                    (long long)cfg.f64.NR);
    }
    std::printf("%d products, %d failures\n", cases, failures);
    return failures == 0 ? 0 : 1;
}
