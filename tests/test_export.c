/* test_export.c - IR -> ONNX -> IR round trips of the committed models: same nodes, attributes and
 * weights, the raw-data layout pointing at each initializer's bytes, and atomic writes. */
#include "importer.h"
#include "test.h"

#include <stdlib.h>
#include <unistd.h>

static void compare_models(const char *what, const Model *a, const Model *b)
{
    const Graph *ga = a->graph, *gb = b->graph;
    CHECK_MSG(ga->nnodes == gb->nnodes, "%s: %zu nodes vs %zu", what, ga->nnodes, gb->nnodes);
    for (size_t i = 0; i < ga->nnodes && i < gb->nnodes; i++) {
        const Node *x = ga->nodes[i], *y = gb->nodes[i];
        CHECK_STR(x->op_type, y->op_type);
        CHECK_STR(x->name, y->name);
        CHECK_EQ_INT(x->ninputs, y->ninputs);
        CHECK_EQ_INT(x->nattrs, y->nattrs);
        for (int k = 0; k < x->nattrs && k < y->nattrs; k++) {
            CHECK_STR(x->attrs[k].name, y->attrs[k].name);
            CHECK_EQ_INT(x->attrs[k].type, y->attrs[k].type);
            CHECK_EQ_INT(x->attrs[k].i, y->attrs[k].i);
            CHECK_EQ_INT(x->attrs[k].n, y->attrs[k].n);
        }
        for (int k = 0; k < x->ninputs && k < y->ninputs; k++) {
            const Value *u = x->inputs[k], *v = y->inputs[k];
            CHECK((u == NULL) == (v == NULL));
            if (!u || !v)
                continue;
            CHECK_STR(u->name, v->name);
            CHECK((u->init == NULL) == (v->init == NULL));
            if (u->init && v->init) {
                CHECK_EQ_INT(u->init->dtype, v->init->dtype);
                CHECK(shape_equal(&u->init->shape, &v->init->shape));
                CHECK_MSG(u->init->nbytes == v->init->nbytes &&
                          memcmp(u->init->data, v->init->data, u->init->nbytes) == 0,
                          "%s: initializer '%s' differs after the round trip", what, u->name);
            }
        }
    }
    CHECK_EQ_INT(ga->ninputs, gb->ninputs);
    CHECK_EQ_INT(ga->noutputs, gb->noutputs);
    for (size_t i = 0; i < ga->noutputs && i < gb->noutputs; i++) {
        CHECK_STR(ga->outputs[i]->name, gb->outputs[i]->name);
        CHECK(shape_equal(&ga->outputs[i]->shape, &gb->outputs[i]->shape));
    }
}

static void round_trip(const char *path)
{
    Diag d;
    diag_init(&d, path);
    Model *m = NULL, *back = NULL;
    CHECK_EQ_INT(onnx_import_file(path, &m, &d), ST_OK);
    if (!m) {
        diag_print(&d, stderr);
        return;
    }
    Arena *a = arena_new();
    uint8_t *bytes;
    size_t len;
    ExportLayout layout;
    MetaProp prop = {"onnxtune.classes", "[\"5\",\"6\"]"};
    ExportOptions o = {.producer_version = "test", .props = &prop, .nprops = 1};
    CHECK_EQ_INT(onnx_export_bytes(m, &o, a, &bytes, &len, &layout, &d), ST_OK);
    CHECK(layout.nparams > 0);
    /* the layout points at each initializer's bytes */
    for (size_t i = 0; i < layout.nparams; i++) {
        const ExportParam *p = &layout.params[i];
        CHECK(p->offset + p->nbytes <= len);
        CHECK_MSG(memcmp(bytes + p->offset, p->value->init->data, p->nbytes) == 0, "%s: layout of '%s'",
                  path, p->name);
    }
    CHECK_EQ_INT(onnx_import_bytes(bytes, len, NULL, &back, &d), ST_OK);
    if (back) {
        compare_models(path, m, back);
        bool found = false;
        for (size_t i = 0; i < back->nprops; i++)
            found = found || (strcmp(back->props[i].key, "onnxtune.classes") == 0 &&
                              strcmp(back->props[i].value, "[\"5\",\"6\"]") == 0);
        CHECK_MSG(found, "%s: metadata_props lost", path);
        CHECK_STR(back->producer_name, "onnxtune");
    } else {
        diag_print(&d, stderr);
    }
    /* patching the bytes at the layout's offsets changes the weights the importer sees */
    if (layout.nparams && back) {
        const ExportParam *p = &layout.params[0];
        memset(bytes + p->offset, 0, p->nbytes);
        Model *patched = NULL;
        CHECK_EQ_INT(onnx_import_bytes(bytes, len, NULL, &patched, &d), ST_OK);
        const Value *v = patched ? graph_find(patched->graph, p->name) : NULL;
        CHECK(v && v->init && v->init->nbytes == p->nbytes);
        bool zero = true;
        for (size_t i = 0; v && v->init && i < p->nbytes; i++)
            zero = zero && ((const uint8_t *)v->init->data)[i] == 0;
        CHECK_MSG(zero, "%s: patched weights of '%s' did not arrive", path, p->name);
        model_free(patched);
    }
    /* atomic file write, then the file imports */
    char tmpl[] = "/tmp/onnxtune_export_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    if (dir) {
        char out[512];
        snprintf(out, sizeof out, "%s/model.onnx", dir);
        CHECK_EQ_INT(onnx_export_file(m, NULL, out, &d), ST_OK);
        Model *f = NULL;
        CHECK_EQ_INT(onnx_import_file(out, &f, &d), ST_OK);
        if (f)
            compare_models(out, m, f);
        model_free(f);
        unlink(out);
        rmdir(dir);
    }
    model_free(back);
    model_free(m);
    arena_free(a);
}

int main(void)
{
    const char *models[] = {"models/mlp/model.onnx", "models/cnn/model.onnx", "models/lstm/model.onnx",
                            "models/transformer/model.onnx", "models/digits/digits_cnn.onnx"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        round_trip(models[i]);
    /* an unwritable place is an error naming the file, not a crash */
    Diag d;
    diag_init(&d, NULL);
    CHECK(write_file_atomic("/nonexistent-dir/x.onnx", "x", 1, &d) == ST_IO);
    CHECK(strstr(d.msg, "/nonexistent-dir/x.onnx") != NULL);
    return test_summary("test_export");
}
