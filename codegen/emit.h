/* emit.h - private to codegen/: the state of one generation and the helpers emitters share.
 * Each codegen/emit_<family>.c defines a table of Emitters; emit.c gathers them and drives.
 * Emitters print the body of one node's block; they never lay out memory or weights themselves. */
#ifndef ONNXTUNE_EMIT_H
#define ONNXTUNE_EMIT_H

#include "codegen.h"
#include "program.h"

typedef struct Cg Cg;

typedef struct Emitter {
    const char *op;
    /* Print the node's code (cg_line) or return ST_UNSUPPORTED naming what is not handled. */
    Status (*emit)(Cg *cg, const Node *n);
    /* Scratch bytes the node needs while it runs (NULL: none). Called before emit. */
    size_t (*scratch)(const Node *n);
    unsigned flags;
    /* Refuse what the emitter cannot do before any code is written (NULL: nothing to check). View
     * nodes are only checked, never emitted. */
    Status (*check)(Cg *cg, const Node *n);
    /* NULL for ai.onnx ops; "onnxtune" for the ops training adds (backward ops, losses, updates). */
    const char *domain;
} Emitter;

/* A table row without a check: EMIT("Relu", emit_unary, NULL, EM_INPLACE0). */
#define EMIT(op_, emit_, scratch_, flags_) {.op = op_, .emit = emit_, .scratch = scratch_, .flags = flags_}
/* The same for an op of the onnxtune domain: EMIT_ONNXTUNE("ReluGrad", emit_relu_grad, NULL, 0). */
#define EMIT_ONNXTUNE(op_, emit_, scratch_, flags_) \
    {.op = op_, .emit = emit_, .scratch = scratch_, .flags = flags_, .domain = "onnxtune"}

enum {
    EM_VIEW = 1,        /* output 0 is input 0's bytes with another shape: no code at all (unless
                           another output is read: then emit runs) */
    EM_INPLACE = 2,     /* output 0 may overwrite any input of the same shape and size */
    EM_INPLACE0 = 16,   /* output 0 may overwrite input 0 when of the same shape and size */
    /* The kernels are float32 only: the driver casts float64/float16/bfloat16 inputs into float32
     * scratch copies first and the outputs back after (cg_ptr/cg_dtype then see float32). */
    EM_F32 = 4,
    EM_HALF = 8,        /* the same for float16/bfloat16 only (the kernels handle float64) */
    EM_INT8 = 32,       /* also 8/16-bit integers (exact in float32: for max/min-like ops only) */
};

/* The generation state. Emitters only read it through the functions below. */
struct Cg {
    Graph *g;
    const CodegenOptions *opt;
    MemPlan plan;
    Diag *d;
    FILE *out;              /* the body being written */
    const Node *node;       /* the node being emitted */
    size_t node_index;
    char **cname;           /* per value: its C identifier */
    bool *used;             /* per value: read by the body (needs a declaration) */
    size_t *woff;           /* per value: offset in the weights blob, SIZE_MAX when not laid out */
    const char **override;  /* per value: a float32 copy's pointer while its node is emitted */
    unsigned char *wblob;   /* the weights blob (a subgraph's generation writes its root's) */
    size_t wbytes, wcap;
    bool nomem;
    /* control flow (codegen/emit_control.c): each If/Loop/Scan body is a static function */
    const char *prefix;     /* PREFIX of PREFIX_run, also of the body functions */
    Cg *root;               /* the top-level generation; NULL in it */
    char **ctl_text;        /* per node index: the static functions of its bodies (NULL: none) */
    size_t *ctl_scratch;    /* per node index: the scratch bytes its bodies need */
    void **ctl_info;        /* per node index: what emit_control.c's check found for its emit */
    int nfunc;              /* body functions named so far (root only) */
    bool *blocked;          /* per value: kept in nChw8c (codegen/layout.c) */
};

/* ---- printing ---- */
void cg_line(Cg *cg, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* A string that lives as long as the generation (for building expressions). */
const char *cg_fmt(Cg *cg, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* ---- values ---- */
/* The C identifier of v's data pointer (typed by its dtype; const for inputs and weights). */
const char *cg_ptr(Cg *cg, const Value *v);
/* v's element type as the emitter sees it (float32 for EM_F32/EM_HALF copies). */
DType cg_dtype(Cg *cg, const Value *v);
/* NULL when v is absent, else cg_ptr. */
const char *cg_ptr_or_null(Cg *cg, const Value *v);
/* Pointer to the node's scratch space ("(void *)(ws + OFF)"), "NULL" when it has none. */
const char *cg_scratch(Cg *cg);
/* Number of elements of a static value. */
size_t cg_numel(const Value *v);
/* True when nothing reads v and it is not a graph output. */
bool cg_unused(Cg *cg, const Value *v);

/* Whether v lives in oneDNN's blocked layout nChw8c (codegen/layout.c) rather than NCHW. */
bool cg_blocked(Cg *cg, const Value *v);
/* Whether v is a constant of the weights blob (never written, never moved while the program runs). */
bool cg_is_const(Cg *cg, const Value *v);
/* The values of g to keep blocked (per value id, in g's arena; NULL: out of memory). After pass_fuse. */
bool *cg_plan_layouts(Graph *g);

/* ---- literals ---- */
const char *cg_ctype(DType t);          /* "float", "int64_t", ... */
const char *cg_rtdtype(DType t);        /* "RT_FLOAT", ... */
/* "(const size_t[]){2, 3}" for an array of size_t values; "NULL" when n == 0. */
const char *cg_sizes(Cg *cg, const size_t *v, size_t n);
const char *cg_i64s(Cg *cg, const int64_t *v, size_t n);
const char *cg_ints(Cg *cg, const int *v, size_t n);
/* A float literal that reads back exactly ("0.5f", "INFINITY", "NAN"). */
const char *cg_float(Cg *cg, double x);
/* The dims of a static shape as size_t (rank entries). */
void cg_dims(const Shape *s, size_t *dims);

/* ---- attributes and constant inputs ---- */
/* Ints from constant input i if present, else attribute `attr` (NULL: none); *count = number read,
 * at most max. false when the input is present but not constant (the emitter cannot handle that). */
bool cg_const_ints(const Node *n, int i, const char *attr, int64_t *out, size_t max, size_t *count);
/* A scalar constant input as double; false when absent or not constant. */
bool cg_const_scalar(const Node *n, int i, double *out);

/* ---- spatial windows (emit_conv.c) ---- */
/* The kernels' window of a Conv/ConvTranspose/pool node with input x and output y; wkernel: the kernel
 * from the weight's shape (NULL for pools). false when the kernels cannot take it. */
bool cg_window(const Node *n, const Value *x, const Value *y, const int64_t *wkernel, bool transpose,
               SpatialWindow *win);
/* Print "static const SpatialWindow win = {...};". */
void cg_emit_window(Cg *cg, const SpatialWindow *w);

/* ---- recurrent ops (emit_rnn.c) ---- */
/* The kernels' RnnParams of an LSTM/GRU/RNN node, its onnxtune training forward or its backward op
 * (X and W at inputs 3 and 4); false when the kernels cannot take it. */
bool cg_rnn_params(const Node *n, RnnParams *p);
/* Print "static const RnnParams p = {...};" for n and return the params, or ST_UNSUPPORTED. */
Status cg_emit_rnn_params(Cg *cg, const Node *n, RnnParams *p);

/* ---- control flow (emit_control.c, driven by emit.c) ---- */
/* Generate graph `body` (every value local: no outer-scope reads; inputs are the runtime inputs) as
 * "static void FNAME(void *const *inputs, void *const *outputs, void *workspace)", appended to out
 * after the functions of its own nested bodies; *ws_bytes: the workspace it needs. */
Status cg_emit_function(Cg *parent, Graph *body, const char *fname, FILE *out, size_t *ws_bytes) MUST_CHECK;
/* The byte offset of the node being emitted's scratch space in ws. */
size_t cg_scratch_offset(Cg *cg);
/* A C identifier made of s's letters, digits and underscores (at most 40 characters). */
const char *cg_ident(Cg *cg, const char *s);

/* ---- errors ---- */
Status cg_unsupported(Cg *cg, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* ST_UNSUPPORTED unless input/output value v has dtype t. */
Status cg_require_dtype(Cg *cg, const Value *v, DType t);

/* ---- the families' tables (terminated by a zeroed row) ---- */
extern const Emitter elementwise_emitters[];
extern const Emitter shape_emitters[];
extern const Emitter matmul_emitters[];
extern const Emitter conv_emitters[];
extern const Emitter pool_emitters[];
extern const Emitter norm_emitters[];
extern const Emitter reduce_emitters[];
extern const Emitter rnn_emitters[];
extern const Emitter elementwise_grad_emitters[]; /* backward ops: the second table of codegen/emit_<family>.c */
extern const Emitter conv_grad_emitters[];
extern const Emitter pool_grad_emitters[];
extern const Emitter norm_grad_emitters[];
extern const Emitter train_emitters[];            /* losses, ClipGradNorm, updates: codegen/emit_train.c */
extern const Emitter shape_grad_emitters[];
extern const Emitter reduce_grad_emitters[];
extern const Emitter rnn_grad_emitters[];
extern const Emitter loss_emitters[];             /* ONNX losses: codegen/emit_loss.c */
extern const Emitter loss_grad_emitters[];
extern const Emitter control_emitters[];          /* If, Loop, Scan: codegen/emit_control.c */
extern const Emitter seq_emitters[];              /* sequences and optionals: codegen/emit_seq.c */
extern const Emitter quant_emitters[];            /* codegen/emit_quant.c (no backward ops) */
extern const Emitter optim_emitters[];            /* ai.onnx.preview.training: codegen/emit_optim.c */
extern const Emitter signal_emitters[];           /* windows, DFT, STFT, MelWeightMatrix: emit_signal.c */
extern const Emitter image_emitters[];            /* GridSample, RoiAlign, MaxUnpool: emit_image.c */
extern const Emitter misc_emitters[];             /* ReverseSequence, Det, TfIdfVectorizer: emit_misc.c */

#endif
