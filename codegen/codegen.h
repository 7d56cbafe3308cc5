/* codegen.h - the public face of codegen/: an inferred IR graph in, one specialised C file out, and
 * the C compiler driver that turns it into a program or a shared object linked with the runtime.
 *
 * Shapes are constants in the generated code; every intermediate lives at a planned offset of one
 * arena (ir/pass_memplan.c); kernels come from kernels/ (kernels.h), the programs' mains from program/. Codegen does not infer shapes
 * (ir/pass_shapes.c does). If/Loop/Scan bodies become static functions (codegen/emit_control.c).
 */
#ifndef ONNXTUNE_CODEGEN_H
#define ONNXTUNE_CODEGEN_H

#include "importer.h"
#include "ir.h"
#include "program.h"

#define ONNXTUNE_VERSION "0.1.0"

/* The generated code's interface (PREFIX_run, PREFIX_info: CgModelInfo) is declared in program.h. */

/* ======================================================================== codegen/emit.c */

/* Which dim of each runtime input and graph output is the batch dim (found by inferring shapes at
 * two batch sizes: codegen_batch_axes). All NULL/0: no chunking information. */
typedef struct BatchAxes {
    int64_t batch;              /* the compiled batch; 0 when no input has a batch dim */
    int *input_axis;            /* per runtime input (graph inputs without a default, in order) */
    int64_t *input_scale;
    int *output_axis;           /* per graph output */
    int64_t *output_scale;
    const char *no_chunk;       /* why another batch cannot be run in chunks (NULL: it can) */
} BatchAxes;

typedef struct CodegenOptions {
    const char *prefix;         /* C identifier prefix of PREFIX_run / PREFIX_info; NULL: "model" */
    const char *model_path;     /* named in comments and the info */
    bool emit_main;             /* also emit main(): the standalone program (program/infer_main.c) */
    /* Weights: with weights_path the blob is written there and .incbin'd by its basename (the C
     * compiler needs -Wa,-I<its folder>: codegen_cc does that); NULL: a C array in the file. */
    const char *weights_path;
    const BatchAxes *batch;     /* NULL: no chunking (exact shapes only) */
    int threads;                /* default thread count of the program (0: runtime default) */
    /* Bit (1u << Phase) per phase whose nodes are emitted; 0: every node. Generations of one graph with
     * different phases share its memory plan, hence one workspace: a training program runs the step
     * and, once its loss is known to be finite, the update (codegen/train_program.c). */
    unsigned phases;
} CodegenOptions;

/* What one generation produced, for reports. */
typedef struct CodegenStats {
    size_t nodes;               /* nodes emitted (views included) */
    size_t arena_bytes;         /* activation arena (the workspace) */
    size_t naive_bytes;         /* the arena without buffer reuse */
    size_t weights_bytes;       /* the weights blob */
} CodegenStats;

/* Emit the C file for graph g (nodes in execution order, every shape inferred and static) to out.
 * Errors name the node and op: an op without an emitter, an attribute value or dtype the emitter
 * does not handle (ST_UNSUPPORTED), a shape that is not static (ST_SHAPE). stats may be NULL. */
Status codegen_emit(Graph *g, const CodegenOptions *opt, FILE *out, CodegenStats *stats,
                    Diag *d) MUST_CHECK;

/* True if op_type (default domain) has an emitter. */
bool codegen_has_emitter(const char *op_type);
/* The same for an op of `domain` ("" or "ai.onnx": the default domain; "onnxtune": training ops). */
bool codegen_has_emitter_in(const char *domain, const char *op_type);
/* Iterate over the emitted op names: for (i = 0; (name = codegen_op_at(i)); i++). */
const char *codegen_op_at(size_t i);

/* ======================================================================== codegen/driver.c */

/* A shape fixed for a graph input before inference (from an example file or a test's data). */
typedef struct InputShape {
    const char *name;
    DType dtype;                /* DT_UNDEFINED: not checked */
    Shape shape;                /* static */
} InputShape;

/* Import, canonicalise, fix the given input shapes (rank and known dims must agree with the model),
 * set remaining unknown leading input dims to `batch` (> 0), infer shapes with folding. With batch 0
 * (exact shapes) a dim_param a given shape fixes is fixed in every input that declares it. On failure
 * *out is NULL. */
Status codegen_load(const char *path, const InputShape *shapes, size_t nshapes, int64_t batch,
                    Model **out, Diag *d) MUST_CHECK;

/* The batch dims of m1's runtime inputs and outputs, comparing shapes inferred at batch b1 (m1)
 * and b2 (m2, the same model). Allocated in m1's arena. */
Status codegen_batch_axes(const Model *m1, int64_t b1, const Model *m2, int64_t b2, BatchAxes *out,
                          Diag *d) MUST_CHECK;

/* The environment variables that change what the compiler builds (importer/, ir/, codegen/ read them),
 * NULL-terminated: program caches (tools/cache.c) key on their values. A new switch goes here too
 * (tests/cmake/env_switches.sh checks). */
extern const char *const codegen_env_vars[];

/* `onnxtune compile`: model file -> standalone program. */
typedef struct CompileOptions {
    const char *model;          /* ONNX file */
    const char *output;         /* PROG */
    bool emit_c;                /* keep PROG.c and PROG.weights next to PROG */
    int64_t batch;              /* compiled batch (<= 0: 1) */
    bool exact;                 /* compile for exactly `shapes` (no batch, no chunking): onnxtune run */
    const InputShape *shapes;   /* shapes of example inputs (fix symbolic dims), may be NULL */
    size_t nshapes;
    int threads;                /* default --threads of PROG (0: runtime default) */
    bool werror;                /* build the generated C with -Werror (tests) */
    FILE *log;                  /* notes for the user (stderr), may be NULL */
} CompileOptions;
Status codegen_compile_model(const CompileOptions *o, CodegenStats *stats, Diag *d) MUST_CHECK;

/* ======================================================================== codegen/cc.c */

typedef enum {
    CC_PROGRAM,     /* one .c -> executable, linked with the runtime, OpenBLAS, OpenMP, libm */
    CC_OBJECT,      /* one .c -> position-independent .o */
    CC_SHARED,      /* .o files -> shared object linked with the runtime */
} CcMode;

#define CC_MAX_INPUTS 400

typedef struct CcJob {
    CcMode mode;
    const char *const *inputs;  /* source or object files (at most CC_MAX_INPUTS) */
    size_t ninputs;
    const char *output;
    const char *opt_level;      /* NULL: -O1 for a file without loops, else -O2 (cc.c) */
    bool werror;
    bool data_libs;             /* link data/'s libraries (images, zlib, pthreads): training programs */
    /* filled by codegen_cc_start */
    int pid;
    char log_path[4096];        /* the compiler's stdout+stderr */
} CcJob;

/* Where the headers and archives of program/, data/, kernels/ and common/ are (in that order, the link
 * order): next to the running executable (build tree or an installed prefix: ../include/onnxtune,
 * ../lib/onnxtune), else the build tree this binary was configured in. */
#define RT_PARTS 4
typedef struct RuntimePaths {
    char inc[RT_PARTS][4096];   /* folder holding program.h, data.h, kernels.h, common.h */
    char lib[RT_PARTS][4096];   /* libonnxtune_program.a, libonnxtune_data.a, libonnxtune_kernels.a,
                                   libonnxtune_common.a */
} RuntimePaths;
Status codegen_runtime_paths(RuntimePaths *rp, Diag *d) MUST_CHECK;
/* Start the C compiler ($CC, default cc) on a job without waiting. */
Status codegen_cc_start(CcJob *job, Diag *d) MUST_CHECK;
/* Wait for it; on failure the message names the command's first input and quotes the compiler's
 * first lines. */
Status codegen_cc_finish(CcJob *job, Diag *d) MUST_CHECK;
/* Start and finish. */
Status codegen_cc(CcJob *job, Diag *d) MUST_CHECK;

/* ======================================================================== codegen/train_program.c */

/* `onnxtune compile` without --infer: a training program. The generated file holds the model's part
 * (step, update and evaluation functions, parameter table, export template, compile-time defaults:
 * program.h's TrainProgram) and a main() calling program/trainer.c's trainer_main. */
typedef struct TrainCompileOptions {
    const char *model;          /* ONNX file */
    const char *output;         /* PROG */
    bool emit_c;                /* keep PROG.c and its blobs PROG.params, PROG.export.onnx, PROG.*.weights */
    bool werror;                /* build the generated C with -Werror (tests) */
    const char *opt_level;      /* C compiler optimisation; NULL: as CcJob.opt_level */
    int64_t batch;              /* the compiled training batch B (>= 1): the largest batch PROG runs */
    const InputShape *shapes;   /* example input shapes (fix symbolic dims other than the batch), may be NULL */
    size_t nshapes;
    FreezeOptions freeze;
    HeadOptions head;
    LoraOptions lora;           /* after pass_freeze and pass_head */
    LossOptions loss;
    OptimOptions optim;
    const char *const *defaults; /* PROG options given at compile time, argv form: PROG's defaults */
    size_t ndefaults;
    const char *compiled_with;  /* the compile options as one line, for PROG --help */
    int threads;                /* recorded in the generated infos (PROG --threads sets the count) */
    int64_t features_batch;     /* the samples the frozen prefix runs at a time (0: chosen; at most batch) */
} TrainCompileOptions;

typedef struct TrainCompileStats {
    size_t train_nodes, eval_nodes;         /* nodes of the training and evaluation graphs */
    size_t trainable, frozen;               /* parameter tensors */
    size_t trainable_elems, frozen_elems;   /* their elements */
    size_t params_bytes;                    /* the parameter buffer (with optimizer state) */
    size_t workspace_bytes;                 /* the larger activation arena: eval runs in train's */
    int64_t batch;
    char features_at[256];                  /* where the frozen prefix ends ("": no prefix; ir/prefix.c) */
    size_t features_bytes;                  /* its features, per sample */
    int64_t features_batch;                 /* the samples its prefix runs at a time */
} TrainCompileStats;

Status codegen_compile_trainer(const TrainCompileOptions *o, TrainCompileStats *stats, Diag *d) MUST_CHECK;

#endif
