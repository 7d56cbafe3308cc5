/* test_train_e2e.c - training programs end to end against PyTorch: every case of tests/ref/train/ (or of
 * $ONNXTUNE_TRAIN_REF, e.g. the zoo's ZOODIR/train_ref made by make_train_ref.py --zoo) is
 * compiled with `onnxtune compile` (its compile_args), run with its run_args plus --metrics/--export, and
 * its per-step losses, learning rates and exported weights compared with the reference (tolerances from
 * case.json; every other initializer of the model must come back bitwise unchanged). Then the bad-input
 * errors (labels, lengths, dtypes, shapes, --init, --batch, globs), the NaN stop keeping the last good
 * weights, run-time hyperparameter overrides, and `onnxtune train`. Needs $ONNXTUNE (CTest sets it). */
#define _POSIX_C_SOURCE 200809L
#include "importer.h"
#include "ir.h"
#include "program.h"
#include "test.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- a small JSON reader (case.json, index.json, metrics lines) ---- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } JKind;

typedef struct Json {
    JKind kind;
    double num;
    char *str;              /* J_STR; the key for object members */
    struct Json *items;     /* J_ARR / J_OBJ members */
    size_t n;
    char *key;
} Json;

static const char *skip_ws(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return s;
}

static const char *parse_value(const char *s, Json *out);

static const char *parse_string(const char *s, char **out)
{
    if (*s != '"')
        return NULL;
    s++;
    size_t cap = 16, n = 0;
    char *buf = malloc(cap);
    while (buf && *s && *s != '"') {
        char c = *s++;
        if (c == '\\') {
            c = *s++;
            if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            else if (c == 'u') {    /* the fixtures' names are ASCII: keep \u00XX only */
                unsigned v = 0;
                for (int k = 0; k < 4 && isxdigit((unsigned char)*s); k++, s++)
                    v = v * 16 + (unsigned)(isdigit((unsigned char)*s) ? *s - '0' : (tolower(*s) - 'a' + 10));
                c = (char)(v < 128 ? v : '?');
            }
        }
        if (n + 2 > cap)
            buf = realloc(buf, cap *= 2);
        if (buf)
            buf[n++] = c;
    }
    if (!buf || *s != '"') {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *out = buf;
    return s + 1;
}

static const char *parse_items(const char *s, Json *out, char close, bool keyed)
{
    size_t cap = 4;
    out->items = calloc(cap, sizeof *out->items);
    s = skip_ws(s);
    if (*s == close)
        return s + 1;
    for (;;) {
        if (out->n == cap) {
            out->items = realloc(out->items, (cap *= 2) * sizeof *out->items);
            memset(out->items + out->n, 0, (cap - out->n) * sizeof *out->items);
        }
        Json *it = &out->items[out->n++];
        s = skip_ws(s);
        if (keyed) {
            if (!(s = parse_string(s, &it->key)))
                return NULL;
            s = skip_ws(s);
            if (*s++ != ':')
                return NULL;
        }
        if (!(s = parse_value(skip_ws(s), it)))
            return NULL;
        s = skip_ws(s);
        if (*s == ',') {
            s++;
            continue;
        }
        return *s == close ? s + 1 : NULL;
    }
}

static const char *parse_value(const char *s, Json *out)
{
    s = skip_ws(s);
    if (*s == '{') {
        out->kind = J_OBJ;
        return parse_items(s + 1, out, '}', true);
    }
    if (*s == '[') {
        out->kind = J_ARR;
        return parse_items(s + 1, out, ']', false);
    }
    if (*s == '"') {
        out->kind = J_STR;
        return parse_string(s, &out->str);
    }
    if (strncmp(s, "true", 4) == 0 || strncmp(s, "false", 5) == 0) {
        out->kind = J_BOOL;
        out->num = *s == 't';
        return s + (*s == 't' ? 4 : 5);
    }
    if (strncmp(s, "null", 4) == 0) {
        out->kind = J_NULL;
        return s + 4;
    }
    char *end;
    out->kind = J_NUM;
    out->num = strtod(s, &end);
    return end == s ? NULL : end;
}

static void json_free(Json *j)
{
    for (size_t i = 0; i < j->n; i++)
        json_free(&j->items[i]);
    free(j->items);
    free(j->str);
    free(j->key);
}

static const Json *jget(const Json *j, const char *key)
{
    for (size_t i = 0; j && j->kind == J_OBJ && i < j->n; i++)
        if (strcmp(j->items[i].key, key) == 0)
            return &j->items[i];
    return NULL;
}

static double jnum(const Json *j, const char *key, double dflt)
{
    const Json *v = jget(j, key);
    return v && v->kind == J_NUM ? v->num : dflt;
}

static const char *jstr(const Json *j, const char *key)
{
    const Json *v = jget(j, key);
    return v && v->kind == J_STR ? v->str : NULL;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[len] = '\0';
    fclose(f);
    return buf;
}

static bool load_json(const char *path, Json *out)
{
    memset(out, 0, sizeof *out);
    char *text = read_text(path);
    bool ok = text && parse_value(text, out);
    free(text);
    return ok;
}

/* ---- running commands ---- */

static const char *onnxtune;
static const char *ref_root = "tests/ref/train";   /* $ONNXTUNE_TRAIN_REF: the zoo's ZOODIR/train_ref */
static char tmpdir[256];
static char last_err[8192];    /* stderr of the last run */

/* Run argv (NULL-terminated) with stdout to /dev/null and stderr captured; the exit status. */
static int run(char *const *argv)
{
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmpdir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int out = open("/dev/null", O_WRONLY), err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out >= 0)
            dup2(out, 1);
        if (err >= 0)
            dup2(err, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid)
        return -1;
    char *e = read_text(errpath);
    snprintf(last_err, sizeof last_err, "%s", e ? e : "");
    free(e);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

typedef struct Argv {
    char *v[256];
    int n;
} Argv;

static void push(Argv *a, const char *s)
{
    if (a->n < 254)
        a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

static void push_json_strings(Argv *a, const Json *arr)
{
    for (size_t i = 0; arr && arr->kind == J_ARR && i < arr->n; i++)
        push(a, arr->items[i].str);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- comparing ---- */

/* The "loss" (and "lr") of every step line of a metrics file. */
static size_t read_metrics(const char *path, double *loss, double *lr, size_t max, size_t *val_lines)
{
    char *text = read_text(path);
    size_t n = 0;
    *val_lines = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        Json j;
        memset(&j, 0, sizeof j);
        if (!parse_value(line, &j) || j.kind != J_OBJ) {
            json_free(&j);
            n = (size_t)-1;
            break;
        }
        if (jget(&j, "step") && n < max) {
            loss[n] = jnum(&j, "loss", NAN);
            lr[n] = jnum(&j, "lr", NAN);
            n++;
        } else if (jstr(&j, "split")) {
            ++*val_lines;
        }
        json_free(&j);
    }
    free(text);
    return n;
}

static const Tensor *initializer(const Model *m, const char *name)
{
    const Value *v = graph_find_local(m->graph, name);
    return v && v->init ? v->init : NULL;
}

static double tensor_rel_err(const Tensor *got, const float *ref, size_t n, bool l2)
{
    const float *g = got->data;
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)g[i] - ref[i];
        if (l2) {
            e += d * d;
            r += (double)ref[i] * ref[i];
        } else {
            e = fmax(e, fabs(d));
            r = fmax(r, fabs((double)ref[i]));
        }
    }
    return l2 ? sqrt(e) / fmax(sqrt(r), 1e-30) : e / fmax(r, 1e-30);
}

/* Each name of `files` ({name: path}) in the export against its .npy: the worst error, or INFINITY. */
static double compare_weights(const Model *exported, const Json *files, bool l2, const char *cname, char *worst,
                              size_t wsize)
{
    double max_err = 0;
    for (size_t i = 0; files && i < files->n; i++) {
        const char *name = files->items[i].key, *path = files->items[i].str;
        const Tensor *t = initializer(exported, name);
        NpyArray a;
        char err[512];
        if (npy_read(path, &a, err, sizeof err) != NPY_OK) {
            CHECK_MSG(false, "%s: %s", cname, err);
            return INFINITY;
        }
        bool same = t && t->dtype == DT_FLOAT && a.dtype == RT_FLOAT && t->numel == a.numel;
        CHECK_MSG(same, "%s: the export has no float initializer '%s' of %zu elements", cname, name, a.numel);
        double e = same ? tensor_rel_err(t, a.data, a.numel, l2) : INFINITY;
        if (e > max_err || !same) {
            max_err = e;
            snprintf(worst, wsize, "%s", name);
        }
        npy_free(&a);
    }
    return max_err;
}

static bool in_keys(const Json *obj, const char *name)
{
    return obj && jget(obj, name) != NULL;
}

static bool in_strings(const Json *arr, const char *name)
{
    for (size_t i = 0; arr && arr->kind == J_ARR && i < arr->n; i++)
        if (strcmp(arr->items[i].str, name) == 0)
            return true;
    return false;
}

/* ---- the fixture cases ---- */

/* Cases compiled for a larger batch than they run, so every step is a padded one (rt_batch_rows). */
static int64_t compile_batch(const char *name, int64_t batch)
{
    return strcmp(name, "cnn_bn_adamw") == 0 || strcmp(name, "mlp_mse") == 0 ? 2 * batch : batch;
}

static void run_case(const char *name, int *failed)
{
    char path[512], prog[512], metrics[512], exported[512], adapters[512], bbuf[32];
    Json c;
    snprintf(path, sizeof path, "%s/%s/case.json", ref_root, name);
    if (!load_json(path, &c)) {
        CHECK_MSG(false, "%s: cannot read", path);
        ++*failed;
        return;
    }
    snprintf(prog, sizeof prog, "%s/%s", tmpdir, name);
    snprintf(metrics, sizeof metrics, "%s/%s.jsonl", tmpdir, name);
    snprintf(exported, sizeof exported, "%s/%s.onnx", tmpdir, name);
    snprintf(adapters, sizeof adapters, "%s/%s.adapters.onnx", tmpdir, name);
    const Json *want_adapters = jget(&c, "expected_adapters");
    bool lora = want_adapters && want_adapters->n > 0;
    const char *model = jstr(&c, "model");
    int64_t batch = (int64_t)jnum(&c, "batch", 0);
    snprintf(bbuf, sizeof bbuf, "%lld", (long long)compile_batch(name, batch));
    Argv a = {.n = 0};
    push(&a, onnxtune);
    push(&a, "compile");
    push(&a, model);
    push_json_strings(&a, jget(&c, "compile_args"));
    push(&a, "--batch");
    push(&a, bbuf);
    push(&a, "--opt-level");
    push(&a, "1");
    push(&a, "--werror");
    push(&a, "-o");
    push(&a, prog);
    double t0 = now();
    int rc = run(a.v);
    double t_compile = now() - t0;
    bool ok = rc == 0;
    CHECK_MSG(rc == 0, "%s: onnxtune compile exited %d:\n%s", name, rc, last_err);
    double loss_err = INFINITY, w_err = INFINITY, lr_err = INFINITY;
    char worst[256] = "";
    size_t steps = (size_t)jnum(&c, "steps", 0), got_steps = 0;
    if (ok) {
        a.n = 0;
        push(&a, prog);
        push_json_strings(&a, jget(&c, "run_args"));
        push(&a, "--metrics");
        push(&a, metrics);
        push(&a, "--export");
        push(&a, exported);
        if (lora) {     /* the merged export, and the adapters alone */
            push(&a, "--export-adapters");
            push(&a, adapters);
        }
        rc = run(a.v);
        ok = rc == 0;
        CHECK_MSG(rc == 0, "%s: the program exited %d:\n%s", name, rc, last_err);
    }
    const Json *tol = jget(&c, "tolerance");
    double loss_tol = jnum(tol, "loss_rel", 1e-4), w_tol = jnum(tol, "weight_rel", 1e-4);
    bool l2 = jstr(tol, "weight_metric") && strcmp(jstr(tol, "weight_metric"), "l2") == 0;
    if (ok) {
        double loss[1024], lr[1024];
        size_t vals;
        got_steps = read_metrics(metrics, loss, lr, 1024, &vals);
        const Json *ref = jget(&c, "losses"), *lrs = jget(&c, "lrs");
        CHECK_MSG(got_steps == steps && ref && ref->n == steps, "%s: %zu steps in the metrics, %zu expected", name,
                  got_steps, steps);
        loss_err = lr_err = 0;
        for (size_t t = 0; t < got_steps && t < steps && ref && ref->n == steps; t++) {
            double r = ref->items[t].num;
            loss_err = fmax(loss_err, fabs(loss[t] - r) / fmax(fabs(r), 1e-30));
            if (lrs && t < lrs->n)
                lr_err = fmax(lr_err, fabs(lr[t] - lrs->items[t].num) / fmax(fabs(lrs->items[t].num), 1e-30));
        }
        if (got_steps != steps)
            loss_err = INFINITY;
        CHECK_MSG(loss_err < loss_tol, "%s: losses differ from PyTorch's by %.3g (rel), tolerance %g", name, loss_err,
                  loss_tol);
        CHECK_MSG(lr_err < 1e-12, "%s: learning rates differ by %.3g (rel)", name, lr_err);

        Model *got = NULL, *orig = NULL;
        Diag d;
        diag_init(&d, exported);
        Status st = onnx_import_file(exported, &got, &d);
        CHECK_MSG(st == ST_OK, "%s: the export does not import: %s", name, d.msg);
        diag_init(&d, model);
        if (!st && onnx_import_file(model, &orig, &d) == ST_OK) {
            w_err = compare_weights(got, jget(&c, "expected"), l2, name, worst, sizeof worst);
            double b_err = compare_weights(got, jget(&c, "expected_buffers"), l2, name, worst, sizeof worst);
            w_err = fmax(w_err, b_err);
            Model *ad = NULL;
            diag_init(&d, adapters);
            if (lora && onnx_import_file(adapters, &ad, &d) == ST_OK)
                w_err = fmax(w_err, compare_weights(ad, want_adapters, l2, name, worst, sizeof worst));
            else if (lora) {
                CHECK_MSG(false, "%s: the adapters file does not import: %s", name, d.msg);
                w_err = INFINITY;
            }
            model_free(ad);
            CHECK_MSG(w_err < w_tol, "%s: exported weights differ from PyTorch's by %.3g (%s), tolerance %g", name,
                      w_err, worst, w_tol);
            const Json *removed = jget(&c, "removed_initializers");
            const Graph *og = orig->graph;
            for (size_t i = 0; i < og->nvalues; i++) {
                const Value *v = og->values[i];
                if (!v->is_initializer || !v->init || in_keys(jget(&c, "expected"), v->name) ||
                    in_keys(jget(&c, "expected_buffers"), v->name) || in_strings(removed, v->name))
                    continue;
                const Tensor *t = initializer(got, v->name);
                bool same = t && t->dtype == v->init->dtype && t->nbytes == v->init->nbytes &&
                            memcmp(t->data, v->init->data, t->nbytes) == 0;
                CHECK_MSG(same, "%s: initializer '%s' is %s in the export", name, v->name, t ? "changed" : "missing");
                if (!same)
                    w_err = INFINITY;
            }
            for (size_t i = 0; removed && i < removed->n; i++)
                CHECK_MSG(!initializer(got, removed->items[i].str), "%s: removed '%s' is still exported", name,
                          removed->items[i].str);
        }
        model_free(got);
        model_free(orig);
    }
    bool pass = ok && loss_err < loss_tol && w_err < w_tol && lr_err < 1e-12;
    *failed += !pass;
    printf("%-24s %-30s %5zu  %9.2g  %9.2g  %-26s %5.1f  %s\n", name, model ? model : "?", got_steps, loss_err, w_err,
           worst, t_compile, pass ? "PASS" : "FAIL");
    json_free(&c);
}

/* ---- bad input and the other behaviours, on the mlp_sgd program ---- */

static void write_npy(const char *path, RtDType dt, int rank, const size_t *dims, const void *data)
{
    char err[256];
    CHECK_MSG(npy_write(path, dt, rank, dims, data, err, sizeof err) == NPY_OK, "%s", err);
}

/* Run PROG with the given options (NULL-terminated); want exit status `want` and `msg` in stderr. */
static void expect(const char *what, int want, const char *msg, ...)
{
    Argv a = {.n = 0};
    va_list ap;
    va_start(ap, msg);
    for (const char *s; (s = va_arg(ap, const char *));)
        push(&a, s);
    va_end(ap);
    int rc = run(a.v);
    CHECK_MSG(rc == want && (!msg || strstr(last_err, msg)), "%s: exit %d (want %d), stderr: %s(want '%s')", what, rc,
              want, last_err, msg ? msg : "");
}

static void bad_inputs(void)
{
    char prog[512], x[512], y[512], bad[512], exp_path[512], met[512], init[600];
    snprintf(prog, sizeof prog, "%s/mlp_sgd", tmpdir);
    if (!exists(prog)) {
        CHECK_MSG(false, "%s was not built: no bad-input tests", prog);
        return;
    }
    snprintf(x, sizeof x, "tests/ref/train/mlp_sgd/x.npy");
    snprintf(y, sizeof y, "tests/ref/train/mlp_sgd/y.npy");
    snprintf(bad, sizeof bad, "%s/bad_y.npy", tmpdir);
    snprintf(exp_path, sizeof exp_path, "%s/bad.onnx", tmpdir);
    snprintf(met, sizeof met, "%s/bad.jsonl", tmpdir);
    NpyArray ya;
    char err[256];
    if (npy_read(y, &ya, err, sizeof err) != NPY_OK) {
        CHECK_MSG(false, "%s", err);
        return;
    }
    int64_t labels[64];
    size_t n = ya.numel < 64 ? ya.numel : 64;
    memcpy(labels, ya.data, n * sizeof *labels);
    npy_free(&ya);

    /* a label out of range: named with its sample, nothing written */
    labels[5] = 10;
    write_npy(bad, RT_INT64, 1, &n, labels);
    expect("label out of range", 1, "label 10 of sample 5 is out of range", prog, "--train-x", x, "--train-y", bad,
           "--export", exp_path, "--metrics", met, NULL);
    CHECK_MSG(!exists(exp_path) && !exists(met), "a failed run left %s or %s behind", exp_path, met);
    labels[5] = -1;
    write_npy(bad, RT_INT64, 1, &n, labels);
    expect("negative label", 1, "out of range", prog, "--train-x", x, "--train-y", bad, NULL);
    labels[5] = 0;
    /* X and Y of different lengths */
    size_t shorter = n - 1;
    write_npy(bad, RT_INT64, 1, &shorter, labels);
    expect("length mismatch", 1, "has 36 samples but --train-y", prog, "--train-x", x, "--train-y", bad, NULL);
    /* wrong dtypes */
    float fl[64] = {0};
    write_npy(bad, RT_FLOAT, 1, &n, fl);
    expect("float labels", 1, "int64", prog, "--train-x", x, "--train-y", bad, NULL);
    size_t xd[2] = {n, 16};
    double *xd64 = calloc(n * 16, sizeof *xd64);
    write_npy(bad, RT_DOUBLE, 2, xd, xd64);
    expect("float64 X", 1, "float32", prog, "--train-x", bad, "--train-y", y, NULL);
    /* wrong feature shape */
    size_t xd2[2] = {n, 15};
    write_npy(bad, RT_FLOAT, 2, xd2, xd64);
    expect("X shape", 1, "[N,16]", prog, "--train-x", bad, "--train-y", y, NULL);
    free(xd64);
    expect("missing file", 1, "no-such.npy", prog, "--train-x", "no-such.npy", "--train-y", y, NULL);
    /* --init: unknown name, wrong shape */
    expect("--init unknown", 1, "no initializer", prog, "--train-x", x, "--train-y", y, "--init", "nope=x.npy", NULL);
    snprintf(init, sizeof init, "fc1.weight=%s", y);
    expect("--init shape", 1, "fc1.weight", prog, "--train-x", x, "--train-y", y, "--init", init, NULL);
    /* options */
    expect("--batch over the compiled", 2, "larger than the compiled batch", prog, "--train-x", x, "--train-y", y,
           "--batch", "9", NULL);
    expect("compile-only option", 2, "fixed when the program is compiled", prog, "--train-x", x, "--train-y", y,
           "--optimizer", "adam", NULL);
    expect("adam option on sgd", 2, "not an option of sgd", prog, "--train-x", x, "--train-y", y, "--beta1", "0.5",
           NULL);
    expect("val pairs", 2, "go together", prog, "--train-x", x, "--train-y", y, "--val-x", x, NULL);
    expect("help", 0, NULL, prog, "--help", NULL);

    /* compile-time errors: a glob that matches nothing, a cut that is not a value */
    char out[512];
    snprintf(out, sizeof out, "%s/never", tmpdir);
    expect("glob", 2, "--train 'nothing.*' matches no initializer", onnxtune, "compile", "models/mlp/model.onnx",
           "--train", "nothing.*", "--head", "none", "-o", out, NULL);
    expect("cut", 2, "--cut 'nowhere'", onnxtune, "compile", "models/mlp/model.onnx", "--head", "linear:3", "--cut",
           "nowhere", "-o", out, NULL);
    expect("--infer with training options", 2, "training option", onnxtune, "compile", "models/mlp/model.onnx",
           "--infer", "--train", "*", "-o", out, NULL);
    CHECK_MSG(!exists(out), "a failed compile wrote %s", out);
}

/* A loss that turns NaN/Inf: the run stops at that step and exports the weights of the step before. */
static void nan_stop(void)
{
    char prog[512], x8[512], y8[512], good[512], stopped[512], met[512];
    snprintf(prog, sizeof prog, "%s/mlp_sgd", tmpdir);
    snprintf(x8, sizeof x8, "%s/x8.npy", tmpdir);
    snprintf(y8, sizeof y8, "%s/y8.npy", tmpdir);
    snprintf(good, sizeof good, "%s/good.onnx", tmpdir);
    snprintf(stopped, sizeof stopped, "%s/stopped.onnx", tmpdir);
    snprintf(met, sizeof met, "%s/nan.jsonl", tmpdir);
    NpyArray xa, ya;
    char err[256];
    if (!exists(prog) || npy_read("tests/ref/train/mlp_sgd/x.npy", &xa, err, sizeof err) != NPY_OK)
        return;
    if (npy_read("tests/ref/train/mlp_sgd/y.npy", &ya, err, sizeof err) != NPY_OK) {
        npy_free(&xa);
        return;
    }
    size_t xd[2] = {8, 16}, yd = 8;   /* one batch: one step per epoch */
    write_npy(x8, RT_FLOAT, 2, xd, xa.data);
    write_npy(y8, RT_INT64, 1, &yd, ya.data);
    npy_free(&xa);
    npy_free(&ya);
    /* lr 1e30: step 1's update throws the weights so far that step 2's loss is not finite */
    expect("one step", 0, NULL, prog, "--train-x", x8, "--train-y", y8, "--epochs", "1", "--lr", "1e30",
           "--export", good, NULL);
    expect("NaN stop", 1, "at step 2 (epoch 2", prog, "--train-x", x8, "--train-y", y8, "--epochs", "5", "--lr",
           "1e30", "--export", stopped, "--metrics", met, NULL);
    char *a = read_text(good), *b = read_text(stopped);
    struct stat sa, sb;
    bool same = a && b && stat(good, &sa) == 0 && stat(stopped, &sb) == 0 && sa.st_size == sb.st_size &&
                memcmp(a, b, (size_t)sa.st_size) == 0;
    CHECK_MSG(same, "the export after the NaN stop is not the model after step 1");
    double loss[8], lr[8];
    size_t vals;
    CHECK_MSG(read_metrics(met, loss, lr, 8, &vals) == 1, "the metrics of a NaN stop hold only the good step");
    free(a);
    free(b);
}

/* Run-time overrides: the same program with --momentum 0.5 must differ from its compiled 0.9, and match
 * a program compiled with 0.5. Validation lines appear with --val-split. */
static void overrides(void)
{
    char p9[512], p5[512], m9[512], m5[512], mo[512];
    snprintf(p9, sizeof p9, "%s/mlp_sgd", tmpdir);
    snprintf(p5, sizeof p5, "%s/mlp_m5", tmpdir);
    snprintf(m9, sizeof m9, "%s/o9.jsonl", tmpdir);
    snprintf(m5, sizeof m5, "%s/o5.jsonl", tmpdir);
    snprintf(mo, sizeof mo, "%s/oo.jsonl", tmpdir);
    if (!exists(p9))
        return;
    const char *x = "tests/ref/train/mlp_sgd/x.npy", *y = "tests/ref/train/mlp_sgd/y.npy";
    expect("compile momentum 0.5", 0, NULL, onnxtune, "compile", "models/mlp/model.onnx", "--train", "*", "--head",
           "none", "--optimizer", "sgd", "--momentum", "0.5", "--batch", "8", "--epochs", "2", "--lr", "0.1",
           "--no-shuffle", "--opt-level", "1", "-o", p5, NULL);
    expect("compiled 0.5", 0, NULL, p5, "--train-x", x, "--train-y", y, "--metrics", m5, NULL);
    expect("overridden 0.5", 0, NULL, p9, "--train-x", x, "--train-y", y, "--epochs", "2", "--lr", "0.1",
           "--no-shuffle", "--momentum", "0.5", "--metrics", mo, NULL);
    expect("compiled 0.9", 0, NULL, p9, "--train-x", x, "--train-y", y, "--epochs", "2", "--lr", "0.1",
           "--no-shuffle", "--metrics", m9, "--val-split", "0.25", NULL);
    double l5[16], lo[16], l9[16], lr[16];
    size_t v5, vo, v9;
    size_t n5 = read_metrics(m5, l5, lr, 16, &v5), no = read_metrics(mo, lo, lr, 16, &vo);
    size_t n9 = read_metrics(m9, l9, lr, 16, &v9);
    CHECK_MSG(n5 == 10 && no == 10 && memcmp(l5, lo, sizeof l5[0] * 10) == 0,
              "--momentum 0.5 at run time differs from compiling it (%zu, %zu steps)", n5, no);
    CHECK_MSG(n9 == 8 && v9 == 2, "--val-split 0.25: %zu steps (want 8: 27 samples), %zu validation lines", n9, v9);
    CHECK_MSG(n9 > 2 && l9[2] != lo[2], "the compiled momentum 0.9 gave the same losses as 0.5");
    /* --drop-last: 36 samples in batches of 8 are 4 steps an epoch, the same 4 as with the short batch */
    expect("drop last", 0, NULL, p9, "--train-x", x, "--train-y", y, "--epochs", "2", "--lr", "0.1", "--no-shuffle",
           "--drop-last", "--metrics", mo, NULL);
    size_t nd = read_metrics(mo, lo, lr, 16, &vo);
    char full[512];
    snprintf(full, sizeof full, "%s/mlp_sgd.jsonl", tmpdir);
    size_t nf = read_metrics(full, l5, lr, 16, &v5);
    CHECK_MSG(nd == 8 && nf == 10 && memcmp(lo, l5, 4 * sizeof lo[0]) == 0,
              "--drop-last: %zu steps (want 8), the first 4 unlike mlp_sgd's", nd);
}

/* `onnxtune train` compiles into its cache and runs: the same losses as the compile route. */
static void train_command(void)
{
    char cache[512], m1[512], m2[512];
    snprintf(cache, sizeof cache, "ONNXTUNE_CACHE=%s/cache", tmpdir);
    snprintf(m1, sizeof m1, "%s/mlp_sgd.jsonl", tmpdir);
    snprintf(m2, sizeof m2, "%s/train_cmd.jsonl", tmpdir);
    if (!exists(m1))
        return;
    putenv(cache);
    expect("onnxtune train", 0, NULL, onnxtune, "train", "models/mlp/model.onnx", "--train", "*", "--head", "none",
           "--loss", "cross_entropy", "--optimizer", "sgd", "--momentum", "0.9", "--weight-decay", "0.0", "--batch",
           "8", "--train-x", "tests/ref/train/mlp_sgd/x.npy", "--train-y", "tests/ref/train/mlp_sgd/y.npy", "--epochs",
           "2", "--lr", "0.1", "--seed", "0", "--no-shuffle", "--metrics", m2, NULL);
    double a[16], b[16], lr[16];
    size_t va, vb;
    size_t na = read_metrics(m1, a, lr, 16, &va), nb = read_metrics(m2, b, lr, 16, &vb);
    CHECK_MSG(na == 10 && nb == 10 && memcmp(a, b, sizeof a[0] * 10) == 0, "onnxtune train: %zu steps, losses differ",
              nb);
    /* the second run is served from the cache: no new program in it */
    expect("onnxtune train (cached)", 0, NULL, onnxtune, "train", "models/mlp/model.onnx", "--train", "*", "--head",
           "none", "--loss", "cross_entropy", "--optimizer", "sgd", "--momentum", "0.9", "--weight-decay", "0.0",
           "--batch", "8", "--train-x", "tests/ref/train/mlp_sgd/x.npy", "--train-y", "tests/ref/train/mlp_sgd/y.npy",
           "--epochs", "1", "--quiet", NULL);
}

/* A model exported with a fixed batch of 1 trains batched along that dim: the MLP rewritten so, run
 * like mlp_sgd, gives mlp_sgd's losses. */
static void fixed_batch_one(void)
{
    char path[512], prog[512], met[512], ref[512];
    snprintf(path, sizeof path, "%s/mlp_b1.onnx", tmpdir);
    snprintf(prog, sizeof prog, "%s/mlp_b1", tmpdir);
    snprintf(met, sizeof met, "%s/mlp_b1.jsonl", tmpdir);
    snprintf(ref, sizeof ref, "%s/mlp_sgd.jsonl", tmpdir);
    Model *m = NULL;
    Diag d;
    diag_init(&d, "models/mlp/model.onnx");
    if (onnx_import_file("models/mlp/model.onnx", &m, &d) != ST_OK) {
        CHECK_MSG(false, "%s", d.msg);
        return;
    }
    Graph *g = m->graph;
    for (size_t i = 0; i < g->ninputs + g->noutputs; i++) {
        Value *v = i < g->ninputs ? g->inputs[i] : g->outputs[i - g->ninputs];
        v->shape.dim[0] = 1;
        v->shape.sym[0] = NULL;
    }
    CHECK_MSG(onnx_export_file(m, NULL, path, &d) == ST_OK, "%s", d.msg);
    model_free(m);
    expect("compile batch-1 model", 0, NULL, onnxtune, "compile", path, "--train", "*", "--head", "none", "--momentum",
           "0.9", "--batch", "8", "--opt-level", "1", "-o", prog, NULL);
    expect("train batch-1 model", 0, NULL, prog, "--train-x", "tests/ref/train/mlp_sgd/x.npy", "--train-y",
           "tests/ref/train/mlp_sgd/y.npy", "--epochs", "2", "--lr", "0.1", "--no-shuffle", "--metrics", met, NULL);
    double a[16], b[16], lr[16];
    size_t va, vb;
    size_t na = read_metrics(met, a, lr, 16, &va), nb = read_metrics(ref, b, lr, 16, &vb);
    CHECK_MSG(na == 10 && nb == 10 && memcmp(a, b, sizeof a[0] * 10) == 0,
              "the batch-1 export of the MLP trains differently (%zu steps)", na);
}

/* ---- several inputs (bert3_last_cls_sgd's program: input_ids, attention_mask, token_type_ids) ---- */

#define B3 "tests/ref/train/bert3_last_cls_sgd/"

static void several_inputs(void)
{
    char prog[512], met_a[512], met_b[512], short_tt[512], i32_tt[512], pa[512], pb[512], perm[3][512];
    snprintf(prog, sizeof prog, "%s/bert3_last_cls_sgd", tmpdir);
    if (!exists(prog)) {
        CHECK_MSG(false, "%s was not built: no several-input tests", prog);
        return;
    }
    const char *ids = "input_ids=" B3 "x_input_ids.npy", *mask = "attention_mask=" B3 "x_attention_mask.npy",
               *tt = "token_type_ids=" B3 "x_token_type_ids.npy", *y = B3 "y.npy", *npz = B3 "data.npz";
    snprintf(met_a, sizeof met_a, "%s/b3_a.jsonl", tmpdir);
    snprintf(met_b, sizeof met_b, "%s/b3_b.jsonl", tmpdir);
    snprintf(short_tt, sizeof short_tt, "token_type_ids=%s/b3_short.npy", tmpdir);
    snprintf(i32_tt, sizeof i32_tt, "token_type_ids=%s/b3_i32.npy", tmpdir);
    NpyArray a;
    char err[256];
    if (npy_read(B3 "x_token_type_ids.npy", &a, err, sizeof err) != NPY_OK) {
        CHECK_MSG(false, "%s", err);
        return;
    }
    size_t dims[2] = {a.dims[0] - 3, a.dims[1]}, n = a.dims[0], t = a.dims[1];
    write_npy(strchr(short_tt, '=') + 1, RT_INT64, 2, dims, a.data);
    int32_t *i32 = malloc(a.numel * sizeof *i32);
    for (size_t i = 0; i < a.numel; i++)
        i32[i] = (int32_t)((const int64_t *)a.data)[i];
    write_npy(strchr(i32_tt, '=') + 1, RT_INT32, 2, a.dims, i32);
    free(i32);
    npy_free(&a);

    /* the errors: one line naming the input or file, exit status 1 */
    expect("several inputs: one missing", 1, "no file for the model's input 'token_type_ids'", prog, "--train-x", ids,
           "--train-x", mask, "--train-y", y, NULL);
    expect("several inputs: not an input", 1, "'segment_ids' is not an input of the model (its inputs: input_ids, "
           "attention_mask, token_type_ids)", prog, "--train-x", ids, "--train-x", mask, "--train-x",
           "segment_ids=" B3 "x_token_type_ids.npy", "--train-y", y, NULL);
    expect("several inputs: npz without the inputs' keys", 1, "has no 'input_ids' member", prog, "--train-x",
           "tests/data/npz/arrays.npz", NULL);
    expect("several inputs: rows disagree", 1, "b3_short.npy has 17 samples but input_ids=" B3 "x_input_ids.npy has 20",
           prog, "--train-x", ids, "--train-x", mask, "--train-x", short_tt, "--train-y", y, NULL);
    expect("several inputs: y rows disagree", 1, "has 20 samples but", prog, "--train-x", ids, "--train-x", mask,
           "--train-x", tt, "--train-y", "tests/ref/train/mlp_sgd/y.npy", NULL);
    expect("several inputs: wrong dtype", 1, "b3_i32.npy is int32 [20,8], but the model wants int64 [N,8] (the "
           "model's input 'token_type_ids')", prog, "--train-x", ids, "--train-x", mask, "--train-x", i32_tt,
           "--train-y", y, NULL);
    expect("several inputs: one plain file", 1, "the model has 3 inputs", prog, "--train-x", B3 "x_input_ids.npy",
           "--train-y", y, NULL);
    expect("several inputs: eval, one missing", 1, "--x: no file for the model's input 'attention_mask'", prog, "eval",
           "--x", ids, "--x", tt, "--y", y, NULL);

    /* --pool and --mask-input: errors at compile time */
    char out[512];
    snprintf(out, sizeof out, "%s/b3_pool_bad", tmpdir);
    expect("--pool on a [N, F] cut", 1, "pooling needs [N, T, D]", onnxtune, "compile", "models/mlp/model.onnx",
           "--head", "linear:3", "--pool", "cls", "-o", out, NULL);
    expect("--mask-input not an input", 2, "--mask-input 'nope' is not an input of the model", onnxtune, "compile",
           "models/bert_tokens/model.onnx", "--head", "linear:3", "--pool", "mean", "--mask-input", "nope", "-o", out,
           NULL);
    expect("--pool without a head", 2, "--pool needs a head", onnxtune, "compile", "models/bert_tokens/model.onnx",
           "--pool", "mean", "-o", out, NULL);
    expect("--pool bogus", 2, "expected cls, mean or last", onnxtune, "compile", "models/bert_tokens/model.onnx",
           "--head", "linear:3", "--pool", "max", "-o", out, NULL);

    /* NAME=FILE.npy and the .npz train alike, shuffled: a sample's inputs stay together */
    expect("several inputs: files, shuffled", 0, NULL, prog, "--train-x", tt, "--train-x", ids, "--train-x", mask,
           "--train-y", y, "--epochs", "2", "--batch", "3", "--seed", "5", "--metrics", met_a, NULL);
    expect("several inputs: npz, shuffled", 0, NULL, prog, "--train-x", npz, "--epochs", "2", "--batch", "3", "--seed",
           "5", "--metrics", met_b, NULL);
    double la[64], lb[64], lr[64];
    size_t va, vb, na = read_metrics(met_a, la, lr, 64, &va), nb = read_metrics(met_b, lb, lr, 64, &vb);
    CHECK_MSG(na == 14 && nb == na && memcmp(la, lb, na * sizeof la[0]) == 0,
              "several inputs: files and npz train differently (%zu, %zu steps)", na, nb);

    /* predictions follow their sample: reversing every input reverses the logits (batch 4: rows land in other
     * batches and other places, and in a short last batch) */
    snprintf(pa, sizeof pa, "%s/b3_pred.npy", tmpdir);
    snprintf(pb, sizeof pb, "%s/b3_pred_rev.npy", tmpdir);
    const char *names[3] = {"input_ids", "attention_mask", "token_type_ids"};
    char *xa[3];
    for (int k = 0; k < 3; k++) {
        char src[512];
        snprintf(src, sizeof src, B3 "x_%s.npy", names[k]);
        snprintf(perm[k], sizeof perm[k], "%s=%s/b3_rev_%s.npy", names[k], tmpdir, names[k]);
        xa[k] = perm[k];
        if (npy_read(src, &a, err, sizeof err) != NPY_OK) {
            CHECK_MSG(false, "%s", err);
            return;
        }
        int64_t *r = malloc(a.nbytes);
        for (size_t i = 0; i < n; i++)
            memcpy(r + i * t, (const int64_t *)a.data + (n - 1 - i) * t, t * sizeof *r);
        write_npy(strchr(perm[k], '=') + 1, RT_INT64, 2, a.dims, r);
        free(r);
        npy_free(&a);
    }
    expect("several inputs: predict", 0, NULL, prog, "predict", "--x", ids, "--x", mask, "--x", tt, "--output", pa,
           "--batch", "3", NULL);
    expect("several inputs: predict reversed", 0, NULL, prog, "predict", "--x", xa[2], "--x", xa[0], "--x", xa[1],
           "--output", pb, NULL);
    NpyArray p1, p2;
    if (npy_read(pa, &p1, err, sizeof err) == NPY_OK && npy_read(pb, &p2, err, sizeof err) == NPY_OK) {
        size_t k = p1.dims[1];
        bool same = p1.dims[0] == n && p2.dims[0] == n;
        double e = 0;
        for (size_t i = 0; same && i < n; i++)
            for (size_t j = 0; j < k; j++)
                e = fmax(e, fabs(((float *)p1.data)[i * k + j] - ((float *)p2.data)[(n - 1 - i) * k + j]));
        CHECK_MSG(same && e < 1e-5, "several inputs: reversed samples predict other logits (max diff %g)", e);
        npy_free(&p1);
        npy_free(&p2);
    } else {
        CHECK_MSG(false, "%s", err);
    }
}

int main(void)
{
    onnxtune = getenv("ONNXTUNE");
    if (!onnxtune || !*onnxtune) {
        fprintf(stderr, "test_train_e2e: set ONNXTUNE to the onnxtune binary (CTest does)\n");
        return 1;
    }
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_train_e2e-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "test_train_e2e: cannot create %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }
    const char *env_root = getenv("ONNXTUNE_TRAIN_REF");
    if (env_root && *env_root)
        ref_root = env_root;
    char index_path[600];
    snprintf(index_path, sizeof index_path, "%s/index.json", ref_root);
    Json index;
    if (!load_json(index_path, &index) || !jget(&index, "cases")) {
        fprintf(stderr, "test_train_e2e: cannot read %s (run from the repo root)\n", index_path);
        return 1;
    }
    const Json *cases = jget(&index, "cases");
    int failed = 0;
    printf("%-24s %-30s %5s  %9s  %9s  %-26s %5s\n", "case", "model", "steps", "loss err", "weight err",
           "(worst tensor)", "cc s");
    for (size_t i = 0; i < cases->n; i++)
        run_case(cases->items[i].str, &failed);
    printf("train cases: %zu, %d failed (relative errors vs PyTorch; tolerance per case.json, 1e-4)\n", cases->n,
           failed);
    if (strcmp(ref_root, "tests/ref/train") == 0) {   /* the rest runs on the committed cases' programs */
        bad_inputs();
        nan_stop();
        overrides();
        fixed_batch_one();
        train_command();
        several_inputs();
    }
    json_free(&index);
    if (!test_failures) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_train_e2e: could not remove %s\n", tmpdir);
    } else {
        printf("(files kept in %s)\n", tmpdir);
    }
    return test_summary("test_train_e2e");
}
