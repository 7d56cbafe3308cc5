/* ops_control.c - rules of the control-flow ops If, Loop and Scan: their bodies are inferred with
 * infer_graph, an If whose condition is constant is replaced by its chosen branch (inlined into the
 * enclosing graph), and loop-carried shapes are widened until the body agrees with itself.
 * Loop and Scan bodies are never folded: a shape that holds for one iteration need not hold for all. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

/* The most specific shape both a and b fit: equal dims stay, others become unknown. */
static Shape shape_join(const Shape *a, const Shape *b)
{
    if (a->rank < 0 || b->rank < 0 || a->rank != b->rank)
        return shape_unknown();
    Shape s = *a;
    for (int i = 0; i < a->rank; i++)
        if (!dim_same(a, i, b, i))
            s.dim[i] = -1, s.sym[i] = NULL;
    return s;
}

/* Same rank, dims and symbols (unknown dims without a symbol count as equal here). */
static bool shape_identical(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++) {
        const char *x = a->sym[i], *y = b->sym[i];
        if (a->dim[i] != b->dim[i] || (!x) != (!y) || (x && strcmp(x, y) != 0))
            return false;
    }
    return true;
}

static Graph *graph_attr(const Node *n, const char *name, Diag *d)
{
    const Attr *a = node_attr(n, name);
    if (!a || a->type != AT_GRAPH || !a->g) {
        diag_node(d, n, ST_INVALID, "attribute %s (a graph) is required", name);
        return NULL;
    }
    return a->g;
}

/* The whole type (a sequence's or optional's too), with `s` as the shape when given. */
static void set_value_type(Value *o, const Value *from, const Shape *s)
{
    value_copy_type(o, from);
    if (s)
        o->shape = *s;
}

/* A body's value types before inference, so a re-run with wider inputs starts from the declarations
 * (infer_node treats a value's current shape as declared). */
typedef struct Saved {
    size_t n;
    DType *dtype;
    Shape *shape;
    bool *had_init;
} Saved;

static Status save_types(Arena *a, const Node *n, Graph *body, Saved *sv, Diag *d)
{
    sv->n = body->nvalues;
    sv->dtype = arena_calloc(a, sv->n ? sv->n : 1, sizeof *sv->dtype);
    sv->shape = arena_calloc(a, sv->n ? sv->n : 1, sizeof *sv->shape);
    sv->had_init = arena_calloc(a, sv->n ? sv->n : 1, sizeof *sv->had_init);
    if (!sv->dtype || !sv->shape || !sv->had_init)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < sv->n; i++) {
        sv->dtype[i] = body->values[i]->dtype;
        sv->shape[i] = body->values[i]->shape;
        sv->had_init[i] = body->values[i]->init != NULL;
    }
    return ST_OK;
}

static void restore_types(Graph *body, const Saved *sv)
{
    for (size_t i = 0; i < sv->n && i < body->nvalues; i++) {
        Value *v = body->values[i];
        if (!v->producer)
            continue;
        v->dtype = sv->dtype[i];
        v->shape = sv->shape[i];
        if (!sv->had_init[i])
            v->init = NULL;
    }
}

/* Infer a subgraph the way the walk that reached this node would (folding only where it is safe). */
static Status infer_body(Graph *body, bool fold, Diag *d)
{
    ShapeOptions opt = {.fold = fold};
    for (const Graph *p = body->parent; p; p = p->parent)
        if (p->shape_opt) {
            opt.allow_unknown_ops = p->shape_opt->allow_unknown_ops;
            opt.keep_params = p->shape_opt->keep_params;
            break;
        }
    return infer_graph(body, &opt, d);
}

/* ---- If (1, 11, 13, 16): cond (one bool) -> then_branch or else_branch outputs ---- */

/* Replace If node n by the nodes of `branch`, right after n in g's order so the walk infers them next;
 * Identity nodes write the If's own outputs so their names (maybe graph outputs) survive. */
static Status inline_branch(Graph *g, Node *n, Graph *branch, Diag *d)
{
    size_t first = g->nnodes;
    Value **outs = arena_calloc(g->arena, branch->noutputs ? branch->noutputs : 1, sizeof *outs);
    if (!outs)
        return diag_node(d, n, ST_NOMEM, "out of memory inlining a branch");
    Status st = graph_clone_body(g, n, branch, NULL, outs, d);
    for (int i = 0; !st && i < n->noutputs; i++)
        st = graph_add_identity(g, n, outs[i], n->outputs[i], d);
    return st ? st : graph_move_after(g, n, first, d);
}

/* Branches whose outputs differ in shape: what reads the If's outputs is copied into both branches (each
 * then has static shapes) until what leaves the If is the graph's outputs, which must agree. A new If
 * after the last node moved replaces n (the walk infers it there); n is dead. Returns *sunk = false when
 * nothing reads the outputs. */
static Status sink_into_branches(Graph *g, Node *n, Graph *const *br, bool *sunk, Diag *d)
{
    *sunk = false;
    size_t nv = g->nvalues, nn = g->nnodes, pos = 0, last = 0, nout = 0;
    bool *dep = calloc(nv ? nv : 1, sizeof *dep), *moved = calloc(nn ? nn : 1, sizeof *moved);
    Value **outs = calloc(g->noutputs + 1, sizeof *outs), *reads[256];
    Status st = ST_OK;
    if (!dep || !moved || !outs) {
        st = diag_node(d, n, ST_NOMEM, "out of memory");
        goto done;
    }
    while (pos < nn && g->nodes[pos] != n)
        pos++;
    for (int i = 0; i < n->noutputs; i++)
        dep[n->outputs[i]->id] = true;
    for (size_t k = pos + 1; k < nn; k++) {
        Node *m = g->nodes[k];
        if (m->dead)
            continue;
        size_t nr = 0;
        for (int i = 0; i < m->ninputs && nr < 256; i++)
            reads[nr++] = m->inputs[i];
        if (m->nattrs && nr < 256)
            nr += node_captures(m, reads + nr, 256 - nr);
        bool hit = false;
        for (size_t i = 0; i < nr && i < 256 && !hit; i++)
            hit = reads[i] && reads[i]->id >= 0 && (size_t)reads[i]->id < nv && g->values[reads[i]->id] == reads[i] &&
                  dep[reads[i]->id];
        if (!hit)
            continue;
        moved[k] = true, last = k;
        for (int i = 0; i < m->noutputs; i++)
            dep[m->outputs[i]->id] = true;
    }
    if (!last)
        goto done;
    for (size_t i = 0; i < g->noutputs; i++) {
        Value *v = g->outputs[i];
        bool seen = false;
        for (size_t j = 0; j < nout; j++)
            seen = seen || outs[j] == v;
        if (!seen && v->id >= 0 && (size_t)v->id < nv && g->values[v->id] == v && dep[v->id])
            outs[nout++] = v;
    }
    if (nout == 0 || nout > 64) {
        st = diag_node(d, n, ST_UNSUPPORTED, "branches give outputs of different shapes and what reads them "
                       "reaches %zu graph outputs", nout);
        goto done;
    }
    Graph *nb[2];
    for (int b = 0; b < 2 && !st; b++) {
        Value **map = arena_calloc(g->arena, nv ? nv : 1, sizeof *map);
        if (!map || !(nb[b] = graph_new(g->arena, br[b]->name, g))) {
            st = diag_node(d, n, ST_NOMEM, "out of memory");
            break;
        }
        /* the branch itself, then the nodes that read its outputs */
        Value **bo = arena_calloc(g->arena, br[b]->noutputs + 1, sizeof *bo);
        if (!bo || (st = graph_clone_body(nb[b], n, br[b], NULL, bo, d)))
            break;
        for (int i = 0; i < n->noutputs; i++)
            map[n->outputs[i]->id] = bo[i];
        for (size_t k = pos + 1; k <= last && !st; k++)
            for (int i = 0; moved[k] && i < g->nodes[k]->noutputs; i++) {
                Value *o = g->nodes[k]->outputs[i], *c = graph_new_value(nb[b], o->name, d);
                if (!c)
                    st = d->status;
                else
                    map[o->id] = c;
            }
        CopyScope sc = {.src = g, .map = map, .outer = NULL};
        if (st || (st = graph_copy_nodes(nb[b], n, g, &sc, moved, d)))
            break;
        for (size_t j = 0; j < nout; j++)
            if (!graph_add_output(nb[b], copy_scope_map(&sc, outs[j]))) {
                st = diag_node(d, n, ST_NOMEM, "out of memory");
                break;
            }
    }
    if (st)
        goto done;
    for (size_t k = pos + 1; k <= last; k++)
        if (moved[k])
            g->nodes[k]->dead = true;
    size_t first = g->nnodes;
    Node *ni = graph_add_node(g, "If", "", n->name, 1, n->inputs, (int)nout, outs, d);
    if (!ni || !node_add_attr(g, ni, &(Attr){.name = "then_branch", .type = AT_GRAPH, .g = nb[0]}) ||
        !node_add_attr(g, ni, &(Attr){.name = "else_branch", .type = AT_GRAPH, .g = nb[1]})) {
        st = d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
        goto done;
    }
    ni->opset = n->opset, ni->phase = n->phase;
    if ((st = graph_move_after(g, g->nodes[last], first, d)))
        goto done;
    g->nodes[last]->dead = true; /* move_after marks its anchor dead: that one was moved (dead) anyway */
    n->dead = true;
    *sunk = true;
done:
    free(dep);
    free(moved);
    free(outs);
    return st;
}

static Status if_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    Graph *br[2] = {graph_attr(n, "then_branch", d), graph_attr(n, "else_branch", d)};
    if (!br[0] || !br[1])
        return d->status;
    const char *names[2] = {"then_branch", "else_branch"};
    for (int b = 0; b < 2; b++)
        if (br[b]->noutputs != (size_t)n->noutputs)
            return diag_node(d, n, ST_INVALID, "%s has %zu outputs but the If has %d", names[b], br[b]->noutputs,
                             n->noutputs);
    const Value *cond = n->inputs[0];
    int chosen = -1;
    if (value_is_const(cond)) {
        if (cond->init->numel != 1)
            return diag_node(d, n, ST_SHAPE, "input 0 (cond) must hold one element, not %zu", cond->init->numel);
        chosen = tensor_get_i64(cond->init, 0) ? 0 : 1;
    }
    for (int b = 0; b < 2; b++)
        if ((chosen < 0 || chosen == b) && (st = infer_body(br[b], true, d)))
            return st;
    for (int i = 0; chosen < 0 && i < n->noutputs; i++) {
        const Shape *a = &br[0]->outputs[i]->shape, *b = &br[1]->outputs[i]->shape;
        if (shape_is_static(a) && shape_is_static(b) && !shape_equal(a, b)) {
            bool sunk;
            if ((st = sink_into_branches(g, n, br, &sunk, d)))
                return st;
            if (sunk)
                return ST_OK;
            break;
        }
    }
    for (int i = 0; i < n->noutputs; i++) {
        const Value *a = br[0]->outputs[i], *b = br[1]->outputs[i];
        if (chosen >= 0) {
            set_value_type(n->outputs[i], br[chosen]->outputs[i], NULL);
            continue;
        }
        if (a->kind != b->kind || (a->dtype && b->dtype && a->dtype != b->dtype))
            return diag_node(d, n, ST_SHAPE, "output %d is %s in then_branch but %s in else_branch", i,
                             a->kind != b->kind ? (a->kind == VK_TENSOR ? "a tensor" : "not a tensor")
                                                : dtype_name(a->dtype),
                             a->kind != b->kind ? (b->kind == VK_TENSOR ? "a tensor" : "not a tensor")
                                                : dtype_name(b->dtype));
        Shape s = shape_join(&a->shape, &b->shape);
        set_value_type(n->outputs[i], a->dtype ? a : b, &s);
        if (a->kind != VK_TENSOR && !value_same_seq_type(a, b)) {
            /* the type would depend on cond at run time: unknown, which code generation refuses */
            n->outputs[i]->seq = NULL;
            n->outputs[i]->opt = OPT_UNKNOWN;
        }
    }
    return chosen >= 0 ? inline_branch(g, n, br[chosen], d) : ST_OK;
}

/* The If's backward, quoting the forward: outputs = cond ? then_branch() : else_branch(), where the
 * branches read outer values x_j. Its backward is an If on the same cond whose branches recompute
 * their forward branch (its values are gone once the forward If has run) and differentiate it: they
 * return dL/dx_j for every captured x_j that needs a gradient (zeros where a branch does not read it). */
#define IF_GRAD_MAX 256

static Status if_grad_branch(GradCtx *c, Node *n, Graph *fwd, const char *which, Value *const *wrt, int nw,
                             Value *const *dy, Graph **out, Diag *d)
{
    Graph *g = grad_graph(c);
    Graph *bg = graph_new(g->arena, arena_printf(g->arena, "%s_grad_%s", n->name, which), g);
    if (!bg)
        return diag_node(d, n, ST_NOMEM, "out of memory building the backward of a branch");
    Value **outs = arena_calloc(g->arena, fwd->noutputs + 1, sizeof *outs);
    Value **loc = arena_calloc(g->arena, (size_t)nw + 1, sizeof *loc);
    Value **grads = arena_calloc(g->arena, (size_t)nw + 1, sizeof *grads);
    if (!outs || !loc || !grads)
        return diag_node(d, n, ST_NOMEM, "out of memory building the backward of a branch");
    Status st = graph_clone_body(bg, n, fwd, NULL, outs, d);
    if (st)
        return st;
    for (size_t i = 0; i < fwd->noutputs; i++) { /* local outputs, so their gradients are seeded here */
        Value *o = graph_new_value(bg, "branch_out", d);
        if (!o || (st = graph_add_identity(bg, n, outs[i], o, d)) || !graph_add_output(bg, o))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    }
    for (int j = 0; j < nw; j++) { /* local copies of the captured values: the gradients' targets */
        if (!(loc[j] = graph_new_value(bg, wrt[j]->name, d)))
            return d->status;
        graph_replace_uses(bg, wrt[j], loc[j]);
        if ((st = graph_add_identity(bg, n, wrt[j], loc[j], d)))
            return st;
    }
    if ((st = graph_toposort(bg, d)))
        return st;
    for (size_t i = 0; i < bg->nnodes; i++)
        if ((st = infer_node(bg, bg->nodes[i], d)))
            return st;
    if ((st = grad_subgraph(bg, dy, loc, (size_t)nw, grads, d)))
        return st;
    for (size_t i = 0; i < bg->noutputs; i++)
        bg->outputs[i]->is_output = false;
    bg->noutputs = 0;
    for (int j = 0; j < nw; j++) {
        Value *gj = grads[j], *o = graph_new_value(bg, "grad", d);
        if (!o)
            return d->status;
        if (!gj && !(gj = graph_const(bg, "zero_grad", wrt[j]->dtype, &wrt[j]->shape, d)))
            return d->status;
        if ((st = graph_add_identity(bg, n, gj, o, d)) || (st = infer_node(bg, bg->nodes[bg->nnodes - 1], d)))
            return st;
        if (!graph_add_output(bg, o))
            return diag_node(d, n, ST_NOMEM, "out of memory");
    }
    graph_remove_unused(bg);
    *out = bg;
    return ST_OK;
}

static Status if_grad(GradCtx *c, Node *n, Diag *d)
{
    Value *caps[IF_GRAD_MAX], *wrt[IF_GRAD_MAX], *dy[64];
    size_t ncap = node_captures(n, caps, IF_GRAD_MAX);
    if (ncap > IF_GRAD_MAX || n->noutputs > 64)
        return diag_node(d, n, ST_UNSUPPORTED, "too many values for the gradient of an If");
    int nw = 0;
    for (size_t i = 0; i < ncap; i++)
        if (grad_value_needed(c, caps[i]))
            wrt[nw++] = caps[i];
    if (nw == 0)
        return ST_OK;
    for (int i = 0; i < n->noutputs; i++)
        dy[i] = grad_output(c, n, i);
    Graph *br[2] = {node_attr(n, "then_branch")->g, node_attr(n, "else_branch")->g}, *bw[2];
    Status st;
    for (int b = 0; b < 2; b++)
        if ((st = if_grad_branch(c, n, br[b], b ? "else" : "then", wrt, nw, dy, &bw[b], d)))
            return st;
    Node *bn = grad_new_node(c, n, "", "If", 1, &n->inputs[0], nw, d);
    if (!bn)
        return d->status;
    static const char *const names[2] = {"then_branch", "else_branch"};
    for (int b = 0; b < 2; b++)
        if (!node_add_attr(grad_graph(c), bn, &(Attr){.name = names[b], .type = AT_GRAPH, .g = bw[b]}))
            return diag_node(d, n, ST_NOMEM, "out of memory");
    if ((st = grad_finish_node(c, bn, d)))
        return st;
    for (int j = 0; j < nw; j++)
        if ((st = grad_accumulate_value(c, n, wrt[j], bn->outputs[j], d)))
            return st;
    return ST_OK;
}

/* ---- Loop (1, 11, 13, 16): (M, cond, v_initial...) -> (v_final..., scan_outputs...) ----
 * body: (iteration_num, cond, v...) -> (cond, v..., scan...) */

/* A Loop whose trip count is known at compile time and that cannot stop early is unrolled (up to these
 * sizes): each iteration's copy folds with its iteration number, and gradients flow through it. */
#define LOOP_UNROLL_MAX 64          /* iterations */
#define LOOP_UNROLL_NODES 4096      /* body nodes times iterations */

/* Widen the carried inputs of `body` (from body input `first`, `count` of them) until the body
 * returns what it receives (from body output `out_first`). Leaves body inferred. */
static Status infer_carried(Graph *g, Node *n, Graph *body, int first, int out_first, int count, Diag *d)
{
    Saved sv;
    Status st = save_types(g->arena, n, body, &sv, d);
    if (st)
        return st;
    for (int round = 0;; round++) {
        if ((st = infer_body(body, false, d)))
            return st;
        bool changed = false;
        for (int i = 0; i < count; i++) {
            Value *in = body->inputs[first + i];
            const Value *out = body->outputs[out_first + i];
            Shape s = shape_join(&in->shape, &out->shape);
            if (round >= 3 && !shape_identical(&s, &in->shape))
                s = shape_unknown(); /* still moving: give up on it */
            if (out->dtype && in->dtype && out->dtype != in->dtype)
                return diag_node(d, n, ST_SHAPE, "loop-carried value %d enters the body as %s but leaves as %s", i,
                                 dtype_name(in->dtype), dtype_name(out->dtype));
            if ((in->kind != VK_TENSOR || out->kind != VK_TENSOR) && !value_same_seq_type(in, out)) {
                char ti[128], to[128];
                bool loop = strcmp(n->op_type, "Loop") == 0;
                const Value *m = loop ? node_input(n, 0) : NULL;
                return diag_node(d, n, ST_UNSUPPORTED, "loop-carried value %d enters the body as %s but leaves as %s:"
                                 " a type that changes per iteration needs the body unrolled (a constant trip count"
                                 " up to %d, no early stop)%s", i, value_type_str(in, ti, sizeof ti),
                                 value_type_str(out, to, sizeof to), LOOP_UNROLL_MAX,
                                 !loop || value_is_const(m) ? "" : "; its trip count is not constant");
            }
            if (!shape_identical(&s, &in->shape)) {
                in->shape = s;
                changed = true;
            }
        }
        if (!changed)
            return ST_OK;
        if (round >= 4)
            return diag_node(d, n, ST_ERR, "internal: loop-carried shapes do not settle");
        restore_types(body, &sv);
    }
}


/* Whether body output 0 (cond) is always true given a true cond input: the input passed through
 * (maybe by Identity) or a constant true. */
static bool body_keeps_going(const Graph *body)
{
    const Value *c = body->outputs[0];
    for (int hop = 0; hop < 4 && c->producer && !c->producer->dead; hop++) {
        const Node *p = c->producer;
        if (strcmp(p->op_type, "Identity") == 0 && p->ninputs == 1 && p->inputs[0]) {
            c = p->inputs[0];
            continue;
        }
        if (strcmp(p->op_type, "Constant") == 0) {
            const Attr *a = node_attr(p, "value");
            return a && a->type == AT_TENSOR && a->t && a->t->numel == 1 && tensor_get_i64(a->t, 0) != 0;
        }
        break;
    }
    if (c == body->inputs[1])
        return true;
    return value_is_const(c) && c->init->numel == 1 && tensor_get_i64(c->init, 0);
}

/* The trip count when the Loop can be unrolled, else -1. */
static int64_t unroll_trips(const Node *n, const Graph *body, int nscan)
{
    const Value *m = node_input(n, 0), *c = node_input(n, 1);
    if (!value_is_const(m) || m->init->numel != 1)
        return -1;
    int64_t trips = tensor_get_i64(m->init, 0);
    if (trips < (nscan ? 1 : 0) || trips > LOOP_UNROLL_MAX || (size_t)trips * body->nnodes > LOOP_UNROLL_NODES)
        return -1;
    if (c && !(value_is_const(c) && c->init->numel == 1 && tensor_get_i64(c->init, 0)))
        return -1;
    if (c && !body_keeps_going(body))
        return -1;
    return trips;
}

/* Replace Loop n by `trips` copies of its body; scan outputs are the copies' Unsqueezed and Concat'ed. */
static Status unroll_loop(Graph *g, Node *n, Graph *body, int64_t trips, Diag *d)
{
    int nc = n->ninputs - 2, nscan = n->noutputs - nc;
    size_t first = g->nnodes;
    Value **in = arena_calloc(g->arena, (size_t)nc + 2, sizeof *in);
    Value **outs = arena_calloc(g->arena, body->noutputs, sizeof *outs);
    Value **scans = arena_calloc(g->arena, (size_t)nscan * (size_t)trips + 1, sizeof *scans);
    int64_t zero = 0;
    Value *yes = graph_const_scalar(g, "loop_cond", DT_BOOL, 1, d), *axis0 = graph_const_ints(g, "axes", &zero, 1, d);
    if (!in || !outs || !scans)
        return diag_node(d, n, ST_NOMEM, "out of memory unrolling a Loop");
    if (!yes || !axis0)
        return d->status;
    Status st;
    for (int k = 0; k < nc; k++)
        in[2 + k] = n->inputs[2 + k];
    for (int64_t t = 0; t < trips; t++) {
        in[0] = graph_const_scalar(g, "iter", DT_INT64, (double)t, d);
        in[1] = yes;
        if (!in[0])
            return d->status;
        if ((st = graph_clone_body(g, n, body, in, outs, d)))
            return st;
        for (int k = 0; k < nc; k++)
            in[2 + k] = outs[1 + k];
        for (int s = 0; s < nscan; s++) {
            Value *u = graph_new_value(g, "scan_row", d), *ui[2] = {outs[1 + nc + s], axis0};
            if (!u || !graph_add_node(g, "Unsqueeze", "", n->name, 2, ui, 1, &u, d))
                return d->status;
            g->nodes[g->nnodes - 1]->opset = 17, g->nodes[g->nnodes - 1]->phase = n->phase;
            scans[(size_t)s * (size_t)trips + (size_t)t] = u;
        }
    }
    for (int k = 0; k < nc; k++)
        if ((st = graph_add_identity(g, n, in[2 + k], n->outputs[k], d)))
            return st;
    for (int s = 0; s < nscan; s++) {
        Node *cat = graph_add_node(g, "Concat", "", n->name, (int)trips, scans + (size_t)s * (size_t)trips, 1,
                                   &n->outputs[nc + s], d);
        if (!cat)
            return d->status;
        cat->opset = 17, cat->phase = n->phase;
        if ((st = node_set_attr_int(g, cat, "axis", 0, d)))
            return st;
    }
    return graph_move_after(g, n, first, d);
}

static Status loop_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    Graph *body = graph_attr(n, "body", d);
    if (!body)
        return d->status;
    int nc = n->ninputs - 2, nscan = n->noutputs - nc;
    if (nscan < 0 || body->ninputs != (size_t)nc + 2 || body->noutputs != (size_t)(1 + nc + nscan))
        return diag_node(d, n, ST_INVALID, "body has %zu inputs and %zu outputs; with %d loop-carried values and "
                         "%d outputs it needs %d and %d", body->ninputs, body->noutputs, nc, n->noutputs, nc + 2,
                         1 + n->noutputs);
    int64_t unroll = unroll_trips(n, body, nscan);
    if (unroll >= 0)
        return unroll_loop(g, n, body, unroll, d);
    Shape sc = shape_scalar();
    body->inputs[0]->kind = VK_TENSOR, body->inputs[0]->dtype = DT_INT64, body->inputs[0]->shape = sc;
    body->inputs[1]->kind = VK_TENSOR, body->inputs[1]->dtype = DT_BOOL, body->inputs[1]->shape = sc;
    for (int i = 0; i < nc; i++) {
        const Value *v = n->inputs[2 + i];
        if (!v)
            return diag_node(d, n, ST_INVALID, "loop-carried input %d is missing", 2 + i);
        Value *b = body->inputs[2 + i];
        DType declared = b->dtype;
        value_copy_type(b, v); /* a sequence's or optional's type too */
        if (!v->dtype)
            b->dtype = declared;
    }
    if ((st = infer_carried(g, n, body, 2, 1, nc, d)))
        return st;
    /* the trip count is M when nothing can stop the loop early: no cond input (the body's cond is then
     * ignored), or a cond that is constant true both going in and coming out of the body */
    int64_t trips = -1;
    const Value *m = node_input(n, 0), *c = node_input(n, 1), *bc = body->outputs[0];
    if (value_is_const(m) && m->init->numel == 1) {
        bool always = !c || (value_is_const(c) && c->init->numel == 1 && tensor_get_i64(c->init, 0) &&
                             value_is_const(bc) && bc->init->numel == 1 && tensor_get_i64(bc->init, 0));
        if (always)
            trips = tensor_get_i64(m->init, 0);
    }
    for (int i = 0; i < nc; i++)
        set_value_type(n->outputs[i], body->inputs[2 + i], NULL);
    for (int k = 0; k < nscan; k++) {
        const Value *bo = body->outputs[1 + nc + k];
        if (bo->kind != VK_TENSOR)
            return diag_node(d, n, ST_UNSUPPORTED, "scan output %d of the body is not a tensor", k);
        Shape s = shape_unknown();
        if (bo->shape.rank >= 0) {
            if (bo->shape.rank + 1 > IR_MAX_RANK)
                return diag_node(d, n, ST_UNSUPPORTED, "scan output %d has rank %d, beyond the IR's limit", k,
                                 bo->shape.rank + 1);
            s = shape_make(bo->shape.rank + 1, NULL);
            s.dim[0] = trips < 0 ? -1 : trips;
            for (int j = 0; j < bo->shape.rank; j++)
                dim_copy(&s, j + 1, &bo->shape, j);
        }
        op_set_output(n, nc + k, bo->dtype, &s);
    }
    return ST_OK;
}

/* ---- Scan (9, 11 negative axes, 16): (state..., scan_in...) -> (state_final..., scan_out...) ----
 * body: (state..., scan_in slice...) -> (state..., scan_out element...) */

/* Scan-8 works on a batch: every input and output has the batch in front, scan inputs their steps next,
 * and the body sees one batch item. Without sequence_lens that is a Scan-9 over the batch whose body is a
 * Scan-9 over the steps:
 *   Scan-8(, s..., x...)  ->  Scan-9[num_scan_inputs = all](s..., x...) { Scan-9(s_b..., x_b...) { body } } */
static Status scan_canon(Graph *g, Node *n, Diag *d)
{
    if (n->opset >= 9)
        return ST_OK;
    if (node_input(n, 0))
        return diag_node(d, n, ST_UNSUPPORTED, "Scan-8 with sequence_lens (steps per batch item) is not "
                         "supported; re-export at opset >= 9");
    Attr *ba = NULL;
    for (int k = 0; k < n->nattrs; k++)
        if (strcmp(n->attrs[k].name, "body") == 0 && n->attrs[k].type == AT_GRAPH && n->attrs[k].g)
            ba = &n->attrs[k];
    int64_t m = node_attr_int(n, "num_scan_inputs", -1);
    int nin = n->ninputs - 1;
    if (!ba || m < 1 || m > nin || n->noutputs < nin - m || n->noutputs > 64 || nin > 64)
        return diag_node(d, n, ST_INVALID, "Scan-8 needs a body and num_scan_inputs in 1..%d", nin);
    Graph *inner = ba->g, *outer = graph_new(g->arena, "scan8_batch_item", g);
    Value *ins[64], *outs[64];
    if (!outer)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    inner->parent = outer;
    for (int i = 0; i < nin; i++)
        if (!(ins[i] = graph_new_value(outer, "batch_item", d)) || !graph_add_input(outer, ins[i]))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    for (int k = 0; k < n->noutputs; k++)
        if (!(outs[k] = graph_new_value(outer, "batch_item_out", d)))
            return d->status;
    Node *s = graph_add_node(outer, "Scan", "", n->name, nin, ins, n->noutputs, outs, d);
    if (!s || !node_add_attr(outer, s, &(Attr){.name = "body", .type = AT_GRAPH, .g = inner}))
        return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    s->opset = 17;
    Status st = node_set_attr_int(outer, s, "num_scan_inputs", m, d);
    const Attr *dir = node_attr(n, "directions");
    if (!st && dir && dir->type == AT_INTS)
        st = node_set_attr_ints(outer, s, "scan_input_directions", dir->ints, dir->n, d);
    for (int k = 0; !st && k < n->noutputs; k++)
        if (!graph_add_output(outer, outs[k]))
            st = diag_node(d, n, ST_NOMEM, "out of memory");
    if (st)
        return st;
    n->inputs++, n->ninputs--;
    ba->g = outer;
    node_remove_attr(n, "directions");
    return node_set_attr_int(g, n, "num_scan_inputs", nin, d);
}

static Status scan_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    Graph *body = graph_attr(n, "body", d);
    if (!body)
        return d->status;
    int64_t m = node_attr_int(n, "num_scan_inputs", -1);
    if (m < 1 || m > n->ninputs)
        return diag_node(d, n, ST_INVALID, "attribute num_scan_inputs (%lld) must be in 1..%d", (long long)m,
                         n->ninputs);
    int ns = n->ninputs - (int)m, nk = n->noutputs - ns;
    if (nk < 0 || body->ninputs != (size_t)n->ninputs || body->noutputs != (size_t)n->noutputs)
        return diag_node(d, n, ST_INVALID, "body has %zu inputs and %zu outputs but the Scan has %d and %d",
                         body->ninputs, body->noutputs, n->ninputs, n->noutputs);
    if ((st = op_require_inputs(n, n->ninputs, d)))
        return st;
    IntList in_axes, out_axes;
    bool have_in = op_attr_ints(n, "scan_input_axes", &in_axes), have_out = op_attr_ints(n, "scan_output_axes", &out_axes);
    if ((have_in && in_axes.n != (size_t)m) || (have_out && out_axes.n != (size_t)nk))
        return diag_node(d, n, ST_INVALID, "scan_input_axes/scan_output_axes do not match the scan inputs/outputs");
    for (int i = 0; i < ns; i++) {
        const Value *v = n->inputs[i];
        Value *b = body->inputs[i];
        b->kind = v->kind;
        if (v->dtype)
            b->dtype = v->dtype;
        b->shape = v->shape;
    }
    int64_t seq = -1;
    const char *seq_sym = NULL;
    char a[160];
    for (int j = 0; j < m; j++) {
        const Value *v = n->inputs[ns + j];
        Value *b = body->inputs[ns + j];
        b->kind = VK_TENSOR;
        if (v->dtype)
            b->dtype = v->dtype;
        if (v->shape.rank < 0) {
            b->shape = shape_unknown();
            continue;
        }
        int ax;
        if ((st = op_axis(n, "scan_input_axes", have_in ? in_axes.v[j] : 0, v->shape.rank, &ax, d)))
            return st;
        int64_t len = v->shape.dim[ax];
        if (len >= 0 && seq >= 0 && len != seq)
            return diag_node(d, n, ST_SHAPE, "scan input %d shape %s has %lld steps but an earlier one has %lld",
                             ns + j, shape_str(&v->shape, a, sizeof a), (long long)len, (long long)seq);
        if (len >= 0)
            seq = len;
        else if (!seq_sym)
            seq_sym = v->shape.sym[ax];
        Shape s = shape_make(v->shape.rank - 1, NULL);
        for (int k = 0, o = 0; k < v->shape.rank; k++)
            if (k != ax)
                dim_copy(&s, o++, &v->shape, k);
        b->shape = s;
    }
    if ((st = infer_carried(g, n, body, 0, 0, ns, d)))
        return st;
    for (int i = 0; i < ns; i++)
        set_value_type(n->outputs[i], body->inputs[i], NULL);
    for (int k = 0; k < nk; k++) {
        const Value *bo = body->outputs[ns + k];
        if (bo->shape.rank < 0) {
            op_set_output(n, ns + k, bo->dtype, NULL);
            continue;
        }
        int r = bo->shape.rank + 1, ax;
        if (r > IR_MAX_RANK)
            return diag_node(d, n, ST_UNSUPPORTED, "scan output %d has rank %d, beyond the IR's limit", k, r);
        if ((st = op_axis(n, "scan_output_axes", have_out ? out_axes.v[k] : 0, r, &ax, d)))
            return st;
        Shape s = shape_make(r, NULL);
        for (int i = 0, j = 0; i < r; i++)
            if (i == ax) {
                s.dim[i] = seq;
                s.sym[i] = seq < 0 ? seq_sym : NULL;
            } else {
                dim_copy(&s, i, &bo->shape, j++);
            }
        op_set_output(n, ns + k, bo->dtype, &s);
    }
    return ST_OK;
}

/* ---- gradients of Loop and Scan ---- */

/* A new value of g produced by op(in...) (inferred). */
static Value *add_op(Graph *g, const Node *n, const char *op, int nin, Value *const *in, Diag *d)
{
    Value *o = graph_new_value(g, op, d);
    Node *m = o ? graph_add_node(g, op, "", n->name, nin, in, 1, &o, d) : NULL;
    if (!m)
        return NULL;
    m->opset = m->rule ? m->rule->canon_opset : 17;
    return infer_node(g, m, d) ? NULL : o;
}

/* Loop's backward when the trip count M is only known at run time, quoting the forward:
 *   for i in 0..M-1: v = body(i, v)           (no early exit, no scan outputs)
 * is a Loop of M iterations over k, i = M-1-k, that recomputes v_i with a Loop of i iterations of the body
 * (nothing is stored: O(M^2) body runs, no memory that grows with M) and pulls the gradient back through
 * one step of the body:  dv <- (d body / d v)^T dv,  dw += (d body / d w)^T dv  for values w the body reads
 * from outside. A Loop that can stop early (a while loop) or stacks scan outputs is refused. */
static Status loop_grad(GradCtx *c, Node *n, Diag *d)
{
    Graph *g = grad_graph(c), *body = node_attr(n, "body")->g;
    int nc = n->ninputs - 2, nscan = n->noutputs - nc;
    const Value *cond = node_input(n, 1);
    bool early = cond && !(value_is_const(cond) && cond->init->numel == 1 && tensor_get_i64(cond->init, 0) &&
                           body_keeps_going(body));
    if (early || nscan > 0 || !node_input(n, 0))
        return diag_node(d, n, ST_UNSUPPORTED, "gradients through a Loop that %s are not supported; freeze what "
                         "is upstream of it", early ? "can stop early (a while loop)"
                         : nscan ? "stacks scan outputs with a trip count known only at run time"
                                 : "has no trip count");
    Value *caps[IF_GRAD_MAX], *cw[IF_GRAD_MAX], *ins[IF_GRAD_MAX], *outs[IF_GRAD_MAX];
    size_t ncap = node_captures(n, caps, IF_GRAD_MAX);
    int ncw = 0;
    for (size_t i = 0; i < ncap && i < IF_GRAD_MAX; i++)
        if (grad_value_needed(c, caps[i]))
            cw[ncw++] = caps[i];
    if (ncap > IF_GRAD_MAX || 2 + nc + ncw > IF_GRAD_MAX || nc > 64)
        return diag_node(d, n, ST_UNSUPPORTED, "too many values for the gradient of a Loop");
    Value *m = n->inputs[0];
    Graph *b = graph_new(g->arena, arena_printf(g->arena, "%s_grad_body", n->name), g);
    if (!b)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    /* the backward body's inputs: k, cond, dv..., dw... */
    Value *bin[IF_GRAD_MAX];
    for (int i = 0; i < 2 + nc + ncw; i++) {
        const Value *like = i == 0 ? NULL : i == 1 ? NULL : i < 2 + nc ? n->outputs[i - 2] : cw[i - 2 - nc];
        if (!(bin[i] = graph_new_value(b, i == 0 ? "k" : i == 1 ? "cond" : i < 2 + nc ? "dv" : "dw", d)) ||
            !graph_add_input(b, bin[i]))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
        bin[i]->kind = VK_TENSOR;
        bin[i]->dtype = i == 0 ? DT_INT64 : i == 1 ? DT_BOOL : like->dtype;
        bin[i]->shape = i < 2 ? shape_scalar() : like->shape;
    }
    /* i = M - 1 - k; v_i: the forward body run i times from v_initial */
    Value *one = graph_const_scalar(b, "one", DT_INT64, 1, d), *yes = graph_const_scalar(b, "yes", DT_BOOL, 1, d);
    Value *m1 = one ? add_op(b, n, "Sub", 2, (Value *[]){m, one}, d) : NULL;
    Value *it = m1 ? add_op(b, n, "Sub", 2, (Value *[]){m1, bin[0]}, d) : NULL;
    if (!it || !yes)
        return d->status;
    Graph *rb = graph_copy_subgraph(b, n, body, NULL, d);
    if (!rb)
        return d->status;
    ins[0] = it, ins[1] = NULL;
    for (int k = 0; k < nc; k++) {
        ins[2 + k] = n->inputs[2 + k];
        if (!(outs[k] = graph_new_value(b, "v_i", d)))
            return d->status;
    }
    Node *re = graph_add_node(b, "Loop", "", n->name, 2 + nc, ins, nc, outs, d);
    if (!re || !node_add_attr(b, re, &(Attr){.name = "body", .type = AT_GRAPH, .g = rb}))
        return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    re->opset = 17;
    Status st = infer_node(b, re, d);
    if (st)
        return st;
    /* one step from v_i, reading local copies of the outer values that need gradients */
    Value *vi[64], *loc[IF_GRAD_MAX], *step[64 + 1];
    for (int k = 0; k < nc; k++)
        vi[k] = outs[k];
    ins[0] = it, ins[1] = yes;
    for (int k = 0; k < nc; k++)
        ins[2 + k] = vi[k];
    for (int j = 0; j < ncw; j++)
        if (!(loc[j] = add_op(b, n, "Identity", 1, &cw[j], d)))
            return d->status;
    size_t first = b->nnodes;
    if ((st = graph_clone_body(b, n, body, ins, step, d)))
        return st;
    for (size_t k = first; k < b->nnodes; k++) {
        Node *sn = b->nodes[k];
        for (int j = 0; j < ncw; j++) {
            for (int q = 0; q < sn->ninputs; q++)
                if (sn->inputs[q] == cw[j])
                    sn->inputs[q] = loc[j];
            for (int a = 0; a < sn->nattrs; a++)
                if (sn->attrs[a].type == AT_GRAPH && sn->attrs[a].g)
                    graph_replace_uses(sn->attrs[a].g, cw[j], loc[j]);
        }
        if ((st = infer_node(b, sn, d)))
            return st;
    }
    /* pull dv back through the step */
    Value *seeds[64], *wrt[IF_GRAD_MAX], *grads[IF_GRAD_MAX];
    for (int k = 0; k < nc; k++) {
        Value *o = add_op(b, n, "Identity", 1, &step[1 + k], d);
        if (!o || !graph_add_output(b, o))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
        seeds[k] = bin[2 + k];
        wrt[k] = vi[k];
    }
    for (int j = 0; j < ncw; j++)
        wrt[nc + j] = loc[j];
    if ((st = grad_subgraph(b, seeds, wrt, (size_t)(nc + ncw), grads, d)))
        return st;
    for (size_t i = 0; i < b->noutputs; i++)
        b->outputs[i]->is_output = false;
    b->noutputs = 0;
    Value *res[IF_GRAD_MAX];
    res[0] = add_op(b, n, "Identity", 1, &bin[1], d);
    for (int i = 0; res[0] && i < nc + ncw; i++) {
        Value *gi = grads[i];
        if (!gi && !(gi = graph_const(b, "zero_grad", bin[2 + i]->dtype, &bin[2 + i]->shape, d)))
            return d->status;
        res[1 + i] = add_op(b, n, i < nc ? "Identity" : "Add", i < nc ? 1 : 2, i < nc ? &gi : (Value *[]){bin[2 + i], gi}, d);
        if (!res[1 + i])
            return d->status;
    }
    for (int i = 0; res[0] && i < 1 + nc + ncw; i++)
        if (!graph_add_output(b, res[i]))
            return diag_node(d, n, ST_NOMEM, "out of memory");
    if (!res[0])
        return d->status;
    graph_remove_unused(b);
    /* the backward Loop: M iterations from (dv_final, 0) */
    Value *lin[IF_GRAD_MAX];
    lin[0] = m, lin[1] = NULL;
    for (int i = 0; i < nc + ncw; i++) {
        Value *like = bin[2 + i];
        lin[2 + i] = i < nc ? grad_output(c, n, i) : NULL;
        if (!lin[2 + i] && !(lin[2 + i] = graph_const(g, "zero_grad", like->dtype, &like->shape, d)))
            return d->status;
    }
    Node *bn = grad_new_node(c, n, "", "Loop", 2 + nc + ncw, lin, nc + ncw, d);
    if (!bn || !node_add_attr(g, bn, &(Attr){.name = "body", .type = AT_GRAPH, .g = b}))
        return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    if ((st = grad_finish_node(c, bn, d)))
        return st;
    for (int k = 0; k < nc; k++)
        if ((st = grad_accumulate(c, n, 2 + k, bn->outputs[k], d)))
            return st;
    for (int j = 0; j < ncw; j++)
        if ((st = grad_accumulate_value(c, n, cw[j], bn->outputs[nc + j], d)))
            return st;
    return ST_OK;
}

/* Scan's backward, quoting the forward: for t in steps: (state, out_t) = body(state, x[t]); its steps are
 * known at compile time, so the backward recomputes the forward unrolled (Gather of step t, the body, Unsqueeze
 * and Concat of the outputs), differentiates that straight-line graph and appends it to the graph. */
#define SCAN_GRAD_NODES 16384       /* body nodes times steps */

static Status scan_grad(GradCtx *c, Node *n, Diag *d)
{
    Graph *g = grad_graph(c), *body = node_attr(n, "body")->g;
    int64_t m = node_attr_int(n, "num_scan_inputs", 1);
    int ns = n->ninputs - (int)m, nk = n->noutputs - ns;
    Value *caps[IF_GRAD_MAX], *wrt[IF_GRAD_MAX], *loc[IF_GRAD_MAX], *grads[IF_GRAD_MAX], *dy[64], *ins[64];
    size_t ncap = node_captures(n, caps, IF_GRAD_MAX);
    if (ncap > IF_GRAD_MAX || n->ninputs > 64 || n->noutputs > 64 || (size_t)n->ninputs + ncap > IF_GRAD_MAX)
        return diag_node(d, n, ST_UNSUPPORTED, "too many values for the gradient of a Scan");
    const Value *x0 = n->inputs[ns];
    IntList in_axes, out_axes, in_dirs, out_dirs;
    bool hi = op_attr_ints(n, "scan_input_axes", &in_axes), ho = op_attr_ints(n, "scan_output_axes", &out_axes);
    bool hid = op_attr_ints(n, "scan_input_directions", &in_dirs), hod = op_attr_ints(n, "scan_output_directions", &out_dirs);
    int ax0 = (int)(hi ? in_axes.v[0] : 0);
    if (ax0 < 0)
        ax0 += x0->shape.rank;
    int64_t len = x0->shape.dim[ax0];
    if (len < 1 || (size_t)len * (body->nnodes + 4) > SCAN_GRAD_NODES)
        return diag_node(d, n, ST_UNSUPPORTED, "gradients through a Scan of %lld steps with %zu body nodes: the "
                         "unrolled backward would exceed %d nodes", (long long)len, body->nnodes, SCAN_GRAD_NODES);
    int nw = 0;
    for (int i = 0; i < n->ninputs; i++)
        wrt[nw++] = n->inputs[i];   /* every input has a local copy; only those needing one get a gradient */
    for (size_t i = 0; i < ncap; i++)
        if (grad_value_needed(c, caps[i]))
            wrt[nw++] = caps[i];
    for (int i = 0; i < n->noutputs; i++)
        dy[i] = grad_output(c, n, i);

    Graph *bg = graph_new(g->arena, arena_printf(g->arena, "%s_grad", n->name), g);
    if (!bg)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    Status st;
    for (int j = 0; j < nw; j++)
        if (!(loc[j] = graph_new_value(bg, wrt[j]->name, d)) || (st = graph_add_identity(bg, n, wrt[j], loc[j], d)))
            return d->status;
    Value **outs = arena_calloc(g->arena, body->noutputs + 1, sizeof *outs);
    Value **rows = arena_calloc(g->arena, (size_t)(nk ? nk : 1) * (size_t)len, sizeof *rows);
    if (!outs || !rows)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    for (int k = 0; k < ns; k++)
        ins[k] = loc[k];
    for (int64_t t = 0; t < len; t++) {
        for (int j = 0; j < m; j++) {
            int64_t ax = hi ? in_axes.v[j] : 0, step = hid && in_dirs.v[j] ? len - 1 - t : t;
            Value *idx = graph_const_scalar(bg, "step", DT_INT64, (double)step, d), *sl = graph_new_value(bg, "slice", d);
            if (!idx || !sl)
                return d->status;
            Node *ga = graph_add_node(bg, "Gather", "", n->name, 2, (Value *[]){loc[ns + j], idx}, 1, &sl, d);
            if (!ga || (st = node_set_attr_int(bg, ga, "axis", ax, d)))
                return d->status;
            ga->opset = 17;
            ins[ns + j] = sl;
        }
        if ((st = graph_clone_body(bg, n, body, ins, outs, d)))
            return st;
        for (int k = 0; k < ns; k++)
            ins[k] = outs[k];
        for (int k = 0; k < nk; k++) {
            int64_t ax = ho ? out_axes.v[k] : 0;
            Value *axv = graph_const_ints(bg, "axes", &ax, 1, d), *u = graph_new_value(bg, "row", d);
            if (!axv || !u || !graph_add_node(bg, "Unsqueeze", "", n->name, 2, (Value *[]){outs[ns + k], axv}, 1, &u, d))
                return d->status;
            bg->nodes[bg->nnodes - 1]->opset = 17;
            int64_t slot = hod && out_dirs.v[k] ? len - 1 - t : t;
            rows[(size_t)k * (size_t)len + (size_t)slot] = u;
        }
    }
    for (int k = 0; k < ns; k++) {
        Value *o = graph_new_value(bg, "state", d);
        if (!o || (st = graph_add_identity(bg, n, ins[k], o, d)) || !graph_add_output(bg, o))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    }
    for (int k = 0; k < nk; k++) {
        Value *o = graph_new_value(bg, "scan_out", d);
        Node *cat = o ? graph_add_node(bg, "Concat", "", n->name, (int)len, rows + (size_t)k * (size_t)len, 1, &o, d) : NULL;
        if (!cat || (st = node_set_attr_int(bg, cat, "axis", ho ? out_axes.v[k] : 0, d)) || !graph_add_output(bg, o))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
        cat->opset = 17;
    }
    for (int j = n->ninputs; j < nw; j++) { /* the body copies read the captured values' local copies */
        graph_replace_uses(bg, wrt[j], loc[j]);
        loc[j]->producer->inputs[0] = wrt[j];
    }
    for (size_t i = 0; i < bg->nnodes; i++)
        if ((st = infer_node(bg, bg->nodes[i], d)))
            return st;
    Value *wl[IF_GRAD_MAX], *wg[IF_GRAD_MAX];
    int nl = 0;
    for (int j = 0; j < nw; j++)
        if (j >= n->ninputs || grad_needed(c, n, j))
            wl[nl++] = loc[j];
    if ((st = grad_subgraph(bg, dy, wl, (size_t)nl, wg, d)))
        return st;
    for (int j = 0, l = 0; j < nw; j++)
        grads[j] = j >= n->ninputs || grad_needed(c, n, j) ? wg[l++] : NULL;
    /* the recomputation and its backward join the graph's backward nodes */
    size_t first = g->nnodes;
    bg->ninputs = 0;
    Value **res = arena_calloc(g->arena, (size_t)nw + 1, sizeof *res);
    if (!res)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    bg->noutputs = 0;
    for (int j = 0; j < nw; j++)
        if (grads[j] && !graph_add_output(bg, grads[j]))
            return diag_node(d, n, ST_NOMEM, "out of memory");
    if ((st = graph_clone_body(g, n, bg, NULL, res, d)))
        return st;
    for (size_t i = first; i < g->nnodes; i++)
        g->nodes[i]->phase = PHASE_BACKWARD;
    for (int j = 0, r = 0; j < nw; j++) {
        if (!grads[j])
            continue;
        Value *gv = res[r++];
        if ((st = grad_accumulate_value(c, n, wrt[j], gv, d)))
            return st;
    }
    return ST_OK;
}

static double no_flops(const Node *n)
{
    (void)n;
    return 0;
}

/* name, domain, family, canonical opset, canon, shape, fold, flops, grad, then the signature */
const OpRule control_rules[] = {
    {"If", "", "control", 17, NULL, if_shape, NULL, no_flops, if_grad, ARITY(1, 1, 0, -1), REQUIRED(1),
     DTYPES(IN_IS(0, DT_BOOL))},
    {"Loop", "", "control", 17, NULL, loop_shape, NULL, no_flops, loop_grad, ARITY(2, -1, 0, -1),
     DTYPES(IN_IS(0, DT_INT64), IN_IS(1, DT_BOOL))},
    {"Scan", "", "control", 17, scan_canon, scan_shape, NULL, no_flops, scan_grad, ARITY(1, -1, 1, -1)},
    {0},
};
