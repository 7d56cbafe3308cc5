/* pass_freeze.c - which parameters train. Every parameter starts frozen; --train-from and --train-bias
 * select some, then the --train/--freeze globs apply in command-line order (later wins). It also puts
 * the BatchNormalization nodes of the trainable region on batch statistics when --bn-train asks.
 * It builds no gradients (pass_autodiff.c), adds no head (pass_head.c) and leaves Dropout alone. */
#include "ir.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAPTURES 256

/* What one graph's initializers are: per value id, read by a live node, BN running statistic, class
 * weight of a loss op (a buffer of nn.CrossEntropyLoss/NLLLoss, never trained in PyTorch). */
typedef struct ParamInfo {
    bool *used;
    bool *bn_stat;
    bool *loss_weight;
} ParamInfo;

/* v is a value of g itself (not of an enclosing graph), so its id indexes per-value arrays. */
static bool is_local(const Graph *g, const Value *v)
{
    return v && v->id >= 0 && (size_t)v->id < g->nvalues && g->values[v->id] == v;
}

static Status param_info(const Graph *g, ParamInfo *pi, Diag *d)
{
    size_t nv = g->nvalues ? g->nvalues : 1;
    pi->used = calloc(nv, sizeof *pi->used);
    pi->bn_stat = calloc(nv, sizeof *pi->bn_stat);
    pi->loss_weight = calloc(nv, sizeof *pi->loss_weight);
    if (!pi->used || !pi->bn_stat || !pi->loss_weight)
        return diag_error(d, ST_NOMEM, "out of memory marking parameters");
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        if (n->dead)
            continue;
        bool bn = strcmp(n->op_type, "BatchNormalization") == 0 && !n->domain[0];
        bool loss = !n->domain[0] && (strcmp(n->op_type, "SoftmaxCrossEntropyLoss") == 0 ||
                                      strcmp(n->op_type, "NegativeLogLikelihoodLoss") == 0);
        for (int i = 0; i < n->ninputs; i++) {
            const Value *v = n->inputs[i];
            if (!is_local(g, v))
                continue;
            pi->used[v->id] = true;
            if (bn && (i == 3 || i == 4))
                pi->bn_stat[v->id] = true;
            if (loss && i == 2)
                pi->loss_weight[v->id] = true;
        }
        Value *cap[MAX_CAPTURES]; /* what If/Loop/Scan bodies read from here counts too */
        size_t nc = n->nattrs ? node_captures(n, cap, MAX_CAPTURES) : 0;
        for (size_t i = 0; i < nc && i < MAX_CAPTURES; i++)
            if (is_local(g, cap[i]))
                pi->used[cap[i]->id] = true;
    }
    return ST_OK;
}

static void param_info_free(ParamInfo *pi)
{
    free(pi->used);
    free(pi->bn_stat);
    free(pi->loss_weight);
}

/* Why initializer v cannot train, or NULL when it is a parameter. */
static const char *not_param_reason(const ParamInfo *pi, const Value *v)
{
    if (!v->is_initializer || !v->init)
        return "not an initializer";
    if (!pi->used[v->id])
        return "not read by any node";
    if (!dtype_is_float(v->dtype))
        return "not a float tensor";
    if (v->shape.rank < 1)
        return "a scalar constant";
    if (pi->bn_stat[v->id])
        return "a BatchNormalization running statistic";
    if (pi->loss_weight[v->id])
        return "the class weight of a loss";
    return NULL;
}

bool value_is_param(const Graph *g, const Value *v)
{
    ParamInfo pi;
    Diag d;
    diag_init(&d, NULL);
    bool yes = param_info(g, &pi, &d) == ST_OK && is_local(g, v) && !not_param_reason(&pi, v);
    param_info_free(&pi);
    return yes;
}

/* A bias in the BitFit sense: named *.bias, or the bias input of a conv, Gemm or normalisation. */
static bool is_bias_input(const Node *n, int i)
{
    static const char *const ops[] = {"Conv", "ConvTranspose", "Gemm", "BatchNormalization",
                                      "InstanceNormalization", "LayerNormalization"};
    if (i != 2 || n->domain[0])
        return false;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (strcmp(n->op_type, ops[k]) == 0)
            return true;
    return false;
}

static bool name_is_bias(const char *name)
{
    size_t len = strlen(name);
    return len >= 5 && strcmp(name + len - 5, ".bias") == 0;
}

static Status select_bias(Graph *g, const ParamInfo *pi, Diag *d)
{
    size_t count = 0;
    for (size_t i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (!not_param_reason(pi, v) && name_is_bias(v->name)) {
            v->trainable = true;
            count++;
        }
    }
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        for (int i = 0; !n->dead && i < n->ninputs; i++) {
            Value *v = n->inputs[i];
            if (is_local(g, v) && is_bias_input(n, i) && !not_param_reason(pi, v)) {
                count += !v->trainable;
                v->trainable = true;
            }
        }
    }
    if (!count)
        return diag_error(d, ST_USAGE, "--train-bias: the model has no bias parameter (none is named *.bias or "
                          "is the bias input of a Conv, Gemm or normalisation)");
    return ST_OK;
}

/* --train-from: parameters read by the named node and by every node downstream of it, or by every node
 * downstream of the named value. */
static Status select_from(Graph *g, const ParamInfo *pi, const char *from, Diag *d)
{
    bool *tainted = calloc(g->nvalues ? g->nvalues : 1, sizeof *tainted);
    if (!tainted)
        return diag_error(d, ST_NOMEM, "out of memory for --train-from");
    const Node *start = NULL;
    Value *v = graph_find_local(g, from);
    if (v)
        tainted[v->id] = true;
    else
        for (size_t k = 0; k < g->nnodes && !start; k++)
            if (!g->nodes[k]->dead && strcmp(g->nodes[k]->name, from) == 0)
                start = g->nodes[k];
    if (!v && !start) {
        free(tainted);
        return diag_error(d, ST_USAGE, "--train-from '%s' names no value or node of the model", from);
    }
    size_t count = 0;
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        if (n->dead)
            continue;
        bool hit = n == start;
        for (int i = 0; !hit && i < n->ninputs; i++)
            hit = is_local(g, n->inputs[i]) && tainted[n->inputs[i]->id];
        if (!hit)
            continue;
        for (int i = 0; i < n->noutputs; i++)
            if (is_local(g, n->outputs[i]))
                tainted[n->outputs[i]->id] = true;
        Value *reads[MAX_CAPTURES];
        size_t nr = 0;
        for (int i = 0; i < n->ninputs && nr < MAX_CAPTURES; i++)
            reads[nr++] = n->inputs[i];
        if (n->nattrs && nr < MAX_CAPTURES)
            nr += node_captures(n, reads + nr, MAX_CAPTURES - nr);
        for (size_t i = 0; i < nr && i < MAX_CAPTURES; i++) {
            Value *p = reads[i];
            if (is_local(g, p) && !not_param_reason(pi, p)) {
                count += !p->trainable;
                p->trainable = true;
            }
        }
    }
    free(tainted);
    if (!count)
        return diag_error(d, ST_USAGE, "--train-from '%s': no parameter is read at or after it", from);
    return ST_OK;
}

static Status apply_glob(Graph *g, const ParamInfo *pi, const FreezeRule *r, Diag *d)
{
    const char *flag = r->train ? "--train" : "--freeze";
    if (!r->glob || !*r->glob)
        return diag_error(d, ST_USAGE, "%s needs a glob", flag);
    size_t params = 0;
    const Value *other = NULL;
    const char *why = NULL;
    for (size_t i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (!v->is_initializer || (fnmatch(r->glob, v->name, 0) != 0 &&
                                   (!v->onnx_name || fnmatch(r->glob, v->onnx_name, 0) != 0)))
            continue;
        const char *reason = not_param_reason(pi, v);
        if (reason) {
            if (!other) {
                other = v;
                why = reason;
            }
            continue;
        }
        v->trainable = r->train;
        params++;
    }
    if (params || (!r->train && other))
        return ST_OK;
    if (other)
        return diag_error(d, ST_USAGE, "%s '%s' matches no trainable parameter: '%s' is %s", flag, r->glob,
                          other->name, why);
    const char *example = NULL;
    for (size_t i = 0; i < g->nvalues && !example; i++)
        if (!not_param_reason(pi, g->values[i]))
            example = g->values[i]->name;
    if (example)
        return diag_error(d, ST_USAGE, "%s '%s' matches no initializer (parameters are named like '%s')", flag,
                          r->glob, example);
    return diag_error(d, ST_USAGE, "%s '%s' matches no initializer (the model has no parameters)", flag,
                      r->glob);
}

/* --bn-train: BatchNormalization nodes whose input depends on a trainable parameter, or whose scale or
 * B trains, use batch statistics and update their running statistics (which become state). */
static Status mark_batchnorm(Graph *g, bool bn_train, Diag *d)
{
    bool *dep = calloc(g->nvalues ? g->nvalues : 1, sizeof *dep);
    if (!dep)
        return diag_error(d, ST_NOMEM, "out of memory marking BatchNormalization nodes");
    for (size_t i = 0; i < g->nvalues; i++)
        dep[i] = g->values[i]->trainable;
    Status st = ST_OK;
    for (size_t k = 0; k < g->nnodes && !st; k++) {
        Node *n = g->nodes[k];
        if (n->dead)
            continue;
        bool any = false;
        for (int i = 0; i < n->ninputs; i++)
            any = any || (is_local(g, n->inputs[i]) && dep[n->inputs[i]->id]);
        for (int i = 0; any && i < n->noutputs; i++)
            if (is_local(g, n->outputs[i]))
                dep[n->outputs[i]->id] = true;
        if (strcmp(n->op_type, "BatchNormalization") != 0 || n->domain[0])
            continue;
        node_remove_attr(n, "training_mode");
        if (!bn_train || !any || n->ninputs < 5 || !n->inputs[3] || !n->inputs[4])
            continue;
        if ((st = node_set_attr_int(g, n, "training_mode", 1, d)))
            break;
        if (!node_attr(n, "momentum"))
            st = node_set_attr_float(g, n, "momentum", 0.9f, d);
        n->inputs[3]->is_state = true;
        n->inputs[4]->is_state = true;
    }
    free(dep);
    return st;
}

Status pass_freeze(Model *m, const FreezeOptions *o, Diag *d)
{
    Graph *g = m->graph;
    for (size_t i = 0; i < g->nvalues; i++) {
        g->values[i]->trainable = false;
        g->values[i]->is_state = false;
    }
    ParamInfo pi;
    Status st = param_info(g, &pi, d);
    if (!st && o->train_from)
        st = select_from(g, &pi, o->train_from, d);
    if (!st && o->train_bias)
        st = select_bias(g, &pi, d);
    for (size_t r = 0; !st && r < o->nrules; r++)
        st = apply_glob(g, &pi, &o->rules[r], d);
    param_info_free(&pi);
    if (!st)
        st = mark_batchnorm(g, o->bn_train, d);
    return st;
}

void freeze_summary(const Graph *g, FreezeSummary *s)
{
    memset(s, 0, sizeof *s);
    ParamInfo pi;
    Diag d;
    diag_init(&d, NULL);
    if (param_info(g, &pi, &d) == ST_OK) {
        for (size_t i = 0; i < g->nvalues; i++) {
            const Value *v = g->values[i];
            if (not_param_reason(&pi, v))
                continue;
            if (v->trainable) {
                s->trainable++;
                s->trainable_elems += v->init->numel;
            } else {
                s->frozen++;
                s->frozen_elems += v->init->numel;
            }
        }
    }
    param_info_free(&pi);
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        if (!n->dead && !n->domain[0] && strcmp(n->op_type, "BatchNormalization") == 0 &&
            node_attr_int(n, "training_mode", 0))
            s->bn_train++;
    }
}
