/* import.c - ONNX ModelProto to IR: reads the file (mmap), decodes it without the top graph's
 * initializers (import_wire.c cuts them out) and then those one tensor at a time, so the weights are
 * never held twice; maps graphs, nodes, attributes and types onto ir.h, inlining model-local
 * functions and importing subgraphs.
 * It does not canonicalise ops or infer shapes (ir/pass_canon.c, ir/pass_shapes.c do).
 */
#include "import_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INLINE_DEPTH 32

/* ======================================================================== scratch string maps */

typedef struct StrMap {
    size_t cap, count;
    const char **keys;
    void **vals;
} StrMap;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static StrMap *strmap_new(Arena *a)
{
    return arena_alloc(a, sizeof(StrMap));
}

/* The value slot of `key`, or NULL when absent. */
static void **strmap_find(const StrMap *m, const char *key)
{
    if (!m || !m->cap)
        return NULL;
    for (size_t j = str_hash(key) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1))
        if (strcmp(m->keys[j], key) == 0)
            return &m->vals[j];
    return NULL;
}

/* Insert or overwrite; `key` must outlive the map. False on OOM. */
static bool strmap_put(Arena *a, StrMap *m, const char *key, void *val)
{
    void **slot = strmap_find(m, key);
    if (slot) {
        *slot = val;
        return true;
    }
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        const char **keys = arena_calloc(a, cap, sizeof *keys);
        void **vals = arena_calloc(a, cap, sizeof *vals);
        if (!keys || !vals)
            return false;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = str_hash(m->keys[i]) & (cap - 1);
            while (keys[j])
                j = (j + 1) & (cap - 1);
            keys[j] = m->keys[i];
            vals[j] = m->vals[i];
        }
        m->keys = keys, m->vals = vals, m->cap = cap;
    }
    size_t j = str_hash(key) & (m->cap - 1);
    while (m->keys[j])
        j = (j + 1) & (m->cap - 1);
    m->keys[j] = key;
    m->vals[j] = val;
    m->count++;
    return true;
}

/* ======================================================================== scopes */

typedef struct Scope Scope;

/* An attribute of a calling node, as the function body sees it through ref_attr_name. */
typedef struct CallAttr {
    const char *name;               /* its name on the calling node */
    Onnx__AttributeProto *ap;       /* the value (never itself a reference) */
    Scope *scope;                   /* where names in its graphs are looked up */
} CallAttr;

/* One model-local function being inlined. */
typedef struct Call {
    const Onnx__FunctionProto *fn;
    CallAttr *attrs;
    size_t nattrs;
    struct Call *up;                /* the call this one is inlined into */
} Call;

/* Where names are defined and looked up. A graph's scope uses the graph's own names; a function
 * body's scope maps the body's names to renamed values in the caller's graph. */
struct Scope {
    Scope *up;
    Graph *g;               /* values and nodes go here */
    StrMap *names;          /* function body: name -> Value* (NULL: an omitted input); NULL for graphs */
    StrMap *outputs;        /* function body: formal outputs bound to the caller's outputs, unclaimed */
    StrMap *vinfo;          /* graph: value_info by name */
    const char *prefix;     /* function body: "callnode/" before every name it defines */
    bool barrier;           /* function body: enclosing scopes are invisible */
    Call *call;             /* innermost function being inlined, for ref_attr_name */
};

static const char *norm_domain(const char *domain)
{
    return !domain || strcmp(domain, "ai.onnx") == 0 ? "" : domain;
}

/* Find `name` as seen from s; *v is NULL for a function input its call omitted. */
static bool scope_lookup(const Scope *s, const char *name, Value **v)
{
    for (; s; s = s->up) {
        if (s->names) {
            void **slot = strmap_find(s->names, name);
            if (slot) {
                *v = *slot;
                return true;
            }
        } else {
            Value *x = graph_find_local(s->g, name);
            if (x) {
                *v = x;
                return true;
            }
        }
        if (s->barrier)
            return false;
    }
    return false;
}

/* A new value named `hint`, or hint_N when taken. graph_new_value tries hint_1, hint_2, ... in turn,
 * which is quadratic when many values share a hint (unnamed nodes, repeated node names); one counter
 * for the whole import finds a free name at once. */
static Value *fresh_value(Importer *im, Graph *g, const char *hint)
{
    if (!graph_find(g, hint))
        return graph_add_value(g, hint, im->d);
    for (;;) {
        char *name = arena_printf(im->tmp, "%s_%zu", hint, ++im->fresh);
        if (!name) {
            diag_error(im->d, ST_NOMEM, "out of memory naming a value");
            return NULL;
        }
        if (!graph_find(g, name))
            return graph_add_value(g, name, im->d);
    }
}

/* Define `name` in s (renamed with the scope's prefix in function bodies); `what` names the
 * definer for the duplicate message. */
static Value *scope_define(Importer *im, Scope *s, const char *name, const char *what)
{
    if (im->inline_depth && import_charge_inline(im, 1, what))
        return NULL;
    if (s->names ? strmap_find(s->names, name) != NULL : graph_find_local(s->g, name) != NULL) {
        diag_error(im->d, ST_INVALID, "%s: value '%s' is defined twice%s%s%s", what, name,
                   s->g->name && *s->g->name ? " in graph '" : "", s->g->name ? s->g->name : "",
                   s->g->name && *s->g->name ? "'" : "");
        return NULL;
    }
    if (!s->names)
        return graph_add_value(s->g, name, im->d);
    char *full = arena_printf(im->tmp, "%s%s", s->prefix, name);
    Value *v = full ? fresh_value(im, s->g, full) : NULL;
    if (v && !strmap_put(im->tmp, s->names, name, v))
        v = NULL;
    if (!v)
        diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
    return v;
}

static int64_t scope_opset(const Importer *im, const Scope *s, const char *domain)
{
    if (s->call)
        for (size_t i = 0; i < s->call->fn->n_opset_import; i++) {
            const Onnx__OperatorSetIdProto *o = s->call->fn->opset_import[i];
            if (strcmp(norm_domain(o->domain), domain) == 0)
                return o->version;
        }
    return model_opset(im->m, domain);
}

/* ======================================================================== types */

/* The element type inside a (possibly nested) type: a sequence's, map value's or optional's tensor. */
static int64_t type_elem(const Onnx__TypeProto *tp)
{
    while (tp) {
        switch (tp->value_case) {
        case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
            return tp->tensor_type ? tp->tensor_type->elem_type : 0;
        case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
            return tp->sparse_tensor_type ? tp->sparse_tensor_type->elem_type : 0;
        case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
            tp = tp->sequence_type ? tp->sequence_type->elem_type : NULL;
            break;
        case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
            tp = tp->map_type ? tp->map_type->value_type : NULL;
            break;
        case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
            tp = tp->optional_type ? tp->optional_type->elem_type : NULL;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

static Status import_shape(Importer *im, const Onnx__TensorShapeProto *sp, const char *what, Shape *out)
{
    if (!sp) {
        *out = shape_unknown();
        return ST_OK;
    }
    if (sp->n_dim > IR_MAX_RANK)
        return diag_error(im->d, ST_UNSUPPORTED, "%s: shape has rank %zu, more than the IR's limit of %d",
                          what, sp->n_dim, IR_MAX_RANK);
    Shape s = shape_scalar();
    s.rank = (int)sp->n_dim;
    for (size_t i = 0; i < sp->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sp->dim[i];
        s.dim[i] = -1;
        /* negative dim_values (written by some converters for "unknown") are read as unknown */
        if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value >= 0)
            s.dim[i] = dm->dim_value;
        else if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dm->dim_param &&
                 *dm->dim_param && !(s.sym[i] = arena_strdup(im->a, dm->dim_param)))
            return diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
    }
    *out = s;
    return ST_OK;
}

/* Set v's kind, element type and shape from a TypeProto (NULL: leave it untyped). */
static Status import_type(Importer *im, const Onnx__TypeProto *tp, const char *what, Value *v)
{
    if (!tp)
        return ST_OK;
    const Onnx__TensorShapeProto *shape = NULL;
    switch (tp->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
        v->kind = VK_TENSOR;
        shape = tp->tensor_type ? tp->tensor_type->shape : NULL;
        break;
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
        v->kind = VK_SPARSE;
        shape = tp->sparse_tensor_type ? tp->sparse_tensor_type->shape : NULL;
        break;
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
        v->kind = VK_SEQUENCE;
        break;
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
        v->kind = VK_MAP;
        break;
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: {
        v->kind = VK_OPTIONAL;
        v->opt_kind = VK_UNKNOWN;
        const Onnx__TypeProto *in = tp->optional_type ? tp->optional_type->elem_type : NULL;
        if (in && in->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && in->tensor_type) {
            v->opt_kind = VK_TENSOR;
            shape = in->tensor_type->shape;
        } else if (in && in->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE) {
            v->opt_kind = VK_SEQUENCE;
        }
        break;
    }
    default:
        v->kind = VK_UNKNOWN;
        return ST_OK;
    }
    int64_t et = type_elem(tp);
    DType dt;
    if (!import_dtype(et, &dt))
        return diag_error(im->d, ST_UNSUPPORTED, "%s: elem_type %lld is not an element type we know",
                          what, (long long)et);
    v->dtype = dt;
    return import_shape(im, shape, what, &v->shape);
}

/* ======================================================================== attributes */

static Status import_nodes(Importer *im, Scope *s, Onnx__NodeProto **nodes, size_t n);
static Status import_graph_body(Importer *im, Scope *s, Onnx__GraphProto *gp, const char *what);

static Status import_subgraph(Importer *im, Scope *outer, Onnx__GraphProto *gp, const char *what,
                              Graph **out)
{
    Graph *g = graph_new(im->a, gp->name, outer->g);
    if (!g)
        return diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
    Scope s = {.up = outer, .g = g, .call = outer->call};
    Status st = import_graph_body(im, &s, gp, what);
    if (!st)
        st = graph_toposort(g, im->d);
    *out = g;
    if (st) {
        /* say where the subgraph is: "node 'loop' (Loop) attribute 'body': node 'x' ..." */
        char msg[2 * sizeof im->d->msg];
        snprintf(msg, sizeof msg, "%s: %s", what, im->d->msg);
        memcpy(im->d->msg, msg, sizeof im->d->msg - 1);
        im->d->msg[sizeof im->d->msg - 1] = 0;
    }
    return st;
}

/* Old exporters omit AttributeProto.type; the field that is set tells it. */
static int attr_infer_type(const Onnx__AttributeProto *ap)
{
    if (ap->has_f) return AT_FLOAT;
    if (ap->has_i) return AT_INT;
    if (ap->has_s) return AT_STRING;
    if (ap->t) return AT_TENSOR;
    if (ap->g) return AT_GRAPH;
    if (ap->sparse_tensor) return AT_SPARSE_TENSOR;
    if (ap->tp) return AT_TYPE_PROTO;
    if (ap->n_floats) return AT_FLOATS;
    if (ap->n_ints) return AT_INTS;
    if (ap->n_strings) return AT_STRINGS;
    if (ap->n_tensors) return AT_TENSORS;
    if (ap->n_graphs) return AT_GRAPHS;
    if (ap->n_sparse_tensors) return AT_SPARSE_TENSORS;
    if (ap->n_type_protos) return AT_TYPE_PROTOS;
    return AT_UNDEFINED;
}

static Status import_type_proto_attr(Importer *im, const Onnx__TypeProto *tp, const char *what, int64_t *out)
{
    DType dt;
    int64_t et = type_elem(tp);
    if (!import_dtype(et, &dt))
        return diag_error(im->d, ST_UNSUPPORTED, "%s: elem_type %lld is not an element type we know",
                          what, (long long)et);
    *out = dt;
    return ST_OK;
}

/* Convert one attribute of a node in scope s. A ref_attr_name is replaced by the calling node's
 * attribute of that name; when the call does not set it, *present is false. */
static Status import_attr(Importer *im, Scope *s, const char *node_what, Onnx__AttributeProto *ap,
                          Attr *out, bool *present)
{
    Diag *d = im->d;
    Arena *a = im->a;
    const char *name = ap->name;
    *present = false;
    if (!name || !*name)
        return diag_error(d, ST_INVALID, "%s: an attribute has no name", node_what);
    char what[600];
    snprintf(what, sizeof what, "%s attribute '%s'", node_what, name);
    Scope *src = s;
    if (ap->ref_attr_name && *ap->ref_attr_name) {
        if (!s->call)
            return diag_error(d, ST_INVALID, "%s: ref_attr_name '%s' outside a function body", what,
                              ap->ref_attr_name);
        CallAttr *ca = NULL;
        for (size_t i = 0; i < s->call->nattrs; i++)
            if (strcmp(s->call->attrs[i].name, ap->ref_attr_name) == 0)
                ca = &s->call->attrs[i];
        if (!ca)
            return ST_OK;
        ap = ca->ap;
        src = ca->scope;
    }
    *present = true;
    memset(out, 0, sizeof *out);
    out->name = name;
    int type = ap->has_type ? (int)ap->type : attr_infer_type(ap);
    out->type = (AttrType)type;
    bool steal = im->inline_depth == 0;
    Status st = ST_OK;
    size_t n;
    switch (type) {
    case AT_FLOAT:
        out->f = ap->f;
        return ST_OK;
    case AT_INT:
        out->i = ap->i;
        return ST_OK;
    case AT_STRING:
        out->slen = ap->s.len;
        if (!(out->s = arena_strndup(a, ap->s.data ? (const char *)ap->s.data : "", ap->s.len)))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        return ST_OK;
    case AT_TENSOR:
        if (!ap->t)
            return diag_error(d, ST_INVALID, "%s: type TENSOR but no tensor", what);
        return import_tensor(im, ap->t, what, steal, &out->t);
    case AT_SPARSE_TENSOR: /* densified: later stages see a plain TENSOR attribute */
        if (!ap->sparse_tensor)
            return diag_error(d, ST_INVALID, "%s: type SPARSE_TENSOR but no sparse_tensor", what);
        out->type = AT_TENSOR;
        return import_sparse_tensor(im, ap->sparse_tensor, what, steal, &out->t);
    case AT_GRAPH:
        if (!ap->g)
            return diag_error(d, ST_INVALID, "%s: type GRAPH but no graph", what);
        return import_subgraph(im, src, ap->g, what, &out->g);
    case AT_TYPE_PROTO:
        if (!ap->tp)
            return diag_error(d, ST_INVALID, "%s: type TYPE_PROTO but no tp", what);
        return import_type_proto_attr(im, ap->tp, what, &out->i);
    case AT_FLOATS:
        out->n = ap->n_floats;
        if (!(out->floats = arena_calloc(a, n = ap->n_floats ? ap->n_floats : 1, sizeof(float))))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        if (ap->n_floats)
            memcpy(out->floats, ap->floats, ap->n_floats * sizeof(float));
        return ST_OK;
    case AT_INTS:
        out->n = ap->n_ints;
        if (!(out->ints = arena_calloc(a, ap->n_ints ? ap->n_ints : 1, sizeof(int64_t))))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        if (ap->n_ints)
            memcpy(out->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        return ST_OK;
    case AT_STRINGS:
        out->n = ap->n_strings;
        if (!(out->strings = arena_calloc(a, ap->n_strings ? ap->n_strings : 1, sizeof(char *))))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < ap->n_strings; i++) {
            const ProtobufCBinaryData *b = &ap->strings[i];
            if (!(out->strings[i] = arena_strndup(a, b->data ? (const char *)b->data : "", b->len)))
                return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        }
        return ST_OK;
    case AT_TENSORS:
    case AT_SPARSE_TENSORS:
        n = type == AT_TENSORS ? ap->n_tensors : ap->n_sparse_tensors;
        out->n = n;
        out->type = AT_TENSORS;
        if (!(out->tensors = arena_calloc(a, n ? n : 1, sizeof(Tensor *))))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < n && !st; i++) {
            char w[700];
            snprintf(w, sizeof w, "%s[%zu]", what, i);
            st = type == AT_TENSORS ? import_tensor(im, ap->tensors[i], w, steal, &out->tensors[i])
                                    : import_sparse_tensor(im, ap->sparse_tensors[i], w, steal,
                                                           &out->tensors[i]);
        }
        return st;
    case AT_GRAPHS:
        out->n = ap->n_graphs;
        if (!(out->graphs = arena_calloc(a, ap->n_graphs ? ap->n_graphs : 1, sizeof(Graph *))))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < ap->n_graphs && !st; i++) {
            char w[700];
            snprintf(w, sizeof w, "%s[%zu]", what, i);
            st = import_subgraph(im, src, ap->graphs[i], w, &out->graphs[i]);
        }
        return st;
    case AT_TYPE_PROTOS:
        out->n = ap->n_type_protos;
        if (!(out->ints = arena_calloc(a, ap->n_type_protos ? ap->n_type_protos : 1, sizeof(int64_t))))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < ap->n_type_protos && !st; i++)
            st = import_type_proto_attr(im, ap->type_protos[i], what, &out->ints[i]);
        return st;
    default:
        return diag_error(d, ST_UNSUPPORTED, "%s: attribute type %d is not one we know", what, type);
    }
}

/* ======================================================================== nodes and functions */

/* A model-local function and the number of nodes inlining it creates (computed once). */
typedef struct FuncInfo {
    const Onnx__FunctionProto *fn;
    size_t size;            /* 0: not computed yet; SIZE_MAX: too large or nested too deep */
    bool busy;              /* being computed (a recursive function) */
} FuncInfo;

static FuncInfo *find_function(const Importer *im, const char *domain, const char *op)
{
    char key[512];
    if (!im->funcs || !im->funcs->count)
        return NULL;
    snprintf(key, sizeof key, "%s\x1f%s", norm_domain(domain), op);
    void **slot = strmap_find(im->funcs, key);
    return slot ? *slot : NULL;
}

static size_t sat_add(size_t a, size_t b)
{
    return b > SIZE_MAX - a ? SIZE_MAX : a + b;
}

static size_t func_size(const Importer *im, FuncInfo *fi, int depth);

/* Nodes that importing `nodes` creates, with calls expanded and subgraphs counted (saturating). */
static size_t nodes_size(const Importer *im, Onnx__NodeProto **nodes, size_t n, int depth)
{
    size_t total = 0;
    for (size_t i = 0; i < n && total < SIZE_MAX; i++) {
        const Onnx__NodeProto *np = nodes[i];
        FuncInfo *fi = np->op_type ? find_function(im, np->domain, np->op_type) : NULL;
        total = sat_add(total, fi ? func_size(im, fi, depth + 1) : 1);
        for (size_t k = 0; k < np->n_attribute; k++) {
            const Onnx__AttributeProto *ap = np->attribute[k];
            if (ap->g)
                total = sat_add(total, nodes_size(im, ap->g->node, ap->g->n_node, depth));
            for (size_t j = 0; j < ap->n_graphs; j++)
                total = sat_add(total, nodes_size(im, ap->graphs[j]->node, ap->graphs[j]->n_node, depth));
        }
    }
    return total;
}

static size_t func_size(const Importer *im, FuncInfo *fi, int depth)
{
    if (depth > MAX_INLINE_DEPTH)
        return SIZE_MAX;
    if (fi->busy)
        return 1; /* recursion: inline_call reports it */
    if (!fi->size) {
        fi->busy = true;
        fi->size = nodes_size(im, fi->fn->node, fi->fn->n_node, depth);
        fi->busy = false;
        if (!fi->size)
            fi->size = 1; /* an empty body still costs an Identity per output, at most */
    }
    return fi->size;
}

/* The name a node gets: as exported, else "<OpType>_<index>"; prefixed inside function bodies. */
static const char *node_name(Importer *im, const Scope *s, const Onnx__NodeProto *np, size_t index)
{
    const char *op = np->op_type && *np->op_type ? np->op_type : "Node";
    if (np->name && *np->name)
        return s->prefix ? arena_printf(im->tmp, "%s%s", s->prefix, np->name) : np->name;
    return arena_printf(im->tmp, "%s%s_%zu", s->prefix ? s->prefix : "", op, index);
}

static Status add_identity(Importer *im, Graph *g, Value *from, Value *to, const char *hint)
{
    Node *n = graph_add_node(g, "Identity", "", hint, 1, &from, 1, &to, im->d);
    if (!n)
        return im->d->status;
    int64_t v = model_opset(im->m, "");
    n->opset = v > 0 ? (int)v : 1; /* Identity means the same in every opset */
    return ST_OK;
}

Status import_charge_inline(Importer *im, size_t units, const char *what)
{
    if (units > MAX_INLINE_COST - im->inline_cost)
        return diag_error(im->d, ST_UNSUPPORTED, "%s: inlining functions would create more than %zu "
                          "nodes, values or KiB of tensors", what, MAX_INLINE_COST);
    im->inline_cost += units;
    return ST_OK;
}

/* Replace a call to a model-local function by the function's body: formal inputs are bound to the
 * call's inputs, formal outputs to its outputs, every other name is renamed "<call>/<name>", and
 * ref_attr_name attributes take the call's attribute values. */
static Status inline_call(Importer *im, Scope *s, Onnx__NodeProto *np, const char *name,
                          const Onnx__FunctionProto *fn, Value **outs, const char *what)
{
    Diag *d = im->d;
    for (const Call *c = s->call; c; c = c->up)
        if (c->fn == fn)
            return diag_error(d, ST_INVALID, "%s: function '%s' calls itself, which cannot be inlined",
                              what, fn->name);
    if (im->inline_depth >= MAX_INLINE_DEPTH)
        return diag_error(d, ST_UNSUPPORTED, "%s: functions nested more than %d deep", what,
                          MAX_INLINE_DEPTH);
    if (np->n_input > fn->n_input || np->n_output > fn->n_output)
        return diag_error(d, ST_INVALID, "%s: %zu inputs and %zu outputs, but function '%s' has %zu "
                          "and %zu", what, np->n_input, np->n_output, fn->name, fn->n_input,
                          fn->n_output);
    Call call = {.fn = fn, .up = s->call};
    call.attrs = arena_calloc(im->tmp, np->n_attribute ? np->n_attribute : 1, sizeof *call.attrs);
    StrMap *names = strmap_new(im->tmp), *outputs = strmap_new(im->tmp);
    char *prefix = arena_printf(im->tmp, "%s/", name);
    if (!call.attrs || !names || !outputs || !prefix)
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < np->n_attribute; i++) {
        Onnx__AttributeProto *ap = np->attribute[i];
        CallAttr ca = {ap->name ? ap->name : "", ap, s};
        if (ap->ref_attr_name && *ap->ref_attr_name) {
            const CallAttr *up = NULL;
            for (size_t k = 0; s->call && k < s->call->nattrs; k++)
                if (strcmp(s->call->attrs[k].name, ap->ref_attr_name) == 0)
                    up = &s->call->attrs[k];
            if (!s->call)
                return diag_error(d, ST_INVALID, "%s attribute '%s': ref_attr_name '%s' outside a "
                                  "function body", what, ca.name, ap->ref_attr_name);
            if (!up)
                continue;
            ca.ap = up->ap;
            ca.scope = up->scope;
        }
        call.attrs[call.nattrs++] = ca;
    }
    Scope fs = {.up = s, .g = s->g, .names = names, .outputs = outputs, .prefix = prefix,
                .barrier = true, .call = &call};
    for (size_t i = 0; i < fn->n_input; i++) {
        const char *formal = fn->input[i];
        Value *v = NULL;
        if (!*formal || strmap_find(names, formal))
            return diag_error(d, ST_INVALID, "function '%s': input %zu '%s' is empty or declared twice",
                              fn->name, i, formal);
        if (i < np->n_input && *np->input[i] && !scope_lookup(s, np->input[i], &v))
            return diag_error(d, ST_INVALID, "%s: input %zu '%s' is not defined by any node, "
                              "initializer or graph input", what, i, np->input[i]);
        if (!strmap_put(im->tmp, names, formal, v))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    }
    for (size_t i = 0; i < np->n_output; i++)
        if (*fn->output[i] && !strmap_find(outputs, fn->output[i]) &&
            !strmap_put(im->tmp, outputs, fn->output[i], outs[i]))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    im->inline_depth++;
    Status st = import_nodes(im, &fs, fn->node, fn->n_node);
    im->inline_depth--;
    if (st)
        return st;
    /* outputs no body node wrote: a formal output that is an input or repeats another output */
    for (size_t i = 0; i < np->n_output; i++) {
        Value *src = NULL;
        if (outs[i]->producer)
            continue;
        if (!scope_lookup(&fs, fn->output[i], &src) || !src || src == outs[i])
            return diag_error(d, ST_INVALID, "%s: function '%s' never computes its output %zu '%s'",
                              what, fn->name, i, fn->output[i]);
        if ((st = add_identity(im, s->g, src, outs[i], arena_printf(im->tmp, "%s%s", prefix,
                                                                     fn->output[i]))))
            return st;
    }
    return ST_OK;
}

static Status import_node(Importer *im, Scope *s, Onnx__NodeProto *np, const char *name, Value **outs)
{
    Diag *d = im->d;
    char what[400];
    snprintf(what, sizeof what, "node '%s' (%s)", name, np->op_type ? np->op_type : "");
    if (!np->op_type || !*np->op_type)
        return diag_error(d, ST_INVALID, "%s: op_type is empty", what);
    if (np->n_input > INT_MAX || np->n_output > INT_MAX || np->n_attribute > INT_MAX)
        return diag_error(d, ST_UNSUPPORTED, "%s: too many inputs, outputs or attributes", what);
    const char *domain = norm_domain(np->domain);
    FuncInfo *fi = find_function(im, domain, np->op_type);
    if (fi) {
        if (!s->call && func_size(im, fi, 0) > MAX_INLINE_COST - im->inline_cost)
            return diag_error(d, ST_UNSUPPORTED, "%s: inlining function '%s' would create more than %zu "
                              "nodes (or nest calls more than %d deep)", what, np->op_type,
                              MAX_INLINE_COST, MAX_INLINE_DEPTH);
        return inline_call(im, s, np, name, fi->fn, outs, what);
    }
    if (im->inline_depth && import_charge_inline(im, 1, what))
        return d->status;
    Value **ins = arena_calloc(im->tmp, np->n_input ? np->n_input : 1, sizeof *ins);
    if (!ins)
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < np->n_input; i++)
        if (*np->input[i] && !scope_lookup(s, np->input[i], &ins[i]))
            return diag_error(d, ST_INVALID, "%s: input %zu '%s' is not defined by any node, "
                              "initializer or graph input%s", what, i, np->input[i],
                              s->call ? " of the function" : "");
    Node *n = graph_add_node(s->g, np->op_type, domain, name, (int)np->n_input, ins,
                             (int)np->n_output, outs, d);
    if (!n)
        return d->status;
    n->opset = (int)scope_opset(im, s, domain);
    /* models using only other domains (ai.onnx.preview.training, ...) may leave ai.onnx out */
    if (n->opset == 0 && !*domain)
        return diag_error(d, ST_INVALID, "%s: opset_import has no version for the default domain "
                          "(ai.onnx)", what);
    if (np->doc_string && *np->doc_string && !(n->doc = arena_strdup(im->a, np->doc_string)))
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    /* filled here rather than by node_add_attr, which copies the array on every call */
    if (!(n->attrs = arena_calloc(im->a, np->n_attribute ? np->n_attribute : 1, sizeof *n->attrs)))
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    StrMap *seen = np->n_attribute > 1 ? strmap_new(im->tmp) : NULL;
    if (np->n_attribute > 1 && !seen)
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < np->n_attribute; i++) {
        Attr at;
        bool present;
        const char *an = np->attribute[i]->name;
        if (seen && an) {
            if (strmap_find(seen, an))
                return diag_error(d, ST_INVALID, "%s: attribute '%s' appears twice", what, an);
            if (!strmap_put(im->tmp, seen, an, NULL))
                return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        }
        Status st = import_attr(im, s, what, np->attribute[i], &at, &present);
        if (st)
            return st;
        if (present && !(at.name = arena_strdup(im->a, at.name)))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
        if (present)
            n->attrs[n->nattrs++] = at;
    }
    return ST_OK;
}

/* Define the outputs of all nodes first, then import the nodes: nodes (and their subgraphs) may
 * then read values that later nodes define. ONNX asks for topological order but not every exporter
 * keeps it; graph_toposort restores it and reports cycles. */
static Status import_nodes(Importer *im, Scope *s, Onnx__NodeProto **nodes, size_t n)
{
    Diag *d = im->d;
    Value ***outs = arena_calloc(im->tmp, n ? n : 1, sizeof *outs);
    const char **names = arena_calloc(im->tmp, n ? n : 1, sizeof *names);
    if (!outs || !names)
        return diag_error(d, ST_NOMEM, "out of memory importing nodes");
    for (size_t i = 0; i < n; i++) {
        Onnx__NodeProto *np = nodes[i];
        names[i] = node_name(im, s, np, i);
        outs[i] = arena_calloc(im->tmp, np->n_output ? np->n_output : 1, sizeof **outs);
        if (!names[i] || !outs[i])
            return diag_error(d, ST_NOMEM, "out of memory importing nodes");
        for (size_t k = 0; k < np->n_output; k++) {
            const char *on = np->output[k];
            if (!*on)
                continue;
            char what[500];
            snprintf(what, sizeof what, "node '%s' (%s) output %zu", names[i], np->op_type ? np->op_type : "", k);
            void **bound = s->outputs ? strmap_find(s->outputs, on) : NULL;
            Value *v;
            if (bound && *bound && !strmap_find(s->names, on)) {
                /* a function's formal output: the caller's value */
                v = *bound;
                *bound = NULL;
                if (!strmap_put(im->tmp, s->names, on, v))
                    return diag_error(d, ST_NOMEM, "%s: out of memory", what);
            } else if (!(v = scope_define(im, s, on, what))) {
                return d->status;
            }
            void **vi = s->vinfo ? strmap_find(s->vinfo, on) : NULL;
            Status st = vi ? import_type(im, ((Onnx__ValueInfoProto *)*vi)->type, what, v) : ST_OK;
            if (st)
                return st;
            outs[i][k] = v;
        }
    }
    /* omitted outputs ("") get fresh names, after every exported name is taken */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nodes[i]->n_output; k++)
            if (!*nodes[i]->output[k]) {
                char *hint = arena_printf(im->tmp, "%s_out%zu", names[i], k);
                if (!hint || !(outs[i][k] = fresh_value(im, s->g, hint)))
                    return d->status ? d->status : diag_error(d, ST_NOMEM, "out of memory");
            }
    for (size_t i = 0; i < n; i++) {
        Status st = import_node(im, s, nodes[i], names[i], outs[i]);
        if (st)
            return st;
    }
    return ST_OK;
}

/* ======================================================================== graphs */

static Status set_init(Importer *im, Value *v, Tensor *t)
{
    v->kind = VK_TENSOR;
    v->dtype = t->dtype;
    v->shape = t->shape;
    v->init = t;
    v->is_initializer = true;
    (void)im;
    return ST_OK;
}

static Status import_initializer(Importer *im, Scope *s, Onnx__TensorProto *tp, size_t i, bool steal)
{
    char what[400];
    if (!tp->name || !*tp->name)
        return diag_error(im->d, ST_INVALID, "initializer %zu has no name", i);
    snprintf(what, sizeof what, "initializer '%s'", tp->name);
    Value *v = scope_define(im, s, tp->name, what);
    Tensor *t = NULL;
    if (!v)
        return im->d->status;
    Status st = import_tensor(im, tp, what, steal, &t);
    return st ? st : set_init(im, v, t);
}

/* Everything of a GraphProto except what the caller did already (the top graph's initializers). */
static Status import_graph_body(Importer *im, Scope *s, Onnx__GraphProto *gp, const char *gwhat)
{
    Diag *d = im->d;
    Graph *g = s->g;
    char what[500];
    Status st;
    bool steal = im->inline_depth == 0;
    for (size_t i = 0; i < gp->n_initializer; i++)
        if ((st = import_initializer(im, s, gp->initializer[i], i, steal)))
            return st;
    for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
        Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
        const char *name = sp->values ? sp->values->name : NULL;
        if (!name || !*name)
            return diag_error(d, ST_INVALID, "%s: sparse_initializer %zu has no name (values.name)",
                              gwhat, i);
        snprintf(what, sizeof what, "sparse_initializer '%s'", name);
        Value *v = scope_define(im, s, name, what);
        Tensor *t = NULL;
        if (!v)
            return d->status;
        if ((st = import_sparse_tensor(im, sp, what, steal, &t)) || (st = set_init(im, v, t)))
            return st;
    }
    /* the input and output lists are filled here rather than by graph_add_input/output, which
     * grow their arrays one element at a time (quadratic for thousands of inputs) */
    g->inputs = arena_calloc(im->a, gp->n_input ? gp->n_input : 1, sizeof *g->inputs);
    g->outputs = arena_calloc(im->a, gp->n_output ? gp->n_output : 1, sizeof *g->outputs);
    if (!g->inputs || !g->outputs)
        return diag_error(d, ST_NOMEM, "%s: out of memory", gwhat);
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name)
            return diag_error(d, ST_INVALID, "%s: input %zu has no name", gwhat, i);
        snprintf(what, sizeof what, "graph input '%s'", vi->name);
        Value *v = graph_find_local(g, vi->name);
        if (v && v->is_initializer && !v->is_input) {
            /* an input with a default: the initializer's value unless the caller feeds one */
            int64_t et = type_elem(vi->type);
            if (et && et != v->dtype)
                return diag_error(d, ST_INVALID, "%s: declared %s but its initializer is %s", what,
                                  dtype_onnx_name((DType)(et < DT_COUNT && et > 0 ? et : 0)),
                                  dtype_onnx_name(v->dtype));
        } else {
            if (!(v = scope_define(im, s, vi->name, what)))
                return d->status;
            if ((st = import_type(im, vi->type, what, v)))
                return st;
        }
        if (vi->doc_string && *vi->doc_string)
            v->doc = arena_strdup(im->a, vi->doc_string);
        v->is_input = true;
        g->inputs[g->ninputs++] = v;
    }
    if (gp->n_value_info) {
        if (!(s->vinfo = strmap_new(im->tmp)))
            return diag_error(d, ST_NOMEM, "out of memory");
        for (size_t i = 0; i < gp->n_value_info; i++)
            if (gp->value_info[i]->name && !strmap_put(im->tmp, s->vinfo, gp->value_info[i]->name,
                                                       gp->value_info[i]))
                return diag_error(d, ST_NOMEM, "out of memory");
    }
    if ((st = import_nodes(im, s, gp->node, gp->n_node)))
        return st;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        Value *v = NULL;
        if (!vi->name || !*vi->name)
            return diag_error(d, ST_INVALID, "%s: output %zu has no name", gwhat, i);
        snprintf(what, sizeof what, "graph output '%s'", vi->name);
        if (!scope_lookup(s, vi->name, &v) || !v)
            return diag_error(d, ST_INVALID, "%s: %s is not computed by any node, initializer or input",
                              gwhat, what);
        if (graph_find_local(g, v->name) != v) {
            /* a subgraph returning an outer value: copy it so the output belongs to this graph */
            Value *copy = fresh_value(im, g, vi->name);
            if (!copy)
                return d->status;
            copy->kind = v->kind, copy->dtype = v->dtype, copy->shape = v->shape;
            if ((st = add_identity(im, g, v, copy, arena_printf(im->tmp, "Identity_%s", vi->name))))
                return st;
            v = copy;
        }
        if (!v->init && v->dtype == DT_UNDEFINED && v->shape.rank < 0 && (st = import_type(im, vi->type, what, v)))
            return st;
        v->is_output = true;
        g->outputs[g->noutputs++] = v;
    }
    return ST_OK;
}

/* ======================================================================== models */

static Status import_model(Importer *im, Onnx__ModelProto *mp, const uint8_t *buf, size_t len,
                           const Split *sp, bool mapped)
{
    Diag *d = im->d;
    Model *m = im->m;
    Arena *a = im->a;
    if (!mp->has_ir_version || mp->ir_version <= 0)
        return diag_error(d, ST_PARSE, "not an ONNX model: ModelProto.ir_version is missing");
    if (!mp->graph)
        return diag_error(d, ST_INVALID, "ModelProto.graph is missing");
    if (mp->n_opset_import == 0)
        return diag_error(d, ST_UNSUPPORTED, "IR version %lld model without opset_import: models "
                          "before IR version 3 are not supported", (long long)mp->ir_version);
    m->ir_version = mp->ir_version;
    m->model_version = mp->model_version;
    m->producer_name = arena_strdup(a, mp->producer_name ? mp->producer_name : "");
    m->producer_version = arena_strdup(a, mp->producer_version ? mp->producer_version : "");
    m->domain = arena_strdup(a, mp->domain ? mp->domain : "");
    m->doc = arena_strdup(a, mp->doc_string ? mp->doc_string : "");
    m->opsets = arena_calloc(a, mp->n_opset_import, sizeof *m->opsets);
    m->props = arena_calloc(a, mp->n_metadata_props ? mp->n_metadata_props : 1, sizeof *m->props);
    if (!m->producer_name || !m->producer_version || !m->domain || !m->doc || !m->opsets || !m->props)
        return diag_error(d, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *dom = norm_domain(o->domain);
        if (model_opset(m, dom))
            return diag_error(d, ST_INVALID, "opset_import lists domain '%s' twice", dom);
        if (!o->has_version || o->version <= 0 || o->version > INT_MAX)
            return diag_error(d, ST_INVALID, "opset_import of domain '%s' has no valid version", dom);
        m->opsets[m->nopsets++] = (OpsetImport){arena_strdup(a, dom), o->version};
        if (!m->opsets[i].domain)
            return diag_error(d, ST_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
        m->props[m->nprops++] = (MetaProp){arena_strdup(a, e->key ? e->key : ""),
                                           arena_strdup(a, e->value ? e->value : "")};
    }
    if (mp->n_functions && !(im->funcs = strmap_new(im->tmp)))
        return diag_error(d, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_functions; i++) {
        const Onnx__FunctionProto *fn = mp->functions[i];
        if (!fn->name || !*fn->name)
            return diag_error(d, ST_INVALID, "model-local function %zu has no name", i);
        char *key = arena_printf(im->tmp, "%s\x1f%s", norm_domain(fn->domain), fn->name);
        if (!key)
            return diag_error(d, ST_NOMEM, "out of memory");
        if (strmap_find(im->funcs, key))
            return diag_error(d, ST_INVALID, "model-local function '%s' (domain '%s') is defined twice",
                              fn->name, norm_domain(fn->domain));
        FuncInfo *fi = arena_alloc(im->tmp, sizeof *fi);
        if (!fi || !strmap_put(im->tmp, im->funcs, key, fi))
            return diag_error(d, ST_NOMEM, "out of memory");
        fi->fn = fn;
    }
    Graph *g = graph_new(a, mp->graph->name, NULL);
    if (!g)
        return diag_error(d, ST_NOMEM, "out of memory");
    m->graph = g;
    Scope s = {.g = g};
    /* the top graph's initializers, decoded one by one from the input and released as we go */
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < sp->ninits; i++) {
        const Range *r = &sp->inits[i];
        Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, r->len, buf + r->off);
        if (!tp)
            return diag_error(d, ST_PARSE, "graph.initializer[%zu] (at byte %zu): protobuf decoding of "
                              "the TensorProto failed", i, r->off);
        Status st = import_initializer(im, &s, tp, i, true);
        onnx__tensor_proto__free_unpacked(tp, NULL);
        if (st)
            return st;
        if (mapped && page > 0) {
            size_t lo = r->off & ~((size_t)page - 1), hi = r->off + r->len;
            hi = hi > len ? len : hi;
            madvise((void *)(buf + lo), hi - lo, MADV_DONTNEED);
        }
    }
    char gwhat[300];
    snprintf(gwhat, sizeof gwhat, "graph '%s'", g->name);
    Status st = import_graph_body(im, &s, mp->graph, gwhat);
    if (!st)
        st = graph_toposort(g, d);
    if (!st)
        st = graph_verify(g, d);
    return st;
}

static Status import_buffer(const uint8_t *buf, size_t len, const char *dir, const char *path,
                            bool mapped, Model **out, Diag *d)
{
    *out = NULL;
    if (len == 0)
        return diag_error(d, ST_PARSE, "empty file (0 bytes): not an ONNX model");
    Importer im = {.d = d, .dir = dir, .ext_fd = -1};
    Split sp = {0};
    Status st;
    im.tmp = arena_new();
    im.m = model_new();
    if (!im.tmp || !im.m) {
        st = diag_error(d, ST_NOMEM, "out of memory");
        goto done;
    }
    im.a = im.m->arena;
    if (path && !(im.m->path = arena_strdup(im.a, path))) {
        st = diag_error(d, ST_NOMEM, "out of memory");
        goto done;
    }
    if ((st = import_split(&im, buf, len, &sp)))
        goto done;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, sp.skel_len, sp.skel);
    free(sp.skel);
    if (!mp) {
        st = diag_error(d, ST_PARSE, "not an ONNX model: protobuf decoding of the ModelProto failed");
        goto done;
    }
    if (mapped)
        madvise((void *)buf, len, MADV_DONTNEED);
    st = import_model(&im, mp, buf, len, &sp, mapped);
    onnx__model_proto__free_unpacked(mp, NULL);
done:
    import_close_external(&im);
    arena_free(im.tmp);
    if (st)
        model_free(im.m);
    else
        *out = im.m;
    return st;
}

Status onnx_import_bytes(const void *buf, size_t len, const char *dir, Model **out, Diag *d)
{
    return import_buffer(buf, len, dir, NULL, false, out, d);
}

Status onnx_import_file(const char *path, Model **out, Diag *d)
{
    *out = NULL;
    if (d && !d->file)
        d->file = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return diag_error(d, ST_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return diag_error(d, ST_IO, "not a regular file");
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        return diag_error(d, ST_PARSE, "empty file (0 bytes): not an ONNX model");
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return diag_error(d, ST_IO, "cannot map the file: %s", strerror(errno));
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    Status s = dir ? import_buffer(map, len, dir, path, true, out, d)
                   : diag_error(d, ST_NOMEM, "out of memory");
    free(dir);
    munmap(map, len);
    return s;
}
