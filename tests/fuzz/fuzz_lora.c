/* fuzz_lora.c - libFuzzer harness for --lora-from: an adapters file (ONNX initializers) read into a LoRA
 * program's parameters by tr_lora_parse's small protobuf walk, on a fake program with one adapter
 * (fc.weight.lora_A [2,3], fc.weight.lora_B [4,2]) and a trainable head stored transposed (head.weight, [2,3]
 * in the buffer, [3,2] in the file); make_data_seeds.py writes files for it. Any bytes must be refused with
 * a message or load the three tensors, leaving every other byte of the buffer alone; never a crash, leak or
 * read past the input. Built with tests/fuzz/replay.c instead of libFuzzer it replays files (CTest:
 * fuzz_lora_replay).
 */
#include "program_priv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PARAM_BYTES 256

static const TrainParam params[] = {
    {"fc.weight", TRAIN_PARAM_FROZEN, RT_FLOAT, 2, {4, 3}, 48, 0, -1, false},
    {"fc.weight.lora_A", TRAIN_PARAM_TRAINABLE, RT_FLOAT, 2, {2, 3}, 24, 64, -1, false},
    {"fc.weight.lora_B", TRAIN_PARAM_TRAINABLE, RT_FLOAT, 2, {4, 2}, 32, 128, -1, false},
    {"head.weight", TRAIN_PARAM_TRAINABLE, RT_FLOAT, 2, {2, 3}, 24, 192, -1, true},
};
static const TrainLora lora[] = {{0, 1, 2, 2.0, false}};
static const TrainAdapterTensor saved[] = {{1, 0}, {2, 0}, {3, 0}};
static const TrainProgram program = {
    .model = "fuzz.onnx",
    .nparams = 4,
    .params = params,
    .params_bytes = PARAM_BYTES,
    .nlora = 1,
    .lora = lora,
    .nadapter_tensors = 3,
    .adapter_tensors = saved,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Trainer t = {.p = &program, .prog = "fuzz_lora"};
    unsigned char buf[PARAM_BYTES];
    memset(buf, 0xEE, sizeof buf);
    int rc = tr_lora_parse(&t, "<fuzz>", data, size, buf);
    for (size_t k = 0; k < PARAM_BYTES; k++) {
        bool in_tensor = false;
        for (int i = 1; i < 4; i++)
            in_tensor = in_tensor || (k >= params[i].offset && k < params[i].offset + params[i].nbytes);
        if (buf[k] != 0xEE && (rc != 0 ? k < 64 || !in_tensor : !in_tensor))
            abort(); /* only the file's tensors are written (a refused file may have written some first) */
    }
    return 0;
}
