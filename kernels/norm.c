/* norm.c - BatchNormalization (inference and training), InstanceNormalization, LayerNormalization and
 * LRN forward; the backward of BatchNormalization, InstanceNormalization and LayerNormalization; Dropout
 * in training (counter-based mask). Statistics accumulate in double, two passes (mean, then centred
 * variance), one thread per row, so results do not depend on the thread count. No LRN backward. */
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The activation of a fused BatchNormalization (ir/pass_fuse.c), as the separate ops compute it:
 * Relu v > 0 ? v : 0 (a NaN becomes 0, as unary_forward), Clip v < lo ? lo : v > hi ? hi : v. */
static inline float bn_act(float v, int kind, float lo, float hi)
{
    if (kind == 1)
        return v > 0.0f ? v : 0.0f;
    if (kind == 2)
        return v < lo ? lo : v > hi ? hi : v;
    return v;
}

void batchnorm_forward_act(float *y, const float *x, const float *scale, const float *bias, const float *mean,
                           const float *var, size_t n, size_t c, size_t spatial, float epsilon, int kind, float lo,
                           float hi)
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
            yp[i] = bn_act((xp[i] - mu) * mul + add, kind, lo, hi);
    }
}

void batchnorm_forward(float *y, const float *x, const float *scale, const float *bias,
                       const float *mean, const float *var, size_t n, size_t c, size_t spatial,
                       float epsilon)
{
    batchnorm_forward_act(y, x, scale, bias, mean, var, n, c, spatial, epsilon, 0, 0.0f, 0.0f);
}

/* Mean and 1/sqrt(var + epsilon) of one row, biased variance. */
/* Sums in ROW_LANES independent double accumulators, added up at the end: one serial chain of double adds
 * (4 cycles each) made LayerNormalization's rows of 192 latency-bound (3 ns an element, bench/README.md
 * "ViT: GELU fusion"); the lanes vectorise without reassociating anything. */
enum { ROW_LANES = 8 };

static double ln_lanes_sum(const double *acc)
{
    double t = 0.0;
    for (int j = 0; j < ROW_LANES; j++)
        t += acc[j];
    return t;
}

static void row_stats(const float *xp, size_t len, float epsilon, double *mean, double *inv_std)
{
    double acc[ROW_LANES] = {0};
    size_t i = 0, full = len - len % ROW_LANES;
    for (; i < full; i += ROW_LANES)
        for (int j = 0; j < ROW_LANES; j++)
            acc[j] += xp[i + j];
    double sum = ln_lanes_sum(acc);
    for (; i < len; i++)
        sum += xp[i];
    double mu = len ? sum / (double)len : 0.0;
    double sq[ROW_LANES] = {0};
    for (i = 0; i < full; i += ROW_LANES)
        for (int j = 0; j < ROW_LANES; j++) {
            double d = (double)xp[i + j] - mu;
            sq[j] += d * d;
        }
    double sqt = ln_lanes_sum(sq);
    for (; i < len; i++) {
        double d = (double)xp[i] - mu;
        sqt += d * d;
    }
    double var = len ? sqt / (double)len : 0.0;
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

/* bias + alpha/size * sum of x^2 over the window of channel ch, at spatial s0..s0+len of one sample. */
static void lrn_denominator(double *den, const float *xb, size_t c, size_t spatial, size_t ch, size_t s0,
                            size_t len, size_t before, size_t after, double coef, double bias)
{
    size_t lo = ch >= before ? ch - before : 0, hi = ch + after < c ? ch + after : c - 1;
    for (size_t i = 0; i < len; i++)
        den[i] = 0;
    for (size_t k = lo; k <= hi; k++) {
        const float *xk = xb + k * spatial + s0;
        for (size_t i = 0; i < len; i++)
            den[i] += (double)xk[i] * xk[i];
    }
    for (size_t i = 0; i < len; i++)
        den[i] = bias + coef * den[i];
}

/* y[k] = x[k] * D[k]^-beta, D[k] = bias + alpha/size * sum_{j in win(k)} x[j]^2:
 *   dx[j] = dy[j] * D[j]^-beta - 2 alpha beta / size * x[j] * sum_{k : j in win(k)} dy[k] x[k] D[k]^(-beta-1).
 * Recomputes each D it needs (O(size^2) per element: LRN windows are small); sums in double. */
void lrn_backward(float *dx, const float *dy, const float *x, size_t n, size_t c, size_t spatial, size_t size,
                  float alpha, float beta, float bias)
{
    enum { TILE = 64 };
    size_t before = size ? (size - 1) / 2 : 0, after = size ? size / 2 : 0;
    double coef = size ? (double)alpha / (double)size : 0;
    #pragma omp parallel for schedule(static) if (n * c * spatial * size * size > 65536)
    for (size_t nc = 0; nc < n * c; nc++) {
        size_t b = nc / c, j = nc % c;
        /* the channels k whose window holds j: k - before <= j <= k + after */
        size_t lo = j >= after ? j - after : 0, hi = j + before < c ? j + before : c - 1;
        const float *xb = x + b * c * spatial, *dyb = dy + b * c * spatial;
        for (size_t s0 = 0; s0 < spatial; s0 += TILE) {
            size_t len = spatial - s0 < TILE ? spatial - s0 : TILE;
            double acc[TILE] = {0}, den[TILE];
            for (size_t k = lo; k <= hi; k++) {
                lrn_denominator(den, xb, c, spatial, k, s0, len, before, after, coef, bias);
                const float *xk = xb + k * spatial + s0, *dyk = dyb + k * spatial + s0;
                for (size_t i = 0; i < len; i++)
                    acc[i] += (double)dyk[i] * xk[i] * pow(den[i], -(double)beta - 1);
            }
            lrn_denominator(den, xb, c, spatial, j, s0, len, before, after, coef, bias);
            const float *xj = xb + j * spatial + s0, *dyj = dyb + j * spatial + s0;
            float *dxj = dx + nc * spatial + s0;
            for (size_t i = 0; i < len; i++)
                dxj[i] = (float)(dyj[i] * pow(den[i], -(double)beta) - 2 * coef * beta * xj[i] * acc[i]);
        }
    }
}

/* ---- training forward and backward ----------------------------------------------------------------
 * Statistics in double, fixed order, each thread owning whole channels or rows (or column blocks for
 * the LayerNorm parameter sums), so results do not depend on the thread count. Backward kernels write
 * (never accumulate into) their outputs; a NULL output is not computed. */

/* BatchNormalization training forward and backward walk x and dy in memory order, a block of CB
 * channels at a time (each thread owns whole blocks): for each image, the block's rows one after
 * another, so the hardware prefetcher streams them (a walk down one channel across the images jumps
 * by c * spatial floats per row: 2-2.5x slower on 7x7 maps). Per-channel sums are double; a row is
 * summed in 8 lanes (GCC/clang vectors: element i goes to lane i % 8, lanes added in a fixed order,
 * so it vectorises) and the row totals are added image by image. The order depends only on the shape,
 * never on the thread count. */
enum { CB = 64, LANES = 8 };
typedef float F2 __attribute__((vector_size(8)));
typedef double D2 __attribute__((vector_size(16)));   /* one SSE2 register: no ABI change */

/* x[0..8) as four pairs of doubles, lanes (0,1) (2,3) (4,5) (6,7) */
typedef struct Oct {
    D2 v[4];
} Oct;

static inline Oct load8(const float *p)
{
    Oct o;
    for (int q = 0; q < 4; q++) {
        F2 f;
        memcpy(&f, p + 2 * q, sizeof f);
        o.v[q] = __builtin_convertvector(f, D2);
    }
    return o;
}

static inline double lanes_total(const Oct *acc, const double *tail)
{
    double t = 0.0;
    for (int q = 0; q < 4; q++)
        t += (acc->v[q][0] + tail[2 * q]) + (acc->v[q][1] + tail[2 * q + 1]);
    return t;
}

/* sum of x[i] over one row */
static double row_sum(const float *x, size_t len)
{
    Oct acc = {{{0}}};
    double tail[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= len; i += LANES) {
        Oct v = load8(x + i);
        for (int q = 0; q < 4; q++)
            acc.v[q] += v.v[q];
    }
    for (size_t j = 0; i < len; i++, j++)
        tail[j] = (double)x[i];
    return lanes_total(&acc, tail);
}

/* sum of (x[i] - mu)^2 over one row */
static double row_sq(const float *x, size_t len, double mu)
{
    Oct acc = {{{0}}};
    double tail[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= len; i += LANES) {
        Oct v = load8(x + i);
        for (int q = 0; q < 4; q++) {
            D2 d = v.v[q] - mu;
            acc.v[q] += d * d;
        }
    }
    for (size_t j = 0; i < len; i++, j++) {
        double d = (double)x[i] - mu;
        tail[j] = d * d;
    }
    return lanes_total(&acc, tail);
}

/* *sg += sum of g[i], *sgx += sum of g[i] * (x[i] - mu) over one row */
static void row_dot(double *sg, double *sgx, const float *g, const float *x, size_t len, double mu)
{
    Oct a = {{{0}}}, b = {{{0}}};
    double ta[LANES] = {0}, tb[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= len; i += LANES) {
        Oct gv = load8(g + i), xv = load8(x + i);
        for (int q = 0; q < 4; q++) {
            a.v[q] += gv.v[q];
            b.v[q] += gv.v[q] * (xv.v[q] - mu);
        }
    }
    for (size_t j = 0; i < len; i++, j++) {
        double gd = (double)g[i];
        ta[j] = gd;
        tb[j] = gd * ((double)x[i] - mu);
    }
    *sg += lanes_total(&a, ta);
    *sgx += lanes_total(&b, tb);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* row_dot on 4-double vectors (AVX, no FMA): lanes 0-3 and 4-7 of the same 8 lanes, the same operations
 * per lane and the same final order, so the same bits as row_dot at twice its width. */
typedef double D4 __attribute__((vector_size(32)));
typedef float F4 __attribute__((vector_size(16)));

__attribute__((target("avx2"))) static void row_dot_avx2(double *sg, double *sgx, const float *g, const float *x,
                                                         size_t len, double mu)
{
    D4 a[2] = {{0}}, b[2] = {{0}};
    double ta[LANES] = {0}, tb[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= len; i += LANES)
        for (int h = 0; h < 2; h++) {
            F4 gf, xf;
            memcpy(&gf, g + i + 4 * h, sizeof gf);
            memcpy(&xf, x + i + 4 * h, sizeof xf);
            D4 gd = __builtin_convertvector(gf, D4), xd = __builtin_convertvector(xf, D4);
            a[h] += gd;
            b[h] += gd * (xd - mu);
        }
    for (size_t j = 0; i < len; i++, j++) {
        double gd = (double)g[i];
        ta[j] = gd;
        tb[j] = gd * ((double)x[i] - mu);
    }
    double sa = 0.0, sb = 0.0;
    for (int q = 0; q < 4; q++) {
        int l = 2 * q, h = l / 4, k = l % 4;
        sa += (a[h][k] + ta[l]) + (a[h][k + 1] + ta[l + 1]);
        sb += (b[h][k] + tb[l]) + (b[h][k + 1] + tb[l + 1]);
    }
    *sg += sa;
    *sgx += sb;
}
#define HAVE_NORM_AVX2 1
#else
static void row_dot_avx2(double *sg, double *sgx, const float *g, const float *x, size_t len, double mu)
{
    row_dot(sg, sgx, g, x, len, mu);
}
#endif

/* The AVX2 sums where the CPU has them, unless ONNXTUNE_NORM_ISA=generic (read per call: tests switch it) */
static bool norm_avx2(void)
{
#ifdef HAVE_NORM_AVX2
    return rt_use_avx2("ONNXTUNE_NORM_ISA");
#else
    return false;
#endif
}

/* Batch mean and biased variance of channels [c0, c1) (c1 - c0 <= CB) of x[n, c, spatial]: two passes
 * (mean, then the centred squares). */
static void block_stats(const float *x, size_t n, size_t c, size_t spatial, size_t c0, size_t c1, double *mean,
                        double *var)
{
    double m = (double)(n * spatial), sq[CB];
    for (size_t k = 0; k < c1 - c0; k++)
        mean[k] = sq[k] = 0.0;
    for (size_t b = 0; b < n; b++)
        for (size_t ch = c0; ch < c1; ch++)
            mean[ch - c0] += row_sum(x + (b * c + ch) * spatial, spatial);
    for (size_t k = 0; k < c1 - c0; k++)
        mean[k] = m > 0 ? mean[k] / m : 0.0;
    for (size_t b = 0; b < n; b++)
        for (size_t ch = c0; ch < c1; ch++)
            sq[ch - c0] += row_sq(x + (b * c + ch) * spatial, spatial, mean[ch - c0]);
    for (size_t k = 0; k < c1 - c0; k++)
        var[k] = m > 0 ? sq[k] / m : 0.0;
}

void batchnorm_train_forward(float *y, float *running_mean_out, float *running_var_out, const float *x,
                             const float *scale, const float *bias, const float *running_mean,
                             const float *running_var, size_t n, size_t c, size_t spatial, float epsilon,
                             float momentum, bool unbiased)
{
    size_t m = n * spatial, blocks = (c + CB - 1) / CB;
    #pragma omp parallel for schedule(static) if (n * c * spatial > 65536)
    for (size_t blk = 0; blk < blocks; blk++) {
        size_t c0 = blk * CB, c1 = c0 + CB < c ? c0 + CB : c;
        double mu[CB], var[CB];
        float mul[CB], add[CB], mf[CB];
        block_stats(x, n, c, spatial, c0, c1, mu, var);
        for (size_t ch = c0; ch < c1; ch++) {
            size_t k = ch - c0;
            mul[k] = (float)((double)scale[ch] / sqrt(var[k] + (double)epsilon));
            add[k] = bias[ch];
            mf[k] = (float)mu[k];
            double batch_var = unbiased && m > 1 ? var[k] * (double)m / (double)(m - 1) : var[k];
            double mom = (double)momentum;
            /* read before written: running_*_out may be running_* itself */
            float rm = (float)(mom * (double)running_mean[ch] + (1.0 - mom) * mu[k]);
            float rv = (float)(mom * (double)running_var[ch] + (1.0 - mom) * batch_var);
            if (running_mean_out)
                running_mean_out[ch] = rm;
            if (running_var_out)
                running_var_out[ch] = rv;
        }
        for (size_t b = 0; b < n; b++)
            for (size_t ch = c0; ch < c1; ch++) {
                const float *xp = x + (b * c + ch) * spatial;
                float *yp = y + (b * c + ch) * spatial, u = mul[ch - c0], a = add[ch - c0], mv = mf[ch - c0];
                for (size_t i = 0; i < spatial; i++)
                    yp[i] = (xp[i] - mv) * u + a;
            }
    }
}

/* dY masked by the activation whose backward a fused BatchNormalizationGrad applies first, into g:
 * kept (dy unchanged, NaN too) where Relu's t > 0 / Clip's lo <= t <= hi, else +0; the bits of
 * kernels/elementwise.c's relu_grad / clip_backward, as a 4-float bit mask so that gcc vectorises it. */
typedef float MaskV4 __attribute__((vector_size(16)));
typedef int32_t MaskI4 __attribute__((vector_size(16)));

/* The mask's t when it is not saved: batchnorm_forward's value, recomputed into g (the same float ops,
 * so the same bits), then masked in place by mask_row. */
static void recompute_row(float *g, const float *x, size_t len, float mu, float mul, float add)
{
    for (size_t i = 0; i < len; i++)
        g[i] = (x[i] - mu) * mul + add;
}

static void mask_row(float *g, const float *dy, const float *t, size_t len, const BnActMask *am)
{
    size_t i = 0;
    MaskV4 d, v;
    if (am->kind == 1) {
        for (; i + 4 <= len; i += 4) {
            memcpy(&d, dy + i, sizeof d), memcpy(&v, t + i, sizeof v);
            d = (MaskV4)((MaskI4)d & (v > 0.0f));
            memcpy(g + i, &d, sizeof d);
        }
        for (; i < len; i++)
            g[i] = t[i] > 0 ? dy[i] : 0.0f;
        return;
    }
    float l = am->lo, h = am->hi;
    for (; i + 4 <= len; i += 4) {
        memcpy(&d, dy + i, sizeof d), memcpy(&v, t + i, sizeof v);
        d = (MaskV4)((MaskI4)d & ((v >= l) & (v <= h)));
        memcpy(g + i, &d, sizeof d);
    }
    for (; i < len; i++)
        g[i] = t[i] >= l && t[i] <= h ? dy[i] : 0.0f;
}

/* aborts when out of memory rather than compute without the mask (the kernels return no status) */
static float *scratch_row(size_t len)
{
    float *g = malloc((len ? len : 1) * sizeof *g);
    if (!g) {
        fprintf(stderr, "onnxtune: out of memory (%zu floats for a BatchNormalizationGrad row)\n", len);
        abort();
    }
    return g;
}

void batchnorm_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x,
                        const float *scale, const float *mean, const float *var, size_t n, size_t c,
                        size_t spatial, float epsilon, bool training)
{
    batchnorm_act_backward(dx, dscale, dbias, dy, NULL, x, scale, mean, var, n, c, spatial, epsilon, training);
}

/* With an activation mask, each row of dY is masked into a scratch row g (in cache) and read from
 * there, in both passes: the same floats, summed in the same order, as the unfused
 * ReluGrad/ClipGrad -> batchnorm_backward, without the masked tensor in memory. */
void batchnorm_act_backward(float *dx, float *dscale, float *dbias, const float *dy, const BnActMask *am,
                            const float *x, const float *scale, const float *mean, const float *var, size_t n,
                            size_t c, size_t spatial, float epsilon, bool training)
{
    bool masked = am && am->kind, recompute = masked && !am->t && !training, avx2 = norm_avx2();
    double m = (double)(n * spatial);
    size_t blocks = (c + CB - 1) / CB;
    bool sums = training || dscale || dbias;
    #pragma omp parallel for schedule(static) if (n * c * spatial > 65536)
    for (size_t blk = 0; blk < blocks; blk++) {
        size_t c0 = blk * CB, c1 = c0 + CB < c ? c0 + CB : c;
        double mu[CB], v[CB], inv[CB], sg[CB], sgx[CB];
        float k[CB], fmu[CB], fmul[CB], *g = masked ? scratch_row(spatial) : NULL;
        if (training)
            block_stats(x, n, c, spatial, c0, c1, mu, v);
        for (size_t ch = c0; ch < c1; ch++) {
            size_t j = ch - c0;
            if (!training)
                mu[j] = mean[ch], v[j] = var[ch];
            if (recompute) /* batchnorm_forward's */
                fmu[j] = mean[ch], fmul[j] = (float)((double)scale[ch] / sqrt((double)var[ch] + (double)epsilon));
            inv[j] = 1.0 / sqrt(v[j] + (double)epsilon);
            k[j] = (float)((double)scale[ch] * inv[j]);
            sg[j] = sgx[j] = 0.0;
        }
        /* one pass for the sums; in inference dx = dy * scale * inv_std goes in the same pass */
        for (size_t b = 0; b < n; b++)
            for (size_t ch = c0; ch < c1; ch++) {
                size_t j = ch - c0, off = (b * c + ch) * spatial;
                const float *gp = dy + off;
                if (recompute) {
                    recompute_row(g, x + off, spatial, fmu[j], fmul[j], am->bias[ch]);
                    mask_row(g, gp, g, spatial, am), gp = g;
                } else if (g) {
                    mask_row(g, gp, am->t + off, spatial, am), gp = g;
                }
                if (sums && avx2)
                    row_dot_avx2(&sg[j], &sgx[j], gp, x + off, spatial, mu[j]);
                else if (sums)
                    row_dot(&sg[j], &sgx[j], gp, x + off, spatial, mu[j]);
                if (dx && !training) {
                    float kj = k[j];
                    for (size_t i = 0; i < spatial; i++)
                        dx[off + i] = kj * gp[i];
                }
            }
        for (size_t ch = c0; ch < c1; ch++) {
            if (dscale)
                dscale[ch] = (float)(sgx[ch - c0] * inv[ch - c0]);
            if (dbias)
                dbias[ch] = (float)sg[ch - c0];
        }
        if (!dx || !training) {
            free(g);
            continue;
        }
        /* training: the mean and variance depend on x too,
         * dx = scale * inv * (dy - mean(dy) - xhat * mean(dy * xhat)). */
        float a[CB], bc[CB], mf[CB];
        for (size_t j = 0; j < c1 - c0; j++) {
            a[j] = m > 0 ? (float)(sg[j] / m) : 0.0f;
            bc[j] = m > 0 ? (float)(sgx[j] * inv[j] * inv[j] / m) : 0.0f;
            mf[j] = (float)mu[j];
        }
        for (size_t b = 0; b < n; b++)
            for (size_t ch = c0; ch < c1; ch++) {
                size_t j = ch - c0, off = (b * c + ch) * spatial;
                const float *xp = x + off, *gp = dy + off;
                if (g)
                    mask_row(g, gp, am->t + off, spatial, am), gp = g;
                float *dp = dx + off, kj = k[j], aj = a[j], bj = bc[j], mj = mf[j];
                for (size_t i = 0; i < spatial; i++)
                    dp[i] = kj * (gp[i] - aj - (xp[i] - mj) * bj);
            }
        free(g);
    }
}

void instancenorm_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x,
                           const float *scale, size_t n, size_t c, size_t spatial, float epsilon)
{
    #pragma omp parallel for schedule(static) if (n * c * spatial > 32768)
    for (size_t ch = 0; ch < c; ch++) {
        double ds = 0.0, db = 0.0;
        for (size_t b = 0; b < n; b++) {
            const float *xp = x + (b * c + ch) * spatial, *gp = dy + (b * c + ch) * spatial;
            double mu, inv;
            row_stats(xp, spatial, epsilon, &mu, &inv);
            double sum_dy = 0.0, sum_dyxc = 0.0;
            for (size_t i = 0; i < spatial; i++) {
                sum_dy += gp[i];
                sum_dyxc += (double)gp[i] * ((double)xp[i] - mu);
            }
            ds += sum_dyxc * inv;
            db += sum_dy;
            if (!dx || !spatial)
                continue;
            float k = (float)((double)scale[ch] * inv), a = (float)(sum_dy / (double)spatial);
            float bcoef = (float)(sum_dyxc * inv * inv / (double)spatial), mf = (float)mu;
            float *dp = dx + (b * c + ch) * spatial;
            for (size_t i = 0; i < spatial; i++)
                dp[i] = k * (gp[i] - a - (xp[i] - mf) * bcoef);
        }
        if (dscale)
            dscale[ch] = (float)ds;
        if (dbias)
            dbias[ch] = (float)db;
    }
}

void layernorm_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x,
                        const float *scale, const float *mean, const float *inv_std_dev, size_t rows,
                        size_t cols)
{
    if (dx) {
        #pragma omp parallel for schedule(static) if (rows * cols > 32768)
        for (size_t r = 0; r < rows; r++) {
            const float *xp = x + r * cols, *gp = dy + r * cols;
            float *dp = dx + r * cols;
            float mu = mean[r], inv = inv_std_dev[r];
            double ag[ROW_LANES] = {0}, agx[ROW_LANES] = {0}; /* g = dy * scale, in lanes (row_stats) */
            size_t i = 0, full = cols - cols % ROW_LANES;
            for (; i < full; i += ROW_LANES)
                for (int j = 0; j < ROW_LANES; j++) {
                    double g = (double)gp[i + j] * scale[i + j];
                    ag[j] += g;
                    agx[j] += g * (double)((xp[i + j] - mu) * inv);
                }
            double sum_g = ln_lanes_sum(ag), sum_gx = ln_lanes_sum(agx);
            for (; i < cols; i++) {
                double g = (double)gp[i] * scale[i];
                sum_g += g;
                sum_gx += g * (double)((xp[i] - mu) * inv);
            }
            float a = cols ? (float)(sum_g / (double)cols) : 0.0f, bcoef = cols ? (float)(sum_gx / (double)cols) : 0.0f;
            for (size_t i = 0; i < cols; i++)
                dp[i] = inv * (gp[i] * scale[i] - a - (xp[i] - mu) * inv * bcoef);
        }
    }
    if (!dscale && !dbias)
        return;
    enum { BLOCK = 64 };
    size_t nblocks = (cols + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t c0 = blk * BLOCK, len = cols - c0 < BLOCK ? cols - c0 : BLOCK;
        double ds[BLOCK] = {0}, db[BLOCK] = {0};
        for (size_t r = 0; r < rows; r++) {
            const float *xp = x + r * cols + c0, *gp = dy + r * cols + c0;
            float mu = mean[r], inv = inv_std_dev[r];
            for (size_t i = 0; i < len; i++) {
                ds[i] += (double)gp[i] * (double)((xp[i] - mu) * inv);
                db[i] += gp[i];
            }
        }
        for (size_t i = 0; i < len; i++) {
            if (dscale)
                dscale[c0 + i] = (float)ds[i];
            if (dbias)
                dbias[c0 + i] = (float)db[i];
        }
    }
}

/* splitmix64's output function of state z. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define GOLDEN64 0x9E3779B97F4A7C15ull

/* The key of one (seed, step, stream): element i keeps when the high 32 bits of splitmix64's i-th
 * output from this key are >= ratio * 2^32. */
static uint64_t dropout_key(const int64_t *seed, uint64_t stream)
{
    uint64_t k = mix64((uint64_t)seed[0] + GOLDEN64 * (stream + 1));
    return mix64(k ^ mix64((uint64_t)seed[1] + GOLDEN64));
}

static uint64_t dropout_threshold(float ratio)
{
    if (!(ratio > 0.0f))
        return 0;
    if (ratio >= 1.0f)
        return (uint64_t)1 << 32;
    return (uint64_t)ceil((double)ratio * 4294967296.0);
}

static bool dropout_keep(uint64_t key, uint64_t thr, size_t i)
{
    return (mix64(key + GOLDEN64 * ((uint64_t)i + 1)) >> 32) >= thr;
}

void dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float ratio, const int64_t *seed,
                     uint64_t stream)
{
    uint64_t key = dropout_key(seed, stream), thr = dropout_threshold(ratio);
    float k = ratio < 1.0f ? 1.0f / (1.0f - ratio) : 0.0f;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        bool keep = dropout_keep(key, thr, i);
        y[i] = keep ? x[i] * k : 0.0f;
        if (mask)
            mask[i] = keep;
    }
}

void dropout_backward(float *dx, const float *dy, size_t n, float ratio, const int64_t *seed, uint64_t stream)
{
    uint64_t key = dropout_key(seed, stream), thr = dropout_threshold(ratio);
    float k = ratio < 1.0f ? 1.0f / (1.0f - ratio) : 0.0f;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dx[i] = dropout_keep(key, thr, i) ? dy[i] * k : 0.0f;
}
