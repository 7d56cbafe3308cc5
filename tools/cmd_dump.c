/* cmd_dump.c - `onnxtune dump MODEL`: import, canonicalise and infer shapes (folding constants,
 * tolerating unknown ops), then print the model as text, JSON or Graphviz (tools/dump_*.c).
 * It never changes the file; errors are one line "onnxtune dump: FILE: message". */
#include "tools.h"
#include "codegen.h"
#include "dump.h"
#include "importer.h"

#include <errno.h>
#include <string.h>

static CliOption dump_opts[] = {
    {"--json", NULL, NULL, "print one JSON document instead of text", false, NULL},
    {"--dot", NULL, NULL, "print a Graphviz graph (render: onnxtune dump --dot M | dot -Tsvg > m.svg)", false, NULL},
    {"--batch", "-b", "N", "give unknown leading dims of the graph inputs the size N", false, NULL},
    {"--summary", NULL, NULL, "only the summary: no node listing (text and JSON)", false, NULL},
    {"--no-fold", NULL, NULL, "do not fold constants (show the graph as imported and canonicalised)", false, NULL},
    {"--output", "-o", "FILE", "write to FILE instead of standard output", false, NULL},
    {0},
};

static CliCommand dump_cmd = {
    "dump", "MODEL",
    "Show an ONNX model: summary (producer, opsets, inputs, outputs, parameters, FLOPs, op histogram)\n"
    "and every node with its inputs, outputs, shapes and attributes. Unknown ops are listed, not fatal.\n"
    "The training options of `onnxtune compile` (--train GLOB, --freeze GLOB, --train-from, --train-bias,\n"
    "--bn-train, --head, --cut, --lora GLOB, ...) show what would train: parameters marked trainable, --dot\n"
    "in colour; with --lora, a list of the adapters and the trainable count.",
    1, 1, dump_opts,
};

/* With the training options: where the frozen prefix a training program computes once per sample would
 * end (ir/prefix.c), what its features cost a sample, or why there is none. */
static void print_prefix(FILE *f, Graph *g)
{
    const Value *x = NULL;
    size_t nx = 0;
    for (size_t i = 0; i < g->ninputs; i++)
        if (!g->inputs[i]->init) {
            x = g->inputs[i];
            nx++;
        }
    PrefixInfo pi;
    Diag d;
    diag_init(&d, NULL);
    if (nx != 1 || prefix_find(g, x, &pi, &d) != ST_OK) {
        fprintf(f, "frozen prefix: none (training programs take one input)\n");
        return;
    }
    const Value *b = pi.boundary ? pi.boundary : pi.boundary_rejected;
    char shape[128], flops[96] = "";
    if (pi.flops > 0)
        snprintf(flops, sizeof flops, ", %.4g FLOPs a sample to compute (%.3g per byte it writes)", pi.flops,
                 pi.act_bytes > 0 ? pi.flops / pi.act_bytes : 0.0);
    if (b)
        fprintf(f, "frozen prefix: %zu nodes, ends at '%s' %s %s: features of %zu bytes a sample%s\n", pi.nodes,
                b->name, dtype_name(b->dtype), shape_str(&b->shape, shape, sizeof shape), pi.sample_bytes, flops);
    if (pi.boundary)
        fprintf(f, "  a training program computes them once per sample and reuses them (PROG --feature-cache)\n");
    else
        fprintf(f, "%sno feature cache: %s\n", b ? "  " : "frozen prefix: none: ",
                pi.why_not ? pi.why_not : "nothing before the first trainable node depends on the input alone");
}

/* With --lora: the adapters, and what trains in all. */
static void print_lora(FILE *f, const Graph *g, const LoraOptions *o, const LoraResult *r)
{
    if (!r->n)
        return;
    size_t elems = 0;
    for (size_t i = 0; i < r->n; i++)
        for (int k = 0; k < 2; k++) {
            const Value *v = graph_find_local(g, k ? r->adapters[i].b : r->adapters[i].a);
            elems += v && v->init ? v->init->numel : 0;
        }
    FreezeSummary s;
    freeze_summary(g, &s);
    size_t all = s.trainable_elems + s.frozen_elems;
    fprintf(f, "LoRA: %zu adapters (r %lld, alpha %g, scaling %g, dropout %g), %zu values; trainable: %zu of %zu "
            "values (%.3g%%)\n", r->n, (long long)o->rank, o->alpha, o->alpha / (double)o->rank, o->dropout, elems,
            s.trainable_elems, all, 100.0 * (double)s.trainable_elems / (double)(all ? all : 1));
    for (size_t i = 0; i < r->n; i++) {
        const Value *a = graph_find_local(g, r->adapters[i].a), *b = graph_find_local(g, r->adapters[i].b);
        char as[128] = "?", bs[128] = "?";
        fprintf(f, "  %s: .lora_A %s, .lora_B %s\n", r->adapters[i].weight, a ? shape_str(&a->shape, as, sizeof as) : as,
                b ? shape_str(&b->shape, bs, sizeof bs) : bs);
    }
}

/* Print the diagnostic as diag_print would ("FILE: message"), but with control bytes in names
 * escaped so the error stays one line whatever the model's names hold. */
static int fail(const Diag *d)
{
    Buf b = {0};
    if (d->file) {
        buf_put_clean(&b, d->file, strlen(d->file));
        buf_printf(&b, ": ");
    }
    buf_put_clean(&b, d->msg, strlen(d->msg));
    fprintf(stderr, "onnxtune dump: %s\n", buf_str(&b));
    buf_free(&b);
    return d->status == ST_OK ? 1 : status_exit_code(d->status);
}

int cmd_dump(int argc, char **argv)
{
    char *args[1];
    int nargs;
    /* the training options (--train, --freeze, --train-from, --train-bias, --bn-train, --head, ...)
     * show what a training program would train, as `onnxtune compile` would see them */
    static TrainArgs ta;
    static TrainCompileOptions to;
    if (!tools_take_train_options("dump", &argc, argv, &ta, false) ||
        (ta.argc && !tools_train_compile_options("dump", &ta, &to)))
        return 2;
    int rc = cli_parse(&dump_cmd, argc, argv, args, &nargs);
    if (rc >= 0)
        return rc;
    const char *path = args[0];
    bool json = cli_option(&dump_cmd, "--json")->given, dot = cli_option(&dump_cmd, "--dot")->given;
    if (json && dot)
        return cli_usage_error(&dump_cmd, "choose one of --json and --dot");
    ShapeOptions so = {.batch = 0, .fold = !cli_option(&dump_cmd, "--no-fold")->given,
                       .allow_unknown_ops = true};
    const CliOption *batch = cli_option(&dump_cmd, "--batch");
    if (batch->given && !cli_int(&dump_cmd, batch, 1, INT32_MAX, &so.batch))
        return 2;
    DumpOptions dopt = {.summary_only = cli_option(&dump_cmd, "--summary")->given};

    Diag d;
    diag_init(&d, path);
    Model *m = NULL;
    if (onnx_import_file(path, &m, &d) != ST_OK || !m) {
        if (d.status == ST_OK)
            diag_error(&d, ST_ERR, "import failed");
        return fail(&d);
    }
    DumpInfo info;
    LoraResult lora = {0};
    so.keep_params = ta.argc > 0;
    if (pass_canon(m, &d) != ST_OK || pass_torch_names(m, &d) != ST_OK || pass_shapes(m, &so, &d) != ST_OK ||
        (ta.argc && (pass_freeze(m, &to.freeze, &d) != ST_OK || pass_head(m, &to.head, &d) != ST_OK ||
                     pass_lora(m, &to.lora, &lora, &d) != ST_OK)) ||
        dump_info(m, path, &info, &d) != ST_OK) {
        rc = fail(&d);
        model_free(m);
        return rc;
    }

    const CliOption *output = cli_option(&dump_cmd, "--output");
    FILE *f = stdout;
    if (output->given && strcmp(output->value, "-") != 0) {
        f = fopen(output->value, "w");
        if (!f) {
            fprintf(stderr, "onnxtune dump: %s: cannot open for writing: %s\n", output->value,
                    strerror(errno));
            model_free(m);
            return 1;
        }
    }
    if (json)
        dump_json(f, &info, &dopt);
    else if (dot)
        dump_dot(f, &info, &dopt);
    else
        dump_text(f, &info, &dopt);
    if (ta.argc && !json && !dot) {
        print_lora(f, m->graph, &to.lora, &lora);
        print_prefix(f, m->graph);
    }
    rc = 0;
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "onnxtune dump: %s: write error: %s\n",
                f == stdout ? "standard output" : output->value, strerror(errno));
        rc = 1;
    }
    if (f != stdout && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "onnxtune dump: %s: write error: %s\n", output->value, strerror(errno));
        rc = 1;
    }
    model_free(m);
    return rc;
}
