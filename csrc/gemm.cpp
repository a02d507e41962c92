// gemm.cpp — blocked GEMM (BLIS structure) for float32 and float64, plus the Dense helpers
// built on it.
//
// Contents:
//   sgemm / dgemm            C = alpha op(A) op(B) + beta C: packs op(A) and op(B) into
//                            zero-padded micro-panels and runs the loop nest
//                              jc (NC) > pc (KC) > ic (MC) > jr (NR) > ir (MR) > micro-kernel
//                            with the micro-kernel of the active ISA path (gemm_ukernels.h);
//                            a tile of the last mr < MR rows runs the path's rows kernel, and
//                            one of the last nr < NR columns its cols kernel, where it has them
//                            (AVX2, AVX-512 float32), else the full kernel on a scratch tile.
//                            Paths, chosen per call from the shape and strides only (never
//                            from the thread count, so results never depend on it):
//                              dot     N <= 12 (AVX2, AVX-512): vectors along k, one reduction
//                                      tree per tile of RR x 2 c_ij;
//                              direct  small products, or op(A) in L2, with a unit-stride op(B):
//                                      micro-kernels read op(A) and op(B) in place (no packing),
//                                      on C or on C^T, whichever fills the tiles better;
//                              small   tiny products on the baseline path: an unpacked loop;
//                              packed  everything else (the BLIS loop nest above).
//   sgemm_naive / dgemm_naive  the triple loop: reference and fallback.
//   dense_forward, bias_add, bias_grad   the Dense layer's pointwise parts
//                            (dense_activation_grad, declared in gemm.h: dense_activation.cpp).
//   the portable (baseline) micro-kernels, on GCC/Clang vector extensions (SSE2 on x86-64,
//   NEON on aarch64).
//
// Layout: row-major operands with leading dimensions (row strides) lda, ldb, ldc; a
// transposed operand is read through swapped strides, so op() costs nothing but packing.
//
// Threads: one OpenMP region per call (none for single-thread work). Each thread owns a
// rectangle of C (MR-aligned rows x NR-aligned columns) and runs the loop nest on it with
// its own packing buffers for A and B: no barrier, so on a shared machine a descheduled
// thread stalls only itself (the price: the shared operand is packed once per thread,
// ~1-3% of the work). Tile boundaries, KC blocks and the k order inside the micro-kernel
// do not depend on the thread count, so 1 and 2 threads give bit-identical results.
// No buffer is static.
//
// References: F. Van Zee, R. van de Geijn, "BLIS: A Framework for Rapidly Instantiating
// BLAS Functionality", ACM TOMS 41(3), 2015; K. Goto, R. van de Geijn, "Anatomy of
// High-Performance Matrix Multiplication", ACM TOMS 34(3), 2008; T. Smith et al.,
// "Anatomy of High-Performance Many-Threaded Matrix Multiplication", IPDPS 2014.
#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

#include "cpu_features.h"
#include "gemm_ukernels.h"
#include "parallel.h"
#include "team.h"

namespace pyminidl::kernels {

namespace detail {

namespace {

// The portable micro-kernel, written with GCC/Clang vector extensions: one 16-byte vector
// type per dtype, which the compiler maps to SSE2 xmm registers on baseline x86-64 and to
// NEON q registers on aarch64 (and to pairs of scalars where neither exists), so a non-x86
// build gets a register-tiled kernel too, not the auto-vectoriser's guess. The tile fills
// the register file of the target (gemm_ukernels.h): 12 accumulators of 16 xmm on x86, 16
// of 32 q registers on aarch64.
#if defined(__GNUC__) || defined(__clang__)
typedef float VecF32 __attribute__((vector_size(16)));
typedef double VecF64 __attribute__((vector_size(16)));
template <typename T>
using PortableVec = std::conditional_t<std::is_same_v<T, float>, VecF32, VecF64>;

template <typename V, typename T>
PMD_ALWAYS_INLINE V vload(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);  // packed panels are 16-byte aligned: one vector load
    return v;
}

// Every lane = x; the brace form is what GCC and Clang turn into one shuffle (or dup).
PMD_ALWAYS_INLINE VecF32 vbcast(float x) { return VecF32{x, x, x, x}; }
PMD_ALWAYS_INLINE VecF64 vbcast(double x) { return VecF64{x, x}; }

// a: (kc, MR) packed, b: (kc, NV * W) packed, c: (MR, NV * W) row stride ldc.
// AR == W: A packed with every value repeated W times (x86, see BASELINE_SGEMM_AR), read
// as whole vectors; AR == 1: broadcast from single values (NEON's ld1r / fmla by element).
template <typename T, int MR, int NV, int AR>
PMD_ALWAYS_INLINE void ukernel_portable(int64_t kc, const T* PMD_RESTRICT a,
                                        const T* PMD_RESTRICT b, T* PMD_RESTRICT c, int64_t ldc,
                                        T alpha, T beta) {
    using V = PortableVec<T>;
    constexpr int W = static_cast<int>(sizeof(V) / sizeof(T)), NR = NV * W;
    static_assert(AR == 1 || AR == W, "A is packed plain or one vector per value");
    V acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = V{};
    // Unrolled by 4: without it the pointer and counter updates take 4 of the ~40 issue
    // slots of one k step, and SSE2's two-operand mul + add already fill the front end.
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p, a += MR * AR, b += NR) {
        V bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = vload<V>(b + v * W);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            V ai;
            if constexpr (AR == 1) {
                ai = vbcast(a[i]);
            } else {
                ai = vload<V>(a + i * AR);
            }
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[i][v] += ai * bv[v];
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            T* ci = c + i * ldc + v * W;
            // beta == 0 must not read c: it may be uninitialised (or hold NaN).
            V r = alpha * acc[i][v];
            if (beta != T(0)) r += beta * vload<V>(ci);
            std::memcpy(ci, &r, sizeof r);
        }
    }
}
#else
// Without vector extensions: the same tile as scalars (the compiler may vectorise the j loop).
template <typename T, int MR, int NV, int AR>
PMD_ALWAYS_INLINE void ukernel_portable(int64_t kc, const T* PMD_RESTRICT a,
                                        const T* PMD_RESTRICT b, T* PMD_RESTRICT c, int64_t ldc,
                                        T alpha, T beta) {
    constexpr int NR = NV * static_cast<int>(16 / sizeof(T));
    T acc[MR][NR] = {};
    for (int64_t p = 0; p < kc; ++p, a += MR * AR, b += NR) {
        for (int i = 0; i < MR; ++i) {
            for (int j = 0; j < NR; ++j) acc[i][j] += a[i * AR] * b[j];
        }
    }
    for (int i = 0; i < MR; ++i) {
        for (int j = 0; j < NR; ++j) {
            T* cij = c + i * ldc + j;
            *cij = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *cij;
        }
    }
}
#endif

}  // namespace

void sgemm_ukernel_baseline(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                            float alpha, float beta) {
    // a: (kc, MR, AR) packed, b: (kc, NR) packed, c: (MR, NR) row stride ldc (BASELINE_SGEMM_*).
    ukernel_portable<float, BASELINE_SGEMM_MR, BASELINE_SGEMM_NR / 4, BASELINE_SGEMM_AR>(kc, a, b, c, ldc,
                                                                                      alpha, beta);
}

void dgemm_ukernel_baseline(int64_t kc, const double* a, const double* b, double* c,
                            int64_t ldc, double alpha, double beta) {
    // a: (kc, MR, AR) packed, b: (kc, NR) packed, c: (MR, NR) row stride ldc (BASELINE_DGEMM_*).
    ukernel_portable<double, BASELINE_DGEMM_MR, BASELINE_DGEMM_NR / 2, BASELINE_DGEMM_AR>(kc, a, b, c, ldc,
                                                                                       alpha, beta);
}

// 12 chains of SSE2 multiply + add (no FMA on the baseline path): its ceiling.
double fma_probe_baseline(int64_t iters) {
    float acc[12][4] = {};
    for (int64_t i = 0; i < iters; ++i) {
        for (auto& a : acc) {
            for (float& v : a) v = v * 0.999999f + 1e-7f;
        }
    }
    float s = 0.0f;
    for (auto& a : acc) s += a[0] + a[1] + a[2] + a[3];
    return s;
}

}  // namespace detail

namespace {

using detail::GemmDirectKernel;
using detail::GemmDotKernel;
using detail::GemmUkernel;
using detail::Ukernels;

// Below this M*N*K the packed path's packing and tile bookkeeping cost more than they
// save: an unpacked loop runs instead.
constexpr int64_t SMALL_GEMM_MNK = 24 * 24 * 24;
// Each extra thread needs about this much M*N*K to pay for waking it. A sleeping worker takes
// ~10-30 us to wake, so a product shorter than ~50 us on one thread (2 * MNK / 60 GFLOP/s) stays
// on one: the Dense shapes with 10 units (128 x 10 x 256) ran at 0.4x NumPy on 2 threads, ~1x on
// one (measured under OMP_WAIT_POLICY=passive). pyminidl sets a short spin instead
// (GOMP_SPINCOUNT, backend/_compat.py): a worker is still awake right after a region, asleep
// again after ~0.5 ms of other work.
constexpr int64_t MIN_MNK_PER_THREAD = 112 * 112 * 112;
// While the workers still spin, or calls come in a stream (team_warm, team.h), a second thread
// pays from a far shorter product. Zen 4, 2 threads, 0.1 ms after a region, best of
// 1,000: 128^3 21 us against 37 on one thread, 96^3 11-14 against 17-19, 128 x 64 x 64 8-10
// against 12-13; but 55-80 us for 128^3 once the workers slept (1 ms after). The 10-unit
// Dense shapes (128 x 10 x 128, M*N*K 164K) gained nothing on 2 and stay on one.
constexpr int64_t MIN_MNK_PER_AWAKE_THREAD = 64 * 64 * 64;
constexpr std::size_t PACK_ALIGN = 64;  // a cache line, and one zmm register

// An operand after op(): element (r, c) is at p[r * rs + c * cs].
template <typename T>
struct View {
    T* p;
    int64_t rs, cs;
    T* at(int64_t r, int64_t c) const { return p + r * rs + c * cs; }
};

template <typename T>
struct Problem {
    int64_t M, N, K;
    View<const T> A, B;  // op(A): (M, K), op(B): (K, N)
    View<T> C;           // (M, N)
    T alpha, beta;
};

// Blocks of one ISA path; MC % MR == 0 and NC % NR == 0. l3: the L3 bytes a team of
// threads shares (usable_caches), for the team's NC; grid_tm: PYMINIDL_GEMM_GRID's rows of
// the thread grid (0: derived, thread_grid).
struct Blocks {
    int64_t MC, KC, NC;
    int64_t l3 = 0;
    int grid_tm = 0;
};

// A 64-byte aligned scratch array owned by one call (never static, never shared by calls).
template <typename T>
class PackBuffer {
public:
    explicit PackBuffer(int64_t n)
        : p_(static_cast<T*>(::operator new(sizeof(T) * std::max<int64_t>(n, 1),
                                            std::align_val_t(PACK_ALIGN)))) {}
    ~PackBuffer() { ::operator delete(p_, std::align_val_t(PACK_ALIGN)); }
    PackBuffer(PackBuffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    PackBuffer(const PackBuffer&) = delete;
    PackBuffer& operator=(const PackBuffer&) = delete;
    PackBuffer& operator=(PackBuffer&&) = delete;
    T* get() const { return p_; }

private:
    T* p_;
};


// ---------------------------------------------------------------- packing

#if defined(__SSE2__)
// dst[c * ldd + r] = src[r * lds + c] for a 4 x 4 float block.
inline void transpose_block(float* dst, int64_t ldd, const float* src, int64_t lds) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + lds);
    __m128 r2 = _mm_loadu_ps(src + 2 * lds), r3 = _mm_loadu_ps(src + 3 * lds);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst, r0);
    _mm_storeu_ps(dst + ldd, r1);
    _mm_storeu_ps(dst + 2 * ldd, r2);
    _mm_storeu_ps(dst + 3 * ldd, r3);
}

// dst[c * ldd + r] = src[r * lds + c] for a 2 x 2 double block.
inline void transpose_block(double* dst, int64_t ldd, const double* src, int64_t lds) {
    const __m128d r0 = _mm_loadu_pd(src), r1 = _mm_loadu_pd(src + lds);
    _mm_storeu_pd(dst, _mm_unpacklo_pd(r0, r1));
    _mm_storeu_pd(dst + ldd, _mm_unpackhi_pd(r0, r1));
}
#endif

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols: the transposing copy that packs
// a row-major A (or a transposed B). 4 x 4 float / 2 x 2 double blocks go through SSE2
// registers (baseline x86-64), which is several times faster than a scalar gather.
template <typename T>
void transpose_copy(T* PMD_RESTRICT dst, int64_t ldd, const T* PMD_RESTRICT src, int64_t lds,
                    int64_t rows, int64_t cols) {
    int64_t r0 = 0;
#if defined(__SSE2__)
    constexpr int B = std::is_same_v<T, float> ? 4 : 2;
    for (; r0 + B <= rows; r0 += B) {
        int64_t c = 0;
        for (; c + B <= cols; c += B) transpose_block(dst + c * ldd + r0, ldd, src + r0 * lds + c, lds);
        for (; c < cols; ++c) {
            for (int r = 0; r < B; ++r) dst[c * ldd + r0 + r] = src[(r0 + r) * lds + c];
        }
    }
#endif
    for (int64_t r = r0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
    }
}

// dst: (kc, MR) micro-panel, dst[p * MR + i] = op(A)[i, p] for i < mr, 0 for mr <= i < MR.
// src: op(A) at the panel's first element.
template <typename T, int MR>
void pack_a_panel_plain(T* PMD_RESTRICT dst, View<const T> src, int64_t mr, int64_t kc) {
    if (src.rs == 1) {  // A transposed: the mr values of one k are contiguous
        if (mr == MR) {  // a whole panel: one fixed-size copy per k (vector moves, no loop)
            for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * MR, src.p + p * src.cs, sizeof(T) * MR);
            return;
        }
        for (int64_t p = 0; p < kc; ++p) {
            const T* s = src.p + p * src.cs;
            for (int64_t i = 0; i < mr; ++i) dst[p * MR + i] = s[i];
            for (int64_t i = mr; i < MR; ++i) dst[p * MR + i] = T(0);
        }
        return;
    }
    if (src.cs == 1) {
        transpose_copy(dst, MR, src.p, src.rs, mr, kc);
    } else {
        for (int64_t i = 0; i < mr; ++i) {
            for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = *src.at(i, p);
        }
    }
    for (int64_t p = 0; p < kc; ++p) {
        for (int64_t i = mr; i < MR; ++i) dst[p * MR + i] = T(0);
    }
}

// dst[j * AR + r] = dst[j] for j < n, r < AR, from the end: the copies of value j land at
// indices >= j, past every value still to be read.
template <typename T, int AR>
void expand_in_place(T* dst, int64_t n) {
#if defined(__GNUC__) || defined(__clang__)
    if constexpr (sizeof(detail::PortableVec<T>) == AR * sizeof(T)) {  // one vector store per value
        for (int64_t j = n - 1; j >= 0; --j) {
            const detail::PortableVec<T> v = detail::vbcast(dst[j]);
            std::memcpy(dst + j * AR, &v, sizeof v);
        }
        return;
    }
#endif
    for (int64_t j = n - 1; j >= 0; --j) {
        const T v = dst[j];
        for (int r = 0; r < AR; ++r) dst[j * AR + r] = v;
    }
}

// AR > 1: each value of the plain panel repeated AR times, dst[(p * MR + i) * AR + r], so
// a micro-kernel without a cheap broadcast (SSE2: movss + shufps on the FP pipes) loads
// whole vectors of A instead. Expanded in place from the end (index j * AR >= j).
template <typename T, int MR, int AR>
void pack_a_panel(T* PMD_RESTRICT dst, View<const T> src, int64_t mr, int64_t kc) {
    pack_a_panel_plain<T, MR>(dst, src, mr, kc);
    if constexpr (AR > 1) expand_in_place<T, AR>(dst, kc * MR);
}

// dst: (kc, NR) micro-panel, dst[p * NR + j] = op(B)[p, j] for j < nr, 0 for nr <= j < NR.
template <typename T, int NR>
void pack_b_panel(T* PMD_RESTRICT dst, View<const T> src, int64_t nr, int64_t kc) {
    if (src.cs == 1) {  // B not transposed: the nr values of one k are contiguous
        for (int64_t p = 0; p < kc; ++p) {
            const T* s = src.p + p * src.rs;
            T* d = dst + p * NR;
            if (nr == NR) {
                std::memcpy(d, s, sizeof(T) * NR);
            } else {
                for (int64_t j = 0; j < nr; ++j) d[j] = s[j];
                for (int64_t j = nr; j < NR; ++j) d[j] = T(0);
            }
        }
        return;
    }
    if (src.rs == 1) {
        transpose_copy(dst, NR, src.p, src.cs, nr, kc);
    } else {
        for (int64_t j = 0; j < nr; ++j) {
            for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = *src.at(p, j);
        }
    }
    for (int64_t p = 0; p < kc; ++p) {
        for (int64_t j = nr; j < NR; ++j) dst[p * NR + j] = T(0);
    }
}

// ---------------------------------------------------------------- macro-kernel

// A tile at the edge of C on a path without rows or cols kernels, or a tile of a C with
// non-unit column stride: the micro-kernel runs on a full MR x NR scratch tile (same
// arithmetic as an interior tile), then mr x nr is copied.
template <typename T, int MR, int NR>
void edge_tile(GemmUkernel<T> ukernel, int64_t kc, const T* a, const T* b, View<T> c,
               int64_t mr, int64_t nr, T alpha, T beta) {
    alignas(PACK_ALIGN) T tile[MR * NR];
    if (beta != T(0)) {
        std::fill(tile, tile + MR * NR, T(0));
        for (int64_t i = 0; i < mr; ++i) {
            for (int64_t j = 0; j < nr; ++j) tile[i * NR + j] = *c.at(i, j);
        }
    }
    ukernel(kc, a, b, tile, NR, alpha, beta);
    for (int64_t i = 0; i < mr; ++i) {
        for (int64_t j = 0; j < nr; ++j) *c.at(i, j) = tile[i * NR + j];
    }
}

// apack: (mc, kc) as MR-row micro-panels; bpack: (kc, nc) as NR-column micro-panels.
// c: C at (ic, jc), (mc, nc). Updates columns [j_lo, j_hi) of this block (NR-aligned).
template <typename T, int MR, int NR, int AR>
void macro_kernel(Ukernels<T> uk, const T* apack, const T* bpack, View<T> c,
                  int64_t mc, int64_t nc, int64_t j_lo, int64_t j_hi, int64_t kc, T alpha,
                  T beta) {
    // jr outer, ir inner: the kc x NR micro-panel of B stays in L1 while the micro-panels
    // of A stream from L2 (BLIS loop order).
    for (int64_t j = j_lo; j < j_hi; j += NR) {
        const int64_t nr = std::min<int64_t>(NR, nc - j);
        for (int64_t i = 0; i < mc; i += MR) {
            const int64_t mr = std::min<int64_t>(MR, mc - i);
            const T* a = apack + i * kc * AR;
            const T* b = bpack + j * kc;
            View<T> cij{c.at(i, j), c.rs, c.cs};
            if (mr == MR && nr == NR && c.cs == 1) {
                uk.full(kc, a, b, cij.p, c.rs, alpha, beta);
            } else if (uk.rows != nullptr && nr == NR && c.cs == 1) {
                uk.rows(kc, a, b, cij.p, c.rs, mr, alpha, beta);
            } else if (uk.cols != nullptr && c.cs == 1) {
                uk.cols(kc, a, b, cij.p, c.rs, mr, nr, alpha, beta);
            } else {
                edge_tile<T, MR, NR>(uk.full, kc, a, b, cij, mr, nr, alpha, beta);
            }
        }
    }
}

// ---------------------------------------------------------------- threads

// The threads form a tm x tn grid over C, each thread an independent GEMM on its own
// rectangle (MR-aligned rows x NR-aligned columns) with its own packed copies of the parts
// of A and B it reads: no barrier, so a thread the OS deschedules on a shared machine
// stalls only itself. The grid minimises the busiest thread's cost with its rectangle
// (m x n) run on the blocks the caches gave (MC from L2, NC from the L3 share):
//   m n K multiply-adds;
//   packing, PACK_COST per element (a scalar-ish copy against 16-lane FMAs): its columns
//   of B once (K n), its rows of A once per NC block of its columns (K m ceil(n / NC));
//   re-reading its packed KC x NC panel of B from L3 for every MC block of rows after the
//   first, RELOAD_COST per element (K n (ceil(m / MC) - 1)).
// So a grid that leaves a thread more rows than its L2 holds in one MC block, or more
// columns than one NC block, pays for it. PYMINIDL_GEMM_GRID fixes tm (experiments).
struct Grid {
    int tm, tn;
};

constexpr double PACK_COST = 8.0;
constexpr double RELOAD_COST = 1.0;

double grid_cost(int tm, int tn, int64_t M, int64_t N, int64_t K, int MR, int NR, const Blocks& bk) {
    const int64_t mi = ceil_div(ceil_div(M, MR), tm) * MR, ni = ceil_div(ceil_div(N, NR), tn) * NR;
    const double m = static_cast<double>(mi), n = static_cast<double>(ni), k = static_cast<double>(K);
    const double a_packs = static_cast<double>(ceil_div(ni, bk.NC));
    const double b_reloads = static_cast<double>(ceil_div(mi, bk.MC) - 1);
    return m * n * k + PACK_COST * k * (n + m * a_packs) + RELOAD_COST * k * n * b_reloads;
}

Grid thread_grid(int nt, int64_t M, int64_t N, int64_t K, int MR, int NR, const Blocks& bk) {
    if (bk.grid_tm > 0 && nt % bk.grid_tm == 0) return Grid{bk.grid_tm, nt / bk.grid_tm};
    Grid best{nt, 1};
    double best_cost = -1.0;
    for (int tm = 1; tm <= nt; ++tm) {
        if (nt % tm != 0) continue;
        const double cost = grid_cost(tm, nt / tm, M, N, K, MR, NR, bk);
        if (best_cost < 0.0 || cost < best_cost) {
            best = Grid{tm, nt / tm};
            best_cost = cost;
        }
    }
    return best;
}

// The blocks of one thread of a team of nt: every thread keeps its own KC x NC panel of B
// in the L3 they share, so NC shrinks once nt panels would fill more than 3/4 of it
// (blocks set by PYMINIDL_GEMM_BLOCKS, l3 == 0, stay as set). NC changes no sum.
template <typename T, int NR>
Blocks team_blocks(const Blocks& bk, int nt, int64_t K) {
    if (nt <= 1 || bk.l3 <= 0) return bk;
    Blocks t = bk;
    const int64_t kc = std::min(bk.KC, std::max<int64_t>(K, 1));
    const int64_t fit = 3 * bk.l3 / 4 / (static_cast<int64_t>(nt) * kc * static_cast<int64_t>(sizeof(T)));
    t.NC = std::clamp(fit / NR * NR, int64_t{4} * NR, bk.NC);
    return t;
}

int gemm_threads(int64_t M, int64_t N, int64_t K) {
    const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
    if (work < 2.0 * static_cast<double>(MIN_MNK_PER_AWAKE_THREAD) || omp_max_threads() == 1) return 1;
    if (!team_free()) return 1;
    const int64_t per_thread = team_warm() ? MIN_MNK_PER_AWAKE_THREAD : MIN_MNK_PER_THREAD;
    const double useful = std::max(1.0, work / static_cast<double>(per_thread));
    return static_cast<int>(std::min<double>(omp_max_threads(), useful));
}

// Part idx of [0, units) split into parts nearly equal pieces, scaled by unit.
void split(int64_t units, int parts, int idx, int64_t unit, int64_t limit, int64_t* lo,
           int64_t* hi) {
    *lo = std::min(limit, units * idx / parts * unit);
    *hi = std::min(limit, units * (idx + 1) / parts * unit);
}

// ---------------------------------------------------------------- loop nest

// Rows of a row-major op(B) packed across every panel of a block before the next rows: a
// panel at a time reads kc rows of NR values, each row on another page once ldb is large
// (2048 floats: 8 KiB apart), where the hardware prefetchers stop.
constexpr int64_t PACK_B_ROWS = 16;

// bpack: (kc, nc) as NR-column micro-panels of B.
template <typename T, int NR>
void pack_b_block(T* bpack, View<const T> b, int64_t nc, int64_t kc) {
    const int64_t rows = b.cs == 1 ? PACK_B_ROWS : kc;
    for (int64_t p = 0; p < kc; p += rows) {
        const int64_t kr = std::min(rows, kc - p);
        for (int64_t j = 0; j < nc; j += NR) {
            pack_b_panel<T, NR>(bpack + j * kc + p * NR, View<const T>{b.at(p, j), b.rs, b.cs},
                                std::min<int64_t>(NR, nc - j), kr);
        }
    }
}

// apack: (mc, kc) as MR-row micro-panels of A.
template <typename T, int MR, int AR>
void pack_a_block(T* apack, View<const T> a, int64_t mc, int64_t kc) {
    for (int64_t i = 0; i < mc; i += MR) {
        pack_a_panel<T, MR, AR>(apack + i * kc * AR, View<const T>{a.at(i, 0), a.rs, a.cs},
                            std::min<int64_t>(MR, mc - i), kc);
    }
}

// The BLIS loop nest over one thread's rectangle of C (rows [m_lo, m_hi), columns
// [n_lo, n_hi)). bpack: (KC, NC) and apack: (MC, KC), both this thread's own. The jc blocks
// start at n_lo, which is NR-aligned, so the tiles and KC blocks are those of one thread.
// bpre != nullptr: op(B) already packed by pack_b_all (serial calls only, n_lo == 0): its
// blocks are read in place instead of packed into bpack.
template <typename T, int MR, int NR, int AR>
void gemm_rect(const Problem<T>& pr, const Blocks& bk, Ukernels<T> uk, T* bpack,
               T* apack, int64_t m_lo, int64_t m_hi, int64_t n_lo, int64_t n_hi,
               const T* bpre = nullptr) {
    // With more threads than row tiles the grid hands some threads no rows (or columns):
    // they have nothing to do, and mc_step below would divide by zero.
    if (m_lo >= m_hi || n_lo >= n_hi) return;
    // K and the rows are cut into equal blocks of at most KC and MC: a ragged last block
    // (K = 784 -> 384 + 384 + 16) costs a pass over C and packing for little work. The k
    // blocks depend on K only, so sums stay independent of the thread count.
    const int64_t kc_step = ceil_div(pr.K, ceil_div(pr.K, bk.KC));
    const int64_t mc_step = ceil_div(ceil_div(m_hi - m_lo, ceil_div(m_hi - m_lo, bk.MC)), MR) * MR;
    for (int64_t jc = n_lo; jc < n_hi; jc += bk.NC) {
        const int64_t nc = std::min(bk.NC, n_hi - jc);
        for (int64_t pc = 0; pc < pr.K; pc += kc_step) {
            const int64_t kc = std::min(kc_step, pr.K - pc);
            const T* bblock = bpre != nullptr ? bpre + jc * pr.K + pc * ceil_div(nc, NR) * NR : bpack;
            if (bpre == nullptr) {
                pack_b_block<T, NR>(bpack, View<const T>{pr.B.at(pc, jc), pr.B.rs, pr.B.cs}, nc, kc);
            }
            const T beta = pc == 0 ? pr.beta : T(1);  // later KC blocks accumulate into C
            for (int64_t ic = m_lo; ic < m_hi; ic += mc_step) {
                const int64_t mc = std::min(mc_step, m_hi - ic);
                pack_a_block<T, MR, AR>(apack, View<const T>{pr.A.at(ic, pc), pr.A.rs, pr.A.cs}, mc, kc);
                macro_kernel<T, MR, NR, AR>(uk, apack, bblock, View<T>{pr.C.at(ic, jc), pr.C.rs, pr.C.cs},
                                        mc, nc, 0, nc, kc, pr.alpha, beta);
            }
        }
    }
}

// Thread tid of a team of nt: its rectangle of the grid.
template <typename T, int MR, int NR, int AR>
void gemm_thread(const Problem<T>& pr, const Blocks& bk, Ukernels<T> uk, T* bpack,
                 T* apack, int nt, int tid) {
    const Grid g = thread_grid(nt, pr.M, pr.N, pr.K, MR, NR, bk);
    int64_t m_lo, m_hi, n_lo, n_hi;
    split(ceil_div(pr.M, MR), g.tm, tid / g.tn, MR, pr.M, &m_lo, &m_hi);
    split(ceil_div(pr.N, NR), g.tn, tid % g.tn, NR, pr.N, &n_lo, &n_hi);
    gemm_rect<T, MR, NR, AR>(pr, bk, uk, bpack, apack, m_lo, m_hi, n_lo, n_hi);
}

double tile_use(int64_t m, int64_t n, int MR, int NR) {
    return static_cast<double>(m) / static_cast<double>(ceil_div(m, MR) * MR) *
           static_cast<double>(n) / static_cast<double>(ceil_div(n, NR) * NR);
}

// C^T = op(B)^T op(A)^T. When N is small (a Dense layer with 10 units), the transposed
// product fills far more of each MR x NR tile; its C tiles go through edge_tile.
template <typename T>
Problem<T> transposed(const Problem<T>& pr) {
    return Problem<T>{pr.N, pr.M, pr.K, View<const T>{pr.B.p, pr.B.cs, pr.B.rs},
                      View<const T>{pr.A.p, pr.A.cs, pr.A.rs}, View<T>{pr.C.p, pr.C.cs, pr.C.rs},
                      pr.alpha, pr.beta};
}

template <typename T, int MR, int NR>
Problem<T> orient(const Problem<T>& pr) {
    if (tile_use(pr.N, pr.M, MR, NR) <= 1.25 * tile_use(pr.M, pr.N, MR, NR)) return pr;
    return transposed(pr);
}

// A pointer into a caller's workspace, rounded up to PACK_ALIGN.
template <typename T>
T* align_up(T* p) {
    const auto v = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<T*>((v + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN);
}

// work != nullptr: one thread, no OpenMP region, packing buffers carved from work (at least
// gemm_workspace_elems long) instead of allocated.
template <typename T, int MR, int NR, int AR = 1>
void gemm_packed(const Problem<T>& problem, const Blocks& bk, Ukernels<T> uk, T* work) {
    const Problem<T> pr = orient<T, MR, NR>(problem);
    const int64_t kc_max = std::min(bk.KC, pr.K);
    if (work != nullptr) {
        T* apack = align_up(work);
        T* bpack = align_up(apack + kc_max * std::min(bk.MC, ceil_div(pr.M, MR) * MR) * AR);
        return gemm_thread<T, MR, NR, AR>(pr, bk, uk, bpack, apack, 1, 0);
    }
    const int nt = gemm_threads(pr.M, pr.N, pr.K);
    const Blocks tb = team_blocks<T, NR>(bk, nt, pr.K);
    // Allocated here, before the parallel region, so that a failure raises MemoryError.
    std::vector<PackBuffer<T>> apack, bpack;
    apack.reserve(nt);
    bpack.reserve(nt);
    for (int t = 0; t < nt; ++t) {
        apack.emplace_back(kc_max * std::min(bk.MC, ceil_div(pr.M, MR) * MR) * AR);
        bpack.emplace_back(kc_max * std::min(tb.NC, ceil_div(pr.N, NR) * NR));
    }
    if (nt == 1) return gemm_thread<T, MR, NR, AR>(pr, tb, uk, bpack[0].get(), apack[0].get(), 1, 0);
    team_region(nt, [&] {
        // The team may be smaller than asked for (nested regions, a contended team): split by
        // its real size.
        const int tid = omp_thread_id();
        gemm_thread<T, MR, NR, AR>(pr, tb, uk, bpack[tid].get(), apack[tid].get(), omp_team_size(), tid);
    });
}

// A prepacked op(B) (K, N): the (kc, nc) blocks of gemm_rect's jc > pc loops with one
// thread's blocks, one after another, block (jc, pc) at jc * K + pc * ceil(nc / NR) * NR,
// K * ceil(N / NR) * NR elements in all. Never oriented: op(A) op(B) as given.
template <typename T, int MR, int NR, int AR = 1>
void pack_b_all(T* bp, View<const T> b, const Blocks& bk, int64_t N, int64_t K) {
    const int64_t kc_step = ceil_div(K, ceil_div(K, bk.KC));
    for (int64_t jc = 0; jc < N; jc += bk.NC) {
        const int64_t nc = std::min(bk.NC, N - jc);
        for (int64_t pc = 0; pc < K; pc += kc_step) {
            pack_b_block<T, NR>(bp + jc * K + pc * ceil_div(nc, NR) * NR, View<const T>{b.at(pc, jc), b.rs, b.cs},
                                nc, std::min(kc_step, K - pc));
        }
    }
}

// The serial packed loop nest on a prepacked B; work holds the A block (gemm_packed's layout).
template <typename T, int MR, int NR, int AR = 1>
void gemm_prepacked_b(const Problem<T>& pr, const T* bp, const Blocks& bk, Ukernels<T> uk, T* work) {
    gemm_rect<T, MR, NR, AR>(pr, bk, uk, nullptr, align_up(work), 0, pr.M, 0, pr.N, bp);
}

// ---------------------------------------------------------------- small and degenerate

// c_ij = alpha * sum_p a_ip b_pj (+ beta c_ij), p in order, for products too small to pay
// for packing. row: (N,) scratch.
template <typename T>
void gemm_small(const Problem<T>& pr, T* PMD_RESTRICT row) {
    for (int64_t i = 0; i < pr.M; ++i) {
        std::fill(row, row + pr.N, T(0));
        for (int64_t p = 0; p < pr.K; ++p) {
            const T a = *pr.A.at(i, p);
            const T* b = pr.B.at(p, 0);
            if (pr.B.cs == 1) {
                for (int64_t j = 0; j < pr.N; ++j) row[j] += a * b[j];
            } else {
                for (int64_t j = 0; j < pr.N; ++j) row[j] += a * b[j * pr.B.cs];
            }
        }
        for (int64_t j = 0; j < pr.N; ++j) {
            T* c = pr.C.at(i, j);
            *c = pr.beta == T(0) ? pr.alpha * row[j] : pr.alpha * row[j] + pr.beta * *c;
        }
    }
}

// K == 0: op(A) op(B) is zero, so C = beta C (and C = 0, unread, when beta == 0).
template <typename T>
void scale_c(const Problem<T>& pr) {
    for (int64_t i = 0; i < pr.M; ++i) {
        for (int64_t j = 0; j < pr.N; ++j) {
            T* c = pr.C.at(i, j);
            *c = pr.beta == T(0) ? T(0) : pr.beta * *c;
        }
    }
}

// ---------------------------------------------------------------- direct (unpacked) path

// When op(B) has unit column stride, products up to the context's direct_small_mnk always
// run on the direct micro-kernels: packing would cost more than the reuse it buys. Up to
// direct_l2_mnk they still do while op(A) fits in its direct_a_bytes (half of L2; the rest
// holds the strip of B and the C tiles), because the direct loop re-reads all of op(A)
// for every NR-wide strip of B. Measured with csrc/bench: on Zen 4 (AVX-512) the Dense
// forward (128, 256, 784) runs ~15% faster direct, 1024^3 ~30% slower; on Zen 3 (AVX2)
// the packed 6x16 kernel wins from 128^3 on (256^3: 80% of the FMA ceiling against 55%),
// so the AVX2 context keeps only the small range.
// The direct and dot kernels keep one running sum per element over all of K; the packed
// path adds K in blocks of at most KC. Past this K the running sum's rounding shows
// (relative error ~1e-4 at K = 1e6 against ~3e-7 blocked), so long reductions go packed.
constexpr int64_t UNBLOCKED_MAX_K = 4096;

template <typename T, typename Ctx>
bool direct_pays(const Problem<T>& pr, const Ctx& ctx) {
    const int64_t mnk = pr.M * pr.N * pr.K;
    if (pr.B.cs != 1 || pr.K > UNBLOCKED_MAX_K) return false;
    if (mnk <= ctx.direct_small_mnk) return true;
    // Past the small range only an op(A) whose rows are contiguous in k: a transposed op(A)
    // read in place steps one row of memory per k (a new line, and every few k a new 4 KiB
    // page, where the hardware prefetchers stop), while packing it costs one pass. Sapphire
    // Rapids, 1 thread: dW1 = x^T dy (784, 256, 128) 102 GF/s direct, 118 packed; with a
    // row-major op(A), x W1 (128, 256, 784) still ran 118 direct against 99-103 packed.
    if (pr.A.cs != 1) return false;
    return mnk <= ctx.direct_l2_mnk && pr.M * pr.K * static_cast<int64_t>(sizeof(T)) <= ctx.direct_a_bytes;
}

template <typename T>
struct DirectKernel {
    int MR, NR;
    GemmDirectKernel<T> fn;
};

// The wide tile, or the narrow one when N is small enough that it fills its tiles better.
template <typename T>
DirectKernel<T> pick_tile(int64_t M, int64_t N, const DirectKernel<T> (&k)[2]) {
    return tile_use(M, N, k[1].MR, k[1].NR) > 1.15 * tile_use(M, N, k[0].MR, k[0].NR) ? k[1] : k[0];
}

// A C with non-unit column stride (the transposed problem): the kernel runs on a scratch
// tile with the same arithmetic, which is then copied out.
template <typename T>
void direct_strided_tile(const DirectKernel<T>& k, const Problem<T>& pr, int64_t i, int64_t j,
                         int64_t mr, int64_t nr) {
    alignas(PACK_ALIGN) T tile[detail::DIRECT_MAX_TILE];
    const View<T> c{pr.C.at(i, j), pr.C.rs, pr.C.cs};
    if (pr.beta != T(0)) {
        for (int64_t r = 0; r < mr; ++r) {
            for (int64_t q = 0; q < nr; ++q) tile[r * k.NR + q] = *c.at(r, q);
        }
    }
    k.fn(pr.K, pr.A.at(i, 0), pr.A.rs, pr.A.cs, pr.B.at(0, j), pr.B.rs, tile, k.NR, mr, nr,
         pr.alpha, pr.beta);
    for (int64_t r = 0; r < mr; ++r) {
        for (int64_t q = 0; q < nr; ++q) *c.at(r, q) = tile[r * k.NR + q];
    }
}

// Tiles in column-strip order (consecutive tiles share a strip of B, which stays in cache);
// threads take contiguous runs of tiles, each tile whole, so results do not depend on them.
template <typename T>
void gemm_direct(const Problem<T>& pr, const DirectKernel<T>& k, bool serial) {
    const int64_t mt = ceil_div(pr.M, k.MR), tiles = mt * ceil_div(pr.N, k.NR);
    auto tile = [&](int64_t t) {
        const int64_t i = (t % mt) * k.MR, j = (t / mt) * k.NR;
        const int64_t mr = std::min<int64_t>(k.MR, pr.M - i), nr = std::min<int64_t>(k.NR, pr.N - j);
        if (pr.C.cs != 1) return direct_strided_tile(k, pr, i, j, mr, nr);
        k.fn(pr.K, pr.A.at(i, 0), pr.A.rs, pr.A.cs, pr.B.at(0, j), pr.B.rs, pr.C.at(i, j), pr.C.rs,
             mr, nr, pr.alpha, pr.beta);
    };
    const int nt = serial ? 1 : gemm_threads(pr.M, pr.N, pr.K);
    if (nt == 1) {  // no OpenMP region at all: on tiny products its set-up is measurable
        for (int64_t t = 0; t < tiles; ++t) tile(t);
        return;
    }
    team_region(nt, [&] {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) tile(t);
    });
}

// ---------------------------------------------------------------- context

// Everything the GEMM needs to know about one ISA path and one dtype, chosen once (BLIS's
// cntx_t): the micro-kernels and their tiles, the cache blocks, and the direct path's L2
// budget. One table of contexts per dtype, built at first use from the caches the CPU
// reports (cpu_features.h); the ISA cap picks the row at each call.
template <typename T>
using PackedFn = void (*)(const Problem<T>&, const Blocks&, Ukernels<T>, T*);
template <typename T>
using PackBFn = void (*)(T*, View<const T>, const Blocks&, int64_t, int64_t);
template <typename T>
using PrepackedFn = void (*)(const Problem<T>&, const T*, const Blocks&, Ukernels<T>, T*);

template <typename T>
struct Context {
    Isa isa;
    int MR, NR;
    int AR;                    // copies of each packed A value (pack_a_panel)
    Blocks bk;
    Ukernels<T> uk;
    PackedFn<T> packed;        // gemm_packed<T, MR, NR, AR>
    PackBFn<T> pack_b;         // pack_b_all<T, MR, NR, AR>
    PrepackedFn<T> prepacked;  // gemm_prepacked_b<T, MR, NR, AR>
    DirectKernel<T> direct[2];  // {wide, narrow}; fn == nullptr: no direct path (SSE2)
    GemmDotKernel<T> dot;      // nullptr: no dot path
    int dot_rr, dot_nc;
    int64_t dot_min_k;         // the dot path from this K on
    int64_t direct_a_bytes;    // op(A) the direct loop may re-read per strip of B
    int64_t direct_small_mnk;  // direct path up to this M*N*K ...
    int64_t direct_l2_mnk;     // ... and up to this one while op(A) fits direct_a_bytes
};

// How a path's blocks follow from the caches (Low et al. 2016, simplified): the KC x NR
// micro-panel of B takes kc_l1 of L1d, the MC x KC block of A mc_l2 of L2, the KC x NC
// panel of B nc_l3 of L3. The shares reproduce blocks measured with csrc/bench: AVX2 on a
// Zen 3 (32 KiB / 512 KiB / 32 MiB), AVX-512 and the baseline on a Zen 4 (32 KiB / 1 MiB /
// 32 MiB). AVX-512's KC x 32 panel (1.5 L1) streams from L2 there: its 512-bit loads are
// double-pumped, so the L2 bandwidth covers it and the longer k loop wins.
struct BlockRule {
    double kc_l1, mc_l2, nc_l3;
};

// Reported caches, with any missing level replaced by a small, common one.
CacheSizes usable_caches(const CacheSizes& c) {
    CacheSizes u = c;
    if (u.l1d <= 0) u.l1d = 32 * 1024;
    if (u.l2 <= 0) u.l2 = 256 * 1024;
    if (u.l3 <= 0) u.l3 = std::max<int64_t>(4 * u.l2, 8 * 1024 * 1024);
    return u;
}

int64_t round_down_to(double x, int64_t m, int64_t lo, int64_t hi) {
    const int64_t v = static_cast<int64_t>(x) / m * m;
    return std::clamp(v, lo, hi);
}

// AR: copies of each packed A value (the A block takes AR times the room).
Blocks derive_blocks(const BlockRule& r, int MR, int NR, int AR, std::size_t s, const CacheSizes& reported) {
    const CacheSizes c = usable_caches(reported);
    const double es = static_cast<double>(s);
    const int64_t kc = round_down_to(r.kc_l1 * c.l1d / (NR * es), 16, 64, 2048);
    const int64_t mc = round_down_to(r.mc_l2 * c.l2 / (kc * es * AR), MR, MR, 4096 / MR * MR);
    const int64_t nc = round_down_to(r.nc_l3 * c.l3 / (kc * es), NR, 4 * NR, 16384 / NR * NR);
    return Blocks{mc, kc, nc};
}

// PYMINIDL_GEMM_BLOCKS="MC,KC,NC" (experiments): replaces every path's blocks, MC and NC
// rounded up to the path's MR and NR. False when unset or unreadable.
bool blocks_from_env(int MR, int NR, Blocks* bk) {
    const char* env = std::getenv("PYMINIDL_GEMM_BLOCKS");
    long long mc = 0, kc = 0, nc = 0;
    if (env == nullptr || std::sscanf(env, "%lld,%lld,%lld", &mc, &kc, &nc) != 3) return false;
    if (mc <= 0 || kc <= 0 || nc <= 0) return false;
    *bk = Blocks{ceil_div(mc, MR) * MR, kc, ceil_div(nc, NR) * NR};
    return true;
}

// PYMINIDL_GEMM_GRID="TM" (experiments): the thread grid's rows (a team of nt runs TM x
// nt / TM when TM divides nt). 0 when unset or unreadable: thread_grid chooses.
int grid_from_env() {
    const char* env = std::getenv("PYMINIDL_GEMM_GRID");
    int tm = 0;
    if (env == nullptr || std::sscanf(env, "%d", &tm) != 1 || tm <= 0) return 0;
    return tm;
}

template <typename T, int MR, int NR, int AR = 1>
Context<T> make_context(Isa isa, GemmUkernel<T> uk, const BlockRule& rule, const CacheSizes& caches) {
    Context<T> c{};
    c.isa = isa;
    c.MR = MR;
    c.NR = NR;
    c.uk = {uk, nullptr, nullptr};
    c.AR = AR;
    c.packed = gemm_packed<T, MR, NR, AR>;
    c.pack_b = pack_b_all<T, MR, NR, AR>;
    c.prepacked = gemm_prepacked_b<T, MR, NR, AR>;
    if (!blocks_from_env(MR, NR, &c.bk)) {
        c.bk = derive_blocks(rule, MR, NR, AR, sizeof(T), caches);
        c.bk.l3 = usable_caches(caches).l3;
    }
    c.bk.grid_tm = grid_from_env();
    // Half of L2: the rest holds the strip of B and the C tiles.
    c.direct_a_bytes = usable_caches(caches).l2 / 2;
    c.direct_small_mnk = 128 * 128 * 256;
    c.direct_l2_mnk = 320 * 320 * 320;
    return c;
}

struct ContextTable {
    Context<float> f32[3];
    Context<double> f64[3];
    CacheSizes caches;
    bool env_blocks;
};

ContextTable build_contexts(const CacheSizes& caches) {
    using namespace detail;
    ContextTable t{};
    t.caches = caches;
    t.env_blocks = std::getenv("PYMINIDL_GEMM_BLOCKS") != nullptr;
    const int b = static_cast<int>(Isa::baseline);
    t.f32[b] = make_context<float, BASELINE_SGEMM_MR, BASELINE_SGEMM_NR, BASELINE_SGEMM_AR>(
        Isa::baseline, sgemm_ukernel_baseline, {BASELINE_KC_L1, BASELINE_MC_L2, 0.125}, caches);
    t.f64[b] = make_context<double, BASELINE_DGEMM_MR, BASELINE_DGEMM_NR, BASELINE_DGEMM_AR>(
        Isa::baseline, dgemm_ukernel_baseline, {BASELINE_KC_L1, BASELINE_MC_L2, 0.125}, caches);
    for (int i = 1; i < 3; ++i) t.f32[i] = t.f32[b], t.f64[i] = t.f64[b];
#if defined(PYMINIDL_X86)
    const int a2 = static_cast<int>(Isa::avx2), a5 = static_cast<int>(Isa::avx512);
    t.f32[a2] = make_context<float, AVX2_SGEMM_MR, AVX2_SGEMM_NR>(
        Isa::avx2, sgemm_ukernel_avx2, {AVX2_KC_L1, AVX2_MC_L2, AVX2_NC_L3}, caches);
    t.f32[a2].uk.rows = sgemm_ukernel_rows_avx2;
    t.f32[a2].uk.cols = sgemm_ukernel_cols_avx2;
    t.f32[a2].direct[0] = {AVX2_SGEMM_MR, AVX2_SGEMM_NR, sgemm_direct_avx2};
    t.f32[a2].direct[1] = {AVX2_SDIRECT_NARROW_MR, AVX2_SDIRECT_NARROW_NR, sgemm_direct_narrow_avx2};
    t.f32[a2].dot = sgemm_dot_avx2, t.f32[a2].dot_rr = AVX2_SDOT_RR, t.f32[a2].dot_nc = DOT_NC;
    t.f64[a2] = make_context<double, AVX2_DGEMM_MR, AVX2_DGEMM_NR>(
        Isa::avx2, dgemm_ukernel_avx2, {0.5, AVX2_MC_L2, 0.125}, caches);
    t.f64[a2].direct[0] = {AVX2_DGEMM_MR, AVX2_DGEMM_NR, dgemm_direct_avx2};
    t.f64[a2].direct[1] = {AVX2_DDIRECT_NARROW_MR, AVX2_DDIRECT_NARROW_NR, dgemm_direct_narrow_avx2};
    t.f64[a2].dot = dgemm_dot_avx2, t.f64[a2].dot_rr = AVX2_DDOT_RR, t.f64[a2].dot_nc = DOT_NC;
    t.f32[a5] = make_context<float, AVX512_SGEMM_MR, AVX512_SGEMM_NR>(
        Isa::avx512, sgemm_ukernel_avx512, {1.5, 0.352, 0.1875}, caches);
    t.f32[a5].uk.rows = sgemm_ukernel_rows_avx512;
    t.f32[a5].uk.cols = sgemm_ukernel_cols_avx512;
    t.f32[a5].direct[0] = {AVX512_SGEMM_MR, AVX512_SGEMM_NR, sgemm_direct_avx512};
    t.f32[a5].direct[1] = {AVX512_SDIRECT_NARROW_MR, AVX512_SDIRECT_NARROW_NR, sgemm_direct_narrow_avx512};
    t.f32[a5].dot = sgemm_dot_avx512, t.f32[a5].dot_rr = AVX512_SDOT_RR, t.f32[a5].dot_nc = DOT_NC;
    t.f64[a5] = make_context<double, AVX512_DGEMM_MR, AVX512_DGEMM_NR>(
        Isa::avx512, dgemm_ukernel_avx512, {1.0, 0.235, 0.125}, caches);
    t.f64[a5].direct[0] = {AVX512_DGEMM_MR, AVX512_DGEMM_NR, dgemm_direct_avx512};
    t.f64[a5].direct[1] = {AVX512_DDIRECT_NARROW_MR, AVX512_DDIRECT_NARROW_NR, dgemm_direct_narrow_avx512};
    t.f64[a5].dot = dgemm_dot_avx512, t.f64[a5].dot_rr = AVX512_DDOT_RR, t.f64[a5].dot_nc = DOT_NC;
    // Dot against direct, N = 10, M = 128, one thread, Zen 4 (loaded machine, best of 600
    // runs of 10): AVX-512 direct wins up to K = 192 (128: 5.6 vs 6.3 us), even at 256 and
    // dot from 384 (13.8 vs 15.9 us); AVX2 dot wins from 128 (6.2 vs 6.9 us; 784: 26 vs 39).
    t.f32[a5].dot_min_k = t.f64[a5].dot_min_k = 224;
    t.f32[a2].dot_min_k = t.f64[a2].dot_min_k = 128;
    // AVX2 (Zen 3): the packed 6x16 kernel beats the direct one from 128^3 on (direct_pays).
    t.f32[a2].direct_small_mnk = t.f64[a2].direct_small_mnk = 96 * 96 * 96;
    t.f32[a2].direct_l2_mnk = t.f64[a2].direct_l2_mnk = 0;
#endif
    return t;
}

// The table; replaced only by gemm_set_caches (a test hook, never called during a GEMM).
ContextTable& contexts() {
    static ContextTable table = build_contexts(cache_sizes());
    return table;
}

template <typename T>
const Context<T>& context(Isa isa) {
    if constexpr (std::is_same_v<T, float>) {
        return contexts().f32[static_cast<int>(isa)];
    } else {
        return contexts().f64[static_cast<int>(isa)];
    }
}

// Runs the product on the direct kernels when that pays, in whichever orientation (C or
// C^T = op(B)^T op(A)^T, e.g. dW = x^T dy with 10 units) fills the tiles better and gives
// the kernel a unit-stride B. False when the packed path should run instead.
template <typename T>
bool try_direct(const Problem<T>& pr, const Context<T>& ctx, bool serial) {
    if (ctx.direct[0].fn == nullptr) return false;
    const DirectKernel<T>(&k)[2] = ctx.direct;
    const Problem<T> tp = transposed(pr);
    const bool ok = direct_pays(pr, ctx), ok_t = direct_pays(tp, ctx);
    if (!ok && !ok_t) return false;
    const DirectKernel<T> kp = pick_tile(pr.M, pr.N, k), kt = pick_tile(tp.M, tp.N, k);
    if (ok_t && (!ok || tile_use(tp.M, tp.N, kt.MR, kt.NR) > 1.25 * tile_use(pr.M, pr.N, kp.MR, kp.NR))) {
        gemm_direct(tp, kt, serial);
    } else {
        gemm_direct(pr, kp, serial);
    }
    return true;
}

// ---------------------------------------------------------------- dot path

// For N <= DOT_MAX_N the vectors along n are mostly empty (N = 10: 10 of 16 lanes).
// Vectors along k are full, but each c_ij ends in a lane reduction, which pays from a K
// per path (Context::dot_min_k, set in build_contexts).
constexpr int64_t DOT_MAX_N = 12;

// C = alpha op(A) op(B) + beta C for N <= DOT_MAX_N, with op(A) rows contiguous: each
// c_ij is a dot product over k. Tiles of dot_rr whole rows x dot_nc columns, each c_ij
// summed by one tile, so threads do not change sums.
template <typename T>
bool try_dot(const Problem<T>& pr, const Context<T>& ctx, T* work) {
    const GemmDotKernel<T> fn = ctx.dot;
    if (fn == nullptr || pr.A.cs != 1 || pr.N > DOT_MAX_N || pr.K < ctx.dot_min_k ||
        pr.K > UNBLOCKED_MAX_K) {
        return false;
    }
    // op(B)^T, (N, K): at most 12 rows, so cheap to make (uninitialised: every element is written).
    PackBuffer<T> own(work == nullptr && pr.B.rs != 1 ? pr.N * pr.K : 1);
    const T* bt = pr.B.p;
    int64_t ldbt = pr.B.cs;
    if (pr.B.rs != 1) {
        T* packed = work != nullptr ? work : own.get();
        if (pr.B.cs == 1) {
            transpose_copy(packed, pr.K, pr.B.p, pr.B.rs, pr.K, pr.N);
        } else {
            for (int64_t j = 0; j < pr.N; ++j) {
                for (int64_t p = 0; p < pr.K; ++p) packed[j * pr.K + p] = *pr.B.at(p, j);
            }
        }
        bt = packed;
        ldbt = pr.K;
    }
    const int RR = ctx.dot_rr, NC = ctx.dot_nc;
    // Row blocks outer, column tiles inner: a block's RR rows of op(A) stay in L1 while every
    // column tile reads them (op(B)^T, at most 12 rows, stays there throughout).
    const int64_t nct = ceil_div(pr.N, NC), tiles = ceil_div(pr.M, RR) * nct;
    auto tile = [&](int64_t t) {
        const int64_t i = (t / nct) * RR, j = (t % nct) * NC;
        fn(pr.K, pr.A.at(i, 0), pr.A.rs, std::min<int64_t>(RR, pr.M - i), bt + j * ldbt, ldbt,
           std::min<int64_t>(NC, pr.N - j), pr.C.at(i, j), pr.C.rs, pr.alpha, pr.beta);
    };
    const int nt = work != nullptr ? 1 : gemm_threads(pr.M, pr.N, pr.K);
    if (nt == 1) {
        for (int64_t t = 0; t < tiles; ++t) tile(t);
        return true;
    }
    team_region(nt, [&] {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) tile(t);
    });
    return true;
}

// ---------------------------------------------------------------- dispatch

template <typename T>
Problem<T> make_problem(T* C, int64_t ldc, const T* A, int64_t lda, bool ta, const T* B,
                        int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta) {
    // A transposed operand is the same memory read with its strides swapped.
    return Problem<T>{M, N, K, View<const T>{A, ta ? 1 : lda, ta ? lda : 1},
                      View<const T>{B, tb ? 1 : ldb, tb ? ldb : 1}, View<T>{C, ldc, 1}, alpha, beta};
}

// Elements of workspace a serial call needs on the active path: the packed blocks of A
// and B (for either orientation of C), or op(B)^T of the dot path, or the small path's row,
// plus alignment slack.
template <typename T>
int64_t workspace_elems(int64_t M, int64_t N, int64_t K) {
    const Context<T>& ctx = context<T>(active_isa());
    const int64_t mn = std::max<int64_t>({M, N, 1}), kc = std::min(ctx.bk.KC, std::max<int64_t>(K, 1));
    const int64_t packs = kc * std::min(ctx.bk.MC, ceil_div(mn, ctx.MR) * ctx.MR) * ctx.AR +
                          kc * std::min(ctx.bk.NC, ceil_div(mn, ctx.NR) * ctx.NR);
    const int64_t other = std::max(DOT_MAX_N * std::max<int64_t>(K, 1), mn);
    return std::max(packs, other) + 2 * static_cast<int64_t>(PACK_ALIGN / sizeof(T));
}

// The path that computes pr (dot, direct, small or packed).
template <typename T>
void gemm_path(const Problem<T>& pr, T* work) {
    if (pr.M <= 0 || pr.N <= 0) return;
    if (pr.K <= 0) return scale_c(pr);
    const Context<T>& ctx = context<T>(active_isa());
    if (try_dot(pr, ctx, work) || try_direct(pr, ctx, work != nullptr)) return;
    if (pr.M * pr.N * pr.K <= SMALL_GEMM_MNK && pr.K <= UNBLOCKED_MAX_K) {
        if (work != nullptr) return gemm_small(pr, work);
        std::vector<T> row(static_cast<std::size_t>(pr.N));
        return gemm_small(pr, row.data());
    }
    ctx.packed(pr, ctx.bk, ctx.uk, work);
}

// work == nullptr: threads and buffers as the call needs them. Otherwise the serial entry:
// one thread, no OpenMP region, no allocation; work holds workspace_elems elements. The
// path and its sums are those of the threaded call (results identical to it).
template <typename T>
void gemm_dispatch(const Problem<T>& pr, T* work = nullptr) {
    gemm_path(pr, work);
    // The end of a call, for team_warm's streams (team.h). Serial calls (work != nullptr) run
    // inside other kernels' regions, on their threads: they note nothing.
    if (work == nullptr) note_team_call();
}

template <typename T>
void gemm_serial_t(T* C, int64_t ldc, const T* A, int64_t lda, bool ta, const T* B, int64_t ldb,
                   bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta, T* work,
                   int64_t work_elems) {
    if (work == nullptr || work_elems < workspace_elems<T>(M, N, K)) {
        throw std::invalid_argument("gemm_serial: workspace of " + std::to_string(work_elems) +
                                    " elements is smaller than gemm_workspace_elems(M, N, K) = " +
                                    std::to_string(workspace_elems<T>(M, N, K)));
    }
    gemm_dispatch(make_problem(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta), work);
}

template <typename T>
int64_t packed_b_elems_t(int64_t N, int64_t K) {
    const Context<T>& ctx = context<T>(active_isa());
    return std::max<int64_t>(K, 0) * ceil_div(std::max<int64_t>(N, 0), ctx.NR) * ctx.NR;
}

template <typename T>
void pack_b_t(T* bp, const T* B, int64_t ldb, bool tb, int64_t N, int64_t K) {
    const Context<T>& ctx = context<T>(active_isa());
    if (N > 0 && K > 0) ctx.pack_b(bp, View<const T>{B, tb ? 1 : ldb, tb ? ldb : 1}, ctx.bk, N, K);
}

// The packed loop nest always (the A block fits the serial workspace of (M, N, K)).
template <typename T>
void gemm_serial_packed_b_t(T* C, int64_t ldc, const T* A, int64_t lda, bool ta, const T* bp, int64_t M,
                            int64_t N, int64_t K, T alpha, T beta, T* work, int64_t work_elems) {
    if (work == nullptr || work_elems < workspace_elems<T>(M, N, K)) {
        throw std::invalid_argument("gemm_serial_packed_b: workspace of " + std::to_string(work_elems) +
                                    " elements is smaller than gemm_workspace_elems(M, N, K) = " +
                                    std::to_string(workspace_elems<T>(M, N, K)));
    }
    const Problem<T> pr = make_problem(C, ldc, A, lda, ta, bp, N, false, M, N, K, alpha, beta);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) return scale_c(pr);
    const Context<T>& ctx = context<T>(active_isa());
    ctx.prepacked(pr, bp, ctx.bk, ctx.uk, work);
}

template <typename T>
void gemm_naive_t(const Problem<T>& pr) {
    for (int64_t i = 0; i < pr.M; ++i) {
        for (int64_t j = 0; j < pr.N; ++j) {
            T acc = 0;
            for (int64_t p = 0; p < pr.K; ++p) acc += *pr.A.at(i, p) * *pr.B.at(p, j);
            T* c = pr.C.at(i, j);
            *c = pr.beta == T(0) ? pr.alpha * acc : pr.alpha * acc + pr.beta * *c;
        }
    }
}

// ---------------------------------------------------------------- Dense helpers

template <typename T>
void dense_forward_t(T* y, const T* x, int64_t ldx, bool trans_x, const T* w, int64_t ldw,
                     bool trans_w, const T* b, int64_t N, int64_t I, int64_t U) {
    // The bias is written into y first and the GEMM accumulates onto it (beta = 1): one
    // pass over y instead of a GEMM pass plus a bias pass.
    if (b != nullptr) {
        for (int64_t n = 0; n < N; ++n) std::copy(b, b + U, y + n * U);
    }
    gemm_dispatch(make_problem<T>(y, U, x, ldx, trans_x, w, ldw, trans_w, N, U, I, T(1),
                                  b != nullptr ? T(1) : T(0)));
}

template <typename T>
void bias_add_t(T* y, const T* x, int64_t ldx, const T* b, int64_t N, int64_t U) {
    team_region(threads_if(N * U > PARALLEL_GRAIN), [&] {
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            const T* xr = x + n * ldx;
            T* yr = y + n * U;
            for (int64_t u = 0; u < U; ++u) yr[u] = xr[u] + b[u];
        }
    });
}

// Columns per bias_grad work item: a block of sums that stays in registers (column_sums).
constexpr int64_t BIAS_GRAD_COLS = 64;

template <typename T>
void bias_grad_t(T* db, const T* dy, int64_t lddy, int64_t N, int64_t U) {
    const int64_t blocks = ceil_div(U, BIAS_GRAD_COLS);
    // Parallel over columns, never over rows: each column is summed by one thread in row
    // order, so db does not depend on the thread count.
    team_region(threads_if(N * U > PARALLEL_GRAIN && blocks > 1), [&] {
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < blocks; ++blk) {
            const int64_t u0 = blk * BIAS_GRAD_COLS, nu = std::min(BIAS_GRAD_COLS, U - u0);
            column_sums(db + u0, dy + u0, lddy, N, nu, true);
        }
    });
}

}  // namespace

// ---------------------------------------------------------------- public entry points

void sgemm(float* C, int64_t ldc, const float* A, int64_t lda, bool ta, const float* B,
           int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    // C: (M, N); op(A): (M, K); op(B): (K, N).
    gemm_dispatch(make_problem(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta));
}

void dgemm(double* C, int64_t ldc, const double* A, int64_t lda, bool ta, const double* B,
           int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    // C: (M, N); op(A): (M, K); op(B): (K, N).
    gemm_dispatch(make_problem(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta));
}

int64_t sgemm_packed_b_elems(int64_t N, int64_t K) { return packed_b_elems_t<float>(N, K); }

void sgemm_pack_b(float* bp, const float* B, int64_t ldb, bool tb, int64_t N, int64_t K) {
    // bp: sgemm_packed_b_elems(N, K); op(B): (K, N).
    pack_b_t(bp, B, ldb, tb, N, K);
}

void sgemm_serial_packed_b(float* C, int64_t ldc, const float* A, int64_t lda, bool ta, const float* bp,
                           int64_t M, int64_t N, int64_t K, float alpha, float beta, float* work,
                           int64_t work_elems) {
    // C: (M, N); op(A): (M, K); bp: op(B) (K, N) as sgemm_pack_b left it.
    gemm_serial_packed_b_t(C, ldc, A, lda, ta, bp, M, N, K, alpha, beta, work, work_elems);
}

void sgemm_naive(float* C, int64_t ldc, const float* A, int64_t lda, bool ta, const float* B,
                 int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    // C: (M, N); op(A): (M, K); op(B): (K, N).
    gemm_naive_t(make_problem(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta));
}

void dgemm_naive(double* C, int64_t ldc, const double* A, int64_t lda, bool ta, const double* B,
                 int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    // C: (M, N); op(A): (M, K); op(B): (K, N).
    gemm_naive_t(make_problem(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta));
}

void dense_forward(float* y, const float* x, int64_t ldx, bool trans_x, const float* w,
                   int64_t ldw, bool trans_w, const float* b, int64_t N, int64_t I, int64_t U) {
    // y: (N, U) contiguous; op(x): (N, I); op(w): (I, U); b: (U,) or nullptr.
    dense_forward_t(y, x, ldx, trans_x, w, ldw, trans_w, b, N, I, U);
}

void dense_forward(double* y, const double* x, int64_t ldx, bool trans_x, const double* w,
                   int64_t ldw, bool trans_w, const double* b, int64_t N, int64_t I, int64_t U) {
    // y: (N, U) contiguous; op(x): (N, I); op(w): (I, U); b: (U,) or nullptr.
    dense_forward_t(y, x, ldx, trans_x, w, ldw, trans_w, b, N, I, U);
}

void bias_add(float* y, const float* x, int64_t ldx, const float* b, int64_t N, int64_t U) {
    // y: (N, U) contiguous; x: (N, U) row stride ldx; b: (U,).
    bias_add_t(y, x, ldx, b, N, U);
}

void bias_add(double* y, const double* x, int64_t ldx, const double* b, int64_t N, int64_t U) {
    // y: (N, U) contiguous; x: (N, U) row stride ldx; b: (U,).
    bias_add_t(y, x, ldx, b, N, U);
}

void bias_grad(float* db, const float* dy, int64_t lddy, int64_t N, int64_t U) {
    // db: (U,); dy: (N, U) row stride lddy.
    bias_grad_t(db, dy, lddy, N, U);
}

void bias_grad(double* db, const double* dy, int64_t lddy, int64_t N, int64_t U) {
    // db: (U,); dy: (N, U) row stride lddy.
    bias_grad_t(db, dy, lddy, N, U);
}

GemmPathConfig gemm_config(Isa isa) {
    const ContextTable& t = contexts();
    const Context<float>& f = context<float>(isa);
    const Context<double>& d = context<double>(isa);
    GemmPathConfig c;
    c.isa = isa_name(f.isa);
    c.caches = t.caches;
    c.blocks_from = t.env_blocks ? "PYMINIDL_GEMM_BLOCKS" : (t.caches.l1d > 0 && t.caches.l2 > 0 ? "caches" : "caches (missing levels defaulted)");
    c.f32 = GemmBlockInfo{f.MR, f.NR, f.bk.MC, f.bk.KC, f.bk.NC};
    c.f64 = GemmBlockInfo{d.MR, d.NR, d.bk.MC, d.bk.KC, d.bk.NC};
    c.direct_a_bytes = f.direct_a_bytes;
    c.dot = f.dot != nullptr;
    return c;
}

void gemm_set_caches(const CacheSizes* caches) {
    contexts() = build_contexts(caches != nullptr ? *caches : cache_sizes());
}

double fma_ceiling_gflops(Isa isa, int threads, double seconds) {
    using Clock = std::chrono::steady_clock;
    // FLOP per probe iteration: chains x lanes x 2 (an FMA, or a multiply and an add).
    double (*probe)(int64_t) = detail::fma_probe_baseline;
    double flop_per_iter = 12 * 4 * 2;
#if defined(PYMINIDL_X86)
    if (isa == Isa::avx2) probe = detail::fma_probe_avx2, flop_per_iter = 12 * 8 * 2;
    if (isa == Isa::avx512) probe = detail::fma_probe_avx512, flop_per_iter = 24 * 16 * 2;
#endif
    const int nt = std::max(1, threads);
    // Calibrate on one thread, then all threads run the same count at once.
    int64_t iters = 1 << 16;
    double sink = 0.0;
    for (;;) {
        const auto t0 = Clock::now();
        sink += probe(iters);
        const double t = std::chrono::duration<double>(Clock::now() - t0).count();
        if (t > seconds / 4 || iters > (int64_t{1} << 40)) {
            iters = static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(t, 1e-9));
            break;
        }
        iters *= 4;
    }
    iters = std::max<int64_t>(iters, 1);
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(nt) reduction(+ : sink)
    sink += probe(iters);
    const double t = std::chrono::duration<double>(Clock::now() - t0).count();
    if (sink == 42.0) std::printf(" ");  // keeps the probe's result alive
    return static_cast<double>(nt) * static_cast<double>(iters) * flop_per_iter / t / 1e9;
}

int64_t sgemm_workspace_elems(int64_t M, int64_t N, int64_t K) { return workspace_elems<float>(M, N, K); }
int64_t dgemm_workspace_elems(int64_t M, int64_t N, int64_t K) { return workspace_elems<double>(M, N, K); }

void sgemm_serial(float* C, int64_t ldc, const float* A, int64_t lda, bool ta, const float* B,
                  int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                  float* work, int64_t work_elems) {
    // C: (M, N); op(A): (M, K); op(B): (K, N); work: work_elems floats.
    gemm_serial_t(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta, work, work_elems);
}

void dgemm_serial(double* C, int64_t ldc, const double* A, int64_t lda, bool ta, const double* B,
                  int64_t ldb, bool tb, int64_t M, int64_t N, int64_t K, double alpha, double beta,
                  double* work, int64_t work_elems) {
    // C: (M, N); op(A): (M, K); op(B): (K, N); work: work_elems doubles.
    gemm_serial_t(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta, work, work_elems);
}

}  // namespace pyminidl::kernels
