/* ops_elementwise.c - rules of the element-wise ops: unary math and activations, binary and variadic
 * ops with numpy broadcasting, comparisons and logic, Where, Clip, Cast and CastLike. Canonical forms
 * follow opset 17 (18 for Mish and the Bitwise ops). Fold rules compute integers in int64, never via
 * doubles, so folded shape arithmetic stays exact. Kernels are not here (kernels/). */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtype classes ---- */

typedef enum {
    TC_ANY = 0,     /* no check */
    TC_FLOAT,       /* float16, bfloat16, float, double */
    TC_NUMERIC,     /* floats and integers */
    TC_BOOL,
    TC_INT,         /* integers */
    TC_UNSIGNED,    /* unsigned integers */
} TypeClass;

static bool is_unsigned(DType t)
{
    return t == DT_UINT8 || t == DT_UINT16 || t == DT_UINT32 || t == DT_UINT64;
}

static bool in_class(DType t, TypeClass c)
{
    switch (c) {
    case TC_ANY: return true;
    case TC_FLOAT: return dtype_is_float(t);
    case TC_NUMERIC: return dtype_is_float(t) || dtype_is_int(t);
    case TC_BOOL: return t == DT_BOOL;
    case TC_INT: return dtype_is_int(t);
    case TC_UNSIGNED: return is_unsigned(t);
    }
    return false;
}

static const char *class_name(TypeClass c)
{
    static const char *names[] = {"any type", "a float type", "a numeric type", "bool", "an integer type",
                                  "an unsigned integer type"};
    return names[c];
}

/* Present input i with a known dtype must be of class c. */
static Status check_class(const Node *n, int i, TypeClass c, Diag *d)
{
    const Value *v = node_input(n, i);
    if (!v || v->dtype == DT_UNDEFINED || in_class(v->dtype, c))
        return ST_OK;
    return diag_node(d, n, ST_SHAPE, "input %d '%s' is %s but %s needs %s", i, v->name, dtype_name(v->dtype),
                     n->op_type, class_name(c));
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

typedef enum {
    UN_ABS, UN_NEG, UN_RECIPROCAL, UN_FLOOR, UN_CEIL, UN_ROUND, UN_SQRT, UN_EXP, UN_LOG, UN_SIN, UN_COS,
    UN_TAN, UN_ASIN, UN_ACOS, UN_ATAN, UN_SINH, UN_COSH, UN_ASINH, UN_ACOSH, UN_ATANH, UN_ERF, UN_SIGN,
    UN_RELU, UN_SIGMOID, UN_TANH, UN_SOFTPLUS, UN_SOFTSIGN, UN_LEAKYRELU, UN_ELU, UN_SELU, UN_CELU,
    UN_HARDSIGMOID, UN_HARDSWISH, UN_THRESHOLDEDRELU, UN_MISH, UN_SHRINK, UN_ISNAN, UN_ISINF, UN_NOT,
    UN_BITWISENOT,
} UnaryKind;

typedef struct {
    const char *name;
    UnaryKind kind;
    TypeClass types;
} UnaryInfo;

static const UnaryInfo unary_ops[] = {
    {"Abs", UN_ABS, TC_NUMERIC}, {"Neg", UN_NEG, TC_NUMERIC}, {"Reciprocal", UN_RECIPROCAL, TC_FLOAT},
    {"Floor", UN_FLOOR, TC_FLOAT}, {"Ceil", UN_CEIL, TC_FLOAT}, {"Round", UN_ROUND, TC_FLOAT},
    {"Sqrt", UN_SQRT, TC_FLOAT}, {"Exp", UN_EXP, TC_FLOAT}, {"Log", UN_LOG, TC_FLOAT},
    {"Sin", UN_SIN, TC_FLOAT}, {"Cos", UN_COS, TC_FLOAT}, {"Tan", UN_TAN, TC_FLOAT},
    {"Asin", UN_ASIN, TC_FLOAT}, {"Acos", UN_ACOS, TC_FLOAT}, {"Atan", UN_ATAN, TC_FLOAT},
    {"Sinh", UN_SINH, TC_FLOAT}, {"Cosh", UN_COSH, TC_FLOAT}, {"Asinh", UN_ASINH, TC_FLOAT},
    {"Acosh", UN_ACOSH, TC_FLOAT}, {"Atanh", UN_ATANH, TC_FLOAT}, {"Erf", UN_ERF, TC_NUMERIC},
    {"Sign", UN_SIGN, TC_NUMERIC}, {"Relu", UN_RELU, TC_NUMERIC}, {"Sigmoid", UN_SIGMOID, TC_FLOAT},
    {"Tanh", UN_TANH, TC_FLOAT}, {"Softplus", UN_SOFTPLUS, TC_FLOAT}, {"Softsign", UN_SOFTSIGN, TC_FLOAT},
    {"LeakyRelu", UN_LEAKYRELU, TC_FLOAT}, {"Elu", UN_ELU, TC_FLOAT}, {"Selu", UN_SELU, TC_FLOAT},
    {"Celu", UN_CELU, TC_FLOAT}, {"HardSigmoid", UN_HARDSIGMOID, TC_FLOAT},
    {"HardSwish", UN_HARDSWISH, TC_FLOAT}, {"ThresholdedRelu", UN_THRESHOLDEDRELU, TC_FLOAT},
    {"Mish", UN_MISH, TC_FLOAT}, {"Shrink", UN_SHRINK, TC_NUMERIC}, {"IsNaN", UN_ISNAN, TC_FLOAT},
    {"IsInf", UN_ISINF, TC_FLOAT}, {"Not", UN_NOT, TC_BOOL}, {"BitwiseNot", UN_BITWISENOT, TC_INT},
};

static const UnaryInfo *unary_info(const char *op)
{
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++)
        if (strcmp(unary_ops[i].name, op) == 0)
            return &unary_ops[i];
    return NULL;
}

/* Attributes of the activations, read once per node (defaults as in the opset 17 spec). */
typedef struct {
    double alpha, beta, gamma, lambd, bias;
    bool neg_inf, pos_inf;
} UnaryParams;

static UnaryParams unary_params(const Node *n, UnaryKind k)
{
    UnaryParams p = {0};
    double alpha = 0, beta = 0;
    switch (k) {
    case UN_LEAKYRELU: alpha = 0.01; break;
    case UN_ELU: case UN_CELU: case UN_THRESHOLDEDRELU: alpha = 1.0; break;
    case UN_SELU: alpha = 1.67326319217681884765625; break;
    case UN_HARDSIGMOID: alpha = 0.2, beta = 0.5; break;
    default: break;
    }
    p.alpha = node_attr_float(n, "alpha", (float)alpha);
    p.beta = node_attr_float(n, "beta", (float)beta);
    p.gamma = node_attr_float(n, "gamma", 1.05070102214813232421875f);
    p.lambd = node_attr_float(n, "lambd", 0.5f);
    p.bias = node_attr_float(n, "bias", 0.0f);
    p.neg_inf = node_attr_int(n, "detect_negative", 1) != 0;
    p.pos_inf = node_attr_int(n, "detect_positive", 1) != 0;
    return p;
}

static double softplus(double x)
{
    return x > 30 ? x : log1p(exp(x));
}

static double unary_f64(UnaryKind k, double x, const UnaryParams *p)
{
    switch (k) {
    case UN_ABS: return fabs(x);
    case UN_NEG: return -x;
    case UN_RECIPROCAL: return 1.0 / x;
    case UN_FLOOR: return floor(x);
    case UN_CEIL: return ceil(x);
    case UN_ROUND: return nearbyint(x); /* halves to even, the default rounding mode */
    case UN_SQRT: return sqrt(x);
    case UN_EXP: return exp(x);
    case UN_LOG: return log(x);
    case UN_SIN: return sin(x);
    case UN_COS: return cos(x);
    case UN_TAN: return tan(x);
    case UN_ASIN: return asin(x);
    case UN_ACOS: return acos(x);
    case UN_ATAN: return atan(x);
    case UN_SINH: return sinh(x);
    case UN_COSH: return cosh(x);
    case UN_ASINH: return asinh(x);
    case UN_ACOSH: return acosh(x);
    case UN_ATANH: return atanh(x);
    case UN_ERF: return erf(x);
    case UN_SIGN: return x > 0 ? 1 : x < 0 ? -1 : x; /* keeps NaN and signed zero */
    case UN_RELU: return x > 0 ? x : 0;
    case UN_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case UN_TANH: return tanh(x);
    case UN_SOFTPLUS: return softplus(x);
    case UN_SOFTSIGN: return x / (1.0 + fabs(x));
    case UN_LEAKYRELU: return x >= 0 ? x : p->alpha * x;
    case UN_ELU: return x >= 0 ? x : p->alpha * (exp(x) - 1);
    case UN_SELU: return x > 0 ? p->gamma * x : p->gamma * p->alpha * (exp(x) - 1);
    case UN_CELU: return fmax(0, x) + fmin(0, p->alpha * (exp(x / p->alpha) - 1));
    case UN_HARDSIGMOID: return fmax(0, fmin(1, p->alpha * x + p->beta));
    case UN_HARDSWISH: return x * fmax(0, fmin(1, x / 6 + 0.5));
    case UN_THRESHOLDEDRELU: return x > p->alpha ? x : 0;
    case UN_MISH: return x * tanh(softplus(x));
    case UN_SHRINK: return x < -p->lambd ? x + p->bias : x > p->lambd ? x - p->bias : 0;
    case UN_ISNAN: return isnan(x);
    case UN_ISINF: return isinf(x) && ((x > 0 && p->pos_inf) || (x < 0 && p->neg_inf));
    case UN_NOT: return x == 0;
    case UN_BITWISENOT: return NAN; /* integers only, handled in unary_i64 */
    }
    return NAN;
}

/* Integer semantics where they differ from the float ones; false: compute through double. */
static bool unary_i64(UnaryKind k, int64_t x, bool uns, int64_t *out)
{
    switch (k) {
    case UN_ABS: *out = uns || x >= 0 ? x : (int64_t)(0 - (uint64_t)x); return true;
    case UN_NEG: *out = (int64_t)(0 - (uint64_t)x); return true;
    case UN_SIGN: *out = uns ? x != 0 : (x > 0) - (x < 0); return true;
    case UN_RELU: *out = !uns && x < 0 ? 0 : x; return true;
    case UN_NOT: *out = x == 0; return true;
    case UN_BITWISENOT: *out = ~x; return true;
    default: return false;
    }
}

static Status shape_unary(Graph *g, Node *n, Diag *d)
{
    Status st;
    const UnaryInfo *info = unary_info(n->op_type);
    if (!info)
        return diag_node(d, n, ST_ERR, "internal: no unary rule for %s", n->op_type);
    if ((st = op_check_arity(n, 1, 1, 1, 1, d)) || (st = op_require_inputs(n, 1, d)) ||
        (st = check_class(n, 0, info->types, d)))
        return st;
    const Value *x = n->inputs[0];
    DType t = info->kind == UN_ISNAN || info->kind == UN_ISINF ? DT_BOOL : x->dtype;
    op_set_output(n, 0, t, &x->shape);
    return ST_OK;
}

static Status fold_unary(Graph *g, Node *n, Diag *d)
{
    const UnaryInfo *info = unary_info(n->op_type);
    const Tensor *x = n->inputs[0]->init;
    Tensor *y;
    Status st;
    if ((st = check_foldable(n, x->dtype, d)) || (st = op_fold_output(g, n, 0, &y, d)))
        return st;
    UnaryParams p = unary_params(n, info->kind);
    bool ints = dtype_is_int(x->dtype) || x->dtype == DT_BOOL, uns = is_unsigned(x->dtype);
    for (size_t i = 0; i < y->numel; i++) {
        int64_t r;
        if (ints && unary_i64(info->kind, tensor_get_i64(x, i), uns, &r))
            tensor_set_i64(y, i, r);
        else
            store_f64(y, i, unary_f64(info->kind, tensor_get_f64(x, i), &p));
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
    TypeClass types;    /* of the inputs */
    bool to_bool;       /* output is bool (comparisons) */
    bool variadic;      /* 1..N inputs (Sum, Mean, Min, Max) */
} BinaryInfo;

static const BinaryInfo binary_ops[] = {
    {"Add", BI_ADD, TC_NUMERIC, false, false}, {"Sub", BI_SUB, TC_NUMERIC, false, false},
    {"Mul", BI_MUL, TC_NUMERIC, false, false}, {"Div", BI_DIV, TC_NUMERIC, false, false},
    {"Pow", BI_POW, TC_NUMERIC, false, false}, {"Mod", BI_MOD, TC_NUMERIC, false, false},
    {"Min", BI_MIN, TC_NUMERIC, false, true}, {"Max", BI_MAX, TC_NUMERIC, false, true},
    {"Sum", BI_SUM, TC_NUMERIC, false, true}, {"Mean", BI_MEAN, TC_FLOAT, false, true},
    {"PRelu", BI_PRELU, TC_NUMERIC, false, false},
    {"Equal", BI_EQUAL, TC_ANY, true, false}, {"Less", BI_LESS, TC_NUMERIC, true, false},
    {"LessOrEqual", BI_LESSEQ, TC_NUMERIC, true, false}, {"Greater", BI_GREATER, TC_NUMERIC, true, false},
    {"GreaterOrEqual", BI_GREATEREQ, TC_NUMERIC, true, false},
    {"And", BI_AND, TC_BOOL, true, false}, {"Or", BI_OR, TC_BOOL, true, false},
    {"Xor", BI_XOR, TC_BOOL, true, false}, {"BitShift", BI_BITSHIFT, TC_UNSIGNED, false, false},
    {"BitwiseAnd", BI_BITAND, TC_INT, false, false}, {"BitwiseOr", BI_BITOR, TC_INT, false, false},
    {"BitwiseXor", BI_BITXOR, TC_INT, false, false},
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
    if ((st = info->variadic ? op_check_arity(n, 1, -1, 1, 1, d) : op_check_arity(n, 2, 2, 1, 1, d)) ||
        (st = op_require_inputs(n, n->ninputs, d)))
        return st;
    DType t = DT_UNDEFINED;
    for (int i = 0; i < n->ninputs; i++) {
        if ((st = check_class(n, i, info->types, d)))
            return st;
        /* Pow-12+ lets the exponent have its own type; everything else needs one type */
        if (i > 0 && info->kind != BI_POW && (st = op_same_dtype(n, 0, i, d)))
            return st;
        if (t == DT_UNDEFINED && (i == 0 || info->kind != BI_POW))
            t = n->inputs[i]->dtype;
    }
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
    if ((st = op_check_arity(n, 3, 3, 1, 1, d)) || (st = op_require_inputs(n, 3, d)) ||
        (st = check_class(n, 0, TC_BOOL, d)) || (st = op_same_dtype(n, 1, 2, d)))
        return st;
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
    if ((st = op_check_arity(n, 1, 3, 1, 1, d)) || (st = op_require_inputs(n, 1, d)) ||
        (st = check_class(n, 0, TC_NUMERIC, d)))
        return st;
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
    Status st;
    bool like = strcmp(n->op_type, "CastLike") == 0;
    if ((st = op_check_arity(n, like ? 2 : 1, like ? 2 : 1, 1, 1, d)) ||
        (st = op_require_inputs(n, n->ninputs, d)))
        return st;
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

/* The activations whose derivative is one fused kernel pass: onnxtune.<Op>Grad(dY, T) -> dX with
 * T = X, or Y for the rows marked from_output (unary_backward_reads_output in kernels.h). The grad
 * node's alpha/beta are the kernel's: the forward attributes with ONNX defaults filled in. */
typedef struct {
    UnaryKind kind;
    const char *grad_op;
    bool from_output;
} ActGrad;

static const ActGrad act_grads[] = {
    {UN_ABS, "AbsGrad", false}, {UN_RECIPROCAL, "ReciprocalGrad", true}, {UN_SQRT, "SqrtGrad", true},
    {UN_ERF, "ErfGrad", false}, {UN_SIGMOID, "SigmoidGrad", true}, {UN_TANH, "TanhGrad", true},
    {UN_SOFTPLUS, "SoftplusGrad", false}, {UN_SOFTSIGN, "SoftsignGrad", false}, {UN_RELU, "ReluGrad", false},
    {UN_LEAKYRELU, "LeakyReluGrad", false}, {UN_ELU, "EluGrad", false}, {UN_SELU, "SeluGrad", false},
    {UN_CELU, "CeluGrad", false}, {UN_HARDSIGMOID, "HardSigmoidGrad", false},
    {UN_HARDSWISH, "HardSwishGrad", false}, {UN_THRESHOLDEDRELU, "ThresholdedReluGrad", false},
    {UN_MISH, "MishGrad", false}, {UN_SHRINK, "ShrinkGrad", false},
};

static const ActGrad *act_grad(UnaryKind k)
{
    for (size_t i = 0; i < sizeof act_grads / sizeof act_grads[0]; i++)
        if (act_grads[i].kind == k)
            return &act_grads[i];
    return NULL;
}

/* Y = f(X) element-wise:
 *   Neg: dX = -dY;   Exp: dX = dY * Y;   Log: dX = dY / X;
 *   the activations in act_grads: dX = dY * f'(X) (from Y for Sigmoid, Tanh, Sqrt, Reciprocal) in one
 *   fused onnxtune.<Op>Grad node. */
static Status grad_unary(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    const UnaryInfo *info = unary_info(n->op_type);
    Value *x = n->inputs[0], *y = n->outputs[0], *dx;
    if (info->kind == UN_NEG) {
        dx = bw1(c, n, "Neg", 1, &dy, d);
    } else if (info->kind == UN_EXP) {
        dx = bw1(c, n, "Mul", 2, (Value *[]){dy, y}, d);
    } else if (info->kind == UN_LOG) {
        dx = bw1(c, n, "Div", 2, (Value *[]){dy, x}, d);
    } else {
        const ActGrad *ag = act_grad(info->kind);
        if (!ag)
            return diag_node(d, n, ST_ERR, "internal: no backward op for %s", n->op_type);
        UnaryParams p = unary_params(n, info->kind);
        double alpha = info->kind == UN_SHRINK ? p.bias : p.alpha;
        double beta = info->kind == UN_SELU ? p.gamma : info->kind == UN_SHRINK ? p.lambd : p.beta;
        Graph *g = grad_graph(c);
        Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, ag->grad_op, 2, (Value *[]){dy, ag->from_output ? y : x},
                                1, d);
        if (!m || node_set_attr_float(g, m, "alpha", (float)alpha, d) ||
            node_set_attr_float(g, m, "beta", (float)beta, d) || grad_finish_node(c, m, d))
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
    Status st;
    bool clip = strcmp(n->op_type, "ClipGrad") == 0;
    if ((st = op_check_arity(n, 2, clip ? 4 : 2, 1, 1, d)) || (st = op_require_inputs(n, 2, d)) ||
        (st = check_class(n, 0, TC_FLOAT, d)) || (st = op_same_dtype(n, 0, 1, d)) ||
        (clip && ((st = op_same_dtype(n, 1, 2, d)) || (st = op_same_dtype(n, 1, 3, d)))))
        return st;
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

#define UNARY(op, v) {.name = op, .domain = "", .family = "elementwise", .canon_opset = v, \
    .canon = canon_legacy_broadcast, .shape = shape_unary, .fold = fold_unary, .flops = flops_out0}
#define BINARY(op, v) {.name = op, .domain = "", .family = "elementwise", .canon_opset = v, \
    .canon = canon_legacy_broadcast, .shape = shape_binary, .fold = fold_binary, .flops = flops_variadic}
#define UNARY_GRAD(op, v) {.name = op, .domain = "", .family = "elementwise", .canon_opset = v, \
    .canon = canon_legacy_broadcast, .shape = shape_unary, .fold = fold_unary, .flops = flops_out0, \
    .grad = grad_unary}
#define UNARY_ZERO_GRAD(op, v) {.name = op, .domain = "", .family = "elementwise", .canon_opset = v, \
    .canon = canon_legacy_broadcast, .shape = shape_unary, .fold = fold_unary, .flops = flops_out0, \
    .grad = grad_zero}
#define ACT_GRAD(op) {.name = op, .domain = ONNXTUNE_DOMAIN, .family = "elementwise", .canon_opset = 1, \
    .shape = shape_act_grad, .flops = flops_out0}
#define BINARY_GRAD(op, v, g) {.name = op, .domain = "", .family = "elementwise", .canon_opset = v, \
    .canon = canon_legacy_broadcast, .shape = shape_binary, .fold = fold_binary, .flops = flops_variadic, \
    .grad = g}

const OpRule elementwise_rules[] = {
    UNARY_GRAD("Abs", 13), UNARY_GRAD("Neg", 13), UNARY_GRAD("Reciprocal", 13), UNARY_ZERO_GRAD("Floor", 13),
    UNARY_ZERO_GRAD("Ceil", 13), UNARY_ZERO_GRAD("Round", 11), UNARY_GRAD("Sqrt", 13), UNARY_GRAD("Exp", 13), UNARY_GRAD("Log", 13),
    UNARY("Sin", 7), UNARY("Cos", 7), UNARY("Tan", 7), UNARY("Asin", 7), UNARY("Acos", 7), UNARY("Atan", 7),
    UNARY("Sinh", 9), UNARY("Cosh", 9), UNARY("Asinh", 9), UNARY("Acosh", 9), UNARY("Atanh", 9),
    UNARY_GRAD("Erf", 13), UNARY_ZERO_GRAD("Sign", 13), UNARY_GRAD("Relu", 14), UNARY_GRAD("Sigmoid", 13),
    UNARY_GRAD("Tanh", 13), UNARY_GRAD("Softplus", 1), UNARY_GRAD("Softsign", 1), UNARY_GRAD("LeakyRelu", 16),
    UNARY_GRAD("Elu", 6), UNARY_GRAD("Selu", 6), UNARY_GRAD("Celu", 12), UNARY_GRAD("HardSigmoid", 6),
    UNARY_GRAD("HardSwish", 14), UNARY_GRAD("ThresholdedRelu", 10), UNARY_GRAD("Mish", 18),
    UNARY_GRAD("Shrink", 9), UNARY("IsNaN", 13), UNARY("IsInf", 10), UNARY("Not", 1), UNARY("BitwiseNot", 18),
    BINARY_GRAD("Add", 14, grad_arith), BINARY_GRAD("Sub", 14, grad_arith), BINARY_GRAD("Mul", 14, grad_arith),
    BINARY_GRAD("Div", 14, grad_arith), BINARY_GRAD("Pow", 15, grad_pow), BINARY("Mod", 13),
    BINARY_GRAD("Min", 13, grad_variadic), BINARY_GRAD("Max", 13, grad_variadic),
    BINARY_GRAD("Sum", 13, grad_variadic), BINARY_GRAD("Mean", 13, grad_variadic),
    BINARY_GRAD("PRelu", 16, grad_prelu), BINARY("Equal", 13), BINARY("Less", 13), BINARY("LessOrEqual", 16),
    BINARY("Greater", 13), BINARY("GreaterOrEqual", 16), BINARY("And", 7), BINARY("Or", 7), BINARY("Xor", 7),
    BINARY("BitShift", 11), BINARY("BitwiseAnd", 18), BINARY("BitwiseOr", 18), BINARY("BitwiseXor", 18),
    {.name = "Where", .domain = "", .family = "elementwise", .canon_opset = 16, .shape = shape_where,
     .fold = fold_where, .flops = flops_out0, .grad = grad_where},
    {.name = "Clip", .domain = "", .family = "elementwise", .canon_opset = 13, .canon = canon_clip,
     .shape = shape_clip, .fold = fold_clip, .flops = flops_out0, .grad = grad_clip},
    {.name = "Cast", .domain = "", .family = "elementwise", .canon_opset = 13, .canon = canon_cast,
     .shape = shape_cast, .fold = fold_cast, .flops = flops_out0, .grad = grad_cast},
    {.name = "CastLike", .domain = "", .family = "elementwise", .canon_opset = 15, .shape = shape_cast,
     .fold = fold_cast, .flops = flops_out0, .grad = grad_cast},
    /* backward ops (onnxtune domain): <Op>Grad(dY, T) -> dX, see act_grads */
    ACT_GRAD("AbsGrad"), ACT_GRAD("ReciprocalGrad"), ACT_GRAD("SqrtGrad"), ACT_GRAD("ErfGrad"),
    ACT_GRAD("SigmoidGrad"), ACT_GRAD("TanhGrad"), ACT_GRAD("SoftplusGrad"), ACT_GRAD("SoftsignGrad"),
    ACT_GRAD("ReluGrad"), ACT_GRAD("LeakyReluGrad"), ACT_GRAD("EluGrad"), ACT_GRAD("SeluGrad"), ACT_GRAD("CeluGrad"),
    ACT_GRAD("HardSigmoidGrad"), ACT_GRAD("HardSwishGrad"), ACT_GRAD("ThresholdedReluGrad"), ACT_GRAD("MishGrad"),
    ACT_GRAD("ShrinkGrad"), ACT_GRAD("ClipGrad"),
    {0},
};
