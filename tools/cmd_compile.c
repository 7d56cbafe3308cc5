/* cmd_compile.c - `onnxtune compile MODEL --infer [--batch N] -o PROG`: the model as one standalone
 * program (codegen/driver.c does the work), and the --input NAME=FILE.npy handling that `run` shares.
 * Without --infer, a training program (codegen/train_program.c; options parsed by tools/cmd_train.c).
 * It only parses options and prints; it compiles nothing itself. */
#include "tools.h"

#include "codegen.h"
#include "program.h"

#include <stdlib.h>
#include <string.h>

int tools_take_inputs(const char *cmd, int *argc, char **argv, InputArg *out, int max)
{
    int n = 0, w = 1;
    bool done = false;
    for (int i = 1; i < *argc; i++) {
        const char *val = NULL;
        if (!done && strcmp(argv[i], "--") == 0)
            done = true;
        int took = done ? 0 : cli_take_value(cmd, "--input", "NAME=FILE.npy", *argc, argv, &i, &val);
        if (took < 0)
            return -1;
        if (took == 0) {
            argv[w++] = argv[i];
            continue;
        }
        const char *eq = strchr(val, '=');
        if (!eq || eq == val || !eq[1]) {
            fprintf(stderr, "onnxtune %s: --input wants NAME=FILE.npy, not '%s'\n", cmd, val);
            return -1;
        }
        if (n == max) {
            fprintf(stderr, "onnxtune %s: more than %d --input options\n", cmd, max);
            return -1;
        }
        char *name = strndup(val, (size_t)(eq - val));
        if (!name) {
            fprintf(stderr, "onnxtune %s: out of memory\n", cmd);
            return -1;
        }
        for (int k = 0; k < n; k++)
            if (strcmp(out[k].name, name) == 0) {
                fprintf(stderr, "onnxtune %s: input '%s' is given twice\n", cmd, name);
                free(name);
                return -1;
            }
        out[n].name = name;
        out[n].path = eq + 1;
        n++;
    }
    *argc = w;
    argv[w] = NULL;
    return n;
}

void tools_free_inputs(InputArg *in, int n)
{
    for (int i = 0; i < n; i++)
        free((char *)in[i].name);
}

bool tools_input_shapes(const char *cmd, const InputArg *in, int n, struct InputShape *out)
{
    for (int i = 0; i < n; i++) {
        NpyArray a;
        char err[512];
        if (npy_map(in[i].path, &a, err, sizeof err) != NPY_OK) {
            fprintf(stderr, "onnxtune %s: %s\n", cmd, err);
            return false;
        }
        out[i].name = in[i].name;
        out[i].dtype = (DType)a.dtype;
        out[i].shape = shape_scalar();
        out[i].shape.rank = a.rank;
        for (int k = 0; k < a.rank; k++)
            out[i].shape.dim[k] = (int64_t)a.dims[k];
        npy_free(&a);
    }
    return true;
}

static const char *human_bytes(size_t n, char *buf, size_t size)
{
    if (n < 10 * 1024)
        snprintf(buf, size, "%zu bytes", n);
    else if (n < 10 * 1024 * 1024)
        snprintf(buf, size, "%.1f KiB", n / 1024.0);
    else
        snprintf(buf, size, "%.1f MiB", n / 1048576.0);
    return buf;
}

static CliOption compile_opts[] = {
    {"--infer", NULL, NULL, "compile the forward pass (inference); without it, a training program", false, NULL},
    {"--output", "-o", "PROG", "the program to write (default: the model's name without .onnx)", false, NULL},
    {"--batch", NULL, "N", "compile for batch N (default 1); other batches run in chunks of N", false, NULL},
    {"--input", NULL, "NAME=FILE.npy", "an example input: fixes the input's other symbolic dims (repeatable)",
     false, NULL},
    {"--threads", NULL, "N", "PROG's default thread count (PROG --threads overrides it)", false, NULL},
    {"--emit-c", NULL, NULL, "keep the generated PROG.c and its weights PROG.weights", false, NULL},
    {"--werror", NULL, NULL, "build the generated C with -Werror", false, NULL},
    {"--opt-level", NULL, "N", "training programs: the C compiler's -O level (default 1, or 2 when the generated C has loops)", false, NULL},
    {0},
};

static CliCommand compile_cmd = {
    "compile", "MODEL",
    "Generate C for MODEL (shapes fixed, one planned arena) and build it into a standalone program:\n"
    "  with --infer: PROG --input NAME=FILE.npy ... --output-dir DIR   writes DIR/<output name>.npy\n"
    "  without: a training program, PROG --train-x X.npy --train-y Y.npy ... (PROG --help); the training\n"
    "  options (--train, --freeze, --head, --lora, --loss, --optimizer, ...: onnxtune train --help) fix what\n"
    "  trains, and --epochs, --lr, --lr-schedule, --warmup, --val-split, --seed, --no-shuffle, --drop-last\n"
    "  given here become PROG's defaults",
    1, 1, compile_opts,
};

static int compile_trainer(const char *model, const char *output, TrainArgs *ta, const InputShape *shapes,
                           int nshapes, int64_t batch, int64_t threads);

int cmd_compile(int argc, char **argv)
{
    InputArg inputs[64];
    TrainArgs ta;
    int ninputs = tools_take_inputs("compile", &argc, argv, inputs, 64);
    if (ninputs < 0)
        return 2;
    if (!tools_take_train_options("compile", &argc, argv, &ta, true)) {
        tools_free_inputs(inputs, ninputs);
        return 2;
    }
    char *args[1];
    int nargs, rc = cli_parse(&compile_cmd, argc, argv, args, &nargs);
    if (rc < 0 && cli_option(&compile_cmd, "--infer")->given && (ta.argc || ta.ndefaults))
        rc = cli_usage_error(&compile_cmd, "%s is a training option; --infer compiles the forward pass only",
                             ta.argc ? ta.argv[0] : ta.defaults[0]);
    if (rc >= 0) {
        tools_free_inputs(inputs, ninputs);
        return rc;
    }
    int64_t batch = 0, threads = 0;
    const CliOption *b = cli_option(&compile_cmd, "--batch"), *t = cli_option(&compile_cmd, "--threads");
    if ((b->given && !cli_int(&compile_cmd, b, 1, 1 << 20, &batch)) ||
        (t->given && !cli_int(&compile_cmd, t, 1, 4096, &threads))) {
        tools_free_inputs(inputs, ninputs);
        return 2;
    }
    char out_buf[4096];
    const char *output = cli_option(&compile_cmd, "--output")->value;
    if (!output) {
        /* models/mlp/model.onnx -> ./model */
        const char *base = strrchr(args[0], '/');
        base = base ? base + 1 : args[0];
        snprintf(out_buf, sizeof out_buf, "%s", base);
        char *dot = strrchr(out_buf, '.');
        if (dot && strcmp(dot, ".onnx") == 0 && dot != out_buf)
            *dot = '\0';
        else
            strncat(out_buf, ".bin", sizeof out_buf - strlen(out_buf) - 1);
        output = out_buf;
    }
    InputShape shapes[64];
    if (!tools_input_shapes("compile", inputs, ninputs, shapes)) {
        tools_free_inputs(inputs, ninputs);
        return 1;
    }
    if (!cli_option(&compile_cmd, "--infer")->given) {
        rc = compile_trainer(args[0], output, &ta, shapes, ninputs, batch, threads);
        tools_free_inputs(inputs, ninputs);
        return rc;
    }
    CompileOptions co = {
        .model = args[0], .output = output, .emit_c = cli_option(&compile_cmd, "--emit-c")->given, .batch = batch,
        .shapes = shapes, .nshapes = (size_t)ninputs, .threads = (int)threads,
        .werror = cli_option(&compile_cmd, "--werror")->given, .log = stderr,
    };
    Diag d;
    diag_init(&d, args[0]);
    CodegenStats stats = {0};
    Status st = codegen_compile_model(&co, &stats, &d);
    tools_free_inputs(inputs, ninputs);
    if (st) {
        fprintf(stderr, "onnxtune compile: ");
        diag_print(&d, stderr);
        return status_exit_code(st);
    }
    char arena[32], weights[32];
    fprintf(stderr, "onnxtune compile: wrote %s (%zu nodes, arena %s, weights %s)%s%s%s\n", output, stats.nodes,
            human_bytes(stats.arena_bytes, arena, sizeof arena), human_bytes(stats.weights_bytes, weights, sizeof weights),
            co.emit_c ? " and " : "", co.emit_c ? output : "", co.emit_c ? ".c" : "");
    return 0;
}

/* ---- the training branch ---- */

static int compile_trainer(const char *model, const char *output, TrainArgs *ta, const InputShape *shapes,
                           int nshapes, int64_t batch, int64_t threads)
{
    const CliOption *ol = cli_option(&compile_cmd, "--opt-level");
    int64_t level = 2;
    if (ol->given && !cli_int(&compile_cmd, ol, 0, 3, &level))
        return 2;
    char opt[8];
    snprintf(opt, sizeof opt, "-O%d", (int)level); /* not given: codegen/cc.c chooses */
    TrainCompileOptions co = {
        .model = model, .output = output, .emit_c = cli_option(&compile_cmd, "--emit-c")->given,
        .werror = cli_option(&compile_cmd, "--werror")->given, .opt_level = ol->given ? opt : NULL, .batch = batch > 0 ? batch : 32,
        .shapes = shapes, .nshapes = (size_t)nshapes, .threads = (int)threads,
    };
    if (!tools_train_compile_options("compile", ta, &co))
        return 2;
    if (threads > 0 && ta->ndefaults + 2 <= (int)(sizeof ta->defaults / sizeof ta->defaults[0])) {
        ta->defaults[ta->ndefaults++] = "--threads";
        ta->defaults[ta->ndefaults++] = cli_option(&compile_cmd, "--threads")->value;
        co.ndefaults = (size_t)ta->ndefaults;
    }
    Diag d;
    diag_init(&d, model);
    TrainCompileStats stats;
    Status st = codegen_compile_trainer(&co, &stats, &d);
    if (st) {
        fprintf(stderr, "onnxtune compile: ");
        diag_print(&d, stderr);
        return status_exit_code(st);
    }
    char pb[32], wb[32];
    fprintf(stderr, "onnxtune compile: wrote %s: a training program for batch %lld (trains %zu tensors, %zu values; "
            "%zu frozen, %zu values; parameters and optimizer state %s, workspace %s)%s%s%s\n", output,
            (long long)stats.batch, stats.trainable, stats.trainable_elems, stats.frozen, stats.frozen_elems,
            human_bytes(stats.params_bytes, pb, sizeof pb), human_bytes(stats.workspace_bytes, wb, sizeof wb),
            co.emit_c ? " and " : "", co.emit_c ? output : "", co.emit_c ? ".c" : "");
    if (stats.features_at[0])
        fprintf(stderr, "onnxtune compile: the frozen part ends at '%s': its features (%s a sample) are computed once "
                "per sample, %lld sample%s at a time, and reused (%s --feature-cache)\n", stats.features_at,
                human_bytes(stats.features_bytes, pb, sizeof pb), (long long)stats.features_batch,
                stats.features_batch == 1 ? "" : "s", output);
    return 0;
}
