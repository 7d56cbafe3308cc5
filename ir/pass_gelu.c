/* pass_gelu.c - the exact GELU that torch.onnx exports as five element-wise nodes,
 *     y = Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)   (operands of Add and Mul in either order)
 * becomes one Gelu (approximate "none"): one pass over the activations instead of five forward, and one
 * onnxtune.GeluGrad instead of five backward passes (kernels/erf.c computes both). The codegen entry
 * points run it after shape inference, before anything trains or is differentiated; only where the
 * three nodes between x and y have no other reader and the three constants are constants, not
 * parameters. ONNXTUNE_NO_FUSE=1 skips it (with the conv fusion). */
#include "ir.h"

#include <math.h>
#include <string.h>

static bool is_node(const Node *n, const char *op)
{
    return n && !n->dead && !n->domain[0] && strcmp(n->op_type, op) == 0 && n->noutputs == 1;
}

/* A float scalar constant (not a parameter) within tol of want. */
static bool scalar_is(const Graph *g, const Value *v, double want, double tol)
{
    return v && value_is_const(v) && v->init->numel == 1 && dtype_is_float(v->dtype) &&
           fabs(tensor_get_f64(v->init, 0) - want) <= tol && !value_is_param(g, v);
}

/* The producer of v when v has one reader and is no graph output. */
static Node *single_use_producer(const Graph *g, const Value *v, const char *op)
{
    if (!v || v->is_output || graph_count_uses(g, v) != 1)
        return NULL;
    Node *p = v->producer;
    return is_node(p, op) && p->ninputs == 2 ? p : NULL;
}

/* n = Mul(m, 0.5): the Gelu's x, with its Div, Erf, Add and inner Mul in k[0..3]; NULL when no match. */
static Value *match(const Graph *g, const Node *n, Node *k[4])
{
    if (!is_node(n, "Mul") || n->ninputs != 2 || n->outputs[0]->dtype != DT_FLOAT)
        return NULL;
    int h = scalar_is(g, n->inputs[1], 0.5, 0.0) ? 0 : scalar_is(g, n->inputs[0], 0.5, 0.0) ? 1 : -1;
    Node *m = h < 0 ? NULL : single_use_producer(g, n->inputs[h], "Mul");
    for (int side = 0; m && side < 2; side++) {
        Value *x = m->inputs[side];
        Node *add = single_use_producer(g, m->inputs[1 - side], "Add");
        if (!x || x->dtype != DT_FLOAT || !add)
            continue;
        int e = scalar_is(g, add->inputs[1], 1.0, 0.0) ? 0 : scalar_is(g, add->inputs[0], 1.0, 0.0) ? 1 : -1;
        Value *ev = e < 0 ? NULL : add->inputs[e];
        if (!ev || ev->is_output || graph_count_uses(g, ev) != 1 || !is_node(ev->producer, "Erf"))
            continue;
        Node *erf = ev->producer;
        Node *div = single_use_producer(g, erf->inputs[0], "Div");
        if (!div || div->inputs[0] != x || !scalar_is(g, div->inputs[1], sqrt(2.0), 1e-6) ||
            !shape_equal(&x->shape, &n->outputs[0]->shape))
            continue;
        k[0] = div, k[1] = erf, k[2] = add, k[3] = m;
        return x;
    }
    return NULL;
}

Status pass_gelu(Graph *g, Diag *d)
{
    bool any = false;
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i], *k[4];
        Value *x = match(g, n, k);
        if (!x)
            continue;
        Status st = node_set_op(g, n, "Gelu", d);
        if (st)
            return st;
        n->inputs[0] = x;
        n->ninputs = 1;
        node_remove_attr(n, "approximate");
        Attr a = {.name = "approximate", .type = AT_STRING, .s = "none", .slen = 4};
        if (!node_add_attr(g, n, &a))
            return diag_node(d, n, ST_NOMEM, "out of memory adding attribute approximate");
        n->opset = n->rule ? n->rule->canon_opset : n->opset;
        for (int j = 0; j < 4; j++) {
            k[j]->dead = true;
            k[j]->outputs[0]->producer = NULL;
        }
        any = true;
    }
    if (any)
        graph_compact(g);
    return ST_OK;
}
