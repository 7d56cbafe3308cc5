/* fuzz_weights.c - libFuzzer harness for what reads weights back into a training program: --weights
 * (eval/predict) takes an export of the program, checked against its template byte for byte outside the
 * weights, then metadata_props (class names as a JSON list, preprocessing) after it:
 * tr_parse_export_weights on a small fake program whose template is 96 bytes, (i * 37 + 11) & 255, with
 * two trainable tensors and a BatchNorm buffer exported at offsets 16, 48 and 72 (make_data_seeds.py
 * writes exports of it). Any bytes must be refused with a message or load exactly the bytes at those
 * offsets; never a crash, leak or read past the input. --init reads .npy files (fuzz_npy.c) and
 * --checkpoint a checkpoint (fuzz_checkpoint.c). Built with tests/fuzz/replay.c instead of libFuzzer it
 * replays files (CTest: fuzz_weights_replay).
 */
#include "program_priv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEMPLATE_BYTES 96
#define PARAM_BYTES 192

static unsigned char template_bytes[TEMPLATE_BYTES];
static const TrainParam params[] = {
    {"fc.weight", TRAIN_PARAM_TRAINABLE, RT_FLOAT, 2, {2, 3}, 24, 0, 16, false},
    {"fc.bias", TRAIN_PARAM_TRAINABLE, RT_FLOAT, 1, {2}, 8, 64, 48, false},
    {"bn.running_mean", TRAIN_PARAM_BUFFER, RT_FLOAT, 1, {2}, 8, 128, 72, false},
    {"fc.weight.momentum", TRAIN_PARAM_STATE, RT_FLOAT, 2, {2, 3}, 24, 136, -1, false},
};
static TrainProgram program = {
    .model = "fuzz.onnx",
    .nparams = 4,
    .params = params,
    .params_bytes = PARAM_BYTES,
    .export_template = template_bytes,
    .export_bytes = TEMPLATE_BYTES,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < TEMPLATE_BYTES; i++)
        template_bytes[i] = (unsigned char)(i * 37 + 11);
    Trainer t = {.p = &program, .prog = "fuzz_weights"};
    unsigned char buf[PARAM_BYTES];
    memset(buf, 0xEE, sizeof buf);
    char **names = NULL, *preprocess = NULL;
    size_t nnames = 0;
    int rc = tr_parse_export_weights(&t, "<fuzz>", data, size, buf, &names, &nnames, &preprocess);
    if (rc == 0) {
        for (size_t k = 0; k < sizeof params / sizeof params[0]; k++) {
            const TrainParam *tp = &params[k];
            if (tp->export_offset >= 0 && memcmp(buf + tp->offset, data + tp->export_offset, tp->nbytes) != 0)
                abort(); /* each exported tensor comes from its offset */
        }
        if (buf[PARAM_BYTES - 1] != 0xEE)
            abort(); /* optimizer state is never loaded from an export */
        for (size_t i = 0; i < nnames; i++)
            if (!names[i])
                abort();
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(preprocess);
    return 0;
}
