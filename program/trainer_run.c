/* trainer_run.c - the run of trainer_main once data and parameters are ready: epochs of shuffled batches,
 * the NaN/Inf stop, validation, metrics, the best epoch and early stopping, checkpoints and resuming,
 * SIGINT/SIGTERM, the progress display, the plot, the export and the summary. The data, parameters and
 * generated functions come ready from trainer.c and trainer_data.c; this file decides what runs when.
 *
 * A checkpoint (program/checkpoint.c, written atomically) holds the sections
 *   params   the whole parameter buffer: weights, BatchNormalization buffers, optimizer state
 *   run      CkptRun below: the position (epoch, batches done in it, optimizer steps), the epoch's running
 *            sums, the best epoch and its score, the early-stopping count, the metrics file's length
 *   order    this epoch's data order (the shuffled permutation; the cursor is run.done * batch)
 *   history  the plot's history (program/plot.c)
 *   best     the best epoch's parameter buffer (with --early-stop only)
 * There is no other random state: shuffles are seeded per epoch (seed * 2^20 + epoch) and dropout masks
 * per step ({seed, step}), so the position and the seed decide everything that follows. */
#define _POSIX_C_SOURCE 200809L
#include "program_priv.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- options ---- */

int tr_run_option(Trainer *t, const char *name, const char *v)
{
    Options *o = &t->o;
#define IS(s) (strcmp(name, s) == 0)
#define BAD_VALUE(what) (fprintf(stderr, "%s: %s wants %s, not '%s'\n", t->prog, name, what, v), 2)
    if (IS("--checkpoint"))
        o->checkpoint = v;
    else if (IS("--resume"))
        o->resume = v;
    else if (IS("--plot"))
        o->plot = v;
    else if (IS("--checkpoint-every") || IS("--log-every") || IS("--max-steps") || IS("--early-stop")) {
        int64_t *dst = IS("--checkpoint-every") ? &o->checkpoint_every : IS("--log-every") ? &o->log_every
                     : IS("--max-steps") ? &o->max_steps : &o->patience;
        if (!tr_parse_i64(v, 1, INT64_MAX, dst))
            return BAD_VALUE(IS("--early-stop") ? "a number of epochs >= 1" : "a number of steps >= 1");
    } else if (IS("--min-delta")) {
        if (!tr_parse_f64(v, &o->min_delta) || o->min_delta < 0)
            return BAD_VALUE("a number >= 0");
    } else if (IS("--monitor")) {
        if (strcmp(v, "loss") != 0 && strcmp(v, "accuracy") != 0)
            return BAD_VALUE("loss or accuracy");
        o->monitor_accuracy = strcmp(v, "accuracy") == 0;
    } else {
        return 2;
    }
    return 0;
#undef IS
#undef BAD_VALUE
}

/* ---- the state of a run ---- */

/* The "run" section: 8-byte fields only (no padding); version first. */
typedef struct CkptRun {
    int64_t version;
    int64_t epoch, done, step, closed;                  /* position: see Run */
    int64_t samples, batch, drop_last, shuffle, seed;   /* what the data order depends on */
    int64_t epoch_rows, correct;
    int64_t best_epoch, bad_epochs, stopped, monitor_accuracy;
    int64_t metrics_bytes;                              /* the metrics file's length; -1: none */
    int64_t selected;                                   /* lr and weight_decay were chosen by --cv */
    double epoch_loss, best_score, best_loss, best_accuracy, best_top5, lr, weight_decay;
} CkptRun;
#define CKPT_RUN_VERSION 1

enum { STOP_NONE = 0, STOP_MAX_STEPS = -1 };    /* else the signal's number */

typedef struct Run {
    Trainer *t;
    const TrainProgram *p;
    const Options *o;
    Data *tr, *val;
    Buffers *b;
    bool fold;                  /* a cross-validation fold: nothing written or shown */
    size_t batch, n;
    int64_t per_epoch, total;
    /* position: epoch (from 1; 0 before the first), batches of it done, optimizer steps of the run; closed:
     * the epoch's validation and bookkeeping are done */
    int64_t epoch, done, step;
    bool closed;
    size_t *order;              /* this epoch's data order */
    double epoch_loss;          /* sum of loss * rows this epoch */
    size_t epoch_rows, correct;
    /* the best epoch by the monitored validation score */
    int64_t best_epoch, bad_epochs;
    double best_score;
    ProgressEval best, last;    /* the best epoch's validation, the last one's */
    bool stopped;               /* early stopping ended the run */
    unsigned char *best_params; /* --early-stop: the best epoch's parameter buffer */
    unsigned char *saved;       /* BatchNormalization buffers before the step (restored on a NaN stop) */
    int64_t nan_step;           /* the step whose loss was not finite; 0: none */
    bool bad_weights;           /* the weights turned non-finite: neither saved nor exported */
    int stop;                   /* STOP_*, or the signal */
    bool selected;              /* lr / weight decay from --cv */
    PlotHistory hist;
    Progress prog;
    FILE *metrics;
    Buf line;                   /* the metrics line being built (reused: no allocation per step) */
    const char *ckpt;           /* where checkpoints go; NULL: nowhere */
    int64_t ckpt_step;          /* the step of the last checkpoint written; -1: none */
    char desc[512];
    CkptIdentity id;
} Run;

static bool is_ce(const Run *r)
{
    return r->p->loss == TRAIN_LOSS_CROSS_ENTROPY;
}

static void copy_buffers(const Run *r, unsigned char *dst, const unsigned char *src)
{
    for (int k = 0; k < r->p->nparams; k++)
        if (r->p->params[k].kind == TRAIN_PARAM_BUFFER)
            memcpy(dst + r->p->params[k].offset, src + r->p->params[k].offset, r->p->params[k].nbytes);
}

static bool weights_finite(const Run *r)
{
    for (int k = 0; k < r->p->nparams; k++) {
        const TrainParam *tp = &r->p->params[k];
        if (tp->dtype != RT_FLOAT)
            continue;
        const float *w = (const float *)(r->b->params + tp->offset);
        for (size_t i = 0; i < tp->nbytes / sizeof *w; i++)
            if (!isfinite(w[i]))
                return false;
    }
    return true;
}

static double weight_decay_now(const Run *r)
{
    return rt_hyper(RT_HYPER_WEIGHT_DECAY, r->p->hyper[RT_HYPER_WEIGHT_DECAY]);
}

/* Messages on stderr while a bar may be drawn on stdout: erase it first. */
static void say(Run *r, const char *fmt, ...) TRAINER_PRINTF(2, 3);
static void say(Run *r, const char *fmt, ...)
{
    if (r->fold)
        return;
    progress_clear(&r->prog);
    fflush(stdout);
    va_list ap;
    fprintf(stderr, "%s: ", r->t->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- checkpoints ---- */

/* The metrics file's length once everything written so far is in it. */
static int64_t metrics_length(Run *r)
{
    struct stat sb;
    if (!r->metrics || fflush(r->metrics) != 0 || fstat(fileno(r->metrics), &sb) != 0)
        return -1;
    return (int64_t)sb.st_size;
}

/* Write the state to r->ckpt; returns 0 or 1 (said). Weights that are no longer finite are never saved:
 * the last good checkpoint stays. */
static int save(Run *r)
{
    if (!r->ckpt || r->fold)
        return 0;
    if (!weights_finite(r)) {
        r->bad_weights = true;
        if (r->ckpt_step >= 0)
            say(r, "the weights are not finite after step %lld: training stopped; %s keeps step %lld", (long long)r->step,
                r->ckpt, (long long)r->ckpt_step);
        else
            say(r, "the weights are not finite after step %lld: training stopped; no checkpoint was written",
                (long long)r->step);
        return 1;
    }
    CkptRun cr = {
        .version = CKPT_RUN_VERSION, .epoch = r->epoch, .done = r->done, .step = r->step, .closed = r->closed,
        .samples = (int64_t)r->n, .batch = (int64_t)r->batch, .drop_last = r->o->drop_last, .shuffle = r->o->shuffle,
        .seed = r->o->seed, .epoch_rows = (int64_t)r->epoch_rows, .correct = (int64_t)r->correct,
        .best_epoch = r->best_epoch, .bad_epochs = r->bad_epochs, .stopped = r->stopped,
        .monitor_accuracy = r->o->monitor_accuracy, .metrics_bytes = metrics_length(r), .selected = r->selected,
        .epoch_loss = r->epoch_loss, .best_score = r->best_score, .best_loss = r->best.loss,
        .best_accuracy = r->best.accuracy, .best_top5 = r->best.top5, .lr = r->o->lr,
        .weight_decay = weight_decay_now(r),
    };
    uint64_t *order = malloc((r->n ? r->n : 1) * sizeof *order);
    size_t hlen = 0;
    void *hist = plot_history_save(&r->hist, &hlen);
    if (!order || !hist) {
        free(order);
        free(hist);
        say(r, "out of memory writing the checkpoint");
        return 1;
    }
    for (size_t i = 0; i < r->n; i++)
        order[i] = r->order[i];
    CkptSection s[5] = {
        {"params", r->b->params, r->p->params_bytes},
        {"run", &cr, sizeof cr},
        {"order", order, r->n * sizeof *order},
        {"history", hist, hlen},
        {"best", r->best_params, r->p->params_bytes},
    };
    size_t count = r->best_params && r->best_epoch > 0 ? 5 : 4;
    char err[1024];
    CkptStatus st = ckpt_write(r->ckpt, &r->id, s, count, err, sizeof err);
    free(order);
    free(hist);
    if (st != CKPT_OK) {
        say(r, "cannot save the checkpoint: %s", err);
        return 1;
    }
    r->ckpt_step = r->step;
    return 0;
}

/* --resume: the state saved in path, checked against this run. Returns 0 or 1 (said). */
static int load(Run *r, const char *path, CkptRun *cr)
{
    const TrainProgram *p = r->p;
    Checkpoint c;
    char err[2048];
    if (ckpt_read(path, &r->id, &c, err, sizeof err) != CKPT_OK)
        return tr_fail(r->t, "--resume %s", err);
    int rc = 1;
    if (ckpt_get(&c, "run", cr, sizeof *cr, err, sizeof err) != CKPT_OK || cr->version != CKPT_RUN_VERSION) {
        tr_fail(r->t, "--resume %s: not a checkpoint of this trainer's layout (%s)", path,
                cr->version != CKPT_RUN_VERSION ? "another run-state version" : err);
        goto out;
    }
    if (cr->samples != (int64_t)r->n || cr->batch != (int64_t)r->batch || !cr->drop_last != !r->o->drop_last ||
        !cr->shuffle != !r->o->shuffle || cr->seed != r->o->seed) {
        tr_fail(r->t, "--resume %s: the run saved there trained on %lld samples with --batch %lld --seed %lld%s%s; "
                "this one has %zu samples with --batch %zu --seed %lld%s%s: resuming needs the same data and options "
                "that decide its order", path, (long long)cr->samples, (long long)cr->batch, (long long)cr->seed,
                cr->shuffle ? "" : " --no-shuffle", cr->drop_last ? " --drop-last" : "", r->n, r->batch,
                (long long)r->o->seed, r->o->shuffle ? "" : " --no-shuffle", r->o->drop_last ? " --drop-last" : "");
        goto out;
    }
    if (cr->epoch < 0 || cr->done < 0 || cr->done > r->per_epoch || cr->step < 0 || (cr->epoch == 0 && !cr->closed)) {
        tr_fail(r->t, "--resume %s: its position (epoch %lld, batch %lld) does not fit this run's %lld batches per "
                "epoch", path, (long long)cr->epoch, (long long)cr->done, (long long)r->per_epoch);
        goto out;
    }
    uint64_t *order = malloc((r->n ? r->n : 1) * sizeof *order);
    if (!order) {
        tr_fail(r->t, "out of memory");
        goto out;
    }
    if (ckpt_get(&c, "params", r->b->params, p->params_bytes, err, sizeof err) != CKPT_OK ||
        ckpt_get(&c, "order", order, r->n * sizeof *order, err, sizeof err) != CKPT_OK) {
        free(order);
        tr_fail(r->t, "--resume %s", err);
        goto out;
    }
    /* the order holds this run's rows, each once */
    size_t max_row = 0;
    for (size_t i = 0; i < r->n; i++)
        max_row = r->tr->rows[i] > max_row ? r->tr->rows[i] : max_row;
    unsigned char *seen = calloc(max_row + 1, 1);
    bool ok = seen != NULL;
    for (size_t i = 0; ok && i < r->n; i++)
        ok = order[i] <= max_row && !seen[order[i]]++;
    for (size_t i = 0; ok && i < r->n; i++)
        ok = seen[r->tr->rows[i]];
    free(seen);
    for (size_t i = 0; i < r->n; i++)
        r->order[i] = (size_t)order[i];
    free(order);
    if (!ok) {
        tr_fail(r->t, "--resume %s: its data order is not a permutation of this run's training samples", path);
        goto out;
    }
    const CkptSection *h = ckpt_find(&c, "history");
    if (h && !plot_history_load(&r->hist, h->data, h->size)) {
        tr_fail(r->t, "--resume %s: its plot history is malformed", path);
        goto out;
    }
    r->epoch = cr->epoch;
    r->done = cr->done;
    r->step = cr->step;
    r->closed = cr->closed != 0;
    r->epoch_loss = cr->epoch_loss;
    r->epoch_rows = (size_t)cr->epoch_rows;
    r->correct = (size_t)cr->correct;
    r->stopped = cr->stopped != 0;
    r->best_epoch = cr->best_epoch;
    r->bad_epochs = cr->bad_epochs;
    r->best_score = cr->best_score;
    r->best = (ProgressEval){cr->best_loss, cr->best_accuracy, cr->best_top5};
    if (!cr->monitor_accuracy != !r->o->monitor_accuracy && r->best_epoch > 0) {
        say(r, "warning: the checkpoint's best epoch was chosen by val %s: counting afresh by val %s",
            cr->monitor_accuracy ? "accuracy" : "loss", r->o->monitor_accuracy ? "accuracy" : "loss");
        r->best_epoch = r->bad_epochs = 0;
    }
    if (r->best_params && r->best_epoch > 0 &&
        ckpt_get(&c, "best", r->best_params, p->params_bytes, err, sizeof err) != CKPT_OK) {
        say(r, "warning: %s keeps no best weights (its run had no --early-stop): the best epoch counts from here",
            path);
        r->best_epoch = r->bad_epochs = 0;
    }
    if (cr->selected) {     /* --cv chose these: a resumed run keeps them */
        r->t->o.lr = cr->lr;
        rt_set_hyper(RT_HYPER_WEIGHT_DECAY, cr->weight_decay);
        r->selected = true;
    }
    rc = 0;
out:
    ckpt_free(&c);
    return rc;
}

/* Where checkpoints go: --checkpoint; else the --resume file; else (for --checkpoint-every, or an
 * interruption) next to the export or the metrics (their path + ".ckpt"), else PROG.ckpt in the current
 * folder. */
static const char *default_ckpt(const Run *r, char *buf, size_t size)
{
    const Options *o = r->o;
    if (o->export_path || o->metrics) {
        snprintf(buf, size, "%s.ckpt", o->export_path ? o->export_path : o->metrics);
    } else {
        const char *base = strrchr(r->t->prog, '/');
        snprintf(buf, size, "%s.ckpt", base ? base + 1 : r->t->prog);
        /* `onnxtune train` runs us as "onnxtune train": no space in a file name a shell user must type */
        for (char *c = buf; *c; c++)
            if (*c == ' ')
                *c = '-';
    }
    return buf;
}

/* A word for a POSIX shell: as is when it is safe, else in single quotes. */
static void put_word(FILE *f, const char *s)
{
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

/* "resume with: COMMAND --resume FILE": the command line without --resume and --max-steps. The command is
 * PROG's, or the one `onnxtune train` was given (it puts it in $ONNXTUNE_COMMAND, a word a line). */
static void print_resume(const Run *r, FILE *f)
{
    const Trainer *t = r->t;
    char *words[1024], *copy = NULL;
    int n = 0;
    const char *env = getenv("ONNXTUNE_COMMAND");
    if (env && *env && (copy = strdup(env)))
        for (char *w = strtok(copy, "\n"); w && n < 1024; w = strtok(NULL, "\n"))
            words[n++] = w;
    char *const *argv = n ? words : t->argv;
    int argc = n ? n : t->argc;
    fprintf(f, "resume with: ");
    put_word(f, argc > 0 ? argv[0] : t->prog);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool resume = strcmp(a, "--resume") == 0, max = strcmp(a, "--max-steps") == 0;
        if (resume || max) {
            i++;
            continue;
        }
        if (strncmp(a, "--resume=", 9) == 0 || strncmp(a, "--max-steps=", 12) == 0)
            continue;
        fputc(' ', f);
        put_word(f, a);
    }
    fprintf(f, " --resume ");
    put_word(f, r->ckpt);
    fputc('\n', f);
    free(copy);
}

/* ---- the epochs ---- */

/* r->line, a JSON object begun by the caller, closed and written as one line of the metrics file
 * (common.h's writer: a non-finite number is null). */
static void metrics_line(Run *r)
{
    buf_puts(&r->line, "}\n");
    if (!r->line.oom)
        fwrite(r->line.p, 1, r->line.len, r->metrics);
    buf_clear(&r->line);
}

static void metrics_step(Run *r)
{
    if (!r->metrics)
        return;
    Buf *line = &r->line;
    buf_printf(line, "{\"epoch\":%lld,\"step\":%lld,\"loss\":", (long long)r->epoch, (long long)r->step);
    json_put_number(line, r->b->loss, true);
    buf_puts(line, ",\"lr\":");
    json_put_number(line, r->b->lr, false);
    if (r->p->clipping) {  /* the total gradient norm before clipping */
        buf_puts(line, ",\"grad_norm\":");
        json_put_number(line, r->b->grad_norm, true);
    }
    metrics_line(r);
}

/* One optimizer step on the batch in r->b. Returns 0, or 1 when the loss is not finite (the weights and
 * buffers stay those before the step). */
static int one_step(Run *r, size_t rows)
{
    const TrainProgram *p = r->p;
    Buffers *b = r->b;
    b->lr = tr_lr_at(r->o, r->step, r->total, r->per_epoch);
    b->step = ++r->step;
    b->seed[0] = r->o->seed;
    b->seed[1] = r->step;
    if (r->saved)   /* the step updates BatchNormalization running statistics before its loss is known */
        copy_buffers(r, r->saved, b->params);
    rt_set_batch_rows(rows);
    p->train.run(b->in_train, b->out_train, b->ws_train);
    if (!isfinite(b->loss)) {
        if (r->saved)
            copy_buffers(r, b->params, r->saved);
        r->nan_step = r->step;
        return 1;
    }
    p->train.update(b->in_train, b->out_train, b->ws_train);
    r->done++;
    r->epoch_loss += (double)b->loss * (double)rows;
    r->epoch_rows += rows;
    if (is_ce(r))
        r->correct += tr_count_correct(r->t, b, rows);
    metrics_step(r);
    if (!r->fold) {
        plot_history_add_step(&r->hist, (double)(r->epoch - 1) + (double)r->done / (double)r->per_epoch, b->loss);
        progress_step(&r->prog, b->loss, rows);
    }
    return 0;
}

static void begin_epoch(Run *r)
{
    r->epoch++;
    r->done = 0;
    r->closed = false;
    r->epoch_loss = 0;
    r->epoch_rows = r->correct = 0;
    memcpy(r->order, r->tr->rows, r->n * sizeof *r->order);
    if (r->o->shuffle)
        tr_shuffle(r->order, r->n, ((uint64_t)r->o->seed << 20) + (uint64_t)r->epoch);
}

/* The monitored score of a validation: better is lower for loss, higher for accuracy. */
static bool better(const Run *r, double score)
{
    if (!isfinite(score))
        return false;
    if (r->best_epoch == 0)
        return true;
    return r->o->monitor_accuracy ? score > r->best_score + r->o->min_delta : score < r->best_score - r->o->min_delta;
}

/* Validation, the epoch's line, the best epoch and early stopping, the plot, a checkpoint. Returns 0 or 1. */
static int end_epoch(Run *r)
{
    const Options *o = r->o;
    bool ce = is_ce(r), has_val = r->val->n > 0;
    ProgressEval train = {r->epoch_rows ? r->epoch_loss / (double)r->epoch_rows : NAN,
                          ce && r->epoch_rows ? (double)r->correct / (double)r->epoch_rows : NAN, NAN};
    ProgressEval val = {NAN, NAN, NAN};
    if (has_val) {
        EvalResult e = tr_evaluate(r->t, r->b, r->val, r->batch);
        if (e.rc)
            return 1;
        val = (ProgressEval){e.loss, ce ? e.accuracy : NAN, ce ? e.top5 : NAN};
        r->last = val;
        if (r->metrics) {   /* a loss that is not finite (the weights still are) is null */
            Buf *line = &r->line;
            buf_printf(line, "{\"epoch\":%lld,\"split\":\"val\",\"loss\":", (long long)r->epoch);
            json_put_g(line, e.loss, 9);
            if (ce) {
                buf_puts(line, ",\"accuracy\":");
                json_put_g(line, e.accuracy, 9);
            }
            if (ce && isfinite(e.top5)) {
                buf_puts(line, ",\"top5\":");
                json_put_g(line, e.top5, 9);
            }
            buf_printf(line, ",\"samples\":%zu", r->val->n);
            metrics_line(r);
        }
        double score = o->monitor_accuracy ? val.accuracy : val.loss;
        if (better(r, score)) {
            r->best_epoch = r->epoch;
            r->best_score = score;
            r->best = val;
            r->bad_epochs = 0;
            if (r->best_params)
                memcpy(r->best_params, r->b->params, r->p->params_bytes);
        } else {
            r->bad_epochs++;
            r->stopped = o->patience > 0 && r->bad_epochs >= o->patience;
        }
    }
    r->closed = true;
    if (r->fold)
        return 0;
    progress_end_epoch(&r->prog, &train, has_val ? &val : NULL);
    PlotEpoch pe = {(double)r->epoch, train.loss, val.loss, train.accuracy, val.accuracy};
    plot_history_add_epoch(&r->hist, &pe);
    if (o->plot) {
        char err[1024], title[300];
        snprintf(title, sizeof title, "%s fine-tuning", r->p->model ? r->p->model : "model");
        if (plot_write_svg(o->plot, &r->hist, title, err, sizeof err) != CKPT_OK)
            say(r, "warning: --plot %s", err);
    }
    if (r->metrics)
        fflush(r->metrics);
    return save(r);
}

/* The epochs from the current position on. Returns 0 (done, or stopped by --max-steps or a signal: r->stop),
 * or 1 (a NaN/Inf loss: r->nan_step; or a failure, said). */
static int fit(Run *r)
{
    const Options *o = r->o;
    for (;;) {
        int sig = stop_signal_pending();
        bool at_max = !r->fold && o->max_steps && r->step >= o->max_steps;
        if (sig || (at_max && !(r->closed && r->epoch >= o->epochs))) {
            r->stop = sig ? sig : STOP_MAX_STEPS;
            return save(r);
        }
        if (r->closed) {
            if (r->stopped || r->epoch >= o->epochs)
                return 0;
            begin_epoch(r);
        }
        if (!r->fold)
            progress_begin_epoch(&r->prog, r->epoch, r->done);
        if (r->done < r->per_epoch) {
            size_t at = (size_t)r->done * r->batch;
            if (tr_pass_begin(r->t, r->tr, r->order + at, r->n - at, r->batch, r->epoch))
                return 1;
        }
        while (r->done < r->per_epoch) {
            size_t rows = 0;
            if (tr_next_batch(r->t, r->b, r->tr, &rows))
                return 1;
            if (one_step(r, rows))
                return 1;
            /* finish the epoch when this was its last batch; else stop here if asked */
            if (r->done < r->per_epoch) {
                if (stop_signal_pending() || (!r->fold && o->max_steps && r->step >= o->max_steps))
                    break;
                if (o->checkpoint_every && r->step % o->checkpoint_every == 0 && save(r))
                    return 1;
            }
        }
        if (r->done == r->per_epoch && end_epoch(r))
            return 1;
    }
}

static int run_init(Run *r, Trainer *t, Data *tr, Data *val, Buffers *b, bool fold)
{
    *r = (Run){.t = t, .p = t->p, .o = &t->o, .tr = tr, .val = val, .b = b, .fold = fold, .ckpt_step = -1,
               .closed = true};
    r->batch = (size_t)t->o.batch;
    r->n = tr->n;
    r->per_epoch = (int64_t)(t->o.drop_last ? r->n / r->batch : (r->n + r->batch - 1) / r->batch);
    if (r->per_epoch == 0)
        return tr_fail(t, "--drop-last with %zu training samples and batch %zu leaves no batch", r->n, r->batch);
    r->total = r->per_epoch * t->o.epochs;
    plot_history_init(&r->hist);
    progress_init(&r->prog, fold || t->o.quiet ? NULL : stdout, PROGRESS_AUTO, t->o.epochs, r->per_epoch);
    if (t->o.log_every)
        r->prog.log_every = t->o.log_every;
    r->id = ckpt_program_identity(r->p, r->desc, sizeof r->desc);
    tr_release_init(t->whole);
    bool any_buffer = false;
    for (int i = 0; i < r->p->nparams; i++)
        any_buffer |= r->p->params[i].kind == TRAIN_PARAM_BUFFER;
    size_t pbytes = r->p->params_bytes ? r->p->params_bytes : 1;
    r->order = malloc((r->n ? r->n : 1) * sizeof *r->order);
    r->saved = any_buffer ? malloc(pbytes) : NULL;
    r->best_params = t->o.patience > 0 ? malloc(pbytes) : NULL;
    if (!r->order || (any_buffer && !r->saved) || (t->o.patience > 0 && !r->best_params))
        return tr_fail(t, "out of memory");
    return 0;
}

static void run_free(Run *r)
{
    free(r->order);
    free(r->saved);
    free(r->best_params);
    plot_history_free(&r->hist);
    buf_free(&r->line);
}

int tr_fit_fold(Trainer *t, Data *tr, Data *val, Buffers *b, EvalResult *score, int64_t *nan_step)
{
    Run r;
    int rc = run_init(&r, t, tr, val, b, true);
    *nan_step = 0;
    if (!rc)
        rc = fit(&r);
    if (!rc && r.stop > 0)
        rc = 128 + r.stop;
    if (rc == 1 && r.nan_step) {
        *nan_step = r.nan_step;
        rc = 2;
    }
    if (!rc) {
        ProgressEval e = r.best_params && r.best_epoch > 0 ? r.best : r.last;
        *score = (EvalResult){.loss = e.loss, .accuracy = e.accuracy, .top5 = e.top5, .finite = isfinite(e.loss)};
    }
    run_free(&r);
    return rc;
}

/* Usage checks that need the data (2 when they fail). */
static int check_options(const Trainer *t, const Data *val)
{
    const Options *o = &t->o;
    const char *need_val = o->patience ? "--early-stop" : o->monitor_accuracy ? "--monitor accuracy" : NULL;
    if (need_val && val->n == 0 && !o->cv_folds) {
        fprintf(stderr, "%s: %s needs validation data (--val-x/--val-y, --val-dir or --val-split)\n", t->prog,
                need_val);
        return 2;
    }
    if (o->monitor_accuracy && t->p->loss != TRAIN_LOSS_CROSS_ENTROPY) {
        fprintf(stderr, "%s: --monitor accuracy needs a cross_entropy program (this one's loss is %s)\n", t->prog,
                tr_loss_name(t->p->loss));
        return 2;
    }
    if ((o->nlrs > 1 || o->nwds > 1) && !o->cv_folds) {
        fprintf(stderr, "%s: several values of --lr or --weight-decay are tried by cross-validation: add --cv K\n",
                t->prog);
        return 2;
    }
    return 0;
}

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

int tr_run(Trainer *t, Data *tr, Data *val, Buffers *b)
{
    const Options *o = &t->o;
    Run r;
    char ckpt_buf[4200];
    int rc = check_options(t, val);
    if (rc)
        return rc;
    if ((rc = run_init(&r, t, tr, val, b, false))) {
        run_free(&r);
        return rc;
    }
    r.ckpt = o->checkpoint ? o->checkpoint : o->resume ? o->resume
           : o->checkpoint_every ? default_ckpt(&r, ckpt_buf, sizeof ckpt_buf) : NULL;
    CkptRun cr = {0};
    if (o->resume && (rc = load(&r, o->resume, &cr)))
        goto out;
    /* the weights are now those training starts from: the frozen part's features can be computed (not for
     * a finished run, which only exports) */
    bool finished_run = o->resume && r.closed && (r.stopped || r.epoch >= o->epochs);
    if (!finished_run &&
        (rc = tr_features_prepare(t, tr, val, b, r.ckpt ? r.ckpt : default_ckpt(&r, ckpt_buf, sizeof ckpt_buf))))
        goto out;
    r.p = t->p;
    static char stop_message[600];
    snprintf(stop_message, sizeof stop_message, "\n%s: stopping after this step to save a checkpoint (again to quit "
             "at once)\n", t->prog);
    stop_signal_install(stop_message);
    if (o->cv_folds && !r.selected) {
        if ((rc = tr_select(t, tr, b)))
            goto out;
        r.selected = true;
    } else if (o->cv_folds && !o->quiet) {
        printf("%s: --cv: the checkpoint's selection stands (--lr %g --weight-decay %g)\n", t->prog, o->lr,
               weight_decay_now(&r));
    }
    if (o->metrics) {   /* a resumed run drops what was written after its checkpoint, then appends */
        struct stat sb;
        if (o->resume && cr.metrics_bytes >= 0 && stat(o->metrics, &sb) == 0) {
            if (sb.st_size >= cr.metrics_bytes && truncate(o->metrics, (off_t)cr.metrics_bytes) != 0)
                say(&r, "warning: --metrics %s: cannot cut it back to the checkpoint: %s", o->metrics, strerror(errno));
            else if (sb.st_size < cr.metrics_bytes)
                say(&r, "warning: --metrics %s is shorter than when the checkpoint was saved: appending", o->metrics);
        }
        if (!(r.metrics = fopen(o->metrics, o->resume ? "a" : "w"))) {
            rc = tr_fail(t, "--metrics %s: cannot write: %s", o->metrics, strerror(errno));
            goto out;
        }
    }
    if (!o->resume && o->checkpoint && access(o->checkpoint, F_OK) == 0)
        say(&r, "note: --checkpoint %s exists and will be replaced (--resume %s continues it)", o->checkpoint,
            o->checkpoint);
    if (!o->quiet) {
        printf("%s: training %s on %zu samples, batch %zu", t->prog, t->p->model ? t->p->model : "the model", r.n,
               r.batch);
        if (r.n % r.batch && !o->drop_last)
            printf(" (last %zu)", r.n % r.batch);
        printf(", %lld epochs = %lld steps, %s, lr %g%s", (long long)o->epochs, (long long)r.total,
               tr_optim_name(t->p->optimizer), o->lr,
               o->schedule == SCHED_COSINE ? " cosine" : o->schedule == SCHED_STEP ? " step" : "");
        if (val->n)
            printf("; validating on %zu", val->n);
        printf("\n");
        if (o->resume && r.closed && (r.stopped || r.epoch >= o->epochs))
            printf("%s: %s holds a finished run (%s after epoch %lld): nothing left to train\n", t->prog, o->resume,
                   r.stopped ? "stopped early" : "done", (long long)r.epoch);
        else if (o->resume)
            printf("%s: resuming %s at step %lld (epoch %lld, %s)\n", t->prog, o->resume, (long long)r.step,
                   (long long)(r.closed ? r.epoch + 1 : r.epoch),
                   r.closed ? "its start" : r.done == r.per_epoch ? "its validation" : "a batch into it");
        fflush(stdout);
    }
    rc = fit(&r);
    stop_signal_restore();
    if (r.metrics) {
        if (fclose(r.metrics) != 0 && !rc)
            rc = tr_fail(t, "--metrics %s: write failed", o->metrics);
        r.metrics = NULL;
    }
    if (o->plot && !r.fold) {
        char err[1024], title[300];
        snprintf(title, sizeof title, "%s fine-tuning", t->p->model ? t->p->model : "model");
        if (plot_write_svg(o->plot, &r.hist, title, err, sizeof err) != CKPT_OK)
            say(&r, "warning: --plot %s", err);
    }
    char reason[600] = "";
    if (r.nan_step) {
        say(&r, "the loss is %s at step %lld (epoch %lld, batch %lld of %lld): training stopped; the weights after step "
            "%lld are kept%s%s%s", isnan(b->loss) ? "NaN" : "infinite", (long long)r.nan_step, (long long)r.epoch,
            (long long)r.done + 1, (long long)r.per_epoch, (long long)r.nan_step - 1,
            o->export_path ? " and exported" : "", r.ckpt_step >= 0 ? "; the last checkpoint is " : "",
            r.ckpt_step >= 0 ? r.ckpt : "");
        snprintf(reason, sizeof reason, "the loss is not finite at step %lld", (long long)r.nan_step);
    }
    bool interrupted = r.stop != STOP_NONE;
    if (interrupted && !r.ckpt) {  /* nowhere asked: save next to the outputs */
        r.ckpt = default_ckpt(&r, ckpt_buf, sizeof ckpt_buf);
        if (save(&r))
            rc = 1;
    }
    if (r.bad_weights)
        snprintf(reason, sizeof reason, "the weights are not finite after step %lld", (long long)r.step);
    if (!rc && r.stopped)
        snprintf(reason, sizeof reason, "early stopping: no better val %s for %lld epochs",
                 o->monitor_accuracy ? "accuracy" : "loss", (long long)o->patience);
    if (interrupted && r.stop > 0)
        snprintf(reason, sizeof reason, "interrupted by %s after step %lld", signal_name(r.stop), (long long)r.step);
    else if (interrupted)
        snprintf(reason, sizeof reason, "--max-steps %lld reached", (long long)o->max_steps);
    bool finished = !interrupted && !r.bad_weights && (rc == 0 || r.nan_step);
    if (finished && r.best_params && r.best_epoch > 0 && (r.epoch != r.best_epoch || !r.closed)) {
        memcpy(b->params, r.best_params, t->p->params_bytes);
        if (!o->quiet)
            printf("%s: restored the weights of epoch %lld, the best by val %s\n", t->prog, (long long)r.best_epoch,
                   o->monitor_accuracy ? "accuracy" : "loss");
    }
    if (finished && rc == 0 && o->confusion && val->n)
        rc = tr_confusion_report(t, b, val);
    bool exported = false;
    if (finished && o->export_path) {
        int erc = tr_export_model(t, b->params, o->export_path);
        exported = erc == 0;
        rc = rc ? rc : erc;
    }
    bool adapters = false;
    if (finished && o->export_adapters) {
        int erc = tr_lora_export(t, b->params, o->export_adapters);
        adapters = erc == 0;
        rc = rc ? rc : erc;
    }
    ProgressSummary s = {
        .best_epoch = r.best_epoch, .best = r.best, .monitor = o->monitor_accuracy ? "val accuracy" : "val loss",
        .stop_reason = reason[0] ? reason : NULL, .export_path = exported ? o->export_path : NULL,
        .checkpoint_path = r.ckpt_step >= 0 ? r.ckpt : NULL, .plot_path = o->plot, .metrics_path = o->metrics,
    };
    progress_summary(&r.prog, &s);
    if (adapters && !o->quiet)
        printf("adapters: %s\n", o->export_adapters);
    if (interrupted && r.ckpt_step >= 0 && rc == 0) {
        FILE *f = r.stop > 0 ? stderr : stdout;
        if (r.stop > 0)
            fprintf(f, "%s: interrupted by %s: the state after step %lld is saved in %s\n", t->prog,
                    signal_name(r.stop), (long long)r.step, r.ckpt);
        print_resume(&r, f);
        fflush(f);
        rc = r.stop > 0 ? 128 + r.stop : 0;
    }
out:
    stop_signal_restore();
    if (r.metrics)
        fclose(r.metrics);
    run_free(&r);
    return rc;
}
