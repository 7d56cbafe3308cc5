/* test_control_grad.c - gradients through If, against finite differences and PyTorch.
 * The model is tests/control_cases/if_linear (IfNet of tests/ref/make_control_ref.py: relu(a(x)) when x
 * sums to more than 0, else 2 tanh(b(x))), whose weights and input x all train, so the condition is not
 * a constant and the If runs as one: its backward is an If on the same condition. PyTorch's gradients
 * of sum(y * R) (tests/ref/control/if_grad_<branch>/) are compared for both branches; the weights of
 * the branch not taken get zeros, as PyTorch's (absent) gradients are. x keeps its sum far enough from
 * 0 that no finite-difference step flips the branch. Also: what is refused, with its message.
 */
#include "data.h"
#include "gradcheck.h"
#include "test.h"

#define REF "tests/ref/control"

static bool load(const char *dir, const char *name, NpyArray *a)
{
    char path[512], err[256];
    snprintf(path, sizeof path, REF "/%s/%s.npy", dir, name);
    if (npy_read(path, a, err, sizeof err) != NPY_OK || a->dtype != RT_FLOAT) {
        CHECK_MSG(false, "%s: %s", path, err);
        npy_free(a);
        return false;
    }
    return true;
}

static bool shape_numel_eq(const Value *v, size_t n)
{
    size_t k;
    return shape_numel(&v->shape, &k) && k == n;
}

/* Make runtime input `name` a trainable parameter holding vals. */
static Value *input_param(GcCase *c, const char *name, const NpyArray *vals)
{
    Value *v = c ? graph_find_local(c->g, name) : NULL;
    float *data = malloc(vals->numel * sizeof *data);
    if (!v || !data || v->init || c->nparams >= GC_MAX_PARAMS || !shape_numel_eq(v, vals->numel)) {
        free(data);
        CHECK_MSG(false, "input '%s' cannot be a parameter", name);
        return NULL;
    }
    memcpy(data, vals->data, vals->numel * sizeof *data);
    v->trainable = true;
    c->params[c->nparams++] = (GcParam){.v = v, .data = data, .n = vals->numel, .grad_out = -1};
    return v;
}

static void if_case(GradCheck *s, const char *branch)
{
    char dir[64];
    snprintf(dir, sizeof dir, "if_grad_%s", branch);
    Diag d;
    diag_init(&d, "tests/control_cases/if_linear/model.onnx");
    Model *m = NULL;
    if (codegen_load("tests/control_cases/if_linear/model.onnx", NULL, 0, 2, &m, &d) != ST_OK) {
        CHECK_MSG(false, "%s", d.msg);
        return;
    }
    Value *y = m->graph->outputs[0];
    GcCase *c = gc_case_model(s, "If", branch, m);
    NpyArray x = {0}, r = {0}, want = {0};
    if (!load(dir, "x", &x) || !load(dir, "r", &r))
        return;
    gc_train_initializers(c);
    Value *xv = input_param(c, "x", &x);
    CHECK_EQ_INT(c->nparams, 5);
    gc_check(c, 1, &y);
    gc_set_r(c, 0, r.data, r.numel);
    for (int i = 0; i < c->nparams; i++) {
        char name[128];
        snprintf(name, sizeof name, "grad_%s", c->params[i].v == xv ? "x" : c->params[i].v->name);
        if (load(dir, name, &want))
            gc_expect_grad(c, c->params[i].v, want.data, want.numel, 1e-4);
        npy_free(&want);
    }
    /* an If is in the backward: the forward one was not folded away */
    size_t ifs = 0;
    for (size_t i = 0; i < c->g->nnodes; i++)
        ifs += strcmp(c->g->nodes[i]->op_type, "If") == 0 && !c->g->nodes[i]->dead;
    CHECK_EQ_INT(ifs, 2);
    npy_free(&x);
    npy_free(&r);
}

/* An If nested in a branch on the gradient path is refused, naming the node. */
static void nested_refused(void)
{
    Diag d;
    diag_init(&d, "tests/control_cases/if_nested/model.onnx");
    Model *m = NULL;
    if (codegen_load("tests/control_cases/if_nested/model.onnx", NULL, 0, 2, &m, &d) != ST_OK) {
        CHECK_MSG(false, "%s", d.msg);
        return;
    }
    Graph *g = m->graph;
    Value *w = NULL, *y = g->outputs[0]; /* the weight (the exporter names it after its reader) */
    for (size_t i = 0; i < g->nvalues && !w; i++)
        if (g->values[i]->is_initializer && g->values[i]->init && g->values[i]->init->numel == 12)
            w = g->values[i];
    CHECK(w != NULL);
    if (!w)
        return;
    w->trainable = true;
    Value *loss = NULL;
    Node *n = graph_add_node(g, "ReduceSum", "", "loss", 1, &y, 1, (Value *[]){graph_new_value(g, "loss", &d)}, &d);
    if (n && node_set_attr_int(g, n, "keepdims", 0, &d) == ST_OK && infer_node(g, n, &d) == ST_OK)
        loss = n->outputs[0];
    Gradients gr;
    diag_init(&d, NULL);
    CHECK(loss && pass_autodiff(g, loss, &gr, &d) == ST_UNSUPPORTED);
    CHECK_MSG(strstr(d.msg, "(If): gradients through control flow nested in a branch of an If are not supported"),
              "%s", d.msg);
    model_free(m);
}

int main(void)
{
    GradCheck *s = gc_new("control_grad");
    if_case(s, "then");
    if_case(s, "else");
    int failures = gc_run(s);
    nested_refused();
    CHECK_EQ_INT(failures, 0);
    return test_summary("test_control_grad");
}
