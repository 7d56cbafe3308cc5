/* image.c - PNG (libpng) and JPEG (libjpeg-turbo) decoding into 8-bit pixels, and torchvision's image
 * transforms on them, bit-exact with what ImageFolder + PIL + torchvision 0.14 compute: Resize (PIL's
 * bilinear, antialiased when shrinking), CenterCrop / RandomCrop, RandomHorizontalFlip, ToTensor, Normalize.
 * It does not read other formats, CMYK JPEGs, EXIF orientation or colour profiles; 16-bit PNGs keep their
 * high byte (PIL's way for RGB; PIL clips 16-bit grayscale instead).
 */
#include "data.h"

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PIL refuses images above twice Image.MAX_IMAGE_PIXELS (a decompression bomb): so do we. */
#define IMAGE_MAX_PIXELS ((size_t)2 * 89478485)

static ImageStatus fail(ImageStatus st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *image_status_name(ImageStatus st)
{
    switch (st) {
    case IMAGE_OK: return "ok";
    case IMAGE_ECORRUPT: return "corrupt image";
    case IMAGE_EUNSUPPORTED: return "unsupported image";
    case IMAGE_ENOMEM: return "out of memory";
    }
    return "?";
}

/* Grow-only buffer: *p holds at least n bytes afterwards. */
static bool reserve(void **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return true;
    void *q = realloc(*p, n);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

static bool image_alloc(Image *img, size_t width, size_t height, size_t channels)
{
    if (width && height > SIZE_MAX / width / channels)
        return false;
    if (!reserve((void **)&img->pixels, &img->capacity, width * height * channels + 1))
        return false;
    img->width = width;
    img->height = height;
    img->channels = channels;
    return true;
}

void image_work_free(ImageWork *w)
{
    if (!w)
        return;
    free(w->decoded.pixels);
    free(w->resized.pixels);
    free(w->final.pixels);
    free(w->temp.pixels);
    free(w->rows);
    free(w->weights);
    for (int a = 0; a < 2; a++) {
        free(w->coef[a]);
        free(w->bounds[a]);
    }
    free(w->file);
    memset(w, 0, sizeof *w);
}

/* PIL's convert("L") of RGB pixels (ITU-R 601-2 luma, its 16-bit fixed point), in place: 3 -> 1 channels. */
static void rgb_to_luma(Image *img)
{
    size_t n = img->width * img->height;
    uint8_t *p = img->pixels;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(((uint32_t)p[3 * i] * 19595 + (uint32_t)p[3 * i + 1] * 38470 +
                          (uint32_t)p[3 * i + 2] * 7471 + 0x8000) >> 16);
    img->channels = 1;
}

/* ------------------------------------------------------------------------ PNG */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    char *err;
    size_t errlen;
} PngSource;

static void png_on_error(png_structp png, png_const_charp msg)
{
    PngSource *s = png_get_error_ptr(png);
    fail(IMAGE_ECORRUPT, s->err, s->errlen, "corrupt PNG: %s", msg);
    png_longjmp(png, 1);
}

/* libpng warns about harmless things (e.g. "iCCP: known incorrect sRGB profile"); PIL loads such files. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, png_size_t n)
{
    PngSource *s = png_get_io_ptr(png);
    if (n > s->len - s->pos)
        png_error(png, "the file ends early (truncated)");
    memcpy(out, s->buf + s->pos, n);
    s->pos += n;
}

/* The decode state lives in a struct, not in locals, so nothing is clobbered by the longjmp. */
typedef struct {
    png_structp png;
    png_infop info;
    PngSource src;
    ImageStatus st;
} PngJob;

static ImageStatus decode_png(PngJob *j, size_t channels, ImageWork *w)
{
    Image *img = &w->decoded;
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j->src, png_on_error, png_on_warning);
    if (!j->png || !(j->info = png_create_info_struct(j->png))) {
        png_destroy_read_struct(j->png ? &j->png : NULL, NULL, NULL);
        return fail(IMAGE_ENOMEM, j->src.err, j->src.errlen, "cannot allocate a PNG decoder");
    }
    j->st = IMAGE_ECORRUPT;
    if (setjmp(png_jmpbuf(j->png))) {
        png_destroy_read_struct(&j->png, &j->info, NULL);
        return j->st;
    }
    png_set_read_fn(j->png, &j->src, png_read_mem);
    png_read_info(j->png, j->info);
    png_uint_32 width = png_get_image_width(j->png, j->info), height = png_get_image_height(j->png, j->info);
    int color = png_get_color_type(j->png, j->info), depth = png_get_bit_depth(j->png, j->info);
    if ((size_t)width * height > IMAGE_MAX_PIXELS) {
        j->st = fail(IMAGE_EUNSUPPORTED, j->src.err, j->src.errlen,
                     "PNG of %lux%lu pixels is above the limit of %zu", (unsigned long)width,
                     (unsigned long)height, IMAGE_MAX_PIXELS);
        png_longjmp(j->png, 1);
    }
    /* As PIL's convert("RGB"): palette -> RGB, low bit depths scaled to 0..255, alpha (and a palette's
     * transparency) dropped. */
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(j->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(j->png);
    if (depth == 16)
        png_set_strip_16(j->png);
    bool palette_alpha = color == PNG_COLOR_TYPE_PALETTE && png_get_valid(j->png, j->info, PNG_INFO_tRNS);
    if ((color & PNG_COLOR_MASK_ALPHA) || palette_alpha)
        png_set_strip_alpha(j->png);   /* palette expansion turns tRNS into an alpha channel */
    bool gray = color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA;
    if (gray && channels == 3)
        png_set_gray_to_rgb(j->png);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    size_t got = png_get_channels(j->png, j->info);
    if (png_get_rowbytes(j->png, j->info) != (size_t)width * got || (got != 1 && got != 3)) {
        j->st = fail(IMAGE_EUNSUPPORTED, j->src.err, j->src.errlen, "PNG layout not handled (%zu channels)", got);
        png_longjmp(j->png, 1);
    }
    if (!image_alloc(img, width, height, got) ||
        !reserve((void **)&w->rows, &w->rows_cap, (size_t)height * sizeof *w->rows)) {
        j->st = fail(IMAGE_ENOMEM, j->src.err, j->src.errlen, "cannot allocate a %lux%lu image",
                     (unsigned long)width, (unsigned long)height);
        png_longjmp(j->png, 1);
    }
    for (size_t y = 0; y < height; y++)
        w->rows[y] = img->pixels + y * width * got;
    png_read_image(j->png, w->rows);
    png_destroy_read_struct(&j->png, &j->info, NULL);
    if (img->channels == 3 && channels == 1)
        rgb_to_luma(img);
    return IMAGE_OK;
}

/* ------------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *err;
    size_t errlen;
} JpegErr;

static void jpeg_on_error(j_common_ptr cinfo)
{
    JpegErr *e = (JpegErr *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    e->pub.format_message(cinfo, msg);
    fail(IMAGE_ECORRUPT, e->err, e->errlen, "corrupt JPEG: %s", msg);
    longjmp(e->jump, 1);
}

/* Warnings are ignored (as PIL does) except running out of data: libjpeg would pad the image with grey
 * where PIL raises "image file is truncated". */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        JpegErr *e = (JpegErr *)cinfo->err;
        fail(IMAGE_ECORRUPT, e->err, e->errlen, "corrupt JPEG: the file ends early (truncated)");
        longjmp(e->jump, 1);
    }
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    JpegErr jerr;
    ImageStatus st;
} JpegJob;

static ImageStatus decode_jpeg(JpegJob *j, const uint8_t *buf, size_t len, size_t channels, bool eighth,
                               ImageWork *w)
{
    Image *img = &w->decoded;
    j->cinfo.err = jpeg_std_error(&j->jerr.pub);
    j->jerr.pub.error_exit = jpeg_on_error;
    j->jerr.pub.emit_message = jpeg_on_message;
    j->st = IMAGE_ECORRUPT;
    if (setjmp(j->jerr.jump)) {
        jpeg_destroy_decompress(&j->cinfo);
        return j->st;
    }
    jpeg_create_decompress(&j->cinfo);
    jpeg_mem_src(&j->cinfo, buf, (unsigned long)len);
    jpeg_read_header(&j->cinfo, TRUE);
    J_COLOR_SPACE in = j->cinfo.jpeg_color_space;
    if (in != JCS_GRAYSCALE && in != JCS_YCbCr && in != JCS_RGB) {
        j->st = fail(IMAGE_EUNSUPPORTED, j->jerr.err, j->jerr.errlen,
                     "JPEG colour space %d (CMYK/YCCK) is not supported", (int)in);
        longjmp(j->jerr.jump, 1);
    }
    size_t width = j->cinfo.image_width, height = j->cinfo.image_height;
    if ((size_t)width * height > IMAGE_MAX_PIXELS) {
        j->st = fail(IMAGE_EUNSUPPORTED, j->jerr.err, j->jerr.errlen,
                     "JPEG of %zux%zu pixels is above the limit of %zu", width, height, IMAGE_MAX_PIXELS);
        longjmp(j->jerr.jump, 1);
    }
    /* PIL decodes colour JPEGs to RGB (libjpeg's defaults: islow DCT, fancy upsampling) and makes grey
     * from that RGB, not from the luma plane; grey JPEGs stay grey. */
    j->cinfo.out_color_space = in == JCS_GRAYSCALE && channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if (eighth) {   /* image_check: the whole stream is still entropy-decoded, only the IDCT shrinks */
        j->cinfo.scale_num = 1;
        j->cinfo.scale_denom = 8;
    }
    jpeg_start_decompress(&j->cinfo);
    width = j->cinfo.output_width;
    height = j->cinfo.output_height;
    size_t got = (size_t)j->cinfo.output_components;
    if (!image_alloc(img, width, height, got)) {
        j->st = fail(IMAGE_ENOMEM, j->jerr.err, j->jerr.errlen, "cannot allocate a %zux%zu image", width, height);
        longjmp(j->jerr.jump, 1);
    }
    while (j->cinfo.output_scanline < j->cinfo.output_height) {
        JSAMPROW row = img->pixels + (size_t)j->cinfo.output_scanline * width * got;
        jpeg_read_scanlines(&j->cinfo, &row, 1);
    }
    /* Every pixel is in; a missing EOI marker after them does not matter. */
    jpeg_abort_decompress(&j->cinfo);
    jpeg_destroy_decompress(&j->cinfo);
    if (got == 3 && channels == 1)
        rgb_to_luma(img);
    return IMAGE_OK;
}

static ImageStatus decode(const void *buf, size_t len, size_t channels, bool check, ImageWork *w, char *err,
                          size_t errlen)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = buf;
    if (channels != 1 && channels != 3)
        return fail(IMAGE_EUNSUPPORTED, err, errlen, "%zu channels: only 1 (grayscale) or 3 (RGB)", channels);
    if (len >= 8 && memcmp(b, png_sig, 8) == 0) {
        PngJob j;
        memset(&j, 0, sizeof j);
        j.src = (PngSource){b, len, 0, err, errlen};
        return decode_png(&j, channels, w);
    }
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) {
        JpegJob j;
        memset(&j, 0, sizeof j);
        j.jerr.err = err;
        j.jerr.errlen = errlen;
        return decode_jpeg(&j, b, len, channels, check, w);
    }
    if (len == 0)
        return fail(IMAGE_ECORRUPT, err, errlen, "empty file");
    return fail(IMAGE_EUNSUPPORTED, err, errlen, "neither a PNG nor a JPEG (unknown signature)");
}

ImageStatus image_decode(const void *buf, size_t len, size_t channels, ImageWork *w, char *err, size_t errlen)
{
    return decode(buf, len, channels, false, w, err, errlen);
}

ImageStatus image_check(const void *buf, size_t len, size_t channels, ImageWork *w, char *err, size_t errlen)
{
    return decode(buf, len, channels, true, w, err, errlen);
}

/* ------------------------------------------------------------------------ resize: PIL's bilinear */

/* PIL's 8-bit resampling: coefficients in fixed point with 22 fraction bits, rounded per pass. */
#define PIL_PRECISION_BITS (32 - 8 - 2)

static uint8_t pil_clip8(int32_t v)
{
    if (v >= (int32_t)(1u << PIL_PRECISION_BITS) << 8)
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PIL_PRECISION_BITS);
}

/* The triangle filter of one resampling axis, in_size -> out_size (PIL's precompute_coeffs and
 * normalize_coeffs_8bpc for the box [0, in_size)): output i reads inputs bounds[2i] .. + bounds[2i+1] with
 * fixed-point weights coef[i*ksize ..]. When shrinking, the filter widens by the scale (antialiasing).
 * axis 0 is horizontal, 1 vertical: each keeps its own buffers in w. */
static bool axis_coefficients(ImageWork *w, int axis, size_t in_size, size_t out_size, size_t *ksize_out)
{
    double scale = (double)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    size_t ksize = (size_t)ceil(support) * 2 + 1;
    if (out_size > SIZE_MAX / ksize / sizeof(double) ||
        !reserve((void **)&w->weights, &w->weights_cap, out_size * ksize * sizeof(double)) ||
        !reserve((void **)&w->coef[axis], &w->coef_cap[axis], out_size * ksize * sizeof(int32_t)) ||
        !reserve((void **)&w->bounds[axis], &w->bounds_cap[axis], out_size * 2 * sizeof(size_t)))
        return false;
    double *kd = w->weights;
    size_t *bounds = w->bounds[axis];
    for (size_t i = 0; i < out_size; i++) {
        double center = ((double)i + 0.5) * scale;
        double ss = 1.0 / filterscale, ww = 0.0;
        int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > (int64_t)in_size)
            hi = (int64_t)in_size;
        size_t count = (size_t)(hi - lo);
        double *k = kd + i * ksize;
        for (size_t x = 0; x < count; x++) {
            double t = ((double)x + (double)lo - center + 0.5) * ss;
            t = t < 0 ? -t : t;
            k[x] = t < 1.0 ? 1.0 - t : 0.0;
            ww += k[x];
        }
        for (size_t x = 0; x < count; x++)
            if (ww != 0.0)
                k[x] /= ww;
        for (size_t x = count; x < ksize; x++)
            k[x] = 0;
        bounds[2 * i] = (size_t)lo;
        bounds[2 * i + 1] = count;
    }
    int32_t *ki = w->coef[axis];
    for (size_t x = 0; x < out_size * ksize; x++) {
        double v = kd[x] * (double)(1 << PIL_PRECISION_BITS);
        ki[x] = (int32_t)(kd[x] < 0 ? -0.5 + v : 0.5 + v);
    }
    *ksize_out = ksize;
    return true;
}

/* One horizontal pass: dst [rows, out_w, c] from src rows row0.. [.., src->width, c]. */
static void resample_rows(Image *dst, const Image *src, size_t row0, size_t rows, size_t out_w, size_t ksize,
                          const int32_t *coef, const size_t *bounds)
{
    size_t c = src->channels;
    for (size_t y = 0; y < rows; y++) {
        const uint8_t *in = src->pixels + (row0 + y) * src->width * c;
        uint8_t *out = dst->pixels + y * out_w * c;
        for (size_t x = 0; x < out_w; x++) {
            const int32_t *k = coef + x * ksize;
            size_t lo = bounds[2 * x], count = bounds[2 * x + 1];
            for (size_t ch = 0; ch < c; ch++) {
                int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (size_t i = 0; i < count; i++)
                    ss += (int32_t)in[(lo + i) * c + ch] * k[i];
                out[x * c + ch] = pil_clip8(ss);
            }
        }
    }
}

/* One vertical pass: dst [out_h, width, c] from src [.., width, c], bounds relative to src's first row. */
static void resample_cols(Image *dst, const Image *src, size_t out_h, size_t ksize, const int32_t *coef,
                          const size_t *bounds)
{
    size_t c = src->channels, rowlen = src->width * c;
    for (size_t y = 0; y < out_h; y++) {
        const int32_t *k = coef + y * ksize;
        size_t lo = bounds[2 * y], count = bounds[2 * y + 1];
        uint8_t *out = dst->pixels + y * rowlen;
        for (size_t x = 0; x < rowlen; x++) {
            int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
            for (size_t i = 0; i < count; i++)
                ss += (int32_t)src->pixels[(lo + i) * rowlen + x] * k[i];
            out[x] = pil_clip8(ss);
        }
    }
}

ImageStatus image_resize(Image *dst, const Image *src, size_t width, size_t height, ImageWork *w)
{
    if (!width || !height || !src->width || !src->height || dst == src)
        return IMAGE_EUNSUPPORTED;
    size_t c = src->channels;
    if (width == src->width && height == src->height) {
        if (!image_alloc(dst, width, height, c))
            return IMAGE_ENOMEM;
        memcpy(dst->pixels, src->pixels, width * height * c);
        return IMAGE_OK;
    }
    /* PIL: the vertical coefficients first (they tell which source rows the horizontal pass needs), then
     * horizontal into a temporary of those rows, then vertical; a pass whose size does not change is skipped. */
    const Image *in = src;
    size_t kv = 0, kh = 0, row_first = 0, row_last = src->height;
    bool vertical = height != src->height, horizontal = width != src->width;
    if (vertical) {
        if (!axis_coefficients(w, 1, src->height, height, &kv))
            return IMAGE_ENOMEM;
        row_first = w->bounds[1][0];
        row_last = w->bounds[1][2 * height - 2] + w->bounds[1][2 * height - 1];
    }
    if (horizontal) {
        Image *tmp = vertical ? &w->temp : dst;
        if (!axis_coefficients(w, 0, src->width, width, &kh) || !image_alloc(tmp, width, row_last - row_first, c))
            return IMAGE_ENOMEM;
        resample_rows(tmp, src, row_first, row_last - row_first, width, kh, w->coef[0], w->bounds[0]);
        for (size_t i = 0; vertical && i < height; i++)
            w->bounds[1][2 * i] -= row_first;
        in = tmp;
    }
    if (vertical) {
        if (!image_alloc(dst, in->width, height, c))
            return IMAGE_ENOMEM;
        resample_cols(dst, in, height, kv, w->coef[1], w->bounds[1]);
    }
    return IMAGE_OK;
}

/* ------------------------------------------------------------------------ transforms */

void image_transform_default(ImageTransform *tf, size_t channels, size_t height, size_t width)
{
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    memset(tf, 0, sizeof *tf);
    tf->channels = channels;
    tf->height = height;
    tf->width = width;
    for (size_t c = 0; c < 3; c++) {
        tf->mean[c] = channels == 3 ? imagenet_mean[c] : 0.0f;
        tf->std[c] = channels == 3 ? imagenet_std[c] : 1.0f;
    }
}

/* splitmix64's output function (Steele, Lea, Flood 2014). */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define GOLDEN64 0x9E3779B97F4A7C15ull

uint64_t image_augment_draw(uint64_t seed, uint64_t epoch, uint64_t index, unsigned k)
{
    uint64_t key = mix64(mix64(mix64(seed + GOLDEN64) + epoch) + index);
    return mix64(key + GOLDEN64 * ((uint64_t)k + 1));
}

/* Python's round() of diff / 2 (half to even), torchvision's CenterCrop offset. */
static size_t half_round_even(size_t diff)
{
    size_t q = diff / 2;
    return diff % 2 && q % 2 ? q + 1 : q;
}

/* Offset of the crop window in the image along one axis (negative: zero padding before the image). */
static int64_t crop_offset(size_t have, size_t want, bool random, uint64_t draw)
{
    if (have < want)
        return -(int64_t)((want - have) / 2);   /* CenterCrop pads (want-have)//2 before, the rest after */
    if (random)
        return (int64_t)(draw % (uint64_t)(have - want + 1));
    return (int64_t)half_round_even(have - want);
}

void image_augment_choice(const ImageTransform *tf, uint64_t epoch, uint64_t index, size_t img_h, size_t img_w,
                          int64_t *top, int64_t *left, bool *flip)
{
    bool rc = tf->augment_crop;
    *top = crop_offset(img_h, tf->height, rc, image_augment_draw(tf->seed, epoch, index, 1));
    *left = crop_offset(img_w, tf->width, rc, image_augment_draw(tf->seed, epoch, index, 2));
    *flip = tf->augment_flip && (image_augment_draw(tf->seed, epoch, index, 0) >> 63);
}

/* torchvision's Resize(R) output size: the shorter side becomes R, the longer int(R * long / short). */
static void resize_dims(size_t r, size_t h, size_t w, size_t *oh, size_t *ow)
{
    if (w <= h) {
        *ow = r;
        *oh = (size_t)((double)r * (double)h / (double)w);
    } else {
        *oh = r;
        *ow = (size_t)((double)r * (double)w / (double)h);
    }
}

ImageStatus image_transform(const ImageTransform *tf, const void *file, size_t len, uint64_t epoch, uint64_t index,
                            float *out, ImageWork *w, char *err, size_t errlen)
{
    ImageStatus st = image_decode(file, len, tf->channels, w, err, errlen);
    if (st != IMAGE_OK)
        return st;
    const Image *img = &w->decoded;
    if (tf->resize) {
        size_t oh, ow;
        resize_dims(tf->resize, img->height, img->width, &oh, &ow);
        if (!oh || !ow)
            return fail(IMAGE_EUNSUPPORTED, err, errlen, "a %zux%zu image resizes to nothing", img->width, img->height);
        if (oh != img->height || ow != img->width) {
            if ((st = image_resize(&w->resized, img, ow, oh, w)) != IMAGE_OK)
                return fail(st, err, errlen, "cannot resize a %zux%zu image", img->width, img->height);
            img = &w->resized;
        }
    }
    if (!tf->crop && !tf->augment_crop && (img->height != tf->height || img->width != tf->width)) {
        if ((st = image_resize(&w->final, img, tf->width, tf->height, w)) != IMAGE_OK)
            return fail(st, err, errlen, "cannot resize a %zux%zu image", img->width, img->height);
        img = &w->final;
    }
    int64_t top, left;
    bool flip;
    image_augment_choice(tf, epoch, index, img->height, img->width, &top, &left, &flip);

    /* crop (zero outside the image), flip, ToTensor (/255 in float32), Normalize ((x - mean) / std) */
    size_t c = tf->channels, H = tf->height, W = tf->width;
    for (size_t ch = 0; ch < c; ch++) {
        float mean = tf->mean[ch], sd = tf->std[ch];
        float zero = (0.0f - mean) / sd;
        for (size_t y = 0; y < H; y++) {
            float *o = out + (ch * H + y) * W;
            int64_t sy = top + (int64_t)y;
            if (sy < 0 || sy >= (int64_t)img->height) {
                for (size_t x = 0; x < W; x++)
                    o[x] = zero;
                continue;
            }
            const uint8_t *row = img->pixels + (size_t)sy * img->width * c + ch;
            for (size_t x = 0; x < W; x++) {
                int64_t sx = left + (int64_t)(flip ? W - 1 - x : x);
                o[x] = sx < 0 || sx >= (int64_t)img->width ? zero
                                                           : ((float)row[(size_t)sx * c] / 255.0f - mean) / sd;
            }
        }
    }
    return IMAGE_OK;
}
