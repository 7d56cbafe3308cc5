/* tool_npycmp.c - `tool_npycmp GOT.npy REF.npy [TOL]`: the relative L2 error ||got-ref|| / ||ref|| of two
 * NPY arrays, for tests/zoo.sh. It has its own small NPY reader (not data/npy.c, which wrote GOT)
 * and only compares: same dtype class and shape, then the error in double precision.
 * Prints "rel_l2=E max_abs=A n=N"; exit 0 if E < TOL (default 1e-4), 1 if not (or non-finite), 2 on error. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANK 16

typedef struct Npy {
    char kind;          /* 'f' float, 'i' signed, 'u' unsigned, 'b' bool */
    int size;           /* bytes per element */
    int rank;
    size_t dims[MAX_RANK];
    size_t n;
    unsigned char *data; /* n * size bytes, little-endian */
} Npy;

static int fail(const char *path, const char *why)
{
    fprintf(stderr, "tool_npycmp: %s: %s\n", path, why);
    return 0;
}

/* Find 'key': in the header dict and return a pointer to its value (after the colon). */
static const char *header_value(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p)
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

static int npy_load(const char *path, Npy *a)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(path, "cannot open");
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f);
        return fail(path, "not an NPY file");
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            fclose(f);
            return fail(path, "truncated header");
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        fclose(f);
        return fail(path, "unknown NPY version");
    }
    if (hlen > (1u << 20)) {
        fclose(f);
        return fail(path, "header too long");
    }
    char *h = malloc(hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen) {
        free(h);
        fclose(f);
        return fail(path, "truncated header");
    }
    h[hlen] = '\0';
    const char *descr = header_value(h, "descr"), *fo = header_value(h, "fortran_order"),
               *shape = header_value(h, "shape");
    int ok = descr && fo && shape && descr[0] == '\'';
    if (ok) {
        char order = descr[1];
        a->kind = descr[2];
        a->size = atoi(descr + 3);
        ok = (order == '<' || order == '|') && strchr("fiub", a->kind) && a->kind != '\0' &&
             (a->size == 1 || a->size == 2 || a->size == 4 || a->size == 8) && strncmp(fo, "False", 5) == 0 &&
             !(a->kind == 'f' && a->size < 4);
    }
    if (ok && *shape == '(') {
        const char *p = shape + 1;
        a->n = 1;
        while (ok) {
            while (*p == ' ' || *p == ',')
                p++;
            if (*p == ')')
                break;
            char *end;
            unsigned long long d = strtoull(p, &end, 10);
            if (end == p || a->rank == MAX_RANK || (d && a->n > SIZE_MAX / 8 / d)) {
                ok = 0;
                break;
            }
            a->dims[a->rank++] = (size_t)d;
            a->n *= (size_t)d;
            p = end;
        }
    } else {
        ok = 0;
    }
    free(h);
    if (!ok) {
        fclose(f);
        return fail(path, "unsupported NPY header (want little-endian f4/f8/i*/u*/b1, C order)");
    }
    a->data = malloc(a->n * (size_t)a->size + 1);
    if (!a->data || fread(a->data, (size_t)a->size, a->n, f) != a->n) {
        fclose(f);
        free(a->data);
        a->data = NULL;
        return fail(path, "truncated data");
    }
    fclose(f);
    return 1;
}

static double element(const Npy *a, size_t i)
{
    const unsigned char *p = a->data + i * (size_t)a->size;
    uint64_t u = 0;
    for (int k = a->size - 1; k >= 0; k--)
        u = u << 8 | p[k];
    if (a->kind == 'f' && a->size == 4) {
        uint32_t w = (uint32_t)u;
        float x;
        memcpy(&x, &w, 4);
        return x;
    }
    if (a->kind == 'f') {
        double x;
        memcpy(&x, &u, 8);
        return x;
    }
    if (a->kind == 'i' && a->size < 8 && (u >> (a->size * 8 - 1)) & 1)
        return (double)(int64_t)(u | ~(uint64_t)0 << (a->size * 8));
    return a->kind == 'i' ? (double)(int64_t)u : (double)u;
}

static const char *shape_str(const Npy *a, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < a->rank && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%zu", i ? "," : "", a->dims[i]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: tool_npycmp GOT.npy REF.npy [TOL]   (relative L2 error, default TOL 1e-4)\n");
        return 2;
    }
    double tol = argc == 4 ? strtod(argv[3], NULL) : 1e-4;
    Npy got, ref;
    if (!npy_load(argv[1], &got) || !npy_load(argv[2], &ref))
        return 2;
    char sg[256], sr[256];
    int same = got.rank == ref.rank && (got.kind == 'f') == (ref.kind == 'f');
    for (int i = 0; same && i < got.rank; i++)
        same = got.dims[i] == ref.dims[i];
    if (!same) {
        fprintf(stderr, "tool_npycmp: %s is %c%d %s but %s is %c%d %s\n", argv[1], got.kind, got.size,
                shape_str(&got, sg, sizeof sg), argv[2], ref.kind, ref.size, shape_str(&ref, sr, sizeof sr));
        return 2;
    }
    double diff2 = 0, ref2 = 0, max_abs = 0;
    size_t nonfinite = 0;
    for (size_t i = 0; i < got.n; i++) {
        double g = element(&got, i), r = element(&ref, i), e = g - r;
        if (!isfinite(g) || !isfinite(r)) {
            /* NaN/Inf must match exactly (NaN with NaN, Inf with the same Inf) */
            if (isnan(g) != isnan(r) || (!isnan(g) && g != r))
                nonfinite++;
            continue;
        }
        diff2 += e * e;
        ref2 += r * r;
        if (fabs(e) > max_abs)
            max_abs = fabs(e);
    }
    /* a zero reference: the absolute error stands in for the relative one */
    double rel = ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2);
    if (nonfinite)
        rel = INFINITY;
    printf("rel_l2=%.3e max_abs=%.3e n=%zu%s\n", rel, max_abs, got.n, nonfinite ? " NON-FINITE" : "");
    free(got.data);
    free(ref.data);
    return rel < tol ? 0 : 1;
}
