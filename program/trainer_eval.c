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

int tr_eval_option(Trainer *t, const char *name, const char *v)
{
    Options *o = &t->o;
#define IS(s) (strcmp(name, s) == 0)
    if (IS("--x") && tr_add_x(t, &o->xl, name, v))
        return 2;
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
        return 2;   /* not reached: names come from options.def */
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

/* {"split":S,"samples":N[,"loss":L][,"accuracy":A][,"top5":T][,"confusion":[[...]][,"classes":[...]]]}: r
 * NULL leaves out the scores (the confusion record at the end of training: the epoch's line has them).
 * common.h's JSON writer: a loss that is not finite is null. */
static void metrics_record(const Trainer *t, FILE *f, const char *split, size_t n, const EvalResult *r,
                           const size_t *conf, size_t k)
{
    Buf b = {0};
    buf_puts(&b, "{\"split\":");
    json_put_str(&b, split);
    buf_printf(&b, ",\"samples\":%zu", n);
    if (r) {
        buf_puts(&b, ",\"loss\":");
        json_put_g(&b, r->loss, 9);
    }
    if (r && !isnan(r->accuracy)) {
        buf_puts(&b, ",\"accuracy\":");
        json_put_g(&b, r->accuracy, 9);
    }
    if (r && !isnan(r->top5)) {
        buf_puts(&b, ",\"top5\":");
        json_put_g(&b, r->top5, 9);
    }
    if (conf) {
        buf_puts(&b, ",\"confusion\":[");
        for (size_t i = 0; i < k; i++) {
            buf_puts(&b, i ? ",[" : "[");
            for (size_t j = 0; j < k; j++)
                buf_printf(&b, "%s%zu", j ? "," : "", conf[i * k + j]);
            buf_puts(&b, "]");
        }
        buf_puts(&b, "]");
        if (t->class_names && t->nclasses == k) {
            buf_puts(&b, ",\"classes\":[");
            for (size_t i = 0; i < k; i++) {
                if (i)
                    buf_puts(&b, ",");
                json_put_str(&b, t->class_names[i]);
            }
            buf_puts(&b, "]");
        }
    }
    buf_puts(&b, "}\n");
    if (!b.oom)
        fwrite(b.p, 1, b.len, f);
    buf_free(&b);
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

/* ModelProto field 14 (metadata_props), a StringStringEntryProto {1: key, 2: value}: protobuf lets a
 * message's fields come in any order, so these follow the template's bytes. */
static void put_metadata_prop(Buf *b, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    size_t inner = 1 + pb_varint_len(kl) + kl + 1 + pb_varint_len(vl) + vl;
    buf_putn(b, "\x72", 1);
    buf_put_varint(b, inner);
    buf_putn(b, "\x0a", 1);
    buf_put_varint(b, kl);
    buf_putn(b, key, kl);
    buf_putn(b, "\x12", 1);
    buf_put_varint(b, vl);
    buf_putn(b, value, vl);
}

/* ---- the export's metadata ---- */

/* onnxtune.preprocess: what turns an image file into the model's input, as JSON (docs/training_data.md). */
static void preprocess_json(const Trainer *t, Buf *j)
{
    const ImageTransform *tf = &t->tf;
    char a[40];
    size_t c = tf->channels, h = tf->height, w = tf->width;
    buf_printf(j, "{\"layout\":\"NCHW\",\"color\":\"%s\",\"height\":%zu,\"width\":%zu,", c == 1 ? "L" : "RGB", h, w);
    if (tf->resize)
        buf_printf(j, "\"resize\":%zu,", tf->resize);
    else if (!tf->crop)
        buf_printf(j, "\"resize\":[%zu,%zu],", h, w);
    else
        buf_puts(j, "\"resize\":null,");
    if (tf->crop)
        buf_printf(j, "\"crop\":[%zu,%zu],", h, w);
    else
        buf_puts(j, "\"crop\":null,");
    buf_puts(j, "\"interpolation\":\"bilinear\",\"scale\":255,\"mean\":[");
    for (size_t k = 0; k < c; k++)
        buf_printf(j, "%s%s", k ? "," : "", fmt_shortest(a, sizeof a, tf->mean[k], true));
    buf_puts(j, "],\"std\":[");
    for (size_t k = 0; k < c; k++)
        buf_printf(j, "%s%s", k ? "," : "", fmt_shortest(a, sizeof a, tf->std[k], true));
    buf_puts(j, "],\"torchvision\":\"");
    if (c == 1)
        buf_puts(j, "Grayscale(), ");
    if (tf->resize)
        buf_printf(j, "Resize(%zu), ", tf->resize);
    else if (!tf->crop)
        buf_printf(j, "Resize((%zu, %zu)), ", h, w);
    if (tf->crop)
        buf_printf(j, "CenterCrop((%zu, %zu)), ", h, w);
    buf_puts(j, "ToTensor(), Normalize(mean=[");
    for (size_t k = 0; k < c; k++)
        buf_printf(j, "%s%s", k ? ", " : "", fmt_shortest(a, sizeof a, tf->mean[k], true));
    buf_puts(j, "], std=[");
    for (size_t k = 0; k < c; k++)
        buf_printf(j, "%s%s", k ? ", " : "", fmt_shortest(a, sizeof a, tf->std[k], true));
    buf_puts(j, "])\"}");
}

int tr_export_metadata(const Trainer *t, unsigned char **out, size_t *len)
{
    Buf b = {0}, j = {0};
    *out = NULL;
    *len = 0;
    if (t->class_names && t->nclasses) {
        buf_puts(&j, "[");
        for (size_t i = 0; i < t->nclasses; i++) {
            if (i)
                buf_puts(&j, ",");
            json_put_str(&j, t->class_names[i]);
        }
        buf_puts(&j, "]");
        put_metadata_prop(&b, "onnxtune.classes", j.oom ? "" : buf_str(&j));
    }
    if (t->images) {
        buf_clear(&j);
        preprocess_json(t, &j);
        put_metadata_prop(&b, "onnxtune.preprocess", j.oom ? "" : buf_str(&j));
    }
    bool oom = b.oom || j.oom;
    buf_free(&j);
    if (oom) {
        buf_free(&b);
        return tr_fail(t, "out of memory writing the export's metadata");
    }
    *out = (unsigned char *)b.p;
    *len = b.len;
    return 0;
}

/* ---- weights from an export of this program ---- */

/* A JSON list of strings (as json_put_str writes them), read with common.h's JSON reader. */
static bool parse_string_list(const char *s, size_t len, char ***out, size_t *n)
{
    JsonText list, e;
    *out = NULL;
    *n = 0;
    if (!json_parse(s, len, &list) || (list.n && list.p[0] != '['))
        return false;
    size_t count = json_array_length(list);
    if (count && !(*out = calloc(count, sizeof **out)))
        return false;
    for (size_t i = 0; i < count; i++) {
        Buf str = {0};
        if (!json_get_element(list, i, &e) || !json_get_string(e, &str)) {
            buf_free(&str);
            return false;
        }
        buf_putn(&str, "", 0);  /* allocates the empty string too */
        if (str.oom)
            return false;
        (*out)[(*n)++] = str.p;
    }
    return true;
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
        uint64_t flen = 0;
        bool ok = buf[k++] == 0x72 && pb_varint_get(buf, len, &k, &flen);
        if (!ok || flen > len - k) {
            rc = tr_fail(t, "--weights %s: malformed metadata after the model (byte %zu)", path, k);
            break;
        }
        size_t e = k, eend = k + (size_t)flen;
        const unsigned char *key = NULL, *val = NULL;
        size_t kl = 0, vl = 0;
        while (ok && e < eend) {
            unsigned char tag = buf[e++];
            uint64_t l = 0;
            ok = pb_varint_get(buf, eend, &e, &l);
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
    if (!rc)
        tr_lora_reset(p, params);   /* the export's weights are merged */
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

/* The numbers of member key of the JSON object doc, a number or a list of them (at most 3; 0: absent,
 * null or not numbers). */
static int json_numbers(JsonText doc, const char *key, double v[3])
{
    JsonText m, e;
    if (!json_get_member(doc, key, &m))
        return 0;
    if (json_get_number(m, &v[0]))
        return 1;
    size_t n = json_array_length(m);
    if (n == 0 || n > 3)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!json_get_element(m, i, &e) || !json_get_number(e, &v[i]))
            return 0;
    return (int)n;
}

/* eval/predict --dir with an export and no preprocessing options: those the training used, from the
 * export's onnxtune.preprocess (resize, crop, mean, std). */
static void preprocess_from_metadata(Trainer *t, const char *pre)
{
    Options *o = &t->o;
    JsonText doc, tv;
    if (!pre || o->resize || o->crop_h || o->nmean || o->nstd || !json_parse(pre, strlen(pre), &doc))
        return;
    double v[3];
    int n = json_numbers(doc, "resize", v);
    if (n == 1)
        o->resize = (int64_t)v[0];
    if (json_numbers(doc, "crop", v) == 2) {
        o->crop_h = (int64_t)v[0];
        o->crop_w = (int64_t)v[1];
    }
    if ((n = json_numbers(doc, "mean", o->mean)) == 1 || n == 3)
        o->nmean = n;
    if ((n = json_numbers(doc, "std", o->std)) == 1 || n == 3)
        o->nstd = n;
    Buf text = {0};
    if (!o->quiet && json_get_member(doc, "torchvision", &tv) && json_get_string(tv, &text))
        fprintf(stderr, "%s: preprocessing from the export's metadata: %s\n", t->prog, buf_str(&text));
    buf_free(&text);
}

/* The "params" section of a checkpoint trainer_run.c wrote for this program (the identity both files
 * take from ckpt_program_identity). */
static int load_checkpoint_weights(const Trainer *t, const char *path, unsigned char *params)
{
    const TrainProgram *p = t->p;
    char desc[512], err[2048];
    CkptIdentity id = ckpt_program_identity(p, desc, sizeof desc);
    tr_release_init(p);
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
    const char *src = o->dir ? o->dir : o->xl.n > 1 && d.ds ? d.ds->source : o->x;   /* several: the first */
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
