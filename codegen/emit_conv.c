/* emit_conv.c - emitters of the conv family (Conv, ConvTranspose) on kernels/conv.c, and the spatial
 * window builder the pools share: attributes and SAME_* pads resolved by ir/ops_conv.c's geometry,
 * output sizes from shape inference, printed as one static SpatialWindow per node.
 * float32 kernels; other float types run in float32 copies (EM_F32). A Conv that ir/pass_fuse.c fused
 * with a BatchNormalization, residual Add and Relu/Clip after it runs on conv_forward_fused; one whose input,
 * output or residual codegen/layout.c keeps in the blocked layout on conv_forward_layout.
 *
 * Backward, below the forward emitters: emitters of the conv family's backward ops, onnxtune.ConvGradInput
 * and ConvGradWeight, on kernels/conv.c's conv_backward_input / conv_backward_weight, their workspace from
 * the scratch hook. The window is the forward Conv's (ir/ops_conv.c wrote it with explicit pads). float32
 * kernels (other float types through EM_F32 copies). ConvTranspose's backward needs no emitter of its own:
 * it is a Conv and a ConvGradWeight (ir/ops_conv.c). */
#include "emit.h"

#include <string.h>

/* Resolve n's window for input x (rank nsp + 2) and output y; false when the geometry is not one the
 * kernels take (more than RT_MAX_SPATIAL spatial dims, output_shape larger than the full output). */
bool cg_window(const Node *n, const Value *x, const Value *y, const int64_t *wkernel, bool transpose,
               SpatialWindow *win)
{
    int nsp = x->shape.rank - 2;
    ConvGeom g;
    Diag d;
    diag_init(&d, NULL);
    memset(win, 0, sizeof *win);
    if (nsp < 1 || nsp > RT_MAX_SPATIAL || y->shape.rank != x->shape.rank || conv_geom(n, nsp, wkernel, &g, &d))
        return false;
    IntList os;
    bool have_os = transpose && op_attr_ints(n, "output_shape", &os);
    win->nd = (size_t)nsp;
    for (int i = 0; i < nsp; i++) {
        int64_t in = x->shape.dim[2 + i];
        if (transpose)
            conv_transpose_geom_out(&g, i, in, have_os ? os.v[os.n - (size_t)nsp + (size_t)i] : -1);
        else
            conv_geom_out(&g, i, in);
        if (g.kernel[i] < 1 || g.pad_begin[i] < 0 || (!transpose && g.pad_end[i] < 0))
            return false;
        win->in[i] = (size_t)in;
        win->out[i] = (size_t)y->shape.dim[2 + i];
        win->kernel[i] = (size_t)g.kernel[i];
        win->stride[i] = (size_t)g.stride[i];
        win->dilation[i] = (size_t)g.dilation[i];
        win->pad_begin[i] = (size_t)g.pad_begin[i];
        win->pad_end[i] = g.pad_end[i] > 0 ? (size_t)g.pad_end[i] : 0;
    }
    return true;
}

static const char *sizes3(Cg *cg, const size_t *v, size_t nd)
{
    const char *s = cg_sizes(cg, v, nd);
    return s + strlen("(const size_t[])"); /* "{a, b}" for a designated initializer */
}

void cg_emit_window(Cg *cg, const SpatialWindow *w)
{
    cg_line(cg, "static const SpatialWindow win = {.nd = %zu, .in = %s, .out = %s, .kernel = %s,", w->nd,
            sizes3(cg, w->in, w->nd), sizes3(cg, w->out, w->nd), sizes3(cg, w->kernel, w->nd));
    cg_line(cg, "    .stride = %s, .dilation = %s, .pad_begin = %s, .pad_end = %s};", sizes3(cg, w->stride, w->nd),
            sizes3(cg, w->dilation, w->nd), sizes3(cg, w->pad_begin, w->nd), sizes3(cg, w->pad_end, w->nd));
}

static bool conv_setup(const Node *n, bool transpose, SpatialWindow *win, size_t *c_in, size_t *c_out, size_t *group)
{
    const Value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
    if (x->shape.rank < 3 || w->shape.rank != x->shape.rank)
        return false;
    int64_t wk[IR_MAX_RANK];
    for (int i = 2; i < w->shape.rank; i++)
        wk[i - 2] = w->shape.dim[i];
    if (!cg_window(n, x, y, wk, transpose, win))
        return false;
    *c_in = (size_t)x->shape.dim[1];
    *c_out = (size_t)y->shape.dim[1];
    *group = (size_t)node_attr_int(n, "group", 1);
    return *group >= 1;
}

static size_t scratch_conv(const Node *n)
{
    SpatialWindow win;
    size_t ci, co, gr;
    bool tr = strcmp(n->op_type, "ConvTranspose") == 0;
    if (!conv_setup(n, tr, &win, &ci, &co, &gr))
        return 0;
    size_t batch = (size_t)n->inputs[0]->shape.dim[0];
    if (node_attr(n, "onnxtune_act")) /* fused by ir/pass_fuse.c */
        return conv_forward_fused_workspace(batch, ci, co, gr, &win, node_input(n, 3) != NULL);
    return tr ? conv_transpose_forward_workspace(batch, ci, co, gr, &win)
              : conv_forward_workspace(batch, ci, co, gr, &win);
}

/* The CONV_*_BLOCKED flags of a Conv whose input, output or residual codegen/layout.c keeps blocked. */
static const char *conv_layout(Cg *cg, const Node *n)
{
    const char *x = cg_blocked(cg, n->inputs[0]) ? "CONV_X_BLOCKED" : NULL;
    const char *y = cg_blocked(cg, n->outputs[0]) ? "CONV_Y_BLOCKED" : NULL;
    const char *s = cg_blocked(cg, node_input(n, 7)) ? "CONV_SUM_BLOCKED" : NULL;
    if (!x && !y && !s)
        return NULL;
    const Value *b = node_input(n, 2);
    bool wconst = cg_is_const(cg, n->inputs[1]) && (!b || cg_is_const(cg, b)) && !node_input(n, 3);
    return cg_fmt(cg, "%s%s%s%s%s%s", x ? x : "", x && (y || s) ? " | " : "", y ? y : "", y && s ? " | " : "",
                  s ? s : "", wconst ? " | CONV_W_CONST" : "");
}

/* A Conv that ir/pass_fuse.c fused with what follows it: inputs 3-6 the BatchNormalization's
 * scale, bias, mean, var (or none), input 7 the residual (or none); onnxtune_act 0/1/2 = none/Relu/Clip. */
static void emit_conv_fused(Cg *cg, const Node *n, size_t ci, size_t co, size_t gr)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int64_t act = node_attr_int(n, "onnxtune_act", 0);
    const char *kind = act == 1 ? "CONV_ACT_RELU" : act == 2 ? "CONV_ACT_CLIP" : "CONV_ACT_NONE";
    cg_line(cg, "const ConvEpilogue ep = {.bn_scale = %s, .bn_bias = %s, .bn_mean = %s, .bn_var = %s, .bn_eps = %s,",
            cg_ptr_or_null(cg, node_input(n, 3)), cg_ptr_or_null(cg, node_input(n, 4)),
            cg_ptr_or_null(cg, node_input(n, 5)), cg_ptr_or_null(cg, node_input(n, 6)),
            cg_float(cg, node_attr_float(n, "onnxtune_bn_epsilon", 0.0f)));
    cg_line(cg, "    .sum = %s, .act = {%s, %s, %s}};", cg_ptr_or_null(cg, node_input(n, 7)), kind,
            cg_float(cg, node_attr_float(n, "onnxtune_act_lo", 0.0f)),
            cg_float(cg, node_attr_float(n, "onnxtune_act_hi", 0.0f)));
    const char *layout = conv_layout(cg, n);
    if (layout) {
        cg_line(cg, "conv_forward_layout(%s, %s, %s, %s, %lld, %zu, %zu, %zu, &win, &ep, %s, %s);", cg_ptr(cg, y),
                cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), cg_ptr_or_null(cg, node_input(n, 2)),
                (long long)x->shape.dim[0], ci, co, gr, layout, cg_scratch(cg));
        return;
    }
    cg_line(cg, "conv_forward_fused(%s, %s, %s, %s, %lld, %zu, %zu, %zu, &win, &ep, %s);", cg_ptr(cg, y), cg_ptr(cg, x),
            cg_ptr(cg, n->inputs[1]), cg_ptr_or_null(cg, node_input(n, 2)), (long long)x->shape.dim[0], ci, co, gr,
            cg_scratch(cg));
}

static Status emit_conv(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *w = n->inputs[1], *b = node_input(n, 2), *y = n->outputs[0];
    bool tr = strcmp(n->op_type, "ConvTranspose") == 0;
    SpatialWindow win;
    size_t ci, co, gr;
    if (cg_dtype(cg, x) != DT_FLOAT || cg_dtype(cg, w) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(x->dtype));
    if (!conv_setup(n, tr, &win, &ci, &co, &gr))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims, pads that only crop)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &win);
    if (!tr && node_attr(n, "onnxtune_act")) {
        emit_conv_fused(cg, n, ci, co, gr);
        return ST_OK;
    }
    const char *layout = tr ? NULL : conv_layout(cg, n);
    if (layout) {
        cg_line(cg, "conv_forward_layout(%s, %s, %s, %s, %lld, %zu, %zu, %zu, &win, NULL, %s, %s);", cg_ptr(cg, y),
                cg_ptr(cg, x), cg_ptr(cg, w), cg_ptr_or_null(cg, b), (long long)x->shape.dim[0], ci, co, gr, layout,
                cg_scratch(cg));
        return ST_OK;
    }
    cg_line(cg, "%s(%s, %s, %s, %s, %lld, %zu, %zu, %zu, &win, %s);", tr ? "conv_transpose_forward" : "conv_forward",
            cg_ptr(cg, y), cg_ptr(cg, x), cg_ptr(cg, w), cg_ptr_or_null(cg, b), (long long)x->shape.dim[0], ci, co,
            gr, cg_scratch(cg));
    return ST_OK;
}

const Emitter conv_emitters[] = {
    EMIT("Conv", emit_conv, scratch_conv, EM_F32),
    EMIT("ConvTranspose", emit_conv, scratch_conv, EM_F32),
    {0},
};

/* ======================================================================== backward */

/* The forward conv's sizes: x is the forward input (or dX), y the forward output (dY). */
typedef struct ConvGradSizes {
    SpatialWindow win;
    size_t n, c_in, c_out, group;
} ConvGradSizes;

static bool conv_grad_sizes(const Node *n, const Value *x, const Value *y, ConvGradSizes *s)
{
    if (x->shape.rank < 3 || y->shape.rank != x->shape.rank || !cg_window(n, x, y, NULL, false, &s->win))
        return false;
    s->n = (size_t)x->shape.dim[0];
    s->c_in = (size_t)x->shape.dim[1];
    s->c_out = (size_t)y->shape.dim[1];
    s->group = (size_t)node_attr_int(n, "group", 1);
    return s->group >= 1;
}

/* ConvGradInput(dY, W) -> dX */
static size_t scratch_grad_input(const Node *n)
{
    ConvGradSizes s;
    if (!conv_grad_sizes(n, n->outputs[0], n->inputs[0], &s))
        return 0;
    return conv_backward_input_workspace(s.n, s.c_in, s.c_out, s.group, &s.win);
}

static Status emit_grad_input(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *w = n->inputs[1], *dx = n->outputs[0];
    ConvGradSizes s;
    if (cg_dtype(cg, dy) != DT_FLOAT || cg_dtype(cg, w) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(dy->dtype));
    if (!conv_grad_sizes(n, dx, dy, &s))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &s.win);
    cg_line(cg, "conv_backward_input(%s, %s, %s, %zu, %zu, %zu, %zu, &win, %s);", cg_ptr(cg, dx), cg_ptr(cg, dy),
            cg_ptr(cg, w), s.n, s.c_in, s.c_out, s.group, cg_scratch(cg));
    return ST_OK;
}

/* ConvGradWeight(dY, X) -> dW */
static size_t scratch_grad_weight(const Node *n)
{
    ConvGradSizes s;
    if (!conv_grad_sizes(n, n->inputs[1], n->inputs[0], &s))
        return 0;
    return conv_backward_weight_workspace(s.n, s.c_in, s.c_out, s.group, &s.win);
}

static Status emit_grad_weight(Cg *cg, const Node *n)
{
    const Value *dy = n->inputs[0], *x = n->inputs[1], *dw = n->outputs[0];
    ConvGradSizes s;
    if (cg_dtype(cg, dy) != DT_FLOAT || cg_dtype(cg, x) != DT_FLOAT)
        return cg_unsupported(cg, "%s of %s", n->op_type, dtype_name(dy->dtype));
    if (!conv_grad_sizes(n, x, dy, &s))
        return cg_unsupported(cg, "this geometry (1 to %d spatial dims)", RT_MAX_SPATIAL);
    cg_emit_window(cg, &s.win);
    cg_line(cg, "conv_backward_weight(%s, %s, %s, %zu, %zu, %zu, %zu, &win, %s);", cg_ptr(cg, dw), cg_ptr(cg, dy),
            cg_ptr(cg, x), s.n, s.c_in, s.c_out, s.group, cg_scratch(cg));
    return ST_OK;
}

const Emitter conv_grad_emitters[] = {
    EMIT_ONNXTUNE("ConvGradInput", emit_grad_input, scratch_grad_input, EM_F32),
    EMIT_ONNXTUNE("ConvGradWeight", emit_grad_weight, scratch_grad_weight, EM_F32),
    {0},
};
