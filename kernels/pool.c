/* pool.c - MaxPool, AveragePool, LpPool and the global pools, forward, and the MaxPool/AveragePool
 * backward (1-D, 2-D, 3-D windows with strides, dilations and pads). Geometry is handled as 3-D with
 * leading unit dims; OpenMP splits over (n, c) planes. It does not compute output sizes: codegen
 * passes them (ceil_mode included). */
#include "kernels.h"

#include <math.h>
#include <string.h>

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

/* Output positions [*lo, *hi) of one dim whose windows lie wholly inside [0, in): no tap clipped. */
static void interior_range(const Geom3 *g, size_t i, size_t *lo, size_t *hi)
{
    size_t span = (g->k[i] - 1) * g->d[i]; /* last tap's offset from the window start */
    size_t l = (g->p[i] + g->s[i] - 1) / g->s[i];            /* o*s >= p */
    size_t h = g->in[i] + g->p[i] < span + 1 ? 0              /* o*s - p + span <= in - 1 */
             : (g->in[i] + g->p[i] - span - 1) / g->s[i] + 1;
    if (h > g->out[i])
        h = g->out[i];
    *lo = l < h ? l : h;
    *hi = h;
}

/* The first maximum in window order of one window (taps t), and its offset in the plane, -1 when
 * the window holds no tap. A NaN wins only as the first tap (no later x compares greater). */
static long long window_max(const float *xp, const Geom3 *g, const Taps *t, float *max)
{
    float best = -INFINITY;
    long long best_at = -1;
    for (size_t a = t->lo[0], id = t->first[0]; a < t->hi[0]; a++, id += g->d[0])
        for (size_t b = t->lo[1], ih = t->first[1]; b < t->hi[1]; b++, ih += g->d[1]) {
            size_t row = (id * g->in[1] + ih) * g->in[2];
            for (size_t e = t->lo[2], iw = t->first[2]; e < t->hi[2]; e++, iw += g->d[2])
                if (xp[row + iw] > best || best_at < 0) {
                    best = xp[row + iw];
                    best_at = (long long)(row + iw);
                }
        }
    *max = best;
    return best_at;
}

enum { POOL_BLOCK = 64 }; /* output columns per pass of maxpool_cols */

/* window_max of `cols` consecutive interior windows of one output row (taps t in dims 0 and 1, all
 * k[2] taps in dim 2, the first window's tap 0 at column iw0), as one pass per tap over the columns
 * so that the compiler vectorises across them; s is a constant in each inlined copy. The same
 * compare as window_max: the first tap seeds, later taps win only when strictly greater. at[j] is
 * the winner's plane offset minus j*s (the plane fits in int32_t here). */
static inline void interior_max(float *best, int32_t *at, const float *xp, const Geom3 *g, const Taps *t,
                                size_t iw0, size_t cols, size_t s)
{
    bool seeded = false;
    for (size_t a = t->lo[0], id = t->first[0]; a < t->hi[0]; a++, id += g->d[0])
        for (size_t b = t->lo[1], ih = t->first[1]; b < t->hi[1]; b++, ih += g->d[1])
            for (size_t e = 0; e < g->k[2]; e++) {
                size_t off = (id * g->in[1] + ih) * g->in[2] + iw0 + e * g->d[2];
                const float *src = xp + off;
                int32_t tap = (int32_t)off;
                if (!seeded) {
                    for (size_t j = 0; j < cols; j++) {
                        best[j] = src[j * s];
                        at[j] = tap;
                    }
                    seeded = true;
                    continue;
                }
                for (size_t j = 0; j < cols; j++) {
                    float v = src[j * s];
                    bool gt = v > best[j];
                    at[j] = gt ? tap : at[j];
                    best[j] = gt ? v : best[j];
                }
            }
}

/* interior_max without the winners' offsets: the same compare (later taps win only when strictly
 * greater, so the values are the same bits), for the forward without Indices, where tracking the
 * offsets was most of the work. */
static inline void interior_max_values(float *best, const float *xp, const Geom3 *g, const Taps *t, size_t iw0,
                                       size_t cols, size_t s)
{
    bool seeded = false;
    for (size_t a = t->lo[0], id = t->first[0]; a < t->hi[0]; a++, id += g->d[0])
        for (size_t b = t->lo[1], ih = t->first[1]; b < t->hi[1]; b++, ih += g->d[1])
            for (size_t e = 0; e < g->k[2]; e++) {
                const float *src = xp + (id * g->in[1] + ih) * g->in[2] + iw0 + e * g->d[2];
                if (!seeded) {
                    for (size_t j = 0; j < cols; j++)
                        best[j] = src[j * s];
                    seeded = true;
                    continue;
                }
                for (size_t j = 0; j < cols; j++) {
                    float v = src[j * s];
                    best[j] = v > best[j] ? v : best[j];
                }
            }
}

/* max[j], at[j] = window_max of output (o0, o1, c0 + j) for c0 + j < c1 (c1 - c0 <= POOL_BLOCK).
 * row holds the row's taps in dims 0 and 1; [w_lo, w_hi) is interior_range of dim 2. */
static void maxpool_cols(float *max, int64_t *at, const float *xp, const Geom3 *g, const Taps *row,
                         size_t c0, size_t c1, size_t w_lo, size_t w_hi, bool want_at)
{
    size_t i0 = c0 > w_lo ? c0 : w_lo, i1 = c1 < w_hi ? c1 : w_hi;
    if (row->lo[0] == row->hi[0] || row->lo[1] == row->hi[1]) { /* no taps in this row */
        for (size_t j = 0; j < c1 - c0; j++) {
            max[j] = -INFINITY;
            at[j] = -1;
        }
        return;
    }
    if (i0 < i1 && g->in_size <= INT32_MAX) {
        float best[POOL_BLOCK];
        int32_t tap[POOL_BLOCK];
        size_t s = g->s[2], cols = i1 - i0, iw0 = i0 * s - g->p[2];
        if (!want_at) {
            if (s == 1)
                interior_max_values(max + (i0 - c0), xp, g, row, iw0, cols, 1);
            else if (s == 2)
                interior_max_values(max + (i0 - c0), xp, g, row, iw0, cols, 2);
            else
                interior_max_values(max + (i0 - c0), xp, g, row, iw0, cols, s);
        } else if (s == 1)
            interior_max(best, tap, xp, g, row, iw0, cols, 1);
        else if (s == 2)
            interior_max(best, tap, xp, g, row, iw0, cols, 2);
        else
            interior_max(best, tap, xp, g, row, iw0, cols, s);
        for (size_t j = 0; want_at && j < cols; j++) {
            max[i0 - c0 + j] = best[j];
            at[i0 - c0 + j] = (int64_t)tap[j] + (int64_t)(j * s);
        }
    } else {
        i0 = i1 = c1; /* everything through the border path */
    }
    Taps t = *row;
    for (size_t o = c0; o < c1; o++) {
        if (o == i0)
            o = i1;
        if (o >= c1)
            break;
        tap_range(o, g->s[2], g->p[2], g->d[2], g->k[2], g->in[2], &t.lo[2], &t.hi[2]);
        t.first[2] = o * g->s[2] + t.lo[2] * g->d[2] - g->p[2];
        at[o - c0] = window_max(xp, g, &t, &max[o - c0]);
    }
}

void maxpool_forward(float *y, int64_t *indices, const float *x, size_t n, size_t c,
                     const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    size_t planes = n * c, w_lo, w_hi;
    interior_range(&g, 2, &w_lo, &w_hi);
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * g.in_size;
        size_t o[3] = {0, 0, 0};
        for (o[0] = 0; o[0] < g.out[0]; o[0]++)
        for (o[1] = 0; o[1] < g.out[1]; o[1]++) {
            Taps row = window_taps(&g, o); /* dims 0 and 1 of this output row */
            size_t yrow = pl * g.out_size + (o[0] * g.out[1] + o[1]) * g.out[2];
            for (size_t c0 = 0; c0 < g.out[2]; c0 += POOL_BLOCK) {
                size_t c1 = c0 + POOL_BLOCK < g.out[2] ? c0 + POOL_BLOCK : g.out[2];
                int64_t at[POOL_BLOCK];
                maxpool_cols(y + yrow + c0, at, xp, &g, &row, c0, c1, w_lo, w_hi, indices != NULL);
                if (indices)
                    for (size_t j = 0; j < c1 - c0; j++)
                        indices[yrow + c0 + j] = at[j] < 0 ? -1 : (int64_t)(pl * g.in_size) + at[j];
            }
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

/* y = (sum_w |x|^p)^(1/p):  dx = dy * y^(1-p) * |x|^(p-1) * sign(x) over each window (overlaps add);
 * 0 where y = 0 (PyTorch's lp_pool passes its relu's zero gradient there). */
void lppool_backward(float *dx, const float *dy, const float *x, size_t n, size_t c, const SpatialWindow *win,
                     float p)
{
    Geom3 g = geom3_from(win);
    size_t planes = n * c;
    double pd = p;
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * g.in_size, *yp = dy + pl * g.out_size;
        float *dp = dx + pl * g.in_size;
        memset(dp, 0, g.in_size * sizeof *dp);
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
                        sum += pow(fabs((double)xr[iw]), pd);
                }
            if (!(sum > 0))
                continue;
            /* dy * y^(1-p) = dy * sum^((1-p)/p) */
            double scale = yp[(o[0] * g.out[1] + o[1]) * g.out[2] + o[2]] * pow(sum, (1 - pd) / pd);
            for (size_t a = t.lo[0], id = t.first[0]; a < t.hi[0]; a++, id += g.d[0])
                for (size_t b = t.lo[1], ih = t.first[1]; b < t.hi[1]; b++, ih += g.d[1]) {
                    const float *xr = xp + (id * g.in[1] + ih) * g.in[2];
                    float *dr = dp + (id * g.in[1] + ih) * g.in[2];
                    for (size_t e = t.lo[2], iw = t.first[2]; e < t.hi[2]; e++, iw += g.d[2]) {
                        double v = xr[iw], m = pd == 2 ? v : pd == 1 ? (v > 0) - (v < 0)
                                                              : copysign(pow(fabs(v), pd - 1), v) * (v != 0);
                        dr[iw] += (float)(scale * m);
                    }
                }
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
    size_t planes = n * c, w_lo, w_hi;
    interior_range(&g, 2, &w_lo, &w_hi);
    #pragma omp parallel for schedule(static) if (planes * g.out_size > 16384)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * g.in_size, *yp = dy + pl * g.out_size;
        float *dp = dx + pl * g.in_size;
        memset(dp, 0, g.in_size * sizeof *dp);
        size_t o[3] = {0, 0, 0};
        for (o[0] = 0; o[0] < g.out[0]; o[0]++)
        for (o[1] = 0; o[1] < g.out[1]; o[1]++) {
            /* the same search as maxpool_forward: the first maximum in window order */
            Taps row = window_taps(&g, o);
            const float *yrow = yp + (o[0] * g.out[1] + o[1]) * g.out[2];
            for (size_t c0 = 0; c0 < g.out[2]; c0 += POOL_BLOCK) {
                size_t c1 = c0 + POOL_BLOCK < g.out[2] ? c0 + POOL_BLOCK : g.out[2];
                float max[POOL_BLOCK];
                int64_t at[POOL_BLOCK];
                maxpool_cols(max, at, xp, &g, &row, c0, c1, w_lo, w_hi, true);
                for (size_t j = 0; j < c1 - c0; j++)
                    if (at[j] >= 0)
                        dp[at[j]] += yrow[c0 + j];
            }
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
