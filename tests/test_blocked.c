/* test_blocked.c - the blocked activation layout nChw8c (codegen/layout.c, kernels/blocked.c,
 * conv_forward_layout).
 * Kernels: reorders round-trip; maxpool_forward_blocked and global_avgpool_forward_blocked give
 * exactly pool.c's values (pads, strides, dilations, windows that see no input, NaN); conv_forward_layout
 * with every combination of blocked x / y / residual, BN and activation agrees with conv_forward_fused.
 * Programs: the small CNNs of tests/blocked/ (tests/ref/make_blocked_models.py: residual blocks,
 * MaxPool, GlobalAveragePool, depthwise + ReLU6, unfused elementwise ops, channel counts not a multiple
 * of 8, a conv output that is a graph output) compiled for batch 1 (the batch-2 input runs in two calls:
 * the second on the constant weights oneDNN reordered in the first) with the layout (which values are blocked is
 * checked in the generated C) and with ONNXTUNE_BLOCKED=0, run, and compared with PyTorch and with each
 * other; the blocked program also with ONNXTUNE_DNNL=0, where conv_forward_layout's plain fallback runs.
 * Needs $ONNXTUNE (set by CTest) and a C compiler. */
#include "test.h"

#include "kernels.h"
#include "program.h"

#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint32_t rng = 12345;

static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

static float *rand_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static bool same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (0.1 + fabs((double)b[i])); /* < 1e-4: atol 1e-5, rtol 1e-4 */
        if (!(d <= worst))
            worst = d;
    }
    return worst;
}

static size_t out_size(size_t in, size_t k, size_t s, size_t d, size_t pb, size_t pe)
{
    return (in + pb + pe - (k - 1) * d - 1) / s + 1;
}

static void check_reorders(void)
{
    size_t n = 2, c = 16, sp = 13 * 7;
    float *x = rand_floats(n * c * sp), *b = malloc(n * c * sp * sizeof *b), *p = malloc(n * c * sp * sizeof *p);
    layout_to_blocked(b, x, n, c, sp);
    /* x[1, 11, 5] lives at block (1, 1), position 5, lane 3 */
    CHECK(b[((1 * 2 + 1) * sp + 5) * 8 + 3] == x[(1 * c + 11) * sp + 5]);
    layout_from_blocked(p, b, n, c, sp);
    CHECK(same_bits(p, x, n * c * sp));
    free(x), free(b), free(p);
}

static void check_pools(void)
{
    /* in h, w; kernel; stride; dilation; pads (begin, end) */
    static const size_t cases[][8] = {
        {112, 112, 3, 2, 1, 1, 1, 1}, {9, 7, 2, 2, 1, 0, 0, 0}, {10, 11, 3, 1, 2, 2, 2, 2},
        {5, 5, 3, 3, 1, 1, 2, 2},     /* ceil_mode-like end pad: the last window sees no input in a row */
        {6, 6, 1, 1, 1, 0, 0, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const size_t *q = cases[t];
        size_t n = 2, c = 16;
        SpatialWindow win = {.nd = 2, .in = {q[0], q[1]}, .kernel = {q[2], q[2]}, .stride = {q[3], q[3]},
                             .dilation = {q[4], q[4]}, .pad_begin = {q[5], q[5]}, .pad_end = {q[6], q[7]}};
        for (int i = 0; i < 2; i++)
            win.out[i] = out_size(win.in[i], q[2], q[3], q[4], q[5], i ? q[7] : q[6]);
        if (t == 3) /* one more output than floor mode: its window lies in the end pad */
            win.out[0] = win.out[1] = 3;
        size_t in = q[0] * q[1], out = win.out[0] * win.out[1];
        float *x = rand_floats(n * c * in), *xb = malloc(n * c * in * sizeof *x);
        x[3 * in + 2] = NAN; /* a NaN in the first window of plane 3 and one elsewhere */
        x[5 * in + in / 2] = NAN;
        layout_to_blocked(xb, x, n, c, in);
        float *y = malloc(n * c * out * sizeof *y), *yb = malloc(n * c * out * sizeof *y),
              *yp = malloc(n * c * out * sizeof *y);
        maxpool_forward(y, NULL, x, n, c, &win);
        maxpool_forward_blocked(yb, xb, n, c, &win);
        layout_from_blocked(yp, yb, n, c, out);
        bool same = true;
        for (size_t i = 0; i < n * c * out; i++)
            same = same && (yp[i] == y[i] || (isnan(yp[i]) && isnan(y[i])));
        CHECK_MSG(same, "maxpool_forward_blocked case %zu differs from maxpool_forward", t);
        float g[32], gb[32];
        global_avgpool_forward(g, x, n, c, in);
        global_avgpool_forward_blocked(gb, xb, n, c, in);
        bool gsame = true;
        for (size_t i = 0; i < n * c; i++)
            gsame = gsame && (g[i] == gb[i] || (isnan(g[i]) && isnan(gb[i])));
        CHECK_MSG(gsame, "global_avgpool_forward_blocked case %zu differs", t);
        float *bn = rand_floats(4 * c), *yn = malloc(n * c * in * sizeof *y), *ybn = malloc(n * c * in * sizeof *y);
        for (size_t i = 0; i < c; i++)
            bn[3 * c + i] = 0.5f + fabsf(bn[3 * c + i]);
        batchnorm_forward(yn, x, bn, bn + c, bn + 2 * c, bn + 3 * c, n, c, in, 1e-5f);
        batchnorm_forward_blocked(ybn, xb, bn, bn + c, bn + 2 * c, bn + 3 * c, n, c, in, 1e-5f);
        layout_from_blocked(xb, ybn, n, c, in);
        bool bsame = true;
        for (size_t i = 0; i < n * c * in; i++)
            bsame = bsame && (xb[i] == yn[i] || (isnan(xb[i]) && isnan(yn[i])));
        CHECK_MSG(bsame, "batchnorm_forward_blocked case %zu differs", t);
        free(bn), free(yn), free(ybn);
        free(x), free(xb), free(y), free(yb), free(yp);
    }
}

/* conv_forward_layout against conv_forward_fused on plain tensors, for every layout and epilogue. */
static void check_conv_layouts(void)
{
    typedef struct { size_t c_in, c_out, group, hw, k, s, p; } ConvCase;
    static const ConvCase cases[] = {
        {16, 24, 1, 9, 3, 1, 1}, {16, 16, 16, 10, 3, 2, 1}, {8, 32, 1, 7, 1, 1, 0}, {16, 16, 1, 12, 3, 2, 1},
    };
    size_t n = 2;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const ConvCase *cc = &cases[t];
        SpatialWindow win = {.nd = 2, .in = {cc->hw, cc->hw}, .kernel = {cc->k, cc->k}, .stride = {cc->s, cc->s},
                             .dilation = {1, 1}, .pad_begin = {cc->p, cc->p}, .pad_end = {cc->p, cc->p}};
        win.out[0] = win.out[1] = out_size(cc->hw, cc->k, cc->s, 1, cc->p, cc->p);
        size_t in = cc->hw * cc->hw, out = win.out[0] * win.out[1], ysz = n * cc->c_out * out;
        size_t wsz = cc->c_out * (cc->c_in / cc->group) * cc->k * cc->k;
        float *x = rand_floats(n * cc->c_in * in), *w = rand_floats(wsz), *bias = rand_floats(cc->c_out);
        float *sum = rand_floats(ysz), *bn[4];
        for (int i = 0; i < 4; i++)
            bn[i] = rand_floats(cc->c_out);
        for (size_t i = 0; i < cc->c_out; i++)
            bn[3][i] = 0.5f + fabsf(bn[3][i]); /* variance */
        float *xb = malloc(n * cc->c_in * in * sizeof *x), *sb = malloc(ysz * sizeof *x);
        float *want = malloc(ysz * sizeof *x), *got = malloc(ysz * sizeof *x), *gotp = malloc(ysz * sizeof *x);
        layout_to_blocked(xb, x, n, cc->c_in, in);
        layout_to_blocked(sb, sum, n, cc->c_out, out);
        for (int e = 0; e < 3; e++) { /* plain conv; BN + residual + Relu; Clip */
            ConvEpilogue ep = {0};
            if (e == 1) {
                ep = (ConvEpilogue){.bn_scale = bn[0], .bn_bias = bn[1], .bn_mean = bn[2], .bn_var = bn[3],
                                    .bn_eps = 1e-5f, .sum = sum, .act = {CONV_ACT_RELU, 0, 0}};
            } else if (e == 2) {
                ep.act = (ConvAct){CONV_ACT_CLIP, -0.5f, 0.5f};
            }
            size_t ws = conv_forward_fused_workspace(n, cc->c_in, cc->c_out, cc->group, &win, ep.bn_scale != NULL);
            float *work = malloc(ws ? ws : 1);
            conv_forward_fused(want, x, w, bias, n, cc->c_in, cc->c_out, cc->group, &win, &ep, work);
            for (unsigned layout = 0; layout < 8; layout++) {
                if ((layout & CONV_SUM_BLOCKED) && !ep.sum)
                    continue;
                ConvEpilogue el = ep;
                if (layout & CONV_SUM_BLOCKED)
                    el.sum = sb;
                conv_forward_layout(got, layout & CONV_X_BLOCKED ? xb : x, w, bias, n, cc->c_in, cc->c_out,
                                    cc->group, &win, e ? &el : NULL, layout, work);
                const float *cmp = got;
                if (layout & CONV_Y_BLOCKED) {
                    layout_from_blocked(gotp, got, n, cc->c_out, out);
                    cmp = gotp;
                }
                double err = max_rel(cmp, want, ysz);
                CHECK_MSG(err < 1e-4, "conv case %zu epilogue %d layout %u: max rel. error %g", t, e, layout, err);
            }
            free(work);
        }
        free(x), free(w), free(bias), free(sum), free(xb), free(sb), free(want), free(got), free(gotp);
        for (int i = 0; i < 4; i++)
            free(bn[i]);
    }
}

/* ---- whole programs ---- */

static const char *tool;
static char tmp[PATH_MAX];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[8192], full[8192 + PATH_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s > '%s/log' 2>&1", cmd, tmp);
    int st = system(full);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        char path[PATH_MAX + 8], line[512];
        snprintf(path, sizeof path, "%s/log", tmp);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            fprintf(stderr, "    | %s", line);
        if (f)
            fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool read_npy(const char *path, NpyArray *a)
{
    char err[512];
    if (npy_read(path, a, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "    %s\n", err);
        return false;
    }
    return a->dtype == RT_FLOAT;
}

/* Relative L2 error of NPY got against want; -1 when they cannot be compared. */
static double rel_l2(const char *got, const char *want)
{
    NpyArray g, w;
    if (!read_npy(got, &g))
        return -1;
    if (!read_npy(want, &w)) {
        npy_free(&g);
        return -1;
    }
    double num = 0, den = 0, r = -1;
    if (g.numel == w.numel) {
        const float *a = g.data, *b = w.data;
        for (size_t i = 0; i < g.numel; i++) {
            num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            den += (double)b[i] * b[i];
        }
        r = den > 0 ? sqrt(num / den) : sqrt(num);
    }
    npy_free(&g);
    npy_free(&w);
    return r;
}

/* Lines of a file containing `text`. */
static int count_lines(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int count = 0;
    while (f && fgets(line, sizeof line, f))
        count += strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return count;
}

typedef struct Model {
    const char *name;
    const char *outputs[2];
    int layout_convs, plain_convs, blocked_maxpools, blocked_gaps; /* expected in the generated C */
} Model;

static const Model models[] = {
    {"resnet", {"y"}, 8, 0, 1, 1},
    {"mobilenet", {"y"}, 11, 0, 0, 1},
    /* 12 and 20 channels stay plain; f (16) is a graph output, read by the last conv: plain */
    {"odd", {"f", "y"}, 3, 2, 0, 1},
};

static void check_model(const Model *m)
{
    char prog[PATH_MAX + 64], c_path[PATH_MAX + 80], out[PATH_MAX + 128], got[PATH_MAX + 192], want[PATH_MAX + 192];
    static const char *const variants[] = {"blocked", "plain", "blocked-nodnnl"};
    for (int v = 0; v < 3; v++) {
        snprintf(prog, sizeof prog, "%s/%s-%s", tmp, m->name, v == 1 ? "plain" : "blocked");
        if (v != 2) {
            int rc = run("ONNXTUNE_BLOCKED=%d '%s' compile tests/blocked/%s.onnx --infer --batch 1 -o '%s' --emit-c "
                         "--werror", v == 0, tool, m->name, prog);
            CHECK_MSG(rc == 0, "compile %s (%s) exited %d", m->name, variants[v], rc);
            if (rc)
                return;
            snprintf(c_path, sizeof c_path, "%s.c", prog);
            int layout = count_lines(c_path, "conv_forward_layout("), plain = count_lines(c_path, "conv_forward_fused(") +
                count_lines(c_path, "conv_forward(");
            int pools = count_lines(c_path, "maxpool_forward_blocked("), gaps = count_lines(c_path, "global_avgpool_forward_blocked(");
            CHECK_MSG(layout == (v ? 0 : m->layout_convs) && plain == (v ? m->layout_convs + m->plain_convs : m->plain_convs) &&
                      pools == (v ? 0 : m->blocked_maxpools) && gaps == (v ? 0 : m->blocked_gaps),
                      "%s (%s): %d conv_forward_layout, %d plain convs, %d blocked MaxPools, %d blocked GAPs", m->name,
                      variants[v], layout, plain, pools, gaps);
        }
        snprintf(out, sizeof out, "%s/out-%s-%s", tmp, m->name, variants[v]);
        int rc = run("%s'%s' --input x=tests/blocked/%s_x.npy --output-dir '%s'", v == 2 ? "ONNXTUNE_DNNL=0 " : "", prog,
                     m->name, out);
        CHECK_MSG(rc == 0, "%s (%s) exited %d", m->name, variants[v], rc);
        for (int o = 0; o < 2 && m->outputs[o] && !rc; o++) {
            snprintf(got, sizeof got, "%s/%s.npy", out, m->outputs[o]);
            snprintf(want, sizeof want, "tests/blocked/%s_%s.npy", m->name, m->outputs[o]);
            double err = rel_l2(got, want);
            CHECK_MSG(err >= 0 && err <= 1e-4, "%s (%s) output %s: relative L2 error %g against PyTorch", m->name,
                      variants[v], m->outputs[o], err);
            printf("  %s (%s) %s: rel. error %.2g against PyTorch\n", m->name, variants[v], m->outputs[o], err);
            if (v == 0)
                continue;
            /* against the blocked program's output */
            snprintf(want, sizeof want, "%s/out-%s-blocked/%s.npy", tmp, m->name, m->outputs[o]);
            err = rel_l2(got, want);
            CHECK_MSG(err >= 0 && err <= 1e-5, "%s: %s and blocked output %s differ by %g", m->name, variants[v],
                      m->outputs[o], err);
        }
    }
}

/* A training program's frozen prefix (features_run: batch 1, runtime weights, so its BatchNormalizations
 * stay unfused and run blocked) gives the same features blocked, plain, and blocked without oneDNN. */
static void check_features(void)
{
    char prog[PATH_MAX + 64], c_path[PATH_MAX + 80], feat[3][PATH_MAX + 80];
    for (int v = 0; v < 3; v++) {
        snprintf(prog, sizeof prog, "%s/train-%s", tmp, v == 1 ? "plain" : "blocked");
        if (v != 2) {
            int rc = run("ONNXTUNE_BLOCKED=%d '%s' compile tests/blocked/resnet.onnx --batch 2 --head linear:3 -o '%s' "
                         "--emit-c --werror", v == 0, tool, prog);
            CHECK_MSG(rc == 0, "compile the training program (%d) exited %d", v, rc);
            if (rc)
                return;
            snprintf(c_path, sizeof c_path, "%s.c", prog);
            int bns = count_lines(c_path, "batchnorm_forward_blocked("), convs = count_lines(c_path, "conv_forward_layout(");
            CHECK_MSG(v ? bns == 0 && convs == 0 : bns >= 4 && convs >= 8,
                      "training program (%s): %d blocked BatchNormalizations, %d blocked convs", v ? "plain" : "blocked",
                      bns, convs);
        }
        snprintf(feat[v], sizeof feat[v], "%s/features%d.npy", tmp, v);
        int rc = run("%s'%s' features --x tests/blocked/resnet_x.npy --output '%s'", v == 2 ? "ONNXTUNE_DNNL=0 " : "",
                     prog, feat[v]);
        CHECK_MSG(rc == 0, "features (%d) exited %d", v, rc);
        if (rc)
            return;
        if (v) {
            double err = rel_l2(feat[v], feat[0]);
            CHECK_MSG(err >= 0 && err <= 1e-5, "features %s differ from blocked by %g", v == 1 ? "plain" : "without oneDNN",
                      err);
            printf("  features (%s) against blocked: rel. error %.2g\n", v == 1 ? "plain" : "blocked, no oneDNN", err);
        }
    }
}

/* CONV_W_CONST: oneDNN's reordered weights are kept per weights address; two convs of one geometry
 * (one cache entry) with different weights, called alternately, each keep their own. */
static void check_const_weights(void)
{
    size_t n = 2, c = 16, hw = 6, sp = hw * hw, wsz = c * c * 9;
    SpatialWindow win = {.nd = 2, .in = {hw, hw}, .out = {hw, hw}, .kernel = {3, 3}, .stride = {1, 1},
                         .dilation = {1, 1}, .pad_begin = {1, 1}, .pad_end = {1, 1}};
    float *x = rand_floats(n * c * sp), *xb = malloc(n * c * sp * sizeof *x), *w[2] = {rand_floats(wsz), rand_floats(wsz)};
    float *want = malloc(n * c * sp * sizeof *x), *got = malloc(n * c * sp * sizeof *x), *gotp = malloc(n * c * sp * sizeof *x);
    size_t ws = conv_forward_workspace(n, c, c, 1, &win);
    float *work = malloc(ws ? ws : 1);
    layout_to_blocked(xb, x, n, c, sp);
    for (int call = 0; call < 5; call++) {
        const float *wc = w[call % 2 == 0 && call != 4];
        conv_forward(want, x, wc, NULL, n, c, c, 1, &win, work);
        conv_forward_layout(got, xb, wc, NULL, n, c, c, 1, &win, NULL, CONV_X_BLOCKED | CONV_Y_BLOCKED | CONV_W_CONST, work);
        layout_from_blocked(gotp, got, n, c, sp);
        double err = max_rel(gotp, want, n * c * sp);
        CHECK_MSG(err < 1e-4, "constant weights, call %d: max rel. error %g", call, err);
    }
    free(x), free(xb), free(w[0]), free(w[1]), free(want), free(got), free(gotp), free(work);
}

int main(void)
{
    check_reorders();
    check_const_weights();
    check_pools();
    check_conv_layouts();
    tool = getenv("ONNXTUNE");
    if (!tool) {
        fprintf(stderr, "test_blocked: set ONNXTUNE to the onnxtune binary (CTest does)\n");
        return 1;
    }
    snprintf(tmp, sizeof tmp, "/tmp/onnxtune_test_blocked_XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_model(&models[i]);
    check_features();
    if (!test_failures) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    }
    return test_summary("test_blocked");
}
