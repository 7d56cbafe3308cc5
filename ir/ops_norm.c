/* ops_norm.c - rules of the normalisation ops: BatchNormalization (inference and training_mode),
 * InstanceNormalization, LayerNormalization (opset 17, with Mean/InvStdDev outputs), LRN, Dropout
 * (output and optional mask) and MeanVarianceNormalization. Shape and canonicalisation only: nothing
 * here folds (Dropout in training mode is random, the others never see constant activations). */
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
    if ((st = op_check_arity(n, 5, 5, 1, 3, d)) || (st = op_require_inputs(n, 5, d)))
        return st;
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
    if ((st = op_check_arity(n, 3, 3, 1, 1, d)) || (st = op_require_inputs(n, 3, d)))
        return st;
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
    if ((st = op_check_arity(n, 2, 3, 1, 3, d)) || (st = op_require_inputs(n, 2, d)))
        return st;
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
    Status st;
    if ((st = op_check_arity(n, 1, 1, 1, 1, d)) || (st = op_require_inputs(n, 1, d)))
        return st;
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
    if ((st = op_check_arity(n, 1, 3, 1, 2, d)) || (st = op_require_inputs(n, 1, d)))
        return st;
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
    if ((st = op_check_arity(n, 1, 1, 1, 1, d)) || (st = op_require_inputs(n, 1, d)))
        return st;
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

/* ======================================================================== the table */

const OpRule norm_rules[] = {
    {.name = "BatchNormalization", .domain = "", .family = "norm", .canon_opset = 15, .canon = canon_batchnorm,
     .shape = shape_batchnorm, .flops = flops_batchnorm},
    {.name = "InstanceNormalization", .domain = "", .family = "norm", .canon_opset = 6,
     .canon = canon_drop_consumed, .shape = shape_instancenorm, .flops = flops_layernorm},
    {.name = "LayerNormalization", .domain = "", .family = "norm", .canon_opset = 17, .shape = shape_layernorm,
     .flops = flops_layernorm},
    {.name = "LRN", .domain = "", .family = "norm", .canon_opset = 13, .shape = shape_lrn, .flops = flops_lrn},
    {.name = "Dropout", .domain = "", .family = "norm", .canon_opset = 13, .canon = canon_dropout,
     .shape = shape_dropout, .flops = flops_in0},
    {.name = "MeanVarianceNormalization", .domain = "", .family = "norm", .canon_opset = 13, .shape = shape_mvn,
     .flops = flops_layernorm},
    {0},
};
