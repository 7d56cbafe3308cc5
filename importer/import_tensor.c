/* import_tensor.c - ONNX TensorProto and SparseTensorProto to IR Tensor, in every encoding: the
 * typed fields, raw_data (adopted from protobuf-c, not copied), external data files and sparse
 * tensors (densified). It does not check that a tensor suits the op reading it: shape inference does.
 */
#include "import_priv.h"

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool import_dtype(int64_t onnx_type, DType *out)
{
    if (onnx_type < 0 || onnx_type >= DT_COUNT)
        return false;
    *out = (DType)onnx_type;
    return true;
}

/* dtype, dims, element count and byte size, checked. */
static Status tensor_header(Importer *im, const Onnx__TensorProto *tp, const char *what, Tensor **out)
{
    Diag *d = im->d;
    DType dt;
    if (!tp->has_data_type || tp->data_type == 0)
        return diag_error(d, ST_INVALID, "%s: data_type is missing (UNDEFINED)", what);
    if (!import_dtype(tp->data_type, &dt))
        return diag_error(d, ST_UNSUPPORTED, "%s: data_type %d is not an element type we know", what,
                          (int)tp->data_type);
    if (tp->n_dims > IR_MAX_RANK)
        return diag_error(d, ST_UNSUPPORTED, "%s: dims has rank %zu, more than the IR's limit of %d",
                          what, tp->n_dims, IR_MAX_RANK);
    if (tp->segment)
        return diag_error(d, ST_UNSUPPORTED, "%s: segment (a tensor split over several protos) is not "
                          "supported", what);
    size_t numel = 1, nbytes;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0)
            return diag_error(d, ST_INVALID, "%s: dims[%zu] is negative (%lld)", what, i,
                              (long long)tp->dims[i]);
        if ((uint64_t)tp->dims[i] > SIZE_MAX || !size_mul(numel, (size_t)tp->dims[i], &numel))
            return diag_error(d, ST_INVALID, "%s: dims overflow: their product does not fit in size_t",
                              what);
    }
    if (!size_mul(numel, dtype_size(dt), &nbytes))
        return diag_error(d, ST_INVALID, "%s: dims overflow: %zu elements of %s do not fit in memory",
                          what, numel, dtype_name(dt));
    Tensor *t = arena_alloc(im->a, sizeof *t);
    if (!t)
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    t->dtype = dt;
    t->shape = shape_make((int)tp->n_dims, tp->dims);
    t->numel = numel;
    t->nbytes = nbytes;
    *out = t;
    return ST_OK;
}

/* Give the arena a malloc'd buffer; on failure the caller still owns it. */
static Status adopt(Importer *im, void *p, const char *what)
{
    if (!arena_adopt(im->a, p))
        return diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
    return ST_OK;
}

/* Use `src` (a protobuf-c malloc'd array of exactly t->nbytes) as the tensor's data, or copy it.
 * When stolen, the caller clears the message's field so protobuf-c does not free it. */
static Status take_array(Importer *im, Tensor *t, void *src, bool steal, const char *what)
{
    if (t->nbytes == 0)
        return ST_OK;
    if (steal) {
        if (adopt(im, src, what))
            return im->d->status;
        t->data = src;
        return ST_OK;
    }
    if (!(t->data = arena_alloc(im->a, t->nbytes)))
        return diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
    memcpy(t->data, src, t->nbytes);
    return ST_OK;
}

static Status read_strings(Importer *im, Onnx__TensorProto *tp, const char *what, Tensor *t)
{
    if (tp->n_string_data != t->numel)
        return diag_error(im->d, ST_INVALID, "%s: string_data has %zu strings, expected %zu", what,
                          tp->n_string_data, t->numel);
    if (t->numel == 0)
        return ST_OK;
    char **s = arena_calloc(im->a, t->numel, sizeof *s);
    t->str_len = arena_calloc(im->a, t->numel, sizeof *t->str_len);
    if (!s || !t->str_len)
        return diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < t->numel; i++) {
        const ProtobufCBinaryData *b = &tp->string_data[i];
        if (!(s[i] = arena_strndup(im->a, b->data ? (const char *)b->data : "", b->len)))
            return diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
        t->str_len[i] = b->len;
    }
    t->data = s;
    return ST_OK;
}

/* The typed repeated fields. int32_data carries every type of 16 bits or less (as their bits),
 * uint64_data carries uint32 and uint64, float_data and double_data the complex types too. */
static Status read_typed(Importer *im, Onnx__TensorProto *tp, const char *what, bool steal, Tensor *t)
{
    size_t want = t->numel, have;
    const char *field;
    switch (t->dtype) {
    case DT_FLOAT: case DT_COMPLEX64:
        field = "float_data", have = tp->n_float_data;
        break;
    case DT_DOUBLE: case DT_COMPLEX128:
        field = "double_data", have = tp->n_double_data;
        break;
    case DT_INT64:
        field = "int64_data", have = tp->n_int64_data;
        break;
    case DT_UINT32: case DT_UINT64:
        field = "uint64_data", have = tp->n_uint64_data;
        break;
    default:
        field = "int32_data", have = tp->n_int32_data;
        break;
    }
    if (t->dtype == DT_COMPLEX64 || t->dtype == DT_COMPLEX128)
        want *= 2; /* cannot overflow: nbytes = numel * 8 or 16 already fit */
    if (have != want) {
        if (have == 0)
            return diag_error(im->d, ST_INVALID, "%s: no data: expected %zu values in %s or raw_data",
                              what, want, field);
        return diag_error(im->d, ST_INVALID, "%s: %s has %zu values, expected %zu (from dims and "
                          "data_type %s)", what, field, have, want, dtype_onnx_name(t->dtype));
    }
    if (t->numel == 0)
        return ST_OK;
    Status st = ST_OK;
    bool took = steal && t->nbytes;
    switch (t->dtype) {
    case DT_FLOAT: case DT_COMPLEX64:
        if (!(st = take_array(im, t, tp->float_data, steal, what)) && took)
            tp->float_data = NULL, tp->n_float_data = 0;
        return st;
    case DT_DOUBLE: case DT_COMPLEX128:
        if (!(st = take_array(im, t, tp->double_data, steal, what)) && took)
            tp->double_data = NULL, tp->n_double_data = 0;
        return st;
    case DT_INT64:
        if (!(st = take_array(im, t, tp->int64_data, steal, what)) && took)
            tp->int64_data = NULL, tp->n_int64_data = 0;
        return st;
    case DT_UINT64:
        if (!(st = take_array(im, t, tp->uint64_data, steal, what)) && took)
            tp->uint64_data = NULL, tp->n_uint64_data = 0;
        return st;
    case DT_INT32:
        if (!(st = take_array(im, t, tp->int32_data, steal, what)) && took)
            tp->int32_data = NULL, tp->n_int32_data = 0;
        return st;
    default:
        break;
    }
    /* narrowing copies */
    if (!(t->data = arena_alloc(im->a, t->nbytes)))
        return diag_error(im->d, ST_NOMEM, "%s: out of memory", what);
    size_t es = dtype_size(t->dtype);
    for (size_t i = 0; i < t->numel; i++) {
        if (t->dtype == DT_UINT32) {
            ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i];
        } else if (t->dtype == DT_BOOL) {
            ((uint8_t *)t->data)[i] = tp->int32_data[i] != 0;
        } else if (es == 1) {
            ((uint8_t *)t->data)[i] = (uint8_t)tp->int32_data[i];
        } else if (es == 2) {
            ((uint16_t *)t->data)[i] = (uint16_t)tp->int32_data[i];
        } else {
            return diag_error(im->d, ST_UNSUPPORTED, "%s: %s tensors in typed fields are not supported",
                              what, dtype_onnx_name(t->dtype));
        }
    }
    return ST_OK;
}

/* ---- external data ---- */

void import_close_external(Importer *im)
{
    if (im->ext_path && im->ext_fd >= 0)
        close(im->ext_fd);
    im->ext_path = NULL;
    im->ext_fd = -1;
}

/* A decimal number that fits in 63 bits, nothing else (no sign, no spaces). */
static bool parse_u63(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* Open `location` (relative to the model's folder, not escaping it) as the cached external file. */
static Status open_external(Importer *im, const char *location, const char *what)
{
    Diag *d = im->d;
    if (!im->dir)
        return diag_error(d, ST_UNSUPPORTED, "%s: external_data location '%s': external data needs the "
                          "model's folder (import the model from a file)", what, location);
    if (!*location)
        return diag_error(d, ST_INVALID, "%s: external_data location is empty", what);
    if (location[0] == '/')
        return diag_error(d, ST_INVALID, "%s: external_data location '%s' is an absolute path; ONNX "
                          "requires a path relative to the model's folder", what, location);
    if (!im->dir_real) {
        char buf[PATH_MAX];
        if (!realpath(im->dir, buf))
            return diag_error(d, ST_IO, "%s: cannot resolve the model's folder '%s': %s", what, im->dir,
                              strerror(errno));
        if (!(im->dir_real = arena_strdup(im->tmp, buf)))
            return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    }
    char *joined = arena_printf(im->tmp, "%s/%s", im->dir, location);
    char real[PATH_MAX];
    if (!joined)
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    if (!realpath(joined, real))
        return diag_error(d, ST_IO, "%s: external_data location '%s': cannot open %s: %s", what,
                          location, joined, strerror(errno));
    size_t dl = strlen(im->dir_real);
    bool inside = strncmp(real, im->dir_real, dl) == 0 && (real[dl] == '/' || im->dir_real[dl - 1] == '/');
    if (!inside)
        return diag_error(d, ST_INVALID, "%s: external_data location '%s' resolves to %s, outside the "
                          "model's folder %s", what, location, real, im->dir_real);
    if (im->ext_path && strcmp(im->ext_path, real) == 0)
        return ST_OK;
    import_close_external(im);
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return diag_error(d, ST_IO, "%s: external_data location '%s': cannot open %s: %s", what,
                          location, real, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return diag_error(d, ST_IO, "%s: external_data location '%s': %s is not a regular file", what,
                          location, real);
    }
    if (!(im->ext_path = arena_strdup(im->tmp, real))) {
        close(fd);
        return diag_error(d, ST_NOMEM, "%s: out of memory", what);
    }
    im->ext_fd = fd;
    im->ext_size = (size_t)st.st_size;
    return ST_OK;
}

static Status read_external(Importer *im, const Onnx__TensorProto *tp, const char *what, Tensor *t)
{
    Diag *d = im->d;
    const char *location = NULL, *offset_s = NULL, *length_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key)
            continue;
        if (strcmp(e->key, "location") == 0)
            location = e->value ? e->value : "";
        else if (strcmp(e->key, "offset") == 0)
            offset_s = e->value ? e->value : "";
        else if (strcmp(e->key, "length") == 0)
            length_s = e->value ? e->value : "";
    }
    if (t->dtype == DT_STRING)
        return diag_error(d, ST_INVALID, "%s: string tensors cannot use external data", what);
    if (!location)
        return diag_error(d, ST_INVALID, "%s: data_location is EXTERNAL but external_data has no "
                          "'location' key", what);
    uint64_t offset = 0, length = t->nbytes;
    if (offset_s && !parse_u63(offset_s, &offset))
        return diag_error(d, ST_INVALID, "%s: external_data offset '%s' is not a non-negative integer",
                          what, offset_s);
    if (length_s && !parse_u63(length_s, &length))
        return diag_error(d, ST_INVALID, "%s: external_data length '%s' is not a non-negative integer",
                          what, length_s);
    if (length != t->nbytes)
        return diag_error(d, ST_INVALID, "%s: external_data length %llu does not match the %zu bytes "
                          "of its dims and data_type", what, (unsigned long long)length, t->nbytes);
    Status st = open_external(im, location, what);
    if (st)
        return st;
    if (offset > im->ext_size)
        return diag_error(d, ST_INVALID, "%s: external_data offset %llu is past the end of '%s' (%zu "
                          "bytes)", what, (unsigned long long)offset, location, im->ext_size);
    if (length > im->ext_size - offset)
        return diag_error(d, ST_INVALID, "%s: external_data offset %llu + length %llu is past the end "
                          "of '%s' (%zu bytes)", what, (unsigned long long)offset,
                          (unsigned long long)length, location, im->ext_size);
    if (t->nbytes == 0)
        return ST_OK;
    char *buf = malloc(t->nbytes);
    if (!buf)
        return diag_error(d, ST_NOMEM, "%s: out of memory for %zu bytes of external data", what,
                          t->nbytes);
    if (adopt(im, buf, what)) {
        free(buf);
        return d->status;
    }
    for (size_t done = 0; done < t->nbytes;) {
        ssize_t r = pread(im->ext_fd, buf + done, t->nbytes - done, (off_t)(offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return diag_error(d, ST_IO, "%s: reading external_data '%s': %s", what, location,
                              r < 0 ? strerror(errno) : "unexpected end of file");
        done += (size_t)r;
    }
    t->data = buf;
    return ST_OK;
}

Status import_tensor(Importer *im, Onnx__TensorProto *tp, const char *what, bool steal, Tensor **out)
{
    Tensor *t = NULL;
    Status st = tensor_header(im, tp, what, &t);
    if (st)
        return st;
    /* protos inside functions are decoded once per call: their copies count against the budget */
    if (im->inline_depth && (st = import_charge_inline(im, t->nbytes / 1024 + 1, what)))
        return st;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        st = read_external(im, tp, what, t);
    else if (t->dtype == DT_STRING) {
        if (tp->raw_data.len)
            return diag_error(im->d, ST_INVALID, "%s: raw_data cannot hold STRING tensors (use "
                              "string_data)", what);
        st = read_strings(im, tp, what, t);
    } else if (tp->raw_data.len || (tp->has_raw_data && t->nbytes == 0)) {
        if (tp->raw_data.len != t->nbytes)
            return diag_error(im->d, ST_INVALID, "%s: raw_data has %zu bytes, expected %zu (%zu x %s)",
                              what, tp->raw_data.len, t->nbytes, t->numel, dtype_onnx_name(t->dtype));
        st = take_array(im, t, tp->raw_data.data, steal, what);
        if (!st && steal && t->nbytes) {
            tp->raw_data.data = NULL;
            tp->raw_data.len = 0;
        }
    } else if (tp->has_raw_data && tp->n_float_data + tp->n_int32_data + tp->n_int64_data +
               tp->n_double_data + tp->n_uint64_data == 0) {
        st = diag_error(im->d, ST_INVALID, "%s: raw_data has 0 bytes, expected %zu (%zu x %s)", what,
                        t->nbytes, t->numel, dtype_onnx_name(t->dtype));
    } else {
        st = read_typed(im, tp, what, steal, t);
    }
    if (st)
        return st;
    *out = t;
    return ST_OK;
}

/* ---- sparse tensors ---- */

Status import_sparse_tensor(Importer *im, Onnx__SparseTensorProto *sp, const char *what, bool steal,
                            Tensor **out)
{
    Diag *d = im->d;
    char sub[512];
    if (sp->n_dims > IR_MAX_RANK)
        return diag_error(d, ST_UNSUPPORTED, "%s: sparse dims has rank %zu, more than the IR's limit "
                          "of %d", what, sp->n_dims, IR_MAX_RANK);
    if (!sp->values)
        return diag_error(d, ST_INVALID, "%s: sparse tensor without values", what);
    size_t numel = 1;
    for (size_t i = 0; i < sp->n_dims; i++) {
        if (sp->dims[i] < 0)
            return diag_error(d, ST_INVALID, "%s: sparse dims[%zu] is negative (%lld)", what, i,
                              (long long)sp->dims[i]);
        if ((uint64_t)sp->dims[i] > SIZE_MAX || !size_mul(numel, (size_t)sp->dims[i], &numel))
            return diag_error(d, ST_INVALID, "%s: sparse dims overflow", what);
    }
    Tensor *vals = NULL, *idx = NULL;
    snprintf(sub, sizeof sub, "%s (sparse values)", what);
    Status st = import_tensor(im, sp->values, sub, steal, &vals);
    if (st)
        return st;
    size_t nnz = vals->numel, es = dtype_size(vals->dtype), dense_bytes;
    if (vals->shape.rank != 1)
        return diag_error(d, ST_INVALID, "%s: sparse values must be 1-D, not rank %d", what,
                          vals->shape.rank);
    if (!size_mul(numel, es, &dense_bytes) || dense_bytes > IMPORT_MAX_DENSE_BYTES)
        return diag_error(d, ST_UNSUPPORTED, "%s: the dense form of this sparse tensor (%zu elements) "
                          "is too large", what, numel);
    if (im->inline_depth && (st = import_charge_inline(im, dense_bytes / 1024 + 1, what)))
        return st;
    if (nnz) {
        if (!sp->indices)
            return diag_error(d, ST_INVALID, "%s: sparse tensor with %zu values but no indices", what,
                              nnz);
        snprintf(sub, sizeof sub, "%s (sparse indices)", what);
        if ((st = import_tensor(im, sp->indices, sub, steal, &idx)))
            return st;
        if (idx->dtype != DT_INT64)
            return diag_error(d, ST_INVALID, "%s: sparse indices must be INT64, not %s", what,
                              dtype_onnx_name(idx->dtype));
        bool linear = idx->shape.rank == 1 && idx->shape.dim[0] == (int64_t)nnz;
        bool coords = idx->shape.rank == 2 && idx->shape.dim[0] == (int64_t)nnz &&
                      idx->shape.dim[1] == (int64_t)sp->n_dims;
        if (!linear && !coords)
            return diag_error(d, ST_INVALID, "%s: sparse indices must have shape [%zu] or [%zu,%zu]",
                              what, nnz, nnz, sp->n_dims);
    }
    Shape shape = shape_make((int)sp->n_dims, sp->dims);
    Tensor *t = tensor_new(im->a, vals->dtype, &shape);
    if (!t)
        return diag_error(d, ST_NOMEM, "%s: out of memory densifying a sparse tensor", what);
    const int64_t *ix = idx ? idx->data : NULL;
    bool linear = idx && idx->shape.rank == 1;
    for (size_t k = 0; k < nnz; k++) {
        size_t li = 0;
        if (linear) {
            if (ix[k] < 0 || (uint64_t)ix[k] >= numel)
                return diag_error(d, ST_INVALID, "%s: sparse indices[%zu] = %lld is outside the %zu "
                                  "elements", what, k, (long long)ix[k], numel);
            li = (size_t)ix[k];
        } else {
            for (size_t j = 0; j < sp->n_dims; j++) {
                int64_t c = ix[k * sp->n_dims + j];
                if (c < 0 || c >= sp->dims[j])
                    return diag_error(d, ST_INVALID, "%s: sparse indices[%zu][%zu] = %lld is outside "
                                      "dim %lld", what, k, j, (long long)c, (long long)sp->dims[j]);
                li = li * (size_t)sp->dims[j] + (size_t)c;
            }
        }
        memcpy((char *)t->data + li * es, (const char *)vals->data + k * es, es);
        if (t->dtype == DT_STRING)
            t->str_len[li] = vals->str_len[k];
    }
    *out = t;
    return ST_OK;
}

/* ---- the backend tests' tensor files ---- */

/* The whole file, malloc'd. */
static Status read_all(const char *path, uint8_t **out, size_t *out_len, Diag *d)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return diag_error(d, ST_IO, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += r;
        if (len == cap) {
            uint8_t *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool read_err = ferror(f);
    fclose(f);
    if (!buf)
        return diag_error(d, ST_NOMEM, "out of memory reading the tensor file");
    if (read_err) {
        free(buf);
        return diag_error(d, ST_IO, "read error");
    }
    *out = buf;
    *out_len = len;
    return ST_OK;
}

/* Decode a serialized TensorProto of a test data file at path (external data relative to it). */
static Status read_tensor_bytes(const char *path, const uint8_t *buf, size_t len, Arena *a, Tensor **out,
                                char **name, Diag *d)
{
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp)
        return diag_error(d, ST_PARSE, "not a serialized ONNX TensorProto (protobuf decoding failed)");
    Importer im = {.a = a, .d = d, .ext_fd = -1};
    const char *slash = strrchr(path, '/');
    Status st = ST_NOMEM;
    if ((im.tmp = arena_new())) {
        im.dir = slash ? arena_strndup(im.tmp, path, (size_t)(slash - path + (slash == path))) : ".";
        char what[300];
        snprintf(what, sizeof what, "tensor '%s'", tp->name ? tp->name : "");
        st = import_tensor(&im, tp, what, true, out);
        if (!st && name && !(*name = arena_strdup(a, tp->name ? tp->name : "")))
            st = diag_error(d, ST_NOMEM, "out of memory");
        import_close_external(&im);
        arena_free(im.tmp);
    } else {
        diag_error(d, ST_NOMEM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (st)
        *out = NULL;
    return st;
}

Status onnx_read_tensor_file(const char *path, Arena *a, Tensor **out, char **name, Diag *d)
{
    *out = NULL;
    if (name)
        *name = NULL;
    if (d && !d->file)
        d->file = path;
    uint8_t *buf;
    size_t len;
    Status st = read_all(path, &buf, &len, d);
    if (st)
        return st;
    st = read_tensor_bytes(path, buf, len, a, out, name, d);
    free(buf);
    return st;
}

/* ---- SequenceProto and OptionalProto (onnx-data.proto, not in onnx.proto: walked by hand) ---- */

/* One field of a message: number, wire type, and the payload of a length-delimited one. */
typedef struct Field {
    uint32_t num;
    int wt;
    const uint8_t *val;
    size_t vlen;
    uint64_t v;             /* varint */
} Field;

static bool next_field(const uint8_t *p, size_t len, size_t *at, Field *f)
{
    uint64_t tag, n;
    if (!pb_varint_get(p, len, at, &tag))
        return false;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    f->val = NULL;
    f->vlen = 0;
    switch (f->wt) {
    case 0: return pb_varint_get(p, len, at, &f->v);
    case 1: n = 8; break;
    case 5: n = 4; break;
    case 2:
        if (!pb_varint_get(p, len, at, &n))
            return false;
        f->val = p + *at;
        f->vlen = (size_t)n;
        break;
    default: return false;
    }
    if (n > len - *at)
        return false;
    *at += (size_t)n;
    return true;
}

/* SequenceProto: name 1, elem_type 2, tensor_values 3 (other element kinds: 4 to 7, refused). */
static Status read_sequence(const char *path, const uint8_t *p, size_t len, Arena *a, DataValue *out, Diag *d)
{
    size_t at = 0, cap = 0;
    Field f;
    out->kind = VK_SEQUENCE;
    while (at < len) {
        if (!next_field(p, len, &at, &f))
            return diag_error(d, ST_PARSE, "not a serialized ONNX SequenceProto");
        if (f.num == 3 && f.wt == 2) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 8;
                Tensor **nv = arena_calloc(a, cap, sizeof *nv);
                if (!nv)
                    return diag_error(d, ST_NOMEM, "out of memory");
                if (out->n)
                    memcpy(nv, out->elems, out->n * sizeof *nv);
                out->elems = nv;
            }
            Status st = read_tensor_bytes(path, f.val, f.vlen, a, &out->elems[out->n], NULL, d);
            if (st)
                return st;
            out->n++;
        } else if (f.num >= 4 && f.num <= 7) {
            return diag_error(d, ST_UNSUPPORTED, "a sequence of sparse tensors, sequences, maps or optionals");
        }
    }
    return ST_OK;
}

/* OptionalProto: name 1, elem_type 2 (1 tensor, 3 sequence), tensor_value 3, sequence_value 5. */
static Status read_optional(const char *path, const uint8_t *p, size_t len, Arena *a, DataValue *out, Diag *d)
{
    size_t at = 0;
    Field f;
    out->kind = VK_OPTIONAL;
    out->none = true;
    out->elem_kind = VK_TENSOR;
    while (at < len) {
        if (!next_field(p, len, &at, &f))
            return diag_error(d, ST_PARSE, "not a serialized ONNX OptionalProto");
        Status st = ST_OK;
        if (f.num == 2 && f.wt == 0 && f.v == 3)
            out->elem_kind = VK_SEQUENCE;
        else if (f.num == 3 && f.wt == 2) {
            out->none = false;
            out->elem_kind = VK_TENSOR;
            st = read_tensor_bytes(path, f.val, f.vlen, a, &out->t, NULL, d);
        } else if (f.num == 5 && f.wt == 2) {
            out->none = false;
            out->elem_kind = VK_SEQUENCE;
            st = read_sequence(path, f.val, f.vlen, a, out, d);
            out->kind = VK_OPTIONAL;
        } else if (f.num == 4 || f.num == 6 || f.num == 7) {
            st = diag_error(d, ST_UNSUPPORTED, "an optional of a sparse tensor, map or optional");
        }
        if (st)
            return st;
    }
    return ST_OK;
}

Status onnx_read_value_file(const char *path, ValueKind kind, Arena *a, DataValue *out, Diag *d)
{
    memset(out, 0, sizeof *out);
    if (d && !d->file)
        d->file = path;
    if (kind != VK_SEQUENCE && kind != VK_OPTIONAL) {
        out->kind = VK_TENSOR;
        return onnx_read_tensor_file(path, a, &out->t, NULL, d);
    }
    uint8_t *buf;
    size_t len;
    Status st = read_all(path, &buf, &len, d);
    if (st)
        return st;
    st = kind == VK_SEQUENCE ? read_sequence(path, buf, len, a, out, d) : read_optional(path, buf, len, a, out, d);
    free(buf);
    return st;
}
