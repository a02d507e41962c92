// gemm_ukernels.h — internal to the GEMM: the micro-kernel signature and, per ISA path,
// its register tile (MR x NR) and cache blocks (MC, KC, NC), named as in BLIS.
//
// Layout of the packed operands a micro-kernel reads (both 64-byte aligned):
//   a: MR x kc micro-panel of op(A), k-major: a[p * MR + i] (rows past the edge are zero)
//   b: kc x NR micro-panel of op(B), k-major: b[p * NR + j] (columns past the edge are zero)
// and the tile it updates: c[i * ldc + j], i < MR, j < NR (row-major, unit column stride):
//   c = alpha * (a b) + beta * c, and c is not read when beta == 0.
// The k-loop runs p = 0, 1, ..., kc-1 with one rounding per fused multiply-add, so every
// element's summation order is fixed by KC alone, never by the thread that computes it.
//
// Block sizes (Zen 4: 32 KiB L1d, 1 MiB L2 per core, 32 MiB L3): the kc x NR micro-panel of
// B is reused from L1/L2 by every micro-panel of A in the inner ir loop; the MC x KC block of
// A lives in L2 across the jr loop; the KC x NC panel of B lives in L3 across the ic loop.
// The values (gemm.cpp, *_BLOCKS) were picked by sweeping KC in {128..512} and MC in
// {120..480} with csrc/bench on this Zen 4: AVX-512 float32 KC = 384, MC = 240 was best
// on 1024^2 and 2048^2 within the noise of a shared machine. On a Sapphire Rapids (48 KiB
// L1d, 2 MiB L2, 105 MiB L3) the same rule gives MC = 312, KC = 576, NC = 8960, and a sweep
// of MC in {192..960}, KC in {192..768} and NC = 3072 found nothing better (1 thread, CPU
// time, 1024^3 and 2048^3): there the lever was the prefetch of the C tile and the panels
// (AVX512_SGEMM_PF_K), not the blocks. BLIS's skx config (32 x 12 on column-major C, the
// operands swapped against ours) uses MC = 480, KC = 384, NC = 3072.
//
// Reference: F. Van Zee, R. van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", ACM TOMS 41(3), 2015; T. M. Low et al., "Analytical Modeling Is Enough for
// High-Performance BLIS", ACM TOMS 43(2), 2016.
#pragma once

#include "common.h"

namespace pyminidl::kernels::detail {

template <typename T>
using GemmUkernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha,
                             T beta);
// The micro-kernel of a tile's first mr < MR rows (the edge of C) on the same packed panels,
// written straight into c: the zero rows past the edge are not multiplied, and no scratch tile
// is copied. Each row's sums are the full kernel's (the same k order), so the bits are too.
template <typename T>
using GemmRowsUkernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t mr, T alpha,
                                 T beta);
// The micro-kernel of a tile's first nr < NR columns (and mr <= MR rows), written straight into
// c through masks: only the vectors of columns nr needs are multiplied (a Dense layer of 100
// units is 3 x 32 + 4 columns: its last panel costs one vector, not two, and no scratch copy).
// Each column's sums are the full kernel's, so the bits are too.
template <typename T>
using GemmColsUkernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t mr, int64_t nr,
                                 T alpha, T beta);
// A path's packed micro-kernels: rows == nullptr runs edge rows, and cols == nullptr edge
// columns, on a scratch tile with full.
template <typename T>
struct Ukernels {
    GemmUkernel<T> full;
    GemmRowsUkernel<T> rows;
    GemmColsUkernel<T> cols;
};

// The unpacked ("direct") micro-kernel for small products: op(A) element (i, p) at
// a[i * rsa + p * csa], op(B) element (p, j) at b[p * ldb + j] (B needs unit column stride),
// updates the mr x nr corner (mr <= MR, nr <= NR) of a tile of c, masking the edges.
template <typename T>
using GemmDirectKernel = void (*)(int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* b,
                                  int64_t ldb, T* c, int64_t ldc, int64_t mr, int64_t nr,
                                  T alpha, T beta);
// The dot micro-kernel (AVX2 and AVX-512): c_ij = alpha * dot(op(A) row i, op(B)^T row j) + beta c_ij
// for i < mr, j < nc; a: rows at a + i * lda, bt: rows at bt + j * ldbt, both contiguous in k.
template <typename T>
using GemmDotKernel = void (*)(int64_t kc, const T* a, int64_t lda, int64_t mr, const T* bt,
                               int64_t ldbt, int64_t nc, T* c, int64_t ldc, T alpha, T beta);

// Portable micro-kernels (gemm.cpp): GCC/Clang vector extensions, SSE2 on baseline x86-64,
// NEON on aarch64.
void sgemm_ukernel_baseline(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                            float alpha, float beta);
void dgemm_ukernel_baseline(int64_t kc, const double* a, const double* b, double* c,
                            int64_t ldc, double alpha, double beta);
#if defined(PYMINIDL_X86)
// gemm_avx2.cpp (-mavx2 -mfma) and gemm_avx512.cpp (-mavx512f ...): explicit intrinsics.
void sgemm_ukernel_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                        float alpha, float beta);
void sgemm_ukernel_rows_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                             float alpha, float beta);
void sgemm_ukernel_cols_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                             int64_t nr, float alpha, float beta);
void dgemm_ukernel_avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                        double alpha, double beta);
void sgemm_ukernel_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                          float alpha, float beta);
void sgemm_ukernel_rows_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                               float alpha, float beta);
void sgemm_ukernel_cols_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                               int64_t nr, float alpha, float beta);
void dgemm_ukernel_avx512(int64_t kc, const double* a, const double* b, double* c,
                          int64_t ldc, double alpha, double beta);
#define PMD_DIRECT_DECL(name, T)                                                              \
    void name(int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t ldb, T* c, \
              int64_t ldc, int64_t mr, int64_t nr, T alpha, T beta);
PMD_DIRECT_DECL(sgemm_direct_avx2, float)
PMD_DIRECT_DECL(sgemm_direct_narrow_avx2, float)
PMD_DIRECT_DECL(dgemm_direct_avx2, double)
PMD_DIRECT_DECL(dgemm_direct_narrow_avx2, double)
PMD_DIRECT_DECL(sgemm_direct_avx512, float)
PMD_DIRECT_DECL(sgemm_direct_narrow_avx512, float)
PMD_DIRECT_DECL(dgemm_direct_avx512, double)
PMD_DIRECT_DECL(dgemm_direct_narrow_avx512, double)
#undef PMD_DIRECT_DECL
// FMA ceiling probes: iters x (12 x 8 | 24 x 16) float32 FMAs in independent chains.
double fma_probe_avx2(int64_t iters);
double fma_probe_avx512(int64_t iters);
void sgemm_dot_avx2(int64_t kc, const float* a, int64_t lda, int64_t mr, const float* bt,
                    int64_t ldbt, int64_t nc, float* c, int64_t ldc, float alpha, float beta);
void dgemm_dot_avx2(int64_t kc, const double* a, int64_t lda, int64_t mr, const double* bt,
                    int64_t ldbt, int64_t nc, double* c, int64_t ldc, double alpha, double beta);
void sgemm_dot_avx512(int64_t kc, const float* a, int64_t lda, int64_t mr, const float* bt,
                      int64_t ldbt, int64_t nc, float* c, int64_t ldc, float alpha, float beta);
void dgemm_dot_avx512(int64_t kc, const double* a, int64_t lda, int64_t mr, const double* bt,
                      int64_t ldbt, int64_t nc, double* c, int64_t ldc, double alpha, double beta);
#endif

// Portable kernel (16-byte vectors). aarch64: 32 NEON registers; 8 x 8 floats = 16
// accumulators + 2 B vectors + 8 A values (GCC keeps each in a register for fmla by
// element; BLIS's hand-written 8x12 packs them in 2, which the vector extensions cannot
// ask for, and 8 x 12 spilled accumulators to the stack). Elsewhere
// (SSE2: 16 xmm): 6 x 8 floats = 12 accumulators + 2 B + 1 broadcast, which covers the
// 3-cycle add latency on two add pipes with the multiplies on two more.
// AR: copies of each A value in the packed panel. SSE2 has no broadcast from memory (movss
// + shufps, a shuffle on the FP pipes per row per k step, ~30% of the kernel's issue slots),
// so on x86 A is packed one vector per value (AR = lanes) and read with plain loads; NEON
// broadcasts for free (ld1r, fmla by element): AR = 1.
#if defined(__aarch64__)
constexpr int BASELINE_SGEMM_MR = 8, BASELINE_SGEMM_NR = 8, BASELINE_SGEMM_AR = 1;
constexpr int BASELINE_DGEMM_MR = 8, BASELINE_DGEMM_NR = 4, BASELINE_DGEMM_AR = 1;
#else
constexpr int BASELINE_SGEMM_MR = 6, BASELINE_SGEMM_NR = 8, BASELINE_SGEMM_AR = 4;
constexpr int BASELINE_DGEMM_MR = 6, BASELINE_DGEMM_NR = 4, BASELINE_DGEMM_AR = 2;
#endif
// AVX2: 16 ymm registers; 6 x 16 floats = 12 accumulators + 2 for B + 1 broadcast.
constexpr int AVX2_SGEMM_MR = 6, AVX2_SGEMM_NR = 16;
constexpr int AVX2_DGEMM_MR = 6, AVX2_DGEMM_NR = 8;
// AVX-512: 32 zmm registers; 12 x 32 floats = 24 accumulators + 2 for B + broadcasts.
constexpr int AVX512_SGEMM_MR = 12, AVX512_SGEMM_NR = 32;
// Software prefetch distance of the AVX-512 float32 packed kernel, in k steps (gemm_simd.h,
// ukernel_packed; 0 = none): 16 steps = 2 KiB of the B panel, 768 bytes of the A panel ahead.
// 8, 24 and 32 measured the same within the noise on a Sapphire Rapids.
constexpr int AVX512_SGEMM_PF_K = 16;
constexpr int AVX512_DGEMM_MR = 12, AVX512_DGEMM_NR = 16;
// Direct kernels use the tiles above, and a narrow tile for small N (a Dense layer with 10
// units would waste two thirds of a 32-wide tile): one vector per row, more rows.
constexpr int AVX2_SDIRECT_NARROW_MR = 12, AVX2_SDIRECT_NARROW_NR = 8;
constexpr int AVX2_DDIRECT_NARROW_MR = 12, AVX2_DDIRECT_NARROW_NR = 4;
constexpr int AVX512_SDIRECT_NARROW_MR = 16, AVX512_SDIRECT_NARROW_NR = 16;
constexpr int AVX512_DDIRECT_NARROW_MR = 16, AVX512_DDIRECT_NARROW_NR = 8;
// Dot tiles: RR rows x 2 columns, RR * 2 = the lanes of one vector, so the tile's partial-sum
// vectors reduce in one transposing tree (gemm_simd.h). N = 10 (a classifier head) runs as 5
// column tiles with no idle column, against 10 of 12 in the former 2 x 12 tile; per k step
// a float32 zmm tile loads 8 + 2 vectors for 16 FMAs (25 of 32 zmm).
constexpr int DOT_NC = 2;
constexpr int AVX512_SDOT_RR = 8, AVX512_DDOT_RR = 4;
// AVX2: 8 (float32) or 4 (float64) accumulators of 16 ymm, with the 4 or 2 A vectors and 1 B.
constexpr int AVX2_SDOT_RR = 4, AVX2_DDOT_RR = 2;
// Portable float32/float64 block rule: KC = 256 and an A block of 3/16 of L2 on Zen 5's
// 48 KiB / 1 MiB (csrc/bench, SSE2 path, 256^3: 45 GFLOP/s against 35 with KC = 384).
constexpr double BASELINE_KC_L1 = 1.0 / 6.0, BASELINE_MC_L2 = 0.1875;
// AVX2 float32 block rule (gemm.cpp, BlockRule): shares of L1d / L2 / L3, measured on a Zen 3.
constexpr double AVX2_KC_L1 = 0.5, AVX2_MC_L2 = 0.25, AVX2_NC_L3 = 0.125;
// The largest MR x NR of any direct tile (scratch size for a tile of a strided C).
constexpr int DIRECT_MAX_TILE = AVX512_SGEMM_MR * AVX512_SGEMM_NR;

}  // namespace pyminidl::kernels::detail
