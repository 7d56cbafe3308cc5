/* cmd_run.c - `onnxtune run MODEL --input NAME=FILE.npy ... --output-dir DIR`: compile for exactly the
 * given input shapes and run, in one step. Programs are cached by tools/cache.c, keyed by the model's
 * bytes and the input names/dtypes/shapes (and what cache.c adds: version, binary, runtime library).
 * With --state OUT=IN it streams (program/infer_main.c): compiled for chunks of --chunk steps along
 * --time-axis, run chunk after chunk with OUT fed back into IN. */
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
    {"--chunk", NULL, "LEN", "with --state: steps per run along the time axis (default: all at once)", false, NULL},
    {"--time-axis", NULL, "A", "with --state: the inputs' and outputs' time axis (default 0, batch_first=False)",
     false, NULL},
    {"--werror", NULL, NULL, "build the generated C with -Werror", false, NULL},
    {0},
};

static CliCommand run_cmd = {
    "run", "MODEL",
    "Compile MODEL for exactly the shapes of the given inputs (cached) and run it.\n"
    "--state OUT=IN (repeat): stream a recurrent model: output OUT of each run is input IN of the next (IN from\n"
    "its --input file, else zeros); the other inputs are cut into --chunk steps along --time-axis, outputs\n"
    "with the chunk's length there are gathered along it, the others are the last chunk's.",
    1, 1, run_opts,
};

static Status build_program(void *ctx, const char *output, Diag *d)
{
    CompileOptions *co = ctx;
    co->output = output;
    return codegen_compile_model(co, NULL, d);
}

/* Move every --state OUT=IN out of argv (it repeats) into states[max]; the count, -1 after a message. */
static int take_states(int *argc, char **argv, const char **states, int max)
{
    int n = 0, w = 1;
    for (int i = 1; i < *argc; i++) {
        const char *val = NULL;
        int took = cli_take_value("run", "--state", "OUT=IN", *argc, argv, &i, &val);
        if (took < 0)
            return -1;
        if (took == 0) {
            argv[w++] = argv[i];
            continue;
        }
        const char *eq = strchr(val, '=');
        if (!eq || eq == val || !eq[1] || n == max) {
            fprintf(stderr, "onnxtune run: %s\n", n == max ? "too many --state options" : "--state wants OUT=IN");
            return -1;
        }
        states[n++] = val;
    }
    *argc = w;
    argv[w] = NULL;
    return n;
}

static bool is_state_input(const char *name, const char *const *states, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(strchr(states[i], '=') + 1, name) == 0)
            return true;
    return false;
}

int cmd_run(int argc, char **argv)
{
    InputArg inputs[64];
    const char *states[64];
    int nstates = take_states(&argc, argv, states, 64);
    if (nstates < 0)
        return 2;
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
    const CliOption *ch = cli_option(&run_cmd, "--chunk"), *ta = cli_option(&run_cmd, "--time-axis");
    int64_t chunk = 0, axis = 0;
    if (rc < 0 && (ch->given || ta->given) && !nstates)
        rc = cli_usage_error(&run_cmd, "--chunk and --time-axis need --state OUT=IN");
    if (rc < 0 && ((ch->given && !cli_int(&run_cmd, ch, 1, INT64_MAX, &chunk)) ||
                   (ta->given && !cli_int(&run_cmd, ta, 0, IR_MAX_RANK - 1, &axis))))
        rc = 2;
    for (int i = 0; rc < 0 && chunk && i < ninputs; i++) { /* compile for one chunk of each streamed input */
        Shape *s = &shapes[i].shape;
        if (is_state_input(inputs[i].name, states, nstates) || s->rank <= axis)
            continue;
        if (s->dim[axis] % chunk != 0) {
            fprintf(stderr, "onnxtune run: input '%s' (%s) has %lld steps along axis %lld, not a multiple of --chunk "
                    "%lld\n", inputs[i].name, inputs[i].path, (long long)s->dim[axis], (long long)axis,
                    (long long)chunk);
            rc = 1;
        }
        s->dim[axis] = chunk;
    }
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
    char **pargv = calloc((size_t)(2 * ninputs + 2 * nstates + 10), sizeof *pargv);
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
    for (int i = 0; i < nstates; i++) {
        pargv[k++] = "--state";
        pargv[k++] = (char *)states[i];
    }
    if (nstates && ta->given) {
        pargv[k++] = "--time-axis";
        pargv[k++] = (char *)ta->value;
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
