/* tools.h - the subcommands of the `onnxtune` command and the option parser they share. Each
 * command lives in tools/cmd_<name>.c and returns the process exit status (0 ok, 1 error, 2 usage). */
#ifndef ONNXTUNE_TOOLS_H
#define ONNXTUNE_TOOLS_H

#include "ir.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int cmd_dump(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_conform(int argc, char **argv);
int cmd_train(int argc, char **argv);

/* ======================================================================== tools/cmd_compile.c */

/* --input NAME=FILE.npy options (they repeat, so they are taken out of argv before cli_parse). */
typedef struct InputArg {
    const char *name;       /* malloc'd; tools_free_inputs */
    const char *path;       /* points into argv */
} InputArg;
struct InputShape;
/* Move every "--input V" / "--input=V" before a "--" out of argv into out[max]; *argc shrinks.
 * Returns the count, or -1 after printing a usage error. */
int tools_take_inputs(const char *cmd, int *argc, char **argv, InputArg *out, int max);
void tools_free_inputs(InputArg *in, int n);
/* Each input file's dtype and shape (NPY header), for codegen to fix the input shapes. */
bool tools_input_shapes(const char *cmd, const InputArg *in, int n, struct InputShape *out);

/* ======================================================================== tools/cache.c */

/* The program cache of `run` and `train` ($ONNXTUNE_CACHE, else $XDG_CACHE_HOME/onnxtune, ~/.cache/onnxtune
 * or /tmp/onnxtune-cache-UID). A program's name is a 128-bit key: two FNV-1a streams with different seeds
 * over the model's bytes, what the command adds, then the onnxtune version, the onnxtune binary's and
 * runtime library's paths, sizes and mtimes, and $CC. Functions taking `cmd` print their own errors. */
typedef struct CacheKey {
    uint64_t a, b;
} CacheKey;
/* Start k with the bytes of the file `model`; false after printing "MODEL: cannot read the model". */
bool cache_key_start(const char *cmd, CacheKey *k, const char *model);
void cache_key_bytes(CacheKey *k, const void *p, size_t n);
void cache_key_str(CacheKey *k, const char *s);      /* with its terminating NUL */
/* Each input's name, dtype and shape. */
void cache_key_shapes(CacheKey *k, const struct InputShape *s, int n);
/* Builds the program at `output` (a temporary name beside the cached one). */
typedef Status (*CacheBuild)(void *ctx, const char *output, Diag *d);
/* Finish k, write the program's path DIR/<prefix><32 hex digits> to prog[size], and unless it exists
 * (and !rebuild) build it aside and rename it in. Returns -1 when prog is ready, else the exit status
 * after printing (d's message when the build fails). */
int cache_program(const char *cmd, CacheKey *k, const char *prefix, bool rebuild, CacheBuild build, void *ctx,
                  Diag *d, char *prog, size_t size);
/* Run prog with argv (argv[0] is how it names itself) and wait: its exit status, 128 + N when killed by
 * signal N, 1 when it could not be started. */
int cache_run_program(const char *cmd, const char *prog, char **argv);

/* ======================================================================== tools/cli.c */

/* One option of a command. `name` is the long form ("--batch"); options with an `arg`
 * placeholder take a value (--batch 4 or --batch=4), the others are flags. */
typedef struct CliOption {
    const char *name;       /* "--batch" */
    const char *alias;      /* short form such as "-o", or NULL */
    const char *arg;        /* value placeholder shown in --help ("N"), NULL for a flag */
    const char *help;       /* one line */
    bool given;             /* out: seen at least once */
    const char *value;      /* out: the value of the last occurrence (repeats: last wins) */
} CliOption;

typedef struct CliCommand {
    const char *name;       /* "dump": messages read "onnxtune dump: ..." */
    const char *args;       /* positional synopsis for usage, e.g. "MODEL" (NULL: none) */
    const char *summary;    /* one line shown under the usage line */
    int min_args, max_args; /* how many positional arguments are accepted */
    CliOption *opts;        /* terminated by a zeroed row; --help/-h are built in */
} CliCommand;

/* Parse argv[1..argc) (argv[0] is the command's name). Positional arguments go to args[0..max_args)
 * and their count to *nargs; "--" ends the options. Returns -1 when the command should run, else
 * the exit status to return at once: 0 after --help (usage on stdout), 2 after a usage error
 * (one line on stderr): unknown option, missing or unexpected value, wrong number of arguments. */
int cli_parse(CliCommand *cmd, int argc, char **argv, char **args, int *nargs);
/* Print the usage and every option to f. */
void cli_usage(const CliCommand *cmd, FILE *f);
/* Print "onnxtune CMD: message (see onnxtune CMD --help)" to stderr; returns 2. */
int cli_usage_error(const CliCommand *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The option named `name` (long form) of cmd; NULL if there is none (a programming error). */
CliOption *cli_option(CliCommand *cmd, const char *name);
/* The value of a given option as an integer in [min, max]; false after printing a usage error. */
bool cli_int(const CliCommand *cmd, const CliOption *o, int64_t min, int64_t max, int64_t *out);
/* For commands that take some options out of argv before cli_parse (or instead of it): when argv[*i] is
 * `name` or `name=VALUE`, set *value (the next argument in the first form, *i moving past it) and
 * return 1; return 0 for any other argument, -1 after printing "onnxtune CMD: option NAME needs a
 * value (NAME ARG)". */
int cli_take_value(const char *cmd, const char *name, const char *arg, int argc, char **argv, int *i,
                   const char **value);

/* ======================================================================== tools/cmd_train.c */

/* The training options that `compile` (without --infer) and `train` share: what trains, the head, the
 * loss, the optimizer and its hyperparameters (compiled in; PROG may change the values), and with
 * `compile` the PROG options it records as PROG's defaults (--epochs, --lr, --lr-schedule, ...). */
struct TrainCompileOptions;
typedef struct TrainArgs {
    const char *argv[256];      /* the training options as given (pointers into argv), for --help and caching */
    int argc;
    const char *defaults[64];   /* PROG options recorded at compile time */
    int ndefaults;
    char compiled_with[2048];   /* argv joined with spaces */
} TrainArgs;
/* Move every training option before a "--" out of argv into a (*argc shrinks). With record_defaults
 * (compile), PROG's options --epochs, --lr, --lr-schedule, --warmup, --val-split, --no-shuffle, --shuffle,
 * --drop-last and --seed go to a->defaults too; without (train), they stay in argv for PROG (--seed in
 * both). Returns false after printing a usage error. */
bool tools_take_train_options(const char *cmd, int *argc, char **argv, TrainArgs *a, bool record_defaults);
/* Parse a's options into o (freeze, head, loss, optim, seed, defaults, compiled_with); false after printing
 * a usage error. o's other fields are left alone. */
bool tools_train_compile_options(const char *cmd, TrainArgs *a, struct TrainCompileOptions *o);

#endif
