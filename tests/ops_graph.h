/* ops_graph.h - building tiny graphs for the op-rule tests (test_ops_b.c, test_ops_misc.c): inputs with
 * unknown or symbolic dims, constants, nodes and attributes, running canonicalisation and shape inference
 * with folding, and reading shapes, constants and messages back. Include after test.h, in one test file. */
#ifndef ONNXTUNE_TESTS_OPS_GRAPH_H
#define ONNXTUNE_TESTS_OPS_GRAPH_H

#include "ir.h"

#include <stdio.h>
#include <string.h>

static Diag diag;

static inline Model *new_model(void)
{
    Model *m = model_new();
    m->graph = graph_new(m->arena, "g", NULL);
    diag_init(&diag, NULL);
    return m;
}

/* A graph input; dims < 0 are unknown, and named "N" when -2 (a symbolic batch). */
static inline Value *input(Graph *g, const char *name, DType t, int rank, const int64_t *dims)
{
    Value *v = graph_add_value(g, name, &diag);
    v->dtype = t;
    v->shape = shape_make(rank, dims);
    for (int i = 0; i < rank; i++)
        if (dims[i] == -2) {
            v->shape.dim[i] = -1;
            v->shape.sym[i] = "N";
        }
    graph_add_input(g, v);
    return v;
}
#define INPUT(g, name, t, ...) input(g, name, t, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                                     (int64_t[]){__VA_ARGS__})

static inline Value *const_tensor(Graph *g, const char *name, DType t, int rank, const int64_t *dims, const double *vals)
{
    Value *v = graph_add_value(g, name, &diag);
    Shape s = shape_make(rank, dims);
    v->init = tensor_new(g->arena, t, &s);
    v->dtype = t;
    v->shape = s;
    for (size_t i = 0; i < v->init->numel; i++)
        tensor_set_f64(v->init, i, vals[i]);
    return v;
}

/* 1-D int64 constant */
static inline Value *const_ints(Graph *g, const char *name, size_t n, const int64_t *vals)
{
    Value *v = graph_add_value(g, name, &diag);
    int64_t len = (int64_t)n;
    Shape s = shape_make(1, &len);
    v->init = tensor_new(g->arena, DT_INT64, &s);
    v->dtype = DT_INT64;
    v->shape = s;
    for (size_t i = 0; i < n; i++)
        ((int64_t *)v->init->data)[i] = vals[i];
    return v;
}
#define INTS(g, name, ...) const_ints(g, name, sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), \
                                      (int64_t[]){__VA_ARGS__})

static inline Node *add_node(Graph *g, const char *op, int opset, int nin, Value *const *ins, int nout,
                      const char *const *outs)
{
    Value *ov[16];
    for (int i = 0; i < nout; i++)
        ov[i] = graph_add_value(g, outs[i], &diag);
    Node *n = graph_add_node(g, op, "", NULL, nin, ins, nout, ov, &diag);
    n->opset = opset;
    return n;
}
#define NODE(g, op, opset, ins, outs) add_node(g, op, opset, (int)(sizeof(ins) / sizeof(Value *)), ins, \
                                               (int)(sizeof(outs) / sizeof(char *)), outs)
#define IN(...) ((Value *[]){__VA_ARGS__})
#define OUT(...) ((const char *[]){__VA_ARGS__})

static inline void attr_int(Graph *g, Node *n, const char *name, int64_t v)
{
    Attr a = {.name = name, .type = AT_INT, .i = v};
    node_add_attr(g, n, &a);
}

static inline void attr_ints(Graph *g, Node *n, const char *name, size_t k, const int64_t *v)
{
    Attr a = {.name = name, .type = AT_INTS, .n = k, .ints = (int64_t *)v};
    a.ints = arena_calloc(g->arena, k ? k : 1, sizeof(int64_t));
    for (size_t i = 0; i < k; i++)
        a.ints[i] = v[i];
    node_add_attr(g, n, &a);
}
#define ATTR_INTS(g, n, name, ...) attr_ints(g, n, name, sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), \
                                             (int64_t[]){__VA_ARGS__})

static inline void attr_str(Graph *g, Node *n, const char *name, const char *s)
{
    Attr a = {.name = name, .type = AT_STRING, .s = s, .slen = strlen(s)};
    node_add_attr(g, n, &a);
}

static inline void attr_float(Graph *g, Node *n, const char *name, float f)
{
    Attr a = {.name = name, .type = AT_FLOAT, .f = f};
    node_add_attr(g, n, &a);
}

static inline void attr_floats(Graph *g, Node *n, const char *name, size_t k, const float *v)
{
    Attr a = {.name = name, .type = AT_FLOATS, .n = k};
    a.floats = arena_calloc(g->arena, k, sizeof(float));
    for (size_t i = 0; i < k; i++)
        a.floats[i] = v[i];
    node_add_attr(g, n, &a);
}

/* Canonicalise and infer with folding; batch > 0 fixes unknown leading input dims. */
static inline Status run(Model *m, int64_t batch)
{
    diag_init(&diag, NULL);
    Status st = pass_canon(m, &diag);
    if (st)
        return st;
    ShapeOptions opt = {.batch = batch, .fold = true};
    return pass_shapes(m, &opt, &diag);
}

static inline Value *val(Model *m, const char *name)
{
    Value *v = graph_find(m->graph, name);
    if (!v)
        fprintf(stderr, "no value '%s'\n", name);
    return v;
}

/* Shape of a value as "[2,N,?]" (a few rotating buffers so two can be compared in one CHECK). */
static inline const char *shp(Model *m, const char *name)
{
    static char bufs[4][160];
    static int k;
    Value *v = val(m, name);
    char *b = bufs[k++ & 3];
    if (!v)
        return "(missing)";
    return shape_str(&v->shape, b, 160);
}

static inline bool msg_has(const char *needle)
{
    if (strstr(diag.msg, needle))
        return true;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", diag.msg, needle);
    return false;
}

static inline size_t live_nodes(Model *m, const char *op)
{
    size_t c = 0;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (!m->graph->nodes[i]->dead && (!op || strcmp(m->graph->nodes[i]->op_type, op) == 0))
            c++;
    return c;
}

static inline int64_t ival(Model *m, const char *name, size_t i)
{
    Value *v = val(m, name);
    if (!v || !v->init || i >= v->init->numel) {
        fprintf(stderr, "value '%s' has no constant element %zu\n", name, i);
        return -999999;
    }
    return tensor_get_i64(v->init, i);
}

#endif
