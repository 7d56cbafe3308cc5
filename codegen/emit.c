/* emit.c - the code generator's driver: plans memory, walks the nodes in execution order and lets
 * each op's emitter (codegen/emit_<family>.c) print one commented block, lays out the weights the
 * code reads, and assembles the file: prologue, weights, PREFIX_run, PREFIX_info, optional main().
 * It knows no op semantics; it never changes the graph (the plan lives in the graph's arena). */
#include "emit.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const Emitter *const families[] = {
    elementwise_emitters, shape_emitters, matmul_emitters, conv_emitters,
    pool_emitters, norm_emitters, reduce_emitters, rnn_emitters,
    elementwise_grad_emitters, conv_grad_emitters, pool_grad_emitters, norm_grad_emitters, rnn_grad_emitters,
    train_emitters,
    shape_grad_emitters, reduce_grad_emitters,
};

static const Emitter *emitter_for(const Node *n)
{
    const char *dom = n->domain && strcmp(n->domain, "ai.onnx") != 0 ? n->domain : "";
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const Emitter *e = families[f]; e->op; e++)
            if (strcmp(e->op, n->op_type) == 0 && strcmp(e->domain ? e->domain : "", dom) == 0)
                return e;
    return NULL;
}

bool codegen_has_emitter(const char *op_type)
{
    Node n = {.op_type = op_type, .domain = ""};
    return emitter_for(&n) != NULL;
}

bool codegen_has_emitter_in(const char *domain, const char *op_type)
{
    Node n = {.op_type = op_type, .domain = domain ? domain : ""};
    return emitter_for(&n) != NULL;
}

const char *codegen_op_at(size_t i)
{
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        size_t k = 0;
        while (families[f][k].op)
            k++;
        if (i < k)
            return families[f][i].op;
        i -= k;
    }
    return NULL;
}

/* ---- printing ---- */

void cg_line(Cg *cg, const char *fmt, ...)
{
    fputs("        ", cg->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(cg->out, fmt, ap);
    va_end(ap);
    fputc('\n', cg->out);
}

const char *cg_fmt(Cg *cg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[256], *s;
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    s = arena_alloc(cg->g->arena, (size_t)len + 1);
    if (!s) {
        cg->nomem = true;
        return "";
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A comment-safe copy of s (no "*" "/" pairs, no newlines). */
static void put_comment_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '*' && s[1] == '/')
            fputs("* ", f);
        else if (*s == '/' && s[1] == '*')
            fputs("/ ", f);
        else if ((unsigned char)*s < ' ')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

/* ---- literals ---- */

const char *cg_ctype(DType t)
{
    switch (t) {
    case DT_FLOAT: return "float";
    case DT_DOUBLE: return "double";
    case DT_INT8: return "int8_t";
    case DT_INT16: return "int16_t";
    case DT_INT32: return "int32_t";
    case DT_INT64: return "int64_t";
    case DT_UINT8: case DT_BOOL: return "uint8_t";
    case DT_UINT16: case DT_FLOAT16: case DT_BFLOAT16: return "uint16_t";
    case DT_UINT32: return "uint32_t";
    case DT_UINT64: return "uint64_t";
    default: return "unsigned char";
    }
}

const char *cg_rtdtype(DType t)
{
    switch (t) {
    case DT_FLOAT: return "RT_FLOAT";
    case DT_DOUBLE: return "RT_DOUBLE";
    case DT_INT8: return "RT_INT8";
    case DT_INT16: return "RT_INT16";
    case DT_INT32: return "RT_INT32";
    case DT_INT64: return "RT_INT64";
    case DT_UINT8: return "RT_UINT8";
    case DT_UINT16: return "RT_UINT16";
    case DT_UINT32: return "RT_UINT32";
    case DT_UINT64: return "RT_UINT64";
    case DT_BOOL: return "RT_BOOL";
    case DT_FLOAT16: return "RT_FLOAT16";
    case DT_BFLOAT16: return "RT_BFLOAT16";
    default: return "RT_UNDEFINED";
    }
}

/* Build "(const TYPE[]){a, b, c}" with a per-element printer. */
static const char *array_literal(Cg *cg, const char *type, size_t n, void (*put)(FILE *, const void *, size_t),
                                 const void *v)
{
    if (n == 0)
        return "NULL";
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        cg->nomem = true;
        return "NULL";
    }
    fprintf(f, "(const %s[]){", type);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        put(f, v, i);
    }
    fputc('}', f);
    fclose(f);
    const char *s = buf ? arena_strdup(cg->g->arena, buf) : NULL;
    free(buf);
    if (!s) {
        cg->nomem = true;
        return "NULL";
    }
    return s;
}

static void put_size(FILE *f, const void *v, size_t i) { fprintf(f, "%zu", ((const size_t *)v)[i]); }
static void put_int(FILE *f, const void *v, size_t i) { fprintf(f, "%d", ((const int *)v)[i]); }
static void put_i64(FILE *f, const void *v, size_t i)
{
    int64_t x = ((const int64_t *)v)[i];
    if (x == INT64_MIN)
        fputs("INT64_MIN", f);
    else
        fprintf(f, "%lld", (long long)x);
}

const char *cg_sizes(Cg *cg, const size_t *v, size_t n) { return array_literal(cg, "size_t", n, put_size, v); }
const char *cg_i64s(Cg *cg, const int64_t *v, size_t n) { return array_literal(cg, "int64_t", n, put_i64, v); }
const char *cg_ints(Cg *cg, const int *v, size_t n) { return array_literal(cg, "int", n, put_int, v); }

const char *cg_float(Cg *cg, double x)
{
    if (isnan(x))
        return "NAN";
    if (isinf(x))
        return x > 0 ? "INFINITY" : "-INFINITY";
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", (double)(float)x);
    if (!strpbrk(buf, ".eE"))
        strcat(buf, ".0");
    return cg_fmt(cg, "%sf", buf);
}

void cg_dims(const Shape *s, size_t *dims)
{
    for (int i = 0; i < s->rank; i++)
        dims[i] = (size_t)s->dim[i];
}

size_t cg_numel(const Value *v)
{
    size_t n = 0;
    if (!shape_numel(&v->shape, &n))
        return 0;
    return n;
}

/* ---- attributes and constant inputs ---- */

bool cg_const_ints(const Node *n, int i, const char *attr, int64_t *out, size_t max, size_t *count)
{
    *count = 0;
    const Value *v = node_input(n, i);
    if (v) {
        if (!v->init)
            return false;
        for (size_t k = 0; k < v->init->numel && k < max; k++)
            out[(*count)++] = tensor_get_i64(v->init, k);
        return true;
    }
    const Attr *a = attr ? node_attr(n, attr) : NULL;
    if (a && a->type == AT_INTS)
        for (size_t k = 0; k < a->n && k < max; k++)
            out[(*count)++] = a->ints[k];
    else if (a && a->type == AT_INT && max > 0)
        out[(*count)++] = a->i;
    return true;
}

bool cg_const_scalar(const Node *n, int i, double *out)
{
    const Value *v = node_input(n, i);
    if (!v || !v->init || v->init->numel < 1)
        return false;
    *out = tensor_get_f64(v->init, 0);
    return true;
}

/* ---- errors ---- */

Status cg_unsupported(Cg *cg, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return diag_node(cg->d, cg->node, ST_UNSUPPORTED, "%s", msg);
}

Status cg_require_dtype(Cg *cg, const Value *v, DType t)
{
    if (v && v->dtype != t)
        return cg_unsupported(cg, "'%s' is %s; this op is generated for %s only", v->name, dtype_name(v->dtype),
                              dtype_name(t));
    return ST_OK;
}

/* ---- values ---- */

static char *make_cname(Cg *cg, const Value *v)
{
    char buf[64] = "t_";
    size_t k = 2;
    for (const char *s = v->name; *s && k < 44; s++) {
        char c = isalnum((unsigned char)*s) ? *s : '_';
        if (c == '_' && buf[k - 1] == '_')
            continue;   /* "/layer1/conv1/Conv" -> "t_layer1_conv1_Conv" */
        buf[k++] = c;
    }
    while (k > 2 && buf[k - 1] == '_')
        k--;
    buf[k] = '\0';
    if (k == 2) /* every name starts with "t_": never a keyword or a name of ours */
        return arena_printf(cg->g->arena, "t_%d", v->id);
    return arena_strdup(cg->g->arena, buf);
}

static Status assign_cnames(Cg *cg)
{
    size_t nv = cg->g->nvalues;
    for (size_t i = 0; i < nv; i++) {
        Value *v = cg->g->values[i];
        char *name = make_cname(cg, v);
        if (!name)
            return diag_error(cg->d, ST_NOMEM, "out of memory");
        /* the first value keeps the plain name, later ones with the same get "_<id>" */
        for (size_t j = 0; j < i; j++)
            if (strcmp(cg->cname[j], name) == 0) {
                name = arena_printf(cg->g->arena, "%s_%d", name, v->id);
                if (!name)
                    return diag_error(cg->d, ST_NOMEM, "out of memory");
                break;
            }
        cg->cname[i] = name;
    }
    return ST_OK;
}

/* Append a constant to the weights blob (64-byte aligned) once. */
static void layout_weight(Cg *cg, const Value *v)
{
    if (cg->woff[v->id] != SIZE_MAX)
        return;
    const Tensor *t = v->init;
    size_t at = (cg->wbytes + 63) / 64 * 64, end;
    if (!size_add(at, t->nbytes, &end)) {
        cg->nomem = true;
        return;
    }
    if (end > cg->wcap) {
        size_t cap = cg->wcap ? cg->wcap : 4096;
        while (cap < end)
            cap *= 2;
        unsigned char *nb = realloc(cg->wblob, cap);
        if (!nb) {
            cg->nomem = true;
            return;
        }
        cg->wblob = nb;
        cg->wcap = cap;
    }
    if (at > cg->wbytes)
        memset(cg->wblob + cg->wbytes, 0, at - cg->wbytes);
    if (t->nbytes)
        memcpy(cg->wblob + at, t->data, t->nbytes);
    cg->wbytes = end;
    cg->woff[v->id] = at;
}

static int root_of(const Cg *cg, int id)
{
    while (cg->plan.slots[id].kind == MEM_ALIAS)
        id = cg->plan.slots[id].alias;
    return id;
}

const char *cg_ptr(Cg *cg, const Value *v)
{
    if (cg->override[v->id])
        return cg->override[v->id];
    int r = root_of(cg, v->id);
    if (cg->plan.slots[r].kind == MEM_CONST)
        layout_weight(cg, cg->g->values[r]);
    cg->used[v->id] = true;
    return cg->cname[v->id];
}

DType cg_dtype(Cg *cg, const Value *v)
{
    return cg->override[v->id] ? DT_FLOAT : v->dtype;
}

const char *cg_ptr_or_null(Cg *cg, const Value *v)
{
    return v ? cg_ptr(cg, v) : "NULL";
}

const char *cg_scratch(Cg *cg)
{
    const Emitter *e = emitter_for(cg->node);
    if (!cg->plan.scratch_bytes[cg->node_index] || !e->scratch || !e->scratch(cg->node))
        return "NULL";
    return cg_fmt(cg, "(void *)(ws + %zu)", cg->plan.scratch[cg->node_index]);
}

bool cg_unused(Cg *cg, const Value *v)
{
    if (!v)
        return true;
    for (size_t i = 0; i < cg->g->noutputs; i++)
        if (cg->g->outputs[i] == v)
            return false;
    for (size_t i = 0; i < cg->g->nnodes; i++) {
        const Node *n = cg->g->nodes[i];
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] == v)
                return false;
    }
    return true;
}

/* ---- the memory planner's questions ---- */

/* A view op is a view when nothing reads its other outputs (Dropout's mask). */
static bool node_is_view(Cg *cg, const Node *n)
{
    const Emitter *e = emitter_for(n);
    if (!e || !(e->flags & EM_VIEW) || n->ninputs < 1 || !n->inputs[0])
        return false;
    for (int k = 1; k < n->noutputs; k++)
        if (!cg_unused(cg, n->outputs[k]))
            return false;
    return true;
}

static bool plan_is_view(const Node *n, void *ctx)
{
    return node_is_view(ctx, n);
}

static bool plan_can_reuse(const Node *n, int out, int in, void *ctx)
{
    (void)ctx;
    const Emitter *e = emitter_for(n);
    if (!e || out != 0 || !((e->flags & EM_INPLACE) || ((e->flags & EM_INPLACE0) && in == 0)))
        return false;
    const Value *x = n->inputs[in], *y = n->outputs[0];
    return shape_equal(&x->shape, &y->shape) && dtype_size(x->dtype) == dtype_size(y->dtype);
}

static size_t align64(size_t x)
{
    return (x + 63) / 64 * 64;
}

/* Does the emitter want v as a float32 copy? */
static bool converts(const Emitter *e, const Value *v)
{
    if (!v)
        return false;
    if ((e->flags & EM_INT8) && (v->dtype == DT_INT8 || v->dtype == DT_UINT8 || v->dtype == DT_INT16 ||
                                 v->dtype == DT_UINT16))
        return true;
    if (e->flags & EM_F32)
        return v->dtype == DT_DOUBLE || v->dtype == DT_FLOAT16 || v->dtype == DT_BFLOAT16;
    if (e->flags & EM_HALF)
        return v->dtype == DT_FLOAT16 || v->dtype == DT_BFLOAT16;
    return false;
}

/* Whether input k of n is the first mention of its value among the inputs (so it is cast once). */
static bool first_mention(const Node *n, int k)
{
    for (int j = 0; j < k; j++)
        if (n->inputs[j] == n->inputs[k])
            return false;
    return true;
}

/* The float32 copies' bytes, placed after the emitter's own scratch. */
static size_t conversion_bytes(const Emitter *e, const Node *n)
{
    size_t total = 0;
    for (int k = 0; k < n->ninputs; k++)
        if (converts(e, n->inputs[k]) && first_mention(n, k))
            total += align64(cg_numel(n->inputs[k]) * sizeof(float));
    for (int k = 0; k < n->noutputs; k++)
        if (converts(e, n->outputs[k]))
            total += align64(cg_numel(n->outputs[k]) * sizeof(float));
    return total;
}

static size_t plan_scratch(const Node *n, void *ctx)
{
    (void)ctx;
    const Emitter *e = emitter_for(n);
    if (!e)
        return 0;
    size_t own = e->scratch ? e->scratch(n) : 0;
    size_t conv = conversion_bytes(e, n);
    return conv ? align64(own) + conv : own;
}

/* ---- the node blocks ---- */

static void put_shape(FILE *f, const Shape *s)
{
    char buf[160];
    fputs(shape_str(s, buf, sizeof buf), f);
}

static void put_node_comment(Cg *cg, const Node *n, const char *note)
{
    FILE *f = cg->out;
    fputs("    /* ", f);
    put_comment_text(f, n->name);
    fprintf(f, " (%s):", n->op_type);
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (!v)
            continue;
        fputc(' ', f);
        fputs(cg->cname[v->id] + 2, f);
        put_shape(f, &v->shape);
    }
    fputs(" ->", f);
    for (int i = 0; i < n->noutputs; i++) {
        fputs(i ? ", " : " ", f);
        put_shape(f, &n->outputs[i]->shape);
    }
    if (note)
        fprintf(f, " (%s)", note);
    fputs(" */\n", f);
}

static bool all_outputs_empty(const Node *n)
{
    for (int i = 0; i < n->noutputs; i++)
        if (cg_numel(n->outputs[i]) != 0)
            return false;
    return n->noutputs > 0;
}

/* Whether n is in the phases this generation emits (CodegenOptions.phases). */
static bool node_emitted(const Cg *cg, const Node *n)
{
    return !cg->opt->phases || (cg->opt->phases >> n->phase & 1u);
}

static Status emit_nodes(Cg *cg)
{
    for (size_t i = 0; i < cg->g->nnodes; i++) {
        const Node *n = cg->g->nodes[i];
        if (n->dead || !node_emitted(cg, n))
            continue;
        cg->node = n;
        cg->node_index = i;
        for (int k = 0; k < n->nattrs; k++)
            if (n->attrs[k].type == AT_GRAPH || n->attrs[k].type == AT_GRAPHS)
                return cg_unsupported(cg, "control flow (subgraph attribute '%s') is not supported by code "
                                      "generation", n->attrs[k].name);
        const Emitter *e = emitter_for(n);
        if (!e)
            return cg_unsupported(cg, "no code generator for op %s%s%s", n->domain[0] ? n->domain : "",
                                  n->domain[0] ? "." : "", n->op_type);
        if (node_is_view(cg, n)) {
            put_node_comment(cg, n, "a view: no code");
            fputc('\n', cg->out);
            continue;
        }
        if (all_outputs_empty(n)) {
            put_node_comment(cg, n, "empty output: no code");
            fputc('\n', cg->out);
            continue;
        }
        put_node_comment(cg, n, NULL);
        fputs("    {\n", cg->out);
        for (int k = 0; k < n->ninputs; k++) /* weights in the order the nodes read them */
            if (n->inputs[k] && cg->plan.slots[root_of(cg, n->inputs[k]->id)].kind == MEM_CONST)
                layout_weight(cg, cg->g->values[root_of(cg, n->inputs[k]->id)]);
        size_t at = cg->plan.scratch[i] + align64(e->scratch ? e->scratch(n) : 0);
        for (int k = 0; k < n->ninputs; k++) {
            const Value *v = n->inputs[k];
            if (!converts(e, v) || !first_mention(n, k))
                continue;
            const char *from = cg_ptr(cg, v), *to = cg_fmt(cg, "((float *)(ws + %zu))", at);
            cg_line(cg, "cast_forward(RT_FLOAT, %s, %s, %s, %zu); /* computed in float32 */", to,
                    cg_rtdtype(v->dtype), from, cg_numel(v));
            cg->override[v->id] = to;
            at += align64(cg_numel(v) * sizeof(float));
        }
        for (int k = 0; k < n->noutputs; k++) {
            const Value *v = n->outputs[k];
            if (converts(e, v)) {
                cg->override[v->id] = cg_fmt(cg, "((float *)(ws + %zu))", at);
                at += align64(cg_numel(v) * sizeof(float));
            }
        }
        Status st = e->emit(cg, n);
        if (st)
            return st;
        for (int k = 0; k < n->noutputs; k++) {
            const Value *v = n->outputs[k];
            if (!converts(e, v))
                continue;
            const char *from = cg->override[v->id];
            cg->override[v->id] = NULL;
            cg_line(cg, "cast_forward(%s, %s, RT_FLOAT, %s, %zu);", cg_rtdtype(v->dtype), cg_ptr(cg, v), from,
                    cg_numel(v));
        }
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k])
                cg->override[n->inputs[k]->id] = NULL;
        if (cg->nomem)
            return diag_error(cg->d, ST_NOMEM, "out of memory generating code");
        fputs("    }\n\n", cg->out);
    }
    cg->node = NULL;
    return ST_OK;
}

/* Graph outputs not computed in place (views, inputs, constants, duplicates) are copied at the end. */
static void emit_output_copies(Cg *cg)
{
    for (size_t i = 0; i < cg->g->noutputs; i++) {
        const Value *v = cg->g->outputs[i];
        const MemSlot *s = &cg->plan.slots[v->id];
        if ((s->kind == MEM_OUTPUT && s->index == (int)i) || (v->producer && !node_emitted(cg, v->producer)))
            continue;
        size_t bytes = cg_numel(v) * dtype_size(v->dtype);
        fprintf(cg->out, "    /* graph output %zu '", i);
        put_comment_text(cg->out, v->name);
        fprintf(cg->out, "' is not computed in place: copy it */\n");
        if (bytes)
            fprintf(cg->out, "    memcpy(outputs[%zu], %s, %zu);\n", i, cg_ptr(cg, v), bytes);
    }
}

/* The declaration of every value the body reads, pointing into its storage. */
static void emit_declarations(Cg *cg, FILE *f, const int *rt_index)
{
    for (size_t i = 0; i < cg->g->nvalues; i++) {
        if (!cg->used[i])
            continue;
        const Value *v = cg->g->values[i];
        int r = root_of(cg, (int)i);
        const MemSlot *s = &cg->plan.slots[r];
        const char *ct = cg_ctype(v->dtype);
        bool ro = s->kind == MEM_CONST || s->kind == MEM_INPUT;
        fprintf(f, "    %s%s *%s = ", ro ? "const " : "", ct, cg->cname[i]);
        switch (s->kind) {
        case MEM_CONST: fprintf(f, "(const %s *)(wt + %zu);", ct, cg->woff[r]); break;
        case MEM_INPUT: fprintf(f, "(const %s *)inputs[%d];", ct, rt_index[s->index]); break;
        case MEM_OUTPUT: fprintf(f, "(%s *)outputs[%d];", ct, s->index); break;
        default: fprintf(f, "(%s *)(ws + %zu);", ct, s->offset); break;
        }
        fputs(" /* ", f);
        put_comment_text(f, v->name);
        fprintf(f, " %s", dtype_name(v->dtype));
        put_shape(f, &v->shape);
        if (r != (int)i) {
            fputs(", a view of ", f);
            put_comment_text(f, cg->g->values[r]->name);
        }
        fputs(" */\n", f);
    }
}

static void emit_weights(Cg *cg, FILE *f, const char *prefix, const char *weights_name)
{
    if (cg->wbytes == 0) {
        fprintf(f, "static const unsigned char %s_weights[64] __attribute__((aligned(64))) = {0};\n\n", prefix);
        return;
    }
    if (weights_name) {
        fprintf(f, "/* The weights (%zu bytes): the file %s, assembled into the program. */\n", cg->wbytes,
                weights_name);
        fprintf(f, "__asm__(\".section .rodata\\n\"\n"
                   "        \".balign 64\\n\"\n"
                   "        \".globl %s_weights\\n\"\n"
                   "        \".hidden %s_weights\\n\"\n"
                   "        \"%s_weights:\\n\"\n"
                   "        \".incbin \\\"%s\\\"\\n\"\n"
                   "        \".previous\\n\");\n",
                prefix, prefix, prefix, weights_name);
        fprintf(f, "extern const unsigned char %s_weights[%zu] __attribute__((visibility(\"hidden\")));\n\n",
                prefix, cg->wbytes);
        return;
    }
    fprintf(f, "/* The weights (%zu bytes). */\n", cg->wbytes);
    fprintf(f, "static const unsigned char %s_weights[%zu] __attribute__((aligned(64))) = {", prefix, cg->wbytes);
    for (size_t i = 0; i < cg->wbytes; i++)
        fprintf(f, "%s%u,", i % 24 == 0 ? "\n    " : "", cg->wblob[i]);
    fprintf(f, "\n};\n\n");
}

static void emit_tensor_infos(Cg *cg, FILE *f, const char *prefix, const char *which, Value *const *vals,
                              size_t n, const int *axis, const int64_t *scale)
{
    if (n == 0)
        return;
    fprintf(f, "static const CgTensorInfo %s_%s[%zu] = {\n", prefix, which, n);
    for (size_t i = 0; i < n; i++) {
        const Value *v = vals[i];
        fputs("    {\"", f);
        for (const char *s = v->name; *s; s++) {
            if (*s == '"' || *s == '\\')
                fprintf(f, "\\%c", *s);
            else if ((unsigned char)*s < ' ' || (unsigned char)*s >= 127)
                fprintf(f, "\\%03o", (unsigned char)*s);
            else
                fputc(*s, f);
        }
        fprintf(f, "\", %d, %d, {", (int)v->dtype, v->shape.rank);
        for (int k = 0; k < v->shape.rank; k++)
            fprintf(f, "%s%lld", k ? ", " : "", (long long)v->shape.dim[k]);
        fprintf(f, "}, %d, %lld},\n", axis ? axis[i] : -1, (long long)(scale ? scale[i] : 0));
    }
    (void)cg;
    fprintf(f, "};\n");
}

static void put_c_string(FILE *f, const char *s)
{
    if (!s) {
        fputs("NULL", f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < ' ' || (unsigned char)*s >= 127)
            fprintf(f, "\\%03o", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static Status write_weights_file(Cg *cg, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return diag_error(cg->d, ST_IO, "%s: cannot write the weights file", path);
    size_t wrote = cg->wbytes ? fwrite(cg->wblob, 1, cg->wbytes, f) : 0;
    if (fclose(f) != 0 || wrote != cg->wbytes)
        return diag_error(cg->d, ST_IO, "%s: write failed", path);
    return ST_OK;
}

Status codegen_emit(Graph *g, const CodegenOptions *opt, FILE *out, CodegenStats *stats, Diag *d)
{
    const char *prefix = opt->prefix ? opt->prefix : "model";
    Cg cg = {.g = g, .opt = opt, .d = d};
    char *body = NULL;
    size_t body_len = 0;
    Status st = ST_OK;
    if (!getenv("ONNXTUNE_NO_FUSE") && (st = pass_fuse(g, d))) /* may add values; the env var: for measuring */
        return st;
    size_t nv = g->nvalues ? g->nvalues : 1;
    cg.cname = arena_calloc(g->arena, nv, sizeof *cg.cname);
    cg.used = arena_calloc(g->arena, nv, sizeof *cg.used);
    cg.woff = arena_calloc(g->arena, nv, sizeof *cg.woff);
    cg.override = arena_calloc(g->arena, nv, sizeof *cg.override);
    int *rt_index = arena_calloc(g->arena, g->ninputs ? g->ninputs : 1, sizeof *rt_index);
    Value **rt_inputs = arena_calloc(g->arena, g->ninputs ? g->ninputs : 1, sizeof *rt_inputs);
    if (!cg.cname || !cg.used || !cg.woff || !cg.override || !rt_index || !rt_inputs)
        return diag_error(d, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < nv; i++)
        cg.woff[i] = SIZE_MAX;

    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        const Emitter *e = emitter_for(n);
        cg.node = n;
        if (n->dead)
            continue;
        if (!e)
            return cg_unsupported(&cg, "no code generator for op %s%s%s", n->domain[0] ? n->domain : "",
                                  n->domain[0] ? "." : "", n->op_type);
        if (e->check && (st = e->check(&cg, n)))
            return st;
    }
    cg.node = NULL;
    MemPlanOptions mo = {.ctx = &cg, .is_view = plan_is_view, .can_reuse = plan_can_reuse, .scratch_bytes = plan_scratch};
    if ((st = pass_memplan(g, &mo, &cg.plan, d)))
        return st;
    size_t nrt = 0;
    for (size_t i = 0; i < g->ninputs; i++) {
        rt_index[i] = -1;
        if (!g->inputs[i]->init) {
            rt_index[i] = (int)nrt;
            rt_inputs[nrt++] = g->inputs[i];
        }
    }
    for (size_t i = 0; i < g->noutputs; i++) {
        const Value *v = g->outputs[i];
        size_t numel;
        char buf[128];
        if (cg.plan.slots[v->id].kind == MEM_NONE)
            return diag_error(d, ST_INVALID, "graph output '%s' is not computed by any node", v->name);
        if (v->kind != VK_TENSOR || !shape_is_static(&v->shape) || dtype_size(v->dtype) == 0 ||
            v->dtype == DT_STRING || !shape_numel(&v->shape, &numel))
            return diag_error(d, ST_UNSUPPORTED, "graph output '%s' (%s%s) is not a tensor of static shape",
                              v->name, dtype_name(v->dtype), shape_str(&v->shape, buf, sizeof buf));
    }
    if ((st = assign_cnames(&cg)))
        return st;

    cg.out = open_memstream(&body, &body_len);
    if (!cg.out)
        return diag_error(d, ST_NOMEM, "out of memory");
    st = emit_nodes(&cg);
    if (!st)
        emit_output_copies(&cg);
    fclose(cg.out);
    cg.out = NULL;
    if (!st && cg.nomem)
        st = diag_error(d, ST_NOMEM, "out of memory generating code");
    if (st)
        goto done;

    size_t ws_bytes = (cg.plan.arena_bytes + 63) / 64 * 64;
    const char *wname = opt->weights_path ? base_name(opt->weights_path) : NULL;
    if (wname && strpbrk(wname, "\"\\\n")) {
        st = diag_error(d, ST_USAGE, "%s: the weights file name may not contain quotes or backslashes",
                        opt->weights_path);
        goto done;
    }

    /* the file */
    fprintf(out, "/* Generated by onnxtune %s from ", ONNXTUNE_VERSION);
    put_comment_text(out, opt->model_path ? opt->model_path : "(memory)");
    fprintf(out, ".\n * %zu nodes; activation arena %zu bytes (%zu without reuse); weights %zu bytes.\n",
            g->nnodes, cg.plan.arena_bytes, cg.plan.naive_bytes, cg.wbytes);
    fprintf(out, " * Each block below is one ONNX node: its name, op, input shapes -> output shapes.\n"
                 " * Build: cc -std=c11 -O2 -fopenmp THIS.c -I<onnxtune>/{program,data,kernels}%s\n"
                 " *        <build>/libonnxtune_{program,data,kernels}.a -lopenblas -lm\n"
                 " */\n", wname ? " -Wa,-I<this folder>" : "");
    fprintf(out, "#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
                 "#include \"kernels.h\"\n#include \"program.h\"\n\n");
    emit_weights(&cg, out, prefix, wname);

    fprintf(out, "void %s_run(void *const *inputs, void *const *outputs, void *workspace);\n", prefix);
    fprintf(out, "extern const CgModelInfo %s_info;\n\n", prefix);
    fprintf(out, "/* Inputs:");
    for (size_t i = 0; i < nrt; i++) {
        fprintf(out, "%s inputs[%zu] ", i ? "," : "", i);
        put_comment_text(out, rt_inputs[i]->name);
        fprintf(out, " %s", dtype_name(rt_inputs[i]->dtype));
        put_shape(out, &rt_inputs[i]->shape);
    }
    fprintf(out, ".\n * Outputs:");
    for (size_t i = 0; i < g->noutputs; i++) {
        fprintf(out, "%s outputs[%zu] ", i ? "," : "", i);
        put_comment_text(out, g->outputs[i]->name);
        fprintf(out, " %s", dtype_name(g->outputs[i]->dtype));
        put_shape(out, &g->outputs[i]->shape);
    }
    fprintf(out, ".\n * workspace: %zu bytes, 64-byte aligned. */\n", ws_bytes);
    fprintf(out, "void %s_run(void *const *inputs, void *const *outputs, void *workspace)\n{\n", prefix);
    fprintf(out, "    unsigned char *ws = workspace;\n    const unsigned char *wt = %s_weights;\n", prefix);
    fprintf(out, "    (void)inputs, (void)outputs, (void)ws, (void)wt;\n");
    emit_declarations(&cg, out, rt_index);
    fputc('\n', out);
    fwrite(body, 1, body_len, out);
    fprintf(out, "}\n\n");

    const BatchAxes *ba = opt->batch;
    emit_tensor_infos(&cg, out, prefix, "inputs", rt_inputs, nrt, ba ? ba->input_axis : NULL,
                      ba ? ba->input_scale : NULL);
    emit_tensor_infos(&cg, out, prefix, "outputs", g->outputs, g->noutputs, ba ? ba->output_axis : NULL,
                      ba ? ba->output_scale : NULL);
    fprintf(out, "\nconst CgModelInfo %s_info = {\n    .model = ", prefix);
    put_c_string(out, opt->model_path ? base_name(opt->model_path) : NULL);
    fprintf(out, ",\n    .batch = %lld,\n    .ninputs = %zu,\n    .noutputs = %zu,\n",
            (long long)(ba ? ba->batch : 0), nrt, g->noutputs);
    fprintf(out, "    .inputs = %s%s,\n", nrt ? prefix : "NULL", nrt ? "_inputs" : "");
    fprintf(out, "    .outputs = %s%s,\n", g->noutputs ? prefix : "NULL", g->noutputs ? "_outputs" : "");
    fprintf(out, "    .workspace_bytes = %zu,\n    .no_chunk = ", ws_bytes);
    put_c_string(out, ba ? ba->no_chunk : "compiled for these exact shapes");
    fprintf(out, ",\n    .threads = %d,\n    .run = %s_run,\n};\n", opt->threads, prefix);
    if (opt->emit_main) {
        fprintf(out, "\nint main(int argc, char **argv)\n{\n    return infer_main(argc, argv, &%s_info);\n}\n",
                prefix);
    }
    if (ferror(out)) {
        st = diag_error(d, ST_IO, "write error on the generated C file");
        goto done;
    }
    if (opt->weights_path && (st = write_weights_file(&cg, opt->weights_path)))
        goto done;
    if (stats) {
        stats->nodes = g->nnodes;
        stats->arena_bytes = cg.plan.arena_bytes;
        stats->naive_bytes = cg.plan.naive_bytes;
        stats->weights_bytes = cg.wbytes;
    }
done:
    free(body);
    free(cg.wblob);
    return st;
}
