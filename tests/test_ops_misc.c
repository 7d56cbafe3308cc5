/* test_ops_misc.c - unit tests of the rules of the quantization, signal, image, misc and
 * ai.onnx.preview.training ops on tiny hand-built graphs: inferred shapes and dtypes (unknown sizes
 * where they come from run-time values), the errors bad inputs give, and the values Unique and
 * NonMaxSuppression fold to. Their kernels are checked end to end by the conformance cases. */
#include "ir.h"
#include "test.h"
#include "ops_graph.h"

#include <string.h>

/* ======================================================================== shapes */

static void test_quant_shapes(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, 2, 3, 4), *s3 = INPUT(g, "s3", DT_FLOAT, 3), *z3 = INPUT(g, "z3", DT_INT8, 3);
    NODE(g, "QuantizeLinear", 13, IN(x, s3, z3), OUT("q"));
    Value *s = INPUT(g, "s", DT_FLOAT), *qu = INPUT(g, "qu", DT_UINT8, 5);
    NODE(g, "QuantizeLinear", 13, IN(x, s), OUT("q8")); /* no zero point: uint8 */
    NODE(g, "DequantizeLinear", 13, IN(qu, s), OUT("dq"));
    NODE(g, "DynamicQuantizeLinear", 11, IN(x), OUT("dy", "dys", "dyz"));
    Value *a = INPUT(g, "a", DT_INT8, 2, 1, 3, 4), *b = INPUT(g, "b", DT_INT8, 3, 4, 5);
    NODE(g, "MatMulInteger", 10, IN(a, b), OUT("mi"));
    Value *cx = INPUT(g, "cx", DT_UINT8, -2, 2, 5, 5), *cw = INPUT(g, "cw", DT_UINT8, 3, 2, 2, 2);
    Node *n = NODE(g, "ConvInteger", 10, IN(cx, cw), OUT("ci"));
    ATTR_INTS(g, n, "pads", 1, 1, 1, 1);
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "q"), "[2,3,4]");
    CHECK_EQ_INT(val(m, "q")->dtype, DT_INT8);
    CHECK_EQ_INT(val(m, "q8")->dtype, DT_UINT8);
    CHECK(val(m, "dq")->dtype == DT_FLOAT && !strcmp(shp(m, "dq"), "[5]"));
    CHECK_STR(shp(m, "dy"), "[2,3,4]");
    CHECK(!strcmp(shp(m, "dys"), "[]") && val(m, "dyz")->dtype == DT_UINT8);
    CHECK_STR(shp(m, "mi"), "[2,3,3,5]");
    CHECK_EQ_INT(val(m, "mi")->dtype, DT_INT32);
    CHECK_STR(shp(m, "ci"), "[N,3,6,6]");
    CHECK_EQ_INT(val(m, "ci")->dtype, DT_INT32);
    model_free(m);

    /* a per-axis scale must have the axis' length */
    m = new_model();
    g = m->graph;
    x = INPUT(g, "x", DT_FLOAT, 2, 3, 4);
    n = NODE(g, "QuantizeLinear", 13, IN(x, INPUT(g, "s", DT_FLOAT, 4)), OUT("q"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("input 1 (scale) has shape [4] but must be a scalar or [3]"));
    model_free(m);
}

static void test_signal_shapes(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 10, 3, 1);
    Node *n = NODE(g, "DFT", 17, IN(x, const_tensor(g, "len", DT_INT64, 0, NULL, (double[]){12})), OUT("d"));
    attr_int(g, n, "onesided", 1);
    NODE(g, "DFT", 17, IN(x), OUT("d2"));
    Value *sig = INPUT(g, "sig", DT_FLOAT, 2, 40, 2);
    NODE(g, "STFT", 17, IN(sig, const_tensor(g, "step", DT_INT64, 0, NULL, (double[]){5}), INPUT(g, "w", DT_FLOAT, 8)),
         OUT("st"));
    NODE(g, "HannWindow", 17, IN(const_tensor(g, "n9", DT_INT32, 0, NULL, (double[]){9})), OUT("hw"));
    NODE(g, "BlackmanWindow", 17, IN(INPUT(g, "nrt", DT_INT64)), OUT("bw")); /* size known at run time only */
    Value *bins = const_tensor(g, "bins", DT_INT32, 0, NULL, (double[]){8});
    Value *len = const_tensor(g, "dl", DT_INT32, 0, NULL, (double[]){16});
    Value *rate = INPUT(g, "rate", DT_INT32), *lo = INPUT(g, "lo", DT_FLOAT), *hi = INPUT(g, "hi", DT_FLOAT);
    NODE(g, "MelWeightMatrix", 17, IN(bins, len, rate, lo, hi), OUT("mel"));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "d"), "[N,7,3,2]");
    CHECK_STR(shp(m, "d2"), "[N,10,3,2]");
    CHECK_STR(shp(m, "st"), "[2,7,5,2]");
    CHECK_STR(shp(m, "hw"), "[9]");
    CHECK_STR(shp(m, "bw"), "[?]");
    CHECK_STR(shp(m, "mel"), "[9,8]");
    model_free(m);

    /* the axis may not be the complex dim; a window must match frame_length */
    m = new_model();
    g = m->graph;
    n = NODE(g, "DFT", 17, IN(INPUT(g, "x", DT_FLOAT, 1, 10, 2)), OUT("d"));
    attr_int(g, n, "axis", -1);
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("axis -1 is the batch or the complex dim"));
    model_free(m);
    m = new_model();
    g = m->graph;
    NODE(g, "STFT", 17, IN(INPUT(g, "s", DT_FLOAT, 1, 40, 1), const_tensor(g, "step", DT_INT64, 0, NULL, (double[]){4}),
                           INPUT(g, "w", DT_FLOAT, 8), const_tensor(g, "fl", DT_INT64, 0, NULL, (double[]){16})),
         OUT("st"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("frame_length 16 differs from the window's length 8"));
    model_free(m);
}

static void test_image_misc_shapes(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *x = INPUT(g, "x", DT_FLOAT, -2, 3, 5, 4);
    NODE(g, "GridSample", 16, IN(x, INPUT(g, "grid", DT_FLOAT, -2, 6, 7, 2)), OUT("gs"));
    Node *n = NODE(g, "RoiAlign", 16, IN(x, INPUT(g, "rois", DT_FLOAT, 9, 4), INPUT(g, "bi", DT_INT64, 9)), OUT("ra"));
    attr_int(g, n, "output_height", 2);
    attr_int(g, n, "output_width", 3);
    n = NODE(g, "MaxUnpool", 11, IN(INPUT(g, "p", DT_FLOAT, 1, 2, 3, 3), INPUT(g, "pi", DT_INT64, 1, 2, 3, 3)), OUT("mu"));
    ATTR_INTS(g, n, "kernel_shape", 2, 2);
    ATTR_INTS(g, n, "strides", 2, 2);
    NODE(g, "Det", 11, IN(INPUT(g, "mat", DT_DOUBLE, 4, 2, 3, 3)), OUT("det"));
    NODE(g, "ReverseSequence", 10, IN(INPUT(g, "rs", DT_INT32, 4, 3, 2), INPUT(g, "lens", DT_INT64, 3)), OUT("rev"));
    n = NODE(g, "TfIdfVectorizer", 9, IN(INPUT(g, "tok", DT_INT64, 2, 5)), OUT("tf"));
    attr_int(g, n, "min_gram_length", 1);
    attr_int(g, n, "max_gram_length", 2);
    ATTR_INTS(g, n, "ngram_counts", 0, 3);
    ATTR_INTS(g, n, "ngram_indexes", 3, 0, 1, 6);
    ATTR_INTS(g, n, "pool_int64s", 1, 2, 3, 1, 2);
    attr_str(g, n, "mode", "TF");
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK_STR(shp(m, "gs"), "[N,3,6,7]");
    CHECK_STR(shp(m, "ra"), "[9,3,2,3]");
    CHECK_STR(shp(m, "mu"), "[1,2,6,6]");
    CHECK_STR(shp(m, "det"), "[4,2]");
    CHECK_STR(shp(m, "rev"), "[4,3,2]");
    CHECK_STR(shp(m, "tf"), "[2,7]");
    model_free(m);

    /* refusals: an unknown mode, n-grams that ngram_indexes does not cover, a bad axis pair, a non-square Det */
    m = new_model();
    g = m->graph;
    n = NODE(g, "GridSample", 16, IN(INPUT(g, "x", DT_FLOAT, 1, 1, 4, 4), INPUT(g, "gr", DT_FLOAT, 1, 2, 2, 2)), OUT("y"));
    attr_str(g, n, "mode", "area");
    CHECK_EQ_INT(run(m, 0), ST_UNSUPPORTED);
    CHECK(msg_has("attribute mode 'area' is not supported"));
    model_free(m);
    m = new_model();
    g = m->graph;
    n = NODE(g, "TfIdfVectorizer", 9, IN(INPUT(g, "tok", DT_INT32, 5)), OUT("tf"));
    attr_int(g, n, "min_gram_length", 1);
    attr_int(g, n, "max_gram_length", 1);
    ATTR_INTS(g, n, "ngram_counts", 0);
    ATTR_INTS(g, n, "ngram_indexes", 0, 1);
    ATTR_INTS(g, n, "pool_int64s", 4, 5, 6);
    CHECK_EQ_INT(run(m, 0), ST_INVALID);
    CHECK(msg_has("pool_int64s holds 3 n-grams but ngram_indexes has 2 values"));
    model_free(m);
    m = new_model();
    g = m->graph;
    n = NODE(g, "ReverseSequence", 10, IN(INPUT(g, "rs", DT_FLOAT, 4, 3), INPUT(g, "lens", DT_INT64, 4)), OUT("rev"));
    attr_int(g, n, "batch_axis", 2);
    CHECK_EQ_INT(run(m, 0), ST_INVALID);
    CHECK(msg_has("batch_axis 2 and time_axis 0"));
    model_free(m);
    m = new_model();
    g = m->graph;
    NODE(g, "Det", 11, IN(INPUT(g, "mat", DT_FLOAT, 2, 3)), OUT("det"));
    CHECK_EQ_INT(run(m, 0), ST_SHAPE);
    CHECK(msg_has("must be [*, M, M]"));
    model_free(m);
}

/* The preview.training ops: outputs mirror the parameters; counts must fit R, T and groups. */
static void test_optim_shapes(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *r = INPUT(g, "r", DT_FLOAT), *t = INPUT(g, "t", DT_INT64);
    Value *x1 = INPUT(g, "x1", DT_FLOAT, 3), *x2 = INPUT(g, "x2", DT_FLOAT, 2, 2);
    Value *g1 = INPUT(g, "g1", DT_FLOAT, 3), *g2 = INPUT(g, "g2", DT_FLOAT, 2, 2);
    Value *v1 = INPUT(g, "v1", DT_FLOAT, 3), *v2 = INPUT(g, "v2", DT_FLOAT, 2, 2);
    Value *h1 = INPUT(g, "h1", DT_FLOAT, 3), *h2 = INPUT(g, "h2", DT_FLOAT, 2, 2);
    Value *ins[] = {r, t, x1, x2, g1, g2, v1, v2, h1, h2};
    const char *outs[] = {"x1n", "x2n", "v1n", "v2n", "h1n", "h2n"};
    Value *ov[6];
    for (int i = 0; i < 6; i++)
        ov[i] = graph_add_value(g, outs[i], &diag);
    Node *n = graph_add_node(g, "Adam", "ai.onnx.preview.training", NULL, 10, ins, 6, ov, &diag);
    n->opset = 1;
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK(!strcmp(shp(m, "x1n"), "[3]") && !strcmp(shp(m, "v2n"), "[2,2]") && !strcmp(shp(m, "h2n"), "[2,2]"));
    CHECK(node_attr(n, "epsilon") && node_attr_float(n, "epsilon", 0) == 1e-6f); /* Adam-1's default */
    model_free(m);

    m = new_model();
    g = m->graph;
    r = INPUT(g, "r", DT_FLOAT), t = INPUT(g, "t", DT_INT64), x1 = INPUT(g, "x1", DT_FLOAT, 3);
    Value *ins2[] = {r, t, x1, x1};
    Value *o2[] = {graph_add_value(g, "y", &diag)};
    n = graph_add_node(g, "Momentum", "ai.onnx.preview.training", NULL, 4, ins2, 1, o2, &diag);
    n->opset = 1;
    CHECK_EQ_INT(run(m, 0), ST_INVALID);
    CHECK(msg_has("expects R, T, then 3 tensors per parameter"));
    model_free(m);
}

/* ======================================================================== fold-only ops */

/* Unique and NonMaxSuppression: sizes only for constant inputs; then folded to the right values. */
static void test_fold_only(void)
{
    Model *m = new_model();
    Graph *g = m->graph;
    Value *u = const_tensor(g, "u", DT_INT64, 1, (int64_t[]){7}, (double[]){4, 1, 4, 9, 1, 1, -2});
    Node *n = NODE(g, "Unique", 11, IN(u), OUT("y", "i", "inv", "c"));
    attr_int(g, n, "sorted", 0);
    NODE(g, "Unique", 11, IN(INPUT(g, "rt", DT_FLOAT, 5)), OUT("ry", "ri", "rinv", "rc"));
    /* boxes 0 and 1 overlap with IoU 0.9, box 2 is apart; score_threshold 0.5 leaves class 1 only box 2 */
    Value *boxes = const_tensor(g, "boxes", DT_FLOAT, 3, (int64_t[]){1, 3, 4},
                                (double[]){0, 0, 10, 10, 0, 1, 10, 10, 20, 20, 30, 30});
    Value *scores = const_tensor(g, "scores", DT_FLOAT, 3, (int64_t[]){1, 2, 3}, (double[]){0.6, 0.9, 0.7, 0.2, 0.4, 0.8});
    Value *maxo = const_tensor(g, "maxo", DT_INT64, 1, (int64_t[]){1}, (double[]){5});
    Value *iou = const_tensor(g, "iou", DT_FLOAT, 1, (int64_t[]){1}, (double[]){0.5});
    Value *sth = const_tensor(g, "sth", DT_FLOAT, 1, (int64_t[]){1}, (double[]){0.5});
    NODE(g, "NonMaxSuppression", 11, IN(boxes, scores, maxo, iou, sth), OUT("sel"));
    for (const char *o = "y\0i\0inv\0c\0sel\0"; *o; o += strlen(o) + 1)
        graph_add_output(g, val(m, o));
    CHECK_EQ_INT(run(m, 0), ST_OK);
    CHECK(!strcmp(shp(m, "y"), "[4]") && !strcmp(shp(m, "inv"), "[7]") && !strcmp(shp(m, "ry"), "[?]"));
    int64_t want_y[] = {4, 1, 9, -2}, want_i[] = {0, 1, 3, 6}, want_inv[] = {0, 1, 0, 2, 1, 1, 3}, want_c[] = {2, 3, 1, 1};
    for (size_t k = 0; k < 4; k++)
        CHECK(ival(m, "y", k) == want_y[k] && ival(m, "i", k) == want_i[k] && ival(m, "c", k) == want_c[k]);
    for (size_t k = 0; k < 7; k++)
        CHECK_EQ_INT(ival(m, "inv", k), want_inv[k]);
    CHECK_STR(shp(m, "sel"), "[3,3]");
    int64_t want_sel[] = {0, 0, 1, 0, 0, 2, 0, 1, 2}; /* (batch, class, box): class 0 keeps 1 then 2 */
    for (size_t k = 0; k < 9; k++)
        CHECK_EQ_INT(ival(m, "sel", k), want_sel[k]);
    model_free(m);
}

int main(void)
{
    test_quant_shapes();
    test_signal_shapes();
    test_image_misc_shapes();
    test_optim_shapes();
    test_fold_only();
    return test_summary("test_ops_misc");
}
