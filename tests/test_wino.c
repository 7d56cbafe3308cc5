/* test_wino.c - the Winograd F(2x2,3x3) conv (kernels/conv_wino.c) against a float64 direct conv on
 * random data: odd and even sizes 1..15, pads 0..2, 8..64 channels, batches 1-3, bias, ReLU, Clip and
 * a residual, x/y/sum blocked (nChw8c) or plain, through the kernel and through conv.c's entries; the
 * input gradient (conv_backward_input) the same way.
 * Also: the same bits at 1 and 2 threads and for a sample alone or inside a batch, cached weights,
 * and the switches (ONNXTUNE_WINOGRAD=0 / generic decline and conv.c's other paths run). */
#include "kernels.h"
#include "test.h"

#include <omp.h>
#include <stdint.h>

static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_buf(size_t count)
{
    float *p = malloc((count ? count : 1) * sizeof(float));
    for (size_t i = 0; i < count; i++)
        p[i] = frand();
    return p;
}

typedef struct Case {
    size_t n, c, k, ih, iw, p, pe; /* pads: begin p, end pe (both axes) */
    bool bias, sum;
    ConvActKind act;
} Case;

static SpatialWindow window(const Case *t)
{
    SpatialWindow w = {.nd = 2, .in = {t->ih, t->iw}, .kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1},
                       .pad_begin = {t->p, t->p}, .pad_end = {t->pe, t->pe}};
    w.out[0] = t->ih + t->p + t->pe - 2;
    w.out[1] = t->iw + t->p + t->pe - 2;
    return w;
}

/* ref = act(conv + bias + sum) in float64, and scale = sum of |terms| per output (the error's yardstick). */
static void reference(double *ref, double *scale, const float *x, const float *w, const float *b, const float *s,
                      const Case *t, const SpatialWindow *win, const ConvAct *act)
{
    size_t oh = win->out[0], ow = win->out[1];
    for (size_t i = 0; i < t->n; i++)
        for (size_t k = 0; k < t->k; k++)
            for (size_t y = 0; y < oh; y++)
                for (size_t z = 0; z < ow; z++) {
                    double acc = b ? b[k] : 0.0, mag = b ? fabs(b[k]) : 0.0;
                    for (size_t c = 0; c < t->c; c++)
                        for (int u = 0; u < 3; u++)
                            for (int v = 0; v < 3; v++) {
                                long yy = (long)y + u - (long)t->p, zz = (long)z + v - (long)t->p;
                                if (yy < 0 || zz < 0 || yy >= (long)t->ih || zz >= (long)t->iw)
                                    continue;
                                double p = (double)x[((i * t->c + c) * t->ih + (size_t)yy) * t->iw + (size_t)zz] *
                                           w[((k * t->c + c) * 3 + (size_t)u) * 3 + (size_t)v];
                                acc += p;
                                mag += fabs(p);
                            }
                    size_t at = ((i * t->k + k) * oh + y) * ow + z;
                    if (s) {
                        acc += s[at];
                        mag += fabs(s[at]);
                    }
                    if (act->kind == CONV_ACT_RELU)
                        acc = acc < 0 ? 0 : acc;
                    else if (act->kind == CONV_ACT_CLIP)
                        acc = acc < act->lo ? act->lo : acc > act->hi ? act->hi : acc;
                    ref[at] = acc;
                    scale[at] = mag;
                }
}

/* Relative error bound: |y - ref| <= TOL * sum|terms|. F(2x2,3x3) measured at most ~1.5e-7 here, the
 * direct float32 conv ~0.5e-7; 1e-6 leaves room for long channel sums. */
#define TOL 1e-6

static double worst_rel(const float *y, const double *ref, const double *scale, size_t count)
{
    double worst = 0;
    for (size_t i = 0; i < count; i++) {
        double e = fabs((double)y[i] - ref[i]) / (scale[i] > 1e-30 ? scale[i] : 1e-30);
        if (!(e <= worst))
            worst = e; /* NaN sticks */
    }
    return worst;
}

static double worst_seen, direct_err, wino_err;

/* Weights passed as CONV_W_CONST stay allocated to the end: the kernel caches their transform by address,
 * and a freed buffer's address coming back with other weights would break that promise. */
static float *const_weights[256];
static size_t n_const;

static float *keep(const float *w, size_t count)
{
    float *p = malloc(count * sizeof(float));
    memcpy(p, w, count * sizeof(float));
    if (n_const < sizeof const_weights / sizeof *const_weights)
        const_weights[n_const++] = p;
    return p;
}

/* One case through conv_wino_forward with every layout combination and through conv.c's entries. */
static void run_case(const Case *t)
{
    SpatialWindow win = window(t);
    size_t oh = win.out[0], ow = win.out[1];
    size_t xs = t->n * t->c * t->ih * t->iw, ys = t->n * t->k * oh * ow;
    float *x = rand_buf(xs), *w = rand_buf(t->k * t->c * 9), *b = t->bias ? rand_buf(t->k) : NULL;
    float *s = t->sum ? rand_buf(ys) : NULL;
    ConvAct act = {t->act, -0.25f, 0.5f};
    double *ref = malloc(ys * sizeof(double)), *scale = malloc(ys * sizeof(double));
    reference(ref, scale, x, w, b, s, t, &win, &act);
    float *xb = malloc(xs * sizeof(float)), *sbk = s ? malloc(ys * sizeof(float)) : NULL;
    float *y = malloc(ys * sizeof(float)), *yp = malloc(ys * sizeof(float));
    layout_to_blocked(xb, x, t->n, t->c, t->ih * t->iw);
    if (s)
        layout_to_blocked(sbk, s, t->n, t->k, oh * ow);
    float *wc = keep(w, t->k * t->c * 9);
    for (unsigned layout = 0; layout < 8; layout++) {
        if ((layout & CONV_SUM_BLOCKED) && !s)
            continue;
        memset(y, 0xff, ys * sizeof(float)); /* NaN: every output must be written */
        bool took = conv_wino_forward(y, layout & CONV_X_BLOCKED ? xb : x, layout == 7 ? wc : w, b,
                                      !s ? NULL : layout & CONV_SUM_BLOCKED ? sbk : s, t->n, t->c, t->k, 1, &win,
                                      &act, layout | (layout == 7 ? CONV_W_CONST : 0));
        CHECK_MSG(took, "n%zu c%zu k%zu %zux%zu p%zu/%zu: declined", t->n, t->c, t->k, t->ih, t->iw, t->p, t->pe);
        if (!took)
            continue;
        const float *yc = y;
        if (layout & CONV_Y_BLOCKED) {
            layout_from_blocked(yp, y, t->n, t->k, oh * ow);
            yc = yp;
        }
        double e = worst_rel(yc, ref, scale, ys);
        if (e > worst_seen)
            worst_seen = e;
        CHECK_MSG(e <= TOL, "n%zu c%zu k%zu %zux%zu p%zu/%zu bias%d sum%d act%d layout %u: rel error %g",
                  t->n, t->c, t->k, t->ih, t->iw, t->p, t->pe, t->bias, t->sum, (int)t->act, layout, e);
    }
    /* conv.c's entries take it too: conv_forward_layout (blocked), conv_forward_fused, conv_forward */
    ConvEpilogue ep = {.sum = s, .act = act};
    conv_forward_fused(y, x, w, b, t->n, t->c, t->k, 1, &win, &ep, NULL);
    CHECK(worst_rel(y, ref, scale, ys) <= TOL);
    ep.sum = sbk;
    conv_forward_layout(y, xb, wc, b, t->n, t->c, t->k, 1, &win, &ep, CONV_X_BLOCKED | CONV_Y_BLOCKED |
                        (s ? CONV_SUM_BLOCKED : 0) | CONV_W_CONST, NULL);
    layout_from_blocked(yp, y, t->n, t->k, oh * ow);
    CHECK(worst_rel(yp, ref, scale, ys) <= TOL);
    free(x), free(w), free(b), free(s), free(ref), free(scale), free(xb), free(sbk), free(y), free(yp);
}

static void geometries(void)
{
    static const size_t sizes[][2] = {{1, 1}, {2, 3}, {3, 3}, {4, 4}, {5, 7}, {6, 6}, {7, 7}, {8, 9},
                                      {9, 8}, {11, 13}, {14, 14}, {15, 15}, {15, 4}};
    static const size_t chans[][2] = {{8, 8}, {16, 8}, {8, 24}, {24, 16}, {64, 64}, {16, 40}};
    size_t idx = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t p = 0; p <= 2; p++)
            for (size_t ci = 0; ci < sizeof chans / sizeof *chans; ci++, idx++) {
                Case t = {.n = 1 + idx % 3, .c = chans[ci][0], .k = chans[ci][1], .ih = sizes[si][0],
                          .iw = sizes[si][1], .p = p, .pe = p == 2 ? 1 : p, .bias = idx % 2 == 0,
                          .sum = idx % 3 == 1, .act = (ConvActKind)(idx % 3)};
                if (t.ih + t.p + t.pe < 3 || t.iw + t.p + t.pe < 3)
                    continue; /* no output */
                if (chans[ci][0] == 64 && (sizes[si][0] > 9 || p != 1))
                    continue; /* the float64 reference is slow: big channels on a few sizes */
                run_case(&t);
            }
}

/* dx of conv_backward_input (through conv_wino_backward_input, and conv.c's entry) against float64. */
static void backward_case(const Case *t)
{
    SpatialWindow win = window(t);
    size_t oh = win.out[0], ow = win.out[1], xs = t->n * t->c * t->ih * t->iw, ys = t->n * t->k * oh * ow;
    float *dy = rand_buf(ys), *w = rand_buf(t->k * t->c * 9), *dx = malloc(xs * sizeof(float));
    double *ref = malloc(xs * sizeof(double)), *scale = malloc(xs * sizeof(double));
    for (size_t i = 0; i < t->n; i++)
        for (size_t c = 0; c < t->c; c++)
            for (size_t y = 0; y < t->ih; y++)
                for (size_t z = 0; z < t->iw; z++) {
                    double acc = 0, mag = 0;
                    for (size_t k = 0; k < t->k; k++)
                        for (int u = 0; u < 3; u++)
                            for (int v = 0; v < 3; v++) {
                                long yy = (long)y + (long)t->p - u, zz = (long)z + (long)t->p - v;
                                if (yy < 0 || zz < 0 || yy >= (long)oh || zz >= (long)ow)
                                    continue;
                                double p = (double)dy[((i * t->k + k) * oh + (size_t)yy) * ow + (size_t)zz] *
                                           w[((k * t->c + c) * 3 + (size_t)u) * 3 + (size_t)v];
                                acc += p;
                                mag += fabs(p);
                            }
                    size_t at = ((i * t->c + c) * t->ih + y) * t->iw + z;
                    ref[at] = acc;
                    scale[at] = mag;
                }
    memset(dx, 0xff, xs * sizeof(float));
    bool took = conv_wino_backward_input(dx, dy, w, t->n, t->c, t->k, 1, &win);
    CHECK(took);
    double e = worst_rel(dx, ref, scale, xs);
    if (e > worst_seen)
        worst_seen = e;
    CHECK_MSG(took && e <= TOL, "dX n%zu c%zu k%zu %zux%zu p%zu/%zu: rel error %g", t->n, t->c, t->k, t->ih, t->iw,
              t->p, t->pe, e);
    memset(dx, 0xff, xs * sizeof(float));
    conv_backward_input(dx, dy, w, t->n, t->c, t->k, 1, &win, NULL);
    CHECK(worst_rel(dx, ref, scale, xs) <= TOL);
    free(dy), free(w), free(dx), free(ref), free(scale);
}

static void backward(void)
{
    static const size_t sizes[][2] = {{1, 1}, {3, 3}, {4, 5}, {7, 7}, {8, 9}, {14, 13}};
    static const size_t chans[][2] = {{8, 8}, {16, 24}, {40, 16}};
    size_t idx = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t p = 0; p <= 2; p++)
            for (size_t ci = 0; ci < sizeof chans / sizeof *chans; ci++, idx++) {
                Case t = {.n = 1 + idx % 3, .c = chans[ci][0], .k = chans[ci][1], .ih = sizes[si][0],
                          .iw = sizes[si][1], .p = p, .pe = p == 2 ? 1 : p};
                if (t.ih + t.p + t.pe >= 3 && t.iw + t.p + t.pe >= 3)
                    backward_case(&t);
            }
}

/* The same bits at 1 and 2 threads, and for a sample alone and inside a batch (any place). */
static void determinism_case(Case t)
{
    SpatialWindow win = window(&t);
    size_t xi = t.c * t.ih * t.iw, yi = t.k * win.out[0] * win.out[1];
    float *x = rand_buf(t.n * xi), *w = rand_buf(t.k * t.c * 9), *b = rand_buf(t.k), *s = rand_buf(t.n * yi);
    float *y1 = malloc(t.n * yi * sizeof(float)), *y2 = malloc(t.n * yi * sizeof(float));
    float *one = malloc(yi * sizeof(float));
    ConvAct act = {CONV_ACT_RELU, 0, 0};
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK(conv_wino_forward(y1, x, w, b, s, t.n, t.c, t.k, 1, &win, &act, 0));
    omp_set_num_threads(2);
    CHECK(conv_wino_forward(y2, x, w, b, s, t.n, t.c, t.k, 1, &win, &act, 0));
    CHECK(memcmp(y1, y2, t.n * yi * sizeof(float)) == 0);
    for (size_t i = 0; i < t.n; i++) {
        CHECK(conv_wino_forward(one, x + i * xi, w, b, s + i * yi, 1, t.c, t.k, 1, &win, &act, 0));
        CHECK_MSG(memcmp(one, y1 + i * yi, yi * sizeof(float)) == 0, "sample %zu alone differs", i);
    }
    omp_set_num_threads(threads);
    free(x), free(w), free(b), free(s), free(y1), free(y2), free(one);
}

static void determinism(void)
{
    /* several tile blocks; and fewer blocks than threads (9x9: 25 tiles a sample, one block at 1 thread,
     * smaller ones at 2) */
    determinism_case((Case){.n = 3, .c = 32, .k = 48, .ih = 23, .iw = 19, .p = 1, .pe = 1, .bias = true,
                            .sum = true, .act = CONV_ACT_RELU});
    determinism_case((Case){.n = 2, .c = 64, .k = 24, .ih = 9, .iw = 9, .p = 1, .pe = 1, .bias = true,
                            .sum = true, .act = CONV_ACT_RELU});
}

/* ONNXTUNE_WINOGRAD=0 and =generic decline; conv.c's entries then run their other paths (still right);
 * in auto mode a tiny geometry is left to them too. */
static void switches(void)
{
    Case t = {.n = 2, .c = 16, .k = 16, .ih = 10, .iw = 10, .p = 1, .pe = 1, .bias = true, .act = CONV_ACT_CLIP};
    SpatialWindow win = window(&t);
    size_t ys = t.n * t.k * win.out[0] * win.out[1];
    float *x = rand_buf(t.n * t.c * t.ih * t.iw), *w = rand_buf(t.k * t.c * 9), *b = rand_buf(t.k);
    float *y = malloc(ys * sizeof(float)), *yw = malloc(ys * sizeof(float));
    double *ref = malloc(ys * sizeof(double)), *scale = malloc(ys * sizeof(double));
    ConvAct act = {CONV_ACT_CLIP, -0.25f, 0.5f};
    ConvEpilogue ep = {.act = act};
    reference(ref, scale, x, w, b, NULL, &t, &win, &act);
    CHECK(conv_wino_forward(yw, x, w, b, NULL, t.n, t.c, t.k, 1, &win, &act, 0));
    wino_err = worst_rel(yw, ref, scale, ys);
    float *ws = malloc(conv_forward_fused_workspace(t.n, t.c, t.k, 1, &win, false) + 64);
    static const char *const off[] = {"0", "off", "generic"};
    for (int i = 0; i < 3; i++) {
        setenv("ONNXTUNE_WINOGRAD", off[i], 1);
        CHECK(!conv_wino_forward(y, x, w, b, NULL, t.n, t.c, t.k, 1, &win, &act, 0));
        CHECK(!conv_wino_backward_input(y, x, w, t.n, t.c, t.k, 1, &win));
        conv_forward_fused(y, x, w, b, t.n, t.c, t.k, 1, &win, &ep, ws); /* oneDNN (or conv.c) */
        CHECK(worst_rel(y, ref, scale, ys) <= TOL);
        direct_err = worst_rel(y, ref, scale, ys);
    }
    /* with oneDNN off too: conv.c's own im2col path */
    setenv("ONNXTUNE_DNNL", "0", 1);
    conv_forward_fused(y, x, w, b, t.n, t.c, t.k, 1, &win, &ep, ws);
    CHECK(worst_rel(y, ref, scale, ys) <= TOL);
    unsetenv("ONNXTUNE_DNNL");
    setenv("ONNXTUNE_WINOGRAD", "force", 1);
    /* geometries it never takes */
    SpatialWindow s2 = win;
    s2.stride[0] = 2;
    CHECK(!conv_wino_forward(y, x, w, b, NULL, t.n, t.c, t.k, 1, &s2, &act, 0));
    CHECK(!conv_wino_forward(y, x, w, b, NULL, t.n, 12, t.k, 1, &win, &act, 0));
    CHECK(!conv_wino_forward(y, x, w, b, NULL, t.n, t.c, t.k, 2, &win, &act, 0));
    free(x), free(w), free(b), free(y), free(yw), free(ref), free(scale), free(ws);
}

int main(void)
{
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        setenv("ONNXTUNE_WINOGRAD", "force", 1);
        Case t = {.n = 1, .c = 8, .k = 8, .ih = 8, .iw = 8, .p = 1, .pe = 1};
        SpatialWindow win = window(&t);
        float buf[8 * 64 * 2] = {0}, wt[8 * 8 * 9] = {0};
        CHECK(!conv_wino_forward(buf, buf + 512, wt, NULL, NULL, 1, 8, 8, 1, &win, NULL, 0));
        printf("test_wino: no AVX2+FMA here: only its refusal is tested\n");
        return test_summary("test_wino");
    }
    setenv("ONNXTUNE_WINOGRAD", "force", 1);
    geometries();
    backward();
    determinism();
    switches();
    for (size_t i = 0; i < n_const; i++)
        free(const_weights[i]);
    printf("test_wino: worst error %.3g of sum|terms| (bound %g); one 16-channel case: Winograd %.3g, "
           "the other path (oneDNN or conv.c) %.3g\n", worst_seen, TOL, wino_err, direct_err);
    return test_summary("test_wino");
}
