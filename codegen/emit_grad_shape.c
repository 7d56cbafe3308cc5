/* emit_grad_shape.c - emitters of the shape family's backward ops (onnxtune domain): SliceGrad on
 * slice_backward, PadGrad on pad_backward and GatherGrad on gather_backward, float32. The other shape gradients are standard
 * ops (Transpose, Slice, Pad, Concat, ReduceSum, Reshape) with their own emitters. */
#include "emit.h"

#include <string.h>

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
    {0},
};
