/* program.h - the public header of program/: what a generated program is besides its kernels. The
 * inference main (infer_main), and the training program's generic half (trainer_main): options,
 * checkpoints, the progress bar, the SVG plot, evaluation, cross-validation and early stopping.
 * Generated code defines the model's parts (the tables below) and calls one of the two mains. */
#ifndef ONNXTUNE_PROGRAM_H
#define ONNXTUNE_PROGRAM_H

#include "data.h"
#include "kernels.h"

/* ======================================================================== program/infer_main.c */

/* A generated file defines, for its PREFIX (a C identifier):
 *   void PREFIX_run(void *const *inputs, void *const *outputs, void *workspace);
 *   const CgModelInfo PREFIX_info;
 * inputs[i] / outputs[i] are dense C-order buffers of the i-th runtime input / graph output (shapes
 * and dtypes in PREFIX_info); workspace is workspace_bytes, 64-byte aligned (NULL when 0). A run
 * never allocates and never fails. onnxtune reads PREFIX_info of shared objects with dlsym. */
typedef struct CgTensorInfo {
    const char *name;
    int dtype;                  /* ONNX's TensorProto.DataType (= DType = RtDType) */
    int rank;
    int64_t dims[8];
    int batch_axis;             /* the dim that grows with the batch (-1: none) */
    int64_t batch_scale;        /* its size per batch item */
    int kind;                   /* 0 a tensor; 1 a sequence, 2 an optional: one buffer of `bytes` (ir/ops_seq.c
                                   lays it out; the inference main refuses them) */
    size_t bytes;               /* kind 1, 2 */
} CgTensorInfo;

typedef struct CgModelInfo {
    const char *model;
    int64_t batch;              /* the compiled batch (0: the model has no batch dim) */
    int ninputs;
    int noutputs;
    const CgTensorInfo *inputs;
    const CgTensorInfo *outputs;
    size_t workspace_bytes;
    const char *no_chunk;       /* why inputs of another batch cannot run in chunks of `batch` (NULL: they can) */
    int threads;                /* the default thread count (0: the runtime's) */
    void (*run)(void *const *inputs, void *const *outputs, void *workspace);
} CgModelInfo;

/* The inference program's main: PROG --input NAME=FILE.npy ... --output-dir DIR [--threads N].
 * Returns the exit status (0 ran, 1 failed, 2 usage). */
int infer_main(int argc, char **argv, const CgModelInfo *m);

/* ======================================================================== program/checkpoint.c */

/* Checkpoints: a header (magic, format version, the writer's fingerprint and description) and named
 * sections, each with its length and CRC32 (common.h's crc32_update). ckpt_write replaces PATH with
 * common.h's atomic write (PATH.tmp.PID in PATH's directory, fsync, rename, fsync of the directory), so
 * PATH is always absent, the old checkpoint or the new one.
 * ckpt_read validates everything (truncation, CRCs, magic, version, fingerprint) before returning.
 * Section data is stored as given, in host byte order (little-endian hosts only). Like npy.c these can
 * fail: a CkptStatus and a one-line message naming the file in err[errlen] (err may be NULL). */
typedef enum {
    CKPT_OK = 0,
    CKPT_EIO,           /* open/read/write/fsync/rename failed (errno text in the message) */
    CKPT_EFORMAT,       /* not a checkpoint, truncated, a CRC mismatch, a malformed section */
    CKPT_EVERSION,      /* a checkpoint of another format version */
    CKPT_EMISMATCH,     /* written by another model or compiled program: the fingerprints differ */
    CKPT_EMISSING,      /* ckpt_get: no such section, or one of another size */
    CKPT_EINVAL,        /* ckpt_write: an empty, too long or duplicate section name; too many sections */
    CKPT_ENOMEM,        /* allocation failed */
} CkptStatus;

#define CKPT_VERSION 1
#define CKPT_MAX_NAME 255           /* bytes of a section name */
#define CKPT_MAX_SECTIONS 65536
#define CKPT_MAX_DESCRIPTION 4096   /* bytes of the writer's description */

typedef struct CkptSection {
    const char *name;           /* unique, 1..CKPT_MAX_NAME bytes */
    const void *data;           /* size bytes (NULL when size is 0) */
    size_t size;
} CkptSection;

/* Who wrote a checkpoint. The fingerprint decides whether a program may resume from it; the description
 * (e.g. "mlp.onnx compiled with --head linear:10") only makes the refusal readable. */
typedef struct CkptIdentity {
    uint64_t fingerprint;
    const char *description;    /* may be NULL */
} CkptIdentity;

CkptStatus ckpt_write(const char *path, const CkptIdentity *id, const CkptSection *sections, size_t count,
                      char *err, size_t errlen);

typedef struct Checkpoint {
    CkptIdentity id;            /* as written (description owned) */
    size_t count;
    CkptSection *sections;      /* in file order; data points into buf_, 8-byte aligned */
    char *path_;                /* private: for messages */
    void *buf_;                 /* private: the whole file */
} Checkpoint;

/* Read and validate path. expect: the reading program's identity, refused (CKPT_EMISMATCH, naming both
 * descriptions and fingerprints) when the fingerprints differ; NULL accepts any writer. */
CkptStatus ckpt_read(const char *path, const CkptIdentity *expect, Checkpoint *out, char *err, size_t errlen);
/* The same from a checkpoint image in memory (copied; name is used in messages). For tests and fuzzing. */
CkptStatus ckpt_parse(const void *data, size_t len, const char *name, const CkptIdentity *expect, Checkpoint *out,
                      char *err, size_t errlen);
const CkptSection *ckpt_find(const Checkpoint *c, const char *name);   /* NULL: no such section */
/* Copy section name into dst[size]; CKPT_EMISSING when it is absent or not exactly size bytes. */
CkptStatus ckpt_get(const Checkpoint *c, const char *name, void *dst, size_t size, char *err, size_t errlen);
void ckpt_free(Checkpoint *c);     /* safe on a zeroed or failed Checkpoint */
const char *ckpt_status_name(CkptStatus st);

/* FNV-1a 64: ckpt_hash64(CKPT_HASH_INIT, ...), chainable, for fingerprints. */
#define CKPT_HASH_INIT 0xcbf29ce484222325ull
uint64_t ckpt_hash64(uint64_t h, const void *data, size_t n);
/* A training program's fingerprint: its loss, optimizer (and momentum buffer), X/target/logits types and
 * dims without the batch, every parameter table row (name, kind, dtype, shape, size, offset) and a CRC of
 * the initial parameter buffer. The compiled batch is left out: it does not change the buffers. */
struct TrainProgram;
uint64_t ckpt_program_fingerprint(const struct TrainProgram *p);
/* The identity every checkpoint of a training program carries and every reader of one expects (train's
 * --checkpoint/--resume, eval/predict --checkpoint): ckpt_program_fingerprint hashed with the compiled
 * batch, and the description "MODEL compiled with 'OPTIONS' for batch B" written into desc[size]
 * (the identity points at it). */
CkptIdentity ckpt_program_identity(const struct TrainProgram *p, char *desc, size_t size);

/* SIGINT/SIGTERM for "finish the step, write a checkpoint, exit with a message on how to resume".
 * install: the first signal sets a flag (and writes message, if any, to stderr at once); a second
 * SIGINT or SIGTERM before restore exits at once with status 128 + signal (a checkpoint being written
 * then is abandoned: its temporary is removed by the next write, the previous checkpoint stays).
 * pending: the first signal's number, 0 if none; the trainer polls it after each step. restore puts the
 * previous handlers back and clears the flag. message must stay valid while installed. */
void stop_signal_install(const char *message);
int stop_signal_pending(void);
void stop_signal_restore(void);

/* ======================================================================== program/progress.c */

/* What a training run shows. On a terminal (PROGRESS_AUTO: stdout is a tty and TERM is not "dumb") one
 * bar line redrawn in place with CR, at most once per redraw_interval:
 *   epoch 2/10 [#######.......] 150/300 loss 0.4321 1234.5 samples/s ETA 0:01:23
 * otherwise plain lines "epoch 2/10 step 150/300 loss ... ETA ..." every log_interval seconds and/or
 * every log_every steps. Both print one line per epoch and a summary. loss is the running mean of the
 * epoch (weighted by samples), samples/s the epoch's, ETA the run's mean time per step (validation
 * included) times the steps left. Tests inject the clock and force the mode. */
typedef enum { PROGRESS_AUTO = 0, PROGRESS_TTY, PROGRESS_PLAIN } ProgressMode;

typedef struct Progress {
    FILE *out;                  /* NULL: silent (still counts) */
    bool tty;                   /* bar mode */
    int width;                  /* bar mode: terminal columns (TIOCGWINSZ, else 80) */
    double redraw_interval;     /* bar mode: seconds between redraws (0.1) */
    double log_interval;        /* plain mode: seconds between step lines (30; <= 0: never by time) */
    int64_t log_every;          /* plain mode: also a step line every this many steps (0: never) */
    double (*clock)(void *ctx); /* seconds, monotonic; NULL: CLOCK_MONOTONIC */
    void *clock_ctx;
    int64_t epochs, steps_per_epoch;    /* of the run; 0: unknown (no bar, no ETA) */
    /* state, read-only for callers */
    int64_t epoch, step;        /* current epoch (from 1); steps done in it, resumed ones included */
    int64_t run_steps, epochs_done;     /* by this process */
    bool in_epoch;              /* begun and not yet ended */
    size_t run_samples, epoch_samples;
    double loss_sum, loss_weight;       /* this epoch: sum of loss * samples, sum of samples */
    double last_train_loss;     /* the last finished epoch's */
    double t_run, t_epoch, t_step, t_shown, train_time;
    size_t shown;               /* bar mode: characters on screen */
} Progress;

/* Validation (or training) metrics of an epoch; NaN: not measured. Accuracies are fractions. */
typedef struct ProgressEval {
    double loss, accuracy, top5;
} ProgressEval;

typedef struct ProgressSummary {
    int64_t best_epoch;         /* 0: none */
    ProgressEval best;          /* its validation metrics */
    const char *monitor;        /* how "best" was chosen, e.g. "val loss"; NULL: not said */
    const char *stop_reason;    /* NULL: the run finished its epochs */
    const char *export_path, *checkpoint_path, *plot_path, *metrics_path;   /* NULL: not written */
    size_t peak_rss;            /* bytes; 0: measure (getrusage) */
} ProgressSummary;

/* out FILE (stdout usually); epochs and steps_per_epoch of the whole run. Set clock, intervals, width after. */
void progress_init(Progress *p, FILE *out, ProgressMode mode, int64_t epochs, int64_t steps_per_epoch);
/* steps_done: steps of this epoch already done (a resumed run), else 0. */
void progress_begin_epoch(Progress *p, int64_t epoch, int64_t steps_done);
void progress_step(Progress *p, double loss, size_t nsamples);
/* train: NULL, or the epoch's train accuracy/top-5 (a NaN loss means the running mean); val: NULL if none. */
void progress_end_epoch(Progress *p, const ProgressEval *train, const ProgressEval *val);
/* Bar mode: erase the bar so a message can be printed; the next step redraws it. */
void progress_clear(Progress *p);
/* Lines: totals and throughput, peak memory, the stop reason, the best epoch, where files went. */
void progress_summary(Progress *p, const ProgressSummary *s);
size_t progress_peak_rss(void);     /* bytes (getrusage ru_maxrss); 0 if unknown */

/* ======================================================================== program/plot.c */

/* `--plot FILE.svg`: two panels sharing an epoch axis, loss (train per step, its smoothed curve, val per
 * epoch) and accuracy (val and train per epoch), with 1-2-5 ticks and a legend. NaN/Inf points are
 * skipped (lines break there); empty, one-point and constant series draw. The history is what a
 * checkpoint keeps (plot_history_save/load) so a resumed run's plot continues. */
typedef struct PlotPoint {
    double x, y;                /* x: epoch position, epoch - 1 + step_in_epoch / steps_per_epoch */
} PlotPoint;
typedef struct PlotEpoch {
    double epoch;               /* its x: the epoch number */
    double train_loss, val_loss, train_accuracy, val_accuracy;  /* accuracies as fractions; NaN: none */
} PlotEpoch;
typedef struct PlotHistory {
    PlotPoint *steps;           /* training loss per step */
    size_t nsteps, cap_steps_;
    PlotEpoch *epochs;
    size_t nepochs, cap_epochs_;
} PlotHistory;

void plot_history_init(PlotHistory *h);
bool plot_history_add_step(PlotHistory *h, double epoch_pos, double loss);   /* false: out of memory */
bool plot_history_add_epoch(PlotHistory *h, const PlotEpoch *e);
void plot_history_free(PlotHistory *h);
/* A malloc'd blob for a checkpoint section (*len bytes), and back (false: malformed or out of memory). */
void *plot_history_save(const PlotHistory *h, size_t *len);
bool plot_history_load(PlotHistory *h, const void *data, size_t len);

/* The SVG document (malloc'd, *len bytes; NULL: out of memory); title is XML-escaped. */
char *plot_svg(const PlotHistory *h, const char *title, size_t *len);
/* plot_svg written atomically (common.h's atomic_write: a viewer never sees half a file). */
CkptStatus plot_write_svg(const char *path, const PlotHistory *h, const char *title, char *err, size_t errlen);

/* An axis for [lo, hi] with about `ticks` intervals: step is 1, 2 or 5 x 10^k, lo and hi are multiples
 * of it covering the data; a constant widens to +-10% (+-1 around 0); non-finite input gives [0, 1]. */
typedef struct PlotAxis {
    double lo, hi, step;
} PlotAxis;
PlotAxis plot_axis(double lo, double hi, int ticks);

/* ======================================================================== program/trainer.c */

/* The generic half of a training program. `onnxtune compile` (without --infer) generates the model's
 * parts (codegen/train_program.c): the step, update and evaluation functions, the parameter table, the
 * export template and the compile-time defaults, and a main() that calls trainer_main. trainer_main does
 * the rest: options, NPY data and its checks, shuffling, batching, the learning-rate schedule,
 * validation, metrics and export. */

typedef enum {
    TRAIN_LOSS_CROSS_ENTROPY = 0, TRAIN_LOSS_MSE, TRAIN_LOSS_L1, TRAIN_LOSS_BCE_WITH_LOGITS,
    TRAIN_LOSS_MODEL,           /* --loss model: the model's own SoftmaxCrossEntropyLoss/NegativeLogLikelihoodLoss */
} TrainLoss;
typedef enum { TRAIN_OPTIM_SGD = 0, TRAIN_OPTIM_ADAM, TRAIN_OPTIM_ADAMW } TrainOptim;

/* What lives in the program's parameter buffer (one mutable buffer, 64-byte aligned entries). */
typedef enum {
    TRAIN_PARAM_TRAINABLE = 0,  /* updated by the optimizer */
    TRAIN_PARAM_FROZEN,         /* a float initializer that does not train (replaceable with --init) */
    TRAIN_PARAM_BUFFER,         /* BatchNormalization running statistics the step updates (--bn-train) */
    TRAIN_PARAM_STATE,          /* optimizer state (momentum buffer, Adam moments): zero at the start */
} TrainParamKind;

typedef struct TrainParam {
    const char *name;           /* the initializer's name; "<param>.<state key>" for optimizer state */
    int kind;                   /* TrainParamKind */
    int dtype;                  /* RtDType */
    int rank;
    int64_t dims[RT_MAX_RANK];
    size_t nbytes;
    size_t offset;              /* in TrainProgram.init and in the parameter buffer */
    int64_t export_offset;      /* byte offset of its raw data in the export template; -1: not exported */
    bool transposed;            /* stored [in, out], the transpose of PyTorch's [out, in] (pass_torch_names):
                                   --init takes PyTorch's layout and transposes */
} TrainParam;

/* One runtime input of a generated function: what the trainer passes there. */
typedef enum { TRAIN_IN_X = 0, TRAIN_IN_TARGET, TRAIN_IN_LR, TRAIN_IN_STEP, TRAIN_IN_SEED, TRAIN_IN_PARAM } TrainInKind;
typedef struct TrainSlot {
    int kind;                   /* TrainInKind */
    int param;                  /* TRAIN_IN_PARAM: index into TrainProgram.params; TRAIN_IN_X: into .xs */
} TrainSlot;
typedef enum { TRAIN_OUT_LOGITS = 0, TRAIN_OUT_LOSS, TRAIN_OUT_GRAD_NORM, TRAIN_OUT_FEATURES } TrainOutKind;

/* A generated graph: inputs[i] / outputs[i] say what the i-th runtime input / output is. x: X's layout
 * [B, ...] (dtype, dims; dims[0] = B), target: the loss's target, lr: double [], step: int64 [] (1 at
 * the first step), seed: int64 [2] {seed, step} for Dropout; logits [B, ...], loss float [],
 * grad_norm float [] (the total gradient norm before clipping), features: TrainPrefix.features. */
typedef void (*TrainFn)(void *const *inputs, void *const *outputs, void *workspace);
typedef struct TrainGraph {
    TrainFn run;                /* training: forward, loss and backward; evaluation: forward and loss */
    TrainFn update;             /* training: gradient clipping and the optimizer update; NULL for evaluation */
    int ninputs, noutputs;
    const TrainSlot *inputs;
    const int *outputs;         /* TrainOutKind per output */
    size_t workspace_bytes;     /* shared by run and update: the gradients stay in it between the two */
} TrainGraph;

typedef struct TrainTensor {
    int dtype;                  /* RtDType */
    int rank;
    int64_t dims[RT_MAX_RANK];
} TrainTensor;

/* The frozen prefix (ir/prefix.c): the forward nodes that depend only on X and frozen parameters and
 * compute the same values on every pass, up to the one value they hand to the part that trains (the
 * features, e.g. a frozen backbone's [B, 512]). `run` computes a batch's features (X [B, ...] ->
 * [B, ...], run with rt_set_samples_apart; a sample's do not depend on the others in its batch or its
 * place there, tested by test_feature_cache), or one sample's when the compiler could not show that
 * (run_batch 1, ir/prefix.c's prefix_mixes_samples); `train` and `eval` are TrainProgram.train and .eval without the prefix, their
 * TRAIN_IN_X slot taking the features [B, ...]. A program with a prefix always trains and evaluates as
 * run (per batch) then the rest, so computing each sample's features once and reusing them
 * (program/trainer_features.c) gives the same bits as computing them every step. */
typedef struct TrainPrefix {
    const char *at;             /* the value where it ends; NULL: no prefix worth caching */
    TrainTensor features;       /* [B, ...] */
    size_t sample_bytes;        /* one sample's features */
    double flops;               /* the prefix's FLOPs per sample (the op table's estimates) */
    int64_t run_batch;          /* the batch `run` was compiled for: B, or 1 (one sample at a time) */
    TrainGraph run;             /* X [run_batch, ...] and parameters in, TRAIN_OUT_FEATURES [run_batch, ...] out */
    TrainGraph train, eval;     /* the rest */
    const char *note;           /* at NULL: why a frozen part cannot be cached (NULL: nothing to say) */
} TrainPrefix;

/* A data input of the model (input_ids, attention_mask, ...): what --train-x NAME=FILE.npy feeds. */
#define TRAIN_MAX_INPUTS 16
typedef struct TrainInput {
    const char *name;
    TrainTensor t;              /* [B, ...] */
    size_t offset;              /* of its row in a packed sample (TrainProgram.x) */
} TrainInput;

/* A LoRA adapter (ir/pass_lora.c): params[a] [r, in, k...] and params[b] [out, r, 1...] beside the frozen
 * params[weight]. The export merges them, W + scale * B A in PyTorch's [out, in, k...] layout (in_out: W is
 * stored [in, out], so the transpose is added). */
typedef struct TrainLora {
    int weight, a, b;           /* indices into TrainProgram.params */
    double scale;               /* alpha / r */
    bool in_out;
} TrainLora;

/* A tensor of the --export-adapters file: params[param] (every adapter and every other trainable
 * parameter, as peft saves the adapters with modules_to_save), its raw data at `offset` of the template,
 * in PyTorch's layout (a transposed parameter is transposed back). */
typedef struct TrainAdapterTensor {
    int param;
    size_t offset;
} TrainAdapterTensor;

typedef struct TrainProgram {
    const char *model;          /* the ONNX file it was compiled from (its base name) */
    const char *compiled_with;  /* the compile options, for --help */
    int64_t batch;              /* the compiled batch B: the largest training batch */
    TrainTensor x, target, logits;  /* x: the only data input; with several (nx > 1), a packed sample: uint8
                                       [B, bytes], each input's row at its offset (xs), in graph order */
    int nx;                     /* data inputs (1: x alone) */
    const TrainInput *xs;       /* [nx]; TRAIN_IN_X slots name theirs in TrainSlot.param */
    int loss;                   /* TrainLoss */
    int optimizer;              /* TrainOptim */
    double hyper[RT_HYPER_COUNT]; /* the compiled hyperparameters */
    bool momentum_buffer;       /* SGD compiled with momentum (so --momentum can change it, not switch it on) */
    bool clipping;              /* compiled with --grad-clip (so it can be changed, not switched on) */
    TrainGraph train, eval;
    int nparams;
    const TrainParam *params;
    const unsigned char *init;  /* initial contents of the parameter buffer, params_bytes long */
    bool has_init_crc;          /* init_crc is crc32 of init (compiled in, so the fingerprint need not read
                                   init again: trainer.c drops its pages once copied) */
    uint32_t init_crc;
    size_t params_bytes;
    const unsigned char *export_template; /* the fine-tuned model as ONNX with the initial weights */
    size_t export_bytes;
    int ndefaults;
    const char *const *defaults; /* compile-time defaults of the program's options, parsed before argv */
    TrainPrefix prefix;
    int nlora;                  /* LoRA adapters (0: none) */
    const TrainLora *lora;
    const unsigned char *adapters_template; /* ONNX: the adapters as initializers (graph outputs too) */
    size_t adapters_bytes;
    int nadapter_tensors;
    const TrainAdapterTensor *adapter_tensors;
} TrainProgram;

/* Everything but the model: returns the exit status (0 trained, 1 failed, 2 usage). */
int trainer_main(int argc, char **argv, const TrainProgram *p);

#endif
