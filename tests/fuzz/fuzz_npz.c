/* fuzz_npz.c - libFuzzer harness for the .npz reader: any bytes through data/npz.c on the buffer
 * (zip_lookup, zip_member read and as if mapped, npy_member_header) and through dataset_open_arrays on
 * a file, read and memory-mapped, then a batch of samples; never a crash, leak or read past the input.
 * Built with tests/fuzz/replay.c instead of libFuzzer it replays files (CTest: fuzz_npz_replay).
 */
#include "data.h"
#include "fuzz_file.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const want[2][2] = {{"x.npy", "x"}, {"y.npy", "y"}};

/* The pieces on the buffer, as open_npz calls them. */
static void fuzz_pieces(const uint8_t *data, size_t size, bool mapped)
{
    char msg[512];
    ErrSink e = {"<buffer>", msg, sizeof msg};
    ZipEntry z[2];
    memset(z, 0, sizeof z);
    if (zip_lookup(data, size, want, z, &e) != DATASET_OK)
        return;
    for (int k = 0; k < 2; k++) {
        const uint8_t *member = NULL;
        void *owned = NULL;
        if (!z[k].found || zip_member(data, size, mapped, &z[k], want[k][0], &member, &owned, &e) != DATASET_OK) {
            free(owned);
            continue;
        }
        RtDType dt;
        int rank;
        size_t dims[RT_MAX_RANK], off;
        if (npy_member_header(member, (size_t)z[k].usize, want[k][0], &dt, &rank, dims, &off, &e) == DATASET_OK) {
            size_t nbytes = rt_dtype_size(dt);
            for (int i = 0; i < rank; i++)
                nbytes *= dims[i];
            if (rank < 0 || rank > RT_MAX_RANK || off + nbytes != z[k].usize)
                abort(); /* the header describes exactly the member's data */
            volatile uint8_t sink = nbytes ? member[off] ^ member[off + nbytes - 1] : 0;
            (void)sink;
        }
        free(owned);
    }
}

/* The whole path a training program takes: open, then a few samples spread over the data set. inputs:
 * as the inputs of a model with several, members x and y packed (dataset_open_inputs). */
static void fuzz_dataset(const char *path, size_t mmap_threshold, bool inputs)
{
    DatasetOptions o;
    dataset_options_default(&o);
    o.mmap_threshold = mmap_threshold;
    Dataset ds;
    char err[1024];
    err[0] = 0;
    const char *names[2] = {"x", "y"};
    DatasetStatus st = inputs ? dataset_open_inputs(&ds, 2, names, NULL, path, NULL, false, &o, err, sizeof err)
                              : dataset_open_arrays(&ds, path, NULL, &o, err, sizeof err);
    if (st != DATASET_OK) {
        if (!err[0])
            abort(); /* failures say why */
        return;
    }
    size_t idx[8], count = ds.n < 8 ? ds.n : 8;
    for (size_t k = 0; k < count; k++)
        idx[k] = ds.n <= 8 ? k : k * (ds.n / 8) + (k == 7 ? ds.n % 8 : 0);
    void *x = malloc(count * ds.x.bytes + 1), *y = malloc(count * ds.y.bytes + 1);
    if (x && y && dataset_batch(&ds, idx, count, 0, x, y, err, sizeof err) != DATASET_OK)
        abort(); /* indices in range always load */
    free(x);
    free(y);
    if (ds.labels) {
        volatile int64_t sink = ds.n ? ds.labels[0] + ds.labels[ds.n - 1] : 0;
        (void)sink;
        dataset_check_labels(&ds, 10, err, sizeof err);
    }
    dataset_close(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_pieces(data, size, false);
    fuzz_pieces(data, size, true);
    const char *path = fuzz_file(data, size);
    fuzz_dataset(path, SIZE_MAX, false);   /* read into memory */
    fuzz_dataset(path, 0, false);          /* memory-mapped */
    fuzz_dataset(path, SIZE_MAX, true);    /* several inputs: x and y as two */
    return 0;
}
