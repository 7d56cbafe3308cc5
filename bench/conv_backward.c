/* conv_backward.c - milliseconds and GFLOP/s of conv_forward, conv_backward_input and
 * conv_backward_weight on every conv geometry of resnet18 and a spread of mobilenet_v2's (224x224,
 * batch 16), with per-model totals weighted by how often each geometry occurs, next to an sgemm of the
 * same MAC count. Medians of repeated runs at 1..N threads; it checks nothing (test_grad_b and
 * test_rt_dense do). ONNXTUNE_DNNL=0 runs conv.c's own paths instead of oneDNN, =plain oneDNN on NCHW.
 * Build (from the repo root, against a Release build's kernels archive):
 *   gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -fopenmp -Ikernels -I/usr/include/x86_64-linux-gnu/openblas-openmp \
 *       bench/conv_backward.c build/libonnxtune_kernels.a /usr/lib/x86_64-linux-gnu/libdnnl.so \
 *       -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *       -lopenblas -lm -o build/bench_conv_backward
 *   ./build/bench_conv_backward [max_threads] [name substring]
 * BENCH_CPU_TIME=1 times by process CPU time instead of wall time (1-thread runs on a loaded machine);
 * BENCH_REPS=n sets the repetitions (default 7). */
#include "kernels.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int REPS = 7;

/* Wall time; with BENCH_CPU_TIME=1 the process's CPU time instead (for 1-thread runs on a loaded
 * machine: waiting for the core is not counted). */
static double now(void)
{
    static int cpu = -1;
    if (cpu < 0)
        cpu = getenv("BENCH_CPU_TIME") && atoi(getenv("BENCH_CPU_TIME")) > 0;
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *filled(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((double)((i * 2654435761u) % 1000) / 1000.0 - 0.5);
    return p;
}

typedef struct ConvShape {
    const char *name;
    size_t n, c_in, c_out, group, in, k, stride;
    size_t count; /* occurrences in the model (for the totals) */
} ConvShape;

typedef struct Case {
    const char *name;
    size_t n, c_in, c_out, group, in, k, stride;
    SpatialWindow win;
    float *x, *w, *y, *dx, *dw, *ws;
    float *ga, *gb, *gc;    /* the sgemm's own operands */
    size_t gm, gn, gk;
    double macs;
} Case;

static void setup(Case *c)
{
    size_t pad = c->k / 2, out = (c->in + 2 * pad - c->k) / c->stride + 1;
    c->win = (SpatialWindow){.nd = 2, .in = {c->in, c->in}, .out = {out, out}, .kernel = {c->k, c->k},
                             .stride = {c->stride, c->stride}, .dilation = {1, 1}, .pad_begin = {pad, pad},
                             .pad_end = {pad, pad}};
    c->x = filled(c->n * c->c_in * c->in * c->in);
    c->dx = filled(c->n * c->c_in * c->in * c->in);
    c->w = filled(c->c_out * c->c_in / c->group * c->k * c->k);
    c->dw = filled(c->c_out * c->c_in / c->group * c->k * c->k);
    c->y = filled(c->n * c->c_out * out * out);
    size_t ws = conv_forward_workspace(c->n, c->c_in, c->c_out, c->group, &c->win);
    size_t a = conv_backward_input_workspace(c->n, c->c_in, c->c_out, c->group, &c->win);
    size_t b = conv_backward_weight_workspace(c->n, c->c_in, c->c_out, c->group, &c->win);
    ws = ws > a ? ws : a;
    ws = ws > b ? ws : b;
    c->ws = filled(ws / sizeof(float) + 16);
    c->macs = (double)(c->n * c->c_out * out * out) * (double)(c->c_in / c->group * c->k * c->k);
    c->gm = c->c_out / c->group;
    c->gk = c->c_in / c->group * c->k * c->k;
    c->gn = c->n * out * out;
    c->ga = filled(c->gm * c->gk);
    c->gb = filled(c->gk * c->gn);
    c->gc = filled(c->gm * c->gn);
}

static void run_forward(Case *c)
{
    conv_forward(c->y, c->x, c->w, NULL, c->n, c->c_in, c->c_out, c->group, &c->win, c->ws);
}

static void run_input(Case *c)
{
    conv_backward_input(c->dx, c->y, c->w, c->n, c->c_in, c->c_out, c->group, &c->win, c->ws);
}

static void run_weight(Case *c)
{
    conv_backward_weight(c->dw, c->y, c->x, c->n, c->c_in, c->c_out, c->group, &c->win, c->ws);
}

/* One GEMM of the same shape as the folded conv: [c_out, c_in*k*k] @ [c_in*k*k, n*out*out] (groups:
 * one group's), the roofline for the GEMM-shaped paths. */
static void run_sgemm(Case *c)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->gm, (int)c->gn, (int)c->gk, 1.0f, c->ga,
                (int)c->gk, c->gb, (int)c->gn, 0.0f, c->gc, (int)c->gn);
}

static double median_time(void (*f)(Case *), Case *c)
{
    double t[64];
    f(c); /* warm up */
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        f(c);
        t[r] = now() - t0;
    }
    qsort(t, REPS, sizeof *t, cmp_double);
    return t[REPS / 2];
}

int main(int argc, char **argv)
{
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    const char *only = argc > 2 ? argv[2] : NULL; /* a substring of the case names */
    if (getenv("BENCH_REPS") && atoi(getenv("BENCH_REPS")) > 0 && atoi(getenv("BENCH_REPS")) <= 64)
        REPS = atoi(getenv("BENCH_REPS"));
    static const ConvShape shapes[] = {
        /* name                                 n   c_in c_out group in  k  stride count */
        {"resnet18 conv1 7x7 s2 3->64 224",     16, 3,   64,   1,   224, 7, 2, 1},
        {"resnet18 layer1 3x3 64->64 56",       16, 64,  64,   1,   56,  3, 1, 4},
        {"resnet18 layer2.0 3x3 s2 64->128",    16, 64,  128,  1,   56,  3, 2, 1},
        {"resnet18 layer2.0 down 1x1 s2",       16, 64,  128,  1,   56,  1, 2, 1},
        {"resnet18 layer2 3x3 128->128 28",     16, 128, 128,  1,   28,  3, 1, 3},
        {"resnet18 layer3.0 3x3 s2 128->256",   16, 128, 256,  1,   28,  3, 2, 1},
        {"resnet18 layer3.0 down 1x1 s2",       16, 128, 256,  1,   28,  1, 2, 1},
        {"resnet18 layer3 3x3 256->256 14",     16, 256, 256,  1,   14,  3, 1, 3},
        {"resnet18 layer4.0 3x3 s2 256->512",   16, 256, 512,  1,   14,  3, 2, 1},
        {"resnet18 layer4.0 down 1x1 s2",       16, 256, 512,  1,   14,  1, 2, 1},
        {"resnet18 layer4 3x3 512->512 7",      16, 512, 512,  1,   7,   3, 1, 3},
        {"mobilenet_v2 conv 3x3 s2 3->32 224",  16, 3,   32,   1,   224, 3, 2, 1},
        {"mobilenet_v2 dw 3x3 32 112",          16, 32,  32,   32,  112, 3, 1, 1},
        {"mobilenet_v2 1x1 16->96 112",         16, 16,  96,   1,   112, 1, 1, 1},
        {"mobilenet_v2 dw 3x3 s2 96 112",       16, 96,  96,   96,  112, 3, 2, 1},
        {"mobilenet_v2 dw 3x3 s2 144 56",       16, 144, 144,  144, 56,  3, 2, 1},
        {"mobilenet_v2 dw 3x3 s2 192 28",       16, 192, 192,  192, 28,  3, 2, 1},
        {"mobilenet_v2 dw 3x3 s2 576 14",       16, 576, 576,  576, 14,  3, 2, 1},
        {"mobilenet_v2 1x1 24->144 56",         16, 24,  144,  1,   56,  1, 1, 2},
        {"mobilenet_v2 dw 3x3 144 56",          16, 144, 144,  144, 56,  3, 1, 1},
        {"mobilenet_v2 1x1 144->24 56",         16, 144, 24,   1,   56,  1, 1, 1},
        {"mobilenet_v2 1x1 192->32 28",         16, 192, 32,   1,   28,  1, 1, 2},
        {"mobilenet_v2 dw 3x3 192 28",          16, 192, 192,  192, 28,  3, 1, 2},
        {"mobilenet_v2 1x1 64->384 14",         16, 64,  384,  1,   14,  1, 1, 4},
        {"mobilenet_v2 dw 3x3 384 14",          16, 384, 384,  384, 14,  3, 1, 4},
        {"mobilenet_v2 1x1 384->64 14",         16, 384, 64,   1,   14,  1, 1, 3},
        {"mobilenet_v2 1x1 160->960 7",         16, 160, 960,  1,   7,   1, 1, 3},
        {"mobilenet_v2 dw 3x3 960 7",           16, 960, 960,  960, 7,   3, 1, 2},
        {"mobilenet_v2 1x1 960->160 7",         16, 960, 160,  1,   7,   1, 1, 2},
        {"mobilenet_v2 1x1 320->1280 7",        16, 320, 1280, 1,   7,   1, 1, 1},
    };
    size_t ncase = sizeof shapes / sizeof *shapes;
    const char *core = getenv("OPENBLAS_CORETYPE"), *dnnl = getenv("ONNXTUNE_DNNL");
    printf("OPENBLAS_CORETYPE=%s ONNXTUNE_DNNL=%s (oneDNN %s); median of %d runs; GFLOP/s = 2 * MACs / time\n",
           core ? core : "(unset)", dnnl ? dnnl : "(unset)", conv_dnnl_enabled() ? "on" : "off", REPS);
    printf("%-38s %3s %8s %8s %8s %8s %8s %8s %8s\n", "conv (batch 16)", "thr", "fwd ms", "dX ms", "dW ms",
           "fwd GF/s", "dX GF/s", "dW GF/s", "sgemm GF/s");
    double total[2][3][3] = {{{0}}}; /* [model][thread-1][fwd, dX, dW] ms, weighted by count */
    for (size_t i = 0; i < ncase; i++) {
        const ConvShape *sh = &shapes[i];
        Case cs = {.name = sh->name, .n = sh->n, .c_in = sh->c_in, .c_out = sh->c_out, .group = sh->group,
                   .in = sh->in, .k = sh->k, .stride = sh->stride}, *c = &cs;
        if (only && !strstr(c->name, only))
            continue;
        setup(c);
        int model = strncmp(c->name, "resnet18", 8) != 0;
        for (int t = 1; t <= max_threads && t <= 2; t++) {
            rt_set_threads(t);
            double f = median_time(run_forward, c), a = median_time(run_input, c), b = median_time(run_weight, c);
            double g = c->c_in / c->group > 1 ? median_time(run_sgemm, c) : 0;
            double gm = g > 0 ? 2.0 * (double)c->gm * (double)c->gn * (double)c->gk / g * 1e-9 : 0;
            printf("%-38s %3d %8.2f %8.2f %8.2f %8.1f %8.1f %8.1f %8.1f\n", c->name, t, f * 1e3, a * 1e3, b * 1e3,
                   2 * c->macs / f * 1e-9, 2 * c->macs / a * 1e-9, 2 * c->macs / b * 1e-9, gm);
            total[model][t - 1][0] += f * 1e3 * (double)sh->count;
            total[model][t - 1][1] += a * 1e3 * (double)sh->count;
            total[model][t - 1][2] += b * 1e3 * (double)sh->count;
            fflush(stdout);
        }
        free(c->x), free(c->dx), free(c->w), free(c->dw), free(c->y), free(c->ws);
        free(c->ga), free(c->gb), free(c->gc);
    }
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < max_threads && t < 2; t++)
            printf("TOTAL %-32s %3d %8.1f %8.1f %8.1f  (ms per batch, geometries above x count)\n",
                   m ? "mobilenet_v2 (listed convs)" : "resnet18 (all convs)", t + 1, total[m][t][0],
                   total[m][t][1], total[m][t][2]);
    return 0;
}
