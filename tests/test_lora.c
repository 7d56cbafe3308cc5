/* test_lora.c - LoRA programs beyond the PyTorch comparisons of test_train_e2e (the tests/ref/train LoRA cases): the
 * merged export is standard ONNX (no adapter left, default-domain ops) and gives `PROG predict`'s outputs when
 * run on its own (`onnxtune run`); predicting from the adapters file (--lora-from, unmerged) agrees; training
 * one epoch, --export-adapters, then one more from --lora-from equals two epochs in one go, and so does
 * resuming a checkpoint; --lora-dropout
 * trains reproducibly and leaves evaluation alone; dump lists the adapters; and bad use is a one-line error with a non-zero exit.
 * Needs $ONNXTUNE (CTest sets it). */
#include "train_tool.h"

#include "importer.h"
#include "ir.h"

#include <math.h>

#define VIT "models/vit/model.onnx"
#define CNN "models/lora_cnn/model.onnx"
#define VIT_X "tests/ref/train/vit_lora_sgd/x.npy"
#define VIT_Y "tests/ref/train/vit_lora_sgd/y.npy"
#define CNN_X "tests/ref/train/cnn_lora_sgd/x.npy"
#define CNN_Y "tests/ref/train/cnn_lora_sgd/y.npy"

/* max |a - b| / max |b| over two float NPY files of one shape; INFINITY when they cannot be compared. */
static double npy_rel(const char *a, const char *b)
{
    NpyArray x, y;
    char err[512];
    if (npy_read(a, &x, err, sizeof err) != NPY_OK) {
        CHECK_MSG(false, "%s", err);
        return INFINITY;
    }
    if (npy_read(b, &y, err, sizeof err) != NPY_OK) {
        CHECK_MSG(false, "%s", err);
        npy_free(&x);
        return INFINITY;
    }
    double e = INFINITY, m = 0;
    if (x.dtype == RT_FLOAT && y.dtype == RT_FLOAT && x.numel == y.numel && x.numel) {
        e = 0;
        for (size_t i = 0; i < x.numel; i++) {
            e = fmax(e, fabs((double)((float *)x.data)[i] - ((float *)y.data)[i]));
            m = fmax(m, fabs((double)((float *)y.data)[i]));
        }
        e /= fmax(m, 1e-30);
    }
    npy_free(&x);
    npy_free(&y);
    return e;
}

/* The step losses of a metrics file. */
static size_t step_losses(const char *path, double *loss, size_t max)
{
    char *text = tt_read(path, NULL);
    size_t n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
        if (strstr(line, "\"step\":") && n < max)
            loss[n++] = tt_json_num(line, "loss");
    free(text);
    return n;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* tt_expect, and the message is one line. */
static void expect_error(const char *what, int want, const char *msg, const char *const *argv)
{
    TtArgv a = {.n = 0};
    for (int i = 0; argv[i]; i++)
        tt_push(&a, argv[i]);
    int rc = tt_run(&a);
    CHECK_MSG(rc == want && strstr(tt_err, msg) && count_lines(tt_err) == 1,
              "%s: exit %d (want %d); stderr (want one line with '%s'):\n%s", what, rc, want, msg, tt_err);
}

/* The merged export: it imports, holds no adapter, only default-domain ops, and the model's initializers
 * (but the removed classifier's) plus the head's. */
static void check_export_is_plain(const char *path, const char *model, bool head)
{
    Model *m = NULL, *orig = NULL;
    Diag d;
    diag_init(&d, path);
    if (onnx_import_file(path, &m, &d) != ST_OK || onnx_import_file(model, &orig, &d) != ST_OK) {
        CHECK_MSG(false, "%s", d.msg);
        model_free(m);
        return;
    }
    size_t inits = 0, orig_inits = 0;
    for (size_t i = 0; i < m->graph->nvalues; i++) {
        const Value *v = m->graph->values[i];
        CHECK_MSG(!strstr(v->name, "lora"), "%s: the merged export has a value '%s'", path, v->name);
        inits += v->is_initializer;
    }
    for (size_t i = 0; i < orig->graph->nvalues; i++)
        orig_inits += orig->graph->values[i]->is_initializer;
    for (size_t k = 0; k < m->graph->nnodes; k++)
        CHECK_MSG(!m->graph->nodes[k]->domain[0], "%s: node '%s' is of domain '%s'", path, m->graph->nodes[k]->name,
                  m->graph->nodes[k]->domain);
    if (!head)
        CHECK_MSG(inits == orig_inits, "%s: %zu initializers, the model has %zu", path, inits, orig_inits);
    model_free(m);
    model_free(orig);
}

/* `onnxtune run EXPORT --input NAME=X` writes OUT_DIR/logits.npy; it must be PROG predict's (rel 1e-4). */
static void check_run_matches(const char *what, const char *exported, const char *input, const char *x,
                              const char *predicted)
{
    const char *dir = tt_path("%s_run", what);
    char in[600];
    snprintf(in, sizeof in, "%s=%s", input, x);
    mkdir(dir, 0755);
    TtArgv a = {.n = 0};
    tt_pushv(&a, tt_onnxtune, "run", exported, "--input", in, "--output-dir", dir, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "%s: onnxtune run exited %d: %s", what, rc, tt_err);
    char out[600];
    snprintf(out, sizeof out, "%s/logits.npy", dir);
    double e = npy_rel(out, predicted);
    printf("%-34s merged export run alone vs PROG predict: rel %.3g\n", what, e);
    CHECK_MSG(e < 1e-4, "%s: the merged export gives other outputs than PROG predict: rel %.3g", what, e);
}

int main(void)
{
    if (!tt_setup("test_lora"))
        return 1;
    const char *vit = tt_path("vit"), *vit_drop = tt_path("vit_drop"), *vit_r8 = tt_path("vit_r8"),
               *cnn = tt_path("cnn"), *plain = tt_path("plain");
    bool ok = tt_compile(vit, VIT, "--lora", "*self_attention.in_proj_weight", "--lora", "*out_proj.weight", "--lora",
                         "*mlp.0.weight", "--lora-rank", "4", "--lora-alpha", "8", "--head", "linear:4", "--batch", "4",
                         NULL) &&
              tt_compile(vit_drop, VIT, "--lora", "*self_attention.in_proj_weight", "--lora", "*out_proj.weight",
                         "--lora", "*mlp.0.weight", "--lora-rank", "4", "--lora-alpha", "8", "--lora-dropout", "0.2",
                         "--head", "linear:4", "--batch", "4", NULL) &&
              tt_compile(vit_r8, VIT, "--lora", "*self_attention.in_proj_weight", "--head", "linear:4", "--batch",
                         "4", NULL) &&
              tt_compile(cnn, CNN, "--lora", "features.*.weight", "--lora", "classifier.weight", "--lora-rank", "2",
                         "--momentum", "0.9", "--batch", "4", NULL) &&
              tt_compile(plain, CNN, "--train", "*", "--batch", "4", NULL);
    if (!ok) {
        tt_cleanup();
        return test_summary("test_lora");
    }

    /* ViT: two epochs, the merged export and the adapters */
    const char *m2 = tt_path("vit2.onnx"), *ad2 = tt_path("vit2.adapters.onnx"), *met2 = tt_path("vit2.jsonl");
    tt_expect("vit: train 2 epochs", 0, NULL, vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--epochs", "2", "--lr",
              "0.05", "--no-shuffle", "--quiet", "--metrics", met2, "--export", m2, "--export-adapters", ad2, NULL);
    check_export_is_plain(m2, VIT, true);
    const char *p_merged = tt_path("p_merged.npy"), *p_lora = tt_path("p_lora.npy");
    tt_expect("vit: predict from the merged export", 0, NULL, vit, "predict", "--x", VIT_X, "--weights", m2,
              "--output", p_merged, "--quiet", NULL);
    tt_expect("vit: predict from the adapters", 0, NULL, vit, "predict", "--x", VIT_X, "--lora-from", ad2, "--output",
              p_lora, "--quiet", NULL);
    double e = npy_rel(p_lora, p_merged);
    printf("%-34s predict --lora-from (unmerged) vs --weights (merged): rel %.3g\n", "vit", e);
    CHECK_MSG(e < 1e-5, "vit: predicting from the adapters and from the merged export differ: rel %.3g", e);
    check_run_matches("vit", m2, "image", VIT_X, p_merged);

    /* the adapters file: A [r, in], B [out, r] and the head, in PyTorch's layout and names */
    Model *am = NULL;
    Diag d;
    diag_init(&d, ad2);
    if (onnx_import_file(ad2, &am, &d) == ST_OK) {
        const Value *a = graph_find_local(am->graph, "encoder.layers.encoder_layer_0.self_attention.in_proj_weight.lora_A");
        const Value *b = graph_find_local(am->graph, "encoder.layers.encoder_layer_0.self_attention.in_proj_weight.lora_B");
        const Value *h = graph_find_local(am->graph, "head.weight");
        CHECK_MSG(a && a->init && a->shape.rank == 2 && a->shape.dim[0] == 4 && a->shape.dim[1] == 16, "lora_A");
        CHECK_MSG(b && b->init && b->shape.rank == 2 && b->shape.dim[0] == 48 && b->shape.dim[1] == 4, "lora_B");
        CHECK_MSG(h && h->init && h->shape.dim[0] == 4, "the adapters file lacks the head");
        CHECK_MSG(am->graph->nnodes == 0 && am->graph->noutputs == 14, "the adapters file: %zu nodes, %zu outputs",
                  am->graph->nnodes, am->graph->noutputs);
    } else {
        CHECK_MSG(false, "%s", d.msg);
    }
    model_free(am);

    /* round trip: one epoch, --export-adapters, one more from --lora-from == two epochs (plain SGD: no state) */
    const char *ad1 = tt_path("vit1.adapters.onnx"), *ad1b = tt_path("vit1b.adapters.onnx"),
               *met1 = tt_path("vit1.jsonl"), *met1b = tt_path("vit1b.jsonl");
    tt_expect("vit: epoch 1", 0, NULL, vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--epochs", "1", "--lr", "0.05",
              "--no-shuffle", "--quiet", "--metrics", met1, "--export-adapters", ad1, NULL);
    tt_expect("vit: epoch 2 from --lora-from", 0, NULL, vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--epochs", "1",
              "--lr", "0.05", "--no-shuffle", "--quiet", "--metrics", met1b, "--lora-from", ad1, "--export-adapters",
              ad1b, NULL);
    double l2[16], l1[16], l1b[16];
    size_t n2 = step_losses(met2, l2, 16), n1 = step_losses(met1, l1, 16), n1b = step_losses(met1b, l1b, 16);
    bool same = n2 == 10 && n1 == 5 && n1b == 5;
    for (size_t i = 0; same && i < 5; i++)
        same = l1[i] == l2[i] && l1b[i] == l2[5 + i];
    CHECK_MSG(same, "vit: 1 epoch + --lora-from + 1 epoch trains otherwise than 2 epochs (%zu, %zu, %zu steps)", n2, n1,
              n1b);
    CHECK_MSG(tt_same(ad1b, ad2), "vit: the adapters after the round trip differ from those of the 2-epoch run");
    printf("%-34s 1 epoch, --export-adapters, --lora-from, 1 epoch == 2 epochs: %s\n", "vit", same ? "yes" : "no");
    /* and a checkpoint holds the adapters: stopping after 5 steps and resuming ends where 2 epochs do */
    const char *ck = tt_path("vit.ckpt"), *adr = tt_path("vit_resumed.adapters.onnx");
    tt_expect("vit: stop after 5 steps", 0, NULL, vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--epochs", "2", "--lr",
              "0.05", "--no-shuffle", "--quiet", "--max-steps", "5", "--checkpoint", ck, NULL);
    tt_expect("vit: resume", 0, NULL, vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--epochs", "2", "--lr", "0.05",
              "--no-shuffle", "--quiet", "--resume", ck, "--export-adapters", adr, NULL);
    CHECK_MSG(tt_same(adr, ad2), "vit: the adapters after --resume differ from those of the 2-epoch run");

    /* --lora-dropout 0.2: reproducible, other losses than p = 0, evaluation without dropout */
    const char *md1 = tt_path("drop1.jsonl"), *md2 = tt_path("drop2.jsonl"), *p_drop = tt_path("p_drop.npy");
    for (int k = 0; k < 2; k++)
        tt_expect("vit: --lora-dropout 0.2", 0, NULL, vit_drop, "--train-x", VIT_X, "--train-y", VIT_Y, "--epochs",
                  "2", "--lr", "0.05", "--no-shuffle", "--quiet", "--seed", "3", "--metrics", k ? md2 : md1, NULL);
    double d1[16], d2[16];
    size_t nd1 = step_losses(md1, d1, 16), nd2 = step_losses(md2, d2, 16);
    bool repro = nd1 == 10 && nd2 == 10 && memcmp(d1, d2, 10 * sizeof d1[0]) == 0, other = false, finite = true;
    for (size_t i = 0; i < nd1 && i < 10; i++) {
        other = other || (n2 == 10 && d1[i] != l2[i]);
        finite = finite && isfinite(d1[i]);
    }
    CHECK_MSG(repro && other && finite, "vit: --lora-dropout 0.2: reproducible %d, differs from p = 0 %d, finite %d",
              repro, other, finite);
    tt_expect("vit: predict with --lora-dropout", 0, NULL, vit_drop, "predict", "--x", VIT_X, "--lora-from", ad2,
              "--output", p_drop, "--quiet", NULL);
    e = npy_rel(p_drop, p_lora);
    CHECK_MSG(e == 0, "vit: predict of the dropout program differs from the p = 0 one's: rel %.3g", e);
    printf("%-34s --lora-dropout 0.2: loss %.5f -> %.5f (p = 0: %.5f -> %.5f), reproducible, eval unchanged\n", "vit",
           d1[0], nd1 ? d1[nd1 - 1] : NAN, l2[0], n2 ? l2[n2 - 1] : NAN);

    /* CNN: a 3x3 stride-2 conv, a 1x1 conv and the classifier adapted, the export merged */
    const char *mc = tt_path("cnn.onnx"), *pc = tt_path("p_cnn.npy");
    tt_expect("cnn: train", 0, NULL, cnn, "--train-x", CNN_X, "--train-y", CNN_Y, "--epochs", "2", "--lr", "0.3",
              "--momentum", "0.9", "--no-shuffle", "--quiet", "--export", mc, NULL);
    check_export_is_plain(mc, CNN, false);
    tt_expect("cnn: predict", 0, NULL, cnn, "predict", "--x", CNN_X, "--weights", mc, "--output", pc, "--quiet", NULL);
    check_run_matches("cnn", mc, "image", CNN_X, pc);

    /* dump: the adapters and the trainable count: 2 x (4x16 + 48x4) = 512 adapter values + the head's 68 */
    TtArgv da = {.n = 0};
    tt_pushv(&da, tt_onnxtune, "dump", VIT, "--summary", "--batch", "2", "--lora", "*in_proj_weight", "--lora-rank",
             "4", "--head", "linear:4", NULL);
    int drc = tt_run(&da);
    CHECK_MSG(drc == 0 && strstr(tt_out, "LoRA: 2 adapters (r 4, alpha 16, scaling 4, dropout 0), 512 values; "
                                         "trainable: 580 of ") &&
              strstr(tt_out, "encoder.layers.encoder_layer_1.self_attention.in_proj_weight: .lora_A [4,16], "
                             ".lora_B [48,4]"),
              "dump --lora: exit %d:\n%s%s", drc, tt_out, tt_err);

    /* bad use: one line, non-zero exit */
    const char *cnn_ad = tt_path("cnn.adapters.onnx");
    tt_expect("cnn: adapters", 0, NULL, cnn, "--train-x", CNN_X, "--train-y", CNN_Y, "--epochs", "1", "--quiet",
              "--export-adapters", cnn_ad, NULL);
    tt_expect("vit r 8: adapters", 0, NULL, vit_r8, "--train-x", VIT_X, "--train-y", VIT_Y, "--epochs", "1", "--quiet",
              "--export-adapters", tt_path("r8.onnx"), NULL);
    const char *garbage = tt_path("garbage.onnx");
    FILE *f = fopen(garbage, "wb");
    if (f) {
        fputs("\xff\xff\xff not protobuf", f);
        fclose(f);
    }
    const char *o = tt_path("never");
    expect_error("--lora matching nothing", 2, "--lora 'nomatch*' matches no weight",
                 (const char *[]){tt_onnxtune, "compile", VIT, "--lora", "nomatch*", "-o", o, NULL});
    expect_error("--lora on biases", 2, "matches no MatMul, Gemm or Conv weight",
                 (const char *[]){tt_onnxtune, "compile", VIT, "--lora", "*.bias", "-o", o, NULL});
    expect_error("--lora on a LayerNorm weight", 2, "matches no MatMul, Gemm or Conv weight",
                 (const char *[]){tt_onnxtune, "compile", VIT, "--lora", "encoder.ln.weight", "-o", o, NULL});
    expect_error("--lora-rank 0", 2, "--lora-rank",
                 (const char *[]){tt_onnxtune, "compile", VIT, "--lora", "*in_proj_weight", "--lora-rank", "0", "-o", o,
                                  NULL});
    expect_error("--lora-rank -3", 2, "--lora-rank",
                 (const char *[]){tt_onnxtune, "train", VIT, "--lora", "*in_proj_weight", "--lora-rank", "-3", NULL});
    expect_error("--lora-rank without --lora", 2, "needs --lora",
                 (const char *[]){tt_onnxtune, "compile", VIT, "--lora-rank", "4", "-o", o, NULL});
    expect_error("--lora-dropout 1", 2, "--lora-dropout",
                 (const char *[]){tt_onnxtune, "compile", VIT, "--lora", "*in_proj_weight", "--lora-dropout", "1", "-o",
                                  o, NULL});
    expect_error("--lora-alpha 0", 2, "--lora-alpha",
                 (const char *[]){tt_onnxtune, "compile", VIT, "--lora", "*in_proj_weight", "--lora-alpha", "0", "-o",
                                  o, NULL});
    expect_error("--lora-from: another model's adapters", 1, "is neither an adapter nor a trainable parameter",
                 (const char *[]){vit, "predict", "--x", VIT_X, "--lora-from", cnn_ad, "--output", o, NULL});
    expect_error("--lora-from: another rank", 1, "but this program's is float32 [4,16]",
                 (const char *[]){vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--lora-from", tt_path("r8.onnx"), NULL});
    expect_error("--lora-from: missing file", 1, "--lora-from",
                 (const char *[]){vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--lora-from", tt_path("none.onnx"),
                                  NULL});
    expect_error("--lora-from: not ONNX", 1, "not an ONNX file",
                 (const char *[]){vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--lora-from", garbage, NULL});
    expect_error("--lora-from: a model", 1, "is neither an adapter",
                 (const char *[]){vit, "--train-x", VIT_X, "--train-y", VIT_Y, "--lora-from", VIT, NULL});
    expect_error("--export-adapters without LoRA", 2, "no LoRA adapters",
                 (const char *[]){plain, "--train-x", CNN_X, "--train-y", CNN_Y, "--export-adapters", o, NULL});
    tt_cleanup();
    return test_summary("test_lora");
}
