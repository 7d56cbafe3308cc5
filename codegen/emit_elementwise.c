/* emit_elementwise.c - emitters of the elementwise family: unary and activation ops, broadcasting
 * binary ops (arithmetic, comparisons, logic, bit ops) and their variadic forms, Where, Cast, Clip,
 * IsNaN/IsInf. Broadcast strides are computed here, at generation time; kernels/elementwise.c loops.
 * float16/bfloat16 run in float32 copies (EM_HALF). Expand lives with the shape ops.
 *
 * Backward, below the forward emitters: emitters of the elementwise family's backward ops (onnxtune
 * domain): onnxtune.<Act>Grad(dY, T) on unary_backward and onnxtune.ClipGrad on clip_backward. float32
 * only (training runs in float32); the other elementwise gradients are standard ops with their own
 * emitters. */
#include "emit.h"

#include <string.h>

/* ---- unary (ir/unary.def) ---- */

static Status emit_unary(Cg *cg, const Node *n)
{
    const UnaryDef *u = unary_def(n->op_type);
    const Value *x = n->inputs[0], *y = n->outputs[0];
    DType dt = cg_dtype(cg, x);
    float p[2];
    if (!unary_supports((UnaryOp)u->kernel, (RtDType)dt))
        return cg_unsupported(cg, "%s is not implemented for %s", n->op_type, dtype_name(x->dtype));
    if (unary_params(n, u, p, cg->d))
        return cg->d->status;
    cg_line(cg, "unary_forward(%s, %s, %s, %s, %zu, %s, %s);", u->kernel_name, cg_rtdtype(dt), cg_ptr(cg, y),
            cg_ptr(cg, x), cg_numel(x), cg_float(cg, p[0]), cg_float(cg, p[1]));
    return ST_OK;
}

/* ---- binary ---- */

typedef struct BinaryRow {
    const char *op;
    BinaryOp kind;
    const char *kname;
} BinaryRow;

static const BinaryRow binary_rows[] = {
    {"Add", BINARY_ADD, "BINARY_ADD"},
    {"Sub", BINARY_SUB, "BINARY_SUB"},
    {"Mul", BINARY_MUL, "BINARY_MUL"},
    {"Div", BINARY_DIV, "BINARY_DIV"},
    {"Pow", BINARY_POW, "BINARY_POW"},
    {"Mod", BINARY_MOD, "BINARY_MOD"},
    {"PRelu", BINARY_PRELU, "BINARY_PRELU"},
    {"Equal", BINARY_EQUAL, "BINARY_EQUAL"},
    {"Less", BINARY_LESS, "BINARY_LESS"},
    {"LessOrEqual", BINARY_LESS_EQUAL, "BINARY_LESS_EQUAL"},
    {"Greater", BINARY_GREATER, "BINARY_GREATER"},
    {"GreaterOrEqual", BINARY_GREATER_EQUAL, "BINARY_GREATER_EQUAL"},
    {"And", BINARY_AND, "BINARY_AND"},
    {"Or", BINARY_OR, "BINARY_OR"},
    {"Xor", BINARY_XOR, "BINARY_XOR"},
    {"BitShift", BINARY_SHIFT_LEFT, "BINARY_SHIFT_LEFT"},
    {"BitwiseAnd", BINARY_BITWISE_AND, "BINARY_BITWISE_AND"},
    {"BitwiseOr", BINARY_BITWISE_OR, "BINARY_BITWISE_OR"},
    {"BitwiseXor", BINARY_BITWISE_XOR, "BINARY_BITWISE_XOR"},
    /* variadic: a chain of binary steps */
    {"Sum", BINARY_ADD, "BINARY_ADD"},
    {"Mean", BINARY_ADD, "BINARY_ADD"},
    {"Max", BINARY_MAX, "BINARY_MAX"},
    {"Min", BINARY_MIN, "BINARY_MIN"},
};

static const BinaryRow *binary_row(const Node *n)
{
    static const BinaryRow fmod = {"Mod", BINARY_FMOD, "BINARY_FMOD"};
    static const BinaryRow right = {"BitShift", BINARY_SHIFT_RIGHT, "BINARY_SHIFT_RIGHT"};
    if (strcmp(n->op_type, "Mod") == 0 && node_attr_int(n, "fmod", 0))
        return &fmod;
    if (strcmp(n->op_type, "BitShift") == 0 && strcmp(node_attr_string(n, "direction", ""), "RIGHT") == 0)
        return &right;
    for (size_t i = 0; i < sizeof binary_rows / sizeof binary_rows[0]; i++)
        if (strcmp(binary_rows[i].op, n->op_type) == 0)
            return &binary_rows[i];
    return NULL;
}

/* Strides (in elements) of x read as y's shape, printed as a literal. */
static const char *bcast_strides(Cg *cg, const Value *x, const Value *y)
{
    size_t yd[IR_MAX_RANK], xd[IR_MAX_RANK], st[IR_MAX_RANK];
    cg_dims(&y->shape, yd);
    cg_dims(&x->shape, xd);
    rt_broadcast_strides(y->shape.rank, yd, x->shape.rank, xd, st);
    return cg_sizes(cg, st, (size_t)y->shape.rank);
}

static const char *dense_strides(Cg *cg, const Value *y)
{
    return bcast_strides(cg, y, y);
}

/* Scratch of Pow for the exponent cast to the base's dtype (8 bytes per element covers any). */
static size_t scratch_binary(const Node *n)
{
    if (strcmp(n->op_type, "Pow") == 0 && n->ninputs == 2 && n->inputs[0] && n->inputs[1] &&
        n->inputs[0]->dtype != n->inputs[1]->dtype)
        return cg_numel(n->inputs[1]) * 8;
    return 0;
}

static Status emit_binary(Cg *cg, const Node *n)
{
    const BinaryRow *r = binary_row(n);
    const Value *a = n->inputs[0], *b = n->ninputs > 1 ? n->inputs[1] : NULL, *y = n->outputs[0];
    DType dt = cg_dtype(cg, a);
    if (!binary_supports(r->kind, (RtDType)dt))
        return cg_unsupported(cg, "%s is not implemented for %s", n->op_type, dtype_name(a->dtype));
    const char *yd;
    size_t dims[IR_MAX_RANK];
    cg_dims(&y->shape, dims);
    yd = cg_sizes(cg, dims, (size_t)y->shape.rank);
    const char *bptr = cg_ptr(cg, b);
    if (cg_dtype(cg, b) != dt) {
        /* Pow with an exponent of another type: cast it to the base's first */
        if (r->kind != BINARY_POW || !cast_supports((RtDType)dt, (RtDType)cg_dtype(cg, b)))
            return cg_unsupported(cg, "inputs of %s and %s", dtype_name(a->dtype), dtype_name(b->dtype));
        cg_line(cg, "cast_forward(%s, %s, %s, %s, %zu); /* the exponent as the base's type */", cg_rtdtype(dt),
                cg_scratch(cg), cg_rtdtype(cg_dtype(cg, b)), bptr, cg_numel(b));
        bptr = cg_scratch(cg);
    }
    cg_line(cg, "binary_forward(%s, %s, %s, %s, %s, %d, %s, %s, %s);", r->kname, cg_rtdtype(dt), cg_ptr(cg, y),
            cg_ptr(cg, a), bptr, y->shape.rank, yd, bcast_strides(cg, a, y), bcast_strides(cg, b, y));
    return ST_OK;
}

/* Sum, Mean, Max, Min: y = x0 op x1 (both broadcast to y), then y = y op xk. */
static Status emit_variadic(Cg *cg, const Node *n)
{
    const BinaryRow *r = binary_row(n);
    const Value *y = n->outputs[0], *x0 = n->inputs[0];
    DType dt = cg_dtype(cg, y);
    size_t dims[IR_MAX_RANK];
    cg_dims(&y->shape, dims);
    const char *yd = cg_sizes(cg, dims, (size_t)y->shape.rank);
    for (int k = 0; k < n->ninputs; k++)
        if (!n->inputs[k] || cg_dtype(cg, n->inputs[k]) != dt)
            return cg_unsupported(cg, "input %d is missing or of another type", k);
    if (!binary_supports(r->kind, (RtDType)dt))
        return cg_unsupported(cg, "%s is not implemented for %s", n->op_type, dtype_name(y->dtype));
    if (n->ninputs == 1) {
        cg_line(cg, "expand_forward(%zu, %s, %s, %d, %s, %s);", dtype_size(dt), cg_ptr(cg, y), cg_ptr(cg, x0),
                y->shape.rank, yd, bcast_strides(cg, x0, y));
    } else {
        cg_line(cg, "binary_forward(%s, %s, %s, %s, %s, %d, %s, %s, %s);", r->kname, cg_rtdtype(dt),
                cg_ptr(cg, y), cg_ptr(cg, x0), cg_ptr(cg, n->inputs[1]), y->shape.rank, yd,
                bcast_strides(cg, x0, y), bcast_strides(cg, n->inputs[1], y));
    }
    for (int k = 2; k < n->ninputs; k++)
        cg_line(cg, "binary_forward(%s, %s, %s, %s, %s, %d, %s, %s, %s);", r->kname, cg_rtdtype(dt),
                cg_ptr(cg, y), cg_ptr(cg, y), cg_ptr(cg, n->inputs[k]), y->shape.rank, yd, dense_strides(cg, y),
                bcast_strides(cg, n->inputs[k], y));
    if (strcmp(n->op_type, "Mean") == 0 && n->ninputs > 1) {
        if (dt != DT_FLOAT && dt != DT_DOUBLE)
            return cg_unsupported(cg, "Mean of %s", dtype_name(y->dtype));
        size_t zeros[IR_MAX_RANK] = {0};
        cg_line(cg, "static const %s scale = %s;", cg_ctype(dt),
                dt == DT_FLOAT ? cg_float(cg, 1.0 / n->ninputs) : cg_fmt(cg, "1.0 / %d", n->ninputs));
        cg_line(cg, "binary_forward(BINARY_MUL, %s, %s, %s, &scale, %d, %s, %s, %s);", cg_rtdtype(dt),
                cg_ptr(cg, y), cg_ptr(cg, y), y->shape.rank, yd, dense_strides(cg, y),
                cg_sizes(cg, zeros, (size_t)y->shape.rank));
    }
    return ST_OK;
}

/* ---- Where, Cast, Clip, IsNaN, IsInf ---- */

static Status emit_where(Cg *cg, const Node *n)
{
    const Value *c = n->inputs[0], *a = n->inputs[1], *b = n->inputs[2], *y = n->outputs[0];
    size_t dims[IR_MAX_RANK];
    cg_dims(&y->shape, dims);
    cg_line(cg, "where_forward(%zu, %s, %s, %s, %s, %d, %s, %s, %s, %s);", dtype_size(y->dtype), cg_ptr(cg, y),
            cg_ptr(cg, c), cg_ptr(cg, a), cg_ptr(cg, b), y->shape.rank, cg_sizes(cg, dims, (size_t)y->shape.rank),
            bcast_strides(cg, c, y), bcast_strides(cg, a, y), bcast_strides(cg, b, y));
    return ST_OK;
}

static Status emit_cast(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    if (!cast_supports((RtDType)y->dtype, (RtDType)x->dtype))
        return cg_unsupported(cg, "Cast from %s to %s", dtype_name(x->dtype), dtype_name(y->dtype));
    if (x->dtype == y->dtype) {
        cg_line(cg, "memcpy(%s, %s, %zu);", cg_ptr(cg, y), cg_ptr(cg, x), cg_numel(x) * dtype_size(x->dtype));
        return ST_OK;
    }
    cg_line(cg, "cast_forward(%s, %s, %s, %s, %zu);", cg_rtdtype(y->dtype), cg_ptr(cg, y), cg_rtdtype(x->dtype),
            cg_ptr(cg, x), cg_numel(x));
    return ST_OK;
}

static Status emit_clip(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    const Value *lo = node_input(n, 1), *hi = node_input(n, 2);
    DType dt = cg_dtype(cg, x);
    const char *lop = "NULL", *hip = "NULL";
    if (lo && cg_numel(lo) == 1)
        lop = cg_ptr(cg, lo);
    if (hi && cg_numel(hi) == 1)
        hip = cg_ptr(cg, hi);
    if ((lo && cg_numel(lo) != 1) || (hi && cg_numel(hi) != 1))
        return cg_unsupported(cg, "min and max must be scalars");
    if ((lo && cg_dtype(cg, lo) != dt) || (hi && cg_dtype(cg, hi) != dt))
        return cg_unsupported(cg, "min/max of another type than the input");
    if (dt == DT_FLOAT16 || dt == DT_BFLOAT16)
        return cg_unsupported(cg, "Clip of %s", dtype_name(dt));
    cg_line(cg, "clip_forward(%s, %s, %s, %zu, %s, %s);", cg_rtdtype(dt), cg_ptr(cg, y), cg_ptr(cg, x), cg_numel(x),
            lop, hip);
    return ST_OK;
}

static Status emit_isnan(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    float p[2];
    if (unary_params(n, unary_def(n->op_type), p, cg->d))
        return cg->d->status;
    if (!dtype_is_float(x->dtype))
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (strcmp(n->op_type, "IsNaN") == 0)
        cg_line(cg, "isnan_forward(%s, %s, %s, %zu);", cg_rtdtype(x->dtype), cg_ptr(cg, y), cg_ptr(cg, x),
                cg_numel(x));
    else
        cg_line(cg, "isinf_forward(%s, %s, %s, %zu, %s, %s);", cg_rtdtype(x->dtype), cg_ptr(cg, y), cg_ptr(cg, x),
                cg_numel(x), p[0] != 0 ? "true" : "false", p[1] != 0 ? "true" : "false");
    return ST_OK;
}

#define BINARY(name) EMIT(name, emit_binary, scratch_binary, EM_INPLACE | EM_HALF)

const Emitter elementwise_emitters[] = {
#define UNARY(op, kernel, types, since, grad, alpha, beta) EMIT(#op, emit_unary, NULL, EM_INPLACE0 | EM_HALF),
#define UNARY_TO_BOOL(op, types, since, alpha, beta) EMIT(#op, emit_isnan, NULL, 0),
#include "unary.def"
    BINARY("Add"), BINARY("Sub"), BINARY("Mul"), BINARY("Div"), BINARY("Pow"), BINARY("Mod"), BINARY("PRelu"),
    BINARY("Equal"), BINARY("Less"), BINARY("LessOrEqual"), BINARY("Greater"), BINARY("GreaterOrEqual"),
    BINARY("And"), BINARY("Or"), BINARY("Xor"), BINARY("BitShift"), BINARY("BitwiseAnd"), BINARY("BitwiseOr"),
    BINARY("BitwiseXor"),
    EMIT("Sum", emit_variadic, NULL, EM_HALF),
    EMIT("Mean", emit_variadic, NULL, EM_HALF),
    EMIT("Max", emit_variadic, NULL, EM_HALF),
    EMIT("Min", emit_variadic, NULL, EM_HALF),
    EMIT("Where", emit_where, NULL, 0),
    EMIT("Cast", emit_cast, NULL, 0),
    EMIT("CastLike", emit_cast, NULL, 0),
    EMIT("Clip", emit_clip, NULL, EM_INPLACE0 | EM_HALF),
    {0},
};

/* ======================================================================== backward */

/* dX = unary_backward(dY, T) with the node's alpha/beta (already the kernel's, see ops_elementwise.c). */
static Status emit_act_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *t = n->inputs[1], *dx = n->outputs[0];
    const UnaryDef *u = unary_def_of_grad(n->op_type);
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)) || (st = cg_require_dtype(cg, t, DT_FLOAT)))
        return st;
    if (!u)
        return cg_unsupported(cg, "no backward kernel for %s", n->op_type);
    cg_line(cg, "unary_backward(%s, %s, %s, %s, %zu, %s, %s);", u->kernel_name, cg_ptr(cg, dx), cg_ptr(cg, dy),
            cg_ptr(cg, t), cg_numel(dx), cg_float(cg, node_attr_float(n, "alpha", 0)),
            cg_float(cg, node_attr_float(n, "beta", 0)));
    return ST_OK;
}

static Status emit_clip_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1], *dx = n->outputs[0];
    const Value *lo = node_input(n, 2), *hi = node_input(n, 3);
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)) || (st = cg_require_dtype(cg, x, DT_FLOAT)))
        return st;
    if ((lo && cg_numel(lo) != 1) || (hi && cg_numel(hi) != 1))
        return cg_unsupported(cg, "min and max must be scalars");
    cg_line(cg, "clip_backward(%s, %s, %s, %zu, %s, %s);", cg_ptr(cg, dx), cg_ptr(cg, dy), cg_ptr(cg, x),
            cg_numel(dx), cg_ptr_or_null(cg, lo), cg_ptr_or_null(cg, hi));
    return ST_OK;
}

/* one emitter per unary.def row with a fused gradient (FUSED_X, FUSED_Y) */
#define ACT_NONE(op)
#define ACT_ZERO(op)
#define ACT_FUSED_X(op) EMIT_ONNXTUNE(#op "Grad", emit_act_grad, NULL, EM_INPLACE0),
#define ACT_FUSED_Y(op) ACT_FUSED_X(op)
#define ACT_ONNX_X(std) ACT_NONE
#define ACT_ONNX_Y(std) ACT_NONE
#define ACT_ONNX_DY(std) ACT_NONE

const Emitter elementwise_grad_emitters[] = {
#define UNARY(op, kernel, types, since, grad, alpha, beta) ACT_##grad(op)
#include "unary.def"
    EMIT_ONNXTUNE("ClipGrad", emit_clip_grad, NULL, EM_INPLACE0),
    {0},
};
