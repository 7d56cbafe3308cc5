/* test_grad_rnn.c - gradients of the recurrent family (LSTM, GRU, RNN) against finite differences.
 * Each case is one node with X, W, R, B and (when given) the initial states trainable, the loss over
 * every output (Y, Y_h, Y_c), differentiated by pass_autodiff into the training forward and the fused
 * backward op (onnxtune.LSTMGrad / GRUGrad / RNNGrad, kernels/rnn.c), compiled and checked by
 * tests/gradcheck.h (directional derivatives, tolerance 1e-3 relative, eps 2e-2). Directions forward,
 * reverse, bidirectional; layouts 0 and 1; with and without initial states; sequence_lens; clip; GRU
 * with and without linear_before_reset; RNN with Tanh and Relu. Some cases (and every clip case, where
 * steps cross clip bounds and finite differences of the float32 program cannot decide) also compare
 * each gradient with central differences (step 1e-6) of a float64 forward written here from the ONNX
 * equations (ref_loss), tolerance 1e-4 of max|ref|. Then the refusals autodiff must give.
 * PyTorch equivalence of whole fine-tuning runs is test_train_e2e's (lstm_all_*, gru_all_*).
 */
#include "test.h"

#include "gradcheck.h"

#include <math.h>
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
    bool reference;         /* also against the float64 reference (ref_loss) */
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

/* ---- a float64 reference: the ONNX equations written out, and central differences of its loss ---- */

typedef struct RefRun {
    const RnnCase *rc;
    int nd, gates;
    double *v[6];           /* x, w, r, b, initial_h, initial_c (NULL when absent) */
    const float *rk[3];     /* R of Y, Y_h, Y_c */
} RefRun;

static double sigm(double x)
{
    return 1 / (1 + exp(-x));
}

/* L = sum_k <Y_k, R_k> of the forward (ONNX LSTM/GRU/RNN-14, activations Sigmoid/Tanh or Relu). */
static double ref_loss(const RefRun *q)
{
    const RnnCase *rc = q->rc;
    bool lstm = q->gates == 4, gru = q->gates == 3, lbr = rc->extra && strstr(rc->extra, "linear_before_reset=1");
    double clip = rc->extra && strstr(rc->extra, "clip=") ? atof(strstr(rc->extra, "clip=") + 5) : 0;
    bool relu = rc->act && !strcmp(rc->act, "Relu");
    int H = HIDDEN, G = q->gates, D = q->nd;
    double L = 0;
    for (int d = 0; d < D; d++) {
        bool reverse = !strcmp(rc->direction, "reverse") || d == 1;
        const double *w = q->v[1] + d * G * H * INPUT, *r = q->v[2] + d * G * H * H;
        const double *wb = q->v[3] ? q->v[3] + d * 2 * G * H : NULL, *rb = wb ? wb + G * H : NULL;
        for (int b = 0; b < BATCH; b++) {
            int so = (rc->layout ? b * D + d : d * BATCH + b) * H, len = rc->lens ? rc->lens[b] : SEQ;
            double h[HIDDEN], c[HIDDEN];
            for (int j = 0; j < H; j++) {
                h[j] = q->v[4] ? q->v[4][so + j] : 0;
                c[j] = q->v[5] ? q->v[5][so + j] : 0;
            }
            for (int s = 0; s < SEQ; s++) {
                int t = reverse ? SEQ - 1 - s : s;
                if (t >= len)
                    continue;
                const double *x = q->v[0] + (rc->layout ? b * SEQ + t : t * BATCH + b) * INPUT;
                double xw[4 * HIDDEN], hr[4 * HIDDEN], nh[HIDDEN], nc[HIDDEN];
                for (int k = 0; k < G * H; k++) {
                    xw[k] = wb ? wb[k] : 0;
                    hr[k] = rb ? rb[k] : 0;
                    for (int i = 0; i < INPUT; i++)
                        xw[k] += w[k * INPUT + i] * x[i];
                    for (int m = 0; m < H; m++)
                        hr[k] += r[k * H + m] * h[m];
                }
                #define CL(v) (clip > 0 ? fmin(fmax((v), -clip), clip) : (v))
                for (int j = 0; j < H; j++) {
                    if (lstm) {
                        double i_ = sigm(CL(xw[j] + hr[j])), o_ = sigm(CL(xw[H + j] + hr[H + j]));
                        double f_ = sigm(CL(xw[2 * H + j] + hr[2 * H + j])), g_ = tanh(CL(xw[3 * H + j] + hr[3 * H + j]));
                        nc[j] = f_ * c[j] + i_ * g_;
                        nh[j] = o_ * tanh(nc[j]);
                    } else if (gru) {
                        double z = sigm(CL(xw[j] + hr[j])), rr = sigm(CL(xw[H + j] + hr[H + j])), pre;
                        if (lbr) {
                            pre = xw[2 * H + j] + rr * hr[2 * H + j];
                        } else { /* Rh (r * h) + Rbh */
                            pre = xw[2 * H + j] + (rb ? rb[2 * H + j] : 0);
                            for (int m = 0; m < H; m++)
                                pre += r[(2 * H + j) * H + m] * sigm(CL(xw[H + m] + hr[H + m])) * h[m];
                        }
                        nh[j] = (1 - z) * tanh(CL(pre)) + z * h[j];
                    } else {
                        double pre = CL(xw[j] + hr[j]);
                        nh[j] = relu ? fmax(pre, 0) : tanh(pre);
                    }
                }
                #undef CL
                memcpy(h, nh, sizeof h);
                if (lstm)
                    memcpy(c, nc, sizeof c);
                int yo = (rc->layout ? (b * SEQ + t) * D + d : (t * D + d) * BATCH + b) * H;
                for (int j = 0; j < H; j++)
                    L += h[j] * q->rk[0][yo + j];
            }
            for (int j = 0; j < H; j++)
                L += h[j] * q->rk[1][so + j] + (lstm ? c[j] * q->rk[2][so + j] : 0);
        }
    }
    return L;
}

/* After gc_check: every parameter's gradient by central differences (step 1e-6) of ref_loss in float64,
 * as the case's reference (tolerance 1e-4 of max|ref|, the float32 kernels against float64). */
static void expect_ref_grads(GcCase *c, const RnnCase *rc, Value *const *params, int nd, int gates)
{
    if (!c || c->d.status || !c->ready)
        return;
    RefRun q = {.rc = rc, .nd = nd, .gates = gates};
    size_t n[6] = {0};
    for (int i = 0; i < 6; i++) {
        float *f = params[i] ? gc_values(c, params[i]) : NULL;
        if (!f || !shape_numel(&params[i]->shape, &n[i]))
            continue;
        q.v[i] = malloc(n[i] * sizeof(double));
        for (size_t k = 0; k < n[i]; k++)
            q.v[i][k] = f[k];
    }
    for (int k = 0; k < c->ny && k < 3; k++)
        q.rk[k] = c->r[k];
    for (int i = 0; i < 6; i++) {
        if (!q.v[i])
            continue;
        float *want = malloc(n[i] * sizeof(float));
        for (size_t k = 0; k < n[i]; k++) {
            double keep = q.v[i][k], e = 1e-6;
            q.v[i][k] = keep + e;
            double lp = ref_loss(&q);
            q.v[i][k] = keep - e;
            double lm = ref_loss(&q);
            q.v[i][k] = keep;
            want[k] = (float)((lp - lm) / (2 * e));
        }
        gc_expect_grad(c, params[i], want, n[i], 1e-4);
        free(want);
    }
    for (int i = 0; i < 6; i++)
        free(q.v[i]);
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
        /* clip: steps along every parameter move pre-activations across a clip bound, which finite
         * differences cannot follow (a step of 2e-2 put errors at 1e-2..1): the float64 reference's
         * central differences of step 1e-6 judge these cases */
        if (rc->extra && strstr(rc->extra, "clip"))
            c->no_fd = true;
    }
    if (n)
        gc_check(c, n->noutputs, n->outputs);
    if (rc->reference)
        expect_ref_grads(c, rc, IN(x, w, r, b, h0, c0), nd, gates);
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
        const char *lbr = o == 1 ? "linear_before_reset=1" : NULL;
        for (size_t dir = 0; dir < 3; dir++)
            for (int layout = 0; layout < 2; layout++)
                for (int states = 0; states < 2; states++)
                    rnn_case(s, &(RnnCase){ops[o], dirs[dir], layout, states, true, lbr, NULL, NULL,
                                           dir == 2 && layout == 1 && states});
        rnn_case(s, &(RnnCase){ops[o], "forward", 0, false, false, NULL, NULL, NULL, false});
        rnn_case(s, &(RnnCase){ops[o], "bidirectional", 1, true, true, lbr, NULL, lens, true});
        rnn_case(s, &(RnnCase){ops[o], "bidirectional", 0, true, true, "clip=0.7", NULL, NULL, true});
    }
    for (size_t dir = 0; dir < 3; dir++)
        rnn_case(s, &(RnnCase){"GRU", dirs[dir], dir == 1, dir != 0, true, NULL, NULL, NULL, dir == 2});
    rnn_case(s, &(RnnCase){"GRU", "bidirectional", 0, true, true, NULL, NULL, lens, true});
    rnn_case(s, &(RnnCase){"GRU", "reverse", 1, true, true, "linear_before_reset=1 clip=0.7", NULL, NULL, true});
    rnn_case(s, &(RnnCase){"RNN", "forward", 1, true, true, NULL, "Relu", NULL, true});
    rnn_case(s, &(RnnCase){"RNN", "bidirectional", 0, true, true, NULL, "Relu", NULL, true});
    printf("LSTM, GRU, RNN gradients against finite differences:\n");
    int failures = gc_run(s);
    CHECK_EQ_INT(failures, 0);

    printf("refusals:\n");
    check_refusal("LSTM", "hidden_size=4", true, "input 7 (P, peepholes)");
    check_refusal("LSTM", "hidden_size=4 input_forget=1", false, "attribute input_forget=1");
    return test_summary("test_grad_rnn");
}
