/* norm.c - BatchNormalization (inference), InstanceNormalization, LayerNormalization and LRN,
 * forward. Statistics accumulate in double, two passes (mean, then centred variance), one thread
 * per row, so results do not depend on the thread count. Training-mode BatchNormalization (running
 * statistics) is not here. */
#include "runtime.h"

#include <math.h>

void batchnorm_forward(float *y, const float *x, const float *scale, const float *bias,
                       const float *mean, const float *var, size_t n, size_t c, size_t spatial,
                       float epsilon)
{
    #pragma omp parallel for schedule(static) if (n * c * spatial > 65536)
    for (size_t nc = 0; nc < n * c; nc++) {
        size_t ch = nc % c;
        float mul = (float)((double)scale[ch] / sqrt((double)var[ch] + (double)epsilon));
        float mu = mean[ch], add = bias[ch];
        const float *xp = x + nc * spatial;
        float *yp = y + nc * spatial;
        /* Centre first: x*mul + (bias - mean*mul) cancels badly when mean*mul is large. */
        for (size_t i = 0; i < spatial; i++)
            yp[i] = (xp[i] - mu) * mul + add;
    }
}

/* Mean and 1/sqrt(var + epsilon) of one row, biased variance. */
static void row_stats(const float *xp, size_t len, float epsilon, double *mean, double *inv_std)
{
    double sum = 0.0;
    for (size_t i = 0; i < len; i++)
        sum += xp[i];
    double mu = len ? sum / (double)len : 0.0;
    double sq = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = (double)xp[i] - mu;
        sq += d * d;
    }
    double var = len ? sq / (double)len : 0.0;
    *mean = mu;
    *inv_std = 1.0 / sqrt(var + (double)epsilon);
}

void instancenorm_forward(float *y, const float *x, const float *scale, const float *bias,
                          size_t n, size_t c, size_t spatial, float epsilon)
{
    #pragma omp parallel for schedule(static) if (n * c * spatial > 32768)
    for (size_t nc = 0; nc < n * c; nc++) {
        size_t ch = nc % c;
        const float *xp = x + nc * spatial;
        float *yp = y + nc * spatial;
        double mu, inv_std;
        row_stats(xp, spatial, epsilon, &mu, &inv_std);
        float m = (float)mu, mul = (float)(inv_std * (double)scale[ch]), add = bias[ch];
        for (size_t i = 0; i < spatial; i++)
            yp[i] = (xp[i] - m) * mul + add;
    }
}

void layernorm_forward(float *y, float *mean, float *inv_std_dev, const float *x,
                       const float *scale, const float *bias, size_t rows, size_t cols,
                       float epsilon)
{
    #pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (size_t r = 0; r < rows; r++) {
        const float *xp = x + r * cols;
        float *yp = y + r * cols;
        double mu, inv_std;
        row_stats(xp, cols, epsilon, &mu, &inv_std);
        float m = (float)mu, is = (float)inv_std;
        if (mean)
            mean[r] = m;
        if (inv_std_dev)
            inv_std_dev[r] = is;
        if (bias)
            for (size_t i = 0; i < cols; i++)
                yp[i] = (xp[i] - m) * is * scale[i] + bias[i];
        else
            for (size_t i = 0; i < cols; i++)
                yp[i] = (xp[i] - m) * is * scale[i];
    }
}

void lrn_forward(float *y, const float *x, size_t n, size_t c, size_t spatial, size_t size,
                 float alpha, float beta, float bias)
{
    enum { TILE = 256 };
    size_t before = size ? (size - 1) / 2 : 0, after = size ? size / 2 : 0; /* floor, ceil of (size-1)/2 */
    float coef = size ? alpha / (float)size : 0.0f;
    #pragma omp parallel for schedule(static) if (n * c * spatial * (size + 1) > 65536)
    for (size_t nc = 0; nc < n * c; nc++) {
        size_t b = nc / c, ch = nc % c;
        size_t lo = ch >= before ? ch - before : 0, hi = ch + after < c ? ch + after : c - 1;
        const float *xb = x + b * c * spatial;
        for (size_t s0 = 0; s0 < spatial; s0 += TILE) {
            size_t len = spatial - s0 < TILE ? spatial - s0 : TILE;
            float sq[TILE] = {0};
            for (size_t k = lo; k <= hi; k++) {
                const float *xk = xb + k * spatial + s0;
                for (size_t i = 0; i < len; i++)
                    sq[i] += xk[i] * xk[i];
            }
            const float *xp = x + nc * spatial + s0;
            float *yp = y + nc * spatial + s0;
            for (size_t i = 0; i < len; i++)
                yp[i] = xp[i] / powf(bias + coef * sq[i], beta);
        }
    }
}
