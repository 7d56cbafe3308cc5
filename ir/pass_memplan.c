/* pass_memplan.c - memory planning for generated code: where every value of a graph lives at run
 * time. Intermediates get 64-byte aligned offsets in one activation arena, reused once a value (and
 * every view of it) is dead; views share their source's bytes; an op may write over an input that
 * dies at it. Graph inputs and outputs are the caller's buffers, constants the weights blob.
 * Placement: a first fit in node order finds each block's life, then the blocks are placed again
 * largest first (place_by_size) and that layout is kept when its arena is smaller.
 * It does not lay out the weights (codegen does, for the constants it actually reads) and does not
 * plan subgraphs (codegen plans each If/Loop/Scan body on its own, inside the node's scratch space);
 * it only keeps what a subgraph reads from this graph alive until its node has run. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

#define MEMPLAN_ALIGN 64
#define MAX_CAPTURES 256

typedef struct Block {
    size_t offset, bytes;
} Block;

/* Live blocks of the arena, sorted by offset; placement is first fit. */
typedef struct Blocks {
    Block *b;
    size_t n, cap;
    size_t high;    /* high-water mark: the arena size so far */
} Blocks;

static size_t align_up(size_t x)
{
    return (x + MEMPLAN_ALIGN - 1) / MEMPLAN_ALIGN * MEMPLAN_ALIGN;
}

static bool blocks_alloc(Blocks *bs, size_t bytes, size_t *offset)
{
    if (bytes > SIZE_MAX - 2 * MEMPLAN_ALIGN)
        return false;
    bytes = align_up(bytes ? bytes : 1);
    size_t at = 0, pos = bs->n;
    for (size_t i = 0; i < bs->n; i++) {
        if (bs->b[i].offset >= at + bytes) {
            pos = i;
            break;
        }
        size_t end = bs->b[i].offset + align_up(bs->b[i].bytes);
        if (end > at)
            at = end;
    }
    if (bs->n == bs->cap) {
        size_t cap = bs->cap ? bs->cap * 2 : 32;
        Block *nb = realloc(bs->b, cap * sizeof *nb);
        if (!nb)
            return false;
        bs->b = nb;
        bs->cap = cap;
    }
    memmove(bs->b + pos + 1, bs->b + pos, (bs->n - pos) * sizeof *bs->b);
    bs->b[pos] = (Block){at, bytes};
    bs->n++;
    if (at + bytes > bs->high)
        bs->high = at + bytes;
    *offset = at;
    return true;
}

static void blocks_free(Blocks *bs, size_t offset)
{
    for (size_t i = 0; i < bs->n; i++)
        if (bs->b[i].offset == offset) {
            memmove(bs->b + i, bs->b + i + 1, (bs->n - i - 1) * sizeof *bs->b);
            bs->n--;
            return;
        }
}

/* One block of the arena over its whole life: a value and the outputs that took its bytes over in place,
 * or a node's scratch space; alive from node `start` to node `end` (inclusive). */
typedef struct Group {
    size_t bytes, start, end, offset;
} Group;

typedef struct Groups {
    Group *g;
    size_t n, cap;
} Groups;

static bool groups_add(Groups *gs, size_t bytes, size_t start, size_t *id)
{
    if (gs->n == gs->cap) {
        size_t cap = gs->cap ? gs->cap * 2 : 64;
        Group *ng = realloc(gs->g, cap * sizeof *ng);
        if (!ng)
            return false;
        gs->g = ng;
        gs->cap = cap;
    }
    gs->g[gs->n] = (Group){align_up(bytes ? bytes : 1), start, SIZE_MAX, 0};
    *id = gs->n++;
    return true;
}

static int by_size(const void *pa, const void *pb)
{
    const Group *a = *(Group *const *)pa, *b = *(Group *const *)pb;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return a->start < b->start ? -1 : a->start > b->start;
}

static int by_offset(const void *pa, const void *pb)
{
    const Group *a = *(Group *const *)pa, *b = *(Group *const *)pb;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* Offline placement, knowing every block's life: largest first, each into the smallest gap between the
 * placed blocks alive at the same time that holds it (TFLite's greedy-by-size). Node-order first fit
 * leaves holes where a large value is born after smaller ones that outlive it (the forward's
 * activations kept for the backward, then the backward's gradients); this packs them. Returns the
 * arena's size, or SIZE_MAX when out of memory. */
static size_t place_by_size(Groups *gs)
{
    size_t n = gs->n, high = 0;
    Group **order = malloc((n ? n : 1) * sizeof *order), **live = malloc((n ? n : 1) * sizeof *live);
    if (!order || !live) {
        free(order);
        free(live);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &gs->g[i];
    qsort(order, n, sizeof *order, by_size);
    for (size_t k = 0; k < n; k++) {
        Group *x = order[k];
        size_t nl = 0;
        for (size_t j = 0; j < k; j++)
            if (order[j]->start <= x->end && x->start <= order[j]->end)
                live[nl++] = order[j];
        qsort(live, nl, sizeof *live, by_offset);
        size_t at = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
        for (size_t j = 0; j < nl; j++) {
            if (live[j]->offset >= at + x->bytes && live[j]->offset - at < best_gap) {
                best = at;
                best_gap = live[j]->offset - at;
            }
            if (live[j]->offset + live[j]->bytes > at)
                at = live[j]->offset + live[j]->bytes;
        }
        x->offset = best != SIZE_MAX ? best : at;
        if (x->offset + x->bytes > high)
            high = x->offset + x->bytes;
    }
    free(order);
    free(live);
    return high;
}

static bool is_local(const Graph *g, const Value *v)
{
    return v && v->id >= 0 && (size_t)v->id < g->nvalues && g->values[v->id] == v;
}

/* The values node n reads: its inputs, then what its subgraphs read from g; returns the count. */
static size_t node_reads(const Graph *g, const Node *n, Value **out)
{
    size_t k = 0;
    for (int i = 0; i < n->ninputs && k < MAX_CAPTURES; i++)
        if (is_local(g, n->inputs[i]))
            out[k++] = n->inputs[i];
    if (n->nattrs) {
        Value *cap[MAX_CAPTURES];
        size_t nc = node_captures(n, cap, MAX_CAPTURES);
        for (size_t i = 0; i < nc && i < MAX_CAPTURES && k < MAX_CAPTURES; i++)
            if (is_local(g, cap[i]))
                out[k++] = cap[i];
    }
    return k;
}

static Status value_bytes(const Value *v, size_t *out, Diag *d)
{
    char buf[128];
    if (v->kind == VK_SEQUENCE || v->kind == VK_OPTIONAL) { /* one buffer of its elements (ir/ops_seq.c) */
        if (!value_nbytes(v, out))
            return diag_node(d, v->producer, ST_SHAPE, "value '%s' (%s) has a type that is not static", v->name,
                             value_type_str(v, buf, sizeof buf));
        return ST_OK;
    }
    if (v->kind != VK_TENSOR)
        return diag_node(d, v->producer, ST_UNSUPPORTED, "value '%s' is not a tensor (maps are not supported "
                         "by code generation)", v->name);
    size_t numel, es = dtype_size(v->dtype);
    if (!shape_is_static(&v->shape))
        return v->producer
            ? diag_node(d, v->producer, ST_SHAPE, "output '%s' has shape %s, not static (data-dependent, "
                        "or a symbolic dim no input fixes)", v->name, shape_str(&v->shape, buf, sizeof buf))
            : diag_error(d, ST_SHAPE, "value '%s' has shape %s, not static", v->name,
                         shape_str(&v->shape, buf, sizeof buf));
    if (es == 0 || v->dtype == DT_STRING)
        return diag_node(d, v->producer, ST_UNSUPPORTED, "value '%s' has element type %s, which code "
                         "generation does not support", v->name, dtype_name(v->dtype));
    if (!shape_numel(&v->shape, &numel) || !size_mul(numel, es, out))
        return diag_node(d, v->producer, ST_NOMEM, "value '%s' is too large", v->name);
    return ST_OK;
}

/* The value whose storage v uses: follows views back to their source. */
static int root_of(const MemPlan *p, int id)
{
    while (p->slots[id].kind == MEM_ALIAS)
        id = p->slots[id].alias;
    return id;
}

Status pass_memplan(Graph *g, const MemPlanOptions *opt, MemPlan *plan, Diag *d)
{
    memset(plan, 0, sizeof *plan);
    size_t nv = g->nvalues, nn = g->nnodes;
    plan->slots = arena_calloc(g->arena, nv ? nv : 1, sizeof *plan->slots);
    plan->scratch = arena_calloc(g->arena, nn ? nn : 1, sizeof *plan->scratch);
    plan->scratch_bytes = arena_calloc(g->arena, nn ? nn : 1, sizeof *plan->scratch_bytes);
    size_t *last = calloc(nv ? nv : 1, sizeof *last);   /* last node reading a value; nn: the end */
    bool *taken = calloc(nv ? nv : 1, sizeof *taken);   /* a root whose block moved to a new value */
    size_t *grp = malloc((nv ? nv : 1) * sizeof *grp);   /* arena values: their Group */
    size_t *sgrp = malloc((nn ? nn : 1) * sizeof *sgrp); /* nodes with scratch space: its Group */
    Blocks bs = {0};
    Groups gs = {0};
    Status st = ST_OK;
    if (!plan->slots || !plan->scratch || !plan->scratch_bytes || !last || !taken || !grp || !sgrp) {
        st = diag_error(d, ST_NOMEM, "out of memory planning memory");
        goto out;
    }
    for (size_t i = 0; i < nv; i++)
        plan->slots[i].alias = -1;

    /* kinds: constants, the caller's inputs and outputs, views, the rest planned below */
    for (size_t i = 0; i < nv; i++) {
        Value *v = g->values[i];
        if (v->init)   /* initializer defaults of inputs too: compiled in */
            plan->slots[i].kind = MEM_CONST;
    }
    for (size_t i = 0; i < g->ninputs; i++) {
        Value *v = g->inputs[i];
        if (plan->slots[v->id].kind == MEM_CONST)
            continue;
        plan->slots[v->id].kind = MEM_INPUT;
        plan->slots[v->id].index = (int)i;
    }
    for (size_t i = 0; i < nn; i++) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->noutputs; k++) {
            Value *o = n->outputs[k];
            MemSlot *s = &plan->slots[o->id];
            if (s->kind == MEM_CONST)
                continue;
            if ((st = value_bytes(o, &s->bytes, d)))
                goto out;
            if (k == 0 && n->ninputs > 0 && is_local(g, n->inputs[0]) && opt && opt->is_view && opt->is_view(n, opt->ctx)) {
                s->kind = MEM_ALIAS;
                s->alias = n->inputs[0]->id;
            }
        }
    }
    for (size_t i = 0; i < g->noutputs; i++) {
        Value *v = g->outputs[i];
        MemSlot *s = &plan->slots[v->id];
        if (s->kind == MEM_NONE && v->producer) {   /* the first mention of a computed value */
            s->kind = MEM_OUTPUT;
            s->index = (int)i;
        }
    }
    for (size_t i = 0; i < nv; i++) {
        Value *v = g->values[i];
        if (plan->slots[i].kind == MEM_INPUT && (st = value_bytes(v, &plan->slots[i].bytes, d)))
            goto out;
    }

    /* liveness of roots: the last node that reads the value or any view of it */
    for (size_t i = 0; i < nn; i++) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->noutputs; k++) {
            int r = root_of(plan, n->outputs[k]->id);
            if (last[r] < i)
                last[r] = i;
        }
        Value *reads[MAX_CAPTURES];
        size_t nr = node_reads(g, n, reads);
        for (size_t k = 0; k < nr; k++) {
            int r = root_of(plan, reads[k]->id);
            if (last[r] < i)
                last[r] = i;
        }
    }
    for (size_t i = 0; i < g->noutputs; i++)
        last[root_of(plan, g->outputs[i]->id)] = nn;

    /* placement, in node order */
    for (size_t i = 0; i < nn; i++) {
        Node *n = g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->noutputs; k++) {
            Value *o = n->outputs[k];
            MemSlot *s = &plan->slots[o->id];
            if (s->kind != MEM_NONE)
                continue;
            s->kind = MEM_ARENA;
            bool reused = false;
            for (int j = 0; j < n->ninputs && opt && opt->can_reuse && !reused; j++) {
                Value *in = n->inputs[j];
                if (!is_local(g, in) || !opt->can_reuse(n, k, j, opt->ctx))
                    continue;
                int r = root_of(plan, in->id);
                MemSlot *rs = &plan->slots[r];
                if (rs->kind != MEM_ARENA || taken[r] || last[r] != i || rs->bytes != s->bytes)
                    continue;
                s->offset = rs->offset;
                grp[o->id] = grp[r];
                taken[r] = true;
                reused = true;
            }
            if (!reused && (!blocks_alloc(&bs, s->bytes, &s->offset) || !groups_add(&gs, s->bytes, i, &grp[o->id]))) {
                st = diag_node(d, n, ST_NOMEM, "out of memory planning output '%s'", o->name);
                goto out;
            }
            plan->naive_bytes += align_up(s->bytes);
        }
        size_t sb = opt && opt->scratch_bytes ? opt->scratch_bytes(n, opt->ctx) : 0;
        if (sb) {
            if (!blocks_alloc(&bs, sb, &plan->scratch[i]) || !groups_add(&gs, sb, i, &sgrp[i])) {
                st = diag_node(d, n, ST_NOMEM, "out of memory planning scratch space");
                goto out;
            }
            plan->scratch_bytes[i] = sb;
            gs.g[sgrp[i]].end = i;
            plan->naive_bytes += align_up(sb);
            blocks_free(&bs, plan->scratch[i]);
        }
        /* free what dies here: roots read last by this node, and outputs nobody reads */
        Value *reads[MAX_CAPTURES];
        size_t nr = node_reads(g, n, reads);
        for (size_t k = 0; k < nr; k++) {
            int r = root_of(plan, reads[k]->id);
            if (plan->slots[r].kind == MEM_ARENA && last[r] == i && !taken[r]) {
                blocks_free(&bs, plan->slots[r].offset);
                gs.g[grp[r]].end = i;
                taken[r] = true;   /* freed once even when read twice */
            }
        }
        for (int k = 0; k < n->noutputs; k++) {
            int r = root_of(plan, n->outputs[k]->id);
            if (plan->slots[r].kind == MEM_ARENA && last[r] == i && !taken[r]) {
                blocks_free(&bs, plan->slots[r].offset);
                gs.g[grp[r]].end = i;
                taken[r] = true;
            }
        }
    }
    plan->arena_bytes = bs.high;
    /* the same blocks placed largest first: kept when smaller (it nearly always is) */
    size_t packed = place_by_size(&gs);
    if (packed == SIZE_MAX) {
        st = diag_error(d, ST_NOMEM, "out of memory planning memory");
        goto out;
    }
    if (packed < bs.high) {
        for (size_t v = 0; v < nv; v++)
            if (plan->slots[v].kind == MEM_ARENA)
                plan->slots[v].offset = gs.g[grp[v]].offset;
        for (size_t i = 0; i < nn; i++)
            if (plan->scratch_bytes[i])
                plan->scratch[i] = gs.g[sgrp[i]].offset;
        plan->arena_bytes = packed;
    }
out:
    free(bs.b);
    free(gs.g);
    free(grp);
    free(sgrp);
    free(last);
    free(taken);
    return st;
}
