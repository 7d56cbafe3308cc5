/* fuzz_image.c - libFuzzer harness for data/image.c: a PNG or JPEG file through image_check,
 * image_decode and image_transform (resize, crop, flip, normalise) must give a status and a message, or
 * pixels of the size it reports; never a crash, leak, read past the input or a hang. The first 4 bytes
 * choose the transform, the rest is the file:
 *   byte 0: bit 0 RGB (else grey), bit 1 --crop, bit 2 --augment crop, bit 3 --augment flip, bits 4-7 the
 *           sample index (augmentation draws); byte 1: height 1 + b % 48; byte 2: width 1 + b % 48;
 *   byte 3: --resize b % 80 (0: none).
 * Scratch buffers are kept between inputs, as a loading thread keeps them. Built with
 * tests/fuzz/replay.c instead of libFuzzer it replays files (CTest: fuzz_image_replay).
 */
#include "data.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ImageWork work;  /* grows to the largest image seen, as in a loading thread */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    ImageTransform tf;
    size_t channels = data[0] & 1 ? 3 : 1;
    image_transform_default(&tf, channels, 1 + data[1] % 48u, 1 + data[2] % 48u);
    tf.crop = data[0] & 2;
    tf.augment_crop = data[0] & 4;
    tf.augment_flip = data[0] & 8;
    tf.resize = data[3] % 80u;
    tf.seed = 7;
    const uint8_t *file = data + 4;
    size_t len = size - 4;

    char err[512];
    err[0] = 0;
    ImageStatus checked = image_check(file, len, channels, &work, err, sizeof err);
    if (checked != IMAGE_OK && !err[0])
        abort(); /* failures say why */
    err[0] = 0;
    ImageStatus st = image_decode(file, len, channels, &work, err, sizeof err);
    if (st != IMAGE_OK && !err[0])
        abort();
    if (st == IMAGE_OK) {
        const Image *img = &work.decoded;
        if (img->channels != channels || !img->width || !img->height || !img->pixels ||
            img->width * img->height * channels > img->capacity)
            abort(); /* what image_decode promises */
        volatile unsigned sink = img->pixels[0] + img->pixels[img->width * img->height * channels - 1];
        (void)sink;
    }
    if ((st == IMAGE_OK) != (checked == IMAGE_OK))
        abort(); /* image_check predicts image_decode (dataset validation relies on it) */
    if (st != IMAGE_OK)
        return 0;

    size_t n = tf.channels * tf.height * tf.width;
    float *out = malloc(n * sizeof *out);
    if (!out)
        return 0;
    err[0] = 0;
    st = image_transform(&tf, file, len, 1, data[0] >> 4, out, &work, err, sizeof err);
    if (st != IMAGE_OK && !err[0])
        abort();
    for (size_t i = 0; st == IMAGE_OK && i < n; i++)
        if (!isfinite(out[i]) || fabsf(out[i]) > 3.0f)
            abort(); /* ImageNet-normalised bytes lie within about [-2.2, 2.7] */
    free(out);
    return 0;
}
