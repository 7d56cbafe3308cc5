/* ops_norm.c - rules of the normalisation ops: BatchNormalization (inference and training_mode),
 * InstanceNormalization, LayerNormalization (opset 17, with Mean/InvStdDev outputs), LRN, Dropout
 * (output and optional mask) and MeanVarianceNormalization; the gradient rules of BatchNormalization,
 * InstanceNormalization, LayerNormalization and Dropout with their onnxtune backward ops, and
 * onnxtune.Dropout (training, reproducible mask). Nothing here folds; MVN has no gradient. */
#include "ir.h"

#include <string.h>

static double flops_in0(const Node *n)
{
    return n->ninputs > 0 && n->inputs[0] ? shape_numel_or0(&n->inputs[0]->shape) : 0;
}

/* Input i must be 1-D of length dim `c` of X (unknown dims agree with anything). */
static Status check_channel_vector(const Node *n, int i, const char *what, const Shape *x, int c, Diag *d)
{
    const Value *v = node_input(n, i);
    if (!v || v->shape.rank < 0)
        return ST_OK;
    char a[128], b[128];
    if (v->shape.rank != 1 || (x->rank > c && dim_conflict(&v->shape, 0, x, c)))
        return diag_node(d, n, ST_SHAPE, "input %d (%s) has shape %s but must be [C] with C = dim %d of input 0 %s",
                         i, what, shape_str(&v->shape, a, sizeof a), c, shape_str(x, b, sizeof b));
    return ST_OK;
}

/* Drop trailing outputs nobody reads (ONNX lets optional outputs be named but unused). */
static void trim_unused_outputs(Graph *g, Node *n, int keep_min)
{
    while (n->noutputs > keep_min && graph_count_uses(g, n->outputs[n->noutputs - 1]) == 0 &&
           !n->outputs[n->noutputs - 1]->is_output)
        n->noutputs--;
}

/* ======================================================================== BatchNormalization */

/* BatchNormalization-1 had consumed_inputs, -1 and -6 is_test, -1..-7 spatial (spatial=0: per-activation
 * statistics with scale of shape [C,D1,...], which we do not implement); before -14, training was
 * signalled by the presence of the mean/var/saved_mean/saved_var outputs. Opset 14/15 uses the
 * training_mode attribute and the outputs Y, running_mean, running_var. */
static Status canon_batchnorm(Graph *g, Node *n, Diag *d)
{
    node_remove_attr(n, "consumed_inputs");
    if (n->opset <= 0 || n->opset >= 14)
        return ST_OK;
    int64_t is_test = node_attr_int(n, "is_test", 0);
    node_remove_attr(n, "is_test");
    if (n->opset < 9) {
        int64_t spatial = node_attr_int(n, "spatial", 1);
        node_remove_attr(n, "spatial");
        const Value *scale = node_input(n, 1);
        if (!spatial && (!scale || scale->shape.rank != 1))
            return diag_node(d, n, ST_UNSUPPORTED, "spatial=0 (per-activation statistics) is not supported");
    }
    trim_unused_outputs(g, n, 1);
    if (n->noutputs > 3)
        return diag_node(d, n, ST_UNSUPPORTED, "outputs saved_mean/saved_var (opset %d training form) are read "
                         "but not supported", n->opset);
    if (n->noutputs > 1 && is_test)
        return diag_node(d, n, ST_UNSUPPORTED, "reads the mean/var outputs with is_test=1");
    if (n->noutputs > 1)
        return node_set_attr_int(g, n, "training_mode", 1, d);
    return ST_OK;
}

static Status shape_batchnorm(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    if (x->dtype != DT_UNDEFINED && !dtype_is_float(x->dtype))
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' is %s, not a float type", x->name, dtype_name(x->dtype));
    if (x->shape.rank >= 0 && x->shape.rank < 2) {
        char s[128];
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' has shape %s but must be [N,C,...]", x->name,
                         shape_str(&x->shape, s, sizeof s));
    }
    static const char *what[] = {"", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++)
        if ((st = check_channel_vector(n, i, what[i], &x->shape, 1, d)))
            return st;
    if ((st = op_same_dtype(n, 1, 2, d)) || (st = op_same_dtype(n, 3, 4, d)))
        return st;
    op_set_output(n, 0, x->dtype, &x->shape);
    Shape c = shape_make(1, NULL);
    if (x->shape.rank >= 2)
        dim_copy(&c, 0, &x->shape, 1);
    for (int i = 1; i < 5; i++)
        if (n->inputs[i]->shape.rank == 1)
            dim_merge(&c, 0, &n->inputs[i]->shape, 0);
    for (int i = 1; i < n->noutputs; i++)
        op_set_output(n, i, n->inputs[3]->dtype, &c);
    return ST_OK;
}

static double flops_batchnorm(const Node *n)
{
    return 2 * flops_in0(n);
}

/* ======================================================================== InstanceNormalization */

/* InstanceNormalization-1 had consumed_inputs; -6 is the same op without it. */
static Status canon_drop_consumed(Graph *g, Node *n, Diag *d)
{
    node_remove_attr(n, "consumed_inputs");
    return ST_OK;
}

static Status shape_instancenorm(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    if (x->shape.rank >= 0 && x->shape.rank < 3) {
        char s[128];
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' has shape %s but must be [N,C,D1,...]", x->name,
                         shape_str(&x->shape, s, sizeof s));
    }
    if ((st = check_channel_vector(n, 1, "scale", &x->shape, 1, d)) ||
        (st = check_channel_vector(n, 2, "B", &x->shape, 1, d)) || (st = op_same_dtype(n, 0, 1, d)) ||
        (st = op_same_dtype(n, 0, 2, d)))
        return st;
    op_set_output(n, 0, x->dtype, &x->shape);
    return ST_OK;
}

/* ======================================================================== LayerNormalization */

/* LayerNormalization-17: normalise over dims axis..r-1; Scale and B broadcast to those dims; Mean and
 * InvStdDev have X's leading dims and 1s from `axis` on, in the stash_type precision. */
static Status shape_layernorm(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    if (x->dtype != DT_UNDEFINED && !dtype_is_float(x->dtype))
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' is %s, not a float type", x->name, dtype_name(x->dtype));
    int64_t stash = node_attr_int(n, "stash_type", 1);
    if (stash <= 0 || stash >= DT_COUNT || !dtype_is_float((DType)stash))
        return diag_node(d, n, ST_INVALID, "attribute stash_type=%lld is not a float type", (long long)stash);
    op_set_output(n, 0, x->dtype, &x->shape);
    if (x->shape.rank < 0) {
        for (int i = 1; i < n->noutputs; i++)
            op_set_output(n, i, (DType)stash, NULL);
        return ST_OK;
    }
    int axis;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", -1), x->shape.rank, &axis, d)))
        return st;
    /* Scale and B: unidirectionally broadcastable to X's normalised dims */
    Shape norm = shape_scalar();
    for (int i = axis; i < x->shape.rank; i++)
        dim_copy(&norm, norm.rank++, &x->shape, i);
    for (int i = 1; i < n->ninputs; i++) {
        const Value *p = n->inputs[i];
        if (!p || p->shape.rank < 0)
            continue;
        bool ok = p->shape.rank <= norm.rank;
        for (int k = 0; ok && k < p->shape.rank; k++) {
            int j = norm.rank - p->shape.rank + k;
            ok = !(p->shape.dim[k] >= 0 && p->shape.dim[k] != 1 && dim_conflict(&p->shape, k, &norm, j));
        }
        if (!ok) {
            char a[128], b[128];
            return diag_node(d, n, ST_SHAPE, "input %d (%s) shape %s does not broadcast to the normalised dims %s "
                             "of input 0", i, i == 1 ? "Scale" : "B", shape_str(&p->shape, a, sizeof a),
                             shape_str(&norm, b, sizeof b));
        }
    }
    Shape stat = x->shape;
    for (int i = axis; i < stat.rank; i++) {
        stat.dim[i] = 1;
        stat.sym[i] = NULL;
    }
    for (int i = 1; i < n->noutputs; i++)
        op_set_output(n, i, (DType)stash, &stat);
    return ST_OK;
}

static double flops_layernorm(const Node *n)
{
    return 5 * flops_in0(n);
}

/* ======================================================================== LRN */

static Status shape_lrn(Graph *g, Node *n, Diag *d)
{
    const Value *x = n->inputs[0];
    const Attr *size = node_attr(n, "size");
    if (!size || size->type != AT_INT || size->i <= 0)
        return diag_node(d, n, ST_INVALID, "attribute size (a positive integer) is required");
    if (x->shape.rank >= 0 && x->shape.rank < 3) {
        char s[128];
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' has shape %s but must be [N,C,D1,...]", x->name,
                         shape_str(&x->shape, s, sizeof s));
    }
    op_set_output(n, 0, x->dtype, &x->shape);
    return ST_OK;
}

static double flops_lrn(const Node *n)
{
    return (double)node_attr_int(n, "size", 1) * flops_in0(n);
}

/* Y = X / (bias + alpha/size * sum of X^2 over the channel window)^beta: dX = onnxtune.LRNGrad(dY, X),
 * with the forward's attributes (kernels/norm.c lrn_backward has the formula). */
static Status grad_lrn(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, "LRNGrad", 2, (Value *[]){dy, n->inputs[0]}, 1, d);
    if (!m)
        return d->status;
    for (int i = 0; i < n->nattrs; i++)
        if (!node_add_attr(grad_graph(c), m, &n->attrs[i]))
            return diag_node(d, n, ST_NOMEM, "out of memory building the backward pass");
    Status st = grad_finish_node(c, m, d);
    return st ? st : grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* onnxtune.LRNGrad(dY, X) -> dX: X's rule, dY of X's shape. */
static Status shape_lrn_grad(Graph *g, Node *n, Diag *d)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1];
    if (shape_is_static(&dy->shape) && shape_is_static(&x->shape) && !shape_equal(&dy->shape, &x->shape)) {
        char a[128], b[128];
        return diag_node(d, n, ST_SHAPE, "input 0 (dY) %s and input 1 (X) %s differ in shape",
                         shape_str(&dy->shape, a, sizeof a), shape_str(&x->shape, b, sizeof b));
    }
    op_set_output(n, 0, x->dtype, &x->shape);
    return ST_OK;
}

/* ======================================================================== Dropout */

/* Dropout-1 and -6: ratio attribute, is_test (0: training); -1 also consumed_inputs. Dropout-7 and -10
 * dropped is_test (inference semantics). Dropout-12/13 take ratio and training_mode as optional inputs,
 * and the mask output is bool (it was T before -10). */
static Status canon_dropout(Graph *g, Node *n, Diag *d)
{
    node_remove_attr(n, "consumed_inputs");
    if (n->opset <= 0 || n->opset >= 12)
        return ST_OK;
    const Attr *ratio = node_attr(n, "ratio");
    bool training = n->opset < 7 && node_attr_int(n, "is_test", 0) == 0;
    node_remove_attr(n, "is_test");
    if (ratio) {
        Value *r = graph_const_scalar(g, "dropout_ratio", DT_FLOAT, ratio->f, d);
        if (!r || node_set_input(g, n, 1, r, d))
            return d->status;
        node_remove_attr(n, "ratio");
    }
    if (training) {
        Value *t = graph_const_scalar(g, "dropout_training", DT_BOOL, 1, d);
        if (!t || node_set_input(g, n, 2, t, d))
            return d->status;
    }
    return ST_OK;
}

static Status shape_dropout(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    for (int i = 1; i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (v && v->shape.rank > 0) {
            char s[128];
            return diag_node(d, n, ST_SHAPE, "input %d (%s) '%s' must be a scalar, not %s", i,
                             i == 1 ? "ratio" : "training_mode", v->name, shape_str(&v->shape, s, sizeof s));
        }
    }
    if ((st = op_check_dtype(n, 2, DT_BOOL, d)))
        return st;
    op_set_output(n, 0, x->dtype, &x->shape);
    op_set_output(n, 1, DT_BOOL, &x->shape);
    return ST_OK;
}

/* ======================================================================== MeanVarianceNormalization */

static Status shape_mvn(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    IntList axes;
    if (op_attr_ints(n, "axes", &axes) && x->shape.rank >= 0)
        for (size_t k = 0; k < axes.n; k++) {
            int ax;
            if ((st = op_axis(n, "axes", axes.v[k], x->shape.rank, &ax, d)))
                return st;
        }
    op_set_output(n, 0, x->dtype, &x->shape);
    return ST_OK;
}

/* ======================================================================== gradients */

/* The gradient rules of the family and their backward ops (domain onnxtune, version 1). Statistics are
 * float32 (stash_type 1); the kernels are kernels/norm.c's *_backward. */

/* A backward node's first output has X's shape, the others `p` (the parameters' shape). */
static Status shape_norm_grad(Node *n, int nin_min, int nin_max, const Shape *p, Diag *d)
{
    Status st;
    if ((st = op_check_arity(n, nin_min, nin_max, 1, 3, d)) || (st = op_require_inputs(n, 3, d)) ||
        (st = op_same_dtype(n, 0, 1, d)))
        return st;
    const Value *dy = n->inputs[0], *x = n->inputs[1];
    char a[128], b[128];
    if (!shape_equal(&dy->shape, &x->shape) || !shape_is_static(&x->shape))
        return diag_node(d, n, ST_SHAPE, "dY %s and X %s must be static and of one shape",
                         shape_str(&dy->shape, a, sizeof a), shape_str(&x->shape, b, sizeof b));
    op_set_output(n, 0, x->dtype, &x->shape);
    for (int i = 1; i < n->noutputs; i++)
        op_set_output(n, i, x->dtype, p);
    return ST_OK;
}

/* onnxtune.BatchNormalizationGrad (1): dY, X [N, C, ...], scale [C], then input_mean, input_var [C]
 * unless training_mode=1 (batch statistics, recomputed from X) -> dX, dscale [C], dB [C]. In inference
 * mode with one output (dX = dY * scale / sqrt(var + epsilon)) X may be omitted. */
static Status shape_batchnorm_grad(Graph *g, Node *n, Diag *d)
{
    bool training = node_attr_int(n, "training_mode", 0) != 0;
    Status st;
    if (!training && n->noutputs == 1 && n->ninputs == 5 && !n->inputs[1]) {
        if ((st = op_require_inputs(n, 1, d)) || (st = op_same_dtype(n, 0, 2, d)))
            return st;
        if (!node_input(n, 2) || !node_input(n, 3) || !node_input(n, 4) || n->inputs[0]->shape.rank < 2)
            return diag_node(d, n, ST_INVALID, "needs dY [N, C, ...], scale, input_mean and input_var");
        op_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
        return ST_OK;
    }
    const Value *x = node_input(n, 1);
    Shape c = shape_make(1, NULL);
    if (x && x->shape.rank >= 2)
        dim_copy(&c, 0, &x->shape, 1);
    st = shape_norm_grad(n, 3, 5, &c, d);
    if (!st && n->inputs[1]->shape.rank < 2)
        return diag_node(d, n, ST_SHAPE, "X must be [N, C, ...]");
    if (!st && !training && (!node_input(n, 3) || !node_input(n, 4)))
        return diag_node(d, n, ST_INVALID, "inference mode needs input_mean and input_var (inputs 3 and 4)");
    return st;
}

/* onnxtune.InstanceNormalizationGrad (1): dY, X [N, C, ...], scale [C] -> dX, dscale [C], dB [C]. */
static Status shape_instancenorm_grad(Graph *g, Node *n, Diag *d)
{
    const Value *x = node_input(n, 1);
    Shape c = shape_make(1, NULL);
    if (x && x->shape.rank >= 3)
        dim_copy(&c, 0, &x->shape, 1);
    Status st = shape_norm_grad(n, 3, 3, &c, d);
    if (!st && n->inputs[1]->shape.rank < 3)
        return diag_node(d, n, ST_SHAPE, "X must be [N, C, D1, ...]");
    return st;
}

/* onnxtune.LayerNormalizationGrad (1): dY, X, Scale (any shape broadcasting to the normalised dims),
 * Mean, InvStdDev (X's leading dims, 1s from axis on) -> dX, dScale and dB of the normalised shape
 * X.shape[axis:] (the rule reduces them to Scale's and B's shapes). */
static Status shape_layernorm_grad(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[1];
    int axis;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", -1), x->shape.rank, &axis, d)))
        return st;
    Shape norm = shape_scalar();
    for (int i = axis; i < x->shape.rank; i++)
        dim_copy(&norm, norm.rank++, &x->shape, i);
    for (int i = 3; i < 5; i++) {
        const Shape *s = &n->inputs[i]->shape;
        bool ok = s->rank == x->shape.rank;
        for (int k = 0; ok && k < s->rank; k++)
            ok = k < axis ? !dim_conflict(s, k, &x->shape, k) : s->dim[k] == 1;
        if (!ok) {
            char a[128], b[128];
            return diag_node(d, n, ST_SHAPE, "input %d %s is not the statistics shape of X %s for axis %d", i,
                             shape_str(s, a, sizeof a), shape_str(&x->shape, b, sizeof b), axis);
        }
    }
    return shape_norm_grad(n, 5, 5, &norm, d);
}

/* A backward node with nout outputs and its attributes copied from fwd (epsilon, axis, training_mode). */
static Node *norm_grad_node(GradCtx *c, Node *fwd, const char *op, int nin, Value *const *in, int nout, Diag *d)
{
    Graph *gr = grad_graph(c);
    Node *b = grad_new_node(c, fwd, ONNXTUNE_DOMAIN, op, nin, in, nout, d);
    if (!b)
        return NULL;
    static const char *const copied[] = {"epsilon", "axis", "training_mode"};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        const Attr *a = node_attr(fwd, copied[i]);
        if (a && !node_add_attr(gr, b, a)) {
            diag_error(d, ST_NOMEM, "out of memory building the backward pass");
            return NULL;
        }
    }
    return grad_finish_node(c, b, d) ? NULL : b;
}

/* Accumulate output k of backward node b into input i of n, reduced to that input's shape. */
static Status accumulate_param(GradCtx *c, Node *n, int i, Node *b, int k, Diag *d)
{
    Value *v = node_input(n, i);
    if (!v || !grad_needed(c, n, i))
        return ST_OK;
    Value *g = grad_unbroadcast(c, n, b->outputs[k], &v->shape, d);
    return g ? grad_accumulate(c, n, i, g, d) : d->status;
}

/* BatchNormalization-15: Y = (X - mean) / sqrt(var + epsilon) * scale + B per channel, where mean and
 * var are input_mean / input_var (inference: constants, dX = dY * scale / sqrt(var + epsilon)) or, with
 * training_mode=1, the batch mean and biased variance of X (so they depend on X: the full backward,
 * dX = scale * inv_std * (dY - mean(dY) - xhat * mean(dY * xhat))); dscale = sum(dY * xhat),
 * dB = sum(dY) over N and spatial. BatchNormalizationGrad(dY, X, scale[, input_mean, input_var]). */
static Status grad_batchnorm(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    bool training = node_attr_int(n, "training_mode", 0) != 0;
    for (int i = 1; i < n->noutputs; i++)
        if (grad_output(c, n, i))
            return diag_node(d, n, ST_UNSUPPORTED, "the loss depends on output %d (a running statistic)", i);
    if (!dy)
        return ST_OK;
    if (!training && (grad_needed(c, n, 3) || grad_needed(c, n, 4)))
        return diag_node(d, n, ST_UNSUPPORTED, "a gradient with respect to input_mean or input_var (they are "
                         "statistics, not parameters)");
    /* frozen statistics and parameters (the usual fine-tuning): dX alone, without reading X */
    bool dx_only = !training && !grad_needed(c, n, 1) && !grad_needed(c, n, 2);
    Node *b = norm_grad_node(c, n, "BatchNormalizationGrad", training ? 3 : 5,
                             (Value *[]){dy, dx_only ? NULL : n->inputs[0], n->inputs[1], n->inputs[3], n->inputs[4]},
                             dx_only ? 1 : 3, d);
    if (!b)
        return d->status;
    Status st;
    if ((st = accumulate_param(c, n, 0, b, 0, d)) || (st = accumulate_param(c, n, 1, b, 1, d)))
        return st;
    return accumulate_param(c, n, 2, b, 2, d);
}

/* InstanceNormalization-6: Y = (X - mean) / sqrt(var + epsilon) * scale + B with the mean and biased
 * variance of each (n, c) plane: BatchNormalization's training backward per plane, dscale and dB
 * summed over N. InstanceNormalizationGrad(dY, X, scale). */
static Status grad_instancenorm(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    Node *b = norm_grad_node(c, n, "InstanceNormalizationGrad", 3, (Value *[]){dy, n->inputs[0], n->inputs[1]}, 3,
                             d);
    if (!b)
        return d->status;
    Status st;
    if ((st = accumulate_param(c, n, 0, b, 0, d)) || (st = accumulate_param(c, n, 1, b, 1, d)))
        return st;
    return accumulate_param(c, n, 2, b, 2, d);
}

/* Give forward node n at least `count` outputs (fresh values for the missing optional ones). */
static Status ensure_outputs(GradCtx *c, Node *n, int count, Diag *d)
{
    Graph *g = grad_graph(c);
    if (n->noutputs >= count)
        return ST_OK;
    Value **outs = arena_calloc(g->arena, (size_t)count, sizeof *outs);
    if (!outs)
        return diag_node(d, n, ST_NOMEM, "out of memory adding outputs");
    for (int i = 0; i < n->noutputs; i++)
        outs[i] = n->outputs[i];
    for (int i = n->noutputs; i < count; i++) {
        char *hint = arena_printf(g->arena, "%s_%s", n->name, i == 1 ? "Mean" : "InvStdDev");
        if (!hint || !(outs[i] = graph_new_value(g, hint, d)))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory adding outputs");
        outs[i]->producer = n;
        outs[i]->producer_slot = i;
    }
    n->outputs = outs;
    n->noutputs = count;
    return infer_node(g, n, d);
}

/* LayerNormalization-17: Y = (X - Mean) * InvStdDev * Scale + B over the dims axis..r-1. With
 * g = dY * Scale and xhat = (X - Mean) * InvStdDev:
 *   dX = InvStdDev * (g - mean(g) - xhat * mean(g * xhat))  (means over the normalised dims),
 *   dScale = sum(dY * xhat), dB = sum(dY) over the leading dims (then down to Scale's / B's shape).
 * LayerNormalizationGrad(dY, X, Scale, Mean, InvStdDev) reads the forward's saved statistics (the
 * rule adds the optional Mean/InvStdDev outputs to the forward node when it lacks them). */
static Status grad_layernorm(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    for (int i = 1; i < n->noutputs; i++)
        if (grad_output(c, n, i))
            return diag_node(d, n, ST_UNSUPPORTED, "the loss depends on output %d (Mean or InvStdDev)", i);
    if (!dy)
        return ST_OK;
    if (node_attr_int(n, "stash_type", 1) != DT_FLOAT)
        return diag_node(d, n, ST_UNSUPPORTED, "training with stash_type %lld (only 1, float)",
                         (long long)node_attr_int(n, "stash_type", 1));
    Status st = ensure_outputs(c, n, 3, d);
    if (st)
        return st;
    Node *b = norm_grad_node(c, n, "LayerNormalizationGrad", 5,
                             (Value *[]){dy, n->inputs[0], n->inputs[1], n->outputs[1], n->outputs[2]}, 3, d);
    if (!b)
        return d->status;
    if ((st = accumulate_param(c, n, 0, b, 0, d)) || (st = accumulate_param(c, n, 1, b, 1, d)))
        return st;
    return accumulate_param(c, n, 2, b, 2, d);
}

/* ======================================================================== Dropout in training */

/* Dropout-13 outside training (training_mode absent or false, or ratio 0) is the identity: dX = dY.
 * In training the graph must use onnxtune.Dropout (dropout_to_training), whose mask is reproducible. */
static Status grad_dropout(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    const Value *ratio = node_input(n, 1), *mode = node_input(n, 2);
    bool training = mode && (!value_is_const(mode) || tensor_get_f64(mode->init, 0) != 0);
    bool keeps_all = ratio && value_is_const(ratio) && tensor_get_f64(ratio->init, 0) == 0;
    if (training && !keeps_all)
        return diag_node(d, n, ST_UNSUPPORTED, "Dropout with training_mode set: a training graph uses "
                         "onnxtune.Dropout (dropout_to_training) so that the mask can be recomputed");
    return dy ? grad_accumulate(c, n, 0, dy, d) : ST_OK;
}

/* onnxtune.Dropout (1): X, ratio (optional float scalar, constant; default 0.5), seed (int64 [2]:
 * {seed, step}, a runtime input of the training program) -> Y, optional Mask (bool, X's shape);
 * attribute stream (int, tells the Dropout nodes of a graph apart). Element i is kept when a counter-
 * based uniform draw of (seed, step, stream, i) is >= ratio; Y = keep ? X / (1 - ratio) : 0.
 * onnxtune.DropoutGrad (1): dY, ratio, seed -> dX = keep ? dY / (1 - ratio) : 0 (the mask recomputed). */
static Status shape_dropout_train(Graph *g, Node *n, Diag *d)
{
    const Value *x = n->inputs[0], *ratio = node_input(n, 1), *seed = node_input(n, 2);
    char s[128];
    if (ratio && (ratio->shape.rank != 0 || !dtype_is_float(ratio->dtype)))
        return diag_node(d, n, ST_SHAPE, "input 1 (ratio) must be a float scalar, not %s%s",
                         dtype_name(ratio->dtype), shape_str(&ratio->shape, s, sizeof s));
    if (!seed || seed->dtype != DT_INT64 || seed->shape.rank != 1 || seed->shape.dim[0] != 2)
        return diag_node(d, n, ST_SHAPE, "input 2 (seed) must be int64 [2] (seed, step)");
    op_set_output(n, 0, x->dtype, &x->shape);
    op_set_output(n, 1, DT_BOOL, &x->shape);
    return ST_OK;
}

/* onnxtune.Dropout's gradient: DropoutGrad(dY, ratio, seed) with the same stream. */
static Status grad_dropout_train(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, "DropoutGrad", 3, (Value *[]){dy, n->inputs[1], n->inputs[2]},
                            1, d);
    Status st;
    if (!b || (st = node_set_attr_int(grad_graph(c), b, "stream", node_attr_int(n, "stream", 0), d)) ||
        (st = grad_finish_node(c, b, d)))
        return d->status;
    return grad_accumulate(c, n, 0, b->outputs[0], d);
}

Status dropout_to_training(Graph *g, Node *n, Value *seed, int64_t stream, Diag *d)
{
    if (strcmp(n->op_type, "Dropout") != 0 || (n->domain && n->domain[0]))
        return diag_node(d, n, ST_ERR, "internal: dropout_to_training on a %s node", n->op_type);
    Value *ratio = node_input(n, 1);
    if (ratio && !value_is_const(ratio))
        return diag_node(d, n, ST_UNSUPPORTED, "a ratio that is not a constant ('%s')", ratio->name);
    Status st;
    const char *dom = arena_strdup(g->arena, ONNXTUNE_DOMAIN);
    if (!dom)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    n->domain = dom;
    if ((st = node_set_op(g, n, "Dropout", d)) || (st = node_set_input(g, n, 2, seed, d)) ||
        (st = node_set_attr_int(g, n, "stream", stream, d)))
        return st;
    n->opset = 1;
    return infer_node(g, n, d);
}

/* ======================================================================== the table */

const OpRule norm_rules[] = {
    {.name = "BatchNormalization", .domain = "", .family = "norm", .canon_opset = 15, .canon = canon_batchnorm,
     .shape = shape_batchnorm, .flops = flops_batchnorm, .grad = grad_batchnorm, ARITY(5, 5, 1, 3), REQUIRED(5)},
    {.name = "InstanceNormalization", .domain = "", .family = "norm", .canon_opset = 6,
     .canon = canon_drop_consumed, .shape = shape_instancenorm, .flops = flops_layernorm, .grad = grad_instancenorm,
     ARITY(3, 3, 1, 1), REQUIRED(3)},
    {.name = "LayerNormalization", .domain = "", .family = "norm", .canon_opset = 17, .shape = shape_layernorm,
     .flops = flops_layernorm, .grad = grad_layernorm, ARITY(2, 3, 1, 3), REQUIRED(2)},
    {.name = "LRN", .domain = "", .family = "norm", .canon_opset = 13, .shape = shape_lrn, .flops = flops_lrn,
     .grad = grad_lrn, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {.name = "Dropout", .domain = "", .family = "norm", .canon_opset = 13, .canon = canon_dropout,
     .shape = shape_dropout, .flops = flops_in0, .grad = grad_dropout, ARITY(1, 3, 1, 2), REQUIRED(1)},
    {.name = "BatchNormalizationGrad", .domain = ONNXTUNE_DOMAIN, .family = "norm", .canon_opset = 1,
     .shape = shape_batchnorm_grad, .flops = flops_layernorm},
    {.name = "InstanceNormalizationGrad", .domain = ONNXTUNE_DOMAIN, .family = "norm", .canon_opset = 1,
     .shape = shape_instancenorm_grad, .flops = flops_layernorm},
    {.name = "LayerNormalizationGrad", .domain = ONNXTUNE_DOMAIN, .family = "norm", .canon_opset = 1,
     .shape = shape_layernorm_grad, .flops = flops_layernorm, ARITY(5, 5, 1, 3), REQUIRED(5)},
    {.name = "Dropout", .domain = ONNXTUNE_DOMAIN, .family = "norm", .canon_opset = 1, .shape = shape_dropout_train,
     .flops = flops_in0, .grad = grad_dropout_train, ARITY(3, 3, 1, 2), REQUIRED(1)},
    {.name = "DropoutGrad", .domain = ONNXTUNE_DOMAIN, .family = "norm", .canon_opset = 1,
     .shape = shape_dropout_train, .flops = flops_in0, ARITY(3, 3, 1, 1), REQUIRED(1)},
    {.name = "LRNGrad", .domain = ONNXTUNE_DOMAIN, .family = "norm", .canon_opset = 1, .shape = shape_lrn_grad,
     .flops = flops_lrn, ARITY(2, 2, 1, 1), REQUIRED(2), DTYPES(IN_CLASS(0, TC_FLOAT), IN_SAME(0, 1))},
    {.name = "MeanVarianceNormalization", .domain = "", .family = "norm", .canon_opset = 13, .shape = shape_mvn,
     .flops = flops_layernorm, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {0},
};
