/* ir.h - the one header of onnxtune's graph IR: types, and the prototypes of ir/ files.
 *
 * Every stage after the importer speaks this IR and nothing else: it never points into
 * protobuf-c messages. Each banner names the file that implements the functions below it.
 */
#ifndef ONNXTUNE_IR_H
#define ONNXTUNE_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define MUST_CHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define MUST_CHECK
#define PRINTF_LIKE(f, a)
#endif

typedef struct Graph Graph;
typedef struct Node Node;
typedef struct Value Value;

/* ======================================================================== ir/diag.c */

/* Status codes. Library code returns one of these and fills a Diag; only the mains print. */
typedef enum {
    ST_OK = 0,
    ST_ERR,          /* generic failure, message in the Diag */
    ST_USAGE,        /* bad command-line use (exit status 2) */
    ST_IO,           /* a file could not be opened, read or written */
    ST_PARSE,        /* bytes that are not what they claim to be (protobuf, NPY) */
    ST_INVALID,      /* a well-formed model that breaks ONNX rules (cycle, duplicate name) */
    ST_SHAPE,        /* shapes or types that do not fit the op */
    ST_UNSUPPORTED,  /* a legal model using something we do not implement */
    ST_NOMEM,        /* allocation failed or a size overflowed */
} Status;

/* A diagnostic sink: the first error wins (later ones are usually consequences).
 * `file` is set by whoever opened the model so messages can name it. */
typedef struct Diag {
    const char *file;  /* model path, or NULL */
    Status status;
    char msg[1024];
} Diag;

void diag_init(Diag *d, const char *file);
/* Record an error (if none yet) and return `st`, so callers can `return diag_error(...)`. */
Status diag_error(Diag *d, Status st, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Same, prefixed with "node 'NAME' (OP): " so the message names the node at fault. */
Status diag_node(Diag *d, const Node *n, Status st, const char *fmt, ...) PRINTF_LIKE(4, 5);
/* Print "FILE: message" (or just the message) as one line to `f`. */
void diag_print(const Diag *d, FILE *f);
/* Exit status for a status: 0 ok, 2 usage, 1 everything else. */
int status_exit_code(Status st);
const char *status_name(Status st);

/* ======================================================================== ir/arena.c */

/* A bump allocator: everything of one compilation lives in one arena and is freed at once.
 * Large requests get their own block. Foreign malloc'd buffers can be adopted so they are freed
 * with the arena (the importer adopts tensor bytes from protobuf-c instead of copying them). */
typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);          /* zeroed, 16-byte aligned; NULL on OOM */
void *arena_calloc(Arena *a, size_t n, size_t size); /* NULL on OOM or overflow */
char *arena_strdup(Arena *a, const char *s);        /* NULL in, NULL out */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) PRINTF_LIKE(2, 3);
bool arena_adopt(Arena *a, void *malloced);         /* free(p) when the arena is freed */

/* Overflow-checked size arithmetic: return false when the result does not fit. */
bool size_mul(size_t a, size_t b, size_t *out) MUST_CHECK;
bool size_add(size_t a, size_t b, size_t *out) MUST_CHECK;

/* ======================================================================== ir/tensor.c */

/* Element types; the numbers are ONNX's TensorProto.DataType so the importer maps 1:1. */
typedef enum {
    DT_UNDEFINED = 0,
    DT_FLOAT = 1,
    DT_UINT8 = 2,
    DT_INT8 = 3,
    DT_UINT16 = 4,
    DT_INT16 = 5,
    DT_INT32 = 6,
    DT_INT64 = 7,
    DT_STRING = 8,
    DT_BOOL = 9,      /* one byte per element, 0 or 1 */
    DT_FLOAT16 = 10,
    DT_DOUBLE = 11,
    DT_UINT32 = 12,
    DT_UINT64 = 13,
    DT_COMPLEX64 = 14,
    DT_COMPLEX128 = 15,
    DT_BFLOAT16 = 16,
    DT_FLOAT8E4M3FN = 17,
    DT_FLOAT8E4M3FNUZ = 18,
    DT_FLOAT8E5M2 = 19,
    DT_FLOAT8E5M2FNUZ = 20,
    DT_COUNT
} DType;

size_t dtype_size(DType t);          /* bytes per element; 0 for undefined; sizeof(char*) for string */
const char *dtype_name(DType t);     /* "float32", "int64", ... (NumPy/PyTorch spelling) */
const char *dtype_onnx_name(DType t);/* "FLOAT", "INT64", ... (ONNX spelling) */
bool dtype_is_float(DType t);        /* float16/bfloat16/float/double */
bool dtype_is_int(DType t);          /* signed or unsigned integers (not bool) */

/* A shape. rank -1 means unknown rank. A dim < 0 is unknown; `sym` names a symbolic dim
 * (ONNX dim_param such as "batch_size" or "N") and may be set on unknown dims only. */
#define IR_MAX_RANK 8
typedef struct Shape {
    int rank;
    int64_t dim[IR_MAX_RANK];
    const char *sym[IR_MAX_RANK];
} Shape;

Shape shape_unknown(void);                 /* rank -1 */
Shape shape_scalar(void);                  /* rank 0 */
Shape shape_make(int rank, const int64_t *dims);
bool shape_is_static(const Shape *s);      /* known rank and every dim >= 0 */
bool shape_equal(const Shape *a, const Shape *b); /* same rank, same dims (unknown == same sym) */
/* Number of elements; false if not static or it overflows size_t. */
bool shape_numel(const Shape *s, size_t *out) MUST_CHECK;
/* "[N,3,224,224]", "[?]" for unknown rank, "[]" for scalars; into buf, returns buf. */
char *shape_str(const Shape *s, char *buf, size_t bufsize);

/* A constant tensor: dense, C order, little-endian in host order (x86/ARM). For DT_STRING,
 * `data` is an array of `numel` NUL-terminated char* (lengths in `str_len` when present). */
typedef struct Tensor {
    DType dtype;
    Shape shape;       /* always static */
    size_t numel;
    size_t nbytes;
    void *data;        /* arena-owned (or adopted); may be NULL when numel == 0 */
    size_t *str_len;   /* DT_STRING only: byte length of each element */
} Tensor;

/* New zeroed tensor in the arena; NULL on OOM or size overflow. */
Tensor *tensor_new(Arena *a, DType t, const Shape *s);
/* Element i as double / int64 whatever the dtype (for folding and tests; not for kernels). */
double tensor_get_f64(const Tensor *t, size_t i);
int64_t tensor_get_i64(const Tensor *t, size_t i);
void tensor_set_f64(Tensor *t, size_t i, double v);
void tensor_set_i64(Tensor *t, size_t i, int64_t v);
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t h);
uint16_t float_to_bfloat16(float f);

/* ======================================================================== ir/graph.c */

typedef enum {
    VK_TENSOR = 0,   /* the only kind later stages compute with */
    VK_SEQUENCE,
    VK_MAP,
    VK_OPTIONAL,
    VK_SPARSE,
    VK_UNKNOWN,      /* no type information at all */
} ValueKind;

/* The compile-time type of a sequence (ir/ops_seq.c): its length and each element's shape (the elements
 * share the value's dtype). Lengths and element shapes are fixed at compile time like tensor shapes. */
typedef struct SeqType {
    int n;                  /* number of elements, -1: unknown */
    Shape *shapes;          /* n element shapes (NULL when n <= 0) */
} SeqType;

/* What an optional holds, when known at compile time. */
typedef enum {
    OPT_UNKNOWN = 0,
    OPT_NONE,               /* empty */
    OPT_SOME,               /* holds a value of kind opt_kind */
} OptState;

/* A value: one SSA name in a graph. Initializers are values with `init` set; constant
 * folding sets `init` on values it computes. */
struct Value {
    const char *name;       /* as exported, e.g. "layer4.0.conv1.weight" or "/layer1/Relu_output_0" */
    int id;                 /* index in graph->values */
    ValueKind kind;
    DType dtype;            /* element type (of the tensor, or of the sequence's elements) */
    Shape shape;
    Tensor *init;           /* constant data, or NULL */
    Node *producer;         /* node that writes it, NULL for graph inputs and constants */
    int producer_slot;      /* output index in producer */
    bool is_input;          /* a graph input (a non-constant one, or an initializer default) */
    bool is_output;         /* a graph output */
    bool is_initializer;    /* came from graph.initializer (a weight) */
    bool trainable;         /* set by the freeze pass */
    bool is_state;          /* mutable training state carried across steps (optimizer moments, BN running
                               stats under --bn-train): `init` holds its initial contents, it is not a
                               constant, and the nodes that own it update it in place (pass_optim.c banner) */
    /* Sequences and optionals (ir/ops_seq.c). VK_SEQUENCE: `seq` (NULL: unknown). VK_OPTIONAL: `opt`, and
     * `opt_kind`, the kind of what it holds: VK_TENSOR (dtype and shape) or VK_SEQUENCE (dtype and seq). */
    SeqType *seq;
    OptState opt;
    ValueKind opt_kind;
    const char *onnx_name;  /* the name in the ONNX file when pass_torch_names gave it PyTorch's, else NULL */
    bool transposed;        /* renamed weight stored as the transpose of PyTorch's ([in, out]) */
    const char *doc;
};

/* Attribute kinds; the numbers are ONNX's AttributeProto.AttributeType. */
typedef enum {
    AT_UNDEFINED = 0,
    AT_FLOAT = 1,
    AT_INT = 2,
    AT_STRING = 3,
    AT_TENSOR = 4,
    AT_GRAPH = 5,
    AT_FLOATS = 6,
    AT_INTS = 7,
    AT_STRINGS = 8,
    AT_TENSORS = 9,
    AT_GRAPHS = 10,
    AT_SPARSE_TENSOR = 11,
    AT_SPARSE_TENSORS = 12,
    AT_TYPE_PROTO = 13,
    AT_TYPE_PROTOS = 14,
} AttrType;

typedef struct Attr {
    const char *name;
    AttrType type;
    float f;
    int64_t i;
    const char *s;          /* AT_STRING: NUL-terminated copy */
    size_t slen;            /* AT_STRING: byte length (strings may hold NULs) */
    Tensor *t;
    Graph *g;
    size_t n;               /* element count for the list kinds */
    float *floats;
    int64_t *ints;
    const char **strings;
    Tensor **tensors;
    Graph **graphs;
} Attr;

struct OpRule;
typedef struct GradCtx GradCtx; /* reverse-mode autodiff state, ir/pass_autodiff.c */

struct Node {
    const char *name;       /* as exported; importer invents "OpType_K" when empty */
    const char *op_type;
    const char *domain;     /* "" for the default ai.onnx domain */
    const struct OpRule *rule; /* NULL when the op is unknown */
    int opset;              /* opset of its domain at import; canonicalisation sets it to the canonical one */
    int ninputs, noutputs;
    Value **inputs;         /* NULL entries are omitted optional inputs ("" in ONNX) */
    Value **outputs;        /* never NULL entries after import (omitted outputs get fresh names) */
    int nattrs;
    Attr *attrs;
    int index;              /* position in graph->nodes */
    bool dead;              /* removed by a pass; graph_compact drops it */
    int phase;              /* Phase: which part of a training step the node belongs to */
    const char *doc;
};

/* The parts of a training step; inference programs have only PHASE_FORWARD nodes. */
typedef enum {
    PHASE_FORWARD = 0,      /* the model (and the new head) */
    PHASE_LOSS,             /* the loss on the model's output */
    PHASE_BACKWARD,         /* gradients, built by pass_autodiff */
    PHASE_OPTIMIZER,        /* parameter updates, built by pass_optim */
} Phase;

typedef struct OpsetImport {
    const char *domain;     /* "" or "ai.onnx" are normalised to "" */
    int64_t version;
} OpsetImport;

struct Graph {
    Arena *arena;           /* shared by a model and all its subgraphs */
    const char *name;
    Graph *parent;          /* enclosing graph for subgraph attributes, NULL at the top */
    Value **values;         /* every value defined in this graph */
    size_t nvalues, cap_values;
    Node **nodes;           /* topologically ordered after graph_toposort */
    size_t nnodes, cap_nodes;
    Value **inputs;         /* graph inputs in declaration order (may include initializer defaults) */
    size_t ninputs, cap_inputs;
    Value **outputs;
    size_t noutputs, cap_outputs;
    size_t name_seq;        /* suffix counter for graph_new_value */
    struct NameMap *names;  /* name -> Value, private to graph.c */
    const struct ShapeOptions *shape_opt; /* set by infer_graph while it walks this graph */
};

typedef struct MetaProp {
    const char *key, *value;
} MetaProp;

typedef struct Model {
    Arena *arena;
    const char *path;       /* the file it came from */
    int64_t ir_version;
    const char *producer_name, *producer_version, *domain, *doc;
    int64_t model_version;
    OpsetImport *opsets;
    size_t nopsets;
    MetaProp *props;
    size_t nprops;
    Graph *graph;
} Model;

Model *model_new(void);                   /* with a fresh arena; NULL on OOM */
void model_free(Model *m);                /* frees the arena and everything in it */
int64_t model_opset(const Model *m, const char *domain); /* 0 when not imported */

Graph *graph_new(Arena *a, const char *name, Graph *parent);
/* Look a name up in this graph, then in enclosing graphs (outer-scope values). */
Value *graph_find(const Graph *g, const char *name);
/* Look up in this graph only. */
Value *graph_find_local(const Graph *g, const char *name);
/* Define a new value; fails (NULL, message) if the name is already defined in this graph. */
Value *graph_add_value(Graph *g, const char *name, Diag *d);
/* A value with a fresh unique name built from `hint` ("hint", "hint_1", ...). */
Value *graph_new_value(Graph *g, const char *hint, Diag *d);
/* Append a node; inputs/outputs arrays are copied. Sets outputs' producer. */
Node *graph_add_node(Graph *g, const char *op_type, const char *domain, const char *name,
                     int ninputs, Value *const *inputs, int noutputs, Value *const *outputs, Diag *d);
/* Add an attribute to a node (copied into the arena); returns the stored copy. */
Attr *node_add_attr(Graph *g, Node *n, const Attr *a);
bool graph_add_input(Graph *g, Value *v);
bool graph_add_output(Graph *g, Value *v);
/* Rebuild the name -> value map after renaming values (pass_names.c); false on OOM. */
bool graph_reindex_names(Graph *g);
/* The name a value has in the ONNX file: onnx_name when pass_torch_names renamed it. */
const char *value_onnx_name(const Value *v);
/* Drop dead nodes and renumber. */
void graph_compact(Graph *g);
/* Sort nodes so each comes after the producers of its inputs; ST_INVALID naming a node on a cycle. */
Status graph_toposort(Graph *g, Diag *d) MUST_CHECK;
/* Replace every use of `from` (inputs of nodes in g and its subgraphs, graph outputs) by `to`. */
void graph_replace_uses(Graph *g, Value *from, Value *to);
/* Number of node inputs (in g and subgraphs) and graph outputs that read v. */
size_t graph_count_uses(const Graph *g, const Value *v);
/* Remove nodes none of whose outputs are used or are graph outputs (repeatedly). */
void graph_remove_unused(Graph *g);
/* ======================================================================== ir/subgraph.c */

/* Value maps of the graphs being copied, innermost first: a value of src reads map[id] (NULL: itself). */
typedef struct CopyScope {
    const Graph *src;
    Value **map;
    const struct CopyScope *outer;
} CopyScope;
/* What v becomes in the copy (v itself when no scope maps it). */
Value *copy_scope_map(const CopyScope *s, Value *v);
/* A copy of subgraph src as a subgraph of parent, its outer reads going through sc (may be NULL); n names
 * the node in errors. NULL on error. */
Graph *graph_copy_subgraph(Graph *parent, const Node *n, const Graph *src, const CopyScope *sc, Diag *d);
/* Append copies of src's live nodes (those with only[i], when only is not NULL) to g, their values read
 * through sc; nested subgraphs are copied; the copies get n's phase. */
Status graph_copy_nodes(Graph *g, const Node *n, const Graph *src, const CopyScope *sc, const bool *only, Diag *d) MUST_CHECK;
/* Append copies of body's nodes to g. Body inputs read map_in[i]; other body values get fresh values of g;
 * outs[i] receives what body output i became. */
Status graph_clone_body(Graph *g, const Node *n, Graph *body, Value *const *map_in, Value **outs, Diag *d) MUST_CHECK;
/* Move the nodes appended to g since index `first` to just after node n (so a walk over g infers them
 * next) and mark n dead. */
Status graph_move_after(Graph *g, Node *n, size_t first, Diag *d) MUST_CHECK;
/* Append "dst = Identity(src)" to g (n: name and phase). */
Status graph_add_identity(Graph *g, const Node *n, Value *src, Value *dst, Diag *d) MUST_CHECK;

/* Values a node's subgraphs (or subgraph `sub` and its nested ones) read from outside them, each once,
 * in order of first read: what an If/Loop/Scan captures. Writes up to cap; returns the count (more than
 * cap also when subgraphs nest more than 16 deep). */
size_t node_captures(const Node *n, Value **out, size_t cap);
size_t graph_captures(const Graph *sub, Value **out, size_t cap);

/* Attribute getters with defaults; NULL when absent. */
const Attr *node_attr(const Node *n, const char *name);
int64_t node_attr_int(const Node *n, const char *name, int64_t dflt);
float node_attr_float(const Node *n, const char *name, float dflt);
const char *node_attr_string(const Node *n, const char *name, const char *dflt);
/* Input i or NULL when absent/omitted. */
Value *node_input(const Node *n, int i);
/* A value whose data is known at compile time: a constant or folded value, but not a graph
 * input with an initializer default (the caller may override those), a trainable parameter or
 * optimizer state. */
bool value_is_const(const Value *v);

/* ======================================================================== ir/verify.c */

/* Structural checks: each value defined once, no cycles, every input defined before use (or an
 * outer-scope value), outputs produced, constants consistent. Unknown ops are not its business:
 * the passes that must compute a node report them. */
Status graph_verify(const Graph *g, Diag *d) MUST_CHECK;

/* ======================================================================== ir/ops.c */

/* Dtype classes an op's inputs may be restricted to (TypeCheck, op_check_class). */
typedef enum {
    TC_ANY = 0,     /* no check */
    TC_FLOAT,       /* float16, bfloat16, float, double */
    TC_NUMERIC,     /* floats and integers */
    TC_BOOL,
    TC_INT,         /* integers */
    TC_UNSIGNED,    /* unsigned integers */
} TypeClass;

#define ALL_INPUTS (-1)

typedef struct OpArity {
    bool set;
    int in_min, in_max;     /* max -1: any */
    int out_min, out_max;
} OpArity;

typedef enum {
    TK_NONE = 0,
    TK_IS,                  /* input `input` has dtype `arg` */
    TK_CLASS,               /* input `input` has a dtype of TypeClass `arg` */
    TK_SAME,                /* inputs `input` and `arg` have one dtype */
    TK_CLASS_SAME,          /* every input i: TK_CLASS `arg`, then TK_SAME with input 0 */
} TypeCheckKind;

/* One dtype constraint; inputs that are absent or not yet typed pass. */
typedef struct TypeCheck {
    TypeCheckKind kind;
    int input;              /* ALL_INPUTS: every input (TK_SAME: `arg` ALL_INPUTS is every one after it) */
    int arg;                /* a DType, a TypeClass or another input, by kind */
} TypeCheck;

/* An attribute with its ONNX default, which canonicalisation writes onto nodes that lack it. */
typedef struct OpAttr {
    const char *name;       /* NULL: none */
    AttrType type;          /* AT_FLOAT, AT_INT or AT_STRING */
    double value;           /* AT_FLOAT, AT_INT */
    const char *s;          /* AT_STRING */
    const char *s_other;    /* AT_STRING: the one other value the kernel knows (ir/unary.def), or NULL */
} OpAttr;

/* One row of the op table. The rules for an op family live in ir/ops_<family>.c; ir/ops.c
 * gathers the families' tables. Rules work on the canonical form of the op (see docs/ir.md). */
typedef struct OpRule {
    const char *name;       /* ONNX op_type */
    const char *domain;     /* "" for ai.onnx */
    const char *family;     /* "elementwise", "conv", ... (file and kernel family) */
    int canon_opset;        /* the opset version whose semantics the canonical form follows */
    /* Rewrite a node imported at `n->opset` into the canonical form (attributes moved to inputs,
     * old semantics expressed with other nodes, ...). NULL when every version is already canonical. */
    Status (*canon)(Graph *g, Node *n, Diag *d);
    /* Set dtype and shape of the outputs from the inputs (which may have unknown dims). */
    Status (*shape)(Graph *g, Node *n, Diag *d);
    /* Compute the outputs' `init` when every input is constant. NULL: never folded. */
    Status (*fold)(Graph *g, Node *n, Diag *d);
    /* Multiply-accumulates (or element ops) of one run of the node; 0 when unknown. */
    double (*flops)(const Node *n);
    /* Append the backward nodes of n to the graph: read output gradients and accumulate input
     * gradients through the GradCtx. NULL: not differentiable (autodiff refuses a trainable
     * path through it). Keep it next to the op's shape rule. */
    Status (*grad)(GradCtx *c, Node *n, Diag *d);
    /* What the shape pass checks before `shape` runs (op_check_signature), so rules start at
     * the op's own logic: input/output counts, inputs that must be present tensors, and dtype
     * constraints in order. Write them with ARITY, REQUIRED and DTYPES below. */
    OpArity arity;          /* unset: the rule checks counts itself */
    int required;           /* inputs 0..required-1 must be present tensors; ALL_INPUTS: every one */
    TypeCheck types[8];     /* checked in order until a TK_NONE */
    /* Attributes pass_canon writes with their defaults when a node lacks them, so shape rules,
     * codegen and autodiff read the node's own values and never an ONNX default. */
    OpAttr defaults[2];
} OpRule;

/* Row fields of an OpRule, e.g. {.name = "Gemm", ..., ARITY(2, 3, 1, 1), REQUIRED(2),
 * DTYPES(IN_SAME(0, 1), IN_SAME(0, 2))}. A max of -1 means any number. */
#define ARITY(in_min, in_max, out_min, out_max) .arity = {true, in_min, in_max, out_min, out_max}
#define REQUIRED(k) .required = (k)
#define DTYPES(...) .types = {__VA_ARGS__}
#define IN_IS(i, dtype) {TK_IS, i, dtype}        /* input i (ALL_INPUTS: each) is exactly dtype */
#define IN_CLASS(i, cls) {TK_CLASS, i, cls}      /* input i (ALL_INPUTS: each) is of TypeClass cls */
#define IN_SAME(i, j) {TK_SAME, i, j}            /* inputs i and j (j ALL_INPUTS: each j > i) agree */
#define IN_CLASS_SAME(cls) {TK_CLASS_SAME, ALL_INPUTS, cls} /* each input: of cls, and input 0's dtype */

const OpRule *op_lookup(const char *domain, const char *name);
/* Iterate over all rules: for (i = 0; (r = op_rule_at(i)); i++). */
const OpRule *op_rule_at(size_t i);

/* ======================================================================== ir/ops_elementwise.c */

/* The unary element-wise ops, one row per line of ir/unary.def (which says what the fields mean). */
typedef enum {
    UG_NONE = 0,            /* no gradient */
    UG_ZERO,                /* piecewise constant: dX = 0, an explicit zero tensor */
    UG_X,                   /* dX's node reads dY and X */
    UG_Y,                   /* dX's node reads dY and Y */
    UG_DY,                  /* dX's node reads dY only */
} UnaryGrad;

typedef struct UnaryDef {
    const char *name;       /* ONNX op_type */
    int kernel;             /* runtime UnaryOp (kernels.h); -1 for the bool-valued tests */
    const char *kernel_name;/* its C name, "UNARY_RELU", for generated code */
    bool to_bool;           /* IsNaN, IsInf: bool output, kernels of their own */
    UnaryGrad grad;
    const char *grad_op;    /* dX's default-domain op; NULL: onnxtune.<name>Grad (unary_backward) */
    OpAttr attr[2];         /* what the kernel gets as alpha and beta */
} UnaryDef;

/* The row of a forward op_type, or of an onnxtune.<op>Grad op_type; NULL when not unary. */
const UnaryDef *unary_def(const char *op_type);
const UnaryDef *unary_def_of_grad(const char *grad_op_type);
/* The kernel's alpha and beta for node n of row u (its attributes, set by canonicalisation). Fails
 * (ST_UNSUPPORTED) on a string attribute with a value the kernel does not know. */
Status unary_params(const Node *n, const UnaryDef *u, float out[2], Diag *d) MUST_CHECK;

/* ======================================================================== ir/ops_seq.c */

/* How a sequence or optional lives at run time: one buffer, like a tensor's. A sequence's elements are
 * dense C-order tensors one after another, element k at seq_offset (each 64-byte aligned, 0 for the
 * first); an optional that holds a value is that value's bytes, an empty one has no bytes. So a
 * sequence of a fixed type is a block of fixed size that views, copies and loop-carried state can move
 * as bytes (docs/ir.md, Sequences and optionals). */
/* Bytes of v's data (tensor, sequence or optional); false when its type is not known or static. */
bool value_nbytes(const Value *v, size_t *out) MUST_CHECK;
/* The offsets of a sequence's n elements of dtype t and shapes `shapes` (all static) in its buffer, and
 * its size in bytes; false when a size overflows. offsets may be NULL. */
bool seq_layout(DType t, int n, const Shape *shapes, size_t *offsets, size_t *bytes) MUST_CHECK;
/* Give dst src's kind, dtype, shape and sequence/optional type (the SeqType is shared). */
void value_copy_type(Value *dst, const Value *src);
/* Whether a and b have the same kind, dtype, and (for sequences and optionals) the same known
 * sequence/optional type: lengths, element shapes (shape_equal), presence. Tensor shapes are not
 * compared. False when either sequence/optional type is unknown. */
bool value_same_seq_type(const Value *a, const Value *b);
/* New SeqType of n elements in g's arena (shapes zeroed); NULL on OOM. */
SeqType *seq_type_new(Graph *g, int n);
/* The type of v as text: "float32[2,3]", "seq<float32>([2],[3])", "optional<float32[2]>(none)". */
char *value_type_str(const Value *v, char *buf, size_t size);

/* ======================================================================== ir/pass_canon.c */

/* Rewrite every node to its op's canonical form so later passes never look at opsets, and write the
 * op's default attributes (OpRule.defaults) onto nodes that lack them. */
Status pass_canon(Model *m, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_shapes.c */

typedef struct ShapeOptions {
    int64_t batch;          /* > 0: give unknown leading dims of graph inputs this size */
    bool fold;              /* fold constant subgraphs while walking */
    bool allow_unknown_ops; /* unknown ops leave their outputs unknown instead of failing (dump) */
    bool keep_params;       /* never fold nodes that read initializers (they may train) */
    size_t unknown_ops;     /* out: how many nodes were left unknown */
} ShapeOptions;

/* Walk nodes in order: infer each node's outputs, fold it when its inputs are constant.
 * Declared output shapes (value_info) that contradict inference are an ST_SHAPE error. */
Status pass_shapes(Model *m, ShapeOptions *opt, Diag *d) MUST_CHECK;
/* Infer (and fold) one graph; If/Loop rules use it on their bodies. */
Status infer_graph(Graph *g, ShapeOptions *opt, Diag *d) MUST_CHECK;
/* Infer one node (used by passes that add nodes). */
Status infer_node(Graph *g, Node *n, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_fold.c */

/* Fold node n if all its inputs are constant and its op can be folded; *folded says whether. */
Status fold_node(Graph *g, Node *n, bool *folded, Diag *d) MUST_CHECK;
/* Fold everything foldable, then drop nodes that no longer contribute. */
Status pass_fold(Model *m, Diag *d) MUST_CHECK;

/* ======================================================================== ir/ops_util.c */

/* Helpers shared by the op families' rules (ir/ops_<family>.c). Errors name the node and input. */

/* Input/output counts in [min, max] (max -1: any); ST_INVALID naming the op otherwise. */
Status op_check_arity(const Node *n, int min_in, int max_in, int min_out, int max_out, Diag *d) MUST_CHECK;
/* Inputs 0..count-1 must be present tensors. */
Status op_require_inputs(const Node *n, int count, Diag *d) MUST_CHECK;
/* Input i (when present and typed) must have dtype `want`; ST_SHAPE otherwise. */
Status op_check_dtype(const Node *n, int i, DType want, Diag *d) MUST_CHECK;
/* Inputs i and j (when present and typed) must have the same dtype. */
Status op_same_dtype(const Node *n, int i, int j, Diag *d) MUST_CHECK;
/* Input i (when present and typed) must be of class c; ST_SHAPE naming the op's need otherwise. */
Status op_check_class(const Node *n, int i, TypeClass c, Diag *d) MUST_CHECK;
bool dtype_in_class(DType t, TypeClass c);
/* Row r's arity, required inputs and dtype constraints, checked on node n in that order; the shape pass
 * calls it before the rule's shape function. */
Status op_check_signature(const OpRule *r, const Node *n, Diag *d) MUST_CHECK;

/* A list of int64s read from a constant input or an attribute; known false when not available. */
typedef struct IntList {
    bool known;
    size_t n;
    int64_t *v;
} IntList;
/* Constant input i (scalar or 1-D integer tensor) copied into g's arena. Absent or non-constant
 * input: ST_OK with out->known false. Constant but not integer or rank > 1: ST_SHAPE. */
Status op_input_ints(Graph *g, const Node *n, int i, IntList *out, Diag *d) MUST_CHECK;
/* An AT_INTS (or AT_INT, as one element) attribute; points into the node (do not modify). */
bool op_attr_ints(const Node *n, const char *name, IntList *out);

/* Dim a[i] and b[j] are known equal: same known size, or both unknown with the same sym. */
bool dim_same(const Shape *a, int i, const Shape *b, int j);
/* Dim a[i] and b[j] are both known and differ. */
bool dim_conflict(const Shape *a, int i, const Shape *b, int j);
/* dst[i] = src[j] (size and sym). */
void dim_copy(Shape *dst, int i, const Shape *src, int j);
/* Refine dst[i] by src[j] when dst's is unknown (known size, else sym). */
void dim_merge(Shape *dst, int i, const Shape *src, int j);
/* Numpy (multidirectional) broadcasting of shapes a (input ia) and b (input ib). Unknown rank gives
 * unknown rank; unknown dims broadcast against 1, a known size, or an equal sym. ST_SHAPE naming both
 * inputs and shapes when they cannot broadcast. */
Status shape_broadcast(const Node *n, int ia, const Shape *a, int ib, const Shape *b, Shape *out,
                       Diag *d) MUST_CHECK;
/* Broadcast the present inputs first..first+count-1 of n (variadic Sum/Max, Where, ...). */
Status shape_broadcast_inputs(const Node *n, int first, int count, Shape *out, Diag *d) MUST_CHECK;
/* Flat index into a tensor of (static) shape `in` for flat index `flat` of the broadcast shape `out`. */
size_t shape_broadcast_offset(const Shape *in, const Shape *out, size_t flat);
/* Normalise `axis` in [-rank, rank) to [0, rank); ST_SHAPE naming `what` ("axis", "axes[1]") otherwise. */
Status op_axis(const Node *n, const char *what, int64_t axis, int rank, int *out, Diag *d) MUST_CHECK;
/* Element count of a static shape as a double (for flops rules); 0 when not static. */
double shape_numel_or0(const Shape *s);

/* Set output i's kind, dtype and shape (s NULL: unknown); ignores a missing output i. */
void op_set_output(Node *n, int i, DType t, const Shape *s);
/* New zeroed tensor with output i's inferred dtype and static shape, stored as its init (fold rules). */
Status op_fold_output(Graph *g, Node *n, int i, Tensor **out, Diag *d) MUST_CHECK;

/* Graph edits for canon rules. Constants get a fresh name from `hint` and live in g's arena. */
Value *graph_const(Graph *g, const char *hint, DType t, const Shape *s, Diag *d); /* zeroed */
Value *graph_const_ints(Graph *g, const char *hint, const int64_t *vals, size_t count, Diag *d); /* 1-D int64 */
Value *graph_const_scalar(Graph *g, const char *hint, DType t, double x, Diag *d); /* rank 0 */
/* Set input i, growing the input list (with omitted inputs) when i >= ninputs. */
Status node_set_input(Graph *g, Node *n, int i, Value *v, Diag *d) MUST_CHECK;
/* Drop trailing omitted inputs. */
void node_trim_inputs(Node *n);
bool node_remove_attr(Node *n, const char *name); /* true if it was there */
Status node_set_attr_int(Graph *g, Node *n, const char *name, int64_t v, Diag *d) MUST_CHECK;
Status node_set_attr_ints(Graph *g, Node *n, const char *name, const int64_t *v, size_t count,
                          Diag *d) MUST_CHECK;
Status node_set_attr_float(Graph *g, Node *n, const char *name, float v, Diag *d) MUST_CHECK;
/* Turn n into another op of its domain (op_type and rule). */
Status node_set_op(Graph *g, Node *n, const char *op_type, Diag *d) MUST_CHECK;
/* Append a default-domain node with one fresh output named from out_hint (node named name_hint_K). */
Node *graph_add_node1(Graph *g, const char *op_type, const char *name_hint, int ninputs, Value *const *inputs,
                      const char *out_hint, Diag *d);

/* ======================================================================== ir/pass_fuse.c */

/* Fuse inference BatchNormalization, a same-shape residual Add and Relu/Clip into the float32 Conv
 * before them, where nothing else reads what lies between (see the file). Codegen runs it. */
Status pass_fuse(Graph *g, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_gelu.c */

/* Torch's exported exact GELU (Div, Erf, Add, Mul, Mul) -> one Gelu node (see the file). */
Status pass_gelu(Graph *g, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_fuse_bias.c */

/* MatMul(x, W [K,N]) -> Add(., b [N]) -> one MatMul with b as a third input (see the file). */
Status pass_fuse_bias(Graph *g, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_memplan.c */

/* Where a value lives at run time (codegen's memory plan). */
typedef enum {
    MEM_NONE = 0,   /* not planned (not read or written by any node) */
    MEM_CONST,      /* constant: in the weights blob (codegen lays it out) */
    MEM_INPUT,      /* graph input `index`: the caller's buffer, read-only */
    MEM_OUTPUT,     /* graph output `index`: written straight into the caller's buffer */
    MEM_ARENA,      /* intermediate at `offset` in the activation arena */
    MEM_ALIAS,      /* a view of value `alias` (same bytes, another shape) */
} MemKind;

typedef struct MemSlot {
    MemKind kind;
    size_t offset;  /* MEM_ARENA: byte offset, 64-byte aligned */
    size_t bytes;   /* size of the value's data */
    int index;      /* MEM_INPUT / MEM_OUTPUT: position in graph inputs / outputs */
    int alias;      /* MEM_ALIAS: id of the value viewed (-1 otherwise) */
} MemSlot;

/* What the code generator knows about its kernels; NULL callbacks mean "never". */
typedef struct MemPlanOptions {
    void *ctx;
    bool (*is_view)(const Node *n, void *ctx);                 /* output 0 is input 0's bytes */
    bool (*can_reuse)(const Node *n, int out, int in, void *ctx); /* output may overwrite that input */
    size_t (*scratch_bytes)(const Node *n, void *ctx);         /* scratch while n runs */
} MemPlanOptions;

typedef struct MemPlan {
    MemSlot *slots;         /* per value id (graph->values), in the graph's arena */
    size_t *scratch;        /* per node index: arena offset of its scratch space */
    size_t *scratch_bytes;  /* per node index: its size (0: none) */
    size_t arena_bytes;     /* size of the activation arena (graph outputs and inputs excluded) */
    size_t naive_bytes;     /* the same without any reuse, for reports */
} MemPlan;

/* Plan graph g (nodes in execution order, every computed value of static shape). A graph output that
 * is a view, an input, a constant or listed twice is left where it is: codegen copies it out. The
 * arena is live until the end of the run; a value's block is reused after its last reader (or the
 * last reader of any view of it). ST_SHAPE naming the node when a shape is not static. */
Status pass_memplan(Graph *g, const MemPlanOptions *opt, MemPlan *plan, Diag *d) MUST_CHECK;

/* ======================================================================== ir/ops_conv.c */

/* Spatial geometry of a Conv, ConvTranspose or pooling node: its attributes with ONNX's defaults, and
 * output sizes. conv_geom_out / conv_transpose_geom_out also turn auto_pad SAME_* (and ConvTranspose's
 * output_shape) into explicit pads, so codegen only ever reads pad_begin/pad_end. */
typedef enum {
    PAD_NOTSET = 0,  /* explicit pads attribute */
    PAD_VALID,       /* no padding */
    PAD_SAME_UPPER,  /* output = ceil(in / stride), odd padding at the end */
    PAD_SAME_LOWER,  /* same, odd padding at the beginning */
} AutoPad;

typedef struct ConvGeom {
    int nsp;                          /* spatial dims: rank - 2 */
    AutoPad auto_pad;
    bool ceil_mode;                   /* pools */
    int64_t group;                    /* convs */
    int64_t kernel[IR_MAX_RANK];      /* -1 when unknown (no kernel_shape, weight dims unknown) */
    int64_t stride[IR_MAX_RANK];
    int64_t dilation[IR_MAX_RANK];
    int64_t pad_begin[IR_MAX_RANK];   /* ConvTranspose: pad_end < 0 adds that many bias-only outputs */
    int64_t pad_end[IR_MAX_RANK];
    int64_t out_pad[IR_MAX_RANK];     /* ConvTranspose output_padding */
} ConvGeom;

/* Read n's attributes for `nsp` spatial dims; `wkernel` (NULL for pools) is the kernel from the weight's
 * shape (-1 unknown) and must agree with kernel_shape. ST_SHAPE/ST_INVALID naming the attribute. */
Status conv_geom(const Node *n, int nsp, const int64_t *wkernel, ConvGeom *g, Diag *d) MUST_CHECK;
/* Conv/pool output size of spatial dim i for input size `in` (-1 unknown); resolves SAME_* pads of dim i
 * when `in` and the kernel are known. 0 means the kernel does not fit the padded input. */
int64_t conv_geom_out(ConvGeom *g, int i, int64_t in);
/* ConvTranspose output size of dim i; `want` >= 0 is output_shape[i]. Resolves the pads of dim i. */
int64_t conv_transpose_geom_out(ConvGeom *g, int i, int64_t in, int64_t want);
/* For gradient rules: the geometry of a Conv or pool node n for its static input shape x, every pad
 * explicit (auto_pad resolved); ST_SHAPE when x is not static. */
Status conv_geom_resolve(const Node *n, const Shape *x, const int64_t *wkernel, ConvGeom *g, Diag *d) MUST_CHECK;
/* Set the window attributes of backward node b from g: kernel_shape, strides, dilations, explicit pads,
 * group (when not 1) and ceil_mode (when set). */
Status conv_geom_set_attrs(Graph *gr, Node *b, const ConvGeom *g, Diag *d) MUST_CHECK;
/* A backward node's window g must give the spatial dims of `out` (its dY) for those of `in` (the
 * forward input); ST_SHAPE naming the dim otherwise. */
Status conv_geom_check(const Node *n, ConvGeom *g, const Shape *in, const Shape *out, Diag *d) MUST_CHECK;

/* ======================================================================== ir/ops_norm.c */

/* Dropout in a training step: turn default-domain Dropout node n (any opset, canonical) into
 * onnxtune.Dropout(X, ratio, seed) with attribute stream. `seed` is an int64 [2] value {seed, step}
 * that the training program passes every step (a runtime graph input); `stream` must differ between
 * the Dropout nodes of one graph. Element i of stream s is kept when the draw u(seed, step, s, i) >=
 * ratio (kernels/norm.c dropout_forward), so masks are deterministic, resumable from (seed, step),
 * and recomputed by the backward op onnxtune.DropoutGrad instead of being stored. The ratio must be
 * constant. Evaluation graphs keep the ONNX Dropout (the identity). */
Status dropout_to_training(Graph *g, Node *n, Value *seed, int64_t stream, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_autodiff.c */

/* Reverse-mode differentiation of a scalar loss with respect to the trainable parameters
 * (Value.trainable). Backward nodes are ordinary IR nodes (standard ONNX ops where they fit,
 * otherwise ops of the "onnxtune" domain such as ConvGrad) with phase PHASE_BACKWARD, shape-
 * inferred as they are added. Only nodes on a path from a trainable parameter to the loss get
 * backward nodes, so frozen regions cost nothing in the backward pass. */
typedef struct Gradients {
    size_t n;
    Value **params;         /* trainable parameters, in graph value order */
    Value **grads;          /* grads[i] = dLoss/dparams[i], same shape and dtype */
} Gradients;

Status pass_autodiff(Graph *g, Value *loss, Gradients *out, Diag *d) MUST_CHECK;

/* For gradient rules (OpRule.grad): */
/* dLoss/d(output i of n), or NULL when no gradient flows into that output. */
Value *grad_output(GradCtx *c, const Node *n, int i);
/* Whether input i of n needs a gradient (it depends on a trainable parameter). */
bool grad_needed(GradCtx *c, const Node *n, int i);
/* Add g to the gradient of input i of n; several contributions are summed. g must have the
 * input's shape (reduce broadcast dims first: grad_unbroadcast). */
Status grad_accumulate(GradCtx *c, const Node *n, int i, Value *g, Diag *d) MUST_CHECK;
/* The same for any forward value v node n reads (what an If branch captures, say). */
Status grad_accumulate_value(GradCtx *c, const Node *n, Value *v, Value *g, Diag *d) MUST_CHECK;
/* Whether forward value v needs a gradient (depends on a trainable parameter, reaches the loss). */
bool grad_value_needed(GradCtx *c, const Value *v);
/* Autodiff inside a subgraph (an If branch's backward): body's outputs get the gradients seeds[i]
 * (NULL: none flows; values the body may read from outside), and grads[j] = dLoss/dwrt[j] for values
 * wrt[j] of the body (NULL when none flows). The backward nodes are appended to body. */
Status grad_subgraph(Graph *body, Value *const *seeds, Value *const *wrt, size_t nwrt, Value **grads,
                     Diag *d) MUST_CHECK;
Graph *grad_graph(GradCtx *c);
/* Append a backward node (domain "" or "onnxtune") with `nout` fresh outputs (named from the
 * forward node's name), infer its shapes, and return it; outputs are node->outputs. */
Node *grad_add_node(GradCtx *c, const Node *fwd, const char *domain, const char *op_type, int nin,
                    Value *const *in, int nout, Diag *d);
/* The same in two steps, for nodes that need attributes: create, set attributes, then finish
 * (shape inference). */
Node *grad_new_node(GradCtx *c, const Node *fwd, const char *domain, const char *op_type, int nin,
                    Value *const *in, int nout, Diag *d);
Status grad_finish_node(GradCtx *c, Node *n, Diag *d) MUST_CHECK;
/* Sum g (a gradient of broadcast shape) down to `shape` (ReduceSum over broadcast axes, then
 * Reshape); returns g itself when the shapes already agree. */
Value *grad_unbroadcast(GradCtx *c, const Node *fwd, Value *g, const Shape *shape, Diag *d);

/* ======================================================================== ir/pass_names.c */

/* PyTorch names for the initializers torch.onnx.export renamed ("onnx::MatMul_284" read by
 * "/encoder/layer.11/attention/self/query/MatMul" -> "encoder.layer.11.attention.self.query.weight",
 * transposed): sets Value.onnx_name (the old name) and Value.transposed and renames the value. Run it
 * after import, before anything matches names; export writes onnx_name. The rules: its file banner. */
Status pass_torch_names(Model *m, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_freeze.c */

/* Which parameters train. A parameter is a float initializer of rank >= 1 read by some node, other than
 * a BatchNormalization running statistic or a loss op's class weight (value_is_param). All start frozen;
 * then --train-from, then --train-bias, then the --train/--freeze globs in command-line order (later wins)
 * set Value.trainable.
 * Globs are fnmatch(3) patterns without flags ('*' crosses dots) on parameter names: PyTorch's where
 * pass_torch_names recovered them, the ONNX name (Value.onnx_name) matching too. A glob, name or
 * option that selects nothing is an ST_USAGE error naming it.
 *   --train-from NAME: a value: every parameter read by a node downstream of it; a node: that node's
 *     parameters and those of every node downstream of it.
 *   --train-bias (BitFit): parameters named *.bias, and input 2 of Conv, ConvTranspose, Gemm,
 *     BatchNormalization, InstanceNormalization, LayerNormalization.
 *   --bn-train: each BatchNormalization whose inputs depend on a trainable parameter (or whose scale/B
 *     train) gets training_mode=1 (momentum kept, ONNX default 0.9 = torch 0.1): in the training step it
 *     normalises with the batch mean and biased variance and updates its inputs 3 and 4 (running mean,
 *     running var, which become is_state) in place with PyTorch's rule, the running var from the
 *     UNBIASED batch variance; evaluation uses the running stats. Every other BatchNormalization loses
 *     training_mode (inference, frozen stats).
 * Dropout nodes are not marked: in a training graph every Dropout is active in the training step and
 * the identity in evaluation. Run pass_freeze before pass_head (the head's parameters always train). */
typedef struct FreezeRule {
    bool train;             /* --train (true) or --freeze (false) */
    const char *glob;
} FreezeRule;

typedef struct FreezeOptions {
    const FreezeRule *rules;    /* in command-line order */
    size_t nrules;
    const char *train_from;     /* --train-from VALUE_OR_NODE, or NULL */
    bool train_bias;            /* --train-bias */
    bool bn_train;              /* --bn-train */
} FreezeOptions;

typedef struct FreezeSummary {
    size_t trainable, frozen;               /* parameter tensors */
    size_t trainable_elems, frozen_elems;   /* their elements */
    size_t bn_train;                        /* BatchNormalization nodes on batch statistics */
} FreezeSummary;

Status pass_freeze(Model *m, const FreezeOptions *o, Diag *d) MUST_CHECK;
/* For the dump: counts over the parameters (value_is_param) of g. */
void freeze_summary(const Graph *g, FreezeSummary *s);
bool value_is_param(const Graph *g, const Value *v);

/* ======================================================================== ir/prefix.c */

/* The frozen prefix of a training graph (after pass_freeze and pass_head, before pass_autodiff): the
 * forward nodes whose outputs depend only on x (the data input) and frozen parameters and are the same
 * on every pass (no Dropout, no BatchNormalization on batch statistics, no random op, no subgraph), and
 * the one value where they hand over to the rest: the features. A boundary is kept when it is float32
 * [N, ...] and the prefix costs at least 2 FLOPs per feature value (else storing is not worth it). */
typedef struct PrefixInfo {
    const Value *boundary;          /* the features; NULL: no prefix worth caching */
    const Value *boundary_rejected; /* boundary NULL: the one found but not kept (or NULL) */
    size_t nodes;                   /* nodes in the prefix */
    double flops;                   /* the prefix's FLOPs per sample (0: unknown, without a batch) */
    double act_bytes;               /* the bytes its nodes write per sample (0: unknown) */
    size_t sample_bytes;            /* the features of one sample */
    const char *why_not;            /* boundary NULL: why, or NULL when nothing frozen feeds the rest */
    bool note;                      /* why_not is worth telling the user (a frozen part that cannot be cached) */
} PrefixInfo;
Status prefix_find(Graph *g, const Value *x, PrefixInfo *out, Diag *d) MUST_CHECK;
/* The prefix cut out at `batch` (g, its data input x) computes each sample apart from the others, so a
 * sample's results are the same bits at any place in a batch: NULL, or the first node that may mix them
 * (an op not known to keep the samples apart on axis 0: a Transpose moving axis 0, a product across
 * samples, an op of our own, ...). Run with rt_set_samples_apart (kernels.h): Gemm and MatMul then make
 * a product per sample. */
const Node *prefix_mixes_samples(const Graph *g, const Value *x, int64_t batch);

/* ======================================================================== ir/pass_head.c */

/* A new classification head. The cut (default: the data input of the final classifier, i.e. the last
 * Gemm with constant B and transA 0, or MatMul with a constant right operand, that the first graph
 * output depends on) is flattened to [N, F] (Flatten axis 1) when its rank is > 2; rank < 2 or unknown F
 * is the ST_SHAPE error "a head on a tensor of unsuitable rank". The graph's outputs are replaced by the
 * head's logits and everything that only fed the old outputs is removed (removed initializers stop
 * training). Heads, as PyTorch modules (Linear = Gemm transB=1, weight [out, in], bias [out]):
 *   linear:K   head = nn.Linear(F, K)                             head.weight, head.bias
 *   mlp:H,K    head = nn.Sequential(nn.Linear(F, H), nn.ReLU(), nn.Linear(H, K))
 *                                                                 head.0.*, head.2.*
 *     with --head-dropout P > 0 a Dropout(P) node sits between the ReLU and head.2 (applied functionally,
 *     so the names stay those of the Sequential; in PyTorch: head[2](F.dropout(head[1](head[0](x)), P))).
 * The output is named "logits" unless a live value has that name, else "head_logits" (the removed
 * classifier's names, "logits" or "head.weight", are taken over). Init as nn.Linear's default:
 * weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)), drawn from one splitmix64 stream seeded with `seed`, in
 * order weight (row-major) then bias, layer by layer: u = (splitmix64() >> 40) * 2^-24,
 * value = (float)((2u - 1) * bound). Not PyTorch's generator (fixtures pass --init instead). */
typedef enum {
    HEAD_NONE = 0,          /* keep the model's outputs */
    HEAD_LINEAR,            /* linear:K */
    HEAD_MLP,               /* mlp:H,K */
} HeadKind;

/* --pool: a cut of [N, T, D] (a sequence model's hidden states) reduced to [N, D] before the head.
 * cls: token 0 (x[:, 0]); mean: the mean over T, over the tokens the mask marks when there is one
 * (sum(x * m) / max(sum(m), 1e-9), as sentence-transformers); last: token T-1, or with a mask the last
 * marked token, sum(m) - 1 (right padding, as GPT2ForSequenceClassification). The mask: the graph input
 * --mask-input names, else one called attention_mask; any numeric type, nonzero = a token. */
typedef enum { HEAD_POOL_NONE = 0, HEAD_POOL_CLS, HEAD_POOL_MEAN, HEAD_POOL_LAST } HeadPool;

typedef struct HeadOptions {
    HeadKind kind;
    HeadPool pool;          /* --pool (NONE: a [N, ...] cut is flattened) */
    const char *mask_input; /* --mask-input NAME, or NULL: attention_mask if the model has it */
    int64_t classes;        /* K */
    int64_t hidden;         /* H (mlp) */
    double dropout;         /* --head-dropout P in [0, 1) (mlp) */
    const char *cut;        /* --cut VALUE, or NULL for the default */
    uint64_t seed;          /* --seed */
} HeadOptions;

/* "none", "linear:K", "mlp:H,K" -> kind, classes, hidden (other fields untouched). */
Status head_parse(const char *spec, HeadOptions *o, Diag *d) MUST_CHECK;
Status pass_head(Model *m, const HeadOptions *o, Diag *d) MUST_CHECK;
/* "cls", "mean", "last" -> pool. */
Status head_pool_parse(const char *spec, HeadPool *pool, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_lora.c */

/* LoRA: each weight matched by a --lora glob (fnmatch on PyTorch's or the ONNX name, as pass_freeze's) that
 * is the weight input of MatMul, Gemm (transA 0) or Conv (group 1) gets trainable adapters
 * "<weight>.lora_A" and "<weight>.lora_B" in peft's layout, A [r, in] ([r, in, k...] for Conv), B [out, r]
 * ([out, r, 1...]), and is frozen; each node reading it then computes W x + (alpha/r) B(A(dropout(x)))
 * (with Gemm's alpha on both terms). A ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (nn.Linear's
 * kaiming_uniform_(a=sqrt(5))) from splitmix64 seeded with seed ^ 0x4c6f5241, adapter by adapter in
 * initializer order; B = 0. Dropout is an ONNX Dropout node per adapted node (active in the training step
 * like any Dropout). A glob selecting no adaptable weight, rank < 1, alpha <= 0 or dropout outside [0, 1)
 * is ST_USAGE. Run after pass_freeze and pass_head (so the head's weights can be adapted and the removed
 * classifier's cannot). */
typedef struct LoraOptions {
    const char *const *globs;   /* --lora GLOB, in command-line order; none: the pass does nothing */
    size_t nglobs;
    int64_t rank;               /* --lora-rank r (8) */
    double alpha;               /* --lora-alpha (16) */
    double dropout;             /* --lora-dropout p (0) */
    uint64_t seed;              /* --seed */
} LoraOptions;

typedef struct LoraAdapter {
    const char *weight, *a, *b; /* value names */
    double scale;               /* alpha / r: merged weight = W + scale * B A (in PyTorch's layout) */
    bool in_out;                /* W is stored [in, out] (MatMul, Gemm transB=0): the merge adds (B A)^T */
} LoraAdapter;

typedef struct LoraResult {
    size_t n;
    LoraAdapter *adapters;      /* in the graph's arena */
} LoraResult;

Status pass_lora(Model *m, const LoraOptions *o, LoraResult *out, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_loss.c */

#define ONNXTUNE_DOMAIN "onnxtune"   /* the domain of our own ops (ops_train.c, backward ops) */

/* The loss on the logits (LossOptions.logits, or the graph's only output): a new graph input "target"
 * (int64 [N] class indices for cross_entropy, else float of the logits' shape; "target_1"... if the
 * name is taken) and an onnxtune.<Op>Loss node (PHASE_LOSS) producing the float scalar "loss" ("loss_1"
 * if taken), appended to the graph outputs after the logits. Mean reduction, as PyTorch's defaults.
 * Adds the onnxtune opset import. The ops and formulas: ir/ops_train.c. */
typedef enum {
    LOSS_CROSS_ENTROPY = 0, /* cross_entropy: nn.CrossEntropyLoss(label_smoothing=eps), logits [N, C] */
    LOSS_MSE,               /* mse: nn.MSELoss */
    LOSS_L1,                /* l1: nn.L1Loss */
    LOSS_BCE_WITH_LOGITS,   /* bce_with_logits: nn.BCEWithLogitsLoss */
    LOSS_MODEL,             /* model: the model computes its loss itself (see pass_loss) */
} LossKind;

typedef struct LossOptions {
    LossKind kind;
    double label_smoothing; /* --label-smoothing, cross_entropy only, in [0, 1] */
    const char *logits;     /* the value to put the loss on; NULL: the graph's only output */
} LossOptions;

Status loss_parse(const char *name, LossKind *out, Diag *d) MUST_CHECK;
const char *loss_name(LossKind k);
Status pass_loss(Model *m, const LossOptions *o, Value **loss, Diag *d) MUST_CHECK;
/* LOSS_MODEL: the model ends in its own loss, one graph output computed (output 0) by ONNX's
 * SoftmaxCrossEntropyLoss or NegativeLogLikelihoodLoss with reduction mean or sum, whose target is a
 * graph input of int64 class indices. pass_loss adds no node: it marks that one PHASE_LOSS and makes
 * the graph outputs (its scores or log-probabilities, its loss); the target input is what the trainer
 * feeds from Y. A class weight must be an initializer; it is no parameter (pass_freeze: a buffer in
 * PyTorch, never trained). */
bool loss_is_model_target(const Graph *g, const Value *v);   /* v is that loss's target input */
/* Add the opset import of ONNXTUNE_DOMAIN (version 1) to m if missing. */
Status model_import_onnxtune(Model *m, Diag *d) MUST_CHECK;

/* ======================================================================== ir/pass_optim.c */

/* The optimizer step after pass_autodiff, torch 1.13's formulas (ir/ops_train.c, kernels/optim.c).
 * It adds two runtime scalar graph inputs, "lr" (double) and "step" (int64: 1 at the first step), that
 * the training program passes every step (it computes the schedule); optional clipping (an
 * onnxtune.ClipGradNorm over all gradients producing "grad_clip_scale" and the graph output
 * "grad_norm", the total norm before clipping); and per parameter p one node, PHASE_OPTIMIZER:
 *   SGDUpdate(p, grad, lr, step, [momentum_buffer], [grad_scale])   attrs momentum dampening nesterov
 *                                                                   weight_decay
 *   AdamUpdate / AdamWUpdate(p, grad, lr, step, exp_avg, exp_avg_sq, [grad_scale])
 *                                                   attrs beta1 beta2 epsilon weight_decay
 * State values "<p>.momentum_buffer", "<p>.exp_avg", "<p>.exp_avg_sq" are zero-initialised constants
 * with is_state set.
 *
 * The in-place convention (for codegen, memplan and later passes):
 *   - Update nodes have NO outputs. They overwrite their input 0 (the parameter) and their state inputs
 *     (momentum_buffer, exp_avg, exp_avg_sq) in place; grad, lr, step, grad_scale are only read.
 *     BatchNormalization with training_mode=1 likewise updates its inputs 3 and 4 (is_state).
 *   - So trainable parameters and is_state values are not constants: they live in mutable buffers that
 *     persist across steps (the training program's parameter and state arenas), even though `init`
 *     is set (their initial contents). Passes must not fold through them.
 *   - PHASE_OPTIMIZER nodes run after every other node of the step (the backward pass reads parameters);
 *     emit nodes phase by phase. graph_remove_unused would drop them (no outputs): do not call it on a
 *     graph after pass_optim. */
typedef enum {
    OPTIM_SGD = 0,          /* torch.optim.SGD */
    OPTIM_ADAM,             /* torch.optim.Adam (weight decay added to the gradient) */
    OPTIM_ADAMW,            /* torch.optim.AdamW (decoupled: p *= 1 - lr*wd first) */
} OptimKind;

typedef struct OptimOptions {
    OptimKind kind;
    double momentum;        /* SGD --momentum (0) */
    double dampening;       /* SGD dampening (0) */
    bool nesterov;          /* SGD --nesterov */
    double beta1, beta2;    /* Adam(W) --beta1 (0.9) --beta2 (0.999) */
    double eps;             /* Adam(W) --eps (1e-8) */
    double weight_decay;    /* --weight-decay (SGD/Adam 0, AdamW 0.01) */
    double grad_clip;       /* --grad-clip NORM: > 0 clips the total L2 norm of all gradients */
} OptimOptions;

/* PyTorch's defaults for `kind`. */
void optim_defaults(OptimKind kind, OptimOptions *o);
Status optim_parse(const char *name, OptimKind *out, Diag *d) MUST_CHECK;
Status pass_optim(Graph *g, const Gradients *grads, const OptimOptions *o, Diag *d) MUST_CHECK;

#endif
