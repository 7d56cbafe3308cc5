/* ops_train.c - the ops of the "onnxtune" domain that fine-tuning adds: the losses (forward, with their
 * gradient rules) and their backward ops, gradient-norm clipping, and the optimizer updates. Kernels are
 * in kernels/loss.c and kernels/optim.c, emitters in codegen/emit_train.c. Nothing here is folded.
 *
 * Losses (PyTorch's, mean reduction), output a float scalar:
 *   CrossEntropyLoss(logits [N,C], target int64 [N]), attr label_smoothing (0):
 *     mean_n[(1-eps) * -log p[n,y_n] + eps/C * sum_c -log p[n,c]], p = softmax(logits)
 *   MSELoss(input, target) = mean (x-t)^2;  L1Loss = mean |x-t|;
 *   BCEWithLogitsLoss = mean[max(x,0) - x*t + log(1 + exp(-|x|))]   (target float, shape of input)
 * Their backward ops *LossGrad(dloss [], input, target) -> dinput (shape of input).
 * ClipGradNorm(grads...) -> (scale [], total_norm []), attr max_norm: torch.nn.utils.clip_grad_norm_.
 * SGDUpdate / AdamUpdate / AdamWUpdate: no outputs, PHASE_OPTIMIZER; they write inputs in place, as the
 * pass_optim.c banner of ir.h describes. */
#include "ir.h"

#include <math.h>
#include <string.h>

static double flops_in0(const Node *n)
{
    return n->ninputs > 0 && n->inputs[0] ? shape_numel_or0(&n->inputs[0]->shape) : 0;
}

/* Input i must be a present scalar (rank 0 or unknown rank) of one of the dtypes a, b. */
static Status check_scalar(const Node *n, int i, const char *what, DType a, DType b, Diag *d)
{
    const Value *v = node_input(n, i);
    if (!v)
        return diag_node(d, n, ST_INVALID, "input %d (%s) is required but missing", i, what);
    if (v->shape.rank > 0)
        return diag_node(d, n, ST_SHAPE, "input %d (%s) '%s' must be a scalar, not rank %d", i, what, v->name,
                         v->shape.rank);
    if (v->dtype != DT_UNDEFINED && v->dtype != a && v->dtype != b)
        return diag_node(d, n, ST_SHAPE, "input %d (%s) '%s' is %s but must be %s", i, what, v->name,
                         dtype_name(v->dtype), dtype_name(a));
    return ST_OK;
}

/* Input i must be a float tensor. */
static Status check_float(const Node *n, int i, Diag *d)
{
    const Value *v = node_input(n, i);
    if (v && v->dtype != DT_UNDEFINED && !dtype_is_float(v->dtype))
        return diag_node(d, n, ST_SHAPE, "input %d '%s' is %s but must be a float tensor", i, v->name,
                         dtype_name(v->dtype));
    return ST_OK;
}

/* Inputs i and j must have the same shape (no broadcasting: PyTorch's losses warn and we refuse). */
static Status check_same_shape(const Node *n, int i, int j, Diag *d)
{
    const Value *a = node_input(n, i), *b = node_input(n, j);
    if (!a || !b || a->shape.rank < 0 || b->shape.rank < 0)
        return ST_OK;
    bool clash = a->shape.rank != b->shape.rank;
    for (int k = 0; !clash && k < a->shape.rank; k++)
        clash = dim_conflict(&a->shape, k, &b->shape, k);
    if (!clash)
        return ST_OK;
    char sa[128], sb[128];
    return diag_node(d, n, ST_SHAPE, "input %d '%s' %s and input %d '%s' %s must have the same shape", i, a->name,
                     shape_str(&a->shape, sa, sizeof sa), j, b->name, shape_str(&b->shape, sb, sizeof sb));
}

static Status check_label_smoothing(const Node *n, Diag *d)
{
    float eps = node_attr_float(n, "label_smoothing", 0.0f);
    if (!(eps >= 0 && eps <= 1))
        return diag_node(d, n, ST_INVALID, "label_smoothing %g must be in [0, 1]", eps);
    return ST_OK;
}

/* logits [N, C] and target int64 [N] (at inputs li, li + 1). */
static Status check_ce_inputs(const Node *n, int li, Diag *d)
{
    Status st;
    const Value *x = n->inputs[li], *t = n->inputs[li + 1];
    char s[128];
    if ((st = check_float(n, li, d)) || (st = op_check_dtype(n, li + 1, DT_INT64, d)) ||
        (st = check_label_smoothing(n, d)))
        return st;
    if (x->shape.rank >= 0 && x->shape.rank != 2)
        return diag_node(d, n, ST_SHAPE, "logits '%s' must be [N, C], not %s", x->name,
                         shape_str(&x->shape, s, sizeof s));
    if (t->shape.rank >= 0 && t->shape.rank != 1)
        return diag_node(d, n, ST_SHAPE, "target '%s' must be class indices [N], not %s", t->name,
                         shape_str(&t->shape, s, sizeof s));
    if (x->shape.rank == 2 && t->shape.rank == 1 && dim_conflict(&x->shape, 0, &t->shape, 0))
        return diag_node(d, n, ST_SHAPE, "logits '%s' has %lld rows but target '%s' has %lld", x->name,
                         (long long)x->shape.dim[0], t->name, (long long)t->shape.dim[0]);
    return ST_OK;
}

/* ======================================================================== losses */

static bool is_cross_entropy(const Node *n)
{
    return strncmp(n->op_type, "CrossEntropyLoss", 16) == 0;
}

static Status shape_loss(Graph *g, Node *n, Diag *d)
{
    Status st;
    if (is_cross_entropy(n))
        st = check_ce_inputs(n, 0, d);
    else if (!(st = check_float(n, 0, d)) && !(st = op_same_dtype(n, 0, 1, d)))
        st = check_same_shape(n, 0, 1, d);
    if (st)
        return st;
    Shape s = shape_scalar();
    op_set_output(n, 0, n->inputs[0]->dtype, &s);
    return ST_OK;
}

static Status shape_loss_grad(Graph *g, Node *n, Diag *d)
{
    Status st;
    if ((st = check_scalar(n, 0, "dloss", n->inputs[1]->dtype, n->inputs[1]->dtype, d)))
        return st;
    if (is_cross_entropy(n))
        st = check_ce_inputs(n, 1, d);
    else if (!(st = check_float(n, 1, d)) && !(st = op_same_dtype(n, 1, 2, d)))
        st = check_same_shape(n, 1, 2, d);
    if (st)
        return st;
    op_set_output(n, 0, n->inputs[1]->dtype, &n->inputs[1]->shape);
    return ST_OK;
}

/* d loss / d input through the loss's backward op: <Op>Grad(dloss, input, target). The target is data;
 * a gradient for it is refused rather than silently dropped. */
static Status grad_loss(GradCtx *c, Node *n, Diag *d)
{
    Value *dloss = grad_output(c, n, 0);
    if (!dloss)
        return ST_OK;
    if (grad_needed(c, n, 1))
        return diag_node(d, n, ST_UNSUPPORTED, "the target '%s' depends on a trainable parameter; %s has no "
                         "gradient with respect to its target", n->inputs[1]->name, n->op_type);
    if (!grad_needed(c, n, 0))
        return ST_OK;
    char op[64];
    snprintf(op, sizeof op, "%sGrad", n->op_type);
    Value *in[3] = {dloss, n->inputs[0], n->inputs[1]};
    Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, op, 3, in, 1, d);
    if (!b)
        return d->status;
    const Attr *eps = node_attr(n, "label_smoothing");
    if (eps && !node_add_attr(grad_graph(c), b, eps))
        return diag_node(d, n, ST_NOMEM, "out of memory building the backward pass");
    Status st = grad_finish_node(c, b, d);
    return st ? st : grad_accumulate(c, n, 0, b->outputs[0], d);
}

/* ======================================================================== ClipGradNorm */

static Status shape_clip_grad_norm(Graph *g, Node *n, Diag *d)
{
    const Attr *a = node_attr(n, "max_norm");
    if (!a || a->type != AT_FLOAT || !(a->f > 0) || isinf(a->f))
        return diag_node(d, n, ST_INVALID, "attribute max_norm (a positive float) is required");
    Shape s = shape_scalar();
    op_set_output(n, 0, DT_FLOAT, &s);
    op_set_output(n, 1, DT_FLOAT, &s);
    return ST_OK;
}

static double flops_clip_grad_norm(const Node *n)
{
    double f = 0;
    for (int i = 0; i < n->ninputs; i++)
        f += n->inputs[i] ? shape_numel_or0(&n->inputs[i]->shape) : 0;
    return f;
}

/* ======================================================================== optimizer updates */

/* Input i (optional when `optional`) must have the shape and dtype of the parameter (input 0). */
static Status check_like_param(const Node *n, int i, const char *what, bool optional, Diag *d)
{
    const Value *v = node_input(n, i);
    Status st;
    if (!v)
        return optional ? ST_OK : diag_node(d, n, ST_INVALID, "input %d (%s) is required but missing", i, what);
    if ((st = op_same_dtype(n, 0, i, d)) || (st = check_same_shape(n, 0, i, d)))
        return st;
    return ST_OK;
}

static Status shape_update(Graph *g, Node *n, Diag *d)
{
    Status st;
    bool sgd = strcmp(n->op_type, "SGDUpdate") == 0;
    if ((st = check_like_param(n, 1, "grad", false, d)) ||
        (st = check_scalar(n, 2, "lr", DT_DOUBLE, DT_FLOAT, d)) ||
        (st = check_scalar(n, 3, "step", DT_INT64, DT_INT64, d)))
        return st;
    if (sgd) {
        bool momentum = node_attr_float(n, "momentum", 0.0f) != 0;
        if (momentum != (node_input(n, 4) != NULL))
            return diag_node(d, n, ST_INVALID, "input 4 (momentum_buffer) must be present exactly when momentum "
                             "is not 0");
        if ((st = check_like_param(n, 4, "momentum_buffer", true, d)))
            return st;
    } else if ((st = check_like_param(n, 4, "exp_avg", false, d)) ||
               (st = check_like_param(n, 5, "exp_avg_sq", false, d))) {
        return st;
    }
    int max_in = sgd ? 6 : 7;
    if (node_input(n, max_in - 1) && (st = check_scalar(n, max_in - 1, "grad_scale", DT_FLOAT, DT_FLOAT, d)))
        return st;
    return ST_OK;
}

/* ======================================================================== the table */

#define LOSS(op) {.name = op, .domain = ONNXTUNE_DOMAIN, .family = "train", .canon_opset = 1, \
    .shape = shape_loss, .flops = flops_in0, .grad = grad_loss, ARITY(2, 2, 1, 1), REQUIRED(2)}, \
    {.name = op "Grad", .domain = ONNXTUNE_DOMAIN, .family = "train", .canon_opset = 1, \
    .shape = shape_loss_grad, .flops = flops_in0, ARITY(3, 3, 1, 1), REQUIRED(3)}
/* (param, grad, lr, step, state... [, grad_scale]): SGD has one optional state input, Adam(W) two */
#define UPDATE(op, in_min, in_max) {.name = op, .domain = ONNXTUNE_DOMAIN, .family = "train", .canon_opset = 1, \
    .shape = shape_update, .flops = flops_in0, ARITY(in_min, in_max, 0, 0), REQUIRED(4), DTYPES(IN_IS(0, DT_FLOAT))}

const OpRule train_rules[] = {
    LOSS("CrossEntropyLoss"),
    LOSS("MSELoss"),
    LOSS("L1Loss"),
    LOSS("BCEWithLogitsLoss"),
    {.name = "ClipGradNorm", .domain = ONNXTUNE_DOMAIN, .family = "train", .canon_opset = 1,
     .shape = shape_clip_grad_norm, .flops = flops_clip_grad_norm, ARITY(1, -1, 1, 2), REQUIRED(ALL_INPUTS),
     DTYPES(IN_IS(ALL_INPUTS, DT_FLOAT))},
    UPDATE("SGDUpdate", 4, 6),
    UPDATE("AdamUpdate", 6, 7),
    UPDATE("AdamWUpdate", 6, 7),
    {0},
};
