/* buf.c - the growable byte buffer and the protobuf varint. The buffer never shrinks and stops growing
 * at the first failed allocation (oom); it does not know what it holds. */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for extra more bytes and the terminating NUL. */
static bool buf_reserve(Buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX - 1 - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void buf_putn(Buf *b, const void *data, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_puts(Buf *b, const char *s)
{
    buf_putn(b, s, strlen(s));
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_clear(Buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void buf_free(Buf *b)
{
    free(b->p);
    *b = (Buf){0};
}

const char *buf_str(const Buf *b)
{
    return b->p ? b->p : "";
}

/* ------------------------------------------------------------------------ protobuf varints */

size_t pb_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7, n++)
        if (p)
            p[n] = (uint8_t)(v | 0x80);
    if (p)
        p[n] = (uint8_t)v;
    return n + 1;
}

size_t pb_varint_len(uint64_t v)
{
    return pb_varint_put(NULL, v);
}

void buf_put_varint(Buf *b, uint64_t v)
{
    uint8_t tmp[PB_VARINT_MAX];
    buf_putn(b, tmp, pb_varint_put(tmp, v));
}

bool pb_varint_get(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *at < len; shift += 7) {
        uint8_t c = p[(*at)++];
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}
