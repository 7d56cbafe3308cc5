/* dataset.c - the training program's data: NPY pairs and .npz archives (read into memory, or memory-mapped
 * above a size threshold so data larger than memory trains), image folders as torchvision's ImageFolder
 * lists them (decoded and transformed by image.c), seeded shuffles and splits, and a prefetch thread that
 * loads the next batches while the current one trains. It does not convert dtypes, read .npz members other
 * than x and y, or stream compressed members (those are inflated into memory).
 */
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dataset.c assumes a little-endian host"
#endif

#define MAX_IMAGE_FILE ((size_t)1 << 30)   /* bigger "images" are refused before reading them */
#define MAX_WALK_DEPTH 32                  /* sub-folders inside a class folder (symlink loops end here) */

enum { FILE_UNCHECKED = 0, FILE_GOOD, FILE_BAD };

typedef struct WorkNode {
    ImageWork w;
    struct WorkNode *next;
} WorkNode;

struct DatasetImpl {
    /* arrays: x and y bytes, wherever they live */
    const unsigned char *x_data, *y_data;
    NpyArray xa, ya;                /* .npy sources */
    unsigned char *zip;             /* .npz: the archive, read (malloc) or mapped */
    size_t zip_len;
    bool zip_mapped;
    void *x_owned, *y_owned;        /* inflated x member, aligned copy of y */
    /* several inputs (dataset_open_inputs): each one's rows, packed into x by dataset_batch */
    size_t nparts;
    const unsigned char *part_data[DATASET_MAX_PARTS];
    size_t part_offset[DATASET_MAX_PARTS];
    NpyArray part_a[DATASET_MAX_PARTS];
    void *part_owned[DATASET_MAX_PARTS];
    /* image folders */
    char *paths;                    /* NUL-separated file paths */
    size_t *path_off;               /* [n] */
    int64_t *labels;                /* [n] */
    atomic_uchar *state;            /* [n] FILE_*: bad files found while loading are substituted */
    atomic_size_t skipped_at_load;
    size_t skipped_at_open;
    ImageTransform tf;
    DatasetWarnFn warn;
    void *warn_ctx;
    pthread_mutex_t pool_lock;
    bool pool_lock_ready;
    WorkNode *pool;                 /* idle scratch; one per thread that loads concurrently */
};

/* ------------------------------------------------------------------------ messages */

static void warn(const struct DatasetImpl *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(const struct DatasetImpl *im, const char *fmt, ...)
{
    if (!im->warn)
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    im->warn(im->warn_ctx, msg);
}

const char *dataset_status_name(DatasetStatus st)
{
    switch (st) {
    case DATASET_OK: return "ok";
    case DATASET_EIO: return "I/O error";
    case DATASET_EFORMAT: return "malformed data";
    case DATASET_EUNSUPPORTED: return "unsupported data";
    case DATASET_ENOMEM: return "out of memory";
    case DATASET_EINVAL: return "invalid argument";
    }
    return "?";
}

static DatasetStatus from_npy(NpyStatus st)
{
    switch (st) {
    case NPY_OK: return DATASET_OK;
    case NPY_EIO: return DATASET_EIO;
    case NPY_EFORMAT: return DATASET_EFORMAT;
    case NPY_EUNSUPPORTED: return DATASET_EUNSUPPORTED;
    case NPY_ENOMEM: return DATASET_ENOMEM;
    }
    return DATASET_EFORMAT;
}

void dataset_options_default(DatasetOptions *o)
{
    memset(o, 0, sizeof *o);
    o->mmap_threshold = DATASET_MMAP_THRESHOLD;
    o->validate_limit = DATASET_VALIDATE_LIMIT;
}

size_t dataset_skipped(const Dataset *ds)
{
    return ds->impl_ ? ds->impl_->skipped_at_open + atomic_load(&ds->impl_->skipped_at_load) : 0;
}

const char *dataset_path(const Dataset *ds, size_t i)
{
    return ds->kind == DATASET_IMAGES && ds->impl_ && i < ds->n ? ds->impl_->paths + ds->impl_->path_off[i] : NULL;
}

/* ------------------------------------------------------------------------ common */

static DatasetStatus begin(Dataset *ds, const char *source, const DatasetOptions *o, const ErrSink *e)
{
    memset(ds, 0, sizeof *ds);
    ds->impl_ = calloc(1, sizeof *ds->impl_);
    ds->source = strdup(source);
    if (!ds->impl_ || !ds->source)
        return data_fail(e, DATASET_ENOMEM, "out of memory");
    atomic_init(&ds->impl_->skipped_at_load, 0);
    ds->impl_->warn = o->warn;
    ds->impl_->warn_ctx = o->warn_ctx;
    return DATASET_OK;
}

void dataset_close(Dataset *ds)
{
    if (!ds)
        return;
    struct DatasetImpl *im = ds->impl_;
    if (im) {
        npy_free(&im->xa);
        npy_free(&im->ya);
        if (im->zip_mapped)
            munmap(im->zip, im->zip_len);
        else
            free(im->zip);
        free(im->x_owned);
        free(im->y_owned);
        for (size_t k = 0; k < DATASET_MAX_PARTS; k++) {
            npy_free(&im->part_a[k]);
            free(im->part_owned[k]);
        }
        free(im->paths);
        free(im->path_off);
        free(im->labels);
        free(im->state);
        for (WorkNode *w = im->pool, *next; w; w = next) {
            next = w->next;
            image_work_free(&w->w);
            free(w);
        }
        if (im->pool_lock_ready)
            pthread_mutex_destroy(&im->pool_lock);
        free(im);
    }
    for (size_t i = 0; i < ds->nclasses && ds->class_names; i++)
        free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->source);
    memset(ds, 0, sizeof *ds);
}

static void set_sample(DatasetSample *s, RtDType dt, int rank, const size_t *dims)
{
    s->dtype = dt;
    s->rank = rank;
    s->bytes = rt_dtype_size(dt);
    for (int i = 0; i < rank; i++) {
        s->dims[i] = dims[i];
        s->bytes *= dims[i];
    }
}

/* x and y as whole arrays (dtype, rank, dims with the leading N): checks and the per-sample layout. */
static DatasetStatus finish_arrays(Dataset *ds, RtDType xdt, int xrank, const size_t *xdims, RtDType ydt, int yrank,
                                   const size_t *ydims, const char *xname, const char *yname, char *err, size_t errlen)
{
    ErrSink e = {NULL, err, errlen};
    if (xrank < 1)
        return data_fail(&e, DATASET_EFORMAT, "%s is a 0-d array: x needs a leading sample dimension", xname);
    if (yrank < 1)
        return data_fail(&e, DATASET_EFORMAT, "%s is a 0-d array: y needs a leading sample dimension", yname);
    if (ydt != RT_INT64 && ydt != RT_FLOAT)
        return data_fail(&e, DATASET_EUNSUPPORTED,
                    "%s is %s: y must be int64 class indices or float32 targets (save y.astype(np.int64) or "
                    "y.astype(np.float32))", yname, rt_dtype_name(ydt));
    if (xdims[0] != ydims[0])
        return data_fail(&e, DATASET_EFORMAT, "%s has %zu samples but %s has %zu", xname, xdims[0], yname, ydims[0]);
    ds->kind = DATASET_ARRAYS;
    ds->n = xdims[0];
    set_sample(&ds->x, xdt, xrank - 1, xdims + 1);
    set_sample(&ds->y, ydt, yrank - 1, ydims + 1);
    if (ydt == RT_INT64 && yrank == 1)
        ds->labels = (const int64_t *)ds->impl_->y_data;
    return DATASET_OK;
}

/* ------------------------------------------------------------------------ .npy pairs */

static NpyStatus load_npy(const char *path, size_t threshold, NpyArray *a, bool *mapped, char *err, size_t errlen)
{
    struct stat sb;
    *mapped = false;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size >= threshold) {
        NpyStatus st = npy_map(path, a, err, errlen);
        *mapped = st == NPY_OK && a->map_ != NULL;
        return st;
    }
    return npy_read(path, a, err, errlen);
}

static DatasetStatus open_npy_pair(Dataset *ds, const char *x_path, const char *y_path, const DatasetOptions *o,
                                   char *err, size_t errlen)
{
    struct DatasetImpl *im = ds->impl_;
    bool ymapped;
    NpyStatus st = load_npy(x_path, o->mmap_threshold, &im->xa, &ds->mapped, err, errlen);
    if (st == NPY_OK)
        st = load_npy(y_path, SIZE_MAX, &im->ya, &ymapped, err, errlen);
    if (st != NPY_OK)
        return from_npy(st);
    im->x_data = im->xa.data;
    im->y_data = im->ya.data;
    return finish_arrays(ds, im->xa.dtype, im->xa.rank, im->xa.dims, im->ya.dtype, im->ya.rank, im->ya.dims, x_path,
                         y_path, err, errlen);
}

/* ------------------------------------------------------------------------ .npz: ZIP archives of .npy */

/* The archive's bytes into im->zip: mapped from o->mmap_threshold bytes up, else read. */
static DatasetStatus read_archive(Dataset *ds, const char *path, const DatasetOptions *o, const ErrSink *ep)
{
    struct DatasetImpl *im = ds->impl_;
    ErrSink e = *ep;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0)
        return data_fail(&e, DATASET_EIO, "cannot open: %s", strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return data_fail(&e, DATASET_EIO, "not a regular file");
    }
    size_t len = (size_t)sb.st_size;
    if (len >= o->mmap_threshold && len > 0) {
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            im->zip = m;
            im->zip_mapped = true;
        }
    }
    if (!im->zip) {
        im->zip = malloc(len ? len : 1);
        size_t got = 0;
        while (im->zip && got < len) {
            ssize_t r = read(fd, im->zip + got, len - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (!im->zip || got != len) {
            close(fd);
            return data_fail(&e, im->zip ? DATASET_EIO : DATASET_ENOMEM, "cannot read %zu bytes%s%s", len,
                        im->zip ? ": " : "", im->zip ? strerror(errno) : "");
        }
    }
    close(fd);
    im->zip_len = len;
    ds->mapped = im->zip_mapped;
    return DATASET_OK;
}

static DatasetStatus open_npz(Dataset *ds, const char *path, const DatasetOptions *o, char *err, size_t errlen)
{
    struct DatasetImpl *im = ds->impl_;
    ErrSink e = {path, err, errlen};
    DatasetStatus st0 = read_archive(ds, path, o, &e);
    if (st0 != DATASET_OK)
        return st0;
    size_t len = im->zip_len;

    static const char *const want[2][2] = {{"x.npy", "x"}, {"y.npy", "y"}};
    ZipEntry z[2];
    memset(z, 0, sizeof z);
    DatasetStatus st = zip_lookup(im->zip, len, want, z, &e);
    if (st != DATASET_OK)
        return st;
    if (!z[0].found || !z[1].found)
        return data_fail(&e, DATASET_EFORMAT, "the archive has no '%s' member: save it with np.savez(path, x=X, y=Y)",
                    z[0].found ? "y" : "x");
    RtDType dt[2] = {RT_FLOAT, RT_FLOAT};
    int rank[2] = {0, 0};
    size_t dims[2][RT_MAX_RANK], off[2];
    const uint8_t *data[2];
    void *owned[2] = {NULL, NULL};
    for (int k = 0; k < 2 && st == DATASET_OK; k++) {
        st = zip_member(im->zip, len, im->zip_mapped, &z[k], want[k][0], &data[k], &owned[k], &e);
        if (st == DATASET_OK)
            st = npy_member_header(data[k], (size_t)z[k].usize, want[k][0], &dt[k], &rank[k], dims[k], &off[k], &e);
    }
    im->x_owned = owned[0];
    if (st != DATASET_OK) {
        free(owned[1]);
        return st;
    }
    /* y is small: an aligned copy, so labels can be read as int64 */
    size_t ybytes = (size_t)z[1].usize - off[1];
    im->y_owned = malloc(ybytes ? ybytes : 1);
    if (!im->y_owned) {
        free(owned[1]);
        return data_fail(&e, DATASET_ENOMEM, "out of memory");
    }
    memcpy(im->y_owned, data[1] + off[1], ybytes);
    free(owned[1]);
    im->x_data = data[0] + off[0];
    im->y_data = im->y_owned;
    char xname[1100], yname[1100];
    snprintf(xname, sizeof xname, "%s:x", path);
    snprintf(yname, sizeof yname, "%s:y", path);
    return finish_arrays(ds, dt[0], rank[0], dims[0], dt[1], rank[1], dims[1], xname, yname, err, errlen);
}

static bool is_zip(const char *path)
{
    unsigned char m[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t got = fread(m, 1, 4, f);
    fclose(f);
    return got == 4 && m[0] == 'P' && m[1] == 'K' && (m[2] == 3 || m[2] == 5) && m[3] == m[2] + 1;
}

DatasetStatus dataset_open_arrays(Dataset *ds, const char *x_path, const char *y_path, const DatasetOptions *o,
                                  char *err, size_t errlen)
{
    ErrSink e = {x_path, err, errlen};
    DatasetStatus st = begin(ds, x_path, o, &e);
    if (st == DATASET_OK) {
        if (is_zip(x_path))
            st = y_path ? data_fail(&e, DATASET_EINVAL, "an .npz archive holds both x and y: give no separate y file (%s)",
                               y_path)
                        : open_npz(ds, x_path, o, err, errlen);
        else
            st = !y_path ? data_fail(&e, DATASET_EINVAL, "an .npy file holds only x: the y file is missing")
                         : open_npy_pair(ds, x_path, y_path, o, err, errlen);
    }
    if (st != DATASET_OK)
        dataset_close(ds);
    return st;
}

/* ------------------------------------------------------------------------ several inputs */

/* One input (or y) of an archive: its member NAME.npy (or NAME), header parsed; *found false when absent. */
static DatasetStatus npz_part(Dataset *ds, const char *name, bool *found, const uint8_t **data, void **owned,
                              RtDType *dt, int *rank, size_t *dims, const ErrSink *e)
{
    struct DatasetImpl *im = ds->impl_;
    char npy_name[300];
    snprintf(npy_name, sizeof npy_name, "%s.npy", name);
    const char *const want[2][2] = {{npy_name, name}, {npy_name, name}};
    ZipEntry z[2];
    memset(z, 0, sizeof z);
    DatasetStatus st = zip_lookup(im->zip, im->zip_len, want, z, e);
    *found = st == DATASET_OK && z[0].found;
    if (st != DATASET_OK || !*found)
        return st;
    size_t off;
    st = zip_member(im->zip, im->zip_len, im->zip_mapped, &z[0], npy_name, data, owned, e);
    if (st == DATASET_OK)
        st = npy_member_header(*data, (size_t)z[0].usize, npy_name, dt, rank, dims, &off, e);
    if (st == DATASET_OK)
        *data += off;
    return st;
}

static DatasetStatus open_parts(Dataset *ds, size_t nparts, const char *const *names, const char *const *paths,
                                const char *npz, const char *y_path, bool need_y, const DatasetOptions *o, char *err,
                                size_t errlen)
{
    struct DatasetImpl *im = ds->impl_;
    ErrSink e = {npz, err, errlen};
    RtDType dt[DATASET_MAX_PARTS + 1];
    int rank[DATASET_MAX_PARTS + 1];
    size_t dims[DATASET_MAX_PARTS + 1][RT_MAX_RANK] = {{0}};
    char label[DATASET_MAX_PARTS + 1][1100];
    DatasetStatus st;
    if (npz && (st = read_archive(ds, npz, o, &e)) != DATASET_OK)
        return st;
    for (size_t k = 0; k < nparts; k++) {
        if (npz) {
            bool found;
            snprintf(label[k], sizeof label[k], "%s:%s", npz, names[k]);
            if ((st = npz_part(ds, names[k], &found, &im->part_data[k], &im->part_owned[k], &dt[k], &rank[k], dims[k],
                               &e)) != DATASET_OK)
                return st;
            if (!found)
                return data_fail(&e, DATASET_EFORMAT, "the archive has no '%s' member: its keys must be the model's "
                                 "input names (np.savez(path, %s=..., y=...))", names[k], names[k]);
        } else {
            bool mapped;
            ErrSink pe = {NULL, err, errlen};
            snprintf(label[k], sizeof label[k], "%s=%s", names[k], paths[k]);
            NpyStatus ns = load_npy(paths[k], o->mmap_threshold, &im->part_a[k], &mapped, err, errlen);
            if (ns != NPY_OK)
                return from_npy(ns);
            ds->mapped |= mapped;
            im->part_data[k] = im->part_a[k].data;
            dt[k] = im->part_a[k].dtype;
            rank[k] = im->part_a[k].rank;
            memcpy(dims[k], im->part_a[k].dims, sizeof dims[k]);
            (void)pe;
        }
        if (rank[k] < 1)
            return data_fail(&(ErrSink){NULL, err, errlen}, DATASET_EFORMAT, "%s is a 0-d array: an input needs a "
                             "leading sample dimension", label[k]);
        if (dims[k][0] != dims[0][0])
            return data_fail(&(ErrSink){NULL, err, errlen}, DATASET_EFORMAT, "%s has %zu samples but %s has %zu",
                             label[k], dims[k][0], label[0], dims[0][0]);
    }
    /* y: Y.npy, else the archive's y */
    size_t ny = nparts;
    bool has_y = false;
    const unsigned char *ydata = NULL;
    if (y_path) {
        bool ymapped;
        NpyStatus ns = load_npy(y_path, SIZE_MAX, &im->ya, &ymapped, err, errlen);
        if (ns != NPY_OK)
            return from_npy(ns);
        ydata = im->ya.data;
        dt[ny] = im->ya.dtype;
        rank[ny] = im->ya.rank;
        memcpy(dims[ny], im->ya.dims, sizeof dims[ny]);
        snprintf(label[ny], sizeof label[ny], "%s", y_path);
        has_y = true;
    } else if (npz) {
        const uint8_t *data;
        void *owned = NULL;
        if ((st = npz_part(ds, "y", &has_y, &data, &owned, &dt[ny], &rank[ny], dims[ny], &e)) != DATASET_OK) {
            free(owned);
            return st;
        }
        if (has_y) {    /* an aligned copy, so labels can be read as int64 */
            size_t yb = rt_dtype_size(dt[ny]);
            for (int i = 0; i < rank[ny]; i++)
                yb *= dims[ny][i];
            im->y_owned = malloc(yb ? yb : 1);
            if (im->y_owned)
                memcpy(im->y_owned, data, yb);
            free(owned);
            if (!im->y_owned)
                return data_fail(&e, DATASET_ENOMEM, "out of memory");
            ydata = im->y_owned;
            snprintf(label[ny], sizeof label[ny], "%s:y", npz);
        }
    }
    if (!has_y && need_y)
        return npz ? data_fail(&e, DATASET_EFORMAT, "the archive has no 'y' member (the targets): save it with "
                               "np.savez(path, %s=..., y=Y) or give the targets' file", names[0])
                   : data_fail(&(ErrSink){NULL, err, errlen}, DATASET_EINVAL, "the targets' file is missing");
    ds->kind = DATASET_ARRAYS;
    ds->n = dims[0][0];
    size_t packed = 0;
    for (size_t k = 0; k < nparts; k++) {
        set_sample(&ds->part[k], dt[k], rank[k] - 1, dims[k] + 1);
        im->part_offset[k] = packed;
        packed += (ds->part[k].bytes + 7) / 8 * 8;
    }
    ds->nparts = im->nparts = nparts;
    set_sample(&ds->x, RT_UINT8, 1, &packed);
    if (has_y) {
        ErrSink ye = {NULL, err, errlen};
        if (rank[ny] < 1)
            return data_fail(&ye, DATASET_EFORMAT, "%s is a 0-d array: y needs a leading sample dimension", label[ny]);
        if (dt[ny] != RT_INT64 && dt[ny] != RT_FLOAT)
            return data_fail(&ye, DATASET_EUNSUPPORTED, "%s is %s: y must be int64 class indices or float32 targets "
                             "(save y.astype(np.int64) or y.astype(np.float32))", label[ny], rt_dtype_name(dt[ny]));
        if (dims[ny][0] != ds->n)
            return data_fail(&ye, DATASET_EFORMAT, "%s has %zu samples but %s has %zu", label[0], ds->n, label[ny],
                             dims[ny][0]);
        set_sample(&ds->y, dt[ny], rank[ny] - 1, dims[ny] + 1);
        im->y_data = ydata;
        if (dt[ny] == RT_INT64 && rank[ny] == 1)
            ds->labels = (const int64_t *)ydata;
    } else {
        memset(&ds->y, 0, sizeof ds->y);
        ds->y.dtype = RT_FLOAT;
    }
    return DATASET_OK;
}

DatasetStatus dataset_open_inputs(Dataset *ds, size_t nparts, const char *const *names, const char *const *paths,
                                  const char *npz, const char *y_path, bool need_y, const DatasetOptions *o, char *err,
                                  size_t errlen)
{
    ErrSink e = {npz, err, errlen};
    if (nparts < 1 || nparts > DATASET_MAX_PARTS || (!npz && !paths))
        return data_fail(&e, DATASET_EINVAL, "%zu inputs: 1 to %d, each named, from files or an archive", nparts,
                         DATASET_MAX_PARTS);
    DatasetStatus st = begin(ds, npz ? npz : paths[0], o, &e);
    if (st == DATASET_OK)
        st = open_parts(ds, nparts, names, paths, npz, y_path, need_y, o, err, errlen);
    if (st != DATASET_OK)
        dataset_close(ds);
    return st;
}

DatasetStatus dataset_check_labels(const Dataset *ds, int64_t nclasses, char *err, size_t errlen)
{
    ErrSink e = {ds->source, err, errlen};
    if (!ds->labels)
        return data_fail(&e, DATASET_EINVAL, "y holds %s values of shape per sample rank %d, not int64 class indices",
                    rt_dtype_name(ds->y.dtype), ds->y.rank);
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= nclasses)
            return data_fail(&e, DATASET_EFORMAT, "label %lld of sample %zu is out of range: %lld classes (0..%lld)",
                        (long long)ds->labels[i], i, (long long)nclasses, (long long)nclasses - 1);
    return DATASET_OK;
}

/* ------------------------------------------------------------------------ image folders */

typedef struct {
    char *dir;      /* the file's folder relative to its class folder ("" for the class folder itself) */
    char *name;
} FileEnt;

typedef struct {
    FileEnt *v;
    size_t n, cap;
    size_t ignored;  /* image files of formats we do not decode */
} FileList;

static int cmp_fileent(const void *a, const void *b)
{
    const FileEnt *x = a, *y = b;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    for (; dot && *exts; exts++)
        if (strcasecmp(dot, *exts) == 0)
            return true;
    return false;
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    char *s = malloc(la + lb + lc + 3);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    size_t k = la;
    if (la && lb)
        s[k++] = '/';
    memcpy(s + k, b, lb);
    k += lb;
    if (c) {
        if (k)
            s[k++] = '/';
        memcpy(s + k, c, lc);
        k += lc;
    }
    s[k] = 0;
    return s;
}

/* torchvision's os.walk(followlinks=True) of one class folder: every file with an image extension, in any
 * sub-folder; sorted later by (folder, name). */
static DatasetStatus walk(const char *root, const char *rel, int depth, FileList *fl, const ErrSink *e)
{
    static const char *const ours[] = {".png", ".jpg", ".jpeg", NULL};
    static const char *const others[] = {".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", NULL};
    if (depth > MAX_WALK_DEPTH)
        return data_fail(e, DATASET_EFORMAT, "%s/%s: folders nested deeper than %d (a symlink loop?)", root, rel,
                    MAX_WALK_DEPTH);
    char *here = join(root, rel, NULL);
    DIR *d = here ? opendir(here) : NULL;
    if (!d) {
        DatasetStatus st = data_fail(e, here ? DATASET_EIO : DATASET_ENOMEM, "cannot list %s: %s", here ? here : rel,
                                strerror(errno));
        free(here);
        return st;
    }
    DatasetStatus st = DATASET_OK;
    struct dirent *de;
    while (st == DATASET_OK && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *full = join(here, de->d_name, NULL);
        struct stat sb;
        if (!full) {
            st = data_fail(e, DATASET_ENOMEM, "out of memory");
        } else if (stat(full, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            char *sub = join(rel, de->d_name, NULL);
            st = sub ? walk(root, sub, depth + 1, fl, e) : data_fail(e, DATASET_ENOMEM, "out of memory");
            free(sub);
        } else if (has_ext(de->d_name, ours)) {
            if (fl->n == fl->cap) {
                size_t cap = fl->cap ? 2 * fl->cap : 256;
                FileEnt *v = realloc(fl->v, cap * sizeof *v);
                if (!v)
                    st = data_fail(e, DATASET_ENOMEM, "out of memory");
                else {
                    fl->v = v;
                    fl->cap = cap;
                }
            }
            if (st == DATASET_OK) {
                fl->v[fl->n].dir = strdup(rel);
                fl->v[fl->n].name = strdup(de->d_name);
                if (!fl->v[fl->n].dir || !fl->v[fl->n].name) {
                    free(fl->v[fl->n].dir);
                    free(fl->v[fl->n].name);
                    st = data_fail(e, DATASET_ENOMEM, "out of memory");
                } else {
                    fl->n++;
                }
            }
        } else if (has_ext(de->d_name, others)) {
            fl->ignored++;
        }
        free(full);
    }
    closedir(d);
    free(here);
    return st;
}

static void filelist_clear(FileList *fl)
{
    for (size_t i = 0; i < fl->n; i++) {
        free(fl->v[i].dir);
        free(fl->v[i].name);
    }
    fl->n = 0;
}

/* The sorted names of the sub-folders of dir (torchvision's find_classes). */
static DatasetStatus list_classes(const char *dir, char ***names, size_t *count, const ErrSink *e)
{
    DIR *d = opendir(dir);
    if (!d)
        return data_fail(e, DATASET_EIO, "cannot list the folder: %s", strerror(errno));
    char **v = NULL;
    size_t n = 0, cap = 0;
    DatasetStatus st = DATASET_OK;
    struct dirent *de;
    while (st == DATASET_OK && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *full = join(dir, de->d_name, NULL);
        struct stat sb;
        if (!full) {
            st = data_fail(e, DATASET_ENOMEM, "out of memory");
        } else if (stat(full, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **nv = realloc(v, cap * sizeof *nv);
                if (!nv)
                    st = data_fail(e, DATASET_ENOMEM, "out of memory");
                else
                    v = nv;
            }
            if (st == DATASET_OK && !(v[n++] = strdup(de->d_name)))
                st = data_fail(e, DATASET_ENOMEM, "out of memory");
        }
        free(full);
    }
    closedir(d);
    if (st == DATASET_OK && n == 0)
        st = data_fail(e, DATASET_EFORMAT, "no class folders: an image folder holds one sub-folder per class "
                  "(DIR/<class>/<image>)");
    if (st != DATASET_OK) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return st;
    }
    qsort(v, n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return DATASET_OK;
}

/* Read a whole file into w->file. */
static ImageStatus read_file(const char *path, ImageWork *w, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return IMAGE_ECORRUPT;
    }
    size_t size = (size_t)sb.st_size;
    if (size > MAX_IMAGE_FILE) {
        close(fd);
        snprintf(err, errlen, "%zu bytes is too large for an image", size);
        return IMAGE_EUNSUPPORTED;
    }
    if (size + 1 > w->file_cap) {
        void *p = realloc(w->file, size + 1);
        if (!p) {
            close(fd);
            snprintf(err, errlen, "cannot allocate %zu bytes", size);
            return IMAGE_ENOMEM;
        }
        w->file = p;
        w->file_cap = size + 1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, w->file + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        snprintf(err, errlen, "read failed: %s", got < size ? "short read" : strerror(errno));
        return IMAGE_ECORRUPT;
    }
    *len = size;
    return IMAGE_OK;
}

/* Sample i of an image folder into out[C*H*W]. */
static ImageStatus load_image(const Dataset *ds, size_t i, uint64_t epoch, uint64_t aug_index, float *out,
                              ImageWork *w, char *err, size_t errlen)
{
    const struct DatasetImpl *im = ds->impl_;
    size_t len = 0;
    ImageStatus st = read_file(im->paths + im->path_off[i], w, &len, err, errlen);
    if (st == IMAGE_OK)
        st = image_transform(&im->tf, w->file, len, epoch, aug_index, out, w, err, errlen);
    return st;
}

static ImageWork *work_acquire(struct DatasetImpl *im)
{
    pthread_mutex_lock(&im->pool_lock);
    WorkNode *w = im->pool;
    if (w)
        im->pool = w->next;
    pthread_mutex_unlock(&im->pool_lock);
    if (!w)
        w = calloc(1, sizeof *w);
    return w ? &w->w : NULL;
}

static void work_release(struct DatasetImpl *im, ImageWork *w)
{
    WorkNode *node = (WorkNode *)w;   /* w is the first member */
    pthread_mutex_lock(&im->pool_lock);
    node->next = im->pool;
    im->pool = node;
    pthread_mutex_unlock(&im->pool_lock);
}

/* Decoding every file of a small folder when it is opened, on a few threads. */
typedef struct {
    const Dataset *ds;
    atomic_size_t next;
    unsigned char *ok;       /* [n] */
    char **why;              /* [n] messages of the bad ones */
} Validation;

/* image_check of every file: a decodable file that still fails in the transform (an image so thin that
 * Resize makes it empty) is left to the substitution when loading. */
static void *validate_thread(void *arg)
{
    Validation *v = arg;
    const struct DatasetImpl *im = v->ds->impl_;
    ImageWork w;
    memset(&w, 0, sizeof w);
    for (size_t i; (i = atomic_fetch_add(&v->next, 1)) < v->ds->n;) {
        char msg[512];
        size_t len = 0;
        v->ok[i] = read_file(im->paths + im->path_off[i], &w, &len, msg, sizeof msg) == IMAGE_OK &&
                   image_check(w.file, len, im->tf.channels, &w, msg, sizeof msg) == IMAGE_OK;
        if (!v->ok[i])
            v->why[i] = strdup(msg);
    }
    image_work_free(&w);
    return NULL;
}

static DatasetStatus validate_all(Dataset *ds, int threads, const ErrSink *e)
{
    struct DatasetImpl *im = ds->impl_;
    Validation v = {.ds = ds, .ok = calloc(ds->n, 1), .why = calloc(ds->n, sizeof(char *))};
    atomic_init(&v.next, 0);
    if (!v.ok || !v.why) {
        free(v.ok);
        free(v.why);
        return data_fail(e, DATASET_ENOMEM, "out of memory");
    }
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    }
    if ((size_t)threads > ds->n)
        threads = (int)ds->n;
    pthread_t tid[8];
    int started = 0;
    for (int t = 1; t < threads && t < 8; t++)
        if (pthread_create(&tid[started], NULL, validate_thread, &v) == 0)
            started++;
    validate_thread(&v);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    /* drop the bad files, keeping the order; warnings in file order */
    size_t kept = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (v.ok[i]) {
            im->path_off[kept] = im->path_off[i];
            im->labels[kept++] = im->labels[i];
        } else {
            warn(im, "%s: skipped: %s", im->paths + im->path_off[i], v.why[i] ? v.why[i] : "out of memory");
            free(v.why[i]);
        }
    }
    im->skipped_at_open = ds->n - kept;
    ds->n = kept;
    for (size_t i = 0; i < kept; i++)
        atomic_store_explicit(&im->state[i], FILE_GOOD, memory_order_relaxed);
    free(v.ok);
    free(v.why);
    if (kept == 0)
        return data_fail(e, DATASET_EFORMAT, "none of its %zu images could be read", im->skipped_at_open);
    return DATASET_OK;
}

DatasetStatus dataset_open_images(Dataset *ds, const char *dir, const DatasetOptions *o, char *err, size_t errlen)
{
    ErrSink e = {dir, err, errlen};
    const ImageTransform *tf = &o->transform;
    DatasetStatus st = begin(ds, dir, o, &e);
    if (st != DATASET_OK) {
        dataset_close(ds);
        return st;
    }
    struct DatasetImpl *im = ds->impl_;
    im->tf = *tf;
    if (tf->channels != 1 && tf->channels != 3)
        st = data_fail(&e, DATASET_EUNSUPPORTED, "the model takes %zu channels: image folders give 1 (grayscale) or 3 (RGB)",
                  tf->channels);
    else if (!tf->height || !tf->width || tf->height > 65536 || tf->width > 65536)
        st = data_fail(&e, DATASET_EINVAL, "output size %zux%zu is out of range", tf->height, tf->width);
    for (size_t c = 0; st == DATASET_OK && c < tf->channels; c++)
        if (!(tf->std[c] != 0.0f) || !isfinite(tf->std[c]) || !isfinite(tf->mean[c]))
            st = data_fail(&e, DATASET_EINVAL, "std[%zu] = %g and mean[%zu] = %g: std must be finite and non-zero", c,
                      (double)tf->std[c], c, (double)tf->mean[c]);
    if (st == DATASET_OK && pthread_mutex_init(&im->pool_lock, NULL) == 0)
        im->pool_lock_ready = true;
    else if (st == DATASET_OK)
        st = data_fail(&e, DATASET_ENOMEM, "cannot create a mutex");

    char **folders = NULL;
    size_t nfolders = 0;
    if (st == DATASET_OK)
        st = list_classes(dir, &folders, &nfolders, &e);
    /* class indices: the folder's own sorted names, or the names given (a validation folder uses the
     * training folder's list, so the same name gets the same index) */
    int64_t *class_of = st == DATASET_OK ? calloc(nfolders, sizeof *class_of) : NULL;
    if (st == DATASET_OK && !class_of)
        st = data_fail(&e, DATASET_ENOMEM, "out of memory");
    if (st == DATASET_OK) {
        size_t nc = o->classes ? o->nclasses : nfolders;
        ds->class_names = calloc(nc ? nc : 1, sizeof *ds->class_names);
        if (!ds->class_names)
            st = data_fail(&e, DATASET_ENOMEM, "out of memory");
        for (size_t c = 0; st == DATASET_OK && c < nc; c++) {
            if (!(ds->class_names[c] = strdup(o->classes ? o->classes[c] : folders[c])))
                st = data_fail(&e, DATASET_ENOMEM, "out of memory");
            ds->nclasses = c + 1;
        }
        for (size_t f = 0; st == DATASET_OK && f < nfolders; f++) {
            class_of[f] = (int64_t)f;
            if (o->classes) {
                class_of[f] = -1;
                for (size_t c = 0; c < o->nclasses && class_of[f] < 0; c++)
                    if (strcmp(o->classes[c], folders[f]) == 0)
                        class_of[f] = (int64_t)c;
                if (class_of[f] < 0)
                    st = data_fail(&e, DATASET_EFORMAT, "class folder '%s' is not one of the %zu training classes",
                              folders[f], o->nclasses);
            }
        }
    }

    /* the files, class by class, each class sorted by (sub-folder, name) as ImageFolder does */
    FileList fl = {0};
    size_t n = 0, bytes = 0, cap_bytes = 0, cap_files = 0;
    for (size_t f = 0; st == DATASET_OK && f < nfolders; f++) {
        char *root = join(dir, folders[f], NULL);
        filelist_clear(&fl);
        st = root ? walk(root, "", 0, &fl, &e) : data_fail(&e, DATASET_ENOMEM, "out of memory");
        if (st == DATASET_OK && fl.n == 0)
            st = data_fail(&e, DATASET_EFORMAT, "class folder '%s' holds no .png, .jpg or .jpeg file", folders[f]);
        if (st == DATASET_OK) {
            qsort(fl.v, fl.n, sizeof *fl.v, cmp_fileent);
            if (n + fl.n > cap_files) {
                size_t cap = (n + fl.n) * 2;
                size_t *po = realloc(im->path_off, cap * sizeof *po);
                if (po)
                    im->path_off = po;
                int64_t *lb = po ? realloc(im->labels, cap * sizeof *lb) : NULL;
                if (lb)
                    im->labels = lb;
                if (!po || !lb)
                    st = data_fail(&e, DATASET_ENOMEM, "out of memory");
                else
                    cap_files = cap;
            }
        }
        for (size_t i = 0; st == DATASET_OK && i < fl.n; i++) {
            char *rel = join(root, fl.v[i].dir, fl.v[i].name);
            size_t len = rel ? strlen(rel) + 1 : 0;
            if (rel && bytes + len > cap_bytes) {
                size_t cap = 2 * (bytes + len) + 4096;
                char *np = realloc(im->paths, cap);
                if (np) {
                    im->paths = np;
                    cap_bytes = cap;
                }
            }
            if (!rel || bytes + len > cap_bytes) {
                free(rel);
                st = data_fail(&e, DATASET_ENOMEM, "out of memory");
                break;
            }
            memcpy(im->paths + bytes, rel, len);
            free(rel);
            im->path_off[n] = bytes;
            im->labels[n++] = class_of[f];
            bytes += len;
        }
        free(root);
    }
    filelist_clear(&fl);
    free(fl.v);
    for (size_t f = 0; f < nfolders; f++)
        free(folders[f]);
    free(folders);
    free(class_of);
    if (st == DATASET_OK && fl.ignored)
        warn(im, "%s: %zu image files of other formats (.ppm .bmp .pgm .tif .tiff .webp) ignored: only PNG and JPEG "
             "are read", dir, fl.ignored);
    ds->ignored = fl.ignored;
    ds->n = n;
    if (st == DATASET_OK && !(im->state = calloc(n, sizeof *im->state)))
        st = data_fail(&e, DATASET_ENOMEM, "out of memory");
    ds->kind = DATASET_IMAGES;
    size_t xdims[3] = {tf->channels, tf->height, tf->width};
    set_sample(&ds->x, RT_FLOAT, 3, xdims);
    set_sample(&ds->y, RT_INT64, 0, NULL);
    ds->labels = im->labels;
    if (st == DATASET_OK && n <= o->validate_limit)
        st = validate_all(ds, o->threads, &e);
    if (st != DATASET_OK)
        dataset_close(ds);
    return st;
}

/* ------------------------------------------------------------------------ batches */

static DatasetStatus image_batch(const Dataset *ds, const size_t *indices, size_t count, uint64_t epoch, float *x,
                                 int64_t *y, const ErrSink *e)
{
    struct DatasetImpl *im = ds->impl_;
    ImageWork *w = work_acquire(im);
    if (!w)
        return data_fail(e, DATASET_ENOMEM, "out of memory");
    size_t per = ds->x.bytes / sizeof(float);
    DatasetStatus st = DATASET_OK;
    float *scratch = NULL;
    for (size_t k = 0; k < count && st == DATASET_OK; k++) {
        size_t i = indices[k], j = i, tries = 0;
        float *out = x ? x + k * per : NULL;
        if (!out && !scratch && !(scratch = malloc(ds->x.bytes)))
            st = data_fail(e, DATASET_ENOMEM, "out of memory");
        /* a file that fails now is replaced by the next readable one (in dataset order, wrapping), with its
         * own label: the same substitute every time, whichever thread loads it */
        while (st == DATASET_OK) {
            if (atomic_load_explicit(&im->state[j], memory_order_relaxed) != FILE_BAD) {
                char msg[512];
                if (load_image(ds, j, epoch, i, out ? out : scratch, w, msg, sizeof msg) == IMAGE_OK) {
                    atomic_store_explicit(&im->state[j], FILE_GOOD, memory_order_relaxed);
                    break;
                }
                if (atomic_exchange(&im->state[j], FILE_BAD) != FILE_BAD) {
                    atomic_fetch_add(&im->skipped_at_load, 1);
                    warn(im, "%s: skipped (sample %zu is replaced by the next readable one): %s",
                         im->paths + im->path_off[j], j, msg);
                }
            }
            j = j + 1 == ds->n ? 0 : j + 1;
            if (++tries == ds->n)
                st = data_fail(e, DATASET_EFORMAT, "none of its %zu images could be read", ds->n);
        }
        if (st == DATASET_OK && y)
            y[k] = im->labels[j];
    }
    free(scratch);
    work_release(im, w);
    return st;
}

DatasetStatus dataset_batch(const Dataset *ds, const size_t *indices, size_t count, uint64_t epoch, void *x_out,
                            void *y_out, char *err, size_t errlen)
{
    ErrSink e = {ds->source, err, errlen};
    for (size_t k = 0; k < count; k++)
        if (indices[k] >= ds->n)
            return data_fail(&e, DATASET_EINVAL, "sample index %zu is out of range (%zu samples)", indices[k], ds->n);
    if (ds->kind == DATASET_IMAGES)
        return image_batch(ds, indices, count, epoch, x_out, y_out, &e);
    const struct DatasetImpl *im = ds->impl_;
    size_t xb = ds->x.bytes, yb = ds->y.bytes;
    for (size_t k = 0; k < count && im->nparts; k++) {     /* several inputs: packed rows */
        unsigned char *row = (unsigned char *)x_out + k * xb;
        if (x_out)
            memset(row, 0, xb);
        for (size_t j = 0; x_out && j < im->nparts; j++)
            memcpy(row + im->part_offset[j], im->part_data[j] + indices[k] * ds->part[j].bytes, ds->part[j].bytes);
        if (y_out && yb)
            memcpy((unsigned char *)y_out + k * yb, im->y_data + indices[k] * yb, yb);
    }
    for (size_t k = 0; k < count && !im->nparts; k++) {
        if (x_out)
            memcpy((unsigned char *)x_out + k * xb, im->x_data + indices[k] * xb, xb);
        if (y_out)
            memcpy((unsigned char *)y_out + k * yb, im->y_data + indices[k] * yb, yb);
    }
    return DATASET_OK;
}

/* ------------------------------------------------------------------------ order: shuffles and splits */

uint64_t dataset_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t dataset_shuffle_state(uint64_t seed, uint64_t epoch)
{
    return (seed << 20) + epoch;
}

void dataset_shuffle(size_t *order, size_t n, uint64_t state)
{
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)(dataset_splitmix64(&state) % (uint64_t)(i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

typedef struct {
    int64_t label;
    size_t rank;   /* position in the seeded permutation */
    size_t index;
} SplitKey;

static int cmp_split(const void *a, const void *b)
{
    const SplitKey *x = a, *y = b;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

DatasetStatus dataset_split(size_t n, const int64_t *labels, double fraction, uint64_t seed, size_t *train,
                            size_t *ntrain, size_t *val, size_t *nval, char *err, size_t errlen)
{
    ErrSink e = {"--val-split", err, errlen};
    if (!(fraction > 0.0 && fraction < 1.0))
        return data_fail(&e, DATASET_EINVAL, "the fraction %g is not between 0 and 1", fraction);
    size_t *perm = malloc((n ? n : 1) * sizeof *perm);
    SplitKey *keys = labels ? malloc((n ? n : 1) * sizeof *keys) : NULL;
    if (!perm || (labels && !keys)) {
        free(perm);
        free(keys);
        return data_fail(&e, DATASET_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    dataset_shuffle(perm, n, dataset_shuffle_state(seed, 0));
    size_t nv = 0, nt = 0;
    if (!labels) {
        size_t k = (size_t)ceil(fraction * (double)n);
        if (k >= n)
            k = n ? n - 1 : 0;
        for (size_t i = 0; i < n; i++)
            *(i < k ? &val[nv++] : &train[nt++]) = perm[i];
    } else {
        for (size_t r = 0; r < n; r++)
            keys[r] = (SplitKey){labels[perm[r]], r, perm[r]};
        qsort(keys, n, sizeof *keys, cmp_split);
        for (size_t a = 0, b; a < n; a = b) {
            for (b = a; b < n && keys[b].label == keys[a].label; b++)
                ;
            size_t nc = b - a, k = (size_t)floor(fraction * (double)nc + 0.5);
            if (k >= nc)
                k = nc - 1;
            for (size_t i = a; i < b; i++)
                *(i - a < k ? &val[nv++] : &train[nt++]) = keys[i].index;
        }
    }
    free(perm);
    free(keys);
    qsort(val, nv, sizeof *val, cmp_size);
    qsort(train, nt, sizeof *train, cmp_size);
    *ntrain = nt;
    *nval = nv;
    if (nv == 0)
        return data_fail(&e, DATASET_EINVAL, "a fraction %g of %zu samples%s leaves no validation sample", fraction, n,
                    labels ? " (per class)" : "");
    return DATASET_OK;
}

/* ------------------------------------------------------------------------ the prefetcher */

struct Prefetcher {
    const Dataset *ds;
    size_t max_batch, nslots;
    unsigned char **x, **y;      /* [nslots] batch buffers */
    size_t *counts;              /* [nslots] rows in each */
    size_t *order, order_cap;    /* the current pass */
    size_t n, batch, nbatches;
    uint64_t epoch;
    size_t produced, consumed, freed;
    bool busy, quit, threaded;
    DatasetStatus status;        /* the worker's first failure in this pass and the batch it hit */
    size_t failed_batch;
    char msg[1024];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, ready, idle;
};

static DatasetStatus load_batch(Prefetcher *pf, size_t b, char *err, size_t errlen)
{
    size_t at = b * pf->batch, rows = pf->n - at < pf->batch ? pf->n - at : pf->batch, s = b % pf->nslots;
    pf->counts[s] = rows;
    return dataset_batch(pf->ds, pf->order + at, rows, pf->epoch, pf->x[s], pf->y[s], err, errlen);
}

static void *prefetch_thread(void *arg)
{
    Prefetcher *pf = arg;
    char msg[1024];
    pthread_mutex_lock(&pf->lock);
    for (;;) {
        while (!pf->quit && (pf->produced >= pf->nbatches || pf->status != DATASET_OK ||
                             pf->produced - pf->freed >= pf->nslots))
            pthread_cond_wait(&pf->work, &pf->lock);
        if (pf->quit)
            break;
        size_t b = pf->produced;
        pf->busy = true;
        pthread_mutex_unlock(&pf->lock);
        DatasetStatus st = load_batch(pf, b, msg, sizeof msg);
        pthread_mutex_lock(&pf->lock);
        pf->busy = false;
        if (st != DATASET_OK) {
            pf->status = st;
            pf->failed_batch = b;
            snprintf(pf->msg, sizeof pf->msg, "%s", msg);
        } else {
            pf->produced = b + 1;
        }
        pthread_cond_broadcast(&pf->ready);
        pthread_cond_broadcast(&pf->idle);
    }
    pthread_mutex_unlock(&pf->lock);
    return NULL;
}

DatasetStatus prefetcher_open(Prefetcher **out, const Dataset *ds, size_t max_batch, size_t depth, char *err,
                              size_t errlen)
{
    ErrSink e = {ds->source, err, errlen};
    *out = NULL;
    if (max_batch == 0)
        return data_fail(&e, DATASET_EINVAL, "batch size 0");
    Prefetcher *pf = calloc(1, sizeof *pf);
    if (!pf)
        return data_fail(&e, DATASET_ENOMEM, "out of memory");
    pf->ds = ds;
    pf->max_batch = max_batch;
    pf->threaded = depth > 0;
    pf->nslots = depth + 1;
    pf->x = calloc(pf->nslots, sizeof *pf->x);
    pf->y = calloc(pf->nslots, sizeof *pf->y);
    pf->counts = calloc(pf->nslots, sizeof *pf->counts);
    bool ok = pf->x && pf->y && pf->counts && ds->x.bytes <= SIZE_MAX / max_batch;
    for (size_t s = 0; ok && s < pf->nslots; s++) {
        /* 64-byte aligned rows for the kernels that read the batch in place */
        size_t xb = (max_batch * ds->x.bytes + 63) / 64 * 64, yb = (max_batch * ds->y.bytes + 63) / 64 * 64;
        pf->x[s] = aligned_alloc(64, xb ? xb : 64);
        pf->y[s] = aligned_alloc(64, yb ? yb : 64);
        ok = pf->x[s] && pf->y[s];
    }
    if (ok && pf->threaded) {
        ok = pthread_mutex_init(&pf->lock, NULL) == 0;
        ok = ok && pthread_cond_init(&pf->work, NULL) == 0 && pthread_cond_init(&pf->ready, NULL) == 0 &&
             pthread_cond_init(&pf->idle, NULL) == 0;
        ok = ok && pthread_create(&pf->thread, NULL, prefetch_thread, pf) == 0;
        if (!ok)
            pf->threaded = false;
    }
    if (!ok) {
        prefetcher_close(pf);
        return data_fail(&e, DATASET_ENOMEM, "cannot set up the prefetcher (%zu batches of %zu samples)", depth + 1,
                    max_batch);
    }
    *out = pf;
    return DATASET_OK;
}

DatasetStatus prefetcher_start(Prefetcher *pf, const size_t *order, size_t n, size_t batch, uint64_t epoch, char *err,
                               size_t errlen)
{
    ErrSink e = {pf->ds->source, err, errlen};
    if (batch == 0 || batch > pf->max_batch)
        return data_fail(&e, DATASET_EINVAL, "batch %zu is not in 1..%zu", batch, pf->max_batch);
    if (pf->threaded) {
        pthread_mutex_lock(&pf->lock);
        pf->nbatches = 0;   /* the worker takes nothing new, and finishes what it is loading */
        while (pf->busy)
            pthread_cond_wait(&pf->idle, &pf->lock);
    }
    DatasetStatus st = DATASET_OK;
    if (n > pf->order_cap) {
        size_t *o = realloc(pf->order, n * sizeof *o);
        if (!o)
            st = data_fail(&e, DATASET_ENOMEM, "out of memory");
        else {
            pf->order = o;
            pf->order_cap = n;
        }
    }
    if (st == DATASET_OK) {
        if (n)
            memcpy(pf->order, order, n * sizeof *order);
        pf->n = n;
        pf->batch = batch;
        pf->epoch = epoch;
        pf->nbatches = (n + batch - 1) / batch;
        pf->produced = pf->consumed = pf->freed = 0;
        pf->status = DATASET_OK;
    }
    if (pf->threaded) {
        pthread_cond_broadcast(&pf->work);
        pthread_mutex_unlock(&pf->lock);
    }
    return st;
}

DatasetStatus prefetcher_next(Prefetcher *pf, void **x, void **y, size_t *count, char *err, size_t errlen)
{
    *x = *y = NULL;
    *count = 0;
    if (!pf->threaded) {
        if (pf->consumed >= pf->nbatches)
            return DATASET_OK;
        size_t b = pf->consumed++;
        DatasetStatus st = load_batch(pf, b, err, errlen);
        if (st != DATASET_OK)
            return st;
        *x = pf->x[b % pf->nslots];
        *y = pf->y[b % pf->nslots];
        *count = pf->counts[b % pf->nslots];
        return DATASET_OK;
    }
    pthread_mutex_lock(&pf->lock);
    pf->freed = pf->consumed;   /* the batch handed out last time is the caller's no more */
    pthread_cond_broadcast(&pf->work);
    DatasetStatus st = DATASET_OK;
    if (pf->consumed < pf->nbatches) {
        size_t b = pf->consumed;
        while (pf->produced <= b && !(pf->status != DATASET_OK && pf->failed_batch == b))
            pthread_cond_wait(&pf->ready, &pf->lock);
        if (pf->produced > b) {
            size_t s = b % pf->nslots;
            *x = pf->x[s];
            *y = pf->y[s];
            *count = pf->counts[s];
            pf->consumed = b + 1;
        } else {
            st = pf->status;
            if (err && errlen)
                snprintf(err, errlen, "%s", pf->msg);
        }
    }
    pthread_mutex_unlock(&pf->lock);
    return st;
}

void prefetcher_close(Prefetcher *pf)
{
    if (!pf)
        return;
    if (pf->threaded) {
        pthread_mutex_lock(&pf->lock);
        pf->quit = true;
        pthread_cond_broadcast(&pf->work);
        pthread_mutex_unlock(&pf->lock);
        pthread_join(pf->thread, NULL);
        pthread_mutex_destroy(&pf->lock);
        pthread_cond_destroy(&pf->work);
        pthread_cond_destroy(&pf->ready);
        pthread_cond_destroy(&pf->idle);
    }
    for (size_t s = 0; s < pf->nslots; s++) {
        if (pf->x)
            free(pf->x[s]);
        if (pf->y)
            free(pf->y[s]);
    }
    free(pf->x);
    free(pf->y);
    free(pf->counts);
    free(pf->order);
    free(pf);
}
