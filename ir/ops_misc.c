/* ops_misc.c - rules of ops that fit no other family: ReverseSequence-10, Det-11 and TfIdfVectorizer-9
 * (integer inputs; string tensors are not supported anywhere). Nothing folds; no gradients. */
#include "ir.h"

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

const OpRule misc_rules[] = {
    {"ReverseSequence", "", "misc", 10, NULL, reverse_sequence_shape, NULL, flops_in0, NULL, ARITY(2, 2, 1, 1),
     REQUIRED(2), DTYPES(IN_IS(1, DT_INT64)), .defaults = {{"batch_axis", AT_INT, 1}, {"time_axis", AT_INT, 0}}},
    {"Det", "", "misc", 11, NULL, det_shape, NULL, det_flops, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     DTYPES(IN_CLASS(0, TC_FLOAT))},
    {"TfIdfVectorizer", "", "misc", 9, NULL, tfidf_shape, NULL, flops_in0, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     .defaults = {{"max_skip_count", AT_INT, 0}}},
    {0},
};
