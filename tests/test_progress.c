/* test_progress.c - program/progress.c with an injected clock: the exact bar redraws on a terminal
 * (rate limit, clearing, epoch lines), the plain lines for logs, ETA and throughput arithmetic, the
 * summary, and the choice of mode on a real pseudo-terminal (TERM=dumb or not).
 */
#define _XOPEN_SOURCE 700
#include "program.h"
#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

static double fake_now;

static double fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

/* A Progress writing into memory, on the fake clock. */
typedef struct Capture {
    char *buf;
    size_t len, mark;
    FILE *f;
} Capture;

static void capture_open(Capture *c)
{
    *c = (Capture){0};
    c->f = open_memstream(&c->buf, &c->len);
}

/* What was written since the last call. */
static const char *capture_new(Capture *c)
{
    static char out[8192];
    fflush(c->f);
    size_t n = c->len - c->mark < sizeof out - 1 ? c->len - c->mark : sizeof out - 1;
    memcpy(out, c->buf + c->mark, n);
    out[n] = '\0';
    c->mark = c->len;
    return out;
}

static void capture_close(Capture *c)
{
    fclose(c->f);
    free(c->buf);
}

static void start(Progress *p, Capture *c, ProgressMode mode, int64_t epochs, int64_t steps)
{
    capture_open(c);
    progress_init(p, c->f, mode, epochs, steps);
    p->clock = fake_clock;
}

static const char *spaces(size_t n)
{
    static char s[256];
    n = n < sizeof s ? n : sizeof s - 1;
    memset(s, ' ', n);
    s[n] = '\0';
    return s;
}

static void test_tty(void)
{
    Progress p;
    Capture c;
    start(&p, &c, PROGRESS_TTY, 3, 10);
    CHECK(p.tty);
    CHECK_EQ_INT(p.width, 80);   /* not a terminal underneath: the default */
    fake_now = 0;
    progress_begin_epoch(&p, 1, 0);
    CHECK_STR(capture_new(&c), "\repoch 1/3 [....................]  0/10 loss - - samples/s ETA -:--:--");
    fake_now = 0.0625;
    progress_step(&p, 2.0, 8);
    CHECK_STR(capture_new(&c), "");     /* 62.5 ms after the last draw: not yet */
    fake_now = 0.25;
    progress_step(&p, 1.0, 8);
    /* 16 samples in 0.25 s; 0.125 s per step, 28 steps left */
    CHECK_STR(capture_new(&c), "\repoch 1/3 [####................]  2/10 loss 1.5 64.0 samples/s ETA 0:00:04");
    fake_now = 0.3125;
    progress_step(&p, 1.0, 8);
    CHECK_STR(capture_new(&c), "");
    progress_clear(&p);
    char want[512];
    snprintf(want, sizeof want, "\r%s\r", spaces(74));
    CHECK_STR(capture_new(&c), want);
    fake_now = 0.375;
    progress_step(&p, 1.0, 8);         /* cleared: redrawn at once */
    CHECK_STR(capture_new(&c), "\repoch 1/3 [########............]  4/10 loss 1.25 85.3 samples/s ETA 0:00:02");
    for (int k = 5; k <= 10; k++) {
        fake_now = 0.375 + 0.125 * (k - 4);
        progress_step(&p, 0.5, 8);
    }
    const char *six = capture_new(&c);
    int draws = 0;
    for (const char *s = six; *s; s++)
        draws += *s == '\r';
    CHECK_EQ_INT(draws, 6);            /* 125 ms apart: each step redraws, each with one CR */
    CHECK(!strchr(six, '\n') && !strchr(six, '\033'));
    const char *last = strrchr(six, '\r');
    /* step 9's line ("loss 0.8333") was 3 characters longer: blanks erase them */
    CHECK_STR(last, "\repoch 1/3 [####################] 10/10 loss 0.8 71.1 samples/s ETA 0:00:02   ");
    fake_now = 1.5;
    ProgressEval val = {0.7, 0.75, NAN};
    progress_end_epoch(&p, NULL, &val);
    const char *eline = "epoch 1/3: train loss 0.8 | val loss 0.7 accuracy 75.00% | 1.1s 71.1 samples/s";
    snprintf(want, sizeof want, "\r%s\n", eline);    /* longer than the bar: no blanks */
    CHECK_STR(capture_new(&c), want);
    CHECK_EQ_INT(p.shown, 0);
    progress_begin_epoch(&p, 2, 0);    /* 10 steps took 1.5 s with validation; 20 left */
    CHECK_STR(capture_new(&c), "\repoch 2/3 [....................]  0/10 loss - - samples/s ETA 0:00:03");
    capture_close(&c);

    /* a resumed epoch starts its bar where it stopped */
    start(&p, &c, PROGRESS_TTY, 3, 10);
    fake_now = 100;
    progress_begin_epoch(&p, 2, 5);
    CHECK_STR(capture_new(&c), "\repoch 2/3 [##########..........]  5/10 loss - - samples/s ETA -:--:--");
    capture_close(&c);

    /* a narrow terminal: no bar, and the line never wraps */
    start(&p, &c, PROGRESS_TTY, 3, 10);
    p.width = 40;
    progress_begin_epoch(&p, 1, 0);
    CHECK_STR(capture_new(&c), "\repoch 1/3  0/10 loss - - samples/s ETA ");
    capture_close(&c);

    /* hours in the ETA */
    start(&p, &c, PROGRESS_TTY, 100, 10);
    p.width = 120;
    fake_now = 0;
    progress_begin_epoch(&p, 1, 0);
    fake_now = 100;
    progress_step(&p, 3.0, 1);          /* 100 s per step, 999 steps left */
    CHECK_MSG(strstr(capture_new(&c), "loss 3 0.01 samples/s ETA 27:45:00") != NULL, "%s", c.buf);
    capture_close(&c);
}

static void test_plain(void)
{
    Progress p;
    Capture c;
    start(&p, &c, PROGRESS_PLAIN, 2, 4);
    CHECK(!p.tty);
    p.log_interval = 1.0;
    fake_now = 10;
    progress_begin_epoch(&p, 1, 0);
    fake_now = 10.5;
    progress_step(&p, 2.0, 32);
    CHECK_STR(capture_new(&c), "");
    fake_now = 11;
    progress_step(&p, 1.0, 32);
    CHECK_STR(capture_new(&c), "epoch 1/2 step 2/4 loss 1.5 64.0 samples/s ETA 0:00:03\n");
    fake_now = 11.25;
    progress_step(&p, 0.5, 32);
    fake_now = 12.5;
    progress_step(&p, 0.25, 16);        /* the last step: the epoch line says it */
    CHECK_STR(capture_new(&c), "");
    fake_now = 13;
    ProgressEval train = {NAN, 0.5, NAN}, val = {0.75, 0.8125, NAN};
    progress_end_epoch(&p, &train, &val);
    /* (64 + 32 + 16 + 4) / 112 samples; 112 samples in 2.5 s of steps */
    CHECK_STR(capture_new(&c), "epoch 1/2: train loss 1.036 accuracy 50.00% | val loss 0.75 accuracy 81.25% | "
                               "2.5s 44.8 samples/s\n");
    progress_begin_epoch(&p, 2, 0);
    fake_now = 14;
    progress_step(&p, 0.5, 32);         /* 5 steps in 4 s, 3 left */
    CHECK_STR(capture_new(&c), "epoch 2/2 step 1/4 loss 0.5 32.0 samples/s ETA 0:00:02\n");
    fake_now = 14.5;
    progress_step(&p, 0.5, 32);
    fake_now = 15;
    progress_step(&p, 0.5, 32);
    CHECK_STR(capture_new(&c), "epoch 2/2 step 3/4 loss 0.5 48.0 samples/s ETA 0:00:01\n");
    fake_now = 15.5;
    progress_step(&p, 0.5, 16);
    fake_now = 16;
    ProgressEval val2 = {0.5, 0.875, 0.99};
    progress_end_epoch(&p, NULL, &val2);
    CHECK_STR(capture_new(&c), "epoch 2/2: train loss 0.5 | val loss 0.5 accuracy 87.50% top-5 99.00% | 2.5s 44.8 "
                               "samples/s\n");
    fake_now = 17;
    ProgressSummary s = {.best_epoch = 1, .best = val, .monitor = "val loss", .stop_reason = "interrupted (SIGINT)",
                         .export_path = "out.onnx", .checkpoint_path = "run.ckpt", .peak_rss = 100u << 20};
    progress_summary(&p, &s);
    CHECK_STR(capture_new(&c), "done: 2 epochs, 8 steps, 224 samples in 7.0s, 44.8 samples/s, peak memory 100.0 MiB\n"
                               "stopped: interrupted (SIGINT)\n"
                               "best epoch 1 (by val loss): val loss 0.75 accuracy 81.25%\n"
                               "export: out.onnx\n"
                               "checkpoint: run.ckpt\n");
    capture_close(&c);

    /* every K steps, no timer; unknown totals */
    start(&p, &c, PROGRESS_PLAIN, 1, 7);
    p.log_interval = 0;
    p.log_every = 3;
    fake_now = 0;
    progress_begin_epoch(&p, 1, 0);
    for (int k = 1; k <= 7; k++) {
        fake_now = k * 0.5;
        progress_step(&p, 1.0, 2);
    }
    CHECK_STR(capture_new(&c), "epoch 1/1 step 3/7 loss 1 4.0 samples/s ETA 0:00:02\n"
                               "epoch 1/1 step 6/7 loss 1 4.0 samples/s ETA 0:00:01\n");
    capture_close(&c);
    start(&p, &c, PROGRESS_PLAIN, 0, 0);
    p.log_interval = 0;
    p.log_every = 2;
    fake_now = 0;
    progress_begin_epoch(&p, 1, 0);
    fake_now = 1;
    progress_step(&p, 0.125, 4);
    progress_step(&p, 0.125, 4);
    CHECK_STR(capture_new(&c), "epoch 1 step 2 loss 0.125 8.0 samples/s ETA -:--:--\n");
    progress_summary(&p, NULL);         /* the real peak memory */
    const char *sum = capture_new(&c);
    CHECK_MSG(strncmp(sum, "done: 0 epochs, 2 steps, 8 samples in 1.0s, 8.0 samples/s, peak memory ", 71) == 0,
              "%s", sum);
    capture_close(&c);

    /* silent: still counts, never touches a stream */
    Progress q;
    progress_init(&q, NULL, PROGRESS_TTY, 1, 2);
    q.clock = fake_clock;
    progress_begin_epoch(&q, 1, 0);
    progress_step(&q, 1.0, 3);
    progress_end_epoch(&q, NULL, NULL);
    progress_clear(&q);
    progress_summary(&q, NULL);
    CHECK_EQ_INT(q.run_samples, 3);
    CHECK_EQ_INT(q.epochs_done, 1);
}

/* PROGRESS_AUTO on a pseudo-terminal: a bar unless TERM is dumb or unset; its column count. */
static void test_auto(void)
{
    Progress p;
    Capture c;
    capture_open(&c);
    progress_init(&p, c.f, PROGRESS_AUTO, 1, 1);
    CHECK(!p.tty);                       /* memory is no terminal */
    capture_close(&c);

    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        printf("test_auto: no pseudo-terminal here, skipped\n");
        return;
    }
    struct winsize ws = {.ws_row = 30, .ws_col = 100};
    ioctl(master, TIOCSWINSZ, &ws);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    FILE *f = slave >= 0 ? fdopen(slave, "w") : NULL;
    if (!f) {
        close(master);
        return;
    }
    const char *saved = getenv("TERM");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("TERM", "xterm-256color", 1);
    progress_init(&p, f, PROGRESS_AUTO, 1, 1);
    CHECK(p.tty);
    CHECK_EQ_INT(p.width, 100);
    setenv("TERM", "dumb", 1);
    progress_init(&p, f, PROGRESS_AUTO, 1, 1);
    CHECK(!p.tty);
    unsetenv("TERM");
    progress_init(&p, f, PROGRESS_AUTO, 1, 1);
    CHECK(!p.tty);
    progress_init(&p, f, PROGRESS_PLAIN, 1, 1);   /* forced */
    CHECK(!p.tty);
    if (keep)
        setenv("TERM", keep, 1);
    free(keep);
    fclose(f);
    close(master);
}

int main(void)
{
    test_tty();
    test_plain();
    test_auto();
    CHECK(progress_peak_rss() > (1u << 20));
    return test_summary("test_progress");
}
