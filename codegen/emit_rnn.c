/* emit_rnn.c - emitters of the recurrent family (LSTM, GRU, RNN) on kernels/rnn.c: attributes become
 * one static RnnParams (activations with ONNX's defaults for alpha/beta), omitted or unread outputs
 * are passed as NULL. float32 kernels; other float types run in float32 copies (EM_F32).
 *
 * Backward, below the forward emitters: emitters of the recurrent family's training ops on kernels/rnn.c:
 * the training forwards onnxtune.LSTM / GRU / RNN (the ONNX op plus its Saved output) and the backward ops
 * onnxtune.LSTMGrad / GRUGrad / RNNGrad. Gradients nobody reads are passed as NULL (not computed). float32
 * kernels (other float types through EM_F32 copies). */
#include "emit.h"

#include <string.h>

typedef struct ActRow {
    const char *name, *kind;
    bool has_alpha, has_beta;
    float alpha, beta;      /* defaults of the activations that are not unary ops (ir/unary.def has theirs) */
} ActRow;

static const ActRow acts[] = {
    {"Sigmoid", "RNN_ACT_SIGMOID", false, false, 0, 0},
    {"Tanh", "RNN_ACT_TANH", false, false, 0, 0},
    {"Relu", "RNN_ACT_RELU", false, false, 0, 0},
    {"Affine", "RNN_ACT_AFFINE", true, true, 1.0f, 0.0f},
    {"LeakyRelu", "RNN_ACT_LEAKY_RELU", true, false, 0, 0},
    {"ThresholdedRelu", "RNN_ACT_THRESHOLDED_RELU", true, false, 0, 0},
    {"ScaledTanh", "RNN_ACT_SCALED_TANH", true, true, 1.0f, 1.0f},
    {"HardSigmoid", "RNN_ACT_HARD_SIGMOID", true, true, 0, 0},
    {"Elu", "RNN_ACT_ELU", true, false, 0, 0},
    {"Softsign", "RNN_ACT_SOFTSIGN", false, false, 0, 0},
    {"Softplus", "RNN_ACT_SOFTPLUS", false, false, 0, 0},
};

/* Gates per direction: LSTM 4 (i o f c), GRU 3 (z r h), RNN 1. Activations per direction: 3, 2, 1. */
static int gates_of(const Node *n)
{
    return !strncmp(n->op_type, "LSTM", 4) ? 4 : !strncmp(n->op_type, "GRU", 3) ? 3 : 1;
}

static int nacts_of(const Node *n)
{
    return !strncmp(n->op_type, "LSTM", 4) ? 3 : !strncmp(n->op_type, "GRU", 3) ? 2 : 1;
}

/* Fill p from n's attributes and shapes (X and W are inputs `first` and `first` + 1: 3 for the backward
 * ops); kinds[] get the activation enum names. */
static bool rnn_params_at(const Node *n, int first, RnnParams *p, const char **kinds, const char **why)
{
    memset(p, 0, sizeof *p);
    *why = NULL;
    const Value *x = n->inputs[first], *w = n->inputs[first + 1];
    if (x->shape.rank != 3 || w->shape.rank != 3) {
        *why = "X or W not of rank 3";
        return false;
    }
    p->layout = (int)node_attr_int(n, "layout", 0);
    p->seq_length = (size_t)x->shape.dim[p->layout ? 1 : 0];
    p->batch = (size_t)x->shape.dim[p->layout ? 0 : 1];
    p->input_size = (size_t)x->shape.dim[2];
    p->hidden_size = (size_t)(w->shape.dim[1] / gates_of(n));
    const char *dir = node_attr_string(n, "direction", "forward");
    p->direction = !strcmp(dir, "reverse") ? RNN_REVERSE : !strcmp(dir, "bidirectional") ? RNN_BIDIRECTIONAL
                                                                                        : RNN_FORWARD;
    p->clip = node_attr_float(n, "clip", 0.0f);
    p->input_forget = node_attr_int(n, "input_forget", 0) != 0;
    p->linear_before_reset = node_attr_int(n, "linear_before_reset", 0) != 0;
    int per = nacts_of(n), ndir = p->direction == RNN_BIDIRECTIONAL ? 2 : 1;
    for (int i = 0; i < per * ndir; i++)
        kinds[i] = "RNN_ACT_DEFAULT";
    const Attr *a = node_attr(n, "activations");
    if (!a)
        return true;
    if (a->type != AT_STRINGS || a->n != (size_t)(per * ndir)) {
        *why = "activations of another count than the op's per direction";
        return false;
    }
    const Attr *al = node_attr(n, "activation_alpha"), *be = node_attr(n, "activation_beta");
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < a->n; i++) {
        const ActRow *r = NULL;
        for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++)
            if (strcmp(acts[k].name, a->strings[i]) == 0)
                r = &acts[k];
        if (!r) {
            *why = "an unknown activation";
            return false;
        }
        kinds[i] = r->kind;
        const UnaryDef *u = unary_def(r->name);
        p->act[i].alpha = u && u->attr[0].name ? (float)u->attr[0].value : r->alpha;
        p->act[i].beta = u && u->attr[1].name ? (float)u->attr[1].value : r->beta;
        /* activation_alpha/beta are consumed in order by the activations that take them */
        if (r->has_alpha && al && al->type == AT_FLOATS && ia < al->n)
            p->act[i].alpha = al->floats[ia++];
        if (r->has_beta && be && be->type == AT_FLOATS && ib < be->n)
            p->act[i].beta = be->floats[ib++];
    }
    return true;
}

static bool rnn_params(const Node *n, RnnParams *p, const char **kinds, const char **why)
{
    return rnn_params_at(n, 0, p, kinds, why);
}

bool cg_rnn_params(const Node *n, RnnParams *p)
{
    const char *kinds[6], *why;
    return rnn_params_at(n, strstr(n->op_type, "Grad") ? 3 : 0, p, kinds, &why);
}

Status cg_emit_rnn_params(Cg *cg, const Node *n, RnnParams *pp)
{
    RnnParams p;
    const char *kinds[6], *why;
    if (!rnn_params_at(n, strstr(n->op_type, "Grad") ? 3 : 0, &p, kinds, &why))
        return cg_unsupported(cg, "%s", why);
    int nact = nacts_of(n) * (p.direction == RNN_BIDIRECTIONAL ? 2 : 1);
    cg_line(cg, "static const RnnParams p = {.seq_length = %zu, .batch = %zu, .input_size = %zu, .hidden_size = %zu,",
            p.seq_length, p.batch, p.input_size, p.hidden_size);
    cg_line(cg, "    .direction = %s, .layout = %d, .clip = %s, .input_forget = %s, .linear_before_reset = %s,",
            p.direction == RNN_BIDIRECTIONAL ? "RNN_BIDIRECTIONAL" : p.direction == RNN_REVERSE ? "RNN_REVERSE"
                                                                                                : "RNN_FORWARD",
            p.layout, cg_float(cg, p.clip), p.input_forget ? "true" : "false", p.linear_before_reset ? "true" : "false");
    for (int i = 0; i < nact; i++)
        cg_line(cg, "    %s{%s, %s, %s}%s", i == 0 ? ".act = {" : "", kinds[i], cg_float(cg, p.act[i].alpha),
                cg_float(cg, p.act[i].beta), i == nact - 1 ? "}};" : ",");
    *pp = p;
    return ST_OK;
}

static size_t scratch_rnn(const Node *n)
{
    RnnParams p;
    const char *kinds[6], *why;
    if (!rnn_params(n, &p, kinds, &why))
        return 0;
    return !strcmp(n->op_type, "LSTM") ? lstm_forward_workspace(&p)
           : !strcmp(n->op_type, "GRU") ? gru_forward_workspace(&p)
                                        : rnn_forward_workspace(&p);
}

/* The output if present and read, else NULL. */
static const char *out_or_null(Cg *cg, const Node *n, int i)
{
    if (i >= n->noutputs || cg_unused(cg, n->outputs[i]))
        return "NULL";
    return cg_ptr(cg, n->outputs[i]);
}

static Status emit_rnn(Cg *cg, const Node *n)
{
    RnnParams p;
    const char *kinds[6], *why;
    if (!rnn_params(n, &p, kinds, &why))
        return cg_unsupported(cg, "%s", why);
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (v && i != 4 && cg_dtype(cg, v) != DT_FLOAT)
            return cg_unsupported(cg, "input %d of %s", i, dtype_name(v->dtype));
    }
    const Value *seq = node_input(n, 4);
    if (seq && seq->dtype != DT_INT32)
        return cg_unsupported(cg, "sequence_lens of %s", dtype_name(seq->dtype));
    Status st = cg_emit_rnn_params(cg, n, &p);
    if (st)
        return st;
    const char *x = cg_ptr(cg, n->inputs[0]), *w = cg_ptr(cg, n->inputs[1]), *r = cg_ptr(cg, n->inputs[2]);
    const char *b = cg_ptr_or_null(cg, node_input(n, 3)), *sl = cg_ptr_or_null(cg, seq);
    const char *h0 = cg_ptr_or_null(cg, node_input(n, 5));
    if (!strcmp(n->op_type, "LSTM"))
        cg_line(cg, "lstm_forward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, &p, %s);", out_or_null(cg, n, 0),
                out_or_null(cg, n, 1), out_or_null(cg, n, 2), x, w, r, b, sl, h0,
                cg_ptr_or_null(cg, node_input(n, 6)), cg_ptr_or_null(cg, node_input(n, 7)), cg_scratch(cg));
    else
        cg_line(cg, "%s(%s, %s, %s, %s, %s, %s, %s, %s, &p, %s);", !strcmp(n->op_type, "GRU") ? "gru_forward" : "rnn_forward",
                out_or_null(cg, n, 0), out_or_null(cg, n, 1), x, w, r, b, sl, h0, cg_scratch(cg));
    return ST_OK;
}

const Emitter rnn_emitters[] = {
    EMIT("LSTM", emit_rnn, scratch_rnn, EM_F32),
    EMIT("GRU", emit_rnn, scratch_rnn, EM_F32),
    EMIT("RNN", emit_rnn, scratch_rnn, EM_F32),
    {0},
};

/* ======================================================================== backward */

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
