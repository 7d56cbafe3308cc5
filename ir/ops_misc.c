/* ops_misc.c - rules of ops that fit no other family: ReverseSequence-10, Det-11, TfIdfVectorizer-9
 * (integer inputs; string tensors are not supported anywhere), Unique-11 and NonMaxSuppression-11,
 * whose output sizes depend on their inputs' values: they are only folded (constant inputs), never
 * emitted. No gradients. */
#include "ir.h"

#include <math.h>
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

/* Stable merge sort of slice indices v[n] by unique_cmp (tmp: n scratch). */
static void unique_sort(const UniqueView *u, size_t *v, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2, i = 0, j = h, k = 0;
    unique_sort(u, v, tmp, h);
    unique_sort(u, v + h, tmp, n - h);
    while (i < h && j < n)
        tmp[k++] = unique_cmp(u, v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

/* Groups of equal slices: first[g] (the first occurrence), counts[g], and per slice its group; groups in
 * sorted order or in order of first occurrence. */
typedef struct UniqueResult {
    size_t n;               /* groups */
    size_t *first, *counts, *group_of;
} UniqueResult;

static Status unique_compute(Graph *g, const Node *n, const UniqueView *u, bool sorted, UniqueResult *r, Diag *d)
{
    size_t c = u->count;
    size_t *order = arena_alloc(g->arena, (c + 1) * sizeof *order);
    size_t *tmp = arena_alloc(g->arena, (c + 1) * sizeof *tmp);
    r->first = arena_alloc(g->arena, (c + 1) * sizeof *r->first);
    r->counts = arena_alloc(g->arena, (c + 1) * sizeof *r->counts);
    r->group_of = arena_alloc(g->arena, (c + 1) * sizeof *r->group_of);
    if (!order || !tmp || !r->first || !r->counts || !r->group_of)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < c; i++)
        order[i] = i;
    unique_sort(u, order, tmp, c); /* stable: of equal slices the first occurrence comes first */
    r->n = 0;
    for (size_t k = 0; k < c; k++) {
        if (k == 0 || unique_cmp(u, order[k - 1], order[k]) != 0)
            r->first[r->n++] = order[k];
        r->counts[r->n - 1]++;
        r->group_of[order[k]] = r->n - 1;
    }
    if (!sorted) { /* renumber the groups by first occurrence: the order slices first reach them */
        size_t *rank = tmp, next = 0;
        for (size_t a = 0; a < r->n; a++)
            rank[a] = SIZE_MAX;
        for (size_t i = 0; i < c; i++)
            if (rank[r->group_of[i]] == SIZE_MAX)
                rank[r->group_of[i]] = next++;
        for (size_t a = 0; a < r->n; a++)
            order[rank[a]] = r->first[a];
        size_t *counts = arena_alloc(g->arena, (r->n + 1) * sizeof *counts);
        if (!counts)
            return diag_node(d, n, ST_NOMEM, "out of memory");
        for (size_t a = 0; a < r->n; a++)
            counts[rank[a]] = r->counts[a];
        for (size_t i = 0; i < c; i++)
            r->group_of[i] = rank[r->group_of[i]];
        memcpy(r->first, order, r->n * sizeof *order);
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
        bool sorted = node_attr_int(n, "sorted", 1) != 0;
        if ((st = unique_view(n, &u, &axis, d)) || (st = unique_compute(g, n, &u, sorted, &r, d)))
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

/* ---- NonMaxSuppression-11: selected_indices [num_selected, 3] of (batch, class, box) ---- */

/* Box k of batch b as (y1, x1, y2, x2) with y1 <= y2, x1 <= x2. */
static void nms_box(const Tensor *boxes, size_t b, size_t nbox, size_t k, bool center, double out[4])
{
    double v[4];
    for (int i = 0; i < 4; i++)
        v[i] = tensor_get_f64(boxes, (b * nbox + k) * 4 + (size_t)i);
    if (center) { /* [x_center, y_center, width, height] */
        out[0] = v[1] - v[3] / 2, out[1] = v[0] - v[2] / 2, out[2] = v[1] + v[3] / 2, out[3] = v[0] + v[2] / 2;
        return;
    }
    out[0] = v[0] < v[2] ? v[0] : v[2], out[2] = v[0] < v[2] ? v[2] : v[0];
    out[1] = v[1] < v[3] ? v[1] : v[3], out[3] = v[1] < v[3] ? v[3] : v[1];
}

/* As ONNX Runtime: suppressed when IoU > threshold; no overlap or an empty box never suppresses. */
static bool nms_suppress(const double a[4], const double b[4], double iou_threshold)
{
    double ih = fmin(a[2], b[2]) - fmax(a[0], b[0]), iw = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (ih <= 0 || iw <= 0)
        return false;
    double inter = ih * iw, aa = (a[2] - a[0]) * (a[3] - a[1]), ab = (b[2] - b[0]) * (b[3] - b[1]);
    double uni = aa + ab - inter;
    if (aa <= 0 || ab <= 0 || uni <= 0)
        return false;
    return inter / uni > iou_threshold;
}

/* Run NMS on node n's constant inputs: out (arena, 3 per selection, may be NULL to count) and *count. */
static Status nms_compute(Graph *g, const Node *n, int64_t **out, size_t *count, Diag *d)
{
    const Tensor *boxes = n->inputs[0]->init, *scores = n->inputs[1]->init;
    const Value *mo = node_input(n, 2), *it = node_input(n, 3), *st = node_input(n, 4);
    size_t nb = (size_t)boxes->shape.dim[0], nbox = (size_t)boxes->shape.dim[1], nc = (size_t)scores->shape.dim[1];
    int64_t max_out = mo && mo->init->numel ? tensor_get_i64(mo->init, 0) : 0;
    double iou = it && it->init->numel ? tensor_get_f64(it->init, 0) : 0;
    bool has_st = st && st->init->numel;
    double score_threshold = has_st ? tensor_get_f64(st->init, 0) : 0;
    bool center = node_attr_int(n, "center_point_box", 0) != 0;
    size_t cap = nb * nc * (max_out > 0 ? ((size_t)max_out < nbox ? (size_t)max_out : nbox) : 0);
    size_t *cand = arena_alloc(g->arena, (nbox + 1) * sizeof *cand);
    size_t *sel = arena_alloc(g->arena, (nbox + 1) * sizeof *sel);
    int64_t *res = arena_alloc(g->arena, (cap * 3 + 1) * sizeof *res);
    if (!cand || !sel || !res)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    *count = 0;
    for (size_t b = 0; b < nb; b++)
        for (size_t c = 0; c < nc; c++) {
            size_t nk = 0, ns = 0;
            const size_t base = (b * nc + c) * nbox;
            for (size_t k = 0; k < nbox; k++) { /* by score, descending; ties: lower index first */
                double sk = tensor_get_f64(scores, base + k);
                if (has_st && !(sk > score_threshold))
                    continue;
                size_t j = nk++;
                while (j > 0 && tensor_get_f64(scores, base + cand[j - 1]) < sk) {
                    cand[j] = cand[j - 1];
                    j--;
                }
                cand[j] = k;
            }
            for (size_t i = 0; i < nk && (int64_t)ns < max_out; i++) {
                double bi[4], bj[4];
                bool keep = true;
                nms_box(boxes, b, nbox, cand[i], center, bi);
                for (size_t j = 0; j < ns && keep; j++) {
                    nms_box(boxes, b, nbox, sel[j], center, bj);
                    keep = !nms_suppress(bi, bj, iou);
                }
                if (!keep)
                    continue;
                sel[ns++] = cand[i];
                res[*count * 3] = (int64_t)b, res[*count * 3 + 1] = (int64_t)c, res[*count * 3 + 2] = (int64_t)cand[i];
                ++*count;
            }
        }
    if (out)
        *out = res;
    return ST_OK;
}

static bool all_const(const Node *n)
{
    for (int i = 0; i < n->ninputs; i++)
        if (n->inputs[i] && !value_is_const(n->inputs[i]))
            return false;
    return true;
}

#define NMS_FOLD_MAX_BOXES 4096

/* boxes [B, N, 4], scores [B, C, N], then optional scalars max_output_boxes_per_class, iou_threshold,
 * score_threshold. */
static Status nms_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *b = &n->inputs[0]->shape, *s = &n->inputs[1]->shape;
    char a1[128], a2[128];
    if ((b->rank >= 0 && (b->rank != 3 || (b->dim[2] >= 0 && b->dim[2] != 4))) || (s->rank >= 0 && s->rank != 3) ||
        (b->rank == 3 && s->rank == 3 && (dim_conflict(b, 0, s, 0) || dim_conflict(b, 1, s, 2))))
        return diag_node(d, n, ST_SHAPE, "boxes %s and scores %s must be [B, N, 4] and [B, C, N]",
                         shape_str(b, a1, sizeof a1), shape_str(s, a2, sizeof a2));
    for (int i = 2; i < n->ninputs; i++)
        if (n->inputs[i] && shape_numel_or0(&n->inputs[i]->shape) > 1)
            return diag_node(d, n, ST_SHAPE, "input %d '%s' must hold one value", i, n->inputs[i]->name);
    Shape out = shape_make(2, NULL);
    out.dim[1] = 3;
    if (all_const(n) && shape_is_static(b) && shape_is_static(s)) {
        if (b->dim[1] > NMS_FOLD_MAX_BOXES) /* the greedy selection is quadratic in the boxes */
            return diag_node(d, n, ST_UNSUPPORTED, "folding over %lld boxes (at most %d)", (long long)b->dim[1],
                             NMS_FOLD_MAX_BOXES);
        size_t count;
        if ((st = nms_compute(g, n, NULL, &count, d)))
            return st;
        out.dim[0] = (int64_t)count;
    }
    op_set_output(n, 0, DT_INT64, &out);
    return ST_OK;
}

static Status nms_fold(Graph *g, Node *n, Diag *d)
{
    Status st;
    int64_t *res;
    size_t count;
    Tensor *t;
    if ((st = nms_compute(g, n, &res, &count, d)) || (st = op_fold_output(g, n, 0, &t, d)))
        return st;
    if (count)
        memcpy(t->data, res, count * 3 * sizeof *res);
    return ST_OK;
}

const OpRule misc_rules[] = {
    {"ReverseSequence", "", "misc", 10, NULL, reverse_sequence_shape, NULL, flops_in0, NULL, ARITY(2, 2, 1, 1),
     REQUIRED(2), DTYPES(IN_IS(1, DT_INT64)), .defaults = {{"batch_axis", AT_INT, 1}, {"time_axis", AT_INT, 0}}},
    {"Det", "", "misc", 11, NULL, det_shape, NULL, det_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     DTYPES(IN_CLASS(0, TC_FLOAT))},
    {"Unique", "", "misc", 11, NULL, unique_shape, unique_fold, NULL, NULL, ARITY(1, 1, 1, 4), REQUIRED(1),
     .defaults = {{"sorted", AT_INT, 1}}},
    {"NonMaxSuppression", "", "misc", 11, NULL, nms_shape, nms_fold, NULL, NULL, ARITY(2, 5, 1, 1), REQUIRED(2),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_SAME(0, 1), IN_IS(2, DT_INT64), IN_CLASS(3, TC_FLOAT), IN_CLASS(4, TC_FLOAT)),
     .defaults = {{"center_point_box", AT_INT, 0}}},
    {"TfIdfVectorizer", "", "misc", 9, NULL, tfidf_shape, NULL, flops_in0, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     .defaults = {{"max_skip_count", AT_INT, 0}}},
    {0},
};
