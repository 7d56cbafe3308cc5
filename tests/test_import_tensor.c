/* test_import_tensor.c - tensors through the importer in every encoding: each element type in its
 * typed field and in raw_data, strings with NULs, sparse initializers, external data files (and
 * the paths that must be refused), the backend tests' .pb tensor files, and data/dims errors.
 */
#include "test.h"
#include "test_import_fixtures.h"

#include <sys/stat.h>
#include <unistd.h>

#define T(x) ONNX__TENSOR_PROTO__DATA_TYPE__##x

/* A model whose only content is initializer `t` (also the graph output). */
static Onnx__ModelProto *init_model(Onnx__TensorProto *t)
{
    Onnx__GraphProto *g = fx_graph("g");
    FX_PUSH(g, initializer, t);
    FX_PUSH(g, output, fx_vi(t->name, t->data_type, -1, NULL, NULL));
    return fx_model(g, 8, 17);
}

/* Import a one-initializer model; returns the tensor (model kept in *mp_out for freeing). */
static const Tensor *import_one(Onnx__TensorProto *t, Model **m, Diag *d)
{
    Status st = fx_import(init_model(t), m, d);
    if (st)
        return NULL;
    Value *v = graph_find((*m)->graph, t->name);
    return v ? v->init : NULL;
}

/* Each numeric type from its typed field, compared with the values put in. */
static void test_typed_fields(void)
{
    static const struct {
        int type;
        DType dt;
        double vals[3];
    } cases[] = {
        {T(INT8), DT_INT8, {-128, 0, 127}},
        {T(UINT8), DT_UINT8, {0, 1, 255}},
        {T(INT16), DT_INT16, {-32768, 5, 32767}},
        {T(UINT16), DT_UINT16, {0, 7, 65535}},
        {T(INT32), DT_INT32, {-2147483648.0, 0, 2147483647}},
        {T(BOOL), DT_BOOL, {1, 0, 1}},
        {T(INT64), DT_INT64, {-9007199254740992.0, 3, 9007199254740992.0}},
        {T(UINT32), DT_UINT32, {0, 4000000000.0, 1}},
        {T(UINT64), DT_UINT64, {0, 18014398509481984.0, 2}},
        {T(FLOAT), DT_FLOAT, {1.5, -2.25, 16777216.0}},
        {T(DOUBLE), DT_DOUBLE, {1e-300, -0.1, 3.141592653589793}},
        {T(FLOAT16), DT_FLOAT16, {1.0, -2.0, 0.5}},
        {T(BFLOAT16), DT_BFLOAT16, {1.0, -2.0, 256.0}},
    };
    const int64_t d3[] = {3};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Onnx__TensorProto *t = fx_tensor("t", cases[c].type, 1, d3);
        const double *v = cases[c].vals;
        for (int i = 0; i < 3; i++) {
            switch (cases[c].dt) {
            case DT_FLOAT:
                FX_PUSH(t, float_data, NULL);
                break;
            case DT_DOUBLE:
                FX_PUSH(t, double_data, NULL);
                break;
            case DT_INT64:
                FX_PUSH(t, int64_data, NULL);
                break;
            case DT_UINT32: case DT_UINT64:
                FX_PUSH(t, uint64_data, NULL);
                break;
            default:
                FX_PUSH(t, int32_data, NULL);
                break;
            }
        }
        /* FX_PUSH sized the arrays for pointers (8 bytes), enough for every element type */
        for (int i = 0; i < 3; i++) {
            switch (cases[c].dt) {
            case DT_FLOAT: t->float_data[i] = (float)v[i]; break;
            case DT_DOUBLE: t->double_data[i] = v[i]; break;
            case DT_INT64: t->int64_data[i] = (int64_t)v[i]; break;
            case DT_UINT32: case DT_UINT64: t->uint64_data[i] = (uint64_t)v[i]; break;
            case DT_FLOAT16: t->int32_data[i] = float_to_half((float)v[i]); break;
            case DT_BFLOAT16: t->int32_data[i] = float_to_bfloat16((float)v[i]); break;
            case DT_BOOL: t->int32_data[i] = v[i] ? 7 : 0; break; /* any non-zero is true */
            default: t->int32_data[i] = (int32_t)v[i]; break;
            }
        }
        Model *m;
        Diag d;
        const Tensor *x = import_one(t, &m, &d);
        CHECK_MSG(x != NULL, "%s: %s", dtype_name(cases[c].dt), d.msg);
        if (!x)
            continue;
        CHECK_EQ_INT(x->dtype, cases[c].dt);
        CHECK_EQ_INT(x->numel, 3);
        CHECK_EQ_INT(x->nbytes, 3 * dtype_size(cases[c].dt));
        for (int i = 0; i < 3; i++)
            CHECK_MSG(tensor_get_f64(x, (size_t)i) == v[i], "%s[%d]: %.17g != %.17g",
                      dtype_name(cases[c].dt), i, tensor_get_f64(x, (size_t)i), v[i]);
        if (cases[c].dt == DT_BOOL)
            CHECK(((uint8_t *)x->data)[0] == 1);
        model_free(m);
    }
}

/* The same values through raw_data: little-endian bytes, adopted as they are. */
static void test_raw_data(void)
{
    const int64_t d2x2[] = {2, 2};
    int16_t i16[4] = {-1, 2, -300, 32000};
    Model *m;
    Diag d;
    const Tensor *x = import_one(fx_tensor_raw("i16", T(INT16), 2, d2x2, i16, sizeof i16), &m, &d);
    CHECK_MSG(x && x->nbytes == 8 && memcmp(x->data, i16, 8) == 0, "%s", d.msg);
    if (x)
        model_free(m);
    double f64[4] = {1, -2, 1e300, 0.25};
    x = import_one(fx_tensor_raw("f64", T(DOUBLE), 2, d2x2, f64, sizeof f64), &m, &d);
    CHECK_MSG(x && tensor_get_f64(x, 2) == 1e300 && tensor_get_f64(x, 3) == 0.25, "%s", d.msg);
    if (x)
        model_free(m);
    /* complex64: pairs of floats, in float_data or raw */
    float cx[4] = {1, 2, 3, 4};
    const int64_t d2[] = {2};
    Onnx__TensorProto *ct = fx_tensor("cx", T(COMPLEX64), 1, d2);
    ct->n_float_data = 4, ct->float_data = fx_alloc(16);
    memcpy(ct->float_data, cx, 16);
    x = import_one(ct, &m, &d);
    CHECK_MSG(x && x->dtype == DT_COMPLEX64 && x->nbytes == 16 && memcmp(x->data, cx, 16) == 0, "%s", d.msg);
    if (x)
        model_free(m);
    double cz[4] = {1, 2, 3, 4};
    Onnx__TensorProto *zt = fx_tensor("cz", T(COMPLEX128), 1, d2);
    zt->n_double_data = 4, zt->double_data = fx_alloc(32);
    memcpy(zt->double_data, cz, 32);
    x = import_one(zt, &m, &d);
    CHECK_MSG(x && x->nbytes == 32 && memcmp(x->data, cz, 32) == 0, "%s", d.msg);
    if (x)
        model_free(m);
    /* a scalar, and an empty tensor */
    float one = 42;
    x = import_one(fx_tensor_raw("s", T(FLOAT), 0, NULL, &one, 4), &m, &d);
    CHECK_MSG(x && x->shape.rank == 0 && x->numel == 1 && tensor_get_f64(x, 0) == 42, "%s", d.msg);
    if (x)
        model_free(m);
    const int64_t d0[] = {3, 0};
    Onnx__TensorProto *et = fx_tensor("e", T(FLOAT), 2, d0);
    x = import_one(et, &m, &d);
    CHECK_MSG(x && x->numel == 0 && x->nbytes == 0 && x->shape.dim[0] == 3, "%s", d.msg);
    if (x)
        model_free(m);
    /* float8 types (newer than this protobuf schema) are raw bytes too */
    uint8_t f8[2] = {0x38, 0xb8};
    x = import_one(fx_tensor_raw("f8", DT_FLOAT8E4M3FN, 1, d2, f8, 2), &m, &d);
    CHECK_MSG(x && x->dtype == DT_FLOAT8E4M3FN && x->nbytes == 2 && memcmp(x->data, f8, 2) == 0, "%s", d.msg);
    if (x)
        model_free(m);
    /* a large raw tensor is adopted: data survives the protobuf message being freed */
    const int64_t big[] = {1 << 18};
    float *vals = fx_alloc(sizeof(float) << 18);
    for (int i = 0; i < 1 << 18; i++)
        vals[i] = (float)i * 0.5f;
    x = import_one(fx_tensor_raw("big", T(FLOAT), 1, big, vals, sizeof(float) << 18), &m, &d);
    CHECK_MSG(x && x->numel == 1 << 18 && memcmp(x->data, vals, sizeof(float) << 18) == 0, "%s", d.msg);
    if (x)
        model_free(m);
}

static void test_strings(void)
{
    const int64_t d3[] = {3};
    Onnx__TensorProto *t = fx_tensor("s", T(STRING), 1, d3);
    t->n_string_data = 3;
    t->string_data = fx_alloc(3 * sizeof *t->string_data);
    t->string_data[0] = (ProtobufCBinaryData){5, (uint8_t *)"a\0b\0c"};
    t->string_data[1] = (ProtobufCBinaryData){0, NULL};
    t->string_data[2] = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
    Model *m;
    Diag d;
    const Tensor *x = import_one(t, &m, &d);
    CHECK_MSG(x && x->dtype == DT_STRING && x->numel == 3 && x->str_len, "%s", d.msg);
    if (!x)
        return;
    const char **s = x->data;
    CHECK(x->str_len[0] == 5 && memcmp(s[0], "a\0b\0c", 6) == 0);
    CHECK(x->str_len[1] == 0 && strcmp(s[1], "") == 0);
    CHECK(x->str_len[2] == 5 && strcmp(s[2], "hello") == 0);
    model_free(m);
}

/* A sparse initializer: 2-D coordinates and linear indices both densify. */
static void test_sparse_initializer(void)
{
    Onnx__GraphProto *g = fx_graph("g");
    const int64_t d2[] = {2}, d2x2[] = {2, 2};
    for (int form = 0; form < 2; form++) {
        Onnx__SparseTensorProto *sp = fx_alloc(sizeof *sp);
        onnx__sparse_tensor_proto__init(sp);
        sp->values = fx_tensor_floats(form ? "lin" : "coo", 1, d2, (float[]){5, 6}, 2);
        int64_t coo[4] = {0, 1, 2, 0}, lin[2] = {1, 6}; /* (0,1) and (2,0) in a 3x2 */
        sp->indices = form ? fx_tensor_raw("", T(INT64), 1, d2, lin, 16)
                           : fx_tensor_raw("", T(INT64), 2, d2x2, coo, 32);
        if (form) /* 2x4: index 1 = (0,1), 6 = (1,2) */
            sp->n_dims = 2, sp->dims = fx_alloc(16), sp->dims[0] = 2, sp->dims[1] = 4;
        else
            sp->n_dims = 2, sp->dims = fx_alloc(16), sp->dims[0] = 3, sp->dims[1] = 2;
        FX_PUSH(g, sparse_initializer, sp);
        FX_PUSH(g, output, fx_vi(form ? "lin" : "coo", T(FLOAT), -1, NULL, NULL));
    }
    Model *m;
    Diag d;
    Status st = fx_import(fx_model(g, 8, 17), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (st)
        return;
    Value *coo = graph_find(m->graph, "coo"), *lin = graph_find(m->graph, "lin");
    CHECK(coo && coo->init && coo->is_initializer && coo->init->numel == 6);
    CHECK(lin && lin->init && lin->init->numel == 8);
    if (coo && coo->init && lin && lin->init) {
        float want_coo[6] = {0, 5, 0, 0, 6, 0}, want_lin[8] = {0, 5, 0, 0, 0, 0, 6, 0};
        CHECK(memcmp(coo->init->data, want_coo, sizeof want_coo) == 0);
        CHECK(memcmp(lin->init->data, want_lin, sizeof want_lin) == 0);
    }
    model_free(m);
    /* an index out of range */
    g->sparse_initializer[1]->indices->raw_data.data[8] = 9;
    st = fx_import(fx_model(g, 8, 17), &m, &d);
    CHECK_MSG(st == ST_INVALID && strstr(d.msg, "sparse_initializer 'lin'") && strstr(d.msg, "indices[1] = 9"),
              "%s", d.msg);
}

static void expect_tensor_error(Onnx__TensorProto *t, Status want, const char *sub, int line)
{
    Model *m = (Model *)1;
    Diag d;
    Status st = fx_import(init_model(t), &m, &d);
    CHECK_MSG(st == want && m == NULL && strstr(d.msg, sub) && strstr(d.msg, t->name),
              "line %d: status %s, message '%s', expected '%s'", line, status_name(st), d.msg, sub);
}
#define EXPECT_TENSOR_ERROR(t, st, sub) expect_tensor_error(t, st, sub, __LINE__)

static void test_tensor_errors(void)
{
    const int64_t d3[] = {3}, d2[] = {2};
    float f3[3] = {1, 2, 3};
    EXPECT_TENSOR_ERROR(fx_tensor_raw("short", T(FLOAT), 1, d3, f3, 8), ST_INVALID,
                        "raw_data has 8 bytes, expected 12");
    EXPECT_TENSOR_ERROR(fx_tensor_floats("count", 1, d2, f3, 3), ST_INVALID, "float_data has 3 values, expected 2");
    EXPECT_TENSOR_ERROR(fx_tensor("nodata", T(INT64), 1, d3), ST_INVALID, "no data: expected 3 values in int64_data");
    Onnx__TensorProto *wrong = fx_tensor_floats("wrongfield", 1, d3, f3, 3);
    wrong->data_type = T(INT32);
    EXPECT_TENSOR_ERROR(wrong, ST_INVALID, "int32_data");
    const int64_t neg[] = {2, -1};
    EXPECT_TENSOR_ERROR(fx_tensor_raw("neg", T(FLOAT), 2, neg, f3, 0), ST_INVALID, "dims[1] is negative (-1)");
    const int64_t huge[] = {INT64_C(1) << 40, INT64_C(1) << 40};
    EXPECT_TENSOR_ERROR(fx_tensor_raw("huge", T(FLOAT), 2, huge, f3, 4), ST_INVALID, "dims overflow");
    const int64_t huge4[] = {INT64_C(1) << 62};
    EXPECT_TENSOR_ERROR(fx_tensor_raw("huge4", T(FLOAT), 1, huge4, f3, 4), ST_INVALID, "dims overflow");
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_TENSOR_ERROR(fx_tensor_raw("rank9", T(FLOAT), 9, nine, f3, 4), ST_UNSUPPORTED, "rank 9");
    Onnx__TensorProto *undef = fx_tensor_raw("undef", T(FLOAT), 1, d3, f3, 12);
    undef->data_type = 0;
    EXPECT_TENSOR_ERROR(undef, ST_INVALID, "data_type is missing");
    Onnx__TensorProto *unknown = fx_tensor_raw("unknown", T(FLOAT), 1, d3, f3, 12);
    unknown->data_type = 99;
    EXPECT_TENSOR_ERROR(unknown, ST_UNSUPPORTED, "data_type 99");
    Onnx__TensorProto *sraw = fx_tensor_raw("sraw", T(STRING), 1, d3, f3, 12);
    EXPECT_TENSOR_ERROR(sraw, ST_INVALID, "raw_data cannot hold STRING");
    Onnx__TensorProto *seg = fx_tensor_raw("seg", T(FLOAT), 1, d3, f3, 12);
    seg->segment = fx_alloc(sizeof *seg->segment);
    onnx__tensor_proto__segment__init(seg->segment);
    EXPECT_TENSOR_ERROR(seg, ST_UNSUPPORTED, "segment");
    Onnx__TensorProto *ext = fx_tensor("ext_bytes", T(FLOAT), 1, d3);
    ext->has_data_location = 1, ext->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    Onnx__StringStringEntryProto *e = fx_alloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = fx_str("location"), e->value = fx_str("w.bin");
    FX_PUSH(ext, external_data, e);
    EXPECT_TENSOR_ERROR(ext, ST_UNSUPPORTED, "needs the model's folder");
}

/* ---- external data ---- */

static char tmpdir[64];

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static Onnx__TensorProto *ext_tensor(const char *name, int rank, const int64_t *dims, const char *location,
                                     const char *offset, const char *length)
{
    Onnx__TensorProto *t = fx_tensor(name, T(FLOAT), rank, dims);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    const char *kv[3][2] = {{"location", location}, {"offset", offset}, {"length", length}};
    for (int i = 0; i < 3; i++) {
        if (!kv[i][1])
            continue;
        Onnx__StringStringEntryProto *e = fx_alloc(sizeof *e);
        onnx__string_string_entry_proto__init(e);
        e->key = fx_str(kv[i][0]);
        e->value = fx_str(kv[i][1]);
        FX_PUSH(t, external_data, e);
    }
    return t;
}

/* Write model `mp` as dir/name and import it from the file. */
static Status import_file_in(const char *dir, const char *name, Onnx__ModelProto *mp, Model **m, Diag *d)
{
    size_t len;
    uint8_t *buf = fx_pack(mp, &len);
    write_file(dir, name, buf, len);
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    diag_init(d, path);
    return onnx_import_file(path, m, d);
}

static void test_external_data(void)
{
    float w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (float)i - 3.5f;
    write_file(tmpdir, "weights.bin", w, sizeof w);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    mkdir(sub, 0700);
    write_file(sub, "more.bin", w, sizeof w);
    const int64_t d4[] = {4}, d2x2[] = {2, 2}, d16[] = {16};

    Onnx__GraphProto *g = fx_graph("ext");
    FX_PUSH(g, initializer, ext_tensor("a", 1, d4, "weights.bin", NULL, NULL));          /* w[0..4) */
    FX_PUSH(g, initializer, ext_tensor("b", 2, d2x2, "weights.bin", "16", "16"));        /* w[4..8) */
    FX_PUSH(g, initializer, ext_tensor("c", 1, d4, "sub/more.bin", "48", NULL));         /* w[12..16) */
    FX_PUSH(g, initializer, ext_tensor("d", 1, d16, "./sub/../weights.bin", "0", "64")); /* all */
    FX_PUSH(g, node, fx_node("Add", "", "a,b", "y"));
    FX_PUSH(g, output, fx_vi("y", T(FLOAT), -1, NULL, NULL));
    Model *m;
    Diag d;
    Status st = import_file_in(tmpdir, "model.onnx", fx_model(g, 8, 17), &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (!st) {
        const Tensor *a = graph_find(m->graph, "a")->init, *b = graph_find(m->graph, "b")->init;
        const Tensor *c = graph_find(m->graph, "c")->init, *dd = graph_find(m->graph, "d")->init;
        CHECK(a && memcmp(a->data, w, 16) == 0);
        CHECK(b && b->shape.rank == 2 && memcmp(b->data, w + 4, 16) == 0);
        CHECK(c && memcmp(c->data, w + 12, 16) == 0);
        CHECK(dd && dd->numel == 16 && memcmp(dd->data, w, 64) == 0);
        CHECK_STR(m->path, d.file);
        model_free(m);
    }

    /* the errors: each names the tensor and the field */
    struct {
        const char *location, *offset, *length;
        Status st;
        const char *msg;
    } bad[] = {
        {"/etc/passwd", NULL, NULL, ST_INVALID, "location '/etc/passwd' is an absolute path"},
        {"../escape.bin", NULL, NULL, ST_IO, "location '../escape.bin': cannot open"},
        {"sub/../../x/weights.bin", NULL, NULL, ST_IO, "cannot open"},
        {"missing.bin", NULL, NULL, ST_IO, "location 'missing.bin': cannot open"},
        {"weights.bin", "56", NULL, ST_INVALID, "offset 56 + length 16 is past the end"},
        {"weights.bin", "100", NULL, ST_INVALID, "offset 100 is past the end"},
        {"weights.bin", "0", "12", ST_INVALID, "length 12 does not match the 16 bytes"},
        {"weights.bin", "-4", NULL, ST_INVALID, "offset '-4' is not a non-negative integer"},
        {"weights.bin", "4x", NULL, ST_INVALID, "offset '4x'"},
        {"weights.bin", NULL, "99999999999999999999", ST_INVALID, "length '99999999999999999999'"},
        {"", NULL, NULL, ST_INVALID, "location is empty"},
        {"sub", NULL, NULL, ST_IO, "not a regular file"},
    };
    /* a real file outside the folder, reachable with ".." and through a symlink */
    char outside[300], link[400];
    snprintf(outside, sizeof outside, "%s/outside", tmpdir);
    mkdir(outside, 0700);
    write_file(tmpdir, "escape.bin", w, sizeof w);
    write_file(outside, "weights.bin", w, sizeof w);
    snprintf(sub, sizeof sub, "%s/sub", outside);
    mkdir(sub, 0700);
    snprintf(link, sizeof link, "%s/outside/link.bin", tmpdir);
    if (symlink("../weights.bin", link) != 0)
        perror("symlink");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Onnx__GraphProto *bg = fx_graph("bad");
        FX_PUSH(bg, initializer, ext_tensor("bad_w", 1, d4, bad[i].location, bad[i].offset, bad[i].length));
        FX_PUSH(bg, output, fx_vi("bad_w", T(FLOAT), -1, NULL, NULL));
        m = (Model *)1;
        st = import_file_in(outside, "m.onnx", fx_model(bg, 8, 17), &m, &d);
        if (i == 1) /* ../escape.bin exists: escaping the folder is the error, not a missing file */
            CHECK_MSG(st == ST_INVALID && strstr(d.msg, "outside the model's folder") &&
                      strstr(d.msg, "initializer 'bad_w'"), "escape: %s", d.msg);
        else
            CHECK_MSG(st == bad[i].st && m == NULL && strstr(d.msg, bad[i].msg) &&
                      strstr(d.msg, "initializer 'bad_w'"),
                      "case %zu (%s): status %s, '%s'", i, bad[i].location, status_name(st), d.msg);
    }
    Onnx__GraphProto *lg = fx_graph("link");
    FX_PUSH(lg, initializer, ext_tensor("via_link", 1, d4, "link.bin", NULL, NULL));
    FX_PUSH(lg, output, fx_vi("via_link", T(FLOAT), -1, NULL, NULL));
    st = import_file_in(outside, "m.onnx", fx_model(lg, 8, 17), &m, &d);
    CHECK_MSG(st == ST_INVALID && strstr(d.msg, "outside the model's folder"), "symlink: %s", d.msg);
    /* no location key */
    Onnx__GraphProto *ng = fx_graph("noloc");
    FX_PUSH(ng, initializer, ext_tensor("noloc", 1, d4, NULL, "0", NULL));
    FX_PUSH(ng, output, fx_vi("noloc", T(FLOAT), -1, NULL, NULL));
    st = import_file_in(tmpdir, "m2.onnx", fx_model(ng, 8, 17), &m, &d);
    CHECK_MSG(st == ST_INVALID && strstr(d.msg, "no 'location' key"), "%s", d.msg);
}

/* The backend tests' tensor files: a serialized TensorProto per file. */
static void test_tensor_file(void)
{
    const int64_t d2x3[] = {2, 3};
    float v[6] = {1, 2, 3, 4, 5, 6};
    Onnx__TensorProto *t = fx_tensor_raw("input_0", T(FLOAT), 2, d2x3, v, sizeof v);
    size_t len = onnx__tensor_proto__get_packed_size(t);
    uint8_t *buf = fx_alloc(len);
    onnx__tensor_proto__pack(t, buf);
    write_file(tmpdir, "input_0.pb", buf, len);
    char path[512];
    snprintf(path, sizeof path, "%s/input_0.pb", tmpdir);
    Arena *a = arena_new();
    Tensor *x;
    char *name;
    Diag d;
    diag_init(&d, path);
    Status st = onnx_read_tensor_file(path, a, &x, &name, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (!st) {
        CHECK_STR(name, "input_0");
        CHECK(x->shape.rank == 2 && x->shape.dim[1] == 3 && memcmp(x->data, v, sizeof v) == 0);
    }
    write_file(tmpdir, "junk.pb", "\xff\xff\xff", 3);
    snprintf(path, sizeof path, "%s/junk.pb", tmpdir);
    diag_init(&d, path);
    st = onnx_read_tensor_file(path, a, &x, &name, &d);
    CHECK_MSG(st == ST_PARSE && x == NULL && strstr(d.msg, "TensorProto"), "%s", d.msg);
    snprintf(path, sizeof path, "%s/none.pb", tmpdir);
    diag_init(&d, path);
    st = onnx_read_tensor_file(path, a, &x, &name, &d);
    CHECK_MSG(st == ST_IO && strstr(d.msg, "cannot open"), "%s", d.msg);
    arena_free(a);
}

/* Corrupt and truncated bytes never crash and never import. */
static void test_truncations(void)
{
    const int64_t d4[] = {4};
    Onnx__GraphProto *g = fx_graph("g");
    FX_PUSH(g, input, fx_vi("X", T(FLOAT), 1, d4, NULL));
    FX_PUSH(g, initializer, fx_tensor_floats("W", 1, d4, (float[]){1, 2, 3, 4}, 4));
    FX_PUSH(g, node, fx_node("Add", "add", "X,W", "Y"));
    FX_PUSH(g, output, fx_vi("Y", T(FLOAT), 1, d4, NULL));
    size_t len;
    uint8_t *buf = fx_pack(fx_model(g, 8, 17), &len);
    int ok = 0, failed = 0;
    for (size_t cut = 0; cut < len; cut++) {
        Model *m;
        Diag d;
        diag_init(&d, NULL);
        Status st = onnx_import_bytes(buf, cut, NULL, &m, &d);
        if (st == ST_OK) {
            ok++;
            model_free(m);
        } else {
            failed++;
            CHECK(m == NULL && d.msg[0]);
        }
    }
    /* a prefix that ends on a field boundary before the graph is still a (graph-less) model, so
     * not every cut fails with a parse error, but none may import */
    CHECK_EQ_INT(ok, 0);
    CHECK_EQ_INT(failed, (int)len);
    Model *m;
    Diag d;
    diag_init(&d, NULL);
    Status st = onnx_import_bytes(buf, len, NULL, &m, &d);
    CHECK_MSG(st == ST_OK, "%s", d.msg);
    if (!st)
        model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/onnxtune_import_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_typed_fields();
    test_raw_data();
    test_strings();
    test_sparse_initializer();
    test_tensor_errors();
    test_external_data();
    test_tensor_file();
    test_truncations();
    fx_done();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary("test_import_tensor");
}
