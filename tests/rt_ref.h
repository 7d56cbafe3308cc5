/* rt_ref.h - reads the ONNX reference cases that tests/ref/make_rt_ref.py exported to tests/ref/rt/ (a
 * manifest plus .npy files) for the runtime kernel tests, and compares tensors element by element.
 * Header-only (each test binary is one .c file); it knows nothing about the kernels themselves.
 */
#ifndef ONNXTUNE_RT_REF_H
#define ONNXTUNE_RT_REF_H
#include "data.h"
#include "test.h"

#include <stdint.h>

#define REF_DIR "tests/ref/rt"
#define REF_MAX_IO 8

typedef struct {
    char name[128], op[64];
    int n_in, n_out;
    bool has_in[REF_MAX_IO];        /* optional inputs may be absent */
    NpyArray in[REF_MAX_IO], out[REF_MAX_IO];
    char attrs[1024];               /* " key=value key=value " */
} RefCase;

/* Element i of any dtype as double (bfloat16 arrives as uint16 bits; the caller knows). */
static inline double ref_get(const NpyArray *a, size_t i)
{
    const void *p = a->data;
    switch (a->dtype) {
    case RT_FLOAT: return ((const float *)p)[i];
    case RT_DOUBLE: return ((const double *)p)[i];
    case RT_FLOAT16: return rt_half_to_float(((const uint16_t *)p)[i]);
    case RT_INT8: return ((const int8_t *)p)[i];
    case RT_INT16: return ((const int16_t *)p)[i];
    case RT_INT32: return ((const int32_t *)p)[i];
    case RT_INT64: return (double)((const int64_t *)p)[i];
    case RT_UINT8: case RT_BOOL: return ((const uint8_t *)p)[i];
    case RT_UINT16: return ((const uint16_t *)p)[i];
    case RT_UINT32: return ((const uint32_t *)p)[i];
    case RT_UINT64: return (double)((const uint64_t *)p)[i];
    default: return NAN;
    }
}

static inline int64_t ref_get_i64(const NpyArray *a, size_t i)
{
    switch (a->dtype) {
    case RT_INT64: return ((const int64_t *)a->data)[i];
    case RT_UINT64: return (int64_t)((const uint64_t *)a->data)[i];
    default: return (int64_t)ref_get(a, i);
    }
}

static inline const char *ref_attr(const RefCase *c, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(c->attrs, pat);
    return p ? p + strlen(pat) : NULL;
}
static inline int64_t ref_int(const RefCase *c, const char *key, int64_t def)
{
    const char *v = ref_attr(c, key);
    return v ? strtoll(v, NULL, 10) : def;
}
static inline double ref_float(const RefCase *c, const char *key, double def)
{
    const char *v = ref_attr(c, key);
    return v ? strtod(v, NULL) : def;
}
/* String attribute into buf (up to the next space), or def. */
static inline const char *ref_str(const RefCase *c, const char *key, const char *def, char *buf, size_t n)
{
    const char *v = ref_attr(c, key);
    if (!v)
        return def;
    size_t k = strcspn(v, " ");
    if (k >= n)
        k = n - 1;
    memcpy(buf, v, k);
    buf[k] = 0;
    return buf;
}
/* Comma-separated ints; returns how many (at most max), or -1 if absent. */
static inline int ref_ints(const RefCase *c, const char *key, int64_t *out, int max)
{
    const char *v = ref_attr(c, key);
    if (!v)
        return -1;
    int n = 0;
    while (n < max && *v && *v != ' ') {
        char *end;
        out[n++] = strtoll(v, &end, 10);
        v = *end == ',' ? end + 1 : end;
    }
    return n;
}

static inline void ref_free(RefCase *c)
{
    for (int k = 0; k < REF_MAX_IO; k++) {
        npy_free(&c->in[k]);
        npy_free(&c->out[k]);
    }
}

static inline bool ref_load_file(const char *name, const char *stem, NpyArray *a)
{
    char path[512], err[512];
    snprintf(path, sizeof path, REF_DIR "/%s/%s.npy", name, stem);
    if (npy_read(path, a, err, sizeof err) != NPY_OK) {
        CHECK_MSG(0, "%s", err);
        return false;
    }
    return true;
}

/* Counts the comma-separated entries of "a,,c" into has[] (non-empty ones). */
static inline int ref_split_io(const char *list, bool *has)
{
    int n = 0;
    const char *p = list;
    for (;;) {
        size_t k = strcspn(p, ",");
        if (n < REF_MAX_IO)
            has[n] = k > 0;
        n++;
        if (!p[k])
            break;
        p += k + 1;
    }
    return n < REF_MAX_IO ? n : REF_MAX_IO;
}

/* Calls fn(case) for every manifest case of ONNX op `op`; returns how many ran. A missing manifest
 * is a test failure (run the tests from the repo root). */
static inline int ref_for_op(const char *op, void (*fn)(RefCase *c))
{
    FILE *f = fopen(REF_DIR "/manifest.txt", "r");
    CHECK_MSG(f != NULL, "cannot open " REF_DIR "/manifest.txt (run from the repo root)");
    if (!f)
        return 0;
    char line[2048];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = 0;
        RefCase c;
        memset(&c, 0, sizeof c);
        char ins[512] = "", outs[512] = "";
        int used = 0;
        if (sscanf(line, "%127s %63s inputs=%511s outputs=%511s%n", c.name, c.op, ins, outs, &used) < 4 ||
            strcmp(c.op, op) != 0)
            continue;
        snprintf(c.attrs, sizeof c.attrs, "%s ", line + used);
        bool has_out[REF_MAX_IO];
        c.n_in = ref_split_io(ins, c.has_in);
        c.n_out = ref_split_io(outs, has_out);
        bool ok = true;
        char stem[16];
        for (int k = 0; k < c.n_in && ok; k++) {
            snprintf(stem, sizeof stem, "in%d", k);
            if (c.has_in[k])
                ok = ref_load_file(c.name, stem, &c.in[k]);
        }
        for (int k = 0; k < c.n_out && ok; k++) {
            snprintf(stem, sizeof stem, "out%d", k);
            ok = ref_load_file(c.name, stem, &c.out[k]);
        }
        if (ok) {
            fn(&c);
            count++;
        }
        ref_free(&c);
    }
    fclose(f);
    return count;
}

/* Compares got (dtype want->dtype, want->numel elements) with want: |got - want| <= atol + rtol*|want|,
 * NaN matches NaN. Prints the worst error and first mismatch; returns true when all match. */
static inline bool ref_compare(const char *what, const void *got, const NpyArray *want, double atol, double rtol)
{
    NpyArray g = *want;
    g.data = (void *)got;
    size_t bad = 0, first = 0;
    double worst = 0;
    for (size_t i = 0; i < want->numel; i++) {
        double a = ref_get(&g, i), b = ref_get(want, i);
        if (isnan(a) && isnan(b))
            continue;
        bool same = (want->dtype == RT_INT64 || want->dtype == RT_UINT64)
                        ? ref_get_i64(&g, i) == ref_get_i64(want, i)
                        : (a == b || fabs(a - b) <= atol + rtol * fabs(b));
        if (!same) {
            if (!bad++)
                first = i;
            if (!(fabs(a - b) <= worst))
                worst = fabs(a - b);
        }
    }
    test_checks++;
    if (bad) {
        test_failures++;
        fprintf(stderr, "%s: %zu of %zu elements differ (max abs err %.9g); first at %zu: got %.9g want %.9g\n",
                what, bad, want->numel, worst, first, ref_get(&g, first), ref_get(want, first));
    }
    return bad == 0;
}

#endif
