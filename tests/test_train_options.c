/* test_train_options.c - the training program's options are one table (program/options.def) read by the
 * program's parser and by `onnxtune train`: PROG --help lists exactly the table's rows, and every option
 * it lists is taken by `onnxtune train` before MODEL and after it (a value option with a valid value),
 * never its value as the model. Also: help written into a closed pipe (`... --help-program | head`)
 * exits 0 rather than dying of SIGPIPE. Needs $ONNXTUNE (CTest sets it). */
#include "train_tool.h"

static const struct {
    const char *name, *arg;
} table[] = {
#define TRAIN_OPTION(topic, name, arg, compile_default, help) {name, arg},
#include "options.def"
};
#define NTABLE (sizeof table / sizeof table[0])

/* A value PROG (an SGD classifier with momentum) accepts for the option, judged by its placeholder. */
static const char *valid_value(const char *name, const char *arg)
{
    static const struct {
        const char *name, *value;
    } by_name[] = {
        {"--lr-schedule", "cosine"}, {"--seed", "3"},       {"--monitor", "accuracy"}, {"--crop", "8x8"},
        {"--augment", "flip"},       {"--classes", "a,b"},  {"--mean", "0.5"},         {"--std", "0.5"},
        {"--val-split", "0.25"},     {"--batch", "4"},      {"--beta1", "0.9"},        {"--beta2", "0.99"},
        {"--feature-cache", "off"},  {"--feature-cache-mb", "64"},
    };
    for (size_t i = 0; i < sizeof by_name / sizeof by_name[0]; i++)
        if (strcmp(by_name[i].name, name) == 0)
            return by_name[i].value;
    if (strcmp(arg, "F") == 0 || strcmp(arg, "D") == 0 || strcmp(arg, "NORM") == 0)
        return "0.5";
    if (strcmp(arg, "N") == 0 || strcmp(arg, "E") == 0 || strcmp(arg, "K") == 0 || strcmp(arg, "R") == 0 ||
        strcmp(arg, "STEPS") == 0 || strcmp(arg, "PATIENCE") == 0)
        return "2";
    if (strcmp(arg, "NAME=FILE.npy") == 0)
        return "fc1.weight=w.npy";
    if (strcmp(arg, "DIR") == 0)
        return "some_dir";
    if (strchr(arg, '.') || strcmp(arg, "FILE") == 0)
        return "some_file.npy";
    return NULL;
}

typedef struct HelpOpt {
    char name[64], arg[64];
} HelpOpt;

/* The "  --name [ARG]  help" lines of PROG --help (the ARG one space after the name). */
static size_t parse_help(const char *text, HelpOpt *out, size_t max)
{
    size_t n = 0;
    for (const char *l = text; l && *l && n < max; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, "  --", 4) != 0)
            continue;
        const char *p = l + 2;
        size_t k = strcspn(p, " \n");
        snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)k, p);
        p += k;
        out[n].arg[0] = '\0';
        if (p[0] == ' ' && p[1] != ' ' && p[1] != '\n') {
            k = strcspn(p + 1, " \n");
            snprintf(out[n].arg, sizeof out[n].arg, "%.*s", (int)k, p + 1);
        }
        n++;
    }
    return n;
}

static const char *const model = "models/mlp/model.onnx";

/* onnxtune train with the compile options first, then words[0..n) around MODEL (before: MODEL last),
 * --help-program at the end: PROG parses everything, then prints its help. */
static int run_train(const char *const *words, int n, bool before)
{
    TtArgv a = {.n = 0};
    tt_pushv(&a, tt_onnxtune, "train", "--train", "*", "--head", "none", "--momentum", "0.9", NULL);
    if (!before)
        tt_push(&a, model);
    for (int i = 0; i < n; i++)
        tt_push(&a, words[i]);
    if (before)
        tt_push(&a, model);
    tt_push(&a, "--help-program");
    return tt_run(&a);
}

static void every_option(void)
{
    const char *none[1] = {NULL};
    int rc = run_train(none, 0, false);
    CHECK_MSG(rc == 0, "onnxtune train %s --help-program exited %d: %s", model, rc, tt_err);
    if (rc)
        return;
    static HelpOpt help[256];
    size_t n = parse_help(tt_out, help, 256);
    /* the help is the table, row for row */
    CHECK_MSG(n == NTABLE, "PROG --help lists %zu options, program/options.def has %zu", n, NTABLE);
    for (size_t i = 0; i < n && i < NTABLE; i++)
        CHECK_MSG(strcmp(help[i].name, table[i].name) == 0 && strcmp(help[i].arg, table[i].arg ? table[i].arg : "") == 0,
                  "help line %zu is '%s %s', the table's row '%s %s'", i, help[i].name, help[i].arg, table[i].name,
                  table[i].arg ? table[i].arg : "");
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const char *value = help[i].arg[0] ? valid_value(help[i].name, help[i].arg) : NULL;
        CHECK_MSG(!help[i].arg[0] || value, "%s %s: no valid value known to this test (add one)", help[i].name,
                  help[i].arg);
        const char *words[2] = {help[i].name, value};
        for (int before = 0; before < 2; before++) {
            rc = run_train(words, value ? 2 : 1, before);
            bool listed = strstr(tt_out, "  --train-x X.npy") != NULL;
            CHECK_MSG(rc == 0 && listed, "onnxtune train %s%s%s%s%s: exit %d, %s: %s", before ? "" : "MODEL ",
                      help[i].name, value ? " " : "", value ? value : "", before ? " MODEL" : "", rc,
                      listed ? "help printed" : "no help", tt_err);
            ok += rc == 0 && listed;
        }
    }
    /* --batch and --no-cache are train's own too (the compiled batch; rebuilding): taken by train itself */
    printf("options    %zu options of PROG --help (program/options.def) taken before and after MODEL: %zu of %zu "
           "runs ok\n", n, ok, 2 * n);
}

/* Help into a pipe nobody reads: the first write fails. Exit 0, not killed by SIGPIPE. */
static int help_into_closed_pipe(const char *const *argv)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1000;
    close(fds[0]);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);   /* as a shell starts it */
        dup2(fds[1], 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid)
        return -1000;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
}

static void help_sigpipe(void)
{
    const char *prog_help[] = {tt_onnxtune, "train", model, "--train", "*", "--head", "none", "--momentum", "0.9",
                               "--help-program", NULL};
    const char *train_help[] = {tt_onnxtune, "train", "--help", NULL};
    const char *top_help[] = {tt_onnxtune, "--help", NULL};
    const char *compile_help[] = {tt_onnxtune, "compile", "--help", NULL};
    int rc = help_into_closed_pipe(prog_help);
    CHECK_MSG(rc == 0, "onnxtune train MODEL --help-program | head: %s %d", rc < 0 ? "killed by signal" : "exit",
              rc < 0 ? -rc : rc);
    rc = help_into_closed_pipe(train_help);
    CHECK_MSG(rc == 0, "onnxtune train --help | head: %s %d", rc < 0 ? "killed by signal" : "exit", rc < 0 ? -rc : rc);
    rc = help_into_closed_pipe(top_help);
    CHECK_MSG(rc == 0, "onnxtune --help | head: %s %d", rc < 0 ? "killed by signal" : "exit", rc < 0 ? -rc : rc);
    rc = help_into_closed_pipe(compile_help);
    CHECK_MSG(rc == 0, "onnxtune compile --help | head: %s %d", rc < 0 ? "killed by signal" : "exit",
              rc < 0 ? -rc : rc);
    printf("sigpipe    help into a closed pipe exits 0 (PROG's, train's, onnxtune's, compile's)\n");
}

int main(void)
{
    if (!tt_setup("test_train_options"))
        return 1;
    setenv("ONNXTUNE_CACHE", tt_path("cache"), 1);   /* programs built here, removed with the folder */
    every_option();
    help_sigpipe();
    tt_cleanup();
    return test_summary("test_train_options");
}
