/* lora.c - the training program's LoRA adapters (ir/pass_lora.c adds them to the graphs): merging them into
 * the export, writing them alone (--export-adapters) and starting from such a file (--lora-from). The file
 * is read with a small protobuf walk (ModelProto.graph.initializer: name, data_type, dims, raw_data or
 * float_data); it does not read any other ONNX. */
#include "program_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- merging ---- */

static float get_f32(const unsigned char *p, size_t i)
{
    float v;
    memcpy(&v, p + 4 * i, 4);
    return v;
}

/* dst (W's bytes, maybe unaligned) += scale * B A in W's layout; A, B from params. */
static void merge_one(const TrainProgram *p, const TrainLora *l, const unsigned char *params, unsigned char *dst)
{
    const TrainParam *a = &p->params[l->a], *b = &p->params[l->b];
    size_t r = (size_t)a->dims[0], out = (size_t)b->dims[0], in = a->nbytes / 4 / (r ? r : 1);
    const unsigned char *pa = params + a->offset, *pb = params + b->offset;
    for (size_t o = 0; o < out; o++)
        for (size_t j = 0; j < in; j++) {
            double s = 0;
            for (size_t k = 0; k < r; k++)
                s += (double)get_f32(pb, o * r + k) * get_f32(pa, k * in + j);
            size_t at = l->in_out ? j * out + o : o * in + j;
            float w = get_f32(dst, at) + (float)(l->scale * s);
            memcpy(dst + 4 * at, &w, 4);
        }
}

void tr_lora_merge(const TrainProgram *p, const unsigned char *params, unsigned char *export_buf)
{
    for (int i = 0; i < p->nlora; i++) {
        const TrainParam *w = &p->params[p->lora[i].weight];
        if (w->export_offset >= 0)
            merge_one(p, &p->lora[i], params, export_buf + w->export_offset);
    }
}

void tr_lora_reset(const TrainProgram *p, unsigned char *params)
{
    for (int i = 0; i < p->nlora; i++) {
        const TrainParam *b = &p->params[p->lora[i].b];
        memset(params + b->offset, 0, b->nbytes);
    }
}

/* ---- --export-adapters ---- */

/* Copy tp's data between the buffer (stored layout) and the file (PyTorch's: a transposed [in, out]
 * parameter is [out, in] there). to_file: buffer -> file. */
static void copy_tensor(const TrainParam *tp, unsigned char *file, unsigned char *buf, bool to_file)
{
    if (!(tp->transposed && tp->rank == 2)) {
        if (to_file)
            memcpy(file, buf, tp->nbytes);
        else
            memcpy(buf, file, tp->nbytes);
        return;
    }
    size_t rows = (size_t)tp->dims[0], cols = (size_t)tp->dims[1], es = rows && cols ? tp->nbytes / (rows * cols) : 1;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            unsigned char *f = file + (c * rows + r) * es, *b = buf + (r * cols + c) * es;
            memcpy(to_file ? f : b, to_file ? b : f, es);
        }
}

int tr_lora_export(const Trainer *t, const unsigned char *params, const char *path)
{
    const TrainProgram *p = t->p;
    unsigned char *buf = malloc(p->adapters_bytes ? p->adapters_bytes : 1);
    if (!buf)
        return tr_fail(t, "out of memory exporting the adapters");
    memcpy(buf, p->adapters_template, p->adapters_bytes);
    for (int i = 0; i < p->nadapter_tensors; i++) {
        const TrainParam *tp = &p->params[p->adapter_tensors[i].param];
        copy_tensor(tp, buf + p->adapter_tensors[i].offset, (unsigned char *)params + tp->offset, true);
    }
    char msg[1024];
    FileStatus fs = atomic_write(path, buf, p->adapters_bytes, msg, sizeof msg);
    free(buf);
    return fs == FILE_OK ? 0 : tr_fail(t, "--export-adapters %s: %s", path, msg);
}

/* ---- --lora-from: reading the initializers of an ONNX file ---- */

typedef struct Bytes {
    const unsigned char *p;
    size_t n;
} Bytes;

typedef struct Init {
    Bytes name, raw, floats;
    int64_t dims[RT_MAX_RANK + 1];
    int rank;
    uint64_t dtype;
    bool floats_packed, external;
} Init;

/* The next field of p[*at..end): number, wire type, and its varint value or its bytes. */
static bool next_field(const unsigned char *p, size_t end, size_t *at, uint64_t *field, int *wire, uint64_t *v,
                       Bytes *b)
{
    uint64_t key;
    if (!pb_varint_get(p, end, at, &key))
        return false;
    *field = key >> 3;
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0:
        return pb_varint_get(p, end, at, v);
    case 1:
        if (end - *at < 8)
            return false;
        *at += 8;
        return true;
    case 5:
        if (end - *at < 4)
            return false;
        b->p = p + *at;
        b->n = 4;
        *at += 4;
        return true;
    case 2:
        if (!pb_varint_get(p, end, at, v) || *v > end - *at)
            return false;
        b->p = p + *at;
        b->n = (size_t)*v;
        *at += (size_t)*v;
        return true;
    default:
        return false;
    }
}

static bool parse_tensor(Bytes t, Init *out)
{
    memset(out, 0, sizeof *out);
    size_t at = 0;
    while (at < t.n) {
        uint64_t f, v = 0;
        int w;
        Bytes b = {0};
        if (!next_field(t.p, t.n, &at, &f, &w, &v, &b))
            return false;
        if (f == 1 && w == 0) {
            if (out->rank <= RT_MAX_RANK)
                out->dims[out->rank] = (int64_t)v;
            out->rank++;
        } else if (f == 1 && w == 2) {
            for (size_t k = 0; k < b.n;) {
                if (!pb_varint_get(b.p, b.n, &k, &v))
                    return false;
                if (out->rank <= RT_MAX_RANK)
                    out->dims[out->rank] = (int64_t)v;
                out->rank++;
            }
        } else if (f == 2 && w == 0) {
            out->dtype = v;
        } else if (f == 4 && (w == 2 || w == 5)) {
            if (out->floats.n && (w == 2 || !out->floats_packed))
                return false;   /* float_data in pieces: not what an exporter writes */
            out->floats = b;
            out->floats_packed = w == 2;
        } else if (f == 8 && w == 2) {
            out->name = b;
        } else if (f == 9 && w == 2) {
            out->raw = b;
        } else if (f == 13) {
            out->external = true;
        }
    }
    return true;
}

/* The initializers of the ONNX file buf[len] (malloc'd array, *n of them; false: malformed). */
static bool parse_model(const unsigned char *buf, size_t len, Init **inits, size_t *n)
{
    size_t at = 0, cap = 0;
    *inits = NULL;
    *n = 0;
    while (at < len) {
        uint64_t f, v = 0;
        int w;
        Bytes g = {0};
        if (!next_field(buf, len, &at, &f, &w, &v, &g))
            return false;
        if (f != 7 || w != 2)
            continue;
        for (size_t k = 0; k < g.n;) {
            Bytes t = {0};
            if (!next_field(g.p, g.n, &k, &f, &w, &v, &t))
                return false;
            if (f != 5 || w != 2)
                continue;
            if (*n == cap) {
                Init *grown = realloc(*inits, (cap = cap ? 2 * cap : 16) * sizeof **inits);
                if (!grown)
                    return false;
                *inits = grown;
            }
            if (!parse_tensor(t, &(*inits)[(*n)++]))
                return false;
        }
    }
    return true;
}

static bool name_is(Bytes b, const char *s)
{
    return b.n == strlen(s) && memcmp(b.p, s, b.n) == 0;
}

/* One adapter tensor of the file into params. */
static int load_one(const Trainer *t, const char *path, const Init *in, const TrainParam *tp, unsigned char *params)
{
    char got[160], want[160];
    size_t gd[RT_MAX_RANK], wd[RT_MAX_RANK];
    bool ok = in->dtype == 1 && in->rank == tp->rank, tr = tp->transposed && tp->rank == 2;
    for (int i = 0; i < tp->rank; i++) {
        wd[i] = (size_t)tp->dims[tr ? 1 - i : i];
        ok = ok && in->dims[i] == (int64_t)wd[i];
    }
    for (int i = 0; i < in->rank && i < RT_MAX_RANK; i++)
        gd[i] = (size_t)in->dims[i];
    if (!ok)
        return tr_fail(t, "--lora-from %s: '%s' is %s %s, but this program's is float32 %s (--lora-rank and the "
                       "model must be those it was trained with)", path, tp->name,
                       in->dtype == 1 ? "float32" : "not float32",
                       tr_shape_text(got, sizeof got, in->rank < RT_MAX_RANK ? in->rank : RT_MAX_RANK, gd, NULL),
                       tr_shape_text(want, sizeof want, tp->rank, wd, NULL));
    if (in->external)
        return tr_fail(t, "--lora-from %s: '%s' is stored as external data, which is not read", path, tp->name);
    unsigned char *dst = params + tp->offset;
    if (in->raw.n == tp->nbytes) {
        copy_tensor(tp, (unsigned char *)in->raw.p, dst, false);
    } else if (in->floats.n == tp->nbytes && (in->floats_packed || tp->nbytes == 4)) {
        copy_tensor(tp, (unsigned char *)in->floats.p, dst, false);
    } else {
        return tr_fail(t, "--lora-from %s: '%s' holds %zu bytes of data, not %zu", path, tp->name,
                       in->raw.n ? in->raw.n : in->floats.n, tp->nbytes);
    }
    return 0;
}

int tr_lora_parse(const Trainer *t, const char *path, const unsigned char *buf, size_t len, unsigned char *params)
{
    const TrainProgram *p = t->p;
    Init *inits = NULL;
    size_t n = 0;
    int rc = 0;
    if (!p->nlora)
        rc = tr_fail(t, "--lora-from %s: the program has no LoRA adapters", path);
    else if (!parse_model(buf, len, &inits, &n))
        rc = tr_fail(t, "--lora-from %s: not an ONNX file (malformed protobuf)", path);
    /* every tensor of the file must be one of this program's adapters file, and every adapter in the file */
    for (size_t i = 0; !rc && i < n; i++) {
        const TrainParam *tp = NULL;
        for (int k = 0; k < p->nadapter_tensors && !tp; k++)
            if (name_is(inits[i].name, p->params[p->adapter_tensors[k].param].name))
                tp = &p->params[p->adapter_tensors[k].param];
        const char *name = inits[i].name.p ? (const char *)inits[i].name.p : "";
        if (!tp)
            rc = tr_fail(t, "--lora-from %s: '%.*s' is neither an adapter nor a trainable parameter of this program "
                         "(its adapters are named like '%s')", path, (int)(inits[i].name.n > 200 ? 200 : inits[i].name.n),
                         name, p->params[p->lora[0].a].name);
        else
            rc = load_one(t, path, &inits[i], tp, params);
    }
    for (int k = 0; !rc && k < p->nlora; k++)
        for (int ab = 0; ab < 2 && !rc; ab++) {
            const char *want = p->params[ab ? p->lora[k].b : p->lora[k].a].name;
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = name_is(inits[i].name, want);
            if (!found)
                rc = tr_fail(t, "--lora-from %s: the file has no '%s' (it holds %zu tensors; give a file this "
                             "program's --export-adapters wrote)", path, want, n);
        }
    free(inits);
    return rc;
}

int tr_lora_from(const Trainer *t, unsigned char *params)
{
    const char *path = t->o.lora_from;
    if (!path)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tr_fail(t, "--lora-from %s: cannot open: %s", path, strerror(errno));
    size_t len = 0, cap = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (len == cap) {
            unsigned char *grown = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!grown) {
                fclose(f);
                free(buf);
                return tr_fail(t, "out of memory reading %s", path);
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool read_error = ferror(f);
    fclose(f);
    int rc = read_error ? tr_fail(t, "--lora-from %s: read error", path) : tr_lora_parse(t, path, buf, len, params);
    free(buf);
    return rc;
}
