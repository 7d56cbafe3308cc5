/* test_rt_dense.c - the dense runtime kernels (kernels/{gemm,conv,pool,norm,softmax,reduce,rnn}.c)
 * against plain float64 reference loops written here (random shapes over every fast path and edge
 * case) and against PyTorch outputs in tests/ref/rt_dense (made by tests/ref/make_rt_dense_ref.py).
 * It does not test the ONNX op rules or codegen; the conformance tests do. */
#include "kernels.h"
#include "test.h"

#include <stdint.h>
#include <strings.h>

/* ------------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static float frand(void) { return (float)(2.0 * urand() - 1.0); }

/* Uniform in [lo, hi]. */
static size_t irand(size_t lo, size_t hi) { return lo + (size_t)(urand() * (double)(hi - lo + 1)); }

/* Zeroed, so a kernel that skips an element shows up as a mismatch rather than garbage. */
static void *xmalloc(size_t bytes)
{
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static float *rand_floats(size_t n)
{
    float *p = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static double *zeros_d(size_t n)
{
    double *p = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        p[i] = 0.0;
    return p;
}

static size_t prod(const size_t *d, size_t n)
{
    size_t p = 1;
    for (size_t i = 0; i < n; i++)
        p *= d[i];
    return p;
}

/* Odometer over dims[0..nd): advances idx, returns false after the last index. */
static bool next_index(size_t *idx, const size_t *dims, size_t nd)
{
    for (size_t i = nd; i-- > 0;) {
        if (++idx[i] < dims[i])
            return true;
        idx[i] = 0;
    }
    return false;
}

/* Compares got to want elementwise: |got - want| <= atol + rtol*|want| (NaN equals NaN, inf equals
 * the same inf); prints the first mismatch and the worst error. */
static void check_close_d(const char *what, const double *got, const double *want, size_t n,
                          double atol, double rtol)
{
    size_t bad = 0, first = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        bool ok;
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (isinf(w) || isinf(g))
            ok = g == w;
        else {
            double err = fabs(g - w);
            ok = err <= atol + rtol * fabs(w);
            if (err > worst)
                worst = err;
        }
        if (!ok && bad++ == 0)
            first = i;
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu values differ, first at %zu: got %.17g want %.17g (max abs err %.3g)",
              what, bad, n, first, bad ? got[first] : 0.0, bad ? want[first] : 0.0, worst);
}

static double *to_double(const float *x, size_t n)
{
    double *d = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        d[i] = x ? x[i] : 0.0;
    return d;
}

static void check_close(const char *what, const float *got, const double *want, size_t n,
                        double atol, double rtol)
{
    double *g = to_double(got, n);
    check_close_d(what, g, want, n, atol, rtol);
    free(g);
}

static void check_close_f(const char *what, const float *got, const float *want, size_t n,
                          double atol, double rtol)
{
    double *w = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        w[i] = want[i];
    check_close(what, got, w, n, atol, rtol);
    free(w);
}

static void check_equal_i64(const char *what, const int64_t *got, const int64_t *want, size_t n)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ == 0)
            first = i;
    CHECK_MSG(bad == 0, "%s: %zu of %zu indices differ, first at %zu: got %lld want %lld", what, bad, n,
              first, bad ? (long long)got[first] : 0LL, bad ? (long long)want[first] : 0LL);
}

/* ------------------------------------------------------------------------ Gemm, MatMul */

static void ref_gemm(double *y, const float *a, const float *b, const float *c, size_t m, size_t n,
                     size_t k, bool ta, bool tb, double alpha, double beta, size_t c_rows, size_t c_cols)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t p = 0; p < k; p++)
                s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            double cv = c ? c[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)] : 0.0;
            y[i * n + j] = alpha * s + beta * cv;
        }
}

static void test_gemm(void)
{
    for (int iter = 0; iter < 60; iter++) {
        size_t m = irand(1, 40), n = irand(1, 40), k = irand(1, 40);
        if (iter == 0)
            m = 200, n = 150, k = 300;
        bool ta = urand() < 0.5, tb = urand() < 0.5;
        int cform = (int)irand(0, 5);   /* none, scalar, [N], [M,1], [1,N], [M,N] */
        size_t c_rows = cform == 3 || cform == 5 ? m : 1;
        size_t c_cols = cform == 2 || cform == 4 || cform == 5 ? n : 1;
        float alpha = iter % 3 ? 1.0f : 0.75f, beta = iter % 4 ? 1.0f : -2.0f;
        float *a = rand_floats(m * k), *b = rand_floats(k * n), *c = cform ? rand_floats(c_rows * c_cols) : NULL;
        float *y = rand_floats(m * n);
        double *want = zeros_d(m * n);
        ref_gemm(want, a, b, c, m, n, k, ta, tb, alpha, beta, c_rows, c_cols);
        gemm_forward(y, a, b, c, m, n, k, ta, tb, alpha, beta, c_rows, c_cols);
        char what[128];
        snprintf(what, sizeof what, "gemm m=%zu n=%zu k=%zu ta=%d tb=%d c=%d", m, n, k, ta, tb, cform);
        check_close(what, y, want, m * n, 1e-5, 1e-5);
        double *ad = to_double(a, m * k), *bd = to_double(b, k * n), *cd = c ? to_double(c, c_rows * c_cols) : NULL;
        double *yd = to_double(y, m * n);
        ref_gemm(want, a, b, c, m, n, k, ta, tb, alpha, beta, c_rows, c_cols);
        gemm_forward_f64(yd, ad, bd, cd, m, n, k, ta, tb, alpha, beta, c_rows, c_cols);
        check_close_d(what, yd, want, m * n, 1e-12, 1e-12);
        free(ad); free(bd); free(cd); free(yd);
        free(a); free(b); free(c); free(y); free(want);
    }
    /* K = 0: y = beta * C only. */
    float c[6] = {1, 2, 3, 4, 5, 6}, y[6];
    double want[6];
    for (int i = 0; i < 6; i++)
        want[i] = 0.5 * c[i];
    gemm_forward(y, NULL, NULL, c, 2, 3, 0, false, false, 1.0f, 0.5f, 2, 3);
    check_close("gemm k=0", y, want, 6, 0, 0);
}

/* numpy.matmul on full shapes (1-D operands promoted and their dim dropped), the oracle for
 * matmul_forward. */
static void ref_matmul(double *y, const float *a, const size_t *ashape, size_t ar, const float *b,
                       const size_t *bshape, size_t br)
{
    size_t m = ar == 1 ? 1 : ashape[ar - 2], k = ashape[ar - 1];
    size_t n = br == 1 ? 1 : bshape[br - 1];
    size_t abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0, rank = abr > bbr ? abr : bbr;
    size_t dims[8], idx[8] = {0};
    for (size_t i = 0; i < rank; i++) {
        size_t ad = i + abr >= rank ? ashape[i + abr - rank] : 1;
        size_t bd = i + bbr >= rank ? bshape[i + bbr - rank] : 1;
        dims[i] = ad > bd ? ad : bd;
    }
    size_t t = 0;
    do {
        size_t aoff = 0, boff = 0;
        for (size_t i = 0; i < rank; i++) {
            if (i + abr >= rank) {
                size_t ad = ashape[i + abr - rank];
                aoff = aoff * ad + (ad == 1 ? 0 : idx[i]);
            }
            if (i + bbr >= rank) {
                size_t bd = bshape[i + bbr - rank];
                boff = boff * bd + (bd == 1 ? 0 : idx[i]);
            }
        }
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0.0;
                for (size_t p = 0; p < k; p++)
                    s += (double)a[aoff * m * k + i * k + p] * b[boff * k * n + p * n + j];
                y[t * m * n + i * n + j] = s;
            }
        t++;
    } while (next_index(idx, dims, rank));
}

static void test_matmul(void)
{
    for (int iter = 0; iter < 80; iter++) {
        size_t ar = irand(1, 4), br = irand(1, 4);
        size_t m = irand(1, 9), n = irand(1, 9), k = irand(1, 9);
        size_t ashape[4], bshape[4];
        size_t abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0, rank = abr > bbr ? abr : bbr;
        size_t full[4];
        for (size_t i = 0; i < rank; i++)
            full[i] = irand(1, 4);
        /* Batch dims right-aligned, each either the full size or a broadcast 1. */
        for (size_t i = 0; i < abr; i++)
            ashape[i] = urand() < 0.3 ? 1 : full[i + rank - abr];
        for (size_t i = 0; i < bbr; i++)
            bshape[i] = urand() < 0.3 ? 1 : full[i + rank - bbr];
        if (iter % 5 == 0) /* b shared: the folded single-sgemm path */
            for (size_t i = 0; i < bbr; i++)
                bshape[i] = 1;
        if (ar == 1)
            ashape[0] = k;
        else
            ashape[ar - 2] = m, ashape[ar - 1] = k;
        if (br == 1)
            bshape[0] = k;
        else
            bshape[br - 2] = k, bshape[br - 1] = n;
        size_t mm = ar == 1 ? 1 : m, nn = br == 1 ? 1 : n;
        size_t bd[4], as[4], bs[4];
        size_t r = matmul_batch_strides(abr, ashape, bbr, bshape, mm, nn, k, bd, as, bs);
        CHECK_EQ_INT(r, rank);
        size_t batch = prod(bd, rank), asz = prod(ashape, ar), bsz = prod(bshape, br);
        float *a = rand_floats(asz), *b = rand_floats(bsz), *y = rand_floats(batch * mm * nn);
        double *want = zeros_d(batch * mm * nn);
        ref_matmul(want, a, ashape, ar, b, bshape, br);
        matmul_forward(y, a, b, mm, nn, k, r, bd, as, bs);
        char what[128];
        snprintf(what, sizeof what, "matmul a rank %zu b rank %zu batch %zu", ar, br, batch);
        check_close(what, y, want, batch * mm * nn, 1e-5, 1e-5);
        double *ad = to_double(a, asz), *bdd = to_double(b, bsz), *yd = to_double(y, batch * mm * nn);
        matmul_forward_f64(yd, ad, bdd, mm, nn, k, r, bd, as, bs);
        check_close_d(what, yd, want, batch * mm * nn, 1e-12, 1e-12);
        free(ad); free(bdd); free(yd);
        free(a); free(b); free(y); free(want);
    }
    size_t a3[1] = {3}, b2[1] = {2}, bd[1], as[1], bs[1];
    CHECK(matmul_batch_strides(1, a3, 1, b2, 2, 2, 2, bd, as, bs) == (size_t)-1);
}

/* ------------------------------------------------------------------------ Conv, ConvTranspose */

/* The plain Conv oracle: y[n, oc, o...] = b[oc] + sum over ic in oc's group and kernel taps. */
static void ref_conv(double *y, const float *x, const float *w, const float *bias, size_t n,
                     size_t c_in, size_t c_out, size_t group, const SpatialWindow *win)
{
    size_t nd = win->nd, cin_g = c_in / group, cout_g = c_out / group;
    size_t in_size = prod(win->in, nd), out_size = prod(win->out, nd), k_size = prod(win->kernel, nd);
    for (size_t b = 0; b < n; b++)
        for (size_t oc = 0; oc < c_out; oc++) {
            size_t gr = oc / cout_g, o[3] = {0}, oi = 0;
            do {
                double s = bias ? bias[oc] : 0.0;
                for (size_t ic = 0; ic < cin_g; ic++) {
                    size_t kk[3] = {0}, ki = 0;
                    do {
                        size_t xi = 0;
                        bool inside = true;
                        for (size_t d = 0; d < nd; d++) {
                            long long pos = (long long)(o[d] * win->stride[d] + kk[d] * win->dilation[d]) -
                                            (long long)win->pad_begin[d];
                            inside = inside && pos >= 0 && pos < (long long)win->in[d];
                            xi = xi * win->in[d] + (size_t)(pos < 0 ? 0 : pos);
                        }
                        if (inside)
                            s += (double)x[(b * c_in + gr * cin_g + ic) * in_size + xi] *
                                 w[(oc * cin_g + ic) * k_size + ki];
                        ki++;
                    } while (next_index(kk, win->kernel, nd));
                }
                y[(b * c_out + oc) * out_size + oi++] = s;
            } while (next_index(o, win->out, nd));
        }
}

/* The plain ConvTranspose oracle: every x[n, ic, i...] scatters w[ic, oc, k...] to o = i*s - p + k*d. */
static void ref_conv_transpose(double *y, const float *x, const float *w, const float *bias, size_t n,
                               size_t c_in, size_t c_out, size_t group, const SpatialWindow *win)
{
    size_t nd = win->nd, cin_g = c_in / group, cout_g = c_out / group;
    size_t in_size = prod(win->in, nd), out_size = prod(win->out, nd), k_size = prod(win->kernel, nd);
    for (size_t i = 0; i < n * c_out; i++)
        for (size_t j = 0; j < out_size; j++)
            y[i * out_size + j] = bias ? bias[i % c_out] : 0.0;
    for (size_t b = 0; b < n; b++)
        for (size_t ic = 0; ic < c_in; ic++) {
            size_t gr = ic / cin_g, ii[3] = {0}, xi = 0;
            do {
                double xv = x[(b * c_in + ic) * in_size + xi++];
                for (size_t ocl = 0; ocl < cout_g; ocl++) {
                    size_t kk[3] = {0}, ki = 0;
                    do {
                        size_t yi = 0;
                        bool inside = true;
                        for (size_t d = 0; d < nd; d++) {
                            long long pos = (long long)(ii[d] * win->stride[d] + kk[d] * win->dilation[d]) -
                                            (long long)win->pad_begin[d];
                            inside = inside && pos >= 0 && pos < (long long)win->out[d];
                            yi = yi * win->out[d] + (size_t)(pos < 0 ? 0 : pos);
                        }
                        if (inside)
                            y[(b * c_out + gr * cout_g + ocl) * out_size + yi] +=
                                xv * w[(ic * cout_g + ocl) * k_size + ki];
                        ki++;
                    } while (next_index(kk, win->kernel, nd));
                }
            } while (next_index(ii, win->in, nd));
        }
}

typedef enum ConvKind { CK_RANDOM, CK_POINTWISE, CK_DEPTHWISE, CK_DEPTHWISE_MULT, CK_DEPTHWISE_3X3, CK_BIG } ConvKind;

static void run_conv_case(ConvKind kind, int iter)
{
    SpatialWindow win = {0};
    win.nd = irand(1, 3);
    size_t group = irand(1, 3), n = irand(1, 3);
    size_t c_in = group * irand(1, 3), c_out = group * irand(1, 3);
    for (size_t d = 0; d < win.nd; d++) {
        win.kernel[d] = irand(1, 3);
        win.stride[d] = irand(1, 3);
        win.dilation[d] = irand(1, 2);
        win.pad_begin[d] = irand(0, 2);
        win.pad_end[d] = irand(0, 2);
        win.in[d] = irand(1, 9);
    }
    if (kind == CK_POINTWISE || kind == CK_BIG) {
        for (size_t d = 0; d < win.nd; d++)
            win.kernel[d] = 1, win.stride[d] = 1, win.pad_begin[d] = win.pad_end[d] = 0;
        group = irand(1, 2), c_in = group * irand(2, 8), c_out = group * irand(1, 8);
    }
    if (kind == CK_DEPTHWISE || kind == CK_DEPTHWISE_MULT || kind == CK_DEPTHWISE_3X3) {
        c_in = group = irand(1, 6);
        c_out = kind == CK_DEPTHWISE_MULT ? c_in * irand(2, 3) : c_in;
    }
    if (kind == CK_DEPTHWISE_3X3) { /* the register-blocked 2-D 3x3 path, interior and borders */
        win.nd = 2;
        for (size_t d = 0; d < 2; d++)
            win.kernel[d] = 3, win.stride[d] = irand(1, 2), win.dilation[d] = irand(1, 2), win.in[d] = irand(1, 40),
            win.pad_begin[d] = irand(0, 2), win.pad_end[d] = irand(0, 2);
    }
    if (kind == CK_BIG) { /* resnet-like 3x3, large enough for the OpenMP paths */
        win.nd = 2, n = 2, group = 1, c_in = 16, c_out = 24;
        win.in[0] = 20, win.in[1] = 18;
        win.kernel[0] = win.kernel[1] = 3;
        win.pad_begin[0] = win.pad_begin[1] = win.pad_end[0] = win.pad_end[1] = 1;
        win.stride[0] = win.stride[1] = 1;
        win.dilation[0] = win.dilation[1] = 1;
    }
    for (size_t d = 0; d < win.nd; d++) {
        size_t eff = win.dilation[d] * (win.kernel[d] - 1) + 1;
        while (win.in[d] + win.pad_begin[d] + win.pad_end[d] < eff)
            win.in[d]++;
        win.out[d] = (win.in[d] + win.pad_begin[d] + win.pad_end[d] - eff) / win.stride[d] + 1;
    }
    size_t in_size = prod(win.in, win.nd), out_size = prod(win.out, win.nd), k_size = prod(win.kernel, win.nd);
    float *x = rand_floats(n * c_in * in_size), *w = rand_floats(c_out * c_in / group * k_size);
    float *bias = urand() < 0.6 ? rand_floats(c_out) : NULL;
    float *y = rand_floats(n * c_out * out_size);
    double *want = zeros_d(n * c_out * out_size);
    size_t ws = conv_forward_workspace(n, c_in, c_out, group, &win);
    bool folded = n > 1 && out_size < 128; /* the batch-folded GEMM path needs scratch even for 1x1 */
    if ((kind == CK_POINTWISE && !folded) || kind == CK_DEPTHWISE || kind == CK_DEPTHWISE_MULT ||
        kind == CK_DEPTHWISE_3X3)
        CHECK_EQ_INT(ws, 0);
    float *work = ws ? xmalloc(ws) : NULL;
    ref_conv(want, x, w, bias, n, c_in, c_out, group, &win);
    conv_forward(y, x, w, bias, n, c_in, c_out, group, &win, work);
    char what[200];
    snprintf(what, sizeof what, "conv kind %d iter %d nd=%zu n=%zu cin=%zu cout=%zu group=%zu k0=%zu s0=%zu d0=%zu",
             (int)kind, iter, win.nd, n, c_in, c_out, group, win.kernel[0], win.stride[0], win.dilation[0]);
    check_close(what, y, want, n * c_out * out_size, 1e-5, 1e-5);
    /* oneDNN's fused activations (kernels/conv_dnnl.c): ReLU, and Clip to [-0.5, 0.5] */
    ConvAct acts[2] = {{CONV_ACT_RELU, 0.0f, 0.0f}, {CONV_ACT_CLIP, -0.5f, 0.5f}};
    for (int a = 0; a < 2 && conv_dnnl_enabled(); a++) {
        float *ya = rand_floats(n * c_out * out_size);
        double *wa = zeros_d(n * c_out * out_size);
        if (conv_dnnl(CONV_DNNL_FORWARD, ya, x, w, bias, n, c_in, c_out, group, &win, &acts[a])) {
            for (size_t i = 0; i < n * c_out * out_size; i++)
                wa[i] = a == 0 ? fmax(want[i], 0.0) : fmin(fmax(want[i], -0.5), 0.5);
            check_close(what, ya, wa, n * c_out * out_size, 1e-5, 1e-5);
        }
        free(ya);
        free(wa);
    }
    /* conv_forward_fused (ir/pass_fuse.c's epilogues): BN folded, residual, activation, in the combinations
     * codegen emits; on oneDNN post-ops or conv.c plus a pass, whichever this run takes */
    for (int combo = 0; combo < 6; combo++) {
        bool has_bn = combo & 1, has_sum = combo >= 2;
        size_t total = n * c_out * out_size;
        float *gamma = rand_floats(c_out), *beta = rand_floats(c_out), *mean = rand_floats(c_out),
              *var = rand_floats(c_out), *sum = rand_floats(total), *yf = rand_floats(total);
        for (size_t c = 0; c < c_out; c++)
            var[c] = 0.5f + fabsf(var[c]);
        ConvEpilogue ep = {.bn_eps = 1e-5f, .sum = has_sum ? sum : NULL,
                           .act = {combo < 4 ? CONV_ACT_RELU : CONV_ACT_CLIP, -0.5f, 0.5f}};
        if (combo == 2)
            ep.act.kind = CONV_ACT_NONE;
        if (has_bn)
            ep.bn_scale = gamma, ep.bn_bias = beta, ep.bn_mean = mean, ep.bn_var = var;
        size_t fws = conv_forward_fused_workspace(n, c_in, c_out, group, &win, has_bn);
        CHECK(fws >= ws);
        float *fwork = fws ? xmalloc(fws) : NULL;
        conv_forward_fused(yf, x, w, bias, n, c_in, c_out, group, &win, &ep, fwork);
        double *wf = zeros_d(total);
        for (size_t i = 0; i < total; i++) {
            size_t c = i / out_size % c_out;
            double v = want[i];
            if (has_bn)
                v = (v - mean[c]) / sqrt((double)var[c] + 1e-5) * gamma[c] + beta[c];
            if (has_sum)
                v += sum[i];
            if (ep.act.kind == CONV_ACT_RELU)
                v = fmax(v, 0.0);
            else if (ep.act.kind == CONV_ACT_CLIP)
                v = fmin(fmax(v, -0.5), 0.5);
            wf[i] = v;
        }
        char fwhat[260];
        snprintf(fwhat, sizeof fwhat, "%s fused bn=%d sum=%d act=%d", what, has_bn, has_sum, (int)ep.act.kind);
        check_close(fwhat, yf, wf, total, 1e-5, 1e-5);
        free(gamma); free(beta); free(mean); free(var); free(sum); free(yf); free(wf); free(fwork);
    }
    if (kind == CK_BIG) { /* same thread count, same bits */
        float *y2 = rand_floats(n * c_out * out_size);
        conv_forward(y2, x, w, bias, n, c_in, c_out, group, &win, work);
        CHECK_MSG(memcmp(y, y2, n * c_out * out_size * sizeof(float)) == 0, "conv not deterministic");
        free(y2);
    }
    free(x); free(w); free(bias); free(y); free(want); free(work);
}

static void run_conv_transpose_case(bool pointwise, int iter)
{
    SpatialWindow win = {0};
    win.nd = irand(1, 3);
    size_t group = irand(1, 3), n = irand(1, 2);
    size_t c_in = group * irand(1, 3), c_out = group * irand(1, 3);
    for (size_t d = 0; d < win.nd; d++) {
        win.kernel[d] = pointwise ? 1 : irand(1, 4);
        win.stride[d] = pointwise ? 1 : irand(1, 3);
        win.dilation[d] = irand(1, 2);
        win.pad_begin[d] = pointwise ? 0 : irand(0, 2);
        win.pad_end[d] = pointwise ? 0 : irand(0, 2);
        win.in[d] = irand(1, 7);
        size_t out_pad = pointwise ? 0 : irand(0, win.stride[d] - 1);
        long long out = (long long)((win.in[d] - 1) * win.stride[d] + win.dilation[d] * (win.kernel[d] - 1) + 1 +
                                    out_pad) - (long long)(win.pad_begin[d] + win.pad_end[d]);
        if (out < 1) {
            win.pad_begin[d] = win.pad_end[d] = 0;
            out = (long long)((win.in[d] - 1) * win.stride[d] + win.dilation[d] * (win.kernel[d] - 1) + 1 + out_pad);
        }
        win.out[d] = (size_t)out;
    }
    size_t in_size = prod(win.in, win.nd), out_size = prod(win.out, win.nd), k_size = prod(win.kernel, win.nd);
    float *x = rand_floats(n * c_in * in_size), *w = rand_floats(c_in * c_out / group * k_size);
    float *bias = urand() < 0.6 ? rand_floats(c_out) : NULL;
    float *y = rand_floats(n * c_out * out_size);
    double *want = zeros_d(n * c_out * out_size);
    size_t ws = conv_transpose_forward_workspace(n, c_in, c_out, group, &win);
    if (pointwise)
        CHECK_EQ_INT(ws, 0);
    float *work = ws ? xmalloc(ws) : NULL;
    ref_conv_transpose(want, x, w, bias, n, c_in, c_out, group, &win);
    conv_transpose_forward(y, x, w, bias, n, c_in, c_out, group, &win, work);
    char what[200];
    snprintf(what, sizeof what, "conv_transpose iter %d nd=%zu cin=%zu cout=%zu group=%zu k0=%zu s0=%zu d0=%zu p0=%zu",
             iter, win.nd, c_in, c_out, group, win.kernel[0], win.stride[0], win.dilation[0], win.pad_begin[0]);
    check_close(what, y, want, n * c_out * out_size, 1e-5, 1e-5);
    free(x); free(w); free(bias); free(y); free(want); free(work);
}

static void test_conv(void)
{
    /* the depthwise build the environment asks for (tests/cmake/dw_isa.cmake) is the one that runs */
    const char *want_isa = getenv("ONNXTUNE_DW_ISA");
    printf("depthwise kernels: %s build\n", conv_depthwise_isa());
    if (want_isa && strcmp(want_isa, "generic") == 0)
        CHECK(strcmp(conv_depthwise_isa(), "generic") == 0);
#if defined(__x86_64__)
    if (want_isa && strcmp(want_isa, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECK(strcmp(conv_depthwise_isa(), "avx2") == 0);
#endif
    for (int i = 0; i < 150; i++)
        run_conv_case(CK_RANDOM, i);
    for (int i = 0; i < 20; i++) {
        run_conv_case(CK_POINTWISE, i);
        run_conv_case(CK_DEPTHWISE, i);
        run_conv_case(CK_DEPTHWISE_MULT, i);
        run_conv_case(CK_DEPTHWISE_3X3, i);
        run_conv_case(CK_DEPTHWISE_3X3, i);
    }
    run_conv_case(CK_BIG, 0);
    for (int i = 0; i < 100; i++)
        run_conv_transpose_case(false, i);
    for (int i = 0; i < 10; i++)
        run_conv_transpose_case(true, i);
}

/* ------------------------------------------------------------------------ pooling */

typedef enum PoolKind { PK_MAX, PK_AVG, PK_AVG_PAD, PK_LP } PoolKind;

/* The pooling oracle; taps at o*s - pad_begin + k*d, inside x (or inside x plus pads for the divisor
 * of AveragePool with count_include_pad). */
static void ref_pool(double *y, int64_t *idx, const float *x, size_t n, size_t c, const SpatialWindow *win,
                     PoolKind kind, double p)
{
    size_t nd = win->nd, in_size = prod(win->in, nd);
    size_t yi = 0;
    for (size_t pl = 0; pl < n * c; pl++) {
        size_t o[3] = {0};
        do {
            double acc = kind == PK_MAX ? -INFINITY : 0.0;
            long long at = -1;
            size_t count = 0, count_pad = 0, kk[3] = {0};
            do {
                size_t xi = 0;
                bool inside = true, inside_pad = true;
                for (size_t d = 0; d < nd; d++) {
                    long long pos = (long long)(o[d] * win->stride[d] + kk[d] * win->dilation[d]) -
                                    (long long)win->pad_begin[d];
                    inside = inside && pos >= 0 && pos < (long long)win->in[d];
                    inside_pad = inside_pad && pos < (long long)(win->in[d] + win->pad_end[d]);
                    xi = xi * win->in[d] + (size_t)(pos < 0 ? 0 : pos);
                }
                count_pad += inside_pad;
                if (!inside)
                    continue;
                count++;
                double v = x[pl * in_size + xi];
                if (kind == PK_MAX) {
                    if (at < 0 || v > acc)
                        acc = v, at = (long long)(pl * in_size + xi);
                } else if (kind == PK_LP) {
                    acc += pow(fabs(v), p);
                } else {
                    acc += v;
                }
            } while (next_index(kk, win->kernel, nd));
            if (kind == PK_AVG)
                acc /= (double)count;
            else if (kind == PK_AVG_PAD)
                acc /= (double)count_pad;
            else if (kind == PK_LP)
                acc = pow(acc, 1.0 / p);
            if (idx)
                idx[yi] = at;
            y[yi++] = acc;
        } while (next_index(o, win->out, nd));
    }
}

static void run_pool_case(PoolKind kind, int iter)
{
    SpatialWindow win = {0};
    win.nd = irand(1, 3);
    size_t n = irand(1, 2), c = irand(1, 3);
    bool ceil_mode = urand() < 0.5;
    for (size_t d = 0; d < win.nd; d++) {
        win.kernel[d] = irand(1, 4);
        win.stride[d] = irand(1, 3);
        win.dilation[d] = kind == PK_MAX || urand() < 0.3 ? irand(1, 2) : 1;
        size_t eff = win.dilation[d] * (win.kernel[d] - 1) + 1;
        win.pad_begin[d] = irand(0, (eff - 1) / 2);
        win.pad_end[d] = irand(0, (eff - 1) / 2);
        win.in[d] = irand(eff, eff + 8);
        size_t span = win.in[d] + win.pad_begin[d] + win.pad_end[d] - eff;
        size_t out = (ceil_mode ? (span + win.stride[d] - 1) / win.stride[d] : span / win.stride[d]) + 1;
        if ((out - 1) * win.stride[d] >= win.in[d] + win.pad_begin[d]) /* last window must start inside */
            out--;
        win.out[d] = out;
    }
    if (kind == PK_LP) /* LpPool pads contribute zeros; the kernel never reads pad_end */
        for (size_t d = 0; d < win.nd; d++)
            win.pad_end[d] = irand(0, 1);
    size_t in_size = prod(win.in, win.nd), out_size = prod(win.out, win.nd), total = n * c * out_size;
    float *x = rand_floats(n * c * in_size), *y = rand_floats(total);
    double *want = zeros_d(total);
    int64_t *idx = xmalloc(total * sizeof(int64_t)), *idx_want = xmalloc(total * sizeof(int64_t));
    double p = iter % 3 == 0 ? 2.0 : iter % 3 == 1 ? 1.0 : 3.0;
    ref_pool(want, kind == PK_MAX ? idx_want : NULL, x, n, c, &win, kind, p);
    char what[200];
    snprintf(what, sizeof what, "pool kind %d iter %d nd=%zu k0=%zu s0=%zu d0=%zu pb0=%zu pe0=%zu ceil=%d",
             (int)kind, iter, win.nd, win.kernel[0], win.stride[0], win.dilation[0], win.pad_begin[0],
             win.pad_end[0], ceil_mode);
    if (kind == PK_MAX) {
        maxpool_forward(y, idx, x, n, c, &win);
        check_equal_i64(what, idx, idx_want, total);
        /* storage_order 1: the in-plane position in column-major order */
        size_t in_size2 = prod(win.in, win.nd);
        for (size_t i = 0; i < total; i++) {
            size_t plane = (size_t)idx_want[i] / in_size2, rest = (size_t)idx_want[i] % in_size2, coord[3];
            for (size_t d = win.nd; d-- > 0;) {
                coord[d] = rest % win.in[d];
                rest /= win.in[d];
            }
            size_t cm = 0;
            for (size_t d = win.nd; d-- > 0;)
                cm = cm * win.in[d] + coord[d];
            idx_want[i] = (int64_t)(plane * in_size2 + cm);
        }
        maxpool_indices_column_major(idx, total, &win);
        check_equal_i64(what, idx, idx_want, total);
        maxpool_forward(y, NULL, x, n, c, &win);
    } else if (kind == PK_LP) {
        lppool_forward(y, x, n, c, &win, (float)p);
    } else {
        avgpool_forward(y, x, n, c, &win, kind == PK_AVG_PAD);
    }
    check_close(what, y, want, total, 1e-5, 1e-5);
    free(x); free(y); free(want); free(idx); free(idx_want);
}

static void test_pool(void)
{
    for (int i = 0; i < 60; i++) {
        run_pool_case(PK_MAX, i);
        run_pool_case(PK_AVG, i);
        run_pool_case(PK_AVG_PAD, i);
        run_pool_case(PK_LP, i);
    }
    for (int i = 0; i < 5; i++) {
        size_t n = irand(1, 3), c = irand(1, 5), s = i == 0 ? 40000 : irand(1, 50);
        float *x = rand_floats(n * c * s), *y = rand_floats(n * c);
        double *wa = zeros_d(n * c), *wm = zeros_d(n * c);
        for (size_t pl = 0; pl < n * c; pl++) {
            wm[pl] = -INFINITY;
            for (size_t j = 0; j < s; j++) {
                wa[pl] += x[pl * s + j] / (double)s;
                wm[pl] = x[pl * s + j] > wm[pl] ? x[pl * s + j] : wm[pl];
            }
        }
        global_avgpool_forward(y, x, n, c, s);
        check_close("global_avgpool", y, wa, n * c, 1e-6, 1e-5);
        global_maxpool_forward(y, x, n, c, s);
        check_close("global_maxpool", y, wm, n * c, 0, 0);
        free(x); free(y); free(wa); free(wm);
    }
}

/* ------------------------------------------------------------------------ normalisation */

static void ref_normalize(double *y, double *mean, double *inv_std, const float *x, size_t len, double eps)
{
    double mu = 0.0, var = 0.0;
    for (size_t i = 0; i < len; i++)
        mu += x[i];
    mu /= (double)len;
    for (size_t i = 0; i < len; i++)
        var += (x[i] - mu) * (x[i] - mu);
    var /= (double)len;
    for (size_t i = 0; i < len; i++)
        y[i] = (x[i] - mu) / sqrt(var + eps);
    if (mean)
        *mean = mu;
    if (inv_std)
        *inv_std = 1.0 / sqrt(var + eps);
}

static void test_norm(void)
{
    for (int iter = 0; iter < 20; iter++) {
        size_t n = irand(1, 3), c = irand(1, 6), s = iter == 0 ? 30000 : irand(1, 40);
        size_t total = n * c * s;
        float *x = rand_floats(total), *y = rand_floats(total);
        for (size_t i = 0; i < total; i++)
            x[i] = x[i] * 3.0f + 2.0f;
        float *scale = rand_floats(c), *bias = rand_floats(c), *mean = rand_floats(c), *var = rand_floats(c);
        for (size_t i = 0; i < c; i++)
            var[i] = fabsf(var[i]) + 0.1f;
        double *want = zeros_d(total);
        float eps = 1e-5f;
        for (size_t i = 0; i < total; i++) {
            size_t ch = i / s % c;
            want[i] = (x[i] - (double)mean[ch]) / sqrt((double)var[ch] + eps) * scale[ch] + bias[ch];
        }
        batchnorm_forward(y, x, scale, bias, mean, var, n, c, s, eps);
        check_close("batchnorm", y, want, total, 1e-5, 1e-5);

        for (size_t pl = 0; pl < n * c; pl++) {
            ref_normalize(want + pl * s, NULL, NULL, x + pl * s, s, eps);
            for (size_t i = 0; i < s; i++)
                want[pl * s + i] = want[pl * s + i] * scale[pl % c] + bias[pl % c];
        }
        instancenorm_forward(y, x, scale, bias, n, c, s, eps);
        check_close("instancenorm", y, want, total, 2e-5, 1e-5);

        /* LayerNormalization over rows = n*c, cols = s. */
        float *ls = rand_floats(s), *lb = rand_floats(s), mo[20], io[20];
        double wmean[20], winv[20];
        for (size_t r = 0; r < n * c; r++) {
            ref_normalize(want + r * s, &wmean[r], &winv[r], x + r * s, s, eps);
            for (size_t i = 0; i < s; i++)
                want[r * s + i] = want[r * s + i] * ls[i] + (iter % 2 ? lb[i] : 0.0);
        }
        layernorm_forward(y, mo, io, x, ls, iter % 2 ? lb : NULL, n * c, s, eps);
        check_close("layernorm", y, want, total, 2e-5, 1e-5);
        check_close("layernorm mean", mo, wmean, n * c, 1e-6, 1e-6);
        check_close("layernorm inv_std_dev", io, winv, n * c, 1e-6, 1e-5);
        layernorm_forward(y, NULL, NULL, x, ls, iter % 2 ? lb : NULL, n * c, s, eps);
        check_close("layernorm without stats", y, want, total, 2e-5, 1e-5);

        /* LRN, odd and even sizes. */
        size_t size = irand(1, 6);
        float alpha = 1e-3f * (float)irand(1, 100), beta = 0.75f, k = 1.5f;
        for (size_t b = 0; b < n; b++)
            for (size_t ch = 0; ch < c; ch++)
                for (size_t i = 0; i < s; i++) {
                    long long lo = (long long)ch - (long long)((size - 1) / 2), hi = (long long)ch + (long long)(size / 2);
                    double sq = 0.0;
                    for (long long q = lo; q <= hi; q++)
                        if (q >= 0 && q < (long long)c) {
                            double v = x[(b * c + (size_t)q) * s + i];
                            sq += v * v;
                        }
                    want[(b * c + ch) * s + i] = x[(b * c + ch) * s + i] / pow(k + alpha / (double)size * sq, beta);
                }
        lrn_forward(y, x, n, c, s, size, alpha, beta, k);
        check_close("lrn", y, want, total, 1e-5, 1e-5);
        free(x); free(y); free(scale); free(bias); free(mean); free(var); free(want); free(ls); free(lb);
    }
}

/* ------------------------------------------------------------------------ softmax */

static void test_softmax(void)
{
    for (int iter = 0; iter < 40; iter++) {
        size_t outer = irand(1, 5), axis = irand(1, 20), inner = iter % 3 == 0 ? 1 : irand(1, 150);
        if (iter == 1)
            outer = 3, axis = 3000, inner = 1;
        size_t total = outer * axis * inner;
        float *x = rand_floats(total), *y = rand_floats(total);
        for (size_t i = 0; i < total; i++)
            x[i] *= 40.0f; /* large logits: needs the max subtraction */
        double *ws = zeros_d(total), *wl = zeros_d(total), *wh = zeros_d(total);
        for (size_t o = 0; o < outer; o++)
            for (size_t j = 0; j < inner; j++) {
                const float *xp = x + o * axis * inner + j;
                double mx = -INFINITY, sum = 0.0;
                size_t best = 0;
                for (size_t a = 0; a < axis; a++) {
                    mx = xp[a * inner] > mx ? xp[a * inner] : mx;
                    if (xp[a * inner] > xp[best * inner])
                        best = a;
                }
                for (size_t a = 0; a < axis; a++)
                    sum += exp(xp[a * inner] - mx);
                for (size_t a = 0; a < axis; a++) {
                    size_t at = o * axis * inner + a * inner + j;
                    ws[at] = exp(xp[a * inner] - mx) / sum;
                    wl[at] = xp[a * inner] - mx - log(sum);
                    wh[at] = a == best;
                }
            }
        softmax_forward(y, x, outer, axis, inner);
        check_close("softmax", y, ws, total, 1e-7, 1e-5);
        { /* backward: dx = y * (dy - sum_a dy*y), rows (inner 1: eight-lane sums) and tiles */
            float *dy = rand_floats(total), *dx = rand_floats(total);
            double *wd = zeros_d(total);
            for (size_t o = 0; o < outer; o++)
                for (size_t j = 0; j < inner; j++) {
                    double dot = 0.0;
                    for (size_t a = 0; a < axis; a++) {
                        size_t at = o * axis * inner + a * inner + j;
                        dot += (double)dy[at] * y[at];
                    }
                    for (size_t a = 0; a < axis; a++) {
                        size_t at = o * axis * inner + a * inner + j;
                        wd[at] = (double)y[at] * (dy[at] - dot);
                    }
                }
            softmax_backward(dx, dy, y, outer, axis, inner);
            check_close("softmax backward", dx, wd, total, 1e-6, 1e-5);
            free(dy);
            free(dx);
            free(wd);
        }
        logsoftmax_forward(y, x, outer, axis, inner);
        check_close("logsoftmax", y, wl, total, 1e-5, 1e-6);
        /* Ties: integer-valued inputs; Hardmax must pick the first maximum. */
        for (size_t i = 0; i < total; i++)
            x[i] = (float)irand(0, 3);
        for (size_t o = 0; o < outer; o++)
            for (size_t j = 0; j < inner; j++) {
                size_t best = 0;
                for (size_t a = 0; a < axis; a++)
                    if (x[o * axis * inner + a * inner + j] > x[o * axis * inner + best * inner + j])
                        best = a;
                for (size_t a = 0; a < axis; a++)
                    wh[o * axis * inner + a * inner + j] = a == best;
            }
        hardmax_forward(y, x, outer, axis, inner);
        check_close("hardmax", y, wh, total, 0, 0);
        memcpy(y, x, total * sizeof(float));
        hardmax_forward(y, y, outer, axis, inner);
        check_close("hardmax in place", y, wh, total, 0, 0);
        free(x); free(y); free(ws); free(wl); free(wh);
    }
}

/* ------------------------------------------------------------------------ reductions */

static const char *reduce_names[] = {"sum", "mean", "max", "min", "prod", "l1", "l2", "log_sum",
                                     "log_sum_exp", "sum_square"};

static double ref_reduce_finish(ReduceKind kind, const double *v, size_t count)
{
    double acc = kind == REDUCE_PROD ? 1.0 : kind == REDUCE_MAX ? -INFINITY : kind == REDUCE_MIN ? INFINITY : 0.0;
    double mx = -INFINITY;
    for (size_t i = 0; i < count; i++)
        mx = v[i] > mx ? v[i] : mx;
    for (size_t i = 0; i < count; i++) {
        switch (kind) {
        case REDUCE_MAX: acc = v[i] > acc ? v[i] : acc; break;
        case REDUCE_MIN: acc = v[i] < acc ? v[i] : acc; break;
        case REDUCE_PROD: acc *= v[i]; break;
        case REDUCE_L1: acc += fabs(v[i]); break;
        case REDUCE_L2: case REDUCE_SUM_SQUARE: acc += v[i] * v[i]; break;
        case REDUCE_LOG_SUM_EXP: acc += exp(v[i] - mx); break;
        default: acc += v[i]; break;
        }
    }
    switch (kind) {
    case REDUCE_MEAN: return acc / (double)count;
    case REDUCE_L2: return sqrt(acc);
    case REDUCE_LOG_SUM: return log(acc);
    case REDUCE_LOG_SUM_EXP: return count ? mx + log(acc) : -INFINITY;
    default: return acc;
    }
}

static void test_reduce(void)
{
    double *vals = xmalloc(100000 * sizeof(double));
    for (int iter = 0; iter < 300; iter++) {
        size_t rank = irand(1, 5), dims[5];
        for (size_t i = 0; i < rank; i++)
            dims[i] = irand(1, 5);
        if (iter % 50 == 7)
            dims[rank - 1] = 70; /* more than one inner tile */
        if (iter % 60 == 9)
            dims[irand(0, rank - 1)] = 0; /* empty */
        uint32_t mask = (uint32_t)irand(0, (1u << rank) - 1);
        ReduceKind kind = (ReduceKind)(iter % 10);
        size_t total = prod(dims, rank), out_count = 1, count = 1;
        for (size_t i = 0; i < rank; i++) {
            if ((mask >> i) & 1u)
                count *= dims[i];
            else
                out_count *= dims[i];
        }
        float *x = rand_floats(total ? total : 1), *y = rand_floats(out_count ? out_count : 1);
        for (size_t i = 0; i < total; i++) {
            if (kind == REDUCE_LOG_SUM)
                x[i] = fabsf(x[i]) + 0.01f;
            if (kind == REDUCE_PROD)
                x[i] = 1.0f + 0.5f * x[i];
            if (kind == REDUCE_LOG_SUM_EXP)
                x[i] *= 50.0f;
        }
        double *want = zeros_d(out_count ? out_count : 1);
        /* Gather each output's values by walking all of x. */
        size_t idx[5] = {0};
        for (size_t t = 0; t < out_count; t++) {
            size_t got = 0, oi[5] = {0}, r = t;
            for (size_t i = rank; i-- > 0;)
                if (!((mask >> i) & 1u)) {
                    oi[i] = r % dims[i];
                    r /= dims[i];
                }
            if (total) {
                for (size_t i = 0; i < rank; i++)
                    idx[i] = 0;
                size_t flat = 0;
                do {
                    bool mine = true;
                    for (size_t i = 0; i < rank; i++)
                        if (!((mask >> i) & 1u) && idx[i] != oi[i])
                            mine = false;
                    if (mine)
                        vals[got++] = x[flat];
                    flat++;
                } while (next_index(idx, dims, rank));
            }
            want[t] = ref_reduce_finish(kind, vals, got);
        }
        reduce_forward(y, x, kind, rank, dims, mask);
        char what[160];
        snprintf(what, sizeof what, "reduce %s iter %d rank %zu mask 0x%x count %zu", reduce_names[kind], iter, rank,
                 mask, count);
        check_close(what, y, want, out_count, 1e-5, 1e-5);
        double *xd = to_double(x, total), *yd = to_double(NULL, out_count);
        reduce_forward_f64(yd, xd, kind, rank, dims, mask);
        check_close_d(what, yd, want, out_count, 1e-12, 1e-12);
        free(xd); free(yd);
        free(x); free(y); free(want);
    }
    free(vals);
    /* Large row: sums in double in a fixed order, and the same result on every run. */
    size_t dims[2] = {3, 200000};
    float *x = rand_floats(dims[0] * dims[1]), y1[3], y2[3];
    reduce_forward(y1, x, REDUCE_SUM, 2, dims, 2u);
    reduce_forward(y2, x, REDUCE_SUM, 2, dims, 2u);
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    double want[3] = {0, 0, 0};
    for (size_t i = 0; i < dims[0] * dims[1]; i++)
        want[i / dims[1]] += x[i];
    check_close("reduce large sum", y1, want, 3, 1e-6, 1e-7);
    free(x);
}

static void test_argmax(void)
{
    for (int iter = 0; iter < 60; iter++) {
        size_t outer = irand(1, 4), axis = irand(1, 9), inner = irand(1, 80);
        size_t total = outer * axis * inner;
        float *x = xmalloc(total * sizeof(float));
        for (size_t i = 0; i < total; i++)
            x[i] = (float)irand(0, 4); /* ties */
        int64_t *y = xmalloc(outer * inner * sizeof(int64_t)), *want = xmalloc(outer * inner * sizeof(int64_t));
        for (int variant = 0; variant < 4; variant++) {
            bool is_max = variant < 2, last = variant % 2;
            for (size_t o = 0; o < outer; o++)
                for (size_t j = 0; j < inner; j++) {
                    size_t best = 0;
                    for (size_t a = 1; a < axis; a++) {
                        float v = x[(o * axis + a) * inner + j], b = x[(o * axis + best) * inner + j];
                        if (is_max ? (v > b || (last && v == b)) : (v < b || (last && v == b)))
                            best = a;
                    }
                    want[o * inner + j] = (int64_t)best;
                }
            if (is_max)
                argmax_forward(y, x, outer, axis, inner, last);
            else
                argmin_forward(y, x, outer, axis, inner, last);
            check_equal_i64(is_max ? (last ? "argmax last" : "argmax") : (last ? "argmin last" : "argmin"),
                            y, want, outer * inner);
        }
        free(x); free(y); free(want);
    }
}

/* ------------------------------------------------------------------------ LSTM, GRU, RNN */

typedef enum RnnOp { OP_LSTM, OP_GRU, OP_RNN } RnnOp;

static double ref_act(RnnActivation a, RnnActivationKind dflt, double x)
{
    RnnActivationKind k = a.kind == RNN_ACT_DEFAULT ? dflt : a.kind;
    switch (k) {
    case RNN_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case RNN_ACT_TANH: return tanh(x);
    case RNN_ACT_RELU: return x > 0 ? x : 0;
    case RNN_ACT_AFFINE: return a.alpha * x + a.beta;
    case RNN_ACT_LEAKY_RELU: return x >= 0 ? x : a.alpha * x;
    case RNN_ACT_THRESHOLDED_RELU: return x > a.alpha ? x : 0;
    case RNN_ACT_SCALED_TANH: return a.alpha * tanh(a.beta * x);
    case RNN_ACT_HARD_SIGMOID: return fmax(0.0, fmin(1.0, a.alpha * x + a.beta));
    case RNN_ACT_ELU: return x >= 0 ? x : a.alpha * (exp(x) - 1);
    case RNN_ACT_SOFTSIGN: return x / (1 + fabs(x));
    case RNN_ACT_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    default: return x;
    }
}

static double ref_clip(double v, double clip)
{
    return clip > 0 ? fmax(-clip, fmin(clip, v)) : v;
}

/* One sequence of one direction at a time, steps in the sequence's own order (reverse: from its last
 * valid step), written from the ONNX equations with every product spelled out. */
static void ref_rnn(RnnOp op, double *y, double *y_h, double *y_c, const float *x, const float *w,
                    const float *r, const float *b, const int32_t *lens, const float *h0, const float *c0,
                    const float *pp, const RnnParams *p)
{
    size_t S = p->seq_length, B = p->batch, I = p->input_size, H = p->hidden_size;
    size_t D = p->direction == RNN_BIDIRECTIONAL ? 2 : 1, G = op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1;
    size_t nact = op == OP_LSTM ? 3 : op == OP_GRU ? 2 : 1;
    int L = p->layout;
    double h[64], c[64], hn[64], g[4][64];
    for (size_t d = 0; d < D; d++) {
        bool rev = p->direction == RNN_REVERSE || d == 1;
        const RnnActivation *act = p->act + d * nact;
        const float *wd = w + d * G * H * I, *rd = r + d * G * H * H, *bd = b ? b + d * 2 * G * H : NULL;
        for (size_t bi = 0; bi < B; bi++) {
            size_t len = lens ? (size_t)lens[bi] : S;
            size_t so = L ? (bi * D + d) * H : (d * B + bi) * H;
            for (size_t j = 0; j < H; j++) {
                h[j] = h0 ? h0[so + j] : 0.0;
                c[j] = c0 ? c0[so + j] : 0.0;
            }
            for (size_t t = 0; t < S; t++)
                if (y && t >= len)
                    for (size_t j = 0; j < H; j++)
                        y[(L ? (bi * S + t) * D + d : (t * D + d) * B + bi) * H + j] = 0.0;
            for (size_t step = 0; step < len; step++) {
                size_t t = rev ? len - 1 - step : step;
                const float *xt = x + (L ? bi * S + t : t * B + bi) * I;
                /* g[q][j] = x.W_q + Wb_q (+ h.R_q + Rb_q unless GRU h gate) */
                for (size_t q = 0; q < G; q++)
                    for (size_t j = 0; j < H; j++) {
                        double s = bd ? bd[q * H + j] : 0.0;
                        for (size_t i = 0; i < I; i++)
                            s += (double)xt[i] * wd[(q * H + j) * I + i];
                        if (!(op == OP_GRU && q == 2)) {
                            s += bd ? bd[G * H + q * H + j] : 0.0;
                            for (size_t i = 0; i < H; i++)
                                s += h[i] * rd[(q * H + j) * H + i];
                        }
                        g[q][j] = s;
                    }
                if (op == OP_LSTM) {
                    const float *pd = pp ? pp + d * 3 * H : NULL;
                    for (size_t j = 0; j < H; j++) {
                        double it = ref_act(act[0], RNN_ACT_SIGMOID,
                                            ref_clip(g[0][j] + (pd ? pd[j] * c[j] : 0), p->clip));
                        double ft = p->input_forget ? 1 - it
                                  : ref_act(act[0], RNN_ACT_SIGMOID,
                                            ref_clip(g[2][j] + (pd ? pd[2 * H + j] * c[j] : 0), p->clip));
                        double ct = ref_act(act[1], RNN_ACT_TANH, ref_clip(g[3][j], p->clip));
                        c[j] = ft * c[j] + it * ct;
                        double ot = ref_act(act[0], RNN_ACT_SIGMOID,
                                            ref_clip(g[1][j] + (pd ? pd[H + j] * c[j] : 0), p->clip));
                        hn[j] = ot * ref_act(act[2], RNN_ACT_TANH, c[j]);
                    }
                } else if (op == OP_GRU) {
                    double rt[64];
                    for (size_t j = 0; j < H; j++)
                        rt[j] = ref_act(act[0], RNN_ACT_SIGMOID, ref_clip(g[1][j], p->clip));
                    for (size_t j = 0; j < H; j++) {
                        double zt = ref_act(act[0], RNN_ACT_SIGMOID, ref_clip(g[0][j], p->clip));
                        double rb = bd ? bd[G * H + 2 * H + j] : 0.0, s = 0.0;
                        if (p->linear_before_reset) {
                            for (size_t i = 0; i < H; i++)
                                s += h[i] * rd[(2 * H + j) * H + i];
                            s = rt[j] * (s + rb);
                        } else {
                            for (size_t i = 0; i < H; i++)
                                s += rt[i] * h[i] * rd[(2 * H + j) * H + i];
                            s += rb;
                        }
                        double ht = ref_act(act[1], RNN_ACT_TANH, ref_clip(g[2][j] + s, p->clip));
                        hn[j] = (1 - zt) * ht + zt * h[j];
                    }
                } else {
                    for (size_t j = 0; j < H; j++)
                        hn[j] = ref_act(act[0], RNN_ACT_TANH, ref_clip(g[0][j], p->clip));
                }
                for (size_t j = 0; j < H; j++) {
                    h[j] = hn[j];
                    if (y)
                        y[(L ? (bi * S + t) * D + d : (t * D + d) * B + bi) * H + j] = h[j];
                }
            }
            for (size_t j = 0; j < H; j++) {
                if (y_h)
                    y_h[so + j] = h[j];
                if (y_c)
                    y_c[so + j] = c[j];
            }
        }
    }
}

static void run_rnn_case(RnnOp op, int iter)
{
    RnnParams p = {0};
    p.seq_length = irand(1, 6), p.batch = irand(1, 4), p.input_size = irand(1, 5), p.hidden_size = irand(1, 7);
    p.direction = (RnnDirection)(iter % 3);
    p.layout = (int)irand(0, 1);
    p.clip = iter % 4 == 3 ? 0.7f : 0.0f;
    p.input_forget = op == OP_LSTM && iter % 5 == 4;
    p.linear_before_reset = op == OP_GRU && iter % 2;
    if (iter % 6 == 5) { /* non-default activations; the gates' (slot f) stay bounded so that the
                            * recurrence does not blow up beyond what float can follow */
        RnnActivation gate[] = {{RNN_ACT_HARD_SIGMOID, 0.2f, 0.5f}, {RNN_ACT_SOFTSIGN, 0, 0},
                                {RNN_ACT_SIGMOID, 0, 0}};
        RnnActivation any[] = {{RNN_ACT_SCALED_TANH, 1.5f, 0.7f}, {RNN_ACT_LEAKY_RELU, 0.1f, 0},
                               {RNN_ACT_ELU, 0.9f, 0}, {RNN_ACT_SOFTPLUS, 0, 0}, {RNN_ACT_RELU, 0, 0},
                               {RNN_ACT_THRESHOLDED_RELU, 0.2f, 0}, {RNN_ACT_AFFINE, 0.5f, 0.1f},
                               {RNN_ACT_TANH, 0, 0}};
        size_t per_dir = op == OP_LSTM ? 3 : op == OP_GRU ? 2 : 1;
        for (size_t i = 0; i < 6; i++)
            p.act[i] = i % per_dir == 0 && op != OP_RNN ? gate[(size_t)iter / 6 % 3] : any[((size_t)iter / 6 + i) % 8];
    }
    size_t S = p.seq_length, B = p.batch, I = p.input_size, H = p.hidden_size;
    size_t D = p.direction == RNN_BIDIRECTIONAL ? 2 : 1, G = op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1;
    float *x = rand_floats(S * B * I), *w = rand_floats(D * G * H * I), *r = rand_floats(D * G * H * H);
    float *b = iter % 3 ? rand_floats(D * 2 * G * H) : NULL;
    float *h0 = iter % 4 ? rand_floats(D * B * H) : NULL, *c0 = iter % 5 ? rand_floats(D * B * H) : NULL;
    float *pp = op == OP_LSTM && iter % 2 ? rand_floats(D * 3 * H) : NULL;
    int32_t lens[4];
    for (size_t i = 0; i < B; i++)
        lens[i] = (int32_t)(iter % 2 ? irand(0, S) : S);
    const int32_t *lp = iter % 7 == 0 ? NULL : lens;
    if (!lp)
        for (size_t i = 0; i < B; i++)
            lens[i] = (int32_t)S;
    size_t ny = S * D * B * H, ns = D * B * H;
    float *y = rand_floats(ny), *yh = rand_floats(ns), *yc = rand_floats(ns);
    double *wy = zeros_d(ny), *wh = zeros_d(ns), *wc = zeros_d(ns);
    size_t ws = op == OP_LSTM ? lstm_forward_workspace(&p) : op == OP_GRU ? gru_forward_workspace(&p)
                                                           : rnn_forward_workspace(&p);
    float *work = xmalloc(ws);
    ref_rnn(op, wy, wh, op == OP_LSTM ? wc : NULL, x, w, r, b, lp, h0, op == OP_LSTM ? c0 : NULL, pp, &p);
    if (op == OP_LSTM)
        lstm_forward(y, yh, yc, x, w, r, b, lp, h0, c0, pp, &p, work);
    else if (op == OP_GRU)
        gru_forward(y, yh, x, w, r, b, lp, h0, &p, work);
    else
        rnn_forward(y, yh, x, w, r, b, lp, h0, &p, work);
    char what[200];
    snprintf(what, sizeof what, "%s iter %d dir %d layout %d S=%zu B=%zu I=%zu H=%zu lens=%d clip=%g lbr=%d",
             op == OP_LSTM ? "lstm" : op == OP_GRU ? "gru" : "rnn", iter, (int)p.direction, p.layout, S, B, I, H,
             lp != NULL, (double)p.clip, p.linear_before_reset);
    check_close(what, y, wy, ny, 1e-5, 1e-5);
    check_close(what, yh, wh, ns, 1e-5, 1e-5);
    if (op == OP_LSTM)
        check_close(what, yc, wc, ns, 1e-5, 1e-5);
    /* Optional outputs may be NULL. */
    if (op == OP_LSTM)
        lstm_forward(NULL, yh, NULL, x, w, r, b, lp, h0, c0, pp, &p, work);
    else if (op == OP_GRU)
        gru_forward(NULL, yh, x, w, r, b, lp, h0, &p, work);
    else
        rnn_forward(NULL, yh, x, w, r, b, lp, h0, &p, work);
    check_close(what, yh, wh, ns, 1e-5, 1e-5);
    free(x); free(w); free(r); free(b); free(h0); free(c0); free(pp); free(y); free(yh); free(yc);
    free(wy); free(wh); free(wc); free(work);
}

static void test_rnn(void)
{
    for (int i = 0; i < 60; i++) {
        run_rnn_case(OP_LSTM, i);
        run_rnn_case(OP_GRU, i);
        run_rnn_case(OP_RNN, i);
    }
}

/* ------------------------------------------------------------------------ PyTorch references */

/* A minimal reader for the .npy files our script writes: little-endian float32, int64 or int32 (read
 * as int64), C order. */
typedef struct Npy {
    bool is_int;
    size_t rank, shape[8], count;
    void *data;
} Npy;

static bool npy_load(const char *path, Npy *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char pre[10];
    bool ok = fread(pre, 1, 10, f) == 10 && memcmp(pre, "\x93NUMPY", 6) == 0 && pre[6] == 1;
    size_t hlen = ok ? (size_t)pre[8] | (size_t)pre[9] << 8 : 0;
    char header[1024] = {0};
    size_t esz = 4;
    ok = ok && hlen < sizeof header && fread(header, 1, hlen, f) == hlen;
    if (ok) {
        ok = strstr(header, "'fortran_order': False") != NULL;
        bool i4 = strstr(header, "'descr': '<i4'") != NULL;
        out->is_int = i4 || strstr(header, "'descr': '<i8'") != NULL;
        ok = ok && (out->is_int || strstr(header, "'descr': '<f4'") != NULL);
        esz = i4 ? 4 : out->is_int ? 8 : 4;
        const char *s = strstr(header, "'shape': (");
        ok = ok && s;
        out->count = 1;
        for (s = s ? s + 10 : NULL; ok && *s != ')';) {
            char *end;
            unsigned long long v = strtoull(s, &end, 10);
            if (end == s || out->rank == 8) {
                ok = false;
                break;
            }
            out->shape[out->rank++] = (size_t)v;
            out->count *= (size_t)v;
            s = end;
            while (*s == ',' || *s == ' ')
                s++;
        }
    }
    if (ok) {
        out->data = xmalloc(out->count * (out->is_int ? 8 : 4));
        ok = fread(out->data, esz, out->count, f) == out->count;
        for (size_t i = out->count; ok && esz == 4 && out->is_int && i-- > 0;)
            ((int64_t *)out->data)[i] = ((int32_t *)out->data)[i];
    }
    fclose(f);
    if (!ok)
        free(out->data);
    return ok;
}

static bool load_case(const char *cas, const char *name, Npy *out, bool required)
{
    char path[256];
    snprintf(path, sizeof path, "tests/ref/rt_dense/%s.%s.npy", cas, name);
    bool ok = npy_load(path, out);
    if (required)
        CHECK_MSG(ok, "cannot read %s (run from the repo root; regenerate with tests/ref/make_rt_dense_ref.py)", path);
    return ok;
}

/* params: [nd, extra, kernel[nd], stride[nd], dilation[nd], pad_begin[nd], pad_end[nd]]. */
static SpatialWindow window_from(const Npy *params, const Npy *x, const Npy *y, int64_t *extra)
{
    const int64_t *p = params->data;
    SpatialWindow w = {0};
    w.nd = (size_t)p[0];
    *extra = p[1];
    for (size_t d = 0; d < w.nd; d++) {
        w.kernel[d] = (size_t)p[2 + d];
        w.stride[d] = (size_t)p[2 + w.nd + d];
        w.dilation[d] = (size_t)p[2 + 2 * w.nd + d];
        w.pad_begin[d] = (size_t)p[2 + 3 * w.nd + d];
        w.pad_end[d] = (size_t)p[2 + 4 * w.nd + d];
        w.in[d] = x->shape[2 + d];
        w.out[d] = y->shape[2 + d];
    }
    return w;
}

static void torch_conv(const char *cas, bool transpose)
{
    Npy x, w, b, y, params;
    if (!load_case(cas, "x", &x, true) || !load_case(cas, "w", &w, true) || !load_case(cas, "y", &y, true) ||
        !load_case(cas, "params", &params, true))
        return;
    bool has_b = load_case(cas, "b", &b, false);
    int64_t group;
    SpatialWindow win = window_from(&params, &x, &y, &group);
    size_t n = x.shape[0], c_in = x.shape[1], c_out = y.shape[1];
    float *out = rand_floats(y.count);
    size_t ws = transpose ? conv_transpose_forward_workspace(n, c_in, c_out, (size_t)group, &win)
                          : conv_forward_workspace(n, c_in, c_out, (size_t)group, &win);
    float *work = ws ? xmalloc(ws) : NULL;
    if (transpose)
        conv_transpose_forward(out, x.data, w.data, has_b ? b.data : NULL, n, c_in, c_out, (size_t)group, &win, work);
    else
        conv_forward(out, x.data, w.data, has_b ? b.data : NULL, n, c_in, c_out, (size_t)group, &win, work);
    char what[96];
    snprintf(what, sizeof what, "torch %s", cas);
    check_close_f(what, out, y.data, y.count, 2e-5, 1e-4);
    free(out); free(work); free(x.data); free(w.data); free(y.data); free(params.data);
    if (has_b)
        free(b.data);
}

static void torch_pool(const char *cas, PoolKind kind)
{
    Npy x, y, params, idx;
    if (!load_case(cas, "x", &x, true) || !load_case(cas, "y", &y, true) || !load_case(cas, "params", &params, true))
        return;
    int64_t extra;
    SpatialWindow win = window_from(&params, &x, &y, &extra);
    float *out = rand_floats(y.count);
    char what[96];
    snprintf(what, sizeof what, "torch %s", cas);
    if (kind == PK_MAX) {
        int64_t *ind = xmalloc(y.count * sizeof(int64_t));
        maxpool_forward(out, ind, x.data, x.shape[0], x.shape[1], &win);
        if (load_case(cas, "indices", &idx, true)) {
            check_equal_i64(what, ind, idx.data, y.count);
            free(idx.data);
        }
        free(ind);
    } else if (kind == PK_LP) {
        lppool_forward(out, x.data, x.shape[0], x.shape[1], &win, (float)extra);
    } else {
        avgpool_forward(out, x.data, x.shape[0], x.shape[1], &win, extra != 0);
    }
    check_close_f(what, out, y.data, y.count, 2e-5, 1e-4);
    free(out); free(x.data); free(y.data); free(params.data);
}

/* Transposes the first two dims of a [a, b, rest] float tensor (layout 0 <-> layout 1 of x). */
static float *swap01(const float *src, size_t a, size_t b, size_t rest)
{
    float *dst = xmalloc(a * b * rest * sizeof(float));
    for (size_t i = 0; i < a; i++)
        for (size_t j = 0; j < b; j++)
            memcpy(dst + (j * a + i) * rest, src + (i * b + j) * rest, rest * sizeof(float));
    return dst;
}

static void torch_rnn(const char *cas, RnnOp op)
{
    Npy x, w, r, b, h0, c0 = {0}, y, yh, yc = {0}, lens, params;
    if (!load_case(cas, "x", &x, true) || !load_case(cas, "w", &w, true) || !load_case(cas, "r", &r, true) ||
        !load_case(cas, "b", &b, true) || !load_case(cas, "initial_h", &h0, true) || !load_case(cas, "y", &y, true) ||
        !load_case(cas, "y_h", &yh, true) || !load_case(cas, "sequence_lens", &lens, true) ||
        !load_case(cas, "params", &params, true))
        return;
    if (op == OP_LSTM && (!load_case(cas, "initial_c", &c0, true) || !load_case(cas, "y_c", &yc, true)))
        return;
    size_t D = (size_t)((int64_t *)params.data)[0];
    RnnParams p = {0};
    p.seq_length = x.shape[0], p.batch = x.shape[1], p.input_size = x.shape[2], p.hidden_size = yh.shape[2];
    p.direction = D == 2 ? RNN_BIDIRECTIONAL : RNN_FORWARD;
    p.linear_before_reset = true; /* PyTorch's GRU */
    int32_t sl[16];
    for (size_t i = 0; i < p.batch && i < 16; i++)
        sl[i] = (int32_t)((int64_t *)lens.data)[i];
    size_t S = p.seq_length, B = p.batch, H = p.hidden_size;
    size_t ws = op == OP_LSTM ? lstm_forward_workspace(&p) : op == OP_GRU ? gru_forward_workspace(&p)
                                                           : rnn_forward_workspace(&p);
    float *work = xmalloc(ws), *oy = rand_floats(y.count), *oh = rand_floats(yh.count), *oc = rand_floats(yh.count);
    for (int layout = 0; layout < 2; layout++) {
        p.layout = layout;
        /* layout 1: x [B, S, I], y [B, S, D, H], states [B, D, H] */
        float *xl = layout ? swap01(x.data, S, B, p.input_size) : x.data;
        float *h0l = layout ? swap01(h0.data, D, B, H) : h0.data;
        float *c0l = op == OP_LSTM && layout ? swap01(c0.data, D, B, H) : c0.data;
        if (op == OP_LSTM)
            lstm_forward(oy, oh, oc, xl, w.data, r.data, b.data, sl, h0l, c0l, NULL, &p, work);
        else if (op == OP_GRU)
            gru_forward(oy, oh, xl, w.data, r.data, b.data, sl, h0l, &p, work);
        else
            rnn_forward(oy, oh, xl, w.data, r.data, b.data, sl, h0l, &p, work);
        float *wy = layout ? swap01(y.data, S * D, B, H) : y.data; /* [S, D, B, H] -> [B, S*D, H] */
        float *wh = layout ? swap01(yh.data, D, B, H) : yh.data;
        char what[96];
        snprintf(what, sizeof what, "torch %s layout %d Y", cas, layout);
        check_close_f(what, oy, wy, y.count, 2e-5, 1e-4);
        snprintf(what, sizeof what, "torch %s layout %d Y_h", cas, layout);
        check_close_f(what, oh, wh, yh.count, 2e-5, 1e-4);
        if (op == OP_LSTM) {
            float *wc = layout ? swap01(yc.data, D, B, H) : yc.data;
            snprintf(what, sizeof what, "torch %s layout %d Y_c", cas, layout);
            check_close_f(what, oc, wc, yc.count, 2e-5, 1e-4);
            if (layout)
                free(wc), free(c0l);
        }
        if (layout)
            free(xl), free(h0l), free(wy), free(wh);
    }
    free(work); free(oy); free(oh); free(oc);
    free(x.data); free(w.data); free(r.data); free(b.data); free(h0.data); free(y.data); free(yh.data);
    free(lens.data); free(params.data); free(c0.data); free(yc.data);
}

static void torch_norms(void)
{
    Npy x, y, s, b, m, v, p, mo, io;
    if (load_case("batchnorm", "x", &x, true) && load_case("batchnorm", "y", &y, true) &&
        load_case("batchnorm", "scale", &s, true) && load_case("batchnorm", "bias", &b, true) &&
        load_case("batchnorm", "mean", &m, true) && load_case("batchnorm", "var", &v, true) &&
        load_case("batchnorm", "params", &p, true)) {
        float *out = rand_floats(y.count);
        float eps = (float)((int64_t *)p.data)[0] * 1e-6f;
        batchnorm_forward(out, x.data, s.data, b.data, m.data, v.data, x.shape[0], x.shape[1],
                          x.shape[2] * x.shape[3], eps);
        check_close_f("torch batchnorm", out, y.data, y.count, 2e-5, 1e-4);
        free(out); free(x.data); free(y.data); free(s.data); free(b.data); free(m.data); free(v.data); free(p.data);
    }
    if (load_case("instancenorm", "x", &x, true) && load_case("instancenorm", "y", &y, true) &&
        load_case("instancenorm", "scale", &s, true) && load_case("instancenorm", "bias", &b, true) &&
        load_case("instancenorm", "params", &p, true)) {
        float *out = rand_floats(y.count);
        float eps = (float)((int64_t *)p.data)[0] * 1e-6f;
        instancenorm_forward(out, x.data, s.data, b.data, x.shape[0], x.shape[1], x.shape[2] * x.shape[3], eps);
        check_close_f("torch instancenorm", out, y.data, y.count, 2e-5, 1e-4);
        free(out); free(x.data); free(y.data); free(s.data); free(b.data); free(p.data);
    }
    if (load_case("layernorm", "x", &x, true) && load_case("layernorm", "y", &y, true) &&
        load_case("layernorm", "scale", &s, true) && load_case("layernorm", "bias", &b, true) &&
        load_case("layernorm", "mean", &mo, true) && load_case("layernorm", "inv_std_dev", &io, true) &&
        load_case("layernorm", "params", &p, true)) {
        size_t rows = x.shape[0], cols = x.count / rows;
        float *out = rand_floats(y.count), *om = rand_floats(rows), *oi = rand_floats(rows);
        float eps = (float)((int64_t *)p.data)[0] * 1e-6f;
        layernorm_forward(out, om, oi, x.data, s.data, b.data, rows, cols, eps);
        check_close_f("torch layernorm", out, y.data, y.count, 2e-5, 1e-4);
        check_close_f("torch layernorm mean", om, mo.data, rows, 1e-6, 1e-5);
        check_close_f("torch layernorm inv_std_dev", oi, io.data, rows, 1e-6, 1e-5);
        free(out); free(om); free(oi); free(x.data); free(y.data); free(s.data); free(b.data);
        free(mo.data); free(io.data); free(p.data);
    }
    if (load_case("lrn", "x", &x, true) && load_case("lrn", "y", &y, true) && load_case("lrn", "params", &p, true)) {
        float *out = rand_floats(y.count);
        lrn_forward(out, x.data, x.shape[0], x.shape[1], x.shape[2] * x.shape[3], (size_t)((int64_t *)p.data)[0],
                    1e-2f, 0.75f, 2.0f);
        check_close_f("torch lrn", out, y.data, y.count, 2e-5, 1e-4);
        free(out); free(x.data); free(y.data); free(p.data);
    }
}

static void test_torch_refs(void)
{
    const char *convs[] = {"conv1d", "conv2d", "conv2d_dilated", "conv2d_depthwise", "conv2d_depthwise_mult",
                           "conv2d_1x1", "conv3d"};
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++)
        torch_conv(convs[i], false);
    torch_conv("convtranspose1d", true);
    torch_conv("convtranspose2d", true);
    torch_conv("convtranspose3d", true);
    torch_pool("maxpool1d", PK_MAX);
    torch_pool("maxpool2d_ceil", PK_MAX);
    torch_pool("maxpool2d_dilated", PK_MAX);
    torch_pool("maxpool3d", PK_MAX);
    torch_pool("avgpool1d", PK_AVG);
    torch_pool("avgpool2d_pad", PK_AVG);
    torch_pool("avgpool2d_nopad", PK_AVG);
    torch_pool("avgpool3d", PK_AVG);
    torch_pool("lppool2d_p2", PK_LP);
    torch_pool("lppool1d_p3", PK_LP);
    torch_rnn("lstm_bidir", OP_LSTM);
    torch_rnn("lstm_fwd", OP_LSTM);
    torch_rnn("gru_bidir", OP_GRU);
    torch_rnn("rnn_bidir", OP_RNN);
    torch_norms();
}

/* ------------------------------------------------------------------------ ONNX backend node cases */

/* Cases exported by make_rt_dense_ref.py: each handler maps the node's attributes to kernel
 * arguments the way codegen must (auto_pad, output_shape, axes, layouts), runs the kernel and compares
 * every present output. */

#define ONNX_DIR "tests/ref/rt_dense/onnx"
enum { MAX_IO = 8 };

typedef struct OnnxCase {
    char name[128], op[64], attrs[1024];
    int n_in, n_out;
    bool has_in[MAX_IO], has_out[MAX_IO];
    Npy in[MAX_IO], out[MAX_IO];
} OnnxCase;

static const char *attr_find(const OnnxCase *c, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(c->attrs, pat);
    return p ? p + strlen(pat) : NULL;
}

static int64_t attr_int(const OnnxCase *c, const char *key, int64_t def)
{
    const char *v = attr_find(c, key);
    return v ? strtoll(v, NULL, 10) : def;
}

static double attr_float(const OnnxCase *c, const char *key, double def)
{
    const char *v = attr_find(c, key);
    return v ? strtod(v, NULL) : def;
}

/* Comma-separated ints: how many (at most max), or -1 if absent. */
static int attr_ints(const OnnxCase *c, const char *key, int64_t *out, int max)
{
    const char *v = attr_find(c, key);
    if (!v)
        return -1;
    int n = 0;
    while (n < max && *v && *v != ' ') {
        char *end;
        out[n++] = strtoll(v, &end, 10);
        v = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int attr_floats(const OnnxCase *c, const char *key, float *out, int max)
{
    const char *v = attr_find(c, key);
    if (!v)
        return -1;
    int n = 0;
    while (n < max && *v && *v != ' ') {
        char *end;
        out[n++] = strtof(v, &end);
        v = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* Item `index` of a comma-separated string attribute, or "" if absent. */
static const char *attr_str(const OnnxCase *c, const char *key, int index, char *buf, size_t n)
{
    const char *v = attr_find(c, key);
    buf[0] = 0;
    for (int i = 0; v && *v && *v != ' '; i++) {
        size_t k = strcspn(v, ", ");
        if (i == index) {
            snprintf(buf, n, "%.*s", (int)k, v);
            break;
        }
        v += k + (v[k] == ',');
    }
    return buf;
}

static float *in_f(const OnnxCase *c, int k) { return k < c->n_in && c->has_in[k] ? c->in[k].data : NULL; }

static size_t norm_axis(int64_t axis, size_t rank) { return (size_t)(axis < 0 ? axis + (int64_t)rank : axis); }

static void onnx_compare(const OnnxCase *c, int k, const float *got, double atol, double rtol)
{
    char what[200];
    snprintf(what, sizeof what, "onnx %s output %d", c->name, k);
    check_close_f(what, got, c->out[k].data, c->out[k].count, atol, rtol);
}

static void onnx_gemm(OnnxCase *c)
{
    Npy *a = &c->in[0], *b = &c->in[1];
    bool ta = attr_int(c, "transA", 0), tb = attr_int(c, "transB", 0);
    size_t m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
    size_t n = tb ? b->shape[0] : b->shape[1];
    size_t c_rows = 1, c_cols = 1;
    if (in_f(c, 2)) {
        Npy *cc = &c->in[2];
        c_rows = cc->rank == 2 ? cc->shape[0] : 1;
        c_cols = cc->rank >= 1 ? cc->shape[cc->rank - 1] : 1;
    }
    float *y = rand_floats(m * n);
    gemm_forward(y, a->data, b->data, in_f(c, 2), m, n, k, ta, tb, (float)attr_float(c, "alpha", 1.0),
                 (float)attr_float(c, "beta", 1.0), c_rows, c_cols);
    onnx_compare(c, 0, y, 1e-5, 1e-5);
    free(y);
}

static void onnx_matmul(OnnxCase *c)
{
    Npy *a = &c->in[0], *b = &c->in[1];
    size_t m = a->rank == 1 ? 1 : a->shape[a->rank - 2], k = a->shape[a->rank - 1];
    size_t n = b->rank == 1 ? 1 : b->shape[b->rank - 1];
    size_t bd[8], as[8], bs[8];
    size_t r = matmul_batch_strides(a->rank > 2 ? a->rank - 2 : 0, a->shape, b->rank > 2 ? b->rank - 2 : 0,
                                    b->shape, m, n, k, bd, as, bs);
    float *y = rand_floats(c->out[0].count);
    matmul_forward(y, a->data, b->data, m, n, k, r, bd, as, bs);
    onnx_compare(c, 0, y, 1e-5, 1e-5);
    free(y);
}

/* The window of a Conv/ConvTranspose/pool node: kernel from kernel_shape (or W), out from Y's shape,
 * pads explicit or resolved from auto_pad / output_shape. */
static SpatialWindow onnx_window(const OnnxCase *c, const Npy *x, const Npy *y, const Npy *w, bool transpose)
{
    SpatialWindow win = {0};
    int64_t ks[3], st[3], dl[3], pads[6], op[3];
    win.nd = x->rank - 2;
    int nk = attr_ints(c, "kernel_shape", ks, 3), ns = attr_ints(c, "strides", st, 3);
    int ndl = attr_ints(c, "dilations", dl, 3), np = attr_ints(c, "pads", pads, 6);
    int nop = attr_ints(c, "output_padding", op, 3);
    char ap[32];
    attr_str(c, "auto_pad", 0, ap, sizeof ap);
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    bool upper = !strcmp(ap, "SAME_UPPER");
    int64_t tmp[3];
    bool out_shape = transpose && attr_ints(c, "output_shape", tmp, 3) > 0;
    for (size_t d = 0; d < win.nd; d++) {
        win.in[d] = x->shape[2 + d];
        win.out[d] = y->shape[2 + d];
        win.kernel[d] = nk > 0 ? (size_t)ks[d] : w->shape[2 + d];
        win.stride[d] = ns > 0 ? (size_t)st[d] : 1;
        win.dilation[d] = ndl > 0 ? (size_t)dl[d] : 1;
        long long eff = (long long)(win.dilation[d] * (win.kernel[d] - 1) + 1), s = (long long)win.stride[d];
        long long in = (long long)win.in[d], out = (long long)win.out[d];
        if (same || out_shape) {
            long long total = transpose ? s * (in - 1) + (nop > 0 ? op[d] : 0) + eff - out : (out - 1) * s + eff - in;
            if (total < 0)
                total = 0;
            /* SAME_UPPER puts the odd pad at the end, SAME_LOWER (and ConvTranspose output_shape
             * without auto_pad) at the start; checked against the ONNX cases. */
            long long begin = upper ? total / 2 : total - total / 2;
            win.pad_begin[d] = (size_t)begin;
            win.pad_end[d] = (size_t)(total - begin);
        } else if (np > 0) {
            win.pad_begin[d] = (size_t)pads[d];
            win.pad_end[d] = (size_t)pads[win.nd + d];
        }
    }
    return win;
}

static void onnx_conv(OnnxCase *c)
{
    bool transpose = !strcmp(c->op, "ConvTranspose");
    Npy *x = &c->in[0], *w = &c->in[1], *y = &c->out[0];
    size_t group = (size_t)attr_int(c, "group", 1);
    SpatialWindow win = onnx_window(c, x, y, w, transpose);
    size_t n = x->shape[0], c_in = x->shape[1], c_out = transpose ? w->shape[1] * group : w->shape[0];
    size_t ws = transpose ? conv_transpose_forward_workspace(n, c_in, c_out, group, &win)
                          : conv_forward_workspace(n, c_in, c_out, group, &win);
    float *work = ws ? xmalloc(ws) : NULL, *out = rand_floats(y->count);
    if (transpose)
        conv_transpose_forward(out, x->data, w->data, in_f(c, 2), n, c_in, c_out, group, &win, work);
    else
        conv_forward(out, x->data, w->data, in_f(c, 2), n, c_in, c_out, group, &win, work);
    onnx_compare(c, 0, out, 1e-5, 1e-5);
    free(out);
    free(work);
}

static void onnx_pool(OnnxCase *c)
{
    Npy *x = &c->in[0], *y = &c->out[0];
    size_t n = x->shape[0], ch = x->shape[1], spatial = prod(x->shape + 2, x->rank - 2);
    float *out = rand_floats(y->count);
    if (!strcmp(c->op, "GlobalAveragePool") || !strcmp(c->op, "GlobalMaxPool")) {
        if (c->op[6] == 'A')
            global_avgpool_forward(out, x->data, n, ch, spatial);
        else
            global_maxpool_forward(out, x->data, n, ch, spatial);
        onnx_compare(c, 0, out, 1e-6, 1e-5);
        free(out);
        return;
    }
    SpatialWindow win = onnx_window(c, x, y, NULL, false);
    if (!strcmp(c->op, "MaxPool")) {
        int64_t *idx = c->n_out > 1 && c->has_out[1] ? xmalloc(y->count * sizeof(int64_t)) : NULL;
        maxpool_forward(out, idx, x->data, n, ch, &win);
        if (idx && attr_int(c, "storage_order", 0) == 1)
            maxpool_indices_column_major(idx, y->count, &win);
        if (idx) {
            char what[200];
            snprintf(what, sizeof what, "onnx %s Indices", c->name);
            check_equal_i64(what, idx, c->out[1].data, c->out[1].count);
            free(idx);
        }
    } else {
        avgpool_forward(out, x->data, n, ch, &win, attr_int(c, "count_include_pad", 0) != 0);
    }
    onnx_compare(c, 0, out, 1e-6, 1e-5);
    free(out);
}

static void onnx_norm(OnnxCase *c)
{
    Npy *x = &c->in[0], *y = &c->out[0];
    float *out = rand_floats(y->count);
    size_t spatial = x->rank > 2 ? prod(x->shape + 2, x->rank - 2) : 1;
    if (!strcmp(c->op, "BatchNormalization")) {
        batchnorm_forward(out, x->data, in_f(c, 1), in_f(c, 2), in_f(c, 3), in_f(c, 4), x->shape[0], x->shape[1],
                          spatial, (float)attr_float(c, "epsilon", 1e-5));
    } else if (!strcmp(c->op, "InstanceNormalization")) {
        instancenorm_forward(out, x->data, in_f(c, 1), in_f(c, 2), x->shape[0], x->shape[1], spatial,
                             (float)attr_float(c, "epsilon", 1e-5));
    } else if (!strcmp(c->op, "LRN")) {
        lrn_forward(out, x->data, x->shape[0], x->shape[1], spatial, (size_t)attr_int(c, "size", 1),
                    (float)attr_float(c, "alpha", 1e-4), (float)attr_float(c, "beta", 0.75),
                    (float)attr_float(c, "bias", 1.0));
    } else { /* LayerNormalization */
        size_t axis = norm_axis(attr_int(c, "axis", -1), x->rank);
        size_t rows = prod(x->shape, axis), cols = x->count / rows;
        float *mean = c->n_out > 1 && c->has_out[1] ? rand_floats(rows) : NULL;
        float *inv = c->n_out > 2 && c->has_out[2] ? rand_floats(rows) : NULL;
        layernorm_forward(out, mean, inv, x->data, in_f(c, 1), in_f(c, 2), rows, cols,
                          (float)attr_float(c, "epsilon", 1e-5));
        if (mean)
            onnx_compare(c, 1, mean, 1e-6, 1e-5);
        if (inv)
            onnx_compare(c, 2, inv, 1e-5, 1e-5);
        free(mean);
        free(inv);
    }
    onnx_compare(c, 0, out, 1e-5, 1e-4);
    free(out);
}

static void onnx_softmax(OnnxCase *c)
{
    Npy *x = &c->in[0];
    size_t axis = norm_axis(attr_int(c, "axis", -1), x->rank);
    size_t outer = prod(x->shape, axis), inner = prod(x->shape + axis + 1, x->rank - axis - 1);
    float *out = rand_floats(x->count);
    if (!strcmp(c->op, "Softmax"))
        softmax_forward(out, x->data, outer, x->shape[axis], inner);
    else if (!strcmp(c->op, "LogSoftmax"))
        logsoftmax_forward(out, x->data, outer, x->shape[axis], inner);
    else
        hardmax_forward(out, x->data, outer, x->shape[axis], inner);
    onnx_compare(c, 0, out, 1e-6, 1e-5);
    free(out);
}

static void onnx_reduce(OnnxCase *c)
{
    static const struct { const char *op; ReduceKind kind; } kinds[] = {
        {"ReduceSum", REDUCE_SUM}, {"ReduceMean", REDUCE_MEAN}, {"ReduceMax", REDUCE_MAX},
        {"ReduceMin", REDUCE_MIN}, {"ReduceProd", REDUCE_PROD}, {"ReduceL1", REDUCE_L1},
        {"ReduceL2", REDUCE_L2}, {"ReduceLogSum", REDUCE_LOG_SUM}, {"ReduceLogSumExp", REDUCE_LOG_SUM_EXP},
        {"ReduceSumSquare", REDUCE_SUM_SQUARE}};
    Npy *x = &c->in[0];
    ReduceKind kind = REDUCE_SUM;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(c->op, kinds[i].op))
            kind = kinds[i].kind;
    int64_t axes[8];
    int na = attr_ints(c, "axes", axes, 8);
    if (na < 0 && c->n_in > 1 && c->has_in[1]) { /* axes as an input (ReduceSum 13, all of 18) */
        na = (int)c->in[1].count;
        for (int i = 0; i < na && i < 8; i++)
            axes[i] = ((int64_t *)c->in[1].data)[i];
    }
    uint32_t mask = 0;
    for (int i = 0; i < na; i++)
        mask |= 1u << norm_axis(axes[i], x->rank);
    if (na <= 0)
        mask = attr_int(c, "noop_with_empty_axes", 0) ? 0 : (1u << x->rank) - 1;
    float *out = rand_floats(c->out[0].count);
    reduce_forward(out, x->data, kind, x->rank, x->shape, mask);
    onnx_compare(c, 0, out, 1e-5, 1e-5);
    free(out);
}

static void onnx_arg(OnnxCase *c)
{
    Npy *x = &c->in[0];
    size_t axis = norm_axis(attr_int(c, "axis", 0), x->rank);
    size_t outer = prod(x->shape, axis), inner = prod(x->shape + axis + 1, x->rank - axis - 1);
    int64_t *out = xmalloc(c->out[0].count * sizeof(int64_t));
    bool last = attr_int(c, "select_last_index", 0) != 0;
    if (!strcmp(c->op, "ArgMax"))
        argmax_forward(out, x->data, outer, x->shape[axis], inner, last);
    else
        argmin_forward(out, x->data, outer, x->shape[axis], inner, last);
    char what[200];
    snprintf(what, sizeof what, "onnx %s", c->name);
    check_equal_i64(what, out, c->out[0].data, c->out[0].count);
    free(out);
}

static RnnActivationKind activation_kind(const char *name)
{
    static const struct { const char *name; RnnActivationKind kind; } names[] = {
        {"Sigmoid", RNN_ACT_SIGMOID}, {"Tanh", RNN_ACT_TANH}, {"Relu", RNN_ACT_RELU},
        {"Affine", RNN_ACT_AFFINE}, {"LeakyRelu", RNN_ACT_LEAKY_RELU},
        {"ThresholdedRelu", RNN_ACT_THRESHOLDED_RELU}, {"ScaledTanh", RNN_ACT_SCALED_TANH},
        {"HardSigmoid", RNN_ACT_HARD_SIGMOID}, {"Elu", RNN_ACT_ELU}, {"Softsign", RNN_ACT_SOFTSIGN},
        {"Softplus", RNN_ACT_SOFTPLUS}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcasecmp(name, names[i].name))
            return names[i].kind;
    return RNN_ACT_DEFAULT;
}

static void onnx_rnn(OnnxCase *c)
{
    RnnOp op = !strcmp(c->op, "LSTM") ? OP_LSTM : !strcmp(c->op, "GRU") ? OP_GRU : OP_RNN;
    Npy *x = &c->in[0];
    RnnParams p = {0};
    char dir[32];
    attr_str(c, "direction", 0, dir, sizeof dir);
    p.direction = !strcmp(dir, "reverse") ? RNN_REVERSE : !strcmp(dir, "bidirectional") ? RNN_BIDIRECTIONAL : RNN_FORWARD;
    p.layout = (int)attr_int(c, "layout", 0);
    p.seq_length = x->shape[p.layout ? 1 : 0];
    p.batch = x->shape[p.layout ? 0 : 1];
    p.input_size = x->shape[2];
    p.hidden_size = (size_t)attr_int(c, "hidden_size", 0);
    p.clip = (float)attr_float(c, "clip", 0.0);
    p.input_forget = attr_int(c, "input_forget", 0) != 0;
    p.linear_before_reset = attr_int(c, "linear_before_reset", 0) != 0;
    float alpha[6], beta[6];
    int nal = attr_floats(c, "activation_alpha", alpha, 6), nbe = attr_floats(c, "activation_beta", beta, 6);
    for (int i = 0; i < 6; i++) {
        char name[32];
        p.act[i].kind = activation_kind(attr_str(c, "activations", i, name, sizeof name));
        p.act[i].alpha = i < nal ? alpha[i] : 0.0f;
        p.act[i].beta = i < nbe ? beta[i] : 0.0f;
    }
    int32_t lens[64];
    const int32_t *lp = NULL;
    if (c->n_in > 4 && c->has_in[4]) {
        for (size_t i = 0; i < p.batch && i < 64; i++)
            lens[i] = (int32_t)((int64_t *)c->in[4].data)[i];
        lp = lens;
    }
    size_t ws = op == OP_LSTM ? lstm_forward_workspace(&p) : op == OP_GRU ? gru_forward_workspace(&p)
                                                           : rnn_forward_workspace(&p);
    float *work = xmalloc(ws), *outs[3] = {NULL, NULL, NULL};
    for (int k = 0; k < c->n_out && k < 3; k++)
        if (c->has_out[k])
            outs[k] = rand_floats(c->out[k].count);
    if (op == OP_LSTM)
        lstm_forward(outs[0], outs[1], outs[2], x->data, in_f(c, 1), in_f(c, 2), in_f(c, 3), lp, in_f(c, 5),
                     in_f(c, 6), in_f(c, 7), &p, work);
    else if (op == OP_GRU)
        gru_forward(outs[0], outs[1], x->data, in_f(c, 1), in_f(c, 2), in_f(c, 3), lp, in_f(c, 5), &p, work);
    else
        rnn_forward(outs[0], outs[1], x->data, in_f(c, 1), in_f(c, 2), in_f(c, 3), lp, in_f(c, 5), &p, work);
    for (int k = 0; k < 3; k++)
        if (outs[k]) {
            onnx_compare(c, k, outs[k], 1e-5, 1e-4);
            free(outs[k]);
        }
    free(work);
}

static void test_onnx_cases(void)
{
    static const struct { const char *op; void (*fn)(OnnxCase *); } handlers[] = {
        {"Gemm", onnx_gemm}, {"MatMul", onnx_matmul}, {"Conv", onnx_conv}, {"ConvTranspose", onnx_conv},
        {"MaxPool", onnx_pool}, {"AveragePool", onnx_pool}, {"GlobalAveragePool", onnx_pool},
        {"GlobalMaxPool", onnx_pool}, {"BatchNormalization", onnx_norm},
        {"InstanceNormalization", onnx_norm}, {"LayerNormalization", onnx_norm}, {"LRN", onnx_norm},
        {"Softmax", onnx_softmax}, {"LogSoftmax", onnx_softmax}, {"Hardmax", onnx_softmax},
        {"ArgMax", onnx_arg}, {"ArgMin", onnx_arg}, {"LSTM", onnx_rnn}, {"GRU", onnx_rnn}, {"RNN", onnx_rnn}};
    FILE *f = fopen(ONNX_DIR "/manifest.txt", "r");
    CHECK_MSG(f != NULL, "cannot open " ONNX_DIR "/manifest.txt (run from the repo root)");
    if (!f)
        return;
    char line[2048];
    int ran = 0, listed = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = 0;
        listed++;
        OnnxCase c;
        memset(&c, 0, sizeof c);
        char ins[512] = "", outs[512] = "";
        int used = 0;
        if (sscanf(line, "%127s %63s inputs=%511s outputs=%511s%n", c.name, c.op, ins, outs, &used) < 4) {
            /* "inputs=" may be followed by nothing only for zero-input nodes, which we have none of. */
            CHECK_MSG(0, "bad manifest line: %s", line);
            continue;
        }
        snprintf(c.attrs, sizeof c.attrs, " %s ", line + used);
        void (*fn)(OnnxCase *) = NULL;
        for (size_t i = 0; i < sizeof handlers / sizeof *handlers; i++)
            if (!strcmp(c.op, handlers[i].op))
                fn = handlers[i].fn;
        if (!strncmp(c.op, "Reduce", 6))
            fn = onnx_reduce;
        CHECK_MSG(fn != NULL, "%s: no handler for op %s", c.name, c.op);
        /* inputs=a,,c: entry k present when its name is non-empty; files are in<k>.npy / out<k>.npy */
        const char *lists[2] = {ins, outs};
        bool ok = fn != NULL;
        for (int side = 0; side < 2 && ok; side++) {
            const char *p = lists[side];
            for (int k = 0; k < MAX_IO; k++) {
                size_t len = strcspn(p, ",");
                bool present = len > 0;
                if (side == 0)
                    c.has_in[k] = present, c.n_in = k + 1;
                else
                    c.has_out[k] = present, c.n_out = k + 1;
                if (present) {
                    char path[400];
                    snprintf(path, sizeof path, ONNX_DIR "/%s/%s%d.npy", c.name, side ? "out" : "in", k);
                    ok = npy_load(path, side ? &c.out[k] : &c.in[k]);
                    CHECK_MSG(ok, "cannot read %s", path);
                    if (!ok)
                        break;
                }
                if (!p[len])
                    break;
                p += len + 1;
            }
        }
        if (ok) {
            fn(&c);
            ran++;
        }
        for (int k = 0; k < MAX_IO; k++) {
            free(c.in[k].data);
            free(c.out[k].data);
        }
    }
    fclose(f);
    CHECK_MSG(ran == listed && ran > 200, "ran %d of %d ONNX cases", ran, listed);
}

/* ONNXTUNE_DNNL=0 turns oneDNN off whenever it is set, also after convs ran on oneDNN, and unset turns it
 * back on (conv_dnnl_enabled reads it on every call; it used to keep the first call's answer). */
static void test_dnnl_switch(void)
{
    const char *env = getenv("ONNXTUNE_DNNL");
    char *was = env ? strdup(env) : NULL;
    unsetenv("ONNXTUNE_DNNL");
    bool by_default = conv_dnnl_enabled();
    setenv("ONNXTUNE_DNNL", "0", 1);
    CHECK(!conv_dnnl_enabled());
    setenv("ONNXTUNE_DNNL", "off", 1);
    CHECK(!conv_dnnl_enabled());
    unsetenv("ONNXTUNE_DNNL");
    CHECK(conv_dnnl_enabled() == by_default);
    if (was)
        setenv("ONNXTUNE_DNNL", was, 1);
    free(was);
}

int main(void)
{
    test_gemm();
    test_matmul();
    test_conv();
    test_dnnl_switch();
    test_pool();
    test_norm();
    test_softmax();
    test_reduce();
    test_argmax();
    test_rnn();
    test_torch_refs();
    test_onnx_cases();
    return test_summary("test_rt_dense");
}
