// image.cpp — image geometry on NHWC float32 batches: resize (bilinear, nearest) and the
// affine/projective sampling of the augmentation layers (RandomRotation, RandomTranslation,
// RandomZoom). The NumPy reference is pyminidl/layers/_image_ops.py; these follow its tap
// arithmetic step by step (float32 source coordinates, the same clamps and index fixers), so
// they agree with it to float32 rounding. Every output pixel is written by one thread from
// read-only input: OpenMP over images x rows, results independent of the thread count.
//
// Bilinear resize is separable: for each output row, the two source rows are blended once
// into a per-thread row buffer (a contiguous W*C line, which vectorises for any C), then each
// output pixel blends two pixels of that line. This is the order of the reference (height
// pass, then width pass), with no (N, OH, W, C) temporary.
#include "image.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"

namespace pyminidl::kernels {
namespace {

struct Taps {  // per output index: two source indices and the weight of the second
    std::vector<int64_t> i0, i1;
    std::vector<float> w;
    bool identity;  // the axis keeps its size: the reference copies it (so inf stays inf, not 0 * inf)
};

// Source taps along one axis (the reference's _bilinear_taps / _nearest_index).
Taps axis_taps(int64_t n_in, int64_t n_out, Interp interp) {
    Taps t{std::vector<int64_t>(n_out), std::vector<int64_t>(n_out), std::vector<float>(n_out), n_in == n_out};
    const float scale = float(double(n_in) / double(n_out));
    for (int64_t i = 0; i < n_out; ++i) {
        if (interp == Interp::nearest) {
            const float src = (float(i) + 0.5f) * scale;
            t.i0[i] = t.i1[i] = std::min<int64_t>(int64_t(std::floor(src)), n_in - 1);
            t.w[i] = 0.0f;
            continue;
        }
        const float src = std::max(float((double(i) + 0.5) * double(scale) - 0.5), 0.0f);
        t.i0[i] = std::min<int64_t>(int64_t(std::floor(src)), n_in - 1);
        t.i1[i] = std::min<int64_t>(t.i0[i] + 1, n_in - 1);
        t.w[i] = src - float(t.i0[i]);
    }
    return t;
}

// line: (W*C,) = lo + wgt * (hi - lo), the height pass for one output row.
void blend_rows(float* PMD_RESTRICT line, const float* lo, const float* hi, float wgt, int64_t len,
                bool identity) {
    if (identity) {
        std::copy(lo, lo + len, line);
        return;
    }
    for (int64_t k = 0; k < len; ++k) line[k] = lo[k] + wgt * (hi[k] - lo[k]);
}

// out: (OW, C) from line (W, C), the width pass.
void blend_columns(float* PMD_RESTRICT out, const float* line, const Taps& tw, int64_t ow, int64_t c) {
    for (int64_t j = 0; j < ow; ++j) {
        const float* a = line + tw.i0[j] * c;
        const float* b = line + tw.i1[j] * c;
        const float wgt = tw.w[j];
        if (tw.identity) {
            std::copy(a, a + c, out + j * c);
            continue;
        }
        for (int64_t k = 0; k < c; ++k) out[j * c + k] = a[k] + wgt * (b[k] - a[k]);
    }
}

void copy_columns(float* PMD_RESTRICT out, const float* row, const Taps& tw, int64_t ow, int64_t c) {
    for (int64_t j = 0; j < ow; ++j) std::copy(row + tw.i0[j] * c, row + tw.i0[j] * c + c, out + j * c);
}

// Keras's index fixers: where an out-of-range integer index reads from.
int64_t fix_index(int64_t i, int64_t size, Fill fill) {
    if (i >= 0 && i < size) return i;  // most taps: no integer division
    if (fill == Fill::wrap) return ((i % size) + size) % size;
    if (fill == Fill::reflect) {  // (d c b a | a b c d | d c b a)
        const int64_t period = 2 * size;
        i = ((i % period) + period) % period;
        return i >= size ? period - 1 - i : i;
    }
    return std::clamp<int64_t>(i, 0, size - 1);
}

// A source coordinate as an integer index; far-out and non-finite coordinates (absurd transforms)
// become an index far outside the image instead of an undefined float-to-integer conversion.
int64_t to_index(float v) {
    constexpr float limit = 1e15f;
    return std::isfinite(v) ? int64_t(std::clamp(v, -limit, limit)) : int64_t(-limit);
}

struct Tap {
    int64_t index;
    float weight;
};

// Up to four taps of output pixel (r, col) under transform t (the reference's affine_taps).
int pixel_taps(Tap* taps, const float* t, float r, float col, int64_t h, int64_t w, Interp interp, Fill fill) {
    float src_r = (r * t[4] + col * t[3]) + t[5];
    float src_c = (r * t[1] + col * t[0]) + t[2];
    if (t[6] != 0.0f || t[7] != 0.0f) {
        const float k = t[6] * col + t[7] * r + 1.0f;
        src_r /= k;
        src_c /= k;
    }
    int count = 0;
    auto add = [&](int64_t rr, int64_t cc, double wgt) {
        if (fill == Fill::constant && (rr < 0 || rr >= h || cc < 0 || cc >= w)) wgt = 0.0;
        taps[count++] = {fix_index(rr, h, fill) * w + fix_index(cc, w, fill), float(wgt)};
    };
    if (interp == Interp::nearest) {
        add(to_index(std::nearbyint(src_r)), to_index(std::nearbyint(src_c)), 1.0);
        return count;
    }
    const float r0 = std::floor(src_r), c0 = std::floor(src_c);
    const double wr = double(src_r - r0), wc = double(src_c - c0);
    const int64_t ir = to_index(r0), ic = to_index(c0);
    add(ir, ic, (1.0 - wr) * (1.0 - wc));
    add(ir, ic + 1, (1.0 - wr) * wc);
    add(ir + 1, ic, wr * (1.0 - wc));
    add(ir + 1, ic + 1, wr * wc);
    return count;
}

// One output row of one image: each pixel sums its taps (in the reference's tap order).
void affine_row(float* PMD_RESTRICT y, const float* img, const float* t, int64_t row, int64_t h, int64_t w,
                int64_t c, Interp interp, Fill fill, float fill_value) {
    Tap taps[4];
    for (int64_t col = 0; col < w; ++col) {
        const int count = pixel_taps(taps, t, float(row), float(col), h, w, interp, fill);
        float* out = y + col * c;
        float total = 0.0f;
        for (int64_t k = 0; k < c; ++k) out[k] = img[taps[0].index * c + k] * taps[0].weight;
        for (int q = 1; q < count; ++q) {
            for (int64_t k = 0; k < c; ++k) out[k] += img[taps[q].index * c + k] * taps[q].weight;
        }
        for (int q = 0; q < count; ++q) total += taps[q].weight;
        if (fill == Fill::constant && fill_value != 0.0f) {
            for (int64_t k = 0; k < c; ++k) out[k] += (1.0f - total) * fill_value;
        }
    }
}

}  // namespace

void resize_forward(float* y, const float* x, int64_t n, int64_t h, int64_t w, int64_t c,
                    int64_t oh, int64_t ow, Interp interp) {
    const Taps th = axis_taps(h, oh, interp), tw = axis_taps(w, ow, interp);
    const int64_t line_len = w * c;
    team_region(threads_if(n * oh * ow * c > 32768), [&] {
        std::vector<float> line(interp == Interp::bilinear ? size_t(line_len) : 0);
        #pragma omp for schedule(static)
        for (int64_t nr = 0; nr < n * oh; ++nr) {
            const int64_t img = nr / oh, r = nr % oh;
            const float* base = x + img * h * line_len;
            float* out = y + nr * ow * c;
            if (interp == Interp::nearest) {
                copy_columns(out, base + th.i0[r] * line_len, tw, ow, c);
                continue;
            }
            blend_rows(line.data(), base + th.i0[r] * line_len, base + th.i1[r] * line_len, th.w[r], line_len,
                       th.identity);
            blend_columns(out, line.data(), tw, ow, c);
        }
    });
}

void affine_transform_forward(float* y, const float* x, const float* transforms, int64_t n, int64_t h,
                              int64_t w, int64_t c, Interp interp, Fill fill, float fill_value) {
    team_region(threads_if(n * h * w * c > 32768), [&] {
    #pragma omp for schedule(static)
        for (int64_t nr = 0; nr < n * h; ++nr) {
            const int64_t img = nr / h, row = nr % h;
            affine_row(y + nr * w * c, x + img * h * w * c, transforms + img * 8, row, h, w, c, interp, fill,
                       fill_value);
        }
    });
}

}  // namespace pyminidl::kernels
