/* emit_norm.c - emitters of the normalisation family on kernels/norm.c: BatchNormalization
 * (and training_mode, as loops written here), InstanceNormalization, LayerNormalization (with its
 * optional Mean/InvStdDev), LRN, MeanVarianceNormalization (composed from reduce/binary kernels) and
 * Dropout (inference: a view of its input, plus an all-true mask when read; training is refused).
 *
 * Backward, below the forward emitters: emitters of the norm family's training ops on kernels/norm.c: the
 * backward ops onnxtune.BatchNormalizationGrad, InstanceNormalizationGrad, LayerNormalizationGrad,
 * DropoutGrad, and the training forward onnxtune.Dropout. Outputs nobody reads are passed as NULL (not
 * computed). float32 kernels (other float types through EM_F32 copies). The training-mode
 * BatchNormalization forward is an ONNX op: emit_norm.c emits it. */
#include "emit.h"

#include <string.h>

/* [N, C, spatial...] -> n, c, prod(spatial) */
static bool ncs(const Value *x, size_t *n, size_t *c, size_t *spatial)
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

static Status emit_batchnorm(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t bn, c, sp;
    if (n->ninputs < 5 || cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "BatchNormalization of %s", dtype_name(x->dtype));
    for (int k = 1; k < 5; k++)
        if (!n->inputs[k] || cg_dtype(cg, n->inputs[k]) != DT_FLOAT)
            return cg_unsupported(cg, "input %d of another type than float", k);
    if (!ncs(x, &bn, &c, &sp))
        return cg_unsupported(cg, "an input of rank %d", x->shape.rank);
    if (node_attr_int(n, "training_mode", 0) != 0 && n->inputs[3]->is_state && n->inputs[4]->is_state) {
        /* a training program's step (pass_freeze --bn-train): statistics of the valid rows of a padded batch,
         * running statistics updated in place with PyTorch's rule; padding rows copy row 0 (finite) */
        const char *rm = cg_ptr(cg, n->inputs[3]), *rv = cg_ptr(cg, n->inputs[4]), *yp = cg_ptr(cg, y);
        cg_line(cg, "size_t rows = rt_batch_rows(%zu);", bn);
        cg_line(cg, "batchnorm_train_forward(%s, (float *)%s, (float *)%s, %s, %s, %s, %s, %s, rows, %zu, %zu, %s, %s, true);",
                yp, rm, rv, cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), cg_ptr(cg, n->inputs[2]), rm, rv, c, sp,
                cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)), cg_float(cg, node_attr_float(n, "momentum", 0.9f)));
        cg_line(cg, "for (size_t r = rows; r < %zu; r++)", bn);
        cg_line(cg, "    memcpy(%s + r * %zu, %s, %zu * sizeof(float));", yp, c * sp, yp, c * sp);
        return ST_OK;
    }
    if (node_attr_int(n, "training_mode", 0) != 0) {
        /* batch statistics (biased variance); running stats = input * momentum + batch * (1 - momentum) */
        float momentum = node_attr_float(n, "momentum", 0.9f);
        const char *xp = cg_ptr(cg, x), *yp = cg_ptr(cg, y);
        const Value *rm = n->noutputs > 1 ? n->outputs[1] : NULL, *rv = n->noutputs > 2 ? n->outputs[2] : NULL;
        cg_line(cg, "for (size_t c = 0; c < %zu; c++) {", c);
        cg_line(cg, "    double sum = 0, sq = 0;");
        cg_line(cg, "    for (size_t n = 0; n < %zu; n++)", bn);
        cg_line(cg, "        for (size_t i = 0; i < %zu; i++)", sp);
        cg_line(cg, "            sum += %s[(n * %zu + c) * %zu + i];", xp, c, sp);
        cg_line(cg, "    double mean = sum / %zu.0;", bn * sp);
        cg_line(cg, "    for (size_t n = 0; n < %zu; n++)", bn);
        cg_line(cg, "        for (size_t i = 0; i < %zu; i++) {", sp);
        cg_line(cg, "            double d = %s[(n * %zu + c) * %zu + i] - mean;", xp, c, sp);
        cg_line(cg, "            sq += d * d;");
        cg_line(cg, "        }");
        cg_line(cg, "    double var = sq / %zu.0, mul = %s[c] / sqrt(var + %s);", bn * sp, cg_ptr(cg, n->inputs[1]),
                cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
        cg_line(cg, "    for (size_t n = 0; n < %zu; n++)", bn);
        cg_line(cg, "        for (size_t i = 0; i < %zu; i++) {", sp);
        cg_line(cg, "            size_t at = (n * %zu + c) * %zu + i;", c, sp);
        cg_line(cg, "            %s[at] = (float)((%s[at] - mean) * mul + %s[c]);", yp, xp, cg_ptr(cg, n->inputs[2]));
        cg_line(cg, "        }");
        if (rm && !cg_unused(cg, rm))
            cg_line(cg, "    %s[c] = (float)(%s[c] * %s + mean * (1.0 - %s));", cg_ptr(cg, rm), cg_ptr(cg, n->inputs[3]),
                    cg_float(cg, momentum), cg_float(cg, momentum));
        if (rv && !cg_unused(cg, rv))
            cg_line(cg, "    %s[c] = (float)(%s[c] * %s + var * (1.0 - %s));", cg_ptr(cg, rv), cg_ptr(cg, n->inputs[4]),
                    cg_float(cg, momentum), cg_float(cg, momentum));
        cg_line(cg, "}");
        return ST_OK;
    }
    for (int k = 1; k < n->noutputs; k++)
        if (!cg_unused(cg, n->outputs[k]))
            return cg_unsupported(cg, "the running statistics outputs outside training mode");
    int act = (int)node_attr_int(n, "onnxtune_act", 0); /* a Relu/Clip fused by ir/pass_fuse.c */
    const char *lo = cg_float(cg, node_attr_float(n, "onnxtune_act_lo", 0.0f)),
               *hi = cg_float(cg, node_attr_float(n, "onnxtune_act_hi", 0.0f));
    if (act && !cg_blocked(cg, x)) {
        cg_line(cg, "batchnorm_forward_act(%s, %s, %s, %s, %s, %s, %zu, %zu, %zu, %s, %d, %s, %s);", cg_ptr(cg, y),
                cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), cg_ptr(cg, n->inputs[2]), cg_ptr(cg, n->inputs[3]),
                cg_ptr(cg, n->inputs[4]), bn, c, sp, cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)), act, lo, hi);
        return ST_OK;
    }
    cg_line(cg, "%s(%s, %s, %s, %s, %s, %s, %zu, %zu, %zu, %s);",
            cg_blocked(cg, x) ? "batchnorm_forward_blocked" : "batchnorm_forward", cg_ptr(cg, y), cg_ptr(cg, x),
            cg_ptr(cg, n->inputs[1]), cg_ptr(cg, n->inputs[2]), cg_ptr(cg, n->inputs[3]), cg_ptr(cg, n->inputs[4]),
            bn, c, sp, cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
    /* blocked (nChw8c, no padding): the activation in place over the same bytes, elementwise */
    if (act == 1)
        cg_line(cg, "unary_forward(UNARY_RELU, RT_FLOAT, %s, %s, %zu, 0.0f, 0.0f);", cg_ptr(cg, y), cg_ptr(cg, y),
                cg_numel(y));
    else if (act == 2)
        cg_line(cg, "clip_forward(RT_FLOAT, %s, %s, %zu, &(float){%s}, &(float){%s});", cg_ptr(cg, y), cg_ptr(cg, y),
                cg_numel(y), lo, hi);
    return ST_OK;
}

static Status emit_instancenorm(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t bn, c, sp;
    if (cg_dtype(cg, x) != DT_FLOAT || !ncs(x, &bn, &c, &sp))
        return cg_unsupported(cg, "InstanceNormalization of %s rank %d", dtype_name(x->dtype), x->shape.rank);
    cg_line(cg, "instancenorm_forward(%s, %s, %s, %s, %zu, %zu, %zu, %s);", cg_ptr(cg, y), cg_ptr(cg, x),
            cg_ptr(cg, n->inputs[1]), cg_ptr(cg, n->inputs[2]), bn, c, sp,
            cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
    return ST_OK;
}

static Status emit_layernorm(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *scale = n->inputs[1], *bias = node_input(n, 2), *y = n->outputs[0];
    int rank = x->shape.rank;
    int64_t axis = node_attr_int(n, "axis", -1);
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis >= rank || rank < 1)
        return cg_unsupported(cg, "axis %lld of a rank %d input", (long long)node_attr_int(n, "axis", -1), rank);
    if (cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "LayerNormalization of %s", dtype_name(x->dtype));
    size_t rows = 1, cols = 1;
    for (int i = 0; i < rank; i++)
        *(i < axis ? &rows : &cols) *= (size_t)x->shape.dim[i];
    if (cg_numel(scale) != cols || (bias && cg_numel(bias) != cols))
        return cg_unsupported(cg, "Scale/B that broadcast (only the normalized shape itself)");
    const Value *mean = n->noutputs > 1 ? n->outputs[1] : NULL, *inv = n->noutputs > 2 ? n->outputs[2] : NULL;
    cg_line(cg, "layernorm_forward(%s, %s, %s, %s, %s, %s, %zu, %zu, %s);", cg_ptr(cg, y),
            mean && !cg_unused(cg, mean) ? cg_ptr(cg, mean) : "NULL", inv && !cg_unused(cg, inv) ? cg_ptr(cg, inv) : "NULL",
            cg_ptr(cg, x), cg_ptr(cg, scale), cg_ptr_or_null(cg, bias), rows, cols,
            cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
    return ST_OK;
}

static Status emit_lrn(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t bn, c, sp;
    if (cg_dtype(cg, x) != DT_FLOAT || !ncs(x, &bn, &c, &sp))
        return cg_unsupported(cg, "LRN of %s rank %d", dtype_name(x->dtype), x->shape.rank);
    int64_t size = node_attr_int(n, "size", 0);
    if (size < 1)
        return cg_unsupported(cg, "size %lld", (long long)size);
    cg_line(cg, "lrn_forward(%s, %s, %zu, %zu, %zu, %lld, %s, %s, %s);", cg_ptr(cg, y), cg_ptr(cg, x), bn, c, sp,
            (long long)size, cg_float(cg, node_attr_float(n, "alpha", 1e-4f)),
            cg_float(cg, node_attr_float(n, "beta", 0.75f)), cg_float(cg, node_attr_float(n, "bias", 1.0f)));
    return ST_OK;
}

/* Dropout in inference: y = x; the mask (when read) is all true. It is a view unless the mask is read. */
static Status check_dropout(Cg *cg, const Node *n)
{
    double ratio = 0.5, training = 0;
    if (node_input(n, 2) && !cg_const_scalar(n, 2, &training))
        return cg_unsupported(cg, "training_mode that is not a constant");
    if (training != 0 && node_input(n, 1) && !cg_const_scalar(n, 1, &ratio))
        return cg_unsupported(cg, "a ratio that is not a constant in training mode");
    if (training != 0 && ratio != 0)
        return cg_unsupported(cg, "training_mode true (random dropout)");
    return ST_OK;
}

static Status emit_dropout(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    cg_line(cg, "memcpy(%s, %s, %zu);", cg_ptr(cg, y), cg_ptr(cg, x), cg_numel(x) * dtype_size(x->dtype));
    if (n->noutputs > 1 && !cg_unused(cg, n->outputs[1]))
        cg_line(cg, "memset(%s, 1, %zu); /* the mask: nothing dropped */", cg_ptr(cg, n->outputs[1]),
                cg_numel(n->outputs[1]));
    return ST_OK;
}


/* MeanVarianceNormalization-13: y = (x - mean) / (sqrt(var) + 1e-9), mean and (biased) variance over
 * `axes` (default 0, 2, 3), composed from the reduce and binary kernels. */
static bool mvn_axes(const Node *n, int rank, uint32_t *mask)
{
    int64_t axes[IR_MAX_RANK] = {0, 2, 3};
    size_t na = 3;
    if (node_attr(n, "axes") && !cg_const_ints(n, -1, "axes", axes, IR_MAX_RANK, &na))
        return false;
    *mask = 0;
    for (size_t i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank)
            return false;
        *mask |= 1u << a;
    }
    return true;
}

static size_t scratch_mvn(const Node *n)
{
    const Value *x = n->inputs[0];
    uint32_t mask;
    if (!mvn_axes(n, x->shape.rank, &mask))
        return 0;
    size_t kept = 1;
    for (int i = 0; i < x->shape.rank; i++)
        if (!(mask >> i & 1))
            kept *= (size_t)x->shape.dim[i];
    return (2 * ((kept + 15) / 16 * 16) + cg_numel(x)) * sizeof(float);
}

static Status emit_mvn(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int rank = x->shape.rank;
    uint32_t mask;
    if (cg_dtype(cg, x) != DT_FLOAT || !mvn_axes(n, rank, &mask))
        return cg_unsupported(cg, "MeanVarianceNormalization of %s with these axes", dtype_name(x->dtype));
    size_t xd[IR_MAX_RANK], kd[IR_MAX_RANK], dense[IR_MAX_RANK], ks[IR_MAX_RANK], kept = 1;
    cg_dims(&x->shape, xd);
    for (int i = 0; i < rank; i++) {
        kd[i] = mask >> i & 1 ? 1 : xd[i];
        kept *= kd[i];
    }
    rt_broadcast_strides(rank, xd, rank, xd, dense);
    rt_broadcast_strides(rank, xd, rank, kd, ks);
    size_t kept_pad = (kept + 15) / 16 * 16;
    const char *sd = cg_sizes(cg, xd, (size_t)rank), *sdense = cg_sizes(cg, dense, (size_t)rank);
    const char *sk = cg_sizes(cg, ks, (size_t)rank), *yp = cg_ptr(cg, y);
    cg_line(cg, "float *mean = %s, *sd = mean + %zu, *sq = sd + %zu;", cg_scratch(cg), kept_pad, kept_pad);
    cg_line(cg, "reduce_forward(mean, %s, REDUCE_MEAN, %d, %s, 0x%xu);", cg_ptr(cg, x), rank, sd, mask);
    cg_line(cg, "binary_forward(BINARY_SUB, RT_FLOAT, %s, %s, mean, %d, %s, %s, %s);", yp, cg_ptr(cg, x), rank, sd,
            sdense, sk);
    cg_line(cg, "binary_forward(BINARY_MUL, RT_FLOAT, sq, %s, %s, %d, %s, %s, %s);", yp, yp, rank, sd, sdense, sdense);
    cg_line(cg, "reduce_forward(sd, sq, REDUCE_MEAN, %d, %s, 0x%xu);", rank, sd, mask);
    cg_line(cg, "for (size_t i = 0; i < %zu; i++)", kept);
    cg_line(cg, "    sd[i] = sqrtf(sd[i]) + 1e-9f;");
    cg_line(cg, "binary_forward(BINARY_DIV, RT_FLOAT, %s, %s, sd, %d, %s, %s, %s);", yp, yp, rank, sd, sdense, sk);
    return ST_OK;
}

const Emitter norm_emitters[] = {
    EMIT("BatchNormalization", emit_batchnorm, NULL, EM_INPLACE0 | EM_F32),
    EMIT("InstanceNormalization", emit_instancenorm, NULL, EM_F32),
    EMIT("LayerNormalization", emit_layernorm, NULL, EM_F32),
    EMIT("LRN", emit_lrn, NULL, EM_F32),
    EMIT("MeanVarianceNormalization", emit_mvn, scratch_mvn, EM_F32),
    {.op = "Dropout", .emit = emit_dropout, .flags = EM_VIEW, .check = check_dropout},
    {0},
};

/* ======================================================================== backward */

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

/* The activation mask ir/pass_fuse.c gave a BatchNormalizationGrad (input 5, attrs onnxtune_act*), as a
 * BnActMask pointer expression, or "NULL" */
static const char *act_mask(Cg *cg, const Node *n)
{
    int kind = (int)node_attr_int(n, "onnxtune_act", 0);
    if (!kind)
        return "NULL";
    bool recompute = node_attr_int(n, "onnxtune_act_recompute", 0) != 0; /* input 5: the BN's bias */
    return cg_fmt(cg, "&(BnActMask){%s, %d, %s, %s, %s}", recompute ? "NULL" : cg_ptr(cg, n->inputs[5]), kind,
                  cg_float(cg, node_attr_float(n, "onnxtune_act_lo", 0.0f)),
                  cg_float(cg, node_attr_float(n, "onnxtune_act_hi", 0.0f)),
                  recompute ? cg_ptr(cg, n->inputs[5]) : "NULL");
}

/* BatchNormalizationGrad(dY, X, scale[, input_mean, input_var][, T]) -> dX, dscale, dB (inference with dX
 * alone: X omitted; T: the saved value of a fused ReluGrad/ClipGrad) */
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
    const char *mask = act_mask(cg, n);
    if (training) {
        /* batch statistics of the valid rows of a padded short batch (rt_batch_rows, kernels.h); the
         * padding's dX rows are zero */
        const char *dx = out_or_null(cg, n, 0);
        cg_line(cg, "size_t rows = rt_batch_rows(%zu);", bn);
        cg_line(cg, "batchnorm_act_backward(%s, %s, %s, %s, %s, %s, %s, NULL, NULL, rows, %zu, %zu, %s, true);", dx,
                out_or_null(cg, n, 1), out_or_null(cg, n, 2), cg_ptr(cg, dy), mask, cg_ptr_or_null(cg, x),
                cg_ptr(cg, n->inputs[2]), c, sp, cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
        if (strcmp(dx, "NULL") != 0)
            cg_line(cg, "memset(%s + rows * %zu, 0, (%zu - rows) * %zu * sizeof(float));", dx, c * sp, bn, c * sp);
        return ST_OK;
    }
    cg_line(cg, "batchnorm_act_backward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %zu, %zu, %zu, %s, false);",
            out_or_null(cg, n, 0), out_or_null(cg, n, 1), out_or_null(cg, n, 2), cg_ptr(cg, dy), mask,
            cg_ptr_or_null(cg, x), cg_ptr(cg, n->inputs[2]), cg_ptr(cg, n->inputs[3]), cg_ptr(cg, n->inputs[4]), bn,
            c, sp, cg_float(cg, node_attr_float(n, "epsilon", 1e-5f)));
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

static Status emit_lrn_grad(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1];
    size_t bn, c, sp;
    Status st;
    if ((st = cg_require_dtype(cg, dy, DT_FLOAT)) || (st = cg_require_dtype(cg, x, DT_FLOAT)))
        return st;
    if (!ncs(x, &bn, &c, &sp) || node_attr_int(n, "size", 0) < 1)
        return cg_unsupported(cg, "LRNGrad of rank %d, size %lld", x->shape.rank,
                              (long long)node_attr_int(n, "size", 0));
    cg_line(cg, "lrn_backward(%s, %s, %s, %zu, %zu, %zu, %lld, %s, %s, %s);", cg_ptr(cg, n->outputs[0]), cg_ptr(cg, dy),
            cg_ptr(cg, x), bn, c, sp, (long long)node_attr_int(n, "size", 0),
            cg_float(cg, node_attr_float(n, "alpha", 1e-4f)), cg_float(cg, node_attr_float(n, "beta", 0.75f)),
            cg_float(cg, node_attr_float(n, "bias", 1.0f)));
    return ST_OK;
}

const Emitter norm_grad_emitters[] = {
    EMIT_ONNXTUNE("BatchNormalizationGrad", emit_batchnorm_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("InstanceNormalizationGrad", emit_instancenorm_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("LayerNormalizationGrad", emit_layernorm_grad, NULL, EM_F32),
    EMIT_ONNXTUNE("LRNGrad", emit_lrn_grad, NULL, EM_F32),
    {.op = "Dropout", .emit = emit_dropout_train, .flags = EM_F32, .check = check_dropout_train,
     .domain = "onnxtune"},
    {.op = "DropoutGrad", .emit = emit_dropout_train, .flags = EM_F32, .check = check_dropout_train,
     .domain = "onnxtune"},
    {0},
};
