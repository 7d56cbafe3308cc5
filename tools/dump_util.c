/* dump_util.c - small text helpers of the dump printers: a growable string, UTF-8 decoding,
 * human-readable numbers and the spelling of shapes and value types. No model analysis here. */
#include "dump.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool buf_reserve(Buf *b, size_t extra)
{
    if (b->oom)
        return false;
    size_t need;
    if (!size_add(b->len, extra, &need) || !size_add(need, 1, &need)) {
        b->oom = true;
        return false;
    }
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        if (!size_mul(cap, 2, &cap)) {
            b->oom = true;
            return false;
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

void buf_putn(Buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n))
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
    memset(b, 0, sizeof *b);
}

const char *buf_str(const Buf *b)
{
    return b->p ? b->p : "";
}

size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;      /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F;      /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;      /* nothing above U+10FFFF */
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

void buf_put_clean(Buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_next(u + i, n - i, &cp);
        bool bad = (cp == 0xFFFD && k == 1 && u[i] >= 0x80) || cp < 0x20 || cp == 0x7F ||
                   (cp >= 0x80 && cp < 0xA0);
        if (bad) {
            for (size_t j = 0; j < k; j++)
                buf_printf(b, "\\x%02X", u[i + j]);
        } else {
            buf_putn(b, s + i, k);
        }
        i += k;
    }
}

size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void buf_human(Buf *b, double v)
{
    static const char *const units[] = {"", "K", "M", "G", "T", "P", "E"};
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0])
        v /= 1000.0, u++;
    if (u == 0)
        buf_printf(b, "%.0f", v);
    else
        buf_printf(b, "%.*f%s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
}

void buf_human_bytes(Buf *b, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (bytes >= 1024.0 && u + 1 < sizeof units / sizeof units[0])
        bytes /= 1024.0, u++;
    if (u == 0)
        buf_printf(b, "%.0f B", bytes);
    else
        buf_printf(b, "%.1f %s", bytes, units[u]);
}

void buf_shape(Buf *b, const Shape *s)
{
    if (s->rank < 0) {
        buf_printf(b, "[?]");
        return;
    }
    buf_printf(b, "[");
    for (int i = 0; i < s->rank && i < IR_MAX_RANK; i++) {
        if (i)
            buf_printf(b, ",");
        if (s->dim[i] >= 0)
            buf_printf(b, "%lld", (long long)s->dim[i]);
        else if (s->sym[i] && s->sym[i][0])
            buf_put_clean(b, s->sym[i], strlen(s->sym[i]));
        else
            buf_printf(b, "?");
    }
    buf_printf(b, "]");
}

void buf_value_type(Buf *b, const Value *v)
{
    const char *dt = v->dtype == DT_UNDEFINED ? "?" : dtype_name(v->dtype);
    switch (v->kind) {
    case VK_TENSOR:
        buf_printf(b, "%s ", dt);
        buf_shape(b, &v->shape);
        return;
    case VK_SEQUENCE:
        buf_printf(b, "sequence<%s>", dt);
        return;
    case VK_MAP:
        buf_printf(b, "map");
        return;
    case VK_OPTIONAL:
        buf_printf(b, "optional<%s>", dt);
        return;
    case VK_SPARSE:
        buf_printf(b, "sparse %s ", dt);
        buf_shape(b, &v->shape);
        return;
    case VK_UNKNOWN:
        break;
    }
    buf_printf(b, "?");
}
