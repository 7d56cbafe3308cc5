/* pass_head.c - replaces a model's classifier by a new head (Linear, or Linear-ReLU-[Dropout]-Linear)
 * on a cut value, with PyTorch's parameter names and nn.Linear's default init from a seeded generator.
 * Everything that only fed the old outputs goes. It does not decide what else trains (pass_freeze.c,
 * which runs before it) and adds no loss (pass_loss.c). */
#include "ir.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the generator: splitmix64 (Steele, Lea, Flood 2014), one stream for all head parameters ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* U[-bound, bound): 24 random bits, so every draw is exact in float. */
static float uniform(uint64_t *state, double bound)
{
    double u = (double)(splitmix64(state) >> 40) * 0x1p-24;
    return (float)((2.0 * u - 1.0) * bound);
}

/* ---- parsing "none", "linear:K", "mlp:H,K" ---- */

static bool parse_dim(const char *s, char **end, int64_t *out)
{
    errno = 0;
    long long v = strtoll(s, end, 10);
    if (*end == s || errno || v < 1 || v > ((int64_t)1 << 31))
        return false;
    *out = v;
    return true;
}

Status head_parse(const char *spec, HeadOptions *o, Diag *d)
{
    char *end;
    o->kind = HEAD_NONE;
    if (!spec || strcmp(spec, "none") == 0)
        return ST_OK;
    if (strncmp(spec, "linear:", 7) == 0) {
        if (parse_dim(spec + 7, &end, &o->classes) && !*end) {
            o->kind = HEAD_LINEAR;
            return ST_OK;
        }
    } else if (strncmp(spec, "mlp:", 4) == 0) {
        if (parse_dim(spec + 4, &end, &o->hidden) && *end == ',' && parse_dim(end + 1, &end, &o->classes) &&
            !*end) {
            o->kind = HEAD_MLP;
            return ST_OK;
        }
    }
    return diag_error(d, ST_USAGE, "--head '%s': expected none, linear:K or mlp:H,K with positive sizes", spec);
}

Status head_pool_parse(const char *spec, HeadPool *pool, Diag *d)
{
    static const char *const names[] = {"cls", "mean", "last"};
    for (int i = 0; i < 3; i++)
        if (spec && strcmp(spec, names[i]) == 0) {
            *pool = (HeadPool)(i + 1);
            return ST_OK;
        }
    return diag_error(d, ST_USAGE, "--pool '%s': expected cls, mean or last", spec ? spec : "");
}

/* ---- finding the cut ---- */

static bool is_const_input(const Node *n, int i)
{
    const Value *v = node_input(n, i);
    return v && v->init;
}

/* The model's final classifier: of the nodes the first graph output depends on, the last Gemm (with a
 * constant B and transA 0) or MatMul (with a constant right operand). Its data input is the cut. */
static Status default_cut(Graph *g, Value **cut, Diag *d)
{
    if (g->noutputs == 0)
        return diag_error(d, ST_INVALID, "the model has no output to put a head on");
    bool *anc = calloc(g->nvalues ? g->nvalues : 1, sizeof *anc);
    if (!anc)
        return diag_error(d, ST_NOMEM, "out of memory finding the classifier");
    anc[g->outputs[0]->id] = true;
    Node *found = NULL;
    for (size_t k = g->nnodes; k-- > 0 && !found;) {
        Node *n = g->nodes[k];
        bool feeds = false;
        for (int i = 0; i < n->noutputs; i++)
            feeds = feeds || (n->outputs[i] && anc[n->outputs[i]->id]);
        if (n->dead || !feeds)
            continue;
        bool gemm = strcmp(n->op_type, "Gemm") == 0 && node_attr_int(n, "transA", 0) == 0;
        bool matmul = strcmp(n->op_type, "MatMul") == 0;
        if (!n->domain[0] && (gemm || matmul) && is_const_input(n, 1) && !is_const_input(n, 0)) {
            found = n;
            break;
        }
        for (int i = 0; i < n->ninputs; i++) {
            Value *v = n->inputs[i];
            if (v && (size_t)v->id < g->nvalues && g->values[v->id] == v)
                anc[v->id] = true;
        }
    }
    free(anc);
    if (!found)
        return diag_error(d, ST_USAGE, "no final classifier (a Gemm or MatMul with constant weights) feeds the "
                          "output '%s': name the head's input with --cut", g->outputs[0]->name);
    *cut = found->inputs[0];
    return ST_OK;
}

/* ---- building ---- */

/* A value named `name`: a new one, or one that only the removed classifier used (so a new head can take
 * over "logits" or "head.weight"). NULL when the name belongs to a live value. */
static Value *claim_name(Graph *g, const char *name, Diag *d)
{
    Value *v = graph_find_local(g, name);
    if (!v)
        return graph_add_value(g, name, d);
    if (v->is_input || v->is_output || graph_count_uses(g, v) || (v->producer && !v->producer->dead))
        return NULL;
    const char *keep = v->name;
    int id = v->id;
    memset(v, 0, sizeof *v);
    v->name = keep;
    v->id = id;
    v->kind = VK_TENSOR;
    v->shape = shape_unknown();
    return v;
}

/* A new trainable parameter [rows, cols] (cols 0: [rows]) drawn from U(-bound, bound). */
static Value *new_param(Graph *g, const char *name, int64_t rows, int64_t cols, double bound, uint64_t *rng,
                        Diag *d)
{
    Value *v = claim_name(g, name, d);
    if (!v) {
        if (d->status == ST_OK)
            diag_error(d, ST_USAGE, "the model already has a value named '%s', which the new head's parameter "
                       "would be called", name);
        return NULL;
    }
    int64_t dims[2] = {rows, cols};
    Shape s = shape_make(cols ? 2 : 1, dims);
    Tensor *t = tensor_new(g->arena, DT_FLOAT, &s);
    if (!t) {
        diag_error(d, ST_NOMEM, "out of memory for head parameter '%s'", name);
        return NULL;
    }
    float *p = t->data;
    for (size_t i = 0; i < t->numel; i++)
        p[i] = uniform(rng, bound);
    v->dtype = DT_FLOAT;
    v->shape = s;
    v->init = t;
    v->is_initializer = true;
    v->trainable = true;
    return v;
}

/* Append a forward node named `name` with one output (a given value, or a fresh one from out_hint). */
static Node *add_node(Graph *g, const char *op, const char *name, int nin, Value *const *in, Value *out,
                      const char *out_hint, Diag *d)
{
    if (!out && !(out = graph_new_value(g, out_hint, d)))
        return NULL;
    Node *n = graph_add_node(g, op, "", name, nin, in, 1, &out, d);
    if (!n)
        return NULL;
    n->opset = n->rule ? n->rule->canon_opset : 0;
    n->phase = PHASE_FORWARD;
    return n;
}

/* One forward node of the pooling, named /pool/<op>[_k] as torch.onnx would; its output inferred. */
static Value *pool_node_k(Graph *g, const char *op, int nin, Value *const *in, int keepdims, Diag *d)
{
    int k = 0;      /* the k-th node of this op in the pooling: "/pool/Cast", "/pool/Cast_1", ... */
    for (size_t i = 0; i < g->nnodes; i++)
        k += strncmp(g->nodes[i]->name ? g->nodes[i]->name : "", "/pool/", 6) == 0 &&
             strcmp(g->nodes[i]->op_type, op) == 0;
    char *name = k ? arena_printf(g->arena, "/pool/%s_%d", op, k) : arena_printf(g->arena, "/pool/%s", op), *out = name ? arena_printf(g->arena, "%s_output_0", name)
                                                                     : NULL;
    if (!out) {
        diag_error(d, ST_NOMEM, "out of memory building the pooling");
        return NULL;
    }
    Node *n = add_node(g, op, name, nin, in, NULL, out, d);
    if (n && keepdims >= 0 && node_set_attr_int(g, n, "keepdims", keepdims, d))
        return NULL;
    return n && !infer_node(g, n, d) ? n->outputs[0] : NULL;
}

static Value *pool_node(Graph *g, const char *op, int nin, Value *const *in, Diag *d)
{
    return pool_node_k(g, op, nin, in, -1, d);
}

/* --pool: x [N, T, D] -> [N, D] (see HeadPool in ir.h). */
static Status add_pool(Graph *g, const HeadOptions *o, Value *x, Value **out, Diag *d)
{
    const Shape *s = &x->shape;
    static const char *const names[] = {"", "cls", "mean", "last"};
    char buf[128];
    if (s->rank != 3 || s->dim[1] < 1)
        return diag_error(d, ST_SHAPE, "--pool %s: the head's input '%s' is %s; pooling needs [N, T, D] (pick the "
                          "hidden states with --cut)", names[o->pool], x->name, shape_str(s, buf, sizeof buf));
    Value *mask = NULL;
    if (o->mask_input) {
        mask = graph_find_local(g, o->mask_input);
        if (!mask || !mask->is_input || mask->init)
            return diag_error(d, ST_USAGE, "--mask-input '%s' is not an input of the model", o->mask_input);
    } else if ((mask = graph_find_local(g, "attention_mask")) && (!mask->is_input || mask->init)) {
        mask = NULL;
    }
    if (mask && (mask->shape.rank != 2 || (mask->shape.dim[1] >= 0 && mask->shape.dim[1] != s->dim[1])))
        return diag_error(d, ST_SHAPE, "--pool %s: the mask '%s' is %s, not [N, %lld] like '%s'", names[o->pool],
                          mask->name, shape_str(&mask->shape, buf, sizeof buf), (long long)s->dim[1], x->name);
    if (o->pool == HEAD_POOL_CLS || (o->pool == HEAD_POOL_LAST && !mask)) {
        Value *idx = graph_const_scalar(g, "pool_index", DT_INT64, o->pool == HEAD_POOL_CLS ? 0 : (double)(s->dim[1] - 1),
                                        d);
        Value *in[2] = {x, idx};
        Node *n = idx ? add_node(g, "Gather", "/pool/Gather", 2, in, NULL, "/pool/Gather_output_0", d) : NULL;
        if (!n || node_set_attr_int(g, n, "axis", 1, d) || infer_node(g, n, d))
            return d->status ? d->status : ST_NOMEM;
        *out = n->outputs[0];
        return ST_OK;
    }
    Value *ax1 = graph_const_ints(g, "pool_axis1", (const int64_t[]){1}, 1, d);
    Value *ax2 = ax1 ? graph_const_ints(g, "pool_axis2", (const int64_t[]){2}, 1, d) : NULL;
    if (!ax2)
        return d->status;
    if (!mask) {    /* mean over T */
        Value *in[2] = {x, ax1};
        *out = pool_node_k(g, "ReduceMean", 2, in, 0, d);
        return *out ? ST_OK : d->status;
    }
    /* m = float(mask != 0) [N, T]; the count c = sum(m) [N, 1] */
    Value *zero = graph_const_scalar(g, "pool_zero", mask->dtype, 0, d);
    Value *ne = zero ? pool_node(g, "Equal", 2, (Value *[]){mask, zero}, d) : NULL;
    ne = ne ? pool_node(g, "Not", 1, &ne, d) : NULL;
    Node *cast = ne ? add_node(g, "Cast", "/pool/Cast", 1, &ne, NULL, "/pool/Cast_output_0", d) : NULL;    /* the first */
    if (!cast || node_set_attr_int(g, cast, "to", DT_FLOAT, d) || infer_node(g, cast, d))
        return d->status ? d->status : ST_NOMEM;
    Value *m = cast->outputs[0];
    Value *c = pool_node(g, "ReduceSum", 2, (Value *[]){m, ax1}, d);   /* keepdims 1: [N, 1] */
    if (!c)
        return d->status;
    Value *w = m;
    if (o->pool == HEAD_POOL_LAST) {   /* w = float(t == c) for t = 1..T: the last marked token */
        int64_t T = s->dim[1];
        Shape ts = shape_make(1, &T);
        Value *t = graph_const(g, "pool_positions", DT_FLOAT, &ts, d);
        if (!t)
            return d->status;
        for (int64_t i = 0; i < T; i++)
            ((float *)t->init->data)[i] = (float)(i + 1);
        Value *eq = pool_node(g, "Equal", 2, (Value *[]){t, c}, d);
        Node *n = eq ? add_node(g, "Cast", "/pool/Cast_1", 1, &eq, NULL, "/pool/Cast_1_output_0", d) : NULL;
        if (!n || node_set_attr_int(g, n, "to", DT_FLOAT, d) || infer_node(g, n, d))
            return d->status ? d->status : ST_NOMEM;
        w = n->outputs[0];
    }
    Value *w3 = pool_node(g, "Unsqueeze", 2, (Value *[]){w, ax2}, d);               /* [N, T, 1] */
    Value *xw = w3 ? pool_node(g, "Mul", 2, (Value *[]){x, w3}, d) : NULL;           /* [N, T, D] */
    Value *sum = xw ? pool_node_k(g, "ReduceSum", 2, (Value *[]){xw, ax1}, 0, d) : NULL;  /* [N, D] */
    if (!sum)
        return d->status;
    if (o->pool == HEAD_POOL_LAST) {
        *out = sum;
        return ST_OK;
    }
    Value *eps = graph_const_scalar(g, "pool_min_count", DT_FLOAT, 1e-9, d);
    Value *cc = eps ? pool_node(g, "Max", 2, (Value *[]){c, eps}, d) : NULL;
    *out = cc ? pool_node(g, "Div", 2, (Value *[]){sum, cc}, d) : NULL;
    return *out ? ST_OK : d->status;
}

/* Linear: y = x @ weight^T + bias, weight [out, in] (torch.nn.Linear, exported as Gemm transB=1). */
static Node *add_linear(Graph *g, const char *module, Value *x, int64_t in, int64_t out, Value *y,
                        uint64_t *rng, Diag *d)
{
    double bound = 1.0 / sqrt((double)in);
    /* head.0 -> node "/head/0/Gemm", output "/head/0/Gemm_output_0", as torch.onnx names them */
    char *wname = arena_printf(g->arena, "%s.weight", module), *bname = arena_printf(g->arena, "%s.bias", module);
    char *nname = arena_printf(g->arena, "/%s/Gemm", module);
    for (char *c = nname; c && *c; c++)
        if (*c == '.')
            *c = '/';
    char *oname = nname ? arena_printf(g->arena, "%s_output_0", nname) : NULL;
    if (!wname || !bname || !oname) {
        diag_error(d, ST_NOMEM, "out of memory building the head");
        return NULL;
    }
    Value *w = new_param(g, wname, out, in, bound, rng, d);
    Value *b = w ? new_param(g, bname, out, 0, bound, rng, d) : NULL;
    if (!b)
        return NULL;
    Value *ins[3] = {x, w, b};
    Node *n = add_node(g, "Gemm", nname, 3, ins, y, oname, d);
    if (n && node_set_attr_int(g, n, "transB", 1, d))
        return NULL;
    return n;
}

Status pass_head(Model *m, const HeadOptions *o, Diag *d)
{
    Graph *g = m->graph;
    Status st;
    if (o->kind == HEAD_NONE) {
        if (o->cut)
            return diag_error(d, ST_USAGE, "--cut '%s' needs a head (--head linear:K or mlp:H,K)", o->cut);
        if (o->pool)
            return diag_error(d, ST_USAGE, "--pool needs a head (--head linear:K or mlp:H,K)");
        return ST_OK;
    }
    if (o->classes < 1 || (o->kind == HEAD_MLP && o->hidden < 1))
        return diag_error(d, ST_USAGE, "--head: sizes must be positive");
    if (!(o->dropout >= 0 && o->dropout < 1))
        return diag_error(d, ST_USAGE, "--head-dropout %g must be in [0, 1)", o->dropout);
    if (o->dropout > 0 && o->kind != HEAD_MLP)
        return diag_error(d, ST_USAGE, "--head-dropout needs an mlp head (Linear-ReLU-Dropout-Linear)");
    Value *cut = NULL;
    if (o->cut) {
        if (!(cut = graph_find_local(g, o->cut)))
            return diag_error(d, ST_USAGE, "--cut '%s' names no value of the model", o->cut);
        if (value_is_const(cut))
            return diag_error(d, ST_USAGE, "--cut '%s' is a constant, not an activation", o->cut);
    } else if ((st = default_cut(g, &cut, d))) {
        return st;
    }

    if (o->pool && ((st = add_pool(g, o, cut, &cut, d))))
        return st;
    /* [N, d1, d2, ...] -> [N, F] */
    const Shape *s = &cut->shape;
    int64_t features = 1;
    char buf[128];
    for (int i = 1; i < s->rank && features > 0; i++)
        features = s->dim[i] < 0 || features > INT64_MAX / (s->dim[i] ? s->dim[i] : 1) ? -1 : features * s->dim[i];
    if (cut->kind != VK_TENSOR || s->rank < 2 || features <= 0)
        return diag_error(d, ST_SHAPE, "a head on a tensor of unsuitable rank: '%s' is %s; it needs [N, features, "
                          "...] with known feature dims (pick another --cut)", cut->name, shape_str(s, buf, sizeof buf));
    if (!dtype_is_float(cut->dtype))
        return diag_error(d, ST_SHAPE, "a head on '%s' of type %s: it needs a float tensor", cut->name,
                          dtype_name(cut->dtype));

    /* Drop the old outputs and whatever only fed them (the classifier, its weights' uses). */
    for (size_t i = 0; i < g->noutputs; i++)
        g->outputs[i]->is_output = false;
    g->noutputs = 0;
    if (!graph_add_output(g, cut))
        return diag_error(d, ST_NOMEM, "out of memory building the head");
    graph_remove_unused(g);
    cut->is_output = false;
    g->noutputs = 0;
    for (size_t i = 0; i < g->nvalues; i++)
        if (g->values[i]->is_initializer && g->values[i]->trainable && !graph_count_uses(g, g->values[i]))
            g->values[i]->trainable = false;

    uint64_t rng = o->seed;
    Value *x = cut;
    Node *n;
    if (s->rank > 2) {
        n = add_node(g, "Flatten", "/head/Flatten", 1, &x, NULL, "/head/Flatten_output_0", d);
        if (!n || node_set_attr_int(g, n, "axis", 1, d) || infer_node(g, n, d))
            return d->status ? d->status : ST_NOMEM;
        x = n->outputs[0];
    }
    Value *logits = claim_name(g, "logits", d);
    if (!logits && !d->status)
        logits = graph_new_value(g, "head_logits", d);
    if (!logits)
        return d->status;
    if (o->kind == HEAD_LINEAR) {
        if (!(n = add_linear(g, "head", x, features, o->classes, logits, &rng, d)) || infer_node(g, n, d))
            return d->status;
    } else {
        /* nn.Sequential(Linear, ReLU, Linear): head.0 and head.2. Dropout has no parameters; it is applied
         * functionally before head.2, so the names stay those of the Sequential whatever the ratio. */
        if (!(n = add_linear(g, "head.0", x, features, o->hidden, NULL, &rng, d)) || infer_node(g, n, d))
            return d->status;
        x = n->outputs[0];
        if (!(n = add_node(g, "Relu", "/head/1/Relu", 1, &x, NULL, "/head/1/Relu_output_0", d)) ||
            infer_node(g, n, d))
            return d->status;
        x = n->outputs[0];
        if (o->dropout > 0) {
            Value *ratio = graph_const_scalar(g, "head_dropout_ratio", DT_FLOAT, o->dropout, d);
            Value *in[2] = {x, ratio};
            if (!ratio || !(n = add_node(g, "Dropout", "/head/dropout/Dropout", 2, in, NULL,
                                         "/head/dropout/Dropout_output_0", d)) || infer_node(g, n, d))
                return d->status;
            x = n->outputs[0];
        }
        if (!(n = add_linear(g, "head.2", x, o->hidden, o->classes, logits, &rng, d)) || infer_node(g, n, d))
            return d->status;
    }
    if (!graph_add_output(g, logits))
        return diag_error(d, ST_NOMEM, "out of memory building the head");
    return ST_OK;
}
