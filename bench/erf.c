/* erf.c - ns per element of float erf and exact Gelu, old vs new in one run: libm erff per element (what
 * elementwise.c did before kernels/erf.c), erf.c's generic and AVX2 builds (this file includes erf.c to
 * reach both), the Gelu forward/backward and Erf backward loops old (libm) vs new. One thread, 64k elements in
 * [-4, 4] (L2-resident), medians of 31 interleaved repetitions. Build: see bench/README.md. */
#include "../kernels/erf.c"

#include <stdio.h>
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

enum { N = 65536, REPS = 31 };
static float x[N], y[N], dy[N];

static void libm_erf(void) { for (size_t i = 0; i < N; i++) y[i] = erff(x[i]); }
static void new_generic(void) { erf_generic(y, x, N); }
static void new_avx2(void)
{
#ifdef HAVE_ERF_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        erf_avx2(y, x, N);
        return;
    }
#endif
    erf_generic(y, x, N);
}
static void gelu_old(void) { for (size_t i = 0; i < N; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678f)); }
static void gelu_new(void) { gelu_erf_f32(y, x, N); }
static void gelu_bwd_old(void)
{
    for (size_t i = 0; i < N; i++) {
        float v = x[i];
        y[i] = dy[i] * (0.5f * (1.0f + erff(v * 0.70710678f)) + v * 0.39894228f * expf(-0.5f * v * v));
    }
}
static void gelu_bwd_new(void) { gelu_erf_backward_f32(y, dy, x, N); }
static void erf_bwd_old(void) { for (size_t i = 0; i < N; i++) y[i] = dy[i] * (1.12837916709551257f * expf(-x[i] * x[i])); }
static void erf_bwd_new(void) { erf_backward_f32(y, dy, x, N); }

int main(void)
{
    for (size_t i = 0; i < N; i++) {
        x[i] = -4.0f + 8.0f * (float)((i * 2654435761u) % N) / N;
        dy[i] = 1.0f;
    }
    struct { const char *name; void (*fn)(void); double t[REPS]; } k[] = {
        {"erf libm erff", libm_erf, {0}}, {"erf new generic", new_generic, {0}}, {"erf new avx2", new_avx2, {0}},
        {"gelu fwd old (erff)", gelu_old, {0}}, {"gelu fwd new", gelu_new, {0}},
        {"gelu bwd old (erff)", gelu_bwd_old, {0}}, {"gelu bwd new", gelu_bwd_new, {0}},
        {"erf bwd old (expf)", erf_bwd_old, {0}}, {"erf bwd new", erf_bwd_new, {0}},
    };
    int nk = (int)(sizeof k / sizeof k[0]);
    printf("erf_f32 build picked by cpuid: %s\n", erf_f32_isa());
    for (int r = 0; r < REPS; r++)
        for (int j = 0; j < nk; j++) {
            double t0 = now();
            k[j].fn();
            k[j].t[r] = now() - t0;
        }
    for (int j = 0; j < nk; j++) {
        qsort(k[j].t, REPS, sizeof(double), cmp_double);
        printf("%-22s %7.3f ns/element (quartiles %.3f .. %.3f)\n", k[j].name, k[j].t[REPS / 2] * 1e9 / N,
               k[j].t[REPS / 4] * 1e9 / N, k[j].t[3 * REPS / 4] * 1e9 / N);
    }
    return 0;
}
