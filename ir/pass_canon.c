/* pass_canon.c - opset canonicalisation: every node is rewritten into its op's one canonical form
 * (docs/ir.md lists them) with its default attributes written out (OpRule.defaults), so no later pass
 * looks at opset versions or knows ONNX's defaults. The rewrites themselves live with each op's rules
 * in ir/ops_<family>.c; this pass only walks the graphs. */
#include "ir.h"

#include <string.h>

/* Write each default attribute of n's op that n lacks. */
static Status canon_defaults(Graph *g, Node *n, Diag *d)
{
    const OpAttr *defs = n->rule->defaults;
    for (size_t i = 0; i < sizeof n->rule->defaults / sizeof defs[0]; i++) {
        const OpAttr *a = &defs[i];
        if (!a->name || node_attr(n, a->name))
            continue;
        Attr at = {.name = a->name, .type = a->type};
        if (a->type == AT_FLOAT)
            at.f = (float)a->value;
        else if (a->type == AT_INT)
            at.i = (int64_t)a->value;
        else if (a->type == AT_STRING)
            at.s = a->s, at.slen = strlen(a->s);
        if (!node_add_attr(g, n, &at))
            return diag_node(d, n, ST_NOMEM, "out of memory adding attribute %s", a->name);
    }
    return ST_OK;
}

static Status canon_graph(Graph *g, Diag *d)
{
    /* rewrites may append nodes; those are already canonical, so walk the original count */
    size_t n = g->nnodes;
    for (size_t i = 0; i < n; i++) {
        Node *nd = g->nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->nattrs; k++) {
            Attr *a = &nd->attrs[k];
            Status st = ST_OK;
            if (a->type == AT_GRAPH && a->g)
                st = canon_graph(a->g, d);
            for (size_t j = 0; !st && a->type == AT_GRAPHS && j < a->n; j++)
                st = canon_graph(a->graphs[j], d);
            if (st)
                return st;
        }
        if (!nd->rule)
            continue; /* unknown ops are reported by the passes that must compute them */
        if (nd->rule->canon) {
            Status st = nd->rule->canon(g, nd, d);
            if (st)
                return st;
        }
        /* a canon rule may have turned the node into another op; keep its own canonical opset */
        if (nd->rule) {
            nd->opset = nd->rule->canon_opset;
            Status st = canon_defaults(g, nd, d);
            if (st)
                return st;
        }
    }
    graph_compact(g);
    return graph_toposort(g, d);
}

Status pass_canon(Model *m, Diag *d)
{
    return canon_graph(m->graph, d);
}
