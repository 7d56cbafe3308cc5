/* pass_lora.c - LoRA (Hu et al. 2021, as peft implements it): each weight the --lora globs select gets a
 * trainable low-rank update beside it, y = W x + (alpha/r) B(A(dropout(x))), and is frozen. It rewrites the
 * forward graph only (autodiff and the optimizer see two more parameters per weight); merging the trained
 * adapters back into W for the export is the training program's (program/lora.c). */
#include "ir.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the generator: splitmix64, as pass_head.c's, on a stream of its own ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *state, double bound)
{
    double u = (double)(splitmix64(state) >> 40) * 0x1p-24;
    return (float)((2.0 * u - 1.0) * bound);
}

/* ---- which weights ---- */

typedef enum { USE_NONE = 0, USE_MATMUL, USE_GEMM, USE_CONV } UseKind;

#define NOT_WEIGHT "read other than as the weight (input 1) of a MatMul, Gemm or Conv"

/* How node n reads v at input i, or why LoRA cannot adapt it there (*why). */
static UseKind weight_use(const Node *n, int i, const Value *v, const char **why)
{
    *why = NULL;
    if (n->domain[0] || i != 1) {
        *why = NOT_WEIGHT;
        return USE_NONE;
    }
    if (strcmp(n->op_type, "MatMul") == 0)
        return v->shape.rank == 2 ? USE_MATMUL : (*why = "a MatMul weight of rank other than 2", USE_NONE);
    if (strcmp(n->op_type, "Gemm") == 0)
        return node_attr_int(n, "transA", 0) == 0 ? USE_GEMM : (*why = "read by a Gemm with transA=1", USE_NONE);
    if (strcmp(n->op_type, "Conv") == 0)
        return node_attr_int(n, "group", 1) == 1 ? USE_CONV : (*why = "a grouped Conv's (groups > 1)", USE_NONE);
    *why = NOT_WEIGHT;
    return USE_NONE;
}

/* Whether node n stores its weight (input 1) as [in, out]: MatMul, Gemm with transB 0. */
static bool stored_in_out(const Node *n, UseKind kind)
{
    return kind == USE_MATMUL || (kind == USE_GEMM && node_attr_int(n, "transB", 0) == 0);
}

/* v can be adapted: a float initializer of rank >= 2 every reader of which is a supported weight input,
 * all with one layout; NULL, or why not. */
static const char *not_adaptable(const Graph *g, const Value *v)
{
    if (!v->is_initializer || !v->init || v->dtype != DT_FLOAT || v->shape.rank < 2)
        return "not a float32 weight of rank >= 2";
    size_t uses = 0;
    bool in_out = false;
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        for (int i = 0; !n->dead && i < n->ninputs; i++) {
            const char *why;
            if (n->inputs[i] != v)
                continue;
            UseKind kind = weight_use(n, i, v, &why);
            if (kind == USE_NONE)
                return why;
            if (uses++ && stored_in_out(n, kind) != in_out)
                return "read as a weight in two layouts ([in, out] and [out, in]) by different nodes";
            in_out = stored_in_out(n, kind);
        }
    }
    return uses ? NULL : "not read by any node (a classifier the head replaced?)";
}

static bool glob_matches(const char *glob, const Value *v)
{
    return fnmatch(glob, v->name, 0) == 0 || (v->onnx_name && fnmatch(glob, v->onnx_name, 0) == 0);
}

/* ---- building one adapter ---- */

/* A trainable initializer `name` of shape s; U(-bound, bound) from rng, or zeros (rng NULL). */
static Value *new_param(Graph *g, const char *name, const Shape *s, uint64_t *rng, double bound, Diag *d)
{
    if (graph_find(g, name)) {
        diag_error(d, ST_USAGE, "--lora: the model already has a value named '%s', which an adapter would be called",
                   name);
        return NULL;
    }
    Value *v = graph_add_value(g, name, d);
    Tensor *t = v ? tensor_new(g->arena, DT_FLOAT, s) : NULL;
    if (!t) {
        if (!d->status)
            diag_error(d, ST_NOMEM, "out of memory for '%s'", name);
        return NULL;
    }
    float *p = t->data;
    for (size_t i = 0; rng && i < t->numel; i++)
        p[i] = uniform(rng, bound);
    v->dtype = DT_FLOAT;
    v->shape = *s;
    v->init = t;
    v->is_initializer = true;
    v->trainable = true;
    return v;
}

/* Append a forward node `op` named base/suffix with one fresh output; NULL with d set on failure. */
static Node *add(Graph *g, const Node *base, const char *op, const char *suffix, int nin, Value *const *in, Diag *d)
{
    char *name = arena_printf(g->arena, "%s/%s", base->name, suffix);
    char *out = name ? arena_printf(g->arena, "%s_output_0", name) : NULL;
    Value *o = out ? graph_new_value(g, out, d) : NULL;
    if (!o) {
        if (!d->status)
            diag_error(d, ST_NOMEM, "out of memory adding LoRA nodes");
        return NULL;
    }
    Node *n = graph_add_node(g, op, "", name, nin, in, 1, &o, d);
    if (n) {
        n->opset = n->rule ? n->rule->canon_opset : 0;
        n->phase = PHASE_FORWARD;
    }
    return n;
}

static Status set_gemm(Graph *g, Node *n, float alpha, Diag *d)
{
    Status st;
    if ((st = node_set_attr_float(g, n, "alpha", alpha, d)) || (st = node_set_attr_float(g, n, "beta", 1.0f, d)) ||
        (st = node_set_attr_int(g, n, "transA", 0, d)) || (st = node_set_attr_int(g, n, "transB", 1, d)))
        return st;
    return ST_OK;
}

/* Node n (reading A and B's weight at input 1) becomes n -> y0, and y = y0 + delta with
 *   MatMul:  delta = (dropout(x) @ A^T @ B^T) * scale        (x [..., in], A [r, in], B [out, r])
 *   Gemm:    delta = Gemm(Gemm(dropout(x), A, transB), B, transB, alpha = gemm alpha * scale)
 *   Conv:    delta = Conv1x1(Conv(dropout(x), A; n's strides, pads, dilations), B) * scale  (A [r, in, k...],
 *            B [out, r, 1...]), the composition being the convolution with B A's kernel, as peft's. */
static Status adapt_use(Graph *g, Node *n, UseKind kind, Value *a, Value *b, double scale, double dropout,
                        Diag *d)
{
    Status st;
    Value *x = n->inputs[0], *y = n->outputs[0];
    Node *m;
    if (dropout > 0) {
        Value *ratio = graph_const_scalar(g, "lora_dropout_ratio", DT_FLOAT, dropout, d);
        if (!ratio || !(m = add(g, n, "Dropout", "lora_dropout/Dropout", 2, (Value *[]){x, ratio}, d)) ||
            (st = infer_node(g, m, d)))
            return d->status ? d->status : ST_NOMEM;
        x = m->outputs[0];
    }
    Value *delta = NULL;
    if (kind == USE_GEMM) {
        float alpha = node_attr_float(n, "alpha", 1.0f);
        Node *t = add(g, n, "Gemm", "lora_A/Gemm", 2, (Value *[]){x, a}, d);
        if (!t || (st = set_gemm(g, t, 1.0f, d)) || (st = infer_node(g, t, d)))
            return d->status;
        Node *u = add(g, n, "Gemm", "lora_B/Gemm", 2, (Value *[]){t->outputs[0], b}, d);
        if (!u || (st = set_gemm(g, u, (float)(alpha * scale), d)) || (st = infer_node(g, u, d)))
            return d->status;
        delta = u->outputs[0];
    } else {
        Node *t, *u;
        if (kind == USE_MATMUL) {
            Node *at = add(g, n, "Transpose", "lora_A/Transpose", 1, &a, d);
            if (!at || (st = node_set_attr_ints(g, at, "perm", (int64_t[]){1, 0}, 2, d)) || (st = infer_node(g, at, d)))
                return d->status;
            Node *bt = add(g, n, "Transpose", "lora_B/Transpose", 1, &b, d);
            if (!bt || (st = node_set_attr_ints(g, bt, "perm", (int64_t[]){1, 0}, 2, d)) || (st = infer_node(g, bt, d)))
                return d->status;
            if (!(t = add(g, n, "MatMul", "lora_A/MatMul", 2, (Value *[]){x, at->outputs[0]}, d)) ||
                (st = infer_node(g, t, d)))
                return d->status;
            if (!(u = add(g, n, "MatMul", "lora_B/MatMul", 2, (Value *[]){t->outputs[0], bt->outputs[0]}, d)) ||
                (st = infer_node(g, u, d)))
                return d->status;
        } else {
            if (!(t = add(g, n, "Conv", "lora_A/Conv", 2, (Value *[]){x, a}, d)))
                return d->status;
            for (int k = 0; k < n->nattrs; k++)
                if (!node_add_attr(g, t, &n->attrs[k]))
                    return diag_error(d, ST_NOMEM, "out of memory adding LoRA nodes");
            if ((st = infer_node(g, t, d)))
                return st;
            if (!(u = add(g, n, "Conv", "lora_B/Conv", 2, (Value *[]){t->outputs[0], b}, d)))
                return d->status;
            int sp = b->shape.rank - 2;
            int64_t ones[IR_MAX_RANK], zeros[2 * IR_MAX_RANK] = {0};
            for (int k = 0; k < IR_MAX_RANK; k++)
                ones[k] = 1;
            if ((st = node_set_attr_ints(g, u, "kernel_shape", ones, (size_t)sp, d)) ||
                (st = node_set_attr_ints(g, u, "strides", ones, (size_t)sp, d)) ||
                (st = node_set_attr_ints(g, u, "dilations", ones, (size_t)sp, d)) ||
                (st = node_set_attr_ints(g, u, "pads", zeros, 2 * (size_t)sp, d)) ||
                (st = node_set_attr_int(g, u, "group", 1, d)) || (st = infer_node(g, u, d)))
                return d->status;
        }
        Value *s = graph_const_scalar(g, "lora_scaling", DT_FLOAT, scale, d);
        Node *sm = s ? add(g, n, "Mul", "lora_scaling/Mul", 2, (Value *[]){u->outputs[0], s}, d) : NULL;
        if (!sm || (st = infer_node(g, sm, d)))
            return d->status ? d->status : ST_NOMEM;
        delta = sm->outputs[0];
    }
    /* y keeps its name and readers: the base node now writes y0 */
    char *y0name = arena_printf(g->arena, "%s/base_output_0", n->name);
    Value *y0 = y0name ? graph_new_value(g, y0name, d) : NULL;
    if (!y0)
        return d->status ? d->status : diag_error(d, ST_NOMEM, "out of memory adding LoRA nodes");
    y0->kind = y->kind;
    y0->dtype = y->dtype;
    y0->shape = y->shape;
    y0->producer = n;
    y0->producer_slot = 0;
    n->outputs[0] = y0;
    char *name = arena_printf(g->arena, "%s/lora/Add", n->name);
    Node *sum = name ? graph_add_node(g, "Add", "", name, 2, (Value *[]){y0, delta}, 1, &y, d) : NULL;
    if (!sum)
        return d->status ? d->status : diag_error(d, ST_NOMEM, "out of memory adding LoRA nodes");
    sum->opset = sum->rule ? sum->rule->canon_opset : 0;
    sum->phase = PHASE_FORWARD;
    return infer_node(g, sum, d);
}

/* ---- the pass ---- */

Status pass_lora(Model *m, const LoraOptions *o, LoraResult *out, Diag *d)
{
    Graph *g = m->graph;
    memset(out, 0, sizeof *out);
    if (!o->nglobs)
        return ST_OK;
    if (o->rank < 1)
        return diag_error(d, ST_USAGE, "--lora-rank %lld: the rank must be a positive integer", (long long)o->rank);
    if (!(o->alpha > 0) || !isfinite(o->alpha))
        return diag_error(d, ST_USAGE, "--lora-alpha %g: must be a positive number", o->alpha);
    if (!(o->dropout >= 0 && o->dropout < 1))
        return diag_error(d, ST_USAGE, "--lora-dropout %g: must be in [0, 1)", o->dropout);
    bool *pick = calloc(g->nvalues ? g->nvalues : 1, sizeof *pick);
    if (!pick)
        return diag_error(d, ST_NOMEM, "out of memory choosing LoRA weights");
    size_t count = 0;
    for (size_t k = 0; k < o->nglobs; k++) {
        const char *glob = o->globs[k], *example = NULL, *why = NULL;
        size_t hits = 0;
        for (size_t i = 0; i < g->nvalues; i++) {
            const Value *v = g->values[i];
            if (!v->is_initializer || !glob_matches(glob, v))
                continue;
            const char *no = not_adaptable(g, v);
            if (no) {
                if (!example) {
                    example = v->name;
                    why = no;
                }
                continue;
            }
            hits++;
            count += !pick[i];
            pick[i] = true;
        }
        if (!hits) {
            free(pick);
            if (example)
                return diag_error(d, ST_USAGE, "--lora '%s' matches no MatMul, Gemm or Conv weight: '%s' is %s", glob,
                                  example, why);
            const char *some = NULL;
            for (size_t i = 0; i < g->nvalues && !some; i++)
                if (g->values[i]->is_initializer && !not_adaptable(g, g->values[i]))
                    some = g->values[i]->name;
            return diag_error(d, ST_USAGE, "--lora '%s' matches no weight of the model (globs match PyTorch's names, "
                              "like '%s')", glob, some ? some : "?");
        }
    }
    out->adapters = arena_calloc(g->arena, count, sizeof *out->adapters);
    if (!out->adapters) {
        free(pick);
        return diag_error(d, ST_NOMEM, "out of memory choosing LoRA weights");
    }
    double scale = o->alpha / (double)o->rank;
    uint64_t rng = o->seed ^ 0x4c6f5241ull;   /* "LoRA": not the head's stream */
    size_t nvalues = g->nvalues;
    Status st = ST_OK;
    for (size_t i = 0; i < nvalues && !st; i++) {
        if (!pick[i])
            continue;
        Value *w = g->values[i];
        /* PyTorch's [out, in, k...]: MatMul and Gemm transB=0 store [in, out] */
        UseKind kind = USE_NONE;
        const Node *first = NULL;
        for (size_t k = 0; k < g->nnodes && !first; k++)
            for (int j = 0; j < g->nodes[k]->ninputs && !first; j++)
                if (!g->nodes[k]->dead && g->nodes[k]->inputs[j] == w) {
                    const char *why;
                    first = g->nodes[k];
                    kind = weight_use(first, j, w, &why);
                }
        bool in_out = stored_in_out(first, kind);
        int64_t out_dim = w->shape.dim[in_out ? 1 : 0], in_dim = w->shape.dim[in_out ? 0 : 1], fan_in = in_dim;
        Shape as = w->shape, bs = w->shape;
        as.dim[0] = o->rank;
        as.dim[1] = in_dim;
        bs.dim[0] = out_dim;
        bs.dim[1] = o->rank;
        for (int k = 2; k < w->shape.rank; k++) {
            fan_in *= w->shape.dim[k];
            bs.dim[k] = 1;
        }
        for (int k = 0; k < w->shape.rank; k++)
            as.sym[k] = bs.sym[k] = NULL;
        char *an = arena_printf(g->arena, "%s.lora_A", w->name), *bn = arena_printf(g->arena, "%s.lora_B", w->name);
        if (!an || !bn) {
            st = diag_error(d, ST_NOMEM, "out of memory adding LoRA parameters");
            break;
        }
        /* nn.Linear's kaiming_uniform_(a=sqrt(5)) on A: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); B zero */
        Value *a = new_param(g, an, &as, &rng, 1.0 / sqrt((double)fan_in), d);
        Value *b = a ? new_param(g, bn, &bs, NULL, 0, d) : NULL;
        if (!b) {
            st = d->status;
            break;
        }
        w->trainable = false;
        size_t nnodes = g->nnodes;
        for (size_t k = 0; k < nnodes && !st; k++) {
            Node *n = g->nodes[k];
            const char *why;
            if (!n->dead && n->ninputs > 1 && n->inputs[1] == w)
                st = adapt_use(g, n, weight_use(n, 1, w, &why), a, b, scale, o->dropout, d);
        }
        out->adapters[out->n++] = (LoraAdapter){w->name, a->name, b->name, scale, in_out};
    }
    free(pick);
    if (st)
        return st;
    return graph_toposort(g, d);
}
