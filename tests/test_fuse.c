/* test_fuse.c - ir/pass_fuse.c on small graphs: what joins a Conv (inference BatchNormalization, a
 * same-shape residual Add, Relu/Clip), where the fused Conv lands in the order, and what must stop a
 * fusion (another reader, a graph output, a training BatchNormalization, ClipGrad reading the Clip's
 * input); ReluGrad is rewired to the Relu's output. The numbers of fused programs are checked by
 * test_rt_dense (conv_forward_fused), tests/zoo.sh and test_train_e2e (whole models against PyTorch).
 * Also ir/pass_gelu.c (the exported exact GELU becomes one Gelu) and ir/pass_fuse_bias.c (MatMul + bias
 * Add), and what stops each. */
#include "test.h"

#include "ir.h"

static Value *tensor(Graph *g, const char *name, int rank, const int64_t *dims)
{
    Diag d;
    diag_init(&d, NULL);
    Value *v = graph_add_value(g, name, &d);
    v->kind = VK_TENSOR;
    v->dtype = DT_FLOAT;
    v->shape = shape_make(rank, dims);
    return v;
}

static Node *node(Graph *g, const char *domain, const char *op, int nin, Value **in, Value *out)
{
    Diag d;
    diag_init(&d, NULL);
    return graph_add_node(g, op, domain, op, nin, in, 1, &out, &d);
}

static const int64_t X[4] = {2, 3, 6, 6}, W[4] = {4, 3, 3, 3}, Y[4] = {2, 4, 6, 6}, C[1] = {4};

typedef struct Net {
    Model *m;
    Graph *g;
    Value *x, *w, *bias, *t;
    Node *conv;
} Net;

/* x -> Conv(w, bias) -> t */
static Net net_new(void)
{
    Net n;
    n.m = model_new();
    n.g = n.m->graph = graph_new(n.m->arena, "g", NULL);
    n.x = tensor(n.g, "x", 4, X);
    n.w = tensor(n.g, "w", 4, W);
    n.bias = tensor(n.g, "b", 1, C);
    n.t = tensor(n.g, "t", 4, Y);
    graph_add_input(n.g, n.x);
    n.conv = node(n.g, "", "Conv", 3, (Value *[]){n.x, n.w, n.bias}, n.t);
    return n;
}

static void fuse(Graph *g)
{
    Diag d;
    diag_init(&d, NULL);
    Status st = pass_fuse(g, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
}

static void conv_bn_add_relu(void)
{
    Net n = net_new();
    Graph *g = n.g;
    Value *bn[4], *u = tensor(g, "u", 4, Y), *r = tensor(g, "r", 4, Y), *s = tensor(g, "s", 4, Y),
          *y = tensor(g, "y", 4, Y);
    const char *names[4] = {"scale", "beta", "mean", "var"};
    for (int i = 0; i < 4; i++)
        bn[i] = tensor(g, names[i], 1, C);
    graph_add_input(g, r);
    Node *bnn = node(g, "", "BatchNormalization", 5, (Value *[]){n.t, bn[0], bn[1], bn[2], bn[3]}, u);
    Node *add = node(g, "", "Add", 2, (Value *[]){r, u}, s);
    Node *relu = node(g, "", "Relu", 1, (Value *[]){s}, y);
    graph_add_output(g, y);
    fuse(g);
    CHECK(bnn->dead && add->dead && relu->dead && !n.conv->dead);
    CHECK_EQ_INT(node_attr_int(n.conv, "onnxtune_act", -1), 1);
    CHECK(node_attr(n.conv, "onnxtune_bn_epsilon") != NULL);
    CHECK_EQ_INT(n.conv->ninputs, 8);
    CHECK(n.conv->inputs[0] == n.x && n.conv->inputs[1] == n.w && n.conv->inputs[2] == n.bias);
    for (int i = 0; i < 4; i++)
        CHECK(n.conv->inputs[3 + i] == bn[i]);
    CHECK(n.conv->inputs[7] == r);
    CHECK(n.conv->outputs[0] == y && y->producer == n.conv);
    CHECK_EQ_INT(n.conv->index, 3); /* where the Relu was: the residual may come after the conv */
    CHECK(g->nodes[3] == n.conv);
    model_free(n.m);
}

static void relu_grad_rewired(void)
{
    Net n = net_new();
    Graph *g = n.g;
    Value *y = tensor(g, "y", 4, Y), *dy = tensor(g, "dy", 4, Y), *dx = tensor(g, "dx", 4, Y);
    graph_add_input(g, dy);
    Node *relu = node(g, "", "Relu", 1, (Value *[]){n.t}, y);
    Node *grad = node(g, ONNXTUNE_DOMAIN, "ReluGrad", 2, (Value *[]){dy, n.t}, dx);
    graph_add_output(g, y);
    graph_add_output(g, dx);
    fuse(g);
    CHECK(relu->dead && !grad->dead);
    CHECK_EQ_INT(node_attr_int(n.conv, "onnxtune_act", -1), 1);
    CHECK(grad->inputs[1] == y); /* Relu(X) > 0 exactly where X > 0 */
    CHECK(node_input(n.conv, 3) == NULL && node_input(n.conv, 7) == NULL);
    model_free(n.m);
}

/* Conv -> Clip[lo, hi]; with_grad: a ClipGrad reads the Clip's input */
static void clip(bool with_grad)
{
    Net n = net_new();
    Graph *g = n.g;
    Diag d;
    diag_init(&d, NULL);
    Value *lo = graph_const_scalar(g, "lo", DT_FLOAT, 0.0, &d), *hi = graph_const_scalar(g, "hi", DT_FLOAT, 6.0, &d);
    Value *y = tensor(g, "y", 4, Y), *dy = tensor(g, "dy", 4, Y), *dx = tensor(g, "dx", 4, Y);
    Node *c = node(g, "", "Clip", 3, (Value *[]){n.t, lo, hi}, y);
    graph_add_output(g, y);
    if (with_grad) {
        graph_add_input(g, dy);
        node(g, ONNXTUNE_DOMAIN, "ClipGrad", 4, (Value *[]){dy, n.t, lo, hi}, dx);
        graph_add_output(g, dx);
    }
    fuse(g);
    CHECK(c->dead == !with_grad);
    CHECK(node_attr(n.conv, "onnxtune_act") == NULL || !with_grad);
    if (!with_grad) {
        CHECK_EQ_INT(node_attr_int(n.conv, "onnxtune_act", -1), 2);
        CHECK_NEAR(node_attr_float(n.conv, "onnxtune_act_lo", -1), 0.0, 0);
        CHECK_NEAR(node_attr_float(n.conv, "onnxtune_act_hi", -1), 6.0, 0);
    }
    model_free(n.m);
}

/* what stops a fusion: the conv's output also a graph output / read twice, a training BatchNormalization */
static void not_fused(int why)
{
    Net n = net_new();
    Graph *g = n.g;
    Value *y = tensor(g, "y", 4, Y), *z = tensor(g, "z", 4, Y);
    Node *next;
    if (why == 2) {
        Value *bn[4];
        const char *names[4] = {"scale", "beta", "mean", "var"};
        for (int i = 0; i < 4; i++)
            bn[i] = tensor(g, names[i], 1, C);
        next = node(g, "", "BatchNormalization", 5, (Value *[]){n.t, bn[0], bn[1], bn[2], bn[3]}, y);
        Diag d;
        diag_init(&d, NULL);
        CHECK(node_set_attr_int(g, next, "training_mode", 1, &d) == ST_OK);
    } else {
        next = node(g, "", "Relu", 1, (Value *[]){n.t}, y);
    }
    graph_add_output(g, y);
    if (why == 0)
        graph_add_output(g, n.t);
    if (why == 1) {
        node(g, "", "Neg", 1, (Value *[]){n.t}, z);
        graph_add_output(g, z);
    }
    fuse(g);
    CHECK_MSG(!next->dead && node_attr(n.conv, "onnxtune_act") == NULL && n.conv->outputs[0] == n.t, "case %d", why);
    model_free(n.m);
}

/* constant weights and BN parameters (inference programs): the BN folded at compile time into new
 * constants, the conv without a bias gets one */
static void constants_folded(void)
{
    Model *m = model_new();
    Graph *g = m->graph = graph_new(m->arena, "g", NULL);
    Diag d;
    diag_init(&d, NULL);
    Shape ws = shape_make(4, W), cs = shape_make(1, C);
    Value *x = tensor(g, "x", 4, X), *t = tensor(g, "t", 4, Y), *y = tensor(g, "y", 4, Y);
    Value *w = graph_const(g, "w", DT_FLOAT, &ws, &d), *p[4];
    graph_add_input(g, x);
    float *wd = w->init->data;
    for (size_t i = 0; i < w->init->numel; i++)
        wd[i] = (float)i / 50.0f - 1.0f;
    for (int i = 0; i < 4; i++) {
        p[i] = graph_const(g, "bnp", DT_FLOAT, &cs, &d);
        for (int c = 0; c < 4; c++)
            ((float *)p[i]->init->data)[c] = 0.5f + (float)(i + c) / 4.0f;
    }
    Node *conv = node(g, "", "Conv", 2, (Value *[]){x, w}, t);
    Node *bn = node(g, "", "BatchNormalization", 5, (Value *[]){t, p[0], p[1], p[2], p[3]}, y);
    graph_add_output(g, y);
    fuse(g);
    CHECK(bn->dead && conv->outputs[0] == y);
    CHECK_EQ_INT(node_attr_int(conv, "onnxtune_act", -1), 0);
    CHECK(node_attr(conv, "onnxtune_bn_epsilon") == NULL && node_input(conv, 3) == NULL);
    const Value *wf = conv->inputs[1], *bf = node_input(conv, 2);
    CHECK(wf != w && wf->init && bf && bf->init);
    if (wf->init && bf && bf->init)
        for (int c = 0; c < 4; c++) {
            const float *gamma = p[0]->init->data, *beta = p[1]->init->data, *mean = p[2]->init->data,
                        *var = p[3]->init->data;
            double s = gamma[c] / sqrt(var[c] + 1e-5);
            CHECK_NEAR(((const float *)bf->init->data)[c], beta[c] - mean[c] * s, 1e-5);
            CHECK_NEAR(((const float *)wf->init->data)[c * 27 + 5], wd[c * 27 + 5] * s, 1e-5);
        }
    model_free(m);
}

/* torch's exact GELU, y = Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5) -> Gelu(x) (ir/pass_gelu.c);
 * why: 0 fuses, 1 Div by 1.5 (not GELU), 2 the Erf's output read twice, 3 the Add's a graph output */
static void gelu(int why)
{
    static const int64_t S[3] = {2, 5, 8};
    Model *m = model_new();
    Graph *g = m->graph = graph_new(m->arena, "g", NULL);
    Diag d;
    diag_init(&d, NULL);
    Value *x = tensor(g, "x", 3, S), *q = tensor(g, "q", 3, S), *e = tensor(g, "e", 3, S), *a = tensor(g, "a", 3, S),
          *p = tensor(g, "p", 3, S), *y = tensor(g, "y", 3, S), *z = tensor(g, "z", 3, S);
    Value *c2 = graph_const_scalar(g, "c2", DT_FLOAT, why == 1 ? 1.5 : 1.4142135381698608, &d),
          *one = graph_const_scalar(g, "one", DT_FLOAT, 1.0, &d), *half = graph_const_scalar(g, "half", DT_FLOAT, 0.5, &d);
    graph_add_input(g, x);
    Node *k[5];
    k[0] = node(g, "", "Div", 2, (Value *[]){x, c2}, q);
    k[1] = node(g, "", "Erf", 1, (Value *[]){q}, e);
    k[2] = node(g, "", "Add", 2, (Value *[]){one, e}, a); /* the constants on either side */
    k[3] = node(g, "", "Mul", 2, (Value *[]){x, a}, p);
    k[4] = node(g, "", "Mul", 2, (Value *[]){half, p}, y);
    graph_add_output(g, y);
    if (why == 2) {
        node(g, "", "Neg", 1, (Value *[]){e}, z);
        graph_add_output(g, z);
    }
    if (why == 3)
        graph_add_output(g, a);
    Status st = pass_gelu(g, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (why == 0) {
        CHECK(y->producer && strcmp(y->producer->op_type, "Gelu") == 0);
        CHECK(y->producer->ninputs == 1 && y->producer->inputs[0] == x && y->producer->rule);
        CHECK(strcmp(node_attr_string(y->producer, "approximate", "?"), "none") == 0);
        CHECK_EQ_INT((int)g->nnodes, 1);
    } else {
        CHECK(y->producer == k[4] && strcmp(k[4]->op_type, "Mul") == 0);
        for (int i = 0; i < 5; i++)
            CHECK(!k[i]->dead);
    }
    model_free(m);
}

/* MatMul(x [2,5,8], W [8,N]) -> Add(b, .) -> one MatMul with the bias as input 2 (ir/pass_fuse_bias.c);
 * why: 0 fuses, 1 b is [5,N] (not a bias row), 2 the MatMul's output read twice */
static void matmul_bias(int why)
{
    static const int64_t S[3] = {2, 5, 8}, Wd[2] = {8, 6}, Bd[1] = {6}, B2[2] = {5, 6}, T[3] = {2, 5, 6};
    Model *m = model_new();
    Graph *g = m->graph = graph_new(m->arena, "g", NULL);
    Diag d;
    diag_init(&d, NULL);
    Value *x = tensor(g, "x", 3, S), *w = tensor(g, "w", 2, Wd), *b = why == 1 ? tensor(g, "b", 2, B2) : tensor(g, "b", 1, Bd),
          *t = tensor(g, "t", 3, T), *y = tensor(g, "y", 3, T), *z = tensor(g, "z", 3, T);
    graph_add_input(g, x);
    Node *mm = node(g, "", "MatMul", 2, (Value *[]){x, w}, t);
    Node *add = node(g, "", "Add", 2, (Value *[]){b, t}, y);
    graph_add_output(g, y);
    if (why == 2) {
        node(g, "", "Neg", 1, (Value *[]){t}, z);
        graph_add_output(g, z);
    }
    Status st = pass_fuse_bias(g, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    CHECK(add->dead == (why == 0));
    if (why == 0) {
        CHECK(mm->ninputs == 3 && mm->inputs[2] == b && mm->outputs[0] == y && y->producer == mm);
        CHECK(g->nodes[1] == mm && mm->index == 1);   /* where the Add was */
    } else {
        CHECK(node_input(mm, 2) == NULL && mm->outputs[0] == t);
    }
    model_free(m);
}

/* ReluGrad / ClipGrad -> BatchNormalizationGrad: the BN backward takes dY and the saved value (input 5) and
 * the act attributes, the grad node dies; why > 0: what stops it (the masked gradient also an output,
 * read twice, Clip bounds that are not constants) */
static void act_grad_into_bn_grad(bool relu, int why)
{
    Net n = net_new();
    Graph *g = n.g;
    Diag d;
    diag_init(&d, NULL);
    Value *lo = graph_const_scalar(g, "lo", DT_FLOAT, 0.0, &d), *hi = graph_const_scalar(g, "hi", DT_FLOAT, 6.0, &d);
    Value *dy = tensor(g, "dy", 4, Y), *u = tensor(g, "u", 4, Y), *gm = tensor(g, "gm", 4, Y);
    Value *scale = tensor(g, "scale", 1, C), *outs[3] = {tensor(g, "dx", 4, Y), tensor(g, "ds", 1, C),
                                                         tensor(g, "db", 1, C)};
    graph_add_input(g, dy);
    graph_add_input(g, u);
    graph_add_input(g, scale);
    if (why == 3)
        graph_add_input(g, hi = tensor(g, "hi_in", 0, NULL));
    Node *ag = relu ? node(g, ONNXTUNE_DOMAIN, "ReluGrad", 2, (Value *[]){dy, u}, gm)
                    : node(g, ONNXTUNE_DOMAIN, "ClipGrad", 4, (Value *[]){dy, u, lo, hi}, gm);
    Node *bg = graph_add_node(g, "BatchNormalizationGrad", ONNXTUNE_DOMAIN, "bng", 3, (Value *[]){gm, n.t, scale}, 3,
                              outs, &d);
    for (int i = 0; i < 3; i++)
        graph_add_output(g, outs[i]);
    if (why == 1)
        graph_add_output(g, gm);
    if (why == 2)
        node(g, "", "Relu", 1, (Value *[]){gm}, tensor(g, "other", 4, Y));
    fuse(g);
    CHECK(ag->dead == (why == 0));
    if (why) {
        CHECK(bg->inputs[0] == gm && node_attr(bg, "onnxtune_act") == NULL);
    } else {
        CHECK(bg->inputs[0] == dy && bg->ninputs == 6 && node_input(bg, 5) == u);
        CHECK(node_input(bg, 3) == NULL && node_input(bg, 4) == NULL);
        CHECK_EQ_INT(node_attr_int(bg, "onnxtune_act", -1), relu ? 1 : 2);
        if (!relu)
            CHECK_NEAR(node_attr_float(bg, "onnxtune_act_hi", -1), 6.0, 0);
    }
    model_free(n.m);
}

/* Conv -> BN (inference, trainable) -> Clip with ClipGrad -> BNGrad behind: the BNGrad recomputes the BN's
 * output from X (input 5 the BN's bias), then nothing but the Clip reads the BN's output, so the BN computes
 * the Clip too (the Clip dies, the BN writes its output) */
static void bn_clip_recomputed(void)
{
    Net n = net_new();
    Graph *g = n.g;
    Diag d;
    diag_init(&d, NULL);
    Value *lo = graph_const_scalar(g, "lo", DT_FLOAT, 0.0, &d), *hi = graph_const_scalar(g, "hi", DT_FLOAT, 6.0, &d);
    Value *bn[4], *u = tensor(g, "u", 4, Y), *y = tensor(g, "y", 4, Y), *dy = tensor(g, "dy", 4, Y),
          *gm = tensor(g, "gm", 4, Y);
    const char *names[4] = {"scale", "beta", "mean", "var"};
    for (int i = 0; i < 4; i++)
        graph_add_input(g, bn[i] = tensor(g, names[i], 1, C));
    graph_add_input(g, dy);
    Value *outs[3] = {tensor(g, "dx", 4, Y), tensor(g, "ds", 1, C), tensor(g, "db", 1, C)};
    Node *bnn = node(g, "", "BatchNormalization", 5, (Value *[]){n.t, bn[0], bn[1], bn[2], bn[3]}, u);
    Node *c = node(g, "", "Clip", 3, (Value *[]){u, lo, hi}, y);
    Node *cg = node(g, ONNXTUNE_DOMAIN, "ClipGrad", 4, (Value *[]){dy, u, lo, hi}, gm);
    Node *bg = graph_add_node(g, "BatchNormalizationGrad", ONNXTUNE_DOMAIN, "bng", 5,
                              (Value *[]){gm, n.t, bn[0], bn[2], bn[3]}, 3, outs, &d);
    graph_add_output(g, y);
    for (int i = 0; i < 3; i++)
        graph_add_output(g, outs[i]);
    fuse(g);
    CHECK(cg->dead && c->dead && !bnn->dead && !n.conv->dead);
    CHECK(bg->inputs[0] == dy && node_input(bg, 5) == bn[1]);
    CHECK_EQ_INT(node_attr_int(bg, "onnxtune_act_recompute", 0), 1);
    CHECK(bnn->outputs[0] == y && y->producer == bnn);
    CHECK_EQ_INT(node_attr_int(bnn, "onnxtune_act", 0), 2);
    CHECK_NEAR(node_attr_float(bnn, "onnxtune_act_hi", -1), 6.0, 0);
    model_free(n.m);
}

int main(void)
{
    for (int why = 0; why < 3; why++)
        matmul_bias(why);
    for (int why = 0; why < 4; why++)
        gelu(why);
    constants_folded();
    conv_bn_add_relu();
    relu_grad_rewired();
    clip(false);
    clip(true);
    for (int why = 0; why < 3; why++)
        not_fused(why);
    for (int why = 0; why < 4; why++) {
        act_grad_into_bn_grad(false, why);
        if (why < 3)
            act_grad_into_bn_grad(true, why);
    }
    bn_clip_recomputed();
    return test_summary("test_fuse");
}
