/* dump_dot.c - `onnxtune dump --dot`: the top-level graph for Graphviz. One box per node (op, name,
 * output types), initializers and constants folded into the label of the node that reads them,
 * graph inputs and outputs as ellipses, edges labelled with shapes. Fill colours tell nodes reading
 * trainable weights from frozen ones (a legend says which). Subgraph bodies are not drawn. */
#include "dump.h"

#include <stdlib.h>
#include <string.h>

#define LABEL_MAX_CONSTS 8  /* constant inputs listed in a node's label before "+K more" */

/* A DOT string literal: quotes and backslashes escaped, newlines as \n, invalid UTF-8 as U+FFFD. */
static void dot_string(FILE *f, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_next(u + i, n - i, &cp);
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", (char)cp);
        else if (cp == '\n')
            fputs("\\n", f);
        else if (cp < 0x20 || cp == 0x7F)
            fputc(' ', f);
        else if (cp == 0xFFFD && k == 1 && u[i] >= 0x80)
            fputs("\xEF\xBF\xBD", f);
        else
            fwrite(s + i, 1, k, f);
        i += k;
    }
    fputc('"', f);
}

static void dot_buf(FILE *f, const Buf *b)
{
    dot_string(f, buf_str(b), b->len);
}

static void buf_name(Buf *b, const char *s)
{
    buf_put_clean(b, s, strlen(s));
}

static bool in_graph(const Graph *g, const Node *p)
{
    return p && p->index >= 0 && (size_t)p->index < g->nnodes && g->nodes[p->index] == p && !p->dead;
}

/* Index+1 of v among the graph's (real) inputs, 0 if it is not one. */
static size_t input_slot(const Graph *g, const Value *v)
{
    for (size_t k = 0; k < g->ninputs; k++)
        if (g->inputs[k] == v)
            return value_is_real_input(v) ? k + 1 : 0;
    return 0;
}

static void print_legend(FILE *f)
{
    fputs("  subgraph cluster_legend {\n"
          "    label=\"legend\"; style=dashed; fontsize=10;\n"
          "    legend_trainable [label=\"reads trainable weights\", fillcolor=lightsalmon];\n"
          "    legend_frozen [label=\"reads frozen weights\", fillcolor=lightgrey];\n"
          "    legend_plain [label=\"no weights\", fillcolor=white];\n"
          "    legend_unknown [label=\"unknown op\", fillcolor=white, color=red, penwidth=2];\n"
          "    legend_io [shape=ellipse, label=\"graph input / output\", fillcolor=white];\n"
          "    legend_trainable -> legend_frozen -> legend_plain -> legend_unknown -> legend_io "
          "[style=invis];\n"
          "  }\n", f);
}

static void print_node(FILE *f, const DumpInfo *info, const Node *n, size_t i, Buf *b)
{
    bool weights = false, trainable = false;
    size_t nconst = 0;
    buf_clear(b);
    buf_op(b, n->domain, n->op_type);
    buf_printf(b, "\n");
    buf_name(b, n->name);
    for (int k = 0; k < n->noutputs; k++) {
        const Value *o = n->outputs[k];
        buf_printf(b, "\n-> ");
        if (n->noutputs > 1) {
            buf_name(b, o->name);
            buf_printf(b, ": ");
        }
        buf_value_type(b, o);
    }
    for (int k = 0; k < n->ninputs; k++) {
        const Value *v = n->inputs[k];
        if (!v)
            continue;
        ValueRole r = value_role(v);
        bool undefined = r == VR_ACTIVATION && !in_graph(info->m->graph, v->producer);
        if (r != VR_PARAM && r != VR_INIT && r != VR_CONST && !undefined)
            continue;
        if (v->is_initializer) {
            weights = true;
            trainable |= v->trainable;
        }
        if (nconst++ >= LABEL_MAX_CONSTS)
            continue;
        buf_printf(b, "\n");
        buf_name(b, v->name);
        buf_printf(b, " ");
        buf_shape(b, v->init ? &v->init->shape : &v->shape);
        if (undefined)
            buf_printf(b, " (undefined)");
        else if (r == VR_CONST)
            buf_printf(b, " (const)");
    }
    if (nconst > LABEL_MAX_CONSTS)
        buf_printf(b, "\n+%zu more", nconst - LABEL_MAX_CONSTS);
    if (info->node_params[i])
        buf_printf(b, "\nparams %zu", info->node_params[i]);
    fprintf(f, "  n%zu [label=", i);
    dot_buf(f, b);
    fprintf(f, ", fillcolor=%s%s];\n", trainable ? "lightsalmon" : weights ? "lightgrey" : "white",
            n->rule ? "" : ", color=red, penwidth=2");
}

static void print_edge_label(FILE *f, const Value *v, Buf *b)
{
    buf_clear(b);
    buf_shape(b, &v->shape);
    fputs(" [label=", f);
    dot_buf(f, b);
    fputs("];\n", f);
}

void dump_dot(FILE *f, const DumpInfo *info, const DumpOptions *opt)
{
    (void)opt;
    const Graph *g = info->m->graph;
    Buf b = {0};
    fputs("digraph ", f);
    buf_name(&b, g->name[0] ? g->name : "model");
    dot_buf(f, &b);
    fputs(" {\n"
          "  graph [rankdir=TB, fontname=\"Helvetica\"];\n"
          "  node [shape=box, style=filled, fillcolor=white, fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9];\n", f);
    print_legend(f);
    for (size_t k = 0; k < g->ninputs; k++) {
        const Value *v = g->inputs[k];
        if (!value_is_real_input(v))
            continue;
        buf_clear(&b);
        buf_name(&b, v->name);
        buf_printf(&b, "\n");
        buf_value_type(&b, v);
        fprintf(f, "  i%zu [shape=ellipse, label=", k);
        dot_buf(f, &b);
        fputs("];\n", f);
    }
    for (size_t i = 0; i < g->nnodes; i++)
        print_node(f, info, g->nodes[i], i, &b);
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        for (int k = 0; k < n->ninputs; k++) {
            const Value *v = n->inputs[k];
            size_t slot;
            if (!v)
                continue;
            if (in_graph(g, v->producer))
                fprintf(f, "  n%d -> n%zu", v->producer->index, i);
            else if ((slot = input_slot(g, v)))
                fprintf(f, "  i%zu -> n%zu", slot - 1, i);
            else
                continue;
            print_edge_label(f, v, &b);
        }
    }
    for (size_t k = 0; k < g->noutputs; k++) {
        const Value *v = g->outputs[k];
        size_t slot;
        buf_clear(&b);
        buf_name(&b, v->name);
        buf_printf(&b, "\n");
        buf_value_type(&b, v);
        if (value_is_const(v))
            buf_printf(&b, " (const)");
        fprintf(f, "  o%zu [shape=ellipse, label=", k);
        dot_buf(f, &b);
        fputs("];\n", f);
        if (in_graph(g, v->producer))
            fprintf(f, "  n%d -> o%zu", v->producer->index, k);
        else if ((slot = input_slot(g, v)))
            fprintf(f, "  i%zu -> o%zu", slot - 1, k);
        else
            continue;
        print_edge_label(f, v, &b);
    }
    fputs("}\n", f);
    buf_free(&b);
}
