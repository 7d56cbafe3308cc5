/* test_train_passes.c - the fine-tuning passes (freeze, head, loss, optimizer) on models/cnn and
 * models/mlp; the loss and optimizer kernels against double-precision references, finite differences
 * and torch.optim's formulas; and, when tests/ref/train/ exists, PyTorch's reference runs of the MLP
 * replayed with these kernels (the MLP's own forward/backward written out here). */
#include "common.h"
#include "gradcheck.h"
#include "importer.h"
#include "ir.h"
#include "program.h"
#include "test.h"

#include <stdint.h>

static Diag d;

static Model *load_keep(const char *path, int64_t batch, bool keep_params)
{
    Model *m = NULL;
    diag_init(&d, path);
    ShapeOptions so = {.batch = batch, .fold = true, .keep_params = keep_params};
    if (onnx_import_file(path, &m, &d) || pass_canon(m, &d) || pass_shapes(m, &so, &d)) {
        fprintf(stderr, "loading %s: %s\n", path, d.msg);
        model_free(m);
        return NULL;
    }
    return m;
}

static Model *load(const char *path, int64_t batch)
{
    return load_keep(path, batch, false);
}

static Value *val(Model *m, const char *name)
{
    return graph_find_local(m->graph, name);
}

static Node *find_node(Model *m, const char *name)
{
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (strcmp(m->graph->nodes[i]->name, name) == 0)
            return m->graph->nodes[i];
    return NULL;
}

static size_t count_op(Model *m, const char *op)
{
    size_t k = 0;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        k += !m->graph->nodes[i]->dead && strcmp(m->graph->nodes[i]->op_type, op) == 0;
    return k;
}

/* The trainable values are exactly `names` (NULL-terminated); prints the difference. */
static void check_trainable(Model *m, const char *const *names, int line)
{
    Graph *g = m->graph;
    bool ok = true;
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        bool want = false;
        for (size_t k = 0; names[k]; k++)
            want = want || strcmp(names[k], v->name) == 0;
        if (v->trainable != want) {
            fprintf(stderr, "line %d: '%s' is %s but should be %s\n", line, v->name,
                    v->trainable ? "trainable" : "frozen", want ? "trainable" : "frozen");
            ok = false;
        }
    }
    for (size_t k = 0; names[k]; k++)
        if (!graph_find_local(g, names[k])) {
            fprintf(stderr, "line %d: no value '%s'\n", line, names[k]);
            ok = false;
        }
    CHECK_MSG(ok, "trainable set at line %d", line);
}
#define CHECK_TRAINABLE(m, ...) do { const char *const _n[] = {__VA_ARGS__, NULL}; \
    check_trainable(m, _n, __LINE__); } while (0)

static Status freeze_with(Model *m, const FreezeRule *rules, size_t nrules, const char *from, bool bias, bool bn)
{
    FreezeOptions o = {.rules = rules, .nrules = nrules, .train_from = from, .train_bias = bias, .bn_train = bn};
    diag_init(&d, NULL);
    return pass_freeze(m, &o, &d);
}

#define CHECK_ERR(expr, st, substr) do { Status _s = (expr); CHECK_EQ_INT(_s, st); \
    CHECK_MSG(strstr(d.msg, substr) != NULL, "message '%s' lacks '%s'", d.msg, substr); } while (0)

/* ======================================================================== freeze */

static void test_freeze(void)
{
    Model *m = load("models/cnn/model.onnx", 4);
    if (!m) {
        CHECK(!"models/cnn/model.onnx loads");
        return;
    }
    FreezeSummary s;

    /* nothing selected: every parameter frozen; running statistics are not parameters */
    CHECK_EQ_INT(freeze_with(m, NULL, 0, NULL, false, false), ST_OK);
    freeze_summary(m->graph, &s);
    size_t params = 0, elems = 0;
    for (size_t i = 0; i < m->graph->nvalues; i++) {
        const Value *v = m->graph->values[i];
        if (v->is_initializer && dtype_is_float(v->dtype) && !strstr(v->name, "running_")) {
            params++;
            elems += v->init->numel;
        }
    }
    CHECK_EQ_INT(params, 10);
    CHECK_EQ_INT(s.trainable, 0);
    CHECK_EQ_INT(s.frozen, params);
    CHECK_EQ_INT(s.frozen_elems, elems);
    CHECK_EQ_INT(s.bn_train, 0);
    CHECK(!value_is_param(m->graph, val(m, "features.1.running_mean")));
    CHECK(value_is_param(m->graph, val(m, "features.1.weight")));

    FreezeRule one[] = {{true, "features.4.*"}};
    CHECK_EQ_INT(freeze_with(m, one, 1, NULL, false, false), ST_OK);
    CHECK_TRAINABLE(m, "features.4.weight", "features.4.bias");
    freeze_summary(m->graph, &s);
    CHECK_EQ_INT(s.trainable, 2);
    CHECK_EQ_INT(s.trainable_elems, 16 * 8 * 9 + 16);
    CHECK_EQ_INT(s.frozen, params - 2);
    CHECK_EQ_INT(s.frozen_elems + s.trainable_elems, elems);

    /* in order, later wins */
    FreezeRule tf[] = {{true, "features.*"}, {false, "features.[01].*"}};
    CHECK_EQ_INT(freeze_with(m, tf, 2, NULL, false, false), ST_OK);
    CHECK_TRAINABLE(m, "features.4.weight", "features.4.bias", "features.5.weight", "features.5.bias");
    FreezeRule ft[] = {{false, "features.[01].*"}, {true, "features.*"}};
    CHECK_EQ_INT(freeze_with(m, ft, 2, NULL, false, false), ST_OK);
    CHECK_TRAINABLE(m, "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                    "features.4.weight", "features.4.bias", "features.5.weight", "features.5.bias");
    FreezeRule all[] = {{true, "*"}, {false, "classifier.weight"}};
    CHECK_EQ_INT(freeze_with(m, all, 2, NULL, false, false), ST_OK);
    freeze_summary(m->graph, &s);
    CHECK_EQ_INT(s.trainable, params - 1);
    CHECK(!val(m, "features.1.running_var")->trainable);

    /* globs that select nothing */
    FreezeRule none[] = {{true, "layer4.*"}};
    CHECK_ERR(freeze_with(m, none, 1, NULL, false, false), ST_USAGE, "'layer4.*' matches no initializer");
    CHECK_MSG(strstr(d.msg, "--train") != NULL, "%s", d.msg);
    FreezeRule none2[] = {{true, "*"}, {false, "nope"}};
    CHECK_ERR(freeze_with(m, none2, 2, NULL, false, false), ST_USAGE, "--freeze 'nope'");
    FreezeRule stat[] = {{true, "features.1.running_*"}};
    CHECK_ERR(freeze_with(m, stat, 1, NULL, false, false), ST_USAGE, "running statistic");
    FreezeRule stat2[] = {{true, "*"}, {false, "features.1.running_*"}};
    CHECK_EQ_INT(freeze_with(m, stat2, 2, NULL, false, false), ST_OK);
    FreezeRule empty[] = {{true, ""}};
    CHECK_ERR(freeze_with(m, empty, 1, NULL, false, false), ST_USAGE, "needs a glob");

    /* --train-from a value, and a node */
    CHECK_EQ_INT(freeze_with(m, NULL, 0, "/features/features.3/MaxPool_output_0", false, false), ST_OK);
    CHECK_TRAINABLE(m, "features.4.weight", "features.4.bias", "features.5.weight", "features.5.bias",
                    "classifier.weight", "classifier.bias");
    CHECK_EQ_INT(freeze_with(m, NULL, 0, "/features/features.4/Conv", false, false), ST_OK);
    CHECK_TRAINABLE(m, "features.4.weight", "features.4.bias", "features.5.weight", "features.5.bias",
                    "classifier.weight", "classifier.bias");
    CHECK_EQ_INT(freeze_with(m, NULL, 0, "features.5.weight", false, false), ST_OK);
    CHECK_TRAINABLE(m, "features.5.weight", "features.5.bias", "classifier.weight", "classifier.bias");
    FreezeRule but[] = {{false, "classifier.*"}};
    CHECK_EQ_INT(freeze_with(m, but, 1, "/features/features.6/Relu", false, false), ST_OK);
    CHECK_ERR(freeze_with(m, NULL, 0, "nope", false, false), ST_USAGE, "'nope' names no value or node");
    CHECK_ERR(freeze_with(m, NULL, 0, "logits", false, false), ST_USAGE, "no parameter");

    /* BitFit */
    CHECK_EQ_INT(freeze_with(m, NULL, 0, NULL, true, false), ST_OK);
    CHECK_TRAINABLE(m, "features.0.bias", "features.1.bias", "features.4.bias", "features.5.bias", "classifier.bias");

    /* --bn-train: the BN after a trainable conv trains, the first one does not */
    CHECK_EQ_INT(freeze_with(m, one, 1, NULL, false, true), ST_OK);
    Node *bn1 = find_node(m, "/features/features.1/BatchNormalization");
    Node *bn5 = find_node(m, "/features/features.5/BatchNormalization");
    CHECK(bn1 && bn5);
    if (bn1 && bn5) {
        CHECK_EQ_INT(node_attr_int(bn1, "training_mode", 0), 0);
        CHECK_EQ_INT(node_attr_int(bn5, "training_mode", 0), 1);
        CHECK_NEAR(node_attr_float(bn5, "momentum", 0), 0.9, 1e-7);
        CHECK(val(m, "features.5.running_mean")->is_state && val(m, "features.5.running_var")->is_state);
        CHECK(!val(m, "features.1.running_mean")->is_state);
        freeze_summary(m->graph, &s);
        CHECK_EQ_INT(s.bn_train, 1);
        /* a BN whose scale trains is in the region, and so is every BN downstream of it */
        FreezeRule scale[] = {{true, "features.1.weight"}};
        CHECK_EQ_INT(freeze_with(m, scale, 1, NULL, false, true), ST_OK);
        CHECK_EQ_INT(node_attr_int(bn1, "training_mode", 0), 1);
        CHECK_EQ_INT(node_attr_int(bn5, "training_mode", 0), 1);
        /* only the classifier: no BN in the region; without --bn-train none either */
        FreezeRule cls[] = {{true, "classifier.*"}};
        CHECK_EQ_INT(freeze_with(m, cls, 1, NULL, false, true), ST_OK);
        freeze_summary(m->graph, &s);
        CHECK_EQ_INT(s.bn_train, 0);
        CHECK_EQ_INT(freeze_with(m, one, 1, NULL, false, false), ST_OK);
        CHECK_EQ_INT(node_attr_int(bn5, "training_mode", 0), 0);
        CHECK(!val(m, "features.5.running_mean")->is_state);
    }
    model_free(m);

    m = load("models/mlp/model.onnx", 4);
    if (!m) {
        CHECK(!"models/mlp/model.onnx loads");
        return;
    }
    CHECK_EQ_INT(freeze_with(m, NULL, 0, NULL, true, false), ST_OK);
    CHECK_TRAINABLE(m, "fc1.bias", "fc2.bias");
    CHECK_EQ_INT(freeze_with(m, NULL, 0, "x", false, false), ST_OK);
    CHECK_TRAINABLE(m, "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias");
    FreezeRule fc[] = {{true, "fc?.weight"}};
    CHECK_EQ_INT(freeze_with(m, fc, 1, NULL, true, false), ST_OK);
    CHECK_TRAINABLE(m, "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias");
    model_free(m);
}

/* ======================================================================== head */

static Status head_with(Model *m, const char *spec, const char *cut, double dropout, uint64_t seed)
{
    HeadOptions o = {.cut = cut, .dropout = dropout, .seed = seed};
    diag_init(&d, NULL);
    Status st = head_parse(spec, &o, &d);
    return st ? st : pass_head(m, &o, &d);
}

/* Every element of the initializer within (-bound, bound), and it is not degenerate: the largest
 * magnitude is above 0.7*bound and the values are not all equal (for a tensor of >= 16 elements). */
static void check_init(const Value *v, double bound)
{
    CHECK_MSG(v && v->init && v->dtype == DT_FLOAT, "%s has float data", v ? v->name : "?");
    if (!v || !v->init)
        return;
    const float *p = v->init->data;
    double maxabs = 0, sum = 0;
    for (size_t i = 0; i < v->init->numel; i++) {
        CHECK_MSG(fabs(p[i]) <= bound, "%s[%zu] = %g outside +-%g", v->name, i, p[i], bound);
        maxabs = fabs(p[i]) > maxabs ? fabs(p[i]) : maxabs;
        sum += p[i];
    }
    if (v->init->numel >= 16) {
        CHECK_MSG(maxabs > 0.7 * bound, "%s: max |w| %g of bound %g", v->name, maxabs, bound);
        CHECK_MSG(fabs(sum / (double)v->init->numel) < 0.5 * bound, "%s: mean %g", v->name,
                  sum / (double)v->init->numel);
    }
}

static void check_shape(const Value *v, const char *want)
{
    char buf[128];
    CHECK_MSG(v != NULL, "value for shape %s exists", want);
    if (v)
        CHECK_STR(shape_str(&v->shape, buf, sizeof buf), want);
}

/* A tiny model built here: x [4] -> Relu -> "logits" -> Relu -> y; plus a live value "head.weight". */
static Model *tiny_model(const char *xname, int rank)
{
    Model *m = model_new();
    Graph *g = m ? graph_new(m->arena, "tiny", NULL) : NULL;
    if (!g)
        return NULL;
    m->graph = g;
    diag_init(&d, NULL);
    Value *x = graph_add_value(g, xname, &d);
    int64_t dims[2] = {4, 6};
    x->dtype = DT_FLOAT;
    x->shape = shape_make(rank, dims);
    graph_add_input(g, x);
    Node *a = graph_add_node1(g, "Relu", "a", 1, &x, "logits", &d);
    Value *l = a->outputs[0];
    Node *b = graph_add_node1(g, "Relu", "b", 1, &l, "y", &d);
    graph_add_output(g, b->outputs[0]);
    if (infer_node(g, a, &d) || infer_node(g, b, &d))
        return NULL;
    return m;
}

static void test_head(void)
{
    Model *m = load("models/cnn/model.onnx", 4);
    if (!m) {
        CHECK(!"models/cnn/model.onnx loads");
        return;
    }
    /* default cut: the Flatten output feeding the final Gemm, which goes with its weights */
    FreezeRule cls[] = {{true, "classifier.*"}, {true, "features.5.*"}};
    CHECK_EQ_INT(freeze_with(m, cls, 2, NULL, false, false), ST_OK);
    CHECK_EQ_INT(head_with(m, "linear:5", NULL, 0, 42), ST_OK);
    Graph *g = m->graph;
    CHECK_EQ_INT(count_op(m, "Gemm"), 1);
    CHECK(!find_node(m, "/classifier/Gemm"));
    CHECK_EQ_INT(graph_count_uses(g, val(m, "classifier.weight")), 0);
    CHECK(!val(m, "classifier.weight")->trainable && !val(m, "classifier.bias")->trainable);
    CHECK(val(m, "features.5.weight")->trainable);
    Node *gemm = find_node(m, "/head/Gemm");
    CHECK(gemm != NULL);
    if (gemm) {
        CHECK_STR(gemm->inputs[0]->name, "/features/features.8/Flatten_output_0");
        CHECK(gemm->inputs[1] == val(m, "head.weight") && gemm->inputs[2] == val(m, "head.bias"));
        CHECK_EQ_INT(node_attr_int(gemm, "transB", 0), 1);
        CHECK_EQ_INT(gemm->phase, PHASE_FORWARD);
    }
    check_shape(val(m, "head.weight"), "[5,16]");
    check_shape(val(m, "head.bias"), "[5]");
    CHECK(val(m, "head.weight")->trainable && val(m, "head.bias")->trainable);
    CHECK(val(m, "head.weight")->is_initializer && value_is_param(g, val(m, "head.weight")));
    check_init(val(m, "head.weight"), 0.25);
    check_init(val(m, "head.bias"), 0.25);
    CHECK_EQ_INT(g->noutputs, 1);
    if (g->noutputs == 1) {
        CHECK_STR(g->outputs[0]->name, "logits");
        check_shape(g->outputs[0], "[4,5]");
        CHECK(g->outputs[0]->producer == gemm);
    }
    CHECK_EQ_INT(graph_verify(g, &d), ST_OK);
    float w42[80];
    memcpy(w42, val(m, "head.weight")->init->data, sizeof w42);
    model_free(m);

    /* same seed, same init; another seed, another one */
    m = load("models/cnn/model.onnx", 4);
    CHECK_EQ_INT(head_with(m, "linear:5", NULL, 0, 42), ST_OK);
    CHECK(memcmp(w42, val(m, "head.weight")->init->data, sizeof w42) == 0);
    model_free(m);
    m = load("models/cnn/model.onnx", 4);
    CHECK_EQ_INT(head_with(m, "linear:5", NULL, 0, 43), ST_OK);
    CHECK(memcmp(w42, val(m, "head.weight")->init->data, sizeof w42) != 0);
    model_free(m);

    /* mlp head with dropout, on a rank-4 cut (flattened) */
    m = load("models/cnn/model.onnx", 4);
    CHECK_EQ_INT(head_with(m, "mlp:7,3", "/features/features.7/GlobalAveragePool_output_0", 0.25, 1), ST_OK);
    g = m->graph;
    check_shape(val(m, "head.0.weight"), "[7,16]");
    check_shape(val(m, "head.0.bias"), "[7]");
    check_shape(val(m, "head.2.weight"), "[3,7]");
    check_shape(val(m, "head.2.bias"), "[3]");
    check_init(val(m, "head.0.weight"), 0.25);
    check_init(val(m, "head.2.weight"), 1 / sqrt(7.0));
    check_init(val(m, "head.2.bias"), 1 / sqrt(7.0));
    CHECK_EQ_INT(count_op(m, "Flatten"), 1); /* the model's own Flatten went with the classifier */
    const char *chain[] = {"Flatten", "Gemm", "Relu", "Dropout", "Gemm"};
    Node *n = g->noutputs == 1 ? g->outputs[0]->producer : NULL;
    for (int i = 4; i >= 0 && n; i--) {
        CHECK_STR(n->op_type, chain[i]);
        n = n->inputs[0]->producer;
    }
    Node *drop = find_node(m, "/head/dropout/Dropout");
    CHECK(drop && drop->ninputs == 2 && fabs(tensor_get_f64(drop->inputs[1]->init, 0) - 0.25) < 1e-7);
    check_shape(g->outputs[0], "[4,3]");
    CHECK_STR(g->outputs[0]->name, "logits");
    CHECK_EQ_INT(graph_verify(g, &d), ST_OK);
    model_free(m);

    /* mlp model: the default cut is fc2's input; mlp head without dropout has no Dropout */
    m = load("models/mlp/model.onnx", 4);
    CHECK_EQ_INT(head_with(m, "mlp:8,2", NULL, 0, 1), ST_OK);
    CHECK_EQ_INT(count_op(m, "Dropout"), 0);
    CHECK_EQ_INT(count_op(m, "Gemm"), 3);
    Node *h0 = find_node(m, "/head/0/Gemm");
    CHECK(h0 && h0->inputs[0]->producer && strcmp(h0->inputs[0]->producer->op_type, "Relu") == 0);
    check_shape(val(m, "head.0.weight"), "[8,32]");
    CHECK(!val(m, "fc2.weight")->trainable && graph_count_uses(m->graph, val(m, "fc2.weight")) == 0);
    model_free(m);

    /* usage errors */
    m = load("models/mlp/model.onnx", 4);
    HeadOptions o = {0};
    CHECK_ERR((diag_init(&d, NULL), head_parse("linear:0", &o, &d)), ST_USAGE, "linear:K");
    CHECK_ERR((diag_init(&d, NULL), head_parse("mlp:3", &o, &d)), ST_USAGE, "mlp:H,K");
    CHECK_ERR((diag_init(&d, NULL), head_parse("conv:3", &o, &d)), ST_USAGE, "'conv:3'");
    CHECK_ERR((diag_init(&d, NULL), head_parse("linear:3x", &o, &d)), ST_USAGE, "'linear:3x'");
    CHECK_EQ_INT(head_parse("mlp:12,3", &o, &d), ST_OK);
    CHECK(o.kind == HEAD_MLP && o.hidden == 12 && o.classes == 3);
    CHECK_ERR(head_with(m, "linear:3", "nope", 0, 1), ST_USAGE, "--cut 'nope'");
    CHECK_ERR(head_with(m, "linear:3", "fc1.weight", 0, 1), ST_USAGE, "constant");
    CHECK_ERR(head_with(m, "linear:3", NULL, 0.5, 1), ST_USAGE, "--head-dropout");
    CHECK_ERR(head_with(m, "none", "x", 0, 1), ST_USAGE, "--cut 'x' needs a head");
    CHECK_EQ_INT(head_with(m, "none", NULL, 0, 1), ST_OK);
    CHECK_EQ_INT(m->graph->noutputs, 1);
    CHECK_EQ_INT(count_op(m, "Gemm"), 2);
    model_free(m);

    /* rank 1: unsuitable; a head whose name "logits" is taken by the live cut gets "head_logits" */
    m = tiny_model("x", 1);
    CHECK_ERR(head_with(m, "linear:3", "x", 0, 1), ST_SHAPE, "a head on a tensor of unsuitable rank");
    model_free(m);
    m = tiny_model("x", 2);
    CHECK_ERR(head_with(m, "linear:3", NULL, 0, 1), ST_USAGE, "--cut");
    CHECK_EQ_INT(head_with(m, "linear:3", "logits", 0, 1), ST_OK);
    CHECK_EQ_INT(m->graph->noutputs, 1);
    CHECK_STR(m->graph->outputs[0]->name, "head_logits");
    check_shape(m->graph->outputs[0], "[4,3]");
    CHECK_EQ_INT(count_op(m, "Relu"), 1);
    model_free(m);
    m = tiny_model("head.weight", 2);
    CHECK_ERR(head_with(m, "linear:3", "logits", 0, 1), ST_USAGE, "already has a value named 'head.weight'");
    model_free(m);
}

/* ======================================================================== loss kernels */

static uint64_t rng_state = 12345;
static double rnd(double lo, double hi) /* deterministic test data */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1p-53;
}

typedef enum { L_CE, L_MSE, L_L1, L_BCE } LossId;

/* The textbook forms, in long double: -sum_c q_c log p_c with q the smoothed one-hot; log-sigmoid BCE. */
static double loss_ref(LossId k, const double *x, const double *t, const int64_t *y, size_t n, size_t c,
                       double eps)
{
    long double total = 0;
    if (k == L_CE) {
        for (size_t i = 0; i < n; i++) {
            long double z = 0;
            for (size_t j = 0; j < c; j++)
                z += expl((long double)x[i * c + j]);
            for (size_t j = 0; j < c; j++) {
                long double q = eps / (double)c + ((int64_t)j == y[i] ? 1 - eps : 0);
                total -= q * logl(expl((long double)x[i * c + j]) / z);
            }
        }
        return (double)(total / n);
    }
    for (size_t i = 0; i < n * c; i++) {
        long double e = (long double)x[i] - t[i], s = 1 / (1 + expl(-(long double)x[i]));
        total += k == L_MSE ? e * e : k == L_L1 ? fabsl(e) : -(t[i] * logl(s) + (1 - t[i]) * logl(1 - s));
    }
    return (double)(total / (n * c));
}

static void loss_kernel(LossId k, float *loss, const float *x, const float *t, const int64_t *y, size_t n,
                        size_t c, float eps)
{
    switch (k) {
    case L_CE: cross_entropy_forward(loss, x, y, n, c, eps); break;
    case L_MSE: mse_loss_forward(loss, x, t, n * c); break;
    case L_L1: l1_loss_forward(loss, x, t, n * c); break;
    case L_BCE: bce_with_logits_forward(loss, x, t, n * c); break;
    }
}

static void loss_kernel_backward(LossId k, float *dx, float dloss, const float *x, const float *t,
                                 const int64_t *y, size_t n, size_t c, float eps)
{
    switch (k) {
    case L_CE: cross_entropy_backward(dx, &dloss, x, y, n, c, eps); break;
    case L_MSE: mse_loss_backward(dx, &dloss, x, t, n * c); break;
    case L_L1: l1_loss_backward(dx, &dloss, x, t, n * c); break;
    case L_BCE: bce_with_logits_backward(dx, &dloss, x, t, n * c); break;
    }
}

/* Forward against loss_ref, backward against central differences of loss_ref (float64). */
static void check_loss(LossId k, size_t n, size_t c, float eps, const char *what)
{
    enum { MAXE = 64 };
    float x[MAXE], t[MAXE], dx[MAXE], loss;
    double xd[MAXE], td[MAXE];
    int64_t y[MAXE];
    size_t ne = n * c;
    for (size_t i = 0; i < ne; i++) {
        x[i] = (float)rnd(-3, 3);
        t[i] = k == L_BCE ? (float)(rnd(0, 1) < 0.4) : (float)rnd(-2, 2);
        xd[i] = x[i];
        td[i] = t[i];
    }
    for (size_t i = 0; i < n; i++)
        y[i] = (int64_t)(rnd(0, 1) * (double)c) % (int64_t)c;
    double ref = loss_ref(k, xd, td, y, n, c, eps);
    loss_kernel(k, &loss, x, t, y, n, c, eps);
    CHECK_MSG(fabs(loss - ref) <= 1e-6 * fmax(1, fabs(ref)), "%s forward: %.9g vs reference %.9g", what, loss, ref);
    const float dloss = 0.7f;
    loss_kernel_backward(k, dx, dloss, x, t, y, n, c, eps);
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < ne; i++) {
        const double h = 1e-6;
        double save = xd[i];
        xd[i] = save + h;
        double up = loss_ref(k, xd, td, y, n, c, eps);
        xd[i] = save - h;
        double down = loss_ref(k, xd, td, y, n, c, eps);
        xd[i] = save;
        double fd = (up - down) / (2 * h) * dloss, err = fabs(dx[i] - fd) / fmax(1e-3, fabs(fd));
        if (err > worst) {
            worst = err;
            at = i;
        }
    }
    CHECK_MSG(worst <= 2e-5, "%s backward vs finite differences: rel err %.3g at element %zu", what, worst, at);
}

static void test_loss_kernels(void)
{
    for (int rep = 0; rep < 3; rep++) {
        check_loss(L_CE, 5, 4, 0.0f, "cross_entropy");
        check_loss(L_CE, 3, 7, 0.1f, "cross_entropy eps 0.1");
        check_loss(L_CE, 4, 3, 1.0f, "cross_entropy eps 1");
        check_loss(L_MSE, 4, 5, 0, "mse");
        check_loss(L_L1, 4, 5, 0, "l1");
        check_loss(L_BCE, 4, 5, 0, "bce_with_logits");
    }
    /* by hand: uniform logits give log C whatever the smoothing; MSE/L1/BCE of small cases */
    float z[6] = {0}, loss, dz[6];
    int64_t y[2] = {1, 2};
    cross_entropy_forward(&loss, z, y, 2, 3, 0.0f);
    CHECK_NEAR(loss, log(3.0), 1e-7);
    cross_entropy_forward(&loss, z, y, 2, 3, 0.3f);
    CHECK_NEAR(loss, log(3.0), 1e-7);
    float one = 1;
    cross_entropy_backward(dz, &one, z, y, 2, 3, 0.0f); /* (1/3 - onehot) / 2 */
    CHECK_NEAR(dz[0], 1.0 / 6, 1e-7);
    CHECK_NEAR(dz[1], -1.0 / 3, 1e-7);
    CHECK_NEAR(dz[5], -1.0 / 3, 1e-7);
    float a[2] = {1, 2}, b[2] = {0, 0}, bx[2] = {0, 0};
    mse_loss_forward(&loss, a, b, 2);
    CHECK_NEAR(loss, 2.5, 1e-7);
    l1_loss_forward(&loss, a, b, 2);
    CHECK_NEAR(loss, 1.5, 1e-7);
    bce_with_logits_forward(&loss, bx, a, 2); /* x = 0: log 2 - 0 */
    CHECK_NEAR(loss, log(2.0), 1e-7);
    l1_loss_backward(dz, &one, b, b, 2); /* x == t: zero gradient, as torch's sign */
    CHECK(dz[0] == 0 && dz[1] == 0);
    /* no overflow on large logits */
    float big[4] = {1000, -1000, -1000, 1000};
    int64_t yb[2] = {1, 1};
    cross_entropy_forward(&loss, big, yb, 2, 2, 0.0f); /* row 0 misses by 2000, row 1 is right */
    CHECK_NEAR(loss, 1000, 1e-3);
    cross_entropy_backward(dz, &one, big, yb, 2, 2, 0.0f);
    CHECK_NEAR(dz[0], 0.5, 1e-7);
    CHECK_NEAR(dz[1], -0.5, 1e-7);
    CHECK_NEAR(dz[3], 0, 1e-7);
    float xb[2] = {100, -100}, tb[2] = {0, 1};
    bce_with_logits_forward(&loss, xb, tb, 2);
    CHECK_NEAR(loss, 100, 1e-4);
    bce_with_logits_backward(dz, &one, xb, tb, 2);
    CHECK_NEAR(dz[0], 0.5, 1e-7);
    CHECK_NEAR(dz[1], -0.5, 1e-7);
    int64_t bad[3] = {0, 3, -1};
    CHECK_EQ_INT(cross_entropy_check_targets(bad, 3, 3), 1);
    CHECK_EQ_INT(cross_entropy_check_targets(bad, 1, 3), 1);
}

/* ======================================================================== optimizer kernels */

typedef struct {
    int kind;                           /* 0 sgd, 1 adam, 2 adamw */
    double momentum, dampening, wd, beta1, beta2, eps, scale;
    bool nesterov;
} OptCase;

/* The formulas of the issue (torch 1.13), in double, written out independently of kernels/optim.c. */
static void opt_ref(const OptCase *c, double *p, const double *g0, double *buf, double *m, double *v, size_t n,
                    double lr, int t)
{
    for (size_t i = 0; i < n; i++) {
        double g = g0[i] * (c->scale ? c->scale : 1);
        if (c->kind == 0) {
            g += c->wd * p[i];
            if (c->momentum) {
                buf[i] = t == 1 ? g : c->momentum * buf[i] + (1 - c->dampening) * g;
                g = c->nesterov ? g + c->momentum * buf[i] : buf[i];
            }
            p[i] -= lr * g;
            continue;
        }
        if (c->kind == 2)
            p[i] *= 1 - lr * c->wd;
        else
            g += c->wd * p[i];
        m[i] = c->beta1 * m[i] + (1 - c->beta1) * g;
        v[i] = c->beta2 * v[i] + (1 - c->beta2) * g * g;
        double denom = sqrt(v[i]) / sqrt(1 - pow(c->beta2, t)) + c->eps;
        p[i] -= lr / (1 - pow(c->beta1, t)) * m[i] / denom;
    }
}

static void check_optimizer(const OptCase *c, const char *what)
{
    enum { N = 24 };
    float p[N], buf[N] = {0}, m[N] = {0}, v[N] = {0}, g[N];
    double pd[N], bufd[N] = {0}, md[N] = {0}, vd[N] = {0}, gd[N];
    for (size_t i = 0; i < N; i++)
        pd[i] = p[i] = (float)rnd(-1, 1);
    const double lrs[3] = {0.1, 0.05, 0.02}; /* a schedule: lr is read each step */
    float scale = (float)c->scale;
    for (int t = 1; t <= 3; t++) {
        for (size_t i = 0; i < N; i++)
            gd[i] = g[i] = (float)rnd(-2, 2);
        double lr = c->kind ? lrs[t - 1] / 10 : lrs[t - 1];
        if (c->kind == 0)
            sgd_update(p, g, c->momentum ? buf : NULL, N, lr, t, c->momentum, c->dampening, c->nesterov, c->wd,
                       c->scale ? &scale : NULL);
        else
            adam_update(p, g, m, v, N, lr, t, c->beta1, c->beta2, c->eps, c->wd, c->kind == 2,
                        c->scale ? &scale : NULL);
        opt_ref(c, pd, gd, bufd, md, vd, N, lr, t);
        double worst = 0;
        size_t at = 0;
        for (size_t i = 0; i < N; i++) {
            double e = fabs(p[i] - pd[i]) / fmax(1e-3, fabs(pd[i]));
            if (e > worst) {
                worst = e;
                at = i;
            }
        }
        CHECK_MSG(worst <= 2e-6, "%s step %d: param rel err %.3g at %zu (%.9g vs %.9g)", what, t, worst, at,
                  p[at], pd[at]);
        for (size_t i = 0; c->kind && i < N; i++)
            CHECK_MSG(fabs(m[i] - md[i]) <= 1e-6 * fmax(1, fabs(md[i])) && fabs(v[i] - vd[i]) <= 1e-6 * fmax(1e-3, vd[i]),
                      "%s step %d state %zu", what, t, i);
        for (size_t i = 0; c->kind == 0 && c->momentum && i < N; i++)
            CHECK_MSG(fabs(buf[i] - bufd[i]) <= 1e-5 * fmax(1, fabs(bufd[i])), "%s step %d buf %zu", what, t, i);
    }
}

static void test_optim_kernels(void)
{
    OptCase sgd = {0};
    check_optimizer(&sgd, "sgd");
    OptCase mom = {.momentum = 0.9};
    check_optimizer(&mom, "sgd momentum");
    OptCase nest = {.momentum = 0.9, .nesterov = true, .wd = 5e-4};
    check_optimizer(&nest, "sgd nesterov wd");
    OptCase damp = {.momentum = 0.5, .dampening = 0.3, .wd = 0.1, .scale = 0.25};
    check_optimizer(&damp, "sgd dampening wd scale");
    OptCase adam = {.kind = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    check_optimizer(&adam, "adam");
    OptCase adam_wd = {.kind = 1, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .wd = 0.05, .scale = 0.5};
    check_optimizer(&adam_wd, "adam wd scale");
    OptCase adamw = {.kind = 2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .wd = 0.01};
    check_optimizer(&adamw, "adamw");

    /* SGD by hand: p=1, g=2, lr 0.1, momentum 0.9: buf 2 -> p 0.8; g=2 again: buf 3.8 -> p 0.42 */
    float p = 1, g = 2, buf = 0;
    sgd_update(&p, &g, &buf, 1, 0.1, 1, 0.9, 0, false, 0, NULL);
    CHECK_NEAR(p, 0.8, 1e-7);
    sgd_update(&p, &g, &buf, 1, 0.1, 2, 0.9, 0, false, 0, NULL);
    CHECK_NEAR(buf, 3.8, 1e-6);
    CHECK_NEAR(p, 0.42, 1e-6);
    /* Adam's first step moves each parameter by lr * sign(g) (up to eps) */
    float pa[2] = {0.5f, 0.5f}, ga[2] = {3, -1e-3f}, ma[2] = {0}, va[2] = {0};
    adam_update(pa, ga, ma, va, 2, 0.01, 1, 0.9, 0.999, 1e-8, 0, false, NULL);
    CHECK_NEAR(pa[0], 0.49, 1e-6);
    CHECK_NEAR(pa[1], 0.51, 1e-5);

    /* clip_grad_norm_: two tensors with total norm 5 */
    float g1[2] = {3, 0}, g2[1] = {4}, scale, total;
    const float *gs[2] = {g1, g2};
    size_t sizes[2] = {2, 1};
    clip_grad_norm(&scale, &total, gs, sizes, 2, 1.0);
    CHECK_NEAR(total, 5, 1e-6);
    CHECK_NEAR(scale, 1 / (5 + 1e-6), 1e-7);
    clip_grad_norm(&scale, &total, gs, sizes, 2, 10.0);
    CHECK(scale == 1.0f);
    clip_grad_norm(&scale, &total, gs, sizes, 0, 1.0);
    CHECK(total == 0 && scale == 1.0f);
}

/* ======================================================================== loss and optimizer passes */

static Status loss_with(Model *m, LossKind k, double eps, const char *logits, Value **loss)
{
    LossOptions o = {.kind = k, .label_smoothing = eps, .logits = logits};
    diag_init(&d, NULL);
    return pass_loss(m, &o, loss, &d);
}

static Node *find_op_node(Model *m, const char *op)
{
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (!m->graph->nodes[i]->dead && strcmp(m->graph->nodes[i]->op_type, op) == 0)
            return m->graph->nodes[i];
    return NULL;
}

/* --loss model: the model's own SoftmaxCrossEntropyLoss/NegativeLogLikelihoodLoss is the loss. */
static void test_model_loss_pass(void)
{
    Value *loss = NULL;
    LossKind k;
    CHECK_EQ_INT(loss_parse("model", &k, &d), ST_OK);
    CHECK_EQ_INT(k, LOSS_MODEL);
    Model *m = load("models/mlp/model.onnx", 4);
    if (m)
        CHECK_ERR(loss_with(m, LOSS_MODEL, 0, NULL, &loss), ST_USAGE, "no output of the model is the loss");
    model_free(m);
    const char *paths[] = {"tests/ref/train/model_sce_sgd/model.onnx", "tests/ref/train/model_nll_adam/model.onnx"};
    const char *ops[] = {"SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"};
    for (int i = 0; i < 2; i++) {
        if (!(m = load(paths[i], 4))) {
            CHECK_MSG(false, "%s loads", paths[i]);
            continue;
        }
        CHECK_ERR(loss_with(m, LOSS_MODEL, 0.1, NULL, &loss), ST_USAGE, "--label-smoothing");
        Value *w = val(m, "class_weight");
        CHECK(i == 1 || (w && !value_is_param(m->graph, w)));    /* a buffer, as in PyTorch */
        CHECK_ERR(loss_with(m, LOSS_MODEL, 0, NULL, &loss), ST_OK, "");
        Node *n = find_op_node(m, ops[i]);
        CHECK(n && loss == n->outputs[0] && n->phase == PHASE_LOSS);
        CHECK(m->graph->noutputs == 2 && n && m->graph->outputs[0] == n->inputs[0] && m->graph->outputs[1] == loss);
        CHECK(n && loss_is_model_target(m->graph, n->inputs[1]) && !loss_is_model_target(m->graph, n->inputs[0]));
        model_free(m);
    }
}

static void test_loss_pass(void)
{
    Model *m = load("models/mlp/model.onnx", 4);
    if (!m) {
        CHECK(!"models/mlp/model.onnx loads");
        return;
    }
    Value *loss = NULL;
    LossKind k;
    CHECK_EQ_INT(loss_parse("bce_with_logits", &k, &d), ST_OK);
    CHECK_EQ_INT(k, LOSS_BCE_WITH_LOGITS);
    CHECK_STR(loss_name(LOSS_CROSS_ENTROPY), "cross_entropy");
    CHECK_ERR((diag_init(&d, NULL), loss_parse("hinge", &k, &d)), ST_USAGE, "'hinge'");
    CHECK_ERR(loss_with(m, LOSS_MSE, 0.1, NULL, &loss), ST_USAGE, "cross_entropy only");
    CHECK_ERR(loss_with(m, LOSS_CROSS_ENTROPY, 1.5, NULL, &loss), ST_USAGE, "--label-smoothing");
    CHECK_ERR(loss_with(m, LOSS_CROSS_ENTROPY, 0, "nope", &loss), ST_USAGE, "'nope'");
    CHECK_ERR(loss_with(m, LOSS_CROSS_ENTROPY, 0, "x", &loss), ST_OK, "");
    model_free(m);

    m = load("models/mlp/model.onnx", 4);
    CHECK_EQ_INT(loss_with(m, LOSS_CROSS_ENTROPY, 0.1, NULL, &loss), ST_OK);
    Graph *g = m->graph;
    Value *target = val(m, "target");
    CHECK(loss && target && target->is_input && target->dtype == DT_INT64);
    check_shape(target, "[4]");
    CHECK(loss && loss->dtype == DT_FLOAT && loss->shape.rank == 0 && strcmp(loss->name, "loss") == 0);
    CHECK_EQ_INT(g->noutputs, 2);
    if (g->noutputs == 2)
        CHECK(strcmp(g->outputs[0]->name, "logits") == 0 && g->outputs[1] == loss);
    Node *n = loss ? loss->producer : NULL;
    CHECK(n && strcmp(n->op_type, "CrossEntropyLoss") == 0 && strcmp(n->domain, ONNXTUNE_DOMAIN) == 0 &&
          n->phase == PHASE_LOSS && n->rule != NULL);
    if (n)
        CHECK_NEAR(node_attr_float(n, "label_smoothing", 0), 0.1, 1e-7);
    CHECK_EQ_INT(model_opset(m, ONNXTUNE_DOMAIN), 1);
    CHECK_EQ_INT(graph_verify(g, &d), ST_OK);
    model_free(m);

    /* float targets for the others; names already taken get a suffix */
    m = load("models/mlp/model.onnx", 4);
    CHECK_EQ_INT(loss_with(m, LOSS_MSE, 0, NULL, &loss), ST_OK);
    target = val(m, "target");
    CHECK(target && target->dtype == DT_FLOAT);
    check_shape(target, "[4,10]");
    CHECK_EQ_INT(loss_with(m, LOSS_L1, 0, "logits", &loss), ST_OK);
    CHECK(loss && strcmp(loss->name, "loss_1") == 0 && val(m, "target_1") && val(m, "target_1")->is_input);
    CHECK_ERR(loss_with(m, LOSS_L1, 0, NULL, &loss), ST_USAGE, "3 outputs");
    model_free(m);

    /* the op rules refuse what does not fit */
    m = load("models/mlp/model.onnx", 4);
    CHECK_EQ_INT(loss_with(m, LOSS_CROSS_ENTROPY, 0, NULL, &loss), ST_OK);
    n = loss->producer;
    target = val(m, "target");
    target->shape.dim[0] = 5;
    CHECK_ERR((diag_init(&d, NULL), infer_node(m->graph, n, &d)), ST_SHAPE, "has 4 rows but target");
    target->shape.dim[0] = 4;
    target->dtype = DT_FLOAT;
    CHECK_ERR((diag_init(&d, NULL), infer_node(m->graph, n, &d)), ST_SHAPE, "must be int64");
    model_free(m);
    m = load("models/cnn/model.onnx", 4);
    CHECK_ERR(loss_with(m, LOSS_CROSS_ENTROPY, 0, "/features/features.7/GlobalAveragePool_output_0", &loss),
              ST_SHAPE, "[N, C]");
    CHECK_EQ_INT(loss_with(m, LOSS_BCE_WITH_LOGITS, 0, "/features/features.7/GlobalAveragePool_output_0", &loss),
                 ST_OK);
    model_free(m);
}

/* A model whose "logits" is a trainable initializer W [4,3] itself: the loss and optimizer chain with no
 * forward op in between, so it needs no other op's gradient rule. */
static Model *param_model(void)
{
    Model *m = model_new();
    Graph *g = m ? graph_new(m->arena, "param", NULL) : NULL;
    if (!g)
        return NULL;
    m->graph = g;
    diag_init(&d, NULL);
    int64_t dims[2] = {4, 3};
    Shape s = shape_make(2, dims);
    Value *w = graph_const(g, "W", DT_FLOAT, &s, &d);
    w->is_initializer = true;
    for (size_t i = 0; i < 12; i++)
        ((float *)w->init->data)[i] = (float)rnd(-1, 1);
    graph_add_output(g, w);
    return m;
}

static void test_chain_param(void)
{
    for (int kind = 0; kind < 3; kind++) {
        Model *m = param_model();
        Graph *g = m->graph;
        FreezeRule all[] = {{true, "*"}};
        /* an output-only initializer is read by no node: not a parameter until the loss reads it */
        CHECK_ERR(freeze_with(m, all, 1, NULL, false, false), ST_USAGE, "--train '*' matches no trainable");
        Value *loss = NULL;
        CHECK_EQ_INT(loss_with(m, kind == 1 ? LOSS_MSE : LOSS_CROSS_ENTROPY, 0.1 * (kind != 1), NULL, &loss),
                     ST_OK);
        CHECK_EQ_INT(freeze_with(m, all, 1, NULL, false, false), ST_OK);
        Gradients grads;
        Status st = pass_autodiff(g, loss, &grads, &d);
        CHECK_MSG(st == ST_OK, "autodiff: %s", d.msg);
        if (st)
            continue;
        Value *w = val(m, "W");
        CHECK_EQ_INT(grads.n, 1);
        CHECK(grads.params[0] == w && grads.grads[0]->producer);
        Node *b = grads.grads[0]->producer;
        CHECK_STR(b->op_type, kind == 1 ? "MSELossGrad" : "CrossEntropyLossGrad");
        CHECK(b->phase == PHASE_BACKWARD && b->inputs[1] == w && b->inputs[0]->init &&
              tensor_get_f64(b->inputs[0]->init, 0) == 1.0);
        if (kind != 1)
            CHECK_NEAR(node_attr_float(b, "label_smoothing", 0), 0.1, 1e-7);
        check_shape(grads.grads[0], "[4,3]");

        OptimOptions o;
        optim_defaults(kind == 0 ? OPTIM_SGD : kind == 1 ? OPTIM_ADAM : OPTIM_ADAMW, &o);
        if (kind == 0) {
            o.momentum = 0.9;
            o.nesterov = true;
            o.grad_clip = 1.0;
        }
        diag_init(&d, NULL);
        st = pass_optim(g, &grads, &o, &d);
        CHECK_MSG(st == ST_OK, "pass_optim: %s", d.msg);
        if (st)
            continue;
        Value *lr = val(m, "lr"), *step = val(m, "step");
        CHECK(lr && lr->is_input && lr->dtype == DT_DOUBLE && lr->shape.rank == 0);
        CHECK(step && step->is_input && step->dtype == DT_INT64 && step->shape.rank == 0);
        const char *op = kind == 0 ? "SGDUpdate" : kind == 1 ? "AdamUpdate" : "AdamWUpdate";
        Node *u = find_op_node(m, op);
        CHECK(u && u->noutputs == 0 && u->phase == PHASE_OPTIMIZER && strcmp(u->domain, ONNXTUNE_DOMAIN) == 0);
        if (!u)
            continue;
        CHECK(u->inputs[0] == w && u->inputs[1] == grads.grads[0] && u->inputs[2] == lr && u->inputs[3] == step);
        if (kind == 0) {
            Value *buf = val(m, "W.momentum_buffer");
            Node *clip = find_op_node(m, "ClipGradNorm");
            CHECK_EQ_INT(u->ninputs, 6);
            CHECK(buf && u->inputs[4] == buf && buf->is_state && buf->init && !buf->trainable);
            CHECK(clip && clip->ninputs == 1 && clip->inputs[0] == grads.grads[0] && u->inputs[5] == clip->outputs[0]);
            CHECK(clip && clip->phase == PHASE_OPTIMIZER && clip->outputs[1]->is_output &&
                  strcmp(clip->outputs[1]->name, "grad_norm") == 0);
            CHECK_NEAR(node_attr_float(u, "momentum", 0), 0.9, 1e-7);
            CHECK_EQ_INT(node_attr_int(u, "nesterov", 0), 1);
            for (size_t i = 0; buf && i < 12; i++)
                CHECK(((float *)buf->init->data)[i] == 0);
        } else {
            CHECK_EQ_INT(u->ninputs, 6);
            CHECK(u->inputs[4] == val(m, "W.exp_avg") && u->inputs[5] == val(m, "W.exp_avg_sq"));
            CHECK(u->inputs[4] && u->inputs[4]->is_state && u->inputs[5]->is_state);
            CHECK_NEAR(node_attr_float(u, "beta2", 0), 0.999, 1e-7);
            CHECK_NEAR(node_attr_float(u, "weight_decay", -1), kind == 2 ? 0.01 : 0, 1e-9);
            CHECK(find_op_node(m, "ClipGradNorm") == NULL);
        }
        CHECK_EQ_INT(graph_verify(g, &d), ST_OK);
        /* a second optimizer would need the names again */
        CHECK_ERR((diag_init(&d, NULL), pass_optim(g, &grads, &o, &d)), ST_USAGE, "'lr'");
        model_free(m);
    }

    /* bad options */
    Model *m = param_model();
    Value *loss;
    FreezeRule all[] = {{true, "*"}};
    Gradients grads;
    CHECK_EQ_INT(loss_with(m, LOSS_CROSS_ENTROPY, 0, NULL, &loss), ST_OK);
    CHECK_EQ_INT(freeze_with(m, all, 1, NULL, false, false), ST_OK);
    CHECK_EQ_INT(pass_autodiff(m->graph, loss, &grads, &d), ST_OK);
    OptimOptions o;
    optim_defaults(OPTIM_SGD, &o);
    o.nesterov = true;
    CHECK_ERR((diag_init(&d, NULL), pass_optim(m->graph, &grads, &o, &d)), ST_USAGE, "--nesterov");
    optim_defaults(OPTIM_ADAM, &o);
    o.beta2 = 1;
    CHECK_ERR((diag_init(&d, NULL), pass_optim(m->graph, &grads, &o, &d)), ST_USAGE, "--beta2");
    optim_defaults(OPTIM_ADAM, &o);
    o.momentum = 0.9;
    CHECK_ERR((diag_init(&d, NULL), pass_optim(m->graph, &grads, &o, &d)), ST_USAGE, "SGD options");
    OptimKind k;
    CHECK_ERR((diag_init(&d, NULL), optim_parse("rmsprop", &k, &d)), ST_USAGE, "'rmsprop'");
    CHECK_EQ_INT(optim_parse("adamw", &k, &d), ST_OK);
    CHECK_EQ_INT(k, OPTIM_ADAMW);
    optim_defaults(OPTIM_ADAMW, &o);
    CHECK(o.weight_decay == 0.01 && o.beta1 == 0.9 && o.beta2 == 0.999 && o.eps == 1e-8);
    model_free(m);
}

/* The chain on the CNN with a frozen backbone: freeze -> head -> loss -> autodiff -> optim. The
 * head is a Gemm, so autodiff needs Gemm's gradient rule (ir/ops_matmul.c, another helper's); until it
 * exists this part reports itself as PENDING rather than passing. */
static void test_chain_cnn(void)
{
    Model *m = load("models/cnn/model.onnx", 4);
    if (!m) {
        CHECK(!"models/cnn/model.onnx loads");
        return;
    }
    Value *loss = NULL;
    CHECK_EQ_INT(freeze_with(m, NULL, 0, NULL, false, true), ST_OK);
    CHECK_EQ_INT(head_with(m, "linear:5", NULL, 0, 7), ST_OK);
    CHECK_EQ_INT(loss_with(m, LOSS_CROSS_ENTROPY, 0, NULL, &loss), ST_OK);
    FreezeSummary s;
    freeze_summary(m->graph, &s);
    CHECK_EQ_INT(s.trainable, 2);
    CHECK_EQ_INT(s.bn_train, 0);
    Gradients grads;
    diag_init(&d, NULL);
    Status st = pass_autodiff(m->graph, loss, &grads, &d);
    const OpRule *gemm = op_lookup("", "Gemm");
    if (!gemm || !gemm->grad) {
        CHECK_EQ_INT(st, ST_UNSUPPORTED);
        CHECK_MSG(strstr(d.msg, "no gradient rule for Gemm"), "%s", d.msg);
        printf("PENDING: the cnn chain stops at autodiff until Gemm has a gradient rule (%s)\n", d.msg);
        model_free(m);
        return;
    }
    CHECK_MSG(st == ST_OK, "autodiff: %s", d.msg);
    if (st) {
        model_free(m);
        return;
    }
    CHECK_EQ_INT(grads.n, 2);
    for (size_t i = 0; i < grads.n; i++)
        CHECK(strncmp(grads.params[i]->name, "head.", 5) == 0);
    /* frozen backbone: no backward node reads a backbone activation's gradient */
    size_t conv_grads = 0;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        conv_grads += m->graph->nodes[i]->phase == PHASE_BACKWARD && strstr(m->graph->nodes[i]->name, "features");
    CHECK_EQ_INT(conv_grads, 0);
    OptimOptions o;
    optim_defaults(OPTIM_SGD, &o);
    o.momentum = 0.9;
    o.nesterov = true;
    o.weight_decay = 5e-4;
    diag_init(&d, NULL);
    CHECK_EQ_INT(pass_optim(m->graph, &grads, &o, &d), ST_OK);
    CHECK_EQ_INT(count_op(m, "SGDUpdate"), 2);
    CHECK_EQ_INT(graph_verify(m->graph, &d), ST_OK);
    model_free(m);
}

/* ======================================================================== PyTorch fixtures */

/* tests/ref/train/<case>/case.json (tests/ref/README.md), read with common.h's JSON reader. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[len] = 0;
    fclose(f);
    return buf;
}

/* A member of an object (absent, or doc not an object: an empty JsonText, which every reader refuses). */
static JsonText json_key(JsonText doc, const char *key)
{
    JsonText v;
    return json_get_member(doc, key, &v) ? v : (JsonText){NULL, 0};
}

/* A string value into out (false: not a string). */
static bool json_str(JsonText v, char *out, size_t cap)
{
    Buf b = {0};
    bool ok = json_get_string(v, &b);
    if (ok)
        snprintf(out, cap, "%s", buf_str(&b));
    buf_free(&b);
    return ok;
}

#define MAXS 64
typedef struct {
    size_t n;
    char s[MAXS][256];
    char v[MAXS][256];  /* objects: the values */
} StrList;

/* ["a", "b"] or {"a": "x", "b": "y"} */
static void json_strings(JsonText v, StrList *out)
{
    JsonText e, k;
    out->n = 0;
    if (v.n && v.p[0] == '{') {
        while (out->n < MAXS && json_get_entry(v, out->n, &k, &e) && json_str(k, out->s[out->n], sizeof out->s[0]) &&
               json_str(e, out->v[out->n], sizeof out->v[0]))
            out->n++;
        return;
    }
    while (out->n < MAXS && json_get_element(v, out->n, &e) && json_str(e, out->s[out->n], sizeof out->s[0]))
        out->n++;
}

static size_t json_numbers(JsonText v, double *out, size_t max)
{
    JsonText e;
    size_t n = 0;
    while (n < max && json_get_element(v, n, &e) && json_get_number(e, &out[n]))
        n++;
    return n;
}

static double json_num(JsonText doc, const char *key, double dflt)
{
    double x;
    return json_get_number(json_key(doc, key), &x) ? x : dflt;
}

static bool in_list(const StrList *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->s[i], s) == 0)
            return true;
    return false;
}

/* The onnxtune options of an argv list (compile_args / alt_compile_args). */
typedef struct {
    FreezeRule rules[16];
    FreezeOptions freeze;
    HeadOptions head;
    const char *lora_globs[16];
    LoraOptions lora;
    LossOptions loss;
    OptimOptions optim;
    bool ok;
} CaseArgs;

static void parse_args(const StrList *a, CaseArgs *c)
{
    memset(c, 0, sizeof *c);
    c->freeze.rules = c->rules;
    c->lora = (LoraOptions){.globs = c->lora_globs, .rank = 8, .alpha = 16};
    c->ok = true;
    OptimOptions o = {0};
    double wd = -1;
    diag_init(&d, NULL);
    for (size_t i = 0; i < a->n; i++) {
        const char *k = a->s[i], *v = i + 1 < a->n ? a->s[i + 1] : "";
        bool used = true;
        if ((!strcmp(k, "--train") || !strcmp(k, "--freeze")) && c->freeze.nrules < 16)
            c->rules[c->freeze.nrules++] = (FreezeRule){k[2] == 't', v};
        else if (!strcmp(k, "--train-from"))
            c->freeze.train_from = v;
        else if (!strcmp(k, "--lora") && c->lora.nglobs < 16)
            c->lora_globs[c->lora.nglobs++] = v;
        else if (!strcmp(k, "--lora-rank"))
            c->lora.rank = atoi(v);
        else if (!strcmp(k, "--lora-alpha"))
            c->lora.alpha = atof(v);
        else if (!strcmp(k, "--head"))
            c->ok &= head_parse(v, &c->head, &d) == ST_OK;
        else if (!strcmp(k, "--pool"))
            c->ok &= head_pool_parse(v, &c->head.pool, &d) == ST_OK;
        else if (!strcmp(k, "--mask-input"))
            c->head.mask_input = v;
        else if (!strcmp(k, "--loss"))
            c->ok &= loss_parse(v, &c->loss.kind, &d) == ST_OK;
        else if (!strcmp(k, "--label-smoothing"))
            c->loss.label_smoothing = atof(v);
        else if (!strcmp(k, "--optimizer"))
            c->ok &= optim_parse(v, &o.kind, &d) == ST_OK;
        else if (!strcmp(k, "--momentum"))
            o.momentum = atof(v);
        else if (!strcmp(k, "--beta1"))
            o.beta1 = atof(v);
        else if (!strcmp(k, "--beta2"))
            o.beta2 = atof(v);
        else if (!strcmp(k, "--eps"))
            o.eps = atof(v);
        else if (!strcmp(k, "--weight-decay"))
            wd = atof(v);
        else if (!strcmp(k, "--grad-clip"))
            o.grad_clip = atof(v);
        else if (!strcmp(k, "--lr-schedule") || !strcmp(k, "--warmup"))
            used = true;
        else
            used = false;
        if (used && strcmp(k, "--nesterov") && strcmp(k, "--bn-train") && strcmp(k, "--train-bias"))
            i++;
        c->freeze.bn_train |= !strcmp(k, "--bn-train");
        c->freeze.train_bias |= !strcmp(k, "--train-bias");
        o.nesterov |= !strcmp(k, "--nesterov");
    }
    double mom = o.momentum, b1 = o.beta1, b2 = o.beta2, eps = o.eps, clip = o.grad_clip;
    bool nest = o.nesterov;
    optim_defaults(o.kind, &c->optim);
    c->optim.momentum = mom;
    c->optim.nesterov = nest;
    c->optim.grad_clip = clip;
    if (b1)
        c->optim.beta1 = b1;
    if (b2)
        c->optim.beta2 = b2;
    if (eps)
        c->optim.eps = eps;
    if (wd >= 0)
        c->optim.weight_decay = wd;
}

/* The value of m named `name` in the ONNX file (fixtures use those names; pass_torch_names renamed some). */
static Value *val_onnx(Model *m, const char *name)
{
    for (size_t i = 0; i < m->graph->nvalues; i++)
        if (strcmp(value_onnx_name(m->graph->values[i]), name) == 0)
            return m->graph->values[i];
    return NULL;
}

/* Trainable values of m are exactly the list (of ONNX names). */
static void check_trainable_list(Model *m, const StrList *want, const char *what)
{
    for (size_t i = 0; i < m->graph->nvalues; i++) {
        const Value *v = m->graph->values[i];
        CHECK_MSG(v->trainable == in_list(want, value_onnx_name(v)), "%s: '%s' is %s", what, v->name,
                  v->trainable ? "trainable but the fixture freezes it" : "frozen but the fixture trains it");
    }
    for (size_t i = 0; i < want->n; i++)
        CHECK_MSG(val_onnx(m, want->s[i]) != NULL, "%s: no value '%s'", what, want->s[i]);
}

/* The passes of one case's argv on its model: the trainable set, cut, removed classifier and BN region
 * the fixture says, then loss, autodiff and optimizer (autodiff may lack another op's rule: PENDING). */
static void check_case_passes(const char *name, JsonText doc, const char *argkey, size_t *pending)
{
    StrList args, trainable, removed, region, init;
    char model[512], cut[512], what[256];
    json_strings(json_key(doc, argkey), &args);
    json_strings(json_key(doc, "trainable"), &trainable);
    json_strings(json_key(doc, "removed_initializers"), &removed);
    json_strings(json_key(doc, "bn_train_region"), &region);
    json_strings(json_key(doc, "init"), &init);
    snprintf(what, sizeof what, "%s %s", name, argkey);
    if (!json_str(json_key(doc, "model"), model, sizeof model) || !json_str(json_key(doc, "cut"), cut, sizeof cut) ||
        args.n == 0) {
        CHECK_MSG(false, "%s: case.json lacks model/cut/%s", what, argkey);
        return;
    }
    CaseArgs c;
    parse_args(&args, &c);
    CHECK_MSG(c.ok, "%s: options: %s", what, d.msg);
    /* parameters stay read as compile keeps them (a Gather of position embeddings by constant ids) */
    Model *m = load_keep(model, (int64_t)json_num(json_key(doc, "options"), "batch", 4), true);
    if (!m || !c.ok) {
        CHECK_MSG(m != NULL, "%s: %s loads", what, model);
        model_free(m);
        return;
    }
    diag_init(&d, NULL);
    Status st = pass_torch_names(m, &d);    /* as compile does: the fixtures' globs may be PyTorch names */
    st = st ? st : pass_freeze(m, &c.freeze, &d);
    CHECK_MSG(st == ST_OK, "%s: pass_freeze: %s", what, d.msg);
    st = st ? st : pass_head(m, &c.head, &d);
    CHECK_MSG(st == ST_OK, "%s: pass_head: %s", what, d.msg);
    LoraResult lora;
    st = st ? st : pass_lora(m, &c.lora, &lora, &d);   /* trainable: the adapters, not their weights */
    CHECK_MSG(st == ST_OK, "%s: pass_lora: %s", what, d.msg);
    if (st) {
        model_free(m);
        return;
    }
    check_trainable_list(m, &trainable, what);
    for (size_t i = 0; i < removed.n; i++)
        CHECK_MSG(val_onnx(m, removed.s[i]) && graph_count_uses(m->graph, val_onnx(m, removed.s[i])) == 0,
                  "%s: '%s' is still read", what, removed.s[i]);
    if (c.head.kind != HEAD_NONE) {
        Node *first = find_node(m, "/head/Flatten");
        first = first ? first : find_node(m, c.head.kind == HEAD_LINEAR ? "/head/Gemm" : "/head/0/Gemm");
        if (c.head.pool)    /* --pool: the pooling reads the cut (its first node: Gather, Equal or ReduceMean) */
            for (size_t k = 0; k < m->graph->nnodes; k++) {
                Node *n = m->graph->nodes[k];
                if (!n->dead && strncmp(n->name, "/pool/", 6) == 0 && n->ninputs && strcmp(n->inputs[0]->name, cut) == 0)
                    first = n;
            }
        CHECK_MSG(first && strcmp(first->inputs[0]->name, cut) == 0, "%s: head on '%s', fixture cut '%s'", what,
                  first ? first->inputs[0]->name : "?", cut);
        for (size_t i = 0; i < init.n; i++) {
            NpyArray a;
            Value *v = val(m, init.s[i]);
            CHECK_MSG(v != NULL, "%s: no head or LoRA parameter '%s'", what, init.s[i]);
            if (!v || npy_read(init.v[i], &a, NULL, 0) != NPY_OK)
                continue;
            bool same = a.rank == v->shape.rank;
            for (int k = 0; same && k < a.rank; k++)
                same = (int64_t)a.dims[k] == v->shape.dim[k];
            CHECK_MSG(same, "%s: '%s' has another shape than %s", what, init.s[i], init.v[i]);
            npy_free(&a);
        }
    }
    for (size_t k = 0; k < m->graph->nnodes; k++) {
        const Node *n = m->graph->nodes[k];
        if (strcmp(n->op_type, "BatchNormalization") == 0)
            CHECK_MSG(node_attr_int(n, "training_mode", 0) == in_list(&region, n->name), "%s: BN '%s' mode", what,
                      n->name);
    }
    Value *loss = NULL;
    if ((st = pass_loss(m, &c.loss, &loss, &d))) {
        CHECK_MSG(false, "%s: pass_loss: %s", what, d.msg);
        model_free(m);
        return;
    }
    Gradients grads;
    st = pass_autodiff(m->graph, loss, &grads, &d);
    if (st == ST_UNSUPPORTED && strstr(d.msg, "no gradient rule")) {
        printf("PENDING: %s: %s\n", what, d.msg);
        ++*pending;
        model_free(m);
        return;
    }
    CHECK_MSG(st == ST_OK, "%s: autodiff: %s", what, d.msg);
    if (!st) {
        StrList got = {.n = 0};
        for (size_t i = 0; i < grads.n && i < MAXS; i++)
            snprintf(got.s[got.n++], sizeof got.s[0], "%s", value_onnx_name(grads.params[i]));
        CHECK_MSG(got.n == trainable.n, "%s: %zu gradients for %zu trainable", what, got.n, trainable.n);
        for (size_t i = 0; i < trainable.n; i++)
            CHECK_MSG(in_list(&got, trainable.s[i]), "%s: no gradient for '%s'", what, trainable.s[i]);
        st = pass_optim(m->graph, &grads, &c.optim, &d);
        CHECK_MSG(st == ST_OK, "%s: pass_optim: %s", what, d.msg);
        const char *op = c.optim.kind == OPTIM_SGD ? "SGDUpdate" : c.optim.kind == OPTIM_ADAM ? "AdamUpdate" : "AdamWUpdate";
        CHECK_MSG(count_op(m, op) == trainable.n, "%s: %zu %s nodes", what, count_op(m, op), op);
        CHECK_MSG(graph_verify(m->graph, &d) == ST_OK, "%s: verify: %s", what, d.msg);
    }
    model_free(m);
}

static float *npy_floats(const char *path, size_t want)
{
    NpyArray a;
    char err[256];
    if (npy_read(path, &a, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    if (a.dtype != RT_FLOAT || a.numel != want) {
        fprintf(stderr, "%s: %zu %s elements, want %zu float32\n", path, a.numel, rt_dtype_name(a.dtype), want);
        npy_free(&a);
        return NULL;
    }
    float *p = malloc(want * sizeof *p);
    if (p)
        memcpy(p, a.data, want * sizeof *p);
    npy_free(&a);
    return p;
}

/* max|got - ref| / max|ref| (the fixtures' metric) */
static double rel_err(const float *got, const float *ref, size_t n)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)got[i] - ref[i]));
        r = fmax(r, fabs((double)ref[i]));
    }
    return e / fmax(r, 1e-30);
}

/* The MLP cases (Linear(16,32)-ReLU-Linear(32,10), no head) replayed with kernels/loss.c and
 * kernels/optim.c: the forward and backward of the two Linears are written out here in double. */
static void replay_mlp(const char *name, JsonText doc)
{
    enum { IN = 16, HID = 32, OUT = 10, MAXB = 64 };
    char xpath[512], ypath[512];
    StrList args, trainable, expected;
    json_strings(json_key(doc, "compile_args"), &args);
    json_strings(json_key(doc, "trainable"), &trainable);
    json_strings(json_key(doc, "expected"), &expected);
    JsonText data = json_key(doc, "data");
    CaseArgs c;
    parse_args(&args, &c);
    double lrs[64], losses[64];
    size_t steps = (size_t)json_num(doc, "steps", 0), per_epoch = (size_t)json_num(doc, "steps_per_epoch", 1);
    size_t samples = (size_t)json_num(doc, "samples", 0), batch = (size_t)json_num(doc, "batch", 1);
    if (!json_str(json_key(data, "x"), xpath, sizeof xpath) || !json_str(json_key(data, "y"), ypath, sizeof ypath) ||
        json_numbers(json_key(doc, "lrs"), lrs, 64) != steps || json_numbers(json_key(doc, "losses"), losses, 64) != steps ||
        steps == 0 || batch > MAXB || samples == 0) {
        CHECK_MSG(false, "%s: case.json is not a readable MLP case", name);
        return;
    }
    Model *m = load("models/mlp/model.onnx", 4);
    if (!m)
        return;
    /* parameters in order fc1.weight [32,16], fc1.bias, fc2.weight [10,32], fc2.bias, with their state */
    static const char *const pname[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    static const size_t psize[4] = {HID * IN, HID, OUT * HID, OUT};
    float *p[4], *gr[4], *s1[4], *s2[4];
    bool train[4];
    for (int k = 0; k < 4; k++) {
        p[k] = malloc(psize[k] * sizeof(float));
        gr[k] = calloc(psize[k], sizeof(float));
        s1[k] = calloc(psize[k], sizeof(float));
        s2[k] = calloc(psize[k], sizeof(float));
        memcpy(p[k], val(m, pname[k])->init->data, psize[k] * sizeof(float));
        train[k] = in_list(&trainable, pname[k]);
    }
    model_free(m);
    bool ce = c.loss.kind == LOSS_CROSS_ENTROPY;
    NpyArray xa, ya;
    if (npy_read(xpath, &xa, NULL, 0) || npy_read(ypath, &ya, NULL, 0)) {
        CHECK_MSG(false, "%s: reading %s / %s", name, xpath, ypath);
        return;
    }
    const float *X = xa.data;
    double worst_loss = 0;
    for (size_t t = 0; t < steps; t++) {
        size_t i0 = (t % per_epoch) * batch, nb = samples - i0 < batch ? samples - i0 : batch;
        const float *x = X + i0 * IN;
        float hpre[MAXB * HID], h[MAXB * HID], z[MAXB * OUT], dz[MAXB * OUT], dh[MAXB * HID], loss, one = 1;
        for (size_t i = 0; i < nb; i++) {
            for (size_t j = 0; j < HID; j++) {
                double a = p[1][j];
                for (size_t k = 0; k < IN; k++)
                    a += (double)x[i * IN + k] * p[0][j * IN + k];
                hpre[i * HID + j] = (float)a;
                h[i * HID + j] = a > 0 ? (float)a : 0;
            }
            for (size_t o = 0; o < OUT; o++) {
                double a = p[3][o];
                for (size_t j = 0; j < HID; j++)
                    a += (double)h[i * HID + j] * p[2][o * HID + j];
                z[i * OUT + o] = (float)a;
            }
        }
        const int64_t *yi = (const int64_t *)ya.data + i0;
        const float *yf = (const float *)ya.data + i0 * OUT;
        switch (c.loss.kind) {
        case LOSS_CROSS_ENTROPY:
            cross_entropy_forward(&loss, z, yi, nb, OUT, (float)c.loss.label_smoothing);
            cross_entropy_backward(dz, &one, z, yi, nb, OUT, (float)c.loss.label_smoothing);
            break;
        case LOSS_MSE:
            mse_loss_forward(&loss, z, yf, nb * OUT);
            mse_loss_backward(dz, &one, z, yf, nb * OUT);
            break;
        case LOSS_L1:
            l1_loss_forward(&loss, z, yf, nb * OUT);
            l1_loss_backward(dz, &one, z, yf, nb * OUT);
            break;
        case LOSS_BCE_WITH_LOGITS:
            bce_with_logits_forward(&loss, z, yf, nb * OUT);
            bce_with_logits_backward(dz, &one, z, yf, nb * OUT);
            break;
        case LOSS_MODEL:    /* the training cases of this file put a loss on the model */
            CHECK_MSG(false, "%s: no reference for --loss model", name);
            return;
        }
        (void)ce;
        worst_loss = fmax(worst_loss, fabs(loss - losses[t]) / fabs(losses[t]));
        for (size_t o = 0; o < OUT; o++) {
            double b = 0;
            for (size_t i = 0; i < nb; i++)
                b += dz[i * OUT + o];
            gr[3][o] = (float)b;
            for (size_t j = 0; j < HID; j++) {
                double a = 0;
                for (size_t i = 0; i < nb; i++)
                    a += (double)dz[i * OUT + o] * h[i * HID + j];
                gr[2][o * HID + j] = (float)a;
            }
        }
        for (size_t i = 0; i < nb; i++)
            for (size_t j = 0; j < HID; j++) {
                double a = 0;
                for (size_t o = 0; o < OUT; o++)
                    a += (double)dz[i * OUT + o] * p[2][o * HID + j];
                dh[i * HID + j] = hpre[i * HID + j] > 0 ? (float)a : 0;
            }
        for (size_t j = 0; j < HID; j++) {
            double b = 0;
            for (size_t i = 0; i < nb; i++)
                b += dh[i * HID + j];
            gr[1][j] = (float)b;
            for (size_t k = 0; k < IN; k++) {
                double a = 0;
                for (size_t i = 0; i < nb; i++)
                    a += (double)dh[i * HID + j] * x[i * IN + k];
                gr[0][j * IN + k] = (float)a;
            }
        }
        float scale = 1, total;
        const float *gs[4];
        size_t sizes[4], ng = 0;
        for (int k = 0; k < 4; k++)
            if (train[k]) {
                gs[ng] = gr[k];
                sizes[ng++] = psize[k];
            }
        if (c.optim.grad_clip > 0)
            clip_grad_norm(&scale, &total, gs, sizes, ng, c.optim.grad_clip);
        const OptimOptions *o = &c.optim;
        for (int k = 0; k < 4; k++) {
            if (!train[k])
                continue;
            const float *sc = o->grad_clip > 0 ? &scale : NULL;
            if (o->kind == OPTIM_SGD)
                sgd_update(p[k], gr[k], o->momentum ? s1[k] : NULL, psize[k], lrs[t], (int64_t)t + 1, o->momentum,
                           o->dampening, o->nesterov, o->weight_decay, sc);
            else
                adam_update(p[k], gr[k], s1[k], s2[k], psize[k], lrs[t], (int64_t)t + 1, o->beta1, o->beta2, o->eps,
                            o->weight_decay, o->kind == OPTIM_ADAMW, sc);
        }
    }
    CHECK_MSG(worst_loss < 1e-4, "%s: loss rel err %.3g vs PyTorch", name, worst_loss);
    double worst_w = 0;
    for (size_t e = 0; e < expected.n; e++) {
        int k = 0;
        while (k < 4 && strcmp(pname[k], expected.s[e]))
            k++;
        float *ref = k < 4 ? npy_floats(expected.v[e], psize[k]) : NULL;
        CHECK_MSG(ref != NULL, "%s: expected '%s' (%s)", name, expected.s[e], expected.v[e]);
        if (!ref)
            continue;
        double err = rel_err(p[k], ref, psize[k]);
        worst_w = fmax(worst_w, err);
        CHECK_MSG(err < 1e-4, "%s: '%s' rel err %.3g vs PyTorch", name, expected.s[e], err);
        free(ref);
    }
    printf("%-14s %zu steps: loss rel err %.2g, weights rel err %.2g\n", name, steps, worst_loss, worst_w);
    for (int k = 0; k < 4; k++) {
        free(p[k]);
        free(gr[k]);
        free(s1[k]);
        free(s2[k]);
    }
    npy_free(&xa);
    npy_free(&ya);
}

static void test_fixtures(void)
{
    char *index = read_text("tests/ref/train/index.json");
    if (!index) {
        printf("SKIPPED: no tests/ref/train/index.json (PyTorch fixtures)\n");
        return;
    }
    StrList cases;
    JsonText idx = {NULL, 0};
    CHECK_MSG(json_parse(index, strlen(index), &idx), "tests/ref/train/index.json is not JSON");
    json_strings(json_key(idx, "cases"), &cases);
    CHECK_MSG(cases.n >= 10, "%zu fixture cases", cases.n);
    size_t pending = 0, replayed = 0;
    for (size_t i = 0; i < cases.n; i++) {
        char path[512];
        snprintf(path, sizeof path, "tests/ref/train/%s/case.json", cases.s[i]);
        char *text = read_text(path);
        JsonText doc;
        CHECK_MSG(text && json_parse(text, strlen(text), &doc), "reading %s: %s", path, text ? "not JSON" : "missing");
        if (!text || !json_parse(text, strlen(text), &doc)) {
            free(text);
            continue;
        }
        check_case_passes(cases.s[i], doc, "compile_args", &pending);
        if (json_key(doc, "alt_compile_args").p)
            check_case_passes(cases.s[i], doc, "alt_compile_args", &pending);
        char model[256];
        if (json_str(json_key(doc, "model"), model, sizeof model) && strcmp(model, "models/mlp/model.onnx") == 0) {
            replay_mlp(cases.s[i], doc);
            replayed++;
        }
        free(text);
    }
    CHECK_MSG(replayed >= 10, "%zu MLP cases replayed", replayed);
    if (pending)
        printf("PENDING: %zu fixture chains stop at autodiff for lack of another op's gradient rule\n", pending);
    free(index);
}

/* ======================================================================== emitters (codegen/emit_train.c) */

/* A loss node of the onnxtune domain on x and t. */
static Value *gc_loss_op(GcCase *c, const char *op, Value *x, Value *t, double eps)
{
    if (!gc_ok(c))
        return NULL;
    Value *out = graph_new_value(c->g, op, &c->d);
    Node *n = out ? graph_add_node(c->g, op, ONNXTUNE_DOMAIN, NULL, 2, (Value *[]){x, t}, 1, &out, &c->d) : NULL;
    if (!n)
        return NULL;
    n->opset = 1;
    if (eps > 0 && node_set_attr_float(c->g, n, "label_smoothing", (float)eps, &c->d))
        return NULL;
    return infer_node(c->g, n, &c->d) ? NULL : out;
}

/* The losses' gradient rules, backward ops, emitters and kernels together: generated code against
 * finite differences (tests/gradcheck.h). */
static void test_emit_losses(void)
{
    GradCheck *s = gc_new("train_losses");
    if (!s) {
        CHECK(!"gradcheck suite");
        return;
    }
    const int64_t y4[4] = {0, 3, 1, 4};
    for (int k = 0; k < 2; k++) {
        GcCase *c = gc_case(s, "CrossEntropyLoss", k ? "label_smoothing 0.2" : "[4,5]");
        Value *x = gc_param(c, "x", "4,5", -3, 3), *y = gc_ints(c, "4", y4);
        Value *l = gc_loss_op(c, "CrossEntropyLoss", x, y, k ? 0.2 : 0);
        gc_check(c, 1, &l);
    }
    GcCase *c = gc_case(s, "CrossEntropyLoss", "after a head Gemm (transB)");
    Value *f = gc_data(c, "f", "4,6", -1, 1), *w = gc_param(c, "w", "5,6", -1, 1), *b = gc_param(c, "b", "5", -1, 1);
    Value *z = gc_op(c, "Gemm", 3, (Value *[]){f, w, b}, "transB=1");
    Value *l = gc_loss_op(c, "CrossEntropyLoss", z, gc_ints(c, "4", y4), 0.1);
    gc_check(c, 1, &l);
    static const char *const ops[] = {"MSELoss", "L1Loss", "BCEWithLogitsLoss"};
    for (int k = 0; k < 3; k++) {
        c = gc_case(s, ops[k], "[3,4]");
        Value *x = gc_param(c, "x", "3,4", -3, 3);
        Value *t = k == 1 ? gc_data(c, "t", "3,4", 0, 0) : gc_data(c, "t", "3,4", k == 2 ? 0 : -1, 1);
        if (k == 1)
            gc_avoid(c, x, 0, 0.2); /* |x - t| has a kink at x = t = 0 */
        l = gc_loss_op(c, ops[k], x, t, 0);
        gc_check(c, 1, &l);
    }
    CHECK_EQ_INT(gc_run(s), 0);
}

/* Emit graph g as C, compile it (-Werror) and load it; NULL (and a failed check) on error. */
static void *compile_graph(Graph *g, const char *dir, const char *prefix)
{
    char c_path[PATH_MAX], o_path[PATH_MAX], so_path[PATH_MAX];
    snprintf(c_path, sizeof c_path, "%s/%s.c", dir, prefix);
    snprintf(o_path, sizeof o_path, "%s/%s.o", dir, prefix);
    snprintf(so_path, sizeof so_path, "%s/%s.so", dir, prefix);
    FILE *fp = fopen(c_path, "w");
    CodegenOptions co = {.prefix = prefix, .model_path = prefix};
    diag_init(&d, NULL);
    Status st = fp ? codegen_emit(g, &co, fp, NULL, &d) : ST_IO;
    if (fp)
        fclose(fp);
    const char *src[1] = {c_path}, *obj[1] = {o_path};
    CcJob cc = {.mode = CC_OBJECT, .inputs = src, .ninputs = 1, .output = o_path, .werror = true};
    CcJob ld = {.mode = CC_SHARED, .inputs = obj, .ninputs = 1, .output = so_path};
    if (!st)
        st = codegen_cc(&cc, &d);
    if (!st)
        st = codegen_cc(&ld, &d);
    void *h = st ? NULL : dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(h != NULL, "%s: %s", prefix, st ? d.msg : dlerror());
    if (!getenv("TRAIN_TEST_KEEP")) {
        unlink(c_path);
        unlink(o_path);
        unlink(so_path);
    }
    return h;
}

/* pass_optim's nodes through codegen: W [3,4] and its gradient G are runtime inputs, the state values
 * are made runtime inputs too (as the training program's mutable state arena would hold them), and
 * three steps of the generated program must equal the kernels called directly, bit for bit, with the
 * hyperparameters the pass was given. */
static void test_emit_updates(void)
{
    char dir[] = "/tmp/onnxtune-train-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    for (int kind = 0; kind < 3; kind++) {
        Model *m = model_new();
        Graph *g = m ? graph_new(m->arena, "upd", NULL) : NULL;
        if (!g)
            break;
        m->graph = g;
        diag_init(&d, NULL);
        int64_t dims[2] = {3, 4};
        Value *w = graph_add_value(g, "W", &d), *gr = graph_add_value(g, "G", &d);
        w->dtype = gr->dtype = DT_FLOAT;
        w->shape = gr->shape = shape_make(2, dims);
        graph_add_input(g, w);
        graph_add_input(g, gr);
        Gradients grads = {1, &w, &gr};
        OptimOptions o;
        optim_defaults((OptimKind)kind, &o);
        if (kind == 0) {
            o.momentum = 0.8;
            o.dampening = 0.1;
        } else {
            o.beta1 = 0.85;
            o.beta2 = 0.995;
            o.eps = 1e-6;
        }
        o.weight_decay = 0.03;
        o.grad_clip = 2.5;
        Status st = pass_optim(g, &grads, &o, &d);
        CHECK_MSG(st == ST_OK, "pass_optim: %s", d.msg);
        if (st) {
            model_free(m);
            continue;
        }
        for (size_t i = 0; i < g->nvalues; i++)
            if (g->values[i]->is_state) {
                g->values[i]->init = NULL;
                graph_add_input(g, g->values[i]);
            }
        char prefix[32];
        snprintf(prefix, sizeof prefix, "upd%d", kind);
        void *h = compile_graph(g, dir, prefix);
        char sym[64];
        snprintf(sym, sizeof sym, "%s_info", prefix);
        const CgModelInfo *info = h ? dlsym(h, sym) : NULL;
        CHECK_MSG(!h || info, "no %s", sym);
        if (info) {
            CHECK_EQ_INT(info->ninputs, kind == 0 ? 5 : 6);
            CHECK_EQ_INT(info->noutputs, 1);
            float pw[12], pg[12], s1[12] = {0}, s2[12] = {0}, norm;
            float rw[12], rs1[12] = {0}, rs2[12] = {0}, scale, rnorm;
            double lr;
            int64_t step;
            for (int i = 0; i < 12; i++)
                rw[i] = pw[i] = (float)rnd(-1, 1);
            void *ins[6] = {pw, pg, &lr, &step, s1, s2};
            void *outs[1] = {&norm};
            size_t wsb = (info->workspace_bytes + 63) / 64 * 64;
            void *ws = wsb ? aligned_alloc(64, wsb) : NULL;
            for (step = 1; step <= 3; step++) {
                lr = 0.1 / (double)step;
                for (int i = 0; i < 12; i++)
                    pg[i] = (float)rnd(-2, 2) * (step == 2 ? 0.1f : 1.0f); /* step 2 is not clipped */
                info->run(ins, outs, ws);
                const float *gs[1] = {pg};
                size_t n12 = 12;
                clip_grad_norm(&scale, &rnorm, gs, &n12, 1, 2.5);
                if (kind == 0)
                    sgd_update(rw, pg, rs1, 12, lr, step, 0.8, 0.1, false, 0.03, &scale);
                else
                    adam_update(rw, pg, rs1, rs2, 12, lr, step, 0.85, 0.995, 1e-6, 0.03, kind == 2, &scale);
                CHECK_MSG(norm == rnorm, "kind %d step %d: grad_norm %.9g vs %.9g", kind, (int)step, norm, rnorm);
                CHECK_MSG(memcmp(pw, rw, sizeof pw) == 0, "kind %d step %d: parameter differs from the kernel's", kind,
                          (int)step);
                CHECK_MSG(memcmp(s1, rs1, sizeof s1) == 0 && memcmp(s2, rs2, sizeof s2) == 0,
                          "kind %d step %d: state differs", kind, (int)step);
            }
            CHECK(scale < 1 && rnorm > 2.5); /* the last step was clipped */
            free(ws);
        }
        if (h)
            dlclose(h);
        model_free(m);
    }
    rmdir(dir);
}

int main(void)
{
    test_freeze();
    test_head();
    test_loss_kernels();
    test_optim_kernels();
    test_loss_pass();
    test_model_loss_pass();
    test_chain_param();
    test_chain_cnn();
    test_fixtures();
    test_emit_losses();
    test_emit_updates();
    return test_summary("test_train_passes");
}
