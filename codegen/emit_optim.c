/* emit_optim.c - emitters of Adagrad, Adam and Momentum (ai.onnx.preview.training-1) on
 * kernels/optim_onnx.c: one kernel call per updated tensor. float32 kernels (float64 through EM_F32
 * copies). Attributes the op table's two default slots do not cover get their ONNX defaults here. */
#include "emit.h"

#include <string.h>

static Status emit_onnx_optim(Cg *cg, const Node *n)
{
    bool adam = strcmp(n->op_type, "Adam") == 0, adagrad = strcmp(n->op_type, "Adagrad") == 0;
    int k = adam ? 4 : 3, count = (n->ninputs - 2) / k;
    const char *r = cg_ptr(cg, n->inputs[0]), *t = cg_ptr(cg, n->inputs[1]);
    float norm = node_attr_float(n, "norm_coefficient", 0);
    const char *mode = node_attr_string(n, "mode", "standard");
    if (!adam && !adagrad && strcmp(mode, "standard") != 0 && strcmp(mode, "nesterov") != 0)
        return cg_unsupported(cg, "mode '%s' (standard or nesterov)", mode);
    for (int i = 0; i < count; i++) {
        Value *const *in = n->inputs + 2 + i, *const *out = n->outputs + i;
        size_t sz = cg_numel(in[0]);
        if (adagrad)
            cg_line(cg, "onnx_adagrad(%s, %s, %s, %s, %s, %s, %s, %zu, %s, %s, %s);", cg_ptr(cg, out[0]),
                    cg_ptr(cg, out[count]), r, t, cg_ptr(cg, in[0]), cg_ptr(cg, in[count]),
                    cg_ptr(cg, in[2 * count]), sz, cg_float(cg, node_attr_float(n, "decay_factor", 0)),
                    cg_float(cg, node_attr_float(n, "epsilon", 1e-6f)), cg_float(cg, norm));
        else if (adam)
            cg_line(cg, "onnx_adam(%s, %s, %s, %s, %s, %s, %s, %s, %s, %zu, %s, %s, %s, %s, %s);", cg_ptr(cg, out[0]),
                    cg_ptr(cg, out[count]), cg_ptr(cg, out[2 * count]), r, t, cg_ptr(cg, in[0]),
                    cg_ptr(cg, in[count]), cg_ptr(cg, in[2 * count]), cg_ptr(cg, in[3 * count]), sz,
                    cg_float(cg, node_attr_float(n, "alpha", 0.9f)), cg_float(cg, node_attr_float(n, "beta", 0.999f)),
                    cg_float(cg, node_attr_float(n, "epsilon", 1e-6f)), cg_float(cg, norm),
                    cg_float(cg, node_attr_float(n, "norm_coefficient_post", 0)));
        else
            cg_line(cg, "onnx_momentum(%s, %s, %s, %s, %s, %s, %s, %zu, %s, %s, %s, %s);", cg_ptr(cg, out[0]),
                    cg_ptr(cg, out[count]), r, t, cg_ptr(cg, in[0]), cg_ptr(cg, in[count]),
                    cg_ptr(cg, in[2 * count]), sz, cg_float(cg, node_attr_float(n, "alpha", 0)),
                    cg_float(cg, node_attr_float(n, "beta", 0)), cg_float(cg, norm),
                    strcmp(mode, "nesterov") == 0 ? "true" : "false");
    }
    return ST_OK;
}

#define EMIT_PREVIEW(op_) \
    {.op = op_, .emit = emit_onnx_optim, .flags = EM_F32, .domain = "ai.onnx.preview.training"}

const Emitter optim_emitters[] = {
    EMIT_PREVIEW("Adagrad"),
    EMIT_PREVIEW("Adam"),
    EMIT_PREVIEW("Momentum"),
    {0},
};
