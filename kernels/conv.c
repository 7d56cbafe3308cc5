/* conv.c - Conv and ConvTranspose forward kernels (1-D, 2-D, 3-D, groups, strides, dilations, pads).
 * Every geometry is handled as 3-D with leading unit dims. GEMM-shaped work goes to cblas_sgemm,
 * the rest (im2col, col2im, depthwise) is OpenMP loops that each own their output rows, so results
 * do not depend on the thread count. No FFT and no NHWC layouts. 3x3 stride-1 convs (forward and dX)
 * try Winograd F(2x2,3x3) first (conv_wino.c, AVX2); then conv and its gradients try
 * oneDNN (conv_dnnl.c); these paths are the fallback and what they leave to us. The depthwise
 * kernels are in conv_dw.c (a generic and an AVX2 build). */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_geom.h"


static bool is_pointwise(const Geom3 *g)
{
    for (size_t i = 0; i < 3; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->p[i] != 0 || g->in[i] != g->out[i])
            return false;
    return true;
}

/* col[channels*K, out_size] with row stride ld: row (c, kd, kh, kw) holds x[c] sampled under that
 * tap, 0 in the pads. */
static void im2col(float *col, size_t ld, const float *x, size_t channels, const Geom3 *g)
{
    size_t rows = channels * g->k_size;
    #pragma omp parallel for schedule(static) if (rows * g->out_size > 32768)
    for (size_t r = 0; r < rows; r++) {
        size_t c = r / g->k_size, tap = r % g->k_size;
        size_t kw = tap % g->k[2], kh = tap / g->k[2] % g->k[1], kd = tap / (g->k[2] * g->k[1]);
        const float *xc = x + c * g->in_size;
        float *dst = col + r * ld;
        size_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
        valid_range(g->out[0], g->in[0], g->s[0], g->p[0], kd * g->d[0], &d_lo, &d_hi);
        valid_range(g->out[1], g->in[1], g->s[1], g->p[1], kh * g->d[1], &h_lo, &h_hi);
        valid_range(g->out[2], g->in[2], g->s[2], g->p[2], kw * g->d[2], &w_lo, &w_hi);
        size_t plane = g->out[1] * g->out[2];
        for (size_t od = 0; od < g->out[0]; od++) {
            float *dplane = dst + od * plane;
            if (od < d_lo || od >= d_hi) {
                memset(dplane, 0, plane * sizeof(float));
                continue;
            }
            size_t id = od * g->s[0] + kd * g->d[0] - g->p[0];
            /* plain loops, no memset/memcpy calls: rows are short (7-28 floats in late CNN stages),
             * where the calls cost more than the copies (layer4's dW spent a fifth of its time here) */
            size_t ow_n = g->out[2], sw = g->s[2];
            for (size_t oh = 0; oh < g->out[1]; oh++) {
                float *drow = dplane + oh * ow_n;
                if (oh < h_lo || oh >= h_hi || w_lo == w_hi) {
                    for (size_t ow = 0; ow < ow_n; ow++)
                        drow[ow] = 0.0f;
                    continue;
                }
                size_t ih = oh * g->s[1] + kh * g->d[1] - g->p[1];
                /* iw = ow*s + kw*d - p, valid for ow in [w_lo, w_hi). */
                const float *xrow = xc + (id * g->in[1] + ih) * g->in[2] + (kw * g->d[2] + w_lo * sw - g->p[2]);
                for (size_t ow = 0; ow < w_lo; ow++)
                    drow[ow] = 0.0f;
                float *dv = drow + w_lo;
                size_t len = w_hi - w_lo;
                if (sw == 1)
                    for (size_t j = 0; j < len; j++)
                        dv[j] = xrow[j];
                else
                    for (size_t j = 0; j < len; j++)
                        dv[j] = xrow[j * sw];
                for (size_t ow = w_hi; ow < ow_n; ow++)
                    drow[ow] = 0.0f;
            }
        }
    }
}

/* Adds bias[c] to every y[n, c, :]. */
static void add_channel_bias(float *y, const float *bias, size_t n, size_t c, size_t size)
{
    if (!bias)
        return;
    #pragma omp parallel for schedule(static) if (n * c * size > 65536)
    for (size_t nc = 0; nc < n * c; nc++) {
        float b = bias[nc % c], *yp = y + nc * size;
        for (size_t i = 0; i < size; i++)
            yp[i] += b;
    }
}

/* Below this many output positions per image, the images of a batch share one GEMM (N = n * out):
 * BLAS is inefficient on narrow products such as the 7x7 maps of late ResNet stages. Measured at
 * batch 16, 1 thread: +6% at 7x7 (512 channels), -8% at 14x14 (256 channels), hence 128. */
enum { FOLD_BELOW = 128 };

static bool folds_batch(size_t n, const Geom3 *g)
{
    return n > 1 && g->out_size < FOLD_BELOW && !rt_samples_apart();  /* apart: a GEMM per image */
}

size_t conv_forward_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                              const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    if (c_in / group == 1)
        return 0;
    if (folds_batch(n, &g)) /* col[kdim, n*out] and the product [cout_g, n*out] */
        return (c_in / group * g.k_size + c_out / group) * n * g.out_size * sizeof(float);
    if (is_pointwise(&g))
        return 0;
    return c_in / group * g.k_size * g.out_size * sizeof(float);
}

/* Conv with the batch folded into the GEMM's N: per group, col[kdim, n*out] from every image, one
 * sgemm into prod[cout_g, n*out], then each image's block copied to y. */
static void conv_folded(float *y, const float *x, const float *w, size_t n, size_t c_in, size_t c_out,
                        size_t group, const Geom3 *g, float *workspace)
{
    size_t cin_g = c_in / group, cout_g = c_out / group, kdim = cin_g * g->k_size;
    size_t cols = n * g->out_size;
    float *col = workspace, *prod = workspace + kdim * cols;
    for (size_t gr = 0; gr < group; gr++) {
        for (size_t b = 0; b < n; b++)
            im2col(col + b * g->out_size, cols, x + (b * c_in + gr * cin_g) * g->in_size, cin_g, g);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout_g, (int)cols, (int)kdim, 1.0f,
                    w + gr * cout_g * kdim, (int)kdim, col, (int)cols, 0.0f, prod, (int)cols);
        #pragma omp parallel for schedule(static) if (cout_g * cols > 65536)
        for (size_t t = 0; t < n * cout_g; t++) {
            size_t b = t / cout_g, oc = t % cout_g;
            memcpy(y + (b * c_out + gr * cout_g + oc) * g->out_size, prod + oc * cols + b * g->out_size,
                   g->out_size * sizeof(float));
        }
    }
}

void conv_forward(float *y, const float *x, const float *w, const float *bias,
                  size_t n, size_t c_in, size_t c_out, size_t group,
                  const SpatialWindow *win, float *workspace)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    size_t cin_g = c_in / group, cout_g = c_out / group;
    if (n == 0 || c_out == 0 || g.out_size == 0)
        return;
    if (conv_wino_forward(y, x, w, bias, NULL, n, c_in, c_out, group, win, NULL, 0))
        return;
    if (conv_dnnl(CONV_DNNL_FORWARD, y, x, w, bias, n, c_in, c_out, group, win, NULL))
        return;
    if (cin_g == 1) {
        conv_dw_forward(y, x, w, bias, n, c_in, c_out, &g, NULL);
        return;
    }
    size_t kdim = cin_g * g.k_size;
    if (kdim > 0 && folds_batch(n, &g)) {
        conv_folded(y, x, w, n, c_in, c_out, group, &g, workspace);
        add_channel_bias(y, bias, n, c_out, g.out_size);
        return;
    }
    bool pointwise = is_pointwise(&g);
    for (size_t b = 0; b < n; b++) {
        for (size_t gr = 0; gr < group; gr++) {
            const float *xg = x + (b * c_in + gr * cin_g) * g.in_size;
            const float *wg = w + gr * cout_g * kdim;
            float *yg = y + (b * c_out + gr * cout_g) * g.out_size;
            const float *cols = xg;
            if (!pointwise) {
                im2col(workspace, g.out_size, xg, cin_g, &g);
                cols = workspace;
            }
            /* yg[cout_g, out_size] = wg[cout_g, kdim] @ cols[kdim, out_size] */
            if (kdim == 0)
                memset(yg, 0, cout_g * g.out_size * sizeof(float));
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout_g, (int)g.out_size,
                            (int)kdim, 1.0f, wg, (int)kdim, cols, (int)g.out_size, 0.0f, yg,
                            (int)g.out_size);
        }
    }
    add_channel_bias(y, bias, n, c_out, g.out_size);
}

/* ---- forward with a fused epilogue (ConvEpilogue, ir/pass_fuse.c) ---- */

static size_t align_floats(size_t count)
{
    return (count + 15) / 16 * 16; /* 64 bytes */
}

size_t conv_forward_fused_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                    const SpatialWindow *win, bool has_bn)
{
    size_t ws = conv_forward_workspace(n, c_in, c_out, group, win);
    if (has_bn) {
        Geom3 g = geom3_from(win);
        size_t cin_g = c_in / (group ? group : 1);
        ws += (align_floats(c_out * cin_g * g.k_size) + align_floats(c_out)) * sizeof(float);
    }
    return ws;
}

static float apply_act(float v, const ConvAct *a)
{
    if (a->kind == CONV_ACT_RELU)
        return v < 0.0f ? 0.0f : v; /* NaN stays NaN, as Relu */
    if (a->kind == CONV_ACT_CLIP)
        return v < a->lo ? a->lo : v > a->hi ? a->hi : v;
    return v;
}

void conv_forward_fused(float *y, const float *x, const float *w, const float *bias,
                        size_t n, size_t c_in, size_t c_out, size_t group,
                        const SpatialWindow *win, const ConvEpilogue *ep, float *workspace)
{
    Geom3 g = geom3_from(win);
    size_t cin_g = c_in / (group ? group : 1), per_oc = cin_g * g.k_size;
    if (n == 0 || c_out == 0 || g.out_size == 0)
        return;
    if (ep->bn_scale) { /* fold the BatchNormalization into a copy of w and bias */
        float *wf = workspace, *bf = workspace + align_floats(c_out * per_oc);
        workspace = bf + align_floats(c_out);
        #pragma omp parallel for schedule(static) if (c_out * per_oc > 65536)
        for (size_t oc = 0; oc < c_out; oc++) {
            float s = (float)((double)ep->bn_scale[oc] / sqrt((double)ep->bn_var[oc] + (double)ep->bn_eps));
            for (size_t i = 0; i < per_oc; i++)
                wf[oc * per_oc + i] = w[oc * per_oc + i] * s;
            bf[oc] = ((bias ? bias[oc] : 0.0f) - ep->bn_mean[oc]) * s + ep->bn_bias[oc];
        }
        w = wf;
        bias = bf;
    }
    if (conv_wino_forward(y, x, w, bias, ep->sum, n, c_in, c_out, group, win, &ep->act, 0) ||
        conv_dnnl_forward_sum(y, x, w, bias, ep->sum, n, c_in, c_out, group, win, &ep->act))
        return;
    if (cin_g == 1 && !ep->sum) { /* depthwise: the activation on each plane as it is computed */
        conv_dw_forward(y, x, w, bias, n, c_in, c_out, &g, &ep->act);
        return;
    }
    conv_forward(y, x, w, bias, n, c_in, c_out, group, win, workspace);
    if (!ep->sum && ep->act.kind == CONV_ACT_NONE)
        return;
    size_t total = n * c_out * g.out_size;
    const float *sum = ep->sum;
    const ConvAct act = ep->act;
    #pragma omp parallel for schedule(static) if (total > 65536)
    for (size_t i = 0; i < total; i++)
        y[i] = apply_act(sum ? y[i] + sum[i] : y[i], &act);
}

/* A plain copy of an nChw8c tensor (or room for one: src NULL); aborts when out of memory rather than
 * compute on the wrong layout (the kernels return no status). */
static float *plain_copy(const float *src, size_t n, size_t c, size_t spatial)
{
    size_t bytes = (n * c * spatial * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "onnxtune: out of memory (%zu bytes for a conv's plain copy)\n", bytes);
        abort();
    }
    if (src)
        layout_from_blocked(p, src, n, c, spatial);
    return p;
}

void conv_forward_layout(float *y, const float *x, const float *w, const float *bias, size_t n, size_t c_in,
                         size_t c_out, size_t group, const SpatialWindow *win, const ConvEpilogue *ep,
                         unsigned layout, float *workspace)
{
    static const ConvEpilogue none = {0};
    if (!ep)
        ep = &none;
    Geom3 g = geom3_from(win);
    if (n == 0 || c_out == 0 || g.out_size == 0)
        return;
    if (!layout) {
        conv_forward_fused(y, x, w, bias, n, c_in, c_out, group, win, ep, workspace);
        return;
    }
    ConvEpilogue e = *ep;
    if (ep->bn_scale) { /* fold the BatchNormalization here too (conv_forward_fused's layout) */
        size_t per_oc = c_in / (group ? group : 1) * g.k_size;
        float *wf = workspace, *bf = workspace + align_floats(c_out * per_oc);
        workspace = bf + align_floats(c_out);
        #pragma omp parallel for schedule(static) if (c_out * per_oc > 65536)
        for (size_t oc = 0; oc < c_out; oc++) {
            float sc = (float)((double)ep->bn_scale[oc] / sqrt((double)ep->bn_var[oc] + (double)ep->bn_eps));
            for (size_t i = 0; i < per_oc; i++)
                wf[oc * per_oc + i] = w[oc * per_oc + i] * sc;
            bf[oc] = ((bias ? bias[oc] : 0.0f) - ep->bn_mean[oc]) * sc + ep->bn_bias[oc];
        }
        w = wf;
        bias = bf;
        e.bn_scale = e.bn_bias = e.bn_mean = e.bn_var = NULL;
        layout &= ~(unsigned)CONV_W_CONST; /* folded into the workspace on every call */
    }
    if (conv_wino_forward(y, x, w, bias, e.sum, n, c_in, c_out, group, win, &e.act, layout) ||
        conv_dnnl_forward_layout(y, x, w, bias, e.sum, n, c_in, c_out, group, win, &e.act, layout))
        return;
    /* oneDNN declined: the plain path on plain copies of the blocked tensors */
    float *xp = layout & CONV_X_BLOCKED ? plain_copy(x, n, c_in, g.in_size) : NULL;
    float *sp = e.sum && (layout & CONV_SUM_BLOCKED) ? plain_copy(e.sum, n, c_out, g.out_size) : NULL;
    float *yp = layout & CONV_Y_BLOCKED ? plain_copy(NULL, n, c_out, g.out_size) : NULL;
    if (sp)
        e.sum = sp;
    conv_forward_fused(yp ? yp : y, xp ? xp : x, w, bias, n, c_in, c_out, group, win, &e, workspace);
    if (yp)
        layout_to_blocked(y, yp, n, c_out, g.out_size);
    free(xp);
    free(sp);
    free(yp);
}

/* y[c, :] += col[(c, tap), i] at o = i*s - p + tap*d, for every channel c (each thread owns whole
 * output channels, and taps are added in a fixed order). */
static void col2im(float *y, const float *col, size_t channels, const Geom3 *g)
{
    #pragma omp parallel for schedule(static) if (channels * g->k_size * g->in_size > 32768)
    for (size_t c = 0; c < channels; c++) {
        float *yc = y + c * g->out_size;
        for (size_t tap = 0; tap < g->k_size; tap++) {
            size_t kw = tap % g->k[2], kh = tap / g->k[2] % g->k[1], kd = tap / (g->k[2] * g->k[1]);
            const float *src = col + (c * g->k_size + tap) * g->in_size;
            /* Input positions i whose output o = i*s - p + k*d lies in [0, out). */
            size_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
            valid_range(g->in[0], g->out[0], g->s[0], g->p[0], kd * g->d[0], &d_lo, &d_hi);
            valid_range(g->in[1], g->out[1], g->s[1], g->p[1], kh * g->d[1], &h_lo, &h_hi);
            valid_range(g->in[2], g->out[2], g->s[2], g->p[2], kw * g->d[2], &w_lo, &w_hi);
            if (w_lo == w_hi)
                continue;
            size_t sw = g->s[2];
            for (size_t id = d_lo; id < d_hi; id++) {
                size_t od = id * g->s[0] + kd * g->d[0] - g->p[0];
                for (size_t ih = h_lo; ih < h_hi; ih++) {
                    size_t oh = ih * g->s[1] + kh * g->d[1] - g->p[1];
                    const float *sr = src + (id * g->in[1] + ih) * g->in[2];
                    size_t ow0 = w_lo * sw + kw * g->d[2] - g->p[2];
                    float *yr = yc + (od * g->out[1] + oh) * g->out[2] + ow0;
                    size_t len = w_hi - w_lo;
                    if (sw == 1)
                        for (size_t i = 0; i < len; i++)
                            yr[i] += sr[w_lo + i];
                    else
                        for (size_t i = 0; i < len; i++)
                            yr[i * sw] += sr[w_lo + i];
                }
            }
        }
    }
}

size_t conv_transpose_forward_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                        const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    if (is_pointwise(&g))
        return 0;
    return c_out / group * g.k_size * g.in_size * sizeof(float);
}

void conv_transpose_forward(float *y, const float *x, const float *w, const float *bias,
                            size_t n, size_t c_in, size_t c_out, size_t group,
                            const SpatialWindow *win, float *workspace)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    size_t cin_g = c_in / group, cout_g = c_out / group;
    if (n == 0 || c_out == 0 || g.out_size == 0)
        return;
    bool pointwise = is_pointwise(&g);
    size_t rows = cout_g * g.k_size;
    for (size_t b = 0; b < n; b++) {
        for (size_t gr = 0; gr < group; gr++) {
            const float *xg = x + (b * c_in + gr * cin_g) * g.in_size;
            const float *wg = w + gr * cin_g * rows;
            float *yg = y + (b * c_out + gr * cout_g) * g.out_size;
            float *cols = pointwise ? yg : workspace;
            /* cols[cout_g*K, in_size] = wg[cin_g, cout_g*K]^T @ xg[cin_g, in_size] */
            if (cin_g == 0)
                memset(cols, 0, rows * g.in_size * sizeof(float));
            else
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)g.in_size,
                            (int)cin_g, 1.0f, wg, (int)rows, xg, (int)g.in_size, 0.0f, cols,
                            (int)g.in_size);
            if (!pointwise) {
                memset(yg, 0, cout_g * g.out_size * sizeof(float));
                col2im(yg, cols, cout_g, &g);
            }
        }
    }
    add_channel_bias(y, bias, n, c_out, g.out_size);
}

/* ---- backward ------------------------------------------------------------------------------------
 * The gradients of conv_forward: dx through W^T @ dY and col2im (the adjoint of im2col), dW through
 * dY @ im2col(x)^T summed over images, both with the same paths as forward (depthwise direct, batch
 * folded into the GEMM for small outputs, 1x1 without im2col). The bias gradient is a ReduceSum in
 * the IR. Kernels write (never accumulate into) their outputs. */

/* dx[c, i] += col[(c, tap), o] wherever i = o*s - p + tap*d: col[channels*K, out_size] has row stride
 * ld. Each thread owns whole channels of dx and adds taps in a fixed order. */
static void col2im_add(float *dx, const float *col, size_t ld, size_t channels, const Geom3 *g)
{
    #pragma omp parallel for schedule(static) if (channels * g->k_size * g->out_size > 32768)
    for (size_t c = 0; c < channels; c++) {
        float *xc = dx + c * g->in_size;
        for (size_t tap = 0; tap < g->k_size; tap++) {
            size_t kw = tap % g->k[2], kh = tap / g->k[2] % g->k[1], kd = tap / (g->k[2] * g->k[1]);
            const float *src = col + (c * g->k_size + tap) * ld;
            size_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
            valid_range(g->out[0], g->in[0], g->s[0], g->p[0], kd * g->d[0], &d_lo, &d_hi);
            valid_range(g->out[1], g->in[1], g->s[1], g->p[1], kh * g->d[1], &h_lo, &h_hi);
            valid_range(g->out[2], g->in[2], g->s[2], g->p[2], kw * g->d[2], &w_lo, &w_hi);
            if (w_lo == w_hi)
                continue;
            size_t sw = g->s[2], len = w_hi - w_lo;
            for (size_t od = d_lo; od < d_hi; od++) {
                size_t id = od * g->s[0] + kd * g->d[0] - g->p[0];
                for (size_t oh = h_lo; oh < h_hi; oh++) {
                    size_t ih = oh * g->s[1] + kh * g->d[1] - g->p[1];
                    const float *sr = src + (od * g->out[1] + oh) * g->out[2] + w_lo;
                    float *xr = xc + (id * g->in[1] + ih) * g->in[2] + (w_lo * sw + kw * g->d[2] - g->p[2]);
                    if (sw == 1)
                        for (size_t i = 0; i < len; i++)
                            xr[i] += sr[i];
                    else
                        for (size_t i = 0; i < len; i++)
                            xr[i * sw] += sr[i];
                }
            }
        }
    }
}

/* dst[rows, n*size] <- the group's rows of every image of src[n, stride_rows, size] starting at row
 * `first` (the images side by side, as the folded GEMMs want them). */
static void gather_images(float *dst, const float *src, size_t n, size_t stride_rows, size_t first,
                          size_t rows, size_t size)
{
    #pragma omp parallel for schedule(static) if (n * rows * size > 65536)
    for (size_t t = 0; t < n * rows; t++) {
        size_t b = t / rows, r = t % rows;
        memcpy(dst + r * n * size + b * size, src + (b * stride_rows + first + r) * size, size * sizeof(float));
    }
}

size_t conv_backward_input_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                     const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    size_t cin_g = c_in / group, cout_g = c_out / group;
    if (cin_g == 1)
        return 0;
    if (folds_batch(n, &g)) /* dY gathered [cout_g, n*out] and col [kdim, n*out] */
        return (cout_g + cin_g * g.k_size) * n * g.out_size * sizeof(float);
    if (is_pointwise(&g))
        return 0;
    return cin_g * g.k_size * g.out_size * sizeof(float);
}

void conv_backward_input(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                         size_t group, const SpatialWindow *win, float *workspace)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    size_t cin_g = c_in / group, cout_g = c_out / group, kdim = cin_g * g.k_size;
    if (n == 0 || c_in == 0 || g.in_size == 0)
        return;
    if (cout_g == 0 || g.out_size == 0) {
        memset(dx, 0, n * c_in * g.in_size * sizeof(float));
        return;
    }
    if (conv_wino_backward_input(dx, dy, w, n, c_in, c_out, group, win) ||
        conv_dnnl(CONV_DNNL_BACKWARD_INPUT, dx, dy, w, NULL, n, c_in, c_out, group, win, NULL))
        return;
    if (cin_g == 1) {
        conv_dw_backward_input(dx, dy, w, n, c_in, c_out, &g);
        return;
    }
    if (folds_batch(n, &g)) {
        size_t cols = n * g.out_size;
        float *dyc = workspace, *col = workspace + cout_g * cols;
        for (size_t gr = 0; gr < group; gr++) {
            gather_images(dyc, dy, n, c_out, gr * cout_g, cout_g, g.out_size);
            /* col[kdim, n*out] = w_g[cout_g, kdim]^T @ dyc[cout_g, n*out] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kdim, (int)cols, (int)cout_g, 1.0f,
                        w + gr * cout_g * kdim, (int)kdim, dyc, (int)cols, 0.0f, col, (int)cols);
            for (size_t b = 0; b < n; b++) {
                float *xg = dx + (b * c_in + gr * cin_g) * g.in_size;
                memset(xg, 0, cin_g * g.in_size * sizeof(float));
                col2im_add(xg, col + b * g.out_size, cols, cin_g, &g);
            }
        }
        return;
    }
    bool pointwise = is_pointwise(&g);
    for (size_t b = 0; b < n; b++)
        for (size_t gr = 0; gr < group; gr++) {
            const float *yg = dy + (b * c_out + gr * cout_g) * g.out_size;
            float *xg = dx + (b * c_in + gr * cin_g) * g.in_size;
            float *col = pointwise ? xg : workspace;
            /* col[kdim, out] = w_g[cout_g, kdim]^T @ yg[cout_g, out] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kdim, (int)g.out_size, (int)cout_g, 1.0f,
                        w + gr * cout_g * kdim, (int)kdim, yg, (int)g.out_size, 0.0f, col, (int)g.out_size);
            if (!pointwise) {
                memset(xg, 0, cin_g * g.in_size * sizeof(float));
                col2im_add(xg, col, g.out_size, cin_g, &g);
            }
        }
}

size_t conv_backward_weight_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                      const SpatialWindow *win)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    size_t cin_g = c_in / group, cout_g = c_out / group;
    if (cin_g == 1)
        return 0;
    if (folds_batch(n, &g)) /* col [kdim, n*out] and dY gathered [cout_g, n*out] */
        return (cin_g * g.k_size + cout_g) * n * g.out_size * sizeof(float);
    if (is_pointwise(&g))
        return 0;
    return cin_g * g.k_size * g.out_size * sizeof(float);
}

void conv_backward_weight(float *dw, const float *dy, const float *x, size_t n, size_t c_in, size_t c_out,
                          size_t group, const SpatialWindow *win, float *workspace)
{
    Geom3 g = geom3_from(win);
    if (group == 0)
        group = 1;
    size_t cin_g = c_in / group, cout_g = c_out / group, kdim = cin_g * g.k_size;
    if (c_out == 0 || kdim == 0)
        return;
    if (n == 0 || g.out_size == 0) {
        memset(dw, 0, c_out * kdim * sizeof(float));
        return;
    }
    if (conv_dnnl(CONV_DNNL_BACKWARD_WEIGHT, dw, dy, x, NULL, n, c_in, c_out, group, win, NULL))
        return;
    if (cin_g == 1) {
        conv_dw_backward_weight(dw, dy, x, n, c_in, c_out, &g);
        return;
    }
    if (folds_batch(n, &g)) {
        size_t cols = n * g.out_size;
        float *col = workspace, *dyc = workspace + kdim * cols;
        for (size_t gr = 0; gr < group; gr++) {
            for (size_t b = 0; b < n; b++)
                im2col(col + b * g.out_size, cols, x + (b * c_in + gr * cin_g) * g.in_size, cin_g, &g);
            gather_images(dyc, dy, n, c_out, gr * cout_g, cout_g, g.out_size);
            /* dw_g[cout_g, kdim] = dyc[cout_g, n*out] @ col[kdim, n*out]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cout_g, (int)kdim, (int)cols, 1.0f, dyc,
                        (int)cols, col, (int)cols, 0.0f, dw + gr * cout_g * kdim, (int)kdim);
        }
        return;
    }
    bool pointwise = is_pointwise(&g);
    for (size_t b = 0; b < n; b++)
        for (size_t gr = 0; gr < group; gr++) {
            const float *xg = x + (b * c_in + gr * cin_g) * g.in_size;
            const float *yg = dy + (b * c_out + gr * cout_g) * g.out_size;
            const float *cols = xg;
            if (!pointwise) {
                im2col(workspace, g.out_size, xg, cin_g, &g);
                cols = workspace;
            }
            /* dw_g[cout_g, kdim] (+)= yg[cout_g, out] @ cols[kdim, out]^T, images in order */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cout_g, (int)kdim, (int)g.out_size, 1.0f,
                        yg, (int)g.out_size, cols, (int)g.out_size, b ? 1.0f : 0.0f, dw + gr * cout_g * kdim,
                        (int)kdim);
        }
}
