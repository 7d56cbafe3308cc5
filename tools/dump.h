/* dump.h - private to the `dump` command (tools/cmd_dump.c, tools/dump_*.c): the facts about a
 * model that the text, JSON and Graphviz printers share, so all three report the same numbers.
 * Nothing here changes the model; the printers only read it. */
#ifndef ONNXTUNE_DUMP_H
#define ONNXTUNE_DUMP_H

#include "common.h"
#include "ir.h"

#include <stdio.h>

/* ======================================================================== tools/dump_util.c */

/* Buf (a growable string for building one printed item, so lines can be wrapped before printing) and
 * utf8_next are common.h's. */
/* Append s[0..n) for a terminal: control bytes and invalid UTF-8 become \xNN, the rest is kept. */
void buf_put_clean(Buf *b, const char *s, size_t n);
/* Terminal columns of a UTF-8 string (one per code point; good enough for names). */
size_t text_width(const char *s);

/* "1.23K", "4.5M", "7.8G" for counts; "3.4 KiB", "1.2 MiB" for bytes. */
void buf_human(Buf *b, double v);
void buf_human_bytes(Buf *b, double bytes);
/* "[N,3,224,224]", "[?]" unknown rank, "[]" scalar; symbolic names cleaned for terminals. */
void buf_shape(Buf *b, const Shape *s);
/* "float32 [N,16]", "sequence<float32>", "? [?]" for a value with no type information. */
void buf_value_type(Buf *b, const Value *v);

/* ======================================================================== tools/dump_info.c */

/* How a node input is fed, which decides how printers mark it. */
typedef enum {
    VR_ACTIVATION = 0,      /* produced by a node */
    VR_INPUT,               /* a graph input the caller feeds */
    VR_PARAM,               /* a float initializer: a weight */
    VR_INIT,                /* any other initializer (shape tensors, indices) */
    VR_CONST,               /* a Constant or a value constant folding computed */
} ValueRole;

ValueRole value_role(const Value *v);

typedef struct OpCount {
    const char *domain;     /* "" for ai.onnx */
    const char *op;
    size_t count;
    bool known;             /* the op table has a rule for it */
} OpCount;

typedef struct DumpInfo {
    const Model *m;
    const char *path;
    size_t *node_params;    /* [graph->nnodes] elements of each node's distinct float initializer inputs */
    double *node_flops;     /* [graph->nnodes] the op rule's estimate, 0 when there is none */
    double flops;           /* sum of node_flops */
    size_t flops_missing;   /* nodes without an estimate */
    size_t params, param_bytes; /* float initializers, subgraphs included */
    size_t ninits, init_bytes;  /* every initializer, subgraphs included */
    size_t trainable;       /* elements of trainable initializers */
    size_t ninputs;         /* graph inputs that are not initializers */
    OpCount *hist;          /* op histogram of the top-level graph: count desc, then name */
    size_t nhist;
    size_t unknown_nodes, unknown_kinds; /* nodes (and distinct ops) without an op rule */
} DumpInfo;

/* Gather the facts; allocations live in the model's arena. ST_NOMEM on failure. */
Status dump_info(const Model *m, const char *path, DumpInfo *info, Diag *d) MUST_CHECK;
/* "Conv" or "com.microsoft.FusedConv". */
void buf_op(Buf *b, const char *domain, const char *op);
/* Graph inputs the caller feeds: skips initializers listed as inputs. */
bool value_is_real_input(const Value *v);

/* ======================================================================== tools/dump_text.c etc. */

typedef struct DumpOptions {
    bool summary_only;      /* text: no node listing */
} DumpOptions;

void dump_text(FILE *f, const DumpInfo *info, const DumpOptions *opt);
void dump_json(FILE *f, const DumpInfo *info, const DumpOptions *opt);
void dump_dot(FILE *f, const DumpInfo *info, const DumpOptions *opt);

/* JSON string literal for s[0..n), quotes included: common.h's json_put_string, to a FILE. */
void json_string(FILE *f, const char *s, size_t n);

#endif
