/* trainer_features.c - the feature cache: when the program has a frozen prefix (TrainPrefix, ir/prefix.c),
 * each sample's features are computed once, before the first epoch, and every later step, validation,
 * --cv fold and candidate runs the rest of the model on them. Kept in memory when they fit
 * --feature-cache-mb, else in memory-mapped files (in --feature-cache DIR, or next to the checkpoint),
 * which a later run (a --resume, another --lr) reuses when their key matches. It does not decide what the
 * prefix is (the compiler does) and never changes a result: the rest on the stored features computes
 * what the whole step computes, bit for bit. Also `PROG features`, the features written as NPY.
 *
 * A cache file: a 64-byte FeatureHeader, then the features [N, F...] and the targets [N, ...] of the
 * split's samples in data-set order. The header holds the key, the sizes, a CRC-32 of the payload and
 * one of itself; a file whose key differs is rebuilt, one that is truncated or fails a CRC is rebuilt
 * with a warning. The key hashes the program (its binary's path, size and modification time, its
 * fingerprint, compile options, the prefix's end, the batch it runs at, the thread count, the kernel switches in
 * its environment such as ONNXTUNE_WINOGRAD), the
 * prefix's weights as they are when training starts (--init and --resume included), the data
 * (each file's path, size and modification time; image folders: every image's, the class names and the
 * preprocessing) and the file's split. */
#define _POSIX_C_SOURCE 200809L
#include "program_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FEATURE_MAGIC "ONNXTFC\n"
#define FEATURE_VERSION 1
#define FEATURE_HEADER 64

typedef struct FeatureHeader {
    char magic[8];
    uint32_t version, header_crc;   /* header_crc: of these 64 bytes with header_crc 0 */
    uint64_t key;
    uint64_t samples, x_row, y_row; /* bytes of a sample's features and target */
    uint32_t payload_crc, reserved;
    uint64_t reserved2;
} FeatureHeader;
_Static_assert(sizeof(FeatureHeader) == FEATURE_HEADER, "the header is 64 bytes");

/* ---- options ---- */

int tr_features_option(Trainer *t, const char *name, const char *v)
{
    if (strcmp(name, "--feature-cache") == 0) {
        if (!*v) {
            fprintf(stderr, "%s: --feature-cache wants auto, off or a folder\n", t->prog);
            return 2;
        }
        t->o.feature_cache = v;
    } else if (strcmp(name, "--feature-cache-mb") == 0) {
        if (!tr_parse_i64(v, 0, (int64_t)1 << 40, &t->o.feature_cache_mb)) {
            fprintf(stderr, "%s: --feature-cache-mb wants a number of MiB >= 0, not '%s'\n", t->prog, v);
            return 2;
        }
    } else {
        return 2;
    }
    return 0;
}

/* ---- the key ---- */

static uint64_t hash_str(uint64_t h, const char *s)
{
    return ckpt_hash64(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* path (made absolute), size and modification time; a file that cannot be read hashes as missing. */
static uint64_t hash_file(uint64_t h, const char *path)
{
    char abs[PATH_MAX];
    struct stat sb;
    h = hash_str(h, realpath(path, abs) ? abs : path);
    if (stat(path, &sb) != 0)
        return ckpt_hash64(h, "missing", 7);
    int64_t v[3] = {(int64_t)sb.st_size, (int64_t)sb.st_mtim.tv_sec, (int64_t)sb.st_mtim.tv_nsec};
    return ckpt_hash64(h, v, sizeof v);
}

/* The program, the prefix's weights in params, the batch it runs at, --threads. */
static uint64_t program_key(const Trainer *t, const unsigned char *params)
{
    const TrainProgram *p = t->whole;
    const TrainPrefix *px = &p->prefix;
    uint64_t h = ckpt_program_fingerprint(p);
    int64_t v = FEATURE_VERSION;
    h = ckpt_hash64(h, &v, sizeof v);
    h = hash_file(h, "/proc/self/exe");     /* this very binary: a recompile may round differently */
    h = hash_str(h, p->model);
    h = hash_str(h, p->compiled_with);
    h = hash_str(h, px->at);
    h = ckpt_hash64(h, &px->features, sizeof px->features);
    /* the prefix runs over whole batches of B (or one sample at a time): oneDNN and OpenBLAS may pick
     * other kernels for another batch */
    int64_t batch[2] = {p->batch, px->run_batch};
    h = ckpt_hash64(h, batch, sizeof batch);
    /* the kernels a sample runs split their work by the thread count, and some GEMMs round differently
     * for it (resnet18's features at 1 and 2 threads differ in the last bits) */
    int64_t nt = omp_get_max_threads();
    h = ckpt_hash64(h, &nt, sizeof nt);
    /* the run-time kernel choices: another conv algorithm or ISA may round the last bits differently */
    static const char *const kernel_env[] = {"ONNXTUNE_DNNL", "ONNXTUNE_WINOGRAD", "ONNXTUNE_WINO_TILES",
                                             "ONNXTUNE_DW_ISA", "ONNXTUNE_ERF_ISA", "ONNXTUNE_NORM_ISA",
                                             "OPENBLAS_CORETYPE"};
    for (size_t i = 0; i < sizeof kernel_env / sizeof *kernel_env; i++) {
        const char *e = getenv(kernel_env[i]);
        h = hash_str(h, kernel_env[i]);
        h = hash_str(h, e ? e : "");
    }
    for (int i = 0; i < px->run.ninputs; i++)
        if (px->run.inputs[i].kind == TRAIN_IN_PARAM) {
            const TrainParam *tp = &p->params[px->run.inputs[i].param];
            h = ckpt_hash64(h, params + tp->offset, tp->nbytes);
        }
    return h;
}

/* The split's data: files (arrays) or every image and the preprocessing (folders). */
static uint64_t data_key(uint64_t h, const Trainer *t, const Data *d, const char *x, const char *y, const char *dir)
{
    const Dataset *ds = d->ds;
    h = hash_str(h, dir ? "images" : "arrays");
    uint64_t n = ds ? ds->n : d->n;
    h = ckpt_hash64(h, &n, sizeof n);
    if (!dir) {
        h = hash_file(h, x);
        return y ? hash_file(h, y) : h;
    }
    h = hash_file(h, dir);
    for (size_t i = 0; ds && i < ds->n; i++) {
        const char *path = dataset_path(ds, i);
        h = path ? hash_file(h, path) : h;
    }
    for (size_t c = 0; ds && c < ds->nclasses; c++)
        h = hash_str(h, ds->class_names[c]);
    const ImageTransform *tf = &t->tf;
    uint64_t geo[5] = {tf->channels, tf->height, tf->width, tf->resize, tf->crop};
    h = ckpt_hash64(h, geo, sizeof geo);
    h = ckpt_hash64(h, tf->mean, sizeof tf->mean);
    return ckpt_hash64(h, tf->std, sizeof tf->std);
}

/* ---- the store ---- */

typedef struct Store {
    unsigned char *base;        /* the payload: features [n, x_row] then targets [n, y_row] */
    void *map;                  /* the whole file's mapping (NULL: base is malloc'd) */
    size_t map_len;
} Store;

static void store_free(Store *s)
{
    if (s->map)
        munmap(s->map, s->map_len);
    else
        free(s->base);
    memset(s, 0, sizeof *s);
}

static uint32_t header_crc(FeatureHeader h)
{
    h.header_crc = 0;
    return crc32_update(0, &h, sizeof h);
}

/* A valid cache file with this key and layout into s (mapped). 0: loaded; 1: absent or of another key
 * (said in *why when it exists); 2: damaged (said in *why: rebuild with a warning). */
static int store_load(const char *path, const FeatureHeader *want, Store *s, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 1;
    struct stat sb;
    FeatureHeader h;
    int rc = 2;
    size_t payload = (size_t)(want->samples * (want->x_row + want->y_row));
    if (fstat(fd, &sb) != 0 || (size_t)sb.st_size < sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        snprintf(why, whylen, "shorter than its header");
    } else if (memcmp(h.magic, FEATURE_MAGIC, 8) != 0 || h.version != FEATURE_VERSION || h.header_crc != header_crc(h)) {
        snprintf(why, whylen, "not a feature cache of this version, or its header is damaged");
    } else if (h.key != want->key || h.samples != want->samples || h.x_row != want->x_row || h.y_row != want->y_row) {
        snprintf(why, whylen, "made for other data, weights or program");
        rc = 1;
    } else if ((size_t)sb.st_size != FEATURE_HEADER + payload) {
        snprintf(why, whylen, "truncated or extended (%lld bytes, %zu expected)", (long long)sb.st_size,
                 FEATURE_HEADER + payload);
    } else {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(why, whylen, "cannot be mapped: %s", strerror(errno));
        } else if (crc32_update(0, (unsigned char *)m + FEATURE_HEADER, payload) != h.payload_crc) {
            snprintf(why, whylen, "its contents fail the checksum");
            munmap(m, (size_t)sb.st_size);
        } else {
            *s = (Store){(unsigned char *)m + FEATURE_HEADER, m, (size_t)sb.st_size};
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

/* Room for the payload: malloc'd (memory), or a temporary file next to path mapped (atomic_file_open's
 * PATH.tmp.PID, which also removes the temporaries of dead processes; store_commit renames it). Returns 0
 * or 1 (said). */
static int store_create(const Trainer *t, const char *path, bool memory, size_t payload, Store *s, AtomicFile *af)
{
    memset(s, 0, sizeof *s);
    af->fd = -1;
    if (memory) {
        if (!(s->base = malloc(payload ? payload : 1)))
            return tr_fail(t, "out of memory for the feature cache (%zu bytes; lower --feature-cache-mb to use a "
                           "file)", payload);
        return 0;
    }
    char err[1024];
    if (atomic_file_open(af, path, err, sizeof err) != FILE_OK)
        return tr_fail(t, "--feature-cache: %s", err);
    size_t len = FEATURE_HEADER + payload;
    void *m = MAP_FAILED;
    int fd = open(af->tmp, O_RDWR);     /* atomic_file_open's is write-only; a shared mapping wants both */
    if (fd >= 0 && ftruncate(fd, (off_t)len) == 0)
        m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (m == MAP_FAILED) {
        int rc = tr_fail(t, "--feature-cache: %s: %s", af->tmp, strerror(saved));
        atomic_file_abort(af);
        return rc;
    }
    *s = (Store){(unsigned char *)m + FEATURE_HEADER, m, len};
    return 0;
}

/* The header, then the file in place under path (the mapped temporary renamed, or written from memory);
 * a failure to save only warns: the features in s stay good for this run. */
static void store_commit(const Trainer *t, const char *path, AtomicFile *af, FeatureHeader h, Store *s)
{
    size_t payload = (size_t)(h.samples * (h.x_row + h.y_row));
    char err[1024] = "";
    memcpy(h.magic, FEATURE_MAGIC, 8);
    h.version = FEATURE_VERSION;
    h.payload_crc = crc32_update(0, s->base, payload);
    h.header_crc = header_crc(h);
    bool ok;
    if (s->map) {
        memcpy(s->map, &h, sizeof h);
        ok = msync(s->map, s->map_len, MS_SYNC) == 0;
        if (!ok)
            snprintf(err, sizeof err, "%s: %s", af->tmp, strerror(errno));
        ok = ok && atomic_file_commit(af, err, sizeof err) == FILE_OK;
    } else {
        ok = atomic_file_open(af, path, err, sizeof err) == FILE_OK &&
             atomic_file_write(af, &h, sizeof h, err, sizeof err) == FILE_OK &&
             atomic_file_write(af, s->base, payload, err, sizeof err) == FILE_OK &&
             atomic_file_commit(af, err, sizeof err) == FILE_OK;
    }
    if (!ok) {
        atomic_file_abort(af);
        fprintf(stderr, "%s: warning: --feature-cache: cannot save the features: %s\n", t->prog, err);
    }
}

/* ---- computing ---- */

/* Where the prefix runs: its X (b->xin itself when it runs over the whole batch, else run_batch rows copied
 * from it), its output (run_batch samples' features), the bindings, a workspace. Every buffer is
 * page-aligned, so every run meets the kernels in the same circumstances. */
typedef struct FeatureWorker {
    unsigned char *x1, *f;
    void **in, *out[1];
    void *ws;
} FeatureWorker;

static void *page_alloc(size_t n)
{
    void *m = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
    if (m)
        memset(m, 0, (n + 4095) / 4096 * 4096);
    return m;
}

void tr_features_free_buffers(Buffers *b)
{
    for (int k = 0; k < b->nfw; k++) {
        free(b->fw[k].x1);
        free(b->fw[k].f);
        free(b->fw[k].in);
        free(b->fw[k].ws);
    }
    free(b->fw);
    free(b->xin);
    b->fw = NULL;
    b->nfw = 0;
    b->xin = NULL;
}

/* The samples the prefix runs at a time (1..B). */
static size_t run_batch(const TrainProgram *p)
{
    int64_t r = p->prefix.run_batch;
    return r >= 1 && r <= p->batch ? (size_t)r : 1;
}

int tr_features_use(Trainer *t, Buffers *b)
{
    const TrainProgram *p = t->whole;
    const TrainPrefix *px = &p->prefix;
    if (!px->at)
        return 0;
    size_t batch = (size_t)p->batch, xr = tr_tensor_row_bytes(&p->x), fr = px->sample_bytes, rb = run_batch(p);
    bool whole = rb == batch;
    b->nfw = 1;
    b->xin = page_alloc(batch * xr + 1);
    b->fw = calloc((size_t)b->nfw, sizeof *b->fw);
    if (!b->xin || !b->fw)
        return tr_fail(t, "out of memory (the frozen part's buffers)");
    FeatureWorker *w = &b->fw[0];
    w->x1 = whole ? NULL : page_alloc(rb * xr);
    w->f = page_alloc(rb * fr);
    w->in = calloc((size_t)px->run.ninputs + 1, sizeof *w->in);
    w->ws = px->run.workspace_bytes ? page_alloc(px->run.workspace_bytes) : NULL;
    if ((!whole && !w->x1) || !w->f || !w->in || (px->run.workspace_bytes && !w->ws))
        return tr_fail(t, "out of memory (the frozen part's buffers, %zu bytes of workspace)",
                       px->run.workspace_bytes);
    for (int i = 0; i < px->run.ninputs; i++)
        w->in[i] = px->run.inputs[i].kind == TRAIN_IN_PARAM
                 ? (void *)(b->params + p->params[px->run.inputs[i].param].offset)
                 : whole ? (void *)b->xin : (void *)w->x1;
    w->out[0] = w->f;
    /* the program without its prefix: X is the features */
    t->rest = *p;
    t->rest.x = px->features;
    t->rest.train = px->train;
    t->rest.eval = px->eval;
    t->rest.nx = 1;     /* X is the features alone */
    tr_unbind_graphs(b);
    t->p = &t->rest;
    return tr_bind_graphs(t, b);
}

/* The prefix runs over run_batch samples at a time (the compiler's choice, codegen/train_program.c), all
 * the threads inside its kernels (oneDNN's convolutions too: they refuse to run inside a parallel region):
 * over b->xin itself when run_batch is B (a short batch arrives padded with copies of row 0), else over
 * its rows copied run_batch at a time, a short tail padded with copies of its first row. Several samples
 * only when the compiler showed that the prefix keeps them apart (ir/prefix.c's prefix_mixes_samples),
 * and with the kernels told so (rt_set_samples_apart: a BLAS product per sample where a batched one would
 * round a row by its place, as OpenBLAS's do). So a sample's features do not depend on the other samples
 * of its batch or its place in it (test_feature_cache: the data reversed, a sample alone), but they may on
 * run_batch and the thread count (the kernels' split and algorithms, oneDNN's and OpenBLAS's blocking):
 * both are part of the cache's key. Padding rows get row 0's features, as they would from the cache. */
int tr_features_batch(const Trainer *t, Buffers *b, size_t rows)
{
    const TrainProgram *p = t->whole;
    const TrainPrefix *px = &p->prefix;
    size_t xr = tr_tensor_row_bytes(&p->x), fr = px->sample_bytes, rb = run_batch(p);
    FeatureWorker *w = &b->fw[0];
    rt_set_samples_apart(rb > 1 ? rb : 0);
    for (size_t r0 = 0; r0 < rows; r0 += rb) {
        size_t k = rows - r0 < rb ? rows - r0 : rb;
        if (w->x1) {
            memcpy(w->x1, b->xin + r0 * xr, k * xr);
            for (size_t r = k; r < rb; r++)
                memcpy(w->x1 + r * xr, w->x1, xr);
        }
        px->run.run(w->in, w->out, w->ws);
        memcpy(b->x + r0 * fr, w->f, k * fr);
    }
    rt_set_samples_apart(0);
    for (size_t r = rows; r < (size_t)t->p->batch; r++)
        memcpy(b->x + r * fr, b->x, fr);
    return 0;
}

/* The features and targets of samples order[0..n) of d into fx [n, x_row] and fy [n, y_row] (fy NULL: no
 * targets), through tr_next_batch (t->p is the rest, d holds X). Returns 0 or 1. */
static int compute(Trainer *t, Buffers *b, Data *d, const size_t *order, size_t n, unsigned char *fx,
                   unsigned char *fy)
{
    const TrainProgram *p = t->p;
    size_t xr = p->prefix.sample_bytes, yr = tr_tensor_row_bytes(&p->target), at = 0;
    int rc = n ? tr_pass_begin(t, d, order, n, (size_t)p->batch, 0) : 0;
    while (!rc && at < n) {
        size_t rows = 0;
        if ((rc = tr_next_batch(t, b, d, &rows)))
            break;
        memcpy(fx + at * xr, b->x, rows * xr);
        if (fy)
            memcpy(fy + at * yr, b->y, rows * yr);
        at += rows;
    }
    return rc;
}

/* The features of a split that owns its samples (the training split, or a validation split read from its
 * own files): loaded from path, else computed (and saved to path when given). *memory: the budget left,
 * in bytes; what this split keeps in memory is taken from it. */
static int prepare_split(Trainer *t, Buffers *b, Data *d, const char *what, const char *path, uint64_t key,
                         size_t *memory)
{
    const TrainProgram *p = t->p;
    size_t n = d->ds ? d->ds->n : d->n, xr = p->prefix.sample_bytes, yr = tr_tensor_row_bytes(&p->target);
    size_t payload = n * (xr + yr);
    FeatureHeader h = {.key = key, .samples = n, .x_row = xr, .y_row = yr};
    Store s = {0};
    char why[256] = "";
    double t0 = tr_seconds();
    if (path) {
        int lr = store_load(path, &h, &s, why, sizeof why);
        if (lr == 0) {
            if (!t->o.quiet)
                printf("%s: features of the %zu %s samples read from %s\n", t->prog, n, what, path);
            goto use;
        }
        if (lr == 2 && !t->o.quiet)
            fprintf(stderr, "%s: warning: feature cache %s is %s: computing the features again\n", t->prog, path, why);
        else if (why[0] && !t->o.quiet)
            printf("%s: feature cache %s was %s: computing the features again\n", t->prog, path, why);
    }
    bool in_memory = payload <= *memory;
    if (!in_memory && !path)
        return tr_fail(t, "internal error: a feature cache over the budget without a file");
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return tr_fail(t, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    AtomicFile af = {.fd = -1};
    int rc = store_create(t, path, in_memory, payload, &s, &af);
    if (!rc)
        rc = compute(t, b, d, order, n, s.base, s.base + n * xr);
    free(order);
    if (rc) {
        atomic_file_abort(&af);
        store_free(&s);
        return rc;
    }
    if (in_memory)
        *memory -= payload;
    if (path)
        store_commit(t, path, &af, h, &s);
    if (!t->o.quiet) {
        char size[32];
        snprintf(size, sizeof size, "%.1f MiB", (double)payload / 1048576.0);
        printf("%s: features of the %zu %s samples (%zu bytes each) computed in %.2f s; %s %s%s%s\n", t->prog, n, what,
               xr, tr_seconds() - t0, size, in_memory ? "in memory" : "memory-mapped", path ? ", saved in " : "",
               path ? path : "");
    }
use:
    d->features = true;
    d->feat_base = s.base;
    d->feat_map = s.map;
    d->feat_map_len = s.map_len;
    d->mem_x = s.base;
    d->mem_y = s.base + n * xr;
    if (d->cache) {     /* the decoded images are not needed any more */
        free(d->cache);
        d->cache = NULL;
    }
    return 0;
}

void tr_features_free(Data *d)
{
    Store s = {d->feat_base, d->feat_map, d->feat_map_len};
    if (d->feat_base)
        store_free(&s);
    d->feat_base = NULL;
    d->feat_map = NULL;
}

static bool is_dir_mode(const char *v)
{
    return v && strcmp(v, "auto") != 0 && strcmp(v, "off") != 0;
}

int tr_features_prepare(Trainer *t, Data *tr, Data *val, Buffers *b, const char *ckpt)
{
    const Options *o = &t->o;
    const TrainProgram *p = t->whole;
    const char *mode = o->feature_cache ? o->feature_cache : "auto";
    if (strcmp(mode, "off") == 0)
        return 0;
    bool dir_mode = is_dir_mode(mode);
    const char *note = NULL;
    if (!p->prefix.at)
        note = p->prefix.note ? p->prefix.note : dir_mode ? "the program has no frozen part worth storing" : NULL;
    else if (o->augment_flip || o->augment_crop)
        note = "--augment changes the frozen part's inputs every epoch (its features are computed every step)";
    if (note || !p->prefix.at) {
        if (note && !o->quiet)
            printf("%s: note: no feature cache: %s\n", t->prog, note);
        return 0;
    }
    char dir_buf[4200], path[2][4300];
    if (dir_mode) {
        if (mkdir(mode, 0755) != 0 && errno != EEXIST)
            return tr_fail(t, "--feature-cache %s: cannot create the folder: %s", mode, strerror(errno));
        snprintf(dir_buf, sizeof dir_buf, "%s/", mode);
    } else {
        snprintf(dir_buf, sizeof dir_buf, "%s.", ckpt);
    }
    snprintf(path[0], sizeof path[0], "%strain.features", dir_buf);
    snprintf(path[1], sizeof path[1], "%sval.features", dir_buf);
    bool own_val = val->n > 0 && val->owns_ds;
    size_t yr = tr_tensor_row_bytes(&p->target), per = p->prefix.sample_bytes + yr;
    size_t ntr = tr->ds ? tr->ds->n : tr->n, nval = own_val ? (val->ds ? val->ds->n : val->n) : 0;
    size_t budget = (size_t)(o->feature_cache_mb < 0 ? 1024 : o->feature_cache_mb) << 20;
    bool files = dir_mode || (ntr + nval) * per > budget;
    uint64_t key = program_key(t, b->params);
    uint64_t ktr = data_key(hash_str(key, "train"), t, tr, o->train_x, o->train_y, o->train_dir);
    int rc = prepare_split(t, b, tr, "training", files ? path[0] : NULL, ktr, &budget);
    if (!rc && own_val) {
        uint64_t kval = data_key(hash_str(key, "val"), t, val, o->val_x, o->val_y, o->val_dir);
        rc = prepare_split(t, b, val, "validation", files ? path[1] : NULL, kval, &budget);
    }
    if (rc)
        return rc;
    if (val->n > 0 && !val->owns_ds && val->ds == tr->ds) {    /* --val-split: the same samples */
        val->mem_x = tr->mem_x;
        val->mem_y = tr->mem_y;
        val->features = true;
    }
    return 0;
}

/* ---- PROG features ---- */

int tr_features_main(Trainer *t, Buffers *b)
{
    const Options *o = &t->o;
    const TrainProgram *p = t->whole;
    if (!p->prefix.at) {
        fprintf(stderr, "%s features: this program has no frozen part whose features could be computed%s%s\n",
                t->prog, p->prefix.note ? ": " : "", p->prefix.note ? p->prefix.note : "");
        return 1;
    }
    if (!o->output) {
        fprintf(stderr, "%s features: give --output F.npy\n", t->prog);
        return 2;
    }
    if (o->weights || o->checkpoint || o->output_labels || o->output_list || o->y) {
        fprintf(stderr, "%s features: the frozen part's weights are the compiled ones (with --init): no --weights, "
                "--checkpoint, --y, --output-labels or --output-list\n", t->prog);
        return 2;
    }
    Data d = {0};
    unsigned char *fx = NULL;
    int rc = tr_data_open_eval(t, &d, false);
    size_t xr = p->prefix.sample_bytes;
    if (!rc && !(fx = malloc(d.n * xr + 1)))
        rc = tr_fail(t, "out of memory (%zu samples of %zu bytes)", d.n, xr);
    if (!rc)
        rc = compute(t, b, &d, d.rows, d.n, fx, NULL);
    if (!rc) {
        char err[1024];
        size_t dims[RT_MAX_RANK];
        dims[0] = d.n;
        for (int i = 1; i < p->prefix.features.rank; i++)
            dims[i] = (size_t)p->prefix.features.dims[i];
        if (npy_write(o->output, (RtDType)p->prefix.features.dtype, p->prefix.features.rank, dims, fx, err,
                      sizeof err) != NPY_OK)
            rc = tr_fail(t, "--output: %s", err);
        else if (!o->quiet)
            printf("%s features: %zu samples of %s -> %s (the output of '%s', %zu bytes a sample)\n", t->prog, d.n,
                   o->dir ? o->dir : o->x, o->output, p->prefix.at, xr);
    }
    free(fx);
    tr_data_free(&d);
    return rc;
}
