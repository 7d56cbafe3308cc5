/* dump_text.c - the default `onnxtune dump` output: a summary of the model, then one entry per node
 * (inputs -> outputs with types and shapes, attributes, parameters, FLOPs), wrapped for a 120-column
 * terminal. Names are printed as they are, with control bytes and broken UTF-8 shown as \xNN. */
#include "dump.h"

#include <string.h>

#define TEXT_WIDTH 120
#define LIST_MAX 16         /* longer attribute lists are cut, with their length shown */
#define STRING_MAX 80       /* longer attribute strings are cut */

/* A line of items separated by `sep`, broken before an item that would pass TEXT_WIDTH. */
typedef struct Wrap {
    FILE *f;
    size_t col, indent;
    bool empty;
} Wrap;

static void wrap_begin(Wrap *w, FILE *f, const char *head, size_t indent)
{
    w->f = f;
    w->indent = indent;
    w->empty = true;
    fputs(head, f);
    w->col = text_width(head);
    for (; w->col < indent; w->col++)
        fputc(' ', f);
}

static void wrap_item(Wrap *w, const char *sep, const char *item)
{
    size_t wsep = w->empty ? 0 : strlen(sep), wit = text_width(item);
    if (!w->empty && w->col + wsep + wit > TEXT_WIDTH) {
        fprintf(w->f, "%.*s\n%*s", (int)strcspn(sep, " "), sep, (int)w->indent, "");
        w->col = w->indent;
    } else if (!w->empty) {
        fputs(sep, w->f);
        w->col += wsep;
    }
    fputs(item, w->f);
    w->col += wit;
    w->empty = false;
}

static void wrap_end(Wrap *w)
{
    fputc('\n', w->f);
}

static void buf_name(Buf *b, const char *s)
{
    buf_put_clean(b, s, strlen(s));
}

static void buf_value(Buf *b, const Value *v, bool mark_inputs)
{
    if (!v) {
        buf_printf(b, "(none)");
        return;
    }
    buf_name(b, v->name);
    buf_printf(b, ": ");
    buf_value_type(b, v);
    switch (value_role(v)) {
    case VR_PARAM:
        buf_printf(b, v->trainable ? " (param, trainable" : " (param");
        if (v->onnx_name)
            buf_printf(b, "; ONNX %s%s", v->onnx_name, v->transposed ? ", transposed" : "");
        buf_printf(b, ")");
        break;
    case VR_INIT: buf_printf(b, " (init)"); break;
    case VR_CONST: buf_printf(b, " (const)"); break;
    case VR_INPUT: buf_printf(b, mark_inputs ? " (input)" : ""); break;
    case VR_ACTIVATION: break;
    }
}

static void buf_tensor(Buf *b, const Tensor *t)
{
    if (!t) {
        buf_printf(b, "<tensor ?>");
        return;
    }
    buf_printf(b, "<%s ", dtype_name(t->dtype));
    buf_shape(b, &t->shape);
    buf_printf(b, ">");
}

static void buf_graph(Buf *b, const Graph *g)
{
    if (!g) {
        buf_printf(b, "<graph ?>");
        return;
    }
    buf_printf(b, "<graph ");
    buf_name(b, g->name);
    buf_printf(b, ": %zu node%s>", g->nnodes, g->nnodes == 1 ? "" : "s");
}

static void buf_string(Buf *b, const char *s, size_t n)
{
    buf_printf(b, "\"");
    buf_put_clean(b, s, n > STRING_MAX ? STRING_MAX - 3 : n);
    buf_printf(b, n > STRING_MAX ? "...\"" : "\"");
}

static void buf_attr(Buf *b, const Attr *a)
{
    buf_name(b, a->name);
    buf_printf(b, "=");
    size_t shown = a->n < LIST_MAX ? a->n : LIST_MAX;
    switch (a->type) {
    case AT_FLOAT: buf_printf(b, "%g", (double)a->f); return;
    case AT_INT: buf_printf(b, "%lld", (long long)a->i); return;
    case AT_STRING: buf_string(b, a->s ? a->s : "", a->s ? a->slen : 0); return;
    case AT_TENSOR: buf_tensor(b, a->t); return;
    case AT_GRAPH: buf_graph(b, a->g); return;
    case AT_SPARSE_TENSOR: buf_printf(b, "<sparse tensor>"); return;
    case AT_TYPE_PROTO: buf_printf(b, "<type>"); return;
    case AT_FLOATS: case AT_INTS: case AT_STRINGS: case AT_TENSORS: case AT_GRAPHS:
    case AT_SPARSE_TENSORS: case AT_TYPE_PROTOS:
        break;
    default:
        buf_printf(b, "?");
        return;
    }
    buf_printf(b, "[");
    for (size_t i = 0; i < shown; i++) {
        if (i)
            buf_printf(b, ",");
        switch (a->type) {
        case AT_FLOATS: buf_printf(b, "%g", a->floats ? (double)a->floats[i] : 0.0); break;
        case AT_INTS: buf_printf(b, "%lld", a->ints ? (long long)a->ints[i] : 0LL); break;
        case AT_STRINGS: {
            const char *s = a->strings && a->strings[i] ? a->strings[i] : "";
            buf_string(b, s, strlen(s));
            break;
        }
        case AT_TENSORS: buf_tensor(b, a->tensors ? a->tensors[i] : NULL); break;
        case AT_GRAPHS: buf_graph(b, a->graphs ? a->graphs[i] : NULL); break;
        case AT_SPARSE_TENSORS: buf_printf(b, "<sparse tensor>"); break;
        default: buf_printf(b, "<type>"); break;
        }
    }
    buf_printf(b, a->n > shown ? ",...] (%zu values)" : "]", a->n);
}

static void print_values(FILE *f, const char *head, Value *const *vs, size_t n, Buf *b)
{
    Wrap w;
    wrap_begin(&w, f, head, 12);
    for (size_t i = 0; i < n; i++) {
        buf_clear(b);
        buf_value(b, vs[i], true);
        wrap_item(&w, ", ", buf_str(b));
    }
    if (n == 0)
        wrap_item(&w, "", "(none)");
    wrap_end(&w);
}

static void print_summary(FILE *f, const DumpInfo *info, Buf *b)
{
    const Model *m = info->m;
    const Graph *g = m->graph;
    buf_clear(b);
    buf_name(b, info->path);
    fprintf(f, "model: %s\n", buf_str(b));
    buf_clear(b);
    buf_name(b, m->producer_name ? m->producer_name : "");
    if (m->producer_version && m->producer_version[0]) {
        buf_printf(b, b->len ? " " : "");
        buf_name(b, m->producer_version);
    }
    fprintf(f, "producer: %s\n", b->len ? buf_str(b) : "(none)");
    fprintf(f, "ir_version: %lld\n", (long long)m->ir_version);
    if (m->model_version)
        fprintf(f, "model_version: %lld\n", (long long)m->model_version);
    if (m->domain && m->domain[0]) {
        buf_clear(b);
        buf_name(b, m->domain);
        fprintf(f, "domain: %s\n", buf_str(b));
    }
    Wrap w;
    wrap_begin(&w, f, "opsets: ", 8);
    for (size_t i = 0; i < m->nopsets; i++) {
        buf_clear(b);
        buf_name(b, m->opsets[i].domain[0] ? m->opsets[i].domain : "ai.onnx");
        buf_printf(b, " %lld", (long long)m->opsets[i].version);
        wrap_item(&w, ", ", buf_str(b));
    }
    if (m->nopsets == 0)
        wrap_item(&w, "", "(none)");
    wrap_end(&w);

    fprintf(f, "inputs (%zu):\n", info->ninputs);
    for (size_t i = 0; i < g->ninputs; i++) {
        if (!value_is_real_input(g->inputs[i]))
            continue;
        buf_clear(b);
        buf_value(b, g->inputs[i], false);
        fprintf(f, "  %s\n", buf_str(b));
    }
    fprintf(f, "outputs (%zu):\n", g->noutputs);
    for (size_t i = 0; i < g->noutputs; i++) {
        buf_clear(b);
        buf_value(b, g->outputs[i], false);
        fprintf(f, "  %s\n", buf_str(b));
    }

    buf_clear(b);
    if (info->params >= 10000) {
        buf_human(b, (double)info->params);
        buf_printf(b, ", ");
    }
    buf_human_bytes(b, (double)info->param_bytes);
    fprintf(f, "parameters: %zu (%s) in float initializers", info->params, buf_str(b));
    if (info->trainable)
        fprintf(f, ", %zu trainable", info->trainable);
    buf_clear(b);
    buf_human_bytes(b, (double)info->init_bytes);
    fprintf(f, "\ninitializers: %zu, %zu bytes (%s)\n", info->ninits, info->init_bytes, buf_str(b));

    size_t nn = g->nnodes;
    bool symbolic = false;  /* estimates need static shapes: say how to get them */
    for (size_t i = 0; i < g->ninputs; i++)
        if (value_is_real_input(g->inputs[i]) && g->inputs[i]->kind == VK_TENSOR &&
            !shape_is_static(&g->inputs[i]->shape))
            symbolic = true;
    const char *hint = symbolic && info->flops_missing ? "; inputs have unknown dims: try --batch N" : "";
    if (info->flops_missing == nn) {
        fprintf(f, "FLOPs: - (no estimate for any of %zu node%s%s)\n", nn, nn == 1 ? "" : "s", hint);
    } else {
        buf_clear(b);
        if (info->flops >= 1000) {
            buf_printf(b, " (");
            buf_human(b, info->flops);
            buf_printf(b, ")");
        }
        fprintf(f, "FLOPs: %.0f%s total, estimated for %zu of %zu nodes%s\n", info->flops, buf_str(b),
                nn - info->flops_missing, nn, hint);
    }
    fprintf(f, "nodes: %zu, %zu op type%s\n", nn, info->nhist, info->nhist == 1 ? "" : "s");
    fprintf(f, "op histogram:\n");
    size_t width = 0;
    for (size_t i = 0; i < info->nhist; i++) {
        buf_clear(b);
        buf_op(b, info->hist[i].domain, info->hist[i].op);
        if (text_width(buf_str(b)) > width)
            width = text_width(buf_str(b));
    }
    for (size_t i = 0; i < info->nhist; i++) {
        buf_clear(b);
        buf_op(b, info->hist[i].domain, info->hist[i].op);
        fprintf(f, "  %s:%*s %zu%s\n", buf_str(b), (int)(width - text_width(buf_str(b))), "",
                info->hist[i].count, info->hist[i].known ? "" : "  (unknown op)");
    }
    if (info->unknown_nodes) {
        wrap_begin(&w, f, "", 0);
        buf_clear(b);
        buf_printf(b, "unknown ops: %zu node%s of %zu op type%s without a rule (shapes after them may be "
                   "unknown):", info->unknown_nodes, info->unknown_nodes == 1 ? "" : "s",
                   info->unknown_kinds, info->unknown_kinds == 1 ? "" : "s");
        wrap_item(&w, "", buf_str(b));
        const char *sep = " ";
        for (size_t i = 0; i < info->nhist; i++) {
            if (info->hist[i].known)
                continue;
            buf_clear(b);
            buf_op(b, info->hist[i].domain, info->hist[i].op);
            wrap_item(&w, sep, buf_str(b));
            sep = ", ";
        }
        wrap_end(&w);
    }
}

static void print_node(FILE *f, const DumpInfo *info, const Node *n, size_t i, Buf *b)
{
    buf_clear(b);
    buf_printf(b, "#%zu ", i);
    buf_op(b, n->domain, n->op_type);
    buf_printf(b, "  ");
    buf_name(b, n->name);
    if (!n->rule)
        buf_printf(b, "  (unknown op)");
    buf_printf(b, "  params: ");
    if (info->node_params[i])
        buf_printf(b, "%zu", info->node_params[i]);
    else
        buf_printf(b, "-");
    buf_printf(b, "  flops: ");
    if (info->node_flops[i] > 0)
        buf_human(b, info->node_flops[i]);
    else
        buf_printf(b, "-");
    fprintf(f, "%s\n", buf_str(b));
    print_values(f, "     in:  ", n->inputs, (size_t)n->ninputs, b);
    print_values(f, "     out: ", n->outputs, (size_t)n->noutputs, b);
    if (n->nattrs) {
        Wrap w;
        wrap_begin(&w, f, "     attrs: ", 12);
        for (int k = 0; k < n->nattrs; k++) {
            buf_clear(b);
            buf_attr(b, &n->attrs[k]);
            wrap_item(&w, " ", buf_str(b));
        }
        wrap_end(&w);
    }
}

void dump_text(FILE *f, const DumpInfo *info, const DumpOptions *opt)
{
    Buf b = {0};
    print_summary(f, info, &b);
    if (!opt->summary_only) {
        const Graph *g = info->m->graph;
        fprintf(f, "\nnodes:\n");
        for (size_t i = 0; i < g->nnodes; i++)
            print_node(f, info, g->nodes[i], i, &b);
    }
    buf_free(&b);
}
