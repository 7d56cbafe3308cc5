/* test_import_onnx_tests.c - imports every model.onnx of the ONNX backend test data (ONNX_TESTS_DIR,
 * default ../shared/onnx-tests from the repository root) and reads each test_data_set_0 .pb file,
 * checking the tensors' element types and static dims against the graph's declared inputs and
 * outputs. Sequences and optionals (SequenceProto, OptionalProto) are read by the kind the graph
 * declares, their elements checked against the declared element type; maps are listed as skipped.
 * Skips the whole test if the data is absent.
 */
#include "test.h"
#include "importer.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int models, models_failed, tensors, tensors_failed, type_mismatches, skipped, quirks, composites;

/* Data files of ONNX 1.12 that disagree with their own model (NumPy has no bfloat16, so the
 * generator saved those tensors as UINT16; CastLike's 'like' input was saved with a dummy shape). */
static const struct {
    const char *case_suffix, *file;
    const char *reason;
} known_quirks[] = {
    {"/test_cast_BFLOAT16_to_FLOAT", "input_0", "bfloat16 data saved as UINT16"},
    {"/test_cast_FLOAT_to_BFLOAT16", "output_0", "bfloat16 data saved as UINT16"},
    {"/test_castlike_BFLOAT16_to_FLOAT", "input_0", "bfloat16 data saved as UINT16"},
    {"/test_castlike_BFLOAT16_to_FLOAT", "input_1", "'like' saved with shape [1]"},
    {"/test_castlike_BFLOAT16_to_FLOAT_expanded", "input_0", "bfloat16 data saved as UINT16"},
    {"/test_castlike_BFLOAT16_to_FLOAT_expanded", "input_1", "'like' saved with shape [1]"},
    {"/test_castlike_FLOAT_to_BFLOAT16", "input_1", "bfloat16 'like' saved as UINT16 [1]"},
    {"/test_castlike_FLOAT_to_BFLOAT16", "output_0", "bfloat16 data saved as UINT16"},
    {"/test_castlike_FLOAT_to_BFLOAT16_expanded", "input_1", "bfloat16 'like' saved as UINT16 [1]"},
    {"/test_castlike_FLOAT_to_BFLOAT16_expanded", "output_0", "bfloat16 data saved as UINT16"},
};

static const char *known_quirk(const char *casedir, const char *kind, size_t k)
{
    char file[64];
    snprintf(file, sizeof file, "%s_%zu", kind, k);
    size_t n = strlen(casedir);
    for (size_t i = 0; i < sizeof known_quirks / sizeof known_quirks[0]; i++) {
        size_t m = strlen(known_quirks[i].case_suffix);
        if (n >= m && strcmp(casedir + n - m, known_quirks[i].case_suffix) == 0 &&
            strcmp(file, known_quirks[i].file) == 0)
            return known_quirks[i].reason;
    }
    return NULL;
}

/* Does tensor t fit value v's declared type? Returns a reason when not. */
static const char *mismatch(const Value *v, const Tensor *t)
{
    if (v->dtype != DT_UNDEFINED && v->dtype != t->dtype)
        return "element type";
    if (v->shape.rank >= 0) {
        if (v->shape.rank != t->shape.rank)
            return "rank";
        for (int i = 0; i < v->shape.rank; i++)
            if (v->shape.dim[i] >= 0 && v->shape.dim[i] != t->shape.dim[i])
                return "dims";
    }
    return NULL;
}

static void check_data(const char *casedir, const char *kind, Value **vals, size_t nvals)
{
    for (size_t k = 0;; k++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/test_data_set_0/%s_%zu.pb", casedir, kind, k);
        struct stat st;
        if (stat(path, &st) != 0)
            break;
        if (k >= nvals) {
            type_mismatches++;
            CHECK_MSG(0, "%s: more %s files than graph %ss", path, kind, kind);
            break;
        }
        const Value *v = vals[k];
        if (v->kind == VK_SEQUENCE || v->kind == VK_OPTIONAL) {
            Arena *a = arena_new();
            DataValue dv;
            Diag d;
            diag_init(&d, path);
            composites++;
            if (!a || onnx_read_value_file(path, v->kind, a, &dv, &d) != ST_OK) {
                test_failures++;
                diag_print(&d, stderr);
            } else {
                CHECK_MSG(dv.kind == v->kind, "%s: read as another kind", path);
                bool seq = dv.kind == VK_SEQUENCE || (!dv.none && dv.elem_kind == VK_SEQUENCE);
                size_t n = seq ? dv.n : dv.none ? 0 : 1;
                for (size_t j = 0; j < n; j++) {
                    const Tensor *t = seq ? dv.elems[j] : dv.t;
                    CHECK_MSG(v->dtype == DT_UNDEFINED || t->dtype == v->dtype, "%s: element %zu is %s, declared %s",
                              path, j, dtype_name(t->dtype), dtype_name(v->dtype));
                }
            }
            arena_free(a);
            continue;
        }
        if (v->kind != VK_TENSOR) {
            skipped++;
            printf("skipped %s: %s '%s' is a %s, serialized as a %s, not a TensorProto\n", path, kind,
                   v->name, v->kind == VK_SEQUENCE ? "sequence" : v->kind == VK_OPTIONAL ? "optional" : "map",
                   v->kind == VK_SEQUENCE ? "SequenceProto" : v->kind == VK_OPTIONAL ? "OptionalProto" : "MapProto");
            continue;
        }
        Arena *a = arena_new();
        Tensor *t;
        char *name;
        Diag d;
        diag_init(&d, path);
        tensors++;
        if (onnx_read_tensor_file(path, a, &t, &name, &d) != ST_OK) {
            tensors_failed++;
            test_failures++;
            diag_print(&d, stderr);
        } else {
            const char *why = mismatch(v, t);
            char s1[128], s2[128];
            const char *quirk = why ? known_quirk(casedir, kind, k) : NULL;
            if (quirk) {
                quirks++;
                printf("known quirk %s: %s (%s differs)\n", path, quirk, why);
            } else if (why) {
                type_mismatches++;
                CHECK_MSG(0, "%s: %s differs from %s '%s': %s %s vs declared %s %s", path, why, kind,
                          v->name, dtype_name(t->dtype), shape_str(&t->shape, s1, sizeof s1),
                          dtype_name(v->dtype), shape_str(&v->shape, s2, sizeof s2));
            }
        }
        arena_free(a);
    }
}

static void run_case(const char *casedir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/model.onnx", casedir);
    Diag d;
    diag_init(&d, path);
    Model *m;
    models++;
    if (onnx_import_file(path, &m, &d) != ST_OK) {
        models_failed++;
        test_failures++;
        diag_print(&d, stderr);
        return;
    }
    /* the data files follow the graph inputs that are not initializer defaults */
    Graph *g = m->graph;
    Value **ins = calloc(g->ninputs + 1, sizeof *ins);
    size_t nins = 0;
    for (size_t i = 0; ins && i < g->ninputs; i++)
        if (!g->inputs[i]->init)
            ins[nins++] = g->inputs[i];
    check_data(casedir, "input", ins, nins);
    check_data(casedir, "output", g->outputs, g->noutputs);
    free(ins);
    model_free(m);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *root = getenv("ONNX_TESTS_DIR");
    if (!root || !*root)
        root = "../shared/onnx-tests";
    static const char *suites[] = {"node", "pytorch-operator", "simple"};
    int found = 0;
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        char sdir[1024];
        snprintf(sdir, sizeof sdir, "%s/%s", root, suites[s]);
        DIR *dir = opendir(sdir);
        if (!dir)
            continue;
        found++;
        char **names = NULL;
        size_t n = 0, cap = 0;
        for (struct dirent *e; (e = readdir(dir));) {
            if (e->d_name[0] == '.')
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                char **nn = realloc(names, cap * sizeof *nn);
                if (!nn)
                    return 2;
                names = nn;
            }
            names[n++] = strdup(e->d_name);
        }
        closedir(dir);
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            char casedir[1100];
            snprintf(casedir, sizeof casedir, "%s/%s", sdir, names[i]);
            run_case(casedir);
            free(names[i]);
        }
        free(names);
    }
    if (!found) {
        printf("test_import_onnx_tests: no ONNX test data under %s (set ONNX_TESTS_DIR); skipped\n", root);
        return 0;
    }
    printf("models: %d imported, %d failed; tensors: %d read, %d failed, %d type mismatches, %d known "
           "data quirks; %d sequences and optionals read; %d maps skipped\n", models - models_failed, models_failed,
           tensors - tensors_failed, tensors_failed, type_mismatches, quirks, composites, skipped);
    CHECK_EQ_INT(quirks, (int)(sizeof known_quirks / sizeof known_quirks[0]));
    CHECK(models > 0);
    CHECK(composites >= 30); /* the ONNX 1.12 data: sequence, optional, SequenceMap and loop cases */
    /* a file that is not a SequenceProto: an error, not a crash */
    {
        char path[] = "/tmp/onnxtune-seq-XXXXXX";
        int fd = mkstemp(path);
        const unsigned char junk[] = {0x1a, 0x7f, 0x08}; /* field 3, length 127: past the end */
        Arena *a = arena_new();
        DataValue dv;
        Diag d;
        diag_init(&d, path);
        CHECK(fd >= 0 && write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
        if (fd >= 0)
            close(fd);
        CHECK_EQ_INT(onnx_read_value_file(path, VK_SEQUENCE, a, &dv, &d), ST_PARSE);
        CHECK_MSG(strstr(d.msg, "SequenceProto") != NULL, "message: %s", d.msg);
        arena_free(a);
        unlink(path);
    }
    return test_summary("test_import_onnx_tests");
}
