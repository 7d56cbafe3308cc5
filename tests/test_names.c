/* test_names.c - PyTorch names for exporter-renamed weights (ir/pass_names.c): on models/bert, gpt2,
 * distilbert and vit (transformer families whose Linear weights torch.onnx.export renamed
 * onnx::MatMul_<n>) the parameters are exactly PyTorch's named_parameters() (models/<m>/
 * named_parameters.txt, shapes in PyTorch's layout) and a layer glob selects exactly that layer's; the rules on hand-made graphs (Sequential scopes,
 * in_proj_weight, shared and duplicated weights, Gemm/Conv); the export keeps the ONNX names; and through
 * $ONNXTUNE: dump shows the names, --init takes PyTorch's layout of a transposed weight. */
#define _POSIX_C_SOURCE 200809L
#include "importer.h"
#include "ir.h"
#include "program.h"
#include "test.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#define BERT "models/bert/model.onnx"
#define BERT_PARAMS "models/bert/named_parameters.txt"

static Diag d;

static Model *load(const char *path)
{
    Model *m = NULL;
    diag_init(&d, path);
    ShapeOptions so = {.batch = 2, .fold = true, .keep_params = true};
    if (onnx_import_file(path, &m, &d) || pass_canon(m, &d) || pass_torch_names(m, &d) || pass_shapes(m, &so, &d)) {
        fprintf(stderr, "loading %s: %s\n", path, d.msg);
        model_free(m);
        return NULL;
    }
    return m;
}

/* PyTorch's named_parameters(): names and shapes. */
typedef struct TorchParam {
    char name[160];
    int rank;
    int64_t dim[4];
} TorchParam;

static size_t read_torch_params(const char *path, TorchParam *out, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[512];
    size_t n = 0;
    CHECK_MSG(f != NULL, "cannot open %s", path);
    while (f && n < max && fgets(line, sizeof line, f)) {
        char dims[128];
        if (sscanf(line, "%159s %127s", out[n].name, dims) != 2)
            continue;
        out[n].rank = 0;
        for (char *s = dims; *s && out[n].rank < 4;) {
            out[n].dim[out[n].rank++] = strtoll(s, &s, 10);
            if (*s == ',')
                s++;
        }
        n++;
    }
    if (f)
        fclose(f);
    return n;
}

/* Model `dir`'s parameters (model.onnx and model_opset13.onnx) are PyTorch's (dir/named_parameters.txt),
 * by name and (PyTorch-layout) shape, and `glob` selects exactly the parameters whose names start with
 * `prefix`. */
static void check_family(const char *dir, const char *file, const char *glob, const char *prefix)
{
    char path[256], list[256];
    snprintf(path, sizeof path, "models/%s/%s", dir, file);
    snprintf(list, sizeof list, "models/%s/named_parameters.txt", dir);
    TorchParam tp[128];
    size_t ntp = read_torch_params(list, tp, 128);
    Model *m = load(path);
    CHECK_MSG(ntp > 0 && m != NULL, "%s", path);
    if (!m)
        return;
    Graph *g = m->graph;
    size_t nparams = 0, renamed = 0;
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (!value_is_param(g, v))
            continue;
        nparams++;
        renamed += v->onnx_name != NULL;
        bool found = false;
        for (size_t k = 0; k < ntp && !found; k++)
            found = strcmp(tp[k].name, v->name) == 0;
        CHECK_MSG(found, "%s: parameter '%s' (ONNX '%s') is not one of PyTorch's", path, v->name, value_onnx_name(v));
    }
    for (size_t k = 0; k < ntp; k++) {
        const Value *v = graph_find_local(g, tp[k].name);
        CHECK_MSG(v && value_is_param(g, v), "%s: PyTorch's '%s' is no parameter of the model", path, tp[k].name);
        bool same = v && v->shape.rank == tp[k].rank;
        for (int i = 0; same && i < tp[k].rank; i++)
            same = v->shape.dim[v->transposed ? tp[k].rank - 1 - i : i] == tp[k].dim[i];
        CHECK_MSG(!v || same, "%s: '%s': shape differs from PyTorch's (transposed %d)", path, tp[k].name,
                  v->transposed);
    }
    CHECK_MSG(nparams == ntp && renamed > 0, "%s: %zu parameters (%zu renamed), PyTorch lists %zu", path, nparams,
              renamed, ntp);
    FreezeRule rule = {true, glob};
    FreezeOptions o = {.rules = &rule, .nrules = 1};
    diag_init(&d, NULL);
    CHECK_MSG(pass_freeze(m, &o, &d) == ST_OK, "%s: %s", glob, d.msg);
    size_t want = 0, got = 0;
    for (size_t k = 0; k < ntp; k++) {
        bool in = strncmp(tp[k].name, prefix, strlen(prefix)) == 0;
        const Value *v = graph_find_local(g, tp[k].name);
        want += in;
        CHECK_MSG(v && v->trainable == in, "%s: --train '%s': '%s' is %s", path, glob, tp[k].name,
                  v && v->trainable ? "trainable" : "frozen");
    }
    for (size_t i = 0; i < g->nvalues; i++)
        got += g->values[i]->trainable;
    CHECK_MSG(got == want && want > 0, "%s: --train '%s': %zu trainable, PyTorch's module has %zu parameters", path,
              glob, got, want);
    model_free(m);
}

/* The transformer families: BERT, GPT-2, DistilBERT and torchvision's ViT, at opsets 17 and 13. */
static void test_families(void)
{
    static const char *const fam[][3] = {
        {"bert", "encoder.layer.1.*", "encoder.layer.1."},
        {"gpt2", "transformer.h.0.*", "transformer.h.0."},
        {"distilbert", "distilbert.transformer.layer.1.*", "distilbert.transformer.layer.1."},
        {"vit", "encoder.layers.encoder_layer_1.*", "encoder.layers.encoder_layer_1."},
    };
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        check_family(fam[i][0], "model.onnx", fam[i][1], fam[i][2]);
        check_family(fam[i][0], "model_opset13.onnx", fam[i][1], fam[i][2]);
    }
}

/* The model's parameters are PyTorch's, by name and (PyTorch-layout) shape. */
static void test_bert_names(void)
{
    TorchParam tp[128];
    size_t ntp = read_torch_params(BERT_PARAMS, tp, 128);
    Model *m = load(BERT);
    CHECK(ntp == 38 && m != NULL);
    if (!m)
        return;
    Graph *g = m->graph;
    size_t nparams = 0, ntransposed = 0;
    for (size_t i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (!value_is_param(g, v))
            continue;
        nparams++;
        ntransposed += v->transposed;
        bool found = false;
        for (size_t k = 0; k < ntp && !found; k++)
            found = strcmp(tp[k].name, v->name) == 0;
        CHECK_MSG(found, "parameter '%s' (ONNX '%s') is not one of PyTorch's", v->name, value_onnx_name(v));
        CHECK_MSG(!v->onnx_name || strncmp(v->onnx_name, "onnx::MatMul_", 13) == 0, "%s was %s", v->name,
                  v->onnx_name);
    }
    for (size_t k = 0; k < ntp; k++) {
        const Value *v = graph_find_local(g, tp[k].name);
        CHECK_MSG(v && value_is_param(g, v), "PyTorch's '%s' is no parameter of the model", tp[k].name);
        if (!v)
            continue;
        bool same = v->shape.rank == tp[k].rank;
        for (int i = 0; same && i < tp[k].rank; i++)
            same = v->shape.dim[v->transposed ? tp[k].rank - 1 - i : i] == tp[k].dim[i];
        CHECK_MSG(same, "'%s': shape differs from PyTorch's (transposed %d)", tp[k].name, v->transposed);
    }
    CHECK_EQ_INT(nparams, ntp);
    CHECK_EQ_INT(ntransposed, 12);  /* 6 Linear weights per layer, 2 layers (the classifier is a Gemm) */
    const Value *q = graph_find_local(g, "encoder.layer.1.attention.self.query.weight");
    CHECK(q && q->transposed && q->onnx_name && strncmp(q->onnx_name, "onnx::MatMul_", 13) == 0);
    CHECK(q && graph_find_local(g, q->onnx_name) == NULL);

    /* a module glob selects exactly the parameters PyTorch lists under that module */
    static const char *const globs[] = {"encoder.layer.1.*", "encoder.layer.0.attention.*", "embeddings.*",
                                        "*.intermediate.dense.*"};
    static const char *const prefixes[] = {"encoder.layer.1.", "encoder.layer.0.attention.", "embeddings.", NULL};
    for (size_t r = 0; r < 4; r++) {
        FreezeRule rule = {true, globs[r]};
        FreezeOptions o = {.rules = &rule, .nrules = 1};
        diag_init(&d, NULL);
        CHECK_MSG(pass_freeze(m, &o, &d) == ST_OK, "%s: %s", globs[r], d.msg);
        size_t want = 0, got = 0;
        for (size_t k = 0; k < ntp; k++) {
            bool in = prefixes[r] ? strncmp(tp[k].name, prefixes[r], strlen(prefixes[r])) == 0
                                  : strstr(tp[k].name, ".intermediate.dense.") != NULL;
            const Value *v = graph_find_local(g, tp[k].name);
            want += in;
            CHECK_MSG(v && v->trainable == in, "--train '%s': '%s' is %s", globs[r], tp[k].name,
                      v && v->trainable ? "trainable" : "frozen");
        }
        for (size_t i = 0; i < g->nvalues; i++)
            got += g->values[i]->trainable;
        CHECK_MSG(got == want, "--train '%s': %zu trainable, PyTorch's module has %zu parameters", globs[r], got, want);
    }
    /* the ONNX name still matches (compatibility with globs written for the export's names) */
    FreezeRule rule = {true, q ? q->onnx_name : "?"};
    FreezeOptions o = {.rules = &rule, .nrules = 1};
    diag_init(&d, NULL);
    CHECK(pass_freeze(m, &o, &d) == ST_OK && q && q->trainable);

    /* the export writes the ONNX names, and reads back the same data */
    Arena *a = arena_new();
    uint8_t *bytes = NULL;
    size_t len = 0;
    ExportLayout layout;
    ExportOptions eo = {.producer_version = "test"};
    diag_init(&d, NULL);
    Status st = onnx_export_bytes(m, &eo, a, &bytes, &len, &layout, &d);
    CHECK_MSG(st == ST_OK, "export: %s", d.msg);
    Model *back = NULL;
    if (!st)
        st = onnx_import_bytes(bytes, len, NULL, &back, &d);
    CHECK_MSG(st == ST_OK && back, "re-import: %s", d.msg);
    if (back && q) {
        const Value *v = graph_find_local(back->graph, q->onnx_name);
        CHECK_MSG(v && v->init && v->init->nbytes == q->init->nbytes &&
                  memcmp(v->init->data, q->init->data, v->init->nbytes) == 0, "export lost '%s'", q->onnx_name);
        CHECK(graph_find_local(back->graph, q->name) == NULL);
        bool named = false;
        for (size_t i = 0; i < layout.nparams; i++)
            named = named || strcmp(layout.params[i].name, q->name) == 0;
        CHECK_MSG(named, "the export layout names '%s' by its IR name", q->name);
    }
    model_free(back);
    arena_free(a);
    model_free(m);
}

/* ---- the rules on hand-made graphs ---- */

static Value *add_init(Graph *g, const char *name, int rank, int64_t d0, int64_t d1)
{
    int64_t dims[2] = {d0, d1};
    Value *v = graph_add_value(g, name, &d);
    Shape s = shape_make(rank, dims);
    v->dtype = DT_FLOAT;
    v->shape = s;
    v->is_initializer = true;
    v->init = tensor_new(g->arena, DT_FLOAT, &s);
    return v;
}

static Value *add_node(Graph *g, const char *op, const char *name, int nin, Value *const *in)
{
    char hint[256];
    snprintf(hint, sizeof hint, "%s_output_0", name);
    Value *out = graph_add_value(g, hint, &d);
    Node *n = graph_add_node(g, op, "", name, nin, in, 1, &out, &d);
    return n ? out : NULL;
}

static void test_rules(void)
{
    Model *m = model_new();
    m->graph = graph_new(m->arena, "g", NULL);
    Graph *g = m->graph;
    diag_init(&d, NULL);
    Value *x = graph_add_value(g, "x", &d);
    x->dtype = DT_FLOAT;
    /* Sequential scope: "/features/features.4/Conv" is module features.4 */
    Value *cw = add_init(g, "onnx::Conv_12", 2, 4, 4), *cb = add_init(g, "onnx::Conv_13", 1, 4, 0);
    Value *h = add_node(g, "Conv", "/features/features.4/Conv", 3, (Value *[]){x, cw, cb});
    /* MultiheadAttention: the weight follows its bias's name */
    Value *iw = add_init(g, "onnx::MatMul_20", 2, 4, 12), *ib = add_init(g, "enc.layers.0.self_attn.in_proj_bias", 1, 12, 0);
    Value *p = add_node(g, "MatMul", "/enc/layers.0/self_attn/MatMul", 2, (Value *[]){h, iw});
    p = add_node(g, "Add", "/enc/layers.0/self_attn/Add", 2, (Value *[]){ib, p});
    /* layer 1's in_proj_bias merged into layer 0's (equal values; the exporter reads it through an
     * Identity): the weight stays in layer 1 */
    Value *iw1 = add_init(g, "onnx::MatMul_21", 2, 4, 12);
    Value *p1 = add_node(g, "MatMul", "/enc/layers.1/self_attn/MatMul", 2, (Value *[]){h, iw1});
    Value *ib1 = add_node(g, "Identity", "Identity_3", 1, (Value *[]){ib});
    add_node(g, "Add", "/enc/layers.1/self_attn/Add", 2, (Value *[]){ib1, p1});
    /* one Linear called twice, exported as two copies; a renamed bias after a MatMul */
    Value *w1 = add_init(g, "onnx::MatMul_30", 2, 4, 4), *w2 = add_init(g, "onnx::MatMul_31", 2, 4, 4);
    Value *b1 = add_init(g, "onnx::Add_32", 1, 4, 0);
    Value *r = add_node(g, "MatMul", "/proj/MatMul", 2, (Value *[]){p, w1});
    r = add_node(g, "Add", "/proj/Add", 2, (Value *[]){b1, r});
    r = add_node(g, "MatMul", "/proj/MatMul_1", 2, (Value *[]){r, w2});
    /* one initializer read by two modules: the first reader names it */
    Value *sh = add_init(g, "onnx::MatMul_40", 2, 4, 4);
    r = add_node(g, "MatMul", "/a/fc/MatMul", 2, (Value *[]){r, sh});
    r = add_node(g, "MatMul", "/b/fc/MatMul", 2, (Value *[]){r, sh});
    /* Gemm transB=0: transposed; no scope: left alone; LSTM: left alone */
    Value *gw = add_init(g, "onnx::Gemm_50", 2, 4, 3), *nw = add_init(g, "onnx::MatMul_51", 2, 3, 3);
    Value *gout = add_node(g, "Gemm", "/head/Gemm", 2, (Value *[]){r, gw});
    add_node(g, "MatMul", "MatMul_7", 2, (Value *[]){gout, nw});
    CHECK_MSG(d.status == ST_OK, "building: %s", d.msg);
    diag_init(&d, NULL);
    CHECK(pass_torch_names(m, &d) == ST_OK);
    CHECK_STR(cw->name, "features.4.weight");
    CHECK_STR(cw->onnx_name, "onnx::Conv_12");
    CHECK(!cw->transposed);
    CHECK_STR(cb->name, "features.4.bias");
    CHECK_STR(iw->name, "enc.layers.0.self_attn.in_proj_weight");
    CHECK(iw->transposed);
    CHECK_STR(ib->name, "enc.layers.0.self_attn.in_proj_bias");
    CHECK_STR(iw1->name, "enc.layers.1.self_attn.in_proj_weight");
    CHECK(ib->onnx_name == NULL);
    CHECK_STR(w1->name, "proj.weight");
    CHECK_STR(b1->name, "proj.bias");
    CHECK_STR(w2->name, "proj.weight#2");
    CHECK_STR(sh->name, "a.fc.weight");
    CHECK_STR(gw->name, "head.weight");
    CHECK(gw->transposed);
    CHECK_STR(nw->name, "onnx::MatMul_51");
    CHECK(nw->onnx_name == NULL);
    CHECK(graph_find_local(g, "proj.weight#2") == w2 && graph_find_local(g, "onnx::MatMul_31") == NULL);
    CHECK_STR(value_onnx_name(w2), "onnx::MatMul_31");
    model_free(m);
}

/* ---- through the tool ---- */

static const char *tool;
static char tmpdir[256];

static int run_capture(char *const *argv, const char *out_path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *o = freopen(out_path, "w", stdout);
        FILE *e = freopen(out_path, "a", stderr);
        (void)o;
        (void)e;
        execv(argv[0], argv);
        _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid)
        return -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static void test_tool(void)
{
    char out[400], prog[400], w[400], exported[400], x[400], y[400];
    snprintf(out, sizeof out, "%s/out.txt", tmpdir);
    char *dump[] = {(char *)tool, "dump", BERT, "--batch", "2", "--train", "encoder.layer.1.*", NULL};
    int rc = run_capture(dump, out);
    char *text = slurp(out);
    CHECK_MSG(rc == 0 && text, "dump exited %d", rc);
    CHECK_MSG(text && strstr(text, "encoder.layer.1.attention.self.query.weight: float32 [16,16] (param, trainable; ONNX "
                                   "onnx::MatMul_"),
              "dump does not show the PyTorch name:\n%.2000s", text ? text : "");
    CHECK(text && strstr(text, "encoder.layer.0.output.dense.weight: float32 [32,16] (param; ONNX onnx::MatMul_"));
    CHECK(text && strstr(text, ", 2224 trainable"));   /* layer 1: 4 * 272 + 544 + 528 + 2 * 32 */
    free(text);

    /* --init of a transposed weight takes PyTorch's [out, in]: with lr 0 the export holds its transpose */
    snprintf(prog, sizeof prog, "%s/bert_train", tmpdir);
    char *compile[] = {(char *)tool, "compile", BERT, "--train", "encoder.layer.1.intermediate.*", "--batch", "2",
                       "--optimizer", "sgd", "-o", prog, NULL};
    rc = run_capture(compile, out);
    text = slurp(out);
    CHECK_MSG(rc == 0, "compile exited %d:\n%s", rc, text ? text : "");
    free(text);
    float wt[32 * 16];   /* PyTorch's intermediate.dense.weight [32, 16] */
    for (size_t i = 0; i < 32 * 16; i++)
        wt[i] = (float)i * 0.001f - 0.2f;
    size_t wdims[2] = {32, 16}, xdims[2] = {2, 8}, ydims[1] = {2};
    int64_t ids[16] = {5, 6, 7, 8, 0, 0, 0, 0, 9, 3, 2, 1, 4, 0, 0, 0}, labels[2] = {1, 3};
    char err[256];
    snprintf(w, sizeof w, "%s/w.npy", tmpdir);
    snprintf(x, sizeof x, "%s/x.npy", tmpdir);
    snprintf(y, sizeof y, "%s/y.npy", tmpdir);
    snprintf(exported, sizeof exported, "%s/bert.onnx", tmpdir);
    CHECK(npy_write(w, RT_FLOAT, 2, wdims, wt, err, sizeof err) == NPY_OK);
    CHECK(npy_write(x, RT_INT64, 2, xdims, ids, err, sizeof err) == NPY_OK);
    CHECK(npy_write(y, RT_INT64, 1, ydims, labels, err, sizeof err) == NPY_OK);
    char init[500];
    snprintf(init, sizeof init, "encoder.layer.1.intermediate.dense.weight=%s", w);
    char *train[] = {prog, "--train-x", x, "--train-y", y, "--epochs", "1", "--lr", "0", "--init", init, "--export",
                     exported, "--quiet", NULL};
    rc = run_capture(train, out);
    text = slurp(out);
    CHECK_MSG(rc == 0, "training exited %d:\n%s", rc, text ? text : "");
    free(text);
    Model *m = NULL;
    diag_init(&d, exported);
    if (rc == 0 && onnx_import_file(exported, &m, &d) == ST_OK) {
        const Value *v = graph_find_local(m->graph, "onnx::MatMul_301");
        bool ok = v && v->init && v->init->numel == 32 * 16 && v->shape.dim[0] == 16;
        for (size_t i = 0; ok && i < 16; i++)
            for (size_t j = 0; ok && j < 32; j++)
                ok = ((const float *)v->init->data)[i * 32 + j] == wt[j * 16 + i];
        CHECK_MSG(ok, "the export's onnx::MatMul_301 is not the transpose of the --init array");
    } else {
        CHECK_MSG(false, "cannot read the export: %s", d.msg);
    }
    model_free(m);
    /* the ONNX layout is refused with a message naming PyTorch's */
    snprintf(init, sizeof init, "encoder.layer.1.intermediate.dense.weight=%s", w);
    size_t odims[2] = {16, 32};
    CHECK(npy_write(w, RT_FLOAT, 2, odims, wt, err, sizeof err) == NPY_OK);
    rc = run_capture(train, out);
    text = slurp(out);
    CHECK_MSG(rc == 2 || rc == 1, "an [in, out] --init was accepted (exit %d)", rc);
    CHECK_MSG(text && strstr(text, "is float32 [32,16] (PyTorch's layout [out, in]"), "message: %s", text ? text : "");
    free(text);
}

int main(void)
{
    test_bert_names();
    test_families();
    test_rules();
    tool = getenv("ONNXTUNE");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_names-XXXXXX");
    if (tool && mkdtemp(tmpdir))
        test_tool();
    else
        CHECK_MSG(false, "$ONNXTUNE is not set or no temporary folder: the tool checks did not run");
    return test_summary("test_names");
}
