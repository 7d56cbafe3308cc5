/* pool.c - time of resnet18's stem MaxPool (3x3, stride 2, pad 1 on [16, 64, 112, 112]), forward
 * (with and without Indices) and backward, at 1..N threads. Medians of repeated runs; 1-thread times
 * are process CPU time (the machine is shared), others wall time. It checks nothing (the tests do).
 * Build: see bench/README.md. */
#include "kernels.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { REPS = 9 };

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *checked_malloc(size_t bytes)
{
    void *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static float *filled(size_t n)
{
    float *p = checked_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

typedef struct PoolCase {
    size_t n, c;
    SpatialWindow win;
    float *x, *y, *dy, *dx;
    int64_t *indices;
    int which; /* 0 forward, 1 forward with indices, 2 backward */
} PoolCase;

static void run(PoolCase *p)
{
    if (p->which == 2)
        maxpool_backward(p->dx, p->dy, p->x, p->n, p->c, &p->win);
    else
        maxpool_forward(p->y, p->which ? p->indices : NULL, p->x, p->n, p->c, &p->win);
}

/* Median milliseconds per call over REPS runs after one warm-up call. */
static double median_ms(PoolCase *p, clockid_t clock)
{
    double t[REPS];
    run(p);
    for (int i = 0; i < REPS; i++) {
        double t0 = seconds(clock);
        run(p);
        t[i] = seconds(clock) - t0;
    }
    qsort(t, REPS, sizeof *t, cmp_double);
    return t[REPS / 2] * 1e3;
}

int main(int argc, char **argv)
{
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    PoolCase p = {.n = 16, .c = 64};
    p.win.nd = 2;
    for (int d = 0; d < 2; d++) {
        p.win.in[d] = 112;
        p.win.out[d] = 56;
        p.win.kernel[d] = 3;
        p.win.stride[d] = 2;
        p.win.dilation[d] = 1;
        p.win.pad_begin[d] = p.win.pad_end[d] = 1;
    }
    size_t in = p.n * p.c * 112 * 112, out = p.n * p.c * 56 * 56;
    p.x = filled(in);
    p.dx = filled(in);
    p.y = filled(out);
    p.dy = filled(out);
    p.indices = checked_malloc(out * sizeof(int64_t));
    const char *names[] = {"maxpool_forward", "maxpool_forward + indices", "maxpool_backward"};
    printf("MaxPool 3x3/2 pad 1 on [16, 64, 112, 112]; median ms of %d runs (1 thread: CPU time)\n", REPS);
    for (p.which = 0; p.which < 3; p.which++) {
        printf("%-28s", names[p.which]);
        for (int t = 1; t <= max_threads; t++) {
            omp_set_num_threads(t);
            printf("  %d thr %8.2f", t, median_ms(&p, t == 1 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC));
        }
        printf("\n");
    }
    free(p.x); free(p.dx); free(p.y); free(p.dy); free(p.indices);
    return 0;
}
