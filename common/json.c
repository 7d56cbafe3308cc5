/* json.c - JSON (RFC 8259) as we write and read it: a string escaper whose output is valid UTF-8 whatever
 * the input bytes, numbers with non-finite values as null, and a strict reader that finds members and
 * elements in a document without building a tree. Not a general library: no streaming, no pretty printing,
 * and the reader is meant for small documents (each lookup rescans). */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ UTF-8 */

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
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
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

static void put_utf8(Buf *b, uint32_t cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
    }
    buf_putn(b, u, n);
}

/* ------------------------------------------------------------------------ writing */

void json_put_string(Buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    buf_putn(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_next(u + i, n - i, &cp);
        switch (cp) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\b': buf_puts(b, "\\b"); break;
        case '\f': buf_puts(b, "\\f"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        default:
            if (cp < 0x20)
                buf_printf(b, "\\u%04X", (unsigned)cp);
            else if (cp == 0xFFFD && k == 1 && u[i] >= 0x80)
                buf_puts(b, "\\uFFFD");     /* an invalid byte, not a real U+FFFD */
            else
                buf_putn(b, s + i, k);
        }
        i += k;
    }
    buf_putn(b, "\"", 1);
}

void json_put_str(Buf *b, const char *s)
{
    if (s)
        json_put_string(b, s, strlen(s));
    else
        buf_puts(b, "null");
}

const char *fmt_shortest(char *buf, size_t size, double v, bool is_float)
{
    for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)v : back == v)
            break;
    }
    return buf;
}

void json_put_number(Buf *b, double v, bool is_float)
{
    char tmp[40];
    buf_puts(b, isfinite(v) ? fmt_shortest(tmp, sizeof tmp, v, is_float) : "null");
}

void json_put_g(Buf *b, double v, int digits)
{
    if (isfinite(v))
        buf_printf(b, "%.*g", digits, v);
    else
        buf_puts(b, "null");
}

/* ------------------------------------------------------------------------ reading */

#define JSON_MAX_DEPTH 64

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c <= 'F' ? c - 'A' + 10 : c - 'a' + 10);
    }
    return v;
}

/* A string at *p (its opening quote); decoded into out when out is not NULL. */
static bool scan_string(const char **pp, const char *e, Buf *out)
{
    const char *p = *pp;
    if (p >= e || *p++ != '"')
        return false;
    while (p < e && *p != '"') {
        unsigned char c = (unsigned char)*p++;
        if (c < 0x20)
            return false;
        if (c != '\\') {
            if (out)
                buf_putn(out, &c, 1);
            continue;
        }
        if (p >= e)
            return false;
        char esc = *p++;
        const char *simple = strchr("\"\\/bfnrt", esc);
        if (esc && simple) {
            if (out)
                buf_putn(out, &"\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        if (esc != 'u' || e - p < 4 || !is_hex(p[0]) || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3]))
            return false;
        uint32_t cp = hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u' && is_hex(p[2]) &&
            is_hex(p[3]) && is_hex(p[4]) && is_hex(p[5])) {
            uint32_t lo = hex4(p + 2);
            if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
        }
        if (cp >= 0xD800 && cp < 0xE000)
            cp = 0xFFFD;    /* a lone surrogate */
        if (out)
            put_utf8(out, cp);
    }
    if (p >= e)
        return false;
    *pp = p + 1;
    return true;
}

/* RFC 8259's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool scan_number(const char **pp, const char *e)
{
    const char *p = *pp;
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0')
        p++;
    else if (p < e && *p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (p < e && *p == '.') {
        if (++p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    *pp = p;
    return true;
}

static bool scan_value(const char **pp, const char *e, int depth);

/* The members of an object or the elements of an array at *p, each given to visit (NULL: only scan). */
typedef bool (*Visit)(void *ctx, const char *key, size_t klen, JsonText value);

static bool scan_container(const char **pp, const char *e, int depth, Visit visit, void *ctx)
{
    const char *p = *pp;
    char open = *p++, close = open == '{' ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH)
        return false;
    p = skip_ws(p, e);
    if (p < e && *p == close) {
        *pp = p + 1;
        return true;
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        if (open == '{') {
            key = p;
            if (!scan_string(&p, e, NULL))
                return false;
            klen = (size_t)(p - key);
            p = skip_ws(p, e);
            if (p >= e || *p++ != ':')
                return false;
            p = skip_ws(p, e);
        }
        const char *start = p;
        if (!scan_value(&p, e, depth + 1))
            return false;
        if (visit && !visit(ctx, key, klen, (JsonText){start, (size_t)(p - start)}))
            return false;
        p = skip_ws(p, e);
        if (p < e && *p == ',') {
            p = skip_ws(p + 1, e);
            continue;
        }
        if (p < e && *p == close) {
            *pp = p + 1;
            return true;
        }
        return false;
    }
}

static bool scan_literal(const char **pp, const char *e, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(e - *pp) < n || memcmp(*pp, word, n) != 0)
        return false;
    *pp += n;
    return true;
}

static bool scan_value(const char **pp, const char *e, int depth)
{
    if (*pp >= e)
        return false;
    switch (**pp) {
    case '{':
    case '[': return scan_container(pp, e, depth, NULL, NULL);
    case '"': return scan_string(pp, e, NULL);
    case 't': return scan_literal(pp, e, "true");
    case 'f': return scan_literal(pp, e, "false");
    case 'n': return scan_literal(pp, e, "null");
    default: return scan_number(pp, e);
    }
}

bool json_parse(const char *s, size_t n, JsonText *out)
{
    const char *e = s + n, *p = skip_ws(s, e), *start = p;
    if (!scan_value(&p, e, 0))
        return false;
    *out = (JsonText){start, (size_t)(p - start)};
    return skip_ws(p, e) == e;
}

typedef struct Find {
    const char *key;        /* a member: its name; NULL: the index-th element or member */
    size_t index, seen;
    JsonText found, found_key;
    bool ok;
} Find;

static bool find_visit(void *ctx, const char *key, size_t klen, JsonText value)
{
    Find *f = ctx;
    if (f->key) {
        Buf name = {0};
        const char *p = key;
        bool match = scan_string(&p, key + klen, &name) && !name.oom && strlen(f->key) == name.len &&
                     memcmp(buf_str(&name), f->key, name.len) == 0;
        buf_free(&name);
        if (match)
            f->found = value, f->ok = true;
    } else if (f->seen == f->index) {
        f->found = value, f->found_key = (JsonText){key, klen}, f->ok = true;
    }
    f->seen++;
    return true;
}

static bool find(JsonText v, char open, Find *f)
{
    const char *p = v.p;
    if (!v.n || *p != open)
        return false;
    return scan_container(&p, v.p + v.n, 0, find_visit, f) && p == v.p + v.n;
}

bool json_get_member(JsonText v, const char *key, JsonText *out)
{
    Find f = {.key = key};
    if (!find(v, '{', &f) || !f.ok)
        return false;
    *out = f.found;
    return true;
}

bool json_get_element(JsonText v, size_t index, JsonText *out)
{
    Find f = {.index = index};
    if (!find(v, '[', &f) || !f.ok)
        return false;
    *out = f.found;
    return true;
}

bool json_get_entry(JsonText v, size_t index, JsonText *key, JsonText *value)
{
    Find f = {.index = index};
    if (!find(v, '{', &f) || !f.ok)
        return false;
    *key = f.found_key;
    *value = f.found;
    return true;
}

size_t json_array_length(JsonText v)
{
    Find f = {.index = SIZE_MAX};
    return find(v, '[', &f) ? f.seen : 0;
}

bool json_is_null(JsonText v)
{
    return v.n == 4 && memcmp(v.p, "null", 4) == 0;
}

bool json_get_number(JsonText v, double *out)
{
    const char *p = v.p;
    char tmp[64];
    if (!v.n || v.n >= sizeof tmp || !scan_number(&p, v.p + v.n) || p != v.p + v.n)
        return false;
    memcpy(tmp, v.p, v.n);
    tmp[v.n] = '\0';
    *out = strtod(tmp, NULL);
    return true;
}

bool json_get_string(JsonText v, Buf *b)
{
    const char *p = v.p;
    return scan_string(&p, v.p + v.n, b) && p == v.p + v.n && !b->oom;
}
