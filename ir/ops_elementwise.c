/* ops_elementwise.c - rules of the element-wise ops: the unary math and activations of ir/unary.def,
 * binary and variadic ops with numpy broadcasting, comparisons and logic, Where, Clip, Cast and CastLike.
 * Canonical forms follow opset 17 (18 for Mish and the Bitwise ops). Unary folding runs the runtime's
 * kernel (kernels/elementwise.c), so folded constants and generated code compute alike; the other fold
 * rules compute integers in int64, never via doubles, so folded shape arithmetic stays exact. */
#include "ir.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_unsigned(DType t)
{
    return t == DT_UINT8 || t == DT_UINT16 || t == DT_UINT32 || t == DT_UINT64;
}

/* Folding reads and writes through double or int64; these are the dtypes that round-trip. */
static bool foldable_dtype(DType t)
{
    return dtype_is_float(t) || dtype_is_int(t) || t == DT_BOOL;
}

static Status check_foldable(const Node *n, DType t, Diag *d)
{
    if (foldable_dtype(t))
        return ST_OK;
    return diag_node(d, n, ST_UNSUPPORTED, "cannot fold %s on %s constants", n->op_type, dtype_name(t));
}

/* Store a double into any numeric tensor: integers get C truncation, clamped (NaN -> 0). */
static void store_f64(Tensor *t, size_t i, double v)
{
    if (!dtype_is_int(t->dtype)) {
        tensor_set_f64(t, i, v);
        return;
    }
    int64_t x;
    if (isnan(v))
        x = 0;
    else if (v >= 9.2233720368547758e18)
        x = is_unsigned(t->dtype) && v < 1.8446744073709552e19 ? (int64_t)(uint64_t)v : INT64_MAX;
    else if (v <= -9.2233720368547758e18)
        x = INT64_MIN;
    else
        x = (int64_t)v;
    tensor_set_i64(t, i, x);
}

static double flops_out0(const Node *n)
{
    return n->noutputs > 0 ? shape_numel_or0(&n->outputs[0]->shape) : 0;
}

/* ---- canonicalisation shared by the family ---- */

/* Give input 1 of n (of known rank) k trailing 1-dims through an Unsqueeze, so numpy broadcasting
 * lines its dims up with the leading dims of input 0. */
static Status unsqueeze_trailing(Graph *g, Node *n, int64_t k, Diag *d)
{
    Value *b = n->inputs[1];
    if (k <= 0)
        return ST_OK;
    if (b->shape.rank + k > IR_MAX_RANK)
        return diag_node(d, n, ST_UNSUPPORTED, "rank above %d", IR_MAX_RANK);
    int64_t axes[IR_MAX_RANK];
    for (int64_t i = 0; i < k; i++)
        axes[i] = b->shape.rank + i;
    Value *axv = graph_const_ints(g, "legacy_broadcast_axes", axes, (size_t)k, d);
    if (!axv)
        return d->status;
    Value *in[2] = {b, axv};
    Node *u = graph_add_node1(g, "Unsqueeze", n->name, 2, in, "legacy_broadcast", d);
    if (!u)
        return d->status;
    return node_set_input(g, n, 1, u->outputs[0], d);
}

/* PRelu-1 and -6 predate numpy broadcasting: a 1-D slope of length C applies per channel (dim 1) of
 * X [N,C,...], which numpy broadcasting would align with the last dim instead. */
static Status canon_prelu_legacy(Graph *g, Node *n, Diag *d)
{
    if (n->ninputs != 2 || !n->inputs[0] || !n->inputs[1])
        return ST_OK;
    const Shape *x = &n->inputs[0]->shape, *s = &n->inputs[1]->shape;
    if (x->rank > 2 && s->rank == 1 && s->dim[0] > 1 && s->dim[0] == x->dim[1])
        return unsqueeze_trailing(g, n, x->rank - 2, d);
    return ST_OK;
}

/* Add/Sub/Mul/Div-1 and -6, Pow-1, And/Or/Xor-1, Equal/Greater/Less-1 (the "legacy broadcast" form):
 * with broadcast=1, B's dims equal a run of A's dims starting at `axis` (default: A's trailing dims).
 * Numpy broadcasting aligns trailing dims, so B gets (rank A - axis - rank B) trailing 1-dims via an
 * Unsqueeze. Without broadcast=1 the shapes must be equal, which numpy broadcasting accepts as is.
 * Opset 1-5 versions also carry consumed_inputs, which means nothing to us. PRelu-1/-6 go their own way. */
static Status canon_legacy_broadcast(Graph *g, Node *n, Diag *d)
{
    node_remove_attr(n, "consumed_inputs");
    if (n->opset <= 0 || n->opset >= 7)
        return ST_OK;
    if (strcmp(n->op_type, "PRelu") == 0)
        return canon_prelu_legacy(g, n, d);
    if (!node_attr(n, "broadcast"))
        return ST_OK;
    int64_t bcast = node_attr_int(n, "broadcast", 0);
    const Attr *ax = node_attr(n, "axis");
    int64_t axis = ax && ax->type == AT_INT ? ax->i : -1;
    node_remove_attr(n, "broadcast");
    node_remove_attr(n, "axis");
    if (!bcast || !ax || n->ninputs != 2 || !n->inputs[0] || !n->inputs[1])
        return ST_OK;
    Value *a = n->inputs[0], *b = n->inputs[1];
    if (a->shape.rank < 0 || b->shape.rank < 0)
        return diag_node(d, n, ST_UNSUPPORTED, "opset %d broadcast=1 axis=%lld needs the ranks of both inputs "
                         "at import, but they are not declared", n->opset, (long long)axis);
    if (axis < 0)
        axis += a->shape.rank;
    int64_t k = a->shape.rank - axis - b->shape.rank;
    if (axis < 0 || k < 0)
        return diag_node(d, n, ST_SHAPE, "broadcast axis %lld does not fit input 0 of rank %d and input 1 "
                         "of rank %d", (long long)ax->i, a->shape.rank, b->shape.rank);
    return unsqueeze_trailing(g, n, k, d);
}

/* ======================================================================== unary */

/* ir/unary.def expanded into rows of UnaryDef. */
#define NO_ATTR {0}
#define FLOAT_ATTR(name, v) {#name, AT_FLOAT, v, NULL, NULL}
#define INT_ATTR(name, v) {#name, AT_INT, v, NULL, NULL}
#define STRING_ATTR(name, v, other) {#name, AT_STRING, 0, v, other}
#define UDEF_GRAD_NONE UG_NONE, NULL
#define UDEF_GRAD_ZERO UG_ZERO, NULL
#define UDEF_GRAD_FUSED_X UG_X, NULL
#define UDEF_GRAD_FUSED_Y UG_Y, NULL
#define UDEF_GRAD_ONNX_X(op) UG_X, #op
#define UDEF_GRAD_ONNX_Y(op) UG_Y, #op
#define UDEF_GRAD_ONNX_DY(op) UG_DY, #op

static const UnaryDef unary_defs[] = {
#define UNARY(op, kernel, types, since, grad, alpha, beta) \
    {#op, UNARY_##kernel, "UNARY_" #kernel, false, UDEF_GRAD_##grad, {alpha, beta}},
#define UNARY_TO_BOOL(op, types, since, alpha, beta) {#op, -1, NULL, true, UG_NONE, NULL, {alpha, beta}},
#include "unary.def"
};

const UnaryDef *unary_def(const char *op_type)
{
    for (size_t i = 0; i < sizeof unary_defs / sizeof unary_defs[0]; i++)
        if (strcmp(unary_defs[i].name, op_type) == 0)
            return &unary_defs[i];
    return NULL;
}

const UnaryDef *unary_def_of_grad(const char *grad_op_type)
{
    size_t len = strlen(grad_op_type);
    for (size_t i = 0; i < sizeof unary_defs / sizeof unary_defs[0]; i++) {
        const UnaryDef *u = &unary_defs[i];
        size_t k = strlen(u->name);
        if ((u->grad == UG_X || u->grad == UG_Y) && !u->grad_op && len == k + 4 && strncmp(grad_op_type, u->name, k) == 0 &&
            strcmp(grad_op_type + k, "Grad") == 0)
            return u;
    }
    return NULL;
}

Status unary_params(const Node *n, const UnaryDef *u, float out[2], Diag *d)
{
    for (int i = 0; i < 2; i++) {
        const OpAttr *a = &u->attr[i];
        out[i] = 0;
        if (!a->name)
            continue;
        if (a->type == AT_FLOAT) {
            out[i] = node_attr_float(n, a->name, (float)a->value);
        } else if (a->type == AT_INT) {
            out[i] = (float)node_attr_int(n, a->name, (int64_t)a->value);
        } else {
            const char *v = node_attr_string(n, a->name, a->s);
            if (strcmp(v, a->s) != 0 && !(a->s_other && strcmp(v, a->s_other) == 0))
                return diag_node(d, n, ST_UNSUPPORTED, "attribute %s=\"%s\" (only \"%s\"%s%s%s)", a->name, v,
                                 a->s, a->s_other ? " and \"" : "", a->s_other ? a->s_other : "",
                                 a->s_other ? "\"" : "");
            out[i] = strcmp(v, a->s) == 0 ? 0.0f : 1.0f;
        }
    }
    return ST_OK;
}

static Status shape_unary(Graph *g, Node *n, Diag *d)
{
    const UnaryDef *u = unary_def(n->op_type);
    float p[2];
    Status st = unary_params(n, u, p, d);
    if (st)
        return st;
    const Value *x = n->inputs[0];
    op_set_output(n, 0, u->to_bool ? DT_BOOL : x->dtype, &x->shape);
    return ST_OK;
}

/* The runtime kernel on a copy of the constant: integers in int64 (or uint64, or bool) where the kernel
 * has integer semantics for the op, everything else in double, stored back with store_f64. */
static Status fold_unary(Graph *g, Node *n, Diag *d)
{
    const UnaryDef *u = unary_def(n->op_type);
    const Tensor *x = n->inputs[0]->init;
    Tensor *y;
    float p[2];
    Status st;
    if ((st = check_foldable(n, x->dtype, d)) || (st = op_fold_output(g, n, 0, &y, d)) ||
        (st = unary_params(n, u, p, d)))
        return st;
    size_t count = y->numel;
    RtDType dt = RT_DOUBLE;
    if (!u->to_bool && x->dtype == DT_BOOL && unary_supports((UnaryOp)u->kernel, RT_BOOL))
        dt = RT_BOOL;
    else if (!u->to_bool && dtype_is_int(x->dtype) && is_unsigned(x->dtype) &&
             unary_supports((UnaryOp)u->kernel, RT_UINT64))
        dt = RT_UINT64;
    else if (!u->to_bool && (dtype_is_int(x->dtype) || x->dtype == DT_BOOL) &&
             unary_supports((UnaryOp)u->kernel, RT_INT64))
        dt = RT_INT64;
    double *xf = arena_calloc(g->arena, count ? count : 1, sizeof *xf);
    int64_t *xi = arena_calloc(g->arena, count ? count : 1, sizeof *xi);
    uint8_t *xb = arena_calloc(g->arena, count ? count : 1, 1);
    if (!xf || !xi || !xb)
        return diag_node(d, n, ST_NOMEM, "out of memory folding");
    for (size_t i = 0; i < count; i++) {
        xf[i] = tensor_get_f64(x, i);
        xi[i] = tensor_get_i64(x, i);
        xb[i] = xi[i] != 0;
    }
    if (u->to_bool) {
        if (strcmp(u->name, "IsNaN") == 0)
            isnan_forward(RT_DOUBLE, xb, xf, count);
        else
            isinf_forward(RT_DOUBLE, xb, xf, count, p[0] != 0, p[1] != 0);
        for (size_t i = 0; i < count; i++)
            tensor_set_i64(y, i, xb[i]);
        return ST_OK;
    }
    void *buf = dt == RT_DOUBLE ? (void *)xf : dt == RT_BOOL ? (void *)xb : (void *)xi;
    unary_forward((UnaryOp)u->kernel, dt, buf, buf, count, p[0], p[1]);
    for (size_t i = 0; i < count; i++) {
        if (dt == RT_DOUBLE)
            store_f64(y, i, xf[i]);
        else
            tensor_set_i64(y, i, dt == RT_BOOL ? xb[i] : xi[i]);
    }
    return ST_OK;
}

/* ======================================================================== binary and variadic */

typedef enum {
    BI_ADD, BI_SUB, BI_MUL, BI_DIV, BI_POW, BI_MOD, BI_MIN, BI_MAX, BI_SUM, BI_MEAN, BI_PRELU,
    BI_EQUAL, BI_LESS, BI_LESSEQ, BI_GREATER, BI_GREATEREQ, BI_AND, BI_OR, BI_XOR, BI_BITSHIFT,
    BI_BITAND, BI_BITOR, BI_BITXOR,
} BinaryKind;

typedef struct {
    const char *name;
    BinaryKind kind;
    bool to_bool;       /* output is bool (comparisons) */
} BinaryInfo;

static const BinaryInfo binary_ops[] = {
    {"Add", BI_ADD, false}, {"Sub", BI_SUB, false},
    {"Mul", BI_MUL, false}, {"Div", BI_DIV, false},
    {"Pow", BI_POW, false}, {"Mod", BI_MOD, false},
    {"Min", BI_MIN, false}, {"Max", BI_MAX, false},
    {"Sum", BI_SUM, false}, {"Mean", BI_MEAN, false},
    {"PRelu", BI_PRELU, false},
    {"Equal", BI_EQUAL, true}, {"Less", BI_LESS, true},
    {"LessOrEqual", BI_LESSEQ, true}, {"Greater", BI_GREATER, true},
    {"GreaterOrEqual", BI_GREATEREQ, true},
    {"And", BI_AND, true}, {"Or", BI_OR, true},
    {"Xor", BI_XOR, true}, {"BitShift", BI_BITSHIFT, false},
    {"BitwiseAnd", BI_BITAND, false}, {"BitwiseOr", BI_BITOR, false},
    {"BitwiseXor", BI_BITXOR, false},
};

static const BinaryInfo *binary_info(const char *op)
{
    for (size_t i = 0; i < sizeof binary_ops / sizeof binary_ops[0]; i++)
        if (strcmp(binary_ops[i].name, op) == 0)
            return &binary_ops[i];
    return NULL;
}

static Status shape_binary(Graph *g, Node *n, Diag *d)
{
    Status st;
    const BinaryInfo *info = binary_info(n->op_type);
    if (!info)
        return diag_node(d, n, ST_ERR, "internal: no binary rule for %s", n->op_type);
    DType t = DT_UNDEFINED;
    for (int i = 0; i < n->ninputs; i++)
        if (t == DT_UNDEFINED && (i == 0 || info->kind != BI_POW))
            t = n->inputs[i]->dtype;
    if (info->kind == BI_MOD && dtype_is_float(t) && node_attr_int(n, "fmod", 0) != 1)
        return diag_node(d, n, ST_SHAPE, "Mod on %s needs fmod=1", dtype_name(t));
    if (info->kind == BI_BITSHIFT) {
        const char *dir = node_attr_string(n, "direction", "");
        if (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0)
            return diag_node(d, n, ST_INVALID, "attribute direction must be \"LEFT\" or \"RIGHT\", not \"%s\"",
                             dir);
    }
    Shape out;
    if ((st = shape_broadcast_inputs(n, 0, n->ninputs, &out, d)))
        return st;
    if (info->kind == BI_PRELU) {
        /* PRelu-7+: slope broadcasts to X (unidirectionally), the output has X's shape */
        const Shape *x = &n->inputs[0]->shape;
        if (out.rank >= 0 && x->rank >= 0) {
            bool ok = out.rank == x->rank;
            for (int i = 0; ok && i < x->rank; i++)
                ok = !dim_conflict(&out, i, x, i);
            if (!ok) {
                char a[128], b[128];
                return diag_node(d, n, ST_SHAPE, "input 1 (slope) shape %s does not broadcast to input 0 "
                                 "shape %s", shape_str(&n->inputs[1]->shape, a, sizeof a), shape_str(x, b, sizeof b));
            }
        }
        out = *x;
    }
    op_set_output(n, 0, info->to_bool ? DT_BOOL : t, &out);
    return ST_OK;
}

/* Integer binary arithmetic with C wrap-around (through uint64) and ONNX's Div/Mod rules. */
static Status bin_i64(const Node *n, BinaryKind k, int64_t a, int64_t b, bool uns, int bits, int fmod,
                      int64_t *out, Diag *d)
{
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (k) {
    case BI_ADD: case BI_SUM: *out = (int64_t)(ua + ub); return ST_OK;
    case BI_SUB: *out = (int64_t)(ua - ub); return ST_OK;
    case BI_MUL: *out = (int64_t)(ua * ub); return ST_OK;
    case BI_DIV: case BI_MOD:
        if (b == 0)
            return diag_node(d, n, ST_INVALID, "integer %s by zero in constant data",
                             k == BI_DIV ? "division" : "modulo");
        if (uns) {
            *out = (int64_t)(k == BI_DIV ? ua / ub : ua % ub);
        } else if (b == -1) {
            *out = k == BI_DIV ? (int64_t)(0 - ua) : 0; /* INT64_MIN / -1 wraps instead of trapping */
        } else if (k == BI_DIV) {
            *out = a / b; /* truncates toward zero, as ONNX Runtime does */
        } else {
            int64_t r = a % b;
            if (!fmod && r != 0 && ((r < 0) != (b < 0)))
                r += b; /* fmod=0: the result takes the divisor's sign (Python's %) */
            *out = r;
        }
        return ST_OK;
    case BI_POW: {
        if (b < 0 && !uns) {
            *out = a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0; /* 1 / a^-b truncated */
            return ST_OK;
        }
        uint64_t r = 1, base = ua;
        for (uint64_t e = ub; e; e >>= 1, base *= base)
            if (e & 1)
                r *= base;
        *out = (int64_t)r;
        return ST_OK;
    }
    case BI_MIN: *out = uns ? (ua < ub ? a : b) : (a < b ? a : b); return ST_OK;
    case BI_MAX: *out = uns ? (ua > ub ? a : b) : (a > b ? a : b); return ST_OK;
    case BI_PRELU: *out = !uns && a < 0 ? (int64_t)(ua * ub) : a; return ST_OK;
    case BI_EQUAL: *out = a == b; return ST_OK;
    case BI_LESS: *out = uns ? ua < ub : a < b; return ST_OK;
    case BI_LESSEQ: *out = uns ? ua <= ub : a <= b; return ST_OK;
    case BI_GREATER: *out = uns ? ua > ub : a > b; return ST_OK;
    case BI_GREATEREQ: *out = uns ? ua >= ub : a >= b; return ST_OK;
    case BI_AND: *out = a && b; return ST_OK;
    case BI_OR: *out = a || b; return ST_OK;
    case BI_XOR: *out = !a != !b; return ST_OK;
    case BI_BITSHIFT: {
        bool left = strcmp(node_attr_string(n, "direction", ""), "LEFT") == 0;
        *out = ub >= (uint64_t)bits ? 0 : (int64_t)(left ? ua << ub : ua >> ub);
        return ST_OK;
    }
    case BI_BITAND: *out = a & b; return ST_OK;
    case BI_BITOR: *out = a | b; return ST_OK;
    case BI_BITXOR: *out = a ^ b; return ST_OK;
    case BI_MEAN: break;
    }
    return diag_node(d, n, ST_ERR, "internal: no integer rule for %s", n->op_type);
}

static double bin_f64(BinaryKind k, double a, double b)
{
    switch (k) {
    case BI_ADD: case BI_SUM: case BI_MEAN: return a + b;
    case BI_SUB: return a - b;
    case BI_MUL: return a * b;
    case BI_DIV: return a / b;
    case BI_POW: return pow(a, b);
    case BI_MOD: return fmod(a, b);
    case BI_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
    case BI_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
    case BI_PRELU: return a < 0 ? a * b : a;
    case BI_EQUAL: return a == b;
    case BI_LESS: return a < b;
    case BI_LESSEQ: return a <= b;
    case BI_GREATER: return a > b;
    case BI_GREATEREQ: return a >= b;
    case BI_AND: return a != 0 && b != 0;
    case BI_OR: return a != 0 || b != 0;
    case BI_XOR: return (a != 0) != (b != 0);
    default: return NAN;
    }
}

static Status fold_binary(Graph *g, Node *n, Diag *d)
{
    const BinaryInfo *info = binary_info(n->op_type);
    Tensor *y;
    Status st;
    for (int i = 0; i < n->ninputs; i++)
        if ((st = check_foldable(n, n->inputs[i]->init->dtype, d)))
            return st;
    if ((st = op_fold_output(g, n, 0, &y, d)))
        return st;
    const Tensor *a0 = n->inputs[0]->init;
    /* integer mode when every input is an integer (Pow with a float exponent goes through double) */
    bool ints = true;
    for (int i = 0; i < n->ninputs; i++)
        ints = ints && (dtype_is_int(n->inputs[i]->init->dtype) || n->inputs[i]->init->dtype == DT_BOOL);
    bool uns = is_unsigned(a0->dtype);
    int bits = (int)dtype_size(a0->dtype) * 8, fmod_attr = (int)node_attr_int(n, "fmod", 0);
    for (size_t i = 0; i < y->numel; i++) {
        const Tensor *t0 = n->inputs[0]->init;
        size_t off0 = shape_broadcast_offset(&t0->shape, &y->shape, i);
        if (ints) {
            int64_t acc = tensor_get_i64(t0, off0);
            for (int k = 1; k < n->ninputs; k++) {
                const Tensor *t = n->inputs[k]->init;
                int64_t b = tensor_get_i64(t, shape_broadcast_offset(&t->shape, &y->shape, i));
                if ((st = bin_i64(n, info->kind, acc, b, uns, bits, fmod_attr, &acc, d)))
                    return st;
            }
            tensor_set_i64(y, i, acc);
        } else {
            double acc = tensor_get_f64(t0, off0);
            for (int k = 1; k < n->ninputs; k++) {
                const Tensor *t = n->inputs[k]->init;
                acc = bin_f64(info->kind, acc, tensor_get_f64(t, shape_broadcast_offset(&t->shape, &y->shape, i)));
            }
            if (info->kind == BI_MEAN)
                acc /= n->ninputs;
            store_f64(y, i, acc);
        }
    }
    return ST_OK;
}

static double flops_variadic(const Node *n)
{
    double e = flops_out0(n);
    return n->ninputs > 1 ? e * (n->ninputs - 1) : e;
}

/* ======================================================================== Where */

static Status shape_where(Graph *g, Node *n, Diag *d)
{
    Status st;
    Shape out;
    if ((st = shape_broadcast_inputs(n, 0, 3, &out, d)))
        return st;
    DType t = n->inputs[1]->dtype != DT_UNDEFINED ? n->inputs[1]->dtype : n->inputs[2]->dtype;
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* Copies elements byte-wise, so it works for every dtype including strings. */
static Status fold_where(Graph *g, Node *n, Diag *d)
{
    Tensor *y;
    Status st = op_fold_output(g, n, 0, &y, d);
    if (st)
        return st;
    const Tensor *c = n->inputs[0]->init, *x = n->inputs[1]->init, *z = n->inputs[2]->init;
    if (x->dtype != y->dtype || z->dtype != y->dtype)
        return diag_node(d, n, ST_SHAPE, "inputs 1 and 2 must both be %s", dtype_name(y->dtype));
    size_t es = dtype_size(y->dtype);
    for (size_t i = 0; i < y->numel; i++) {
        bool pick = tensor_get_i64(c, shape_broadcast_offset(&c->shape, &y->shape, i)) != 0;
        const Tensor *src = pick ? x : z;
        size_t off = shape_broadcast_offset(&src->shape, &y->shape, i);
        memcpy((char *)y->data + i * es, (const char *)src->data + off * es, es);
        if (y->dtype == DT_STRING)
            y->str_len[i] = src->str_len ? src->str_len[off] : strlen(((char **)src->data)[off]);
    }
    return ST_OK;
}

/* ======================================================================== Clip */

/* Clip-1 and Clip-6 took min/max as attributes; Clip-11 made them optional inputs (scalars of X's type).
 * The constants get X's dtype when it is known at import, float otherwise (Clip-6 is float-only and
 * shape_clip retypes a float bound that turns out to differ from X). */
static Status canon_clip(Graph *g, Node *n, Diag *d)
{
    node_remove_attr(n, "consumed_inputs");
    if (n->opset <= 0 || n->opset >= 11)
        return ST_OK;
    const Attr *lo = node_attr(n, "min"), *hi = node_attr(n, "max");
    DType t = n->ninputs > 0 && n->inputs[0] && dtype_is_float(n->inputs[0]->dtype) ? n->inputs[0]->dtype : DT_FLOAT;
    if (lo) {
        Value *v = graph_const_scalar(g, "clip_min", t, lo->f, d);
        if (!v || node_set_input(g, n, 1, v, d))
            return d->status;
    }
    if (hi) {
        Value *v = graph_const_scalar(g, "clip_max", t, hi->f, d);
        if (!v || node_set_input(g, n, 2, v, d))
            return d->status;
    }
    node_remove_attr(n, "min");
    node_remove_attr(n, "max");
    return ST_OK;
}

static Status shape_clip(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    for (int i = 1; i < n->ninputs; i++) {
        Value *b = n->inputs[i];
        if (!b)
            continue;
        if (b->shape.rank > 1 || (b->shape.rank == 1 && b->shape.dim[0] >= 0 && b->shape.dim[0] != 1)) {
            char s[128];
            return diag_node(d, n, ST_SHAPE, "input %d '%s' (the %s bound) must be a scalar, not %s", i, b->name,
                             i == 1 ? "min" : "max", shape_str(&b->shape, s, sizeof s));
        }
        if (value_is_const(b) && dtype_is_float(b->dtype) && dtype_is_float(x->dtype) && b->dtype != x->dtype &&
            b->init->numel == 1) {
            Value *c = graph_const_scalar(g, b->name, x->dtype, tensor_get_f64(b->init, 0), d);
            if (!c)
                return d->status;
            n->inputs[i] = c;
        }
        if ((st = op_same_dtype(n, 0, i, d)))
            return st;
    }
    op_set_output(n, 0, x->dtype, &x->shape);
    return ST_OK;
}

static Status fold_clip(Graph *g, Node *n, Diag *d)
{
    Tensor *y;
    Status st;
    const Tensor *x = n->inputs[0]->init;
    if ((st = check_foldable(n, x->dtype, d)) || (st = op_fold_output(g, n, 0, &y, d)))
        return st;
    const Tensor *lo = n->ninputs > 1 && n->inputs[1] ? n->inputs[1]->init : NULL;
    const Tensor *hi = n->ninputs > 2 && n->inputs[2] ? n->inputs[2]->init : NULL;
    if ((lo && lo->numel != 1) || (hi && hi->numel != 1))
        return diag_node(d, n, ST_SHAPE, "min and max must hold one value each");
    bool ints = dtype_is_int(x->dtype), uns = is_unsigned(x->dtype);
    for (size_t i = 0; i < y->numel; i++) {
        /* min first, then max: when min > max every element becomes max, as Clip-13 specifies */
        if (ints) {
            int64_t v = tensor_get_i64(x, i);
            if (lo && (uns ? (uint64_t)v < (uint64_t)tensor_get_i64(lo, 0) : v < tensor_get_i64(lo, 0)))
                v = tensor_get_i64(lo, 0);
            if (hi && (uns ? (uint64_t)v > (uint64_t)tensor_get_i64(hi, 0) : v > tensor_get_i64(hi, 0)))
                v = tensor_get_i64(hi, 0);
            tensor_set_i64(y, i, v);
        } else {
            double v = tensor_get_f64(x, i);
            if (lo && v < tensor_get_f64(lo, 0))
                v = tensor_get_f64(lo, 0);
            if (hi && v > tensor_get_f64(hi, 0))
                v = tensor_get_f64(hi, 0);
            tensor_set_f64(y, i, v);
        }
    }
    return ST_OK;
}

/* ======================================================================== Cast, CastLike */

/* Cast-1 named the target type by string ("FLOAT"); Cast-6 onwards by TensorProto.DataType number. */
static Status canon_cast(Graph *g, Node *n, Diag *d)
{
    const Attr *to = node_attr(n, "to");
    if (!to || to->type != AT_STRING)
        return ST_OK;
    for (int t = 1; t < DT_COUNT; t++)
        if (strcmp(to->s, dtype_onnx_name((DType)t)) == 0)
            return node_set_attr_int(g, n, "to", t, d);
    return diag_node(d, n, ST_INVALID, "attribute to names an unknown type \"%s\"", to->s);
}

static Status shape_cast(Graph *g, Node *n, Diag *d)
{
    bool like = strcmp(n->op_type, "CastLike") == 0;
    DType t;
    if (like) {
        t = n->inputs[1]->dtype;
    } else {
        const Attr *to = node_attr(n, "to");
        if (!to || to->type != AT_INT)
            return diag_node(d, n, ST_INVALID, "attribute to (an integer type code) is required");
        if (to->i <= 0 || to->i >= DT_COUNT)
            return diag_node(d, n, ST_INVALID, "attribute to=%lld is not a known type", (long long)to->i);
        t = (DType)to->i;
    }
    op_set_output(n, 0, t, &n->inputs[0]->shape);
    return ST_OK;
}

/* Shortest decimal that reads back as the same float (NumPy prints floats this way). */
static const char *num_to_string(Arena *a, const Tensor *x, size_t i)
{
    char buf[64];
    if (dtype_is_int(x->dtype) || x->dtype == DT_BOOL) {
        if (x->dtype == DT_UINT64)
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)(uint64_t)tensor_get_i64(x, i));
        else
            snprintf(buf, sizeof buf, "%lld", (long long)tensor_get_i64(x, i));
        return arena_strdup(a, buf);
    }
    double v = tensor_get_f64(x, i);
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "INF" : "-INF";
    bool single = x->dtype != DT_DOUBLE;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    return arena_strdup(a, buf);
}

static Status fold_cast(Graph *g, Node *n, Diag *d)
{
    Tensor *y;
    Status st;
    const Tensor *x = n->inputs[0]->init;
    if ((st = op_fold_output(g, n, 0, &y, d)))
        return st;
    bool xs = x->dtype == DT_STRING, ys = y->dtype == DT_STRING;
    if ((!xs && (st = check_foldable(n, x->dtype, d))) || (!ys && (st = check_foldable(n, y->dtype, d))))
        return st;
    for (size_t i = 0; i < y->numel; i++) {
        if (xs && ys) {
            ((const char **)y->data)[i] = ((char *const *)x->data)[i];
            y->str_len[i] = x->str_len ? x->str_len[i] : strlen(((char *const *)x->data)[i]);
        } else if (ys) {
            const char *s = num_to_string(g->arena, x, i);
            if (!s)
                return diag_node(d, n, ST_NOMEM, "out of memory folding");
            ((const char **)y->data)[i] = s;
            y->str_len[i] = strlen(s);
        } else if (xs) {
            const char *s = ((char *const *)x->data)[i];
            if (dtype_is_int(y->dtype))
                tensor_set_i64(y, i, strtoll(s, NULL, 10));
            else
                store_f64(y, i, strtod(s, NULL));
        } else if (y->dtype == DT_BOOL) {
            tensor_set_i64(y, i, dtype_is_float(x->dtype) ? tensor_get_f64(x, i) != 0 : tensor_get_i64(x, i) != 0);
        } else if (dtype_is_int(y->dtype)) {
            tensor_set_i64(y, i, tensor_get_i64(x, i)); /* floats truncate toward zero, ints wrap */
        } else {
            tensor_set_f64(y, i, tensor_get_f64(x, i));
        }
    }
    return ST_OK;
}

/* ======================================================================== gradient rules */

/* One backward node with one output (default domain); NULL on error (the Diag says why). */
static Value *bw1(GradCtx *c, const Node *fwd, const char *op, int nin, Value *const *in, Diag *d)
{
    Node *m = grad_add_node(c, fwd, "", op, nin, in, 1, d);
    return m ? m->outputs[0] : NULL;
}

/* Accumulate g (of the broadcast output shape) into input i after reducing it to the input's shape;
 * negated (after the reduction, on fewer elements) when neg. */
static Status grad_to_input(GradCtx *c, Node *n, int i, Value *g, bool neg, Diag *d)
{
    if (g)
        g = grad_unbroadcast(c, n, g, &n->inputs[i]->shape, d);
    if (g && neg)
        g = bw1(c, n, "Neg", 1, &g, d);
    return g ? grad_accumulate(c, n, i, g, d) : d->status;
}

/* Y = A + B, A - B, A * B, A / B with numpy broadcasting:
 *   Add: dA = dY, dB = dY;  Sub: dA = dY, dB = -dY;  Mul: dA = dY * B, dB = dY * A;
 *   Div: dA = dY / B, dB = -dY * A / B^2 = -(dY * Y) / B;
 * each reduced over the dims its input was broadcast along. */
static Status grad_arith(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    Value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
    BinaryKind k = binary_info(n->op_type)->kind;
    Status st;
    if (grad_needed(c, n, 0)) {
        Value *g = k == BI_MUL ? bw1(c, n, "Mul", 2, (Value *[]){dy, b}, d)
                   : k == BI_DIV ? bw1(c, n, "Div", 2, (Value *[]){dy, b}, d)
                                 : dy;
        if ((st = grad_to_input(c, n, 0, g, false, d)))
            return st;
    }
    if (grad_needed(c, n, 1)) {
        Value *g = dy;
        if (k == BI_MUL) {
            g = bw1(c, n, "Mul", 2, (Value *[]){dy, a}, d);
        } else if (k == BI_DIV) {
            g = bw1(c, n, "Mul", 2, (Value *[]){dy, y}, d);
            g = g ? bw1(c, n, "Div", 2, (Value *[]){g, b}, d) : NULL;
        }
        if ((st = grad_to_input(c, n, 1, g, k == BI_SUB || k == BI_DIV, d)))
            return st;
    }
    return ST_OK;
}

/* Scalar constant x of dtype t for backward nodes. */
static Value *grad_scalar(GradCtx *c, const char *hint, DType t, double x, Diag *d)
{
    return graph_const_scalar(grad_graph(c), hint, t, x, d);
}

/* Y = f(X) element-wise, one backward node as ir/unary.def's grad column says:
 *   ONNX_DY(Neg): dX = -dY;   ONNX_Y(Mul) (Exp): dX = dY * Y;   ONNX_X(Div) (Log): dX = dY / X;
 *   FUSED_X / FUSED_Y: dX = dY * f'(X) (computed from Y for Sigmoid, Tanh, Sqrt, Reciprocal) in one
 *   onnxtune.<Op>Grad(dY, X or Y) node, whose alpha and beta are the forward kernel's. */
static Status grad_unary(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    const UnaryDef *u = unary_def(n->op_type);
    Value *t = u->grad == UG_X ? n->inputs[0] : u->grad == UG_Y ? n->outputs[0] : NULL, *dx;
    if (u->grad_op) {
        dx = bw1(c, n, u->grad_op, t ? 2 : 1, (Value *[]){dy, t}, d);
    } else {
        float p[2];
        Graph *g = grad_graph(c);
        Node *m = unary_params(n, u, p, d) ? NULL
                  : grad_new_node(c, n, ONNXTUNE_DOMAIN, arena_printf(g->arena, "%sGrad", u->name), 2,
                                  (Value *[]){dy, t}, 1, d);
        if (!m || node_set_attr_float(g, m, "alpha", p[0], d) || node_set_attr_float(g, m, "beta", p[1], d) ||
            grad_finish_node(c, m, d))
            return d->status;
        dx = m->outputs[0];
    }
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* Sign, Floor, Ceil, Round: Y is piecewise constant in X, so dX = 0 (PyTorch's convention at the jumps
 * too). An explicit zero tensor, not no gradient: a parameter whose only path to the loss runs through
 * one still gets a gradient, so weight decay steps it as in PyTorch. */
static Status grad_zero(GradCtx *c, Node *n, Diag *d)
{
    Value *x = n->inputs[0];
    if (!grad_output(c, n, 0) || !grad_needed(c, n, 0))
        return ST_OK;
    if (!shape_is_static(&x->shape)) {
        char a[128];
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s is not static (pass --batch for training)",
                         shape_str(&x->shape, a, sizeof a));
    }
    Value *z = graph_const(grad_graph(c), "zero_grad", x->dtype, &x->shape, d);
    return z ? grad_accumulate(c, n, 0, z, d) : d->status;
}

/* Y = A ^ B (B may be of another numeric type, Pow-12+):
 *   dA = dY * B * A^(B-1)  (B a constant scalar k: dY * k * A^(k-1); k = 1: dY; k = 2: dY * 2A),
 *   dB = dY * Y * log(A)   (defined for A > 0). */
static Status grad_pow(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    Value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
    DType t = a->dtype;
    Status st;
    if (grad_needed(c, n, 0)) {
        Value *g;
        if (value_is_const(b) && b->init->numel == 1) {
            double k = tensor_get_f64(b->init, 0);
            if (k == 1) {
                g = dy;
            } else if (k == 2) {
                Value *two = grad_scalar(c, "pow_k", t, 2, d);
                g = two ? bw1(c, n, "Mul", 2, (Value *[]){a, two}, d) : NULL;
                g = g ? bw1(c, n, "Mul", 2, (Value *[]){dy, g}, d) : NULL;
            } else {
                Value *km1 = grad_scalar(c, "pow_k_minus_1", t, k - 1, d), *kv = grad_scalar(c, "pow_k", t, k, d);
                g = km1 && kv ? bw1(c, n, "Pow", 2, (Value *[]){a, km1}, d) : NULL;
                g = g ? bw1(c, n, "Mul", 2, (Value *[]){g, kv}, d) : NULL;
                g = g ? bw1(c, n, "Mul", 2, (Value *[]){dy, g}, d) : NULL;
            }
        } else {
            Value *bb = b;
            if (b->dtype != t) {
                Node *m = grad_new_node(c, n, "", "Cast", 1, &b, 1, d);
                if (!m || node_set_attr_int(grad_graph(c), m, "to", t, d) || grad_finish_node(c, m, d))
                    return d->status;
                bb = m->outputs[0];
            }
            Value *one = grad_scalar(c, "one", t, 1, d);
            Value *bm1 = one ? bw1(c, n, "Sub", 2, (Value *[]){bb, one}, d) : NULL;
            g = bm1 ? bw1(c, n, "Pow", 2, (Value *[]){a, bm1}, d) : NULL;
            g = g ? bw1(c, n, "Mul", 2, (Value *[]){g, bb}, d) : NULL;
            g = g ? bw1(c, n, "Mul", 2, (Value *[]){dy, g}, d) : NULL;
        }
        if ((st = grad_to_input(c, n, 0, g, false, d)))
            return st;
    }
    if (grad_needed(c, n, 1)) {
        if (b->dtype != t)
            return diag_node(d, n, ST_UNSUPPORTED, "a gradient for the exponent '%s' of type %s (the base is %s)",
                             b->name, dtype_name(b->dtype), dtype_name(t));
        Value *g = bw1(c, n, "Mul", 2, (Value *[]){dy, y}, d);
        Value *la = g ? bw1(c, n, "Log", 1, &a, d) : NULL;
        g = la ? bw1(c, n, "Mul", 2, (Value *[]){g, la}, d) : NULL;
        if ((st = grad_to_input(c, n, 1, g, false, d)))
            return st;
    }
    return ST_OK;
}

/* Y = Mod(A, B) = A - q * B, q = trunc(A / B) (fmod=1) or floor(A / B) (fmod=0), q piecewise constant:
 *   dA = dY, dB = -dY * q, q recovered as Round((A - Y) / B) (an integer up to rounding);
 * torch.fmod's and torch.remainder's rule (their gradient is not zero), each reduced to its input. */
static Status grad_mod(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    Value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
    Status st;
    if (grad_needed(c, n, 0) && (st = grad_to_input(c, n, 0, dy, false, d)))
        return st;
    if (grad_needed(c, n, 1)) {
        Value *q = bw1(c, n, "Sub", 2, (Value *[]){a, y}, d);
        q = q ? bw1(c, n, "Div", 2, (Value *[]){q, b}, d) : NULL;
        q = q ? bw1(c, n, "Round", 1, &q, d) : NULL;
        Value *g = q ? bw1(c, n, "Mul", 2, (Value *[]){dy, q}, d) : NULL;
        if ((st = grad_to_input(c, n, 1, g, true, d)))
            return st;
    }
    return ST_OK;
}

/* Y = X0 + X1 + ... (Sum) or that / k (Mean): dXi = dY (or dY / k), reduced to Xi's shape.
 * Y = max(X0, X1, ...) (Max; Min alike): dXi = dY * [Xi == Y] / #{j : Xj == Y}, i.e. ties share the
 * gradient evenly, as torch.maximum/minimum do. */
static Status grad_variadic(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    BinaryKind k = binary_info(n->op_type)->kind;
    Value *y = n->outputs[0], *w = dy;
    Value *mask[64];
    Status st;
    if (n->ninputs > 64)
        return diag_node(d, n, ST_UNSUPPORTED, "a gradient through more than 64 inputs");
    if (k == BI_MEAN && n->ninputs > 1) {
        Value *s = grad_scalar(c, "mean_scale", dy->dtype, 1.0 / n->ninputs, d);
        if (!s || !(w = bw1(c, n, "Mul", 2, (Value *[]){dy, s}, d)))
            return d->status;
    }
    if ((k == BI_MAX || k == BI_MIN) && n->ninputs > 1) {
        for (int i = 0; i < n->ninputs; i++) {
            Value *eq = bw1(c, n, "Equal", 2, (Value *[]){n->inputs[i], y}, d);
            Node *m = eq ? grad_new_node(c, n, "", "Cast", 1, &eq, 1, d) : NULL;
            if (!m || node_set_attr_int(grad_graph(c), m, "to", dy->dtype, d) || grad_finish_node(c, m, d))
                return d->status;
            mask[i] = m->outputs[0];
        }
        Node *cnt = grad_add_node(c, n, "", "Sum", n->ninputs, mask, 1, d);
        if (!cnt || !(w = bw1(c, n, "Div", 2, (Value *[]){dy, cnt->outputs[0]}, d)))
            return d->status;
    }
    for (int i = 0; i < n->ninputs; i++) {
        if (!grad_needed(c, n, i))
            continue;
        Value *g = w;
        if ((k == BI_MAX || k == BI_MIN) && n->ninputs > 1)
            g = bw1(c, n, "Mul", 2, (Value *[]){w, mask[i]}, d);
        if ((st = grad_to_input(c, n, i, g, false, d)))
            return st;
    }
    return ST_OK;
}

/* Y = X < 0 ? slope * X : X (slope broadcast to X):
 *   dX = X > 0 ? dY : dY * slope,   dslope = reduce(X > 0 ? 0 : dY * X) to slope's shape
 * (at X = 0 the slope side, as torch.prelu's backward). */
static Status grad_prelu(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    Value *x = n->inputs[0], *slope = n->inputs[1];
    Value *zero = grad_scalar(c, "zero", dy->dtype, 0, d);
    Value *pos = zero ? bw1(c, n, "Greater", 2, (Value *[]){x, zero}, d) : NULL;
    Status st;
    if (!pos)
        return d->status;
    if (grad_needed(c, n, 0)) {
        Value *g = bw1(c, n, "Mul", 2, (Value *[]){dy, slope}, d);
        g = g ? bw1(c, n, "Where", 3, (Value *[]){pos, dy, g}, d) : NULL;
        if ((st = grad_to_input(c, n, 0, g, false, d)))
            return st;
    }
    if (grad_needed(c, n, 1)) {
        Value *g = bw1(c, n, "Mul", 2, (Value *[]){dy, x}, d);
        g = g ? bw1(c, n, "Where", 3, (Value *[]){pos, zero, g}, d) : NULL;
        if ((st = grad_to_input(c, n, 1, g, false, d)))
            return st;
    }
    return ST_OK;
}

/* Y = C ? A : B (three-way broadcasting): dA = reduce(C ? dY : 0), dB = reduce(C ? 0 : dY). */
static Status grad_where(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || (!grad_needed(c, n, 1) && !grad_needed(c, n, 2)))
        return ST_OK;
    Value *cond = n->inputs[0], *zero = grad_scalar(c, "zero", dy->dtype, 0, d);
    Status st;
    if (!zero)
        return d->status;
    for (int i = 1; i <= 2; i++) {
        if (!grad_needed(c, n, i))
            continue;
        Value *g = bw1(c, n, "Where", 3, i == 1 ? (Value *[]){cond, dy, zero} : (Value *[]){cond, zero, dy}, d);
        if ((st = grad_to_input(c, n, i, g, false, d)))
            return st;
    }
    return ST_OK;
}

/* Y = min(max(X, lo), hi): dX = dY where lo <= X <= hi, else 0 (torch.clamp's mask), in one fused
 * onnxtune.ClipGrad(dY, X, lo, hi). The bounds get no gradient. */
static Status grad_clip(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    for (int i = 1; i < n->ninputs; i++)
        if (grad_needed(c, n, i))
            return diag_node(d, n, ST_UNSUPPORTED, "Clip has no gradient for its bound '%s' (input %d); freeze it",
                             n->inputs[i]->name, i);
    if (!grad_needed(c, n, 0))
        return ST_OK;
    Value *in[4] = {dy, n->inputs[0], node_input(n, 1), node_input(n, 2)};
    Node *m = grad_add_node(c, n, ONNXTUNE_DOMAIN, "ClipGrad", n->ninputs + 1, in, 1, d);
    return m ? grad_accumulate(c, n, 0, m->outputs[0], d) : d->status;
}

/* Y = Cast(X) between float types: dX = Cast(dY) back to X's type (dY itself when the types agree).
 * CastLike likewise for its input 0. Casts to or from non-float types carry no gradient. */
static Status grad_cast(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0), *x = n->inputs[0];
    if (!dy || !grad_needed(c, n, 0) || !dtype_is_float(n->outputs[0]->dtype))
        return ST_OK;
    if (dy->dtype == x->dtype)
        return grad_accumulate(c, n, 0, dy, d);
    Node *m = grad_new_node(c, n, "", "Cast", 1, &dy, 1, d);
    if (!m || node_set_attr_int(grad_graph(c), m, "to", x->dtype, d) || grad_finish_node(c, m, d))
        return d->status;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* onnxtune.<Op>Grad(dY, T[, lo, hi]) -> dX: dY and T of one float type and shape; dX is T's. */
static Status shape_act_grad(Graph *g, Node *n, Diag *d)
{
    const Value *dy = n->inputs[0], *t = n->inputs[1];
    if (dy->shape.rank >= 0 && t->shape.rank >= 0 && !shape_equal(&dy->shape, &t->shape) &&
        shape_is_static(&dy->shape) && shape_is_static(&t->shape)) {
        char a[128], b[128];
        return diag_node(d, n, ST_SHAPE, "input 0 (dY) %s and input 1 %s differ in shape",
                         shape_str(&dy->shape, a, sizeof a), shape_str(&t->shape, b, sizeof b));
    }
    op_set_output(n, 0, t->dtype, &t->shape);
    return ST_OK;
}

/* ======================================================================== the table */

#define BINARY_ROW(op, v, g, in_max, ...) {.name = op, .domain = "", .family = "elementwise", .canon_opset = v, \
    .canon = canon_legacy_broadcast, .shape = shape_binary, .fold = fold_binary, .flops = flops_variadic, \
    .grad = g, ARITY(in_max == 2 ? 2 : 1, in_max, 1, 1), REQUIRED(ALL_INPUTS), DTYPES(__VA_ARGS__)}
#define BINARY(op, v, cls) BINARY_ROW(op, v, NULL, 2, IN_CLASS_SAME(cls))
#define BINARY_GRAD(op, v, g, cls) BINARY_ROW(op, v, g, 2, IN_CLASS_SAME(cls))
#define VARIADIC(op, v, g, cls) BINARY_ROW(op, v, g, -1, IN_CLASS_SAME(cls))

/* A unary.def row as an op rule; its alpha/beta attributes are the defaults canonicalisation writes. */
#define UNARY_RULE(op, since, types, grad_rule, ...) {.name = #op, .domain = "", .family = "elementwise", \
    .canon_opset = since, .canon = canon_legacy_broadcast, .shape = shape_unary, .fold = fold_unary, \
    .flops = flops_out0, .grad = grad_rule, ARITY(1, 1, 1, 1), REQUIRED(1), DTYPES(IN_CLASS(0, types)), \
    .defaults = {__VA_ARGS__}},
#define GRAD_RULE_NONE NULL
#define GRAD_RULE_ZERO grad_zero
#define GRAD_RULE_FUSED_X grad_unary
#define GRAD_RULE_FUSED_Y grad_unary
#define GRAD_RULE_ONNX_X(op) grad_unary
#define GRAD_RULE_ONNX_Y(op) grad_unary
#define GRAD_RULE_ONNX_DY(op) grad_unary

/* onnxtune.<Op>Grad(dY, T) -> dX for the unary.def rows with a fused gradient; none for the others
 * (ONNX_X(Div) expands to ACT_GRAD_ROW_NONE, which then takes the (op) that follows). */
#define ACT_GRAD(op) {.name = op, .domain = ONNXTUNE_DOMAIN, .family = "elementwise", .canon_opset = 1, \
    .shape = shape_act_grad, .flops = flops_out0, ARITY(2, 2, 1, 1), REQUIRED(2), \
    DTYPES(IN_CLASS(0, TC_FLOAT), IN_SAME(0, 1))}
#define ACT_GRAD_ROW_NONE(op)
#define ACT_GRAD_ROW_ZERO(op)
#define ACT_GRAD_ROW_FUSED_X(op) ACT_GRAD(#op "Grad"),
#define ACT_GRAD_ROW_FUSED_Y(op) ACT_GRAD(#op "Grad"),
#define ACT_GRAD_ROW_ONNX_X(std) ACT_GRAD_ROW_NONE
#define ACT_GRAD_ROW_ONNX_Y(std) ACT_GRAD_ROW_NONE
#define ACT_GRAD_ROW_ONNX_DY(std) ACT_GRAD_ROW_NONE

const OpRule elementwise_rules[] = {
#define UNARY(op, kernel, types, since, grad, alpha, beta) UNARY_RULE(op, since, types, GRAD_RULE_##grad, alpha, beta)
#define UNARY_TO_BOOL(op, types, since, alpha, beta) UNARY_RULE(op, since, types, NULL, alpha, beta)
#include "unary.def"
    BINARY_GRAD("Add", 14, grad_arith, TC_NUMERIC), BINARY_GRAD("Sub", 14, grad_arith, TC_NUMERIC),
    BINARY_GRAD("Mul", 14, grad_arith, TC_NUMERIC), BINARY_GRAD("Div", 14, grad_arith, TC_NUMERIC),
    BINARY_ROW("Pow", 15, grad_pow, 2, IN_CLASS(ALL_INPUTS, TC_NUMERIC)), BINARY_GRAD("Mod", 13, grad_mod, TC_NUMERIC),
    VARIADIC("Min", 13, grad_variadic, TC_NUMERIC), VARIADIC("Max", 13, grad_variadic, TC_NUMERIC),
    VARIADIC("Sum", 13, grad_variadic, TC_NUMERIC), VARIADIC("Mean", 13, grad_variadic, TC_FLOAT),
    BINARY_GRAD("PRelu", 16, grad_prelu, TC_NUMERIC), BINARY("Equal", 13, TC_ANY), BINARY("Less", 13, TC_NUMERIC),
    BINARY("LessOrEqual", 16, TC_NUMERIC), BINARY("Greater", 13, TC_NUMERIC),
    BINARY("GreaterOrEqual", 16, TC_NUMERIC), BINARY("And", 7, TC_BOOL), BINARY("Or", 7, TC_BOOL),
    BINARY("Xor", 7, TC_BOOL), BINARY("BitShift", 11, TC_UNSIGNED), BINARY("BitwiseAnd", 18, TC_INT),
    BINARY("BitwiseOr", 18, TC_INT), BINARY("BitwiseXor", 18, TC_INT),
    {.name = "Where", .domain = "", .family = "elementwise", .canon_opset = 16, .shape = shape_where,
     .fold = fold_where, .flops = flops_out0, .grad = grad_where, ARITY(3, 3, 1, 1), REQUIRED(3),
     DTYPES(IN_CLASS(0, TC_BOOL), IN_SAME(1, 2))},
    {.name = "Clip", .domain = "", .family = "elementwise", .canon_opset = 13, .canon = canon_clip,
     .shape = shape_clip, .fold = fold_clip, .flops = flops_out0, .grad = grad_clip, ARITY(1, 3, 1, 1), REQUIRED(1),
     DTYPES(IN_CLASS(0, TC_NUMERIC))},
    {.name = "Cast", .domain = "", .family = "elementwise", .canon_opset = 13, .canon = canon_cast,
     .shape = shape_cast, .fold = fold_cast, .flops = flops_out0, .grad = grad_cast, ARITY(1, 1, 1, 1),
     REQUIRED(ALL_INPUTS)},
    {.name = "CastLike", .domain = "", .family = "elementwise", .canon_opset = 15, .shape = shape_cast,
     .fold = fold_cast, .flops = flops_out0, .grad = grad_cast, ARITY(2, 2, 1, 1), REQUIRED(ALL_INPUTS)},
    /* backward ops (onnxtune domain): <Op>Grad(dY, T) -> dX for unary.def's FUSED_X and FUSED_Y rows */
#define UNARY(op, kernel, types, since, grad, alpha, beta) ACT_GRAD_ROW_##grad(op)
#include "unary.def"
    {.name = "ClipGrad", .domain = ONNXTUNE_DOMAIN, .family = "elementwise", .canon_opset = 1,
     .shape = shape_act_grad, .flops = flops_out0, ARITY(2, 4, 1, 1), REQUIRED(2),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_SAME(0, 1), IN_SAME(1, 2), IN_SAME(1, 3))},
    {0},
};
