/* test_ops_b.c - unit tests of the shape, conv, pool, rnn, control and loss op rules on tiny hand-built
 * graphs: inferred shapes (with unknown and symbolic dims), canonicalisation of old opset forms,
 * folding, and the errors bad shapes give. Shapes against ONNX's own data: test_shapes_onnx.c. */
#include "ir.h"
#include "test.h"
#include "ops_graph.h"

/* ======================================================================== shape family */

static void test_constant(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Node *c1 = NODE(g, "Constant", 13, IN(NULL), OUT("c1"));
    c1->ninputs = 0;
    ATTR_INTS(g, c1, "value_ints", 4, 5, 6);
    Node *c2 = NODE(g, "Constant", 13, IN(NULL), OUT("c2"));
    c2->ninputs = 0;
    attr_float(g, c2, "value_float", 2.5f);
    NODE(g, "Identity", 16, IN(val(m, "c2")), OUT("y"));
    graph_add_output(g, val(m, "y"));
    graph_add_output(g, val(m, "c1"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "c1"), "[3]");
    CHECK_EQ_INT(val(m, "c1")->dtype, DT_INT64);
    CHECK_EQ_INT(ival(m, "c1", 2), 6);
    CHECK_STR(shp(m, "c2"), "[]");
    CHECK(val(m, "c2")->init && tensor_get_f64(val(m, "c2")->init, 0) == 2.5);
    CHECK_EQ_INT(live_nodes(m, "Constant"), 0);
    model_free(m);

    m = new_model(); /* sparse_value (densified by the importer) and value_strings */
    g = m->graph;
    c1 = NODE(g, "Constant", 13, IN(NULL), OUT("sp"));
    c1->ninputs = 0;
    Attr a = {.name = "sparse_value", .type = AT_TENSOR};
    Shape s23 = shape_make(2, (int64_t[]){2, 3});
    a.t = tensor_new(g->arena, DT_DOUBLE, &s23);
    ((double *)a.t->data)[4] = 9;
    node_add_attr(g, c1, &a);
    c2 = NODE(g, "Constant", 13, IN(NULL), OUT("strs"));
    c2->ninputs = 0;
    Attr as = {.name = "value_strings", .type = AT_STRINGS, .n = 2, .strings = (const char *[]){"ab", "c"}};
    node_add_attr(g, c2, &as);
    graph_add_output(g, val(m, "sp"));
    graph_add_output(g, val(m, "strs"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "sp"), "[2,3]");
    CHECK_EQ_INT(val(m, "sp")->dtype, DT_DOUBLE);
    CHECK(val(m, "sp")->init && tensor_get_f64(val(m, "sp")->init, 4) == 9);
    CHECK_STR(shp(m, "strs"), "[2]");
    CHECK(val(m, "strs")->init && val(m, "strs")->init->str_len[0] == 2 &&
          strcmp(((const char **)val(m, "strs")->init->data)[1], "c") == 0);
    model_free(m);

    m = new_model(); /* two value attributes */
    c1 = NODE(m->graph, "Constant", 13, IN(NULL), OUT("c"));
    c1->ninputs = 0;
    attr_int(m->graph, c1, "value_int", 1);
    attr_float(m->graph, c1, "value_float", 1);
    CHECK_EQ_INT(run(m, 0), ST_INVALID);
    CHECK(msg_has("value_int") && msg_has("value_float"));
    model_free(m);
}

static void test_constant_of_shape(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Node *n = NODE(g, "ConstantOfShape", 9, IN(INTS(g, "s", 2, 3)), OUT("y"));
    Attr a = {.name = "value", .type = AT_TENSOR};
    Shape one = shape_make(1, (int64_t[]){1});
    a.t = tensor_new(g->arena, DT_INT32, &one);
    ((int32_t *)a.t->data)[0] = 7;
    node_add_attr(g, n, &a);
    Value *s2 = INPUT(g, "s2", DT_INT64, 3); /* a non-constant shape of 3 dims */
    NODE(g, "ConstantOfShape", 9, IN(s2), OUT("z"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "y"), "[2,3]");
    CHECK_EQ_INT(val(m, "y")->dtype, DT_INT32);
    CHECK_EQ_INT(ival(m, "y", 5), 7);
    CHECK_STR(shp(m, "z"), "[?,?,?]");
    CHECK_EQ_INT(val(m, "z")->dtype, DT_FLOAT);
    model_free(m);
}

static void test_shape_size(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 3, 224, 224);
    NODE(g, "Shape", 15, IN(x), OUT("all"));
    Node *n = NODE(g, "Shape", 15, IN(x), OUT("tail"));
    attr_int(g, n, "start", 1);
    n = NODE(g, "Shape", 15, IN(x), OUT("mid"));
    attr_int(g, n, "start", -3);
    attr_int(g, n, "end", -1);
    NODE(g, "Size", 13, IN(x), OUT("size"));
    for (const char *o = "all"; o; o = strcmp(o, "all") == 0 ? "tail" : strcmp(o, "tail") == 0 ? "mid" : NULL)
        graph_add_output(g, val(m, o));
    graph_add_output(g, val(m, "size"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "all"), "[4]");
    CHECK(!val(m, "all")->init); /* the batch is unknown */
    CHECK_STR(shp(m, "tail"), "[3]");
    CHECK_EQ_INT(ival(m, "tail", 0), 3);
    CHECK_EQ_INT(ival(m, "tail", 2), 224);
    CHECK_STR(shp(m, "mid"), "[2]");
    CHECK_EQ_INT(ival(m, "mid", 1), 224);
    CHECK(!val(m, "size")->init);
    model_free(m);

    m = new_model(); /* with the batch fixed everything is known */
    g = m->graph;
    x = INPUT(g, "x", DT_FLOAT, -2, 3, 224, 224);
    NODE(g, "Shape", 15, IN(x), OUT("all"));
    NODE(g, "Size", 13, IN(x), OUT("size"));
    graph_add_output(g, val(m, "all"));
    graph_add_output(g, val(m, "size"));
    CHECK_EQ_INT(run(m, 8), ST_OK);
    CHECK_EQ_INT(ival(m, "all", 0), 8);
    CHECK_EQ_INT(ival(m, "size", 0), 8 * 3 * 224 * 224);
    model_free(m);
}

static void test_reshape(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 3, 4);
    NODE(g, "Reshape", 14, IN(x, INTS(g, "s1", 0, -1)), OUT("a"));
    Value *y = INPUT(g, "y", DT_FLOAT, 2, 3, 4);
    NODE(g, "Reshape", 14, IN(y, INTS(g, "s2", 4, -1)), OUT("b"));
    NODE(g, "Reshape", 14, IN(y, INTS(g, "s3", -1)), OUT("c"));
    Value *e = INPUT(g, "e", DT_FLOAT, 0, 4);
    Node *n = NODE(g, "Reshape", 14, IN(e, INTS(g, "s4", 0, 2, 2)), OUT("d"));
    attr_int(g, n, "allowzero", 1);
    Node *r1 = NODE(g, "Reshape", 1, IN(y), OUT("f")); /* Reshape-1: shape attribute */
    ATTR_INTS(g, r1, "shape", 6, 4);
    Value *ss = INPUT(g, "ss", DT_INT64, 3);
    NODE(g, "Reshape", 14, IN(y, ss), OUT("h"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[N,12]");
    CHECK_STR(shp(m, "b"), "[4,6]");
    CHECK_STR(shp(m, "c"), "[24]");
    CHECK_STR(shp(m, "d"), "[0,2,2]");
    CHECK_STR(shp(m, "f"), "[6,4]");
    CHECK_EQ_INT(r1->ninputs, 2);
    CHECK(r1->ninputs == 2 && value_is_const(r1->inputs[1]) && !node_attr(r1, "shape"));
    CHECK_EQ_INT(r1->opset, 17);
    CHECK_STR(shp(m, "h"), "[?,?,?]");
    model_free(m);

    m = new_model();
    y = INPUT(m->graph, "y", DT_FLOAT, 2, 3, 4);
    NODE(m->graph, "Reshape", 14, IN(y, INTS(m->graph, "s", 5, 5)), OUT("b"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("[2,3,4]") && msg_has("[5,5]") && msg_has("24 elements vs 25"));
    model_free(m);

    m = new_model();
    y = INPUT(m->graph, "y", DT_FLOAT, 2, 3, 4);
    NODE(m->graph, "Reshape", 14, IN(y, INTS(m->graph, "s", 5, -1)), OUT("b"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("not a multiple of 5"));
    model_free(m);

    m = new_model();
    y = INPUT(m->graph, "y", DT_FLOAT, 2, 3, 4);
    NODE(m->graph, "Reshape", 14, IN(y, INTS(m->graph, "s", -1, -1)), OUT("b"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("more than one -1"));
    model_free(m);
}

static void test_flatten_transpose(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 2, 3, 4, 5);
    Node *n = NODE(g, "Flatten", 13, IN(x), OUT("a"));
    attr_int(g, n, "axis", 2);
    n = NODE(g, "Flatten", 13, IN(x), OUT("b"));
    attr_int(g, n, "axis", -1);
    Value *xn = INPUT(g, "xn", DT_FLOAT, -2, 3, 4);
    NODE(g, "Flatten", 13, IN(xn), OUT("c"));
    n = NODE(g, "Flatten", 13, IN(x), OUT("d"));
    attr_int(g, n, "axis", 0);
    n = NODE(g, "Transpose", 13, IN(xn), OUT("t"));
    ATTR_INTS(g, n, "perm", 2, 0, 1);
    NODE(g, "Transpose", 13, IN(xn), OUT("t2"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[6,20]");
    CHECK_STR(shp(m, "b"), "[24,5]");
    CHECK_STR(shp(m, "c"), "[N,12]");
    CHECK_STR(shp(m, "d"), "[1,120]");
    CHECK_STR(shp(m, "t"), "[4,N,3]");
    CHECK_STR(shp(m, "t2"), "[4,3,N]");
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 2, 3);
    n = NODE(m->graph, "Transpose", 13, IN(x), OUT("t"));
    ATTR_INTS(m->graph, n, "perm", 0, 0);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("not a permutation"));
    model_free(m);

    /* folding a transpose of a constant */
    m = new_model();
    g = m->graph;
    Value *c = const_tensor(g, "c", DT_FLOAT, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    NODE(g, "Transpose", 13, IN(c), OUT("t"));
    graph_add_output(g, val(m, "t"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "t"), "[3,2]");
    Value *t = val(m, "t");
    CHECK(t->init && tensor_get_f64(t->init, 1) == 4 && tensor_get_f64(t->init, 2) == 2 &&
          tensor_get_f64(t->init, 5) == 6);
    model_free(m);
}

static void test_squeeze_unsqueeze(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 1, 3, 1, 5);
    Node *s11 = NODE(g, "Squeeze", 11, IN(x), OUT("a")); /* Squeeze-11: axes attribute */
    ATTR_INTS(g, s11, "axes", 0, -2);
    NODE(g, "Squeeze", 13, IN(x), OUT("b"));
    Value *y = INPUT(g, "y", DT_FLOAT, 3, 4);
    Node *u11 = NODE(g, "Unsqueeze", 11, IN(y), OUT("c"));
    ATTR_INTS(g, u11, "axes", 0, 3);
    NODE(g, "Unsqueeze", 13, IN(y, INTS(g, "ax", -1)), OUT("d"));
    Value *z = INPUT(g, "z", DT_FLOAT, -2, 1);
    NODE(g, "Squeeze", 13, IN(z), OUT("e")); /* N might be 1: rank unknown */
    NODE(g, "Squeeze", 13, IN(z, INTS(g, "ax1", 1)), OUT("f"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[3,5]");
    CHECK(s11->ninputs == 2 && value_is_const(s11->inputs[1]) && !node_attr(s11, "axes"));
    CHECK_EQ_INT(s11->opset, 17);
    CHECK_STR(shp(m, "b"), "[3,5]");
    CHECK_STR(shp(m, "c"), "[1,3,4,1]");
    CHECK(u11->ninputs == 2 && value_is_const(u11->inputs[1]) && u11->inputs[1]->init->numel == 2 &&
          tensor_get_i64(u11->inputs[1]->init, 1) == 3);
    CHECK_STR(shp(m, "d"), "[3,4,1]");
    CHECK_STR(shp(m, "e"), "[?]");
    CHECK_STR(shp(m, "f"), "[N]");
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 2, 3);
    NODE(m->graph, "Squeeze", 13, IN(x, INTS(m->graph, "ax", 1)), OUT("a"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("axis 1") && msg_has("[2,3]"));
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 2, 3);
    NODE(m->graph, "Unsqueeze", 13, IN(x, INTS(m->graph, "ax", 0, 0)), OUT("a"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("twice"));
    model_free(m);
}

static void test_concat_split(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *a = INPUT(g, "a", DT_FLOAT, 2, 3), *b = INPUT(g, "b", DT_FLOAT, 2, -2), *c = INPUT(g, "c", DT_FLOAT, 4, 3);
    Node *n = NODE(g, "Concat", 13, IN(a, b), OUT("ab"));
    attr_int(g, n, "axis", 1);
    n = NODE(g, "Concat", 13, IN(a, c, a), OUT("aca"));
    attr_int(g, n, "axis", -2);
    Value *x = INPUT(g, "x", DT_FLOAT, 6, -2);
    Node *s2 = NODE(g, "Split", 2, IN(x), OUT("s0", "s1")); /* Split-2: split attribute */
    ATTR_INTS(g, s2, "split", 2, 4);
    n = NODE(g, "Split", 13, IN(x), OUT("e0", "e1", "e2"));
    n = NODE(g, "Split", 13, IN(x), OUT("f0", "f1"));
    attr_int(g, n, "axis", 1);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "ab"), "[2,?]");
    CHECK_STR(shp(m, "aca"), "[8,3]");
    CHECK_STR(shp(m, "s0"), "[2,N]");
    CHECK_STR(shp(m, "s1"), "[4,N]");
    CHECK(s2->ninputs == 2 && value_is_const(s2->inputs[1]) && !node_attr(s2, "split"));
    CHECK_STR(shp(m, "e2"), "[2,N]");
    CHECK_STR(shp(m, "f1"), "[6,?]");
    model_free(m);

    m = new_model();
    a = INPUT(m->graph, "a", DT_FLOAT, 2, 3);
    b = INPUT(m->graph, "b", DT_FLOAT, 3, 3);
    n = NODE(m->graph, "Concat", 13, IN(a, b), OUT("ab"));
    attr_int(m->graph, n, "axis", 1);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 1 has shape [3,3]") && msg_has("input 0 has shape [2,3]") && msg_has("dim 0"));
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 7);
    NODE(m->graph, "Split", 13, IN(x), OUT("p", "q"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("2 equal parts"));
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 7);
    NODE(m->graph, "Split", 13, IN(x, INTS(m->graph, "sp", 3, 3)), OUT("p", "q"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("add up to 6") && msg_has("[7]"));
    model_free(m);

    /* folding: concat and split of constants */
    m = new_model();
    g = m->graph;
    Value *k1 = const_tensor(g, "k1", DT_INT64, 2, (int64_t[]){2, 1}, (double[]){1, 2});
    Value *k2 = const_tensor(g, "k2", DT_INT64, 2, (int64_t[]){2, 2}, (double[]){3, 4, 5, 6});
    n = NODE(g, "Concat", 13, IN(k1, k2), OUT("k"));
    attr_int(g, n, "axis", 1);
    n = NODE(g, "Split", 13, IN(val(m, "k"), INTS(g, "sp", 2, 1)), OUT("l", "r"));
    attr_int(g, n, "axis", 1);
    graph_add_output(g, val(m, "l"));
    graph_add_output(g, val(m, "r"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_EQ_INT(live_nodes(m, NULL), 0);
    CHECK_STR(shp(m, "l"), "[2,2]");
    CHECK_EQ_INT(ival(m, "l", 0), 1);
    CHECK_EQ_INT(ival(m, "l", 1), 3);
    CHECK_EQ_INT(ival(m, "l", 2), 2);
    CHECK_EQ_INT(ival(m, "l", 3), 5);
    CHECK_EQ_INT(ival(m, "r", 0), 4);
    CHECK_EQ_INT(ival(m, "r", 1), 6);
    model_free(m);
}

static void test_slice(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 10, 20, -2);
    Node *s1 = NODE(g, "Slice", 1, IN(x), OUT("a")); /* Slice-1: attributes */
    ATTR_INTS(g, s1, "starts", 1, -5);
    ATTR_INTS(g, s1, "ends", 1000, -1);
    ATTR_INTS(g, s1, "axes", 0, 1);
    NODE(g, "Slice", 13, IN(x, INTS(g, "st", -1), INTS(g, "en", -100000), INTS(g, "ax", 1), INTS(g, "sp", -3)),
         OUT("b"));
    NODE(g, "Slice", 13, IN(x, INTS(g, "st2", 0), INTS(g, "en2", INT64_MAX), INTS(g, "ax2", 2)), OUT("c"));
    NODE(g, "Slice", 13, IN(x, INTS(g, "st3", 1), INTS(g, "en3", 3), INTS(g, "ax3", 2)), OUT("d"));
    Value *dyn = INPUT(g, "dyn", DT_INT64, 1);
    NODE(g, "Slice", 13, IN(x, dyn, dyn, INTS(g, "ax4", 0)), OUT("e"));
    NODE(g, "Slice", 13, IN(x, INTS(g, "st5", 5), INTS(g, "en5", 2)), OUT("f"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[9,4,N]");
    CHECK(s1->ninputs == 4 && value_is_const(s1->inputs[3]) && !node_attr(s1, "starts"));
    CHECK_STR(shp(m, "b"), "[10,7,N]"); /* 19, 16, ..., 1 */
    CHECK_STR(shp(m, "c"), "[10,20,N]");
    CHECK_STR(shp(m, "d"), "[10,20,?]");
    CHECK_STR(shp(m, "e"), "[?,20,N]");
    CHECK_STR(shp(m, "f"), "[0,20,N]");
    model_free(m);

    /* fold with a negative step: [0..9][8:2:-2] = 8 6 4 */
    m = new_model();
    g = m->graph;
    Value *c = const_tensor(g, "c", DT_FLOAT, 1, (int64_t[]){10}, (double[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    NODE(g, "Slice", 13, IN(c, INTS(g, "s", 8), INTS(g, "e", 2), INTS(g, "a", 0), INTS(g, "p", -2)), OUT("y"));
    graph_add_output(g, val(m, "y"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "y"), "[3]");
    Value *y = val(m, "y");
    CHECK(y->init && tensor_get_f64(y->init, 0) == 8 && tensor_get_f64(y->init, 2) == 4);
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 4, 4);
    NODE(m->graph, "Slice", 13, IN(x, INTS(m->graph, "s", 0), INTS(m->graph, "e", 2), INTS(m->graph, "a", 0),
                                   INTS(m->graph, "p", 0)), OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("zero step"));
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 4, 4);
    NODE(m->graph, "Slice", 13, IN(x, INTS(m->graph, "s", 0), INTS(m->graph, "e", 2), INTS(m->graph, "a", 2)),
         OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("axes 2 is out of range for rank 2"));
    model_free(m);
}

static void test_gather_scatter(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 5, -2, 7);
    Value *i2 = INPUT(g, "i2", DT_INT64, 2, 3);
    Node *n = NODE(g, "Gather", 13, IN(x, i2), OUT("a"));
    attr_int(g, n, "axis", 1);
    Value *i0 = const_tensor(g, "i0", DT_INT64, 0, NULL, (double[]){-1});
    n = NODE(g, "Gather", 13, IN(x, i0), OUT("b"));
    attr_int(g, n, "axis", -1);
    Value *ie = INPUT(g, "ie", DT_INT64, 5, 2, 7);
    NODE(g, "GatherElements", 13, IN(x, ie), OUT("c"));
    Value *data = INPUT(g, "data", DT_FLOAT, 2, 3, 4, 5);
    Value *ind = INPUT(g, "ind", DT_INT64, 2, 6, 2);
    n = NODE(g, "GatherND", 13, IN(data, ind), OUT("d"));
    attr_int(g, n, "batch_dims", 1);
    Value *upd = INPUT(g, "upd", DT_FLOAT, 5, 2, 7);
    Node *sc = NODE(g, "Scatter", 9, IN(x, ie, upd), OUT("e")); /* Scatter-9 -> ScatterElements */
    Value *ind2 = INPUT(g, "ind2", DT_INT64, 4, 1);
    Value *upd2 = INPUT(g, "upd2", DT_FLOAT, 4, 4, 5);
    NODE(g, "ScatterND", 16, IN(INPUT(g, "d3", DT_FLOAT, 8, 4, 5), ind2, upd2), OUT("f"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[5,2,3,7]");
    CHECK_STR(shp(m, "b"), "[5,N]");
    CHECK_STR(shp(m, "c"), "[5,2,7]");
    CHECK_STR(shp(m, "d"), "[2,6,5]");
    CHECK_STR(shp(m, "e"), "[5,N,7]");
    CHECK_STR(sc->op_type, "ScatterElements");
    CHECK_STR(shp(m, "f"), "[8,4,5]");
    model_free(m);

    /* Gather fold, negative index, and an out-of-range index */
    m = new_model();
    g = m->graph;
    Value *c = const_tensor(g, "c", DT_INT64, 1, (int64_t[]){3}, (double[]){10, 20, 30});
    NODE(g, "Gather", 13, IN(c, const_tensor(g, "i", DT_INT64, 1, (int64_t[]){2}, (double[]){-1, 0})), OUT("y"));
    graph_add_output(g, val(m, "y"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_EQ_INT(ival(m, "y", 0), 30);
    CHECK_EQ_INT(ival(m, "y", 1), 10);
    model_free(m);

    m = new_model();
    g = m->graph;
    c = const_tensor(g, "c", DT_INT64, 1, (int64_t[]){3}, (double[]){10, 20, 30});
    NODE(g, "Gather", 13, IN(c, const_tensor(g, "i", DT_INT64, 0, NULL, (double[]){3})), OUT("y"));
    graph_add_output(g, val(m, "y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("out of range"));
    model_free(m);

    m = new_model();
    NODE(m->graph, "ScatterND", 16, IN(INPUT(m->graph, "d", DT_FLOAT, 8, 4, 5), INPUT(m->graph, "i", DT_INT64, 4, 1),
                                       INPUT(m->graph, "u", DT_FLOAT, 4, 4, 6)), OUT("f"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 2 (updates) shape [4,4,6]"));
    model_free(m);
}

static void test_pad_expand_tile_range(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 3, 4);
    Node *p2 = NODE(g, "Pad", 2, IN(x), OUT("a")); /* Pad-2: pads and value attributes */
    ATTR_INTS(g, p2, "pads", 0, 1, 2, 0, 3, -1);
    attr_float(g, p2, "value", 1.5f);
    NODE(g, "Pad", 13, IN(x, INTS(g, "pads", 1, 0, 0, 1, 0, 0)), OUT("b"));
    Value *e = INPUT(g, "e", DT_FLOAT, 3, 1);
    NODE(g, "Expand", 13, IN(e, INTS(g, "es", 2, 1, 6)), OUT("c"));
    NODE(g, "Tile", 13, IN(x, INTS(g, "rep", 1, 2, 3)), OUT("d"));
    Value *r0 = const_tensor(g, "r0", DT_INT32, 0, NULL, (double[]){10});
    Value *r1 = const_tensor(g, "r1", DT_INT32, 0, NULL, (double[]){1});
    Value *r2 = const_tensor(g, "r2", DT_INT32, 0, NULL, (double[]){-3});
    NODE(g, "Range", 11, IN(r0, r1, r2), OUT("r"));
    graph_add_output(g, val(m, "r"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[N,7,5]"); /* begins 0,1,2 ends 0,3,-1 */
    CHECK(p2->ninputs == 3 && value_is_const(p2->inputs[1]) && value_is_const(p2->inputs[2]) &&
          tensor_get_f64(p2->inputs[2]->init, 0) == 1.5 && p2->inputs[2]->dtype == DT_FLOAT &&
          !node_attr(p2, "pads") && !node_attr(p2, "value"));
    CHECK_STR(shp(m, "b"), "[?,3,4]");
    CHECK_STR(shp(m, "c"), "[2,3,6]");
    CHECK_STR(shp(m, "d"), "[N,6,12]");
    CHECK_STR(shp(m, "r"), "[3]");
    CHECK_EQ_INT(val(m, "r")->dtype, DT_INT32);
    CHECK_EQ_INT(ival(m, "r", 2), 4);
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 3, 2);
    NODE(m->graph, "Expand", 13, IN(x, INTS(m->graph, "s", 4, 3)), OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("cannot be broadcast"));
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 3, 2);
    NODE(m->graph, "Pad", 13, IN(x, INTS(m->graph, "p", 0, 0, 0)), OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 1 (pads) has 3 entries") && msg_has("[3,2]"));
    model_free(m);

    /* expand + tile folds */
    m = new_model();
    g = m->graph;
    Value *c = const_tensor(g, "c", DT_FLOAT, 2, (int64_t[]){2, 1}, (double[]){1, 2});
    NODE(g, "Expand", 13, IN(c, INTS(g, "s", 2, 3)), OUT("ex"));
    NODE(g, "Tile", 13, IN(c, INTS(g, "t", 1, 2)), OUT("ti"));
    graph_add_output(g, val(m, "ex"));
    graph_add_output(g, val(m, "ti"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "ex"), "[2,3]");
    CHECK(val(m, "ex")->init && tensor_get_f64(val(m, "ex")->init, 2) == 1 &&
          tensor_get_f64(val(m, "ex")->init, 3) == 2);
    CHECK_STR(shp(m, "ti"), "[2,2]");
    CHECK(val(m, "ti")->init && tensor_get_f64(val(m, "ti")->init, 1) == 1 &&
          tensor_get_f64(val(m, "ti")->init, 2) == 2);
    model_free(m);
}

static void test_resize(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 3, 10, 10);
    Value *sc = const_tensor(g, "sc", DT_FLOAT, 1, (int64_t[]){4}, (double[]){1, 1, 2, 0.7});
    Node *u9 = NODE(g, "Upsample", 9, IN(x, sc), OUT("a")); /* Upsample-9 -> Resize-13 */
    Node *u7 = NODE(g, "Upsample", 7, IN(x), OUT("b"));     /* Upsample-7: scales attribute */
    attr_floats(g, u7, "scales", 4, (float[]){1, 1, 3, 3});
    attr_str(g, u7, "mode", "linear");
    Node *r10 = NODE(g, "Resize", 10, IN(x, sc), OUT("c"));
    Value *empty = const_tensor(g, "empty", DT_FLOAT, 1, (int64_t[]){0}, NULL);
    Node *r11 = NODE(g, "Resize", 11, IN(x, empty, empty, INTS(g, "sz", 1, 3, 5, 6)), OUT("d"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[N,3,20,7]");
    CHECK_STR(u9->op_type, "Resize");
    CHECK(u9->ninputs == 3 && !u9->inputs[1] && u9->inputs[2] == sc);
    CHECK_STR(node_attr_string(u9, "coordinate_transformation_mode", ""), "asymmetric");
    CHECK_STR(node_attr_string(u9, "nearest_mode", ""), "floor");
    CHECK_STR(shp(m, "b"), "[N,3,30,30]");
    CHECK_STR(u7->op_type, "Resize");
    CHECK(u7->ninputs == 3 && value_is_const(u7->inputs[2]) && !node_attr(u7, "scales"));
    CHECK_STR(node_attr_string(u7, "mode", ""), "linear");
    CHECK_STR(shp(m, "c"), "[N,3,20,7]");
    CHECK(r10->ninputs == 3 && !r10->inputs[1] && r10->opset == 17);
    CHECK_STR(shp(m, "d"), "[1,3,5,6]");
    CHECK(r11->ninputs == 4 && !r11->inputs[1] && !r11->inputs[2]);
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 1, 3, 10, 10);
    NODE(m->graph, "Resize", 13, IN(x, NULL, const_tensor(m->graph, "s", DT_FLOAT, 1, (int64_t[]){2},
                                                           (double[]){2, 2})), OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 2 (scales) has 2 entries") && msg_has("[1,3,10,10]"));
    model_free(m);
}

static void test_misc_shape_ops(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 8, 6, 4);
    Node *n = NODE(g, "DepthToSpace", 13, IN(x), OUT("a"));
    attr_int(g, n, "blocksize", 2);
    n = NODE(g, "SpaceToDepth", 13, IN(x), OUT("b"));
    attr_int(g, n, "blocksize", 2);
    NODE(g, "Trilu", 14, IN(x), OUT("c"));
    NODE(g, "CumSum", 14, IN(x, const_tensor(g, "ax", DT_INT64, 0, NULL, (double[]){-1})), OUT("d"));
    Value *ix = INPUT(g, "ix", DT_INT64, -2, 5);
    n = NODE(g, "OneHot", 11, IN(ix, const_tensor(g, "depth", DT_FLOAT, 0, NULL, (double[]){10}),
                                 const_tensor(g, "ov", DT_FLOAT, 1, (int64_t[]){2}, (double[]){0, 1})), OUT("e"));
    attr_int(g, n, "axis", 1);
    Value *sq = INPUT(g, "sq", DT_INT32, 3, 4);
    n = NODE(g, "EyeLike", 9, IN(sq), OUT("f"));
    attr_int(g, n, "dtype", DT_DOUBLE);
    Value *cond = const_tensor(g, "cond", DT_BOOL, 1, (int64_t[]){4}, (double[]){1, 0, 1, 1});
    n = NODE(g, "Compress", 11, IN(x, cond), OUT("h"));
    attr_int(g, n, "axis", 3);
    Node *tk = NODE(g, "TopK", 1, IN(x), OUT("tv", "ti")); /* TopK-1: k attribute */
    attr_int(g, tk, "k", 3);
    NODE(g, "NonZero", 13, IN(x), OUT("nz"));
    Value *nc = const_tensor(g, "nc", DT_FLOAT, 2, (int64_t[]){2, 3}, (double[]){0, 1, 0, 2, 0, 3});
    NODE(g, "NonZero", 13, IN(nc), OUT("nzc"));
    graph_add_output(g, val(m, "nzc"));
    NODE(g, "Identity", 16, IN(x), OUT("id"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "a"), "[N,2,12,8]");
    CHECK_STR(shp(m, "b"), "[N,32,3,2]");
    CHECK_STR(shp(m, "c"), "[N,8,6,4]");
    CHECK_STR(shp(m, "d"), "[N,8,6,4]");
    CHECK_STR(shp(m, "e"), "[N,10,5]");
    CHECK_STR(shp(m, "f"), "[3,4]");
    CHECK_EQ_INT(val(m, "f")->dtype, DT_DOUBLE);
    CHECK_STR(shp(m, "h"), "[N,8,6,3]");
    CHECK_STR(shp(m, "tv"), "[N,8,6,3]");
    CHECK_EQ_INT(val(m, "ti")->dtype, DT_INT64);
    CHECK(tk->ninputs == 2 && value_is_const(tk->inputs[1]) && tensor_get_i64(tk->inputs[1]->init, 0) == 3);
    CHECK_STR(shp(m, "nz"), "[4,?]");
    CHECK_STR(shp(m, "nzc"), "[2,3]");
    CHECK_EQ_INT(ival(m, "nzc", 0), 0); /* rows (0,1,1), cols (1,0,2) */
    CHECK_EQ_INT(ival(m, "nzc", 1), 1);
    CHECK_EQ_INT(ival(m, "nzc", 3), 1);
    CHECK_EQ_INT(ival(m, "nzc", 5), 2);
    CHECK_STR(shp(m, "id"), "[N,8,6,4]");
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 1, 6, 4, 4);
    n = NODE(m->graph, "DepthToSpace", 13, IN(x), OUT("a"));
    attr_int(m->graph, n, "blocksize", 2);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("blocksize^2"));
    model_free(m);

    m = new_model();
    x = INPUT(m->graph, "x", DT_FLOAT, 2, 5);
    n = NODE(m->graph, "TopK", 11, IN(x, INTS(m->graph, "k", 6)), OUT("v", "i"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("k = 6 exceeds axis 1"));
    model_free(m);
}

/* PyTorch's x.reshape(x.shape[0], -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape. */
static Model *torch_flatten_chain(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 3, 4, 5);
    NODE(g, "Shape", 13, IN(x), OUT("s"));
    Value *zero = const_tensor(g, "zero", DT_INT64, 0, NULL, (double[]){0});
    NODE(g, "Gather", 13, IN(val(m, "s"), zero), OUT("b"));
    NODE(g, "Unsqueeze", 13, IN(val(m, "b"), INTS(g, "ax0", 0)), OUT("bu"));
    Node *c = NODE(g, "Concat", 13, IN(val(m, "bu"), INTS(g, "minus1", -1)), OUT("shape"));
    attr_int(g, c, "axis", 0);
    NODE(g, "Reshape", 13, IN(x, val(m, "shape")), OUT("y"));
    graph_add_output(g, val(m, "y"));
    return m;
}

static void test_torch_shape_chain(void)
{
    Model *m = torch_flatten_chain();
    CHECK_EQ_INT(run(m, 2), ST_OK);
    CHECK_STR(shp(m, "y"), "[2,60]");
    CHECK_EQ_INT(live_nodes(m, NULL), 1); /* only the Reshape is left */
    Node *r = m->graph->nnodes ? m->graph->nodes[0] : NULL;
    CHECK(r && strcmp(r->op_type, "Reshape") == 0 && value_is_const(r->inputs[1]) &&
          tensor_get_i64(r->inputs[1]->init, 0) == 2 && tensor_get_i64(r->inputs[1]->init, 1) == -1);
    model_free(m);

    /* batch left symbolic: nothing folds past the Shape, the rank is still known */
    m = torch_flatten_chain();
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "y"), "[?,?]");
    CHECK_EQ_INT(live_nodes(m, NULL), 5);
    model_free(m);
}

/* ======================================================================== conv and pool */

static void test_conv(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 1, 3, 7, 7), *w = INPUT(g, "w", DT_FLOAT, 8, 3, 3, 3);
    Node *n = NODE(g, "Conv", 11, IN(x, w), OUT("pad1"));
    ATTR_INTS(g, n, "pads", 1, 1, 1, 1);
    ATTR_INTS(g, n, "strides", 2, 2);
    n = NODE(g, "Conv", 11, IN(x, w), OUT("valid"));
    attr_str(g, n, "auto_pad", "VALID");
    ATTR_INTS(g, n, "strides", 2, 2);
    n = NODE(g, "Conv", 11, IN(x, w), OUT("same"));
    attr_str(g, n, "auto_pad", "SAME_UPPER");
    ATTR_INTS(g, n, "strides", 2, 2);
    n = NODE(g, "Conv", 11, IN(x, w, INPUT(g, "b", DT_FLOAT, 8)), OUT("dil"));
    ATTR_INTS(g, n, "dilations", 2, 1);
    Value *xg = INPUT(g, "xg", DT_FLOAT, -2, 4, -1, 224), *wg = INPUT(g, "wg", DT_FLOAT, 8, 2, 3, 3);
    n = NODE(g, "Conv", 11, IN(xg, wg), OUT("grp"));
    attr_int(g, n, "group", 2);
    attr_str(g, n, "auto_pad", "SAME_LOWER");
    ATTR_INTS(g, n, "strides", 2, 2);
    Value *x1 = INPUT(g, "x1", DT_FLOAT, 2, 4, 10), *w1 = INPUT(g, "w1", DT_FLOAT, 6, 4, 5);
    NODE(g, "Conv", 11, IN(x1, w1), OUT("c1d"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "pad1"), "[1,8,4,4]");
    CHECK_STR(shp(m, "valid"), "[1,8,3,3]");
    CHECK_STR(shp(m, "same"), "[1,8,4,4]");
    CHECK_STR(shp(m, "dil"), "[1,8,3,5]");
    CHECK_STR(shp(m, "grp"), "[N,8,?,112]");
    CHECK_STR(shp(m, "c1d"), "[2,6,6]");
    Node *c1 = val(m, "c1d")->producer;
    CHECK(c1 && c1->rule && c1->rule->flops && c1->rule->flops(c1) == 2.0 * 6 * 6 * 4 * 5);
    model_free(m);

    /* SAME_UPPER / SAME_LOWER put the odd pad at the end / the beginning: 8 wide, kernel 3, stride 2 */
    m = new_model();
    g = m->graph;
    x = INPUT(g, "x", DT_FLOAT, 1, 1, 8);
    n = NODE(g, "Conv", 11, IN(x, INPUT(g, "w", DT_FLOAT, 1, 1, 3)), OUT("y"));
    attr_str(g, n, "auto_pad", "SAME_UPPER");
    ATTR_INTS(g, n, "strides", 2);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    ConvGeom cg;
    CHECK_EQ_INT(conv_geom(n, 1, (int64_t[]){3}, &cg, &diag), ST_OK);
    CHECK_EQ_INT(conv_geom_out(&cg, 0, 8), 4);
    CHECK_EQ_INT(cg.pad_begin[0], 0);
    CHECK_EQ_INT(cg.pad_end[0], 1);
    node_remove_attr(n, "auto_pad");
    attr_str(g, n, "auto_pad", "SAME_LOWER");
    CHECK_EQ_INT(conv_geom(n, 1, (int64_t[]){3}, &cg, &diag), ST_OK);
    CHECK_EQ_INT(conv_geom_out(&cg, 0, 8), 4);
    CHECK_EQ_INT(cg.pad_begin[0], 1);
    CHECK_EQ_INT(cg.pad_end[0], 0);
    model_free(m);

    m = new_model();
    g = m->graph;
    n = NODE(g, "Conv", 11, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 8, 8), INPUT(g, "w", DT_FLOAT, 8, 2, 3, 3)), OUT("y"));
    attr_int(g, n, "group", 2);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 0 shape [1,3,8,8] has 3 channels") && msg_has("[8,2,3,3]") && msg_has("expects 4"));
    model_free(m);

    m = new_model();
    g = m->graph;
    NODE(g, "Conv", 11, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 2, 8), INPUT(g, "w", DT_FLOAT, 8, 3, 3, 3)), OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("smaller than the dilated kernel"));
    model_free(m);

    m = new_model();
    g = m->graph;
    n = NODE(g, "Conv", 11, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 8, 8), INPUT(g, "w", DT_FLOAT, 8, 3, 3, 3)), OUT("y"));
    ATTR_INTS(g, n, "kernel_shape", 3, 5);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("kernel_shape[1] = 5"));
    model_free(m);

    m = new_model();
    g = m->graph;
    NODE(g, "Conv", 11, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 8, 8), INPUT(g, "w", DT_FLOAT, 8, 3, 3, 3),
                           INPUT(g, "b", DT_FLOAT, 4)), OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 2 (B) shape [4] must be [8]"));
    model_free(m);
}

static void test_conv_transpose(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 1, 1, 3, 3), *w = INPUT(g, "w", DT_FLOAT, 1, 2, 3, 3);
    Node *n = NODE(g, "ConvTranspose", 11, IN(x, w), OUT("opad"));
    ATTR_INTS(g, n, "strides", 3, 2);
    ATTR_INTS(g, n, "output_padding", 1, 1);
    Node *os = NODE(g, "ConvTranspose", 11, IN(x, w), OUT("oshape"));
    ATTR_INTS(g, os, "strides", 3, 2);
    ATTR_INTS(g, os, "output_shape", 10, 8);
    Node *same = NODE(g, "ConvTranspose", 11, IN(x, w), OUT("same"));
    ATTR_INTS(g, same, "strides", 2, 2);
    attr_str(g, same, "auto_pad", "SAME_UPPER");
    n = NODE(g, "ConvTranspose", 11, IN(x, w), OUT("pads"));
    ATTR_INTS(g, n, "pads", 1, 2, 1, 2);
    Value *xg = INPUT(g, "xg", DT_FLOAT, -2, 4, 5, 5), *wg = INPUT(g, "wg", DT_FLOAT, 4, 3, 2, 2);
    n = NODE(g, "ConvTranspose", 11, IN(xg, wg), OUT("grp"));
    attr_int(g, n, "group", 2);
    ATTR_INTS(g, n, "strides", 2, 2);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "opad"), "[1,2,10,8]");
    CHECK_STR(shp(m, "oshape"), "[1,2,10,8]");
    CHECK_STR(shp(m, "same"), "[1,2,6,6]");
    CHECK_STR(shp(m, "pads"), "[1,2,3,1]");
    CHECK_STR(shp(m, "grp"), "[N,6,10,10]");
    /* the pads codegen uses: SAME_UPPER 7 -> 6 cuts the end (as the backend data has it);
     * output_shape 10x8 from 9x7 adds one bias-only row and column at the end */
    ConvGeom cg;
    CHECK_EQ_INT(conv_geom(same, 2, (int64_t[]){3, 3}, &cg, &diag), ST_OK);
    CHECK_EQ_INT(conv_transpose_geom_out(&cg, 0, 3, -1), 6);
    CHECK_EQ_INT(cg.pad_begin[0], 0);
    CHECK_EQ_INT(cg.pad_end[0], 1);
    CHECK_EQ_INT(conv_geom(os, 2, (int64_t[]){3, 3}, &cg, &diag), ST_OK);
    CHECK_EQ_INT(conv_transpose_geom_out(&cg, 0, 3, 10), 10);
    CHECK_EQ_INT(cg.pad_begin[0], 0);
    CHECK_EQ_INT(cg.pad_end[0], -1);
    model_free(m);

    m = new_model();
    g = m->graph;
    NODE(g, "ConvTranspose", 11, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 3, 3), INPUT(g, "w", DT_FLOAT, 2, 2, 3, 3)),
         OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("has 3 channels but input 1 (W) shape [2,2,3,3] expects 2"));
    model_free(m);
}

static void test_pool(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 3, 5, 4);
    Node *n = NODE(g, "MaxPool", 12, IN(x), OUT("mp", "idx"));
    ATTR_INTS(g, n, "kernel_shape", 2, 3);
    ATTR_INTS(g, n, "strides", 2, 2);
    ATTR_INTS(g, n, "pads", 1, 0, 1, 0);
    attr_int(g, n, "ceil_mode", 1);
    n = NODE(g, "AveragePool", 11, IN(x), OUT("ap"));
    ATTR_INTS(g, n, "kernel_shape", 3, 3);
    attr_str(g, n, "auto_pad", "SAME_UPPER");
    ATTR_INTS(g, n, "strides", 2, 2);
    n = NODE(g, "MaxPool", 12, IN(x), OUT("mpd"));
    ATTR_INTS(g, n, "kernel_shape", 2, 2);
    ATTR_INTS(g, n, "dilations", 2, 2);
    Node *lp = NODE(g, "LpPool", 1, IN(x), OUT("lp"));
    ATTR_INTS(g, lp, "kernel_shape", 5, 4);
    attr_float(g, lp, "p", 3.0f);
    NODE(g, "GlobalAveragePool", 1, IN(x), OUT("gap"));
    NODE(g, "GlobalMaxPool", 1, IN(INPUT(g, "x3", DT_FLOAT, 2, 3, 4, 5, 6)), OUT("gmp"));
    Value *xu = INPUT(g, "xu", DT_FLOAT, 4);
    xu->shape = shape_unknown();
    n = NODE(g, "MaxPool", 12, IN(xu), OUT("mpu"));
    ATTR_INTS(g, n, "kernel_shape", 3);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    /* height: 5 + 1 + 1 - 2 = 5 -> ceil(5/2) + 1 = 4, but the 4th window would start in the end padding
     * (PyTorch drops it): 3. width: (4 - 3) / 2 ceil + 1 = 2 */
    CHECK_STR(shp(m, "mp"), "[N,3,3,2]");
    CHECK_STR(shp(m, "idx"), "[N,3,3,2]");
    CHECK_EQ_INT(val(m, "idx")->dtype, DT_INT64);
    CHECK_STR(shp(m, "ap"), "[N,3,3,2]");
    CHECK_STR(shp(m, "mpd"), "[N,3,3,2]");
    CHECK_STR(shp(m, "lp"), "[N,3,1,1]");
    CHECK_EQ_INT(node_attr_int(lp, "p", 0), 3);
    CHECK_STR(shp(m, "gap"), "[N,3,1,1]");
    CHECK_STR(shp(m, "gmp"), "[2,3,1,1,1]");
    CHECK_STR(shp(m, "mpu"), "[?,?,?]");
    model_free(m);

    m = new_model();
    g = m->graph;
    n = NODE(g, "MaxPool", 12, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 2, 2)), OUT("y"));
    ATTR_INTS(g, n, "kernel_shape", 3, 3);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("smaller than the window 3"));
    model_free(m);

    m = new_model();
    g = m->graph;
    n = NODE(g, "AveragePool", 11, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 8, 8)), OUT("y"));
    ATTR_INTS(g, n, "kernel_shape", 3);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("[1,3,8,8] does not fit kernel_shape of 1 dims"));
    model_free(m);

    m = new_model();
    g = m->graph;
    NODE(g, "MaxPool", 12, IN(INPUT(g, "x", DT_FLOAT, 1, 3, 8, 8)), OUT("y"));
    CHECK_EQ_INT(run(m, 0), ST_INVALID);
    CHECK(msg_has("kernel_shape is required"));
    model_free(m);
}

/* ======================================================================== rnn */

static void test_rnn(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    /* LSTM, bidirectional, layout 0: X [seq 7, batch N, input 10], hidden 16 */
    Value *x = INPUT(g, "x", DT_FLOAT, 7, -2, 10);
    Value *w = INPUT(g, "w", DT_FLOAT, 2, 64, 10), *r = INPUT(g, "r", DT_FLOAT, 2, 64, 16);
    Value *b = INPUT(g, "b", DT_FLOAT, 2, 128);
    Node *l = NODE(g, "LSTM", 1, IN(x, w, r, b), OUT("y", "yh", "yc"));
    attr_str(g, l, "direction", "bidirectional");
    attr_int(g, l, "hidden_size", 16);
    attr_int(g, l, "output_sequence", 1);
    /* GRU, layout 1: X [batch 4, seq 5, input 3]; hidden size from R */
    Value *xg = INPUT(g, "xg", DT_FLOAT, 4, 5, 3);
    Node *gru = NODE(g, "GRU", 14, IN(xg, INPUT(g, "wg", DT_FLOAT, 1, 18, 3), INPUT(g, "rg", DT_FLOAT, 1, 18, 6),
                                      NULL, NULL, INPUT(g, "hg", DT_FLOAT, 4, 1, 6)), OUT("gy", "gyh"));
    attr_int(g, gru, "layout", 1);
    /* RNN with an unknown sequence length and hidden size from W */
    Value *xr = INPUT(g, "xr", DT_FLOAT, -1, 2, 3);
    NODE(g, "RNN", 14, IN(xr, INPUT(g, "wr", DT_FLOAT, 1, 5, 3), INPUT(g, "rr", DT_FLOAT, 1, 5, 5)), OUT("ry", "ryh"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "y"), "[7,2,N,16]");
    CHECK_STR(shp(m, "yh"), "[2,N,16]");
    CHECK_STR(shp(m, "yc"), "[2,N,16]");
    CHECK(!node_attr(l, "output_sequence") && l->opset == 17);
    CHECK_STR(shp(m, "gy"), "[4,5,1,6]");
    CHECK_STR(shp(m, "gyh"), "[4,1,6]");
    CHECK(gru->rule->flops(gru) == 4.0 * 5 * 1 * 18 * (3 + 6));
    CHECK_STR(shp(m, "ry"), "[?,1,2,5]");
    CHECK_STR(shp(m, "ryh"), "[1,2,5]");
    model_free(m);

    m = new_model();
    g = m->graph;
    l = NODE(g, "LSTM", 14, IN(INPUT(g, "x", DT_FLOAT, 7, 2, 10), INPUT(g, "w", DT_FLOAT, 1, 64, 12),
                               INPUT(g, "r", DT_FLOAT, 1, 64, 16)), OUT("y", "yh", "yc"));
    attr_int(g, l, "hidden_size", 16);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 1 (W) has shape [1,64,12], expected [1,64,10]"));
    model_free(m);

    m = new_model();
    g = m->graph;
    l = NODE(g, "GRU", 14, IN(INPUT(g, "x", DT_FLOAT, 7, 2, 10), INPUT(g, "w", DT_FLOAT, 1, 24, 10),
                              INPUT(g, "r", DT_FLOAT, 1, 24, 8), NULL, NULL, INPUT(g, "h", DT_FLOAT, 1, 3, 8)),
             OUT("y", "yh"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 5 (initial_h) has shape [1,3,8], expected [1,2,8]"));
    model_free(m);
}

/* ======================================================================== control flow */

static Value *scalar_input(Graph *g, const char *name, DType t)
{
    Value *v = graph_add_value(g, name, &diag);
    v->dtype = t;
    v->shape = shape_scalar();
    graph_add_input(g, v);
    return v;
}

static void attr_graph(Graph *g, Node *n, const char *name, Graph *sub)
{
    Attr a = {.name = name, .type = AT_GRAPH, .g = sub};
    node_add_attr(g, n, &a);
}

/* then: Reshape(x, [6]) ; else: Reshape(x, [-1, 2]) */
static Model *if_model(Value **cond_out, bool const_cond, DType else_type)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 2, 3);
    Value *cond = const_cond ? const_tensor(g, "cond", DT_BOOL, 0, NULL, (double[]){1}) : scalar_input(g, "cond", DT_BOOL);
    Graph *th = graph_new(m->arena, "then", g), *el = graph_new(m->arena, "else", g);
    NODE(th, "Reshape", 14, IN(x, INTS(th, "s6", 6)), OUT("t_out"));
    graph_add_output(th, graph_find(th, "t_out"));
    if (else_type == DT_FLOAT) {
        NODE(el, "Reshape", 14, IN(x, INTS(el, "s32", -1, 2)), OUT("e_out"));
    } else {
        NODE(el, "Shape", 15, IN(x), OUT("e_out"));
    }
    graph_add_output(el, graph_find(el, "e_out"));
    Node *n = NODE(g, "If", 16, IN(cond), OUT("y"));
    attr_graph(g, n, "then_branch", th);
    attr_graph(g, n, "else_branch", el);
    NODE(g, "Identity", 16, IN(val(m, "y")), OUT("z"));
    graph_add_output(g, val(m, "z"));
    *cond_out = cond;
    return m;
}

static void test_if(void)
{
    Value *cond;
    Model *m = if_model(&cond, false, DT_FLOAT);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    /* the branches differ in shape ([6], [3,2]): the Identity reading y moved into both, and the If now
     * writes the graph output z, still of a shape that depends on the branch (rank 1 vs 2: unknown) */
    CHECK_STR(shp(m, "z"), "[?]");
    CHECK_EQ_INT(val(m, "z")->dtype, DT_FLOAT);
    CHECK_EQ_INT(live_nodes(m, "If"), 1);
    CHECK_EQ_INT(live_nodes(m, "Identity"), 0);
    CHECK(val(m, "z")->producer && strcmp(val(m, "z")->producer->op_type, "If") == 0);
    for (size_t i = 0; i < m->graph->nnodes; i++) {
        const Node *n = m->graph->nodes[i];
        if (!n->dead && strcmp(n->op_type, "If") == 0) {
            const Graph *th = node_attr(n, "then_branch")->g;
            CHECK_STR(shape_str(&th->outputs[0]->shape, (char[64]){0}, 64), "[6]");
            CHECK(th->outputs[0]->producer && strcmp(th->outputs[0]->producer->op_type, "Identity") == 0);
        }
    }
    model_free(m);

    /* a constant condition inlines the then branch: no If is left, y is the branch's [6] */
    m = if_model(&cond, true, DT_FLOAT);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "y"), "[6]");
    CHECK_STR(shp(m, "z"), "[6]");
    CHECK_EQ_INT(live_nodes(m, "If"), 0);
    CHECK_EQ_INT(live_nodes(m, "Reshape"), 1);
    Node *r = NULL;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (strcmp(m->graph->nodes[i]->op_type, "Reshape") == 0)
            r = m->graph->nodes[i];
    CHECK(r && r->inputs[0] == val(m, "x") && graph_find_local(m->graph, r->inputs[1]->name) == r->inputs[1]);
    Diag vd;
    diag_init(&vd, NULL);
    CHECK_EQ_INT(graph_verify(m->graph, &vd), ST_OK);
    if (vd.status)
        fprintf(stderr, "  verify: %s\n", vd.msg);
    /* the inlined nodes come before their readers */
    size_t pos_r = 0, pos_z = 0;
    for (size_t i = 0; i < m->graph->nnodes; i++) {
        if (m->graph->nodes[i] == r)
            pos_r = i;
        if (m->graph->nodes[i]->outputs[0] == val(m, "z"))
            pos_z = i;
    }
    CHECK(pos_r < pos_z);
    model_free(m);

    m = if_model(&cond, false, DT_INT64);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("output 0 is float32 in then_branch but int64 in else_branch"));
    model_free(m);
}

/* A Loop doubling v each time round; M constant (5 iterations, unrolled) or an input. */
static Model *doubling_loop(bool const_trips)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *v0 = INPUT(g, "v0", DT_FLOAT, 2), *w0 = INPUT(g, "w0", DT_FLOAT, -2, 4);
    Value *trips = const_trips ? const_tensor(g, "M", DT_INT64, 0, NULL, (double[]){5}) : scalar_input(g, "M", DT_INT64);
    Graph *body = graph_new(m->arena, "body", g);
    Value *it = scalar_input(body, "iter", DT_INT64), *ci = scalar_input(body, "cond_in", DT_BOOL);
    Value *v = graph_add_value(body, "v", &diag), *w = graph_add_value(body, "w", &diag);
    graph_add_input(body, v);
    graph_add_input(body, w);
    NODE(body, "Identity", 16, IN(ci), OUT("cond_out"));
    Node *c = NODE(body, "Concat", 13, IN(v, v), OUT("v_out")); /* doubles each time round */
    attr_int(body, c, "axis", 0);
    NODE(body, "Identity", 16, IN(w), OUT("w_out"));
    NODE(body, "Unsqueeze", 13, IN(it, INTS(body, "ax0", 0)), OUT("it1"));
    NODE(body, "Shape", 15, IN(v), OUT("vshape")); /* must not fold to the first iteration's [2] */
    graph_add_output(body, graph_find(body, "cond_out"));
    graph_add_output(body, graph_find(body, "v_out"));
    graph_add_output(body, graph_find(body, "w_out"));
    graph_add_output(body, graph_find(body, "it1"));
    graph_add_output(body, graph_find(body, "vshape"));
    Node *loop = NODE(g, "Loop", 16, IN(trips, NULL, v0, w0), OUT("v_fin", "w_fin", "its", "shapes"));
    attr_graph(g, loop, "body", body);
    return m;
}

static void test_loop_scan(void)
{
    Model *m = doubling_loop(false);
    Graph *g = m->graph, *body;
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "v_fin"), "[?]");
    CHECK_STR(shp(m, "w_fin"), "[N,4]");
    CHECK_STR(shp(m, "its"), "[?,1]");
    CHECK_EQ_INT(val(m, "its")->dtype, DT_INT64);
    CHECK_STR(shp(m, "shapes"), "[?,1]");
    body = node_attr(val(m, "v_fin")->producer, "body")->g;
    Value *vs = graph_find(body, "vshape");
    CHECK(vs && !vs->init && vs->producer && !vs->producer->dead);
    model_free(m);

    /* 5 iterations known at compile time: unrolled, so every copy has exact shapes and folds */
    m = doubling_loop(true);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "v_fin"), "[64]");
    CHECK_STR(shp(m, "w_fin"), "[N,4]");
    CHECK_STR(shp(m, "its"), "[5,1]");
    CHECK_STR(shp(m, "shapes"), "[5,1]");
    const Value *its = val(m, "its"), *shapes = val(m, "shapes");
    CHECK(its->init && shapes->init);
    for (int t = 0; t < 5 && its->init && shapes->init; t++) {
        CHECK_EQ_INT(tensor_get_i64(its->init, (size_t)t), t);
        CHECK_EQ_INT(tensor_get_i64(shapes->init, (size_t)t), 2 << t);
    }
    for (size_t i = 0; i < m->graph->nnodes; i++)
        CHECK(strcmp(m->graph->nodes[i]->op_type, "Loop") != 0);
    model_free(m);

    /* Scan-9: state [2], scan input [3, 7, 2] scanned along axis 1 */
    m = new_model();
    g = m->graph;
    Value *s0 = INPUT(g, "s0", DT_FLOAT, 2), *xs = INPUT(g, "xs", DT_FLOAT, 3, 7, 2);
    body = graph_new(m->arena, "body", g);
    Value *st = INPUT(body, "st", DT_FLOAT, 2), *sl = graph_add_value(body, "slice", &diag);
    graph_add_input(body, sl);
    NODE(body, "Identity", 16, IN(st), OUT("st_out"));
    NODE(body, "Identity", 16, IN(sl), OUT("el"));
    NODE(body, "Identity", 16, IN(sl), OUT("el2"));
    graph_add_output(body, graph_find(body, "st_out"));
    graph_add_output(body, graph_find(body, "el"));
    graph_add_output(body, graph_find(body, "el2"));
    Node *scan = NODE(g, "Scan", 11, IN(s0, xs), OUT("s_fin", "ys", "ys2"));
    attr_graph(g, scan, "body", body);
    attr_int(g, scan, "num_scan_inputs", 1);
    ATTR_INTS(g, scan, "scan_input_axes", 1);
    ATTR_INTS(g, scan, "scan_output_axes", 0, -1);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "s_fin"), "[2]");
    CHECK_STR(shp(m, "ys"), "[7,3,2]");
    CHECK_STR(shp(m, "ys2"), "[3,2,7]");
    CHECK_STR(shape_str(&sl->shape, (char[64]){0}, 64), "[3,2]");
    model_free(m);

    /* Scan-8: batch in front; without sequence_lens it becomes a Scan over the batch of Scans over steps */
    for (int with_lens = 0; with_lens < 2; with_lens++) {
        m = new_model();
        g = m->graph;
        Value *lens = with_lens ? INPUT(g, "lens", DT_INT32, 2) : NULL;
        s0 = INPUT(g, "s0", DT_FLOAT, 2, 3), xs = INPUT(g, "xs", DT_FLOAT, 2, 5, 3);
        body = graph_new(m->arena, "body", g);
        st = INPUT(body, "st", DT_FLOAT, 3), sl = INPUT(body, "x_t", DT_FLOAT, 3);
        NODE(body, "Add", 14, IN(st, sl), OUT("sum"));
        NODE(body, "Identity", 16, IN(graph_find(body, "sum")), OUT("row"));
        graph_add_output(body, graph_find(body, "sum"));
        graph_add_output(body, graph_find(body, "row"));
        scan = NODE(g, "Scan", 8, IN(lens, s0, xs), OUT("s_fin", "rows"));
        attr_graph(g, scan, "body", body);
        attr_int(g, scan, "num_scan_inputs", 1);
        if (with_lens) {
            CHECK_EQ_INT(run(m, 0), ST_UNSUPPORTED);
            CHECK(msg_has("Scan-8 with sequence_lens (steps per batch item) is not supported"));
        } else {
            CHECK_EQ_INT(run(m, 0), ST_OK);
            CHECK_STR(shp(m, "s_fin"), "[2,3]");
            CHECK_STR(shp(m, "rows"), "[2,5,3]");
            Graph *item = node_attr(scan, "body")->g;
            CHECK(item != body && item->nnodes == 1 && strcmp(item->nodes[0]->op_type, "Scan") == 0);
            CHECK_EQ_INT(scan->ninputs, 2);
        }
        model_free(m);
    }

    m = new_model(); /* a body whose arity does not fit */
    g = m->graph;
    body = graph_new(m->arena, "body", g);
    Node *loop = NODE(g, "Loop", 16, IN(const_tensor(g, "M", DT_INT64, 0, NULL, (double[]){2}), NULL,
                                  INPUT(g, "v0", DT_FLOAT, 2)), OUT("v_fin"));
    attr_graph(g, loop, "body", body);
    CHECK_EQ_INT(run(m, 0), ST_INVALID);
    CHECK(msg_has("body has 0 inputs and 0 outputs"));
    model_free(m);
}

/* ======================================================================== odd inputs */

/* Every rule of these families, fed combinations of odd inputs (missing, scalar, empty, unknown rank,
 * absurd dims, odd constant values), must return a status with a message or succeed: never crash. */
static void test_odd_inputs(void)
{
    static const char *const families[] = {"shape", "conv", "pool", "rnn", "control"};
    enum { NPAL = 9 };
    size_t runs = 0, errors = 0;
    const OpRule *r;
    for (size_t ri = 0; (r = op_rule_at(ri)); ri++) {
        bool mine = false;
        for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
            mine |= strcmp(r->family, families[f]) == 0;
        if (!mine)
            continue;
        for (int nin = 0; nin <= 4; nin++)
            for (int combo = 0; combo < NPAL * NPAL; combo++) {
                Model *m = new_model();
                Graph *g = m->graph;
                Value *ins[4];
                for (int i = 0; i < nin; i++) {
                    int k = (i % 2 == 0 ? combo % NPAL : combo / NPAL);
                    char name[16];
                    snprintf(name, sizeof name, "in%d", i);
                    switch (k) {
                    case 0: ins[i] = NULL; break;
                    case 1: ins[i] = scalar_input(g, name, DT_FLOAT); break;
                    case 2: ins[i] = INPUT(g, name, DT_FLOAT, 0, 3); break;
                    case 3: ins[i] = INPUT(g, name, DT_FLOAT, 2, 3, 4, 5); ins[i]->shape = shape_unknown(); break;
                    case 4: ins[i] = INPUT(g, name, DT_FLOAT, (int64_t)1 << 62, (int64_t)1 << 62, 3); break;
                    case 5: ins[i] = INPUT(g, name, DT_INT64, -1, 1, -2, 7); break;
                    case 6: ins[i] = INTS(g, name, -5, (int64_t)1 << 62); break;
                    case 7: ins[i] = INTS(g, name, 0, -1, 3, 0, 0, 0, 0, 0, 2); break;
                    default: ins[i] = const_tensor(g, name, DT_FLOAT, 2, (int64_t[]){2, 2}, (double[]){1, 0, -1, 2});
                    }
                }
                const char *outs[3] = {"o0", "o1", "o2"};
                Node *n = add_node(g, r->name, 17, nin, ins, 1 + combo % 3, outs);
                if (combo % 4 == 1)
                    attr_int(g, n, "axis", -7);
                if (combo % 5 == 2)
                    ATTR_INTS(g, n, "kernel_shape", 3, 3);
                if (combo % 7 == 3)
                    ATTR_INTS(g, n, "perm", 5, 0);
                diag_init(&diag, NULL);
                Status st = op_check_signature(r, n, &diag); /* the shape pass checks it before the rule */
                if (!st)
                    st = r->shape(g, n, &diag);
                runs++;
                if (st) {
                    errors++;
                    CHECK_MSG(diag.status == st && diag.msg[0], "%s: status %s without a message", r->name,
                              status_name(st));
                } else if (r->fold) {
                    bool folded;
                    diag_init(&diag, NULL);
                    st = fold_node(g, n, &folded, &diag);
                    CHECK_MSG(!st || diag.msg[0], "%s: fold status %s without a message", r->name, status_name(st));
                }
                model_free(m);
            }
    }
    CHECK(runs > 1000 && errors > 0 && errors < runs);
}

/* NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss (ops_loss.c): the loss's shape per reduction, log_prob,
 * and the refusals. */
static void test_loss_ops(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 5, 3, 2), *t = INPUT(g, "t", DT_INT64, -2, 3, 2);
    Value *w = INPUT(g, "w", DT_FLOAT, 5), *t32 = INPUT(g, "t32", DT_INT32, -2, 3, 2);
    NODE(g, "SoftmaxCrossEntropyLoss", 13, IN(x, t, w), OUT("mean", "log_prob"));
    attr_str(g, NODE(g, "NegativeLogLikelihoodLoss", 13, IN(x, t32), OUT("none")), "reduction", "none");
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "mean"), "[]");
    CHECK_STR(shp(m, "log_prob"), "[N,5,3,2]");
    CHECK_STR(shp(m, "none"), "[N,3,2]");
    model_free(m);

    static const struct {
        const char *why;
        int64_t tdims[3], wdim;
        int trank;
        DType tt;
        const char *reduction;
    } bad[] = {
        {"reduction 'avg' must be none, sum or mean", {4, 3}, 5, 2, DT_INT64, "avg"},
        {"must be int64 or int32", {4, 3}, 5, 2, DT_FLOAT, "mean"},
        {"must be the shape of input 'x' [4,5,3] without dim 1", {4, 2}, 5, 2, DT_INT64, "sum"},
        {"must be the shape of input 'x' [4,5,3] without dim 1", {4, 3, 1}, 5, 3, DT_INT64, "sum"},
        {"weight 'w' [4] must be [C]", {4, 3}, 4, 2, DT_INT64, "none"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = new_model();
        g = m->graph;
        x = INPUT(g, "x", DT_FLOAT, 4, 5, 3);
        t = input(g, "t", bad[i].tt, bad[i].trank, bad[i].tdims);
        w = INPUT(g, "w", DT_FLOAT, bad[i].wdim);
        attr_str(g, NODE(g, "NegativeLogLikelihoodLoss", 13, IN(x, t, w), OUT("y")), "reduction", bad[i].reduction);
        CHECK(run(m, 0) != ST_OK);
        CHECK_MSG(msg_has(bad[i].why), "case %zu: %s", i, diag.msg);
        model_free(m);
    }
}

int main(void)
{
    test_constant();
    test_constant_of_shape();
    test_shape_size();
    test_reshape();
    test_flatten_transpose();
    test_squeeze_unsqueeze();
    test_concat_split();
    test_slice();
    test_gather_scatter();
    test_pad_expand_tile_range();
    test_resize();
    test_misc_shape_ops();
    test_torch_shape_chain();
    test_conv();
    test_conv_transpose();
    test_pool();
    test_rnn();
    test_if();
    test_loop_scan();
    test_odd_inputs();
    test_loss_ops();
    return test_summary("test_ops_b");
}
