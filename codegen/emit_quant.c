/* emit_quant.c - emitters of the quantization family on kernels/quant.c: QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv.
 * Scales and zero points are read at run time (they may be graph inputs); the rules admit only float32
 * scales.
 * No backward table: these ops have no gradient. */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

/* Quantize/DequantizeLinear: scale count and the stride of its axis. */
static void axis_layout(const Node *n, const Value *x, size_t *nscale, size_t *inner)
{
    *nscale = cg_numel(n->inputs[1]);
    *inner = 1;
    if (*nscale > 1) {
        int r = x->shape.rank, ax = (int)node_attr_int(n, "axis", 1);
        ax = ax < 0 ? ax + r : ax;
        for (int i = ax + 1; i < r; i++)
            *inner *= (size_t)x->shape.dim[i];
    }
}

static Status emit_quantize(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t ns, inner;
    axis_layout(n, x, &ns, &inner);
    cg_line(cg, "quantize_linear_forward(%s, %s, %s, %s, %s, %zu, %zu, %zu);", cg_rtdtype(y->dtype), cg_ptr(cg, y),
            cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), cg_ptr_or_null(cg, node_input(n, 2)), cg_numel(x), ns, inner);
    return ST_OK;
}

static Status emit_dequantize(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    size_t ns, inner;
    axis_layout(n, x, &ns, &inner);
    cg_line(cg, "dequantize_linear_forward(%s, %s, %s, %s, %s, %zu, %zu, %zu);", cg_rtdtype(x->dtype),
            cg_ptr(cg, y), cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), cg_ptr_or_null(cg, node_input(n, 2)),
            cg_numel(x), ns, inner);
    return ST_OK;
}

static Status emit_dynamic_quantize(Cg *cg, const Node *n)
{
    cg_line(cg, "dynamic_quantize_linear_forward(%s, %s, %s, %s, %zu);", cg_ptr(cg, n->outputs[0]),
            cg_ptr(cg, n->outputs[1]), cg_ptr(cg, n->outputs[2]), cg_ptr(cg, n->inputs[0]), cg_numel(n->inputs[0]));
    return ST_OK;
}

/* ---- integer matrix products ---- */

/* Element offsets of A and B in each of the batch products of y = A @ B (batch dims broadcast):
 * prints "static const size_t aoff[], boff[]" and returns the batch count. */
static size_t emit_batch_offsets(Cg *cg, const Value *a, const Value *b, const Value *y)
{
    int yb = y->shape.rank - 2, ab = a->shape.rank - 2, bb = b->shape.rank - 2;
    size_t ydims[IR_MAX_RANK], adims[IR_MAX_RANK], bdims[IR_MAX_RANK], as[IR_MAX_RANK], bs[IR_MAX_RANK];
    size_t batch = 1;
    for (int i = 0; i < yb; i++)
        batch *= ydims[i] = (size_t)y->shape.dim[i];
    for (int i = 0; i < ab; i++)
        adims[i] = (size_t)a->shape.dim[i];
    for (int i = 0; i < bb; i++)
        bdims[i] = (size_t)b->shape.dim[i];
    rt_broadcast_strides(yb, ydims, ab, adims, as);
    rt_broadcast_strides(yb, ydims, bb, bdims, bs);
    size_t amat = (size_t)(a->shape.dim[ab] * a->shape.dim[ab + 1]);
    size_t bmat = (size_t)(b->shape.dim[bb] * b->shape.dim[bb + 1]);
    size_t *ao = calloc(batch ? batch : 1, sizeof *ao), *bo = calloc(batch ? batch : 1, sizeof *bo);
    for (size_t t = 0; ao && bo && t < batch; t++) {
        size_t rem = t;
        for (int i = yb; i-- > 0;) {
            size_t idx = rem % ydims[i];
            rem /= ydims[i];
            ao[t] += idx * as[i] * amat;
            bo[t] += idx * bs[i] * bmat;
        }
    }
    cg_line(cg, "static const size_t aoff[%zu] = %s;", batch, cg_sizes(cg, ao, batch) + strlen("(const size_t[])"));
    cg_line(cg, "static const size_t boff[%zu] = %s;", batch, cg_sizes(cg, bo, batch) + strlen("(const size_t[])"));
    free(ao);
    free(bo);
    return batch;
}

static Status check_matmul(Cg *cg, const Node *n)
{
    const Value *a = n->inputs[0], *b = n->inputs[strcmp(n->op_type, "QLinearMatMul") == 0 ? 3 : 1];
    if (a->shape.rank < 2 || b->shape.rank < 2)
        return cg_unsupported(cg, "inputs of rank < 2");
    return ST_OK;
}

static Status emit_matmul_integer(Cg *cg, const Node *n)
{
    const Value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
    const Value *az = node_input(n, 2), *bz = node_input(n, 3);
    int r = y->shape.rank;
    size_t batch = emit_batch_offsets(cg, a, b, y);
    cg_line(cg, "matmul_integer_forward(%s, %s, %s, %s, %zu, %s, %s, %s, %zu, %zu, aoff, boff, %lld, %lld, %lld);",
            cg_ptr(cg, y), cg_rtdtype(a->dtype), cg_ptr(cg, a), cg_ptr_or_null(cg, az), az ? cg_numel(az) : 1,
            cg_rtdtype(b->dtype), cg_ptr(cg, b), cg_ptr_or_null(cg, bz), bz ? cg_numel(bz) : 1, batch,
            (long long)y->shape.dim[r - 2], (long long)a->shape.dim[a->shape.rank - 1], (long long)y->shape.dim[r - 1]);
    return ST_OK;
}

static size_t scratch_acc(const Node *n)
{
    return shape_numel_or0(&n->outputs[0]->shape) * sizeof(int32_t);
}

static Status emit_qlinear_matmul(Cg *cg, const Node *n)
{
    Value *const *in = n->inputs;
    const Value *a = in[0], *b = in[3], *y = n->outputs[0];
    int r = y->shape.rank;
    size_t batch = emit_batch_offsets(cg, a, b, y);
    cg_line(cg, "qlinear_matmul_forward(%s, %s, (int32_t *)%s, %s, %s, %s, %zu, %s, %zu, %s, %s, %s, %zu, %s, %zu,",
            cg_rtdtype(y->dtype), cg_ptr(cg, y), cg_scratch(cg), cg_rtdtype(a->dtype), cg_ptr(cg, a),
            cg_ptr(cg, in[1]), cg_numel(in[1]), cg_ptr(cg, in[2]), cg_numel(in[2]), cg_rtdtype(b->dtype),
            cg_ptr(cg, b), cg_ptr(cg, in[4]), cg_numel(in[4]), cg_ptr(cg, in[5]), cg_numel(in[5]));
    cg_line(cg, "    %s, %s, %zu, aoff, boff, %lld, %lld, %lld);", cg_ptr(cg, in[6]), cg_ptr(cg, in[7]), batch,
            (long long)y->shape.dim[r - 2], (long long)a->shape.dim[a->shape.rank - 1], (long long)y->shape.dim[r - 1]);
    return ST_OK;
}

/* ---- integer convolutions ---- */

static bool qconv_window(const Node *n, int iw, SpatialWindow *win)
{
    const Value *x = n->inputs[0], *w = n->inputs[iw], *y = n->outputs[0];
    return x->shape.rank >= 3 && cg_window(n, x, y, w->shape.dim + 2, false, win);
}

static Status check_conv(Cg *cg, const Node *n)
{
    bool q = strcmp(n->op_type, "QLinearConv") == 0;
    SpatialWindow win;
    if (!qconv_window(n, q ? 3 : 1, &win))
        return cg_unsupported(cg, "this convolution geometry");
    return ST_OK;
}

static Status emit_conv_integer(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0], *wz = node_input(n, 3);
    SpatialWindow win;
    qconv_window(n, 1, &win);
    cg_emit_window(cg, &win);
    cg_line(cg, "conv_integer_forward(%s, %s, %s, %s, %s, %s, %s, %zu, %lld, %lld, %lld, %lld, &win);",
            cg_ptr(cg, y), cg_rtdtype(x->dtype), cg_ptr(cg, x), cg_ptr_or_null(cg, node_input(n, 2)),
            cg_rtdtype(w->dtype), cg_ptr(cg, w), cg_ptr_or_null(cg, wz), wz ? cg_numel(wz) : 1,
            (long long)x->shape.dim[0], (long long)x->shape.dim[1], (long long)y->shape.dim[1],
            (long long)node_attr_int(n, "group", 1));
    return ST_OK;
}

static Status emit_qlinear_conv(Cg *cg, const Node *n)
{
    Value *const *in = n->inputs;
    const Value *x = in[0], *w = in[3], *y = n->outputs[0];
    SpatialWindow win;
    qconv_window(n, 3, &win);
    cg_emit_window(cg, &win);
    cg_line(cg, "qlinear_conv_forward(%s, %s, (int32_t *)%s, %s, %s, %s, %s, %s, %s, %s, %zu, %s, %zu,",
            cg_rtdtype(y->dtype), cg_ptr(cg, y), cg_scratch(cg), cg_rtdtype(x->dtype), cg_ptr(cg, x),
            cg_ptr(cg, in[1]), cg_ptr(cg, in[2]), cg_rtdtype(w->dtype), cg_ptr(cg, w), cg_ptr(cg, in[4]),
            cg_numel(in[4]), cg_ptr(cg, in[5]), cg_numel(in[5]));
    cg_line(cg, "    %s, %s, %s, %lld, %lld, %lld, %lld, &win);", cg_ptr(cg, in[6]), cg_ptr(cg, in[7]),
            cg_ptr_or_null(cg, node_input(n, 8)), (long long)x->shape.dim[0], (long long)x->shape.dim[1],
            (long long)y->shape.dim[1], (long long)node_attr_int(n, "group", 1));
    return ST_OK;
}

const Emitter quant_emitters[] = {
    EMIT("QuantizeLinear", emit_quantize, NULL, 0),
    EMIT("DequantizeLinear", emit_dequantize, NULL, 0),
    EMIT("DynamicQuantizeLinear", emit_dynamic_quantize, NULL, 0),
    {.op = "MatMulInteger", .emit = emit_matmul_integer, .check = check_matmul},
    {.op = "QLinearMatMul", .emit = emit_qlinear_matmul, .scratch = scratch_acc, .check = check_matmul},
    {.op = "ConvInteger", .emit = emit_conv_integer, .check = check_conv},
    {.op = "QLinearConv", .emit = emit_qlinear_conv, .scratch = scratch_acc, .check = check_conv},
    {0},
};
