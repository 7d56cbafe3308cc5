/* import_wire.c - just enough of the protobuf wire format to walk fields without decoding them:
 * bounds message nesting before protobuf-c (which recurses without limit) sees the bytes, and cuts
 * the top graph's initializers out of a ModelProto so each can be decoded on its own.
 * It decodes nothing itself: protobuf-c does.
 */
#include "import_priv.h"

#include "common.h"

#include <stdlib.h>
#include <string.h>

/* Nesting of protobuf messages we accept: subgraphs nest 3 messages per level (graph, node,
 * attribute), so this allows ~30 levels of If/Loop while keeping protobuf-c's recursion bounded. */
#define MAX_MESSAGE_DEPTH 100

typedef struct WireField {
    uint32_t num;
    int wt;                 /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    const uint8_t *start;   /* first byte of the tag */
    const uint8_t *val;     /* wt 2: the payload */
    size_t vlen;
    const uint8_t *end;     /* one past the field */
} WireField;

typedef struct WireError {
    const uint8_t *at;      /* where decoding failed */
    bool too_deep;
} WireError;

static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    size_t at = 0;
    if (!pb_varint_get(*p, (size_t)(end - *p), &at, out))
        return false;
    *p += at;
    return true;
}

static bool wire_next(const uint8_t **p, const uint8_t *end, WireField *f)
{
    uint64_t tag, n;
    f->start = *p;
    if (!wire_varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return false;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    f->val = NULL;
    f->vlen = 0;
    switch (f->wt) {
    case 0:
        if (!wire_varint(p, end, &n))
            return false;
        break;
    case 1:
    case 5:
        n = f->wt == 1 ? 8 : 4;
        if ((size_t)(end - *p) < n)
            return false;
        *p += n;
        break;
    case 2:
        if (!wire_varint(p, end, &n) || n > (uint64_t)(end - *p))
            return false;
        f->val = *p;
        f->vlen = (size_t)n;
        *p += n;
        break;
    default: /* groups (3, 4) are not used by ONNX and not supported by protobuf-c */
        return false;
    }
    f->end = *p;
    return true;
}

/* Check framing and nesting depth of a message of type `desc`, recursing into message fields. */
static bool wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                       int depth, WireError *err)
{
    if (depth > MAX_MESSAGE_DEPTH) {
        err->at = p;
        err->too_deep = true;
        return false;
    }
    while (p < end) {
        WireField f;
        if (!wire_next(&p, end, &f)) {
            err->at = f.start;
            return false;
        }
        if (f.wt != 2)
            continue;
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, f.num);
        if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
            !wire_check(fd->descriptor, f.val, f.val + f.vlen, depth + 1, err))
            return false;
    }
    return true;
}

/* Walk a GraphProto payload: bytes kept (everything but initializers), number of initializers; with
 * `o`, copy kept fields there and record initializer ranges (relative to `base`). */
static bool split_graph(const uint8_t *p, const uint8_t *end, const uint8_t *base, int depth,
                        bool check, uint8_t **o, Range *inits, size_t *kept, size_t *ninits,
                        WireError *err)
{
    const ProtobufCFieldDescriptor *init_fd =
        protobuf_c_message_descriptor_get_field_by_name(&onnx__graph_proto__descriptor, "initializer");
    *kept = 0;
    while (p < end) {
        WireField f;
        if (!wire_next(&p, end, &f)) {
            err->at = f.start;
            return false;
        }
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(&onnx__graph_proto__descriptor, f.num);
        if (check && f.wt == 2 && fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
            !wire_check(fd->descriptor, f.val, f.val + f.vlen, depth + 1, err))
            return false;
        if (f.num == init_fd->id && f.wt == 2) {
            if (inits)
                inits[*ninits] = (Range){(size_t)(f.val - base), f.vlen};
            (*ninits)++;
            continue;
        }
        *kept += (size_t)(f.end - f.start);
        if (o) {
            memcpy(*o, f.start, (size_t)(f.end - f.start));
            *o += f.end - f.start;
        }
    }
    return true;
}

Status import_split(Importer *im, const uint8_t *buf, size_t len, Split *sp)
{
    const ProtobufCFieldDescriptor *graph_fd =
        protobuf_c_message_descriptor_get_field_by_name(&onnx__model_proto__descriptor, "graph");
    const uint8_t *end = buf + len;
    WireError err = {buf, false};
    memset(sp, 0, sizeof *sp);
    /* pass 0 checks and measures, pass 1 copies */
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *o = sp->skel;
        size_t total = 0, ninits = 0;
        for (const uint8_t *p = buf; p < end;) {
            WireField f;
            if (!wire_next(&p, end, &f)) {
                err.at = f.start;
                goto bad;
            }
            if (f.num == graph_fd->id && f.wt == 2) {
                size_t kept, n0 = ninits;
                if (!split_graph(f.val, f.val + f.vlen, buf, 1, pass == 0, NULL, NULL, &kept, &ninits,
                                 &err))
                    goto bad;
                uint64_t key = (uint64_t)graph_fd->id << 3 | 2;
                total += pb_varint_len(key) + pb_varint_len(kept) + kept;
                if (pass == 1) {
                    o += pb_varint_put(o, key);
                    o += pb_varint_put(o, kept);
                    ninits = n0;
                    split_graph(f.val, f.val + f.vlen, buf, 1, false, &o, sp->inits, &kept, &ninits, &err);
                }
                continue;
            }
            const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field(&onnx__model_proto__descriptor, f.num);
            if (pass == 0 && f.wt == 2 && fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                !wire_check(fd->descriptor, f.val, f.val + f.vlen, 1, &err))
                goto bad;
            total += (size_t)(f.end - f.start);
            if (pass == 1) {
                memcpy(o, f.start, (size_t)(f.end - f.start));
                o += f.end - f.start;
            }
        }
        if (pass == 0) {
            sp->skel_len = total;
            sp->ninits = ninits;
            sp->skel = malloc(total ? total : 1);
            sp->inits = arena_calloc(im->tmp, ninits ? ninits : 1, sizeof *sp->inits);
            if (!sp->skel || !sp->inits) {
                free(sp->skel);
                sp->skel = NULL;
                return diag_error(im->d, ST_NOMEM, "out of memory reading the model");
            }
        }
    }
    return ST_OK;
bad:
    if (err.too_deep)
        return diag_error(im->d, ST_UNSUPPORTED, "messages nested more than %d deep (at byte %zu): "
                          "refusing to decode", MAX_MESSAGE_DEPTH, (size_t)(err.at - buf));
    return diag_error(im->d, ST_PARSE, "not an ONNX model: the bytes are not a valid protobuf "
                      "(truncated or corrupt field at byte %zu of %zu)", (size_t)(err.at - buf), len);
}
