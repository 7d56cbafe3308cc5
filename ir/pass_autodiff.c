/* pass_autodiff.c - reverse-mode autodiff over the IR. It finds the nodes that lie on a path from a
 * trainable parameter to the loss, walks them backwards calling each op's gradient rule, and sums
 * gradients where a value fans out. The rules themselves live with their ops (ir/ops_<family>.c);
 * this file knows no op. It does not optimise the backward graph (folding and memplan do that). */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

struct GradCtx {
    Graph *g;
    size_t nfwd;        /* values with id < nfwd are forward values; only they get gradients */
    bool *needs;        /* needs[id]: depends on a trainable parameter */
    bool *reaches;      /* reaches[id]: the loss depends on it */
    Value **grad;       /* grad[id]: dLoss/dvalue so far, or NULL */
};

Graph *grad_graph(GradCtx *c)
{
    return c->g;
}

static bool is_fwd(const GradCtx *c, const Value *v)
{
    return v && (size_t)v->id < c->nfwd && c->g->values[v->id] == v;
}

Value *grad_output(GradCtx *c, const Node *n, int i)
{
    Value *v = i >= 0 && i < n->noutputs ? n->outputs[i] : NULL;
    return is_fwd(c, v) ? c->grad[v->id] : NULL;
}

bool grad_needed(GradCtx *c, const Node *n, int i)
{
    Value *v = node_input(n, i);
    return is_fwd(c, v) && c->needs[v->id] && c->reaches[v->id] && dtype_is_float(v->dtype);
}

Node *grad_new_node(GradCtx *c, const Node *fwd, const char *domain, const char *op_type, int nin,
                    Value *const *in, int nout, Diag *d)
{
    Graph *g = c->g;
    Value *outs[8];
    if (nout < 0 || nout > 8) {
        diag_node(d, fwd, ST_ERR, "internal: a backward node with %d outputs", nout);
        return NULL;
    }
    for (int i = 0; i < nout; i++) {
        char *hint = arena_printf(g->arena, "%s_grad_%s%s", fwd->name, op_type, i ? "_out" : "");
        if (!hint || !(outs[i] = graph_new_value(g, hint, d)))
            return NULL;
    }
    char *name = arena_printf(g->arena, "%s_grad_%s", fwd->name, op_type);
    Node *n = name ? graph_add_node(g, op_type, domain, name, nin, in, nout, outs, d) : NULL;
    if (!n) {
        diag_error(d, ST_NOMEM, "out of memory building the backward pass");
        return NULL;
    }
    n->phase = PHASE_BACKWARD;
    n->opset = n->rule ? n->rule->canon_opset : 0;
    return n;
}

Status grad_finish_node(GradCtx *c, Node *n, Diag *d)
{
    return infer_node(c->g, n, d);
}

Node *grad_add_node(GradCtx *c, const Node *fwd, const char *domain, const char *op_type, int nin,
                    Value *const *in, int nout, Diag *d)
{
    Node *n = grad_new_node(c, fwd, domain, op_type, nin, in, nout, d);
    if (n && grad_finish_node(c, n, d) != ST_OK)
        return NULL;
    return n;
}

Value *grad_unbroadcast(GradCtx *c, const Node *fwd, Value *g, const Shape *shape, Diag *d)
{
    const Shape *gs = &g->shape;
    if (shape_equal(gs, shape))
        return g;
    if (!shape_is_static(gs) || !shape_is_static(shape) || shape->rank > gs->rank) {
        char a[128], b[128];
        diag_node(d, fwd, ST_SHAPE, "cannot reduce gradient %s to input shape %s (shapes must be static "
                  "for training: pass --batch)", shape_str(gs, a, sizeof a), shape_str(shape, b, sizeof b));
        return NULL;
    }
    int64_t axes[IR_MAX_RANK];
    size_t naxes = 0;
    int lead = gs->rank - shape->rank;
    for (int i = 0; i < gs->rank; i++)
        if (i < lead || (shape->dim[i - lead] == 1 && gs->dim[i] != 1))
            axes[naxes++] = i;
    Value *cur = g;
    if (naxes) {
        Value *ax = graph_const_ints(c->g, "grad_axes", axes, naxes, d);
        if (!ax)
            return NULL;
        Value *in[2] = {g, ax};
        Node *r = grad_new_node(c, fwd, "", "ReduceSum", 2, in, 1, d);
        if (!r || node_set_attr_int(c->g, r, "keepdims", 0, d) || grad_finish_node(c, r, d))
            return NULL;
        cur = r->outputs[0];
    }
    if (!shape_equal(&cur->shape, shape)) {
        Value *target = graph_const_ints(c->g, "grad_shape", shape->dim, (size_t)shape->rank, d);
        if (!target)
            return NULL;
        Value *in[2] = {cur, target};
        Node *r = grad_add_node(c, fwd, "", "Reshape", 2, in, 1, d);
        if (!r)
            return NULL;
        cur = r->outputs[0];
    }
    return cur;
}

bool grad_value_needed(GradCtx *c, const Value *v)
{
    return is_fwd(c, v) && c->needs[v->id] && c->reaches[v->id] && dtype_is_float(v->dtype);
}

Status grad_accumulate(GradCtx *c, const Node *n, int i, Value *g, Diag *d)
{
    return grad_accumulate_value(c, n, node_input(n, i), g, d);
}

Status grad_accumulate_value(GradCtx *c, const Node *n, Value *v, Value *g, Diag *d)
{
    if (!g || !grad_value_needed(c, v))
        return ST_OK;
    if (!shape_equal(&g->shape, &v->shape)) {
        char a[128], b[128];
        return diag_node(d, n, ST_ERR, "internal: gradient for '%s' has shape %s, the value %s", v->name,
                         shape_str(&g->shape, a, sizeof a), shape_str(&v->shape, b, sizeof b));
    }
    Value *prev = c->grad[v->id];
    if (!prev) {
        c->grad[v->id] = g;
        return ST_OK;
    }
    Value *in[2] = {prev, g};
    Node *add = grad_add_node(c, n, "", "Add", 2, in, 1, d);
    if (!add)
        return d->status;
    c->grad[v->id] = add->outputs[0];
    return ST_OK;
}

#define MAX_READS 256

/* What n reads: its inputs and what its subgraphs (If branches, loop bodies) read from outside. */
static size_t node_all_reads(const Node *n, Value **out)
{
    size_t k = 0;
    for (int i = 0; i < n->ninputs && k < MAX_READS; i++)
        out[k++] = n->inputs[i];
    if (n->nattrs) {
        Value *cap[MAX_READS];
        size_t nc = node_captures(n, cap, MAX_READS);
        for (size_t i = 0; i < nc && i < MAX_READS && k < MAX_READS; i++)
            out[k++] = cap[i];
    }
    return k;
}

/* needs[]: forward from the values that train (seeded by the caller); reaches[]: backward from the
 * values whose gradient is seeded. */
static void mark_activity(GradCtx *c)
{
    Graph *g = c->g;
    Value *reads[MAX_READS];
    for (size_t k = 0; k < g->nnodes; k++) {
        Node *n = g->nodes[k];
        bool any = false;
        size_t nr = node_all_reads(n, reads);
        for (size_t i = 0; i < nr; i++)
            any = any || (is_fwd(c, reads[i]) && c->needs[reads[i]->id]);
        for (int i = 0; any && i < n->noutputs; i++)
            if (is_fwd(c, n->outputs[i]))
                c->needs[n->outputs[i]->id] = true;
    }
    for (size_t k = g->nnodes; k-- > 0;) {
        Node *n = g->nodes[k];
        bool any = false;
        for (int i = 0; i < n->noutputs; i++)
            any = any || (is_fwd(c, n->outputs[i]) && c->reaches[n->outputs[i]->id]);
        size_t nr = any ? node_all_reads(n, reads) : 0;
        for (size_t i = 0; i < nr; i++)
            if (is_fwd(c, reads[i]))
                c->reaches[reads[i]->id] = true;
    }
}

/* Name a trainable parameter upstream of a value, for error messages. */
static const char *some_param_of(const GradCtx *c, const Node *n)
{
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (!is_fwd(c, v) || !c->needs[v->id])
            continue;
        if (v->trainable)
            return v->name;
        if (v->producer) {
            const char *p = some_param_of(c, v->producer);
            if (p)
                return p;
        }
    }
    return "?";
}

/* Walk the forward nodes backwards calling their gradient rules; backward nodes appended meanwhile are
 * not visited. */
static Status walk_backward(GradCtx *c, Diag *d)
{
    Graph *g = c->g;
    size_t nfwd_nodes = g->nnodes;
    Value *reads[MAX_READS];
    for (size_t k = nfwd_nodes; k-- > 0;) {
        Node *n = g->nodes[k];
        if (n->dead || n->phase == PHASE_BACKWARD || n->phase == PHASE_OPTIMIZER)
            continue;
        bool flows = false, wanted = false;
        for (int i = 0; i < n->noutputs; i++)
            flows = flows || grad_output(c, n, i);
        size_t nr = node_all_reads(n, reads);
        for (size_t i = 0; i < nr; i++)
            wanted = wanted || grad_value_needed(c, reads[i]);
        if (!flows || !wanted)
            continue;
        if (!n->rule || !n->rule->grad)
            return diag_node(d, n, ST_UNSUPPORTED, "no gradient rule for %s, which lies between trainable "
                             "parameter '%s' and the loss (freeze what is upstream of it)", n->op_type,
                             some_param_of(c, n));
        Status st = n->rule->grad(c, n, d);
        if (st)
            return st;
    }
    return ST_OK;
}

Status grad_subgraph(Graph *body, Value *const *seeds, Value *const *wrt, size_t nwrt, Value **grads, Diag *d)
{
    GradCtx c = {.g = body, .nfwd = body->nvalues};
    c.needs = calloc(c.nfwd ? c.nfwd : 1, sizeof *c.needs);
    c.reaches = calloc(c.nfwd ? c.nfwd : 1, sizeof *c.reaches);
    c.grad = calloc(c.nfwd ? c.nfwd : 1, sizeof *c.grad);
    Status st = ST_OK;
    if (!c.needs || !c.reaches || !c.grad) {
        st = diag_error(d, ST_NOMEM, "out of memory in autodiff");
        goto done;
    }
    for (size_t j = 0; j < nwrt; j++)
        if (is_fwd(&c, wrt[j]))
            c.needs[wrt[j]->id] = true;
    for (size_t i = 0; i < body->noutputs; i++)
        if (seeds[i] && is_fwd(&c, body->outputs[i]))
            c.reaches[body->outputs[i]->id] = true;
    mark_activity(&c);
    for (size_t i = 0; i < body->noutputs; i++) {
        Value *o = body->outputs[i], *prev;
        if (!seeds[i] || !is_fwd(&c, o))
            continue;
        prev = c.grad[o->id];
        if (!prev) {
            c.grad[o->id] = seeds[i];
            continue;
        }
        Node *add = graph_add_node(body, "Add", "", "grad_seed_sum", 2, (Value *[]){prev, seeds[i]}, 1,
                                   (Value *[]){graph_new_value(body, "grad_seed_sum", d)}, d);
        if (!add || (st = infer_node(body, add, d)))
            goto done;
        add->phase = PHASE_BACKWARD;
        c.grad[o->id] = add->outputs[0];
    }
    if ((st = walk_backward(&c, d)))
        goto done;
    for (size_t j = 0; j < nwrt; j++)
        grads[j] = is_fwd(&c, wrt[j]) ? c.grad[wrt[j]->id] : NULL;
done:
    free(c.needs);
    free(c.reaches);
    free(c.grad);
    return st;
}

Status pass_autodiff(Graph *g, Value *loss, Gradients *out, Diag *d)
{
    memset(out, 0, sizeof *out);
    if (!loss || graph_find_local(g, loss->name) != loss)
        return diag_error(d, ST_ERR, "internal: autodiff needs a loss value of the graph");
    if (!dtype_is_float(loss->dtype) || loss->shape.rank != 0)
        return diag_error(d, ST_SHAPE, "the loss '%s' must be a float scalar", loss->name);
    GradCtx c = {.g = g, .nfwd = g->nvalues};
    c.needs = calloc(c.nfwd, sizeof *c.needs);
    c.reaches = calloc(c.nfwd, sizeof *c.reaches);
    c.grad = calloc(c.nfwd, sizeof *c.grad);
    Status st = ST_OK;
    if (!c.needs || !c.reaches || !c.grad) {
        st = diag_error(d, ST_NOMEM, "out of memory in autodiff");
        goto done;
    }
    for (size_t i = 0; i < c.nfwd; i++)
        c.needs[i] = g->values[i]->trainable;
    c.reaches[loss->id] = true;
    mark_activity(&c);
    Value *seed = graph_const_scalar(g, "loss_grad_seed", loss->dtype, 1.0, d);
    if (!seed) {
        st = d->status;
        goto done;
    }
    c.grad[loss->id] = seed;
    if ((st = walk_backward(&c, d)))
        goto done;
    /* collect parameter gradients */
    size_t np = 0;
    for (size_t i = 0; i < c.nfwd; i++)
        np += g->values[i]->trainable && c.grad[i];
    out->params = arena_calloc(g->arena, np ? np : 1, sizeof(Value *));
    out->grads = arena_calloc(g->arena, np ? np : 1, sizeof(Value *));
    if (!out->params || !out->grads) {
        st = diag_error(d, ST_NOMEM, "out of memory in autodiff");
        goto done;
    }
    for (size_t i = 0; i < c.nfwd; i++)
        if (g->values[i]->trainable && c.grad[i]) {
            out->params[out->n] = g->values[i];
            out->grads[out->n++] = c.grad[i];
        }
    if (out->n == 0)
        st = diag_error(d, ST_INVALID, "no trainable parameter affects the loss '%s'", loss->name);
done:
    free(c.needs);
    free(c.reaches);
    free(c.grad);
    return st;
}
