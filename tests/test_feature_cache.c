/* test_feature_cache.c - the feature cache of training programs (program/trainer_features.c): the digits CNN
 * with its backbone frozen and a new head trains to the same bits (metrics, export) with the features
 * computed once and with --feature-cache off, on NPY arrays and image folders, with --val-x, --val-split,
 * --early-stop, --cv and resumed from checkpoints taken in and after epoch 1, in memory, in files next to
 * the checkpoint and in a folder; a folder's files are reused, and rebuilt when the binary, the thread
 * count, the data file, the preprocessing or the frozen weights change, or (with a warning) when
 * truncated or bit-flipped; --augment and a BatchNormalization on batch statistics in the frozen part
 * turn it off with a note; PROG features writes a sample's features whatever its place in the data and its
 * batch (each convolution path, 2 threads, a ViT); another compiled batch does not reuse the features.
 * Needs $ONNXTUNE. */
#include "train_tool.h"

#include <sys/time.h>

static const char *prog, *X, *Y, *VX, *VY;

/* The first n samples of models/digits' train or val arrays into x, y. */
static void digits_subset(const char *split, size_t n, const char *x, const char *y)
{
    char xp[128], yp[128], err[512];
    snprintf(xp, sizeof xp, "models/digits/%s_x.npy", split);
    snprintf(yp, sizeof yp, "models/digits/%s_y.npy", split);
    NpyArray a, b;
    CHECK_MSG(npy_read(xp, &a, err, sizeof err) == NPY_OK && npy_read(yp, &b, err, sizeof err) == NPY_OK, "%s", err);
    size_t xd[4] = {n, a.dims[1], a.dims[2], a.dims[3]};
    tt_write_npy(x, RT_FLOAT, 4, xd, a.data);
    tt_write_npy(y, RT_INT64, 1, &n, b.data);
    npy_free(&a);
    npy_free(&b);
}

/* PROG [--feature-cache MODE] ARGS... --metrics TAG.jsonl --export TAG.onnx; the exit status (tt_out, tt_err
 * hold what it said). args: NULL-terminated. */
static int train(const char *tag, const char *mode, const char *const *args)
{
    TtArgv a = {.n = 0};
    tt_push(&a, prog);
    if (mode)
        tt_pushv(&a, "--feature-cache", mode, NULL);
    for (; *args; args++)
        tt_push(&a, *args);
    tt_pushv(&a, "--metrics", tt_path("%s.jsonl", tag), "--export", tt_path("%s.onnx", tag), NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "%s: exit %d: %s", tag, rc, tt_err);
    return rc;
}

/* The runs a and b wrote the same metrics and export. */
static void same(const char *a, const char *b)
{
    CHECK_MSG(tt_same(tt_path("%s.jsonl", a), tt_path("%s.jsonl", b)), "%s and %s: the metrics differ", a, b);
    CHECK_MSG(tt_same(tt_path("%s.onnx", a), tt_path("%s.onnx", b)), "%s and %s: the exports differ", a, b);
}

/* The options with the cache off and on (auto): the same bits, and the cache was used. */
static void pair(const char *tag, const char *const *args)
{
    char off[64], on[64];
    snprintf(off, sizeof off, "%s_off", tag);
    snprintf(on, sizeof on, "%s_on", tag);
    if (train(off, "off", args))
        return;
    CHECK_MSG(!strstr(tt_out, "features of the"), "%s: --feature-cache off computed the features ahead:\n%s", tag,
              tt_out);
    if (train(on, NULL, args))
        return;
    CHECK_MSG(strstr(tt_out, "features of the") && strstr(tt_out, "computed in"), "%s: no feature cache:\n%s", tag,
              tt_out);
    same(off, on);
    printf("%-14s cache on = off (metrics and export)\n", tag);
}

static void arrays(void)
{
    const char *a[] = {"--train-x", X, "--train-y", Y, "--val-x", VX, "--val-y", VY, "--epochs", "3", NULL};
    pair("arrays", a);
    /* over the budget: mapped files next to the checkpoint, the same bits */
    const char *ck = tt_path("budget.ckpt");
    const char *b[] = {"--train-x", X, "--train-y", Y, "--val-x", VX, "--val-y", VY, "--epochs", "3",
                       "--feature-cache-mb", "0", "--checkpoint", ck, NULL};
    const char *stale = tt_path("budget.ckpt.train.features.tmp.999999");   /* of a process killed mid-way */
    tt_copy(X, stale);
    if (!train("budget", NULL, b)) {
        same("arrays_off", "budget");
        CHECK_MSG(!tt_exists(stale), "the stale temporary %s stayed", stale);
        CHECK_MSG(strstr(tt_out, "memory-mapped") && tt_exists(tt_path("budget.ckpt.train.features")) &&
                  tt_exists(tt_path("budget.ckpt.val.features")), "--feature-cache-mb 0: no files next to the "
                  "checkpoint:\n%s", tt_out);
    }
    /* a folder: computed and saved, then read back */
    const char *dir = tt_path("cache");
    if (!train("dir1", dir, a) && !train("dir2", dir, a)) {
        same("arrays_off", "dir1");
        same("arrays_off", "dir2");
        CHECK_MSG(strstr(tt_out, "read from") && !strstr(tt_out, "computed in"), "the second run did not read the "
                  "folder's features:\n%s", tt_out);
    }
    printf("arrays         over the budget (files next to the checkpoint) and in a folder (saved, read back) = off\n");
}

static void folders(void)
{
    const char *a[] = {"--train-dir", "models/digits/images/train", "--val-dir", "models/digits/images/val",
                       "--epochs", "2", NULL};
    pair("images", a);
    const char *s[] = {"--train-x", X, "--train-y", Y, "--val-split", "0.25", "--early-stop", "1", "--epochs", "8",
                       "--lr", "0.05", NULL};
    pair("val_split_es", s);
    const char *c[] = {"--train-x", X, "--train-y", Y, "--val-x", VX, "--val-y", VY, "--cv", "2", "--lr", "0.1,0.001",
                       "--epochs", "2", NULL};
    pair("cv", c);
}

/* Stopped by --max-steps in epoch 1 (step 3 of 7) or after it (step 9), resumed: the uninterrupted run's bits. */
static void resume(void)
{
    const char *ref[] = {"--train-x", X, "--train-y", Y, "--val-x", VX, "--val-y", VY, "--epochs", "3", "--checkpoint",
                         tt_path("ref.ckpt"), NULL};
    if (train("resume_ref", "off", ref))
        return;
    const char *steps[] = {"3", "9"};
    for (int i = 0; i < 2; i++) {
        const char *ck = tt_path("resume%d.ckpt", i), *tag = i ? "resume_after" : "resume_mid";
        const char *first[] = {"--train-x", X, "--train-y", Y, "--val-x", VX, "--val-y", VY, "--epochs", "3",
                               "--checkpoint", ck, "--max-steps", steps[i], NULL};
        const char *again[] = {"--train-x", X, "--train-y", Y, "--val-x", VX, "--val-y", VY, "--epochs", "3",
                               "--checkpoint", ck, "--resume", ck, NULL};
        if (train(tag, NULL, first) || train(tag, NULL, again))
            continue;
        CHECK_MSG(strstr(tt_out, "resuming"), "%s: not resumed:\n%s", tag, tt_out);
        same("resume_ref", tag);
        printf("resume         --max-steps %s then --resume with the cache = an uninterrupted run without it\n",
               steps[i]);
    }
}

/* Set path's modification time `ago` seconds back. */
static void age(const char *path, int ago)
{
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= ago;
    tv[1] = tv[0];
    CHECK_MSG(utimes(path, tv) == 0, "utimes %s", path);
}

/* A folder's features are reused only for the same data, preprocessing and frozen weights. */
static void invalidation(void)
{
    const char *dir = tt_path("inv"), *x = tt_path("inv_x.npy");
    tt_copy(X, x);
    age(x, 100);
    const char *a[] = {"--train-x", x, "--train-y", Y, "--epochs", "1", NULL};
    train("inv1", dir, a);
    train("inv2", dir, a);
    CHECK_MSG(strstr(tt_out, "read from"), "not reused:\n%s", tt_out);
    /* another binary (a recompile, here a copy) */
    const char *saved = prog, *copy = tt_path("digits_copy");
    tt_copy(prog, copy);
    CHECK(chmod(copy, 0755) == 0);
    prog = copy;
    train("inv2b", dir, a);
    prog = saved;
    CHECK_MSG(strstr(tt_out, "made for other data") && strstr(tt_out, "computed in"), "another binary reused the "
              "cache:\n%s", tt_out);
    age(x, 50);     /* the same bytes, another modification time */
    train("inv3", dir, a);
    CHECK_MSG(strstr(tt_out, "made for other data") && strstr(tt_out, "computed in"), "a touched data file did not "
              "invalidate the cache:\n%s", tt_out);
    /* another thread count (the kernels' split may change the last bits) */
    const char *t2[] = {"--train-x", x, "--train-y", Y, "--epochs", "1", "--threads", "2", NULL};
    const char *t1[] = {"--train-x", x, "--train-y", Y, "--epochs", "1", "--threads", "1", NULL};
    train("inv3t2", dir, t2);
    train("inv3t1", dir, t1);
    CHECK_MSG(strstr(tt_out, "made for other data") && strstr(tt_out, "computed in"), "features made at 2 threads "
              "were reused at 1:\n%s", tt_out);
    /* another conv algorithm chosen by the environment (Winograd off: oneDNN's or conv.c's last bits) */
    setenv("ONNXTUNE_WINOGRAD", "0", 1);
    train("inv3w", dir, t1);
    unsetenv("ONNXTUNE_WINOGRAD");
    CHECK_MSG(strstr(tt_out, "made for other data") && strstr(tt_out, "computed in"), "features made with "
              "Winograd were reused without it:\n%s", tt_out);
    /* the frozen weights: --init of a backbone parameter */
    const char *bias = tt_path("bias.npy");
    float zeros[16] = {0};
    size_t n16 = 16;
    tt_write_npy(bias, RT_FLOAT, 1, &n16, zeros);
    char init[600];
    snprintf(init, sizeof init, "features.0.bias=%s", bias);
    const char *w[] = {"--train-x", x, "--train-y", Y, "--epochs", "1", "--init", init, NULL};
    train("inv4", dir, w);
    CHECK_MSG(strstr(tt_out, "made for other data") && strstr(tt_out, "computed in"), "--init of a frozen weight "
              "did not invalidate the cache:\n%s", tt_out);
    train("inv4_off", "off", w);
    same("inv4_off", "inv4");
    /* the preprocessing of an image folder */
    const char *idir = tt_path("inv_img");
    const char *i1[] = {"--train-dir", "models/digits/images/train", "--epochs", "1", NULL};
    const char *i2[] = {"--train-dir", "models/digits/images/train", "--epochs", "1", "--mean", "0.5", NULL};
    train("inv5", idir, i1);
    train("inv6", idir, i1);
    CHECK_MSG(strstr(tt_out, "read from"), "image features not reused:\n%s", tt_out);
    train("inv7", idir, i2);
    CHECK_MSG(strstr(tt_out, "made for other data") && strstr(tt_out, "computed in"), "--mean did not invalidate "
              "the cache:\n%s", tt_out);
    train("inv7_off", "off", i2);
    same("inv7_off", "inv7");
    printf("invalidation   another binary, a touched data file, --init of a frozen weight, --mean: computed again\n");
}

/* Damaged files: rebuilt with a warning, never trusted. */
static void corruption(void)
{
    const char *dir = tt_path("bad"), *f = tt_path("bad/train.features");
    const char *a[] = {"--train-x", X, "--train-y", Y, "--epochs", "2", NULL};
    if (train("bad0", "off", a) || train("bad1", dir, a))
        return;
    size_t len = 0;
    char *bytes = tt_read(f, &len);
    CHECK_MSG(bytes && len > 64, "%s: no cache file", f);
    if (!bytes || len <= 64)
        return;
    static const char *const what[3] = {"truncated", "checksum", "header"};
    for (int k = 0; k < 3; k++) {
        FILE *out = fopen(f, "wb");
        size_t n = k == 0 ? len - 100 : len;
        char *copy = malloc(len);
        memcpy(copy, bytes, len);
        if (k == 1)
            copy[64 + (len - 64) / 2] ^= 0x10;      /* one bit of a feature */
        if (k == 2)
            copy[20] ^= 0x01;                       /* one bit of the key */
        CHECK(out && fwrite(copy, 1, n, out) == n);
        if (out)
            fclose(out);
        free(copy);
        char tag[16];
        snprintf(tag, sizeof tag, "bad_%d", k + 2);
        if (train(tag, dir, a))
            continue;
        CHECK_MSG(strstr(tt_err, "warning: feature cache") && strstr(tt_err, what[k]) && strstr(tt_out, "computed in"),
                  "a %s file was not rebuilt with a warning:\nstdout: %s\nstderr: %s", what[k], tt_out, tt_err);
        same("bad0", tag);
        CHECK_MSG(tt_exists(f), "the rebuilt cache was not saved");
    }
    free(bytes);
    printf("corruption     truncated, bit-flipped features, bit-flipped header: warned, rebuilt, same bits\n");
}

static void turned_off(void)
{
    const char *a[] = {"--train-dir", "models/digits/images/train", "--epochs", "1", "--augment", "flip", NULL};
    if (!train("augment", NULL, a))
        CHECK_MSG(strstr(tt_out, "note: no feature cache: --augment") && !strstr(tt_out, "computed in"),
                  "--augment: no note:\n%s", tt_out);
    const char *bn = tt_path("cnn_bn");
    if (tt_compile(bn, "models/cnn/model.onnx", "--head", "linear:5", "--train", "features.5.*", "--bn-train",
                   "--batch", "16", NULL)) {
        tt_expect("bn-train", 0, NULL, bn, "--train-x", X, "--train-y", Y, "--epochs", "1", NULL);
        CHECK_MSG(strstr(tt_out, "note: no feature cache: BatchNormalization") && strstr(tt_out, "--bn-train"),
                  "--bn-train in the frozen part: no note:\n%s", tt_out);
    }
    printf("turned off     --augment, --bn-train in the frozen part: a note\n");
}

/* PROG features of x, of x reversed and of its first row alone, under `env` (NAME=VALUE or NULL) and
 * --threads `threads`: the same bits for every sample. The prefix runs over whole batches of the
 * program's batch with a short last batch padded, so this says a sample's features depend neither on
 * its place in a batch, nor on the samples beside it, nor on the padding. Returns the samples. */
static size_t same_whatever_place(const char *tag, const char *p, const char *x, const char *env, const char *threads)
{
    char err[512], name[64] = "";
    NpyArray a, r, in;
    const char *f = tt_path("%s_f.npy", tag), *fr = tt_path("%s_fr.npy", tag), *xr = tt_path("%s_xr.npy", tag);
    const char *x1 = tt_path("%s_x1.npy", tag), *f1 = tt_path("%s_f1.npy", tag);
    CHECK_MSG(npy_read(x, &in, err, sizeof err) == NPY_OK, "%s", err);
    size_t n = in.dims[0], xrow = in.nbytes / n;
    unsigned char *rev = malloc(n * xrow);
    for (size_t i = 0; i < n; i++)
        memcpy(rev + i * xrow, (const unsigned char *)in.data + (n - 1 - i) * xrow, xrow);
    size_t dims[RT_MAX_RANK];
    memcpy(dims, in.dims, sizeof dims);
    tt_write_npy(xr, RT_FLOAT, in.rank, dims, rev);
    dims[0] = 1;
    tt_write_npy(x1, RT_FLOAT, in.rank, dims, in.data);     /* a batch of one row, the rest padding */
    free(rev);
    npy_free(&in);
    if (env) {
        snprintf(name, sizeof name, "%.*s", (int)(strchr(env, '=') - env), env);
        setenv(name, strchr(env, '=') + 1, 1);
    }
    tt_expect(tag, 0, NULL, p, "features", "--x", x, "--output", f, "--threads", threads, NULL);
    tt_expect(tag, 0, NULL, p, "features", "--x", xr, "--output", fr, "--threads", threads, NULL);
    tt_expect(tag, 0, NULL, p, "features", "--x", x1, "--output", f1, "--threads", threads, NULL);
    if (env)
        unsetenv(name);
    if (npy_read(f, &a, err, sizeof err) != NPY_OK || npy_read(fr, &r, err, sizeof err) != NPY_OK) {
        CHECK_MSG(false, "%s: %s", tag, err);
        return 0;
    }
    size_t row = a.nbytes / (a.dims[0] ? a.dims[0] : 1), bad = 0;
    CHECK_MSG(a.dims[0] == n && r.dims[0] == n, "%s: PROG features wrote %zu and %zu rows for %zu samples", tag,
              a.dims[0], r.dims[0], n);
    for (size_t i = 0; i < n && a.dims[0] == n && r.dims[0] == n; i++)
        bad += memcmp((const unsigned char *)a.data + i * row, (const unsigned char *)r.data + (n - 1 - i) * row,
                      row) != 0;
    CHECK_MSG(bad == 0, "%s: %zu of %zu samples' features depend on their place in the data", tag, bad, n);
    NpyArray a1;
    if (npy_read(f1, &a1, err, sizeof err) == NPY_OK) {
        CHECK_MSG(a1.dims[0] == 1 && memcmp(a1.data, a.data, row) == 0, "%s: a sample alone has other features",
                  tag);
        npy_free(&a1);
    }
    npy_free(&a);
    npy_free(&r);
    printf("features       %-22s %s, %s thread(s): the same bits reversed and alone\n", tag, env ? env : "default",
           threads);
    return n;
}

/* PROG features: [N, 64], a sample's features whatever its place, with each convolution path (conv.c,
 * oneDNN plain and blocked) and at 2 threads; the small ViT's (MatMul, LayerNorm, Softmax over
 * [B * tokens, ...]) too. */
static void features_command(void)
{
    char err[512];
    NpyArray a;
    const char *f = tt_path("f.npy");
    tt_expect("features", 0, NULL, prog, "features", "--x", X, "--output", f, NULL);
    if (npy_read(f, &a, err, sizeof err) == NPY_OK) {
        CHECK_MSG(a.rank == 2 && a.dims[0] == 200 && a.dims[1] == 64, "PROG features wrote [%zu, %zu]", a.dims[0],
                  a.dims[1]);
        npy_free(&a);
    } else {
        CHECK_MSG(false, "%s", err);
    }
    same_whatever_place("digits", prog, X, NULL, "1");
    same_whatever_place("digits_t2", prog, X, NULL, "2");
    same_whatever_place("digits_conv_c", prog, X, "ONNXTUNE_DNNL=0", "1");
    same_whatever_place("digits_plain", prog, X, "ONNXTUNE_DNNL=plain", "2");
    same_whatever_place("digits_blocked", prog, X, "ONNXTUNE_DNNL=blocked", "2");
    /* torchvision's ViT attends with the tokens first ([T, N, D]: a Transpose moves the samples off axis 0):
     * its prefix runs one sample at a time whatever --features-batch asks */
    const char *vit = tt_path("vit"), *vx = tt_path("vit_x.npy");
    if (tt_compile(vit, "models/vit/model.onnx", "--head", "linear:3", "--batch", "8", "--features-batch", "8", NULL)) {
        CHECK_MSG(strstr(tt_err, "1 sample at a time"), "the ViT's prefix runs several samples at a time: %s", tt_err);
        size_t dims[4] = {21, 3, 16, 16}, numel = 21 * 3 * 16 * 16;
        float *x = malloc(numel * sizeof *x);
        uint32_t s = 12345;
        for (size_t i = 0; i < numel; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
        }
        tt_write_npy(vx, RT_FLOAT, 4, dims, x);
        free(x);
        same_whatever_place("vit", vit, vx, NULL, "1");
        same_whatever_place("vit_t2", vit, vx, NULL, "2");
    }
    tt_expect("features of a program without a prefix", 1, "no frozen part", tt_path("cnn_bn"), "features", "--x", X,
              "--output", f, NULL);
}

/* The samples the prefix runs at a time enter the key: a folder made by the program running 32 at a time is
 * computed again by the same model compiled for batch 12 running 5 at a time (12 = 5 + 5 + 2 padded),
 * whose features do not depend on their place either and whose cache on and off agree; by default the
 * compiler runs this prefix one sample at a time. */
static void other_batch(void)
{
    const char *p12 = tt_path("digits12"), *dir = tt_path("batch_dir");
    if (tt_compile(tt_path("digits_default"), "models/digits/digits_cnn.onnx", "--head", "linear:5", "--batch", "32",
                   NULL))
        CHECK_MSG(strstr(tt_err, "1 sample at a time"), "the digits prefix by default: %s", tt_err);
    if (!tt_compile(p12, "models/digits/digits_cnn.onnx", "--head", "linear:5", "--optimizer", "adam", "--batch",
                    "12", "--features-batch", "5", NULL))
        return;
    CHECK_MSG(strstr(tt_err, "5 samples at a time"), "--features-batch 5: %s", tt_err);
    same_whatever_place("digits12_5", p12, X, NULL, "2");
    const char *a[] = {"--train-x", X, "--train-y", Y, "--val-x", VX, "--val-y", VY, "--epochs", "2", NULL};
    if (train("b32", dir, a))
        return;
    const char *saved = prog;
    prog = p12;
    if (!train("b12", dir, a)) {
        CHECK_MSG(strstr(tt_out, "made for other data") && strstr(tt_out, "computed in"), "features made at batch 32 "
                  "were reused at batch 12:\n%s", tt_out);
        pair("batch12", a);
        same("batch12_off", "b12");
    }
    prog = saved;
    printf("other batch    5 at a time does not reuse 32 at a time's features; its cache on = off\n");
}

int main(void)
{
    if (!tt_setup("test_feature_cache"))
        return 1;
    double t0 = tt_now();
    prog = tt_path("digits");
    X = tt_path("x.npy");
    Y = tt_path("y.npy");
    VX = tt_path("vx.npy");
    VY = tt_path("vy.npy");
    digits_subset("train", 200, X, Y);
    digits_subset("val", 60, VX, VY);
    /* the frozen part over whole batches of 32 (left to itself the compiler runs this small prefix, few FLOPs
     * a byte, one sample at a time) */
    if (!tt_compile(prog, "models/digits/digits_cnn.onnx", "--head", "linear:5", "--optimizer", "adam", "--batch",
                    "32", "--features-batch", "32", NULL))
        return test_summary("test_feature_cache");
    CHECK_MSG(strstr(tt_err, "32 samples at a time"), "--features-batch 32: %s", tt_err);
    arrays();
    folders();
    resume();
    invalidation();
    corruption();
    turned_off();
    features_command();
    other_batch();
    printf("(%.1f s)\n", tt_now() - t0);
    tt_cleanup();
    return test_summary("test_feature_cache");
}
