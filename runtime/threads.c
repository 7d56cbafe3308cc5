/* threads.c - one place that decides how many threads the kernels use: OpenBLAS for GEMM-shaped
 * work and OpenMP for the rest. It does not pin threads or pick per-kernel counts. */
#include "runtime.h"

#include <cblas.h>
#include <omp.h>

void openblas_set_num_threads(int);

void rt_set_threads(int n)
{
    if (n <= 0)
        return;
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}
