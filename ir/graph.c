/* graph.c - building and editing graphs: values by name, nodes in order, attributes, uses and a
 * topological sort. Structural validation is verify.c's job; op semantics are the op table's. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

/* ---- name -> value hash map (open addressing, in the arena) ---- */

typedef struct NameMap {
    Value **slots;
    size_t cap, count;
} NameMap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool map_grow(Arena *a, NameMap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    Value **slots = arena_calloc(a, cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        Value *v = m->slots[i];
        if (!v)
            continue;
        size_t j = hash_str(v->name) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = v;
    }
    m->slots = slots;
    m->cap = cap;
    return true;
}

static Value *map_get(const NameMap *m, const char *name)
{
    if (!m || !m->cap)
        return NULL;
    for (size_t j = hash_str(name) & (m->cap - 1); m->slots[j]; j = (j + 1) & (m->cap - 1))
        if (strcmp(m->slots[j]->name, name) == 0)
            return m->slots[j];
    return NULL;
}

static bool map_put(Arena *a, NameMap *m, Value *v)
{
    if ((m->count + 1) * 2 > m->cap && !map_grow(a, m))
        return false;
    size_t j = hash_str(v->name) & (m->cap - 1);
    while (m->slots[j])
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = v;
    m->count++;
    return true;
}

/* Grow an arena array of pointers to hold one more element. */
static bool push_ptr(Arena *a, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void **na = arena_calloc(a, ncap, sizeof *na);
        if (!na)
            return false;
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = ncap;
    }
    (*arr)[(*n)++] = p;
    return true;
}

/* ---- models ---- */

Model *model_new(void)
{
    Arena *a = arena_new();
    if (!a)
        return NULL;
    Model *m = arena_alloc(a, sizeof *m);
    if (!m) {
        arena_free(a);
        return NULL;
    }
    m->arena = a;
    return m;
}

void model_free(Model *m)
{
    if (m)
        arena_free(m->arena);
}

int64_t model_opset(const Model *m, const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < m->nopsets; i++)
        if (strcmp(m->opsets[i].domain, domain) == 0)
            return m->opsets[i].version;
    return 0;
}

/* ---- graphs ---- */

Graph *graph_new(Arena *a, const char *name, Graph *parent)
{
    Graph *g = arena_alloc(a, sizeof *g);
    if (!g)
        return NULL;
    g->arena = a;
    g->name = arena_strdup(a, name ? name : "");
    g->parent = parent;
    g->names = arena_alloc(a, sizeof(NameMap));
    if (!g->names || !g->name)
        return NULL;
    return g;
}

Value *graph_find_local(const Graph *g, const char *name)
{
    return map_get(g->names, name);
}

bool graph_reindex_names(Graph *g)
{
    NameMap *m = arena_alloc(g->arena, sizeof *m);
    if (!m)
        return false;
    for (size_t i = 0; i < g->nvalues; i++)
        if (!map_put(g->arena, m, g->values[i]))
            return false;
    g->names = m;
    return true;
}

const char *value_onnx_name(const Value *v)
{
    return v->onnx_name ? v->onnx_name : v->name;
}

Value *graph_find(const Graph *g, const char *name)
{
    for (; g; g = g->parent) {
        Value *v = map_get(g->names, name);
        if (v)
            return v;
    }
    return NULL;
}

Value *graph_add_value(Graph *g, const char *name, Diag *d)
{
    if (map_get(g->names, name)) {
        diag_error(d, ST_INVALID, "value '%s' is defined more than once", name);
        return NULL;
    }
    Value *v = arena_alloc(g->arena, sizeof *v);
    if (!v || !(v->name = arena_strdup(g->arena, name)) || !map_put(g->arena, g->names, v)) {
        diag_error(d, ST_NOMEM, "out of memory adding value '%s'", name);
        return NULL;
    }
    v->id = (int)g->nvalues;
    v->shape = shape_unknown();
    v->kind = VK_TENSOR;
    if (!push_ptr(g->arena, (void ***)&g->values, &g->nvalues, &g->cap_values, v)) {
        diag_error(d, ST_NOMEM, "out of memory adding value '%s'", name);
        return NULL;
    }
    return v;
}

Value *graph_new_value(Graph *g, const char *hint, Diag *d)
{
    if (!hint || !*hint)
        hint = "v";
    if (!graph_find(g, hint))
        return graph_add_value(g, hint, d);
    /* "hint_1" first; after that one counter per graph keeps this linear when many values
     * share a hint */
    for (size_t k = 1;; k = ++g->name_seq) {
        char *name = arena_printf(g->arena, "%s_%zu", hint, k);
        if (!name) {
            diag_error(d, ST_NOMEM, "out of memory naming a value");
            return NULL;
        }
        if (!graph_find(g, name))
            return graph_add_value(g, name, d);
    }
}

Node *graph_add_node(Graph *g, const char *op_type, const char *domain, const char *name,
                     int ninputs, Value *const *inputs, int noutputs, Value *const *outputs, Diag *d)
{
    Arena *a = g->arena;
    Node *n = arena_alloc(a, sizeof *n);
    if (!n)
        goto oom;
    n->op_type = arena_strdup(a, op_type);
    n->domain = arena_strdup(a, domain && strcmp(domain, "ai.onnx") != 0 ? domain : "");
    n->name = name && *name ? arena_strdup(a, name) : arena_printf(a, "%s_%zu", op_type, g->nnodes);
    n->inputs = arena_calloc(a, ninputs ? (size_t)ninputs : 1, sizeof(Value *));
    n->outputs = arena_calloc(a, noutputs ? (size_t)noutputs : 1, sizeof(Value *));
    if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs)
        goto oom;
    n->ninputs = ninputs;
    n->noutputs = noutputs;
    if (ninputs)
        memcpy(n->inputs, inputs, (size_t)ninputs * sizeof(Value *));
    for (int i = 0; i < noutputs; i++) {
        n->outputs[i] = outputs[i];
        if (outputs[i]) {
            outputs[i]->producer = n;
            outputs[i]->producer_slot = i;
        }
    }
    n->rule = op_lookup(n->domain, n->op_type);
    n->index = (int)g->nnodes;
    if (!push_ptr(a, (void ***)&g->nodes, &g->nnodes, &g->cap_nodes, n))
        goto oom;
    return n;
oom:
    diag_error(d, ST_NOMEM, "out of memory adding a %s node", op_type);
    return NULL;
}

Attr *node_add_attr(Graph *g, Node *n, const Attr *attr)
{
    Attr *na = arena_calloc(g->arena, (size_t)n->nattrs + 1, sizeof *na);
    if (!na)
        return NULL;
    if (n->nattrs)
        memcpy(na, n->attrs, (size_t)n->nattrs * sizeof *na);
    na[n->nattrs] = *attr;
    if (!(na[n->nattrs].name = arena_strdup(g->arena, attr->name)))
        return NULL;
    n->attrs = na;
    return &na[n->nattrs++];
}

/* Arrays filled elsewhere (the importer) may have no recorded capacity: then it is their length. */
bool graph_add_input(Graph *g, Value *v)
{
    if (g->cap_inputs < g->ninputs)
        g->cap_inputs = g->ninputs;
    v->is_input = true;
    return push_ptr(g->arena, (void ***)&g->inputs, &g->ninputs, &g->cap_inputs, v);
}

bool graph_add_output(Graph *g, Value *v)
{
    if (g->cap_outputs < g->noutputs)
        g->cap_outputs = g->noutputs;
    v->is_output = true;
    return push_ptr(g->arena, (void ***)&g->outputs, &g->noutputs, &g->cap_outputs, v);
}

void graph_compact(Graph *g)
{
    size_t k = 0;
    for (size_t i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead) {
            g->nodes[k] = g->nodes[i];
            g->nodes[k]->index = (int)k;
            k++;
        }
    g->nnodes = k;
}

/* ---- order and uses ---- */

/* Values a node reads, including outer-scope reads of its subgraphs (for ordering). */
static void collect_subgraph_reads(const Graph *sub, Value **out, size_t *n, size_t cap);

static void collect_node_reads(const Node *nd, Value **out, size_t *n, size_t cap)
{
    for (int i = 0; i < nd->ninputs; i++)
        if (nd->inputs[i] && *n < cap)
            out[(*n)++] = nd->inputs[i];
    for (int i = 0; i < nd->nattrs; i++) {
        const Attr *at = &nd->attrs[i];
        if (at->type == AT_GRAPH && at->g)
            collect_subgraph_reads(at->g, out, n, cap);
        for (size_t k = 0; at->type == AT_GRAPHS && k < at->n; k++)
            collect_subgraph_reads(at->graphs[k], out, n, cap);
    }
}

static void collect_subgraph_reads(const Graph *sub, Value **out, size_t *n, size_t cap)
{
    for (size_t i = 0; i < sub->nnodes; i++)
        collect_node_reads(sub->nodes[i], out, n, cap);
    for (size_t i = 0; i < sub->noutputs; i++)
        if (*n < cap)
            out[(*n)++] = sub->outputs[i];
}

static size_t count_reads(const Node *nd);

static size_t count_graph_reads(const Graph *sub)
{
    size_t n = sub->noutputs;
    for (size_t j = 0; j < sub->nnodes; j++)
        n += count_reads(sub->nodes[j]);
    return n;
}

/* An upper bound on how many values collect_node_reads reports for a node. */
static size_t count_reads(const Node *nd)
{
    size_t n = (size_t)nd->ninputs + 1;
    for (int i = 0; i < nd->nattrs; i++) {
        const Attr *at = &nd->attrs[i];
        if (at->type == AT_GRAPH && at->g)
            n += count_graph_reads(at->g);
        for (size_t k = 0; at->type == AT_GRAPHS && k < at->n; k++)
            n += count_graph_reads(at->graphs[k]);
    }
    return n;
}

/* Kahn's algorithm over producer edges, stable (keeps the original order where it can). */
Status graph_toposort(Graph *g, Diag *d)
{
    size_t n = g->nnodes;
    if (n == 0)
        return ST_OK;
    int *indeg = calloc(n, sizeof *indeg);
    Node **order = calloc(n, sizeof *order);
    size_t *queue = calloc(n, sizeof *queue);
    Status st = ST_OK;
    if (!indeg || !order || !queue) {
        st = diag_error(d, ST_NOMEM, "out of memory sorting graph '%s'", g->name);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        g->nodes[i]->index = (int)i;
    /* indegree: number of reads of values produced by nodes of this graph */
    size_t maxreads = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = count_reads(g->nodes[i]);
        if (c > maxreads)
            maxreads = c;
    }
    Value **reads = calloc(maxreads, sizeof *reads);
    if (!reads) {
        st = diag_error(d, ST_NOMEM, "out of memory sorting graph '%s'", g->name);
        goto done;
    }
    /* consumers lists as CSR: for each producer node, which nodes read it */
    size_t nedges = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        collect_node_reads(g->nodes[i], reads, &k, maxreads);
        for (size_t r = 0; r < k; r++) {
            Node *p = reads[r]->producer;
            if (p && p->index >= 0 && (size_t)p->index < n && g->nodes[p->index] == p) {
                indeg[i]++;
                nedges++;
            }
        }
    }
    size_t *start = calloc(n + 1, sizeof *start), *fill = calloc(n + 1, sizeof *fill);
    size_t *edge = calloc(nedges ? nedges : 1, sizeof *edge);
    if (!start || !fill || !edge) {
        free(start), free(fill), free(edge), free(reads);
        st = diag_error(d, ST_NOMEM, "out of memory sorting graph '%s'", g->name);
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            collect_node_reads(g->nodes[i], reads, &k, maxreads);
            for (size_t r = 0; r < k; r++) {
                Node *p = reads[r]->producer;
                if (!(p && p->index >= 0 && (size_t)p->index < n && g->nodes[p->index] == p))
                    continue;
                if (pass == 0)
                    start[p->index + 1]++;
                else
                    edge[fill[p->index]++] = i;
            }
        }
        if (pass == 0) {
            for (size_t i = 0; i < n; i++)
                start[i + 1] += start[i];
            memcpy(fill, start, (n + 1) * sizeof *fill);
        }
    }
    /* a min-heap would keep the exact original order; a FIFO of ready nodes seeded in order
     * keeps it for graphs that were already sorted, which is what importers produce */
    size_t head = 0, tail = 0, done_n = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            queue[tail++] = i;
    while (head < tail) {
        size_t i = queue[head++];
        order[done_n++] = g->nodes[i];
        for (size_t e = start[i]; e < start[i + 1]; e++)
            if (--indeg[edge[e]] == 0)
                queue[tail++] = edge[e];
    }
    if (done_n < n) {
        for (size_t i = 0; i < n; i++)
            if (indeg[i] > 0) {
                st = diag_node(d, g->nodes[i], ST_INVALID,
                               "the graph has a cycle through this node (or it reads its own output)");
                break;
            }
    } else {
        memcpy(g->nodes, order, n * sizeof *order);
        for (size_t i = 0; i < n; i++)
            g->nodes[i]->index = (int)i;
    }
    free(start), free(fill), free(edge), free(reads);
done:
    free(indeg), free(order), free(queue);
    return st;
}

static void replace_in_graph(Graph *g, Value *from, Value *to)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        Node *nd = g->nodes[i];
        for (int k = 0; k < nd->ninputs; k++)
            if (nd->inputs[k] == from)
                nd->inputs[k] = to;
        for (int k = 0; k < nd->nattrs; k++) {
            Attr *at = &nd->attrs[k];
            if (at->type == AT_GRAPH && at->g)
                replace_in_graph(at->g, from, to);
            for (size_t j = 0; at->type == AT_GRAPHS && j < at->n; j++)
                replace_in_graph(at->graphs[j], from, to);
        }
    }
    for (size_t i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == from) {
            g->outputs[i] = to;
            to->is_output = true;
        }
}

void graph_replace_uses(Graph *g, Value *from, Value *to)
{
    replace_in_graph(g, from, to);
}

size_t graph_count_uses(const Graph *g, const Value *v)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *nd = g->nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->ninputs; k++)
            n += nd->inputs[k] == v;
        for (int k = 0; k < nd->nattrs; k++) {
            const Attr *at = &nd->attrs[k];
            if (at->type == AT_GRAPH && at->g)
                n += graph_count_uses(at->g, v);
            for (size_t j = 0; at->type == AT_GRAPHS && j < at->n; j++)
                n += graph_count_uses(at->graphs[j], v);
        }
    }
    for (size_t i = 0; i < g->noutputs; i++)
        n += g->outputs[i] == v;
    return n;
}

void graph_remove_unused(Graph *g)
{
    /* walk backwards: a node is live if any output is a graph output or read by a live node */
    size_t cap = g->nvalues;
    bool *live = calloc(cap ? cap : 1, sizeof *live);
    if (!live)
        return;
    for (size_t i = 0; i < g->noutputs; i++)
        if (g->outputs[i]->id >= 0 && (size_t)g->outputs[i]->id < cap && graph_find_local(g, g->outputs[i]->name) == g->outputs[i])
            live[g->outputs[i]->id] = true;
    size_t maxreads = 1;
    for (size_t i = 0; i < g->nnodes; i++) {
        size_t c = count_reads(g->nodes[i]);
        if (c > maxreads)
            maxreads = c;
    }
    Value **reads = calloc(maxreads, sizeof *reads);
    if (!reads) {
        free(live);
        return;
    }
    for (size_t i = g->nnodes; i-- > 0;) {
        Node *nd = g->nodes[i];
        if (nd->dead)
            continue;
        bool used = nd->noutputs == 0; /* nodes without outputs act by side effect (updates) */
        for (int k = 0; k < nd->noutputs; k++) {
            Value *o = nd->outputs[k];
            if (o && (size_t)o->id < cap && g->values[o->id] == o && live[o->id])
                used = true;
        }
        if (!used) {
            nd->dead = true;
            continue;
        }
        size_t nr = 0;
        collect_node_reads(nd, reads, &nr, maxreads);
        for (size_t r = 0; r < nr; r++) {
            Value *v = reads[r];
            if ((size_t)v->id < cap && g->values[v->id] == v)
                live[v->id] = true;
        }
    }
    free(reads);
    free(live);
    graph_compact(g);
}

/* ---- attributes and inputs ---- */

const Attr *node_attr(const Node *n, const char *name)
{
    for (int i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t node_attr_int(const Node *n, const char *name, int64_t dflt)
{
    const Attr *a = node_attr(n, name);
    return a && a->type == AT_INT ? a->i : dflt;
}

float node_attr_float(const Node *n, const char *name, float dflt)
{
    const Attr *a = node_attr(n, name);
    return a && a->type == AT_FLOAT ? a->f : dflt;
}

const char *node_attr_string(const Node *n, const char *name, const char *dflt)
{
    const Attr *a = node_attr(n, name);
    return a && a->type == AT_STRING ? a->s : dflt;
}

Value *node_input(const Node *n, int i)
{
    return i >= 0 && i < n->ninputs ? n->inputs[i] : NULL;
}

bool value_is_const(const Value *v)
{
    /* parameters that train and optimizer state change from step to step */
    return v && v->init && !v->is_input && !v->trainable && !v->is_state;
}

/* ---- outer-scope reads of subgraphs ---- */

static bool value_in_graph(const Graph *g, const Value *v)
{
    return v && v->id >= 0 && (size_t)v->id < g->nvalues && g->values[v->id] == v;
}

typedef struct Scopes {
    const Graph *g[16];
    int n;
} Scopes;

static void add_capture(const Scopes *s, Value *v, Value **out, size_t *n, size_t cap)
{
    if (!v)
        return;
    for (int i = 0; i < s->n; i++)
        if (value_in_graph(s->g[i], v))
            return;
    for (size_t i = 0; i < *n && i < cap; i++)
        if (out[i] == v)
            return;
    if (*n < cap)
        out[*n] = v;
    (*n)++;
}

static void captures_of_graph(Scopes *s, const Graph *sub, Value **out, size_t *n, size_t cap);

static void captures_of_attrs(Scopes *s, const Node *nd, Value **out, size_t *n, size_t cap)
{
    for (int i = 0; i < nd->nattrs; i++) {
        const Attr *at = &nd->attrs[i];
        if (at->type == AT_GRAPH && at->g)
            captures_of_graph(s, at->g, out, n, cap);
        for (size_t k = 0; at->type == AT_GRAPHS && k < at->n; k++)
            captures_of_graph(s, at->graphs[k], out, n, cap);
    }
}

static void captures_of_graph(Scopes *s, const Graph *sub, Value **out, size_t *n, size_t cap)
{
    if (s->n == (int)(sizeof s->g / sizeof s->g[0])) {
        *n = cap + 1; /* nested too deep to tell: report more than fits, callers refuse */
        return;
    }
    s->g[s->n++] = sub;
    for (size_t i = 0; i < sub->nnodes; i++) {
        const Node *nd = sub->nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->ninputs; k++)
            add_capture(s, nd->inputs[k], out, n, cap);
        captures_of_attrs(s, nd, out, n, cap);
    }
    for (size_t i = 0; i < sub->noutputs; i++)
        add_capture(s, sub->outputs[i], out, n, cap);
    s->n--;
}

size_t node_captures(const Node *nd, Value **out, size_t cap)
{
    Scopes s = {.n = 0};
    size_t n = 0;
    captures_of_attrs(&s, nd, out, &n, cap);
    return n;
}

size_t graph_captures(const Graph *sub, Value **out, size_t cap)
{
    Scopes s = {.n = 0};
    size_t n = 0;
    captures_of_graph(&s, sub, out, &n, cap);
    return n;
}
