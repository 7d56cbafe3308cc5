/* export.c - IR back to ONNX: the fine-tuned model leaves as a ModelProto that any runtime loads.
 *
 * Serialization is protobuf-c's, with one twist: initializers are packed one by one and appended
 * to the graph's bytes by hand, so the byte offset of every initializer's raw data is known. A
 * training program embeds those bytes as a template and writes its updated weights at those
 * offsets, with no protobuf code of its own. Only forward nodes of the default domain export.
 */
#include "importer.h"

#include "common.h"

#include "onnx.pb-c.h"

#include <stdlib.h>
#include <string.h>

typedef struct Exporter {
    Arena *a;          /* every message lives here; freed by the caller's arena */
    Diag *d;
} Exporter;

#define NEW(ex, T, init) exp_new_((ex), sizeof(T), &(T)init)
static void *exp_new_(Exporter *ex, size_t size, const void *init)
{
    void *p = arena_alloc(ex->a, size);
    if (p)
        memcpy(p, init, size);
    return p;
}

static Onnx__TensorProto *export_tensor(Exporter *ex, const char *name, const Tensor *t)
{
    Onnx__TensorProto *tp = NEW(ex, Onnx__TensorProto, ONNX__TENSOR_PROTO__INIT);
    if (!tp)
        return NULL;
    tp->name = (char *)name;
    tp->has_data_type = true;
    tp->data_type = (int32_t)t->dtype;
    tp->n_dims = (size_t)t->shape.rank;
    tp->dims = (int64_t *)t->shape.dim;
    if (t->dtype == DT_STRING) {
        tp->n_string_data = t->numel;
        tp->string_data = arena_calloc(ex->a, t->numel ? t->numel : 1, sizeof(ProtobufCBinaryData));
        if (!tp->string_data)
            return NULL;
        for (size_t i = 0; i < t->numel; i++) {
            const char *s = ((const char *const *)t->data)[i];
            tp->string_data[i].data = (uint8_t *)s;
            tp->string_data[i].len = t->str_len ? t->str_len[i] : strlen(s);
        }
        return tp;
    }
    /* raw_data is little-endian, as the host is (the importer makes the same assumption) */
    tp->has_raw_data = true;
    tp->raw_data.data = t->data;
    tp->raw_data.len = t->nbytes;
    return tp;
}

static Onnx__ValueInfoProto *export_value_info(Exporter *ex, const Value *v)
{
    Onnx__ValueInfoProto *vi = NEW(ex, Onnx__ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
    Onnx__TypeProto *tp = NEW(ex, Onnx__TypeProto, ONNX__TYPE_PROTO__INIT);
    Onnx__TypeProto__Tensor *tt = NEW(ex, Onnx__TypeProto__Tensor, ONNX__TYPE_PROTO__TENSOR__INIT);
    if (!vi || !tp || !tt)
        return NULL;
    vi->name = (char *)value_onnx_name(v);
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = true;
    tt->elem_type = (int32_t)v->dtype;
    if (v->shape.rank >= 0) {
        Onnx__TensorShapeProto *sp = NEW(ex, Onnx__TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
        if (!sp)
            return NULL;
        sp->n_dim = (size_t)v->shape.rank;
        sp->dim = arena_calloc(ex->a, sp->n_dim ? sp->n_dim : 1, sizeof *sp->dim);
        if (!sp->dim)
            return NULL;
        for (int i = 0; i < v->shape.rank; i++) {
            Onnx__TensorShapeProto__Dimension *dm =
                NEW(ex, Onnx__TensorShapeProto__Dimension, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT);
            if (!dm)
                return NULL;
            if (v->shape.dim[i] >= 0) {
                dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                dm->dim_value = v->shape.dim[i];
            } else if (v->shape.sym[i]) {
                dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                dm->dim_param = (char *)v->shape.sym[i];
            }
            sp->dim[i] = dm;
        }
        tt->shape = sp;
    }
    return vi;
}

static Onnx__GraphProto *export_graph(Exporter *ex, const Graph *g, bool with_initializers);

static Onnx__AttributeProto *export_attr(Exporter *ex, const Node *n, const Attr *at)
{
    Onnx__AttributeProto *ap = NEW(ex, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    if (!ap)
        return NULL;
    ap->name = (char *)at->name;
    ap->has_type = true;
    ap->type = (Onnx__AttributeProto__AttributeType)at->type;
    switch (at->type) {
    case AT_FLOAT: ap->has_f = true; ap->f = at->f; break;
    case AT_INT: ap->has_i = true; ap->i = at->i; break;
    case AT_STRING:
        ap->has_s = true;
        ap->s.data = (uint8_t *)at->s;
        ap->s.len = at->slen;
        break;
    case AT_TENSOR:
        if (!(ap->t = export_tensor(ex, "", at->t)))
            return NULL;
        break;
    case AT_GRAPH:
        if (!(ap->g = export_graph(ex, at->g, true)))
            return NULL;
        break;
    case AT_FLOATS: ap->n_floats = at->n; ap->floats = at->floats; break;
    case AT_INTS: ap->n_ints = at->n; ap->ints = at->ints; break;
    case AT_STRINGS:
        ap->n_strings = at->n;
        ap->strings = arena_calloc(ex->a, at->n ? at->n : 1, sizeof *ap->strings);
        if (!ap->strings)
            return NULL;
        for (size_t i = 0; i < at->n; i++) {
            ap->strings[i].data = (uint8_t *)at->strings[i];
            ap->strings[i].len = strlen(at->strings[i]);
        }
        break;
    case AT_TENSORS:
        ap->n_tensors = at->n;
        ap->tensors = arena_calloc(ex->a, at->n ? at->n : 1, sizeof *ap->tensors);
        if (!ap->tensors)
            return NULL;
        for (size_t i = 0; i < at->n; i++)
            if (!(ap->tensors[i] = export_tensor(ex, "", at->tensors[i])))
                return NULL;
        break;
    case AT_GRAPHS:
        ap->n_graphs = at->n;
        ap->graphs = arena_calloc(ex->a, at->n ? at->n : 1, sizeof *ap->graphs);
        if (!ap->graphs)
            return NULL;
        for (size_t i = 0; i < at->n; i++)
            if (!(ap->graphs[i] = export_graph(ex, at->graphs[i], true)))
                return NULL;
        break;
    default:
        diag_node(ex->d, n, ST_UNSUPPORTED, "attribute '%s': its kind (%d) cannot be exported", at->name,
                  (int)at->type);
        return NULL;
    }
    return ap;
}

static bool exported_node(const Node *n)
{
    return !n->dead && n->phase == PHASE_FORWARD;
}

static Onnx__NodeProto *export_node(Exporter *ex, const Node *n)
{
    if (n->domain[0]) {
        diag_node(ex->d, n, ST_UNSUPPORTED, "op of domain '%s' cannot be exported", n->domain);
        return NULL;
    }
    Onnx__NodeProto *np = NEW(ex, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
    if (!np)
        return NULL;
    np->name = (char *)n->name;
    np->op_type = (char *)n->op_type;
    np->domain = (char *)"";
    np->n_input = (size_t)n->ninputs;
    np->input = arena_calloc(ex->a, np->n_input ? np->n_input : 1, sizeof(char *));
    np->n_output = (size_t)n->noutputs;
    np->output = arena_calloc(ex->a, np->n_output ? np->n_output : 1, sizeof(char *));
    np->n_attribute = (size_t)n->nattrs;
    np->attribute = arena_calloc(ex->a, np->n_attribute ? np->n_attribute : 1, sizeof *np->attribute);
    if (!np->input || !np->output || !np->attribute)
        return NULL;
    for (int i = 0; i < n->ninputs; i++)
        np->input[i] = n->inputs[i] ? (char *)value_onnx_name(n->inputs[i]) : (char *)"";
    for (int i = 0; i < n->noutputs; i++)
        np->output[i] = (char *)value_onnx_name(n->outputs[i]);
    for (int i = 0; i < n->nattrs; i++)
        if (!(np->attribute[i] = export_attr(ex, n, &n->attrs[i])))
            return NULL;
    return np;
}

/* Constants read by exported nodes (or outputs), in value order: they become initializers. */
static size_t collect_constants(const Graph *g, const Value **out)
{
    size_t n = 0;
    bool *seen = calloc(g->nvalues ? g->nvalues : 1, sizeof *seen);
    if (!seen)
        return 0;
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *nd = g->nodes[i];
        if (!exported_node(nd))
            continue;
        for (int k = 0; k < nd->ninputs; k++) {
            const Value *v = nd->inputs[k];
            if (v && v->init && graph_find_local(g, v->name) == v)
                seen[v->id] = true;
        }
        Value *cap[256]; /* what an If/Loop/Scan body reads from this graph */
        size_t nc = nd->nattrs ? node_captures(nd, cap, 256) : 0;
        for (size_t k = 0; k < nc && k < 256; k++)
            if (cap[k]->init && graph_find_local(g, cap[k]->name) == cap[k])
                seen[cap[k]->id] = true;
    }
    for (size_t i = 0; i < g->noutputs; i++)
        if (g->outputs[i]->init && graph_find_local(g, g->outputs[i]->name) == g->outputs[i])
            seen[g->outputs[i]->id] = true;
    for (size_t i = 0; i < g->nvalues; i++)
        if (seen[i]) {
            if (out)
                out[n] = g->values[i];
            n++;
        }
    free(seen);
    return n;
}

static Onnx__GraphProto *export_graph(Exporter *ex, const Graph *g, bool with_initializers)
{
    Onnx__GraphProto *gp = NEW(ex, Onnx__GraphProto, ONNX__GRAPH_PROTO__INIT);
    if (!gp)
        return NULL;
    gp->name = (char *)(g->name && g->name[0] ? g->name : "onnxtune");
    size_t nn = 0;
    for (size_t i = 0; i < g->nnodes; i++)
        nn += exported_node(g->nodes[i]);
    gp->node = arena_calloc(ex->a, nn ? nn : 1, sizeof *gp->node);
    if (!gp->node)
        return NULL;
    for (size_t i = 0; i < g->nnodes; i++)
        if (exported_node(g->nodes[i]) && !(gp->node[gp->n_node++] = export_node(ex, g->nodes[i])))
            return NULL;
    /* inputs: runtime inputs (those with defaults too) */
    gp->input = arena_calloc(ex->a, g->ninputs ? g->ninputs : 1, sizeof *gp->input);
    gp->output = arena_calloc(ex->a, g->noutputs ? g->noutputs : 1, sizeof *gp->output);
    if (!gp->input || !gp->output)
        return NULL;
    for (size_t i = 0; i < g->ninputs; i++)
        if (!(gp->input[gp->n_input++] = export_value_info(ex, g->inputs[i])))
            return NULL;
    for (size_t i = 0; i < g->noutputs; i++)
        if (!(gp->output[gp->n_output++] = export_value_info(ex, g->outputs[i])))
            return NULL;
    if (with_initializers) {
        size_t nc = collect_constants(g, NULL);
        const Value **cs = arena_calloc(ex->a, nc ? nc : 1, sizeof *cs);
        gp->initializer = arena_calloc(ex->a, nc ? nc : 1, sizeof *gp->initializer);
        if (!cs || !gp->initializer)
            return NULL;
        collect_constants(g, cs);
        for (size_t i = 0; i < nc; i++)
            if (!(gp->initializer[gp->n_initializer++] = export_tensor(ex, value_onnx_name(cs[i]), cs[i]->init)))
                return NULL;
    }
    return gp;
}

/* ---- hand-assembled outer layers ---- */

/* Length-delimited field header (field number f) for a payload of len bytes. */
static size_t ld_header(uint8_t *p, unsigned f, size_t len)
{
    size_t n = pb_varint_put(p, ((uint64_t)f << 3) | 2);
    return n + pb_varint_put(p + n, len);
}

static int64_t export_opset(const Model *m)
{
    int64_t v = model_opset(m, "");
    for (size_t i = 0; i < m->graph->nnodes; i++) {
        const Node *n = m->graph->nodes[i];
        if (exported_node(n) && !n->domain[0] && n->opset > v)
            v = n->opset;
    }
    return v;
}

Status onnx_export_bytes(const Model *m, const ExportOptions *o, Arena *a, uint8_t **bytes, size_t *len,
                         ExportLayout *layout, Diag *d)
{
    Exporter ex = {.a = a, .d = d};
    *bytes = NULL;
    *len = 0;
    memset(layout, 0, sizeof *layout);
    const Graph *g = m->graph;

    /* the model without its graph */
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = true;
    mp.ir_version = m->ir_version >= 8 ? m->ir_version : 8;
    mp.producer_name = (char *)"onnxtune";
    mp.producer_version = (char *)(o && o->producer_version ? o->producer_version : "");
    mp.domain = (char *)(m->domain ? m->domain : "");
    mp.has_model_version = m->model_version != 0;
    mp.model_version = m->model_version;
    mp.doc_string = (char *)(o && o->doc ? o->doc : (m->doc ? m->doc : ""));
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = (char *)"";
    opset.has_version = true;
    opset.version = export_opset(m);
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    mp.n_opset_import = 1;
    mp.opset_import = opsets;
    size_t nprops = m->nprops + (o ? o->nprops : 0);
    Onnx__StringStringEntryProto **props = arena_calloc(a, nprops ? nprops : 1, sizeof *props);
    if (!props)
        return diag_error(d, ST_NOMEM, "out of memory exporting");
    for (size_t i = 0; i < nprops; i++) {
        const MetaProp *mpp = i < m->nprops ? &m->props[i] : &o->props[i - m->nprops];
        props[i] = NEW(&ex, Onnx__StringStringEntryProto, ONNX__STRING_STRING_ENTRY_PROTO__INIT);
        if (!props[i])
            return diag_error(d, ST_NOMEM, "out of memory exporting");
        props[i]->key = (char *)mpp->key;
        props[i]->value = (char *)mpp->value;
    }
    mp.n_metadata_props = nprops;
    mp.metadata_props = props;

    Onnx__GraphProto *gp = export_graph(&ex, g, false);
    if (!gp)
        return d->status ? d->status : diag_error(d, ST_NOMEM, "out of memory exporting");
    size_t nc = collect_constants(g, NULL);
    const Value **cs = arena_calloc(a, nc ? nc : 1, sizeof *cs);
    Onnx__TensorProto **tps = arena_calloc(a, nc ? nc : 1, sizeof *tps);
    size_t *tlen = arena_calloc(a, nc ? nc : 1, sizeof *tlen);
    layout->params = arena_calloc(a, nc ? nc : 1, sizeof *layout->params);
    if (!cs || !tps || !tlen || !layout->params)
        return diag_error(d, ST_NOMEM, "out of memory exporting");
    collect_constants(g, cs);

    /* sizes: graph = packed(graph without initializers) + Σ (header + tensor) */
    size_t glen = protobuf_c_message_get_packed_size(&gp->base);
    for (size_t i = 0; i < nc; i++) {
        if (!(tps[i] = export_tensor(&ex, value_onnx_name(cs[i]), cs[i]->init)))
            return diag_error(d, ST_NOMEM, "out of memory exporting");
        tlen[i] = protobuf_c_message_get_packed_size(&tps[i]->base);
        glen += pb_varint_len(((uint64_t)5 << 3) | 2) + pb_varint_len(tlen[i]) + tlen[i];
    }
    size_t mlen = protobuf_c_message_get_packed_size(&mp.base);
    size_t total = mlen + pb_varint_len(((uint64_t)7 << 3) | 2) + pb_varint_len(glen) + glen;
    uint8_t *buf = arena_alloc(a, total);
    if (!buf)
        return diag_error(d, ST_NOMEM, "out of memory exporting (%zu bytes)", total);
    size_t pos = protobuf_c_message_pack(&mp.base, buf);
    pos += ld_header(buf + pos, 7, glen);
    pos += protobuf_c_message_pack(&gp->base, buf + pos);
    for (size_t i = 0; i < nc; i++) {
        pos += ld_header(buf + pos, 5, tlen[i]);
        size_t start = pos;
        pos += protobuf_c_message_pack(&tps[i]->base, buf + pos);
        const Tensor *t = cs[i]->init;
        if (t->dtype == DT_STRING)
            continue;
        /* raw_data is the last non-empty field protobuf-c writes, so its bytes end the tensor */
        size_t off = start + tlen[i] - t->nbytes;
        if (t->nbytes && memcmp(buf + off, t->data, t->nbytes) != 0)
            return diag_error(d, ST_ERR, "internal: raw data of '%s' is not where the exporter expects it",
                              cs[i]->name);
        ExportParam *p = &layout->params[layout->nparams++];
        p->name = cs[i]->name;
        p->value = cs[i];
        p->offset = off;
        p->nbytes = t->nbytes;
    }
    if (pos != total)
        return diag_error(d, ST_ERR, "internal: exported %zu bytes, planned %zu", pos, total);
    *bytes = buf;
    *len = total;
    return ST_OK;
}

Status write_file_atomic(const char *path, const void *data, size_t len, Diag *d)
{
    char msg[1024];
    FileStatus fs = atomic_write(path, data, len, msg, sizeof msg);
    if (fs != FILE_OK)
        return diag_error(d, fs == FILE_ENOMEM ? ST_NOMEM : ST_IO, "%s: %s", path, msg);
    return ST_OK;
}

Status onnx_export_file(const Model *m, const ExportOptions *o, const char *path, Diag *d)
{
    Arena *a = arena_new();
    if (!a)
        return diag_error(d, ST_NOMEM, "out of memory");
    uint8_t *bytes;
    size_t len;
    ExportLayout layout;
    Status st = onnx_export_bytes(m, o, a, &bytes, &len, &layout, d);
    if (!st)
        st = write_file_atomic(path, bytes, len, d);
    arena_free(a);
    return st;
}
