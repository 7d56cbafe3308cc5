/* ops_pool.c - rules of the pooling family: MaxPool (with its Indices output), AveragePool, LpPool and
 * the global pools, the gradient rules of all of them and their backward ops onnxtune.MaxPoolGrad /
 * AveragePoolGrad / LpPoolGrad. Window geometry is ops_conv.c's conv_geom.
 * MaxRoiPool and MaxUnpool are not here; pools are never folded. */
#include "ir.h"

#include <math.h>
#include <string.h>

/* X [N, C, D1..Dk] -> Y [N, C, O1..Ok]; MaxPool-8+ may also output Indices (int64, same shape). */
static Status pool_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    bool maxpool = strcmp(n->op_type, "MaxPool") == 0;
    Status st;
    const Shape *x = &n->inputs[0]->shape;
    DType t = n->inputs[0]->dtype;
    IntList ks;
    if (!op_attr_ints(n, "kernel_shape", &ks))
        return diag_node(d, n, ST_INVALID, "attribute kernel_shape is required");
    char a[160];
    int rank = x->rank >= 0 ? x->rank : (int)ks.n + 2;
    if (x->rank >= 0 && (x->rank < 3 || ks.n != (size_t)x->rank - 2))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s does not fit kernel_shape of %zu dims (needs N, C and "
                         "%zu spatial dims)", shape_str(x, a, sizeof a), ks.n, ks.n);
    if (dtype_is_int(t) && !(maxpool && (t == DT_INT8 || t == DT_UINT8)))
        return diag_node(d, n, ST_SHAPE, "input 0 is %s; %s takes floats%s", dtype_name(t), n->op_type,
                         maxpool ? " or int8/uint8" : "");
    ConvGeom g;
    if ((st = conv_geom(n, rank - 2, NULL, &g, d)))
        return st;
    if (strcmp(n->op_type, "LpPool") == 0 && node_attr_int(n, "p", 2) < 1)
        return diag_node(d, n, ST_INVALID, "attribute p must be >= 1");
    Shape out = shape_make(rank, NULL);
    if (x->rank >= 0) {
        dim_copy(&out, 0, x, 0);
        dim_copy(&out, 1, x, 1);
    }
    for (int i = 0; i < rank - 2; i++) {
        int64_t in = x->rank >= 0 ? x->dim[2 + i] : -1;
        out.dim[2 + i] = conv_geom_out(&g, i, in);
        if (out.dim[2 + i] == 0 && in > 0)
            return diag_node(d, n, ST_SHAPE, "input 0 shape %s: spatial dim %d (%lld, padded %lld+%lld) is smaller "
                             "than the window %lld (dilation %lld)", shape_str(x, a, sizeof a), i, (long long)in,
                             (long long)g.pad_begin[i], (long long)g.pad_end[i], (long long)g.kernel[i],
                             (long long)g.dilation[i]);
    }
    op_set_output(n, 0, t, &out);
    op_set_output(n, 1, DT_INT64, &out);
    return ST_OK;
}

/* LpPool-1 took p as a float; LpPool-2 (and GlobalLpPool-2) an int. */
static Status lppool_canon(Graph *g, Node *n, Diag *d)
{
    const Attr *p = node_attr(n, "p");
    if (!p || p->type != AT_FLOAT)
        return ST_OK;
    float f = p->f;
    if (f != (float)(int64_t)f)
        return diag_node(d, n, ST_UNSUPPORTED, "a non-integer p = %g", (double)f);
    return node_set_attr_int(g, n, "p", (int64_t)f, d);
}

/* X [N, C, D1..Dk] -> Y [N, C, 1..1] */
static Status global_pool_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    const Shape *x = &n->inputs[0]->shape;
    char a[160];
    if (x->rank >= 0 && x->rank < 3)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be at least 3-D (N, C, spatial...)",
                         shape_str(x, a, sizeof a));
    if (x->rank < 0) {
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    Shape out = *x;
    for (int i = 2; i < x->rank; i++)
        out.dim[i] = 1, out.sym[i] = NULL;
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

/* Window reads: output elements times the window size. */
static double pool_flops(const Node *n)
{
    IntList ks;
    if (n->noutputs < 1 || !op_attr_ints(n, "kernel_shape", &ks))
        return 0;
    double w = 1;
    for (size_t i = 0; i < ks.n; i++)
        w *= (double)ks.v[i];
    return shape_numel_or0(&n->outputs[0]->shape) * w;
}

static double global_pool_flops(const Node *n)
{
    return n->ninputs > 0 && n->inputs[0] ? shape_numel_or0(&n->inputs[0]->shape) : 0;
}

/* ======================================================================== gradients */

/* onnxtune.MaxPoolGrad (1): dY [N, C, O...], X [N, C, D...] -> dX [N, C, D...]; MaxPool's window
 * attributes with explicit pads. */
static Status maxpool_grad_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    Status st;
    const Shape *dy = &n->inputs[0]->shape, *x = &n->inputs[1]->shape;
    char a[160], b[160];
    if (x->rank < 3 || dy->rank != x->rank || !shape_is_static(x) || dim_conflict(dy, 0, x, 0) ||
        dim_conflict(dy, 1, x, 1))
        return diag_node(d, n, ST_SHAPE, "dY %s and X %s must be static [N, C, spatial...] of one rank",
                         shape_str(dy, a, sizeof a), shape_str(x, b, sizeof b));
    ConvGeom g;
    if ((st = conv_geom(n, x->rank - 2, NULL, &g, d)) || (st = conv_geom_check(n, &g, x, dy, d)))
        return st;
    op_set_output(n, 0, n->inputs[0]->dtype, x);
    return ST_OK;
}

/* onnxtune.AveragePoolGrad (1): dY [N, C, O...] -> dX of shape attribute input_shape [N, C, D...];
 * AveragePool's attributes (count_include_pad, ceil_mode) with explicit pads. */
static Status avgpool_grad_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    Status st;
    const Shape *dy = &n->inputs[0]->shape;
    IntList is;
    if (!op_attr_ints(n, "input_shape", &is))
        return diag_node(d, n, ST_INVALID, "attribute input_shape is required");
    Shape x = shape_make((int)(is.n <= IR_MAX_RANK ? is.n : 0), NULL);
    for (int i = 0; i < x.rank; i++)
        x.dim[i] = is.v[i];
    char a[160], b[160];
    if (x.rank < 3 || dy->rank != x.rank || !shape_is_static(&x) || dim_conflict(dy, 0, &x, 0) ||
        dim_conflict(dy, 1, &x, 1))
        return diag_node(d, n, ST_SHAPE, "dY %s and input_shape %s must be static [N, C, spatial...] of one rank",
                         shape_str(dy, a, sizeof a), shape_str(&x, b, sizeof b));
    ConvGeom g;
    if ((st = conv_geom(n, x.rank - 2, NULL, &g, d)) || (st = conv_geom_check(n, &g, &x, dy, d)))
        return st;
    op_set_output(n, 0, n->inputs[0]->dtype, &x);
    return ST_OK;
}

/* A MaxPoolGrad(dY, X) (or AveragePoolGrad(dY) with input_shape) node for forward node n with window
 * g; its dX accumulates into n's input 0. */
static Status pool_grad_node(GradCtx *c, Node *n, const char *op, Value *dy, const ConvGeom *g, Diag *d)
{
    Graph *gr = grad_graph(c);
    Value *x = n->inputs[0];
    bool avg = strcmp(op, "AveragePoolGrad") == 0;
    Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, op, avg ? 1 : 2, (Value *[]){dy, x}, 1, d);
    Status st;
    if (!b || (st = conv_geom_set_attrs(gr, b, g, d)))
        return d->status;
    if (strcmp(op, "LpPoolGrad") == 0 && (st = node_set_attr_int(gr, b, "p", node_attr_int(n, "p", 2), d)))
        return st;
    if (avg && ((st = node_set_attr_ints(gr, b, "input_shape", x->shape.dim, (size_t)x->shape.rank, d)) ||
                 (st = node_set_attr_int(gr, b, "count_include_pad", node_attr_int(n, "count_include_pad", 0), d))))
        return st;
    if ((st = grad_finish_node(c, b, d)))
        return st;
    return grad_accumulate(c, n, 0, b->outputs[0], d);
}

/* MaxPool: Y[o] = max of X over window o, the first maximum in window order on ties (as PyTorch);
 *   dX = MaxPoolGrad(dY, X): each dY[o] added at its window's first maximum (recomputed from X, so
 *   the Indices output is not needed). AveragePool: Y[o] = sum of X over window o / count(o);
 *   dX = AveragePoolGrad(dY): each dY[o] / count(o) spread over the window. LpPool: Y[o] = (sum of
 *   |X|^p over window o)^(1/p); dX = LpPoolGrad(dY, X): dY[o] * Y[o]^(1-p) * |X|^(p-1) * sign(X) over
 *   the window, 0 where Y[o] = 0 (kernels/pool.c lppool_backward). */
static Status pool_grad(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    ConvGeom g;
    Status st = conv_geom_resolve(n, &n->inputs[0]->shape, NULL, &g, d);
    if (st)
        return st;
    const char *op = strcmp(n->op_type, "MaxPool") == 0 ? "MaxPoolGrad"
                     : strcmp(n->op_type, "LpPool") == 0 ? "LpPoolGrad" : "AveragePoolGrad";
    return pool_grad_node(c, n, op, dy, &g, d);
}

/* GlobalMaxPool, GlobalLpPool: MaxPool, LpPool with the whole plane as its window: dX = MaxPoolGrad(dY, X),
 * LpPoolGrad(dY, X).
 * GlobalAveragePool: Y = mean of X over the plane: dX = Expand(dY * (1 / plane size), shape of X). */
static Status global_pool_grad(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0), *x = n->inputs[0];
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    char a[160];
    if (!shape_is_static(&x->shape) || x->shape.rank < 3)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be static for training (pass --batch)",
                         shape_str(&x->shape, a, sizeof a));
    Graph *gr = grad_graph(c);
    if (strcmp(n->op_type, "GlobalAveragePool") != 0) {
        ConvGeom g = {.nsp = x->shape.rank - 2, .group = 1};
        for (int i = 0; i < g.nsp; i++) {
            g.kernel[i] = x->shape.dim[2 + i];
            g.stride[i] = g.dilation[i] = 1;
        }
        return pool_grad_node(c, n, strcmp(n->op_type, "GlobalMaxPool") == 0 ? "MaxPoolGrad" : "LpPoolGrad", dy, &g, d);
    }
    double plane = shape_numel_or0(&x->shape) / fmax(1.0, (double)(x->shape.dim[0] * x->shape.dim[1]));
    Value *k = graph_const_scalar(gr, "global_avgpool_scale", dy->dtype, plane > 0 ? 1.0 / plane : 0.0, d);
    Value *shape = k ? graph_const_ints(gr, "global_avgpool_shape", x->shape.dim, (size_t)x->shape.rank, d) : NULL;
    Node *m = shape ? grad_add_node(c, n, "", "Mul", 2, (Value *[]){dy, k}, 1, d) : NULL;
    Node *e = m ? grad_add_node(c, n, "", "Expand", 2, (Value *[]){m->outputs[0], shape}, 1, d) : NULL;
    if (!e)
        return d->status;
    return grad_accumulate(c, n, 0, e->outputs[0], d);
}

/* Window reads of a backward pool: dY's elements times the window size. */
static double pool_grad_flops(const Node *n)
{
    IntList ks;
    if (n->ninputs < 1 || !n->inputs[0] || !op_attr_ints(n, "kernel_shape", &ks))
        return 0;
    double w = 1;
    for (size_t i = 0; i < ks.n; i++)
        w *= (double)ks.v[i];
    return shape_numel_or0(&n->inputs[0]->shape) * w;
}

/* name, domain, family, canonical opset, canon, shape, fold, flops, grad, then the signature.
 * The older versions (MaxPool-1/8/10/11, AveragePool-1/7/10) only lack attributes whose defaults
 * give their semantics, so they need no rewrite. */
const OpRule pool_rules[] = {
    {"MaxPool", "", "pool", 17, NULL, pool_shape, NULL, pool_flops, pool_grad, ARITY(1, 1, 1, 2), REQUIRED(1)},
    {"AveragePool", "", "pool", 17, NULL, pool_shape, NULL, pool_flops, pool_grad, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"LpPool", "", "pool", 17, lppool_canon, pool_shape, NULL, pool_flops, pool_grad, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"GlobalAveragePool", "", "pool", 17, NULL, global_pool_shape, NULL, global_pool_flops, global_pool_grad,
     ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"GlobalMaxPool", "", "pool", 17, NULL, global_pool_shape, NULL, global_pool_flops, global_pool_grad,
     ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"GlobalLpPool", "", "pool", 17, lppool_canon, global_pool_shape, NULL, global_pool_flops, global_pool_grad,
     ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"MaxPoolGrad", ONNXTUNE_DOMAIN, "pool", 1, NULL, maxpool_grad_shape, NULL, pool_grad_flops, NULL,
     ARITY(2, 2, 1, 1), REQUIRED(2), DTYPES(IN_SAME(0, 1))},
    {"LpPoolGrad", ONNXTUNE_DOMAIN, "pool", 1, NULL, maxpool_grad_shape, NULL, pool_grad_flops, NULL,
     ARITY(2, 2, 1, 1), REQUIRED(2), DTYPES(IN_SAME(0, 1))},
    {"AveragePoolGrad", ONNXTUNE_DOMAIN, "pool", 1, NULL, avgpool_grad_shape, NULL, pool_grad_flops, NULL,
     ARITY(1, 1, 1, 1), REQUIRED(1)},
    {0},
};
