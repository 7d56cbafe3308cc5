/* test_common.c - common/ on its own: the buffer, varints against hand-computed bytes, CRC-32 against
 * zlib's check values, the atomic write (replaces, leaves no temporary, cleans stale ones of dead
 * processes, reports a missing folder), the JSON writer (escapes, invalid UTF-8, non-finite numbers as
 * null, the output read back) and the reader (members, elements, numbers, strings, malformed text). */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

static const char *in_dir(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    Buf b = {0};
    char tmp[4096];
    for (size_t got; (got = fread(tmp, 1, sizeof tmp, f)) > 0;)
        buf_putn(&b, tmp, got);
    fclose(f);
    buf_putn(&b, "", 0);
    *len = b.len;
    return b.p;
}

/* Files in dir other than the ones named. */
static int count_others(const char *a, const char *b)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, a) && (!b || strcmp(e->d_name, b));
    if (d)
        closedir(d);
    return n;
}

static void test_buf(void)
{
    Buf b = {0};
    CHECK_STR(buf_str(&b), "");
    buf_puts(&b, "ab");
    buf_printf(&b, "%d-%s", 42, "x");
    buf_putn(&b, "\0z", 2);
    CHECK_EQ_INT(b.len, 8);
    CHECK(memcmp(b.p, "ab42-x\0z", 8) == 0 && b.p[8] == '\0');
    for (int i = 0; i < 10000; i++)
        buf_printf(&b, "%04d", i);
    CHECK_EQ_INT(b.len, 8 + 40000);
    CHECK(!b.oom && memcmp(b.p + 8 + 4 * 9999, "9999", 4) == 0);
    buf_clear(&b);
    CHECK_EQ_INT(b.len, 0);
    CHECK_STR(buf_str(&b), "");
    buf_free(&b);
    CHECK(b.p == NULL && b.cap == 0);
}

static void test_varint(void)
{
    static const struct {
        uint64_t v;
        size_t n;
        uint8_t bytes[10];
    } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {127, 1, {0x7F}},
        {128, 2, {0x80, 0x01}},
        {300, 2, {0xAC, 0x02}},
        {16383, 2, {0xFF, 0x7F}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {UINT64_MAX, 10, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[PB_VARINT_MAX];
        CHECK_EQ_INT(pb_varint_put(out, cases[i].v), cases[i].n);
        CHECK_EQ_INT(pb_varint_len(cases[i].v), cases[i].n);
        CHECK_MSG(memcmp(out, cases[i].bytes, cases[i].n) == 0, "varint of %llu", (unsigned long long)cases[i].v);
        Buf b = {0};
        buf_put_varint(&b, cases[i].v);
        CHECK(b.len == cases[i].n && memcmp(b.p, cases[i].bytes, b.len) == 0);
        size_t at = 0;
        uint64_t back = 0;
        CHECK(pb_varint_get(cases[i].bytes, cases[i].n, &at, &back) && back == cases[i].v && at == cases[i].n);
        at = 0;
        CHECK(cases[i].n == 1 || !pb_varint_get(cases[i].bytes, cases[i].n - 1, &at, &back));  /* truncated */
        buf_free(&b);
    }
    static const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    size_t at = 0;
    uint64_t v;
    CHECK(!pb_varint_get(eleven, sizeof eleven, &at, &v));
}

static void test_crc(void)
{
    CHECK_EQ_INT(crc32_update(0, "123456789", 9), 0xCBF43926u);
    CHECK_EQ_INT(crc32_update(0, "", 0), 0);
    CHECK_EQ_INT(crc32_update(crc32_update(0, "12345", 5), "6789", 4), 0xCBF43926u);
}

static void test_atomic(void)
{
    char err[512], path[512];
    snprintf(path, sizeof path, "%s", in_dir("out.bin"));
    CHECK_MSG(atomic_write(path, "first", 5, err, sizeof err) == FILE_OK, "%s", err);
    size_t len = 0;
    char *s = slurp(path, &len);
    CHECK(s && len == 5 && memcmp(s, "first", 5) == 0);
    free(s);
    CHECK_EQ_INT(count_others("out.bin", NULL), 0);     /* no temporary left */

    /* a reader holding the old file keeps reading the old bytes: the new one is renamed over it */
    FILE *old = fopen(path, "rb");
    CHECK_MSG(atomic_write(path, "second!", 7, err, sizeof err) == FILE_OK, "%s", err);
    char got[16] = {0};
    CHECK(old && fread(got, 1, sizeof got, old) == 5 && memcmp(got, "first", 5) == 0);
    if (old)
        fclose(old);
    s = slurp(path, &len);
    CHECK(s && len == 7 && memcmp(s, "second!", 7) == 0);
    free(s);
    CHECK_EQ_INT(count_others("out.bin", NULL), 0);

    /* streamed, then abandoned: the old file stays and the temporary goes */
    AtomicFile f;
    CHECK(atomic_file_open(&f, path, err, sizeof err) == FILE_OK);
    CHECK(atomic_file_write(&f, "partial", 7, err, sizeof err) == FILE_OK);
    CHECK_EQ_INT(count_others("out.bin", NULL), 1);
    atomic_file_abort(&f);
    CHECK_EQ_INT(count_others("out.bin", NULL), 0);
    s = slurp(path, &len);
    CHECK(s && len == 7 && memcmp(s, "second!", 7) == 0);
    free(s);

    /* a temporary of a dead process is removed by the next write; one of a live process is not */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    char name[64];
    snprintf(name, sizeof name, "out.bin.tmp.%ld", (long)dead);
    FILE *t = fopen(in_dir(name), "wb");
    if (t)
        fclose(t);
    char live[64];
    snprintf(live, sizeof live, "out.bin.tmp.%ld", (long)getppid());
    t = fopen(in_dir(live), "wb");
    if (t)
        fclose(t);
    CHECK(atomic_write(path, "", 0, err, sizeof err) == FILE_OK);
    CHECK_EQ_INT(count_others("out.bin", live), 0);
    CHECK(access(in_dir(live), F_OK) == 0);
    unlink(in_dir(live));
    s = slurp(path, &len);
    CHECK(s && len == 0);
    free(s);

    /* a folder that does not exist: EIO naming the temporary, nothing created */
    FileStatus st = atomic_write(in_dir("no/such/file"), "x", 1, err, sizeof err);
    CHECK_MSG(st == FILE_EIO && strstr(err, "cannot create") && strstr(err, "no/such/file.tmp."), "%d %s", st, err);
    unlink(path);
}

/* JSON text that json_parse accepts and whose every string is valid UTF-8 with no raw control byte. */
static bool valid_json(const Buf *b)
{
    JsonText v;
    if (!json_parse(b->p, b->len, &v))
        return false;
    const unsigned char *u = (const unsigned char *)b->p;
    for (size_t i = 0; i < b->len;) {
        uint32_t cp;
        size_t k = utf8_next(u + i, b->len - i, &cp);
        if ((cp == 0xFFFD && k == 1 && u[i] >= 0x80) || cp < 0x20)
            return false;
        i += k;
    }
    return true;
}

static void test_json_write(void)
{
    Buf b = {0};
    static const char odd[] = "q\"b\\\n\t\x01\x7f caf\xc3\xa9 \xff \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 \xe2\x82";
    json_put_string(&b, odd, sizeof odd - 1);
    CHECK_STR(buf_str(&b), "\"q\\\"b\\\\\\n\\t\\u0001\x7f caf\xc3\xa9 \\uFFFD \\uFFFD\\uFFFD\\uFFFD "
                           "\\uFFFD\\uFFFD \\uFFFD\\uFFFD\\uFFFD\\uFFFD \\uFFFD\\uFFFD\"");
    CHECK(valid_json(&b));
    /* read back: the valid parts as they were, each invalid byte as U+FFFD */
    JsonText v;
    Buf back = {0};
    CHECK(json_parse(b.p, b.len, &v) && json_get_string(v, &back));
    CHECK(strncmp(buf_str(&back), "q\"b\\\n\t\x01\x7f caf\xc3\xa9 \xef\xbf\xbd ", 18) == 0);
    buf_free(&back);

    buf_clear(&b);
    buf_puts(&b, "[");
    json_put_number(&b, 0.1, false);
    buf_puts(&b, ",");
    json_put_number(&b, 0.1f, true);
    buf_puts(&b, ",");
    json_put_number(&b, NAN, false);
    buf_puts(&b, ",");
    json_put_number(&b, INFINITY, true);
    buf_puts(&b, ",");
    json_put_g(&b, -INFINITY, 9);
    buf_puts(&b, ",");
    json_put_g(&b, 2.5, 9);
    buf_puts(&b, ",");
    json_put_str(&b, NULL);
    buf_puts(&b, "]");
    CHECK_STR(buf_str(&b), "[0.1,0.1,null,null,null,2.5,null]");
    CHECK(valid_json(&b));
    char t[40];
    CHECK(strtod(fmt_shortest(t, sizeof t, 1.0 / 3.0, false), NULL) == 1.0 / 3.0 && strlen(t) <= 19);
    CHECK_STR(fmt_shortest(t, sizeof t, (float)(1.0 / 3.0), true), "0.33333334");
    buf_free(&b);
}

static void test_json_read(void)
{
    static const char doc[] = " {\"a\": [1, -2.5e+3, true, false, null, \"\\u00e9\\n\\ud83d\\ude00\"],\n"
                              "  \"b\": {\"c\": \"x\"}, \"k\\u0065y\": 7, \"a2\": \"\\ud800!\", \"n\": null} ";
    JsonText root, a, e, m;
    CHECK(json_parse(doc, sizeof doc - 1, &root));
    CHECK(json_get_member(root, "a", &a) && json_array_length(a) == 6);
    double x = 0;
    CHECK(json_get_element(a, 1, &e) && json_get_number(e, &x) && x == -2500);
    CHECK(json_get_element(a, 4, &e) && json_is_null(e));
    CHECK(!json_get_element(a, 6, &e));
    Buf s = {0};
    CHECK(json_get_element(a, 5, &e) && json_get_string(e, &s));
    CHECK_STR(buf_str(&s), "\xc3\xa9\n\xf0\x9f\x98\x80");
    buf_clear(&s);
    CHECK(json_get_member(root, "a2", &m) && json_get_string(m, &s));
    CHECK_STR(buf_str(&s), "\xef\xbf\xbd!");       /* a lone surrogate */
    CHECK(json_get_member(root, "key", &m) && json_get_number(m, &x) && x == 7);   /* escaped key */
    CHECK(json_get_member(root, "b", &m) && json_get_member(m, "c", &e));
    CHECK(json_get_member(root, "n", &m) && json_is_null(m));
    JsonText k;
    buf_clear(&s);
    CHECK(json_get_entry(root, 2, &k, &m) && json_get_string(k, &s) && json_get_number(m, &x) && x == 7);
    CHECK_STR(buf_str(&s), "key");
    buf_clear(&s);
    CHECK(!json_get_entry(root, 5, &k, &m) && !json_get_entry(a, 0, &k, &m));
    CHECK(!json_get_member(root, "c", &m));             /* only the top level */
    CHECK(!json_get_member(a, "a", &m));                /* not an object */
    buf_free(&s);
    /* a key inside a string is not a member (what strstr got wrong) */
    static const char tricky[] = "{\"note\":\"\\\"mean\\\":[9]\",\"mean\":[0.5,0.25]}";
    CHECK(json_parse(tricky, sizeof tricky - 1, &root) && json_get_member(root, "mean", &m));
    CHECK(json_array_length(m) == 2 && json_get_element(m, 0, &e) && json_get_number(e, &x) && x == 0.5);

    static const char *const bad[] = {"", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "[01]", "[1.]", "[.5]", "nan",
                                      "[\"\x01\"]", "\"\\x\"", "\"\\u12\"", "[1] [2]", "{'a':1}", "tru", "[-]",
                                      "[1e]", "\"abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!json_parse(bad[i], strlen(bad[i]), &root), "accepted '%s'", bad[i]);
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    CHECK(!json_parse(deep, sizeof deep, &root));       /* nesting beyond the limit */
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/onnxtune-common-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    test_buf();
    test_varint();
    test_crc();
    test_atomic();
    test_json_write();
    test_json_read();
    rmdir(dir);
    return test_summary("test_common");
}
