/* pass_loss.c - puts a loss on the model's logits: a new graph input "target" and an onnxtune.*Loss node
 * producing the scalar graph output "loss" (PHASE_LOSS), with PyTorch's mean reduction; or, for --loss
 * model, takes the loss the model computes itself (ONNX SoftmaxCrossEntropyLoss/NegativeLogLikelihoodLoss).
 * The loss ops and their gradient rules are in ops_train.c and ops_loss.c; this pass only wires them. It
 * does not differentiate. */
#include "ir.h"

#include <string.h>

static const struct {
    const char *name;   /* --loss NAME */
    const char *op;     /* onnxtune op */
} losses[] = {
    [LOSS_CROSS_ENTROPY] = {"cross_entropy", "CrossEntropyLoss"},
    [LOSS_MSE] = {"mse", "MSELoss"},
    [LOSS_L1] = {"l1", "L1Loss"},
    [LOSS_BCE_WITH_LOGITS] = {"bce_with_logits", "BCEWithLogitsLoss"},
    [LOSS_MODEL] = {"model", NULL},
};

Status loss_parse(const char *name, LossKind *out, Diag *d)
{
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++)
        if (name && strcmp(name, losses[i].name) == 0) {
            *out = (LossKind)i;
            return ST_OK;
        }
    return diag_error(d, ST_USAGE, "--loss '%s': expected cross_entropy, mse, l1, bce_with_logits or model",
                      name ? name : "");
}

const char *loss_name(LossKind k)
{
    return (size_t)k < sizeof losses / sizeof losses[0] ? losses[k].name : "?";
}

Status model_import_onnxtune(Model *m, Diag *d)
{
    if (model_opset(m, ONNXTUNE_DOMAIN))
        return ST_OK;
    OpsetImport *ops = arena_calloc(m->arena, m->nopsets + 1, sizeof *ops);
    if (!ops)
        return diag_error(d, ST_NOMEM, "out of memory adding the %s opset", ONNXTUNE_DOMAIN);
    if (m->nopsets)
        memcpy(ops, m->opsets, m->nopsets * sizeof *ops);
    ops[m->nopsets] = (OpsetImport){ONNXTUNE_DOMAIN, 1};
    m->opsets = ops;
    m->nopsets++;
    return ST_OK;
}

static bool is_model_loss(const Node *n)
{
    return n && !n->dead && (!n->domain || !*n->domain || strcmp(n->domain, "ai.onnx") == 0) &&
           (strcmp(n->op_type, "SoftmaxCrossEntropyLoss") == 0 || strcmp(n->op_type, "NegativeLogLikelihoodLoss") == 0);
}

/* The node of the model's own loss: the producer of a graph output's first output; NULL when none. */
static Node *model_loss_node(const Graph *g)
{
    for (size_t i = 0; i < g->noutputs; i++) {
        Value *v = g->outputs[i];
        if (v->producer && v->producer_slot == 0 && is_model_loss(v->producer))
            return v->producer;
    }
    return NULL;
}

bool loss_is_model_target(const Graph *g, const Value *v)
{
    const Node *n = model_loss_node(g);
    return n && n->ninputs > 1 && n->inputs[1] == v;
}

/* --loss model: the model's SCE/NLL output is the loss (ir.h says what is required). */
static Status pass_model_loss(Model *m, const LossOptions *o, Value **loss_out, Diag *d)
{
    Graph *g = m->graph;
    Node *n = model_loss_node(g);
    char buf[128];
    if (o->logits || o->label_smoothing > 0)
        return diag_error(d, ST_USAGE, "--loss model takes the model's own loss: --label-smoothing and the loss's "
                          "input do not apply");
    if (!n)
        return diag_error(d, ST_USAGE, "--loss model: no output of the model is the loss of a "
                          "SoftmaxCrossEntropyLoss or NegativeLogLikelihoodLoss node");
    for (size_t i = 0; i < g->noutputs; i++)
        if (g->outputs[i] != n->outputs[0] && g->outputs[i]->producer && g->outputs[i]->producer_slot == 0 &&
            is_model_loss(g->outputs[i]->producer))
            return diag_error(d, ST_USAGE, "--loss model: the model has several loss outputs ('%s', '%s')",
                              n->outputs[0]->name, g->outputs[i]->name);
    const char *red = node_attr_string(n, "reduction", "mean");
    if (strcmp(red, "none") == 0)
        return diag_node(d, n, ST_USAGE, "--loss model needs a scalar loss, but reduction is none (use mean or sum)");
    Value *t = n->inputs[1], *w = node_input(n, 2);
    bool is_input = false;
    for (size_t i = 0; i < g->ninputs; i++)
        is_input |= g->inputs[i] == t;
    if (!is_input || t->init || t->dtype != DT_INT64)
        return diag_node(d, n, ST_USAGE, "--loss model: the target '%s' must be a graph input of int64 class "
                         "indices (it is %s %s%s)", t->name, dtype_name(t->dtype),
                         shape_str(&t->shape, buf, sizeof buf), is_input ? "" : ", computed in the model");
    if (w && !w->init)
        return diag_node(d, n, ST_USAGE, "--loss model: the class weight '%s' must be an initializer", w->name);
    for (size_t i = 0; i < g->noutputs; i++)
        g->outputs[i]->is_output = false;
    g->noutputs = 0;
    if (!graph_add_output(g, n->inputs[0]) || !graph_add_output(g, n->outputs[0]))
        return diag_error(d, ST_NOMEM, "out of memory taking the model's loss");
    n->phase = PHASE_LOSS;
    *loss_out = n->outputs[0];
    return ST_OK;
}

Status pass_loss(Model *m, const LossOptions *o, Value **loss_out, Diag *d)
{
    Graph *g = m->graph;
    Status st;
    *loss_out = NULL;
    if ((size_t)o->kind >= sizeof losses / sizeof losses[0])
        return diag_error(d, ST_USAGE, "unknown loss %d", (int)o->kind);
    if (o->kind == LOSS_MODEL)
        return pass_model_loss(m, o, loss_out, d);
    Value *logits = NULL;
    if (o->logits) {
        if (!(logits = graph_find_local(g, o->logits)))
            return diag_error(d, ST_USAGE, "the loss input '%s' is not a value of the model", o->logits);
    } else {
        if (g->noutputs != 1)
            return diag_error(d, ST_USAGE, "the model has %zu outputs; the loss needs exactly one (put a head on "
                              "it with --head)", g->noutputs);
        logits = g->outputs[0];
    }
    char buf[128];
    if (!dtype_is_float(logits->dtype) || logits->shape.rank < 1)
        return diag_error(d, ST_SHAPE, "the loss input '%s' must be a float tensor [N, ...], not %s %s",
                          logits->name, dtype_name(logits->dtype), shape_str(&logits->shape, buf, sizeof buf));
    if (o->kind == LOSS_CROSS_ENTROPY && logits->shape.rank != 2)
        return diag_error(d, ST_SHAPE, "cross_entropy needs logits [N, C], but '%s' is %s", logits->name,
                          shape_str(&logits->shape, buf, sizeof buf));
    if (!(o->label_smoothing >= 0 && o->label_smoothing <= 1))
        return diag_error(d, ST_USAGE, "--label-smoothing %g must be in [0, 1]", o->label_smoothing);
    if (o->label_smoothing > 0 && o->kind != LOSS_CROSS_ENTROPY)
        return diag_error(d, ST_USAGE, "--label-smoothing applies to cross_entropy only");
    if ((st = model_import_onnxtune(m, d)))
        return st;

    /* target: class indices int64 [N] for cross-entropy, else float like the logits */
    Value *target = graph_new_value(g, "target", d);
    if (!target)
        return d->status;
    target->kind = VK_TENSOR;
    if (o->kind == LOSS_CROSS_ENTROPY) {
        target->dtype = DT_INT64;
        target->shape = shape_scalar();
        target->shape.rank = 1;
        dim_copy(&target->shape, 0, &logits->shape, 0);
    } else {
        target->dtype = logits->dtype;
        target->shape = logits->shape;
    }
    Value *loss = graph_new_value(g, "loss", d);
    if (!loss)
        return d->status;
    Value *in[2] = {logits, target};
    char *name = arena_printf(g->arena, "/loss/%s", losses[o->kind].op);
    Node *n = name ? graph_add_node(g, losses[o->kind].op, ONNXTUNE_DOMAIN, name, 2, in, 1, &loss, d) : NULL;
    if (!n)
        return d->status ? d->status : diag_error(d, ST_NOMEM, "out of memory adding the loss");
    n->opset = 1;
    n->phase = PHASE_LOSS;
    if (o->kind == LOSS_CROSS_ENTROPY && o->label_smoothing > 0 &&
        (st = node_set_attr_float(g, n, "label_smoothing", (float)o->label_smoothing, d)))
        return st;
    if (!graph_add_input(g, target) || !graph_add_output(g, loss))
        return diag_error(d, ST_NOMEM, "out of memory adding the loss");
    if ((st = infer_node(g, n, d)))
        return st;
    *loss_out = loss;
    return ST_OK;
}
