/* ops_loss.c - the loss ops of ONNX: NegativeLogLikelihoodLoss-13 and SoftmaxCrossEntropyLoss-13
 * (PyTorch's nn.NLLLoss and nn.CrossEntropyLoss with weight, ignore_index and reduction), their gradient
 * rules and their backward ops. Kernels are in kernels/loss.c, emitters in codegen/emit_loss.c. The
 * losses fine-tuning puts on a model itself (onnxtune.CrossEntropyLoss, ...) are in ops_train.c.
 *
 * NegativeLogLikelihoodLoss(input [N, C, d1..dk], target int [N, d1..dk], weight [C]?) -> loss
 * SoftmaxCrossEntropyLoss(scores [N, C, d1..dk], labels int [N, d1..dk], weights [C]?) -> (output, log_prob?)
 *   loss [N, d1..dk] for reduction "none", else a scalar; log_prob = log_softmax(scores, axis 1).
 * Not folded: losses are computed from data. */
#include "ir.h"

#include <string.h>

static bool is_sce(const Node *n)
{
    return strncmp(n->op_type, "SoftmaxCrossEntropyLoss", 23) == 0;
}

/* input [N, C, d...] at x, target [N, d...] at x + 1, weight [C] at x + 2 (optional); reduction. */
static Status check_loss_inputs(const Node *n, int x_at, Diag *d)
{
    const Value *x = n->inputs[x_at], *t = n->inputs[x_at + 1], *w = node_input(n, x_at + 2);
    char a[128], b[128];
    const char *red = node_attr_string(n, "reduction", "mean");
    if (strcmp(red, "none") != 0 && strcmp(red, "sum") != 0 && strcmp(red, "mean") != 0)
        return diag_node(d, n, ST_INVALID, "reduction '%s' must be none, sum or mean", red);
    if (t->dtype != DT_UNDEFINED && t->dtype != DT_INT64 && t->dtype != DT_INT32)
        return diag_node(d, n, ST_SHAPE, "input %d (target) '%s' is %s but must be int64 or int32", x_at + 1,
                         t->name, dtype_name(t->dtype));
    if (x->shape.rank >= 0 && x->shape.rank < 2)
        return diag_node(d, n, ST_SHAPE, "input %d '%s' must be [N, C, d1..dk], not %s", x_at, x->name,
                         shape_str(&x->shape, a, sizeof a));
    if (x->shape.rank >= 2 && t->shape.rank >= 0) {
        bool clash = t->shape.rank != x->shape.rank - 1 || dim_conflict(&x->shape, 0, &t->shape, 0);
        for (int i = 1; !clash && i < t->shape.rank; i++)
            clash = dim_conflict(&x->shape, i + 1, &t->shape, i);
        if (clash)
            return diag_node(d, n, ST_SHAPE, "target '%s' %s must be the shape of input '%s' %s without dim 1",
                             t->name, shape_str(&t->shape, b, sizeof b), x->name, shape_str(&x->shape, a, sizeof a));
    }
    if (w && w->shape.rank >= 0 &&
        (w->shape.rank != 1 || (x->shape.rank >= 2 && dim_conflict(&x->shape, 1, &w->shape, 0))))
        return diag_node(d, n, ST_SHAPE, "weight '%s' %s must be [C] for input '%s' %s", w->name,
                         shape_str(&w->shape, b, sizeof b), x->name, shape_str(&x->shape, a, sizeof a));
    return ST_OK;
}

/* The loss's shape: the target's for reduction none, else a scalar. */
static Shape loss_shape(const Node *n, const Value *target)
{
    return strcmp(node_attr_string(n, "reduction", "mean"), "none") == 0 ? target->shape : shape_scalar();
}

static Status shape_nll(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st = check_loss_inputs(n, 0, d);
    if (st)
        return st;
    Shape s = loss_shape(n, n->inputs[1]);
    op_set_output(n, 0, n->inputs[0]->dtype, &s);
    if (is_sce(n))
        op_set_output(n, 1, n->inputs[0]->dtype, &n->inputs[0]->shape);
    return ST_OK;
}

/* SCE: max, exp, sum and subtract per score; NLL: one multiply-add per target. */
static double flops_of(const Node *n, int x_at)
{
    return is_sce(n) ? 4 * shape_numel_or0(&n->inputs[x_at]->shape) : shape_numel_or0(&n->inputs[x_at + 1]->shape);
}

static double flops_nll(const Node *n)
{
    return flops_of(n, 0);
}

static double flops_nll_grad(const Node *n)
{
    return flops_of(n, 1);
}

/* Copies reduction and ignore_index from the forward node to its backward node. */
static Status copy_attrs(GradCtx *c, const Node *fwd, Node *b, Diag *d)
{
    const char *names[] = {"reduction", "ignore_index"};
    for (size_t i = 0; i < 2; i++) {
        const Attr *a = node_attr(fwd, names[i]);
        if (a && !node_add_attr(grad_graph(c), b, a))
            return diag_node(d, fwd, ST_NOMEM, "out of memory building the backward pass");
    }
    return ST_OK;
}

/* loss = reduce_i(-w[t_i] * x[n, t_i, d...]) (NLL) or the same of log_softmax(scores) (SCE):
 * dinput = <Op>Grad(dloss, input, target, weight?), the kernels' closed forms (kernels.h). The log_prob
 * output of SCE adds LogSoftmaxGrad(dlog_prob, log_prob) along axis 1. Target and weight are data: as
 * in PyTorch (no derivative for nll_loss's weight), a gradient for them is refused. */
static Status grad_nll(GradCtx *c, Node *n, Diag *d)
{
    Value *dloss = grad_output(c, n, 0), *dlp = n->noutputs > 1 ? grad_output(c, n, 1) : NULL;
    Status st;
    for (int i = 1; i < n->ninputs; i++)
        if (node_input(n, i) && grad_needed(c, n, i))
            return diag_node(d, n, ST_UNSUPPORTED, "input %d '%s' depends on a trainable parameter; %s has no "
                             "gradient with respect to its %s", i, n->inputs[i]->name, n->op_type,
                             i == 1 ? "target" : "weight");
    if (!grad_needed(c, n, 0))
        return ST_OK;
    if (dloss) {
        char op[64];
        snprintf(op, sizeof op, "%sGrad", n->op_type);
        Value *in[4] = {dloss, n->inputs[0], n->inputs[1], node_input(n, 2)};
        Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, op, in[3] ? 4 : 3, in, 1, d);
        if (!b)
            return d->status;
        if ((st = copy_attrs(c, n, b, d)) || (st = grad_finish_node(c, b, d)) ||
            (st = grad_accumulate(c, n, 0, b->outputs[0], d)))
            return st;
    }
    if (dlp) {
        Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, "LogSoftmaxGrad", 2, (Value *[]){dlp, n->outputs[1]}, 1, d);
        if (!m || node_set_attr_int(grad_graph(c), m, "axis", 1, d) || grad_finish_node(c, m, d))
            return d->status;
        return grad_accumulate(c, n, 0, m->outputs[0], d);
    }
    return ST_OK;
}

/* onnxtune.<Op>Grad(dloss, input, target, weight?) -> dinput: dloss has the forward loss's shape. */
static Status shape_nll_grad(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st = check_loss_inputs(n, 1, d);
    if (st)
        return st;
    const Value *dl = n->inputs[0];
    Shape want = loss_shape(n, n->inputs[2]);
    if (dl->shape.rank >= 0 && shape_is_static(&want) && shape_is_static(&dl->shape) &&
        !shape_equal(&dl->shape, &want)) {
        char a[128], b[128];
        return diag_node(d, n, ST_SHAPE, "dloss '%s' %s must be %s", dl->name, shape_str(&dl->shape, a, sizeof a),
                         shape_str(&want, b, sizeof b));
    }
    op_set_output(n, 0, n->inputs[1]->dtype, &n->inputs[1]->shape);
    return ST_OK;
}

/* ======================================================================== the table */

#define REDUCTION_MEAN {"reduction", AT_STRING, 0, "mean", NULL}

const OpRule loss_rules[] = {
    {.name = "NegativeLogLikelihoodLoss", .domain = "", .family = "loss", .canon_opset = 13, .shape = shape_nll,
     .flops = flops_nll, .grad = grad_nll, ARITY(2, 3, 1, 1), REQUIRED(2),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_SAME(0, 2)), .defaults = {REDUCTION_MEAN}},
    {.name = "SoftmaxCrossEntropyLoss", .domain = "", .family = "loss", .canon_opset = 13, .shape = shape_nll,
     .flops = flops_nll, .grad = grad_nll, ARITY(2, 3, 1, 2), REQUIRED(2),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_SAME(0, 2)), .defaults = {REDUCTION_MEAN}},
    /* backward ops (onnxtune domain) */
    {.name = "NegativeLogLikelihoodLossGrad", .domain = ONNXTUNE_DOMAIN, .family = "loss", .canon_opset = 1,
     .shape = shape_nll_grad, .flops = flops_nll_grad, ARITY(3, 4, 1, 1), REQUIRED(3),
     DTYPES(IN_CLASS(1, TC_FLOAT), IN_SAME(0, 1), IN_SAME(1, 3)), .defaults = {REDUCTION_MEAN}},
    {.name = "SoftmaxCrossEntropyLossGrad", .domain = ONNXTUNE_DOMAIN, .family = "loss", .canon_opset = 1,
     .shape = shape_nll_grad, .flops = flops_nll_grad, ARITY(3, 4, 1, 1), REQUIRED(3),
     DTYPES(IN_CLASS(1, TC_FLOAT), IN_SAME(0, 1), IN_SAME(1, 3)), .defaults = {REDUCTION_MEAN}},
    {0},
};
