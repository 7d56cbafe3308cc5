/* emit_shape.c - emitters of the shape family on kernels/movement.c, resize.c and elementwise.c
 * (Expand): views (Reshape, Flatten, Squeeze, Unsqueeze, Identity: no code), copies by index
 * (Transpose, Concat, Split, Slice, Gather*, Scatter*, Pad, Tile, DepthToSpace, ...), generators
 * (Shape, Size, ConstantOfShape, Range, EyeLike, OneHot) and Resize. Index arithmetic that depends
 * on constants (Slice starts, Pad pads, Tile repeats) is resolved here; data-dependent ops (NonZero)
 * have no emitter. Copy kernels take the element size, so every dtype works.
 *
 * Backward, below the forward emitters: emitters of the shape family's backward ops (onnxtune domain):
 * SliceGrad on slice_backward, PadGrad on pad_backward and GatherGrad on gather_backward, float32. The
 * other shape gradients are standard ops (Transpose, Slice, Pad, Concat, ReduceSum, Reshape) with their
 * own emitters. */
#include "emit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXV 64 /* entries read from a constant list input (pads, starts, ...) */

static size_t elsize(const Value *v)
{
    return dtype_size(v->dtype);
}

static const char *dims_of(Cg *cg, const Value *v)
{
    size_t d[IR_MAX_RANK];
    cg_dims(&v->shape, d);
    return cg_sizes(cg, d, (size_t)v->shape.rank);
}

static int norm_axis(int64_t axis, int rank)
{
    return (int)(axis < 0 ? axis + rank : axis);
}

/* prod(dims[0..axis)) and prod(dims(axis..rank)) */
static void outer_inner(const Value *v, int axis, size_t *outer, size_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < v->shape.rank; i++) {
        if (i < axis)
            *outer *= (size_t)v->shape.dim[i];
        else if (i > axis)
            *inner *= (size_t)v->shape.dim[i];
    }
}

static Status index_dtype(Cg *cg, const Value *idx, const char **rt)
{
    if (idx->dtype == DT_INT64)
        *rt = "RT_INT64";
    else if (idx->dtype == DT_INT32)
        *rt = "RT_INT32";
    else
        return cg_unsupported(cg, "indices of %s", dtype_name(idx->dtype));
    return ST_OK;
}

static Status emit_copy(Cg *cg, const Value *y, const Value *x)
{
    size_t bytes = 0; /* value_nbytes: Identity also copies sequences and optionals */
    if (!value_nbytes(x, &bytes))
        return cg_unsupported(cg, "'%s' has a type that is not static", x->name);
    cg_line(cg, "memcpy(%s, %s, %zu);", cg_ptr(cg, y), cg_ptr(cg, x), bytes);
    return ST_OK;
}

/* ---- views (no code; emit only runs for Identity-like copies when asked) ---- */

static Status emit_view(Cg *cg, const Node *n)
{
    return emit_copy(cg, n->outputs[0], n->inputs[0]);
}

/* ---- Transpose, Concat, Split ---- */

static Status emit_transpose(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int rank = x->shape.rank, perm[IR_MAX_RANK];
    int64_t p[IR_MAX_RANK];
    size_t np;
    if (!cg_const_ints(n, -1, "perm", p, IR_MAX_RANK, &np))
        return cg_unsupported(cg, "perm");
    for (int i = 0; i < rank; i++)
        perm[i] = np ? (int)p[i] : rank - 1 - i;
    if (np && np != (size_t)rank)
        return cg_unsupported(cg, "perm of %zu entries for rank %d", np, rank);
    if (rank <= 1)
        return emit_copy(cg, y, x);
    cg_line(cg, "transpose_forward(%zu, %s, %s, %d, %s, %s);", elsize(x), cg_ptr(cg, y), cg_ptr(cg, x), rank,
            dims_of(cg, x), cg_ints(cg, perm, (size_t)rank));
    return ST_OK;
}

static Status emit_concat(Cg *cg, const Node *n)
{
    const Value *y = n->outputs[0];
    int axis = norm_axis(node_attr_int(n, "axis", 0), y->shape.rank);
    size_t outer, inner, ad[256];
    if (n->ninputs > 256)
        return cg_unsupported(cg, "more than 256 inputs");
    outer_inner(y, axis, &outer, &inner);
    char *xs = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&xs, &len);
    if (!f)
        return diag_error(cg->d, ST_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < n->ninputs; i++) {
        const Value *x = n->inputs[i];
        if (!x)
            continue;
        ad[k] = (size_t)x->shape.dim[axis];
        fprintf(f, "%s%s", k ? ", " : "", cg_ptr(cg, x));
        k++;
    }
    fclose(f);
    cg_line(cg, "concat_forward(%zu, %s, %d, (const void *const[]){%s}, %s, %zu, %zu);", elsize(y), cg_ptr(cg, y),
            k, xs ? xs : "", cg_sizes(cg, ad, (size_t)k), outer, inner);
    free(xs);
    return ST_OK;
}

static Status emit_split(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0];
    int axis = norm_axis(node_attr_int(n, "axis", 0), x->shape.rank);
    size_t outer, inner, ad[256];
    if (n->noutputs > 256)
        return cg_unsupported(cg, "more than 256 outputs");
    outer_inner(x, axis, &outer, &inner);
    char *ys = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&ys, &len);
    if (!f)
        return diag_error(cg->d, ST_NOMEM, "out of memory");
    for (int i = 0; i < n->noutputs; i++) {
        ad[i] = (size_t)n->outputs[i]->shape.dim[axis];
        fprintf(f, "%s%s", i ? ", " : "", cg_ptr(cg, n->outputs[i]));
    }
    fclose(f);
    cg_line(cg, "split_forward(%zu, (void *const[]){%s}, %d, %s, %s, %zu, %zu);", elsize(x), ys ? ys : "",
            n->noutputs, cg_sizes(cg, ad, (size_t)n->noutputs), cg_ptr(cg, x), outer, inner);
    free(ys);
    return ST_OK;
}

/* ---- Slice ---- */

static Status emit_slice(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int rank = x->shape.rank;
    int64_t st[MAXV], en[MAXV], ax[MAXV], sp[MAXV];
    size_t ns, ne, na, nsp;
    if (!cg_const_ints(n, 1, "starts", st, MAXV, &ns) || !cg_const_ints(n, 2, "ends", en, MAXV, &ne) ||
        !cg_const_ints(n, 3, "axes", ax, MAXV, &na) || !cg_const_ints(n, 4, NULL, sp, MAXV, &nsp))
        return cg_unsupported(cg, "starts/ends/axes/steps that are not constant");
    if (ne != ns || (na && na != ns) || (nsp && nsp != ns))
        return cg_unsupported(cg, "starts/ends/axes/steps of different lengths");
    int64_t starts[IR_MAX_RANK], steps[IR_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        starts[i] = 0;
        steps[i] = 1;
    }
    for (size_t i = 0; i < ns; i++) {
        int a = norm_axis(na ? ax[i] : (int64_t)i, rank);
        if (a < 0 || a >= rank)
            return cg_unsupported(cg, "axis %lld", (long long)(na ? ax[i] : (int64_t)i));
        int64_t dim = x->shape.dim[a], s = st[i], step = nsp ? sp[i] : 1;
        if (step == 0)
            return cg_unsupported(cg, "a step of 0");
        if (s < 0)
            s += dim;
        if (step > 0)
            s = s < 0 ? 0 : s > dim ? dim : s;
        else
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
        starts[a] = s;
        steps[a] = step;
    }
    if (cg_numel(y) == 0)
        return ST_OK;
    cg_line(cg, "slice_forward(%zu, %s, %s, %d, %s, %s, %s, %s);", elsize(x), cg_ptr(cg, y), cg_ptr(cg, x), rank,
            dims_of(cg, x), cg_i64s(cg, starts, (size_t)rank), cg_i64s(cg, steps, (size_t)rank), dims_of(cg, y));
    return ST_OK;
}

/* ---- Gather, GatherElements, GatherND ---- */

static Status emit_gather(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *idx = n->inputs[1], *y = n->outputs[0];
    const char *it = NULL;
    Status s = index_dtype(cg, idx, &it);
    if (s)
        return s;
    int axis = norm_axis(node_attr_int(n, "axis", 0), x->shape.rank);
    if (axis < 0 || axis >= x->shape.rank)
        return cg_unsupported(cg, "axis %lld", (long long)node_attr_int(n, "axis", 0));
    size_t outer, inner;
    outer_inner(x, axis, &outer, &inner);
    cg_line(cg, "gather_forward(%zu, %s, %s, %zu, %lld, %zu, %s, %s, %zu);", elsize(x), cg_ptr(cg, y), cg_ptr(cg, x),
            outer, (long long)x->shape.dim[axis], inner, it, cg_ptr(cg, idx), cg_numel(idx));
    return ST_OK;
}

static Status emit_gather_elements(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *idx = n->inputs[1], *y = n->outputs[0];
    const char *it = NULL;
    Status s = index_dtype(cg, idx, &it);
    if (s)
        return s;
    int axis = norm_axis(node_attr_int(n, "axis", 0), x->shape.rank);
    cg_line(cg, "gather_elements_forward(%zu, %s, %s, %s, %d, %d, %s, %s, %s);", elsize(x), cg_ptr(cg, y),
            cg_ptr(cg, x), dims_of(cg, x), x->shape.rank, axis, it, cg_ptr(cg, idx), dims_of(cg, idx));
    return ST_OK;
}

static Status emit_gather_nd(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *idx = n->inputs[1], *y = n->outputs[0];
    const char *it = NULL;
    Status s = index_dtype(cg, idx, &it);
    if (s)
        return s;
    int b = (int)node_attr_int(n, "batch_dims", 0), ir = idx->shape.rank;
    if (ir < 1)
        return cg_unsupported(cg, "indices of rank 0");
    int k = (int)idx->shape.dim[ir - 1];
    if (b < 0 || b + k > x->shape.rank || b >= ir)
        return cg_unsupported(cg, "batch_dims %d with %d-tuples", b, k);
    size_t batch = 1, slice = 1, tuples = 1, idims[IR_MAX_RANK];
    for (int i = 0; i < b; i++)
        batch *= (size_t)x->shape.dim[i];
    for (int i = 0; i < k; i++)
        idims[i] = (size_t)x->shape.dim[b + i];
    for (int i = b + k; i < x->shape.rank; i++)
        slice *= (size_t)x->shape.dim[i];
    for (int i = b; i < ir - 1; i++)
        tuples *= (size_t)idx->shape.dim[i];
    cg_line(cg, "gather_nd_forward(%zu, %s, %s, %zu, %d, %s, %zu, %s, %s, %zu);", elsize(x), cg_ptr(cg, y),
            cg_ptr(cg, x), batch, k, k ? cg_sizes(cg, idims, (size_t)k) : "NULL", slice, it, cg_ptr(cg, idx), tuples);
    return ST_OK;
}

/* ---- ScatterElements, Scatter, ScatterND ---- */

static Status reduction(Cg *cg, const Node *n, const char **red)
{
    const char *r = node_attr_string(n, "reduction", "none");
    if (strcmp(r, "none") == 0)
        *red = "SCATTER_NONE";
    else if (strcmp(r, "add") == 0)
        *red = "SCATTER_ADD";
    else if (strcmp(r, "mul") == 0)
        *red = "SCATTER_MUL";
    else if (strcmp(r, "max") == 0)
        *red = "SCATTER_MAX";
    else if (strcmp(r, "min") == 0)
        *red = "SCATTER_MIN";
    else
        return cg_unsupported(cg, "reduction '%s'", r);
    return ST_OK;
}

static Status scatter_dtype(Cg *cg, const Value *x)
{
    if (x->dtype == DT_FLOAT16 || x->dtype == DT_BFLOAT16 || !strcmp(cg_rtdtype(x->dtype), "RT_UNDEFINED"))
        return cg_unsupported(cg, "data of %s", dtype_name(x->dtype));
    return ST_OK;
}

static Status emit_scatter_elements(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *idx = n->inputs[1], *upd = n->inputs[2], *y = n->outputs[0];
    const char *it = NULL, *red = NULL;
    Status s = index_dtype(cg, idx, &it);
    if (s || (s = reduction(cg, n, &red)) || (s = scatter_dtype(cg, x)))
        return s;
    int axis = norm_axis(node_attr_int(n, "axis", 0), x->shape.rank);
    cg_line(cg, "scatter_elements_forward(%s, %s, %s, %s, %d, %d, %s, %s, %s, %s, %s);", cg_rtdtype(x->dtype),
            cg_ptr(cg, y), cg_ptr(cg, x), dims_of(cg, x), x->shape.rank, axis, it, cg_ptr(cg, idx), cg_ptr(cg, upd),
            dims_of(cg, idx), red);
    return ST_OK;
}

static Status emit_scatter_nd(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *idx = n->inputs[1], *upd = n->inputs[2], *y = n->outputs[0];
    const char *it = NULL, *red = NULL;
    Status s = index_dtype(cg, idx, &it);
    if (s || (s = reduction(cg, n, &red)) || (s = scatter_dtype(cg, x)))
        return s;
    int ir = idx->shape.rank;
    if (ir < 1)
        return cg_unsupported(cg, "indices of rank 0");
    int k = (int)idx->shape.dim[ir - 1];
    if (k > x->shape.rank)
        return cg_unsupported(cg, "%d-tuples into rank %d", k, x->shape.rank);
    size_t slice = 1, tuples = 1, idims[IR_MAX_RANK];
    for (int i = 0; i < k; i++)
        idims[i] = (size_t)x->shape.dim[i];
    for (int i = k; i < x->shape.rank; i++)
        slice *= (size_t)x->shape.dim[i];
    for (int i = 0; i < ir - 1; i++)
        tuples *= (size_t)idx->shape.dim[i];
    cg_line(cg, "scatter_nd_forward(%s, %s, %s, %d, %s, %zu, %s, %s, %s, %zu, %s);", cg_rtdtype(x->dtype),
            cg_ptr(cg, y), cg_ptr(cg, x), k, k ? cg_sizes(cg, idims, (size_t)k) : "NULL", slice, it, cg_ptr(cg, idx),
            cg_ptr(cg, upd), tuples, red);
    return ST_OK;
}

/* ---- Pad, Expand, Tile ---- */

static Status emit_pad(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *val = node_input(n, 2), *y = n->outputs[0];
    int rank = x->shape.rank;
    int64_t pads[MAXV], axes[MAXV], begin[IR_MAX_RANK] = {0};
    size_t np, na;
    if (!cg_const_ints(n, 1, "pads", pads, MAXV, &np) || !cg_const_ints(n, 3, NULL, axes, MAXV, &na))
        return cg_unsupported(cg, "pads/axes that are not constant");
    size_t count = na ? na : (size_t)rank;
    if (np != 2 * count)
        return cg_unsupported(cg, "%zu pads for %zu axes", np, count);
    for (size_t i = 0; i < count; i++) {
        int a = norm_axis(na ? axes[i] : (int64_t)i, rank);
        if (a < 0 || a >= rank)
            return cg_unsupported(cg, "axis %lld", (long long)axes[i]);
        begin[a] = pads[i];
    }
    const char *mode = node_attr_string(n, "mode", "constant"), *m;
    if (strcmp(mode, "constant") == 0)
        m = "PAD_CONSTANT";
    else if (strcmp(mode, "reflect") == 0)
        m = "PAD_REFLECT";
    else if (strcmp(mode, "edge") == 0)
        m = "PAD_EDGE";
    else if (strcmp(mode, "wrap") == 0)
        m = "PAD_WRAP";
    else
        return cg_unsupported(cg, "mode '%s'", mode);
    if (val && (val->dtype != x->dtype || cg_numel(val) != 1))
        val = NULL;
    if (cg_numel(y) == 0)
        return ST_OK;
    if (rank == 0)
        return emit_copy(cg, y, x);
    cg_line(cg, "pad_forward(%zu, %s, %s, %s, %s, %d, %s, %s, %s);", elsize(x), cg_ptr(cg, y), dims_of(cg, y),
            cg_ptr(cg, x), dims_of(cg, x), rank, cg_i64s(cg, begin, (size_t)rank), m, cg_ptr_or_null(cg, val));
    return ST_OK;
}

static Status emit_expand(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t yd[IR_MAX_RANK], xd[IR_MAX_RANK], st[IR_MAX_RANK];
    cg_dims(&y->shape, yd);
    cg_dims(&x->shape, xd);
    rt_broadcast_strides(y->shape.rank, yd, x->shape.rank, xd, st);
    cg_line(cg, "expand_forward(%zu, %s, %s, %d, %s, %s);", elsize(x), cg_ptr(cg, y), cg_ptr(cg, x), y->shape.rank,
            cg_sizes(cg, yd, (size_t)y->shape.rank), cg_sizes(cg, st, (size_t)y->shape.rank));
    return ST_OK;
}

static Status emit_tile(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int64_t r[MAXV];
    size_t nr, rep[IR_MAX_RANK];
    if (!cg_const_ints(n, 1, NULL, r, MAXV, &nr) || nr != (size_t)x->shape.rank)
        return cg_unsupported(cg, "repeats that are not constant");
    for (size_t i = 0; i < nr; i++)
        rep[i] = (size_t)r[i];
    if (cg_numel(y) == 0)
        return ST_OK;
    if (nr == 0)
        return emit_copy(cg, y, x);
    cg_line(cg, "tile_forward(%zu, %s, %s, %s, %d, %s);", elsize(x), cg_ptr(cg, y), cg_ptr(cg, x), dims_of(cg, x),
            x->shape.rank, cg_sizes(cg, rep, nr));
    return ST_OK;
}

/* ---- DepthToSpace, SpaceToDepth, Trilu, CumSum ---- */

static Status emit_depth_space(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int64_t b = node_attr_int(n, "blocksize", 0);
    if (x->shape.rank != 4 || b < 1)
        return cg_unsupported(cg, "an input of rank %d", x->shape.rank);
    const int64_t *d = x->shape.dim;
    if (strcmp(n->op_type, "DepthToSpace") == 0)
        cg_line(cg, "depth_to_space_forward(%zu, %s, %s, %lld, %lld, %lld, %lld, %lld, %s);", elsize(x),
                cg_ptr(cg, y), cg_ptr(cg, x), (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3],
                (long long)b, strcmp(node_attr_string(n, "mode", "DCR"), "CRD") == 0 ? "true" : "false");
    else
        cg_line(cg, "space_to_depth_forward(%zu, %s, %s, %lld, %lld, %lld, %lld, %lld);", elsize(x), cg_ptr(cg, y),
                cg_ptr(cg, x), (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3], (long long)b);
    return ST_OK;
}

static Status emit_trilu(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int rank = x->shape.rank;
    double k = 0;
    if (node_input(n, 1) && !cg_const_scalar(n, 1, &k))
        return cg_unsupported(cg, "k that is not constant");
    if (rank < 2)
        return cg_unsupported(cg, "an input of rank %d", rank);
    size_t batch = 1;
    for (int i = 0; i < rank - 2; i++)
        batch *= (size_t)x->shape.dim[i];
    if (cg_numel(y) == 0)
        return ST_OK;
    cg_line(cg, "trilu_forward(%zu, %s, %s, %zu, %lld, %lld, %lld, %s);", elsize(x), cg_ptr(cg, y), cg_ptr(cg, x),
            batch, (long long)x->shape.dim[rank - 2], (long long)x->shape.dim[rank - 1], (long long)k,
            node_attr_int(n, "upper", 1) ? "true" : "false");
    return ST_OK;
}

static Status emit_cumsum(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    double a;
    if (!cg_const_scalar(n, 1, &a))
        return cg_unsupported(cg, "axis that is not constant");
    int axis = norm_axis((int64_t)a, x->shape.rank);
    if (axis < 0 || axis >= x->shape.rank)
        return cg_unsupported(cg, "axis %lld", (long long)a);
    DType t = x->dtype;
    if (t != DT_FLOAT && t != DT_DOUBLE && t != DT_INT32 && t != DT_INT64 && t != DT_UINT32 && t != DT_UINT64)
        return cg_unsupported(cg, "CumSum of %s", dtype_name(t));
    size_t outer, inner;
    outer_inner(x, axis, &outer, &inner);
    cg_line(cg, "cumsum_forward(%s, %s, %s, %zu, %lld, %zu, %s, %s);", cg_rtdtype(t), cg_ptr(cg, y), cg_ptr(cg, x),
            outer, (long long)x->shape.dim[axis], inner, node_attr_int(n, "exclusive", 0) ? "true" : "false",
            node_attr_int(n, "reverse", 0) ? "true" : "false");
    return ST_OK;
}

/* ---- generators: Shape, Size, ConstantOfShape, Range, EyeLike, OneHot ---- */

/* y = the int64 values v[count] */
static void emit_i64_values(Cg *cg, const Value *y, const int64_t *v, size_t count)
{
    if (count == 0)
        return;
    cg_line(cg, "static const int64_t v[%zu] = %s;", count, cg_i64s(cg, v, count) + strlen("(const int64_t[])"));
    cg_line(cg, "memcpy(%s, v, sizeof v);", cg_ptr(cg, y));
}

static Status emit_shape_of(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int rank = x->shape.rank;
    int64_t start = node_attr_int(n, "start", 0), end = node_attr_int(n, "end", rank);
    if (start < 0)
        start += rank;
    if (end < 0)
        end += rank;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < 0 ? 0 : end > rank ? rank : end;
    int64_t v[IR_MAX_RANK];
    size_t count = 0;
    for (int64_t i = start; i < end; i++)
        v[count++] = x->shape.dim[i];
    if (count != cg_numel(y))
        return cg_unsupported(cg, "internal: %zu dims for an output of %zu", count, cg_numel(y));
    emit_i64_values(cg, y, v, count);
    return ST_OK;
}

static Status emit_size(Cg *cg, const Node *n)
{
    int64_t v = (int64_t)cg_numel(n->inputs[0]);
    emit_i64_values(cg, n->outputs[0], &v, 1);
    return ST_OK;
}

static Status emit_constant_of_shape(Cg *cg, const Node *n)
{
    const Value *y = n->outputs[0];
    const Attr *a = node_attr(n, "value");
    size_t es = elsize(y), count = cg_numel(y);
    const unsigned char *bytes = a && a->type == AT_TENSOR && a->t && a->t->numel == 1 ? a->t->data : NULL;
    bool zero = true;
    for (size_t i = 0; bytes && i < es; i++)
        zero &= bytes[i] == 0;
    if (count == 0)
        return ST_OK;
    if (zero) {
        cg_line(cg, "memset(%s, 0, %zu);", cg_ptr(cg, y), count * es);
        return ST_OK;
    }
    char lit[64 * 5] = "";
    for (size_t i = 0; i < es; i++)
        snprintf(lit + strlen(lit), sizeof lit - strlen(lit), "%s%u", i ? ", " : "", bytes[i]);
    cg_line(cg, "static const unsigned char value[%zu] = {%s};", es, lit);
    cg_line(cg, "for (size_t i = 0; i < %zu; i++)", count);
    cg_line(cg, "    memcpy((unsigned char *)%s + i * %zu, value, %zu);", cg_ptr(cg, y), es, es);
    return ST_OK;
}

static Status emit_range(Cg *cg, const Node *n)
{
    const Value *start = n->inputs[0], *delta = n->inputs[2], *y = n->outputs[0];
    DType t = y->dtype;
    if (t != DT_FLOAT && t != DT_DOUBLE && t != DT_INT16 && t != DT_INT32 && t != DT_INT64)
        return cg_unsupported(cg, "Range of %s", dtype_name(t));
    if (cg_numel(y) == 0)
        return ST_OK;
    cg_line(cg, "range_forward(%s, %s, %s, %s, %zu);", cg_rtdtype(t), cg_ptr(cg, y), cg_ptr(cg, start),
            cg_ptr(cg, delta), cg_numel(y));
    return ST_OK;
}

static Status emit_eyelike(Cg *cg, const Node *n)
{
    const Value *y = n->outputs[0];
    if (y->shape.rank != 2)
        return cg_unsupported(cg, "rank %d", y->shape.rank);
    if (!strcmp(cg_rtdtype(y->dtype), "RT_UNDEFINED"))
        return cg_unsupported(cg, "EyeLike of %s", dtype_name(y->dtype));
    cg_line(cg, "eyelike_forward(%s, %s, %lld, %lld, %lld);", cg_rtdtype(y->dtype), cg_ptr(cg, y),
            (long long)y->shape.dim[0], (long long)y->shape.dim[1], (long long)node_attr_int(n, "k", 0));
    return ST_OK;
}

static Status emit_onehot(Cg *cg, const Node *n)
{
    const Value *idx = n->inputs[0], *values = n->inputs[2], *y = n->outputs[0];
    int yr = y->shape.rank;
    int axis = norm_axis(node_attr_int(n, "axis", -1), yr);
    if (axis < 0 || axis >= yr)
        return cg_unsupported(cg, "axis %lld", (long long)node_attr_int(n, "axis", -1));
    if (!strcmp(cg_rtdtype(idx->dtype), "RT_UNDEFINED") || idx->dtype == DT_BOOL || idx->dtype == DT_FLOAT16 ||
        idx->dtype == DT_BFLOAT16 || !strcmp(cg_rtdtype(y->dtype), "RT_UNDEFINED"))
        return cg_unsupported(cg, "OneHot of %s into %s", dtype_name(idx->dtype), dtype_name(y->dtype));
    size_t outer = 1, inner = 1;
    for (int i = 0; i < idx->shape.rank; i++)
        *(i < axis ? &outer : &inner) *= (size_t)idx->shape.dim[i];
    cg_line(cg, "onehot_forward(%s, %s, %s, %s, %zu, %lld, %zu, %s);", cg_rtdtype(y->dtype), cg_ptr(cg, y),
            cg_rtdtype(idx->dtype), cg_ptr(cg, idx), outer, (long long)y->shape.dim[axis], inner, cg_ptr(cg, values));
    return ST_OK;
}

/* ---- Compress, TopK ---- */

static Status emit_compress(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *cond = n->inputs[1], *y = n->outputs[0];
    const Attr *a = node_attr(n, "axis");
    size_t outer = 1, inner = 1, len = cg_numel(x);
    if (cond->dtype != DT_BOOL)
        return cg_unsupported(cg, "a condition of %s", dtype_name(cond->dtype));
    if (a) {
        int axis = norm_axis(a->i, x->shape.rank);
        if (axis < 0 || axis >= x->shape.rank)
            return cg_unsupported(cg, "axis %lld", (long long)a->i);
        outer_inner(x, axis, &outer, &inner);
        len = (size_t)x->shape.dim[axis];
    }
    cg_line(cg, "compress_forward(%zu, %s, %s, %zu, %zu, %zu, %s, %zu);", elsize(x), cg_ptr(cg, y), cg_ptr(cg, x),
            outer, len, inner, cg_ptr(cg, cond), cg_numel(cond));
    return ST_OK;
}

static size_t scratch_topk(const Node *n)
{
    const Value *x = n->inputs[0];
    int axis = norm_axis(node_attr_int(n, "axis", -1), x->shape.rank);
    return axis >= 0 && axis < x->shape.rank ? topk_workspace((size_t)x->shape.dim[axis]) : 0;
}

static Status emit_topk(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *vals = n->outputs[0], *idx = n->outputs[1];
    int axis = norm_axis(node_attr_int(n, "axis", -1), x->shape.rank);
    if (axis < 0 || axis >= x->shape.rank)
        return cg_unsupported(cg, "axis %lld", (long long)node_attr_int(n, "axis", -1));
    DType t = cg_dtype(cg, x);
    if (t == DT_BOOL || !strcmp(cg_rtdtype(t), "RT_UNDEFINED"))
        return cg_unsupported(cg, "TopK of %s", dtype_name(x->dtype));
    size_t outer, inner;
    outer_inner(x, axis, &outer, &inner);
    cg_line(cg, "topk_forward(%s, %s, %s, %s, %zu, %lld, %zu, %lld, %s, %s);", cg_rtdtype(t), cg_ptr(cg, vals),
            cg_ptr(cg, idx), cg_ptr(cg, x), outer, (long long)x->shape.dim[axis], inner,
            (long long)vals->shape.dim[axis], node_attr_int(n, "largest", 1) ? "true" : "false", cg_scratch(cg));
    return ST_OK;
}

/* ---- Resize ---- */

static bool resize_params(const Node *n, ResizeParams *p, const char **why)
{
    memset(p, 0, sizeof *p);
    const char *mode = node_attr_string(n, "mode", "nearest");
    const char *ct = node_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    const char *nm = node_attr_string(n, "nearest_mode", "round_prefer_floor");
    *why = NULL;
    if (node_attr_int(n, "antialias", 0))
        *why = "antialias";
    if (node_attr(n, "axes"))
        *why = "the axes attribute";
    if (strcmp(node_attr_string(n, "keep_aspect_ratio_policy", "stretch"), "stretch") != 0)
        *why = "keep_aspect_ratio_policy";
    p->mode = !strcmp(mode, "linear") ? RESIZE_LINEAR : !strcmp(mode, "cubic") ? RESIZE_CUBIC : RESIZE_NEAREST;
    static const struct { const char *name; ResizeCoord c; } coords[] = {
        {"half_pixel", RESIZE_HALF_PIXEL}, {"pytorch_half_pixel", RESIZE_PYTORCH_HALF_PIXEL},
        {"align_corners", RESIZE_ALIGN_CORNERS}, {"asymmetric", RESIZE_ASYMMETRIC},
        {"tf_half_pixel_for_nn", RESIZE_TF_HALF_PIXEL_FOR_NN}, {"tf_crop_and_resize", RESIZE_TF_CROP_AND_RESIZE},
        {"half_pixel_symmetric", RESIZE_HALF_PIXEL_SYMMETRIC},
    };
    bool found = false;
    for (size_t i = 0; i < sizeof coords / sizeof coords[0]; i++)
        if (strcmp(coords[i].name, ct) == 0) {
            p->coord = coords[i].c;
            found = true;
        }
    if (!found)
        *why = "this coordinate_transformation_mode";
    p->nearest = !strcmp(nm, "round_prefer_ceil") ? RESIZE_ROUND_PREFER_CEIL
                 : !strcmp(nm, "floor")           ? RESIZE_FLOOR
                 : !strcmp(nm, "ceil")            ? RESIZE_CEIL
                                                  : RESIZE_ROUND_PREFER_FLOOR;
    p->cubic_coeff_a = node_attr_float(n, "cubic_coeff_a", -0.75f);
    p->exclude_outside = node_attr_int(n, "exclude_outside", 0) != 0;
    p->extrapolation_value = node_attr_float(n, "extrapolation_value", 0.0f);
    return *why == NULL;
}

/* The sampled side: Resize's output, ResizeGrad's dY input. */
static const Value *resize_sampled(const Node *n)
{
    return strcmp(n->op_type, "ResizeGrad") == 0 ? n->inputs[0] : n->outputs[0];
}

static size_t scratch_resize(const Node *n)
{
    ResizeParams p;
    const char *why;
    const Value *y = resize_sampled(n);
    if (!resize_params(n, &p, &why) || y->shape.rank > IR_MAX_RANK)
        return 0;
    size_t yd[IR_MAX_RANK];
    cg_dims(&y->shape, yd);
    return resize_workspace(y->shape.rank, yd, &p);
}

static const char *doubles(Cg *cg, const double *v, size_t n)
{
    char buf[64 * IR_MAX_RANK] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%.17g", i ? ", " : "", v[i]);
    return cg_fmt(cg, "(const double[]){%s}", buf);
}

/* Resize(X, roi, scales, sizes) -> Y, and ResizeGrad(dY, roi, scales) -> dX: the same parameters with the
 * roles of the two tensors swapped (x: X or dX, y: Y or dY). */
static Status emit_resize(Cg *cg, const Node *n)
{
    bool grad = strcmp(n->op_type, "ResizeGrad") == 0;
    const Value *x = grad ? n->outputs[0] : n->inputs[0], *roi = node_input(n, 1), *scales = node_input(n, 2),
                *y = resize_sampled(n);
    ResizeParams p;
    const char *why;
    int rank = x->shape.rank;
    if (!resize_params(n, &p, &why))
        return cg_unsupported(cg, "%s", why);
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "Resize of %s", dtype_name(x->dtype));
    if (rank < 1)
        return cg_unsupported(cg, "a scalar input");
    double sc[IR_MAX_RANK];
    for (int i = 0; i < rank; i++)
        sc[i] = x->shape.dim[i] ? (double)y->shape.dim[i] / (double)x->shape.dim[i] : 1.0;
    if (scales && scales->init && scales->init->numel == (size_t)rank) {
        for (int i = 0; i < rank; i++)
            sc[i] = (double)(float)tensor_get_f64(scales->init, (size_t)i);
    } else if (scales && cg_numel(scales) > 0) {
        return cg_unsupported(cg, "scales that are not constant");
    }
    const char *roi_ptr = "NULL";
    if (p.coord == RESIZE_TF_CROP_AND_RESIZE) {
        if (!roi || cg_numel(roi) != 2 * (size_t)rank || cg_dtype(cg, roi) != DT_FLOAT)
            return cg_unsupported(cg, "tf_crop_and_resize without a float roi of 2*rank entries");
        roi_ptr = cg_ptr(cg, roi);
    }
    static const char *const modes[] = {"RESIZE_NEAREST", "RESIZE_LINEAR", "RESIZE_CUBIC"};
    static const char *const crd[] = {"RESIZE_HALF_PIXEL", "RESIZE_PYTORCH_HALF_PIXEL", "RESIZE_ALIGN_CORNERS",
                                      "RESIZE_ASYMMETRIC", "RESIZE_TF_HALF_PIXEL_FOR_NN",
                                      "RESIZE_TF_CROP_AND_RESIZE", "RESIZE_HALF_PIXEL_SYMMETRIC"};
    static const char *const near[] = {"RESIZE_ROUND_PREFER_FLOOR", "RESIZE_ROUND_PREFER_CEIL", "RESIZE_FLOOR",
                                       "RESIZE_CEIL"};
    if (cg_numel(y) == 0 && !grad)
        return ST_OK;
    cg_line(cg, "const ResizeParams p = {%s, %s, %s, %s, %s, %s, %s};", modes[p.mode], crd[p.coord], near[p.nearest],
            cg_float(cg, p.cubic_coeff_a), p.exclude_outside ? "true" : "false", cg_float(cg, p.extrapolation_value),
            roi_ptr);
    if (grad)
        cg_line(cg, "resize_backward(%s, %s, %s, %s, %d, %s, &p, %s);", cg_ptr(cg, x), dims_of(cg, x), cg_ptr(cg, y),
                dims_of(cg, y), rank, doubles(cg, sc, (size_t)rank), cg_scratch(cg));
    else
        cg_line(cg, "resize_forward(%s, %s, %s, %s, %d, %s, &p, %s);", cg_ptr(cg, y), dims_of(cg, y), cg_ptr(cg, x),
                dims_of(cg, x), rank, doubles(cg, sc, (size_t)rank), cg_scratch(cg));
    return ST_OK;
}

#define VIEW(name) EMIT(name, emit_view, NULL, EM_VIEW)

const Emitter shape_emitters[] = {
    VIEW("Reshape"), VIEW("Flatten"), VIEW("Squeeze"), VIEW("Unsqueeze"), VIEW("Identity"),
    EMIT("Transpose", emit_transpose, NULL, 0),
    EMIT("Concat", emit_concat, NULL, 0),
    EMIT("Split", emit_split, NULL, 0),
    EMIT("Slice", emit_slice, NULL, 0),
    EMIT("Gather", emit_gather, NULL, 0),
    EMIT("GatherElements", emit_gather_elements, NULL, 0),
    EMIT("GatherND", emit_gather_nd, NULL, 0),
    EMIT("ScatterElements", emit_scatter_elements, NULL, EM_INPLACE0),
    EMIT("Scatter", emit_scatter_elements, NULL, EM_INPLACE0),
    EMIT("ScatterND", emit_scatter_nd, NULL, EM_INPLACE0),
    EMIT("Pad", emit_pad, NULL, 0),
    EMIT("Expand", emit_expand, NULL, 0),
    EMIT("Tile", emit_tile, NULL, 0),
    EMIT("DepthToSpace", emit_depth_space, NULL, 0),
    EMIT("SpaceToDepth", emit_depth_space, NULL, 0),
    EMIT("Trilu", emit_trilu, NULL, 0),
    EMIT("CumSum", emit_cumsum, NULL, 0),
    EMIT("Shape", emit_shape_of, NULL, 0),
    EMIT("Size", emit_size, NULL, 0),
    EMIT("ConstantOfShape", emit_constant_of_shape, NULL, 0),
    EMIT("Range", emit_range, NULL, 0),
    EMIT("EyeLike", emit_eyelike, NULL, 0),
    EMIT("OneHot", emit_onehot, NULL, 0),
    EMIT("Compress", emit_compress, NULL, 0),
    EMIT("TopK", emit_topk, scratch_topk, EM_HALF),
    EMIT("Resize", emit_resize, scratch_resize, EM_F32),
    {0},
};

/* ======================================================================== backward */

/* dX [shape] = 0 with dY scattered back to starts + i * steps. */
static Status emit_slice_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *dx = n->outputs[0];
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)))
        return st;
    int64_t starts[IR_MAX_RANK], steps[IR_MAX_RANK];
    size_t ns, nt, xd[IR_MAX_RANK], yd[IR_MAX_RANK];
    int r = dx->shape.rank;
    if (!cg_const_ints(n, -1, "starts", starts, IR_MAX_RANK, &ns) || !cg_const_ints(n, -1, "steps", steps, IR_MAX_RANK, &nt) ||
        ns != (size_t)r || nt != (size_t)r || dy->shape.rank != r)
        return cg_unsupported(cg, "starts/steps do not match the rank %d", r);
    cg_dims(&dx->shape, xd);
    cg_dims(&dy->shape, yd);
    cg_line(cg, "slice_backward(%s, %s, %d, %s, %s, %s, %s);", cg_ptr(cg, dx), cg_ptr(cg, dy), r,
            cg_sizes(cg, xd, (size_t)r), cg_i64s(cg, starts, (size_t)r), cg_i64s(cg, steps, (size_t)r),
            cg_sizes(cg, yd, (size_t)r));
    return ST_OK;
}

/* dX [shape] = 0 plus each dY element at the X element Pad copied it from (reflect, edge). */
static Status emit_pad_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *dx = n->outputs[0];
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)))
        return st;
    int64_t begin[IR_MAX_RANK];
    size_t nb, xd[IR_MAX_RANK], yd[IR_MAX_RANK];
    int r = dx->shape.rank;
    if (!cg_const_ints(n, -1, "pads", begin, IR_MAX_RANK, &nb) || nb != (size_t)r || dy->shape.rank != r)
        return cg_unsupported(cg, "pads do not match the rank %d", r);
    const char *mode = node_attr_string(n, "mode", "reflect");
    const char *m = !strcmp(mode, "reflect") ? "PAD_REFLECT" : !strcmp(mode, "edge") ? "PAD_EDGE" : NULL;
    if (!m)
        return cg_unsupported(cg, "mode '%s'", mode);
    cg_dims(&dx->shape, xd);
    cg_dims(&dy->shape, yd);
    cg_line(cg, "pad_backward(%s, %s, %s, %s, %d, %s, %s);", cg_ptr(cg, dx), cg_sizes(cg, xd, (size_t)r),
            cg_ptr(cg, dy), cg_sizes(cg, yd, (size_t)r), r, cg_i64s(cg, begin, (size_t)r), m);
    return ST_OK;
}

/* dX [outer, axis_dim, inner] = 0, then dY's rows added at their indices. */
static Status emit_gather_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *idx = n->inputs[1], *dx = n->outputs[0];
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)))
        return st;
    if (idx->dtype != DT_INT64 && idx->dtype != DT_INT32)
        return cg_unsupported(cg, "indices of %s", dtype_name(idx->dtype));
    int r = dx->shape.rank;
    int64_t axis = node_attr_int(n, "axis", 0);
    if (axis < 0 || axis >= r)
        return cg_unsupported(cg, "axis %lld of a rank %d tensor", (long long)axis, r);
    size_t outer = 1, inner = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis)
            outer *= (size_t)dx->shape.dim[i];
        else if (i > axis)
            inner *= (size_t)dx->shape.dim[i];
    }
    cg_line(cg, "gather_backward(%s, %s, %zu, %zu, %zu, %s, %s, %zu);", cg_ptr(cg, dx), cg_ptr(cg, dy), outer,
            (size_t)dx->shape.dim[axis], inner, cg_rtdtype(idx->dtype), cg_ptr(cg, idx), cg_numel(idx));
    return ST_OK;
}

const Emitter shape_grad_emitters[] = {
    EMIT_ONNXTUNE("SliceGrad", emit_slice_grad, NULL, 0),
    EMIT_ONNXTUNE("GatherGrad", emit_gather_grad, NULL, 0),
    EMIT_ONNXTUNE("PadGrad", emit_pad_grad, NULL, 0),
    EMIT_ONNXTUNE("ResizeGrad", emit_resize, scratch_resize, EM_F32),
    {0},
};
