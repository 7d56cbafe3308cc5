/* common.h - the public header of common/: the small pieces the compiler (importer, codegen) and the
 * runtime archives (data/, program/) would otherwise each write their own of: a growable byte buffer,
 * an atomic file write, a JSON writer and a small JSON reader, the protobuf varint and CRC-32.
 * kernels/ does not use it (the math needs none of this). Nothing here prints or exits. */
#ifndef ONNXTUNE_COMMON_H
#define ONNXTUNE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define COMMON_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define COMMON_MUST_CHECK __attribute__((warn_unused_result))
#else
#define COMMON_PRINTF(f, a)
#define COMMON_MUST_CHECK
#endif

/* ======================================================================== common/buf.c */

/* A growable byte buffer, always NUL-terminated after its len bytes (so text can be used as a string).
 * A failed allocation sets oom and makes every later append a no-op: check oom once at the end. A
 * zeroed Buf is empty and valid. */
typedef struct Buf {
    char *p;                /* NULL until the first append */
    size_t len, cap;
    bool oom;               /* an allocation failed: contents are truncated */
} Buf;

void buf_putn(Buf *b, const void *data, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_printf(Buf *b, const char *fmt, ...) COMMON_PRINTF(2, 3);
void buf_clear(Buf *b);             /* empty, keeping the memory */
void buf_free(Buf *b);              /* back to a zeroed Buf */
const char *buf_str(const Buf *b);  /* "" when empty */

/* Protobuf's base-128 varint (little-endian groups of 7 bits, high bit = more follow): at most
 * PB_VARINT_MAX bytes. pb_varint_put writes v at p (p may be NULL: only the length) and returns its
 * length; pb_varint_get reads one from p[*at..len), advancing *at (false: truncated or over 10 bytes). */
#define PB_VARINT_MAX 10
size_t pb_varint_put(uint8_t *p, uint64_t v);
size_t pb_varint_len(uint64_t v);
void buf_put_varint(Buf *b, uint64_t v);
bool pb_varint_get(const uint8_t *p, size_t len, size_t *at, uint64_t *v) COMMON_MUST_CHECK;

/* ======================================================================== common/crc32.c */

/* CRC-32 as zlib's crc32(): crc32_update(0, "123456789", 9) == 0xCBF43926; chain by passing the last value. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t n);

/* ======================================================================== common/file.c */

/* Atomic replacement of a file: open writes PATH.tmp.PID in PATH's folder (after removing PATH.tmp.PID
 * files of processes that no longer exist, killed mid-write), commit fsyncs it, renames it over PATH and
 * fsyncs the folder, so PATH is always absent, the old file or the whole new one, also after a crash.
 * abort removes the temporary. Failures give a FileStatus and a one-line message in err[errlen] (err may
 * be NULL) that does not name PATH (callers add it) but names the temporary where it matters. Commit
 * and a failed open leave the AtomicFile closed; after a failed write call abort. */
typedef enum {
    FILE_OK = 0,
    FILE_EIO,           /* open/write/fsync/close/rename failed (errno text in the message) */
    FILE_ENOMEM,        /* allocation failed */
} FileStatus;

typedef struct AtomicFile {
    int fd;                     /* -1: closed */
    char *path, *tmp;
} AtomicFile;

FileStatus atomic_file_open(AtomicFile *f, const char *path, char *err, size_t errlen) COMMON_MUST_CHECK;
FileStatus atomic_file_write(AtomicFile *f, const void *data, size_t n, char *err, size_t errlen) COMMON_MUST_CHECK;
FileStatus atomic_file_commit(AtomicFile *f, char *err, size_t errlen) COMMON_MUST_CHECK;
void atomic_file_abort(AtomicFile *f);
/* The whole of data[0..n) written to path by the four steps above. */
FileStatus atomic_write(const char *path, const void *data, size_t n, char *err, size_t errlen) COMMON_MUST_CHECK;

/* ======================================================================== common/json.c */

/* Writing JSON (RFC 8259) into a Buf. Strings are always valid UTF-8 JSON: '"', '\\' and control
 * characters are escaped (\n, \t, ... or \u00XX), a byte that is not part of valid UTF-8 (overlong
 * forms, surrogates, beyond U+10FFFF, truncated) becomes the escape \uFFFD; everything else is copied.
 * JSON has no NaN or infinity: non-finite numbers are written as null, everywhere we write JSON. */
void json_put_string(Buf *b, const char *s, size_t n);
void json_put_str(Buf *b, const char *s);   /* a C string; NULL gives null */
/* The shortest decimal that reads back as v (as a float when is_float); null when not finite. */
void json_put_number(Buf *b, double v, bool is_float);
/* printf's %.<digits>g of v; null when not finite. */
void json_put_g(Buf *b, double v, int digits);
/* The shortest decimal text that reads back as v (as a float when is_float) in buf[size]; for text
 * that is not JSON too ("inf", "nan" there). Returns buf. */
const char *fmt_shortest(char *buf, size_t size, double v, bool is_float);

/* Decode one UTF-8 code point from s[0..n), n >= 1. Returns the bytes used (>= 1); invalid, overlong,
 * surrogate or truncated sequences give *cp = 0xFFFD and use 1 byte. */
size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* Reading JSON we wrote ourselves (the export's metadata, for instance): a strict RFC 8259 parser over
 * s[0..n) that locates values without building a tree. A JsonText is one value's text. */
typedef struct JsonText {
    const char *p;
    size_t n;
} JsonText;

/* The whole of s[0..n) is one JSON value (surrounding white space allowed): *out is it, trimmed. */
bool json_parse(const char *s, size_t n, JsonText *out) COMMON_MUST_CHECK;
/* v is an object with member key: *out is its value (the last one if repeated). false: not an object,
 * malformed, or no such member. */
bool json_get_member(JsonText v, const char *key, JsonText *out) COMMON_MUST_CHECK;
/* v is an array: *out its index-th element. false: not an array, malformed, or too short. */
bool json_get_element(JsonText v, size_t index, JsonText *out) COMMON_MUST_CHECK;
/* v is an object: its index-th member in text order, *key its name (a JSON string: json_get_string
 * decodes it) and *value its value. false: not an object, malformed, or too few members. */
bool json_get_entry(JsonText v, size_t index, JsonText *key, JsonText *value) COMMON_MUST_CHECK;
size_t json_array_length(JsonText v);         /* elements of an array (0: not one) */
bool json_is_null(JsonText v);
/* v is a number: *out (false: not a number). */
bool json_get_number(JsonText v, double *out) COMMON_MUST_CHECK;
/* v is a string: its decoded UTF-8 appended to b (\uXXXX and surrogate pairs decoded; a lone
 * surrogate becomes U+FFFD). false: not a string or malformed. */
bool json_get_string(JsonText v, Buf *b) COMMON_MUST_CHECK;

#endif
