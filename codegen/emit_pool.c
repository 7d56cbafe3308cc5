/* emit_pool.c - emitters of the pool family on kernels/pool.c: MaxPool (with its optional Indices),
 * AveragePool, LpPool and the global pools. Windows come from emit_conv.c's cg_window.
 * float32 kernels; other float types run in float32 copies (EM_F32), and so do 8/16-bit integers
 * for the max pools (exact).
 *
 * Backward, below the forward emitters: emitters of the pool family's backward ops, onnxtune.MaxPoolGrad,
 * LpPoolGrad and AveragePoolGrad, on kernels/pool.c's maxpool_backward / lppool_backward / avgpool_backward.
 * The window is the forward pool's (explicit pads, ceil_mode); the global pools' gradients need no emitter
 * of their own (MaxPoolGrad / LpPoolGrad over the whole plane, or Mul + Expand). float32 kernels (others
 * through EM_F32). */
#include "emit.h"

#include <string.h>

static Status emit_pool(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    SpatialWindow win;
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (!cg_window(n, x, y, NULL, false, &win))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    long long batch = (long long)x->shape.dim[0], c = (long long)x->shape.dim[1];
    cg_emit_window(cg, &win);
    if (strcmp(n->op_type, "MaxPool") == 0) {
        const Value *idx = n->noutputs > 1 ? n->outputs[1] : NULL;
        if (idx && cg_unused(cg, idx))
            idx = NULL;
        if (cg_blocked(cg, x)) { /* codegen/layout.c: then y is blocked too and idx unused */
            cg_line(cg, "maxpool_forward_blocked(%s, %s, %lld, %lld, &win); /* nChw8c */", cg_ptr(cg, y),
                    cg_ptr(cg, x), batch, c);
            return ST_OK;
        }
        cg_line(cg, "maxpool_forward(%s, %s, %s, %lld, %lld, &win);", cg_ptr(cg, y), cg_ptr_or_null(cg, idx),
                cg_ptr(cg, x), batch, c);
        if (idx && node_attr_int(n, "storage_order", 0) != 0)
            cg_line(cg, "maxpool_indices_column_major(%s, %zu, &win); /* storage_order 1 */", cg_ptr(cg, idx),
                    cg_numel(idx));
    } else if (strcmp(n->op_type, "AveragePool") == 0) {
        cg_line(cg, "avgpool_forward(%s, %s, %lld, %lld, &win, %s);", cg_ptr(cg, y), cg_ptr(cg, x), batch, c,
                node_attr_int(n, "count_include_pad", 0) ? "true" : "false");
    } else {
        cg_line(cg, "lppool_forward(%s, %s, %lld, %lld, &win, %s);", cg_ptr(cg, y), cg_ptr(cg, x), batch, c,
                cg_float(cg, (double)node_attr_int(n, "p", 2)));
    }
    return ST_OK;
}

static Status emit_global_pool(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (x->shape.rank < 2)
        return cg_unsupported(cg, "an input of rank %d", x->shape.rank);
    long long batch = (long long)x->shape.dim[0], c = (long long)x->shape.dim[1];
    size_t spatial = 1;
    for (int i = 2; i < x->shape.rank; i++)
        spatial *= (size_t)x->shape.dim[i];
    if (strcmp(n->op_type, "GlobalAveragePool") == 0 && cg_blocked(cg, x)) { /* codegen/layout.c */
        cg_line(cg, "global_avgpool_forward_blocked(%s, %s, %lld, %lld, %zu); /* nChw8c */", cg_ptr(cg, y),
                cg_ptr(cg, x), batch, c, spatial);
        return ST_OK;
    }
    if (strcmp(n->op_type, "GlobalAveragePool") == 0 || strcmp(n->op_type, "GlobalMaxPool") == 0) {
        cg_line(cg, "%s(%s, %s, %lld, %lld, %zu);",
                strcmp(n->op_type, "GlobalAveragePool") == 0 ? "global_avgpool_forward" : "global_maxpool_forward",
                cg_ptr(cg, y), cg_ptr(cg, x), batch, c, spatial);
        return ST_OK;
    }
    /* GlobalLpPool: LpPool with the whole input as its window */
    SpatialWindow win = {.nd = (size_t)x->shape.rank - 2};
    if (win.nd < 1 || win.nd > RT_MAX_SPATIAL)
        return cg_unsupported(cg, "1 to %d spatial dims", RT_MAX_SPATIAL);
    for (size_t i = 0; i < win.nd; i++) {
        win.in[i] = win.kernel[i] = (size_t)x->shape.dim[2 + i];
        win.out[i] = win.stride[i] = win.dilation[i] = 1;
    }
    cg_emit_window(cg, &win);
    cg_line(cg, "lppool_forward(%s, %s, %lld, %lld, &win, %s);", cg_ptr(cg, y), cg_ptr(cg, x), batch, c,
            cg_float(cg, (double)node_attr_int(n, "p", 2)));
    return ST_OK;
}

const Emitter pool_emitters[] = {
    EMIT("MaxPool", emit_pool, NULL, EM_F32 | EM_INT8),
    EMIT("AveragePool", emit_pool, NULL, EM_F32),
    EMIT("LpPool", emit_pool, NULL, EM_F32),
    EMIT("GlobalAveragePool", emit_global_pool, NULL, EM_F32),
    EMIT("GlobalMaxPool", emit_global_pool, NULL, EM_F32 | EM_INT8),
    EMIT("GlobalLpPool", emit_global_pool, NULL, EM_F32),
    {0},
};

/* ======================================================================== backward */

/* MaxPoolGrad(dY, X), LpPoolGrad(dY, X) -> dX */
static Status emit_maxpool_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1], *dx = n->outputs[0];
    SpatialWindow win;
    if (cg_dtype(cg, dy) != DT_FLOAT || cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (!cg_window(n, x, dy, NULL, false, &win))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &win);
    if (strcmp(n->op_type, "LpPoolGrad") == 0)
        cg_line(cg, "lppool_backward(%s, %s, %s, %lld, %lld, &win, %s);", cg_ptr(cg, dx), cg_ptr(cg, dy),
                cg_ptr(cg, x), (long long)x->shape.dim[0], (long long)x->shape.dim[1],
                cg_float(cg, (double)node_attr_int(n, "p", 2)));
    else
        cg_line(cg, "maxpool_backward(%s, %s, %s, %lld, %lld, &win);", cg_ptr(cg, dx), cg_ptr(cg, dy), cg_ptr(cg, x),
                (long long)x->shape.dim[0], (long long)x->shape.dim[1]);
    return ST_OK;
}

/* AveragePoolGrad(dY) -> dX (shape: attribute input_shape) */
static Status emit_avgpool_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *dx = n->outputs[0];
    SpatialWindow win;
    if (cg_dtype(cg, dy) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(dy->dtype));
    if (!cg_window(n, dx, dy, NULL, false, &win))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &win);
    cg_line(cg, "avgpool_backward(%s, %s, %lld, %lld, &win, %s);", cg_ptr(cg, dx), cg_ptr(cg, dy),
            (long long)dx->shape.dim[0], (long long)dx->shape.dim[1],
            node_attr_int(n, "count_include_pad", 0) ? "true" : "false");
    return ST_OK;
}

const Emitter pool_grad_emitters[] = {
    EMIT_ONNXTUNE("MaxPoolGrad", emit_maxpool_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("LpPoolGrad", emit_maxpool_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("AveragePoolGrad", emit_avgpool_grad, NULL, EM_F32),
    {0},
};
