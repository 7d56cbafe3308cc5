/* conv_wino.c - ms per call of resnet18's 3x3 stride-1 convs (pad 1, fused ReLU, constant weights, x and
 * y in nChw8c as the compiled forward pass keeps them; then their input gradients, plain) on Winograd (kernels/conv_wino.c,
 * ONNXTUNE_WINOGRAD=force) against oneDNN (=0), interleaved, medians of BENCH_REPS (default 7) calls
 * after a warm-up, by process CPU time at 1 thread (wall time at more: BENCH_WALL=1). Checks nothing
 * (tests/test_wino.c does). Build (from the repo root, against a Release build's kernels archive):
 *   gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -fopenmp -Ikernels -I/usr/include/x86_64-linux-gnu/openblas-openmp \
 *       bench/conv_wino.c build/libonnxtune_kernels.a /usr/lib/x86_64-linux-gnu/libdnnl.so \
 *       -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *       -lopenblas -lm -o build/bench_conv_wino
 *   OMP_NUM_THREADS=1 ./build/bench_conv_wino [batch ...] */
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(getenv("BENCH_WALL") ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const size_t geo[][2] = {{64, 56}, {128, 28}, {256, 14}, {512, 7}}; /* channels, size */
    int reps = getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 7;
    size_t batches[8] = {16, 1}, nb = 2;
    if (argc > 1)
        for (nb = 0; nb + 1 < (size_t)argc && nb < 8; nb++)
            batches[nb] = (size_t)atoi(argv[nb + 1]);
    printf("| direction | batch | channels | size | oneDNN ms | Winograd ms | ratio | direct GFLOP/s oneDNN / Winograd |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int dx = 0; dx < 2; dx++)
    for (size_t bi = 0; bi < nb; bi++)
        for (size_t g = 0; g < sizeof geo / sizeof *geo; g++) {
            size_t n = batches[bi], c = geo[g][0], s = geo[g][1];
            SpatialWindow win = {.nd = 2, .in = {s, s}, .out = {s, s}, .kernel = {3, 3}, .stride = {1, 1},
                                 .dilation = {1, 1}, .pad_begin = {1, 1}, .pad_end = {1, 1}};
            size_t xs = n * c * s * s;
            float *x = malloc(xs * sizeof(float)), *y = malloc(xs * sizeof(float));
            float *w = malloc(c * c * 9 * sizeof(float)), *b = malloc(c * sizeof(float));
            for (size_t i = 0; i < xs; i++)
                x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
            for (size_t i = 0; i < c * c * 9; i++)
                w[i] = (float)((i * 40503u) % 1000) / 30000.0f - 0.016f;
            for (size_t i = 0; i < c; i++)
                b[i] = 0.01f * (float)(i % 7);
            ConvEpilogue ep = {.act = {CONV_ACT_RELU, 0, 0}};
            unsigned layout = CONV_X_BLOCKED | CONV_Y_BLOCKED | CONV_W_CONST;
            double t[2][64];
            for (int r = -1; r < reps && r < 64; r++)
                for (int k = 0; k < 2; k++) {
                    setenv("ONNXTUNE_WINOGRAD", k ? "force" : "0", 1);
                    double t0 = now();
                    if (dx) /* plain dY and dX, as training programs keep them */
                        conv_backward_input(y, x, w, n, c, c, 1, &win, NULL);
                    else
                        conv_forward_layout(y, x, w, b, n, c, c, 1, &win, &ep, layout, NULL);
                    if (r >= 0)
                        t[k][r] = now() - t0;
                }
            qsort(t[0], (size_t)reps, sizeof(double), cmp_double);
            qsort(t[1], (size_t)reps, sizeof(double), cmp_double);
            double d = t[0][reps / 2], wi = t[1][reps / 2], flop = 2.0 * (double)(n * c * c * 9 * s * s);
            printf("| %s | %zu | %zu | %zux%zu | %.2f | %.2f | %.2f | %.1f / %.1f |\n", dx ? "dX" : "fwd", n, c, s, s, d * 1e3, wi * 1e3,
                   wi / d, flop / d * 1e-9, flop / wi * 1e-9);
            fflush(stdout);
            free(x), free(y), free(w), free(b);
        }
    return 0;
}
