/* verify.c - structural checks on a graph: every value defined once and before use, producers
 * consistent, constants well-formed, ops known. It does not check op semantics (the shape pass does). */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static Status verify_graph(const Graph *g, Diag *d);

static Status verify_node_attrs(const Node *n, Diag *d)
{
    for (int i = 0; i < n->nattrs; i++) {
        const Attr *a = &n->attrs[i];
        if (a->type == AT_GRAPH && a->g) {
            Status st = verify_graph(a->g, d);
            if (st)
                return st;
        }
        for (size_t k = 0; a->type == AT_GRAPHS && k < a->n; k++) {
            Status st = verify_graph(a->graphs[k], d);
            if (st)
                return st;
        }
    }
    return ST_OK;
}

static Status verify_graph(const Graph *g, Diag *d)
{
    /* defined[v->id]: produced by an earlier node, a graph input, or a constant */
    bool *defined = calloc(g->nvalues ? g->nvalues : 1, sizeof *defined);
    if (!defined)
        return diag_error(d, ST_NOMEM, "out of memory verifying graph");
    Status st = ST_OK;
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (v->init) {
            const Tensor *t = v->init;
            size_t numel;
            if (!shape_numel(&t->shape, &numel) || numel != t->numel ||
                (t->dtype != DT_STRING && t->nbytes != numel * dtype_size(t->dtype))) {
                st = diag_error(d, ST_INVALID, "constant '%s': its data does not match its shape", v->name);
                goto done;
            }
            defined[i] = true;
        }
        if (v->is_input)
            defined[i] = true;
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->ninputs; k++) {
            const Value *v = n->inputs[k];
            if (!v)
                continue;
            const Value *local = graph_find_local(g, v->name);
            if (local == v) {
                if (!defined[v->id]) {
                    st = diag_node(d, n, ST_INVALID, "input %d '%s' is used before it is defined "
                                   "(or never defined)", k, v->name);
                    goto done;
                }
            } else if (!g->parent || graph_find(g->parent, v->name) != v) {
                st = diag_node(d, n, ST_INVALID, "input %d '%s' is not defined in this graph", k, v->name);
                goto done;
            }
        }
        for (int k = 0; k < n->noutputs; k++) {
            const Value *v = n->outputs[k];
            if (!v)
                continue;
            if (v->producer != n) {
                st = diag_node(d, n, ST_INVALID, "output %d '%s' is also written by node '%s'", k,
                               v->name, v->producer ? v->producer->name : "(an input or initializer)");
                goto done;
            }
            if (v->is_input || v->is_initializer) {
                st = diag_node(d, n, ST_INVALID, "output %d '%s' is also a graph input or initializer",
                               k, v->name);
                goto done;
            }
            defined[v->id] = true;
        }
        if ((st = verify_node_attrs(n, d)))
            goto done;
    }
    for (size_t i = 0; i < g->noutputs; i++) {
        const Value *v = g->outputs[i];
        if (graph_find_local(g, v->name) == v ? !defined[v->id] : !graph_find(g, v->name)) {
            st = diag_error(d, ST_INVALID, "graph output '%s' is never computed", v->name);
            goto done;
        }
    }
done:
    free(defined);
    return st;
}

Status graph_verify(const Graph *g, Diag *d)
{
    return verify_graph(g, d);
}
