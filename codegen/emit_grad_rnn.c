/* emit_grad_rnn.c - emitters of the recurrent family's training ops on kernels/rnn.c: the training
 * forwards onnxtune.LSTM / GRU / RNN (the ONNX op plus its Saved output) and the backward ops
 * onnxtune.LSTMGrad / GRUGrad / RNNGrad. Gradients nobody reads are passed as NULL (not computed).
 * float32 kernels (other float types through EM_F32 copies). */
#include "emit.h"

#include <string.h>

static const char *out_or_null(Cg *cg, const Node *n, int k)
{
    const Value *v = k < n->noutputs ? n->outputs[k] : NULL;
    return v && !cg_unused(cg, v) ? cg_ptr(cg, v) : "NULL";
}

/* Every float input of n is float32 (sequence_lens, input `seq`, int32). */
static Status check_inputs(Cg *cg, const Node *n, int seq)
{
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (v && i != seq && cg_dtype(cg, v) != DT_FLOAT)
            return cg_unsupported(cg, "input %d of %s", i, dtype_name(v->dtype));
        if (v && i == seq && v->dtype != DT_INT32)
            return cg_unsupported(cg, "sequence_lens of %s", dtype_name(v->dtype));
    }
    return ST_OK;
}

static bool is_lstm(const Node *n)
{
    return !strncmp(n->op_type, "LSTM", 4);
}

static size_t scratch_rnn_train(const Node *n)
{
    RnnParams p;
    if (!cg_rnn_params(n, &p))
        return 0;
    return is_lstm(n) ? lstm_forward_workspace(&p)
           : !strcmp(n->op_type, "GRU") ? gru_forward_workspace(&p)
                                        : rnn_forward_workspace(&p);
}

/* onnxtune.LSTM(X, W, R, B, sequence_lens, initial_h, initial_c) -> Y, Y_h, Y_c, Saved;
 * onnxtune.GRU / RNN(X, W, R, B, sequence_lens, initial_h) -> Y, Y_h, Saved */
static Status emit_rnn_train(Cg *cg, const Node *n)
{
    RnnParams p;
    Status st;
    if (is_lstm(n) && node_input(n, 7))
        return cg_unsupported(cg, "peepholes in training");
    if ((st = check_inputs(cg, n, 4)) || (st = cg_emit_rnn_params(cg, n, &p)))
        return st;
    const char *x = cg_ptr(cg, n->inputs[0]), *w = cg_ptr(cg, n->inputs[1]), *r = cg_ptr(cg, n->inputs[2]);
    const char *b = cg_ptr_or_null(cg, node_input(n, 3)), *sl = cg_ptr_or_null(cg, node_input(n, 4));
    const char *h0 = cg_ptr_or_null(cg, node_input(n, 5));
    const char *saved = cg_ptr(cg, n->outputs[n->noutputs - 1]);
    if (is_lstm(n))
        cg_line(cg, "lstm_forward_train(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, &p, %s);", out_or_null(cg, n, 0),
                out_or_null(cg, n, 1), out_or_null(cg, n, 2), saved, x, w, r, b, sl, h0,
                cg_ptr_or_null(cg, node_input(n, 6)), cg_scratch(cg));
    else
        cg_line(cg, "%s(%s, %s, %s, %s, %s, %s, %s, %s, %s, &p, %s);",
                !strcmp(n->op_type, "GRU") ? "gru_forward_train" : "rnn_forward_train", out_or_null(cg, n, 0),
                out_or_null(cg, n, 1), saved, x, w, r, b, sl, h0, cg_scratch(cg));
    return ST_OK;
}

static size_t scratch_rnn_grad(const Node *n)
{
    RnnParams p;
    if (!cg_rnn_params(n, &p))
        return 0;
    return is_lstm(n) ? lstm_backward_workspace(&p)
           : !strcmp(n->op_type, "GRUGrad") ? gru_backward_workspace(&p)
                                            : rnn_backward_workspace(&p);
}

/* <op>Grad(dY, dY_h, dY_c, X, W, R, B, sequence_lens, initial_h, initial_c, Saved)
 *   -> dX, dW, dR, dB, d_initial_h (, d_initial_c) */
static Status emit_rnn_grad(Cg *cg, const Node *n)
{
    RnnParams p;
    Status st;
    if ((st = check_inputs(cg, n, 7)) || (st = cg_emit_rnn_params(cg, n, &p)))
        return st;
    const char *dy = cg_ptr_or_null(cg, node_input(n, 0)), *dyh = cg_ptr_or_null(cg, node_input(n, 1));
    const char *x = cg_ptr(cg, n->inputs[3]), *w = cg_ptr(cg, n->inputs[4]), *r = cg_ptr(cg, n->inputs[5]);
    const char *sl = cg_ptr_or_null(cg, node_input(n, 7)), *saved = cg_ptr(cg, n->inputs[10]);
    if (is_lstm(n))
        cg_line(cg, "lstm_backward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, &p, %s);",
                out_or_null(cg, n, 0), out_or_null(cg, n, 1), out_or_null(cg, n, 2), out_or_null(cg, n, 3),
                out_or_null(cg, n, 4), out_or_null(cg, n, 5), dy, dyh, cg_ptr_or_null(cg, node_input(n, 2)), x, w, r,
                sl, saved, cg_scratch(cg));
    else
        cg_line(cg, "%s(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, &p, %s);",
                !strcmp(n->op_type, "GRUGrad") ? "gru_backward" : "rnn_backward", out_or_null(cg, n, 0),
                out_or_null(cg, n, 1), out_or_null(cg, n, 2), out_or_null(cg, n, 3), out_or_null(cg, n, 4), dy, dyh,
                x, w, r, sl, saved, cg_scratch(cg));
    return ST_OK;
}

const Emitter rnn_grad_emitters[] = {
    EMIT_ONNXTUNE("LSTM", emit_rnn_train, scratch_rnn_train, EM_F32),
    EMIT_ONNXTUNE("GRU", emit_rnn_train, scratch_rnn_train, EM_F32),
    EMIT_ONNXTUNE("RNN", emit_rnn_train, scratch_rnn_train, EM_F32),
    EMIT_ONNXTUNE("LSTMGrad", emit_rnn_grad, scratch_rnn_grad, EM_F32),
    EMIT_ONNXTUNE("GRUGrad", emit_rnn_grad, scratch_rnn_grad, EM_F32),
    EMIT_ONNXTUNE("RNNGrad", emit_rnn_grad, scratch_rnn_grad, EM_F32),
    {0},
};
