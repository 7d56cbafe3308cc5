/* ops_rnn.c - rules of the recurrent family: LSTM, GRU and RNN (opsets 1, 7, 14 layout). One shape rule
 * checks every weight against the gate count and hidden size and gives Y, Y_h (and Y_c) in either layout.
 * Activations and clip do not change shapes and are left to the kernels; nothing here folds. */
#include "ir.h"

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
    Status st;
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

/* name, domain, family, canonical opset, canon, shape, fold, flops, grad, then the signature */
const OpRule rnn_rules[] = {
    {"LSTM", "", "rnn", 17, rnn_canon, rnn_shape, NULL, rnn_flops, NULL, ARITY(3, 8, 0, 3), REQUIRED(3),
     DTYPES(IN_SAME(0, 1), IN_SAME(0, 2), IN_SAME(0, 3), IN_SAME(0, 5), IN_SAME(0, 6), IN_SAME(0, 7),
            IN_IS(4, DT_INT32))},
    {"GRU", "", "rnn", 17, rnn_canon, rnn_shape, NULL, rnn_flops, NULL, ARITY(3, 6, 0, 2), REQUIRED(3),
     DTYPES(IN_SAME(0, 1), IN_SAME(0, 2), IN_SAME(0, 3), IN_SAME(0, 5), IN_IS(4, DT_INT32))},
    {"RNN", "", "rnn", 17, rnn_canon, rnn_shape, NULL, rnn_flops, NULL, ARITY(3, 6, 0, 2), REQUIRED(3),
     DTYPES(IN_SAME(0, 1), IN_SAME(0, 2), IN_SAME(0, 3), IN_SAME(0, 5), IN_IS(4, DT_INT32))},
    {0},
};
