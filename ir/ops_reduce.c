/* ops_reduce.c - rules of the reductions: Reduce{Sum,Mean,Max,Min,Prod,L1,L2,LogSum,LogSumExp,SumSquare},
 * ArgMax/ArgMin and Softmax/LogSoftmax/Hardmax. Canonical forms: every Reduce op in its opset 18 form
 * (axes as optional input 1, keepdims, noop_with_empty_axes), Softmax family at opset 13 (one axis).
 * Softmax-family nodes are not folded (constant softmaxes do not occur in exported models). */
#include "ir.h"

#include <math.h>
#include <string.h>

static double flops_in0(const Node *n)
{
    return n->ninputs > 0 && n->inputs[0] ? shape_numel_or0(&n->inputs[0]->shape) : 0;
}

/* ======================================================================== Reduce* */

typedef enum { RD_SUM, RD_MEAN, RD_MAX, RD_MIN, RD_PROD, RD_L1, RD_L2, RD_LOGSUM, RD_LOGSUMEXP, RD_SUMSQUARE } ReduceKind;

static const struct {
    const char *name;
    ReduceKind kind;
} reduce_ops[] = {
    {"ReduceSum", RD_SUM}, {"ReduceMean", RD_MEAN}, {"ReduceMax", RD_MAX}, {"ReduceMin", RD_MIN},
    {"ReduceProd", RD_PROD}, {"ReduceL1", RD_L1}, {"ReduceL2", RD_L2}, {"ReduceLogSum", RD_LOGSUM},
    {"ReduceLogSumExp", RD_LOGSUMEXP}, {"ReduceSumSquare", RD_SUMSQUARE},
};

static int reduce_kind(const char *op)
{
    for (size_t i = 0; i < sizeof reduce_ops / sizeof reduce_ops[0]; i++)
        if (strcmp(reduce_ops[i].name, op) == 0)
            return (int)reduce_ops[i].kind;
    return -1;
}

/* ReduceSum-1/11 and every other Reduce op before opset 18 take `axes` as an attribute; opset 18 (13
 * for ReduceSum) moved it to optional input 1. keepdims and noop_with_empty_axes keep their meaning
 * (noop_with_empty_axes did not exist before, and its default 0 is the old behaviour). */
static Status canon_reduce(Graph *g, Node *n, Diag *d)
{
    const Attr *a = node_attr(n, "axes");
    if (!a)
        return ST_OK;
    if (a->type != AT_INTS && a->type != AT_INT)
        return diag_node(d, n, ST_INVALID, "attribute axes must be a list of integers");
    if (n->ninputs > 1 && n->inputs[1])
        return diag_node(d, n, ST_INVALID, "has both an axes attribute and an axes input");
    IntList axes;
    (void)op_attr_ints(n, "axes", &axes);
    Value *v = graph_const_ints(g, "axes", axes.v, axes.n, d);
    if (!v || node_set_input(g, n, 1, v, d))
        return d->status;
    node_remove_attr(n, "axes");
    return ST_OK;
}

/* Normalise an axes list in place and mark the reduced dims; ST_SHAPE on range errors or repeats. */
static Status reduce_axes(const Node *n, const IntList *axes, int rank, bool *reduced, Diag *d)
{
    for (int i = 0; i < rank; i++)
        reduced[i] = false;
    for (size_t k = 0; k < axes->n; k++) {
        int ax;
        char what[32];
        snprintf(what, sizeof what, "axes[%zu]", k);
        Status st = op_axis(n, what, axes->v[k], rank, &ax, d);
        if (st)
            return st;
        if (reduced[ax])
            return diag_node(d, n, ST_SHAPE, "axis %d appears twice in axes", ax);
        reduced[ax] = true;
    }
    return ST_OK;
}

/* Which dims of X the node reduces (all when axes is empty and noop_with_empty_axes=0). Sets *noop
 * for an identity, *known false when axes is a run-time input. */
static Status reduce_plan(Graph *g, const Node *n, int rank, bool *reduced, bool *noop, bool *known, Diag *d)
{
    IntList axes;
    Status st = op_input_ints(g, n, 1, &axes, d);
    if (st)
        return st;
    *noop = false;
    *known = true;
    if (n->ninputs > 1 && n->inputs[1] && !axes.known) {
        *known = false;
        return ST_OK;
    }
    if (axes.n == 0) {
        *noop = node_attr_int(n, "noop_with_empty_axes", 0) != 0;
        for (int i = 0; i < rank; i++)
            reduced[i] = !*noop;
        return ST_OK;
    }
    return reduce_axes(n, &axes, rank, reduced, d);
}

static Status shape_reduce(Graph *g, Node *n, Diag *d)
{
    Status st;
    if ((st = op_check_arity(n, 1, 2, 1, 1, d)) || (st = op_require_inputs(n, 1, d)))
        return st;
    const Value *x = n->inputs[0];
    if (x->dtype != DT_UNDEFINED && !dtype_is_float(x->dtype) && !dtype_is_int(x->dtype))
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' is %s, not a numeric type", x->name, dtype_name(x->dtype));
    const Value *ax = node_input(n, 1);
    if (ax && ax->dtype != DT_UNDEFINED && ax->dtype != DT_INT64)
        return diag_node(d, n, ST_SHAPE, "input 1 (axes) '%s' must be int64, not %s", ax->name, dtype_name(ax->dtype));
    bool keep = node_attr_int(n, "keepdims", 1) != 0;
    if (x->shape.rank < 0) {
        op_set_output(n, 0, x->dtype, NULL);
        return ST_OK;
    }
    bool reduced[IR_MAX_RANK], noop, known;
    if ((st = reduce_plan(g, n, x->shape.rank, reduced, &noop, &known, d)))
        return st;
    Shape out = shape_scalar();
    if (!known) {
        /* axes computed at run time: with keepdims the rank is kept but any dim may become 1 */
        out.rank = keep ? x->shape.rank : -1;
        for (int i = 0; i < out.rank; i++)
            out.dim[i] = x->shape.dim[i] == 1 ? 1 : -1;
        if (!keep && ax->shape.rank == 1 && ax->shape.dim[0] >= 0 && ax->shape.dim[0] <= x->shape.rank) {
            out.rank = x->shape.rank - (int)ax->shape.dim[0];
            for (int i = 0; i < out.rank; i++)
                out.dim[i] = -1;
        }
        op_set_output(n, 0, x->dtype, &out);
        return ST_OK;
    }
    for (int i = 0; i < x->shape.rank; i++) {
        if (!reduced[i]) {
            dim_copy(&out, out.rank++, &x->shape, i);
        } else if (keep) {
            out.dim[out.rank] = 1;
            out.sym[out.rank++] = NULL;
        }
    }
    op_set_output(n, 0, x->dtype, &out);
    return ST_OK;
}

/* Output flat index of each input element: the input's multi-index with reduced dims dropped
 * (keepdims only inserts 1-dims, which do not change flat indices). */
static size_t reduce_out_index(const Shape *in, const bool *reduced, size_t flat)
{
    size_t out = 0, stride = 1;
    for (int k = in->rank - 1; k >= 0; k--) {
        size_t idx = flat % (size_t)in->dim[k];
        flat /= (size_t)in->dim[k];
        if (!reduced[k]) {
            out += idx * stride;
            stride *= (size_t)in->dim[k];
        }
    }
    return out;
}

static Status fold_reduce(Graph *g, Node *n, Diag *d)
{
    const Tensor *x = n->inputs[0]->init;
    Tensor *y;
    Status st;
    bool reduced[IR_MAX_RANK], noop, known;
    if ((st = reduce_plan(g, n, x->shape.rank, reduced, &noop, &known, d)) || (st = op_fold_output(g, n, 0, &y, d)))
        return st;
    if (!dtype_is_float(x->dtype) && !dtype_is_int(x->dtype))
        return diag_node(d, n, ST_UNSUPPORTED, "cannot fold %s on %s", n->op_type, dtype_name(x->dtype));
    ReduceKind k = (ReduceKind)reduce_kind(n->op_type);
    size_t count = y->numel ? x->numel / y->numel : 0;
    /* integers stay exact for the ops that keep them integral */
    if (dtype_is_int(x->dtype) && (k == RD_SUM || k == RD_PROD || k == RD_MAX || k == RD_MIN || k == RD_SUMSQUARE ||
                                   k == RD_L1)) {
        int64_t *acc = arena_calloc(g->arena, y->numel ? y->numel : 1, sizeof *acc);
        if (!acc)
            return diag_node(d, n, ST_NOMEM, "out of memory folding");
        for (size_t i = 0; i < y->numel; i++)
            acc[i] = k == RD_PROD ? 1 : k == RD_MAX ? INT64_MIN : k == RD_MIN ? INT64_MAX : 0;
        for (size_t i = 0; i < x->numel; i++) {
            size_t o = noop ? i : reduce_out_index(&x->shape, reduced, i);
            int64_t v = tensor_get_i64(x, i);
            uint64_t ua = (uint64_t)acc[o], uv = (uint64_t)v; /* wrap-around, like the kernels */
            switch (k) {
            case RD_SUM: acc[o] = (int64_t)(ua + uv); break;
            case RD_PROD: acc[o] = (int64_t)(ua * uv); break;
            case RD_MAX: acc[o] = v > acc[o] ? v : acc[o]; break;
            case RD_MIN: acc[o] = v < acc[o] ? v : acc[o]; break;
            case RD_SUMSQUARE: acc[o] = (int64_t)(ua + uv * uv); break;
            case RD_L1: acc[o] = (int64_t)(ua + (v < 0 ? 0 - uv : uv)); break;
            default: break;
            }
        }
        for (size_t i = 0; i < y->numel; i++)
            tensor_set_i64(y, i, acc[i]);
        return ST_OK;
    }
    /* everything else accumulates in double, then finishes per output */
    double *acc = arena_calloc(g->arena, y->numel ? y->numel : 1, sizeof *acc);
    if (!acc)
        return diag_node(d, n, ST_NOMEM, "out of memory folding");
    for (size_t i = 0; i < y->numel; i++)
        acc[i] = k == RD_PROD ? 1 : k == RD_MAX ? -INFINITY : k == RD_MIN ? INFINITY : 0;
    for (size_t i = 0; i < x->numel; i++) {
        size_t o = noop ? i : reduce_out_index(&x->shape, reduced, i);
        double v = tensor_get_f64(x, i);
        switch (k) {
        case RD_SUM: case RD_MEAN: case RD_LOGSUM: acc[o] += v; break;
        case RD_MAX: acc[o] = isnan(v) || v > acc[o] ? v : acc[o]; break;
        case RD_MIN: acc[o] = isnan(v) || v < acc[o] ? v : acc[o]; break;
        case RD_PROD: acc[o] *= v; break;
        case RD_L1: acc[o] += fabs(v); break;
        case RD_L2: case RD_SUMSQUARE: acc[o] += v * v; break;
        case RD_LOGSUMEXP: acc[o] += exp(v); break;
        }
    }
    for (size_t i = 0; i < y->numel; i++) {
        double a = acc[i];
        switch (k) {
        case RD_MEAN: a = noop ? a : a / (double)count; break;
        case RD_L2: a = sqrt(a); break;
        case RD_LOGSUM: case RD_LOGSUMEXP: a = log(a); break;
        default: break;
        }
        tensor_set_f64(y, i, a);
    }
    return ST_OK;
}

/* ---- gradients of the reductions ---- */

/* One backward node with one output (default domain); NULL on error (the Diag says why). */
static Value *bw1(GradCtx *c, const Node *fwd, const char *op, int nin, Value *const *in, Diag *d)
{
    Node *m = grad_add_node(c, fwd, "", op, nin, in, 1, d);
    return m ? m->outputs[0] : NULL;
}

/* g (of Y's shape) broadcast back over X: Expand(Reshape(g, X's shape with reduced dims 1), shape(X)). */
static Value *grad_reduce_back(GradCtx *c, Node *n, Value *g, Diag *d)
{
    Graph *gr = grad_graph(c);
    const Value *x = n->inputs[0];
    char a[128];
    if (!shape_is_static(&x->shape)) {
        diag_node(d, n, ST_SHAPE, "training needs static shapes, but input 0 is %s (pass --batch)",
                  shape_str(&x->shape, a, sizeof a));
        return NULL;
    }
    bool reduced[IR_MAX_RANK], noop, known;
    if (reduce_plan(gr, n, x->shape.rank, reduced, &noop, &known, d))
        return NULL;
    if (!known) {
        diag_node(d, n, ST_UNSUPPORTED, "training needs constant axes");
        return NULL;
    }
    if (noop)
        return g;
    Shape kept = x->shape;
    for (int i = 0; i < x->shape.rank; i++)
        if (reduced[i])
            kept.dim[i] = 1;
    if (!shape_equal(&g->shape, &kept)) {
        Value *t = graph_const_ints(gr, "grad_shape", kept.dim, (size_t)kept.rank, d);
        if (!t || !(g = bw1(c, n, "Reshape", 2, (Value *[]){g, t}, d)))
            return NULL;
    }
    if (shape_equal(&kept, &x->shape))
        return g;
    Value *t = graph_const_ints(gr, "grad_shape", x->shape.dim, (size_t)x->shape.rank, d);
    return t ? bw1(c, n, "Expand", 2, (Value *[]){g, t}, d) : NULL;
}

/* ReduceSum: Y[kept] = sum over the reduced dims of X:  dX = broadcast of dY.
 * ReduceMean: Y = ReduceSum(X) / count:                 dX = broadcast of dY / count
 * (scaled before the broadcast, on fewer elements). */
static Status grad_reduce_sum_mean(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    size_t nx, ny;
    if (strcmp(n->op_type, "ReduceMean") == 0 && shape_numel(&n->inputs[0]->shape, &nx) &&
        shape_numel(&dy->shape, &ny) && ny > 0 && nx != ny) {
        Value *k = graph_const_scalar(grad_graph(c), "mean_scale", dy->dtype, (double)ny / (double)nx, d);
        if (!k || !(dy = bw1(c, n, "Mul", 2, (Value *[]){dy, k}, d)))
            return d->status;
    }
    Value *dx = grad_reduce_back(c, n, dy, d);
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* Y = ReduceMax(X) (ReduceMin alike): dX = dY * [X == Y] / #{ties}, ties sharing the gradient evenly
 * as torch.amax/amin do.  Y = ReduceL2(X) = sqrt(sum X^2): dX = dY * X / Y (not defined at Y = 0).
 * Y = ReduceSumSquare(X): dX = 2 X dY.  Y = ReduceL1(X): dX = sign(X) dY.
 * Y = ReduceLogSumExp(X): dX = dY * exp(X - Y).  dY and Y are broadcast back over X first. */
static Status grad_reduce_other(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Graph *g = grad_graph(c);
    Value *x = n->inputs[0], *y = n->outputs[0], *dx = NULL;
    ReduceKind k = (ReduceKind)reduce_kind(n->op_type);
    if (k == RD_MAX || k == RD_MIN) {
        Value *yb = grad_reduce_back(c, n, y, d);
        Value *eq = yb ? bw1(c, n, "Equal", 2, (Value *[]){x, yb}, d) : NULL;
        Node *m = eq ? grad_new_node(c, n, "", "Cast", 1, &eq, 1, d) : NULL;
        if (!m || node_set_attr_int(g, m, "to", x->dtype, d) || grad_finish_node(c, m, d))
            return d->status;
        Value *mask = m->outputs[0];
        /* the tie count, of Y's shape: the mask reduced like the forward node */
        Value *in[2] = {mask, node_input(n, 1)};
        Node *cnt = grad_new_node(c, n, "", "ReduceSum", in[1] ? 2 : 1, in, 1, d);
        if (!cnt || node_set_attr_int(g, cnt, "keepdims", node_attr_int(n, "keepdims", 1), d) ||
            node_set_attr_int(g, cnt, "noop_with_empty_axes", node_attr_int(n, "noop_with_empty_axes", 0), d) ||
            grad_finish_node(c, cnt, d))
            return d->status;
        Value *share = bw1(c, n, "Div", 2, (Value *[]){dy, cnt->outputs[0]}, d);
        Value *sb = share ? grad_reduce_back(c, n, share, d) : NULL;
        dx = sb ? bw1(c, n, "Mul", 2, (Value *[]){sb, mask}, d) : NULL;
        return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
    }
    Value *dyb = grad_reduce_back(c, n, dy, d), *t = NULL;
    if (!dyb)
        return d->status;
    switch (k) {
    case RD_L2: {
        Value *yb = grad_reduce_back(c, n, y, d);
        t = yb ? bw1(c, n, "Div", 2, (Value *[]){x, yb}, d) : NULL;
        break;
    }
    case RD_SUMSQUARE: {
        Value *two = graph_const_scalar(g, "two", x->dtype, 2, d);
        t = two ? bw1(c, n, "Mul", 2, (Value *[]){x, two}, d) : NULL;
        break;
    }
    case RD_L1:
        t = bw1(c, n, "Sign", 1, &x, d);
        break;
    case RD_LOGSUMEXP: {
        Value *yb = grad_reduce_back(c, n, y, d);
        t = yb ? bw1(c, n, "Sub", 2, (Value *[]){x, yb}, d) : NULL;
        t = t ? bw1(c, n, "Exp", 1, &t, d) : NULL;
        break;
    }
    default:
        return diag_node(d, n, ST_ERR, "internal: no gradient rule for %s", n->op_type);
    }
    dx = t ? bw1(c, n, "Mul", 2, (Value *[]){dyb, t}, d) : NULL;
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* v reduced like forward node n (its axes input and keepdims / noop_with_empty_axes) by `op`. */
static Value *reduce_like(GradCtx *c, Node *n, const char *op, Value *v, Diag *d)
{
    Graph *g = grad_graph(c);
    Value *in[2] = {v, node_input(n, 1)};
    Node *m = grad_new_node(c, n, "", op, in[1] ? 2 : 1, in, 1, d);
    if (!m || node_set_attr_int(g, m, "keepdims", node_attr_int(n, "keepdims", 1), d) ||
        node_set_attr_int(g, m, "noop_with_empty_axes", node_attr_int(n, "noop_with_empty_axes", 0), d) ||
        grad_finish_node(c, m, d))
        return NULL;
    return m->outputs[0];
}

/* Y = ReduceProd(X): dX = dY * the product of the other elements of X's group. With P the product of the
 * group's non-zero elements and k its number of zeros (both broadcast back over X):
 *   dX = dY * P * ([k = 0] / X'  +  [X = 0] * [k = 1]),   X' = X with zeros replaced by 1
 * exact with zeros, as torch.prod's backward (not dY * Y / X, which is 0/0 there). */
static Status grad_reduce_prod(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Graph *g = grad_graph(c);
    Value *x = n->inputs[0];
    DType t = x->dtype;
    Value *zero = graph_const_scalar(g, "zero", t, 0, d), *one = graph_const_scalar(g, "one", t, 1, d);
    if (!zero || !one)
        return d->status;
    Value *isz = bw1(c, n, "Equal", 2, (Value *[]){x, zero}, d);
    Value *xs = isz ? bw1(c, n, "Where", 3, (Value *[]){isz, one, x}, d) : NULL;
    Node *cz = isz ? grad_new_node(c, n, "", "Cast", 1, &isz, 1, d) : NULL;
    if (!xs || !cz || node_set_attr_int(g, cz, "to", t, d) || grad_finish_node(c, cz, d))
        return d->status;
    Value *zf = cz->outputs[0];
    Value *p = reduce_like(c, n, "ReduceProd", xs, d), *k = p ? reduce_like(c, n, "ReduceSum", zf, d) : NULL;
    Value *pb = k ? grad_reduce_back(c, n, p, d) : NULL, *kb = pb ? grad_reduce_back(c, n, k, d) : NULL;
    Value *dyb = kb ? grad_reduce_back(c, n, dy, d) : NULL;
    if (!dyb)
        return d->status;
    Value *f[2];
    for (int i = 0; i < 2; i++) { /* [k = 0], [k = 1] as X's type */
        Value *e = bw1(c, n, "Equal", 2, (Value *[]){kb, i ? one : zero}, d);
        Node *m = e ? grad_new_node(c, n, "", "Cast", 1, &e, 1, d) : NULL;
        if (!m || node_set_attr_int(g, m, "to", t, d) || grad_finish_node(c, m, d))
            return d->status;
        f[i] = m->outputs[0];
    }
    Value *a = bw1(c, n, "Div", 2, (Value *[]){f[0], xs}, d);
    Value *b = a ? bw1(c, n, "Mul", 2, (Value *[]){zf, f[1]}, d) : NULL;
    Value *s = b ? bw1(c, n, "Add", 2, (Value *[]){a, b}, d) : NULL;
    Value *dp = s ? bw1(c, n, "Mul", 2, (Value *[]){dyb, pb}, d) : NULL;
    Value *dx = dp ? bw1(c, n, "Mul", 2, (Value *[]){dp, s}, d) : NULL;
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* ======================================================================== ArgMax, ArgMin */

static Status shape_arg(Graph *g, Node *n, Diag *d)
{
    Status st;
    if ((st = op_check_arity(n, 1, 1, 1, 1, d)) || (st = op_require_inputs(n, 1, d)))
        return st;
    const Value *x = n->inputs[0];
    if (x->shape.rank < 0) {
        op_set_output(n, 0, DT_INT64, NULL);
        return ST_OK;
    }
    int axis;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->shape.rank, &axis, d)))
        return st;
    bool keep = node_attr_int(n, "keepdims", 1) != 0;
    Shape out = shape_scalar();
    for (int i = 0; i < x->shape.rank; i++) {
        if (i != axis) {
            dim_copy(&out, out.rank++, &x->shape, i);
        } else if (keep) {
            out.dim[out.rank] = 1;
            out.sym[out.rank++] = NULL;
        }
    }
    op_set_output(n, 0, DT_INT64, &out);
    return ST_OK;
}

static Status fold_arg(Graph *g, Node *n, Diag *d)
{
    const Tensor *x = n->inputs[0]->init;
    Tensor *y;
    Status st;
    int axis;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->shape.rank, &axis, d)) ||
        (st = op_fold_output(g, n, 0, &y, d)))
        return st;
    bool is_max = strcmp(n->op_type, "ArgMax") == 0, last = node_attr_int(n, "select_last_index", 0) != 0;
    bool ints = dtype_is_int(x->dtype);
    size_t len = (size_t)x->shape.dim[axis], inner = 1;
    for (int i = axis + 1; i < x->shape.rank; i++)
        inner *= (size_t)x->shape.dim[i];
    for (size_t o = 0; o < y->numel; o++) {
        size_t outer = o / inner, in = o % inner, base = outer * len * inner + in, best = 0;
        for (size_t j = 1; j < len; j++) {
            size_t a = base + j * inner, b = base + best * inner;
            int cmp;
            if (ints) {
                int64_t va = tensor_get_i64(x, a), vb = tensor_get_i64(x, b);
                cmp = (va > vb) - (va < vb);
            } else {
                double va = tensor_get_f64(x, a), vb = tensor_get_f64(x, b);
                cmp = (va > vb) - (va < vb);
            }
            if (!is_max)
                cmp = -cmp;
            if (cmp > 0 || (cmp == 0 && last))
                best = j;
        }
        tensor_set_i64(y, o, (int64_t)best);
    }
    return ST_OK;
}

/* ======================================================================== Softmax, LogSoftmax, Hardmax */

/* Before opset 13 these ops coerced X to 2-D at `axis` (default 1): [d0..d(a-1)] x [da..dn-1], and
 * normalised each row. Opset 13 normalises along the one dim `axis` (default -1). The two agree when
 * axis is the last dim; otherwise the old form is Flatten(axis) -> op(axis=-1) -> Reshape(Shape(X)),
 * which folding turns into a constant target shape when X's shape is static. */
static Status canon_softmax(Graph *g, Node *n, Diag *d)
{
    if (n->opset <= 0 || n->opset >= 13)
        return ST_OK;
    if (n->ninputs < 1 || !n->inputs[0] || n->noutputs < 1)
        return ST_OK; /* the shape rule reports it */
    int64_t axis = node_attr_int(n, "axis", 1);
    Value *x = n->inputs[0];
    int rank = x->shape.rank;
    if (rank >= 0 && (axis == rank - 1 || axis == -1))
        return node_set_attr_int(g, n, "axis", -1, d);
    if (rank < 0 && axis == -1)
        return node_set_attr_int(g, n, "axis", -1, d);
    Node *flat = graph_add_node1(g, "Flatten", n->name, 1, &x, "softmax_2d", d);
    if (!flat || node_set_attr_int(g, flat, "axis", axis, d))
        return d->status;
    Node *shp = graph_add_node1(g, "Shape", n->name, 1, &x, "softmax_shape", d);
    if (!shp)
        return d->status;
    Value *y = n->outputs[0];
    Value *rows = graph_new_value(g, "softmax_rows", d);
    if (!rows)
        return d->status;
    n->inputs[0] = flat->outputs[0];
    n->outputs[0] = rows;
    rows->producer = n;
    rows->producer_slot = 0;
    Value *rin[2] = {rows, shp->outputs[0]};
    char *name = arena_printf(g->arena, "%s_reshape", n->name);
    Node *re = name ? graph_add_node(g, "Reshape", "", name, 2, rin, 1, &y, d) : NULL;
    if (!re)
        return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    re->opset = re->rule ? re->rule->canon_opset : 14;
    return node_set_attr_int(g, n, "axis", -1, d);
}

static Status shape_softmax(Graph *g, Node *n, Diag *d)
{
    Status st;
    if ((st = op_check_arity(n, 1, 1, 1, 1, d)) || (st = op_require_inputs(n, 1, d)))
        return st;
    const Value *x = n->inputs[0];
    if (x->dtype != DT_UNDEFINED && !dtype_is_float(x->dtype))
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' is %s, not a float type", x->name, dtype_name(x->dtype));
    int axis;
    if (x->shape.rank >= 0 && (st = op_axis(n, "axis", node_attr_int(n, "axis", -1), x->shape.rank, &axis, d)))
        return st;
    op_set_output(n, 0, x->dtype, &x->shape);
    return ST_OK;
}

static double flops_softmax(const Node *n)
{
    return 4 * flops_in0(n); /* max, exp, sum, divide */
}

/* Y = softmax(X) along axis:     dX = Y * (dY - sum_axis(dY * Y)),
 * Y = log_softmax(X) along axis: dX = dY - exp(Y) * sum_axis(dY),
 * each one fused pass over [outer, axis, inner]: onnxtune.SoftmaxGrad / LogSoftmaxGrad(dY, Y), attr axis.
 * Hardmax is piecewise constant: no gradient flows through it. */
static Status grad_softmax(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0) || strcmp(n->op_type, "Hardmax") == 0)
        return ST_OK;
    char op[32];
    snprintf(op, sizeof op, "%sGrad", n->op_type);
    Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, op, 2, (Value *[]){dy, n->outputs[0]}, 1, d);
    if (!m || node_set_attr_int(grad_graph(c), m, "axis", node_attr_int(n, "axis", -1), d) ||
        grad_finish_node(c, m, d))
        return d->status;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* onnxtune.SoftmaxGrad / LogSoftmaxGrad(dY, Y) -> dX: float, both of one shape, a valid axis. */
static Status shape_softmax_grad(Graph *g, Node *n, Diag *d)
{
    Status st;
    if ((st = op_check_arity(n, 2, 2, 1, 1, d)) || (st = op_require_inputs(n, 2, d)) ||
        (st = op_same_dtype(n, 0, 1, d)))
        return st;
    const Value *dy = n->inputs[0], *y = n->inputs[1];
    if (dy->dtype != DT_UNDEFINED && !dtype_is_float(dy->dtype))
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' is %s, not a float type", dy->name, dtype_name(dy->dtype));
    if (shape_is_static(&dy->shape) && shape_is_static(&y->shape) && !shape_equal(&dy->shape, &y->shape)) {
        char a[128], b[128];
        return diag_node(d, n, ST_SHAPE, "input 0 (dY) %s and input 1 (Y) %s differ in shape",
                         shape_str(&dy->shape, a, sizeof a), shape_str(&y->shape, b, sizeof b));
    }
    int axis;
    if (y->shape.rank >= 0 && (st = op_axis(n, "axis", node_attr_int(n, "axis", -1), y->shape.rank, &axis, d)))
        return st;
    op_set_output(n, 0, y->dtype, &y->shape);
    return ST_OK;
}

/* ======================================================================== the table */

#define REDUCE(op, v) {.name = op, .domain = "", .family = "reduce", .canon_opset = v, .canon = canon_reduce, \
    .shape = shape_reduce, .fold = fold_reduce, .flops = flops_in0}
#define REDUCE_GRAD(op, v, g) {.name = op, .domain = "", .family = "reduce", .canon_opset = v, \
    .canon = canon_reduce, .shape = shape_reduce, .fold = fold_reduce, .flops = flops_in0, .grad = g}
#define SOFTMAX(op) {.name = op, .domain = "", .family = "reduce", .canon_opset = 13, .canon = canon_softmax, \
    .shape = shape_softmax, .flops = flops_softmax, .grad = grad_softmax}

const OpRule reduce_rules[] = {
    REDUCE_GRAD("ReduceSum", 13, grad_reduce_sum_mean), REDUCE_GRAD("ReduceMean", 18, grad_reduce_sum_mean),
    REDUCE_GRAD("ReduceMax", 18, grad_reduce_other), REDUCE_GRAD("ReduceMin", 18, grad_reduce_other),
    REDUCE_GRAD("ReduceProd", 18, grad_reduce_prod), REDUCE_GRAD("ReduceL1", 18, grad_reduce_other),
    REDUCE_GRAD("ReduceL2", 18, grad_reduce_other), REDUCE("ReduceLogSum", 18),
    REDUCE_GRAD("ReduceLogSumExp", 18, grad_reduce_other), REDUCE_GRAD("ReduceSumSquare", 18, grad_reduce_other),
    {.name = "ArgMax", .domain = "", .family = "reduce", .canon_opset = 13, .shape = shape_arg, .fold = fold_arg,
     .flops = flops_in0},
    {.name = "ArgMin", .domain = "", .family = "reduce", .canon_opset = 13, .shape = shape_arg, .fold = fold_arg,
     .flops = flops_in0},
    SOFTMAX("Softmax"), SOFTMAX("LogSoftmax"), SOFTMAX("Hardmax"),
    /* backward ops (onnxtune domain) */
    {.name = "SoftmaxGrad", .domain = ONNXTUNE_DOMAIN, .family = "reduce", .canon_opset = 1,
     .shape = shape_softmax_grad, .flops = flops_softmax},
    {.name = "LogSoftmaxGrad", .domain = ONNXTUNE_DOMAIN, .family = "reduce", .canon_opset = 1,
     .shape = shape_softmax_grad, .flops = flops_softmax},
    {0},
};
