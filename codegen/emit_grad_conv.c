/* emit_grad_conv.c - emitters of the conv family's backward ops, onnxtune.ConvGradInput and
 * ConvGradWeight, on kernels/conv.c's conv_backward_input / conv_backward_weight, their workspace from
 * the scratch hook. The window is the forward Conv's (ir/ops_conv.c wrote it with explicit pads).
 * float32 kernels (other float types through EM_F32 copies); no ConvTranspose backward. */
#include "emit.h"

/* The forward conv's sizes: x is the forward input (or dX), y the forward output (dY). */
typedef struct ConvGradSizes {
    SpatialWindow win;
    size_t n, c_in, c_out, group;
} ConvGradSizes;

static bool conv_grad_sizes(const Node *n, const Value *x, const Value *y, ConvGradSizes *s)
{
    if (x->shape.rank < 3 || y->shape.rank != x->shape.rank || !cg_window(n, x, y, NULL, false, &s->win))
        return false;
    s->n = (size_t)x->shape.dim[0];
    s->c_in = (size_t)x->shape.dim[1];
    s->c_out = (size_t)y->shape.dim[1];
    s->group = (size_t)node_attr_int(n, "group", 1);
    return s->group >= 1;
}

/* ConvGradInput(dY, W) -> dX */
static size_t scratch_grad_input(const Node *n)
{
    ConvGradSizes s;
    if (!conv_grad_sizes(n, n->outputs[0], n->inputs[0], &s))
        return 0;
    return conv_backward_input_workspace(s.n, s.c_in, s.c_out, s.group, &s.win);
}

static Status emit_grad_input(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *w = n->inputs[1], *dx = n->outputs[0];
    ConvGradSizes s;
    if (cg_dtype(cg, dy) != DT_FLOAT || cg_dtype(cg, w) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(dy->dtype));
    if (!conv_grad_sizes(n, dx, dy, &s))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &s.win);
    cg_line(cg, "conv_backward_input(%s, %s, %s, %zu, %zu, %zu, %zu, &win, %s);", cg_ptr(cg, dx), cg_ptr(cg, dy),
            cg_ptr(cg, w), s.n, s.c_in, s.c_out, s.group, cg_scratch(cg));
    return ST_OK;
}

/* ConvGradWeight(dY, X) -> dW */
static size_t scratch_grad_weight(const Node *n)
{
    ConvGradSizes s;
    if (!conv_grad_sizes(n, n->inputs[1], n->inputs[0], &s))
        return 0;
    return conv_backward_weight_workspace(s.n, s.c_in, s.c_out, s.group, &s.win);
}

static Status emit_grad_weight(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1], *dw = n->outputs[0];
    ConvGradSizes s;
    if (cg_dtype(cg, dy) != DT_FLOAT || cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(dy->dtype));
    if (!conv_grad_sizes(n, x, dy, &s))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &s.win);
    cg_line(cg, "conv_backward_weight(%s, %s, %s, %zu, %zu, %zu, %zu, &win, %s);", cg_ptr(cg, dw), cg_ptr(cg, dy),
            cg_ptr(cg, x), s.n, s.c_in, s.c_out, s.group, cg_scratch(cg));
    return ST_OK;
}

const Emitter conv_grad_emitters[] = {
    EMIT_ONNXTUNE("ConvGradInput", emit_grad_input, scratch_grad_input, EM_F32),
    EMIT_ONNXTUNE("ConvGradWeight", emit_grad_weight, scratch_grad_weight, EM_F32),
    {0},
};
