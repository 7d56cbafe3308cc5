/* test_import.c - the importer on models built in C: graph structure, types, initializers and
 * defaults, every attribute kind, Constant forms, subgraphs, function inlining, naming, ordering,
 * and the structural errors (duplicates, undefined inputs, cycles, opsets).
 * Tensor encodings and external data are tests/test_import_tensor.c's.
 */
#include "test.h"
#include "test_import_fixtures.h"

#include <sys/resource.h>

#define FLOAT_T ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define INT64_T ONNX__TENSOR_PROTO__DATA_TYPE__INT64

/* X[N,3] @ W[3,2] + B (B is an input with a default), Y declared as output. */
static Onnx__ModelProto *basic_model(void)
{
    Onnx__GraphProto *g = fx_graph("basic");
    const char *syms[] = {"N", NULL};
    const int64_t xd[] = {-1, 3}, wd[] = {3, 2}, bd[] = {2};
    float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {0.5f, -0.5f};
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, 2, xd, syms));
    FX_PUSH(g, input, fx_vi("B", FLOAT_T, 1, bd, NULL));
    FX_PUSH(g, initializer, fx_tensor_raw("W", FLOAT_T, 2, wd, w, sizeof w));
    FX_PUSH(g, initializer, fx_tensor_floats("B", 1, bd, b, 2));
    FX_PUSH(g, node, fx_node("MatMul", "mm", "X,W", "XW"));
    FX_PUSH(g, node, fx_node("Add", "", "XW,B", "Y"));
    FX_PUSH(g, output, fx_vi("Y", FLOAT_T, 2, xd, syms));
    Onnx__ModelProto *m = fx_model(g, 8, 17);
    FX_PUSH(m, opset_import, fx_opset("ai.onnx.ml", 3));
    Onnx__StringStringEntryProto *e = fx_alloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = fx_str("author");
    e->value = fx_str("tests");
    FX_PUSH(m, metadata_props, e);
    return m;
}

static void test_basic(void)
{
    Model *m;
    Diag d;
    Status st = fx_import(basic_model(), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    Graph *g = m->graph;
    CHECK_EQ_INT(m->ir_version, 8);
    CHECK_STR(m->producer_name, "onnxtune-tests");
    CHECK_EQ_INT(model_opset(m, ""), 17);
    CHECK_EQ_INT(model_opset(m, "ai.onnx"), 17);
    CHECK_EQ_INT(model_opset(m, "ai.onnx.ml"), 3);
    CHECK_EQ_INT(m->nprops, 1);
    CHECK_STR(m->props[0].value, "tests");
    CHECK_STR(g->name, "basic");
    CHECK(g->parent == NULL);
    CHECK_EQ_INT(g->ninputs, 2);
    CHECK_EQ_INT(g->noutputs, 1);
    CHECK_EQ_INT(g->nnodes, 2);
    Value *x = graph_find(g, "X"), *w = graph_find(g, "W"), *b = graph_find(g, "B"), *y = graph_find(g, "Y");
    CHECK(x && w && b && y);
    if (!x || !w || !b || !y)
        return;
    CHECK(g->inputs[0] == x && g->inputs[1] == b);
    CHECK(x->is_input && !x->is_initializer && !x->init);
    CHECK_EQ_INT(x->dtype, DT_FLOAT);
    CHECK_EQ_INT(x->shape.rank, 2);
    CHECK_EQ_INT(x->shape.dim[0], -1);
    CHECK_STR(x->shape.sym[0], "N");
    CHECK_EQ_INT(x->shape.dim[1], 3);
    /* W: a plain initializer (weight) */
    CHECK(w->is_initializer && !w->is_input && w->init && value_is_const(w));
    CHECK_EQ_INT(w->shape.rank, 2);
    CHECK_EQ_INT(w->init->numel, 6);
    CHECK_EQ_INT(w->init->nbytes, 24);
    CHECK_NEAR(tensor_get_f64(w->init, 5), 6.0, 0);
    /* B: an input whose initializer is its default: one value, both flags, not a constant */
    CHECK(b->is_initializer && b->is_input && b->init && !value_is_const(b));
    CHECK_NEAR(tensor_get_f64(b->init, 1), -0.5, 0);
    const Node *mm = fx_find_node(g, "mm"), *add = fx_find_node(g, "Add_1");
    CHECK(mm && add);
    if (!mm || !add)
        return;
    CHECK_STR(mm->op_type, "MatMul");
    CHECK_STR(mm->domain, "");
    CHECK_EQ_INT(mm->opset, 17);
    CHECK(mm->inputs[0] == x && mm->inputs[1] == w);
    CHECK(add->inputs[0] == mm->outputs[0] && add->inputs[1] == b);
    CHECK(y->producer == add && y->is_output && g->outputs[0] == y);
    CHECK_STR(y->shape.sym[0], "N");
    model_free(m);
}

/* Every attribute kind, with values read back. */
static void test_attributes(void)
{
    Onnx__GraphProto *g = fx_graph("attrs");
    const int64_t one[] = {1}, d3[] = {3};
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, 1, one, NULL));
    Onnx__NodeProto *n = fx_node("Custom", "c", "X", "Y");
    n->domain = fx_str("my.domain");
    Onnx__AttributeProto *a;
    a = fx_attr(n, "f", AT_FLOAT), a->has_f = 1, a->f = 2.5f;
    a = fx_attr(n, "i", AT_INT), a->has_i = 1, a->i = -7;
    a = fx_attr(n, "s", AT_STRING), a->has_s = 1, a->s.len = 5, a->s.data = (uint8_t *)fx_str("ab\0cd");
    memcpy(a->s.data, "ab\0cd", 5);
    a = fx_attr(n, "t", AT_TENSOR), a->t = fx_tensor_floats("", 1, one, (float[]){4}, 1);
    a = fx_attr(n, "fs", AT_FLOATS), a->n_floats = 2, a->floats = fx_alloc(8);
    a->floats[0] = 1, a->floats[1] = -1;
    a = fx_attr(n, "is", AT_INTS), a->n_ints = 3, a->ints = fx_alloc(24);
    a->ints[0] = 1, a->ints[1] = 2, a->ints[2] = INT64_MIN;
    a = fx_attr(n, "ss", AT_STRINGS), a->n_strings = 2, a->strings = fx_alloc(2 * sizeof *a->strings);
    a->strings[0] = (ProtobufCBinaryData){3, (uint8_t *)fx_str("abc")};
    a->strings[1] = (ProtobufCBinaryData){0, NULL};
    a = fx_attr(n, "ts", AT_TENSORS);
    FX_PUSH(a, tensors, fx_tensor_floats("", 1, one, (float[]){1}, 1));
    FX_PUSH(a, tensors, fx_tensor_floats("", 1, d3, (float[]){1, 2, 3}, 3));
    /* a sparse tensor [3] with value 9 at index 2 */
    Onnx__SparseTensorProto *sp = fx_alloc(sizeof *sp);
    onnx__sparse_tensor_proto__init(sp);
    sp->values = fx_tensor_floats("", 1, one, (float[]){9}, 1);
    sp->indices = fx_tensor("", INT64_T, 1, one);
    sp->indices->n_int64_data = 1, sp->indices->int64_data = fx_alloc(8), sp->indices->int64_data[0] = 2;
    sp->n_dims = 1, sp->dims = fx_alloc(8), sp->dims[0] = 3;
    a = fx_attr(n, "sp", AT_SPARSE_TENSOR), a->sparse_tensor = sp;
    a = fx_attr(n, "sps", AT_SPARSE_TENSORS);
    FX_PUSH(a, sparse_tensors, sp);
    a = fx_attr(n, "tp", AT_TYPE_PROTO), a->tp = fx_vi("", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, -1,
                                                       NULL, NULL)->type;
    a = fx_attr(n, "tps", AT_TYPE_PROTOS);
    FX_PUSH(a, type_protos, fx_vi("", INT64_T, -1, NULL, NULL)->type);
    /* a graph reading the outer X */
    Onnx__GraphProto *sub = fx_graph("body");
    FX_PUSH(sub, node, fx_node("Neg", "neg", "X", "nx"));
    FX_PUSH(sub, output, fx_vi("nx", FLOAT_T, -1, NULL, NULL));
    a = fx_attr(n, "g", AT_GRAPH), a->g = sub;
    a = fx_attr(n, "gs", AT_GRAPHS);
    FX_PUSH(a, graphs, fx_graph("empty"));
    /* an attribute without its type field (old exporters): inferred from the value */
    a = fx_attr(n, "untyped", 0), a->has_type = 0, a->has_i = 1, a->i = 42;
    FX_PUSH(g, node, n);
    FX_PUSH(g, output, fx_vi("Y", FLOAT_T, -1, NULL, NULL));
    Onnx__ModelProto *mp = fx_model(g, 8, 17);
    FX_PUSH(mp, opset_import, fx_opset("my.domain", 1));

    Model *m;
    Diag d;
    Status st = fx_import(mp, &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    const Node *c = m->graph->nodes[0];
    CHECK_STR(c->domain, "my.domain");
    CHECK_EQ_INT(c->opset, 1);
    CHECK(c->rule == NULL);
    CHECK_EQ_INT(c->nattrs, 15);
    const Attr *at;
    CHECK((at = node_attr(c, "f")) && at->type == AT_FLOAT && at->f == 2.5f);
    CHECK_EQ_INT(node_attr_int(c, "i", 0), -7);
    CHECK((at = node_attr(c, "s")) && at->type == AT_STRING && at->slen == 5 && memcmp(at->s, "ab\0cd", 6) == 0);
    CHECK((at = node_attr(c, "t")) && at->type == AT_TENSOR && at->t && tensor_get_f64(at->t, 0) == 4);
    CHECK((at = node_attr(c, "fs")) && at->n == 2 && at->floats[1] == -1);
    CHECK((at = node_attr(c, "is")) && at->n == 3 && at->ints[2] == INT64_MIN);
    CHECK((at = node_attr(c, "ss")) && at->n == 2 && strcmp(at->strings[0], "abc") == 0 &&
          strcmp(at->strings[1], "") == 0);
    CHECK((at = node_attr(c, "ts")) && at->n == 2 && at->tensors[1]->numel == 3 &&
          tensor_get_f64(at->tensors[1], 2) == 3);
    at = node_attr(c, "sp");
    CHECK(at && at->type == AT_TENSOR && at->t && at->t->numel == 3); /* densified */
    if (at && at->t) {
        CHECK_NEAR(tensor_get_f64(at->t, 0), 0, 0);
        CHECK_NEAR(tensor_get_f64(at->t, 2), 9, 0);
    }
    CHECK((at = node_attr(c, "sps")) && at->type == AT_TENSORS && at->n == 1 &&
          tensor_get_f64(at->tensors[0], 2) == 9);
    CHECK((at = node_attr(c, "tp")) && at->type == AT_TYPE_PROTO && at->i == DT_FLOAT16);
    CHECK((at = node_attr(c, "tps")) && at->n == 1 && at->ints[0] == DT_INT64);
    at = node_attr(c, "g");
    CHECK(at && at->type == AT_GRAPH && at->g);
    if (at && at->g) {
        Graph *sg = at->g;
        CHECK(sg->parent == m->graph);
        CHECK_STR(sg->name, "body");
        CHECK_EQ_INT(sg->nnodes, 1);
        CHECK(sg->nodes[0]->inputs[0] == graph_find(m->graph, "X")); /* outer-scope read */
        CHECK(graph_find(sg, "X") == graph_find(m->graph, "X"));
        CHECK(graph_find_local(sg, "X") == NULL);
        CHECK(sg->noutputs == 1 && sg->outputs[0]->producer == sg->nodes[0]);
    }
    CHECK((at = node_attr(c, "gs")) && at->n == 1 && at->graphs[0]->parent == m->graph);
    CHECK((at = node_attr(c, "untyped")) && at->type == AT_INT && at->i == 42);
    model_free(m);
}

/* Constant in all its forms stays a Constant node with its attribute. */
static void test_constants(void)
{
    Onnx__GraphProto *g = fx_graph("consts");
    const int64_t one[] = {1};
    const char *forms[] = {"value", "value_float", "value_floats", "value_int", "value_ints",
                           "value_string", "value_strings", "sparse_value"};
    for (int k = 0; k < 8; k++) {
        char out[32];
        snprintf(out, sizeof out, "c%d", k);
        Onnx__NodeProto *n = fx_node("Constant", "", "", out);
        Onnx__AttributeProto *a;
        switch (k) {
        case 0: a = fx_attr(n, forms[k], AT_TENSOR), a->t = fx_tensor_floats("", 1, one, (float[]){3}, 1); break;
        case 1: a = fx_attr(n, forms[k], AT_FLOAT), a->has_f = 1, a->f = 1.5f; break;
        case 2: a = fx_attr(n, forms[k], AT_FLOATS), a->n_floats = 1, a->floats = fx_alloc(4), a->floats[0] = 2; break;
        case 3: a = fx_attr(n, forms[k], AT_INT), a->has_i = 1, a->i = 5; break;
        case 4: a = fx_attr(n, forms[k], AT_INTS), a->n_ints = 1, a->ints = fx_alloc(8), a->ints[0] = 6; break;
        case 5: a = fx_attr(n, forms[k], AT_STRING), a->has_s = 1, a->s = (ProtobufCBinaryData){2, (uint8_t *)fx_str("hi")}; break;
        case 6: a = fx_attr(n, forms[k], AT_STRINGS), a->n_strings = 1, a->strings = fx_alloc(sizeof *a->strings),
                a->strings[0] = (ProtobufCBinaryData){1, (uint8_t *)fx_str("x")}; break;
        default: {
            Onnx__SparseTensorProto *sp = fx_alloc(sizeof *sp);
            onnx__sparse_tensor_proto__init(sp);
            const int64_t d2[] = {2};
            sp->values = fx_tensor_floats("", 1, one, (float[]){7}, 1);
            int64_t idx = 1;
            sp->indices = fx_tensor_raw("", INT64_T, 1, one, &idx, 8);
            sp->n_dims = 1, sp->dims = fx_alloc(8), sp->dims[0] = d2[0];
            a = fx_attr(n, forms[k], AT_SPARSE_TENSOR), a->sparse_tensor = sp;
        }
        }
        FX_PUSH(g, node, n);
        FX_PUSH(g, output, fx_vi(out, FLOAT_T, -1, NULL, NULL));
    }
    Model *m;
    Diag d;
    Status st = fx_import(fx_model(g, 8, 17), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    CHECK_EQ_INT(m->graph->nnodes, 8);
    for (int k = 0; k < 8 && k < (int)m->graph->nnodes; k++) {
        const Node *n = m->graph->nodes[k];
        CHECK_STR(n->op_type, "Constant");
        CHECK(n->nattrs == 1 && strcmp(n->attrs[0].name, forms[k]) == 0);
        CHECK(n->outputs[0]->init == NULL); /* folding, not the importer, makes constants */
    }
    const Attr *sv = node_attr(m->graph->nodes[7], "sparse_value");
    CHECK(sv && sv->type == AT_TENSOR && sv->t && sv->t->numel == 2 && tensor_get_f64(sv->t, 1) == 7 && tensor_get_f64(sv->t, 0) == 0);
    CHECK(node_attr(m->graph->nodes[5], "value_string")->slen == 2);
    model_free(m);
}

/* Names: invented for unnamed nodes; "" inputs are NULL; "" outputs get fresh values. */
static void test_naming_and_omitted(void)
{
    Onnx__GraphProto *g = fx_graph("g");
    const int64_t d4[] = {4};
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, 1, d4, NULL));
    FX_PUSH(g, node, fx_node("Relu", "", "X", "r"));
    FX_PUSH(g, node, fx_node("Clip", "", "r,,", "c"));
    FX_PUSH(g, node, fx_node("Dropout", "drop", "c", "y,"));
    /* an exported name that an invented one could collide with */
    FX_PUSH(g, node, fx_node("Identity", "", "y", "drop_out1"));
    FX_PUSH(g, output, fx_vi("drop_out1", FLOAT_T, -1, NULL, NULL));
    Model *m;
    Diag d;
    Status st = fx_import(fx_model(g, 8, 13), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    Graph *mg = m->graph;
    CHECK(fx_find_node(mg, "Relu_0") != NULL);
    const Node *clip = fx_find_node(mg, "Clip_1"), *drop = fx_find_node(mg, "drop");
    CHECK(clip && clip->ninputs == 3 && clip->inputs[0] && !clip->inputs[1] && !clip->inputs[2]);
    CHECK(drop && drop->noutputs == 2 && drop->outputs[1] != NULL);
    if (drop && drop->outputs[1]) {
        CHECK(drop->outputs[1]->producer == drop && drop->outputs[1]->producer_slot == 1);
        CHECK(strcmp(drop->outputs[1]->name, "drop_out1") != 0);
        CHECK(graph_find(mg, drop->outputs[1]->name) == drop->outputs[1]);
    }
    model_free(m);
}

/* Types of graph values: value_info, sequences, maps, optionals, sparse, rank limits. */
static void test_types(void)
{
    Onnx__GraphProto *g = fx_graph("types");
    const int64_t d[] = {2, -1, 5}, neg[] = {-1};
    Onnx__ValueInfoProto *seq = fx_vi("S", FLOAT_T, 1, neg, NULL);
    Onnx__TypeProto *inner = seq->type;
    Onnx__TypeProto *outer = fx_alloc(sizeof *outer);
    onnx__type_proto__init(outer);
    outer->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    outer->sequence_type = fx_alloc(sizeof *outer->sequence_type);
    onnx__type_proto__sequence__init(outer->sequence_type);
    outer->sequence_type->elem_type = inner;
    seq->type = outer;
    FX_PUSH(g, input, seq);
    Onnx__ValueInfoProto *opt = fx_vi("O", INT64_T, 3, d, NULL);
    Onnx__TypeProto *o = fx_alloc(sizeof *o);
    onnx__type_proto__init(o);
    o->value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
    o->optional_type = fx_alloc(sizeof *o->optional_type);
    onnx__type_proto__optional__init(o->optional_type);
    o->optional_type->elem_type = opt->type;
    opt->type = o;
    FX_PUSH(g, input, opt);
    Onnx__ValueInfoProto *mp = fx_vi("M", FLOAT_T, -1, NULL, NULL);
    Onnx__TypeProto *mt = fx_alloc(sizeof *mt);
    onnx__type_proto__init(mt);
    mt->value_case = ONNX__TYPE_PROTO__VALUE_MAP_TYPE;
    mt->map_type = fx_alloc(sizeof *mt->map_type);
    onnx__type_proto__map__init(mt->map_type);
    mt->map_type->has_key_type = 1, mt->map_type->key_type = INT64_T;
    mt->map_type->value_type = mp->type;
    mp->type = mt;
    FX_PUSH(g, input, mp);
    Onnx__ValueInfoProto *spv = fx_vi("SP", FLOAT_T, -1, NULL, NULL);
    Onnx__TypeProto *st_ = fx_alloc(sizeof *st_);
    onnx__type_proto__init(st_);
    st_->value_case = ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE;
    st_->sparse_tensor_type = fx_alloc(sizeof *st_->sparse_tensor_type);
    onnx__type_proto__sparse_tensor__init(st_->sparse_tensor_type);
    st_->sparse_tensor_type->has_elem_type = 1, st_->sparse_tensor_type->elem_type = FLOAT_T;
    spv->type = st_;
    FX_PUSH(g, input, spv);
    Onnx__ValueInfoProto *untyped = fx_vi("U", FLOAT_T, -1, NULL, NULL);
    untyped->type = NULL;
    FX_PUSH(g, input, untyped);
    FX_PUSH(g, input, fx_vi("neg", FLOAT_T, 1, (const int64_t[]){-3}, NULL));
    FX_PUSH(g, node, fx_node("Relu", "r", "neg", "t"));
    FX_PUSH(g, value_info, fx_vi("t", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 3, d, NULL));
    FX_PUSH(g, output, fx_vi("t", FLOAT_T, -1, NULL, NULL));
    Model *m;
    Diag dg;
    Status st = fx_import(fx_model(g, 8, 17), &m, &dg);
    CHECK_MSG(st == ST_OK, "%s", dg.msg);
    if (st)
        return;
    Value *v;
    CHECK((v = graph_find(m->graph, "S")) && v->kind == VK_SEQUENCE && v->dtype == DT_FLOAT && v->shape.rank == -1);
    CHECK((v = graph_find(m->graph, "O")) && v->kind == VK_OPTIONAL && v->dtype == DT_INT64 &&
          v->shape.rank == 3 && v->shape.dim[2] == 5 && v->shape.dim[1] == -1 && !v->shape.sym[1]);
    CHECK((v = graph_find(m->graph, "M")) && v->kind == VK_MAP && v->dtype == DT_FLOAT);
    CHECK((v = graph_find(m->graph, "SP")) && v->kind == VK_SPARSE && v->dtype == DT_FLOAT);
    CHECK((v = graph_find(m->graph, "U")) && v->dtype == DT_UNDEFINED && v->shape.rank == -1);
    CHECK((v = graph_find(m->graph, "neg")) && v->shape.rank == 1 && v->shape.dim[0] == -1);
    /* value_info wins over the graph output's declaration (it typed the value first) */
    CHECK((v = graph_find(m->graph, "t")) && v->dtype == DT_DOUBLE && v->shape.rank == 3);
    model_free(m);

    /* rank beyond IR_MAX_RANK */
    Onnx__GraphProto *g2 = fx_graph("deep");
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    FX_PUSH(g2, input, fx_vi("X", FLOAT_T, 9, nine, NULL));
    FX_PUSH(g2, output, fx_vi("X", FLOAT_T, -1, NULL, NULL));
    st = fx_import(fx_model(g2, 8, 17), &m, &dg);
    CHECK(st == ST_UNSUPPORTED && m == NULL && strstr(dg.msg, "graph input 'X'") && strstr(dg.msg, "rank 9"));
}

/* Subgraphs: If branches reading outer values, a branch returning an outer value, Loop body. */
static void test_subgraphs(void)
{
    Onnx__GraphProto *g = fx_graph("main");
    const int64_t one[] = {1};
    FX_PUSH(g, input, fx_vi("cond", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 0, NULL, NULL));
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, 1, one, NULL));
    Onnx__GraphProto *then_g = fx_graph("then");
    FX_PUSH(then_g, node, fx_node("Add", "then_add", "X,X", "tx"));
    FX_PUSH(then_g, output, fx_vi("tx", FLOAT_T, 1, one, NULL));
    Onnx__GraphProto *else_g = fx_graph("else");
    FX_PUSH(else_g, output, fx_vi("X", FLOAT_T, 1, one, NULL)); /* an outer value as output */
    Onnx__NodeProto *ifn = fx_node("If", "if", "cond", "r");
    fx_attr(ifn, "then_branch", AT_GRAPH)->g = then_g;
    fx_attr(ifn, "else_branch", AT_GRAPH)->g = else_g;
    FX_PUSH(g, node, ifn);
    /* Loop: body(i, c, acc) -> (c, acc + X), reading outer X and a value (r) defined before */
    Onnx__GraphProto *body = fx_graph("body");
    FX_PUSH(body, input, fx_vi("i", INT64_T, 0, NULL, NULL));
    FX_PUSH(body, input, fx_vi("c_in", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 0, NULL, NULL));
    FX_PUSH(body, input, fx_vi("acc", FLOAT_T, 1, one, NULL));
    FX_PUSH(body, initializer, fx_tensor_floats("k", 1, one, (float[]){2}, 1));
    FX_PUSH(body, node, fx_node("Identity", "", "c_in", "c_out"));
    FX_PUSH(body, node, fx_node("Mul", "", "r,k", "rk"));
    FX_PUSH(body, node, fx_node("Add", "", "acc,rk", "acc_out"));
    FX_PUSH(body, output, fx_vi("c_out", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 0, NULL, NULL));
    FX_PUSH(body, output, fx_vi("acc_out", FLOAT_T, 1, one, NULL));
    Onnx__NodeProto *loop = fx_node("Loop", "loop", "trip,,X", "final");
    fx_attr(loop, "body", AT_GRAPH)->g = body;
    /* the loop comes before the node defining its trip count: import must not mind the order */
    FX_PUSH(g, node, loop);
    Onnx__NodeProto *trip = fx_node("Constant", "trip_c", "", "trip");
    Onnx__AttributeProto *a = fx_attr(trip, "value_int", AT_INT);
    a->has_i = 1, a->i = 3;
    FX_PUSH(g, node, trip);
    FX_PUSH(g, output, fx_vi("final", FLOAT_T, 1, one, NULL));
    Model *m;
    Diag d;
    Status st = fx_import(fx_model(g, 8, 17), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    Graph *mg = m->graph;
    const Node *ifnode = fx_find_node(mg, "if"), *ln = fx_find_node(mg, "loop"), *tc = fx_find_node(mg, "trip_c");
    CHECK(ifnode && ln && tc);
    if (!ifnode || !ln || !tc)
        return;
    CHECK(tc->index < ln->index); /* toposorted */
    CHECK(ln->inputs[0] == tc->outputs[0] && ln->inputs[1] == NULL);
    Graph *tg = node_attr(ifnode, "then_branch")->g, *eg = node_attr(ifnode, "else_branch")->g;
    CHECK(tg->parent == mg && eg->parent == mg);
    CHECK(tg->nodes[0]->inputs[0] == graph_find(mg, "X"));
    /* the else branch got an Identity so its output is its own value */
    CHECK_EQ_INT(eg->nnodes, 1);
    if (eg->nnodes == 1) {
        CHECK_STR(eg->nodes[0]->op_type, "Identity");
        CHECK(eg->nodes[0]->inputs[0] == graph_find(mg, "X"));
        CHECK(eg->outputs[0] == eg->nodes[0]->outputs[0]);
        CHECK(graph_find_local(eg, eg->outputs[0]->name) == eg->outputs[0]);
    }
    Graph *bg = node_attr(ln, "body")->g;
    CHECK(bg->parent == mg && bg->ninputs == 3 && bg->noutputs == 2);
    Value *k = graph_find_local(bg, "k");
    CHECK(k && k->init && value_is_const(k));
    const Node *mul = fx_find_node(bg, "Mul_1");
    CHECK(mul && mul->inputs[0] == graph_find(mg, "r") && mul->inputs[1] == k);
    model_free(m);
}

/* Model-local functions: inlined, renamed, attributes substituted, nested calls. */
static Onnx__ModelProto *function_model(void)
{
    Onnx__GraphProto *g = fx_graph("main");
    const int64_t one[] = {1};
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, 1, one, NULL));
    FX_PUSH(g, input, fx_vi("B", FLOAT_T, 1, one, NULL));
    Onnx__ModelProto *mp = fx_model(g, 8, 17);
    FX_PUSH(mp, opset_import, fx_opset("custom", 1));
    /* ScaleAdd(x, b?) -> y = x * alpha + b ; b optional: y = x * alpha when omitted is not
     * expressible, so the body just passes the (possibly omitted) b to Sum's second slot */
    Onnx__FunctionProto *f = fx_function(mp, "custom", "ScaleAdd", "x,b", "y", "alpha,unused");
    Onnx__NodeProto *c = fx_node("Constant", "", "", "alpha_t");
    Onnx__AttributeProto *a = fx_attr(c, "value_float", AT_FLOAT);
    a->ref_attr_name = fx_str("alpha");
    FX_PUSH(f, node, c);
    FX_PUSH(f, node, fx_node("Mul", "mul", "x,alpha_t", "t"));
    Onnx__NodeProto *add = fx_node("Add", "add", "t,b", "y");
    a = fx_attr(add, "maybe", AT_INT); /* caller never sets it: dropped */
    a->ref_attr_name = fx_str("unused");
    FX_PUSH(f, node, add);
    /* Twice(x) -> z = ScaleAdd(ScaleAdd(x, x; alpha=k), x; alpha=k); k is Twice's attribute */
    Onnx__FunctionProto *tw = fx_function(mp, "custom", "Twice", "x", "z", "k");
    Onnx__NodeProto *c1 = fx_node("ScaleAdd", "first", "x,x", "h");
    c1->domain = fx_str("custom");
    a = fx_attr(c1, "alpha", AT_FLOAT), a->ref_attr_name = fx_str("k");
    FX_PUSH(tw, node, c1);
    Onnx__NodeProto *c2 = fx_node("ScaleAdd", "second", "h,x", "z");
    c2->domain = fx_str("custom");
    a = fx_attr(c2, "alpha", AT_FLOAT), a->ref_attr_name = fx_str("k");
    FX_PUSH(tw, node, c2);
    /* PassThrough(x) -> x: an output that is its input */
    fx_function(mp, "custom", "PassThrough", "x", "x", "");

    Onnx__NodeProto *call1 = fx_node("ScaleAdd", "call1", "X,B", "Y1");
    call1->domain = fx_str("custom");
    a = fx_attr(call1, "alpha", AT_FLOAT), a->has_f = 1, a->f = 2;
    FX_PUSH(g, node, call1);
    Onnx__NodeProto *call2 = fx_node("ScaleAdd", "call2", "Y1,B", "Y2");
    call2->domain = fx_str("custom");
    a = fx_attr(call2, "alpha", AT_FLOAT), a->has_f = 1, a->f = 3;
    FX_PUSH(g, node, call2);
    Onnx__NodeProto *call3 = fx_node("Twice", "call3", "Y2", "Y3");
    call3->domain = fx_str("custom");
    a = fx_attr(call3, "k", AT_FLOAT), a->has_f = 1, a->f = 5;
    FX_PUSH(g, node, call3);
    Onnx__NodeProto *call4 = fx_node("PassThrough", "call4", "Y3", "Y4");
    call4->domain = fx_str("custom");
    FX_PUSH(g, node, call4);
    FX_PUSH(g, output, fx_vi("Y4", FLOAT_T, 1, one, NULL));
    return mp;
}

static void test_functions(void)
{
    Model *m;
    Diag d;
    Status st = fx_import(function_model(), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    Graph *g = m->graph;
    /* 3 nodes per ScaleAdd: call1, call2, and two inside call3 = 12, plus one Identity */
    CHECK_EQ_INT(g->nnodes, 13);
    for (size_t i = 0; i < g->nnodes; i++)
        CHECK_MSG(strcmp(g->nodes[i]->domain, "") == 0, "node %s has domain %s", g->nodes[i]->name,
                  g->nodes[i]->domain);
    const Node *c1 = fx_find_node(g, "call1/Constant_0"), *mul1 = fx_find_node(g, "call1/mul");
    const Node *add1 = fx_find_node(g, "call1/add"), *c2 = fx_find_node(g, "call2/Constant_0");
    const Node *inner = fx_find_node(g, "call3/second/add"), *innerc = fx_find_node(g, "call3/first/Constant_0");
    CHECK(c1 && mul1 && add1 && c2 && inner && innerc);
    if (!(c1 && mul1 && add1 && c2 && inner && innerc))
        return;
    CHECK(node_attr(c1, "value_float") && node_attr_float(c1, "value_float", 0) == 2);
    CHECK(node_attr_float(c2, "value_float", 0) == 3);
    CHECK(node_attr_float(innerc, "value_float", 0) == 5);
    CHECK(node_attr(add1, "maybe") == NULL);
    CHECK_EQ_INT(add1->opset, 17);
    Value *x = graph_find(g, "X"), *b = graph_find(g, "B"), *y1 = graph_find(g, "Y1");
    CHECK(mul1->inputs[0] == x && mul1->inputs[1] == c1->outputs[0]);
    CHECK(add1->inputs[1] == b && add1->outputs[0] == y1 && y1->producer == add1);
    CHECK(mul1->outputs[0] != NULL && strncmp(mul1->outputs[0]->name, "call1/", 6) == 0);
    /* call1's "t" and call2's "t" are different values */
    CHECK(mul1->outputs[0] != fx_find_node(g, "call2/mul")->outputs[0]);
    /* nested: second ScaleAdd in Twice reads h from the first and x (Y2) */
    const Node *first_add = fx_find_node(g, "call3/first/add");
    CHECK(first_add && inner->inputs[0] == fx_find_node(g, "call3/second/mul")->outputs[0]);
    CHECK(fx_find_node(g, "call3/second/mul")->inputs[0] == first_add->outputs[0]);
    CHECK(inner->outputs[0] == graph_find(g, "Y3"));
    Value *y4 = graph_find(g, "Y4");
    CHECK(y4 && y4->producer && strcmp(y4->producer->op_type, "Identity") == 0 &&
          y4->producer->inputs[0] == graph_find(g, "Y3"));
    model_free(m);

    /* an omitted optional input passes through as NULL */
    Onnx__ModelProto *mp = function_model();
    mp->graph->node[0]->n_input = 1;
    st = fx_import(mp, &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (!st) {
        const Node *a = fx_find_node(m->graph, "call1/add");
        CHECK(a && a->ninputs == 2 && a->inputs[1] == NULL);
        model_free(m);
    }

    /* recursion is an error naming the function */
    mp = function_model();
    Onnx__FunctionProto *f = mp->functions[0];
    Onnx__NodeProto *self = fx_node("ScaleAdd", "self", "x,b", "s");
    self->domain = fx_str("custom");
    FX_PUSH(f, node, self);
    st = fx_import(mp, &m, &d);
    CHECK(st == ST_INVALID && !m && strstr(d.msg, "calls itself") && strstr(d.msg, "ScaleAdd"));

    /* a function that never computes its output */
    mp = function_model();
    mp->functions[0]->node[2]->output[0] = fx_str("not_y");
    st = fx_import(mp, &m, &d);
    CHECK(st == ST_INVALID && strstr(d.msg, "never computes its output") && strstr(d.msg, "'y'"));

    /* a body that reads a name it was not given */
    mp = function_model();
    mp->functions[0]->node[1]->input[0] = fx_str("X");
    st = fx_import(mp, &m, &d);
    CHECK(st == ST_INVALID && strstr(d.msg, "'X' is not defined") && strstr(d.msg, "call1/mul"));

    /* ref_attr_name outside a function */
    mp = basic_model();
    Onnx__AttributeProto *ra = fx_attr(mp->graph->node[0], "alpha", AT_FLOAT);
    ra->ref_attr_name = fx_str("alpha");
    st = fx_import(mp, &m, &d);
    CHECK(st == ST_INVALID && strstr(d.msg, "ref_attr_name") && strstr(d.msg, "node 'mm'"));
}

/* Graph attributes passed to a function by reference read names of the caller's scope. */
static void test_function_graph_attrs(void)
{
    Onnx__GraphProto *g = fx_graph("main");
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, -1, NULL, NULL));
    FX_PUSH(g, input, fx_vi("C", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 0, NULL, NULL));
    Onnx__ModelProto *mp = fx_model(g, 8, 17);
    Onnx__FunctionProto *f = fx_function(mp, "local", "MyIf", "c", "y", "then_g,else_g");
    Onnx__NodeProto *ifn = fx_node("If", "", "c", "y");
    fx_attr(ifn, "then_branch", AT_GRAPH)->ref_attr_name = fx_str("then_g");
    fx_attr(ifn, "else_branch", AT_GRAPH)->ref_attr_name = fx_str("else_g");
    FX_PUSH(f, node, ifn);
    Onnx__GraphProto *tg = fx_graph("then"), *eg = fx_graph("else");
    FX_PUSH(tg, node, fx_node("Neg", "neg", "X", "nx"));
    FX_PUSH(tg, output, fx_vi("nx", FLOAT_T, -1, NULL, NULL));
    FX_PUSH(eg, output, fx_vi("X", FLOAT_T, -1, NULL, NULL));
    Onnx__NodeProto *call = fx_node("MyIf", "call", "C", "Y");
    call->domain = fx_str("local");
    fx_attr(call, "then_g", AT_GRAPH)->g = tg;
    fx_attr(call, "else_g", AT_GRAPH)->g = eg;
    FX_PUSH(g, node, call);
    FX_PUSH(g, output, fx_vi("Y", FLOAT_T, -1, NULL, NULL));
    Model *m;
    Diag d;
    Status st = fx_import(mp, &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    const Node *n = fx_find_node(m->graph, "call/If_0");
    CHECK(n && n->inputs[0] == graph_find(m->graph, "C") && n->outputs[0] == graph_find(m->graph, "Y"));
    const Attr *ta = n ? node_attr(n, "then_branch") : NULL, *ea = n ? node_attr(n, "else_branch") : NULL;
    CHECK(ta && ta->g && ea && ea->g);
    if (ta && ta->g && ea && ea->g) {
        CHECK(ta->g->parent == m->graph);
        CHECK(ta->g->nnodes == 1 && ta->g->nodes[0]->inputs[0] == graph_find(m->graph, "X"));
        CHECK(ea->g->noutputs == 1 && ea->g->outputs[0]->producer &&
              ea->g->outputs[0]->producer->inputs[0] == graph_find(m->graph, "X"));
    }
    model_free(m);
}

/* Exponential inlining is refused rather than eating all memory. */
static void test_inline_blowup(void)
{
    Onnx__GraphProto *g = fx_graph("main");
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, -1, NULL, NULL));
    Onnx__ModelProto *mp = fx_model(g, 8, 17);
    char name[16], prev[16];
    fx_function(mp, "f", "F0", "x", "y", "");
    FX_PUSH(mp->functions[0], node, fx_node("Relu", "", "x", "y"));
    for (int k = 1; k <= 24; k++) {
        snprintf(name, sizeof name, "F%d", k);
        snprintf(prev, sizeof prev, "F%d", k - 1);
        Onnx__FunctionProto *f = fx_function(mp, "f", name, "x", "y", "");
        Onnx__NodeProto *a = fx_node(prev, "a", "x", "h"), *b = fx_node(prev, "b", "h", "y");
        a->domain = fx_str("f"), b->domain = fx_str("f");
        FX_PUSH(f, node, a);
        FX_PUSH(f, node, b);
    }
    Onnx__NodeProto *call = fx_node("F24", "top", "X", "Y");
    call->domain = fx_str("f");
    FX_PUSH(g, node, call);
    FX_PUSH(g, output, fx_vi("Y", FLOAT_T, -1, NULL, NULL));
    Model *m;
    Diag d;
    Status st = fx_import(mp, &m, &d);
    CHECK_MSG(st == ST_UNSUPPORTED && strstr(d.msg, "more than"), "%s", d.msg);

    /* the same through graph attributes passed down by reference, which the size estimate does
     * not see (2^16 calls pass the estimate, 2^16 copies of a 64-node graph do not) */
    g = fx_graph("main");
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, -1, NULL, NULL));
    mp = fx_model(g, 8, 17);
    Onnx__FunctionProto *g0 = fx_function(mp, "f", "G0", "x", "y", "body");
    Onnx__NodeProto *user = fx_node("Custom", "", "x", "y");
    fx_attr(user, "g", AT_GRAPH)->ref_attr_name = fx_str("body");
    FX_PUSH(g0, node, user);
    for (int k = 1; k <= 16; k++) {
        snprintf(name, sizeof name, "G%d", k);
        snprintf(prev, sizeof prev, "G%d", k - 1);
        Onnx__FunctionProto *f = fx_function(mp, "f", name, "x", "y", "body");
        Onnx__NodeProto *a = fx_node(prev, "a", "x", "h"), *b = fx_node(prev, "b", "h", "y");
        a->domain = fx_str("f"), b->domain = fx_str("f");
        fx_attr(a, "body", AT_GRAPH)->ref_attr_name = fx_str("body");
        fx_attr(b, "body", AT_GRAPH)->ref_attr_name = fx_str("body");
        FX_PUSH(f, node, a);
        FX_PUSH(f, node, b);
    }
    Onnx__GraphProto *body = fx_graph("b");
    for (int k = 0; k < 64; k++)
        FX_PUSH(body, node, fx_node("Relu", "", "X", ""));
    call = fx_node("G16", "top", "X", "Y");
    call->domain = fx_str("f");
    fx_attr(call, "body", AT_GRAPH)->g = body;
    FX_PUSH(g, node, call);
    FX_PUSH(g, output, fx_vi("Y", FLOAT_T, -1, NULL, NULL));
    st = fx_import(mp, &m, &d);
    CHECK_MSG(st == ST_UNSUPPORTED && strstr(d.msg, "more than"), "%s", d.msg);
}

static void expect_error(Onnx__ModelProto *mp, Status want, const char *sub1, const char *sub2, int line)
{
    Model *m = (Model *)1;
    Diag d;
    Status st = fx_import(mp, &m, &d);
    CHECK_MSG(st == want && m == NULL && strstr(d.msg, sub1) && (!sub2 || strstr(d.msg, sub2)),
              "line %d: status %s, message '%s'", line, status_name(st), d.msg);
}
#define EXPECT_ERROR(mp, st, s1, s2) expect_error(mp, st, s1, s2, __LINE__)

static void test_structural_errors(void)
{
    Onnx__ModelProto *mp;
    /* a value defined twice */
    mp = basic_model();
    mp->graph->node[1]->output[0] = fx_str("XW");
    EXPECT_ERROR(mp, ST_INVALID, "value 'XW' is defined twice", "node 'Add_1'");
    /* an initializer listed twice */
    mp = basic_model();
    FX_PUSH(mp->graph, initializer, fx_tensor_floats("W", 0, NULL, (float[]){1}, 1));
    EXPECT_ERROR(mp, ST_INVALID, "initializer 'W'", "defined twice");
    /* a node writing a graph input */
    mp = basic_model();
    mp->graph->node[0]->output[0] = fx_str("X");
    EXPECT_ERROR(mp, ST_INVALID, "'X' is defined twice", "node 'mm'");
    /* an input never defined */
    mp = basic_model();
    mp->graph->node[0]->input[1] = fx_str("nowhere");
    EXPECT_ERROR(mp, ST_INVALID, "node 'mm' (MatMul): input 1 'nowhere' is not defined", NULL);
    /* an output never computed */
    mp = basic_model();
    mp->graph->output[0]->name = fx_str("Z");
    EXPECT_ERROR(mp, ST_INVALID, "graph output 'Z'", "not computed");
    /* a cycle: mm reads Y, which Add computes from mm's output */
    mp = basic_model();
    mp->graph->node[0]->input[0] = fx_str("Y");
    EXPECT_ERROR(mp, ST_INVALID, "cycle", "node '");
    /* a node reading its own output */
    mp = basic_model();
    mp->graph->node[0]->input[1] = fx_str("XW");
    EXPECT_ERROR(mp, ST_INVALID, "cycle", "node 'mm'");
    /* input default of the wrong type */
    mp = basic_model();
    mp->graph->input[1]->type->tensor_type->elem_type = INT64_T;
    EXPECT_ERROR(mp, ST_INVALID, "graph input 'B'", "initializer is FLOAT");
    /* op_type missing */
    mp = basic_model();
    mp->graph->node[0]->op_type = fx_str("");
    EXPECT_ERROR(mp, ST_INVALID, "op_type is empty", NULL);
    /* duplicate attribute */
    mp = basic_model();
    fx_attr(mp->graph->node[0], "k", AT_INT)->has_i = 1;
    fx_attr(mp->graph->node[0], "k", AT_INT)->has_i = 1;
    EXPECT_ERROR(mp, ST_INVALID, "attribute 'k' appears twice", "node 'mm'");
    /* attribute with no type and no value */
    mp = basic_model();
    fx_attr(mp->graph->node[0], "k", 0)->has_type = 0;
    EXPECT_ERROR(mp, ST_UNSUPPORTED, "attribute 'k'", "type 0");
    /* missing graph, ir_version, opsets */
    mp = basic_model();
    mp->graph = NULL;
    EXPECT_ERROR(mp, ST_INVALID, "ModelProto.graph is missing", NULL);
    mp = basic_model();
    mp->has_ir_version = 0;
    EXPECT_ERROR(mp, ST_PARSE, "ir_version is missing", NULL);
    mp = basic_model();
    mp->ir_version = 2, mp->n_opset_import = 0;
    EXPECT_ERROR(mp, ST_UNSUPPORTED, "without opset_import", "IR version 3");
    mp = basic_model();
    mp->opset_import[1]->domain = fx_str("ai.onnx"); /* the same domain as "" */
    EXPECT_ERROR(mp, ST_INVALID, "opset_import lists domain '' twice", NULL);
    mp = basic_model();
    mp->opset_import[0]->domain = fx_str("other");
    EXPECT_ERROR(mp, ST_INVALID, "no version for the default domain", "node 'mm'");
    /* a duplicate function */
    mp = function_model();
    FX_PUSH(mp, functions, mp->functions[0]);
    EXPECT_ERROR(mp, ST_INVALID, "function 'ScaleAdd'", "defined twice");
    /* an undefined outer name inside a subgraph names the subgraph's node */
    mp = basic_model();
    Onnx__GraphProto *sub = fx_graph("sub");
    FX_PUSH(sub, node, fx_node("Neg", "inner", "ghost", "o"));
    FX_PUSH(sub, output, fx_vi("o", FLOAT_T, -1, NULL, NULL));
    fx_attr(mp->graph->node[0], "body", AT_GRAPH)->g = sub;
    EXPECT_ERROR(mp, ST_INVALID, "node 'mm' (MatMul) attribute 'body': node 'inner' (Neg): input 0 'ghost' "
                 "is not defined", NULL);
}

/* "ai.onnx" is the default domain; models using only another domain need no ai.onnx opset. */
static void test_domains(void)
{
    Onnx__GraphProto *g = fx_graph("g");
    FX_PUSH(g, input, fx_vi("X", FLOAT_T, -1, NULL, NULL));
    Onnx__NodeProto *n = fx_node("Relu", "r", "X", "Y");
    n->domain = fx_str("ai.onnx");
    FX_PUSH(g, node, n);
    Onnx__NodeProto *t = fx_node("Adagrad", "t", "X", "Z");
    t->domain = fx_str("ai.onnx.preview.training");
    FX_PUSH(g, node, t);
    FX_PUSH(g, output, fx_vi("Y", FLOAT_T, -1, NULL, NULL));
    FX_PUSH(g, output, fx_vi("Z", FLOAT_T, -1, NULL, NULL));
    Onnx__ModelProto *mp = fx_model(g, 7, 0);
    FX_PUSH(mp, opset_import, fx_opset("ai.onnx", 11));
    FX_PUSH(mp, opset_import, fx_opset("ai.onnx.preview.training", 1));
    Model *m;
    Diag d;
    Status st = fx_import(mp, &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    CHECK_STR(m->graph->nodes[0]->domain, "");
    CHECK_EQ_INT(m->graph->nodes[0]->opset, 11);
    CHECK_EQ_INT(m->graph->nodes[1]->opset, 1);
    model_free(m);
}

/* Many graph inputs, many attributes on one node, many nodes sharing a name: linear, not quadratic
 * (each of these once cost gigabytes). Checked by peak RSS, which the quadratic versions blow. */
static void test_scaling(void)
{
    enum { N = 20000 };
    Onnx__GraphProto *g = fx_graph("wide");
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "in%d", i);
        FX_PUSH(g, input, fx_vi(name, FLOAT_T, -1, NULL, NULL));
        FX_PUSH(g, output, fx_vi(name, FLOAT_T, -1, NULL, NULL));
    }
    Onnx__NodeProto *n = fx_node("Custom", "attrs", "in0", "y");
    n->domain = fx_str("d");
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "a%d", i);
        Onnx__AttributeProto *a = fx_attr(n, name, AT_INT);
        a->has_i = 1, a->i = i;
    }
    FX_PUSH(g, node, n);
    for (int i = 0; i < N / 4; i++) {
        snprintf(name, sizeof name, "o%d", i);
        char outs[48];
        snprintf(outs, sizeof outs, "%s,", name);
        FX_PUSH(g, node, fx_node("Dropout", "same", "in1", outs));
    }
    Model *m;
    Diag d;
    Status st = fx_import(fx_model(g, 8, 17), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    CHECK_MSG(ru.ru_maxrss < 200 * 1024, "peak RSS %ld kB", ru.ru_maxrss);
    printf("test_scaling: peak RSS %ld kB\n", ru.ru_maxrss);
    if (st)
        return;
    CHECK_EQ_INT(m->graph->ninputs, N);
    CHECK_EQ_INT(m->graph->noutputs, N);
    const Node *c = fx_find_node(m->graph, "attrs");
    CHECK(c && c->nattrs == N && node_attr_int(c, "a19999", -1) == 19999);
    CHECK_EQ_INT(m->graph->nnodes, 1 + N / 4);
    model_free(m);
}

/* Deeply nested subgraphs are refused before protobuf-c recurses into them. */
static void test_nesting_limit(void)
{
    Onnx__GraphProto *g = fx_graph("g0");
    Onnx__GraphProto *cur = g;
    for (int i = 0; i < 60; i++) {
        Onnx__GraphProto *sub = fx_graph("s");
        Onnx__NodeProto *n = fx_node("If", "", "", "");
        fx_attr(n, "then_branch", AT_GRAPH)->g = sub;
        FX_PUSH(cur, node, n);
        cur = sub;
    }
    Model *m;
    Diag d;
    Status st = fx_import(fx_model(g, 8, 17), &m, &d);
    CHECK_MSG(st == ST_UNSUPPORTED && strstr(d.msg, "nested"), "%s", d.msg);
}

int main(void)
{
    test_scaling(); /* first: it checks the process's peak RSS */
    test_basic();
    test_attributes();
    test_constants();
    test_naming_and_omitted();
    test_types();
    test_subgraphs();
    test_functions();
    test_function_graph_attrs();
    test_inline_blowup();
    test_structural_errors();
    test_domains();
    test_nesting_limit();
    fx_done();
    return test_summary("test_import");
}
