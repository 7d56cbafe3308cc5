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
    double flops = 0;
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
