/* dump_util.c - small text helpers of the dump printers (the growable string and UTF-8 decoding are
 * common/'s): cleaned names, human-readable numbers and the spelling of shapes and value types. No
 * model analysis here. */
#include "dump.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
        if (v->seq && v->seq->n >= 0) { /* known after inference: its length and element shapes */
            buf_printf(b, " of %d", v->seq->n);
            for (int i = 0; i < v->seq->n && i < 8; i++) {
                buf_printf(b, i ? ", " : " (");
                buf_shape(b, &v->seq->shapes[i]);
            }
            buf_printf(b, v->seq->n > 8 ? ", ...)" : v->seq->n ? ")" : "");
        }
        return;
    case VK_MAP:
        buf_printf(b, "map");
        return;
    case VK_OPTIONAL:
        if (v->opt == OPT_NONE) {
            buf_printf(b, "optional<%s> (empty)", dt);
            return;
        }
        buf_printf(b, "optional<");
        if (v->opt_kind == VK_TENSOR || v->opt_kind == VK_SEQUENCE) {
            Value e = *v;
            e.kind = v->opt_kind;
            buf_value_type(b, &e);
        } else {
            buf_printf(b, "%s", dt);
        }
        buf_printf(b, ">");
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
