/* test_checkpoint.c - program/checkpoint.c: CRC32 against known values and a bitwise reference, round
 * trips, every truncation and every byte flip of a small checkpoint, other writers refused by name,
 * stale temporaries, SIGKILL during writes (the file is always absent or whole), the stop signals.
 */
#include "common.h"
#include "program.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static const char *in_dir(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Files in dir whose names start with prefix. */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* ---- CRC32 ---- */

static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static void test_crc(void)
{
    CHECK_EQ_INT(crc32_update(0, "123456789", 9), 0xCBF43926u);
    CHECK_EQ_INT(crc32_update(0, "", 0), 0);
    CHECK_EQ_INT(crc32_update(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
    unsigned char buf[300];
    uint64_t s = 42;
    for (size_t i = 0; i < sizeof buf; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (unsigned char)(s >> 56);
    }
    int bad = 0;
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; off + n <= sizeof buf; n += 7) {
            uint32_t want = crc_bitwise(buf + off, n);
            bad += crc32_update(0, buf + off, n) != want;
            size_t half = n / 3;   /* chaining */
            bad += crc32_update(crc32_update(0, buf + off, half), buf + off + half, n - half) != want;
        }
    CHECK_MSG(bad == 0, "%d CRCs differ from the bitwise reference", bad);
    CHECK(ckpt_hash64(CKPT_HASH_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);   /* FNV-1a 64 test vector */
}

/* ---- a small checkpoint ---- */

static float params[37];
static uint64_t rng[4] = {1, 2, 0xdeadbeefcafef00dull, 4};
static int64_t epoch_step[2] = {3, 1234};
static char longname[CKPT_MAX_NAME + 1];

static const CkptIdentity me = {0x1122334455667788ull, "mlp.onnx --head linear:3"};

static size_t small_sections(CkptSection *s)
{
    for (int i = 0; i < 37; i++)
        params[i] = (float)i * 0.25f - 3.0f;
    memset(longname, 'n', CKPT_MAX_NAME);
    longname[CKPT_MAX_NAME] = '\0';
    s[0] = (CkptSection){"params", params, sizeof params};
    s[1] = (CkptSection){"optimizer.empty", NULL, 0};
    s[2] = (CkptSection){"rng", rng, sizeof rng};
    s[3] = (CkptSection){"epoch_step", epoch_step, sizeof epoch_step};
    s[4] = (CkptSection){longname, "x", 1};
    return 5;
}

static void test_round_trip(void)
{
    CkptSection s[5];
    size_t n = small_sections(s);
    char err[512] = "";
    const char *path = in_dir("small.ckpt");
    CHECK_EQ_INT(ckpt_write(path, &me, s, n, err, sizeof err), CKPT_OK);
    Checkpoint c;
    CkptStatus st = ckpt_read(path, &me, &c, err, sizeof err);
    CHECK_MSG(st == CKPT_OK, "%s", err);
    if (st != CKPT_OK)
        return;
    CHECK_EQ_INT(c.count, n);
    CHECK(c.id.fingerprint == me.fingerprint);
    CHECK_STR(c.id.description, me.description);
    for (size_t i = 0; i < n && i < c.count; i++) {
        CHECK_STR(c.sections[i].name, s[i].name);
        CHECK_EQ_INT(c.sections[i].size, s[i].size);
        CHECK(s[i].size == 0 || memcmp(c.sections[i].data, s[i].data, s[i].size) == 0);
        CHECK_EQ_INT((uintptr_t)c.sections[i].data % 8, 0);
    }
    uint64_t r[4] = {0};
    CHECK_EQ_INT(ckpt_get(&c, "rng", r, sizeof r, err, sizeof err), CKPT_OK);
    CHECK(memcmp(r, rng, sizeof r) == 0);
    CHECK(ckpt_find(&c, "nope") == NULL);
    CHECK_EQ_INT(ckpt_get(&c, "nope", r, sizeof r, err, sizeof err), CKPT_EMISSING);
    CHECK_MSG(strstr(err, "no section 'nope'") && strstr(err, path), "%s", err);
    CHECK_EQ_INT(ckpt_get(&c, "rng", r, 16, err, sizeof err), CKPT_EMISSING);
    CHECK_MSG(strstr(err, "32 bytes") && strstr(err, "expects 16"), "%s", err);
    ckpt_free(&c);
    ckpt_free(&c);   /* safe twice */

    /* any writer accepted without an expectation; an anonymous writer */
    CHECK_EQ_INT(ckpt_write(path, NULL, s, 1, err, sizeof err), CKPT_OK);
    CHECK_EQ_INT(ckpt_read(path, NULL, &c, err, sizeof err), CKPT_OK);
    CHECK_EQ_INT(c.count, 1);
    CHECK_STR(c.id.description, "");
    ckpt_free(&c);
    CHECK_EQ_INT(ckpt_write(path, &me, NULL, 0, err, sizeof err), CKPT_OK);   /* no sections at all */
    CHECK_EQ_INT(ckpt_read(path, &me, &c, err, sizeof err), CKPT_OK);
    CHECK_EQ_INT(c.count, 0);
    ckpt_free(&c);
    CHECK_EQ_INT(count_prefixed("small.ckpt.tmp."), 0);
}

static void test_bad_writes(void)
{
    CkptSection s[5];
    small_sections(s);
    char err[512] = "";
    const char *path = in_dir("never.ckpt");
    CkptSection dup[2] = {s[0], s[0]};
    CHECK_EQ_INT(ckpt_write(path, &me, dup, 2, err, sizeof err), CKPT_EINVAL);
    CHECK_MSG(strstr(err, "two sections named 'params'"), "%s", err);
    CkptSection empty = {"", "x", 1}, toolong = {longname, "x", 1}, nodata = {"x", NULL, 4};
    char longer[CKPT_MAX_NAME + 2];
    memset(longer, 'n', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    toolong.name = longer;
    CHECK_EQ_INT(ckpt_write(path, &me, &empty, 1, err, sizeof err), CKPT_EINVAL);
    CHECK_EQ_INT(ckpt_write(path, &me, &toolong, 1, err, sizeof err), CKPT_EINVAL);
    CHECK_EQ_INT(ckpt_write(path, &me, &nodata, 1, err, sizeof err), CKPT_EINVAL);
    CHECK(!exists(path));
    CHECK_EQ_INT(count_prefixed("never.ckpt"), 0);
    CHECK_EQ_INT(ckpt_write(in_dir("no/such/dir/x.ckpt"), &me, s, 1, err, sizeof err), CKPT_EIO);
    CHECK_MSG(strstr(err, "no/such/dir/x.ckpt") && strstr(err, "cannot create"), "%s", err);

    Checkpoint c;
    CHECK_EQ_INT(ckpt_read(in_dir("absent.ckpt"), &me, &c, err, sizeof err), CKPT_EIO);
    CHECK_MSG(strstr(err, "absent.ckpt: cannot open"), "%s", err);
    CHECK_EQ_INT(ckpt_read(dir, &me, &c, err, sizeof err), CKPT_EIO);
    CHECK_MSG(strstr(err, "is a directory"), "%s", err);
    ckpt_free(&c);
}

static void test_other_program(void)
{
    CkptSection s[5];
    size_t n = small_sections(s);
    char err[512] = "";
    const char *path = in_dir("other.ckpt");
    CHECK_EQ_INT(ckpt_write(path, &me, s, n, err, sizeof err), CKPT_OK);
    CkptIdentity other = {0x99aabbccddeeff00ull, "cnn.onnx --head mlp:64,10"};
    Checkpoint c;
    CHECK_EQ_INT(ckpt_read(path, &other, &c, err, sizeof err), CKPT_EMISMATCH);
    CHECK_MSG(strstr(err, path) && strstr(err, "another model or compiled program") &&
              strstr(err, "'mlp.onnx --head linear:3'") && strstr(err, "1122334455667788") &&
              strstr(err, "'cnn.onnx --head mlp:64,10'") && strstr(err, "99aabbccddeeff00") && !strchr(err, '\n'),
              "message: %s", err);
    CHECK(c.sections == NULL && c.count == 0);
    ckpt_free(&c);
}

static void test_corruption(void)
{
    CkptSection s[5];
    size_t n = small_sections(s);
    char err[512] = "";
    const char *path = in_dir("corrupt.ckpt");
    CHECK_EQ_INT(ckpt_write(path, &me, s, n, err, sizeof err), CKPT_OK);
    size_t len = 0;
    unsigned char *img = slurp(path, &len);
    CHECK(img && len > 100);
    if (!img)
        return;
    Checkpoint c;
    CHECK_EQ_INT(ckpt_parse(img, len, "mem", &me, &c, err, sizeof err), CKPT_OK);
    /* where each section's data lies in the image */
    size_t data_at[5], data_len[5];
    for (size_t i = 0; i < n; i++) {
        data_at[i] = (size_t)((const unsigned char *)c.sections[i].data - (const unsigned char *)c.buf_);
        data_len[i] = c.sections[i].size;
    }
    ckpt_free(&c);

    /* every truncation: an error that says so, never a crash */
    int bad = 0;
    for (size_t k = 0; k < len; k++) {
        err[0] = '\0';
        CkptStatus st = ckpt_parse(img, k, "mem", &me, &c, err, sizeof err);
        if (st != CKPT_EFORMAT || !(strstr(err, "truncated") || (k == 0 && strstr(err, "empty file")))) {
            if (bad++ < 5)
                fprintf(stderr, "truncated at %zu: status %s, message '%s'\n", k, ckpt_status_name(st), err);
        }
        ckpt_free(&c);
    }
    CHECK_MSG(bad == 0, "%d of %zu truncations not reported as such", bad, len);
    /* a few truncations through the file system too */
    size_t cuts[] = {0, 5, 31, 40, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        const char *tp = in_dir("cut.ckpt");
        FILE *f = fopen(tp, "wb");
        fwrite(img, 1, cuts[i], f);
        fclose(f);
        CHECK_EQ_INT(ckpt_read(tp, &me, &c, err, sizeof err), CKPT_EFORMAT);
        CHECK_MSG(strstr(err, "cut.ckpt: "), "%s", err);
    }
    /* trailing garbage */
    unsigned char *longer = malloc(len + 8);
    memcpy(longer, img, len);
    memset(longer + len, 0, 8);
    CHECK_EQ_INT(ckpt_parse(longer, len + 8, "mem", &me, &c, err, sizeof err), CKPT_EFORMAT);
    CHECK_MSG(strstr(err, "8 unexpected bytes after the last section"), "%s", err);
    free(longer);

    /* every byte flipped, two ways: always an error; in section data, a CRC error naming the section */
    unsigned char *copy = malloc(len);
    int undetected = 0, unnamed = 0;
    for (size_t k = 0; k < len; k++)
        for (int m = 0; m < 2; m++) {
            memcpy(copy, img, len);
            copy[k] ^= m ? 0xFF : 0x01;
            err[0] = '\0';
            CkptStatus st = ckpt_parse(copy, len, "mem", &me, &c, err, sizeof err);
            ckpt_free(&c);
            if (st == CKPT_OK || !err[0]) {
                undetected++;
                continue;
            }
            for (size_t i = 0; i < n; i++)
                if (k >= data_at[i] && k < data_at[i] + data_len[i]) {
                    char want[400];
                    snprintf(want, sizeof want, "section '%s' is corrupt (CRC mismatch)", s[i].name);
                    if (!strstr(err, want) && unnamed++ < 3)
                        fprintf(stderr, "flip at %zu: '%s'\n", k, err);
                }
        }
    CHECK_MSG(undetected == 0, "%d byte flips went undetected", undetected);
    CHECK_EQ_INT(unnamed, 0);
    /* the header's parts */
    memcpy(copy, img, len);
    copy[0] = 'X';
    CHECK_EQ_INT(ckpt_parse(copy, len, "mem", &me, &c, err, sizeof err), CKPT_EFORMAT);
    CHECK_MSG(strstr(err, "not an onnxtune checkpoint"), "%s", err);
    memcpy(copy, img, len);
    copy[8] = 2;
    CHECK_EQ_INT(ckpt_parse(copy, len, "mem", &me, &c, err, sizeof err), CKPT_EVERSION);
    CHECK_MSG(strstr(err, "version 2; this program reads version 1"), "%s", err);
    memcpy(copy, img, len);
    copy[17] ^= 0x40;   /* the fingerprint: a corrupt header, not another program */
    CHECK_EQ_INT(ckpt_parse(copy, len, "mem", &me, &c, err, sizeof err), CKPT_EFORMAT);
    CHECK_MSG(strstr(err, "corrupt checkpoint header (CRC mismatch)"), "%s", err);
    free(copy);
    free(img);
}

/* ---- temporaries left by dead writers ---- */

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("partial", f);
        fclose(f);
    }
}

static void test_stale_temporaries(void)
{
    char name[128], err[512];
    pid_t dead = dead_pid();
    snprintf(name, sizeof name, "stale.ckpt.tmp.%ld", (long)dead);
    touch(in_dir(name));
    snprintf(name, sizeof name, "stale.ckpt.tmp.%ld", (long)getppid());   /* alive: not ours to remove */
    touch(in_dir(name));
    touch(in_dir("stale.ckpt.tmp.12ab"));
    snprintf(name, sizeof name, "stalextra.ckpt.tmp.%ld", (long)dead);
    touch(in_dir(name));
    CkptSection s = {"x", "abc", 3};
    CHECK_EQ_INT(ckpt_write(in_dir("stale.ckpt"), &me, &s, 1, err, sizeof err), CKPT_OK);
    snprintf(name, sizeof name, "stale.ckpt.tmp.%ld", (long)dead);
    CHECK(!exists(in_dir(name)));
    snprintf(name, sizeof name, "stale.ckpt.tmp.%ld", (long)getppid());
    CHECK(exists(in_dir(name)));
    unlink(in_dir(name));
    CHECK(exists(in_dir("stale.ckpt.tmp.12ab")));
    unlink(in_dir("stale.ckpt.tmp.12ab"));
    snprintf(name, sizeof name, "stalextra.ckpt.tmp.%ld", (long)dead);
    CHECK(exists(in_dir(name)));
    unlink(in_dir(name));
}

/* ---- SIGKILL during writes ---- */

#define BIG_WORDS ((size_t)2 << 20)   /* 16 MiB of parameters */

static uint64_t pattern(uint64_t gen, size_t i)
{
    return (gen * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)i * 0xBF58476D1CE4E5B9ull);
}

static void fill(uint64_t *words, uint64_t gen)
{
    for (size_t i = 0; i < BIG_WORDS; i++)
        words[i] = pattern(gen, i);
}

static CkptStatus write_big(const char *path, uint64_t *words, uint64_t gen)
{
    fill(words, gen);
    char tail[100];
    snprintf(tail, sizeof tail, "generation %llu", (unsigned long long)gen);
    CkptSection s[3] = {{"gen", &gen, sizeof gen}, {"params", words, BIG_WORDS * 8}, {"tail", tail, strlen(tail)}};
    return ckpt_write(path, &me, s, 3, NULL, 0);
}

/* The file is absent or a whole, valid checkpoint of one generation; returns that generation (0: absent). */
static uint64_t check_big(const char *path, int *bad)
{
    if (!exists(path))
        return 0;
    Checkpoint c;
    char err[512];
    uint64_t gen = 0;
    if (ckpt_read(path, &me, &c, err, sizeof err) != CKPT_OK) {
        fprintf(stderr, "after SIGKILL: %s\n", err);
        (*bad)++;
        return 0;
    }
    const CkptSection *p = ckpt_find(&c, "params");
    char tail[100];
    if (ckpt_get(&c, "gen", &gen, sizeof gen, err, sizeof err) != CKPT_OK || !p || p->size != BIG_WORDS * 8) {
        (*bad)++;
    } else {
        const uint64_t *w = p->data;
        for (size_t i = 0; i < BIG_WORDS; i++)
            if (w[i] != pattern(gen, i)) {
                fprintf(stderr, "after SIGKILL: generation %llu, word %zu differs\n", (unsigned long long)gen, i);
                (*bad)++;
                break;
            }
        snprintf(tail, sizeof tail, "generation %llu", (unsigned long long)gen);
        const CkptSection *t = ckpt_find(&c, "tail");
        if (!t || t->size != strlen(tail) || memcmp(t->data, tail, t->size) != 0)
            (*bad)++;
    }
    ckpt_free(&c);
    return gen;
}

static void test_sigkill(void)
{
    const char *path = in_dir("big.ckpt");
    uint64_t *words = malloc(BIG_WORDS * 8);
    if (!words)
        return;
    double t0 = seconds();
    CHECK_EQ_INT(write_big(path, words, 1), CKPT_OK);
    double one = seconds() - t0;
    unlink(path);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int iterations = 24, bad = 0, mid_write = 0, present = 0, piled = 0;
    double span = 3.0;
    uint64_t last = 0;
    for (int it = 0; it < iterations; it++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (uint64_t g = last + 1;; g++)
                if (write_big(path, words, g) != CKPT_OK)
                    _exit(3);
        }
        /* kill somewhere within the first three writes (as long as none has completed yet, a longer span:
         * under load a child's writes can take many times the one measured above) */
        double delay = one * span * (double)rand() / RAND_MAX;
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "iteration %d: child status %d", it, status);
        int temps = count_prefixed("big.ckpt.tmp.");
        mid_write += temps > 0;
        piled += temps > 1;
        uint64_t gen = check_big(path, &bad);
        present += gen > 0;
        CHECK_MSG(gen >= last, "iteration %d: generation went back from %llu to %llu", it, (unsigned long long)last,
                  (unsigned long long)gen);
        last = gen > last ? gen : last;
        if (!present && span < 100)
            span *= 1.5;
    }
    printf("sigkill: %d kills (one write %.0f ms): %d during a write, file present after %d, last generation %llu\n",
           iterations, one * 1e3, mid_write, present, (unsigned long long)last);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(piled, 0);
    CHECK_MSG(mid_write > 0, "no kill landed during a write: the test proved nothing");
    CHECK_MSG(present > 0, "no write ever completed before a kill");
    /* the next write removes the dead writers' temporaries */
    CHECK_EQ_INT(write_big(path, words, last + 1), CKPT_OK);
    CHECK_EQ_INT(count_prefixed("big.ckpt.tmp."), 0);
    CHECK_EQ_INT(check_big(path, &bad), last + 1);
    CHECK_EQ_INT(bad, 0);
    unlink(path);
    free(words);
}

/* ---- the stop signals ---- */

static void test_signals(void)
{
    CHECK_EQ_INT(stop_signal_pending(), 0);
    stop_signal_install(NULL);
    raise(SIGTERM);
    CHECK_EQ_INT(stop_signal_pending(), SIGTERM);
    stop_signal_restore();
    CHECK_EQ_INT(stop_signal_pending(), 0);
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);

    /* in a child: the first SIGINT sets the flag and prints the message, the second exits at once */
    int fds[2];
    if (pipe(fds) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        stop_signal_install("stopping after this step\n");
        raise(SIGINT);
        if (stop_signal_pending() != SIGINT)
            _exit(3);
        raise(SIGINT);
        _exit(4);    /* not reached */
    }
    close(fds[1]);
    char out[256] = "";
    size_t got = 0;
    ssize_t r;
    while (got < sizeof out - 1 && (r = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGINT, "child status %d", status);
    CHECK_MSG(strstr(out, "stopping after this step\n") && strstr(out, "interrupted again: exiting now"), "stderr: %s",
              out);
}

/* ---- program fingerprints ---- */

static void test_program_fingerprint(void)
{
    TrainParam params[2] = {
        {.name = "fc.weight", .kind = TRAIN_PARAM_TRAINABLE, .dtype = RT_FLOAT, .rank = 2, .dims = {3, 4},
         .nbytes = 48, .offset = 0, .export_offset = -1},
        {.name = "fc.bias", .kind = TRAIN_PARAM_TRAINABLE, .dtype = RT_FLOAT, .rank = 1, .dims = {3}, .nbytes = 12,
         .offset = 64, .export_offset = -1},
    };
    unsigned char init[128] = {1, 2, 3};
    TrainProgram a = {.model = "m.onnx", .batch = 8, .x = {RT_FLOAT, 2, {8, 4}}, .target = {RT_INT64, 1, {8}},
                      .logits = {RT_FLOAT, 2, {8, 3}}, .nparams = 2, .params = params, .init = init,
                      .params_bytes = sizeof init};
    uint64_t fa = ckpt_program_fingerprint(&a);
    TrainProgram b = a;
    b.batch = 16;
    b.x.dims[0] = 16;
    b.model = "renamed.onnx";
    CHECK(ckpt_program_fingerprint(&b) == fa);
    b = a;
    b.optimizer = TRAIN_OPTIM_ADAMW;
    CHECK(ckpt_program_fingerprint(&b) != fa);
    b = a;
    b.logits.dims[1] = 4;
    CHECK(ckpt_program_fingerprint(&b) != fa);
    TrainParam p2[2] = {params[0], params[1]};
    p2[1].name = "fc.bias2";
    b = a;
    b.params = p2;
    CHECK(ckpt_program_fingerprint(&b) != fa);
    p2[1] = params[1];
    p2[0].dims[1] = 5;
    CHECK(ckpt_program_fingerprint(&b) != fa);
    p2[0] = params[0];
    p2[0].kind = TRAIN_PARAM_FROZEN;
    CHECK(ckpt_program_fingerprint(&b) != fa);
    init[100] = 7;   /* other pretrained weights */
    CHECK(ckpt_program_fingerprint(&a) != fa);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/onnxtune-ckpt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    test_crc();
    test_round_trip();
    test_bad_writes();
    test_other_program();
    test_corruption();
    test_stale_temporaries();
    test_sigkill();
    test_signals();
    test_program_fingerprint();
    /* leave nothing behind */
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            unlink(in_dir(e->d_name));
    if (d)
        closedir(d);
    rmdir(dir);
    return test_summary("test_checkpoint");
}
