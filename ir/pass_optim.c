/* pass_optim.c - appends the parameter updates of one training step (torch.optim SGD, Adam, AdamW of
 * torch 1.13, optional clip_grad_norm_) after the backward pass: runtime inputs "lr" and "step", optimizer
 * state values, and one PHASE_OPTIMIZER update node per parameter that writes its parameter and state in
 * place (see ir.h). Learning-rate schedules are not here: the training program passes lr every step. */
#include "ir.h"

#include <math.h>
#include <string.h>

void optim_defaults(OptimKind kind, OptimOptions *o)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = kind == OPTIM_ADAMW ? 1e-2 : 0.0;
}

Status optim_parse(const char *name, OptimKind *out, Diag *d)
{
    static const char *const names[] = {[OPTIM_SGD] = "sgd", [OPTIM_ADAM] = "adam", [OPTIM_ADAMW] = "adamw"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (OptimKind)i;
            return ST_OK;
        }
    return diag_error(d, ST_USAGE, "--optimizer '%s': expected sgd, adam or adamw", name ? name : "");
}

static Status check_options(const OptimOptions *o, Diag *d)
{
    if (o->kind != OPTIM_SGD && o->kind != OPTIM_ADAM && o->kind != OPTIM_ADAMW)
        return diag_error(d, ST_USAGE, "unknown optimizer %d", (int)o->kind);
    if (!(o->weight_decay >= 0 && isfinite(o->weight_decay)))
        return diag_error(d, ST_USAGE, "--weight-decay %g must be >= 0", o->weight_decay);
    if (!(o->grad_clip >= 0 && isfinite(o->grad_clip)))
        return diag_error(d, ST_USAGE, "--grad-clip %g must be > 0", o->grad_clip);
    if (o->kind == OPTIM_SGD) {
        if (!(o->momentum >= 0 && isfinite(o->momentum)))
            return diag_error(d, ST_USAGE, "--momentum %g must be >= 0", o->momentum);
        if (!(o->dampening >= 0 && o->dampening <= 1))
            return diag_error(d, ST_USAGE, "dampening %g must be in [0, 1]", o->dampening);
        if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
            return diag_error(d, ST_USAGE, "--nesterov needs a momentum > 0 and zero dampening (as torch.optim.SGD)");
        return ST_OK;
    }
    if (o->momentum != 0 || o->nesterov)
        return diag_error(d, ST_USAGE, "--momentum and --nesterov are SGD options; Adam's are --beta1/--beta2");
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return diag_error(d, ST_USAGE, "--beta1 %g must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return diag_error(d, ST_USAGE, "--beta2 %g must be in [0, 1)", o->beta2);
    if (!(o->eps >= 0 && isfinite(o->eps)))
        return diag_error(d, ST_USAGE, "--eps %g must be >= 0", o->eps);
    return ST_OK;
}

/* A runtime scalar graph input ("lr", "step"); the names must be free. */
static Value *scalar_input(Graph *g, const char *name, DType t, Diag *d)
{
    if (graph_find(g, name)) {
        diag_error(d, ST_USAGE, "the model already has a value named '%s', which the training step's input "
                   "would be called", name);
        return NULL;
    }
    Value *v = graph_add_value(g, name, d);
    if (!v)
        return NULL;
    v->dtype = t;
    v->shape = shape_scalar();
    if (!graph_add_input(g, v)) {
        diag_error(d, ST_NOMEM, "out of memory adding input '%s'", name);
        return NULL;
    }
    return v;
}

/* Zero-initialised optimizer state "<param>.<key>" (torch.optim's state keys). */
static Value *state_value(Graph *g, const Value *param, const char *key, Diag *d)
{
    char *hint = arena_printf(g->arena, "%s.%s", param->name, key);
    Value *v = hint ? graph_const(g, hint, param->dtype, &param->shape, d) : NULL;
    if (!v) {
        if (!d->status)
            diag_error(d, ST_NOMEM, "out of memory for optimizer state of '%s'", param->name);
        return NULL;
    }
    v->is_state = true;
    return v;
}

static Node *add_node(Graph *g, const char *op, const char *name, int nin, Value *const *in, int nout,
                      Value *const *out, Diag *d)
{
    Node *n = graph_add_node(g, op, ONNXTUNE_DOMAIN, name, nin, in, nout, out, d);
    if (!n) {
        if (!d->status)
            diag_error(d, ST_NOMEM, "out of memory adding %s", op);
        return NULL;
    }
    n->opset = 1;
    n->phase = PHASE_OPTIMIZER;
    return n;
}

/* Hyperparameters are float attributes (as ONNX's own training ops have); every one is written, so a
 * dump shows the whole update. Emitters print them as the shortest decimal that reads back, which gives
 * back the double the user typed (0.999, not 0.99900001). */
static Status set_float(Graph *g, Node *n, const char *name, double v, Diag *d)
{
    return node_set_attr_float(g, n, name, (float)v, d);
}

Status pass_optim(Graph *g, const Gradients *grads, const OptimOptions *o, Diag *d)
{
    Status st;
    if ((st = check_options(o, d)))
        return st;
    if (!grads || grads->n == 0)
        return diag_error(d, ST_INVALID, "no parameter gradients to apply (nothing trains)");
    for (size_t i = 0; i < grads->n; i++) {
        const Value *p = grads->params[i], *gr = grads->grads[i];
        if (p->dtype != DT_FLOAT)
            return diag_error(d, ST_UNSUPPORTED, "parameter '%s' is %s: the optimizers update float32 "
                              "parameters only", p->name, dtype_name(p->dtype));
        if (!gr || gr->dtype != p->dtype || !shape_equal(&gr->shape, &p->shape))
            return diag_error(d, ST_ERR, "internal: the gradient of '%s' does not match it", p->name);
    }
    Value *lr = scalar_input(g, "lr", DT_DOUBLE, d);
    Value *step = lr ? scalar_input(g, "step", DT_INT64, d) : NULL;
    if (!step)
        return d->status;

    Value *scale = NULL;
    if (o->grad_clip > 0) {
        Value *outs[2] = {graph_new_value(g, "grad_clip_scale", d), graph_new_value(g, "grad_norm", d)};
        if (!outs[0] || !outs[1])
            return d->status;
        Node *n = add_node(g, "ClipGradNorm", "/optim/ClipGradNorm", (int)grads->n, grads->grads, 2, outs, d);
        if (!n || (st = node_set_attr_float(g, n, "max_norm", (float)o->grad_clip, d)) ||
            (st = infer_node(g, n, d)))
            return d->status;
        if (!graph_add_output(g, outs[1]))
            return diag_error(d, ST_NOMEM, "out of memory adding output 'grad_norm'");
        scale = outs[0];
    }

    static const char *const ops[] = {[OPTIM_SGD] = "SGDUpdate", [OPTIM_ADAM] = "AdamUpdate",
                                      [OPTIM_ADAMW] = "AdamWUpdate"};
    const char *op = ops[o->kind];
    for (size_t i = 0; i < grads->n; i++) {
        Value *p = grads->params[i];
        Value *in[7] = {p, grads->grads[i], lr, step};
        int nin = 4;
        if (o->kind == OPTIM_SGD) {
            in[nin++] = o->momentum > 0 ? state_value(g, p, "momentum_buffer", d) : NULL;
            if (o->momentum > 0 && !in[4])
                return d->status;
        } else {
            if (!(in[nin++] = state_value(g, p, "exp_avg", d)) || !(in[nin++] = state_value(g, p, "exp_avg_sq", d)))
                return d->status;
        }
        in[nin++] = scale;
        while (nin > 4 && !in[nin - 1])
            nin--;
        char *name = arena_printf(g->arena, "/optim/%s/%s", p->name, op);
        Node *n = name ? add_node(g, op, name, nin, in, 0, NULL, d) : NULL;
        if (!n)
            return d->status ? d->status : diag_error(d, ST_NOMEM, "out of memory adding %s", op);
        if (o->kind == OPTIM_SGD) {
            if ((st = set_float(g, n, "momentum", o->momentum, d)) ||
                (st = set_float(g, n, "dampening", o->dampening, d)) ||
                (st = node_set_attr_int(g, n, "nesterov", o->nesterov, d)))
                return st;
        } else if ((st = set_float(g, n, "beta1", o->beta1, d)) || (st = set_float(g, n, "beta2", o->beta2, d)) ||
                   (st = set_float(g, n, "epsilon", o->eps, d))) {
            return st;
        }
        if ((st = set_float(g, n, "weight_decay", o->weight_decay, d)) ||
            (st = infer_node(g, n, d)))
            return st;
    }
    return ST_OK;
}
