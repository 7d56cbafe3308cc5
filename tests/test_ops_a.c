/* test_ops_a.c - unit tests of the elementwise, reduce, norm and matmul op rules on tiny hand-built
 * graphs: inferred shapes (broadcasting, unknown and symbolic dims), error messages on bad shapes,
 * canonicalisation of old opset forms, and folding (exact int64 shape arithmetic).
 * The ONNX conformance models are checked by test_shapes_onnx.c, not here. */
#include "ir.h"
#include "test.h"

static Model *m;
static Graph *g;
static Diag d;
static int counter;

static void fresh(void)
{
    model_free(m);
    m = model_new();
    g = m->graph = graph_new(m->arena, "test", NULL);
    diag_init(&d, NULL);
    static OpsetImport op = {"", 17};
    m->opsets = &op;
    m->nopsets = 1;
}

/* A graph input; dims < 0 are unknown, and `syms` (may be NULL) names them. */
static Value *input(DType t, int rank, const int64_t *dims, const char *const *syms)
{
    char name[32];
    snprintf(name, sizeof name, "in%d", counter++);
    Value *v = graph_add_value(g, name, &d);
    v->dtype = t;
    v->shape = rank < 0 ? shape_unknown() : shape_make(rank, dims);
    for (int i = 0; syms && i < rank; i++)
        v->shape.sym[i] = syms[i];
    graph_add_input(g, v);
    return v;
}

static Value *cints(const int64_t *vals, size_t n)
{
    return graph_const_ints(g, "c", vals, n, &d);
}

static Value *cscalar(DType t, double x)
{
    return graph_const_scalar(g, "s", t, x, &d);
}

/* Constant tensor of given dtype/shape with values vals[i] (as doubles). */
static Value *ctensor(DType t, int rank, const int64_t *dims, const double *vals)
{
    Shape s = shape_make(rank, dims);
    Value *v = graph_const(g, "t", t, &s, &d);
    for (size_t i = 0; i < v->init->numel; i++)
        tensor_set_f64(v->init, i, vals[i]);
    return v;
}

static Node *node(const char *op, int nin, Value *const *in, int nout)
{
    Value *out[8];
    for (int i = 0; i < nout; i++) {
        char name[32];
        snprintf(name, sizeof name, "out%d", counter++);
        out[i] = graph_add_value(g, name, &d);
    }
    Node *n = graph_add_node(g, op, "", NULL, nin, in, nout, out, &d);
    n->opset = n->rule ? n->rule->canon_opset : 17;
    return n;
}

static void attr_int(Node *n, const char *name, int64_t v)
{
    Attr a = {.name = name, .type = AT_INT, .i = v};
    node_add_attr(g, n, &a);
}

static void attr_float(Node *n, const char *name, float v)
{
    Attr a = {.name = name, .type = AT_FLOAT, .f = v};
    node_add_attr(g, n, &a);
}

static void attr_ints(Node *n, const char *name, const int64_t *v, size_t k)
{
    Attr a = {.name = name, .type = AT_INTS, .ints = (int64_t *)v, .n = k};
    node_add_attr(g, n, &a);
}

static void attr_string(Node *n, const char *name, const char *s)
{
    Attr a = {.name = name, .type = AT_STRING, .s = s, .slen = strlen(s)};
    node_add_attr(g, n, &a);
}

/* Infer one node; returns the status and leaves the message in d. */
static Status infer(Node *n)
{
    diag_init(&d, NULL);
    return infer_node(g, n, &d);
}

static const char *shp(const Value *v)
{
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    return shape_str(&v->shape, buf[k], sizeof buf[k]);
}

#define CHECK_SHAPE(v, str) CHECK_STR(shp(v), str)
#define CHECK_ERR(n, st, substr) do { Status _s = infer(n); CHECK_EQ_INT(_s, st); \
    CHECK_MSG(strstr(d.msg, substr) != NULL, "message '%s' lacks '%s'", d.msg, substr); } while (0)

/* Run canon then shapes with folding over the whole model. */
static Status run_passes(void)
{
    diag_init(&d, NULL);
    Status st = pass_canon(m, &d);
    if (st)
        return st;
    ShapeOptions opt = {.fold = true};
    return pass_shapes(m, &opt, &d);
}

/* Find the first live node with op type `op`. */
static Node *find_op(const char *op)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead && strcmp(g->nodes[i]->op_type, op) == 0)
            return g->nodes[i];
    return NULL;
}

/* ======================================================================== elementwise */

static void test_unary(void)
{
    fresh();
    int64_t dims[] = {-1, 3, 5};
    const char *syms[] = {"N", NULL, NULL};
    Value *x = input(DT_FLOAT, 3, dims, syms);
    Node *n = node("Relu", 1, &x, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3,5]");
    CHECK_EQ_INT(n->outputs[0]->dtype, DT_FLOAT);
    n = node("IsNaN", 1, &x, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_EQ_INT(n->outputs[0]->dtype, DT_BOOL);
    Value *xi = input(DT_INT64, 1, (int64_t[]){4}, NULL);
    n = node("Sqrt", 1, &xi, 1);
    CHECK_ERR(n, ST_SHAPE, "needs a float type");
    n = node("Relu", 0, NULL, 1);
    CHECK_ERR(n, ST_INVALID, "expects 1 input, got 0");
    Value *two[2] = {x, x};
    n = node("Exp", 2, two, 1);
    CHECK_ERR(n, ST_INVALID, "expects 1 input, got 2");
}

static void test_unary_fold(void)
{
    fresh();
    Value *c = ctensor(DT_FLOAT, 1, (int64_t[]){5}, (double[]){-2, -0.5, 0, 0.5, 2.5});
    Node *relu = node("LeakyRelu", 1, &c, 1);
    attr_float(relu, "alpha", 0.5f);
    Node *round = node("Round", 1, &c, 1);
    Value *ci = ctensor(DT_INT64, 1, (int64_t[]){3}, (double[]){-7, 0, 7});
    Node *neg = node("Neg", 1, &ci, 1);
    Node *abs = node("Abs", 1, &ci, 1);
    Node *sign = node("Sign", 1, &ci, 1);
    for (int i = 0; i < 5; i++)
        graph_add_output(g, g->nodes[i]->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    const Tensor *t = relu->outputs[0]->init;
    CHECK(t != NULL);
    if (t) {
        CHECK_NEAR(tensor_get_f64(t, 0), -1.0, 0);
        CHECK_NEAR(tensor_get_f64(t, 4), 2.5, 0);
    }
    t = round->outputs[0]->init; /* halves round to even */
    if (t) {
        CHECK_NEAR(tensor_get_f64(t, 1), 0.0, 0);
        CHECK_NEAR(tensor_get_f64(t, 3), 0.0, 0);
        CHECK_NEAR(tensor_get_f64(t, 4), 2.0, 0);
    }
    CHECK(neg->outputs[0]->init && tensor_get_i64(neg->outputs[0]->init, 0) == 7);
    CHECK(abs->outputs[0]->init && tensor_get_i64(abs->outputs[0]->init, 0) == 7);
    CHECK(sign->outputs[0]->init && tensor_get_i64(sign->outputs[0]->init, 0) == -1);
}

static void test_broadcast(void)
{
    fresh();
    Value *a = input(DT_FLOAT, 4, (int64_t[]){-1, 3, 1, 5}, (const char *[]){"N", 0, 0, 0});
    Value *b = input(DT_FLOAT, 2, (int64_t[]){4, 1}, NULL);
    Value *in[2] = {a, b};
    Node *n = node("Add", 2, in, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3,4,5]");
    /* unknown vs unknown: same sym is kept, different syms give an unnamed unknown */
    Value *p = input(DT_FLOAT, 2, (int64_t[]){-1, -1}, (const char *[]){"N", "T"});
    Value *q = input(DT_FLOAT, 2, (int64_t[]){-1, -1}, (const char *[]){"N", "S"});
    Value *pq[2] = {p, q};
    n = node("Mul", 2, pq, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,?]");
    /* unknown vs a known size other than 1 gives that size */
    Value *r = input(DT_FLOAT, 1, (int64_t[]){7}, NULL);
    Value *pr[2] = {p, r};
    n = node("Sub", 2, pr, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,7]");
    /* unknown rank stays unknown */
    Value *u = input(DT_FLOAT, -1, NULL, NULL);
    Value *au[2] = {a, u};
    n = node("Div", 2, au, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_EQ_INT(n->outputs[0]->shape.rank, -1);
    /* incompatible: the message names both inputs and shapes */
    Value *c = input(DT_FLOAT, 2, (int64_t[]){3, 4}, NULL);
    Value *e = input(DT_FLOAT, 1, (int64_t[]){5}, NULL);
    Value *ce[2] = {c, e};
    n = node("Add", 2, ce, 1);
    CHECK_ERR(n, ST_SHAPE, "input 0 shape [3,4] and input 1 shape [5] cannot be broadcast");
    /* dtype mismatch */
    Value *i64 = input(DT_INT64, 1, (int64_t[]){5}, NULL);
    Value *ci[2] = {e, i64};
    n = node("Add", 2, ci, 1);
    CHECK_ERR(n, ST_SHAPE, "they must match");
    /* comparisons give bool; variadic Max of three */
    Value *ab[2] = {a, b};
    n = node("Less", 2, ab, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_EQ_INT(n->outputs[0]->dtype, DT_BOOL);
    Value *three[3] = {a, b, r};
    n = node("Max", 3, three, 1);
    CHECK_ERR(n, ST_SHAPE, "cannot be broadcast");
    Value *three_ok[3] = {b, r, b};
    n = node("Max", 3, three_ok, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[4,7]");
    /* Where broadcasts all three; PRelu's slope must broadcast to X */
    Value *cond = input(DT_BOOL, 3, (int64_t[]){2, 1, 1}, NULL);
    Value *w[3] = {cond, b, r};
    n = node("Where", 3, w, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[2,4,7]");
    Value *px[2] = {b, r};
    n = node("PRelu", 2, px, 1);
    CHECK_ERR(n, ST_SHAPE, "does not broadcast to input 0");
}

static void test_int_fold(void)
{
    fresh();
    /* shape arithmetic the way exporters write it: (dims * 2 - 1) / 2, Mod with both signs */
    Value *dims = cints((int64_t[]){3, -7, 9007199254740993LL}, 3);
    Value *two = cints((int64_t[]){2}, 1);
    Value *in[2] = {dims, two};
    Node *mul = node("Mul", 2, in, 1);
    Value *one = cints((int64_t[]){1}, 1);
    Value *in2[2] = {mul->outputs[0], one};
    Node *sub = node("Sub", 2, in2, 1);
    Value *in3[2] = {sub->outputs[0], two};
    Node *div = node("Div", 2, in3, 1);
    Value *m3 = cints((int64_t[]){-3}, 1);
    Value *in4[2] = {cints((int64_t[]){7, -7}, 2), m3};
    Node *mod = node("Mod", 2, in4, 1);
    Node *fmod = node("Mod", 2, in4, 1);
    attr_int(fmod, "fmod", 1);
    Node *eq = node("Equal", 2, in, 1);
    Node *lt = node("Less", 2, in, 1);
    Value *w[3] = {lt->outputs[0], dims, two};
    Node *where = node("Where", 3, w, 1);
    Node *cast = node("Cast", 1, &dims, 1);
    attr_int(cast, "to", DT_FLOAT);
    Node *nt = node("Not", 1, &lt->outputs[0], 1);
    Node *outs[] = {div, mod, fmod, eq, where, cast, nt};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        graph_add_output(g, outs[i]->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    const Tensor *t = div->outputs[0]->init;
    CHECK(t && t->dtype == DT_INT64 && t->numel == 3);
    if (t) {
        CHECK_EQ_INT(tensor_get_i64(t, 0), 2);           /* (6-1)/2 */
        CHECK_EQ_INT(tensor_get_i64(t, 1), -7);          /* (-14-1)/2 truncates toward zero */
        CHECK_EQ_INT(tensor_get_i64(t, 2), 9007199254740992LL); /* exact beyond 2^53 */
    }
    t = mod->outputs[0]->init; /* fmod=0: sign of the divisor */
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(tensor_get_i64(t, 0), -2);
        CHECK_EQ_INT(tensor_get_i64(t, 1), -1);
    }
    t = fmod->outputs[0]->init; /* fmod=1: sign of the dividend */
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(tensor_get_i64(t, 0), 1);
        CHECK_EQ_INT(tensor_get_i64(t, 1), -1);
    }
    t = eq->outputs[0]->init;
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->dtype, DT_BOOL);
        CHECK_EQ_INT(tensor_get_i64(t, 0), 0);
    }
    t = where->outputs[0]->init; /* dims < 2 ? dims : 2 */
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(tensor_get_i64(t, 0), 2);
        CHECK_EQ_INT(tensor_get_i64(t, 1), -7);
        CHECK_EQ_INT(tensor_get_i64(t, 2), 2);
    }
    t = cast->outputs[0]->init;
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->dtype, DT_FLOAT);
        CHECK_NEAR(tensor_get_f64(t, 1), -7.0, 0);
    }
    t = nt->outputs[0]->init;
    CHECK(t != NULL);
    if (t)
        CHECK_EQ_INT(tensor_get_i64(t, 1), 0);
    /* only constants remain */
    CHECK_EQ_INT(g->nnodes, 0);

    fresh();
    Value *a = cints((int64_t[]){5}, 1), *z = cints((int64_t[]){0}, 1);
    Value *az[2] = {a, z};
    Node *dz = node("Div", 2, az, 1);
    graph_add_output(g, dz->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_INVALID);
    CHECK_MSG(strstr(d.msg, "division by zero") != NULL, "%s", d.msg);
}

static void test_elementwise_canon(void)
{
    /* Add-6 broadcast=1 axis=1: B [3] against A [2,3,4,5] becomes B [3,1,1] */
    fresh();
    Value *a = input(DT_FLOAT, 4, (int64_t[]){2, 3, 4, 5}, NULL);
    Value *b = input(DT_FLOAT, 1, (int64_t[]){3}, NULL);
    Value *ab[2] = {a, b};
    Node *add = node("Add", 2, ab, 1);
    add->opset = 6;
    attr_int(add, "broadcast", 1);
    attr_int(add, "axis", 1);
    graph_add_output(g, add->outputs[0]);
    /* shape inference needs the shape family's Unsqueeze; without it the walk stops there */
    CHECK_EQ_INT(run_passes(), op_lookup("", "Unsqueeze") ? ST_OK : ST_UNSUPPORTED);
    CHECK(node_attr(add, "broadcast") == NULL && node_attr(add, "axis") == NULL);
    Node *unsq = find_op("Unsqueeze");
    CHECK(unsq != NULL && add->inputs[1] == unsq->outputs[0] && unsq->inputs[0] == b);
    if (unsq) {
        const Tensor *axes = unsq->inputs[1]->init;
        CHECK(axes && axes->numel == 2 && tensor_get_i64(axes, 0) == 1 && tensor_get_i64(axes, 1) == 2);
    }
    if (op_lookup("", "Unsqueeze"))
        CHECK_SHAPE(add->outputs[0], "[2,3,4,5]");

    /* PRelu-6: a [C] slope applies per channel, so it becomes [C,1,1] */
    fresh();
    Value *px = input(DT_FLOAT, 4, (int64_t[]){2, 3, 4, 4}, NULL);
    Value *slope = input(DT_FLOAT, 1, (int64_t[]){3}, NULL);
    Value *pin[2] = {px, slope};
    Node *prelu = node("PRelu", 2, pin, 1);
    prelu->opset = 6;
    graph_add_output(g, prelu->outputs[0]);
    CHECK_EQ_INT(run_passes(), op_lookup("", "Unsqueeze") ? ST_OK : ST_UNSUPPORTED);
    unsq = find_op("Unsqueeze");
    CHECK(unsq != NULL && prelu->inputs[1] == unsq->outputs[0] && unsq->inputs[0] == slope);
    if (op_lookup("", "Unsqueeze")) {
        CHECK_SHAPE(prelu->inputs[1], "[3,1,1]");
        CHECK_SHAPE(prelu->outputs[0], "[2,3,4,4]");
    }

    /* Clip-6 min/max attributes become inputs 1 and 2 */
    fresh();
    Value *x = input(DT_FLOAT, 2, (int64_t[]){2, 2}, NULL);
    Node *clip = node("Clip", 1, &x, 1);
    clip->opset = 6;
    attr_float(clip, "min", -1.5f);
    attr_float(clip, "max", 2.0f);
    graph_add_output(g, clip->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK_EQ_INT(clip->ninputs, 3);
    CHECK(node_attr(clip, "min") == NULL);
    if (clip->ninputs == 3) {
        CHECK(value_is_const(clip->inputs[1]) && tensor_get_f64(clip->inputs[1]->init, 0) == -1.5);
        CHECK(value_is_const(clip->inputs[2]) && tensor_get_f64(clip->inputs[2]->init, 0) == 2.0);
        CHECK_EQ_INT(clip->inputs[1]->dtype, DT_FLOAT);
    }
    CHECK_EQ_INT(clip->opset, 13);

    /* Clip-13 folds with min > max: everything becomes max */
    fresh();
    Value *c = ctensor(DT_INT64, 1, (int64_t[]){3}, (double[]){-5, 1, 9});
    Value *cin[3] = {c, cints((int64_t[]){0}, 1), cints((int64_t[]){4}, 1)};
    cin[1]->shape = shape_scalar(), cin[1]->init->shape = shape_scalar();
    cin[2]->shape = shape_scalar(), cin[2]->init->shape = shape_scalar();
    Node *cl = node("Clip", 3, cin, 1);
    graph_add_output(g, cl->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    const Tensor *t = cl->outputs[0]->init;
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(tensor_get_i64(t, 0), 0);
        CHECK_EQ_INT(tensor_get_i64(t, 2), 4);
    }

    /* Cast-1 names its type by string */
    fresh();
    Value *xi = input(DT_INT32, 1, (int64_t[]){4}, NULL);
    Node *cast = node("Cast", 1, &xi, 1);
    cast->opset = 1;
    attr_string(cast, "to", "DOUBLE");
    graph_add_output(g, cast->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK_EQ_INT(cast->outputs[0]->dtype, DT_DOUBLE);
    CHECK_EQ_INT(node_attr_int(cast, "to", 0), DT_DOUBLE);

    /* Relu-1 consumed_inputs is dropped */
    fresh();
    Value *y = input(DT_FLOAT, 1, (int64_t[]){4}, NULL);
    Node *relu = node("Relu", 1, &y, 1);
    relu->opset = 1;
    attr_ints(relu, "consumed_inputs", (int64_t[]){0}, 1);
    graph_add_output(g, relu->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK(node_attr(relu, "consumed_inputs") == NULL);
}


/* ======================================================================== reduce */

static void test_reduce(void)
{
    fresh();
    Value *x = input(DT_FLOAT, 3, (int64_t[]){-1, 4, 5}, (const char *[]){"N", 0, 0});
    Value *in[2] = {x, cints((int64_t[]){-2}, 1)};
    Node *n = node("ReduceSum", 2, in, 1);
    attr_int(n, "keepdims", 0);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,5]");
    n = node("ReduceMax", 2, in, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,1,5]");
    /* no axes: all dims, or none with noop_with_empty_axes */
    n = node("ReduceMean", 1, &x, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[1,1,1]");
    n = node("ReduceMean", 1, &x, 1);
    attr_int(n, "noop_with_empty_axes", 1);
    attr_int(n, "keepdims", 0);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,4,5]");
    /* axes out of range and repeated */
    Value *bad[2] = {x, cints((int64_t[]){3}, 1)};
    n = node("ReduceL2", 2, bad, 1);
    CHECK_ERR(n, ST_SHAPE, "axes[0] 3 is out of range for rank 3");
    Value *rep[2] = {x, cints((int64_t[]){1, -2}, 2)};
    n = node("ReduceL1", 2, rep, 1);
    CHECK_ERR(n, ST_SHAPE, "appears twice");
    /* axes known only at run time: rank kept with keepdims, dims unknown */
    Value *dyn[2] = {x, input(DT_INT64, 1, (int64_t[]){1}, NULL)};
    n = node("ReduceSumSquare", 2, dyn, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[?,?,?]");
    n = node("ReduceSumSquare", 2, dyn, 1);
    attr_int(n, "keepdims", 0);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[?,?]");
    /* ArgMax */
    n = node("ArgMax", 1, &x, 1);
    attr_int(n, "axis", -1);
    attr_int(n, "keepdims", 0);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,4]");
    CHECK_EQ_INT(n->outputs[0]->dtype, DT_INT64);
    n = node("ArgMin", 1, &x, 1);
    attr_int(n, "axis", 3);
    CHECK_ERR(n, ST_SHAPE, "axis 3 is out of range");
    n = node("Softmax", 1, &x, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,4,5]");
    Value *xi = input(DT_INT32, 1, (int64_t[]){4}, NULL);
    n = node("LogSoftmax", 1, &xi, 1);
    CHECK_ERR(n, ST_SHAPE, "not a float type");
}

static void test_reduce_canon_fold(void)
{
    /* ReduceMean-11 axes attribute becomes input 1; ReduceSum-11 too (ReduceSum moved at 13) */
    fresh();
    Value *x = input(DT_FLOAT, 4, (int64_t[]){2, 3, 4, 5}, NULL);
    Node *mean = node("ReduceMean", 1, &x, 1);
    mean->opset = 11;
    attr_ints(mean, "axes", (int64_t[]){2, 3}, 2);
    Node *sum = node("ReduceSum", 1, &x, 1);
    sum->opset = 11;
    attr_ints(sum, "axes", (int64_t[]){1}, 1);
    attr_int(sum, "keepdims", 0);
    graph_add_output(g, mean->outputs[0]);
    graph_add_output(g, sum->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK(node_attr(mean, "axes") == NULL && mean->ninputs == 2);
    if (mean->ninputs == 2) {
        const Tensor *t = mean->inputs[1]->init;
        CHECK(t && t->dtype == DT_INT64 && t->numel == 2 && tensor_get_i64(t, 1) == 3);
    }
    CHECK_SHAPE(mean->outputs[0], "[2,3,1,1]");
    CHECK_SHAPE(sum->outputs[0], "[2,4,5]");
    CHECK_EQ_INT(mean->opset, 18);
    CHECK_EQ_INT(sum->opset, 13);

    /* folding: ReduceProd of a shape is its element count (int64, exact); ReduceSum over one axis */
    fresh();
    Value *shape = cints((int64_t[]){3037000499LL, 3037000499LL}, 2);
    Node *prod = node("ReduceProd", 1, &shape, 1);
    attr_int(prod, "keepdims", 0);
    Value *m = ctensor(DT_FLOAT, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    Value *rs[2] = {m, cints((int64_t[]){0}, 1)};
    Node *rsum = node("ReduceSum", 2, rs, 1);
    Node *lse = node("ReduceLogSumExp", 1, &m, 1);
    Node *am = node("ArgMax", 1, &m, 1);
    attr_int(am, "axis", 1);
    graph_add_output(g, prod->outputs[0]);
    graph_add_output(g, rsum->outputs[0]);
    graph_add_output(g, lse->outputs[0]);
    graph_add_output(g, am->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    const Tensor *t = prod->outputs[0]->init;
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->shape.rank, 0);
        CHECK_EQ_INT(tensor_get_i64(t, 0), 9223372030926249001LL);
    }
    t = rsum->outputs[0]->init;
    CHECK(t != NULL);
    if (t) {
        CHECK_SHAPE(rsum->outputs[0], "[1,3]");
        CHECK_NEAR(tensor_get_f64(t, 0), 5, 0);
        CHECK_NEAR(tensor_get_f64(t, 2), 9, 0);
    }
    t = lse->outputs[0]->init;
    CHECK(t != NULL);
    if (t)
        CHECK_NEAR(tensor_get_f64(t, 0), log(exp(1) + exp(2) + exp(3) + exp(4) + exp(5) + exp(6)), 1e-5);
    t = am->outputs[0]->init;
    CHECK(t != NULL);
    if (t) {
        CHECK_SHAPE(am->outputs[0], "[2,1]");
        CHECK_EQ_INT(tensor_get_i64(t, 0), 2);
    }
}

static void test_softmax_canon(void)
{
    /* Softmax-11 on rank 4 with axis=1: coerced to 2-D, so Flatten(1) -> Softmax(-1) -> Reshape(Shape(x)) */
    fresh();
    Value *x = input(DT_FLOAT, 4, (int64_t[]){2, 3, 4, 5}, NULL);
    Node *sm = node("Softmax", 1, &x, 1);
    sm->opset = 11;
    attr_int(sm, "axis", 1);
    Value *y = sm->outputs[0];
    graph_add_output(g, y);
    Status st = run_passes();
    bool have_shape_ops = op_lookup("", "Flatten") && op_lookup("", "Reshape") && op_lookup("", "Shape");
    CHECK_EQ_INT(st, have_shape_ops ? ST_OK : ST_UNSUPPORTED);
    Node *flat = find_op("Flatten"), *re = y->producer;
    CHECK(flat && flat->inputs[0] == x && node_attr_int(flat, "axis", 0) == 1);
    CHECK(sm->inputs[0] == (flat ? flat->outputs[0] : NULL));
    CHECK_EQ_INT(node_attr_int(sm, "axis", 0), -1);
    CHECK(re && strcmp(re->op_type, "Reshape") == 0 && re->inputs[0] == sm->outputs[0]);
    if (have_shape_ops) {
        CHECK_SHAPE(sm->outputs[0], "[2,60]");
        CHECK_SHAPE(y, "[2,3,4,5]");
        CHECK(re && value_is_const(re->inputs[1])); /* Shape(x) folded */
    }
    /* axis = rank-1 needs no rewrite */
    fresh();
    x = input(DT_FLOAT, 3, (int64_t[]){2, 3, 4}, NULL);
    Node *ls = node("LogSoftmax", 1, &x, 1);
    ls->opset = 1;
    attr_int(ls, "axis", 2);
    graph_add_output(g, ls->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK_EQ_INT(g->nnodes, 1);
    CHECK_EQ_INT(node_attr_int(ls, "axis", 0), -1);
    CHECK_SHAPE(ls->outputs[0], "[2,3,4]");
}

/* ======================================================================== norm */

static void test_norm(void)
{
    fresh();
    Value *x = input(DT_FLOAT, 4, (int64_t[]){-1, 3, 8, 8}, (const char *[]){"N", 0, 0, 0});
    Value *c3 = input(DT_FLOAT, 1, (int64_t[]){3}, NULL);
    Value *c4 = input(DT_FLOAT, 1, (int64_t[]){4}, NULL);
    Value *bn[5] = {x, c3, c3, c3, c3};
    Node *n = node("BatchNormalization", 5, bn, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3,8,8]");
    n = node("BatchNormalization", 5, bn, 3);
    attr_int(n, "training_mode", 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[2], "[3]");
    Value *bad[5] = {x, c3, c3, c4, c3};
    n = node("BatchNormalization", 5, bad, 1);
    CHECK_ERR(n, ST_SHAPE, "input 3 (input_mean) has shape [4] but must be [C]");
    n = node("BatchNormalization", 3, bn, 1);
    CHECK_ERR(n, ST_INVALID, "expects 5 inputs, got 3");
    Value *in3[3] = {x, c3, c3};
    n = node("InstanceNormalization", 3, in3, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3,8,8]");
    /* LayerNormalization-17: Mean/InvStdDev keep the leading dims */
    Value *s8 = input(DT_FLOAT, 1, (int64_t[]){8}, NULL);
    Value *ln[3] = {x, s8, s8};
    n = node("LayerNormalization", 3, ln, 3);
    attr_int(n, "axis", 2);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3,8,8]");
    CHECK_SHAPE(n->outputs[1], "[N,3,1,1]");
    CHECK_EQ_INT(n->outputs[2]->dtype, DT_FLOAT);
    Value *ln_bad[2] = {x, c3};
    n = node("LayerNormalization", 2, ln_bad, 1);
    CHECK_ERR(n, ST_SHAPE, "does not broadcast to the normalised dims [8]");
    n = node("LRN", 1, &x, 1);
    CHECK_ERR(n, ST_INVALID, "attribute size");
    n = node("Dropout", 1, &x, 2);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_EQ_INT(n->outputs[1]->dtype, DT_BOOL);
    CHECK_SHAPE(n->outputs[1], "[N,3,8,8]");
    n = node("MeanVarianceNormalization", 1, &x, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3,8,8]");
}

static void test_norm_canon(void)
{
    /* BatchNormalization-6: is_test/spatial/consumed_inputs go; the unused training outputs are dropped */
    fresh();
    Value *x = input(DT_FLOAT, 4, (int64_t[]){2, 3, 4, 4}, NULL);
    Value *c = input(DT_FLOAT, 1, (int64_t[]){3}, NULL);
    Value *bn[5] = {x, c, c, c, c};
    Node *n = node("BatchNormalization", 5, bn, 5);
    n->opset = 6;
    attr_int(n, "is_test", 1);
    attr_int(n, "spatial", 1);
    attr_ints(n, "consumed_inputs", (int64_t[]){0, 0, 0, 1, 1}, 5);
    graph_add_output(g, n->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK_EQ_INT(n->noutputs, 1);
    CHECK_EQ_INT(n->nattrs, 0);
    CHECK_EQ_INT(n->opset, 15);
    /* spatial=0 with per-activation scale is refused */
    fresh();
    x = input(DT_FLOAT, 4, (int64_t[]){2, 3, 4, 4}, NULL);
    Value *s = input(DT_FLOAT, 3, (int64_t[]){3, 4, 4}, NULL);
    Value *bn2[5] = {x, s, s, s, s};
    n = node("BatchNormalization", 5, bn2, 1);
    n->opset = 7;
    attr_int(n, "spatial", 0);
    graph_add_output(g, n->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_UNSUPPORTED);
    CHECK_MSG(strstr(d.msg, "spatial=0") != NULL, "%s", d.msg);
    /* Dropout-7 ratio attribute becomes input 1; Dropout-6 is_test=0 means training */
    fresh();
    x = input(DT_FLOAT, 2, (int64_t[]){2, 3}, NULL);
    Node *dr = node("Dropout", 1, &x, 1);
    dr->opset = 7;
    attr_float(dr, "ratio", 0.25f);
    Node *dr6 = node("Dropout", 1, &x, 2);
    dr6->opset = 6;
    attr_int(dr6, "is_test", 0);
    graph_add_output(g, dr->outputs[0]);
    graph_add_output(g, dr6->outputs[1]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK_EQ_INT(dr->ninputs, 2);
    CHECK(dr->ninputs == 2 && value_is_const(dr->inputs[1]) && tensor_get_f64(dr->inputs[1]->init, 0) == 0.25);
    CHECK_EQ_INT(dr6->ninputs, 3);
    CHECK(dr6->ninputs == 3 && dr6->inputs[1] == NULL && tensor_get_i64(dr6->inputs[2]->init, 0) == 1);
    CHECK_EQ_INT(dr6->outputs[1]->dtype, DT_BOOL);
}

/* ======================================================================== matmul */

static void test_matmul(void)
{
    fresh();
    Value *a = input(DT_FLOAT, 3, (int64_t[]){-1, 3, 4}, (const char *[]){"N", 0, 0});
    Value *b = input(DT_FLOAT, 2, (int64_t[]){4, 5}, NULL);
    Value *ab[2] = {a, b};
    Node *n = node("MatMul", 2, ab, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3,5]");
    Value *v4 = input(DT_FLOAT, 1, (int64_t[]){4}, NULL);
    Value *vv[2] = {v4, v4};
    n = node("MatMul", 2, vv, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[]");
    Value *av[2] = {a, v4};
    n = node("MatMul", 2, av, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,3]");
    Value *vb[2] = {v4, b};
    n = node("MatMul", 2, vb, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[5]");
    Value *c = input(DT_FLOAT, 4, (int64_t[]){2, 1, 5, 6}, NULL);
    Value *d4 = input(DT_FLOAT, 3, (int64_t[]){7, 6, 2}, NULL);
    Value *cd[2] = {c, d4};
    n = node("MatMul", 2, cd, 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[2,7,5,2]");
    Value *ba[2] = {b, a};
    n = node("MatMul", 2, ba, 1);
    CHECK_ERR(n, ST_SHAPE, "inner dims differ: input 0 [4,5] has K=5, input 1 [N,3,4] has K=3");
    /* Gemm */
    Value *m = input(DT_FLOAT, 2, (int64_t[]){4, 3}, NULL);
    Value *w = input(DT_FLOAT, 2, (int64_t[]){5, 4}, NULL);
    Value *bias = input(DT_FLOAT, 1, (int64_t[]){5}, NULL);
    Value *gin[3] = {m, w, bias};
    n = node("Gemm", 3, gin, 1);
    attr_int(n, "transA", 1);
    attr_int(n, "transB", 1);
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[3,5]");
    n = node("Gemm", 3, gin, 1);
    attr_int(n, "transA", 1);
    CHECK_ERR(n, ST_SHAPE, "inner dims differ");
    Value *gbad[3] = {m, b, v4};
    n = node("Gemm", 3, gbad, 1);
    attr_int(n, "transA", 1);
    CHECK_ERR(n, ST_SHAPE, "input 2 (C) shape [4] does not broadcast to the output [M,N] = [3,5]");
    n = node("Gemm", 2, ab, 1);
    CHECK_ERR(n, ST_SHAPE, "must be 2-D");
}

static void test_einsum_gemm_canon(void)
{
    fresh();
    Value *a = input(DT_FLOAT, 3, (int64_t[]){2, 3, 4}, NULL);
    Value *b = input(DT_FLOAT, 3, (int64_t[]){2, 4, 5}, NULL);
    Value *ab[2] = {a, b};
    Node *n = node("Einsum", 2, ab, 1);
    attr_string(n, "equation", "bij,bjk->bik");
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[2,3,5]");
    n = node("Einsum", 2, ab, 1);
    attr_string(n, "equation", "bij,bjk");
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[3,5]"); /* implicit: letters used once, sorted */
    Value *sq = input(DT_FLOAT, 4, (int64_t[]){-1, 6, 3, 3}, (const char *[]){"N", 0, 0, 0});
    n = node("Einsum", 1, &sq, 1);
    attr_string(n, "equation", "...ii->...i");
    CHECK_EQ_INT(infer(n), ST_OK);
    CHECK_SHAPE(n->outputs[0], "[N,6,3]");
    n = node("Einsum", 2, ab, 1);
    attr_string(n, "equation", "bij,bkj->bik");
    CHECK_ERR(n, ST_SHAPE, "letter 'j' is 5 in input 1 but 4 in an earlier input");
    n = node("Einsum", 2, ab, 1);
    attr_string(n, "equation", "bij->bi");
    CHECK_ERR(n, ST_INVALID, "fewer terms");
    /* Gemm-6 broadcast attribute is dropped */
    fresh();
    Value *x = input(DT_FLOAT, 2, (int64_t[]){2, 3}, NULL);
    Value *w = input(DT_FLOAT, 2, (int64_t[]){3, 4}, NULL);
    Value *c = input(DT_FLOAT, 1, (int64_t[]){4}, NULL);
    Value *in[3] = {x, w, c};
    Node *gm = node("Gemm", 3, in, 1);
    gm->opset = 6;
    attr_int(gm, "broadcast", 1);
    graph_add_output(g, gm->outputs[0]);
    CHECK_EQ_INT(run_passes(), ST_OK);
    CHECK(node_attr(gm, "broadcast") == NULL);
    CHECK_SHAPE(gm->outputs[0], "[2,4]");
}

/* ======================================================================== robustness */

/* Every rule of these families on odd inputs (missing, unknown rank, scalar, empty, rank 8, wrong
 * dtype, constants), canonicalised from opset 1 and inferred and folded: statuses may be anything
 * but ST_OK must leave typed outputs, and nothing may crash (run this under the sanitizer build). */
static void test_no_crash(void)
{
    static const char *fams[] = {"elementwise", "reduce", "norm", "matmul"};
    int rules = 0, ok = 0;
    const OpRule *r;
    for (size_t i = 0; (r = op_rule_at(i)); i++) {
        bool mine = false;
        for (size_t f = 0; f < 4; f++)
            mine = mine || strcmp(r->family, fams[f]) == 0;
        if (!mine)
            continue;
        rules++;
        for (int variant = 0; variant < 9; variant++)
            for (int nin = 0; nin <= 5; nin++) {
                fresh();
                Value *in[5];
                for (int k = 0; k < nin; k++) {
                    /* variants 7 and 8: every input the same float / int64 constant (folds) */
                    switch (variant == 7 ? 5 : variant == 8 ? 2 : (variant + k) % 7) {
                    case 0: in[k] = NULL; break;
                    case 1: in[k] = input(DT_FLOAT, -1, NULL, NULL); break;
                    case 2: in[k] = cints((int64_t[]){2}, 1); break;
                    case 3: in[k] = input(DT_FLOAT, 1, (int64_t[]){0}, NULL); break;
                    case 4: in[k] = input(DT_FLOAT, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}, NULL); break;
                    case 5: in[k] = ctensor(DT_FLOAT, 2, (int64_t[]){2, 2}, (double[]){1, -2, 3, 0}); break;
                    default: in[k] = cscalar(DT_BOOL, 1); break;
                    }
                }
                Node *n = node(r->name, nin, in, variant >= 7 ? 1 : 1 + variant % 3);
                if (variant < 3)
                    n->opset = 1;
                if (variant % 2 == 0)
                    goto run;
                attr_int(n, "axis", variant - 3);
                attr_ints(n, "axes", (int64_t[]){variant - 3, 0}, 1 + variant % 2);
                attr_int(n, "broadcast", 1);
                attr_float(n, "min", -1);
                attr_string(n, "equation", variant % 2 ? "ij,jk->ik" : "...i,i");
                attr_string(n, "direction", "LEFT");
                attr_int(n, "to", variant % 2 ? DT_INT64 : DT_STRING);
                attr_int(n, "size", 3);
            run:
                graph_add_output(g, n->outputs[0]);
                if (run_passes() == ST_OK) {
                    ok++;
                    for (int k = 0; k < n->noutputs && !n->dead; k++)
                        CHECK_MSG(n->outputs[k]->kind == VK_TENSOR, "%s output %d", r->name, k);
                }
            }
    }
    printf("robustness: %d rules, %d of %d odd graphs inferred\n", rules, ok, rules * 54);
    CHECK(rules >= 80);
    CHECK(ok > 0);
}

int main(void)
{
    test_unary();
    test_unary_fold();
    test_broadcast();
    test_int_fold();
    test_elementwise_canon();
    test_reduce();
    test_reduce_canon_fold();
    test_softmax_canon();
    test_norm();
    test_norm_canon();
    test_matmul();
    test_einsum_gemm_canon();
    test_no_crash();
    model_free(m);
    return test_summary("test_ops_a");
}
