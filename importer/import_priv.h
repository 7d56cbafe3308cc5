/* import_priv.h - what the importer's files share: the importer's working state and the tensor decoding
 * entry points. Private to importer/; everything outside sees only importer.h.
 */
#ifndef ONNXTUNE_IMPORT_PRIV_H
#define ONNXTUNE_IMPORT_PRIV_H

#include "importer.h"
#include "onnx.pb-c.h"

/* Densifying a sparse tensor larger than this is refused (a few bytes of indices could otherwise
 * ask for terabytes). */
#define IMPORT_MAX_DENSE_BYTES ((size_t)1 << 30)

/* State of one import. Scratch memory (maps, per-node arrays) lives in `tmp`, freed at the end;
 * everything the IR keeps lives in the model arena `a`. */
typedef struct Importer {
    Model *m;
    Arena *a;               /* m->arena */
    Arena *tmp;             /* scratch for the duration of the import */
    Diag *d;
    const char *dir;        /* folder external data is relative to; NULL refuses external data */
    char *dir_real;         /* realpath(dir), computed on first use */
    /* The external data file read last, kept open: weights usually share one file. */
    char *ext_path;
    int ext_fd;
    size_t ext_size;
    /* True while importing a function body (its protos are imported once per call, so tensor
     * buffers are copied instead of adopted). */
    int inline_depth;
    /* Work done while inlining (nodes, values, KiB of copied tensors): capped, since inlining can
     * grow a model exponentially (f calls g twice, g calls h twice, ...). */
    size_t inline_cost;
    size_t fresh;           /* counter making fresh value names unique */
    struct StrMap *funcs;   /* "domain\x1fname" -> FuncInfo * (import.c) */
} Importer;

/* ======================================================================== importer/import.c */

#define MAX_INLINE_COST ((size_t)1 << 20)

/* Charge `units` of inlining work; an error once the budget is spent. */
Status import_charge_inline(Importer *im, size_t units, const char *what) MUST_CHECK;

/* ======================================================================== importer/import_wire.c */

typedef struct Range {
    size_t off, len;
} Range;

/* The model cut in two: `skel`, a ModelProto without the top graph's initializers (small: nodes
 * and metadata), and the byte ranges of those initializers' TensorProtos in the input. */
typedef struct Split {
    uint8_t *skel;          /* malloc'd */
    size_t skel_len;
    Range *inits;           /* in the scratch arena */
    size_t ninits;
} Split;

/* Check nesting and framing of a ModelProto and cut it in two (the skeleton is malloc'd; the
 * ranges live in im->tmp). A parse error names the byte offset. */
Status import_split(Importer *im, const uint8_t *buf, size_t len, Split *sp) MUST_CHECK;

/* ======================================================================== importer/import_tensor.c */

/* Map ONNX TensorProto.DataType to DType; false for numbers we do not know. */
bool import_dtype(int64_t onnx_type, DType *out);

/* Decode a TensorProto. `what` names it for messages ("initializer 'W'"). With `steal`, raw_data
 * and the typed arrays move from the message into the arena (the message is left without them);
 * otherwise they are copied, for protos imported more than once (function bodies). */
Status import_tensor(Importer *im, Onnx__TensorProto *tp, const char *what, bool steal, Tensor **out)
    MUST_CHECK;
/* Decode a SparseTensorProto into a dense tensor. */
Status import_sparse_tensor(Importer *im, Onnx__SparseTensorProto *sp, const char *what, bool steal,
                            Tensor **out) MUST_CHECK;
/* Close the cached external data file. */
void import_close_external(Importer *im);

#endif
