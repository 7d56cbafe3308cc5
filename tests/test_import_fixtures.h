/* test_import_fixtures.h - builds ONNX protobuf messages in C (protobuf-c structs, packed to bytes)
 * so importer tests make their own models without files or Python. Fixture memory lives in one
 * arena (fx_arena) freed by fx_done(); nothing here is used outside tests.
 */
#ifndef ONNXTUNE_TEST_IMPORT_FIXTURES_H
#define ONNXTUNE_TEST_IMPORT_FIXTURES_H

#include "importer.h"
#include "onnx.pb-c.h"

#include <stdlib.h>
#include <string.h>

static Arena *fx_arena;

static inline void *fx_alloc(size_t n)
{
    if (!fx_arena)
        fx_arena = arena_new();
    void *p = arena_alloc(fx_arena, n ? n : 1);
    if (!p) {
        fprintf(stderr, "fixture: out of memory\n");
        exit(2);
    }
    return p;
}

static inline void fx_done(void)
{
    arena_free(fx_arena);
    fx_arena = NULL;
}

static inline char *fx_str(const char *s)
{
    if (!s)
        return NULL;
    char *p = fx_alloc(strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

/* Append p to a protobuf-c repeated field (array *arr with count *n). Arrays built only by fx_push
 * have a power-of-two capacity, so they grow when the count is one. */
static inline void fx_push(void ***arr, size_t *n, void *p)
{
    if ((*n & (*n - 1)) == 0) {
        void **na = fx_alloc((*n ? 2 * *n : 1) * sizeof *na);
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
    }
    (*arr)[(*n)++] = p;
}
#define FX_PUSH(msg, field, p) fx_push((void ***)&(msg)->field, &(msg)->n_##field, (p))

/* "a,b,,c" -> {"a","b","","c"}; "" -> no names. */
static inline size_t fx_names(const char *list, char ***out)
{
    size_t n = 0;
    *out = NULL;
    if (!list || !*list)
        return 0;
    for (const char *p = list;; p++) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        char *s = fx_alloc(len + 1);
        memcpy(s, p, len);
        fx_push((void ***)out, &n, s);
        if (!q)
            break;
        p = q;
    }
    return n;
}

static inline Onnx__TensorProto *fx_tensor(const char *name, int dtype, int rank, const int64_t *dims)
{
    Onnx__TensorProto *t = fx_alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = fx_str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = fx_alloc(sizeof(int64_t) * (size_t)(rank ? rank : 1));
    if (rank)
        memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    return t;
}

static inline Onnx__TensorProto *fx_tensor_raw(const char *name, int dtype, int rank, const int64_t *dims,
                                        const void *data, size_t nbytes)
{
    Onnx__TensorProto *t = fx_tensor(name, dtype, rank, dims);
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = fx_alloc(nbytes);
    memcpy(t->raw_data.data, data, nbytes);
    return t;
}

static inline Onnx__TensorProto *fx_tensor_floats(const char *name, int rank, const int64_t *dims,
                                           const float *v, size_t n)
{
    Onnx__TensorProto *t = fx_tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims);
    t->n_float_data = n;
    t->float_data = fx_alloc(n * sizeof *v);
    memcpy(t->float_data, v, n * sizeof *v);
    return t;
}

/* A ValueInfo of a tensor; dims < 0 are unknown, syms[i] (may be NULL) names a symbolic dim.
 * rank < 0: no shape at all. */
static inline Onnx__ValueInfoProto *fx_vi(const char *name, int elem, int rank, const int64_t *dims,
                                   const char *const *syms)
{
    Onnx__ValueInfoProto *vi = fx_alloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = fx_str(name);
    Onnx__TypeProto *tp = vi->type = fx_alloc(sizeof *tp);
    onnx__type_proto__init(tp);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = fx_alloc(sizeof *tp->tensor_type);
    onnx__type_proto__tensor__init(tp->tensor_type);
    tp->tensor_type->has_elem_type = 1;
    tp->tensor_type->elem_type = elem;
    if (rank < 0)
        return vi;
    Onnx__TensorShapeProto *sh = tp->tensor_type->shape = fx_alloc(sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *dm = fx_alloc(sizeof *dm);
        onnx__tensor_shape_proto__dimension__init(dm);
        if (dims[i] >= 0) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dm->dim_value = dims[i];
        } else if (syms && syms[i]) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dm->dim_param = fx_str(syms[i]);
        }
        FX_PUSH(sh, dim, dm);
    }
    return vi;
}

static inline Onnx__NodeProto *fx_node(const char *op, const char *name, const char *inputs, const char *outputs)
{
    Onnx__NodeProto *n = fx_alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = fx_str(op);
    n->name = fx_str(name);
    n->n_input = fx_names(inputs, &n->input);
    n->n_output = fx_names(outputs, &n->output);
    return n;
}

static inline Onnx__AttributeProto *fx_attr(Onnx__NodeProto *n, const char *name, int type)
{
    Onnx__AttributeProto *a = fx_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = fx_str(name);
    a->has_type = 1;
    a->type = type;
    if (n)
        FX_PUSH(n, attribute, a);
    return a;
}

static inline Onnx__GraphProto *fx_graph(const char *name)
{
    Onnx__GraphProto *g = fx_alloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = fx_str(name);
    return g;
}

static inline Onnx__OperatorSetIdProto *fx_opset(const char *domain, int64_t version)
{
    Onnx__OperatorSetIdProto *o = fx_alloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = fx_str(domain);
    o->has_version = 1;
    o->version = version;
    return o;
}

static inline Onnx__ModelProto *fx_model(Onnx__GraphProto *g, int64_t ir_version, int64_t opset)
{
    Onnx__ModelProto *m = fx_alloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = ir_version;
    m->producer_name = fx_str("onnxtune-tests");
    m->graph = g;
    if (opset > 0)
        FX_PUSH(m, opset_import, fx_opset("", opset));
    return m;
}

static inline Onnx__FunctionProto *fx_function(Onnx__ModelProto *m, const char *domain, const char *name,
                                        const char *inputs, const char *outputs, const char *attrs)
{
    Onnx__FunctionProto *f = fx_alloc(sizeof *f);
    onnx__function_proto__init(f);
    f->domain = fx_str(domain);
    f->name = fx_str(name);
    f->n_input = fx_names(inputs, &f->input);
    f->n_output = fx_names(outputs, &f->output);
    f->n_attribute = fx_names(attrs, &f->attribute);
    FX_PUSH(f, opset_import, fx_opset("", 17));
    FX_PUSH(m, functions, f);
    return f;
}

static inline uint8_t *fx_pack(const Onnx__ModelProto *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = fx_alloc(*len);
    onnx__model_proto__pack(m, buf);
    return buf;
}

/* Pack and import; returns the status, *out the model (or NULL). The Diag message is in d. */
static inline Status fx_import(const Onnx__ModelProto *mp, Model **out, Diag *d)
{
    size_t len;
    uint8_t *buf = fx_pack(mp, &len);
    diag_init(d, NULL);
    return onnx_import_bytes(buf, len, NULL, out, d);
}

static inline const Node *fx_find_node(const Graph *g, const char *name)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0)
            return g->nodes[i];
    return NULL;
}

#endif
