/* emit_misc.c - emitters of ReverseSequence (any dtype, by element size), TfIdfVectorizer (int32/int64
 * input; its pool and weights printed as static arrays) and Det (float32 kernel, other float types
 * through EM_F32 copies) on kernels/misc.c. */
#include "emit.h"

#include <string.h>

static Status emit_reverse_sequence(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0];
    size_t rest = 1;
    for (int i = 2; i < x->shape.rank; i++)
        rest *= (size_t)x->shape.dim[i];
    cg_line(cg, "reverse_sequence_forward(%s, %s, %s, %lld, %lld, %zu, %zu, %d);", cg_ptr(cg, n->outputs[0]),
            cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), (long long)x->shape.dim[0], (long long)x->shape.dim[1], rest,
            dtype_size(x->dtype), (int)node_attr_int(n, "batch_axis", 1));
    return ST_OK;
}

static Status emit_det(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0];
    int64_t m = x->shape.dim[x->shape.rank - 1];
    if (m > 64)
        return cg_unsupported(cg, "matrices larger than 64x64 (%lldx%lld)", (long long)m, (long long)m);
    cg_line(cg, "det_forward(%s, %s, %zu, %lld);", cg_ptr(cg, n->outputs[0]), cg_ptr(cg, x),
            cg_numel(n->outputs[0]), (long long)m);
    return ST_OK;
}

static Status emit_tfidf(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    if (x->dtype != DT_INT32 && x->dtype != DT_INT64)
        return cg_unsupported(cg, "input of %s (int32 and int64 are supported)", dtype_name(x->dtype));
    const char *mode = node_attr_string(n, "mode", "TF");
    int m = strcmp(mode, "TF") == 0 ? 0 : strcmp(mode, "IDF") == 0 ? 1 : strcmp(mode, "TFIDF") == 0 ? 2 : -1;
    if (m < 0)
        return cg_unsupported(cg, "mode '%s'", mode);
    IntList pool, starts, idx;
    op_attr_ints(n, "pool_int64s", &pool);
    op_attr_ints(n, "ngram_counts", &starts);
    op_attr_ints(n, "ngram_indexes", &idx);
    const Attr *w = node_attr(n, "weights");
    size_t rows = x->shape.rank == 2 ? (size_t)x->shape.dim[0] : 1;
    cg_line(cg, "static const int64_t pool[%zu] = %s;", pool.n ? pool.n : 1,
            pool.n ? cg_i64s(cg, pool.v, pool.n) + strlen("(const int64_t[])") : "{0}");
    cg_line(cg, "static const int64_t starts[%zu] = %s;", starts.n ? starts.n : 1,
            starts.n ? cg_i64s(cg, starts.v, starts.n) + strlen("(const int64_t[])") : "{0}");
    cg_line(cg, "static const int64_t index[%zu] = %s;", idx.n ? idx.n : 1,
            idx.n ? cg_i64s(cg, idx.v, idx.n) + strlen("(const int64_t[])") : "{0}");
    if (w && w->type == AT_FLOATS && w->n) {
        cg_line(cg, "static const float weights[%zu] = {", w->n);
        for (size_t i = 0; i < w->n; i++)
            cg_line(cg, "    %s,", cg_float(cg, w->floats[i]));
        cg_line(cg, "};");
    }
    cg_line(cg, "tfidf_forward(%s, %s, %s, %zu, %lld, pool, %zu, starts, %zu, index, %s, %lld, %lld, %lld, %lld, %d);",
            cg_ptr(cg, y), cg_rtdtype(x->dtype), cg_ptr(cg, x), rows, (long long)x->shape.dim[x->shape.rank - 1],
            pool.n, starts.n, w && w->type == AT_FLOATS && w->n ? "weights" : "NULL",
            (long long)y->shape.dim[y->shape.rank - 1], (long long)node_attr_int(n, "min_gram_length", 1),
            (long long)node_attr_int(n, "max_gram_length", 1), (long long)node_attr_int(n, "max_skip_count", 0), m);
    return ST_OK;
}

const Emitter misc_emitters[] = {
    EMIT("ReverseSequence", emit_reverse_sequence, NULL, 0),
    EMIT("Det", emit_det, NULL, EM_F32),
    EMIT("TfIdfVectorizer", emit_tfidf, NULL, 0),
    {0},
};
