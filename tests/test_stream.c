/* test_stream.c - streaming a recurrent model with --state (program/infer_main.c, tools/cmd_run.c):
 * a GRU and a two-layer batch_first LSTM exported by PyTorch with their states as inputs and outputs
 * (tests/ref/make_stream_ref.py), run chunk by chunk with the state fed back, must give PyTorch's
 * outputs for the whole sequence at once: from a given state and from zeros (PyTorch's default), in a
 * compiled program and through `onnxtune run`, and the same as one run over the whole sequence. Also
 * the refusals: a length that is not a multiple of the chunk, a state whose shapes differ, and a
 * program of a model with a sequence output. And issue 12: a scripted Loop holding a nested If with
 * state (make_stream_if_ref.py), in chunks, against PyTorch. */
#include "test.h"

#include "data.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define R "tests/ref/stream"

static const char *tool;
static char tmp[PATH_MAX];

/* Run a shell command with its output in tmp/log. Returns the exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[8192], full[8192 + PATH_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s > '%s/log' 2>&1", cmd, tmp);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool log_contains(const char *text)
{
    char path[PATH_MAX + 8], buf[8192];
    snprintf(path, sizeof path, "%s/log", tmp);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    if (!strstr(buf, text))
        fprintf(stderr, "    log without '%s':\n%s\n", text, buf);
    return strstr(buf, text) != NULL;
}

/* Largest |got - want| over two float32 NPY files of one shape (got relative to tmp); -1: not comparable. */
static double max_err(const char *got_name, const char *want_path)
{
    char got_path[PATH_MAX + 64], err[512];
    NpyArray g, w;
    snprintf(got_path, sizeof got_path, "%s/%s", tmp, got_name);
    if (npy_read(got_path, &g, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "    %s\n", err);
        return -1;
    }
    if (npy_read(want_path, &w, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "    %s\n", err);
        npy_free(&g);
        return -1;
    }
    bool same = g.dtype == RT_FLOAT && w.dtype == RT_FLOAT && g.rank == w.rank && g.numel == w.numel;
    for (int i = 0; same && i < g.rank; i++)
        same = g.dims[i] == w.dims[i];
    double worst = same ? 0 : -1;
    for (size_t i = 0; same && i < g.numel; i++) {
        double e = (double)((const float *)g.data)[i] - ((const float *)w.data)[i];
        if (e < 0)
            e = -e;
        if (!(e <= worst))
            worst = e;
    }
    if (!same)
        fprintf(stderr, "    %s and %s differ in dtype or shape\n", got_path, want_path);
    npy_free(&g);
    npy_free(&w);
    return worst;
}

#define CHECK_CLOSE(got, want)                                                                             \
    do {                                                                                                   \
        double e_ = max_err(got, want);                                                                    \
        CHECK_MSG(e_ >= 0 && e_ <= 1e-5, "%s vs %s: max abs error %g", got, want, e_);                     \
    } while (0)

/* A compiled GRU program for chunks of 4 steps: from h0 and from zeros, and one run over all 12. */
static void check_program(void)
{
    char prog[PATH_MAX + 16], whole[PATH_MAX + 16], path[PATH_MAX + 32];
    snprintf(prog, sizeof prog, "%s/gru4", tmp);
    snprintf(whole, sizeof whole, "%s/gru12", tmp);
    /* the GRU is time-major: its leading dim T is what compile calls the batch */
    CHECK(run("'%s' compile " R "/gru.onnx --infer --batch 4 -o '%s' --werror", tool, prog) == 0);
    CHECK(run("'%s' --input x=" R "/gru_x.npy --input h0=" R "/gru_h0.npy --state hn=h0 --output-dir '%s/s'", prog,
              tmp) == 0);
    CHECK_CLOSE("s/y.npy", R "/gru_y_h0.npy");
    CHECK_CLOSE("s/hn.npy", R "/gru_hn_h0.npy");
    CHECK(run("'%s' --input x=" R "/gru_x.npy --state hn=h0 --output-dir '%s/z'", prog, tmp) == 0);
    CHECK_CLOSE("z/y.npy", R "/gru_y_zero.npy");
    CHECK_CLOSE("z/hn.npy", R "/gru_hn_zero.npy");

    CHECK(run("'%s' compile " R "/gru.onnx --infer --batch 12 -o '%s' --werror", tool, whole) == 0);
    CHECK(run("'%s' --input x=" R "/gru_x.npy --input h0=" R "/gru_h0.npy --output-dir '%s/w'", whole, tmp) == 0);
    CHECK_CLOSE("w/y.npy", R "/gru_y_h0.npy");
    snprintf(path, sizeof path, "%s/w/y.npy", tmp);
    CHECK_CLOSE("s/y.npy", path); /* chunked == at once */

    /* refusals: 12 steps are not whole chunks of 5; a state of another shape */
    char prog5[PATH_MAX + 16];
    snprintf(prog5, sizeof prog5, "%s/gru5", tmp);
    CHECK(run("'%s' compile " R "/gru.onnx --infer --batch 5 -o '%s'", tool, prog5) == 0);
    CHECK(run("'%s' --input x=" R "/gru_x.npy --state hn=h0 --output-dir '%s/e'", prog5, tmp) == 1);
    CHECK(log_contains("with a multiple of 5 along axis 0"));
    CHECK(run("'%s' --input x=" R "/gru_x.npy --input h0=" R "/gru_h0.npy --state y=h0 --output-dir '%s/e'", prog,
              tmp) == 2);
    CHECK(log_contains("output 'y' is float32 [4,2,5] but input 'h0' is float32 [1,2,5]"));
}

/* onnxtune run: the LSTM (batch_first, two states) in chunks of 4 along axis 1, and the GRU's refusal. */
static void check_run(void)
{
    CHECK(run("ONNXTUNE_CACHE='%s/cache' '%s' run " R "/lstm.onnx --input x=" R "/lstm_x.npy --input h0=" R
              "/lstm_h0.npy --input c0=" R "/lstm_c0.npy --state hn=h0 --state cn=c0 --chunk 4 --time-axis 1 "
              "--output-dir '%s/l' --werror", tmp, tool, tmp) == 0);
    CHECK_CLOSE("l/y.npy", R "/lstm_y_h0.npy");
    CHECK_CLOSE("l/hn.npy", R "/lstm_hn_h0.npy");
    CHECK_CLOSE("l/cn.npy", R "/lstm_cn_h0.npy");
    CHECK(run("ONNXTUNE_CACHE='%s/cache' '%s' run " R "/gru.onnx --input x=" R "/gru_x.npy --state hn=h0 --chunk 3 "
              "--output-dir '%s/g'", tmp, tool, tmp) == 0);
    CHECK_CLOSE("g/y.npy", R "/gru_y_zero.npy");
    CHECK_CLOSE("g/hn.npy", R "/gru_hn_zero.npy");
    /* a dynamic batch: h0 [1,batch,5] without a file takes x's batch */
    CHECK(run("ONNXTUNE_CACHE='%s/cache' '%s' run " R "/gru_dynbatch.onnx --input x=" R "/gru_x.npy --state hn=h0 "
              "--chunk 6 --output-dir '%s/d'", tmp, tool, tmp) == 0);
    CHECK_CLOSE("d/y.npy", R "/gru_y_zero.npy");
    CHECK_CLOSE("d/hn.npy", R "/gru_hn_zero.npy");
    CHECK(run("ONNXTUNE_CACHE='%s/cache' '%s' run " R "/gru.onnx --input x=" R "/gru_x.npy --state hn=h0 --chunk 5 "
              "--output-dir '%s/g'", tmp, tool, tmp) == 1);
    CHECK(log_contains("has 12 steps along axis 0, not a multiple of --chunk 5"));
    CHECK(run("'%s' run " R "/gru.onnx --input x=" R "/gru_x.npy --chunk 4 --output-dir '%s/g'", tool, tmp) == 2);
    CHECK(log_contains("--chunk and --time-axis need --state OUT=IN"));
}

/* Issue 12: a scripted model whose Loop over time holds a nested If (on a flag input, then on its own score)
 * with its state as input and output (tests/ref/make_stream_if_ref.py), in chunks of 4, flag on and off, in
 * a compiled program and through onnxtune run; tests/test_stream_ort.sh compares it with ONNX Runtime. */
static void check_nested_if(void)
{
    char prog[PATH_MAX + 16];
    snprintf(prog, sizeof prog, "%s/vad4", tmp);
    CHECK(run("'%s' compile " R "/vad.onnx --infer --batch 4 -o '%s' --werror", tool, prog) == 0);
    CHECK(run("'%s' --input x=" R "/vad_x.npy --input flag=" R "/vad_flag_on.npy --input h0=" R
              "/vad_h0.npy --state hn=h0 --output-dir '%s/von'", prog, tmp) == 0);
    CHECK_CLOSE("von/y.npy", R "/vad_y_on.npy");
    CHECK_CLOSE("von/hn.npy", R "/vad_hn_on.npy");
    CHECK(run("'%s' --input x=" R "/vad_x.npy --input flag=" R "/vad_flag_off.npy --input h0=" R
              "/vad_h0.npy --state hn=h0 --output-dir '%s/voff'", prog, tmp) == 0);
    CHECK_CLOSE("voff/y.npy", R "/vad_y_off.npy");
    CHECK_CLOSE("voff/hn.npy", R "/vad_hn_off.npy");
    CHECK(run("ONNXTUNE_CACHE='%s/cache' '%s' run " R "/vad.onnx --input x=" R "/vad_x.npy --input flag=" R
              "/vad_flag_on.npy --input h0=" R "/vad_h0.npy --state hn=h0 --chunk 4 --output-dir '%s/vrun'",
              tmp, tool, tmp) == 0);
    CHECK_CLOSE("vrun/y.npy", R "/vad_y_on.npy");
    CHECK_CLOSE("vrun/hn.npy", R "/vad_hn_on.npy");
}

/* A model with a sequence output compiles, but its program writes tensors only and says so; one with a
 * sequence input does not compile. */
static void check_sequence_output(void)
{
    char prog[PATH_MAX + 16];
    snprintf(prog, sizeof prog, "%s/split", tmp);
    CHECK(run("'%s' compile " R "/split.onnx --infer -o '%s' --werror", tool, prog) == 0);
    CHECK(run("'%s' --input x=" R "/gru_x.npy --output-dir '%s/sp'", prog, tmp) == 1);
    CHECK(log_contains("output 'pieces' is a sequence: this program writes tensors (.npy) only"));
    /* a sequence input has no type to compile for (conform takes it from the test data) */
    CHECK(run("'%s' compile tests/conform_cases/sequence_positions/model.onnx --infer -o '%s'", tool, prog) == 1);
    CHECK(log_contains("input 'seq' is a sequence: compiled programs take tensors only"));
}

int main(void)
{
    tool = getenv("ONNXTUNE");
    if (!tool) {
        fprintf(stderr, "test_stream: set ONNXTUNE to the onnxtune binary (CTest does)\n");
        return 1;
    }
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/onnxtune-stream-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    check_program();
    check_run();
    check_nested_if();
    check_sequence_output();
    int rc = test_summary("test_stream");
    if (rc == 0)
        run("rm -rf '%s'", tmp);
    return rc;
}
