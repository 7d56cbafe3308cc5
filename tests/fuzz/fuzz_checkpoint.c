/* fuzz_checkpoint.c - libFuzzer harness for program/checkpoint.c's reader and what --resume does with a
 * checkpoint: ckpt_parse (memory) and ckpt_read (a file) must agree and either refuse with a message or
 * give sections that lie inside the file; every section is then fetched (ckpt_find, ckpt_get) and a
 * "history" section goes through plot_history_load and plot_svg. Random bytes rarely pass the CRC-32s,
 * so each input is also parsed a second time with its header and section CRCs recomputed, which takes
 * the fuzzer past them. Built with tests/fuzz/replay.c instead of libFuzzer it replays files (CTest:
 * fuzz_checkpoint_replay).
 */
#include "program.h"
#include "common.h"
#include "fuzz_file.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static size_t pad8(size_t n) { return (8 - n % 8) % 8; }

/* Recompute the CRCs of the header and of every section as far as the layout can be followed (the
 * layout comment at the top of checkpoint.c). */
static void fix_crcs(uint8_t *b, size_t len)
{
    if (len < 32)
        return;
    size_t dlen = get32(b + 24), at = 32 + dlen + pad8(dlen);
    if (dlen > 4096 || at > len)
        return;
    put32(b + 28, crc32_update(crc32_update(0, b, 28), b + 32, at - 32));
    for (uint32_t i = 0, count = get32(b + 12); i < count && len - at >= 24; i++) {
        uint8_t *h = b + at;
        size_t nlen = get32(h), hn = 24 + nlen + pad8(nlen);
        uint64_t size = get32(h + 8) | (uint64_t)get32(h + 12) << 32;
        if (nlen > 255 || hn > len - at)
            return;
        at += hn;
        if (size <= len - at)
            put32(h + 16, crc32_update(0, b + at, (size_t)size));
        put32(h + 20, crc32_update(crc32_update(0, h, 20), h + 24, hn - 24));
        if (size > len - at)
            return;
        at += (size_t)size + pad8((size_t)size);
        if (at > len)
            return;
    }
}

static void use(const Checkpoint *c)
{
    if (!c->id.description || strlen(c->id.description) > CKPT_MAX_DESCRIPTION)
        abort();
    for (size_t i = 0; i < c->count; i++) {
        const CkptSection *s = &c->sections[i];
        size_t nlen = strlen(s->name);
        if (nlen == 0 || nlen > CKPT_MAX_NAME || ckpt_find(c, s->name) != s || ((uintptr_t)s->data & 7))
            abort(); /* unique names, 8-byte aligned data */
        void *copy = malloc(s->size ? s->size : 1);
        if (copy && (ckpt_get(c, s->name, copy, s->size, NULL, 0) != CKPT_OK || memcmp(copy, s->data, s->size)))
            abort();
        free(copy);
        if (s->size && ckpt_get(c, s->name, NULL, s->size - 1, NULL, 0) != CKPT_EMISSING)
            abort(); /* another size is refused before anything is copied */
    }
    const CkptSection *h = ckpt_find(c, "history");
    PlotHistory hist;
    if (h && plot_history_load(&hist, h->data, h->size)) {
        size_t len;
        char *svg = plot_svg(&hist, "fuzz <&>", &len);
        if (svg && strlen(svg) != len)
            abort();
        free(svg);
        plot_history_free(&hist);
    }
}

static void parse(const uint8_t *data, size_t size, bool via_file)
{
    static const CkptIdentity other = {0x0123456789abcdefull, "the fuzzer's program"};
    char err[1024];
    Checkpoint c;
    err[0] = 0;
    CkptStatus st = ckpt_parse(data, size, "<fuzz>", NULL, &c, err, sizeof err);
    if (st != CKPT_OK && (!err[0] || c.buf_ || c.sections))
        abort(); /* failures say why and keep nothing */
    if (st == CKPT_OK)
        use(&c);
    Checkpoint e;
    CkptStatus se = ckpt_parse(data, size, "<fuzz>", &other, &e, err, sizeof err);
    if (st == CKPT_OK ? se != (c.id.fingerprint == other.fingerprint ? CKPT_OK : CKPT_EMISMATCH)
                      : se != st && se != CKPT_EMISMATCH)
        abort(); /* the same checks, and a valid file of another program is refused as such */
    ckpt_free(&c);
    ckpt_free(&e);
    if (via_file) {
        Checkpoint r;
        if (ckpt_read(fuzz_file(data, size), NULL, &r, err, sizeof err) != st)
            abort(); /* file and memory agree */
        ckpt_free(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size, true);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed)
        return 0;
    memcpy(fixed, data, size);
    fix_crcs(fixed, size);
    parse(fixed, size, false);
    free(fixed);
    return 0;
}
