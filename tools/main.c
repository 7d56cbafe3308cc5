/* main.c - the `onnxtune` command: dispatches to its subcommands (tools/cmd_*.c). */
#include "tools.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"dump", cmd_dump, "show a model: summary, nodes, shapes, parameters, FLOPs (text, --json, --dot)"},
    {"ops", cmd_ops, "list the supported ops and their rules (--markdown: docs/ops.md)"},
    {"compile", cmd_compile, "build a model into a standalone program (generated C, one arena, the runtime)"},
    {"run", cmd_run, "compile for the given inputs (cached) and run: --input NAME=FILE.npy --output-dir DIR"},
    {"conform", cmd_conform, "run the ONNX backend test cases under folders: PASS/FAIL/UNSUPPORTED per case"},
    {"train", cmd_train, "compile a training program (cached) and fine-tune: --train-x X.npy --train-y Y.npy"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: onnxtune COMMAND [options]   (onnxtune COMMAND --help for its options)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        /* help piped into a reader that stops early (| head) is not an error: no death by SIGPIPE */
        signal(SIGPIPE, SIG_IGN);
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "onnxtune: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
