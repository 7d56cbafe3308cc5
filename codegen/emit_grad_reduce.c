/* emit_grad_reduce.c - emitters of the reduce family's backward ops (onnxtune domain): SoftmaxGrad and
 * LogSoftmaxGrad on softmax_backward/logsoftmax_backward, float32. The Reduce* gradients are standard
 * ops (Reshape, Expand, Mul, Equal, ...) with their own emitters. */
#include "emit.h"

#include <string.h>

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
