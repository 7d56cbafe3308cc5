/* driver.c - from a model file to a program: import, canonicalise, fix the input shapes, infer,
 * find the batch dims (by inferring at two batch sizes), generate C, run the C compiler.
 * It holds no op knowledge and prints nothing except the one-line notes of CompileOptions.log. */
#include "codegen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static Status apply_shape(Value *v, const InputShape *s, Diag *d)
{
    char want[128], got[128];
    if (s->dtype != DT_UNDEFINED && v->dtype != DT_UNDEFINED && s->dtype != v->dtype)
        return diag_error(d, ST_SHAPE, "input '%s' is %s in the model, but %s was given", v->name,
                          dtype_name(v->dtype), dtype_name(s->dtype));
    bool ok = v->shape.rank < 0 || v->shape.rank == s->shape.rank;
    for (int i = 0; ok && i < v->shape.rank; i++)
        ok = v->shape.dim[i] < 0 || v->shape.dim[i] == s->shape.dim[i];
    if (!ok)
        return diag_error(d, ST_SHAPE, "input '%s' has shape %s in the model, but %s was given", v->name,
                          shape_str(&v->shape, want, sizeof want), shape_str(&s->shape, got, sizeof got));
    v->shape = s->shape;
    for (int i = 0; i < v->shape.rank; i++)
        v->shape.sym[i] = NULL;
    if (v->dtype == DT_UNDEFINED)
        v->dtype = s->dtype;
    return ST_OK;
}

/* A symbol an example input fixed (`declared` had it where `fixed` has a size) fixes that symbol in the other
 * inputs too: a streamed RNN's h0 [1,batch,H] gets its batch from x [T,batch,I] when h0 has no file. */
static void share_symbols(Graph *g, const Shape *declared, const Shape *fixed)
{
    for (int i = 0; i < declared->rank && i < fixed->rank; i++) {
        if (!declared->sym[i] || fixed->dim[i] < 0)
            continue;
        for (size_t k = 0; k < g->ninputs; k++) {
            Shape *s = &g->inputs[k]->shape;
            for (int j = 0; j < s->rank; j++)
                if (s->dim[j] < 0 && s->sym[j] && strcmp(s->sym[j], declared->sym[i]) == 0) {
                    s->dim[j] = fixed->dim[i];
                    s->sym[j] = NULL;
                }
        }
    }
}

Status codegen_load(const char *path, const InputShape *shapes, size_t nshapes, int64_t batch, Model **out,
                    Diag *d)
{
    Model *m = NULL;
    *out = NULL;
    Status st = onnx_import_file(path, &m, d);
    if (st)
        return st;
    if ((st = pass_canon(m, d)))
        goto fail;
    Graph *g = m->graph;
    bool *sym_batch = calloc(g->ninputs ? g->ninputs : 1, sizeof *sym_batch);
    if (!sym_batch) {
        st = diag_error(d, ST_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < g->ninputs; i++)
        sym_batch[i] = !g->inputs[i]->init && g->inputs[i]->shape.rank > 0 && g->inputs[i]->shape.dim[0] < 0;
    for (size_t k = 0; k < nshapes && !st; k++) {
        Value *v = NULL;
        for (size_t i = 0; i < g->ninputs && !v; i++)
            if (strcmp(g->inputs[i]->name, shapes[k].name) == 0)
                v = g->inputs[i];
        if (!v) {
            char names[512] = "";
            for (size_t i = 0; i < g->ninputs; i++)
                if (!g->inputs[i]->init && strlen(names) + strlen(g->inputs[i]->name) + 3 < sizeof names)
                    strcat(strcat(names, names[0] ? ", " : ""), g->inputs[i]->name);
            st = diag_error(d, ST_USAGE, "the model has no input named '%s' (its inputs: %s)", shapes[k].name,
                            names);
        } else {
            Shape declared = v->shape;
            if (!(st = apply_shape(v, &shapes[k], d)) && batch <= 0) /* exact shapes (run): not with --batch */
                share_symbols(g, &declared, &v->shape);
        }
    }
    for (size_t i = 0; i < g->ninputs && !st && batch > 0; i++)
        if (sym_batch[i]) {
            g->inputs[i]->shape.dim[0] = batch;
            g->inputs[i]->shape.sym[0] = NULL;
        }
    free(sym_batch);
    if (st)
        goto fail;
    ShapeOptions so = {.fold = true};
    if ((st = pass_shapes(m, &so, d)) || (!getenv("ONNXTUNE_NO_FUSE") && (st = pass_gelu(g, d))))
        goto fail;
    *out = m;
    return ST_OK;
fail:
    model_free(m);
    return st;
}

/* The batch dim of a value seen at batch b1 (s1) and b2 (s2): -1 when none; *bad says why it
 * cannot be chunked. */
static int batch_axis(const Shape *s1, int64_t b1, const Shape *s2, int64_t b2, int64_t *scale, bool *bad)
{
    int axis = -1;
    *scale = 0;
    *bad = false;
    if (s1->rank != s2->rank || !shape_is_static(s1) || !shape_is_static(s2)) {
        *bad = true;
        return -1;
    }
    for (int i = 0; i < s1->rank; i++) {
        if (s1->dim[i] == s2->dim[i])
            continue;
        if (axis >= 0 || s1->dim[i] % b1 != 0 || s1->dim[i] / b1 * b2 != s2->dim[i]) {
            *bad = true;
            return -1;
        }
        axis = i;
        *scale = s1->dim[i] / b1;
    }
    return axis;
}

Status codegen_batch_axes(const Model *m1, int64_t b1, const Model *m2, int64_t b2, BatchAxes *out, Diag *d)
{
    const Graph *g1 = m1->graph, *g2 = m2->graph;
    Arena *a = m1->arena;
    char s1[128], s2[128];
    memset(out, 0, sizeof *out);
    out->input_axis = arena_calloc(a, g1->ninputs + 1, sizeof *out->input_axis);
    out->input_scale = arena_calloc(a, g1->ninputs + 1, sizeof *out->input_scale);
    out->output_axis = arena_calloc(a, g1->noutputs + 1, sizeof *out->output_axis);
    out->output_scale = arena_calloc(a, g1->noutputs + 1, sizeof *out->output_scale);
    if (!out->input_axis || !out->input_scale || !out->output_axis || !out->output_scale)
        return diag_error(d, ST_NOMEM, "out of memory");
    if (g1->ninputs != g2->ninputs || g1->noutputs != g2->noutputs)
        return diag_error(d, ST_ERR, "internal: the model changed between two loads");
    size_t k = 0;
    bool any = false;
    for (size_t i = 0; i < g1->ninputs; i++) {
        const Value *v1 = g1->inputs[i], *v2 = g2->inputs[i];
        if (v1->init)
            continue;
        bool bad;
        out->input_axis[k] = batch_axis(&v1->shape, b1, &v2->shape, b2, &out->input_scale[k], &bad);
        any |= out->input_axis[k] >= 0;
        if (bad && !out->no_chunk)
            out->no_chunk = arena_printf(a, "input '%s' is %s at batch %lld but %s at batch %lld", v1->name,
                                         shape_str(&v1->shape, s1, sizeof s1), (long long)b1,
                                         shape_str(&v2->shape, s2, sizeof s2), (long long)b2);
        k++;
    }
    for (size_t i = 0; i < g1->noutputs; i++) {
        const Value *v1 = g1->outputs[i], *v2 = g2->outputs[i];
        bool bad;
        out->output_axis[i] = batch_axis(&v1->shape, b1, &v2->shape, b2, &out->output_scale[i], &bad);
        if ((bad || out->output_axis[i] < 0) && !out->no_chunk)
            out->no_chunk = arena_printf(a, "output '%s' is %s at batch %lld and %s at batch %lld: it does not "
                                         "grow with the batch", v1->name, shape_str(&v1->shape, s1, sizeof s1),
                                         (long long)b1, shape_str(&v2->shape, s2, sizeof s2), (long long)b2);
    }
    out->batch = any ? b1 : 0;
    if (!any && !out->no_chunk)
        out->no_chunk = "no input has a batch dim (the model's input shapes are static)";
    return ST_OK;
}

const char *const codegen_env_vars[] = {
    "CC",               /* the C compiler (codegen/cc.c) */
    "ONNXTUNE_LD",      /* the linker (codegen/cc.c) */
    "ONNXTUNE_NO_FUSE", /* no conv, MatMul-bias or GELU fusion (codegen/emit.c, ir/pass_gelu.c) */
    "ONNXTUNE_BLOCKED", /* blocked conv layouts (codegen/layout.c, on its way from the blocked branch) */
    NULL,
};

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

Status codegen_compile_model(const CompileOptions *o, CodegenStats *stats, Diag *d)
{
    int64_t batch = o->exact ? 0 : o->batch > 0 ? o->batch : 1;
    Model *m = NULL, *m2 = NULL;
    char dir[4096] = "", c_path[4200], w_path[4200];
    Status st = codegen_load(o->model, o->shapes, o->nshapes, batch, &m, d);
    if (st)
        return st;
    for (size_t i = 0; i < m->graph->ninputs; i++) {
        const Value *v = m->graph->inputs[i];
        char buf[128];
        if (!v->init && v->kind != VK_TENSOR) { /* sequences and optionals: their types come from test data only */
            st = diag_error(d, ST_UNSUPPORTED, "input '%s' is a %s: compiled programs take tensors only", v->name,
                            v->kind == VK_SEQUENCE ? "sequence" : v->kind == VK_OPTIONAL ? "optional" : "map");
            model_free(m);
            return st;
        }
        for (int k = 0; !v->init && k < v->shape.rank; k++)
            if (v->shape.dim[k] < 0) {
                st = diag_error(d, ST_SHAPE, "input '%s' %s: dim %d%s%s%s is not fixed; give an example input "
                                "(--input %s=FILE.npy) to fix it", v->name, shape_str(&v->shape, buf, sizeof buf), k,
                                v->shape.sym[k] ? " ('" : "", v->shape.sym[k] ? v->shape.sym[k] : "",
                                v->shape.sym[k] ? "')" : "", v->name);
                model_free(m);
                return st;
            }
        if (!v->init && v->shape.rank < 0) {
            st = diag_error(d, ST_SHAPE, "input '%s' has an unknown rank; give an example input (--input %s=FILE.npy)",
                            v->name, v->name);
            model_free(m);
            return st;
        }
    }

    /* the batch dims: infer again at another batch and compare */
    BatchAxes ba = {0};
    Diag d2;
    diag_init(&d2, o->model);
    if (o->exact) {
        ba.no_chunk = "compiled for exactly the shapes of the given inputs";
    } else if (codegen_load(o->model, o->shapes, o->nshapes, batch + 1, &m2, &d2) == ST_OK) {
        st = codegen_batch_axes(m, batch, m2, batch + 1, &ba, d);
        model_free(m2);
        if (st)
            goto out;
    } else {
        ba.no_chunk = arena_printf(m->arena, "shapes cannot be inferred at batch %lld: %s", (long long)(batch + 1),
                                   d2.msg);
    }
    if (o->log && o->batch > 0 && ba.batch == 0)
        fprintf(o->log, "onnxtune compile: note: --batch %lld has no effect: %s\n", (long long)o->batch,
                ba.no_chunk ? ba.no_chunk : "the model has no batch dim");

    if (o->emit_c) {
        snprintf(c_path, sizeof c_path, "%s.c", o->output);
        snprintf(w_path, sizeof w_path, "%s.weights", o->output);
    } else {
        snprintf(dir, sizeof dir, "%s/onnxtune-XXXXXX", tmp_root());
        if (!mkdtemp(dir)) {
            st = diag_error(d, ST_IO, "%s: cannot create a temporary folder: %s", dir, strerror(errno));
            dir[0] = '\0';
            goto out;
        }
        snprintf(c_path, sizeof c_path, "%s/model.c", dir);
        snprintf(w_path, sizeof w_path, "%s/model.weights", dir);
    }
    FILE *f = fopen(c_path, "w");
    if (!f) {
        st = diag_error(d, ST_IO, "%s: cannot write: %s", c_path, strerror(errno));
        goto out;
    }
    CodegenOptions co = {
        .prefix = "model", .model_path = o->model, .emit_main = true, .weights_path = w_path,
        .batch = &ba, .threads = o->threads,
    };
    st = codegen_emit(m->graph, &co, f, stats, d);
    if (fclose(f) != 0 && !st)
        st = diag_error(d, ST_IO, "%s: write failed", c_path);
    if (st)
        goto out;
    const char *inputs[1] = {c_path};
    CcJob job = {.mode = CC_PROGRAM, .inputs = inputs, .ninputs = 1, .output = o->output, .werror = o->werror};
    st = codegen_cc(&job, d);
    if (st && !o->emit_c) {
        /* keep the file the message names */
        char keep[4200];
        snprintf(keep, sizeof keep, "%s.c", o->output);
        FILE *src = fopen(c_path, "r"), *dst = src ? fopen(keep, "w") : NULL;
        if (dst) {
            char buf[65536];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, src)) > 0)
                fwrite(buf, 1, n, dst);
            fclose(dst);
            size_t len = strlen(d->msg);
            snprintf(d->msg + len, sizeof d->msg - len, "\n(the generated file is kept as %s)", keep);
        }
        if (src)
            fclose(src);
    }
    if (!st && o->log && ba.batch > 0)
        fprintf(o->log, "onnxtune compile: %s: batch %lld%s%s\n", o->output, (long long)ba.batch,
                ba.no_chunk ? "; other batches are refused: " : " (other batches run in chunks)",
                ba.no_chunk ? ba.no_chunk : "");
out:
    if (dir[0]) {
        unlink(c_path);
        unlink(w_path);
        rmdir(dir);
    }
    model_free(m);
    return st;
}
