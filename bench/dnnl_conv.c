/* dnnl_conv.c - oneDNN's convolutions against onnxtune's (kernels/conv.c) on every conv of resnet18 and
 * mobilenet_v2 at 224x224, batch 16: forward, backward-data and backward-weights, at 1..N threads.
 * oneDNN runs twice: on plain NCHW/OIHW memory (what our runtime could call as is) and on the layouts
 * it prefers (format_tag_any: nChw8c-style blocking), timed without and with the reorders to and from
 * NCHW that a call from our NCHW runtime would need. It also checks that oneDNN agrees with us:
 * max |ours - oneDNN| / max |ours| over each output. Not built by CMake; from the repo root:
 *   cmake --build build --target onnxtune_kernels
 *   gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -fopenmp -Ikernels -I/usr/include/x86_64-linux-gnu/openblas-openmp \
 *       bench/dnnl_conv.c build/libonnxtune_kernels.a -ldnnl /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so \
 *       -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp -ldnnl -lm -o build/bench_dnnl_conv
 *   OMP_WAIT_POLICY=passive build/bench_dnnl_conv [max_threads] [resnet18|mobilenet_v2|all] [reps] [min_threads]
 * Runs are interleaved (ours, plain, blocked, reorders, ours, ...) and the median of each is kept.
 * BENCH_CPU_TIME=1 times by process CPU time instead of wall time: on a loaded machine, for 1 thread
 * only (it adds up the threads). The first line is OpenBLAS's sgemm 1024^3, the peak to compare with. */
#include "kernels.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        dnnl_status_t st_ = (call);                                                            \
        if (st_ != dnnl_success) {                                                             \
            fprintf(stderr, "%s:%d: %s: oneDNN status %d\n", __FILE__, __LINE__, #call, st_); \
            exit(2);                                                                           \
        }                                                                                      \
    } while (0)

enum { MAX_SHAPES = 64, MAX_REPS = 15 };
enum { FWD, BWD_DATA, BWD_WEIGHTS, NDIR };                 /* the three convolutions of a training step */
enum { OURS, PLAIN, BLOCKED, REORDER, NIMPL };             /* REORDER: the blocked run's reorders only */
static const char *const dir_name[NDIR] = {"fwd", "bwd-data", "bwd-weights"};

typedef struct Shape {
    const char *model, *kind;                /* kind: stem, 3x3, 3x3 s2, 1x1, 1x1 s2, dw, dw s2 */
    size_t c_in, c_out, group, in, k, stride, count; /* count: how often the model has this conv */
} Shape;

static Shape shapes[MAX_SHAPES];
static size_t nshape;

static void add_shape(const char *model, size_t c_in, size_t c_out, size_t group, size_t in, size_t k,
                      size_t stride)
{
    for (size_t i = 0; i < nshape; i++) {
        Shape *s = &shapes[i];
        if (!strcmp(s->model, model) && s->c_in == c_in && s->c_out == c_out && s->group == group && s->in == in &&
            s->k == k && s->stride == stride) {
            s->count++;
            return;
        }
    }
    const char *kind = group > 1 ? (stride > 1 ? "dw s2" : "dw")
                       : k == 1  ? (stride > 1 ? "1x1 s2" : "1x1")
                       : k == 3  ? (stride > 1 ? "3x3 s2" : "3x3")
                                 : "stem";
    if (c_in == 3)
        kind = "stem";
    shapes[nshape++] = (Shape){model, kind, c_in, c_out, group, in, k, stride, 1};
}

/* Every conv of torchvision's resnet18 and mobilenet_v2 at 224x224 (equal ones counted). */
static void list_shapes(void)
{
    add_shape("resnet18", 3, 64, 1, 224, 7, 2);
    size_t c = 64, in = 56;
    for (size_t stage = 0; stage < 4; stage++) {
        size_t cout = 64u << stage, s = stage ? 2 : 1;
        add_shape("resnet18", c, cout, 1, in, 3, s);            /* block 0 conv1 */
        if (s > 1)
            add_shape("resnet18", c, cout, 1, in, 1, s);        /* downsample */
        in /= s;
        for (int i = 0; i < 3; i++)                             /* block 0 conv2, block 1 conv1, conv2 */
            add_shape("resnet18", cout, cout, 1, in, 3, 1);
        c = cout;
    }
    static const size_t setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                         {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};   /* t, c, n, s */
    add_shape("mobilenet_v2", 3, 32, 1, 224, 3, 2);
    c = 32, in = 112;
    for (size_t i = 0; i < 7; i++)
        for (size_t j = 0; j < setting[i][2]; j++) {
            size_t s = j ? 1 : setting[i][3], hidden = c * setting[i][0];
            if (hidden != c)
                add_shape("mobilenet_v2", c, hidden, 1, in, 1, 1);
            add_shape("mobilenet_v2", hidden, hidden, hidden, in, 3, s);
            in = (in + 2 - 3) / s + 1;
            add_shape("mobilenet_v2", hidden, setting[i][1], 1, in, 1, 1);
            c = setting[i][1];
        }
    add_shape("mobilenet_v2", 320, 1280, 1, 7, 1, 1);
}

static double now(void)
{
    static int cpu = -1;
    if (cpu < 0)
        cpu = getenv("BENCH_CPU_TIME") && atoi(getenv("BENCH_CPU_TIME")) > 0;
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *filled(size_t n, unsigned seed)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((double)(((i + seed) * 2654435761u) % 1000) / 1000.0 - 0.5);
    return p;
}

/* max |a - b| / max |a|: the error relative to the output's scale */
static double max_rel(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i], v = a[i] < 0 ? -a[i] : a[i];
        d = e > d ? e : d;
        m = v > m ? v : m;
    }
    return m > 0 ? d / m : d;
}

/* ------------------------------------------------------------------------ oneDNN plumbing */

static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* A oneDNN tensor: plain memory over our buffer, and (when the primitive prefers another layout) its own
 * memory in that layout with reorders both ways. */
typedef struct Tensor {
    dnnl_memory_t plain, blocked;
    dnnl_primitive_t to_blocked, to_plain;   /* NULL when the layouts agree */
} Tensor;

static void tensor_init(Tensor *t, const dnnl_memory_desc_t *plain_md, const dnnl_memory_desc_t *want, float *buf)
{
    CHECK(dnnl_memory_create(&t->plain, plain_md, engine, buf));
    t->to_blocked = t->to_plain = NULL;
    if (dnnl_memory_desc_equal(plain_md, want)) {
        t->blocked = t->plain;
        return;
    }
    CHECK(dnnl_memory_create(&t->blocked, want, engine, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, plain_md, engine, want, engine, NULL));
    CHECK(dnnl_primitive_create(&t->to_blocked, pd));
    dnnl_primitive_desc_destroy(pd);
    CHECK(dnnl_reorder_primitive_desc_create(&pd, want, engine, plain_md, engine, NULL));
    CHECK(dnnl_primitive_create(&t->to_plain, pd));
    dnnl_primitive_desc_destroy(pd);
}

static void tensor_free(Tensor *t)
{
    if (t->blocked != t->plain) {
        dnnl_memory_destroy(t->blocked);
        dnnl_primitive_destroy(t->to_blocked);
        dnnl_primitive_destroy(t->to_plain);
    }
    dnnl_memory_destroy(t->plain);
}

static void reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    if (!r)
        return;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    CHECK(dnnl_primitive_execute(r, stream, 2, args));
}

/* One oneDNN convolution (one direction) with its two inputs and one output. */
typedef struct Op {
    dnnl_primitive_t prim;
    const char *impl;
    int arg[3];          /* the two inputs, the output */
    Tensor t[3];
} Op;

static void op_run(Op *op, int blocked)
{
    dnnl_exec_arg_t args[3];
    for (int i = 0; i < 3; i++)
        args[i] = (dnnl_exec_arg_t){op->arg[i], blocked ? op->t[i].blocked : op->t[i].plain};
    CHECK(dnnl_primitive_execute(op->prim, stream, 3, args));
    CHECK(dnnl_stream_wait(stream));
}

static void op_reorders(Op *op)
{
    reorder(op->t[0].to_blocked, op->t[0].plain, op->t[0].blocked);
    reorder(op->t[1].to_blocked, op->t[1].plain, op->t[1].blocked);
    reorder(op->t[2].to_plain, op->t[2].blocked, op->t[2].plain);
    CHECK(dnnl_stream_wait(stream));
}

/* Buffers of one conv and its geometry (dims as oneDNN wants them). */
typedef struct Conv {
    const Shape *s;
    size_t n, out, nx, ny, nw;
    float *x, *w, *y, *dx, *dy, *dw, *ws;         /* ours */
    float *x2, *w2, *y2, *dx2, *dy2, *dw2;        /* oneDNN's outputs, and inputs copied from ours */
    SpatialWindow win;
    dnnl_memory_desc_t x_md, w_md, y_md;          /* plain */
    dnnl_dims_t strides, pad;
} Conv;

static void conv_setup(Conv *c, const Shape *s, size_t n)
{
    memset(c, 0, sizeof *c);
    c->s = s, c->n = n;
    size_t pad = s->k / 2;
    c->out = (s->in + 2 * pad - s->k) / s->stride + 1;
    c->win = (SpatialWindow){.nd = 2, .in = {s->in, s->in}, .out = {c->out, c->out}, .kernel = {s->k, s->k},
                             .stride = {s->stride, s->stride}, .dilation = {1, 1}, .pad_begin = {pad, pad},
                             .pad_end = {pad, pad}};
    c->nx = n * s->c_in * s->in * s->in, c->ny = n * s->c_out * c->out * c->out;
    c->nw = s->c_out * (s->c_in / s->group) * s->k * s->k;
    c->x = filled(c->nx, 1), c->w = filled(c->nw, 2), c->dy = filled(c->ny, 3);
    c->y = filled(c->ny, 0), c->dx = filled(c->nx, 0), c->dw = filled(c->nw, 0);
    c->y2 = filled(c->ny, 0), c->dx2 = filled(c->nx, 0), c->dw2 = filled(c->nw, 0);
    size_t ws = conv_forward_workspace(n, s->c_in, s->c_out, s->group, &c->win);
    size_t a = conv_backward_input_workspace(n, s->c_in, s->c_out, s->group, &c->win);
    size_t b = conv_backward_weight_workspace(n, s->c_in, s->c_out, s->group, &c->win);
    ws = ws > a ? ws : a;
    c->ws = filled((ws > b ? ws : b) / sizeof(float) + 16, 0);

    dnnl_dims_t xd = {(dnnl_dim_t)n, (dnnl_dim_t)s->c_in, (dnnl_dim_t)s->in, (dnnl_dim_t)s->in};
    dnnl_dims_t yd = {(dnnl_dim_t)n, (dnnl_dim_t)s->c_out, (dnnl_dim_t)c->out, (dnnl_dim_t)c->out};
    CHECK(dnnl_memory_desc_init_by_tag(&c->x_md, 4, xd, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&c->y_md, 4, yd, dnnl_f32, dnnl_nchw));
    if (s->group > 1) {   /* [G, OC/G, IC/G, KH, KW]: the same bytes as ONNX's [OC, IC/G, KH, KW] */
        dnnl_dims_t wd = {(dnnl_dim_t)s->group, (dnnl_dim_t)(s->c_out / s->group), (dnnl_dim_t)(s->c_in / s->group),
                          (dnnl_dim_t)s->k, (dnnl_dim_t)s->k};
        CHECK(dnnl_memory_desc_init_by_tag(&c->w_md, 5, wd, dnnl_f32, dnnl_goihw));
    } else {
        dnnl_dims_t wd = {(dnnl_dim_t)s->c_out, (dnnl_dim_t)s->c_in, (dnnl_dim_t)s->k, (dnnl_dim_t)s->k};
        CHECK(dnnl_memory_desc_init_by_tag(&c->w_md, 4, wd, dnnl_f32, dnnl_oihw));
    }
    c->strides[0] = c->strides[1] = (dnnl_dim_t)s->stride;
    c->pad[0] = c->pad[1] = (dnnl_dim_t)pad;
}

static void conv_free(Conv *c)
{
    float *bufs[] = {c->x, c->w, c->y, c->dx, c->dy, c->dw, c->ws, c->y2, c->dx2, c->dw2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
}

static dnnl_memory_desc_t any_like(const dnnl_memory_desc_t *md)
{
    dnnl_memory_desc_t a;
    CHECK(dnnl_memory_desc_init_by_tag(&a, md->ndims, md->dims, dnnl_f32, dnnl_format_tag_any));
    return a;
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* The three primitives of one conv, on plain (blocked = 0) or preferred (blocked = 1) layouts. */
static void make_ops(Conv *c, int blocked, Op ops[NDIR])
{
    dnnl_memory_desc_t x = c->x_md, w = c->w_md, y = c->y_md;
    if (blocked)
        x = any_like(&c->x_md), w = any_like(&c->w_md), y = any_like(&c->y_md);
    dnnl_convolution_desc_t fd, bd, wd;
    CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &x, &w, NULL, &y,
                                             c->strides, c->pad, c->pad));
    CHECK(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &x, &w, &y, c->strides, c->pad,
                                                   c->pad));
    CHECK(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &x, &w, NULL, &y, c->strides,
                                                      c->pad, c->pad));
    dnnl_primitive_desc_t pd[NDIR];
    CHECK(dnnl_primitive_desc_create(&pd[FWD], &fd, NULL, engine, NULL));
    CHECK(dnnl_primitive_desc_create(&pd[BWD_DATA], &bd, NULL, engine, pd[FWD]));
    CHECK(dnnl_primitive_desc_create(&pd[BWD_WEIGHTS], &wd, NULL, engine, pd[FWD]));
    /* inputs, output: (arg, our buffer, its plain desc, the primitive's desc) */
    struct { int arg; float *buf; const dnnl_memory_desc_t *md; dnnl_query_t q; } io[NDIR][3] = {
        {{DNNL_ARG_SRC, c->x, &c->x_md, dnnl_query_src_md}, {DNNL_ARG_WEIGHTS, c->w, &c->w_md, dnnl_query_weights_md},
         {DNNL_ARG_DST, c->y2, &c->y_md, dnnl_query_dst_md}},
        {{DNNL_ARG_DIFF_DST, c->dy, &c->y_md, dnnl_query_diff_dst_md},
         {DNNL_ARG_WEIGHTS, c->w, &c->w_md, dnnl_query_weights_md},
         {DNNL_ARG_DIFF_SRC, c->dx2, &c->x_md, dnnl_query_diff_src_md}},
        {{DNNL_ARG_SRC, c->x, &c->x_md, dnnl_query_src_md},
         {DNNL_ARG_DIFF_DST, c->dy, &c->y_md, dnnl_query_diff_dst_md},
         {DNNL_ARG_DIFF_WEIGHTS, c->dw2, &c->w_md, dnnl_query_diff_weights_md}},
    };
    for (int d = 0; d < NDIR; d++) {
        CHECK(dnnl_primitive_create(&ops[d].prim, pd[d]));
        const_dnnl_primitive_desc_t own;   /* the primitive's copy, which lives as long as the primitive */
        CHECK(dnnl_primitive_get_primitive_desc(ops[d].prim, &own));
        CHECK(dnnl_primitive_desc_query(own, dnnl_query_impl_info_str, 0, &ops[d].impl));
        for (int i = 0; i < 3; i++) {
            ops[d].arg[i] = io[d][i].arg;
            tensor_init(&ops[d].t[i], io[d][i].md, query(pd[d], io[d][i].q), io[d][i].buf);
        }
    }
    for (int d = 0; d < NDIR; d++)
        dnnl_primitive_desc_destroy(pd[d]);
}

static void free_ops(Op ops[NDIR])
{
    for (int d = 0; d < NDIR; d++) {
        for (int i = 0; i < 3; i++)
            tensor_free(&ops[d].t[i]);
        dnnl_primitive_destroy(ops[d].prim);
    }
}

static void run_ours(Conv *c, int d)
{
    const Shape *s = c->s;
    if (d == FWD)
        conv_forward(c->y, c->x, c->w, NULL, c->n, s->c_in, s->c_out, s->group, &c->win, c->ws);
    else if (d == BWD_DATA)
        conv_backward_input(c->dx, c->dy, c->w, c->n, s->c_in, s->c_out, s->group, &c->win, c->ws);
    else
        conv_backward_weight(c->dw, c->dy, c->x, c->n, s->c_in, s->c_out, s->group, &c->win, c->ws);
}

/* ------------------------------------------------------------------------ main */

typedef struct Total {
    double ms[NDIR][NIMPL];
} Total;

static const char *const kinds[] = {"stem", "3x3", "3x3 s2", "1x1", "1x1 s2", "dw", "dw s2"};
enum { NKIND = sizeof kinds / sizeof *kinds };

static int kind_index(const char *kind)
{
    for (int i = 0; i < NKIND; i++)
        if (!strcmp(kinds[i], kind))
            return i;
    return 0;
}

int main(int argc, char **argv)
{
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    const char *only = argc > 2 && strcmp(argv[2], "all") ? argv[2] : NULL;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    reps = reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps;
    int min_threads = argc > 4 ? atoi(argv[4]) : 1;
    min_threads = min_threads < 1 ? 1 : min_threads > max_threads ? max_threads : min_threads;
    const size_t n = 16;
    list_shapes();
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    printf("oneDNN %d.%d.%d, effective ISA %d; batch %zu; median of %d interleaved runs; ms per conv; "
           "blocked+r = blocked + reorders from/to NCHW; err = max|ours-oneDNN|/max|ours|\n",
           v->major, v->minor, v->patch, (int)dnnl_get_effective_cpu_isa(), n, reps);
    for (int t = min_threads; t <= max_threads; t++) {   /* the sgemm peak: 1024^3, median of 9 */
        rt_set_threads(t);
        const int m = 1024;
        float *a = filled((size_t)m * m, 1), *b = filled((size_t)m * m, 2), *c = filled((size_t)m * m, 3);
        double tm[9];
        for (int r = -1; r < 9; r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, a, m, b, m, 0.0f, c, m);
            if (r >= 0)
                tm[r] = now() - t0;
        }
        qsort(tm, 9, sizeof(double), cmp_double);
        printf("sgemm 1024^3 (OpenBLAS %s), %d thread(s): %.1f GFLOP/s (best %.1f)\n", openblas_get_corename(), t,
               2e-9 * m * m * (double)m / tm[4], 2e-9 * m * m * (double)m / tm[0]);
        free(a), free(b), free(c);
    }
    printf("%-12s %-7s %-22s %2s %-11s %5s %8s %8s %8s %9s %8s %8s %9s  %s | %s\n", "model", "kind", "conv", "x",
           "dir", "thr", "ours", "plain", "blocked", "blocked+r", "o/plain", "o/blk+r", "err", "plain impl",
           "blocked impl");
    static Total tot[2][3];                  /* [model][thread-1] */
    static Total kind_ms[2][3][NKIND];       /* [model][thread-1][kind] */
    static double kind_gflop[2][NKIND];      /* 2 * MACs * count, one direction */
    for (size_t i = 0; i < nshape; i++) {
        const Shape *s = &shapes[i];
        if (only && strcmp(s->model, only))
            continue;
        Conv c;
        conv_setup(&c, s, n);
        char name[64];
        snprintf(name, sizeof name, "%zu->%zu %zux%zu k%zu s%zu", s->c_in, s->c_out, s->in, s->in, s->k, s->stride);
        for (int t = min_threads; t <= max_threads; t++) {
            rt_set_threads(t);
            Op plain[NDIR], blk[NDIR];
            make_ops(&c, 0, plain);
            make_ops(&c, 1, blk);
            for (int d = 0; d < NDIR; d++) {
                double tm[NIMPL][MAX_REPS];
                run_ours(&c, d), op_run(&plain[d], 0), op_reorders(&blk[d]), op_run(&blk[d], 1); /* warm up */
                for (int r = 0; r < reps; r++) {
                    double t0 = now();
                    run_ours(&c, d);
                    double t1 = now();
                    op_run(&plain[d], 0);
                    double t2 = now();
                    op_run(&blk[d], 1);
                    double t3 = now();
                    op_reorders(&blk[d]);
                    double t4 = now();
                    tm[OURS][r] = t1 - t0, tm[PLAIN][r] = t2 - t1, tm[BLOCKED][r] = t3 - t2, tm[REORDER][r] = t4 - t3;
                }
                double med[NIMPL];
                for (int k = 0; k < NIMPL; k++) {
                    qsort(tm[k], (size_t)reps, sizeof(double), cmp_double);
                    med[k] = tm[k][reps / 2] * 1e3;
                }
                /* agreement: plain output vs ours, then the blocked output (reordered back) vs ours */
                float *ours = d == FWD ? c.y : d == BWD_DATA ? c.dx : c.dw;
                float *theirs = d == FWD ? c.y2 : d == BWD_DATA ? c.dx2 : c.dw2;
                size_t len = d == FWD ? c.ny : d == BWD_DATA ? c.nx : c.nw;
                op_run(&plain[d], 0);
                double err = max_rel(ours, theirs, len);
                op_reorders(&blk[d]);   /* blocked output -> plain buffer */
                double e2 = max_rel(ours, theirs, len);
                err = e2 > err ? e2 : err;
                double br = med[BLOCKED] + med[REORDER];
                printf("%-12s %-7s %-22s %2zu %-11s %5d %8.2f %8.2f %8.2f %9.2f %8.2f %8.2f %9.1e  %s | %s\n", s->model,
                       s->kind, name, s->count, dir_name[d], t, med[OURS], med[PLAIN], med[BLOCKED], br,
                       med[OURS] / med[PLAIN], med[OURS] / br, err, plain[d].impl, blk[d].impl);
                int mi = strcmp(s->model, "resnet18") != 0, ki = kind_index(s->kind);
                for (int k = 0; k < NIMPL; k++) {
                    tot[mi][t - 1].ms[d][k] += (double)s->count * med[k];
                    kind_ms[mi][t - 1][ki].ms[d][k] += (double)s->count * med[k];
                }
                if (t == min_threads && d == FWD)
                    kind_gflop[mi][ki] += 2e-9 * (double)s->count * (double)c.ny * (double)(c.nw / s->c_out);
            }
            fflush(stdout);
            free_ops(plain);
            free_ops(blk);
        }
        conv_free(&c);
    }
    printf("\nwhole model, every conv x its count, ms per batch of %zu (blocked+r: with the reorders)\n", n);
    printf("%-12s %-11s %5s %9s %9s %9s %9s %8s %8s %8s\n", "model", "dir", "thr", "ours", "plain", "blocked",
           "blocked+r", "o/plain", "o/blk", "o/blk+r");
    for (int m = 0; m < 2; m++)
        for (int t = min_threads; t <= max_threads; t++)
            for (int d = 0; d < NDIR; d++) {
                const double *x = tot[m][t - 1].ms[d];
                if (x[OURS] == 0)
                    continue;
                printf("%-12s %-11s %5d %9.1f %9.1f %9.1f %9.1f %8.2f %8.2f %8.2f\n", m ? "mobilenet_v2" : "resnet18",
                       dir_name[d], t, x[OURS], x[PLAIN], x[BLOCKED], x[BLOCKED] + x[REORDER], x[OURS] / x[PLAIN],
                       x[OURS] / x[BLOCKED], x[OURS] / (x[BLOCKED] + x[REORDER]));
            }
    printf("\nGFLOP/s by layer kind (every conv of that kind x its count; blocked+r: with the reorders)\n");
    printf("%-12s %-7s %-11s %5s %8s %9s %9s %9s %9s\n", "model", "kind", "dir", "thr", "GFLOP", "ours", "plain",
           "blocked", "blocked+r");
    for (int m = 0; m < 2; m++)
        for (int ki = 0; ki < NKIND; ki++)
            for (int t = min_threads; t <= max_threads; t++)
                for (int d = 0; d < NDIR; d++) {
                    const double *x = kind_ms[m][t - 1][ki].ms[d], g = kind_gflop[m][ki];
                    if (x[OURS] == 0)
                        continue;
                    printf("%-12s %-7s %-11s %5d %8.2f %9.1f %9.1f %9.1f %9.1f\n", m ? "mobilenet_v2" : "resnet18",
                           kinds[ki], dir_name[d], t, g, g / x[OURS] * 1e3, g / x[PLAIN] * 1e3, g / x[BLOCKED] * 1e3,
                           g / (x[BLOCKED] + x[REORDER]) * 1e3);
                }
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
