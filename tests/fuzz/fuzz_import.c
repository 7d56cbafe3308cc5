/* fuzz_import.c - libFuzzer harness for the importer: any bytes must either import into an IR
 * whose pointers all hold, or fail with a status and a message; never crash, leak or hang.
 * tests/fuzz/run.sh builds it with clang -fsanitize=fuzzer,address,undefined. Built with
 * -DFUZZ_REPLAY_MAIN it is a plain program that replays files and folders (CTest runs the corpus so).
 */
#include "importer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Touch everything the IR points at, so ASan sees a dangling or short buffer. */
static size_t walk_graph(const Graph *g, int depth);

static size_t walk_tensor(const Tensor *t)
{
    size_t sum = t->numel + (size_t)t->shape.rank;
    if (t->nbytes)
        sum += ((const unsigned char *)t->data)[0] + ((const unsigned char *)t->data)[t->nbytes - 1];
    if (t->dtype == DT_STRING)
        for (size_t i = 0; i < t->numel; i++)
            sum += strlen(((char *const *)t->data)[i]) + t->str_len[i];
    return sum;
}

static size_t walk_value(const Value *v)
{
    size_t sum = strlen(v->name) + (size_t)v->dtype;
    for (int i = 0; i < v->shape.rank; i++)
        sum += v->shape.sym[i] ? strlen(v->shape.sym[i]) : 0;
    if (v->init)
        sum += walk_tensor(v->init);
    return sum;
}

static size_t walk_graph(const Graph *g, int depth)
{
    size_t sum = strlen(g->name);
    if (depth > 200)
        abort(); /* the importer bounds nesting well below this */
    for (size_t i = 0; i < g->nvalues; i++)
        sum += walk_value(g->values[i]);
    for (size_t i = 0; i < g->ninputs; i++)
        sum += g->inputs[i]->is_input;
    for (size_t i = 0; i < g->noutputs; i++)
        sum += g->outputs[i]->is_output;
    for (size_t i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        sum += strlen(n->name) + strlen(n->op_type) + strlen(n->domain);
        for (int k = 0; k < n->ninputs; k++)
            sum += n->inputs[k] ? walk_value(n->inputs[k]) : 0;
        for (int k = 0; k < n->noutputs; k++) {
            if (!n->outputs[k] || n->outputs[k]->producer != n)
                abort(); /* every output is a value this node produces */
            sum += walk_value(n->outputs[k]);
        }
        for (int k = 0; k < n->nattrs; k++) {
            const Attr *a = &n->attrs[k];
            sum += strlen(a->name);
            if (a->s)
                sum += a->slen;
            if (a->t)
                sum += walk_tensor(a->t);
            if (a->g)
                sum += walk_graph(a->g, depth + 1);
            for (size_t j = 0; j < a->n; j++) {
                if (a->type == AT_FLOATS)
                    sum += a->floats[j] != 0;
                else if (a->type == AT_INTS || a->type == AT_TYPE_PROTOS)
                    sum += (size_t)a->ints[j];
                else if (a->type == AT_STRINGS)
                    sum += strlen(a->strings[j]);
                else if (a->type == AT_TENSORS)
                    sum += walk_tensor(a->tensors[j]);
                else if (a->type == AT_GRAPHS)
                    sum += walk_graph(a->graphs[j], depth + 1);
            }
        }
    }
    return sum;
}

/* External data resolves against this folder, which holds one 64-byte file, w.bin (seeds refer to
 * it), so the offset/length/path checks are fuzzed too. Only files inside it can ever be read. */
static char ext_dir[64] = "/tmp/onnxtune_fuzz_ext";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char path[128];
    mkdir(ext_dir, 0700);
    snprintf(path, sizeof path, "%s/w.bin", ext_dir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; f && i < 64; i++)
        fputc(i, f);
    if (f)
        fclose(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    Diag d;
    Model *m = (Model *)&d;
    diag_init(&d, NULL);
    Status st = onnx_import_bytes(data, size, ext_dir, &m, &d);
    if (st == ST_OK) {
        if (!m || !m->graph || d.status != ST_OK)
            abort();
        volatile size_t sink = walk_graph(m->graph, 0);
        (void)sink;
        model_free(m);
    } else if (m != NULL || d.status != st || !d.msg[0]) {
        abort(); /* failures leave no model and always say why */
    }
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
#include <dirent.h>

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += r;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return 0;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    int n = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_import: cannot read %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            n += replay_file(argv[i]);
            continue;
        }
        DIR *dir = opendir(argv[i]);
        for (struct dirent *e; dir && (e = readdir(dir));) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
                n += replay_file(path);
        }
        if (dir)
            closedir(dir);
    }
    printf("fuzz_import: replayed %d inputs without a crash\n", n);
    return n > 0 ? 0 : 1;
}
#endif
