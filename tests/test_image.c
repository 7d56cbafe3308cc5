/* test_image.c - data/image.c against PIL and torchvision (references made by tests/data/make_data.py):
 * decoding PNG (RGB, grey, palette, RGBA, 1-bit) and JPEG (baseline, grey, progressive) to the same bytes as
 * PIL, PIL's bilinear resize at many scales, the eval transforms against torchvision's, corrupt and truncated
 * files refused without crashing, and the seeded augmentation (reproducible, a true crop/flip of the image).
 */
#include "program.h"
#include "test.h"

#include <stdint.h>

#define DATA "tests/data/"

/* splitmix64, for random damage to files */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
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

static bool load_ref(const char *path, NpyArray *a)
{
    char err[512];
    if (npy_read(path, a, err, sizeof err) != NPY_OK) {
        CHECK_MSG(0, "%s", err);
        return false;
    }
    return true;
}

/* Lines of a text file into v[max] (each malloc'd); returns the count. */
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

/* "rgb8.png" -> "rgb8_png" */
static void stem(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s", name);
    char *dot = strrchr(out, '.');
    if (dot)
        *dot = '_';
}

static void test_decode(char **files, size_t nfiles)
{
    ImageWork w;
    memset(&w, 0, sizeof w);
    for (size_t i = 0; i < nfiles; i++) {
        size_t len = 0;
        char path[512], s[128], err[256];
        snprintf(path, sizeof path, DATA "img/%s", files[i]);
        unsigned char *buf = slurp(path, &len);
        CHECK_MSG(buf != NULL, "cannot read %s", path);
        stem(files[i], s, sizeof s);
        for (size_t c = 1; buf && c <= 3; c += 2) {
            NpyArray ref;
            snprintf(path, sizeof path, DATA "ref/decode_%s_c%zu.npy", s, c);
            if (!load_ref(path, &ref))
                continue;
            ImageStatus st = image_decode(buf, len, c, &w, err, sizeof err);
            CHECK_MSG(st == IMAGE_OK, "%s c%zu: %s", files[i], c, err);
            if (st == IMAGE_OK) {
                CHECK_MSG(w.decoded.height == ref.dims[0] && w.decoded.width == ref.dims[1] && w.decoded.channels == c,
                          "%s c%zu: %zux%zux%zu, PIL %zux%zux%zu", files[i], c, w.decoded.height, w.decoded.width,
                          w.decoded.channels, ref.dims[0], ref.dims[1], ref.dims[2]);
                size_t bad = 0, first = 0, n = ref.numel;
                const uint8_t *r = ref.data;
                for (size_t k = 0; k < n && w.decoded.height * w.decoded.width * c == n; k++)
                    if (w.decoded.pixels[k] != r[k] && !bad++)
                        first = k;
                CHECK_MSG(bad == 0, "%s c%zu: %zu of %zu bytes differ from PIL, first at %zu (%u vs %u)", files[i], c,
                          bad, n, first, w.decoded.pixels[first], r[first]);
            }
            npy_free(&ref);
        }
        free(buf);
    }
    image_work_free(&w);
}

static void test_resize(void)
{
    char *sizes[32];
    size_t n = read_lines(DATA "ref/resizes.txt", sizes, 32);
    CHECK(n >= 5);
    ImageWork w;
    Image out = {0};
    memset(&w, 0, sizeof w);
    const char *srcs[2][2] = {{"rgb8.png", "RGB"}, {"gray8.png", "L"}};
    for (int s = 0; s < 2; s++) {
        size_t len = 0;
        char path[512], err[256];
        snprintf(path, sizeof path, DATA "img/%s", srcs[s][0]);
        unsigned char *buf = slurp(path, &len);
        size_t c = s == 0 ? 3 : 1;
        CHECK(buf && image_decode(buf, len, c, &w, err, sizeof err) == IMAGE_OK);
        free(buf);
        for (size_t i = 0; i < n; i++) {
            size_t rw, rh;
            NpyArray ref;
            if (sscanf(sizes[i], "%zu %zu", &rw, &rh) != 2)
                continue;
            snprintf(path, sizeof path, DATA "ref/resize_%s_%zux%zu.npy", srcs[s][1], rw, rh);
            if (!load_ref(path, &ref))
                continue;
            CHECK(image_resize(&out, &w.decoded, rw, rh, &w) == IMAGE_OK);
            size_t bad = 0, first = 0, maxd = 0;
            const uint8_t *r = ref.data;
            CHECK(out.width == rw && out.height == rh && out.channels == c && ref.numel == rw * rh * c);
            for (size_t k = 0; k < ref.numel && out.width * out.height * c == ref.numel; k++) {
                size_t d = (size_t)abs((int)out.pixels[k] - (int)r[k]);
                if (d && !bad++)
                    first = k;
                maxd = d > maxd ? d : maxd;
            }
            CHECK_MSG(bad == 0, "resize %s %zux%zu -> %zux%zu: %zu bytes differ from PIL (max %zu), first at %zu",
                      srcs[s][1], w.decoded.width, w.decoded.height, rw, rh, bad, maxd, first);
            npy_free(&ref);
        }
    }
    free(out.pixels);
    image_work_free(&w);
    for (size_t i = 0; i < n; i++)
        free(sizes[i]);
}

typedef struct {
    char name[64];
    ImageTransform tf;
} Config;

static size_t read_configs(Config *cf, size_t max)
{
    char *lines[16];
    size_t n = read_lines(DATA "ref/configs.txt", lines, 16), k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        size_t c, h, w, r, crop;
        double m[3], s[3];
        Config *x = &cf[k];
        if (sscanf(lines[i], "%63s %zu %zu %zu %zu %zu %lf %lf %lf %lf %lf %lf", x->name, &c, &h, &w, &r, &crop, &m[0],
                   &m[1], &m[2], &s[0], &s[1], &s[2]) == 12) {
            image_transform_default(&x->tf, c, h, w);
            x->tf.resize = r;
            x->tf.crop = crop != 0;
            for (int j = 0; j < 3; j++) {
                x->tf.mean[j] = (float)m[j];
                x->tf.std[j] = (float)s[j];
            }
            k++;
        }
        free(lines[i]);
    }
    return k;
}

static void test_transforms(char **files, size_t nfiles)
{
    Config cf[16];
    size_t ncf = read_configs(cf, 16);
    CHECK(ncf >= 5);
    ImageWork w;
    memset(&w, 0, sizeof w);
    for (size_t k = 0; k < ncf; k++) {
        NpyArray ref;
        char path[512], err[256];
        snprintf(path, sizeof path, DATA "ref/tf_%s.npy", cf[k].name);
        if (!load_ref(path, &ref))
            continue;
        const ImageTransform *tf = &cf[k].tf;
        size_t per = tf->channels * tf->height * tf->width;
        CHECK(ref.rank == 4 && ref.dims[0] == nfiles && ref.numel == nfiles * per);
        float *out = malloc(per * sizeof *out);
        double maxd = 0;
        for (size_t i = 0; i < nfiles && ref.numel == nfiles * per; i++) {
            size_t len = 0;
            snprintf(path, sizeof path, DATA "img/%s", files[i]);
            unsigned char *buf = slurp(path, &len);
            ImageStatus st = image_transform(tf, buf, len, 0, i, out, &w, err, sizeof err);
            CHECK_MSG(st == IMAGE_OK, "%s %s: %s", cf[k].name, files[i], err);
            const float *r = (const float *)ref.data + i * per;
            size_t bad = 0, first = 0;
            for (size_t j = 0; st == IMAGE_OK && j < per; j++) {
                double d = fabs((double)out[j] - (double)r[j]);
                if (d != 0 && !bad++)   /* same float32 operations as torchvision: exact */
                    first = j;
                maxd = d > maxd ? d : maxd;
            }
            CHECK_MSG(bad == 0, "%s %s: %zu of %zu values differ from torchvision, first at %zu: %.7g vs %.7g",
                      cf[k].name, files[i], bad, per, first, out[first], r[first]);
            free(buf);
        }
        printf("transform %-20s vs torchvision: %zu images, max abs diff %.3g\n", cf[k].name, nfiles, maxd);
        free(out);
        npy_free(&ref);
    }
    image_work_free(&w);
}

/* Every listed corrupt fixture, every truncation of two good files and random byte damage: an error or
 * (for damage that keeps the file decodable) success, never a crash. Truncations before the last pixel fail. */
static void test_corrupt(void)
{
    static const char *bad[] = {"truncated.png", "truncated.jpg", "garbage.png", "empty.jpg", "badcrc.png"};
    ImageWork w;
    memset(&w, 0, sizeof w);
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = 0;
        char path[512];
        snprintf(path, sizeof path, DATA "img/%s", bad[i]);
        unsigned char *buf = slurp(path, &len);
        CHECK_MSG(buf != NULL, "cannot read %s", path);
        err[0] = 0;
        ImageStatus st = image_decode(buf ? buf : (unsigned char *)"", len, 3, &w, err, sizeof err);
        CHECK_MSG(st != IMAGE_OK && err[0], "%s decoded (status %s)", bad[i], image_status_name(st));
        printf("%-14s -> %s: %s\n", bad[i], image_status_name(st), err);
        free(buf);
    }
    const char *good[] = {"rgb8.png", "rgb.jpg", "progressive.jpg", "palette.png"};
    for (size_t g = 0; g < 4; g++) {
        size_t len = 0;
        char path[512];
        snprintf(path, sizeof path, DATA "img/%s", good[g]);
        unsigned char *buf = slurp(path, &len);
        size_t accepted_short = 0, disagree = 0, damaged_ok = 0;
        CHECK(buf && image_check(buf, len, 3, &w, err, sizeof err) == IMAGE_OK);
        for (size_t cut = 0; buf && cut < len; cut++) {
            unsigned char *copy = malloc(cut + 1);
            memcpy(copy, buf, cut);
            ImageStatus st = image_decode(copy, cut, 3, &w, err, sizeof err);
            if (st == IMAGE_OK && cut < len * 9 / 10)
                accepted_short++;
            disagree += (st == IMAGE_OK) != (image_check(copy, cut, 3, &w, err, sizeof err) == IMAGE_OK);
            free(copy);
        }
        CHECK_MSG(accepted_short == 0, "%s: %zu truncations below 90%% of the file decoded", good[g], accepted_short);
        uint64_t state = 42 + g;
        for (int trial = 0; buf && trial < 300; trial++) {
            unsigned char *copy = malloc(len);
            memcpy(copy, buf, len);
            for (int k = 0; k < 3; k++)
                copy[next_random(&state) % len] ^= (unsigned char)(1 + next_random(&state) % 255);
            size_t c = trial % 2 ? 1 : 3;
            ImageStatus st = image_decode(copy, len, c, &w, err, sizeof err);
            damaged_ok += st == IMAGE_OK;
            disagree += (st == IMAGE_OK) != (image_check(copy, len, c, &w, err, sizeof err) == IMAGE_OK);
            free(copy);
        }
        CHECK_MSG(disagree == 0, "%s: image_check and image_decode disagree on %zu damaged copies", good[g], disagree);
        printf("%-15s: %zu truncations, 300 random damages (%zu still decode): no crash, image_check agrees\n",
               good[g], len, damaged_ok);
        free(buf);
    }
    image_work_free(&w);
}

/* flip/crop: the same (seed, epoch, index) gives the same pixels; the output is the flipped crop window of
 * the resized image that image_augment_choice names; across samples both flips and many offsets occur. */
static void test_augment(void)
{
    size_t len = 0;
    unsigned char *buf = slurp(DATA "img/rgb.jpg", &len);   /* 64x48 */
    CHECK(buf != NULL);
    if (!buf)
        return;
    ImageTransform full, aug;
    image_transform_default(&full, 3, 30, 40);   /* Resize(30) of 64x48 is 40x30: the whole resized image */
    full.resize = 30;
    for (int c = 0; c < 3; c++) {
        full.mean[c] = 0.0f;
        full.std[c] = 1.0f;
    }
    aug = full;
    aug.height = 24;
    aug.width = 20;
    aug.augment_crop = aug.augment_flip = true;
    aug.seed = 1234;
    ImageWork w;
    memset(&w, 0, sizeof w);
    float ref[3 * 30 * 40], a[3 * 24 * 20], b[3 * 24 * 20];
    char err[256];
    CHECK(image_transform(&full, buf, len, 0, 0, ref, &w, err, sizeof err) == IMAGE_OK);
    size_t flips = 0, mismatched = 0, same_as_other_epoch = 0;
    bool seen_top[7] = {0}, seen_left[21] = {0};
    for (uint64_t idx = 0; idx < 200; idx++) {
        uint64_t epoch = 1 + idx % 3;
        CHECK(image_transform(&aug, buf, len, epoch, idx, a, &w, err, sizeof err) == IMAGE_OK);
        CHECK(image_transform(&aug, buf, len, epoch, idx, b, &w, err, sizeof err) == IMAGE_OK);
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "sample %llu: two loads differ", (unsigned long long)idx);
        int64_t top, left;
        bool flip;
        image_augment_choice(&aug, epoch, idx, 30, 40, &top, &left, &flip);
        CHECK(top >= 0 && top <= 6 && left >= 0 && left <= 20);
        if (top < 0 || top > 6 || left < 0 || left > 20)
            continue;
        seen_top[top] = seen_left[left] = true;
        flips += flip;
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < 24; y++)
                for (size_t x = 0; x < 20; x++) {
                    size_t sx = (size_t)left + (flip ? 19 - x : x), sy = (size_t)top + y;
                    mismatched += a[(c * 24 + y) * 20 + x] != ref[(c * 30 + sy) * 40 + sx];
                }
        CHECK(image_transform(&aug, buf, len, epoch + 1, idx, b, &w, err, sizeof err) == IMAGE_OK);
        same_as_other_epoch += memcmp(a, b, sizeof a) == 0;
    }
    CHECK_MSG(mismatched == 0, "%zu pixels are not the chosen crop/flip of the resized image", mismatched);
    CHECK_MSG(flips > 70 && flips < 130, "%zu flips in 200 samples", flips);
    size_t tops = 0, lefts = 0;
    for (int i = 0; i < 7; i++)
        tops += seen_top[i];
    for (int i = 0; i < 21; i++)
        lefts += seen_left[i];
    CHECK_MSG(tops == 7 && lefts == 21, "crop offsets seen: %zu of 7 tops, %zu of 21 lefts", tops, lefts);
    CHECK_MSG(same_as_other_epoch < 20, "%zu of 200 samples augment the same in the next epoch", same_as_other_epoch);
    /* a different seed changes the choices */
    ImageTransform other = aug;
    other.seed = 1235;
    size_t differ = 0;
    for (uint64_t idx = 0; idx < 50; idx++) {
        int64_t t1, l1, t2, l2;
        bool f1, f2;
        image_augment_choice(&aug, 1, idx, 30, 40, &t1, &l1, &f1);
        image_augment_choice(&other, 1, idx, 30, 40, &t2, &l2, &f2);
        differ += t1 != t2 || l1 != l2 || f1 != f2;
    }
    CHECK_MSG(differ > 40, "seed 1234 vs 1235: only %zu of 50 choices differ", differ);
    printf("augment: 200 samples, %zu flipped, all 7x21 crop offsets seen, reproducible\n", flips);
    image_work_free(&w);
    free(buf);
}

int main(void)
{
    char *files[32];
    size_t nfiles = read_lines(DATA "ref/files.txt", files, 32);
    CHECK(nfiles >= 8);
    test_decode(files, nfiles);
    test_decode((char *[]){"palette_trns.png"}, 1);    /* a transparent palette entry: PIL drops it */
    test_resize();
    test_transforms(files, nfiles);
    test_corrupt();
    test_augment();
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    return test_summary("test_image");
}
