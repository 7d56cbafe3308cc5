/* pass_shapes.c - shape and type inference with folding on the way: nodes are visited in order, each
 * op's shape rule sets its outputs, and nodes whose inputs are constant are folded at once, so the
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains PyTorch emits resolve in one walk.
 * Shapes a model declares (value_info, graph outputs) are checked against what is inferred. */
#include "ir.h"

#include <string.h>

/* Merge the declared shape of a value with the inferred one; ST_SHAPE on contradiction. */
static Status merge_declared(const Node *n, Value *v, DType decl_t, const Shape *decl, Diag *d)
{
    if (decl_t != DT_UNDEFINED && v->dtype != DT_UNDEFINED && decl_t != v->dtype)
        return diag_node(d, n, ST_SHAPE, "output '%s' is declared %s but computes %s", v->name,
                         dtype_name(decl_t), dtype_name(v->dtype));
    if (v->dtype == DT_UNDEFINED)
        v->dtype = decl_t;
    if (decl->rank < 0)
        return ST_OK;
    if (v->shape.rank < 0) {
        v->shape = *decl;
        return ST_OK;
    }
    char a[128], b[128];
    if (v->shape.rank != decl->rank)
        return diag_node(d, n, ST_SHAPE, "output '%s' is declared with shape %s but computes %s", v->name,
                         shape_str(decl, a, sizeof a), shape_str(&v->shape, b, sizeof b));
    for (int i = 0; i < decl->rank; i++) {
        if (decl->dim[i] >= 0 && v->shape.dim[i] >= 0 && decl->dim[i] != v->shape.dim[i])
            return diag_node(d, n, ST_SHAPE, "output '%s' is declared with shape %s but computes %s",
                             v->name, shape_str(decl, a, sizeof a), shape_str(&v->shape, b, sizeof b));
        if (v->shape.dim[i] < 0 && decl->dim[i] >= 0)
            v->shape.dim[i] = decl->dim[i];
        if (v->shape.dim[i] < 0 && !v->shape.sym[i])
            v->shape.sym[i] = decl->sym[i];
    }
    return ST_OK;
}

Status infer_node(Graph *g, Node *n, Diag *d)
{
    if (!n->rule)
        return diag_node(d, n, ST_UNSUPPORTED, "unknown op %s%s%s", n->domain[0] ? n->domain : "",
                         n->domain[0] ? "." : "", n->op_type);
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (v && v->kind == VK_TENSOR && v->dtype == DT_UNDEFINED && v->shape.rank < 0 && !v->producer &&
            !v->init && !v->is_input && !graph_find(g, v->name))
            return diag_node(d, n, ST_INVALID, "input %d '%s' is not defined", i, v->name);
    }
    DType decl_t[16];
    Shape decl[16];
    int nk = n->noutputs < 16 ? n->noutputs : 16;
    for (int i = 0; i < nk; i++) {
        decl_t[i] = n->outputs[i]->dtype;
        decl[i] = n->outputs[i]->shape;
        n->outputs[i]->dtype = DT_UNDEFINED;
        n->outputs[i]->shape = shape_unknown();
    }
    Status st = op_check_signature(n->rule, n, d);
    if (!st)
        st = n->rule->shape(g, n, d);
    if (st)
        return st;
    for (int i = 0; i < nk; i++)
        if ((st = merge_declared(n, n->outputs[i], decl_t[i], &decl[i], d)))
            return st;
    return ST_OK;
}

/* Leave an unknown op's outputs as declared (or unknown) and count it. */
static void skip_unknown(Node *n, ShapeOptions *opt)
{
    opt->unknown_ops++;
    (void)n;
}

static bool outputs_known(const Node *n)
{
    for (int k = 0; k < n->noutputs; k++)
        if (!n->outputs[k]->init)
            return false;
    return n->noutputs > 0;
}

static bool reads_initializer(const Node *n)
{
    for (int k = 0; k < n->ninputs; k++)
        if (n->inputs[k] && n->inputs[k]->is_initializer)
            return true;
    return false;
}

static void fix_batch(Graph *g, int64_t batch)
{
    for (size_t i = 0; i < g->ninputs; i++) {
        Value *v = g->inputs[i];
        if (value_is_const(v) || v->init || v->shape.rank < 1 || v->shape.dim[0] >= 0)
            continue;
        v->shape.dim[0] = batch;
        v->shape.sym[0] = NULL;
    }
}

static Status walk_graph(Graph *g, ShapeOptions *opt, Diag *d)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        if (!n->rule && opt->allow_unknown_ops) {
            skip_unknown(n, opt);
            continue;
        }
        Status st = infer_node(g, n, d);
        if (st)
            return st;
        if (opt->fold && outputs_known(n)) {
            /* Shape/Size/Constant rules set their data from shapes alone: done at compile time */
            for (int k = 0; k < n->noutputs; k++)
                n->outputs[k]->producer = NULL;
            n->dead = true;
            continue;
        }
        if (opt->fold && !(opt->keep_params && reads_initializer(n))) {
            bool folded;
            if ((st = fold_node(g, n, &folded, d)))
                return st;
        }
    }
    graph_compact(g);
    if (opt->fold)
        graph_remove_unused(g);
    return ST_OK;
}

Status infer_graph(Graph *g, ShapeOptions *opt, Diag *d)
{
    g->shape_opt = opt; /* subgraph rules (If, Loop) inherit the caller's choices */
    Status st = walk_graph(g, opt, d);
    g->shape_opt = NULL;
    return st;
}

Status pass_shapes(Model *m, ShapeOptions *opt, Diag *d)
{
    if (opt->batch > 0)
        fix_batch(m->graph, opt->batch);
    return infer_graph(m->graph, opt, d);
}
