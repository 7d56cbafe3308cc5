/* ops_rnn.c - rules of the recurrent family: LSTM, GRU and RNN (opsets 1, 7, 14 layout). One shape rule
 * checks every weight against the gate count and hidden size and gives Y, Y_h (and Y_c) in either layout.
 * Activations and clip do not change shapes and are left to the kernels; nothing here folds. The
 * gradient rule turns the forward into its onnxtune training variant (which saves each step's gates)
 * and adds one fused backward op, onnxtune.LSTMGrad / GRUGrad / RNNGrad (kernels/rnn.c). */
#include "ir.h"

#include <stdio.h>
#include <string.h>

static int gate_count(const Node *n)
{
    return strcmp(n->op_type, "LSTM") == 0 ? 4 : strcmp(n->op_type, "GRU") == 0 ? 3 : 1;
}

/* LSTM-1, GRU-1 and RNN-1 had output_sequence, which only said Y may be omitted: drop it. */
static Status rnn_canon(Graph *g, Node *n, Diag *d)
{
    (void)g, (void)d;
    if (n->opset < 7)
        node_remove_attr(n, "output_sequence");
    return ST_OK;
}

/* Input `i` (when present, of known rank) must have `rank` dims matching want[k] where that is >= 0. */
static Status check_input(const Node *n, int i, const char *what, int rank, const int64_t *want, Diag *d)
{
    const Value *v = node_input(n, i);
    if (!v || v->shape.rank < 0)
        return ST_OK;
    bool bad = v->shape.rank != rank;
    for (int k = 0; !bad && k < rank; k++)
        bad = want[k] >= 0 && v->shape.dim[k] >= 0 && v->shape.dim[k] != want[k];
    if (!bad)
        return ST_OK;
    char a[160], b[160];
    Shape w = shape_make(rank, want);
    return diag_node(d, n, ST_SHAPE, "input %d (%s) has shape %s, expected %s", i, what,
                     shape_str(&v->shape, a, sizeof a), shape_str(&w, b, sizeof b));
}

static int64_t in_dim(const Node *n, int i, int k)
{
    const Value *v = node_input(n, i);
    return v && v->shape.rank > k ? v->shape.dim[k] : -1;
}

static Status rnn_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    bool lstm = strcmp(n->op_type, "LSTM") == 0;
    Status st = op_check_arity(n, 3, lstm ? 8 : 6, 0, lstm ? 3 : 2, d);
    if (!st)
        st = op_require_inputs(n, 3, d);
    for (int i = 1; !st && i < n->ninputs; i++)
        if (i != 4)
            st = op_same_dtype(n, 0, i, d);
    if (!st)
        st = op_check_dtype(n, 4, DT_INT32, d);
    if (st)
        return st;
    int64_t layout = node_attr_int(n, "layout", 0);
    if (layout != 0 && layout != 1)
        return diag_node(d, n, ST_INVALID, "attribute layout must be 0 or 1, not %lld", (long long)layout);
    const char *dir = node_attr_string(n, "direction", "forward");
    int64_t nd;
    if (strcmp(dir, "forward") == 0 || strcmp(dir, "reverse") == 0)
        nd = 1;
    else if (strcmp(dir, "bidirectional") == 0)
        nd = 2;
    else
        return diag_node(d, n, ST_INVALID, "direction '%s' is not forward, reverse or bidirectional", dir);
    int64_t gates = gate_count(n);
    const Shape *x = &n->inputs[0]->shape;
    char a[160];
    if (x->rank >= 0 && x->rank != 3)
        return diag_node(d, n, ST_SHAPE, "input 0 (X) shape %s must be 3-D (%s)", shape_str(x, a, sizeof a),
                         layout ? "batch, seq, input" : "seq, batch, input");
    /* hidden size: the attribute, else R's last dim, else W's rows / gates */
    int64_t h = node_attr_int(n, "hidden_size", -1);
    if (node_attr(n, "hidden_size") && (h < 1 || h > ((int64_t)1 << 32)))
        return diag_node(d, n, ST_INVALID, "attribute hidden_size must be positive, not %lld", (long long)h);
    if (h < 0)
        h = in_dim(n, 2, 2);
    if (h < 0 && in_dim(n, 1, 1) >= 0 && in_dim(n, 1, 1) % gates == 0)
        h = in_dim(n, 1, 1) / gates;
    int64_t batch = x->rank == 3 ? x->dim[layout ? 0 : 1] : -1;
    int64_t isz = x->rank == 3 ? x->dim[2] : -1, gh = h >= 0 ? gates * h : -1;
    if ((st = check_input(n, 1, "W", 3, (int64_t[]){nd, gh, isz}, d)) ||
        (st = check_input(n, 2, "R", 3, (int64_t[]){nd, gh, h}, d)) ||
        (st = check_input(n, 3, "B", 2, (int64_t[]){nd, gh >= 0 ? 2 * gh : -1}, d)) ||
        (st = check_input(n, 4, "sequence_lens", 1, (int64_t[]){batch}, d)))
        return st;
    int64_t hw[3] = {nd, batch, h}, hw1[3] = {batch, nd, h};
    if ((st = check_input(n, 5, "initial_h", 3, layout ? hw1 : hw, d)) ||
        (lstm && (st = check_input(n, 6, "initial_c", 3, layout ? hw1 : hw, d))) ||
        (lstm && (st = check_input(n, 7, "P", 2, (int64_t[]){nd, h >= 0 ? 3 * h : -1}, d))))
        return st;
    DType t = n->inputs[0]->dtype;
    Shape y = shape_make(4, NULL), yh = shape_make(3, NULL);
    int si = layout ? 1 : 0, bi = layout ? 0 : 1; /* where seq and batch sit in X */
    if (layout == 0) { /* Y [seq, nd, batch, H], Y_h [nd, batch, H] */
        y.dim[1] = nd, y.dim[3] = h, yh.dim[0] = nd, yh.dim[2] = h;
        if (x->rank == 3) {
            dim_copy(&y, 0, x, si);
            dim_copy(&y, 2, x, bi);
            dim_copy(&yh, 1, x, bi);
        }
    } else { /* Y [batch, seq, nd, H], Y_h [batch, nd, H] */
        y.dim[2] = nd, y.dim[3] = h, yh.dim[1] = nd, yh.dim[2] = h;
        if (x->rank == 3) {
            dim_copy(&y, 0, x, bi);
            dim_copy(&y, 1, x, si);
            dim_copy(&yh, 0, x, bi);
        }
    }
    op_set_output(n, 0, t, &y);
    op_set_output(n, 1, t, &yh);
    op_set_output(n, 2, t, &yh);
    return ST_OK;
}

/* MACs of the gate matmuls: seq * batch * directions * gates * hidden * (input + hidden) */
static double rnn_flops(const Node *n)
{
    if (n->ninputs < 3 || !n->inputs[0] || !n->inputs[1] || !n->inputs[2])
        return 0;
    const Shape *x = &n->inputs[0]->shape, *w = &n->inputs[1]->shape, *r = &n->inputs[2]->shape;
    if (!shape_is_static(x) || !shape_is_static(w) || !shape_is_static(r) || x->rank != 3 || w->rank != 3 ||
        r->rank != 3)
        return 0;
    /* W [nd, G*H, I], R [nd, G*H, H]: per step and batch row, nd*G*H*(I+H) */
    return (double)x->dim[0] * (double)x->dim[1] * (double)w->dim[0] * (double)w->dim[1] *
           (double)(w->dim[2] + r->dim[2]);
}

/* ======================================================================== training */

/* Per step and batch row, the floats of the record a training forward saves, in units of H (kernels.h:
 * LSTM_SAVED, GRU_SAVED, RNN_SAVED). */
static int64_t saved_units(const char *op)
{
    return !strncmp(op, "LSTM", 4) ? 7 : !strncmp(op, "GRU", 3) ? 5 : 2;
}

static int grad_gate_count(const char *op)
{
    return !strncmp(op, "LSTM", 4) ? 4 : !strncmp(op, "GRU", 3) ? 3 : 1;
}

/* onnxtune.LSTM / GRU / RNN (1): the ONNX op's inputs and attributes (no peepholes, no input_forget);
 * outputs Y, Y_h (, Y_c), then Saved [D, seq, batch, K*H] (kernels.h), what the backward reads. */
static Status rnn_train_shape(Graph *g, Node *n, Diag *d)
{
    if (n->noutputs < 1)
        return diag_node(d, n, ST_INVALID, "needs the output Saved");
    n->noutputs--;
    Status st = rnn_shape(g, n, d);
    n->noutputs++;
    if (st)
        return st;
    const Value *x = n->inputs[0];
    int64_t layout = node_attr_int(n, "layout", 0);
    int64_t nd = !strcmp(node_attr_string(n, "direction", "forward"), "bidirectional") ? 2 : 1;
    int64_t h = in_dim(n, 2, 2);
    Shape sv = shape_make(4, (int64_t[]){nd, -1, -1, h >= 0 ? saved_units(n->op_type) * h : -1});
    if (x->shape.rank == 3) {
        dim_copy(&sv, 1, &x->shape, layout ? 1 : 0);
        dim_copy(&sv, 2, &x->shape, layout ? 0 : 1);
    }
    op_set_output(n, n->noutputs - 1, x->dtype, &sv);
    return ST_OK;
}

/* onnxtune.LSTMGrad / GRUGrad / RNNGrad (1): dY, dY_h, dY_c, X, W, R, B, sequence_lens, initial_h,
 * initial_c, Saved (absent ones omitted; dY_c and initial_c only for LSTM) -> dX, dW, dR, dB [D, 2*G*H],
 * d_initial_h (, d_initial_c) in the shapes of X, W, R, B and the states. Attributes: the forward's. */
static Status rnn_grad_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    bool lstm = !strncmp(n->op_type, "LSTM", 4);
    Status st = op_check_arity(n, 11, 11, 1, lstm ? 6 : 5, d);
    if (st)
        return st;
    for (int i = 3; i < 6; i++)
        if (!n->inputs[i])
            return diag_node(d, n, ST_INVALID, "input %d (X, W or R) is missing", i);
    if (!n->inputs[10])
        return diag_node(d, n, ST_INVALID, "input 10 (Saved) is missing");
    const Shape *x = &n->inputs[3]->shape, *w = &n->inputs[4]->shape, *r = &n->inputs[5]->shape;
    if (x->rank != 3 || w->rank != 3 || r->rank != 3)
        return diag_node(d, n, ST_SHAPE, "X, W and R must be 3-D");
    DType t = n->inputs[3]->dtype;
    int64_t layout = node_attr_int(n, "layout", 0), h = r->dim[2];
    Shape b = shape_make(2, (int64_t[]){w->dim[0], w->dim[1] >= 0 ? 2 * w->dim[1] : -1});
    Shape st_shape = shape_make(3, NULL);
    dim_copy(&st_shape, layout ? 1 : 0, w, 0);
    dim_copy(&st_shape, layout ? 0 : 1, x, layout ? 0 : 1);
    st_shape.dim[2] = h;
    if (w->dim[1] >= 0 && h >= 0 && w->dim[1] != grad_gate_count(n->op_type) * h)
        return diag_node(d, n, ST_SHAPE, "W has %lld rows, not gates * hidden", (long long)w->dim[1]);
    op_set_output(n, 0, t, x);
    op_set_output(n, 1, t, w);
    op_set_output(n, 2, t, r);
    op_set_output(n, 3, t, &b);
    op_set_output(n, 4, t, &st_shape);
    op_set_output(n, 5, t, &st_shape);
    return ST_OK;
}

/* LSTM, GRU, RNN (ONNX 14), per direction and step t (processing order), with f/g/h the activations:
 *   LSTM  i, o, f = f(clip(Xt Wi,o,f^T + h_prev Ri,o,f^T + b)), c~ = g(clip(Xt Wc^T + h_prev Rc^T + b)),
 *         c = f * c_prev + i * c~, h = o * h(c)
 *   GRU   z, r = f(clip(...)), n = g(clip(Xt Wh^T + Wbh + r * (h_prev Rh^T + Rbh)))   (linear_before_reset)
 *                              n = g(clip(Xt Wh^T + (r * h_prev) Rh^T + Rbh + Wbh))   (otherwise)
 *         h = (1 - z) * n + z * h_prev
 *   RNN   h = f(clip(Xt Wi^T + h_prev Ri^T + Wbi + Rbi))
 * differentiated by backpropagation through time in one fused op (kernels/rnn.c backward_run). The
 * forward becomes onnxtune.<op>, which also outputs the per-step record the backward reads; then
 * <op>Grad(dY, dY_h, dY_c, X, W, R, B, sequence_lens, initial_h, initial_c, Saved) -> dX, dW, dR, dB,
 * d_initial_h, d_initial_c. Peepholes and input_forget (which PyTorch never exports) are refused. */
static Status grad_rnn(GradCtx *c, Node *n, Diag *d)
{
    Graph *g = grad_graph(c);
    bool lstm = !strcmp(n->op_type, "LSTM");
    Value *dy = grad_output(c, n, 0), *dyh = grad_output(c, n, 1), *dyc = lstm ? grad_output(c, n, 2) : NULL;
    if (!dy && !dyh && !dyc)
        return ST_OK;
    if (lstm && node_input(n, 7))
        return diag_node(d, n, ST_UNSUPPORTED, "training through input 7 (P, peepholes) is not supported");
    if (node_attr_int(n, "input_forget", 0) != 0)
        return diag_node(d, n, ST_UNSUPPORTED, "training with attribute input_forget=1 is not supported");
    for (int i = 0; i < 3; i++)
        if (!shape_is_static(&n->inputs[i]->shape)) {
            char a[128];
            return diag_node(d, n, ST_SHAPE, "input %d shape %s is not static (pass --batch for training)", i,
                             shape_str(&n->inputs[i]->shape, a, sizeof a));
        }
    /* the training forward: the same node in the onnxtune domain with every output and Saved last */
    int nout = lstm ? 4 : 3;
    Value **outs = arena_calloc(g->arena, (size_t)nout, sizeof *outs);
    const char *dom = arena_strdup(g->arena, ONNXTUNE_DOMAIN);
    if (!outs || !dom)
        return diag_node(d, n, ST_NOMEM, "out of memory");
    for (int i = 0; i < nout; i++) {
        if (i < n->noutputs && i < nout - 1) {
            outs[i] = n->outputs[i];
            continue;
        }
        char *hint = arena_printf(g->arena, "%s_%s", n->name, i == nout - 1 ? "Saved" : "Y_unused");
        if (!hint || !(outs[i] = graph_new_value(g, hint, d)))
            return d->status ? d->status : diag_node(d, n, ST_NOMEM, "out of memory");
        outs[i]->producer = n;
        outs[i]->producer_slot = i;
    }
    n->outputs = outs;
    n->noutputs = nout;
    n->domain = dom;
    Status st;
    if ((st = node_set_op(g, n, n->op_type, d)))
        return st;
    n->opset = 1;
    if ((st = infer_node(g, n, d)))
        return st;
    char op[16];
    snprintf(op, sizeof op, "%sGrad", n->op_type);
    Value *in[11] = {dy, dyh, dyc, n->inputs[0], n->inputs[1], n->inputs[2], node_input(n, 3), node_input(n, 4),
                     node_input(n, 5), lstm ? node_input(n, 6) : NULL, outs[nout - 1]};
    Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, op, 11, in, lstm ? 6 : 5, d);
    if (!b)
        return d->status;
    for (int i = 0; i < n->nattrs; i++)
        if (!node_add_attr(g, b, &n->attrs[i]))
            return diag_node(d, n, ST_NOMEM, "out of memory");
    if ((st = grad_finish_node(c, b, d)))
        return st;
    static const int input_of[6] = {0, 1, 2, 3, 5, 6}; /* X, W, R, B, initial_h, initial_c */
    for (int k = 0; k < b->noutputs; k++) {
        Value *v = node_input(n, input_of[k]);
        if (!v || !grad_needed(c, n, input_of[k]))
            continue;
        Value *gk = grad_unbroadcast(c, n, b->outputs[k], &v->shape, d);
        if (!gk || (st = grad_accumulate(c, n, input_of[k], gk, d)))
            return d->status;
    }
    return ST_OK;
}

static double rnn_grad_flops(const Node *n)
{
    if (n->ninputs < 6 || !n->inputs[3] || !n->inputs[4] || !n->inputs[5])
        return 0;
    const Shape *x = &n->inputs[3]->shape, *w = &n->inputs[4]->shape, *r = &n->inputs[5]->shape;
    if (!shape_is_static(x) || !shape_is_static(w) || !shape_is_static(r) || x->rank != 3 || w->rank != 3 ||
        r->rank != 3)
        return 0;
    /* twice the forward's matmuls (dX and dW; dh_prev and dR) */
    return 2.0 * (double)x->dim[0] * (double)x->dim[1] * (double)w->dim[0] * (double)w->dim[1] *
           (double)(w->dim[2] + r->dim[2]);
}

/* name, domain, family, canonical opset, canon, shape, fold, flops, grad */
const OpRule rnn_rules[] = {
    {"LSTM", "", "rnn", 17, rnn_canon, rnn_shape, NULL, rnn_flops, grad_rnn},
    {"GRU", "", "rnn", 17, rnn_canon, rnn_shape, NULL, rnn_flops, grad_rnn},
    {"RNN", "", "rnn", 17, rnn_canon, rnn_shape, NULL, rnn_flops, grad_rnn},
    {"LSTM", ONNXTUNE_DOMAIN, "rnn", 1, NULL, rnn_train_shape, NULL, rnn_flops, NULL},
    {"GRU", ONNXTUNE_DOMAIN, "rnn", 1, NULL, rnn_train_shape, NULL, rnn_flops, NULL},
    {"RNN", ONNXTUNE_DOMAIN, "rnn", 1, NULL, rnn_train_shape, NULL, rnn_flops, NULL},
    {"LSTMGrad", ONNXTUNE_DOMAIN, "rnn", 1, NULL, rnn_grad_shape, NULL, rnn_grad_flops, NULL},
    {"GRUGrad", ONNXTUNE_DOMAIN, "rnn", 1, NULL, rnn_grad_shape, NULL, rnn_grad_flops, NULL},
    {"RNNGrad", ONNXTUNE_DOMAIN, "rnn", 1, NULL, rnn_grad_shape, NULL, rnn_grad_flops, NULL},
    {0},
};
