/* conv_wino.c - Winograd F(2x2, 3x3) forward convolution for 3x3 stride-1 convs (AVX2+FMA), tried by
 * kernels/conv.c before oneDNN, which has no Winograd on AVX2 machines.
 *
 * Each 2x2 output tile comes from a 4x4 input tile: V = B^T d B per tile and input channel, U = G g G^T
 * per output/input channel pair, M[xi] = V[xi] . U[xi] summed over input channels for each of the 16
 * transformed positions xi (16 small GEMMs), Y = A^T M A. That is 16 multiplies per tile and channel
 * pair where the direct conv does 36; the transforms only add and halve (0, +-1, +-1/2), so the error
 * stays close to the direct conv's (tests/test_wino.c measures it against float64).
 *
 * The work goes in blocks of `T` tiles (a few dozen, so that one position's V[xi] stays in L2): the
 * input transform writes V[16][T][C] (8 channels a vector: oneDNN's nChw8c layout, which the compiler
 * keeps between convs, has them side by side), our own micro-kernel multiplies 6 tiles x 16 output
 * channels at a time summing over C in order, and the output transform adds bias and the residual and
 * applies the activation as it writes y. Every output is computed by the same instructions in the same
 * order wherever its tile falls in a block, so results depend neither on the thread count (threads take
 * whole blocks, schedule(static)) nor on a sample's place in the batch (rt_set_samples_apart needs
 * nothing here). Plain NCHW tensors are reordered to nChw8c and back around the same code.
 *
 * U is cached for constant weights (CONV_W_CONST, as conv_dnnl.c caches its reordered weights) and
 * computed on every call otherwise. ONNXTUNE_WINOGRAD=0 (or off, generic) turns it off; =force takes
 * every geometry that fits, also where it is measured slower than oneDNN (tests use it). */
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#if !(defined(__x86_64__) && defined(__GNUC__))

bool conv_wino_forward(float *y, const float *x, const float *w, const float *bias, const float *sum, size_t n,
                       size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act,
                       unsigned layout)
{
    return false;
}

bool conv_wino_backward_input(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                              size_t group, const SpatialWindow *win)
{
    return false;
}

#else

#include <immintrin.h>
#include <omp.h>

typedef enum { WINO_OFF, WINO_AUTO, WINO_FORCE } WinoMode;

static WinoMode wino_mode(void)
{
    /* read on every call, as ONNXTUNE_DNNL: tests switch it between calls */
    const char *v = getenv("ONNXTUNE_WINOGRAD");
    if (v && (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "generic")))
        return WINO_OFF;
    if (!rt_use_avx2("ONNXTUNE_WINOGRAD"))
        return WINO_OFF;
    return v && !strcmp(v, "force") ? WINO_FORCE : WINO_AUTO;
}

/* ---- the weight transform and its cache ---- */

/* U[xi][panel][c][width] for xi = 4*i + j of G g G^T, panels of 16 output channels (the last one 8
 * wide when K % 16 == 8): the micro-kernel reads one panel's C x width block front to back. */

static void weight_transform(float *u, const float *w, size_t C, size_t K, bool flip);

enum { WINO_SLOTS = 64 };

static struct {
    const float *w;
    size_t c, k;
    float *u;
} wino_cache[WINO_SLOTS];

__attribute__((destructor)) static void wino_cache_release(void)
{
    for (size_t i = 0; i < WINO_SLOTS; i++) {
        free(wino_cache[i].u);
        wino_cache[i].u = NULL;
        wino_cache[i].w = NULL;
    }
}

static float *alloc_floats(size_t count, const char *what)
{
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) { /* the kernels return no status: stop rather than compute on nothing */
        fprintf(stderr, "onnxtune: out of memory (%zu bytes for a Winograd conv's %s)\n", bytes, what);
        abort();
    }
    return p;
}

/* Per-call buffers kept between calls (grow-only) outside parallel regions: fresh ones page-faulted on
 * every call (16 MiB of U for 512x512 weights: most of a batch-1 dX call). */
enum { SCR_U, SCR_X, SCR_SUM, SCR_Y, SCR_COUNT };
static struct {
    float *p;
    size_t count;
} scratch[SCR_COUNT];

__attribute__((destructor)) static void scratch_release(void)
{
    for (size_t i = 0; i < SCR_COUNT; i++) {
        free(scratch[i].p);
        scratch[i].p = NULL;
        scratch[i].count = 0;
    }
}

/* count floats: slot's kept buffer (*owned false), or inside a parallel region a fresh one (*owned true). */
static float *scratch_get(int slot, size_t count, const char *what, bool *owned)
{
    *owned = omp_get_level() != 0;
    if (*owned)
        return alloc_floats(count, what);
    if (scratch[slot].count < count) {
        free(scratch[slot].p);
        scratch[slot].p = alloc_floats(count, what);
        scratch[slot].count = count;
    }
    return scratch[slot].p;
}

/* The transformed weights: cached by w's address for constant weights (not inside a parallel region,
 * where the cache would race), else computed into scratch (*owned: the caller frees it). */
static const float *transformed_weights(const float *w, size_t C, size_t K, bool cache, bool *owned)
{
    *owned = false;
    if (cache && omp_get_level() == 0) {
        for (size_t i = 0; i < WINO_SLOTS; i++) {
            if (wino_cache[i].u && wino_cache[i].w == w && wino_cache[i].c == C && wino_cache[i].k == K)
                return wino_cache[i].u;
            if (!wino_cache[i].u) {
                float *u = alloc_floats(16 * C * K, "weights");
                weight_transform(u, w, C, K, false);
                wino_cache[i].w = w;
                wino_cache[i].c = C;
                wino_cache[i].k = K;
                wino_cache[i].u = u;
                return u;
            }
        }
    }
    float *u = scratch_get(SCR_U, 16 * C * K, "weights", owned);
    weight_transform(u, w, C, K, false);
    return u;
}

/* ---- AVX2 bodies ---- */

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

/* Item `it` of weight_transform: one input channel of one panel of 16 (or 8) output channels. */
static void weight_panel(float *u, const float *w, size_t C, size_t K, bool flip, size_t it)
{
    size_t panels = (K + 15) / 16;
    {
        size_t p = flip ? it % panels : it / C, c = flip ? it / panels : it % C;
        size_t p0 = p * 16, width = K - p0 < 16 ? K - p0 : 16;
        {
            float g[9][16]; /* tap-major: the panel's output channels side by side */
            for (size_t k = 0; k < width; k++)
                for (size_t tap = 0; tap < 9; tap++)
                    g[tap][k] = flip ? w[(c * K + p0 + k) * 9 + 8 - tap] : w[((p0 + k) * C + c) * 9 + tap];
            const __m256d half = _mm256_set1_pd(0.5);
            for (size_t k4 = 0; k4 < width; k4 += 4) {
                __m256d d[3][3], t[4][3];
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        d[i][j] = _mm256_cvtps_pd(_mm_loadu_ps(&g[i * 3 + j][k4]));
                for (int j = 0; j < 3; j++) { /* t = G g */
                    t[0][j] = d[0][j];
                    t[1][j] = _mm256_mul_pd(half, _mm256_add_pd(_mm256_add_pd(d[0][j], d[1][j]), d[2][j]));
                    t[2][j] = _mm256_mul_pd(half, _mm256_add_pd(_mm256_sub_pd(d[0][j], d[1][j]), d[2][j]));
                    t[3][j] = d[2][j];
                }
                float *o = u + p0 * C + c * width + k4;
                for (int i = 0; i < 4; i++) { /* t G^T */
                    __m256d r[4] = {
                        t[i][0], _mm256_mul_pd(half, _mm256_add_pd(_mm256_add_pd(t[i][0], t[i][1]), t[i][2])),
                        _mm256_mul_pd(half, _mm256_add_pd(_mm256_sub_pd(t[i][0], t[i][1]), t[i][2])), t[i][2]};
                    for (int j = 0; j < 4; j++)
                        _mm_storeu_ps(o + (size_t)(i * 4 + j) * C * K, _mm256_cvtpd_ps(r[j]));
                }
            }
        }
    }
}

/* One conv's sizes, all tensors nChw8c. */
typedef struct Wino {
    const float *x, *u, *bias, *sum;
    float *y;
    size_t C, K, ih, iw, oh, ow, tw, tiles_img;
    long ph, pw;
    ConvAct act;
} Wino;

/* V[xi][i][C] (row stride C, position stride T*C) for tiles t0 .. t0+cnt. */
static void input_transform(float *V, size_t T, const Wino *a, size_t t0, size_t cnt)
{
    size_t C = a->C, cb_n = C / 8, plane = a->ih * a->iw;
    long ih = (long)a->ih, iw = (long)a->iw;
    const __m256 zero = _mm256_setzero_ps();
    for (size_t i = 0; i < cnt; i++) {
        size_t t = t0 + i, img = t / a->tiles_img, r = t % a->tiles_img;
        long y0 = (long)(r / a->tw * 2) - a->ph, x0 = (long)(r % a->tw * 2) - a->pw;
        bool inside = y0 >= 0 && x0 >= 0 && y0 + 4 <= ih && x0 + 4 <= iw;
        for (size_t cb = 0; cb < cb_n; cb++) {
            const float *xp = a->x + (img * cb_n + cb) * plane * 8;
            __m256 d[4][4];
            if (inside) {
                const float *p = xp + ((size_t)y0 * a->iw + (size_t)x0) * 8;
                for (int u = 0; u < 4; u++)
                    for (int v = 0; v < 4; v++)
                        d[u][v] = _mm256_loadu_ps(p + ((size_t)u * a->iw + (size_t)v) * 8);
            } else {
                for (int u = 0; u < 4; u++)
                    for (int v = 0; v < 4; v++) {
                        long yy = y0 + u, xx = x0 + v;
                        d[u][v] = yy >= 0 && yy < ih && xx >= 0 && xx < iw
                                      ? _mm256_loadu_ps(xp + ((size_t)yy * a->iw + (size_t)xx) * 8) : zero;
                    }
            }
            __m256 s[4][4];
            for (int v = 0; v < 4; v++) { /* B^T d */
                s[0][v] = _mm256_sub_ps(d[0][v], d[2][v]);
                s[1][v] = _mm256_add_ps(d[1][v], d[2][v]);
                s[2][v] = _mm256_sub_ps(d[2][v], d[1][v]);
                s[3][v] = _mm256_sub_ps(d[1][v], d[3][v]);
            }
            float *o = V + i * C + cb * 8;
            size_t step = T * C;
            for (int u = 0; u < 4; u++) { /* (B^T d) B */
                _mm256_storeu_ps(o + (size_t)(u * 4 + 0) * step, _mm256_sub_ps(s[u][0], s[u][2]));
                _mm256_storeu_ps(o + (size_t)(u * 4 + 1) * step, _mm256_add_ps(s[u][1], s[u][2]));
                _mm256_storeu_ps(o + (size_t)(u * 4 + 2) * step, _mm256_sub_ps(s[u][2], s[u][1]));
                _mm256_storeu_ps(o + (size_t)(u * 4 + 3) * step, _mm256_sub_ps(s[u][1], s[u][3]));
            }
        }
    }
}

/* m[r][0..8*NV) = sum over c in order of v[r*ldv + c] * u[c][..]: R tiles by NV vectors of output
 * channels. Every row and lane runs the same chain of FMAs whatever R and NV are, so a tile's result
 * does not depend on the rows beside it. */
static inline __attribute__((always_inline)) void micro(const float *v, size_t ldv, const float *u, size_t C,
                                                        float *m, size_t ldm, int R, int NV)
{
    /* named accumulators: GCC keeps an array of them in memory, a store per FMA */
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    const float *v0 = v, *v1 = v + ldv, *v2 = v + 2 * ldv, *v3 = v + 3 * ldv, *v4 = v + 4 * ldv, *v5 = v + 5 * ldv;
#define ROW(r)                                                                                                    \
    if (R > r) {                                                                                                  \
        __m256 b = _mm256_broadcast_ss(v##r + c);                                                                 \
        a##r##0 = _mm256_fmadd_ps(b, u0, a##r##0);                                                                \
        if (NV == 2)                                                                                              \
            a##r##1 = _mm256_fmadd_ps(b, u1, a##r##1);                                                            \
    }
    for (size_t c = 0; c < C; c++) {
        __m256 u0 = _mm256_loadu_ps(u + c * (size_t)NV * 8);
        __m256 u1 = NV == 2 ? _mm256_loadu_ps(u + c * 16 + 8) : u0;
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
    }
#undef ROW
#define STORE(r)                                                                                                  \
    if (R > r) {                                                                                                  \
        _mm256_storeu_ps(m + (size_t)r * ldm, a##r##0);                                                           \
        if (NV == 2)                                                                                              \
            _mm256_storeu_ps(m + (size_t)r * ldm + 8, a##r##1);                                                   \
    }
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
#undef STORE
}

#define MICRO(R, NV)                                                                                              \
    static void micro_##R##_##NV(const float *v, size_t ldv, const float *u, size_t C, float *m, size_t ldm)     \
    {                                                                                                             \
        micro(v, ldv, u, C, m, ldm, R, NV);                                                                       \
    }
MICRO(1, 1) MICRO(2, 1) MICRO(3, 1) MICRO(4, 1) MICRO(5, 1) MICRO(6, 1)
MICRO(1, 2) MICRO(2, 2) MICRO(3, 2) MICRO(4, 2) MICRO(5, 2) MICRO(6, 2)
#undef MICRO

typedef void (*MicroFn)(const float *, size_t, const float *, size_t, float *, size_t);
static const MicroFn micro_fns[2][6] = {
    {micro_1_1, micro_2_1, micro_3_1, micro_4_1, micro_5_1, micro_6_1},
    {micro_1_2, micro_2_2, micro_3_2, micro_4_2, micro_5_2, micro_6_2},
};

/* M[xi][i][K] = V[xi][i][C] U[xi][C][K] for the block's cnt tiles. */
static void block_gemm(float *M, const float *V, size_t T, const Wino *a, size_t cnt)
{
    size_t C = a->C, K = a->K;
    for (size_t xi = 0; xi < 16; xi++) {
        const float *vx = V + xi * T * C, *ux = a->u + xi * C * K;
        float *mx = M + xi * T * K;
        for (size_t p0 = 0; p0 < K; p0 += 16) {
            size_t width = K - p0 < 16 ? K - p0 : 16;
            const float *up = ux + p0 * C;
            for (size_t r0 = 0; r0 < cnt; r0 += 6) {
                size_t rows = cnt - r0 < 6 ? cnt - r0 : 6;
                micro_fns[width / 8 - 1][rows - 1](vx + r0 * C, C, up, C, mx + r0 * K + p0, K);
            }
        }
    }
}

static inline __m256 activate(__m256 v, const ConvAct *act)
{
    /* the operand order keeps a NaN in v (maxps/minps return their second operand on NaN), as apply_act */
    if (act->kind == CONV_ACT_RELU)
        return _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act->kind == CONV_ACT_CLIP)
        return _mm256_min_ps(_mm256_set1_ps(act->hi), _mm256_max_ps(_mm256_set1_ps(act->lo), v));
    return v;
}

/* y = act(A^T M A + bias + sum) for the block's tiles, the part of each 2x2 tile inside y. */
static void output_transform(const float *M, size_t T, const Wino *a, size_t t0, size_t cnt)
{
    size_t K = a->K, kb_n = K / 8, plane = a->oh * a->ow;
    for (size_t i = 0; i < cnt; i++) {
        size_t t = t0 + i, img = t / a->tiles_img, r = t % a->tiles_img;
        size_t oy = r / a->tw * 2, ox = r % a->tw * 2;
        size_t hy = a->oh - oy < 2 ? 1 : 2, hx = a->ow - ox < 2 ? 1 : 2;
        for (size_t kb = 0; kb < kb_n; kb++) {
            const float *mp = M + i * K + kb * 8;
            size_t step = T * K;
            __m256 s[2][4];
            for (int v = 0; v < 4; v++) { /* A^T m */
                __m256 m0 = _mm256_loadu_ps(mp + (size_t)(0 * 4 + v) * step);
                __m256 m1 = _mm256_loadu_ps(mp + (size_t)(1 * 4 + v) * step);
                __m256 m2 = _mm256_loadu_ps(mp + (size_t)(2 * 4 + v) * step);
                __m256 m3 = _mm256_loadu_ps(mp + (size_t)(3 * 4 + v) * step);
                s[0][v] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                s[1][v] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
            }
            __m256 out[2][2];
            for (int u = 0; u < 2; u++) { /* (A^T m) A */
                out[u][0] = _mm256_add_ps(_mm256_add_ps(s[u][0], s[u][1]), s[u][2]);
                out[u][1] = _mm256_sub_ps(_mm256_sub_ps(s[u][1], s[u][2]), s[u][3]);
            }
            size_t base = (img * kb_n + kb) * plane;
            __m256 b = a->bias ? _mm256_loadu_ps(a->bias + kb * 8) : _mm256_setzero_ps();
            for (size_t u = 0; u < hy; u++)
                for (size_t v = 0; v < hx; v++) {
                    size_t at = (base + (oy + u) * a->ow + ox + v) * 8;
                    __m256 o = out[u][v];
                    if (a->bias)
                        o = _mm256_add_ps(o, b);
                    if (a->sum)
                        o = _mm256_add_ps(o, _mm256_loadu_ps(a->sum + at));
                    _mm256_storeu_ps(a->y + at, activate(o, &a->act));
                }
        }
    }
}

/* Tiles per block, a multiple of 6 (the micro-kernel's rows): one position's V[xi] (T x C floats) about
 * 96 KiB (L2), 48..144 tiles (fewer reuse U too little for 512 channels, more gained nothing at 64;
 * bench/conv_wino.c). ONNXTUNE_WINO_TILES sets it (for measuring). */
static size_t block_tiles(size_t C)
{
    const char *env = getenv("ONNXTUNE_WINO_TILES");
    size_t t = env ? (size_t)strtoul(env, NULL, 10) : 24576 / C;
    if (!env)
        t = t < 48 ? 48 : t > 144 ? 144 : t;
    t = t / 6 * 6;
    return t < 6 ? 6 : t;
}

/* Each thread's tile-block buffer, kept between calls: a fresh one per call costs page faults on every
 * call (~5 % of a batch-1 conv). Only at the outermost parallel level, where thread numbers are unique. */
enum { WINO_THREADS = 256 };
static struct {
    float *p;
    size_t count;
} thread_bufs[WINO_THREADS];

__attribute__((destructor)) static void thread_bufs_release(void)
{
    for (size_t i = 0; i < WINO_THREADS; i++) {
        free(thread_bufs[i].p);
        thread_bufs[i].p = NULL;
        thread_bufs[i].count = 0;
    }
}

/* count floats for this thread: its kept buffer (*owned false) or a fresh one (*owned true). */
static float *tile_buffer(size_t count, bool *owned)
{
    int tid = omp_get_thread_num();
    *owned = omp_get_level() != 1 || tid >= WINO_THREADS;
    if (*owned)
        return alloc_floats(count, "tile block");
    if (thread_bufs[tid].count < count) {
        free(thread_bufs[tid].p);
        thread_bufs[tid].p = alloc_floats(count, "tile block");
        thread_bufs[tid].count = count;
    }
    return thread_bufs[tid].p;
}

static void wino_run(const Wino *a, size_t n)
{
    size_t tiles = n * a->tiles_img, T = block_tiles(a->C);
    /* fewer blocks than threads (batch 1 at 7x7: 16 tiles): smaller blocks, so that every thread has one
     * (a tile's result does not depend on its block) */
    size_t threads = omp_get_level() == 0 ? (size_t)omp_get_max_threads() : 1;
    if (threads > 1 && (tiles + T - 1) / T < threads) {
        size_t per = (tiles + threads - 1) / threads;
        T = per < 6 ? 6 : (per + 5) / 6 * 6;
    }
    size_t blocks = (tiles + T - 1) / T;
    #pragma omp parallel if (blocks > 1)
    {
        bool owned;
        float *V = tile_buffer(16 * T * (a->C + a->K), &owned), *M = V + 16 * T * a->C;
        #pragma omp for schedule(static)
        for (size_t b = 0; b < blocks; b++) {
            size_t t0 = b * T, cnt = tiles - t0 < T ? tiles - t0 : T;
            input_transform(V, T, a, t0, cnt);
            block_gemm(M, V, T, a, cnt);
            output_transform(M, T, a, t0, cnt);
        }
        if (owned)
            free(V);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* U of w[K][C][3][3]; flip: of the conv whose weights are w[C][K] transposed and flipped (dX). In
 * float64 (4 output channels a vector) and rounded once, a panel's 16 (or 8) output channels at a time,
 * so that each position's outputs are one contiguous row of U. The omp loop stays outside the AVX2
 * region: clang does not give an outlined parallel body its function's target attribute. */
static void weight_transform(float *u, const float *w, size_t C, size_t K, bool flip)
{
    size_t panels = (K + 15) / 16;
    /* w read front to back: panel-major for w[K][C], c-major for the flipped w[C][K] */
    #pragma omp parallel for schedule(static) if (K * C > 4096)
    for (size_t it = 0; it < panels * C; it++)
        weight_panel(u, w, C, K, flip, it);
}

/* ---- entry ---- */

/* Whether F(2x2,3x3) here beats oneDNN's direct conv for this geometry (bench/README.md, "Winograd"). */
static bool wino_pays(size_t n, size_t C, size_t K, size_t oh, size_t ow, bool dx)
{
    /* dX transforms U on every call (C*K*16 floats): it pays from ~128 tiles (resnet18 at batch 16:
     * 0.60-0.82x oneDNN's time; batch 1 at 56x56 and 28x28 0.81-0.82x, at 14x14 (49 tiles) 1.17x, 7x7 1.83x) */
    if (dx)
        return C >= 16 && K >= 16 && n * ((oh + 1) / 2) * ((ow + 1) / 2) >= 128;
    /* forward: ahead at every resnet18 geometry, batch 1 and 16, 7x7 to 56x56, 64 to 512 channels */
    return C >= 16 && K >= 16 && oh * ow >= 49;
}

static float *blocked_copy(int slot, const float *src, size_t n, size_t c, size_t spatial, bool *owned)
{
    float *p = scratch_get(slot, n * c * spatial, "blocked copy", owned);
    if (src)
        layout_to_blocked(p, src, n, c, spatial);
    return p;
}

/* Whether the geometry fits: 2-D, 3x3, stride and dilation 1, pad_begin <= 2, one group, whole blocks of
 * 8 channels; and the mode lets it run here. */
static bool wino_takes(size_t n, size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, size_t oh,
                       size_t ow, bool dx)
{
    if (win->nd != 2 || (group != 0 && group != 1) || c_in == 0 || c_out == 0 || c_in % 8 || c_out % 8 || n == 0)
        return false;
    for (size_t i = 0; i < 2; i++)
        if (win->kernel[i] != 3 || win->stride[i] > 1 || win->dilation[i] > 1 || win->pad_begin[i] > 2 ||
            win->in[i] == 0 || win->out[i] == 0)
            return false;
    WinoMode mode = wino_mode();
    return mode == WINO_FORCE || (mode == WINO_AUTO && wino_pays(n, c_in, c_out, oh, ow, dx));
}

/* y = act(conv + bias + sum) from transformed weights u, over the sizes and pads in a. */
static void wino_conv(Wino *a, float *y, const float *x, const float *sum, size_t n, unsigned layout)
{
    a->tw = (a->ow + 1) / 2;
    a->tiles_img = (a->oh + 1) / 2 * a->tw;
    size_t in_sp = a->ih * a->iw, out_sp = a->oh * a->ow;
    /* plain tensors: nChw8c copies around the same code (the copies cost a few % of the conv) */
    bool own_x = false, own_s = false, own_y = false;
    float *xb = layout & CONV_X_BLOCKED ? NULL : blocked_copy(SCR_X, x, n, a->C, in_sp, &own_x);
    float *sb = !sum || (layout & CONV_SUM_BLOCKED) ? NULL : blocked_copy(SCR_SUM, sum, n, a->K, out_sp, &own_s);
    float *yb = layout & CONV_Y_BLOCKED ? NULL : blocked_copy(SCR_Y, NULL, n, a->K, out_sp, &own_y);
    a->x = xb ? xb : x;
    a->sum = sb ? sb : sum;
    a->y = yb ? yb : y;
    wino_run(a, n);
    if (yb)
        layout_from_blocked(y, yb, n, a->K, out_sp);
    if (own_x)
        free(xb);
    if (own_s)
        free(sb);
    if (own_y)
        free(yb);
}

bool conv_wino_forward(float *y, const float *x, const float *w, const float *bias, const float *sum, size_t n,
                       size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act,
                       unsigned layout)
{
    if (!wino_takes(n, c_in, c_out, group, win, win->out[0], win->out[1], false))
        return false;
    static const ConvAct none = {CONV_ACT_NONE, 0.0f, 0.0f};
    Wino a = {.bias = bias, .C = c_in, .K = c_out, .ih = win->in[0], .iw = win->in[1], .oh = win->out[0],
              .ow = win->out[1], .ph = (long)win->pad_begin[0], .pw = (long)win->pad_begin[1],
              .act = act ? *act : none};
    bool owned;
    a.u = transformed_weights(w, c_in, c_out, (layout & CONV_W_CONST) != 0, &owned);
    wino_conv(&a, y, x, sum, n, layout);
    if (owned)
        free((float *)a.u);
    return true;
}

bool conv_wino_backward_input(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                              size_t group, const SpatialWindow *win)
{
    /* dx = the conv of dy with w transposed ([c_in][c_out]) and flipped, pad_begin 2 - p: a forward conv
     * from c_out channels over `out` to c_in channels over `in` */
    if (!wino_takes(n, c_out, c_in, group, win, win->in[0], win->in[1], true))
        return false;
    Wino a = {.C = c_out, .K = c_in, .ih = win->out[0], .iw = win->out[1], .oh = win->in[0], .ow = win->in[1],
              .ph = 2 - (long)win->pad_begin[0], .pw = 2 - (long)win->pad_begin[1], .act = {CONV_ACT_NONE, 0, 0}};
    bool owned;
    float *u = scratch_get(SCR_U, 16 * c_in * c_out, "weights", &owned);
    weight_transform(u, w, c_out, c_in, true);
    a.u = u;
    wino_conv(&a, dx, dy, NULL, n, 0);
    if (owned)
        free(u);
    return true;
}

#endif
