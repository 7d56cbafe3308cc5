/* emit_misc.c - emitters of ReverseSequence (any dtype, by element size) and Det (float32 kernel, other
 * float types through EM_F32 copies) on kernels/misc.c. */
#include "emit.h"

static Status emit_reverse_sequence(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0];
    size_t rest = 1;
    for (int i = 2; i < x->shape.rank; i++)
        rest *= (size_t)x->shape.dim[i];
    cg_line(cg, "reverse_sequence_forward(%s, %s, %s, %lld, %lld, %zu, %zu, %d);", cg_ptr(cg, n->outputs[0]),
            cg_ptr(cg, x), cg_ptr(cg, n->inputs[1]), (long long)x->shape.dim[0], (long long)x->shape.dim[1], rest,
            dtype_size(x->dtype), (int)node_attr_int(n, "batch_axis", 1));
    return ST_OK;
}

static Status emit_det(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0];
    int64_t m = x->shape.dim[x->shape.rank - 1];
    if (m > 64)
        return cg_unsupported(cg, "matrices larger than 64x64 (%lldx%lld)", (long long)m, (long long)m);
    cg_line(cg, "det_forward(%s, %s, %zu, %lld);", cg_ptr(cg, n->outputs[0]), cg_ptr(cg, x),
            cg_numel(n->outputs[0]), (long long)m);
    return ST_OK;
}

const Emitter misc_emitters[] = {
    EMIT("ReverseSequence", emit_reverse_sequence, NULL, 0),
    EMIT("Det", emit_det, NULL, EM_F32),
    {0},
};
