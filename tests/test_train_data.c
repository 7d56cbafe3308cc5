/* test_train_data.c - the training program's data, evaluation and export options end to end, on the digits
 * CNN and a synthetic 8-class linear model: image folders train exactly like the same pixels as arrays
 * (tests/ref/train_data/, read by PIL in make_train_data_ref.py), corrupt images are skipped and counted,
 * .npz and memory-mapped arrays give the same run, the export carries class names and preprocessing,
 * PROG eval / predict agree with the trainer's validation and with `onnxtune run` of the export, top-5 and
 * the confusion matrix match answers worked out in Python, and bad options fail cleanly. */
/* train_tool.h's static helpers that this test does not call are fine */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "train_tool.h"
#pragma GCC diagnostic pop

#include "importer.h"
#include "ir.h"

#include <math.h>

#define REF "tests/ref/train_data"
#define IMG "models/digits/images"

static const char *prog;    /* the digits trainer */

/* The value of metadata_props[key] in an ONNX file, read by our importer (malloc'd; NULL: none). */
static char *metadata(const char *path, const char *key, size_t *nprops)
{
    Model *m = NULL;
    Diag d;
    diag_init(&d, path);
    if (onnx_import_file(path, &m, &d) != ST_OK) {
        CHECK_MSG(false, "importing %s: %s", path, d.msg);
        return NULL;
    }
    char *v = NULL;
    for (size_t i = 0; i < m->nprops; i++)
        if (strcmp(m->props[i].key, key) == 0)
            v = strdup(m->props[i].value);
    if (nprops)
        *nprops = m->nprops;
    model_free(m);
    return v;
}

/* The last line of a metrics file that contains `must` (malloc'd; NULL: none). */
static char *last_line(const char *path, const char *must)
{
    char *text = tt_read(path, NULL), *found = NULL;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
        if (strstr(line, must)) {
            free(found);
            found = strdup(line);
        }
    free(text);
    return found;
}

/* The text of "key": up to the next , or } (the metrics' shortest decimals compare as text). */
static void json_text(const char *line, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = line ? strstr(line, pat) : NULL;
    size_t n = 0;
    if (at)
        for (at += strlen(pat); *at && *at != ',' && *at != '}' && n + 1 < size; at++)
            out[n++] = *at;
    out[n] = '\0';
}

static bool read_npy(const char *path, NpyArray *a)
{
    char err[512];
    bool ok = npy_read(path, a, err, sizeof err) == NPY_OK;
    CHECK_MSG(ok, "%s", err);
    return ok;
}

/* x and y of an .npz through the runtime's reader, written as .npy files. */
static bool npz_to_npy(const char *npz, const char *xpath, const char *ypath)
{
    Dataset ds;
    DatasetOptions o;
    dataset_options_default(&o);
    char err[512];
    if (dataset_open_arrays(&ds, npz, NULL, &o, err, sizeof err) != DATASET_OK) {
        CHECK_MSG(false, "%s", err);
        return false;
    }
    size_t *idx = malloc(ds.n * sizeof *idx);
    float *x = malloc(ds.n * ds.x.bytes);
    int64_t *y = malloc(ds.n * sizeof *y);
    for (size_t i = 0; idx && i < ds.n; i++)
        idx[i] = i;
    bool ok = idx && x && y && dataset_batch(&ds, idx, ds.n, 0, x, y, err, sizeof err) == DATASET_OK;
    CHECK_MSG(ok, "reading %s: %s", npz, err);
    size_t dims[4] = {ds.n, 1, 8, 8};
    if (ok) {
        tt_write_npy(xpath, RT_FLOAT, 4, dims, x);
        tt_write_npy(ypath, RT_INT64, 1, dims, y);
    }
    free(idx);
    free(x);
    free(y);
    dataset_close(&ds);
    return ok;
}

/* ---- image folders = the same pixels as arrays ---- */

static void image_folders(void)
{
    const char *m_img = tt_path("img.jsonl"), *m_npz = tt_path("npz.jsonl"), *e_img = tt_path("img.onnx"),
               *e_npz = tt_path("npz.onnx");
    tt_expect("train on image folders", 0, NULL, prog, "--train-dir", IMG "/train", "--val-dir", IMG "/val",
              "--epochs", "2", "--metrics", m_img, "--export", e_img, NULL);
    CHECK_MSG(strstr(tt_out, "716 images in 5 classes (5 6 7 8 9)"), "the image folder's summary line: %s", tt_out);
    tt_expect("train on the same pixels as .npz", 0, NULL, prog, "--train-x", REF "/digits_png_train.npz", "--val-x",
              REF "/digits_png_val.npz", "--epochs", "2", "--metrics", m_npz, "--export", e_npz, NULL);
    CHECK_MSG(tt_step_lines(m_img, NULL) == 46, "image run: %zu steps, want 46 (2 epochs of 23)",
              tt_step_lines(m_img, NULL));
    CHECK_MSG(tt_same(m_img, m_npz), "image folders and their pixels as arrays train differently (%s vs %s)", m_img,
              m_npz);
    char *val = last_line(m_img, "\"split\":\"val\"");
    CHECK_MSG(val && strstr(val, "\"top5\":"), "validation lines carry top5 (K = 5): %s", val ? val : "none");
    free(val);

    /* the same file order without shuffling; the same batches decoded every epoch (--no-cache) on the
     * prefetch thread or in the loop (--no-prefetch) */
    const char *m1 = tt_path("img_noshuf.jsonl"), *m2 = tt_path("npz_noshuf.jsonl"), *m3 = tt_path("noprefetch.jsonl"),
               *m4 = tt_path("nocache.jsonl");
    tt_expect("image folders, --no-shuffle", 0, NULL, prog, "--train-dir", IMG "/train", "--epochs", "1",
              "--no-shuffle", "--metrics", m1, NULL);
    tt_expect("arrays, --no-shuffle", 0, NULL, prog, "--train-x", REF "/digits_png_train.npz", "--epochs", "1",
              "--no-shuffle", "--metrics", m2, NULL);
    CHECK_MSG(tt_same(m1, m2), "--no-shuffle: image folder order differs from the arrays' order");
    tt_expect("--no-cache", 0, NULL, prog, "--train-dir", IMG "/train", "--val-dir", IMG "/val", "--epochs", "2",
              "--metrics", m4, "--no-cache", NULL);
    CHECK_MSG(tt_same(m_img, m4), "--no-cache (decoding ahead every epoch) trains differently from decoded once");
    tt_expect("--no-cache --no-prefetch", 0, NULL, prog, "--train-dir", IMG "/train", "--val-dir", IMG "/val",
              "--epochs", "2", "--metrics", m3, "--no-cache", "--no-prefetch", NULL);
    CHECK_MSG(tt_same(m_img, m3), "--no-prefetch trains differently from the prefetched batches");

    /* the export: the arrays' export plus metadata_props; our importer reads both */
    size_t la, lb, np = 0;
    char *a = tt_read(e_img, &la), *b = tt_read(e_npz, &lb);
    CHECK_MSG(a && b && la > lb && memcmp(a, b, lb) == 0,
              "the image run's export is not the array run's (same weights) followed by metadata");
    free(a);
    free(b);
    char *classes = metadata(e_img, "onnxtune.classes", &np), *pre = metadata(e_img, "onnxtune.preprocess", NULL);
    CHECK_MSG(classes && strcmp(classes, "[\"5\",\"6\",\"7\",\"8\",\"9\"]") == 0, "onnxtune.classes: %s",
              classes ? classes : "missing");
    CHECK_MSG(pre && strstr(pre, "\"color\":\"L\"") && strstr(pre, "\"resize\":[8,8]") && strstr(pre, "\"crop\":null") &&
                  strstr(pre, "\"mean\":[0]") && strstr(pre, "\"std\":[1]") && strstr(pre, "\"layout\":\"NCHW\""),
              "onnxtune.preprocess: %s", pre ? pre : "missing");
    CHECK_MSG(np == 2, "the image export has %zu metadata_props, want 2", np);
    free(classes);
    free(pre);
    char *none = metadata(e_npz, "onnxtune.classes", &np);
    CHECK_MSG(!none && np == 0, "an array run without --classes exported %zu metadata_props", np);
    free(none);

    /* --classes names array data's classes; --resize/--crop/--mean/--std reach the metadata */
    const char *e_cls = tt_path("classes.onnx"), *e_pre = tt_path("pre.onnx");
    tt_expect("--classes", 0, NULL, prog, "--train-x", REF "/digits_png_train.npz", "--epochs", "1", "--classes",
              "five,six,seven,eight,\"nine\"", "--export", e_cls, NULL);
    classes = metadata(e_cls, "onnxtune.classes", NULL);
    CHECK_MSG(classes && strcmp(classes, "[\"five\",\"six\",\"seven\",\"eight\",\"\\\"nine\\\"\"]") == 0,
              "--classes in the metadata: %s", classes ? classes : "missing");
    free(classes);
    tt_expect("--resize --crop --mean --std", 0, NULL, prog, "--train-dir", IMG "/train", "--epochs", "1", "--resize",
              "10", "--crop", "8", "--mean", "0.5", "--std", "0.25", "--export", e_pre, NULL);
    pre = metadata(e_pre, "onnxtune.preprocess", NULL);
    CHECK_MSG(pre && strstr(pre, "\"resize\":10") && strstr(pre, "\"crop\":[8,8]") && strstr(pre, "\"mean\":[0.5]") &&
                  strstr(pre, "\"std\":[0.25]") &&
                  strstr(pre, "Grayscale(), Resize(10), CenterCrop((8, 8)), ToTensor(), Normalize(mean=[0.5], std=[0.25])"),
              "preprocess with options: %s", pre ? pre : "missing");
    free(pre);
    /* eval --dir of that export without options preprocesses as its metadata says */
    const char *ea = tt_path("pre_meta.jsonl"), *eb = tt_path("pre_flags.jsonl"), *ec = tt_path("pre_other.jsonl");
    tt_expect("eval: preprocessing from the metadata", 0, "preprocessing from the export's metadata: Grayscale(), "
              "Resize(10), CenterCrop((8, 8))", prog, "eval", "--weights", e_pre, "--dir", IMG "/val", "--metrics", ea,
              NULL);
    tt_expect("eval: the same preprocessing as options", 0, NULL, prog, "eval", "--weights", e_pre, "--dir",
              IMG "/val", "--resize", "10", "--crop", "8", "--mean", "0.5", "--std", "0.25", "--metrics", eb, NULL);
    tt_expect("eval: other preprocessing", 0, NULL, prog, "eval", "--weights", e_pre, "--dir", IMG "/val", "--mean",
              "0", "--metrics", ec, NULL);
    CHECK_MSG(tt_same(ea, eb) && !tt_same(ea, ec), "eval --dir does not preprocess as the export's metadata says");
}

/* ---- corrupt images ---- */

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f && fwrite(data, 1, len, f) == len, "writing %s", path);
    if (f)
        fclose(f);
}

static void corrupt_images(void)
{
    char cmd[1200];
    const char *dir = tt_path("bad_train"), *m_bad = tt_path("bad.jsonl"), *m_img = tt_path("img.jsonl");
    snprintf(cmd, sizeof cmd, "cp -r " IMG "/train '%s'", dir);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    size_t len;
    char *png = tt_read(IMG "/train/5/0000.png", &len);
    if (!png || len < 60) {
        CHECK_MSG(false, "cannot read a PNG of " IMG);
        free(png);
        return;
    }
    write_bytes(tt_path("bad_train/5/zz_truncated.png"), png, len / 2);
    char garbage[300];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)(tt_rand() & 0xFF);
    write_bytes(tt_path("bad_train/6/zz_garbage.png"), garbage, sizeof garbage);
    write_bytes(tt_path("bad_train/7/zz_empty.jpg"), "", 0);
    write_bytes(tt_path("bad_train/8/zz_text.jpeg"), "not a JPEG at all\n", 18);
    memcpy(garbage, "\xff\xd8\xff\xe0", 4);   /* a JPEG signature, then noise */
    write_bytes(tt_path("bad_train/9/zz_noise.jpg"), garbage, sizeof garbage);
    png[len - 20] ^= 0x55;   /* damage near the end: the IDAT data or its CRC */
    write_bytes(tt_path("bad_train/9/zz_damaged.png"), png, len);
    free(png);

    tt_expect("corrupt images", 0, "6 unreadable images skipped", prog, "--train-dir", dir, "--val-dir", IMG "/val",
              "--epochs", "2", "--metrics", m_bad, NULL);
    size_t warnings = 0;
    for (const char *s = tt_err; (s = strstr(s, "warning:")); s++)
        warnings++;
    CHECK_MSG(warnings == 6 && strstr(tt_err, "zz_truncated.png") && strstr(tt_err, "zz_damaged.png"),
              "want one warning naming each of the 6 bad files: %s", tt_err);
    CHECK_MSG(tt_same(m_bad, m_img), "with the bad files skipped, the run differs from the clean folder's");

    /* nothing readable at all: an error, not a crash */
    const char *empty = tt_path("all_bad");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/a' '%s/b'", empty, empty);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    write_bytes(tt_path("all_bad/a/x.png"), "junk", 4);
    write_bytes(tt_path("all_bad/b/y.jpg"), "junk", 4);
    tt_expect("only corrupt images", 1, "all_bad", prog, "--train-dir", empty, "--epochs", "1", NULL);
}

/* ---- .npz and memory-mapped arrays ---- */

static void arrays(void)
{
    const char *m_npy = tt_path("npy.jsonl"), *m_map = tt_path("mmap.jsonl"), *m_npz = tt_path("valnpz.jsonl");
    tt_expect("NPY pair", 0, NULL, prog, "--train-x", "models/digits/train_x.npy", "--train-y",
              "models/digits/train_y.npy", "--val-x", "models/digits/val_x.npy", "--val-y", "models/digits/val_y.npy",
              "--epochs", "2", "--metrics", m_npy, NULL);
    CHECK_MSG(!strstr(tt_out, "memory-mapped"), "small files were mapped without --mmap: %s", tt_out);
    tt_expect("NPY pair, --mmap", 0, NULL, prog, "--train-x", "models/digits/train_x.npy", "--train-y",
              "models/digits/train_y.npy", "--val-x", "models/digits/val_x.npy", "--val-y", "models/digits/val_y.npy",
              "--epochs", "2", "--metrics", m_map, "--mmap", NULL);
    CHECK_MSG(strstr(tt_out, "train_x.npy: 716 samples, memory-mapped") && strstr(tt_out, "val_x.npy: 180 samples, "
              "memory-mapped"), "--mmap did not map both: %s", tt_out);
    CHECK_MSG(tt_same(m_npy, m_map), "memory-mapped arrays train differently");
    tt_expect("stored .npz validation, mapped", 0, NULL, prog, "--train-x", "models/digits/train_x.npy", "--train-y",
              "models/digits/train_y.npy", "--val-x", REF "/digits_val.npz", "--epochs", "2", "--metrics", m_npz,
              "--mmap", NULL);
    CHECK_MSG(strstr(tt_out, "digits_val.npz: 180 samples, memory-mapped"), "the stored .npz was not mapped: %s",
              tt_out);
    CHECK_MSG(tt_same(m_npy, m_npz), "validation from an .npz differs from the same arrays as .npy");
    tt_expect(".npz with --train-y", 1, "holds both x and y", prog, "--train-x", REF "/digits_val.npz", "--train-y",
              "models/digits/train_y.npy", NULL);
    tt_expect(".npz against the model's input", 1, "[N,8]", tt_path("linear8"), "--train-x", REF "/digits_val.npz",
              NULL);
}

/* ---- eval and predict ---- */

static void eval_predict(void)
{
    const char *e_img = tt_path("img.onnx"), *m_img = tt_path("img.jsonl"), *ev = tt_path("eval.jsonl"),
               *ev2 = tt_path("eval2.jsonl");
    char *val = last_line(m_img, "\"split\":\"val\""), *got = NULL;
    if (!val) {
        CHECK_MSG(false, "no validation line in %s", m_img);
        return;
    }
    tt_expect("eval --dir", 0, NULL, prog, "eval", "--weights", e_img, "--dir", IMG "/val", "--metrics", ev, NULL);
    CHECK_MSG(strstr(tt_out, "eval: 180 samples of " IMG "/val: loss"), "eval's line: %s", tt_out);
    got = last_line(ev, "\"split\":\"eval\"");
    const char *keys[] = {"loss", "accuracy", "top5", "samples"};
    for (int k = 0; k < 4; k++) {
        char a[64], b[64];
        json_text(val, keys[k], a, sizeof a);
        json_text(got, keys[k], b, sizeof b);
        CHECK_MSG(*a && strcmp(a, b) == 0, "eval's %s %s differs from the last validation's %s", keys[k], b, a);
    }
    tt_expect("eval --x .npz", 0, NULL, prog, "eval", "--weights", e_img, "--x", REF "/digits_png_val.npz", "--metrics",
              ev2, NULL);
    char *got2 = last_line(ev2, "\"split\":\"eval\"");
    CHECK_MSG(got && got2 && strcmp(got, got2) == 0, "eval of the folder and of its pixels as .npz: %s vs %s", got,
              got2 ? got2 : "none");
    free(got2);

    /* predict: logits and argmax; the argmax scores eval's accuracy; onnxtune run of the export agrees */
    const char *p = tt_path("p.npy"), *l = tt_path("l.npy"), *p2 = tt_path("p2.npy"), *vx = tt_path("val_x.npy"),
               *vy = tt_path("val_y.npy"), *out = tt_path("run_out");
    const char *list = tt_path("list.txt");
    tt_expect("predict --dir", 0, NULL, prog, "predict", "--weights", e_img, "--dir", IMG "/val", "--output", p,
              "--output-labels", l, "--output-list", list, NULL);
    if (!npz_to_npy(REF "/digits_png_val.npz", vx, vy))
        goto out;
    tt_expect("predict --x (no targets)", 0, NULL, prog, "predict", "--weights", e_img, "--x", vx, "--output", p2, NULL);
    CHECK_MSG(tt_same(p, p2), "predict on the folder and on its pixels as X.npy differ");
    NpyArray pa, la, ya, ra;
    if (!read_npy(p, &pa) || !read_npy(l, &la) || !read_npy(vy, &ya))
        goto out;
    CHECK_MSG(pa.dtype == RT_FLOAT && pa.rank == 2 && pa.dims[0] == 180 && pa.dims[1] == 5 && la.dtype == RT_INT64 &&
                  la.rank == 1 && la.dims[0] == 180, "predict's shapes: P %s rank %d, L %s rank %d",
              rt_dtype_name(pa.dtype), pa.rank, rt_dtype_name(la.dtype), la.rank);
    const float *z = pa.data;
    const int64_t *lab = la.data, *y = ya.data;
    size_t agree = 0, correct = 0;
    for (size_t i = 0; i < 180 && pa.numel == 900 && la.numel == 180; i++) {
        size_t best = 0;
        for (size_t c = 1; c < 5; c++)
            best = z[i * 5 + c] > z[i * 5 + best] ? c : best;
        agree += (int64_t)best == lab[i];
        correct += lab[i] == y[i];
    }
    CHECK_MSG(agree == 180, "--output-labels is not the argmax of --output in %zu of 180 rows", 180 - agree);
    /* --output-list: the files in order (sorted classes, sorted names), each with its label's class name */
    char *text = tt_read(list, NULL);
    size_t lines = 0, listed = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"), lines++) {
        char want[64];
        snprintf(want, sizeof want, "/%lld/", (long long)y[lines < 180 ? lines : 0] + 5);
        const char *tab = strchr(line, '\t');
        listed += lines < 180 && la.numel == 180 && strstr(line, want) && tab && atoll(tab + 1) == lab[lines] + 5;
    }
    CHECK_MSG(lines == 180 && listed == 180, "--output-list: %zu lines, %zu with the file's class folder and the "
              "predicted class name", lines, listed);
    free(text);
    CHECK_MSG(fabs((double)correct / 180 - tt_json_num(got, "accuracy")) < 1e-9,
              "predict's labels score %zu/180, eval said accuracy %g", correct, tt_json_num(got, "accuracy"));
    char inarg[600];
    snprintf(inarg, sizeof inarg, "image=%s", vx);
    tt_expect("onnxtune run of the export", 0, NULL, tt_onnxtune, "run", e_img, "--input", inarg, "--output-dir", out,
              NULL);
    if (read_npy(tt_path("run_out/logits.npy"), &ra)) {
        double worst = 0;   /* relative to the row's largest logit: entries near 0 say nothing alone */
        for (size_t i = 0; i < ra.numel && ra.numel == pa.numel; i++) {
            double scale = 1e-6;
            for (size_t c = 0; c < 5; c++)
                scale = fmax(scale, fabs((double)z[i / 5 * 5 + c]));
            worst = fmax(worst, fabs((double)((float *)ra.data)[i] - z[i]) / scale);
        }
        CHECK_MSG(ra.numel == pa.numel && worst < 1e-4, "onnxtune run of the export vs predict: rel err %g", worst);
        npy_free(&ra);
    }
    npy_free(&pa);
    npy_free(&la);
    npy_free(&ya);

    /* weights that are not this program's export are refused */
    tt_expect("eval of a foreign ONNX", 1, "not an export of this program", prog, "eval", "--weights",
              "models/digits/digits_cnn.onnx", "--dir", IMG "/val", NULL);
    size_t len;
    char *bytes = tt_read(e_img, &len);
    const char *bad = tt_path("bad.onnx");
    if (bytes && len > 100) {
        write_bytes(bad, bytes, len - 3);   /* the last metadata entry cut short */
        tt_expect("eval of a truncated export", 1, "malformed metadata", prog, "eval", "--weights", bad, "--dir", IMG "/val", NULL);
        bytes[10] ^= 1;
        write_bytes(bad, bytes, len);
        tt_expect("eval of an altered model", 1, "differs from the program's model", prog, "eval", "--weights", bad,
                  "--dir", IMG "/val", NULL);
    }
    free(bytes);
    tt_expect("eval without weights", 0, "evaluating the compiled weights", prog, "eval", "--x", vx, "--y", vy, NULL);
out:
    free(val);
    free(got);
}

/* eval --checkpoint reads the weights a training run checkpointed: those it exported */
static void eval_checkpoint(void)
{
    const char *ck = tt_path("run.ckpt"), *ex = tt_path("run.onnx"), *a = tt_path("ev_ck.jsonl"),
               *b = tt_path("ev_ex.jsonl"), *lk = tt_path("linear8.ckpt");
    tt_expect("train with --checkpoint", 0, NULL, prog, "--train-x", REF "/digits_png_train.npz", "--epochs", "1",
              "--checkpoint", ck, "--export", ex, NULL);
    tt_expect("eval --checkpoint", 0, NULL, prog, "eval", "--checkpoint", ck, "--x", REF "/digits_png_val.npz",
              "--metrics", a, NULL);
    tt_expect("eval --weights", 0, NULL, prog, "eval", "--weights", ex, "--x", REF "/digits_png_val.npz", "--metrics",
              b, NULL);
    CHECK_MSG(tt_same(a, b), "eval of the checkpoint and of the export of the same run differ");
    tt_expect("a checkpoint of linear8", 0, NULL, tt_path("linear8"), "--train-x", REF "/topk_x.npy", "--train-y",
              REF "/topk_y.npy", "--epochs", "1", "--checkpoint", lk, NULL);
    tt_expect("eval --checkpoint of another program", 1, "--checkpoint", prog, "eval", "--checkpoint", lk, "--x",
              REF "/digits_png_val.npz", NULL);
    tt_expect("--weights and --checkpoint", 2, "not both", prog, "eval", "--checkpoint", ck, "--weights", ex, "--x",
              REF "/digits_png_val.npz", NULL);
}

/* ---- top-5 and the confusion matrix against answers worked out in Python ---- */

static void topk_confusion(void)
{
    const char *lin = tt_path("linear8"), *ev = tt_path("topk.jsonl"), *tr = tt_path("topk_train.jsonl");
    char *ref = tt_read(REF "/topk.json", NULL);
    if (!ref) {
        CHECK_MSG(false, "cannot read " REF "/topk.json");
        return;
    }
    /* the expected matrix as one line of digits and commas, like the metrics write it */
    char want[1024];
    size_t n = 0;
    const char *c = strstr(ref, "\"confusion\":");
    for (c = c ? c + 12 : ""; *c && n + 1 < sizeof want; c++)
        if (!strchr(" \n", *c))
            want[n++] = *c;
    want[n] = '\0';
    char *end = strrchr(want, '}');
    if (end)
        *end = '\0';
    tt_expect("eval --confusion", 0, NULL, lin, "eval", "--x", REF "/topk_x.npy", "--y", REF "/topk_y.npy",
              "--confusion", "--metrics", ev, NULL);
    CHECK_MSG(strstr(tt_out, "confusion matrix of " REF "/topk_x.npy (rows: true class, columns: predicted)"),
              "the printed matrix: %s", tt_out);
    char *got = last_line(ev, "\"split\":\"eval\"");
    double acc = tt_json_num(got ? got : "", "accuracy"), top5 = tt_json_num(got ? got : "", "top5"),
           loss = tt_json_num(got ? got : "", "loss");
    CHECK_MSG(fabs(acc - tt_json_num(ref, "accuracy")) < 1e-8 && fabs(top5 - tt_json_num(ref, "top5")) < 1e-9 &&
                  fabs(loss - tt_json_num(ref, "loss")) < 1e-6 * fabs(loss),
              "eval: accuracy %g top5 %g loss %.9g; want %g %g %.9g", acc, top5, loss, tt_json_num(ref, "accuracy"),
              tt_json_num(ref, "top5"), tt_json_num(ref, "loss"));
    CHECK_MSG(got && strstr(got, want), "eval's confusion %s, want %s", got ? got : "none", want);
    free(got);

    /* the same matrix at the end of a training run (lr 0: the identity stays) */
    tt_expect("train --confusion", 0, NULL, lin, "--train-x", REF "/topk_x.npy", "--train-y", REF "/topk_y.npy",
              "--val-x", REF "/topk_x.npy", "--val-y", REF "/topk_y.npy", "--epochs", "1", "--lr", "0", "--confusion",
              "--metrics", tr, NULL);
    got = last_line(tr, "\"confusion\"");
    CHECK_MSG(got && strstr(got, want) && strstr(got, "\"samples\":37"), "the training run's final record %s, want %s",
              got ? got : "none", want);
    free(got);
    got = last_line(tr, "\"top5\"");
    CHECK_MSG(got && fabs(tt_json_num(got, "top5") - tt_json_num(ref, "top5")) < 1e-9,
              "the validation line's top5: %s", got ? got : "none");
    free(got);
    tt_expect("--confusion without validation", 2, "--confusion", lin, "--train-x", REF "/topk_x.npy", "--train-y",
              REF "/topk_y.npy", "--confusion", NULL);
    free(ref);
}

/* ---- augmentation ---- */

static void augmentation(void)
{
    const char *a1 = tt_path("aug1.jsonl"), *a2 = tt_path("aug2.jsonl"), *plain = tt_path("img_noshuf.jsonl"),
               *a3 = tt_path("aug3.jsonl");
    tt_expect("--augment flip", 0, NULL, prog, "--train-dir", IMG "/train", "--epochs", "1", "--no-shuffle",
              "--augment", "flip", "--metrics", a1, NULL);
    tt_expect("--augment flip again", 0, NULL, prog, "--train-dir", IMG "/train", "--epochs", "1", "--no-shuffle",
              "--augment", "flip", "--metrics", a2, NULL);
    CHECK_MSG(tt_same(a1, a2), "the same seed augments differently");
    CHECK_MSG(!tt_same(a1, plain), "--augment flip changed nothing");
    tt_expect("--augment flip,crop with --val-split", 0, NULL, prog, "--train-dir", IMG "/train", "--epochs", "1",
              "--resize", "10", "--augment", "flip,crop", "--val-split", "0.2", "--metrics", a3, NULL);
    double loss[4], acc[4];
    CHECK_MSG(tt_val_lines(a3, loss, acc, 4) == 1 && tt_step_lines(a3, NULL) == 18,
              "--val-split 0.2 of 716 images: want 18 steps and one validation");
}

/* ---- bad options ---- */

static void bad_options(void)
{
    tt_expect("--crop of another size", 2, "must be that size", prog, "--train-dir", IMG "/train", "--crop", "6x6",
              NULL);
    tt_expect("--augment on arrays", 2, "--augment works on image folders", prog, "--train-x",
              REF "/digits_png_train.npz", "--augment", "flip", NULL);
    tt_expect("--augment nonsense", 2, "--augment wants", prog, "--train-dir", IMG "/train", "--augment", "rotate", NULL);
    tt_expect("--mean of 2 values", 2, "--mean wants", prog, "--train-dir", IMG "/train", "--mean", "1,2", NULL);
    tt_expect("--mean of 3 values for a grey model", 2, "want 1 value", prog, "--train-dir", IMG "/train", "--mean",
              "1,2,3", NULL);
    tt_expect("missing folder", 1, "no-such-dir", prog, "--train-dir", "no-such-dir", NULL);
    tt_expect("--classes of the wrong count", 2, "names 2 classes", prog, "--train-x", REF "/digits_png_train.npz",
              "--classes", "a,b", NULL);
    tt_expect("--train-dir and --train-x", 2, "not both", prog, "--train-dir", IMG "/train", "--train-x",
              REF "/digits_png_train.npz", NULL);
    tt_expect("no data", 2, "missing --train-x", prog, "--epochs", "1", NULL);
    tt_expect("eval without data", 2, "--dir DIR", prog, "eval", NULL);
    tt_expect("eval without targets", 2, "eval needs targets", prog, "eval", "--x", "models/digits/val_x.npy", NULL);
    tt_expect("predict without --output", 2, "--output P.npy", prog, "predict", "--dir", IMG "/val", NULL);
    tt_expect("--x when training", 2, "belongs to", prog, "--train-dir", IMG "/train", "--x", "x.npy", NULL);
    tt_expect("image folder on a non-image model", 1, "image folders need", tt_path("linear8"), "--train-dir",
              IMG "/train", NULL);
}

int main(void)
{
    if (!tt_setup("test_train_data"))
        return 1;
    static char digits[512];
    snprintf(digits, sizeof digits, "%s", tt_path("digits"));
    prog = digits;
    if (!tt_compile(prog, "models/digits/digits_cnn.onnx", "--head", "linear:5", "--loss", "cross_entropy",
                    "--optimizer", "adam", "--batch", "32", "--lr", "0.01", "--seed", "1", NULL) ||
        !tt_compile(tt_path("linear8"), REF "/linear8.onnx", "--head", "none", "--train", "*", "--loss",
                    "cross_entropy", "--optimizer", "sgd", "--batch", "8", NULL))
        return test_summary("test_train_data");
    image_folders();
    corrupt_images();
    arrays();
    eval_predict();
    eval_checkpoint();
    topk_confusion();
    augmentation();
    bad_options();
    tt_cleanup();
    return test_summary("test_train_data");
}
