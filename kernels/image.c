/* image.c - image sampling kernels: GridSample (torch's grid_sampler_2d semantics, float32 data
 * with double coordinates), RoiAlign (as ONNX Runtime's, from Caffe2) and MaxUnpool. Plain loops. */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ GridSample */

static double gs_unnormalize(double coord, size_t size, bool align)
{
    return align ? (coord + 1) / 2 * (double)(size - 1) : ((coord + 1) * (double)size - 1) / 2;
}

static double gs_clip(double v, size_t size)
{
    return fmin((double)size - 1, fmax(v, 0));
}

/* Reflect v into [twice_low / 2, twice_high / 2]. */
static double gs_reflect(double v, long long twice_low, long long twice_high)
{
    if (twice_low == twice_high)
        return 0;
    double lo = (double)twice_low / 2, span = (double)(twice_high - twice_low) / 2;
    v = fabs(v - lo);
    double extra = fmod(v, span);
    long long flips = (long long)floor(v / span);
    return flips % 2 == 0 ? extra + lo : span - extra + lo;
}

static double gs_pad(double v, size_t size, int padding, bool align)
{
    if (padding == 1)
        return gs_clip(v, size);
    if (padding == 2) {
        v = align ? gs_reflect(v, 0, 2 * ((long long)size - 1)) : gs_reflect(v, -1, 2 * (long long)size - 1);
        return gs_clip(v, size);
    }
    return v;
}

static double gs_at(const float *p, long long yy, long long xx, size_t h, size_t w)
{
    return yy >= 0 && xx >= 0 && yy < (long long)h && xx < (long long)w ? p[(size_t)yy * w + (size_t)xx] : 0;
}

/* Bicubic tap: padding applied to the tap's own coordinates (torch's get_value_bounded). */
static double gs_tap(const float *p, double yy, double xx, size_t h, size_t w, int padding, bool align)
{
    xx = gs_pad(xx, w, padding, align);
    yy = gs_pad(yy, h, padding, align);
    return gs_at(p, (long long)yy, (long long)xx, h, w);
}

static double cubic1(double x, double a)
{
    return ((a + 2) * x - (a + 3)) * x * x + 1;
}

static double cubic2(double x, double a)
{
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

static double cubic_interp(const double v[4], double t)
{
    const double a = -0.75;
    return v[0] * cubic2(t + 1, a) + v[1] * cubic1(t, a) + v[2] * cubic1(1 - t, a) + v[3] * cubic2(2 - t, a);
}

void gridsample_forward(float *y, const float *x, const float *grid, size_t n, size_t c, size_t h, size_t w,
                        size_t oh, size_t ow, int mode, int padding, bool align_corners)
{
    for (size_t b = 0; b < n; b++)
        for (size_t o = 0; o < oh * ow; o++) {
            const float *gp = grid + (b * oh * ow + o) * 2;
            double gx = gs_unnormalize(gp[0], w, align_corners), gy = gs_unnormalize(gp[1], h, align_corners);
            for (size_t ch = 0; ch < c; ch++) {
                const float *p = x + (b * c + ch) * h * w;
                double v;
                if (mode == 2) {
                    double fx = floor(gx), fy = floor(gy), rows[4];
                    for (int i = 0; i < 4; i++) {
                        double taps[4];
                        for (int j = 0; j < 4; j++)
                            taps[j] = gs_tap(p, fy - 1 + i, fx - 1 + j, h, w, padding, align_corners);
                        rows[i] = cubic_interp(taps, gx - fx);
                    }
                    v = cubic_interp(rows, gy - fy);
                } else {
                    double ix = gs_pad(gx, w, padding, align_corners), iy = gs_pad(gy, h, padding, align_corners);
                    if (mode == 1) {
                        v = gs_at(p, (long long)nearbyint(iy), (long long)nearbyint(ix), h, w);
                    } else {
                        double fx = floor(ix), fy = floor(iy), tx = ix - fx, ty = iy - fy;
                        long long x0 = (long long)fx, y0 = (long long)fy;
                        v = gs_at(p, y0, x0, h, w) * (1 - tx) * (1 - ty) + gs_at(p, y0, x0 + 1, h, w) * tx * (1 - ty) +
                            gs_at(p, y0 + 1, x0, h, w) * (1 - tx) * ty + gs_at(p, y0 + 1, x0 + 1, h, w) * tx * ty;
                    }
                }
                y[(b * c + ch) * oh * ow + o] = (float)v;
            }
        }
}

/* ------------------------------------------------------------------------ RoiAlign */

/* Bilinear sample of plane p at (yy, xx) as Caffe2's RoIAlign: 0 beyond one pixel outside, clamped
 * at the far edge. With max_mode the largest weighted corner instead of their sum. */
static double roi_sample(const float *p, size_t h, size_t w, double yy, double xx, bool max_mode)
{
    if (h == 0 || w == 0 || yy < -1.0 || yy > (double)h || xx < -1.0 || xx > (double)w)
        return 0;
    yy = yy <= 0 ? 0 : yy;
    xx = xx <= 0 ? 0 : xx;
    size_t y0 = (size_t)yy, x0 = (size_t)xx, y1, x1;
    if (y0 >= h - 1) {
        y0 = y1 = h - 1;
        yy = (double)y0;
    } else
        y1 = y0 + 1;
    if (x0 >= w - 1) {
        x0 = x1 = w - 1;
        xx = (double)x0;
    } else
        x1 = x0 + 1;
    double ly = yy - (double)y0, lx = xx - (double)x0, hy = 1 - ly, hx = 1 - lx;
    double v[4] = {hy * hx * p[y0 * w + x0], hy * lx * p[y0 * w + x1], ly * hx * p[y1 * w + x0],
                   ly * lx * p[y1 * w + x1]};
    if (max_mode)
        return fmax(fmax(v[0], v[1]), fmax(v[2], v[3]));
    return v[0] + v[1] + v[2] + v[3];
}

void roialign_forward(float *y, const float *x, const float *rois, const int64_t *batch, size_t n, size_t c,
                      size_t h, size_t w, size_t r, size_t oh, size_t ow, size_t sampling, float spatial_scale,
                      bool half_pixel, bool max_mode)
{
    double off = half_pixel ? 0.5 : 0;
    for (size_t k = 0; k < r; k++) {
        const float *roi = rois + k * 4;
        double x1 = roi[0] * (double)spatial_scale - off, y1 = roi[1] * (double)spatial_scale - off;
        double rw = roi[2] * (double)spatial_scale - off - x1, rh = roi[3] * (double)spatial_scale - off - y1;
        if (!half_pixel) {
            rw = fmax(rw, 1);
            rh = fmax(rh, 1);
        }
        double bh = rh / (double)oh, bw = rw / (double)ow;
        size_t gh = sampling ? sampling : (size_t)ceil(rh / (double)oh);
        size_t gw = sampling ? sampling : (size_t)ceil(rw / (double)ow);
        double count = gh * gw > 0 ? (double)(gh * gw) : 1;
        int64_t b = batch[k];
        for (size_t ch = 0; ch < c; ch++) {
            float *out = y + (k * c + ch) * oh * ow;
            if (b < 0 || (size_t)b >= n) {
                memset(out, 0, oh * ow * sizeof *out);
                continue;
            }
            const float *p = x + ((size_t)b * c + ch) * h * w;
            for (size_t ph = 0; ph < oh; ph++)
                for (size_t pw = 0; pw < ow; pw++) {
                    double acc = 0;
                    bool first = true;
                    for (size_t iy = 0; iy < gh; iy++) {
                        double yy = y1 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                        for (size_t ix = 0; ix < gw; ix++) {
                            double xx = x1 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                            double v = roi_sample(p, h, w, yy, xx, max_mode);
                            acc = max_mode ? (first || v > acc ? v : acc) : acc + v;
                            first = false;
                        }
                    }
                    out[ph * ow + pw] = (float)(max_mode ? acc : acc / count);
                }
        }
    }
}

/* ------------------------------------------------------------------------ MaxUnpool */

void maxunpool_forward(float *y, const size_t *ydims, const float *x, const int64_t *index, size_t nx,
                       const size_t *idims, size_t rank)
{
    size_t ny = 1, ni = 1;
    for (size_t d = 0; d < rank; d++) {
        ny *= ydims[d];
        ni *= idims[d];
    }
    memset(y, 0, ny * sizeof *y);
    for (size_t i = 0; i < nx; i++) {
        if (index[i] < 0 || (size_t)index[i] >= ni)
            continue;
        size_t rem = (size_t)index[i], off = 0, stride = 1;
        bool inside = true;
        for (size_t d = rank; d-- > 0;) {
            size_t c = rem % idims[d];
            rem /= idims[d];
            inside &= c < ydims[d];
            off += c * stride;
            stride *= ydims[d];
        }
        if (inside)
            y[off] = x[i];
    }
}
