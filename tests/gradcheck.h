/* gradcheck.h - finite-difference checks of gradient rules, header-only, for the tests/test_grad_*.c
 * binaries. A case is a tiny model built by hand (or loaded): trainable parameters are runtime inputs,
 * the op(s) under test, and the loss L = sum_k ReduceSum(Y_k * R_k) with fixed random R_k. pass_autodiff
 * adds the backward pass, codegen turns each case into C (its own prefix), all cases are compiled in
 * parallel and linked into shared objects that are dlopen'ed, and each parameter gradient g is compared
 * with central differences of L along random directions u:
 *     <g, u>  vs  fd = (4 D(eps/2) - D(eps)) / 3,  D(e) = (L(p + e u) - L(p - e u)) / (2 e)
 * (central differences with Richardson extrapolation), u random +-1, L summed in double from the Y_k:
 *     rel err = |<g,u> - fd| / max(|<g,u>|, |fd|, 1e-4 * |g| * |u|, atol / tol)   (the floor guards
 *     cancellation; c->atol, 0 by default, lets a case accept an absolute difference, for gradients
 *     that are exactly 0 where finite differences see only float32 noise).
 * Float32 kernels, eps 2e-2, tolerance 1e-3 by default (per case: c->eps, c->tol). Parameters near a
 * kink (Relu at 0, Max ties, Clip bounds) must be kept away from it by the case (gc_avoid).
 * It does not test forward values (the conformance tests do) and never fixes a failing case.
 *
 * Use:
 *     GradCheck *s = gc_new("grad_a");
 *     GcCase *c = gc_case(s, "Gemm", "transB, C [N]");
 *     Value *a = gc_param(c, "a", "3,4", -1, 1), *b = gc_param(c, "b", "5,4", -1, 1), ...;
 *     Value *y = gc_op(c, "Gemm", 3, (Value *[]){a, b, cc}, "transB=1 alpha=0.5");
 *     gc_check(c, 1, &y);
 *     int failures = gc_run(s);   // compiles, runs, prints one row per case, frees everything
 * A case may also carry reference gradients (PyTorch's): gc_set_r fixes R, gc_expect_grad the expected
 * dL/dparam with its tolerance; then the finite differences and the reference must both agree.
 * gc_attrs syntax: space-separated name=value; value 3 (int), 0.5 or 1e-3 (float), [1,2] (ints),
 * 'text' (string).
 */
#ifndef ONNXTUNE_GRADCHECK_H
#define ONNXTUNE_GRADCHECK_H

#include "codegen.h"
#include "ir.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define GC_API static __attribute__((unused))
#define GC_MAX_PARAMS 64
#define GC_MAX_YS 8
#define GC_MAX_CASES 512
#define GC_DIRECTIONS 2

typedef struct GcParam {
    Value *v;
    float *data;            /* base values [n] */
    size_t n;
    int grad_out;           /* index of its gradient among the graph outputs, -1: autodiff gave none */
    float *want;            /* NULL, or a reference gradient [n] (gc_expect_grad) */
    double want_tol;
} GcParam;

typedef struct GcCase {
    char op[64], label[128];
    Model *m;
    Graph *g;
    Diag d;                 /* the first error while building (the case then FAILs with it) */
    unsigned rng;
    GcParam params[GC_MAX_PARAMS];
    int nparams;
    Value *ys[GC_MAX_YS];
    float *r[GC_MAX_YS];    /* R_k, numel of Y_k */
    Value *rv[GC_MAX_YS];   /* R_k's constant in the graph */
    size_t yn[GC_MAX_YS];
    int ny;
    double eps, tol;
    bool no_fd;             /* reference gradients only (inputs on kinks, where finite differences cannot
                               decide); the case must carry gc_expect_grad references */
    double atol;            /* 0, or an absolute difference that counts as agreement (a gradient that is
                               exactly 0, where finite differences only see float32 noise) */
    bool ready;             /* C file written */
    char prefix[96];
    char c_path[PATH_MAX + 128], o_path[PATH_MAX + 128];
    int so;                 /* index of its shared object */
    double max_err;
    double max_ref_err;     /* against the gc_expect_grad references */
    char note[1200];
} GcCase;

typedef struct GradCheck {
    char name[64];
    char dir[PATH_MAX];
    GcCase *cases[GC_MAX_CASES];
    int ncases;
    double eps, tol;
} GradCheck;

/* ---- random numbers: a fixed xorshift per case, so runs are reproducible ---- */

static unsigned gc_rand_u32(unsigned *s)
{
    unsigned x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static double gc_uniform(unsigned *s, double lo, double hi)
{
    return lo + (hi - lo) * ((gc_rand_u32(s) >> 8) / 16777216.0);
}

static unsigned gc_hash(const char *a, const char *b)
{
    unsigned h = 2166136261u;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h ? h : 1;
}

/* ---- suite and cases ---- */

GC_API GradCheck *gc_new(const char *name)
{
    GradCheck *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->name, sizeof s->name, "%s", name);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/onnxtune-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(s->dir)) {
        perror("gradcheck: mkdtemp");
        free(s);
        return NULL;
    }
    s->eps = 2e-2;
    s->tol = 1e-3;
    return s;
}

static bool gc_ok(const GcCase *c)
{
    return c && c->d.status == ST_OK;
}

static void gc_fail(GcCase *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gc_fail(GcCase *c, const char *fmt, ...)
{
    if (c->d.status != ST_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->d.msg, sizeof c->d.msg, fmt, ap);
    va_end(ap);
    c->d.status = ST_ERR;
}

/* A new case: an empty model whose graph the case builds. */
GC_API GcCase *gc_case(GradCheck *s, const char *op, const char *label)
{
    if (!s || s->ncases >= GC_MAX_CASES)
        return NULL;
    GcCase *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    s->cases[s->ncases] = c;
    snprintf(c->op, sizeof c->op, "%s", op);
    snprintf(c->label, sizeof c->label, "%s", label);
    snprintf(c->prefix, sizeof c->prefix, "gc_%s_%d", s->name, s->ncases);
    for (char *p = c->prefix; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    s->ncases++;
    diag_init(&c->d, NULL);
    c->rng = gc_hash(op, label);
    c->eps = s->eps;
    c->tol = s->tol;
    c->m = model_new();
    c->g = c->m ? graph_new(c->m->arena, "gradcheck", NULL) : NULL;
    if (!c->g)
        gc_fail(c, "out of memory");
    else
        c->m->graph = c->g;
    return c;
}

/* A case around a model that is already loaded and shape-inferred (the case owns it). */
GC_API GcCase *gc_case_model(GradCheck *s, const char *op, const char *label, Model *m)
{
    GcCase *c = gc_case(s, op, label);
    if (!c)
        return NULL;
    model_free(c->m);
    c->m = m;
    c->g = m ? m->graph : NULL;
    if (!c->g) {
        gc_fail(c, "no model");
        return c;
    }
    /* the case's outputs replace the model's */
    for (size_t i = 0; i < c->g->noutputs; i++)
        c->g->outputs[i]->is_output = false;
    c->g->noutputs = 0;
    return c;
}

/* "2,3,4" -> a static shape ("" is a scalar). */
static bool gc_parse_dims(const char *spec, Shape *s)
{
    *s = shape_scalar();
    const char *p = spec;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || s->rank >= IR_MAX_RANK)
            return false;
        s->dim[s->rank++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return false;
    }
    return true;
}

/* A trainable parameter: a runtime input with values uniform in [lo, hi]. */
GC_API Value *gc_param(GcCase *c, const char *name, const char *dims, double lo, double hi)
{
    if (!gc_ok(c))
        return NULL;
    Shape s;
    size_t n;
    if (!gc_parse_dims(dims, &s) || !shape_numel(&s, &n)) {
        gc_fail(c, "bad dims \"%s\"", dims);
        return NULL;
    }
    if (c->nparams >= GC_MAX_PARAMS) {
        gc_fail(c, "too many parameters");
        return NULL;
    }
    Value *v = graph_add_value(c->g, name, &c->d);
    float *data = malloc((n ? n : 1) * sizeof *data);
    if (!v || !data || !graph_add_input(c->g, v)) {
        free(data);
        gc_fail(c, "cannot add parameter %s", name);
        return NULL;
    }
    v->kind = VK_TENSOR;
    v->dtype = DT_FLOAT;
    v->shape = s;
    v->trainable = true;
    for (size_t i = 0; i < n; i++)
        data[i] = (float)gc_uniform(&c->rng, lo, hi);
    c->params[c->nparams++] = (GcParam){.v = v, .data = data, .n = n, .grad_out = -1};
    return v;
}

static GcParam *gc_param_of(GcCase *c, const Value *v)
{
    for (int i = 0; i < c->nparams; i++)
        if (c->params[i].v == v)
            return &c->params[i];
    return NULL;
}

/* Move the values of parameter v that lie within `margin` of `point` to point +- margin (keeping the
 * side), so finite differences do not straddle a kink there. */
GC_API void gc_avoid(GcCase *c, Value *v, double point, double margin)
{
    GcParam *p = gc_ok(c) ? gc_param_of(c, v) : NULL;
    for (size_t i = 0; p && i < p->n; i++)
        if (fabs(p->data[i] - point) < margin)
            p->data[i] = (float)(p->data[i] >= point ? point + margin : point - margin);
}

/* The base values of parameter v (numel of them), to adjust in place; NULL when v is not one. */
GC_API float *gc_values(GcCase *c, Value *v)
{
    GcParam *p = gc_ok(c) ? gc_param_of(c, v) : NULL;
    return p ? p->data : NULL;
}

/* Set the values of parameter v (n of them). */
GC_API void gc_set(GcCase *c, Value *v, const float *vals, size_t n)
{
    GcParam *p = gc_ok(c) ? gc_param_of(c, v) : NULL;
    if (!p || p->n != n) {
        gc_fail(c, "gc_set: not a parameter of %zu values", n);
        return;
    }
    memcpy(p->data, vals, n * sizeof *vals);
}

/* A frozen float constant with values uniform in [lo, hi]. */
GC_API Value *gc_data(GcCase *c, const char *name, const char *dims, double lo, double hi)
{
    if (!gc_ok(c))
        return NULL;
    Shape s;
    if (!gc_parse_dims(dims, &s)) {
        gc_fail(c, "bad dims \"%s\"", dims);
        return NULL;
    }
    Value *v = graph_const(c->g, name, DT_FLOAT, &s, &c->d);
    for (size_t i = 0; v && i < v->init->numel; i++)
        tensor_set_f64(v->init, i, gc_uniform(&c->rng, lo, hi));
    return v;
}

/* A float scalar constant. */
GC_API Value *gc_scalar(GcCase *c, double x)
{
    return gc_ok(c) ? graph_const_scalar(c->g, "scalar", DT_FLOAT, x, &c->d) : NULL;
}

/* An int64 constant of the given dims holding vals (numel of them). */
GC_API Value *gc_ints(GcCase *c, const char *dims, const int64_t *vals)
{
    if (!gc_ok(c))
        return NULL;
    Shape s;
    if (!gc_parse_dims(dims, &s)) {
        gc_fail(c, "bad dims \"%s\"", dims);
        return NULL;
    }
    Value *v = graph_const(c->g, "ints", DT_INT64, &s, &c->d);
    if (v && v->init->numel)
        memcpy(v->init->data, vals, v->init->numel * sizeof *vals);
    return v;
}

/* Set attributes from "name=value ..." (see the top of the file). */
static bool gc_attrs(GcCase *c, Node *n, const char *spec)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec ? spec : "");
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            gc_fail(c, "bad attribute \"%s\"", tok);
            return false;
        }
        *eq = '\0';
        const char *name = tok, *val = eq + 1;
        Status st = ST_OK;
        if (val[0] == '[') {
            int64_t v[16];
            size_t k = 0;
            for (const char *p = val + 1; *p && *p != ']' && k < 16;) {
                char *end;
                v[k++] = strtoll(p, &end, 10);
                p = *end == ',' ? end + 1 : end;
                if (end == p && *p != ']')
                    break;
            }
            st = node_set_attr_ints(c->g, n, name, v, k, &c->d);
        } else if (val[0] == '\'') {
            size_t len = strlen(val);
            char *s = arena_strndup(c->g->arena, val + 1, len >= 2 ? len - 2 : 0);
            Attr a = {.name = name, .type = AT_STRING, .s = s, .slen = s ? strlen(s) : 0};
            if (!s || !node_add_attr(c->g, n, &a))
                st = ST_NOMEM;
        } else if (strpbrk(val, ".eEn")) {
            st = node_set_attr_float(c->g, n, name, strtof(val, NULL), &c->d);
        } else {
            st = node_set_attr_int(c->g, n, name, strtoll(val, NULL, 10), &c->d);
        }
        if (st) {
            gc_fail(c, "cannot set attribute %s", name);
            return false;
        }
    }
    return true;
}

/* Add a node (default domain) with nout outputs, set its attributes, infer its shapes. */
GC_API Node *gc_node(GcCase *c, const char *op, int nin, Value *const *in, int nout, const char *attrs)
{
    if (!gc_ok(c))
        return NULL;
    Value *outs[8];
    if (nout < 1 || nout > 8) {
        gc_fail(c, "bad output count");
        return NULL;
    }
    for (int i = 0; i < nout; i++)
        if (!(outs[i] = graph_new_value(c->g, op, &c->d)))
            return NULL;
    Node *n = graph_add_node(c->g, op, "", NULL, nin, in, nout, outs, &c->d);
    if (!n)
        return NULL;
    if (n->rule)
        n->opset = n->rule->canon_opset;
    if (!gc_attrs(c, n, attrs))
        return NULL;
    if (infer_node(c->g, n, &c->d) != ST_OK)
        return NULL;
    return n;
}

/* gc_node with one output; returns that output. */
GC_API Value *gc_op(GcCase *c, const char *op, int nin, Value *const *in, const char *attrs)
{
    Node *n = gc_node(c, op, nin, in, 1, attrs);
    return n ? n->outputs[0] : NULL;
}

/* Turn every float initializer of a loaded model that some node reads into a trainable parameter
 * (single numbers are left alone: exporters store constants such as LayerNorm's epsilon or the
 * exponent of x^2 that way). */
GC_API void gc_train_initializers(GcCase *c)
{
    if (!gc_ok(c))
        return;
    Graph *g = c->g;
    for (size_t i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (!v->init || v->dtype != DT_FLOAT || !v->is_initializer || v->init->numel < 2 ||
            graph_count_uses(g, v) == 0)
            continue;
        if (c->nparams >= GC_MAX_PARAMS) {
            gc_fail(c, "more than %d parameters", GC_MAX_PARAMS);
            return;
        }
        size_t n = v->init->numel;
        float *data = malloc((n ? n : 1) * sizeof *data);
        if (!data || !graph_add_input(g, v)) {
            free(data);
            gc_fail(c, "out of memory");
            return;
        }
        memcpy(data, v->init->data, n * sizeof *data);
        v->init = NULL;
        v->trainable = true;
        c->params[c->nparams++] = (GcParam){.v = v, .data = data, .n = n, .grad_out = -1};
    }
}

/* Fix the integer input `name` of a loaded model to values uniform in [lo, hi) (token ids, say). */
GC_API void gc_int_input(GcCase *c, const char *name, int64_t lo, int64_t hi)
{
    Value *v = gc_ok(c) ? graph_find_local(c->g, name) : NULL;
    if (!v || !dtype_is_int(v->dtype) || !shape_is_static(&v->shape) || hi <= lo) {
        gc_fail(c, "no integer input '%s' of static shape", name);
        return;
    }
    if (!(v->init = tensor_new(c->g->arena, v->dtype, &v->shape))) {
        gc_fail(c, "out of memory");
        return;
    }
    for (size_t k = 0; k < v->init->numel; k++)
        tensor_set_i64(v->init, k, lo + (int64_t)(gc_rand_u32(&c->rng) % (unsigned)(hi - lo)));
}

/* Give every runtime input of a loaded model that is not a parameter fixed data uniform in [lo, hi]
 * (the data a training step would read): it becomes a constant of the case. */
GC_API void gc_data_inputs(GcCase *c, double lo, double hi)
{
    if (!gc_ok(c))
        return;
    for (size_t i = 0; i < c->g->ninputs; i++) {
        Value *v = c->g->inputs[i];
        if (v->init || v->trainable)
            continue;
        if (v->dtype != DT_FLOAT || !shape_is_static(&v->shape)) {
            gc_fail(c, "input '%s' is not a float tensor of static shape", v->name);
            return;
        }
        if (!(v->init = tensor_new(c->g->arena, DT_FLOAT, &v->shape))) {
            gc_fail(c, "out of memory");
            return;
        }
        for (size_t k = 0; k < v->init->numel; k++)
            tensor_set_f64(v->init, k, gc_uniform(&c->rng, lo, hi));
    }
}

/* Finish the case: the loss over ys, the backward pass, the outputs (ys, then gradients), the C file. */
GC_API void gc_check(GcCase *c, int ny, Value *const *ys)
{
    if (!gc_ok(c))
        return;
    Graph *g = c->g;
    if (ny < 1 || ny > GC_MAX_YS) {
        gc_fail(c, "bad output count");
        return;
    }
    Value *loss = NULL;
    for (int k = 0; k < ny; k++) {
        Value *y = ys[k];
        if (!y || !shape_is_static(&y->shape) || y->dtype != DT_FLOAT) {
            gc_fail(c, "output %d is not a float tensor of static shape", k);
            return;
        }
        Value *r = graph_const(g, "R", DT_FLOAT, &y->shape, &c->d);
        if (!r)
            return;
        c->r[k] = malloc((r->init->numel ? r->init->numel : 1) * sizeof(float));
        if (!c->r[k]) {
            gc_fail(c, "out of memory");
            return;
        }
        for (size_t i = 0; i < r->init->numel; i++) {
            c->r[k][i] = (float)gc_uniform(&c->rng, -1, 1);
            tensor_set_f64(r->init, i, c->r[k][i]);
        }
        c->ys[k] = y;
        c->rv[k] = r;
        c->yn[k] = r->init->numel;
        c->ny = k + 1;
        Value *prod = gc_op(c, "Mul", 2, (Value *[]){y, r}, NULL);
        Value *part = gc_op(c, "ReduceSum", 1, &prod, "keepdims=0");
        loss = !loss ? part : gc_op(c, "Add", 2, (Value *[]){loss, part}, NULL);
        if (!loss)
            return;
    }
    Gradients gr;
    if (pass_autodiff(g, loss, &gr, &c->d) != ST_OK)
        return;
    for (int k = 0; k < ny; k++)
        if (!graph_add_output(g, ys[k])) {
            gc_fail(c, "out of memory");
            return;
        }
    for (size_t i = 0; i < gr.n; i++) {
        GcParam *p = gc_param_of(c, gr.params[i]);
        if (!p)
            continue;
        p->grad_out = (int)g->noutputs;
        if (!graph_add_output(g, gr.grads[i])) {
            gc_fail(c, "out of memory");
            return;
        }
    }
    graph_remove_unused(g);
    if (graph_verify(g, &c->d) != ST_OK)
        return;
    c->ready = true;
}

/* After gc_check: set R_k to r (numel of Y_k values), e.g. the R a reference was computed with. */
GC_API void gc_set_r(GcCase *c, int k, const float *r, size_t n)
{
    if (!gc_ok(c) || k < 0 || k >= c->ny || n != c->yn[k]) {
        gc_fail(c, "gc_set_r: no output %d of %zu values", k, n);
        return;
    }
    memcpy(c->r[k], r, n * sizeof *r);
    for (size_t i = 0; i < n; i++)
        tensor_set_f64(c->rv[k]->init, i, r[i]);
}

/* Also compare parameter v's gradient with a reference (PyTorch's, say): max |g - want| / max |want|
 * must be <= tol. The finite-difference check still runs. */
GC_API void gc_expect_grad(GcCase *c, Value *v, const float *want, size_t n, double tol)
{
    GcParam *p = gc_ok(c) ? gc_param_of(c, v) : NULL;
    if (!p || p->n != n || !(p->want = malloc((n ? n : 1) * sizeof *want))) {
        gc_fail(c, "gc_expect_grad: not a parameter of %zu values", n);
        return;
    }
    memcpy(p->want, want, n * sizeof *want);
    p->want_tol = tol;
}

/* ---- running ---- */

static double gc_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

/* L = sum_k sum_i R_k[i] * Y_k[i] in double. */
static double gc_loss(const GcCase *c, void *const *outs)
{
    double l = 0;
    for (int k = 0; k < c->ny; k++) {
        const float *y = outs[k];
        for (size_t i = 0; i < c->yn[k]; i++)
            l += (double)c->r[k][i] * y[i];
    }
    return l;
}

/* Run one compiled case and fill max_err / note; true when it passes. */
static bool gc_eval(GcCase *c, const CgModelInfo *info)
{
    bool ok = false;
    int nin = info->ninputs, nout = info->noutputs;
    void **ins = calloc((size_t)nin + 1, sizeof *ins), **outs = calloc((size_t)nout + 1, sizeof *outs);
    float **work_in = calloc((size_t)nin + 1, sizeof *work_in);
    size_t wsb = (info->workspace_bytes + 63) / 64 * 64;
    void *ws = wsb ? aligned_alloc(64, wsb) : NULL;
    int *which = calloc((size_t)nin + 1, sizeof *which);
    float *u = NULL, *g = NULL;
    if (!ins || !outs || !work_in || !which || (wsb && !ws)) {
        snprintf(c->note, sizeof c->note, "out of memory");
        goto done;
    }
    if (nout != (int)c->g->noutputs) {
        snprintf(c->note, sizeof c->note, "the program has %d outputs, the graph %zu", nout, c->g->noutputs);
        goto done;
    }
    for (int i = 0; i < nin; i++) {
        which[i] = -1;
        for (int p = 0; p < c->nparams; p++)
            if (strcmp(c->params[p].v->name, info->inputs[i].name) == 0)
                which[i] = p;
        if (which[i] < 0) {
            snprintf(c->note, sizeof c->note, "runtime input '%s' is not a parameter", info->inputs[i].name);
            goto done;
        }
        GcParam *p = &c->params[which[i]];
        work_in[i] = malloc((p->n ? p->n : 1) * sizeof(float));
        if (!work_in[i])
            goto done;
        memcpy(work_in[i], p->data, p->n * sizeof(float));
        ins[i] = work_in[i];
    }
    for (int k = 0; k < nout; k++) {
        size_t n = 1;
        for (int j = 0; j < info->outputs[k].rank; j++)
            n *= (size_t)info->outputs[k].dims[j];
        if (!(outs[k] = calloc(n ? n : 1, sizeof(float))))
            goto done;
    }
    c->max_err = 0;
    c->max_ref_err = 0;
    bool ref_bad = false;
    int worst_p = -1;
    double worst_an = 0, worst_fd = 0;
    for (int i = 0; i < nin; i++) {
        GcParam *p = &c->params[which[i]];
        /* the gradient of the base run (the perturbed runs overwrite the outputs) */
        free(u);
        free(g);
        u = malloc((p->n ? p->n : 1) * sizeof *u);
        g = p->grad_out >= 0 ? malloc((p->n ? p->n : 1) * sizeof *g) : NULL;
        if (!u || (p->grad_out >= 0 && !g))
            goto done;
        if (g) {
            info->run(ins, outs, ws);
            memcpy(g, outs[p->grad_out], p->n * sizeof *g);
        }
        if (p->want) {
            double num = 0, den = 0;
            for (size_t j = 0; j < p->n; j++) {
                num = fmax(num, fabs((double)(g ? g[j] : 0) - p->want[j]));
                den = fmax(den, fabs((double)p->want[j]));
            }
            double e = den > 0 ? num / den : num;
            if (!(e <= p->want_tol) && !ref_bad) {
                ref_bad = true;
                snprintf(c->note, sizeof c->note, "d/d%s differs from the reference: max |g - want| / max |want| = "
                         "%.3g > %g", p->v->name, e, p->want_tol);
            }
            if (!(e <= c->max_ref_err))
                c->max_ref_err = e;
        }
        double gnorm = 0;
        for (size_t j = 0; g && j < p->n; j++)
            gnorm += (double)g[j] * g[j];
        gnorm = sqrt(gnorm);
        for (int dir = 0; !c->no_fd && dir < GC_DIRECTIONS; dir++) {
            double an = 0;
            for (size_t j = 0; j < p->n; j++) {
                u[j] = gc_rand_u32(&c->rng) & 1 ? 1.0f : -1.0f;
                an += g ? (double)g[j] * u[j] : 0;
            }
            /* central differences at eps and eps/2, Richardson-combined (error O(eps^4)) */
            double diff[2];
            for (int h = 0; h < 2; h++) {
                double e = h ? c->eps / 2 : c->eps, l[2];
                for (int sign = 0; sign < 2; sign++) {
                    for (size_t j = 0; j < p->n; j++)
                        work_in[i][j] = (float)(p->data[j] + (sign ? -e : e) * u[j]);
                    info->run(ins, outs, ws);
                    l[sign] = gc_loss(c, outs);
                }
                diff[h] = (l[0] - l[1]) / (2 * e);
            }
            memcpy(work_in[i], p->data, p->n * sizeof(float));
            double fd = (4 * diff[1] - diff[0]) / 3;
            double floor_ = fmax(1e-4 * gnorm * sqrt((double)p->n), c->atol / c->tol);
            double den = fmax(fmax(fabs(an), fabs(fd)), floor_);
            double err = den > 0 ? fabs(an - fd) / den : 0;
            if (getenv("GRADCHECK_VERBOSE"))
                printf("    %-24s %-40s dir %d  <g,u> %.9g  fd %.9g  rel err %.3g\n", c->label, p->v->name, dir, an, fd,
                       err);
            if (!(err <= c->max_err)) {
                c->max_err = err;
                worst_p = which[i];
                worst_an = an;
                worst_fd = fd;
            }
        }
    }
    ok = c->max_err <= c->tol && !ref_bad;
    if (worst_p >= 0 && !(c->max_err <= c->tol))
        snprintf(c->note, sizeof c->note, "worst: d/d%s <g,u> = %.9g, finite difference %.9g%s",
                 c->params[worst_p].v->name, worst_an, worst_fd,
                 c->params[worst_p].grad_out < 0 ? " (autodiff gave no gradient)" : "");
done:
    for (int i = 0; work_in && i < nin; i++)
        free(work_in[i]);
    for (int k = 0; outs && k < nout; k++)
        free(outs[k]);
    free(u);
    free(g);
    free(ins);
    free(outs);
    free(work_in);
    free(which);
    free(ws);
    return ok;
}

/* Emit, compile (two jobs at a time), link (<= 40 objects per shared object), run and report every
 * case; frees the suite. Returns the number of failing cases. */
GC_API int gc_run(GradCheck *s)
{
    if (!s)
        return 1;
    double t0 = gc_now();
    int failures = 0;
    Diag d;
    diag_init(&d, NULL);
    /* C files */
    for (int i = 0; i < s->ncases; i++) {
        GcCase *c = s->cases[i];
        if (!c->ready)
            continue;
        snprintf(c->c_path, sizeof c->c_path, "%s/%s.c", s->dir, c->prefix);
        snprintf(c->o_path, sizeof c->o_path, "%s/%s.o", s->dir, c->prefix);
        FILE *f = fopen(c->c_path, "w");
        CodegenOptions co = {.prefix = c->prefix, .model_path = c->label};
        Status st = f ? codegen_emit(c->g, &co, f, NULL, &c->d) : ST_IO;
        if (f && fclose(f) != 0 && !st)
            st = ST_IO;
        if (st) {
            if (c->d.status == ST_OK)
                gc_fail(c, "cannot write %s", c->c_path);
            c->ready = false;
        }
    }
    /* objects, two compilers at a time */
    CcJob jobs[2];
    int slot_case[2] = {-1, -1};
    const char *src[GC_MAX_CASES];
    for (int next = 0; next < s->ncases;) {
        for (int k = 0; k < 2; k++) {
            if (slot_case[k] >= 0)
                continue;
            while (next < s->ncases && !s->cases[next]->ready)
                next++;
            if (next >= s->ncases)
                break;
            GcCase *c = s->cases[next];
            src[next] = c->c_path;
            jobs[k] = (CcJob){.mode = CC_OBJECT, .inputs = &src[next], .ninputs = 1, .output = c->o_path,
                              .werror = true};
            if (codegen_cc_start(&jobs[k], &c->d) != ST_OK) {
                c->ready = false;
                next++;
                continue;
            }
            slot_case[k] = next++;
        }
        for (int k = 0; k < 2; k++) {
            if (slot_case[k] < 0)
                continue;
            GcCase *c = s->cases[slot_case[k]];
            if (codegen_cc_finish(&jobs[k], &c->d) != ST_OK)
                c->ready = false;
            slot_case[k] = -1;
        }
    }
    /* shared objects */
    void *sos[GC_MAX_CASES / 40 + 2] = {0};
    int nso = 0;
    for (int first = 0; first < s->ncases;) {
        const char *objs[40];
        int idx[40], n = 0, i = first;
        for (; i < s->ncases && n < 40; i++)
            if (s->cases[i]->ready) {
                idx[n] = i;
                objs[n++] = s->cases[i]->o_path;
            }
        first = i;
        if (n == 0)
            continue;
        char so_path[PATH_MAX + 32];
        snprintf(so_path, sizeof so_path, "%s/cases_%d.so", s->dir, nso);
        CcJob link = {.mode = CC_SHARED, .inputs = objs, .ninputs = (size_t)n, .output = so_path};
        Status st = codegen_cc(&link, &d);
        void *h = st ? NULL : dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
        for (int k = 0; k < n; k++) {
            GcCase *c = s->cases[idx[k]];
            c->so = nso;
            if (!h) {
                gc_fail(c, "link/dlopen: %s", st ? d.msg : dlerror());
                c->ready = false;
            }
        }
        sos[nso++] = h;
    }
    double t1 = gc_now();
    /* run and report */
    printf("%-18s %-44s %12s  %s\n", "op", "case", "max rel err", "result");
    for (int i = 0; i < s->ncases; i++) {
        GcCase *c = s->cases[i];
        bool pass = false;
        if (c->ready) {
            char sym[128];
            snprintf(sym, sizeof sym, "%s_info", c->prefix);
            const CgModelInfo *info = dlsym(sos[c->so], sym);
            if (!info)
                snprintf(c->note, sizeof c->note, "no symbol %s", sym);
            else
                pass = gc_eval(c, info);
            if (c->no_fd)
                printf("%-18s %-44s %12s  %s\n", c->op, c->label, "(no FD)", pass ? "PASS" : "FAIL");
            else
                printf("%-18s %-44s %12.3g  %s\n", c->op, c->label, c->max_err, pass ? "PASS" : "FAIL");
            bool has_ref = false;
            for (int p = 0; p < c->nparams; p++)
                has_ref = has_ref || c->params[p].want;
            if (has_ref && info)
                printf("%-18s %-44s %12.3g  (max |g - ref| / max |ref|)\n", "", "  vs reference gradients",
                       c->max_ref_err);
        } else {
            printf("%-18s %-44s %12s  FAIL\n", c->op, c->label, "-");
            snprintf(c->note, sizeof c->note, "%s", c->d.status ? c->d.msg : "not built");
        }
        if (!pass) {
            failures++;
            printf("    %s\n", c->note[0] ? c->note : "");
        }
    }
    printf("%s: %d cases, %d failed (tolerance %g on directional derivatives, eps %g); build %.1f s, "
           "run %.1f s\n", s->name, s->ncases, failures, s->tol, s->eps, t1 - t0, gc_now() - t1);
    /* clean up */
    for (int k = 0; k < nso; k++)
        if (sos[k])
            dlclose(sos[k]);
    bool keep = getenv("GRADCHECK_KEEP") != NULL;
    for (int i = 0; i < s->ncases; i++) {
        GcCase *c = s->cases[i];
        if (!keep) {
            if (c->c_path[0])
                unlink(c->c_path);
            if (c->o_path[0])
                unlink(c->o_path);
        }
        for (int p = 0; p < c->nparams; p++)
            free(c->params[p].data), free(c->params[p].want);
        for (int k = 0; k < c->ny; k++)
            free(c->r[k]);
        model_free(c->m);
        free(c);
    }
    if (keep) {
        printf("generated files kept in %s\n", s->dir);
    } else {
        for (int k = 0; k < nso; k++) {
            char so_path[PATH_MAX + 32];
            snprintf(so_path, sizeof so_path, "%s/cases_%d.so", s->dir, k);
            unlink(so_path);
        }
        rmdir(s->dir);
    }
    free(s);
    return failures;
}

#endif
