// gemm_simd.h — the register-tiled GEMM micro-kernels, written once over a SIMD traits class
// S and instantiated by gemm_avx2.cpp (S = 256-bit ymm) and gemm_avx512.cpp (S = 512-bit zmm),
// each compiled with its own ISA flags. Internal: included by those two files only, and
// everything here has internal linkage so the two instantiations never meet at link time.
//
// S provides: T, V (vector), Mask, W (lanes), zero, load (aligned), loadu, bcast, set1,
// fmadd, mul, storeu, mask_for(n) (first n lanes, n clamped to [0, W]), maskz_loadu, mask_storeu,
// and, for ukernel_dot only, reduce_lanes (W vectors -> the vector of their lane sums, lane l
// the sum of vector l, each in a fixed order).
//
// Three kernels (see gemm_ukernels.h for the layouts):
//   ukernel_packed  reads packed, zero-padded micro-panels: a[p * MR + i], b[p * NR + j].
//   ukernel_direct  reads op(A) and op(B) in place (A with any strides, B with unit column
//                   stride) and masks the N edge: no packing, for products too small to
//                   amortise it. Rows past mr re-read row mr-1 (valid memory) and are not stored.
//   ukernel_dot     vectorises over k instead of n, for N too small to fill a vector:
//                   c_ij = dot(row i of op(A), row j of op(B)^T), both rows contiguous; the
//                   lanes hold partial sums over p = l, l + W, ..., then reduce_lanes.
// All: c = alpha * (a b) + beta * c over one tile, c not read when beta == 0, the
// k loop in order p = 0..kc-1 with one fused multiply-add per product.
//
// Reference: BLIS micro-kernel interface (F. Van Zee, R. van de Geijn, ACM TOMS 41(3), 2015).
#pragma once

#include <algorithm>

#include "common.h"

namespace pyminidl::kernels::detail {
namespace {

// c: (MR, NV*W) row stride ldc, rows < mr stored through masks m. acc holds a b.
template <class S, int MR, int NV>
PMD_ALWAYS_INLINE void store_tile(typename S::T* c, int64_t ldc, const typename S::V (&acc)[MR][NV],
                                  const typename S::Mask (&m)[NV], int64_t mr,
                                  typename S::T alpha, typename S::T beta) {
    using T = typename S::T;
    const typename S::V va = S::set1(alpha), vb = S::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
        if (i >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            T* ci = c + i * ldc + v * S::W;
            // beta == 0 must not read c: it may be uninitialised (or hold NaN).
            const typename S::V r = beta == T(0)
                                        ? S::mul(va, acc[i][v])
                                        : S::fmadd(va, acc[i][v], S::mul(vb, S::maskz_loadu(m[v], ci)));
            S::mask_storeu(ci, m[v], r);
        }
    }
}

// c's MR rows x NR columns requested into L1 (one prefetch per 64-byte line, and one for
// the row's last element: a C that is not line-aligned spans one line more).
template <class S, int MR, int NR>
PMD_ALWAYS_INLINE void prefetch_tile(const typename S::T* c, int64_t ldc) {
    constexpr int LINE = 64 / sizeof(typename S::T);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
        for (int j = 0; j < NR; j += LINE) __builtin_prefetch(c + i * ldc + j, 1, 3);
        __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
    }
}

// a: (kc, MR) packed, b: (kc, NV*W) packed (both aligned), c: (MR, NV*W) row stride ldc.
// PF_K > 0 (the AVX-512 float32 kernel): the C tile is prefetched before the k loop and the
// packed panels PF_K k steps ahead inside it. A large C lives in L3 (2048^2: 16 MiB), and the
// tile's loads at the end otherwise stall the core for an L3 round trip per call; the B
// panel (KC x NR, larger than L1 on the AVX-512 blocks) and the next A panel come from L2.
// Sapphire Rapids, 1 thread, CPU-time GFLOP/s (best of 12-20, load 5-7): 2048^3 100-106 ->
// 108-112, 1536^3 94 -> 102; the C prefetch alone gave about half of it.
// ROWS < MR (the edge kernel): only the panel's first ROWS rows are multiplied, and the first
// mr <= ROWS of them stored; each row's k loop is the full kernel's, so its bits are the same.
// COLS_V < NV or EDGE_COLS (the column-edge kernel): only the panel's first COLS_V vectors of
// columns are multiplied, and the first nr columns stored through masks (the B panel keeps its
// NR stride); each column's k loop is the full kernel's too.
template <class S, int MR, int NV, int PF_K = 0, int ROWS = MR, int COLS_V = NV, bool EDGE_COLS = false>
PMD_ALWAYS_INLINE void ukernel_packed(int64_t kc, const typename S::T* PMD_RESTRICT a,
                                      const typename S::T* PMD_RESTRICT b, typename S::T* c,
                                      int64_t ldc, typename S::T alpha, typename S::T beta,
                                      int64_t mr = ROWS, int64_t nr = NV * S::W) {
    constexpr int NR = NV * S::W;
    static_assert(ROWS <= MR, "the rows of a packed panel");
    static_assert(COLS_V <= NV, "the columns of a packed panel");
    if constexpr (PF_K > 0) {
        prefetch_tile<S, ROWS, NR>(c, ldc);
        // c "changes" here: GCC would otherwise keep the prefetches' row addresses live through
        // the k loop for the stores, in vector registers, and spill a B vector to the stack.
        asm("" : "+r"(c));
    }
    typename S::V acc[ROWS][COLS_V];
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < COLS_V; ++v) acc[i][v] = S::zero();
    for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
        if constexpr (PF_K > 0) {
            // Past the panel's end these run into the next panels (or nowhere: a prefetch
            // never faults).
            __builtin_prefetch(b + PF_K * NR, 0, 3);
            if constexpr (NR * sizeof(typename S::T) > 64) __builtin_prefetch(b + PF_K * NR + NR / 2, 0, 3);
            __builtin_prefetch(a + PF_K * MR, 0, 3);
        }
        typename S::V bv[COLS_V];
#pragma GCC unroll 4
        for (int v = 0; v < COLS_V; ++v) bv[v] = S::load(b + v * S::W);
#pragma GCC unroll 32
        for (int i = 0; i < ROWS; ++i) {
            const typename S::V ai = S::bcast(a + i);
#pragma GCC unroll 4
            for (int v = 0; v < COLS_V; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
        }
    }
    typename S::Mask m[COLS_V];
    for (int v = 0; v < COLS_V; ++v) m[v] = S::mask_for(EDGE_COLS || COLS_V < NV ? nr - v * S::W : S::W);
    store_tile<S, ROWS, COLS_V>(c, ldc, acc, m, mr, alpha, beta);
}

// A tile of the last nr < NR columns (and mr <= MR rows) of C on the packed panels, written
// straight into c: ukernel_packed on the vectors of columns nr needs and the rows mr needs
// (steps of ROW_STEP), instead of the full kernel on a scratch tile that is then copied.
template <class S, int MR, int NV, int PF_K, int ROW_STEP>
PMD_ALWAYS_INLINE void ukernel_packed_cols(int64_t kc, const typename S::T* a, const typename S::T* b,
                                           typename S::T* c, int64_t ldc, int64_t mr, int64_t nr,
                                           typename S::T alpha, typename S::T beta) {
    static_assert(NV == 2, "one or two vectors of columns");
    constexpr int R1 = ROW_STEP, R2 = 2 * ROW_STEP < MR ? 2 * ROW_STEP : MR;
    if (nr <= S::W) {
        if (mr <= R1) return ukernel_packed<S, MR, NV, PF_K, R1, 1>(kc, a, b, c, ldc, alpha, beta, mr, nr);
        if (mr <= R2) return ukernel_packed<S, MR, NV, PF_K, R2, 1>(kc, a, b, c, ldc, alpha, beta, mr, nr);
        return ukernel_packed<S, MR, NV, PF_K, MR, 1>(kc, a, b, c, ldc, alpha, beta, mr, nr);
    }
    if (mr <= R1) return ukernel_packed<S, MR, NV, PF_K, R1, 2, true>(kc, a, b, c, ldc, alpha, beta, mr, nr);
    if (mr <= R2) return ukernel_packed<S, MR, NV, PF_K, R2, 2, true>(kc, a, b, c, ldc, alpha, beta, mr, nr);
    ukernel_packed<S, MR, NV, PF_K, MR, 2, true>(kc, a, b, c, ldc, alpha, beta, mr, nr);
}

// op(A) element (i, p) at a[i * rsa + p * csa]; op(B) element (p, j) at b[p * ldb + j];
// c: (mr, nr) of an MR x NV*W tile, row stride ldc. FULL: nr == NV*W (no masks in the k loop).
template <class S, int MR, int NV, bool FULL>
PMD_ALWAYS_INLINE void ukernel_direct(int64_t kc, const typename S::T* a, int64_t rsa,
                                      int64_t csa, const typename S::T* b, int64_t ldb,
                                      typename S::T* c, int64_t ldc, int64_t mr, int64_t nr,
                                      typename S::T alpha, typename S::T beta) {
    using T = typename S::T;
    typename S::Mask m[NV];
    for (int v = 0; v < NV; ++v) m[v] = S::mask_for(nr - v * S::W);
    const T* ar[MR];
    for (int i = 0; i < MR; ++i) ar[i] = a + std::min<int64_t>(i, mr - 1) * rsa;
    typename S::V acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
    for (int64_t p = 0; p < kc; ++p, b += ldb) {
        typename S::V bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            bv[v] = FULL ? S::loadu(b + v * S::W) : S::maskz_loadu(m[v], b + v * S::W);
        }
        const int64_t off = p * csa;
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
            const typename S::V ai = S::bcast(ar[i] + off);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
        }
    }
    store_tile<S, MR, NV>(c, ldc, acc, m, mr, alpha, beta);
}

// The direct kernel with the full-width case split out, so full tiles run mask-free, and
// short tiles on a tile of fewer rows (steps of 2, down to 4): the transposed product of a
// thin output (dW = x^T dy with 10 units: 10 rows) would otherwise run 2 idle rows of 12.
// Each c_ij's sum is the same k loop in any tile height, so the bits do not change.
template <class S, int MR, int NV>
void ukernel_direct_any(int64_t kc, const typename S::T* a, int64_t rsa, int64_t csa,
                        const typename S::T* b, int64_t ldb, typename S::T* c, int64_t ldc,
                        int64_t mr, int64_t nr, typename S::T alpha, typename S::T beta) {
    if constexpr (MR > 4) {
        if (mr <= MR - 2) {
            return ukernel_direct_any<S, MR - 2, NV>(kc, a, rsa, csa, b, ldb, c, ldc, mr, nr, alpha, beta);
        }
    }
    if (nr == NV * S::W) {
        ukernel_direct<S, MR, NV, true>(kc, a, rsa, csa, b, ldb, c, ldc, mr, nr, alpha, beta);
    } else {
        ukernel_direct<S, MR, NV, false>(kc, a, rsa, csa, b, ldb, c, ldc, mr, nr, alpha, beta);
    }
}

// One k step of ukernel_dot: acc[i * NC + j] += A row i . B^T row j over lanes p..p+W-1
// (TAIL: only the lanes below kc, the others read as zero).
template <class S, int RR, int NC, bool TAIL>
PMD_ALWAYS_INLINE void dot_step(const typename S::T* const (&ar)[RR], const typename S::T* const (&br)[NC],
                                int64_t p, int64_t kc, typename S::V (&acc)[RR * NC]) {
    const typename S::Mask m = S::mask_for(TAIL ? kc - p : S::W);
    // The NC vectors of B^T first, then each A row, loaded once for its NC FMAs.
    typename S::V bv[NC];
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) bv[j] = TAIL ? S::maskz_loadu(m, br[j] + p) : S::loadu(br[j] + p);
#pragma GCC unroll 16
    for (int i = 0; i < RR; ++i) {
        typename S::V av = TAIL ? S::maskz_loadu(m, ar[i] + p) : S::loadu(ar[i] + p);
        // An empty asm that claims to change av pins it to a register: GCC would otherwise
        // fold the load into each of the NC FMAs (NC loads of the row, and loads, not FMAs,
        // set the pace: 18 per 16 FMAs on the float32 zmm tile instead of 10).
        asm("" : "+v"(av));
#pragma GCC unroll 4
        for (int j = 0; j < NC; ++j) acc[i * NC + j] = S::fmadd(av, bv[j], acc[i * NC + j]);
    }
}

// a: op(A) rows i < mr at a + i * lda (contiguous in k); bt: op(B)^T rows j < nc at
// bt + j * ldbt (contiguous in k); c: (mr <= RR, nc <= NC) row stride ldc. Rows and columns
// past the edge re-read the last valid one and are not stored. RR * NC == W: the W partial-sum
// vectors are reduced together by one transposing tree (S::reduce_lanes: lane i * NC + j holds
// the sum for c_ij), a third of the shuffles and adds of one reduce_add per c_ij. A tile has
// RR rows and NC = 2 columns, so N = 10 (a classifier head) fills every tile, and the RR rows
// of A stay in L1 across the column tiles of one row block.
template <class S, int RR, int NC>
void ukernel_dot(int64_t kc, const typename S::T* a, int64_t lda, int64_t mr,
                 const typename S::T* bt, int64_t ldbt, int64_t nc, typename S::T* c,
                 int64_t ldc, typename S::T alpha, typename S::T beta) {
    using T = typename S::T;
    static_assert(RR * NC == S::W, "one reduction tree per tile");
    const T* ar[RR];
    const T* br[NC];
    for (int i = 0; i < RR; ++i) ar[i] = a + std::min<int64_t>(i, mr - 1) * lda;
    for (int j = 0; j < NC; ++j) br[j] = bt + std::min<int64_t>(j, nc - 1) * ldbt;
    typename S::V acc[RR * NC];
#pragma GCC unroll 16
    for (int f = 0; f < RR * NC; ++f) acc[f] = S::zero();
    // Whole vectors, then one masked step for the k tail: lane l sums p = l, l + W, ... either way.
    int64_t p = 0;
    for (; p + S::W <= kc; p += S::W) dot_step<S, RR, NC, false>(ar, br, p, kc, acc);
    if (p < kc) dot_step<S, RR, NC, true>(ar, br, p, kc, acc);
    alignas(64) T sums[S::W];
    S::storeu(sums, S::reduce_lanes(acc));
    for (int64_t i = 0; i < mr; ++i) {
        for (int64_t j = 0; j < nc; ++j) {
            const T sum = sums[i * NC + j];
            T* cij = c + i * ldc + j;
            *cij = beta == T(0) ? alpha * sum : alpha * sum + beta * *cij;  // c unread at beta 0
        }
    }
}

}  // namespace
}  // namespace pyminidl::kernels::detail
