/* test_control_run.c - control flow end to end against PyTorch (tests/ref/make_control_ref.py):
 * - `onnxtune conform tests/control_cases`: torch.jit.script modules with a data-dependent if, a nested
 *   if, an if whose branches give different shapes, for and while loops, exported by torch.onnx.export; every data set (each branch, each loop
 *   count) matches PyTorch's output, with nothing compiled in (the branch is chosen at run time);
 * - the generated C of the If model is an if/else calling one static function per branch;
 * - a fine-tuning run of a classifier with an If (SGD with momentum, cross entropy, batches taking both
 *   branches): every step's loss and the exported weights match PyTorch's; a Dropout in a branch is
 *   refused for fine-tuning (it would not drop).
 */
#include "data.h"
#include "importer.h"
#include "train_tool.h"

#include <math.h>

#define REF "tests/ref/control/train"

static void conform_cases(void)
{
    TtArgv a = {.n = 0};
    tt_pushv(&a, tt_onnxtune, "conform", "tests/control_cases", NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "conform exited %d:\n%s%s", rc, tt_out, tt_err);
    static const char *const cases[] = {"if_linear", "if_nested", "if_shapes", "loop_for_while"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char line[128];
        snprintf(line, sizeof line, "PASS control_cases/%s\n", cases[i]);
        CHECK_MSG(strstr(tt_out, line) != NULL, "%s:\n%s", cases[i], tt_out);
    }
    CHECK_MSG(strstr(tt_out, "4 passed, 0 failed, 0 unsupported\n") != NULL, "summary:\n%s", tt_out);
}

static void generated_code(void)
{
    const char *prog = tt_path("if_linear");
    TtArgv a = {.n = 0};
    tt_pushv(&a, tt_onnxtune, "compile", "tests/control_cases/if_linear/model.onnx", "--infer", "--batch", "2",
             "--emit-c", "-o", prog, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "compile exited %d: %s", rc, tt_err);
    char *c = tt_read(tt_path("if_linear.c"), NULL);
    CHECK_MSG(c && strstr(c, "static void model_If_then_0(") && strstr(c, "static void model_If_else_1("),
              "no static function per branch");
    CHECK_MSG(c && strstr(c, "if (t_Cast_output_0[0]) {") && strstr(c, "} else {"), "no if/else on the condition");
    free(c);
}

static bool load(const char *path, NpyArray *a)
{
    char err[256];
    if (npy_read(path, a, err, sizeof err) != NPY_OK) {
        CHECK_MSG(false, "%s", err);
        return false;
    }
    return true;
}

static void fine_tune(void)
{
    const char *prog = tt_path("train"), *metrics = tt_path("metrics.jsonl"), *exported = tt_path("ft.onnx");
    if (!tt_compile(prog, REF "/model.onnx", "--train", "*", "--head", "none", "--loss", "cross_entropy", "--optimizer",
                    "sgd", "--momentum", "0.9", "--weight-decay", "0.0", "--lr-schedule", "constant", "--batch", "4",
                    NULL))
        return;
    TtArgv a = {.n = 0};
    tt_pushv(&a, prog, "--train-x", REF "/x.npy", "--train-y", REF "/y.npy", "--epochs", "2", "--batch", "4", "--lr",
             "0.1", "--seed", "0", "--no-shuffle", "--metrics", metrics, "--export", exported, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "training exited %d: %s", rc, tt_err);
    NpyArray want = {0};
    if (rc || !load(REF "/losses.npy", &want))
        return;
    char *text = tt_read(metrics, NULL);
    size_t steps = 0;
    double err = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        double loss = tt_json_num(line, "loss");
        if (isnan(tt_json_num(line, "step")))
            continue;
        if (steps < want.numel) {
            double w = ((const float *)want.data)[steps];
            err = fmax(err, fabs(loss - w) / fabs(w));
        }
        steps++;
    }
    free(text);
    CHECK_MSG(steps == want.numel, "%zu steps in the metrics, %zu expected", steps, want.numel);
    CHECK_MSG(err < 1e-5, "losses differ from PyTorch's by %.3g (rel)", err);
    printf("fine-tuning with an If: %zu steps, losses within %.2g of PyTorch's\n", steps, err);
    npy_free(&want);

    Model *m = NULL;
    Diag d;
    diag_init(&d, exported);
    CHECK_MSG(onnx_import_file(exported, &m, &d) == ST_OK, "the export does not import: %s", d.msg);
    static const char *const names[] = {"body.weight", "body.bias", "pos.weight", "pos.bias", "neg.weight", "neg.bias"};
    double werr = 0;
    for (size_t i = 0; m && i < sizeof names / sizeof *names; i++) {
        char path[256];
        snprintf(path, sizeof path, REF "/w_%s.npy", names[i]);
        Value *v = graph_find_local(m->graph, names[i]);
        NpyArray w = {0};
        if (!load(path, &w))
            continue;
        CHECK_MSG(v && v->init && v->init->numel == w.numel && v->init->dtype == DT_FLOAT, "%s: missing", names[i]);
        double scale = 0, diff = 0;
        for (size_t k = 0; v && v->init && k < w.numel && k < v->init->numel; k++) {
            double x = ((const float *)v->init->data)[k], y = ((const float *)w.data)[k];
            scale = fmax(scale, fabs(y));
            diff = fmax(diff, fabs(x - y));
        }
        CHECK_MSG(diff <= 1e-5 * fmax(scale, 1), "%s differs from PyTorch's by %.3g", names[i], diff);
        werr = fmax(werr, diff / fmax(scale, 1));
        npy_free(&w);
    }
    printf("exported weights within %.2g of PyTorch's\n", werr);
    model_free(m);
}

/* A Dropout inside a branch would stay inactive in training: refused, naming the If and the Dropout. */
static void dropout_refused(void)
{
    tt_expect("dropout in a branch", 1, "node '/If' (If): its body has a Dropout ('/drop/Dropout'), which would not "
              "drop in training", tt_onnxtune, "compile", "tests/ref/control/dropout_if.onnx", "--train", "*",
              "--head", "none", "--loss", "mse", "--batch", "4", "-o", tt_path("dropout_prog"), NULL);
}

int main(void)
{
    if (!tt_setup("test_control_run"))
        return 1;
    conform_cases();
    generated_code();
    fine_tune();
    dropout_refused();
    tt_cleanup();
    return test_summary("test_control_run");
}
