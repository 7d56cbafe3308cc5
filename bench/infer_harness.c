/* infer_harness.c - times the forward pass of one generated model inside one process: warm-up runs,
 * then N timed calls of model_run, median/min/max seconds. The generated file (`onnxtune compile
 * --emit-c`) is #included as MODEL_C so its CgModelInfo types come with it; its own main() is renamed
 * away. Inputs are the given NPY files, else a fixed pseudo-random fill (floats in [-1,1), int64 ids i % 7).
 * It checks no results (tests/zoo.sh does). Built by bench/infer.py; by hand:
 *   cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -DMODEL_C='"PROG.c"' -I program -I data -I kernels -I common -Wa,-I<PROG's folder> \
 *      bench/infer_harness.c BUILD/libonnxtune_{program,data,kernels,common}.a -ldnnl -lopenblas -lm -o PROG.bench
 *   PROG.bench [--threads T] [--repeat N] [--warmup W] [--input FILE.npy ...]     (inputs in model order) */
#define main onnxtune_generated_main
#include MODEL_C
#undef main

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Wall time; with BENCH_CPU_TIME=1 the process's CPU time (1-thread runs on a loaded machine). */
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

static size_t numel(const CgTensorInfo *t)
{
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= (size_t)t->dims[i];
    return n;
}

int main(int argc, char **argv)
{
    const CgModelInfo *m = &model_info;
    int threads = 0, repeat = 20, warmup = 3, nfiles = 0;
    const char *files[64];
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "infer_harness: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--repeat") == 0)
            repeat = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v);
        else if (strcmp(a, "--input") == 0 && nfiles < 64)
            files[nfiles++] = v;
        else {
            fprintf(stderr, "usage: %s [--threads T] [--repeat N] [--warmup W] [--input FILE.npy ...]\n", argv[0]);
            return 2;
        }
    }
    if (repeat < 1 || warmup < 0 || (nfiles && nfiles != m->ninputs)) {
        fprintf(stderr, "infer_harness: want --repeat >= 1 and none or all %d inputs\n", m->ninputs);
        return 2;
    }
    if (threads > 0)
        rt_set_threads(threads);

    void *in[64], *out[64], *ws = NULL;
    NpyArray arr[64];
    for (int k = 0; k < m->ninputs && k < 64; k++) {
        const CgTensorInfo *t = &m->inputs[k];
        size_t n = numel(t), bytes = n * rt_dtype_size((RtDType)t->dtype);
        if (nfiles) {
            char err[512];
            if (npy_read(files[k], &arr[k], err, sizeof err) != NPY_OK) {
                fprintf(stderr, "infer_harness: %s\n", err);
                return 1;
            }
            size_t have = arr[k].dtype == (RtDType)t->dtype ? 1 : 0;
            for (int d = 0; have && d < arr[k].rank; d++)
                have *= arr[k].dims[d];
            if (have != n || arr[k].rank != t->rank) {
                fprintf(stderr, "infer_harness: %s does not have %s's dtype and compiled shape\n", files[k], t->name);
                return 1;
            }
            in[k] = arr[k].data;
            continue;
        }
        if (!(in[k] = calloc(1, bytes + 1))) {
            fprintf(stderr, "infer_harness: out of memory\n");
            return 1;
        }
        if (t->dtype == RT_FLOAT)
            for (size_t i = 0; i < n; i++)
                ((float *)in[k])[i] = (float)((i * 2654435761u) % 2000) / 1000.0f - 1.0f;
        else if (t->dtype == RT_INT64) /* token ids: small, valid for any vocabulary of 7 or more */
            for (size_t i = 0; i < n; i++)
                ((int64_t *)in[k])[i] = (int64_t)(i % 7);
    }
    for (int k = 0; k < m->noutputs && k < 64; k++)
        if (!(out[k] = malloc(numel(&m->outputs[k]) * rt_dtype_size((RtDType)m->outputs[k].dtype) + 1))) {
            fprintf(stderr, "infer_harness: out of memory\n");
            return 1;
        }
    if (m->workspace_bytes && !(ws = aligned_alloc(64, (m->workspace_bytes + 63) / 64 * 64))) {
        fprintf(stderr, "infer_harness: out of memory\n");
        return 1;
    }

    for (int i = 0; i < warmup; i++)
        m->run(in, out, ws);
    double *t = malloc((size_t)repeat * sizeof *t);
    if (!t)
        return 1;
    for (int i = 0; i < repeat; i++) {
        double t0 = now();
        m->run(in, out, ws);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)repeat, sizeof *t, cmp_double);
    printf("median_s=%.6f min_s=%.6f max_s=%.6f repeat=%d batch=%lld\n", t[repeat / 2], t[0], t[repeat - 1], repeat,
           (long long)m->batch);
    return 0;
}
