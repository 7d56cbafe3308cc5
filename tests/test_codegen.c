/* test_codegen.c - end to end: `onnxtune compile --infer` on the example models (models/), the
 * generated C built with -Werror, PROG run on the committed inputs and its outputs compared with the
 * committed PyTorch outputs (relative L2 error <= 1e-4), at the batch compiled for and at another
 * batch (chunks, the last one padded). Also `onnxtune run` with its cache, and the errors PROG and
 * compile must give: wrong input name, shape and dtype, an op without an emitter. The tiny models of
 * tests/codegen/ (tests/ref/make_codegen_models.py) cover a 0-d input shared by every chunk, a model
 * that cannot run in chunks, and a symbolic dim only an example input fixes.
 * Needs $ONNXTUNE (set by CTest) and a C compiler; it prints what differed.
 */
#include "test.h"

#include "program.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *tool;
static char tmp[PATH_MAX];

/* Run a shell command; its output goes to tmp/log (shown on failure). Returns the exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[sizeof cmd + PATH_MAX + 32];
    snprintf(full, sizeof full, "%s > '%s/log' 2>&1", cmd, tmp);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void show_log(void)
{
    char path[PATH_MAX + 8], line[512];
    snprintf(path, sizeof path, "%s/log", tmp);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "    | %s", line);
    if (f)
        fclose(f);
}

static bool file_contains(const char *path, const char *text)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static bool log_contains(const char *text)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/log", tmp);
    return file_contains(path, text);
}

/* Relative L2 error of got against want (both NPY files); -1 when they cannot be compared. */
static double rel_error(const char *got_path, const char *want_path)
{
    NpyArray g, w;
    char err[512];
    if (npy_read(got_path, &g, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "    %s\n", err);
        return -1;
    }
    if (npy_read(want_path, &w, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "    %s\n", err);
        npy_free(&g);
        return -1;
    }
    double num = 0, den = 0, r = -1;
    bool same = g.dtype == RT_FLOAT && w.dtype == RT_FLOAT && g.rank == w.rank && g.numel == w.numel;
    for (int i = 0; same && i < g.rank; i++)
        same = g.dims[i] == w.dims[i];
    if (same) {
        const float *a = g.data, *b = w.data;
        for (size_t i = 0; i < g.numel; i++) {
            num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            den += (double)b[i] * b[i];
        }
        r = den > 0 ? sqrt(num / den) : sqrt(num);
    } else {
        fprintf(stderr, "    %s and %s differ in dtype or shape (%s rank %d vs %s rank %d)\n", got_path, want_path,
                rt_dtype_name(g.dtype), g.rank, rt_dtype_name(w.dtype), w.rank);
    }
    npy_free(&g);
    npy_free(&w);
    return r;
}

typedef struct Example {
    const char *dir, *model, *input, *output;
    int batch;          /* the batch of input_0.npy */
} Example;

static const Example examples[] = {
    {"models/mlp", "model.onnx", "x", "logits", 4},
    {"models/cnn", "model.onnx", "image", "logits", 2},
    {"models/transformer", "model.onnx", "tokens", "logits", 2},
    {"models/transformer", "model_opset13.onnx", "tokens", "logits", 2},
    {"models/lstm", "model.onnx", "tokens", "logits", 2},
    {"models/gru", "model.onnx", "tokens", "logits", 2},
    {"models/digits", "digits_cnn.onnx", "image", "logits", 2},
};

/* Compile e for `batch`, run both committed input sets, compare. */
static void check_example(const Example *e, int batch)
{
    char prog[PATH_MAX + 64], out[PATH_MAX + 64], got[PATH_MAX + 128], want[PATH_MAX];
    snprintf(prog, sizeof prog, "%s/prog", tmp);
    int rc = run("'%s' compile '%s/%s' --infer --batch %d -o '%s' --emit-c --werror", tool, e->dir, e->model, batch,
                 prog);
    CHECK_MSG(rc == 0, "compile %s/%s --batch %d exited %d", e->dir, e->model, batch, rc);
    if (rc) {
        show_log();
        return;
    }
    /* the generated file reads well: one commented block per node, with op and shapes */
    char c_path[sizeof prog + 4];
    snprintf(c_path, sizeof c_path, "%s.c", prog);
    FILE *f = fopen(c_path, "r");
    char line[4096];
    bool has_block_comment = false;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "    /* ") && strstr(line, "): ") && strstr(line, "] -> ["))
            has_block_comment = true;
    if (f)
        fclose(f);
    CHECK_MSG(has_block_comment, "%s has no '/* NAME (OP): in[dims] -> [dims] */' node comments", c_path);

    static const char *const suffixes[] = {"", "_b3"};
    for (int s = 0; s < 2; s++) {
        snprintf(out, sizeof out, "%s/out%d", tmp, s);
        rc = run("'%s' --input %s='%s/input_0%s.npy' --output-dir '%s'", prog, e->input, e->dir, suffixes[s], out);
        CHECK_MSG(rc == 0, "%s (batch %d) on input_0%s.npy exited %d", e->model, batch, suffixes[s], rc);
        if (rc) {
            show_log();
            continue;
        }
        snprintf(got, sizeof got, "%s/%s.npy", out, e->output);
        snprintf(want, sizeof want, "%s/output_0%s.npy", e->dir, suffixes[s]);
        double err = rel_error(got, want);
        CHECK_MSG(err >= 0 && err <= 1e-4, "%s/%s compiled for batch %d, input_0%s.npy: relative L2 error %g",
                  e->dir, e->model, batch, suffixes[s], err);
        if (err >= 0)
            printf("  %s/%s batch %d, input_0%s: rel. error %.2g\n", e->dir, e->model, batch, suffixes[s], err);
    }
}

static void check_errors(void)
{
    char prog[PATH_MAX + 64];
    snprintf(prog, sizeof prog, "%s/prog", tmp);
    CHECK(run("'%s' compile models/cnn/model.onnx --infer --batch 2 -o '%s' --werror", tool, prog) == 0);
    /* PROG checks names, shapes and dtypes before computing */
    CHECK(run("'%s' --input nope=models/cnn/input_0.npy --output-dir '%s/o'", prog, tmp) != 0);
    CHECK_MSG(log_contains("no input named 'nope'"), "wrong input name: message");
    CHECK(run("'%s' --input image=models/mlp/input_0.npy --output-dir '%s/o'", prog, tmp) != 0);
    CHECK_MSG(log_contains("input 'image'") && log_contains("[4,16]") && log_contains("[N,1,8,8]"),
              "wrong input shape: message");
    CHECK(run("'%s' --input image=models/lstm/input_0.npy --output-dir '%s/o'", prog, tmp) != 0);
    CHECK_MSG(log_contains("int64"), "wrong input dtype: message");
    CHECK(run("'%s' --output-dir '%s/o'", prog, tmp) != 0);
    CHECK_MSG(log_contains("missing --input image"), "missing input: message");

    /* conform: a folder that is not there, after one with cases, is refused before any case is collected
     * (the sanitizer build's LeakSanitizer checks that nothing collected leaks) */
    CHECK(run("'%s' conform tests/control_cases '%s/nope'", tool, tmp) == 2);
    CHECK_MSG(log_contains("nope is not a folder"), "conform: a bad folder: message");

    /* a node without an emitter is a compile-time error naming the node and the op */
    const char *nonzero = "../shared/onnx-tests/node/test_nonzero_example/model.onnx";
    if (access(nonzero, R_OK) == 0) {
        CHECK(run("'%s' compile %s --infer -o '%s'", tool, nonzero, prog) != 0);
        CHECK_MSG(log_contains("NonZero"), "an op without an emitter: message names it");
    }
}

/* Write a float32 NPY of `rank` dims with x[i] = f(i). */
static void write_npy(const char *name, int rank, const size_t *dims, float scale, float offset)
{
    char path[PATH_MAX + 64], err[256];
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)i * scale + offset;
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    CHECK_MSG(npy_write(path, RT_FLOAT, rank, dims, v, err, sizeof err) == NPY_OK, "%s", err);
    free(v);
}

/* got/NAME.npy as float32 with numel n, or NULL */
static float *read_floats(const char *name, size_t n, NpyArray *a)
{
    char path[PATH_MAX + 64], err[256];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    if (npy_read(path, a, err, sizeof err) != NPY_OK || a->dtype != RT_FLOAT || a->numel != n) {
        fprintf(stderr, "    %s: %s\n", path, err);
        return NULL;
    }
    return a->data;
}

static void check_small_models(void)
{
    char prog[PATH_MAX + 64];
    snprintf(prog, sizeof prog, "%s/small", tmp);
    /* a 0-d input shared by all chunks: batch 5 in chunks of 2 */
    write_npy("x53.npy", 2, (size_t[]){5, 3}, 1.0f, -7.0f);
    write_npy("s.npy", 0, NULL, 0.0f, 2.5f);
    CHECK(run("'%s' compile tests/codegen/scalar_mul.onnx --infer --batch 2 -o '%s' --werror", tool, prog) == 0);
    CHECK(run("'%s' --input x='%s/x53.npy' --input s='%s/s.npy' --output-dir '%s/sm'", prog, tmp, tmp, tmp) == 0);
    NpyArray a;
    const float *y = read_floats("sm/y.npy", 15, &a);
    CHECK_MSG(y != NULL, "scalar_mul: no output of 5x3");
    for (size_t i = 0; y && i < 15; i++)
        CHECK_NEAR(y[i], ((float)i - 7.0f) * 2.5f, 0);
    if (y)
        npy_free(&a);

    /* an output that does not grow with the batch: other batches are refused, naming --batch 5 */
    CHECK(run("'%s' compile tests/codegen/batch_sum.onnx --infer --batch 2 -o '%s' --werror", tool, prog) == 0);
    CHECK(run("'%s' --input x='%s/x53.npy' --output-dir '%s/bs'", prog, tmp, tmp) != 0);
    CHECK_MSG(log_contains("does not grow with the batch") && log_contains("--batch 5"),
              "batch_sum at another batch: message");
    CHECK(run("'%s' compile tests/codegen/batch_sum.onnx --infer --batch 5 -o '%s' --werror", tool, prog) == 0);
    CHECK(run("'%s' --input x='%s/x53.npy' --output-dir '%s/bs'", prog, tmp, tmp) == 0);
    y = read_floats("bs/y.npy", 3, &a);
    for (size_t j = 0; y && j < 3; j++) /* sum over i < 5 of (3i + j - 7) */
        CHECK_NEAR(y[j], 3.0 * (0 + 1 + 2 + 3 + 4) + 5.0 * j - 35.0, 1e-4);
    if (y)
        npy_free(&a);

    /* a symbolic dim: refused with a hint, then fixed by an example input */
    CHECK(run("'%s' compile tests/codegen/symbolic_seq.onnx --infer -o '%s'", tool, prog) != 0);
    CHECK_MSG(log_contains("'seq'") && log_contains("--input x=FILE.npy"), "symbolic dim: message");
    CHECK(run("'%s' compile tests/codegen/symbolic_seq.onnx --infer --input x='%s/x53.npy' -o '%s' --werror", tool, tmp,
              prog) == 0);
    CHECK(run("'%s' --input x='%s/x53.npy' --output-dir '%s/ss'", prog, tmp, tmp) == 0);
    y = read_floats("ss/y.npy", 15, &a);
    for (size_t i = 0; y && i < 15; i++)
        CHECK_NEAR(y[i], (float)i - 7.0f > 0 ? (float)i - 7.0f : 0.0f, 0);
    if (y)
        npy_free(&a);
}

/* The C compiler's flags (codegen/cc.c), seen through a $CC that records its arguments: a generated file
 * that only calls the runtime builds at -O1, one with loops of its own at -O2; ONNXTUNE_LD picks the
 * linker, empty leaves the compiler's. */
static void check_cc_flags(void)
{
    char wrap[PATH_MAX + 16], args[PATH_MAX + 16], prog[PATH_MAX + 16];
    snprintf(wrap, sizeof wrap, "%s/cc-args.sh", tmp);
    snprintf(args, sizeof args, "%s/cc-args", tmp);
    snprintf(prog, sizeof prog, "%s/flags", tmp);
    FILE *f = fopen(wrap, "w");
    if (!f || fprintf(f, "#!/bin/sh\necho \" $* \" > '%s'\nexec cc \"$@\"\n", args) < 0 || fclose(f) != 0 ||
        chmod(wrap, 0755) != 0) {
        CHECK_MSG(false, "cannot write %s", wrap);
        return;
    }
    CHECK(run("CC='%s' '%s' compile models/cnn/model.onnx --infer -o '%s' --werror", wrap, tool, prog) == 0);
    CHECK_MSG(file_contains(args, " -O1 ") && !file_contains(args, " -O2 "), "a glue-only file: not at -O1");
    CHECK(run("CC='%s' ONNXTUNE_LD=bfd '%s' compile models/cnn/model.onnx --infer -o '%s'", wrap, tool, prog) == 0);
    CHECK_MSG(file_contains(args, " -fuse-ld=bfd "), "ONNXTUNE_LD=bfd: not passed on");
    CHECK(run("CC='%s' ONNXTUNE_LD= '%s' compile models/cnn/model.onnx --infer -o '%s'", wrap, tool, prog) == 0);
    CHECK_MSG(!file_contains(args, "-fuse-ld"), "ONNXTUNE_LD= (empty): a linker was still chosen");
    /* BatchNormalization in training mode is generated as loops */
    const char *bn = "../shared/onnx-tests/node/test_batchnorm_example_training_mode/model.onnx";
    if (access(bn, R_OK) == 0) {
        CHECK(run("CC='%s' '%s' compile %s --infer -o '%s' --werror", wrap, tool, bn, prog) == 0);
        CHECK_MSG(file_contains(args, " -O2 "), "a file with loops: not at -O2");
    }
}

static size_t cache_entries(const char *cache)
{
    size_t entries = 0;
    DIR *d = opendir(cache);
    struct dirent *e;
    while (d && (e = readdir(d)))
        entries += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return entries;
}

/* `onnxtune run` twice with the environment `env` ("" or "VAR=VALUE "): right outputs both times */
static void run_cached(const char *cache, const char *env)
{
    char out[PATH_MAX + 16], got[PATH_MAX + 64];
    snprintf(out, sizeof out, "%s/run", tmp);
    for (int i = 0; i < 2; i++) {
        int rc = run("%sONNXTUNE_CACHE='%s' '%s' run models/cnn/model.onnx --input image=models/cnn/input_0_b3.npy "
                     "--output-dir '%s' --werror", env, cache, tool, out);
        CHECK_MSG(rc == 0, "onnxtune run (%s%s) exited %d", env, i ? "cached" : "first", rc);
        if (rc)
            show_log();
        snprintf(got, sizeof got, "%s/logits.npy", out);
        double err = rel_error(got, "models/cnn/output_0_b3.npy");
        CHECK_MSG(err >= 0 && err <= 1e-4, "onnxtune run (%s): relative L2 error %g", env, err);
    }
}

static void check_run_cache(void)
{
    char cache[PATH_MAX + 16];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    run_cached(cache, "");
    /* one program in the cache, reused the second time */
    CHECK_EQ_INT(cache_entries(cache), 1);
    /* a switch that changes the generated code (no conv fusion) builds and then reuses its own program,
     * not the fused one */
    run_cached(cache, "ONNXTUNE_NO_FUSE=1 ");
    CHECK_EQ_INT(cache_entries(cache), 2);
    run_cached(cache, "");
    CHECK_EQ_INT(cache_entries(cache), 2);
}

int main(void)
{
    tool = getenv("ONNXTUNE");
    if (!tool) {
        fprintf(stderr, "test_codegen: set ONNXTUNE to the onnxtune binary (CTest does)\n");
        return 1;
    }
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/test_codegen-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        check_example(&examples[i], examples[i].batch); /* exact for input_0, chunks for _b3 */
        check_example(&examples[i], 2 + (int)(i % 2)); /* chunks of 2 or 3, padded */
    }
    check_errors();
    check_small_models();
    check_cc_flags();
    check_run_cache();
    if (!test_failures)
        run("rm -rf '%s'", tmp);
    else
        fprintf(stderr, "test_codegen: files kept in %s\n", tmp);
    return test_summary("test_codegen");
}
