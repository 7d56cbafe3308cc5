/* prefix.c - the frozen prefix of a training graph: the forward nodes whose outputs depend only on the
 * data input and frozen parameters and come out the same on every pass (no Dropout, no BatchNormalization
 * on batch statistics, no random op), and the one value where they hand over to the part that trains:
 * the features a training program may compute once per sample. An analysis only: it changes nothing
 * (codegen/train_program.c cuts the graph there, `onnxtune dump` reports it). */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

enum { NOT_STATIC = 0, STATIC_CONST, STATIC_SAMPLE };  /* STATIC_SAMPLE: depends on the data input */

/* Nodes whose outputs may differ between two passes over the same sample. */
static bool varies(const Node *n)
{
    static const char *const random_ops[] = {"Dropout", "RandomNormal", "RandomUniform", "RandomNormalLike",
                                             "RandomUniformLike", "Multinomial", "Bernoulli", NULL};
    if (n->domain && n->domain[0])
        return true;    /* our own ops (onnxtune.Dropout, ...) */
    for (const char *const *o = random_ops; *o; o++)
        if (strcmp(n->op_type, *o) == 0)
            return true;
    if (strcmp(n->op_type, "BatchNormalization") == 0 && node_attr_int(n, "training_mode", 0))
        return true;
    for (int i = 0; i < n->nattrs; i++)
        if (n->attrs[i].type == AT_GRAPH || n->attrs[i].type == AT_GRAPHS)
            return true;
    return false;
}

Status prefix_find(Graph *g, const Value *x, PrefixInfo *out, Diag *d)
{
    memset(out, 0, sizeof *out);
    unsigned char *level = calloc(g->nvalues ? g->nvalues : 1, 1);
    if (!level)
        return diag_error(d, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        level[i] = v == x ? STATIC_SAMPLE : v->init && !v->trainable && !v->is_state ? STATIC_CONST : NOT_STATIC;
    }
    double flops = 0, act = 0;
    const Node *bn_train = NULL;
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        if (n->dead || n->phase != PHASE_FORWARD)
            continue;
        int lv = STATIC_CONST;
        for (int i = 0; i < n->ninputs; i++) {
            const Value *v = n->inputs[i];
            if (v && level[v->id] == NOT_STATIC)
                lv = NOT_STATIC;
            else if (v && level[v->id] == STATIC_SAMPLE && lv != NOT_STATIC)
                lv = STATIC_SAMPLE;
        }
        if (!bn_train && strcmp(n->op_type, "BatchNormalization") == 0 && node_attr_int(n, "training_mode", 0) &&
            n->ninputs > 0 && n->inputs[0] && level[n->inputs[0]->id] == STATIC_SAMPLE)
            bn_train = n;
        if (varies(n))
            lv = NOT_STATIC;
        for (int i = 0; i < n->noutputs; i++)
            if (n->outputs[i] && !n->outputs[i]->trainable && !n->outputs[i]->is_state)
                level[n->outputs[i]->id] = (unsigned char)lv;
        if (lv == STATIC_SAMPLE) {
            out->nodes++;
            flops += n->rule && n->rule->flops ? n->rule->flops(n) : 0;
            for (int i = 0; i < n->noutputs; i++)
                if (n->outputs[i])
                    act += shape_numel_or0(&n->outputs[i]->shape) * (double)dtype_size(n->outputs[i]->dtype);
        }
    }
    /* the boundary: per-sample static values read by a node that is not static, or graph outputs */
    const Value *b = NULL;
    size_t nb = 0;
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        if (n->dead)
            continue;
        bool stat = n->phase == PHASE_FORWARD && !varies(n);
        for (int i = 0; stat && i < n->noutputs; i++)
            stat = n->outputs[i] && level[n->outputs[i]->id] != NOT_STATIC;
        for (int i = 0; !stat && i < n->ninputs; i++) {
            const Value *v = n->inputs[i];
            if (v && level[v->id] == STATIC_SAMPLE) {
                level[v->id] = STATIC_SAMPLE + 1;  /* counted */
                nb++;
                b = b ? b : v;
            }
        }
    }
    for (size_t i = 0; i < g->noutputs; i++)
        if (level[g->outputs[i]->id] == STATIC_SAMPLE) {
            level[g->outputs[i]->id] = STATIC_SAMPLE + 1;
            nb++;
            b = b ? b : g->outputs[i];
        }
    free(level);
    if (bn_train) {
        out->why_not = arena_printf(g->arena, "BatchNormalization '%s' in the frozen part normalises with batch "
                                    "statistics (--bn-train)", bn_train->name);
        out->note = true;
        return out->why_not ? ST_OK : diag_error(d, ST_NOMEM, "out of memory");
    }
    if (!b || b == x)
        return ST_OK;   /* nothing before the first trainable node depends on the data alone */
    out->boundary = b;
    int64_t batch = b->shape.rank >= 1 ? b->shape.dim[0] : -1;
    size_t per = dtype_size(b->dtype);
    for (int i = 1; i < b->shape.rank; i++)
        per = b->shape.dim[i] >= 0 ? per * (size_t)b->shape.dim[i] : 0;
    out->sample_bytes = per;
    out->flops = batch > 0 ? flops / (double)batch : 0;
    out->act_bytes = batch > 0 ? act / (double)batch : 0;
    const char *why = NULL;
    char shape[128];
    if (nb > 1)
        why = arena_printf(g->arena, "the frozen part hands %zu values to the part that trains (one is supported)", nb);
    else if (b->dtype != DT_FLOAT || b->shape.rank < 1 || per == 0 || (x->shape.rank >= 1 && batch != x->shape.dim[0]))
        why = arena_printf(g->arena, "the frozen part ends in '%s', %s %s, not float32 [N, ...]", b->name,
                           dtype_name(b->dtype), shape_str(&b->shape, shape, sizeof shape));
    else if (batch > 0 && out->flops < 2.0 * (double)(per / sizeof(float)))
        why = arena_printf(g->arena, "the frozen part (%.0f FLOPs a sample) is cheaper to recompute than its %zu "
                           "features are to store", out->flops, per / sizeof(float));
    if (why) {
        out->why_not = why;
        out->note = nb > 1;
        out->boundary_rejected = b;
        out->boundary = NULL;
    }
    return ST_OK;
}

/* ---- samples apart ---- */

static int64_t norm_axis(int64_t axis, int rank)
{
    return axis < 0 ? axis + rank : axis;
}

/* Ops whose kernels compute each sample alone when axis 0 is the sample axis of what they read and
 * write (every element-wise op, convolutions and pools: per image). */
static bool rowwise(const char *op)
{
    static const char *const ops[] = {
        "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip", "Conv", "ConvTranspose", "Div",
        "Elu", "Erf", "Exp", "Floor", "Gelu", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish",
        "Identity", "InstanceNormalization", "LeakyRelu", "Log", "LRN", "Max", "MaxPool", "Mean", "Min", "Mish",
        "Mul", "Neg", "Pow", "PRelu", "Reciprocal", "Relu", "Reshape", "Round", "Selu", "Sigmoid", "Sign", "Sin",
        "Cos", "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Tanh", "ThresholdedRelu", "Where", NULL};
    for (const char *const *o = ops; *o; o++)
        if (strcmp(op, *o) == 0)
            return true;
    return false;
}

const Node *prefix_mixes_samples(const Graph *g, const Value *x, int64_t batch)
{
    if (batch <= 1)
        return NULL;
    bool *dep = calloc(g->nvalues ? g->nvalues : 1, sizeof *dep);
    if (!dep)
        return g->nnodes ? g->nodes[0] : NULL;  /* cannot tell: say no */
    dep[x->id] = true;
    const Node *bad = NULL;
    for (size_t k = 0; k < g->nnodes && !bad; k++) {
        const Node *n = g->nodes[k];
        if (n->dead)
            continue;
        bool any = false;
        for (int i = 0; i < n->ninputs; i++)
            any = any || (n->inputs[i] && dep[n->inputs[i]->id]);
        if (!any)
            continue;   /* from constants alone: the same for every sample */
        for (int i = 0; i < n->noutputs; i++)
            if (n->outputs[i]) {
                dep[n->outputs[i]->id] = true;
                if (n->outputs[i]->shape.rank < 1 || n->outputs[i]->shape.dim[0] != batch)
                    bad = n;    /* the sample axis is not the leading one any more */
            }
        const char *op = n->op_type;
        const Value *a = n->inputs[0], *b = n->ninputs > 1 ? n->inputs[1] : NULL;
        int rank = a ? a->shape.rank : 0;
        bool ok;
        if (n->domain && n->domain[0])
            ok = false;
        else if (rowwise(op))
            ok = true;
        else if (strcmp(op, "Flatten") == 0)
            ok = norm_axis(node_attr_int(n, "axis", 1), rank) >= 1;
        else if (strcmp(op, "Transpose") == 0) {
            const Attr *p = node_attr(n, "perm");
            ok = p && p->n > 0 && p->ints[0] == 0;
        } else if (strcmp(op, "Concat") == 0 || strcmp(op, "Split") == 0)
            ok = norm_axis(node_attr_int(n, "axis", 0), rank) != 0;
        else if (strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0)
            ok = norm_axis(node_attr_int(n, "axis", -1), rank) != 0;
        else if (strcmp(op, "LayerNormalization") == 0)
            ok = norm_axis(node_attr_int(n, "axis", -1), rank) != 0;
        else if (strcmp(op, "Gemm") == 0)  /* a row per sample; one product each (rt_samples_apart) */
            ok = a && dep[a->id] && !node_attr_int(n, "transA", 0) && !(b && dep[b->id]) &&
                 !(n->ninputs > 2 && n->inputs[2] && dep[n->inputs[2]->id]);
        else if (strcmp(op, "MatMul") == 0)    /* [B, K] @ W, or [B, ..., M, K] with [B, ..., K, N] or W */
            ok = a && b && (dep[a->id] ? rank >= 3 || (rank == 2 && !dep[b->id]) : b->shape.rank >= 3) &&
                 (!dep[b->id] || b->shape.rank >= 3);
        else
            ok = false;
        if (!ok)
            bad = n;
    }
    free(dep);
    return bad;
}
