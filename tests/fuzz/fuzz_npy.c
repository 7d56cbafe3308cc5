/* fuzz_npy.c - libFuzzer harness for data/npy.c: any bytes through npy_parse (memory), npy_read (a file)
 * and npy_map (a mapped file) must give the same status, and on success the same dtype, dims and data,
 * with numel * dtype size == nbytes; never a crash, leak or read past the input. Built with
 * tests/fuzz/replay.c instead of libFuzzer it replays files (CTest: fuzz_npy_replay).
 */
#include "data.h"
#include "fuzz_file.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The invariants of a parsed array; returns a checksum of its bytes so nothing is optimised away. */
static size_t check_array(const NpyArray *a)
{
    size_t numel = 1;
    if (a->rank < 0 || a->rank > RT_MAX_RANK)
        abort();
    for (int i = 0; i < a->rank; i++)
        numel *= a->dims[i];
    if (numel != a->numel || a->numel * rt_dtype_size(a->dtype) != a->nbytes || !a->data)
        abort();
    if ((uintptr_t)a->data % rt_dtype_size(a->dtype) != 0)
        abort(); /* aligned for its dtype, as the header promises */
    size_t sum = 0;
    const uint8_t *p = a->data;
    for (size_t i = 0; i < a->nbytes; i++)
        sum += p[i];
    if (a->dtype == RT_BOOL)
        for (size_t i = 0; i < a->nbytes; i++)
            if (p[i] > 1)
                abort(); /* bools are 0 or 1 once read */
    return sum;
}

static void same(const NpyArray *a, const NpyArray *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes ||
        memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]) != 0 ||
        memcmp(a->data, b->data, a->nbytes) != 0)
        abort(); /* the three readers agree */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    NpyArray a, r, m;
    char err[512];
    err[0] = 0;
    NpyStatus st = npy_parse(data, size, &a, err, sizeof err);
    if (st != NPY_OK && (!err[0] || a.data))
        abort(); /* failures say why and leave nothing allocated */
    volatile size_t sink = st == NPY_OK ? check_array(&a) : 0;
    const char *path = fuzz_file(data, size);
    NpyStatus sr = npy_read(path, &r, err, sizeof err);
    NpyStatus sm = npy_map(path, &m, err, sizeof err);
    if (sr != st || sm != st)
        abort();
    if (st == NPY_OK) {
        sink += check_array(&r) + check_array(&m);
        same(&a, &r);
        same(&a, &m);
    }
    (void)sink;
    npy_free(&a);
    npy_free(&r);
    npy_free(&m);
    return 0;
}
