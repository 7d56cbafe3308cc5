/* subgraph.c - copying If/Loop/Scan bodies: into another graph (inlining a branch, unrolling a loop,
 * recomputing a body in a backward pass) or as a new subgraph, with the subgraphs nested in them copied
 * too, so a copy never shares a body with its original. It knows no op; ir/ops_control.c uses it. */
#include "ir.h"

#include <string.h>

Value *copy_scope_map(const CopyScope *s, Value *v)
{
    for (; v && s; s = s->outer)
        if (v->id >= 0 && (size_t)v->id < s->src->nvalues && s->src->values[v->id] == v)
            return s->map[v->id] ? s->map[v->id] : v;
    return v;
}

Graph *graph_copy_subgraph(Graph *parent, const Node *n, const Graph *src, const CopyScope *sc, Diag *d)
{
    Graph *dst = graph_new(parent->arena, src->name, parent);
    Value **map = dst ? arena_calloc(parent->arena, src->nvalues ? src->nvalues : 1, sizeof *map) : NULL;
    if (!map) {
        diag_node(d, n, ST_NOMEM, "out of memory copying a subgraph");
        return NULL;
    }
    for (size_t i = 0; i < src->nvalues; i++) {
        const Value *sv = src->values[i];
        Value *v = graph_add_value(dst, sv->name, d);
        if (!v)
            return NULL;
        v->kind = sv->kind, v->dtype = sv->dtype, v->shape = sv->shape, v->init = sv->init;
        v->is_initializer = sv->is_initializer, v->doc = sv->doc;
        map[i] = v;
    }
    CopyScope inner = {.src = src, .map = map, .outer = sc};
    for (size_t i = 0; i < src->ninputs; i++)
        if (!graph_add_input(dst, copy_scope_map(&inner, src->inputs[i])))
            return NULL;
    if (graph_copy_nodes(dst, n, src, &inner, NULL, d))
        return NULL;
    for (size_t i = 0; i < src->noutputs; i++)
        if (!graph_add_output(dst, copy_scope_map(&inner, src->outputs[i])))
            return NULL;
    return dst;
}

Status graph_copy_nodes(Graph *g, const Node *n, const Graph *src, const CopyScope *sc, const bool *only, Diag *d)
{
    for (size_t i = 0; i < src->nnodes; i++) {
        Node *bn = src->nodes[i];
        if (bn->dead || (only && !only[i]))
            continue;
        Value *ins[64], *os[64];
        if (bn->ninputs > 64 || bn->noutputs > 64)
            return diag_node(d, bn, ST_UNSUPPORTED, "too many inputs or outputs to copy");
        for (int k = 0; k < bn->ninputs; k++)
            ins[k] = copy_scope_map(sc, bn->inputs[k]);
        for (int k = 0; k < bn->noutputs; k++)
            os[k] = copy_scope_map(sc, bn->outputs[k]);
        Node *nn = graph_add_node(g, bn->op_type, bn->domain, bn->name, bn->ninputs, ins, bn->noutputs, os, d);
        if (!nn)
            return d->status;
        nn->opset = bn->opset, nn->doc = bn->doc, nn->phase = n->phase;
        nn->attrs = bn->attrs, nn->nattrs = bn->nattrs;
        bool sub = false;
        for (int k = 0; k < bn->nattrs; k++)
            sub = sub || bn->attrs[k].type == AT_GRAPH || bn->attrs[k].type == AT_GRAPHS;
        if (!sub)
            continue;
        Attr *at = arena_calloc(g->arena, (size_t)bn->nattrs, sizeof *at);
        if (!at)
            return diag_node(d, n, ST_NOMEM, "out of memory copying a subgraph");
        memcpy(at, bn->attrs, (size_t)bn->nattrs * sizeof *at);
        for (int k = 0; k < bn->nattrs; k++) {
            if (at[k].type == AT_GRAPH && at[k].g && !(at[k].g = graph_copy_subgraph(g, n, bn->attrs[k].g, sc, d)))
                return d->status;
            if (at[k].type == AT_GRAPHS) {
                Graph **gs = arena_calloc(g->arena, at[k].n ? at[k].n : 1, sizeof *gs);
                if (!gs)
                    return diag_node(d, n, ST_NOMEM, "out of memory copying a subgraph");
                for (size_t j = 0; j < at[k].n; j++)
                    if (!(gs[j] = graph_copy_subgraph(g, n, bn->attrs[k].graphs[j], sc, d)))
                        return d->status;
                at[k].graphs = gs;
            }
        }
        nn->attrs = at;
    }
    return ST_OK;
}

Status graph_clone_body(Graph *g, const Node *n, Graph *body, Value *const *map_in, Value **outs, Diag *d)
{
    size_t nv = body->nvalues;
    Value **map = arena_calloc(g->arena, nv ? nv : 1, sizeof *map);
    if (!map)
        return diag_node(d, n, ST_NOMEM, "out of memory copying a subgraph");
    for (size_t i = 0; i < body->ninputs; i++)
        if (body->inputs[i]->id >= 0 && (size_t)body->inputs[i]->id < nv)
            map[body->inputs[i]->id] = map_in[i];
    for (size_t i = 0; i < nv; i++) {
        Value *bv = body->values[i], *v;
        if (map[i])
            continue;
        if (!(v = graph_new_value(g, bv->name, d)))
            return d->status;
        v->kind = bv->kind, v->dtype = bv->dtype, v->shape = bv->shape, v->init = bv->init;
        v->is_initializer = bv->is_initializer, v->doc = bv->doc;
        map[i] = v;
    }
    CopyScope sc = {.src = body, .map = map, .outer = NULL};
    Status st = graph_copy_nodes(g, n, body, &sc, NULL, d);
    for (size_t i = 0; !st && i < body->noutputs; i++)
        outs[i] = copy_scope_map(&sc, body->outputs[i]);
    return st;
}

Status graph_move_after(Graph *g, Node *n, size_t first, Diag *d)
{
    n->dead = true;
    size_t pos = 0;
    while (pos < first && g->nodes[pos] != n)
        pos++;
    if (pos == first)
        return diag_node(d, n, ST_ERR, "internal: node is not in its graph");
    size_t k = g->nnodes - first;
    Node **tmp = arena_calloc(g->arena, k ? k : 1, sizeof *tmp);
    if (!tmp)
        return diag_node(d, n, ST_NOMEM, "out of memory inlining a subgraph");
    memcpy(tmp, g->nodes + first, k * sizeof *tmp);
    memmove(g->nodes + pos + 1 + k, g->nodes + pos + 1, (first - pos - 1) * sizeof *tmp);
    memcpy(g->nodes + pos + 1, tmp, k * sizeof *tmp);
    for (size_t i = 0; i < g->nnodes; i++)
        g->nodes[i]->index = (int)i;
    return ST_OK;
}

Status graph_add_identity(Graph *g, const Node *n, Value *src, Value *dst, Diag *d)
{
    Node *id = graph_add_node(g, "Identity", "", n->name, 1, &src, 1, &dst, d);
    if (!id)
        return d->status;
    id->opset = 17, id->phase = n->phase;
    return ST_OK;
}

