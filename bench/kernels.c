/* kernels.c - GFLOP/s of the GEMM-shaped runtime kernels against the sgemm roofline: square sgemm,
 * resnet18's 3x3 conv (64 -> 64 at 56x56), 1x1 convs and a depthwise conv, at 1 and 2 threads.
 * Medians of repeated runs; it checks nothing (test_rt_dense does). Build: see bench/README.md. */
#include "kernels.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

enum { REPS = 21 };

typedef void (*BenchFn)(void *ctx);

/* Median seconds per call over REPS runs (after 3 warm-up calls); *best gets the fastest run, the
 * better estimate when the machine is shared (contention only ever adds time). */
static double median_time(BenchFn fn, void *ctx, double *best)
{
    double t[REPS];
    for (int i = 0; i < 3; i++)
        fn(ctx);
    for (int i = 0; i < REPS; i++) {
        double t0 = now();
        fn(ctx);
        t[i] = now() - t0;
    }
    qsort(t, REPS, sizeof *t, cmp_double);
    *best = t[0];
    return t[REPS / 2];
}

typedef struct SgemmCase {
    size_t m, n, k;
    float *a, *b, *c;
} SgemmCase;

static void run_sgemm(void *ctx)
{
    SgemmCase *s = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1.0f, s->a,
                (int)s->k, s->b, (int)s->n, 0.0f, s->c, (int)s->n);
}

typedef struct ConvCase {
    const char *name;
    size_t n, c_in, c_out, group, hw, k, stride;
    SpatialWindow win;
    float *x, *w, *b, *y, *work;
} ConvCase;

static void run_conv(void *ctx)
{
    ConvCase *c = ctx;
    conv_forward(c->y, c->x, c->w, c->b, c->n, c->c_in, c->c_out, c->group, &c->win, c->work);
}

static void conv_setup(ConvCase *c)
{
    memset(&c->win, 0, sizeof c->win);
    c->win.nd = 2;
    size_t pad = c->k / 2, out = (c->hw + 2 * pad - c->k) / c->stride + 1;
    for (int d = 0; d < 2; d++) {
        c->win.in[d] = c->hw;
        c->win.out[d] = out;
        c->win.kernel[d] = c->k;
        c->win.stride[d] = c->stride;
        c->win.dilation[d] = 1;
        c->win.pad_begin[d] = c->win.pad_end[d] = pad;
    }
    c->x = filled(c->n * c->c_in * c->hw * c->hw);
    c->w = filled(c->c_out * c->c_in / c->group * c->k * c->k);
    c->b = filled(c->c_out);
    c->y = filled(c->n * c->c_out * out * out);
    size_t ws = conv_forward_workspace(c->n, c->c_in, c->c_out, c->group, &c->win);
    c->work = ws ? malloc(ws) : NULL;
}

static double conv_flops(const ConvCase *c)
{
    double out = (double)(c->win.out[0] * c->win.out[1]);
    return 2.0 * (double)c->n * (double)c->c_out * out * (double)(c->c_in / c->group) * (double)(c->k * c->k);
}

int main(int argc, char **argv)
{
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t sq[] = {512, 1024, 2048};
    ConvCase convs[] = {
        {"conv 3x3 64->64 56x56 (resnet18 layer1)", 1, 64, 64, 1, 56, 3, 1, {0}, 0, 0, 0, 0, 0},
        {"conv 3x3 128->128 28x28 (resnet18 layer2)", 1, 128, 128, 1, 28, 3, 1, {0}, 0, 0, 0, 0, 0},
        {"conv 3x3 64->64 56x56 batch 16", 16, 64, 64, 1, 56, 3, 1, {0}, 0, 0, 0, 0, 0},
        {"conv 3x3 256->256 14x14 batch 16", 16, 256, 256, 1, 14, 3, 1, {0}, 0, 0, 0, 0, 0},
        {"conv 3x3 512->512 7x7 batch 16", 16, 512, 512, 1, 7, 3, 1, {0}, 0, 0, 0, 0, 0},
        {"conv 1x1 64->64 56x56", 1, 64, 64, 1, 56, 1, 1, {0}, 0, 0, 0, 0, 0},
        {"conv 1x1 64->256 56x56", 1, 64, 256, 1, 56, 1, 1, {0}, 0, 0, 0, 0, 0},
        {"conv 1x1 64->128 56x56 stride 2", 1, 64, 128, 1, 56, 1, 2, {0}, 0, 0, 0, 0, 0},
        {"depthwise 3x3 144 56x56", 1, 144, 144, 144, 56, 3, 1, {0}, 0, 0, 0, 0, 0},
        {"depthwise 3x3 144 112x112 stride 2", 1, 144, 144, 144, 112, 3, 2, {0}, 0, 0, 0, 0, 0},
    };
    size_t nconv = sizeof convs / sizeof *convs;
    for (size_t i = 0; i < nconv; i++)
        conv_setup(&convs[i]);

    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("OPENBLAS_CORETYPE=%s; GFLOP/s, median of %d runs\n", core ? core : "(unset)", REPS);
    printf("%-44s", "kernel");
    for (int t = 1; t <= max_threads; t++)
        printf("  %d thr: ms GF/s (best)", t);
    printf("\n");

    for (size_t i = 0; i < sizeof sq / sizeof *sq; i++) {
        SgemmCase s = {sq[i], sq[i], sq[i], filled(sq[i] * sq[i]), filled(sq[i] * sq[i]), filled(sq[i] * sq[i])};
        char name[64];
        snprintf(name, sizeof name, "sgemm %zux%zux%zu", sq[i], sq[i], sq[i]);
        printf("%-44s", name);
        for (int t = 1; t <= max_threads; t++) {
            rt_set_threads(t);
            double best, sec = median_time(run_sgemm, &s, &best), flop = 2.0 * (double)(s.m * s.n * s.k);
            printf("  %8.3f %6.1f (%5.1f)", sec * 1e3, flop / sec * 1e-9, flop / best * 1e-9);
        }
        printf("\n");
        free(s.a); free(s.b); free(s.c);
    }
    /* The GEMM inside the 3x3 conv alone: y[64, 3136] = w[64, 576] @ col[576, 3136]. */
    {
        SgemmCase s = {64, 3136, 576, filled(64 * 576), filled(576 * 3136), filled(64 * 3136)};
        printf("%-44s", "sgemm 64x3136x576 (the 3x3 conv's GEMM)");
        for (int t = 1; t <= max_threads; t++) {
            rt_set_threads(t);
            double best, sec = median_time(run_sgemm, &s, &best), flop = 2.0 * (double)(s.m * s.n * s.k);
            printf("  %8.3f %6.1f (%5.1f)", sec * 1e3, flop / sec * 1e-9, flop / best * 1e-9);
        }
        printf("\n");
        free(s.a); free(s.b); free(s.c);
    }
    for (size_t i = 0; i < nconv; i++) {
        printf("%-44s", convs[i].name);
        for (int t = 1; t <= max_threads; t++) {
            rt_set_threads(t);
            double best, sec = median_time(run_conv, &convs[i], &best), flop = conv_flops(&convs[i]);
            printf("  %8.3f %6.1f (%5.1f)", sec * 1e3, flop / sec * 1e-9, flop / best * 1e-9);
        }
        printf("\n");
    }
    for (size_t i = 0; i < nconv; i++) {
        free(convs[i].x); free(convs[i].w); free(convs[i].b); free(convs[i].y); free(convs[i].work);
    }
    return 0;
}
