/* importer.h - the public face of importer/: ONNX files in, IR out.
 *
 * The importer maps a ModelProto onto the IR (ir/ir.h) and copies nothing it can adopt: tensor
 * bytes move from protobuf-c's buffers into the model's arena. It does not canonicalise or infer
 * shapes: that is ir/pass_canon.c and ir/pass_shapes.c.
 */
#ifndef ONNXTUNE_IMPORTER_H
#define ONNXTUNE_IMPORTER_H

#include "ir.h"

/* How ONNX lands in the IR (what later stages can rely on):
 * - Initializers are values with `init` and is_initializer. An initializer that is also a graph
 *   input is ONE value with is_input, is_initializer and init all set: an input whose default is the
 *   initializer (value_is_const() is false for it). Models before IR 4 list every weight so.
 * - Graph values are typed from inputs, outputs and value_info: kind, dtype (for sequences, maps
 *   and optionals the element type of the tensor inside; optionals also opt_kind, what they hold)
 *   and shape (dim_param -> dim -1 + sym; negative dim_values read as unknown). A sequence's length
 *   is never declared: Value.seq stays NULL until the shape pass. Untyped values: VK_TENSOR,
 *   DT_UNDEFINED, rank -1.
 * - Nodes: names as exported, else "<OpType>_<index in its graph>"; "" inputs are NULL; "" outputs
 *   get fresh values "<node>_out<k>"; `opset` is the version of the node's domain ("ai.onnx" is "").
 *   Nodes are topologically sorted (files need not be) and graph_verify has passed.
 * - Attributes: STRING keeps its bytes (slen; may hold NULs); STRINGS are NUL-terminated copies;
 *   SPARSE_TENSOR(S) arrive densified as TENSOR(S); TYPE_PROTO(S) keep only the element type, as a
 *   DType in `i` (`ints`). Constant nodes stay Constant nodes, in whatever form they came.
 * - Subgraph attributes are Graphs whose parent is the graph of their node; their nodes point at
 *   outer values directly. A subgraph output that is an outer value gets an Identity.
 * - Model-local functions are inlined: the body's nodes and values are renamed "<call>/<name>",
 *   formal inputs and outputs are the call's values, ref_attr_name takes the call's attribute (or
 *   drops the attribute when the call has none), nodes keep the function's opset_import.
 * - External data: location relative to the model's folder, refused when absolute or resolving
 *   (realpath, so also through symlinks) outside it; offset/length checked against the file.
 * - Not imported: training_info, quantization annotations, TensorProto.segment (an error),
 *   FunctionProto attribute defaults (not in the ONNX 1.12 schema we compile).
 * - Limits (errors, not crashes): 100 nested messages, 32 nested function calls, ~1M nodes/values
 *   made by inlining, 1 GiB for a densified sparse tensor, rank IR_MAX_RANK. */

/* ======================================================================== importer/import.c */

/* Read and import an ONNX model file. External data is resolved relative to the model's folder.
 * On failure *out is NULL and d says what and where (file, node, field). */
Status onnx_import_file(const char *path, Model **out, Diag *d) MUST_CHECK;
/* Same from bytes in memory (for the fuzzer and tests); `dir` resolves external data (NULL: refuse it). */
Status onnx_import_bytes(const void *buf, size_t len, const char *dir, Model **out, Diag *d) MUST_CHECK;

/* Read one serialized TensorProto file (the ONNX backend tests' input_K.pb / output_K.pb). */
Status onnx_read_tensor_file(const char *path, Arena *a, Tensor **out, char **name, Diag *d) MUST_CHECK;

/* A test data value: a TensorProto, SequenceProto (of tensors) or OptionalProto file. */
typedef struct DataValue {
    ValueKind kind;         /* VK_TENSOR, VK_SEQUENCE or VK_OPTIONAL */
    Tensor *t;              /* VK_TENSOR, and an optional holding a tensor */
    size_t n;               /* VK_SEQUENCE, and an optional holding a sequence: the elements */
    Tensor **elems;
    bool none;              /* VK_OPTIONAL: empty */
    ValueKind elem_kind;    /* VK_OPTIONAL: VK_TENSOR (t) or VK_SEQUENCE (n, elems) */
} DataValue;
/* Read one test data file as the kind the model declares for it (the files do not say). Sequences of
 * sparse tensors, maps or nested sequences are ST_UNSUPPORTED. */
Status onnx_read_value_file(const char *path, ValueKind kind, Arena *a, DataValue *out, Diag *d) MUST_CHECK;

/* ======================================================================== importer/export.c */

/* Where one initializer's raw bytes sit in an exported file (a training program overwrites them). */
typedef struct ExportParam {
    const char *name;           /* the IR name (PyTorch's after pass_torch_names); the file has the ONNX one */
    const Value *value;
    size_t offset, nbytes;
} ExportParam;

typedef struct ExportLayout {
    size_t nparams;
    ExportParam *params;        /* every non-string initializer, in value order */
} ExportLayout;

typedef struct ExportOptions {
    const char *producer_version;
    const char *doc;
    const MetaProp *props;      /* added to the model's metadata_props (class names, preprocessing) */
    size_t nprops;
} ExportOptions;

/* Serialize m's forward nodes (phase PHASE_FORWARD, default domain), its graph inputs and outputs,
 * and every constant they read as an initializer, under their ONNX names (value_onnx_name). The
 * default opset is the highest of the model's and the nodes' (canonical forms may be newer than the
 * file they came from). Bytes live in `a`. */
Status onnx_export_bytes(const Model *m, const ExportOptions *o, Arena *a, uint8_t **bytes, size_t *len,
                         ExportLayout *layout, Diag *d) MUST_CHECK;
/* The same, written to path atomically (write_file_atomic). o may be NULL. */
Status onnx_export_file(const Model *m, const ExportOptions *o, const char *path, Diag *d) MUST_CHECK;
/* Write bytes to path atomically (common.h's atomic_write: temporary file, fsync, rename, fsync of the
 * folder): nothing half-written is ever seen under that name, also after a crash. */
Status write_file_atomic(const char *path, const void *data, size_t len, Diag *d) MUST_CHECK;

#endif
