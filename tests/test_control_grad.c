/* test_control_grad.c - gradients through If, against finite differences and PyTorch.
 * The model is tests/control_cases/if_linear (IfNet of tests/ref/make_control_ref.py: relu(a(x)) when x
 * sums to more than 0, else 2 tanh(b(x))), whose weights and input x all train, so the condition is not
 * a constant and the If runs as one: its backward is an If on the same condition. PyTorch's gradients
 * of sum(y * R) (tests/ref/control/if_grad_<branch>/) are compared for both branches; the weights of
 * the branch not taken get zeros, as PyTorch's (absent) gradients are. x keeps its sum far enough from
 * 0 that no finite-difference step flips the branch. Then, against finite differences, a nested If on
 * each of its paths, a Scan (reverse, along axis 1, with a weight from outside its body) and a Loop of 3
 * iterations known at compile time (unrolled) and one of a trip count known at run time; and the message
 * for a while loop.
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

/* tests/control_cases/if_nested (NestedIfNet): an If inside the then branch, reading x and the weight from
 * two scopes out; x picks the path (outer then / inner then, inner else, outer else), and its values stay
 * far enough from the conditions' thresholds (sum 0, max 1.5) that no finite-difference step flips them. */
static void nested_case(GradCheck *s, const char *label, const float *xv)
{
    Diag d;
    diag_init(&d, "tests/control_cases/if_nested/model.onnx");
    Model *m = NULL;
    if (codegen_load("tests/control_cases/if_nested/model.onnx", NULL, 0, 2, &m, &d) != ST_OK) {
        CHECK_MSG(false, "%s", d.msg);
        return;
    }
    Value *y = m->graph->outputs[0];
    GcCase *c = gc_case_model(s, "If (nested)", label, m);
    gc_train_initializers(c);
    NpyArray x = {.dtype = RT_FLOAT, .rank = 2, .dims = {2, 4}, .numel = 8, .data = (void *)xv};
    input_param(c, "x", &x);
    CHECK_EQ_INT(c->nparams, 2);
    gc_check(c, 1, &y);
}

/* A node of a hand-built body: op(in...) -> one new value named `out`. */
static Value *body_op(Graph *b, const char *op, int nin, Value *const *in, const char *out, Diag *d)
{
    Value *o = graph_new_value(b, out, d);
    Node *n = o ? graph_add_node(b, op, "", out, nin, in, 1, &o, d) : NULL;
    if (n)
        n->opset = n->rule ? n->rule->canon_opset : 17;
    return n ? o : NULL;
}

static Value *body_input(Graph *b, const char *name, Diag *d)
{
    Value *v = graph_add_value(b, name, d);
    if (v)
        graph_add_input(b, v);
    return v;
}

/* Add a control node (its body attribute attached before inference). */
static Node *control_node(GcCase *c, const char *op, int opset, int nin, Value *const *in, int nout, Graph *body)
{
    Value *outs[8];
    for (int i = 0; i < nout; i++)
        if (!(outs[i] = graph_new_value(c->g, op, &c->d)))
            return NULL;
    Node *n = graph_add_node(c->g, op, "", op, nin, in, nout, outs, &c->d);
    if (!n || !node_add_attr(c->g, n, &(Attr){.name = "body", .type = AT_GRAPH, .g = body}))
        return NULL;
    n->opset = opset;
    return n;
}

/* Scan-16 over xs [3,5,2] along axis 1, backwards, state [3,2] and a weight w read from outside the body:
 *   h = tanh(state @ w + x_t); state <- h; ys[t] = h * h (scan output along axis 0)
 * Its gradient recomputes the scan unrolled (5 steps) and differentiates that. */
static void scan_case(GradCheck *s)
{
    GcCase *c = gc_case(s, "Scan", "axis 1, reverse, captured weight");
    if (!c)
        return;
    Value *s0 = gc_param(c, "s0", "3,2", -1, 1), *xs = gc_param(c, "xs", "3,5,2", -1, 1);
    Value *w = gc_param(c, "w", "2,2", -1, 1);
    Graph *b = graph_new(c->m->arena, "scan_body", c->g);
    Value *st = body_input(b, "st", &c->d), *x = body_input(b, "x_t", &c->d);
    Value *mm = st && x ? body_op(b, "MatMul", 2, (Value *[]){st, w}, "mm", &c->d) : NULL;
    Value *pre = mm ? body_op(b, "Add", 2, (Value *[]){mm, x}, "pre", &c->d) : NULL;
    Value *h = pre ? body_op(b, "Tanh", 1, &pre, "h", &c->d) : NULL;
    Value *sq = h ? body_op(b, "Mul", 2, (Value *[]){h, h}, "sq", &c->d) : NULL;
    if (!sq || !graph_add_output(b, h) || !graph_add_output(b, sq)) {
        CHECK_MSG(false, "building the scan body: %s", c->d.msg);
        return;
    }
    Node *n = control_node(c, "Scan", 16, 2, (Value *[]){s0, xs}, 2, b);
    if (!n || node_set_attr_int(c->g, n, "num_scan_inputs", 1, &c->d) ||
        node_set_attr_ints(c->g, n, "scan_input_axes", (int64_t[]){1}, 1, &c->d) ||
        node_set_attr_ints(c->g, n, "scan_input_directions", (int64_t[]){1}, 1, &c->d) ||
        infer_node(c->g, n, &c->d)) {
        CHECK_MSG(false, "building the Scan: %s", c->d.msg);
        return;
    }
    gc_check(c, 2, n->outputs);
}

/* Loop with a trip count of 3 known at compile time: unrolled by the shape rule, then differentiated like
 * straight-line code:  v <- tanh(v @ w) + iteration number */
static void loop_case(GradCheck *s)
{
    GcCase *c = gc_case(s, "Loop", "3 iterations (unrolled), captured weight");
    if (!c)
        return;
    Value *v0 = gc_param(c, "v0", "2,3", -1, 1), *w = gc_param(c, "w", "3,3", -1, 1);
    Value *m = graph_const_scalar(c->g, "M", DT_INT64, 3, &c->d);
    Graph *b = graph_new(c->m->arena, "loop_body", c->g);
    Value *it = body_input(b, "iter", &c->d), *cond = body_input(b, "cond", &c->d), *v = body_input(b, "v", &c->d);
    Value *mm = v ? body_op(b, "MatMul", 2, (Value *[]){v, w}, "mm", &c->d) : NULL;
    Value *th = mm ? body_op(b, "Tanh", 1, &mm, "th", &c->d) : NULL;
    Value *itf = th ? body_op(b, "Cast", 1, &it, "itf", &c->d) : NULL;
    Value *nv = itf ? body_op(b, "Add", 2, (Value *[]){th, itf}, "v_next", &c->d) : NULL;
    Value *co = nv ? body_op(b, "Identity", 1, &cond, "cond_out", &c->d) : NULL;
    if (!co || node_set_attr_int(b, itf->producer, "to", DT_FLOAT, &c->d) || !graph_add_output(b, co) ||
        !graph_add_output(b, nv)) {
        CHECK_MSG(false, "building the loop body: %s", c->d.msg);
        return;
    }
    Node *n = control_node(c, "Loop", 16, 3, (Value *[]){m, NULL, v0}, 1, b);
    Value *out = n ? n->outputs[0] : NULL;
    if (!n || infer_node(c->g, n, &c->d)) {
        CHECK_MSG(false, "building the Loop: %s", c->d.msg);
        return;
    }
    CHECK(n->dead); /* unrolled into the nodes after it: infer them as the shape pass would */
    for (size_t i = (size_t)n->index + 1; i < c->g->nnodes; i++)
        if (infer_node(c->g, c->g->nodes[i], &c->d)) {
            CHECK_MSG(false, "inferring the unrolled Loop: %s", c->d.msg);
            return;
        }
    gc_check(c, 1, &out);
}

/* A Loop whose trip count comes at run time (here floor(mf) = 3, mf a parameter kept at 3.5 so no
 * finite-difference step changes it): the backward Loop recomputes v_i by running the body i times and
 * pulls the gradient back one step at a time.  v <- tanh(v @ w) * 0.9 + b */
static void runtime_loop_case(GradCheck *s)
{
    GcCase *c = gc_case(s, "Loop", "trip count at run time, captured weights");
    if (!c)
        return;
    Value *v0 = gc_param(c, "v0", "2,3", -1, 1), *w = gc_param(c, "w", "3,3", -1, 1);
    Value *bias = gc_param(c, "bias", "3", -0.5, 0.5), *mf = gc_param(c, "mf", "", 3.5, 3.5);
    Value *fl = gc_op(c, "Floor", 1, &mf, NULL);
    Value *m = fl ? gc_op(c, "Cast", 1, &fl, "to=7") : NULL;
    Graph *b = graph_new(c->m->arena, "loop_body", c->g);
    Value *it = body_input(b, "iter", &c->d), *cond = body_input(b, "cond", &c->d), *v = body_input(b, "v", &c->d);
    Value *mm = m && v ? body_op(b, "MatMul", 2, (Value *[]){v, w}, "mm", &c->d) : NULL;
    Value *th = mm ? body_op(b, "Tanh", 1, &mm, "th", &c->d) : NULL;
    Value *sc = th ? graph_const_scalar(b, "scale", DT_FLOAT, 0.9, &c->d) : NULL;
    Value *scaled = sc ? body_op(b, "Mul", 2, (Value *[]){th, sc}, "scaled", &c->d) : NULL;
    Value *nv = scaled ? body_op(b, "Add", 2, (Value *[]){scaled, bias}, "v_next", &c->d) : NULL;
    Value *co = nv ? body_op(b, "Identity", 1, &cond, "cond_out", &c->d) : NULL;
    (void)it;
    if (!co || !graph_add_output(b, co) || !graph_add_output(b, nv)) {
        CHECK_MSG(false, "building the loop body: %s", c->d.msg);
        return;
    }
    Node *n = control_node(c, "Loop", 16, 3, (Value *[]){m, NULL, v0}, 1, b);
    Value *out = n ? n->outputs[0] : NULL;
    if (!n || infer_node(c->g, n, &c->d)) {
        CHECK_MSG(false, "building the Loop: %s", c->d.msg);
        return;
    }
    CHECK(!n->dead); /* not unrolled */
    gc_check(c, 1, &out);
}

/* A while loop (it can stop early) is refused on the gradient path, with the reason. */
static void while_loop_refused(void)
{
    Model *m = model_new();
    Diag d;
    diag_init(&d, NULL);
    Graph *g = m->graph = graph_new(m->arena, "g", NULL);
    Value *mv = graph_add_value(g, "M", &d), *v0 = graph_add_value(g, "v0", &d);
    mv->kind = v0->kind = VK_TENSOR;
    mv->dtype = DT_INT64, mv->shape = shape_scalar();
    v0->dtype = DT_FLOAT, v0->shape = shape_make(1, (int64_t[]){4});
    v0->trainable = true;
    graph_add_input(g, mv);
    graph_add_input(g, v0);
    Graph *b = graph_new(m->arena, "loop_body", g);
    Value *it = body_input(b, "iter", &d), *cond = body_input(b, "cond", &d), *v = body_input(b, "v", &d);
    Value *th = body_op(b, "Tanh", 1, &v, "th", &d), *co = body_op(b, "Identity", 1, &cond, "cond_out", &d);
    (void)it;
    graph_add_output(b, co);
    graph_add_output(b, th);
    Value *out = graph_new_value(g, "v_fin", &d), *loss = graph_new_value(g, "loss", &d);
    Value *c0 = graph_add_value(g, "c0", &d);
    c0->kind = VK_TENSOR, c0->dtype = DT_BOOL, c0->shape = shape_scalar();
    graph_add_input(g, c0);
    Node *n = graph_add_node(g, "Loop", "", "the_loop", 3, (Value *[]){mv, c0, v0}, 1, &out, &d);
    node_add_attr(g, n, &(Attr){.name = "body", .type = AT_GRAPH, .g = b});
    n->opset = 16;
    Node *r = graph_add_node(g, "ReduceSum", "", "sum", 1, &out, 1, &loss, &d);
    r->opset = 13;
    CHECK(node_set_attr_int(g, r, "keepdims", 0, &d) == ST_OK && infer_node(g, n, &d) == ST_OK &&
          infer_node(g, r, &d) == ST_OK);
    Gradients gr;
    CHECK(pass_autodiff(g, loss, &gr, &d) == ST_UNSUPPORTED);
    CHECK_MSG(strstr(d.msg, "node 'the_loop' (Loop): gradients through a Loop that can stop early (a while loop) "
                     "are not supported"), "%s", d.msg);
    model_free(m);
}

int main(void)
{
    GradCheck *s = gc_new("control_grad");
    if_case(s, "then");
    if_case(s, "else");
    nested_case(s, "then, inner then", (const float[]){2.0f, 0.5f, 0.3f, 0.8f, 0.2f, 0.9f, 0.4f, 0.6f});
    nested_case(s, "then, inner else", (const float[]){0.3f, 0.5f, 0.7f, 0.8f, 0.2f, 0.9f, 0.4f, 0.6f});
    nested_case(s, "else", (const float[]){-0.3f, 0.5f, -0.7f, 0.8f, -0.2f, -0.9f, 0.4f, -0.6f});
    scan_case(s);
    loop_case(s);
    runtime_loop_case(s);
    int failures = gc_run(s);
    while_loop_refused();
    CHECK_EQ_INT(failures, 0);
    return test_summary("test_control_grad");
}
