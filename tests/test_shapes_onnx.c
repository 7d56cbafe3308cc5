/* test_shapes_onnx.c - shape and type inference against the ONNX backend test data: every case under
 * $ONNX_TESTS_DIR (default ../shared/onnx-tests) is imported, canonicalised and shape-inferred with
 * folding, and each graph output's dtype and shape are compared with test_data_set_0/output_K.pb.
 * Outputs that folded to constants are compared by value too. It does not run kernels.
 *
 * Shapes that depend on input data (Reshape's shape fed as a graph input, as many node tests do) are
 * tried a second time with the integer inputs bound to their test values; those count separately.
 * Unknown ops count as unsupported (aggregated by op); mismatches, errors and crashes fail the test. */
#include "importer.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- tallies ---- */

typedef struct {
    const char *what; /* op name or reason */
    int count;
    char example[128];
} Tally;

static Tally unsupported[512];
static int nunsupported;
static int n_cases_folded, n_cases, n_imported, n_ok, n_ok_bound, n_datadep, n_unsupported, n_failed, n_values_checked;

static void tally(const char *what, const char *example)
{
    for (int i = 0; i < nunsupported; i++)
        if (strcmp(unsupported[i].what, what) == 0) {
            unsupported[i].count++;
            return;
        }
    if (nunsupported < (int)(sizeof unsupported / sizeof unsupported[0])) {
        unsupported[nunsupported].what = strdup(what);
        unsupported[nunsupported].count = 1;
        snprintf(unsupported[nunsupported].example, sizeof unsupported[nunsupported].example, "%.*s",
                 (int)sizeof unsupported[nunsupported].example - 1, example);
        nunsupported++;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_tally(const void *a, const void *b)
{
    const Tally *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->what, y->what);
}

/* ---- graph walks ---- */

/* First op (in this graph or its subgraphs) without a rule, or NULL. */
static const Node *first_unknown_op(const Graph *g)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (!n->rule)
            return n;
        for (int k = 0; k < n->nattrs; k++) {
            const Attr *a = &n->attrs[k];
            const Node *u = NULL;
            if (a->type == AT_GRAPH && a->g)
                u = first_unknown_op(a->g);
            for (size_t j = 0; !u && a->type == AT_GRAPHS && j < a->n; j++)
                u = first_unknown_op(a->graphs[j]);
            if (u)
                return u;
        }
    }
    return NULL;
}

/* Ops whose output shapes depend on input values even when every shape input is bound. */
static bool has_data_dependent_op(const Graph *g)
{
    static const char *ops[] = {"NonZero", "Unique", "NonMaxSuppression", "Compress", "StringNormalizer",
                                "Loop", "If", "Scan", "TfIdfVectorizer", NULL};
    for (size_t i = 0; i < g->nnodes; i++)
        for (int k = 0; ops[k]; k++)
            if (strcmp(g->nodes[i]->op_type, ops[k]) == 0)
                return true;
    return false;
}

static bool has_non_tensor(const Graph *g)
{
    for (size_t i = 0; i < g->ninputs; i++)
        if (g->inputs[i]->kind != VK_TENSOR)
            return true;
    for (size_t i = 0; i < g->noutputs; i++)
        if (g->outputs[i]->kind != VK_TENSOR)
            return true;
    return false;
}

/* A message without its "node 'NAME' " prefix, so unsupported reasons aggregate across cases. */
static const char *reason(const char *msg)
{
    if (strncmp(msg, "node '", 6) == 0) {
        const char *p = strstr(msg, "' (");
        if (p)
            return p + 2;
    }
    return msg;
}

/* Drop declared types of computed values (graph outputs, value_info), so what is compared is what
 * inference computes, not what the file declares. */
static void forget_declared(Graph *g)
{
    for (size_t i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->producer && v->kind == VK_TENSOR) {
            v->dtype = DT_UNDEFINED;
            v->shape = shape_unknown();
        }
    }
}

/* ONNX 1.12's test data stores bfloat16 tensors as uint16. */
static bool same_dtype(DType got, DType want)
{
    return got == want || (got == DT_BFLOAT16 && want == DT_UINT16);
}

/* ---- one case ---- */

typedef enum { R_OK, R_UNKNOWN_DIMS, R_UNSUPPORTED, R_FAIL } Result;

static bool same_value(const Tensor *a, const Tensor *b, size_t *bad)
{
    for (size_t i = 0; i < a->numel; i++) {
        *bad = i;
        if (a->dtype == DT_STRING) {
            if (strcmp(((char **)a->data)[i], ((char **)b->data)[i]) != 0)
                return false;
        } else if (dtype_is_float(a->dtype)) {
            double x = tensor_get_f64(a, i), y = tensor_get_f64(b, i);
            if (isnan(x) && isnan(y))
                continue;
            /* ONNX 1.12 made its bfloat16 references by truncating; we round to nearest even: 1 ulp */
            double rtol = a->dtype == DT_BFLOAT16 ? 1.0 / 128 : 1e-3;
            if (!(fabs(x - y) <= 1e-5 + rtol * fabs(y)) && !(x == y))
                return false;
        } else if (tensor_get_i64(a, i) != tensor_get_i64(b, i)) {
            return false;
        }
    }
    return true;
}

/* Bind integer/bool graph inputs (and small 1-D float ones, such as Resize scales) to their test values;
 * with `all`, every tensor input (so the whole graph folds and fold rules are checked by value). */
static void bind_inputs(Model *m, const char *dir, bool all)
{
    Graph *g = m->graph;
    int k = 0;
    for (size_t i = 0; i < g->ninputs; i++) {
        Value *v = g->inputs[i];
        if (v->is_initializer)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, k++);
        if (v->kind != VK_TENSOR)
            continue;
        Tensor *t;
        char *name;
        Diag d;
        diag_init(&d, path);
        if (onnx_read_tensor_file(path, m->arena, &t, &name, &d) != ST_OK)
            continue;
        if (v->dtype == DT_BFLOAT16 && t->dtype == DT_UINT16)
            t->dtype = DT_BFLOAT16; /* the test data's bfloat16 storage, see same_dtype() */
        bool small_float = dtype_is_float(t->dtype) && t->shape.rank <= 1 && t->numel <= 16;
        if (!all && !dtype_is_int(t->dtype) && t->dtype != DT_BOOL && !small_float)
            continue;
        v->init = t;
        v->is_input = false;
        v->dtype = t->dtype;
        v->shape = t->shape;
    }
}

/* bind: 0 nothing, 1 integer (shape-like) inputs, 2 every input. *folded counts outputs compared by value. */
static Result run_case(const char *cat, const char *dir, const char *cname, int bind, int *folded, char *why,
                       size_t whylen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    Model *m = NULL;
    Diag d;
    diag_init(&d, path);
    Status st = onnx_import_file(path, &m, &d);
    if (st) {
        snprintf(why, whylen, "import: %s", reason(d.msg));
        return st == ST_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
    }
    if (bind == 0)
        n_imported++;
    Result r = R_OK;
    if (has_non_tensor(m->graph)) {
        snprintf(why, whylen, "sequence/optional/map values");
        r = R_UNSUPPORTED;
        goto done;
    }
    const Node *u = first_unknown_op(m->graph);
    if (u) {
        snprintf(why, whylen, "op %s%s%s", u->domain[0] ? u->domain : "", u->domain[0] ? "." : "", u->op_type);
        r = R_UNSUPPORTED;
        goto done;
    }
    if (bind)
        bind_inputs(m, dir, bind == 2);
    forget_declared(m->graph);
    if ((st = pass_canon(m, &d))) {
        snprintf(why, whylen, "canon: %s: %s", status_name(st), reason(d.msg));
        r = st == ST_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
        goto done;
    }
    ShapeOptions opt = {.fold = true};
    if ((st = pass_shapes(m, &opt, &d))) {
        snprintf(why, whylen, "shapes: %s: %s", status_name(st), reason(d.msg));
        r = st == ST_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
        goto done;
    }
    Graph *g = m->graph;
    for (size_t k = 0; k < g->noutputs; k++) {
        Value *o = g->outputs[k];
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%zu.pb", dir, k);
        Tensor *want;
        char *name;
        Diag d2;
        diag_init(&d2, path);
        if (onnx_read_tensor_file(path, m->arena, &want, &name, &d2)) {
            snprintf(why, whylen, "reading expected output %zu: %s", k, d2.msg);
            r = R_FAIL;
            goto done;
        }
        if (o->dtype == DT_BFLOAT16 && want->dtype == DT_UINT16)
            want->dtype = DT_BFLOAT16;
        char a[128], b[128];
        shape_str(&o->shape, a, sizeof a);
        shape_str(&want->shape, b, sizeof b);
        if (!same_dtype(o->dtype, want->dtype)) {
            snprintf(why, whylen, "output %zu '%s': dtype %s, expected %s", k, o->name, dtype_name(o->dtype),
                     dtype_name(want->dtype));
            r = R_FAIL;
            goto done;
        }
        bool unknown = o->shape.rank < 0;
        bool bad = !unknown && o->shape.rank != want->shape.rank;
        for (int i = 0; !unknown && !bad && i < o->shape.rank; i++) {
            if (o->shape.dim[i] < 0)
                unknown = true;
            else if (o->shape.dim[i] != want->shape.dim[i])
                bad = true;
        }
        if (bad) {
            snprintf(why, whylen, "output %zu '%s': shape %s, expected %s", k, o->name, a, b);
            r = R_FAIL;
            goto done;
        }
        if (unknown) {
            snprintf(why, whylen, "output %zu '%s': shape %s, expected %s", k, o->name, a, b);
            r = R_UNKNOWN_DIMS;
            continue;
        }
        if (o->init) {
            size_t at = 0;
            (*folded)++;
            if (!same_value(o->init, want, &at)) {
                snprintf(why, whylen, "output %zu '%s' folded to a different value at element %zu: %g, expected %g",
                         k, o->name, at, tensor_get_f64(o->init, at), tensor_get_f64(want, at));
                r = R_FAIL;
                goto done;
            }
        }
    }
    if (r == R_UNKNOWN_DIMS && has_data_dependent_op(g))
        snprintf(why + strlen(why), whylen - strlen(why), " (data-dependent)");
done:
    (void)cat, (void)cname;
    model_free(m);
    return r;
}

static void run_category(const char *root, const char *cat)
{
    char dirpath[4096];
    snprintf(dirpath, sizeof dirpath, "%s/%s", root, cat);
    DIR *dir = opendir(dirpath);
    if (!dir)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    int ok = 0, ok_bound = 0, datadep = 0, unsup = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        char casedir[8192], why[1400] = "", why2[1400] = "";
        snprintf(casedir, sizeof casedir, "%s/%s", dirpath, names[i]);
        n_cases++;
        int folded = 0;
        Result r = run_case(cat, casedir, names[i], 0, &folded, why, sizeof why);
        if (r == R_OK || r == R_UNKNOWN_DIMS) {
            /* fold rules against the reference outputs: every input bound, compare what folded */
            char why3[1400] = "";
            int f = 0;
            Result r3 = run_case(cat, casedir, names[i], 2, &f, why3, sizeof why3);
            if (r3 == R_FAIL) {
                printf("FOLD MISMATCH %s/%s (every input bound): %s\n", cat, names[i], why3);
                failed++;
                continue;
            }
            n_values_checked += f;
            n_cases_folded += f > 0;
        }
        if (r == R_UNKNOWN_DIMS) {
            Result r2 = run_case(cat, casedir, names[i], 1, &folded, why2, sizeof why2);
            if (r2 == R_OK) {
                ok_bound++;
                continue;
            }
            if (r2 == R_FAIL) {
                printf("MISMATCH %s/%s (with integer inputs bound): %s\n", cat, names[i], why2);
                failed++;
                continue;
            }
            if (r2 == R_UNKNOWN_DIMS && strstr(why2, "(data-dependent)")) {
                printf("data-dependent %s/%s: %s\n", cat, names[i], why2);
                datadep++;
                continue;
            }
            printf("MISMATCH %s/%s: unknown dims: %s\n", cat, names[i], r2 == R_UNKNOWN_DIMS ? why2 : why);
            failed++;
            continue;
        }
        switch (r) {
        case R_OK: ok++; break;
        case R_UNSUPPORTED: {
            char example[256];
            snprintf(example, sizeof example, "%s/%s", cat, names[i]);
            tally(why, example);
            unsup++;
            break;
        }
        default:
            printf("MISMATCH %s/%s: %s\n", cat, names[i], why);
            failed++;
            break;
        }
    }
    printf("%-17s %4zu cases: %4d shape-checked OK, %4d OK with integer inputs bound, %3d data-dependent, "
           "%4d unsupported, %3d mismatched\n", cat, n, ok, ok_bound, datadep, unsup, failed);
    n_ok += ok, n_ok_bound += ok_bound, n_datadep += datadep, n_unsupported += unsup, n_failed += failed;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int main(void)
{
    const char *root = getenv("ONNX_TESTS_DIR");
    if (!root || !*root)
        root = "../shared/onnx-tests";
    struct stat sb;
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        printf("skipped: no onnx-tests (looked in %s)\n", root);
        return 0;
    }
    const char *cats[] = {"node", "pytorch-operator", "simple"};
    for (size_t i = 0; i < 3; i++)
        run_category(root, cats[i]);
    qsort(unsupported, (size_t)nunsupported, sizeof unsupported[0], cmp_tally);
    printf("unsupported, by reason:\n");
    for (int i = 0; i < nunsupported; i++)
        printf("  %4d  %s  (e.g. %s)\n", unsupported[i].count, unsupported[i].what, unsupported[i].example);
    printf("total: %d cases, %d imported, %d shape-checked OK (+%d with integer inputs bound), %d data-dependent, "
           "%d unsupported, %d mismatched\n", n_cases, n_imported, n_ok, n_ok_bound, n_datadep, n_unsupported,
           n_failed);
    printf("folding with every input bound: %d outputs of %d cases folded and matched the reference values\n",
           n_values_checked, n_cases_folded);
    return n_failed ? 1 : 0;
}
