/* test_plot.c - program/plot.c: the SVG is well-formed XML (checked by a small checker here, itself
 * tested on malformed documents) for full, empty, one-point, NaN/Inf, constant and very long histories;
 * 1-2-5 axes; escaping; atomic rewrites; the history's saved form.
 */
#include "program.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- an XML 1.0 well-formedness checker: enough for SVG (no DTD, no CDATA) ---- */

static bool name_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}

static bool name_char(int c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static size_t read_name(const char *s, size_t i, size_t n)
{
    if (i >= n || !name_start((unsigned char)s[i]))
        return 0;
    size_t k = i + 1;
    while (k < n && name_char((unsigned char)s[k]))
        k++;
    return k - i;
}

/* An entity reference at s[i] == '&': its length, 0 if invalid. */
static size_t entity(const char *s, size_t i, size_t n)
{
    static const char *named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int k = 0; k < 5; k++)
        if (strncmp(s + i, named[k], strlen(named[k])) == 0)
            return strlen(named[k]);
    size_t k = i + 1;
    if (k < n && s[k] == '#') {
        k++;
        bool hex = k < n && s[k] == 'x';
        k += hex;
        size_t d = k;
        while (k < n && (hex ? strchr("0123456789abcdefABCDEF", s[k]) != NULL : s[k] >= '0' && s[k] <= '9') && s[k])
            k++;
        if (k > d && k < n && s[k] == ';')
            return k + 1 - i;
    }
    return 0;
}

static bool valid_utf8(const unsigned char *p, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        bool ok = len && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            ok = false;
        if (!ok) {
            *bad = i;
            return false;
        }
        i += len;
    }
    return true;
}

/* NULL if doc[n] is well-formed, else what is wrong and where. */
static const char *xml_check(const char *s, size_t n)
{
    static char why[256];
    size_t bad;
    if (!valid_utf8((const unsigned char *)s, n, &bad)) {
        snprintf(why, sizeof why, "invalid UTF-8 or control character at %zu", bad);
        return why;
    }
    const char *stack[256];
    size_t depth_len[256];
    int depth = 0, roots = 0;
    size_t i = 0;
    if (strncmp(s, "<?xml ", 6) == 0) {
        const char *end = strstr(s, "?>");
        if (!end)
            return "unterminated XML declaration";
        i = (size_t)(end - s) + 2;
    }
#define FAIL(...) do { snprintf(why, sizeof why, __VA_ARGS__); return why; } while (0)
    while (i < n) {
        if (s[i] == '&') {
            if (!depth)
                FAIL("reference outside the root at %zu", i);
            size_t e = entity(s, i, n);
            if (!e)
                FAIL("bad entity at %zu", i);
            i += e;
        } else if (s[i] != '<') {
            if (!depth && !strchr(" \t\r\n", s[i]))
                FAIL("text outside the root at %zu", i);
            i++;
        } else if (strncmp(s + i, "<!--", 4) == 0) {
            const char *end = strstr(s + i + 4, "-->");
            if (!end)
                FAIL("unterminated comment at %zu", i);
            i = (size_t)(end - s) + 3;
        } else if (s[i + 1] == '/') {
            size_t len = read_name(s, i + 2, n);
            if (!len)
                FAIL("bad end tag at %zu", i);
            if (!depth || depth_len[depth - 1] != len || strncmp(stack[depth - 1], s + i + 2, len) != 0)
                FAIL("end tag </%.*s> at %zu does not close <%.*s>", (int)len, s + i + 2, i,
                     depth ? (int)depth_len[depth - 1] : 0, depth ? stack[depth - 1] : "");
            size_t k = i + 2 + len;
            while (k < n && strchr(" \t\r\n", s[k]))
                k++;
            if (k >= n || s[k] != '>')
                FAIL("end tag not closed at %zu", k);
            depth--;
            i = k + 1;
        } else {
            size_t len = read_name(s, i + 1, n);
            if (!len)
                FAIL("bad start tag at %zu", i);
            if (!depth && roots++)
                FAIL("a second root element at %zu", i);
            const char *tag = s + i + 1;
            size_t k = i + 1 + len;
            const char *attrs[64];
            size_t alen[64];
            int na = 0;
            for (;;) {
                size_t ws = k;
                while (k < n && strchr(" \t\r\n", s[k]))
                    k++;
                if (k >= n)
                    FAIL("unterminated tag <%.*s>", (int)len, tag);
                if (s[k] == '>' || (s[k] == '/' && k + 1 < n && s[k + 1] == '>'))
                    break;
                if (k == ws)
                    FAIL("no space before an attribute at %zu", k);
                size_t an = read_name(s, k, n);
                if (!an)
                    FAIL("bad attribute name at %zu", k);
                for (int a = 0; a < na; a++)
                    if (alen[a] == an && strncmp(attrs[a], s + k, an) == 0)
                        FAIL("duplicate attribute %.*s at %zu", (int)an, s + k, k);
                if (na < 64) {
                    attrs[na] = s + k;
                    alen[na++] = an;
                }
                k += an;
                if (k >= n || s[k] != '=')
                    FAIL("attribute without '=' at %zu", k);
                k++;
                if (k >= n || (s[k] != '"' && s[k] != '\''))
                    FAIL("unquoted attribute value at %zu", k);
                char q = s[k++];
                while (k < n && s[k] != q) {
                    if (s[k] == '<')
                        FAIL("'<' in an attribute value at %zu", k);
                    if (s[k] == '&') {
                        size_t e = entity(s, k, n);
                        if (!e)
                            FAIL("bad entity in an attribute at %zu", k);
                        k += e;
                    } else {
                        k++;
                    }
                }
                if (k >= n)
                    FAIL("unterminated attribute value");
                k++;
            }
            if (s[k] == '/') {
                i = k + 2;     /* empty element */
            } else {
                if (depth == 256)
                    FAIL("too deep");
                stack[depth] = tag;
                depth_len[depth++] = len;
                i = k + 1;
            }
        }
    }
    if (depth)
        FAIL("<%.*s> never closed", (int)depth_len[depth - 1], stack[depth - 1]);
    if (!roots)
        FAIL("no root element");
#undef FAIL
    return NULL;
}

static void test_checker(void)
{
    const char *good[] = {
        "<a/>", "<?xml version=\"1.0\"?>\n<a x='1' y=\"&amp;&#38;&#x26;\">t&lt;<b/><!-- c --></a>\n",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><g><text>\xc3\xbc</text></g></svg>",
    };
    const char *bad[] = {
        "", "<a>", "<a></b>", "<a><b></a></b>", "<a x=1/>", "<a x=\"1\" x=\"2\"/>", "<a>&foo;</a>", "<a>&amp</a>",
        "<a/><b/>", "<a>\x01</a>", "<a x=\"<\"/>", "<a>\xff</a>", "text<a/>", "<a x=\"1\"y=\"2\"/>", "<1a/>",
        "<a x=\"1/>", "<a></a >x",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        const char *why = xml_check(good[i], strlen(good[i]));
        CHECK_MSG(why == NULL, "good document %zu refused: %s", i, why);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(xml_check(bad[i], strlen(bad[i])) != NULL, "malformed document %zu accepted: %s", i, bad[i]);
}

/* ---- the plots ---- */

static size_t count(const char *doc, const char *what)
{
    size_t n = 0;
    for (const char *p = doc; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* The document for h, checked well-formed and with an <svg> root; NULL on failure. */
static char *render(const PlotHistory *h, const char *title, const char *what)
{
    size_t len = 0;
    char *doc = plot_svg(h, title, &len);
    CHECK_MSG(doc != NULL, "%s: no document", what);
    if (!doc)
        return NULL;
    CHECK_EQ_INT(strlen(doc), len);
    const char *why = xml_check(doc, len);
    CHECK_MSG(why == NULL, "%s: not well-formed: %s", what, why);
    CHECK_MSG(strstr(doc, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL, "%s: no svg root", what);
    CHECK_MSG(!strstr(doc, "nan") && !strstr(doc, "NAN") && !strstr(doc, "inf") && !strstr(doc, "INF"),
              "%s: a non-finite number reached the document", what);
    return doc;
}

static void test_full(void)
{
    PlotHistory h;
    plot_history_init(&h);
    for (int e = 1; e <= 5; e++) {
        for (int s = 1; s <= 10; s++)
            CHECK(plot_history_add_step(&h, e - 1 + s / 10.0, 2.0 / (e + s / 10.0) + 0.05 * (s % 3)));
        PlotEpoch pe = {e, NAN, 1.0 / e, 0.5 + 0.08 * e, 0.45 + 0.07 * e};
        CHECK(plot_history_add_epoch(&h, &pe));
    }
    char *doc = render(&h, "mlp.onnx: fine-tuning", "full");
    if (doc) {
        CHECK_EQ_INT(count(doc, "<clipPath"), 2);
        CHECK_EQ_INT(count(doc, "<path"), 5);          /* raw, smoothed, val loss; train and val accuracy */
        CHECK_EQ_INT(count(doc, "r=\"3\""), 15);       /* markers: 5 val loss + 2 x 5 accuracies */
        CHECK(strstr(doc, ">train (per step)<") && strstr(doc, ">train (smoothed)<") && strstr(doc, ">validation<"));
        CHECK(strstr(doc, ">accuracy (%)<") && strstr(doc, ">epoch<"));
        CHECK(strstr(doc, ">mlp.onnx: fine-tuning<"));
        CHECK(!strstr(doc, "not measured"));
    }
    free(doc);

    /* the saved form round-trips; malformed blobs are refused */
    size_t len = 0;
    void *blob = plot_history_save(&h, &len);
    PlotHistory back;
    CHECK(blob && plot_history_load(&back, blob, len));
    CHECK_EQ_INT(back.nsteps, 50);
    CHECK_EQ_INT(back.nepochs, 5);
    CHECK(back.nsteps == 50 && memcmp(back.steps, h.steps, 50 * sizeof *h.steps) == 0);
    CHECK(back.nepochs == 5 && memcmp(back.epochs, h.epochs, 5 * sizeof *h.epochs) == 0);
    CHECK(plot_history_add_step(&back, 5.1, 0.1));      /* and keeps growing */
    CHECK_EQ_INT(back.nsteps, 51);
    plot_history_free(&back);
    PlotHistory junk;
    CHECK(!plot_history_load(&junk, blob, len - 1));
    CHECK(!plot_history_load(&junk, blob, 10));
    ((unsigned char *)blob)[0] ^= 1;
    CHECK(!plot_history_load(&junk, blob, len));
    free(blob);
    PlotHistory empty;
    plot_history_init(&empty);
    blob = plot_history_save(&empty, &len);
    CHECK(blob && len == 24 && plot_history_load(&junk, blob, len) && junk.nsteps == 0 && junk.nepochs == 0);
    plot_history_free(&junk);
    free(blob);
    plot_history_free(&h);
}

static void test_edge_cases(void)
{
    PlotHistory h;
    plot_history_init(&h);
    char *doc = render(&h, NULL, "empty");
    if (doc) {
        CHECK_EQ_INT(count(doc, "not measured yet"), 2);
        CHECK_EQ_INT(count(doc, "<path"), 0);
        CHECK(strstr(doc, "<title>training</title>"));
    }
    free(doc);

    /* one step and one epoch without validation: a dot for the step, nothing else to draw a line with */
    CHECK(plot_history_add_step(&h, 0.5, 1.25));
    PlotEpoch pe = {1, 1.25, NAN, NAN, NAN};
    CHECK(plot_history_add_epoch(&h, &pe));
    doc = render(&h, "one point", "one point");
    if (doc) {
        CHECK_EQ_INT(count(doc, "r=\"1.5\""), 1);
        CHECK_EQ_INT(count(doc, "<path"), 1);
        CHECK_EQ_INT(count(doc, "not measured yet"), 1);    /* accuracy */
    }
    free(doc);
    plot_history_free(&h);

    /* NaN and infinities: skipped, the line breaks there */
    double losses[] = {1, 0.9, NAN, 0.8, 0.7, INFINITY, 0.6, -INFINITY, 0.5, 1e300, 0.45};
    for (size_t i = 0; i < sizeof losses / sizeof *losses; i++)
        CHECK(plot_history_add_step(&h, 0.1 * (double)(i + 1), losses[i]));
    PlotEpoch e1 = {1, NAN, NAN, NAN, 0.5}, e2 = {2, NAN, 0.4, NAN, NAN}, e3 = {NAN, 0.3, 0.3, 0.7, 0.7};
    CHECK(plot_history_add_epoch(&h, &e1) && plot_history_add_epoch(&h, &e2) && plot_history_add_epoch(&h, &e3));
    doc = render(&h, "gaps & holes", "non-finite");
    if (doc) {
        const char *raw = strstr(doc, "<path");
        const char *end = raw ? strstr(raw, "/>") : NULL;
        size_t moves = 0;
        for (const char *p = raw; p && p < end; p++)
            moves += *p == 'M';
        CHECK_EQ_INT(moves, 5);    /* runs: [1 0.9] [0.8 0.7] [0.6] [0.5] [0.45] */
        CHECK(strstr(doc, ">gaps &amp; holes<"));
    }
    free(doc);
    plot_history_free(&h);

    /* a constant loss: a window around it, 1-2-5 ticks */
    for (int i = 1; i <= 20; i++)
        CHECK(plot_history_add_step(&h, i / 20.0, 0.5));
    doc = render(&h, "constant", "constant");
    if (doc)
        CHECK(strstr(doc, ">0.50</text>") && strstr(doc, ">0.44</text>") && strstr(doc, ">0.56</text>"));
    free(doc);
    plot_history_free(&h);
    for (int i = 1; i <= 3; i++)
        CHECK(plot_history_add_step(&h, i, 0.0));
    doc = render(&h, "zero", "zero");
    if (doc)
        CHECK(strstr(doc, ">-1.0</text>") && strstr(doc, ">0.0</text>") && strstr(doc, ">1.0</text>") &&
              !strstr(doc, ">-0.0<"));
    free(doc);
    plot_history_free(&h);

    /* a long run: the per-step curve is averaged down to at most 1000 points */
    for (int i = 1; i <= 100000; i++)
        if (!plot_history_add_step(&h, i / 1000.0, 1.0 / (1 + i / 1000.0)))
            break;
    size_t len = 0;
    doc = plot_svg(&h, "long", &len);
    CHECK(doc && xml_check(doc, len) == NULL);
    if (doc) {
        const char *raw = strstr(doc, "<path"), *end = raw ? strstr(raw, "/>") : NULL;
        size_t pts = 0;
        for (const char *p = raw; p && p < end; p++)
            pts += *p == 'L' || *p == 'M';
        CHECK_MSG(pts >= 900 && pts <= 1000, "%zu points", pts);
        CHECK_MSG(len < 200000, "%zu bytes", len);
    }
    free(doc);
    plot_history_free(&h);

    /* text is escaped; control bytes and invalid UTF-8 become '?' */
    doc = render(&h, "a<b & \"c\" 'd' \x01 \xff \xc3\xbc \xed\xa0\x80", "escaping");
    if (doc)
        CHECK(strstr(doc, "<title>a&lt;b &amp; &quot;c&quot; &apos;d&apos; ? ? \xc3\xbc ??" "?</title>"));
    free(doc);
}

static bool nice_step(double step)
{
    double mag = pow(10, floor(log10(step))), f = step / mag;
    return fabs(f - 1) < 1e-9 || fabs(f - 2) < 1e-9 || fabs(f - 5) < 1e-9 || fabs(f - 10) < 1e-9;
}

static void test_axis(void)
{
    PlotAxis a = plot_axis(0, 1, 5);
    CHECK_NEAR(a.lo, 0, 1e-12);
    CHECK_NEAR(a.hi, 1, 1e-12);
    CHECK_NEAR(a.step, 0.2, 1e-12);
    a = plot_axis(0, 7.3, 5);
    CHECK_NEAR(a.step, 2, 1e-12);
    CHECK_NEAR(a.hi, 8, 1e-12);
    a = plot_axis(0.93, 0.97, 5);
    CHECK_NEAR(a.step, 0.01, 1e-12);
    CHECK_NEAR(a.lo, 0.93, 1e-12);
    CHECK_NEAR(a.hi, 0.97, 1e-12);
    a = plot_axis(3, -3, 6);
    CHECK_NEAR(a.lo, -3, 1e-12);
    CHECK_NEAR(a.hi, 3, 1e-12);
    CHECK_NEAR(a.step, 1, 1e-12);
    a = plot_axis(5, 5, 5);
    CHECK(a.lo <= 4.5 && a.hi >= 5.5 && a.hi <= 6);
    CHECK_NEAR(a.step, 0.2, 1e-12);
    a = plot_axis(0, 0, 5);
    CHECK_NEAR(a.lo, -1, 1e-12);
    CHECK_NEAR(a.hi, 1, 1e-12);
    a = plot_axis(NAN, 1, 5);
    CHECK(a.lo == 0 && a.hi == 1 && a.step > 0);
    a = plot_axis(0, INFINITY, 5);
    CHECK(a.lo == 0 && a.hi == 1 && a.step > 0);
    /* random ranges: a 1-2-5 step, bounds on multiples of it that cover the data (to 1e-9 of a step: the
     * snapping forgives floating error), a sensible tick count */
    uint64_t s = 7;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double x = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * pow(10, (double)(int)(s % 13) - 6);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double y = x + (double)(s >> 11) / 9007199254740992.0 * pow(10, (double)(int)(s % 11) - 6);
        a = plot_axis(x, y, 5);
        double k0 = a.lo / a.step, k1 = a.hi / a.step, ticks = k1 - k0;
        if (!nice_step(a.step) || a.lo > x + 1e-9 * a.step || a.hi < y - 1e-9 * a.step || fabs(k0 - round(k0)) > 1e-9 * fmax(1, fabs(k0)) ||
            fabs(k1 - round(k1)) > 1e-9 * fmax(1, fabs(k1)) ||
            ticks < 2 - 1e-9 || ticks > 12 + 1e-9) {
            if (bad++ < 3)
                fprintf(stderr, "[%.17g, %.17g] -> lo %.17g hi %.17g step %.17g\n", x, y, a.lo, a.hi, a.step);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_write(void)
{
    char dir[256], path[300], err[512] = "";
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/onnxtune-plot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/run.svg", dir);
    PlotHistory h;
    plot_history_init(&h);
    for (int e = 1; e <= 3; e++) {
        CHECK(plot_history_add_step(&h, e - 0.5, 1.0 / e) && plot_history_add_step(&h, e, 0.9 / e));
        PlotEpoch pe = {e, NAN, 0.8 / e, NAN, 0.3 * e};
        CHECK(plot_history_add_epoch(&h, &pe));
        CHECK_EQ_INT(plot_write_svg(path, &h, "run", err, sizeof err), CKPT_OK);
        size_t len = 0;
        char *want = plot_svg(&h, "run", &len);
        FILE *f = fopen(path, "rb");
        char *got = malloc(len + 16);
        size_t n = f && got ? fread(got, 1, len + 16, f) : 0;
        if (f)
            fclose(f);
        CHECK_MSG(want && got && n == len && memcmp(got, want, len) == 0, "epoch %d: the file is not the document", e);
        free(got);
        free(want);
    }
    /* nothing but the plot in the directory */
    DIR *d = opendir(dir);
    int files = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        files += de->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK_EQ_INT(files, 1);
    char bad[400];
    snprintf(bad, sizeof bad, "%s/missing/run.svg", dir);
    CHECK_EQ_INT(plot_write_svg(bad, &h, "run", err, sizeof err), CKPT_EIO);
    CHECK_MSG(strstr(err, bad) && strstr(err, "cannot create"), "%s", err);
    plot_history_free(&h);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_checker();
    test_full();
    test_edge_cases();
    test_axis();
    test_write();
    return test_summary("test_plot");
}
