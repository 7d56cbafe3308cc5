/* conv_dw.c - the depthwise conv kernels (kernels/conv_dw_body.h) built twice, for baseline x86-64 and
 * for AVX2+FMA, and the choice between them: the AVX2 build when the CPU has AVX2 and FMA (cpuid, once),
 * unless ONNXTUNE_DW_ISA=generic says otherwise (tests force each path that way; =avx2 on a CPU without
 * it still runs the generic build). Results differ between the builds only by rounding (FMA, order of
 * the vector lanes is the same); each build gives the same bits whatever the thread count. */
#include "conv_geom.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* scratch for a kernel's thread; aborts when out of memory (the kernels return no status) */
static float *dw_scratch(size_t floats)
{
    float *p = malloc((floats ? floats : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "onnxtune: out of memory (%zu floats of depthwise scratch)\n", floats);
        abort();
    }
    return p;
}

#define DW(name) name##_generic
#include "conv_dw_body.h"
#undef DW

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_DW_AVX2 1
#include <immintrin.h>
/* The AVX2 build of the body: GCC takes a target pragma, clang (the fuzz and sanitizer harnesses) an
 * attribute applied to every function defined up to the pop. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

/* p[0], p[2], ..., p[14] */
static inline __m256 load_even(const float *p)
{
    __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    __m256 s = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)); /* lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* The 3x3 interior of one output row, 8 outputs per step: yo[i] = init + sum of the nine taps over
 * input rows a, b, c at columns i*sw + kw*dw (sw 1 or 2). Returns how many outputs it wrote; the
 * caller's scalar loop does the rest. Reads no input the scalar loop would not read. */
static size_t dw_interior_avx2(float *yo, const float *a, const float *b, const float *c, const float *wp,
                               float init, size_t len, size_t sw, size_t dw)
{
    __m256 w[9];
    for (int k = 0; k < 9; k++)
        w[k] = _mm256_set1_ps(wp[k]);
    __m256 acc0 = _mm256_set1_ps(init);
    size_t i = 0;
    if (sw == 1) {
        for (; i + 8 <= len; i += 8) {
            __m256 acc = acc0;
            acc = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(a + i), acc);
            acc = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(a + i + dw), acc);
            acc = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(a + i + 2 * dw), acc);
            acc = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(b + i), acc);
            acc = _mm256_fmadd_ps(w[4], _mm256_loadu_ps(b + i + dw), acc);
            acc = _mm256_fmadd_ps(w[5], _mm256_loadu_ps(b + i + 2 * dw), acc);
            acc = _mm256_fmadd_ps(w[6], _mm256_loadu_ps(c + i), acc);
            acc = _mm256_fmadd_ps(w[7], _mm256_loadu_ps(c + i + dw), acc);
            acc = _mm256_fmadd_ps(w[8], _mm256_loadu_ps(c + i + 2 * dw), acc);
            _mm256_storeu_ps(yo + i, acc);
        }
    } else if (sw == 2) {
        /* 8 outputs read 16 inputs from each tap's start; the last is one past the last one used */
        for (; i + 9 <= len; i += 8) {
            size_t j = 2 * i;
            __m256 acc = acc0;
            acc = _mm256_fmadd_ps(w[0], load_even(a + j), acc);
            acc = _mm256_fmadd_ps(w[1], load_even(a + j + dw), acc);
            acc = _mm256_fmadd_ps(w[2], load_even(a + j + 2 * dw), acc);
            acc = _mm256_fmadd_ps(w[3], load_even(b + j), acc);
            acc = _mm256_fmadd_ps(w[4], load_even(b + j + dw), acc);
            acc = _mm256_fmadd_ps(w[5], load_even(b + j + 2 * dw), acc);
            acc = _mm256_fmadd_ps(w[6], load_even(c + j), acc);
            acc = _mm256_fmadd_ps(w[7], load_even(c + j + dw), acc);
            acc = _mm256_fmadd_ps(w[8], load_even(c + j + 2 * dw), acc);
            _mm256_storeu_ps(yo + i, acc);
        }
    }
    return i;
}

#define DW_AVX2 1
#define DW(name) name##_avx2
#include "conv_dw_body.h"
#undef DW
#undef DW_AVX2

/* The 2-D 3x3 stride-1 undilated geometry with one output channel per input channel, for which the
 * AVX2 build has its own backward kernels. */
static bool dw_3x3_s1(const Geom3 *g, size_t mult)
{
    return mult == 1 && g->in[0] == 1 && g->out[0] == 1 && g->k[0] == 1 && g->k[1] == 3 && g->k[2] == 3 &&
           g->s[1] == 1 && g->s[2] == 1 && g->d[1] == 1 && g->d[2] == 1 && g->p[1] <= 2 && g->p[2] <= 2;
}

/* dx of a 3x3 stride-1 depthwise conv is the forward 3x3 conv of dy with the kernel flipped and the
 * pads 2 - p: dx[i] = sum_k w[k] dy[i + p - k] = sum_k' w[2 - k'] dy[i + k' - (2 - p)]. */
static void dw_dx_3x3_avx2(float *dx, const float *dy, const float *w, size_t n, size_t c, const Geom3 *g)
{
    Geom3 t = *g;
    for (int i = 0; i < 3; i++) {
        t.in[i] = g->out[i];
        t.out[i] = g->in[i];
        t.p[i] = i ? 2 - g->p[i] : 0;
    }
    t.in_size = g->out_size;
    t.out_size = g->in_size;
    #pragma omp parallel for schedule(static) if (n * c * g->out_size * 9 > 32768)
    for (size_t nc = 0; nc < n * c; nc++) {
        const float *wc = w + nc % c * 9;
        float wf[9];
        for (int k = 0; k < 9; k++)
            wf[k] = wc[8 - k];
        dw_plane_3x3_avx2(dx + nc * g->in_size, dy + nc * g->out_size, wf, 0.0f, &t);
    }
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One channel of dw_dw_3x3_avx2: a function of its own so that the parallel loop's body carries the
 * AVX2 target (clang does not pass it on to the OpenMP outlined region). */
static void dw_dw_3x3_avx2_channel(float *dwt, const float *dy, const float *x, size_t n, size_t c, size_t ch,
                                   const Geom3 *g, const size_t *lo, const size_t *hi, size_t c_lo, size_t v_end)
{
    size_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2], ph = g->p[1], pw = g->p[2];
    double tot[9] = {0};
    for (size_t b = 0; b < n; b++) {
        const float *yp = dy + (b * c + ch) * g->out_size, *xp = x + (b * c + ch) * g->in_size;
        __m256 acc[9];
        float e[9] = {0};
        for (int t = 0; t < 9; t++)
            acc[t] = _mm256_setzero_ps();
        for (size_t oh = 0; oh < OH; oh++) {
            const float *yr = yp + oh * OW;
            for (size_t kh = 0; kh < 3; kh++) {
                long long ih = (long long)(oh + kh) - (long long)ph;
                if (ih < 0 || ih >= (long long)H)
                    continue;
                const float *xr = xp + (size_t)ih * W - pw; /* xr[ow + kw] is under tap kw */
                __m256 a0 = acc[kh * 3], a1 = acc[kh * 3 + 1], a2 = acc[kh * 3 + 2];
                for (size_t i = c_lo; i < v_end; i += 8) {
                    __m256 yv = _mm256_loadu_ps(yr + i);
                    a0 = _mm256_fmadd_ps(yv, _mm256_loadu_ps(xr + i), a0);
                    a1 = _mm256_fmadd_ps(yv, _mm256_loadu_ps(xr + i + 1), a1);
                    a2 = _mm256_fmadd_ps(yv, _mm256_loadu_ps(xr + i + 2), a2);
                }
                acc[kh * 3] = a0, acc[kh * 3 + 1] = a1, acc[kh * 3 + 2] = a2;
                for (size_t kw = 0; kw < 3; kw++) {
                    float s = 0.0f;
                    for (size_t ow = lo[kw]; ow < c_lo; ow++)
                        s += yr[ow] * xr[ow + kw];
                    for (size_t ow = v_end; ow < hi[kw]; ow++)
                        s += yr[ow] * xr[ow + kw];
                    e[kh * 3 + kw] += s;
                }
            }
        }
        for (int t = 0; t < 9; t++)
            tot[t] += (double)hsum(acc[t]) + (double)e[t];
    }
    for (int t = 0; t < 9; t++)
        dwt[ch * 9 + t] = (float)tot[t];
}

/* dW of a 3x3 stride-1 depthwise conv: per plane, nine 8-lane float accumulators (one per tap) take dy's
 * row times x's row shifted by the tap, 8 columns at a time over the columns where every tap is inside
 * x; the edge columns go one by one into nine scalar sums; planes (images) sum in double. */
static void dw_dw_3x3_avx2(float *dwt, const float *dy, const float *x, size_t n, size_t c, const Geom3 *g)
{
    size_t W = g->in[2], OW = g->out[2], pw = g->p[2];
    size_t lo[3], hi[3];
    for (size_t kw = 0; kw < 3; kw++)
        valid_range(OW, W, 1, pw, kw, &lo[kw], &hi[kw]);
    size_t c_lo = lo[0] > lo[2] ? lo[0] : lo[2], c_hi = hi[0] < hi[2] ? hi[0] : hi[2];
    if (c_lo > c_hi)
        c_lo = c_hi;
    size_t v_end = c_lo + (c_hi - c_lo) / 8 * 8; /* the vector loop covers [c_lo, v_end) */
    #pragma omp parallel for schedule(static) if (n * c * g->out_size * 9 > 32768)
    for (size_t ch = 0; ch < c; ch++)
        dw_dw_3x3_avx2_channel(dwt, dy, x, n, c, ch, g, lo, hi, c_lo, v_end);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

/* The 2-D 3x3 stride-2 undilated geometry with one output channel per input channel: both builds have
 * backward kernels of their own for it (conv_dw_body.h). */
static bool dw_3x3_s2(const Geom3 *g, size_t mult)
{
    return mult == 1 && g->in[0] == 1 && g->out[0] == 1 && g->k[0] == 1 && g->k[1] == 3 && g->k[2] == 3 &&
           g->s[1] == 2 && g->s[2] == 2 && g->d[1] == 1 && g->d[2] == 1 && g->p[1] <= 2 && g->p[2] <= 2;
}

/* 0 not decided, 1 generic, 2 AVX2 */
static atomic_int dw_isa;

static int choose_isa(void)
{
    if (!dw_isa) {
        int isa = 1;
#ifdef HAVE_DW_AVX2
        if (rt_use_avx2("ONNXTUNE_DW_ISA"))
            isa = 2;
#endif
        dw_isa = isa;   /* every thread computes the same value */
    }
    return dw_isa;
}

const char *conv_depthwise_isa(void)
{
    return choose_isa() == 2 ? "avx2" : "generic";
}

void conv_dw_forward(float *y, const float *x, const float *w, const float *bias, size_t n, size_t c_in,
                     size_t c_out, const Geom3 *g, const ConvAct *act)
{
#ifdef HAVE_DW_AVX2
    if (choose_isa() == 2) {
        conv_depthwise_avx2(y, x, w, bias, n, c_in, c_out, g, act);
        return;
    }
#endif
    conv_depthwise_generic(y, x, w, bias, n, c_in, c_out, g, act);
}

void conv_dw_backward_input(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                            const Geom3 *g)
{
#ifdef HAVE_DW_AVX2
    if (choose_isa() == 2) {
        if (dw_3x3_s1(g, c_out / c_in))
            dw_dx_3x3_avx2(dx, dy, w, n, c_in, g);
        else if (dw_3x3_s2(g, c_out / c_in))
            dw_dx_3x3s2_avx2(dx, dy, w, n, c_in, g);
        else
            dw_backward_input_avx2(dx, dy, w, n, c_in, c_out, g);
        return;
    }
#endif
    if (dw_3x3_s2(g, c_out / c_in))
        dw_dx_3x3s2_generic(dx, dy, w, n, c_in, g);
    else
        dw_backward_input_generic(dx, dy, w, n, c_in, c_out, g);
}

void conv_dw_backward_weight(float *dw, const float *dy, const float *x, size_t n, size_t c_in, size_t c_out,
                             const Geom3 *g)
{
#ifdef HAVE_DW_AVX2
    if (choose_isa() == 2) {
        if (dw_3x3_s1(g, c_out / c_in))
            dw_dw_3x3_avx2(dw, dy, x, n, c_in, g);
        else if (dw_3x3_s2(g, c_out / c_in))
            dw_dw_3x3s2_avx2(dw, dy, x, n, c_in, g);
        else
            dw_backward_weight_avx2(dw, dy, x, n, c_in, c_out, g);
        return;
    }
#endif
    if (dw_3x3_s2(g, c_out / c_in))
        dw_dw_3x3s2_generic(dw, dy, x, n, c_in, g);
    else
        dw_backward_weight_generic(dw, dy, x, n, c_in, c_out, g);
}
