/* cmd_conform.c - `onnxtune conform DIR...`: every ONNX backend test case (a folder with model.onnx
 * and test_data_set_*) under the folders is compiled and run, and its outputs compared.
 *
 * Batched for speed: cases are taken in chunks; each case becomes one generated C file with its own
 * prefix (codegen's PREFIX_run/PREFIX_info), compiled in parallel, linked into one shared object per
 * chunk and dlopen'ed. Each test data set runs in a forked child, so a crash is one FAIL with its
 * signal. Shapes come from the test inputs; when they still depend on input values, small integer
 * inputs are compiled in as constants and the case is retried. It never changes the test folders. */
#include "tools.h"

#include "codegen.h"
#include "program.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef enum { R_NONE, R_PASS, R_FAIL, R_UNSUPPORTED } Result;

typedef struct DataSet {
    Tensor **in, **out;     /* NULL for a sequence or optional: see inv, outv */
    DataValue *inv, *outv;  /* every value, tensors too */
    char **in_name, **out_name;
    int nin, nout;
} DataSet;

/* One compiled form of a case: data sets whose input shapes (and compiled-in values) agree share one. */
typedef struct Unit {
    char prefix[48];        /* of PREFIX_run / PREFIX_info */
    int set;                /* the data set it was generated from */
    int bake;               /* 0: all inputs at run time; 1, 2: small inputs compiled in */
    int nrt;                /* runtime inputs */
    int *set_input;         /* per runtime input: index into a data set's inputs */
    char *c_path, *o_path;  /* generated file and object (NULL: generation failed) */
    bool built;             /* the object compiled */
} Unit;

typedef struct Case {
    char *dir;              /* the case folder */
    char *name;             /* "<suite>/<case>", as printed */
    Arena *arena;           /* test data and units */
    DataSet *sets;
    int nsets;
    Unit *units;            /* at most one per data set */
    int nunits;
    int *unit_of;           /* per data set: its unit */
    Result result;
    char reason[512];
} Case;

typedef struct Options {
    int jobs, chunk, timeout;
    bool keep, verbose;
    char work[PATH_MAX];
} Options;

/* ---- finding cases ---- */

typedef struct CaseList {
    Case *v;
    size_t n, cap;
} CaseList;

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted subfolder names of dir (caller frees). */
static char **list_dirs(const char *dir, size_t *n, const char *prefix)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t cap = 64;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (e->d_name[0] == '.' || (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0))
            continue;
        char path[2 * PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path || !is_dir(path))
            continue;
        if (*n == cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (v)
        qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void add_cases(CaseList *cl, const char *dir, const char *label, int depth)
{
    char model[PATH_MAX];
    if (snprintf(model, sizeof model, "%s/model.onnx", dir) >= (int)sizeof model)
        return;
    if (is_file(model)) {
        if (cl->n == cl->cap) {
            size_t cap = cl->cap ? cl->cap * 2 : 256;
            Case *nv = realloc(cl->v, cap * sizeof *nv);
            if (!nv)
                return;
            cl->v = nv;
            cl->cap = cap;
        }
        Case *c = &cl->v[cl->n++];
        memset(c, 0, sizeof *c);
        c->dir = strdup(dir);
        c->name = strdup(label);
        return;
    }
    if (depth >= 4)
        return;
    size_t n;
    char **subs = list_dirs(dir, &n, NULL);
    for (size_t i = 0; i < n; i++) {
        char sub[PATH_MAX], sublabel[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]) < (int)sizeof sub &&
            snprintf(sublabel, sizeof sublabel, "%s/%s", label, subs[i]) < (int)sizeof sublabel)
            add_cases(cl, sub, sublabel, depth + 1);
    }
    free_list(subs, n);
}

static void set_result(Case *c, Result r, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void set_result(Case *c, Result r, const char *fmt, ...)
{
    if (c->result != R_NONE && c->result != R_PASS)
        return;
    c->result = r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof c->reason, fmt, ap);
    va_end(ap);
    for (char *s = c->reason; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

/* ---- test data ---- */

/* Read stem_K.pb as the kind the model gives value K (kinds[K], VK_TENSOR past nkinds): the files do not
 * say whether they hold a TensorProto, SequenceProto or OptionalProto. */
static bool read_pbs(Case *c, const char *dir, const char *stem, const ValueKind *kinds, int nkinds, Tensor ***ts,
                     DataValue **vals, char ***names, int *count)
{
    int n = 0;
    char path[PATH_MAX + 64];
    while (snprintf(path, sizeof path, "%s/%s_%d.pb", dir, stem, n), is_file(path))
        n++;
    *ts = arena_calloc(c->arena, (size_t)n + 1, sizeof **ts);
    *vals = arena_calloc(c->arena, (size_t)n + 1, sizeof **vals);
    *names = arena_calloc(c->arena, (size_t)n + 1, sizeof **names);
    *count = n;
    if (!*ts || !*vals || !*names)
        return false;
    for (int k = 0; k < n; k++) {
        Diag d;
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, stem, k);
        diag_init(&d, path);
        ValueKind kind = k < nkinds ? kinds[k] : VK_TENSOR;
        Status st = kind == VK_SEQUENCE || kind == VK_OPTIONAL
                        ? onnx_read_value_file(path, kind, c->arena, &(*vals)[k], &d)
                        : onnx_read_tensor_file(path, c->arena, &(*ts)[k], &(*names)[k], &d);
        if (st != ST_OK) {
            set_result(c, R_UNSUPPORTED, "test data %s_%d.pb: %s", stem, k, d.msg);
            return false;
        }
        if (kind != VK_SEQUENCE && kind != VK_OPTIONAL)
            (*vals)[k] = (DataValue){.kind = VK_TENSOR, .t = (*ts)[k]};
    }
    return true;
}

/* The kinds of the model's runtime inputs (graph inputs without an initializer) and outputs, in order. */
static bool read_kinds(Case *c, ValueKind **in, int *nin, ValueKind **out, int *nout)
{
    Model *m = NULL;
    Diag d;
    char model[PATH_MAX + 16];
    snprintf(model, sizeof model, "%s/model.onnx", c->dir);
    diag_init(&d, NULL);
    *nin = *nout = 0;
    *in = *out = NULL;
    if (onnx_import_file(model, &m, &d) != ST_OK)
        return true; /* prepare reports it */
    Graph *g = m->graph;
    *in = arena_calloc(c->arena, g->ninputs + 1, sizeof **in);
    *out = arena_calloc(c->arena, g->noutputs + 1, sizeof **out);
    bool ok = *in && *out;
    for (size_t i = 0; ok && i < g->ninputs; i++)
        if (!g->inputs[i]->is_initializer)
            (*in)[(*nin)++] = g->inputs[i]->kind;
    for (size_t i = 0; ok && i < g->noutputs; i++)
        (*out)[(*nout)++] = g->outputs[i]->kind;
    model_free(m);
    return ok;
}

static bool read_sets(Case *c)
{
    size_t n;
    char **sets = list_dirs(c->dir, &n, "test_data_set_");
    if (n == 0) {
        set_result(c, R_UNSUPPORTED, "no test_data_set_* folder");
        free_list(sets, n);
        return false;
    }
    c->sets = arena_calloc(c->arena, n, sizeof *c->sets);
    c->nsets = (int)n;
    ValueKind *in_kinds, *out_kinds;
    int nin_kinds, nout_kinds;
    bool ok = c->sets != NULL && read_kinds(c, &in_kinds, &nin_kinds, &out_kinds, &nout_kinds);
    for (size_t i = 0; ok && i < n; i++) {
        char dir[2 * PATH_MAX];
        DataSet *s = &c->sets[i];
        snprintf(dir, sizeof dir, "%s/%s", c->dir, sets[i]);
        ok = read_pbs(c, dir, "input", in_kinds, nin_kinds, &s->in, &s->inv, &s->in_name, &s->nin) &&
             read_pbs(c, dir, "output", out_kinds, nout_kinds, &s->out, &s->outv, &s->out_name, &s->nout);
        for (int k = 0; ok && k < s->nin; k++)
            if (s->in[k] && s->in[k]->dtype == DT_STRING) {
                set_result(c, R_UNSUPPORTED, "unsupported dtype string (input %d)", k);
                ok = false;
            }
    }
    free_list(sets, n);
    return ok;
}

/* ---- compiling one case ---- */

static bool same_shape(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

/* The graph input that data-set input k feeds: by name, else by position among non-initializers. */
static Value *input_for(Graph *g, const DataSet *s, int k)
{
    if (s->in_name[k] && s->in_name[k][0])
        for (size_t i = 0; i < g->ninputs; i++)
            if (strcmp(g->inputs[i]->name, s->in_name[k]) == 0)
                return g->inputs[i];
    int pos = 0;
    for (size_t i = 0; i < g->ninputs; i++) {
        if (g->inputs[i]->is_initializer)
            continue;
        if (pos++ == k)
            return g->inputs[i];
    }
    return NULL;
}

static bool is_small_int(const Tensor *t, size_t max)
{
    return t->numel <= max && (dtype_is_int(t->dtype) || t->dtype == DT_BOOL);
}

/* The element tensors of a sequence or optional data value (an optional tensor: one), *n of them. */
static Tensor **data_elems(const DataValue *dv, size_t *n)
{
    *n = 0;
    if (dv->kind == VK_SEQUENCE || (dv->kind == VK_OPTIONAL && !dv->none && dv->elem_kind == VK_SEQUENCE)) {
        *n = dv->n;
        return dv->elems;
    }
    if (dv->kind == VK_OPTIONAL && !dv->none) {
        *n = 1;
        return (Tensor **)&dv->t;
    }
    return NULL;
}

/* Give graph input v the compile-time type of data value dv (length, element shapes, presence). */
static Status type_from_data(Graph *g, Value *v, const DataValue *dv)
{
    size_t n;
    Tensor **el = data_elems(dv, &n);
    if (v->kind != dv->kind)
        return ST_INVALID;
    bool seq = dv->kind == VK_SEQUENCE || (!dv->none && dv->elem_kind == VK_SEQUENCE);
    for (size_t k = 0; k < n; k++)
        if (v->dtype != DT_UNDEFINED && el[k]->dtype != v->dtype)
            return ST_INVALID;
    if (n)
        v->dtype = el[0]->dtype;
    if (dv->kind == VK_OPTIONAL) {
        v->opt = dv->none ? OPT_NONE : OPT_SOME;
        v->opt_kind = dv->none && v->opt_kind != VK_UNKNOWN ? v->opt_kind : dv->elem_kind;
        if (!seq && !dv->none)
            v->shape = dv->t->shape;
        if (!seq)
            return ST_OK;
    }
    if (!(v->seq = seq_type_new(g, (int)n)))
        return ST_NOMEM;
    for (size_t k = 0; k < n; k++)
        v->seq->shapes[k] = el[k]->shape;
    return ST_OK;
}

/* Whether the inferred type of output v is that of the expected data value. */
static bool type_matches(const Value *v, const DataValue *dv)
{
    size_t n;
    Tensor **el = data_elems(dv, &n);
    if (v->kind != dv->kind)
        return false;
    if (dv->kind == VK_OPTIONAL) {
        if ((v->opt == OPT_NONE) != dv->none || v->opt == OPT_UNKNOWN)
            return false;
        if (dv->none)
            return true;
        if (v->opt_kind == VK_TENSOR)
            return dv->elem_kind == VK_TENSOR && v->dtype == dv->t->dtype && same_shape(&v->shape, &dv->t->shape);
    }
    if (!v->seq || v->seq->n != (int)n)
        return false;
    for (size_t k = 0; k < n; k++)
        if (el[k]->dtype != v->dtype || !same_shape(&v->seq->shapes[k], &el[k]->shape))
            return false;
    return true;
}

/* Import, fix input shapes from data set u->set, infer, generate. bake: 0 none, 1 small int inputs,
 * 2 any small input compiled in as constants. Returns the status; a message in c. */
static Status prepare(Case *c, Unit *u, int bake, FILE *out)
{
    Model *m = NULL;
    Diag d;
    char model[PATH_MAX + 16], a[128], b[128];
    snprintf(model, sizeof model, "%s/model.onnx", c->dir);
    diag_init(&d, NULL);
    Status st = onnx_import_file(model, &m, &d);
    if (st) {
        set_result(c, st == ST_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL, "import: %s", d.msg);
        return st;
    }
    if ((st = pass_canon(m, &d))) {
        set_result(c, st == ST_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL, "canonicalisation: %s", d.msg);
        goto out;
    }
    Graph *g = m->graph;
    const DataSet *s = &c->sets[u->set];
    for (size_t i = 0; i < g->ninputs; i++)
        if (g->inputs[i]->kind == VK_MAP || g->inputs[i]->kind == VK_SPARSE) {
            set_result(c, R_UNSUPPORTED, "input '%s' is not a tensor, sequence or optional", g->inputs[i]->name);
            st = ST_UNSUPPORTED;
            goto out;
        }
    for (size_t i = 0; i < g->noutputs; i++)
        if (g->outputs[i]->kind == VK_MAP || g->outputs[i]->kind == VK_SPARSE) {
            set_result(c, R_UNSUPPORTED, "output '%s' is not a tensor, sequence or optional", g->outputs[i]->name);
            st = ST_UNSUPPORTED;
            goto out;
        }
    Value **fed = arena_calloc(c->arena, (size_t)s->nin + 1, sizeof *fed); /* graph input of data input k */
    if (!fed) {
        set_result(c, R_FAIL, "out of memory");
        st = ST_NOMEM;
        goto out;
    }
    for (int k = 0; k < s->nin; k++)
        fed[k] = input_for(g, s, k);
    for (int k = 0; k < s->nin; k++) {
        Value *v = fed[k];
        const Tensor *t = s->in[k];
        if (!v) {
            set_result(c, R_FAIL, "test input %d has no graph input", k);
            st = ST_INVALID;
            goto out;
        }
        if (!t) { /* a sequence or optional: its type comes from the data, as a tensor's shape does */
            if ((st = type_from_data(g, v, &s->inv[k]))) {
                set_result(c, R_FAIL, "test input %d: %s", k, st == ST_NOMEM ? "out of memory" : "another kind of value "
                           "or element type than the graph input");
                goto out;
            }
            v->init = NULL;
            continue;
        }
        if (v->dtype == DT_BFLOAT16 && t->dtype == DT_UINT16)
            ((Tensor *)t)->dtype = DT_BFLOAT16; /* the backend data stores bfloat16 as its uint16 bits */
        if (v->dtype != DT_UNDEFINED && v->dtype != t->dtype) {
            set_result(c, R_FAIL, "test input %d is %s but graph input '%s' is %s", k, dtype_name(t->dtype), v->name,
                       dtype_name(v->dtype));
            st = ST_INVALID;
            goto out;
        }
        v->dtype = t->dtype;
        v->shape = t->shape;
        bool compile_in = (bake >= 1 && is_small_int(t, 64)) || (bake >= 2 && t->numel <= 64);
        if (compile_in) {
            v->init = (Tensor *)t;
            v->is_input = false;
        } else {
            v->init = NULL; /* test data overrides an initializer default */
        }
    }
    /* compiled-in inputs are no longer graph inputs; nor are those the data leaves at their initializer */
    for (size_t i = 0; i < g->ninputs; i++) {
        bool data = false;
        for (int k = 0; k < s->nin; k++)
            data |= fed[k] == g->inputs[i];
        if (!data && g->inputs[i]->init)
            g->inputs[i]->is_input = false;
    }
    size_t w = 0;
    for (size_t i = 0; i < g->ninputs; i++)
        if (g->inputs[i]->is_input)
            g->inputs[w++] = g->inputs[i];
    g->ninputs = w;
    ShapeOptions so = {.fold = true};
    if ((st = pass_shapes(m, &so, &d))) {
        set_result(c, st == ST_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL, "shapes: %s", d.msg);
        goto out;
    }
    for (size_t i = 0; i < g->noutputs && i < (size_t)s->nout; i++) {
        const Value *v = g->outputs[i];
        Tensor *t = s->out[i];
        size_t vbytes;
        if (!t) { /* a type not known here (an If's, a Loop's) is left for codegen to refuse */
            if (value_nbytes(v, &vbytes) && !type_matches(v, &s->outv[i])) {
                set_result(c, R_FAIL, "output %zu '%s' is inferred %s, not the type of the expected value", i, v->name,
                           value_type_str(v, a, sizeof a));
                st = ST_SHAPE;
                goto out;
            }
            continue;
        }
        if (v->dtype == DT_BFLOAT16 && t->dtype == DT_UINT16)
            t->dtype = DT_BFLOAT16;
        if (v->dtype != t->dtype) {
            set_result(c, R_FAIL, "output %zu '%s' is inferred %s, expected %s", i, v->name, dtype_name(v->dtype),
                       dtype_name(t->dtype));
            st = ST_SHAPE;
            goto out;
        }
        if (shape_is_static(&v->shape) && !same_shape(&v->shape, &t->shape)) {
            set_result(c, R_FAIL, "output %zu '%s' is inferred %s, expected %s", i, v->name,
                       shape_str(&v->shape, a, sizeof a), shape_str(&t->shape, b, sizeof b));
            st = ST_SHAPE;
            goto out;
        }
    }
    if (g->noutputs != (size_t)s->nout) {
        set_result(c, R_FAIL, "the model has %zu outputs, the test data %d", g->noutputs, s->nout);
        st = ST_INVALID;
        goto out;
    }
    CodegenOptions co = {.prefix = u->prefix, .model_path = model};
    st = codegen_emit(g, &co, out, NULL, &d);
    if (st) {
        set_result(c, st == ST_UNSUPPORTED || st == ST_SHAPE ? R_UNSUPPORTED : R_FAIL, "%s", d.msg);
        goto out;
    }
    /* remember which data-set input feeds each runtime input */
    u->nrt = 0;
    u->bake = bake;
    u->set_input = arena_calloc(c->arena, g->ninputs + 1, sizeof *u->set_input);
    for (size_t i = 0; u->set_input && i < g->ninputs; i++) {
        if (g->inputs[i]->init)
            continue;
        u->set_input[u->nrt] = -1;
        for (int k = 0; k < s->nin; k++)
            if (fed[k] == g->inputs[i])
                u->set_input[u->nrt] = k;
        if (u->set_input[u->nrt] < 0) {
            set_result(c, R_FAIL, "graph input '%s' has no test data", g->inputs[i]->name);
            st = ST_INVALID;
            goto out;
        }
        u->nrt++;
    }
out:
    model_free(m);
    return st;
}

/* Generate the unit's C file; retry with constant inputs when shapes depend on input values. */
static bool generate(Case *c, Unit *u, const char *path)
{
    for (int bake = 0; bake <= 2; bake++) {
        FILE *f = fopen(path, "w");
        if (!f) {
            set_result(c, R_FAIL, "cannot write %s: %s", path, strerror(errno));
            return false;
        }
        Result before = c->result;
        char reason[sizeof c->reason];
        memcpy(reason, c->reason, sizeof reason);
        Status st = prepare(c, u, bake, f);
        fclose(f);
        if (st == ST_OK)
            return true;
        bool retry = (st == ST_SHAPE && strstr(c->reason, "not static")) ||
                     (st == ST_UNSUPPORTED && (strstr(c->reason, "not constant") || strstr(c->reason, "not a constant")));
        bool has_int = false, has_small = false;
        const DataSet *ds = &c->sets[u->set];
        for (int k = 0; k < ds->nin; k++) {
            has_int |= ds->in[k] && is_small_int(ds->in[k], 64);
            has_small |= ds->in[k] && ds->in[k]->numel <= 64;
        }
        if (!retry || bake == 2 || (bake == 0 && !has_int && !has_small) || (bake == 1 && !has_small))
            break;
        c->result = before; /* try again with more inputs compiled in */
        memcpy(c->reason, reason, sizeof reason);
    }
    if (c->result == R_UNSUPPORTED && strstr(c->reason, "not static"))
        snprintf(c->reason, sizeof c->reason, "data-dependent output shapes");
    return false;
}

/* ---- comparing ---- */

static double elem_f64(const void *data, DType t, size_t i)
{
    switch (t) {
    case DT_FLOAT: return ((const float *)data)[i];
    case DT_DOUBLE: return ((const double *)data)[i];
    case DT_FLOAT16: return half_to_float(((const uint16_t *)data)[i]);
    case DT_BFLOAT16: return bfloat16_to_float(((const uint16_t *)data)[i]);
    default: return 0;
    }
}

/* Compare got (the run's output) with expected; "" when equal, else a reason. */
static void compare(const void *got, const Tensor *exp, int k, const char *name, char *why, size_t size)
{
    why[0] = '\0';
    size_t n = exp->numel, bad = 0, worst = 0;
    double worst_err = -1;
    if (!dtype_is_float(exp->dtype)) {
        size_t es = dtype_size(exp->dtype);
        for (size_t i = 0; i < n; i++)
            if (memcmp((const char *)got + i * es, (const char *)exp->data + i * es, es) != 0) {
                if (!bad)
                    worst = i;
                bad++;
            }
        if (bad)
            snprintf(why, size, "output %d '%s': %zu of %zu values differ, first at %zu: got %lld, expected %lld", k,
                     name, bad, n, worst, (long long)tensor_get_i64(&(Tensor){.dtype = exp->dtype,
                                                                              .data = (void *)got, .numel = n}, worst),
                     (long long)tensor_get_i64(exp, worst));
        return;
    }
    double rtol = 1e-3, atol = 1e-5;
    if (exp->dtype == DT_FLOAT16) {
        rtol = 1e-2;
        atol = 1e-3;
    } else if (exp->dtype == DT_BFLOAT16) {
        rtol = 2e-2;
        atol = 1e-2;
    }
    for (size_t i = 0; i < n; i++) {
        double g = elem_f64(got, exp->dtype, i), e = elem_f64(exp->data, exp->dtype, i);
        if (isnan(e) && isnan(g))
            continue;
        if (isinf(e) && g == e)
            continue;
        double err = fabs(g - e);
        if (!(err <= atol + rtol * fabs(e))) {
            bad++;
            if (!(err <= worst_err)) {
                worst_err = isnan(err) ? INFINITY : err;
                worst = i;
            }
        }
    }
    if (bad)
        snprintf(why, size, "output %d '%s': %zu of %zu values differ (rtol %g, atol %g), worst at %zu: got %.9g, "
                 "expected %.9g", k, name, bad, n, rtol, atol, worst, elem_f64(got, exp->dtype, worst),
                 elem_f64(exp->data, exp->dtype, worst));
}

/* The layout of a sequence or optional data value (ir/ops_seq.c's seq_layout); NULL on failure. */
static size_t *elem_offsets(const DataValue *dv, size_t *bytes)
{
    size_t n;
    Tensor **el = data_elems(dv, &n);
    Shape *shapes = calloc(n + 1, sizeof *shapes);
    size_t *off = calloc(n + 1, sizeof *off);
    bool ok = shapes && off;
    for (size_t k = 0; ok && k < n; k++) {
        shapes[k] = el[k]->shape;
        ok = el[k]->dtype == el[0]->dtype;
    }
    ok = ok && seq_layout(n ? el[0]->dtype : DT_FLOAT, (int)n, shapes, off, bytes);
    free(shapes);
    if (!ok) {
        free(off);
        return NULL;
    }
    return off;
}

/* The run's buffer of a sequence or optional input (malloc'd; freed with the child). */
static void *pack(const DataValue *dv, const CgTensorInfo *ti)
{
    size_t n, bytes;
    Tensor **el = data_elems(dv, &n);
    size_t *off = elem_offsets(dv, &bytes);
    unsigned char *buf = off && bytes == ti->bytes && ti->kind ? calloc(1, bytes ? bytes : 1) : NULL;
    for (size_t k = 0; buf && k < n; k++)
        if (el[k]->nbytes)
            memcpy(buf + off[k], el[k]->data, el[k]->nbytes);
    free(off);
    return buf;
}

/* Compare a sequence or optional output element by element. */
static void compare_elems(const void *got, const DataValue *exp, int k, const char *name, char *why, size_t size)
{
    size_t n, bytes;
    Tensor **el = data_elems(exp, &n);
    size_t *off = elem_offsets(exp, &bytes);
    char ename[300];
    why[0] = '\0';
    if (!off) {
        snprintf(why, size, "output %d '%s': cannot lay out the expected value", k, name);
        return;
    }
    for (size_t j = 0; j < n && !why[0]; j++) {
        snprintf(ename, sizeof ename, "%s[%zu]", name, j);
        compare((const unsigned char *)got + off[j], el[j], k, ename, why, size);
    }
    free(off);
}

/* ---- running (in a forked child) ---- */

/* Run data set `si` of case c through info (its unit u); write "PASS" or a reason to fd. */
static void child_run(const Case *c, const Unit *u, int si, const CgModelInfo *info, int fd)
{
    const DataSet *s = &c->sets[si];
    char why[600] = "";
    void **in = calloc((size_t)info->ninputs + 1, sizeof *in), **out = calloc((size_t)info->noutputs + 1, sizeof *out);
    void *ws = info->workspace_bytes ? aligned_alloc(64, info->workspace_bytes) : NULL;
    rt_set_threads(1);
    if (!in || !out || (info->workspace_bytes && !ws)) {
        snprintf(why, sizeof why, "out of memory");
        goto done;
    }
    if (info->ninputs != u->nrt || info->noutputs != s->nout) {
        snprintf(why, sizeof why, "internal: %d inputs and %d outputs compiled, %d and %d expected", info->ninputs,
                 info->noutputs, u->nrt, s->nout);
        goto done;
    }
    for (int i = 0; i < info->ninputs; i++) {
        const Tensor *t = s->in[u->set_input[i]];
        const CgTensorInfo *ti = &info->inputs[i];
        if (!t) {
            if (!(in[i] = pack(&s->inv[u->set_input[i]], ti))) {
                snprintf(why, sizeof why, "test data set %d: input '%s' has another type than compiled", si, ti->name);
                goto done;
            }
            continue;
        }
        bool ok = ti->dtype == (int)t->dtype && ti->rank == t->shape.rank;
        for (int k = 0; ok && k < ti->rank; k++)
            ok = ti->dims[k] == t->shape.dim[k];
        if (!ok) {
            snprintf(why, sizeof why, "test data set %d: input '%s' has another shape or dtype than compiled", si,
                     ti->name);
            goto done;
        }
        in[i] = t->data ? t->data : (void *)"";
    }
    for (int i = 0; i < info->noutputs; i++) {
        const Tensor *t = s->out[i];
        size_t bytes = t ? t->nbytes : info->outputs[i].bytes;
        out[i] = calloc(1, bytes ? bytes : 1);
        if (!out[i]) {
            snprintf(why, sizeof why, "out of memory");
            goto done;
        }
    }
    info->run(in, out, ws);
    for (int i = 0; i < info->noutputs && !why[0]; i++)
        if (s->out[i])
            compare(out[i], s->out[i], i, info->outputs[i].name, why, sizeof why);
        else
            compare_elems(out[i], &s->outv[i], i, info->outputs[i].name, why, sizeof why);
done:
    if (!why[0])
        snprintf(why, sizeof why, "PASS");
    if (write(fd, why, strlen(why)) < 0)
        _exit(3);
    _exit(0);
}

static void run_case(Case *c, void *so, const Options *o)
{
    bool baked = false;
    for (int si = 0; si < c->nsets; si++) {
        Unit *u = &c->units[c->unit_of[si]];
        char sym[64];
        snprintf(sym, sizeof sym, "%s_info", u->prefix);
        const CgModelInfo *info = dlsym(so, sym);
        if (!info) {
            set_result(c, R_FAIL, "internal: %s not found in the shared object", sym);
            return;
        }
        baked |= u->bake > 0;
        int fds[2];
        if (pipe(fds) != 0) {
            set_result(c, R_FAIL, "pipe: %s", strerror(errno));
            return;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            alarm((unsigned)o->timeout);
            child_run(c, u, si, info, fds[1]);
        }
        close(fds[1]);
        char msg[700];
        size_t len = 0;
        ssize_t r;
        while (len + 1 < sizeof msg && (r = read(fds[0], msg + len, sizeof msg - 1 - len)) != 0) {
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                break;
            len += (size_t)r;
        }
        msg[len] = '\0';
        close(fds[0]);
        int ws = 0;
        if (pid < 0 || waitpid(pid, &ws, 0) != pid) {
            set_result(c, R_FAIL, "cannot run the case: %s", strerror(errno));
            return;
        }
        if (WIFSIGNALED(ws)) {
            int sig = WTERMSIG(ws);
            if (sig == SIGALRM)
                set_result(c, R_FAIL, "timed out after %d s", o->timeout);
            else
                set_result(c, R_FAIL, "crashed: signal %d (%s)", sig, strsignal(sig));
            return;
        }
        if (strcmp(msg, "PASS") != 0) {
            if (c->nsets > 1)
                set_result(c, R_FAIL, "data set %d: %s", si, msg[0] ? msg : "the run wrote no result");
            else
                set_result(c, R_FAIL, "%s", msg[0] ? msg : "the run wrote no result");
            return;
        }
    }
    set_result(c, R_PASS, "%s", baked ? "(shape-determining inputs compiled in)" : "");
}

/* Cases whose expected outputs contradict their own model, with why. When such a case does not pass it is
 * UNSUPPORTED with this reason (and the difference found), not FAIL; when it passes it passes. */
static const struct {
    const char *name, *why;
} bad_references[] = {
    {"test_adam_multiple", "its reference used epsilon 1e-2, which the model does not set (Adam-1 default 1e-6)"},
};

static void run_case_checked(Case *c, void *so, const Options *o)
{
    run_case(c, so, o);
    const char *base = strrchr(c->name, '/') ? strrchr(c->name, '/') + 1 : c->name;
    for (size_t i = 0; c->result == R_FAIL && i < sizeof bad_references / sizeof bad_references[0]; i++)
        if (strcmp(base, bad_references[i].name) == 0) {
            char got[sizeof c->reason];
            snprintf(got, sizeof got, "%s", c->reason);
            c->result = R_NONE;
            set_result(c, R_UNSUPPORTED, "%s (%s)", bad_references[i].why, got);
        }
}

/* ---- one chunk: generate, compile in parallel, link, run ---- */

static void first_line(const char *msg, char *out, size_t size)
{
    /* "the C compiler failed (exit 1) on the generated file F:\nF:12:3: error: ..." -> the error line */
    const char *nl = strchr(msg, '\n');
    const char *s = nl ? nl + 1 : msg;
    const char *err = strstr(s, "error:");
    if (err)
        s = err;
    size_t n = strcspn(s, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Can data set si run on unit u (made from another set)? Same input dtypes and shapes, and when
 * inputs were compiled in, the same small inputs' bytes. */
static bool set_fits(const Case *c, const Unit *u, int si)
{
    const DataSet *a = &c->sets[u->set], *b = &c->sets[si];
    if (a->nin != b->nin)
        return false;
    for (int k = 0; k < a->nin; k++) {
        const Tensor *x = a->in[k], *y = b->in[k];
        if (!x || !y) {
            size_t nx, ny;
            Tensor **ex = data_elems(&a->inv[k], &nx), **ey = data_elems(&b->inv[k], &ny);
            if (x || y || a->inv[k].kind != b->inv[k].kind || a->inv[k].none != b->inv[k].none || nx != ny)
                return false;
            for (size_t j = 0; j < nx; j++)
                if (ex[j]->dtype != ey[j]->dtype || !same_shape(&ex[j]->shape, &ey[j]->shape))
                    return false;
            continue;
        }
        if (x->dtype != y->dtype || !same_shape(&x->shape, &y->shape))
            return false;
        if (u->bake && x->numel <= 64 && x->nbytes && memcmp(x->data, y->data, x->nbytes) != 0)
            return false;
    }
    return true;
}

/* Generate the units of case c (index ci of chunk chunk_no): one per group of fitting data sets. */
static void generate_units(Case *c, size_t chunk_no, size_t ci, const Options *o)
{
    c->units = arena_calloc(c->arena, (size_t)c->nsets, sizeof *c->units);
    c->unit_of = arena_calloc(c->arena, (size_t)c->nsets, sizeof *c->unit_of);
    if (!c->units || !c->unit_of) {
        set_result(c, R_FAIL, "out of memory");
        return;
    }
    for (int si = 0; si < c->nsets; si++) {
        int fit = -1;
        for (int k = 0; k < c->nunits && fit < 0; k++)
            if (set_fits(c, &c->units[k], si))
                fit = k;
        if (fit >= 0) {
            c->unit_of[si] = fit;
            continue;
        }
        Unit *u = &c->units[c->nunits];
        u->set = si;
        if (c->nunits)
            snprintf(u->prefix, sizeof u->prefix, "case%zu_%zu_set%d", chunk_no, ci, si);
        else
            snprintf(u->prefix, sizeof u->prefix, "case%zu_%zu", chunk_no, ci);
        char *c_path = arena_printf(c->arena, "%s/%s.c", o->work, u->prefix);
        char *o_path = arena_printf(c->arena, "%s/%s.o", o->work, u->prefix);
        if (!c_path || !o_path) {
            set_result(c, R_FAIL, "out of memory");
            return;
        }
        if (!generate(c, u, c_path)) {
            unlink(c_path);
            return;
        }
        u->c_path = c_path;
        u->o_path = o_path;
        c->unit_of[si] = c->nunits++;
    }
}

/* A unit waiting for (or being compiled by) the C compiler. */
typedef struct Build {
    Case *c;
    Unit *u;
} Build;

static void run_chunk(Case *cs, size_t n, size_t chunk_no, const Options *o)
{
    size_t nb = 0, nobj = 0;
    for (size_t i = 0; i < n; i++) {
        Case *c = &cs[i];
        c->arena = arena_new();
        if (!c->arena) {
            set_result(c, R_FAIL, "out of memory");
            continue;
        }
        if (read_sets(c))
            generate_units(c, chunk_no, i, o);
        if (c->result == R_NONE)
            nb += (size_t)c->nunits;
    }
    Build *builds = calloc(nb + 1, sizeof *builds);
    const char **objs = calloc(nb + 1, sizeof *objs);
    CcJob *jobs = calloc((size_t)o->jobs, sizeof *jobs);
    size_t *job_build = calloc((size_t)o->jobs, sizeof *job_build);
    if (!builds || !objs || !jobs || !job_build)
        goto out;
    nb = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; cs[i].result == R_NONE && k < cs[i].nunits; k++)
            builds[nb++] = (Build){&cs[i], &cs[i].units[k]};

    /* compile the C files, o->jobs at a time */
    size_t next = 0;
    int running = 0;
    for (;;) {
        while (running < o->jobs && next < nb) {
            size_t b = next++;
            int slot = 0;
            while (jobs[slot].pid)
                slot++;
            jobs[slot] = (CcJob){.mode = CC_OBJECT, .inputs = (const char *const *)&builds[b].u->c_path,
                                 .ninputs = 1, .output = builds[b].u->o_path, .opt_level = "-O1", .werror = true};
            Diag d;
            diag_init(&d, NULL);
            if (codegen_cc_start(&jobs[slot], &d) != ST_OK) {
                set_result(builds[b].c, R_FAIL, "%s", d.msg);
                jobs[slot].pid = 0;
                continue;
            }
            job_build[slot] = b;
            running++;
        }
        if (running == 0)
            break;
        /* whichever compiler ends first: reap it and judge its status here */
        int ws;
        pid_t pid = wait(&ws);
        int slot = 0;
        while (slot < o->jobs && jobs[slot].pid != pid)
            slot++;
        if (slot == o->jobs)
            continue;
        Build *b = &builds[job_build[slot]];
        jobs[slot].pid = 0;
        running--;
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            char text[800] = "", line[400], err[300];
            FILE *f = fopen(jobs[slot].log_path, "r");
            size_t len = 0;
            while (f && fgets(line, sizeof line, f) && len + strlen(line) + 1 < sizeof text) {
                strcpy(text + len, line);
                len += strlen(line);
            }
            if (f)
                fclose(f);
            first_line(text[0] ? text : "no output", err, sizeof err);
            set_result(b->c, R_FAIL, "generated C does not compile: %s", err);
        } else {
            b->u->built = true;
            objs[nobj++] = b->u->o_path;
        }
        unlink(jobs[slot].log_path);
    }

    /* link, dlopen, run each case whose units all built */
    if (nobj > 0) {
        char so_path[PATH_MAX + 64];
        snprintf(so_path, sizeof so_path, "%s/chunk%zu.so", o->work, chunk_no);
        CcJob link = {.mode = CC_SHARED, .inputs = objs, .ninputs = nobj, .output = so_path};
        Diag d;
        diag_init(&d, NULL);
        Status st = codegen_cc(&link, &d);
        void *so = st ? NULL : dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
        for (size_t i = 0; i < n; i++) {
            Case *c = &cs[i];
            if (c->result != R_NONE)
                continue;
            if (st)
                set_result(c, R_FAIL, "linking the chunk failed: %s", d.msg);
            else if (!so)
                set_result(c, R_FAIL, "dlopen: %s", dlerror());
            else
                run_case_checked(c, so, o);
        }
        if (so)
            dlclose(so);
        if (!o->keep)
            unlink(so_path);
    }
out:
    for (size_t i = 0; i < n; i++) {
        Case *c = &cs[i];
        for (int k = 0; !o->keep && k < c->nunits; k++) {
            unlink(c->units[k].c_path);
            unlink(c->units[k].o_path);
        }
        if (c->result == R_NONE)
            set_result(c, R_FAIL, "internal: no result");
        arena_free(c->arena);
        c->arena = NULL;
        c->units = NULL;
        c->nunits = 0;
    }
    free(builds);
    free(objs);
    free(jobs);
    free(job_build);
}

static CliOption conform_opts[] = {
    {"--jobs", "-j", "N", "C compiler processes at a time (default 2)", false, NULL},
    {"--chunk", NULL, "N", "cases per shared object (default 40, at most 100)", false, NULL},
    {"--filter", NULL, "TEXT", "only cases whose name contains TEXT", false, NULL},
    {"--timeout", NULL, "S", "seconds one data set may run (default 30)", false, NULL},
    {"--keep", NULL, "DIR", "keep the generated C, objects and shared objects in DIR", false, NULL},
    {0},
};

static CliCommand conform_cmd = {
    "conform", "DIR...",
    "Run every ONNX backend test case (a folder with model.onnx and test_data_set_*) under the folders.\n"
    "Prints PASS|FAIL|UNSUPPORTED <case> <reason> per case and a summary; exit status 1 if any failed.",
    1, 64, conform_opts,
};

static void free_cases(CaseList *cl)
{
    for (size_t i = 0; i < cl->n; i++) {
        free(cl->v[i].dir);
        free(cl->v[i].name);
    }
    free(cl->v);
}

int cmd_conform(int argc, char **argv)
{
    char *args[64];
    int nargs, rc = cli_parse(&conform_cmd, argc, argv, args, &nargs);
    if (rc >= 0)
        return rc;
    Options o = {.jobs = 2, .chunk = 40, .timeout = 30};
    int64_t v;
    CliOption *opt;
    if ((opt = cli_option(&conform_cmd, "--jobs"))->given) {
        if (!cli_int(&conform_cmd, opt, 1, 64, &v))
            return 2;
        o.jobs = (int)v;
    }
    if ((opt = cli_option(&conform_cmd, "--chunk"))->given) {
        if (!cli_int(&conform_cmd, opt, 1, 100, &v))
            return 2;
        o.chunk = (int)v;
    }
    if ((opt = cli_option(&conform_cmd, "--timeout"))->given) {
        if (!cli_int(&conform_cmd, opt, 1, 3600, &v))
            return 2;
        o.timeout = (int)v;
    }
    const char *filter = cli_option(&conform_cmd, "--filter")->value;
    const char *keep = cli_option(&conform_cmd, "--keep")->value;
    for (int i = 0; i < nargs; i++) /* every argument checked before any case is collected */
        if (!is_dir(args[i])) {
            fprintf(stderr, "onnxtune conform: %s is not a folder\n", args[i]);
            return 2;
        }
    CaseList cl = {0};
    for (int i = 0; i < nargs; i++) {
        char label[PATH_MAX];
        size_t len = strlen(args[i]);
        while (len > 1 && args[i][len - 1] == '/')
            len--;
        snprintf(label, sizeof label, "%.*s", (int)len, args[i]);
        const char *base = strrchr(label, '/');
        add_cases(&cl, args[i], base ? base + 1 : label, 0);
    }
    size_t w = 0;
    for (size_t i = 0; i < cl.n; i++) {
        if (filter && !strstr(cl.v[i].name, filter)) {
            free(cl.v[i].dir);
            free(cl.v[i].name);
            continue;
        }
        cl.v[w++] = cl.v[i];
    }
    cl.n = w;
    if (keep) {
        o.keep = true;
        if (mkdir(keep, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "onnxtune conform: cannot create %s: %s\n", keep, strerror(errno));
            free_cases(&cl);
            return 1;
        }
        snprintf(o.work, sizeof o.work, "%s", keep);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(o.work, sizeof o.work, "%s/onnxtune-conform-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(o.work)) {
            fprintf(stderr, "onnxtune conform: cannot create a temporary folder: %s\n", strerror(errno));
            free_cases(&cl);
            return 1;
        }
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t passed = 0, failed = 0, unsupported = 0;
    for (size_t at = 0, chunk_no = 0; at < cl.n; at += (size_t)o.chunk, chunk_no++) {
        size_t n = cl.n - at < (size_t)o.chunk ? cl.n - at : (size_t)o.chunk;
        run_chunk(cl.v + at, n, chunk_no, &o);
        for (size_t i = at; i < at + n; i++) {
            Case *c = &cl.v[i];
            const char *tag = c->result == R_PASS ? "PASS" : c->result == R_UNSUPPORTED ? "UNSUPPORTED" : "FAIL";
            passed += c->result == R_PASS;
            unsupported += c->result == R_UNSUPPORTED;
            failed += c->result != R_PASS && c->result != R_UNSUPPORTED;
            printf("%s %s%s%s\n", tag, c->name, c->reason[0] ? " " : "", c->reason);
        }
        fflush(stdout);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%zu passed, %zu failed, %zu unsupported\n", passed, failed, unsupported);
    fprintf(stderr, "onnxtune conform: %zu cases in %.1f s\n", cl.n, secs);
    if (!keep)
        rmdir(o.work);
    free_cases(&cl);
    return failed ? 1 : 0;
}
