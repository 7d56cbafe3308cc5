/* train_program.c - `onnxtune compile` for training: the model through freeze, head, loss, autodiff and
 * optimizer passes, generated as the model-specific half of a training program (step, update and
 * evaluation functions, the parameter table, the export template, compile-time defaults) whose main()
 * hands over to program/trainer.c. It does no training itself and knows no op.
 *
 * The program's pieces:
 *   - the training graph at batch B: forward (BatchNormalization on batch statistics where --bn-train
 *     says, Dropout active), loss, backward, clipping and updates. Generated twice from one memory plan
 *     (CodegenOptions.phases): train_step_run (forward, loss, backward) and train_update_run (clipping,
 *     updates), so the trainer sees the loss before the weights change and can stop on NaN/Inf with the
 *     last good weights;
 *   - the evaluation graph: the same model, head and loss imported again, inference mode;
 *   - parameters: every float initializer read by a node, plus optimizer state and BatchNormalization
 *     running statistics, become runtime inputs of both graphs, pointing into one mutable buffer the
 *     trainer owns (initial contents embedded), so both graphs see the same weights, --init can replace
 *     any of them, and the updates write them in place;
 *   - the export template: the model imported a third time with its batch dim left symbolic, head
 *     attached, serialized by onnx_export_bytes; the trainer writes the trained weights at the offsets
 *     its layout gives (matched by name) and saves the bytes;
 *   - the frozen prefix, when ir/prefix.c finds one worth caching: `features` (the evaluation graph at
 *     batch B cut down to the prefix, its output the boundary value: whole batches, where oneDNN's
 *     convolutions are 1.3-1.8x faster than at batch 1; at batch 1 when prefix_mixes_samples finds an op
 *     that may not keep the samples apart, so a sample's features never depend on its neighbours or
 *     its place in a batch, which batched GEMMs do not promise by themselves) and rest_step,
 *     rest_update, rest_eval (the training and evaluation graphs built again, the boundary value made
 *     their data input and what only fed it removed). The trainer then always runs features on a batch
 *     and the rest, whether it caches the features or not, so both give the same bits.
 * A short batch runs padded to B: see rt_batch_rows in kernels.h. */
#include "codegen.h"
#include "common.h"
#include "program.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRAIN_PHASES ((1u << PHASE_FORWARD) | (1u << PHASE_LOSS) | (1u << PHASE_BACKWARD))
#define UPDATE_PHASES (1u << PHASE_OPTIMIZER)

/* ---- loading ---- */

/* Import and canonicalise `path`, fix the example shapes, then give the leading dim of every runtime
 * input the batch (batch > 0: unknown dims and, for models exported with a fixed leading 1, that 1;
 * batch 0: left symbolic) and infer shapes. Nodes that read initializers are not folded: those
 * initializers may train or be replaced. */
static Status load_model(const char *path, const InputShape *shapes, size_t nshapes, int64_t batch, Model **out,
                         Diag *d)
{
    Model *m = NULL;
    *out = NULL;
    Status st = onnx_import_file(path, &m, d);
    if (st)
        return st;
    if ((st = pass_canon(m, d)) || (st = pass_torch_names(m, d)))
        goto fail;
    Graph *g = m->graph;
    char a[128], b[128];
    for (size_t k = 0; k < nshapes; k++) {
        Value *v = graph_find_local(g, shapes[k].name);
        if (!v || !v->is_input || v->init) {
            st = diag_error(d, ST_USAGE, "the model has no input named '%s'", shapes[k].name);
            goto fail;
        }
        bool ok = (v->shape.rank < 0 || v->shape.rank == shapes[k].shape.rank) &&
                  (shapes[k].dtype == DT_UNDEFINED || v->dtype == DT_UNDEFINED || v->dtype == shapes[k].dtype);
        for (int i = 1; ok && i < v->shape.rank; i++)
            ok = v->shape.dim[i] < 0 || v->shape.dim[i] == shapes[k].shape.dim[i];
        if (!ok) {
            st = diag_error(d, ST_SHAPE, "input '%s' is %s %s in the model, but %s %s was given", v->name,
                            dtype_name(v->dtype), shape_str(&v->shape, a, sizeof a), dtype_name(shapes[k].dtype),
                            shape_str(&shapes[k].shape, b, sizeof b));
            goto fail;
        }
        int64_t lead = v->shape.rank > 0 ? v->shape.dim[0] : -1;
        const char *sym = v->shape.rank > 0 ? v->shape.sym[0] : NULL;
        v->shape = shapes[k].shape;
        for (int i = 0; i < v->shape.rank; i++)
            v->shape.sym[i] = NULL;
        if (v->shape.rank > 0) {    /* the leading dim stays the model's: the batch decides it below */
            v->shape.dim[0] = lead;
            v->shape.sym[0] = sym;
        }
        if (v->dtype == DT_UNDEFINED)
            v->dtype = shapes[k].dtype;
    }
    bool fixed_one = false;
    for (size_t i = 0; i < g->ninputs && batch > 0; i++) {
        Value *v = g->inputs[i];
        if (v->init || v->shape.rank < 1 || (v->shape.dim[0] >= 0 && v->shape.dim[0] != 1))
            continue;
        fixed_one |= v->shape.dim[0] == 1;
        v->shape.dim[0] = batch;
        v->shape.sym[0] = NULL;
    }
    /* a model exported with batch 1 declares its outputs (value_info too) with that 1: let inference say */
    for (size_t i = 0; i < g->nvalues && fixed_one && batch != 1; i++)
        if (g->values[i]->producer)
            g->values[i]->shape = shape_unknown();
    ShapeOptions so = {.fold = true, .keep_params = true};
    if ((st = pass_shapes(m, &so, d)) || (!getenv("ONNXTUNE_NO_FUSE") && (st = pass_gelu(g, d))))
        goto fail;
    *out = m;
    return ST_OK;
fail:
    model_free(m);
    return st;
}

/* The runtime inputs the trainer feeds from the data: every graph input without a value, in graph order
 * (input_ids, attention_mask, token_type_ids ...), besides the target of the model's own loss under
 * --loss model. At most TRAIN_MAX_INPUTS. */
typedef struct DataInputs {
    size_t n;
    const char *name[TRAIN_MAX_INPUTS];
} DataInputs;

static Status data_inputs(const Graph *g, const LossOptions *lo, DataInputs *xs, Value **first, Diag *d)
{
    xs->n = 0;
    *first = NULL;
    char buf[128];
    for (size_t i = 0; i < g->ninputs; i++) {
        Value *v = g->inputs[i];
        if (v->init || (lo->kind == LOSS_MODEL && loss_is_model_target(g, v)))
            continue;
        if (xs->n == TRAIN_MAX_INPUTS)
            return diag_error(d, ST_UNSUPPORTED, "the model has more than %d inputs; training programs take at most "
                              "that many", TRAIN_MAX_INPUTS);
        if (!shape_is_static(&v->shape) || v->shape.rank < 1)
            return diag_error(d, ST_SHAPE, "input '%s' is %s: training needs [N, ...] with every other dim known "
                              "(give an example input with --input %s=FILE.npy)", v->name,
                              shape_str(&v->shape, buf, sizeof buf), v->name);
        if (*first && v->shape.dim[0] != (*first)->shape.dim[0])
            return diag_error(d, ST_SHAPE, "inputs '%s' and '%s' have different batch dims (%lld, %lld)",
                              (*first)->name, v->name, (long long)(*first)->shape.dim[0], (long long)v->shape.dim[0]);
        if (!*first)
            *first = v;
        xs->name[xs->n++] = v->name;
    }
    if (!*first)
        return diag_error(d, ST_INVALID, "the model has no input");
    return ST_OK;
}

/* Which data input `name` is (-1: none). */
static int data_index(const DataInputs *xs, const char *name)
{
    for (size_t k = 0; k < xs->n; k++)
        if (strcmp(xs->name[k], name) == 0)
            return (int)k;
    return -1;
}

/* ---- parameters ---- */

typedef struct Param {
    const char *name;
    int kind;               /* TrainParamKind of program.h (the numbers are printed) */
    DType dtype;
    Shape shape;
    const Tensor *init;     /* initial contents (detached from the value) */
    size_t offset;
    int64_t export_offset;
    bool transposed;        /* Value.transposed: --init transposes PyTorch's layout */
} Param;

typedef struct Params {
    Param *p;
    size_t n;
    size_t bytes;
} Params;

/* Kernels that read input i of n as a compile-time constant (it must stay one). */
static bool read_as_constant(const Node *n, int i)
{
    if (n->domain[0] || i == 0)
        return false;
    return strcmp(n->op_type, "Resize") == 0 || strcmp(n->op_type, "Upsample") == 0;
}

/* Values that live in the mutable parameter buffer: trainable parameters, state (optimizer moments,
 * BatchNormalization running statistics under --bn-train), and every other float initializer of rank >= 1
 * that a node reads (so --init can replace it and the export sees it). */
static bool is_mutable(const Graph *g, const Value *v)
{
    if (!v->init || !(v->trainable || v->is_state || v->is_initializer) || v->dtype != DT_FLOAT ||
        v->shape.rank < 1)
        return false;
    bool read = false;
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        for (int i = 0; !n->dead && i < n->ninputs; i++)
            if (n->inputs[i] == v) {
                if (read_as_constant(n, i))
                    return false;
                read = true;
            }
    }
    return read;
}

/* Turn the mutable values of the training graph into runtime inputs and record them in ps. */
static Status lift_params(Graph *g, Params *ps, Diag *d)
{
    ps->p = arena_calloc(g->arena, g->nvalues + 1, sizeof *ps->p);
    if (!ps->p)
        return diag_error(d, ST_NOMEM, "out of memory");
    for (size_t i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (!is_mutable(g, v))
            continue;
        Param *p = &ps->p[ps->n++];
        p->name = v->name;
        p->kind = v->trainable ? TRAIN_PARAM_TRAINABLE
                : v->is_state ? (v->is_initializer ? TRAIN_PARAM_BUFFER : TRAIN_PARAM_STATE) : TRAIN_PARAM_FROZEN;
        p->dtype = v->dtype;
        p->shape = v->shape;
        p->init = v->init;
        p->export_offset = -1;
        p->transposed = v->transposed;
        p->offset = (ps->bytes + 63) / 64 * 64;
        if (!size_add(p->offset, v->init->nbytes, &ps->bytes))
            return diag_error(d, ST_NOMEM, "the parameters do not fit in memory");
        v->init = NULL;
        if (!v->is_input && !graph_add_input(g, v))
            return diag_error(d, ST_NOMEM, "out of memory");
    }
    return ST_OK;
}

/* The evaluation graph reads the same buffer: its values named like a parameter become inputs too. */
static Status lift_eval_params(Graph *g, const Params *ps, Diag *d)
{
    for (size_t k = 0; k < ps->n; k++) {
        Value *v = graph_find_local(g, ps->p[k].name);
        if (!v || !v->init || !graph_count_uses(g, v))
            continue;
        if (v->dtype != ps->p[k].dtype || !shape_equal(&v->shape, &ps->p[k].shape))
            return diag_error(d, ST_ERR, "internal: '%s' differs between the training and evaluation graphs",
                              v->name);
        v->init = NULL;
        if (!v->is_input && !graph_add_input(g, v))
            return diag_error(d, ST_NOMEM, "out of memory");
    }
    return ST_OK;
}

/* ---- building the graphs ---- */

/* A Dropout in an If/Loop/Scan body (found below node `owner`) would stay inactive in training: refused. */
static Status body_dropouts(const Graph *g, const Node *owner, Diag *d)
{
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        if (n->dead)
            continue;
        if (owner && !n->domain[0] && strcmp(n->op_type, "Dropout") == 0)
            return diag_node(d, owner, ST_UNSUPPORTED, "its body has a Dropout ('%s'), which would not drop in "
                             "training: Dropout inside control flow is not supported", n->name);
        for (int i = 0; i < n->nattrs; i++) {
            Status st = n->attrs[i].type == AT_GRAPH && n->attrs[i].g
                            ? body_dropouts(n->attrs[i].g, owner ? owner : n, d) : ST_OK;
            if (st)
                return st;
        }
    }
    return ST_OK;
}

/* Dropout nodes of the training graph draw masks from a runtime seed input {seed, step}. */
static Status train_dropouts(Graph *g, bool *any, Diag *d)
{
    Value *seed = NULL;
    int64_t stream = 0;
    *any = false;
    Status bst = body_dropouts(g, NULL, d);
    if (bst)
        return bst;
    for (size_t k = 0; k < g->nnodes; k++) {
        Node *n = g->nodes[k];
        if (n->dead || n->domain[0] || strcmp(n->op_type, "Dropout") != 0)
            continue;
        if (!seed) {
            if (graph_find(g, "dropout_seed"))
                return diag_error(d, ST_USAGE, "the model already has a value named 'dropout_seed', which the "
                                  "training step's input would be called");
            int64_t two = 2;
            if (!(seed = graph_add_value(g, "dropout_seed", d)))
                return d->status;
            seed->dtype = DT_INT64;
            seed->shape = shape_make(1, &two);
            if (!graph_add_input(g, seed))
                return diag_error(d, ST_NOMEM, "out of memory");
        }
        Status st = dropout_to_training(g, n, seed, stream++, d);
        if (st)
            return st;
    }
    *any = seed != NULL;
    return ST_OK;
}

/* ---- the frozen prefix: cutting a graph at its boundary ---- */

/* Drop graph inputs nothing reads any more (the data input and the prefix's parameters of a cut graph). */
static void drop_unused_inputs(Graph *g)
{
    size_t k = 0;
    for (size_t i = 0; i < g->ninputs; i++)
        if (g->inputs[i]->init || graph_count_uses(g, g->inputs[i]) || g->inputs[i]->is_output)
            g->inputs[k++] = g->inputs[i];
        else
            g->inputs[i]->is_input = false;
    g->ninputs = k;
}

/* The rest: the value named `at` replaced by a new input "features" (*f_name), the prefix removed. */
static Status cut_rest(Graph *g, const char *at, const char *x_name, const char **f_name, Diag *d)
{
    Value *v = graph_find_local(g, at), *x = graph_find_local(g, x_name);
    if (!v || !v->producer)
        return diag_error(d, ST_ERR, "internal: the prefix's end '%s' is not computed in the graph", at);
    Value *f = graph_new_value(g, "features", d);
    if (!f)
        return d->status;
    f->dtype = v->dtype;
    f->shape = v->shape;
    graph_replace_uses(g, v, f);
    if (!graph_add_input(g, f))
        return diag_error(d, ST_NOMEM, "out of memory");
    graph_remove_unused(g);
    drop_unused_inputs(g);
    if (x && graph_count_uses(g, x))
        return diag_error(d, ST_ERR, "internal: the graph without its prefix still reads '%s'", x_name);
    *f_name = f->name;
    return ST_OK;
}

/* The prefix: the graph's outputs replaced by the value named `at`, everything after it removed. */
static Status keep_prefix(Graph *g, const char *at, Diag *d)
{
    Value *v = graph_find_local(g, at);
    if (!v || !v->producer)
        return diag_error(d, ST_ERR, "internal: the prefix's end '%s' is not computed in the graph", at);
    for (size_t i = 0; i < g->noutputs; i++)
        g->outputs[i]->is_output = false;
    g->noutputs = 0;
    if (!graph_add_output(g, v))
        return diag_error(d, ST_NOMEM, "out of memory");
    graph_remove_unused(g);
    drop_unused_inputs(g);
    return ST_OK;
}

/* The training graph. pre: the frozen prefix found before autodiff (NULL: not looked for); cut: the
 * prefix's end, to build the rest (NULL: the whole graph); *x_name is then the features' input. */
static Status build_train_graph(const TrainCompileOptions *o, Model **out, Params *ps, DataInputs *xs,
                                const char **x_name, bool *dropout, PrefixInfo *pre, const char *cut,
                                LoraResult *lora, Diag *d)
{
    Model *m = NULL;
    if (o->loss.kind == LOSS_MODEL && o->head.kind != HEAD_NONE)
        return diag_error(d, ST_USAGE, "--head does not apply to --loss model (the model's loss reads its own "
                          "scores)");
    Status st = load_model(o->model, o->shapes, o->nshapes, o->batch, &m, d);
    Value *loss = NULL, *x = NULL;
    Gradients grads;
    LoraResult unused;
    if (!st && !(st = data_inputs(m->graph, &o->loss, xs, &x, d)))
        *x_name = x->name;
    if (!st)
        st = pass_freeze(m, &o->freeze, d);
    if (!st)
        st = pass_head(m, &o->head, d);
    if (!st)
        st = pass_lora(m, &o->lora, lora ? lora : &unused, d);
    if (!st)
        st = pass_loss(m, &o->loss, &loss, d);
    if (!st)
        st = train_dropouts(m->graph, dropout, d);
    if (!st && pre && xs->n == 1)   /* several inputs: no single value to cache features from */
        st = prefix_find(m->graph, x, pre, d);
    if (!st)
        st = pass_autodiff(m->graph, loss, &grads, d);
    if (!st)
        st = pass_optim(m->graph, &grads, &o->optim, d);
    if (!st)
        st = lift_params(m->graph, ps, d);
    if (!st && cut)
        st = cut_rest(m->graph, cut, x->name, x_name, d);
    if (st) {
        model_free(m);
        return st;
    }
    *out = m;
    return ST_OK;
}

/* The evaluation graph at `batch`; cut: the prefix's end: the rest (prefix false; *f_name its features
 * input) or the prefix alone (prefix true). */
static Status build_eval_graph(const TrainCompileOptions *o, const Params *ps, int64_t batch, const char *cut,
                               bool prefix, const char **f_name, Model **out, Diag *d)
{
    Model *m = NULL;
    Value *loss = NULL;
    FreezeOptions none = {0};   /* every BatchNormalization in inference mode */
    LoraResult lora;
    Status st = load_model(o->model, o->shapes, o->nshapes, batch, &m, d);
    Value *x = NULL;
    DataInputs xs;
    if (!st)
        st = data_inputs(m->graph, &o->loss, &xs, &x, d);
    if (!st)
        st = pass_freeze(m, &none, d);
    if (!st)
        st = pass_head(m, &o->head, d);
    if (!st)
        st = pass_lora(m, &o->lora, &lora, d);
    if (!st)
        st = pass_loss(m, &o->loss, &loss, d);
    if (!st)
        st = lift_eval_params(m->graph, ps, d);
    if (!st && cut)
        st = prefix ? keep_prefix(m->graph, cut, d) : cut_rest(m->graph, cut, x->name, f_name, d);
    if (st) {
        model_free(m);
        return st;
    }
    *out = m;
    return ST_OK;
}

/* The fine-tuned model as ONNX with the initial weights: batch dim symbolic, head attached. */
static Status build_export(const TrainCompileOptions *o, Params *ps, Arena *a, uint8_t **bytes, size_t *len,
                           Diag *d)
{
    Model *m = NULL;
    FreezeOptions none = {0};
    ExportLayout layout;
    ExportOptions eo = {.producer_version = ONNXTUNE_VERSION};
    Status st = load_model(o->model, o->shapes, o->nshapes, 0, &m, d);
    if (!st)
        st = pass_freeze(m, &none, d);
    if (!st)
        st = pass_head(m, &o->head, d);
    if (!st)
        st = onnx_export_bytes(m, &eo, a, bytes, len, &layout, d);
    for (size_t i = 0; !st && i < layout.nparams; i++)
        for (size_t k = 0; k < ps->n; k++)
            if (strcmp(ps->p[k].name, layout.params[i].name) == 0 && ps->p[k].kind != TRAIN_PARAM_STATE &&
                layout.params[i].nbytes == ps->p[k].init->nbytes)
                ps->p[k].export_offset = (int64_t)layout.params[i].offset;
    model_free(m);
    return st;
}

/* ---- LoRA: the adapters' table and their own ONNX file ---- */

typedef struct LoraTables {
    const LoraResult *res;
    int *idx;                   /* per adapter: weight, A, B indices into the parameters */
    int *saved;                 /* the parameters in the adapters file: the adapters, other trainable ones */
    size_t *off;                /* their offsets in it */
    size_t nsaved;
    uint8_t *bytes;             /* the template */
    size_t len;
} LoraTables;

static int param_index(const Params *ps, const char *name)
{
    for (size_t k = 0; k < ps->n; k++)
        if (strcmp(ps->p[k].name, name) == 0)
            return (int)k;
    return -1;
}

/* JSON string (the names are PyTorch's; quotes and backslashes escaped, control bytes dropped). */
static char *json_str(Arena *a, const char *s)
{
    size_t n = strlen(s);
    char *out = arena_alloc(a, 2 * n + 3), *w = out;
    if (!out)
        return NULL;
    *w++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *w++ = '\\';
        if ((unsigned char)*s >= ' ')
            *w++ = *s;
    }
    *w++ = '"';
    *w = '\0';
    return out;
}

/* An ONNX model whose graph is only the adapters, as initializers and graph outputs (so ONNX Runtime can
 * load it too), with peft's adapter_config in metadata_props "onnxtune.lora". */
static Status build_adapters(const TrainCompileOptions *o, const Params *ps, const LoraResult *res, Arena *a,
                             LoraTables *lt, Diag *d)
{
    lt->res = res;
    if (!res->n)
        return ST_OK;
    lt->idx = arena_calloc(a, 3 * res->n, sizeof *lt->idx);
    lt->saved = arena_calloc(a, ps->n + 1, sizeof *lt->saved);
    lt->off = arena_calloc(a, ps->n + 1, sizeof *lt->off);
    Model *m = model_new();
    if (!lt->idx || !lt->saved || !lt->off || !m) {
        model_free(m);
        return diag_error(d, ST_NOMEM, "out of memory");
    }
    Status st = ST_OK;
    m->ir_version = 8;
    m->producer_name = "onnxtune";
    m->opsets = arena_calloc(m->arena, 1, sizeof *m->opsets);
    m->graph = graph_new(m->arena, "lora_adapters", NULL);
    if (!m->opsets || !m->graph)
        st = diag_error(d, ST_NOMEM, "out of memory");
    else
        m->opsets[m->nopsets++] = (OpsetImport){"", 13};
    char *targets = arena_strdup(a, "");
    for (size_t i = 0; !st && i < res->n; i++) {
        const LoraAdapter *la = &res->adapters[i];
        const char *names[3] = {la->weight, la->a, la->b};
        for (int k = 0; k < 3 && !st; k++)
            if ((lt->idx[3 * i + k] = param_index(ps, names[k])) < 0)
                st = diag_error(d, ST_ERR, "internal: LoRA parameter '%s' is not in the parameter buffer", names[k]);
        for (int k = 1; k < 3 && !st; k++)
            lt->saved[lt->nsaved++] = lt->idx[3 * i + k];
        char *q = json_str(a, la->weight);
        targets = q && targets ? arena_printf(a, "%s%s%s", targets, i ? ", " : "", q) : NULL;
        if (!targets && !st)
            st = diag_error(d, ST_NOMEM, "out of memory");
    }
    /* then, like peft's modules_to_save, every other parameter that trains (the head, --train, --train-bias) */
    for (size_t k = 0; !st && k < ps->n; k++) {
        bool adapter = false;
        for (size_t i = 0; i < lt->nsaved && !adapter; i++)
            adapter = lt->saved[i] == (int)k;
        if (!adapter && ps->p[k].kind == TRAIN_PARAM_TRAINABLE)
            lt->saved[lt->nsaved++] = (int)k;
    }
    for (size_t i = 0; !st && i < lt->nsaved; i++) {
        const Param *p = &ps->p[lt->saved[i]];
        Value *v = graph_add_value(m->graph, p->name, d);
        if (!v) {
            st = d->status;
            break;
        }
        v->dtype = p->dtype;
        v->shape = p->shape;
        v->init = (Tensor *)p->init;
        if (p->transposed && p->shape.rank == 2) {     /* PyTorch's layout [out, in] */
            Shape ts = shape_make(2, (int64_t[]){p->shape.dim[1], p->shape.dim[0]});
            Tensor *t = tensor_new(m->arena, p->dtype, &ts);
            if (!t) {
                st = diag_error(d, ST_NOMEM, "out of memory");
                break;
            }
            size_t rows = (size_t)p->shape.dim[0], cols = (size_t)p->shape.dim[1], es = dtype_size(p->dtype);
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cols; c++)
                    memcpy((char *)t->data + (c * rows + r) * es, (const char *)p->init->data + (r * cols + c) * es, es);
            v->shape = ts;
            v->init = t;
        }
        v->is_initializer = true;
        if (!graph_add_output(m->graph, v))
            st = diag_error(d, ST_NOMEM, "out of memory");
    }
    char *config = st ? NULL : arena_printf(a, "{\"peft_type\": \"LORA\", \"r\": %lld, \"lora_alpha\": %.17g, "
                                            "\"lora_dropout\": %.17g, \"fan_in_fan_out\": false, \"bias\": \"%s\", "
                                            "\"target_weights\": [%s]}", (long long)o->lora.rank, o->lora.alpha,
                                            o->lora.dropout, o->freeze.train_bias ? "all" : "none", targets);
    MetaProp prop = {"onnxtune.lora", config};
    ExportOptions eo = {.producer_version = ONNXTUNE_VERSION, .props = &prop, .nprops = 1};
    ExportLayout layout;
    if (!st && !config)
        st = diag_error(d, ST_NOMEM, "out of memory");
    if (!st)
        st = onnx_export_bytes(m, &eo, a, &lt->bytes, &lt->len, &layout, d);
    for (size_t i = 0; !st && i < lt->nsaved; i++) {
        const char *want = ps->p[lt->saved[i]].name;
        bool found = false;
        for (size_t k = 0; k < layout.nparams && !found; k++)
            if ((found = strcmp(layout.params[k].name, want) == 0))
                lt->off[i] = layout.params[k].offset;
        if (!found)
            st = diag_error(d, ST_ERR, "internal: '%s' is not in the adapters file", want);
    }
    model_free(m);
    return st;
}

/* ---- the program's tables ---- */

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < ' ' || (unsigned char)*s >= 127)
            fprintf(f, "\\%03o", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void put_tensor(FILE *f, DType t, const Shape *s)
{
    fprintf(f, "{%d, %d, {", (int)t, s->rank);
    for (int i = 0; i < s->rank; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    fprintf(f, "}}");
}

static void put_incbin(FILE *f, const char *sym, const char *file, size_t bytes)
{
    fprintf(f, "__asm__(\".section .rodata\\n\"\n"
               "        \".balign 64\\n\"\n"
               "        \".globl %s\\n\"\n"
               "        \".hidden %s\\n\"\n"
               "        \"%s:\\n\"\n"
               "        \".incbin \\\"%s\\\"\\n\"\n"
               "        \".byte 0\\n\"\n"
               "        \".previous\\n\");\n", sym, sym, sym, file);
    fprintf(f, "extern const unsigned char %s[%zu] __attribute__((visibility(\"hidden\")));\n", sym, bytes + 1);
}

/* The loss node (PHASE_LOSS): input 0 the logits, input 1 the target. */
static const Node *loss_node(const Graph *g)
{
    for (size_t k = 0; k < g->nnodes; k++)
        if (!g->nodes[k]->dead && g->nodes[k]->phase == PHASE_LOSS)
            return g->nodes[k];
    return NULL;
}

/* What a graph's runtime inputs and outputs are, for the trainer. */
static Status put_slots(FILE *f, const char *name, const Graph *g, const DataInputs *xs, const Params *ps, Diag *d)
{
    const Node *ln = loss_node(g);
    if (!ln)
        return diag_error(d, ST_ERR, "internal: no loss node in the %s graph", name);
    fprintf(f, "static const TrainSlot %s_slots_in[] = {\n", name);
    for (size_t i = 0; i < g->ninputs; i++) {
        const Value *v = g->inputs[i];
        if (v->init)
            continue;
        int param = -1;
        for (size_t k = 0; k < ps->n && param < 0; k++)
            if (strcmp(ps->p[k].name, v->name) == 0)
                param = (int)k;
        int xi = param < 0 ? data_index(xs, v->name) : -1;
        if (xi >= 0)
            param = xi;
        const char *kind = xi >= 0 ? "TRAIN_IN_X" : param >= 0 ? "TRAIN_IN_PARAM"
                         : v == ln->inputs[1] ? "TRAIN_IN_TARGET" : strcmp(v->name, "lr") == 0 ? "TRAIN_IN_LR"
                         : strcmp(v->name, "step") == 0 ? "TRAIN_IN_STEP"
                         : strcmp(v->name, "dropout_seed") == 0 ? "TRAIN_IN_SEED" : NULL;
        if (!kind)
            return diag_error(d, ST_ERR, "internal: what the trainer feeds to input '%s' is unknown", v->name);
        fprintf(f, "    {%s, %d}, /* ", kind, param < 0 ? 0 : param);
        for (const char *s = v->name; *s; s++)
            fputc(*s == '*' || *s == '/' ? '_' : *s, f);
        fprintf(f, " */\n");
    }
    fprintf(f, "};\nstatic const int %s_slots_out[] = {", name);
    for (size_t i = 0; i < g->noutputs; i++) {
        const Value *v = g->outputs[i];
        const char *kind = v == ln->inputs[0] ? "TRAIN_OUT_LOGITS" : v == ln->outputs[0] ? "TRAIN_OUT_LOSS"
                         : strcmp(v->name, "grad_norm") == 0 ? "TRAIN_OUT_GRAD_NORM" : NULL;
        if (!kind)
            return diag_error(d, ST_ERR, "internal: output '%s' is not one the trainer knows", v->name);
        fprintf(f, "%s%s", i ? ", " : "", kind);
    }
    fprintf(f, "};\n");
    return ST_OK;
}

/* The features function's slots: X and parameters in, the boundary value out. */
static Status put_feature_slots(FILE *f, const Graph *g, const char *x_name, const Params *ps, Diag *d)
{
    fprintf(f, "static const TrainSlot features_slots_in[] = {\n");
    for (size_t i = 0; i < g->ninputs; i++) {
        const Value *v = g->inputs[i];
        if (v->init)
            continue;
        int param = -1;
        for (size_t k = 0; k < ps->n && param < 0; k++)
            if (strcmp(ps->p[k].name, v->name) == 0)
                param = (int)k;
        if (param < 0 && strcmp(v->name, x_name) != 0)
            return diag_error(d, ST_ERR, "internal: what the trainer feeds to the prefix's input '%s' is unknown",
                              v->name);
        fprintf(f, "    {%s, %d},\n", param >= 0 ? "TRAIN_IN_PARAM" : "TRAIN_IN_X", param < 0 ? 0 : param);
    }
    fprintf(f, "};\nstatic const int features_slots_out[] = {TRAIN_OUT_FEATURES};\n");
    return g->noutputs == 1 ? ST_OK : diag_error(d, ST_ERR, "internal: the prefix has %zu outputs", g->noutputs);
}

static size_t count_runtime_inputs(const Graph *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->ninputs; i++)
        n += !g->inputs[i]->init;
    return n;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static Status write_blob(const char *path, const void *data, size_t len, Diag *d)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return diag_error(d, ST_IO, "%s: cannot write: %s", path, strerror(errno));
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    if (fclose(f) != 0 || w != len)
        return diag_error(d, ST_IO, "%s: write failed", path);
    return ST_OK;
}

/* The parameters' initial contents, each at its 64-aligned offset. */
static Status write_params(const char *path, const Params *ps, uint32_t *crc, Diag *d)
{
    unsigned char *buf = calloc(ps->bytes ? ps->bytes : 1, 1);
    if (!buf)
        return diag_error(d, ST_NOMEM, "out of memory (%zu bytes of parameters)", ps->bytes);
    for (size_t k = 0; k < ps->n; k++)
        if (ps->p[k].init->nbytes)
            memcpy(buf + ps->p[k].offset, ps->p[k].init->data, ps->p[k].init->nbytes);
    *crc = crc32_update(0, buf, ps->bytes);
    Status st = write_blob(path, buf, ps->bytes, d);
    free(buf);
    return st;
}

/* How many samples the frozen prefix runs at a time. Several only pay where the prefix does much
 * arithmetic per byte it writes (ir/prefix.c's estimate, `onnxtune dump` shows it): resnet18's
 * convolutions (45-55 FLOPs a byte) gain 5-15% at 4-16 samples on oneDNN, while mobilenet_v2's depthwise
 * and pointwise layers (3-4) lose 10-60% once a batch's activations leave the caches (bench/README.md,
 * "The frozen prefix over several samples"). At most 16: more only grows the workspace. */
enum { FEATURES_BATCH_MAX = 16 };
#define FEATURES_BATCH_INTENSITY 16.0   /* FLOPs per byte written; between the two models */

static int64_t features_batch(const TrainCompileOptions *o, const PrefixInfo *pi)
{
    if (o->features_batch > 0)  /* --features-batch */
        return o->features_batch < o->batch ? o->features_batch : o->batch;
    if (pi->act_bytes <= 0 || pi->flops / pi->act_bytes < FEATURES_BATCH_INTENSITY)
        return 1;
    return o->batch < FEATURES_BATCH_MAX ? o->batch : FEATURES_BATCH_MAX;
}

/* The frozen prefix's graphs, when there is one. */
typedef struct PrefixGraphs {
    PrefixInfo info;                /* found in the training graph */
    const char *at;                 /* info.boundary's name */
    int64_t batch;                  /* what `features` runs at (features_batch; 1 when it may mix samples) */
    Model *features, *rest_train, *rest_eval;
    const char *train_f, *eval_f;   /* the features' input in the rest graphs */
    CodegenStats s_features, s_step, s_eval;
} PrefixGraphs;

static void put_prefix(FILE *f, const PrefixGraphs *pg)
{
    const PrefixInfo *pi = &pg->info;
    fprintf(f, "    .prefix = {");
    if (pg->at) {
        const Graph *fg = pg->features->graph, *tg = pg->rest_train->graph, *eg = pg->rest_eval->graph;
        fprintf(f, "\n        .at = ");
        put_string(f, pg->at);
        fprintf(f, ",\n        .features = ");
        put_tensor(f, pi->boundary->dtype, &pi->boundary->shape);
        fprintf(f, ",\n        .sample_bytes = %zu,\n        .flops = %.17g,\n        .run_batch = %lld,\n",
                pi->sample_bytes, pi->flops, (long long)pg->batch);
        fprintf(f, "        .run = {features_run, NULL, %zu, 1, features_slots_in, features_slots_out, %zu},\n",
                count_runtime_inputs(fg), (pg->s_features.arena_bytes + 63) / 64 * 64);
        fprintf(f, "        .train = {rest_step_run, rest_update_run, %zu, %zu, rest_train_slots_in, "
                   "rest_train_slots_out, %zu},\n", count_runtime_inputs(tg), tg->noutputs,
                (pg->s_step.arena_bytes + 63) / 64 * 64);
        fprintf(f, "        .eval = {rest_eval_run, NULL, %zu, %zu, rest_eval_slots_in, rest_eval_slots_out, %zu},\n    ",
                count_runtime_inputs(eg), eg->noutputs, (pg->s_eval.arena_bytes + 63) / 64 * 64);
    } else if (pi->why_not && pi->note) {
        fprintf(f, ".note = ");
        put_string(f, pi->why_not);
    }
    fprintf(f, "},\n");
}

static Status emit_program(const TrainCompileOptions *o, FILE *f, Model *train, Model *eval, const Params *ps,
                           const DataInputs *xs, size_t export_bytes, const char *params_file, const char *export_file,
                           const CodegenStats *st_train, const CodegenStats *st_eval, bool dropout,
                           const PrefixGraphs *pg, uint32_t init_crc, const LoraTables *lt,
                           const char *adapters_file, Diag *d)
{
    const Graph *g = train->graph;
    const Node *ln = loss_node(g);
    const char *x_name = xs->name[0];
    const Value *x = graph_find_local(g, x_name), *logits = ln ? ln->inputs[0] : NULL, *target = ln ? ln->inputs[1] : NULL;
    Status st;
    if (!x || !logits || !target)
        return diag_error(d, ST_ERR, "internal: the training graph lacks its data input, logits or target");
    const OptimOptions *op = &o->optim;
    fprintf(f, "\n/* ---- the training program: the tables program/trainer.c reads ------------------------- */\n\n");
    put_incbin(f, "train_params_init", params_file, ps->bytes);
    put_incbin(f, "train_export_template", export_file, export_bytes);
    fprintf(f, "\n/* name, kind, dtype, rank, dims, bytes, offset in the parameter buffer, offset in the export, "
               "transposed */\n");
    fprintf(f, "static const TrainParam train_params[] = {\n");
    for (size_t k = 0; k < ps->n; k++) {
        const Param *p = &ps->p[k];
        fprintf(f, "    {");
        put_string(f, p->name);
        fprintf(f, ", %d, %d, %d, {", p->kind, (int)p->dtype, p->shape.rank);
        for (int i = 0; i < p->shape.rank; i++)
            fprintf(f, "%s%lld", i ? ", " : "", (long long)p->shape.dim[i]);
        fprintf(f, "}, %zu, %zu, %lld, %s},\n", p->init->nbytes, p->offset, (long long)p->export_offset,
                p->transposed ? "true" : "false");
    }
    if (!ps->n)
        fprintf(f, "    {0},\n");
    fprintf(f, "};\n\n");
    /* the data inputs and where each one's row sits in a packed sample */
    size_t packed = 0;
    fprintf(f, "static const TrainInput train_inputs[] = {\n");
    for (size_t k = 0; k < xs->n; k++) {
        const Value *v = graph_find_local(g, xs->name[k]);
        if (!v)
            return diag_error(d, ST_ERR, "internal: the training graph lacks its input '%s'", xs->name[k]);
        fprintf(f, "    {");
        put_string(f, v->name);
        fprintf(f, ", ");
        put_tensor(f, v->dtype, &v->shape);
        fprintf(f, ", %zu},\n", packed);
        size_t row = dtype_size(v->dtype);
        for (int i = 1; i < v->shape.rank; i++)
            row *= (size_t)v->shape.dim[i];
        packed += (row + 7) / 8 * 8;    /* 8-aligned rows: int64 inputs stay aligned in the packed sample */
    }
    fprintf(f, "};\n\n");
    size_t nlora = lt->res ? lt->res->n : 0;
    if (nlora) {
        put_incbin(f, "train_adapters_template", adapters_file, lt->len);
        fprintf(f, "\n/* weight, A, B (parameter indices), alpha/r, weight stored [in, out] */\n"
                   "static const TrainLora train_lora[] = {\n");
        for (size_t i = 0; i < nlora; i++)
            fprintf(f, "    {%d, %d, %d, %.17g, %s},\n", lt->idx[3 * i], lt->idx[3 * i + 1], lt->idx[3 * i + 2],
                    lt->res->adapters[i].scale, lt->res->adapters[i].in_out ? "true" : "false");
        fprintf(f, "};\n\n/* the adapters file's tensors: parameter index, offset of its data */\n"
                   "static const TrainAdapterTensor train_adapter_tensors[] = {\n");
        for (size_t i = 0; i < lt->nsaved; i++)
            fprintf(f, "    {%d, %zu},\n", lt->saved[i], lt->off[i]);
        fprintf(f, "};\n\n");
    }
    DataInputs ft = {1, {pg->train_f}}, fe = {1, {pg->eval_f}};
    if ((st = put_slots(f, "train", g, xs, ps, d)) || (st = put_slots(f, "eval", eval->graph, xs, ps, d)))
        return st;
    if (pg->at && ((st = put_slots(f, "rest_train", pg->rest_train->graph, &ft, ps, d)) ||
                   (st = put_slots(f, "rest_eval", pg->rest_eval->graph, &fe, ps, d)) ||
                   (st = put_feature_slots(f, pg->features->graph, x_name, ps, d))))
        return st;
    if (o->ndefaults) {
        fprintf(f, "\nstatic const char *const train_defaults[] = {");
        for (size_t i = 0; i < o->ndefaults; i++) {
            fprintf(f, "%s", i ? ", " : "");
            put_string(f, o->defaults[i]);
        }
        fprintf(f, "};\n");
    }
    fputc('\n', f);
    fprintf(f, "static const TrainProgram train_program = {\n    .model = ");
    put_string(f, base_name(o->model));
    fprintf(f, ",\n    .compiled_with = ");
    put_string(f, o->compiled_with ? o->compiled_with : "");
    fprintf(f, ",\n    .batch = %lld,\n    .x = ", (long long)x->shape.dim[0]);
    if (xs->n == 1)
        put_tensor(f, x->dtype, &x->shape);
    else
        fprintf(f, "{%d, 2, {%lld, %zu}}", (int)DT_UINT8, (long long)x->shape.dim[0], packed);
    fprintf(f, ",\n    .nx = %zu,\n    .xs = train_inputs", xs->n);
    fprintf(f, ",\n    .target = ");
    put_tensor(f, target->dtype, &target->shape);
    fprintf(f, ",\n    .logits = ");
    put_tensor(f, logits->dtype, &logits->shape);
    fprintf(f, ",\n    .loss = %d,\n    .optimizer = %d,\n", (int)o->loss.kind, (int)op->kind);
    fprintf(f, "    .hyper = {%.17g, %.17g, %d, %.17g, %.17g, %.17g, %.17g, %.17g},\n", op->momentum, op->dampening,
            op->nesterov ? 1 : 0, op->weight_decay, op->beta1, op->beta2, op->eps, op->grad_clip);
    fprintf(f, "    .momentum_buffer = %s,\n    .clipping = %s,\n",
            op->kind == OPTIM_SGD && op->momentum > 0 ? "true" : "false", op->grad_clip > 0 ? "true" : "false");
    fprintf(f, "    .train = {train_step_run, train_update_run, %zu, %zu, train_slots_in, train_slots_out, %zu},\n",
            count_runtime_inputs(g), g->noutputs, (st_train->arena_bytes + 63) / 64 * 64);
    fprintf(f, "    .eval = {eval_run, NULL, %zu, %zu, eval_slots_in, eval_slots_out, %zu},\n",
            count_runtime_inputs(eval->graph), eval->graph->noutputs, (st_eval->arena_bytes + 63) / 64 * 64);
    fprintf(f, "    .has_init_crc = true,\n    .init_crc = 0x%08xu,\n", (unsigned)init_crc);
    fprintf(f, "    .nparams = %zu,\n    .params = train_params,\n    .init = train_params_init,\n"
               "    .params_bytes = %zu,\n    .export_template = train_export_template,\n    .export_bytes = %zu,\n",
            ps->n, ps->bytes, export_bytes);
    fprintf(f, "    .ndefaults = %zu,\n    .defaults = %s,\n", o->ndefaults, o->ndefaults ? "train_defaults" : "NULL");
    put_prefix(f, pg);
    if (nlora)
        fprintf(f, "    .nlora = %zu,\n    .lora = train_lora,\n    .adapters_template = train_adapters_template,\n"
                   "    .adapters_bytes = %zu,\n    .nadapter_tensors = %zu,\n    .adapter_tensors = train_adapter_tensors,\n",
                nlora, lt->len, lt->nsaved);
    fprintf(f, "};\n\n");
    fprintf(f, "/* dropout: %s */\n", dropout ? "active in train_step_run (seed input {seed, step})" : "none");
    fprintf(f, "int main(int argc, char **argv)\n{\n    return trainer_main(argc, argv, &train_program);\n}\n");
    return ferror(f) ? diag_error(d, ST_IO, "write error on the generated C file") : ST_OK;
}

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

#define NFILES 10

Status codegen_compile_trainer(const TrainCompileOptions *o, TrainCompileStats *stats, Diag *d)
{
    Model *train = NULL, *eval = NULL;
    Params ps = {0};
    bool dropout = false;
    const char *x_name = NULL;
    DataInputs xs = {0};
    Arena *a = arena_new();
    uint8_t *export = NULL;
    size_t export_len = 0;
    PrefixGraphs pg = {0};
    LoraResult lora = {0};
    char dir[4096] = "", c_path[4300], files[NFILES][4300];
    static const char *const suffix[NFILES] = {"train_step.weights", "train_update.weights", "eval.weights",
                                               "params", "export.onnx", "features.weights", "rest_step.weights",
                                               "rest_update.weights", "rest_eval.weights", "adapters.onnx"};
    if (!a)
        return diag_error(d, ST_NOMEM, "out of memory");
    if (o->batch < 1) {
        arena_free(a);
        return diag_error(d, ST_USAGE, "--batch must be at least 1");
    }
    Status st = build_train_graph(o, &train, &ps, &xs, &x_name, &dropout, &pg.info, NULL, &lora, d);
    if (!st)
        st = build_eval_graph(o, &ps, o->batch, NULL, false, NULL, &eval, d);
    if (!st && pg.info.boundary) {  /* the frozen prefix and the rest, built again and cut */
        Params ps2 = {0};
        const char *x2 = NULL;
        DataInputs xs2;
        bool dropout2 = false;
        pg.at = pg.info.boundary->name;
        st = build_train_graph(o, &pg.rest_train, &ps2, &xs2, &x2, &dropout2, NULL, pg.at, NULL, d);
        pg.train_f = x2;
        if (!st && ps2.n != ps.n)
            st = diag_error(d, ST_ERR, "internal: the graph without its prefix has other parameters");
        if (!st)
            st = build_eval_graph(o, &ps, o->batch, pg.at, false, &pg.eval_f, &pg.rest_eval, d);
        pg.batch = features_batch(o, &pg.info);
        if (!st)
            st = build_eval_graph(o, &ps, pg.batch, pg.at, true, NULL, &pg.features, d);
        /* several samples at a time only when the prefix keeps them apart */
        const Value *fx = !st ? graph_find(pg.features->graph, x_name) : NULL;
        if (!st && pg.batch > 1 && (!fx || prefix_mixes_samples(pg.features->graph, fx, pg.batch))) {
            model_free(pg.features);
            pg.features = NULL;
            pg.batch = 1;
            st = build_eval_graph(o, &ps, 1, pg.at, true, NULL, &pg.features, d);
        }
    }
    if (!st)
        st = build_export(o, &ps, a, &export, &export_len, d);
    LoraTables lt = {0};
    if (!st)
        st = build_adapters(o, &ps, &lora, a, &lt, d);
    if (st)
        goto out;

    if (o->emit_c) {
        snprintf(c_path, sizeof c_path, "%s.c", o->output);
        for (int i = 0; i < NFILES; i++)
            snprintf(files[i], sizeof files[i], "%s.%s", o->output, suffix[i]);
    } else {
        snprintf(dir, sizeof dir, "%s/onnxtune-XXXXXX", tmp_root());
        if (!mkdtemp(dir)) {
            st = diag_error(d, ST_IO, "%s: cannot create a temporary folder: %s", dir, strerror(errno));
            dir[0] = '\0';
            goto out;
        }
        snprintf(c_path, sizeof c_path, "%s/train.c", dir);
        for (int i = 0; i < NFILES; i++)
            snprintf(files[i], sizeof files[i], "%s/%s", dir, suffix[i]);
    }
    for (int i = 0; i < NFILES; i++)
        if (strpbrk(base_name(files[i]), "\"\\\n")) {
            st = diag_error(d, ST_USAGE, "%s: the program's name may not contain quotes or backslashes", o->output);
            goto out;
        }
    uint32_t init_crc = 0;
    if ((st = write_params(files[3], &ps, &init_crc, d)) || (st = write_blob(files[4], export, export_len, d)) ||
        (lt.len && (st = write_blob(files[9], lt.bytes, lt.len, d))))
        goto out;
    FILE *f = fopen(c_path, "w");
    if (!f) {
        st = diag_error(d, ST_IO, "%s: cannot write: %s", c_path, strerror(errno));
        goto out;
    }
    CodegenStats s_step = {0}, s_update = {0}, s_eval = {0};
    CodegenOptions co = {.prefix = "train_step", .model_path = o->model, .weights_path = files[0],
                         .threads = o->threads, .phases = TRAIN_PHASES};
    st = codegen_emit(train->graph, &co, f, &s_step, d);
    if (!st) {
        co.prefix = "train_update";
        co.weights_path = files[1];
        co.phases = UPDATE_PHASES;
        st = codegen_emit(train->graph, &co, f, &s_update, d);
    }
    if (!st) {
        co.prefix = "eval";
        co.weights_path = files[2];
        co.phases = 0;
        st = codegen_emit(eval->graph, &co, f, &s_eval, d);
    }
    if (!st && pg.at) {
        co.prefix = "features";
        co.weights_path = files[5];
        co.phases = 0;
        st = codegen_emit(pg.features->graph, &co, f, &pg.s_features, d);
    }
    if (!st && pg.at) {
        co.prefix = "rest_step";
        co.weights_path = files[6];
        co.phases = TRAIN_PHASES;
        st = codegen_emit(pg.rest_train->graph, &co, f, &pg.s_step, d);
    }
    if (!st && pg.at) {
        CodegenStats s_rest_update = {0};
        co.prefix = "rest_update";
        co.weights_path = files[7];
        co.phases = UPDATE_PHASES;
        st = codegen_emit(pg.rest_train->graph, &co, f, &s_rest_update, d);
    }
    if (!st && pg.at) {
        co.prefix = "rest_eval";
        co.weights_path = files[8];
        co.phases = 0;
        st = codegen_emit(pg.rest_eval->graph, &co, f, &pg.s_eval, d);
    }
    if (!st)
        st = emit_program(o, f, train, eval, &ps, &xs, export_len, base_name(files[3]), base_name(files[4]),
                          &s_step, &s_eval, dropout, &pg, init_crc, &lt, base_name(files[9]), d);
    if (fclose(f) != 0 && !st)
        st = diag_error(d, ST_IO, "%s: write failed", c_path);
    if (st)
        goto out;
    const char *inputs[1] = {c_path};
    CcJob job = {.mode = CC_PROGRAM, .inputs = inputs, .ninputs = 1, .output = o->output, .werror = o->werror,
                 .opt_level = o->opt_level, .data_libs = true};
    st = codegen_cc(&job, d);
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->train_nodes = s_step.nodes;
        stats->eval_nodes = s_eval.nodes;
        /* the trainer runs evaluation in the training workspace when it fits (tr_bind_graphs) */
        stats->workspace_bytes = s_step.arena_bytes > s_eval.arena_bytes ? s_step.arena_bytes : s_eval.arena_bytes;
        stats->params_bytes = ps.bytes;
        for (size_t k = 0; k < ps.n; k++) {
            size_t numel = ps.p[k].init->numel;
            if (ps.p[k].kind == TRAIN_PARAM_TRAINABLE) {
                stats->trainable++;
                stats->trainable_elems += numel;
            } else if (ps.p[k].kind == TRAIN_PARAM_FROZEN) {
                stats->frozen++;
                stats->frozen_elems += numel;
            }
        }
        stats->batch = o->batch;
        if (pg.at) {
            snprintf(stats->features_at, sizeof stats->features_at, "%s", pg.at);
            stats->features_bytes = pg.info.sample_bytes;
            stats->features_batch = pg.batch;
        }
    }
out:
    if (dir[0]) {
        unlink(c_path);
        for (int i = 0; i < NFILES; i++)
            unlink(files[i]);
        rmdir(dir);
    }
    model_free(train);
    model_free(eval);
    model_free(pg.features);
    model_free(pg.rest_train);
    model_free(pg.rest_eval);
    arena_free(a);
    return st;
}
