/* dump_info.c - the numbers every dump printer shows: parameter and initializer totals, per-node
 * parameters and FLOPs (from the op table's estimates), the op histogram and the unknown ops.
 * It counts; it does not print and does not change the model. */
#include "dump.h"

#include <stdlib.h>
#include <string.h>

ValueRole value_role(const Value *v)
{
    DType t = v->init ? v->init->dtype : v->dtype;
    if (v->is_initializer)
        return dtype_is_float(t) ? VR_PARAM : VR_INIT;
    if (v->is_input)
        return VR_INPUT;
    if (v->init)
        return VR_CONST;
    return VR_ACTIVATION;
}

bool value_is_real_input(const Value *v)
{
    return v->is_input && !v->is_initializer && !v->init;
}

void buf_op(Buf *b, const char *domain, const char *op)
{
    if (domain && domain[0]) {
        buf_put_clean(b, domain, strlen(domain));
        buf_printf(b, ".");
    }
    buf_put_clean(b, op, strlen(op));
}

/* Elements and bytes of an initializer (from its data, or its declared shape if it has none). */
static void value_size(const Value *v, size_t *numel, size_t *bytes)
{
    if (v->init) {
        *numel = v->init->numel;
        *bytes = v->init->nbytes;
        return;
    }
    size_t n = 0, nb = 0;
    if (shape_numel(&v->shape, &n) && !size_mul(n, dtype_size(v->dtype), &nb))
        nb = SIZE_MAX;
    *numel = n;
    *bytes = nb;
}

static size_t sat_add(size_t a, size_t b)
{
    size_t s;
    return size_add(a, b, &s) ? s : SIZE_MAX;
}

/* Initializer totals of g and every subgraph below it. */
static void count_inits(const Graph *g, DumpInfo *info)
{
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (!v->is_initializer)
            continue;
        size_t numel, bytes;
        value_size(v, &numel, &bytes);
        info->ninits++;
        info->init_bytes = sat_add(info->init_bytes, bytes);
        if (value_role(v) == VR_PARAM) {
            info->params = sat_add(info->params, numel);
            info->param_bytes = sat_add(info->param_bytes, bytes);
            if (v->trainable)
                info->trainable = sat_add(info->trainable, numel);
        }
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        for (int k = 0; k < n->nattrs; k++) {
            const Attr *a = &n->attrs[k];
            if (a->type == AT_GRAPH && a->g)
                count_inits(a->g, info);
            for (size_t j = 0; a->type == AT_GRAPHS && j < a->n; j++)
                if (a->graphs[j])
                    count_inits(a->graphs[j], info);
        }
    }
}

static size_t node_param_count(const Node *n)
{
    size_t total = 0;
    for (int i = 0; i < n->ninputs; i++) {
        const Value *v = n->inputs[i];
        if (!v || value_role(v) != VR_PARAM)
            continue;
        bool seen = false;  /* Mul(w, w) reads one weight */
        for (int j = 0; j < i; j++)
            seen |= n->inputs[j] == v;
        if (seen)
            continue;
        size_t numel, bytes;
        value_size(v, &numel, &bytes);
        total = sat_add(total, numel);
    }
    return total;
}

static int cmp_opcount(const void *pa, const void *pb)
{
    const OpCount *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    int c = strcmp(a->op, b->op);
    return c ? c : strcmp(a->domain, b->domain);
}

Status dump_info(const Model *m, const char *path, DumpInfo *info, Diag *d)
{
    memset(info, 0, sizeof *info);
    info->m = m;
    info->path = path;
    const Graph *g = m->graph;
    size_t nn = g->nnodes;
    info->node_params = arena_calloc(m->arena, nn ? nn : 1, sizeof *info->node_params);
    info->node_flops = arena_calloc(m->arena, nn ? nn : 1, sizeof *info->node_flops);
    info->hist = arena_calloc(m->arena, nn ? nn : 1, sizeof *info->hist);
    if (!info->node_params || !info->node_flops || !info->hist)
        return diag_error(d, ST_NOMEM, "out of memory summarising the model");
    count_inits(g, info);
    for (size_t i = 0; i < g->ninputs; i++)
        info->ninputs += value_is_real_input(g->inputs[i]);
    for (size_t i = 0; i < nn; i++) {
        const Node *n = g->nodes[i];
        info->node_params[i] = node_param_count(n);
        double f = n->rule && n->rule->flops ? n->rule->flops(n) : 0.0;
        if (!(f > 0.0))
            f = 0.0, info->flops_missing++;  /* NaN or negative estimates count as none */
        info->node_flops[i] = f;
        info->flops += f;
        if (!n->rule)
            info->unknown_nodes++;
        /* the histogram is small: a linear search keeps it simple */
        size_t k = 0;
        while (k < info->nhist && !(strcmp(info->hist[k].op, n->op_type) == 0 &&
                                    strcmp(info->hist[k].domain, n->domain) == 0))
            k++;
        if (k == info->nhist) {
            info->hist[k] = (OpCount){.domain = n->domain, .op = n->op_type, .known = n->rule != NULL};
            info->nhist++;
            info->unknown_kinds += n->rule == NULL;
        }
        info->hist[k].count++;
    }
    qsort(info->hist, info->nhist, sizeof *info->hist, cmp_opcount);
    return ST_OK;
}
