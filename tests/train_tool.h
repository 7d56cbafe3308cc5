/* train_tool.h - what the tests of training programs' run-time features share (test_train_resume.c,
 * test_train_select.c, test_train_show.c): a scratch folder, compiling programs with $ONNXTUNE, running
 * or spawning them with stdout and stderr captured, files read whole and compared, NPY data made here,
 * metrics lines parsed. Header-only (static functions): each test is one C file plus this. The scratch
 * folder is in $TMPDIR, else /dev/shm (checkpoints are fsynced: on a busy disk that dominates), else /tmp. */
#ifndef ONNXTUNE_TRAIN_TOOL_H
#define ONNXTUNE_TRAIN_TOOL_H

#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "program.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *tt_onnxtune;
static char tt_dir[256];
static char tt_out[1 << 16], tt_err[1 << 16];   /* stdout and stderr of the last tt_run / tt_wait */
static char *tt_paths[4096];                    /* tt_path's, freed by tt_cleanup */
static size_t tt_npaths;

/* $ONNXTUNE and a fresh scratch folder; false (said) when either is missing. */
static inline bool tt_setup(const char *name)
{
    tt_onnxtune = getenv("ONNXTUNE");
    if (!tt_onnxtune || !*tt_onnxtune) {
        fprintf(stderr, "%s: set ONNXTUNE to the onnxtune binary (CTest does)\n", name);
        return false;
    }
    /* $TMPDIR, else /dev/shm: checkpoints are fsynced, and a busy disk makes that slow */
    const char *t = getenv("TMPDIR");
    if (!t || !*t)
        t = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tt_dir, sizeof tt_dir, "%s/%s-XXXXXX", t, name);
    if (!mkdtemp(tt_dir)) {
        fprintf(stderr, "%s: cannot create %s: %s\n", name, tt_dir, strerror(errno));
        return false;
    }
    return true;
}

/* Remove the scratch folder when everything passed, else keep it and say where; free the paths. */
static inline void tt_cleanup(void)
{
    for (size_t i = 0; i < tt_npaths; i++)
        free(tt_paths[i]);
    tt_npaths = 0;
    if (!test_failures) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tt_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tt_dir);
    } else {
        printf("(files kept in %s)\n", tt_dir);
    }
}

/* A path in the scratch folder (valid until tt_cleanup). */
static inline const char *tt_path(const char *fmt, ...)
{
    char b[512];
    int k = snprintf(b, sizeof b, "%s/", tt_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + k, sizeof b - (size_t)k, fmt, ap);
    va_end(ap);
    char *s = tt_npaths < sizeof tt_paths / sizeof *tt_paths ? strdup(b) : NULL;
    if (!s) {
        fprintf(stderr, "out of memory (or more than %zu paths)\n", sizeof tt_paths / sizeof *tt_paths);
        exit(1);
    }
    return tt_paths[tt_npaths++] = s;
}

typedef struct TtArgv {
    const char *v[128];
    int n;
} TtArgv;

static inline void tt_push(TtArgv *a, const char *s)
{
    if (a->n < 126)
        a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

/* Append the NULL-terminated list. */
static inline void tt_pushv(TtArgv *a, ...)
{
    va_list ap;
    va_start(ap, a);
    for (const char *s; (s = va_arg(ap, const char *));)
        tt_push(a, s);
    va_end(ap);
}

static inline char *tt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static inline void tt_slurp(const char *path, char *dst, size_t size)
{
    char *s = tt_read(path, NULL);
    snprintf(dst, size, "%s", s ? s : "");
    free(s);
}

/* Start argv with stdout and stderr going to files of the scratch folder (tt_wait reads them). */
static inline pid_t tt_spawn(const TtArgv *a)
{
    const char *out = tt_path("stdout.txt"), *err = tt_path("stderr.txt");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo >= 0)
            dup2(fo, 1);
        if (fe >= 0)
            dup2(fe, 2);
        execv(a->v[0], (char *const *)a->v);
        _exit(127);
    }
    return pid;
}

/* The exit status, or -N when signal N killed it; tt_out and tt_err hold what it wrote. */
static inline int tt_wait(pid_t pid)
{
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid)
        return -1000;
    tt_slurp(tt_path("stdout.txt"), tt_out, sizeof tt_out);
    tt_slurp(tt_path("stderr.txt"), tt_err, sizeof tt_err);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
}

static inline int tt_run(const TtArgv *a)
{
    return tt_wait(tt_spawn(a));
}

/* Run the NULL-terminated command; want its exit status and `msg` (if any) in its stderr. */
static inline int tt_expect(const char *what, int want, const char *msg, ...)
{
    TtArgv a = {.n = 0};
    va_list ap;
    va_start(ap, msg);
    for (const char *s; (s = va_arg(ap, const char *));)
        tt_push(&a, s);
    va_end(ap);
    int rc = tt_run(&a);
    CHECK_MSG(rc == want && (!msg || strstr(tt_err, msg)), "%s: exit %d (want %d); stderr: %s(want '%s')", what, rc,
              want, tt_err, msg ? msg : "");
    return rc;
}

/* `onnxtune compile MODEL ARGS... --opt-level 1 -o PROG`: false (a failed check) when it fails. */
static inline bool tt_compile(const char *prog, const char *model, ...)
{
    TtArgv a = {.n = 0};
    tt_pushv(&a, tt_onnxtune, "compile", model, NULL);
    va_list ap;
    va_start(ap, model);
    for (const char *s; (s = va_arg(ap, const char *));)
        tt_push(&a, s);
    va_end(ap);
    tt_pushv(&a, "--opt-level", "1", "--werror", "-o", prog, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "compiling %s exited %d: %s", prog, rc, tt_err);
    return rc == 0;
}

static inline bool tt_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Both files exist and hold the same bytes. */
static inline bool tt_same(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = tt_read(a, &la), *y = tt_read(b, &lb);
    bool same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static inline void tt_copy(const char *from, const char *to)
{
    size_t len = 0;
    char *s = tt_read(from, &len);
    FILE *f = s ? fopen(to, "wb") : NULL;
    CHECK_MSG(f && fwrite(s, 1, len, f) == len, "copying %s to %s", from, to);
    if (f)
        fclose(f);
    free(s);
}

/* ---- data ---- */

/* A fixed generator for test data (splitmix64), independent of the trainer's. */
static uint64_t tt_rand_state = 12345;
static inline uint64_t tt_rand(void)
{
    uint64_t z = (tt_rand_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float tt_uniform(void)
{
    return (float)((double)(tt_rand() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline void tt_write_npy(const char *path, RtDType dt, int rank, const size_t *dims, const void *data)
{
    char err[512];
    CHECK_MSG(npy_write(path, dt, rank, dims, data, err, sizeof err) == NPY_OK, "%s", err);
}

/* ---- metrics ---- */

/* Number `key` of a JSON line (common.h's reader), NAN when absent, null or the line is not JSON. */
static inline double tt_json_num(const char *line, const char *key)
{
    JsonText doc, v;
    double x;
    if (!json_parse(line, strlen(line), &doc) || !json_get_member(doc, key, &v) || !json_get_number(v, &x))
        return NAN;
    return x;
}

/* Validation lines of a metrics file: their loss and accuracy, in order; the count. */
static inline size_t tt_val_lines(const char *path, double *loss, double *acc, size_t max)
{
    char *text = tt_read(path, NULL);
    size_t n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
        if (strstr(line, "\"split\":\"val\"") && strstr(line, "\"loss\"") && n < max) {
            loss[n] = tt_json_num(line, "loss");
            acc[n] = tt_json_num(line, "accuracy");
            n++;
        }
    free(text);
    return n;
}

/* Step lines of a metrics file (their count) and the lr of the last one. */
static inline size_t tt_step_lines(const char *path, double *last_lr)
{
    char *text = tt_read(path, NULL);
    size_t n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
        if (strstr(line, "\"step\":")) {
            n++;
            if (last_lr)
                *last_lr = tt_json_num(line, "lr");
        }
    free(text);
    return n;
}

static inline double tt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void tt_sleep(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Wait (at most `limit` seconds) until path exists and is not empty. */
static inline bool tt_wait_for_file(const char *path, double limit)
{
    double t0 = tt_now();
    struct stat sb;
    while (tt_now() - t0 < limit) {
        if (stat(path, &sb) == 0 && sb.st_size > 0)
            return true;
        tt_sleep(0.005);
    }
    return false;
}

#endif
