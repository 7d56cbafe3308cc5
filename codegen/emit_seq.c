/* emit_seq.c - emitters of the sequence and optional ops. A sequence is one buffer holding its elements at
 * the offsets of seq_layout (ir/ops_seq.c), an optional the bytes of what it holds, so these ops are
 * memcpy's at offsets known at compile time, plus ConcatFromSequence and SplitToSequence on the
 * Concat/Split kernels. A position that is only known at run time (elements of one shape) is read from
 * its tensor; out of range it is clamped into range (ONNX calls it an error; a run never fails).
 * SequenceLength and OptionalHasElement fold at compile time; SequenceEmpty and an empty Optional have
 * no bytes; Optional(x) and OptionalGetElement are views. */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

/* A sequence's elements: offsets in its buffer and sizes (arrays in the generation's arena). */
typedef struct Layout {
    int n;
    size_t *off;
    size_t *bytes;
} Layout;

static Status layout_of(Cg *cg, const Value *v, Layout *l)
{
    size_t total;
    const SeqType *s = v->seq;
    if (!s || s->n < 0)
        return cg_unsupported(cg, "sequence '%s' of a length not known at compile time", v->name);
    l->off = arena_calloc(cg->g->arena, (size_t)s->n + 1, sizeof *l->off);
    l->bytes = arena_calloc(cg->g->arena, (size_t)s->n + 1, sizeof *l->bytes);
    if (!l->off || !l->bytes)
        return diag_error(cg->d, ST_NOMEM, "out of memory");
    if (!seq_layout(v->dtype, s->n, s->shapes, l->off, &total))
        return cg_unsupported(cg, "sequence '%s' with element shapes that are not static", v->name);
    l->n = s->n;
    for (int k = 0; k < s->n; k++) {
        size_t numel = 0;
        if (!shape_numel(&s->shapes[k], &numel))
            return cg_unsupported(cg, "sequence '%s': element %d is too large", v->name, k);
        l->bytes[k] = numel * dtype_size(v->dtype);
    }
    return ST_OK;
}

/* Element k of sequence v as an address expression (const for reading). */
static const char *at(Cg *cg, const Value *v, size_t off, bool write)
{
    return cg_fmt(cg, "((%sunsigned char *)%s + %zu)", write ? "" : "const ", cg_ptr(cg, v), off);
}

/* The run-time position of input i in [0, n) (insert: [0, n]), clamped, as the C variable p. */
static void runtime_position(Cg *cg, const Value *pos, int64_t n)
{
    cg_line(cg, "int64_t p = (int64_t)%s[0];", cg_ptr(cg, pos));
    cg_line(cg, "if (p < 0) p += %lld;", (long long)(n < 1 ? 1 : n));
    cg_line(cg, "if (p < 0) p = 0;");
    cg_line(cg, "if (p > %lld) p = %lld;", (long long)(n < 1 ? 0 : n - 1), (long long)(n < 1 ? 0 : n - 1));
}

/* The constant position of input i, normalised (absent: dflt). false when it is not constant. */
static bool const_position(const Node *n, int i, int64_t len, int64_t dflt, int64_t *p)
{
    const Value *v = node_input(n, i);
    if (!v) {
        *p = dflt;
        return true;
    }
    if (!v->init)
        return false;
    *p = tensor_get_i64(v->init, 0);
    if (*p < 0)
        *p += len;
    return true;
}

static void copy(Cg *cg, const char *to, const char *from, size_t bytes)
{
    if (bytes)
        cg_line(cg, "memcpy(%s, %s, %zu);", to, from, bytes);
}

static Status emit_seq_construct(Cg *cg, const Node *n)
{
    Layout y;
    Status st = layout_of(cg, n->outputs[0], &y);
    for (int k = 0; !st && k < n->ninputs; k++)
        copy(cg, at(cg, n->outputs[0], y.off[k], true), cg_ptr(cg, n->inputs[k]), y.bytes[k]);
    return st;
}

static Status emit_seq_insert(Cg *cg, const Node *n)
{
    Layout x, y;
    const Value *s = n->inputs[0], *t = n->inputs[1], *o = n->outputs[0];
    Status st = layout_of(cg, s, &x);
    if (!st)
        st = layout_of(cg, o, &y);
    if (st)
        return st;
    int64_t p;
    if (const_position(n, 2, x.n, x.n, &p)) {
        for (int k = 0, j = 0; k < y.n; k++)
            copy(cg, at(cg, o, y.off[k], true), k == p ? cg_ptr(cg, t) : at(cg, s, x.off[j++], false), y.bytes[k]);
        return ST_OK;
    }
    /* one element shape: element k at k * stride */
    size_t stride = y.n > 1 ? y.off[1] : 0;
    cg_line(cg, "int64_t p = (int64_t)%s[0];", cg_ptr(cg, n->inputs[2]));
    cg_line(cg, "if (p < 0) p += %d;", x.n);
    cg_line(cg, "if (p < 0) p = 0;");
    cg_line(cg, "if (p > %d) p = %d;", x.n, x.n);
    cg_line(cg, "for (int64_t k = 0, j = 0; k < %d; k++)", y.n);
    cg_line(cg, "    memcpy(%s + k * %zu, k == p ? (const void *)%s : (const void *)(%s + (j++) * %zu), %zu);",
            at(cg, o, 0, true), stride, cg_ptr(cg, t), at(cg, s, 0, false), stride, y.bytes[0]);
    return ST_OK;
}

static Status emit_seq_erase(Cg *cg, const Node *n)
{
    Layout x, y;
    const Value *s = n->inputs[0], *o = n->outputs[0];
    Status st = layout_of(cg, s, &x);
    if (!st)
        st = layout_of(cg, o, &y);
    if (st)
        return st;
    int64_t p;
    if (const_position(n, 1, x.n, x.n - 1, &p)) {
        for (int k = 0, j = 0; k < x.n; k++)
            if (k != p)
                copy(cg, at(cg, o, y.off[j++], true), at(cg, s, x.off[k], false), x.bytes[k]);
        return ST_OK;
    }
    size_t stride = x.n > 1 ? x.off[1] : 0;
    runtime_position(cg, n->inputs[1], x.n);
    cg_line(cg, "for (int64_t k = 0; k < %d; k++)", y.n);
    cg_line(cg, "    memcpy(%s + k * %zu, %s + (k < p ? k : k + 1) * %zu, %zu);", at(cg, o, 0, true), stride,
            at(cg, s, 0, false), stride, x.bytes[0]);
    return ST_OK;
}

static Status emit_seq_at(Cg *cg, const Node *n)
{
    Layout x;
    const Value *s = n->inputs[0], *o = n->outputs[0];
    Status st = layout_of(cg, s, &x);
    if (st)
        return st;
    int64_t p;
    if (const_position(n, 1, x.n, 0, &p)) {
        copy(cg, cg_ptr(cg, o), at(cg, s, x.off[p], false), x.bytes[p]);
        return ST_OK;
    }
    size_t stride = x.n > 1 ? x.off[1] : 0;
    runtime_position(cg, n->inputs[1], x.n);
    cg_line(cg, "memcpy(%s, %s + p * %zu, %zu);", cg_ptr(cg, o), at(cg, s, 0, false), stride, x.bytes[0]);
    return ST_OK;
}

/* The element pointers of sequence v as "(T)a, (T)b, ..." (caller frees). */
static char *elem_list(Cg *cg, const Value *v, const Layout *l, bool write)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        return NULL;
    for (int k = 0; k < l->n; k++)
        fprintf(f, "%s%s", k ? ", " : "", at(cg, v, l->off[k], write));
    fclose(f);
    return s;
}

static void outer_inner(const Shape *s, int axis, size_t *outer, size_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < s->rank; i++)
        if (i < axis)
            *outer *= (size_t)s->dim[i];
        else if (i > axis)
            *inner *= (size_t)s->dim[i];
}

static Status emit_concat_from_seq(Cg *cg, const Node *n)
{
    Layout x;
    const Value *s = n->inputs[0], *y = n->outputs[0];
    Status st = layout_of(cg, s, &x);
    if (st)
        return st;
    bool stack = node_attr_int(n, "new_axis", 0) != 0;
    int64_t axis = node_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += y->shape.rank;
    size_t outer, inner, *ad = calloc((size_t)x.n, sizeof *ad);
    char *xs = elem_list(cg, s, &x, false);
    if (!ad || !xs) {
        free(ad);
        free(xs);
        return diag_error(cg->d, ST_NOMEM, "out of memory");
    }
    outer_inner(&y->shape, (int)axis, &outer, &inner);
    for (int k = 0; k < x.n; k++)
        ad[k] = stack ? 1 : (size_t)s->seq->shapes[k].dim[axis];
    cg_line(cg, "concat_forward(%zu, %s, %d, (const void *const[]){%s}, %s, %zu, %zu);", dtype_size(y->dtype),
            cg_ptr(cg, y), x.n, xs, cg_sizes(cg, ad, (size_t)x.n), outer, inner);
    free(ad);
    free(xs);
    return ST_OK;
}

static Status emit_split_to_seq(Cg *cg, const Node *n)
{
    Layout y;
    const Value *x = n->inputs[0], *o = n->outputs[0];
    Status st = layout_of(cg, o, &y);
    if (st)
        return st;
    if (y.n == 0)
        return ST_OK;
    int64_t axis = node_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += x->shape.rank;
    bool drop = !node_input(n, 1) && node_attr_int(n, "keepdims", 1) == 0;
    size_t outer, inner, *ad = calloc((size_t)y.n, sizeof *ad);
    char *ys = elem_list(cg, o, &y, true);
    if (!ad || !ys) {
        free(ad);
        free(ys);
        return diag_error(cg->d, ST_NOMEM, "out of memory");
    }
    outer_inner(&x->shape, (int)axis, &outer, &inner);
    for (int k = 0; k < y.n; k++)
        ad[k] = drop ? 1 : (size_t)o->seq->shapes[k].dim[axis];
    cg_line(cg, "split_forward(%zu, (void *const[]){%s}, %d, %s, %s, %zu, %zu);", dtype_size(x->dtype), ys, y.n,
            cg_sizes(cg, ad, (size_t)y.n), cg_ptr(cg, x), outer, inner);
    free(ad);
    free(ys);
    return ST_OK;
}

/* Optional(x), OptionalGetElement: the same bytes (views); emitted only as a graph output's copy. */
static Status emit_same_bytes(Cg *cg, const Node *n)
{
    size_t bytes = 0;
    if (!value_nbytes(n->outputs[0], &bytes))
        return cg_unsupported(cg, "'%s' has a type that is not static", n->outputs[0]->name);
    copy(cg, cg_ptr(cg, n->outputs[0]), cg_ptr(cg, n->inputs[0]), bytes);
    return ST_OK;
}

const Emitter seq_emitters[] = {
    EMIT("SequenceConstruct", emit_seq_construct, NULL, 0),
    EMIT("SequenceInsert", emit_seq_insert, NULL, 0),
    EMIT("SequenceErase", emit_seq_erase, NULL, 0),
    EMIT("SequenceAt", emit_seq_at, NULL, 0),
    EMIT("ConcatFromSequence", emit_concat_from_seq, NULL, 0),
    EMIT("SplitToSequence", emit_split_to_seq, NULL, 0),
    EMIT("SequenceEmpty", emit_same_bytes, NULL, 0),     /* no bytes: never emitted */
    EMIT("Optional", emit_same_bytes, NULL, EM_VIEW),    /* without an input: no bytes, never emitted */
    EMIT("OptionalGetElement", emit_same_bytes, NULL, EM_VIEW),
    {0},
};
