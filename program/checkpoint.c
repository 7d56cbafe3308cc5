/* checkpoint.c - training checkpoints: named sections with lengths and CRC32s behind a header that
 * names the program that wrote them, written with common/'s atomic file write; the SIGINT/SIGTERM flag
 * the trainer polls. It does not know what the sections mean: the trainer chooses and reads them.
 */
#include "program.h"

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c stores section data in host order and assumes a little-endian host"
#endif

/* File layout (all integers little-endian; every part padded with zeros to a multiple of 8 bytes, so
 * section data lies 8-byte aligned in a buffer holding the whole file):
 *   header   magic[8] "ONXTCKPT", u32 version, u32 section count, u64 fingerprint,
 *            u32 description length, u32 CRC32 of the 28 bytes before it + the padded description;
 *            then the description (the writer's identity, for messages)
 *   section  u32 name length (1..CKPT_MAX_NAME), u32 flags (0), u64 data size, u32 CRC32 of the data,
 *            u32 CRC32 of the 20 bytes before it + the padded name; then the name, then the data
 * The file ends right after the last section: anything else is an error. */
#define CKPT_MAGIC "ONXTCKPT"
#define HEADER_BYTES 32
#define SECTION_BYTES 24

static size_t pad8(size_t n)
{
    return (8 - n % 8) % 8;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* "PATH: message" into err[errlen]; returns st. */
static CkptStatus fail(char *err, size_t errlen, CkptStatus st, const char *path, const char *fmt, ...)
{
    if (err && errlen) {
        int k = snprintf(err, errlen, "%s: ", path);
        if (k >= 0 && (size_t)k < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

const char *ckpt_status_name(CkptStatus st)
{
    switch (st) {
    case CKPT_OK: return "ok";
    case CKPT_EIO: return "I/O error";
    case CKPT_EFORMAT: return "malformed checkpoint";
    case CKPT_EVERSION: return "unsupported checkpoint version";
    case CKPT_EMISMATCH: return "checkpoint of another program";
    case CKPT_EMISSING: return "missing section";
    case CKPT_EINVAL: return "invalid argument";
    case CKPT_ENOMEM: return "out of memory";
    }
    return "?";
}

/* ------------------------------------------------------------------------ hashing */

uint64_t ckpt_hash64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n--)
        h = (h ^ *p++) * 0x100000001B3ull;
    return h;
}

static uint64_t hash_i64(uint64_t h, int64_t v)
{
    unsigned char b[8];
    put_u64(b, (uint64_t)v);
    return ckpt_hash64(h, b, 8);
}

static uint64_t hash_tensor(uint64_t h, const TrainTensor *t)
{
    h = hash_i64(hash_i64(h, t->dtype), t->rank);
    for (int i = 1; i < t->rank && i < RT_MAX_RANK; i++)   /* dims[0] is the batch */
        h = hash_i64(h, t->dims[i]);
    return h;
}

uint64_t ckpt_program_fingerprint(const TrainProgram *p)
{
    uint64_t h = ckpt_hash64(CKPT_HASH_INIT, "onnxtune program", 16);
    h = hash_i64(hash_i64(hash_i64(h, p->loss), p->optimizer), p->momentum_buffer);
    h = hash_tensor(hash_tensor(hash_tensor(h, &p->x), &p->target), &p->logits);
    h = hash_i64(hash_i64(h, p->nparams), (int64_t)p->params_bytes);
    for (int i = 0; i < p->nparams; i++) {
        const TrainParam *tp = &p->params[i];
        const char *name = tp->name ? tp->name : "";
        h = ckpt_hash64(h, name, strlen(name) + 1);
        h = hash_i64(hash_i64(hash_i64(h, tp->kind), tp->dtype), tp->rank);
        for (int k = 0; k < tp->rank && k < RT_MAX_RANK; k++)
            h = hash_i64(h, tp->dims[k]);
        h = hash_i64(hash_i64(h, (int64_t)tp->nbytes), (int64_t)tp->offset);
    }
    /* a compiled program carries the CRC: reading hundreds of MiB of its file for every identity would
     * put them back in memory (trainer.c's tr_release_init drops them) */
    if (p->init)
        h = hash_i64(h, p->has_init_crc ? p->init_crc : crc32_update(0, p->init, p->params_bytes));
    return h;
}

/* The one identity of a training program's checkpoints (trainer_run.c writes and resumes them,
 * trainer_eval.c reads their weights): what ckpt_program_fingerprint covers and the compiled batch. */
CkptIdentity ckpt_program_identity(const TrainProgram *p, char *desc, size_t size)
{
    int64_t batch = p->batch;
    snprintf(desc, size, "%s compiled with '%s' for batch %lld", p->model ? p->model : "a model",
             p->compiled_with ? p->compiled_with : "", (long long)batch);
    return (CkptIdentity){ckpt_hash64(ckpt_program_fingerprint(p), &batch, sizeof batch), desc};
}

/* ------------------------------------------------------------------------ writing */

/* A failure of common/'s atomic write as a CkptStatus: "PATH: message". */
static CkptStatus file_fail(FileStatus fs, const char *path, const char *msg, char *err, size_t errlen)
{
    return fail(err, errlen, fs == FILE_ENOMEM ? CKPT_ENOMEM : CKPT_EIO, path, "%s", msg);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const CkptSection *)a)->name, ((const CkptSection *)b)->name);
}

static CkptStatus check_sections(const char *path, const CkptSection *s, size_t count, char *err, size_t errlen)
{
    if (count > CKPT_MAX_SECTIONS)
        return fail(err, errlen, CKPT_EINVAL, path, "%zu sections (at most %d)", count, CKPT_MAX_SECTIONS);
    for (size_t i = 0; i < count; i++) {
        size_t len = s[i].name ? strlen(s[i].name) : 0;
        if (len == 0 || len > CKPT_MAX_NAME)
            return fail(err, errlen, CKPT_EINVAL, path, "section %zu: a name of 1 to %d bytes is needed", i,
                        CKPT_MAX_NAME);
        if (!s[i].data && s[i].size)
            return fail(err, errlen, CKPT_EINVAL, path, "section '%s': no data for %zu bytes", s[i].name, s[i].size);
    }
    if (count < 2)
        return CKPT_OK;
    CkptSection *sorted = malloc(count * sizeof *sorted);
    if (!sorted)
        return fail(err, errlen, CKPT_ENOMEM, path, "out of memory");
    memcpy(sorted, s, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, cmp_names);
    CkptStatus st = CKPT_OK;
    for (size_t i = 1; i < count && st == CKPT_OK; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0)
            st = fail(err, errlen, CKPT_EINVAL, path, "two sections named '%s'", sorted[i].name);
    free(sorted);
    return st;
}

CkptStatus ckpt_write(const char *path, const CkptIdentity *id, const CkptSection *sections, size_t count,
                      char *err, size_t errlen)
{
    const char *desc = id && id->description ? id->description : "";
    size_t dlen = strlen(desc);
    if (dlen > CKPT_MAX_DESCRIPTION)
        return fail(err, errlen, CKPT_EINVAL, path, "a description of %zu bytes (at most %d)", dlen,
                    CKPT_MAX_DESCRIPTION);
    CkptStatus st = check_sections(path, sections, count, err, errlen);
    if (st != CKPT_OK)
        return st;
    /* the largest block written from here: the header with its description, or a section header with its name */
    unsigned char *head = malloc(HEADER_BYTES + CKPT_MAX_DESCRIPTION + 8);
    if (!head)
        return fail(err, errlen, CKPT_ENOMEM, path, "out of memory");
    static const unsigned char zeros[8];
    char msg[1024] = "";
    AtomicFile f;
    FileStatus fs = atomic_file_open(&f, path, msg, sizeof msg);
    if (fs == FILE_OK) {
        size_t n = HEADER_BYTES + dlen + pad8(dlen);
        memset(head, 0, n);
        memcpy(head, CKPT_MAGIC, 8);
        put_u32(head + 8, CKPT_VERSION);
        put_u32(head + 12, (uint32_t)count);
        put_u64(head + 16, id ? id->fingerprint : 0);
        put_u32(head + 24, (uint32_t)dlen);
        memcpy(head + HEADER_BYTES, desc, dlen);
        put_u32(head + 28, crc32_update(crc32_update(0, head, 28), head + HEADER_BYTES, n - HEADER_BYTES));
        fs = atomic_file_write(&f, head, n, msg, sizeof msg);
    }
    for (size_t i = 0; i < count && fs == FILE_OK; i++) {
        const CkptSection *s = &sections[i];
        size_t nlen = strlen(s->name), n = SECTION_BYTES + nlen + pad8(nlen);
        memset(head, 0, n);
        put_u32(head, (uint32_t)nlen);
        put_u64(head + 8, (uint64_t)s->size);
        put_u32(head + 16, crc32_update(0, s->data, s->size));
        memcpy(head + SECTION_BYTES, s->name, nlen);
        put_u32(head + 20, crc32_update(crc32_update(0, head, 20), head + SECTION_BYTES, n - SECTION_BYTES));
        fs = atomic_file_write(&f, head, n, msg, sizeof msg);
        if (fs == FILE_OK)
            fs = atomic_file_write(&f, s->data, s->size, msg, sizeof msg);
        if (fs == FILE_OK)
            fs = atomic_file_write(&f, zeros, pad8(s->size), msg, sizeof msg);
    }
    free(head);
    if (fs == FILE_OK)
        fs = atomic_file_commit(&f, msg, sizeof msg);
    else if (f.fd >= 0 || f.tmp)
        atomic_file_abort(&f);
    return fs == FILE_OK ? CKPT_OK : file_fail(fs, path, msg, err, errlen);
}

/* ------------------------------------------------------------------------ reading */

static bool all_zero(const unsigned char *p, size_t n)
{
    while (n--)
        if (*p++)
            return false;
    return true;
}

/* Validate buf[len] (taking ownership of it) into *out. */
static CkptStatus parse_owned(unsigned char *buf, size_t len, const char *path, const CkptIdentity *expect,
                              Checkpoint *out, char *err, size_t errlen)
{
    CkptStatus st = CKPT_OK;
    CkptSection *secs = NULL;
    if (len < 8 ? memcmp(buf, CKPT_MAGIC, len) != 0 : memcmp(buf, CKPT_MAGIC, 8) != 0) {
        st = fail(err, errlen, CKPT_EFORMAT, path, len ? "not an onnxtune checkpoint (bad magic)" :
                  "empty file, not an onnxtune checkpoint");
        goto out;
    }
    if (len < HEADER_BYTES) {
        st = fail(err, errlen, CKPT_EFORMAT, path, "truncated checkpoint: %zu bytes, its header alone needs %d",
                  len, HEADER_BYTES);
        goto out;
    }
    uint32_t version = get_u32(buf + 8), count = get_u32(buf + 12), dlen = get_u32(buf + 24);
    if (version != CKPT_VERSION) {
        st = fail(err, errlen, CKPT_EVERSION, path, "checkpoint format version %u; this program reads version %d",
                  version, CKPT_VERSION);
        goto out;
    }
    if (dlen > CKPT_MAX_DESCRIPTION || count > CKPT_MAX_SECTIONS) {
        st = fail(err, errlen, CKPT_EFORMAT, path, "corrupt checkpoint header (%s out of range)",
                  count > CKPT_MAX_SECTIONS ? "section count" : "description length");
        goto out;
    }
    size_t at = HEADER_BYTES + dlen + pad8(dlen);
    if (len < at) {
        st = fail(err, errlen, CKPT_EFORMAT, path, "truncated checkpoint: %zu bytes, its header needs %zu", len, at);
        goto out;
    }
    if (crc32_update(crc32_update(0, buf, 28), buf + HEADER_BYTES, at - HEADER_BYTES) != get_u32(buf + 28)) {
        st = fail(err, errlen, CKPT_EFORMAT, path, "corrupt checkpoint header (CRC mismatch)");
        goto out;
    }
    /* the description is followed by zero padding or by section bytes: make it a C string in place */
    char *desc = malloc(dlen + 1);
    if (!desc) {
        st = fail(err, errlen, CKPT_ENOMEM, path, "out of memory");
        goto out;
    }
    memcpy(desc, buf + HEADER_BYTES, dlen);
    desc[dlen] = '\0';
    uint64_t fp = get_u64(buf + 16);
    if (expect && fp != expect->fingerprint) {
        st = fail(err, errlen, CKPT_EMISMATCH, path,
                  "checkpoint of another model or compiled program: it was written by %s%s%s (fingerprint %016llx), "
                  "this program is %s%s%s (fingerprint %016llx)", *desc ? "'" : "", *desc ? desc : "an unnamed program",
                  *desc ? "'" : "", (unsigned long long)fp, expect->description ? "'" : "",
                  expect->description ? expect->description : "an unnamed program", expect->description ? "'" : "",
                  (unsigned long long)expect->fingerprint);
        free(desc);
        goto out;
    }
    secs = calloc(count ? count : 1, sizeof *secs);
    if (!secs) {
        free(desc);
        st = fail(err, errlen, CKPT_ENOMEM, path, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (len - at < SECTION_BYTES) {
            st = fail(err, errlen, CKPT_EFORMAT, path, "truncated checkpoint: it ends at byte %zu, in the header of "
                      "section %u of %u", len, i + 1, count);
            break;
        }
        const unsigned char *h = buf + at;
        uint32_t nlen = get_u32(h);
        uint64_t size = get_u64(h + 8);
        if (nlen == 0 || nlen > CKPT_MAX_NAME || get_u32(h + 4) != 0) {
            st = fail(err, errlen, CKPT_EFORMAT, path, "corrupt header of section %u of %u", i + 1, count);
            break;
        }
        size_t hn = SECTION_BYTES + nlen + pad8(nlen);
        if (len - at < hn) {
            st = fail(err, errlen, CKPT_EFORMAT, path, "truncated checkpoint: it ends at byte %zu, in the name of "
                      "section %u of %u", len, i + 1, count);
            break;
        }
        if (crc32_update(crc32_update(0, h, 20), h + SECTION_BYTES, hn - SECTION_BYTES) != get_u32(h + 20) ||
            memchr(h + SECTION_BYTES, '\0', nlen)) {
            st = fail(err, errlen, CKPT_EFORMAT, path, "corrupt header of section %u of %u (CRC mismatch)", i + 1,
                      count);
            break;
        }
        /* the name's padding holds at least one zero byte only when nlen % 8 != 0: copy it out */
        char *name = strndup((const char *)h + SECTION_BYTES, nlen);
        if (!name) {
            st = fail(err, errlen, CKPT_ENOMEM, path, "out of memory");
            break;
        }
        secs[i].name = name;
        at += hn;
        if (size > len - at || pad8((size_t)size) > len - at - (size_t)size) {
            st = fail(err, errlen, CKPT_EFORMAT, path, "truncated checkpoint: section '%s' needs %llu bytes, the file "
                      "ends %zu bytes after its header", name, (unsigned long long)size, len - at);
            break;
        }
        if (crc32_update(0, buf + at, (size_t)size) != get_u32(h + 16)) {
            st = fail(err, errlen, CKPT_EFORMAT, path, "section '%s' is corrupt (CRC mismatch)", name);
            break;
        }
        if (!all_zero(buf + at + size, pad8((size_t)size))) {
            st = fail(err, errlen, CKPT_EFORMAT, path, "corrupt padding after section '%s'", name);
            break;
        }
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(secs[k].name, name) == 0) {
                st = fail(err, errlen, CKPT_EFORMAT, path, "two sections named '%s'", name);
                break;
            }
        if (st != CKPT_OK)
            break;
        secs[i].data = buf + at;
        secs[i].size = (size_t)size;
        at += (size_t)size + pad8((size_t)size);
    }
    if (st == CKPT_OK && at != len)
        st = fail(err, errlen, CKPT_EFORMAT, path, "%zu unexpected bytes after the last section", len - at);
    if (st != CKPT_OK) {
        for (uint32_t i = 0; i < count; i++)
            free((char *)secs[i].name);
        free(secs);
        free(desc);
        goto out;
    }
    out->id = (CkptIdentity){.fingerprint = fp, .description = desc};
    out->count = count;
    out->sections = secs;
    out->path_ = strdup(path);
    out->buf_ = buf;
    return CKPT_OK;
out:
    free(buf);
    return st;
}

CkptStatus ckpt_parse(const void *data, size_t len, const char *name, const CkptIdentity *expect, Checkpoint *out,
                      char *err, size_t errlen)
{
    *out = (Checkpoint){0};
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return fail(err, errlen, CKPT_ENOMEM, name, "out of memory");
    if (len)
        memcpy(buf, data, len);
    return parse_owned(buf, len, name, expect, out, err, errlen);
}

CkptStatus ckpt_read(const char *path, const CkptIdentity *expect, Checkpoint *out, char *err, size_t errlen)
{
    *out = (Checkpoint){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, CKPT_EIO, path, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, CKPT_EIO, path, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return fail(err, errlen, CKPT_EIO, path, "%s", S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
    }
    if ((uintmax_t)sb.st_size > (uintmax_t)SIZE_MAX / 2) {
        close(fd);
        return fail(err, errlen, CKPT_ENOMEM, path, "too large (%lld bytes)", (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size, got = 0;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return fail(err, errlen, CKPT_ENOMEM, path, "out of memory reading %zu bytes", len);
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got > ((size_t)1 << 30) ? (size_t)1 << 30 : len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return fail(err, errlen, CKPT_EIO, path, "read failed: %s", strerror(e));
        }
        if (r == 0)
            break;     /* shrank while we read: the parser reports what is missing */
        got += (size_t)r;
    }
    close(fd);
    return parse_owned(buf, got, path, expect, out, err, errlen);
}

const CkptSection *ckpt_find(const Checkpoint *c, const char *name)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->sections[i].name, name) == 0)
            return &c->sections[i];
    return NULL;
}

CkptStatus ckpt_get(const Checkpoint *c, const char *name, void *dst, size_t size, char *err, size_t errlen)
{
    const char *path = c->path_ ? c->path_ : "checkpoint";
    const CkptSection *s = ckpt_find(c, name);
    if (!s)
        return fail(err, errlen, CKPT_EMISSING, path, "no section '%s' in the checkpoint", name);
    if (s->size != size)
        return fail(err, errlen, CKPT_EMISSING, path, "section '%s' is %zu bytes, this program expects %zu", name,
                    s->size, size);
    if (size)
        memcpy(dst, s->data, size);
    return CKPT_OK;
}

void ckpt_free(Checkpoint *c)
{
    for (size_t i = 0; i < c->count; i++)
        free((char *)c->sections[i].name);
    free(c->sections);
    free((char *)c->id.description);
    free(c->path_);
    free(c->buf_);
    *c = (Checkpoint){0};
}

/* ------------------------------------------------------------------------ stop signals */

static volatile sig_atomic_t stop_pending;
static const char *stop_message;
static size_t stop_message_len;
static bool stop_installed;
static struct sigaction old_int, old_term;

/* Only async-signal-safe calls here: write and _exit. */
static void on_stop(int sig)
{
    if (stop_pending) {
        static const char again[] = "\ninterrupted again: exiting now\n";
        ssize_t r = write(STDERR_FILENO, again, sizeof again - 1);
        (void)r;
        _exit(128 + sig);
    }
    stop_pending = sig;
    if (stop_message) {
        ssize_t r = write(STDERR_FILENO, stop_message, stop_message_len);
        (void)r;
    }
}

void stop_signal_install(const char *message)
{
    stop_message = message;
    stop_message_len = message ? strlen(message) : 0;
    stop_pending = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    if (!stop_installed) {
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    } else {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    stop_installed = true;
}

int stop_signal_pending(void)
{
    return stop_pending;
}

void stop_signal_restore(void)
{
    if (!stop_installed)
        return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    stop_installed = false;
    stop_pending = 0;
}
