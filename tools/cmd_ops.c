/* cmd_ops.c - `onnxtune ops`: the op table (ir/ops_*.c via op_rule_at) as a plain listing, or with
 * --markdown as docs/ops.md: per op its canonical opset, forward emitter, gradient rule and, given the
 * passing conformance cases and their folder, how many of them run it (each case's model is imported
 * and canonicalised, so the count is exact). It reads the table; it does not check the rules. */
#include "tools.h"

#include "codegen.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static CliOption ops_opts[] = {
    {"--markdown", NULL, NULL, "print docs/ops.md (the Markdown table and its totals)", false, NULL},
    {"--family", NULL, "NAME", "only ops of this family (elementwise, conv, ...)", false, NULL},
    {"--conform-list", NULL, "FILE", "with --markdown: the passing conformance cases (tests/conform_passing.txt, "
                                     "or `onnxtune conform` output)", false, NULL},
    {"--cases", NULL, "ROOT", "the folder FILE's case names are under (../shared/onnx-tests): each case's "
                              "model.onnx is imported to count the ops it runs", false, NULL},
    {0},
};

static CliCommand ops_cmd = {
    "ops", NULL, "List the ops onnxtune knows: domain, family, canonical opset and which rules\n(canonicalisation, "
                 "shape, fold, FLOPs, gradient) and emitter each has.",
    0, 0, ops_opts,
};

/* The regeneration command docs/ops.md names (fixed text, so the file does not depend on local paths). */
#define OPS_DOC_COMMAND \
    "build/onnxtune ops --markdown --conform-list tests/conform_passing.txt --cases ../shared/onnx-tests > docs/ops.md"

static const char *yes(bool has)
{
    return has ? "yes" : "-";
}

static bool in_family(const OpRule *r, const char *family)
{
    return !family || (r->family && strcmp(r->family, family) == 0);
}

static bool is_default_domain(const OpRule *r)
{
    return !r->domain || !r->domain[0] || strcmp(r->domain, "ai.onnx") == 0;
}

static const char *domain_name(const OpRule *r)
{
    return is_default_domain(r) ? "ai.onnx" : r->domain;
}

static bool has_emitter(const OpRule *r)
{
    return codegen_has_emitter_in(r->domain, r->name);
}

/* ---- conformance cases per op ---- */

typedef struct Conform {
    char **pass;            /* sorted, distinct case names ("node/test_abs") */
    size_t npass, cap;
    bool tagged;            /* the list was `onnxtune conform` output: failed/unsupported are exact */
    size_t failed, unsupported;
    size_t cases_found;     /* plain list: cases under the suites it names (model.onnx folders) */
    size_t *runs;           /* per op-table row: passing cases whose model runs the op */
} Conform;

static void conform_free(Conform *c)
{
    for (size_t i = 0; i < c->npass; i++)
        free(c->pass[i]);
    free(c->pass);
    free(c->runs);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool add_pass(Conform *c, const char *name, size_t len)
{
    if (c->npass == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        char **v = realloc(c->pass, cap * sizeof *v);
        if (!v)
            return false;
        c->pass = v;
        c->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s)
        return false;
    memcpy(s, name, len);
    s[len] = 0;
    c->pass[c->npass++] = s;
    return true;
}

/* The next whitespace-separated word of *p: its start, and its length in *len (0 at the end). */
static const char *next_word(const char **p, size_t *len)
{
    const char *s = *p + strspn(*p, " \t\r\n");
    *len = strcspn(s, " \t\r\n");
    *p = s + *len;
    return s;
}

static bool word_is(const char *w, size_t len, const char *s)
{
    return len == strlen(s) && strncmp(w, s, len) == 0;
}

/* Read the list: one case name a line ("node/test_abs"), or conform's "PASS|FAIL|UNSUPPORTED <case>
 * <reason>" lines and its "N passed, ..." summary. Blank lines and '#' comments are skipped. */
static bool read_list(const char *path, Conform *c)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "onnxtune ops: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    bool ok = true;
    while (ok && getline(&line, &cap, f) >= 0) {
        lineno++;
        const char *p = line;
        size_t len;
        const char *w = next_word(&p, &len);
        if (len == 0 || w[0] == '#')
            continue;
        if (word_is(w, len, "PASS") || word_is(w, len, "FAIL") || word_is(w, len, "UNSUPPORTED")) {
            c->tagged = true;
            size_t nlen;
            const char *name = next_word(&p, &nlen);
            if (nlen == 0) {
                fprintf(stderr, "onnxtune ops: %s:%zu: '%.*s' without a case name\n", path, lineno, (int)len, w);
                ok = false;
            } else if (w[0] == 'P') {
                ok = add_pass(c, name, nlen);
            } else {
                c->failed += w[0] == 'F';
                c->unsupported += w[0] == 'U';
            }
            continue;
        }
        size_t n2;
        const char *w2 = next_word(&p, &n2);
        if (w[0] >= '0' && w[0] <= '9' && word_is(w2, n2, "passed,"))
            continue; /* conform's summary line */
        if (!memchr(w, '/', len) || n2 != 0) {
            fprintf(stderr, "onnxtune ops: %s:%zu: expected a case name such as node/test_abs, got '%.*s'\n",
                    path, lineno, (int)strcspn(line, "\r\n"), line);
            ok = false;
            continue;
        }
        ok = add_pass(c, w, len);
    }
    free(line);
    fclose(f);
    if (!ok)
        return false;
    qsort(c->pass, c->npass, sizeof *c->pass, cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < c->npass; i++) {
        if (w > 0 && strcmp(c->pass[w - 1], c->pass[i]) == 0)
            free(c->pass[i]);
        else
            c->pass[w++] = c->pass[i];
    }
    c->npass = w;
    return true;
}

static size_t rule_index(const OpRule *r)
{
    for (size_t i = 0; op_rule_at(i); i++)
        if (op_rule_at(i) == r)
            return i;
    return SIZE_MAX;
}

/* Mark the op-table rows of g's nodes and of its subgraphs' nodes. */
static void mark_ops(const Graph *g, bool *seen)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead)
            continue;
        size_t k = n->rule ? rule_index(n->rule) : SIZE_MAX;
        if (k != SIZE_MAX)
            seen[k] = true;
        for (int a = 0; a < n->nattrs; a++) {
            const Attr *at = &n->attrs[a];
            if (at->type == AT_GRAPH && at->g)
                mark_ops(at->g, seen);
            for (size_t j = 0; at->type == AT_GRAPHS && j < at->n; j++)
                mark_ops(at->graphs[j], seen);
        }
    }
}

/* Count, per row, the passing cases whose model runs the op: as imported (the op the case tests) or
 * after canonicalisation (the ops an older form was rewritten into). */
static bool count_runs(Conform *c, const char *root, size_t nrules)
{
    c->runs = calloc(nrules ? nrules : 1, sizeof *c->runs);
    bool *seen = calloc(nrules ? nrules : 1, sizeof *seen);
    bool ok = c->runs && seen;
    if (!ok)
        fprintf(stderr, "onnxtune ops: out of memory\n");
    for (size_t i = 0; ok && i < c->npass; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s/model.onnx", root, c->pass[i]) >= (int)sizeof path) {
            fprintf(stderr, "onnxtune ops: path of case %s too long\n", c->pass[i]);
            ok = false;
            break;
        }
        Diag d;
        diag_init(&d, path);
        Model *m = NULL;
        Status st = onnx_import_file(path, &m, &d);
        if (!st) {
            memset(seen, 0, nrules * sizeof *seen);
            mark_ops(m->graph, seen);
            st = pass_canon(m, &d);
        }
        if (st) {
            fprintf(stderr, "onnxtune ops: passing case %s: ", c->pass[i]);
            diag_print(&d, stderr);
            ok = false;
        } else {
            mark_ops(m->graph, seen);
            for (size_t k = 0; k < nrules; k++)
                c->runs[k] += seen[k];
        }
        model_free(m);
    }
    free(seen);
    return ok;
}

static bool has_model(const char *dir)
{
    char path[PATH_MAX];
    struct stat sb;
    return snprintf(path, sizeof path, "%s/model.onnx", dir) < (int)sizeof path && stat(path, &sb) == 0 &&
           S_ISREG(sb.st_mode);
}

/* Cases (folders with a model.onnx) below dir, as `onnxtune conform` finds them. */
static size_t count_cases(const char *dir, int depth)
{
    if (has_model(dir))
        return 1;
    if (depth >= 4)
        return 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        char sub[PATH_MAX];
        struct stat sb;
        if (e->d_name[0] != '.' && snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < (int)sizeof sub &&
            stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
            n += count_cases(sub, depth + 1);
    }
    closedir(dp);
    return n;
}

/* Plain list: every case under the suites (first name components) the list names. */
static void count_suites(Conform *c, const char *root)
{
    for (size_t i = 0; i < c->npass; i++) {
        size_t len = strcspn(c->pass[i], "/");
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = !(strncmp(c->pass[j], c->pass[i], len) == 0 && c->pass[j][len] == '/');
        if (!first)
            continue;
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%.*s", root, (int)len, c->pass[i]) < (int)sizeof dir)
            c->cases_found += count_cases(dir, 1);
    }
}

/* ---- cases that do not pass, and why ---- */

/* The reasons file beside the list: tests/conform_unsupported.txt for tests/conform_passing.txt. */
#define UNSUPPORTED_FILE "conform_unsupported.txt"

typedef struct CaseNames {
    char **v;
    size_t n, cap;
} CaseNames;

static bool names_add(CaseNames *c, const char *name)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        char **v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return false;
        c->v = v;
        c->cap = cap;
    }
    return (c->v[c->n] = strdup(name)) != NULL && ++c->n;
}

/* Names ("node/test_abs") of the cases below root/label, as `onnxtune conform` finds them. */
static bool collect_cases(const char *root, const char *label, int depth, CaseNames *out)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", root, label) >= (int)sizeof dir)
        return true;
    if (has_model(dir))
        return names_add(out, label);
    if (depth >= 4)
        return true;
    DIR *dp = opendir(dir);
    if (!dp)
        return true;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(dp))) {
        char sub[PATH_MAX];
        if (e->d_name[0] != '.' && snprintf(sub, sizeof sub, "%s/%s", label, e->d_name) < (int)sizeof sub)
            ok = collect_cases(root, sub, depth + 1, out);
    }
    closedir(dp);
    return ok;
}

static bool passes(const Conform *c, const char *name)
{
    return bsearch(&name, c->pass, c->npass, sizeof *c->pass, cmp_str) != NULL;
}

/* "## Cases that do not pass, and why": each line of the reasons file ("PATTERN REASON", PATTERN a
 * shell glob over case names) with how many cases that do not pass it matches, then the cases no line
 * names. A pattern that matches none (all pass now, or a typo) is an error: the file must stay true. */
static bool print_unsupported(const char *list_path, const char *root, const Conform *c)
{
    char path[PATH_MAX];
    const char *slash = strrchr(list_path, '/');
    int dlen = slash ? (int)(slash - list_path) + 1 : 0;
    if (snprintf(path, sizeof path, "%.*s%s", dlen, list_path, UNSUPPORTED_FILE) >= (int)sizeof path)
        return true;
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    CaseNames all = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < c->npass; i++) { /* the suites the list names */
        size_t len = strcspn(c->pass[i], "/");
        char suite[256];
        if (len >= sizeof suite || (i > 0 && strncmp(c->pass[i - 1], c->pass[i], len + 1) == 0))
            continue;
        memcpy(suite, c->pass[i], len);
        suite[len] = 0;
        ok = collect_cases(root, suite, 1, &all);
    }
    if (ok)
        qsort(all.v, all.n, sizeof *all.v, cmp_str);
    bool *named = calloc(all.n + 1, sizeof *named);
    ok = ok && named;
    printf("\n## Cases that do not pass, and why\n\n"
           "From `tests/" UNSUPPORTED_FILE "` (a shell pattern over case names and the reason); `cases`:\n"
           "how many cases that do not pass the pattern matches.\n\n"
           "| cases | count | why |\n|-------|------:|-----|\n");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    while (ok && getline(&line, &cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        const char *p = line;
        size_t len;
        const char *w = next_word(&p, &len);
        if (len == 0 || w[0] == '#')
            continue;
        char pat[256];
        const char *why = p + strspn(p, " \t");
        if (len >= sizeof pat || !*why) {
            fprintf(stderr, "onnxtune ops: %s:%zu: expected PATTERN REASON\n", path, lineno);
            ok = false;
            break;
        }
        memcpy(pat, w, len);
        pat[len] = 0;
        size_t count = 0;
        for (size_t i = 0; i < all.n; i++)
            if (!passes(c, all.v[i]) && fnmatch(pat, all.v[i], 0) == 0) {
                count++;
                named[i] = true;
            }
        if (count == 0) {
            fprintf(stderr, "onnxtune ops: %s:%zu: %s matches no case that fails to pass: remove the line\n", path,
                    lineno, pat);
            ok = false;
        }
        printf("| `%s` | %zu | %s |\n", pat, count, why);
    }
    size_t rest = 0;
    for (size_t i = 0; ok && i < all.n; i++)
        rest += !named[i] && !passes(c, all.v[i]);
    if (ok && rest) {
        printf("\nNot named above (%zu):", rest);
        for (size_t i = 0; i < all.n; i++)
            if (!named[i] && !passes(c, all.v[i]))
                printf(" `%s`", all.v[i]);
        printf("\n");
    }
    free(line);
    fclose(f);
    free(named);
    for (size_t i = 0; i < all.n; i++)
        free(all.v[i]);
    free(all.v);
    return ok;
}

/* ---- output ---- */

static void print_markdown(const char *family, const Conform *c)
{
    size_t n = 0, nfwd = 0, ngrad = 0, nconf = 0, ndefault = 0, ndefault_conf = 0, npreview = 0;
    for (size_t i = 0; op_rule_at(i); i++) {
        const OpRule *r = op_rule_at(i);
        if (!in_family(r, family))
            continue;
        n++;
        nfwd += has_emitter(r);
        ngrad += r->grad != NULL;
        nconf += c && c->runs[i] > 0;
        ndefault += is_default_domain(r);
        npreview += r->domain && strcmp(r->domain, "ai.onnx.preview.training") == 0;
        ndefault_conf += c && c->runs[i] > 0 && is_default_domain(r);
    }
    printf("# Supported ops\n\n"
           "Generated from the op table (`ir/ops_<family>.c`; the unary element-wise ops from `ir/unary.def`) by\n"
           "`onnxtune ops --markdown`; do not edit by hand. `docs/adding-an-op.md` says where a new op goes.\n"
           "Regenerate from the repo root after building:\n\n"
           "    " OPS_DOC_COMMAND "\n\n"
           "`tests/cmake/ops_doc.sh` (CTest `ops_doc`) fails when this file is stale, and when an op has neither a\n"
           "passing conformance case nor an entry in `tests/ops_without_conformance.txt` naming its test.\n\n"
           "- **opset**: the ONNX opset whose semantics the op's canonical IR form follows. Older versions are\n"
           "  rewritten to it on import (`ir/pass_canon.c`, the op's canon rule) or refused with a message\n"
           "  naming the version. Ops of the `onnxtune` domain are the ones training adds (backward ops,\n"
           "  losses, optimizer updates); they never appear in an ONNX file.\n"
           "- **forward**: `yes` when codegen has an emitter for the op (`codegen/emit_<family>.c`); `fold`:\n"
           "  no emitter, computed at compile time when its inputs are constant (refused otherwise); `-`: no\n"
           "  emitter, refused unless canonicalisation rewrote it into other ops (Upsample becomes Resize).\n"
           "- **backward**: `yes` when the op has a gradient rule (autodiff can train through it).\n");
    if (c)
        printf("- **conformance**: ONNX backend test cases in `tests/conform_passing.txt` whose model runs the op,\n"
               "  as imported or after canonicalisation (each case's `model.onnx` is read; no name matching).\n");
    printf("\n");
    printf("| op | domain | family | opset | forward | backward |%s\n", c ? " conformance |" : "");
    printf("|----|--------|--------|------:|---------|----------|%s\n", c ? "------------:|" : "");
    for (size_t i = 0; op_rule_at(i); i++) {
        const OpRule *r = op_rule_at(i);
        if (!in_family(r, family))
            continue;
        printf("| %s | %s | %s | %d | %s | %s |", r->name, domain_name(r), r->family, r->canon_opset,
               has_emitter(r) ? "yes" : r->fold ? "fold" : "-", yes(r->grad != NULL));
        if (c && c->runs[i])
            printf(" %zu |", c->runs[i]);
        else if (c)
            printf(" - |");
        printf("\n");
    }
    printf("\n## Totals\n\n| | count |\n|---|---:|\n");
    printf("| ops | %zu (ai.onnx %zu, ai.onnx.preview.training %zu, onnxtune %zu) |\n", n, ndefault, npreview,
           n - ndefault - npreview);
    printf("| with a forward emitter | %zu |\n", nfwd);
    printf("| with a gradient rule | %zu |\n", ngrad);
    if (!c)
        return;
    printf("| run by a passing conformance case | %zu (ai.onnx: %zu of %zu) |\n", nconf, ndefault_conf, ndefault);
    printf("| conformance cases passed | %zu |\n", c->npass);
    if (c->tagged) {
        printf("| conformance cases failed | %zu |\n", c->failed);
        printf("| conformance cases unsupported | %zu |\n", c->unsupported);
    } else {
        printf("| conformance cases not passing (UNSUPPORTED: the `conform` test fails on any FAIL) | %zu |\n",
               c->cases_found > c->npass ? c->cases_found - c->npass : 0);
    }
}

static void print_list(const char *family)
{
    printf("%-28s %-14s %-12s %5s  %-5s %-5s %-5s %-5s %-5s %s\n", "op", "domain", "family", "opset", "canon",
           "shape", "fold", "flops", "emit", "grad");
    size_t n = 0;
    for (size_t i = 0; op_rule_at(i); i++) {
        const OpRule *r = op_rule_at(i);
        if (!in_family(r, family))
            continue;
        printf("%-28s %-14s %-12s %5d  %-5s %-5s %-5s %-5s %-5s %s\n", r->name, domain_name(r), r->family,
               r->canon_opset, yes(r->canon != NULL), yes(r->shape != NULL), yes(r->fold != NULL),
               yes(r->flops != NULL), yes(has_emitter(r)), yes(r->grad != NULL));
        n++;
    }
    printf("%zu ops\n", n);
}

int cmd_ops(int argc, char **argv)
{
    int nargs;
    int rc = cli_parse(&ops_cmd, argc, argv, NULL, &nargs);
    if (rc >= 0)
        return rc;
    const CliOption *fam = cli_option(&ops_cmd, "--family");
    const char *family = fam->given ? fam->value : NULL;
    if (family) {
        bool found = false;
        for (size_t i = 0; op_rule_at(i); i++)
            found |= in_family(op_rule_at(i), family);
        if (!found)
            return cli_usage_error(&ops_cmd, "no op family '%s'", family);
    }
    const CliOption *list = cli_option(&ops_cmd, "--conform-list");
    const CliOption *cases = cli_option(&ops_cmd, "--cases");
    bool markdown = cli_option(&ops_cmd, "--markdown")->given;
    if ((list->given || cases->given) && !markdown)
        return cli_usage_error(&ops_cmd, "--conform-list and --cases go with --markdown");
    if (list->given != cases->given)
        return cli_usage_error(&ops_cmd, "--conform-list FILE and --cases ROOT go together (the ops of each "
                                         "case are read from ROOT/<case>/model.onnx)");
    if (!markdown) {
        print_list(family);
        return 0;
    }
    if (!list->given) {
        print_markdown(family, NULL);
        return 0;
    }
    struct stat sb;
    if (stat(cases->value, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "onnxtune ops: --cases %s is not a folder\n", cases->value);
        return 1;
    }
    Conform c = {0};
    size_t nrules = 0;
    while (op_rule_at(nrules))
        nrules++;
    bool ok = read_list(list->value, &c) && count_runs(&c, cases->value, nrules);
    if (ok && !c.tagged)
        count_suites(&c, cases->value);
    if (ok)
        print_markdown(family, &c);
    if (ok && !family)
        ok = print_unsupported(list->value, cases->value, &c);
    conform_free(&c);
    return ok ? 0 : 1;
}
