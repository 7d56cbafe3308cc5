/* ops_image.c - rules of the image sampling ops: GridSample-16 (2-D, as torch.nn.functional.grid_sample),
 * RoiAlign-16 and MaxUnpool-11. Nothing folds; no gradients yet (GridSample's would be the first to
 * add: spatial transformers train through it). */
#include "ir.h"

#include <string.h>

static const Shape unknown_shape = {.rank = -1};

static const Shape *in_shape(const Node *n, int i)
{
    const Value *v = node_input(n, i);
    return v ? &v->shape : &unknown_shape;
}

static double flops_out0(const Node *n)
{
    return n->noutputs > 0 ? shape_numel_or0(&n->outputs[0]->shape) : 0;
}

/* A string attribute that must be one of `allowed` (NULL-terminated). */
static Status check_choice(const Node *n, const char *attr, const char *dflt, const char *const *allowed, Diag *d)
{
    const char *v = node_attr_string(n, attr, dflt);
    for (int i = 0; allowed[i]; i++)
        if (strcmp(v, allowed[i]) == 0)
            return ST_OK;
    return diag_node(d, n, ST_UNSUPPORTED, "attribute %s '%s' is not supported", attr, v);
}

/* ======================================================================== GridSample */

/* GridSample-16: X [N, C, H, W], grid [N, H_out, W_out, 2] (x, y in [-1, 1]) -> Y [N, C, H_out, W_out]. */
static Status gridsample_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0), *gr = in_shape(n, 1);
    char a[128], b[128];
    static const char *const modes[] = {"bilinear", "nearest", "bicubic", NULL};
    static const char *const pads[] = {"zeros", "border", "reflection", NULL};
    if ((st = check_choice(n, "mode", "bilinear", modes, d)) ||
        (st = check_choice(n, "padding_mode", "zeros", pads, d)))
        return st;
    if ((x->rank >= 0 && x->rank != 4) || (gr->rank >= 0 && (gr->rank != 4 || (gr->dim[3] >= 0 && gr->dim[3] != 2))) ||
        dim_conflict(x, 0, gr, 0))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s and grid shape %s must be [N, C, H, W] and [N, H_out, "
                         "W_out, 2]", shape_str(x, a, sizeof a), shape_str(gr, b, sizeof b));
    Shape out = shape_make(4, NULL);
    if (x->rank == 4) {
        dim_copy(&out, 0, x, 0);
        dim_copy(&out, 1, x, 1);
    }
    if (gr->rank == 4) {
        dim_merge(&out, 0, gr, 0);
        dim_copy(&out, 2, gr, 1);
        dim_copy(&out, 3, gr, 2);
    }
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

/* ======================================================================== RoiAlign */

/* RoiAlign-16: X [N, C, H, W], rois [R, 4] (x1, y1, x2, y2), batch_indices [R] -> [R, C, oh, ow]. */
static Status roialign_shape(Graph *g, Node *n, Diag *d)
{
    (void)g;
    Status st;
    const Shape *x = in_shape(n, 0), *r = in_shape(n, 1), *bi = in_shape(n, 2);
    char a[128], b[128];
    if ((st = check_choice(n, "mode", "avg", (const char *const[]){"avg", "max", NULL}, d)) ||
        (st = check_choice(n, "coordinate_transformation_mode", "half_pixel",
                           (const char *const[]){"half_pixel", "output_half_pixel", NULL}, d)))
        return st;
    if ((x->rank >= 0 && x->rank != 4) || (r->rank >= 0 && (r->rank != 2 || (r->dim[1] >= 0 && r->dim[1] != 4))) ||
        (bi->rank >= 0 && bi->rank != 1) || (r->rank == 2 && bi->rank == 1 && dim_conflict(r, 0, bi, 0)))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s, rois %s: must be [N, C, H, W], [R, 4] and batch_indices "
                         "[R]", shape_str(x, a, sizeof a), shape_str(r, b, sizeof b));
    int64_t oh = node_attr_int(n, "output_height", 1), ow = node_attr_int(n, "output_width", 1);
    if (oh < 1 || ow < 1)
        return diag_node(d, n, ST_INVALID, "output_height and output_width must be >= 1");
    Shape out = shape_make(4, NULL);
    if (r->rank == 2)
        dim_copy(&out, 0, r, 0);
    if (x->rank == 4)
        dim_copy(&out, 1, x, 1);
    out.dim[2] = oh;
    out.dim[3] = ow;
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

/* ======================================================================== MaxUnpool */

/* MaxUnpool-11: X [N, C, in...], I (int64, flat indices into Y, as MaxPool's Indices), output_shape
 * (optional, constant) -> Y of output_shape or [N, C, (in - 1) * stride + kernel - pads...]. */
static Status maxunpool_shape(Graph *gr, Node *n, Diag *d)
{
    Status st;
    const Shape *x = in_shape(n, 0), *ix = in_shape(n, 1);
    char a[128], b[128];
    if (x->rank >= 0 && ix->rank >= 0 && !shape_equal(x, ix))
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s and indices shape %s differ", shape_str(x, a, sizeof a),
                         shape_str(ix, b, sizeof b));
    IntList os;
    if ((st = op_input_ints(gr, n, 2, &os, d)))
        return st;
    if (x->rank < 0) {
        op_set_output(n, 0, n->inputs[0]->dtype, NULL);
        return ST_OK;
    }
    if (x->rank < 3)
        return diag_node(d, n, ST_SHAPE, "input 0 shape %s must be [N, C, spatial...]", shape_str(x, a, sizeof a));
    Shape out = shape_make(x->rank, NULL);
    if (node_input(n, 2)) {
        if (os.known && os.n != (size_t)x->rank)
            return diag_node(d, n, ST_SHAPE, "output_shape has %zu values for rank %d", os.n, x->rank);
        for (int i = 0; os.known && i < x->rank; i++)
            out.dim[i] = os.v[i];
    } else {
        ConvGeom g;
        if ((st = conv_geom(n, x->rank - 2, NULL, &g, d)))
            return st;
        dim_copy(&out, 0, x, 0);
        dim_copy(&out, 1, x, 1);
        for (int i = 0; i < x->rank - 2; i++)
            out.dim[2 + i] = x->dim[2 + i] < 0 || g.kernel[i] < 0 ? -1
                             : (x->dim[2 + i] - 1) * g.stride[i] + g.kernel[i] - g.pad_begin[i] - g.pad_end[i];
    }
    op_set_output(n, 0, n->inputs[0]->dtype, &out);
    return ST_OK;
}

/* ======================================================================== the table */

const OpRule image_rules[] = {
    {"GridSample", "", "image", 16, NULL, gridsample_shape, NULL, flops_out0, NULL, ARITY(2, 2, 1, 1), REQUIRED(2),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_CLASS(1, TC_FLOAT)),
     .defaults = {{"mode", AT_STRING, 0, "bilinear"}, {"padding_mode", AT_STRING, 0, "zeros"}}},
    {"RoiAlign", "", "image", 16, NULL, roialign_shape, NULL, flops_out0, NULL, ARITY(3, 3, 1, 1), REQUIRED(3),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_SAME(0, 1), IN_IS(2, DT_INT64)),
     .defaults = {{"mode", AT_STRING, 0, "avg"}, {"coordinate_transformation_mode", AT_STRING, 0, "half_pixel"}}},
    {"MaxUnpool", "", "image", 11, NULL, maxunpool_shape, NULL, flops_out0, NULL, ARITY(2, 3, 1, 1), REQUIRED(2),
     DTYPES(IN_CLASS(0, TC_FLOAT), IN_IS(1, DT_INT64), IN_IS(2, DT_INT64))},
    {0},
};
