/* emit_train.c - emitters of the onnxtune ops fine-tuning adds (ir/ops_train.c) on kernels/loss.c and
 * kernels/optim.c: the losses and their backward ops, ClipGradNorm, and the in-place optimizer updates.
 * float32 tensors only. The updates write through their parameter and state inputs (the pass_optim.c
 * convention of ir.h): this file casts the const away, so the training program must hand them mutable
 * buffers; it does not decide where parameters live. Losses average over the valid rows of a padded
 * short batch (rt_batch_rows) and their backward ops zero the padding's rows; hyperparameters are read
 * through rt_hyper so a training program can change them at run time (kernels.h, kernels/settings.c). */
#include "emit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A float attribute as a double literal: the shortest decimal that reads back as the same float, which
 * is the number the user typed when it had <= 7 significant digits (0.999, not 0.99900001287...). */
static const char *attr_double(Cg *cg, const Node *n, const char *name, float dflt)
{
    float f = node_attr_float(n, name, dflt);
    if (isnan(f))
        return "NAN";
    if (isinf(f))
        return f > 0 ? "INFINITY" : "-INFINITY";
    char buf[48];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return cg_fmt(cg, "%s", buf);
}

/* A hyperparameter as "rt_hyper(RT_HYPER_X, compiled)": the training program may override it. */
static const char *hyper(Cg *cg, const Node *n, const char *which, const char *name, float dflt)
{
    return cg_fmt(cg, "rt_hyper(%s, %s)", which, attr_double(cg, n, name, dflt));
}

static Status require_float(Cg *cg, const Node *n, int first, int count)
{
    Status st;
    for (int i = first; i < first + count; i++)
        if (node_input(n, i) && (st = cg_require_dtype(cg, n->inputs[i], DT_FLOAT)))
            return st;
    return ST_OK;
}

/* ---- losses: <Op>(input, target) -> loss; <Op>Grad(dloss, input, target) -> dinput ---- */

static const struct {
    const char *op;
    const char *kernel;     /* <kernel>_forward / <kernel>_backward */
} losses[] = {
    {"MSELoss", "mse_loss"},
    {"L1Loss", "l1_loss"},
    {"BCEWithLogitsLoss", "bce_with_logits"},
};

static const char *loss_kernel(const char *op)
{
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++)
        if (strncmp(op, losses[i].op, strlen(losses[i].op)) == 0)
            return losses[i].kernel;
    return NULL;
}

/* logits [N, C] -> n, c */
static Status ce_dims(Cg *cg, const Value *x, size_t *n, size_t *c)
{
    if (x->shape.rank != 2)
        return cg_unsupported(cg, "logits of rank %d", x->shape.rank);
    *n = (size_t)x->shape.dim[0];
    *c = (size_t)x->shape.dim[1];
    return ST_OK;
}

static Status emit_cross_entropy(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *t = n->inputs[1];
    size_t rows = 0, cols = 0;
    Status st;
    if ((st = require_float(cg, n, 0, 1)) || (st = cg_require_dtype(cg, t, DT_INT64)) ||
        (st = cg_require_dtype(cg, n->outputs[0], DT_FLOAT)) || (st = ce_dims(cg, x, &rows, &cols)))
        return st;
    cg_line(cg, "cross_entropy_forward(%s, %s, %s, rt_batch_rows(%zu), %zu, %s);", cg_ptr(cg, n->outputs[0]),
            cg_ptr(cg, x), cg_ptr(cg, t), rows, cols, cg_float(cg, node_attr_float(n, "label_smoothing", 0)));
    return ST_OK;
}

static Status emit_cross_entropy_grad(Cg *cg, const Node *n)
{
    const Value *dl = n->inputs[0], *x = n->inputs[1], *t = n->inputs[2];
    size_t rows = 0, cols = 0;
    Status st;
    if ((st = require_float(cg, n, 0, 2)) || (st = cg_require_dtype(cg, t, DT_INT64)) ||
        (st = ce_dims(cg, x, &rows, &cols)))
        return st;
    cg_line(cg, "size_t rows = rt_batch_rows(%zu);", rows);
    cg_line(cg, "cross_entropy_backward(%s, %s, %s, %s, rows, %zu, %s);", cg_ptr(cg, n->outputs[0]), cg_ptr(cg, dl),
            cg_ptr(cg, x), cg_ptr(cg, t), cols, cg_float(cg, node_attr_float(n, "label_smoothing", 0)));
    cg_line(cg, "memset(%s + rows * %zu, 0, (%zu - rows) * %zu * sizeof(float));", cg_ptr(cg, n->outputs[0]), cols,
            rows, cols);
    return ST_OK;
}

/* The count of the valid elements of x [N, ...] in a padded batch: "rt_batch_rows(N) * per_row". */
static const char *valid_count(Cg *cg, const Value *x)
{
    size_t numel = cg_numel(x);
    if (x->shape.rank < 1 || x->shape.dim[0] < 1)
        return cg_fmt(cg, "%zu", numel);
    size_t rows = (size_t)x->shape.dim[0];
    return cg_fmt(cg, "rt_batch_rows(%zu) * %zu", rows, numel / rows);
}

static Status emit_loss(Cg *cg, const Node *n)
{
    const char *k = loss_kernel(n->op_type);
    Status st;
    if (!k)
        return cg_unsupported(cg, "no kernel for %s", n->op_type);
    if ((st = require_float(cg, n, 0, 2)) || (st = cg_require_dtype(cg, n->outputs[0], DT_FLOAT)))
        return st;
    cg_line(cg, "%s_forward(%s, %s, %s, %s);", k, cg_ptr(cg, n->outputs[0]), cg_ptr(cg, n->inputs[0]),
            cg_ptr(cg, n->inputs[1]), valid_count(cg, n->inputs[0]));
    return ST_OK;
}

static Status emit_loss_grad(Cg *cg, const Node *n)
{
    const char *k = loss_kernel(n->op_type);
    Status st;
    if (!k)
        return cg_unsupported(cg, "no kernel for %s", n->op_type);
    if ((st = require_float(cg, n, 0, 3)))
        return st;
    cg_line(cg, "size_t count = %s;", valid_count(cg, n->inputs[1]));
    cg_line(cg, "%s_backward(%s, %s, %s, %s, count);", k, cg_ptr(cg, n->outputs[0]), cg_ptr(cg, n->inputs[0]),
            cg_ptr(cg, n->inputs[1]), cg_ptr(cg, n->inputs[2]));
    cg_line(cg, "memset(%s + count, 0, (%zu - count) * sizeof(float));", cg_ptr(cg, n->outputs[0]),
            cg_numel(n->inputs[1]));
    return ST_OK;
}

/* ---- ClipGradNorm(grads...) -> scale, total_norm ---- */

static Status emit_clip_grad_norm(Cg *cg, const Node *n)
{
    Status st;
    if ((st = require_float(cg, n, 0, n->ninputs)))
        return st;
    size_t sizes[256];
    if (n->ninputs > 256)
        return cg_unsupported(cg, "more than 256 gradients (%d)", n->ninputs);
    const char *ptrs = "";
    for (int i = 0; i < n->ninputs; i++) {
        sizes[i] = cg_numel(n->inputs[i]);
        ptrs = cg_fmt(cg, "%s%s%s", ptrs, i ? ", " : "", cg_ptr(cg, n->inputs[i]));
    }
    const Value *total = n->noutputs > 1 ? n->outputs[1] : NULL;
    bool keep_total = total && !cg_unused(cg, total);
    if (!keep_total)
        cg_line(cg, "float total_norm;");
    cg_line(cg, "clip_grad_norm(%s, %s, (const float *const[]){%s}, %s, %d, %s);", cg_ptr(cg, n->outputs[0]),
            keep_total ? cg_ptr(cg, total) : "&total_norm", ptrs, cg_sizes(cg, sizes, (size_t)n->ninputs),
            n->ninputs, hyper(cg, n, "RT_HYPER_MAX_NORM", "max_norm", 1));
    return ST_OK;
}

/* ---- updates: no outputs; the parameter and state inputs are written in place ---- */

/* "(float *)p" for an input written in place, "NULL" when absent */
static const char *mutable_ptr(Cg *cg, const Value *v)
{
    return v ? cg_fmt(cg, "(float *)%s", cg_ptr(cg, v)) : "NULL";
}

/* lr (double or float scalar) as a double expression, step as int64 */
static Status lr_step(Cg *cg, const Node *n, const char **lr, const char **step)
{
    const Value *l = n->inputs[2], *s = n->inputs[3];
    if (cg_dtype(cg, l) != DT_DOUBLE && cg_dtype(cg, l) != DT_FLOAT)
        return cg_unsupported(cg, "lr of type %s", dtype_name(l->dtype));
    Status st = cg_require_dtype(cg, s, DT_INT64);
    if (st)
        return st;
    *lr = cg_fmt(cg, "(double)*%s", cg_ptr(cg, l));
    *step = cg_fmt(cg, "*%s", cg_ptr(cg, s));
    return ST_OK;
}

static Status emit_sgd(Cg *cg, const Node *n)
{
    const char *lr, *step;
    Status st;
    if ((st = require_float(cg, n, 0, 2)) || (st = require_float(cg, n, 4, 2)) || (st = lr_step(cg, n, &lr, &step)))
        return st;
    cg_line(cg, "sgd_update(%s, %s, %s, %zu, %s, %s, %s, %s, %s, %s, %s);", mutable_ptr(cg, n->inputs[0]),
            cg_ptr(cg, n->inputs[1]), mutable_ptr(cg, node_input(n, 4)), cg_numel(n->inputs[0]), lr, step,
            hyper(cg, n, "RT_HYPER_MOMENTUM", "momentum", 0), hyper(cg, n, "RT_HYPER_DAMPENING", "dampening", 0),
            cg_fmt(cg, "rt_hyper(RT_HYPER_NESTEROV, %d) != 0", node_attr_int(n, "nesterov", 0) ? 1 : 0),
            hyper(cg, n, "RT_HYPER_WEIGHT_DECAY", "weight_decay", 0),
            cg_ptr_or_null(cg, node_input(n, 5)));
    return ST_OK;
}

static Status emit_adam(Cg *cg, const Node *n)
{
    const char *lr, *step;
    Status st;
    bool adamw = strcmp(n->op_type, "AdamWUpdate") == 0;
    if ((st = require_float(cg, n, 0, 2)) || (st = require_float(cg, n, 4, 3)) || (st = lr_step(cg, n, &lr, &step)))
        return st;
    cg_line(cg, "adam_update(%s, %s, %s, %s, %zu, %s, %s, %s, %s, %s, %s, %s, %s);", mutable_ptr(cg, n->inputs[0]),
            cg_ptr(cg, n->inputs[1]), mutable_ptr(cg, n->inputs[4]), mutable_ptr(cg, n->inputs[5]),
            cg_numel(n->inputs[0]), lr, step, hyper(cg, n, "RT_HYPER_BETA1", "beta1", 0.9f),
            hyper(cg, n, "RT_HYPER_BETA2", "beta2", 0.999f), hyper(cg, n, "RT_HYPER_EPS", "epsilon", 1e-8f),
            hyper(cg, n, "RT_HYPER_WEIGHT_DECAY", "weight_decay", adamw ? 1e-2f : 0),
            adamw ? "true" : "false", cg_ptr_or_null(cg, node_input(n, 6)));
    return ST_OK;
}

const Emitter train_emitters[] = {
    EMIT_ONNXTUNE("CrossEntropyLoss", emit_cross_entropy, NULL, 0),
    EMIT_ONNXTUNE("CrossEntropyLossGrad", emit_cross_entropy_grad, NULL, EM_INPLACE),
    EMIT_ONNXTUNE("MSELoss", emit_loss, NULL, 0),
    EMIT_ONNXTUNE("MSELossGrad", emit_loss_grad, NULL, EM_INPLACE),
    EMIT_ONNXTUNE("L1Loss", emit_loss, NULL, 0),
    EMIT_ONNXTUNE("L1LossGrad", emit_loss_grad, NULL, EM_INPLACE),
    EMIT_ONNXTUNE("BCEWithLogitsLoss", emit_loss, NULL, 0),
    EMIT_ONNXTUNE("BCEWithLogitsLossGrad", emit_loss_grad, NULL, EM_INPLACE),
    EMIT_ONNXTUNE("ClipGradNorm", emit_clip_grad_norm, NULL, 0),
    EMIT_ONNXTUNE("SGDUpdate", emit_sgd, NULL, 0),
    EMIT_ONNXTUNE("AdamUpdate", emit_adam, NULL, 0),
    EMIT_ONNXTUNE("AdamWUpdate", emit_adam, NULL, 0),
    {0},
};
