/* ops_optim.c - rules of the ONNX training ops of domain ai.onnx.preview.training (opset 1): Adagrad,
 * Adam and Momentum, each updating any number of tensors in one node. They are run as ordinary
 * forward ops (one step on the values given); onnxtune's own training uses its onnxtune.*Update ops
 * (ir/ops_train.c) instead. Nothing folds; no gradients. */
#include "ir.h"

#include <string.h>

#define PREVIEW "ai.onnx.preview.training"

/* Tensors per updated parameter: Adagrad X, G, H; Adam X, G, V, H; Momentum X, G, V. */
static int per_tensor(const Node *n)
{
    return strcmp(n->op_type, "Adam") == 0 ? 4 : 3;
}

/* Inputs R (float scalar), T (int64 scalar), then k groups of `count` tensors each; outputs the new
 * values of every group but G, in input order. */
static Status optim_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    int k = per_tensor(n), rest = n->ninputs - 2;
    char a[128], b[128];
    if (rest <= 0 || rest % k || n->noutputs != rest / k * (k - 1))
        return diag_node(d, n, ST_INVALID, "%d inputs and %d outputs: expects R, T, then %d tensors per parameter "
                         "and %d outputs per parameter", n->ninputs, n->noutputs, k, k - 1);
    int count = rest / k;
    for (int i = 0; i < 2; i++)
        if (n->inputs[i]->shape.rank > 0 && shape_numel_or0(&n->inputs[i]->shape) != 1)
            return diag_node(d, n, ST_SHAPE, "input %d '%s' (%s) must be a scalar", i, n->inputs[i]->name,
                             i ? "T" : "R");
    for (int i = 2; i < n->ninputs; i++) {
        const Value *x = n->inputs[2 + (i - 2) % count], *v = n->inputs[i];
        if (v->dtype != DT_UNDEFINED && v->dtype != DT_FLOAT && v->dtype != DT_DOUBLE)
            return diag_node(d, n, ST_SHAPE, "input %d '%s' is %s but must be float32 or float64", i, v->name,
                             dtype_name(v->dtype));
        if (x->shape.rank >= 0 && v->shape.rank >= 0 && !shape_equal(&x->shape, &v->shape))
            return diag_node(d, n, ST_SHAPE, "input %d '%s' shape %s differs from its parameter's %s", i, v->name,
                             shape_str(&v->shape, a, sizeof a), shape_str(&x->shape, b, sizeof b));
    }
    for (int o = 0; o < n->noutputs; o++) {
        const Value *x = n->inputs[2 + o % count];
        op_set_output(n, o, x->dtype, x->shape.rank >= 0 ? &x->shape : NULL);
    }
    return ST_OK;
}

static double optim_flops(const Node *n)
{
    double s = 0;
    for (int i = 2; i < n->ninputs; i++)
        s += shape_numel_or0(&n->inputs[i]->shape);
    return s;
}

const OpRule optim_rules[] = {
    {"Adagrad", PREVIEW, "optim", 1, NULL, optim_shape, NULL, optim_flops, NULL, REQUIRED(ALL_INPUTS),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_IS(1, DT_INT64)),
     .defaults = {{"epsilon", AT_FLOAT, 1e-6}, {"decay_factor", AT_FLOAT, 0}}},
    {"Adam", PREVIEW, "optim", 1, NULL, optim_shape, NULL, optim_flops, NULL, REQUIRED(ALL_INPUTS),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_IS(1, DT_INT64)),
     .defaults = {{"epsilon", AT_FLOAT, 1e-6}, {"alpha", AT_FLOAT, 0.9}}},
    {"Momentum", PREVIEW, "optim", 1, NULL, optim_shape, NULL, optim_flops, NULL, REQUIRED(ALL_INPUTS),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_IS(1, DT_INT64))},
    {0},
};
