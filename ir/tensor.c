/* tensor.c - element types, shapes and constant tensors: sizes, names, element access and the
 * float16/bfloat16 conversions. Element access here is for folding and tests, not for kernels. */
#include "ir.h"

#include <math.h>
#include <string.h>

typedef struct {
    size_t size;
    const char *name, *onnx;
} DTypeInfo;

static const DTypeInfo dtypes[DT_COUNT] = {
    [DT_UNDEFINED] = {0, "undefined", "UNDEFINED"},
    [DT_FLOAT] = {4, "float32", "FLOAT"},
    [DT_UINT8] = {1, "uint8", "UINT8"},
    [DT_INT8] = {1, "int8", "INT8"},
    [DT_UINT16] = {2, "uint16", "UINT16"},
    [DT_INT16] = {2, "int16", "INT16"},
    [DT_INT32] = {4, "int32", "INT32"},
    [DT_INT64] = {8, "int64", "INT64"},
    [DT_STRING] = {sizeof(char *), "string", "STRING"},
    [DT_BOOL] = {1, "bool", "BOOL"},
    [DT_FLOAT16] = {2, "float16", "FLOAT16"},
    [DT_DOUBLE] = {8, "float64", "DOUBLE"},
    [DT_UINT32] = {4, "uint32", "UINT32"},
    [DT_UINT64] = {8, "uint64", "UINT64"},
    [DT_COMPLEX64] = {8, "complex64", "COMPLEX64"},
    [DT_COMPLEX128] = {16, "complex128", "COMPLEX128"},
    [DT_BFLOAT16] = {2, "bfloat16", "BFLOAT16"},
    [DT_FLOAT8E4M3FN] = {1, "float8e4m3fn", "FLOAT8E4M3FN"},
    [DT_FLOAT8E4M3FNUZ] = {1, "float8e4m3fnuz", "FLOAT8E4M3FNUZ"},
    [DT_FLOAT8E5M2] = {1, "float8e5m2", "FLOAT8E5M2"},
    [DT_FLOAT8E5M2FNUZ] = {1, "float8e5m2fnuz", "FLOAT8E5M2FNUZ"},
};

size_t dtype_size(DType t)
{
    return (unsigned)t < DT_COUNT ? dtypes[t].size : 0;
}

const char *dtype_name(DType t)
{
    return (unsigned)t < DT_COUNT ? dtypes[t].name : "invalid";
}

const char *dtype_onnx_name(DType t)
{
    return (unsigned)t < DT_COUNT ? dtypes[t].onnx : "INVALID";
}

bool dtype_is_float(DType t)
{
    return t == DT_FLOAT || t == DT_DOUBLE || t == DT_FLOAT16 || t == DT_BFLOAT16;
}

bool dtype_is_int(DType t)
{
    switch (t) {
    case DT_UINT8: case DT_INT8: case DT_UINT16: case DT_INT16: case DT_INT32:
    case DT_INT64: case DT_UINT32: case DT_UINT64:
        return true;
    default:
        return false;
    }
}

/* ---- shapes ---- */

Shape shape_unknown(void)
{
    Shape s;
    memset(&s, 0, sizeof s);
    s.rank = -1;
    return s;
}

Shape shape_scalar(void)
{
    Shape s;
    memset(&s, 0, sizeof s);
    return s;
}

Shape shape_make(int rank, const int64_t *dims)
{
    Shape s = shape_scalar();
    s.rank = rank;
    for (int i = 0; i < rank && i < IR_MAX_RANK; i++)
        s.dim[i] = dims ? dims[i] : -1;
    return s;
}

bool shape_is_static(const Shape *s)
{
    if (s->rank < 0)
        return false;
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] < 0)
            return false;
    return true;
}

bool shape_equal(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++) {
        if (a->dim[i] != b->dim[i])
            return false;
        if (a->dim[i] < 0 && !(a->sym[i] && b->sym[i] && strcmp(a->sym[i], b->sym[i]) == 0))
            return false;
    }
    return true;
}

bool shape_numel(const Shape *s, size_t *out)
{
    if (!shape_is_static(s))
        return false;
    size_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (!size_mul(n, (size_t)s->dim[i], &n))
            return false;
    *out = n;
    return true;
}

char *shape_str(const Shape *s, char *buf, size_t bufsize)
{
    if (bufsize == 0)
        return buf;
    if (s->rank < 0) {
        snprintf(buf, bufsize, "[?]");
        return buf;
    }
    size_t n = 0;
    n += (size_t)snprintf(buf + n, bufsize - n, "[");
    for (int i = 0; i < s->rank && n < bufsize; i++) {
        const char *sep = i ? "," : "";
        if (s->dim[i] >= 0)
            n += (size_t)snprintf(buf + n, bufsize - n, "%s%lld", sep, (long long)s->dim[i]);
        else
            n += (size_t)snprintf(buf + n, bufsize - n, "%s%s", sep, s->sym[i] ? s->sym[i] : "?");
    }
    if (n < bufsize)
        snprintf(buf + n, bufsize - n, "]");
    return buf;
}

/* ---- tensors ---- */

Tensor *tensor_new(Arena *a, DType t, const Shape *s)
{
    size_t numel, nbytes;
    if (!shape_numel(s, &numel) || dtype_size(t) == 0 || !size_mul(numel, dtype_size(t), &nbytes))
        return NULL;
    Tensor *tn = arena_alloc(a, sizeof *tn);
    if (!tn)
        return NULL;
    tn->dtype = t;
    tn->shape = *s;
    tn->numel = numel;
    tn->nbytes = nbytes;
    if (nbytes) {
        tn->data = arena_alloc(a, nbytes);
        if (!tn->data)
            return NULL;
    }
    if (t == DT_STRING) {
        tn->str_len = arena_calloc(a, numel ? numel : 1, sizeof(size_t));
        if (!tn->str_len)
            return NULL;
        for (size_t i = 0; i < numel; i++)
            ((const char **)tn->data)[i] = "";
    }
    return tn;
}

double tensor_get_f64(const Tensor *t, size_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case DT_FLOAT: return ((const float *)p)[i];
    case DT_DOUBLE: return ((const double *)p)[i];
    case DT_FLOAT16: return half_to_float(((const uint16_t *)p)[i]);
    case DT_BFLOAT16: return bfloat16_to_float(((const uint16_t *)p)[i]);
    case DT_UINT8: return ((const uint8_t *)p)[i];
    case DT_BOOL: return ((const uint8_t *)p)[i] != 0;
    case DT_INT8: return ((const int8_t *)p)[i];
    case DT_UINT16: return ((const uint16_t *)p)[i];
    case DT_INT16: return ((const int16_t *)p)[i];
    case DT_INT32: return ((const int32_t *)p)[i];
    case DT_INT64: return (double)((const int64_t *)p)[i];
    case DT_UINT32: return ((const uint32_t *)p)[i];
    case DT_UINT64: return (double)((const uint64_t *)p)[i];
    default: return NAN;
    }
}

int64_t tensor_get_i64(const Tensor *t, size_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case DT_INT64: return ((const int64_t *)p)[i];
    case DT_INT32: return ((const int32_t *)p)[i];
    case DT_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case DT_UINT32: return ((const uint32_t *)p)[i];
    case DT_INT16: return ((const int16_t *)p)[i];
    case DT_UINT16: return ((const uint16_t *)p)[i];
    case DT_INT8: return ((const int8_t *)p)[i];
    case DT_UINT8: return ((const uint8_t *)p)[i];
    case DT_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: {
        double v = tensor_get_f64(t, i);
        /* float -> int truncates toward zero, as a C cast would; clamp what cannot fit */
        if (isnan(v))
            return 0;
        if (v >= 9.2233720368547758e18)
            return INT64_MAX;
        if (v <= -9.2233720368547758e18)
            return INT64_MIN;
        return (int64_t)v;
    }
    }
}

void tensor_set_f64(Tensor *t, size_t i, double v)
{
    void *p = t->data;
    switch (t->dtype) {
    case DT_FLOAT: ((float *)p)[i] = (float)v; break;
    case DT_DOUBLE: ((double *)p)[i] = v; break;
    case DT_FLOAT16: ((uint16_t *)p)[i] = float_to_half((float)v); break;
    case DT_BFLOAT16: ((uint16_t *)p)[i] = float_to_bfloat16((float)v); break;
    case DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: tensor_set_i64(t, i, (int64_t)v); break;
    }
}

void tensor_set_i64(Tensor *t, size_t i, int64_t v)
{
    void *p = t->data;
    switch (t->dtype) {
    case DT_INT64: ((int64_t *)p)[i] = v; break;
    case DT_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case DT_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case DT_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case DT_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case DT_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case DT_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case DT_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: tensor_set_f64(t, i, (double)v); break;
    }
}

/* ---- 16-bit floats ---- */

float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = (float)man * 5.9604644775390625e-8f;
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal, round to nearest even */
        float a;
        memcpy(&a, &absx, sizeof a);
        float scaled = a * 16777216.0f; /* a / 2^-24 */
        float r = nearbyintf(scaled);
        return (uint16_t)(sign | (uint16_t)r);
    }
    uint32_t e = ((absx >> 23) - 112) << 10, m = (absx >> 13) & 0x3ff;
    uint32_t h = e | m, rest = absx & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float bfloat16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t float_to_bfloat16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1); /* round to nearest even */
    return (uint16_t)(x >> 16);
}
