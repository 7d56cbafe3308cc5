/* test_import_pytorch.c - function inlining against PyTorch: the same model exported with its
 * modules as ONNX model-local functions and exported plainly (tests/ref/import_functions/, made by
 * make_function_models.py) must import to the same graph: same ops in the same order, same
 * attributes and constants, and every edge between the same pair of nodes or the same weight.
 */
#include "test.h"
#include "importer.h"

#define DIR "tests/ref/import_functions/"

static Model *load(const char *path)
{
    Diag d;
    diag_init(&d, path);
    Model *m;
    if (onnx_import_file(path, &m, &d) != ST_OK) {
        diag_print(&d, stderr);
        return NULL;
    }
    return m;
}

static bool same_tensor(const Tensor *a, const Tensor *b)
{
    return a && b && a->dtype == b->dtype && shape_equal(&a->shape, &b->shape) && a->nbytes == b->nbytes &&
           (a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
}

static bool same_attr(const Attr *a, const Attr *b)
{
    if (strcmp(a->name, b->name) != 0 || a->type != b->type || a->n != b->n)
        return false;
    switch (a->type) {
    case AT_FLOAT: return a->f == b->f;
    case AT_INT: return a->i == b->i;
    case AT_STRING: return a->slen == b->slen && memcmp(a->s, b->s, a->slen) == 0;
    case AT_TENSOR: return same_tensor(a->t, b->t);
    case AT_FLOATS: return a->n == 0 || memcmp(a->floats, b->floats, a->n * sizeof(float)) == 0;
    case AT_INTS: return a->n == 0 || memcmp(a->ints, b->ints, a->n * sizeof(int64_t)) == 0;
    default: return false; /* no other kinds in these models */
    }
}

/* Do value a (inlined model) and b (plain model) play the same role? Node outputs must come from
 * the nodes at the same position and slot; weights and inputs must have the same name and data. */
static bool same_value(const Value *a, const Value *b)
{
    if (!a || !b)
        return a == b;
    if (a->producer || b->producer)
        return a->producer && b->producer && a->producer->index == b->producer->index &&
               a->producer_slot == b->producer_slot;
    if (a->init || b->init)
        return strcmp(a->name, b->name) == 0 && same_tensor(a->init, b->init);
    return a->is_input && b->is_input && strcmp(a->name, b->name) == 0;
}

int main(void)
{
    Model *fm = load(DIR "functions.onnx"), *pm = load(DIR "plain.onnx");
    CHECK(fm && pm);
    if (!fm || !pm)
        return test_summary("test_import_pytorch");
    const Graph *f = fm->graph, *p = pm->graph;
    CHECK_EQ_INT(f->nnodes, p->nnodes);
    CHECK(f->nnodes > 20);
    size_t inlined = 0;
    for (size_t i = 0; i < f->nnodes && i < p->nnodes; i++) {
        const Node *a = f->nodes[i], *b = p->nodes[i];
        inlined += strchr(a->name, '/') && strstr(a->name, "Block/") != NULL;
        CHECK_MSG(strcmp(a->op_type, b->op_type) == 0 && strcmp(a->domain, "") == 0,
                  "node %zu: %s (%s) vs %s", i, a->op_type, a->domain, b->op_type);
        CHECK_EQ_INT(a->opset, 15);
        CHECK_MSG(a->ninputs == b->ninputs && a->noutputs == b->noutputs && a->nattrs == b->nattrs,
                  "node %zu (%s): arity differs", i, a->op_type);
        for (int k = 0; k < a->ninputs && k < b->ninputs; k++)
            CHECK_MSG(same_value(a->inputs[k], b->inputs[k]), "node %zu (%s '%s'): input %d '%s' vs '%s'",
                      i, a->op_type, a->name, k, a->inputs[k] ? a->inputs[k]->name : "-",
                      b->inputs[k] ? b->inputs[k]->name : "-");
        for (int k = 0; k < a->nattrs && k < b->nattrs; k++)
            CHECK_MSG(same_attr(&a->attrs[k], &b->attrs[k]), "node %zu (%s): attribute %s differs", i,
                      a->op_type, a->attrs[k].name);
    }
    CHECK_EQ_INT(inlined, 28); /* two Blocks of 14 nodes */
    CHECK_EQ_INT(f->noutputs, p->noutputs);
    for (size_t i = 0; i < f->noutputs && i < p->noutputs; i++)
        CHECK(same_value(f->outputs[i], p->outputs[i]));
    model_free(fm);
    model_free(pm);
    return test_summary("test_import_pytorch");
}
