/* pass_names.c - PyTorch names for the weights torch.onnx.export renamed. The exporter constant-folds
 * the transpose of every Linear applied to a 3-D input into a new initializer "onnx::MatMul_<n>" (and
 * similarly "onnx::Conv_<n>", "onnx::Gemm_<n>", or bare numbers from old exporters); this pass gives each
 * such initializer the name of the PyTorch parameter it came from, recovered from the node that reads it,
 * so that globs, --init, the dump and messages speak PyTorch. The ONNX name stays in Value.onnx_name for
 * the export. It renames nothing else and does not touch the data (a transposed weight stays [in, out]).
 *
 * The rules (docs/guide.md, "Names"):
 *   - module: the reader's scope, "/encoder/layer.11/attention/self/query/MatMul" -> "encoder.layer.11.
 *     attention.self.query"; a component that repeats its parent's ("/features/features.4/Conv") replaces
 *     it ("features.4").
 *   - parameter: by the reader's op and input: MatMul input 1 (rank 2) and Gemm input 1 are "weight"
 *     (transposed: PyTorch's [out, in] is stored [in, out], except Gemm with transB=1), Conv/ConvTranspose
 *     1 "weight" and 2 "bias", Gemm 2 "bias", an Add after a MatMul "bias", Gather 0 "weight",
 *     normalisations 1 "weight" and 2 "bias" (BatchNormalization 3, 4 "running_mean", "running_var").
 *     A MatMul or Gemm weight whose bias kept its PyTorch name takes the bias's name with "bias" replaced
 *     by "weight" (nn.MultiheadAttention: in_proj_bias -> in_proj_weight): the bias's name is the full
 *     path even where container modules that are never called left no scope. A bias the exporter merged
 *     with other modules' equal ones (read through Identity, or by several nodes) lends only its
 *     attribute name, in the reader's module.
 *   - shared: an initializer read by several nodes is named after the first reader in graph order (a tied
 *     or exporter-deduplicated weight trains once, for every reader, as a tied parameter does in PyTorch).
 *   - clashes: a name already taken gets "#2", "#3", ... (the exporter made separate copies of one
 *     parameter; each copy trains on its own). Readers the rules do not cover leave the ONNX name.
 *   - recurrent layers: LSTM/GRU/RNN W, R, B are "<module>.weight_ih_l<k>", "weight_hh_l<k>", "bias_l<k>"
 *     (ONNX's layout kept: gates reordered, directions stacked, B both biases), so --train 'rnn.*' works. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

/* A name torch.onnx.export invented: "onnx::MatMul_284", or all digits (torch < 1.10). */
static bool exporter_named(const char *name)
{
    if (strncmp(name, "onnx::", 6) == 0)
        return true;
    if (!*name)
        return false;
    for (const char *s = name; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* The module path of a node named "/a/b.3/c/Op_2", or NULL when the name carries no scope. */
static char *module_path(Arena *a, const char *node_name)
{
    const char *last = strrchr(node_name, '/');
    if (node_name[0] != '/' || !last || last == node_name)
        return NULL;
    size_t len = (size_t)(last - node_name);
    char *out = arena_alloc(a, len + 1);
    if (!out)
        return NULL;
    size_t n = 0, prev_at = 0, prev_len = 0;
    for (const char *s = node_name + 1; s < last;) {
        const char *e = memchr(s, '/', (size_t)(last - s));
        size_t clen = e ? (size_t)(e - s) : (size_t)(last - s);
        if (!clen)
            return NULL;
        bool repeats = prev_len && clen > prev_len && strncmp(s, out + prev_at, prev_len) == 0 &&
                       s[prev_len] == '.';
        if (repeats)
            n = prev_at;
        else if (n)
            out[n++] = '.';
        prev_at = n;
        memcpy(out + n, s, clen);
        n += clen;
        prev_len = clen;
        out[n] = '\0';
        s += clen + 1;
    }
    return n ? out : NULL;
}

/* The first live node of g reading v, and the input index. */
static const Node *first_reader(const Graph *g, const Value *v, int *input)
{
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        for (int i = 0; !n->dead && i < n->ninputs; i++)
            if (n->inputs[i] == v) {
                *input = i;
                return n;
            }
    }
    return NULL;
}

static bool is_op(const Node *n, const char *op)
{
    return !n->domain[0] && strcmp(n->op_type, op) == 0;
}

/* The one node reading v, or NULL when none or several do. */
static const Node *only_reader(const Graph *g, const Value *v)
{
    const Node *found = NULL;
    for (size_t k = 0; k < g->nnodes; k++) {
        const Node *n = g->nodes[k];
        for (int i = 0; !n->dead && i < n->ninputs; i++)
            if (n->inputs[i] == v) {
                if (found && found != n)
                    return NULL;
                found = n;
            }
    }
    return found;
}

/* The PyTorch-named bias that an Add after matmul node n (output 0) adds, e.g. "x.in_proj_bias";
 * *shared: it is read through an Identity or by several nodes (the exporter merged equal biases of
 * several modules into the first one's, so its module may not be n's). */
static const Value *bias_after(const Graph *g, const Node *n, bool *shared)
{
    const Node *add = only_reader(g, n->outputs[0]);
    if (!add || !is_op(add, "Add") || add->ninputs != 2)
        return NULL;
    const Value *b = add->inputs[add->inputs[0] == n->outputs[0]];
    *shared = false;
    while (b && b->producer && is_op(b->producer, "Identity") && b->producer->ninputs == 1) {
        b = b->producer->inputs[0];     /* the exporter's stand-in for a merged initializer */
        *shared = true;
    }
    *shared = *shared || (b && !only_reader(g, b));
    return b && b->is_initializer && !b->onnx_name && !exporter_named(b->name) ? b : NULL;
}

/* The parameter name and layout that input i of n gives v, without the module; NULL: no rule. */
static const char *param_role(const Node *n, int i, const Value *v, bool *transposed)
{
    *transposed = false;
    if (n->domain[0])
        return NULL;
    const char *op = n->op_type;
    if (strcmp(op, "MatMul") == 0 && i == 1 && v->shape.rank == 2) {
        *transposed = true;
        return "weight";
    }
    if (strcmp(op, "Gemm") == 0 && (i == 1 || i == 2)) {
        *transposed = i == 1 && !node_attr_int(n, "transB", 0);
        return i == 1 ? "weight" : "bias";
    }
    if ((strcmp(op, "Conv") == 0 || strcmp(op, "ConvTranspose") == 0) && (i == 1 || i == 2))
        return i == 1 ? "weight" : "bias";
    if (strcmp(op, "Add") == 0 && n->ninputs == 2) {
        const Value *other = n->inputs[1 - i];
        if (other && other->producer && (is_op(other->producer, "MatMul") || is_op(other->producer, "Conv")))
            return "bias";
        return NULL;
    }
    if (strcmp(op, "Gather") == 0 && i == 0)
        return "weight";
    if (strcmp(op, "PRelu") == 0 && i == 1)
        return "weight";
    if ((strcmp(op, "LayerNormalization") == 0 || strcmp(op, "InstanceNormalization") == 0) && (i == 1 || i == 2))
        return i == 1 ? "weight" : "bias";
    if (strcmp(op, "BatchNormalization") == 0 && i >= 1 && i <= 4) {
        static const char *const bn[] = {NULL, "weight", "bias", "running_mean", "running_var"};
        return bn[i];
    }
    return NULL;
}

/* LSTM, GRU and RNN inputs W, R, B: nn.LSTM's weight_ih_l<k>, weight_hh_l<k> and (bias_ih and bias_hh
 * side by side) bias_l<k>, layer k from the node's name ("/rnn/LSTM_1" is layer 1). The data keeps
 * ONNX's layout (gates in ONNX's order, directions stacked), so the name is for globs and messages;
 * --init checks the shape. NULL: not such an input. */
static char *rnn_name(Graph *g, const Node *n, int i)
{
    if (n->domain[0] || i < 1 || i > 3 ||
        (!is_op(n, "LSTM") && !is_op(n, "GRU") && !is_op(n, "RNN")))
        return NULL;
    char *module = module_path(g->arena, n->name);
    if (!module)
        return NULL;
    const char *last = strrchr(n->name, '/') + 1, *op = n->op_type;
    long layer = 0;
    size_t oplen = strlen(op);
    if (strncmp(last, op, oplen) == 0 && last[oplen] == '_' && last[oplen + 1] >= '0' && last[oplen + 1] <= '9')
        layer = strtol(last + oplen + 1, NULL, 10);
    static const char *const role[] = {NULL, "weight_ih", "weight_hh", "bias"};
    return arena_printf(g->arena, "%s.%s_l%ld", module, role[i], layer);
}

/* The full PyTorch name for v read as input i of n, or NULL. */
static char *torch_name(Graph *g, const Node *n, int i, const Value *v, bool *transposed)
{
    char *rnn = rnn_name(g, n, i);
    if (rnn) {
        *transposed = false;
        return rnn;
    }
    const char *role = param_role(n, i, v, transposed);
    if (!role)
        return NULL;
    char *module = module_path(g->arena, n->name);
    if (strcmp(role, "weight") == 0 && (is_op(n, "MatMul") || is_op(n, "Gemm"))) {
        /* the bias's name with "bias" -> "weight" ("x.in_proj_bias" -> "x.in_proj_weight"): it is the full
         * module path even where modules that are never called (containers) left no scope in node names.
         * A bias merged with other modules' (shared) lends only its attribute, in the node's module. */
        bool shared = false;
        const Value *b = is_op(n, "Gemm") ? node_input(n, 2) : bias_after(g, n, &shared);
        size_t len = b ? strlen(b->name) : 0;
        if (b && !b->onnx_name && !exporter_named(b->name) && len >= 4 && strcmp(b->name + len - 4, "bias") == 0) {
            const char *dot = strrchr(b->name, '.');
            if (!shared || !module)
                dot = NULL;
            const char *attr = dot ? dot + 1 : b->name;
            return arena_printf(g->arena, "%s%s%.*sweight", dot ? module : "", dot ? "." : "",
                                (int)(b->name + len - 4 - attr), attr);
        }
    }
    return module ? arena_printf(g->arena, "%s.%s", module, role) : NULL;
}

Status pass_torch_names(Model *m, Diag *d)
{
    Graph *g = m->graph;
    for (size_t k = 0; k < g->nvalues; k++) {
        Value *v = g->values[k];
        if (!v->is_initializer || !v->init || v->onnx_name || !dtype_is_float(v->dtype) || !exporter_named(v->name))
            continue;
        int input = -1;
        const Node *n = first_reader(g, v, &input);
        bool transposed = false;
        char *name = n ? torch_name(g, n, input, v, &transposed) : NULL;
        if (!name)
            continue;
        char *unique = name;
        for (int copy = 2; graph_find_local(g, unique); copy++)
            if (!(unique = arena_printf(g->arena, "%s#%d", name, copy)))
                return diag_error(d, ST_NOMEM, "out of memory naming parameters");
        v->onnx_name = v->name;
        v->name = unique;
        v->transposed = transposed;
        if (!graph_reindex_names(g))
            return diag_error(d, ST_NOMEM, "out of memory naming parameters");
    }
    return ST_OK;
}
