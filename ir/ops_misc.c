/* ops_misc.c - rules of ops that fit no other family: ReverseSequence-10, Det-11, TfIdfVectorizer-9
 * (integer inputs; string tensors are not supported anywhere) and Unique-11, whose output sizes depend
 * on its input's values: it is only folded (a constant input), never emitted. No gradients. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static double flops_in0(const Node *n)
{
    return shape_numel_or0(&n->inputs[0]->shape);
}

/* ReverseSequence-10: x [.., batch, .., time, ..] (batch_axis, time_axis each 0 or 1), sequence_lens
 * int64 [batch] -> y of x's shape, the first sequence_lens[b] steps of each batch entry reversed. */
static Status reverse_sequence_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Shape *x = &n->inputs[0]->shape, *l = &n->inputs[1]->shape;
    int64_t ba = node_attr_int(n, "batch_axis", 1), ta = node_attr_int(n, "time_axis", 0);
    char a[128], b[128];
    if ((ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
        return diag_node(d, n, ST_INVALID, "batch_axis %lld and time_axis %lld must be 0 and 1 or 1 and 0",
                         (long long)ba, (long long)ta);
    if (x->rank >= 0 && x->rank < 2)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be at least 2-D", shape_str(x, a, sizeof a));
    if (l->rank >= 0 && (l->rank != 1 || (x->rank >= 2 && dim_conflict(l, 0, x, (int)ba))))
        return diag_node(d, n, ST_SHAPE, "input 1 (sequence_lens) shape %s must be [batch] of input 0 %s",
                         shape_str(l, a, sizeof a), shape_str(x, b, sizeof b));
    op_set_output(n, 0, n->inputs[0]->dtype, x->rank >= 0 ? x : NULL);
    return ST_OK;
}

/* Det-11: x [*, M, M] -> [*]. */
static Status det_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Shape *x = &n->inputs[0]->shape;
    char a[128];
    if (x->rank < 0) {
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    if (x->rank < 2 || dim_conflict(x, x->rank - 2, x, x->rank - 1))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be [*, M, M]", shape_str(x, a, sizeof a));
    Shape out = *x;
    out.rank -= 2;
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

static double det_flops(const Node *n)
{
    const Shape *x = &n->inputs[0]->shape;
    return x->rank >= 2 && x->dim[x->rank - 1] > 0 ? flops_in0(n) * (double)x->dim[x->rank - 1] / 3 : 0;
}

/* TfIdfVectorizer-9: X [C] or [N, C] of int32/int64 -> float32 [max(ngram_indexes) + 1] or [N, that]. */
static Status tfidf_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    const Shape *x = &n->inputs[0]->shape;
    char a[128];
    IntList pool, counts, idx;
    if (n->inputs[0]->dtype == DT_STRING)
        return diag_node(d, n, ST_UNSUPPORTED, "string input (only int32 and int64 are supported)");
    if (!op_attr_ints(n, "ngram_counts", &counts) || !op_attr_ints(n, "ngram_indexes", &idx) ||
        !op_attr_ints(n, "pool_int64s", &pool))
        return diag_node(d, n, ST_UNSUPPORTED, "needs ngram_counts, ngram_indexes and pool_int64s (pool_strings "
                         "is not supported)");
    int64_t minn = node_attr_int(n, "min_gram_length", 0), maxn = node_attr_int(n, "max_gram_length", 0);
    if (minn < 1 || maxn < minn || node_attr_int(n, "max_skip_count", 0) < 0)
        return diag_node(d, n, ST_INVALID, "min_gram_length %lld, max_gram_length %lld: need 1 <= min <= max",
                         (long long)minn, (long long)maxn);
    int64_t width = 0;
    for (size_t i = 0; i < idx.n; i++) {
        if (idx.v[i] < 0)
            return diag_node(d, n, ST_INVALID, "ngram_indexes[%zu] is negative", i);
        width = idx.v[i] + 1 > width ? idx.v[i] + 1 : width;
    }
    for (size_t i = 0; i < counts.n; i++)
        if (counts.v[i] < 0 || (size_t)counts.v[i] > pool.n || (i && counts.v[i] < counts.v[i - 1]))
            return diag_node(d, n, ST_INVALID, "ngram_counts[%zu] = %lld is not an offset into pool_int64s", i,
                             (long long)counts.v[i]);
    size_t total = 0;
    for (size_t i = 0; i < counts.n; i++)
        total += ((i + 1 < counts.n ? (size_t)counts.v[i + 1] : pool.n) - (size_t)counts.v[i]) / (i + 1);
    if (total != idx.n)
        return diag_node(d, n, ST_INVALID, "pool_int64s holds %zu n-grams but ngram_indexes has %zu values", total,
                         idx.n);
    const Attr *w = node_attr(n, "weights");
    if (w && w->type == AT_FLOATS && w->n != idx.n)
        return diag_node(d, n, ST_INVALID, "weights has %zu values for %zu ngram_indexes", w->n,
                         idx.n);
    if (x->rank > 2 || x->rank == 0)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be [C] or [N, C]", shape_str(x, a, sizeof a));
    Shape out = shape_make(x->rank < 0 ? 1 : x->rank, NULL);
    if (x->rank == 2)
        dim_copy(&out, 0, x, 0);
    out.dim[out.rank - 1] = width;
    op_set_output(n, 0, DT_FLOAT, x->rank < 0 ? NULL : &out);
    return ST_OK;
}

/* ---- Unique-11: numpy.unique(x, axis, return_index, return_inverse, return_counts) ---- */

/* x as [outer, count, inner]: the slices along the axis (each element when flattened). */
typedef struct UniqueView {
    const Tensor *x;
    size_t outer, count, inner;
    bool by_int;            /* compare as int64 (exact), else as double */
} UniqueView;

/* Lexicographic order of slices a and b over (outer, inner) in C order; NaNs compare equal. */
static int unique_cmp(const UniqueView *u, size_t a, size_t b)
{
    for (size_t o = 0; o < u->outer; o++)
        for (size_t i = 0; i < u->inner; i++) {
            size_t ia = (o * u->count + a) * u->inner + i, ib = (o * u->count + b) * u->inner + i;
            if (u->by_int) {
                int64_t p = tensor_get_i64(u->x, ia), q = tensor_get_i64(u->x, ib);
                if (p != q)
                    return p < q ? -1 : 1;
            } else {
                double p = tensor_get_f64(u->x, ia), q = tensor_get_f64(u->x, ib);
                if (p < q)
                    return -1;
                if (p > q)
                    return 1;
            }
        }
    return 0;
}

/* Groups of equal slices: first[g] (the first occurrence), counts[g], and per slice its group; groups in
 * sorted order or in order of first occurrence. An insertion sort: folding only sees small constants. */
typedef struct UniqueResult {
    size_t n;               /* groups */
    size_t *first, *counts, *group_of;
} UniqueResult;

static Status unique_compute(Graph *g, const Node *n, const UniqueView *u, bool sorted, UniqueResult *r, Diag *d)
{
    size_t c = u->count;
    size_t *order = arena_alloc(g->arena, (c + 1) * sizeof *order);
    r->first = arena_alloc(g->arena, (c + 1) * sizeof *r->first);
    r->counts = arena_alloc(g->arena, (c + 1) * sizeof *r->counts);
    r->group_of = arena_alloc(g->arena, (c + 1) * sizeof *r->group_of);
    if (!order || !r->first || !r->counts || !r->group_of)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < c; i++) { /* stable: equal slices keep their order, the first comes first */
        size_t j = i;
        while (j > 0 && unique_cmp(u, order[j - 1], i) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    r->n = 0;
    for (size_t k = 0; k < c; k++) {
        if (k == 0 || unique_cmp(u, order[k - 1], order[k]) != 0)
            r->first[r->n++] = order[k];
        r->counts[r->n - 1]++;
        r->group_of[order[k]] = r->n - 1;
    }
    if (!sorted) { /* renumber the groups by first occurrence */
        size_t *rank = arena_alloc(g->arena, (r->n + 1) * sizeof *rank);
        size_t *first = arena_alloc(g->arena, (r->n + 1) * sizeof *first);
        size_t *counts = arena_alloc(g->arena, (r->n + 1) * sizeof *counts);
        if (!rank || !first || !counts)
            return diag_node(d, n, ST_NOMEM, "out of memory");
        for (size_t a = 0; a < r->n; a++)
            for (size_t b = 0; b < r->n; b++)
                rank[a] += r->first[b] < r->first[a];
        for (size_t a = 0; a < r->n; a++) {
            first[rank[a]] = r->first[a];
            counts[rank[a]] = r->counts[a];
        }
        for (size_t i = 0; i < c; i++)
            r->group_of[i] = rank[r->group_of[i]];
        r->first = first;
        r->counts = counts;
    }
    return ST_OK;
}

/* The view of node n's input (shape static), axis < 0 when flattened. */
static Status unique_view(const Node *n, UniqueView *u, int *axis, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    *axis = -1;
    u->x = x->init;
    u->by_int = dtype_is_int(x->dtype) || x->dtype == DT_BOOL;
    u->outer = u->inner = 1;
    u->count = (size_t)shape_numel_or0(&x->shape);
    if (node_attr(n, "axis")) {
        if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->shape.rank, axis, d)))
            return st;
        u->count = (size_t)x->shape.dim[*axis];
        for (int i = 0; i < x->shape.rank; i++)
            if (i < *axis)
                u->outer *= (size_t)x->shape.dim[i];
            else if (i > *axis)
                u->inner *= (size_t)x->shape.dim[i];
    }
    return ST_OK;
}

/* Y: the unique slices; indices: first occurrences; inverse_indices: each slice's group; counts. The sizes
 * are known only for a constant input. */
static Status unique_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *x = n->inputs[0];
    if (x->dtype == DT_STRING)
        return diag_node(d, n, ST_UNSUPPORTED, "string input");
    if (x->shape.rank < 0) {
        for (int i = 0; i < n->noutputs; i++)
            op_set_output(n, i, i ? DT_INT64 : x->dtype, NULL);
        return ST_OK;
    }
    int axis = -1;
    if (node_attr(n, "axis") && (st = op_axis(n, "axis", node_attr_int(n, "axis", 0), x->shape.rank, &axis, d)))
        return st;
    int64_t nu = -1, count = axis >= 0 ? x->shape.dim[axis] : -1;
    if (axis < 0 && shape_is_static(&x->shape))
        count = (int64_t)shape_numel_or0(&x->shape);
    if (value_is_const(x)) {
        UniqueView u;
        UniqueResult r;
        if ((st = unique_view(n, &u, &axis, d)) || (st = unique_compute(g, n, &u, node_attr_int(n, "sorted", 1), &r, d)))
            return st;
        nu = (int64_t)r.n;
    }
    Shape y = axis >= 0 ? x->shape : shape_make(1, NULL), one = shape_make(1, NULL), inv = shape_make(1, NULL);
    y.dim[axis >= 0 ? axis : 0] = nu;
    y.sym[axis >= 0 ? axis : 0] = NULL;
    one.dim[0] = nu;
    inv.dim[0] = count;
    op_set_output(n, 0, x->dtype, &y);
    op_set_output(n, 1, DT_INT64, &one);
    op_set_output(n, 2, DT_INT64, &inv);
    op_set_output(n, 3, DT_INT64, &one);
    return ST_OK;
}

static Status unique_fold(Graph *g, Node *n, Diag *d)
{
    Status st;
    UniqueView u;
    UniqueResult r;
    int axis;
    if ((st = unique_view(n, &u, &axis, d)) || (st = unique_compute(g, n, &u, node_attr_int(n, "sorted", 1), &r, d)))
        return st;
    Tensor *t[4] = {0};
    for (int i = 0; i < n->noutputs && i < 4; i++)
        if ((st = op_fold_output(g, n, i, &t[i], d)))
            return st;
    size_t es = dtype_size(u.x->dtype);
    for (size_t o = 0; o < u.outer; o++)
        for (size_t k = 0; k < r.n; k++)
            memcpy((char *)t[0]->data + (o * r.n + k) * u.inner * es,
                   (const char *)u.x->data + (o * u.count + r.first[k]) * u.inner * es, u.inner * es);
    for (size_t k = 0; k < r.n; k++) {
        if (t[1])
            ((int64_t *)t[1]->data)[k] = (int64_t)r.first[k];
        if (t[3])
            ((int64_t *)t[3]->data)[k] = (int64_t)r.counts[k];
    }
    for (size_t i = 0; t[2] && i < u.count; i++)
        ((int64_t *)t[2]->data)[i] = (int64_t)r.group_of[i];
    return ST_OK;
}

const OpRule misc_rules[] = {
    {"ReverseSequence", "", "misc", 10, NULL, reverse_sequence_shape, NULL, flops_in0, NULL, ARITY(2, 2, 1, 1),
     REQUIRED(2), DTYPES(IN_IS(1, DT_INT64)), .defaults = {{"batch_axis", AT_INT, 1}, {"time_axis", AT_INT, 0}}},
    {"Det", "", "misc", 11, NULL, det_shape, NULL, det_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     DTYPES(IN_CLASS(0, TC_FLOAT))},
    {"Unique", "", "misc", 11, NULL, unique_shape, unique_fold, NULL, NULL, ARITY(1, 1, 1, 4), REQUIRED(1),
     .defaults = {{"sorted", AT_INT, 1}}},
    {"TfIdfVectorizer", "", "misc", 9, NULL, tfidf_shape, NULL, flops_in0, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     .defaults = {{"max_skip_count", AT_INT, 0}}},
    {0},
};
