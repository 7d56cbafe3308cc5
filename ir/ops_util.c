/* ops_util.c - helpers every op family's rules share: arity checks, numpy broadcasting of shapes,
 * axis normalisation, constant inputs read as int64 lists, output dtype/shape setting, fold outputs,
 * and the small graph edits canonicalisation needs (constant values, inputs, attributes, op type).
 * It knows no op by name: the rules themselves live in ir/ops_<family>.c. */
#include "ir.h"

#include <string.h>

/* ---- arity and inputs ---- */

Status op_check_arity(const Node *n, int min_in, int max_in, int min_out, int max_out, Diag *d)
{
    if (n->ninputs < min_in || (max_in >= 0 && n->ninputs > max_in)) {
        if (max_in == min_in)
            return diag_node(d, n, ST_INVALID, "expects %d input%s, got %d", min_in, min_in == 1 ? "" : "s",
                             n->ninputs);
        if (max_in < 0)
            return diag_node(d, n, ST_INVALID, "expects at least %d inputs, got %d", min_in, n->ninputs);
        return diag_node(d, n, ST_INVALID, "expects %d to %d inputs, got %d", min_in, max_in, n->ninputs);
    }
    if (n->noutputs < min_out || (max_out >= 0 && n->noutputs > max_out)) {
        if (max_out == min_out)
            return diag_node(d, n, ST_INVALID, "expects %d output%s, got %d", min_out,
                             min_out == 1 ? "" : "s", n->noutputs);
        return diag_node(d, n, ST_INVALID, "expects %d to %d outputs, got %d", min_out, max_out, n->noutputs);
    }
    return ST_OK;
}

Status op_require_inputs(const Node *n, int count, Diag *d)
{
    for (int i = 0; i < count; i++) {
        const Value *v = node_input(n, i);
        if (!v)
            return diag_node(d, n, ST_INVALID, "input %d is required but missing", i);
        if (v->kind != VK_TENSOR)
            return diag_node(d, n, ST_UNSUPPORTED, "input %d '%s' is not a tensor", i, v->name);
    }
    return ST_OK;
}

Status op_check_dtype(const Node *n, int i, DType want, Diag *d)
{
    const Value *v = node_input(n, i);
    if (!v || v->dtype == DT_UNDEFINED || want == DT_UNDEFINED || v->dtype == want)
        return ST_OK;
    return diag_node(d, n, ST_SHAPE, "input %d '%s' is %s but must be %s", i, v->name, dtype_name(v->dtype),
                     dtype_name(want));
}

Status op_same_dtype(const Node *n, int i, int j, Diag *d)
{
    const Value *a = node_input(n, i), *b = node_input(n, j);
    if (!a || !b || a->dtype == DT_UNDEFINED || b->dtype == DT_UNDEFINED || a->dtype == b->dtype)
        return ST_OK;
    return diag_node(d, n, ST_SHAPE, "input %d '%s' is %s but input %d '%s' is %s (they must match)", i,
                     a->name, dtype_name(a->dtype), j, b->name, dtype_name(b->dtype));
}

static bool is_unsigned(DType t)
{
    return t == DT_UINT8 || t == DT_UINT16 || t == DT_UINT32 || t == DT_UINT64;
}

bool dtype_in_class(DType t, TypeClass c)
{
    switch (c) {
    case TC_ANY: return true;
    case TC_FLOAT: return dtype_is_float(t);
    case TC_NUMERIC: return dtype_is_float(t) || dtype_is_int(t);
    case TC_BOOL: return t == DT_BOOL;
    case TC_INT: return dtype_is_int(t);
    case TC_UNSIGNED: return is_unsigned(t);
    }
    return false;
}

static const char *class_name(TypeClass c)
{
    static const char *names[] = {"any type", "a float type", "a numeric type", "bool", "an integer type",
                                  "an unsigned integer type"};
    return names[c];
}

Status op_check_class(const Node *n, int i, TypeClass c, Diag *d)
{
    const Value *v = node_input(n, i);
    if (!v || v->dtype == DT_UNDEFINED || dtype_in_class(v->dtype, c))
        return ST_OK;
    return diag_node(d, n, ST_SHAPE, "input %d '%s' is %s but %s needs %s", i, v->name, dtype_name(v->dtype),
                     n->op_type, class_name(c));
}

static Status check_type(const Node *n, const TypeCheck *c, int i, Diag *d)
{
    switch (c->kind) {
    case TK_IS: return op_check_dtype(n, i, (DType)c->arg, d);
    case TK_CLASS: return op_check_class(n, i, (TypeClass)c->arg, d);
    case TK_SAME: return op_same_dtype(n, c->input, c->arg == ALL_INPUTS ? i : c->arg, d);
    case TK_CLASS_SAME: {
        Status st = op_check_class(n, i, (TypeClass)c->arg, d);
        return st || i == 0 ? st : op_same_dtype(n, 0, i, d);
    }
    case TK_NONE: break;
    }
    return ST_OK;
}

Status op_check_signature(const OpRule *r, const Node *n, Diag *d)
{
    const OpArity *a = &r->arity;
    Status st;
    if (a->set && (st = op_check_arity(n, a->in_min, a->in_max, a->out_min, a->out_max, d)))
        return st;
    if (r->required && (st = op_require_inputs(n, r->required == ALL_INPUTS ? n->ninputs : r->required, d)))
        return st;
    size_t nc = sizeof r->types / sizeof r->types[0];
    for (const TypeCheck *c = r->types; c < r->types + nc && c->kind != TK_NONE; c++) {
        bool each = c->kind == TK_CLASS_SAME || (c->kind == TK_SAME ? c->arg == ALL_INPUTS : c->input == ALL_INPUTS);
        if (!each) {
            if ((st = check_type(n, c, c->input, d)))
                return st;
            continue;
        }
        for (int i = c->kind == TK_SAME ? c->input + 1 : 0; i < n->ninputs; i++)
            if ((st = check_type(n, c, i, d)))
                return st;
    }
    return ST_OK;
}

Status op_input_ints(Graph *g, const Node *n, int i, IntList *out, Diag *d)
{
    memset(out, 0, sizeof *out);
    const Value *v = node_input(n, i);
    if (!v || !value_is_const(v))
        return ST_OK;
    const Tensor *t = v->init;
    if (!dtype_is_int(t->dtype))
        return diag_node(d, n, ST_SHAPE, "input %d '%s' must be an integer tensor, not %s", i, v->name,
                         dtype_name(t->dtype));
    if (t->shape.rank > 1)
        return diag_node(d, n, ST_SHAPE, "input %d '%s' must be a scalar or 1-D, not rank %d", i, v->name,
                         t->shape.rank);
    out->v = arena_calloc(g->arena, t->numel ? t->numel : 1, sizeof *out->v);
    if (!out->v)
        return diag_node(d, n, ST_NOMEM, "out of memory reading input %d", i);
    for (size_t k = 0; k < t->numel; k++)
        out->v[k] = tensor_get_i64(t, k);
    out->n = t->numel;
    out->known = true;
    return ST_OK;
}

bool op_attr_ints(const Node *n, const char *name, IntList *out)
{
    memset(out, 0, sizeof *out);
    const Attr *a = node_attr(n, name);
    if (!a)
        return false;
    if (a->type == AT_INTS) {
        out->v = a->ints;
        out->n = a->n;
    } else if (a->type == AT_INT) {
        out->v = (int64_t *)&a->i;
        out->n = 1;
    } else {
        return false;
    }
    out->known = true;
    return true;
}

/* ---- shapes ---- */

bool dim_same(const Shape *a, int i, const Shape *b, int j)
{
    if (a->dim[i] >= 0 || b->dim[j] >= 0)
        return a->dim[i] == b->dim[j];
    return a->sym[i] && b->sym[j] && strcmp(a->sym[i], b->sym[j]) == 0;
}

bool dim_conflict(const Shape *a, int i, const Shape *b, int j)
{
    return a->dim[i] >= 0 && b->dim[j] >= 0 && a->dim[i] != b->dim[j];
}

void dim_copy(Shape *dst, int i, const Shape *src, int j)
{
    dst->dim[i] = src->dim[j];
    dst->sym[i] = src->dim[j] < 0 ? src->sym[j] : NULL;
}

void dim_merge(Shape *dst, int i, const Shape *src, int j)
{
    if (dst->dim[i] < 0 && src->dim[j] >= 0)
        dim_copy(dst, i, src, j);
    else if (dst->dim[i] < 0 && !dst->sym[i])
        dst->sym[i] = src->sym[j];
}

/* One broadcast output dim from dims a[i] and b[j] (either may be unknown); false if they clash. */
static bool bcast_dim(const Shape *a, int i, const Shape *b, int j, Shape *out, int k)
{
    int64_t x = a->dim[i], y = b->dim[j];
    if (x >= 0 && y >= 0) {
        if (x != y && x != 1 && y != 1)
            return false;
        out->dim[k] = x == 1 ? y : x;
        out->sym[k] = NULL;
    } else if (x == 1) {
        dim_copy(out, k, b, j);
    } else if (y == 1) {
        dim_copy(out, k, a, i);
    } else if (x >= 0 || y >= 0) {
        /* an unknown dim against a known one other than 1: it must be that one, or 1 */
        out->dim[k] = x >= 0 ? x : y;
        out->sym[k] = NULL;
    } else {
        out->dim[k] = -1;
        out->sym[k] = dim_same(a, i, b, j) ? a->sym[i] : NULL;
    }
    return true;
}

Status shape_broadcast(const Node *n, int ia, const Shape *a, int ib, const Shape *b, Shape *out, Diag *d)
{
    if (a->rank < 0 || b->rank < 0) {
        *out = shape_unknown();
        return ST_OK;
    }
    Shape r = shape_scalar();
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int k = 0; k < r.rank; k++) {
        int i = k - (r.rank - a->rank), j = k - (r.rank - b->rank);
        if (i < 0)
            dim_copy(&r, k, b, j);
        else if (j < 0)
            dim_copy(&r, k, a, i);
        else if (!bcast_dim(a, i, b, j, &r, k)) {
            char sa[128], sb[128];
            return diag_node(d, n, ST_SHAPE, "input %d shape %s and input %d shape %s cannot be broadcast "
                             "(dim %d: %lld vs %lld)", ia, shape_str(a, sa, sizeof sa), ib,
                             shape_str(b, sb, sizeof sb), k, (long long)a->dim[i], (long long)b->dim[j]);
        }
    }
    *out = r;
    return ST_OK;
}

Status shape_broadcast_inputs(const Node *n, int first, int count, Shape *out, Diag *d)
{
    Shape acc = shape_scalar();
    int acc_i = -1;
    bool any_unknown = false;
    for (int i = first; i < first + count && i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (!v)
            continue;
        if (v->shape.rank < 0) {
            any_unknown = true;
            continue;
        }
        if (acc_i < 0) {
            acc = v->shape;
            acc_i = i;
            continue;
        }
        Shape r;
        Status st = shape_broadcast(n, acc_i, &acc, i, &v->shape, &r, d);
        if (st)
            return st;
        acc = r;
    }
    *out = any_unknown ? shape_unknown() : acc;
    return ST_OK;
}

size_t shape_broadcast_offset(const Shape *in, const Shape *out, size_t flat)
{
    size_t off = 0, stride = 1;
    for (int k = out->rank - 1, j = in->rank - 1; k >= 0; k--, j--) {
        size_t idx = (size_t)(flat % (size_t)out->dim[k]);
        flat /= (size_t)out->dim[k];
        if (j < 0)
            continue;
        if (in->dim[j] != 1)
            off += idx * stride;
        stride *= (size_t)in->dim[j];
    }
    return off;
}

Status op_axis(const Node *n, const char *what, int64_t axis, int rank, int *out, Diag *d)
{
    if (rank < 0 || axis < -(int64_t)rank || axis >= (int64_t)rank)
        return diag_node(d, n, ST_SHAPE, "%s %lld is out of range for rank %d (allowed %d..%d)", what,
                         (long long)axis, rank, -rank, rank - 1);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return ST_OK;
}

double shape_numel_or0(const Shape *s)
{
    if (!shape_is_static(s))
        return 0;
    double e = 1;
    for (int i = 0; i < s->rank; i++)
        e *= (double)s->dim[i];
    return e;
}

/* ---- outputs ---- */

void op_set_output(Node *n, int i, DType t, const Shape *s)
{
    if (i < 0 || i >= n->noutputs || !n->outputs[i])
        return;
    n->outputs[i]->kind = VK_TENSOR;
    n->outputs[i]->dtype = t;
    n->outputs[i]->shape = s ? *s : shape_unknown();
}

Status op_fold_output(Graph *g, Node *n, int i, Tensor **out, Diag *d)
{
    *out = NULL;
    if (i < 0 || i >= n->noutputs || !n->outputs[i])
        return diag_node(d, n, ST_ERR, "internal: no output %d to fold into", i);
    Value *o = n->outputs[i];
    char s[128];
    if (!shape_is_static(&o->shape) || o->dtype == DT_UNDEFINED)
        return diag_node(d, n, ST_ERR, "internal: folding output %d '%s' of unknown type or shape %s", i,
                         o->name, shape_str(&o->shape, s, sizeof s));
    Tensor *t = tensor_new(g->arena, o->dtype, &o->shape);
    if (!t)
        return diag_node(d, n, ST_NOMEM, "out of memory folding output %d '%s' %s", i, o->name,
                         shape_str(&o->shape, s, sizeof s));
    o->init = t;
    *out = t;
    return ST_OK;
}

/* ---- graph edits for canonicalisation ---- */

Value *graph_const(Graph *g, const char *hint, DType t, const Shape *s, Diag *d)
{
    Value *v = graph_new_value(g, hint, d);
    if (!v)
        return NULL;
    Tensor *tn = tensor_new(g->arena, t, s);
    if (!tn) {
        diag_error(d, ST_NOMEM, "out of memory making constant '%s'", v->name);
        return NULL;
    }
    v->init = tn;
    v->dtype = t;
    v->shape = *s;
    return v;
}

Value *graph_const_ints(Graph *g, const char *hint, const int64_t *vals, size_t count, Diag *d)
{
    if (count > (size_t)INT64_MAX) {
        diag_error(d, ST_NOMEM, "constant '%s' is too large", hint);
        return NULL;
    }
    int64_t dim = (int64_t)count;
    Shape s = shape_make(1, &dim);
    Value *v = graph_const(g, hint, DT_INT64, &s, d);
    if (v && count)
        memcpy(v->init->data, vals, count * sizeof *vals);
    return v;
}

Value *graph_const_scalar(Graph *g, const char *hint, DType t, double x, Diag *d)
{
    Shape s = shape_scalar();
    Value *v = graph_const(g, hint, t, &s, d);
    if (v)
        tensor_set_f64(v->init, 0, x);
    return v;
}

Status node_set_input(Graph *g, Node *n, int i, Value *v, Diag *d)
{
    if (i < 0)
        return diag_node(d, n, ST_ERR, "internal: negative input index");
    if (i >= n->ninputs) {
        Value **in = arena_calloc(g->arena, (size_t)i + 1, sizeof *in);
        if (!in)
            return diag_node(d, n, ST_NOMEM, "out of memory adding input %d", i);
        if (n->ninputs)
            memcpy(in, n->inputs, (size_t)n->ninputs * sizeof *in);
        n->inputs = in;
        n->ninputs = i + 1;
    }
    n->inputs[i] = v;
    return ST_OK;
}

void node_trim_inputs(Node *n)
{
    while (n->ninputs > 0 && !n->inputs[n->ninputs - 1])
        n->ninputs--;
}

bool node_remove_attr(Node *n, const char *name)
{
    for (int i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) {
            memmove(&n->attrs[i], &n->attrs[i + 1], (size_t)(n->nattrs - i - 1) * sizeof *n->attrs);
            n->nattrs--;
            return true;
        }
    return false;
}

Status node_set_attr_int(Graph *g, Node *n, const char *name, int64_t v, Diag *d)
{
    node_remove_attr(n, name);
    Attr a = {.name = name, .type = AT_INT, .i = v};
    if (!node_add_attr(g, n, &a))
        return diag_node(d, n, ST_NOMEM, "out of memory setting attribute %s", name);
    return ST_OK;
}

Status node_set_attr_ints(Graph *g, Node *n, const char *name, const int64_t *v, size_t count, Diag *d)
{
    node_remove_attr(n, name);
    int64_t *copy = arena_calloc(g->arena, count ? count : 1, sizeof *copy);
    if (!copy)
        return diag_node(d, n, ST_NOMEM, "out of memory setting attribute %s", name);
    if (count)
        memcpy(copy, v, count * sizeof *v);
    Attr a = {.name = name, .type = AT_INTS, .ints = copy, .n = count};
    if (!node_add_attr(g, n, &a))
        return diag_node(d, n, ST_NOMEM, "out of memory setting attribute %s", name);
    return ST_OK;
}

Status node_set_attr_float(Graph *g, Node *n, const char *name, float v, Diag *d)
{
    node_remove_attr(n, name);
    Attr a = {.name = name, .type = AT_FLOAT, .f = v};
    if (!node_add_attr(g, n, &a))
        return diag_node(d, n, ST_NOMEM, "out of memory setting attribute %s", name);
    return ST_OK;
}

Status node_set_op(Graph *g, Node *n, const char *op_type, Diag *d)
{
    const char *s = arena_strdup(g->arena, op_type);
    if (!s)
        return diag_node(d, n, ST_NOMEM, "out of memory renaming op");
    n->op_type = s;
    n->rule = op_lookup(n->domain, s);
    return ST_OK;
}

Node *graph_add_node1(Graph *g, const char *op_type, const char *name_hint, int ninputs, Value *const *inputs,
                      const char *out_hint, Diag *d)
{
    Value *o = graph_new_value(g, out_hint, d);
    if (!o)
        return NULL;
    char *name = NULL;
    if (name_hint) {
        /* node names need not be unique in ONNX, but readable dumps want them distinct */
        name = arena_printf(g->arena, "%s_%zu", name_hint, g->nnodes);
        if (!name) {
            diag_error(d, ST_NOMEM, "out of memory naming a %s node", op_type);
            return NULL;
        }
    }
    Node *n = graph_add_node(g, op_type, "", name, ninputs, inputs, 1, &o, d);
    /* nodes made by canon rules are born canonical: pass_canon does not visit them */
    if (n && n->rule)
        n->opset = n->rule->canon_opset;
    return n;
}
