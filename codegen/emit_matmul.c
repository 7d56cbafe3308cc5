/* emit_matmul.c - emitters of the matmul family: Gemm and MatMul on kernels/gemm.c (one sgemm, or a
 * batch of them with broadcast strides resolved here; float64 and the half types run in float32
 * copies, EM_F32), and Einsum as plain nested loops written out here (no kernel: equations are too
 * varied, and the ONNX models that use it are small). */
#include "emit.h"

#include <string.h>

static Status emit_gemm(Cg *cg, const Node *n)
{
    const Value *a = n->inputs[0], *b = n->inputs[1], *c = node_input(n, 2), *y = n->outputs[0];
    if (cg_dtype(cg, a) != DT_FLOAT || cg_dtype(cg, b) != DT_FLOAT || (c && cg_dtype(cg, c) != DT_FLOAT))
        return cg_unsupported(cg, "Gemm of %s", dtype_name(a->dtype));
    bool ta = node_attr_int(n, "transA", 0) != 0, tb = node_attr_int(n, "transB", 0) != 0;
    float alpha = node_attr_float(n, "alpha", 1.0f), beta = node_attr_float(n, "beta", 1.0f);
    size_t m = (size_t)y->shape.dim[0], nn = (size_t)y->shape.dim[1];
    size_t k = (size_t)a->shape.dim[ta ? 0 : 1];
    size_t c_rows = 1, c_cols = 1;
    if (c && c->shape.rank == 1) {
        c_cols = (size_t)c->shape.dim[0];
    } else if (c && c->shape.rank == 2) {
        c_rows = (size_t)c->shape.dim[0];
        c_cols = (size_t)c->shape.dim[1];
    } else if (c && c->shape.rank > 2) {
        return cg_unsupported(cg, "C of rank %d", c->shape.rank);
    }
    if ((c_rows != 1 && c_rows != m) || (c_cols != 1 && c_cols != nn))
        return cg_unsupported(cg, "C does not broadcast to [%zu,%zu]", m, nn);
    if (k == 0) {
        /* an empty product: y = beta * C */
        cg_line(cg, "for (size_t i = 0; i < %zu; i++) /* K = 0: y = beta * C */", m);
        cg_line(cg, "    for (size_t j = 0; j < %zu; j++)", nn);
        if (c)
            cg_line(cg, "        %s[i * %zu + j] = %s * %s[i * %zu + j * %d];", cg_ptr(cg, y), nn,
                    cg_float(cg, beta), cg_ptr(cg, c), c_rows == 1 ? (size_t)0 : c_cols, c_cols == 1 ? 0 : 1);
        else
            cg_line(cg, "        %s[i * %zu + j] = 0.0f;", cg_ptr(cg, y), nn);
        return ST_OK;
    }
    cg_line(cg, "gemm_forward(%s, %s, %s, %s, %zu, %zu, %zu, %s, %s, %s, %s, %zu, %zu);", cg_ptr(cg, y),
            cg_ptr(cg, a), cg_ptr(cg, b), cg_ptr_or_null(cg, c), m, nn, k, ta ? "true" : "false",
            tb ? "true" : "false", cg_float(cg, alpha), cg_float(cg, beta), c_rows, c_cols);
    return ST_OK;
}

static Status emit_matmul(Cg *cg, const Node *n)
{
    const Value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
    if (cg_dtype(cg, a) != DT_FLOAT || cg_dtype(cg, b) != DT_FLOAT)
        return cg_unsupported(cg, "MatMul of %s", dtype_name(a->dtype));
    int ar = a->shape.rank, br = b->shape.rank;
    if (ar < 1 || br < 1)
        return cg_unsupported(cg, "MatMul of scalars");
    size_t m = ar == 1 ? 1 : (size_t)a->shape.dim[ar - 2], k = (size_t)a->shape.dim[ar - 1];
    size_t nn = br == 1 ? 1 : (size_t)b->shape.dim[br - 1];
    size_t abatch[IR_MAX_RANK], bbatch[IR_MAX_RANK], dims[IR_MAX_RANK], as[IR_MAX_RANK], bs[IR_MAX_RANK];
    size_t an = ar > 2 ? (size_t)ar - 2 : 0, bn = br > 2 ? (size_t)br - 2 : 0;
    for (size_t i = 0; i < an; i++)
        abatch[i] = (size_t)a->shape.dim[i];
    for (size_t i = 0; i < bn; i++)
        bbatch[i] = (size_t)b->shape.dim[i];
    size_t rank = matmul_batch_strides(an, abatch, bn, bbatch, m, nn, k, dims, as, bs);
    if (rank == (size_t)-1)
        return cg_unsupported(cg, "batch dims do not broadcast");
    if (k == 0) {
        cg_line(cg, "memset(%s, 0, %zu); /* K = 0: an empty product */", cg_ptr(cg, y), cg_numel(y) * sizeof(float));
        return ST_OK;
    }
    const Value *bias = node_input(n, 2);  /* ir/pass_fuse_bias.c: b is [K, N], the bias [N] */
    if (bias) {
        cg_line(cg, "gemm_forward(%s, %s, %s, %s, %zu, %zu, %zu, false, false, 1.0f, 1.0f, 1, %zu); /* + bias */",
                cg_ptr(cg, y), cg_ptr(cg, a), cg_ptr(cg, b), cg_ptr(cg, bias), cg_numel(y) / nn, nn, k, nn);
        return ST_OK;
    }
    cg_line(cg, "matmul_forward(%s, %s, %s, %zu, %zu, %zu, %zu, %s, %s, %s);", cg_ptr(cg, y), cg_ptr(cg, a),
            cg_ptr(cg, b), m, nn, k, rank, cg_sizes(cg, dims, rank), cg_sizes(cg, as, rank), cg_sizes(cg, bs, rank));
    return ST_OK;
}


/* ---- Einsum: labels are letters (0..51) and the dims under "..." (52..59, right-aligned) ---- */

#define EIN_LABELS 60

typedef struct EinTerm {
    int rank;
    int label[IR_MAX_RANK];
} EinTerm;

static int letter_label(char c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' : c >= 'A' && c <= 'Z' ? 26 + c - 'A' : -1;
}

/* Parse one term up to ',' '-' or the end; `ell` is the number of dims "..." stands for (-1: find it
 * from `rank`, the input's rank). */
static bool ein_term(const char **p, int rank, int ell_max, EinTerm *t, int *ell_out)
{
    int letters = 0, ell_at = -1;
    const char *s = *p;
    for (; *s && *s != ',' && *s != '-'; s++) {
        if (*s == ' ')
            continue;
        if (*s == '.') {
            if (strncmp(s, "...", 3) != 0 || ell_at >= 0)
                return false;
            ell_at = letters;
            s += 2;
        } else if (letter_label(*s) >= 0) {
            letters++;
        } else {
            return false;
        }
    }
    int ell = ell_at >= 0 ? (rank >= 0 ? rank - letters : ell_max) : 0;
    if (ell < 0 || letters + ell > IR_MAX_RANK || ell > 8)
        return false;
    t->rank = 0;
    for (s = *p; *s && *s != ',' && *s != '-'; s++) {
        if (*s == ' ')
            continue;
        if (*s == '.') {
            for (int k = 0; k < ell; k++)
                t->label[t->rank++] = 52 + (ell_max - ell) + k;
            s += 2;
        } else {
            t->label[t->rank++] = letter_label(*s);
        }
    }
    *p = s;
    *ell_out = ell;
    return true;
}

static Status emit_einsum(Cg *cg, const Node *n)
{
    const Value *y = n->outputs[0];
    const char *eq = node_attr_string(n, "equation", "");
    DType t = y->dtype;
    if (t != DT_FLOAT && t != DT_DOUBLE && t != DT_INT32 && t != DT_INT64)
        return cg_unsupported(cg, "Einsum of %s", dtype_name(t));
    if (n->ninputs > 8)
        return cg_unsupported(cg, "more than 8 inputs");
    int ell_max = 0;
    for (int i = 0; i < n->ninputs; i++) {
        /* first pass: how many dims "..." covers at most */
        const char *p = eq;
        EinTerm term;
        int ell;
        for (int k = 0; k < i; k++) {
            p = strchr(p, ',');
            if (!p)
                return cg_unsupported(cg, "equation '%s'", eq);
            p++;
        }
        if (!ein_term(&p, n->inputs[i]->shape.rank, 0, &term, &ell))
            return cg_unsupported(cg, "equation '%s'", eq);
        if (ell > ell_max)
            ell_max = ell;
    }
    EinTerm in[8], out;
    int64_t size[EIN_LABELS];
    int count[EIN_LABELS] = {0};
    for (int l = 0; l < EIN_LABELS; l++)
        size[l] = -1;
    const char *p = eq;
    for (int i = 0; i < n->ninputs; i++) {
        int ell;
        const Value *x = n->inputs[i];
        if (!ein_term(&p, x->shape.rank, ell_max, &in[i], &ell) || in[i].rank != x->shape.rank)
            return cg_unsupported(cg, "equation '%s' for input %d of rank %d", eq, i, x->shape.rank);
        for (int k = 0; k < in[i].rank; k++) {
            int l = in[i].label[k];
            int64_t dsz = x->shape.dim[k];
            count[l]++;
            if (size[l] < 0 || size[l] == 1)
                size[l] = dsz;
            else if (dsz != size[l] && !(l >= 52 && dsz == 1))
                return cg_unsupported(cg, "label sizes %lld and %lld disagree", (long long)size[l], (long long)dsz);
        }
        if (*p == ',')
            p++;
    }
    if (p[0] == '-' && p[1] == '>') {
        p += 2;
        int ell;
        if (!ein_term(&p, -1, ell_max, &out, &ell) || *p)
            return cg_unsupported(cg, "equation '%s'", eq);
    } else {
        /* implicit output: the "..." dims, then the letters seen once, in alphabetical order */
        out.rank = 0;
        for (int k = 0; k < ell_max; k++)
            out.label[out.rank++] = 52 + k;
        for (int l = 0; l < 52 && out.rank < IR_MAX_RANK; l++)
            if (count[l] == 1)
                out.label[out.rank++] = l;
    }
    if (out.rank != y->shape.rank)
        return cg_unsupported(cg, "equation '%s' gives rank %d, inferred %d", eq, out.rank, y->shape.rank);
    /* loop order: the output's labels, then the summed ones */
    bool in_out[EIN_LABELS] = {false};
    int order[EIN_LABELS], nloops = 0, nsum;
    for (int k = 0; k < out.rank; k++)
        if (!in_out[out.label[k]]) {
            in_out[out.label[k]] = true;
            order[nloops++] = out.label[k];
        }
    int nout_loops = nloops;
    for (int l = 0; l < EIN_LABELS; l++)
        if (count[l] && !in_out[l])
            order[nloops++] = l;
    nsum = nloops - nout_loops;
    char names[EIN_LABELS][8];
    for (int l = 0; l < EIN_LABELS; l++) {
        if (l < 52)
            snprintf(names[l], sizeof names[l], "l_%c", l < 26 ? 'a' + l : 'A' + l - 26);
        else
            snprintf(names[l], sizeof names[l], "l_e%d", l - 52);
    }
    /* offset expressions: sum of index * stride over each tensor's dims (0 stride on broadcast) */
    char *expr[9];
    for (int i = 0; i <= n->ninputs; i++) {
        const EinTerm *term = i < n->ninputs ? &in[i] : &out;
        const Value *v = i < n->ninputs ? n->inputs[i] : y;
        char buf[512] = "";
        int64_t stride[IR_MAX_RANK];
        for (int k = term->rank - 1; k >= 0; k--)
            stride[k] = k == term->rank - 1 ? 1 : stride[k + 1] * v->shape.dim[k + 1];
        for (int k = 0; k < term->rank; k++) {
            int l = term->label[k];
            if (v->shape.dim[k] == 1 && size[l] != 1)
                continue; /* broadcast */
            size_t at = strlen(buf);
            if (stride[k] == 1)
                snprintf(buf + at, sizeof buf - at, "%s%s", at ? " + " : "", names[l]);
            else
                snprintf(buf + at, sizeof buf - at, "%s%s * %lld", at ? " + " : "", names[l], (long long)stride[k]);
        }
        expr[i] = (char *)cg_fmt(cg, "%s", buf[0] ? buf : "0");
    }
    const char *acc_t = t == DT_FLOAT || t == DT_DOUBLE ? "double" : "int64_t", *ct = cg_ctype(t);
    char ind[64] = "";
    for (int k = 0; k < nloops; k++) {
        int l = order[k];
        if (k == nout_loops)
            cg_line(cg, "%s%s acc = 0;", ind, acc_t);
        cg_line(cg, "%sfor (size_t %s = 0; %s < %lld; %s++)%s", ind, names[l], names[l], (long long)size[l], names[l],
                k == nout_loops - 1 && nsum ? " {" : "");
        strcat(ind, "    ");
    }
    char prod[2048] = "";
    for (int i = 0; i < n->ninputs; i++)
        snprintf(prod + strlen(prod), sizeof prod - strlen(prod), "%s(%s)%s[%s]", i ? " * " : "", acc_t,
                 cg_ptr(cg, n->inputs[i]), expr[i]);
    if (nsum) {
        cg_line(cg, "%sacc += %s;", ind, prod);
        ind[strlen(ind) - 4 * (size_t)nsum] = '\0';
        cg_line(cg, "%s%s[%s] = (%s)acc;", ind, cg_ptr(cg, y), expr[n->ninputs], ct);
        if (nout_loops) {
            ind[strlen(ind) - 4] = '\0';
            cg_line(cg, "%s}", ind);
        }
    } else {
        cg_line(cg, "%s%s[%s] = (%s)(%s);", ind, cg_ptr(cg, y), expr[n->ninputs], ct, prod);
    }
    return ST_OK;
}

const Emitter matmul_emitters[] = {
    EMIT("Gemm", emit_gemm, NULL, EM_F32),
    EMIT("MatMul", emit_matmul, NULL, EM_F32),
    EMIT("Einsum", emit_einsum, NULL, 0),
    {0},
};
