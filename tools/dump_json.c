/* dump_json.c - `onnxtune dump --json`: the dump as one JSON document (RFC 8259), one array element
 * per line, written with common.h's JSON writer. Any bytes in names become valid JSON: control
 * characters are escaped and invalid UTF-8 becomes U+FFFD. Dims are numbers, strings (symbolic) or null
 * (unknown); an unknown rank is null; so is a non-finite number (an attribute of inf, say). */
#include "dump.h"

#include <math.h>
#include <string.h>

void json_string(FILE *f, const char *s, size_t n)
{
    Buf b = {0};
    json_put_string(&b, s, n);
    fwrite(buf_str(&b), 1, b.len, f);
    buf_free(&b);
}

static void json_str(FILE *f, const char *s)
{
    if (s)
        json_string(f, s, strlen(s));
    else
        fputs("null", f);
}

/* Integers as integers; non-finite values as null (common.h's rule for all our JSON). */
static void json_number(FILE *f, double v)
{
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0) {
        fprintf(f, "%.0f", v);
        return;
    }
    Buf b = {0};
    json_put_g(&b, v, 9);
    fputs(buf_str(&b), f);
    buf_free(&b);
}

static void json_shape(FILE *f, const Shape *s)
{
    if (s->rank < 0) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (int i = 0; i < s->rank && i < IR_MAX_RANK; i++) {
        if (i)
            fputc(',', f);
        if (s->dim[i] >= 0)
            fprintf(f, "%lld", (long long)s->dim[i]);
        else if (s->sym[i] && s->sym[i][0])
            json_str(f, s->sym[i]);
        else
            fputs("null", f);
    }
    fputc(']', f);
}

static const char *const kind_names[] = {"tensor", "sequence", "map", "optional", "sparse_tensor", "unknown"};
static const char *const role_names[] = {"activation", "input", "param", "init", "const"};

static void json_value(FILE *f, const Value *v)
{
    if (!v) {
        fputs("null", f);
        return;
    }
    fputs("{\"name\":", f);
    json_str(f, v->name);
    fprintf(f, ",\"kind\":\"%s\",\"dtype\":", (unsigned)v->kind < 6 ? kind_names[v->kind] : "unknown");
    if (v->dtype == DT_UNDEFINED)
        fputs("null", f);
    else
        json_str(f, dtype_name(v->dtype));
    fputs(",\"shape\":", f);
    json_shape(f, &v->shape);
    fprintf(f, ",\"role\":\"%s\"}", role_names[value_role(v)]);
}

static void json_tensor(FILE *f, const Tensor *t)
{
    if (!t) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{\"tensor\":{\"dtype\":\"%s\",\"shape\":", dtype_name(t->dtype));
    json_shape(f, &t->shape);
    fputs("}}", f);
}

static void json_graph(FILE *f, const Graph *g)
{
    if (!g) {
        fputs("null", f);
        return;
    }
    fputs("{\"graph\":{\"name\":", f);
    json_str(f, g->name);
    fprintf(f, ",\"nodes\":%zu}}", g->nnodes);
}

static void json_attr_value(FILE *f, const Attr *a)
{
    switch (a->type) {
    case AT_FLOAT: json_number(f, a->f); return;
    case AT_INT: fprintf(f, "%lld", (long long)a->i); return;
    case AT_STRING:
        if (a->s)
            json_string(f, a->s, a->slen);
        else
            fputs("\"\"", f);
        return;
    case AT_TENSOR: json_tensor(f, a->t); return;
    case AT_GRAPH: json_graph(f, a->g); return;
    case AT_SPARSE_TENSOR: fputs("\"<sparse tensor>\"", f); return;
    case AT_TYPE_PROTO: fputs("\"<type>\"", f); return;
    case AT_FLOATS: case AT_INTS: case AT_STRINGS: case AT_TENSORS: case AT_GRAPHS:
    case AT_SPARSE_TENSORS: case AT_TYPE_PROTOS:
        break;
    default:
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (size_t i = 0; i < a->n; i++) {
        if (i)
            fputc(',', f);
        switch (a->type) {
        case AT_FLOATS: json_number(f, a->floats ? a->floats[i] : 0.0); break;
        case AT_INTS: fprintf(f, "%lld", a->ints ? (long long)a->ints[i] : 0LL); break;
        case AT_STRINGS: json_str(f, a->strings && a->strings[i] ? a->strings[i] : ""); break;
        case AT_TENSORS: json_tensor(f, a->tensors ? a->tensors[i] : NULL); break;
        case AT_GRAPHS: json_graph(f, a->graphs ? a->graphs[i] : NULL); break;
        case AT_SPARSE_TENSORS: fputs("\"<sparse tensor>\"", f); break;
        default: fputs("\"<type>\"", f); break;
        }
    }
    fputc(']', f);
}

static void json_initializers(FILE *f, const Graph *g, bool *first)
{
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (!v->is_initializer)
            continue;
        fputs(*first ? "\n    " : ",\n    ", f);
        *first = false;
        fputs("{\"name\":", f);
        json_str(f, v->name);
        DType t = v->init ? v->init->dtype : v->dtype;
        const Shape *s = v->init ? &v->init->shape : &v->shape;
        fprintf(f, ",\"dtype\":\"%s\",\"shape\":", dtype_name(t));
        json_shape(f, s);
        fprintf(f, ",\"numel\":%zu,\"bytes\":%zu,\"param\":%s,\"trainable\":%s,\"graph\":",
                v->init ? v->init->numel : 0, v->init ? v->init->nbytes : 0,
                value_role(v) == VR_PARAM ? "true" : "false", v->trainable ? "true" : "false");
        json_str(f, g->name);
        if (v->onnx_name) {
            fputs(",\"onnx_name\":", f);
            json_str(f, v->onnx_name);
            fprintf(f, ",\"transposed\":%s", v->transposed ? "true" : "false");
        }
        fputc('}', f);
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        for (int k = 0; k < n->nattrs; k++) {
            const Attr *a = &n->attrs[k];
            if (a->type == AT_GRAPH && a->g)
                json_initializers(f, a->g, first);
            for (size_t j = 0; a->type == AT_GRAPHS && j < a->n; j++)
                if (a->graphs[j])
                    json_initializers(f, a->graphs[j], first);
        }
    }
}

static void json_node(FILE *f, const DumpInfo *info, const Node *n, size_t i)
{
    fprintf(f, "{\"index\":%zu,\"name\":", i);
    json_str(f, n->name);
    fputs(",\"op\":", f);
    json_str(f, n->op_type);
    fputs(",\"domain\":", f);
    json_str(f, n->domain);
    fprintf(f, ",\"opset\":%d,\"known\":%s,\"inputs\":[", n->opset, n->rule ? "true" : "false");
    for (int k = 0; k < n->ninputs; k++) {
        if (k)
            fputc(',', f);
        json_value(f, n->inputs[k]);
    }
    fputs("],\"outputs\":[", f);
    for (int k = 0; k < n->noutputs; k++) {
        if (k)
            fputc(',', f);
        json_value(f, n->outputs[k]);
    }
    fputs("],\"attrs\":{", f);
    for (int k = 0; k < n->nattrs; k++) {
        if (k)
            fputc(',', f);
        json_str(f, n->attrs[k].name);
        fputc(':', f);
        json_attr_value(f, &n->attrs[k]);
    }
    fprintf(f, "},\"params\":%zu,\"flops\":", info->node_params[i]);
    if (info->node_flops[i] > 0)
        json_number(f, info->node_flops[i]);
    else
        fputs("null", f);
    fputc('}', f);
}

static void json_values(FILE *f, const char *key, Value *const *vs, size_t n, bool real_inputs_only)
{
    fprintf(f, ",\n  \"%s\": [", key);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (real_inputs_only && !value_is_real_input(vs[i]))
            continue;
        fputs(first ? "\n    " : ",\n    ", f);
        first = false;
        json_value(f, vs[i]);
    }
    fputs(first ? "]" : "\n  ]", f);
}

void dump_json(FILE *f, const DumpInfo *info, const DumpOptions *opt)
{
    const Model *m = info->m;
    const Graph *g = m->graph;
    Buf b = {0};
    fputs("{\n  \"file\": ", f);
    json_str(f, info->path);
    fprintf(f, ",\n  \"ir_version\": %lld,\n  \"producer\": {\"name\": ", (long long)m->ir_version);
    json_str(f, m->producer_name ? m->producer_name : "");
    fputs(", \"version\": ", f);
    json_str(f, m->producer_version ? m->producer_version : "");
    fprintf(f, "},\n  \"model_version\": %lld,\n  \"domain\": ", (long long)m->model_version);
    json_str(f, m->domain ? m->domain : "");
    fputs(",\n  \"graph\": ", f);
    json_str(f, g->name);
    fputs(",\n  \"opsets\": [", f);
    for (size_t i = 0; i < m->nopsets; i++) {
        fputs(i ? ", {\"domain\": " : "{\"domain\": ", f);
        json_str(f, m->opsets[i].domain[0] ? m->opsets[i].domain : "ai.onnx");
        fprintf(f, ", \"version\": %lld}", (long long)m->opsets[i].version);
    }
    fputc(']', f);
    json_values(f, "inputs", g->inputs, g->ninputs, true);
    json_values(f, "outputs", g->outputs, g->noutputs, false);
    fputs(",\n  \"initializers\": [", f);
    bool first = true;
    json_initializers(f, g, &first);
    fputs(first ? "]" : "\n  ]", f);
    fprintf(f, ",\n  \"params\": %zu,\n  \"param_bytes\": %zu,\n  \"trainable_params\": %zu,\n"
               "  \"initializer_count\": %zu,\n  \"initializer_bytes\": %zu,\n  \"flops\": ",
            info->params, info->param_bytes, info->trainable, info->ninits, info->init_bytes);
    if (g->nnodes && info->flops_missing == g->nnodes)
        fputs("null", f);  /* no estimate at all: unknown, not zero */
    else
        json_number(f, info->flops);
    fprintf(f, ",\n  \"flops_missing_nodes\": %zu,\n  \"op_histogram\": {", info->flops_missing);
    for (size_t i = 0; i < info->nhist; i++) {
        buf_clear(&b);
        if (info->hist[i].domain[0])
            buf_printf(&b, "%s.", info->hist[i].domain);
        buf_printf(&b, "%s", info->hist[i].op);
        fputs(i ? ", " : "", f);
        json_string(f, buf_str(&b), b.len);
        fprintf(f, ": %zu", info->hist[i].count);
    }
    fputs("},\n  \"unknown_ops\": [", f);
    bool firstu = true;
    for (size_t i = 0; i < info->nhist; i++) {
        if (info->hist[i].known)
            continue;
        buf_clear(&b);
        if (info->hist[i].domain[0])
            buf_printf(&b, "%s.", info->hist[i].domain);
        buf_printf(&b, "%s", info->hist[i].op);
        fputs(firstu ? "{\"op\": " : ", {\"op\": ", f);
        firstu = false;
        json_string(f, buf_str(&b), b.len);
        fprintf(f, ", \"count\": %zu}", info->hist[i].count);
    }
    fputs("],\n  \"nodes\": [", f);
    if (!opt->summary_only)
        for (size_t i = 0; i < g->nnodes; i++) {
            fputs(i ? ",\n    " : "\n    ", f);
            json_node(f, info, g->nodes[i], i);
        }
    fputs(g->nnodes && !opt->summary_only ? "\n  ]\n}\n" : "]\n}\n", f);
    buf_free(&b);
}
