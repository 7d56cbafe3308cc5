/* test_dataset.c - data/dataset.c: NPY pairs read and memory-mapped (a sparse file above the 256 MiB
 * threshold in a temporary folder), .npz stored / deflated / ZIP64 (numpy-made fixtures) and damaged archives, image
 * folders against torchvision's ImageFolder listing and transforms (tests/data/make_data.py), skipping of
 * corrupt images at open and substitution while loading, the digits PNGs against their NPY twin, seeded
 * shuffles against a Python splitmix64, splits, and the prefetcher giving the same batches as direct loads.
 */
#include "program.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATA "tests/data/"

static char err[2048];

/* Every file the test writes lives in one folder of its own (mkdtemp under $TMPDIR or /tmp), so that
 * runs in several checkouts at once do not share names. TMP(name) interns the path: the pointer stays
 * valid for the whole run. */
static char tmp_dir[256];

static const char *TMP(const char *name)
{
    static char paths[64][320];
    static size_t n;
    char want[320];
    snprintf(want, sizeof want, "%s/%s", tmp_dir, name);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(paths[i], want))
            return paths[i];
    if (n == 64) {
        fprintf(stderr, "test_dataset: more than 64 temporary paths\n");
        exit(1);
    }
    memcpy(paths[n], want, sizeof want);
    return paths[n++];
}

/* ------------------------------------------------------------------------ helpers */

typedef struct {
    char lines[64][512];
    size_t n;
} Warnings;

static void collect(void *ctx, const char *msg)
{
    Warnings *w = ctx;
    if (w->n < 64)
        snprintf(w->lines[w->n++], sizeof w->lines[0], "%s", msg);
}

static bool warned_about(const Warnings *w, const char *what)
{
    for (size_t i = 0; i < w->n; i++)
        if (strstr(w->lines[i], what))
            return true;
    return false;
}

static size_t read_lines(const char *path, char **v, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t n = 0;
    CHECK_MSG(f != NULL, "cannot open %s", path);
    while (f && n < max && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0])
            v[n++] = strdup(line);
    }
    if (f)
        fclose(f);
    return n;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f && fwrite(data, 1, len, f) == len, "cannot write %s", path);
    if (f)
        fclose(f);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    *len = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    return b;
}

static void expect_error(DatasetStatus st, const char *what, const char *needle)
{
    CHECK_MSG(st != DATASET_OK, "%s: opened without error", what);
    CHECK_MSG(st == DATASET_OK || strstr(err, needle), "%s: message \"%s\" does not mention \"%s\"", what, err, needle);
    if (st != DATASET_OK)
        printf("  %-28s -> %s\n", what, err);
}

/* ------------------------------------------------------------------------ NPY pairs */

static void test_npy_pairs(void)
{
    DatasetOptions o;
    dataset_options_default(&o);
    float x[7][3];
    int64_t y[7];
    for (int i = 0; i < 7; i++) {
        for (int j = 0; j < 3; j++)
            x[i][j] = (float)(i * 10 + j) + 0.25f;
        y[i] = (i * 3) % 4;
    }
    size_t xd[2] = {7, 3}, yd[1] = {7};
    CHECK(npy_write(TMP("ds_x.npy"), RT_FLOAT, 2, xd, x, err, sizeof err) == NPY_OK);
    CHECK(npy_write(TMP("ds_y.npy"), RT_INT64, 1, yd, y, err, sizeof err) == NPY_OK);
    size_t idx[4] = {6, 0, 3, 3};
    float bx[2][4][3];
    int64_t by[2][4];
    for (int pass = 0; pass < 2; pass++) {      /* read, then mapped (threshold 0) */
        Dataset ds;
        o.mmap_threshold = pass ? 0 : SIZE_MAX;
        DatasetStatus st = dataset_open_arrays(&ds, TMP("ds_x.npy"), TMP("ds_y.npy"), &o, err,
                                               sizeof err);
        CHECK_MSG(st == DATASET_OK, "%s", err);
        if (st != DATASET_OK)
            continue;
        CHECK(ds.mapped == (pass == 1));
        CHECK(ds.n == 7 && ds.x.dtype == RT_FLOAT && ds.x.rank == 1 && ds.x.dims[0] == 3 && ds.x.bytes == 12);
        CHECK(ds.y.dtype == RT_INT64 && ds.y.rank == 0 && ds.y.bytes == 8 && ds.labels != NULL);
        CHECK(dataset_batch(&ds, idx, 4, 0, bx[pass], by[pass], err, sizeof err) == DATASET_OK);
        for (int k = 0; k < 4; k++) {
            CHECK(memcmp(bx[pass][k], x[idx[k]], sizeof x[0]) == 0);
            CHECK_EQ_INT(by[pass][k], y[idx[k]]);
        }
        CHECK(dataset_check_labels(&ds, 4, err, sizeof err) == DATASET_OK);
        CHECK(dataset_check_labels(&ds, 3, err, sizeof err) == DATASET_EFORMAT && strstr(err, "label 3 of sample 1"));
        size_t out_of_range = 7;
        CHECK(dataset_batch(&ds, &out_of_range, 1, 0, bx[pass], by[pass], err, sizeof err) == DATASET_EINVAL);
        dataset_close(&ds);
    }
    /* bad pairs */
    Dataset ds;
    dataset_options_default(&o);
    size_t yd6[1] = {6};
    CHECK(npy_write(TMP("ds_y6.npy"), RT_INT64, 1, yd6, y, err, sizeof err) == NPY_OK);
    expect_error(dataset_open_arrays(&ds, TMP("ds_x.npy"), TMP("ds_y6.npy"), &o, err, sizeof err),
                 "x 7 samples, y 6", "has 7 samples but");
    int32_t y32[7] = {0};
    CHECK(npy_write(TMP("ds_y32.npy"), RT_INT32, 1, yd, y32, err, sizeof err) == NPY_OK);
    expect_error(dataset_open_arrays(&ds, TMP("ds_x.npy"), TMP("ds_y32.npy"), &o, err, sizeof err),
                 "y int32", "int32: y must be int64");
    expect_error(dataset_open_arrays(&ds, TMP("ds_x.npy"), NULL, &o, err, sizeof err), "no y file",
                 "y file is missing");
    expect_error(dataset_open_arrays(&ds, TMP("ds_nonexistent.npy"), TMP("ds_y.npy"), &o, err,
                                     sizeof err), "missing x file", "cannot open");
    expect_error(dataset_open_arrays(&ds, DATA "img/rgb8.png", TMP("ds_y.npy"), &o, err, sizeof err),
                 "x not an .npy", "not an .npy");
    /* float32 targets of any per-sample shape are fine; they are not labels */
    float yt[7][2] = {{0}};
    size_t ytd[2] = {7, 2};
    CHECK(npy_write(TMP("ds_yt.npy"), RT_FLOAT, 2, ytd, yt, err, sizeof err) == NPY_OK);
    CHECK(dataset_open_arrays(&ds, TMP("ds_x.npy"), TMP("ds_yt.npy"), &o, err, sizeof err) ==
          DATASET_OK);
    CHECK(ds.y.dtype == RT_FLOAT && ds.y.rank == 1 && ds.y.dims[0] == 2 && ds.labels == NULL);
    CHECK(dataset_check_labels(&ds, 2, err, sizeof err) == DATASET_EINVAL);
    dataset_close(&ds);
    remove(TMP("ds_y6.npy"));
    remove(TMP("ds_y32.npy"));
    remove(TMP("ds_yt.npy"));
}

/* An X.npy of 270 MB, sparse (written as a header and a hole), above the default threshold: mapped. */
static void test_big_mapped(void)
{
    const char *xp = TMP("ds_big_x.npy"), *yp = TMP("ds_big_y.npy");
    const size_t n = 66000, cols = 1024;
    char hdr[128];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", n, cols);
    unsigned char pre[128];
    size_t hlen = 128 - 10;   /* preamble + header = 128 bytes, data 64-byte aligned */
    memcpy(pre, "\x93NUMPY\x01\x00", 8);
    pre[8] = (unsigned char)hlen;
    pre[9] = 0;
    memset(pre + 10, ' ', hlen);
    memcpy(pre + 10, hdr, (size_t)hl);
    pre[127] = '\n';
    int fd = open(xp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    size_t total = 128 + n * cols * 4;
    bool ok = pwrite(fd, pre, 128, 0) == 128 && ftruncate(fd, (off_t)total) == 0;
    size_t marks[3] = {0, 31337, n - 1};
    for (int k = 0; k < 3; k++) {
        float row[4] = {(float)marks[k], -1.5f, 2.5f, (float)k};
        ok = ok && pwrite(fd, row, sizeof row, (off_t)(128 + marks[k] * cols * 4 + 8)) == sizeof row;
    }
    close(fd);
    CHECK(ok);
    int64_t *y = calloc(n, sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = (int64_t)(i % 10);
    size_t yd[1] = {n};
    CHECK(npy_write(yp, RT_INT64, 1, yd, y, err, sizeof err) == NPY_OK);
    DatasetOptions o;
    dataset_options_default(&o);
    Dataset ds;
    DatasetStatus st = dataset_open_arrays(&ds, xp, yp, &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st == DATASET_OK) {
        CHECK_MSG(ds.mapped, "a %zu-byte X was read, not mapped", total);
        CHECK(ds.n == n && ds.x.bytes == cols * 4);
        float *bx = malloc(3 * cols * 4);
        int64_t by[3];
        CHECK(dataset_batch(&ds, marks, 3, 0, bx, by, err, sizeof err) == DATASET_OK);
        for (int k = 0; k < 3; k++) {
            const float *r = bx + (size_t)k * cols;
            CHECK(r[0] == 0 && r[1] == 0 && r[2] == (float)marks[k] && r[3] == -1.5f && r[4] == 2.5f &&
                  r[5] == (float)k && r[6] == 0);
            CHECK_EQ_INT(by[k], (int64_t)(marks[k] % 10));
        }
        printf("big X.npy: %zu MB memory-mapped, rows 0, 31337, %zu read back\n", total >> 20, n - 1);
        free(bx);
        dataset_close(&ds);
    }
    free(y);
    remove(xp);
    remove(yp);
}

/* ------------------------------------------------------------------------ .npz */

static void check_arrays_npz(const char *path, size_t threshold, bool expect_mapped)
{
    DatasetOptions o;
    dataset_options_default(&o);
    o.mmap_threshold = threshold;
    Dataset ds;
    DatasetStatus st = dataset_open_arrays(&ds, path, NULL, &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s: %s", path, err);
    if (st != DATASET_OK)
        return;
    CHECK_MSG(ds.mapped == expect_mapped, "%s: mapped %d", path, ds.mapped);
    CHECK(ds.n == 5 && ds.x.dtype == RT_FLOAT && ds.x.rank == 2 && ds.x.dims[0] == 2 && ds.x.dims[1] == 3);
    CHECK(ds.y.dtype == RT_INT64 && ds.y.rank == 0 && ds.labels);
    size_t idx[5] = {4, 2, 0, 1, 3};
    float x[5][6];
    int64_t y[5];
    CHECK(dataset_batch(&ds, idx, 5, 0, x, y, err, sizeof err) == DATASET_OK);
    size_t bad = 0;
    for (int k = 0; k < 5; k++) {
        for (int j = 0; j < 6; j++)
            bad += x[k][j] != 0.5f * (float)(idx[k] * 6 + (size_t)j);
        bad += y[k] != 4 - (int64_t)idx[k];
    }
    CHECK_MSG(bad == 0, "%s: %zu values differ from numpy's arrays", path, bad);
    dataset_close(&ds);
}

static void test_npz(void)
{
    check_arrays_npz(DATA "npz/arrays.npz", DATASET_MMAP_THRESHOLD, false);
    check_arrays_npz(DATA "npz/arrays.npz", 0, true);
    check_arrays_npz(DATA "npz/arrays_deflated.npz", DATASET_MMAP_THRESHOLD, false);
    check_arrays_npz(DATA "npz/arrays_deflated.npz", 0, true);
    check_arrays_npz(DATA "npz/arrays_zip64.npz", DATASET_MMAP_THRESHOLD, false);

    DatasetOptions o;
    dataset_options_default(&o);
    Dataset ds;
    DatasetStatus st = dataset_open_arrays(&ds, DATA "npz/uint8_x.npz", NULL, &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st == DATASET_OK) {
        CHECK(ds.x.dtype == RT_UINT8 && ds.x.bytes == 3 && ds.y.dtype == RT_FLOAT && ds.y.bytes == 8);
        size_t idx[2] = {3, 1};
        uint8_t x[2][3];
        float y[2][2];
        CHECK(dataset_batch(&ds, idx, 2, 0, x, y, err, sizeof err) == DATASET_OK);
        for (int k = 0; k < 2; k++) {
            for (int j = 0; j < 3; j++)
                CHECK_EQ_INT(x[k][j], (idx[k] * 3 + (size_t)j) * 7);
            for (int j = 0; j < 2; j++)
                CHECK(y[k][j] == (float)(idx[k] * 2 + (size_t)j) / 4);
        }
        dataset_close(&ds);
    }
    expect_error(dataset_open_arrays(&ds, DATA "npz/only_x.npz", NULL, &o, err, sizeof err), "npz without y",
                 "no 'y' member");
    expect_error(dataset_open_arrays(&ds, DATA "npz/bad_ydtype.npz", NULL, &o, err, sizeof err), "npz y uint8",
                 "uint8: y must be int64");
    expect_error(dataset_open_arrays(&ds, DATA "npz/mismatch.npz", NULL, &o, err, sizeof err), "npz 5 x, 4 y",
                 "has 5 samples but");
    expect_error(dataset_open_arrays(&ds, DATA "npz/arrays.npz", TMP("ds_y.npy"), &o, err, sizeof err),
                 "npz and a y file", "holds both x and y");

    /* damaged copies of the stored and the deflated archive */
    size_t len, dlen;
    unsigned char *z = slurp(DATA "npz/arrays.npz", &len), *d = slurp(DATA "npz/arrays_deflated.npz", &dlen);
    CHECK(z && d && len > 200 && dlen > 200);
    if (!z || !d || len <= 200 || dlen <= 200)
        return;
    const char *tmp = TMP("ds_bad.npz");
    unsigned char *c = malloc(len > dlen ? len : dlen);
    size_t eocd = len - 22;   /* numpy writes no archive comment */
    CHECK(z[eocd] == 'P' && z[eocd + 1] == 'K' && z[eocd + 2] == 5 && z[eocd + 3] == 6);

    write_file(tmp, z, len * 6 / 10);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "truncated npz", "end-of-central-directory");
    memcpy(c, z, len);
    c[eocd + 16] = 0xF0;      /* central directory offset past the end */
    write_file(tmp, c, len);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "bad directory offset",
                 "central directory");
    memcpy(c, z, len);
    size_t cd = (size_t)c[eocd + 16] | (size_t)c[eocd + 17] << 8;
    c[cd + 1] = 'X';          /* a damaged central directory entry */
    write_file(tmp, c, len);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "bad directory entry",
                 "entry 1 of 2 is missing or damaged");
    memcpy(c, z, len);
    c[eocd + 10] = 9;         /* more entries than the directory holds */
    write_file(tmp, c, len);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "entry count too large", "entry 3 of 9");
    memcpy(c, z, len);
    c[200] ^= 0x40;           /* a data byte of x.npy: the CRC no longer matches */
    write_file(tmp, c, len);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "stored member damaged", "CRC-32 mismatch");
    memcpy(c, z, len);
    for (size_t at = 4; at + 4 < len; at++)   /* the second member's (y's) local header */
        if (memcmp(c + at, "PK\x03\x04", 4) == 0) {
            c[at + 2] = 'Q';
            break;
        }
    write_file(tmp, c, len);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "bad local header", "no local header");
    memcpy(c, d, dlen);
    c[dlen / 4] ^= 0xFF;      /* inside x's deflate stream */
    write_file(tmp, c, dlen);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "deflate data damaged", "member x.npy");
    write_file(tmp, "PK\x03\x04garbage", 11);
    expect_error(dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err), "tiny fake zip", "too short");
    /* every truncation and many byte flips of both archives: an error or the right data, never a crash */
    size_t opened = 0;
    for (int which = 0; which < 2; which++) {
        const unsigned char *src = which ? d : z;
        size_t n = which ? dlen : len;
        for (size_t cut = 0; cut < n; cut += 7) {
            write_file(tmp, src, cut);
            if (dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err) == DATASET_OK) {
                opened++;
                dataset_close(&ds);
            }
        }
        uint64_t state = 99 + (uint64_t)which;
        for (int t = 0; t < 400; t++) {
            memcpy(c, src, n);
            c[dataset_splitmix64(&state) % n] ^= (unsigned char)(1 + dataset_splitmix64(&state) % 255);
            write_file(tmp, c, n);
            if (dataset_open_arrays(&ds, tmp, NULL, &o, err, sizeof err) == DATASET_OK) {
                size_t i = 0;
                float x[6];
                int64_t y;
                CHECK(dataset_batch(&ds, &i, 1, 0, x, &y, err, sizeof err) == DATASET_OK);
                dataset_close(&ds);
            }
        }
    }
    CHECK_MSG(opened == 0, "%zu truncated archives opened", opened);
    remove(tmp);
    free(c);
    free(z);
    free(d);
}

/* ------------------------------------------------------------------------ image folders */

/* Several inputs (bert3's data, int64 [20,8] x3 and y [20]): the packed rows are the inputs' rows in the
 * order given, each at an 8-aligned offset, from .npy files (read or mapped) and from a deflated .npz. */
#define B3 "tests/ref/train/bert3_last_cls_sgd/"
static void test_inputs(void)
{
    const char *names[3] = {"input_ids", "attention_mask", "token_type_ids"};
    const char *paths[3] = {B3 "x_input_ids.npy", B3 "x_attention_mask.npy", B3 "x_token_type_ids.npy"};
    NpyArray ref[4];
    bool ok = true;
    for (int k = 0; k < 3; k++)
        ok = ok && npy_read(paths[k], &ref[k], err, sizeof err) == NPY_OK;
    ok = ok && npy_read(B3 "y.npy", &ref[3], err, sizeof err) == NPY_OK;
    CHECK_MSG(ok, "%s", err);
    if (!ok)
        return;
    for (int mode = 0; mode < 3; mode++) {   /* npy read, npy mapped, npz */
        DatasetOptions o;
        dataset_options_default(&o);
        if (mode == 1)
            o.mmap_threshold = 0;
        Dataset ds;
        DatasetStatus st = dataset_open_inputs(&ds, 3, names, mode < 2 ? paths : NULL, mode == 2 ? B3 "data.npz" : NULL,
                                               mode < 2 ? B3 "y.npy" : NULL, true, &o, err, sizeof err);
        CHECK_MSG(st == DATASET_OK, "mode %d: %s", mode, err);
        if (st != DATASET_OK)
            continue;
        CHECK(ds.n == 20 && ds.nparts == 3 && ds.x.bytes == 3 * 64 && ds.labels && ds.mapped == (mode == 1));
        size_t idx[3] = {19, 0, 7};
        int64_t x[3][24], y[3];
        CHECK(dataset_batch(&ds, idx, 3, 0, x, y, err, sizeof err) == DATASET_OK);
        size_t bad = 0;
        for (int r = 0; r < 3; r++) {
            for (int k = 0; k < 3; k++)
                bad += memcmp(&x[r][k * 8], (const int64_t *)ref[k].data + idx[r] * 8, 64) != 0;
            bad += y[r] != ((const int64_t *)ref[3].data)[idx[r]];
        }
        CHECK_MSG(bad == 0, "mode %d: %zu rows differ from the arrays", mode, bad);
        dataset_close(&ds);
    }
    /* without y (predict): y.bytes 0; with need_y: an error naming the archive */
    DatasetOptions o;
    dataset_options_default(&o);
    Dataset ds;
    DatasetStatus st = dataset_open_inputs(&ds, 3, names, paths, NULL, NULL, false, &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK && ds.y.bytes == 0, "%s", err);
    if (st == DATASET_OK)
        dataset_close(&ds);
    expect_error(dataset_open_inputs(&ds, 3, names, paths, NULL, NULL, true, &o, err, sizeof err), "inputs, no y",
                 "targets' file is missing");
    const char *other[3] = {"input_ids", "attention_mask", "segment_ids"};
    expect_error(dataset_open_inputs(&ds, 3, other, NULL, B3 "data.npz", NULL, true, &o, err, sizeof err),
                 "npz without a key", "no 'segment_ids' member");
    const char *uneven[3] = {paths[0], paths[1], "tests/ref/train/mlp_sgd/y.npy"};
    expect_error(dataset_open_inputs(&ds, 3, names, uneven, NULL, B3 "y.npy", true, &o, err, sizeof err),
                 "inputs of other lengths", "token_type_ids=tests/ref/train/mlp_sgd/y.npy has 36 samples but "
                 "input_ids=" B3 "x_input_ids.npy has 20");
    /* a bool input (a mask saved as np.bool_) keeps its type: 8 bytes a row, padded to 8 after int64 ids */
    uint8_t mask[20][5];
    for (int r = 0; r < 20; r++)
        for (int c = 0; c < 5; c++)
            mask[r][c] = (uint8_t)((r + c) % 3 == 0);
    size_t mdims[2] = {20, 5};
    CHECK(npy_write(TMP("ds_mask.npy"), RT_BOOL, 2, mdims, mask, err, sizeof err) == NPY_OK);
    const char *bnames[2] = {"attention_mask", "input_ids"}, *bpaths[2] = {TMP("ds_mask.npy"), paths[0]};
    st = dataset_open_inputs(&ds, 2, bnames, bpaths, NULL, B3 "y.npy", true, &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st == DATASET_OK) {
        CHECK(ds.part[0].dtype == RT_BOOL && ds.part[0].bytes == 5 && ds.part[1].dtype == RT_INT64 &&
              ds.x.bytes == 8 + 64);
        size_t idx[2] = {4, 17};
        unsigned char x[2][72];
        CHECK(dataset_batch(&ds, idx, 2, 0, x, NULL, err, sizeof err) == DATASET_OK);
        for (int r = 0; r < 2; r++)
            CHECK(memcmp(x[r], mask[idx[r]], 5) == 0 && x[r][5] == 0 && x[r][7] == 0 &&
                  memcmp(x[r] + 8, (const int64_t *)ref[0].data + idx[r] * 8, 64) == 0);
        dataset_close(&ds);
    }
    remove(TMP("ds_mask.npy"));
    for (int k = 0; k < 4; k++)
        npy_free(&ref[k]);
}

static void folder_options(DatasetOptions *o, Warnings *w)
{
    dataset_options_default(o);
    image_transform_default(&o->transform, 3, 16, 16);   /* make_data.py's FOLDER_CFG */
    o->transform.resize = 20;
    o->transform.crop = true;
    o->warn = collect;
    o->warn_ctx = w;
}

static void test_folder(void)
{
    char *classes[8], *list[32], *bad[8];
    size_t nc = read_lines(DATA "ref/folder_classes.txt", classes, 8);
    size_t nl = read_lines(DATA "ref/folder_list.txt", list, 32);
    size_t nb = read_lines(DATA "ref/folder_bad.txt", bad, 8);
    NpyArray rx, ry;
    CHECK(npy_read(DATA "ref/folder_x.npy", &rx, err, sizeof err) == NPY_OK);
    CHECK(npy_read(DATA "ref/folder_y.npy", &ry, err, sizeof err) == NPY_OK);
    DatasetOptions o;
    Warnings w = {.n = 0};
    folder_options(&o, &w);
    Dataset ds;
    DatasetStatus st = dataset_open_images(&ds, DATA "folder", &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st != DATASET_OK)
        return;
    /* classes and listing as torchvision's ImageFolder, minus the files PIL cannot load */
    CHECK_EQ_INT(ds.nclasses, nc);
    for (size_t c = 0; c < nc && c < ds.nclasses; c++)
        CHECK_STR(ds.class_names[c], classes[c]);
    CHECK_EQ_INT(ds.n, nl);
    for (size_t i = 0; i < nl && i < ds.n; i++) {
        char *tab = strchr(list[i], '\t'), want[600];
        CHECK(tab != NULL);
        if (!tab)
            continue;
        *tab = 0;
        snprintf(want, sizeof want, DATA "folder/%s", list[i]);
        CHECK_STR(dataset_path(&ds, i), want);
        CHECK_EQ_INT(ds.labels[i], atoll(tab + 1));
        CHECK_EQ_INT(ds.labels[i], ((const int64_t *)ry.data)[i]);
    }
    CHECK_EQ_INT(dataset_skipped(&ds), nb);
    CHECK_EQ_INT(ds.ignored, 1);   /* cat/pic.bmp */
    for (size_t i = 0; i < nb; i++)
        CHECK_MSG(warned_about(&w, bad[i]), "no warning names %s", bad[i]);
    CHECK_MSG(warned_about(&w, "1 image files of other formats"), "no warning about pic.bmp");
    CHECK_EQ_INT(w.n, nb + 1);
    /* the samples as torchvision's Resize(20) + CenterCrop(16) + ToTensor + Normalize(ImageNet) */
    size_t all[32], per = 3 * 16 * 16;
    for (size_t i = 0; i < ds.n; i++)
        all[i] = i;
    float *x = malloc(ds.n * per * sizeof *x);
    int64_t y[32];
    CHECK(rx.numel == ds.n * per);
    CHECK(dataset_batch(&ds, all, ds.n, 0, x, y, err, sizeof err) == DATASET_OK);
    size_t diff = 0;
    for (size_t k = 0; k < ds.n * per && rx.numel == ds.n * per; k++)
        diff += x[k] != ((const float *)rx.data)[k];
    CHECK_MSG(diff == 0, "%zu of %zu values differ from torchvision's", diff, ds.n * per);
    for (size_t i = 0; i < ds.n; i++)
        CHECK_EQ_INT(y[i], ds.labels[i]);
    printf("folder: %zu classes, %zu images in ImageFolder order, %zu skipped with a warning, %zu ignored, "
           "pixels as torchvision\n", ds.nclasses, ds.n, dataset_skipped(&ds), ds.ignored);

    /* without validation at open: the corrupt files are listed, and replaced while loading by the next
     * readable file with that file's label, the same way on every load */
    Warnings w2 = {.n = 0};
    DatasetOptions o2;
    folder_options(&o2, &w2);
    o2.validate_limit = 0;
    Dataset lazy;
    st = dataset_open_images(&lazy, DATA "folder", &o2, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st == DATASET_OK) {
        CHECK_EQ_INT(lazy.n, nl + nb);
        CHECK_EQ_INT(dataset_skipped(&lazy), 0);
        size_t idx[32];
        for (size_t i = 0; i < lazy.n; i++)
            idx[i] = lazy.n - 1 - i;   /* backwards: substitutes are found before their own turn */
        float *lx = malloc(lazy.n * per * sizeof *lx);
        int64_t ly[32];
        for (int round = 0; round < 2; round++) {
            CHECK(dataset_batch(&lazy, idx, lazy.n, 0, lx, ly, err, sizeof err) == DATASET_OK);
            size_t wrong = 0;
            for (size_t k = 0; k < lazy.n; k++) {
                /* the file loaded for sample idx[k]: itself if good, else the next good one (wrapping) */
                size_t j = idx[k], good = SIZE_MAX;
                for (size_t t = 0; t < lazy.n && good == SIZE_MAX; t++, j = (j + 1) % lazy.n)
                    for (size_t g = 0; g < ds.n; g++)
                        if (strcmp(dataset_path(&lazy, j), dataset_path(&ds, g)) == 0)
                            good = g;
                CHECK(good != SIZE_MAX);
                if (good == SIZE_MAX)
                    continue;
                wrong += memcmp(lx + k * per, x + good * per, per * sizeof *lx) != 0 || ly[k] != y[good];
            }
            CHECK_MSG(wrong == 0, "round %d: %zu samples are not the expected file or substitute", round, wrong);
        }
        CHECK_EQ_INT(dataset_skipped(&lazy), nb);
        CHECK_EQ_INT(w2.n, nb + 1);   /* each bad file warned once, over two rounds */
        free(lx);
        dataset_close(&lazy);
    }

    /* a validation folder maps its classes by name onto the training list */
    const char *train_classes[4] = {"bird", "dog", "Zebra", "cat"};
    Warnings w3 = {.n = 0};
    DatasetOptions o3;
    folder_options(&o3, &w3);
    o3.classes = train_classes;
    o3.nclasses = 4;
    Dataset val;
    st = dataset_open_images(&val, DATA "folder", &o3, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st == DATASET_OK) {
        CHECK_EQ_INT(val.nclasses, 4);
        CHECK_STR(val.class_names[0], "bird");
        const int64_t remap[3] = {2, 3, 1};   /* Zebra, cat, dog */
        for (size_t i = 0; i < val.n && i < ds.n; i++)
            CHECK_EQ_INT(val.labels[i], remap[ds.labels[i]]);
        dataset_close(&val);
    }
    const char *too_few[2] = {"cat", "dog"};
    o3.classes = too_few;
    o3.nclasses = 2;
    expect_error(dataset_open_images(&val, DATA "folder", &o3, err, sizeof err), "class not in training list",
                 "'Zebra' is not one of the 2 training classes");

    /* folders that are not image folders */
    expect_error(dataset_open_images(&val, DATA "npz", &o, err, sizeof err), "folder without classes",
                 "no class folders");
    expect_error(dataset_open_images(&val, TMP("no_such_dir"), &o, err, sizeof err), "missing folder",
                 "cannot list");
    mkdir(TMP("ds_emptycls"), 0755);
    mkdir(TMP("ds_emptycls/a"), 0755);
    expect_error(dataset_open_images(&val, TMP("ds_emptycls"), &o, err, sizeof err), "empty class",
                 "class folder 'a' holds no .png");
    mkdir(TMP("ds_allbad"), 0755);
    mkdir(TMP("ds_allbad/a"), 0755);
    write_file(TMP("ds_allbad/a/x.png"), "not a png", 9);
    expect_error(dataset_open_images(&val, TMP("ds_allbad"), &o, err, sizeof err), "only corrupt images",
                 "none of its 1 images");
    o2.validate_limit = 0;
    st = dataset_open_images(&val, TMP("ds_allbad"), &o2, err, sizeof err);
    CHECK(st == DATASET_OK);
    if (st == DATASET_OK) {
        size_t i = 0;
        expect_error(dataset_batch(&val, &i, 1, 0, x, y, err, sizeof err), "load from only corrupt images",
                     "none of its 1 images");
        dataset_close(&val);
    }
    ImageTransform bad_tf = o.transform;
    o.transform.std[1] = 0;
    expect_error(dataset_open_images(&val, DATA "folder", &o, err, sizeof err), "std 0", "std must be finite");
    o.transform = bad_tf;
    o.transform.channels = 4;
    expect_error(dataset_open_images(&val, DATA "folder", &o, err, sizeof err), "4 channels", "4 channels");
    remove(TMP("ds_allbad/a/x.png"));
    rmdir(TMP("ds_allbad/a"));
    rmdir(TMP("ds_allbad"));
    rmdir(TMP("ds_emptycls/a"));
    rmdir(TMP("ds_emptycls"));

    free(x);
    dataset_close(&ds);
    npy_free(&rx);
    npy_free(&ry);
    for (size_t i = 0; i < nc; i++)
        free(classes[i]);
    for (size_t i = 0; i < nl; i++)
        free(list[i]);
    for (size_t i = 0; i < nb; i++)
        free(bad[i]);
}

/* models/digits/images/train: the demo's PNGs against train_x.npy / train_y.npy (pixel = round(255 x)). */
static void test_digits(void)
{
    NpyArray tx, ty;
    if (npy_read("models/digits/train_x.npy", &tx, err, sizeof err) != NPY_OK ||
        npy_read("models/digits/train_y.npy", &ty, err, sizeof err) != NPY_OK) {
        CHECK_MSG(0, "%s", err);
        return;
    }
    DatasetOptions o;
    dataset_options_default(&o);
    image_transform_default(&o.transform, 1, 8, 8);
    Dataset ds;
    DatasetStatus st = dataset_open_images(&ds, "models/digits/images/train", &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st != DATASET_OK)
        return;
    size_t n = tx.dims[0];
    CHECK_EQ_INT(ds.n, n);
    CHECK_EQ_INT(ds.nclasses, 5);
    CHECK_EQ_INT(dataset_skipped(&ds), 0);
    for (size_t c = 0; c < ds.nclasses; c++) {
        char want[2] = {(char)('5' + c), 0};
        CHECK_STR(ds.class_names[c], want);
    }
    const float *X = tx.data;
    const int64_t *Y = ty.data;
    size_t *order = malloc(ds.n * sizeof *order), *seen = calloc(5, sizeof *seen), exact_bad = 0, far = 0;
    float *x = malloc(ds.n * 64 * sizeof *x);
    int64_t *y = malloc(ds.n * sizeof *y);
    for (size_t i = 0; i < ds.n; i++)
        order[i] = i;
    CHECK(dataset_batch(&ds, order, ds.n, 0, x, y, err, sizeof err) == DATASET_OK);
    /* file NNNN.png of class c is the NNNN-th sample of train_x with label c */
    for (size_t i = 0; i < ds.n && ds.n == n; i++) {
        int64_t c = y[i];
        CHECK(c >= 0 && c < 5);
        if (c < 0 || c >= 5)
            continue;
        size_t k = 0, j = 0;
        for (; j < n; j++)
            if (Y[j] == c && k++ == seen[c])
                break;
        seen[c]++;
        CHECK(j < n);
        if (j >= n)
            continue;
        char name[32];
        snprintf(name, sizeof name, "/%04zu.png", seen[c] - 1);
        CHECK(strstr(dataset_path(&ds, i), name) != NULL);
        for (size_t p = 0; p < 64; p++) {
            float want = nearbyintf(X[j * 64 + p] * 255.0f) / 255.0f;
            exact_bad += x[i * 64 + p] != want;
            far += fabsf(x[i * 64 + p] - X[j * 64 + p]) > 1.0f / 510.0f + 1e-7f;
        }
    }
    CHECK_MSG(exact_bad == 0 && far == 0, "digits: %zu pixels differ from round(255 x)/255, %zu by more than 1/510",
              exact_bad, far);
    printf("digits: %zu PNGs of models/digits/images/train match train_x.npy (round(255x)/255) and train_y.npy\n",
           ds.n);
    free(order);
    free(seen);
    free(x);
    free(y);
    dataset_close(&ds);
    npy_free(&tx);
    npy_free(&ty);
}

/* ------------------------------------------------------------------------ order */

static void test_shuffle_split(void)
{
    NpyArray ref;
    if (npy_read(DATA "ref/shuffles.npy", &ref, err, sizeof err) != NPY_OK) {
        CHECK_MSG(0, "%s", err);
        return;
    }
    const int64_t *r = ref.data;
    size_t cases = 0;
    for (size_t at = 0; at + 3 <= ref.numel; cases++) {
        size_t n = (size_t)r[at];
        uint64_t seed = (uint64_t)r[at + 1], epoch = (uint64_t)r[at + 2];
        size_t *order = malloc(n * sizeof *order), bad = 0;
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        dataset_shuffle(order, n, dataset_shuffle_state(seed, epoch));
        for (size_t i = 0; i < n && at + 3 + i < ref.numel; i++)
            bad += order[i] != (size_t)r[at + 3 + i];
        CHECK_MSG(bad == 0, "shuffle n=%zu seed=%llu epoch=%llu: %zu positions differ from Python's", n,
                  (unsigned long long)seed, (unsigned long long)epoch, bad);
        free(order);
        at += 3 + n;
    }
    CHECK_EQ_INT(cases, 3);
    npy_free(&ref);

    /* plain split: ceil(F n) validate, disjoint, complete, sorted, seeded */
    size_t n = 103, tr[103], va[103], nt, nv, tr2[103], va2[103], nt2, nv2;
    CHECK(dataset_split(n, NULL, 0.2, 5, tr, &nt, va, &nv, err, sizeof err) == DATASET_OK);
    CHECK_EQ_INT(nv, 21);
    CHECK_EQ_INT(nt, 82);
    unsigned char mark[103] = {0};
    for (size_t i = 0; i < nv; i++)
        mark[va[i]] |= 1;
    for (size_t i = 0; i < nt; i++)
        mark[tr[i]] |= 2;
    size_t both = 0, none = 0, unsorted = 0;
    for (size_t i = 0; i < n; i++) {
        both += mark[i] == 3;
        none += mark[i] == 0;
    }
    for (size_t i = 1; i < nv; i++)
        unsorted += va[i - 1] >= va[i];
    for (size_t i = 1; i < nt; i++)
        unsorted += tr[i - 1] >= tr[i];
    CHECK(both == 0 && none == 0 && unsorted == 0);
    /* the validation set is the first k of the seed's permutation (trainer.c's rule) */
    size_t perm[103];
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    dataset_shuffle(perm, n, dataset_shuffle_state(5, 0));
    for (size_t i = 0; i < 21; i++)
        CHECK(mark[perm[i]] == 1);
    CHECK(dataset_split(n, NULL, 0.2, 5, tr2, &nt2, va2, &nv2, err, sizeof err) == DATASET_OK);
    CHECK(nv2 == nv && memcmp(va, va2, nv * sizeof *va) == 0);
    CHECK(dataset_split(n, NULL, 0.2, 6, tr2, &nt2, va2, &nv2, err, sizeof err) == DATASET_OK);
    CHECK(memcmp(va, va2, nv * sizeof *va) != 0);
    CHECK(dataset_split(n, NULL, 0.0, 5, tr, &nt, va, &nv, err, sizeof err) == DATASET_EINVAL);
    CHECK(dataset_split(1, NULL, 0.5, 5, tr, &nt, va, &nv, err, sizeof err) == DATASET_EINVAL);
    CHECK(dataset_split(2, NULL, 0.99, 5, tr, &nt, va, &nv, err, sizeof err) == DATASET_OK && nv == 1 && nt == 1);

    /* stratified: class sizes 50, 30, 20, 2, 1 -> round(0.2 n_c) capped at n_c - 1: 10, 6, 4, 0, 0 */
    int64_t labels[103];
    for (size_t i = 0; i < n; i++)
        labels[i] = i < 50 ? 2 : i < 80 ? 0 : i < 100 ? 7 : i < 102 ? 3 : 9;
    /* interleave the classes so a sorted split could not pass by accident */
    for (size_t i = 0; i < n; i++) {
        size_t j = (i * 37) % n;
        int64_t t = labels[i];
        labels[i] = labels[j];
        labels[j] = t;
    }
    CHECK(dataset_split(n, labels, 0.2, 11, tr, &nt, va, &nv, err, sizeof err) == DATASET_OK);
    size_t per_class[10] = {0}, class_n[10] = {0};
    for (size_t i = 0; i < n; i++)
        class_n[labels[i]]++;
    for (size_t i = 0; i < nv; i++)
        per_class[labels[va[i]]]++;
    for (int c = 0; c < 10; c++) {
        size_t want = class_n[c] ? (size_t)floor(0.2 * (double)class_n[c] + 0.5) : 0;
        if (class_n[c] && want >= class_n[c])
            want = class_n[c] - 1;
        CHECK_MSG(per_class[c] == want, "class %d (%zu samples): %zu validate, want %zu", c, class_n[c],
                  per_class[c], want);
    }
    CHECK_EQ_INT(nv + nt, n);
}

/* ------------------------------------------------------------------------ prefetcher */

/* One pass over order[n] in batches: with the prefetcher (depth) or by direct dataset_batch calls; the
 * concatenated x and y. */
static size_t run_pass(const Dataset *ds, Prefetcher *pf, const size_t *order, size_t n, size_t batch, uint64_t epoch,
                       unsigned char *x, unsigned char *y)
{
    size_t got = 0;
    if (!pf) {
        for (size_t at = 0; at < n; at += batch) {
            size_t rows = n - at < batch ? n - at : batch;
            CHECK(dataset_batch(ds, order + at, rows, epoch, x + at * ds->x.bytes, y + at * ds->y.bytes, err,
                                sizeof err) == DATASET_OK);
            got += rows;
        }
        return got;
    }
    CHECK(prefetcher_start(pf, order, n, batch, epoch, err, sizeof err) == DATASET_OK);
    for (;;) {
        void *bx, *by;
        size_t count;
        DatasetStatus st = prefetcher_next(pf, &bx, &by, &count, err, sizeof err);
        CHECK_MSG(st == DATASET_OK, "%s", err);
        if (st != DATASET_OK || count == 0)
            break;
        CHECK(((uintptr_t)bx & 63) == 0);
        memcpy(x + got * ds->x.bytes, bx, count * ds->x.bytes);
        memcpy(y + got * ds->y.bytes, by, count * ds->y.bytes);
        memset(bx, 0xAB, count * ds->x.bytes);   /* the caller may scribble on the batch it holds */
        got += count;
    }
    return got;
}

static void test_prefetch(void)
{
    Warnings w = {.n = 0};
    DatasetOptions o;
    folder_options(&o, &w);
    o.validate_limit = 0;      /* corrupt files found (and substituted) while loading, in both threads */
    o.transform.augment_crop = o.transform.augment_flip = true;
    o.transform.crop = false;
    o.transform.height = o.transform.width = 14;
    o.transform.seed = 77;
    Dataset ds;
    DatasetStatus st = dataset_open_images(&ds, DATA "folder", &o, err, sizeof err);
    CHECK_MSG(st == DATASET_OK, "%s", err);
    if (st != DATASET_OK)
        return;
    size_t n = ds.n, reps = 3, total = n * reps;
    size_t *order = malloc(total * sizeof *order);
    unsigned char *xs[3], *ys[3];
    for (int k = 0; k < 3; k++) {
        xs[k] = malloc(total * ds.x.bytes);
        ys[k] = malloc(total * ds.y.bytes);
    }
    Prefetcher *sync = NULL, *async = NULL;
    CHECK(prefetcher_open(&sync, &ds, 5, 0, err, sizeof err) == DATASET_OK);
    CHECK(prefetcher_open(&async, &ds, 5, 2, err, sizeof err) == DATASET_OK);
    for (uint64_t epoch = 1; epoch <= 3 && sync && async; epoch++) {
        for (size_t i = 0; i < total; i++)
            order[i] = i % n;
        dataset_shuffle(order, total, dataset_shuffle_state(77, epoch));
        size_t batch = epoch == 2 ? 5 : 4;
        size_t g0 = run_pass(&ds, NULL, order, total, batch, epoch, xs[0], ys[0]);
        size_t g1 = run_pass(&ds, sync, order, total, batch, epoch, xs[1], ys[1]);
        size_t g2 = run_pass(&ds, async, order, total, batch, epoch, xs[2], ys[2]);
        CHECK(g0 == total && g1 == total && g2 == total);
        CHECK_MSG(memcmp(xs[0], xs[1], total * ds.x.bytes) == 0 && memcmp(ys[0], ys[1], total * ds.y.bytes) == 0,
                  "epoch %llu: depth-0 prefetcher batches differ from direct loads", (unsigned long long)epoch);
        CHECK_MSG(memcmp(xs[0], xs[2], total * ds.x.bytes) == 0 && memcmp(ys[0], ys[2], total * ds.y.bytes) == 0,
                  "epoch %llu: threaded prefetcher batches differ from direct loads", (unsigned long long)epoch);
    }
    CHECK_EQ_INT(dataset_skipped(&ds), 4);
    /* abandon a pass after two batches, then a fresh pass is complete and right */
    if (async) {
        void *bx, *by;
        size_t count;
        CHECK(prefetcher_start(async, order, total, 3, 9, err, sizeof err) == DATASET_OK);
        CHECK(prefetcher_next(async, &bx, &by, &count, err, sizeof err) == DATASET_OK && count == 3);
        CHECK(prefetcher_next(async, &bx, &by, &count, err, sizeof err) == DATASET_OK && count == 3);
        size_t g0 = run_pass(&ds, NULL, order, total, 3, 4, xs[0], ys[0]);
        size_t g2 = run_pass(&ds, async, order, total, 3, 4, xs[2], ys[2]);
        CHECK(g0 == total && g2 == total && memcmp(xs[0], xs[2], total * ds.x.bytes) == 0);
        /* a bad index in batch 3: batches 0-2 arrive, then the error */
        size_t bad_order[20];
        for (size_t i = 0; i < 20; i++)
            bad_order[i] = i % n;
        bad_order[16] = n + 5;
        CHECK(prefetcher_start(async, bad_order, 20, 4, 1, err, sizeof err) == DATASET_OK);
        size_t good = 0;
        for (;;) {
            st = prefetcher_next(async, &bx, &by, &count, err, sizeof err);
            if (st != DATASET_OK || count == 0)
                break;
            good++;
        }
        CHECK_EQ_INT(good, 4);
        CHECK_MSG(st == DATASET_EINVAL && strstr(err, "out of range"), "status %d: %s", (int)st, err);
        CHECK(prefetcher_start(async, order, 4, 4, 1, err, sizeof err) == DATASET_OK);
        CHECK(prefetcher_next(async, &bx, &by, &count, err, sizeof err) == DATASET_OK && count == 4);
        CHECK(prefetcher_next(async, &bx, &by, &count, err, sizeof err) == DATASET_OK && count == 0);
        CHECK(prefetcher_start(async, order, 4, 6, 1, err, sizeof err) == DATASET_EINVAL);
    }
    prefetcher_close(sync);
    prefetcher_close(async);
    printf("prefetch: 3 epochs x %zu samples with flip/crop augmentation and 4 substituted corrupt files: "
           "threaded, depth-0 and direct batches identical\n", total);

    /* the timing gain: 96 JPEGs resized to 224x224 (about ImageNet's work per image), batch 16, and a
     * simulated 10 ms step: with the thread, decoding hides behind the steps */
    const char *root = TMP("ds_speed");
    char path[256];
    size_t jl, pl;
    unsigned char *jpg = slurp(DATA "img/rgb.jpg", &jl), *prog = slurp(DATA "img/progressive.jpg", &pl);
    mkdir(root, 0755);
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/c%d", root, c);
        mkdir(path, 0755);
        for (int i = 0; i < 48; i++) {
            snprintf(path, sizeof path, "%s/c%d/%02d.jpg", root, c, i);
            write_file(path, i % 2 ? jpg : prog, i % 2 ? jl : pl);
        }
    }
    Dataset speed;
    DatasetOptions os;
    dataset_options_default(&os);
    image_transform_default(&os.transform, 3, 224, 224);
    os.transform.resize = 256;
    os.transform.crop = true;
    if (jpg && prog && dataset_open_images(&speed, root, &os, err, sizeof err) == DATASET_OK) {
        size_t ord[96];
        for (size_t i = 0; i < 96; i++)
            ord[i] = i;
        double secs[2];
        for (int depth = 0; depth < 2; depth++) {
            Prefetcher *pf = NULL;
            CHECK(prefetcher_open(&pf, &speed, 16, depth ? 2 : 0, err, sizeof err) == DATASET_OK);
            struct timespec t0, t1, step = {0, 10000000};
            clock_gettime(CLOCK_MONOTONIC, &t0);
            CHECK(prefetcher_start(pf, ord, 96, 16, 1, err, sizeof err) == DATASET_OK);
            void *bx, *by;
            size_t count;
            while (prefetcher_next(pf, &bx, &by, &count, err, sizeof err) == DATASET_OK && count)
                nanosleep(&step, NULL);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            secs[depth] = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            prefetcher_close(pf);
        }
        printf("prefetch timing: 6 batches of 16 JPEGs -> 3x224x224, 10 ms steps: %.1f ms inline, %.1f ms with the "
               "thread (steps alone: 60 ms)\n", 1e3 * secs[0], 1e3 * secs[1]);
        dataset_close(&speed);
    }
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 48; i++) {
            snprintf(path, sizeof path, "%s/c%d/%02d.jpg", root, c, i);
            remove(path);
        }
        snprintf(path, sizeof path, "%s/c%d", root, c);
        rmdir(path);
    }
    rmdir(root);
    free(jpg);
    free(prog);
    free(order);
    for (int k = 0; k < 3; k++) {
        free(xs[k]);
        free(ys[k]);
    }
    dataset_close(&ds);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/onnxtune-dataset-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        fprintf(stderr, "cannot create %s: %s\n", tmp_dir, strerror(errno));
        return 1;
    }
    test_npy_pairs();
    test_big_mapped();
    test_npz();
    test_inputs();
    test_folder();
    test_digits();
    test_shuffle_split();
    test_prefetch();
    remove(TMP("ds_x.npy"));
    remove(TMP("ds_y.npy"));
    rmdir(tmp_dir);
    return test_summary("test_dataset");
}
