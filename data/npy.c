/* npy.c - our own reader and writer of NumPy .npy files (format 1.0/2.0/3.0, C order, little-endian)
 * for reference data, model inputs and data loaders. It does not read .npz archives, Fortran-order,
 * big-endian, structured, string or object arrays: those get a clear NPY_EUNSUPPORTED message.
 */
#include "data.h"

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_PREAMBLE_V1 10          /* magic 6, version 2, header length 2 */
#define NPY_PREAMBLE_V2 12          /* ... header length 4 */
#define NPY_MAX_HEADER (1u << 20)   /* NumPy itself refuses headers past 10 kB by default */

static NpyStatus fail(const ErrSink *e, NpyStatus st, const char *fmt, ...)
{
    if (e->err && e->errlen) {
        int k = snprintf(e->err, e->errlen, "%s: ", e->name);
        if (k >= 0 && (size_t)k < e->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(e->err + k, e->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

const char *npy_status_name(NpyStatus st)
{
    switch (st) {
    case NPY_OK: return "ok";
    case NPY_EIO: return "I/O error";
    case NPY_EFORMAT: return "malformed .npy";
    case NPY_EUNSUPPORTED: return "unsupported .npy";
    case NPY_ENOMEM: return "out of memory";
    }
    return "?";
}

/* ------------------------------------------------------------------------ dtype strings */

static const struct {
    char kind;      /* NumPy kind letter */
    size_t size;
    RtDType dt;
} NPY_TYPES[] = {
    {'f', 2, RT_FLOAT16}, {'f', 4, RT_FLOAT}, {'f', 8, RT_DOUBLE},
    {'i', 1, RT_INT8}, {'i', 2, RT_INT16}, {'i', 4, RT_INT32}, {'i', 8, RT_INT64},
    {'u', 1, RT_UINT8}, {'u', 2, RT_UINT16}, {'u', 4, RT_UINT32}, {'u', 8, RT_UINT64},
    {'b', 1, RT_BOOL},
};

/* "<f4", "|u1", "=i8" ... -> dtype. One-byte types may use any byte-order mark. */
static NpyStatus parse_descr(const char *s, RtDType *dt, const ErrSink *e)
{
    size_t len = strlen(s);
    if (len >= 3 && len <= 4 && strchr("<>|=", s[0]) && s[1] && strchr("fiub", s[1]) &&
        s[2] >= '1' && s[2] <= '9' && (len == 3 || (s[3] >= '0' && s[3] <= '9'))) {
        size_t size = (size_t)atoi(s + 2);
        for (size_t i = 0; i < sizeof NPY_TYPES / sizeof NPY_TYPES[0]; i++) {
            if (NPY_TYPES[i].kind != s[1] || NPY_TYPES[i].size != size)
                continue;
            if (size > 1 && s[0] == '>')
                return fail(e, NPY_EUNSUPPORTED, "big-endian dtype '%s' is not supported", s);
            if (size > 1 && s[0] == '|')
                return fail(e, NPY_EFORMAT, "dtype '%s' needs a byte order", s);
            *dt = NPY_TYPES[i].dt;
            return NPY_OK;
        }
    }
    return fail(e, NPY_EUNSUPPORTED, "dtype '%s' is not supported (float16/32/64, int8-64, uint8-64, bool)",
                s);
}

static const char *descr_of(RtDType dt)
{
    switch (dt) {
    case RT_FLOAT16: return "<f2";
    case RT_FLOAT: return "<f4";
    case RT_DOUBLE: return "<f8";
    case RT_INT8: return "|i1";
    case RT_INT16: return "<i2";
    case RT_INT32: return "<i4";
    case RT_INT64: return "<i8";
    case RT_UINT8: return "|u1";
    case RT_UINT16: return "<u2";
    case RT_UINT32: return "<u4";
    case RT_UINT64: return "<u8";
    case RT_BOOL: return "|b1";
    default: return NULL;
    }
}

/* ------------------------------------------------------------------------ header */

/* The preamble: magic, version, header length. Sets the offset of the data. */
static NpyStatus parse_preamble(const uint8_t *p, size_t avail, size_t *hdr_off, size_t *hdr_len,
                                const ErrSink *e)
{
    if (avail < NPY_PREAMBLE_V1)
        return fail(e, NPY_EFORMAT, "truncated: %zu bytes is too short for an .npy preamble", avail);
    if (memcmp(p, NPY_MAGIC, 6) != 0)
        return fail(e, NPY_EFORMAT, "not an .npy file (bad magic string)");
    unsigned major = p[6], minor = p[7];
    if (major < 1 || major > 3 || minor != 0)
        return fail(e, NPY_EUNSUPPORTED, ".npy format version %u.%u is not supported (1.0, 2.0, 3.0)",
                    major, minor);
    if (major == 1) {
        *hdr_off = NPY_PREAMBLE_V1;
        *hdr_len = (size_t)p[8] | (size_t)p[9] << 8;
    } else {
        if (avail < NPY_PREAMBLE_V2)
            return fail(e, NPY_EFORMAT, "truncated: %zu bytes is too short for a v%u preamble", avail, major);
        *hdr_len = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        *hdr_off = NPY_PREAMBLE_V2;
    }
    if (*hdr_len > NPY_MAX_HEADER)
        return fail(e, NPY_EFORMAT, "header length %zu is implausibly large", *hdr_len);
    return NPY_OK;
}

typedef struct {
    const char *s, *end;
} Cursor;

static void skip_ws(Cursor *c)
{
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r'))
        c->s++;
}

static bool take(Cursor *c, char ch)
{
    skip_ws(c);
    if (c->s < c->end && *c->s == ch) {
        c->s++;
        return true;
    }
    return false;
}

/* A Python string literal without escapes, into buf[bufsize]. */
static bool take_string(Cursor *c, char *buf, size_t bufsize)
{
    skip_ws(c);
    if (c->s >= c->end || (*c->s != '\'' && *c->s != '"'))
        return false;
    char q = *c->s++;
    size_t n = 0;
    while (c->s < c->end && *c->s != q) {
        if (*c->s == '\\' || n + 1 >= bufsize)
            return false;
        buf[n++] = *c->s++;
    }
    if (c->s >= c->end)
        return false;
    c->s++;
    buf[n] = 0;
    return true;
}

static bool take_word(Cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->s) >= n && memcmp(c->s, w, n) == 0) {
        c->s += n;
        return true;
    }
    return false;
}

/* The shape tuple: "()", "(3,)", "(2, 3)", trailing comma allowed; Python 2's "3L" too. */
static NpyStatus take_shape(Cursor *c, NpyArray *out, const ErrSink *e)
{
    if (!take(c, '('))
        return fail(e, NPY_EFORMAT, "header: 'shape' is not a tuple");
    out->rank = 0;
    for (;;) {
        if (take(c, ')'))
            return NPY_OK;
        skip_ws(c);
        if (c->s >= c->end || *c->s < '0' || *c->s > '9')
            return fail(e, NPY_EFORMAT, "header: 'shape' holds something other than non-negative integers");
        uint64_t v = 0;
        while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
            v = v * 10 + (uint64_t)(*c->s++ - '0');
            if (v > ((uint64_t)1 << 62))
                return fail(e, NPY_EFORMAT, "header: a dimension in 'shape' is too large");
        }
        if (c->s < c->end && *c->s == 'L')
            c->s++;
        if (out->rank == RT_MAX_RANK)
            return fail(e, NPY_EUNSUPPORTED, "rank above %d is not supported", RT_MAX_RANK);
        out->dims[out->rank++] = (size_t)v;
        if (take(c, ','))
            continue;
        if (take(c, ')'))
            return NPY_OK;
        return fail(e, NPY_EFORMAT, "header: malformed 'shape' tuple");
    }
}

/* The header dict: exactly the keys descr, fortran_order and shape, in any order. */
static NpyStatus parse_dict(const char *h, size_t len, NpyArray *out, const ErrSink *e)
{
    Cursor c = {h, h + len};
    for (size_t i = 0; i < len; i++)
        if (h[i] == 0)
            return fail(e, NPY_EFORMAT, "header contains a NUL byte");
    if (!take(&c, '{'))
        return fail(e, NPY_EFORMAT, "header is not a dict");
    bool seen_descr = false, seen_order = false, seen_shape = false;
    NpyStatus st;
    while (!take(&c, '}')) {
        char key[32], descr[32];
        if (!take_string(&c, key, sizeof key) || !take(&c, ':'))
            return fail(e, NPY_EFORMAT, "header: malformed dict entry");
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            if (!take_string(&c, descr, sizeof descr))
                return fail(e, NPY_EUNSUPPORTED, "header: 'descr' is not a simple dtype string");
            if ((st = parse_descr(descr, &out->dtype, e)) != NPY_OK)
                return st;
            seen_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            if (take_word(&c, "True"))
                return fail(e, NPY_EUNSUPPORTED, "Fortran-order arrays are not supported (save C order)");
            if (!take_word(&c, "False"))
                return fail(e, NPY_EFORMAT, "header: 'fortran_order' is not True or False");
            seen_order = true;
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            if ((st = take_shape(&c, out, e)) != NPY_OK)
                return st;
            seen_shape = true;
        } else {
            return fail(e, NPY_EFORMAT, "header: unexpected or repeated key '%s'", key);
        }
        if (!take(&c, ',')) {
            if (take(&c, '}'))
                break;
            return fail(e, NPY_EFORMAT, "header: expected ',' or '}' after '%s'", key);
        }
    }
    skip_ws(&c);
    if (c.s != c.end)
        return fail(e, NPY_EFORMAT, "header: trailing characters after the dict");
    if (!seen_descr || !seen_order || !seen_shape)
        return fail(e, NPY_EFORMAT, "header: missing '%s'",
                    !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
    out->numel = 1;
    for (int d = 0; d < out->rank; d++) {
        if (out->dims[d] && out->numel > SIZE_MAX / out->dims[d])
            return fail(e, NPY_ENOMEM, "shape overflows size_t");
        out->numel *= out->dims[d];
    }
    size_t es = rt_dtype_size(out->dtype);
    if (out->numel > SIZE_MAX / es)
        return fail(e, NPY_ENOMEM, "shape overflows size_t");
    out->nbytes = out->numel * es;
    return NPY_OK;
}

/* Preamble and dict from the first `avail` bytes; sets *data_off. */
static NpyStatus parse_head(const uint8_t *p, size_t avail, NpyArray *out, size_t *data_off, const ErrSink *e)
{
    size_t off = 0, len = 0;
    NpyStatus st = parse_preamble(p, avail, &off, &len, e);
    if (st != NPY_OK)
        return st;
    if (avail - off < len)
        return fail(e, NPY_EFORMAT, "truncated header: %zu of %zu bytes", avail - off, len);
    if ((st = parse_dict((const char *)p + off, len, out, e)) != NPY_OK)
        return st;
    *data_off = off + len;
    return NPY_OK;
}

static NpyStatus check_bools(const NpyArray *a, const ErrSink *e)
{
    if (a->dtype != RT_BOOL)
        return NPY_OK;
    const uint8_t *b = a->data;
    for (size_t i = 0; i < a->numel; i++)
        if (b[i] > 1)
            return fail(e, NPY_EFORMAT, "bool element %zu is %u, not 0 or 1", i, b[i]);
    return NPY_OK;
}

static NpyStatus check_data_size(size_t have, size_t want, const ErrSink *e)
{
    if (have < want)
        return fail(e, NPY_EFORMAT, "truncated data: %zu of %zu bytes", have, want);
    if (have > want)
        return fail(e, NPY_EFORMAT, "%zu bytes of trailing garbage after the data", have - want);
    return NPY_OK;
}

/* ------------------------------------------------------------------------ reading */

void npy_free(NpyArray *a)
{
    if (!a)
        return;
    if (a->map_)
        munmap(a->map_, a->map_len_);
    else
        free(a->data);
    memset(a, 0, sizeof *a);
}

NpyStatus npy_parse(const void *buf, size_t len, NpyArray *out, char *err, size_t errlen)
{
    ErrSink e = {"<buffer>", err, errlen};
    memset(out, 0, sizeof *out);
    size_t off;
    NpyStatus st = parse_head(buf, len, out, &off, &e);
    if (st == NPY_OK)
        st = check_data_size(len - off, out->nbytes, &e);
    if (st == NPY_OK && !(out->data = malloc(out->nbytes ? out->nbytes : 1)))
        st = fail(&e, NPY_ENOMEM, "cannot allocate %zu bytes", out->nbytes);
    if (st == NPY_OK) {
        memcpy(out->data, (const uint8_t *)buf + off, out->nbytes);
        st = check_bools(out, &e);
    }
    if (st != NPY_OK)
        npy_free(out);
    return st;
}

/* Reads up to n bytes; returns how many were read (short only at end of file or on error). */
static size_t read_full(FILE *f, void *p, size_t n) { return n ? fread(p, 1, n, f) : 0; }

NpyStatus npy_read(const char *path, NpyArray *out, char *err, size_t errlen)
{
    ErrSink e = {path, err, errlen};
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(&e, NPY_EIO, "cannot open: %s", strerror(errno));
    uint8_t pre[NPY_PREAMBLE_V2];
    uint8_t *head = NULL;
    size_t got = read_full(f, pre, sizeof pre), off = 0, len = 0, data_off = 0;
    NpyStatus st = parse_preamble(pre, got, &off, &len, &e);
    if (st == NPY_OK && !(head = malloc(off + len)))
        st = fail(&e, NPY_ENOMEM, "cannot allocate the header");
    if (st == NPY_OK) {
        size_t have = got < off + len ? got : off + len;
        memcpy(head, pre, have);
        if (got > have) {   /* a v1 file with a short header: we read into its data */
            if (fseek(f, (long)have, SEEK_SET) != 0)
                st = fail(&e, NPY_EIO, "seek failed: %s", strerror(errno));
        }
        if (st == NPY_OK)
            have += read_full(f, head + have, off + len - have);
        if (st == NPY_OK)
            st = parse_head(head, have, out, &data_off, &e);
    }
    /* a regular file's size says at once whether the shape fits: never allocate what the header claims for a
     * file too short to hold it (a 100-byte file must not ask for petabytes) */
    struct stat sb;
    if (st == NPY_OK && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size >= data_off)
        st = check_data_size((size_t)sb.st_size - data_off, out->nbytes, &e);
    if (st == NPY_OK && !(out->data = malloc(out->nbytes ? out->nbytes : 1)))
        st = fail(&e, NPY_ENOMEM, "cannot allocate %zu bytes", out->nbytes);
    if (st == NPY_OK) {
        size_t n = read_full(f, out->data, out->nbytes);
        uint8_t extra[64];
        size_t more = n == out->nbytes ? read_full(f, extra, sizeof extra) : 0;
        if (ferror(f))
            st = fail(&e, NPY_EIO, "read failed: %s", strerror(errno));
        else
            st = check_data_size(n + more, out->nbytes, &e);
    }
    if (st == NPY_OK)
        st = check_bools(out, &e);
    free(head);
    fclose(f);
    if (st != NPY_OK)
        npy_free(out);
    return st;
}

NpyStatus npy_map(const char *path, NpyArray *out, char *err, size_t errlen)
{
    ErrSink e = {path, err, errlen};
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return fail(&e, NPY_EIO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        close(fd);
        return npy_read(path, out, err, errlen);   /* pipes, empty files: the plain path reports */
    }
    size_t flen = (size_t)sb.st_size;
    void *map = mmap(NULL, flen, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return fail(&e, NPY_EIO, "mmap failed: %s", strerror(errno));
    size_t off;
    NpyStatus st = parse_head(map, flen, out, &off, &e);
    if (st == NPY_OK)
        st = check_data_size(flen - off, out->nbytes, &e);
    if (st == NPY_OK && off % rt_dtype_size(out->dtype) != 0) {
        munmap(map, flen);
        return npy_read(path, out, err, errlen);   /* misaligned data: copy instead */
    }
    if (st == NPY_OK) {
        out->data = (uint8_t *)map + off;
        out->map_ = map;
        out->map_len_ = flen;
        st = check_bools(out, &e);
    }
    if (st != NPY_OK) {
        if (!out->map_)
            munmap(map, flen);
        npy_free(out);
    }
    return st;
}

/* ------------------------------------------------------------------------ writing */

NpyStatus npy_write(const char *path, RtDType dt, int rank, const size_t *dims, const void *data, char *err,
                    size_t errlen)
{
    ErrSink e = {path, err, errlen};
    const char *descr = descr_of(dt);
    if (!descr)
        return fail(&e, NPY_EUNSUPPORTED, "dtype %s has no .npy equivalent", rt_dtype_name(dt));
    if (rank < 0 || rank > RT_MAX_RANK)
        return fail(&e, NPY_EUNSUPPORTED, "rank %d is out of range 0..%d", rank, RT_MAX_RANK);
    size_t numel = 1;
    char shape[RT_MAX_RANK * 24 + 4];
    int k = snprintf(shape, sizeof shape, "(");
    for (int d = 0; d < rank; d++) {
        if (dims[d] && numel > SIZE_MAX / dims[d])
            return fail(&e, NPY_ENOMEM, "shape overflows size_t");
        numel *= dims[d];
        k += snprintf(shape + k, sizeof shape - (size_t)k, "%zu%s", dims[d],
                      rank == 1 ? "," : d + 1 < rank ? ", " : "");
    }
    snprintf(shape + k, sizeof shape - (size_t)k, ")");
    size_t es = rt_dtype_size(dt);
    if (numel > SIZE_MAX / es)
        return fail(&e, NPY_ENOMEM, "shape overflows size_t");

    /* NumPy's layout: the dict, spaces, '\n'; preamble + header a multiple of 64 bytes. */
    char header[512];
    int hl = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
                      shape);
    size_t total = NPY_PREAMBLE_V1 + (size_t)hl + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - NPY_PREAMBLE_V1;
    memset(header + hl, ' ', hlen - (size_t)hl - 1);
    header[hlen - 1] = '\n';
    uint8_t pre[NPY_PREAMBLE_V1] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff),
                                    (uint8_t)(hlen >> 8)};

    /* common/'s atomic write: a reader never sees half an array, also after a crash (fsync, rename) */
    char msg[1024];
    AtomicFile f;
    FileStatus fs = atomic_file_open(&f, path, msg, sizeof msg);
    if (fs == FILE_OK)
        fs = atomic_file_write(&f, pre, sizeof pre, msg, sizeof msg);
    if (fs == FILE_OK)
        fs = atomic_file_write(&f, header, hlen, msg, sizeof msg);
    if (fs == FILE_OK)
        fs = atomic_file_write(&f, data, numel * es, msg, sizeof msg);
    if (fs == FILE_OK)
        fs = atomic_file_commit(&f, msg, sizeof msg);
    else if (f.fd >= 0 || f.tmp)
        atomic_file_abort(&f);
    if (fs != FILE_OK)
        return fail(&e, fs == FILE_ENOMEM ? NPY_ENOMEM : NPY_EIO, "%s", msg);
    return NPY_OK;
}
