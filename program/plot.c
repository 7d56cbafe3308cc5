/* plot.c - `--plot FILE.svg`: the loss and accuracy curves of a training run as one self-contained SVG
 * (no scripts, fonts or external references), rewritten atomically each epoch, and the history it is
 * drawn from (saved in checkpoints). It draws only lines and markers on linear axes: no zoom, no log scale.
 */
#include "program.h"

#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ the history */

void plot_history_init(PlotHistory *h)
{
    *h = (PlotHistory){0};
}

void plot_history_free(PlotHistory *h)
{
    free(h->steps);
    free(h->epochs);
    *h = (PlotHistory){0};
}

static bool grow(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t want = *cap ? *cap * 2 : 64;
    if (want > SIZE_MAX / size)
        return false;
    void *p = realloc(*items, want * size);
    if (!p)
        return false;
    *items = p;
    *cap = want;
    return true;
}

bool plot_history_add_step(PlotHistory *h, double epoch_pos, double loss)
{
    if (!grow((void **)&h->steps, &h->cap_steps_, h->nsteps, sizeof *h->steps))
        return false;
    h->steps[h->nsteps++] = (PlotPoint){epoch_pos, loss};
    return true;
}

bool plot_history_add_epoch(PlotHistory *h, const PlotEpoch *e)
{
    if (!grow((void **)&h->epochs, &h->cap_epochs_, h->nepochs, sizeof *h->epochs))
        return false;
    h->epochs[h->nepochs++] = *e;
    return true;
}

/* Saved form: "ONXTPLT1", u64 nsteps, u64 nepochs, then the PlotPoint and PlotEpoch arrays as doubles
 * (host order, like the rest of a checkpoint). */
#define HISTORY_MAGIC "ONXTPLT1"

void *plot_history_save(const PlotHistory *h, size_t *len)
{
    size_t n = 24 + h->nsteps * sizeof(PlotPoint) + h->nepochs * sizeof(PlotEpoch);
    unsigned char *buf = malloc(n);
    if (!buf)
        return NULL;
    uint64_t counts[2] = {h->nsteps, h->nepochs};
    memcpy(buf, HISTORY_MAGIC, 8);
    memcpy(buf + 8, counts, 16);
    if (h->nsteps)
        memcpy(buf + 24, h->steps, h->nsteps * sizeof(PlotPoint));
    if (h->nepochs)
        memcpy(buf + 24 + h->nsteps * sizeof(PlotPoint), h->epochs, h->nepochs * sizeof(PlotEpoch));
    *len = n;
    return buf;
}

bool plot_history_load(PlotHistory *h, const void *data, size_t len)
{
    plot_history_init(h);
    const unsigned char *p = data;
    uint64_t counts[2];
    if (len < 24 || memcmp(p, HISTORY_MAGIC, 8) != 0)
        return false;
    memcpy(counts, p + 8, 16);
    if (counts[0] > (len - 24) / sizeof(PlotPoint) || counts[1] > (len - 24) / sizeof(PlotEpoch) ||
        24 + counts[0] * sizeof(PlotPoint) + counts[1] * sizeof(PlotEpoch) != len)
        return false;
    size_t ns = (size_t)counts[0], ne = (size_t)counts[1];
    PlotPoint *steps = malloc(ns ? ns * sizeof *steps : 1);
    PlotEpoch *epochs = malloc(ne ? ne * sizeof *epochs : 1);
    if (!steps || !epochs) {
        free(steps);
        free(epochs);
        return false;
    }
    memcpy(steps, p + 24, ns * sizeof *steps);
    memcpy(epochs, p + 24 + ns * sizeof *steps, ne * sizeof *epochs);
    /* an empty array's 1-byte block holds no element: capacity 0, so the first add grows it */
    *h = (PlotHistory){.steps = steps, .nsteps = ns, .cap_steps_ = ns, .epochs = epochs, .nepochs = ne,
                       .cap_epochs_ = ne};
    return true;
}

/* ------------------------------------------------------------------------ axes */

/* A value we can place on an axis (NaN, Inf and absurd magnitudes are skipped like missing points). */
static bool usable(double v)
{
    return isfinite(v) && fabs(v) <= 1e200;
}

PlotAxis plot_axis(double lo, double hi, int ticks)
{
    if (!usable(lo) || !usable(hi))
        return (PlotAxis){0, 1, 0.2};
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi))) {   /* a constant: open a window around it */
        double d = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= d;
        hi += d;
    }
    if (ticks < 2)
        ticks = 2;
    double raw = (hi - lo) / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10) * mag;   /* 0.1/5 is 0.0200..04 */
    double a = floor(lo / step + 1e-9) * step, b = ceil(hi / step - 1e-9) * step;
    return (PlotAxis){a, b > a ? b : a + step, step};
}

/* A tick value with as many decimals as the step needs ("0.25" never occurs: steps are 1, 2, 5 x 10^k). */
static void fmt_tick(char *buf, size_t len, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0;    /* no "-0" from floating error */
    if (fabs(v) >= 1e6 || step < 1e-5)   /* enough digits that neighbouring ticks differ */
        snprintf(buf, len, "%.*g", (int)fmin(17, ceil(log10(fmax(fabs(v), step) / step)) + 1), v);
    else
        snprintf(buf, len, "%.*f", step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9), v);
}

/* ------------------------------------------------------------------------ drawing */

#define SVG_W 720
#define TITLE_H 32
#define PANEL_H 270
#define SVG_H (TITLE_H + 2 * PANEL_H + 8)
#define MARGIN_L 64
#define MARGIN_R 20
#define MARGIN_T 26
#define MARGIN_B 42
#define MAX_POINTS 1000     /* a long run's per-step curve is averaged down to this many points */

/* Text content or attribute value: XML-escaped, control characters and invalid UTF-8 as '?'. */
static void put_text(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        bool ok = n > 0;
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && n == 3)       /* no overlongs, no surrogates */
            ok = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] >= 0xA0);
        if (ok && n == 4)
            ok = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] >= 0x90);
        if (!ok) {
            fputc('?', f);
            p++;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, n, f);
        } else if (c == '&') {
            fputs("&amp;", f);
        } else if (c == '<') {
            fputs("&lt;", f);
        } else if (c == '>') {
            fputs("&gt;", f);
        } else if (c == '"') {
            fputs("&quot;", f);
        } else if (c == '\'') {
            fputs("&apos;", f);
        } else {
            fputc(c < 0x20 && c != '\t' ? '?' : (int)c, f);
        }
        p += n;
    }
}

typedef struct Series {
    const char *label;
    const char *color;
    double width;           /* stroke width */
    bool markers;           /* a circle at every point (per-epoch series) */
    size_t n;
    double *x, *y;          /* NaN breaks the line */
} Series;

typedef struct Panel {
    const char *title, *ylabel;
    double top;             /* y of the panel in the document */
    bool legend_low;        /* legend bottom right (rising curves) instead of top right (falling ones) */
    PlotAxis xa, ya;
    int nseries;
    Series s[4];
} Panel;

static double px(const Panel *pn, double x)
{
    return MARGIN_L + (x - pn->xa.lo) / (pn->xa.hi - pn->xa.lo) * (SVG_W - MARGIN_L - MARGIN_R);
}

static double py(const Panel *pn, double y)
{
    double h = PANEL_H - MARGIN_T - MARGIN_B;
    return pn->top + MARGIN_T + h - (y - pn->ya.lo) / (pn->ya.hi - pn->ya.lo) * h;
}

static void draw_series(FILE *f, const Panel *pn, const Series *s)
{
    bool pen = false, any = false;
    fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-linejoin=\"round\" d=\"", s->color,
            s->width);
    for (size_t i = 0; i < s->n; i++) {
        if (!usable(s->x[i]) || !usable(s->y[i])) {
            pen = false;
            continue;
        }
        fprintf(f, "%s%.1f %.1f", pen ? " L" : any ? " M" : "M", px(pn, s->x[i]), py(pn, s->y[i]));
        pen = any = true;
    }
    fprintf(f, "\"/>\n");
    /* markers: on every point of a per-epoch series, and on points with no neighbour to draw a line to */
    for (size_t i = 0; i < s->n; i++) {
        if (!usable(s->x[i]) || !usable(s->y[i]))
            continue;
        bool prev = i > 0 && usable(s->x[i - 1]) && usable(s->y[i - 1]);
        bool next = i + 1 < s->n && usable(s->x[i + 1]) && usable(s->y[i + 1]);
        if (s->markers || (!prev && !next))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"/>\n", px(pn, s->x[i]), py(pn, s->y[i]),
                    s->markers ? "3" : "1.5", s->color);
    }
}

static void draw_panel(FILE *f, const Panel *pn, int id)
{
    double l = MARGIN_L, r = SVG_W - MARGIN_R, t = pn->top + MARGIN_T, b = pn->top + PANEL_H - MARGIN_B;
    char num[48];
    fprintf(f, "<g>\n<text x=\"%.0f\" y=\"%.0f\" font-size=\"14\" font-weight=\"bold\">", l, pn->top + 18);
    put_text(f, pn->title);
    fprintf(f, "</text>\n");
    /* grid and tick labels: the axes' ticks are k * step for integer k */
    for (int axis = 0; axis < 2; axis++) {
        const PlotAxis *a = axis ? &pn->ya : &pn->xa;
        long long k0 = llround(a->lo / a->step), k1 = llround(a->hi / a->step);
        if (k1 - k0 > 50)
            k1 = k0 + 50;
        for (long long k = k0; k <= k1; k++) {
            double v = (double)k * a->step;
            fmt_tick(num, sizeof num, v, a->step);
            if (axis == 0) {
                double x = px(pn, v);
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", x, t, x, b);
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, b + 16, num);
            } else {
                double y = py(pn, v);
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", l, y, r, y);
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", l - 6, y + 4, num);
            }
        }
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n", l, t,
            r - l, b - t);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text>\n", (l + r) / 2, b + 34);
    fprintf(f, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">", (t + b) / 2);
    put_text(f, pn->ylabel);
    fprintf(f, "</text>\n");
    fprintf(f, "<clipPath id=\"area%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n", id,
            l - 4, t - 4, r - l + 8, b - t + 8);
    fprintf(f, "<g clip-path=\"url(#area%d)\">\n", id);
    int shown = 0;
    for (int i = 0; i < pn->nseries; i++)
        if (pn->s[i].n) {
            draw_series(f, pn, &pn->s[i]);
            shown++;
        }
    fprintf(f, "</g>\n");
    if (!shown) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">not measured yet</text>\n",
                (l + r) / 2, (t + b) / 2);
    } else {
        /* the legend, top right inside the plot area */
        size_t longest = 0;
        for (int i = 0; i < pn->nseries; i++)
            if (pn->s[i].n && strlen(pn->s[i].label) > longest)
                longest = strlen(pn->s[i].label);
        double w = 36 + 6.5 * (double)longest, x = r - w - 8, y = pn->legend_low ? b - 16 - 16 * shown : t + 8;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"white\" fill-opacity=\"0.85\" "
                "stroke=\"#ccc\"/>\n", x, y, w, 8 + 16 * shown);
        int row = 0;
        for (int i = 0; i < pn->nseries; i++) {
            const Series *s = &pn->s[i];
            if (!s->n)
                continue;
            double ly = y + 12 + 16 * row++;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"/>\n",
                    x + 6, ly, x + 26, ly, s->color, s->width < 2 ? 2 : s->width);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 32, ly + 4);
            put_text(f, s->label);
            fprintf(f, "</text>\n");
        }
    }
    fprintf(f, "</g>\n");
}

/* Add series s (n points) to the panel when it has at least one usable point; widen lo/hi over them. */
static void panel_add(Panel *pn, Series s, double *xlo, double *xhi, double *ylo, double *yhi)
{
    size_t used = 0;
    for (size_t i = 0; i < s.n; i++)
        if (usable(s.x[i]) && usable(s.y[i])) {
            used++;
            *xlo = fmin(*xlo, s.x[i]);
            *xhi = fmax(*xhi, s.x[i]);
            *ylo = fmin(*ylo, s.y[i]);
            *yhi = fmax(*yhi, s.y[i]);
        }
    if (!used)
        s.n = 0;
    pn->s[pn->nseries++] = s;
}

static void panel_axes(Panel *pn, double xlo, double xhi, double ylo, double yhi)
{
    pn->xa = plot_axis(fmin(0, xlo), xhi > -INFINITY ? fmax(xhi, 1) : 1, 6);
    pn->ya = ylo <= yhi ? plot_axis(ylo, yhi, 5) : plot_axis(0, 1, 5);
}

char *plot_svg(const PlotHistory *h, const char *title, size_t *len)
{
    size_t ns = h->nsteps, ne = h->nepochs, k = ns > MAX_POINTS ? (ns + MAX_POINTS - 1) / MAX_POINTS : 1;
    size_t nb = (ns + k - 1) / k, nbuf = 4 * nb + 8 * ne + 1;
    double *mem = malloc(nbuf * sizeof *mem);
    char *doc = NULL;
    size_t doclen = 0;
    FILE *f = mem ? open_memstream(&doc, &doclen) : NULL;
    if (!f) {
        free(mem);
        return NULL;
    }
    double *rx = mem, *ry = rx + nb, *sx = ry + nb, *sy = sx + nb, *ex = sy + nb;
    double *etl = ex + ne, *evl = etl + ne, *eta = evl + ne, *eva = eta + ne;
    /* per step: means over buckets of k steps, and an exponential moving average (debiased, as
     * TensorBoard's smoothing) over a window of about 1/20 of the run, sampled at the buckets' ends */
    size_t usable_steps = 0;
    for (size_t i = 0; i < ns; i++)
        usable_steps += usable(h->steps[i].x) && usable(h->steps[i].y);
    double window = fmin(fmax((double)usable_steps / 20.0, 1.0), 200.0), a = 1.0 - 1.0 / window;
    double ema = 0, weight = 0;
    for (size_t b = 0; b < nb; b++) {
        double mx = 0, my = 0;
        size_t cnt = 0;
        for (size_t i = b * k; i < ns && i < (b + 1) * k; i++) {
            const PlotPoint *pt = &h->steps[i];
            if (!usable(pt->x) || !usable(pt->y))
                continue;
            mx += pt->x;
            my += pt->y;
            cnt++;
            ema = a * ema + (1 - a) * pt->y;
            weight = a * weight + (1 - a);
        }
        rx[b] = sx[b] = cnt ? mx / (double)cnt : NAN;
        ry[b] = cnt ? my / (double)cnt : NAN;
        sy[b] = cnt && weight > 0 ? ema / weight : NAN;
        if (cnt)
            sx[b] = h->steps[(b + 1) * k < ns ? (b + 1) * k - 1 : ns - 1].x;
        if (!usable(sx[b]))
            sx[b] = rx[b];
    }
    for (size_t i = 0; i < ne; i++) {
        ex[i] = h->epochs[i].epoch;
        etl[i] = h->epochs[i].train_loss;
        evl[i] = h->epochs[i].val_loss;
        eta[i] = 100.0 * h->epochs[i].train_accuracy;
        eva[i] = 100.0 * h->epochs[i].val_accuracy;
    }
    Panel loss = {.title = "loss", .ylabel = "loss", .top = TITLE_H};
    Panel acc = {.title = "accuracy", .ylabel = "accuracy (%)", .top = TITLE_H + PANEL_H, .legend_low = true};
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    panel_add(&loss, (Series){"train (per step)", "#9ecae1", 1, false, nb, rx, ry}, &xlo, &xhi, &ylo, &yhi);
    panel_add(&loss, (Series){"train (smoothed)", "#1f77b4", 2, false, usable_steps >= 2 ? nb : 0, sx, sy}, &xlo,
              &xhi, &ylo, &yhi);
    panel_add(&loss, (Series){"train (epoch mean)", "#1f77b4", 2, true, usable_steps ? 0 : ne, ex, etl}, &xlo, &xhi,
              &ylo, &yhi);
    panel_add(&loss, (Series){"validation", "#d62728", 2, true, ne, ex, evl}, &xlo, &xhi, &ylo, &yhi);
    panel_axes(&loss, xlo, xhi, ylo, yhi);
    double axlo = INFINITY, axhi = -INFINITY, aylo = INFINITY, ayhi = -INFINITY;
    panel_add(&acc, (Series){"train", "#1f77b4", 2, true, ne, ex, eta}, &axlo, &axhi, &aylo, &ayhi);
    panel_add(&acc, (Series){"validation", "#d62728", 2, true, ne, ex, eva}, &axlo, &axhi, &aylo, &ayhi);
    /* both panels share the epoch axis */
    panel_axes(&acc, fmin(xlo, axlo), fmax(xhi, axhi), aylo, ayhi);
    loss.xa = acc.xa;

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n", SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(f, "<title>");
    put_text(f, title && *title ? title : "training");
    fprintf(f, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_W, SVG_H);
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"16\">", MARGIN_L);
    put_text(f, title && *title ? title : "training");
    fprintf(f, "</text>\n");
    draw_panel(f, &loss, 0);
    draw_panel(f, &acc, 1);
    fprintf(f, "</svg>\n");
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    free(mem);
    if (!ok) {
        free(doc);
        return NULL;
    }
    *len = doclen;
    return doc;
}

CkptStatus plot_write_svg(const char *path, const PlotHistory *h, const char *title, char *err, size_t errlen)
{
    size_t len = 0;
    char *doc = plot_svg(h, title, &len);
    if (!doc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory drawing the plot", path);
        return CKPT_ENOMEM;
    }
    char msg[1024];
    FileStatus fs = atomic_write(path, doc, len, msg, sizeof msg);
    free(doc);
    if (fs != FILE_OK && err && errlen)
        snprintf(err, errlen, "%s: %s", path, msg);
    return fs == FILE_OK ? CKPT_OK : fs == FILE_ENOMEM ? CKPT_ENOMEM : CKPT_EIO;
}
