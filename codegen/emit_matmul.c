/* emit_matmul.c - emitters of the matmul family: Gemm and MatMul on runtime/gemm.c (one sgemm, or a
 * batch of them with broadcast strides resolved here). float32 kernels; float64 and the half types
 * run in float32 copies (EM_F32). Einsum has no emitter. */
#include "emit.h"

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
    cg_line(cg, "matmul_forward(%s, %s, %s, %zu, %zu, %zu, %zu, %s, %s, %s);", cg_ptr(cg, y), cg_ptr(cg, a),
            cg_ptr(cg, b), m, nn, k, rank, cg_sizes(cg, dims, rank), cg_sizes(cg, as, rank), cg_sizes(cg, bs, rank));
    return ST_OK;
}

const Emitter matmul_emitters[] = {
    EMIT("Gemm", emit_gemm, NULL, EM_F32),
    EMIT("MatMul", emit_matmul, NULL, EM_F32),
    {0},
};
