/* movement.c - data movement kernels: Transpose, Concat/Split, Slice, Gather/GatherElements/GatherND,
 * ScatterElements/ScatterND, Pad, Tile, DepthToSpace/SpaceToDepth, Trilu, CumSum, OneHot, Range,
 * EyeLike, Compress and TopK; the backward of Slice and Gather (float32: the others' gradients are
 * movements too). Pure copies go by element size so one kernel serves every dtype.
 * Views (Reshape, Flatten, Squeeze, Unsqueeze, Identity) have no kernel here: codegen aliases them.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

#define PAR_MIN ((size_t)1 << 16)   /* elements below which the kernels stay on one thread */
#define TILE 32                     /* transpose tile edge */

/* ------------------------------------------------------------------------ helpers */

/* n elements of es bytes; constant sizes let the compiler use plain moves. */
static void copy_elems(void *dst, const void *src, size_t n, size_t es)
{
    memcpy(dst, src, n * es);
}

/* dst[0..n) = *value (es bytes), or zeros when value is NULL. */
static void fill_elems(void *dst, size_t n, size_t es, const void *value)
{
    char *d = dst;
    if (!value) {
        memset(d, 0, n * es);
        return;
    }
    switch (es) {
    case 1: memset(d, *(const unsigned char *)value, n); break;
    case 2: { uint16_t v; memcpy(&v, value, 2); for (size_t i = 0; i < n; i++) memcpy(d + 2 * i, &v, 2); break; }
    case 4: { uint32_t v; memcpy(&v, value, 4); for (size_t i = 0; i < n; i++) memcpy(d + 4 * i, &v, 4); break; }
    case 8: { uint64_t v; memcpy(&v, value, 8); for (size_t i = 0; i < n; i++) memcpy(d + 8 * i, &v, 8); break; }
    default:
        for (size_t i = 0; i < n; i++)
            memcpy(d + es * i, value, es);
    }
}

/* Index i of an index tensor (int64 or int32). */
static int64_t load_index(RtDType dt, const void *p, size_t i)
{
    return dt == RT_INT32 ? (int64_t)((const int32_t *)p)[i] : ((const int64_t *)p)[i];
}

/* Index i of any numeric tensor; floats truncate toward zero (OneHot indices, TopK's k...). */
static int64_t load_any_int(RtDType dt, const void *p, size_t i)
{
    double f;
    switch (dt) {
    case RT_INT8: return ((const int8_t *)p)[i];
    case RT_INT16: return ((const int16_t *)p)[i];
    case RT_INT32: return ((const int32_t *)p)[i];
    case RT_INT64: return ((const int64_t *)p)[i];
    case RT_UINT8: case RT_BOOL: return ((const uint8_t *)p)[i];
    case RT_UINT16: return ((const uint16_t *)p)[i];
    case RT_UINT32: return ((const uint32_t *)p)[i];
    case RT_UINT64: { uint64_t u = ((const uint64_t *)p)[i]; return u > INT64_MAX ? INT64_MAX : (int64_t)u; }
    case RT_FLOAT: f = ((const float *)p)[i]; break;
    case RT_DOUBLE: f = ((const double *)p)[i]; break;
    case RT_FLOAT16: f = rt_half_to_float(((const uint16_t *)p)[i]); break;
    case RT_BFLOAT16: f = rt_bfloat16_to_float(((const uint16_t *)p)[i]); break;
    default: return 0;
    }
    if (!(f > -0x1p62 && f < 0x1p62))
        return f > 0 ? INT64_MAX : INT64_MIN;   /* NaN too: out of range for any dim */
    return (int64_t)f;
}

/* A negative index counts from the end; false when it is still outside [0, dim). */
static bool resolve_index(int64_t *i, size_t dim)
{
    if (*i < 0)
        *i += (int64_t)dim;
    return *i >= 0 && (uint64_t)*i < dim;
}

static void dense_strides(int rank, const size_t *dims, size_t *strides)
{
    size_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= dims[d];
    }
}

static size_t product(int rank, const size_t *dims)
{
    size_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= dims[d];
    return n;
}

/* ------------------------------------------------------------------------ Transpose */

/* One TILE x TILE block: y[i*ys + j] = x[i + j*xs] for i < ni, j < nj (i runs along x's contiguous
 * axis, j along y's). */
#define TILE_LOOP(T) do {                                                                      \
    T *py = (T *)y; const T *px = (const T *)x;                                                \
    for (size_t i = 0; i < ni; i++)                                                            \
        for (size_t j = 0; j < nj; j++)                                                        \
            py[i * ys + j] = px[i + j * xs];                                                   \
} while (0)

static void transpose_tile(size_t es, char *y, size_t ys, const char *x, size_t xs, size_t ni, size_t nj)
{
    switch (es) {
    case 1: TILE_LOOP(uint8_t); break;
    case 2: TILE_LOOP(uint16_t); break;
    case 4: TILE_LOOP(uint32_t); break;
    case 8: TILE_LOOP(uint64_t); break;
    default:
        for (size_t i = 0; i < ni; i++)
            for (size_t j = 0; j < nj; j++)
                memcpy(y + (i * ys + j) * es, x + (i + j * xs) * es, es);
    }
}

void transpose_forward(size_t elsize, void *y, const void *x, int rank, const size_t *xdims, const int *perm)
{
    size_t xst[RT_MAX_RANK], dims[RT_MAX_RANK], xs[RT_MAX_RANK];
    dense_strides(rank, xdims, xst);
    size_t total = product(rank, xdims);
    if (total == 0)
        return;
    /* y's axes with their x strides; drop 1s, merge neighbours contiguous in both. */
    int r = 0;
    for (int i = 0; i < rank; i++) {
        size_t d = xdims[perm[i]], s = xst[perm[i]];
        if (d == 1)
            continue;
        if (r > 0 && xs[r - 1] == s * d) {
            dims[r - 1] *= d;
            xs[r - 1] = s;
            continue;
        }
        dims[r] = d;
        xs[r] = s;
        r++;
    }
    char *py = y;
    const char *px = x;
    if (r == 0 || (r == 1 && xs[0] == 1)) {
        memcpy(py, px, total * elsize);
        return;
    }
    size_t yst[RT_MAX_RANK];
    dense_strides(r, dims, yst);
    int last = r - 1;
    if (xs[last] == 1) {
        /* Whole rows are contiguous in x too: one memcpy per row. */
        size_t rows = total / dims[last], row = dims[last] * elsize;
        #pragma omp parallel for schedule(static) if (total >= PAR_MIN)
        for (size_t rw = 0; rw < rows; rw++) {
            size_t rem = rw, off = 0;
            for (int d = last - 1; d >= 0; d--) {
                off += (rem % dims[d]) * xs[d];
                rem /= dims[d];
            }
            memcpy(py + rw * row, px + off * elsize, row);
        }
        return;
    }
    /* Tiles over the axis p contiguous in x and y's last axis; every other axis is "outer". */
    int p = 0;
    while (p < last && xs[p] != 1)
        p++;
    size_t ni = dims[p], nj = dims[last];
    size_t ti = (ni + TILE - 1) / TILE, tj = (nj + TILE - 1) / TILE;
    size_t outer = total / (ni * nj), work = outer * ti * tj;
    #pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t w = 0; w < work; w++) {
        size_t o = w / (ti * tj), t = w % (ti * tj), bi = t / tj * TILE, bj = t % tj * TILE;
        size_t xoff = 0, yoff = 0, rem = o;
        for (int d = last - 1; d >= 0; d--) {
            if (d == p)
                continue;
            size_t id = rem % dims[d];
            rem /= dims[d];
            xoff += id * xs[d];
            yoff += id * yst[d];
        }
        xoff += bi + bj * xs[last];
        yoff += bi * yst[p] + bj;
        transpose_tile(elsize, py + yoff * elsize, yst[p], px + xoff * elsize, xs[last],
                       ni - bi < TILE ? ni - bi : TILE, nj - bj < TILE ? nj - bj : TILE);
    }
}

/* ------------------------------------------------------------------------ Concat, Split */

void concat_forward(size_t elsize, void *y, int n_inputs, const void *const *xs, const size_t *axis_dims,
                    size_t outer, size_t inner)
{
    char *py = y;
    for (size_t o = 0; o < outer; o++)
        for (int k = 0; k < n_inputs; k++) {
            size_t run = axis_dims[k] * inner;
            copy_elems(py, (const char *)xs[k] + o * run * elsize, run, elsize);
            py += run * elsize;
        }
}

void split_forward(size_t elsize, void *const *ys, int n_outputs, const size_t *axis_dims, const void *x,
                   size_t outer, size_t inner)
{
    const char *px = x;
    for (size_t o = 0; o < outer; o++)
        for (int k = 0; k < n_outputs; k++) {
            size_t run = axis_dims[k] * inner;
            copy_elems((char *)ys[k] + o * run * elsize, px, run, elsize);
            px += run * elsize;
        }
}

/* ------------------------------------------------------------------------ Slice */

void slice_forward(size_t elsize, void *y, const void *x, int rank, const size_t *xdims,
                   const int64_t *starts, const int64_t *steps, const size_t *ydims)
{
    size_t xst[RT_MAX_RANK], dims[RT_MAX_RANK];
    int64_t st[RT_MAX_RANK], base = 0;
    dense_strides(rank, xdims, xst);
    size_t total = product(rank, ydims);
    if (total == 0)
        return;
    int r = 0;
    for (int d = 0; d < rank; d++) {
        base += starts[d] * (int64_t)xst[d];
        if (ydims[d] == 1)
            continue;
        int64_t s = steps[d] * (int64_t)xst[d];
        if (r > 0 && st[r - 1] == s * (int64_t)ydims[d]) {   /* contiguous with the axis before */
            dims[r - 1] *= ydims[d];
            st[r - 1] = s;
            continue;
        }
        dims[r] = ydims[d];
        st[r] = s;
        r++;
    }
    char *py = y;
    const char *px = (const char *)x + base * (int64_t)elsize;
    if (r == 0) {
        memcpy(py, px, elsize);
        return;
    }
    int last = r - 1;
    size_t rows = total / dims[last], n = dims[last];
    int64_t s = st[last];
    #pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t rw = 0; rw < rows; rw++) {
        size_t rem = rw;
        int64_t off = 0;
        for (int d = last - 1; d >= 0; d--) {
            off += (int64_t)(rem % dims[d]) * st[d];
            rem /= dims[d];
        }
        char *dst = py + rw * n * elsize;
        const char *src = px + off * (int64_t)elsize;
        if (s == 1) {
            memcpy(dst, src, n * elsize);
        } else {
            for (size_t i = 0; i < n; i++)
                memcpy(dst + i * elsize, src + (int64_t)i * s * (int64_t)elsize, elsize);
        }
    }
}

/* ------------------------------------------------------------------------ Gather family */

void gather_forward(size_t elsize, void *y, const void *x, size_t outer, size_t axis_dim, size_t inner,
                    RtDType index_dt, const void *indices, size_t n_indices)
{
    size_t run = inner * elsize;
    #pragma omp parallel for schedule(static) if (outer * n_indices * inner >= PAR_MIN)
    for (size_t o = 0; o < outer; o++) {
        char *dst = (char *)y + o * n_indices * run;
        const char *src = (const char *)x + o * axis_dim * run;
        for (size_t j = 0; j < n_indices; j++) {
            int64_t i = load_index(index_dt, indices, j);
            if (resolve_index(&i, axis_dim))
                memcpy(dst + j * run, src + (size_t)i * run, run);
            else
                memset(dst + j * run, 0, run);
        }
    }
}

void gather_elements_forward(size_t elsize, void *y, const void *x, const size_t *xdims, int rank, int axis,
                             RtDType index_dt, const void *indices, const size_t *idims)
{
    size_t xst[RT_MAX_RANK], idx[RT_MAX_RANK] = {0};
    dense_strides(rank, xdims, xst);
    size_t total = product(rank, idims);
    char *py = y;
    const char *px = x;
    for (size_t n = 0; n < total; n++) {
        size_t off = 0;
        for (int d = 0; d < rank; d++)
            if (d != axis)
                off += idx[d] * xst[d];
        int64_t i = load_index(index_dt, indices, n);
        if (resolve_index(&i, xdims[axis]))
            memcpy(py + n * elsize, px + (off + (size_t)i * xst[axis]) * elsize, elsize);
        else
            memset(py + n * elsize, 0, elsize);
        for (int d = rank - 1; d >= 0 && ++idx[d] == idims[d]; d--)
            idx[d] = 0;
    }
}

/* Offset (in slices) of the k-index tuple t, or false if any index is out of range. */
static bool tuple_offset(RtDType index_dt, const void *indices, size_t t, int k, const size_t *index_dims,
                         size_t *off)
{
    size_t o = 0;
    for (int j = 0; j < k; j++) {
        int64_t i = load_index(index_dt, indices, t * (size_t)k + (size_t)j);
        if (!resolve_index(&i, index_dims[j]))
            return false;
        o = o * index_dims[j] + (size_t)i;
    }
    *off = o;
    return true;
}

void gather_nd_forward(size_t elsize, void *y, const void *x, size_t batch, int k, const size_t *index_dims,
                       size_t slice, RtDType index_dt, const void *indices, size_t n_tuples)
{
    size_t run = slice * elsize, per_batch = product(k, index_dims) * run;
    for (size_t b = 0; b < batch; b++)
        for (size_t t = 0; t < n_tuples; t++) {
            size_t n = b * n_tuples + t, off;
            char *dst = (char *)y + n * run;
            if (tuple_offset(index_dt, indices, n, k, index_dims, &off))
                memcpy(dst, (const char *)x + b * per_batch + off * run, run);
            else
                memset(dst, 0, run);
        }
}

/* ------------------------------------------------------------------------ Scatter family */

#define REDUCE_INTO(T, U) do {                                                                 \
    T *d = dst; T s = *(const T *)src;                                                         \
    switch (red) {                                                                             \
    case SCATTER_ADD: *d = (T)((U)*d + (U)s); break;                                           \
    case SCATTER_MUL: *d = (T)((U)*d * (U)s); break;                                           \
    case SCATTER_MAX: if (s > *d) *d = s; break;                                               \
    case SCATTER_MIN: if (s < *d) *d = s; break;                                               \
    default: *d = s; break;                                                                    \
    }                                                                                          \
} while (0)

/* *dst (op)= *src for one element; integer + and * wrap (through the unsigned type U). */
static void reduce_elem(RtDType dt, ScatterReduction red, void *dst, const void *src)
{
    switch (dt) {
    case RT_FLOAT: REDUCE_INTO(float, float); break;
    case RT_DOUBLE: REDUCE_INTO(double, double); break;
    case RT_INT8: REDUCE_INTO(int8_t, unsigned); break;
    case RT_INT16: REDUCE_INTO(int16_t, unsigned); break;
    case RT_INT32: REDUCE_INTO(int32_t, uint32_t); break;
    case RT_INT64: REDUCE_INTO(int64_t, uint64_t); break;
    case RT_UINT8: REDUCE_INTO(uint8_t, unsigned); break;
    case RT_UINT16: REDUCE_INTO(uint16_t, unsigned); break;
    case RT_UINT32: REDUCE_INTO(uint32_t, uint32_t); break;
    case RT_UINT64: REDUCE_INTO(uint64_t, uint64_t); break;
    default: memcpy(dst, src, rt_dtype_size(dt)); break;   /* bool, halves: overwrite */
    }
}

void scatter_elements_forward(RtDType dt, void *y, const void *x, const size_t *xdims, int rank, int axis,
                              RtDType index_dt, const void *indices, const void *updates,
                              const size_t *idims, ScatterReduction red)
{
    size_t es = rt_dtype_size(dt), xst[RT_MAX_RANK], idx[RT_MAX_RANK] = {0};
    dense_strides(rank, xdims, xst);
    if (y != x)
        memcpy(y, x, product(rank, xdims) * es);
    size_t total = product(rank, idims);
    char *py = y;
    const char *pu = updates;
    for (size_t n = 0; n < total; n++) {
        size_t off = 0;
        for (int d = 0; d < rank; d++)
            if (d != axis)
                off += idx[d] * xst[d];
        int64_t i = load_index(index_dt, indices, n);
        if (resolve_index(&i, xdims[axis]))
            reduce_elem(dt, red, py + (off + (size_t)i * xst[axis]) * es, pu + n * es);
        for (int d = rank - 1; d >= 0 && ++idx[d] == idims[d]; d--)
            idx[d] = 0;
    }
}

void scatter_nd_forward(RtDType dt, void *y, const void *x, int k, const size_t *index_dims, size_t slice,
                        RtDType index_dt, const void *indices, const void *updates, size_t n_tuples,
                        ScatterReduction red)
{
    size_t es = rt_dtype_size(dt);
    if (y != x)
        memcpy(y, x, product(k, index_dims) * slice * es);
    for (size_t t = 0; t < n_tuples; t++) {
        size_t off;
        if (!tuple_offset(index_dt, indices, t, k, index_dims, &off))
            continue;
        char *dst = (char *)y + off * slice * es;
        const char *src = (const char *)updates + t * slice * es;
        if (red == SCATTER_NONE) {
            memcpy(dst, src, slice * es);
            continue;
        }
        for (size_t i = 0; i < slice; i++)
            reduce_elem(dt, red, dst + i * es, src + i * es);
    }
}

/* ------------------------------------------------------------------------ Pad, Tile */

/* The x coordinate that output coordinate o (already shifted by the begin pad) reads, or false for
 * the constant. Reflect is periodic with period 2(n-1), so pads wider than the dim still work. */
static bool pad_source(int64_t o, size_t n, PadMode mode, size_t *src)
{
    int64_t len = (int64_t)n;
    if (o >= 0 && o < len) {
        *src = (size_t)o;
        return true;
    }
    if (mode == PAD_CONSTANT || n == 0)
        return false;
    if (mode == PAD_EDGE) {
        *src = o < 0 ? 0 : n - 1;
    } else if (mode == PAD_WRAP) {
        *src = (size_t)(((o % len) + len) % len);
    } else if (n == 1) {
        *src = 0;
    } else {
        int64_t period = 2 * (len - 1), m = ((o % period) + period) % period;
        *src = (size_t)(m < len ? m : period - m);
    }
    return true;
}

void pad_forward(size_t elsize, void *y, const size_t *ydims, const void *x, const size_t *xdims, int rank,
                 const int64_t *pads_begin, PadMode mode, const void *value)
{
    size_t total = product(rank, ydims);
    if (total == 0)
        return;
    if (rank == 0) {
        memcpy(y, x, elsize);
        return;
    }
    size_t xst[RT_MAX_RANK];
    dense_strides(rank, xdims, xst);
    int last = rank - 1;
    size_t n = ydims[last], xn = xdims[last], rows = total / n;
    int64_t b = pads_begin[last];
    /* The part of each row that copies x directly: o in [lo, hi). */
    int64_t lo64 = b > 0 ? b : 0, hi64 = b + (int64_t)xn;
    if (hi64 > (int64_t)n)
        hi64 = (int64_t)n;
    size_t lo = (size_t)lo64, hi = hi64 > lo64 ? (size_t)hi64 : lo;
    #pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t rw = 0; rw < rows; rw++) {
        char *dst = (char *)y + rw * n * elsize;
        size_t rem = rw, xoff = 0;
        bool inside = true;
        for (int d = last - 1; d >= 0; d--) {
            size_t src;
            inside = inside && pad_source((int64_t)(rem % ydims[d]) - pads_begin[d], xdims[d], mode, &src);
            if (inside)
                xoff += src * xst[d];
            rem /= ydims[d];
        }
        if (!inside) {
            fill_elems(dst, n, elsize, value);
            continue;
        }
        const char *row = (const char *)x + xoff * elsize;
        if (hi > lo)
            memcpy(dst + lo * elsize, row + (size_t)((int64_t)lo - b) * elsize, (hi - lo) * elsize);
        if (mode == PAD_CONSTANT) {   /* both ends in one fill each (Slice's gradient is this Pad) */
            fill_elems(dst, lo, elsize, value);
            fill_elems(dst + hi * elsize, n - hi, elsize, value);
            continue;
        }
        for (size_t o = 0; o < n; o++) {
            if (o == lo && hi > lo)
                o = hi;
            if (o >= n)
                break;
            size_t src;
            if (pad_source((int64_t)o - b, xn, mode, &src))
                memcpy(dst + o * elsize, row + src * elsize, elsize);
            else
                fill_elems(dst + o * elsize, 1, elsize, value);
        }
    }
}

void tile_forward(size_t elsize, void *y, const void *x, const size_t *xdims, int rank, const size_t *repeats)
{
    size_t ydims[RT_MAX_RANK] = {0}, xst[RT_MAX_RANK];
    for (int d = 0; d < rank; d++)
        ydims[d] = xdims[d] * repeats[d];
    size_t total = product(rank, ydims);
    if (total == 0)
        return;
    if (rank == 0) {
        memcpy(y, x, elsize);
        return;
    }
    dense_strides(rank, xdims, xst);
    int last = rank - 1;
    size_t xn = xdims[last], rows = total / ydims[last], run = xn * elsize;
    #pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t rw = 0; rw < rows; rw++) {
        size_t rem = rw, xoff = 0;
        for (int d = last - 1; d >= 0; d--) {
            xoff += (rem % ydims[d]) % xdims[d] * xst[d];
            rem /= ydims[d];
        }
        char *dst = (char *)y + rw * ydims[last] * elsize;
        for (size_t r = 0; r < repeats[last]; r++)
            memcpy(dst + r * run, (const char *)x + xoff * elsize, run);
    }
}

/* ------------------------------------------------------------------------ DepthToSpace, SpaceToDepth */

void depth_to_space_forward(size_t elsize, void *y, const void *x, size_t n, size_t c, size_t h, size_t w,
                            size_t b, bool crd)
{
    size_t cc = c / (b * b);
    if (crd) {   /* x as [n, cc, b, b, h, w] -> [n, cc, h, b, w, b] */
        const size_t dims[6] = {n, cc, b, b, h, w};
        const int perm[6] = {0, 1, 4, 2, 5, 3};
        transpose_forward(elsize, y, x, 6, dims, perm);
    } else {     /* DCR: x as [n, b, b, cc, h, w] -> [n, cc, h, b, w, b] */
        const size_t dims[6] = {n, b, b, cc, h, w};
        const int perm[6] = {0, 3, 4, 1, 5, 2};
        transpose_forward(elsize, y, x, 6, dims, perm);
    }
}

void space_to_depth_forward(size_t elsize, void *y, const void *x, size_t n, size_t c, size_t h, size_t w,
                            size_t b)
{
    /* x as [n, c, h/b, b, w/b, b] -> [n, b, b, c, h/b, w/b] */
    const size_t dims[6] = {n, c, h / b, b, w / b, b};
    const int perm[6] = {0, 3, 5, 1, 2, 4};
    transpose_forward(elsize, y, x, 6, dims, perm);
}

/* ------------------------------------------------------------------------ Trilu */

void trilu_forward(size_t elsize, void *y, const void *x, size_t batch, size_t rows, size_t cols, int64_t k,
                   bool upper)
{
    for (size_t bt = 0; bt < batch; bt++)
        for (size_t i = 0; i < rows; i++) {
            size_t row = (bt * rows + i) * cols * elsize;
            char *dst = (char *)y + row;
            const char *src = (const char *)x + row;
            /* upper keeps j >= i + k; lower keeps j <= i + k, i.e. j < i + k + 1 */
            int64_t edge = (int64_t)i + k + (upper ? 0 : 1);
            size_t e = edge < 0 ? 0 : edge > (int64_t)cols ? cols : (size_t)edge;
            size_t keep_lo = upper ? e : 0, keep_hi = upper ? cols : e;
            if (dst != src)
                memcpy(dst + keep_lo * elsize, src + keep_lo * elsize, (keep_hi - keep_lo) * elsize);
            memset(dst + (upper ? 0 : e) * elsize, 0, (upper ? e : cols - e) * elsize);
        }
}

/* ------------------------------------------------------------------------ CumSum */

/* y[o, a, :] accumulates x along a in the chosen direction; U is the type the sum wraps in.
 * y must not alias x (the exclusive sum reads the previous x after writing the previous y). */
#define CUMSUM(T, U) do {                                                                      \
    T *py = y; const T *px = x;                                                                \
    for (size_t o = 0; o < outer; o++)                                                         \
        for (size_t s = 0; s < axis_dim; s++) {                                                \
            size_t a = reverse ? axis_dim - 1 - s : s;                                         \
            T *cur = py + (o * axis_dim + a) * inner;                                          \
            if (s == 0) {                                                                      \
                for (size_t i = 0; i < inner; i++)                                             \
                    cur[i] = exclusive ? (T)0 : px[(o * axis_dim + a) * inner + i];            \
                continue;                                                                      \
            }                                                                                  \
            size_t prev = reverse ? a + 1 : a - 1;                                             \
            const T *pre = py + (o * axis_dim + prev) * inner;                                 \
            const T *xin = px + (o * axis_dim + (exclusive ? prev : a)) * inner;                \
            for (size_t i = 0; i < inner; i++)                                                 \
                cur[i] = (T)((U)pre[i] + (U)xin[i]);                                           \
        }                                                                                      \
} while (0)

void cumsum_forward(RtDType dt, void *y, const void *x, size_t outer, size_t axis_dim, size_t inner,
                    bool exclusive, bool reverse)
{
    switch (dt) {
    case RT_FLOAT: CUMSUM(float, float); break;
    case RT_DOUBLE: CUMSUM(double, double); break;
    case RT_INT32: CUMSUM(int32_t, uint32_t); break;
    case RT_INT64: CUMSUM(int64_t, uint64_t); break;
    case RT_UINT32: CUMSUM(uint32_t, uint32_t); break;
    case RT_UINT64: CUMSUM(uint64_t, uint64_t); break;
    default: break;
    }
}

/* ------------------------------------------------------------------------ OneHot, Range, EyeLike */

void onehot_forward(RtDType dt, void *y, RtDType index_dt, const void *indices, size_t outer, size_t depth,
                    size_t inner, const void *values)
{
    size_t es = rt_dtype_size(dt);
    const char *off = values, *on = off + es;
    fill_elems(y, outer * depth * inner, es, off);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            int64_t k = load_any_int(index_dt, indices, o * inner + i);
            if (resolve_index(&k, depth))
                memcpy((char *)y + ((o * depth + (size_t)k) * inner + i) * es, on, es);
        }
}

#define RANGE(T) do {                                                                          \
    T s = *(const T *)start, d = *(const T *)delta, *py = y;                                   \
    for (size_t i = 0; i < n; i++) py[i] = (T)(s + (T)i * d);                                  \
} while (0)

void range_forward(RtDType dt, void *y, const void *start, const void *delta, size_t n)
{
    switch (dt) {
    case RT_FLOAT: RANGE(float); break;
    case RT_DOUBLE: RANGE(double); break;
    case RT_INT16: RANGE(int16_t); break;
    case RT_INT32: RANGE(int32_t); break;
    case RT_INT64: RANGE(int64_t); break;
    default: break;
    }
}

/* The bytes of 1 in dtype dt. */
static void one_of(RtDType dt, unsigned char *out)
{
    float f = 1;
    double d = 1;
    uint64_t u = 1;
    uint16_t h = dt == RT_FLOAT16 ? 0x3c00 : 0x3f80;
    switch (dt) {
    case RT_FLOAT: memcpy(out, &f, 4); break;
    case RT_DOUBLE: memcpy(out, &d, 8); break;
    case RT_FLOAT16: case RT_BFLOAT16: memcpy(out, &h, 2); break;
    default: memcpy(out, &u, rt_dtype_size(dt)); break;   /* little-endian: the low bytes */
    }
}

void eyelike_forward(RtDType dt, void *y, size_t rows, size_t cols, int64_t k)
{
    size_t es = rt_dtype_size(dt);
    unsigned char one[8];
    one_of(dt, one);
    memset(y, 0, rows * cols * es);
    for (size_t i = 0; i < rows; i++) {
        int64_t j = (int64_t)i + k;
        if (j >= 0 && j < (int64_t)cols)
            memcpy((char *)y + (i * cols + (size_t)j) * es, one, es);
    }
}

/* ------------------------------------------------------------------------ Compress */

size_t compress_forward(size_t elsize, void *y, const void *x, size_t outer, size_t axis_dim, size_t inner,
                        const uint8_t *cond, size_t cond_len)
{
    size_t count = 0, run = inner * elsize;
    for (size_t a = 0; a < axis_dim && a < cond_len; a++)
        count += cond[a] != 0;
    char *py = y;
    for (size_t o = 0; o < outer; o++)
        for (size_t a = 0; a < axis_dim && a < cond_len; a++)
            if (cond[a]) {
                memcpy(py, (const char *)x + (o * axis_dim + a) * run, run);
                py += run;
            }
    return count;
}

/* ------------------------------------------------------------------------ TopK */

size_t topk_workspace(size_t axis_dim) { return axis_dim * sizeof(int64_t); }

/* Per dtype: a row's selection. BEFORE(a, b) says element a ranks ahead of b: larger (or smaller)
 * value first, NaN as the largest value, ties by lower index. The k best sit in a heap whose top is
 * the worst of them; a heap sort then orders them best first. */
#define DEFINE_TOPK(NAME, T, ISNAN)                                                            \
static bool NAME##_before(const T *v, size_t stride, int64_t a, int64_t b, bool largest)       \
{                                                                                              \
    T va = v[(size_t)a * stride], vb = v[(size_t)b * stride];                                  \
    bool na = ISNAN(va), nb = ISNAN(vb);                                                       \
    if (na || nb) {                                                                            \
        if (na && nb) return a < b;                                                            \
        return largest ? na : nb;                                                              \
    }                                                                                          \
    if (va != vb) return largest ? va > vb : va < vb;                                          \
    return a < b;                                                                              \
}                                                                                              \
static void NAME##_sift(const T *v, size_t stride, int64_t *h, size_t n, size_t i, bool largest) \
{                                                                                              \
    for (;;) {                                                                                 \
        size_t l = 2 * i + 1, r = l + 1, worst = i;                                            \
        if (l < n && NAME##_before(v, stride, h[worst], h[l], largest)) worst = l;             \
        if (r < n && NAME##_before(v, stride, h[worst], h[r], largest)) worst = r;             \
        if (worst == i) return;                                                                \
        int64_t t = h[i]; h[i] = h[worst]; h[worst] = t;                                       \
        i = worst;                                                                             \
    }                                                                                          \
}                                                                                              \
static void NAME(T *values, int64_t *indices, const T *x, size_t outer, size_t axis_dim,       \
                 size_t inner, size_t k, bool largest, int64_t *h)                             \
{                                                                                              \
    for (size_t o = 0; o < outer; o++)                                                         \
        for (size_t in = 0; in < inner; in++) {                                                \
            const T *v = x + o * axis_dim * inner + in;                                        \
            for (size_t i = 0; i < k; i++) h[i] = (int64_t)i;                                  \
            for (size_t i = k / 2; i-- > 0;) NAME##_sift(v, inner, h, k, i, largest);          \
            for (size_t j = k; j < axis_dim; j++)                                              \
                if (NAME##_before(v, inner, (int64_t)j, h[0], largest)) {                      \
                    h[0] = (int64_t)j;                                                         \
                    NAME##_sift(v, inner, h, k, 0, largest);                                   \
                }                                                                              \
            for (size_t n = k; n > 1; n--) {                                                   \
                int64_t t = h[0]; h[0] = h[n - 1]; h[n - 1] = t;                               \
                NAME##_sift(v, inner, h, n - 1, 0, largest);                                   \
            }                                                                                  \
            for (size_t r = 0; r < k; r++) {                                                   \
                size_t at = (o * k + r) * inner + in;                                          \
                indices[at] = h[r];                                                            \
                values[at] = v[(size_t)h[r] * inner];                                          \
            }                                                                                  \
        }                                                                                      \
}

#define NEVER_NAN(v) ((void)(v), false)
#define FLOAT_NAN(v) isnan(v)
DEFINE_TOPK(topk_f32, float, FLOAT_NAN)
DEFINE_TOPK(topk_f64, double, FLOAT_NAN)
DEFINE_TOPK(topk_i8, int8_t, NEVER_NAN)
DEFINE_TOPK(topk_i16, int16_t, NEVER_NAN)
DEFINE_TOPK(topk_i32, int32_t, NEVER_NAN)
DEFINE_TOPK(topk_i64, int64_t, NEVER_NAN)
DEFINE_TOPK(topk_u8, uint8_t, NEVER_NAN)
DEFINE_TOPK(topk_u16, uint16_t, NEVER_NAN)
DEFINE_TOPK(topk_u32, uint32_t, NEVER_NAN)
DEFINE_TOPK(topk_u64, uint64_t, NEVER_NAN)

void topk_forward(RtDType dt, void *values, int64_t *indices, const void *x, size_t outer, size_t axis_dim,
                  size_t inner, size_t k, bool largest, void *work)
{
    if (k > axis_dim)
        k = axis_dim;
    if (k == 0)
        return;
    int64_t *h = work;
    switch (dt) {
    case RT_FLOAT: topk_f32(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_DOUBLE: topk_f64(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_INT8: topk_i8(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_INT16: topk_i16(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_INT32: topk_i32(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_INT64: topk_i64(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_UINT8: topk_u8(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_UINT16: topk_u16(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_UINT32: topk_u32(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    case RT_UINT64: topk_u64(values, indices, x, outer, axis_dim, inner, k, largest, h); break;
    default: break;
    }
}

/* ------------------------------------------------------------------------ backward */

void pad_backward(float *dx, const size_t *xdims, const float *dy, const size_t *ydims, int rank,
                  const int64_t *pads_begin, PadMode mode)
{
    size_t xst[RT_MAX_RANK], idx[RT_MAX_RANK] = {0};
    dense_strides(rank, xdims, xst);
    memset(dx, 0, product(rank, xdims) * sizeof *dx);
    size_t total = product(rank, ydims);
    /* serial, in y order: several y elements read one x element, so their sum must not race */
    for (size_t i = 0; i < total; i++) {
        size_t off = 0, src;
        bool inside = true;
        for (int d = 0; inside && d < rank; d++) {
            inside = pad_source((int64_t)idx[d] - pads_begin[d], xdims[d], mode, &src);
            off += src * xst[d];
        }
        if (inside)
            dx[off] += dy[i];
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < ydims[d])
                break;
            idx[d] = 0;
        }
    }
}

void slice_backward(float *dx, const float *dy, int rank, const size_t *xdims, const int64_t *starts,
                    const int64_t *steps, const size_t *ydims)
{
    size_t xst[RT_MAX_RANK], idx[RT_MAX_RANK] = {0};
    dense_strides(rank, xdims, xst);
    memset(dx, 0, product(rank, xdims) * sizeof *dx);
    size_t total = product(rank, ydims);
    if (total == 0)
        return;
    int64_t base = 0;
    for (int d = 0; d < rank; d++)
        base += starts[d] * (int64_t)xst[d];
    size_t n = rank ? ydims[rank - 1] : 1;
    int64_t step = rank ? steps[rank - 1] * (int64_t)xst[rank - 1] : 0;
    for (size_t i = 0; i < total; i += n) {
        int64_t off = base;
        for (int d = 0; d < rank - 1; d++)
            off += (int64_t)idx[d] * steps[d] * (int64_t)xst[d];
        for (size_t k = 0; k < n; k++)
            dx[off + (int64_t)k * step] = dy[i + k];
        for (int d = rank - 2; d >= 0; d--) {   /* next row index, last dim excluded */
            if (++idx[d] < ydims[d])
                break;
            idx[d] = 0;
        }
    }
}

void gather_backward(float *dx, const float *dy, size_t outer, size_t axis_dim, size_t inner, RtDType index_dt,
                     const void *indices, size_t n_indices)
{
    enum { COLS = 256 };
    size_t blocks = (inner + COLS - 1) / COLS;
    memset(dx, 0, outer * axis_dim * inner * sizeof *dx);
    /* each (outer, column block) is one task adding the rows in index order: deterministic sums */
    #pragma omp parallel for schedule(static) if (outer * n_indices * inner >= PAR_MIN)
    for (size_t t = 0; t < outer * blocks; t++) {
        size_t o = t / blocks, c0 = t % blocks * COLS, w = inner - c0 < COLS ? inner - c0 : COLS;
        float *dst = dx + o * axis_dim * inner + c0;
        const float *src = dy + o * n_indices * inner + c0;
        for (size_t j = 0; j < n_indices; j++) {
            int64_t i = load_index(index_dt, indices, j);
            if (!resolve_index(&i, axis_dim))
                continue;
            float *row = dst + (size_t)i * inner;
            const float *g = src + j * inner;
            for (size_t k = 0; k < w; k++)
                row[k] += g[k];
        }
    }
}
