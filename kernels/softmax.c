/* softmax.c - Softmax, LogSoftmax and Hardmax along one axis of [outer, axis, inner], forward, and
 * the backward of Softmax and LogSoftmax. Max-subtracted, sums in double; contiguous rows when
 * inner == 1, otherwise tiles of the inner dim so memory is read in order. No online (single-pass)
 * softmax. Softmax's contiguous rows (attention) take erf.c's vector exp (exp_sub_f32), the rest expf. */
#include "kernels.h"

#include <math.h>

enum { TILE = 64 };

typedef enum SoftmaxKind { SM_SOFTMAX, SM_LOG_SOFTMAX } SoftmaxKind;

static void softmax_row(float *y, const float *x, size_t len, SoftmaxKind kind)
{
    float mx = -INFINITY;
    for (size_t i = 0; i < len; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    if (kind == SM_SOFTMAX) {
        sum = exp_sub_f32(y, x, mx, len);  /* erf.c's vector exp (attention rows) */
        float inv = (float)(1.0 / sum);
        for (size_t i = 0; i < len; i++)
            y[i] *= inv;
    } else {
        for (size_t i = 0; i < len; i++)
            sum += expf(x[i] - mx);
        /* (x - max) first: max + log(sum) would round away the small differences of large logits. */
        float lse = (float)log(sum);
        for (size_t i = 0; i < len; i++)
            y[i] = (x[i] - mx) - lse;
    }
}

/* x, y: [axis, inner] starting at column j0, `width` <= TILE columns. */
static void softmax_tile(float *y, const float *x, size_t axis, size_t inner, size_t width,
                         SoftmaxKind kind)
{
    float mx[TILE];
    double sum[TILE];
    for (size_t j = 0; j < width; j++) {
        mx[j] = -INFINITY;
        sum[j] = 0.0;
    }
    for (size_t a = 0; a < axis; a++)
        for (size_t j = 0; j < width; j++)
            mx[j] = x[a * inner + j] > mx[j] ? x[a * inner + j] : mx[j];
    for (size_t a = 0; a < axis; a++)
        for (size_t j = 0; j < width; j++) {
            float e = expf(x[a * inner + j] - mx[j]);
            if (kind == SM_SOFTMAX)
                y[a * inner + j] = e;
            sum[j] += e;
        }
    if (kind == SM_SOFTMAX) {
        float inv[TILE];
        for (size_t j = 0; j < width; j++)
            inv[j] = (float)(1.0 / sum[j]);
        for (size_t a = 0; a < axis; a++)
            for (size_t j = 0; j < width; j++)
                y[a * inner + j] *= inv[j];
    } else {
        float lse[TILE];
        for (size_t j = 0; j < width; j++)
            lse[j] = (float)log(sum[j]);
        for (size_t a = 0; a < axis; a++)
            for (size_t j = 0; j < width; j++)
                y[a * inner + j] = (x[a * inner + j] - mx[j]) - lse[j];
    }
}

static void softmax_any(float *y, const float *x, size_t outer, size_t axis, size_t inner,
                        SoftmaxKind kind)
{
    if (inner == 1) {
        #pragma omp parallel for schedule(static) if (outer * axis > 16384)
        for (size_t o = 0; o < outer; o++)
            softmax_row(y + o * axis, x + o * axis, axis, kind);
        return;
    }
    size_t tiles = (inner + TILE - 1) / TILE;
    #pragma omp parallel for schedule(static) if (outer * axis * inner > 16384)
    for (size_t t = 0; t < outer * tiles; t++) {
        size_t o = t / tiles, j0 = t % tiles * TILE;
        size_t width = inner - j0 < TILE ? inner - j0 : TILE;
        size_t off = o * axis * inner + j0;
        softmax_tile(y + off, x + off, axis, inner, width, kind);
    }
}

void softmax_forward(float *y, const float *x, size_t outer, size_t axis, size_t inner)
{
    softmax_any(y, x, outer, axis, inner, SM_SOFTMAX);
}

void logsoftmax_forward(float *y, const float *x, size_t outer, size_t axis, size_t inner)
{
    softmax_any(y, x, outer, axis, inner, SM_LOG_SOFTMAX);
}

void hardmax_forward(float *y, const float *x, size_t outer, size_t axis, size_t inner)
{
    #pragma omp parallel for schedule(static) if (outer * axis * inner > 65536)
    for (size_t t = 0; t < outer * inner; t++) {
        size_t o = t / inner, j = t % inner;
        const float *xp = x + o * axis * inner + j;
        float *yp = y + o * axis * inner + j;
        size_t best = 0;
        for (size_t a = 1; a < axis; a++)
            if (xp[a * inner] > xp[best * inner])
                best = a;
        for (size_t a = 0; a < axis; a++)
            yp[a * inner] = 0.0f;
        if (axis)
            yp[best * inner] = 1.0f;
    }
}

/* ------------------------------------------------------------------------ backward */

/* Softmax: dx = y * (dy - sum_a dy*y); LogSoftmax: dx = dy - exp(y) * sum_a dy. x, y: [axis, inner]
 * from column j0, width <= TILE columns (a row when inner == 1). */
static void softmax_backward_tile(float *dx, const float *dy, const float *y, size_t axis, size_t inner,
                                  size_t width, SoftmaxKind kind)
{
    double sum[TILE];
    for (size_t j = 0; j < width; j++)
        sum[j] = 0.0;
    for (size_t a = 0; a < axis; a++)
        for (size_t j = 0; j < width; j++) {
            size_t k = a * inner + j;
            sum[j] += kind == SM_SOFTMAX ? (double)dy[k] * y[k] : (double)dy[k];
        }
    float s[TILE];
    for (size_t j = 0; j < width; j++)
        s[j] = (float)sum[j];
    for (size_t a = 0; a < axis; a++)
        for (size_t j = 0; j < width; j++) {
            size_t k = a * inner + j;
            dx[k] = kind == SM_SOFTMAX ? y[k] * (dy[k] - s[j]) : dy[k] - expf(y[k]) * s[j];
        }
}

/* Softmax's backward along a contiguous row (attention): the dot product in eight double lanes, not one
 * latency-bound chain (the tile path above took ~9 ns an element on the ViT's rows of 65). */
static void softmax_backward_row(float *dx, const float *dy, const float *y, size_t len)
{
    enum { LANES = 8 };
    double acc[LANES] = {0};
    size_t i = 0, full = len - len % LANES;
    for (; i < full; i += LANES)
        for (int j = 0; j < LANES; j++)
            acc[j] += (double)dy[i + j] * y[i + j];
    double sum = 0.0;
    for (int j = 0; j < LANES; j++)
        sum += acc[j];
    for (; i < len; i++)
        sum += (double)dy[i] * y[i];
    float s = (float)sum;
    for (i = 0; i < len; i++)
        dx[i] = y[i] * (dy[i] - s);
}

static void softmax_backward_any(float *dx, const float *dy, const float *y, size_t outer, size_t axis,
                                 size_t inner, SoftmaxKind kind)
{
    if (inner == 1 && kind == SM_SOFTMAX) {
        #pragma omp parallel for schedule(static) if (outer * axis > 16384)
        for (size_t o = 0; o < outer; o++)
            softmax_backward_row(dx + o * axis, dy + o * axis, y + o * axis, axis);
        return;
    }
    size_t tiles = (inner + TILE - 1) / TILE;
    #pragma omp parallel for schedule(static) if (outer * axis * inner > 16384)
    for (size_t t = 0; t < outer * tiles; t++) {
        size_t o = t / tiles, j0 = t % tiles * TILE;
        size_t width = inner - j0 < TILE ? inner - j0 : TILE;
        size_t off = o * axis * inner + j0;
        softmax_backward_tile(dx + off, dy + off, y + off, axis, inner, width, kind);
    }
}

void softmax_backward(float *dx, const float *dy, const float *y, size_t outer, size_t axis, size_t inner)
{
    softmax_backward_any(dx, dy, y, outer, axis, inner, SM_SOFTMAX);
}

void logsoftmax_backward(float *dx, const float *dy, const float *y, size_t outer, size_t axis, size_t inner)
{
    softmax_backward_any(dx, dy, y, outer, axis, inner, SM_LOG_SOFTMAX);
}
