/* reduce.c - the Reduce* family over any set of axes, and ArgMax/ArgMin, forward.
 * Dims are first simplified (unit dims dropped, neighbours of the same kind merged); the common
 * [outer, reduced, inner] shape gets vectorisable loops, other masks a generic odometer walk.
 * Each output element is accumulated by one thread in a fixed order, in double (float or double
 * tensors; no long double for the latter). ArgMax/ArgMin are float only. */
#include "kernels.h"

#include <math.h>

enum { TILE = 64, MAX_RANK = 32 };

static double reduce_identity(ReduceKind kind)
{
    switch (kind) {
    case REDUCE_PROD: return 1.0;
    case REDUCE_MAX: return -INFINITY;
    case REDUCE_MIN: return INFINITY;
    default: return 0.0;
    }
}

/* The accumulation step; for LogSumExp `shift` is the maximum of the values. */
static inline double reduce_step(ReduceKind kind, double acc, double v, double shift)
{
    switch (kind) {
    case REDUCE_MAX: return v > acc ? v : acc;
    case REDUCE_MIN: return v < acc ? v : acc;
    case REDUCE_PROD: return acc * v;
    case REDUCE_L1: return acc + fabs(v);
    case REDUCE_L2:
    case REDUCE_SUM_SQUARE: return acc + v * v;
    case REDUCE_LOG_SUM_EXP: return acc + exp(v - shift);
    default: return acc + v;
    }
}

static double reduce_finish(ReduceKind kind, double acc, size_t count, double shift)
{
    switch (kind) {
    case REDUCE_MEAN: return count ? acc / (double)count : NAN;
    case REDUCE_L2: return sqrt(acc);
    case REDUCE_LOG_SUM: return log(acc);
    case REDUCE_LOG_SUM_EXP: return count ? shift + log(acc) : -INFINITY;
    default: return acc;
    }
}

/* LogSumExp subtracts the maximum; an infinite maximum is used as is (inf) or replaced by 0 (-inf). */
static double lse_shift(double mx)
{
    return isinf(mx) && mx < 0 ? 0.0 : mx;
}

/* Element i of x, a float or a double tensor. `f64` is a constant at every call site below, so the
 * compiler specialises each loop for one type. */
static inline double load(const void *x, bool f64, size_t i)
{
    return f64 ? ((const double *)x)[i] : (double)((const float *)x)[i];
}

static inline void store(void *y, bool f64, size_t i, double v)
{
    if (f64)
        ((double *)y)[i] = v;
    else
        ((float *)y)[i] = (float)v;
}

/* The loop body repeated per kind so that the kind switch sits outside the loop. */
#define FOR_EACH_KIND(kind, LOOP)                                                   \
    switch (kind) {                                                                 \
    case REDUCE_MAX: LOOP(a = v > a ? v : a); break;                                \
    case REDUCE_MIN: LOOP(a = v < a ? v : a); break;                                \
    case REDUCE_PROD: LOOP(a *= v); break;                                          \
    case REDUCE_L1: LOOP(a += fabs(v)); break;                                      \
    case REDUCE_L2: case REDUCE_SUM_SQUARE: LOOP(a += v * v); break;                \
    case REDUCE_LOG_SUM_EXP: LOOP(a += exp(v - sh)); break;                         \
    default: LOOP(a += v); break;                                                   \
    }

/* reduce(x[base .. base+len)), a contiguous row. */
static inline double reduce_row(ReduceKind kind, const void *x, bool f64, size_t base, size_t len)
{
    double a = reduce_identity(kind), sh = 0.0;
    if (kind == REDUCE_LOG_SUM_EXP) {
        double mx = -INFINITY;
        for (size_t i = 0; i < len; i++) {
            double v = load(x, f64, base + i);
            mx = v > mx ? v : mx;
        }
        sh = lse_shift(mx);
        if (isinf(sh))
            return sh;
    }
#define ROW_LOOP(BODY) for (size_t i = 0; i < len; i++) { double v = load(x, f64, base + i); BODY; }
    FOR_EACH_KIND(kind, ROW_LOOP)
#undef ROW_LOOP
    return reduce_finish(kind, a, len, sh);
}

/* y[ybase + j] = reduce over r of x[base + r*inner + j], for j < width <= TILE columns. */
static inline void reduce_tile(void *y, size_t ybase, ReduceKind kind, const void *x, bool f64, size_t base,
                               size_t len, size_t inner, size_t width)
{
    double acc[TILE], shift[TILE];
    for (size_t j = 0; j < width; j++) {
        acc[j] = reduce_identity(kind);
        shift[j] = -INFINITY;
    }
    if (kind == REDUCE_LOG_SUM_EXP) {
        for (size_t r = 0; r < len; r++)
            for (size_t j = 0; j < width; j++) {
                double v = load(x, f64, base + r * inner + j);
                shift[j] = v > shift[j] ? v : shift[j];
            }
        for (size_t j = 0; j < width; j++)
            shift[j] = lse_shift(shift[j]);
    }
#define TILE_LOOP(BODY) for (size_t r = 0; r < len; r++) for (size_t j = 0; j < width; j++) { \
        double v = load(x, f64, base + r * inner + j), sh = shift[j], a = acc[j]; (void)sh; BODY; acc[j] = a; }
    FOR_EACH_KIND(kind, TILE_LOOP)
#undef TILE_LOOP
    for (size_t j = 0; j < width; j++)
        store(y, f64, ybase + j, kind == REDUCE_LOG_SUM_EXP && isinf(shift[j]) && len ? shift[j]
                                 : reduce_finish(kind, acc[j], len, shift[j]));
}

/* Generic walk: the reduced dims of one output element, from offset `base`, by odometer. */
static inline double reduce_strided(ReduceKind kind, const void *x, bool f64, size_t base, size_t nred,
                                    const size_t *rdims, const size_t *rstrides, size_t count)
{
    double shift = 0.0;
    for (int pass = kind == REDUCE_LOG_SUM_EXP ? 0 : 1; pass < 2; pass++) {
        double acc = pass == 0 ? -INFINITY : reduce_identity(kind);
        size_t coord[MAX_RANK] = {0}, off = base;
        for (size_t i = 0; i < count; i++) {
            double v = load(x, f64, off);
            acc = pass == 0 ? (v > acc ? v : acc) : reduce_step(kind, acc, v, shift);
            for (size_t d = nred; d-- > 0;) {
                off += rstrides[d];
                if (++coord[d] < rdims[d])
                    break;
                off -= rstrides[d] * rdims[d];
                coord[d] = 0;
            }
        }
        if (pass == 0) {
            shift = lse_shift(acc);
            if (isinf(shift))
                return shift;
        } else {
            return reduce_finish(kind, acc, count, shift);
        }
    }
    return 0.0;
}

static inline void reduce_any(void *y, const void *x, bool f64, ReduceKind kind, size_t rank,
                              const size_t *dims, uint32_t axes_mask)
{
    /* Simplify: drop unit dims, merge runs of kept or reduced dims. */
    size_t sdims[MAX_RANK], count = 1, out_count = 1, nd = 0;
    bool sred[MAX_RANK];
    for (size_t i = 0; i < rank && i < MAX_RANK; i++) {
        bool red = (axes_mask >> i) & 1u;
        if (red)
            count *= dims[i];
        else
            out_count *= dims[i];
        if (dims[i] == 1)
            continue;
        if (nd > 0 && sred[nd - 1] == red) {
            sdims[nd - 1] *= dims[i];
        } else {
            sdims[nd] = dims[i];
            sred[nd] = red;
            nd++;
        }
    }
    if (out_count == 0)
        return;
    if (count == 0) {
        for (size_t t = 0; t < out_count; t++)
            store(y, f64, t, reduce_finish(kind, reduce_identity(kind), 0, 0.0));
        return;
    }

    /* [outer?, reduced, inner?]: outer and inner are products of kept dims. */
    size_t first_red = nd, nred_groups = 0;
    for (size_t i = 0; i < nd; i++)
        if (sred[i]) {
            nred_groups++;
            if (first_red == nd)
                first_red = i;
        }
    if (nred_groups <= 1) {
        size_t outer = 1, inner = 1;
        for (size_t i = 0; i < nd; i++) {
            if (i < first_red)
                outer *= sdims[i];
            else if (i > first_red)
                inner *= sdims[i];
        }
        if (inner == 1) {
            #pragma omp parallel for schedule(static) if (outer * count > 65536)
            for (size_t o = 0; o < outer; o++)
                store(y, f64, o, reduce_row(kind, x, f64, o * count, count));
        } else {
            size_t tiles = (inner + TILE - 1) / TILE;
            #pragma omp parallel for schedule(static) if (outer * count * inner > 65536)
            for (size_t t = 0; t < outer * tiles; t++) {
                size_t o = t / tiles, j0 = t % tiles * TILE;
                size_t width = inner - j0 < TILE ? inner - j0 : TILE;
                reduce_tile(y, o * inner + j0, kind, x, f64, o * count * inner + j0, count, inner, width);
            }
        }
        return;
    }

    /* Several reduced groups: strides of each simplified dim, split into kept and reduced. */
    size_t stride[MAX_RANK], kdims[MAX_RANK], kstrides[MAX_RANK], rdims[MAX_RANK], rstrides[MAX_RANK];
    size_t nk = 0, nr = 0, acc_stride = 1;
    for (size_t i = nd; i-- > 0;) {
        stride[i] = acc_stride;
        acc_stride *= sdims[i];
    }
    for (size_t i = 0; i < nd; i++) {
        if (sred[i]) {
            rdims[nr] = sdims[i];
            rstrides[nr++] = stride[i];
        } else {
            kdims[nk] = sdims[i];
            kstrides[nk++] = stride[i];
        }
    }
    #pragma omp parallel for schedule(static) if (out_count * count > 65536)
    for (size_t t = 0; t < out_count; t++) {
        size_t rest = t, base = 0;
        for (size_t d = nk; d-- > 0;) {
            base += rest % kdims[d] * kstrides[d];
            rest /= kdims[d];
        }
        store(y, f64, t, reduce_strided(kind, x, f64, base, nr, rdims, rstrides, count));
    }
}

void reduce_forward(float *y, const float *x, ReduceKind kind, size_t rank, const size_t *dims,
                    uint32_t axes_mask)
{
    reduce_any(y, x, false, kind, rank, dims, axes_mask);
}

void reduce_forward_f64(double *y, const double *x, ReduceKind kind, size_t rank, const size_t *dims,
                        uint32_t axes_mask)
{
    reduce_any(y, x, true, kind, rank, dims, axes_mask);
}

static void arg_extreme(int64_t *y, const float *x, size_t outer, size_t axis, size_t inner,
                        bool select_last_index, bool want_max)
{
    #pragma omp parallel for schedule(static) if (outer * axis * inner > 65536)
    for (size_t o = 0; o < outer; o++) {
        for (size_t j0 = 0; j0 < inner; j0 += TILE) {
            size_t width = inner - j0 < TILE ? inner - j0 : TILE;
            const float *xp = x + o * axis * inner + j0;
            float best[TILE];
            int64_t at[TILE];
            for (size_t j = 0; j < width; j++) {
                best[j] = axis ? xp[j] : 0.0f;
                at[j] = 0;
            }
            for (size_t a = 1; a < axis; a++)
                for (size_t j = 0; j < width; j++) {
                    float v = xp[a * inner + j];
                    bool better = want_max ? (select_last_index ? v >= best[j] : v > best[j])
                                           : (select_last_index ? v <= best[j] : v < best[j]);
                    if (better) {
                        best[j] = v;
                        at[j] = (int64_t)a;
                    }
                }
            for (size_t j = 0; j < width; j++)
                y[o * inner + j0 + j] = at[j];
        }
    }
}

void argmax_forward(int64_t *y, const float *x, size_t outer, size_t axis, size_t inner,
                    bool select_last_index)
{
    arg_extreme(y, x, outer, axis, inner, select_last_index, true);
}

void argmin_forward(int64_t *y, const float *x, size_t outer, size_t axis, size_t inner,
                    bool select_last_index)
{
    arg_extreme(y, x, outer, axis, inner, select_last_index, false);
}
