/* pool.c - MaxPool, AveragePool, LpPool and the global pools, forward, and the MaxPool/AveragePool
 * backward (1-D, 2-D, 3-D windows with strides, dilations and pads). Geometry is handled as 3-D with
 * leading unit dims; OpenMP splits over (n, c) planes. It does not compute output sizes: codegen
 * passes them (ceil_mode included). */
#include "kernels.h"

#include <math.h>

typedef struct Geom3 {
    size_t in[3], out[3], k[3], s[3], d[3], p[3], pe[3];
    size_t in_size, out_size;
} Geom3;

static Geom3 geom3_from(const SpatialWindow *win)
{
    Geom3 g;
    size_t shift = 3 - win->nd;
    for (size_t i = 0; i < 3; i++) {
        g.in[i] = g.out[i] = g.k[i] = g.s[i] = g.d[i] = 1;
        g.p[i] = g.pe[i] = 0;
    }
    for (size_t i = 0; i < win->nd; i++) {
        g.in[shift + i] = win->in[i];
        g.out[shift + i] = win->out[i];
        g.k[shift + i] = win->kernel[i];
        g.s[shift + i] = win->stride[i] ? win->stride[i] : 1;
        g.d[shift + i] = win->dilation[i] ? win->dilation[i] : 1;
        g.p[shift + i] = win->pad_begin[i];
        g.pe[shift + i] = win->pad_end[i];
    }
    g.in_size = g.in[0] * g.in[1] * g.in[2];
    g.out_size = g.out[0] * g.out[1] * g.out[2];
    return g;
}

/* Taps [*lo, *hi) of a window starting at o*s - p whose position o*s - p + t*d lies in [0, limit). */
static void tap_range(size_t o, size_t s, size_t p, size_t d, size_t k, size_t limit,
                      size_t *lo, size_t *hi)
{
    long long start = (long long)(o * s) - (long long)p;
    long long l = start >= 0 ? 0 : (-start + (long long)d - 1) / (long long)d;
    long long room = (long long)limit - start; /* positions start + t*d < limit */
    long long h = room <= 0 ? 0 : (room + (long long)d - 1) / (long long)d;
    if (h > (long long)k)
        h = (long long)k;
    if (l > h)
        l = h;
    *lo = (size_t)l;
    *hi = (size_t)h;
}

/* The valid taps of output position (od, oh, ow) in each dim. */
typedef struct Taps {
    size_t lo[3], hi[3];
    size_t first[3]; /* input coordinate of tap lo */
} Taps;

static Taps window_taps(const Geom3 *g, const size_t o[3])
{
    Taps t;
    for (size_t i = 0; i < 3; i++) {
        tap_range(o[i], g->s[i], g->p[i], g->d[i], g->k[i], g->in[i], &t.lo[i], &t.hi[i]);
        t.first[i] = o[i] * g->s[i] + t.lo[i] * g->d[i] - g->p[i];
    }
    return t;
}

void maxpool_forward(float *y, int64_t *indices, const float *x, size_t n, size_t c,
                     const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    size_t planes = n * c;
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * g.in_size;
        size_t o[3];
        for (o[0] = 0; o[0] < g.out[0]; o[0]++)
        for (o[1] = 0; o[1] < g.out[1]; o[1]++)
        for (o[2] = 0; o[2] < g.out[2]; o[2]++) {
            Taps t = window_taps(&g, o);
            float best = -INFINITY;
            long long best_at = -1;
            for (size_t a = t.lo[0], id = t.first[0]; a < t.hi[0]; a++, id += g.d[0])
                for (size_t b = t.lo[1], ih = t.first[1]; b < t.hi[1]; b++, ih += g.d[1]) {
                    size_t row = (id * g.in[1] + ih) * g.in[2];
                    for (size_t e = t.lo[2], iw = t.first[2]; e < t.hi[2]; e++, iw += g.d[2])
                        if (xp[row + iw] > best || best_at < 0) {
                            best = xp[row + iw];
                            best_at = (long long)(row + iw);
                        }
                }
            size_t yi = pl * g.out_size + (o[0] * g.out[1] + o[1]) * g.out[2] + o[2];
            y[yi] = best;
            if (indices)
                indices[yi] = best_at < 0 ? -1 : (int64_t)(pl * g.in_size) + best_at;
        }
    }
}

void maxpool_indices_column_major(int64_t *indices, size_t count, const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    for (size_t i = 0; i < count; i++) {
        if (indices[i] < 0)
            continue;
        /* (d, h, w) of the row-major position; the leading unit dims of Geom3 drop out */
        size_t at = (size_t)indices[i], plane = at / g.in_size, pos = at % g.in_size;
        size_t iw = pos % g.in[2], ih = pos / g.in[2] % g.in[1], id = pos / (g.in[2] * g.in[1]);
        indices[i] = (int64_t)(plane * g.in_size + id + g.in[0] * (ih + g.in[1] * iw));
    }
}

void avgpool_forward(float *y, const float *x, size_t n, size_t c, const SpatialWindow *win,
                     bool count_include_pad)
{
    Geom3 g = geom3_from(win);
    size_t planes = n * c;
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * g.in_size;
        size_t o[3];
        for (o[0] = 0; o[0] < g.out[0]; o[0]++)
        for (o[1] = 0; o[1] < g.out[1]; o[1]++)
        for (o[2] = 0; o[2] < g.out[2]; o[2]++) {
            Taps t = window_taps(&g, o);
            double sum = 0.0;
            for (size_t a = t.lo[0], id = t.first[0]; a < t.hi[0]; a++, id += g.d[0])
                for (size_t b = t.lo[1], ih = t.first[1]; b < t.hi[1]; b++, ih += g.d[1]) {
                    const float *xr = xp + (id * g.in[1] + ih) * g.in[2];
                    for (size_t e = t.lo[2], iw = t.first[2]; e < t.hi[2]; e++, iw += g.d[2])
                        sum += xr[iw];
                }
            size_t count = 1;
            for (size_t i = 0; i < 3; i++) {
                size_t lo = t.lo[i], hi = t.hi[i];
                if (count_include_pad) /* taps inside [-pad_begin, in + pad_end) */
                    tap_range(o[i], g.s[i], 0, g.d[i], g.k[i], g.in[i] + g.p[i] + g.pe[i], &lo, &hi);
                count *= hi - lo;
            }
            size_t yi = pl * g.out_size + (o[0] * g.out[1] + o[1]) * g.out[2] + o[2];
            y[yi] = count ? (float)(sum / (double)count) : NAN;
        }
    }
}

void lppool_forward(float *y, const float *x, size_t n, size_t c, const SpatialWindow *win, float p)
{
    Geom3 g = geom3_from(win);
    size_t planes = n * c;
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * g.in_size;
        size_t o[3];
        for (o[0] = 0; o[0] < g.out[0]; o[0]++)
        for (o[1] = 0; o[1] < g.out[1]; o[1]++)
        for (o[2] = 0; o[2] < g.out[2]; o[2]++) {
            Taps t = window_taps(&g, o);
            double sum = 0.0;
            for (size_t a = t.lo[0], id = t.first[0]; a < t.hi[0]; a++, id += g.d[0])
                for (size_t b = t.lo[1], ih = t.first[1]; b < t.hi[1]; b++, ih += g.d[1]) {
                    const float *xr = xp + (id * g.in[1] + ih) * g.in[2];
                    for (size_t e = t.lo[2], iw = t.first[2]; e < t.hi[2]; e++, iw += g.d[2]) {
                        double v = fabs((double)xr[iw]);
                        sum += p == 2.0f ? v * v : p == 1.0f ? v : pow(v, (double)p);
                    }
                }
            size_t yi = pl * g.out_size + (o[0] * g.out[1] + o[1]) * g.out[2] + o[2];
            y[yi] = (float)(p == 2.0f ? sqrt(sum) : p == 1.0f ? sum : pow(sum, 1.0 / (double)p));
        }
    }
}

void global_avgpool_forward(float *y, const float *x, size_t n, size_t c, size_t spatial)
{
    #pragma omp parallel for schedule(static) if (n * c * spatial > 65536)
    for (size_t pl = 0; pl < n * c; pl++) {
        const float *xp = x + pl * spatial;
        double sum = 0.0;
        for (size_t i = 0; i < spatial; i++)
            sum += xp[i];
        y[pl] = spatial ? (float)(sum / (double)spatial) : NAN;
    }
}

void global_maxpool_forward(float *y, const float *x, size_t n, size_t c, size_t spatial)
{
    #pragma omp parallel for schedule(static) if (n * c * spatial > 65536)
    for (size_t pl = 0; pl < n * c; pl++) {
        const float *xp = x + pl * spatial;
        float best = -INFINITY;
        for (size_t i = 0; i < spatial; i++)
            best = xp[i] > best ? xp[i] : best;
        y[pl] = best;
    }
}

/* ---- backward ------------------------------------------------------------------------------------
 * Each thread owns whole (n, c) planes of dx and adds windows in output order, so overlapping windows
 * sum deterministically. Kernels write (never accumulate into) dx. */

void maxpool_backward(float *dx, const float *dy, const float *x, size_t n, size_t c, const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    size_t planes = n * c;
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * g.in_size, *yp = dy + pl * g.out_size;
        float *dp = dx + pl * g.in_size;
        for (size_t i = 0; i < g.in_size; i++)
            dp[i] = 0.0f;
        size_t o[3];
        for (o[0] = 0; o[0] < g.out[0]; o[0]++)
        for (o[1] = 0; o[1] < g.out[1]; o[1]++)
        for (o[2] = 0; o[2] < g.out[2]; o[2]++) {
            /* the same search as maxpool_forward: the first maximum in window order */
            Taps t = window_taps(&g, o);
            float best = -INFINITY;
            long long best_at = -1;
            for (size_t a = t.lo[0], id = t.first[0]; a < t.hi[0]; a++, id += g.d[0])
                for (size_t b = t.lo[1], ih = t.first[1]; b < t.hi[1]; b++, ih += g.d[1]) {
                    size_t row = (id * g.in[1] + ih) * g.in[2];
                    for (size_t e = t.lo[2], iw = t.first[2]; e < t.hi[2]; e++, iw += g.d[2])
                        if (xp[row + iw] > best || best_at < 0) {
                            best = xp[row + iw];
                            best_at = (long long)(row + iw);
                        }
                }
            if (best_at >= 0)
                dp[best_at] += yp[(o[0] * g.out[1] + o[1]) * g.out[2] + o[2]];
        }
    }
}

void avgpool_backward(float *dx, const float *dy, size_t n, size_t c, const SpatialWindow *win,
                      bool count_include_pad)
{
    Geom3 g = geom3_from(win);
    size_t planes = n * c;
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *yp = dy + pl * g.out_size;
        float *dp = dx + pl * g.in_size;
        for (size_t i = 0; i < g.in_size; i++)
            dp[i] = 0.0f;
        size_t o[3];
        for (o[0] = 0; o[0] < g.out[0]; o[0]++)
        for (o[1] = 0; o[1] < g.out[1]; o[1]++)
        for (o[2] = 0; o[2] < g.out[2]; o[2]++) {
            Taps t = window_taps(&g, o);
            size_t count = 1; /* avgpool_forward's divisor */
            for (size_t i = 0; i < 3; i++) {
                size_t lo = t.lo[i], hi = t.hi[i];
                if (count_include_pad)
                    tap_range(o[i], g.s[i], 0, g.d[i], g.k[i], g.in[i] + g.p[i] + g.pe[i], &lo, &hi);
                count *= hi - lo;
            }
            if (!count)
                continue;
            float share = yp[(o[0] * g.out[1] + o[1]) * g.out[2] + o[2]] / (float)count;
            for (size_t a = t.lo[0], id = t.first[0]; a < t.hi[0]; a++, id += g.d[0])
                for (size_t b = t.lo[1], ih = t.first[1]; b < t.hi[1]; b++, ih += g.d[1]) {
                    float *dr = dp + (id * g.in[1] + ih) * g.in[2];
                    for (size_t e = t.lo[2], iw = t.first[2]; e < t.hi[2]; e++, iw += g.d[2])
                        dr[iw] += share;
                }
        }
    }
}
