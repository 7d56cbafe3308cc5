/* test_codegen_memplan.c - ir/pass_memplan.c: a small graph with a view, an in-place op, scratch space
 * and an unread output, checked slot by slot; then the invariant on real models (models/): two arena
 * values whose lifetimes overlap never share bytes, unless one was written in place over the other
 * where that other dies. Offsets are 64-byte aligned and the arena is smaller than without reuse.
 * packed_graph: placing the largest blocks first fills the holes node order leaves.
 */
#include "test.h"

#include "importer.h"
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

static Node *node(Graph *g, const char *op, int nin, Value **in, Value *out)
{
    Diag d;
    diag_init(&d, NULL);
    return graph_add_node(g, op, "", op, nin, in, 1, &out, &d);
}

/* The planner's questions, answered the way codegen does for these ops. */
static bool is_view(const Node *n, void *ctx)
{
    (void)ctx;
    return !strcmp(n->op_type, "Reshape") || !strcmp(n->op_type, "Flatten") || !strcmp(n->op_type, "Squeeze") ||
           !strcmp(n->op_type, "Unsqueeze") || !strcmp(n->op_type, "Identity");
}

static bool can_reuse(const Node *n, int out, int in, void *ctx)
{
    (void)ctx;
    bool elementwise = !strcmp(n->op_type, "Neg") || !strcmp(n->op_type, "Relu") || !strcmp(n->op_type, "Add") ||
                       !strcmp(n->op_type, "Mul");
    return elementwise && out == 0 && shape_equal(&n->inputs[in]->shape, &n->outputs[0]->shape);
}

static size_t scratch(const Node *n, void *ctx)
{
    (void)ctx;
    return !strcmp(n->op_type, "Exp") ? 100 : !strcmp(n->op_type, "MatMul") ? 1000 : 0;
}

static void small_graph(void)
{
    Model *m = model_new();
    Graph *g = graph_new(m->arena, "g", NULL);
    m->graph = g;
    int64_t d64[1] = {64}, d8x8[2] = {8, 8}, d2[1] = {2};
    Value *x = tensor(g, "x", 1, d64), *a = tensor(g, "a", 1, d64), *b = tensor(g, "b", 1, d64);
    Value *shp = tensor(g, "shape", 1, d2), *c = tensor(g, "c", 2, d8x8), *dd = tensor(g, "d", 1, d64);
    Value *e = tensor(g, "e", 2, d8x8), *f = tensor(g, "f", 1, d64);
    shp->dtype = DT_INT64;
    shp->init = tensor_new(m->arena, DT_INT64, &shp->shape);
    x->is_input = true;
    CHECK(graph_add_input(g, x));
    node(g, "Relu", 1, &x, a);                          /* 0: a = relu(x) */
    node(g, "Neg", 1, &a, b);                           /* 1: b = -a, over a (a dies here) */
    node(g, "Reshape", 2, (Value *[]){b, shp}, c);      /* 2: c = b viewed [8,8] */
    node(g, "Exp", 1, &x, dd);                          /* 3: d = exp(x), with scratch */
    node(g, "Mul", 2, (Value *[]){c, c}, e);            /* 4: e = c*c, a graph output */
    node(g, "Neg", 1, &dd, f);                          /* 5: f = -d, read by nobody */
    e->is_output = true;
    CHECK(graph_add_output(g, e));

    MemPlanOptions o = {.is_view = is_view, .can_reuse = can_reuse, .scratch_bytes = scratch};
    MemPlan p;
    Diag d;
    diag_init(&d, NULL);
    CHECK_EQ_INT(pass_memplan(g, &o, &p, &d), ST_OK);
    CHECK_EQ_INT(p.slots[x->id].kind, MEM_INPUT);
    CHECK_EQ_INT(p.slots[shp->id].kind, MEM_CONST);
    CHECK_EQ_INT(p.slots[a->id].kind, MEM_ARENA);
    CHECK_EQ_INT(p.slots[b->id].kind, MEM_ARENA);
    CHECK_EQ_INT(p.slots[b->id].offset, p.slots[a->id].offset); /* in place */
    CHECK_EQ_INT(p.slots[c->id].kind, MEM_ALIAS);
    CHECK_EQ_INT(p.slots[c->id].alias, b->id);
    CHECK_EQ_INT(p.slots[e->id].kind, MEM_OUTPUT);
    CHECK_EQ_INT(p.slots[e->id].index, 0);
    CHECK_EQ_INT(p.slots[dd->id].kind, MEM_ARENA);
    /* b is alive (through its view c) while d and d's scratch are: three disjoint blocks */
    size_t ob = p.slots[b->id].offset, od = p.slots[dd->id].offset, os = p.scratch[3];
    CHECK(p.scratch_bytes[3] == 100);
    CHECK(ob + 256 <= od || od + 256 <= ob);
    CHECK(ob + 256 <= os || os + 128 <= ob);
    CHECK(od + 256 <= os || os + 128 <= od);
    CHECK(ob % 64 == 0 && od % 64 == 0 && os % 64 == 0);
    /* f, read by nobody, reuses the bytes b left at node 4: the arena is 2 blocks + scratch */
    CHECK_EQ_INT(p.slots[f->id].kind, MEM_ARENA);
    CHECK_EQ_INT(p.arena_bytes, 256 + 256 + 128);
    CHECK(p.naive_bytes > p.arena_bytes);

    /* a value of unknown shape is an error naming it */
    e->shape.dim[0] = -1;
    diag_init(&d, NULL);
    CHECK_EQ_INT(pass_memplan(g, &o, &p, &d), ST_SHAPE);
    CHECK_MSG(strstr(d.msg, "'e'") != NULL, "message: %s", d.msg);
    model_free(m);
}

/* Largest first beats node order: a (256 B) dies before c (512 B) is born, b (256 B) outlives both.
 * Node order puts a, b, s at 0, 256, 512 and c above s (1280 B); the live peak, c + s + b, is 1024. */
static void packed_graph(void)
{
    Model *m = model_new();
    Graph *g = graph_new(m->arena, "g", NULL);
    m->graph = g;
    int64_t d64[1] = {64}, d128[1] = {128}, d192[1] = {192};
    Value *x = tensor(g, "x", 1, d64), *a = tensor(g, "a", 1, d64), *b = tensor(g, "b", 1, d64);
    Value *s = tensor(g, "s", 1, d64), *c = tensor(g, "c", 1, d128), *e = tensor(g, "e", 1, d192);
    x->is_input = true;
    CHECK(graph_add_input(g, x));
    node(g, "Sin", 1, &x, a);                           /* 0 */
    node(g, "Cos", 1, &x, b);                           /* 1 */
    node(g, "Sub", 2, (Value *[]){a, x}, s);            /* 2: a dies */
    node(g, "Concat", 2, (Value *[]){s, s}, c);         /* 3: s dies */
    node(g, "Concat", 2, (Value *[]){b, c}, e);         /* 4: b, c die; e is the output */
    e->is_output = true;
    CHECK(graph_add_output(g, e));
    MemPlanOptions o = {.is_view = is_view, .can_reuse = can_reuse, .scratch_bytes = scratch};
    MemPlan p;
    Diag d;
    diag_init(&d, NULL);
    CHECK_EQ_INT(pass_memplan(g, &o, &p, &d), ST_OK);
    CHECK_EQ_INT(p.arena_bytes, 1024);
    size_t oa = p.slots[a->id].offset, ob = p.slots[b->id].offset, os = p.slots[s->id].offset;
    size_t oc = p.slots[c->id].offset;
    CHECK(oa + 256 <= ob || ob + 256 <= oa);    /* a, b, s alive together at node 2 */
    CHECK(oa + 256 <= os || os + 256 <= oa);
    CHECK(ob + 256 <= os || os + 256 <= ob);
    CHECK(oc + 512 <= os || os + 256 <= oc);    /* c, s, b at node 3 */
    CHECK(oc + 512 <= ob || ob + 256 <= oc);
    model_free(m);
}

/* Lifetime of value v: from its producer's index to its root's last reader (views extend it). */
static void lifetimes(const Graph *g, const MemPlan *p, size_t *def, size_t *last)
{
    for (size_t i = 0; i < g->nvalues; i++) {
        def[i] = SIZE_MAX;
        last[i] = 0;
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        for (int k = 0; k < n->noutputs; k++) {
            def[n->outputs[k]->id] = i;
            if (last[n->outputs[k]->id] < i)
                last[n->outputs[k]->id] = i;
        }
        for (int k = 0; k < n->ninputs; k++) {
            if (!n->inputs[k])
                continue;
            int r = n->inputs[k]->id;
            while (p->slots[r].kind == MEM_ALIAS) {
                if (last[r] < i)
                    last[r] = i;
                r = p->slots[r].alias;
            }
            if (last[r] < i)
                last[r] = i;
        }
    }
    for (size_t i = 0; i < g->noutputs; i++) {
        int r = g->outputs[i]->id;
        while (p->slots[r].kind == MEM_ALIAS)
            r = p->slots[r].alias;
        last[r] = g->nnodes;
    }
}

static void real_model(const char *path)
{
    Model *m = NULL;
    Diag d;
    diag_init(&d, path);
    if (onnx_import_file(path, &m, &d) || pass_canon(m, &d)) {
        CHECK_MSG(0, "%s: %s", path, d.msg);
        model_free(m);
        return;
    }
    ShapeOptions so = {.batch = 3, .fold = true};
    if (pass_shapes(m, &so, &d)) {
        CHECK_MSG(0, "%s: %s", path, d.msg);
        model_free(m);
        return;
    }
    Graph *g = m->graph;
    MemPlanOptions o = {.is_view = is_view, .can_reuse = can_reuse, .scratch_bytes = scratch};
    MemPlan p;
    CHECK_EQ_INT(pass_memplan(g, &o, &p, &d), ST_OK);
    size_t *def = calloc(g->nvalues, sizeof *def), *last = calloc(g->nvalues, sizeof *last);
    lifetimes(g, &p, def, &last[0]);
    size_t overlaps = 0, planned = 0;
    for (size_t i = 0; i < g->nvalues; i++) {
        const MemSlot *a = &p.slots[i];
        if (a->kind != MEM_ARENA)
            continue;
        planned++;
        CHECK(a->offset % 64 == 0 && a->offset + a->bytes <= p.arena_bytes);
        for (size_t j = i + 1; j < g->nvalues; j++) {
            const MemSlot *b = &p.slots[j];
            if (b->kind != MEM_ARENA)
                continue;
            bool live_together = def[i] <= last[j] && def[j] <= last[i];
            bool share = a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
            /* in place: the later value is written where the earlier one is read for the last time */
            bool in_place = a->offset == b->offset && (def[j] == last[i] || def[i] == last[j]);
            if (live_together && share && !in_place)
                overlaps++;
        }
    }
    CHECK_MSG(overlaps == 0, "%s: %zu pairs of live values share arena bytes", path, overlaps);
    CHECK_MSG(planned > 0 && p.arena_bytes < p.naive_bytes, "%s: arena %zu, without reuse %zu", path,
              p.arena_bytes, p.naive_bytes);
    printf("  %s: %zu values in %zu arena bytes (%zu without reuse)\n", path, planned, p.arena_bytes, p.naive_bytes);
    free(def);
    free(last);
    model_free(m);
}

int main(void)
{
    small_graph();
    packed_graph();
    real_model("models/cnn/model.onnx");
    real_model("models/transformer/model.onnx");
    real_model("models/transformer/model_opset13.onnx");
    real_model("models/lstm/model.onnx");
    real_model("models/digits/digits_cnn.onnx");
    return test_summary("test_codegen_memplan");
}
