/* test_rt_elementwise.c - kernels/elementwise.c against naive references written here from the ONNX
 * formulas (random shapes with broadcasting, every dtype, edge values) and against ONNX backend node
 * data exported by tests/ref/make_rt_ref.py (Cast to/from halves, Mod, BitShift, activations, ...).
 */
#include "rt_ref.h"

#include <float.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rnd_unit(void) { return (double)(rnd() >> 11) * 0x1p-53; }            /* [0, 1) */
static double rnd_range(double lo, double hi) { return lo + (hi - lo) * rnd_unit(); }

/* ------------------------------------------------------------------------ half conversions */

/* The value of half bits h, from the IEEE definition. */
static double half_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Nearest half to v by search over all finite halves; ties to the even bit pattern. */
static uint16_t half_nearest(double v)
{
    if (isnan(v))
        return 0x7e00;
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    double a = fabs(v);
    if (a >= 65520.0)
        return sign | 0x7c00;
    unsigned lo = 0, hi = 0x7bff;           /* largest pattern whose value <= a */
    while (lo < hi) {
        unsigned mid = (lo + hi + 1) / 2;
        if (half_value((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == 0x7bff)
        return sign | 0x7bff;
    double d0 = a - half_value((uint16_t)lo), d1 = half_value((uint16_t)(lo + 1)) - a;
    unsigned pick = d0 < d1 ? lo : d1 < d0 ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1);
    return sign | (uint16_t)pick;
}

/* Nearest bfloat16 to v (a double): the two candidates around its truncation, ties to even. */
static uint16_t bf16_nearest(double v)
{
    if (isnan(v))
        return 0x7fc0;
    float f = (float)v;   /* only to find the neighbourhood: candidates are checked exactly below */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t t = (uint16_t)(u >> 16), best = t;
    double bestd = INFINITY;
    for (int k = -1; k <= 1; k++) {
        uint16_t c = (uint16_t)(t + k);
        if (((c >> 7) & 0xff) == 0xff && (c & 0x7f))
            continue;      /* NaN patterns are never the answer */
        uint32_t cu = (uint32_t)c << 16;
        float cf;
        memcpy(&cf, &cu, 4);
        double d = fabs((double)cf - v);
        if (isinf(cf) && !isinf(v)) {
            /* inf is chosen when v is at least the midpoint between max finite and 2^128 */
            d = fabs(v) >= 0x1.ffp127 ? 0 : INFINITY;   /* max finite is 0x1.fep127 */
        }
        if (d < bestd || (d == bestd && (c & 1) == 0)) {
            best = c;
            bestd = d;
        }
    }
    return best;
}

static void test_half_conversions(void)
{
    int bad = 0;
    for (unsigned h = 0; h < 65536; h++) {
        double want = half_value((uint16_t)h);
        float f = rt_half_to_float((uint16_t)h);
        if (isnan(want)) {
            bad += !isnan(f);
            bad += (rt_float_to_half(f) & 0x7c00) != 0x7c00 || !(rt_float_to_half(f) & 0x3ff);
            continue;
        }
        bad += (double)f != want || !signbit(f) != !signbit(want);
        bad += rt_float_to_half(f) != h;                 /* every half survives the round trip */
        bad += rt_double_to_half(want) != h;
    }
    CHECK_MSG(bad == 0, "%d half round-trip mismatches", bad);

    /* Rounding: exact midpoints between neighbouring halves (ties), a float ulp either side, and
     * random floats of every magnitude; all against the nearest-by-search reference. */
    bad = 0;
    for (unsigned h = 0; h < 0x7bff; h += 1) {
        double mid = (half_value((uint16_t)h) + half_value((uint16_t)(h + 1))) / 2;
        float m = (float)mid;      /* exact: halves have 11 significant bits */
        float probes[3] = {m, nextafterf(m, 0), nextafterf(m, INFINITY)};
        for (int k = 0; k < 3; k++) {
            bad += rt_float_to_half(probes[k]) != half_nearest(probes[k]);
            bad += rt_float_to_half(-probes[k]) != half_nearest(-probes[k]);
        }
    }
    for (int i = 0; i < 200000; i++) {
        float f = (float)ldexp(rnd_range(1, 2), (int)(rnd() % 50) - 30) * ((rnd() & 1) ? -1 : 1);
        bad += rt_float_to_half(f) != half_nearest(f);
        double d = ldexp(rnd_range(1, 2), (int)(rnd() % 50) - 30);
        bad += rt_double_to_half(d) != half_nearest(d);
    }
    CHECK_MSG(bad == 0, "%d float->half rounding mismatches", bad);

    /* The double-rounding trap: just above a half midpoint, float rounding would land on the tie. */
    double trap = 1.0 + 0x1p-11 + 0x1p-40;
    CHECK_EQ_INT(rt_double_to_half(trap), 0x3c01);
    CHECK_EQ_INT(rt_double_to_half(-trap), 0xbc01);
    CHECK_EQ_INT(rt_float_to_half(65504.0f), 0x7bff);
    CHECK_EQ_INT(rt_float_to_half(65519.99f), 0x7bff);
    CHECK_EQ_INT(rt_float_to_half(65520.0f), 0x7c00);
    CHECK_EQ_INT(rt_float_to_half(-INFINITY), 0xfc00);
    CHECK_EQ_INT(rt_float_to_half(0x1p-25f), 0);          /* tie between 0 and the least subnormal */
    CHECK_EQ_INT(rt_float_to_half(0x1.000002p-25f), 1);
    CHECK_EQ_INT(rt_float_to_half(-0.0f), 0x8000);

    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)rnd();
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f))
            continue;
        if (rt_float_to_bfloat16(f) != bf16_nearest(f)) {
            bad++;
            fprintf(stderr, "bf16 of %a: got %04x want %04x\n", f, rt_float_to_bfloat16(f), bf16_nearest(f));
        }
        uint32_t tie = (u & 0xffff0000u) | 0x8000u;      /* exact ties */
        memcpy(&f, &tie, 4);
        if (!isnan(f))
            bad += rt_float_to_bfloat16(f) != bf16_nearest(f);
        double d = ldexp(rnd_range(1, 2), (int)(rnd() % 200) - 100);
        bad += rt_double_to_bfloat16(d) != bf16_nearest(d);
    }
    CHECK_MSG(bad == 0, "%d bfloat16 rounding mismatches", bad);
    CHECK_EQ_INT(rt_double_to_bfloat16(1.0 + 0x1p-8 + 0x1p-30), 0x3f81);   /* double-rounding trap */
    CHECK_EQ_INT(rt_float_to_bfloat16(NAN) & 0x7fc0, 0x7fc0);
    CHECK(rt_bfloat16_to_float(0x3f80) == 1.0f && rt_bfloat16_to_float(0xc040) == -3.0f);
}

/* ------------------------------------------------------------------------ unary */

static double ref_round_even(double x)
{
    double r = floor(x), diff = x - r;
    if (diff > 0.5 || (diff == 0.5 && fmod(r, 2) != 0))
        r += 1;
    return r;
}

static double ref_unary(UnaryOp op, double x, double alpha, double beta)
{
    switch (op) {
    case UNARY_ABS: return fabs(x);
    case UNARY_NEG: return -x;
    case UNARY_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case UNARY_RELU: return x < 0 ? 0 : x;
    case UNARY_RECIPROCAL: return 1 / x;
    case UNARY_FLOOR: return floor(x);
    case UNARY_CEIL: return ceil(x);
    case UNARY_ROUND: return ref_round_even(x);
    case UNARY_SQRT: return sqrt(x);
    case UNARY_EXP: return exp(x);
    case UNARY_LOG: return log(x);
    case UNARY_SIN: return sin(x);
    case UNARY_COS: return cos(x);
    case UNARY_TAN: return tan(x);
    case UNARY_ASIN: return asin(x);
    case UNARY_ACOS: return acos(x);
    case UNARY_ATAN: return atan(x);
    case UNARY_SINH: return sinh(x);
    case UNARY_COSH: return cosh(x);
    case UNARY_ASINH: return log(x + sqrt(x * x + 1));
    case UNARY_ACOSH: return log(x + sqrt(x * x - 1));
    case UNARY_ATANH: return 0.5 * log((1 + x) / (1 - x));
    case UNARY_ERF: return erf(x);
    case UNARY_SIGMOID: return 1 / (1 + exp(-x));
    case UNARY_TANH: return tanh(x);
    case UNARY_SOFTPLUS: return log(exp(x) + 1);
    case UNARY_SOFTSIGN: return x / (1 + fabs(x));
    case UNARY_LEAKY_RELU: return x < 0 ? alpha * x : x;
    case UNARY_ELU: return x < 0 ? alpha * (exp(x) - 1) : x;
    case UNARY_SELU: return x <= 0 ? beta * (alpha * exp(x) - alpha) : beta * x;
    case UNARY_CELU: return (x > 0 ? x : 0) + (x < 0 ? alpha * (exp(x / alpha) - 1) : 0);
    case UNARY_HARD_SIGMOID: return fmax(0, fmin(1, alpha * x + beta));
    case UNARY_HARD_SWISH: return x * fmax(0, fmin(1, x / 6 + 0.5));
    case UNARY_THRESHOLDED_RELU: return x > alpha ? x : 0;
    case UNARY_MISH: return x * tanh(log(1 + exp(x)));
    case UNARY_GELU: return alpha == 0 ? 0.5 * x * (1 + erf(x / sqrt(2)))
                                       : 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * pow(x, 3))));
    case UNARY_SHRINK: return x < -beta ? x + alpha : x > beta ? x - alpha : 0;
    default: return NAN;
    }
}

/* Where each op is defined (inputs are drawn from [lo, hi]). */
static void unary_domain(UnaryOp op, double *lo, double *hi)
{
    *lo = -6, *hi = 6;
    if (op == UNARY_SQRT || op == UNARY_LOG)
        *lo = 1e-3;
    if (op == UNARY_ASIN || op == UNARY_ACOS || op == UNARY_ATANH)
        *lo = -0.99, *hi = 0.99;
    if (op == UNARY_ACOSH)
        *lo = 1.001;
    if (op == UNARY_TAN)
        *lo = -1.4, *hi = 1.4;
}

/* Equal (infinities included), both NaN, or within tol relative (and absolute near 0). */
static bool close_or_same(double got, double want, double tol)
{
    return got == want || (isnan(got) && isnan(want)) || fabs(got - want) <= tol + tol * fabs(want);
}

static void test_unary_float(void)
{
    enum { N = 3000 };
    static float xf[N], yf[N];
    static double xd[N], yd[N];
    for (int op = 0; op <= UNARY_SHRINK; op++) {
        CHECK(unary_supports(op, RT_FLOAT) && unary_supports(op, RT_DOUBLE));
        double lo, hi, alpha = 0.7, beta = op == UNARY_HARD_SIGMOID ? 0.4 : 1.3;
        if (op == UNARY_SHRINK)
            alpha = 0.25, beta = 1.5;
        unary_domain(op, &lo, &hi);
        for (int i = 0; i < N; i++) {
            xd[i] = rnd_range(lo, hi);
            if (i < 40 && lo == -6)
                xd[i] = (i - 20) * 0.5;     /* halves: Round's ties, kinks at 0 and thresholds */
            xf[i] = (float)xd[i];
        }
        unary_forward(op, RT_FLOAT, yf, xf, N, (float)alpha, (float)beta);
        unary_forward(op, RT_DOUBLE, yd, xd, N, alpha, beta);
        int badf = 0, badd = 0, first = -1;
        for (int i = 0; i < N; i++) {
            /* The kernel takes float attributes for both widths. */
            double wf = ref_unary(op, xf[i], (float)alpha, (float)beta);
            double wd = ref_unary(op, xd[i], (float)alpha, (float)beta);
            if (!close_or_same(yf[i], wf, 2e-6)) {
                if (first < 0)
                    first = i;
                badf++;
            }
            badd += !close_or_same(yd[i], wd, 1e-13);
        }
        CHECK_MSG(badf == 0, "unary op %d float: %d bad, first x=%.9g got %.9g want %.9g", op, badf,
                  first >= 0 ? xf[first] : 0, first >= 0 ? yf[first] : 0,
                  first >= 0 ? ref_unary(op, xf[first], (float)alpha, (float)beta) : 0);
        CHECK_MSG(badd == 0, "unary op %d double: %d bad", op, badd);
    }
    /* Special values. */
    float sp[6] = {NAN, INFINITY, -INFINITY, -0.0f, 100.0f, -100.0f}, out[6];
    unary_forward(UNARY_SIGMOID, RT_FLOAT, out, sp, 6, 0, 0);
    CHECK(isnan(out[0]) && out[1] == 1 && out[2] == 0 && out[4] == 1 && out[5] >= 0 && out[5] < 1e-40);
    unary_forward(UNARY_SOFTPLUS, RT_FLOAT, out, sp, 6, 0, 0);
    CHECK(out[1] == INFINITY && out[2] == 0 && out[4] == 100.0f && out[5] >= 0 && out[5] < 1e-40);
    unary_forward(UNARY_SIGN, RT_FLOAT, out, sp, 6, 0, 0);
    CHECK(isnan(out[0]) && out[1] == 1 && out[2] == -1 && out[3] == 0);
    unary_forward(UNARY_MISH, RT_FLOAT, out, sp, 6, 0, 0);
    CHECK(out[4] == 100.0f && fabs(out[5]) < 1e-30);
    float rt[8] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4999998f, 1e9f, -3.5f}, rr[8];
    unary_forward(UNARY_ROUND, RT_FLOAT, rr, rt, 8, 0, 0);
    CHECK(rr[0] == 0 && rr[1] == 2 && rr[2] == 2 && rr[3] == 0 && rr[4] == -2 && rr[5] == 2 && rr[6] == 1e9f &&
          rr[7] == -4);

    /* Large and in place: the parallel path must equal the serial one. */
    size_t big = 300001;
    float *a = malloc(big * 4), *b = malloc(big * 4);
    for (size_t i = 0; i < big; i++)
        a[i] = b[i] = (float)rnd_range(-5, 5);
    unary_forward(UNARY_TANH, RT_FLOAT, a, a, big, 0, 0);
    int bad = 0;
    for (size_t i = 0; i < big; i++)
        bad += a[i] != tanhf(b[i]);
    CHECK_MSG(bad == 0, "large in-place tanh: %d differ", bad);
    free(a);
    free(b);
}

/* Integer unary ops on edge values, against int64 arithmetic wrapped to the width. */
static int64_t wrap_signed(int64_t v, int bits)
{
    if (bits == 64)
        return v;
    uint64_t m = ((uint64_t)1 << bits) - 1, u = (uint64_t)v & m;
    return (u >> (bits - 1)) ? (int64_t)(u | ~m) : (int64_t)u;
}

static void test_unary_int(void)
{
    static const RtDType sdt[] = {RT_INT8, RT_INT16, RT_INT32, RT_INT64};
    static const int sbits[] = {8, 16, 32, 64};
    for (int t = 0; t < 4; t++) {
        int bits = sbits[t];
        int64_t mn = bits == 64 ? INT64_MIN : -((int64_t)1 << (bits - 1)), mx = bits == 64 ? INT64_MAX : -mn - 1;
        int64_t vals[8] = {mn, mn + 1, -5, -1, 0, 1, 7, mx};
        unsigned char x[64], y[64];
        size_t es = rt_dtype_size(sdt[t]);
        for (int i = 0; i < 8; i++)
            memcpy(x + i * es, &vals[i], es);   /* little-endian: the low bytes */
        UnaryOp ops[5] = {UNARY_ABS, UNARY_NEG, UNARY_SIGN, UNARY_RELU, UNARY_BITWISE_NOT};
        for (int o = 0; o < 5; o++) {
            CHECK(unary_supports(ops[o], sdt[t]));
            unary_forward(ops[o], sdt[t], y, x, 8, 0, 0);
            for (int i = 0; i < 8; i++) {
                int64_t v = vals[i], w;
                switch (ops[o]) {
                case UNARY_ABS: w = v == mn ? mn : (v < 0 ? -v : v); break;
                case UNARY_NEG: w = v == mn ? mn : -v; break;
                case UNARY_SIGN: w = (v > 0) - (v < 0); break;
                case UNARY_RELU: w = v > 0 ? v : 0; break;
                default: w = ~v; break;
                }
                int64_t got = 0;
                memcpy(&got, y + i * es, es);
                got = wrap_signed(got, bits);
                CHECK_MSG(got == w, "int%d op %d x=%lld: got %lld want %lld", bits, ops[o], (long long)v,
                          (long long)got, (long long)w);
            }
        }
        CHECK(!unary_supports(UNARY_EXP, sdt[t]) && !unary_supports(UNARY_NOT, sdt[t]));
    }
    uint32_t ux[4] = {0, 1, 7, UINT32_MAX}, uy[4];
    unary_forward(UNARY_SIGN, RT_UINT32, uy, ux, 4, 0, 0);
    CHECK(uy[0] == 0 && uy[1] == 1 && uy[2] == 1 && uy[3] == 1);
    unary_forward(UNARY_BITWISE_NOT, RT_UINT32, uy, ux, 4, 0, 0);
    CHECK(uy[0] == UINT32_MAX && uy[3] == 0);
    CHECK(!unary_supports(UNARY_NEG, RT_UINT8));
    uint8_t bx[3] = {0, 1, 1}, by[3];
    unary_forward(UNARY_NOT, RT_BOOL, by, bx, 3, 0, 0);
    CHECK(by[0] == 1 && by[1] == 0 && by[2] == 0);
}

static void test_clip_isnan(void)
{
    float x[7] = {-3, -1, 0, 0.5f, 2, NAN, 10}, y[7], lo = -1.5f, hi = 1;
    clip_forward(RT_FLOAT, y, x, 7, &lo, &hi);
    CHECK(y[0] == -1.5f && y[1] == -1 && y[3] == 0.5f && y[4] == 1 && isnan(y[5]) && y[6] == 1);
    clip_forward(RT_FLOAT, y, x, 7, NULL, &hi);
    CHECK(y[0] == -3 && y[6] == 1);
    clip_forward(RT_FLOAT, y, x, 7, &lo, NULL);
    CHECK(y[0] == -1.5f && y[6] == 10);
    float lo2 = 2, hi2 = 1;       /* min > max: max wins, as numpy.clip */
    clip_forward(RT_FLOAT, y, x, 7, &lo2, &hi2);
    CHECK(y[0] == 1 && y[6] == 1);
    int64_t xi[4] = {INT64_MIN, -5, 5, INT64_MAX}, yi[4], loi = -4, hii = 4;
    clip_forward(RT_INT64, yi, xi, 4, &loi, &hii);
    CHECK(yi[0] == -4 && yi[1] == -4 && yi[2] == 4 && yi[3] == 4);

    float fs[5] = {NAN, INFINITY, -INFINITY, 0, -1e30f};
    uint8_t b[5];
    isnan_forward(RT_FLOAT, b, fs, 5);
    CHECK(b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0);
    isinf_forward(RT_FLOAT, b, fs, 5, true, false);
    CHECK(b[0] == 0 && b[1] == 0 && b[2] == 1 && b[4] == 0);
    isinf_forward(RT_FLOAT, b, fs, 5, true, true);
    CHECK(b[1] == 1 && b[2] == 1);
    uint16_t hs[3] = {0x7c00, 0x7e00, 0x3c00};
    isinf_forward(RT_FLOAT16, b, hs, 3, true, true);
    CHECK(b[0] == 1 && b[1] == 0 && b[2] == 0);
    isnan_forward(RT_BFLOAT16, b, (uint16_t[]){0x7fc0, 0x7f80}, 2);
    CHECK(b[0] == 1 && b[1] == 0);
}

/* ------------------------------------------------------------------------ binary */

typedef struct {
    int rank;
    size_t dims[6];
} TShape;

static size_t shape_numel(const TShape *s)
{
    size_t n = 1;
    for (int d = 0; d < s->rank; d++)
        n *= s->dims[d];
    return n;
}

/* Element of operand shape `s` (right-aligned to y's rank) read at y's multi-index. */
static size_t bcast_index(const TShape *s, int yrank, const size_t *yidx)
{
    size_t off = 0;
    for (int d = 0; d < s->rank; d++) {
        size_t i = s->dims[d] == 1 ? 0 : yidx[d + yrank - s->rank];
        off = off * s->dims[d] + i;
    }
    return off;
}

/* Random y shape and two (or three) operand shapes that broadcast to it. */
static void random_bcast(TShape *y, TShape *ops, int nops, size_t max_dim)
{
    y->rank = (int)(rnd() % 5);
    for (int d = 0; d < y->rank; d++)
        y->dims[d] = 1 + rnd() % max_dim;
    for (int k = 0; k < nops; k++) {
        ops[k].rank = y->rank - (int)(rnd() % (y->rank + 1));
        for (int d = 0; d < ops[k].rank; d++) {
            size_t yd = y->dims[d + y->rank - ops[k].rank];
            ops[k].dims[d] = (rnd() % 3 == 0) ? 1 : yd;
        }
    }
    /* Some y dims come only from broadcasting: make sure at least one operand has them. */
    for (int d = 0; d < y->rank; d++) {
        bool has = false;
        for (int k = 0; k < nops; k++) {
            int od = d - (y->rank - ops[k].rank);
            has |= od >= 0 && ops[k].dims[od] == y->dims[d];
        }
        if (!has)
            y->dims[d] = 1;
    }
}

static void strides_of(const TShape *y, const TShape *x, size_t *st)
{
    rt_broadcast_strides(y->rank, y->dims, x->rank, x->dims, st);
}

static void unravel(const TShape *y, size_t i, size_t *idx)
{
    for (int d = y->rank - 1; d >= 0; d--) {
        idx[d] = i % y->dims[d];
        i /= y->dims[d];
    }
}

/* Scalar references, by kind of dtype. Integers are computed in int64/uint64, then wrapped. */
static double ref_binary_float(BinaryOp op, double a, double b, bool single)
{
    switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    case BINARY_POW: return single ? (double)powf((float)a, (float)b) : pow(a, b);
    case BINARY_MOD: { double r = a - floor(a / b) * b; return r; }
    case BINARY_FMOD: return a - trunc(a / b) * b;
    case BINARY_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
    case BINARY_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
    case BINARY_PRELU: return a < 0 ? a * b : a;
    case BINARY_EQUAL: return a == b;
    case BINARY_LESS: return a < b;
    case BINARY_LESS_EQUAL: return a <= b;
    case BINARY_GREATER: return a > b;
    case BINARY_GREATER_EQUAL: return a >= b;
    default: return NAN;
    }
}

static int64_t ref_binary_sint(BinaryOp op, int64_t a, int64_t b, int bits)
{
    int64_t mn = bits == 64 ? INT64_MIN : -((int64_t)1 << (bits - 1));
    switch (op) {
    case BINARY_ADD: return wrap_signed((int64_t)((uint64_t)a + (uint64_t)b), bits);
    case BINARY_SUB: return wrap_signed((int64_t)((uint64_t)a - (uint64_t)b), bits);
    case BINARY_MUL: return wrap_signed((int64_t)((uint64_t)a * (uint64_t)b), bits);
    case BINARY_DIV: return b == 0 ? 0 : (a == mn && b == -1) ? mn : a / b;
    case BINARY_POW: {
        if (b < 0)
            return a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0;
        uint64_t r = 1;
        for (int64_t k = 0; k < b; k++)
            r *= (uint64_t)a;
        return wrap_signed((int64_t)r, bits);
    }
    case BINARY_MOD: {       /* floor division: q rounds toward -inf */
        if (b == 0 || b == -1)
            return 0;
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
            q -= 1;
        return (int64_t)((uint64_t)a - (uint64_t)q * (uint64_t)b);   /* may pass through overflow */
    }
    case BINARY_FMOD: return (b == 0 || b == -1) ? 0 : (int64_t)((uint64_t)a - (uint64_t)(a / b) * (uint64_t)b);
    case BINARY_MIN: return a < b ? a : b;
    case BINARY_MAX: return a > b ? a : b;
    case BINARY_PRELU: return a < 0 ? wrap_signed((int64_t)((uint64_t)a * (uint64_t)b), bits) : a;
    case BINARY_EQUAL: return a == b;
    case BINARY_LESS: return a < b;
    case BINARY_LESS_EQUAL: return a <= b;
    case BINARY_GREATER: return a > b;
    case BINARY_GREATER_EQUAL: return a >= b;
    case BINARY_BITWISE_AND: return a & b;
    case BINARY_BITWISE_OR: return a | b;
    case BINARY_BITWISE_XOR: return a ^ b;
    default: return 0;
    }
}

static uint64_t ref_binary_uint(BinaryOp op, uint64_t a, uint64_t b, int bits)
{
    uint64_t m = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    switch (op) {
    case BINARY_ADD: return (a + b) & m;
    case BINARY_SUB: return (a - b) & m;
    case BINARY_MUL: return (a * b) & m;
    case BINARY_DIV: return b ? a / b : 0;
    case BINARY_POW: {
        uint64_t r = 1;
        for (uint64_t k = 0; k < b; k++)
            r *= a;
        return r & m;
    }
    case BINARY_MOD: case BINARY_FMOD: return b ? a % b : 0;
    case BINARY_MIN: return a < b ? a : b;
    case BINARY_MAX: return a > b ? a : b;
    case BINARY_PRELU: return a;
    case BINARY_EQUAL: return a == b;
    case BINARY_LESS: return a < b;
    case BINARY_LESS_EQUAL: return a <= b;
    case BINARY_GREATER: return a > b;
    case BINARY_GREATER_EQUAL: return a >= b;
    case BINARY_SHIFT_LEFT: return b >= (uint64_t)bits ? 0 : (a << b) & m;
    case BINARY_SHIFT_RIGHT: return b >= (uint64_t)bits ? 0 : a >> b;
    case BINARY_BITWISE_AND: return a & b;
    case BINARY_BITWISE_OR: return a | b;
    case BINARY_BITWISE_XOR: return a ^ b;
    default: return 0;
    }
}

/* Read/write element i of a dtype as int64 bits (ints) or double (floats). */
static void put_val(RtDType dt, void *p, size_t i, double f, int64_t v)
{
    switch (dt) {
    case RT_FLOAT: ((float *)p)[i] = (float)f; break;
    case RT_DOUBLE: ((double *)p)[i] = f; break;
    default: memcpy((char *)p + i * rt_dtype_size(dt), &v, rt_dtype_size(dt)); break;
    }
}
static int64_t get_bits(RtDType dt, const void *p, size_t i)
{
    int64_t v = 0;
    memcpy(&v, (const char *)p + i * rt_dtype_size(dt), rt_dtype_size(dt));
    return v;
}

static int dt_bits(RtDType dt) { return (int)rt_dtype_size(dt) * 8; }
static bool dt_signed(RtDType dt) { return dt == RT_INT8 || dt == RT_INT16 || dt == RT_INT32 || dt == RT_INT64; }

/* Operand values: small ints (with zeros, -1, and extremes now and then) or floats with ties. */
static void random_operand(RtDType dt, BinaryOp op, void *p, size_t n, bool is_exponent)
{
    int bits = dt_bits(dt);
    for (size_t i = 0; i < n; i++) {
        if (dt == RT_FLOAT || dt == RT_DOUBLE) {
            double v = (rnd() % 4 == 0) ? (double)((int)(rnd() % 9) - 4) : rnd_range(-8, 8);
            if (op == BINARY_POW)
                v = is_exponent ? (double)((int)(rnd() % 7) - 3) * ((rnd() & 1) ? 1 : 0.5) : rnd_range(0.1, 4);
            if ((op == BINARY_MIN || op == BINARY_MAX) && rnd() % 10 == 0)
                v = NAN;
            put_val(dt, p, i, v, 0);
        } else if (dt == RT_BOOL) {
            put_val(dt, p, i, 0, (int64_t)(rnd() & 1));
        } else {
            int64_t v = (int64_t)(rnd() % 21) - 10;
            if (!dt_signed(dt) && v < 0)
                v = -v;
            if (rnd() % 12 == 0)
                v = dt_signed(dt) ? wrap_signed((int64_t)((uint64_t)1 << (bits - 1)), bits) : (int64_t)(UINT64_MAX >> (64 - bits));
            if (op == BINARY_POW && is_exponent)
                v = (int64_t)(rnd() % 6) - (dt_signed(dt) ? 2 : 0);
            if ((op == BINARY_SHIFT_LEFT || op == BINARY_SHIFT_RIGHT) && is_exponent)
                v = (int64_t)(rnd() % (uint64_t)(bits + 3));
            put_val(dt, p, i, 0, v);
        }
    }
}

static bool check_binary_case(BinaryOp op, RtDType dt, const TShape *ys, const TShape *as, const TShape *bs,
                              bool in_place)
{
    size_t ny = shape_numel(ys), na = shape_numel(as), nb = shape_numel(bs), es = rt_dtype_size(dt);
    RtDType odt = binary_output_dtype(op, dt);
    char *a = malloc(na * es + 8), *b = malloc(nb * es + 8), *y = malloc(ny * 8 + 8);
    random_operand(dt, op, a, na, false);
    random_operand(dt, op, b, nb, true);
    char *a0 = malloc(na * es + 8);
    memcpy(a0, a, na * es);
    size_t ast[6], bst[6], idx[6];
    strides_of(ys, as, ast);
    strides_of(ys, bs, bst);
    char *out = in_place ? a : y;
    binary_forward(op, dt, out, a, b, ys->rank, ys->dims, ast, bst);
    bool ok = true;
    for (size_t i = 0; i < ny && ok; i++) {
        unravel(ys, i, idx);
        size_t ia = bcast_index(as, ys->rank, idx), ib = bcast_index(bs, ys->rank, idx);
        if (dt == RT_FLOAT || dt == RT_DOUBLE) {
            bool single = dt == RT_FLOAT;
            double av = single ? ((float *)a0)[ia] : ((double *)a0)[ia];
            double bv = single ? ((float *)b)[ib] : ((double *)b)[ib];
            double w = ref_binary_float(op, av, bv, single);
            double g = odt == RT_BOOL ? ((uint8_t *)out)[i] : single ? ((float *)out)[i] : ((double *)out)[i];
            if (single && odt != RT_BOOL)
                w = (float)w;
            double tol = (op == BINARY_MOD || op == BINARY_FMOD || op == BINARY_POW) ? 1e-5 * (1 + fabs(w)) : 0;
            ok = g == w || (isnan(w) && isnan(g)) || fabs(g - w) <= tol;
            if (!ok)
                fprintf(stderr, "binary op %d %s: y[%zu] = f(%.9g, %.9g): got %.9g want %.9g\n", op,
                        rt_dtype_name(dt), i, av, bv, g, w);
        } else {
            int bits = dt_bits(dt);
            int64_t av = get_bits(dt, a0, ia), bv = get_bits(dt, b, ib), w, g;
            if (dt_signed(dt)) {
                av = wrap_signed(av, bits), bv = wrap_signed(bv, bits);
                w = dt == RT_BOOL ? 0 : ref_binary_sint(op, av, bv, bits);
            } else if (dt == RT_BOOL) {
                w = op == BINARY_EQUAL ? av == bv
                  : (op == BINARY_AND || op == BINARY_BITWISE_AND) ? (av && bv)
                  : (op == BINARY_OR || op == BINARY_BITWISE_OR) ? (av || bv) : (av != bv);
            } else {
                w = (int64_t)ref_binary_uint(op, (uint64_t)av, (uint64_t)bv, bits);
            }
            g = get_bits(odt, out, i);
            if (odt != RT_BOOL && dt_signed(odt))
                g = wrap_signed(g, bits);
            ok = g == w;
            if (!ok)
                fprintf(stderr, "binary op %d %s: y[%zu] = f(%lld, %lld): got %lld want %lld\n", op,
                        rt_dtype_name(dt), i, (long long)av, (long long)bv, (long long)g, (long long)w);
        }
    }
    free(a);
    free(a0);
    free(b);
    free(y);
    return ok;
}

static void test_binary_random(void)
{
    static const RtDType dts[] = {RT_FLOAT, RT_DOUBLE, RT_INT8, RT_INT16, RT_INT32, RT_INT64,
                                  RT_UINT8, RT_UINT16, RT_UINT32, RT_UINT64, RT_BOOL};
    int cases = 0;
    for (size_t t = 0; t < sizeof dts / sizeof dts[0]; t++) {
        for (int op = 0; op < BINARY_COUNT; op++) {
            if (!binary_supports(op, dts[t]))
                continue;
            for (int rep = 0; rep < 12; rep++) {
                TShape ys, ops[2];
                random_bcast(&ys, ops, 2, 5);
                bool in_place = rep == 0 && binary_output_dtype(op, dts[t]) == dts[t];
                if (in_place)
                    ops[0] = ys;
                CHECK_MSG(check_binary_case(op, dts[t], &ys, &ops[0], &ops[1], in_place), "op %d dtype %s rep %d",
                          op, rt_dtype_name(dts[t]), rep);
                cases++;
            }
        }
    }
    /* The parallel path, with the [N,C,H,W] op [C,1,1] pattern and a scalar. */
    TShape y = {4, {6, 32, 33, 34}}, a = {4, {6, 32, 33, 34}}, c = {3, {32, 1, 1}}, s = {0, {0}};
    CHECK(check_binary_case(BINARY_MUL, RT_FLOAT, &y, &a, &c, false));
    CHECK(check_binary_case(BINARY_SUB, RT_FLOAT, &y, &s, &a, false));
    TShape y2 = {2, {700, 300}}, r = {2, {700, 1}}, col = {1, {300}};
    CHECK(check_binary_case(BINARY_ADD, RT_INT64, &y2, &r, &col, false));
    printf("binary: %d random broadcast cases\n", cases);

    CHECK(!binary_supports(BINARY_SHIFT_LEFT, RT_INT32) && !binary_supports(BINARY_BITWISE_AND, RT_FLOAT));
    CHECK(!binary_supports(BINARY_ADD, RT_FLOAT16) && !binary_supports(BINARY_LESS, RT_BOOL));
    CHECK(binary_output_dtype(BINARY_LESS, RT_FLOAT) == RT_BOOL && binary_output_dtype(BINARY_ADD, RT_INT8) == RT_INT8);

    /* Mod sign rules on fixed values (Python for fmod=0, C for fmod=1). */
    int32_t ma[4] = {-7, 7, -7, 7}, mb[4] = {3, -3, -3, 3}, my[4];
    size_t d4 = 4, st1 = 1;
    binary_forward(BINARY_MOD, RT_INT32, my, ma, mb, 1, &d4, &st1, &st1);
    CHECK(my[0] == 2 && my[1] == -2 && my[2] == -1 && my[3] == 1);
    binary_forward(BINARY_FMOD, RT_INT32, my, ma, mb, 1, &d4, &st1, &st1);
    CHECK(my[0] == -1 && my[1] == 1 && my[2] == -1 && my[3] == 1);
    float fa[2] = {-7.5f, 7.5f}, fb[2] = {2, 2}, fy[2];
    size_t d2 = 2;
    binary_forward(BINARY_MOD, RT_FLOAT, fy, fa, fb, 1, &d2, &st1, &st1);
    CHECK(fy[0] == 0.5f && fy[1] == 1.5f);
    int32_t mn = INT32_MIN, m1 = -1, q;
    size_t zero = 0;
    binary_forward(BINARY_DIV, RT_INT32, &q, &mn, &m1, 0, &zero, &zero, &zero);
    CHECK(q == INT32_MIN);
}

/* ------------------------------------------------------------------------ Where, Expand */

static void test_where_expand(void)
{
    static const size_t sizes[] = {1, 2, 3, 4, 8};
    for (int rep = 0; rep < 200; rep++) {
        size_t es = sizes[rep % 5];
        TShape ys, ops[3];
        random_bcast(&ys, ops, 3, 4);
        size_t ny = shape_numel(&ys), nc = shape_numel(&ops[0]), na = shape_numel(&ops[1]), nb = shape_numel(&ops[2]);
        uint8_t *c = malloc(nc + 1), *a = malloc(na * es + 1), *b = malloc(nb * es + 1), *y = malloc(ny * es + 1);
        for (size_t i = 0; i < nc; i++)
            c[i] = rnd() & 1;
        for (size_t i = 0; i < na * es; i++)
            a[i] = (uint8_t)rnd();
        for (size_t i = 0; i < nb * es; i++)
            b[i] = (uint8_t)rnd();
        size_t cs[6], as[6], bs[6], idx[6];
        strides_of(&ys, &ops[0], cs);
        strides_of(&ys, &ops[1], as);
        strides_of(&ys, &ops[2], bs);
        where_forward(es, y, c, a, b, ys.rank, ys.dims, cs, as, bs);
        int bad = 0;
        for (size_t i = 0; i < ny; i++) {
            unravel(&ys, i, idx);
            bool cv = c[bcast_index(&ops[0], ys.rank, idx)];
            const uint8_t *src = cv ? a + bcast_index(&ops[1], ys.rank, idx) * es : b + bcast_index(&ops[2], ys.rank, idx) * es;
            bad += memcmp(y + i * es, src, es) != 0;
        }
        CHECK_MSG(bad == 0, "where rep %d elsize %zu: %d differ", rep, es, bad);

        /* Expand the first operand to y. */
        expand_forward(es, y, a, ys.rank, ys.dims, as);
        bad = 0;
        for (size_t i = 0; i < ny; i++) {
            unravel(&ys, i, idx);
            bad += memcmp(y + i * es, a + bcast_index(&ops[1], ys.rank, idx) * es, es) != 0;
        }
        CHECK_MSG(bad == 0, "expand rep %d elsize %zu: %d differ", rep, es, bad);
        free(c);
        free(a);
        free(b);
        free(y);
    }
}

/* ------------------------------------------------------------------------ Cast */

static const RtDType ALL_DT[] = {RT_FLOAT, RT_UINT8, RT_INT8, RT_UINT16, RT_INT16, RT_INT32, RT_INT64, RT_BOOL,
                                 RT_FLOAT16, RT_DOUBLE, RT_UINT32, RT_UINT64, RT_BFLOAT16};
#define N_ALL_DT (sizeof ALL_DT / sizeof ALL_DT[0])

static bool dt_is_floating(RtDType dt)
{
    return dt == RT_FLOAT || dt == RT_DOUBLE || dt == RT_FLOAT16 || dt == RT_BFLOAT16;
}

/* The reference cast of one value (held exactly as a double, or as int64/uint64 bits for wide ints). */
static void ref_cast(RtDType to, void *out, RtDType from, double v, int64_t iv)
{
    bool from_float = dt_is_floating(from);
    bool from_u64 = from == RT_UINT64;
    switch (to) {
    case RT_FLOAT: *(float *)out = from_float ? (float)v : from_u64 ? (float)(uint64_t)iv : (float)iv; return;
    case RT_DOUBLE: *(double *)out = from_float ? v : from_u64 ? (double)(uint64_t)iv : (double)iv; return;
    case RT_FLOAT16: *(uint16_t *)out = half_nearest(from_float ? v : from_u64 ? (double)(uint64_t)iv : (double)iv); return;
    case RT_BFLOAT16: *(uint16_t *)out = bf16_nearest(from_float ? v : from_u64 ? (double)(uint64_t)iv : (double)iv); return;
    case RT_BOOL: *(uint8_t *)out = from_float ? v != 0 : iv != 0; return;
    default: break;
    }
    int bits = dt_bits(to);
    bool sgn = dt_signed(to);
    int64_t r;
    if (from_float) {
        double lo = sgn ? -ldexp(1, bits - 1) : 0, hi = sgn ? ldexp(1, bits - 1) : ldexp(1, bits);
        double t = trunc(v);
        if (isnan(v))
            r = 0;
        else if (t < lo || t == lo)
            r = sgn ? (int64_t)((uint64_t)1 << (bits - 1)) : 0;         /* the minimum's bits */
        else if (t >= hi)
            r = sgn ? (int64_t)(((uint64_t)1 << (bits - 1)) - 1) : (int64_t)(UINT64_MAX >> (64 - bits));
        else
            r = t < 0 ? (int64_t)t : (int64_t)(uint64_t)t;
    } else {
        r = iv;       /* modulo 2^bits: the low bytes */
    }
    memcpy(out, &r, (size_t)bits / 8);
}

static void test_cast_pairs(void)
{
    static const double vals[] = {0, 1, -1, 0.5, -0.5, 1.5, 2.5, -2.7, 127, 128, 255, 256, -128, -129, 32767, 32768,
                                  65504, 65519, 65520, 1e10, -1e10, 4294967295.0, 4294967296.0, 9.2e18, 1.9e19,
                                  -9.3e18, 3e38, 1.0 / 3, NAN, INFINITY, -INFINITY, 1e-8, -0.0};
    enum { NV = sizeof vals / sizeof vals[0] };
    int bad = 0, pairs = 0;
    for (size_t f = 0; f < N_ALL_DT; f++) {
        RtDType from = ALL_DT[f];
        size_t fes = rt_dtype_size(from);
        unsigned char src[NV * 8];
        double exact[NV];
        int64_t ibits[NV];
        /* Make the sources: floats hold the value (rounded to the type), ints its wrapped truncation. */
        for (int i = 0; i < NV; i++) {
            double v = vals[i];
            ibits[i] = 0;
            if (from == RT_FLOAT) { float x = (float)v; memcpy(src + i * 4, &x, 4); exact[i] = x; }
            else if (from == RT_DOUBLE) { memcpy(src + i * 8, &v, 8); exact[i] = v; }
            else if (from == RT_FLOAT16) { uint16_t h = rt_double_to_half(v); memcpy(src + i * 2, &h, 2); exact[i] = half_value(h); }
            else if (from == RT_BFLOAT16) { uint16_t h = rt_double_to_bfloat16(v); memcpy(src + i * 2, &h, 2); exact[i] = rt_bfloat16_to_float(h); }
            else {
                int64_t iv = (isnan(v) || isinf(v) || fabs(v) > 9e18) ? (int64_t)(i * 977) - 5000 : (int64_t)v;
                if (from == RT_BOOL)
                    iv = iv != 0;
                memcpy(src + i * fes, &iv, fes);
                int64_t back = 0;
                memcpy(&back, src + i * fes, fes);
                ibits[i] = dt_signed(from) ? wrap_signed(back, dt_bits(from)) : back;
                exact[i] = (double)ibits[i];
            }
        }
        for (size_t t = 0; t < N_ALL_DT; t++) {
            RtDType to = ALL_DT[t];
            size_t tes = rt_dtype_size(to);
            CHECK(cast_supports(to, from));
            unsigned char got[NV * 8], want[8];
            cast_forward(to, got, from, src, NV);
            pairs++;
            for (int i = 0; i < NV; i++) {
                memset(want, 0, sizeof want);
                ref_cast(to, want, from, exact[i], ibits[i]);
                bool same = memcmp(got + i * tes, want, tes) == 0;
                if (!same && to == RT_FLOAT) {
                    float g, w;
                    memcpy(&g, got + i * 4, 4), memcpy(&w, want, 4);
                    same = isnan(g) && isnan(w);
                } else if (!same && to == RT_DOUBLE) {
                    double g, w;
                    memcpy(&g, got + i * 8, 8), memcpy(&w, want, 8);
                    same = isnan(g) && isnan(w);
                } else if (!same && (to == RT_FLOAT16 || to == RT_BFLOAT16)) {
                    uint16_t g, w;
                    memcpy(&g, got + i * 2, 2), memcpy(&w, want, 2);
                    same = to == RT_FLOAT16 ? (isnan(half_value(g)) && isnan(half_value(w)))
                                            : (isnan(rt_bfloat16_to_float(g)) && isnan(rt_bfloat16_to_float(w)));
                }
                if (!same) {
                    if (bad < 10)
                        fprintf(stderr, "cast %s -> %s of %.17g: bytes differ\n", rt_dtype_name(from),
                                rt_dtype_name(to), exact[i]);
                    bad++;
                }
            }
        }
    }
    CHECK_MSG(bad == 0, "%d cast mismatches over %d dtype pairs", bad, pairs);
}

/* ------------------------------------------------------------------------ ONNX node data */

static void onnx_cast(RefCase *c)
{
    int64_t to = ref_int(c, "to", 0);
    RtDType from = strstr(c->name, "_BFLOAT16_to_") ? RT_BFLOAT16 : c->in[0].dtype;   /* stored as uint16 */
    RtDType want_dt = (RtDType)to;
    const NpyArray *want = &c->out[0];
    NpyArray rne = {0};
    if (strcmp(c->name, "test_cast_FLOAT_to_BFLOAT16") == 0) {
        /* ONNX 1.12's expected output truncates; we round to nearest even like the spec and ORT. */
        if (!ref_load_file(c->name, "out0_rne", &rne))
            return;
        want = &rne;
        size_t trunc_diff = 0;
        for (size_t i = 0; i < c->out[0].numel; i++)
            trunc_diff += ((uint16_t *)c->out[0].data)[i] != ((uint16_t *)rne.data)[i];
        printf("%s: the ONNX file's truncated output differs from round-to-nearest in %zu of %zu elements\n",
               c->name, trunc_diff, c->out[0].numel);
    }
    size_t n = c->in[0].numel;
    void *y = calloc(n + 1, rt_dtype_size(want_dt));
    cast_forward(want_dt, y, from, c->in[0].data, n);
    CHECK(want->numel == n);
    /* Compare bit patterns for halves (NaN payloads aside), values otherwise. */
    if (want_dt == RT_BFLOAT16 || want_dt == RT_FLOAT16) {
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint16_t g = ((uint16_t *)y)[i], w = ((uint16_t *)want->data)[i];
            bool nan_g = want_dt == RT_FLOAT16 ? isnan(half_value(g)) : isnan(rt_bfloat16_to_float(g));
            bool nan_w = want_dt == RT_FLOAT16 ? isnan(half_value(w)) : isnan(rt_bfloat16_to_float(w));
            bad += !(g == w || (nan_g && nan_w));
        }
        CHECK_MSG(bad == 0, "%s: %zu of %zu differ", c->name, bad, n);
    } else {
        ref_compare(c->name, y, want, 0, 0);
    }
    free(y);
    npy_free(&rne);
}

static bool onnx_binary_op(const char *op, const RefCase *c, BinaryOp *out)
{
    static const struct { const char *name; BinaryOp op; } map[] = {
        {"Add", BINARY_ADD}, {"Sub", BINARY_SUB}, {"Mul", BINARY_MUL}, {"Div", BINARY_DIV}, {"Pow", BINARY_POW},
        {"Min", BINARY_MIN}, {"Max", BINARY_MAX}, {"PRelu", BINARY_PRELU}, {"Equal", BINARY_EQUAL},
        {"Less", BINARY_LESS}, {"LessOrEqual", BINARY_LESS_EQUAL}, {"Greater", BINARY_GREATER},
        {"GreaterOrEqual", BINARY_GREATER_EQUAL}, {"And", BINARY_AND}, {"Or", BINARY_OR}, {"Xor", BINARY_XOR},
    };
    if (strcmp(op, "Mod") == 0) {
        *out = ref_int(c, "fmod", 0) ? BINARY_FMOD : BINARY_MOD;
        return true;
    }
    if (strcmp(op, "BitShift") == 0) {
        char buf[16];
        *out = strcmp(ref_str(c, "direction", "", buf, sizeof buf), "LEFT") == 0 ? BINARY_SHIFT_LEFT : BINARY_SHIFT_RIGHT;
        return true;
    }
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].name, op) == 0) {
            *out = map[i].op;
            return true;
        }
    return false;
}

static int onnx_binary_ran;

static void onnx_binary(RefCase *c)
{
    BinaryOp op;
    if (c->n_in != 2 || !onnx_binary_op(c->op, c, &op))
        return;
    RtDType dt = c->in[0].dtype;
    if (dt == RT_FLOAT16) {
        printf("%s: skipped (float16 arithmetic is cast to float by codegen)\n", c->name);
        return;
    }
    CHECK_MSG(binary_supports(op, dt), "%s: op %d on %s unsupported", c->name, op, rt_dtype_name(dt));
    const NpyArray *y = &c->out[0], *a = &c->in[0], *b = &c->in[1];
    size_t ast[RT_MAX_RANK], bst[RT_MAX_RANK];
    rt_broadcast_strides(y->rank, y->dims, a->rank, a->dims, ast);
    rt_broadcast_strides(y->rank, y->dims, b->rank, b->dims, bst);
    void *out = calloc(y->numel + 1, 8);
    binary_forward(op, dt, out, a->data, b->data, y->rank, y->dims, ast, bst);
    ref_compare(c->name, out, y, 1e-6, 1e-6);
    free(out);
    onnx_binary_ran++;
}

static void onnx_where(RefCase *c)
{
    const NpyArray *y = &c->out[0];
    size_t st[3][RT_MAX_RANK];
    for (int k = 0; k < 3; k++)
        rt_broadcast_strides(y->rank, y->dims, c->in[k].rank, c->in[k].dims, st[k]);
    void *out = calloc(y->numel + 1, 8);
    where_forward(rt_dtype_size(y->dtype), out, c->in[0].data, c->in[1].data, c->in[2].data, y->rank, y->dims,
                  st[0], st[1], st[2]);
    ref_compare(c->name, out, y, 0, 0);
    free(out);
}

static void onnx_expand(RefCase *c)
{
    const NpyArray *y = &c->out[0];
    size_t st[RT_MAX_RANK];
    rt_broadcast_strides(y->rank, y->dims, c->in[0].rank, c->in[0].dims, st);
    void *out = calloc(y->numel + 1, 8);
    expand_forward(rt_dtype_size(y->dtype), out, c->in[0].data, y->rank, y->dims, st);
    ref_compare(c->name, out, y, 0, 0);
    free(out);
}

/* ONNX op name -> unary op with its attribute defaults. */
static bool onnx_unary_op(const RefCase *c, UnaryOp *op, float *alpha, float *beta)
{
#define PLAIN(name, op) {name, op, NULL, NULL, 0, 0}
    static const struct { const char *name; UnaryOp op; const char *ka, *kb; float da, db; } map[] = {
        PLAIN("Abs", UNARY_ABS), PLAIN("Neg", UNARY_NEG), PLAIN("Sign", UNARY_SIGN), PLAIN("Relu", UNARY_RELU),
        PLAIN("Reciprocal", UNARY_RECIPROCAL), PLAIN("Floor", UNARY_FLOOR), PLAIN("Ceil", UNARY_CEIL),
        PLAIN("Round", UNARY_ROUND), PLAIN("Sqrt", UNARY_SQRT), PLAIN("Exp", UNARY_EXP), PLAIN("Log", UNARY_LOG),
        PLAIN("Sin", UNARY_SIN), PLAIN("Cos", UNARY_COS), PLAIN("Tan", UNARY_TAN), PLAIN("Asin", UNARY_ASIN),
        PLAIN("Acos", UNARY_ACOS), PLAIN("Atan", UNARY_ATAN), PLAIN("Sinh", UNARY_SINH), PLAIN("Cosh", UNARY_COSH),
        PLAIN("Asinh", UNARY_ASINH), PLAIN("Acosh", UNARY_ACOSH), PLAIN("Atanh", UNARY_ATANH), PLAIN("Erf", UNARY_ERF),
        PLAIN("Sigmoid", UNARY_SIGMOID), PLAIN("Tanh", UNARY_TANH), PLAIN("Softplus", UNARY_SOFTPLUS),
        PLAIN("Softsign", UNARY_SOFTSIGN), PLAIN("HardSwish", UNARY_HARD_SWISH), PLAIN("Mish", UNARY_MISH),
        PLAIN("Not", UNARY_NOT),
        {"LeakyRelu", UNARY_LEAKY_RELU, "alpha", NULL, 0.01f, 0},
        {"Elu", UNARY_ELU, "alpha", NULL, 1.0f, 0},
        {"Selu", UNARY_SELU, "alpha", "gamma", 1.67326319217681884765625f, 1.05070102214813232421875f},
        {"Celu", UNARY_CELU, "alpha", NULL, 1.0f, 0},
        {"HardSigmoid", UNARY_HARD_SIGMOID, "alpha", "beta", 0.2f, 0.5f},
        {"ThresholdedRelu", UNARY_THRESHOLDED_RELU, "alpha", NULL, 1.0f, 0},
        {"Shrink", UNARY_SHRINK, "bias", "lambd", 0.0f, 0.5f},
    };
#undef PLAIN
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(map[i].name, c->op) != 0)
            continue;
        *op = map[i].op;
        *alpha = map[i].ka ? (float)ref_float(c, map[i].ka, map[i].da) : 0;
        *beta = map[i].kb ? (float)ref_float(c, map[i].kb, map[i].db) : 0;
        return true;
    }
    return false;
}

static int onnx_unary_ran;

static void onnx_unary(RefCase *c)
{
    UnaryOp op;
    float alpha, beta;
    if (!onnx_unary_op(c, &op, &alpha, &beta))
        return;
    const NpyArray *x = &c->in[0], *y = &c->out[0];
    CHECK_MSG(unary_supports(op, x->dtype), "%s: %s unsupported", c->name, rt_dtype_name(x->dtype));
    void *out = calloc(y->numel + 1, 8);
    unary_forward(op, x->dtype, out, x->data, x->numel, alpha, beta);
    ref_compare(c->name, out, y, 1e-6, 1e-5);
    free(out);
    onnx_unary_ran++;
}

static void onnx_clip(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    const void *lo = c->n_in > 1 && c->has_in[1] ? c->in[1].data : NULL;
    const void *hi = c->n_in > 2 && c->has_in[2] ? c->in[2].data : NULL;
    void *out = calloc(x->numel + 1, 8);
    clip_forward(x->dtype, out, x->data, x->numel, lo, hi);
    ref_compare(c->name, out, &c->out[0], 0, 0);
    free(out);
}

static void onnx_isnan_isinf(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    uint8_t *out = calloc(x->numel + 1, 1);
    if (strcmp(c->op, "IsNaN") == 0)
        isnan_forward(x->dtype, out, x->data, x->numel);
    else
        isinf_forward(x->dtype, out, x->data, x->numel, ref_int(c, "detect_negative", 1) != 0,
                      ref_int(c, "detect_positive", 1) != 0);
    ref_compare(c->name, out, &c->out[0], 0, 0);
    free(out);
}

static void test_onnx_cases(void)
{
    int n = ref_for_op("Cast", onnx_cast);
    CHECK_MSG(n >= 6, "only %d Cast cases", n);
    static const char *binary_ops[] = {"Mod", "BitShift", "Pow", "Div", "And", "Or", "Xor", "Equal", "Less",
                                       "Greater", "PRelu", "Min", "Max"};
    for (size_t i = 0; i < sizeof binary_ops / sizeof binary_ops[0]; i++)
        ref_for_op(binary_ops[i], onnx_binary);
    CHECK_MSG(onnx_binary_ran >= 40, "only %d binary ONNX cases ran", onnx_binary_ran);
    CHECK(ref_for_op("Where", onnx_where) == 2);
    CHECK(ref_for_op("Expand", onnx_expand) == 2);
    static const char *unary_ops[] = {"Abs", "Neg", "Sign", "Relu", "Reciprocal", "Floor", "Ceil", "Round", "Sqrt",
                                      "Exp", "Log", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
                                      "Asinh", "Acosh", "Atanh", "Sigmoid", "Tanh", "Softplus", "Softsign",
                                      "HardSwish", "Mish", "Not", "LeakyRelu", "Elu", "Selu", "Celu", "HardSigmoid",
                                      "ThresholdedRelu", "Shrink"};
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++)
        ref_for_op(unary_ops[i], onnx_unary);
    CHECK_MSG(onnx_unary_ran >= 40, "only %d unary ONNX cases ran", onnx_unary_ran);
    CHECK(ref_for_op("Clip", onnx_clip) >= 8);
    CHECK(ref_for_op("IsNaN", onnx_isnan_isinf) == 1);
    CHECK(ref_for_op("IsInf", onnx_isnan_isinf) == 3);
    printf("onnx: %d binary and %d unary cases\n", onnx_binary_ran, onnx_unary_ran);
}


/* ------------------------------------------------------------------------ exp_sub_f32 (kernels/erf.c) */

/* Softmax's exp(x - max) and the row's sum, in the build the environment asks for (erf_isa.cmake), against
 * double exp: lengths around the vector width (tails), logits down to -100 below the max (0 in float),
 * -inf (masked attention: 0), and in place. */
static void test_exp_sub_f32(void)
{
    static const size_t lens[] = {1, 7, 8, 9, 65, 100, 1031};
    static float x[1031], y[1031];
    double worst = 0;
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        size_t n = lens[t];
        float mx = 3.0f;
        for (size_t i = 0; i < n; i++)
            x[i] = i == n / 2 ? mx : mx - 100.0f * (float)((i * 7919u) % 1000u) / 1000.0f;
        if (n > 3)
            x[1] = -INFINITY;
        double sum = exp_sub_f32(y, x, mx, n), want_sum = 0;
        for (size_t i = 0; i < n; i++) {
            double want = exp((double)x[i] - mx);
            want_sum += want;
            double err = fabs(y[i] - want) / (want > 1e-30 ? want : 1.0);
            worst = err > worst ? err : worst;
            CHECK(y[i] >= 0.0f);
        }
        CHECK_NEAR(sum, want_sum, 1e-6 * want_sum);
        float z[9];
        memcpy(z, x, sizeof z);
        exp_sub_f32(z, z, mx, n < 9 ? n : 9);   /* y may be x */
        for (size_t i = 0; i < (n < 9 ? n : 9); i++)
            CHECK(z[i] == y[i]);
    }
    printf("exp_sub_f32: max rel error %.3g\n", worst);
    CHECK(worst < 4e-7);   /* ~2 ulp; the values below float's range are 0 and count by absolute error */
}

/* ------------------------------------------------------------------------ erf_f32 (kernels/erf.c) */

/* The build the environment asks for (tests/cmake/erf_isa.cmake) runs; against double erf over a dense
 * sweep of float bit patterns, a grid, and special values; then exact Gelu and its gradient built on it. */
static void test_erf_f32(void)
{
    const char *want_isa = getenv("ONNXTUNE_ERF_ISA");
    printf("erf_f32: %s build\n", erf_f32_isa());
    if (want_isa && strcmp(want_isa, "generic") == 0)
        CHECK(strcmp(erf_f32_isa(), "generic") == 0);
#if defined(__x86_64__)
    if (want_isa && strcmp(want_isa, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECK(strcmp(erf_f32_isa(), "avx2") == 0);
#endif
    enum { B = 4099 };   /* not a multiple of 8: the vector loop's tail runs too */
    static float x[B], y[B];
    double max_abs = 0, max_rel = 0, worst = 0;
    size_t fill = 0;
    /* every 97th float from 0 up to 6 (erf is 1 in float beyond 3.92), both signs, then a 1e-4 grid */
    uint32_t top = 0x40C00000u;
    for (uint64_t b = 0;; b += 97) {
        bool last = b > top;
        if (!last) {
            uint32_t bits = (uint32_t)b;
            float v;
            memcpy(&v, &bits, 4);
            x[fill++] = v;
            x[fill++] = -v;
        }
        if (fill >= B - 1 || (last && fill)) {
            erf_f32(y, x, fill);
            for (size_t i = 0; i < fill; i++) {
                double want = erf((double)x[i]), err = fabs(y[i] - want);
                if (err > max_abs)
                    max_abs = err, worst = x[i];
                if (fabs(x[i]) < 0.5 && fabs(x[i]) >= FLT_MIN && err / fabs(want) > max_rel)
                    max_rel = err / fabs(want);
                if (y[i] * (double)x[i] < 0)   /* the sign of erf is the sign of x */
                    CHECK_MSG(0, "erf_f32(%.9g) = %.9g", x[i], y[i]);
            }
            fill = 0;
        }
        if (last)
            break;
    }
    for (int i = 0; i < B; i++)
        x[i] = (float)(-7.0 + 14.0 * i / (B - 1));
    memcpy(y, x, sizeof x);
    erf_f32(y, y, B);   /* in place */
    for (int i = 0; i < B; i++)
        if (fabs(y[i] - erf((double)x[i])) > max_abs)
            max_abs = fabs(y[i] - erf((double)x[i])), worst = x[i];
    printf("erf_f32: max abs error %.3g (at %.9g), max rel error for normal |x| < 0.5 %.3g\n", max_abs, worst, max_rel);
    CHECK(max_abs <= 1.2e-7);
    CHECK(max_rel <= 3e-7);

    float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MAX, -FLT_MAX, FLT_MIN, -0x1p-149f, 3.92f, 4.0f, -4.0f,
                  0.5f, 1.0f, 3.5f};
    enum { NS = sizeof sp / sizeof sp[0] };
    float sy[NS];
    for (int rep = 0; rep < 2; rep++) {   /* the vector loop (first 8) and the scalar tail (the rest) */
        erf_f32(sy, sp, NS);
        for (int i = 0; i < NS; i++) {
            if (isnan(sp[i])) {
                CHECK_MSG(isnan(sy[i]), "erf_f32(nan) = %g", sy[i]);
                continue;
            }
            CHECK_MSG(fabs(sy[i] - erf((double)sp[i])) <= 1.2e-7 && signbit(sy[i]) == signbit(sp[i]),
                      "erf_f32(%.9g) = %.9g", sp[i], sy[i]);
        }
        float t = sp[0];   /* rotate so each value takes the other path next time */
        memmove(sp, sp + 1, (NS - 1) * sizeof(float));
        sp[NS - 1] = t;
    }

    /* exact Gelu and its gradient against double formulas */
    static float g[B], dy[B], dx[B];
    for (int i = 0; i < B; i++) {
        x[i] = (float)rnd_range(-8, 8);
        dy[i] = (float)rnd_range(-1, 1);
    }
    gelu_erf_f32(g, x, B);
    gelu_erf_backward_f32(dx, dy, x, B);
    double gerr = 0, derr = 0;
    for (int i = 0; i < B; i++) {
        double v = x[i], phi = 0.5 * (1 + erf(v / sqrt(2.0)));
        gerr = fmax(gerr, fabs(g[i] - v * phi) / fmax(1.0, fabs(v)));
        derr = fmax(derr, fabs(dx[i] - dy[i] * (phi + v * exp(-0.5 * v * v) / sqrt(2 * M_PI))));
    }
    /* Erf's gradient, with x out to where exp(-x^2) underflows, and NaN */
    for (int i = 0; i < B; i++)
        x[i] = (float)rnd_range(-10, 10);
    x[5] = NAN;
    x[B - 1] = NAN;   /* the scalar tail */
    erf_backward_f32(dx, dy, x, B);
    double eerr = 0;
    for (int i = 0; i < B; i++) {
        if (isnan(x[i])) {
            CHECK(isnan(dx[i]));
            continue;
        }
        double want = dy[i] * 2 / sqrt(M_PI) * exp(-(double)x[i] * x[i]);
        eerr = fmax(eerr, fabs(dx[i] - want) / fmax(fabs(want), 1e-30));
        /* against libm's expf of the same float argument: the vector exp itself within a few ulp */
        float same = dy[i] * (1.12837916709551257f * expf(-x[i] * x[i]));
        if (fabsf(same) > 1e-30f)
            CHECK_MSG(fabs(dx[i] - same) <= 6e-7 * fabs(same), "erf backward at %.9g: %.9g vs %.9g", x[i], dx[i],
                      same);
        if (fabs(want) < 1e-37)
            CHECK(fabs(dx[i]) <= 2e-37);
    }
    printf("erf backward: max relative error %.3g (normal results)\n", eerr);
    CHECK(eerr <= 1e-5);   /* exp(-x^2) of the float x^2: a rounding of x^2 is amplified by x^2 */
    printf("gelu: max error %.3g forward (relative beyond 1), %.3g backward\n", gerr, derr);
    CHECK(gerr <= 4e-7);
    CHECK(derr <= 4e-7);
}

int main(void)
{
    test_half_conversions();
    test_unary_float();
    test_unary_int();
    test_clip_isnan();
    test_binary_random();
    test_where_expand();
    test_cast_pairs();
    test_onnx_cases();
    test_erf_f32();
    test_exp_sub_f32();
    return test_summary("test_rt_elementwise");
}
