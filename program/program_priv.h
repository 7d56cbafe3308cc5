/* program_priv.h - what the files of the generic trainer (program/trainer*.c) share: the options, the
 * Trainer, a split of data, the batch buffers, and trainer.c's helpers. Not part of program.h: generated
 * programs only call trainer_main. */
#ifndef ONNXTUNE_TRAINER_PRIV_H
#define ONNXTUNE_TRAINER_PRIV_H

#include "common.h"
#include "program.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define TRAINER_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TRAINER_PRINTF(f, a)
#endif

enum { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE };

typedef struct InitArg {
    char *name;         /* malloc'd "NAME=FILE" with the '=' replaced by NUL */
    const char *path;   /* into name's buffer */
} InitArg;

/* The values of a repeatable data option (--train-x, --val-x, --x): FILE, NAME=FILE or DATA.npz. */
typedef struct XList {
    const char *arg[TRAIN_MAX_INPUTS];
    size_t n;
} XList;

typedef struct Options {
    const char *train_x, *train_y, *val_x, *val_y, *metrics, *export_path;
    double val_split;
    int64_t epochs, batch, seed, warmup, threads;
    double lr;
    bool shuffle, drop_last, quiet;
    int schedule;
    int64_t step_epochs;
    double step_gamma;
    XList train_xl, val_xl, xl;     /* every --train-x, --val-x, --x (train_x, val_x, x: the last) */
    InitArg inits[256];
    size_t ninits;
    const char *export_adapters, *lora_from;    /* program/lora.c */
    /* trainer_run.c: checkpoints, resuming, the plot, plain progress lines, early stopping */
    const char *checkpoint, *resume, *plot;
    int64_t checkpoint_every, log_every, patience, max_steps;  /* 0: none */
    double min_delta;
    bool monitor_accuracy;
    /* trainer_select.c: --cv K over the lists of --lr and --weight-decay (nlrs/nwds 0: not lists) */
    int64_t cv_folds;
    double lrs[64], wds[64];
    size_t nlrs, nwds;
    /* trainer_data.c: image folders, their preprocessing, array options */
    const char *train_dir, *val_dir, *classes;  /* --classes "a,b,...": class names of array data */
    int64_t resize, crop_h, crop_w;             /* 0: not given */
    double mean[3], std[3];
    int nmean, nstd;                            /* values given (1 or C); 0: the defaults */
    bool augment_flip, augment_crop, mmap, no_prefetch, no_cache;
    /* trainer_eval.c: PROG eval / PROG predict */
    const char *x, *y, *dir, *weights, *output, *output_labels, *output_list;
    bool confusion;
    /* trainer_features.c: --feature-cache auto|off|DIR (NULL: auto), --feature-cache-mb (-1: the default) */
    const char *feature_cache;
    int64_t feature_cache_mb;
} Options;

/* One command-line option: a row of program/options.def. TOPIC_*: who applies it (trainer.c calls
 * tr_<topic>_option of that file with the name and the value, NULL for a flag; each returns 0 or the
 * exit status of a usage error, 2). */
typedef enum { TOPIC_MAIN, TOPIC_RUN, TOPIC_SELECT, TOPIC_DATA, TOPIC_EVAL, TOPIC_FEATURES } OptTopic;
typedef struct OptSpec {
    const char *name;
    const char *arg;    /* value placeholder; NULL for a flag */
    const char *help;
    int topic;          /* OptTopic */
} OptSpec;

typedef struct Trainer {
    const TrainProgram *p;
    const char *prog;
    Options o;
    /* trainer_data.c: what the export's metadata_props name (set when the training data opens) */
    const char *const *class_names;     /* [nclasses]; NULL: none known */
    size_t nclasses;
    bool images;                        /* trained on an image folder: tf is its preprocessing */
    ImageTransform tf;
    int argc;                           /* the command line, for the resume command trainer_run.c prints */
    char **argv;
    const TrainProgram *whole;          /* the compiled program; p is it, or `rest` */
    TrainProgram rest;                  /* trainer_features.c: the program without its frozen prefix, whose X
                                           is the features (p points here when the program has a prefix) */
} Trainer;

/* A split (training or validation) of a data set: trainer_data.c opens, loads and frees it. */
typedef struct Data {
    Dataset *ds;            /* the samples (NPY pair, .npz, image folder) */
    bool owns_ds;           /* false for views (--val-split's validation, CV folds): ds, x_only and cache
                               stay the owner's */
    size_t n;               /* samples */
    size_t *rows;           /* the samples this split uses (indices into ds), n of them */
    bool owns_rows;
    char **names;           /* --classes parsed (owned; the training split's) */
    size_t nnames;
    NpyArray x_only;        /* predict --x X.npy without targets: ds is NULL */
    const unsigned char *mem_x, *mem_y;     /* samples in memory ([N, ...] as the model wants them): x_only,
                                               or the decoded images (cache); mem_y NULL: zero targets */
    void *cache;            /* owned: the decoded images and their labels */
    bool no_y;              /* predict on several inputs without targets: zero targets */
    Prefetcher *pf;         /* loads the batches of a pass ahead (tr_pass_begin / tr_next_batch) */
    const size_t *pass_order;
    size_t pass_n, pass_batch, pass_at;
    bool features;              /* mem_x and mem_y hold the samples' features and targets (trainer_features.c) */
    unsigned char *feat_base;   /* owned: the cached features and targets (mem_x, mem_y point here) */
    void *feat_map;             /* their file's mapping (NULL: feat_base is malloc'd) */
    size_t feat_map_len;
} Data;

typedef struct Buffers {
    unsigned char *x, *y;           /* one batch: [B, ...] (x: X's, or the features' with a prefix) */
    unsigned char *xs[TRAIN_MAX_INPUTS];  /* several data inputs: x is packed samples, these each input's
                                             [B, ...] the generated functions read (tr_unpack_x) */
    /* trainer_features.c, programs with a prefix: X batches [B, ...] (when the features are computed per
     * batch) and one FeatureWorker (the prefix's output and workspace, nfw == 1) */
    unsigned char *xin;
    struct FeatureWorker *fw;
    int nfw;
    float *logits, loss, grad_norm;
    double lr;
    int64_t step, seed[2];
    void **in_train, **out_train, **in_eval, **out_eval;
    void *ws_train, *ws_eval;
    unsigned char *params;
} Buffers;

typedef struct EvalResult {
    double loss, accuracy;
    double top5;            /* NaN unless cross_entropy with at least 5 classes */
    bool finite;
    int rc;                 /* 0, or 1 when loading a batch failed (said on stderr) */
} EvalResult;

/* ---- trainer.c's helpers (see their comments there) ---- */

int tr_fail(const Trainer *t, const char *fmt, ...) TRAINER_PRINTF(2, 3);
/* One more value of --train-x/--val-x/--x into l: 0, or 2 (too many). */
int tr_add_x(const Trainer *t, XList *l, const char *flag, const char *v);
uint64_t tr_splitmix64(uint64_t *state);
void tr_shuffle(size_t *order, size_t n, uint64_t state);
const char *tr_loss_name(int loss);
const char *tr_optim_name(int o);
bool tr_parse_f64(const char *s, double *out);
bool tr_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
size_t tr_tensor_row_bytes(const TrainTensor *t);
const char *tr_shape_text(char *buf, size_t size, int rank, const size_t *dims, const int64_t *model_dims);
int tr_check_array(const Trainer *t, const char *flag, const char *path, const NpyArray *a, const TrainTensor *want,
                   const char *what);
const TrainParam *tr_find_param(const TrainProgram *p, const char *name);
int tr_apply_inits(const Trainer *t, unsigned char *params);
int tr_export_model(const Trainer *t, const unsigned char *params, const char *path);

/* ---- lora.c: LoRA adapters (TrainProgram.lora) ---- */

/* Add scale * B A to each adapted weight in export_buf (a copy of the export template with the weights). */
void tr_lora_merge(const TrainProgram *p, const unsigned char *params, unsigned char *export_buf);
/* B = 0 for every adapter: the weights loaded from a merged export already hold B A. */
void tr_lora_reset(const TrainProgram *p, unsigned char *params);
/* --export-adapters PATH: the adapters template with the current A and B, written atomically. */
int tr_lora_export(const Trainer *t, const unsigned char *params, const char *path);
/* --lora-from: A and B from the file (names, dtypes and shapes must be this program's); 0 without it. */
int tr_lora_from(const Trainer *t, unsigned char *params);
/* The same from an adapters file in memory, buf[len] (path names it in messages); for the fuzzer too. */
int tr_lora_parse(const Trainer *t, const char *path, const unsigned char *buf, size_t len, unsigned char *params);
double tr_lr_at(const Options *o, int64_t t, int64_t total, int64_t per_epoch);
int tr_bind(const Trainer *t, Buffers *b, const TrainGraph *g, void ***in, void ***out, void **ws);
/* Bind the train and eval graphs of t->p (eval in the training workspace when it fits); and release them. */
/* Let the kernel drop the pages of the program's initial parameters (read again if touched): after they
 * are copied into the parameter buffer, and after a fingerprint has read them. */
void tr_release_init(const TrainProgram *p);
int tr_bind_graphs(const Trainer *t, Buffers *b);
void tr_unbind_graphs(Buffers *b);
size_t tr_count_correct(const Trainer *t, const Buffers *b, size_t rows);
double tr_seconds(void);

/* ---- trainer_data.c: the data ---- */

int tr_data_option(Trainer *t, const char *name, const char *v);
/* Open the training split (and the validation split, from --val-x/--val-y, --val-dir or --val-split) as
 * the options say, checked against the model (dtypes, shapes, labels); sets t->class_names/images/tf.
 * Returns 0 or the exit status (1: bad data, 2: bad options); either way free both with tr_data_free. */
int tr_data_open(Trainer *t, Data *train, Data *val);
/* PROG eval / predict's data: --x/--y, --x DATA.npz or --dir (need_y false: X alone will do). */
int tr_data_open_eval(Trainer *t, Data *d, bool need_y);
void tr_data_free(Data *d);
/* The --val-split view: a seeded random ceil(F * N) samples of train validate, the rest train. */
int tr_split_off(const Trainer *t, Data *train, Data *val);
/* Rows idx[0..rows) of a split into b->x, b->y; padding rows (up to the compiled batch) repeat the first.
 * Returns 0 or 1 (a load failure, said on stderr). */
/* Several data inputs: the packed rows of b->x into each input's buffer b->xs[k] (tr_gather and
 * tr_next_batch call it once a batch is loaded). */
void tr_unpack_x(const Trainer *t, Buffers *b);
int tr_gather(const Trainer *t, Buffers *b, const Data *d, const size_t *idx, size_t rows);
/* A pass over order[0..n) in batches of `batch` rows (the last short) loaded ahead on another thread
 * (unless --no-prefetch): tr_pass_begin starts it (abandoning an unfinished one; epoch keys the
 * augmentation), each tr_next_batch puts the next batch in b->x, b->y (padded as tr_gather) and its row
 * count in *rows. Both return 0 or 1 (a load failure, said on stderr). */
int tr_pass_begin(const Trainer *t, Data *d, const size_t *order, size_t n, size_t batch, int64_t epoch);
int tr_next_batch(const Trainer *t, Buffers *b, Data *d, size_t *rows);
/* Images skipped as unreadable so far (0 for arrays); a warning line when there are any. */
size_t tr_data_skipped(const Data *d);
void tr_data_report(const Trainer *t, const Data *train, const Data *val);

/* ---- trainer_eval.c: evaluation, PROG eval / predict, the export's metadata ---- */

int tr_eval_option(Trainer *t, const char *name, const char *v);
/* The split's loss, accuracy and top-5 at the current weights (eval graph), loaded through the split's
 * prefetcher. confusion: NULL, or K*K counts to fill (row = label, column = argmax; zeroed first). */
EvalResult tr_evaluate(const Trainer *t, Buffers *b, Data *d, size_t batch);
EvalResult tr_evaluate_confusion(const Trainer *t, Buffers *b, Data *d, size_t batch, size_t *confusion);
/* --confusion at the end of a run: the matrix of the validation split printed and appended to the
 * metrics file as {"split":"val","samples":N,"confusion":[[...]],"classes":[...]} (rows: the true
 * class; no "loss" key, so it is not one more epoch's line). Returns 0 or 1. */
int tr_confusion_report(const Trainer *t, Buffers *b, Data *val);
/* `PROG eval` (mode 1) and `PROG predict` (mode 2), after the options are parsed; b bound, b->params the
 * compiled weights with --init applied; --weights (an export) or --checkpoint (trainer_run.c's "params"
 * section, identity from ckpt_program_identity) replace them. Returns the exit status. */
int tr_eval_main(Trainer *t, int mode, Buffers *b);
/* The metadata_props fields appended to the export (class names, preprocessing): malloc'd protobuf bytes
 * in *out (NULL, *len 0 when there are none). Returns 0 or 1 (out of memory). */
int tr_export_metadata(const Trainer *t, unsigned char **out, size_t *len);
/* --weights: an export of this program in memory into params (see trainer_eval.c); for the fuzzer too. */
int tr_parse_export_weights(const Trainer *t, const char *path, const unsigned char *buf, size_t len,
                            unsigned char *params, char ***names, size_t *nnames, char **preprocess);

/* trainer_run.c: everything after the data and parameters are ready (b->params holds the initial
 * weights, --init applied): the training (with its metrics, checkpoints, progress and plot), the export
 * and the summary. Returns the exit status: 0, 1 (failed or a NaN/Inf stop), 130/143 (SIGINT/SIGTERM,
 * after writing a checkpoint). */
int tr_run(Trainer *t, Data *tr, Data *val, Buffers *b);
int tr_run_option(Trainer *t, const char *name, const char *v);

/* trainer_select.c: --cv K; --lr and --weight-decay with a list of values (trainer.c hands each --lr and
 * --weight-decay here first: returns -1 for a single value, which trainer.c then takes, else 0 or 2). */
int tr_select_option(Trainer *t, const char *name, const char *v);
int tr_select_list(Trainer *t, const char *name, const char *v);
/* --cv K: K-fold cross-validation of every --lr x --weight-decay combination from the weights in
 * b->params (restored there afterwards), a table, then t->o.lr and the weight decay set to the best mean
 * validation score. Returns 0 or the exit status. */
int tr_select(Trainer *t, Data *tr, Buffers *b);
/* trainer_run.c for tr_select: the epochs of one fold from b->params as they are, fresh optimizer steps,
 * nothing written or shown. *score: the validation result after the last epoch (the best epoch's with
 * --early-stop). Returns 0, 1 (failed, said on stderr), 2 (the loss diverged at step *nan_step) or
 * 128 + the signal that stopped it. */
int tr_fit_fold(Trainer *t, Data *tr, Data *val, Buffers *b, EvalResult *score, int64_t *nan_step);

/* trainer_features.c: the feature cache and PROG features. prepare (tr_run calls it once the weights are
 * those training starts from): when the program has a frozen prefix and the cache is not off, the
 * features and targets of every training and validation sample in memory or mapped files (d->mem_x,
 * mem_y), t->p switched to the program without the prefix and b bound to its graphs; else a note when
 * it says why not. Returns 0 or 1. tr_features_free: tr_data_free's part. tr_features_main: PROG
 * features --x X.npy | --dir DIR --output F.npy; the exit status. */
int tr_features_option(Trainer *t, const char *name, const char *v);
int tr_features_prepare(Trainer *t, Data *tr, Data *val, Buffers *b, const char *ckpt);
/* trainer.c, once b is bound to the whole program: with a prefix, t->p becomes t->rest and b gets the
 * prefix's buffers. Returns 0 or 1. tr_features_batch: the features of rows [0, rows) of b->xin into b->x,
 * one run of the prefix over the padded batch, padding rows repeating row 0's features (tr_gather and
 * tr_next_batch call it when d holds X and t->p is the rest). */
int tr_features_use(Trainer *t, Buffers *b);
void tr_features_free_buffers(Buffers *b);
int tr_features_batch(const Trainer *t, Buffers *b, size_t rows);
void tr_features_free(Data *d);
int tr_features_main(Trainer *t, Buffers *b);

#endif
