/* ops_seq.c - rules of the sequence and optional ops (SequenceConstruct/Empty/Insert/Erase/At/Length,
 * ConcatFromSequence, SplitToSequence, SequenceMap (unrolled), Optional, OptionalHasElement,
 * OptionalGetElement), and how such values are laid out at run time.
 *
 * A sequence's length and element shapes are part of its compile-time type (Value.seq), as a tensor's
 * shape is; an optional's presence too (Value.opt). So SequenceLength and OptionalHasElement fold, and
 * positions need not be constant when every element has one shape. It does not handle sequences whose
 * type changes at run time (a Loop growing one needs a trip count known at compile time). */
#include "ir.h"

#include <string.h>

/* ---- types and layout ---- */

SeqType *seq_type_new(Graph *g, int n)
{
    SeqType *s = arena_alloc(g->arena, sizeof *s);
    if (!s)
        return NULL;
    s->n = n;
    if (n > 0 && !(s->shapes = arena_calloc(g->arena, (size_t)n, sizeof *s->shapes)))
        return NULL;
    return s;
}

void value_copy_type(Value *dst, const Value *src)
{
    dst->kind = src->kind;
    dst->dtype = src->dtype;
    dst->shape = src->shape;
    dst->seq = src->seq;
    dst->opt = src->opt;
    dst->opt_kind = src->opt_kind;
}

static bool seq_same(const SeqType *a, const SeqType *b)
{
    if (!a || !b || a->n < 0 || a->n != b->n)
        return false;
    for (int k = 0; k < a->n; k++)
        if (!shape_equal(&a->shapes[k], &b->shapes[k]))
            return false;
    return true;
}

bool value_same_seq_type(const Value *a, const Value *b)
{
    if (a->kind != b->kind || a->dtype != b->dtype)
        return false;
    switch (a->kind) {
    case VK_SEQUENCE:
        return seq_same(a->seq, b->seq);
    case VK_OPTIONAL:
        if (a->opt == OPT_UNKNOWN || a->opt != b->opt)
            return false;
        if (a->opt == OPT_NONE)
            return true;
        if (a->opt_kind != b->opt_kind)
            return false;
        return a->opt_kind == VK_SEQUENCE ? seq_same(a->seq, b->seq) : shape_equal(&a->shape, &b->shape);
    default:
        return true;
    }
}

static bool tensor_nbytes(DType t, const Shape *s, size_t *out)
{
    size_t numel, es = dtype_size(t);
    return es && t != DT_STRING && shape_is_static(s) && shape_numel(s, &numel) && size_mul(numel, es, out);
}

bool seq_layout(DType t, int n, const Shape *shapes, size_t *offsets, size_t *bytes)
{
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        size_t b;
        at = (at + 63) / 64 * 64;
        if (offsets)
            offsets[k] = at;
        if (!tensor_nbytes(t, &shapes[k], &b) || !size_add(at, b, &at))
            return false;
    }
    *bytes = at;
    return true;
}

bool value_nbytes(const Value *v, size_t *out)
{
    switch (v->kind) {
    case VK_TENSOR:
        return tensor_nbytes(v->dtype, &v->shape, out);
    case VK_SEQUENCE:
        return v->seq && v->seq->n >= 0 && dtype_size(v->dtype) &&
               seq_layout(v->dtype, v->seq->n, v->seq->shapes, NULL, out);
    case VK_OPTIONAL:
        if (v->opt == OPT_NONE) {
            *out = 0;
            return true;
        }
        if (v->opt != OPT_SOME || (v->opt_kind != VK_TENSOR && v->opt_kind != VK_SEQUENCE))
            return false;
        Value e = *v;
        e.kind = v->opt_kind;
        return value_nbytes(&e, out);
    default:
        return false;
    }
}

static size_t put(char *buf, size_t size, size_t at, const char *s)
{
    size_t len = strlen(s);
    if (at < size) {
        size_t room = size - at - 1;
        memcpy(buf + at, s, len < room ? len : room);
        buf[at + (len < room ? len : room)] = '\0';
    }
    return at + len;
}

char *value_type_str(const Value *v, char *buf, size_t size)
{
    char sh[160];
    size_t at = 0;
    if (!size)
        return buf;
    buf[0] = '\0';
    ValueKind k = v->kind;
    if (k == VK_OPTIONAL) {
        at = put(buf, size, at, "optional<");
        k = v->opt_kind;
    }
    if (k == VK_SEQUENCE) {
        at = put(buf, size, at, "seq<");
        at = put(buf, size, at, dtype_name(v->dtype));
        at = put(buf, size, at, ">");
        if (v->seq && v->seq->n >= 0) {
            at = put(buf, size, at, "(");
            for (int i = 0; i < v->seq->n; i++) {
                if (i)
                    at = put(buf, size, at, ",");
                at = put(buf, size, at, shape_str(&v->seq->shapes[i], sh, sizeof sh));
            }
            at = put(buf, size, at, ")");
        }
    } else {
        at = put(buf, size, at, dtype_name(v->dtype));
        at = put(buf, size, at, shape_str(&v->shape, sh, sizeof sh));
    }
    if (v->kind == VK_OPTIONAL) {
        at = put(buf, size, at, ">");
        if (v->opt == OPT_NONE)
            put(buf, size, at, "(none)");
    }
    return buf;
}

/* ---- helpers of the rules ---- */

static double no_flops(const Node *n)
{
    (void)n;
    return 0;
}

/* Input i must be a sequence; *out its type, NULL when not known (the rules then leave their outputs
 * unknown too, which code generation refuses; `dump` shows them). */
static Status seq_input(const Node *n, int i, const SeqType **out, Diag *d)
{
    const Value *v = node_input(n, i);
    if (!v)
        return diag_node(d, n, ST_INVALID, "input %d (a sequence) is required but missing", i);
    if (v->kind != VK_SEQUENCE)
        return diag_node(d, n, ST_SHAPE, "input %d '%s' must be a sequence", i, v->name);
    *out = v->seq && v->seq->n >= 0 ? v->seq : NULL;
    return ST_OK;
}

/* Output 0 a sequence of unknown length and element shapes. */
static Status unknown_seq(Node *n, DType t)
{
    Value *v = n->outputs[0];
    v->kind = VK_SEQUENCE;
    v->dtype = t;
    v->shape = shape_unknown();
    v->seq = NULL;
    return ST_OK;
}

static Status set_seq(Graph *g, Node *n, DType t, int len, Value **o, Diag *d)
{
    Value *v = n->outputs[0];
    v->kind = VK_SEQUENCE;
    v->dtype = t;
    v->shape = shape_unknown();
    v->opt = OPT_UNKNOWN;
    if (!(v->seq = seq_type_new(g, len)))
        return diag_node(d, n, ST_NOMEM, "out of memory");
    *o = v;
    return ST_OK;
}

/* Whether the n shapes are one static shape (then a position need not be known at compile time). */
static bool seq_uniform(const Shape *shapes, int n, const Shape *also)
{
    for (int k = 0; k < n; k++)
        if (!shape_is_static(&shapes[k]) || !shape_equal(&shapes[k], &shapes[0]) ||
            (also && !shape_equal(&shapes[k], also)))
            return false;
    return true;
}

/* The constant scalar position input i (ok false when absent: *known false; not constant: *known false
 * and *present true). Range [lo, hi] after adding len to negative ones. */
static Status seq_position(Graph *g, const Node *n, int i, int64_t len, int64_t lo, int64_t hi, bool *known,
                           int64_t *pos, Diag *d)
{
    IntList l;
    Status st = op_input_ints(g, n, i, &l, d);
    *known = false;
    if (st || !l.known)
        return st;
    if (l.n != 1)
        return diag_node(d, n, ST_SHAPE, "position must be a scalar, not %zu values", l.n);
    int64_t p = l.v[0] < 0 ? l.v[0] + len : l.v[0];
    if (p < lo || p > hi)
        return diag_node(d, n, ST_SHAPE, "position %lld is out of range for a sequence of %lld elements",
                         (long long)l.v[0], (long long)len);
    *known = true;
    *pos = p;
    return ST_OK;
}

/* A position that is not constant picks among elements of different shapes: the output's type is not
 * known at compile time. `onnxtune conform` retries on "not constant" with small inputs compiled in. */
static Status position_error(const Node *n, Diag *d)
{
    return diag_node(d, n, ST_UNSUPPORTED, "position is not constant and the elements' shapes differ");
}

/* Whether the walk only describes the model (dump: unknown ops allowed): then leave types unknown. */
static bool lenient(const Graph *g)
{
    return g->shape_opt && g->shape_opt->allow_unknown_ops;
}

/* ---- the rules ---- */

static Status seq_empty_shape(Graph *g, Node *n, Diag *d)
{
    Value *o = NULL;
    return set_seq(g, n, (DType)node_attr_int(n, "dtype", DT_FLOAT), 0, &o, d);
}

/* SequenceConstruct-11: a sequence of the inputs, in order. */
static Status seq_construct_shape(Graph *g, Node *n, Diag *d)
{
    Value *o = NULL;
    for (int i = 0; i < n->ninputs; i++)
        if (!n->inputs[i] || n->inputs[i]->kind != VK_TENSOR)
            return diag_node(d, n, ST_SHAPE, "input %d must be a tensor", i);
    Status st = set_seq(g, n, n->inputs[0]->dtype, n->ninputs, &o, d);
    for (int i = 0; !st && i < n->ninputs; i++)
        o->seq->shapes[i] = n->inputs[i]->shape;
    return st;
}

/* SequenceInsert-11: the tensor at `position` (default: at the back), range [-n, n]. */
static Status seq_insert_shape(Graph *g, Node *n, Diag *d)
{
    const SeqType *s = NULL;
    const Value *t = node_input(n, 1), *sv = node_input(n, 0);
    Value *o = NULL;
    bool known;
    int64_t pos;
    Status st = seq_input(n, 0, &s, d);
    if (st)
        return st;
    if (!t || t->kind != VK_TENSOR)
        return diag_node(d, n, ST_SHAPE, "input 1 must be a tensor");
    if (!s)
        return unknown_seq(n, t->dtype);
    if (s->n > 0 && sv->dtype != t->dtype)
        return diag_node(d, n, ST_SHAPE, "a %s tensor cannot go into a sequence of %s", dtype_name(t->dtype),
                         dtype_name(sv->dtype));
    if ((st = seq_position(g, n, 2, s->n, 0, s->n, &known, &pos, d)))
        return st;
    if (!node_input(n, 2))
        known = true, pos = s->n;
    if (!known && !seq_uniform(s->shapes, s->n, &t->shape))
        return lenient(g) ? unknown_seq(n, t->dtype) : position_error(n, d);
    if ((st = set_seq(g, n, t->dtype, s->n + 1, &o, d)))
        return st;
    for (int k = 0, j = 0; k <= s->n; k++)
        o->seq->shapes[k] = known && k == pos ? t->shape : known ? s->shapes[j++] : t->shape;
    return ST_OK;
}

/* SequenceErase-11: drop the element at `position` (default: the last), range [-n, n-1]. */
static Status seq_erase_shape(Graph *g, Node *n, Diag *d)
{
    const SeqType *s = NULL;
    Value *o = NULL;
    bool known;
    int64_t pos;
    Status st = seq_input(n, 0, &s, d);
    if (st || !s)
        return st ? st : unknown_seq(n, n->inputs[0]->dtype);
    if (s->n == 0)
        return diag_node(d, n, ST_SHAPE, "erasing from an empty sequence");
    if ((st = seq_position(g, n, 1, s->n, 0, s->n - 1, &known, &pos, d)))
        return st;
    if (!node_input(n, 1))
        known = true, pos = s->n - 1;
    if (!known && !seq_uniform(s->shapes, s->n, NULL))
        return lenient(g) ? unknown_seq(n, n->inputs[0]->dtype) : position_error(n, d);
    if ((st = set_seq(g, n, n->inputs[0]->dtype, s->n - 1, &o, d)))
        return st;
    for (int k = 0, j = 0; k < s->n; k++)
        if (!known || k != pos)
            o->seq->shapes[j++] = s->shapes[k];
    return ST_OK;
}

/* SequenceAt-11: the element at `position`, range [-n, n-1]. */
static Status seq_at_shape(Graph *g, Node *n, Diag *d)
{
    const SeqType *s = NULL;
    bool known;
    int64_t pos;
    Status st = seq_input(n, 0, &s, d);
    if (st)
        return st;
    if (!s) {
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    if (s->n == 0)
        return diag_node(d, n, ST_SHAPE, "reading from an empty sequence");
    if (!node_input(n, 1))
        return diag_node(d, n, ST_INVALID, "input 1 (position) is required but missing");
    if ((st = seq_position(g, n, 1, s->n, 0, s->n - 1, &known, &pos, d)))
        return st;
    if (!known && !seq_uniform(s->shapes, s->n, NULL)) {
        if (!lenient(g))
            return position_error(n, d);
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    op_set_output(n, 0, n->inputs[0]->dtype, &s->shapes[known ? pos : 0]);
    return ST_OK;
}

/* SequenceLength-11: a compile-time constant. */
static Status seq_length_shape(Graph *g, Node *n, Diag *d)
{
    const SeqType *s = NULL;
    Tensor *t;
    Status st = seq_input(n, 0, &s, d);
    if (st)
        return st;
    Shape sc = shape_scalar();
    op_set_output(n, 0, DT_INT64, &sc);
    if (!s)
        return ST_OK;
    if ((st = op_fold_output(g, n, 0, &t, d)))
        return st;
    tensor_set_i64(t, 0, s->n);
    return ST_OK;
}

/* ConcatFromSequence-11: Concat of the elements along axis, or Stack (new_axis 1) at axis. */
static Status concat_from_seq_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const SeqType *s = NULL;
    Status st = seq_input(n, 0, &s, d);
    if (st)
        return st;
    if (!s) {
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    if (s->n == 0)
        return diag_node(d, n, ST_SHAPE, "concatenating an empty sequence");
    bool stack = node_attr_int(n, "new_axis", 0) != 0;
    const Shape *e = &s->shapes[0];
    char a[128], b[128];
    if (e->rank < 0) {
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    int rank = e->rank + (stack ? 1 : 0), axis;
    if (rank == 0)
        return diag_node(d, n, ST_SHAPE, "cannot concatenate scalars without new_axis");
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), rank, &axis, d)))
        return st;
    Shape out = shape_scalar();
    out.rank = rank;
    for (int i = 0, j = 0; i < rank; i++)
        if (stack && i == axis)
            out.dim[i] = s->n;
        else
            dim_copy(&out, i, e, j++);
    for (int k = 1; k < s->n; k++) {
        const Shape *x = &s->shapes[k];
        if (x->rank != e->rank)
            return diag_node(d, n, ST_SHAPE, "elements 0 %s and %d %s differ in rank", shape_str(e, a, sizeof a), k,
                             shape_str(x, b, sizeof b));
        for (int i = 0; i < e->rank; i++) {
            bool cat = !stack && i == axis;
            if (!cat && dim_conflict(e, i, x, i))
                return diag_node(d, n, ST_SHAPE, "elements 0 %s and %d %s differ in dim %d",
                                 shape_str(e, a, sizeof a), k, shape_str(x, b, sizeof b), i);
            if (cat)
                out.dim[i] = out.dim[i] >= 0 && x->dim[i] >= 0 ? out.dim[i] + x->dim[i] : -1, out.sym[i] = NULL;
        }
    }
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

/* SplitToSequence-11: split X along axis into pieces of `split` (a scalar: that size, the last piece
 * smaller; 1-D: those sizes), or without split into pieces of 1, dropping the axis unless keepdims. */
static Status split_to_seq_shape(Graph *g, Node *n, Diag *d)
{
    const Value *x = n->inputs[0];
    IntList sp;
    Value *o = NULL;
    int axis;
    Status st = op_input_ints(g, n, 1, &sp, d);
    if (st)
        return st;
    if (node_input(n, 1) && !sp.known)
        return diag_node(d, n, ST_UNSUPPORTED, "input 1 'split' is not constant");
    if (x->shape.rank < 0)
        return diag_node(d, n, ST_SHAPE, "input 0 '%s' has unknown rank", x->name);
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->shape.rank, &axis, d)))
        return st;
    int64_t len = x->shape.dim[axis];
    if (len < 0)
        return diag_node(d, n, ST_SHAPE, "input 0 '%s': dim %d is not static", x->name, axis);
    bool scalar = sp.known && node_input(n, 1)->init->shape.rank == 0;
    int64_t count = !sp.known ? len : scalar ? (sp.v[0] > 0 ? (len + sp.v[0] - 1) / sp.v[0] : -1) : (int64_t)sp.n;
    if (count < 0 || count > 1000000)
        return diag_node(d, n, ST_SHAPE, "split %lld is not a positive size", (long long)(sp.known ? sp.v[0] : 0));
    int64_t total = 0;
    for (size_t k = 0; sp.known && !scalar && k < sp.n; k++) {
        if (sp.v[k] < 0)
            return diag_node(d, n, ST_SHAPE, "split[%zu] = %lld is negative", k, (long long)sp.v[k]);
        total += sp.v[k];
    }
    if (sp.known && !scalar && total != len)
        return diag_node(d, n, ST_SHAPE, "the splits add up to %lld, not dim %d = %lld", (long long)total, axis,
                         (long long)len);
    if ((st = set_seq(g, n, x->dtype, (int)count, &o, d)))
        return st;
    bool drop = !sp.known && node_attr_int(n, "keepdims", 1) == 0;
    for (int64_t k = 0; k < count; k++) {
        Shape e = x->shape;
        e.dim[axis] = !sp.known ? 1 : scalar ? (k < count - 1 ? sp.v[0] : len - sp.v[0] * (count - 1)) : sp.v[k];
        e.sym[axis] = NULL;
        if (drop) {
            for (int i = axis; i + 1 < e.rank; i++)
                dim_copy(&e, i, &e, i + 1);
            e.rank--;
        }
        o->seq->shapes[k] = e;
    }
    return ST_OK;
}

/* Optional-15: an optional holding the input, or an empty one of attribute `type`. */
static Status optional_shape(Graph *g, Node *n, Diag *d)
{
    (void)g, (void)d;
    const Value *x = node_input(n, 0);
    Value *o = n->outputs[0];
    if (x) {
        value_copy_type(o, x);
        o->opt_kind = x->kind;
        o->kind = VK_OPTIONAL;
        o->opt = OPT_SOME;
        if (x->kind == VK_OPTIONAL)
            return diag_node(d, n, ST_SHAPE, "input 0 '%s' is already an optional", x->name);
        return ST_OK;
    }
    const Attr *a = node_attr(n, "type");
    if (!a)
        return diag_node(d, n, ST_INVALID, "attribute type is required without an input");
    o->kind = VK_OPTIONAL;
    o->opt = OPT_NONE;
    o->opt_kind = VK_TENSOR;
    o->dtype = a->type == AT_TYPE_PROTO ? (DType)a->i : DT_UNDEFINED;
    o->shape = shape_unknown();
    o->seq = NULL;
    return ST_OK;
}

/* OptionalHasElement-18 (15 took an optional only): false for an empty optional or a missing input. */
static Status optional_has_shape(Graph *g, Node *n, Diag *d)
{
    const Value *x = node_input(n, 0);
    Tensor *t;
    bool has = x && (x->kind != VK_OPTIONAL || x->opt == OPT_SOME);
    Shape sc = shape_scalar();
    op_set_output(n, 0, DT_BOOL, &sc);
    if (x && x->kind == VK_OPTIONAL && x->opt == OPT_UNKNOWN)
        return ST_OK; /* not known at compile time: no code generator takes it */
    Status st = op_fold_output(g, n, 0, &t, d);
    if (!st)
        tensor_set_i64(t, 0, has);
    return st;
}

/* OptionalGetElement-18: the value an optional holds (a tensor or sequence passes through). */
static Status optional_get_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Value *x = node_input(n, 0);
    Value *o = n->outputs[0];
    if (!x)
        return diag_node(d, n, ST_INVALID, "input 0 is required but missing");
    value_copy_type(o, x);
    if (x->kind != VK_OPTIONAL)
        return ST_OK;
    if (x->opt == OPT_NONE)
        return diag_node(d, n, ST_INVALID, "input 0 '%s' is an empty optional", x->name);
    o->kind = x->opt_kind; /* OPT_UNKNOWN too: then codegen refuses the optional's type */
    o->opt = OPT_UNKNOWN;
    return ST_OK;
}

/* SequenceMap-17: the body once per element, unrolled here (the length is known): for element k, each
 * sequence input's SequenceAt(k) and the tensor inputs feed a copy of the body's nodes, placed right
 * after this node so the shape pass infers them next; output m is SequenceConstruct of the copies'
 * outputs m. Bodies with subgraphs of their own are refused. */
static Status seq_map_shape(Graph *g, Node *n, Diag *d)
{
    const SeqType *s = NULL;
    const Attr *a = node_attr(n, "body");
    Graph *body = a && a->type == AT_GRAPH ? a->g : NULL;
    Status st = seq_input(n, 0, &s, d);
    if (st)
        return st;
    if (!s) { /* not unrolled: outputs of unknown type */
        for (int m = 0; m < n->noutputs; m++) {
            n->outputs[m]->kind = VK_SEQUENCE;
            n->outputs[m]->seq = NULL;
        }
        return ST_OK;
    }
    if (!body)
        return diag_node(d, n, ST_INVALID, "attribute body (a graph) is required");
    if (body->ninputs != (size_t)n->ninputs || body->noutputs != (size_t)n->noutputs)
        return diag_node(d, n, ST_INVALID, "the body has %zu inputs and %zu outputs, the node %d and %d",
                         body->ninputs, body->noutputs, n->ninputs, n->noutputs);
    if (s->n < 1)
        return diag_node(d, n, ST_UNSUPPORTED, "SequenceMap over an empty sequence");
    for (int i = 1; i < n->ninputs; i++) {
        const Value *x = n->inputs[i];
        if (!x)
            return diag_node(d, n, ST_INVALID, "input %d is missing", i);
        if (x->kind == VK_SEQUENCE && (!x->seq || x->seq->n != s->n))
            return diag_node(d, n, ST_SHAPE, "input %d '%s' is not a sequence of %d elements", i, x->name, s->n);
    }
    for (size_t j = 0; j < body->nnodes; j++)
        for (int k = 0; k < body->nodes[j]->nattrs; k++)
            if (body->nodes[j]->attrs[k].type == AT_GRAPH || body->nodes[j]->attrs[k].type == AT_GRAPHS)
                return diag_node(d, n, ST_UNSUPPORTED, "a body with subgraphs (node '%s')", body->nodes[j]->name);
    size_t at = 0, first = g->nnodes;
    while (at < g->nnodes && g->nodes[at] != n)
        at++;
    Value **map = arena_calloc(g->arena, body->nvalues + 1, sizeof *map);
    Value ***outs = arena_calloc(g->arena, (size_t)n->noutputs + 1, sizeof *outs);
    if (!map || !outs || at == g->nnodes)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    for (int m = 0; m < n->noutputs; m++)
        if (!(outs[m] = arena_calloc(g->arena, (size_t)s->n, sizeof **outs)))
            return diag_node(d, n, ST_NOMEM, "out of memory");
    for (int k = 0; k < s->n; k++) {
        memset(map, 0, (body->nvalues + 1) * sizeof *map);
        for (int i = 0; i < n->ninputs; i++) { /* the body's inputs: element k, or the tensor */
            Value *x = n->inputs[i], *e = x;
            if (x->kind == VK_SEQUENCE) {
                Value *pos = graph_const_scalar(g, "position", DT_INT64, k, d);
                Node *at_k = pos ? graph_add_node1(g, "SequenceAt", arena_printf(g->arena, "%s/SequenceAt_%d", n->name, k),
                                                   2, (Value *[]){x, pos}, "element", d)
                                 : NULL;
                if (!at_k)
                    return d->status;
                e = at_k->outputs[0];
            }
            map[body->inputs[i]->id] = e;
        }
        for (size_t j = 0; j < body->nvalues; j++) { /* the body's constants */
            Value *v = body->values[j];
            if (!map[j] && v->init && !v->producer) {
                if (!(map[j] = graph_new_value(g, v->name, d)))
                    return d->status;
                value_copy_type(map[j], v);
                map[j]->init = v->init;
                map[j]->is_initializer = v->is_initializer;
            }
        }
        for (size_t j = 0; j < body->nnodes; j++) {
            const Node *b = body->nodes[j];
            Value *in[64], *out[64];
            if (b->ninputs > 64 || b->noutputs > 64)
                return diag_node(d, n, ST_UNSUPPORTED, "body node '%s' has more than 64 inputs or outputs", b->name);
            for (int i = 0; i < b->ninputs; i++) {
                Value *v = b->inputs[i];
                bool local = v && v->id >= 0 && (size_t)v->id < body->nvalues && body->values[v->id] == v;
                in[i] = local ? map[v->id] : v; /* others: outer-scope values, shared */
            }
            for (int i = 0; i < b->noutputs; i++)
                if (!(out[i] = map[b->outputs[i]->id] = graph_new_value(g, b->outputs[i]->name, d)))
                    return d->status;
            Node *c = graph_add_node(g, b->op_type, b->domain, arena_printf(g->arena, "%s/%d/%s", n->name, k, b->name),
                                     b->ninputs, in, b->noutputs, out, d);
            if (!c)
                return d->status;
            c->opset = b->opset;
            c->phase = n->phase;
            for (int i = 0; i < b->nattrs; i++)
                if (!node_add_attr(g, c, &b->attrs[i]))
                    return diag_node(d, n, ST_NOMEM, "out of memory");
        }
        for (int m = 0; m < n->noutputs; m++) {
            Value *o = body->outputs[m];
            outs[m][k] = o->id >= 0 && (size_t)o->id < body->nvalues && body->values[o->id] == o && map[o->id]
                             ? map[o->id] : o;
        }
    }
    for (int m = 0; m < n->noutputs; m++)
        if (!graph_add_node(g, "SequenceConstruct", "", arena_printf(g->arena, "%s/SequenceConstruct_%d", n->name, m),
                            s->n, outs[m], 1, &n->outputs[m], d))
            return d->status;
    /* the new nodes go right after n, in the order made */
    size_t added = g->nnodes - first;
    Node **moved = arena_calloc(g->arena, added + 1, sizeof *moved);
    if (!moved)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    memcpy(moved, g->nodes + first, added * sizeof *moved);
    memmove(g->nodes + at + 1 + added, g->nodes + at + 1, (first - at - 1) * sizeof *g->nodes);
    memcpy(g->nodes + at + 1, moved, added * sizeof *moved);
    for (size_t j = at; j < g->nnodes; j++)
        g->nodes[j]->index = (int)j;
    n->dead = true;
    return ST_OK;
}

const OpRule seq_rules[] = {
    {"SequenceEmpty", "", "seq", 11, NULL, seq_empty_shape, NULL, no_flops, NULL, ARITY(0, 0, 1, 1),
     .defaults = {{"dtype", AT_INT, DT_FLOAT}}},
    {"SequenceConstruct", "", "seq", 11, NULL, seq_construct_shape, NULL, no_flops, NULL, ARITY(1, -1, 1, 1),
     DTYPES(IN_SAME(0, ALL_INPUTS))},
    {"SequenceInsert", "", "seq", 11, NULL, seq_insert_shape, NULL, no_flops, NULL, ARITY(2, 3, 1, 1),
     DTYPES(IN_CLASS(2, TC_INT))},
    {"SequenceErase", "", "seq", 11, NULL, seq_erase_shape, NULL, no_flops, NULL, ARITY(1, 2, 1, 1),
     DTYPES(IN_CLASS(1, TC_INT))},
    {"SequenceAt", "", "seq", 11, NULL, seq_at_shape, NULL, no_flops, NULL, ARITY(2, 2, 1, 1),
     DTYPES(IN_CLASS(1, TC_INT))},
    {"SequenceLength", "", "seq", 11, NULL, seq_length_shape, NULL, no_flops, NULL, ARITY(1, 1, 1, 1)},
    {"ConcatFromSequence", "", "seq", 11, NULL, concat_from_seq_shape, NULL, no_flops, NULL, ARITY(1, 1, 1, 1),
     .defaults = {{"new_axis", AT_INT, 0}}},
    {"SplitToSequence", "", "seq", 11, NULL, split_to_seq_shape, NULL, no_flops, NULL, ARITY(1, 2, 1, 1),
     REQUIRED(1), DTYPES(IN_CLASS(1, TC_INT)), .defaults = {{"axis", AT_INT, 0}, {"keepdims", AT_INT, 1}}},
    {"SequenceMap", "", "seq", 17, NULL, seq_map_shape, NULL, no_flops, NULL, ARITY(1, -1, 1, -1)},
    {"Optional", "", "seq", 15, NULL, optional_shape, NULL, no_flops, NULL, ARITY(0, 1, 1, 1)},
    {"OptionalHasElement", "", "seq", 18, NULL, optional_has_shape, NULL, no_flops, NULL, ARITY(0, 1, 1, 1)},
    {"OptionalGetElement", "", "seq", 18, NULL, optional_get_shape, NULL, no_flops, NULL, ARITY(1, 1, 1, 1)},
    {0},
};
