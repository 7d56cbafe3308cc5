/* ops_quant.c - rules of the quantization ops (opsets 10-13): QuantizeLinear, DequantizeLinear,
 * DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv. Scales are float32,
 * quantized tensors uint8/int8 (int32 for DequantizeLinear's input and the *Integer outputs). Nothing
 * folds and nothing has a gradient: quantized inference only. */
#include "ir.h"

#include <string.h>

static const Shape unknown_shape = {.rank = -1};

static const Shape *in_shape(const Node *n, int i)
{
    const Value *v = node_input(n, i);
    return v ? &v->shape : &unknown_shape;
}

static DType in_dtype(const Node *n, int i)
{
    const Value *v = node_input(n, i);
    return v ? v->dtype : DT_UNDEFINED;
}

static double flops_out0(const Node *n)
{
    return n->noutputs > 0 ? shape_numel_or0(&n->outputs[0]->shape) : 0;
}

/* A quantized input: uint8 or int8 (int32 when `int32_ok`). */
static Status check_q8(const Node *n, int i, bool int32_ok, Diag *d)
{
    DType t = in_dtype(n, i);
    if (t == DT_UNDEFINED || t == DT_UINT8 || t == DT_INT8 || (int32_ok && t == DT_INT32))
        return ST_OK;
    return diag_node(d, n, ST_SHAPE, "input %d '%s' is %s but must be uint8 or int8%s", i, n->inputs[i]->name,
                     dtype_name(t), int32_ok ? " (or int32)" : "");
}

/* A scale or zero point: a scalar, or 1-D of length 1 or `len` (len < 0: any). */
static Status check_param(const Node *n, int i, int64_t len, const char *what, Diag *d)
{
    const Shape *s = in_shape(n, i);
    char a[128];
    if (s->rank <= 0 || (s->rank == 1 && (s->dim[0] < 0 || s->dim[0] == 1 || len < 0 || s->dim[0] == len)))
        return ST_OK;
    return diag_node(d, n, ST_SHAPE, "input %d (%s) has shape %s but must be a scalar or [%lld]", i, what,
                     shape_str(s, a, sizeof a), (long long)len);
}

/* ======================================================================== QuantizeLinear, DequantizeLinear */

/* Quantize/DequantizeLinear-13: per-tensor, or per-axis with 1-D scale and zero point of x's dim `axis`. */
static Status quant_common(Node *n, DType out, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    int64_t len = -1;
    if (x->rank > 0 && in_shape(n, 1)->rank == 1) {
        int ax;
        if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 1), x->rank, &ax, d)))
            return st;
        len = x->dim[ax];
    }
    if ((st = check_param(n, 1, len, "scale", d)) || (st = check_param(n, 2, len, "zero point", d)))
        return st;
    op_set_output(n, 0, out, x->rank >= 0 ? x : NULL);
    return ST_OK;
}

static Status quantize_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    if (node_input(n, 2) && (st = check_q8(n, 2, false, d)))
        return st;
    return quant_common(n, node_input(n, 2) ? in_dtype(n, 2) : DT_UINT8, d);
}

static Status dequantize_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    if ((st = check_q8(n, 0, true, d)))
        return st;
    return quant_common(n, DT_FLOAT, d);
}

/* DynamicQuantizeLinear-11: y uint8 of x's shape, y_scale float32 and y_zero_point uint8 scalars. */
static Status dynamic_quantize_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    (void)d;
    const Shape *x = in_shape(n, 0);
    Shape scalar = shape_make(0, NULL);
    op_set_output(n, 0, DT_UINT8, x->rank >= 0 ? x : NULL);
    op_set_output(n, 1, DT_FLOAT, &scalar);
    op_set_output(n, 2, DT_UINT8, &scalar);
    return ST_OK;
}

/* ======================================================================== MatMulInteger, QLinearMatMul */

/* numpy.matmul of inputs ia [.., M, K] and ib [.., K, N] (both at least 2-D; batch dims broadcast). */
static Status matmul_shape_of(Node *n, int ia, int ib, DType t, Diag *d)
{
    Status st;
    const Shape *a = in_shape(n, ia), *b = in_shape(n, ib);
    char s1[128], s2[128];
    if (a->rank < 0 || b->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    if (a->rank < 2 || b->rank < 2)
        return diag_node(d, n, ST_UNSUPPORTED, "inputs %d %s and %d %s: only inputs of rank >= 2 are supported", ia,
                         shape_str(a, s1, sizeof s1), ib, shape_str(b, s2, sizeof s2));
    if (dim_conflict(a, a->rank - 1, b, b->rank - 2))
        return diag_node(d, n, ST_SHAPE, "inner dims differ: input %d %s and input %d %s", ia,
                         shape_str(a, s1, sizeof s1), ib, shape_str(b, s2, sizeof s2));
    Shape ab = shape_make(a->rank - 2, NULL), bb = shape_make(b->rank - 2, NULL), out;
    for (int i = 0; i < ab.rank; i++)
        dim_copy(&ab, i, a, i);
    for (int i = 0; i < bb.rank; i++)
        dim_copy(&bb, i, b, i);
    if ((st = shape_broadcast(n, ia, &ab, ib, &bb, &out, d)))
        return st;
    if (out.rank + 2 > IR_MAX_RANK)
        return diag_node(d, n, ST_UNSUPPORTED, "rank above %d", IR_MAX_RANK);
    dim_copy(&out, out.rank++, a, a->rank - 2);
    dim_copy(&out, out.rank++, b, b->rank - 1);
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* MatMulInteger-10: Y int32 = (A - a_zero_point) @ (B - b_zero_point); a_zero_point per row of A or
 * scalar, b_zero_point per column of B or scalar. */
static Status matmul_integer_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *a = in_shape(n, 0), *b = in_shape(n, 1);
    if ((st = check_q8(n, 0, false, d)) || (st = check_q8(n, 1, false, d)) ||
        (st = check_param(n, 2, a->rank >= 2 ? a->dim[a->rank - 2] : -1, "a_zero_point", d)) ||
        (st = check_param(n, 3, b->rank >= 2 ? b->dim[b->rank - 1] : -1, "b_zero_point", d)))
        return st;
    return matmul_shape_of(n, 0, 1, DT_INT32, d);
}

/* QLinearMatMul-10: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. */
static Status qlinear_matmul_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *a = in_shape(n, 0), *b = in_shape(n, 3);
    int64_t m = a->rank >= 2 ? a->dim[a->rank - 2] : -1, nn = b->rank >= 2 ? b->dim[b->rank - 1] : -1;
    if ((st = check_q8(n, 0, false, d)) || (st = check_q8(n, 3, false, d)) || (st = check_q8(n, 7, false, d)) ||
        (st = check_param(n, 1, m, "a_scale", d)) || (st = check_param(n, 2, m, "a_zero_point", d)) ||
        (st = check_param(n, 4, nn, "b_scale", d)) || (st = check_param(n, 5, nn, "b_zero_point", d)) ||
        (st = check_param(n, 6, 1, "y_scale", d)) || (st = check_param(n, 7, 1, "y_zero_point", d)))
        return st;
    return matmul_shape_of(n, 0, 3, in_dtype(n, 7), d);
}

static double flops_matmul_q(const Node *n)
{
    const Shape *a = in_shape(n, 0);
    return a->rank >= 1 && a->dim[a->rank - 1] > 0 ? flops_out0(n) * (double)a->dim[a->rank - 1] : 0;
}

/* ======================================================================== ConvInteger, QLinearConv */

/* Conv geometry (ONNX Conv-1 attributes) of x at input ix and w at input iw: y [N, M, out...] of t. */
static Status conv_shape_of(Node *n, int ix, int iw, DType t, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, ix), *w = in_shape(n, iw);
    char a[160], b[160];
    if (x->rank < 0 || w->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    if (x->rank != w->rank || x->rank < 3)
        return diag_node(d, n, ST_SHAPE, "input %d shape %s and input %d (W) shape %s must have one rank >= 3", ix,
                         shape_str(x, a, sizeof a), iw, shape_str(w, b, sizeof b));
    int nsp = x->rank - 2;
    ConvGeom g;
    if ((st = conv_geom(n, nsp, w->dim + 2, &g, d)))
        return st;
    if (x->dim[1] >= 0 && w->dim[1] >= 0 && x->dim[1] != w->dim[1] * g.group)
        return diag_node(d, n, ST_SHAPE, "input %d shape %s has %lld channels but W %s with group %lld expects %lld",
                         ix, shape_str(x, a, sizeof a), (long long)x->dim[1], shape_str(w, b, sizeof b),
                         (long long)g.group, (long long)(w->dim[1] * g.group));
    Shape out = shape_make(x->rank, NULL);
    dim_copy(&out, 0, x, 0);
    out.dim[1] = w->dim[0];
    for (int i = 0; i < nsp; i++) {
        out.dim[2 + i] = conv_geom_out(&g, i, x->dim[2 + i]);
        if (out.dim[2 + i] == 0 && x->dim[2 + i] > 0)
            return diag_node(d, n, ST_SHAPE, "input %d shape %s: spatial dim %d is smaller than the kernel", ix,
                             shape_str(x, a, sizeof a), i);
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ConvInteger-10: x, w, x_zero_point (scalar), w_zero_point (scalar or per output channel) -> int32. */
static Status conv_integer_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *w = in_shape(n, 1);
    if ((st = check_q8(n, 0, false, d)) || (st = check_q8(n, 1, false, d)) ||
        (st = check_param(n, 2, 1, "x_zero_point", d)) ||
        (st = check_param(n, 3, w->rank > 0 ? w->dim[0] : -1, "w_zero_point", d)))
        return st;
    return conv_shape_of(n, 0, 1, DT_INT32, d);
}

/* QLinearConv-10: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B (int32). */
static Status qlinear_conv_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *w = in_shape(n, 3), *bias = in_shape(n, 8);
    int64_t m = w->rank > 0 ? w->dim[0] : -1;
    char a[128];
    if ((st = check_q8(n, 0, false, d)) || (st = check_q8(n, 3, false, d)) || (st = check_q8(n, 7, false, d)) ||
        (st = check_param(n, 1, 1, "x_scale", d)) || (st = check_param(n, 2, 1, "x_zero_point", d)) ||
        (st = check_param(n, 4, m, "w_scale", d)) || (st = check_param(n, 5, m, "w_zero_point", d)) ||
        (st = check_param(n, 6, 1, "y_scale", d)) || (st = check_param(n, 7, 1, "y_zero_point", d)))
        return st;
    if (node_input(n, 8) && bias->rank >= 0 && (bias->rank != 1 || (m >= 0 && bias->dim[0] >= 0 && bias->dim[0] != m)))
        return diag_node(d, n, ST_SHAPE, "input 8 (B) shape %s must be [%lld] (the output channels)",
                         shape_str(bias, a, sizeof a), (long long)m);
    return conv_shape_of(n, 0, 3, in_dtype(n, 7), d);
}

static double flops_conv_q(const Node *n)
{
    const Shape *w = in_shape(n, strcmp(n->op_type, "QLinearConv") == 0 ? 3 : 1);
    double per_out = 1;
    for (int i = 1; i < w->rank; i++)
        per_out *= (double)w->dim[i];
    return shape_is_static(w) ? flops_out0(n) * per_out : 0;
}

/* ======================================================================== the table */

const OpRule quant_rules[] = {
    {"QuantizeLinear", "", "quant", 13, NULL, quantize_shape, NULL, flops_out0, NULL, ARITY(2, 3, 1, 1), REQUIRED(2),
     DTYPES(IN_IS(0, DT_FLOAT), IN_IS(1, DT_FLOAT)), .defaults = {{"axis", AT_INT, 1}}},
    {"DequantizeLinear", "", "quant", 13, NULL, dequantize_shape, NULL, flops_out0, NULL, ARITY(2, 3, 1, 1),
     REQUIRED(2), DTYPES(IN_IS(1, DT_FLOAT), IN_SAME(0, 2)), .defaults = {{"axis", AT_INT, 1}}},
    {"DynamicQuantizeLinear", "", "quant", 11, NULL, dynamic_quantize_shape, NULL, flops_out0, NULL,
     ARITY(1, 1, 3, 3), REQUIRED(1), DTYPES(IN_IS(0, DT_FLOAT))},
    {"MatMulInteger", "", "quant", 10, NULL, matmul_integer_shape, NULL, flops_matmul_q, NULL, ARITY(2, 4, 1, 1),
     REQUIRED(2), DTYPES(IN_SAME(0, 2), IN_SAME(1, 3))},
    {"QLinearMatMul", "", "quant", 10, NULL, qlinear_matmul_shape, NULL, flops_matmul_q, NULL, ARITY(8, 8, 1, 1),
     REQUIRED(8), DTYPES(IN_IS(1, DT_FLOAT), IN_IS(4, DT_FLOAT), IN_IS(6, DT_FLOAT), IN_SAME(0, 2), IN_SAME(3, 5))},
    {"ConvInteger", "", "quant", 10, NULL, conv_integer_shape, NULL, flops_conv_q, NULL, ARITY(2, 4, 1, 1),
     REQUIRED(2), DTYPES(IN_SAME(0, 2), IN_SAME(1, 3))},
    {"QLinearConv", "", "quant", 10, NULL, qlinear_conv_shape, NULL, flops_conv_q, NULL, ARITY(8, 9, 1, 1),
     REQUIRED(8), DTYPES(IN_IS(1, DT_FLOAT), IN_IS(4, DT_FLOAT), IN_IS(6, DT_FLOAT), IN_SAME(0, 2), IN_SAME(3, 5),
            IN_IS(8, DT_INT32))},
    {0},
};
