/* test_train_show.c - what a training program shows: plain progress lines (no carriage returns) when
 * stdout is a file, a bar redrawn in place on a terminal (a pseudo-terminal here), the epoch lines, the
 * summary (epochs, steps, samples, throughput, peak memory, the best epoch, the stop reason, where the
 * export, checkpoint, plot and metrics went), --quiet, and the --plot SVG: well-formed XML (a checker
 * here), rewritten after every epoch. Needs $ONNXTUNE (CTest sets it). */
#include "train_tool.h"

#include <ctype.h>
#include <pty.h>

/* ---- a small XML well-formedness checker (no DTD, no CDATA: what an SVG of ours may hold) ---- */

static bool name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && (isdigit((unsigned char)c) || c == '-' ||
                                                                            c == '.'));
}

/* An entity reference at s ('&'): its length, 0 when malformed. */
static size_t entity(const char *s)
{
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (strncmp(s, named[i], strlen(named[i])) == 0)
            return strlen(named[i]);
    size_t k = 2;
    bool hex = s[1] == '#' && s[2] == 'x';
    if (s[1] != '#')
        return 0;
    k += hex;
    size_t d = k;
    while (hex ? isxdigit((unsigned char)s[k]) : isdigit((unsigned char)s[k]))
        k++;
    return k > d && s[k] == ';' ? k + 1 : 0;
}

/* NULL when s is well-formed, else what is wrong. */
static const char *xml_check(const char *s)
{
    const char *stack[64];
    size_t lens[64];
    int depth = 0, roots = 0;
    if (strncmp(s, "<?xml ", 6) == 0) {
        s = strstr(s, "?>");
        if (!s)
            return "unterminated XML declaration";
        s += 2;
    }
    while (*s) {
        if (strncmp(s, "<!--", 4) == 0) {
            const char *e = strstr(s + 4, "-->");
            if (!e)
                return "unterminated comment";
            s = e + 3;
        } else if (s[0] == '<' && s[1] == '/') {
            const char *n = s + 2;
            size_t len = 0;
            while (name_char(n[len], len == 0))
                len++;
            if (!depth || len != lens[depth - 1] || strncmp(n, stack[depth - 1], len) != 0)
                return "a closing tag that does not match";
            depth--;
            s = n + len;
            while (isspace((unsigned char)*s))
                s++;
            if (*s++ != '>')
                return "a malformed closing tag";
        } else if (*s == '<') {
            const char *n = s + 1;
            size_t len = 0;
            while (name_char(n[len], len == 0))
                len++;
            if (!len)
                return "a tag without a name";
            if (depth == 0 && roots++)
                return "more than one root element";
            s = n + len;
            for (;;) {     /* attributes */
                bool space = isspace((unsigned char)*s);
                while (isspace((unsigned char)*s))
                    s++;
                if (*s == '>' || (s[0] == '/' && s[1] == '>'))
                    break;
                size_t al = 0;
                while (name_char(s[al], al == 0))
                    al++;
                if (!space || !al || s[al] != '=' || (s[al + 1] != '"' && s[al + 1] != '\''))
                    return "a malformed attribute";
                char q = s[al + 1];
                for (s += al + 2; *s != q; s++) {
                    if (!*s || *s == '<')
                        return "an unterminated attribute value";
                    if (*s == '&' && !entity(s))
                        return "a bad entity in an attribute";
                }
                s++;
            }
            if (*s == '/') {
                s += 2;
            } else {
                if (depth == 64)
                    return "nesting too deep";
                stack[depth] = n;
                lens[depth++] = len;
                s++;
            }
        } else {
            if (depth == 0 && !isspace((unsigned char)*s))
                return "text outside the root element";
            if (*s == '&' && !entity(s))
                return "a bad entity in text";
            if (*s == '>' && depth == 0)
                return "a stray '>'";
            s++;
        }
    }
    return depth ? "unclosed elements" : roots != 1 ? "no root element" : NULL;
}

static void checker_selftest(void)
{
    const char *good[] = {"<a/>", "<?xml version=\"1.0\"?>\n<a x='1' y=\"&amp;&#38;&#x26;\">t&lt;<b/><!-- c --></a>\n"};
    const char *bad[] = {"<a>", "<a></b>", "<a x=1/>", "<a/><b/>", "<a>&nope;</a>", "<a x=\"<\"/>", "text<a/>",
                         "<a><b></a></b>"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_MSG(xml_check(good[i]) == NULL, "the XML checker refuses %s: %s", good[i], xml_check(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(xml_check(bad[i]) != NULL, "the XML checker accepts %s", bad[i]);
}

/* ---- the runs ---- */

static const char *mlp_x = "tests/ref/train/mlp_sgd/x.npy", *mlp_y = "tests/ref/train/mlp_sgd/y.npy";

static void plain_lines(const char *prog)
{
    const char *m = tt_path("p.jsonl"), *e = tt_path("p.onnx"), *pl = tt_path("p.svg"), *c = tt_path("p.ckpt");
    int rc = tt_expect("plain progress", 0, NULL, prog, "--train-x", mlp_x, "--train-y", mlp_y, "--val-split", "0.25",
                       "--epochs", "3", "--lr", "0.1", "--log-every", "3", "--metrics", m, "--export", e, "--plot", pl,
                       "--checkpoint", c, NULL);
    if (rc)
        return;
    const char *want[] = {
        "training model.onnx on 27 samples, batch 8 (last 3), 3 epochs = 12 steps",
        "epoch 1/3 step 3/4 loss ",     /* --log-every 3: steps 3, 6 and 9 of the run */
        "epoch 2/3 step 2/4 loss ",
        "epoch 3/3 step 1/4 loss ",
        " samples/s ETA ",
        "epoch 1/3: train loss ",
        "epoch 3/3: train loss ",
        " | val loss ",
        "done: 3 epochs, 12 steps, 81 samples in ",
        "peak memory ",
        "best epoch ",
        "(by val loss): val loss ",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK_MSG(strstr(tt_out, want[i]), "no '%s' in the output:\n%s", want[i], tt_out);
    char where[4][600];
    snprintf(where[0], sizeof where[0], "export: %s\n", e);
    snprintf(where[1], sizeof where[1], "checkpoint: %s\n", c);
    snprintf(where[2], sizeof where[2], "plot: %s\n", pl);
    snprintf(where[3], sizeof where[3], "metrics: %s\n", m);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(strstr(tt_out, where[i]), "the summary does not say '%s':\n%s", where[i], tt_out);
    CHECK_MSG(!strchr(tt_out, '\r'), "carriage returns in the output to a file");
    CHECK_MSG(!strstr(tt_out, "epoch 1/3 step 4/4"), "a step line where the epoch line follows:\n%s", tt_out);
    /* the SVG: well-formed, titled; after a stop at step 6 it shows epoch 1, and the finished run more */
    size_t len = 0;
    char *svg = tt_read(pl, &len);
    const char *why = svg ? xml_check(svg) : "missing";
    CHECK_MSG(why == NULL, "--plot %s is not well-formed XML: %s", pl, why);
    CHECK_MSG(svg && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"") && strstr(svg, "model.onnx"),
              "--plot: no svg root or title");
    const char *p1 = tt_path("p1.svg");
    tt_expect("stopped at step 6", 0, NULL, prog, "--train-x", mlp_x, "--train-y", mlp_y, "--val-split", "0.25",
              "--epochs", "3", "--lr", "0.1", "--plot", p1, "--checkpoint", tt_path("p1.ckpt"), "--max-steps", "6",
              "--quiet", NULL);
    char *svg1 = tt_read(p1, NULL);
    why = svg1 ? xml_check(svg1) : "missing";
    CHECK_MSG(why == NULL, "--plot after one epoch is not well-formed XML: %s", why);
    CHECK_MSG(svg1 && svg && strcmp(svg1, svg) != 0, "the plot after epoch 1 is the finished run's");
    printf("plain      progress lines every 3 steps, epoch lines, summary; SVG of %zu bytes well-formed, also after "
           "epoch 1\n", len);
    free(svg);
    free(svg1);
    /* --quiet: nothing on stdout */
    tt_expect("quiet", 0, NULL, prog, "--train-x", mlp_x, "--train-y", mlp_y, "--epochs", "2", "--quiet", NULL);
    CHECK_MSG(tt_out[0] == '\0', "--quiet printed: %s", tt_out);
    /* the stop reason of a diverging run */
    tt_expect("diverging", 1, "training stopped", prog, "--train-x", mlp_x, "--train-y", mlp_y, "--epochs", "20",
              "--lr", "1e6", NULL);
    CHECK_MSG(strstr(tt_out, "stopped: the loss is not finite at step "), "no stop reason in the summary:\n%s", tt_out);
}

/* A validation loss that is not finite while training goes on (an MSE program, validation targets of
 * 3e38: the squared error overflows): every metrics line is still JSON (common.h's reader) and that
 * loss is null, not a bare inf. */
static void nonfinite_val(void)
{
    const char *prog = tt_path("mlp_mse");
    if (!tt_compile(prog, "models/mlp/model.onnx", "--train", "*", "--head", "none", "--loss", "mse", "--batch", "8",
                    NULL))
        return;
    NpyArray x;
    char err[512];
    CHECK_MSG(npy_read(mlp_x, &x, err, sizeof err) == NPY_OK, "%s", err);
    size_t n = x.rank ? x.dims[0] : 0, dims[2] = {n, 10};
    npy_free(&x);
    float *y = malloc(n * 10 * sizeof *y), *big = malloc(n * 10 * sizeof *big);
    for (size_t i = 0; y && big && i < n * 10; i++) {
        y[i] = tt_uniform();
        big[i] = 3e38f;
    }
    const char *ty = tt_path("y.npy"), *vy = tt_path("big_y.npy"), *m = tt_path("nonfinite.jsonl");
    tt_write_npy(ty, RT_FLOAT, 2, dims, y);
    tt_write_npy(vy, RT_FLOAT, 2, dims, big);
    free(y);
    free(big);
    tt_expect("non-finite val loss", 0, NULL, prog, "--train-x", mlp_x, "--train-y", ty, "--val-x", mlp_x, "--val-y",
              vy, "--epochs", "2", "--metrics", m, "--quiet", NULL);
    char *text = tt_read(m, NULL), *copy = text ? strdup(text) : NULL;
    size_t lines = 0, nulls = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        JsonText doc, v;
        bool ok = json_parse(line, strlen(line), &doc);
        CHECK_MSG(ok, "--metrics: not JSON: %s", line);
        lines++;
        nulls += ok && strstr(line, "\"split\":\"val\"") && json_get_member(doc, "loss", &v) && json_is_null(v);
    }
    CHECK_MSG(lines > 2 && nulls == 2, "%zu lines, %zu val lines with a null loss:\n%s", lines, nulls, copy ? copy : "");
    printf("non-finite a validation loss of inf is null in --metrics (%zu JSON lines)\n", lines);
    free(text);
    free(copy);
}

/* On a terminal: the bar, redrawn with carriage returns, then the epoch lines. */
static void terminal_bar(const char *prog)
{
    int master = -1;
    struct winsize ws = {.ws_row = 24, .ws_col = 100};
    fflush(NULL);
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid < 0) {
        printf("terminal   skipped: no pseudo-terminal (%s)\n", strerror(errno));
        return;
    }
    if (pid == 0) {
        setenv("TERM", "xterm", 1);
        execl(prog, prog, "--train-x", mlp_x, "--train-y", mlp_y, "--epochs", "3", "--lr", "0.1", (char *)NULL);
        _exit(127);
    }
    static char out[1 << 16];
    size_t n = 0;
    for (ssize_t r; n + 1 < sizeof out && (r = read(master, out + n, sizeof out - 1 - n)) != 0;) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;      /* EIO: the child closed the terminal */
        }
        n += (size_t)r;
    }
    out[n] = '\0';
    close(master);
    int ws_status = 0;
    waitpid(pid, &ws_status, 0);
    CHECK_MSG(WIFEXITED(ws_status) && WEXITSTATUS(ws_status) == 0, "the run on a terminal failed:\n%s", out);
    CHECK_MSG(strstr(out, "\repoch 1/3 [") && strstr(out, "/5 loss ") && strstr(out, " ETA "),
              "no progress bar on the terminal:\n%s", out);
    CHECK_MSG(strstr(out, "epoch 3/3: train loss ") && strstr(out, "done: 3 epochs"), "no epoch lines or summary:\n%s",
              out);
    CHECK_MSG(!strstr(out, "step 1/5 loss"), "plain step lines on a terminal:\n%s", out);
    printf("terminal   a bar redrawn with CR (%zu bytes of output)\n", n);
}

int main(void)
{
    if (!tt_setup("test_train_show"))
        return 1;
    checker_selftest();
    const char *prog = tt_path("mlp_sgd");
    if (!tt_compile(prog, "models/mlp/model.onnx", "--train", "*", "--head", "none", "--optimizer", "sgd", "--momentum",
                    "0.9", "--batch", "8", NULL))
        return test_summary("test_train_show");
    plain_lines(prog);
    nonfinite_val();
    terminal_bar(prog);
    tt_cleanup();
    return test_summary("test_train_show");
}
