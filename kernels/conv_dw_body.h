/* conv_dw_body.h - the depthwise conv kernels, included twice by kernels/conv_dw.c: once for baseline
 * x86-64 and once under #pragma GCC target("avx2,fma") with DW_AVX2 defined, where the 3x3 interior
 * rows use 8-wide vector loads and FMAs (stride 1 and 2) and the other loops are vectorised by gcc.
 * DW(name) gives each build its own names. No include guard: meant to be included more than once. */

/* A 2-D 3x3 single-channel conv plane. Rows whose three input rows all exist sum the nine taps in
 * registers over the columns where all taps are inside x (one store per output); their edge columns
 * check the column of each tap, and the edge rows go tap by tap over valid ranges. */
static void DW(dw_plane_3x3)(float *yp, const float *xp, const float *wp, float init, const Geom3 *g)
{
    size_t W = g->in[2], H = g->in[1], OH = g->out[1], OW = g->out[2];
    size_t sw = g->s[2], dh = g->d[1], dw = g->d[2], pw = g->p[2];
    size_t lo[3], hi[3]; /* valid output columns of each kw */
    for (size_t kw = 0; kw < 3; kw++)
        valid_range(OW, W, sw, pw, kw * dw, &lo[kw], &hi[kw]);
    size_t c_lo = lo[0] > lo[2] ? lo[0] : lo[2], c_hi = hi[0] < hi[2] ? hi[0] : hi[2];
    if (c_lo > c_hi)
        c_lo = c_hi;
    float w0 = wp[0], w1 = wp[1], w2 = wp[2], w3 = wp[3], w4 = wp[4], w5 = wp[5], w6 = wp[6], w7 = wp[7], w8 = wp[8];
    for (size_t oh = 0; oh < OH; oh++) {
        float *yr = yp + oh * OW;
        long long ih0 = (long long)(oh * g->s[1]) - (long long)g->p[1];
        if (ih0 >= 0 && ih0 + 2 * (long long)dh < (long long)H) {
            const float *a = xp + (size_t)ih0 * W, *b = a + dh * W, *c = b + dh * W;
            /* edge columns: [0, c_lo) and [c_hi, OW), or every column if no interior */
            size_t edge_end = c_lo < c_hi ? c_lo : OW;
            for (size_t ow = 0; ow < OW; ow++) {
                if (ow == edge_end) {
                    ow = c_hi;
                    if (ow >= OW)
                        break;
                }
                float acc = init;
                for (size_t kw = 0; kw < 3; kw++)
                    if (ow >= lo[kw] && ow < hi[kw]) {
                        size_t iw = ow * sw + kw * dw - pw;
                        acc += wp[kw] * a[iw] + wp[3 + kw] * b[iw] + wp[6 + kw] * c[iw];
                    }
                yr[ow] = acc;
            }
            if (c_lo == c_hi)
                continue;
            const float *a0 = a + (c_lo * sw - pw), *b0 = b + (c_lo * sw - pw), *c0 = c + (c_lo * sw - pw);
            float *yo = yr + c_lo;
            size_t len = c_hi - c_lo, i0 = 0;
#ifdef DW_AVX2
            i0 = dw_interior_avx2(yo, a0, b0, c0, wp, init, len, sw, dw);
#endif
            if (sw == 1)
                for (size_t i = i0; i < len; i++)
                    yo[i] = init + w0 * a0[i] + w1 * a0[i + dw] + w2 * a0[i + 2 * dw] + w3 * b0[i] +
                            w4 * b0[i + dw] + w5 * b0[i + 2 * dw] + w6 * c0[i] + w7 * c0[i + dw] + w8 * c0[i + 2 * dw];
            else
                for (size_t i = i0; i < len; i++) {
                    size_t j = i * sw;
                    yo[i] = init + w0 * a0[j] + w1 * a0[j + dw] + w2 * a0[j + 2 * dw] + w3 * b0[j] +
                            w4 * b0[j + dw] + w5 * b0[j + 2 * dw] + w6 * c0[j] + w7 * c0[j + dw] + w8 * c0[j + 2 * dw];
                }
        } else {
            for (size_t ow = 0; ow < OW; ow++)
                yr[ow] = init;
            for (size_t kh = 0; kh < 3; kh++) {
                long long ih = ih0 + (long long)(kh * dh);
                if (ih < 0 || ih >= (long long)H)
                    continue;
                const float *xr = xp + (size_t)ih * W;
                for (size_t kw = 0; kw < 3; kw++) {
                    float wv = wp[kh * 3 + kw];
                    for (size_t ow = lo[kw]; ow < hi[kw]; ow++)
                        yr[ow] += wv * xr[ow * sw + kw * dw - pw];
                }
            }
        }
    }
}

/* Any other single-channel conv plane: tap by tap over the valid output rows, y += w * x. */
static void DW(dw_plane_any)(float *yp, const float *xp, const float *wp, float init, const Geom3 *g)
{
    for (size_t i = 0; i < g->out_size; i++)
        yp[i] = init;
    for (size_t kd = 0; kd < g->k[0]; kd++) {
        size_t d_lo, d_hi;
        valid_range(g->out[0], g->in[0], g->s[0], g->p[0], kd * g->d[0], &d_lo, &d_hi);
        for (size_t kh = 0; kh < g->k[1]; kh++) {
            size_t h_lo, h_hi;
            valid_range(g->out[1], g->in[1], g->s[1], g->p[1], kh * g->d[1], &h_lo, &h_hi);
            for (size_t kw = 0; kw < g->k[2]; kw++) {
                size_t w_lo, w_hi;
                valid_range(g->out[2], g->in[2], g->s[2], g->p[2], kw * g->d[2], &w_lo, &w_hi);
                if (w_lo == w_hi)
                    continue;
                float wv = wp[(kd * g->k[1] + kh) * g->k[2] + kw];
                size_t iw0 = w_lo * g->s[2] + kw * g->d[2] - g->p[2], sw = g->s[2];
                for (size_t od = d_lo; od < d_hi; od++) {
                    size_t id = od * g->s[0] + kd * g->d[0] - g->p[0];
                    for (size_t oh = h_lo; oh < h_hi; oh++) {
                        size_t ih = oh * g->s[1] + kh * g->d[1] - g->p[1];
                        const float *xr = xp + (id * g->in[1] + ih) * g->in[2] + iw0;
                        float *yr = yp + (od * g->out[1] + oh) * g->out[2] + w_lo;
                        size_t len = w_hi - w_lo;
                        if (sw == 1)
                            for (size_t i = 0; i < len; i++)
                                yr[i] += wv * xr[i];
                        else
                            for (size_t i = 0; i < len; i++)
                                yr[i] += wv * xr[i * sw];
                    }
                }
            }
        }
    }
}

/* Conv with one input channel per group: y[n, oc] = sum over taps of w[oc, tap] * x[n, oc / mult]. */
static void DW(conv_depthwise)(float *y, const float *x, const float *w, const float *bias,
                               size_t n, size_t c_in, size_t c_out, const Geom3 *g, const ConvAct *act)
{
    size_t mult = c_out / c_in;
    bool k3x3 = g->in[0] == 1 && g->out[0] == 1 && g->k[0] == 1 && g->p[0] == 0 && g->k[1] == 3 && g->k[2] == 3;
    #pragma omp parallel for schedule(static) if (n * c_out * g->out_size * g->k_size > 32768)
    for (size_t nc = 0; nc < n * c_out; nc++) {
        size_t b = nc / c_out, oc = nc % c_out;
        const float *xp = x + (b * c_in + oc / mult) * g->in_size;
        float *yp = y + nc * g->out_size;
        float init = bias ? bias[oc] : 0.0f;
        if (k3x3) /* 2-D 3x3, the MobileNet case */
            DW(dw_plane_3x3)(yp, xp, w + oc * g->k_size, init, g);
        else
            DW(dw_plane_any)(yp, xp, w + oc * g->k_size, init, g);
        if (act && act->kind == CONV_ACT_RELU) /* the fused activation while the plane is in cache */
            for (size_t i = 0; i < g->out_size; i++)
                yp[i] = yp[i] < 0.0f ? 0.0f : yp[i];
        else if (act && act->kind == CONV_ACT_CLIP)
            for (size_t i = 0; i < g->out_size; i++)
                yp[i] = yp[i] < act->lo ? act->lo : yp[i] > act->hi ? act->hi : yp[i];
    }
}


/* Depthwise dx: blocks of (image, input channel) planes that fit in L1 together; per tap (its valid
 * ranges computed once per block: small planes such as 7x7 are dominated by them otherwise), every
 * plane of the block adds its `mult` output channels. */
static void DW(dw_backward_input)(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                              const Geom3 *g)
{
    size_t mult = c_out / c_in, planes = n * c_in, per_plane = g->in_size + mult * g->out_size;
    size_t block = per_plane && 4096 / per_plane > 1 ? 4096 / per_plane : 1;
    if (block > 16)
        block = 16;
    size_t nblocks = (planes + block - 1) / block;
    #pragma omp parallel for schedule(static) if (n * c_out * g->out_size * g->k_size > 32768)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t p0 = blk * block, p1 = p0 + block < planes ? p0 + block : planes;
        memset(dx + p0 * g->in_size, 0, (p1 - p0) * g->in_size * sizeof(float));
        for (size_t tap = 0; tap < g->k_size; tap++) {
            size_t kw = tap % g->k[2], kh = tap / g->k[2] % g->k[1], kd = tap / (g->k[2] * g->k[1]);
            size_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
            valid_range(g->out[0], g->in[0], g->s[0], g->p[0], kd * g->d[0], &d_lo, &d_hi);
            valid_range(g->out[1], g->in[1], g->s[1], g->p[1], kh * g->d[1], &h_lo, &h_hi);
            valid_range(g->out[2], g->in[2], g->s[2], g->p[2], kw * g->d[2], &w_lo, &w_hi);
            if (w_lo == w_hi)
                continue;
            size_t sw = g->s[2], len = w_hi - w_lo, iw0 = w_lo * sw + kw * g->d[2] - g->p[2];
            for (size_t pl = p0; pl < p1; pl++) {
                size_t b = pl / c_in, ic = pl % c_in;
                float *xp = dx + pl * g->in_size;
                for (size_t m = 0; m < mult; m++) {
                    size_t oc = ic * mult + m;
                    const float *yp = dy + (b * c_out + oc) * g->out_size;
                    float wv = w[oc * g->k_size + tap];
                    for (size_t od = d_lo; od < d_hi; od++) {
                        size_t id = od * g->s[0] + kd * g->d[0] - g->p[0];
                        for (size_t oh = h_lo; oh < h_hi; oh++) {
                            size_t ih = oh * g->s[1] + kh * g->d[1] - g->p[1];
                            const float *yr = yp + (od * g->out[1] + oh) * g->out[2] + w_lo;
                            float *xr = xp + (id * g->in[1] + ih) * g->in[2] + iw0;
                            if (sw == 1)
                                for (size_t i = 0; i < len; i++)
                                    xr[i] += wv * yr[i];
                            else
                                for (size_t i = 0; i < len; i++)
                                    xr[i * sw] += wv * yr[i];
                        }
                    }
                }
            }
        }
    }
}

/* sum_i a[i] * b[i * stride] in float, 8 independent partial sums (vectorisable, fixed order). */
static float DW(dot_strided)(const float *a, const float *b, size_t len, size_t stride)
{
    float acc[8] = {0};
    size_t i = 0;
    if (stride == 1)
        for (; i + 8 <= len; i += 8)
            for (size_t j = 0; j < 8; j++)
                acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (; i < len; i++)
        s += a[i] * b[i * stride];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + s;
}

/* Depthwise dW: dw[oc, tap] = sum over images and output positions of dy * x under the tap; rows
 * sum in float, rows and images in double. */
static void DW(dw_backward_weight)(float *dw, const float *dy, const float *x, size_t n, size_t c_in, size_t c_out,
                               const Geom3 *g)
{
    size_t mult = c_out / c_in;
    #pragma omp parallel for schedule(static) if (n * c_out * g->out_size * g->k_size > 32768)
    for (size_t oc = 0; oc < c_out; oc++) {
        for (size_t tap = 0; tap < g->k_size; tap++) {
            size_t kw = tap % g->k[2], kh = tap / g->k[2] % g->k[1], kd = tap / (g->k[2] * g->k[1]);
            size_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
            valid_range(g->out[0], g->in[0], g->s[0], g->p[0], kd * g->d[0], &d_lo, &d_hi);
            valid_range(g->out[1], g->in[1], g->s[1], g->p[1], kh * g->d[1], &h_lo, &h_hi);
            valid_range(g->out[2], g->in[2], g->s[2], g->p[2], kw * g->d[2], &w_lo, &w_hi);
            double acc = 0.0;
            size_t sw = g->s[2], len = w_hi > w_lo ? w_hi - w_lo : 0;
            for (size_t b = 0; b < n && len; b++) {
                const float *yp = dy + (b * c_out + oc) * g->out_size;
                const float *xp = x + (b * c_in + oc / mult) * g->in_size;
                for (size_t od = d_lo; od < d_hi; od++) {
                    size_t id = od * g->s[0] + kd * g->d[0] - g->p[0];
                    for (size_t oh = h_lo; oh < h_hi; oh++) {
                        size_t ih = oh * g->s[1] + kh * g->d[1] - g->p[1];
                        const float *yr = yp + (od * g->out[1] + oh) * g->out[2] + w_lo;
                        const float *xr = xp + (id * g->in[1] + ih) * g->in[2] + (w_lo * sw + kw * g->d[2] - g->p[2]);
                        acc += DW(dot_strided)(yr, xr, len, sw);
                    }
                }
            }
            dw[oc * g->k_size + tap] = (float)acc;
        }
    }
}


/* ---- 3x3 stride 2 (MobileNet's downsampling), one output channel per input channel ----
 * A row of x (or dx) splits by column parity into two contiguous halves, even columns then odd
 * (W = (W + 1) / 2 + W / 2 floats): tap kw with d = kw - pw meets x column 2 ow + d, i.e. element
 * ow + h of half q = d mod 2, h = (d - q) / 2. So every loop below is contiguous (vectorisable) where the
 * generic walk strode by 2. */
static inline void DW(s2_tap)(size_t kw, size_t pw, size_t *q, long long *h)
{
    long long d = (long long)kw - (long long)pw;
    *q = (size_t)(d & 1);
    *h = (d - (long long)*q) / 2;
}

/* dx of one plane: per dx row, the contributing dy rows' taps in tap order add into the two halves
 * (zeroed first: the same additions in the same order as dw_backward_input, so the same bits), which are
 * then interleaved into dx. half: W floats of scratch. */
static void DW(dw_dx_plane_3x3s2)(float *dx, const float *dy, const float *wp, const Geom3 *g, float *half)
{
    size_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2], ph = g->p[1], pw = g->p[2];
    size_t wq[2] = {(W + 1) / 2, W / 2};
    float *hf[2] = {half, half + wq[0]};
    for (size_t ih = 0; ih < H; ih++) {
        memset(half, 0, W * sizeof(float));
        for (size_t kh = 0; kh < 3; kh++) {
            long long t = (long long)ih + (long long)ph - (long long)kh;
            if (t < 0 || (t & 1) || (size_t)(t / 2) >= OH)
                continue;
            const float *r = dy + (size_t)(t / 2) * OW;
            for (size_t kw = 0; kw < 3; kw++) {
                size_t q;
                long long h;
                DW(s2_tap)(kw, pw, &q, &h);
                /* half q element j takes dy column j - h: 0 <= j < wq[q], 0 <= j - h < OW */
                long long lo = h > 0 ? h : 0, hi = (long long)OW + h < (long long)wq[q] ? (long long)OW + h
                                                                                          : (long long)wq[q];
                float wv = wp[kh * 3 + kw], *cq = hf[q];
                const float *rr = r - h;
                for (long long j = lo; j < hi; j++)
                    cq[j] += wv * rr[j];
            }
        }
        float *xr = dx + ih * W;
        for (size_t j = 0; j < wq[1]; j++)
            xr[2 * j] = hf[0][j], xr[2 * j + 1] = hf[1][j];
        if (wq[0] > wq[1])
            xr[W - 1] = hf[0][wq[0] - 1];
    }
}

static void DW(dw_dx_3x3s2)(float *dx, const float *dy, const float *w, size_t n, size_t c, const Geom3 *g)
{
    #pragma omp parallel if (n * c * g->out_size * 9 > 32768)
    {
        float *half = dw_scratch(g->in[2]);
        #pragma omp for schedule(static)
        for (size_t nc = 0; nc < n * c; nc++)
            DW(dw_dx_plane_3x3s2)(dx + nc * g->in_size, dy + nc * g->out_size, w + nc % c * 9, g, half);
        free(half);
    }
}

/* dW: per image, x's plane split into halves row by row (xs: in_size floats of scratch), then per tap the
 * rows' contiguous dots, summed as dw_backward_weight does (rows in float, rows and images in double,
 * tap by tap in the same order); only the dot of a row is 8 lanes where the generic one was scalar. */
static void DW(dw_dw_3x3s2)(float *dwt, const float *dy, const float *x, size_t n, size_t c, const Geom3 *g)
{
    size_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    size_t wq0 = (W + 1) / 2;
    #pragma omp parallel if (n * c * g->out_size * 9 > 32768)
    {
        float *xs = dw_scratch(g->in_size);
        #pragma omp for schedule(static)
        for (size_t ch = 0; ch < c; ch++) {
            double tot[9] = {0};
            for (size_t b = 0; b < n; b++) {
                const float *xp = x + (b * c + ch) * g->in_size, *yp = dy + (b * c + ch) * g->out_size;
                for (size_t ih = 0; ih < H; ih++) {
                    const float *xr = xp + ih * W;
                    float *e = xs + ih * W, *o = e + wq0;
                    for (size_t j = 0; j < W / 2; j++)
                        e[j] = xr[2 * j], o[j] = xr[2 * j + 1];
                    if (W % 2)
                        e[wq0 - 1] = xr[W - 1];
                }
                for (size_t tap = 0; tap < 9; tap++) {
                    size_t kh = tap / 3, kw = tap % 3, h_lo, h_hi, w_lo, w_hi, q;
                    long long h;
                    valid_range(OH, H, 2, g->p[1], kh, &h_lo, &h_hi);
                    valid_range(OW, W, 2, g->p[2], kw, &w_lo, &w_hi);
                    if (w_lo == w_hi)
                        continue;
                    DW(s2_tap)(kw, g->p[2], &q, &h);
                    for (size_t oh = h_lo; oh < h_hi; oh++) {
                        size_t ih = oh * 2 + kh - g->p[1];
                        const float *xq = xs + ih * W + (q ? wq0 : 0) + (long long)w_lo + h;
                        tot[tap] += DW(dot_strided)(yp + oh * OW + w_lo, xq, w_hi - w_lo, 1);
                    }
                }
            }
            for (size_t tap = 0; tap < 9; tap++)
                dwt[ch * 9 + tap] = (float)tot[tap];
        }
        free(xs);
    }
}
