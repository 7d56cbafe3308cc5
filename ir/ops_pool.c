/* ops_pool.c - rules of the pooling family: MaxPool (with its Indices output), AveragePool, LpPool and
 * the global pools. Window geometry is ops_conv.c's conv_geom. MaxRoiPool and MaxUnpool are not here;
 * pools are never folded. */
#include "ir.h"

#include <string.h>

/* X [N, C, D1..Dk] -> Y [N, C, O1..Ok]; MaxPool-8+ may also output Indices (int64, same shape). */
static Status pool_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    bool maxpool = strcmp(n->op_type, "MaxPool") == 0;
    Status st = op_check_arity(n, 1, 1, 1, maxpool ? 2 : 1, d);
    if (!st)
        st = op_require_inputs(n, 1, d);
    if (st)
        return st;
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
    Status st = op_check_arity(n, 1, 1, 1, 1, d);
    if (!st)
        st = op_require_inputs(n, 1, d);
    if (st)
        return st;
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

/* name, domain, family, canonical opset, canon, shape, fold, flops, grad.
 * The older versions (MaxPool-1/8/10/11, AveragePool-1/7/10) only lack attributes whose defaults
 * give their semantics, so they need no rewrite. */
const OpRule pool_rules[] = {
    {"MaxPool", "", "pool", 17, NULL, pool_shape, NULL, pool_flops, NULL},
    {"AveragePool", "", "pool", 17, NULL, pool_shape, NULL, pool_flops, NULL},
    {"LpPool", "", "pool", 17, lppool_canon, pool_shape, NULL, pool_flops, NULL},
    {"GlobalAveragePool", "", "pool", 17, NULL, global_pool_shape, NULL, global_pool_flops, NULL},
    {"GlobalMaxPool", "", "pool", 17, NULL, global_pool_shape, NULL, global_pool_flops, NULL},
    {"GlobalLpPool", "", "pool", 17, lppool_canon, global_pool_shape, NULL, global_pool_flops, NULL},
    {0},
};
