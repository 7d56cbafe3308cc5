/* pass_fuse.c - fuses what follows a float32 Conv into the conv's kernel call (codegen runs it just before
 * the memory plan): Conv [-> BatchNormalization (inference mode)] [-> Add (a residual of the same shape)]
 * [-> Relu | Clip (constant bounds)] becomes one Conv node that conv_forward_fused runs
 * (kernels/conv.c, oneDNN post-ops), so the activations are not passed over again.
 *
 * A step joins only when the value between it and the chain is read by nothing else (not a graph output,
 * not a subgraph, same phase). The one exception: onnxtune.ReluGrad(dY, X) may read a fused Relu's input,
 * and is rewired to read its output (X > 0 exactly where Relu(X) > 0). ClipGrad's mask is torch.clamp's,
 * inclusive at the bounds, which the output cannot tell apart: a Clip whose input a ClipGrad reads stays
 * separate, as does a BatchNormalization that trains or whose gradient reads the conv's output (so BN
 * that trains stays exact). The fused Conv takes the last fused node's place in the order (a residual may
 * be computed after the conv) and carries:
 *   inputs  X, W, B, scale, bias, mean, var (BN; omitted when none), sum (the residual; omitted when none)
 *   attrs   onnxtune_act (0 none, 1 Relu, 2 Clip), onnxtune_act_lo/hi (Clip), onnxtune_bn_epsilon
 * It exists only between this pass and the emitter (codegen/emit_conv.c reads it). Where the weights and
 * BN parameters are constants (inference programs) the BN is folded into new constant weights here
 * instead; where they are runtime parameters (training programs) conv_forward_fused folds them per call,
 * which costs a pass over the weights, so only where the conv's output is at least as large.
 *
 * Backward: onnxtune.ReluGrad(dY, T) or ClipGrad(dY, T, lo, hi) (constant bounds) whose result only a
 * BatchNormalizationGrad reads, as its dY, joins it: the BN backward then reads dY itself and
 * carries T as input 5 (inputs 3 and 4 empty in training mode) with attrs onnxtune_act (1 Relu, 2 Clip),
 * onnxtune_act_lo/hi, and masks each row as it reads it (batchnorm_act_backward, the same floats), so
 * the masked gradient tensor is never written nor read back. */
#include "ir.h"

#include <math.h>
#include <string.h>

enum { FUSED_INPUTS = 8, IN_BN = 3, IN_SUM = 7 };

static bool is_op(const Node *n, const char *domain, const char *op)
{
    return n && !n->dead && strcmp(n->domain, domain) == 0 && strcmp(n->op_type, op) == 0;
}

static bool is_f32(const Value *v)
{
    return v && v->dtype == DT_FLOAT && shape_is_static(&v->shape);
}

/* The only live reader of v in g (a top-level node, same phase as `phase`), or NULL. */
static Node *only_reader(Graph *g, const Value *v, int phase)
{
    if (v->is_output || graph_count_uses(g, v) != 1)
        return NULL;
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int k = 0; !n->dead && k < n->ninputs; k++)
            if (n->inputs[k] == v)
                return n->phase == phase ? n : NULL;
    }
    return NULL; /* the use is inside a subgraph */
}

/* A constant scalar bound of Clip (input i), or dflt when omitted; false when not a constant. */
static bool clip_bound(const Node *n, int i, float dflt, float *out)
{
    const Value *v = node_input(n, i);
    *out = dflt;
    if (!v)
        return true;
    if (!v->init || v->init->numel != 1 || !dtype_is_float(v->dtype))
        return false;
    *out = (float)tensor_get_f64(v->init, 0);
    return true;
}

/* Relu/Clip reading v: its kind and bounds when v's other readers are ReluGrads that can read the output. */
static Node *fusable_act(Graph *g, const Value *v, int phase, int *kind, float *lo, float *hi)
{
    if (v->is_output)
        return NULL;
    Node *act = NULL;
    size_t grads = 0;
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int k = 0; !n->dead && k < n->ninputs; k++) {
            if (n->inputs[k] != v)
                continue;
            if (k == 0 && !act && n->phase == phase && (is_op(n, "", "Relu") || is_op(n, "", "Clip")))
                act = n;
            else if (k == 1 && is_op(n, ONNXTUNE_DOMAIN, "ReluGrad"))
                grads++;
            else
                return NULL;
        }
    }
    if (!act || graph_count_uses(g, v) != 1 + grads || !is_f32(act->outputs[0]))
        return NULL;
    if (strcmp(act->op_type, "Relu") == 0) {
        *kind = 1;
        return act;
    }
    if (grads || !clip_bound(act, 1, -INFINITY, lo) || !clip_bound(act, 2, INFINITY, hi))
        return NULL;
    *kind = 2;
    return act;
}

static bool bn_fusable(const Graph *g, const Node *bn, const Value *conv_out)
{
    if (bn->ninputs < 5 || bn->inputs[0] != conv_out || node_attr_int(bn, "training_mode", 0) != 0)
        return false;
    for (int i = 1; i < bn->noutputs; i++)
        if (graph_count_uses(g, bn->outputs[i]))
            return false;
    for (int i = 1; i < 5; i++) {
        const Value *p = bn->inputs[i];
        if (!is_f32(p) || p->shape.rank != 1 || p->shape.dim[0] != conv_out->shape.dim[1])
            return false;
    }
    return is_f32(bn->outputs[0]);
}

static bool float_data(const Value *v)
{
    return !v || (v->init && v->init->dtype == DT_FLOAT && v->init->data && v->init->numel == (size_t)shape_numel_or0(&v->shape));
}

/* Where the conv's weights and the BN's parameters are constants (inference programs), the BN is folded
 * here, once, into new constant weights and bias (the formula conv_forward_fused uses per call). */
static Status fold_bn_constants(Graph *g, Node *conv, const Node *bn, bool *done, Diag *d)
{
    Value *w = conv->inputs[1], *b = node_input(conv, 2);
    *done = false;
    if (!float_data(w) || !float_data(b))
        return ST_OK;
    for (int i = 1; i < 5; i++)
        if (!float_data(bn->inputs[i]))
            return ST_OK;
    size_t c_out = (size_t)w->shape.dim[0], per_oc = w->init->numel / c_out;
    Shape cs = shape_make(1, (int64_t[]){(int64_t)c_out});
    Value *wf = graph_const(g, arena_printf(g->arena, "%s_bn_folded", w->name), DT_FLOAT, &w->shape, d);
    Value *bf = wf ? graph_const(g, arena_printf(g->arena, "%s_bn_folded_bias", w->name), DT_FLOAT, &cs, d) : NULL;
    if (!bf)
        return d->status;
    const float *wv = w->init->data, *bv = b ? b->init->data : NULL, *gamma = bn->inputs[1]->init->data,
                *beta = bn->inputs[2]->init->data, *mean = bn->inputs[3]->init->data, *var = bn->inputs[4]->init->data;
    float *wo = wf->init->data, *bo = bf->init->data, eps = node_attr_float(bn, "epsilon", 1e-5f);
    for (size_t oc = 0; oc < c_out; oc++) {
        float s = (float)((double)gamma[oc] / sqrt((double)var[oc] + (double)eps));
        for (size_t i = 0; i < per_oc; i++)
            wo[oc * per_oc + i] = wv[oc * per_oc + i] * s;
        bo[oc] = ((bv ? bv[oc] : 0.0f) - mean[oc]) * s + beta[oc];
    }
    conv->inputs[1] = wf;
    Status st = node_set_input(g, conv, 2, bf, d); /* grows the input list when the conv had no bias */
    *done = st == ST_OK;
    return st;
}

static void kill_node(Node *n)
{
    n->dead = true;
    for (int i = 0; i < n->noutputs; i++)
        if (n->outputs[i]->producer == n)
            n->outputs[i]->producer = NULL;
}

static Status fuse_one(Graph *g, Node *conv, bool *fused, Diag *d)
{
    *fused = false;
    Value *cur = conv->outputs[0];
    int phase = conv->phase;
    Node *bn = NULL, *add = NULL, *act = NULL, *last = conv;
    Value *sum = NULL;
    int kind = 0;
    float lo = 0.0f, hi = 0.0f;

    Node *r = only_reader(g, cur, phase);
    /* a BN folded per call costs a pass over the weights instead of one over the activations: only
     * where the weights are constants (folded once below) or the activations are the larger */
    if (r && is_op(r, "", "BatchNormalization") && bn_fusable(g, r, cur) &&
        (float_data(conv->inputs[1]) || shape_numel_or0(&cur->shape) >= shape_numel_or0(&conv->inputs[1]->shape))) {
        bn = last = r;
        cur = r->outputs[0];
        r = only_reader(g, cur, phase);
    }
    if (r && is_op(r, "", "Add") && r->ninputs == 2 && r->inputs[0] != r->inputs[1] && is_f32(r->outputs[0])) {
        Value *other = r->inputs[0] == cur ? r->inputs[1] : r->inputs[0];
        if (is_f32(other) && shape_equal(&other->shape, &cur->shape) && shape_equal(&r->outputs[0]->shape, &cur->shape)) {
            add = last = r;
            sum = other;
            cur = r->outputs[0];
        }
    }
    if ((act = fusable_act(g, cur, phase, &kind, &lo, &hi)))
        last = act;
    if (last == conv)
        return ST_OK;

    Value *out = last->outputs[0];
    for (size_t i = 0; act && kind == 1 && i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (is_op(n, ONNXTUNE_DOMAIN, "ReluGrad") && n->inputs[1] == cur)
            n->inputs[1] = out;
    }
    Status st;
    bool folded = false;
    if (bn && (st = fold_bn_constants(g, conv, bn, &folded, d)))
        return st;
    Value *b = node_input(conv, 2);
    if ((st = node_set_input(g, conv, FUSED_INPUTS - 1, sum, d)))
        return st;
    conv->inputs[2] = b;
    for (int i = 0; i < 4; i++)
        conv->inputs[IN_BN + i] = bn && !folded ? bn->inputs[1 + i] : NULL;
    conv->inputs[IN_SUM] = sum;
    if ((st = node_set_attr_int(g, conv, "onnxtune_act", kind, d)) ||
        (kind == 2 && ((st = node_set_attr_float(g, conv, "onnxtune_act_lo", lo, d)) ||
                       (st = node_set_attr_float(g, conv, "onnxtune_act_hi", hi, d)))) ||
        (bn && !folded && (st = node_set_attr_float(g, conv, "onnxtune_bn_epsilon", node_attr_float(bn, "epsilon", 1e-5f), d))))
        return st;
    Value *old = conv->outputs[0];
    if (bn)
        kill_node(bn);
    if (add)
        kill_node(add);
    if (act)
        kill_node(act);
    old->producer = NULL;
    conv->outputs[0] = out;
    out->producer = conv;
    out->producer_slot = 0;
    /* the conv runs where the last fused node ran: every input, the residual too, is ready there */
    int from = conv->index, to = last->index;
    g->nodes[from] = last;
    g->nodes[to] = conv;
    last->index = from;
    conv->index = to;
    *fused = true;
    return ST_OK;
}

/* ReluGrad / ClipGrad (constant bounds) whose result only a BatchNormalizationGrad reads as its dY, same
 * phase: the BN backward reads their dY and saved value instead and masks each row itself
 * (batchnorm_act_backward, bit-identical), so the masked gradient is never written. */
static Status fuse_act_grad(Graph *g, Node *bng, Diag *d)
{
    Value *gv = bng->inputs[0];
    Node *m = gv ? gv->producer : NULL;
    bool relu = is_op(m, ONNXTUNE_DOMAIN, "ReluGrad"), clip = is_op(m, ONNXTUNE_DOMAIN, "ClipGrad");
    float lo = 0.0f, hi = 0.0f;
    if ((!relu && !clip) || m->phase != bng->phase || m->ninputs < 2 || only_reader(g, gv, bng->phase) != bng)
        return ST_OK;
    Value *dy = m->inputs[0], *t = m->inputs[1];
    if (!is_f32(gv) || !is_f32(dy) || !is_f32(t) || !shape_equal(&t->shape, &gv->shape) ||
        !shape_equal(&dy->shape, &gv->shape) ||
        (clip && (!clip_bound(m, 2, -INFINITY, &lo) || !clip_bound(m, 3, INFINITY, &hi))))
        return ST_OK;
    /* inference mode: t recomputed from X when it is the output of the BN this BNGrad differentiates */
    Node *bn = t->producer;
    bool recompute = node_attr_int(bng, "training_mode", 0) == 0 && bng->ninputs == 5 && node_input(bng, 1) &&
                     is_op(bn, "", "BatchNormalization") && node_attr_int(bn, "training_mode", 0) == 0 &&
                     t->producer_slot == 0 && bn->ninputs >= 5 && bn->inputs[0] == bng->inputs[1] &&
                     bn->inputs[1] == bng->inputs[2] && bn->inputs[3] == bng->inputs[3] &&
                     bn->inputs[4] == bng->inputs[4] && is_f32(bn->inputs[2]) &&
                     node_attr_float(bn, "epsilon", 1e-5f) == node_attr_float(bng, "epsilon", 1e-5f);
    Status st;
    if ((st = node_set_input(g, bng, 5, recompute ? bn->inputs[2] : t, d)) ||
        (recompute && (st = node_set_attr_int(g, bng, "onnxtune_act_recompute", 1, d))) ||
        (st = node_set_attr_int(g, bng, "onnxtune_act", relu ? 1 : 2, d)) ||
        (clip && ((st = node_set_attr_float(g, bng, "onnxtune_act_lo", lo, d)) ||
                  (st = node_set_attr_float(g, bng, "onnxtune_act_hi", hi, d)))))
        return st;
    bng->inputs[0] = dy;
    kill_node(m);
    return ST_OK;
}

/* An inference-mode BatchNormalization (float32, not fused into a conv) whose output only a Relu or Clip
 * (constant bounds) reads, same phase: the BN computes the activation in its own pass (attrs as above). */
static Status fuse_bn_act(Graph *g, Node *bn, Diag *d)
{
    Value *t = bn->outputs[0];
    float lo = 0.0f, hi = 0.0f;
    for (int i = 1; i < bn->noutputs; i++)
        if (graph_count_uses(g, bn->outputs[i]))
            return ST_OK;
    Node *act = only_reader(g, t, bn->phase);
    bool relu = is_op(act, "", "Relu"), clip = is_op(act, "", "Clip");
    if ((!relu && !clip) || act->inputs[0] != t || !is_f32(t) || !is_f32(act->outputs[0]) ||
        (clip && (!clip_bound(act, 1, -INFINITY, &lo) || !clip_bound(act, 2, INFINITY, &hi))))
        return ST_OK;
    for (int i = 0; i < 5; i++)
        if (!is_f32(node_input(bn, i)))
            return ST_OK;
    Status st;
    if ((st = node_set_attr_int(g, bn, "onnxtune_act", relu ? 1 : 2, d)) ||
        (clip && ((st = node_set_attr_float(g, bn, "onnxtune_act_lo", lo, d)) ||
                  (st = node_set_attr_float(g, bn, "onnxtune_act_hi", hi, d)))))
        return st;
    Value *out = act->outputs[0];
    kill_node(act);
    t->producer = NULL;
    bn->outputs[0] = out;
    out->producer = bn;
    out->producer_slot = 0;
    return ST_OK;
}

Status pass_fuse(Graph *g, Diag *d)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!is_op(n, "", "Conv") || node_attr(n, "onnxtune_act") || n->ninputs < 2 || n->ninputs > 3 ||
            n->noutputs != 1 || !is_f32(n->inputs[0]) || !is_f32(n->inputs[1]) || !is_f32(n->outputs[0]) ||
            (node_input(n, 2) && !is_f32(n->inputs[2])) || n->outputs[0]->shape.rank < 3)
            continue;
        bool fused;
        Status st = fuse_one(g, n, &fused, d);
        if (st)
            return st;
    }
    /* after the convs: a fused Relu's ReluGrad reads the Relu's output by now */
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        Status st;
        if (is_op(n, ONNXTUNE_DOMAIN, "BatchNormalizationGrad") && n->ninputs <= 5 && !node_attr(n, "onnxtune_act") &&
            (st = fuse_act_grad(g, n, d)))
            return st;
    }
    /* last: the activation's backward no longer reads the BN's output where it recomputes it */
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        Status st;
        if (is_op(n, "", "BatchNormalization") && !node_attr(n, "onnxtune_act") && n->ninputs >= 5 &&
            node_attr_int(n, "training_mode", 0) == 0 && (st = fuse_bn_act(g, n, d)))
            return st;
    }
    return ST_OK;
}
