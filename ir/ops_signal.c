/* ops_signal.c - rules of the signal ops of opset 17: the windows HannWindow, HammingWindow and
 * BlackmanWindow, DFT, STFT and MelWeightMatrix. Complex tensors are real tensors with a last dim of 2
 * (real, imaginary), as ONNX has them. Output sizes that come from input values (window size, frame
 * length, mel bins) are known only when those inputs are constant; otherwise the dims stay unknown and
 * codegen refuses the graph. Nothing folds; no gradients. */
#include "ir.h"

#include <string.h>

static const Shape unknown_shape = {.rank = -1};

static const Shape *in_shape(const Node *n, int i)
{
    const Value *v = node_input(n, i);
    return v ? &v->shape : &unknown_shape;
}

static double flops_out0(const Node *n)
{
    return n->noutputs > 0 ? shape_numel_or0(&n->outputs[0]->shape) : 0;
}

/* Scalar constant integer input i, or -1 when absent or not constant; ST_SHAPE when not a scalar. */
static Status const_scalar(Graph *g, Node *n, int i, int64_t *out, Diag *d)
{
    IntList l;
    Status st;
    *out = -1;
    const Shape *s = in_shape(n, i);
    if (node_input(n, i) && s->rank > 1)
        return diag_node(d, n, ST_SHAPE, "input %d '%s' must be a scalar", i, n->inputs[i]->name);
    if ((st = op_input_ints(g, n, i, &l, d)))
        return st;
    if (l.known && l.n == 1)
        *out = l.v[0];
    if (l.known && (l.n != 1 || l.v[0] < 0))
        return diag_node(d, n, ST_SHAPE, "input %d '%s' must be one value >= 0", i, n->inputs[i]->name);
    return ST_OK;
}

static Status output_datatype(const Node *n, DType *t, Diag *d)
{
    int64_t dt = node_attr_int(n, "output_datatype", DT_FLOAT);
    if (dt != DT_FLOAT && dt != DT_DOUBLE && dt != DT_FLOAT16 && dt != DT_BFLOAT16)
        return diag_node(d, n, ST_UNSUPPORTED, "output_datatype %lld: only float types are supported", (long long)dt);
    *t = (DType)dt;
    return ST_OK;
}

/* ======================================================================== windows */

/* Hann/Hamming/BlackmanWindow-17: size (int32/int64 scalar) -> [size] of output_datatype. */
static Status window_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    int64_t size;
    DType t = DT_FLOAT;
    if ((st = const_scalar(g, n, 0, &size, d)) || (st = output_datatype(n, &t, d)))
        return st;
    Shape out = shape_make(1, NULL);
    out.dim[0] = size;
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ======================================================================== DFT */

/* DFT-17: x [batch, ..., N, ..., 1|2] with the transformed dim at `axis` (of the signal dims, never the
 * last), dft_length (input 1, constant) or N; y has dft_length (onesided: dft_length/2 + 1) there and 2
 * at the end. */
static Status dft_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0);
    char a[128];
    int64_t len;
    if ((st = const_scalar(g, n, 1, &len, d)))
        return st;
    if (x->rank < 0) {
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    if (x->rank < 3 || (x->dim[x->rank - 1] >= 0 && x->dim[x->rank - 1] != 1 && x->dim[x->rank - 1] != 2))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be [batch, ..., 1 or 2]", shape_str(x, a, sizeof a));
    int ax;
    if ((st = op_axis(n, "axis", node_attr_int(n, "axis", 1), x->rank, &ax, d)))
        return st;
    if (ax == 0 || ax == x->rank - 1)
        return diag_node(d, n, ST_SHAPE, "axis %lld is the batch or the complex dim of input 0 %s",
                         (long long)node_attr_int(n, "axis", 1), shape_str(x, a, sizeof a));
    if (!node_input(n, 1))
        len = x->dim[ax];
    else if (len == 0)
        return diag_node(d, n, ST_SHAPE, "input 1 (dft_length) is 0");
    Shape out = *x;
    out.dim[ax] = len < 0 ? -1 : node_attr_int(n, "onesided", 0) ? len / 2 + 1 : len;
    out.sym[ax] = NULL;
    out.dim[x->rank - 1] = 2;
    out.sym[x->rank - 1] = NULL;
    if (node_attr_int(n, "onesided", 0) && node_attr_int(n, "inverse", 0))
        return diag_node(d, n, ST_UNSUPPORTED, "onesided inverse DFT");
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

static double dft_flops(const Node *n)
{
    const Shape *x = in_shape(n, 0);
    int ax = (int)node_attr_int(n, "axis", 1);
    ax = ax < 0 ? ax + x->rank : ax;
    return ax >= 0 && ax < x->rank && x->dim[ax] > 0 ? flops_out0(n) * (double)x->dim[ax] : 0;
}

/* ======================================================================== STFT */

/* STFT-17: signal [batch, length, 1|2], frame_step (scalar), window [frame_length] (optional),
 * frame_length (optional scalar) -> [batch, frames, bins, 2], frames = (length - frame_length) /
 * frame_step + 1, bins = onesided ? frame_length/2 + 1 : frame_length. */
static Status stft_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0), *w = in_shape(n, 2);
    char a[128];
    int64_t step, flen, wlen = -1;
    if ((st = const_scalar(g, n, 1, &step, d)) || (st = const_scalar(g, n, 3, &flen, d)))
        return st;
    if (x->rank >= 0 && (x->rank != 3 || (x->dim[2] >= 0 && x->dim[2] != 1 && x->dim[2] != 2)))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be [batch, length, 1 or 2]", shape_str(x, a, sizeof a));
    if (node_input(n, 2)) {
        if (w->rank >= 0 && w->rank != 1)
            return diag_node(d, n, ST_SHAPE, "input 2 (window) shape %s must be 1-D", shape_str(w, a, sizeof a));
        wlen = w->rank == 1 ? w->dim[0] : -1;
    }
    if (!node_input(n, 2) && !node_input(n, 3))
        return diag_node(d, n, ST_SHAPE, "needs a window (input 2) or a frame_length (input 3)");
    if (flen < 0)
        flen = wlen;
    if (flen >= 0 && wlen >= 0 && flen != wlen)
        return diag_node(d, n, ST_SHAPE, "frame_length %lld differs from the window's length %lld", (long long)flen,
                         (long long)wlen);
    if (step == 0 || flen == 0)
        return diag_node(d, n, ST_SHAPE, "frame_step and frame_length must be positive");
    Shape out = shape_make(4, NULL);
    if (x->rank == 3)
        dim_copy(&out, 0, x, 0);
    if (x->rank == 3 && x->dim[1] >= 0 && step > 0 && flen > 0) {
        if (x->dim[1] < flen)
            return diag_node(d, n, ST_SHAPE, "signal length %lld is shorter than the frame length %lld",
                             (long long)x->dim[1], (long long)flen);
        out.dim[1] = (x->dim[1] - flen) / step + 1;
    }
    out.dim[2] = flen < 0 ? -1 : node_attr_int(n, "onesided", 1) ? flen / 2 + 1 : flen;
    out.dim[3] = 2;
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

/* ======================================================================== MelWeightMatrix */

/* MelWeightMatrix-17: num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz ->
 * [dft_length/2 + 1, num_mel_bins] of output_datatype. */
static Status mel_shape(Graph *g, Node *n, Diag *d)
{
    Status st;
    int64_t bins, len;
    DType t = DT_FLOAT;
    if ((st = const_scalar(g, n, 0, &bins, d)) || (st = const_scalar(g, n, 1, &len, d)) ||
        (st = output_datatype(n, &t, d)))
        return st;
    Shape out = shape_make(2, NULL);
    out.dim[0] = len < 0 ? -1 : len / 2 + 1;
    out.dim[1] = bins;
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* ======================================================================== the table */

#define INT_SCALAR(i) IN_CLASS(i, TC_INT)

const OpRule signal_rules[] = {
    {"HannWindow", "", "signal", 17, NULL, window_shape, NULL, flops_out0, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     DTYPES(INT_SCALAR(0)), .defaults = {{"periodic", AT_INT, 1}, {"output_datatype", AT_INT, DT_FLOAT}}},
    {"HammingWindow", "", "signal", 17, NULL, window_shape, NULL, flops_out0, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     DTYPES(INT_SCALAR(0)), .defaults = {{"periodic", AT_INT, 1}, {"output_datatype", AT_INT, DT_FLOAT}}},
    {"BlackmanWindow", "", "signal", 17, NULL, window_shape, NULL, flops_out0, NULL, ARITY(1, 1, 1, 1), REQUIRED(1),
     DTYPES(INT_SCALAR(0)), .defaults = {{"periodic", AT_INT, 1}, {"output_datatype", AT_INT, DT_FLOAT}}},
    {"DFT", "", "signal", 17, NULL, dft_shape, NULL, dft_flops, NULL, ARITY(1, 2, 1, 1), REQUIRED(1),
     DTYPES(IN_CLASS(0, TC_FLOAT), INT_SCALAR(1)), .defaults = {{"axis", AT_INT, 1}, {"onesided", AT_INT, 0}}},
    {"STFT", "", "signal", 17, NULL, stft_shape, NULL, flops_out0, NULL, ARITY(2, 4, 1, 1), REQUIRED(2),
     DTYPES(IN_CLASS(0, TC_FLOAT), INT_SCALAR(1), IN_SAME(0, 2), INT_SCALAR(3)),
     .defaults = {{"onesided", AT_INT, 1}}},
    {"MelWeightMatrix", "", "signal", 17, NULL, mel_shape, NULL, flops_out0, NULL, ARITY(5, 5, 1, 1), REQUIRED(5),
     DTYPES(INT_SCALAR(0), IN_SAME(0, 1), IN_SAME(0, 2), IN_CLASS(3, TC_FLOAT), IN_SAME(3, 4)),
     .defaults = {{"output_datatype", AT_INT, DT_FLOAT}}},
    {0},
};
