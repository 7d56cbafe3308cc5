/* settings.c - the run-time settings kernels read: how many threads they use (OpenBLAS for GEMM-shaped
 * work and OpenMP for the rest), the valid rows of a padded batch, whether samples run apart, and hyperparameters set on a
 * training program's command line. It does not pin threads or pick per-kernel counts. */
#include "kernels.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int);

void rt_set_threads(int n)
{
    if (n <= 0)
        return;
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

bool rt_use_avx2(const char *env)
{
    const char *v = getenv(env);
    if (v && strcmp(v, "generic") == 0)
        return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static size_t batch_rows;
static bool hyper_set[RT_HYPER_COUNT];
static double hyper_value[RT_HYPER_COUNT];

void rt_set_batch_rows(size_t rows)
{
    batch_rows = rows;
}

size_t rt_batch_rows(size_t compiled)
{
    return batch_rows && batch_rows < compiled ? batch_rows : compiled;
}

static size_t samples_apart;

void rt_set_samples_apart(size_t samples)
{
    samples_apart = samples;
}

size_t rt_samples_apart(void)
{
    return samples_apart;
}

void rt_set_hyper(RtHyper h, double value)
{
    if ((unsigned)h < RT_HYPER_COUNT) {
        hyper_set[h] = true;
        hyper_value[h] = value;
    }
}

double rt_hyper(RtHyper h, double compiled)
{
    return (unsigned)h < RT_HYPER_COUNT && hyper_set[h] ? hyper_value[h] : compiled;
}
