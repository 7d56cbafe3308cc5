/* cmd_train.c - `onnxtune train MODEL [compile options] [PROG options]`: compile a training program
 * (cached like `onnxtune run`) and run it in its place (exec: signals and the exit status are the
 * program's), in one step; and the training options that `compile`
 * (without --infer) shares. It parses and prints; codegen/train_program.c builds, program/trainer.c trains.
 * Programs are cached by tools/cache.c as train-<key>, keyed by the model's bytes, the compile options,
 * the batch and the example shapes (and what cache.c adds: version, binary, runtime library). */
#include "tools.h"

#include "codegen.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the training options ---- */

enum { T_COMPILE, T_DEFAULT, T_BOTH };

typedef struct TrainOpt {
    const char *name;
    bool value;
    int kind;           /* T_COMPILE: structure or hyperparameter; T_DEFAULT: PROG's default; T_BOTH: --seed */
    const char *arg, *help;
} TrainOpt;

/* The compile options (the T_DEFAULT ones are PROG's: program/options.def's rows marked COMPILE_DEFAULT) */
static const TrainOpt train_opts[] = {
    {"--train", true, T_COMPILE, "GLOB", "train the initializers matching GLOB (repeatable; later wins)"},
    {"--freeze", true, T_COMPILE, "GLOB", "freeze the initializers matching GLOB (repeatable; later wins)"},
    {"--train-from", true, T_COMPILE, "NAME", "train every parameter downstream of a value or node"},
    {"--train-bias", false, T_COMPILE, NULL, "train every bias (BitFit)"},
    {"--bn-train", false, T_COMPILE, NULL, "BatchNormalization in the trainable region on batch statistics"},
    {"--head", true, T_COMPILE, "SPEC", "none, linear:K or mlp:H,K (replaces the final classifier)"},
    {"--head-dropout", true, T_COMPILE, "P", "dropout between the mlp head's layers"},
    {"--lora", true, T_COMPILE, "GLOB", "add LoRA adapters to the matched MatMul/Gemm/Conv weights (repeatable)"},
    {"--lora-rank", true, T_COMPILE, "R", "LoRA rank r (default 8)"},
    {"--lora-alpha", true, T_COMPILE, "A", "LoRA alpha: the update is scaled by alpha/r (default 16)"},
    {"--lora-dropout", true, T_COMPILE, "P", "dropout on the adapters' input (default 0)"},
    {"--cut", true, T_COMPILE, "VALUE", "attach the head to VALUE (default: the final classifier's input)"},
    {"--pool", true, T_COMPILE, "cls|mean|last", "a [N,T,D] cut to [N,D]: token 0, the mean over the mask, the last "
     "token"},
    {"--mask-input", true, T_COMPILE, "NAME", "the attention mask --pool mean/last use (default: attention_mask)"},
    {"--loss", true, T_COMPILE, "NAME", "cross_entropy (default), mse, l1, bce_with_logits, model (its own loss)"},
    {"--label-smoothing", true, T_COMPILE, "E", "cross_entropy label smoothing"},
    {"--optimizer", true, T_COMPILE, "NAME", "sgd (default), adam, adamw"},
    {"--momentum", true, T_COMPILE, "F", "SGD momentum"},
    {"--nesterov", false, T_COMPILE, NULL, "SGD Nesterov momentum"},
    {"--weight-decay", true, T_COMPILE, "F", "weight decay (sgd/adam 0, adamw 0.01)"},
    {"--beta1", true, T_COMPILE, "F", "Adam beta1 (0.9)"},
    {"--beta2", true, T_COMPILE, "F", "Adam beta2 (0.999)"},
    {"--eps", true, T_COMPILE, "F", "Adam epsilon (1e-8)"},
    {"--grad-clip", true, T_COMPILE, "NORM", "clip the total gradient norm"},
    {"--seed", true, T_BOTH, "S", "seed of the head's init (and PROG's default --seed)"},
    {"--features-batch", true, T_COMPILE, "N", "the samples the frozen part runs at a time, 1 to --batch (default: "
     "chosen)"},
};
#define NTRAIN_OPTS (sizeof train_opts / sizeof train_opts[0])

/* The training program's own options, the rows PROG parses (program/options.def): which of train's
 * arguments are PROG's, whether the next argument is their value, and which `compile` records as
 * PROG's defaults. */
static const struct {
    const char *name, *arg;
    bool compile_default;
} prog_opts[] = {
#define TRAIN_OPTION(topic, name, arg, compile_default, help) {name, arg, compile_default},
#include "options.def"
};
#define NPROG_OPTS (sizeof prog_opts / sizeof prog_opts[0])

static int find_train_opt(const char *a, size_t len)
{
    for (size_t i = 0; i < NTRAIN_OPTS; i++)
        if (strlen(train_opts[i].name) == len && strncmp(train_opts[i].name, a, len) == 0)
            return (int)i;
    return -1;
}

static int find_prog_opt(const char *a, size_t len)
{
    for (size_t i = 0; i < NPROG_OPTS; i++)
        if (strlen(prog_opts[i].name) == len && strncmp(prog_opts[i].name, a, len) == 0)
            return (int)i;
    return -1;
}

/* A compile option, or a PROG option whose default `compile` records (T_DEFAULT); false: neither. */
static bool find_opt(const char *a, size_t len, TrainOpt *out)
{
    int k = find_train_opt(a, len);
    if (k >= 0) {
        *out = train_opts[k];
        return true;
    }
    k = find_prog_opt(a, len);
    if (k < 0 || !prog_opts[k].compile_default)
        return false;
    *out = (TrainOpt){prog_opts[k].name, prog_opts[k].arg != NULL, T_DEFAULT, prog_opts[k].arg, NULL};
    return true;
}

bool tools_take_train_options(const char *cmd, int *argc, char **argv, TrainArgs *a, bool record_defaults)
{
    memset(a, 0, sizeof *a);
    int w = 1;
    bool done = false;
    for (int i = 1; i < *argc; i++) {
        const char *arg = argv[i];
        if (!done && strcmp(arg, "--") == 0)
            done = true;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        TrainOpt opt;
        bool found = !done && find_opt(arg, eq ? (size_t)(eq - arg) : strlen(arg), &opt);
        if (found && !record_defaults && strcmp(opt.name, "--weight-decay") == 0) {
            const char *v = eq ? eq + 1 : i + 1 < *argc ? argv[i + 1] : "";
            if (strchr(v, ',')) {   /* `train`: a list is PROG's, for --cv */
                argv[w++] = argv[i];
                if (!eq && i + 1 < *argc)
                    argv[w++] = argv[++i];
                continue;
            }
        }
        if (!found || (opt.kind == T_DEFAULT && !record_defaults)) {
            argv[w++] = argv[i];
            continue;
        }
        bool pass_on = opt.kind == T_BOTH && !record_defaults; /* train: --seed is PROG's too */
        bool takes = opt.value;
        if (takes && !eq && i + 1 >= *argc) {
            fprintf(stderr, "onnxtune %s: option %s needs a value (%s %s)\n", cmd, arg, arg, opt.arg);
            return false;
        }
        if (!takes && eq) {
            fprintf(stderr, "onnxtune %s: option %.*s takes no value\n", cmd, (int)(eq - arg), arg);
            return false;
        }
        int n = takes && !eq ? 2 : 1;
        if (a->argc + n > (int)(sizeof a->argv / sizeof a->argv[0]) ||
            a->ndefaults + n > (int)(sizeof a->defaults / sizeof a->defaults[0])) {
            fprintf(stderr, "onnxtune %s: too many training options\n", cmd);
            return false;
        }
        for (int j = 0; j < n; j++) {
            if (opt.kind != T_DEFAULT)
                a->argv[a->argc++] = argv[i + j];
            if (opt.kind != T_COMPILE && record_defaults)
                a->defaults[a->ndefaults++] = argv[i + j];
        }
        for (int j = 0; pass_on && j < n; j++)
            argv[w++] = argv[i + j];
        i += n - 1;
    }
    *argc = w;
    argv[w] = NULL;
    /* compiled_with: the options as given, --seed once */
    size_t len = 0;
    for (int i = 0; i < a->argc + a->ndefaults; i++) {
        const char *s = i < a->argc ? a->argv[i] : a->defaults[i - a->argc];
        if (i >= a->argc && (strcmp(s, "--seed") == 0 || strncmp(s, "--seed=", 7) == 0)) {
            i += s[6] != '=';
            continue;
        }
        int wrote = snprintf(a->compiled_with + len, sizeof a->compiled_with - len, "%s%s", len ? " " : "", s);
        if (wrote < 0 || (size_t)wrote >= sizeof a->compiled_with - len)
            break;
        len += (size_t)wrote;
    }
    return true;
}

static bool number(const char *cmd, const char *name, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !isfinite(x)) {
        fprintf(stderr, "onnxtune %s: %s wants a number, not '%s'\n", cmd, name, v);
        return false;
    }
    *out = x;
    return true;
}

static FreezeRule freeze_rules[128];
static const char *lora_globs[128];

bool tools_train_compile_options(const char *cmd, TrainArgs *a, struct TrainCompileOptions *o)
{
    Diag d;
    diag_init(&d, NULL);
    const char *optimizer = "sgd", *loss = "cross_entropy";
    double mom = 0, wd = NAN, b1 = NAN, b2 = NAN, eps = NAN, clip = 0, ls = 0, hd = 0, seed = 0;
    double rank = 8, alpha = 16, ldrop = 0;
    const char *lora_hyper = NULL;
    bool nesterov = false;
    HeadPool pool = HEAD_POOL_NONE;
    const char *mask_input = NULL;
    o->freeze = (FreezeOptions){.rules = freeze_rules};
    o->head = (HeadOptions){.kind = HEAD_NONE};
    o->lora = (LoraOptions){0};
    for (int i = 0; i < a->argc; i++) {
        const char *arg = a->argv[i], *eq = strchr(arg, '='), *v = NULL;
        size_t len = eq && strncmp(arg, "--", 2) == 0 ? (size_t)(eq - arg) : strlen(arg);
        int k = find_train_opt(arg, len);
        if (k < 0)
            continue;
        if (train_opts[k].value)
            v = eq && len < strlen(arg) ? eq + 1 : a->argv[++i];
        const char *name = train_opts[k].name;
#define IS(s) (strcmp(name, s) == 0)
        bool ok = true;
        if (IS("--train") || IS("--freeze")) {
            if (o->freeze.nrules == sizeof freeze_rules / sizeof freeze_rules[0]) {
                fprintf(stderr, "onnxtune %s: too many --train/--freeze options\n", cmd);
                return false;
            }
            freeze_rules[o->freeze.nrules++] = (FreezeRule){IS("--train"), v};
        } else if (IS("--train-from")) {
            o->freeze.train_from = v;
        } else if (IS("--train-bias")) {
            o->freeze.train_bias = true;
        } else if (IS("--bn-train")) {
            o->freeze.bn_train = true;
        } else if (IS("--head")) {
            double keep = o->head.dropout;
            const char *cut = o->head.cut;
            ok = head_parse(v, &o->head, &d) == ST_OK;
            o->head.dropout = keep;
            o->head.cut = cut;
        } else if (IS("--lora")) {
            if (o->lora.nglobs == sizeof lora_globs / sizeof lora_globs[0]) {
                fprintf(stderr, "onnxtune %s: too many --lora options\n", cmd);
                return false;
            }
            lora_globs[o->lora.nglobs++] = v;
        } else if (IS("--lora-rank")) {
            lora_hyper = name;
            ok = number(cmd, name, v, &rank);
            if (ok && !(rank >= 1 && rank <= (1 << 20) && rank == floor(rank))) {
                fprintf(stderr, "onnxtune %s: --lora-rank wants an integer from 1 to %d, not '%s'\n", cmd, 1 << 20, v);
                ok = false;
            }
        } else if (IS("--lora-alpha")) {
            lora_hyper = name;
            ok = number(cmd, name, v, &alpha);
        } else if (IS("--lora-dropout")) {
            lora_hyper = name;
            ok = number(cmd, name, v, &ldrop);
        } else if (IS("--features-batch")) {
            double fb = 0;
            ok = number(cmd, name, v, &fb);
            if (ok && !(fb >= 1 && fb <= (1 << 20) && fb == floor(fb))) {
                fprintf(stderr, "onnxtune %s: --features-batch wants an integer >= 1, not '%s'\n", cmd, v);
                ok = false;
            }
            o->features_batch = ok ? (int64_t)fb : 0;
        } else if (IS("--cut")) {
            o->head.cut = v;
        } else if (IS("--pool")) {
            ok = head_pool_parse(v, &pool, &d) == ST_OK;
        } else if (IS("--mask-input")) {
            mask_input = v;
        } else if (IS("--head-dropout")) {
            ok = number(cmd, name, v, &hd);
        } else if (IS("--loss")) {
            loss = v;
        } else if (IS("--label-smoothing")) {
            ok = number(cmd, name, v, &ls);
        } else if (IS("--optimizer")) {
            optimizer = v;
        } else if (IS("--momentum")) {
            ok = number(cmd, name, v, &mom);
        } else if (IS("--nesterov")) {
            nesterov = true;
        } else if (IS("--weight-decay")) {
            ok = number(cmd, name, v, &wd);
        } else if (IS("--beta1")) {
            ok = number(cmd, name, v, &b1);
        } else if (IS("--beta2")) {
            ok = number(cmd, name, v, &b2);
        } else if (IS("--eps")) {
            ok = number(cmd, name, v, &eps);
        } else if (IS("--grad-clip")) {
            ok = number(cmd, name, v, &clip);
        } else if (IS("--seed")) {
            ok = number(cmd, name, v, &seed) && seed >= 0 && seed == floor(seed);
            if (!ok)
                fprintf(stderr, "onnxtune %s: --seed wants an integer >= 0, not '%s'\n", cmd, v);
        }
#undef IS
        if (!ok) {
            if (d.status)
                fprintf(stderr, "onnxtune %s: %s\n", cmd, d.msg);
            return false;
        }
    }
    OptimKind kind;
    if (optim_parse(optimizer, &kind, &d) || loss_parse(loss, &o->loss.kind, &d)) {
        fprintf(stderr, "onnxtune %s: %s\n", cmd, d.msg);
        return false;
    }
    if (lora_hyper && !o->lora.nglobs) {
        fprintf(stderr, "onnxtune %s: %s needs --lora GLOB (which weights get adapters)\n", cmd, lora_hyper);
        return false;
    }
    o->lora.globs = lora_globs;
    o->lora.rank = (int64_t)rank;
    o->lora.alpha = alpha;
    o->lora.dropout = ldrop;
    o->lora.seed = (uint64_t)seed;
    o->loss.label_smoothing = ls;
    o->head.dropout = hd;
    o->head.pool = pool;
    o->head.mask_input = mask_input;
    if (mask_input && !pool) {
        fprintf(stderr, "onnxtune %s: --mask-input is the mask of --pool mean or last\n", cmd);
        return false;
    }
    o->head.seed = (uint64_t)seed;
    optim_defaults(kind, &o->optim);
    o->optim.momentum = mom;
    o->optim.nesterov = nesterov;
    o->optim.grad_clip = clip;
    if (!isnan(wd))
        o->optim.weight_decay = wd;
    if (!isnan(b1))
        o->optim.beta1 = b1;
    if (!isnan(b2))
        o->optim.beta2 = b2;
    if (!isnan(eps))
        o->optim.eps = eps;
    o->defaults = a->defaults;
    o->ndefaults = (size_t)a->ndefaults;
    o->compiled_with = a->compiled_with;
    return true;
}

/* ---- onnxtune train ---- */

static void train_usage(FILE *f)
{
    fprintf(f, "usage: onnxtune train MODEL [compile options] [PROG options]\n"
               "Compile MODEL into a training program (cached) and run it: onnxtune compile's training options,\n"
               "then the program's (--train-x X.npy --train-y Y.npy, --epochs, --lr, --metrics, --export, ...;\n"
               "see PROG --help, e.g. onnxtune train MODEL --help-program).\n\noptions of train itself:\n");
    fprintf(f, "  %-22s %s\n", "--batch N", "compiled batch, and PROG's batch (default 32)");
    fprintf(f, "  %-22s %s\n", "--input NAME=FILE.npy", "an example input fixing symbolic dims (repeatable)");
    fprintf(f, "  %-22s %s\n", "--no-cache", "rebuild even when a cached program exists");
    fprintf(f, "  %-22s %s\n", "--werror", "build the generated C with -Werror");
    fprintf(f, "  %-22s %s\n", "--help-program", "show the program's options");
    fprintf(f, "\ncompile options:\n");
    for (size_t i = 0; i < NTRAIN_OPTS; i++)
        if (train_opts[i].kind != T_DEFAULT) {
            char left[64];
            snprintf(left, sizeof left, "%s%s%s", train_opts[i].name, train_opts[i].arg ? " " : "",
                     train_opts[i].arg ? train_opts[i].arg : "");
            fprintf(f, "  %-22s %s\n", left, train_opts[i].help);
        }
}

static Status build_program(void *ctx, const char *output, Diag *d)
{
    TrainCompileOptions *co = ctx;
    TrainCompileStats stats;
    co->output = output;
    return codegen_compile_trainer(co, &stats, d);
}

/* The command line as typed (argv[-1] is main's onnxtune path), one word a line, for the program's resume
 * command (program/trainer_run.c reads $ONNXTUNE_COMMAND); NULL when a word holds a newline. */
static char *command_words(int argc, char **argv)
{
    size_t len = 1;
    for (int i = -1; i < argc; i++) {
        if (strchr(argv[i], '\n'))
            return NULL;
        len += strlen(argv[i]) + 1;
    }
    char *s = malloc(len), *at = s;
    for (int i = -1; s && i < argc; i++)
        at += sprintf(at, "%s%s", argv[i], i + 1 < argc ? "\n" : "");
    return s;
}

int cmd_train(int argc, char **argv)
{
    InputArg inputs[64];
    TrainArgs ta;
    char *command = command_words(argc, argv);
    int ninputs = tools_take_inputs("train", &argc, argv, inputs, 64);
    if (ninputs < 0) {
        free(command);
        return 2;
    }
    int rc = 2;
    char **pargv = NULL;
    if (!tools_take_train_options("train", &argc, argv, &ta, false))
        goto out;
    /* what is left: MODEL, train's own options, and PROG's */
    const char *model = NULL, *batch_arg = NULL;
    bool no_cache = false, werror = false, help_program = false;
    pargv = calloc((size_t)argc + 4, sizeof *pargv);
    if (!pargv) {
        fprintf(stderr, "onnxtune train: out of memory\n");
        rc = 1;
        goto out;
    }
    int np = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int took = cli_take_value("train", "--batch", "N", argc, argv, &i, &batch_arg);
        if (took < 0)
            goto out;
        if (took > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            /* help piped into a reader that stops early (| head) is not an error: no death by SIGPIPE */
            signal(SIGPIPE, SIG_IGN);
            train_usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--help-program") == 0) {
            help_program = true;
        } else if (strcmp(a, "--no-cache") == 0) {
            no_cache = true;
        } else if (strcmp(a, "--werror") == 0) {
            werror = true;
        } else if (a[0] != '-' && !model) {
            model = a;
        } else {
            /* PROG's, with its value when its options.def row has one (so a value is never taken for MODEL) */
            const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
            int k = find_prog_opt(a, eq ? (size_t)(eq - a) : strlen(a));
            pargv[np++] = argv[i];
            if (k >= 0 && prog_opts[k].arg && !eq && i + 1 < argc)
                pargv[np++] = argv[++i];
        }
    }
    if (!model) {
        fprintf(stderr, "onnxtune train: missing MODEL (see onnxtune train --help)\n");
        goto out;
    }
    int64_t batch = 32;
    if (batch_arg) {
        char *end;
        long long b = strtoll(batch_arg, &end, 10);
        if (!*batch_arg || *end || b < 1 || b > (1 << 20)) {
            fprintf(stderr, "onnxtune train: --batch wants a number from 1 to %d, not '%s'\n", 1 << 20, batch_arg);
            goto out;
        }
        batch = b;
    }
    TrainCompileOptions co = {.model = model, .batch = batch, .werror = werror};
    InputShape shapes[64];
    if (!tools_train_compile_options("train", &ta, &co))
        goto out;
    rc = 1;
    if (!tools_input_shapes("train", inputs, ninputs, shapes))
        goto out;
    co.shapes = shapes;
    co.nshapes = (size_t)ninputs;

    CacheKey key;
    if (!cache_key_start("train", &key, model))
        goto out;
    cache_key_str(&key, "train");
    for (int i = 0; i < ta.argc; i++)
        cache_key_str(&key, ta.argv[i]);
    cache_key_bytes(&key, &batch, sizeof batch);
    cache_key_shapes(&key, shapes, ninputs);
    Diag d;
    diag_init(&d, model);
    char prog[PATH_MAX + 64];
    int st = cache_program("train", &key, "train-", no_cache, build_program, &co, &d, prog, sizeof prog);
    if (st >= 0) {
        rc = st;
        goto out;
    }

    /* PROG [--batch N] [PROG options] */
    pargv[0] = "onnxtune train";
    if (help_program)
        pargv[np++] = "--help";
    if (batch_arg) {
        memmove(pargv + 3, pargv + 1, (size_t)(np - 1) * sizeof *pargv);
        pargv[1] = "--batch";
        pargv[2] = (char *)batch_arg;
        np += 2;
    }
    pargv[np] = NULL;
    if (command)
        setenv("ONNXTUNE_COMMAND", command, 1);
    /* exec, not a child: Ctrl-C and SIGTERM reach the program as if it were run directly (it saves a
     * checkpoint and exits 130/143), and its exit status is train's */
    fflush(NULL);
    execv(prog, pargv);
    fprintf(stderr, "onnxtune train: cannot run %s: %s\n", prog, strerror(errno));
    rc = 127;
out:
    free(command);
    free(pargv);
    tools_free_inputs(inputs, ninputs);
    return rc;
}
