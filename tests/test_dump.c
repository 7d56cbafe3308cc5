/* test_dump.c - `onnxtune dump` and `onnxtune ops` run as a user runs them (the binary in $ONNXTUNE):
 * a model built here with protobuf-c (odd names, an unknown op, a subgraph attribute), the committed
 * models/ (parameter counts worked out from their layer sizes), --json checked by a JSON syntax
 * checker written here, --dot checked for structure, and bad files and bad options for exit codes.
 * With --sweep (tests/cmake/dump.cmake) it instead dumps every ONNX backend test model in all three
 * formats: each run must succeed with well-formed output or fail with one clean line, never crash.
 * It does not check FLOPs values (the op rules' tests do) or render the DOT output. */
#include "test.h"
#include "codegen.h"
#include "ir.h"
#include "onnx.pb-c.h"

#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *tool;       /* path of the onnxtune binary */
static char tmpdir[64];

/* ======================================================================== running the tool */

typedef struct Run {
    int status;                /* exit status, or -1 if it did not exit normally (a crash) */
    char *out, *err;           /* NUL-terminated captured output */
    size_t out_len, err_len;
} Run;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    size_t k;
    while (p && (k = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 2) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q, cap *= 2;
        }
    }
    fclose(f);
    if (p)
        p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

static bool write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Run `onnxtune ARGS...` (NULL-terminated), capturing stdout and stderr. */
static Run run_tool(const char *const *args)
{
    Run r = {.status = -1};
    char outp[128], errp[128];
    snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
    snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
    const char *argv[32];
    int argc = 0;
    argv[argc++] = tool;
    for (; *args && argc < 31; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execv(tool, (char *const *)argv);
        _exit(127);
    }
    int ws;
    if (pid > 0 && waitpid(pid, &ws, 0) == pid && WIFEXITED(ws))
        r.status = WEXITSTATUS(ws);
    r.out = read_file(outp, &r.out_len);
    r.err = read_file(errp, &r.err_len);
    if (!r.out)
        r.out = calloc(1, 1);
    if (!r.err)
        r.err = calloc(1, 1);
    return r;
}

static void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static bool has(const char *text, const char *s)
{
    return text && strstr(text, s) != NULL;
}

/* Extended regex, ^ and $ at line ends. */
static bool matches(const char *text, const char *re)
{
    regex_t rx;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) != 0) {
        fprintf(stderr, "bad regex in test: %s\n", re);
        return false;
    }
    bool ok = regexec(&rx, text, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

#define CHECK_HAS(text, s) CHECK_MSG(has(text, s), "output lacks \"%s\":\n%s", s, (text) ? (text) : "(none)")
#define CHECK_RE(text, re) CHECK_MSG(matches(text, re), "output does not match /%s/:\n%s", re, (text) ? (text) : "(none)")

/* ======================================================================== a JSON syntax checker */

/* A strict RFC 8259 checker (no extensions): strings must be valid UTF-8 without raw control
 * characters. The keys of the top-level object are collected so tests can ask for them. */
typedef struct Json {
    const unsigned char *p, *end;
    int depth;
    const char *error;
    size_t error_at;
    const unsigned char *start;
    char keys[64][32];         /* top-level keys (truncated), in order */
    size_t nkeys;
} Json;

static bool json_fail(Json *j, const char *why)
{
    if (!j->error) {
        j->error = why;
        j->error_at = (size_t)(j->p - j->start);
    }
    return false;
}

static void json_ws(Json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool json_value(Json *j);

/* A string; its first 31 bytes go to key (if not NULL). */
static bool json_str(Json *j, char *key)
{
    size_t kn = 0;
    if (j->p >= j->end || *j->p != '"')
        return json_fail(j, "expected a string");
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        unsigned c = *j->p;
        if (c < 0x20)
            return json_fail(j, "raw control character in a string");
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end)
                return json_fail(j, "string ends in an escape");
            if (*j->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (j->p + i >= j->end || !strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i])
                        return json_fail(j, "bad \\u escape");
                j->p += 5;
            } else if (strchr("\"\\/bfnrt", *j->p) && *j->p) {
                j->p++;
            } else {
                return json_fail(j, "bad escape");
            }
            continue;
        }
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || j->p + len > j->end || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4))
            return json_fail(j, "invalid UTF-8 in a string");
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t i = 1; i < len; i++) {
            if ((j->p[i] & 0xC0) != 0x80)
                return json_fail(j, "invalid UTF-8 in a string");
            cp = cp << 6 | (j->p[i] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return json_fail(j, "overlong, surrogate or out-of-range UTF-8");
        for (size_t i = 0; i < len; i++)
            if (key && kn < 31)
                key[kn++] = (char)j->p[i];
        j->p += len;
    }
    if (j->p >= j->end)
        return json_fail(j, "unterminated string");
    j->p++;
    if (key)
        key[kn] = '\0';
    return true;
}

static bool json_number(Json *j)
{
    const unsigned char *s = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (j->p < j->end && *j->p >= '1' && *j->p <= '9')
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    else
        return json_fail(j, "bad number");
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return json_fail(j, "bad fraction");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return json_fail(j, "bad exponent");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    return j->p > s;
}

static bool json_lit(Json *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return json_fail(j, "unexpected character");
    j->p += n;
    return true;
}

static bool json_container(Json *j, bool object)
{
    char close = object ? '}' : ']';
    bool top = object && j->depth == 0;
    if (++j->depth > 200)
        return json_fail(j, "nested too deep");
    j->p++;
    json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return true;
    }
    for (;;) {
        json_ws(j);
        if (object) {
            char *key = top && j->nkeys < 64 ? j->keys[j->nkeys++] : NULL;
            if (!json_str(j, key))
                return false;
            json_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return json_fail(j, "expected ':'");
            j->p++;
            json_ws(j);
        }
        if (!json_value(j))
            return false;
        json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return true;
        }
        return json_fail(j, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool json_value(Json *j)
{
    if (j->p >= j->end)
        return json_fail(j, "unexpected end");
    switch (*j->p) {
    case '{': return json_container(j, true);
    case '[': return json_container(j, false);
    case '"': return json_str(j, NULL);
    case 't': return json_lit(j, "true");
    case 'f': return json_lit(j, "false");
    case 'n': return json_lit(j, "null");
    default: return json_number(j);
    }
}

/* Check that text[0..n) is exactly one JSON object; fills j->keys. */
static bool json_check(Json *j, const char *text, size_t n)
{
    memset(j, 0, sizeof *j);
    j->start = j->p = (const unsigned char *)text;
    j->end = j->p + n;
    json_ws(j);
    if (j->p >= j->end || *j->p != '{')
        return json_fail(j, "not an object");
    if (!json_value(j))
        return false;
    json_ws(j);
    return j->p == j->end || json_fail(j, "trailing bytes after the document");
}

static bool json_has_key(const Json *j, const char *key)
{
    for (size_t i = 0; i < j->nkeys; i++)
        if (strcmp(j->keys[i], key) == 0)
            return true;
    return false;
}

static void check_json_doc(const char *what, const Run *r)
{
    Json j;
    bool ok = json_check(&j, r->out, r->out_len);
    CHECK_MSG(ok, "%s: --json output is not valid JSON: %s at byte %zu", what, j.error ? j.error : "?",
              j.error_at);
    static const char *const keys[] = {"ir_version", "opsets", "inputs", "outputs", "initializers", "nodes",
                                       "op_histogram", "params", "producer", "flops", "unknown_ops"};
    for (size_t i = 0; ok && i < sizeof keys / sizeof keys[0]; i++)
        CHECK_MSG(json_has_key(&j, keys[i]), "%s: --json lacks the key \"%s\"", what, keys[i]);
}

/* The JSON checker itself must reject what it should. */
static void test_json_checker(void)
{
    static const char *const good[] = {"{}", "{\"a\":[1,-2.5e+3,true,false,null,\"\\u00e9\\n\"]}",
                                       "{\"\xc3\xa9\":{\"b\":[]}}"};
    static const char *const bad[] = {"", "[]", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":\"\x01\"}",
                                      "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\\x\"}", "{} x",
                                      "{\"a\":nan}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":1.}"};
    Json j;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(json_check(&j, good[i], strlen(good[i])), "checker rejects %s: %s", good[i], j.error);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!json_check(&j, bad[i], strlen(bad[i])), "checker accepts bad JSON #%zu", i);
}

/* ======================================================================== DOT structure */

/* Starts with "digraph", braces balance outside quoted strings, quotes close, every line
 * inside is a statement; returns the number of edge statements. */
static void check_dot(const char *what, const Run *r, size_t *edges)
{
    const char *s = r->out;
    CHECK_MSG(strncmp(s, "digraph", 7) == 0, "%s: --dot does not start with digraph", what);
    long depth = 0, min_depth = 0;
    bool in_str = false;
    *edges = 0;
    for (const char *p = s; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_str = false;
            else if (*p == '\n')
                break; /* our labels never hold raw newlines */
            continue;
        }
        if (*p == '"')
            in_str = true;
        else if (*p == '{')
            depth++;
        else if (*p == '}' && --depth < min_depth)
            min_depth = depth;
        else if (*p == '-' && p[1] == '>')
            (*edges)++;
    }
    CHECK_MSG(!in_str, "%s: --dot has an unterminated string", what);
    CHECK_MSG(depth == 0 && min_depth == 0, "%s: --dot braces do not balance (depth %ld)", what, depth);
    size_t n = strlen(s);
    CHECK_MSG(n >= 2 && s[n - 2] == '}' && s[n - 1] == '\n', "%s: --dot does not end with '}'", what);
}

/* ======================================================================== a model built here */

/* Everything the builder allocates lives in one arena. */
static Arena *pa;

static char *S(const char *s)
{
    return arena_strdup(pa, s);
}

static Onnx__TypeProto *tensor_type(int elem, int rank, const int64_t *dims, const char *const *syms)
{
    Onnx__TypeProto *tp = arena_alloc(pa, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = arena_alloc(pa, sizeof *tt);
    Onnx__TensorShapeProto *sh = arena_alloc(pa, sizeof *sh);
    *tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    *sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    tt->has_elem_type = 1, tt->elem_type = elem;
    sh->n_dim = (size_t)rank;
    sh->dim = arena_calloc(pa, (size_t)rank + 1, sizeof *sh->dim);
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = arena_alloc(pa, sizeof *d);
        *d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (syms && syms[i]) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = S(syms[i]);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        sh->dim[i] = d;
    }
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    return tp;
}

static Onnx__ValueInfoProto *value_info(const char *name, int elem, int rank, const int64_t *dims,
                                        const char *const *syms)
{
    Onnx__ValueInfoProto *v = arena_alloc(pa, sizeof *v);
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = S(name);
    v->type = tensor_type(elem, rank, dims, syms);
    return v;
}

/* A float tensor filled with 0.1*i, or an int64 tensor from `ints`. */
static Onnx__TensorProto *tensor(const char *name, int elem, int rank, const int64_t *dims, const int64_t *ints)
{
    Onnx__TensorProto *t = arena_alloc(pa, sizeof *t);
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = name ? S(name) : NULL;
    t->has_data_type = 1, t->data_type = elem;
    t->n_dims = (size_t)rank;
    t->dims = arena_calloc(pa, (size_t)rank + 1, sizeof *t->dims);
    size_t numel = 1;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i], numel *= (size_t)dims[i];
    if (elem == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        t->n_float_data = numel;
        t->float_data = arena_calloc(pa, numel, sizeof(float));
        for (size_t i = 0; i < numel; i++)
            t->float_data[i] = 0.1f * (float)i;
    } else {
        t->n_int64_data = numel;
        t->int64_data = arena_calloc(pa, numel, sizeof(int64_t));
        memcpy(t->int64_data, ints, numel * sizeof(int64_t));
    }
    return t;
}

static Onnx__NodeProto *node(const char *op, const char *domain, const char *name, const char *in0,
                             const char *in1, const char *in2, const char *out)
{
    Onnx__NodeProto *n = arena_alloc(pa, sizeof *n);
    *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    n->op_type = S(op);
    n->domain = domain ? S(domain) : NULL;
    n->name = S(name);
    n->input = arena_calloc(pa, 3, sizeof(char *));
    const char *ins[3] = {in0, in1, in2};
    for (int i = 0; i < 3 && ins[i]; i++)
        n->input[n->n_input++] = S(ins[i]);
    n->n_output = 1;
    n->output = arena_calloc(pa, 1, sizeof(char *));
    n->output[0] = S(out);
    return n;
}

static Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = arena_alloc(pa, sizeof *a);
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = S(name);
    a->has_type = 1, a->type = type;
    Onnx__AttributeProto **na = arena_calloc(pa, n->n_attribute + 1, sizeof *na);
    if (n->n_attribute)
        memcpy(na, n->attribute, n->n_attribute * sizeof *na);
    na[n->n_attribute++] = a;
    n->attribute = na;
    return a;
}

static Onnx__GraphProto *graph(const char *name, size_t nnodes, Onnx__NodeProto **nodes, size_t ninputs,
                               Onnx__ValueInfoProto **inputs, size_t noutputs, Onnx__ValueInfoProto **outputs,
                               size_t ninits, Onnx__TensorProto **inits)
{
    Onnx__GraphProto *g = arena_alloc(pa, sizeof *g);
    *g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    g->name = S(name);
    g->n_node = nnodes, g->node = nodes;
    g->n_input = ninputs, g->input = inputs;
    g->n_output = noutputs, g->output = outputs;
    g->n_initializer = ninits, g->initializer = inits;
    return g;
}

/* Odd bytes that names can hold: quote, backslash, newline, tab, ^A, DEL, a stray 0xFF, and é. */
#define ODD_NAME "odd \"q\" \\b\\ \n\t\x01\x7f \xff caf\xc3\xa9"
#define ODD_OUT "out\"put\\\x02"

/* x[B,4] -> Gemm(W[3,4], b[3], transB=1) -> h[B,3] -> com.example.Frobnicate (unknown; attributes of
 * every common kind, a subgraph) -> y -> Reshape(shape=[-1,3]) -> Relu -> Relu -> ODD_OUT.
 * Parameters: W and b, 3*4 + 3 = 15 floats; the int64 shape is an initializer but no parameter. */
static uint8_t *build_model(size_t *len)
{
    const int F = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, I64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    int64_t dx[2] = {0, 4}, dout[2] = {0, 3}, dw[2] = {3, 4}, db[1] = {3}, ds[1] = {2}, dt[2] = {2, 2}, shape[2] = {-1, 3};
    const char *sx[2] = {"B", NULL};

    Onnx__NodeProto **body_nodes = arena_calloc(pa, 2, sizeof *body_nodes);
    body_nodes[0] = node("Neg", NULL, "body_neg1", "bx", NULL, NULL, "bt");
    body_nodes[1] = node("Neg", NULL, "body_neg2", "bt", NULL, NULL, "by");
    Onnx__ValueInfoProto **bin = arena_calloc(pa, 1, sizeof *bin), **bout = arena_calloc(pa, 1, sizeof *bout);
    bin[0] = value_info("bx", F, 1, db, NULL);
    bout[0] = value_info("by", F, 1, db, NULL);

    Onnx__NodeProto **nodes = arena_calloc(pa, 5, sizeof *nodes);
    nodes[0] = node("Gemm", NULL, "fc", "x", "W", "b", "h");
    Onnx__AttributeProto *a = attr(nodes[0], "transB", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1, a->i = 1;
    nodes[1] = node("Frobnicate", "com.example", ODD_NAME, "h", NULL, NULL, "y");
    a = attr(nodes[1], "ks", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = 3, a->ints = arena_calloc(pa, 3, sizeof(int64_t));
    a->ints[0] = 1, a->ints[1] = 2, a->ints[2] = 3;
    a = attr(nodes[1], "alpha", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1, a->f = 0.5f;
    a = attr(nodes[1], "note", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1, a->s.data = (uint8_t *)S(ODD_NAME), a->s.len = strlen(ODD_NAME);
    attr(nodes[1], "t", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = tensor(NULL, F, 2, dt, NULL);
    attr(nodes[1], "body", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH)->g =
        graph("body_graph", 2, body_nodes, 1, bin, 1, bout, 0, NULL);
    nodes[2] = node("Reshape", NULL, "reshape", "y", "shape", NULL, "z");
    nodes[3] = node("Relu", NULL, "relu1", "z", NULL, NULL, "r");
    nodes[4] = node("Relu", NULL, "relu2", "r", NULL, NULL, ODD_OUT);

    Onnx__ValueInfoProto **in = arena_calloc(pa, 1, sizeof *in), **out = arena_calloc(pa, 1, sizeof *out);
    in[0] = value_info("x", F, 2, dx, sx);
    out[0] = value_info(ODD_OUT, F, 2, dout, sx);
    Onnx__TensorProto **inits = arena_calloc(pa, 3, sizeof *inits);
    inits[0] = tensor("W", F, 2, dw, NULL);
    inits[1] = tensor("b", F, 1, db, NULL);
    inits[2] = tensor("shape", I64, 1, ds, shape);

    Onnx__OperatorSetIdProto *ops[2];
    for (int i = 0; i < 2; i++) {
        ops[i] = arena_alloc(pa, sizeof *ops[i]);
        *ops[i] = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
        ops[i]->has_version = 1;
    }
    ops[0]->domain = S(""), ops[0]->version = 13;
    ops[1]->domain = S("com.example"), ops[1]->version = 1;

    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1, m.ir_version = 7;
    m.producer_name = S("test_dump"), m.producer_version = S("0.1");
    m.n_opset_import = 2, m.opset_import = ops;
    m.graph = graph("test graph", 5, nodes, 1, in, 1, out, 3, inits);
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = arena_alloc(pa, *len);
    onnx__model_proto__pack(&m, buf);
    return buf;
}

/* ======================================================================== the tests */

/* Every byte of text output is printable UTF-8 or a newline: odd names are escaped. */
static bool text_is_clean(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\n') || *p == 0x7F || *p == 0xFF)
            return false;
    return true;
}

static void test_built_model(const char *path)
{
    const size_t expect_params = 3 * 4 + 3;           /* W[3,4] + b[3] */
    const size_t expect_init_bytes = expect_params * 4 + 2 * 8; /* + shape int64[2] */
    char want[160];

    Run r = run_tool((const char *[]){"dump", path, NULL});
    CHECK_MSG(r.status == 0, "dump of the built model: exit %d, stderr: %s", r.status, r.err);
    CHECK_HAS(r.out, "producer: test_dump 0.1");
    CHECK_HAS(r.out, "ir_version: 7");
    CHECK_RE(r.out, "^opsets: ai\\.onnx 13, com\\.example 1$");
    CHECK_RE(r.out, "^  x: float32 \\[B,4\\]$");
    snprintf(want, sizeof want, "parameters: %zu ", expect_params);
    CHECK_HAS(r.out, want);
    snprintf(want, sizeof want, "initializers: 3, %zu bytes", expect_init_bytes);
    CHECK_HAS(r.out, want);
    /* histogram: Relu (2) first, then the ones in name order */
    CHECK_RE(r.out, "op histogram:\n  Relu: +2\n  com\\.example\\.Frobnicate: +1 +\\(unknown op\\)\n"
                    "  Gemm: +1( .*)?\n  Reshape: +1\n");
    CHECK_RE(r.out, "^unknown ops: [0-9]+ nodes? of [0-9]+ op types? .*com\\.example\\.Frobnicate");
    CHECK_RE(r.out, "^#0 Gemm  fc  (\\(unknown op\\)  )?params: 15  flops: ");
    CHECK_RE(r.out, "W: float32 \\[3,4\\] \\(param\\), b: float32 \\[3\\] \\(param\\)");
    CHECK_RE(r.out, "shape: int64 \\[2\\] \\(init\\)");
    CHECK_HAS(r.out, "odd \"q\" \\b\\ \\x0A\\x09\\x01\\x7F \\xFF caf\xc3\xa9");
    CHECK_HAS(r.out, "ks=[1,2,3] alpha=0.5 note=\"odd");
    CHECK_HAS(r.out, " t=<float32 [2,2]>");
    CHECK_HAS(r.out, " body=<graph body_graph: 2 nodes>");
    CHECK_MSG(text_is_clean(r.out), "text output holds raw control bytes or invalid UTF-8");
    CHECK_MSG(r.err_len == 0, "dump wrote to stderr: %s", r.err);
    run_free(&r);

    /* --batch fixes the symbolic leading dim; repeated options: the last wins; --opt=VALUE works */
    r = run_tool((const char *[]){"dump", "--batch", "3", "--batch=5", path, NULL});
    CHECK_MSG(r.status == 0, "dump --batch: exit %d, stderr: %s", r.status, r.err);
    CHECK_RE(r.out, "^  x: float32 \\[5,4\\]$");
    CHECK_RE(r.out, "^     out: +h: float32 \\[5,3\\]$");
    run_free(&r);

    r = run_tool((const char *[]){"dump", "--json", path, NULL});
    CHECK_MSG(r.status == 0, "dump --json: exit %d, stderr: %s", r.status, r.err);
    check_json_doc("built model", &r);
    snprintf(want, sizeof want, "\"params\": %zu,", expect_params);
    CHECK_HAS(r.out, want);
    CHECK_HAS(r.out, "\"op_histogram\": {\"Relu\": 2, \"com.example.Frobnicate\": 1, \"Gemm\": 1, \"Reshape\": 1}");
    CHECK_HAS(r.out, "\"unknown_ops\": [{\"op\": \"com.example.Frobnicate\", \"count\": 1}");
    CHECK_HAS(r.out, "{\"name\":\"x\",\"kind\":\"tensor\",\"dtype\":\"float32\",\"shape\":[\"B\",4]");
    CHECK_HAS(r.out, "\"name\":\"odd \\\"q\\\" \\\\b\\\\ \\n\\t\\u0001\x7f \\uFFFD caf\xc3\xa9\"");
    CHECK_HAS(r.out, "\"ks\":[1,2,3],\"alpha\":0.5,");
    CHECK_HAS(r.out, "\"body\":{\"graph\":{\"name\":\"body_graph\",\"nodes\":2}}");
    CHECK_HAS(r.out, "{\"name\":\"y\",\"kind\":\"tensor\",\"dtype\":null,\"shape\":null");
    run_free(&r);

    r = run_tool((const char *[]){"dump", "--dot", path, NULL});
    CHECK_MSG(r.status == 0, "dump --dot: exit %d, stderr: %s", r.status, r.err);
    size_t edges;
    check_dot("built model", &r, &edges);
    /* x->Gemm, Gemm->Frobnicate, ->Reshape, ->Relu, ->Relu, ->output, and the legend's one chain line
     * (4 arrows): initializers are folded into labels, not drawn as nodes with edges */
    CHECK_EQ_INT(edges, 6 + 4);
    CHECK_RE(r.out, "^  n0 \\[label=\"Gemm\\\\nfc\\\\n-> float32 \\[B,3\\]\\\\nW \\[3,4\\]\\\\nb \\[3\\]\\\\nparams 15\", "
                    "fillcolor=lightgrey\\];$");
    CHECK_RE(r.out, "^  n1 \\[.*fillcolor=white, color=red");
    CHECK_RE(r.out, "^  i0 \\[shape=ellipse, label=\"x\\\\nfloat32 \\[B,4\\]\"\\];$");
    CHECK_HAS(r.out, "legend_trainable [label=\"reads trainable weights\", fillcolor=lightsalmon]");
    CHECK_RE(r.out, "^  i0 -> n0 \\[label=\"\\[B,4\\]\"\\];$");
    run_free(&r);
}

/* With --batch the FLOPs are known: the JSON total is the sum of the nodes' values, and the text
 * summary shows the same total. Without it (symbolic N) the total is null, not 0. */
static void test_flops_totals(const char *path)
{
    Run r = run_tool((const char *[]){"dump", "--json", "--batch", "4", path, NULL});
    CHECK_MSG(r.status == 0, "dump --json --batch 4 %s: exit %d", path, r.status);
    const char *top = strstr(r.out, "\n  \"flops\": ");
    double total = top ? strtod(top + 12, NULL) : -1, sum = 0;
    size_t nodes = 0;
    for (const char *p = r.out; (p = strstr(p, ",\"flops\":")); p++, nodes++)
        sum += strtod(p + 9, NULL); /* null reads as 0 */
    CHECK_MSG(total > 0, "%s: no FLOPs total with --batch 4", path);
    CHECK_MSG(nodes > 0 && fabs(sum - total) <= 1e-9 * total, "%s: node FLOPs sum to %.17g, total %.17g", path,
              sum, total);
    run_free(&r);
    r = run_tool((const char *[]){"dump", "--batch", "4", path, NULL});
    char want[64];
    snprintf(want, sizeof want, "FLOPs: %.0f ", total);
    CHECK_HAS(r.out, want);
    run_free(&r);
    r = run_tool((const char *[]){"dump", "--json", path, NULL});
    CHECK_HAS(r.out, "\n  \"flops\": null,");
    run_free(&r);
}

/* The committed example models, checked against their layer sizes (models/make_small.py). */
static void test_example_models(void)
{
    struct {
        const char *path;
        size_t params;        /* float initializer elements, from the layer sizes */
        const char *hist[4];  /* regexes for histogram lines */
        const char *batch_re; /* with --batch 4 */
    } models[] = {
        {"models/mlp/model.onnx",
         (16 * 32 + 32) + (32 * 10 + 10), /* Linear(16,32), Linear(32,10) */
         {"^  Gemm: +2( |$)", "^  Relu: +1( |$)"},
         "^  logits: float32 \\[4,10\\]$"},
        {"models/cnn/model.onnx",
         (8 * 1 * 9 + 8) + 4 * 8 + (16 * 8 * 9 + 16) + 4 * 16 + (16 * 10 + 10), /* conv, BN(4 vectors), ... */
         {"^  BatchNormalization: +2( |$)", "^  Conv: +2( |$)", "^  Gemm: +1( |$)", "^  MaxPool: +1( |$)"},
         "^  logits: float32 \\[4,10\\]$"},
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const char *path = models[i].path;
        if (access(path, R_OK) != 0) {
            CHECK_MSG(false, "%s is missing (models/make_small.py makes it)", path);
            continue;
        }
        Run r = run_tool((const char *[]){"dump", "--batch", "4", path, NULL});
        CHECK_MSG(r.status == 0, "dump %s: exit %d, stderr: %s", path, r.status, r.err);
        char want[96];
        snprintf(want, sizeof want, "parameters: %zu ", models[i].params);
        CHECK_HAS(r.out, want);
        for (int k = 0; k < 4 && models[i].hist[k]; k++)
            CHECK_RE(r.out, models[i].hist[k]);
        CHECK_RE(r.out, models[i].batch_re);
        run_free(&r);

        r = run_tool((const char *[]){"dump", "--json", path, NULL});
        CHECK_MSG(r.status == 0, "dump --json %s: exit %d", path, r.status);
        check_json_doc(path, &r);
        snprintf(want, sizeof want, "\"params\": %zu,", models[i].params);
        CHECK_HAS(r.out, want);
        run_free(&r);

        r = run_tool((const char *[]){"dump", "--dot", path, NULL});
        CHECK_MSG(r.status == 0, "dump --dot %s: exit %d", path, r.status);
        size_t edges;
        check_dot(path, &r, &edges);
        run_free(&r);
        test_flops_totals(path);
    }
}

/* Exit 1 and exactly one line "onnxtune dump: FILE: ..." on stderr. */
static void check_fails_on(const char *what, const char *path)
{
    Run r = run_tool((const char *[]){"dump", path, NULL});
    char prefix[256];
    snprintf(prefix, sizeof prefix, "onnxtune dump: %s: ", path);
    CHECK_MSG(r.status == 1, "%s: exit %d, not 1", what, r.status);
    CHECK_MSG(count_lines(r.err) == 1, "%s: %zu lines on stderr: %s", what, count_lines(r.err), r.err);
    CHECK_MSG(strncmp(r.err, prefix, strlen(prefix)) == 0, "%s: stderr does not start with \"%s\": %s", what,
              prefix, r.err);
    run_free(&r);
}

static void test_bad_inputs(const uint8_t *model, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/missing.onnx", tmpdir);
    check_fails_on("nonexistent file", path);

    snprintf(path, sizeof path, "%s/text.onnx", tmpdir);
    const char *text = "this is a text file, not an ONNX model\n";
    CHECK(write_file(path, text, strlen(text)));
    check_fails_on("text file", path);

    snprintf(path, sizeof path, "%s/empty.onnx", tmpdir);
    CHECK(write_file(path, "", 0));
    check_fails_on("empty file", path);

    /* truncated at several points (inside the graph, inside tensors) */
    size_t cuts[] = {len / 4, len / 2, len - 3};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(path, sizeof path, "%s/truncated%zu.onnx", tmpdir, i);
        CHECK(write_file(path, model, cuts[i]));
        check_fails_on("truncated model", path);
    }
    if (access("models/mlp/model.onnx", R_OK) == 0) {
        size_t n;
        char *bytes = read_file("models/mlp/model.onnx", &n);
        snprintf(path, sizeof path, "%s/mlp_half.onnx", tmpdir);
        CHECK(bytes && write_file(path, bytes, n / 2));
        check_fails_on("truncated mlp", path);
        free(bytes);
    }
}

/* Exit 2 and one line on stderr. */
static void check_usage_error(const char *what, const char *const *args)
{
    Run r = run_tool(args);
    CHECK_MSG(r.status == 2, "%s: exit %d, not 2", what, r.status);
    CHECK_MSG(count_lines(r.err) == 1, "%s: %zu lines on stderr: %s", what, count_lines(r.err), r.err);
    run_free(&r);
}

static void test_options(const char *model)
{
    check_usage_error("unknown option", (const char *[]){"dump", "--frobnicate", model, NULL});
    check_usage_error("unknown option =", (const char *[]){"dump", "--frobnicate=1", model, NULL});
    check_usage_error("missing MODEL", (const char *[]){"dump", NULL});
    check_usage_error("two models", (const char *[]){"dump", model, model, NULL});
    check_usage_error("--batch without value", (const char *[]){"dump", model, "--batch", NULL});
    check_usage_error("--batch 0", (const char *[]){"dump", "--batch", "0", model, NULL});
    check_usage_error("--batch abc", (const char *[]){"dump", "--batch=abc", model, NULL});
    check_usage_error("flag with value", (const char *[]){"dump", "--json=yes", model, NULL});
    check_usage_error("--json --dot", (const char *[]){"dump", "--json", "--dot", model, NULL});
    check_usage_error("ops unknown option", (const char *[]){"ops", "--nope", NULL});
    check_usage_error("ops argument", (const char *[]){"ops", "extra", NULL});

    static const char *const cmds[] = {"dump", "ops"};
    for (size_t i = 0; i < 2; i++) {
        Run r = run_tool((const char *[]){cmds[i], "--help", NULL});
        CHECK_MSG(r.status == 0, "%s --help: exit %d", cmds[i], r.status);
        CHECK_RE(r.out, "^usage: onnxtune ");
        CHECK_HAS(r.out, "--help");
        if (i == 0) {
            CHECK_HAS(r.out, "--json");
            CHECK_HAS(r.out, "--dot");
            CHECK_HAS(r.out, "--batch N");
        } else {
            CHECK_HAS(r.out, "--markdown");
        }
        run_free(&r);
    }

    /* --output writes the file, -- ends options, --summary drops the node listing */
    char out[128];
    snprintf(out, sizeof out, "%s/out.json", tmpdir);
    Run r = run_tool((const char *[]){"dump", "--summary", "--json", "-o", out, "--", model, NULL});
    CHECK_MSG(r.status == 0 && r.out_len == 0, "dump -o: exit %d, %zu bytes on stdout", r.status, r.out_len);
    size_t n;
    char *doc = read_file(out, &n);
    Run fake = {.out = doc, .out_len = n};
    CHECK(doc != NULL);
    if (doc) {
        check_json_doc("--output file", &fake);
        CHECK_HAS(doc, "\"nodes\": []");
    }
    free(doc);
    run_free(&r);
}

/* `onnxtune ops` lists every row of the op table; --markdown is one table row per op (docs/ops.md;
 * its conformance column: tests/cmake/ops_doc.sh). */
static void test_ops(void)
{
    size_t nrules = 0;
    while (op_rule_at(nrules))
        nrules++;
    Run r = run_tool((const char *[]){"ops", "--markdown", NULL});
    CHECK_MSG(r.status == 0, "ops --markdown: exit %d", r.status);
    const char *header = "\n| op | domain | family | opset | forward | backward |\n";
    CHECK_HAS(r.out, header);
    const char *table = r.out ? strstr(r.out, header) : NULL;
    const char *end = table ? strstr(table + 1, "\n\n") : NULL;
    size_t rows = 0;
    for (const char *p = table; p && end && (p = strstr(p, "\n| ")) && p < end; p++)
        rows++;
    CHECK_EQ_INT(rows, nrules + 1); /* + the header row */
    for (size_t i = 0; i < nrules; i++) {
        const OpRule *rule = op_rule_at(i);
        const char *fwd = codegen_has_emitter_in(rule->domain, rule->name) ? "yes" : rule->fold ? "fold" : "-";
        char want[160];
        snprintf(want, sizeof want, "\n| %s | %s | %s | %d | %s | %s |\n", rule->name,
                 rule->domain[0] ? rule->domain : "ai.onnx", rule->family, rule->canon_opset, fwd,
                 rule->grad ? "yes" : "-");
        CHECK_HAS(r.out, want);
    }
    run_free(&r);
    check_usage_error("ops --cases without --conform-list",
                      (const char *[]){"ops", "--markdown", "--cases", "tests", NULL});
    check_usage_error("ops --conform-list without --markdown",
                      (const char *[]){"ops", "--conform-list", "x", "--cases", "tests", NULL});

    r = run_tool((const char *[]){"ops", NULL});
    CHECK_MSG(r.status == 0, "ops: exit %d", r.status);
    char want[64];
    snprintf(want, sizeof want, "\n%zu ops\n", nrules);
    CHECK_HAS(r.out, want);
    if (op_lookup("", "Relu"))
        CHECK_RE(r.out, "^Relu +ai\\.onnx +elementwise ");
    run_free(&r);
}


/* ======================================================================== --sweep */

static void unlink_tmp(void)
{
    static const char *const files[] = {"built.onnx", "missing.onnx", "text.onnx", "empty.onnx", "truncated0.onnx",
                                        "truncated1.onnx", "truncated2.onnx", "mlp_half.onnx", "out.json",
                                        "stdout", "stderr"};
    char path[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

typedef struct SweepCounts {
    size_t models, ok, clean_errors, bad;
} SweepCounts;

/* Dump one model in the three formats; count each run. */
static void sweep_model(const char *path, SweepCounts *c)
{
    static const char *const modes[] = {NULL, "--json", "--dot"};
    c->models++;
    for (size_t k = 0; k < 3; k++) {
        const char *args[4] = {"dump", modes[k] ? modes[k] : path, modes[k] ? path : NULL, NULL};
        Run r = run_tool(args);
        const char *mode = modes[k] ? modes[k] : "text";
        int before = test_failures;
        if (r.status == 0) {
            if (k == 0) {
                CHECK_MSG(text_is_clean(r.out), "%s (text): raw control bytes in the output", path);
            } else if (k == 1) {
                check_json_doc(path, &r);
            } else {
                size_t edges;
                check_dot(path, &r, &edges);
            }
            CHECK_MSG(r.err_len == 0, "%s (%s): exit 0 but stderr: %s", path, mode, r.err);
        } else if (r.status == 1) {
            char prefix[1100];
            snprintf(prefix, sizeof prefix, "onnxtune dump: %s: ", path);
            CHECK_MSG(count_lines(r.err) == 1 && strncmp(r.err, prefix, strlen(prefix)) == 0,
                      "%s (%s): exit 1 without one clean line: %s", path, mode, r.err);
            if (k == 0)
                printf("error: %s", r.err); /* once per model: the same error repeats in each mode */
        } else {
            CHECK_MSG(false, "%s (%s): exit status %d (crash or timeout?) stderr: %s", path, mode, r.status, r.err);
        }
        if (test_failures != before)
            c->bad++;
        else if (r.status == 0)
            c->ok++;
        else
            c->clean_errors++;
        run_free(&r);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The entries of a directory, sorted (so the sweep's output is stable). */
static size_t list_dir(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

static int sweep(const char *root)
{
    char **suites;
    size_t nsuites = list_dir(root, &suites);
    SweepCounts c = {0};
    for (size_t i = 0; i < nsuites; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", root, suites[i]);
        char **cases;
        size_t ncases = list_dir(dir, &cases);
        for (size_t j = 0; j < ncases; j++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s/model.onnx", dir, cases[j]);
            if (access(path, R_OK) == 0)
                sweep_model(path, &c);
            free(cases[j]);
        }
        free(cases);
        free(suites[i]);
    }
    free(suites);
    if (c.models == 0) {
        printf("test_dump --sweep: no models under %s (set ONNX_TESTS_DIR); skipped\n", root);
        return 77;
    }
    printf("test_dump --sweep: %zu models x 3 formats: %zu runs ok, %zu clean errors (exit 1, one line), "
           "%zu bad\n", c.models, c.ok, c.clean_errors, c.bad);
    return -1;
}


/* The training options show what would train: models/cnn with features.4.* and a new 5-class head
 * trains features.4's conv (8*16*3*3 + 16 = 1168) and head.weight/bias (16*5 + 5 = 85): 1253; and where
 * the frozen prefix ends. */
static void test_freeze_flags(void)
{
    const char *text[] = {"dump", "models/cnn/model.onnx", "--batch", "2", "--train", "features.4.*",
                          "--head", "linear:5", NULL};
    Run r = run_tool(text);
    CHECK_EQ_INT(r.status, 0);
    CHECK_HAS(r.out, "1253 trainable");
    CHECK_HAS(r.out, "head.weight");
    /* where the frozen prefix ends (what a training program computes once per sample): before features.4 */
    CHECK_HAS(r.out, "frozen prefix: 4 nodes, ends at '/features/features.3/MaxPool_output_0' float32 [2,8,4,4]: "
                     "features of 512 bytes a sample");
    run_free(&r);
    const char *bn[] = {"dump", "models/cnn/model.onnx", "--batch", "2", "--train", "features.5.*", "--bn-train",
                        "--head", "linear:5", "--summary", NULL};
    r = run_tool(bn);
    CHECK_EQ_INT(r.status, 0);
    CHECK_HAS(r.out, "no feature cache: BatchNormalization '/features/features.5/BatchNormalization' in the frozen "
                     "part normalises with batch statistics (--bn-train)");
    run_free(&r);
    const char *dot[] = {"dump", "models/cnn/model.onnx", "--dot", "--train", "features.4.*", NULL};
    r = run_tool(dot);
    CHECK_EQ_INT(r.status, 0);
    /* the conv that trains and its legend entry are the salmon-filled nodes */
    size_t salmon = 0;
    for (const char *p = r.out; p && (p = strstr(p, "lightsalmon")); p++)
        salmon++;
    CHECK_MSG(salmon == 2, "%zu lightsalmon nodes, want 2 (features.4's conv and the legend)", salmon);
    run_free(&r);
    const char *bad[] = {"dump", "models/cnn/model.onnx", "--train", "nothing.*", NULL};
    r = run_tool(bad);
    CHECK_EQ_INT(r.status, 2);
    CHECK_HAS(r.err, "matches no initializer");
    run_free(&r);
}

int main(int argc, char **argv)
{
    tool = getenv("ONNXTUNE");
    if (!tool || access(tool, X_OK) != 0) {
        fprintf(stderr, "test_dump: set ONNXTUNE to the onnxtune binary (CTest does)\n");
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_dump_XXXXXX");
    if (!mkdtemp(tmpdir) || !(pa = arena_new())) {
        fprintf(stderr, "test_dump: cannot make a temporary directory\n");
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "--sweep") == 0) {
        const char *root = argc > 2 ? argv[2] : getenv("ONNX_TESTS_DIR");
        int rc = sweep(root ? root : "../shared/onnx-tests");
        unlink_tmp();
        return rc >= 0 ? rc : test_summary("test_dump --sweep");
    }
    test_json_checker();
    size_t len;
    uint8_t *model = build_model(&len);
    char path[128];
    snprintf(path, sizeof path, "%s/built.onnx", tmpdir);
    CHECK(write_file(path, model, len));
    test_built_model(path);
    test_example_models();
    test_bad_inputs(model, len);
    test_options(path);
    test_ops();
    test_freeze_flags();

    unlink_tmp();
    arena_free(pa);
    return test_summary("test_dump");
}
