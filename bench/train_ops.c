/* train_ops.c - milliseconds of the non-conv kernels of a training step's trainable part at the
 * shapes of resnet18 layer4 and mobilenet_v2 features[14:] (batch 16, 224x224) and the largest maps
 * of the all-trainable steps: BatchNormalization
 * forward and backward (eval-mode statistics, as scenario B; and training mode), Relu / Clip (ReLU6)
 * forward and backward, the residual Add, and the SGD momentum update over a layer's weights. It
 * checks nothing (test_rt_norm, test_rt_dense and test_grad_* do). 1 thread, process CPU time, median.
 * Build (from the repo root, against a Release build's kernels archive):
 *   gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -fopenmp -Ikernels bench/train_ops.c \
 *       build/libonnxtune_kernels.a /usr/lib/x86_64-linux-gnu/libdnnl.so \
 *       -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -lm -o build/bench_train_ops
 *   OMP_NUM_THREADS=1 ./build/bench_train_ops [reps] */
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *filled(size_t n, unsigned seed)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p)
        exit(2);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((double)(((i + seed) * 2654435761u) % 1000) / 250.0 - 2.0);
    return p;
}

static int REPS = 9;
#define TIME(label, stmt) do {                                          \
        double t[64];                                                   \
        stmt;                                                           \
        for (int r = 0; r < REPS; r++) {                                \
            double t0 = now();                                          \
            stmt;                                                       \
            t[r] = now() - t0;                                          \
        }                                                               \
        qsort(t, (size_t)REPS, sizeof *t, cmp_double);                  \
        printf("  %-26s %8.3f", label, 1e3 * t[REPS / 2]);              \
    } while (0)

int main(int argc, char **argv)
{
    if (argc > 1)
        REPS = atoi(argv[1]) < 1 ? 1 : atoi(argv[1]) > 64 ? 64 : atoi(argv[1]);
    static const struct { const char *name; size_t n, c, spatial, count; } shapes[] = {
        {"resnet18 layer4 [16,512,7,7]", 16, 512, 49, 5},
        {"mobilenet_v2 [16,960,7,7]", 16, 960, 49, 6},
        {"mobilenet_v2 [16,160,7,7]", 16, 160, 49, 3},
        {"mobilenet_v2 [16,576,14,14]", 16, 576, 196, 1},
        {"mobilenet_v2 [16,1280,7,7]", 16, 1280, 49, 1},
        /* all-trainable: the largest maps */
        {"resnet18 conv1 [16,64,112,112]", 16, 64, 12544, 1},
        {"mobilenet_v2 [16,96,112,112]", 16, 96, 12544, 1},
    };
    const float lo = 0.0f, hi = 6.0f;
    printf("ms per call, median of %d, 1 thread CPU time (count = occurrences in the trainable part)\n", REPS);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t n = shapes[s].n, c = shapes[s].c, sp = shapes[s].spatial, len = n * c * sp;
        float *x = filled(len, 1), *dy = filled(len, 2), *y = filled(len, 3), *dx = filled(len, 4);
        float *sc = filled(c, 5), *bi = filled(c, 6), *mean = filled(c, 7), *var = filled(c, 8);
        float *ds = filled(c, 9), *db = filled(c, 10), *rm = filled(c, 11), *rv = filled(c, 12);
        for (size_t i = 0; i < c; i++)
            var[i] = var[i] * var[i] + 0.5f;
        const size_t dims[4] = {n, c, sp, 1}, st[4] = {c * sp, sp, 1, 0};
        printf("%s x%zu\n", shapes[s].name, shapes[s].count);
        TIME("bn fwd (eval)", batchnorm_forward(y, x, sc, bi, mean, var, n, c, sp, 1e-5f));
        TIME("bn bwd (eval, dx dscale dbias)", batchnorm_backward(dx, ds, db, dy, x, sc, mean, var, n, c, sp, 1e-5f, false));
        printf("\n");
        TIME("bn fwd (train)", batchnorm_train_forward(y, rm, rv, x, sc, bi, rm, rv, n, c, sp, 1e-5f, 0.9f, true));
        TIME("bn bwd (train)", batchnorm_backward(dx, ds, db, dy, x, sc, mean, var, n, c, sp, 1e-5f, true));
        printf("\n");
        TIME("relu fwd", unary_forward(UNARY_RELU, RT_FLOAT, y, x, len, 0, 0));
        TIME("relu bwd", unary_backward(UNARY_RELU, dx, dy, x, len, 0, 0));
        printf("\n");
        TIME("clip fwd (relu6)", clip_forward(RT_FLOAT, y, x, len, &lo, &hi));
        TIME("clip bwd (relu6)", clip_backward(dx, dy, x, len, &lo, &hi));
        printf("\n");
        TIME("add", binary_forward(BINARY_ADD, RT_FLOAT, y, x, dy, 3, dims, st, st));
        printf("\n");
        free(x), free(dy), free(y), free(dx), free(sc), free(bi), free(mean), free(var), free(ds), free(db);
        free(rm), free(rv);
        fflush(stdout);
    }
    /* SGD with momentum over layer4's weights (8.4 M values) */
    size_t np = 8398858;
    float *p = filled(np, 1), *g = filled(np, 2), *buf = filled(np, 3);
    printf("sgd momentum, %zu values\n", np);
    TIME("sgd_update", sgd_update(p, g, buf, np, 0.01, 2, 0.9, 0.0, false, 0.0, NULL));
    printf("\n");
    return 0;
}
