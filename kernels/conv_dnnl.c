/* conv_dnnl.c - conv_forward / conv_backward_input / conv_backward_weight on oneDNN (libdnnl, C API),
 * tried first by kernels/conv.c. Primitives, reorders and scratchpads are created on the first call of
 * a geometry and kept in a small process-wide cache; the transient buffers of every entry share one
 * arena. It does not do ConvTranspose, dtypes other than float32, or concurrent calls from several
 * threads (our callers are single-threaded; oneDNN's own OpenMP threads are fine). Any failure, a
 * geometry choose_layout() leaves to conv.c, or ONNXTUNE_DNNL=0 in the environment returns false and
 * the caller runs its own path; ONNXTUNE_DNNL=plain or =blocked puts every conv on that layout.
 * conv_dnnl_forward_layout takes x, y and the residual in nChw8c where the compiler keeps them so
 * (codegen/layout.c): their memory descriptors are then blocked, and a primitive that picks that layout
 * (oneDNN's AVX2 and SSE4.1 kernels do) runs without reorders. */
#include "kernels.h"

#ifndef ONNXTUNE_HAVE_DNNL

bool conv_dnnl_enabled(void)
{
    return false;
}

bool conv_dnnl(ConvDnnlDir dir, float *out, const float *a, const float *b, const float *bias, size_t n,
               size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act)
{
    return false;
}

bool conv_dnnl_forward_sum(float *y, const float *x, const float *w, const float *bias, const float *sum, size_t n,
                           size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act)
{
    return false;
}

bool conv_dnnl_forward_layout(float *y, const float *x, const float *w, const float *bias, const float *sum,
                              size_t n, size_t c_in, size_t c_out, size_t group, const SpatialWindow *win,
                              const ConvAct *act, unsigned layout)
{
    return false;
}

#else

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Everything that makes two calls need different primitives (memcmp'd: build it zeroed). */
typedef struct ConvKey {
    int dir;                                /* ConvDnnlDir */
    int threads;                            /* omp_get_max_threads() when created */
    int has_bias;
    int has_sum;                            /* forward: dst += sum (post-op) before the activation */
    int act_kind;
    float act_lo, act_hi;
    int layout;                             /* CONV_*_BLOCKED: the caller's x, y, sum in nChw8c */
    size_t n, c_in, c_out, group, nd;
    size_t in[RT_MAX_SPATIAL], out[RT_MAX_SPATIAL], k[RT_MAX_SPATIAL], s[RT_MAX_SPATIAL], d[RT_MAX_SPATIAL],
        p[RT_MAX_SPATIAL];
} ConvKey;

/* One tensor argument: the caller's plain memory, and when the primitive wants another layout a
 * reorder to (inputs) or from (output) a buffer at `offset` in the shared arena. */
typedef struct ConvArg {
    int arg;                    /* DNNL_ARG_* of the convolution */
    bool output;
    dnnl_memory_t user, prim;   /* prim == user when no reorder is needed */
    dnnl_primitive_t reorder;   /* NULL when no reorder is needed */
    size_t offset;
    size_t prim_bytes;          /* the reordered copy's size */
} ConvArg;

enum { CONV_ARGS = 4, CACHE_SIZE = 128, ARENA_ALIGN = 64, WEIGHT_SLOTS = 16 };

/* CONV_W_CONST: the reordered weights of one conv (by its weights' address), kept for the next call. */
typedef struct WeightSlot {
    const void *src;
    void *buf;
} WeightSlot;

typedef struct ConvEntry {
    ConvKey key;
    bool failed;                /* conv.c's path: by choice, or creation failed (not retried) */
    dnnl_primitive_t conv;
    ConvArg args[CONV_ARGS];
    int nargs;
    dnnl_memory_t scratch;      /* the primitive's scratchpad, at scratch_offset in the arena */
    dnnl_memory_t sum_user;     /* has_sum, sum's layout not dst's: the caller's sum, reordered into dst first */
    dnnl_primitive_t sum_reorder;
    size_t sum_bytes;           /* has_sum, same layout: the bytes copied into dst first */
    WeightSlot wslots[WEIGHT_SLOTS]; /* CONV_W_CONST: convs of this geometry share the entry */
    size_t scratch_offset, arena_size;
} ConvEntry;

/* Where a conv runs: conv.c's own path, oneDNN on our plain NCHW layout, or oneDNN on the blocked
 * layout it picks, with reorders in and out. */
typedef enum { LAYOUT_AUTO, LAYOUT_OWN, LAYOUT_PLAIN, LAYOUT_BLOCKED } Layout;

static struct {
    int state;   /* 0 not yet started, 1 on, 2 oneDNN could not start */
    int force;   /* ONNXTUNE_DNNL=plain / =blocked: that layout for every conv (for measuring) */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    ConvEntry *entries[CACHE_SIZE];
    size_t count, next_evict;
    char *arena;
    size_t arena_size;
} dnnl;

bool conv_dnnl_enabled(void)
{
    /* read on every call: a test or a caller may change it after the first conv */
    const char *env = getenv("ONNXTUNE_DNNL");
    if (env && (!strcmp(env, "0") || !strcmp(env, "off")))
        return false;
    if (dnnl.state == 0) {
        dnnl.state = 2;
        dnnl.force = !env ? LAYOUT_AUTO : !strcmp(env, "plain") ? LAYOUT_PLAIN
                   : !strcmp(env, "blocked") ? LAYOUT_BLOCKED : LAYOUT_AUTO;
        if (dnnl_engine_create(&dnnl.engine, dnnl_cpu, 0) == dnnl_success &&
            dnnl_stream_create(&dnnl.stream, dnnl.engine, dnnl_stream_default_flags) == dnnl_success)
            dnnl.state = 1;
    }
    return dnnl.state == 1;
}

static dnnl_format_tag_t plain_tag(int ndims)
{
    switch (ndims) {
    case 1: return dnnl_a;
    case 3: return dnnl_abc;
    case 4: return dnnl_abcd;
    case 5: return dnnl_abcde;
    case 6: return dnnl_abcdef;
    default: return dnnl_format_tag_undef;
    }
}

static void entry_destroy(ConvEntry *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->nargs; i++) {
        ConvArg *a = &e->args[i];
        if (a->reorder)
            dnnl_primitive_destroy(a->reorder);
        if (a->prim && a->prim != a->user)
            dnnl_memory_destroy(a->prim);
        if (a->user)
            dnnl_memory_destroy(a->user);
    }
    if (e->scratch)
        dnnl_memory_destroy(e->scratch);
    if (e->sum_reorder)
        dnnl_primitive_destroy(e->sum_reorder);
    if (e->sum_user)
        dnnl_memory_destroy(e->sum_user);
    if (e->conv)
        dnnl_primitive_destroy(e->conv);
    for (int i = 0; i < WEIGHT_SLOTS; i++)
        free(e->wslots[i].buf);
    free(e);
}

/* Everything the cache holds, released when the program ends or the shared object that holds this copy
 * of the kernels is unloaded (dlclose in tests and conform): otherwise the primitives outlive the only
 * pointers to them and LeakSanitizer reports them. */
__attribute__((destructor)) static void conv_dnnl_release(void)
{
    for (size_t i = 0; i < CACHE_SIZE; i++)
        if (dnnl.entries[i]) {
            entry_destroy(dnnl.entries[i]);
            dnnl.entries[i] = NULL;
        }
    free(dnnl.arena);
    dnnl.arena = NULL;
    dnnl.arena_size = 0;
    if (dnnl.stream)
        dnnl_stream_destroy(dnnl.stream);
    if (dnnl.engine)
        dnnl_engine_destroy(dnnl.engine);
    dnnl.stream = NULL;
    dnnl.engine = NULL;
    dnnl.count = 0;
    dnnl.state = 0;
}

/* Adds argument `arg` with the caller's plain layout `user_md` and the primitive's `want` layout. */
static bool add_arg(ConvEntry *e, int arg, bool output, const dnnl_memory_desc_t *user_md,
                    const dnnl_memory_desc_t *want)
{
    ConvArg *a = &e->args[e->nargs++];
    a->arg = arg;
    a->output = output;
    if (dnnl_memory_create(&a->user, user_md, dnnl.engine, DNNL_MEMORY_NONE) != dnnl_success)
        return false;
    if (dnnl_memory_desc_equal(user_md, want)) {
        a->prim = a->user;
        return true;
    }
    if (dnnl_memory_create(&a->prim, want, dnnl.engine, DNNL_MEMORY_NONE) != dnnl_success)
        return false;
    a->offset = e->arena_size;
    a->prim_bytes = dnnl_memory_desc_get_size(want);
    e->arena_size += (a->prim_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    dnnl_primitive_desc_t rpd;
    if (dnnl_reorder_primitive_desc_create(&rpd, output ? want : user_md, dnnl.engine, output ? user_md : want,
                                           dnnl.engine, NULL) != dnnl_success)
        return false;
    dnnl_status_t st = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return st == dnnl_success;
}

/* The op descriptor of direction `dir` over memory descriptors src/weights/dst (bias may be NULL). */
static dnnl_status_t conv_desc(dnnl_convolution_desc_t *cd, int dir, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *wei, const dnnl_memory_desc_t *bias,
                               const dnnl_memory_desc_t *dst, const dnnl_dims_t s, const dnnl_dims_t d,
                               const dnnl_dims_t pl, const dnnl_dims_t pr)
{
    switch (dir) {
    case CONV_DNNL_FORWARD:
        return dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_training, dnnl_convolution_direct, src,
                                                          wei, bias, dst, s, d, pl, pr);
    case CONV_DNNL_BACKWARD_INPUT:
        return dnnl_dilated_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, src, wei, dst, s, d,
                                                                pl, pr);
    default:
        return dnnl_dilated_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, src, wei, NULL, dst,
                                                                   s, d, pl, pr);
    }
}

/* The choice per geometry and direction, from bench/conv_backward.c on resnet18 and mobilenet_v2 at
 * batch 16 (AVX2, bench/README.md): pointwise convs are plain GEMMs, fastest on NCHW without reorders;
 * depthwise forward over large planes is memory-bound and conv.c's direct loop beats oneDNN plus the
 * reorders (the generic build; the AVX2 one is ahead on more shapes); oneDNN 2.6's weight gradient trails
 * conv.c's GEMMs below 56x56 outputs. */
static Layout choose_layout(const ConvKey *k)
{
    if (dnnl.force != LAYOUT_AUTO)
        return (Layout)dnnl.force;
    if (k->layout & ~CONV_W_CONST) /* the caller keeps blocked tensors: any other choice would add reorders */
        return LAYOUT_BLOCKED;
    size_t in = 1, out = 1;
    bool pointwise = true;
    for (size_t i = 0; i < k->nd; i++) {
        in *= k->in[i];
        out *= k->out[i];
        pointwise = pointwise && k->k[i] == 1 && k->s[i] == 1 && k->p[i] == 0 && k->in[i] == k->out[i];
    }
    bool depthwise = k->c_in == k->group;
    /* with post-ops (pass_fuse's activation or residual) oneDNN 2.6's plain gemm conv is 2x slower than
     * without (mobilenet_v2 b16 forward 753 ms against 357 unfused, 274 on blocked): blocked then */
    if (pointwise && (k->act_kind != CONV_ACT_NONE || k->has_sum))
        return LAYOUT_BLOCKED;
    if (pointwise)
        return LAYOUT_PLAIN;
    if (depthwise && strcmp(conv_depthwise_isa(), "avx2") == 0) {
        /* conv_dw.c's AVX2 build against oneDNN's blocked jit_dw with its reorders (bench/README.md,
         * 2026-12-07 11:00): ahead from 28x28 outputs forward and dX (stride 1), 56x56 for dW; oneDNN
         * ahead at 7x7, about even at 14x14. Stride 2 (conv_dw_body.h's even/odd halves, bench/README.md
         * "Trainable BN, ReLU6 and depthwise backward"): dX ahead from 14x14 outputs (2x at 56x56), dW
         * only at 56x56 */
        bool s1_3x3 = k->nd == 2 && k->c_out == k->c_in, s2_3x3 = s1_3x3;
        for (size_t i = 0; i < k->nd; i++) {
            bool k3 = k->k[i] == 3 && k->d[i] == 1 && k->p[i] <= 2;
            s1_3x3 = s1_3x3 && k3 && k->s[i] == 1;
            s2_3x3 = s2_3x3 && k3 && k->s[i] == 2;
        }
        if (k->dir == CONV_DNNL_FORWARD)
            return out >= 28 * 28 ? LAYOUT_OWN : LAYOUT_BLOCKED;
        if (k->dir == CONV_DNNL_BACKWARD_INPUT)
            return (s1_3x3 && out >= 28 * 28) || (s2_3x3 && out >= 14 * 14) ? LAYOUT_OWN : LAYOUT_BLOCKED;
        return (s1_3x3 || s2_3x3) && out >= 56 * 56 ? LAYOUT_OWN : LAYOUT_BLOCKED;
    }
    if (depthwise && k->dir == CONV_DNNL_FORWARD && in > 64 * 64)
        return LAYOUT_OWN;
    if (!depthwise && k->dir == CONV_DNNL_BACKWARD_WEIGHT && out < 56 * 56)
        return LAYOUT_OWN;
    return LAYOUT_BLOCKED;
}

static ConvEntry *entry_create(const ConvKey *k)
{
    ConvEntry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = *k;
    Layout layout = choose_layout(k);
    if (layout == LAYOUT_OWN)
        goto fail;
    int nsp = (int)k->nd, grouped = k->group > 1;
    dnnl_dims_t xd = {(dnnl_dim_t)k->n, (dnnl_dim_t)k->c_in}, yd = {(dnnl_dim_t)k->n, (dnnl_dim_t)k->c_out};
    dnnl_dims_t wd = {0}, bd = {(dnnl_dim_t)k->c_out}, s, d, pl, pr;
    int wnd = 2 + grouped + nsp, w0 = 0;
    if (grouped)
        wd[w0++] = (dnnl_dim_t)k->group;
    wd[w0++] = (dnnl_dim_t)(k->c_out / k->group);
    wd[w0++] = (dnnl_dim_t)(k->c_in / k->group);
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = (dnnl_dim_t)k->in[i];
        yd[2 + i] = (dnnl_dim_t)k->out[i];
        wd[w0 + i] = (dnnl_dim_t)k->k[i];
        s[i] = (dnnl_dim_t)k->s[i];
        d[i] = (dnnl_dim_t)k->d[i] - 1;
        pl[i] = (dnnl_dim_t)k->p[i];
        /* the end pad that gives exactly `out`; negative when the last window ends before the input does
         * (a 1x1 stride-2 downsample over an even size): 0 then, as oneDNN's floor division gives `out` */
        dnnl_dim_t keff = ((dnnl_dim_t)k->k[i] - 1) * (dnnl_dim_t)k->d[i] + 1;
        pr[i] = ((dnnl_dim_t)k->out[i] - 1) * s[i] + keff - (dnnl_dim_t)k->in[i] - pl[i];
        if (pr[i] < 0 && ((dnnl_dim_t)k->in[i] + pl[i] - keff) / s[i] + 1 == (dnnl_dim_t)k->out[i])
            pr[i] = 0;
        if (pr[i] < 0)
            goto fail;
    }
    dnnl_memory_desc_t ux, uw, uy, ub, us, ax, aw, ay;
    dnnl_format_tag_t plain = plain_tag(2 + nsp);
    if (dnnl_memory_desc_init_by_tag(&ux, 2 + nsp, xd, dnnl_f32, k->layout & CONV_X_BLOCKED ? dnnl_aBcd8b : plain) ||
        dnnl_memory_desc_init_by_tag(&uy, 2 + nsp, yd, dnnl_f32, k->layout & CONV_Y_BLOCKED ? dnnl_aBcd8b : plain) ||
        dnnl_memory_desc_init_by_tag(&us, 2 + nsp, yd, dnnl_f32, k->layout & CONV_SUM_BLOCKED ? dnnl_aBcd8b : plain) ||
        dnnl_memory_desc_init_by_tag(&uw, wnd, wd, dnnl_f32, plain_tag(wnd)) ||
        dnnl_memory_desc_init_by_tag(&ub, 1, bd, dnnl_f32, dnnl_a))
        goto fail;
    if (layout == LAYOUT_PLAIN) {
        ax = ux, aw = uw, ay = uy;
    } else if (dnnl_memory_desc_init_by_tag(&ax, 2 + nsp, xd, dnnl_f32, dnnl_format_tag_any) ||
               dnnl_memory_desc_init_by_tag(&ay, 2 + nsp, yd, dnnl_f32, dnnl_format_tag_any) ||
               dnnl_memory_desc_init_by_tag(&aw, wnd, wd, dnnl_f32, dnnl_format_tag_any)) {
        goto fail;
    }

    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t fwd = NULL, pd = NULL;
    dnnl_convolution_desc_t cd;
    bool ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && (k->act_kind != CONV_ACT_NONE || k->has_sum)) {
        ok = dnnl_post_ops_create(&ops) == dnnl_success &&
             (!k->has_sum || dnnl_post_ops_append_sum(ops, 1.0f) == dnnl_success) &&
             (k->act_kind == CONV_ACT_NONE ||
              dnnl_post_ops_append_eltwise(ops, 1.0f, k->act_kind == CONV_ACT_RELU ? dnnl_eltwise_relu : dnnl_eltwise_clip,
                                           k->act_kind == CONV_ACT_RELU ? 0.0f : k->act_lo, k->act_hi) == dnnl_success) &&
             dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
    }
    /* backward primitives take the forward one as a hint */
    ok = ok && conv_desc(&cd, CONV_DNNL_FORWARD, &ax, &aw, k->has_bias ? &ub : NULL, &ay, s, d, pl, pr) == dnnl_success &&
         dnnl_primitive_desc_create(&fwd, &cd, k->dir == CONV_DNNL_FORWARD ? attr : NULL, dnnl.engine, NULL) == dnnl_success;
    if (ok && k->dir != CONV_DNNL_FORWARD) {
        ok = conv_desc(&cd, k->dir, &ax, &aw, NULL, &ay, s, d, pl, pr) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &cd, attr, dnnl.engine, fwd) == dnnl_success;
    } else if (ok) {
        pd = fwd;
        fwd = NULL;
    }
    if (ops)
        dnnl_post_ops_destroy(ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (fwd)
        dnnl_primitive_desc_destroy(fwd);
    if (!ok)
        goto fail_pd;

    const dnnl_memory_desc_t *q;
#define ARG(arg, output, user, query, index)                                                                     \
    do {                                                                                                       \
        q = dnnl_primitive_desc_query_md(pd, query, index);                                                    \
        if (!q || !add_arg(e, arg, output, user, q))                                                           \
            goto fail_pd;                                                                                      \
    } while (0)
    switch (k->dir) {
    case CONV_DNNL_FORWARD:
        ARG(DNNL_ARG_SRC, false, &ux, dnnl_query_src_md, 0);
        ARG(DNNL_ARG_WEIGHTS, false, &uw, dnnl_query_weights_md, 0);
        if (k->has_bias)
            ARG(DNNL_ARG_BIAS, false, &ub, dnnl_query_weights_md, 1);
        ARG(DNNL_ARG_DST, true, &uy, dnnl_query_dst_md, 0);
        if (k->has_sum && !dnnl_memory_desc_equal(&us, q)) { /* the sum goes into the primitive's dst first */
            dnnl_primitive_desc_t rpd;
            if (dnnl_memory_create(&e->sum_user, &us, dnnl.engine, DNNL_MEMORY_NONE) != dnnl_success ||
                dnnl_reorder_primitive_desc_create(&rpd, &us, dnnl.engine, q, dnnl.engine, NULL) != dnnl_success)
                goto fail_pd;
            dnnl_status_t st = dnnl_primitive_create(&e->sum_reorder, rpd);
            dnnl_primitive_desc_destroy(rpd);
            if (st != dnnl_success)
                goto fail_pd;
        } else if (k->has_sum) {
            e->sum_bytes = dnnl_memory_desc_get_size(q);
        }
        break;
    case CONV_DNNL_BACKWARD_INPUT:
        ARG(DNNL_ARG_DIFF_DST, false, &uy, dnnl_query_diff_dst_md, 0);
        ARG(DNNL_ARG_WEIGHTS, false, &uw, dnnl_query_weights_md, 0);
        ARG(DNNL_ARG_DIFF_SRC, true, &ux, dnnl_query_diff_src_md, 0);
        break;
    default:
        ARG(DNNL_ARG_DIFF_DST, false, &uy, dnnl_query_diff_dst_md, 0);
        ARG(DNNL_ARG_SRC, false, &ux, dnnl_query_src_md, 0);
        ARG(DNNL_ARG_DIFF_WEIGHTS, true, &uw, dnnl_query_diff_weights_md, 0);
        break;
    }
#undef ARG
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = q ? dnnl_memory_desc_get_size(q) : 0;
    if (scratch) {
        if (dnnl_memory_create(&e->scratch, q, dnnl.engine, DNNL_MEMORY_NONE) != dnnl_success)
            goto fail_pd;
        e->scratch_offset = e->arena_size;
        e->arena_size += (scratch + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    }
    if (dnnl_primitive_create(&e->conv, pd) != dnnl_success)
        goto fail_pd;
    dnnl_primitive_desc_destroy(pd);
    return e;
fail_pd:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
fail:
    entry_destroy(e);
    e = calloc(1, sizeof *e); /* remember the failure so the next call does not retry */
    if (e) {
        e->key = *k;
        e->failed = true;
    }
    return e;
}

static ConvEntry *entry_find(const ConvKey *k)
{
    for (size_t i = 0; i < dnnl.count; i++)
        if (!memcmp(&dnnl.entries[i]->key, k, sizeof *k))
            return dnnl.entries[i];
    ConvEntry *e = entry_create(k);
    if (!e)
        return NULL;
    if (dnnl.count < CACHE_SIZE) {
        dnnl.entries[dnnl.count++] = e;
    } else { /* full: replace entries round-robin */
        entry_destroy(dnnl.entries[dnnl.next_evict]);
        dnnl.entries[dnnl.next_evict] = e;
        dnnl.next_evict = (dnnl.next_evict + 1) % CACHE_SIZE;
    }
    return e;
}

/* The shared arena holds at least `size` bytes (its old contents are not kept). */
static bool arena_reserve(size_t size)
{
    if (size <= dnnl.arena_size)
        return true;
    free(dnnl.arena);
    dnnl.arena = aligned_alloc(ARENA_ALIGN, (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    dnnl.arena_size = dnnl.arena ? size : 0;
    return dnnl.arena != NULL;
}

/* Where constant weights at `src` are reordered to: their own buffer, filled on the first call
 * (*cached false) and reused on later ones (*cached true); the arena when no slot is left. */
static void *weight_slot(ConvEntry *e, const ConvArg *a, const void *src, bool *cached)
{
    for (int i = 0; i < WEIGHT_SLOTS; i++) {
        WeightSlot *w = &e->wslots[i];
        if (w->buf && w->src == src) {
            *cached = true;
            return w->buf;
        }
        if (!w->buf) {
            w->buf = aligned_alloc(ARENA_ALIGN, (a->prim_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
            if (!w->buf)
                break;
            w->src = src;
            return w->buf;
        }
    }
    return dnnl.arena + a->offset;
}

static bool run(ConvEntry *e, void *const ptrs[CONV_ARGS], const float *sum)
{
    if (!arena_reserve(e->arena_size))
        return false;
    dnnl_exec_arg_t exec[CONV_ARGS + 1];
    bool cached[CONV_ARGS] = {false}; /* reordered on an earlier call: no reorder now */
    for (int i = 0; i < e->nargs; i++) {
        ConvArg *a = &e->args[i];
        if (dnnl_memory_set_data_handle(a->user, ptrs[i]) != dnnl_success)
            return false;
        void *prim_data = dnnl.arena + a->offset;
        if (a->prim != a->user && a->arg == DNNL_ARG_WEIGHTS && (e->key.layout & CONV_W_CONST))
            prim_data = weight_slot(e, a, ptrs[i], &cached[i]);
        if (a->prim != a->user && dnnl_memory_set_data_handle(a->prim, prim_data) != dnnl_success)
            return false;
        exec[i] = (dnnl_exec_arg_t){a->arg, a->prim};
    }
    int nexec = e->nargs;
    if (e->scratch) {
        if (dnnl_memory_set_data_handle(e->scratch, dnnl.arena + e->scratch_offset) != dnnl_success)
            return false;
        exec[nexec++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    }
    for (int i = 0; i < e->nargs; i++) {
        ConvArg *a = &e->args[i];
        if (a->reorder && !a->output && !cached[i]) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->prim}};
            if (dnnl_primitive_execute(a->reorder, dnnl.stream, 2, r) != dnnl_success)
                return false;
        }
    }
    if (e->key.has_sum) { /* dst holds the sum before the conv adds to it */
        ConvArg *dst = &e->args[e->nargs - 1];
        void *dst_data = dst->prim == dst->user ? ptrs[e->nargs - 1] : (void *)(dnnl.arena + dst->offset);
        if (e->sum_reorder) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, e->sum_user}, {DNNL_ARG_TO, dst->prim}};
            if (dnnl_memory_set_data_handle(e->sum_user, (void *)sum) != dnnl_success ||
                dnnl_primitive_execute(e->sum_reorder, dnnl.stream, 2, r) != dnnl_success)
                return false;
        } else if (dst_data != (void *)sum) {
            memcpy(dst_data, sum, e->sum_bytes);
        }
    }
    if (dnnl_primitive_execute(e->conv, dnnl.stream, nexec, exec) != dnnl_success)
        return false;
    for (int i = 0; i < e->nargs; i++) {
        ConvArg *a = &e->args[i];
        if (a->reorder && a->output) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->prim}, {DNNL_ARG_TO, a->user}};
            if (dnnl_primitive_execute(a->reorder, dnnl.stream, 2, r) != dnnl_success)
                return false;
        }
    }
    return dnnl_stream_wait(dnnl.stream) == dnnl_success;
}

static bool dnnl_call(ConvDnnlDir dir, float *out, const float *a, const float *b, const float *bias,
                      const float *sum, size_t n, size_t c_in, size_t c_out, size_t group, const SpatialWindow *win,
                      const ConvAct *act, unsigned layout)
{
    /* Inside a parallel region (a training program's features pass runs one sample per thread) the
     * shared primitive cache and arena below would race, and conv.c's single-threaded loops give the
     * same bits whatever thread runs them: that region always takes conv.c. */
    if (omp_get_level() > 0)
        return false;
    if (!conv_dnnl_enabled() || win->nd < 1 || win->nd > RT_MAX_SPATIAL || n == 0 || group == 0 ||
        c_in == 0 || c_out == 0 || c_in % group || c_out % group)
        return false;
    /* nChw8c: 2-D, whole blocks of 8 channels (the compiler blocks nothing else) */
    if ((layout & ~(unsigned)CONV_W_CONST) && (dir != CONV_DNNL_FORWARD || win->nd != 2 || ((layout & CONV_X_BLOCKED) && c_in % 8) ||
                   ((layout & (CONV_Y_BLOCKED | CONV_SUM_BLOCKED)) && c_out % 8)))
        return false;
    ConvKey k;
    memset(&k, 0, sizeof k);
    k.dir = (int)dir;
    k.threads = omp_get_max_threads();
    k.has_bias = dir == CONV_DNNL_FORWARD && bias != NULL;
    k.has_sum = dir == CONV_DNNL_FORWARD && sum != NULL;
    k.layout = (int)(layout & (CONV_X_BLOCKED | CONV_Y_BLOCKED | CONV_W_CONST | (sum ? CONV_SUM_BLOCKED : 0)));
    if (dir == CONV_DNNL_FORWARD && act && act->kind != CONV_ACT_NONE) {
        k.act_kind = (int)act->kind;
        k.act_lo = act->lo;
        k.act_hi = act->hi;
    }
    k.n = n, k.c_in = c_in, k.c_out = c_out, k.group = group, k.nd = win->nd;
    for (size_t i = 0; i < win->nd; i++) {
        k.in[i] = win->in[i];
        k.out[i] = win->out[i];
        k.k[i] = win->kernel[i];
        k.s[i] = win->stride[i] ? win->stride[i] : 1;
        k.d[i] = win->dilation[i] ? win->dilation[i] : 1;
        k.p[i] = win->pad_begin[i];
        if (!k.in[i] || !k.out[i] || !k.k[i])
            return false;
    }
    ConvEntry *e = entry_find(&k);
    if (!e || e->failed)
        return false;
    /* the pointers in the order entry_create added the arguments */
    void *ptrs[CONV_ARGS];
    int i = 0;
    ptrs[i++] = (void *)a;
    ptrs[i++] = (void *)b;
    if (k.has_bias)
        ptrs[i++] = (void *)bias;
    ptrs[i++] = out;
    return run(e, ptrs, sum);
}

bool conv_dnnl(ConvDnnlDir dir, float *out, const float *a, const float *b, const float *bias, size_t n,
               size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act)
{
    return dnnl_call(dir, out, a, b, bias, NULL, n, c_in, c_out, group, win, act, 0);
}

bool conv_dnnl_forward_sum(float *y, const float *x, const float *w, const float *bias, const float *sum, size_t n,
                           size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act)
{
    return dnnl_call(CONV_DNNL_FORWARD, y, x, w, bias, sum, n, c_in, c_out, group, win, act, 0);
}

bool conv_dnnl_forward_layout(float *y, const float *x, const float *w, const float *bias, const float *sum,
                              size_t n, size_t c_in, size_t c_out, size_t group, const SpatialWindow *win,
                              const ConvAct *act, unsigned layout)
{
    return dnnl_call(CONV_DNNL_FORWARD, y, x, w, bias, sum, n, c_in, c_out, group, win, act, layout);
}

#endif
