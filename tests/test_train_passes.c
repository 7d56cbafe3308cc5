/* test_train_passes.c - the fine-tuning passes (freeze, head, loss, optimizer) on models/cnn and
 * models/mlp; the loss and optimizer kernels against double-precision references, finite differences
 * and torch.optim's formulas; and, when tests/ref/train/ exists, PyTorch's reference runs of the MLP
 * replayed with these kernels (the MLP's own forward/backward written out here). */
#include "importer.h"
#include "ir.h"
#include "runtime.h"
#include "test.h"

#include <stdint.h>

static Diag d;

static Model *load(const char *path, int64_t batch)
{
    Model *m = NULL;
    diag_init(&d, path);
    ShapeOptions so = {.batch = batch, .fold = true};
    if (onnx_import_file(path, &m, &d) || pass_canon(m, &d) || pass_shapes(m, &so, &d)) {
        fprintf(stderr, "loading %s: %s\n", path, d.msg);
        model_free(m);
        return NULL;
    }
    return m;
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

int main(void)
{
    test_freeze();
    test_head();
    return test_summary("test_train_passes");
}
