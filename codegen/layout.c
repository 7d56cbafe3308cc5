/* layout.c - which activations of a graph live in oneDNN's blocked layout nChw8c instead of NCHW, so
 * that consecutive convs run on oneDNN without reordering their input and output (kernels/conv_dnnl.c
 * does the reorders only for the tensors that stay plain). The same bytes as NCHW when C % 8 == 0.
 *
 * A value is blocked when it is a float32 [N, C, H, W] with C % 8 == 0, not a graph output, produced
 * by a Conv (any input layout), a MaxPool or inference BatchNormalization of a blocked input, or an
 * elementwise op whose full-shape inputs are all blocked, and every reader takes it blocked: a Conv's
 * input or fused residual (kernels' conv_forward_layout), a MaxPool, BatchNormalization or elementwise
 * op whose output is blocked too, a GlobalAveragePool (plain output). Elementwise ops need no code of their own: every full-shape operand
 * is permuted alike, other operands are scalars. Whatever else reads a value keeps it plain.
 *
 * Only graphs of inference (every node in the forward phase, no onnxtune ops: nothing saved for a
 * backward pass) and without control flow (bodies read enclosing values behind the nodes' backs).
 * Correct on any machine: where oneDNN declines a conv at run time, conv_forward_layout computes on
 * plain copies. ONNXTUNE_BLOCKED=0 at compile time turns it off (for measuring and tests). */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

static bool is_graph_output(const Graph *g, const Value *v);
static bool read_by_live_node(const Graph *g, const Value *v);

static const char *const eltwise_ops[] = {
    "Relu", "LeakyRelu", "Clip", "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Sigmoid", "Tanh",
    "HardSigmoid", "HardSwish", "Elu", "Neg", "Abs", NULL,
};

static bool is_op(const Node *n, const char *op)
{
    return !n->domain[0] && strcmp(n->op_type, op) == 0;
}

/* An inference BatchNormalization: per channel, only its input 0 has a layout. */
static bool is_bn(const Graph *g, const Node *n)
{
    if (!is_op(n, "BatchNormalization") || node_attr_int(n, "training_mode", 0) != 0 || n->ninputs < 5)
        return false;
    for (int k = 1; k < n->noutputs; k++)
        if (read_by_live_node(g, n->outputs[k]) || is_graph_output(g, n->outputs[k]))
            return false;
    return true;
}

static bool is_eltwise(const Node *n)
{
    for (size_t i = 0; eltwise_ops[i]; i++)
        if (is_op(n, eltwise_ops[i]))
            return true;
    return false;
}

static bool blockable(const Value *v)
{
    return v && v->kind == VK_TENSOR && v->dtype == DT_FLOAT && v->shape.rank == 4 && shape_is_static(&v->shape) &&
           v->shape.dim[1] > 0 && v->shape.dim[1] % 8 == 0;
}

static bool is_graph_output(const Graph *g, const Value *v)
{
    for (size_t i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

static bool read_by_live_node(const Graph *g, const Value *v)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        for (int k = 0; !n->dead && k < n->ninputs; k++)
            if (n->inputs[k] == v)
                return true;
    }
    return false;
}

/* An input of an elementwise node that must share the output's layout (the others are scalars);
 * false for an operand that is neither (a broadcast [C,1,1]): then nothing of the node is blocked. */
static bool full_operand(const Node *n, const Value *v, bool *scalar)
{
    size_t numel = 0;
    *scalar = v->kind == VK_TENSOR && shape_is_static(&v->shape) && shape_numel(&v->shape, &numel) && numel == 1;
    return !*scalar && shape_equal(&v->shape, &n->outputs[0]->shape);
}

/* Whether what produces v (blocked) can write it blocked, given the current decisions. */
static bool producer_ok(const Graph *g, const Node *p, const bool *blocked)
{
    if (is_op(p, "Conv"))
        return p->inputs[0]->dtype == DT_FLOAT && p->inputs[1]->dtype == DT_FLOAT;
    if (is_bn(g, p))
        return blocked[p->inputs[0]->id];
    if (is_op(p, "MaxPool"))
        return blocked[p->inputs[0]->id] &&
               (p->noutputs < 2 || (!read_by_live_node(g, p->outputs[1]) && !is_graph_output(g, p->outputs[1])));
    if (!is_eltwise(p) || p->noutputs != 1)
        return false;
    int full = 0;
    for (int k = 0; k < p->ninputs; k++) {
        const Value *v = p->inputs[k];
        bool scalar;
        if (!v)
            continue;
        if (full_operand(p, v, &scalar)) {
            if (!blocked[v->id])
                return false;
            full++;
        } else if (!scalar) {
            return false;
        }
    }
    return full > 0;
}

/* Whether node m reads input k blocked, given the current decisions. */
static bool reader_ok(const Graph *g, const Node *m, int k, const bool *blocked)
{
    if (is_bn(g, m))
        return k == 0 && blocked[m->outputs[0]->id];
    if (is_op(m, "Conv"))
        return k == 0 || k == 7; /* the input, or pass_fuse's residual */
    if (is_op(m, "GlobalAveragePool"))
        return k == 0;
    if (is_op(m, "MaxPool") || is_eltwise(m))
        return blocked[m->outputs[0]->id];
    return false;
}

static bool graph_eligible(const Graph *g)
{
    const char *env = getenv("ONNXTUNE_BLOCKED");
    if (g->parent || (env && (!strcmp(env, "0") || !strcmp(env, "off"))))
        return false;
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        if (n->phase != PHASE_FORWARD || n->domain[0])
            return false;
        for (int a = 0; a < n->nattrs; a++)
            if (n->attrs[a].type == AT_GRAPH || n->attrs[a].type == AT_GRAPHS)
                return false;
    }
    return true;
}

bool *cg_plan_layouts(Graph *g)
{
    bool *blocked = arena_calloc(g->arena, g->nvalues ? g->nvalues : 1, sizeof *blocked);
    if (!blocked || !graph_eligible(g))
        return blocked;
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        const Node *p = v->producer;
        blocked[v->id] = blockable(v) && p && !p->dead && p->outputs[0] == v && !is_graph_output(g, v) &&
                         (is_op(p, "Conv") || is_op(p, "MaxPool") || is_eltwise(p) || is_bn(g, p));
    }
    /* drop what breaks a rule until nothing changes (only ever removes: it ends) */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < g->nvalues; i++) {
            const Value *v = g->values[i];
            if (!blocked[v->id])
                continue;
            bool ok = producer_ok(g, v->producer, blocked);
            for (size_t j = 0; ok && j < g->nnodes; j++) {
                const Node *m = g->nodes[j];
                for (int k = 0; ok && !m->dead && k < m->ninputs; k++)
                    if (m->inputs[k] == v)
                        ok = reader_ok(g, m, k, blocked);
            }
            if (!ok) {
                blocked[v->id] = false;
                changed = true;
            }
        }
    }
    return blocked;
}
