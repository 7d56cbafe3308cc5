/* pad.c - ms per call of pad_forward as Slice's gradient in the ViT (finetune.py's: [65,16,192] ->
 * [65,16,576], zero pads, the q, k and v thirds), one thread, median of 51. Link it against two builds of
 * the kernels library and run them interleaved to compare (bench/README.md). */
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
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

int main(void)
{
    enum { REPS = 51 };
    size_t xdims[3] = {65, 16, 192}, ydims[3] = {65, 16, 576};
    float *x = calloc(65 * 16 * 192, sizeof(float)), *y = calloc(65 * 16 * 576, sizeof(float));
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        for (int third = 0; third < 3; third++)
            pad_forward(4, y, ydims, x, xdims, 3, (const int64_t[]){0, 0, 192 * third}, PAD_CONSTANT, NULL);
        t[r] = (now() - t0) / 3;
    }
    qsort(t, REPS, sizeof(double), cmp_double);
    double bytes = (65.0 * 16 * 192 + 65.0 * 16 * 576) * 4;
    printf("pad_forward [65,16,192] -> [65,16,576]: %.3f ms (quartiles %.3f .. %.3f), %.2f GB/s\n", t[REPS / 2] * 1e3,
           t[REPS / 4] * 1e3, t[3 * REPS / 4] * 1e3, bytes / t[REPS / 2] * 1e-9);
    free(x);
    free(y);
    return 0;
}
