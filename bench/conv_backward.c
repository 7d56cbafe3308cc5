/* conv_backward.c - GFLOP/s of conv_backward_input / conv_backward_weight next to conv_forward and an
 * sgemm of the same MAC count, on the convs that train in resnet18's layer4 and mobilenet_v2's last
 * blocks (batch 16). Medians of repeated runs at 1..N threads; it checks nothing (test_grad_b does).
 * Build (from the repo root; -O3 as the Release runtime that programs link):
 *   gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O3 -fopenmp -Iruntime -I/usr/include/x86_64-linux-gnu/openblas-pthread \
 *       bench/conv_backward.c runtime/conv.c runtime/threads.c -lopenblas -lm -o bench_conv_backward
 *   OMP_WAIT_POLICY=passive ./bench_conv_backward [max_threads] [name substring]
 * BENCH_CPU_TIME=1 times by process CPU time instead of wall time (1-thread runs on a loaded machine). */
#include "runtime.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { REPS = 7 };

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
    double t[REPS];
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
    static const ConvShape shapes[] = {
        /* name                                    n   c_in c_out group in  k  stride */
        {"resnet18 layer4 3x3 512->512 7x7", 16, 512, 512, 1, 7, 3, 1},
        {"resnet18 layer4.0 3x3 256->512 s2 14->7", 16, 256, 512, 1, 14, 3, 2},
        {"resnet18 layer4.0 downsample 1x1 s2", 16, 256, 512, 1, 14, 1, 2},
        {"resnet18 layer3 3x3 256->256 14x14", 16, 256, 256, 1, 14, 3, 1},
        {"resnet18 layer1 3x3 64->64 56x56", 16, 64, 64, 1, 56, 3, 1},
        {"mobilenet_v2 1x1 160->960 7x7", 16, 160, 960, 1, 7, 1, 1},
        {"mobilenet_v2 dw 3x3 960 7x7", 16, 960, 960, 960, 7, 3, 1},
        {"mobilenet_v2 dw 3x3 144 56x56", 16, 144, 144, 144, 56, 3, 1},
        {"mobilenet_v2 dw 3x3 s2 144 56->28", 16, 144, 144, 144, 56, 3, 2},
    };
    size_t ncase = sizeof shapes / sizeof *shapes;
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("OPENBLAS_CORETYPE=%s; median of %d runs; GFLOP/s = 2 * MACs / time (the forward conv's MACs)\n",
           core ? core : "(unset)", REPS);
    printf("%-42s %3s %9s %9s %9s %9s %9s\n", "conv (batch 16)", "thr", "fwd ms", "fwd GF/s", "dX GF/s", "dW GF/s",
           "sgemm GF/s");
    for (size_t i = 0; i < ncase; i++) {
        const ConvShape *sh = &shapes[i];
        Case cs = {.name = sh->name, .n = sh->n, .c_in = sh->c_in, .c_out = sh->c_out, .group = sh->group,
                   .in = sh->in, .k = sh->k, .stride = sh->stride}, *c = &cs;
        if (only && !strstr(c->name, only))
            continue;
        setup(c);
        for (int t = 1; t <= max_threads; t++) {
            rt_set_threads(t);
            double f = median_time(run_forward, c), a = median_time(run_input, c), b = median_time(run_weight, c);
            double g = c->c_in / c->group > 1 ? median_time(run_sgemm, c) : 0;
            double gm = g > 0 ? 2.0 * (double)c->gm * (double)c->gn * (double)c->gk / g * 1e-9 : 0;
            printf("%-42s %3d %9.2f %9.1f %9.1f %9.1f %9.1f\n", c->name, t, f * 1e3, 2 * c->macs / f * 1e-9,
                   2 * c->macs / a * 1e-9, 2 * c->macs / b * 1e-9, gm);
        }
        free(c->x), free(c->dx), free(c->w), free(c->dw), free(c->y), free(c->ws);
        free(c->ga), free(c->gb), free(c->gc);
    }
    return 0;
}
