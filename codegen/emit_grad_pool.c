/* emit_grad_pool.c - emitters of the pool family's backward ops, onnxtune.MaxPoolGrad and
 * AveragePoolGrad, on kernels/pool.c's maxpool_backward / avgpool_backward. The window is the
 * forward pool's (explicit pads, ceil_mode); the global pools' gradients need no emitter of their own
 * (MaxPoolGrad over the whole plane, or Mul + Expand). float32 kernels (others through EM_F32). */
#include "emit.h"

/* MaxPoolGrad(dY, X) -> dX */
static Status emit_maxpool_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1], *dx = n->outputs[0];
    SpatialWindow win;
    if (cg_dtype(cg, dy) != DT_FLOAT || cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (!cg_window(n, x, dy, NULL, false, &win))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &win);
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
    EMIT_ONNXTUNE("AveragePoolGrad", emit_avgpool_grad, NULL, EM_F32),
    {0},
};
