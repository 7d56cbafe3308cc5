/* conv_geom.h - what kernels/conv.c and kernels/conv_dw.c share (internal to kernels/): the 3-D view of
 * a SpatialWindow, valid tap ranges, and the depthwise kernels conv_dw.c picks per ISA. */
#ifndef ONNXTUNE_CONV_GEOM_H
#define ONNXTUNE_CONV_GEOM_H

#include "kernels.h"

/* A SpatialWindow right-aligned into 3 dims, plus the products the kernels need. */
typedef struct Geom3 {
    size_t in[3], out[3], k[3], s[3], d[3], p[3];
    size_t in_size, out_size, k_size;
} Geom3;

static inline Geom3 geom3_from(const SpatialWindow *win)
{
    Geom3 g;
    size_t shift = 3 - win->nd;
    for (size_t i = 0; i < 3; i++) {
        g.in[i] = g.out[i] = g.k[i] = g.s[i] = g.d[i] = 1;
        g.p[i] = 0;
    }
    for (size_t i = 0; i < win->nd; i++) {
        g.in[shift + i] = win->in[i];
        g.out[shift + i] = win->out[i];
        g.k[shift + i] = win->kernel[i];
        g.s[shift + i] = win->stride[i] ? win->stride[i] : 1;
        g.d[shift + i] = win->dilation[i] ? win->dilation[i] : 1;
        g.p[shift + i] = win->pad_begin[i];
    }
    g.in_size = g.in[0] * g.in[1] * g.in[2];
    g.out_size = g.out[0] * g.out[1] * g.out[2];
    g.k_size = g.k[0] * g.k[1] * g.k[2];
    return g;
}

/* The range [*lo, *hi) of positions o in [0, n) with 0 <= o*s - p + off < limit. */
static inline void valid_range(size_t n, size_t limit, size_t s, size_t p, size_t off, size_t *lo, size_t *hi)
{
    /* o*s >= p - off  and  o*s < limit + p - off */
    long long low = (long long)p - (long long)off;
    long long high = (long long)limit + (long long)p - (long long)off;
    size_t l = low <= 0 ? 0 : (size_t)((low + (long long)s - 1) / (long long)s);
    size_t h = high <= 0 ? 0 : (size_t)((high + (long long)s - 1) / (long long)s);
    if (h > n)
        h = n;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* Depthwise (one input channel per group, any channel multiplier) forward, dX and dW on x[N, C_in, ...],
 * y/dy[N, C_out, ...], w[C_out, 1, kernel...]: the AVX2+FMA build where the CPU has it (unless
 * ONNXTUNE_DW_ISA=generic), else the baseline build; conv_depthwise_isa() says which. The forward applies
 * act (NULL: none) to each plane as it finishes. */
void conv_dw_forward(float *y, const float *x, const float *w, const float *bias, size_t n, size_t c_in,
                     size_t c_out, const Geom3 *g, const ConvAct *act);
void conv_dw_backward_input(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                            const Geom3 *g);
void conv_dw_backward_weight(float *dw, const float *dy, const float *x, size_t n, size_t c_in, size_t c_out,
                             const Geom3 *g);

#endif
