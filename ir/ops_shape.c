/* ops_shape.c - rules of the shape family: ops that create, reshape, select or move data without
 * arithmetic (Constant, Shape, Reshape, Slice, Gather, Concat, Pad, Resize, ...). Folding here is what
 * collapses PyTorch's Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains once shapes are static.
 * It does not fold the scatter/gather-by-index ops or Pad/Resize: those rarely see constant data. */
#include "ir.h"

#include <math.h>
#include <string.h>

/* ---- small helpers ---- */

static const Shape *in_shape(const Node *n, int i)
{
    static const Shape unknown = {.rank = -1};
    const Value *v = node_input(n, i);
    return v ? &v->shape : &unknown;
}

static DType in_dtype(const Node *n, int i)
{
    const Value *v = node_input(n, i);
    return v ? v->dtype : DT_UNDEFINED;
}

/* Dims beyond this are taken as corrupt input rather than computed with (keeps sums overflow-free). */
#define DIM_LIMIT ((int64_t)1 << 50)

static bool shape_absurd(const Shape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] > DIM_LIMIT)
            return true;
    return false;
}

static Status check_rank(const Node *n, int64_t rank, Diag *d)
{
    if (rank < 0 || rank > IR_MAX_RANK)
        return diag_node(d, n, ST_UNSUPPORTED, "output rank %lld is beyond the IR's limit of %d",
                         (long long)rank, IR_MAX_RANK);
    return ST_OK;
}

/* Copy `count` elements src[si..] -> dst[di..]; strings copy their pointers and lengths. */
static void copy_elems(Tensor *dst, size_t di, const Tensor *src, size_t si, size_t count)
{
    size_t es = dtype_size(src->dtype);
    if (count == 0)
        return;
    memcpy((char *)dst->data + di * es, (const char *)src->data + si * es, count * es);
    if (src->dtype == DT_STRING && dst->str_len && src->str_len)
        memcpy(dst->str_len + di, src->str_len + si, count * sizeof(size_t));
}

/* Row-major strides of a static shape, in elements. */
static void strides_of(const Shape *s, size_t *st)
{
    size_t acc = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        st[i] = acc;
        acc *= (size_t)s->dim[i];
    }
}

/* Product of dims [from, to) of a static-in-that-range shape; -1 if one is unknown, -2 on overflow. */
static int64_t dims_prod(const Shape *s, int from, int to)
{
    size_t p = 1;
    for (int i = from; i < to; i++) {
        if (s->dim[i] < 0)
            return -1;
        if (!size_mul(p, (size_t)s->dim[i], &p) || p > (size_t)INT64_MAX)
            return -2;
    }
    return (int64_t)p;
}

/* Read a constant float/int input as doubles (scales, roi, Range bounds); false when not constant. */
static bool const_f64s(Graph *g, const Node *n, int i, double **out, size_t *count)
{
    const Value *v = node_input(n, i);
    if (!v || !value_is_const(v) || v->init->dtype == DT_STRING)
        return false;
    double *p = arena_calloc(g->arena, v->init->numel ? v->init->numel : 1, sizeof *p);
    if (!p)
        return false;
    for (size_t k = 0; k < v->init->numel; k++)
        p[k] = tensor_get_f64(v->init, k);
    *out = p;
    *count = v->init->numel;
    return true;
}

/* Canon: move an AT_INTS attribute into constant input `slot` (the opset that made it an input). */
static Status attr_to_input(Graph *g, Node *n, const char *attr, int slot, Diag *d)
{
    const Attr *a = node_attr(n, attr);
    if (!a)
        return ST_OK;
    if (a->type != AT_INTS && a->type != AT_INT)
        return diag_node(d, n, ST_INVALID, "attribute %s must be a list of ints", attr);
    if (node_input(n, slot))
        return diag_node(d, n, ST_INVALID, "has both attribute %s and input %d", attr, slot);
    IntList l;
    if (!op_attr_ints(n, attr, &l))
        return diag_node(d, n, ST_INVALID, "attribute %s must be a list of ints", attr);
    char *hint = arena_printf(g->arena, "%s_%s", n->name, attr);
    Value *c = hint ? graph_const_ints(g, hint, l.v, l.n, d) : NULL;
    if (!c)
        return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    Status st = node_set_input(g, n, slot, c, d);
    if (st)
        return st;
    node_remove_attr(n, attr);
    return ST_OK;
}

static Status set_attr_string(Graph *g, Node *n, const char *name, const char *s, Diag *d)
{
    node_remove_attr(n, name);
    Attr a = {.name = name, .type = AT_STRING, .s = s, .slen = strlen(s)};
    if (!node_add_attr(g, n, &a))
        return diag_node(d, n, ST_NOMEM, "out of memory setting attribute %s", name);
    return ST_OK;
}

static double no_flops(const Node *n)
{
    (void)n;
    return 0;
}

static double out0_numel(const Node *n)
{
    return n->noutputs > 0 ? shape_numel_or0(&n->outputs[0]->shape) : 0;
}

/* Fold rule of ops whose output is the input's data in the same order (Reshape, Flatten, Squeeze...). */
static Status fold_copy(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *x = n->inputs[0]->init;
    if (x->numel != t->numel || x->dtype != t->dtype)
        return diag_node(d, n, ST_ERR, "internal: folding %zu elements into %zu", x->numel, t->numel);
    copy_elems(t, 0, x, 0, x->numel);
    return ST_OK;
}

/* ---- Constant (1, 9, 11, 12, 13): the tensor of whichever value* attribute it has ---- */

static Status constant_tensor(Graph *g, Node *n, Tensor **out, Diag *d)
{
    static const char *const names[] = {"value", "sparse_value", "value_float", "value_floats",
                                        "value_int", "value_ints", "value_string", "value_strings"};
    const Attr *a = NULL;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const Attr *x = node_attr(n, names[k]);
        if (x && a)
            return diag_node(d, n, ST_INVALID, "has both attributes %s and %s (exactly one is allowed)",
                             a->name, x->name);
        if (x)
            a = x;
    }
    if (!a)
        return diag_node(d, n, ST_INVALID, "has no value attribute");
    Tensor *t = NULL;
    int64_t len = (int64_t)a->n;
    Shape s1 = shape_make(1, &len), s0 = shape_scalar();
    switch (a->type) {
    case AT_TENSOR:
        if (!a->t)
            return diag_node(d, n, ST_INVALID, "attribute %s holds no tensor", a->name);
        *out = a->t;
        return ST_OK;
    case AT_FLOAT:
        if ((t = tensor_new(g->arena, DT_FLOAT, &s0)))
            ((float *)t->data)[0] = a->f;
        break;
    case AT_FLOATS:
        if ((t = tensor_new(g->arena, DT_FLOAT, &s1)) && a->n)
            memcpy(t->data, a->floats, a->n * sizeof(float));
        break;
    case AT_INT:
        if ((t = tensor_new(g->arena, DT_INT64, &s0)))
            ((int64_t *)t->data)[0] = a->i;
        break;
    case AT_INTS:
        if ((t = tensor_new(g->arena, DT_INT64, &s1)) && a->n)
            memcpy(t->data, a->ints, a->n * sizeof(int64_t));
        break;
    case AT_STRING:
        if ((t = tensor_new(g->arena, DT_STRING, &s0))) {
            ((const char **)t->data)[0] = a->s ? a->s : "";
            t->str_len[0] = a->s ? a->slen : 0;
        }
        break;
    case AT_STRINGS:
        if ((t = tensor_new(g->arena, DT_STRING, &s1)))
            for (size_t k = 0; k < a->n; k++) {
                ((const char **)t->data)[k] = a->strings[k] ? a->strings[k] : "";
                t->str_len[k] = a->strings[k] ? strlen(a->strings[k]) : 0;
            }
        break;
    default:
        return diag_node(d, n, ST_UNSUPPORTED, "attribute %s of type %d is not supported (sparse tensors "
                         "must be densified by the importer)", a->name, (int)a->type);
    }
    if (!t)
        return diag_node(d, n, ST_NOMEM, "out of memory making its tensor");
    *out = t;
    return ST_OK;
}

/* Constant's output is data whatever the walk folds, so the shape rule sets init too. */
static Status constant_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    Tensor *t;
    if ((st = constant_tensor(g, n, &t, d)))
        return st;
    op_set_output(n, 0, t->dtype, &t->shape);
    n->outputs[0]->init = t;
    return ST_OK;
}

static Status constant_fold(Graph *g, Node *n, Diag *d)
{
    return n->outputs[0]->init ? ST_OK : constant_shape(g, n, d);
}

/* ---- ConstantOfShape (9): input 0 = shape [k] int64, attribute value = one element ---- */

static Status constant_of_shape_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Attr *a = node_attr(n, "value");
    DType t = DT_FLOAT;
    if (a) {
        if (a->type != AT_TENSOR || !a->t || a->t->numel != 1)
            return diag_node(d, n, ST_INVALID, "attribute value must be a one-element tensor");
        t = a->t->dtype;
    }
    IntList l;
    if ((st = op_input_ints(g, n, 0, &l, d)))
        return st;
    const Shape *s = in_shape(n, 0);
    if (!l.known) {
        Shape out = shape_unknown();
        if (s->rank == 1 && s->dim[0] >= 0) {
            if ((st = check_rank(n, s->dim[0], d)))
                return st;
            out = shape_make((int)s->dim[0], NULL);
        }
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    if ((st = check_rank(n, (int64_t)l.n, d)))
        return st;
    Shape out = shape_make((int)l.n, l.v);
    for (size_t k = 0; k < l.n; k++)
        if (l.v[k] < 0)
            return diag_node(d, n, ST_SHAPE, "input 0 (shape) has a negative dim %lld at %zu",
                             (long long)l.v[k], k);
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status constant_of_shape_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Attr *a = node_attr(n, "value");
    if (!a)
        return ST_OK; /* zeros of float */
    for (size_t i = 0; i < t->numel; i++)
        copy_elems(t, i, a->t, 0, 1);
    return ST_OK;
}

/* ---- Shape (1, 13, 15 start/end) and Size (1, 13) ----
 * Both depend on the input's shape only, so their shape rules set the output's data as soon as the
 * dims they read are known, even though the input itself is not constant. */

static void shape_range(const Node *n, int rank, int *start, int *end)
{
    int64_t s = node_attr_int(n, "start", 0), e = node_attr_int(n, "end", rank);
    if (s < 0)
        s += rank;
    if (e < 0)
        e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    *start = (int)s;
    *end = (int)(e < s ? s : e);
}

static Status shape_shape(Graph *g, Node *n, Diag *d)
{
    const Shape *s = in_shape(n, 0);
    Value *o = n->outputs[0];
    o->init = NULL;
    if (s->rank < 0) {
        Shape out = shape_make(1, NULL);
        op_set_output(n, 0, DT_INT64, &out);
        return ST_OK;
    }
    int start, end;
    shape_range(n, s->rank, &start, &end);
    int64_t len = end - start;
    Shape out = shape_make(1, &len);
    op_set_output(n, 0, DT_INT64, &out);
    for (int i = start; i < end; i++)
        if (s->dim[i] < 0)
            return ST_OK;
    Tensor *t = tensor_new(g->arena, DT_INT64, &out);
    if (!t)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    for (int i = start; i < end; i++)
        ((int64_t *)t->data)[i - start] = s->dim[i];
    o->init = t;
    return ST_OK;
}

static Status size_shape(Graph *g, Node *n, Diag *d)
{
    Shape out = shape_scalar();
    op_set_output(n, 0, DT_INT64, &out);
    Value *o = n->outputs[0];
    o->init = NULL;
    size_t numel;
    if (!shape_numel(in_shape(n, 0), &numel) || numel > (size_t)INT64_MAX)
        return ST_OK;
    Tensor *t = tensor_new(g->arena, DT_INT64, &out);
    if (!t)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    ((int64_t *)t->data)[0] = (int64_t)numel;
    o->init = t;
    return ST_OK;
}

/* The shape rule already stored the data (the input being constant means its shape is static). */
static Status shape_fold(Graph *g, Node *n, Diag *d)
{
    (void)g;
    if (!n->outputs[0]->init)
        return diag_node(d, n, ST_ERR, "internal: constant input of unknown shape");
    return ST_OK;
}

/* ---- Reshape (1 shape attribute; 5 shape input; 14 allowzero) ---- */

/* Reshape-1 (and its consumed_inputs) -> Reshape-5: attribute shape becomes input 1. */
static Status reshape_canon(Graph *g, Node *n, Diag *d)
{
    if (n->opset >= 5)
        return ST_OK;
    node_remove_attr(n, "consumed_inputs");
    return attr_to_input(g, n, "shape", 1, d);
}

static Status reshape_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    IntList l;
    if ((st = op_input_ints(g, n, 1, &l, d)))
        return st;
    if (!l.known) {
        const Shape *ss = in_shape(n, 1);
        Shape out = shape_unknown();
        if (ss->rank == 1 && ss->dim[0] >= 0) {
            if ((st = check_rank(n, ss->dim[0], d)))
                return st;
            out = shape_make((int)ss->dim[0], NULL);
        }
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    if ((st = check_rank(n, (int64_t)l.n, d)))
        return st;
    bool allowzero = node_attr_int(n, "allowzero", 0) != 0;
    int r = (int)l.n, infer = -1;
    bool copied[IR_MAX_RANK] = {false};
    Shape out = shape_make(r, NULL);
    char a[160], b[160];
    for (int i = 0; i < r; i++) {
        int64_t v = l.v[i];
        if (v == 0 && !allowzero) {
            if (x->rank >= 0 && i >= x->rank)
                return diag_node(d, n, ST_SHAPE, "input 1 (shape) copies dim %d (a 0) but input 0 has shape %s",
                                 i, shape_str(x, a, sizeof a));
            if (x->rank >= 0)
                dim_copy(&out, i, x, i);
            copied[i] = true;
        } else if (v == -1) {
            if (infer >= 0)
                return diag_node(d, n, ST_SHAPE, "input 1 (shape) has more than one -1");
            infer = i;
        } else if (v < 0) {
            return diag_node(d, n, ST_SHAPE, "input 1 (shape) has an invalid dim %lld at %d", (long long)v, i);
        } else {
            out.dim[i] = v;
        }
    }
    if (allowzero && infer >= 0)
        for (int i = 0; i < r; i++)
            if (l.v[i] == 0)
                return diag_node(d, n, ST_SHAPE, "input 1 (shape) has both 0 and -1 with allowzero=1");
    if (x->rank < 0) {
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    /* dims copied by a 0 cancel out; compare the products of the rest */
    size_t pin = 1, pout = 1;
    bool in_known = true;
    for (int i = 0; i < x->rank; i++) {
        if (i < r && copied[i])
            continue;
        if (x->dim[i] < 0)
            in_known = false;
        else if (!size_mul(pin, (size_t)x->dim[i], &pin))
            return diag_node(d, n, ST_SHAPE, "input 0 shape %s has too many elements", shape_str(x, a, sizeof a));
    }
    for (int i = 0; i < r; i++)
        if (i != infer && !copied[i] && !size_mul(pout, (size_t)out.dim[i], &pout))
            return diag_node(d, n, ST_SHAPE, "input 1 (shape) asks for too many elements");
    if (infer >= 0) {
        if (in_known && pout == 0 && pin != 0)
            return diag_node(d, n, ST_SHAPE, "input 1 (shape) %s has a zero dim and a -1: cannot reshape "
                             "input 0 shape %s", shape_str(&out, b, sizeof b), shape_str(x, a, sizeof a));
        if (in_known && pout != 0) {
            if (pin % pout != 0)
                return diag_node(d, n, ST_SHAPE, "cannot reshape input 0 shape %s into %s: %zu elements "
                                 "are not a multiple of %zu", shape_str(x, a, sizeof a),
                                 shape_str(&out, b, sizeof b), pin, pout);
            out.dim[infer] = (int64_t)(pin / pout);
        }
    } else if (in_known && pin != pout) {
        return diag_node(d, n, ST_SHAPE, "cannot reshape input 0 shape %s into input 1 (shape) %s: %zu "
                         "elements vs %zu", shape_str(x, a, sizeof a), shape_str(&out, b, sizeof b), pin, pout);
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ---- Flatten (1, 9, 11 negative axis, 13) ---- */

static Status flatten_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Shape *x = in_shape(n, 0);
    Shape out = shape_make(2, NULL);
    if (x->rank < 0) {
        op_set_output(n, 0, in_dtype(n, 0), &out);
        return ST_OK;
    }
    int64_t axis = node_attr_int(n, "axis", 1);
    if (axis < -(int64_t)x->rank || axis > x->rank)
        return diag_node(d, n, ST_SHAPE, "axis %lld is out of range for input 0 of rank %d", (long long)axis,
                         x->rank);
    int ax = (int)(axis < 0 ? axis + x->rank : axis);
    int64_t p0 = dims_prod(x, 0, ax), p1 = dims_prod(x, ax, x->rank);
    if (p0 == -2 || p1 == -2)
        return diag_node(d, n, ST_SHAPE, "input 0 has too many elements");
    out.dim[0] = p0;
    out.dim[1] = p1;
    if (ax == 1 && x->dim[0] < 0)
        dim_copy(&out, 0, x, 0);
    if (ax == x->rank - 1 && x->dim[ax] < 0)
        dim_copy(&out, 1, x, ax);
    op_set_output(n, 0, in_dtype(n, 0), &out);
    return ST_OK;
}

/* ---- Squeeze / Unsqueeze (1, 11 negative axes: attribute axes; 13: input 1) ---- */

/* Squeeze-1/11 and Unsqueeze-1/11 -> 13: attribute axes becomes input 1. */
static Status axes_canon(Graph *g, Node *n, Diag *d)
{
    return n->opset >= 13 ? ST_OK : attr_to_input(g, n, "axes", 1, d);
}

static Status squeeze_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    IntList axes;
    if ((st = op_input_ints(g, n, 1, &axes, d)))
        return st;
    char a[160];
    if (node_input(n, 1) && !axes.known) {
        const Shape *as = in_shape(n, 1);
        Shape out = shape_unknown();
        if (x->rank >= 0 && as->rank == 1 && as->dim[0] >= 0 && as->dim[0] <= x->rank)
            out = shape_make(x->rank - (int)as->dim[0], NULL);
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    if (x->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    bool drop[IR_MAX_RANK] = {false};
    if (axes.known) {
        for (size_t k = 0; k < axes.n; k++) {
            int ax;
            if ((st = op_axis(n, "axes", axes.v[k], x->rank, &ax, d)))
                return st;
            if (drop[ax])
                return diag_node(d, n, ST_SHAPE, "axes lists axis %d twice", ax);
            if (x->dim[ax] >= 0 && x->dim[ax] != 1)
                return diag_node(d, n, ST_SHAPE, "cannot squeeze axis %d of input 0 shape %s: its size is %lld, "
                                 "not 1", ax, shape_str(x, a, sizeof a), (long long)x->dim[ax]);
            drop[ax] = true;
        }
    } else {
        for (int i = 0; i < x->rank; i++) {
            if (x->dim[i] < 0) { /* might be 1: the output rank is unknown */
                op_set_output(n, 0, t, NULL);
                return ST_OK;
            }
            drop[i] = x->dim[i] == 1;
        }
    }
    Shape out = shape_scalar();
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            dim_copy(&out, out.rank++, x, i);
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status unsqueeze_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    IntList axes;
    if ((st = op_input_ints(g, n, 1, &axes, d)))
        return st;
    if (!axes.known || x->rank < 0) {
        const Shape *as = in_shape(n, 1);
        Shape out = shape_unknown();
        if (x->rank >= 0 && as->rank == 1 && as->dim[0] >= 0) {
            if ((st = check_rank(n, x->rank + as->dim[0], d)))
                return st;
            out = shape_make(x->rank + (int)as->dim[0], NULL);
        }
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    if ((st = check_rank(n, x->rank + (int64_t)axes.n, d)))
        return st;
    int r = x->rank + (int)axes.n;
    bool ins[IR_MAX_RANK] = {false};
    for (size_t k = 0; k < axes.n; k++) {
        int ax;
        if ((st = op_axis(n, "axes", axes.v[k], r, &ax, d)))
            return st;
        if (ins[ax])
            return diag_node(d, n, ST_SHAPE, "axes lists axis %d twice", ax);
        ins[ax] = true;
    }
    Shape out = shape_make(r, NULL);
    for (int i = 0, j = 0; i < r; i++) {
        if (ins[i])
            out.dim[i] = 1;
        else
            dim_copy(&out, i, x, j++);
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ---- Transpose (1, 13) ---- */

static Status transpose_perm(const Node *n, int rank, int *perm, Diag *d)
{
    IntList p;
    if (!op_attr_ints(n, "perm", &p)) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return ST_OK;
    }
    if (p.n != (size_t)rank)
        return diag_node(d, n, ST_SHAPE, "perm has %zu entries but input 0 has rank %d", p.n, rank);
    bool seen[IR_MAX_RANK] = {false};
    for (int i = 0; i < rank; i++) {
        if (p.v[i] < 0 || p.v[i] >= rank || seen[p.v[i]])
            return diag_node(d, n, ST_SHAPE, "perm is not a permutation of 0..%d (entry %d is %lld)", rank - 1,
                             i, (long long)p.v[i]);
        seen[p.v[i]] = true;
        perm[i] = (int)p.v[i];
    }
    return ST_OK;
}

static Status transpose_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0);
    if (x->rank < 0) {
        op_set_output(n, 0, in_dtype(n, 0), NULL);
        return ST_OK;
    }
    int perm[IR_MAX_RANK];
    if ((st = transpose_perm(n, x->rank, perm, d)))
        return st;
    Shape out = shape_make(x->rank, NULL);
    for (int i = 0; i < x->rank; i++)
        dim_copy(&out, i, x, perm[i]);
    op_set_output(n, 0, in_dtype(n, 0), &out);
    return ST_OK;
}

static Status transpose_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *x = n->inputs[0]->init;
    int r = x->shape.rank, perm[IR_MAX_RANK];
    if ((st = transpose_perm(n, r, perm, d)))
        return st;
    size_t xs[IR_MAX_RANK];
    strides_of(&x->shape, xs);
    for (size_t i = 0; i < t->numel; i++) {
        size_t rem = i, off = 0;
        for (int k = r - 1; k >= 0; k--) {
            size_t idx = rem % (size_t)t->shape.dim[k];
            rem /= (size_t)t->shape.dim[k];
            off += idx * xs[perm[k]];
        }
        copy_elems(t, i, x, off, 1);
    }
    return ST_OK;
}

/* ---- Concat (1 axis defaults to 1; 4 axis required; 11 negative axis; 13) ---- */

static Status concat_canon(Graph *g, Node *n, Diag *d)
{
    if (n->opset >= 4 || node_attr(n, "axis"))
        return ST_OK;
    return node_set_attr_int(g, n, "axis", 1, d);
}

static Status concat_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    if (!node_attr(n, "axis"))
        return diag_node(d, n, ST_INVALID, "attribute axis is required");
    int64_t axis = node_attr_int(n, "axis", 0);
    int ref = -1;
    bool any_unknown = false;
    for (int i = 0; i < n->ninputs; i++) {
        if ((st = op_same_dtype(n, 0, i, d)))
            return st;
        const Shape *s = in_shape(n, i);
        if (s->rank < 0)
            any_unknown = true;
        else if (ref < 0)
            ref = i;
    }
    DType t = DT_UNDEFINED;
    for (int i = 0; i < n->ninputs && t == DT_UNDEFINED; i++)
        t = in_dtype(n, i);
    if (ref < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    const Shape *r0 = in_shape(n, ref);
    int ax;
    if ((st = op_axis(n, "axis", axis, r0->rank, &ax, d)))
        return st;
    Shape out = *r0;
    bool sum_known = !any_unknown;
    int64_t sum = 0;
    char a[160], b[160];
    for (int i = 0; i < n->ninputs; i++) {
        const Shape *s = in_shape(n, i);
        if (s->rank < 0)
            continue;
        if (s->rank != r0->rank)
            return diag_node(d, n, ST_SHAPE, "input %d has shape %s but input %d has shape %s (ranks differ)", i,
                             shape_str(s, a, sizeof a), ref, shape_str(r0, b, sizeof b));
        for (int k = 0; k < s->rank; k++) {
            if (k == ax)
                continue;
            if (dim_conflict(s, k, &out, k))
                return diag_node(d, n, ST_SHAPE, "input %d has shape %s but input %d has shape %s: dim %d differs "
                                 "off the concat axis %d", i, shape_str(s, a, sizeof a), ref,
                                 shape_str(r0, b, sizeof b), k, ax);
            dim_merge(&out, k, s, k);
        }
        if (s->dim[ax] < 0)
            sum_known = false;
        else if (sum > INT64_MAX - s->dim[ax])
            return diag_node(d, n, ST_SHAPE, "the concatenated dim overflows");
        else
            sum += s->dim[ax];
    }
    out.dim[ax] = sum_known ? sum : -1;
    out.sym[ax] = NULL;
    if (!sum_known && n->ninputs == 1)
        dim_copy(&out, ax, r0, ax);
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status concat_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    int ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), t->shape.rank, &ax, d)))
        return st;
    size_t outer = (size_t)dims_prod(&t->shape, 0, ax), inner = (size_t)dims_prod(&t->shape, ax + 1, t->shape.rank);
    size_t pos = 0;
    for (size_t o = 0; o < outer; o++)
        for (int i = 0; i < n->ninputs; i++) {
            const Tensor *x = n->inputs[i]->init;
            size_t chunk = (size_t)x->shape.dim[ax] * inner;
            copy_elems(t, pos, x, o * chunk, chunk);
            pos += chunk;
        }
    return ST_OK;
}

/* ---- Split (1 split attribute or input 1; 2 attribute; 11 negative axis; 13 input 1) ---- */

static Status split_canon(Graph *g, Node *n, Diag *d)
{
    return n->opset >= 13 ? ST_OK : attr_to_input(g, n, "split", 1, d);
}

/* Sizes of the outputs along the axis (-1 unknown), or ST_SHAPE. */
static Status split_sizes(Graph *g, Node *n, const Shape *x, int ax, int64_t *sizes, Diag *d)
{
    IntList sp;
    Status st = op_input_ints(g, n, 1, &sp, d);
    if (st)
        return st;
    char a[160];
    int64_t dim = x->dim[ax];
    if (sp.known) {
        if (sp.n != (size_t)n->noutputs)
            return diag_node(d, n, ST_SHAPE, "input 1 (split) has %zu sizes for %d outputs", sp.n, n->noutputs);
        int64_t sum = 0;
        for (int i = 0; i < n->noutputs; i++) {
            if (sp.v[i] < 0 || sum > INT64_MAX - sp.v[i])
                return diag_node(d, n, ST_SHAPE, "input 1 (split) has an invalid size %lld", (long long)sp.v[i]);
            sum += sp.v[i];
            sizes[i] = sp.v[i];
        }
        if (dim >= 0 && sum != dim)
            return diag_node(d, n, ST_SHAPE, "input 1 (split) sizes add up to %lld but axis %d of input 0 shape %s "
                             "is %lld", (long long)sum, ax, shape_str(x, a, sizeof a), (long long)dim);
        return ST_OK;
    }
    bool given = node_input(n, 1) != NULL;
    for (int i = 0; i < n->noutputs; i++)
        sizes[i] = -1;
    if (given || dim < 0)
        return ST_OK;
    if (dim % n->noutputs != 0)
        return diag_node(d, n, ST_SHAPE, "axis %d of input 0 shape %s (size %lld) does not split into %d equal "
                         "parts", ax, shape_str(x, a, sizeof a), (long long)dim, n->noutputs);
    for (int i = 0; i < n->noutputs; i++)
        sizes[i] = dim / n->noutputs;
    return ST_OK;
}

static Status split_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    if (x->rank < 0) {
        for (int i = 0; i < n->noutputs; i++)
            op_set_output(n, i, t, NULL);
        return ST_OK;
    }
    int ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->rank, &ax, d)))
        return st;
    int64_t *sizes = arena_calloc(g->arena, (size_t)n->noutputs, sizeof *sizes);
    if (!sizes)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    if ((st = split_sizes(g, n, x, ax, sizes, d)))
        return st;
    for (int i = 0; i < n->noutputs; i++) {
        Shape out = *x;
        out.dim[ax] = sizes[i];
        out.sym[ax] = NULL;
        if (n->noutputs == 1)
            dim_copy(&out, ax, x, ax);
        op_set_output(n, i, t, &out);
    }
    return ST_OK;
}

static Status split_fold(Graph *g, Node *n, Diag *d)
{
    const Tensor *x = n->inputs[0]->init;
    int ax;
    Status st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->shape.rank, &ax, d);
    if (st)
        return st;
    size_t outer = (size_t)dims_prod(&x->shape, 0, ax), inner = (size_t)dims_prod(&x->shape, ax + 1, x->shape.rank);
    size_t xchunk = (size_t)x->shape.dim[ax] * inner, off = 0;
    for (int i = 0; i < n->noutputs; i++) {
        Tensor *t;
        if ((st = op_fold_output(g, n, i, &t, d)))
            return st;
        size_t chunk = (size_t)t->shape.dim[ax] * inner;
        for (size_t o = 0; o < outer; o++)
            copy_elems(t, o * chunk, x, o * xchunk + off, chunk);
        off += chunk;
    }
    return ST_OK;
}

/* ---- Slice (1 attributes starts/ends/axes; 10 inputs + steps; 11 negative; 13) ---- */

static Status slice_canon(Graph *g, Node *n, Diag *d)
{
    if (n->opset >= 10)
        return ST_OK;
    Status st = attr_to_input(g, n, "starts", 1, d);
    if (!st)
        st = attr_to_input(g, n, "ends", 2, d);
    if (!st)
        st = attr_to_input(g, n, "axes", 3, d);
    return st;
}

typedef struct SliceAxis {
    int64_t start, step, count;
} SliceAxis;

/* Clamp start/end of one axis of size dim as ONNX Slice-13 does; count of selected elements. */
static SliceAxis slice_axis(int64_t start, int64_t end, int64_t step, int64_t dim)
{
    SliceAxis s = {0, step, 0};
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        s.count = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        int64_t neg = step == INT64_MIN ? INT64_MAX : -step;
        s.count = start > end ? (start - end - 1) / neg + 1 : 0;
    }
    s.start = start;
    return s;
}

/* Per input axis: sliced or not, and its start/end/step. known false when inputs are not constant. */
typedef struct SliceSpec {
    bool known, axes_known;
    bool sliced[IR_MAX_RANK];
    int64_t start[IR_MAX_RANK], end[IR_MAX_RANK], step[IR_MAX_RANK];
} SliceSpec;

static Status slice_spec(Graph *g, Node *n, int rank, SliceSpec *sp, Diag *d)
{
    memset(sp, 0, sizeof *sp);
    IntList st_, en, ax, stp;
    Status st = op_input_ints(g, n, 1, &st_, d);
    if (!st)
        st = op_input_ints(g, n, 2, &en, d);
    if (!st)
        st = op_input_ints(g, n, 3, &ax, d);
    if (!st)
        st = op_input_ints(g, n, 4, &stp, d);
    if (st)
        return st;
    sp->axes_known = !node_input(n, 3) || ax.known;
    size_t k = st_.known ? st_.n : en.known ? en.n : ax.known ? ax.n : 0;
    if (st_.known && en.known && st_.n != en.n)
        return diag_node(d, n, ST_SHAPE, "input 1 (starts) has %zu entries but input 2 (ends) has %zu", st_.n, en.n);
    if (ax.known && (st_.known || en.known) && ax.n != k)
        return diag_node(d, n, ST_SHAPE, "input 3 (axes) has %zu entries but starts/ends have %zu", ax.n, k);
    if (stp.known && (st_.known || en.known) && stp.n != k)
        return diag_node(d, n, ST_SHAPE, "input 4 (steps) has %zu entries but starts/ends have %zu", stp.n, k);
    if (!sp->axes_known)
        return ST_OK;
    if (!ax.known && !(st_.known || en.known))
        return ST_OK; /* which axes is unknown: only the rank is */
    for (size_t i = 0; i < k; i++) {
        int a = (int)i;
        if (ax.known && (st = op_axis(n, "axes", ax.v[i], rank, &a, d)))
            return st;
        if (!ax.known && i >= (size_t)rank)
            return diag_node(d, n, ST_SHAPE, "slices %zu axes of a rank %d input", k, rank);
        if (sp->sliced[a])
            return diag_node(d, n, ST_SHAPE, "input 3 (axes) lists axis %d twice", a);
        sp->sliced[a] = true;
        sp->step[a] = stp.known ? stp.v[i] : 1;
        if (sp->step[a] == 0)
            return diag_node(d, n, ST_SHAPE, "input 4 (steps) has a zero step for axis %d", a);
        sp->start[a] = st_.known ? st_.v[i] : 0;
        sp->end[a] = en.known ? en.v[i] : 0;
    }
    sp->known = st_.known && en.known && (!node_input(n, 4) || stp.known);
    return ST_OK;
}

static Status slice_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    if (x->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    SliceSpec sp;
    if ((st = slice_spec(g, n, x->rank, &sp, d)))
        return st;
    Shape out = *x;
    bool any = false;
    for (int i = 0; i < x->rank; i++)
        any |= sp.sliced[i];
    for (int i = 0; i < x->rank; i++) {
        if (!sp.axes_known || (!any && !sp.known)) {
            out.dim[i] = -1, out.sym[i] = NULL;
            continue;
        }
        if (!sp.sliced[i])
            continue;
        out.dim[i] = -1, out.sym[i] = NULL;
        if (!sp.known)
            continue;
        if (x->dim[i] >= 0)
            out.dim[i] = slice_axis(sp.start[i], sp.end[i], sp.step[i], x->dim[i]).count;
        else if (sp.start[i] == 0 && sp.step[i] == 1 && sp.end[i] >= INT32_MAX)
            dim_copy(&out, i, x, i); /* x[0:INT_MAX]: everything */
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status slice_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *x = n->inputs[0]->init;
    int r = x->shape.rank;
    SliceSpec sp;
    if ((st = slice_spec(g, n, r, &sp, d)))
        return st;
    SliceAxis ax[IR_MAX_RANK];
    for (int i = 0; i < r; i++)
        ax[i] = sp.sliced[i] ? slice_axis(sp.start[i], sp.end[i], sp.step[i], x->shape.dim[i])
                             : (SliceAxis){0, 1, x->shape.dim[i]};
    size_t xs[IR_MAX_RANK];
    strides_of(&x->shape, xs);
    for (size_t i = 0; i < t->numel; i++) {
        size_t rem = i;
        int64_t off = 0;
        for (int k = r - 1; k >= 0; k--) {
            int64_t idx = (int64_t)(rem % (size_t)t->shape.dim[k]);
            rem /= (size_t)t->shape.dim[k];
            off += (ax[k].start + idx * ax[k].step) * (int64_t)xs[k];
        }
        copy_elems(t, i, x, (size_t)off, 1);
    }
    return ST_OK;
}

/* ---- Gather (1, 11 negative indices, 13) ---- */

static Status gather_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0), *ix = in_shape(n, 1);
    DType it = in_dtype(n, 1), t = in_dtype(n, 0);
    if (it != DT_UNDEFINED && it != DT_INT64 && it != DT_INT32)
        return diag_node(d, n, ST_SHAPE, "input 1 (indices) is %s, not int32 or int64", dtype_name(it));
    if (x->rank < 0 || ix->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    if (x->rank == 0)
        return diag_node(d, n, ST_SHAPE, "input 0 must have rank >= 1, not a scalar");
    int ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->rank, &ax, d)))
        return st;
    if ((st = check_rank(n, x->rank + ix->rank - 1, d)))
        return st;
    Shape out = shape_make(x->rank + ix->rank - 1, NULL);
    int k = 0;
    for (int i = 0; i < ax; i++)
        dim_copy(&out, k++, x, i);
    for (int i = 0; i < ix->rank; i++)
        dim_copy(&out, k++, ix, i);
    for (int i = ax + 1; i < x->rank; i++)
        dim_copy(&out, k++, x, i);
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status gather_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *x = n->inputs[0]->init, *ix = n->inputs[1]->init;
    int ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->shape.rank, &ax, d)))
        return st;
    int64_t dim = x->shape.dim[ax];
    size_t outer = (size_t)dims_prod(&x->shape, 0, ax), inner = (size_t)dims_prod(&x->shape, ax + 1, x->shape.rank);
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < ix->numel; j++) {
            int64_t k = tensor_get_i64(ix, j);
            if (k < -dim || k >= dim)
                return diag_node(d, n, ST_SHAPE, "input 1 (indices) entry %zu is %lld, out of range for axis %d "
                                 "of size %lld", j, (long long)k, ax, (long long)dim);
            if (k < 0)
                k += dim;
            copy_elems(t, (o * ix->numel + j) * inner, x, (o * (size_t)dim + (size_t)k) * inner, inner);
        }
    return ST_OK;
}

/* ---- GatherElements (11, 13), GatherND (11, 12 batch_dims, 13) ---- */

static Status gather_elements_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0), *ix = in_shape(n, 1);
    char a[160], b[160];
    if (x->rank >= 0 && ix->rank >= 0) {
        if (x->rank != ix->rank)
            return diag_node(d, n, ST_SHAPE, "input 1 (indices) shape %s must have the rank of input 0 shape %s",
                             shape_str(ix, a, sizeof a), shape_str(x, b, sizeof b));
        int ax;
        if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->rank, &ax, d)))
            return st;
    }
    op_set_output(n, 0, in_dtype(n, 0), ix);
    return ST_OK;
}

static Status gather_nd_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0), *ix = in_shape(n, 1);
    DType t = in_dtype(n, 0);
    int64_t b = node_attr_int(n, "batch_dims", 0);
    if (x->rank < 0 || ix->rank < 0 || (ix->rank >= 1 && ix->dim[ix->rank - 1] < 0)) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    char sa[160], sb[160];
    if (ix->rank < 1 || b < 0 || b >= ix->rank || b >= x->rank)
        return diag_node(d, n, ST_SHAPE, "input 1 (indices) shape %s and batch_dims %lld do not fit input 0 "
                         "shape %s", shape_str(ix, sa, sizeof sa), (long long)b, shape_str(x, sb, sizeof sb));
    int64_t k = ix->dim[ix->rank - 1];
    if (k < 1 || b + k > x->rank)
        return diag_node(d, n, ST_SHAPE, "input 1 (indices) shape %s indexes %lld dims but input 0 shape %s has "
                         "only %lld after the %lld batch dims", shape_str(ix, sa, sizeof sa), (long long)k,
                         shape_str(x, sb, sizeof sb), (long long)(x->rank - b), (long long)b);
    for (int i = 0; i < b; i++)
        if (dim_conflict(x, i, ix, i))
            return diag_node(d, n, ST_SHAPE, "batch dim %d differs: input 0 shape %s, input 1 shape %s", i,
                             shape_str(x, sb, sizeof sb), shape_str(ix, sa, sizeof sa));
    int64_t r = ix->rank - 1 + x->rank - b - k;
    if ((st = check_rank(n, r, d)))
        return st;
    Shape out = shape_make((int)r, NULL);
    int o = 0;
    for (int i = 0; i < ix->rank - 1; i++)
        dim_copy(&out, o++, ix, i);
    for (int i = (int)(b + k); i < x->rank; i++)
        dim_copy(&out, o++, x, i);
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ---- ScatterElements (11, 13, 16 reduction), Scatter (9, 11; deprecated) and ScatterND ---- */

/* Scatter-9/11 has ScatterElements-11's semantics under another name. */
static Status scatter_canon(Graph *g, Node *n, Diag *d)
{
    return node_set_op(g, n, "ScatterElements", d);
}

static Status scatter_elements_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0), *ix = in_shape(n, 1), *u = in_shape(n, 2);
    char a[160], b[160];
    if (ix->rank >= 0 && u->rank >= 0 && !shape_equal(ix, u)) {
        bool clash = ix->rank != u->rank;
        for (int i = 0; !clash && i < ix->rank; i++)
            clash = dim_conflict(ix, i, u, i);
        if (clash)
            return diag_node(d, n, ST_SHAPE, "input 2 (updates) shape %s must equal input 1 (indices) shape %s",
                             shape_str(u, a, sizeof a), shape_str(ix, b, sizeof b));
    }
    if (x->rank >= 0 && ix->rank >= 0 && x->rank != ix->rank)
        return diag_node(d, n, ST_SHAPE, "input 1 (indices) shape %s must have the rank of input 0 shape %s",
                         shape_str(ix, a, sizeof a), shape_str(x, b, sizeof b));
    if (x->rank >= 0) {
        int ax;
        if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->rank, &ax, d)))
            return st;
    }
    op_set_output(n, 0, in_dtype(n, 0), x);
    return ST_OK;
}

static Status scatter_nd_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Shape *x = in_shape(n, 0), *ix = in_shape(n, 1), *u = in_shape(n, 2);
    char a[160], b[160], c[160];
    if (x->rank >= 0 && ix->rank >= 1 && u->rank >= 0 && ix->dim[ix->rank - 1] >= 0) {
        int64_t k = ix->dim[ix->rank - 1];
        bool bad = k > x->rank || u->rank != ix->rank - 1 + x->rank - k;
        for (int i = 0; !bad && i < ix->rank - 1; i++)
            bad = dim_conflict(u, i, ix, i);
        for (int i = 0; !bad && i < x->rank - k; i++)
            bad = dim_conflict(u, ix->rank - 1 + i, x, (int)k + i);
        if (bad)
            return diag_node(d, n, ST_SHAPE, "input 2 (updates) shape %s does not fit input 1 (indices) shape %s "
                             "and input 0 shape %s", shape_str(u, a, sizeof a), shape_str(ix, b, sizeof b),
                             shape_str(x, c, sizeof c));
    }
    op_set_output(n, 0, in_dtype(n, 0), x);
    return ST_OK;
}

/* ---- Pad (1 paddings, 2 pads/value attributes; 11 inputs; 13) ---- */

/* Pad-1/2 -> Pad-11: pads become input 1, a non-zero value becomes input 2 (of the data's type,
 * float when that is not known yet: Pad-2 only takes float types). */
static Status pad_canon(Graph *g, Node *n, Diag *d)
{
    if (n->opset >= 11)
        return ST_OK;
    const char *pname = node_attr(n, "pads") ? "pads" : "paddings";
    if (!node_attr(n, pname))
        return diag_node(d, n, ST_INVALID, "attribute pads is required at opset %d", n->opset);
    Status st = attr_to_input(g, n, pname, 1, d);
    if (st)
        return st;
    const Attr *v = node_attr(n, "value");
    if (v) {
        float val = v->type == AT_FLOAT ? v->f : 0.0f;
        if (val != 0.0f) {
            DType t = in_dtype(n, 0) != DT_UNDEFINED ? in_dtype(n, 0) : DT_FLOAT;
            char *hint = arena_printf(g->arena, "%s_value", n->name);
            Value *c = hint ? graph_const_scalar(g, hint, t, val, d) : NULL;
            if (!c)
                return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
            if ((st = node_set_input(g, n, 2, c, d)))
                return st;
        }
        node_remove_attr(n, "value");
    }
    return ST_OK;
}

static Status pad_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const char *mode = node_attr_string(n, "mode", "constant");
    if (strcmp(mode, "constant") != 0 && strcmp(mode, "reflect") != 0 && strcmp(mode, "edge") != 0)
        return diag_node(d, n, ST_UNSUPPORTED, "mode '%s' is not one of constant, reflect, edge", mode);
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    IntList p;
    if ((st = op_input_ints(g, n, 1, &p, d)))
        return st;
    if (x->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    Shape out = *x;
    char a[160];
    if (!p.known) {
        out = shape_make(x->rank, NULL);
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    if (p.n != 2 * (size_t)x->rank)
        return diag_node(d, n, ST_SHAPE, "input 1 (pads) has %zu entries but input 0 shape %s needs %d", p.n,
                         shape_str(x, a, sizeof a), 2 * x->rank);
    if (shape_absurd(x))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s is absurdly large", shape_str(x, a, sizeof a));
    for (int i = 0; i < x->rank; i++) {
        int64_t pb = p.v[i], pe = p.v[i + x->rank];
        if (pb < -DIM_LIMIT || pb > DIM_LIMIT || pe < -DIM_LIMIT || pe > DIM_LIMIT)
            return diag_node(d, n, ST_SHAPE, "input 1 (pads) has an absurd pad for axis %d", i);
        if (x->dim[i] < 0) {
            if (pb != 0 || pe != 0)
                out.dim[i] = -1, out.sym[i] = NULL;
            continue;
        }
        out.dim[i] = x->dim[i] + pb + pe;
        if (out.dim[i] < 0)
            return diag_node(d, n, ST_SHAPE, "input 1 (pads) %lld,%lld crop axis %d of input 0 shape %s below zero",
                             (long long)pb, (long long)pe, i, shape_str(x, a, sizeof a));
        if (strcmp(mode, "reflect") == 0 && (pb >= x->dim[i] || pe >= x->dim[i]) && (pb > 0 || pe > 0))
            return diag_node(d, n, ST_SHAPE, "reflect pads %lld,%lld must be smaller than axis %d of input 0 "
                             "shape %s", (long long)pb, (long long)pe, i, shape_str(x, a, sizeof a));
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ---- Expand (8, 13): bidirectional broadcast of input 0 to input 1 (shape) ---- */

static Status expand_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    IntList l;
    if ((st = op_input_ints(g, n, 1, &l, d)))
        return st;
    if (!l.known) {
        const Shape *ss = in_shape(n, 1);
        Shape out = shape_unknown();
        if (ss->rank == 1 && ss->dim[0] >= 0 && x->rank >= 0) {
            int64_t r = ss->dim[0] > x->rank ? ss->dim[0] : x->rank;
            if ((st = check_rank(n, r, d)))
                return st;
            out = shape_make((int)r, NULL);
        }
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    if ((st = check_rank(n, (int64_t)l.n, d)))
        return st;
    for (size_t k = 0; k < l.n; k++)
        if (l.v[k] < 0)
            return diag_node(d, n, ST_SHAPE, "input 1 (shape) has a negative dim %lld", (long long)l.v[k]);
    Shape target = shape_make((int)l.n, l.v), out;
    if ((st = shape_broadcast(n, 0, x, 1, &target, &out, d)))
        return st;
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status expand_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *x = n->inputs[0]->init;
    for (size_t i = 0; i < t->numel; i++)
        copy_elems(t, i, x, shape_broadcast_offset(&x->shape, &t->shape, i), 1);
    return ST_OK;
}

/* ---- Tile (1 tiles+axis inputs; 6 repeats input; 13) ---- */

/* Tile-1 (input, tiles, axis) -> Tile-6 (input, repeats): needs constant tiles/axis and a known rank. */
static Status tile_canon(Graph *g, Node *n, Diag *d)
{
    if (n->opset >= 6)
        return ST_OK;
    IntList tiles, axis;
    Status st = op_input_ints(g, n, 1, &tiles, d);
    if (!st)
        st = op_input_ints(g, n, 2, &axis, d);
    if (st)
        return st;
    int r = in_shape(n, 0)->rank, ax;
    if (!tiles.known || !axis.known || tiles.n != 1 || axis.n != 1 || r < 0)
        return diag_node(d, n, ST_UNSUPPORTED, "Tile-1 needs constant scalar tiles and axis and an input of "
                         "known rank");
    if ((st = op_axis(n, "axis", axis.v[0], r, &ax, d)))
        return st;
    int64_t rep[IR_MAX_RANK];
    for (int i = 0; i < r; i++)
        rep[i] = i == ax ? tiles.v[0] : 1;
    char *hint = arena_printf(g->arena, "%s_repeats", n->name);
    Value *c = hint ? graph_const_ints(g, hint, rep, (size_t)r, d) : NULL;
    if (!c)
        return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
    n->ninputs = 1;
    return node_set_input(g, n, 1, c, d);
}

static Status tile_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    IntList rep;
    if ((st = op_input_ints(g, n, 1, &rep, d)))
        return st;
    if (x->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    Shape out = shape_make(x->rank, NULL);
    if (!rep.known) {
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    char a[160];
    if (rep.n != (size_t)x->rank)
        return diag_node(d, n, ST_SHAPE, "input 1 (repeats) has %zu entries for input 0 shape %s", rep.n,
                         shape_str(x, a, sizeof a));
    for (int i = 0; i < x->rank; i++) {
        if (rep.v[i] < 0)
            return diag_node(d, n, ST_SHAPE, "input 1 (repeats) has a negative entry %lld", (long long)rep.v[i]);
        if (rep.v[i] == 1)
            dim_copy(&out, i, x, i);
        else if (rep.v[i] == 0)
            out.dim[i] = 0;
        else if (x->dim[i] >= 0) {
            if (x->dim[i] > INT64_MAX / rep.v[i])
                return diag_node(d, n, ST_SHAPE, "tiling axis %d overflows", i);
            out.dim[i] = x->dim[i] * rep.v[i];
        }
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status tile_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *x = n->inputs[0]->init;
    size_t xs[IR_MAX_RANK];
    strides_of(&x->shape, xs);
    for (size_t i = 0; i < t->numel; i++) {
        size_t rem = i, off = 0;
        for (int k = t->shape.rank - 1; k >= 0; k--) {
            size_t idx = rem % (size_t)t->shape.dim[k];
            rem /= (size_t)t->shape.dim[k];
            off += (idx % (size_t)x->shape.dim[k]) * xs[k];
        }
        copy_elems(t, i, x, off, 1);
    }
    return ST_OK;
}

/* ---- Range (11) ---- */

static Status range_shape(Graph *g, Node *n, Diag *d)
{
    for (int i = 0; i < 3; i++) {
        const Shape *s = in_shape(n, i);
        if (s->rank > 1 || (s->rank == 1 && s->dim[0] != 1 && s->dim[0] >= 0))
            return diag_node(d, n, ST_SHAPE, "input %d must be a scalar", i);
    }
    DType t = in_dtype(n, 0);
    Shape out = shape_make(1, NULL);
    double *v[3];
    size_t cnt;
    bool known = true;
    for (int i = 0; i < 3 && known; i++)
        known = const_f64s(g, n, i, &v[i], &cnt) && cnt == 1;
    if (known) {
        double start = v[0][0], limit = v[1][0], delta = v[2][0];
        if (delta == 0)
            return diag_node(d, n, ST_SHAPE, "input 2 (delta) is zero");
        double len = ceil((limit - start) / delta);
        if (!(len < 1e15))
            return diag_node(d, n, ST_SHAPE, "the range from %g to %g by %g is too long", start, limit, delta);
        out.dim[0] = len > 0 ? (int64_t)len : 0;
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

static Status range_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *s = n->inputs[0]->init, *dl = n->inputs[2]->init;
    if (dtype_is_int(t->dtype)) {
        int64_t a = tensor_get_i64(s, 0), b = tensor_get_i64(dl, 0);
        for (size_t i = 0; i < t->numel; i++)
            tensor_set_i64(t, i, a + (int64_t)i * b);
    } else {
        double a = tensor_get_f64(s, 0), b = tensor_get_f64(dl, 0);
        for (size_t i = 0; i < t->numel; i++)
            tensor_set_f64(t, i, a + (double)i * b);
    }
    return ST_OK;
}

/* ---- Identity (1, 13, 14 sequences, 16 optionals) ---- */

static Status identity_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Value *x = node_input(n, 0);
    if (!x)
        return diag_node(d, n, ST_INVALID, "input 0 is required but missing");
    value_copy_type(n->outputs[0], x); /* also a sequence's or optional's type */
    return ST_OK;
}

static Status identity_fold(Graph *g, Node *n, Diag *d)
{
    (void)g, (void)d;
    n->outputs[0]->init = n->inputs[0]->init;
    return ST_OK;
}

/* ---- Resize (10, 11, 13) and Upsample (7 scales attribute, 9 scales input; deprecated at 10) ---- */

/* Resize-10/11 -> 13 and Upsample-7/9 -> Resize-13. Resize-10 and Upsample compute
 * x_in = x_out / scale and, for nearest, floor it: Resize-13's asymmetric + floor. Resize-11
 * differs from 13 only in roi/scales being required (empty meant absent) and tf_half_pixel_for_nn. */
static Status resize_canon(Graph *g, Node *n, Diag *d)
{
    Status st = ST_OK;
    bool legacy = strcmp(n->op_type, "Upsample") == 0 || n->opset < 11;
    if (strcmp(n->op_type, "Upsample") == 0) {
        if (n->opset < 7)
            return diag_node(d, n, ST_UNSUPPORTED, "experimental Upsample-1 is not supported");
        if (n->opset < 9) { /* scales attribute -> input */
            const Attr *a = node_attr(n, "scales");
            if (!a || a->type != AT_FLOATS)
                return diag_node(d, n, ST_INVALID, "attribute scales (floats) is required at opset %d", n->opset);
            int64_t len = (int64_t)a->n;
            Shape s = shape_make(1, &len);
            char *hint = arena_printf(g->arena, "%s_scales", n->name);
            Value *c = hint ? graph_const(g, hint, DT_FLOAT, &s, d) : NULL;
            if (!c)
                return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
            if (a->n)
                memcpy(c->init->data, a->floats, a->n * sizeof(float));
            if ((st = node_set_input(g, n, 1, c, d)))
                return st;
            node_remove_attr(n, "scales");
        }
        const char *mode = node_attr_string(n, "mode", "nearest");
        if (strcmp(mode, "bilinear") == 0 && (st = set_attr_string(g, n, "mode", "linear", d)))
            return st;
        if ((st = node_set_op(g, n, "Resize", d)))
            return st;
    }
    if (legacy) { /* (X, scales) -> (X, roi absent, scales) */
        if (n->ninputs < 2)
            return diag_node(d, n, ST_INVALID, "input 1 (scales) is required at opset %d", n->opset);
        Value *scales = n->inputs[1];
        n->inputs[1] = NULL;
        if ((st = node_set_input(g, n, 2, scales, d)))
            return st;
        if ((st = set_attr_string(g, n, "coordinate_transformation_mode", "asymmetric", d)))
            return st;
        if (strcmp(node_attr_string(n, "mode", "nearest"), "nearest") == 0 &&
            (st = set_attr_string(g, n, "nearest_mode", "floor", d)))
            return st;
        return ST_OK;
    }
    if (n->opset < 13) {
        if (strcmp(node_attr_string(n, "coordinate_transformation_mode", ""), "tf_half_pixel_for_nn") == 0)
            return diag_node(d, n, ST_UNSUPPORTED, "coordinate_transformation_mode tf_half_pixel_for_nn "
                             "(Resize-11 only) is not supported");
        for (int i = 1; i <= 2; i++) { /* empty roi/scales meant "not given" */
            Value *v = node_input(n, i);
            if (v && value_is_const(v) && v->init->numel == 0)
                n->inputs[i] = NULL;
        }
        node_trim_inputs(n);
    }
    return ST_OK;
}

static Status resize_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const char *mode = node_attr_string(n, "mode", "nearest");
    if (strcmp(mode, "nearest") != 0 && strcmp(mode, "linear") != 0 && strcmp(mode, "cubic") != 0)
        return diag_node(d, n, ST_UNSUPPORTED, "mode '%s' is not one of nearest, linear, cubic", mode);
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    bool upsample = strcmp(n->op_type, "Upsample") == 0; /* only when pass_canon did not run */
    int si = upsample ? 1 : 2;
    if (x->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    Shape out = shape_make(x->rank, NULL);
    char a[160];
    IntList sizes = {0};
    if (!upsample && (st = op_input_ints(g, n, 3, &sizes, d)))
        return st;
    double *scales = NULL, *roi = NULL;
    size_t ns = 0, nr = 0;
    bool have_scales = const_f64s(g, n, si, &scales, &ns) && ns > 0;
    bool crop = strcmp(node_attr_string(n, "coordinate_transformation_mode", ""), "tf_crop_and_resize") == 0;
    bool have_roi = crop && const_f64s(g, n, 1, &roi, &nr) && nr == 2 * (size_t)x->rank;
    if (sizes.known && sizes.n > 0) {
        if (have_scales)
            return diag_node(d, n, ST_SHAPE, "has both input 2 (scales) and input 3 (sizes); give one");
        if (sizes.n != (size_t)x->rank)
            return diag_node(d, n, ST_SHAPE, "input 3 (sizes) has %zu entries for input 0 shape %s", sizes.n,
                             shape_str(x, a, sizeof a));
        for (int i = 0; i < x->rank; i++) {
            if (sizes.v[i] < 0)
                return diag_node(d, n, ST_SHAPE, "input 3 (sizes) has a negative size %lld", (long long)sizes.v[i]);
            out.dim[i] = sizes.v[i];
        }
    } else if (have_scales) {
        if (ns != (size_t)x->rank)
            return diag_node(d, n, ST_SHAPE, "input %d (scales) has %zu entries for input 0 shape %s", si, ns,
                             shape_str(x, a, sizeof a));
        for (int i = 0; i < x->rank; i++) {
            if (!(scales[i] > 0) || scales[i] > 1e9)
                return diag_node(d, n, ST_SHAPE, "input %d (scales) has an invalid scale %g", si, scales[i]);
            if (scales[i] == 1 && !crop) {
                dim_copy(&out, i, x, i);
            } else if (x->dim[i] >= 0 && (!crop || have_roi)) {
                /* in float32 as ONNX and onnxruntime do: 10 * 0.7f is 7, not 6.99999 */
                float len = (float)x->dim[i] * (float)scales[i];
                if (crop)
                    len = (float)x->dim[i] * (float)(roi[i + x->rank] - roi[i]) * (float)scales[i];
                if (!(len >= 0 && len < 1e15f))
                    return diag_node(d, n, ST_SHAPE, "resized axis %d is out of range", i);
                out.dim[i] = (int64_t)floorf(len);
            }
        }
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ---- DepthToSpace (1, 11 mode, 13), SpaceToDepth (1, 13) ---- */

static Status depth_space_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    bool to_space = strcmp(n->op_type, "DepthToSpace") == 0;
    const Shape *x = in_shape(n, 0);
    int64_t b = node_attr_int(n, "blocksize", 0);
    char a[160];
    if (shape_absurd(x))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s is absurdly large", shape_str(x, a, sizeof a));
    if (b <= 0 || b > (1 << 20))
        return diag_node(d, n, ST_INVALID, "attribute blocksize must be positive, not %lld", (long long)b);
    if (x->rank >= 0 && x->rank != 4)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be 4-D (N, C, H, W)", shape_str(x, a, sizeof a));
    const char *mode = node_attr_string(n, "mode", "DCR");
    if (to_space && strcmp(mode, "DCR") != 0 && strcmp(mode, "CRD") != 0)
        return diag_node(d, n, ST_INVALID, "mode '%s' is not DCR or CRD", mode);
    if (x->rank < 0) {
        Shape out = shape_make(4, NULL);
        op_set_output(n, 0, in_dtype(n, 0), &out);
        return ST_OK;
    }
    Shape out = shape_make(4, NULL);
    dim_copy(&out, 0, x, 0);
    int64_t bb = b * b;
    if (to_space) {
        if (x->dim[1] >= 0 && x->dim[1] % bb)
            return diag_node(d, n, ST_SHAPE, "channels of input 0 shape %s are not a multiple of blocksize^2 = %lld",
                             shape_str(x, a, sizeof a), (long long)bb);
        out.dim[1] = x->dim[1] >= 0 ? x->dim[1] / bb : -1;
        out.dim[2] = x->dim[2] >= 0 ? x->dim[2] * b : -1;
        out.dim[3] = x->dim[3] >= 0 ? x->dim[3] * b : -1;
    } else {
        for (int i = 2; i < 4; i++)
            if (x->dim[i] >= 0 && x->dim[i] % b)
                return diag_node(d, n, ST_SHAPE, "dim %d of input 0 shape %s is not a multiple of blocksize %lld", i,
                                 shape_str(x, a, sizeof a), (long long)b);
        out.dim[1] = x->dim[1] >= 0 ? x->dim[1] * bb : -1;
        out.dim[2] = x->dim[2] >= 0 ? x->dim[2] / b : -1;
        out.dim[3] = x->dim[3] >= 0 ? x->dim[3] / b : -1;
    }
    op_set_output(n, 0, in_dtype(n, 0), &out);
    return ST_OK;
}

/* ---- Trilu (14), CumSum (11, 14): same shape as input 0 ---- */

static Status trilu_cumsum_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    bool cumsum = strcmp(n->op_type, "CumSum") == 0;
    Status st;
    const Shape *x = in_shape(n, 0), *k = in_shape(n, 1);
    char a[160];
    if (k->rank > 1 || (k->rank == 1 && k->dim[0] >= 0 && k->dim[0] != 1))
        return diag_node(d, n, ST_SHAPE, "input 1 (%s) must be a scalar", cumsum ? "axis" : "k");
    if (!cumsum && x->rank >= 0 && x->rank < 2)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must have rank >= 2", shape_str(x, a, sizeof a));
    if (cumsum && x->rank >= 0 && node_input(n, 1) && value_is_const(n->inputs[1])) {
        int ax;
        if ((st = op_axis(n, "input 1 (axis)", tensor_get_i64(n->inputs[1]->init, 0), x->rank, &ax, d)))
            return st;
    }
    op_set_output(n, 0, in_dtype(n, 0), x);
    return ST_OK;
}

/* ---- OneHot (9, 11 negative axis) ---- */

static Status onehot_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *ix = in_shape(n, 0), *vs = in_shape(n, 2);
    DType t = in_dtype(n, 2);
    if (vs->rank >= 0 && (vs->rank != 1 || (vs->dim[0] >= 0 && vs->dim[0] != 2)))
        return diag_node(d, n, ST_SHAPE, "input 2 (values) must be [off_value, on_value]");
    if (ix->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    if ((st = check_rank(n, ix->rank + 1, d)))
        return st;
    int r = ix->rank + 1, ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", -1), r, &ax, d)))
        return st;
    int64_t depth = -1;
    double *dv;
    size_t nd;
    if (const_f64s(g, n, 1, &dv, &nd)) {
        if (nd != 1 || !(dv[0] >= 1) || dv[0] > 1e12)
            return diag_node(d, n, ST_SHAPE, "input 1 (depth) must be one positive number");
        depth = (int64_t)dv[0];
    }
    Shape out = shape_make(r, NULL);
    for (int i = 0, j = 0; i < r; i++)
        if (i == ax)
            out.dim[i] = depth;
        else
            dim_copy(&out, i, ix, j++);
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ---- EyeLike (9) ---- */

static Status eyelike_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Shape *x = in_shape(n, 0);
    char a[160];
    if (x->rank >= 0 && x->rank != 2)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be 2-D", shape_str(x, a, sizeof a));
    int64_t dt = node_attr_int(n, "dtype", in_dtype(n, 0));
    if (!node_attr(n, "dtype") && dt == DT_UNDEFINED) {
        op_set_output(n, 0, DT_UNDEFINED, x);
        return ST_OK;
    }
    if (dt < 0 || dt >= DT_COUNT || dtype_size((DType)dt) == 0)
        return diag_node(d, n, ST_INVALID, "attribute dtype %lld is not a tensor type", (long long)dt);
    Shape out = x->rank < 0 ? shape_make(2, NULL) : *x;
    op_set_output(n, 0, (DType)dt, &out);
    return ST_OK;
}

/* ---- Compress (9, 11 negative axis) ---- */

static Status compress_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0), *c = in_shape(n, 1);
    DType t = in_dtype(n, 0);
    if (c->rank >= 0 && c->rank != 1)
        return diag_node(d, n, ST_SHAPE, "input 1 (condition) must be 1-D");
    const Value *cv = node_input(n, 1);
    int64_t count = -1;
    if (value_is_const(cv)) {
        count = 0;
        for (size_t i = 0; i < cv->init->numel; i++)
            count += tensor_get_i64(cv->init, i) != 0;
    }
    const Attr *axa = node_attr(n, "axis");
    if (!axa) {
        Shape out = shape_make(1, &count);
        op_set_output(n, 0, t, &out);
        return ST_OK;
    }
    if (x->rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    int ax;
    if ((st = op_axis(n, "axis", axa->i, x->rank, &ax, d)))
        return st;
    Shape out = *x;
    out.dim[ax] = count;
    out.sym[ax] = NULL;
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ---- TopK (1 k attribute; 10 k input; 11 largest/sorted, negative axis) ---- */

static Status topk_canon(Graph *g, Node *n, Diag *d)
{
    if (n->opset >= 10)
        return ST_OK;
    if (!node_attr(n, "k"))
        return diag_node(d, n, ST_INVALID, "attribute k is required at opset %d", n->opset);
    return attr_to_input(g, n, "k", 1, d);
}

static Status topk_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    DType t = in_dtype(n, 0);
    IntList k;
    if ((st = op_input_ints(g, n, 1, &k, d)))
        return st;
    if (x->rank < 0) {
        op_set_output(n, 0, t, NULL);
        op_set_output(n, 1, DT_INT64, NULL);
        return ST_OK;
    }
    int ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", -1), x->rank, &ax, d)))
        return st;
    Shape out = *x;
    out.dim[ax] = -1;
    out.sym[ax] = NULL;
    char a[160];
    if (k.known) {
        if (k.n != 1 || k.v[0] < 0)
            return diag_node(d, n, ST_SHAPE, "input 1 (k) must hold one non-negative number");
        if (x->dim[ax] >= 0 && k.v[0] > x->dim[ax])
            return diag_node(d, n, ST_SHAPE, "k = %lld exceeds axis %d of input 0 shape %s", (long long)k.v[0], ax,
                             shape_str(x, a, sizeof a));
        out.dim[ax] = k.v[0];
    }
    op_set_output(n, 0, t, &out);
    op_set_output(n, 1, DT_INT64, &out);
    return ST_OK;
}

/* ---- NonZero (9, 13): [rank, count]; count is known only for a constant input ---- */

static Status nonzero_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Value *x = n->inputs[0];
    Shape out = shape_make(2, NULL);
    if (x->shape.rank >= 0)
        out.dim[0] = x->shape.rank;
    if (value_is_const(x) && x->init->dtype != DT_STRING) {
        int64_t c = 0;
        for (size_t i = 0; i < x->init->numel; i++)
            c += tensor_get_f64(x->init, i) != 0;
        out.dim[1] = c;
    }
    op_set_output(n, 0, DT_INT64, &out);
    return ST_OK;
}

static Status nonzero_fold(Graph *g, Node *n, Diag *d)
{
    Tensor *t;
    Status st = op_fold_output(g, n, 0, &t, d);
    if (st)
        return st;
    const Tensor *x = n->inputs[0]->init;
    int r = x->shape.rank;
    size_t count = (size_t)t->shape.dim[1], j = 0;
    for (size_t i = 0; i < x->numel && j < count; i++) {
        if (tensor_get_f64(x, i) == 0)
            continue;
        size_t rem = i;
        for (int k = r - 1; k >= 0; k--) {
            ((int64_t *)t->data)[(size_t)k * count + j] = (int64_t)(rem % (size_t)x->shape.dim[k]);
            rem /= (size_t)x->shape.dim[k];
        }
        j++;
    }
    return ST_OK;
}

/* ======================================================================== gradient rules */

/* One backward node with one output (default domain); NULL on error (the Diag says why). */
static Value *bw1(GradCtx *c, const Node *fwd, const char *op, int nin, Value *const *in, Diag *d)
{
    Node *m = grad_add_node(c, fwd, "", op, nin, in, 1, d);
    return m ? m->outputs[0] : NULL;
}

/* g reshaped to the static shape s (g itself when the shapes agree). */
static Value *grad_reshape(GradCtx *c, const Node *fwd, Value *g, const Shape *s, Diag *d)
{
    if (shape_equal(&g->shape, s))
        return g;
    char a[128];
    if (!shape_is_static(s)) {
        diag_node(d, fwd, ST_SHAPE, "training needs static shapes, but input 0 is %s (pass --batch)",
                  shape_str(s, a, sizeof a));
        return NULL;
    }
    Value *target = graph_const_ints(grad_graph(c), "grad_shape", s->dim, (size_t)s->rank, d);
    return target ? bw1(c, fwd, "Reshape", 2, (Value *[]){g, target}, d) : NULL;
}

/* Y = X with another shape (Reshape, Flatten, Squeeze, Unsqueeze) or X itself (Identity):
 * dX = Reshape(dY, shape(X)). */
static Status grad_view(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Value *dx = grad_reshape(c, n, dy, &n->inputs[0]->shape, d);
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* Static shape of input 0 or an error naming the op: training needs static shapes. */
static Status grad_static_input(const Node *n, Diag *d)
{
    const Shape *x = in_shape(n, 0);
    char a[128];
    if (shape_is_static(x))
        return ST_OK;
    return diag_node(d, n, ST_SHAPE, "training needs static shapes, but input 0 is %s (pass --batch)",
                     shape_str(x, a, sizeof a));
}


/* Zeros of the static shape s (a broadcast scalar: nothing large in the weights). */
static Value *grad_zeros(GradCtx *c, const Node *fwd, DType t, const Shape *s, Diag *d)
{
    Graph *g = grad_graph(c);
    Value *z = graph_const_scalar(g, "zero", t, 0, d);
    Value *shp = z ? graph_const_ints(g, "grad_shape", s->dim, (size_t)s->rank, d) : NULL;
    return shp ? bw1(c, fwd, "Expand", 2, (Value *[]){z, shp}, d) : NULL;
}

/* Y = transpose(X, perm): dX = transpose(dY, inverse of perm). */
static Status grad_transpose(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    int r = in_shape(n, 0)->rank, perm[IR_MAX_RANK];
    int64_t inv[IR_MAX_RANK];
    Status st = transpose_perm(n, r, perm, d);
    if (st)
        return st;
    for (int i = 0; i < r; i++)
        inv[perm[i]] = i;
    Node *m = grad_new_node(c, n, "", "Transpose", 1, &dy, 1, d);
    if (!m || node_set_attr_ints(grad_graph(c), m, "perm", inv, (size_t)r, d) || grad_finish_node(c, m, d))
        return d->status;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* Y = concat(X0, ..., Xk; axis): dXi = dY[.., offset_i : offset_i + size_i, ..] (a Slice per input
 * that needs a gradient). */
static Status grad_concat(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    int ax;
    Status st = op_axis(n, "axis", node_attr_int(n, "axis", 0), dy->shape.rank, &ax, d);
    if (st)
        return st;
    Graph *g = grad_graph(c);
    int64_t off = 0;
    for (int i = 0; i < n->ninputs; i++) {
        const Shape *x = in_shape(n, i);
        int64_t size = x->rank > ax ? x->dim[ax] : -1;
        if (size < 0)
            return diag_node(d, n, ST_SHAPE, "training needs static shapes (input %d)", i);
        if (grad_needed(c, n, i)) {
            int64_t b = off, e = off + size, a = ax;
            Value *in[4] = {dy, graph_const_ints(g, "starts", &b, 1, d), graph_const_ints(g, "ends", &e, 1, d),
                            graph_const_ints(g, "axes", &a, 1, d)};
            Value *dx = in[1] && in[2] && in[3] ? bw1(c, n, "Slice", 4, in, d) : NULL;
            if (!dx || (st = grad_accumulate(c, n, i, dx, d)))
                return d->status;
        }
        off += size;
    }
    return ST_OK;
}

/* Y0, ..., Yk = split(X; axis, sizes): dX = concat(dY0, ..., dYk; axis), zeros for the outputs that get
 * no gradient. */
static Status grad_split(GradCtx *c, Node *n, Diag *d)
{
    if (!grad_needed(c, n, 0))
        return ST_OK;
    Value **parts = arena_calloc(grad_graph(c)->arena, (size_t)n->noutputs, sizeof *parts);
    if (!parts)
        return diag_node(d, n, ST_NOMEM, "out of memory building the backward pass");
    bool any = false;
    for (int i = 0; i < n->noutputs; i++) {
        parts[i] = grad_output(c, n, i);
        any = any || parts[i];
    }
    if (!any)
        return ST_OK;
    for (int i = 0; i < n->noutputs; i++) {
        Value *y = n->outputs[i];
        if (!parts[i] && !(parts[i] = grad_zeros(c, n, y->dtype, &y->shape, d)))
            return d->status;
    }
    Node *m = grad_new_node(c, n, "", "Concat", n->noutputs, parts, 1, d);
    if (!m || node_set_attr_int(grad_graph(c), m, "axis", node_attr_int(n, "axis", 0), d) ||
        grad_finish_node(c, m, d))
        return d->status;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* Y = X[start_i : end_i : step_i] per axis: dX = zeros of X's shape with dY put back where it came from.
 * Unit steps: Pad(dY, begin = start, end = dim - start - count); other steps: onnxtune.SliceGrad(dY) with
 * attributes starts, steps (resolved, every axis) and shape (X's dims). */
static Status grad_slice(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Status st;
    if ((st = grad_static_input(n, d)))
        return st;
    const Shape *x = in_shape(n, 0);
    int r = x->rank;
    SliceSpec sp;
    if ((st = slice_spec(grad_graph(c), n, r, &sp, d)))
        return st;
    if (!sp.known)
        return diag_node(d, n, ST_UNSUPPORTED, "training needs constant starts, ends, axes and steps");
    int64_t starts[IR_MAX_RANK], steps[IR_MAX_RANK], pads[2 * IR_MAX_RANK];
    bool unit = true;
    for (int i = 0; i < r; i++) {
        SliceAxis a = sp.sliced[i] ? slice_axis(sp.start[i], sp.end[i], sp.step[i], x->dim[i])
                                   : (SliceAxis){0, 1, x->dim[i]};
        starts[i] = a.start;
        steps[i] = a.step;
        unit = unit && (a.step == 1 || a.count <= 1);
        pads[i] = a.start;
        pads[r + i] = x->dim[i] - a.start - a.count;
        if (a.count == 0)
            pads[i] = 0, pads[r + i] = x->dim[i];
    }
    Value *dx;
    if (unit) {
        Value *p = graph_const_ints(grad_graph(c), "pads", pads, 2 * (size_t)r, d);
        dx = p ? bw1(c, n, "Pad", 2, (Value *[]){dy, p}, d) : NULL;
    } else {
        Graph *g = grad_graph(c);
        Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, "SliceGrad", 1, &dy, 1, d);
        if (!m || node_set_attr_ints(g, m, "starts", starts, (size_t)r, d) ||
            node_set_attr_ints(g, m, "steps", steps, (size_t)r, d) ||
            node_set_attr_ints(g, m, "shape", x->dim, (size_t)r, d) || grad_finish_node(c, m, d))
            return d->status;
        dx = m->outputs[0];
    }
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* Y = gather(X, indices; axis): dX = zeros of X's shape plus each row of dY added at its index
 * (repeated indices add up: the embedding gradient), onnxtune.GatherGrad(dY, indices) with attributes
 * axis and shape (X's dims); a deterministic kernel, no atomics. */
static Status grad_gather(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Status st;
    if ((st = grad_static_input(n, d)))
        return st;
    const Shape *x = in_shape(n, 0);
    int ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->rank, &ax, d)))
        return st;
    Graph *g = grad_graph(c);
    Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, "GatherGrad", 2, (Value *[]){dy, n->inputs[1]}, 1, d);
    if (!m || node_set_attr_ints(g, m, "shape", x->dim, (size_t)x->rank, d) ||
        node_set_attr_int(g, m, "axis", ax, d) || grad_finish_node(c, m, d))
        return d->status;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* Y = X broadcast to a shape: dX = dY summed over the broadcast dims. */
static Status grad_expand(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Value *dx = grad_unbroadcast(c, n, dy, in_shape(n, 0), d);
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* Y = pad(X; begin, end) in reflect or edge mode: each Y element copies one X element, several
 * of them the same one: dX = the sum of dY over the Y elements that copy it, onnxtune.PadGrad(dY) with
 * attributes pads (the begin pads, one per dim), mode and shape (X's dims). */
static Status grad_pad_mode(GradCtx *c, Node *n, const char *mode, Diag *d)
{
    if (strcmp(mode, "reflect") != 0 && strcmp(mode, "edge") != 0)
        return diag_node(d, n, ST_UNSUPPORTED, "no gradient for Pad mode '%s'", mode);
    Status st;
    if ((st = grad_static_input(n, d)))
        return st;
    Graph *g = grad_graph(c);
    IntList p;
    if ((st = op_input_ints(g, n, 1, &p, d)))
        return st;
    const Shape *x = in_shape(n, 0);
    if (!p.known || p.n != 2 * (size_t)x->rank)
        return diag_node(d, n, ST_UNSUPPORTED, "training needs constant pads");
    Value *dy = grad_output(c, n, 0);
    Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, "PadGrad", 1, &dy, 1, d);
    Attr a = {.name = "mode", .type = AT_STRING, .s = mode, .slen = strlen(mode)};
    if (!m || node_set_attr_ints(g, m, "pads", p.v, (size_t)x->rank, d) ||
        node_set_attr_ints(g, m, "shape", x->dim, (size_t)x->rank, d))
        return d->status;
    if (!node_add_attr(g, m, &a))
        return diag_node(d, n, ST_NOMEM, "out of memory");
    if ((st = grad_finish_node(c, m, d)))
        return st;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* Y = pad(X; begin, end) in constant mode (negative pads crop): dX = dY[begin : begin + dim] where
 * that lies inside Y, zeros where X was cropped away (a Slice, then a Pad when something was cropped).
 * reflect/edge modes and a gradient for the pad value are refused. */
static Status grad_pad(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    if (grad_needed(c, n, 2))
        return diag_node(d, n, ST_UNSUPPORTED, "no gradient for the pad value '%s'; freeze it", n->inputs[2]->name);
    if (!grad_needed(c, n, 0))
        return ST_OK;
    const char *mode = node_attr_string(n, "mode", "constant");
    if (strcmp(mode, "constant") != 0)
        return grad_pad_mode(c, n, mode, d);
    Status st;
    if ((st = grad_static_input(n, d)))
        return st;
    IntList p;
    Graph *g = grad_graph(c);
    if ((st = op_input_ints(g, n, 1, &p, d)))
        return st;
    const Shape *x = in_shape(n, 0);
    int r = x->rank;
    if (!p.known || p.n != 2 * (size_t)r)
        return diag_node(d, n, ST_UNSUPPORTED, "training needs constant pads");
    int64_t starts[IR_MAX_RANK], ends[IR_MAX_RANK], axes[IR_MAX_RANK], crop[2 * IR_MAX_RANK];
    bool cropped = false;
    for (int i = 0; i < r; i++) {
        int64_t pb = p.v[i], pe = p.v[r + i];
        starts[i] = pb > 0 ? pb : 0;
        ends[i] = dy->shape.dim[i] - (pe > 0 ? pe : 0);
        axes[i] = i;
        crop[i] = pb < 0 ? -pb : 0;
        crop[r + i] = pe < 0 ? -pe : 0;
        cropped = cropped || pb < 0 || pe < 0;
    }
    Value *in[4] = {dy, graph_const_ints(g, "starts", starts, (size_t)r, d), graph_const_ints(g, "ends", ends, (size_t)r, d),
                    graph_const_ints(g, "axes", axes, (size_t)r, d)};
    Value *dx = in[1] && in[2] && in[3] ? bw1(c, n, "Slice", 4, in, d) : NULL;
    if (dx && cropped) {
        Value *cp = graph_const_ints(g, "pads", crop, 2 * (size_t)r, d);
        dx = cp ? bw1(c, n, "Pad", 2, (Value *[]){dx, cp}, d) : NULL;
    }
    return dx ? grad_accumulate(c, n, 0, dx, d) : d->status;
}

/* Y = tile(X; repeats): Y viewed as [r0, x0, r1, x1, ...], dX = its sum over the r axes. */
static Status grad_tile(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Status st;
    if ((st = grad_static_input(n, d)))
        return st;
    const Shape *x = in_shape(n, 0);
    int r = x->rank;
    if (2 * r > IR_MAX_RANK)
        return diag_node(d, n, ST_UNSUPPORTED, "no gradient for Tile of rank %d (at most %d)", r, IR_MAX_RANK / 2);
    int64_t view[IR_MAX_RANK], axes[IR_MAX_RANK];
    for (int i = 0; i < r; i++) {
        view[2 * i] = x->dim[i] ? dy->shape.dim[i] / x->dim[i] : 0;
        view[2 * i + 1] = x->dim[i];
        axes[i] = 2 * i;
    }
    Graph *g = grad_graph(c);
    Value *vs = graph_const_ints(g, "grad_shape", view, 2 * (size_t)r, d);
    Value *v = vs ? bw1(c, n, "Reshape", 2, (Value *[]){dy, vs}, d) : NULL;
    Value *ax = v ? graph_const_ints(g, "axes", axes, (size_t)r, d) : NULL;
    Node *m = ax ? grad_new_node(c, n, "", "ReduceSum", 2, (Value *[]){v, ax}, 1, d) : NULL;
    if (!m || node_set_attr_int(g, m, "keepdims", 0, d) || grad_finish_node(c, m, d))
        return d->status;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* Y = Resize(X): each Y element a weighted sum of X elements (nearest: one with weight 1; linear/cubic:
 * the taps of each axis, their weights multiplied), the weights fixed by the constant scales or sizes:
 * dX = onnxtune.ResizeGrad(dY, roi, scales), the forward's attributes plus shape (X's dims), scattering
 * each dY element back through the same taps (kernels/resize.c resize_backward). As F.interpolate's
 * gradient; roi, scales and sizes are constants and get none. */
static Status grad_resize(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy || !grad_needed(c, n, 0))
        return ST_OK;
    Status st;
    if ((st = grad_static_input(n, d)))
        return st;
    for (int i = 1; i < n->ninputs; i++)
        if (node_input(n, i) && !value_is_const(n->inputs[i]))
            return diag_node(d, n, ST_UNSUPPORTED, "training needs constant roi, scales and sizes ('%s' is not)",
                             n->inputs[i]->name);
    Graph *g = grad_graph(c);
    const Shape *x = in_shape(n, 0);
    Node *m = grad_new_node(c, n, ONNXTUNE_DOMAIN, "ResizeGrad", 3, (Value *[]){dy, node_input(n, 1),
                            node_input(n, 2)}, 1, d);
    if (!m)
        return d->status;
    for (int i = 0; i < n->nattrs; i++)
        if (!node_add_attr(g, m, &n->attrs[i]))
            return diag_node(d, n, ST_NOMEM, "out of memory");
    if (node_set_attr_ints(g, m, "shape", x->dim, (size_t)x->rank, d) || grad_finish_node(c, m, d))
        return d->status;
    return grad_accumulate(c, n, 0, m->outputs[0], d);
}

/* onnxtune.ResizeGrad(dY, roi?, scales?) -> dX: dY's type, attribute shape, dY of the same rank. */
static Status resize_grad_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    IntList shp;
    if (!op_attr_ints(n, "shape", &shp) || (int64_t)shp.n > IR_MAX_RANK)
        return diag_node(d, n, ST_INVALID, "attribute shape (the input's dims) is required");
    const Shape *dy = in_shape(n, 0);
    if (dy->rank >= 0 && (size_t)dy->rank != shp.n)
        return diag_node(d, n, ST_SHAPE, "dY has rank %d but attribute shape %zu dims", dy->rank, shp.n);
    Shape out = shape_make((int)shp.n, shp.v);
    op_set_output(n, 0, in_dtype(n, 0), &out);
    return ST_OK;
}

/* onnxtune.SliceGrad(dY), onnxtune.PadGrad(dY) and onnxtune.GatherGrad(dY, indices) -> dX: dY's type,
 * attribute shape. */
static Status grad_scatter_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    bool gather = strcmp(n->op_type, "GatherGrad") == 0;
    IntList shp;
    if (!op_attr_ints(n, "shape", &shp) || (int64_t)shp.n > IR_MAX_RANK)
        return diag_node(d, n, ST_INVALID, "attribute shape (the input's dims) is required");
    for (size_t i = 0; i < shp.n; i++)
        if (shp.v[i] < 0)
            return diag_node(d, n, ST_INVALID, "attribute shape has a negative dim");
    if (gather && in_dtype(n, 1) != DT_UNDEFINED && in_dtype(n, 1) != DT_INT64 && in_dtype(n, 1) != DT_INT32)
        return diag_node(d, n, ST_SHAPE, "input 1 (indices) must be int32 or int64");
    if (!strcmp(n->op_type, "PadGrad")) {
        IntList a;
        if (!op_attr_ints(n, "pads", &a) || a.n != shp.n)
            return diag_node(d, n, ST_INVALID, "attribute pads needs one begin pad per dim of shape");
    } else if (!gather) {
        IntList a, b;
        if (!op_attr_ints(n, "starts", &a) || !op_attr_ints(n, "steps", &b) || a.n != shp.n || b.n != shp.n)
            return diag_node(d, n, ST_INVALID, "attributes starts and steps need one entry per dim of shape");
    }
    Shape out = shape_make((int)shp.n, shp.v);
    op_set_output(n, 0, in_dtype(n, 0), &out);
    return ST_OK;
}

/* name, domain, family, canonical opset, canon, shape, fold, flops, grad, then the signature */
const OpRule shape_rules[] = {
    {"Constant", "", "shape", 17, NULL, constant_shape, constant_fold, no_flops, NULL, ARITY(0, 0, 1, 1)},
    {"ConstantOfShape", "", "shape", 17, NULL, constant_of_shape_shape, constant_of_shape_fold, no_flops, NULL,
     ARITY(1, 1, 1, 1), REQUIRED(1), DTYPES(IN_IS(0, DT_INT64))},
    {"Shape", "", "shape", 17, NULL, shape_shape, shape_fold, no_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"Size", "", "shape", 17, NULL, size_shape, shape_fold, no_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"Reshape", "", "shape", 17, reshape_canon, reshape_shape, fold_copy, no_flops, grad_view, ARITY(2, 2, 1, 1),
     REQUIRED(2), DTYPES(IN_IS(1, DT_INT64))},
    {"Flatten", "", "shape", 17, NULL, flatten_shape, fold_copy, no_flops, grad_view, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"Squeeze", "", "shape", 17, axes_canon, squeeze_shape, fold_copy, no_flops, grad_view, ARITY(1, 2, 1, 1),
     REQUIRED(1)},
    {"Unsqueeze", "", "shape", 17, axes_canon, unsqueeze_shape, fold_copy, no_flops, grad_view, ARITY(2, 2, 1, 1),
     REQUIRED(2)},
    {"Transpose", "", "shape", 17, NULL, transpose_shape, transpose_fold, no_flops, grad_transpose, ARITY(1, 1, 1, 1),
     REQUIRED(1)},
    {"Concat", "", "shape", 17, concat_canon, concat_shape, concat_fold, no_flops, grad_concat, ARITY(1, -1, 1, 1),
     REQUIRED(ALL_INPUTS)},
    {"Split", "", "shape", 17, split_canon, split_shape, split_fold, no_flops, grad_split, ARITY(1, 2, 1, -1),
     REQUIRED(1)},
    {"Slice", "", "shape", 17, slice_canon, slice_shape, slice_fold, no_flops, grad_slice, ARITY(3, 5, 1, 1),
     REQUIRED(3)},
    {"Gather", "", "shape", 17, NULL, gather_shape, gather_fold, no_flops, grad_gather, ARITY(2, 2, 1, 1),
     REQUIRED(2)},
    {"GatherElements", "", "shape", 17, NULL, gather_elements_shape, NULL, no_flops, NULL, ARITY(2, 2, 1, 1),
     REQUIRED(2)},
    {"GatherND", "", "shape", 17, NULL, gather_nd_shape, NULL, no_flops, NULL, ARITY(2, 2, 1, 1), REQUIRED(2),
     DTYPES(IN_IS(1, DT_INT64))},
    {"ScatterElements", "", "shape", 17, NULL, scatter_elements_shape, NULL, no_flops, NULL, ARITY(3, 3, 1, 1),
     REQUIRED(3), DTYPES(IN_SAME(0, 2))},
    {"Scatter", "", "shape", 17, scatter_canon, scatter_elements_shape, NULL, no_flops, NULL, ARITY(3, 3, 1, 1),
     REQUIRED(3), DTYPES(IN_SAME(0, 2))},
    {"ScatterND", "", "shape", 17, NULL, scatter_nd_shape, NULL, no_flops, NULL, ARITY(3, 3, 1, 1), REQUIRED(3),
     DTYPES(IN_SAME(0, 2), IN_IS(1, DT_INT64))},
    {"Pad", "", "shape", 17, pad_canon, pad_shape, NULL, no_flops, grad_pad, ARITY(2, 3, 1, 1), REQUIRED(2),
     DTYPES(IN_IS(1, DT_INT64), IN_SAME(0, 2))},
    {"Expand", "", "shape", 17, NULL, expand_shape, expand_fold, no_flops, grad_expand, ARITY(2, 2, 1, 1),
     REQUIRED(2), DTYPES(IN_IS(1, DT_INT64))},
    {"Tile", "", "shape", 17, tile_canon, tile_shape, tile_fold, no_flops, grad_tile, ARITY(2, 2, 1, 1), REQUIRED(2),
     DTYPES(IN_IS(1, DT_INT64))},
    {"Range", "", "shape", 17, NULL, range_shape, range_fold, no_flops, NULL, ARITY(3, 3, 1, 1), REQUIRED(3),
     DTYPES(IN_SAME(0, 1), IN_SAME(0, 2))},
    {"Identity", "", "shape", 17, NULL, identity_shape, identity_fold, no_flops, grad_view, ARITY(1, 1, 1, 1)},
    {"Resize", "", "shape", 17, resize_canon, resize_shape, NULL, out0_numel, grad_resize, ARITY(1, 4, 1, 1),
     REQUIRED(1)},
    {"Upsample", "", "shape", 17, resize_canon, resize_shape, NULL, out0_numel, grad_resize, ARITY(1, 4, 1, 1),
     REQUIRED(1)},
    {"DepthToSpace", "", "shape", 17, NULL, depth_space_shape, NULL, no_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"SpaceToDepth", "", "shape", 17, NULL, depth_space_shape, NULL, no_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"Trilu", "", "shape", 17, NULL, trilu_cumsum_shape, NULL, no_flops, NULL, ARITY(1, 2, 1, 1), REQUIRED(1)},
    {"CumSum", "", "shape", 17, NULL, trilu_cumsum_shape, NULL, out0_numel, NULL, ARITY(2, 2, 1, 1), REQUIRED(2)},
    {"OneHot", "", "shape", 17, NULL, onehot_shape, NULL, no_flops, NULL, ARITY(3, 3, 1, 1), REQUIRED(3)},
    {"EyeLike", "", "shape", 17, NULL, eyelike_shape, NULL, no_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1)},
    {"Compress", "", "shape", 17, NULL, compress_shape, NULL, no_flops, NULL, ARITY(2, 2, 1, 1), REQUIRED(2),
     DTYPES(IN_IS(1, DT_BOOL))},
    {"TopK", "", "shape", 17, topk_canon, topk_shape, NULL, no_flops, NULL, ARITY(2, 2, 2, 2), REQUIRED(2),
     DTYPES(IN_IS(1, DT_INT64))},
    {"NonZero", "", "shape", 17, NULL, nonzero_shape, nonzero_fold, no_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1)},
    /* backward ops (onnxtune domain) */
    {"SliceGrad", ONNXTUNE_DOMAIN, "shape", 1, NULL, grad_scatter_shape, NULL, out0_numel, NULL, ARITY(1, 1, 1, 1),
     REQUIRED(ALL_INPUTS)},
    {"PadGrad", ONNXTUNE_DOMAIN, "shape", 1, NULL, grad_scatter_shape, NULL, out0_numel, NULL, ARITY(1, 1, 1, 1),
     REQUIRED(ALL_INPUTS)},
    {"GatherGrad", ONNXTUNE_DOMAIN, "shape", 1, NULL, grad_scatter_shape, NULL, out0_numel, NULL, ARITY(2, 2, 1, 1),
     REQUIRED(ALL_INPUTS)},
    {"ResizeGrad", ONNXTUNE_DOMAIN, "shape", 1, NULL, resize_grad_shape, NULL, out0_numel, NULL, ARITY(1, 3, 1, 1),
     REQUIRED(1)},
    {0},
};
