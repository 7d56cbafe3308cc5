/* ops_conv.c - rules of the conv family (Conv, ConvTranspose) and the spatial geometry they share with
 * the pools: attributes with ONNX's defaults, output sizes, and auto_pad turned into explicit pads so
 * codegen never sees SAME_UPPER; the gradient rules of Conv and ConvTranspose and their backward ops
 * onnxtune.ConvGradInput and ConvGradWeight. It does not fold convolutions. */
#include "ir.h"

#include <math.h>
#include <string.h>

/* Larger kernel/stride/pad/dim values are taken as corrupt input (keeps the arithmetic overflow-free). */
#define GEOM_LIMIT ((int64_t)1 << 40)

/* Read an ints attribute of `count` entries (or fill `dflt`); ST_SHAPE naming it when malformed. */
static Status geom_ints(const Node *n, const char *name, int count, int64_t dflt, int64_t min, int64_t *out,
                        Diag *d)
{
    IntList l;
    if (!op_attr_ints(n, name, &l)) {
        for (int i = 0; i < count; i++)
            out[i] = dflt;
        return ST_OK;
    }
    if (l.n != (size_t)count)
        return diag_node(d, n, ST_SHAPE, "attribute %s has %zu entries, expected %d", name, l.n, count);
    for (int i = 0; i < count; i++) {
        if (l.v[i] < min || l.v[i] > GEOM_LIMIT)
            return diag_node(d, n, ST_SHAPE, "attribute %s has an invalid entry %lld", name, (long long)l.v[i]);
        out[i] = l.v[i];
    }
    return ST_OK;
}

Status conv_geom(const Node *n, int nsp, const int64_t *wkernel, ConvGeom *g, Diag *d)
{
    memset(g, 0, sizeof *g);
    if (nsp < 1 || nsp > IR_MAX_RANK - 2)
        return diag_node(d, n, ST_SHAPE, "needs 1 to %d spatial dims, not %d", IR_MAX_RANK - 2, nsp);
    g->nsp = nsp;
    const char *ap = node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") == 0)
        g->auto_pad = PAD_NOTSET;
    else if (strcmp(ap, "VALID") == 0)
        g->auto_pad = PAD_VALID;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        g->auto_pad = PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        g->auto_pad = PAD_SAME_LOWER;
    else
        return diag_node(d, n, ST_INVALID, "auto_pad '%s' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER", ap);
    g->ceil_mode = node_attr_int(n, "ceil_mode", 0) != 0;
    g->group = node_attr_int(n, "group", 1);
    if (g->group < 1 || g->group > GEOM_LIMIT)
        return diag_node(d, n, ST_INVALID, "attribute group must be positive, not %lld", (long long)g->group);
    Status st;
    IntList ks;
    if (op_attr_ints(n, "kernel_shape", &ks)) {
        if ((st = geom_ints(n, "kernel_shape", nsp, 1, 1, g->kernel, d)))
            return st;
        for (int i = 0; wkernel && i < nsp; i++)
            if (wkernel[i] >= 0 && wkernel[i] != g->kernel[i])
                return diag_node(d, n, ST_SHAPE, "attribute kernel_shape[%d] = %lld but the weight's kernel is %lld",
                                 i, (long long)g->kernel[i], (long long)wkernel[i]);
    } else {
        for (int i = 0; i < nsp; i++)
            g->kernel[i] = wkernel ? wkernel[i] : -1;
    }
    int64_t pads[2 * IR_MAX_RANK];
    if ((st = geom_ints(n, "strides", nsp, 1, 1, g->stride, d)) ||
        (st = geom_ints(n, "dilations", nsp, 1, 1, g->dilation, d)) ||
        (st = geom_ints(n, "pads", 2 * nsp, 0, 0, pads, d)) ||
        (st = geom_ints(n, "output_padding", nsp, 0, 0, g->out_pad, d)))
        return st;
    for (int i = 0; i < nsp; i++) {
        bool explicit_pads = g->auto_pad == PAD_NOTSET;
        g->pad_begin[i] = explicit_pads ? pads[i] : 0;
        g->pad_end[i] = explicit_pads ? pads[i + nsp] : 0;
    }
    return ST_OK;
}

/* dilation * (kernel - 1) + 1, or -1 when the kernel is unknown */
static int64_t eff_kernel(const ConvGeom *g, int i)
{
    return g->kernel[i] < 0 ? -1 : g->dilation[i] * (g->kernel[i] - 1) + 1;
}

int64_t conv_geom_out(ConvGeom *g, int i, int64_t in)
{
    int64_t k = eff_kernel(g, i), s = g->stride[i];
    if (in < 0 || in > GEOM_LIMIT)
        return -1;
    if (g->auto_pad == PAD_SAME_UPPER || g->auto_pad == PAD_SAME_LOWER) {
        int64_t out = (in + s - 1) / s;
        if (k >= 0) {
            int64_t total = (out - 1) * s + k - in;
            if (total < 0)
                total = 0;
            int64_t small = total / 2, big = total - small;
            g->pad_begin[i] = g->auto_pad == PAD_SAME_UPPER ? small : big;
            g->pad_end[i] = g->auto_pad == PAD_SAME_UPPER ? big : small;
        }
        return out;
    }
    if (k < 0)
        return -1;
    int64_t span = in + g->pad_begin[i] + g->pad_end[i] - k;
    if (span < 0)
        return 0; /* the caller reports a kernel larger than the padded input */
    int64_t out = (g->ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* ceil_mode: the last window must start inside the input or its left padding (PyTorch's rule) */
    if (g->ceil_mode && (out - 1) * s >= in + g->pad_begin[i])
        out--;
    return out;
}

int64_t conv_transpose_geom_out(ConvGeom *g, int i, int64_t in, int64_t want)
{
    int64_t k = eff_kernel(g, i), s = g->stride[i];
    bool same = g->auto_pad == PAD_SAME_UPPER || g->auto_pad == PAD_SAME_LOWER;
    if (in < 0 || in > GEOM_LIMIT)
        return want >= 0 ? want : -1;
    int64_t out = want >= 0 ? want : same ? in * s : -1;
    if (k < 0)
        return out;
    int64_t full = s * (in - 1) + g->out_pad[i] + k; /* the output before padding is cut off */
    if (out < 0)
        return full - g->pad_begin[i] - g->pad_end[i];
    int64_t total = full - out, small = total / 2, big = total - small;
    if (total < 0) { /* a larger output_shape: the extra positions at the end get only the bias */
        g->pad_begin[i] = 0;
        g->pad_end[i] = total;
    } else { /* ConvTranspose-11's rule (checked against the ONNX backend data for SAME_UPPER) */
        g->pad_begin[i] = g->auto_pad == PAD_SAME_UPPER ? small : big;
        g->pad_end[i] = g->auto_pad == PAD_SAME_UPPER ? big : small;
    }
    return out;
}

/* ---- Conv (1, 11): X [N, C, D1..Dk], W [M, C/group, k1..kk], B [M] -> Y [N, M, O1..Ok] ---- */

static Status conv_common(const Node *n, const Shape **x, const Shape **w, int *rank, Diag *d)
{
    *x = &n->inputs[0]->shape;
    *w = &n->inputs[1]->shape;
    *rank = (*x)->rank >= 0 ? (*x)->rank : (*w)->rank;
    char a[160], b[160];
    if ((*x)->rank >= 0 && (*w)->rank >= 0 && (*x)->rank != (*w)->rank)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s and input 1 (W) shape %s must have the same rank",
                         shape_str(*x, a, sizeof a), shape_str(*w, b, sizeof b));
    if (*rank >= 0 && *rank < 3)
        return diag_node(d, n, ST_SHAPE, "input %d shape %s must be at least 3-D (N, C, spatial...)",
                         (*x)->rank >= 0 ? 0 : 1, shape_str((*x)->rank >= 0 ? *x : *w, a, sizeof a));
    return ST_OK;
}

/* Check input 2 (B) is [channels]. */
static Status check_bias(const Node *n, int64_t channels, Diag *d)
{
    const Value *b = node_input(n, 2);
    if (!b || b->shape.rank < 0)
        return ST_OK;
    char a[160];
    if (b->shape.rank != 1 || (channels >= 0 && b->shape.dim[0] >= 0 && b->shape.dim[0] != channels))
        return diag_node(d, n, ST_SHAPE, "input 2 (B) shape %s must be [%lld] (the output channels)",
                         shape_str(&b->shape, a, sizeof a), (long long)channels);
    return ST_OK;
}

static Status conv_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    const Shape *x, *w;
    int rank;
    Status st = conv_common(n, &x, &w, &rank, d);
    if (st)
        return st;
    DType t = n->inputs[0]->dtype;
    if (rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    int nsp = rank - 2;
    int64_t wk[IR_MAX_RANK];
    for (int i = 0; i < nsp; i++)
        wk[i] = w->rank >= 0 ? w->dim[2 + i] : -1;
    ConvGeom g;
    if ((st = conv_geom(n, nsp, wk, &g, d)))
        return st;
    char a[160], b[160];
    int64_t c = x->rank >= 0 ? x->dim[1] : -1, cw = w->rank >= 0 ? w->dim[1] : -1, m = w->rank >= 0 ? w->dim[0] : -1;
    if (c >= 0 && cw >= 0 && c != cw * g.group)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s has %lld channels but input 1 (W) shape %s with group "
                         "%lld expects %lld", shape_str(x, a, sizeof a), (long long)c, shape_str(w, b, sizeof b),
                         (long long)g.group, (long long)(cw * g.group));
    if (m >= 0 && m % g.group)
        return diag_node(d, n, ST_SHAPE, "input 1 (W) shape %s: %lld output channels are not divisible by group "
                         "%lld", shape_str(w, b, sizeof b), (long long)m, (long long)g.group);
    if ((st = check_bias(n, m, d)))
        return st;
    Shape out = shape_make(rank, NULL);
    if (x->rank >= 0)
        dim_copy(&out, 0, x, 0);
    out.dim[1] = m;
    for (int i = 0; i < nsp; i++) {
        int64_t in = x->rank >= 0 ? x->dim[2 + i] : -1;
        out.dim[2 + i] = conv_geom_out(&g, i, in);
        if (out.dim[2 + i] == 0 && in > 0)
            return diag_node(d, n, ST_SHAPE, "input 0 shape %s: spatial dim %d (%lld, padded %lld+%lld) is smaller "
                             "than the dilated kernel %lld", shape_str(x, a, sizeof a), i, (long long)in,
                             (long long)g.pad_begin[i], (long long)g.pad_end[i], (long long)eff_kernel(&g, i));
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* MACs: N * M * prod(out spatial) * C/group * prod(kernel) */
static double conv_flops(const Node *n)
{
    if (n->ninputs < 2 || !n->inputs[1] || n->noutputs < 1)
        return 0;
    const Shape *w = &n->inputs[1]->shape;
    double per_out = 1;
    for (int i = 1; i < w->rank; i++)
        per_out *= (double)w->dim[i];
    return shape_is_static(w) ? shape_numel_or0(&n->outputs[0]->shape) * per_out : 0;
}

/* ---- ConvTranspose (1, 11): X [N, C, D..], W [C, M/group, k..] -> Y [N, M, O..] ---- */

static Status conv_transpose_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    const Shape *x, *w;
    int rank;
    Status st = conv_common(n, &x, &w, &rank, d);
    if (st)
        return st;
    DType t = n->inputs[0]->dtype;
    if (rank < 0) {
        op_set_output(n, 0, t, NULL);
        return ST_OK;
    }
    int nsp = rank - 2;
    int64_t wk[IR_MAX_RANK];
    for (int i = 0; i < nsp; i++)
        wk[i] = w->rank >= 0 ? w->dim[2 + i] : -1;
    ConvGeom g;
    if ((st = conv_geom(n, nsp, wk, &g, d)))
        return st;
    char a[160], b[160];
    int64_t c = x->rank >= 0 ? x->dim[1] : -1, cw = w->rank >= 0 ? w->dim[0] : -1;
    int64_t m = w->rank >= 0 && w->dim[1] >= 0 ? w->dim[1] * g.group : -1;
    if (c >= 0 && cw >= 0 && c != cw)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s has %lld channels but input 1 (W) shape %s expects %lld",
                         shape_str(x, a, sizeof a), (long long)c, shape_str(w, b, sizeof b), (long long)cw);
    if (cw >= 0 && cw % g.group)
        return diag_node(d, n, ST_SHAPE, "input 1 (W) shape %s: %lld input channels are not divisible by group %lld",
                         shape_str(w, b, sizeof b), (long long)cw, (long long)g.group);
    if ((st = check_bias(n, m, d)))
        return st;
    IntList os;
    bool have_os = op_attr_ints(n, "output_shape", &os);
    if (have_os && os.n != (size_t)nsp && os.n != (size_t)rank)
        return diag_node(d, n, ST_SHAPE, "attribute output_shape has %zu entries for %d spatial dims", os.n, nsp);
    for (int i = 0; i < nsp; i++)
        if (g.out_pad[i] >= g.stride[i] && g.out_pad[i] >= g.dilation[i])
            return diag_node(d, n, ST_SHAPE, "output_padding[%d] = %lld must be smaller than the stride or dilation",
                             i, (long long)g.out_pad[i]);
    Shape out = shape_make(rank, NULL);
    if (x->rank >= 0)
        dim_copy(&out, 0, x, 0);
    out.dim[1] = m;
    for (int i = 0; i < nsp; i++) {
        int64_t want = have_os ? os.v[os.n - (size_t)nsp + (size_t)i] : -1;
        if (have_os && (want < 0 || want > GEOM_LIMIT))
            return diag_node(d, n, ST_SHAPE, "attribute output_shape has an invalid size %lld", (long long)want);
        int64_t in = x->rank >= 0 ? x->dim[2 + i] : -1;
        out.dim[2 + i] = conv_transpose_geom_out(&g, i, in, want);
        if (out.dim[2 + i] < -1 || (in > 0 && out.dim[2 + i] == 0 && !have_os))
            return diag_node(d, n, ST_SHAPE, "pads %lld+%lld remove all of spatial dim %d of input 0 shape %s",
                             (long long)g.pad_begin[i], (long long)g.pad_end[i], i, shape_str(x, a, sizeof a));
    }
    op_set_output(n, 0, t, &out);
    return ST_OK;
}

/* MACs: N * C * prod(in spatial) * M/group * prod(kernel) */
static double conv_transpose_flops(const Node *n)
{
    if (n->ninputs < 2 || !n->inputs[0] || !n->inputs[1])
        return 0;
    const Shape *w = &n->inputs[1]->shape;
    double per_in = 1;
    for (int i = 1; i < w->rank; i++)
        per_in *= (double)w->dim[i];
    return shape_is_static(w) ? shape_numel_or0(&n->inputs[0]->shape) * per_in : 0;
}

/* ======================================================================== gradients */

Status conv_geom_resolve(const Node *n, const Shape *x, const int64_t *wkernel, ConvGeom *g, Diag *d)
{
    char a[160];
    if (!shape_is_static(x) || x->rank < 3)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be static and at least 3-D for training (pass "
                         "--batch)", shape_str(x, a, sizeof a));
    Status st = conv_geom(n, x->rank - 2, wkernel, g, d);
    if (st)
        return st;
    for (int i = 0; i < g->nsp; i++) {
        if (g->kernel[i] < 1)
            return diag_node(d, n, ST_SHAPE, "the kernel size of spatial dim %d is unknown", i);
        conv_geom_out(g, i, x->dim[2 + i]);
    }
    return ST_OK;
}

Status conv_geom_set_attrs(Graph *gr, Node *b, const ConvGeom *g, Diag *d)
{
    int64_t pads[2 * IR_MAX_RANK];
    size_t nsp = (size_t)g->nsp;
    for (size_t i = 0; i < nsp; i++) {
        pads[i] = g->pad_begin[i];
        pads[i + nsp] = g->pad_end[i];
    }
    Status st;
    if ((st = node_set_attr_ints(gr, b, "kernel_shape", g->kernel, nsp, d)) ||
        (st = node_set_attr_ints(gr, b, "strides", g->stride, nsp, d)) ||
        (st = node_set_attr_ints(gr, b, "dilations", g->dilation, nsp, d)) ||
        (st = node_set_attr_ints(gr, b, "pads", pads, 2 * nsp, d)))
        return st;
    if (g->group != 1 && (st = node_set_attr_int(gr, b, "group", g->group, d)))
        return st;
    if (g->ceil_mode && (st = node_set_attr_int(gr, b, "ceil_mode", 1, d)))
        return st;
    return ST_OK;
}

Status conv_geom_check(const Node *n, ConvGeom *g, const Shape *in, const Shape *out, Diag *d)
{
    for (int i = 0; i < g->nsp; i++) {
        int64_t o = conv_geom_out(g, i, in->dim[2 + i]);
        if (o >= 0 && out->dim[2 + i] >= 0 && o != out->dim[2 + i]) {
            char a[160], b[160];
            return diag_node(d, n, ST_SHAPE, "spatial dim %d: input %s gives %lld outputs under this window, the "
                             "gradient %s has %lld", i, shape_str(in, a, sizeof a), (long long)o,
                             shape_str(out, b, sizeof b), (long long)out->dim[2 + i]);
        }
    }
    return ST_OK;
}

/* onnxtune.ConvGradInput (1): dY [N, M, O...], W [M, C/group, k...] -> dX of shape attribute input_shape
 * [N, C, D...]; window attributes as Conv's with explicit pads. */
static Status conv_grad_input_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    Status st;
    const Shape *dy = &n->inputs[0]->shape, *w = &n->inputs[1]->shape;
    IntList is;
    if (!op_attr_ints(n, "input_shape", &is))
        return diag_node(d, n, ST_INVALID, "attribute input_shape is required");
    Shape x = shape_make((int)(is.n <= IR_MAX_RANK ? is.n : 0), NULL);
    for (int i = 0; i < x.rank; i++)
        x.dim[i] = is.v[i];
    char a[160], b[160], e[160];
    if (x.rank < 3 || !shape_is_static(&x) || dy->rank != x.rank || w->rank != x.rank || !shape_is_static(w))
        return diag_node(d, n, ST_SHAPE, "dY %s, W %s and input_shape %s must be static and of one rank >= 3",
                         shape_str(dy, a, sizeof a), shape_str(w, b, sizeof b), shape_str(&x, e, sizeof e));
    ConvGeom g;
    if ((st = conv_geom(n, x.rank - 2, w->dim + 2, &g, d)) || (st = conv_geom_check(n, &g, &x, dy, d)))
        return st;
    if (x.dim[1] != w->dim[1] * g.group || dim_conflict(dy, 1, w, 0) || dim_conflict(dy, 0, &x, 0))
        return diag_node(d, n, ST_SHAPE, "dY %s, W %s and input_shape %s disagree on N or channels (group %lld)",
                         shape_str(dy, a, sizeof a), shape_str(w, b, sizeof b), shape_str(&x, e, sizeof e),
                         (long long)g.group);
    op_set_output(n, 0, n->inputs[0]->dtype, &x);
    return ST_OK;
}

/* onnxtune.ConvGradWeight (1): dY [N, M, O...], X [N, C, D...] -> dW [M, C/group, kernel_shape...]. */
static Status conv_grad_weight_shape(Graph *gr, Node *n, Diag *d)
{
    (void)gr;
    Status st;
    const Shape *dy = &n->inputs[0]->shape, *x = &n->inputs[1]->shape;
    char a[160], b[160];
    if (x->rank < 3 || !shape_is_static(x) || !shape_is_static(dy) || dy->rank != x->rank)
        return diag_node(d, n, ST_SHAPE, "dY %s and X %s must be static and of one rank >= 3",
                         shape_str(dy, a, sizeof a), shape_str(x, b, sizeof b));
    ConvGeom g;
    IntList ks;
    if (!op_attr_ints(n, "kernel_shape", &ks))
        return diag_node(d, n, ST_INVALID, "attribute kernel_shape is required");
    if ((st = conv_geom(n, x->rank - 2, NULL, &g, d)) || (st = conv_geom_check(n, &g, x, dy, d)))
        return st;
    if (x->dim[1] % g.group || dy->dim[1] % g.group || dy->dim[0] != x->dim[0])
        return diag_node(d, n, ST_SHAPE, "dY %s and X %s do not fit group %lld", shape_str(dy, a, sizeof a),
                         shape_str(x, b, sizeof b), (long long)g.group);
    Shape w = shape_make(x->rank, NULL);
    w.dim[0] = dy->dim[1];
    w.dim[1] = x->dim[1] / g.group;
    for (int i = 0; i < g.nsp; i++)
        w.dim[2 + i] = g.kernel[i];
    op_set_output(n, 0, n->inputs[0]->dtype, &w);
    return ST_OK;
}

/* MACs of either backward conv: those of the forward conv, N * M * prod(out) * C/group * prod(kernel). */
static double conv_grad_input_flops(const Node *n)
{
    return n->ninputs == 2 && n->inputs[1] ? shape_numel_or0(&n->inputs[0]->shape) *
               shape_numel_or0(&n->inputs[1]->shape) / fmax(1.0, (double)n->inputs[1]->shape.dim[0]) : 0;
}

static double conv_grad_weight_flops(const Node *n)
{
    return n->noutputs == 1 ? shape_numel_or0(&n->inputs[0]->shape) * shape_numel_or0(&n->outputs[0]->shape) /
               fmax(1.0, (double)n->outputs[0]->shape.dim[0]) : 0;
}

/* The bias of a Conv or ConvTranspose (input 2): its gradient is dY summed over the batch and the
 * spatial axes. */
static Status bias_grad(GradCtx *c, Node *n, Value *dy, Diag *d)
{
    if (!grad_needed(c, n, 2))
        return ST_OK;
    Graph *gr = grad_graph(c);
    int64_t axes[IR_MAX_RANK] = {0};
    for (int i = 2; i < dy->shape.rank; i++)
        axes[i - 1] = i;
    Value *ax = graph_const_ints(gr, "conv_bias_axes", axes, (size_t)dy->shape.rank - 1, d);
    Node *r = ax ? grad_new_node(c, n, "", "ReduceSum", 2, (Value *[]){dy, ax}, 1, d) : NULL;
    if (!r || node_set_attr_int(gr, r, "keepdims", 0, d) || grad_finish_node(c, r, d) ||
        grad_accumulate(c, n, 2, r->outputs[0], d))
        return d->status;
    return ST_OK;
}

/* Conv: Y[n, m, o] = sum_{c in group(m), k} W[m, c, k] * X[n, c, o*stride - pad + k*dilation] + B[m].
 *   dX = ConvGradInput(dY, W)  (the adjoint: W^T dY scattered back through the window)
 *   dW = ConvGradWeight(dY, X) (sum over n and o of dY times the window of X)
 *   dB = ReduceSum(dY, axes = [0, 2, 3, ...]) */
static Status conv_grad(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0), *x = n->inputs[0], *w = n->inputs[1], *bias = node_input(n, 2);
    if (!dy)
        return ST_OK;
    Graph *gr = grad_graph(c);
    ConvGeom g;
    Status st;
    if (!shape_is_static(&w->shape) || w->shape.rank != x->shape.rank)
        return diag_node(d, n, ST_SHAPE, "the weight's shape must be static for training");
    if ((st = conv_geom_resolve(n, &x->shape, w->shape.dim + 2, &g, d)))
        return st;
    if (grad_needed(c, n, 0)) {
        Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, "ConvGradInput", 2, (Value *[]){dy, w}, 1, d);
        if (!b || (st = conv_geom_set_attrs(gr, b, &g, d)) ||
            (st = node_set_attr_ints(gr, b, "input_shape", x->shape.dim, (size_t)x->shape.rank, d)) ||
            (st = grad_finish_node(c, b, d)) || (st = grad_accumulate(c, n, 0, b->outputs[0], d)))
            return d->status;
    }
    if (grad_needed(c, n, 1)) {
        Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, "ConvGradWeight", 2, (Value *[]){dy, x}, 1, d);
        if (!b || (st = conv_geom_set_attrs(gr, b, &g, d)) || (st = grad_finish_node(c, b, d)) ||
            (st = grad_accumulate(c, n, 1, b->outputs[0], d)))
            return d->status;
    }
    return bias ? bias_grad(c, n, dy, d) : ST_OK;
}

/* ConvTranspose: Y[n, m, x*stride - pad + k*dilation] += W[c, m', k] * X[n, c, x] (+ B[m]) is the adjoint of
 * the Conv with input Y's shape, weight W read as [C, M/group, k...] and the same window, so:
 *   dX = Conv(dY, W)                (that Conv itself, a standard node)
 *   dW = ConvGradWeight(X, dY)      (that Conv's weight gradient with X as its output gradient)
 *   dB = ReduceSum(dY, axes = [0, 2, 3, ...])
 * The window is ConvTranspose's with auto_pad and output_shape resolved to explicit pads; an output_shape
 * larger than the full output adds positions that only get the bias: dX and dW read dY without them. */
static Status conv_transpose_grad(GradCtx *c, Node *n, Diag *d)
{
    Value *dy = grad_output(c, n, 0), *x = n->inputs[0], *w = n->inputs[1], *bias = node_input(n, 2);
    if (!dy)
        return ST_OK;
    Graph *gr = grad_graph(c);
    ConvGeom g;
    Status st;
    char a[160];
    if (!shape_is_static(&w->shape) || !shape_is_static(&x->shape) || x->shape.rank < 3 ||
        w->shape.rank != x->shape.rank)
        return diag_node(d, n, ST_SHAPE, "input 0 %s and the weight must be static for training (pass --batch)",
                         shape_str(&x->shape, a, sizeof a));
    int nsp = x->shape.rank - 2;
    if ((st = conv_geom(n, nsp, w->shape.dim + 2, &g, d)))
        return st;
    IntList os;
    bool have_os = op_attr_ints(n, "output_shape", &os), cut = false;
    int64_t starts[IR_MAX_RANK], ends[IR_MAX_RANK], axes[IR_MAX_RANK];
    for (int i = 0; i < nsp; i++) {
        int64_t want = have_os ? os.v[os.n - (size_t)nsp + (size_t)i] : -1;
        conv_transpose_geom_out(&g, i, x->shape.dim[2 + i], want);
        starts[i] = 0;
        ends[i] = dy->shape.dim[2 + i] + (g.pad_end[i] < 0 ? g.pad_end[i] : 0);
        axes[i] = 2 + i;
        cut |= g.pad_end[i] < 0;
        if (g.pad_end[i] < 0)
            g.pad_end[i] = 0;
    }
    g.auto_pad = PAD_NOTSET;
    Value *dyc = dy; /* dY without the bias-only positions past the full output */
    if (cut && (grad_needed(c, n, 0) || grad_needed(c, n, 1))) {
        Value *in[4] = {dy, graph_const_ints(gr, "cut_starts", starts, (size_t)nsp, d),
                        graph_const_ints(gr, "cut_ends", ends, (size_t)nsp, d),
                        graph_const_ints(gr, "cut_axes", axes, (size_t)nsp, d)};
        Node *sl = in[1] && in[2] && in[3] ? grad_add_node(c, n, "", "Slice", 4, in, 1, d) : NULL;
        if (!sl)
            return d->status;
        dyc = sl->outputs[0];
    }
    if (grad_needed(c, n, 0)) {
        Node *b = grad_new_node(c, n, "", "Conv", 2, (Value *[]){dyc, w}, 1, d);
        if (!b || (st = conv_geom_set_attrs(gr, b, &g, d)) || (st = grad_finish_node(c, b, d)) ||
            (st = grad_accumulate(c, n, 0, b->outputs[0], d)))
            return d->status;
    }
    if (grad_needed(c, n, 1)) {
        Node *b = grad_new_node(c, n, ONNXTUNE_DOMAIN, "ConvGradWeight", 2, (Value *[]){x, dyc}, 1, d);
        if (!b || (st = conv_geom_set_attrs(gr, b, &g, d)) || (st = grad_finish_node(c, b, d)) ||
            (st = grad_accumulate(c, n, 1, b->outputs[0], d)))
            return d->status;
    }
    return bias ? bias_grad(c, n, dy, d) : ST_OK;
}

/* name, domain, family, canonical opset, canon, shape, fold, flops, grad, then the signature */
const OpRule conv_rules[] = {
    {"Conv", "", "conv", 17, NULL, conv_shape, NULL, conv_flops, conv_grad, ARITY(2, 3, 1, 1), REQUIRED(2),
     DTYPES(IN_SAME(0, 1), IN_SAME(0, 2))},
    {"ConvTranspose", "", "conv", 17, NULL, conv_transpose_shape, NULL, conv_transpose_flops, conv_transpose_grad,
     ARITY(2, 3, 1, 1), REQUIRED(2), DTYPES(IN_SAME(0, 1), IN_SAME(0, 2))},
    {"ConvGradInput", ONNXTUNE_DOMAIN, "conv", 1, NULL, conv_grad_input_shape, NULL, conv_grad_input_flops, NULL,
     ARITY(2, 2, 1, 1), REQUIRED(2), DTYPES(IN_SAME(0, 1))},
    {"ConvGradWeight", ONNXTUNE_DOMAIN, "conv", 1, NULL, conv_grad_weight_shape, NULL, conv_grad_weight_flops, NULL,
     ARITY(2, 2, 1, 1), REQUIRED(2), DTYPES(IN_SAME(0, 1))},
    {0},
};
