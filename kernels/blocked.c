/* blocked.c - what reads and writes oneDNN's blocked activation layout nChw8c besides the convs
 * (conv_dnnl.c): reorders to and from NCHW, MaxPool, GlobalAveragePool and inference
 * BatchNormalization. The compiler keeps a value
 * blocked between consecutive convs when every reader can take it (codegen/layout.c); these give the
 * same values as pool.c's plain kernels (same compares, same sums), only the addressing differs. */
#include "kernels.h"

#include <math.h>

enum { BLK = 8 };

void layout_to_blocked(float *dst, const float *src, size_t n, size_t c, size_t spatial)
{
    size_t blocks = n * (c / BLK);
    #pragma omp parallel for schedule(static) if (blocks * spatial * BLK > 65536)
    for (size_t nb = 0; nb < blocks; nb++) {
        const float *s = src + nb * BLK * spatial;
        float *d = dst + nb * BLK * spatial;
        for (size_t i = 0; i < spatial; i++)
            for (size_t l = 0; l < BLK; l++)
                d[i * BLK + l] = s[l * spatial + i];
    }
}

void layout_from_blocked(float *dst, const float *src, size_t n, size_t c, size_t spatial)
{
    size_t blocks = n * (c / BLK);
    #pragma omp parallel for schedule(static) if (blocks * spatial * BLK > 65536)
    for (size_t nb = 0; nb < blocks; nb++) {
        const float *s = src + nb * BLK * spatial;
        float *d = dst + nb * BLK * spatial;
        for (size_t l = 0; l < BLK; l++)
            for (size_t i = 0; i < spatial; i++)
                d[l * spatial + i] = s[i * BLK + l];
    }
}

/* Taps [*lo, *hi) of the window of output o whose input o*s - p + t*d lies in [0, limit) (pool.c's). */
static void taps(size_t o, size_t s, size_t p, size_t d, size_t k, size_t limit, size_t *lo, size_t *hi)
{
    long long start = (long long)(o * s) - (long long)p;
    long long l = start >= 0 ? 0 : (-start + (long long)d - 1) / (long long)d;
    long long room = (long long)limit - start;
    long long h = room <= 0 ? 0 : (room + (long long)d - 1) / (long long)d;
    if (h > (long long)k)
        h = (long long)k;
    if (l > h)
        l = h;
    *lo = (size_t)l;
    *hi = (size_t)h;
}

void maxpool_forward_blocked(float *y, const float *x, size_t n, size_t c, const SpatialWindow *win)
{
    size_t ih_n = win->in[0], iw_n = win->in[1], oh_n = win->out[0], ow_n = win->out[1];
    size_t sh = win->stride[0] ? win->stride[0] : 1, sw = win->stride[1] ? win->stride[1] : 1;
    size_t dh = win->dilation[0] ? win->dilation[0] : 1, dw = win->dilation[1] ? win->dilation[1] : 1;
    size_t blocks = n * (c / BLK);
    #pragma omp parallel for schedule(static) if (blocks * oh_n * ow_n * BLK > 16384)
    for (size_t nb = 0; nb < blocks; nb++) {
        const float *xp = x + nb * ih_n * iw_n * BLK;
        float *yp = y + nb * oh_n * ow_n * BLK;
        for (size_t oh = 0; oh < oh_n; oh++) {
            size_t h_lo, h_hi;
            taps(oh, sh, win->pad_begin[0], dh, win->kernel[0], ih_n, &h_lo, &h_hi);
            for (size_t ow = 0; ow < ow_n; ow++) {
                size_t w_lo, w_hi;
                taps(ow, sw, win->pad_begin[1], dw, win->kernel[1], iw_n, &w_lo, &w_hi);
                float best[BLK];
                bool seeded = false;
                for (size_t l = 0; l < BLK; l++)
                    best[l] = -INFINITY; /* a window that sees no input */
                /* as pool.c: the first tap in window order seeds, later ones win when strictly greater */
                for (size_t a = h_lo; a < h_hi; a++) {
                    size_t ih = oh * sh + a * dh - win->pad_begin[0];
                    for (size_t b = w_lo; b < w_hi; b++) {
                        const float *v = xp + (ih * iw_n + ow * sw + b * dw - win->pad_begin[1]) * BLK;
                        if (!seeded) {
                            for (size_t l = 0; l < BLK; l++)
                                best[l] = v[l];
                            seeded = true;
                            continue;
                        }
                        for (size_t l = 0; l < BLK; l++)
                            best[l] = v[l] > best[l] ? v[l] : best[l];
                    }
                }
                for (size_t l = 0; l < BLK; l++)
                    yp[(oh * ow_n + ow) * BLK + l] = best[l];
            }
        }
    }
}

void global_avgpool_forward_blocked(float *y, const float *x, size_t n, size_t c, size_t spatial)
{
    size_t blocks = n * (c / BLK);
    #pragma omp parallel for schedule(static) if (blocks * spatial * BLK > 65536)
    for (size_t nb = 0; nb < blocks; nb++) {
        const float *xp = x + nb * spatial * BLK;
        double sum[BLK] = {0};
        for (size_t i = 0; i < spatial; i++)
            for (size_t l = 0; l < BLK; l++)
                sum[l] += xp[i * BLK + l];
        for (size_t l = 0; l < BLK; l++) /* block nb of image n is y[n, nb % (c/8) * 8 + l] */
            y[nb * BLK + l] = spatial ? (float)(sum[l] / (double)spatial) : NAN;
    }
}

void batchnorm_forward_blocked(float *y, const float *x, const float *scale, const float *bias, const float *mean,
                               const float *var, size_t n, size_t c, size_t spatial, float epsilon)
{
    size_t blocks = n * (c / BLK);
    #pragma omp parallel for schedule(static) if (blocks * spatial * BLK > 65536)
    for (size_t nb = 0; nb < blocks; nb++) {
        size_t ch0 = nb % (c / BLK) * BLK;
        float mul[BLK], mu[BLK], add[BLK];
        for (size_t l = 0; l < BLK; l++) { /* norm.c's batchnorm_forward, lane by lane */
            mul[l] = (float)((double)scale[ch0 + l] / sqrt((double)var[ch0 + l] + (double)epsilon));
            mu[l] = mean[ch0 + l];
            add[l] = bias[ch0 + l];
        }
        const float *xp = x + nb * spatial * BLK;
        float *yp = y + nb * spatial * BLK;
        for (size_t i = 0; i < spatial; i++)
            for (size_t l = 0; l < BLK; l++)
                yp[i * BLK + l] = (xp[i * BLK + l] - mu[l]) * mul[l] + add[l];
    }
}
