/* progress.c - what a training run shows while it runs: a bar redrawn in place on a terminal, plain
 * periodic lines in logs and CI, one line per epoch and a summary at the end. It only formats what the
 * caller reports (losses, sample counts, metrics); it knows nothing of models, data or the trainer.
 */
#include "program.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BAR_MAX 30      /* the bar's width between its brackets, at most */
#define BAR_MIN 10      /* narrower than this: no bar, just the numbers */
#define NUMS_WIDTH 40   /* room kept for "loss 0.1234 1234.5 samples/s ETA 0:01:23" */
#define LINE_MAX 512

static double monotonic_seconds(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(const Progress *p)
{
    return p->clock ? p->clock(p->clock_ctx) : monotonic_seconds(NULL);
}

void progress_init(Progress *p, FILE *out, ProgressMode mode, int64_t epochs, int64_t steps_per_epoch)
{
    *p = (Progress){.out = out, .width = 80, .redraw_interval = 0.1, .log_interval = 30, .epochs = epochs,
                    .steps_per_epoch = steps_per_epoch, .t_run = -1};
    int fd = out ? fileno(out) : -1;
    if (mode == PROGRESS_AUTO) {
        const char *term = getenv("TERM");
        p->tty = fd >= 0 && isatty(fd) && term && *term && strcmp(term, "dumb") != 0;
    } else {
        p->tty = mode == PROGRESS_TTY;
    }
    struct winsize ws;
    if (p->tty && fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        p->width = ws.ws_col;
}

/* h:mm:ss, rounded to the second; "-:--:--" when unknown. */
static const char *fmt_hms(char *buf, size_t len, double s)
{
    if (!(s >= 0) || s > 1e12) {
        snprintf(buf, len, "-:--:--");
        return buf;
    }
    long long r = (long long)floor(s + 0.5);
    snprintf(buf, len, "%lld:%02lld:%02lld", r / 3600, r / 60 % 60, r % 60);
    return buf;
}

/* Durations in lines: "12.3s" below a minute, else h:mm:ss. */
static const char *fmt_duration(char *buf, size_t len, double s)
{
    if (s >= 0 && s < 59.95)
        snprintf(buf, len, "%.1fs", s);
    else
        fmt_hms(buf, len, s);
    return buf;
}

static const char *fmt_rate(char *buf, size_t len, double samples, double seconds)
{
    double r = seconds > 0 ? samples / seconds : 0;
    if (r >= 0.95)
        snprintf(buf, len, "%.1f samples/s", r);
    else if (r > 0)
        snprintf(buf, len, "%.2g samples/s", r);     /* slow steps: 0.01, not 0.0 */
    else
        snprintf(buf, len, "- samples/s");
    return buf;
}

static double epoch_loss(const Progress *p)
{
    return p->loss_weight > 0 ? p->loss_sum / p->loss_weight : NAN;
}

static const char *fmt_loss(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.4g", v);
    return buf;
}

/* Seconds left in the run: the mean time per step so far (validation included) times the steps left. */
static double eta(const Progress *p, double t)
{
    if (p->run_steps <= 0 || p->steps_per_epoch <= 0 || p->t_run < 0)
        return NAN;
    int64_t left = (p->epochs - p->epoch) * p->steps_per_epoch + (p->steps_per_epoch - p->step);
    if (left < 0)
        left = 0;
    return (t - p->t_run) / (double)p->run_steps * (double)left;
}

/* "epoch E/N", or "epoch E" when the number of epochs is unknown. */
static int fmt_epoch(char *buf, size_t len, const Progress *p)
{
    return p->epochs > 0 ? snprintf(buf, len, "epoch %lld/%lld", (long long)p->epoch, (long long)p->epochs)
                         : snprintf(buf, len, "epoch %lld", (long long)p->epoch);
}

static void fmt_counts(char *buf, size_t len, const Progress *p)
{
    if (p->steps_per_epoch > 0)
        snprintf(buf, len, "%lld/%lld", (long long)p->step, (long long)p->steps_per_epoch);
    else
        snprintf(buf, len, "%lld", (long long)p->step);
}

/* The numbers after the position: "loss L R samples/s ETA h:mm:ss". */
static void fmt_numbers(char *buf, size_t len, const Progress *p, double t)
{
    char loss[32], rate[48], left[32];
    if (p->loss_weight > 0)
        fmt_loss(loss, sizeof loss, epoch_loss(p));
    else
        snprintf(loss, sizeof loss, "-");
    fmt_rate(rate, sizeof rate, (double)p->epoch_samples, t - p->t_epoch);
    snprintf(buf, len, "loss %s %s ETA %s", loss, rate, fmt_hms(left, sizeof left, eta(p, t)));
}

/* Put line on the terminal in place of the bar: one write of CR, the text and the blanks that erase
 * the rest of a longer previous line. */
static void tty_put(Progress *p, const char *line, bool newline)
{
    size_t n = strlen(line);
    fputc('\r', p->out);
    fputs(line, p->out);
    for (size_t i = n; i < p->shown; i++)
        fputc(' ', p->out);
    if (newline)
        fputc('\n', p->out);
    p->shown = newline ? 0 : n;
    fflush(p->out);
}

static void tty_draw(Progress *p, double t)
{
    char head[64], counts[64], widest[64], nums[160], bar[BAR_MAX + 4] = "", line[LINE_MAX];
    fmt_epoch(head, sizeof head, p);
    fmt_counts(counts, sizeof counts, p);
    fmt_numbers(nums, sizeof nums, p, t);
    /* the bar and the step count keep their width through the epoch, so nothing jumps as numbers change */
    int barw = 0;
    if (p->steps_per_epoch > 0) {
        int cw = snprintf(widest, sizeof widest, "%lld/%lld", (long long)p->steps_per_epoch,
                          (long long)p->steps_per_epoch);
        snprintf(widest, sizeof widest, "%*s", cw, counts);
        memcpy(counts, widest, strlen(widest) + 1);
        barw = p->width - 1 - (int)strlen(head) - cw - NUMS_WIDTH - 5;
        barw = barw > BAR_MAX ? BAR_MAX : barw;
    }
    if (barw >= BAR_MIN) {
        int64_t s = p->step < p->steps_per_epoch ? p->step : p->steps_per_epoch;
        int fill = (int)(s * barw / p->steps_per_epoch);
        bar[0] = '[';
        for (int i = 0; i < barw; i++)
            bar[1 + i] = i < fill ? '#' : '.';
        bar[barw + 1] = ']';
        bar[barw + 2] = ' ';
        bar[barw + 3] = '\0';
    }
    snprintf(line, sizeof line, "%s %s%s %s", head, bar, counts, nums);
    if (p->width > 1 && strlen(line) > (size_t)p->width - 1)
        line[p->width - 1] = '\0';     /* a line that wraps cannot be redrawn with CR */
    tty_put(p, line, false);
    p->t_shown = t;
}

static void plain_line(Progress *p, double t)
{
    char head[64], counts[64], nums[160];
    fmt_epoch(head, sizeof head, p);
    fmt_counts(counts, sizeof counts, p);
    fmt_numbers(nums, sizeof nums, p, t);
    fprintf(p->out, "%s step %s %s\n", head, counts, nums);
    fflush(p->out);
    p->t_shown = t;
}

void progress_begin_epoch(Progress *p, int64_t epoch, int64_t steps_done)
{
    double t = now(p);
    if (p->t_run < 0) {
        p->t_run = t;
        p->t_shown = t;
    }
    p->epoch = epoch;
    p->step = steps_done;
    p->t_epoch = p->t_step = t;
    p->loss_sum = p->loss_weight = 0;
    p->epoch_samples = 0;
    p->in_epoch = true;
    if (p->tty && p->out)
        tty_draw(p, t);
}

void progress_step(Progress *p, double loss, size_t nsamples)
{
    double t = now(p);
    p->step++;
    p->run_steps++;
    p->run_samples += nsamples;
    p->epoch_samples += nsamples;
    p->loss_sum += loss * (double)nsamples;
    p->loss_weight += (double)nsamples;
    p->t_step = t;
    if (!p->out)
        return;
    if (p->tty) {
        if (p->shown == 0 || t - p->t_shown >= p->redraw_interval)
            tty_draw(p, t);
        return;
    }
    if (p->steps_per_epoch > 0 && p->step >= p->steps_per_epoch)
        return;     /* the epoch line follows */
    if ((p->log_every > 0 && p->run_steps % p->log_every == 0) ||
        (p->log_interval > 0 && t - p->t_shown >= p->log_interval))
        plain_line(p, t);
}

static void append(char *buf, size_t len, const char *fmt, double v, bool percent)
{
    size_t n = strlen(buf);
    if (isnan(v) || n >= len)
        return;
    char num[32];
    if (percent)
        snprintf(num, sizeof num, "%.2f%%", 100.0 * v);
    else
        fmt_loss(num, sizeof num, v);
    snprintf(buf + n, len - n, fmt, num);
}

void progress_end_epoch(Progress *p, const ProgressEval *train, const ProgressEval *val)
{
    double t = now(p), dt = p->t_step - p->t_epoch;
    p->train_time += dt;
    p->epochs_done++;
    p->in_epoch = false;
    p->last_train_loss = train && !isnan(train->loss) ? train->loss : epoch_loss(p);
    if (!p->out)
        return;
    char line[LINE_MAX], dur[32], rate[48];
    fmt_epoch(line, sizeof line, p);
    size_t n = strlen(line);
    snprintf(line + n, sizeof line - n, ":");
    append(line, sizeof line, " train loss %s", p->last_train_loss, false);
    if (train) {
        append(line, sizeof line, " accuracy %s", train->accuracy, true);
        append(line, sizeof line, " top-5 %s", train->top5, true);
    }
    if (val) {
        n = strlen(line);
        snprintf(line + n, sizeof line - n, " | val");
        append(line, sizeof line, " loss %s", val->loss, false);
        append(line, sizeof line, " accuracy %s", val->accuracy, true);
        append(line, sizeof line, " top-5 %s", val->top5, true);
    }
    n = strlen(line);
    snprintf(line + n, sizeof line - n, " | %s %s", fmt_duration(dur, sizeof dur, dt),
             fmt_rate(rate, sizeof rate, (double)p->epoch_samples, dt));
    if (p->tty) {
        tty_put(p, line, true);
    } else {
        fprintf(p->out, "%s\n", line);
        fflush(p->out);
    }
    p->t_shown = t;
}

void progress_clear(Progress *p)
{
    if (p->out && p->tty && p->shown) {
        tty_put(p, "", false);
        fputc('\r', p->out);
        fflush(p->out);
        p->shown = 0;
    }
}

size_t progress_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024;     /* Linux reports KiB */
}

void progress_summary(Progress *p, const ProgressSummary *s)
{
    if (!p->out)
        return;
    progress_clear(p);
    double t = now(p), total = p->t_run >= 0 ? t - p->t_run : 0;
    double stepping = p->train_time + (p->in_epoch ? p->t_step - p->t_epoch : 0);   /* an unfinished epoch too */
    size_t rss = s && s->peak_rss ? s->peak_rss : progress_peak_rss();
    char dur[32], rate[48];
    FILE *f = p->out;
    fprintf(f, "done: %lld epoch%s, %lld steps, %zu samples in %s, %s", (long long)p->epochs_done,
            p->epochs_done == 1 ? "" : "s", (long long)p->run_steps, p->run_samples,
            fmt_duration(dur, sizeof dur, total), fmt_rate(rate, sizeof rate, (double)p->run_samples, stepping));
    if (rss)
        fprintf(f, ", peak memory %.1f MiB", (double)rss / (1024.0 * 1024.0));
    fputc('\n', f);
    if (s && s->stop_reason)
        fprintf(f, "stopped: %s\n", s->stop_reason);
    if (s && s->best_epoch > 0) {
        char line[LINE_MAX];
        snprintf(line, sizeof line, "best epoch %lld", (long long)s->best_epoch);
        if (s->monitor) {
            size_t n = strlen(line);
            snprintf(line + n, sizeof line - n, " (by %s)", s->monitor);
        }
        strncat(line, ":", sizeof line - strlen(line) - 1);
        append(line, sizeof line, " val loss %s", s->best.loss, false);
        append(line, sizeof line, " accuracy %s", s->best.accuracy, true);
        append(line, sizeof line, " top-5 %s", s->best.top5, true);
        fprintf(f, "%s\n", line);
    }
    const char *labels[] = {"export", "checkpoint", "plot", "metrics"};
    const char *paths[] = {s ? s->export_path : NULL, s ? s->checkpoint_path : NULL, s ? s->plot_path : NULL,
                           s ? s->metrics_path : NULL};
    for (int i = 0; i < 4; i++)
        if (paths[i])
            fprintf(f, "%s: %s\n", labels[i], paths[i]);
    fflush(f);
}
