/* erf.c - float32 erf for the Erf op and exact Gelu (forward and backward), which libm's scalar erff made
 * 15-20% of a ViT training step. |x| in [0, 4) is cut into eight intervals of width 0.5, each with a
 * degree-10 polynomial in u = |x| - c_k (least-squares fits on Chebyshev nodes against double erf,
 * made by bench/erf_fit.py); |x| >= 4 gives +-1 (erf(3.92) already rounds to 1
 * in float), NaN stays NaN. Max abs error vs double erf about 1e-7 (tests/test_rt_elementwise.c).
 * Interval 0 has c = 0 and no constant term, so small x keep their relative accuracy.
 * Two builds, like conv_dw.c: AVX2+FMA (eight lanes, the eight intervals' coefficients held in one
 * register each and picked by a lane permute) when cpuid says so, unless ONNXTUNE_ERF_ISA=generic; the
 * generic scalar build otherwise. They differ only by FMA rounding. The AVX2 exp also serves Softmax's
 * rows (exp_sub_f32: exp(x - max) and the row's sum; libm expf in the generic build). */
#include "kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ERF_NCOEF 11

/* ERF_COEF[j][k]: coefficient of u^j on interval k (|x| in [k/2, k/2 + 1/2)). */
static const float ERF_COEF[ERF_NCOEF][8] = {
    {0.000000000e+00f, 7.111556530e-01f, 9.229001403e-01f, 9.866716862e-01f, 9.985373020e-01f, 9.998993874e-01f, 9.999957085e-01f, 9.999998808e-01f},
    {1.128379226e+00f, 6.429310441e-01f, 2.365211248e-01f, 5.277499557e-02f, 7.142318878e-03f, 5.862772232e-04f, 2.918902464e-05f, 8.814321859e-07f},
    {-2.916572539e-09f, -4.821982980e-01f, -2.956514060e-01f, -9.235624224e-02f, -1.607021689e-02f, -1.612262451e-03f, -9.486433555e-05f, -3.305370683e-06f},
    {-3.761262894e-01f, 2.678879164e-02f, 1.675357968e-01f, 9.015728533e-02f, 2.172455378e-02f, 2.760388656e-03f, 1.958097273e-04f, 7.969613762e-06f},
    {-1.705085879e-06f, 1.506869644e-01f, -6.159403827e-03f, -4.810221121e-02f, -1.908338442e-02f, -3.258113749e-03f, -2.865693532e-04f, -1.384123971e-05f},
    {1.128547713e-01f, -5.324254930e-02f, -4.718112946e-02f, 6.624359172e-03f, 1.065769792e-02f, 2.755803987e-03f, 3.137963649e-04f, 1.837120362e-05f},
    {-1.040600400e-04f, -2.687255293e-02f, 2.130125090e-02f, 8.963074535e-03f, -2.904366236e-03f, -1.657327637e-03f, -2.635275014e-04f, -1.927271660e-05f},
    {-2.645019814e-02f, 1.842865162e-02f, 3.629374783e-03f, -6.058665924e-03f, -6.711537717e-04f, 6.462062011e-04f, 1.700225548e-04f, 1.626696030e-05f},
    {-1.085554715e-03f, 2.303141635e-03f, -5.696979351e-03f, 7.291507209e-04f, 9.997820016e-04f, -8.900232206e-05f, -8.167675696e-05f, -1.112802875e-05f},
    {7.033641916e-03f, -3.862441750e-03f, 8.230108069e-04f, 8.929182659e-04f, -3.582090430e-04f, -7.388950326e-05f, 2.541504728e-05f, 6.241882147e-06f},
    {-1.795085846e-03f, 1.666166791e-04f, 7.835770375e-04f, -4.299432039e-04f, -1.561843783e-05f, 5.482394045e-05f, -1.942897825e-06f, -2.612528078e-06f},
};
static const float ERF_CENTER[8] = {0.0f, 0.75f, 1.25f, 1.75f, 2.25f, 2.75f, 3.25f, 3.75f};

static float erf_one(float x)
{
    float ax = fabsf(x);
    if (!(ax < 4.0f))                    /* big, inf or NaN */
        return isnan(x) ? x : copysignf(1.0f, x);
    int k = (int)(ax * 2.0f);
    float u = ax - ERF_CENTER[k], r = ERF_COEF[ERF_NCOEF - 1][k];
    for (int j = ERF_NCOEF - 2; j >= 0; j--)
        r = r * u + ERF_COEF[j][k];
    return copysignf(r, x);
}

static void erf_generic(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = erf_one(x[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_ERF_AVX2 1
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

typedef struct ErfVec {
    __m256 coef[ERF_NCOEF], center;
} ErfVec;

static void erf_vec_init(ErfVec *e)
{
    for (int j = 0; j < ERF_NCOEF; j++)
        e->coef[j] = _mm256_loadu_ps(ERF_COEF[j]);
    e->center = _mm256_loadu_ps(ERF_CENTER);
}

static inline __m256 erf_vec(const ErfVec *e, __m256 v)
{
    const __m256 four = _mm256_set1_ps(4.0f), two = _mm256_set1_ps(2.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    const __m256i seven = _mm256_set1_epi32(7);
    __m256 ax = _mm256_andnot_ps(sign, v);
    __m256 big = _mm256_cmp_ps(ax, four, _CMP_GE_OQ);        /* inf too; NaN is unordered: false */
    __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    __m256 a = _mm256_min_ps(ax, four);                      /* NaN lanes become 4 here */
    __m256i k = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_mul_ps(a, two)), seven);
    __m256 u = _mm256_sub_ps(a, _mm256_permutevar8x32_ps(e->center, k));
    __m256 r = _mm256_permutevar8x32_ps(e->coef[ERF_NCOEF - 1], k);
    for (int j = ERF_NCOEF - 2; j >= 0; j--)
        r = _mm256_fmadd_ps(r, u, _mm256_permutevar8x32_ps(e->coef[j], k));
    r = _mm256_blendv_ps(r, one, big);
    r = _mm256_or_ps(r, _mm256_and_ps(v, sign));             /* r >= 0: copysign */
    return _mm256_blendv_ps(r, v, nan);
}

static void erf_avx2(float *y, const float *x, size_t n)
{
    ErfVec e;
    erf_vec_init(&e);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, erf_vec(&e, _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        y[i] = erf_one(x[i]);
}

/* exp(a) for a <= 0 (Cephes' expf: a = n ln2 + r, |r| <= ln2/2, degree-7 polynomial, times 2^n; about
 * 1 ulp); below -87.3 (where expf goes subnormal) it gives 0, NaN stays NaN. */
static inline __m256 exp_neg_avx2(__m256 a)
{
    const __m256 lo = _mm256_set1_ps(-87.3f);
    __m256 under = _mm256_cmp_ps(a, lo, _CMP_LT_OQ), nan = _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
    __m256 x = _mm256_max_ps(a, lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    p = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    p = _mm256_andnot_ps(under, p);
    return _mm256_blendv_ps(p, a, nan);
}

/* dx = dy * 2/sqrt(pi) * exp(-x^2); returns how many it did (a multiple of 8). */
static size_t erf_grad_avx2(float *dx, const float *dy, const float *x, size_t n)
{
    const __m256 k = _mm256_set1_ps(1.12837916709551257f), sign = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp_neg_avx2(_mm256_xor_ps(_mm256_mul_ps(v, v), sign));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_mul_ps(k, e)));
    }
    return i;
}

/* t[i] = exp(-0.5 x[i]^2) */
static size_t gauss_avx2(float *t, const float *x, size_t n)
{
    const __m256 mhalf = _mm256_set1_ps(-0.5f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(t + i, exp_neg_avx2(_mm256_mul_ps(_mm256_mul_ps(mhalf, v), v)));
    }
    return i;
}

/* y[i] = exp(x[i] - mx) for x[i] <= mx (Softmax's rows); returns their sum, in 8 float lanes (the row's
 * terms are in [0, 1]) added up in double. Does the multiples of 8; the caller does the rest. */
static size_t exp_sub_avx2(float *y, const float *x, float mx, size_t n, double *sum)
{
    __m256 m = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    for (int k = 0; k < 8; k++)
        *sum += lanes[k];
    return i;
}

/* Exact Gelu forward and backward in registers (one pass; the generic block loops below made three):
 * the same operations in the same order as gelu_erf_f32's and gelu_erf_backward_f32's scalar tails. */
static size_t gelu_avx2(float *y, const float *x, size_t n)
{
    ErfVec e;
    erf_vec_init(&e);
    const __m256 c = _mm256_set1_ps(0.70710678118654752440f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), t = erf_vec(&e, _mm256_mul_ps(v, c));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
    }
    return i;
}

static size_t gelu_grad_avx2(float *dx, const float *dy, const float *x, size_t n)
{
    ErfVec e;
    erf_vec_init(&e);
    const __m256 c = _mm256_set1_ps(0.70710678f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 mhalf = _mm256_set1_ps(-0.5f), k = _mm256_set1_ps(0.39894228f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), t = erf_vec(&e, _mm256_mul_ps(v, c));
        __m256 g = exp_neg_avx2(_mm256_mul_ps(_mm256_mul_ps(mhalf, v), v));
        __m256 d = _mm256_add_ps(_mm256_mul_ps(half, _mm256_add_ps(one, t)), _mm256_mul_ps(_mm256_mul_ps(v, k), g));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), d));
    }
    return i;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

/* 0 not decided, 1 generic, 2 AVX2 */
static atomic_int erf_isa;

static int choose_isa(void)
{
    if (!erf_isa) {
        int isa = 1;
#ifdef HAVE_ERF_AVX2
        if (rt_use_avx2("ONNXTUNE_ERF_ISA"))
            isa = 2;
#endif
        erf_isa = isa;   /* every thread computes the same value */
    }
    return erf_isa;
}

const char *erf_f32_isa(void)
{
    return choose_isa() == 2 ? "avx2" : "generic";
}

void erf_f32(float *y, const float *x, size_t n)
{
#ifdef HAVE_ERF_AVX2
    if (choose_isa() == 2) {
        erf_avx2(y, x, n);
        return;
    }
#endif
    erf_generic(y, x, n);
}

/* Exact Gelu, 0.5 x (1 + erf(x / sqrt 2)), in blocks so erf_f32 sees whole vectors; y may be x. */
#define GELU_BLOCK 256
void gelu_erf_f32(float *y, const float *x, size_t n)
{
    float t[GELU_BLOCK];
    size_t start = 0;
#ifdef HAVE_ERF_AVX2
    if (choose_isa() == 2)
        start = gelu_avx2(y, x, n);
#endif
    for (size_t lo = start; lo < n; lo += GELU_BLOCK) {
        size_t m = n - lo < GELU_BLOCK ? n - lo : GELU_BLOCK;
        for (size_t i = 0; i < m; i++)
            t[i] = x[lo + i] * 0.70710678118654752440f;
        erf_f32(t, t, m);
        for (size_t i = 0; i < m; i++)
            y[lo + i] = 0.5f * x[lo + i] * (1.0f + t[i]);
    }
}

/* dx = dy (Phi(x) + x phi(x)); dx may be dy. */
void gelu_erf_backward_f32(float *dx, const float *dy, const float *x, size_t n)
{
    float t[GELU_BLOCK], g[GELU_BLOCK];
    size_t start = 0;
#ifdef HAVE_ERF_AVX2
    if (choose_isa() == 2)
        start = gelu_grad_avx2(dx, dy, x, n);
#endif
    for (size_t lo = start; lo < n; lo += GELU_BLOCK) {
        size_t m = n - lo < GELU_BLOCK ? n - lo : GELU_BLOCK, done = 0;
        for (size_t i = 0; i < m; i++)
            t[i] = x[lo + i] * 0.70710678f;
        erf_f32(t, t, m);
#ifdef HAVE_ERF_AVX2
        if (choose_isa() == 2)
            done = gauss_avx2(g, x + lo, m);
#endif
        for (size_t i = done; i < m; i++)
            g[i] = expf(-0.5f * x[lo + i] * x[lo + i]);
        for (size_t i = 0; i < m; i++)
            dx[lo + i] = dy[lo + i] * (0.5f * (1.0f + t[i]) + x[lo + i] * 0.39894228f * g[i]);
    }
}

/* Erf's gradient: dx = dy * 2/sqrt(pi) * exp(-x^2); dx may be dy. */
void erf_backward_f32(float *dx, const float *dy, const float *x, size_t n)
{
    size_t i = 0;
#ifdef HAVE_ERF_AVX2
    if (choose_isa() == 2)
        i = erf_grad_avx2(dx, dy, x, n);
#endif
    for (; i < n; i++)
        dx[i] = dy[i] * (1.12837916709551257f * expf(-x[i] * x[i]));
}

double exp_sub_f32(float *y, const float *x, float mx, size_t n)
{
    double sum = 0.0;
    size_t i = 0;
#ifdef HAVE_ERF_AVX2
    if (choose_isa() == 2)
        i = exp_sub_avx2(y, x, mx, n, &sum);
#endif
    for (; i < n; i++) {
        y[i] = expf(x[i] - mx);
        sum += y[i];
    }
    return sum;
}
