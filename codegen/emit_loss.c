/* emit_loss.c - emitters of ONNX's loss ops (ir/ops_loss.c: NegativeLogLikelihoodLoss,
 * SoftmaxCrossEntropyLoss) and their backward ops, on kernels/loss.c. The kernels are float32: float64
 * inputs run through float32 copies (EM_F32). Like the training losses (emit_train.c), they read the
 * valid rows of a padded short batch (rt_batch_rows) and the backward ops zero the padding's rows. */
#include "emit.h"

#include <string.h>

/* Print "NllParams p = {...};" for input x [N, C, d...] and target t; x_at: the input's index. */
static Status emit_params(Cg *cg, const Node *n, int x_at)
{
    const Value *x = n->inputs[x_at], *t = n->inputs[x_at + 1];
    DType tt = cg_dtype(cg, t);
    if (tt != DT_INT64 && tt != DT_INT32)
        return cg_unsupported(cg, "target of type %s", dtype_name(t->dtype));
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "input of type %s", dtype_name(x->dtype));
    if (x->shape.rank < 2)
        return cg_unsupported(cg, "input of rank %d", x->shape.rank);
    size_t inner = 1;
    for (int i = 2; i < x->shape.rank; i++)
        inner *= (size_t)x->shape.dim[i];
    const char *red = node_attr_string(n, "reduction", "mean");
    const Attr *ii = node_attr(n, "ignore_index");
    cg_line(cg, "NllParams p = {rt_batch_rows(%zu), %zu, %zu, %s, %s, %lldLL, %s};", (size_t)x->shape.dim[0],
            (size_t)x->shape.dim[1], inner, strcmp(red, "none") == 0 ? "NLL_NONE" : strcmp(red, "sum") == 0 ? "NLL_SUM"
            : "NLL_MEAN", ii ? "true" : "false", ii ? (long long)ii->i : 0LL, tt == DT_INT32 ? "true" : "false");
    return ST_OK;
}

static Status emit_nll(Cg *cg, const Node *n)
{
    Status st = emit_params(cg, n, 0);
    if (st)
        return st;
    const Value *lp = n->noutputs > 1 ? n->outputs[1] : NULL;
    const char *common = cg_fmt(cg, "%s, %s, %s", cg_ptr(cg, n->inputs[0]), cg_ptr(cg, n->inputs[1]),
                                cg_ptr_or_null(cg, node_input(n, 2)));
    if (strcmp(n->op_type, "NegativeLogLikelihoodLoss") == 0)
        cg_line(cg, "nll_loss_forward(%s, %s, &p);", cg_ptr(cg, n->outputs[0]), common);
    else
        cg_line(cg, "softmax_cross_entropy_forward(%s, %s, %s, &p);", cg_ptr(cg, n->outputs[0]),
                lp && !cg_unused(cg, lp) ? cg_ptr(cg, lp) : "NULL", common);
    return ST_OK;
}

/* ======================================================================== backward */

static Status emit_nll_grad(Cg *cg, const Node *n)
{
    Status st = emit_params(cg, n, 1);
    if (st)
        return st;
    if ((st = cg_require_dtype(cg, n->inputs[0], DT_FLOAT)))
        return st;
    const Value *x = n->inputs[1], *dx = n->outputs[0];
    const char *w = cg_ptr_or_null(cg, node_input(n, 3));
    if (strcmp(n->op_type, "NegativeLogLikelihoodLossGrad") == 0)
        cg_line(cg, "nll_loss_backward(%s, %s, %s, %s, &p);", cg_ptr(cg, dx), cg_ptr(cg, n->inputs[0]),
                cg_ptr(cg, n->inputs[2]), w);
    else
        cg_line(cg, "softmax_cross_entropy_backward(%s, %s, %s, %s, %s, &p);", cg_ptr(cg, dx),
                cg_ptr(cg, n->inputs[0]), cg_ptr(cg, x), cg_ptr(cg, n->inputs[2]), w);
    size_t row = cg_numel(x) / (size_t)x->shape.dim[0];
    cg_line(cg, "memset(%s + p.n * %zu, 0, (%zu - p.n) * %zu * sizeof(float));", cg_ptr(cg, dx), row,
            (size_t)x->shape.dim[0], row);
    return ST_OK;
}

const Emitter loss_emitters[] = {
    EMIT("NegativeLogLikelihoodLoss", emit_nll, NULL, EM_F32),
    EMIT("SoftmaxCrossEntropyLoss", emit_nll, NULL, EM_F32),
    {0},
};

const Emitter loss_grad_emitters[] = {
    EMIT_ONNXTUNE("NegativeLogLikelihoodLossGrad", emit_nll_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("SoftmaxCrossEntropyLossGrad", emit_nll_grad, NULL, EM_F32),
    {0},
};
