/* ops_matmul.c - rules of the matrix products: Gemm (opset 13), MatMul (numpy semantics, 1-D included)
 * and Einsum (shape rule for explicit and implicit equations with ellipsis). Products are not folded:
 * constant matrix products do not occur in exported models and could be costly at compile time. */
#include "ir.h"

#include <ctype.h>
#include <string.h>

static char *shp(const Shape *s, char *buf)
{
    return shape_str(s, buf, 128);
}

/* ======================================================================== Gemm */

/* Gemm-1 and -6 carried broadcast (C is broadcast to [M,N] when 1; otherwise C must be [M,N], which
 * unidirectional broadcasting also accepts), so dropping it gives the Gemm-7+ meaning. Gemm-11 made C
 * optional; nothing to rewrite for that. */
static Status canon_gemm(Graph *g, Node *n, Diag *d)
{
    node_remove_attr(n, "broadcast");
    return ST_OK;
}

static Status shape_gemm(Graph *g, Node *n, Diag *d)
{
    const Value *a = n->inputs[0], *b = n->inputs[1], *c = node_input(n, 2);
    char s1[128], s2[128];
    if (a->shape.rank >= 0 && a->shape.rank != 2)
        return diag_node(d, n, ST_SHAPE, "input 0 (A) '%s' must be 2-D, not %s", a->name, shp(&a->shape, s1));
    if (b->shape.rank >= 0 && b->shape.rank != 2)
        return diag_node(d, n, ST_SHAPE, "input 1 (B) '%s' must be 2-D, not %s", b->name, shp(&b->shape, s1));
    bool ta = node_attr_int(n, "transA", 0) != 0, tb = node_attr_int(n, "transB", 0) != 0;
    Shape out = shape_make(2, NULL);
    if (a->shape.rank == 2)
        dim_copy(&out, 0, &a->shape, ta ? 1 : 0);
    if (b->shape.rank == 2)
        dim_copy(&out, 1, &b->shape, tb ? 0 : 1);
    if (a->shape.rank == 2 && b->shape.rank == 2 && dim_conflict(&a->shape, ta ? 0 : 1, &b->shape, tb ? 1 : 0))
        return diag_node(d, n, ST_SHAPE, "inner dims differ: input 0 (A) %s%s has K=%lld, input 1 (B) %s%s has K=%lld",
                         shp(&a->shape, s1), ta ? " transposed" : "", (long long)a->shape.dim[ta ? 0 : 1],
                         shp(&b->shape, s2), tb ? " transposed" : "", (long long)b->shape.dim[tb ? 1 : 0]);
    if (c && c->shape.rank >= 0) {
        /* C broadcasts unidirectionally to [M,N] */
        bool ok = c->shape.rank <= 2;
        for (int k = 0; ok && k < c->shape.rank; k++) {
            int j = 2 - c->shape.rank + k;
            ok = !(c->shape.dim[k] >= 0 && c->shape.dim[k] != 1 && dim_conflict(&c->shape, k, &out, j));
        }
        if (!ok)
            return diag_node(d, n, ST_SHAPE, "input 2 (C) shape %s does not broadcast to the output [M,N] = %s",
                             shp(&c->shape, s1), shp(&out, s2));
    }
    op_set_output(n, 0, a->dtype, &out);
    return ST_OK;
}

static double flops_gemm(const Node *n)
{
    if (n->ninputs < 1 || !n->inputs[0] || n->noutputs < 1)
        return 0;
    const Shape *a = &n->inputs[0]->shape, *y = &n->outputs[0]->shape;
    if (a->rank != 2 || !shape_is_static(a) || !shape_is_static(y))
        return 0;
    double k = (double)a->dim[node_attr_int(n, "transA", 0) ? 0 : 1];
    return shape_numel_or0(y) * k;
}

/* A backward Gemm: alpha * op(a) @ op(b) with op = transpose when ta / tb. */
static Value *grad_gemm_node(GradCtx *c, const Node *fwd, Value *a, Value *b, bool ta, bool tb, float alpha,
                             Diag *d)
{
    Graph *g = grad_graph(c);
    Node *m = grad_new_node(c, fwd, "", "Gemm", 2, (Value *[]){a, b}, 1, d);
    if (!m || (ta && node_set_attr_int(g, m, "transA", 1, d)) || (tb && node_set_attr_int(g, m, "transB", 1, d)) ||
        (alpha != 1.0f && node_set_attr_float(g, m, "alpha", alpha, d)) || grad_finish_node(c, m, d))
        return NULL;
    return m->outputs[0];
}

/* Y = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T (transA, transB):
 *   d op(A) = alpha * dY @ op(B)^T,   d op(B) = alpha * op(A)^T @ dY,   dC = unbroadcast(beta * dY).
 * Each is one Gemm with the transposes folded into its flags (no Transpose nodes). */
static Status grad_gemm(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    Value *a = n->inputs[0], *b = n->inputs[1], *cc = node_input(n, 2);
    bool ta = node_attr_int(n, "transA", 0) != 0, tb = node_attr_int(n, "transB", 0) != 0;
    float alpha = node_attr_float(n, "alpha", 1.0f), beta = node_attr_float(n, "beta", 1.0f);
    if (grad_needed(c, n, 0)) {
        /* dA = alpha dY op(B)^T; with transA, dA = (that)^T = alpha op(B) dY^T */
        Value *da = ta ? grad_gemm_node(c, n, b, dy, tb, true, alpha, d)
                       : grad_gemm_node(c, n, dy, b, false, !tb, alpha, d);
        if (!da || grad_accumulate(c, n, 0, da, d))
            return d->status;
    }
    if (grad_needed(c, n, 1)) {
        /* dB = alpha op(A)^T dY; with transB, dB = alpha dY^T op(A) */
        Value *db = tb ? grad_gemm_node(c, n, dy, a, true, ta, alpha, d)
                       : grad_gemm_node(c, n, a, dy, !ta, false, alpha, d);
        if (!db || grad_accumulate(c, n, 1, db, d))
            return d->status;
    }
    if (cc && grad_needed(c, n, 2)) {
        Value *dc = grad_unbroadcast(c, n, dy, &cc->shape, d);
        if (dc && beta != 1.0f) {
            Value *k = graph_const_scalar(grad_graph(c), "gemm_beta", dc->dtype, beta, d);
            Node *m = k ? grad_add_node(c, n, "", "Mul", 2, (Value *[]){dc, k}, 1, d) : NULL;
            dc = m ? m->outputs[0] : NULL;
        }
        if (!dc || grad_accumulate(c, n, 2, dc, d))
            return d->status;
    }
    return ST_OK;
}

/* ======================================================================== MatMul */

/* numpy.matmul: a 1-D A is [1,K] and a 1-D B is [K,1] with that dim removed afterwards; the batch dims
 * (all but the last two) broadcast. */
static Status shape_matmul(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Value *av = n->inputs[0], *bv = n->inputs[1];
    char s1[128], s2[128];
    for (int i = 0; i < 2; i++)
        if (n->inputs[i]->shape.rank == 0)
            return diag_node(d, n, ST_SHAPE, "input %d '%s' is a scalar; MatMul needs rank >= 1", i, n->inputs[i]->name);
    if (av->shape.rank < 0 || bv->shape.rank < 0) {
        op_set_output(n, 0, av->dtype, NULL);
        return ST_OK;
    }
    Shape a = av->shape, b = bv->shape;
    bool a1 = a.rank == 1, b1 = b.rank == 1;
    if (a1) { /* [K] -> [1,K] */
        a.rank = 2, a.dim[1] = a.dim[0], a.sym[1] = a.sym[0], a.dim[0] = 1, a.sym[0] = NULL;
    }
    if (b1) { /* [K] -> [K,1] */
        b.rank = 2, b.dim[1] = 1, b.sym[1] = NULL;
    }
    if (dim_conflict(&a, a.rank - 1, &b, b.rank - 2))
        return diag_node(d, n, ST_SHAPE, "inner dims differ: input 0 %s has K=%lld, input 1 %s has K=%lld",
                         shp(&av->shape, s1), (long long)a.dim[a.rank - 1], shp(&bv->shape, s2),
                         (long long)b.dim[b.rank - 2]);
    Shape ab = shape_make(a.rank - 2, NULL), bb = shape_make(b.rank - 2, NULL), batch;
    for (int i = 0; i < ab.rank; i++)
        dim_copy(&ab, i, &a, i);
    for (int i = 0; i < bb.rank; i++)
        dim_copy(&bb, i, &b, i);
    if ((st = shape_broadcast(n, 0, &ab, 1, &bb, &batch, d)))
        return st;
    if (batch.rank + 2 > IR_MAX_RANK)
        return diag_node(d, n, ST_UNSUPPORTED, "rank above %d", IR_MAX_RANK);
    Shape out = batch;
    if (!a1)
        dim_copy(&out, out.rank++, &a, a.rank - 2);
    if (!b1)
        dim_copy(&out, out.rank++, &b, b.rank - 1);
    op_set_output(n, 0, av->dtype, &out);
    return ST_OK;
}

static double flops_matmul(const Node *n)
{
    if (n->ninputs < 1 || !n->inputs[0] || n->noutputs < 1)
        return 0;
    const Shape *a = &n->inputs[0]->shape;
    if (a->rank < 1 || a->dim[a->rank - 1] < 0)
        return 0;
    return shape_numel_or0(&n->outputs[0]->shape) * (double)a->dim[a->rank - 1];
}

/* One backward node with one output (default domain); NULL on error (the Diag says why). */
static Value *bw1(GradCtx *c, const Node *fwd, const char *op, int nin, Value *const *in, Diag *d)
{
    Node *m = grad_add_node(c, fwd, "", op, nin, in, 1, d);
    return m ? m->outputs[0] : NULL;
}

/* v reshaped to s (v itself when the shapes agree). */
static Value *grad_reshape(GradCtx *c, const Node *fwd, Value *v, const Shape *s, Diag *d)
{
    if (shape_equal(&v->shape, s))
        return v;
    Value *t = graph_const_ints(grad_graph(c), "grad_shape", s->dim, (size_t)s->rank, d);
    return t ? bw1(c, fwd, "Reshape", 2, (Value *[]){v, t}, d) : NULL;
}

/* v with its last two dims swapped. */
static Value *grad_swap_last(GradCtx *c, const Node *fwd, Value *v, Diag *d)
{
    int r = v->shape.rank;
    int64_t perm[IR_MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    Node *m = grad_new_node(c, fwd, "", "Transpose", 1, &v, 1, d);
    if (!m || node_set_attr_ints(grad_graph(c), m, "perm", perm, (size_t)r, d) || grad_finish_node(c, m, d))
        return NULL;
    return m->outputs[0];
}

/* Y[b..., M, N] = A[b..., M, K] @ B[b..., K, N] (numpy.matmul: a 1-D A is [1,K], a 1-D B is [K,1]):
 *   dA = reduce(dY @ B^T) to A's shape,  dB = reduce(A^T @ dY) to B's shape (over broadcast batch dims).
 * When B has no batch dims (a weight: x[b,T,K] @ W[K,N]) the batch folds into M and both are one Gemm:
 *   dA = dY[bM,N] @ W^T,  dW = A[bM,K]^T @ dY[bM,N]  (no batched product, no ReduceSum). */
static Status grad_matmul(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    Value *a = n->inputs[0], *b = n->inputs[1];
    bool need_a = grad_needed(c, n, 0), need_b = grad_needed(c, n, 1);
    char s1[128], s2[128];
    if (!shape_is_static(&a->shape) || !shape_is_static(&b->shape))
        return diag_node(d, n, ST_SHAPE, "training needs static shapes, but the inputs are %s and %s (pass --batch)",
                         shp(&a->shape, s1), shp(&b->shape, s2));
    /* the views with both matrix dims: A' [a.., M, K], B' [b.., K, N], dY' [batch.., M, N] */
    bool a1 = a->shape.rank == 1, b1 = b->shape.rank == 1;
    Shape as = a1 ? shape_make(2, (int64_t[]){1, a->shape.dim[0]}) : a->shape;
    Shape bs = b1 ? shape_make(2, (int64_t[]){b->shape.dim[0], 1}) : b->shape;
    int64_t m = as.dim[as.rank - 2], k = as.dim[as.rank - 1], nn = bs.dim[bs.rank - 1];
    int nbatch = dy->shape.rank - !a1 - !b1;
    Shape ys = shape_make(nbatch + 2, NULL);
    for (int i = 0; i < nbatch; i++)
        ys.dim[i] = dy->shape.dim[i];
    ys.dim[nbatch] = m;
    ys.dim[nbatch + 1] = nn;
    Value *g = grad_reshape(c, n, dy, &ys, d);
    Value *a2 = need_b ? grad_reshape(c, n, a, &as, d) : a, *b2 = need_a ? grad_reshape(c, n, b, &bs, d) : b;
    if (!g || !a2 || !b2)
        return d->status;
    if (bs.rank == 2) {
        /* B shared by every batch (Y's batch dims are A's): fold the batch into M */
        int64_t rows = (int64_t)(shape_numel_or0(&ys) / (double)nn);
        Shape g2s = shape_make(2, (int64_t[]){rows, nn}), a2s = shape_make(2, (int64_t[]){rows, k});
        Value *g2 = grad_reshape(c, n, g, &g2s, d);
        if (!g2)
            return d->status;
        if (need_a) {
            Value *da = grad_gemm_node(c, n, g2, b2, false, true, 1.0f, d);
            da = da ? grad_reshape(c, n, da, &a->shape, d) : NULL;
            if (!da || grad_accumulate(c, n, 0, da, d))
                return d->status;
        }
        if (need_b) {
            Value *af = grad_reshape(c, n, a2, &a2s, d);
            Value *db = af ? grad_gemm_node(c, n, af, g2, true, false, 1.0f, d) : NULL;
            db = db ? grad_reshape(c, n, db, &b->shape, d) : NULL;
            if (!db || grad_accumulate(c, n, 1, db, d))
                return d->status;
        }
        return ST_OK;
    }
    if (need_a) {
        Value *bt = grad_swap_last(c, n, b2, d);
        Value *da = bt ? bw1(c, n, "MatMul", 2, (Value *[]){g, bt}, d) : NULL;
        da = da ? grad_unbroadcast(c, n, da, &as, d) : NULL;
        da = da ? grad_reshape(c, n, da, &a->shape, d) : NULL;
        if (!da || grad_accumulate(c, n, 0, da, d))
            return d->status;
    }
    if (need_b) {
        Value *at = grad_swap_last(c, n, a2, d);
        Value *db = at ? bw1(c, n, "MatMul", 2, (Value *[]){at, g}, d) : NULL;
        db = db ? grad_unbroadcast(c, n, db, &bs, d) : NULL;
        db = db ? grad_reshape(c, n, db, &b->shape, d) : NULL;
        if (!db || grad_accumulate(c, n, 1, db, d))
            return d->status;
    }
    return ST_OK;
}

/* ======================================================================== Einsum */

/* One parsed term: letters (or '.' for the ellipsis, at most once) in order. */
typedef struct {
    char sym[IR_MAX_RANK + 1];
    int n;
    int ellipsis; /* position of "..." in sym, -1 when absent */
} EinsumTerm;

/* Parse the next term up to ',' or '-' or NUL; false on a bad character or too many letters. */
static bool einsum_term(const char **p, EinsumTerm *t)
{
    t->n = 0;
    t->ellipsis = -1;
    for (;;) {
        while (**p == ' ')
            (*p)++;
        char c = **p;
        if (c == '.') {
            if (strncmp(*p, "...", 3) != 0 || t->ellipsis >= 0 || t->n >= IR_MAX_RANK)
                return false;
            t->ellipsis = t->n;
            t->sym[t->n++] = '.';
            *p += 3;
        } else if (isalpha((unsigned char)c)) {
            if (t->n >= IR_MAX_RANK)
                return false;
            t->sym[t->n++] = c;
            (*p)++;
        } else {
            return c == ',' || c == '-' || c == '\0';
        }
    }
}

/* Einsum-12: letters name dims (equal letters must have equal sizes), "..." stands for broadcast
 * leading dims. Without "->" the output is the ellipsis dims then the letters used once, sorted. */
static Status shape_einsum(Graph *g, Node *n, Diag *d)
{
    Status st;
    for (int i = 1; i < n->ninputs; i++)
        if ((st = op_same_dtype(n, 0, i, d)))
            return st;
    const char *eq = node_attr_string(n, "equation", NULL);
    if (!eq)
        return diag_node(d, n, ST_INVALID, "attribute equation is required");
    DType t = n->inputs[0]->dtype;
    int64_t ldim[128]; /* per letter: size, sym, how many times it appears, seen at all */
    const char *lsym[128];
    int count[128] = {0};
    bool seen[128] = {false};
    Shape ell = shape_scalar();
    bool any_ell = false, unknown_rank = false;
    const char *p = eq;
    for (int i = 0; i < n->ninputs; i++) {
        EinsumTerm term;
        if (!einsum_term(&p, &term))
            return diag_node(d, n, ST_INVALID, "cannot parse equation \"%s\"", eq);
        const Shape *s = &n->inputs[i]->shape;
        if (s->rank < 0) {
            unknown_rank = true;
        } else {
            int nell = s->rank - (term.n - (term.ellipsis >= 0));
            if ((term.ellipsis < 0 && s->rank != term.n) || nell < 0)
                return diag_node(d, n, ST_SHAPE, "input %d has rank %d but its equation term has %d letters%s", i,
                                 s->rank, term.n - (term.ellipsis >= 0), term.ellipsis >= 0 ? " and ..." : "");
            int k = 0;
            for (int j = 0; j < term.n; j++) {
                if (term.sym[j] == '.') {
                    Shape e = shape_make(nell, NULL), r;
                    for (int q = 0; q < nell; q++)
                        dim_copy(&e, q, s, k + q);
                    if (!any_ell) {
                        ell = e;
                    } else if ((st = shape_broadcast(n, 0, &ell, i, &e, &r, d))) {
                        return st;
                    } else {
                        ell = r;
                    }
                    any_ell = true;
                    k += nell;
                    continue;
                }
                unsigned c = (unsigned char)term.sym[j];
                int64_t v = s->dim[k];
                count[c]++;
                if (!seen[c]) {
                    ldim[c] = v;
                    lsym[c] = v < 0 ? s->sym[k] : NULL;
                    seen[c] = true;
                } else if (ldim[c] < 0 && v >= 0) {
                    ldim[c] = v;
                    lsym[c] = NULL;
                } else if (ldim[c] >= 0 && v >= 0 && v != ldim[c]) {
                    /* numpy.einsum does not broadcast labelled dims, only the ellipsis */
                    return diag_node(d, n, ST_SHAPE, "letter '%c' is %lld in input %d but %lld in an earlier input",
                                     (char)c, (long long)v, i, (long long)ldim[c]);
                }
                k++;
            }
        }
        if (i + 1 < n->ninputs) {
            if (*p != ',')
                return diag_node(d, n, ST_INVALID, "equation \"%s\" has fewer terms than the %d inputs", eq,
                                 n->ninputs);
            p++;
        }
    }
    while (*p == ' ')
        p++;
    if (*p == ',')
        return diag_node(d, n, ST_INVALID, "equation \"%s\" has more terms than the %d inputs", eq, n->ninputs);
    if (unknown_rank) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    Shape out = shape_scalar();
    if (strncmp(p, "->", 2) == 0) {
        p += 2;
        EinsumTerm term;
        if (!einsum_term(&p, &term) || *p != '\0')
            return diag_node(d, n, ST_INVALID, "cannot parse the output of equation \"%s\"", eq);
        for (int j = 0; j < term.n; j++) {
            if (term.sym[j] == '.') {
                for (int q = 0; q < ell.rank && out.rank < IR_MAX_RANK; q++)
                    dim_copy(&out, out.rank++, &ell, q);
                continue;
            }
            unsigned c = (unsigned char)term.sym[j];
            if (!seen[c])
                return diag_node(d, n, ST_INVALID, "output letter '%c' of \"%s\" is in no input", (char)c, eq);
            if (out.rank >= IR_MAX_RANK)
                return diag_node(d, n, ST_UNSUPPORTED, "output rank above %d", IR_MAX_RANK);
            out.dim[out.rank] = ldim[c];
            out.sym[out.rank++] = ldim[c] < 0 ? lsym[c] : NULL;
        }
    } else if (*p == '\0') {
        for (int q = 0; q < ell.rank; q++)
            dim_copy(&out, out.rank++, &ell, q);
        for (unsigned c = 0; c < 128; c++)
            if (seen[c] && count[c] == 1 && out.rank < IR_MAX_RANK) {
                out.dim[out.rank] = ldim[c];
                out.sym[out.rank++] = ldim[c] < 0 ? lsym[c] : NULL;
            }
    } else {
        return diag_node(d, n, ST_INVALID, "cannot parse equation \"%s\"", eq);
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* Y = einsum("A,B,...->Y", X0, X1, ...) is linear in each input, so the gradient of input i contracts
 * dY with the other inputs back to input i's letters:
 *   dXi = einsum("Y,<others>->Ai", dY, <other inputs>)
 * Letters of Ai that appear nowhere else were summed over Xi alone: dXi is constant along them, so the
 * contraction goes to the other letters and is broadcast back (Reshape with 1s, Expand). Equations with
 * "..." or a letter repeated within one term (a diagonal) have no gradient here (ST_UNSUPPORTED). */
static Status grad_einsum(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0);
    if (!dy)
        return ST_OK;
    const char *eq = node_attr_string(n, "equation", "");
    EinsumTerm term[IR_MAX_RANK + 1], out;
    int nin = n->ninputs;
    if (nin > IR_MAX_RANK)
        return diag_node(d, n, ST_UNSUPPORTED, "no gradient for an Einsum of %d inputs", nin);
    const char *p = eq;
    for (int i = 0; i < nin; i++) {
        if (!einsum_term(&p, &term[i]) || (i + 1 < nin && *p++ != ','))
            return diag_node(d, n, ST_INVALID, "cannot parse equation \"%s\"", eq);
    }
    while (*p == ' ')
        p++;
    int count[128] = {0};
    for (int i = 0; i < nin; i++)
        for (int j = 0; j < term[i].n; j++)
            count[(unsigned char)term[i].sym[j]]++;
    if (strncmp(p, "->", 2) == 0) {
        p += 2;
        if (!einsum_term(&p, &out))
            return diag_node(d, n, ST_INVALID, "cannot parse equation \"%s\"", eq);
    } else {    /* implicit output: the letters used once, sorted */
        out.n = 0;
        out.ellipsis = -1;
        for (unsigned ch = 0; ch < 128 && out.n < IR_MAX_RANK; ch++)
            if (count[ch] == 1 && isalpha((int)ch))
                out.sym[out.n++] = (char)ch;
    }
    for (int i = 0; i <= nin; i++) {
        const EinsumTerm *t = i < nin ? &term[i] : &out;
        for (int j = 0; j < t->n; j++)
            if (t->sym[j] == '.' || memchr(t->sym, t->sym[j], (size_t)j))
                return diag_node(d, n, ST_UNSUPPORTED, "no gradient for Einsum \"%s\" (equations with \"...\" or "
                                 "a letter repeated within one term are not differentiated)", eq);
    }
    Graph *g = grad_graph(c);
    for (int i = 0; i < nin; i++) {
        if (!grad_needed(c, n, i))
            continue;
        Value *x = n->inputs[i];
        /* the letters of term i that dY or another input carries */
        char keep[IR_MAX_RANK + 1];
        int nkeep = 0;
        for (int j = 0; j < term[i].n; j++) {
            char ch = term[i].sym[j];
            bool elsewhere = memchr(out.sym, ch, (size_t)out.n) != NULL;
            for (int k = 0; k < nin && !elsewhere; k++)
                elsewhere = k != i && memchr(term[k].sym, ch, (size_t)term[k].n) != NULL;
            if (elsewhere)
                keep[nkeep++] = ch;
        }
        char geq[128];
        int len = snprintf(geq, sizeof geq, "%.*s", out.n, out.sym);
        Value *in[IR_MAX_RANK + 1];
        int k = 0;
        in[k++] = dy;
        for (int j = 0; j < nin; j++)
            if (j != i) {
                len += snprintf(geq + len, sizeof geq - (size_t)len, ",%.*s", term[j].n, term[j].sym);
                in[k++] = n->inputs[j];
            }
        snprintf(geq + len, sizeof geq - (size_t)len, "->%.*s", nkeep, keep);
        Node *m = grad_new_node(c, n, "", "Einsum", k, in, 1, d);
        Attr at = {.name = "equation", .type = AT_STRING, .s = arena_strdup(g->arena, geq), .slen = strlen(geq)};
        if (!m || !node_add_attr(g, m, &at) || grad_finish_node(c, m, d))
            return d->status ? d->status : diag_error(d, ST_NOMEM, "out of memory");
        Value *dx = m->outputs[0];
        if (nkeep < term[i].n) {    /* broadcast along the letters summed over x alone */
            if (!shape_is_static(&x->shape))
                return diag_node(d, n, ST_SHAPE, "training needs static shapes (pass --batch)");
            Shape ones = x->shape;
            for (int j = 0; j < term[i].n; j++)
                if (!memchr(keep, term[i].sym[j], (size_t)nkeep))
                    ones.dim[j] = 1;
            dx = grad_reshape(c, n, dx, &ones, d);
            Value *to = dx ? graph_const_ints(g, "grad_shape", x->shape.dim, (size_t)x->shape.rank, d) : NULL;
            dx = to ? bw1(c, n, "Expand", 2, (Value *[]){dx, to}, d) : NULL;
            if (!dx)
                return d->status;
        }
        if (grad_accumulate(c, n, i, dx, d))
            return d->status;
    }
    return ST_OK;
}

/* The contraction cost depends on the equation; the dump shows 0 (unknown) rather than a guess. */
static double flops_unknown(const Node *n)
{
    return 0;
}

/* ======================================================================== the table */

const OpRule matmul_rules[] = {
    {.name = "Gemm", .domain = "", .family = "matmul", .canon_opset = 13, .canon = canon_gemm, .shape = shape_gemm,
     .flops = flops_gemm, .grad = grad_gemm, ARITY(2, 3, 1, 1), REQUIRED(2), DTYPES(IN_SAME(0, 1), IN_SAME(0, 2))},
    {.name = "MatMul", .domain = "", .family = "matmul", .canon_opset = 13, .shape = shape_matmul,
     .flops = flops_matmul, .grad = grad_matmul, ARITY(2, 2, 1, 1), REQUIRED(2), DTYPES(IN_SAME(0, 1))},
    {.name = "Einsum", .domain = "", .family = "matmul", .canon_opset = 12, .shape = shape_einsum,
     .flops = flops_unknown, .grad = grad_einsum, ARITY(1, -1, 1, 1), REQUIRED(ALL_INPUTS)},
    {0},
};
