/* emit_grad_elementwise.c - emitters of the elementwise family's backward ops (onnxtune domain):
 * onnxtune.<Act>Grad(dY, T) on unary_backward and onnxtune.ClipGrad on clip_backward. float32 only
 * (training runs in float32); the other elementwise gradients are standard ops with their own emitters. */
#include "emit.h"

#include <string.h>

/* dX = unary_backward(dY, T) with the node's alpha/beta (already the kernel's, see ops_elementwise.c). */
static Status emit_act_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *t = n->inputs[1], *dx = n->outputs[0];
    const UnaryDef *u = unary_def_of_grad(n->op_type);
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)) || (st = cg_require_dtype(cg, t, DT_FLOAT)))
        return st;
    if (!u)
        return cg_unsupported(cg, "no backward kernel for %s", n->op_type);
    cg_line(cg, "unary_backward(%s, %s, %s, %s, %zu, %s, %s);", u->kernel_name, cg_ptr(cg, dx), cg_ptr(cg, dy),
            cg_ptr(cg, t), cg_numel(dx), cg_float(cg, node_attr_float(n, "alpha", 0)),
            cg_float(cg, node_attr_float(n, "beta", 0)));
    return ST_OK;
}

static Status emit_clip_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1], *dx = n->outputs[0];
    const Value *lo = node_input(n, 2), *hi = node_input(n, 3);
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)) || (st = cg_require_dtype(cg, x, DT_FLOAT)))
        return st;
    if ((lo && cg_numel(lo) != 1) || (hi && cg_numel(hi) != 1))
        return cg_unsupported(cg, "min and max must be scalars");
    cg_line(cg, "clip_backward(%s, %s, %s, %zu, %s, %s);", cg_ptr(cg, dx), cg_ptr(cg, dy), cg_ptr(cg, x),
            cg_numel(dx), cg_ptr_or_null(cg, lo), cg_ptr_or_null(cg, hi));
    return ST_OK;
}

/* one emitter per unary.def row with a fused gradient (FUSED_X, FUSED_Y) */
#define ACT_NONE(op)
#define ACT_ZERO(op)
#define ACT_FUSED_X(op) EMIT_ONNXTUNE(#op "Grad", emit_act_grad, NULL, EM_INPLACE0),
#define ACT_FUSED_Y(op) ACT_FUSED_X(op)
#define ACT_ONNX_X(std) ACT_NONE
#define ACT_ONNX_Y(std) ACT_NONE
#define ACT_ONNX_DY(std) ACT_NONE

const Emitter elementwise_grad_emitters[] = {
#define UNARY(op, kernel, types, since, grad, alpha, beta) ACT_##grad(op)
#include "unary.def"
    EMIT_ONNXTUNE("ClipGrad", emit_clip_grad, NULL, EM_INPLACE0),
    {0},
};
