/* trainer_eval.c - measuring a model: validation (loss, accuracy, top-5, the confusion matrix), the
 * `PROG eval` and `PROG predict` commands (weights from an export of this program), and the class names and
 * preprocessing the export carries in its metadata_props. It does not train or write checkpoints
 * (trainer_run.c does). */
#define _POSIX_C_SOURCE 200809L
#include "program_priv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ---- */

const OptSpec tr_eval_specs[] = {
    {"--x", "X.npy", "eval/predict: inputs (or DATA.npz with x and y)"},
    {"--y", "Y.npy", "eval: targets"},
    {"--dir", "DIR", "eval/predict: an image folder instead (labels from its class folders)"},
    {"--weights", "M.onnx", "eval/predict: the weights of an ONNX file this program exported (--export); or "
                            "--checkpoint FILE: a checkpoint's"},
    {"--output", "P.npy", "predict: the logits, float32 [N, K], in the data's order"},
    {"--output-labels", "L.npy", "predict: the argmax class of each sample, int64 [N]"},
    {"--output-list", "FILE", "predict --dir: a line per sample, its image file and predicted class (tab apart)"},
    {"--confusion", NULL, "print the validation confusion matrix at the end (and write it to --metrics)"},
    {NULL, NULL, NULL},
};

int tr_eval_option(Trainer *t, const char *name, const char *v)
{
    Options *o = &t->o;
#define IS(s) (strcmp(name, s) == 0)
    if (IS("--x"))
        o->x = v;
    else if (IS("--y"))
        o->y = v;
    else if (IS("--dir"))
        o->dir = v;
    else if (IS("--weights"))
        o->weights = v;
    else if (IS("--output"))
        o->output = v;
    else if (IS("--output-labels"))
        o->output_labels = v;
    else if (IS("--output-list"))
        o->output_list = v;
    else if (IS("--confusion"))
        o->confusion = true;
    else
        return 2;   /* not reached: names come from tr_eval_specs */
    return 0;
#undef IS
}

/* ---- evaluation ---- */

static bool is_classifier(const TrainProgram *p)
{
    return p->loss == TRAIN_LOSS_CROSS_ENTROPY && p->logits.rank == 2;
}

/* One pass over d at the current weights. confusion: NULL or K*K counts; logits_out: NULL or [n, row]. */
static EvalResult pass(const Trainer *t, Buffers *b, Data *d, size_t batch, size_t *confusion, float *logits_out)
{
    const TrainProgram *p = t->p;
    bool ce = is_classifier(p);
    size_t k = ce ? (size_t)p->logits.dims[1] : 0, row = tr_tensor_row_bytes(&p->logits) / sizeof(float);
    double sum = 0;
    size_t correct = 0, top5 = 0, done = 0;
    EvalResult r = {NAN, NAN, NAN, false, 0};
    if (confusion)
        memset(confusion, 0, k * k * sizeof *confusion);
    if ((r.rc = tr_pass_begin(t, d, d->rows, d->n, batch, 0)))
        return r;
    while (done < d->n) {
        size_t rows;
        if ((r.rc = tr_next_batch(t, b, d, &rows)))
            return r;
        rt_set_batch_rows(rows);
        p->eval.run(b->in_eval, b->out_eval, b->ws_eval);
        sum += (double)b->loss * (double)rows;
        if (logits_out)
            memcpy(logits_out + done * row, b->logits, rows * row * sizeof(float));
        for (size_t i = 0; ce && i < rows; i++) {
            const float *z = b->logits + i * k;
            int64_t y = ((const int64_t *)b->y)[i];
            size_t best = 0, rank = 0;
            for (size_t c = 1; c < k; c++)
                if (z[c] > z[best])
                    best = c;
            /* the label's rank: classes scoring higher, ties broken by index as argmax does */
            for (size_t c = 0; c < k; c++)
                rank += z[c] > z[y] || (z[c] == z[y] && (int64_t)c < y);
            correct += (int64_t)best == y;
            top5 += rank < 5;
            if (confusion)
                confusion[(size_t)y * k + best]++;
        }
        done += rows;
    }
    r.loss = sum / (double)d->n;
    r.finite = isfinite(sum);
    if (ce) {
        r.accuracy = (double)correct / (double)d->n;
        if (k >= 5)
            r.top5 = (double)top5 / (double)d->n;
    }
    return r;
}

EvalResult tr_evaluate_confusion(const Trainer *t, Buffers *b, Data *d, size_t batch, size_t *confusion)
{
    return pass(t, b, d, batch, confusion, NULL);
}

EvalResult tr_evaluate(const Trainer *t, Buffers *b, Data *d, size_t batch)
{
    return pass(t, b, d, batch, NULL, NULL);
}

/* ---- printing ---- */

static const char *class_name(const Trainer *t, size_t c, char *buf, size_t size)
{
    if (t->class_names && c < t->nclasses)
        return t->class_names[c];
    snprintf(buf, size, "%zu", c);
    return buf;
}

/* Rows: the true class; columns: the predicted one. */
static void print_confusion(const Trainer *t, FILE *f, const size_t *conf, size_t k, const char *what)
{
    char nb[32], cell[32];
    int w = 1, lw = 4;
    for (size_t i = 0; i < k * k; i++) {
        int len = snprintf(cell, sizeof cell, "%zu", conf[i]);
        w = len > w ? len : w;
    }
    for (size_t c = 0; c < k; c++) {
        int len = (int)strlen(class_name(t, c, nb, sizeof nb));
        w = len > w && len <= 12 ? len : w;
        lw = len > lw ? len : lw;
    }
    fprintf(f, "confusion matrix of %s (rows: true class, columns: predicted):\n%*s", what, lw, "");
    for (size_t c = 0; c < k; c++)
        fprintf(f, " %*.*s", w, w, class_name(t, c, nb, sizeof nb));
    fputc('\n', f);
    for (size_t r = 0; r < k; r++) {
        fprintf(f, "%*s", lw, class_name(t, r, nb, sizeof nb));
        for (size_t c = 0; c < k; c++)
            fprintf(f, " %*zu", w, conf[r * k + c]);
        fputc('\n', f);
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* {"split":S,"samples":N[,"loss":L][,"accuracy":A][,"top5":T][,"confusion":[[...]][,"classes":[...]]]}: r
 * NULL leaves out the scores (the confusion record at the end of training: the epoch's line has them). */
static void metrics_record(const Trainer *t, FILE *f, const char *split, size_t n, const EvalResult *r,
                           const size_t *conf, size_t k)
{
    fprintf(f, "{\"split\":\"%s\",\"samples\":%zu", split, n);
    if (r)
        fprintf(f, ",\"loss\":%.9g", r->loss);
    if (r && !isnan(r->accuracy))
        fprintf(f, ",\"accuracy\":%.9g", r->accuracy);
    if (r && !isnan(r->top5))
        fprintf(f, ",\"top5\":%.9g", r->top5);
    if (conf) {
        fprintf(f, ",\"confusion\":[");
        for (size_t i = 0; i < k; i++) {
            fprintf(f, "%s[", i ? "," : "");
            for (size_t j = 0; j < k; j++)
                fprintf(f, "%s%zu", j ? "," : "", conf[i * k + j]);
            fputc(']', f);
        }
        fputc(']', f);
        if (t->class_names && t->nclasses == k) {
            fprintf(f, ",\"classes\":[");
            for (size_t i = 0; i < k; i++) {
                if (i)
                    fputc(',', f);
                json_string(f, t->class_names[i]);
            }
            fputc(']', f);
        }
    }
    fprintf(f, "}\n");
}

int tr_confusion_report(const Trainer *t, Buffers *b, Data *val)
{
    const TrainProgram *p = t->p;
    if (!is_classifier(p)) {
        fprintf(stderr, "%s: --confusion needs a classifier (cross_entropy); this program's loss is %s\n", t->prog,
                tr_loss_name(p->loss));
        return 1;
    }
    size_t k = (size_t)p->logits.dims[1];
    size_t *conf = calloc(k * k, sizeof *conf);
    if (!conf)
        return tr_fail(t, "out of memory");
    EvalResult r = tr_evaluate_confusion(t, b, val, (size_t)t->o.batch, conf);
    int rc = r.rc;
    if (!rc && !t->o.quiet) {
        char what[64];
        snprintf(what, sizeof what, "the %zu validation samples", val->n);
        print_confusion(t, stdout, conf, k, what);
        fflush(stdout);
    }
    if (!rc && t->o.metrics) {
        FILE *f = fopen(t->o.metrics, "a");
        if (!f)
            rc = tr_fail(t, "--metrics %s: cannot append: %s", t->o.metrics, strerror(errno));
        else {
            metrics_record(t, f, "val", val->n, NULL, conf, k);
            if (fclose(f) != 0)
                rc = tr_fail(t, "--metrics %s: write failed", t->o.metrics);
        }
    }
    free(conf);
    return rc;
}

/* ---- growing byte buffers ---- */

typedef struct Buf {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} Buf;

static void put(Buf *b, const void *data, size_t len)
{
    if (b->oom)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = 0;     /* text stays terminated */
}

static void puts_(Buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(Buf *b, const char *fmt, ...) TRAINER_PRINTF(2, 3);
static void putf(Buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof tmp)
        b->oom = true;
    else
        put(b, tmp, (size_t)len);
}

static void put_json_string(Buf *b, const char *s)
{
    puts_(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            putf(b, "\\%c", ch);
        else if (ch < 0x20)
            putf(b, "\\u%04x", ch);
        else
            put(b, s, 1);
    }
    puts_(b, "\"");
}

static void put_varint(Buf *b, uint64_t v)
{
    unsigned char c[10];
    size_t n = 0;
    do {
        c[n++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, c, n);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7F) {
        v >>= 7;
        n++;
    }
    return n;
}

/* ModelProto field 14 (metadata_props), a StringStringEntryProto {1: key, 2: value}: protobuf lets a
 * message's fields come in any order, so these follow the template's bytes. */
static void put_metadata_prop(Buf *b, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    size_t inner = 1 + varint_len(kl) + kl + 1 + varint_len(vl) + vl;
    put(b, "\x72", 1);
    put_varint(b, inner);
    put(b, "\x0a", 1);
    put_varint(b, kl);
    put(b, key, kl);
    put(b, "\x12", 1);
    put_varint(b, vl);
    put(b, value, vl);
}

/* ---- the export's metadata ---- */

/* onnxtune.preprocess: what turns an image file into the model's input, as JSON (docs/training_data.md). */
static void preprocess_json(const Trainer *t, Buf *j)
{
    const ImageTransform *tf = &t->tf;
    char a[40];
    size_t c = tf->channels, h = tf->height, w = tf->width;
    putf(j, "{\"layout\":\"NCHW\",\"color\":\"%s\",\"height\":%zu,\"width\":%zu,", c == 1 ? "L" : "RGB", h, w);
    if (tf->resize)
        putf(j, "\"resize\":%zu,", tf->resize);
    else if (!tf->crop)
        putf(j, "\"resize\":[%zu,%zu],", h, w);
    else
        puts_(j, "\"resize\":null,");
    if (tf->crop)
        putf(j, "\"crop\":[%zu,%zu],", h, w);
    else
        puts_(j, "\"crop\":null,");
    puts_(j, "\"interpolation\":\"bilinear\",\"scale\":255,\"mean\":[");
    for (size_t k = 0; k < c; k++)
        putf(j, "%s%s", k ? "," : "", tr_shortest(a, sizeof a, tf->mean[k], true));
    puts_(j, "],\"std\":[");
    for (size_t k = 0; k < c; k++)
        putf(j, "%s%s", k ? "," : "", tr_shortest(a, sizeof a, tf->std[k], true));
    puts_(j, "],\"torchvision\":\"");
    if (c == 1)
        puts_(j, "Grayscale(), ");
    if (tf->resize)
        putf(j, "Resize(%zu), ", tf->resize);
    else if (!tf->crop)
        putf(j, "Resize((%zu, %zu)), ", h, w);
    if (tf->crop)
        putf(j, "CenterCrop((%zu, %zu)), ", h, w);
    puts_(j, "ToTensor(), Normalize(mean=[");
    for (size_t k = 0; k < c; k++)
        putf(j, "%s%s", k ? ", " : "", tr_shortest(a, sizeof a, tf->mean[k], true));
    puts_(j, "], std=[");
    for (size_t k = 0; k < c; k++)
        putf(j, "%s%s", k ? ", " : "", tr_shortest(a, sizeof a, tf->std[k], true));
    puts_(j, "])\"}");
}

int tr_export_metadata(const Trainer *t, unsigned char **out, size_t *len)
{
    Buf b = {0}, j = {0};
    *out = NULL;
    *len = 0;
    if (t->class_names && t->nclasses) {
        puts_(&j, "[");
        for (size_t i = 0; i < t->nclasses; i++) {
            if (i)
                puts_(&j, ",");
            put_json_string(&j, t->class_names[i]);
        }
        puts_(&j, "]");
        put_metadata_prop(&b, "onnxtune.classes", j.oom ? "" : (const char *)j.p);
    }
    if (t->images) {
        j.n = 0;
        preprocess_json(t, &j);
        put_metadata_prop(&b, "onnxtune.preprocess", j.oom ? "" : (const char *)j.p);
    }
    bool oom = b.oom || j.oom;
    free(j.p);
    if (oom) {
        free(b.p);
        return tr_fail(t, "out of memory writing the export's metadata");
    }
    *out = b.p;
    *len = b.n;
    return 0;
}

/* ---- weights from an export of this program ---- */

static uint64_t get_varint(const unsigned char *p, size_t len, size_t *at, bool *ok)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*at >= len) {
            *ok = false;
            return 0;
        }
        unsigned char c = p[(*at)++];
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80))
            return v;
    }
    *ok = false;
    return 0;
}

/* A JSON list of strings (as put_json_string writes them, \uXXXX of the BMP read back as UTF-8). */
static bool parse_string_list(const char *s, size_t len, char ***out, size_t *n)
{
    const char *end = s + len;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    while (s < end && (*s == ' ' || *s == '\n'))
        s++;
    if (s >= end || *s++ != '[')
        return false;
    for (;;) {
        while (s < end && *s == ' ')
            s++;
        if (s < end && *s == ']' && *n == 0)
            return true;
        if (s >= end || *s++ != '"')
            return false;
        Buf str = {0};
        while (s < end && *s != '"') {
            char ch = *s++;
            if (ch != '\\') {
                put(&str, &ch, 1);
                continue;
            }
            if (s >= end)
                break;
            ch = *s++;
            const char *simple = strchr("\"\\/bfnrt", ch);
            if (simple && ch) {
                static const char repl[] = "\"\\/\b\f\n\r\t";
                put(&str, &repl[simple - "\"\\/bfnrt"], 1);
            } else if (ch == 'u' && end - s >= 4) {
                unsigned v = 0;
                for (int k = 0; k < 4; k++, s++) {
                    char hc = *s;
                    v = v * 16 + (unsigned)(hc >= '0' && hc <= '9' ? hc - '0' : hc >= 'a' && hc <= 'f' ? hc - 'a' + 10
                                            : hc >= 'A' && hc <= 'F' ? hc - 'A' + 10 : 0);
                }
                unsigned char u[3];
                size_t ul = v < 0x80 ? 1 : v < 0x800 ? 2 : 3;
                if (ul == 1)
                    u[0] = (unsigned char)v;
                else if (ul == 2) {
                    u[0] = (unsigned char)(0xC0 | v >> 6);
                    u[1] = (unsigned char)(0x80 | (v & 0x3F));
                } else {
                    u[0] = (unsigned char)(0xE0 | v >> 12);
                    u[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
                    u[2] = (unsigned char)(0x80 | (v & 0x3F));
                }
                put(&str, u, ul);
            } else {
                str.oom = true;
            }
        }
        put(&str, "", 0);   /* allocates the empty string too */
        if (s >= end || str.oom) {
            free(str.p);
            return false;
        }
        if (*n == cap) {
            char **q = realloc(*out, (cap = cap ? 2 * cap : 8) * sizeof *q);
            if (!q) {
                free(str.p);
                return false;
            }
            *out = q;
        }
        (*out)[(*n)++] = (char *)str.p;
        s++;    /* the closing quote */
        while (s < end && *s == ' ')
            s++;
        if (s < end && *s == ',') {
            s++;
            continue;
        }
        return s < end && *s == ']';
    }
}

static int compare_params(const void *a, const void *b)
{
    const TrainParam *x = *(const TrainParam *const *)a, *y = *(const TrainParam *const *)b;
    return x->export_offset < y->export_offset ? -1 : x->export_offset > y->export_offset;
}

/* An export of this program, buf[len] (path names it in messages): the template's bytes outside the
 * weights must match (so it is this program's model), what follows the template may only be
 * metadata_props; the weights are read at the template's offsets. Class names from onnxtune.classes go
 * to names/nnames, onnxtune.preprocess to preprocess (the caller frees both, also after a failure). */
int tr_parse_export_weights(const Trainer *t, const char *path, const unsigned char *buf, size_t len,
                            unsigned char *params, char ***names, size_t *nnames, char **preprocess)
{
    const TrainProgram *p = t->p;
    int rc = 0;
    const TrainParam **ps = calloc((size_t)p->nparams + 1, sizeof *ps);
    size_t np = 0;
    if (!ps)
        rc = tr_fail(t, "out of memory");
    else if (len < p->export_bytes)
        rc = tr_fail(t, "--weights %s is not an export of this program: %zu bytes, shorter than its model (%zu)", path,
                     len, p->export_bytes);
    for (int i = 0; !rc && i < p->nparams; i++)
        if (p->params[i].export_offset >= 0 && p->params[i].kind != TRAIN_PARAM_STATE)
            ps[np++] = &p->params[i];
    if (!rc)
        qsort(ps, np, sizeof *ps, compare_params);
    size_t at = 0;
    for (size_t i = 0; !rc && i <= np; i++) {
        size_t to = i < np ? (size_t)ps[i]->export_offset : p->export_bytes;
        for (size_t k = at; k < to && !rc; k++)
            if (buf[k] != p->export_template[k])
                rc = tr_fail(t, "--weights %s is not an export of this program (%s): it differs from the program's "
                             "model at byte %zu, outside the weights; give the ONNX file this program's --export wrote",
                             path, p->model ? p->model : "?", k);
        if (i < np)
            at = to + ps[i]->nbytes;
    }
    /* the tail: metadata_props entries only */
    for (size_t k = p->export_bytes; !rc && k < len;) {
        bool ok = buf[k++] == 0x72;
        uint64_t flen = ok ? get_varint(buf, len, &k, &ok) : 0;
        if (!ok || flen > len - k) {
            rc = tr_fail(t, "--weights %s: malformed metadata after the model (byte %zu)", path, k);
            break;
        }
        size_t e = k, eend = k + (size_t)flen;
        const unsigned char *key = NULL, *val = NULL;
        size_t kl = 0, vl = 0;
        while (ok && e < eend) {
            unsigned char tag = buf[e++];
            uint64_t l = get_varint(buf, eend, &e, &ok);
            if (!ok || (tag != 0x0a && tag != 0x12) || l > eend - e) {
                ok = false;
                break;
            }
            if (tag == 0x0a) {
                key = buf + e;
                kl = (size_t)l;
            } else {
                val = buf + e;
                vl = (size_t)l;
            }
            e += (size_t)l;
        }
        if (!ok) {
            rc = tr_fail(t, "--weights %s: malformed metadata entry at byte %zu", path, k);
            break;
        }
        /* the first onnxtune.classes counts (as the first onnxtune.preprocess): a second list would replace,
         * and leak, the first */
        if (key && val && kl == strlen("onnxtune.classes") && memcmp(key, "onnxtune.classes", kl) == 0 && !*names &&
            !parse_string_list((const char *)val, vl, names, nnames))
            rc = tr_fail(t, "--weights %s: onnxtune.classes is not a JSON list of strings", path);
        if (key && val && kl == strlen("onnxtune.preprocess") && memcmp(key, "onnxtune.preprocess", kl) == 0 &&
            !*preprocess && !(*preprocess = strndup((const char *)val, vl)))
            rc = tr_fail(t, "out of memory");
        k = eend;
    }
    for (size_t i = 0; !rc && i < np; i++)
        memcpy(params + ps[i]->offset, buf + ps[i]->export_offset, ps[i]->nbytes);
    free(ps);
    return rc;
}

/* The file the program's --export wrote, read whole and checked by tr_parse_export_weights. */
static int load_export_weights(Trainer *t, const char *path, unsigned char *params, char ***names, size_t *nnames,
                               char **preprocess)
{
    const TrainProgram *p = t->p;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tr_fail(t, "--weights %s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            unsigned char *q = realloc(buf, cap = cap ? 2 * cap : p->export_bytes + 4096);
            if (!q) {
                free(buf);
                fclose(f);
                return tr_fail(t, "--weights %s: out of memory", path);
            }
            buf = q;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool read_error = ferror(f);
    fclose(f);
    int rc = read_error ? tr_fail(t, "--weights %s: read failed", path)
                        : tr_parse_export_weights(t, path, buf, len, params, names, nnames, preprocess);
    free(buf);
    return rc;
}

/* The numbers of "key":[a,b,c] or "key":a in the JSON text s (at most 3; 0: absent or null). */
static int json_numbers(const char *s, const char *key, double v[3])
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(s, pat);
    if (!at)
        return 0;
    at += strlen(pat);
    bool list = *at == '[';
    at += list;
    int n = 0;
    while (n < 3) {
        char *end;
        double x = strtod(at, &end);
        if (end == at)
            break;
        v[n++] = x;
        at = end;
        if (!list || *at != ',')
            break;
        at++;
    }
    return n;
}

/* eval/predict --dir with an export and no preprocessing options: those the training used, from the
 * export's onnxtune.preprocess (resize, crop, mean, std). */
static void preprocess_from_metadata(Trainer *t, const char *pre)
{
    Options *o = &t->o;
    if (!pre || o->resize || o->crop_h || o->nmean || o->nstd)
        return;
    double v[3];
    int n = json_numbers(pre, "resize", v);
    if (n == 1)
        o->resize = (int64_t)v[0];
    if (json_numbers(pre, "crop", v) == 2) {
        o->crop_h = (int64_t)v[0];
        o->crop_w = (int64_t)v[1];
    }
    if ((n = json_numbers(pre, "mean", o->mean)) == 1 || n == 3)
        o->nmean = n;
    if ((n = json_numbers(pre, "std", o->std)) == 1 || n == 3)
        o->nstd = n;
    if (!o->quiet) {
        const char *tv = strstr(pre, "\"torchvision\":\"");
        const char *end = tv ? strchr(tv + 15, '"') : NULL;
        if (tv && end)
            fprintf(stderr, "%s: preprocessing from the export's metadata: %.*s\n", t->prog, (int)(end - tv - 15), tv + 15);
    }
}

/* The "params" section of a checkpoint trainer_run.c wrote for this program (its identity as that
 * file's make_identity forms it: the program's fingerprint and compiled batch). */
static int load_checkpoint_weights(const Trainer *t, const char *path, unsigned char *params)
{
    const TrainProgram *p = t->p;
    int64_t batch = p->batch;
    char desc[512], err[2048];
    snprintf(desc, sizeof desc, "%s compiled with '%s' for batch %lld", p->model ? p->model : "a model",
             p->compiled_with ? p->compiled_with : "", (long long)batch);
    CkptIdentity id = {ckpt_hash64(ckpt_program_fingerprint(p), &batch, sizeof batch), desc};
    Checkpoint c;
    if (ckpt_read(path, &id, &c, err, sizeof err) != CKPT_OK)
        return tr_fail(t, "--checkpoint %s", err);
    int rc = 0;
    if (ckpt_get(&c, "params", params, p->params_bytes, err, sizeof err) != CKPT_OK)
        rc = tr_fail(t, "--checkpoint %s", err);
    ckpt_free(&c);
    return rc;
}

/* predict --output-list: "FILE<TAB>CLASS" per sample of an image folder, in the predictions' order. */
static int write_list(const Trainer *t, const char *path, const Data *d, const int64_t *labels)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return tr_fail(t, "--output-list %s: cannot write: %s", path, strerror(errno));
    char nb[32];
    for (size_t i = 0; i < d->n; i++)
        fprintf(f, "%s\t%s\n", dataset_path(d->ds, d->rows[i]), class_name(t, (size_t)labels[i], nb, sizeof nb));
    if (fclose(f) != 0)
        return tr_fail(t, "--output-list %s: write failed", path);
    return 0;
}

/* ---- PROG eval / PROG predict ---- */

int tr_eval_main(Trainer *t, int mode, Buffers *b)
{
    const TrainProgram *p = t->p;
    Options *o = &t->o;
    const char *cmd = mode == 1 ? "eval" : "predict";
    if (mode == 2 && !o->output && !o->output_labels && !o->output_list) {
        fprintf(stderr, "%s predict: say where the predictions go: --output P.npy, --output-labels L.npy and/or "
                "--output-list FILE\n", t->prog);
        return 2;
    }
    if (mode == 1 && (o->output || o->output_labels || o->output_list)) {
        fprintf(stderr, "%s eval: --output, --output-labels and --output-list belong to %s predict\n", t->prog,
                t->prog);
        return 2;
    }
    if ((o->output_labels || o->output_list) && !is_classifier(p)) {
        fprintf(stderr, "%s predict: --output-labels and --output-list need a classifier (cross_entropy), this "
                "program's loss is %s\n", t->prog, tr_loss_name(p->loss));
        return 2;
    }
    if (o->output_list && !o->dir) {
        fprintf(stderr, "%s predict: --output-list names image files: it goes with --dir\n", t->prog);
        return 2;
    }
    char **names = NULL, *preprocess = NULL;
    size_t nnames = 0;
    int rc = 0;
    if (o->weights && o->checkpoint) {
        fprintf(stderr, "%s %s: give --weights or --checkpoint, not both\n", t->prog, cmd);
        return 2;
    }
    if (o->checkpoint) {
        rc = load_checkpoint_weights(t, o->checkpoint, b->params);
    } else if (o->weights) {
        rc = load_export_weights(t, o->weights, b->params, &names, &nnames, &preprocess);
        if (!rc && names) {
            t->class_names = (const char *const *)names;
            t->nclasses = nnames;
        }
        if (!rc && o->dir)
            preprocess_from_metadata(t, preprocess);
    } else if (!o->quiet) {
        fprintf(stderr, "%s %s: no --weights or --checkpoint: evaluating the compiled weights%s\n", t->prog, cmd,
                o->ninits ? " with --init" : "");
    }
    Data d = {0};
    float *logits = NULL;
    size_t *conf = NULL, k = is_classifier(p) ? (size_t)p->logits.dims[1] : 0;
    size_t row = tr_tensor_row_bytes(&p->logits) / sizeof(float);
    if (!rc)
        rc = tr_data_open_eval(t, &d, mode == 1);
    if (!rc && mode == 2 && !(logits = malloc(d.n * row * sizeof *logits + 1)))
        rc = tr_fail(t, "out of memory (%zu predictions)", d.n);
    if (!rc && mode == 1 && o->confusion && k && !(conf = calloc(k * k, sizeof *conf)))
        rc = tr_fail(t, "out of memory");
    EvalResult r = {NAN, NAN, NAN, false, 0};
    if (!rc) {
        r = pass(t, b, &d, (size_t)o->batch, conf, logits);
        rc = r.rc;
    }
    const char *src = o->dir ? o->dir : o->x;
    if (!rc && mode == 1) {
        printf("%s eval: %zu samples of %s: loss %.6f", t->prog, d.n, src, r.loss);
        if (!isnan(r.accuracy))
            printf(" accuracy %.4f", r.accuracy);
        if (!isnan(r.top5))
            printf(" top5 %.4f", r.top5);
        printf("\n");
        if (conf)
            print_confusion(t, stdout, conf, k, src);
        if (o->metrics) {
            FILE *f = fopen(o->metrics, "w");
            if (!f)
                rc = tr_fail(t, "--metrics %s: cannot write: %s", o->metrics, strerror(errno));
            else {
                metrics_record(t, f, "eval", d.n, &r, conf, k);
                if (fclose(f) != 0)
                    rc = tr_fail(t, "--metrics %s: write failed", o->metrics);
            }
        }
    }
    if (!rc && mode == 2) {
        char err[1024];
        size_t dims[RT_MAX_RANK];
        dims[0] = d.n;
        for (int i = 1; i < p->logits.rank; i++)
            dims[i] = (size_t)p->logits.dims[i];
        if (o->output && npy_write(o->output, RT_FLOAT, p->logits.rank, dims, logits, err, sizeof err) != NPY_OK)
            rc = tr_fail(t, "--output: %s", err);
        int64_t *lab = !rc && k ? malloc(d.n * sizeof *lab + 1) : NULL;
        if (!rc && k && !lab)
            rc = tr_fail(t, "out of memory");
        for (size_t i = 0; lab && i < d.n; i++) {
            const float *z = logits + i * k;
            size_t best = 0;
            for (size_t c = 1; c < k; c++)
                if (z[c] > z[best])
                    best = c;
            lab[i] = (int64_t)best;
        }
        if (!rc && o->output_labels && npy_write(o->output_labels, RT_INT64, 1, &d.n, lab, err, sizeof err) != NPY_OK)
            rc = tr_fail(t, "--output-labels: %s", err);
        if (!rc && o->output_list)
            rc = write_list(t, o->output_list, &d, lab);
        free(lab);
        if (!rc && !o->quiet)
            printf("%s predict: %zu samples of %s -> %s%s%s%s%s\n", t->prog, d.n, src, o->output ? o->output : "",
                   o->output && o->output_labels ? ", " : "", o->output_labels ? o->output_labels : "",
                   (o->output || o->output_labels) && o->output_list ? ", " : "", o->output_list ? o->output_list : "");
    }
    if (!rc)
        tr_data_report(t, &d, &(Data){0});
    tr_data_free(&d);
    free(logits);
    free(conf);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(preprocess);
    t->class_names = NULL;
    t->nclasses = 0;
    return rc;
}
