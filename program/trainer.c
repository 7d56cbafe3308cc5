/* trainer.c - the generic half of a compiled training program (trainer_main): options (compile-time
 * defaults first, then the command line, the last occurrence winning), NPY data and its checks, seeded
 * shuffling, batching with a padded short last batch, the learning-rate schedule, validation, metrics,
 * NaN/Inf stops that keep the last good weights, and the export of the fine-tuned ONNX model.
 * It knows no model: the generated functions and tables of program.h's TrainProgram do the math. */
#define _POSIX_C_SOURCE 200809L
#include "program_priv.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---- the generator: splitmix64, for shuffling and --val-split ---- */

uint64_t tr_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fisher-Yates: for i = n-1 .. 1 swap order[i] and order[j], j = tr_splitmix64() % (i + 1). Epoch e (from 1)
 * uses the stream seeded with seed * 2^20 + e; --val-split's permutation the one seeded with seed * 2^20. */
void tr_shuffle(size_t *order, size_t n, uint64_t state)
{
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)(tr_splitmix64(&state) % (uint64_t)(i + 1));
        size_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* ---- options ---- */

/* Every option, from program/options.def (tools/cmd_train.c reads the same rows). */
static const OptSpec specs[] = {
#define TRAIN_OPTION(topic, name, arg, compile_default, help) {name, arg, help, TOPIC_##topic},
#include "options.def"
    {NULL, NULL, NULL, 0},
};

static int apply_option(Trainer *t, const char *name, const char *v);

/* Who applies a row's option: trainer.c, or the file of its topic. */
static int (*const apply_topic[])(Trainer *t, const char *name, const char *v) = {
    [TOPIC_MAIN] = apply_option,
    [TOPIC_RUN] = tr_run_option,
    [TOPIC_SELECT] = tr_select_option,
    [TOPIC_DATA] = tr_data_option,
    [TOPIC_EVAL] = tr_eval_option,
    [TOPIC_FEATURES] = tr_features_option,
};

/* Options fixed when the program is compiled: naming them here gives a helpful error. */
static const char *const compile_only[] = {
    "--train", "--freeze", "--train-from", "--train-bias", "--bn-train", "--head", "--head-dropout", "--cut",
    "--loss", "--label-smoothing", "--optimizer", "--infer", "--input", "--emit-c", "--lora", "--lora-rank",
    "--lora-alpha", "--lora-dropout", NULL,
};

/* "PROG: message" on stderr; returns the exit status 1. */
int tr_fail(const Trainer *t, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", t->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

const char *tr_loss_name(int loss)
{
    static const char *const names[] = {"cross_entropy", "mse", "l1", "bce_with_logits", "model"};
    return loss >= 0 && loss < 5 ? names[loss] : "?";
}

const char *tr_optim_name(int o)
{
    static const char *const names[] = {"sgd", "adam", "adamw"};
    return o >= 0 && o < 3 ? names[o] : "?";
}

static void usage(const Trainer *t, FILE *f)
{
    const TrainProgram *p = t->p;
    fprintf(f, "usage: %s --train-x X.npy --train-y Y.npy [options]   (or --train-x DATA.npz, or --train-dir DIR)\n"
               "       %s eval (--x X.npy --y Y.npy | --x DATA.npz | --dir DIR) [--weights M.onnx | --checkpoint C] "
               "[--confusion]\n"
               "       %s predict (--x X.npy | --x DATA.npz | --dir DIR) [--weights M.onnx | --checkpoint C] --output "
               "P.npy [--output-labels L.npy]\n"
               "       %s features (--x X.npy | --dir DIR) --output F.npy   (the frozen part's output, when it has one)\n",
            t->prog, t->prog, t->prog, t->prog);
    fprintf(f, "Fine-tunes %s (compiled by onnxtune for batch %lld; %s loss, %s).\n", p->model ? p->model : "the model",
            (long long)p->batch, tr_loss_name(p->loss), tr_optim_name(p->optimizer));
    if (p->compiled_with && *p->compiled_with)
        fprintf(f, "Compiled with: %s\n", p->compiled_with);
    if (p->nx > 1) {    /* X.npy above stands for one file per input */
        fprintf(f, "The model has %d inputs: give each as --train-x NAME=FILE.npy (--val-x, --x alike), or one .npz "
                "with these keys and y:", p->nx);
        for (int k = 0; k < p->nx; k++) {
            char shape[160];
            fprintf(f, " %s %s %s", p->xs[k].name, rt_dtype_name((RtDType)p->xs[k].t.dtype),
                    tr_shape_text(shape, sizeof shape, p->xs[k].t.rank, NULL, p->xs[k].t.dims));
            fputc(k + 1 < p->nx ? ',' : '\n', f);
        }
    }
    fprintf(f, "\noptions:\n");
    for (const OptSpec *s = specs; s->name; s++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", s->name, s->arg ? " " : "", s->arg ? s->arg : "");
        fprintf(f, "  %-24s %s\n", left, s->help);
    }
    fprintf(f, "  %-24s %s\n", "-h, --help", "show this help and exit");
    if (p->ndefaults) {
        fprintf(f, "\ndefaults set at compile time:");
        for (int i = 0; i < p->ndefaults; i++)
            fprintf(f, " %s", p->defaults[i]);
        fputc('\n', f);
    }
}

bool tr_parse_f64(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool tr_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno == ERANGE || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* One option with its value (NULL for flags); returns 0 or the exit status of a usage error. */
static int apply_option(Trainer *t, const char *name, const char *v)
{
    Options *o = &t->o;
    const TrainProgram *p = t->p;
    double f;
    int64_t i;
#define IS(s) (strcmp(name, s) == 0)
#define BAD_VALUE(what) (fprintf(stderr, "%s: %s wants %s, not '%s'\n", t->prog, name, what, v), 2)
    int listed = IS("--lr") || IS("--weight-decay") ? tr_select_list(t, name, v) : -1;    /* F,F,... for --cv */
    if (listed >= 0)
        return listed;
    if (IS("--train-x") && tr_add_x(t, &o->train_xl, name, v))
        return 2;
    if (IS("--val-x") && tr_add_x(t, &o->val_xl, name, v))
        return 2;
    if (IS("--train-x"))
        o->train_x = v;
    else if (IS("--train-y"))
        o->train_y = v;
    else if (IS("--val-x"))
        o->val_x = v;
    else if (IS("--val-y"))
        o->val_y = v;
    else if (IS("--metrics"))
        o->metrics = v;
    else if (IS("--export"))
        o->export_path = v;
    else if (IS("--export-adapters"))
        o->export_adapters = v;
    else if (IS("--lora-from"))
        o->lora_from = v;
    else if (IS("--no-shuffle") || IS("--shuffle"))
        o->shuffle = IS("--shuffle");
    else if (IS("--drop-last"))
        o->drop_last = true;
    else if (IS("--quiet"))
        o->quiet = true;
    else if (IS("--val-split")) {
        if (!tr_parse_f64(v, &f) || !(f > 0 && f < 1))
            return BAD_VALUE("a fraction between 0 and 1");
        o->val_split = f;
    } else if (IS("--epochs")) {
        if (!tr_parse_i64(v, 1, 1000000, &o->epochs))
            return BAD_VALUE("a number of epochs >= 1");
    } else if (IS("--batch")) {
        if (!tr_parse_i64(v, 1, INT64_MAX, &i))
            return BAD_VALUE("a batch size >= 1");
        if (i > p->batch) {
            fprintf(stderr, "%s: --batch %lld is larger than the compiled batch %lld (recompile with onnxtune "
                    "compile --batch %lld)\n", t->prog, (long long)i, (long long)p->batch, (long long)i);
            return 2;
        }
        o->batch = i;
    } else if (IS("--lr")) {
        if (!tr_parse_f64(v, &f) || f < 0)
            return BAD_VALUE("a learning rate >= 0");
        o->lr = f;
    } else if (IS("--seed")) {
        if (!tr_parse_i64(v, 0, INT64_MAX >> 20, &o->seed))
            return BAD_VALUE("a seed >= 0");
    } else if (IS("--warmup")) {
        if (!tr_parse_i64(v, 0, INT64_MAX, &o->warmup))
            return BAD_VALUE("a number of steps >= 0");
    } else if (IS("--threads")) {
        if (!tr_parse_i64(v, 1, 4096, &o->threads))
            return BAD_VALUE("a thread count from 1 to 4096");
    } else if (IS("--lr-schedule")) {
        char *end;
        if (strcmp(v, "constant") == 0) {
            o->schedule = SCHED_CONSTANT;
        } else if (strcmp(v, "cosine") == 0) {
            o->schedule = SCHED_COSINE;
        } else if (strncmp(v, "step:", 5) == 0 && (o->step_epochs = strtoll(v + 5, &end, 10)) >= 1 && *end == ',' &&
                   tr_parse_f64(end + 1, &o->step_gamma) && o->step_gamma > 0) {
            o->schedule = SCHED_STEP;
        } else {
            return BAD_VALUE("constant, cosine or step:EPOCHS,GAMMA");
        }
    } else if (IS("--init")) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || !eq[1])
            return BAD_VALUE("NAME=FILE.npy");
        if (o->ninits == sizeof o->inits / sizeof o->inits[0]) {
            fprintf(stderr, "%s: too many --init options\n", t->prog);
            return 2;
        }
        char *copy = strdup(v);
        if (!copy)
            return tr_fail(t, "out of memory");
        copy[eq - v] = '\0';
        o->inits[o->ninits++] = (InitArg){copy, copy + (eq - v) + 1};
    } else if (IS("--nesterov")) {
        if (p->optimizer != TRAIN_OPTIM_SGD)
            return fprintf(stderr, "%s: --nesterov is an SGD option (this program uses %s)\n", t->prog,
                           tr_optim_name(p->optimizer)), 2;
        rt_set_hyper(RT_HYPER_NESTEROV, 1);
    } else if (IS("--momentum") || IS("--weight-decay") || IS("--beta1") || IS("--beta2") || IS("--eps") ||
               IS("--grad-clip")) {
        bool sgd_only = IS("--momentum"), adam_only = IS("--beta1") || IS("--beta2") || IS("--eps");
        if (!tr_parse_f64(v, &f) || f < 0)
            return BAD_VALUE("a number >= 0");
        if ((sgd_only && p->optimizer != TRAIN_OPTIM_SGD) || (adam_only && p->optimizer == TRAIN_OPTIM_SGD))
            return fprintf(stderr, "%s: %s is not an option of %s (the optimizer is fixed at compile time)\n",
                           t->prog, name, tr_optim_name(p->optimizer)), 2;
        if (IS("--momentum") && !p->momentum_buffer && f != 0)
            return fprintf(stderr, "%s: the program was compiled without momentum; recompile with "
                           "--momentum %s\n", t->prog, v), 2;
        if (IS("--grad-clip") && !p->clipping && f != 0)
            return fprintf(stderr, "%s: the program was compiled without --grad-clip; recompile with "
                           "--grad-clip %s\n", t->prog, v), 2;
        if ((IS("--beta1") || IS("--beta2")) && f >= 1)
            return BAD_VALUE("a number in [0, 1)");
        RtHyper h = IS("--momentum") ? RT_HYPER_MOMENTUM : IS("--weight-decay") ? RT_HYPER_WEIGHT_DECAY
                  : IS("--beta1") ? RT_HYPER_BETA1 : IS("--beta2") ? RT_HYPER_BETA2 : IS("--eps") ? RT_HYPER_EPS
                  : RT_HYPER_MAX_NORM;
        if (h == RT_HYPER_MAX_NORM && f == 0)
            f = INFINITY;   /* --grad-clip 0: no clipping (a scale of min(inf, 1) = 1) */
        rt_set_hyper(h, f);
    } else {
        return 2;   /* not reached: names come from specs */
    }
    return 0;
#undef IS
#undef BAD_VALUE
}

/* Parse argv-like args[0..n) (the defaults, then the command line). Returns -1 to go on, else the exit
 * status (0 after --help). */
static int parse_args(Trainer *t, int n, const char *const *args, bool defaults)
{
    for (int k = 0; k < n; k++) {
        const char *a = args[k];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            /* help piped into a reader that stops early (| head) is not an error: no death by SIGPIPE */
            signal(SIGPIPE, SIG_IGN);
            usage(t, stdout);
            return 0;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const OptSpec *s = specs;
        while (s->name && (strlen(s->name) != len || strncmp(s->name, a, len) != 0))
            s++;
        if (!s->name) {
            for (const char *const *c = compile_only; *c; c++)
                if (strlen(*c) == len && strncmp(*c, a, len) == 0) {
                    fprintf(stderr, "%s: %.*s is fixed when the program is compiled (onnxtune compile MODEL %.*s "
                            "... -o PROG)\n", t->prog, (int)len, a, (int)len, a);
                    return 2;
                }
            fprintf(stderr, "%s: unknown %s '%s' (see %s --help)\n", t->prog,
                    defaults ? "compiled-in option" : "option", a, t->prog);
            return 2;
        }
        const char *v = NULL;
        if (s->arg) {
            if (eq)
                v = eq + 1;
            else if (k + 1 < n)
                v = args[++k];
            else {
                fprintf(stderr, "%s: %s needs a value (%s %s)\n", t->prog, s->name, s->name, s->arg);
                return 2;
            }
        } else if (eq) {
            fprintf(stderr, "%s: %s takes no value\n", t->prog, s->name);
            return 2;
        }
        int rc = apply_topic[s->topic](t, s->name, v);
        if (rc)
            return rc;
    }
    return -1;
}

/* ---- data ---- */

int tr_add_x(const Trainer *t, XList *l, const char *flag, const char *v)
{
    if (l->n == TRAIN_MAX_INPUTS) {
        fprintf(stderr, "%s: %s given more than %d times\n", t->prog, flag, TRAIN_MAX_INPUTS);
        return 2;
    }
    l->arg[l->n++] = v;
    return 0;
}

size_t tr_tensor_row_bytes(const TrainTensor *t)
{
    size_t b = rt_dtype_size((RtDType)t->dtype);
    for (int i = 1; i < t->rank; i++)
        b *= (size_t)t->dims[i];
    return b;
}

/* "[N,1,8,8]" with the batch dim as N */
const char *tr_shape_text(char *buf, size_t size, int rank, const size_t *dims, const int64_t *model_dims)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && k + 24 < size; i++) {
        int len = i == 0 && model_dims ? snprintf(buf + k, size - k, "[N")
                                       : snprintf(buf + k, size - k, "%s%lld", i ? "," : "[",
                                                  (long long)(model_dims ? model_dims[i] : (int64_t)dims[i]));
        k += len > 0 ? (size_t)len : 0;
    }
    snprintf(buf + k, size - k, rank ? "]" : "[]");
    return buf;
}

/* x or y of a split against the model: dtype, rank, the dims after the first. */
int tr_check_array(const Trainer *t, const char *flag, const char *path, const NpyArray *a, const TrainTensor *want,
                       const char *what)
{
    bool ok = a->dtype == (RtDType)want->dtype && a->rank == want->rank && a->rank >= 1;
    for (int i = 1; ok && i < a->rank; i++)
        ok = a->dims[i] == (size_t)want->dims[i];
    if (ok)
        return 0;
    char got[160], exp[160];
    size_t dims[RT_MAX_RANK];
    for (int i = 0; i < a->rank && i < RT_MAX_RANK; i++)
        dims[i] = a->dims[i];
    return tr_fail(t, "%s %s is %s %s, but the model wants %s %s (%s)", flag, path, rt_dtype_name(a->dtype),
                tr_shape_text(got, sizeof got, a->rank, dims, NULL), rt_dtype_name((RtDType)want->dtype),
                tr_shape_text(exp, sizeof exp, want->rank, NULL, want->dims), what);
}

/* ---- parameters ---- */

const TrainParam *tr_find_param(const TrainProgram *p, const char *name)
{
    for (int i = 0; i < p->nparams; i++)
        if (strcmp(p->params[i].name, name) == 0)
            return &p->params[i];
    return NULL;
}

int tr_apply_inits(const Trainer *t, unsigned char *params)
{
    const TrainProgram *p = t->p;
    char err[1024], got[160], want[160];
    if ((t->o.lora_from || t->o.export_adapters) && !p->nlora) {
        fprintf(stderr, "%s: %s: the program has no LoRA adapters (compile with --lora GLOB)\n", t->prog,
                t->o.lora_from ? "--lora-from" : "--export-adapters");
        return 2;
    }
    int rc = tr_lora_from(t, params);   /* first: --init may replace one of them */
    if (rc)
        return rc;
    for (size_t k = 0; k < t->o.ninits; k++) {
        const InitArg *ia = &t->o.inits[k];
        const TrainParam *tp = tr_find_param(p, ia->name);
        if (!tp || tp->kind == TRAIN_PARAM_STATE) {
            const char *example = NULL;
            for (int i = 0; i < p->nparams && !example; i++)
                if (p->params[i].kind == TRAIN_PARAM_TRAINABLE)
                    example = p->params[i].name;
            return tr_fail(t, "--init %s: the program has no initializer of that name%s%s%s", ia->name,
                        example ? " (trainable ones are named like '" : "", example ? example : "", example ? "')" : "");
        }
        NpyArray a;
        if (npy_read(ia->path, &a, err, sizeof err) != NPY_OK)
            return tr_fail(t, "--init %s: %s", ia->name, err);
        /* a transposed weight is given in PyTorch's layout [out, in]: the reverse of the stored dims */
        bool tr = tp->transposed && tp->rank == 2;
        bool ok = a.dtype == (RtDType)tp->dtype && a.rank == tp->rank;
        for (int i = 0; ok && i < a.rank; i++)
            ok = a.dims[i] == (size_t)tp->dims[tr ? 1 - i : i];
        if (!ok) {
            size_t dims[RT_MAX_RANK], wd[RT_MAX_RANK];
            for (int i = 0; i < a.rank && i < RT_MAX_RANK; i++)
                dims[i] = a.dims[i];
            for (int i = 0; i < tp->rank; i++)
                wd[i] = (size_t)tp->dims[tr ? 1 - i : i];
            rc = tr_fail(t, "--init %s: %s is %s %s, but '%s' is %s %s%s", ia->name, ia->path, rt_dtype_name(a.dtype),
                          tr_shape_text(got, sizeof got, a.rank, dims, NULL), tp->name, rt_dtype_name((RtDType)tp->dtype),
                          tr_shape_text(want, sizeof want, tp->rank, wd, NULL),
                          tr ? " (PyTorch's layout [out, in]; the model stores it transposed)" : "");
            npy_free(&a);
            return rc;
        }
        if (tr) {   /* [out, in] -> [in, out] */
            size_t rows = a.dims[0], cols = a.dims[1], es = rows && cols ? tp->nbytes / (rows * cols) : 1;
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cols; c++)
                    memcpy(params + tp->offset + (c * rows + r) * es, (const unsigned char *)a.data + (r * cols + c) * es,
                           es);
        } else {
            memcpy(params + tp->offset, a.data, tp->nbytes);
        }
        npy_free(&a);
    }
    return 0;
}

/* The template with the current weights and the metadata, written atomically (common.h's atomic_write). */
static void copy_release(unsigned char *dst, const unsigned char *src, size_t n);

int tr_export_model(const Trainer *t, const unsigned char *params, const char *path)
{
    const TrainProgram *p = t->p;
    unsigned char *buf = malloc(p->export_bytes ? p->export_bytes : 1);
    if (!buf)
        return tr_fail(t, "out of memory exporting");
    copy_release(buf, p->export_template, p->export_bytes);
    for (int i = 0; i < p->nparams; i++) {
        const TrainParam *tp = &p->params[i];
        if (tp->export_offset >= 0 && tp->kind != TRAIN_PARAM_STATE)
            memcpy(buf + tp->export_offset, params + tp->offset, tp->nbytes);
    }
    tr_lora_merge(p, params, buf);
    unsigned char *meta, *grown;    /* metadata_props (class names, preprocessing) follow the template */
    size_t meta_len, total = p->export_bytes;
    if (tr_export_metadata(t, &meta, &meta_len)) {
        free(buf);
        return 1;
    }
    if (meta_len && !(grown = realloc(buf, total + meta_len))) {
        free(meta);
        free(buf);
        return tr_fail(t, "out of memory exporting");
    }
    if (meta_len) {
        buf = grown;
        memcpy(buf + total, meta, meta_len);
        total += meta_len;
    }
    free(meta);
    char msg[1024];
    FileStatus fs = atomic_write(path, buf, total, msg, sizeof msg);
    free(buf);
    if (fs != FILE_OK)
        return tr_fail(t, "--export %s: %s", path, msg);
    return 0;
}

/* ---- the learning-rate schedule (tests/ref/README.md) ---- */

/* lr of optimizer step t (from 0) of T, S steps per epoch: L * w(t) * s(t) with the linear warmup
 * w(t) = (t+1)/W for t < W, and s = 1 (constant), G^floor(floor(t/S)/E) (step:E,G), or
 * 0.5 * (1 + cos(pi * (t-W) / (T-W))) after the warmup (cosine). */
double tr_lr_at(const Options *o, int64_t t, int64_t total, int64_t per_epoch)
{
    double w = o->warmup > 0 && t < o->warmup ? (double)(t + 1) / (double)o->warmup : 1.0, s = 1.0;
    if (o->schedule == SCHED_STEP)
        s = pow(o->step_gamma, (double)((t / per_epoch) / o->step_epochs));
    else if (o->schedule == SCHED_COSINE && t >= o->warmup && total > o->warmup)
        s = 0.5 * (1.0 + cos(M_PI * (double)(t - o->warmup) / (double)(total - o->warmup)));
    return o->lr * w * s;
}

/* ---- running the generated functions ---- */

static void *slot_pointer(const TrainProgram *p, Buffers *b, const TrainSlot *s)
{
    switch (s->kind) {
    case TRAIN_IN_X: return p->nx > 1 && s->param >= 0 && s->param < p->nx ? b->xs[s->param] : b->x;
    case TRAIN_IN_TARGET: return b->y;
    case TRAIN_IN_LR: return &b->lr;
    case TRAIN_IN_STEP: return &b->step;
    case TRAIN_IN_SEED: return b->seed;
    default: return NULL;
    }
}

int tr_bind(const Trainer *t, Buffers *b, const TrainGraph *g, void ***in, void ***out, void **ws)
{
    *in = calloc((size_t)g->ninputs + 1, sizeof **in);
    *out = calloc((size_t)g->noutputs + 1, sizeof **out);
    bool given = *ws != NULL;   /* a workspace to share (tr_bind_graphs) */
    if (!given)
        *ws = g->workspace_bytes ? aligned_alloc(64, (g->workspace_bytes + 63) / 64 * 64) : NULL;
    if (!*in || !*out || (g->workspace_bytes && !*ws))
        return tr_fail(t, "out of memory (workspace of %zu bytes)", g->workspace_bytes);
    if (*ws && !given)
        memset(*ws, 0, g->workspace_bytes);
    for (int i = 0; i < g->ninputs; i++) {
        const TrainSlot *s = &g->inputs[i];
        (*in)[i] = s->kind == TRAIN_IN_PARAM ? (void *)(b->params + t->p->params[s->param].offset) : slot_pointer(t->p, b, s);
    }
    for (int i = 0; i < g->noutputs; i++)
        (*out)[i] = g->outputs[i] == TRAIN_OUT_LOGITS ? (void *)b->logits
                  : g->outputs[i] == TRAIN_OUT_LOSS ? (void *)&b->loss
                  : (void *)&b->grad_norm;
    return 0;
}

/* Evaluation never runs between a step's run and update (the only time the training workspace holds
 * something, the gradients), so the evaluation graph works in the training graph's workspace when it
 * fits: the peak memory is the larger of the two, not their sum. */
int tr_bind_graphs(const Trainer *t, Buffers *b)
{
    int rc = tr_bind(t, b, &t->p->train, &b->in_train, &b->out_train, &b->ws_train);
    if (!rc && t->p->eval.workspace_bytes <= t->p->train.workspace_bytes)
        b->ws_eval = b->ws_train;
    return rc ? rc : tr_bind(t, b, &t->p->eval, &b->in_eval, &b->out_eval, &b->ws_eval);
}

void tr_unbind_graphs(Buffers *b)
{
    free(b->in_train);
    free(b->out_train);
    free(b->in_eval);
    free(b->out_eval);
    if (b->ws_eval != b->ws_train)
        free(b->ws_eval);
    free(b->ws_train);
    b->in_train = b->out_train = b->in_eval = b->out_eval = NULL;
    b->ws_train = b->ws_eval = NULL;
}

/* Correct predictions among the first rows of the batch (cross_entropy only: argmax = label). */
size_t tr_count_correct(const Trainer *t, const Buffers *b, size_t rows)
{
    const TrainProgram *p = t->p;
    size_t c = (size_t)p->logits.dims[1], ok = 0;
    const int64_t *y = (const int64_t *)b->y;
    for (size_t r = 0; r < rows; r++) {
        const float *z = b->logits + r * c;
        size_t best = 0;
        for (size_t k = 1; k < c; k++)
            if (z[k] > z[best])
                best = k;
        ok += (int64_t)best == y[r];
    }
    return ok;
}

double tr_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- trainer_main ---- */

/* The initial parameters are read-only data of the program, read once into the parameter buffer: let the
 * kernel drop those pages (they are the file's, read again if ever touched), so a large model does not
 * count its weights twice in the peak memory. */
/* Drop the whole pages inside [data, data + n) of the program's read-only data. */
static void release_pages(const void *data, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || n < (size_t)page * 16)
        return;
    uintptr_t lo = ((uintptr_t)data + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t hi = ((uintptr_t)data + n) / (uintptr_t)page * (uintptr_t)page;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void tr_release_init(const TrainProgram *p)
{
    release_pages(p->init, p->params_bytes);
}

/* memcpy from the program's read-only data, dropping its pages as it goes: a copy of a large export
 * template costs its size once, not twice. */
static void copy_release(unsigned char *dst, const unsigned char *src, size_t n)
{
    const size_t chunk = (size_t)8 << 20;
    for (size_t at = 0; at < n; at += chunk) {
        size_t len = n - at < chunk ? n - at : chunk;
        memcpy(dst + at, src + at, len);
        release_pages(src + at, len);
    }
}

int trainer_main(int argc, char **argv, const TrainProgram *p)
{
    Trainer t = {.p = p, .whole = p, .prog = argc > 0 ? argv[0] : "PROG", .argc = argc, .argv = argv};
    Options *o = &t.o;
    o->epochs = 10;
    o->batch = p->batch;
    o->lr = p->optimizer == TRAIN_OPTIM_SGD ? 0.01 : 0.001;
    o->shuffle = true;
    o->feature_cache_mb = -1;
    /* PROG eval ... / PROG predict ...: trainer_eval.c; PROG features ...: trainer_features.c */
    int mode = argc > 1 && strcmp(argv[1], "eval") == 0 ? 1 : argc > 1 && strcmp(argv[1], "predict") == 0 ? 2
             : argc > 1 && strcmp(argv[1], "features") == 0 ? 3 : 0;
    int rc = parse_args(&t, p->ndefaults, p->defaults, true);
    if (rc < 0)
        rc = parse_args(&t, argc - 1 - (mode > 0), (const char *const *)argv + 1 + (mode > 0), false);
    if (rc >= 0)
        goto out_options;
    if (o->threads > 0)
        rt_set_threads((int)o->threads);

    Data tr = {0}, val = {0};
    Buffers b = {0};
    rc = mode ? 0 : tr_data_open(&t, &tr, &val);
    if (rc)
        goto out;
    size_t batch = (size_t)p->batch;
    b.params = aligned_alloc(64, (p->params_bytes + 63) / 64 * 64 + 64);
    size_t xrow = tr_tensor_row_bytes(&p->x);     /* X, or the features when they are cached */
    if (p->prefix.at && p->prefix.sample_bytes > xrow)
        xrow = p->prefix.sample_bytes;
    b.x = malloc(batch * xrow + 1);
    b.y = malloc(batch * tr_tensor_row_bytes(&p->target) + 1);
    b.logits = malloc(batch * tr_tensor_row_bytes(&p->logits) + 1);
    bool xs_ok = true;
    for (int k = 0; p->nx > 1 && k < p->nx; k++)   /* several inputs: each its own [B, ...] (tr_unpack_x) */
        xs_ok = xs_ok && (b.xs[k] = aligned_alloc(64, (batch * tr_tensor_row_bytes(&p->xs[k].t) + 63) / 64 * 64));
    if (!b.params || !b.x || !b.y || !b.logits || !xs_ok) {
        rc = tr_fail(&t, "out of memory (parameters: %zu bytes)", p->params_bytes);
        goto out;
    }
    copy_release(b.params, p->init, p->params_bytes);
    tr_release_init(p);
    if ((rc = tr_apply_inits(&t, b.params)) || (rc = tr_bind_graphs(&t, &b)) || (rc = tr_features_use(&t, &b)))
        goto out;
    if (mode) {
        rc = mode == 3 ? tr_features_main(&t, &b) : tr_eval_main(&t, mode, &b);
        goto out;
    }
    rc = tr_run(&t, &tr, &val, &b);
    tr_data_report(&t, &tr, &val);
out:
    tr_data_free(&val);     /* first: it may share the training set */
    tr_data_free(&tr);
    free(b.params);
    free(b.x);
    for (int k = 0; k < TRAIN_MAX_INPUTS; k++)
        free(b.xs[k]);
    tr_features_free_buffers(&b);
    free(b.y);
    free(b.logits);
    tr_unbind_graphs(&b);
out_options:
    for (size_t i = 0; i < o->ninits; i++)
        free(o->inits[i].name);
    return rc;
}
