/* test_grad_rnn.c - gradients of the recurrent family (LSTM, GRU, RNN) against finite differences.
 * Each case is one node with X, W, R, B and (when given) the initial states trainable, the loss over
 * every output (Y, Y_h, Y_c), differentiated by pass_autodiff into the training forward and the fused
 * backward op (onnxtune.LSTMGrad / GRUGrad / RNNGrad, kernels/rnn.c), compiled and checked by
 * tests/gradcheck.h (directional derivatives, tolerance 1e-3 relative, eps 2e-2). Directions forward,
 * reverse, bidirectional; layouts 0 and 1; with and without initial states; sequence_lens; clip; GRU
 * with and without linear_before_reset; RNN with Tanh and Relu. Then the refusals autodiff must give.
 * PyTorch equivalence of whole fine-tuning runs is test_train_e2e's (lstm_all_*, gru_all_*).
 */
#include "test.h"

#include "gradcheck.h"

#include <stdint.h>

#define IN(...) ((Value *[]){__VA_ARGS__})

enum { SEQ = 3, BATCH = 2, INPUT = 3, HIDDEN = 4 };

typedef struct RnnCase {
    const char *op;         /* LSTM, GRU, RNN */
    const char *direction;
    int layout;
    bool states;            /* initial_h (and initial_c) trainable */
    bool bias;
    const char *extra;      /* more attributes (gc_attrs syntax), or NULL */
    const char *act;        /* RNN: "Relu" (activations), or NULL */
    const int32_t *lens;    /* sequence_lens [BATCH], or NULL */
} RnnCase;

/* An int32 constant [n]. */
static Value *int32_const(GcCase *c, const int32_t *vals, int64_t n)
{
    if (!c || c->d.status)
        return NULL;
    Shape s = shape_make(1, &n);
    Value *v = graph_const(c->g, "sequence_lens", DT_INT32, &s, &c->d);
    for (int64_t i = 0; v && i < n; i++)
        tensor_set_i64(v->init, (size_t)i, vals[i]);
    return v;
}

static void rnn_case(GradCheck *s, const RnnCase *rc)
{
    char label[128];
    snprintf(label, sizeof label, "%s layout %d%s%s%s%s%s%s", rc->direction, rc->layout,
             rc->states ? ", initial states" : "", rc->bias ? "" : ", no B", rc->extra ? ", " : "",
             rc->extra ? rc->extra : "", rc->act ? ", " : "", rc->act ? rc->act : "");
    if (rc->lens)
        snprintf(label + strlen(label), sizeof label - strlen(label), ", sequence_lens [%d,%d]", rc->lens[0],
                 rc->lens[1]);
    GcCase *c = gc_case(s, rc->op, label);
    bool lstm = !strcmp(rc->op, "LSTM");
    int gates = lstm ? 4 : !strcmp(rc->op, "GRU") ? 3 : 1;
    int nd = !strcmp(rc->direction, "bidirectional") ? 2 : 1;
    char xd[32], wd[32], rd[32], bd[32], hd[32];
    snprintf(xd, sizeof xd, "%d,%d,%d", rc->layout ? BATCH : SEQ, rc->layout ? SEQ : BATCH, INPUT);
    snprintf(wd, sizeof wd, "%d,%d,%d", nd, gates * HIDDEN, INPUT);
    snprintf(rd, sizeof rd, "%d,%d,%d", nd, gates * HIDDEN, HIDDEN);
    snprintf(bd, sizeof bd, "%d,%d", nd, 2 * gates * HIDDEN);
    snprintf(hd, sizeof hd, "%d,%d,%d", rc->layout ? BATCH : nd, rc->layout ? nd : BATCH, HIDDEN);
    bool relu = rc->act && !strcmp(rc->act, "Relu");
    Value *x = gc_param(c, "x", xd, -1, 1);
    Value *w = gc_param(c, "w", wd, -0.6, 0.6), *r = gc_param(c, "r", rd, -0.6, 0.6);
    /* Relu: biases well above 0 keep the pre-activations away from the kink */
    Value *b = rc->bias ? gc_param(c, "b", bd, relu ? 0.5 : -0.5, relu ? 1.0 : 0.5) : NULL;
    Value *seq = rc->lens ? int32_const(c, rc->lens, BATCH) : NULL;
    Value *h0 = rc->states ? gc_param(c, "initial_h", hd, -0.8, 0.8) : NULL;
    Value *c0 = rc->states && lstm ? gc_param(c, "initial_c", hd, -0.8, 0.8) : NULL;
    if (relu && w && x) { /* small input weights: pre-activations stay positive */
        float *wv = gc_values(c, w);
        for (size_t i = 0; wv && i < (size_t)nd * HIDDEN * INPUT; i++)
            wv[i] *= 0.3f;
        float *rv = gc_values(c, r);
        for (size_t i = 0; rv && i < (size_t)nd * HIDDEN * HIDDEN; i++)
            rv[i] *= 0.3f;
    }
    char attrs[160];
    snprintf(attrs, sizeof attrs, "hidden_size=%d direction='%s' layout=%d%s%s", HIDDEN, rc->direction, rc->layout,
             rc->extra ? " " : "", rc->extra ? rc->extra : "");
    int nin = lstm ? (c0 ? 7 : h0 ? 6 : seq ? 5 : 4) : (h0 ? 6 : seq ? 5 : 4);
    Node *n = gc_node(c, rc->op, nin, IN(x, w, r, b, seq, h0, c0), lstm ? 3 : 2, attrs);
    if (n && rc->act) {
        const char **names = arena_calloc(c->g->arena, 2, sizeof *names);
        names[0] = names[1] = rc->act;
        Attr a = {.name = "activations", .type = AT_STRINGS, .n = (size_t)nd, .strings = names};
        if (!node_add_attr(c->g, n, &a))
            gc_fail(c, "out of memory");
    }
    if (c) {
        /* the loss sums ~100 float32 terms: directional derivatives below ~1e-3 (random directions
         * nearly orthogonal to the gradient) are judged to an absolute 2e-5 */
        c->atol = 2e-5;
        /* clip: steps of 2e-2 along every parameter move many pre-activations across a clip bound,
         * which finite differences cannot follow; a smaller step, and still a few of ~100 gate
         * inputs land within it of a bound (measured: 2e-3..1e-2), hence 2e-2 */
        if (rc->extra && strstr(rc->extra, "clip")) {
            c->eps = 1e-3;
            c->tol = 2e-2;
        }
    }
    if (n)
        gc_check(c, n->noutputs, n->outputs);
}

/* Autodiff refuses what the backward cannot do, naming the node and the input or attribute. */
static void check_refusal(const char *op, const char *attrs, bool peephole, const char *want)
{
    GradCheck *s = gc_new("grad_rnn_refuse");
    GcCase *c = s ? gc_case(s, op, "refusal") : NULL;
    if (!c) {
        CHECK(false);
        return;
    }
    Value *x = gc_param(c, "x", "3,2,3", -1, 1), *w = gc_param(c, "w", "1,16,3", -1, 1);
    Value *r = gc_param(c, "r", "1,16,4", -1, 1), *p = peephole ? gc_data(c, "p", "1,12", -1, 1) : NULL;
    Node *n = gc_node(c, op, peephole ? 8 : 3, IN(x, w, r, NULL, NULL, NULL, NULL, p), 3, attrs);
    if (n)
        gc_check(c, 1, n->outputs);
    bool ok = c->d.status == ST_UNSUPPORTED && strstr(c->d.msg, want) && strstr(c->d.msg, "node '");
    printf("  refusal %-36s %s: %s\n", want, ok ? "PASS" : "FAIL", c->d.msg);
    CHECK(ok);
    for (int i = 0; i < c->nparams; i++)
        free(c->params[i].data);
    for (int k = 0; k < c->ny; k++)
        free(c->r[k]);
    model_free(c->m);
    free(c);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
    free(s);
}

int main(void)
{
    GradCheck *s = gc_new("grad_rnn");
    CHECK(s != NULL);
    if (!s)
        return test_summary("test_grad_rnn");
    static const char *const dirs[] = {"forward", "reverse", "bidirectional"};
    static const char *const ops[] = {"LSTM", "GRU", "RNN"};
    static const int32_t lens[BATCH] = {2, 3};
    for (size_t o = 0; o < 3; o++) {
        for (size_t dir = 0; dir < 3; dir++)
            for (int layout = 0; layout < 2; layout++)
                for (int states = 0; states < 2; states++)
                    rnn_case(s, &(RnnCase){ops[o], dirs[dir], layout, states, true,
                                           o == 1 ? "linear_before_reset=1" : NULL, NULL, NULL});
        rnn_case(s, &(RnnCase){ops[o], "forward", 0, false, false, NULL, NULL, NULL});
        rnn_case(s, &(RnnCase){ops[o], "bidirectional", 1, true, true, o == 1 ? "linear_before_reset=1" : NULL,
                               NULL, lens});
        rnn_case(s, &(RnnCase){ops[o], "bidirectional", 0, true, true, "clip=0.7", NULL, NULL});
    }
    for (size_t dir = 0; dir < 3; dir++)
        rnn_case(s, &(RnnCase){"GRU", dirs[dir], dir == 1, dir != 0, true, NULL, NULL, NULL});
    rnn_case(s, &(RnnCase){"GRU", "bidirectional", 0, true, true, NULL, NULL, lens});
    rnn_case(s, &(RnnCase){"RNN", "forward", 1, true, true, NULL, "Relu", NULL});
    rnn_case(s, &(RnnCase){"RNN", "bidirectional", 0, true, true, NULL, "Relu", NULL});
    printf("LSTM, GRU, RNN gradients against finite differences:\n");
    int failures = gc_run(s);
    CHECK_EQ_INT(failures, 0);

    printf("refusals:\n");
    check_refusal("LSTM", "hidden_size=4", true, "input 7 (P, peepholes)");
    check_refusal("LSTM", "hidden_size=4 input_forget=1", false, "attribute input_forget=1");
    return test_summary("test_grad_rnn");
}
