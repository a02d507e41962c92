// conv.cpp — NHWC convolution (forward, input gradient, weight gradient) as im2col + GEMM.
//
// Layout: x (N, H, W, C), y (N, OH, OW, F), kernel (KH, KW, C/G, F) as Keras stores it. With
// NHWC and this kernel layout one image's patch matrix (OH*OW, KH*KW*C/G) times the kernel
// viewed as (KH*KW*C/G, F) (row stride F; group g starts at column g*F/G) is the output, so
// no transposes are needed (STYLE §5). The patch matrix is built for a tile of TM output
// pixels at a time into a per-thread buffer sized to stay in L2, and multiplied with the
// serial GEMM entry (gemm.h) on the same thread: the tile is multiplied while cache-hot.
// A 1x1 / stride-1 / unpadded convolution needs no patches: x itself is the matrix.
// The float32 weight gradient on AVX2/AVX-512 writes no patches either: register tiles of dw
// (conv_simd.h, wgrad_tile) read them from a zero-padded copy of a band of input rows.
//
// A stride-1 input gradient runs as a forward convolution of dy with the kernel flipped in
// space and its channel axes swapped; other strides multiply dy by the kernel into patch
// tiles and scatter-add them back (col2im). Padding is multiplied as zeros, never skipped:
// a NaN or Inf in the kernel reaches every output whose window takes a padding tap (0 x NaN
// is NaN), as in PyTorch's kernels; finite kernels are unaffected. A first layer (C = 1 or 3)
// also goes through im2col + GEMM: a direct loop compiled for the baseline ISA measured
// 1.5-2.5x slower there.
//
// Parallel split, chosen so that no result depends on the thread count:
// - forward: work items (image, tile) split evenly; each output element is one item's GEMM
//   (on the implicit kernels: runs of pixels over all images, each output one tile's sum).
// - input gradient: one image per item (its tiles overlap in dx, so one thread scatters
//   them in order); each dx element is summed in the same order by whichever thread runs it.
// - weight gradient: images are cut into a fixed number of parts (min(N, WEIGHT_PARTS), not
//   the thread count); each part accumulates its own partial sum serially, and the partials
//   are added in part order. The sums are therefore identical at every thread count. The bias
//   gradient (sum of dy) is summed by the same parts, each as it first reads its dy.
// Reference: K. Chellapilla et al., "High Performance Convolutional Neural Networks for
// Document Processing" (im2col); the GEMM structure is BLIS's (gemm.cpp).
#include "conv.h"
#include "pool.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "conv_isa.h"
#include "cpu_features.h"
#include "gemm.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace {

constexpr int64_t TILE_ELEMS = int64_t(1) << 16;  // patch tile: 256 KiB of float32, inside L2
constexpr int64_t WEIGHT_PARTS = 16;

int64_t gemm_ws(float*, int64_t M, int64_t N, int64_t K) { return sgemm_workspace_elems(M, N, K); }
int64_t gemm_ws(double*, int64_t M, int64_t N, int64_t K) { return dgemm_workspace_elems(M, N, K); }

void gemm1(float* C, int64_t ldc, const float* A, int64_t lda, bool ta, const float* B, int64_t ldb,
           bool tb, int64_t M, int64_t N, int64_t K, float beta, float* work, int64_t we) {
    sgemm_serial(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, 1.0f, beta, work, we);
}
void gemm1(double* C, int64_t ldc, const double* A, int64_t lda, bool ta, const double* B, int64_t ldb,
           bool tb, int64_t M, int64_t N, int64_t K, double beta, double* work, int64_t we) {
    dgemm_serial(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, 1.0, beta, work, we);
}

int64_t patch_len(const ConvGeom& g) { return g.KH * g.KW * (g.C / g.G); }

enum class Kind { forward, input, weight };

// Rows of a patch tile. The weight gradient's tiles are its GEMM's K: longer ones keep its
// (K, F) accumulator in registers over more products (measured: 14x14 and 32x32 layers).
int64_t tile_rows(const ConvGeom& g, Kind kind) {
    const int64_t elems = kind == Kind::weight ? 4 * TILE_ELEMS : TILE_ELEMS;
    const int64_t tm = std::max<int64_t>(32, elems / std::max<int64_t>(patch_len(g), 1));
    return std::max<int64_t>(1, std::min(tm, g.OH * g.OW));
}

bool pointwise(const ConvGeom& g) {
    return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0 &&
           g.OH == g.H && g.OW == g.W;
}

// The float32 forward on AVX2/AVX-512 reads its patches straight from x (conv_simd.h) instead of
// writing them out with im2col, up to the K over which the GEMM's unblocked kernels stop too
// (gemm.cpp, UNBLOCKED_MAX_K: one running sum per output). A pointwise convolution keeps the GEMM.
constexpr int64_t IMPLICIT_MAX_K = 4096;

template <typename T>
bool implicit_path(const ConvGeom& g) {
#if defined(PYMINIDL_X86)
    return std::is_same_v<T, float> && active_isa() != Isa::baseline && !pointwise(g) &&
           patch_len(g) > 0 && patch_len(g) <= IMPLICIT_MAX_K;
#else
    (void)g;
    return false;
#endif
}

// Output pixels [p0, p0 + rows) counted over all images, group grp, on the implicit kernel of the
// active ISA.
void implicit_rows(float* y, const float* x, const float* w, const float* b, const ConvGeom& g, int64_t grp,
                   int64_t p0, int64_t rows, const float* zeros) {
#if defined(PYMINIDL_X86)
    if (active_isa() == Isa::avx512) return avx512::conv_forward_rows(y, x, w, b, g, grp, p0, rows, zeros);
    avx2::conv_forward_rows(y, x, w, b, g, grp, p0, rows, zeros);
#else
    (void)y, (void)x, (void)w, (void)b, (void)g, (void)grp, (void)p0, (void)rows, (void)zeros;
#endif
}
template <typename T>
void implicit_rows(T*, const T*, const T*, const T*, const ConvGeom&, int64_t, int64_t, int64_t,
                   const T*) {}  // never reached: implicit_path<double> is false

// The float32 weight gradient on AVX2/AVX-512 (conv_simd.h, wgrad_tile) reads its patches from a
// zero-padded copy of a band of input rows instead of an im2col tile: the copy costs one pass
// over the band's input where im2col writes each input value KH*KW times, and with padding taken
// out of the band every patch row is a fixed offset from its pixel, whatever the tap. A band
// holds up to BAND_ELEMS padded inputs (at least one output row's), so that it and its dy stay in
// L2 while every register tile of dw reads them.
constexpr int64_t BAND_ELEMS = int64_t(1) << 14;  // 64 KiB (measured: 4K and 2K elements slower)

int64_t padded_w(const ConvGeom& g) { return (g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1; }
int64_t band_in_rows(const ConvGeom& g, int64_t rows) { return (rows - 1) * g.SH + (g.KH - 1) * g.DH + 1; }

// Output rows per band: as many as fit BAND_ELEMS, at least 1.
int64_t band_rows(const ConvGeom& g) {
    const int64_t row = std::max<int64_t>(padded_w(g) * (g.C / std::max<int64_t>(g.G, 1)), 1);
    const int64_t fit = BAND_ELEMS / row - band_in_rows(g, 1);
    return std::clamp<int64_t>(fit < 0 ? 1 : fit / std::max<int64_t>(g.SH, 1) + 1, 1, std::max<int64_t>(g.OH, 1));
}
int64_t image_band_elems(const ConvGeom& g) {
    return band_in_rows(g, band_rows(g)) * padded_w(g) * (g.C / std::max<int64_t>(g.G, 1));
}
// Images per band: where one image's rows fit, as many whole images as BAND_ELEMS holds, so that
// a small image (7x7, 14x14) does not load and store every dw tile once per image.
int64_t band_images(const ConvGeom& g) {
    if (band_rows(g) < g.OH) return 1;
    return std::clamp<int64_t>(BAND_ELEMS / std::max<int64_t>(image_band_elems(g), 1), 1, std::max<int64_t>(g.N, 1));
}
// A band's padded input rows, then room for its dy packed one strip of filters at a time.
int64_t band_elems(const ConvGeom& g) {
    return band_images(g) * (image_band_elems(g) + band_rows(g) * g.OW * WGRAD_MAX_NR);
}

// A band larger than the weight gradient's im2col tile (a very wide image) keeps im2col.
template <typename T>
bool implicit_weight(const ConvGeom& g) {
#if defined(PYMINIDL_X86)
    return std::is_same_v<T, float> && active_isa() != Isa::baseline && !pointwise(g) && patch_len(g) > 0 &&
           image_band_elems(g) <= 4 * TILE_ELEMS;
#else
    (void)g;
    return false;
#endif
}

// The GEMM workspace a thread needs, for the largest tile, per kernel kind.
template <typename T>
int64_t per_thread(const ConvGeom& g, Kind kind) {
    const int64_t TM = tile_rows(g, kind), K = patch_len(g), Fg = g.F / std::max<int64_t>(g.G, 1);
    T* tag = nullptr;
    const int64_t ws = kind == Kind::forward ? gemm_ws(tag, TM, Fg, K)
                       : kind == Kind::input ? gemm_ws(tag, TM, K, Fg)
                                             : gemm_ws(tag, K, Fg, TM);
    return TM * K + ws;
}

// The weight gradient's per-thread scratch: a padded band on the implicit path, else the im2col
// tile and GEMM workspace (so the size asked for depends on the ISA active when asked).
template <typename T>
int64_t per_thread_weight(const ConvGeom& g) {
    return implicit_weight<T>(g) ? band_elems(g) : per_thread<T>(g, Kind::weight);
}
// A padded first layer (1-4 input channels) runs its implicit tiles on a zero-padded copy of each
// image: every tap of every tile then lies inside (conv_simd.h's tile without bounds tests), where
// on the image itself the tiles that touch the border test each row at each tap, the set-up that
// dominates when a tap has 1-3 channels. The copy is one image (a few KB) per thread and one pass
// over x; the products and their order are the same, so are the bits. The images go over the
// threads, so a batch smaller than the team (one image at inference) keeps the pixel split.
constexpr int64_t PADDED_MAX_C = 4;

// The padded image's geometry: one image of the rows and columns the taps read, no padding left.
ConvGeom padded_image(const ConvGeom& g) {
    const int64_t hp = (g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1, wp = (g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1;
    return {1, hp, wp, g.C, g.OH, g.OW, g.F, g.KH, g.KW, g.SH, g.SW, 0, 0, g.DH, g.DW, 1};
}

template <typename T>
bool padded_path(const ConvGeom& g) {
    if (!implicit_path<T>(g) || g.G != 1 || g.C > PADDED_MAX_C || g.N < omp_max_threads() || g.OH <= 0 || g.OW <= 0) {
        return false;
    }
    const ConvGeom p = padded_image(g);
    return g.PH > 0 || g.PW > 0 || p.H > g.H || p.W > g.W;
}

// The forward's: a padded image on the padded path, none on the implicit path (its tiles read x
// in place), else as per_thread.
template <typename T>
int64_t per_thread_forward(const ConvGeom& g) {
    if (padded_path<T>(g)) {
        const ConvGeom p = padded_image(g);
        return p.H * p.W * p.C;
    }
    return implicit_path<T>(g) ? 0 : per_thread<T>(g, Kind::forward);
}

// A stride-1 input gradient is a forward convolution of dy with the kernel flipped in space
// and its channel axes swapped (pads (KH-1)*DH - PH): patches of dy times a (KH*KW*F/G, C)
// matrix, the GEMM's best shape, where col2im would scatter-add every patch back.
bool flip_path(const ConvGeom& g) { return g.SH == 1 && g.SW == 1 && !pointwise(g); }

ConvGeom flipped(const ConvGeom& g) {
    return {g.N, g.OH, g.OW, g.F, g.H, g.W, g.C, g.KH, g.KW, 1, 1, (g.KH - 1) * g.DH - g.PH,
            (g.KW - 1) * g.DW - g.PW, g.DH, g.DW, g.G};
}

// The implicit forward's kernel vectors are 64-byte loads: from a kernel off a 64-byte boundary
// (NumPy's arrays start 16 bytes past one as often as not) each splits across two cache lines,
// measured 9-10% slower on the Xeon (14x14 and 32x32 layers). Such a kernel is copied, once per
// call, to an aligned place in the work, and the flipped kernel of the input gradient is built at
// one.
constexpr int64_t ALIGN_PAD = 64 / sizeof(float);  // elements to reach a 64-byte boundary, at most
int64_t kernel_elems(const ConvGeom& g) { return g.KH * g.KW * (g.C / std::max<int64_t>(g.G, 1)) * g.F; }
template <typename T>
bool aligned64(const T* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }
template <typename T>
T* align64(T* p) {
    while (!aligned64(p)) ++p;  // sizeof(T) divides 64 and the work is T-aligned: < ALIGN_PAD steps
    return p;
}

template <typename T>
int64_t workspace_elems(const ConvGeom& g, int threads, Kind kind) {
    // Nothing to compute: forward_t, input_t and weight_t return before they touch their work
    // (the block sizes below would be derived from OH - 1 < 0 and come out negative).
    if (g.N == 0 || g.OH <= 0 || g.OW <= 0 || g.F == 0) return 0;
    if (kind == Kind::input && flip_path(g)) {
        return ALIGN_PAD + kernel_elems(g) + workspace_elems<T>(flipped(g), threads, Kind::forward);
    }
    const int64_t parts = kind == Kind::weight ? std::min(g.N, WEIGHT_PARTS) : 0;
    const int64_t zeros = kind == Kind::forward ? g.C / std::max<int64_t>(g.G, 1) : 0;  // implicit_rows' padding row
    const int64_t copy = kind == Kind::forward && implicit_path<T>(g) ? ALIGN_PAD + kernel_elems(g) : 0;
    const int64_t pt = kind == Kind::weight  ? per_thread_weight<T>(g)
                       : kind == Kind::forward ? per_thread_forward<T>(g)
                                               : per_thread<T>(g, kind);
    return zeros + copy + parts * (patch_len(g) + 1) * g.F + std::max(threads, 1) * pt;  // + each part's db
}

void check_work(const char* op, int64_t have, int64_t need) {
    if (have < need) {
        throw std::invalid_argument(std::string(op) + ": workspace of " + std::to_string(have) +
                                    " elements is smaller than the " + std::to_string(need) + " needed");
    }
}

// col: (rows, KH*KW*Cg), rows (kh, kw, cg); xn: one image (H, W, C). Taps outside read 0.
template <typename T>
void im2col_tile(T* PMD_RESTRICT col, const T* PMD_RESTRICT xn, const ConvGeom& g, int64_t grp,
                 int64_t p0, int64_t rows) {
    const int64_t Cg = g.C / g.G, K = patch_len(g);
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t oh = (p0 + r) / g.OW, ow = (p0 + r) % g.OW;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
            const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
            for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t iw = ow * g.SW - g.PW + kw * g.DW;
                T* d = col + r * K + (kh * g.KW + kw) * Cg;
                // Plain loops, not std::copy/fill: with a few channels (a first layer) their
                // library calls per tap cost more than the copies.
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {
                    for (int64_t c = 0; c < Cg; ++c) d[c] = T(0);
                } else {
                    const T* s = xn + (ih * g.W + iw) * g.C + grp * Cg;
                    for (int64_t c = 0; c < Cg; ++c) d[c] = s[c];
                }
            }
        }
    }
}

// The adjoint of im2col_tile: dxn[tap] += col[r, tap] for the taps inside the image.
template <typename T>
void col2im_tile_add(T* PMD_RESTRICT dxn, const T* PMD_RESTRICT col, const ConvGeom& g, int64_t grp,
                     int64_t p0, int64_t rows) {
    const int64_t Cg = g.C / g.G, K = patch_len(g);
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t oh = (p0 + r) / g.OW, ow = (p0 + r) % g.OW;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
            const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t iw = ow * g.SW - g.PW + kw * g.DW;
                if (iw < 0 || iw >= g.W) continue;
                const T* s = col + r * K + (kh * g.KW + kw) * Cg;
                T* d = dxn + (ih * g.W + iw) * g.C + grp * Cg;
                for (int64_t c = 0; c < Cg; ++c) d[c] += s[c];
            }
        }
    }
}

// The patch matrix of one tile for one group: x itself for a pointwise convolution, else
// built in col. Returns the matrix and sets its row stride.
template <typename T>
const T* patches(T* col, const T* x, const ConvGeom& g, int64_t n, int64_t grp, int64_t p0,
                 int64_t rows, int64_t* ld) {
    if (pointwise(g)) {
        *ld = g.C;
        return x + (n * g.H * g.W + p0) * g.C + grp * (g.C / g.G);
    }
    im2col_tile(col, x + n * g.H * g.W * g.C, g, grp, p0, rows);
    *ld = patch_len(g);
    return col;
}

// y rows (rows, F) = bias, or 0: what the GEMM would add to when the patch length is 0.
template <typename T>
void add_bias(T* y, const T* b, int64_t rows, int64_t F, bool overwrite) {
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t f = 0; f < F; ++f) {
            const T v = b != nullptr ? b[f] : T(0);
            y[r * F + f] = overwrite ? v : y[r * F + f] + v;
        }
    }
}

// The implicit forward's work items: runs of output pixels over all images (a tile may run on into
// the next image), a multiple of every tile's rows (6, 12, 16 on AVX-512; 6, 12 on AVX2) so that
// only the last run ends in a part tile. Per image, 14x14's 196 pixels left 8 of the last 12-row
// tile idle (4% of the 14x14 input gradient's multiplies).
constexpr int64_t IMPLICIT_RUN_ALIGN = 48;

template <typename T>
void forward_implicit(T* y, const T* x, const T* w, const T* b, const ConvGeom& g, const T* zeros) {
    const int64_t total = g.N * g.OH * g.OW;
    const int64_t run = std::max(IMPLICIT_RUN_ALIGN, tile_rows(g, Kind::forward) / IMPLICIT_RUN_ALIGN * IMPLICIT_RUN_ALIGN);
    const int64_t items = ceil_div(total, run);
    team_region(threads_if(items > 1), [&] {
        int64_t lo, hi;
        team_range(items, &lo, &hi);
        for (int64_t it = lo; it < hi; ++it) {
            const int64_t p0 = it * run, rows = std::min(run, total - p0);
            for (int64_t grp = 0; grp < g.G; ++grp) implicit_rows(y, x, w, b, g, grp, p0, rows, zeros);
        }
    });
}

// xp: (p.H, p.W, C) = image n of x (N, H, W, C) from row -PH and column -PW on, 0 outside it.
template <typename T>
void pad_image(T* PMD_RESTRICT xp, const T* PMD_RESTRICT x, const ConvGeom& g, const ConvGeom& p, int64_t n) {
    const int64_t c = g.C, lo = std::min(g.PW, p.W), hi = std::min(p.W, g.PW + g.W);  // columns inside: [lo, hi)
    for (int64_t r = 0; r < p.H; ++r) {
        T* d = xp + r * p.W * c;
        const int64_t ih = r - g.PH;
        if (ih < 0 || ih >= g.H) {
            std::fill(d, d + p.W * c, T(0));
            continue;
        }
        std::fill(d, d + lo * c, T(0));
        std::copy(x + ((n * g.H + ih) * g.W + lo - g.PW) * c, x + ((n * g.H + ih) * g.W + hi - g.PW) * c, d + lo * c);
        std::fill(d + std::max(lo, hi) * c, d + p.W * c, T(0));
    }
}

// The padded path's image loop: images over the threads, each padded into its thread's share of
// work (`stride` elements: the padded image, then scratch) and handed to image(n, convolve,
// scratch), where convolve(out) runs it as a one-image convolution without padding into out.
template <typename T, typename Image>
void padded_images(const T* x, const T* w, const T* b, const ConvGeom& g, const T* zeros, T* work, int64_t stride,
                   Image image) {
    const ConvGeom p = padded_image(g);
    const int64_t P = g.OH * g.OW;
    team_region(threads_if(g.N > 1), [&] {
        int64_t lo, hi;
        team_range(g.N, &lo, &hi);
        T* xp = work + omp_thread_id() * stride;
        const auto convolve = [&](T* out) { implicit_rows(out, xp, w, b, p, 0, 0, P, zeros); };
        for (int64_t n = lo; n < hi; ++n) {
            pad_image(xp, x, g, p, n);
            image(n, convolve, xp + p.H * p.W * p.C);
        }
    });
}

// The padded path's forward: each image's output straight into y (pt elements of work a thread).
template <typename T>
void forward_padded(T* y, const T* x, const T* w, const T* b, const ConvGeom& g, const T* zeros, T* work, int64_t pt) {
    const int64_t image_out = g.OH * g.OW * g.F;
    padded_images(x, w, b, g, zeros, work, pt, [&](int64_t n, const auto& convolve, T*) { convolve(y + n * image_out); });
}

// The implicit path's work: a row of C/G zeros (implicit_rows' padding) and the kernel 64-byte
// aligned (a copy where w is not); returns the rest of work.
template <typename T>
T* implicit_work(const T* w, const ConvGeom& g, T* work, const T** zeros, const T** wa) {
    const int64_t Cg = g.C / g.G;
    std::fill(work, work + Cg, T(0));
    *zeros = work;
    work += Cg;
    *wa = w;
    if (!aligned64(w)) {
        T* copy = align64(work);
        std::copy(w, w + kernel_elems(g), copy);
        *wa = copy;
    }
    return work + ALIGN_PAD + kernel_elems(g);
}

template <typename T>
void forward_t(T* y, const T* x, const T* w, const T* b, const ConvGeom& g, T* work, int64_t we) {
    const int64_t P = g.OH * g.OW, K = patch_len(g), Fg = g.F / g.G, TM = tile_rows(g, Kind::forward);
    if (g.N == 0 || P == 0 || g.F == 0) return;
    check_work("conv_forward", we, workspace_elems<T>(g, omp_max_threads(), Kind::forward));
    const int64_t tiles = ceil_div(P, TM), items = g.N * tiles, pt = per_thread_forward<T>(g);
    if (implicit_path<T>(g)) {
        const T *zeros, *wa;
        T* rest = implicit_work(w, g, work, &zeros, &wa);
        if (padded_path<T>(g)) return forward_padded(y, x, wa, b, g, zeros, rest, pt);
        return forward_implicit(y, x, wa, b, g, zeros);
    }
    work += g.C / g.G;  // the zeros row every forward's workspace holds (workspace_elems)
    team_region(threads_if(items > 1), [&] {
        int64_t lo, hi;
        team_range(items, &lo, &hi);
        T* col = work + omp_thread_id() * pt;
        for (int64_t it = lo; it < hi; ++it) {
            const int64_t n = it / tiles, p0 = (it % tiles) * TM, rows = std::min(TM, P - p0);
            T* yt = y + (n * P + p0) * g.F;
            for (int64_t grp = 0; K > 0 && grp < g.G; ++grp) {
                int64_t lda;
                const T* A = patches(col, x, g, n, grp, p0, rows, &lda);
                gemm1(yt + grp * Fg, g.F, A, lda, false, w + grp * Fg, g.F, false, rows, Fg, K, T(0),
                      col + TM * K, pt - TM * K);
            }
            if (b != nullptr || K == 0) add_bias(yt, b, rows, g.F, K == 0);
        }
    });
}

// One image's input gradient: per tile and group dcol = dy_tile W_g^T, scattered into dxn.
template <typename T>
void input_image(T* dxn, const T* dyn, const T* w, const ConvGeom& g, T* col, int64_t pt) {
    const int64_t P = g.OH * g.OW, K = patch_len(g), Cg = g.C / g.G, Fg = g.F / g.G, TM = tile_rows(g, Kind::input);
    const bool pw = pointwise(g);
    if (!pw) std::fill(dxn, dxn + g.H * g.W * g.C, T(0));
    for (int64_t p0 = 0; p0 < P; p0 += TM) {
        const int64_t rows = std::min(TM, P - p0);
        for (int64_t grp = 0; grp < g.G; ++grp) {
            const T* A = dyn + p0 * g.F + grp * Fg;
            T* C = pw ? dxn + p0 * g.C + grp * Cg : col;
            gemm1(C, pw ? g.C : K, A, g.F, false, w + grp * Fg, g.F, true, rows, pw ? Cg : K, Fg, T(0),
                  col + TM * K, pt - TM * K);
            if (!pw) col2im_tile_add(dxn, col, g, grp, p0, rows);
        }
    }
}

// wf: (KH, KW, F/G, C), wf[KH-1-kh, KW-1-kw, fg, g*Cg + cg] = w[kh, kw, cg, g*Fg + fg]. Built on
// one thread before the input gradient's parallel region, so it must be cheap: per tap a (Cg, F)
// transpose read along w's rows, no division per element (f / Fg and f % Fg per element cost
// ~0.15 ms of a 14x14 backward, with the second thread waiting).
template <typename T>
void flip_kernel(T* PMD_RESTRICT wf, const T* PMD_RESTRICT w, const ConvGeom& g) {
    const int64_t Cg = g.C / g.G, Fg = g.F / g.G, taps = g.KH * g.KW;
    for (int64_t tap = 0; tap < taps; ++tap) {
        T* dst = wf + (taps - 1 - tap) * Fg * g.C;  // (KH-1-kh)*KW + (KW-1-kw) = taps-1-tap
        for (int64_t cg = 0; cg < Cg; ++cg) {
            const T* src = w + (tap * Cg + cg) * g.F;
            for (int64_t grp = 0; grp < g.G; ++grp) {
                for (int64_t fg = 0; fg < Fg; ++fg) dst[fg * g.C + grp * Cg + cg] = src[grp * Fg + fg];
            }
        }
    }
}

template <typename T>
void input_t(T* dx, const T* dy, const T* w, const ConvGeom& g, T* work, int64_t we) {
    const int64_t img = g.H * g.W * g.C;
    if (g.N == 0 || img == 0) return;
    if (g.OH * g.OW == 0 || g.F == 0) return std::fill(dx, dx + g.N * img, T(0));
    check_work("conv_backward_input", we, workspace_elems<T>(g, omp_max_threads(), Kind::input));
    if (flip_path(g)) {
        T* wf = align64(work);
        flip_kernel(wf, w, g);
        const int64_t used = (wf - work) + kernel_elems(g);
        return forward_t(dx, dy, static_cast<const T*>(wf), static_cast<const T*>(nullptr), flipped(g),
                         work + used, we - used);
    }
    const int64_t pt = per_thread<T>(g, Kind::input);
    team_region(threads_if(g.N > 1), [&] {
        int64_t lo, hi;
        team_range(g.N, &lo, &hi);
        for (int64_t n = lo; n < hi; ++n) {
            input_image(dx + n * img, dy + n * g.OH * g.OW * g.F, w, g, work + omp_thread_id() * pt, pt);
        }
    });
}

// One part's weight-gradient sum over images [n0, n1) into acc (K, F), overwritten.
template <typename T>
void weight_part(T* acc, const T* dy, const T* x, const ConvGeom& g, int64_t n0, int64_t n1, T* col,
                 int64_t pt) {
    const int64_t P = g.OH * g.OW, K = patch_len(g), Fg = g.F / g.G, TM = tile_rows(g, Kind::weight);
    bool first = true;
    for (int64_t n = n0; n < n1; ++n) {
        for (int64_t p0 = 0; p0 < P; p0 += TM, first = false) {
            const int64_t rows = std::min(TM, P - p0);
            for (int64_t grp = 0; grp < g.G; ++grp) {
                int64_t lda;
                const T* A = patches(col, x, g, n, grp, p0, rows, &lda);
                gemm1(acc + grp * Fg, g.F, A, lda, true, dy + (n * P + p0) * g.F + grp * Fg, g.F, false,
                      K, Fg, rows, first ? T(0) : T(1), col + TM * K, pt - TM * K);
            }
        }
    }
}

// xb (C/G, in_rows, Wp), one plane per channel = image n's input rows from oh0*SH - PH on,
// columns from -PW, group grp's channels; 0 where that falls outside the image. Planes, not
// pixels of C/G channels: a dw tile reads a few channels of each pixel, and along a plane the
// pixels it reads share lines (16 to a line at stride 1) where pixel-major each one is a line.
// Each plane row is stored once, its padding's zeros with it (conv_simd.h, conv_pad_band: blocks
// of W pixels x W channels transposed in registers, the reads contiguous): zeroing the padding
// per row and channel with library calls cost one per 1-2 floats, a channel-by-channel copy read
// each pixel's line Cg times, and a scalar scatter per float over a band zeroed first was 7% of a
// 14x14 weight gradient.
void pad_band(float* xb, const float* x, const ConvGeom& g, int64_t n, int64_t grp, int64_t oh0, int64_t in_rows) {
#if defined(PYMINIDL_X86)
    if (active_isa() == Isa::avx512) return avx512::conv_pad_band(xb, x, g, n, grp, oh0, in_rows, padded_w(g));
    avx2::conv_pad_band(xb, x, g, n, grp, oh0, in_rows, padded_w(g));
#else
    (void)xb, (void)x, (void)g, (void)n, (void)grp, (void)oh0, (void)in_rows;
#endif
}

void weight_band(float* acc, const float* xb, const float* dyb, float* dyp, const WgradBand& b, bool first) {
#if defined(PYMINIDL_X86)
    if (active_isa() == Isa::avx512) return avx512::conv_weight_band(acc, xb, dyb, dyp, b, first);
    avx2::conv_weight_band(acc, xb, dyb, dyp, b, first);
#else
    (void)acc, (void)xb, (void)dyb, (void)dyp, (void)b, (void)first;
#endif
}

// span[0..2) = [lo, hi): the outputs o in [0, count) whose input index start + o*step lies in
// [0, limit); all of [0, count) when not `clip`.
void inside_span(int64_t* span, int64_t count, int64_t start, int64_t step, int64_t limit, bool clip) {
    const int64_t lo = std::clamp<int64_t>(start >= 0 ? 0 : ceil_div(-start, step), 0, count);
    const int64_t hi = std::clamp<int64_t>(limit > start ? ceil_div(limit - start, step) : 0, 0, count);
    span[0] = clip ? lo : 0, span[1] = clip ? std::max(lo, hi) : count;
}

// Whether p[0, n) holds no inf or NaN (an exponent of all ones): integer ORs, which vectorise.
bool all_finite(const float* p, int64_t n) {
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        uint32_t u;
        std::memcpy(&u, p + i, sizeof(u));
        bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

// WgradBand::ahead for the band after (n, oh0) in a part ending at image n1: its x rows and its
// dy, each a contiguous stretch, where they fit in half of L2 together with what this band's
// tiles keep there (the part's dw sum, K x F; the band; its dy and its packed copy), else
// nothing: prefetched over that, they cost more than they saved (7x7 64->128, whose dw sum is
// 288 KiB: 1-2% slower; 14x14 and 32x32: 3% faster).
void next_band(WgradBand* b, const ConvGeom& g, int64_t n, int64_t oh0, int64_t n1) {
    const int64_t BH = band_rows(g), BI = band_images(g), P = std::min(BI, n1 - n) * std::min(BH, g.OH - oh0) * g.OW;
    const int64_t kept = patch_len(g) * g.F + BI * image_band_elems(g) + 2 * P * g.F;
    if ((oh0 += BH) >= g.OH) oh0 = 0, n += BI;
    if (n >= n1) return;
    const int64_t imgs = std::min(BI, n1 - n), rows = std::min(BH, g.OH - oh0);
    const int64_t ih0 = std::clamp<int64_t>(oh0 * g.SH - g.PH, 0, g.H);
    const int64_t ih1 = std::clamp<int64_t>(oh0 * g.SH - g.PH + band_in_rows(g, rows), ih0, g.H);
    const int64_t x_len = imgs > 1 ? imgs * g.H * g.W * g.C : (ih1 - ih0) * g.W * g.C;  // whole images if several
    const int64_t dy_len = imgs * rows * g.OW * g.F;
    const int64_t l2 = cache_sizes().l2 > 0 ? cache_sizes().l2 / int64_t(sizeof(float)) : int64_t(1) << 18;
    if (kept + x_len + dy_len > l2 / 2) return;
    b->ahead[0] += (n * g.H + ih0) * g.W * g.C;
    b->ahead_len[0] = x_len;
    b->ahead[1] += (n * g.OH + oh0) * g.OW * g.F;
    b->ahead_len[1] = dy_len;
}

// weight_part on the implicit kernels: per band (of output rows of one image, or of whole images)
// and group, the band's padded input rows into xb, then dw += their patches^T dy. The bands and
// the pixels in them go in order: the same sums at any thread count. sum (F), overwritten: the
// part's sum of dy (its bias gradient), added band by band as the band's dy is first read, so that
// the tiles find that dy in cache and no pass over the part's dy runs for it alone.
void weight_part_implicit(float* acc, float* sum, const float* dy, const float* x, const ConvGeom& g, int64_t n0,
                          int64_t n1, float* xb) {
    const int64_t Cg = g.C / g.G, Fg = g.F / g.G, Wp = padded_w(g), BH = band_rows(g), BI = band_images(g);
    const int64_t img = image_band_elems(g);
    float* dyp = xb + BI * img;
    std::vector<int64_t> row_span(2 * g.KH), col_span(4 * g.KW);  // col_span: clipped, then all columns
    for (int64_t kw = 0; kw < g.KW; ++kw) {
        inside_span(&col_span[2 * kw], g.OW, kw * g.DW - g.PW, g.SW, g.W, true);
        inside_span(&col_span[2 * (g.KW + kw)], g.OW, kw * g.DW - g.PW, g.SW, g.W, false);
    }
    bool first = true;
    for (int64_t n = n0; n < n1; n += BI) {
        const int64_t imgs = std::min(BI, n1 - n);
        for (int64_t oh0 = 0; oh0 < g.OH; oh0 += BH, first = false) {
            const int64_t rows = std::min(BH, g.OH - oh0), in_rows = band_in_rows(g, rows);
            const float* dyb = dy + (n * g.OH + oh0) * g.OW * g.F;
            column_sums(sum, dyb, g.F, imgs * rows * g.OW, g.F, first);
            // The tiles skip pixels whose products are all with the padding's zeros: nothing to add
            // while dy is finite, but 0 * inf is NaN, so a band whose dy holds an inf or NaN keeps
            // every pixel (the sums then carry the NaN, as im2col's and the reference's do). Finite
            // sums so far say the band is finite (an inf or NaN in a sum stays one); a non-finite
            // sum may be an overflow of finite values, so then dy itself is scanned.
            const bool clip = all_finite(sum, g.F) || all_finite(dyb, imgs * rows * g.OW * g.F);
            for (int64_t kh = 0; kh < g.KH; ++kh) {
                inside_span(&row_span[2 * kh], rows, oh0 * g.SH - g.PH + kh * g.DH, g.SH, g.H, clip);
            }
            WgradBand b{imgs, img, rows, g.OW, g.F, Fg, Cg, g.KH, g.KW, g.DH, g.DW, Wp, in_rows * Wp, g.SW,
                        g.SH * Wp, row_span.data(), col_span.data() + (clip ? 0 : 2 * g.KW), {x, dy}, {0, 0}};
            next_band(&b, g, n, oh0, n1);
            for (int64_t grp = 0; grp < g.G; ++grp) {
                for (int64_t i = 0; i < imgs; ++i) pad_band(xb + i * img, x, g, n + i, grp, oh0, in_rows);
                weight_band(acc + grp * Fg, xb, dyb + grp * Fg, dyp, b, first);
            }
        }
    }
}

// dw[i] = partial[i] + partial[KF + i] + ... in part order, for i in [0, n): a block of dw at a
// time, every part added along it (vector adds over contiguous runs, where one element at a time
// read the parts KF apart), each element's sum in the same order.
template <typename T>
void add_partials(T* PMD_RESTRICT dw, const T* PMD_RESTRICT partial, int64_t KF, int64_t parts, int64_t n) {
    constexpr int64_t BLOCK = 1024;
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        const int64_t len = std::min(BLOCK, n - i0);
        std::copy(partial + i0, partial + i0 + len, dw + i0);
        for (int64_t q = 1; q < parts; ++q) {
            const T* p = partial + q * KF + i0;
            T* d = dw + i0;
            for (int64_t i = 0; i < len; ++i) d[i] += p[i];
        }
    }
}

// dw, and db (or nullptr) = the sum of dy over (N, OH, OW). Each part sums its own images' dy
// in pixel order right before its dw tiles read that dy, which the sum brings into cache (on the
// implicit kernels band by band, its sums also telling the tiles which bands are finite; else
// bias_grad over the part): db costs no pass over dy of its own, nor a stretch on one thread.
// The parts' sums are added in part order, as dw's: the same bits at every thread count.
// dw (KF) and db (F, or nullptr) summed over the images in parts fixed by N alone (min(N,
// WEIGHT_PARTS), not the thread count): part(q, n0, n1, acc, acc_db, scratch) overwrites part q's
// sums over images [n0, n1) in acc and acc_db, with `scratch` (per_thread elements) its thread's
// own; the parts are added in part order, so the sums are the same at any thread count.
// work: the parts' (KF + F) sums, then per_thread elements a thread.
template <typename T, typename Part>
void sum_in_parts(T* dw, T* db, int64_t KF, const ConvGeom& g, T* work, int64_t per_thread, Part part) {
    const int64_t parts = std::min(g.N, WEIGHT_PARTS);
    T* partial = work;
    T* part_db = work + parts * KF;
    T* scratch = part_db + parts * g.F;
    team_region(threads_if(parts > 1), [&] {
        int64_t lo, hi;
        team_range(parts, &lo, &hi);
        for (int64_t q = lo; q < hi; ++q) {
            part(q, q * g.N / parts, (q + 1) * g.N / parts, partial + q * KF, part_db + q * g.F,
                 scratch + omp_thread_id() * per_thread);
        }
#pragma omp barrier
        team_range(KF, &lo, &hi);
        add_partials(dw + lo, partial + lo, KF, parts, hi - lo);
#pragma omp single nowait
        if (db != nullptr) add_partials(db, part_db, g.F, parts, g.F);
    });
}

template <typename T>
void weight_t(T* dw, T* db, const T* dy, const T* x, const ConvGeom& g, T* work, int64_t we) {
    const int64_t KF = patch_len(g) * g.F, P = g.OH * g.OW;
    if (g.N == 0 || P == 0) {
        if (db != nullptr) std::fill(db, db + g.F, T(0));
        return std::fill(dw, dw + KF, T(0));
    }
    if (KF == 0) {  // no input channels: no dw to sum, db still reads dy
        if (db != nullptr) bias_grad(db, dy, std::max<int64_t>(g.F, 1), g.N * P, g.F);
        return;
    }
    check_work("conv_backward_weight", we, workspace_elems<T>(g, omp_max_threads(), Kind::weight));
    const int64_t pt = per_thread_weight<T>(g);
    const bool implicit = implicit_weight<T>(g);
    sum_in_parts(dw, db, KF, g, work, pt, [&](int64_t, int64_t n0, int64_t n1, T* acc, T* acc_db, T* mine) {
        if constexpr (std::is_same_v<T, float>) {
            if (implicit) return weight_part_implicit(acc, acc_db, dy, x, g, n0, n1, mine);
        }
        if (db != nullptr) bias_grad(acc_db, dy + n0 * P * g.F, g.F, (n1 - n0) * P, g.F);
        weight_part(acc, dy, x, g, n0, n1, mine, pt);
    });
}

// ---------------------------------------------------------------- the pooled weight gradient

// Whether conv_maxpool_backward sums dw from the pooled gradient itself (conv_simd.h,
// pooled_rows: one product per pooled cell, filter and patch row, where the weight gradient of
// maxpool_backward's dz forms one per output pixel, 3 of 4 of them with its zeros for 2x2 windows)
// rather than routing dz out first: float32 on AVX2/AVX-512, one group, a first layer's few
// channels (one padded image a thread), windows of up to POOLED_CELLS cells.
bool pooled_path(const ConvGeom& g, const PoolGeom& pg) {
    return implicit_path<float>(g) && g.G == 1 && g.C <= PADDED_MAX_C && pg.kh * pg.kw <= POOLED_CELLS &&
           g.N > 0 && g.OH > 0 && g.OW > 0 && g.F > 0;
}

// The pooled kernel's tables (PooledWgrad): each pooled cell's candidates and each patch row's offset
// in the padded image p.
struct PooledTables {
    std::vector<int32_t> idx;
    std::vector<int64_t> at, rows;
};

PooledTables pooled_tables(const ConvGeom& g, const PoolGeom& pg, const ConvGeom& p) {
    constexpr int Q = POOLED_CELLS;
    const int64_t cells = pg.oh * pg.ow, K = patch_len(g);
    PooledTables t{std::vector<int32_t>(cells * Q, -1), std::vector<int64_t>(cells * Q, 0),
                   std::vector<int64_t>(ceil_div(K, POOLED_ROWS) * POOLED_ROWS, 0)};
    for (int64_t kh = 0, r = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw)
            for (int64_t c = 0; c < g.C; ++c) t.rows[r++] = (kh * g.DH * p.W + kw * g.DW) * g.C + c;
    for (int64_t i = 0; i < cells; ++i) {
        const int64_t zh0 = i / pg.ow * pg.sh - pg.pt, zw0 = i % pg.ow * pg.sw - pg.pl;
        int q = 0;
        for (int64_t qh = 0; qh < pg.kh; ++qh)
            for (int64_t qw = 0; qw < pg.kw; ++qw) {
                const int64_t zh = zh0 + qh, zw = zw0 + qw;
                if (zh < 0 || zh >= g.OH || zw < 0 || zw >= g.OW) continue;  // a padded cell: never the argmax
                t.idx[i * Q + q] = static_cast<int32_t>(zh * g.OW + zw);
                t.at[i * Q + q] = (zh * g.SH * p.W + zw * g.SW) * g.C;
                ++q;
            }
        for (int r = q; r < Q; ++r) t.at[i * Q + r] = t.at[i * Q];  // unmatched slots read a real patch
    }
    return t;
}

bool pooled_image(float* acc, float* db, const float* xp, const float* dp, const int32_t* am, const PooledWgrad& w) {
#if defined(PYMINIDL_X86)
    if (active_isa() == Isa::avx512) return avx512::conv_pooled_weight_image(acc, db, xp, dp, am, w);
    return avx2::conv_pooled_weight_image(acc, db, xp, dp, am, w);
#else
    (void)acc, (void)db, (void)xp, (void)dp, (void)am, (void)w;
    throw std::logic_error("conv_maxpool_backward: the pooled kernel has no portable build (pooled_path is false)");
#endif
}

// dw and db (or nullptr) on the pooled path, in parts of images as weight_t's (the same sums at
// any thread count). False when an argmax entry matched no cell of its window.
bool pooled_weight(float* dw, float* db, const float* dp, const int32_t* am, const float* x, const ConvGeom& g,
                   const PoolGeom& pg, float* work) {
    const ConvGeom p = padded_image(g);
    const PooledTables t = pooled_tables(g, pg, p);
    const int64_t K = patch_len(g), KF = K * g.F, cells = pg.oh * pg.ow;
    const PooledWgrad w{cells, g.F, K, t.idx.data(), t.at.data(), t.rows.data()};
    std::vector<char> matched(static_cast<size_t>(std::min(g.N, WEIGHT_PARTS)), 1);
    sum_in_parts(dw, db, KF, g, work, p.H * p.W * p.C,
                 [&](int64_t q, int64_t n0, int64_t n1, float* acc, float* acc_db, float* xp) {
                     std::fill(acc, acc + KF, 0.0f);
                     std::fill(acc_db, acc_db + g.F, 0.0f);
                     for (int64_t n = n0; n < n1; ++n) {
                         pad_image(xp, x, g, p, n);
                         const int64_t at = n * cells * g.F;
                         if (!pooled_image(acc, acc_db, xp, dp + at, am + at, w)) matched[q] = 0;
                     }
                 });
    return std::all_of(matched.begin(), matched.end(), [](char m) { return m != 0; });
}

}  // namespace

int64_t conv_forward_workspace_elems(const ConvGeom& g, int threads, bool dbl) {
    return dbl ? workspace_elems<double>(g, threads, Kind::forward) : workspace_elems<float>(g, threads, Kind::forward);
}
int64_t conv_backward_input_workspace_elems(const ConvGeom& g, int threads, bool dbl) {
    return dbl ? workspace_elems<double>(g, threads, Kind::input) : workspace_elems<float>(g, threads, Kind::input);
}
int64_t conv_backward_weight_workspace_elems(const ConvGeom& g, int threads, bool dbl) {
    return dbl ? workspace_elems<double>(g, threads, Kind::weight) : workspace_elems<float>(g, threads, Kind::weight);
}

int64_t conv_maxpool_forward_workspace_elems(const ConvGeom& g, int threads) {
    if (g.N == 0 || g.OH <= 0 || g.OW <= 0 || g.F == 0) return 0;
    const int64_t out = g.OH * g.OW * g.F;  // one image's output a thread, or the batch's
    const int64_t forward = workspace_elems<float>(g, threads, Kind::forward);
    return padded_path<float>(g) ? forward + std::max(threads, 1) * out : g.N * out + forward;
}

// On the padded path each thread pads an image, convolves it into its own buffer (one image's
// output: 100 KB for MNIST's 28x28x32, which stays in its L2) and max-pools that, where
// conv_forward then maxpool_forward would write the batch's output (12.8 MB at batch 128) and
// read it back from memory. The calls per image are forward_padded's and maxpool_forward's on
// one image, so the bits are those of the two kernels. Elsewhere the two kernels run as they are.
void conv_maxpool_forward(float* y, int32_t* argmax, const float* x, const float* w, const float* b,
                          const ConvGeom& g, const PoolGeom& pg, float* work, int64_t work_elems) {
    if (g.N == 0 || g.OH <= 0 || g.OW <= 0 || g.F == 0) return;
    check_work("conv_maxpool_forward", work_elems, conv_maxpool_forward_workspace_elems(g, omp_max_threads()));
    if (!padded_path<float>(g)) {
        const int64_t zn = g.N * g.OH * g.OW * g.F;
        forward_t(work, x, w, b, g, work + zn, work_elems - zn);
        maxpool_forward(y, argmax, work, pg);
        return;
    }
    const float *zeros, *wa;
    float* per_thread = implicit_work(w, g, work, &zeros, &wa);
    const int64_t pooled = pg.oh * pg.ow * pg.c;
    PoolGeom one = pg;
    one.n = 1;
    padded_images(x, wa, b, g, zeros, per_thread, per_thread_forward<float>(g) + g.OH * g.OW * g.F,
                  [&](int64_t n, const auto& convolve, float* z) {
                      convolve(z);
                      maxpool_forward(y + n * pooled, argmax + n * pooled, z, one);
                  });
}

int64_t conv_maxpool_backward_workspace_elems(const ConvGeom& g, const PoolGeom& pg, int threads) {
    if (pooled_path(g, pg)) {
        const ConvGeom p = padded_image(g);
        const int64_t parts = std::min(g.N, WEIGHT_PARTS);
        return parts * (patch_len(g) * g.F + g.F) + std::max(threads, 1) * p.H * p.W * p.C;
    }
    return g.N * g.OH * g.OW * g.F + workspace_elems<float>(g, threads, Kind::weight);
}
bool conv_maxpool_backward(float* dw, float* db, const float* dp, const int32_t* argmax, const float* x,
                           const ConvGeom& g, const PoolGeom& pg, float* work, int64_t work_elems) {
    check_work("conv_maxpool_backward", work_elems, conv_maxpool_backward_workspace_elems(g, pg, omp_max_threads()));
    if (pooled_path(g, pg)) return pooled_weight(dw, db, dp, argmax, x, g, pg, work);
    const int64_t zn = g.N * g.OH * g.OW * g.F;
    bool matched = true;
    if (zn > 0) matched = maxpool_backward(work, dp, argmax, pg) == pg.n * pg.oh * pg.ow * pg.c;
    weight_t(dw, db, static_cast<const float*>(work), x, g, work + zn, work_elems - zn);
    return matched;
}

void conv_forward(float* y, const float* x, const float* w, const float* b, const ConvGeom& g,
                  float* work, int64_t work_elems) {
    forward_t(y, x, w, b, g, work, work_elems);
}
void conv_forward(double* y, const double* x, const double* w, const double* b, const ConvGeom& g,
                  double* work, int64_t work_elems) {
    forward_t(y, x, w, b, g, work, work_elems);
}
void conv_backward_input(float* dx, const float* dy, const float* w, const ConvGeom& g, float* work,
                         int64_t work_elems) {
    input_t(dx, dy, w, g, work, work_elems);
}
void conv_backward_input(double* dx, const double* dy, const double* w, const ConvGeom& g, double* work,
                         int64_t work_elems) {
    input_t(dx, dy, w, g, work, work_elems);
}
void conv_backward_weight(float* dw, float* db, const float* dy, const float* x, const ConvGeom& g, float* work,
                          int64_t work_elems) {
    weight_t(dw, db, dy, x, g, work, work_elems);
}
void conv_backward_weight(double* dw, double* db, const double* dy, const double* x, const ConvGeom& g,
                          double* work, int64_t work_elems) {
    weight_t(dw, db, dy, x, g, work, work_elems);
}

// y: (N, OH, OW, F); x: (N, H, W, C); w: (KH, KW, C/G, F); b: (F,) or nullptr.
void conv_forward_naive(float* y, const float* x, const float* w, const float* b, const ConvGeom& g) {
    const int64_t Cg = g.C / g.G, Fg = g.F / g.G;
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow)
                for (int64_t f = 0; f < g.F; ++f) {
                    float acc = b != nullptr ? b[f] : 0.0f;
                    for (int64_t kh = 0; kh < g.KH; ++kh)
                        for (int64_t kw = 0; kw < g.KW; ++kw) {
                            const int64_t ih = oh * g.SH - g.PH + kh * g.DH, iw = ow * g.SW - g.PW + kw * g.DW;
                            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                            const float* xs = x + ((n * g.H + ih) * g.W + iw) * g.C + (f / Fg) * Cg;
                            const float* ws = w + (kh * g.KW + kw) * Cg * g.F + f;
                            for (int64_t c = 0; c < Cg; ++c) acc += xs[c] * ws[c * g.F];
                        }
                    y[((n * g.OH + oh) * g.OW + ow) * g.F + f] = acc;
                }
}

}  // namespace pyminidl::kernels
