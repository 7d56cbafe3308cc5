/* emit_signal.c - emitters of the signal family on kernels/signal.c: HannWindow, HammingWindow,
 * BlackmanWindow, DFT, STFT and MelWeightMatrix. Sizes are compile-time constants (the shape pass only
 * makes them static when the inputs that give them are constant); MelWeightMatrix's frequencies are
 * read at run time. float32 kernels, other float types through EM_F32 copies. */
#include "emit.h"

#include <string.h>

static Status emit_window(Cg *cg, const Node *n)
{
    const char *kind = strcmp(n->op_type, "HannWindow") == 0      ? "WINDOW_HANN"
                       : strcmp(n->op_type, "HammingWindow") == 0 ? "WINDOW_HAMMING"
                                                                  : "WINDOW_BLACKMAN";
    cg_line(cg, "window_forward(%s, %s, %zu, %s);", kind, cg_ptr(cg, n->outputs[0]), cg_numel(n->outputs[0]),
            node_attr_int(n, "periodic", 1) ? "true" : "false");
    return ST_OK;
}

static Status emit_dft(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank, ax = (int)node_attr_int(n, "axis", 1);
    ax = ax < 0 ? ax + r : ax;
    size_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++)
        outer *= (size_t)x->shape.dim[i];
    for (int i = ax + 1; i < r - 1; i++)
        inner *= (size_t)x->shape.dim[i];
    size_t n_fft = (size_t)x->shape.dim[ax];
    int64_t len;
    if (node_input(n, 1)) {
        size_t cnt;
        if (!cg_const_ints(n, 1, NULL, &len, 1, &cnt) || cnt != 1)
            return cg_unsupported(cg, "input 1 (dft_length) is not constant");
        n_fft = (size_t)len;
    }
    cg_line(cg, "dft_forward(%s, %s, %zu, %lld, %zu, %lld, %zu, %lld, %s);", cg_ptr(cg, y), cg_ptr(cg, x), outer,
            (long long)x->shape.dim[ax], inner, (long long)x->shape.dim[r - 1], n_fft, (long long)y->shape.dim[ax],
            node_attr_int(n, "inverse", 0) ? "true" : "false");
    return ST_OK;
}

static Status emit_stft(Cg *cg, const Node *n)
{
    const Value *x = n->inputs[0], *y = n->outputs[0];
    int64_t step;
    size_t cnt;
    if (!cg_const_ints(n, 1, NULL, &step, 1, &cnt) || cnt != 1)
        return cg_unsupported(cg, "input 1 (frame_step) is not constant");
    const Value *w = node_input(n, 2);
    int64_t flen = w ? w->shape.dim[0] : 0;
    if (!w && (!cg_const_ints(n, 3, NULL, &flen, 1, &cnt) || cnt != 1))
        return cg_unsupported(cg, "input 3 (frame_length) is not constant");
    cg_line(cg, "stft_forward(%s, %s, %s, %lld, %lld, %lld, %lld, %lld, %lld, %lld);", cg_ptr(cg, y), cg_ptr(cg, x),
            cg_ptr_or_null(cg, w), (long long)x->shape.dim[0], (long long)x->shape.dim[1],
            (long long)x->shape.dim[2], (long long)step, (long long)flen, (long long)y->shape.dim[1],
            (long long)y->shape.dim[2]);
    return ST_OK;
}

static Status emit_mel(Cg *cg, const Node *n)
{
    const Value *y = n->outputs[0];
    int64_t len;
    size_t cnt;
    if (!cg_const_ints(n, 1, NULL, &len, 1, &cnt) || cnt != 1)
        return cg_unsupported(cg, "input 1 (dft_length) is not constant");
    cg_line(cg, "mel_weight_matrix_forward(%s, %lld, %lld, (double)*%s, (double)*%s, (double)*%s);", cg_ptr(cg, y),
            (long long)y->shape.dim[1], (long long)len, cg_ptr(cg, n->inputs[2]), cg_ptr(cg, n->inputs[3]),
            cg_ptr(cg, n->inputs[4]));
    return ST_OK;
}

const Emitter signal_emitters[] = {
    EMIT("HannWindow", emit_window, NULL, EM_F32),
    EMIT("HammingWindow", emit_window, NULL, EM_F32),
    EMIT("BlackmanWindow", emit_window, NULL, EM_F32),
    EMIT("DFT", emit_dft, NULL, EM_F32),
    EMIT("STFT", emit_stft, NULL, EM_F32),
    EMIT("MelWeightMatrix", emit_mel, NULL, EM_F32),
    {0},
};
