/* quant.c - quantization kernels: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and the
 * integer products MatMulInteger/QLinearMatMul and ConvInteger/QLinearConv. Plain loops with int32
 * accumulation: these ops appear in conformance and small quantized graphs, not in fine-tuning, so
 * they are written to be exact rather than fast. */
#include "kernels.h"

#include <math.h>

/* Element i of a uint8/int8/int32 tensor (0 when p is NULL: an absent zero point). */
static int32_t qget(RtDType t, const void *p, size_t i)
{
    if (!p)
        return 0;
    switch (t) {
    case RT_UINT8: return ((const uint8_t *)p)[i];
    case RT_INT8: return ((const int8_t *)p)[i];
    case RT_INT32: return ((const int32_t *)p)[i];
    default: return 0;
    }
}

/* Store rint(v) + zp saturated to t's range at y[i]. */
static void qput(RtDType t, void *y, size_t i, float v, int32_t zp)
{
    float r = rintf(v) + (float)zp;
    float lo = t == RT_UINT8 ? 0.0f : -128.0f, hi = t == RT_UINT8 ? 255.0f : 127.0f;
    r = r < lo ? lo : r > hi ? hi : r;
    if (t == RT_UINT8)
        ((uint8_t *)y)[i] = (uint8_t)r;
    else
        ((int8_t *)y)[i] = (int8_t)r;
}

void quantize_linear_forward(RtDType yt, void *y, const float *x, const float *scale, const void *zp, size_t n,
                             size_t nscale, size_t inner)
{
    for (size_t i = 0; i < n; i++) {
        size_t c = nscale > 1 ? (i / inner) % nscale : 0;
        qput(yt, y, i, x[i] / scale[c], qget(yt, zp, c));
    }
}

void dequantize_linear_forward(RtDType xt, float *y, const void *x, const float *scale, const void *zp, size_t n,
                               size_t nscale, size_t inner)
{
    for (size_t i = 0; i < n; i++) {
        size_t c = nscale > 1 ? (i / inner) % nscale : 0;
        y[i] = (float)(qget(xt, x, i) - qget(xt, zp, c)) * scale[c];
    }
}

void dynamic_quantize_linear_forward(uint8_t *y, float *scale, uint8_t *zp, const float *x, size_t n)
{
    float lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float s = (hi - lo) / 255.0f;
    uint8_t z;
    qput(RT_UINT8, &z, 0, s != 0 ? -lo / s : 0, 0);
    *scale = s;
    *zp = z;
    for (size_t i = 0; i < n; i++)
        qput(RT_UINT8, y, i, s != 0 ? x[i] / s : 0, z);
}

void matmul_integer_forward(int32_t *y, RtDType at, const void *a, const void *azp, size_t azp_n, RtDType bt,
                            const void *b, const void *bzp, size_t bzp_n, size_t batch, const size_t *aoff,
                            const size_t *boff, size_t m, size_t k, size_t n)
{
    for (size_t t = 0; t < batch; t++)
        for (size_t i = 0; i < m; i++) {
            int32_t za = qget(at, azp, azp_n > 1 ? i : 0);
            for (size_t j = 0; j < n; j++) {
                int32_t zb = qget(bt, bzp, bzp_n > 1 ? j : 0), s = 0;
                for (size_t l = 0; l < k; l++)
                    s += (qget(at, a, aoff[t] + i * k + l) - za) * (qget(bt, b, boff[t] + l * n + j) - zb);
                y[(t * m + i) * n + j] = s;
            }
        }
}

void qlinear_matmul_forward(RtDType yt, void *y, int32_t *acc, RtDType at, const void *a, const float *a_scale,
                            size_t as_n, const void *azp, size_t azp_n, RtDType bt, const void *b, const float *b_scale,
                            size_t bs_n, const void *bzp, size_t bzp_n, const float *y_scale, const void *yzp,
                            size_t batch, const size_t *aoff, const size_t *boff, size_t m, size_t k, size_t n)
{
    matmul_integer_forward(acc, at, a, azp, azp_n, bt, b, bzp, bzp_n, batch, aoff, boff, m, k, n);
    int32_t zy = qget(yt, yzp, 0);
    for (size_t t = 0; t < batch; t++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                size_t o = (t * m + i) * n + j;
                float mult = a_scale[as_n > 1 ? i : 0] * b_scale[bs_n > 1 ? j : 0] / y_scale[0];
                qput(yt, y, o, (float)acc[o] * mult, zy);
            }
}

void conv_integer_forward(int32_t *y, RtDType xt, const void *x, const void *xzp, RtDType wt, const void *w,
                          const void *wzp, size_t wzp_n, size_t n, size_t c_in, size_t c_out, size_t group,
                          const SpatialWindow *win)
{
    size_t nd = win->nd, in_sp = 1, out_sp = 1, k_sp = 1;
    for (size_t d = 0; d < nd; d++) {
        in_sp *= win->in[d];
        out_sp *= win->out[d];
        k_sp *= win->kernel[d];
    }
    size_t cig = c_in / group, cog = c_out / group;
    int32_t zx = qget(xt, xzp, 0);
    for (size_t b = 0; b < n; b++)
        for (size_t co = 0; co < c_out; co++) {
            int32_t zw = qget(wt, wzp, wzp_n > 1 ? co : 0);
            size_t g = co / cog;
            for (size_t o = 0; o < out_sp; o++) {
                size_t opos[RT_MAX_SPATIAL], rem = o;
                for (size_t d = nd; d-- > 0;) {
                    opos[d] = rem % win->out[d];
                    rem /= win->out[d];
                }
                int32_t s = 0;
                for (size_t kk = 0; kk < k_sp; kk++) {
                    size_t kpos[RT_MAX_SPATIAL], kr = kk, xoff = 0;
                    bool inside = true;
                    for (size_t d = nd; d-- > 0;) {
                        kpos[d] = kr % win->kernel[d];
                        kr /= win->kernel[d];
                    }
                    for (size_t d = 0; d < nd && inside; d++) {
                        size_t st = win->stride[d] ? win->stride[d] : 1, dl = win->dilation[d] ? win->dilation[d] : 1;
                        long long p = (long long)(opos[d] * st + kpos[d] * dl) - (long long)win->pad_begin[d];
                        inside = p >= 0 && p < (long long)win->in[d];
                        xoff = xoff * win->in[d] + (size_t)(inside ? p : 0);
                    }
                    if (!inside)
                        continue; /* padding holds the zero point: contributes 0 */
                    for (size_t ci = 0; ci < cig; ci++) {
                        int32_t xv = qget(xt, x, (b * c_in + g * cig + ci) * in_sp + xoff) - zx;
                        int32_t wv = qget(wt, w, (co * cig + ci) * k_sp + kk) - zw;
                        s += xv * wv;
                    }
                }
                y[(b * c_out + co) * out_sp + o] = s;
            }
        }
}

void qlinear_conv_forward(RtDType yt, void *y, int32_t *acc, RtDType xt, const void *x, const float *x_scale,
                          const void *xzp, RtDType wt, const void *w, const float *w_scale, size_t ws_n,
                          const void *wzp, size_t wzp_n, const float *y_scale, const void *yzp, const int32_t *bias,
                          size_t n, size_t c_in, size_t c_out, size_t group, const SpatialWindow *win)
{
    conv_integer_forward(acc, xt, x, xzp, wt, w, wzp, wzp_n, n, c_in, c_out, group, win);
    size_t out_sp = 1;
    for (size_t d = 0; d < win->nd; d++)
        out_sp *= win->out[d];
    int32_t zy = qget(yt, yzp, 0);
    for (size_t b = 0; b < n; b++)
        for (size_t co = 0; co < c_out; co++) {
            float mult = x_scale[0] * w_scale[ws_n > 1 ? co : 0] / y_scale[0];
            for (size_t o = 0; o < out_sp; o++) {
                size_t i = (b * c_out + co) * out_sp + o;
                qput(yt, y, i, (float)(acc[i] + (bias ? bias[co] : 0)) * mult, zy);
            }
        }
}
