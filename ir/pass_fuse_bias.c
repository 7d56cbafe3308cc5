/* pass_fuse_bias.c - a MatMul by a 2-D weight whose only reader adds a bias vector, MatMul(x, W) ->
 * Add(., b) with b [N] (torch.onnx's export of nn.Linear on inputs of rank 3 and more), becomes one
 * MatMul with b as a third input: codegen/emit_matmul.c runs it as one gemm_forward that writes the bias
 * into the rows first and lets sgemm accumulate onto it (beta 1), so the [.., N] output is not passed
 * over again. Codegen runs it with pass_fuse, after autodiff (Add's gradient does not read its inputs);
 * ONNXTUNE_NO_FUSE=1 skips both. The three-input MatMul exists only between here and the emitter. */
#include "ir.h"

#include <string.h>

static bool is_float_node(const Node *n, const char *op, int nin)
{
    return n && !n->dead && !n->domain[0] && strcmp(n->op_type, op) == 0 && n->ninputs == nin &&
           n->noutputs == 1 && n->outputs[0]->dtype == DT_FLOAT && shape_is_static(&n->outputs[0]->shape);
}

/* The one reader of v in g, a top-level node of v's producer's phase; NULL otherwise. */
static Node *sole_reader(Graph *g, const Value *v, int phase)
{
    if (v->is_output || graph_count_uses(g, v) != 1)
        return NULL;
    for (size_t i = 0; i < g->nnodes; i++)
        for (int k = 0; !g->nodes[i]->dead && k < g->nodes[i]->ninputs; k++)
            if (g->nodes[i]->inputs[k] == v)
                return g->nodes[i]->phase == phase ? g->nodes[i] : NULL;
    return NULL;
}

Status pass_fuse_bias(Graph *g, Diag *d)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *mm = g->nodes[i];
        if (!is_float_node(mm, "MatMul", 2))
            continue;
        const Value *x = mm->inputs[0], *w = mm->inputs[1], *t = mm->outputs[0];
        if (x->dtype != DT_FLOAT || w->dtype != DT_FLOAT || x->shape.rank < 2 || w->shape.rank != 2 ||
            w->shape.dim[0] < 1)   /* K = 0 is the emitter's memset, without the bias */
            continue;
        Node *add = sole_reader(g, t, mm->phase);
        if (!is_float_node(add, "Add", 2) || add->inputs[0] == add->inputs[1] ||
            !shape_equal(&add->outputs[0]->shape, &t->shape))
            continue;
        Value *b = add->inputs[0] == t ? add->inputs[1] : add->inputs[0];
        if (b->dtype != DT_FLOAT || b->shape.rank != 1 || b->shape.dim[0] != w->shape.dim[1] ||
            b->shape.dim[0] < 1)
            continue;
        Status st = node_set_input(g, mm, 2, b, d);
        if (st)
            return st;
        Value *out = add->outputs[0];
        add->dead = true;
        mm->outputs[0]->producer = NULL;
        mm->outputs[0] = out;
        out->producer = mm;
        out->producer_slot = 0;
        /* the MatMul runs where the Add ran: the bias is ready there */
        int from = mm->index, to = add->index;
        g->nodes[from] = add;
        g->nodes[to] = mm;
        add->index = from;
        mm->index = to;
    }
    return ST_OK;
}
