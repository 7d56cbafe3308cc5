/* emit_reduce.c - emitters of the reduce family on kernels/reduce.c and kernels/softmax.c: Reduce*
 * (opset 18 form: axes as a constant input, keepdims, noop_with_empty_axes), ArgMax/ArgMin, and
 * Softmax/LogSoftmax/Hardmax (opset 13: one axis; older forms were rewritten by pass_canon).
 * float32 kernels; other float types run in float32 copies (EM_F32); integer inputs are refused.
 *
 * Backward, below the forward emitters: emitters of the reduce family's backward ops (onnxtune domain):
 * SoftmaxGrad and LogSoftmaxGrad on softmax_backward/logsoftmax_backward, float32. The Reduce* gradients
 * are standard ops (Reshape, Expand, Mul, Equal, ...) with their own emitters. */
#include "emit.h"

#include <string.h>

static const struct {
    const char *op, *kind;
} reduce_kinds[] = {
    {"ReduceSum", "REDUCE_SUM"}, {"ReduceMean", "REDUCE_MEAN"}, {"ReduceMax", "REDUCE_MAX"},
    {"ReduceMin", "REDUCE_MIN"}, {"ReduceProd", "REDUCE_PROD"}, {"ReduceL1", "REDUCE_L1"},
    {"ReduceL2", "REDUCE_L2"}, {"ReduceLogSum", "REDUCE_LOG_SUM"}, {"ReduceLogSumExp", "REDUCE_LOG_SUM_EXP"},
    {"ReduceSumSquare", "REDUCE_SUM_SQUARE"},
};

static Status emit_reduce(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    const char *kind = NULL;
    for (size_t i = 0; i < sizeof reduce_kinds / sizeof reduce_kinds[0]; i++)
        if (strcmp(reduce_kinds[i].op, n->op_type) == 0)
            kind = reduce_kinds[i].kind;
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    int rank = x->shape.rank;
    int64_t axes[IR_MAX_RANK * 2];
    size_t naxes;
    if (!cg_const_ints(n, 1, "axes", axes, sizeof axes / sizeof axes[0], &naxes))
        return cg_unsupported(cg, "axes that are not constant");
    uint32_t mask = 0;
    if (naxes == 0 && node_attr_int(n, "noop_with_empty_axes", 0)) {
        cg_line(cg, "memcpy(%s, %s, %zu); /* no axes: the identity */", cg_ptr(cg, y), cg_ptr(cg, x),
                cg_numel(x) * sizeof(float));
        return ST_OK;
    }
    if (naxes == 0)
        mask = rank >= 32 ? 0xffffffffu : (1u << rank) - 1;
    for (size_t i = 0; i < naxes; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank)
            return cg_unsupported(cg, "axis %lld of a rank %d input", (long long)axes[i], rank);
        mask |= 1u << a;
    }
    size_t dims[IR_MAX_RANK];
    cg_dims(&x->shape, dims);
    cg_line(cg, "reduce_forward(%s, %s, %s, %d, %s, 0x%xu);", cg_ptr(cg, y), cg_ptr(cg, x), kind, rank,
            rank ? cg_sizes(cg, dims, (size_t)rank) : "NULL", mask);
    return ST_OK;
}

/* [outer, axis, inner] around `axis` of x */
static bool split_axis(const Value *x, int64_t axis, size_t *outer, size_t *len, size_t *inner)
{
    int rank = x->shape.rank;
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis >= rank)
        return false;
    *outer = *inner = 1;
    for (int i = 0; i < rank; i++) {
        if (i < axis)
            *outer *= (size_t)x->shape.dim[i];
        else if (i > axis)
            *inner *= (size_t)x->shape.dim[i];
    }
    *len = (size_t)x->shape.dim[axis];
    return true;
}

static Status emit_arg(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t outer, len, inner;
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (!split_axis(x, node_attr_int(n, "axis", 0), &outer, &len, &inner))
        return cg_unsupported(cg, "axis %lld", (long long)node_attr_int(n, "axis", 0));
    cg_line(cg, "%s(%s, %s, %zu, %zu, %zu, %s);", strcmp(n->op_type, "ArgMax") == 0 ? "argmax_forward" : "argmin_forward",
            cg_ptr(cg, y), cg_ptr(cg, x), outer, len, inner,
            node_attr_int(n, "select_last_index", 0) ? "true" : "false");
    return ST_OK;
}

static Status emit_softmax(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t outer, len, inner;
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (x->shape.rank == 0 || !split_axis(x, node_attr_int(n, "axis", -1), &outer, &len, &inner))
        return cg_unsupported(cg, "axis %lld of a rank %d input", (long long)node_attr_int(n, "axis", -1),
                              x->shape.rank);
    const char *fn = strcmp(n->op_type, "Softmax") == 0      ? "softmax_forward"
                     : strcmp(n->op_type, "LogSoftmax") == 0 ? "logsoftmax_forward"
                                                              : "hardmax_forward";
    cg_line(cg, "%s(%s, %s, %zu, %zu, %zu);", fn, cg_ptr(cg, y), cg_ptr(cg, x), outer, len, inner);
    return ST_OK;
}

#define REDUCE(name) EMIT(name, emit_reduce, NULL, EM_F32)

const Emitter reduce_emitters[] = {
    REDUCE("ReduceSum"), REDUCE("ReduceMean"), REDUCE("ReduceMax"), REDUCE("ReduceMin"), REDUCE("ReduceProd"),
    REDUCE("ReduceL1"), REDUCE("ReduceL2"), REDUCE("ReduceLogSum"), REDUCE("ReduceLogSumExp"),
    REDUCE("ReduceSumSquare"),
    EMIT("ArgMax", emit_arg, NULL, EM_F32),
    EMIT("ArgMin", emit_arg, NULL, EM_F32),
    EMIT("Softmax", emit_softmax, NULL, EM_F32),
    EMIT("LogSoftmax", emit_softmax, NULL, EM_F32),
    EMIT("Hardmax", emit_softmax, NULL, EM_F32),
    {0},
};

/* ======================================================================== backward */

static Status emit_softmax_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *y = n->inputs[1], *dx = n->outputs[0];
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)) || (st = cg_require_dtype(cg, y, DT_FLOAT)))
        return st;
    int r = y->shape.rank;
    int64_t axis = node_attr_int(n, "axis", -1);
    if (axis < 0)
        axis += r;
    if (axis < 0 || axis >= r)
        return cg_unsupported(cg, "axis %lld of a rank %d tensor", (long long)node_attr_int(n, "axis", -1), r);
    size_t outer = 1, inner = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis)
            outer *= (size_t)y->shape.dim[i];
        else if (i > axis)
            inner *= (size_t)y->shape.dim[i];
    }
    cg_line(cg, "%s(%s, %s, %s, %zu, %zu, %zu);",
            strcmp(n->op_type, "SoftmaxGrad") == 0 ? "softmax_backward" : "logsoftmax_backward", cg_ptr(cg, dx),
            cg_ptr(cg, dy), cg_ptr(cg, y), outer, (size_t)y->shape.dim[axis], inner);
    return ST_OK;
}

const Emitter reduce_grad_emitters[] = {
    EMIT_ONNXTUNE("SoftmaxGrad", emit_softmax_grad, NULL, EM_INPLACE0),
    EMIT_ONNXTUNE("LogSoftmaxGrad", emit_softmax_grad, NULL, EM_INPLACE0),
    {0},
};
