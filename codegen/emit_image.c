/* emit_image.c - emitters of GridSample, RoiAlign and MaxUnpool on kernels/image.c (float32 kernels,
 * other float types through EM_F32 copies). */
#include "emit.h"

#include <string.h>

static int choice(const char *v, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static Status emit_gridsample(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    static const char *const modes[] = {"bilinear", "nearest", "bicubic", NULL};
    static const char *const pads[] = {"zeros", "border", "reflection", NULL};
    int mode = choice(node_attr_string(n, "mode", "bilinear"), modes);
    int pad = choice(node_attr_string(n, "padding_mode", "zeros"), pads);
    if (mode < 0 || pad < 0)
        return cg_unsupported(cg, "mode or padding_mode");
    const int64_t *xd = x->shape.dim, *yd = y->shape.dim;
    cg_line(cg, "gridsample_forward(%s, %s, %s, %lld, %lld, %lld, %lld, %lld, %lld, %d, %d, %s);", cg_ptr(cg, y),
            cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), (long long)xd[0], (long long)xd[1], (long long)xd[2],
            (long long)xd[3], (long long)yd[2], (long long)yd[3], mode, pad,
            node_attr_int(n, "align_corners", 0) ? "true" : "false");
    return ST_OK;
}

static Status emit_roialign(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    const int64_t *xd = x->shape.dim, *yd = y->shape.dim;
    int64_t sampling = node_attr_int(n, "sampling_ratio", 0);
    if (sampling < 0)
        return cg_unsupported(cg, "sampling_ratio %lld", (long long)sampling);
    cg_line(cg, "roialign_forward(%s, %s, %s, %s, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %s, %s, %s);",
            cg_ptr(cg, y), cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), cg_ptr(cg, n->inputs[2]), (long long)xd[0],
            (long long)xd[1], (long long)xd[2], (long long)xd[3], (long long)yd[0], (long long)yd[2],
            (long long)yd[3], (long long)sampling, cg_float(cg, node_attr_float(n, "spatial_scale", 1.0f)),
            strcmp(node_attr_string(n, "coordinate_transformation_mode", "half_pixel"), "half_pixel") == 0 ? "true"
                                                                                                          : "false",
            strcmp(node_attr_string(n, "mode", "avg"), "max") == 0 ? "true" : "false");
    return ST_OK;
}

/* The default unpooled shape (MaxPool's input), which the indices address. */
static Status emit_maxunpool(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    ConvGeom g;
    Diag d;
    diag_init(&d, NULL);
    if (conv_geom(n, r - 2, NULL, &g, &d))
        return cg_unsupported(cg, "%s", d.msg);
    size_t idims[IR_MAX_RANK], ydims[IR_MAX_RANK];
    cg_dims(&y->shape, ydims);
    idims[0] = (size_t)x->shape.dim[0];
    idims[1] = (size_t)x->shape.dim[1];
    for (int i = 0; i < r - 2; i++) {
        int64_t v = (x->shape.dim[2 + i] - 1) * g.stride[i] + g.kernel[i] - g.pad_begin[i] - g.pad_end[i];
        if (v < 1)
            return cg_unsupported(cg, "unpooled dim %d of %lld", i, (long long)v);
        idims[2 + i] = (size_t)v;
    }
    cg_line(cg, "maxunpool_forward(%s, %s, %s, %s, %zu, %s, %d);", cg_ptr(cg, y), cg_sizes(cg, ydims, (size_t)r),
            cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), cg_numel(x), cg_sizes(cg, idims, (size_t)r), r);
    return ST_OK;
}

const Emitter image_emitters[] = {
    EMIT("GridSample", emit_gridsample, NULL, EM_F32),
    EMIT("RoiAlign", emit_roialign, NULL, EM_F32),
    EMIT("MaxUnpool", emit_maxunpool, NULL, EM_F32),
    {0},
};
