// pool_impl.h — the bodies of the NHWC pooling kernels, compiled once per instruction set:
// pool.cpp (baseline x86-64, and every non-x86 target), pool_avx2.cpp and pool_avx512.cpp
// include this file and nothing else defines these functions.
//
// Layout: x/dx (N, H, W, C) and y/dy/argmax (N, OH, OW, C), C-contiguous, so the inner loop
// of every kernel runs over the C contiguous channels of one cell and vectorises at the
// width of the translation unit's ISA (4, 8 or 16 floats). Padding ('same', Keras's rule:
// the extra cell goes bottom/right) is virtual: windows are clipped to the image, so padded
// cells are never read; average pooling divides by the number of input cells in the window
// (Keras/TF leave padded cells out of the mean).
//
// Parallel over disjoint outputs: the forwards over (n, output row), the backwards over
// (n, input row), each input cell gathering from the windows that cover it in ascending
// (oh, ow) order. No thread writes another's cells, so there are no races and the result
// is bit-identical for every thread count. Max backward gathers where argmax names the
// cell, so each dy reaches exactly one input cell (the forward's tie rule decides which).
// Every channel is computed on its own, in the same order on every path, and the files are
// built with -ffp-contract=off: the AVX2 and AVX-512 copies return the baseline's bits.
//
// Internal linkage (an anonymous namespace), as activations_impl.h: each translation unit
// keeps its own copy, compiled with its own -m flags.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "pool.h"

namespace pyminidl::kernels {
namespace {


struct Range {
    int64_t lo, hi;  // [lo, hi)
};

// The input cells of output o's window along one axis, clipped to [0, size).
inline Range window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size) {
    const int64_t start = o * stride - pad;
    return {std::max<int64_t>(start, 0), std::min(start + k, size)};
}

// The outputs whose windows cover input cell i along one axis, clipped to [0, out).
inline Range covering(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t out) {
    const int64_t last_before = i + pad - k;  // windows starting at or below this miss i
    const int64_t lo = last_before < 0 ? 0 : last_before / stride + 1;
    return {lo, std::min(out, (i + pad) / stride + 1)};
}

// y, a: (C,); img: (H, W, C). The window's maximum per channel: strict > keeps the first
// of equal values; a NaN replaces a number and is then kept (the first NaN).
void max_cell(float* PMD_RESTRICT y, int32_t* PMD_RESTRICT a, const float* PMD_RESTRICT img,
              int64_t w, int64_t c, Range r, Range q) {
    const int32_t k0 = int32_t(r.lo * w + q.lo);
    std::copy_n(img + k0 * c, c, y);
    for (int64_t j = 0; j < c; ++j) a[j] = k0;
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        for (int64_t iw = (ih == r.lo ? q.lo + 1 : q.lo); iw < q.hi; ++iw) {
            const int32_t k = int32_t(ih * w + iw);
            const float* PMD_RESTRICT p = img + k * c;
            for (int64_t j = 0; j < c; ++j) {
                const float v = p[j], b = y[j];
                const bool take = (v > b) | ((v != v) & (b == b));
                y[j] = take ? v : b;
                a[j] = take ? k : a[j];
            }
        }
    }
}

// y: (C,); img: (H, W, C). The mean of the window's input cells per channel.
void avg_cell(float* PMD_RESTRICT y, const float* PMD_RESTRICT img, int64_t w, int64_t c, Range r, Range q) {
    for (int64_t j = 0; j < c; ++j) y[j] = 0.0f;
    for (int64_t ih = r.lo; ih < r.hi; ++ih) {
        for (int64_t iw = q.lo; iw < q.hi; ++iw) {
            const float* PMD_RESTRICT p = img + (ih * w + iw) * c;
            for (int64_t j = 0; j < c; ++j) y[j] += p[j];
        }
    }
    const float inv = 1.0f / float((r.hi - r.lo) * (q.hi - q.lo));
    for (int64_t j = 0; j < c; ++j) y[j] *= inv;
}

// dx: (C,) of input cell k; dy, a: (OH, OW, C) of its image. Sums the dy whose argmax is k.
void max_gather(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy, const int32_t* PMD_RESTRICT a,
                int64_t ow, int64_t c, int32_t k, Range r, Range q) {
    for (int64_t j = 0; j < c; ++j) dx[j] = 0.0f;
    for (int64_t oh = r.lo; oh < r.hi; ++oh) {
        for (int64_t o = q.lo; o < q.hi; ++o) {
            const float* PMD_RESTRICT g = dy + (oh * ow + o) * c;
            const int32_t* PMD_RESTRICT ga = a + (oh * ow + o) * c;
            for (int64_t j = 0; j < c; ++j) {
                const float v = g[j];  // loaded unconditionally, so the select vectorises
                dx[j] += ga[j] == k ? v : 0.0f;
            }
        }
    }
}

// dx: (C,) of one input cell; dy: (OH, OW, C). dL/dx = sum over covering windows of dy / count.
void avg_gather(float* PMD_RESTRICT dx, const float* PMD_RESTRICT dy, const PoolGeom& g, Range r, Range q) {
    for (int64_t j = 0; j < g.c; ++j) dx[j] = 0.0f;
    for (int64_t oh = r.lo; oh < r.hi; ++oh) {
        const Range wr = window(oh, g.sh, g.pt, g.kh, g.h);
        for (int64_t o = q.lo; o < q.hi; ++o) {
            const Range wq = window(o, g.sw, g.pl, g.kw, g.w);
            const float inv = 1.0f / float((wr.hi - wr.lo) * (wq.hi - wq.lo));
            const float* PMD_RESTRICT gy = dy + (oh * g.ow + o) * g.c;
            for (int64_t j = 0; j < g.c; ++j) dx[j] += gy[j] * inv;
        }
    }
}

bool worth_threads(int64_t elements) { return elements > PARALLEL_GRAIN; }

// The covering windows of every input column, computed once per call: two integer divisions
// per cell cost more than a cell's C-channel gather.
std::vector<Range> column_coverage(const PoolGeom& g) {
    std::vector<Range> cols(static_cast<size_t>(g.w));
    for (int64_t iw = 0; iw < g.w; ++iw) cols[iw] = covering(iw, g.sw, g.pl, g.kw, g.ow);
    return cols;
}



void maxpool_forward_impl(float* y, int32_t* argmax, const float* x, const PoolGeom& g) {
    const int64_t rows = g.n * g.oh, image = g.h * g.w * g.c;
#pragma omp parallel for schedule(static) if (worth_threads(rows * g.ow * g.c * g.kh * g.kw))
    for (int64_t t = 0; t < rows; ++t) {
        const int64_t n = t / g.oh, oh = t % g.oh;
        const Range r = window(oh, g.sh, g.pt, g.kh, g.h);
        for (int64_t ow = 0; ow < g.ow; ++ow) {
            const int64_t out = (t * g.ow + ow) * g.c;
            max_cell(y + out, argmax + out, x + n * image, g.w, g.c, r, window(ow, g.sw, g.pl, g.kw, g.w));
        }
    }
}

void maxpool_backward_impl(float* dx, const float* dy, const int32_t* argmax, const PoolGeom& g) {
    const int64_t rows = g.n * g.h, out_image = g.oh * g.ow * g.c;
    const std::vector<Range> cols = column_coverage(g);
#pragma omp parallel for schedule(static) if (worth_threads(rows * g.w * g.c))
    for (int64_t t = 0; t < rows; ++t) {
        const int64_t n = t / g.h, ih = t % g.h;
        const Range r = covering(ih, g.sh, g.pt, g.kh, g.oh);
        for (int64_t iw = 0; iw < g.w; ++iw) {
            max_gather(dx + (t * g.w + iw) * g.c, dy + n * out_image, argmax + n * out_image, g.ow, g.c,
                       int32_t(ih * g.w + iw), r, cols[iw]);
        }
    }
}

void avgpool_forward_impl(float* y, const float* x, const PoolGeom& g) {
    const int64_t rows = g.n * g.oh, image = g.h * g.w * g.c;
#pragma omp parallel for schedule(static) if (worth_threads(rows * g.ow * g.c * g.kh * g.kw))
    for (int64_t t = 0; t < rows; ++t) {
        const int64_t n = t / g.oh, oh = t % g.oh;
        const Range r = window(oh, g.sh, g.pt, g.kh, g.h);
        for (int64_t ow = 0; ow < g.ow; ++ow) {
            avg_cell(y + (t * g.ow + ow) * g.c, x + n * image, g.w, g.c, r, window(ow, g.sw, g.pl, g.kw, g.w));
        }
    }
}

void avgpool_backward_impl(float* dx, const float* dy, const PoolGeom& g) {
    const int64_t rows = g.n * g.h, out_image = g.oh * g.ow * g.c;
    const std::vector<Range> cols = column_coverage(g);
#pragma omp parallel for schedule(static) if (worth_threads(rows * g.w * g.c))
    for (int64_t t = 0; t < rows; ++t) {
        const int64_t n = t / g.h, ih = t % g.h;
        const Range r = covering(ih, g.sh, g.pt, g.kh, g.oh);
        for (int64_t iw = 0; iw < g.w; ++iw) avg_gather(dx + (t * g.w + iw) * g.c, dy + n * out_image, g, r, cols[iw]);
    }
}

}  // namespace
}  // namespace pyminidl::kernels
