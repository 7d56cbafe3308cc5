/* trainer_priv.h - what the files of the generic trainer (runtime/trainer*.c) share: the options, the
 * Trainer, a split of data, the batch buffers, and trainer.c's helpers. Not part of runtime.h: generated
 * programs only call trainer_main. */
#ifndef ONNXTUNE_TRAINER_PRIV_H
#define ONNXTUNE_TRAINER_PRIV_H

#include "runtime.h"

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

typedef struct Options {
    const char *train_x, *train_y, *val_x, *val_y, *metrics, *export_path;
    double val_split;
    int64_t epochs, batch, seed, warmup, threads;
    double lr;
    bool shuffle, drop_last, quiet;
    int schedule;
    int64_t step_epochs;
    double step_gamma;
    InitArg inits[256];
    size_t ninits;
} Options;

/* One command-line option: trainer.c's table and each topic file's (TrainerTopic). */
typedef struct OptSpec {
    const char *name;
    const char *arg;    /* value placeholder; NULL for a flag */
    const char *help;
} OptSpec;

typedef struct Trainer {
    const TrainProgram *p;
    const char *prog;
    Options o;
} Trainer;

/* A topic file's options: specs (ended by a NULL name) and apply(t, name, value or NULL for a flag)
 * returning 0 or the exit status of a usage error (2). trainer.c's topics[] lists them. */
typedef struct TrainerTopic {
    const OptSpec *specs;
    int (*apply)(Trainer *t, const char *name, const char *v);
} TrainerTopic;

typedef struct Data {
    NpyArray x, y;
    size_t n;               /* samples */
    size_t *rows;           /* the samples this split uses (indices into x, y), n of them */
    bool owns_rows;
} Data;

typedef struct Buffers {
    unsigned char *x, *y;           /* one batch: [B, ...] */
    float *logits, loss, grad_norm;
    double lr;
    int64_t step, seed[2];
    void **in_train, **out_train, **in_eval, **out_eval;
    void *ws_train, *ws_eval;
    unsigned char *params;
} Buffers;

typedef struct EvalResult {
    double loss, accuracy;
    bool finite;
} EvalResult;

/* ---- trainer.c's helpers (see their comments there) ---- */

int tr_fail(const Trainer *t, const char *fmt, ...) TRAINER_PRINTF(2, 3);
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
int tr_load_split(const Trainer *t, const char *xflag, const char *xpath, const char *yflag, const char *ypath,
                  Data *d);
void tr_data_free(Data *d);
int tr_split_off(const Trainer *t, Data *train, Data *val);
const TrainParam *tr_find_param(const TrainProgram *p, const char *name);
int tr_apply_inits(const Trainer *t, unsigned char *params);
int tr_export_model(const Trainer *t, const unsigned char *params, const char *path);
double tr_lr_at(const Options *o, int64_t t, int64_t total, int64_t per_epoch);
int tr_bind(const Trainer *t, Buffers *b, const TrainGraph *g, void ***in, void ***out, void **ws);
void tr_gather(const Trainer *t, Buffers *b, const Data *d, const size_t *idx, size_t rows);
size_t tr_count_correct(const Trainer *t, const Buffers *b, size_t rows);
EvalResult tr_evaluate(const Trainer *t, Buffers *b, const Data *d, size_t batch);
const char *tr_shortest(char *buf, size_t size, double v, bool is_float);
double tr_seconds(void);

/* trainer_run.c: everything after the data and parameters are ready (b->params holds the initial
 * weights, --init applied): the training (with its metrics, checkpoints, progress and plot), the export
 * and the summary. Returns the exit status: 0, 1 (failed or a NaN/Inf stop), 130/143 (SIGINT/SIGTERM,
 * after writing a checkpoint). */
int tr_run(Trainer *t, Data *tr, Data *val, Buffers *b);

#endif
