/* emit_grad_elementwise.c - emitters of the elementwise family's backward ops (onnxtune domain):
 * onnxtune.<Act>Grad(dY, T) on unary_backward and onnxtune.ClipGrad on clip_backward. float32 only
 * (training runs in float32); the other elementwise gradients are standard ops with their own emitters. */
#include "emit.h"

#include <string.h>

static const struct {
    const char *op;
    UnaryOp kind;
    const char *kname;
} act_grad_rows[] = {
    {"AbsGrad", UNARY_ABS, "UNARY_ABS"},
    {"ReciprocalGrad", UNARY_RECIPROCAL, "UNARY_RECIPROCAL"},
    {"SqrtGrad", UNARY_SQRT, "UNARY_SQRT"},
    {"ErfGrad", UNARY_ERF, "UNARY_ERF"},
    {"SigmoidGrad", UNARY_SIGMOID, "UNARY_SIGMOID"},
    {"TanhGrad", UNARY_TANH, "UNARY_TANH"},
    {"SoftplusGrad", UNARY_SOFTPLUS, "UNARY_SOFTPLUS"},
    {"SoftsignGrad", UNARY_SOFTSIGN, "UNARY_SOFTSIGN"},
    {"ReluGrad", UNARY_RELU, "UNARY_RELU"},
    {"LeakyReluGrad", UNARY_LEAKY_RELU, "UNARY_LEAKY_RELU"},
    {"EluGrad", UNARY_ELU, "UNARY_ELU"},
    {"SeluGrad", UNARY_SELU, "UNARY_SELU"},
    {"CeluGrad", UNARY_CELU, "UNARY_CELU"},
    {"HardSigmoidGrad", UNARY_HARD_SIGMOID, "UNARY_HARD_SIGMOID"},
    {"HardSwishGrad", UNARY_HARD_SWISH, "UNARY_HARD_SWISH"},
    {"ThresholdedReluGrad", UNARY_THRESHOLDED_RELU, "UNARY_THRESHOLDED_RELU"},
    {"MishGrad", UNARY_MISH, "UNARY_MISH"},
    {"ShrinkGrad", UNARY_SHRINK, "UNARY_SHRINK"},
};

/* dX = unary_backward(dY, T) with the node's alpha/beta (already the kernel's, see ops_elementwise.c). */
static Status emit_act_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *t = n->inputs[1], *dx = n->outputs[0];
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)) || (st = cg_require_dtype(cg, t, DT_FLOAT)))
        return st;
    for (size_t i = 0; i < sizeof act_grad_rows / sizeof act_grad_rows[0]; i++)
        if (strcmp(act_grad_rows[i].op, n->op_type) == 0) {
            cg_line(cg, "unary_backward(%s, %s, %s, %s, %zu, %s, %s);", act_grad_rows[i].kname, cg_ptr(cg, dx),
                    cg_ptr(cg, dy), cg_ptr(cg, t), cg_numel(dx), cg_float(cg, node_attr_float(n, "alpha", 0)),
                    cg_float(cg, node_attr_float(n, "beta", 0)));
            return ST_OK;
        }
    return cg_unsupported(cg, "no backward kernel for %s", n->op_type);
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

#define ACT(name) EMIT_ONNXTUNE(name, emit_act_grad, NULL, EM_INPLACE0)

const Emitter elementwise_grad_emitters[] = {
    ACT("AbsGrad"), ACT("ReciprocalGrad"), ACT("SqrtGrad"), ACT("ErfGrad"), ACT("SigmoidGrad"), ACT("TanhGrad"),
    ACT("SoftplusGrad"), ACT("SoftsignGrad"), ACT("ReluGrad"), ACT("LeakyReluGrad"), ACT("EluGrad"),
    ACT("SeluGrad"), ACT("CeluGrad"), ACT("HardSigmoidGrad"), ACT("HardSwishGrad"), ACT("ThresholdedReluGrad"),
    ACT("MishGrad"), ACT("ShrinkGrad"),
    EMIT_ONNXTUNE("ClipGrad", emit_clip_grad, NULL, EM_INPLACE0),
    {0},
};
