/* test_npy.c - the .npy reader/writer against files NumPy wrote (tests/ref/rt/npy, made by
 * tests/ref/make_rt_ref.py): byte-identical rewrites, every dtype, 0-d and empty arrays, v2/v3
 * headers, refused layouts, and truncated or corrupted images that must fail cleanly.
 */
#include "rt_ref.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX REF_DIR "/npy/"

static char tmpdir[64];

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* Reading a NumPy file and writing it back must give NumPy's bytes exactly (v1 files). */
static void test_rewrite_identical(const char *stem, RtDType dt, int rank)
{
    char path[256], out[256], err[512];
    snprintf(path, sizeof path, FIX "%s.npy", stem);
    snprintf(out, sizeof out, "%s/%s.npy", tmpdir, stem);
    NpyArray a;
    NpyStatus st = npy_read(path, &a, err, sizeof err);
    CHECK_MSG(st == NPY_OK, "%s", err);
    if (st != NPY_OK)
        return;
    CHECK_MSG(a.dtype == dt, "%s: dtype %s", stem, rt_dtype_name(a.dtype));
    CHECK_EQ_INT(a.rank, rank);
    st = npy_write(out, a.dtype, a.rank, a.dims, a.data, err, sizeof err);
    CHECK_MSG(st == NPY_OK, "%s", err);
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = slurp(path, &n1), *b2 = slurp(out, &n2);
    CHECK_MSG(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "%s: rewrite differs from NumPy's file (%zu vs %zu bytes)",
              stem, n1, n2);

    /* npy_map and npy_parse see the same array. */
    NpyArray m, p;
    st = npy_map(path, &m, err, sizeof err);
    CHECK_MSG(st == NPY_OK, "map %s", err);
    if (st == NPY_OK) {
        CHECK(m.numel == a.numel && m.rank == a.rank && memcmp(m.data, a.data, a.nbytes) == 0);
        npy_free(&m);
    }
    st = npy_parse(b1, n1, &p, err, sizeof err);
    CHECK_MSG(st == NPY_OK, "parse %s", err);
    if (st == NPY_OK) {
        CHECK(p.numel == a.numel && memcmp(p.data, a.data, a.nbytes) == 0);
        npy_free(&p);
    }
    free(b1);
    free(b2);
    npy_free(&a);
}

static void test_numpy_files(void)
{
    test_rewrite_identical("f32_2x3", RT_FLOAT, 2);
    test_rewrite_identical("f64_4", RT_DOUBLE, 1);
    test_rewrite_identical("f16_3x2", RT_FLOAT16, 2);
    test_rewrite_identical("i8_5", RT_INT8, 1);
    test_rewrite_identical("i16_2x2", RT_INT16, 2);
    test_rewrite_identical("i32_3", RT_INT32, 1);
    test_rewrite_identical("i64_2x1x2", RT_INT64, 3);
    test_rewrite_identical("u8_2x2", RT_UINT8, 2);
    test_rewrite_identical("u16_3", RT_UINT16, 1);
    test_rewrite_identical("u32_2", RT_UINT32, 1);
    test_rewrite_identical("u64_2", RT_UINT64, 1);
    test_rewrite_identical("bool_2x3", RT_BOOL, 2);
    test_rewrite_identical("f32_scalar", RT_FLOAT, 0);
    test_rewrite_identical("f32_empty_0x3", RT_FLOAT, 2);
    test_rewrite_identical("f32_rank8", RT_FLOAT, 8);

    /* Known values. */
    char err[512];
    NpyArray a;
    if (npy_read(FIX "i64_2x1x2.npy", &a, err, sizeof err) == NPY_OK) {
        const int64_t *v = a.data;
        CHECK(a.dims[0] == 2 && a.dims[1] == 1 && a.dims[2] == 2);
        CHECK(v[0] == INT64_MIN && v[1] == -1 && v[2] == 0 && v[3] == INT64_MAX);
        npy_free(&a);
    }
    if (npy_read(FIX "f32_scalar.npy", &a, err, sizeof err) == NPY_OK) {
        CHECK(a.rank == 0 && a.numel == 1 && ((float *)a.data)[0] == 3.5f);
        npy_free(&a);
    }
    if (npy_read(FIX "f32_empty_0x3.npy", &a, err, sizeof err) == NPY_OK) {
        CHECK(a.numel == 0 && a.nbytes == 0 && a.dims[0] == 0 && a.dims[1] == 3);
        npy_free(&a);
    }
    if (npy_read(FIX "bool_2x3.npy", &a, err, sizeof err) == NPY_OK) {
        const uint8_t want[6] = {1, 0, 1, 0, 0, 1};
        CHECK(memcmp(a.data, want, 6) == 0);
        npy_free(&a);
    }

    /* Format 2.0 and 3.0 headers hold the same array. */
    NpyArray v1, v;
    if (npy_read(FIX "f32_2x3.npy", &v1, err, sizeof err) == NPY_OK) {
        const char *other[] = {FIX "f32_2x3_v2.npy", FIX "f32_2x3_v3.npy"};
        for (int i = 0; i < 2; i++) {
            NpyStatus st = npy_read(other[i], &v, err, sizeof err);
            CHECK_MSG(st == NPY_OK, "%s", err);
            if (st == NPY_OK) {
                CHECK(v.rank == 2 && v.dims[0] == 2 && v.dims[1] == 3 && memcmp(v.data, v1.data, 24) == 0);
                npy_free(&v);
            }
        }
        npy_free(&v1);
    }
}

/* Files NumPy wrote that we refuse, with the words the message must contain. */
static void test_refused(void)
{
    static const struct { const char *file; NpyStatus st; const char *words; } cases[] = {
        {FIX "fortran_2x3.npy", NPY_EUNSUPPORTED, "Fortran"},
        {FIX "bigendian_f4.npy", NPY_EUNSUPPORTED, "big-endian"},
        {FIX "complex64.npy", NPY_EUNSUPPORTED, "'<c8' is not supported"},
        {FIX "rank9.npy", NPY_EUNSUPPORTED, "rank above 8"},
        {FIX "structured.npy", NPY_EUNSUPPORTED, "not a simple dtype"},
        {FIX "no_such_file.npy", NPY_EIO, "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        NpyArray a;
        NpyStatus st = npy_read(cases[i].file, &a, err, sizeof err);
        CHECK_MSG(st == cases[i].st, "%s: status %s (%s)", cases[i].file, npy_status_name(st), err);
        CHECK_MSG(strstr(err, cases[i].words) && strstr(err, cases[i].file), "%s: message '%s'", cases[i].file, err);
        CHECK(a.data == NULL);
        st = npy_map(cases[i].file, &a, err, sizeof err);
        CHECK_MSG(st == cases[i].st, "map %s: %s", cases[i].file, err);
    }
}

/* Every dtype and rank 0..3 (with an empty one) through write -> read/map. */
static void test_round_trips(void)
{
    static const RtDType dts[] = {RT_FLOAT, RT_DOUBLE, RT_FLOAT16, RT_INT8, RT_INT16, RT_INT32, RT_INT64,
                                  RT_UINT8, RT_UINT16, RT_UINT32, RT_UINT64, RT_BOOL};
    static const size_t shapes[][3] = {{0, 0, 0}, {7, 0, 0}, {3, 5, 0}, {2, 3, 4}, {4, 0, 2}};
    static const int ranks[] = {0, 1, 2, 3, 3};
    unsigned char buf[24 * 8];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    for (size_t t = 0; t < sizeof dts / sizeof dts[0]; t++) {
        unsigned char data[24 * 8];
        memcpy(data, buf, sizeof data);
        if (dts[t] == RT_BOOL)
            for (size_t i = 0; i < sizeof data; i++)
                data[i] &= 1;
        for (size_t s = 0; s < 5; s++) {
            char path[256], err[512];
            snprintf(path, sizeof path, "%s/rt_%zu_%zu.npy", tmpdir, t, s);
            NpyStatus st = npy_write(path, dts[t], ranks[s], shapes[s], data, err, sizeof err);
            CHECK_MSG(st == NPY_OK, "%s", err);
            NpyArray a, m;
            st = npy_read(path, &a, err, sizeof err);
            CHECK_MSG(st == NPY_OK, "%s", err);
            if (st != NPY_OK)
                continue;
            size_t numel = 1;
            for (int d = 0; d < ranks[s]; d++)
                numel *= shapes[s][d];
            CHECK(a.dtype == dts[t] && a.rank == ranks[s] && a.numel == numel);
            CHECK(a.nbytes == numel * rt_dtype_size(dts[t]) && memcmp(a.data, data, a.nbytes) == 0);
            CHECK(((uintptr_t)a.data % rt_dtype_size(dts[t])) == 0);
            st = npy_map(path, &m, err, sizeof err);
            CHECK_MSG(st == NPY_OK, "%s", err);
            if (st == NPY_OK) {
                CHECK(m.numel == numel && memcmp(m.data, data, m.nbytes) == 0);
                CHECK(((uintptr_t)m.data % rt_dtype_size(dts[t])) == 0);
                npy_free(&m);
            }
            npy_free(&a);
            CHECK(a.data == NULL);
        }
    }
    char err[512];
    size_t d1 = 2;
    uint16_t bf[2] = {0};
    CHECK(npy_write("/nonexistent-dir/x.npy", RT_FLOAT, 1, &d1, bf, err, sizeof err) == NPY_EIO);
    CHECK(strstr(err, "/nonexistent-dir/x.npy") != NULL);
    CHECK(npy_write("unused.npy", RT_BFLOAT16, 1, &d1, bf, err, sizeof err) == NPY_EUNSUPPORTED);
    CHECK(npy_write("unused.npy", RT_FLOAT, 9, &d1, bf, err, sizeof err) == NPY_EUNSUPPORTED);
}

/* npy_write replaces a file as common/'s atomic write does: a reader holding the old file keeps the old
 * bytes, no temporary is left beside it, and a temporary a killed writer left (PATH.tmp.PID of a dead
 * process) is removed. What this cannot see is the fsync itself (that the bytes reach the disk before
 * the rename): tests/cmake/one_writer.sh checks that npy.c has no rename or fsync of its own. */
static void test_write_atomic(void)
{
    char path[256], stale[300], err[512];
    snprintf(path, sizeof path, "%s/atomic.npy", tmpdir);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(stale, sizeof stale, "%s.tmp.%ld", path, (long)dead);
    FILE *f = fopen(stale, "wb");
    if (f)
        fclose(f);
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
    size_t d3 = 3;
    CHECK_MSG(npy_write(path, RT_FLOAT, 1, &d3, a, err, sizeof err) == NPY_OK, "%s", err);
    CHECK_MSG(access(stale, F_OK) != 0, "%s (a dead writer's temporary) is still there", stale);
    NpyArray held;
    CHECK(npy_read(path, &held, err, sizeof err) == NPY_OK);
    FILE *old = fopen(path, "rb");
    CHECK_MSG(npy_write(path, RT_FLOAT, 1, &d3, b, err, sizeof err) == NPY_OK, "%s", err);
    size_t len = 0;
    unsigned char *now = slurp(path, &len);
    CHECK(now && len == 128 + sizeof b && memcmp(now + 128, b, sizeof b) == 0);
    free(now);
    unsigned char was[128 + sizeof a];
    CHECK(old && fread(was, 1, sizeof was, old) == sizeof was && memcmp(was + 128, a, sizeof a) == 0);
    if (old)
        fclose(old);
    npy_free(&held);
    DIR *dir = opendir(tmpdir);
    for (struct dirent *e; dir && (e = readdir(dir));)
        CHECK_MSG(!strstr(e->d_name, "atomic.npy.tmp"), "a temporary was left: %s", e->d_name);
    if (dir)
        closedir(dir);
}

/* A v1 image with the given header dict text and `extra` data bytes. */
static size_t make_image(unsigned char *img, const char *dict, size_t data_bytes)
{
    size_t hl = strlen(dict) + 1;
    memcpy(img, "\x93NUMPY\x01\x00", 8);
    img[8] = (unsigned char)(hl & 0xff);
    img[9] = (unsigned char)(hl >> 8);
    memcpy(img + 10, dict, hl - 1);
    img[10 + hl - 1] = '\n';
    memset(img + 10 + hl, 0, data_bytes);
    return 10 + hl + data_bytes;
}

static void test_bad_headers(void)
{
    static const struct { const char *dict; size_t data; NpyStatus st; const char *words; } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, NPY_OK, ""},
        {"{\"descr\": \"<i4\", \"shape\": (1, 2), \"fortran_order\": False}", 8, NPY_OK, ""},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }", 8, NPY_OK, ""},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 4, NPY_EFORMAT, "truncated data: 4 of 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12, NPY_EFORMAT, "4 bytes of trailing"},
        {"{'descr': '<f4', 'fortran_order': False, }", 0, NPY_EFORMAT, "missing 'shape'"},
        {"{'descr': '<f4', 'shape': (2,), }", 8, NPY_EFORMAT, "missing 'fortran_order'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, NPY_EFORMAT, "repeated key 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, NPY_EFORMAT, "unexpected or repeated key 'x'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 0, NPY_EFORMAT, "non-negative integers"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, ), } x", 8, NPY_EFORMAT, "trailing characters"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8, NPY_EFORMAT, "not True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': 2, }", 8, NPY_EFORMAT, "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 8, NPY_EFORMAT, "malformed 'shape'"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 8, NPY_EFORMAT, "needs a byte order"},
        {"{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 8, NPY_EUNSUPPORTED, "not supported"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8, NPY_EUNSUPPORTED, "dtype '<f4, '"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }", 0,
         NPY_ENOMEM, "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, NPY_EFORMAT, "too large"},
        {"['descr', '<f4']", 0, NPY_EFORMAT, "not a dict"},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", 1, NPY_OK, ""},
    };
    static unsigned char img[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = make_image(img, cases[i].dict, cases[i].data);
        char err[512] = "";
        NpyArray a;
        NpyStatus st = npy_parse(img, n, &a, err, sizeof err);
        CHECK_MSG(st == cases[i].st, "case %zu: %s, want %s (%s)", i, npy_status_name(st),
                  npy_status_name(cases[i].st), err);
        CHECK_MSG(strstr(err, cases[i].words) != NULL, "case %zu: message '%s' lacks '%s'", i, err, cases[i].words);
        npy_free(&a);
    }

    /* A bool byte that is not 0/1, a bad magic, an unknown version, a huge header length. */
    char err[512];
    NpyArray a;
    size_t n = make_image(img, "{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", 1);
    img[n - 1] = 2;
    CHECK(npy_parse(img, n, &a, err, sizeof err) == NPY_EFORMAT && strstr(err, "not 0 or 1"));
    n = make_image(img, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4);
    img[1] = 'X';
    CHECK(npy_parse(img, n, &a, err, sizeof err) == NPY_EFORMAT && strstr(err, "bad magic"));
    img[1] = 'N';
    img[6] = 4;
    CHECK(npy_parse(img, n, &a, err, sizeof err) == NPY_EUNSUPPORTED && strstr(err, "version 4.0"));
    img[6] = 2;   /* v2 reads a 4-byte length: the dict's first bytes make it huge */
    CHECK(npy_parse(img, n, &a, err, sizeof err) == NPY_EFORMAT);
    CHECK(npy_parse(img, 0, &a, err, sizeof err) == NPY_EFORMAT && strstr(err, "too short"));
    CHECK(npy_parse(img, 0, &a, NULL, 0) == NPY_EFORMAT);   /* no message buffer is fine */
}

/* Every prefix of a valid file fails; random corruptions never crash and never claim more data. */
static void test_truncation_and_fuzz(void)
{
    size_t len = 0;
    unsigned char *img = slurp(FIX "f32_2x3_v2.npy", &len);
    CHECK(img != NULL && len > 0);
    if (!img)
        return;
    for (size_t n = 0; n < len; n++) {
        char err[256] = "";
        NpyArray a;
        NpyStatus st = npy_parse(img, n, &a, err, sizeof err);
        CHECK_MSG(st == NPY_EFORMAT && err[0], "prefix of %zu bytes: %s '%s'", n, npy_status_name(st), err);
    }
    /* Truncated files on disk too, through both file readers. */
    char path[256];
    snprintf(path, sizeof path, "%s/trunc.npy", tmpdir);
    for (size_t n = 0; n < len; n += 7) {
        FILE *f = fopen(path, "wb");
        fwrite(img, 1, n, f);
        fclose(f);
        char err[256] = "";
        NpyArray a;
        CHECK_MSG(npy_read(path, &a, err, sizeof err) == NPY_EFORMAT, "read prefix %zu: %s", n, err);
        CHECK_MSG(npy_map(path, &a, err, sizeof err) == NPY_EFORMAT, "map prefix %zu: %s", n, err);
    }
    uint64_t s = 88172645463325252ull;
    unsigned char *mut = malloc(len);
    int ok_count = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(mut, img, len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            size_t pos = (size_t)(s % (len < 140 ? len : 140));   /* mostly the header */
            mut[pos] = (unsigned char)(s >> 32);
        }
        NpyArray a;
        char err[256];
        if (npy_parse(mut, len, &a, err, sizeof err) == NPY_OK) {
            ok_count++;
            CHECK(a.nbytes <= len && a.data != NULL);
            npy_free(&a);
        }
    }
    printf("fuzz: %d of 20000 mutated images still parsed\n", ok_count);
    free(mut);
    free(img);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_npy.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_numpy_files();
    test_refused();
    test_round_trips();
    test_write_atomic();
    test_bad_headers();
    test_truncation_and_fuzz();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary("test_npy");
}
