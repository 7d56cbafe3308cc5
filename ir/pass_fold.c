/* pass_fold.c - constant folding: a node whose inputs are all known at compile time is computed
 * now (by its op's fold rule) and replaced by its results. Outputs larger than FOLD_MAX_BYTES are
 * left to run time, so folding never blows up the model (ConstantOfShape of a big shape). */
#include "ir.h"

#define FOLD_MAX_BYTES ((size_t)64 << 20)

Status fold_node(Graph *g, Node *n, bool *folded, Diag *d)
{
    *folded = false;
    if (n->dead || !n->rule || !n->rule->fold)
        return ST_OK;
    for (int i = 0; i < n->ninputs; i++)
        if (n->inputs[i] && !value_is_const(n->inputs[i]))
            return ST_OK;
    for (int i = 0; i < n->nattrs; i++)
        if (n->attrs[i].type == AT_GRAPH || n->attrs[i].type == AT_GRAPHS)
            return ST_OK; /* control flow folds only when its rule says so: not here */
    size_t total = 0;
    for (int i = 0; i < n->noutputs; i++) {
        Value *o = n->outputs[i];
        size_t numel, bytes;
        if (o->kind != VK_TENSOR || !shape_numel(&o->shape, &numel) || dtype_size(o->dtype) == 0 ||
            !size_mul(numel, dtype_size(o->dtype), &bytes) || !size_add(total, bytes, &total))
            return ST_OK;
    }
    if (total > FOLD_MAX_BYTES)
        return ST_OK;
    Status st = n->rule->fold(g, n, d);
    if (st)
        return st;
    /* a rule may decline (dtype it cannot compute): it returns OK and leaves outputs without
     * data; then the node stays, and no output may look constant */
    bool all = true;
    for (int i = 0; i < n->noutputs; i++)
        all = all && n->outputs[i]->init;
    if (!all) {
        for (int i = 0; i < n->noutputs; i++)
            n->outputs[i]->init = NULL;
        return ST_OK;
    }
    for (int i = 0; i < n->noutputs; i++)
        n->outputs[i]->producer = NULL;
    n->dead = true;
    *folded = true;
    return ST_OK;
}

static Status fold_graph(Graph *g, Diag *d)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        bool folded;
        Status st = fold_node(g, g->nodes[i], &folded, d);
        if (st)
            return st;
    }
    graph_compact(g);
    graph_remove_unused(g);
    return ST_OK;
}

Status pass_fold(Model *m, Diag *d)
{
    return fold_graph(m->graph, d);
}
