/* cmd_compile.c - `onnxtune compile MODEL --infer [--batch N] -o PROG`: the model as one standalone
 * program (codegen/driver.c does the work), and the --input NAME=FILE.npy handling that `run` shares.
 * It only parses options and prints; it compiles nothing itself. */
#include "tools.h"

#include "codegen.h"
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

int tools_take_inputs(const char *cmd, int *argc, char **argv, InputArg *out, int max)
{
    int n = 0, w = 1;
    bool done = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!done && strcmp(a, "--") == 0)
            done = true;
        if (done || (strcmp(a, "--input") != 0 && strncmp(a, "--input=", 8) != 0)) {
            argv[w++] = argv[i];
            continue;
        }
        if (a[7] == '=')
            val = a + 8;
        else if (i + 1 < *argc)
            val = argv[++i];
        else {
            fprintf(stderr, "onnxtune %s: option --input needs a value (--input NAME=FILE.npy)\n", cmd);
            return -1;
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
    {"--infer", NULL, NULL, "compile the forward pass (inference; the default)", false, NULL},
    {"--output", "-o", "PROG", "the program to write (default: the model's name without .onnx)", false, NULL},
    {"--batch", NULL, "N", "compile for batch N (default 1); other batches run in chunks of N", false, NULL},
    {"--input", NULL, "NAME=FILE.npy", "an example input: fixes the input's other symbolic dims (repeatable)",
     false, NULL},
    {"--threads", NULL, "N", "PROG's default thread count (PROG --threads overrides it)", false, NULL},
    {"--emit-c", NULL, NULL, "keep the generated PROG.c and its weights PROG.weights", false, NULL},
    {"--werror", NULL, NULL, "build the generated C with -Werror", false, NULL},
    {0},
};

static CliCommand compile_cmd = {
    "compile", "MODEL",
    "Generate C for MODEL (shapes fixed, one planned arena) and build it into a standalone program:\n"
    "  PROG --input NAME=FILE.npy ... --output-dir DIR   writes DIR/<output name>.npy",
    1, 1, compile_opts,
};

int cmd_compile(int argc, char **argv)
{
    InputArg inputs[64];
    int ninputs = tools_take_inputs("compile", &argc, argv, inputs, 64);
    if (ninputs < 0)
        return 2;
    char *args[1];
    int nargs, rc = cli_parse(&compile_cmd, argc, argv, args, &nargs);
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
