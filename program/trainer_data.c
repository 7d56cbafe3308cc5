/* trainer_data.c - where a training program's samples come from: NPY pairs, .npz archives and image folders
 * opened through dataset.c (memory-mapped when large or with --mmap), checked against the model, split
 * for validation, and loaded a batch ahead on another thread; the image options (--resize, --crop,
 * --mean, --std, --augment) and their defaults from the model's input shape. It does not train, evaluate
 * or decode images itself (dataset.c and image.c do). */
#define _POSIX_C_SOURCE 200809L
#include "program_priv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- options ---- */

/* "a,b,c" of 1 or 3 numbers into v[]; the count, or 0 when malformed. */
static int parse_list3(const char *s, double v[3])
{
    int n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return 0;
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == 3 || !tr_parse_f64(tok, &v[n]))
            return 0;
        n++;
    }
    return n == 1 || n == 3 ? n : 0;
}

int tr_data_option(Trainer *t, const char *name, const char *v)
{
    Options *o = &t->o;
    int64_t i;
#define IS(s) (strcmp(name, s) == 0)
#define BAD_VALUE(what) (fprintf(stderr, "%s: %s wants %s, not '%s'\n", t->prog, name, what, v), 2)
    if (IS("--train-dir"))
        o->train_dir = v;
    else if (IS("--val-dir"))
        o->val_dir = v;
    else if (IS("--classes"))
        o->classes = v;
    else if (IS("--mmap"))
        o->mmap = true;
    else if (IS("--no-prefetch"))
        o->no_prefetch = true;
    else if (IS("--no-cache"))
        o->no_cache = true;
    else if (IS("--resize")) {
        if (!tr_parse_i64(v, 1, 65535, &i))
            return BAD_VALUE("a size in pixels from 1 to 65535");
        o->resize = i;
    } else if (IS("--crop")) {
        char *end;
        errno = 0;
        long long h = strtoll(v, &end, 10), w = h;
        if (*end == 'x' || *end == 'X')
            w = strtoll(end + 1, &end, 10);
        if (*end || errno || h < 1 || w < 1 || h > 65535 || w > 65535)
            return BAD_VALUE("a crop size S or HxW");
        o->crop_h = h;
        o->crop_w = w;
    } else if (IS("--mean") || IS("--std")) {
        double vals[3];
        int n = parse_list3(v, vals);
        if (!n)
            return BAD_VALUE("1 or 3 comma-separated numbers");
        for (int k = 0; k < n; k++)
            if (IS("--std") && !(vals[k] > 0))
                return BAD_VALUE("standard deviations > 0");
        memcpy(IS("--mean") ? o->mean : o->std, vals, sizeof vals);
        *(IS("--mean") ? &o->nmean : &o->nstd) = n;
    } else if (IS("--augment")) {
        bool flip = false, crop = false;
        char buf[256];
        if (strlen(v) >= sizeof buf)
            return BAD_VALUE("flip, crop, flip,crop or none");
        strcpy(buf, v);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (strcmp(tok, "flip") == 0)
                flip = true;
            else if (strcmp(tok, "crop") == 0)
                crop = true;
            else if (strcmp(tok, "none") != 0)
                return BAD_VALUE("flip, crop, flip,crop or none");
        }
        o->augment_flip = flip;
        o->augment_crop = crop;
    } else {
        return 2;   /* not reached: names come from options.def */
    }
    return 0;
#undef IS
#undef BAD_VALUE
}

/* ---- opening ---- */

static void warn_line(void *ctx, const char *message)
{
    const Trainer *t = ctx;
    if (!t->o.quiet)
        fprintf(stderr, "%s: warning: %s\n", t->prog, message);
}

/* An .npz (a ZIP archive) by its first bytes, as dataset.c decides. */
static bool is_npz(const char *path)
{
    unsigned char m[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t got = fread(m, 1, 4, f);
    fclose(f);
    return got == 4 && m[0] == 'P' && m[1] == 'K' && (m[2] == 3 || m[2] == 5) && m[3] == m[2] + 1;
}

static void dataset_defaults(const Trainer *t, DatasetOptions *dopt)
{
    dataset_options_default(dopt);
    if (t->o.mmap)
        dopt->mmap_threshold = 0;
    if (t->o.threads > 0)
        dopt->threads = (int)t->o.threads;
    dopt->warn = warn_line;
    dopt->warn_ctx = (void *)t;
}

/* The transform of the model's input [N, C, H, W] float32 (C 1 or 3) from the options: with neither
 * --resize nor --crop each image is resized to exactly H x W; --resize R resizes the shorter side to R
 * and centre-crops H x W (--augment crop: a random H x W instead); --crop alone centre-crops H x W.
 * Grey models get grey images (PIL's convert("L")), RGB models RGB. augment false: validation's. */
static int image_transform_for(const Trainer *t, const char *flag, bool augment, ImageTransform *tf)
{
    const TrainProgram *p = t->whole;
    const Options *o = &t->o;
    const TrainTensor *x = &p->x;
    char shape[160];
    if (x->dtype != RT_FLOAT || x->rank != 4 || (x->dims[1] != 1 && x->dims[1] != 3))
        return tr_fail(t, "%s: image folders need a model whose input is float32 [N,C,H,W] with C 1 (grey) or 3 "
                       "(RGB); this one is %s %s", flag, rt_dtype_name((RtDType)x->dtype),
                       tr_shape_text(shape, sizeof shape, x->rank, NULL, x->dims));
    if (p->loss != TRAIN_LOSS_CROSS_ENTROPY || p->target.dtype != RT_INT64 || p->target.rank != 1)
        return tr_fail(t, "%s: image folders give class indices, but this program's loss is %s (image folders "
                       "need cross_entropy)", flag, tr_loss_name(p->loss));
    size_t c = (size_t)x->dims[1], h = (size_t)x->dims[2], w = (size_t)x->dims[3];
    image_transform_default(tf, c, h, w);
    if (o->crop_h && ((size_t)o->crop_h != h || (size_t)o->crop_w != w)) {
        fprintf(stderr, "%s: --crop %lldx%lld: the model's input is %zux%zu, so the crop must be that size (use "
                "--resize to scale the images first)\n", t->prog, (long long)o->crop_h, (long long)o->crop_w, h, w);
        return 2;
    }
    tf->resize = (size_t)o->resize;
    tf->crop = o->crop_h > 0 || o->resize > 0;
    tf->augment_crop = augment && o->augment_crop;
    tf->augment_flip = augment && o->augment_flip;
    if ((o->nmean && o->nmean != (int)c && o->nmean != 1) || (o->nstd && o->nstd != (int)c && o->nstd != 1)) {
        if (c == 1)
            fprintf(stderr, "%s: --mean and --std want 1 value (the model's input is grey)\n", t->prog);
        else
            fprintf(stderr, "%s: --mean and --std want 1 or %zu values (the model's channels)\n", t->prog, c);
        return 2;
    }
    for (size_t k = 0; k < c; k++) {
        if (o->nmean)
            tf->mean[k] = (float)o->mean[o->nmean == 1 ? 0 : k];
        if (o->nstd)
            tf->std[k] = (float)o->std[o->nstd == 1 ? 0 : k];
    }
    tf->seed = (uint64_t)o->seed;
    return 0;
}

/* The split's x or y as an NpyArray header (no data) for tr_check_array's messages. */
static NpyArray header_of(const DatasetSample *s, size_t n)
{
    NpyArray a;
    memset(&a, 0, sizeof a);
    a.dtype = s->dtype;
    a.rank = s->rank + 1;
    a.dims[0] = n;
    for (int i = 0; i < s->rank && i + 1 < RT_MAX_RANK; i++)
        a.dims[i + 1] = s->dims[i];
    return a;
}

static int all_rows(const Trainer *t, Data *d)
{
    d->rows = malloc((d->n ? d->n : 1) * sizeof *d->rows);
    if (!d->rows)
        return tr_fail(t, "out of memory");
    d->owns_rows = true;
    for (size_t i = 0; i < d->n; i++)
        d->rows[i] = i;
    return 0;
}

static int new_dataset(const Trainer *t, Data *d)
{
    d->ds = calloc(1, sizeof *d->ds);
    if (!d->ds)
        return tr_fail(t, "out of memory");
    d->owns_ds = true;
    return 0;
}

/* X (and Y, or an .npz holding both) into d, checked against the model as trainer.c always did. ypath
 * NULL: xpath is an .npz. need_y false (predict): X alone (an .npy) is enough. */
static int open_arrays(const Trainer *t, const char *xflag, const char *xpath, const char *yflag, const char *ypath,
                       bool need_y, Data *d)
{
    const TrainProgram *p = t->whole;
    char err[1024];
    if (!ypath && !need_y && !is_npz(xpath)) {    /* predict --x X.npy: no targets */
        NpyStatus st = t->o.mmap ? npy_map(xpath, &d->x_only, err, sizeof err) : npy_read(xpath, &d->x_only, err, sizeof err);
        if (st != NPY_OK)
            return tr_fail(t, "%s: %s", xflag, err);
        int rc = tr_check_array(t, xflag, xpath, &d->x_only, &p->x, "the model's input");
        if (rc)
            return rc;
        d->owns_ds = true;  /* x_only, that is */
        d->n = d->x_only.dims[0];
        d->mem_x = d->x_only.data;
        return d->n ? all_rows(t, d) : tr_fail(t, "%s %s has no samples", xflag, xpath);
    }
    int rc = new_dataset(t, d);
    if (rc)
        return rc;
    DatasetOptions dopt;
    dataset_defaults(t, &dopt);
    if (dataset_open_arrays(d->ds, xpath, ypath, &dopt, err, sizeof err) != DATASET_OK) {
        NpyArray xa, ya;   /* trainer.c's message for X and Y of different lengths */
        if (ypath && npy_map(xpath, &xa, NULL, 0) == NPY_OK) {
            if (npy_map(ypath, &ya, NULL, 0) == NPY_OK) {
                bool differ = xa.rank >= 1 && ya.rank >= 1 && xa.dims[0] != ya.dims[0];
                size_t nx = xa.rank ? xa.dims[0] : 0, ny = ya.rank ? ya.dims[0] : 0;
                npy_free(&ya);
                if (differ) {
                    npy_free(&xa);
                    return tr_fail(t, "%s %s has %zu samples but %s %s has %zu", xflag, xpath, nx, yflag, ypath, ny);
                }
            }
            npy_free(&xa);
        }
        return tr_fail(t, "%s%s%s: %s", xflag, ypath ? "/" : "", ypath ? yflag : "", err);
    }
    char ybuf[1100];
    if (!ypath) {
        snprintf(ybuf, sizeof ybuf, "%s (y)", xpath);
        ypath = ybuf;
        yflag = xflag;
    }
    d->n = d->ds->n;
    NpyArray hx = header_of(&d->ds->x, d->n), hy = header_of(&d->ds->y, d->n);
    rc = tr_check_array(t, xflag, xpath, &hx, &p->x, "the model's input");
    if (!rc)
        rc = tr_check_array(t, yflag, ypath, &hy, &p->target,
                            p->loss == TRAIN_LOSS_CROSS_ENTROPY ? "class indices for cross_entropy"
                                                                : "targets of the output's shape for this loss");
    if (rc)
        return rc;
    if (d->n == 0)
        return tr_fail(t, "%s %s has no samples", xflag, xpath);
    if (p->loss == TRAIN_LOSS_CROSS_ENTROPY && d->ds->labels) {
        const int64_t *y = d->ds->labels;
        int64_t classes = p->logits.dims[1];
        for (size_t i = 0; i < d->n; i++)
            if (y[i] < 0 || y[i] >= classes)
                return tr_fail(t, "%s %s: label %lld of sample %zu is out of range: the model has %lld classes "
                               "(0..%lld)", yflag, ypath, (long long)y[i], i, (long long)classes, (long long)classes - 1);
    }
    return all_rows(t, d);
}

/* ---- several inputs: --train-x NAME=FILE.npy ... or DATA.npz with the inputs' names ---- */

/* Which data input NAME=FILE names (-1: none; -2: no '='). */
static int input_of(const TrainProgram *p, const char *a)
{
    const char *eq = strchr(a, '=');
    if (!eq)
        return -2;
    for (int k = 0; k < p->nx; k++)
        if (strlen(p->xs[k].name) == (size_t)(eq - a) && strncmp(p->xs[k].name, a, (size_t)(eq - a)) == 0)
            return k;
    return -1;
}

static const char *input_names(const TrainProgram *p, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < p->nx && at < size; k++) {
        int w = snprintf(buf + at, size - at, "%s%s", k ? ", " : "", p->xs[k].name);
        at += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

/* A one-input program's file: the last value, without "NAME=" when NAME is its input. */
static const char *x_single(const TrainProgram *p, const XList *l, const char *fallback)
{
    const char *a = l->n ? l->arg[l->n - 1] : fallback;
    return a && p->nx == 1 && input_of(p, a) == 0 ? strchr(a, '=') + 1 : a;
}

/* The data is one .npz holding x (or the inputs) and y. */
static bool x_is_npz(const TrainProgram *p, const XList *l, const char *fallback)
{
    if (p->nx <= 1) {
        const char *a = x_single(p, l, fallback);
        return a && is_npz(a);
    }
    return l->n == 1 && input_of(p, l->arg[0]) == -2 && is_npz(l->arg[0]);
}

static int open_arrays(const Trainer *t, const char *xflag, const char *xpath, const char *yflag, const char *ypath,
                       bool need_y, Data *d);

/* The split's inputs as the values of xflag say: a single input goes to open_arrays (FILE, NAME=FILE or
 * DATA.npz with x and y); several need NAME=FILE for each, or one .npz whose keys are their names. */
static int open_inputs(const Trainer *t, const char *xflag, const XList *l, const char *yflag, const char *ypath,
                       bool need_y, Data *d)
{
    const TrainProgram *p = t->whole;
    char names[1024];
    if (p->nx <= 1) {
        const char *a = x_single(p, l, NULL);
        if (p->nx == 1 && input_of(p, a) == -1 && access(a, F_OK) != 0)
            return tr_fail(t, "%s %s: '%.*s' is not an input of the model (its input: %s)", xflag, a,
                           (int)(strchr(a, '=') - a), a, input_names(p, names, sizeof names));
        return open_arrays(t, xflag, a, yflag, ypath, need_y, d);
    }
    const char *paths[TRAIN_MAX_INPUTS] = {0}, *npz = NULL, *names_k[TRAIN_MAX_INPUTS];
    for (size_t i = 0; i < l->n; i++) {
        const char *a = l->arg[i];
        int k = input_of(p, a);
        if (k == -1)
            return tr_fail(t, "%s %s: '%.*s' is not an input of the model (its inputs: %s)", xflag, a,
                           (int)(strchr(a, '=') - a), a, input_names(p, names, sizeof names));
        if (k >= 0)
            paths[k] = strchr(a, '=') + 1;
        else if (l->n == 1 && is_npz(a))
            npz = a;
        else
            return tr_fail(t, "%s %s: the model has %d inputs (%s): give %s NAME=FILE.npy for each, or one .npz "
                           "whose keys are their names", xflag, a, p->nx, input_names(p, names, sizeof names), xflag);
    }
    for (int k = 0; !npz && k < p->nx; k++)
        if (!paths[k])
            return tr_fail(t, "%s: no file for the model's input '%s' (give %s %s=FILE.npy)", xflag, p->xs[k].name,
                           xflag, p->xs[k].name);
    for (int k = 0; k < p->nx; k++)
        names_k[k] = p->xs[k].name;
    int rc = new_dataset(t, d);
    if (rc)
        return rc;
    DatasetOptions dopt;
    dataset_defaults(t, &dopt);
    char err[1024];
    if (dataset_open_inputs(d->ds, (size_t)p->nx, names_k, npz ? NULL : paths, npz, ypath, need_y, &dopt, err,
                            sizeof err) != DATASET_OK)
        return tr_fail(t, "%s: %s", xflag, err);    /* the message names the file or input */
    d->n = d->ds->n;
    for (int k = 0; k < p->nx; k++) {
        char label[1100], what[300];
        if (npz)
            snprintf(label, sizeof label, "%s:%s", npz, p->xs[k].name);
        else
            snprintf(label, sizeof label, "%s=%s", p->xs[k].name, paths[k]);
        snprintf(what, sizeof what, "the model's input '%s'", p->xs[k].name);
        NpyArray h = header_of(&d->ds->part[k], d->n);
        if ((rc = tr_check_array(t, xflag, label, &h, &p->xs[k].t, what)))
            return rc;
    }
    if (d->ds->x.bytes != tr_tensor_row_bytes(&p->x))
        return tr_fail(t, "internal error: packed samples of %zu bytes, the program's are %zu", d->ds->x.bytes,
                       tr_tensor_row_bytes(&p->x));
    if (d->n == 0)
        return tr_fail(t, "%s %s has no samples", xflag, npz ? npz : paths[0]);
    d->no_y = d->ds->y.bytes == 0;
    if (!d->no_y) {
        char ybuf[1100];
        if (!ypath) {
            snprintf(ybuf, sizeof ybuf, "%s (y)", npz);
            ypath = ybuf;
            yflag = xflag;
        }
        NpyArray hy = header_of(&d->ds->y, d->n);
        rc = tr_check_array(t, yflag, ypath, &hy, &p->target, p->loss == TRAIN_LOSS_CROSS_ENTROPY
                            ? "class indices for cross_entropy" : "targets of the output's shape for this loss");
        if (rc)
            return rc;
        if (p->loss == TRAIN_LOSS_CROSS_ENTROPY && d->ds->labels) {
            const int64_t *y = d->ds->labels;
            int64_t classes = p->logits.dims[1];
            for (size_t i = 0; i < d->n; i++)
                if (y[i] < 0 || y[i] >= classes)
                    return tr_fail(t, "%s %s: label %lld of sample %zu is out of range: the model has %lld classes "
                                   "(0..%lld)", yflag, ypath, (long long)y[i], i, (long long)classes,
                                   (long long)classes - 1);
        }
    }
    return all_rows(t, d);
}

#define IMAGE_CACHE_LIMIT ((size_t)512 << 20)

/* Without augmentation every epoch decodes the same tensors: when they fit, decode them once (in dataset
 * order, as the loader would) and serve batches from memory. */
static int cache_images(const Trainer *t, Data *d, const ImageTransform *tf)
{
    const Dataset *ds = d->ds;
    size_t xb = ds->x.bytes, yb = ds->y.bytes;
    if (t->o.no_cache || tf->augment_crop || tf->augment_flip || ds->n == 0 ||
        ds->n > IMAGE_CACHE_LIMIT / (xb + yb))
        return 0;
    unsigned char *buf = malloc(ds->n * (xb + yb));
    size_t *idx = malloc(256 * sizeof *idx);
    if (!buf || !idx) {   /* no room: decode every epoch instead */
        free(buf);
        free(idx);
        return 0;
    }
    char err[1024];
    for (size_t at = 0; at < ds->n; at += 256) {
        size_t count = ds->n - at < 256 ? ds->n - at : 256;
        for (size_t i = 0; i < count; i++)
            idx[i] = at + i;
        if (dataset_batch(ds, idx, count, 0, buf + at * xb, buf + ds->n * xb + at * yb, err, sizeof err) !=
            DATASET_OK) {
            free(buf);
            free(idx);
            return tr_fail(t, "%s: %s", ds->source, err);
        }
    }
    free(idx);
    d->cache = buf;
    d->mem_x = buf;
    d->mem_y = buf + ds->n * xb;
    return 0;
}

/* An image folder into d. classes: the names its class folders map onto (NULL: its own sorted list). */
static int open_images(const Trainer *t, const char *flag, const char *dir, bool augment, const char *const *classes,
                       size_t nclasses, Data *d, ImageTransform *tf_out)
{
    ImageTransform tf;
    int rc = image_transform_for(t, flag, augment, &tf);
    if (rc || (rc = new_dataset(t, d)))
        return rc;
    DatasetOptions dopt;
    dataset_defaults(t, &dopt);
    dopt.transform = tf;
    dopt.classes = classes;
    dopt.nclasses = nclasses;
    char err[1024];
    if (dataset_open_images(d->ds, dir, &dopt, err, sizeof err) != DATASET_OK)
        return tr_fail(t, "%s %s: %s", flag, dir, err);
    int64_t k = t->p->logits.dims[1];
    if ((int64_t)d->ds->nclasses > k)
        return tr_fail(t, "%s %s has %zu class folders but the model has %lld classes (compile with --head "
                       "linear:%zu)", flag, dir, d->ds->nclasses, (long long)k, d->ds->nclasses);
    d->n = d->ds->n;
    if (tf_out)
        *tf_out = tf;
    rc = cache_images(t, d, &tf);
    return rc ? rc : all_rows(t, d);
}

/* --classes "a,b,c" into d->names. */
static int parse_classes(const Trainer *t, const char *list, Data *d)
{
    size_t n = 1;
    for (const char *s = list; *s; s++)
        n += *s == ',';
    d->names = calloc(n, sizeof *d->names);
    if (!d->names)
        return tr_fail(t, "out of memory");
    const char *s = list;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (!len) {
            fprintf(stderr, "%s: --classes '%s' has an empty name\n", t->prog, list);
            return 2;
        }
        if (!(d->names[i] = strndup(s, len)))
            return tr_fail(t, "out of memory");
        d->nnames++;
        s += len + 1;
    }
    if (t->p->loss == TRAIN_LOSS_CROSS_ENTROPY && (int64_t)n != t->p->logits.dims[1]) {
        fprintf(stderr, "%s: --classes names %zu classes but the model has %lld\n", t->prog, n,
                (long long)t->p->logits.dims[1]);
        return 2;
    }
    return 0;
}

/* One line on what a split holds, when it is not plain arrays read into memory. */
static void describe(const Trainer *t, const char *flag, const Data *d)
{
    if (t->o.quiet || !d->ds)
        return;
    if (d->ds->kind == DATASET_IMAGES) {
        printf("%s: %s %s: %zu images in %zu classes (", t->prog, flag, d->ds->source, d->ds->n, d->ds->nclasses);
        for (size_t c = 0; c < d->ds->nclasses && c < 8; c++)
            printf("%s%s", c ? " " : "", d->ds->class_names[c]);
        printf("%s)\n", d->ds->nclasses > 8 ? " ..." : "");
    } else if (d->ds->mapped) {
        printf("%s: %s %s: %zu samples, memory-mapped\n", t->prog, flag, d->ds->source, d->ds->n);
    }
}

int tr_data_open(Trainer *t, Data *train, Data *val)
{
    const Options *o = &t->o;
    const TrainProgram *p = t->whole;
    bool train_npz = o->train_x && !o->train_y && x_is_npz(p, &o->train_xl, o->train_x);
    bool val_npz = o->val_x && !o->val_y && x_is_npz(p, &o->val_xl, o->val_x);
    if (o->x || o->y || o->dir || o->output || o->output_labels || o->weights) {
        fprintf(stderr, "%s: --%s belongs to %s eval / %s predict\n", t->prog,
                o->x ? "x" : o->y ? "y" : o->dir ? "dir" : o->weights ? "weights" : o->output ? "output" : "output-labels",
                t->prog, t->prog);
        return 2;
    }
    if (o->train_dir && (o->train_x || o->train_y)) {
        fprintf(stderr, "%s: give either --train-dir or --train-x/--train-y, not both\n", t->prog);
        return 2;
    }
    if (!o->train_dir && (!o->train_x || (!o->train_y && !train_npz))) {
        fprintf(stderr, "%s: missing --train-x X.npy --train-y Y.npy (or --train-x DATA.npz, or --train-dir DIR; "
                "see %s --help)\n", t->prog, t->prog);
        return 2;
    }
    if ((!o->val_x != !o->val_y && !val_npz) || (o->val_y && !o->val_x)) {
        fprintf(stderr, "%s: --val-x and --val-y go together (or --val-x DATA.npz alone)\n", t->prog);
        return 2;
    }
    if ((o->val_x != NULL) + (o->val_dir != NULL) + (o->val_split > 0) > 1) {
        fprintf(stderr, "%s: give one of --val-x/--val-y, --val-dir and --val-split\n", t->prog);
        return 2;
    }
    if (o->confusion && !o->val_x && !o->val_dir && !(o->val_split > 0)) {
        fprintf(stderr, "%s: --confusion is of the validation data: give --val-x/--val-y, --val-dir or "
                "--val-split\n", t->prog);
        return 2;
    }
    if (o->classes && o->train_dir) {
        fprintf(stderr, "%s: --classes names the classes of array data; an image folder's come from its folder "
                "names\n", t->prog);
        return 2;
    }
    if ((o->augment_flip || o->augment_crop) && !o->train_dir) {
        fprintf(stderr, "%s: --augment works on image folders (--train-dir)\n", t->prog);
        return 2;
    }
    int rc;
    if (o->train_dir) {
        rc = open_images(t, "--train-dir", o->train_dir, true, NULL, 0, train, &t->tf);
        if (rc)
            return rc;
        t->images = true;
        t->class_names = (const char *const *)train->ds->class_names;
        t->nclasses = train->ds->nclasses;
        if (t->p->logits.dims[1] != (int64_t)t->nclasses && !o->quiet)
            fprintf(stderr, "%s: warning: --train-dir %s has %zu classes, the model %lld\n", t->prog, o->train_dir,
                    t->nclasses, (long long)t->p->logits.dims[1]);
    } else {
        rc = open_inputs(t, "--train-x", &o->train_xl, "--train-y", train_npz ? NULL : o->train_y, true, train);
        if (rc)
            return rc;
        if (o->classes) {
            if ((rc = parse_classes(t, o->classes, train)))
                return rc;
            t->class_names = (const char *const *)train->names;
            t->nclasses = train->nnames;
        }
    }
    describe(t, o->train_dir ? "--train-dir" : "--train-x", train);
    if (o->val_x)
        rc = open_inputs(t, "--val-x", &o->val_xl, "--val-y", val_npz ? NULL : o->val_y, true, val);
    else if (o->val_dir)
        rc = open_images(t, "--val-dir", o->val_dir, false, t->class_names, t->nclasses, val, NULL);
    else if (o->val_split > 0) {
        if (train->ds && train->ds->kind == DATASET_IMAGES && (o->augment_flip || o->augment_crop)) {
            /* validation without augmentation: the same folder opened again lists the same samples */
            rc = open_images(t, "--train-dir", o->train_dir, false, NULL, 0, val, NULL);
            free(val->rows);
            val->rows = NULL;
            val->owns_rows = false;
            if (!rc && val->ds->n != train->ds->n)
                rc = tr_fail(t, "--train-dir %s changed while it was read", o->train_dir);
        } else {
            val->ds = train->ds;    /* a view: ds and the cache stay the training split's */
            val->mem_x = train->mem_x;
            val->mem_y = train->mem_y;
        }
        if (!rc)
            rc = tr_split_off(t, train, val);
    }
    if (!rc && (o->val_x || o->val_dir))
        describe(t, o->val_x ? "--val-x" : "--val-dir", val);
    return rc;
}

/* The data of PROG eval / predict: --x X.npy [--y Y.npy], --x DATA.npz or --dir DIR. */
int tr_data_open_eval(Trainer *t, Data *d, bool need_y)
{
    const Options *o = &t->o;
    if (o->train_x || o->train_y || o->train_dir || o->val_x || o->val_y || o->val_dir) {
        fprintf(stderr, "%s: eval and predict read --x/--y or --dir, not the training options\n", t->prog);
        return 2;
    }
    if (!o->x == !o->dir) {
        fprintf(stderr, "%s: give --x X.npy%s, --x DATA.npz or --dir DIR\n", t->prog, need_y ? " --y Y.npy" : "");
        return 2;
    }
    if (o->dir) {
        if (o->y) {
            fprintf(stderr, "%s: --dir takes its labels from the class folders: no --y\n", t->prog);
            return 2;
        }
        return open_images(t, "--dir", o->dir, false, t->class_names, t->nclasses, d, NULL);
    }
    bool npz = !o->y && x_is_npz(t->whole, &o->xl, o->x);
    if (need_y && !o->y && !npz) {
        fprintf(stderr, "%s: eval needs targets: --x X.npy --y Y.npy (or --x DATA.npz with x and y)\n", t->prog);
        return 2;
    }
    return open_inputs(t, "--x", &o->xl, "--y", o->y, need_y, d);
}

void tr_data_free(Data *d)
{
    prefetcher_close(d->pf);
    if (d->owns_ds) {
        tr_features_free(d);
        dataset_close(d->ds);
        free(d->ds);
        free(d->cache);
        npy_free(&d->x_only);
    }
    if (d->owns_rows)
        free(d->rows);
    for (size_t i = 0; i < d->nnames; i++)
        free(d->names[i]);
    free(d->names);
    memset(d, 0, sizeof *d);
}

/* --val-split F: a seeded random ceil(F * N) samples validate, the rest (in file order) train. Both views
 * share the training samples. */
int tr_split_off(const Trainer *t, Data *train, Data *val)
{
    size_t n = train->n, k = (size_t)ceil(t->o.val_split * (double)n);
    if (k >= n)
        k = n - 1;
    if (k == 0)
        return tr_fail(t, "--val-split %g of %zu samples leaves no validation sample", t->o.val_split, n);
    size_t *perm = malloc(n * sizeof *perm);
    bool *is_val = calloc(n, sizeof *is_val);
    val->rows = malloc(k * sizeof *val->rows);
    if (!perm || !is_val || !val->rows) {
        free(perm);
        free(is_val);
        return tr_fail(t, "out of memory");
    }
    val->owns_rows = true;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    tr_shuffle(perm, n, (uint64_t)t->o.seed << 20);
    for (size_t i = 0; i < k; i++)
        is_val[perm[i]] = true;
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_val[i])
            val->rows[b++] = i;
        else
            train->rows[a++] = i;
    }
    train->n = a;
    val->n = b;
    free(perm);
    free(is_val);
    return 0;
}

/* ---- loading batches ---- */

/* Rows rows..B-1 of the batch buffers repeat row 0 (a short batch runs padded: rt_batch_rows). */
static void pad(const Trainer *t, unsigned char *x, size_t xr, Buffers *b, size_t rows)
{
    size_t yr = tr_tensor_row_bytes(&t->p->target);
    for (size_t r = rows; r < (size_t)t->p->batch; r++) {
        memcpy(x + r * xr, x, xr);
        memcpy(b->y + r * yr, b->y, yr);
    }
}

/* Where a batch of d goes: b->x in the layout of t->p's X, or, when t->p is the program without its
 * prefix and d holds X rather than features, b->xin in X's layout (tr_features_batch then fills b->x). */
static bool computes_features(const Trainer *t, const Data *d)
{
    return t->p != t->whole && !d->features;
}

void tr_unpack_x(const Trainer *t, Buffers *b)
{
    const TrainProgram *p = t->p;
    if (p->nx < 2)
        return;
    size_t batch = (size_t)p->batch, packed = tr_tensor_row_bytes(&p->x);
    for (int k = 0; k < p->nx; k++) {
        size_t row = tr_tensor_row_bytes(&p->xs[k].t), off = p->xs[k].offset;
        for (size_t r = 0; r < batch; r++)
            memcpy(b->xs[k] + r * row, b->x + r * packed + off, row);
    }
}

int tr_gather(const Trainer *t, Buffers *b, const Data *d, const size_t *idx, size_t rows)
{
    bool fx = computes_features(t, d);
    unsigned char *x = fx ? b->xin : b->x;
    size_t xr = tr_tensor_row_bytes(fx ? &t->whole->x : &t->p->x), yr = tr_tensor_row_bytes(&t->p->target);
    if (d->mem_x) {     /* in memory; predict's X alone has zero targets (their loss means nothing) */
        for (size_t r = 0; r < rows; r++)
            memcpy(x + r * xr, d->mem_x + idx[r] * xr, xr);
        if (d->mem_y)
            for (size_t r = 0; r < rows; r++)
                memcpy(b->y + r * yr, d->mem_y + idx[r] * yr, yr);
        else
            memset(b->y, 0, (size_t)t->p->batch * yr);
    } else {
        char err[1024];
        if (dataset_batch(d->ds, idx, rows, 0, x, b->y, err, sizeof err) != DATASET_OK)
            return tr_fail(t, "loading a batch: %s", err);
    }
    pad(t, x, xr, b, rows);
    if (d->no_y)
        memset(b->y, 0, (size_t)t->p->batch * yr);
    tr_unpack_x(t, b);
    return fx ? tr_features_batch(t, b, rows) : 0;
}

/* Arrays read into memory: a batch is a gather of rows, which the training thread does in well under a
 * millisecond per megabyte, straight into the batch buffer. A prefetcher would only add its three batch
 * buffers to the peak memory (28 MiB for 16 images of 3x224x224); it pays for decoding images and for
 * paging in mapped files. */
static bool gathers_in_place(const Data *d)
{
    return d->mem_x || (d->ds && d->ds->kind == DATASET_ARRAYS && !d->ds->mapped);
}

int tr_pass_begin(const Trainer *t, Data *d, const size_t *order, size_t n, size_t batch, int64_t epoch)
{
    char err[1024];
    d->pass_order = order;
    d->pass_n = n;
    d->pass_batch = batch;
    d->pass_at = 0;
    if (gathers_in_place(d))
        return 0;
    if (!d->pf && prefetcher_open(&d->pf, d->ds, (size_t)t->p->batch, t->o.no_prefetch ? 0 : 2, err, sizeof err) !=
                      DATASET_OK)
        return tr_fail(t, "%s", err);
    if (prefetcher_start(d->pf, order, n, batch, (uint64_t)epoch, err, sizeof err) != DATASET_OK)
        return tr_fail(t, "%s", err);
    return 0;
}

int tr_next_batch(const Trainer *t, Buffers *b, Data *d, size_t *rows)
{
    size_t left = d->pass_n - d->pass_at, count = left < d->pass_batch ? left : d->pass_batch;
    *rows = 0;
    if (!count)
        return tr_fail(t, "internal error: a batch was asked for after the end of the pass");
    if (gathers_in_place(d)) {
        int rc = tr_gather(t, b, d, d->pass_order + d->pass_at, count);
        d->pass_at += count;
        *rows = count;
        return rc;
    }
    bool fx = computes_features(t, d);
    unsigned char *xb = fx ? b->xin : b->x;
    size_t xr = tr_tensor_row_bytes(fx ? &t->whole->x : &t->p->x);
    void *x, *y;
    size_t got;
    char err[1024];
    if (prefetcher_next(d->pf, &x, &y, &got, err, sizeof err) != DATASET_OK)
        return tr_fail(t, "loading a batch: %s", err);
    if (got != count)
        return tr_fail(t, "internal error: the prefetcher gave %zu rows, %zu expected", got, count);
    memcpy(xb, x, got * xr);
    memcpy(b->y, y, got * tr_tensor_row_bytes(&t->p->target));
    pad(t, xb, xr, b, got);
    if (d->no_y)
        memset(b->y, 0, (size_t)t->p->batch * tr_tensor_row_bytes(&t->p->target));
    tr_unpack_x(t, b);
    d->pass_at += got;
    *rows = got;
    return fx ? tr_features_batch(t, b, got) : 0;
}

size_t tr_data_skipped(const Data *d)
{
    return d->ds && d->owns_ds ? dataset_skipped(d->ds) : 0;
}

void tr_data_report(const Trainer *t, const Data *train, const Data *val)
{
    const Data *splits[2] = {train, val};
    for (int i = 0; i < 2; i++) {
        size_t k = tr_data_skipped(splits[i]);
        if (k && !t->o.quiet)
            fprintf(stderr, "%s: %zu unreadable image%s skipped in %s (named in the warnings above)\n", t->prog, k,
                    k == 1 ? "" : "s", splits[i]->ds->source);
    }
}
