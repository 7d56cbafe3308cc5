/* data.h - the public header of data/: what a program reads and writes besides its weights. NPY
 * files, .npz archives, image files (JPEG, PNG) and their torchvision-style transforms, image folders,
 * the training datasets and their prefetching. Unlike the kernels these can fail: they return a status
 * and write a one-line message. Only this folder links libjpeg, libpng, zlib and pthreads; an
 * inference program uses the NPY reader and writer alone. */
#ifndef ONNXTUNE_DATA_H
#define ONNXTUNE_DATA_H

#include "kernels.h"

/* ======================================================================== data/npy.c */

/* NumPy .npy files (format 1.0, 2.0, 3.0), C order, little-endian; dtypes float16/32/64,
 * int8/16/32/64, uint8/16/32/64, bool. Unlike the kernels these can fail: they return an NpyStatus
 * and write a one-line message naming the file and the fault into err[errlen] (err may be NULL). */
typedef enum {
    NPY_OK = 0,
    NPY_EIO,            /* open/read/write/fsync/rename failed (errno text in the message) */
    NPY_EFORMAT,        /* not a valid .npy: bad magic, header, size, truncated data */
    NPY_EUNSUPPORTED,   /* valid but not handled: Fortran order, big-endian, other dtypes, rank > 8 */
    NPY_ENOMEM,         /* allocation failed or the size overflows */
} NpyStatus;

typedef struct NpyArray {
    RtDType dtype;
    int rank;                   /* 0 for a 0-d array (one element) */
    size_t dims[RT_MAX_RANK];
    size_t numel;
    size_t nbytes;              /* numel * rt_dtype_size(dtype) */
    void *data;                 /* C order, aligned for dtype; owned (see npy_free) */
    void *map_;                 /* private: the mapping of npy_map, or NULL */
    size_t map_len_;
} NpyArray;

/* Parse a whole .npy image held in memory; copies the data (safe for fuzzing). */
NpyStatus npy_parse(const void *buf, size_t len, NpyArray *out, char *err, size_t errlen);
/* Read a file into malloc'd memory. */
NpyStatus npy_read(const char *path, NpyArray *out, char *err, size_t errlen);
/* Map a file read-only (data is then read-only too; falls back to npy_read when the data offset is
 * not aligned for the dtype). For large inputs that data loaders stream through. */
NpyStatus npy_map(const char *path, NpyArray *out, char *err, size_t errlen);
/* Release what npy_parse/read/map allocated; zeroes *a. Safe on a zeroed or failed NpyArray. */
void npy_free(NpyArray *a);
/* Write with common.h's atomic write (PATH.tmp.PID, fsync, rename, fsync of the folder), so readers
 * never see half a file, also after a crash. dims[rank], data C order. */
NpyStatus npy_write(const char *path, RtDType dt, int rank, const size_t *dims, const void *data, char *err,
                    size_t errlen);
const char *npy_status_name(NpyStatus st);

/* ======================================================================== data/image.c */

/* Image files for the data loaders: PNG (libpng) and JPEG (libjpeg-turbo) decoded to 8-bit pixels as PIL
 * gives them, then torchvision's transforms, bit-exact with ImageFolder + PIL + torchvision 0.14:
 *   decode -> [Grayscale] -> Resize(resize) -> CenterCrop | RandomCrop -> RandomHorizontalFlip
 *   -> ToTensor -> Normalize(mean, std).
 * These can fail: an ImageStatus and a one-line message in err[errlen] (err may be NULL). */
typedef enum {
    IMAGE_OK = 0,
    IMAGE_ECORRUPT,         /* unreadable, truncated or damaged file */
    IMAGE_EUNSUPPORTED,     /* not PNG/JPEG, a CMYK JPEG, above 2 * 89478485 pixels (PIL's bomb limit) */
    IMAGE_ENOMEM,
} ImageStatus;
const char *image_status_name(ImageStatus st);

/* 8-bit pixels, interleaved [height, width, channels]; channels 1 (grey) or 3 (RGB). */
typedef struct Image {
    size_t width, height, channels;
    uint8_t *pixels;
    size_t capacity;            /* bytes allocated: buffers grow, never shrink */
} Image;

/* Scratch of one loading thread, zero-initialised; every buffer grows to the largest image seen and is
 * then reused (libpng and libjpeg still allocate their own state per file). Free with image_work_free. */
typedef struct ImageWork {
    Image decoded, resized, final, temp;
    uint8_t **rows;             /* PNG row pointers */
    size_t rows_cap;
    double *weights;            /* resampling weights before fixed point */
    size_t weights_cap;
    int32_t *coef[2];           /* fixed-point resampling weights: [0] horizontal, [1] vertical */
    size_t coef_cap[2];
    size_t *bounds[2];
    size_t bounds_cap[2];
    uint8_t *file;              /* the file's bytes (dataset.c reads into it) */
    size_t file_cap;
} ImageWork;
void image_work_free(ImageWork *w);

/* Decode PNG or JPEG bytes buf[len] (format from the signature, not the name) into w->decoded with
 * channels 3 (PIL's convert("RGB"): palette expanded, grey replicated, alpha dropped, 16-bit PNG -> high
 * byte) or 1 (PIL's convert("L") of that RGB, (19595 R + 38470 G + 7471 B + 2^15) >> 16; grey stays grey).
 * A file that ends before its last pixel is corrupt (PIL: "image file is truncated"). */
ImageStatus image_decode(const void *buf, size_t len, size_t channels, ImageWork *w, char *err, size_t errlen);
/* Whether image_decode would succeed, cheaper: JPEGs are decoded at 1/8 scale (every byte of the
 * entropy-coded data is still read and checked), PNGs fully. w->decoded then holds a smaller image. */
ImageStatus image_check(const void *buf, size_t len, size_t channels, ImageWork *w, char *err, size_t errlen);

/* PIL's Image.resize((width, height), BILINEAR) of 8-bit pixels: separable triangle filter widened by the
 * scale when shrinking (antialiased), 22-bit fixed-point weights, rounded to 8 bits after each pass (the
 * horizontal pass first, over the rows the vertical pass needs). dst != src; same size copies. */
ImageStatus image_resize(Image *dst, const Image *src, size_t width, size_t height, ImageWork *w);

/* The transform of every sample of an image folder. image_transform_default: no resize, no crop, no
 * augmentation, ImageNet mean/std for 3 channels, mean 0 / std 1 (plain ToTensor) for 1 channel. */
typedef struct ImageTransform {
    size_t channels;            /* the model's C: 1 or 3 */
    size_t height, width;       /* the model's H, W: each sample comes out float32 [channels, height, width] */
    size_t resize;              /* --resize R: Resize(R), the shorter side to R, the longer int(R*long/short); 0: none */
    bool crop;                  /* --crop: CenterCrop((height, width)) after resizing (zero padding when smaller,
                                   as CenterCrop). Without crop or augment_crop an image not already
                                   height x width is resized to exactly that (Resize((H, W))). */
    bool augment_crop;          /* --augment crop: RandomCrop((height, width)) instead (implies cropping); where
                                   the image is smaller it is centred and zero padded as CenterCrop does */
    bool augment_flip;          /* --augment flip: RandomHorizontalFlip(0.5), after cropping */
    float mean[3], std[3];      /* Normalize: (x/255 - mean[c]) / std[c] in float32, as torchvision */
    uint64_t seed;              /* the run's --seed: augmentation comes from (seed, epoch, sample index) */
} ImageTransform;
void image_transform_default(ImageTransform *tf, size_t channels, size_t height, size_t width);

/* Decode file[len] and transform it into out[channels * height * width] (CHW). epoch and index pick the
 * augmentation (ignored without augment_*). */
ImageStatus image_transform(const ImageTransform *tf, const void *file, size_t len, uint64_t epoch,
                            uint64_t index, float *out, ImageWork *w, char *err, size_t errlen);

/* The augmentation draws: a counter-based hash, so any sample of any epoch is reproducible in any order
 * (resume, prefetch): key = m(m(m(seed + G) + epoch) + index), draw k = m(key + G (k + 1)), m splitmix64's
 * output function, G = 0x9E3779B97F4A7C15. Draw 0: flip when its top bit is 1; draws 1, 2: crop top and
 * left = draw % (image side - crop side + 1). */
uint64_t image_augment_draw(uint64_t seed, uint64_t epoch, uint64_t index, unsigned k);
/* The crop window (top, left; negative: zero padding before the image) and flip of one sample of an image
 * img_h x img_w (after Resize), as image_transform applies them. */
void image_augment_choice(const ImageTransform *tf, uint64_t epoch, uint64_t index, size_t img_h, size_t img_w,
                          int64_t *top, int64_t *left, bool *flip);

/* ======================================================================== data/dataset.c */

/* A training program's data, whatever its source: n samples, each an x (the model input's layout and
 * dtype, kept exactly) and a y (int64 class index or float32 targets), loaded in batches by index.
 *   dataset_open_arrays: X.npy + Y.npy, or one .npz (np.savez/np.savez_compressed with x= and y=). Files
 *     (and .npz archives) of at least mmap_threshold bytes are memory-mapped, not read, so a data set
 *     larger than memory trains (deflated .npz members are always inflated into memory; y always is).
 *     A mapped file must not be truncated while it is open (the process would get SIGBUS).
 *   dataset_open_images: an ImageFolder tree DIR/<class>/[sub/]<file>.png|.jpg|.jpeg (case-insensitive):
 *     classes are the sorted sub-folder names (or the list given, for a validation folder), files are
 *     sorted per class by (sub-folder, name) as torchvision lists them; x float32 [C, H, W] through
 *     image.c's transform, y int64 []. Unreadable images never stop a run: a folder of at most
 *     validate_limit files is checked when opened (image_check: 0.8 ms for a 500x375 JPEG) and the bad
 *     files are dropped (n excludes them);
 *     in a larger one a file that fails when loaded is replaced, deterministically, by the next readable
 *     sample in dataset order (with that sample's label). Both warn through the callback and count
 *     (dataset_skipped). Other image formats (.bmp .tif .webp ...) are counted in `ignored` and warned.
 * Library code: a DatasetStatus and a one-line message naming the file in err[errlen]; nothing printed. */
typedef enum {
    DATASET_OK = 0,
    DATASET_EIO,            /* cannot open/read/list */
    DATASET_EFORMAT,        /* malformed .npy/.npz/folder; x and y lengths differ; no readable image */
    DATASET_EUNSUPPORTED,   /* a dtype, compression or layout we do not read */
    DATASET_ENOMEM,
    DATASET_EINVAL,         /* a bad argument: index out of range, missing y file, bad transform */
} DatasetStatus;
const char *dataset_status_name(DatasetStatus st);

#define DATASET_MMAP_THRESHOLD ((size_t)256 << 20)  /* files from 256 MiB up are mapped */
#define DATASET_VALIDATE_LIMIT 10000                /* image folders up to this many files are checked at open */

typedef enum { DATASET_ARRAYS = 0, DATASET_IMAGES } DatasetKind;

/* One sample's x or y: the array's dtype and dims without the leading N. */
typedef struct DatasetSample {
    RtDType dtype;
    int rank;
    size_t dims[RT_MAX_RANK];
    size_t bytes;               /* of one sample */
} DatasetSample;

/* Warnings (skipped images); may be called from the prefetch or validation threads, one call per line. */
typedef void (*DatasetWarnFn)(void *ctx, const char *message);

typedef struct DatasetOptions {
    size_t mmap_threshold;      /* DATASET_MMAP_THRESHOLD; 0 maps every file, SIZE_MAX none */
    size_t validate_limit;      /* DATASET_VALIDATE_LIMIT; 0 never validates at open */
    ImageTransform transform;   /* image folders: the model's C, H, W and the transforms */
    const char *const *classes; /* image folders: map class folders onto these names (the training folder's
                                   class_names); NULL: the folder's own sorted list */
    size_t nclasses;
    int threads;                /* threads decoding at open; 0: the online CPUs, at most 8 */
    DatasetWarnFn warn;         /* NULL: warnings are only counted */
    void *warn_ctx;
} DatasetOptions;
void dataset_options_default(DatasetOptions *o);

typedef struct Dataset {
    int kind;                   /* DatasetKind */
    size_t n;                   /* samples */
    DatasetSample x, y;
    const int64_t *labels;      /* [n] when y is int64 with one value per sample (class indices), else NULL */
    size_t nclasses;            /* image folders: class_names[nclasses] (index = label) */
    char **class_names;
    bool mapped;                /* x is memory-mapped */
    size_t ignored;             /* image folders: files of other image formats */
    char *source;               /* the path opened, for messages */
    size_t nparts;              /* dataset_open_inputs: the inputs packed in x (0: x is one array) */
    DatasetSample part[16];     /* [nparts] (DATASET_MAX_PARTS) */
    struct DatasetImpl *impl_;  /* private */
} Dataset;

DatasetStatus dataset_open_arrays(Dataset *ds, const char *x_path, const char *y_path, const DatasetOptions *o,
                                  char *err, size_t errlen);   /* y_path NULL: x_path is an .npz */
/* Several inputs (a model with input_ids, attention_mask, ...): names[nparts] and either paths[nparts] (.npy
 * files) or npz, an archive whose members are named like the inputs (NAME.npy or NAME). Targets from
 * y_path, else the archive's y; none is an error when need_y, else y.bytes is 0 (predict). Every input and
 * y must have the same number of rows (the message names both files). x is then a packed sample, uint8
 * [sum]: input k's row at offset part_offset = the rows before it rounded up to 8 bytes each, in the
 * order given, with zero padding; part[k] is input k's sample. Files are mapped as dataset_open_arrays'. */
#define DATASET_MAX_PARTS 16
DatasetStatus dataset_open_inputs(Dataset *ds, size_t nparts, const char *const *names, const char *const *paths,
                                  const char *npz, const char *y_path, bool need_y, const DatasetOptions *o, char *err,
                                  size_t errlen);
DatasetStatus dataset_open_images(Dataset *ds, const char *dir, const DatasetOptions *o, char *err, size_t errlen);
void dataset_close(Dataset *ds);   /* safe on a zeroed or failed Dataset */

/* Samples indices[count] into x_out [count, x.dims...] and y_out [count, y.dims...] (either may be NULL),
 * in the dataset's dtypes. epoch keys the augmentation of image folders. Thread-safe: the prefetcher and
 * the caller may load from one Dataset at once; results never depend on timing. */
DatasetStatus dataset_batch(const Dataset *ds, const size_t *indices, size_t count, uint64_t epoch, void *x_out,
                            void *y_out, char *err, size_t errlen);
/* Every label in [0, nclasses) (the first one that is not is named). */
DatasetStatus dataset_check_labels(const Dataset *ds, int64_t nclasses, char *err, size_t errlen);
size_t dataset_skipped(const Dataset *ds);    /* unreadable images so far: at open and while loading */
const char *dataset_path(const Dataset *ds, size_t i);   /* image folders: sample i's file; else NULL */

/* Data order. The generator is splitmix64 (Steele, Lea, Flood 2014) from a 64-bit state; a shuffle is
 * Fisher-Yates: for i = n-1 down to 1, swap order[i] and order[j], j = splitmix64(&state) % (i + 1).
 * Epoch e (from 1) shuffles with state dataset_shuffle_state(seed, e) = seed * 2^20 + e, --val-split with
 * dataset_shuffle_state(seed, 0): trainer.c's choices, so results do not change when it calls these. */
uint64_t dataset_splitmix64(uint64_t *state);
uint64_t dataset_shuffle_state(uint64_t seed, uint64_t epoch);
void dataset_shuffle(size_t *order, size_t n, uint64_t state);
/* --val-split F of samples 0..n-1 into train[] and val[] (each [n] capacity, both ascending). labels NULL:
 * the first k = ceil(F n) (at most n - 1) of the seeded permutation validate. labels given (stratified):
 * each class, in the permutation's order, gives floor(F n_c + 0.5) (at most n_c - 1) to validation.
 * DATASET_EINVAL when F is not in (0, 1) or nothing would validate. */
DatasetStatus dataset_split(size_t n, const int64_t *labels, double fraction, uint64_t seed, size_t *train,
                            size_t *ntrain, size_t *val, size_t *nval, char *err, size_t errlen);

/* Loading ahead: a thread fills up to `depth` batches (2: a bounded queue of two) while the caller trains
 * on the one it holds; depth 0 loads in prefetcher_next itself. The batches, and so the training, are
 * identical either way. A pass: prefetcher_start copies order[n] and cuts it into batches of `batch`
 * (<= max_batch; the last one short); prefetcher_next returns them in order: x [count, ...] and y
 * [count, ...], 64-byte aligned, room for max_batch rows, writable (pad a short batch there), owned by
 * the caller until the next prefetcher_next/start; count 0 when the pass is done. A new start abandons
 * the rest of a pass (a run stopping mid-epoch). A load failure is returned by the prefetcher_next that
 * reaches its batch. */
typedef struct Prefetcher Prefetcher;
DatasetStatus prefetcher_open(Prefetcher **pf, const Dataset *ds, size_t max_batch, size_t depth, char *err,
                              size_t errlen);
DatasetStatus prefetcher_start(Prefetcher *pf, const size_t *order, size_t n, size_t batch, uint64_t epoch, char *err,
                               size_t errlen);
DatasetStatus prefetcher_next(Prefetcher *pf, void **x, void **y, size_t *count, char *err, size_t errlen);
void prefetcher_close(Prefetcher *pf);

/* ======================================================================== data/npz.c */

/* The .npz reader's pieces on an archive held in memory (dataset.c reads or maps the file). Where messages
 * go: "NAME: what went wrong" (no prefix when name is NULL); npy.c and dataset.c use it too. */
typedef struct {
    const char *name;
    char *err;
    size_t errlen;
} ErrSink;

/* Writes "NAME: " and the message into e's buffer (when it has one) and returns st. */
DatasetStatus data_fail(const ErrSink *e, DatasetStatus st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

typedef struct {
    bool found;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, local;   /* compressed and uncompressed sizes, local header offset */
} ZipEntry;

/* Find the members named want[0] or want[1] (x: "x.npy" or "x") from the central directory. */
DatasetStatus zip_lookup(const uint8_t *b, size_t len, const char *const want[2][2], ZipEntry out[2],
                         const ErrSink *e);
/* A member's bytes: stored members point into the archive, deflated ones are inflated into *owned.
 * The CRC-32 is checked unless the member is stored in a mapped archive (that would read it all now). */
DatasetStatus zip_member(const uint8_t *b, size_t len, bool mapped, const ZipEntry *z, const char *name,
                         const uint8_t **data, void **owned, const ErrSink *e);
/* The .npy header of a member. npy.c's parser copies the data, which a mapped member must avoid, so the
 * dict (descr, fortran_order, shape) is read here; anything unusual is refused, not guessed. */
DatasetStatus npy_member_header(const uint8_t *p, size_t len, const char *name, RtDType *dt, int *rank,
                                size_t *dims, size_t *data_off, const ErrSink *e);

#endif
