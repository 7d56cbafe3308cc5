/* elementwise.c - element-wise kernels: unary math and activations, Clip, IsNaN/IsInf, binary ops with
 * ONNX multidirectional broadcasting, Where, Expand, Cast, and the half-precision conversions; the
 * backward kernels of the activations and Clip (float32; other gradients are built from these ops).
 * It does no float16/bfloat16 arithmetic (codegen casts to float around it) and no string casts.
 */
#include "kernels.h"

#include <string.h>
#include <tgmath.h>

/* Work is cut into chunks of CHUNK elements; below PAR_MIN elements everything runs on one thread. */
#define CHUNK ((size_t)16384)
#define PAR_MIN ((size_t)65536)

/* ------------------------------------------------------------------------ dtypes, halves */

size_t rt_dtype_size(RtDType dt)
{
    switch (dt) {
    case RT_BOOL: case RT_UINT8: case RT_INT8: return 1;
    case RT_UINT16: case RT_INT16: case RT_FLOAT16: case RT_BFLOAT16: return 2;
    case RT_FLOAT: case RT_INT32: case RT_UINT32: return 4;
    case RT_DOUBLE: case RT_INT64: case RT_UINT64: return 8;
    default: return 0;
    }
}

const char *rt_dtype_name(RtDType dt)
{
    switch (dt) {
    case RT_FLOAT: return "float32";
    case RT_UINT8: return "uint8";
    case RT_INT8: return "int8";
    case RT_UINT16: return "uint16";
    case RT_INT16: return "int16";
    case RT_INT32: return "int32";
    case RT_INT64: return "int64";
    case RT_BOOL: return "bool";
    case RT_FLOAT16: return "float16";
    case RT_DOUBLE: return "float64";
    case RT_UINT32: return "uint32";
    case RT_UINT64: return "uint64";
    case RT_BFLOAT16: return "bfloat16";
    default: return "?";
    }
}

static uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float rt_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {                       /* zero or subnormal: man * 2^-24, exact in float */
        float f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31)
        return bits_float(sign | 0x7f800000u | (man << 13));
    return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t rt_float_to_half(float f)
{
    uint32_t x = float_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00;             /* NaN -> quiet NaN */
    if (ax >= 0x477ff000u)                /* >= 65520 rounds (ties to even) past 65504: inf */
        return sign | 0x7c00;
    if (ax < 0x38800000u) {               /* below 2^-14: a subnormal half, in units of 2^-24 */
        float scaled = bits_float(ax) * 0x1p24f;   /* exact: a power-of-two scaling */
        return sign | (uint16_t)rint(scaled);      /* 1024 is the smallest normal, also correct */
    }
    uint32_t m = ax - 0x38000000u;        /* rebias the exponent from 127 to 15 */
    return sign | (uint16_t)((m + 0x0fffu + ((m >> 13) & 1)) >> 13);
}

/* A double rounded to float "to odd" (truncate, then set the last bit if inexact) rounds correctly
 * to any format at least two bits narrower, so double -> half/bfloat16 rounds only once. */
static float double_to_float_odd(double d)
{
    float f = (float)d;
    if ((double)f == d || isnan(d) || isinf(f))
        return f;
    uint32_t u = float_bits(f);
    if (fabs((double)f) > fabs(d))
        u -= 1;                           /* step the magnitude down: truncation toward zero */
    return bits_float(u | 1);
}

uint16_t rt_double_to_half(double d) { return rt_float_to_half(double_to_float_odd(d)); }

float rt_bfloat16_to_float(uint16_t h) { return bits_float((uint32_t)h << 16); }

uint16_t rt_float_to_bfloat16(float f)
{
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);   /* NaN stays NaN (quiet) */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

uint16_t rt_double_to_bfloat16(double d) { return rt_float_to_bfloat16(double_to_float_odd(d)); }

/* ------------------------------------------------------------------------ unary */

/* Inside a function that has `typedef ... Elem;`, y[i] = EXPR(v = x[i]). */
#define EACH(EXPR) for (size_t i = 0; i < n; i++) { Elem v = x[i]; y[i] = (Elem)(EXPR); }

/* Float math through <tgmath.h>: the same text serves float and double. */
#define DEFINE_UNARY_FLOAT(NAME, T)                                                           \
static void NAME(UnaryOp op, T *y, const T *x, size_t n, T alpha, T beta)                      \
{                                                                                              \
    typedef T Elem;                                                                            \
    const T one = 1, zero = 0, half = (T)0.5, sixth = (T)(1.0 / 6.0);                          \
    switch (op) {                                                                              \
    case UNARY_ABS:        EACH(fabs(v)); break;                                               \
    case UNARY_NEG:        EACH(-v); break;                                                    \
    case UNARY_SIGN:       EACH(v > zero ? one : v < zero ? -one : v); break;                  \
    case UNARY_RELU:       EACH(v > zero ? v : zero); break;                                   \
    case UNARY_RECIPROCAL: EACH(one / v); break;                                               \
    case UNARY_FLOOR:      EACH(floor(v)); break;                                              \
    case UNARY_CEIL:       EACH(ceil(v)); break;                                               \
    case UNARY_ROUND:      EACH(rint(v)); break;                                               \
    case UNARY_SQRT:       EACH(sqrt(v)); break;                                               \
    case UNARY_EXP:        EACH(exp(v)); break;                                                \
    case UNARY_LOG:        EACH(log(v)); break;                                                \
    case UNARY_SIN:        EACH(sin(v)); break;                                                \
    case UNARY_COS:        EACH(cos(v)); break;                                                \
    case UNARY_TAN:        EACH(tan(v)); break;                                                \
    case UNARY_ASIN:       EACH(asin(v)); break;                                               \
    case UNARY_ACOS:       EACH(acos(v)); break;                                               \
    case UNARY_ATAN:       EACH(atan(v)); break;                                               \
    case UNARY_SINH:       EACH(sinh(v)); break;                                               \
    case UNARY_COSH:       EACH(cosh(v)); break;                                               \
    case UNARY_ASINH:      EACH(asinh(v)); break;                                              \
    case UNARY_ACOSH:      EACH(acosh(v)); break;                                              \
    case UNARY_ATANH:      EACH(atanh(v)); break;                                              \
    case UNARY_ERF:        EACH(erf(v)); break;                                                \
    case UNARY_SIGMOID:    EACH(one / (one + exp(-v))); break;   /* exp overflow gives 0, fine */  \
    case UNARY_TANH:       EACH(tanh(v)); break;                                               \
    case UNARY_SOFTPLUS:   EACH(v > zero ? v + log1p(exp(-v)) : log1p(exp(v))); break;         \
    case UNARY_SOFTSIGN:   EACH(v / (one + fabs(v))); break;                                   \
    case UNARY_LEAKY_RELU: EACH(v >= zero ? v : alpha * v); break;                             \
    case UNARY_ELU:        EACH(v >= zero ? v : alpha * (exp(v) - one)); break;                \
    case UNARY_SELU:       EACH(v > zero ? beta * v : beta * (alpha * exp(v) - alpha)); break; \
    case UNARY_CELU:       EACH(fmax(zero, v) + fmin(zero, alpha * (exp(v / alpha) - one))); break; \
    case UNARY_HARD_SIGMOID: EACH(fmax(zero, fmin(one, alpha * v + beta))); break;             \
    case UNARY_HARD_SWISH: EACH(v * fmax(zero, fmin(one, sixth * v + half))); break;           \
    case UNARY_THRESHOLDED_RELU: EACH(v > alpha ? v : zero); break;                            \
    case UNARY_MISH:       EACH(v * tanh(v > zero ? v + log1p(exp(-v)) : log1p(exp(v)))); break; \
    case UNARY_GELU:                                                                           \
        if (alpha == zero)                                                                     \
            EACH(half * v * (one + erf(v * (T)0.70710678118654752440)))                        \
        else                                                                                   \
            EACH(half * v * (one + tanh((T)0.79788456080286535588 * (v + (T)0.044715 * v * v * v)))) \
        break;                                                                                 \
    case UNARY_SHRINK:     EACH(v < -beta ? v + alpha : v > beta ? v - alpha : zero); break;   \
    default: break;                                                                            \
    }                                                                                          \
}

DEFINE_UNARY_FLOAT(unary_f32, float)
DEFINE_UNARY_FLOAT(unary_f64, double)

/* Integers: negation goes through the unsigned type U so that it wraps instead of overflowing. */
#define DEFINE_UNARY_SINT(NAME, T, U)                                                         \
static void NAME(UnaryOp op, T *y, const T *x, size_t n)                                       \
{                                                                                              \
    typedef T Elem;                                                                            \
    switch (op) {                                                                              \
    case UNARY_ABS:   EACH(v < 0 ? (T)((U)0 - (U)v) : v); break;                               \
    case UNARY_NEG:   EACH((T)((U)0 - (U)v)); break;                                           \
    case UNARY_SIGN:  EACH((T)(v > 0 ? 1 : v < 0 ? -1 : 0)); break;                            \
    case UNARY_RELU:  EACH(v > 0 ? v : 0); break;                                              \
    case UNARY_BITWISE_NOT: EACH((T)~v); break;                                                \
    default: break;                                                                            \
    }                                                                                          \
}
#define DEFINE_UNARY_UINT(NAME, T)                                                            \
static void NAME(UnaryOp op, T *y, const T *x, size_t n)                                       \
{                                                                                              \
    typedef T Elem;                                                                            \
    switch (op) {                                                                              \
    case UNARY_ABS:   EACH(v); break;                                                          \
    case UNARY_SIGN:  EACH((T)(v != 0)); break;                                                \
    case UNARY_BITWISE_NOT: EACH((T)~v); break;                                                \
    default: break;                                                                            \
    }                                                                                          \
}

DEFINE_UNARY_SINT(unary_i8, int8_t, unsigned)
DEFINE_UNARY_SINT(unary_i16, int16_t, unsigned)
DEFINE_UNARY_SINT(unary_i32, int32_t, uint32_t)
DEFINE_UNARY_SINT(unary_i64, int64_t, uint64_t)
DEFINE_UNARY_UINT(unary_u8, uint8_t)
DEFINE_UNARY_UINT(unary_u16, uint16_t)
DEFINE_UNARY_UINT(unary_u32, uint32_t)
DEFINE_UNARY_UINT(unary_u64, uint64_t)

static bool is_sint(RtDType dt) { return dt == RT_INT8 || dt == RT_INT16 || dt == RT_INT32 || dt == RT_INT64; }
static bool is_uint(RtDType dt) { return dt == RT_UINT8 || dt == RT_UINT16 || dt == RT_UINT32 || dt == RT_UINT64; }
static bool is_float(RtDType dt) { return dt == RT_FLOAT || dt == RT_DOUBLE; }

bool unary_supports(UnaryOp op, RtDType dt)
{
    if ((unsigned)op >= UNARY_COUNT)
        return false;
    if (is_float(dt))
        return op <= UNARY_SHRINK;
    if (is_sint(dt))
        return op == UNARY_ABS || op == UNARY_NEG || op == UNARY_SIGN || op == UNARY_RELU ||
               op == UNARY_BITWISE_NOT;
    if (is_uint(dt))
        return op == UNARY_ABS || op == UNARY_SIGN || op == UNARY_BITWISE_NOT;
    return dt == RT_BOOL && op == UNARY_NOT;
}

static void unary_slice(UnaryOp op, RtDType dt, char *y, const char *x, size_t n, float alpha, float beta)
{
    switch (dt) {
    case RT_FLOAT:   /* erf and exact Gelu through erf.c's vectorised erf */
        if (op == UNARY_ERF)
            erf_f32((float *)y, (const float *)x, n);
        else if (op == UNARY_GELU && alpha == 0)
            gelu_erf_f32((float *)y, (const float *)x, n);
        else
            unary_f32(op, (float *)y, (const float *)x, n, alpha, beta);
        break;
    case RT_DOUBLE: unary_f64(op, (double *)y, (const double *)x, n, alpha, beta); break;
    case RT_INT8: unary_i8(op, (int8_t *)y, (const int8_t *)x, n); break;
    case RT_INT16: unary_i16(op, (int16_t *)y, (const int16_t *)x, n); break;
    case RT_INT32: unary_i32(op, (int32_t *)y, (const int32_t *)x, n); break;
    case RT_INT64: unary_i64(op, (int64_t *)y, (const int64_t *)x, n); break;
    case RT_UINT8: unary_u8(op, (uint8_t *)y, (const uint8_t *)x, n); break;
    case RT_UINT16: unary_u16(op, (uint16_t *)y, (const uint16_t *)x, n); break;
    case RT_UINT32: unary_u32(op, (uint32_t *)y, (const uint32_t *)x, n); break;
    case RT_UINT64: unary_u64(op, (uint64_t *)y, (const uint64_t *)x, n); break;
    case RT_BOOL:
        for (size_t i = 0; i < n; i++)
            y[i] = !x[i];
        break;
    default: break;
    }
}

void unary_forward(UnaryOp op, RtDType dt, void *y, const void *x, size_t n, float alpha, float beta)
{
    if (!unary_supports(op, dt))
        return;
    size_t es = rt_dtype_size(dt);
    if (n < PAR_MIN) {
        unary_slice(op, dt, y, x, n, alpha, beta);
        return;
    }
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        size_t lo = c * CHUNK, len = n - lo < CHUNK ? n - lo : CHUNK;
        unary_slice(op, dt, (char *)y + lo * es, (const char *)x + lo * es, len, alpha, beta);
    }
}

#define DEFINE_CLIP(NAME, T)                                                                  \
static void NAME(T *y, const T *x, size_t n, const T *lo, const T *hi)                         \
{                                                                                              \
    for (size_t i = 0; i < n; i++) {                                                           \
        T v = x[i];                                                                            \
        if (lo && v < *lo) v = *lo;                                                            \
        if (hi && v > *hi) v = *hi;                                                            \
        y[i] = v;                                                                              \
    }                                                                                          \
}
DEFINE_CLIP(clip_f32, float)
DEFINE_CLIP(clip_f64, double)
DEFINE_CLIP(clip_i8, int8_t)
DEFINE_CLIP(clip_i16, int16_t)
DEFINE_CLIP(clip_i32, int32_t)
DEFINE_CLIP(clip_i64, int64_t)
DEFINE_CLIP(clip_u8, uint8_t)
DEFINE_CLIP(clip_u16, uint16_t)
DEFINE_CLIP(clip_u32, uint32_t)
DEFINE_CLIP(clip_u64, uint64_t)

void clip_forward(RtDType dt, void *y, const void *x, size_t n, const void *lo, const void *hi)
{
    switch (dt) {
    case RT_FLOAT: clip_f32(y, x, n, lo, hi); break;
    case RT_DOUBLE: clip_f64(y, x, n, lo, hi); break;
    case RT_INT8: clip_i8(y, x, n, lo, hi); break;
    case RT_INT16: clip_i16(y, x, n, lo, hi); break;
    case RT_INT32: clip_i32(y, x, n, lo, hi); break;
    case RT_INT64: clip_i64(y, x, n, lo, hi); break;
    case RT_UINT8: case RT_BOOL: clip_u8(y, x, n, lo, hi); break;
    case RT_UINT16: clip_u16(y, x, n, lo, hi); break;
    case RT_UINT32: clip_u32(y, x, n, lo, hi); break;
    case RT_UINT64: clip_u64(y, x, n, lo, hi); break;
    default: break;
    }
}

/* Element i of a floating tensor of any width, as double (exact for all four types). */
static double load_floating(RtDType dt, const void *x, size_t i)
{
    switch (dt) {
    case RT_FLOAT: return ((const float *)x)[i];
    case RT_DOUBLE: return ((const double *)x)[i];
    case RT_FLOAT16: return rt_half_to_float(((const uint16_t *)x)[i]);
    case RT_BFLOAT16: return rt_bfloat16_to_float(((const uint16_t *)x)[i]);
    default: return 0;
    }
}

void isnan_forward(RtDType dt, uint8_t *y, const void *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (uint8_t)isnan(load_floating(dt, x, i));
}

void isinf_forward(RtDType dt, uint8_t *y, const void *x, size_t n, bool detect_negative,
                   bool detect_positive)
{
    for (size_t i = 0; i < n; i++) {
        double v = load_floating(dt, x, i);
        y[i] = (uint8_t)((detect_positive && v == INFINITY) || (detect_negative && v == -INFINITY));
    }
}

/* ------------------------------------------------------------------------ broadcasting walker */

void rt_broadcast_strides(int yrank, const size_t *ydims, int xrank, const size_t *xdims, size_t *xstrides)
{
    size_t stride = 1;
    for (int d = yrank - 1; d >= 0; d--) {
        int xd = d - (yrank - xrank);
        if (xd < 0 || xdims[xd] == 1 || ydims[d] == 1) {
            xstrides[d] = 0;
        } else {
            xstrides[d] = stride;
        }
        if (xd >= 0)
            stride *= xdims[xd];
    }
}

/* Up to four operands walked in step over y's index space, after dropping dims of 1 and merging
 * neighbours that are contiguous for every operand, so the innermost run is as long as possible. */
#define MAX_OPS 4
typedef struct {
    int rank, nops;
    size_t dims[RT_MAX_RANK];
    size_t st[MAX_OPS][RT_MAX_RANK];
    size_t total;
} Walk;

static void walk_init(Walk *w, int nops, int rank, const size_t *ydims, const size_t *const *strides)
{
    w->nops = nops;
    w->rank = 0;
    w->total = 1;
    for (int d = 0; d < rank; d++) {
        w->total *= ydims[d];
        if (ydims[d] == 1)
            continue;
        int r = w->rank;
        bool merge = r > 0;
        for (int k = 0; k < nops && merge; k++)
            merge = w->st[k][r - 1] == strides[k][d] * ydims[d];
        if (merge) {
            w->dims[r - 1] *= ydims[d];
            for (int k = 0; k < nops; k++)
                w->st[k][r - 1] = strides[k][d];
            continue;
        }
        w->dims[r] = ydims[d];
        for (int k = 0; k < nops; k++)
            w->st[k][r] = strides[k][d];
        w->rank++;
    }
    if (w->rank == 0) {
        w->rank = 1;
        w->dims[0] = 1;
        for (int k = 0; k < nops; k++)
            w->st[k][0] = 0;
    }
}

/* fn(ctx, yi, off, run): y elements [yi, yi+run) with operand k starting at element off[k] and
 * advancing by the innermost stride w->st[k][rank-1]. */
typedef void (*RunFn)(void *ctx, const Walk *w, size_t yi, const size_t *off, size_t run);

static void walk_range(const Walk *w, size_t lo, size_t hi, RunFn fn, void *ctx)
{
    int r = w->rank, last = r - 1;
    size_t idx[RT_MAX_RANK], off[MAX_OPS] = {0};
    size_t rem = lo;
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % w->dims[d];
        rem /= w->dims[d];
        for (int k = 0; k < w->nops; k++)
            off[k] += idx[d] * w->st[k][d];
    }
    size_t pos = lo;
    while (pos < hi) {
        size_t run = w->dims[last] - idx[last];
        if (run > hi - pos)
            run = hi - pos;
        fn(ctx, w, pos, off, run);
        pos += run;
        idx[last] += run;
        for (int k = 0; k < w->nops; k++)
            off[k] += run * w->st[k][last];
        for (int d = last; d > 0 && idx[d] == w->dims[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            for (int k = 0; k < w->nops; k++)
                off[k] = off[k] - w->dims[d] * w->st[k][d] + w->st[k][d - 1];
        }
    }
}

static void walk_all(const Walk *w, RunFn fn, void *ctx)
{
    if (w->total < PAR_MIN) {
        walk_range(w, 0, w->total, fn, ctx);
        return;
    }
    size_t nchunks = (w->total + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        size_t lo = c * CHUNK, hi = w->total - lo < CHUNK ? w->total : lo + CHUNK;
        walk_range(w, lo, hi, fn, ctx);
    }
}

/* ------------------------------------------------------------------------ binary */

/* The run kernel of one dtype: y[i] = op(a[i*sa], b[i*sb]) for i < n, with sa, sb usually 0 or 1. */
typedef void (*BinRunFn)(BinaryOp op, void *y, const void *a, size_t sa, const void *b, size_t sb, size_t n);

/* One loop per stride pattern so the common ones vectorise. */
#define BLOOP(T, OUT, EXPR) do {                                                             \
    const T *pa = a, *pb = b; OUT *po = y;                                                     \
    if (sa == 1 && sb == 1) {                                                                  \
        for (size_t i = 0; i < n; i++) { T A = pa[i], B = pb[i]; po[i] = (OUT)(EXPR); }        \
    } else if (sa == 1 && sb == 0) {                                                           \
        T B = pb[0];                                                                           \
        for (size_t i = 0; i < n; i++) { T A = pa[i]; po[i] = (OUT)(EXPR); }                   \
    } else if (sa == 0 && sb == 1) {                                                           \
        T A = pa[0];                                                                           \
        for (size_t i = 0; i < n; i++) { T B = pb[i]; po[i] = (OUT)(EXPR); }                   \
    } else {                                                                                   \
        for (size_t i = 0; i < n; i++) { T A = pa[i * sa], B = pb[i * sb]; po[i] = (OUT)(EXPR); } \
    }                                                                                          \
} while (0)

#define CMP_CASES(T)                                                                          \
    case BINARY_EQUAL:         BLOOP(T, uint8_t, A == B); break;                               \
    case BINARY_LESS:          BLOOP(T, uint8_t, A < B); break;                                \
    case BINARY_LESS_EQUAL:    BLOOP(T, uint8_t, A <= B); break;                               \
    case BINARY_GREATER:       BLOOP(T, uint8_t, A > B); break;                                \
    case BINARY_GREATER_EQUAL: BLOOP(T, uint8_t, A >= B); break;

#define BITWISE_CASES(T)                                                                      \
    case BINARY_BITWISE_AND: BLOOP(T, T, A & B); break;                                        \
    case BINARY_BITWISE_OR:  BLOOP(T, T, A | B); break;                                        \
    case BINARY_BITWISE_XOR: BLOOP(T, T, A ^ B); break;

/* Min/Max propagate NaN: a NaN first operand is kept by the isnan test, a NaN second one
 * because every comparison with it is false. */
#define MINMAX_FLOAT_CASES(T)                                                                 \
    case BINARY_MIN: BLOOP(T, T, (A < B || isnan(A)) ? A : B); break;                          \
    case BINARY_MAX: BLOOP(T, T, (A > B || isnan(A)) ? A : B); break;
#define MINMAX_CASES(T)                                                                       \
    case BINARY_MIN: BLOOP(T, T, A < B ? A : B); break;                                        \
    case BINARY_MAX: BLOOP(T, T, A > B ? A : B); break;

static float mod_py_f32(float a, float b)
{
    float r = fmod(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static double mod_py_f64(double a, double b)
{
    double r = fmod(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

#define DEFINE_BINARY_FLOAT(NAME, T, SUF)                                                     \
static void NAME(BinaryOp op, void *y, const void *a, size_t sa, const void *b, size_t sb, size_t n) \
{                                                                                              \
    switch (op) {                                                                              \
    case BINARY_ADD:   BLOOP(T, T, A + B); break;                                              \
    case BINARY_SUB:   BLOOP(T, T, A - B); break;                                              \
    case BINARY_MUL:   BLOOP(T, T, A * B); break;                                              \
    case BINARY_DIV:   BLOOP(T, T, A / B); break;                                              \
    case BINARY_POW:   BLOOP(T, T, pow(A, B)); break;                                          \
    case BINARY_MOD:   BLOOP(T, T, mod_py_##SUF(A, B)); break;                                 \
    case BINARY_FMOD:  BLOOP(T, T, fmod(A, B)); break;                                         \
    case BINARY_PRELU: BLOOP(T, T, A < 0 ? A * B : A); break;                                  \
    MINMAX_FLOAT_CASES(T)                                                                            \
    CMP_CASES(T)                                                                               \
    default: break;                                                                            \
    }                                                                                          \
}
DEFINE_BINARY_FLOAT(binary_f32, float, f32)
DEFINE_BINARY_FLOAT(binary_f64, double, f64)

/* Integer power by squaring, wrapping like repeated multiplication would. */
static uint64_t ipow_u64(uint64_t a, uint64_t e)
{
    uint64_t r = 1;
    while (e) {
        if (e & 1)
            r *= a;
        a *= a;
        e >>= 1;
    }
    return r;
}
static int64_t ipow_i64(int64_t a, int64_t e)
{
    if (e < 0)   /* 1/a^|e| truncated: only |a| == 1 survives */
        return a == 1 ? 1 : a == -1 ? ((e & 1) ? -1 : 1) : 0;
    return (int64_t)ipow_u64((uint64_t)a, (uint64_t)e);
}
/* Python's sign-of-divisor remainder and C's truncated one; x % 0 is 0 and x % -1 is 0 (which
 * also keeps INT_MIN % -1 defined). */
static int64_t mod_py_i64(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    int64_t r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static int64_t mod_c_i64(int64_t a, int64_t b) { return (b == 0 || b == -1) ? 0 : a % b; }
/* Truncating division; x/0 is 0, INT_MIN/-1 wraps to INT_MIN. */
static int64_t div_i64(int64_t a, int64_t b)
{
    if (b == 0)
        return 0;
    if (b == -1)
        return (int64_t)(0 - (uint64_t)a);
    return a / b;
}

/* Signed ints: + - * go through the unsigned type U (wide enough to avoid int promotion), so they
 * wrap; narrower types use the int64 helpers and convert back (modulo, as gcc and clang do). */
#define DEFINE_BINARY_SINT(NAME, T, U)                                                        \
static void NAME(BinaryOp op, void *y, const void *a, size_t sa, const void *b, size_t sb, size_t n) \
{                                                                                              \
    switch (op) {                                                                              \
    case BINARY_ADD:   BLOOP(T, T, (U)A + (U)B); break;                                        \
    case BINARY_SUB:   BLOOP(T, T, (U)A - (U)B); break;                                        \
    case BINARY_MUL:   BLOOP(T, T, (U)A * (U)B); break;                                        \
    case BINARY_DIV:   BLOOP(T, T, div_i64(A, B)); break;                                      \
    case BINARY_POW:   BLOOP(T, T, ipow_i64(A, B)); break;                                     \
    case BINARY_MOD:   BLOOP(T, T, mod_py_i64(A, B)); break;                                   \
    case BINARY_FMOD:  BLOOP(T, T, mod_c_i64(A, B)); break;                                    \
    case BINARY_PRELU: BLOOP(T, T, A < 0 ? (U)A * (U)B : (U)A); break;                         \
    MINMAX_CASES(T)                                                                            \
    CMP_CASES(T)                                                                               \
    BITWISE_CASES(T)                                                                           \
    default: break;                                                                            \
    }                                                                                          \
}
#define DEFINE_BINARY_UINT(NAME, T, U, BITS)                                                  \
static void NAME(BinaryOp op, void *y, const void *a, size_t sa, const void *b, size_t sb, size_t n) \
{                                                                                              \
    switch (op) {                                                                              \
    case BINARY_ADD:   BLOOP(T, T, (U)A + (U)B); break;                                        \
    case BINARY_SUB:   BLOOP(T, T, (U)A - (U)B); break;                                        \
    case BINARY_MUL:   BLOOP(T, T, (U)A * (U)B); break;                                        \
    case BINARY_DIV:   BLOOP(T, T, B ? A / B : 0); break;                                      \
    case BINARY_POW:   BLOOP(T, T, ipow_u64(A, B)); break;                                     \
    case BINARY_MOD:                                                                           \
    case BINARY_FMOD:  BLOOP(T, T, B ? A % B : 0); break;                                      \
    case BINARY_PRELU: BLOOP(T, T, ((void)B, A)); break;   /* nothing is negative */          \
    case BINARY_SHIFT_LEFT:  BLOOP(T, T, B >= BITS ? 0 : (U)A << B); break;                   \
    case BINARY_SHIFT_RIGHT: BLOOP(T, T, B >= BITS ? 0 : A >> B); break;                       \
    MINMAX_CASES(T)                                                                            \
    CMP_CASES(T)                                                                               \
    BITWISE_CASES(T)                                                                           \
    default: break;                                                                            \
    }                                                                                          \
}
DEFINE_BINARY_SINT(binary_i8, int8_t, unsigned)
DEFINE_BINARY_SINT(binary_i16, int16_t, unsigned)
DEFINE_BINARY_SINT(binary_i32, int32_t, uint32_t)
DEFINE_BINARY_SINT(binary_i64, int64_t, uint64_t)
DEFINE_BINARY_UINT(binary_u8, uint8_t, unsigned, 8)
DEFINE_BINARY_UINT(binary_u16, uint16_t, unsigned, 16)
DEFINE_BINARY_UINT(binary_u32, uint32_t, uint32_t, 32)
DEFINE_BINARY_UINT(binary_u64, uint64_t, uint64_t, 64)

static void binary_bool(BinaryOp op, void *y, const void *a, size_t sa, const void *b, size_t sb, size_t n)
{
    switch (op) {
    case BINARY_EQUAL: BLOOP(uint8_t, uint8_t, (A != 0) == (B != 0)); break;
    case BINARY_AND:
    case BINARY_BITWISE_AND: BLOOP(uint8_t, uint8_t, (A != 0) & (B != 0)); break;
    case BINARY_OR:
    case BINARY_BITWISE_OR: BLOOP(uint8_t, uint8_t, (A != 0) | (B != 0)); break;
    case BINARY_XOR:
    case BINARY_BITWISE_XOR: BLOOP(uint8_t, uint8_t, (A != 0) ^ (B != 0)); break;
    default: break;
    }
}

static BinRunFn binary_kernel(RtDType dt)
{
    switch (dt) {
    case RT_FLOAT: return binary_f32;
    case RT_DOUBLE: return binary_f64;
    case RT_INT8: return binary_i8;
    case RT_INT16: return binary_i16;
    case RT_INT32: return binary_i32;
    case RT_INT64: return binary_i64;
    case RT_UINT8: return binary_u8;
    case RT_UINT16: return binary_u16;
    case RT_UINT32: return binary_u32;
    case RT_UINT64: return binary_u64;
    case RT_BOOL: return binary_bool;
    default: return NULL;
    }
}

bool binary_supports(BinaryOp op, RtDType dt)
{
    if ((unsigned)op >= BINARY_COUNT)
        return false;
    bool cmp = op >= BINARY_EQUAL && op <= BINARY_GREATER_EQUAL;
    bool bitwise = op >= BINARY_BITWISE_AND && op <= BINARY_BITWISE_XOR;
    bool arith = op <= BINARY_PRELU;
    if (is_float(dt))
        return arith || cmp;
    if (is_sint(dt))
        return arith || cmp || bitwise;
    if (is_uint(dt))
        return arith || cmp || bitwise || op == BINARY_SHIFT_LEFT || op == BINARY_SHIFT_RIGHT;
    if (dt == RT_BOOL)
        return op == BINARY_EQUAL || op == BINARY_AND || op == BINARY_OR || op == BINARY_XOR || bitwise;
    return false;
}

RtDType binary_output_dtype(BinaryOp op, RtDType dt)
{
    if ((op >= BINARY_EQUAL && op <= BINARY_GREATER_EQUAL) || (op >= BINARY_AND && op <= BINARY_XOR))
        return RT_BOOL;
    return dt;
}

typedef struct {
    BinaryOp op;
    BinRunFn fn;
    char *y;
    const char *a, *b;
    size_t ysize, esize;
} BinaryCtx;

static void binary_run(void *ctx, const Walk *w, size_t yi, const size_t *off, size_t run)
{
    const BinaryCtx *c = ctx;
    int last = w->rank - 1;
    c->fn(c->op, c->y + yi * c->ysize, c->a + off[0] * c->esize, w->st[0][last],
          c->b + off[1] * c->esize, w->st[1][last], run);
}

void binary_forward(BinaryOp op, RtDType dt, void *y, const void *a, const void *b, int rank,
                    const size_t *ydims, const size_t *astrides, const size_t *bstrides)
{
    if (!binary_supports(op, dt))
        return;
    BinaryCtx c = {op, binary_kernel(dt), y, a, b, rt_dtype_size(binary_output_dtype(op, dt)),
                   rt_dtype_size(dt)};
    const size_t *strides[2] = {astrides, bstrides};
    Walk w;
    walk_init(&w, 2, rank, ydims, strides);
    if (w.total == 0)
        return;
    walk_all(&w, binary_run, &c);
}

/* ------------------------------------------------------------------------ Where, Expand */

typedef struct {
    char *y;
    const uint8_t *cond;
    const char *a, *b;
    size_t es;
} WhereCtx;

#define WHERE_LOOP(T) do {                                                                     \
    T *py = (T *)y; const T *pa = (const T *)a, *pb = (const T *)b;                            \
    for (size_t i = 0; i < run; i++)                                                           \
        py[i] = cond[i * sc] ? pa[i * sa] : pb[i * sb];                                        \
} while (0)

static void where_run(void *ctx, const Walk *w, size_t yi, const size_t *off, size_t run)
{
    const WhereCtx *c = ctx;
    int last = w->rank - 1;
    size_t es = c->es, sc = w->st[0][last], sa = w->st[1][last], sb = w->st[2][last];
    const uint8_t *cond = c->cond + off[0];
    const char *a = c->a + off[1] * es, *b = c->b + off[2] * es;
    char *y = c->y + yi * es;
    switch (es) {
    case 1: WHERE_LOOP(uint8_t); break;
    case 2: WHERE_LOOP(uint16_t); break;
    case 4: WHERE_LOOP(uint32_t); break;
    case 8: WHERE_LOOP(uint64_t); break;
    default:
        for (size_t i = 0; i < run; i++)
            memcpy(y + i * es, cond[i * sc] ? a + i * sa * es : b + i * sb * es, es);
    }
}

void where_forward(size_t elsize, void *y, const uint8_t *cond, const void *a, const void *b, int rank,
                   const size_t *ydims, const size_t *cstrides, const size_t *astrides,
                   const size_t *bstrides)
{
    WhereCtx c = {y, cond, a, b, elsize};
    const size_t *strides[3] = {cstrides, astrides, bstrides};
    Walk w;
    walk_init(&w, 3, rank, ydims, strides);
    if (w.total == 0 || elsize == 0)
        return;
    walk_all(&w, where_run, &c);
}

typedef struct {
    char *y;
    const char *x;
    size_t es;
} ExpandCtx;

static void expand_run(void *ctx, const Walk *w, size_t yi, const size_t *off, size_t run)
{
    const ExpandCtx *c = ctx;
    size_t es = c->es, sx = w->st[0][w->rank - 1];
    char *y = c->y + yi * es;
    const char *x = c->x + off[0] * es;
    if (sx == 1) {
        memcpy(y, x, run * es);
    } else if (sx == 0 && es == 4) {
        uint32_t v;
        memcpy(&v, x, 4);
        for (size_t i = 0; i < run; i++)
            memcpy(y + i * 4, &v, 4);
    } else {
        for (size_t i = 0; i < run; i++)
            memcpy(y + i * es, x + i * sx * es, es);
    }
}

void expand_forward(size_t elsize, void *y, const void *x, int rank, const size_t *ydims,
                    const size_t *xstrides)
{
    ExpandCtx c = {y, x, elsize};
    const size_t *strides[1] = {xstrides};
    Walk w;
    walk_init(&w, 1, rank, ydims, strides);
    if (w.total == 0 || elsize == 0)
        return;
    walk_all(&w, expand_run, &c);
}

/* ------------------------------------------------------------------------ Cast */

/* float -> int: truncate toward zero, saturate at the type's range, NaN -> 0. The bounds are exact
 * doubles (powers of two), compared before converting so no conversion is undefined. */
#define DEFINE_SAT(NAME, T, LO, HI_EXCL, MIN, MAX)                                            \
static T NAME(double v)                                                                        \
{                                                                                              \
    if (isnan(v)) return 0;                                                                    \
    if (v <= (LO)) return MIN;                                                                 \
    if (v >= (HI_EXCL)) return MAX;                                                            \
    return (T)v;                                                                               \
}
DEFINE_SAT(sat_i8, int8_t, -128.0, 128.0, INT8_MIN, INT8_MAX)
DEFINE_SAT(sat_i16, int16_t, -32768.0, 32768.0, INT16_MIN, INT16_MAX)
DEFINE_SAT(sat_i32, int32_t, -0x1p31, 0x1p31, INT32_MIN, INT32_MAX)
DEFINE_SAT(sat_i64, int64_t, -0x1p63, 0x1p63, INT64_MIN, INT64_MAX)
DEFINE_SAT(sat_u8, uint8_t, 0.0, 256.0, 0, UINT8_MAX)
DEFINE_SAT(sat_u16, uint16_t, 0.0, 65536.0, 0, UINT16_MAX)
DEFINE_SAT(sat_u32, uint32_t, 0.0, 0x1p32, 0, UINT32_MAX)
DEFINE_SAT(sat_u64, uint64_t, 0.0, 0x1p64, 0, UINT64_MAX)

/* CONV_F converts from float/double, plain C conversion from ints (wraps like NumPy's astype). */
#define CAST_LOOP(TO_T, FROM_T, CONV) do {                                                     \
    TO_T *py = y; const FROM_T *px = x;                                                        \
    for (size_t i = 0; i < n; i++) py[i] = CONV(px[i]);                                        \
} while (0)

#define CAST_FROM(TO_T, CONV_F) do { switch (from) {                                          \
    case RT_FLOAT:  CAST_LOOP(TO_T, float, CONV_F); break;                                     \
    case RT_DOUBLE: CAST_LOOP(TO_T, double, CONV_F); break;                                    \
    case RT_INT8:   CAST_LOOP(TO_T, int8_t, (TO_T)); break;                                    \
    case RT_INT16:  CAST_LOOP(TO_T, int16_t, (TO_T)); break;                                   \
    case RT_INT32:  CAST_LOOP(TO_T, int32_t, (TO_T)); break;                                   \
    case RT_INT64:  CAST_LOOP(TO_T, int64_t, (TO_T)); break;                                   \
    case RT_UINT8: case RT_BOOL: CAST_LOOP(TO_T, uint8_t, (TO_T)); break;                      \
    case RT_UINT16: CAST_LOOP(TO_T, uint16_t, (TO_T)); break;                                  \
    case RT_UINT32: CAST_LOOP(TO_T, uint32_t, (TO_T)); break;                                  \
    case RT_UINT64: CAST_LOOP(TO_T, uint64_t, (TO_T)); break;                                  \
    default: break;                                                                            \
    } } while (0)

#define NONZERO(v) ((v) != 0)

/* Casts among the types C has (bool sources count as uint8 0/1). */
static void cast_plain(RtDType to, void *y, RtDType from, const void *x, size_t n)
{
    switch (to) {
    case RT_FLOAT:  CAST_FROM(float, (float)); break;
    case RT_DOUBLE: CAST_FROM(double, (double)); break;
    case RT_INT8:   CAST_FROM(int8_t, sat_i8); break;
    case RT_INT16:  CAST_FROM(int16_t, sat_i16); break;
    case RT_INT32:  CAST_FROM(int32_t, sat_i32); break;
    case RT_INT64:  CAST_FROM(int64_t, sat_i64); break;
    case RT_UINT8:  CAST_FROM(uint8_t, sat_u8); break;
    case RT_UINT16: CAST_FROM(uint16_t, sat_u16); break;
    case RT_UINT32: CAST_FROM(uint32_t, sat_u32); break;
    case RT_UINT64: CAST_FROM(uint64_t, sat_u64); break;
    case RT_BOOL: {
        switch (from) {
        case RT_FLOAT:  CAST_LOOP(uint8_t, float, NONZERO); break;
        case RT_DOUBLE: CAST_LOOP(uint8_t, double, NONZERO); break;
        default: {
            size_t es = rt_dtype_size(from);
            const uint8_t *px = x;
            uint8_t *py = y;
            for (size_t i = 0; i < n; i++) {
                uint8_t any = 0;
                for (size_t k = 0; k < es; k++)
                    any |= px[i * es + k];
                py[i] = any != 0;
            }
        }
        }
        break;
    }
    default: break;
    }
}

static bool cast_known(RtDType dt) { return rt_dtype_size(dt) != 0; }

bool cast_supports(RtDType to, RtDType from) { return cast_known(to) && cast_known(from); }

void cast_forward(RtDType to, void *y, RtDType from, const void *x, size_t n)
{
    if (!cast_supports(to, from))
        return;
    bool half_from = from == RT_FLOAT16 || from == RT_BFLOAT16;
    bool half_to = to == RT_FLOAT16 || to == RT_BFLOAT16;
    if (!half_from && !half_to) {
        cast_plain(to, y, from, x, n);
        return;
    }
    if (half_from && to == from) {
        memcpy(y, x, n * 2);
        return;
    }
    /* The common direct conversions, one loop each. */
    const uint16_t *hx = x;
    const float *fx = x;
    uint16_t *hy = y;
    float *fy = y;
    if (from == RT_FLOAT && to == RT_FLOAT16) {
        for (size_t i = 0; i < n; i++)
            hy[i] = rt_float_to_half(fx[i]);
        return;
    }
    if (from == RT_FLOAT && to == RT_BFLOAT16) {
        for (size_t i = 0; i < n; i++)
            hy[i] = rt_float_to_bfloat16(fx[i]);
        return;
    }
    if (from == RT_FLOAT16 && to == RT_FLOAT) {
        for (size_t i = 0; i < n; i++)
            fy[i] = rt_half_to_float(hx[i]);
        return;
    }
    if (from == RT_BFLOAT16 && to == RT_FLOAT) {
        for (size_t i = 0; i < n; i++)
            fy[i] = rt_bfloat16_to_float(hx[i]);
        return;
    }
    /* Through a float (or, from double, a double) staging buffer, one block at a time. */
    enum { BLOCK = 256 };
    float fbuf[BLOCK];
    double dbuf[BLOCK];
    size_t fes = rt_dtype_size(from), tes = rt_dtype_size(to);
    for (size_t lo = 0; lo < n; lo += BLOCK) {
        size_t m = n - lo < BLOCK ? n - lo : BLOCK;
        const char *px = (const char *)x + lo * fes;
        char *py = (char *)y + lo * tes;
        const uint16_t *hx = (const uint16_t *)px;
        uint16_t *hy = (uint16_t *)py;
        if (half_from) {
            for (size_t i = 0; i < m; i++)
                fbuf[i] = from == RT_FLOAT16 ? rt_half_to_float(hx[i]) : rt_bfloat16_to_float(hx[i]);
            if (!half_to) {
                cast_plain(to, py, RT_FLOAT, fbuf, m);
                continue;
            }
        } else if (from == RT_DOUBLE) {
            memcpy(dbuf, px, m * sizeof(double));
        } else {
            cast_plain(RT_DOUBLE, dbuf, from, px, m);
        }
        for (size_t i = 0; i < m; i++) {
            if (half_from)
                hy[i] = to == RT_FLOAT16 ? rt_float_to_half(fbuf[i]) : rt_float_to_bfloat16(fbuf[i]);
            else
                hy[i] = to == RT_FLOAT16 ? rt_double_to_half(dbuf[i]) : rt_double_to_bfloat16(dbuf[i]);
        }
    }
}

/* ------------------------------------------------------------------------ backward */

bool unary_backward_supports(UnaryOp op)
{
    switch (op) {
    case UNARY_ABS: case UNARY_RECIPROCAL: case UNARY_SQRT: case UNARY_ERF: case UNARY_SIGMOID:
    case UNARY_TANH: case UNARY_SOFTPLUS: case UNARY_SOFTSIGN: case UNARY_RELU: case UNARY_LEAKY_RELU:
    case UNARY_ELU: case UNARY_SELU: case UNARY_CELU: case UNARY_HARD_SIGMOID: case UNARY_HARD_SWISH:
    case UNARY_THRESHOLDED_RELU: case UNARY_MISH: case UNARY_GELU: case UNARY_SHRINK:
        return true;
    default:
        return false;
    }
}

bool unary_backward_reads_output(UnaryOp op)
{
    return op == UNARY_SIGMOID || op == UNARY_TANH || op == UNARY_SQRT || op == UNARY_RECIPROCAL || op == UNARY_RELU;
}

/* dx[i] = dy[i] * D, with v = t[i] (X or Y). */
#define EACH_GRAD(D) for (size_t i = 0; i < n; i++) { float v = t[i]; dx[i] = dy[i] * (D); }

/* dx[i] = keep(t[i]) ? dy[i] : 0 as a bit mask over 4-float vectors (GCC/clang vector extensions, SSE2
 * on baseline x86-64): written as a ternary, gcc leaves these loops scalar (control flow in the loop),
 * ~6x slower than the forward. dy goes through unchanged or becomes +0 (torch's threshold_backward). */
typedef float GradV4 __attribute__((vector_size(16)));
typedef int32_t GradM4 __attribute__((vector_size(16)));

static inline GradV4 grad_load(const float *p)
{
    GradV4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void grad_store(float *p, GradV4 dy, GradM4 keep)
{
    GradV4 v = (GradV4)((GradM4)dy & keep);
    memcpy(p, &v, sizeof v);
}

/* ReLU: keep where t > 0 (t the input or the output: the same mask) */
static void relu_grad(float *dx, const float *dy, const float *t, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        grad_store(dx + i, grad_load(dy + i), grad_load(t + i) > 0.0f);
    for (; i < n; i++)
        dx[i] = t[i] > 0 ? dy[i] : 0.0f;
}

static void unary_backward_slice(UnaryOp op, float *dx, const float *dy, const float *t, size_t n, float alpha,
                                 float beta)
{
    switch (op) {
    case UNARY_ABS:        EACH_GRAD(v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f); break;
    case UNARY_RECIPROCAL: EACH_GRAD(-v * v); break;                             /* y = 1/x: -y^2 */
    case UNARY_SQRT:       EACH_GRAD(0.5f / v); break;                           /* y = sqrt x: 1/(2y) */
    case UNARY_ERF:        erf_backward_f32(dx, dy, t, n); break;   /* kernels/erf.c */
    case UNARY_SIGMOID:    EACH_GRAD(v * (1.0f - v)); break;                     /* from y */
    case UNARY_TANH:       EACH_GRAD(1.0f - v * v); break;                       /* from y */
    case UNARY_SOFTPLUS:   EACH_GRAD(1.0f / (1.0f + expf(-v))); break;           /* sigmoid(x) */
    case UNARY_SOFTSIGN:   EACH_GRAD(1.0f / ((1.0f + fabsf(v)) * (1.0f + fabsf(v)))); break;
    case UNARY_RELU:       relu_grad(dx, dy, t, n); break;
    case UNARY_LEAKY_RELU: EACH_GRAD(v > 0 ? 1.0f : alpha); break;
    case UNARY_ELU:        EACH_GRAD(v > 0 ? 1.0f : alpha * expf(v)); break;
    case UNARY_SELU:       EACH_GRAD(v > 0 ? beta : beta * alpha * expf(v)); break;
    case UNARY_CELU:       EACH_GRAD(v > 0 ? 1.0f : expf(v / alpha)); break;
    case UNARY_HARD_SIGMOID: {
        float a = alpha, b = beta;
        EACH_GRAD(a * v + b > 0 && a * v + b < 1 ? a : 0.0f);
        break;
    }
    case UNARY_HARD_SWISH: EACH_GRAD(v < -3 ? 0.0f : v < 3 ? v / 3 + 0.5f : 1.0f); break;
    case UNARY_THRESHOLDED_RELU: EACH_GRAD(v > alpha ? 1.0f : 0.0f); break;
    case UNARY_MISH:
        for (size_t i = 0; i < n; i++) {
            float v = t[i], sp = v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)), th = tanhf(sp);
            float sg = 1.0f / (1.0f + expf(-v));
            dx[i] = dy[i] * (th + v * sg * (1.0f - th * th));
        }
        break;
    case UNARY_GELU:
        if (alpha == 0) {   /* Phi(x) + x phi(x) */
            gelu_erf_backward_f32(dx, dy, t, n);
        } else {            /* torch's tanh form: 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2) */
            for (size_t i = 0; i < n; i++) {
                float v = t[i], k = 0.79788456f, c = 0.044715f, th = tanhf(k * (v + c * v * v * v));
                dx[i] = dy[i] * (0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * k * (1.0f + 3.0f * c * v * v));
            }
        }
        break;
    case UNARY_SHRINK:     EACH_GRAD(v < -beta || v > beta ? 1.0f : 0.0f); break;
    default: break;
    }
}

void unary_backward(UnaryOp op, float *dx, const float *dy, const float *t, size_t n, float alpha, float beta)
{
    if (!unary_backward_supports(op))
        return;
    if (n < PAR_MIN) {
        unary_backward_slice(op, dx, dy, t, n, alpha, beta);
        return;
    }
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        size_t lo = c * CHUNK, len = n - lo < CHUNK ? n - lo : CHUNK;
        unary_backward_slice(op, dx + lo, dy + lo, t + lo, len, alpha, beta);
    }
}

void clip_backward(float *dx, const float *dy, const float *x, size_t n, const float *lo, const float *hi)
{
    float l = lo ? *lo : -INFINITY, h = hi ? *hi : INFINITY;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        GradV4 v = grad_load(x + i);
        grad_store(dx + i, grad_load(dy + i), (v >= l) & (v <= h));
    }
    for (; i < n; i++)
        dx[i] = x[i] >= l && x[i] <= h ? dy[i] : 0.0f;
}
