/* emit_grad_norm.c - emitters of the norm family's training ops on kernels/norm.c: the backward ops
 * onnxtune.BatchNormalizationGrad, InstanceNormalizationGrad, LayerNormalizationGrad, DropoutGrad, and
 * the training forward onnxtune.Dropout. Outputs nobody reads are passed as NULL (not computed).
 * float32 kernels (other float types through EM_F32 copies). The training-mode BatchNormalization
 * forward is an ONNX op: emit_norm.c emits it. */
#include "emit.h"

#include <string.h>

/* [N, C, spatial...] -> n, c, prod(spatial) */
static bool split_ncs(const Value *x, size_t *n, size_t *c, size_t *spatial)
{
    if (x->shape.rank < 2)
        return false;
    *n = (size_t)x->shape.dim[0];
    *c = (size_t)x->shape.dim[1];
    *spatial = 1;
    for (int i = 2; i < x->shape.rank; i++)
        *spatial *= (size_t)x->shape.dim[i];
    return true;
}

/* Output k's pointer, or NULL when nobody reads it. */
static const char *out_or_null(Cg *cg, const Node *n, int k)
{
    const Value *v = k < n->noutputs ? n->outputs[k] : NULL;
    return v && !cg_unused(cg, v) ? cg_ptr(cg, v) : "NULL";
}

static Status require_float_inputs(Cg *cg, const Node *n)
{
    for (int k = 0; k < n->ninputs; k++)
        if (n->inputs[k] && cg_dtype(cg, n->inputs[k]) != DT_FLOAT)
            return cg_unsupported(cg, "%s with input %d of %s", n->op_type, k, dtype_name(n->inputs[k]->dtype));
    return ST_OK;
}

/* BatchNormalizationGrad(dY, X, scale[, input_mean, input_var]) -> dX, dscale, dB (inference with dX
 * alone: X omitted) */
static Status emit_batchnorm_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1];
    bool training = node_attr_int(n, "training_mode", 0) != 0;
    size_t bn, c, sp;
    Status st = require_float_inputs(cg, n);
    if (st)
        return st;
    if (!split_ncs(dy, &bn, &c, &sp))
        return cg_unsupported(cg, "an input of rank %d", dy->shape.rank);
    if (training) {
        /* batch statistics of the valid rows of a padded short batch (rt_batch_rows, kernels.h); the
         * padding's dX rows are zero */
        const char *dx = out_or_null(cg, n, 0);
        cg_line(cg, "size_t rows = rt_batch_rows(%zu);", bn);
        cg_line(cg, "batchnorm_backward(%s, %s, %s, %s, %s, %s, NULL, NULL, rows, %zu, %zu, %s, true);", dx,
                out_or_null(cg, n, 1), out_or_null(cg, n, 2), cg_ptr(cg, dy), cg_ptr_or_null(cg, x),
                cg_ptr(cg, n->inputs[2]), c, sp, cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
        if (strcmp(dx, "NULL") != 0)
            cg_line(cg, "memset(%s + rows * %zu, 0, (%zu - rows) * %zu * sizeof(float));", dx, c * sp, bn, c * sp);
        return ST_OK;
    }
    cg_line(cg, "batchnorm_backward(%s, %s, %s, %s, %s, %s, %s, %s, %zu, %zu, %zu, %s, %s);", out_or_null(cg, n, 0),
            out_or_null(cg, n, 1), out_or_null(cg, n, 2), cg_ptr(cg, dy), cg_ptr_or_null(cg, x),
            cg_ptr(cg, n->inputs[2]),
            training ? "NULL" : cg_ptr(cg, n->inputs[3]), training ? "NULL" : cg_ptr(cg, n->inputs[4]), bn, c, sp,
            cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)), training ? "true" : "false");
    return ST_OK;
}

/* InstanceNormalizationGrad(dY, X, scale) -> dX, dscale, dB */
static Status emit_instancenorm_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1];
    size_t bn, c, sp;
    Status st = require_float_inputs(cg, n);
    if (st)
        return st;
    if (!split_ncs(x, &bn, &c, &sp))
        return cg_unsupported(cg, "an input of rank %d", x->shape.rank);
    cg_line(cg, "instancenorm_backward(%s, %s, %s, %s, %s, %s, %zu, %zu, %zu, %s);", out_or_null(cg, n, 0),
            out_or_null(cg, n, 1), out_or_null(cg, n, 2), cg_ptr(cg, dy), cg_ptr(cg, x), cg_ptr(cg, n->inputs[2]),
            bn, c, sp, cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
    return ST_OK;
}

/* LayerNormalizationGrad(dY, X, Scale, Mean, InvStdDev) -> dX, dScale, dB over [rows, cols] */
static Status emit_layernorm_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1], *scale = n->inputs[2];
    int rank = x->shape.rank;
    int64_t axis = node_attr_int(n, "axis", -1);
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis >= rank)
        return cg_unsupported(cg, "axis %lld of a rank %d input", (long long)node_attr_int(n, "axis", -1), rank);
    Status st = require_float_inputs(cg, n);
    if (st)
        return st;
    size_t rows = 1, cols = 1;
    for (int i = 0; i < rank; i++)
        *(i < axis ? &rows : &cols) *= (size_t)x->shape.dim[i];
    if (cg_numel(scale) != cols)
        return cg_unsupported(cg, "a Scale that broadcasts (only the normalized shape itself)");
    cg_line(cg, "layernorm_backward(%s, %s, %s, %s, %s, %s, %s, %s, %zu, %zu);", out_or_null(cg, n, 0),
            out_or_null(cg, n, 1), out_or_null(cg, n, 2), cg_ptr(cg, dy), cg_ptr(cg, x), cg_ptr(cg, scale),
            cg_ptr(cg, n->inputs[3]), cg_ptr(cg, n->inputs[4]), rows, cols);
    return ST_OK;
}

/* onnxtune.Dropout(X, ratio, seed) -> Y, Mask and DropoutGrad(dY, ratio, seed) -> dX; ratio must be a
 * constant (absent: 0.5), seed an int64 [2] {seed, step}. */
static Status check_dropout_train(Cg *cg, const Node *n)
{
    double ratio;
    if (node_input(n, 1) && !cg_const_scalar(n, 1, &ratio))
        return cg_unsupported(cg, "a ratio that is not a constant");
    return ST_OK;
}

static Status emit_dropout_train(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *seed = n->inputs[2];
    double ratio = 0.5;
    if (node_input(n, 1) && !cg_const_scalar(n, 1, &ratio))
        return cg_unsupported(cg, "a ratio that is not a constant");
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    unsigned long long stream = (unsigned long long)node_attr_int(n, "stream", 0);
    if (strcmp(n->op_type, "DropoutGrad") == 0)
        cg_line(cg, "dropout_backward(%s, %s, %zu, %s, %s, %lluu);", cg_ptr(cg, n->outputs[0]), cg_ptr(cg, x),
                cg_numel(x), cg_float(cg, ratio), cg_ptr(cg, seed), stream);
    else
        cg_line(cg, "dropout_forward(%s, %s, %s, %zu, %s, %s, %lluu);", cg_ptr(cg, n->outputs[0]),
                out_or_null(cg, n, 1), cg_ptr(cg, x), cg_numel(x), cg_float(cg, ratio), cg_ptr(cg, seed), stream);
    return ST_OK;
}

const Emitter norm_grad_emitters[] = {
    EMIT_ONNXTUNE("BatchNormalizationGrad", emit_batchnorm_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("InstanceNormalizationGrad", emit_instancenorm_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("LayerNormalizationGrad", emit_layernorm_grad, NULL, EM_F32),
    {.op = "Dropout", .emit = emit_dropout_train, .flags = EM_F32, .check = check_dropout_train,
     .domain = "onnxtune"},
    {.op = "DropoutGrad", .emit = emit_dropout_train, .flags = EM_F32, .check = check_dropout_train,
     .domain = "onnxtune"},
    {0},
};
