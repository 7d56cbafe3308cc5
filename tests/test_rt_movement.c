/* test_rt_movement.c - kernels/movement.c and resize.c against naive per-element references written
 * here (random shapes, every element size, negative steps and indices, reflect/edge/wrap pads and crops, ties in
 * TopK) and against the ONNX backend node cases exported by tests/ref/make_rt_ref.py. The ONNX cases
 * also show how codegen resolves each op's attributes into kernel arguments.
 */
#include "rt_ref.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(void *p, size_t nbytes)
{
    unsigned char *b = p;
    for (size_t i = 0; i < nbytes; i++)
        b[i] = (unsigned char)rnd();
}

static size_t numel_of(int rank, const size_t *dims)
{
    size_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= dims[d];
    return n;
}

static void unravel(int rank, const size_t *dims, size_t i, size_t *idx)
{
    for (int d = rank - 1; d >= 0; d--) {
        idx[d] = i % dims[d];
        i /= dims[d];
    }
}

static size_t ravel(int rank, const size_t *dims, const size_t *idx)
{
    size_t o = 0;
    for (int d = 0; d < rank; d++)
        o = o * dims[d] + idx[d];
    return o;
}

static int norm_axis(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

/* outer = prod(dims[:axis]), inner = prod(dims[axis+1:]). */
static void split_at(int rank, const size_t *dims, int axis, size_t *outer, size_t *inner)
{
    *outer = numel_of(axis, dims);
    *inner = numel_of(rank - axis - 1, dims + axis + 1);
}

static const size_t ELSIZES[] = {1, 2, 4, 8, 3};

/* A zeroed buffer the size of a reference output. */
static void *out_like(const NpyArray *a) { return calloc(a->nbytes + 16, 1); }

/* ------------------------------------------------------------------------ Transpose */

static void ref_transpose(size_t es, char *y, const char *x, int rank, const size_t *xdims, const int *perm)
{
    size_t ydims[8], yi[8], xi[8];
    for (int d = 0; d < rank; d++)
        ydims[d] = xdims[perm[d]];
    size_t n = numel_of(rank, xdims);
    for (size_t i = 0; i < n; i++) {
        unravel(rank, ydims, i, yi);
        for (int d = 0; d < rank; d++)
            xi[perm[d]] = yi[d];
        memcpy(y + i * es, x + ravel(rank, xdims, xi) * es, es);
    }
}

static void random_perm(int rank, int *perm)
{
    for (int d = 0; d < rank; d++)
        perm[d] = d;
    for (int d = rank - 1; d > 0; d--) {
        int j = (int)(rnd() % (uint64_t)(d + 1)), t = perm[d];
        perm[d] = perm[j];
        perm[j] = t;
    }
}

static bool check_transpose(size_t es, int rank, const size_t *dims, const int *perm)
{
    size_t n = numel_of(rank, dims);
    char *x = calloc(n * es + 1, 1), *y = malloc(n * es + 1), *w = malloc(n * es + 1);
    fill_random(x, n * es);
    transpose_forward(es, y, x, rank, dims, perm);
    ref_transpose(es, w, x, rank, dims, perm);
    bool ok = memcmp(y, w, n * es) == 0;
    free(x);
    free(y);
    free(w);
    return ok;
}

static void test_transpose(void)
{
    for (int rep = 0; rep < 400; rep++) {
        int rank = 1 + (int)(rnd() % 6), perm[8];
        size_t dims[8], es = ELSIZES[rep % 5];
        for (int d = 0; d < rank; d++)
            dims[d] = 1 + rnd() % (rep % 7 == 0 && rank <= 3 ? 40 : 5);
        random_perm(rank, perm);
        CHECK_MSG(check_transpose(es, rank, dims, perm), "transpose rep %d rank %d elsize %zu", rep, rank, es);
    }
    /* The big ones take the parallel and tiled paths: NCHW <-> NHWC, a 2-D matrix, and rank 8. */
    size_t nchw[4] = {4, 64, 31, 33};
    CHECK(check_transpose(4, 4, nchw, (int[]){0, 2, 3, 1}));
    CHECK(check_transpose(4, 4, nchw, (int[]){0, 3, 1, 2}));
    CHECK(check_transpose(2, 2, (size_t[]){517, 389}, (int[]){1, 0}));
    CHECK(check_transpose(8, 8, (size_t[]){2, 3, 2, 3, 2, 3, 2, 3}, (int[]){7, 0, 6, 1, 5, 2, 4, 3}));
    CHECK(check_transpose(4, 3, (size_t[]){70, 80, 90}, (int[]){0, 1, 2}));
    CHECK(check_transpose(4, 0, NULL, NULL));
}

/* ------------------------------------------------------------------------ Slice */

/* ONNX Slice-13 resolution of (start, end, step) for one axis of size dim: the clamping codegen does. */
static void resolve_slice(int64_t start, int64_t end, int64_t step, size_t dim, int64_t *s, size_t *count)
{
    int64_t n = (int64_t)dim;
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    if (step > 0) {
        start = start < 0 ? 0 : start > n ? n : start;
        end = end < 0 ? 0 : end > n ? n : end;
        *count = end > start ? (size_t)((end - start + step - 1) / step) : 0;
    } else {
        start = start < 0 ? 0 : start > n - 1 ? n - 1 : start;
        end = end < -1 ? -1 : end > n - 1 ? n - 1 : end;
        *count = start > end ? (size_t)((start - end + (-step) - 1) / (-step)) : 0;
    }
    *s = start;
}

static void test_slice_random(void)
{
    for (int rep = 0; rep < 400; rep++) {
        int rank = 1 + (int)(rnd() % 5);
        size_t es = ELSIZES[rep % 5], xdims[8], ydims[8], yi[8], xi[8];
        int64_t starts[8], steps[8];
        for (int d = 0; d < rank; d++) {
            xdims[d] = 1 + rnd() % 7;
            int64_t st = (int64_t)(rnd() % 7) - 3;
            if (st == 0 || rnd() % 3 == 0)
                st = 1;
            int64_t a = (int64_t)(rnd() % 12) - 6, b = (int64_t)(rnd() % 12) - 6;
            if (rnd() % 4 == 0)
                b = st > 0 ? INT64_MAX : INT64_MIN;
            resolve_slice(a, b, st, xdims[d], &starts[d], &ydims[d]);
            steps[d] = st;
        }
        size_t nx = numel_of(rank, xdims), ny = numel_of(rank, ydims);
        char *x = malloc(nx * es + 1), *y = malloc(ny * es + 1);
        fill_random(x, nx * es);
        slice_forward(es, y, x, rank, xdims, starts, steps, ydims);
        int bad = 0;
        for (size_t i = 0; i < ny; i++) {
            unravel(rank, ydims, i, yi);
            for (int d = 0; d < rank; d++)
                xi[d] = (size_t)(starts[d] + (int64_t)yi[d] * steps[d]);
            bad += memcmp(y + i * es, x + ravel(rank, xdims, xi) * es, es) != 0;
        }
        CHECK_MSG(bad == 0, "slice rep %d: %d differ", rep, bad);
        free(x);
        free(y);
    }
}

/* ------------------------------------------------------------------------ Pad, Tile */

/* Reflect by bouncing off the ends, one step at a time (NumPy's 'reflect'). */
static bool ref_pad_source(int64_t o, int64_t n, PadMode mode, int64_t *src)
{
    if (o >= 0 && o < n) {
        *src = o;
        return true;
    }
    if (mode == PAD_CONSTANT)
        return false;
    if (mode == PAD_EDGE)
        *src = o < 0 ? 0 : n - 1;
    else if (mode == PAD_WRAP)
        *src = ((o % n) + n) % n;
    else if (n == 1)
        *src = 0;
    else {
        while (o < 0 || o >= n)
            o = o < 0 ? -o : 2 * (n - 1) - o;
        *src = o;
    }
    return true;
}

static void test_pad_random(void)
{
    for (int rep = 0; rep < 600; rep++) {
        int rank = (int)(rnd() % 5);
        size_t es = ELSIZES[rep % 5], xdims[8], ydims[8], yi[8], xi[8];
        int64_t pb[8], pe[8];
        PadMode mode = (PadMode)(rep % 4);
        for (int d = 0; d < rank; d++) {
            xdims[d] = 1 + rnd() % 5;
            int64_t lim = (int64_t)xdims[d];
            pb[d] = (int64_t)(rnd() % (uint64_t)(2 * lim + 3)) - lim;
            pe[d] = (int64_t)(rnd() % (uint64_t)(2 * lim + 3)) - lim;
            if (mode != PAD_CONSTANT && rnd() % 3 == 0)
                pb[d] = 3 * lim + 1;                      /* wider than the dim */
            if (pb[d] + pe[d] + lim < 0)
                pe[d] = -pb[d] - lim;
            ydims[d] = (size_t)(lim + pb[d] + pe[d]);
        }
        size_t nx = numel_of(rank, xdims), ny = numel_of(rank, ydims);
        char *x = malloc(nx * es + 1), *y = malloc(ny * es + 1), value[8];
        fill_random(x, nx * es);
        fill_random(value, sizeof value);
        pad_forward(es, y, ydims, x, xdims, rank, pb, mode, rep % 10 == 0 ? NULL : value);
        int bad = 0;
        char zero[8] = {0};
        for (size_t i = 0; i < ny; i++) {
            unravel(rank, ydims, i, yi);
            bool in = true;
            for (int d = 0; d < rank; d++) {
                int64_t s = 0;
                in = in && ref_pad_source((int64_t)yi[d] - pb[d], (int64_t)xdims[d], mode, &s);
                xi[d] = (size_t)s;
            }
            const char *want = in ? x + ravel(rank, xdims, xi) * es : rep % 10 == 0 ? zero : value;
            bad += memcmp(y + i * es, want, es) != 0;
        }
        CHECK_MSG(bad == 0, "pad rep %d mode %d rank %d: %d differ", rep, mode, rank, bad);
        free(x);
        free(y);
    }
}

static void test_tile_random(void)
{
    for (int rep = 0; rep < 200; rep++) {
        int rank = (int)(rnd() % 5);
        size_t es = ELSIZES[rep % 5], xdims[8], rep_[8], ydims[8], yi[8], xi[8];
        for (int d = 0; d < rank; d++) {
            xdims[d] = 1 + rnd() % 4;
            rep_[d] = rnd() % 4;
            if (rnd() % 4)
                rep_[d] += 1;
            ydims[d] = xdims[d] * rep_[d];
        }
        size_t nx = numel_of(rank, xdims), ny = numel_of(rank, ydims);
        char *x = malloc(nx * es + 1), *y = malloc(ny * es + 1);
        fill_random(x, nx * es);
        tile_forward(es, y, x, xdims, rank, rep_);
        int bad = 0;
        for (size_t i = 0; i < ny; i++) {
            unravel(rank, ydims, i, yi);
            for (int d = 0; d < rank; d++)
                xi[d] = yi[d] % xdims[d];
            bad += memcmp(y + i * es, x + ravel(rank, xdims, xi) * es, es) != 0;
        }
        CHECK_MSG(bad == 0, "tile rep %d: %d differ", rep, bad);
        free(x);
        free(y);
    }
}

/* ------------------------------------------------------------------------ Gather / Scatter */

static void test_gather_scatter_random(void)
{
    for (int rep = 0; rep < 300; rep++) {
        int rank = 1 + (int)(rnd() % 4), axis = (int)(rnd() % (uint64_t)rank);
        size_t xdims[8], idims[8], xi[8], ii[8], es = ELSIZES[rep % 4];
        for (int d = 0; d < rank; d++) {
            xdims[d] = 1 + rnd() % 5;
            idims[d] = d == axis ? 1 + rnd() % 6 : 1 + rnd() % xdims[d];
        }
        size_t nx = numel_of(rank, xdims), ni = numel_of(rank, idims);
        size_t outer, inner;
        split_at(rank, xdims, axis, &outer, &inner);
        char *x = malloc(nx * es), *y = malloc((outer * ni * inner + ni) * es), *u = malloc(ni * es);
        int64_t *ind = malloc(ni * 8);
        int32_t *ind32 = malloc(ni * 4);
        fill_random(x, nx * es);
        fill_random(u, ni * es);
        int64_t dim = (int64_t)xdims[axis];
        for (size_t i = 0; i < ni; i++) {
            ind[i] = (int64_t)(rnd() % (uint64_t)(2 * dim)) - dim;   /* negative ones too */
            ind32[i] = (int32_t)ind[i];
        }
        /* Gather along axis with the indices flattened. */
        gather_forward(es, y, x, outer, xdims[axis], inner, RT_INT32, ind32, ni);
        int bad = 0;
        for (size_t o = 0; o < outer; o++)
            for (size_t j = 0; j < ni; j++) {
                size_t k = (size_t)(ind[j] < 0 ? ind[j] + dim : ind[j]);
                bad += memcmp(y + ((o * ni + j) * inner) * es, x + ((o * (size_t)dim + k) * inner) * es, inner * es) != 0;
            }
        CHECK_MSG(bad == 0, "gather rep %d: %d differ", rep, bad);

        /* GatherElements. */
        gather_elements_forward(es, y, x, xdims, rank, axis, RT_INT64, ind, idims);
        bad = 0;
        for (size_t i = 0; i < ni; i++) {
            unravel(rank, idims, i, ii);
            memcpy(xi, ii, sizeof xi);
            xi[axis] = (size_t)(ind[i] < 0 ? ind[i] + dim : ind[i]);
            bad += memcmp(y + i * es, x + ravel(rank, xdims, xi) * es, es) != 0;
        }
        CHECK_MSG(bad == 0, "gather_elements rep %d: %d differ", rep, bad);

        /* ScatterElements with every reduction, on int32 data (the reference applies in order). */
        if (es == 4) {
            for (int red = SCATTER_NONE; red <= SCATTER_MIN; red++) {
                int32_t *want = malloc(nx * 4), *got = malloc(nx * 4);
                memcpy(want, x, nx * 4);
                for (size_t i = 0; i < ni; i++) {
                    unravel(rank, idims, i, ii);
                    memcpy(xi, ii, sizeof xi);
                    xi[axis] = (size_t)(ind[i] < 0 ? ind[i] + dim : ind[i]);
                    int32_t *d = &want[ravel(rank, xdims, xi)], s = ((int32_t *)u)[i];
                    switch (red) {
                    case SCATTER_ADD: *d = (int32_t)((uint32_t)*d + (uint32_t)s); break;
                    case SCATTER_MUL: *d = (int32_t)((uint32_t)*d * (uint32_t)s); break;
                    case SCATTER_MAX: *d = s > *d ? s : *d; break;
                    case SCATTER_MIN: *d = s < *d ? s : *d; break;
                    default: *d = s;
                    }
                }
                scatter_elements_forward(RT_INT32, got, x, xdims, rank, axis, RT_INT64, ind, u, idims, red);
                CHECK_MSG(memcmp(got, want, nx * 4) == 0, "scatter_elements rep %d reduction %d", rep, red);
                memcpy(got, x, nx * 4);   /* in place */
                scatter_elements_forward(RT_INT32, got, got, xdims, rank, axis, RT_INT64, ind, u, idims, red);
                CHECK_MSG(memcmp(got, want, nx * 4) == 0, "scatter_elements in place rep %d reduction %d", rep, red);
                free(want);
                free(got);
            }
        }
        free(x);
        free(y);
        free(u);
        free(ind);
        free(ind32);
    }
}

/* ------------------------------------------------------------------------ TopK */

static void test_topk_random(void)
{
    for (int rep = 0; rep < 300; rep++) {
        size_t outer = 1 + rnd() % 3, axis = 1 + rnd() % 40, inner = 1 + rnd() % 3, k = 1 + rnd() % axis;
        bool largest = rep % 2 == 0;
        size_t n = outer * axis * inner;
        float *x = malloc(n * 4), *v = malloc(outer * k * inner * 4);
        int64_t *ix = malloc(outer * k * inner * 8), *work = malloc(topk_workspace(axis));
        for (size_t i = 0; i < n; i++)
            x[i] = rnd() % 17 == 0 ? NAN : (float)(rnd() % 9);   /* many ties */
        topk_forward(RT_FLOAT, v, ix, x, outer, axis, inner, k, largest, work);
        /* Reference: repeated selection of the best remaining element; NaN ranks largest. */
        int bad = 0;
        bool *used = malloc(axis);
        for (size_t o = 0; o < outer; o++)
            for (size_t in = 0; in < inner; in++) {
                memset(used, 0, axis);
                for (size_t r = 0; r < k; r++) {
                    size_t best = SIZE_MAX;
                    for (size_t a = 0; a < axis; a++) {
                        if (used[a])
                            continue;
                        if (best == SIZE_MAX) {
                            best = a;
                            continue;
                        }
                        float va = x[(o * axis + a) * inner + in], vb = x[(o * axis + best) * inner + in];
                        bool better = isnan(va) || isnan(vb) ? (largest ? isnan(va) && !isnan(vb) : !isnan(va) && isnan(vb))
                                                             : (largest ? va > vb : va < vb);
                        if (better)
                            best = a;
                    }
                    used[best] = true;
                    size_t at = (o * k + r) * inner + in;
                    float want = x[(o * axis + best) * inner + in];
                    bad += ix[at] != (int64_t)best || !(v[at] == want || (isnan(v[at]) && isnan(want)));
                }
            }
        CHECK_MSG(bad == 0, "topk rep %d (%zu,%zu,%zu) k=%zu largest=%d: %d differ", rep, outer, axis, inner, k,
                  largest, bad);
        free(used);
        free(x);
        free(v);
        free(ix);
        free(work);
    }
    int64_t xi[6] = {5, INT64_MAX, -3, INT64_MIN, 5, 0}, vi[3], ii[3], work[6];
    topk_forward(RT_INT64, vi, ii, xi, 1, 6, 1, 3, true, work);
    CHECK(vi[0] == INT64_MAX && vi[1] == 5 && vi[2] == 5 && ii[0] == 1 && ii[1] == 0 && ii[2] == 4);
}

/* ------------------------------------------------------------------------ the rest, random */

static void test_misc_random(void)
{
    /* Concat then Split gives the inputs back; Concat against a per-element reference. */
    for (int rep = 0; rep < 100; rep++) {
        size_t es = ELSIZES[rep % 5], outer = 1 + rnd() % 4, inner = 1 + rnd() % 4, ax[4], tot = 0;
        int n = 1 + (int)(rnd() % 4);
        const void *xs[4];
        void *outs[4];
        for (int k = 0; k < n; k++) {
            ax[k] = rnd() % 4;
            tot += ax[k];
            void *p = malloc(outer * ax[k] * inner * es + 1);
            fill_random(p, outer * ax[k] * inner * es);
            xs[k] = p;
            outs[k] = malloc(outer * ax[k] * inner * es + 1);
        }
        char *y = malloc(outer * tot * inner * es + 1);
        concat_forward(es, y, n, xs, ax, outer, inner);
        int bad = 0;
        for (size_t o = 0; o < outer; o++) {
            size_t a0 = 0;
            for (int k = 0; k < n; k++) {
                for (size_t a = 0; a < ax[k]; a++)
                    for (size_t i = 0; i < inner; i++)
                        bad += memcmp(y + ((o * tot + a0 + a) * inner + i) * es,
                                      (const char *)xs[k] + ((o * ax[k] + a) * inner + i) * es, es) != 0;
                a0 += ax[k];
            }
        }
        split_forward(es, outs, n, ax, y, outer, inner);
        for (int k = 0; k < n; k++) {
            bad += memcmp(outs[k], xs[k], outer * ax[k] * inner * es) != 0;
            free((void *)xs[k]);
            free(outs[k]);
        }
        CHECK_MSG(bad == 0, "concat/split rep %d: %d differ", rep, bad);
        free(y);
    }

    /* Trilu, in place and not, against j - i compared with k. */
    for (int rep = 0; rep < 100; rep++) {
        size_t b = 1 + rnd() % 3, r = 1 + rnd() % 6, c = 1 + rnd() % 6;
        int64_t k = (int64_t)(rnd() % 15) - 7;
        bool upper = rep % 2;
        float *x = malloc(b * r * c * 4), *y = malloc(b * r * c * 4);
        for (size_t i = 0; i < b * r * c; i++)
            x[i] = (float)(i + 1);
        trilu_forward(4, y, x, b, r, c, k, upper);
        int bad = 0;
        for (size_t t = 0; t < b; t++)
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < c; j++) {
                    size_t at = (t * r + i) * c + j;
                    int64_t diff = (int64_t)j - (int64_t)i;
                    bool keep = upper ? diff >= k : diff <= k;
                    bad += y[at] != (keep ? x[at] : 0);
                }
        trilu_forward(4, x, x, b, r, c, k, upper);
        bad += memcmp(x, y, b * r * c * 4) != 0;
        CHECK_MSG(bad == 0, "trilu rep %d: %d differ", rep, bad);
        free(x);
        free(y);
    }

    /* CumSum in int64 (wrapping) and float, all four direction/exclusive combinations. */
    for (int rep = 0; rep < 40; rep++) {
        size_t outer = 1 + rnd() % 3, axis = 1 + rnd() % 6, inner = 1 + rnd() % 3, n = outer * axis * inner;
        bool excl = rep & 1, rev = (rep >> 1) & 1;
        int64_t *x = malloc(n * 8), *y = malloc(n * 8);
        for (size_t i = 0; i < n; i++)
            x[i] = (int64_t)(rnd() >> 1) * (rnd() % 2 ? 1 : -1);
        cumsum_forward(RT_INT64, y, x, outer, axis, inner, excl, rev);
        int bad = 0;
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++)
                for (size_t a = 0; a < axis; a++) {
                    uint64_t s = 0;
                    for (size_t b = 0; b < axis; b++) {
                        bool take = rev ? (excl ? b > a : b >= a) : (excl ? b < a : b <= a);
                        if (take)
                            s += (uint64_t)x[(o * axis + b) * inner + i];
                    }
                    bad += y[(o * axis + a) * inner + i] != (int64_t)s;
                }
        CHECK_MSG(bad == 0, "cumsum rep %d: %d differ", rep, bad);
        free(x);
        free(y);
    }

    /* GatherND / ScatterND with batch dims and negative indices. */
    for (int rep = 0; rep < 100; rep++) {
        size_t batch = 1 + rnd() % 3, nt = 1 + rnd() % 5, slice = 1 + rnd() % 4, idims[3];
        int k = 1 + (int)(rnd() % 3);
        for (int j = 0; j < k; j++)
            idims[j] = 1 + rnd() % 4;
        size_t per = numel_of(k, idims) * slice;
        float *x = malloc(batch * per * 4), *y = malloc(batch * nt * slice * 4);
        int64_t *ind = malloc(batch * nt * (size_t)k * 8);
        for (size_t i = 0; i < batch * per; i++)
            x[i] = (float)i;
        for (size_t i = 0; i < batch * nt * (size_t)k; i++) {
            int64_t d = (int64_t)idims[i % (size_t)k];
            ind[i] = (int64_t)(rnd() % (uint64_t)(2 * d)) - d;
        }
        gather_nd_forward(4, y, x, batch, k, idims, slice, RT_INT64, ind, nt);
        int bad = 0;
        for (size_t b = 0; b < batch; b++)
            for (size_t t = 0; t < nt; t++) {
                size_t off = 0;
                for (int j = 0; j < k; j++) {
                    int64_t v = ind[(b * nt + t) * (size_t)k + (size_t)j];
                    off = off * idims[j] + (size_t)(v < 0 ? v + (int64_t)idims[j] : v);
                }
                bad += memcmp(y + (b * nt + t) * slice, x + b * per + off * slice, slice * 4) != 0;
            }
        CHECK_MSG(bad == 0, "gather_nd rep %d: %d differ", rep, bad);
        /* ScatterND (no batch): add every update to its slice, duplicates accumulate. */
        float *want = malloc(per * 4), *got = malloc(per * 4), *upd = malloc(nt * slice * 4);
        for (size_t i = 0; i < nt * slice; i++)
            upd[i] = (float)(rnd() % 5);
        memcpy(want, x, per * 4);
        for (size_t t = 0; t < nt; t++) {
            size_t off = 0;
            for (int j = 0; j < k; j++) {
                int64_t v = ind[t * (size_t)k + (size_t)j];
                off = off * idims[j] + (size_t)(v < 0 ? v + (int64_t)idims[j] : v);
            }
            for (size_t s = 0; s < slice; s++)
                want[off * slice + s] += upd[t * slice + s];
        }
        scatter_nd_forward(RT_FLOAT, got, x, k, idims, slice, RT_INT64, ind, upd, nt, SCATTER_ADD);
        CHECK_MSG(memcmp(got, want, per * 4) == 0, "scatter_nd rep %d", rep);
        free(want);
        free(got);
        free(upd);
        free(x);
        free(y);
        free(ind);
    }

    /* Out-of-range indices read as zero and are skipped when scattering. */
    float x[4] = {1, 2, 3, 4}, y[4];
    int64_t bad_idx[2] = {7, -9};
    gather_forward(4, y, x, 1, 4, 1, RT_INT64, bad_idx, 2);
    CHECK(y[0] == 0 && y[1] == 0);
    scatter_elements_forward(RT_FLOAT, y, x, (size_t[]){4}, 1, 0, RT_INT64, bad_idx, x, (size_t[]){2}, SCATTER_NONE);
    CHECK(memcmp(y, x, 16) == 0);
}

/* ------------------------------------------------------------------------ Resize */

/* The ONNX reference implementation (onnx/backend/test/case/node/resize.py), transcribed literally:
 * 1-D interpolation over an edge-padded copy, neighbours chosen by (distance, index), recursion over
 * the axes. One deliberate difference: pytorch_half_pixel with an output length of 1 samples 0 as the
 * spec says (the reference script uses -0.5). */
static int ref_coeffs(const ResizeParams *p, double ratio, bool integer, double *c)
{
    if (p->mode == RESIZE_NEAREST) {
        if (integer) {
            c[0] = 0, c[1] = 1;
        } else {
            switch (p->nearest) {
            case RESIZE_ROUND_PREFER_FLOOR: c[0] = ratio <= 0.5, c[1] = ratio > 0.5; break;
            case RESIZE_ROUND_PREFER_CEIL: c[0] = ratio < 0.5, c[1] = ratio >= 0.5; break;
            case RESIZE_FLOOR: c[0] = 1, c[1] = 0; break;
            case RESIZE_CEIL: c[0] = 0, c[1] = 1; break;
            }
        }
        return 2;
    }
    if (p->mode == RESIZE_LINEAR) {
        c[0] = 1 - ratio, c[1] = ratio;
        return 2;
    }
    double A = p->cubic_coeff_a;
    c[0] = ((A * (ratio + 1) - 5 * A) * (ratio + 1) + 8 * A) * (ratio + 1) - 4 * A;
    c[1] = ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1;
    c[2] = ((A + 2) * (1 - ratio) - (A + 3)) * (1 - ratio) * (1 - ratio) + 1;
    c[3] = ((A * ((1 - ratio) + 1) - 5 * A) * ((1 - ratio) + 1) + 8 * A) * ((1 - ratio) + 1) - 4 * A;
    return 4;
}

static double ref_interp_1d(const double *data, size_t len, double scale, size_t xo, size_t out_int,
                            const ResizeParams *p, double roi0, double roi1)
{
    double x = (double)xo, in = (double)len, out = scale * in, xori = 0;
    switch (p->coord) {
    case RESIZE_ALIGN_CORNERS: xori = out == 1 ? 0 : x * (in - 1) / (out - 1); break;
    case RESIZE_ASYMMETRIC: xori = x / scale; break;
    case RESIZE_TF_CROP_AND_RESIZE:
        xori = out == 1 ? (roi1 - roi0) * (in - 1) / 2 : x * (roi1 - roi0) * (in - 1) / (out - 1);
        xori += roi0 * (in - 1);
        if (xori < 0 || xori > in - 1)
            return p->extrapolation_value;
        break;
    case RESIZE_PYTORCH_HALF_PIXEL: xori = out == 1 ? 0 : (x + 0.5) / scale - 0.5; break;
    case RESIZE_TF_HALF_PIXEL_FOR_NN: xori = (x + 0.5) / scale; break;
    case RESIZE_HALF_PIXEL_SYMMETRIC: {      /* Resize-19 */
        double adjustment = (double)out_int / out, center = in / 2, offset = center * (1 - adjustment);
        xori = offset + (x + 0.5) / scale - 0.5;
        break;
    }
    default: xori = (x + 0.5) / scale - 0.5; break;
    }
    double fl = floor(xori), c[4];
    bool integer = xori == fl;
    int n = ref_coeffs(p, integer ? 1 : xori - fl, integer, c);
    /* Edge-pad by ceil(n/2), then the n indices of the padded array nearest to x (ties: lower). */
    int pad = (n + 1) / 2;
    int64_t limit = (int64_t)len + 2 * pad, chosen[4];
    double xp = xori + pad;
    bool used[64] = {0};
    for (int k = 0; k < n; k++) {
        int64_t best = -1;
        for (int64_t i = 0; i < limit; i++) {
            if (used[i])
                continue;
            if (best < 0 || fabs(xp - (double)i) < fabs(xp - (double)best))
                best = i;
        }
        used[best] = true;
    }
    int m = 0;
    for (int64_t i = 0; i < limit; i++)
        if (used[i])
            chosen[m++] = i;
    double points[4], sum = 0;
    for (int k = 0; k < n; k++) {
        int64_t src = chosen[k] - pad;
        points[k] = data[src < 0 ? 0 : src >= (int64_t)len ? (int64_t)len - 1 : src];
        if (p->exclude_outside && (src < 0 || src >= (int64_t)len))
            c[k] = 0;
        sum += c[k];
    }
    double r = 0;
    for (int k = 0; k < n; k++)
        r += (p->exclude_outside ? c[k] / sum : c[k]) * points[k];
    return r;
}

/* data: dims[n] (C order), one output coordinate xo[n]; roi holds [starts..., ends...] of these n axes. */
static double ref_interp_nd(const double *data, int n, const size_t *dims, const size_t *ydims, const double *scales,
                            const size_t *xo, const ResizeParams *p, const double *roi)
{
    double roi0 = roi ? roi[0] : 0, roi1 = roi ? roi[n] : 1;
    if (n == 1)
        return ref_interp_1d(data, dims[0], scales[0], xo[0], ydims[0], p, roi0, roi1);
    size_t sub = numel_of(n - 1, dims + 1);
    double r[64], subroi[2 * RT_MAX_RANK];
    for (int k = 0; roi && k < n - 1; k++) {
        subroi[k] = roi[1 + k];
        subroi[n - 1 + k] = roi[n + 1 + k];
    }
    for (size_t i = 0; i < dims[0]; i++)
        r[i] = ref_interp_nd(data + i * sub, n - 1, dims + 1, ydims + 1, scales + 1, xo + 1, p, roi ? subroi : NULL);
    return ref_interp_1d(r, dims[0], scales[0], xo[0], ydims[0], p, roi0, roi1);
}

static int resize_compare(const char *what, const float *got, const size_t *ydims, int rank, const float *x,
                          const size_t *xdims, const double *scales, const ResizeParams *p)
{
    size_t ny = numel_of(rank, ydims), nx = numel_of(rank, xdims), yi[8];
    double *xd = malloc(nx * sizeof *xd), roi[2 * RT_MAX_RANK];
    for (size_t i = 0; i < nx; i++)
        xd[i] = x[i];
    for (int d = 0; p->roi && d < 2 * rank; d++)
        roi[d] = p->roi[d];
    int bad = 0;
    for (size_t i = 0; i < ny; i++) {
        unravel(rank, ydims, i, yi);
        double w = ref_interp_nd(xd, rank, xdims, ydims, scales, yi, p, p->roi ? roi : NULL);
        if (!(fabs(got[i] - w) <= 1e-5 + 1e-5 * fabs(w))) {
            if (!bad)
                fprintf(stderr, "%s: y[%zu] = %.9g, reference %.9g\n", what, i, got[i], w);
            bad++;
        }
    }
    free(xd);
    return bad;
}

static void test_resize_random(void)
{
    static const ResizeCoord coords[] = {RESIZE_HALF_PIXEL, RESIZE_PYTORCH_HALF_PIXEL, RESIZE_ALIGN_CORNERS,
                                         RESIZE_ASYMMETRIC, RESIZE_TF_HALF_PIXEL_FOR_NN, RESIZE_TF_CROP_AND_RESIZE,
                                         RESIZE_HALF_PIXEL_SYMMETRIC};
    int cases = 0;
    for (int rep = 0; rep < 1750; rep++) {
        ResizeParams p = {0};
        p.mode = (ResizeMode)(rep % 3);
        p.coord = coords[(rep / 3) % 7];
        p.nearest = (ResizeNearestMode)(rnd() % 4);
        p.cubic_coeff_a = rnd() % 2 ? -0.75f : -0.5f;
        p.exclude_outside = p.mode != RESIZE_NEAREST && rnd() % 3 == 0;   /* nearest ignores it */
        p.extrapolation_value = 7.5f;
        int rank = 1 + (int)(rnd() % 3);
        size_t xdims[4], ydims[4];
        double scales[4];
        float roi[8];
        for (int d = 0; d < rank; d++) {
            xdims[d] = 1 + rnd() % 5;
            if (rnd() % 2) {                 /* sizes given: scale = out / in */
                ydims[d] = 1 + rnd() % 8;
                scales[d] = (double)ydims[d] / (double)xdims[d];
            } else {                         /* float32 scales: out = floor(in * scale) */
                static const float sc[] = {0.5f, 0.6f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 0.8f};
                float f = sc[rnd() % 8];
                scales[d] = f;
                ydims[d] = (size_t)floor(scales[d] * (double)xdims[d]);
                if (ydims[d] == 0) {
                    ydims[d] = 1;
                    scales[d] = 1.0 / (double)xdims[d];
                }
            }
            roi[d] = (float)(rnd() % 5) * 0.1f - 0.1f;
            roi[rank + d] = roi[d] + 0.2f + (float)(rnd() % 8) * 0.15f;
        }
        p.roi = p.coord == RESIZE_TF_CROP_AND_RESIZE ? roi : NULL;
        size_t nx = numel_of(rank, xdims), ny = numel_of(rank, ydims);
        float *x = malloc(nx * 4), *y = malloc(ny * 4);
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)(rnd() % 100) / 10.0f - 5;
        void *work = malloc(resize_workspace(rank, ydims, &p) + 8);
        resize_forward(y, ydims, x, xdims, rank, scales, &p, work);
        char what[96];
        snprintf(what, sizeof what, "resize rep %d mode %d coord %d nearest %d excl %d", rep, p.mode, p.coord,
                 p.nearest, p.exclude_outside);
        int bad = resize_compare(what, y, ydims, rank, x, xdims, scales, &p);
        CHECK_MSG(bad == 0, "%s: %d differ", what, bad);
        cases++;
        free(x);
        free(y);
        free(work);
    }
    /* A large bilinear upsample takes the parallel path; every element equals the reference. */
    ResizeParams p = {RESIZE_LINEAR, RESIZE_HALF_PIXEL, RESIZE_ROUND_PREFER_FLOOR, -0.75f, false, 0, NULL};
    size_t xd[4] = {2, 3, 17, 19}, yd[4] = {2, 3, 40, 45};
    double sc[4] = {1, 1, 40.0 / 17, 45.0 / 19};
    float *x = malloc(numel_of(4, xd) * 4), *y = malloc(numel_of(4, yd) * 4);
    for (size_t i = 0; i < numel_of(4, xd); i++)
        x[i] = (float)(rnd() % 1000) / 100.0f;
    void *work = malloc(resize_workspace(4, yd, &p));
    resize_forward(y, yd, x, xd, 4, sc, &p, work);
    CHECK(resize_compare("resize large bilinear", y, yd, 4, x, xd, sc, &p) == 0);
    free(x);
    free(y);
    free(work);
    printf("resize: %d random cases\n", cases);
}

static void onnx_resize(RefCase *c)
{
    const NpyArray *x = &c->in[0], *yref = &c->out[0];
    char buf[32];
    ResizeParams p = {0};
    const char *mode = ref_str(c, "mode", "nearest", buf, sizeof buf);
    p.mode = strcmp(mode, "linear") == 0 ? RESIZE_LINEAR : strcmp(mode, "cubic") == 0 ? RESIZE_CUBIC : RESIZE_NEAREST;
    const char *ct = ref_str(c, "coordinate_transformation_mode", "half_pixel", buf, sizeof buf);
    static const struct { const char *name; ResizeCoord coord; } cts[] = {
        {"half_pixel", RESIZE_HALF_PIXEL}, {"pytorch_half_pixel", RESIZE_PYTORCH_HALF_PIXEL},
        {"align_corners", RESIZE_ALIGN_CORNERS}, {"asymmetric", RESIZE_ASYMMETRIC},
        {"tf_half_pixel_for_nn", RESIZE_TF_HALF_PIXEL_FOR_NN}, {"tf_crop_and_resize", RESIZE_TF_CROP_AND_RESIZE},
    };
    for (size_t i = 0; i < sizeof cts / sizeof cts[0]; i++)
        if (strcmp(ct, cts[i].name) == 0)
            p.coord = cts[i].coord;
    const char *nm = ref_str(c, "nearest_mode", "round_prefer_floor", buf, sizeof buf);
    p.nearest = strcmp(nm, "round_prefer_ceil") == 0 ? RESIZE_ROUND_PREFER_CEIL : strcmp(nm, "floor") == 0 ? RESIZE_FLOOR
              : strcmp(nm, "ceil") == 0 ? RESIZE_CEIL : RESIZE_ROUND_PREFER_FLOOR;
    p.cubic_coeff_a = (float)ref_float(c, "cubic_coeff_a", -0.75);
    p.exclude_outside = ref_int(c, "exclude_outside", 0) != 0;
    p.extrapolation_value = (float)ref_float(c, "extrapolation_value", 0);
    double scales[RT_MAX_RANK];
    size_t ydims[RT_MAX_RANK];
    const NpyArray *sc = NULL, *sz = NULL;
    if (strcmp(c->op, "Upsample") == 0) {       /* Upsample-9: X, scales; nearest = asymmetric + floor */
        sc = &c->in[1];
        p.coord = RESIZE_ASYMMETRIC;
        p.nearest = RESIZE_FLOOR;
    } else {
        sc = c->n_in > 2 && c->has_in[2] && c->in[2].numel ? &c->in[2] : NULL;
        sz = c->n_in > 3 && c->has_in[3] ? &c->in[3] : NULL;
    }
    for (int d = 0; d < x->rank; d++) {
        if (sz) {
            ydims[d] = (size_t)ref_get_i64(sz, (size_t)d);
            scales[d] = (double)ydims[d] / (double)x->dims[d];
        } else {
            scales[d] = ref_get(sc, (size_t)d);
            ydims[d] = (size_t)floor(scales[d] * (double)x->dims[d]);
        }
        CHECK_MSG(ydims[d] == yref->dims[d], "%s: dim %d %zu vs %zu", c->name, d, ydims[d], yref->dims[d]);
    }
    float roi[2 * RT_MAX_RANK];
    if (c->n_in > 1 && c->has_in[1] && strcmp(c->op, "Resize") == 0) {
        for (size_t i = 0; i < c->in[1].numel && i < 2 * RT_MAX_RANK; i++)
            roi[i] = (float)ref_get(&c->in[1], i);
        p.roi = roi;
    }
    float *y = out_like(yref);
    void *work = malloc(resize_workspace(x->rank, ydims, &p));
    resize_forward(y, ydims, x->data, x->dims, x->rank, scales, &p, work);
    ref_compare(c->name, y, yref, 1e-5, 1e-5);
    /* Our transcription of the reference agrees on the same case. */
    CHECK(resize_compare(c->name, y, ydims, x->rank, x->data, x->dims, scales, &p) == 0);
    free(y);
    free(work);
}

/* ------------------------------------------------------------------------ ONNX node data */

static void compare_out(RefCase *c, int k, const void *got)
{
    char what[160];
    snprintf(what, sizeof what, "%s output %d", c->name, k);
    ref_compare(what, got, &c->out[k], 0, 0);
}

static void onnx_transpose(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    int64_t p[8];
    int perm[8];
    int n = ref_ints(c, "perm", p, 8);
    for (int d = 0; d < x->rank; d++)
        perm[d] = n < 0 ? x->rank - 1 - d : (int)p[d];
    void *y = out_like(&c->out[0]);
    transpose_forward(rt_dtype_size(x->dtype), y, x->data, x->rank, x->dims, perm);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_concat(RefCase *c)
{
    int axis = norm_axis(ref_int(c, "axis", 0), c->in[0].rank);
    const void *xs[REF_MAX_IO];
    size_t ax[REF_MAX_IO], outer, inner;
    for (int k = 0; k < c->n_in; k++) {
        xs[k] = c->in[k].data;
        ax[k] = c->in[k].dims[axis];
    }
    split_at(c->in[0].rank, c->in[0].dims, axis, &outer, &inner);
    void *y = out_like(&c->out[0]);
    concat_forward(rt_dtype_size(c->in[0].dtype), y, c->n_in, xs, ax, outer, inner);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_split(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    int axis = norm_axis(ref_int(c, "axis", 0), x->rank);
    size_t ax[REF_MAX_IO], outer, inner;
    void *ys[REF_MAX_IO];
    for (int k = 0; k < c->n_out; k++) {
        ax[k] = c->out[k].dims[axis];
        ys[k] = out_like(&c->out[k]);
    }
    split_at(x->rank, x->dims, axis, &outer, &inner);
    split_forward(rt_dtype_size(x->dtype), ys, c->n_out, ax, x->data, outer, inner);
    for (int k = 0; k < c->n_out; k++) {
        compare_out(c, k, ys[k]);
        free(ys[k]);
    }
}

static void onnx_slice(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    int64_t starts[8], steps[8];
    size_t ydims[8];
    for (int d = 0; d < x->rank; d++) {
        starts[d] = 0;
        steps[d] = 1;
        ydims[d] = x->dims[d];
    }
    size_t n = c->in[1].numel;
    for (size_t j = 0; j < n; j++) {
        int axis = c->n_in > 3 && c->has_in[3] ? norm_axis(ref_get_i64(&c->in[3], j), x->rank) : (int)j;
        int64_t step = c->n_in > 4 && c->has_in[4] ? ref_get_i64(&c->in[4], j) : 1;
        resolve_slice(ref_get_i64(&c->in[1], j), ref_get_i64(&c->in[2], j), step, x->dims[axis], &starts[axis],
                      &ydims[axis]);
        steps[axis] = step;
    }
    for (int d = 0; d < x->rank; d++)
        CHECK_MSG(ydims[d] == c->out[0].dims[d], "%s: dim %d resolved to %zu, want %zu", c->name, d, ydims[d],
                  c->out[0].dims[d]);
    void *y = out_like(&c->out[0]);
    slice_forward(rt_dtype_size(x->dtype), y, x->data, x->rank, x->dims, starts, steps, ydims);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_gather(RefCase *c)
{
    const NpyArray *x = &c->in[0], *ind = &c->in[1];
    int axis = norm_axis(ref_int(c, "axis", 0), x->rank);
    size_t outer, inner;
    split_at(x->rank, x->dims, axis, &outer, &inner);
    void *y = out_like(&c->out[0]);
    gather_forward(rt_dtype_size(x->dtype), y, x->data, outer, x->dims[axis], inner, ind->dtype, ind->data, ind->numel);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_gather_elements(RefCase *c)
{
    const NpyArray *x = &c->in[0], *ind = &c->in[1];
    int axis = norm_axis(ref_int(c, "axis", 0), x->rank);
    void *y = out_like(&c->out[0]);
    gather_elements_forward(rt_dtype_size(x->dtype), y, x->data, x->dims, x->rank, axis, ind->dtype, ind->data,
                            ind->dims);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_gather_nd(RefCase *c)
{
    const NpyArray *x = &c->in[0], *ind = &c->in[1];
    int b = (int)ref_int(c, "batch_dims", 0), k = (int)ind->dims[ind->rank - 1];
    size_t batch = numel_of(b, x->dims), slice = numel_of(x->rank - b - k, x->dims + b + k);
    size_t n_tuples = ind->numel / (size_t)k / batch;
    void *y = out_like(&c->out[0]);
    gather_nd_forward(rt_dtype_size(x->dtype), y, x->data, batch, k, x->dims + b, slice, ind->dtype, ind->data,
                      n_tuples);
    compare_out(c, 0, y);
    free(y);
}

static ScatterReduction reduction_of(const RefCase *c)
{
    char buf[16];
    const char *r = ref_str(c, "reduction", "none", buf, sizeof buf);
    return strcmp(r, "add") == 0 ? SCATTER_ADD : strcmp(r, "mul") == 0 ? SCATTER_MUL
         : strcmp(r, "max") == 0 ? SCATTER_MAX : strcmp(r, "min") == 0 ? SCATTER_MIN : SCATTER_NONE;
}

static void onnx_scatter_elements(RefCase *c)
{
    const NpyArray *x = &c->in[0], *ind = &c->in[1];
    int axis = norm_axis(ref_int(c, "axis", 0), x->rank);
    void *y = out_like(&c->out[0]);
    scatter_elements_forward(x->dtype, y, x->data, x->dims, x->rank, axis, ind->dtype, ind->data, c->in[2].data,
                             ind->dims, reduction_of(c));
    compare_out(c, 0, y);
    free(y);
}

static void onnx_scatter_nd(RefCase *c)
{
    const NpyArray *x = &c->in[0], *ind = &c->in[1];
    int k = (int)ind->dims[ind->rank - 1];
    size_t slice = numel_of(x->rank - k, x->dims + k), nt = ind->numel / (size_t)k;
    void *y = out_like(&c->out[0]);
    scatter_nd_forward(x->dtype, y, x->data, k, x->dims, slice, ind->dtype, ind->data, c->in[2].data, nt,
                       reduction_of(c));
    compare_out(c, 0, y);
    free(y);
}

static void onnx_pad(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    char buf[16];
    const char *m = ref_str(c, "mode", "constant", buf, sizeof buf);
    PadMode mode = strcmp(m, "reflect") == 0 ? PAD_REFLECT : strcmp(m, "edge") == 0 ? PAD_EDGE
                 : strcmp(m, "wrap") == 0 ? PAD_WRAP : PAD_CONSTANT;
    int64_t pb[8];
    for (int d = 0; d < x->rank; d++)
        pb[d] = ref_get_i64(&c->in[1], (size_t)d);
    const void *value = c->n_in > 2 && c->has_in[2] ? c->in[2].data : NULL;
    void *y = out_like(&c->out[0]);
    pad_forward(rt_dtype_size(x->dtype), y, c->out[0].dims, x->data, x->dims, x->rank, pb, mode, value);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_tile(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    size_t rep[8];
    for (int d = 0; d < x->rank; d++)
        rep[d] = (size_t)ref_get_i64(&c->in[1], (size_t)d);
    void *y = out_like(&c->out[0]);
    tile_forward(rt_dtype_size(x->dtype), y, x->data, x->dims, x->rank, rep);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_depth_space(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    size_t b = (size_t)ref_int(c, "blocksize", 1);
    char buf[8];
    void *y = out_like(&c->out[0]);
    if (strcmp(c->op, "DepthToSpace") == 0)
        depth_to_space_forward(rt_dtype_size(x->dtype), y, x->data, x->dims[0], x->dims[1], x->dims[2], x->dims[3], b,
                               strcmp(ref_str(c, "mode", "DCR", buf, sizeof buf), "CRD") == 0);
    else
        space_to_depth_forward(rt_dtype_size(x->dtype), y, x->data, x->dims[0], x->dims[1], x->dims[2], x->dims[3], b);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_trilu(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    int64_t k = c->n_in > 1 && c->has_in[1] ? ref_get_i64(&c->in[1], 0) : 0;
    size_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    void *y = out_like(&c->out[0]);
    trilu_forward(rt_dtype_size(x->dtype), y, x->data, x->numel / (rows * cols != 0 ? rows * cols : 1), rows, cols, k,
                  ref_int(c, "upper", 1) != 0);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_cumsum(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    int axis = norm_axis(ref_get_i64(&c->in[1], 0), x->rank);
    size_t outer, inner;
    split_at(x->rank, x->dims, axis, &outer, &inner);
    void *y = out_like(&c->out[0]);
    cumsum_forward(x->dtype, y, x->data, outer, x->dims[axis], inner, ref_int(c, "exclusive", 0) != 0,
                   ref_int(c, "reverse", 0) != 0);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_onehot(RefCase *c)
{
    const NpyArray *ind = &c->in[0], *y = &c->out[0];
    int axis = norm_axis(ref_int(c, "axis", -1), ind->rank + 1);
    size_t depth = (size_t)ref_get(&c->in[1], 0), outer, inner;
    split_at(y->rank, y->dims, axis, &outer, &inner);
    CHECK(y->dims[axis] == depth);
    void *out = out_like(y);
    onehot_forward(y->dtype, out, ind->dtype, ind->data, outer, depth, inner, c->in[2].data);
    compare_out(c, 0, out);
    free(out);
}

static void onnx_range(RefCase *c)
{
    const NpyArray *y = &c->out[0];
    double s = ref_get(&c->in[0], 0), l = ref_get(&c->in[1], 0), d = ref_get(&c->in[2], 0);
    double n = ceil((l - s) / d);
    CHECK_EQ_INT((size_t)(n > 0 ? n : 0), y->numel);
    void *out = out_like(y);
    range_forward(y->dtype, out, c->in[0].data, c->in[2].data, y->numel);
    compare_out(c, 0, out);
    free(out);
}

static void onnx_eyelike(RefCase *c)
{
    const NpyArray *y = &c->out[0];
    void *out = out_like(y);
    eyelike_forward(y->dtype, out, y->dims[0], y->dims[1], ref_int(c, "k", 0));
    compare_out(c, 0, out);
    free(out);
}

static void onnx_compress(RefCase *c)
{
    const NpyArray *x = &c->in[0], *cond = &c->in[1];
    size_t outer = 1, axis_dim = x->numel, inner = 1;
    if (ref_attr(c, "axis")) {
        int axis = norm_axis(ref_int(c, "axis", 0), x->rank);
        split_at(x->rank, x->dims, axis, &outer, &inner);
        axis_dim = x->dims[axis];
    }
    void *y = out_like(&c->out[0]);
    size_t count = compress_forward(rt_dtype_size(x->dtype), y, x->data, outer, axis_dim, inner, cond->data, cond->numel);
    CHECK_EQ_INT(count * outer * inner, c->out[0].numel);
    compare_out(c, 0, y);
    free(y);
}

static void onnx_topk(RefCase *c)
{
    const NpyArray *x = &c->in[0];
    int axis = norm_axis(ref_int(c, "axis", -1), x->rank);
    size_t k = (size_t)ref_get_i64(&c->in[1], 0), outer, inner;
    split_at(x->rank, x->dims, axis, &outer, &inner);
    void *v = out_like(&c->out[0]), *ix = out_like(&c->out[1]), *work = malloc(topk_workspace(x->dims[axis]));
    topk_forward(x->dtype, v, ix, x->data, outer, x->dims[axis], inner, k, ref_int(c, "largest", 1) != 0, work);
    compare_out(c, 0, v);
    compare_out(c, 1, ix);
    free(v);
    free(ix);
    free(work);
}

static void test_onnx_cases(void)
{
    static const struct { const char *op; void (*fn)(RefCase *); int min; } ops[] = {
        {"Transpose", onnx_transpose, 6}, {"Concat", onnx_concat, 1}, {"Split", onnx_split, 1},
        {"Slice", onnx_slice, 4}, {"Gather", onnx_gather, 4}, {"GatherElements", onnx_gather_elements, 3},
        {"GatherND", onnx_gather_nd, 3}, {"ScatterElements", onnx_scatter_elements, 4},
        {"ScatterND", onnx_scatter_nd, 3}, {"Pad", onnx_pad, 3}, {"Tile", onnx_tile, 1},
        {"DepthToSpace", onnx_depth_space, 2}, {"SpaceToDepth", onnx_depth_space, 1}, {"Trilu", onnx_trilu, 18},
        {"CumSum", onnx_cumsum, 7}, {"OneHot", onnx_onehot, 4}, {"Range", onnx_range, 2},
        {"EyeLike", onnx_eyelike, 3}, {"Compress", onnx_compress, 4}, {"TopK", onnx_topk, 3},
        {"Resize", onnx_resize, 22}, {"Upsample", onnx_resize, 1},
    };
    int total = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int n = ref_for_op(ops[i].op, ops[i].fn);
        CHECK_MSG(n >= ops[i].min, "%s: only %d ONNX cases ran", ops[i].op, n);
        total += n;
    }
    printf("onnx: %d movement cases\n", total);
}

int main(void)
{
    test_transpose();
    test_slice_random();
    test_pad_random();
    test_tile_random();
    test_gather_scatter_random();
    test_topk_random();
    test_misc_random();
    test_resize_random();
    test_onnx_cases();
    return test_summary("test_rt_movement");
}
