/* npz.c - the .npz reader: a ZIP archive's central directory (ZIP64 too), its stored and deflated members
 * (CRC-32 checked) and the .npy header of a member, all on bytes in memory. dataset.c opens the file and
 * keeps the x and y it finds. It does not write archives, stream members or read other .npy layouts.
 */
#include "data.h"

#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

DatasetStatus data_fail(const ErrSink *e, DatasetStatus st, const char *fmt, ...)
{
    if (e->err && e->errlen) {
        int k = e->name ? snprintf(e->err, e->errlen, "%s: ", e->name) : 0;
        if (k >= 0 && (size_t)k < e->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(e->err + k, e->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_LOCAL_SIG 0x04034b50u

/* The ZIP64 extended-information extra field (id 1) holds, in this order, those of usize, csize and the
 * local header offset whose 32-bit fields are 0xFFFFFFFF. */
static DatasetStatus zip64_extra(const uint8_t *x, size_t len, ZipEntry *z, const ErrSink *e)
{
    for (size_t at = 0; at + 4 <= len;) {
        uint16_t id = rd16(x + at), sz = rd16(x + at + 2);
        if (sz > len - at - 4)
            return data_fail(e, DATASET_EFORMAT, "bad ZIP central directory: an extra field runs past its entry");
        if (id == 1) {
            const uint8_t *p = x + at + 4, *end = p + sz;
            uint64_t *fields[3] = {&z->usize, &z->csize, &z->local};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != 0xFFFFFFFFu)
                    continue;
                if (end - p < 8)
                    return data_fail(e, DATASET_EFORMAT, "bad ZIP central directory: short ZIP64 extra field");
                *fields[i] = rd64(p);
                p += 8;
            }
        }
        at += 4 + (size_t)sz;
    }
    return DATASET_OK;
}

/* Find the members named want[0] or want[1] (x: "x.npy" or "x") from the central directory. */
DatasetStatus zip_lookup(const uint8_t *b, size_t len, const char *const want[2][2], ZipEntry out[2],
                                const ErrSink *e)
{
    if (len < 22)
        return data_fail(e, DATASET_EFORMAT, "not an .npz archive: %zu bytes is too short for a ZIP file", len);
    size_t eocd = SIZE_MAX, lowest = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t at = len - 22 + 1; at-- > lowest;)
        if (rd32(b + at) == ZIP_EOCD_SIG && at + 22 + rd16(b + at + 20) <= len) {
            eocd = at;
            break;
        }
    if (eocd == SIZE_MAX)
        return data_fail(e, DATASET_EFORMAT, "no ZIP end-of-central-directory record (truncated, or not an .npz)");
    uint64_t disk = rd16(b + eocd + 4), cd_disk = rd16(b + eocd + 6), count = rd16(b + eocd + 10);
    uint64_t cd_size = rd32(b + eocd + 12), cd_off = rd32(b + eocd + 16);
    size_t cd_limit = eocd;
    if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        if (eocd < 20 || rd32(b + eocd - 20) != ZIP64_LOCATOR_SIG)
            return data_fail(e, DATASET_EFORMAT, "bad ZIP: ZIP64 sizes without a ZIP64 locator");
        uint64_t z64 = rd64(b + eocd - 20 + 8);
        if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || rd32(b + z64) != ZIP64_EOCD_SIG)
            return data_fail(e, DATASET_EFORMAT, "bad ZIP: the ZIP64 end-of-central-directory record is not where its "
                        "locator points");
        disk = rd32(b + z64 + 16);
        cd_disk = rd32(b + z64 + 20);
        count = rd64(b + z64 + 32);
        cd_size = rd64(b + z64 + 40);
        cd_off = rd64(b + z64 + 48);
        cd_limit = (size_t)z64;
    }
    if (disk != 0 || cd_disk != 0)
        return data_fail(e, DATASET_EUNSUPPORTED, "multi-part ZIP archives are not supported");
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
        return data_fail(e, DATASET_EFORMAT, "bad ZIP central directory: offset %llu + size %llu runs past its end (%zu)",
                    (unsigned long long)cd_off, (unsigned long long)cd_size, cd_limit);
    const uint8_t *p = b + cd_off, *end = p + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - p < 46 || rd32(p) != ZIP_CENTRAL_SIG)
            return data_fail(e, DATASET_EFORMAT, "bad ZIP central directory: entry %llu of %llu is missing or damaged",
                        (unsigned long long)i + 1, (unsigned long long)count);
        size_t nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
        if ((size_t)(end - p) - 46 < nlen + xlen + clen)
            return data_fail(e, DATASET_EFORMAT, "bad ZIP central directory: entry %llu runs past the directory",
                        (unsigned long long)i + 1);
        const char *name = (const char *)p + 46;
        for (int k = 0; k < 2; k++)
            for (int v = 0; v < 2; v++) {
                if (out[k].found || strlen(want[k][v]) != nlen || memcmp(name, want[k][v], nlen) != 0)
                    continue;
                ZipEntry z = {true, rd16(p + 8), rd16(p + 10), rd32(p + 16), rd32(p + 20), rd32(p + 24), rd32(p + 42)};
                DatasetStatus st = zip64_extra(p + 46 + nlen, xlen, &z, e);
                if (st != DATASET_OK)
                    return st;
                out[k] = z;
            }
        p += 46 + nlen + xlen + clen;
    }
    return DATASET_OK;
}

/* A member's bytes: stored members point into the archive, deflated ones are inflated into *owned.
 * The CRC-32 is checked unless the member is stored in a mapped archive (that would read it all now). */
DatasetStatus zip_member(const uint8_t *b, size_t len, bool mapped, const ZipEntry *z, const char *name,
                                const uint8_t **data, void **owned, const ErrSink *e)
{
    if (z->flags & 1)
        return data_fail(e, DATASET_EUNSUPPORTED, "member %s is encrypted", name);
    if (z->method != 0 && z->method != 8)
        return data_fail(e, DATASET_EUNSUPPORTED, "member %s uses ZIP compression method %u (only stored and deflate)",
                    name, z->method);
    if (z->local > len || len - z->local < 30 || rd32(b + z->local) != ZIP_LOCAL_SIG)
        return data_fail(e, DATASET_EFORMAT, "member %s: no local header at offset %llu (truncated or damaged archive)",
                    name, (unsigned long long)z->local);
    uint64_t start = z->local + 30 + (uint64_t)rd16(b + z->local + 26) + rd16(b + z->local + 28);
    if (start > len || z->csize > len - start)
        return data_fail(e, DATASET_EFORMAT, "member %s: %llu bytes of data run past the end of the archive "
                    "(truncated?)", name, (unsigned long long)z->csize);
    if (z->usize > SIZE_MAX)
        return data_fail(e, DATASET_ENOMEM, "member %s is too large", name);
    const uint8_t *src = b + start;
    if (z->method == 0) {
        if (z->csize != z->usize)
            return data_fail(e, DATASET_EFORMAT, "member %s: stored with different compressed (%llu) and uncompressed "
                        "(%llu) sizes", name, (unsigned long long)z->csize, (unsigned long long)z->usize);
        *data = src;
    } else {
        /* deflate expands at most 1032:1: a larger claim is a damaged directory, and must not make us allocate
         * gigabytes for a small file */
        if (z->usize > z->csize * 1032 + 258)
            return data_fail(e, DATASET_EFORMAT, "member %s: %llu bytes cannot inflate to the %llu the directory says "
                        "(damaged archive)", name, (unsigned long long)z->csize, (unsigned long long)z->usize);
        uint8_t *buf = malloc(z->usize ? (size_t)z->usize : 1);
        if (!buf)
            return data_fail(e, DATASET_ENOMEM, "cannot inflate member %s (%llu bytes) into memory: save with np.savez "
                        "(not _compressed) so it can be memory-mapped", name, (unsigned long long)z->usize);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
            free(buf);
            return data_fail(e, DATASET_ENOMEM, "zlib: cannot start inflating");
        }
        uint64_t in_left = z->csize, out_left = z->usize;
        zs.next_in = (Bytef *)src;
        zs.next_out = buf;
        int zr = Z_OK;
        while (zr == Z_OK) {
            uInt ai = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
            uInt ao = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
            zs.avail_in = ai;
            zs.avail_out = ao;
            zr = inflate(&zs, Z_NO_FLUSH);
            in_left -= ai - zs.avail_in;
            out_left -= ao - zs.avail_out;
            if (zr == Z_OK && ai == zs.avail_in && ao == zs.avail_out)
                zr = Z_BUF_ERROR;   /* no progress: input exhausted or output full */
        }
        inflateEnd(&zs);
        if (zr != Z_STREAM_END || out_left != 0) {
            free(buf);
            return data_fail(e, DATASET_EFORMAT, "member %s: deflate data is corrupt or ends early (%s)", name,
                        zr == Z_STREAM_END ? "fewer bytes than the directory says" : zs.msg ? zs.msg : "truncated");
        }
        *owned = buf;
        *data = buf;
    }
    if (z->method != 0 || !mapped) {
        if (crc32_update(0, *data, (size_t)z->usize) != z->crc)   /* common.h's CRC-32, the ZIP one */
            return data_fail(e, DATASET_EFORMAT, "member %s: CRC-32 mismatch (damaged archive)", name);
    }
    return DATASET_OK;
}

/* The .npy header of a member. npy.c's parser copies the data, which a mapped member must avoid, so the
 * dict (descr, fortran_order, shape) is read here; anything unusual is refused, not guessed. */
DatasetStatus npy_member_header(const uint8_t *p, size_t len, const char *name, RtDType *dt, int *rank,
                                       size_t *dims, size_t *data_off, const ErrSink *e)
{
    static const struct {
        const char *descr;
        RtDType dt;
    } types[] = {
        {"<f2", RT_FLOAT16}, {"<f4", RT_FLOAT}, {"<f8", RT_DOUBLE}, {"|i1", RT_INT8}, {"<i2", RT_INT16},
        {"<i4", RT_INT32}, {"<i8", RT_INT64}, {"|u1", RT_UINT8}, {"<u2", RT_UINT16}, {"<u4", RT_UINT32},
        {"<u8", RT_UINT64}, {"|b1", RT_BOOL},
    };
    if (len < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
        return data_fail(e, DATASET_EFORMAT, "member %s is not an .npy array (bad magic)", name);
    size_t hoff = p[6] == 1 ? 10 : 12, hlen;
    if (p[6] < 1 || p[6] > 3 || p[7] != 0 || len < hoff)
        return data_fail(e, DATASET_EUNSUPPORTED, "member %s: .npy version %u.%u is not supported", name, p[6], p[7]);
    hlen = p[6] == 1 ? rd16(p + 8) : rd32(p + 8);
    if (hlen > len - hoff)
        return data_fail(e, DATASET_EFORMAT, "member %s: truncated .npy header", name);
    const char *s = (const char *)p + hoff, *end = s + hlen;
    bool have_descr = false, have_order = false, have_shape = false;
#define SKIP_WS() while (s < end && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) s++
    SKIP_WS();
    if (s == end || *s++ != '{')
        return data_fail(e, DATASET_EFORMAT, "member %s: .npy header is not a dict", name);
    for (;;) {
        SKIP_WS();
        if (s < end && *s == '}')
            break;
        char key[16], val[16];
        size_t k = 0;
        if (s == end || *s != '\'')
            return data_fail(e, DATASET_EFORMAT, "member %s: malformed .npy header", name);
        for (s++; s < end && *s != '\'' && k + 1 < sizeof key; s++)
            key[k++] = *s;
        key[k] = 0;
        if (s == end || *s++ != '\'')
            return data_fail(e, DATASET_EFORMAT, "member %s: malformed .npy header key", name);
        SKIP_WS();
        if (s == end || *s++ != ':')
            return data_fail(e, DATASET_EFORMAT, "member %s: malformed .npy header", name);
        SKIP_WS();
        if (strcmp(key, "descr") == 0 && !have_descr) {
            k = 0;
            if (s == end || *s != '\'')
                return data_fail(e, DATASET_EUNSUPPORTED, "member %s: structured dtypes are not supported", name);
            for (s++; s < end && *s != '\'' && k + 1 < sizeof val; s++)
                val[k++] = *s;
            val[k] = 0;
            if (s == end || *s++ != '\'')
                return data_fail(e, DATASET_EFORMAT, "member %s: malformed descr", name);
            if (val[0] == '=')
                val[0] = '<';
            if (k == 3 && val[0] == '<' && val[2] == '1')
                val[0] = '|';
            bool known = false;
            for (size_t i = 0; i < sizeof types / sizeof types[0] && !known; i++)
                if (strcmp(types[i].descr, val) == 0) {
                    *dt = types[i].dt;
                    known = true;
                }
            if (!known)
                return data_fail(e, DATASET_EUNSUPPORTED, "member %s: dtype '%s' is not supported", name, val);
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if ((size_t)(end - s) >= 4 && memcmp(s, "True", 4) == 0)
                return data_fail(e, DATASET_EUNSUPPORTED, "member %s: Fortran-order arrays are not supported", name);
            if ((size_t)(end - s) < 5 || memcmp(s, "False", 5) != 0)
                return data_fail(e, DATASET_EFORMAT, "member %s: malformed fortran_order", name);
            s += 5;
            have_order = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (s == end || *s++ != '(')
                return data_fail(e, DATASET_EFORMAT, "member %s: malformed shape", name);
            *rank = 0;
            for (;;) {
                SKIP_WS();
                if (s < end && *s == ')') {
                    s++;
                    break;
                }
                if (s == end || *s < '0' || *s > '9' || *rank == RT_MAX_RANK)
                    return data_fail(e, DATASET_EFORMAT, "member %s: malformed or rank > %d shape", name, RT_MAX_RANK);
                uint64_t v = 0;
                while (s < end && *s >= '0' && *s <= '9' && v < ((uint64_t)1 << 56))
                    v = v * 10 + (uint64_t)(*s++ - '0');
                dims[(*rank)++] = (size_t)v;
                SKIP_WS();
                if (s < end && *s == ',')
                    s++;
                else if (s == end || *s != ')')
                    return data_fail(e, DATASET_EFORMAT, "member %s: malformed shape", name);
            }
            have_shape = true;
        } else {
            return data_fail(e, DATASET_EFORMAT, "member %s: unexpected key '%s' in the .npy header", name, key);
        }
        SKIP_WS();
        if (s < end && *s == ',')
            s++;
    }
#undef SKIP_WS
    if (!have_descr || !have_order || !have_shape)
        return data_fail(e, DATASET_EFORMAT, "member %s: the .npy header lacks descr, fortran_order or shape", name);
    size_t nbytes = rt_dtype_size(*dt);
    for (int i = 0; i < *rank; i++) {
        if (dims[i] && nbytes > SIZE_MAX / dims[i])
            return data_fail(e, DATASET_EFORMAT, "member %s: shape overflows", name);
        nbytes *= dims[i];
    }
    if (len - hoff - hlen != nbytes)
        return data_fail(e, DATASET_EFORMAT, "member %s: %zu bytes of data where the shape needs %zu", name,
                    len - hoff - hlen, nbytes);
    *data_off = hoff + hlen;
    return DATASET_OK;
}
