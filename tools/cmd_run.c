/* cmd_run.c - `onnxtune run MODEL --input NAME=FILE.npy ... --output-dir DIR`: compile for exactly the
 * given input shapes and run, in one step. Programs are cached by tools/cache.c, keyed by the model's
 * bytes and the input names/dtypes/shapes (and what cache.c adds: version, binary, runtime library). */
#include "tools.h"

#include "codegen.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static CliOption run_opts[] = {
    {"--input", NULL, "NAME=FILE.npy", "an input of the model (repeat for each)", false, NULL},
    {"--output-dir", NULL, "DIR", "write each output as DIR/<output name>.npy", false, NULL},
    {"--threads", NULL, "N", "threads for the kernels", false, NULL},
    {"--no-cache", NULL, NULL, "rebuild even when a cached program exists", false, NULL},
    {"--werror", NULL, NULL, "build the generated C with -Werror", false, NULL},
    {0},
};

static CliCommand run_cmd = {
    "run", "MODEL",
    "Compile MODEL for exactly the shapes of the given inputs (cached) and run it.",
    1, 1, run_opts,
};

static Status build_program(void *ctx, const char *output, Diag *d)
{
    CompileOptions *co = ctx;
    co->output = output;
    return codegen_compile_model(co, NULL, d);
}

int cmd_run(int argc, char **argv)
{
    InputArg inputs[64];
    int ninputs = tools_take_inputs("run", &argc, argv, inputs, 64);
    if (ninputs < 0)
        return 2;
    char *args[1];
    int nargs, rc = cli_parse(&run_cmd, argc, argv, args, &nargs);
    int64_t threads = 0;
    const CliOption *t = cli_option(&run_cmd, "--threads"), *od = cli_option(&run_cmd, "--output-dir");
    if (rc < 0 && t->given && !cli_int(&run_cmd, t, 1, 4096, &threads))
        rc = 2;
    if (rc < 0 && !od->given)
        rc = cli_usage_error(&run_cmd, "missing --output-dir DIR");
    InputShape shapes[64];
    if (rc < 0 && !tools_input_shapes("run", inputs, ninputs, shapes))
        rc = 1;
    if (rc >= 0) {
        tools_free_inputs(inputs, ninputs);
        return rc;
    }

    CacheKey key;
    if (!cache_key_start("run", &key, args[0])) {
        tools_free_inputs(inputs, ninputs);
        return 1;
    }
    cache_key_shapes(&key, shapes, ninputs);
    CompileOptions co = {
        .model = args[0], .exact = true, .shapes = shapes, .nshapes = (size_t)ninputs,
        .werror = cli_option(&run_cmd, "--werror")->given,
    };
    Diag d;
    diag_init(&d, args[0]);
    char prog[PATH_MAX + 64];
    rc = cache_program("run", &key, "", cli_option(&run_cmd, "--no-cache")->given, build_program, &co, &d, prog,
                       sizeof prog);
    if (rc >= 0) {
        tools_free_inputs(inputs, ninputs);
        return rc;
    }

    /* PROG --input NAME=FILE ... --output-dir DIR [--threads N] */
    char **pargv = calloc((size_t)(2 * ninputs + 8), sizeof *pargv);
    char **owned = calloc((size_t)ninputs + 1, sizeof *owned);
    int k = 0;
    if (!pargv || !owned) {
        fprintf(stderr, "onnxtune run: out of memory\n");
        return 1;
    }
    pargv[k++] = "onnxtune run"; /* how the program names itself in messages */
    for (int i = 0; i < ninputs; i++) {
        size_t l = strlen(inputs[i].name) + strlen(inputs[i].path) + 2;
        owned[i] = malloc(l);
        if (!owned[i]) {
            fprintf(stderr, "onnxtune run: out of memory\n");
            return 1;
        }
        snprintf(owned[i], l, "%s=%s", inputs[i].name, inputs[i].path);
        pargv[k++] = "--input";
        pargv[k++] = owned[i];
    }
    pargv[k++] = "--output-dir";
    pargv[k++] = (char *)od->value;
    if (t->given) {
        pargv[k++] = "--threads";
        pargv[k++] = (char *)t->value;
    }
    pargv[k] = NULL;
    int status = cache_run_program("run", prog, pargv);
    for (int i = 0; i < ninputs; i++)
        free(owned[i]);
    free(owned);
    free(pargv);
    tools_free_inputs(inputs, ninputs);
    return status;
}
