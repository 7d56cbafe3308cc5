/* resize.c - ONNX Resize (and Upsample, which codegen maps onto it) on float32 tensors of any rank:
 * nearest, N-linear and N-cubic interpolation with every coordinate transformation mode, following
 * the ONNX reference implementation. It does not do antialiasing (Resize-18's antialias=1).
 *
 * Each axis is resized independently: a table gives, per output coordinate, up to 4 source indices
 * (clamped to the input, which is what the reference's edge padding amounts to) and their weights.
 * An output element is the sum over the product of its axes' taps; the backward scatters through the
 * same tables.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

#define MAX_TAPS 4
#define COMBO_CHUNK 64   /* outer-axis tap combinations accumulated per pass over a row */

typedef struct {
    int taps;          /* 1 (nearest, or an axis that only copies), 2 (linear) or 4 (cubic) */
    size_t *off;       /* [ydim * taps]: source index * x stride of the axis */
    double *w;         /* [ydim * taps] */
    uint8_t *outside;  /* [ydim]: tf_crop_and_resize coordinate outside the input */
} AxisTable;

static int mode_taps(ResizeMode m) { return m == RESIZE_CUBIC ? 4 : m == RESIZE_LINEAR ? 2 : 1; }

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t resize_workspace(int rank, const size_t *ydims, const ResizeParams *p)
{
    size_t taps = (size_t)mode_taps(p->mode), total = 0;
    for (int d = 0; d < rank; d++)
        total += 2 * align8(ydims[d] * taps * 8) + align8(ydims[d]);
    return total;
}

/* The input coordinate that output coordinate xo of axis d samples (ONNX Resize-13/19 formulas,
 * evaluated in the order the reference implementation does). */
static double source_coord(const ResizeParams *p, int rank, int d, size_t xo, size_t in, size_t out,
                           double scale, bool *outside)
{
    double x = (double)xo, len_in = (double)in, len_out = scale * len_in;
    *outside = false;
    switch (p->coord) {
    case RESIZE_HALF_PIXEL:
        return (x + 0.5) / scale - 0.5;
    case RESIZE_PYTORCH_HALF_PIXEL:
        return len_out > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case RESIZE_ALIGN_CORNERS:
        return len_out == 1 ? 0 : x * (len_in - 1) / (len_out - 1);
    case RESIZE_ASYMMETRIC:
        return x / scale;
    case RESIZE_TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / scale;
    case RESIZE_HALF_PIXEL_SYMMETRIC: {
        double adjustment = (double)out / len_out, center = len_in / 2;
        return center * (1 - adjustment) + (x + 0.5) / scale - 0.5;
    }
    case RESIZE_TF_CROP_AND_RESIZE: {
        double start = p->roi ? p->roi[d] : 0, end = p->roi ? p->roi[rank + d] : 1, v;
        if (len_out == 1)
            v = (end - start) * (len_in - 1) / 2;
        else
            v = x * (end - start) * (len_in - 1) / (len_out - 1);
        v += start * (len_in - 1);
        *outside = v < 0 || v > len_in - 1;
        return v;
    }
    }
    return 0;
}

static size_t clamp_index(double i, size_t in)
{
    return i <= 0 ? 0 : i >= (double)(in - 1) ? in - 1 : (size_t)i;
}

/* Keys' cubic convolution weights for the taps at floor-1 .. floor+2 of a point r past floor. */
static void cubic_weights(double r, double A, double *w)
{
    double d0 = r + 1, d1 = r, d2 = 1 - r, d3 = 2 - r;
    w[0] = ((A * d0 - 5 * A) * d0 + 8 * A) * d0 - 4 * A;
    w[1] = ((A + 2) * d1 - (A + 3)) * d1 * d1 + 1;
    w[2] = ((A + 2) * d2 - (A + 3)) * d2 * d2 + 1;
    w[3] = ((A * d3 - 5 * A) * d3 + 8 * A) * d3 - 4 * A;
}

static void build_axis(AxisTable *t, const ResizeParams *p, int rank, int d, size_t in, size_t out, double scale,
                       size_t stride)
{
    int taps = t->taps;
    bool copies_only = true;   /* every coordinate hits one source exactly: shrink to one tap */
    for (size_t o = 0; o < out; o++) {
        bool outside;
        double x = source_coord(p, rank, d, o, in, out, scale, &outside);
        t->outside[o] = outside;
        size_t *off = t->off + o * (size_t)taps;
        double *w = t->w + o * (size_t)taps;
        double f = floor(x), r = x - f;
        if (p->mode == RESIZE_NEAREST) {
            double pick = f;
            if (r > 0) {
                switch (p->nearest) {
                case RESIZE_ROUND_PREFER_FLOOR: pick = r <= 0.5 ? f : f + 1; break;
                case RESIZE_ROUND_PREFER_CEIL: pick = r < 0.5 ? f : f + 1; break;
                case RESIZE_FLOOR: pick = f; break;
                case RESIZE_CEIL: pick = f + 1; break;
                }
            }
            off[0] = clamp_index(pick, in) * stride;
            w[0] = 1;
            continue;
        }
        double first = taps == 2 ? f : f - 1;
        if (taps == 2) {
            w[0] = 1 - r;
            w[1] = r;
        } else {
            cubic_weights(r, p->cubic_coeff_a, w);
        }
        if (p->exclude_outside) {
            double sum = 0;
            for (int k = 0; k < taps; k++) {
                double i = first + k;
                if (i < 0 || i > (double)(in - 1))
                    w[k] = 0;
                sum += w[k];
            }
            for (int k = 0; k < taps && sum != 0; k++)
                w[k] /= sum;
        }
        int nonzero = 0;
        for (int k = 0; k < taps; k++) {
            off[k] = clamp_index(first + k, in) * stride;
            nonzero += w[k] != 0;
            copies_only = copies_only && (w[k] == 0 || w[k] == 1);
        }
        copies_only = copies_only && nonzero == 1;
    }
    if (p->mode != RESIZE_NEAREST && copies_only) {
        for (size_t o = 0; o < out; o++) {
            int k = 0;
            while (t->w[o * (size_t)taps + (size_t)k] == 0)
                k++;
            t->off[o] = t->off[o * (size_t)taps + (size_t)k];
            t->w[o] = 1;
        }
        t->taps = 1;
    }
}

/* Every axis's table in `work` (resize_workspace bytes); false when some axis of x is empty. */
static bool build_tables(AxisTable *ax, const size_t *ydims, const size_t *xdims, int rank, const double *scales,
                         const ResizeParams *p, void *work)
{
    size_t xst[RT_MAX_RANK], s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        if (xdims[d] == 0)
            return false;
        xst[d] = s;
        s *= xdims[d];
    }
    char *wp = work;
    int taps = mode_taps(p->mode);
    for (int d = 0; d < rank; d++) {
        size_t n = ydims[d] * (size_t)taps;
        ax[d].taps = taps;
        ax[d].off = (size_t *)wp;
        wp += align8(n * 8);
        ax[d].w = (double *)wp;
        wp += align8(n * 8);
        ax[d].outside = (uint8_t *)wp;
        wp += align8(ydims[d]);
        build_axis(&ax[d], p, rank, d, xdims[d], ydims[d], scales[d], xst[d]);
    }
    return true;
}

void resize_forward(float *y, const size_t *ydims, const float *x, const size_t *xdims, int rank,
                    const double *scales, const ResizeParams *p, void *work)
{
    size_t total = 1;
    for (int d = 0; d < rank; d++)
        total *= ydims[d];
    if (total == 0)
        return;
    if (rank == 0) {
        y[0] = x[0];
        return;
    }
    AxisTable ax[RT_MAX_RANK];
    if (!build_tables(ax, ydims, xdims, rank, scales, p, work)) {  /* nothing to sample from */
        memset(y, 0, total * sizeof *y);
        return;
    }

    int last = rank - 1;
    size_t ny = ydims[last], rows = total / ny;
    const AxisTable *lt = &ax[last];
    float extrap = p->extrapolation_value;
    #pragma omp parallel for schedule(static) if (total >= 16384)
    for (size_t row = 0; row < rows; row++) {
        size_t od[RT_MAX_RANK], rem = row;
        bool outside = false;
        for (int d = last - 1; d >= 0; d--) {
            od[d] = rem % ydims[d];
            rem /= ydims[d];
            outside = outside || ax[d].outside[od[d]];
        }
        float *yr = y + row * ny;
        if (outside) {
            for (size_t j = 0; j < ny; j++)
                yr[j] = extrap;
            continue;
        }
        /* Odometer over the outer axes' taps, COMBO_CHUNK combinations at a time. */
        int tap[RT_MAX_RANK] = {0};
        size_t coff[COMBO_CHUNK];
        double cw[COMBO_CHUNK];
        bool first_pass = true, more = true;
        while (more) {
            int nc = 0;
            while (more && nc < COMBO_CHUNK) {
                size_t off = 0;
                double w = 1;
                for (int d = 0; d < last; d++) {
                    size_t at = od[d] * (size_t)ax[d].taps + (size_t)tap[d];
                    off += ax[d].off[at];
                    w *= ax[d].w[at];
                }
                if (w != 0) {
                    coff[nc] = off;
                    cw[nc] = w;
                    nc++;
                }
                int d = last - 1;
                while (d >= 0 && ++tap[d] == ax[d].taps)
                    tap[d--] = 0;
                more = d >= 0;
            }
            for (size_t j = 0; j < ny; j++) {
                if (lt->outside[j]) {
                    yr[j] = extrap;
                    continue;
                }
                double acc = first_pass ? 0 : yr[j];
                const size_t *loff = lt->off + j * (size_t)lt->taps;
                const double *lw = lt->w + j * (size_t)lt->taps;
                for (int c = 0; c < nc; c++) {
                    const float *xs = x + coff[c];
                    double s = 0;
                    for (int k = 0; k < lt->taps; k++)
                        s += lw[k] * xs[loff[k]];
                    acc += cw[c] * s;
                }
                yr[j] = (float)acc;
            }
            first_pass = false;
        }
    }
}

/* y = sum over each output's tap combinations of prod(w) * x[taps]: dx[taps] += prod(w) * dy. Serial (the
 * scatter overlaps), in the output's order, so it is deterministic; an extrapolated output (outside the
 * crop) reads no input and sends no gradient. */
void resize_backward(float *dx, const size_t *xdims, const float *dy, const size_t *ydims, int rank,
                     const double *scales, const ResizeParams *p, void *work)
{
    size_t total = 1, xtotal = 1;
    for (int d = 0; d < rank; d++) {
        total *= ydims[d];
        xtotal *= xdims[d];
    }
    memset(dx, 0, xtotal * sizeof *dx);
    if (total == 0 || xtotal == 0)
        return;
    if (rank == 0) {
        dx[0] = dy[0];
        return;
    }
    AxisTable ax[RT_MAX_RANK];
    if (!build_tables(ax, ydims, xdims, rank, scales, p, work))
        return;
    size_t od[RT_MAX_RANK] = {0};
    for (size_t i = 0; i < total; i++) {
        bool outside = false;
        for (int d = 0; d < rank; d++)
            outside = outside || ax[d].outside[od[d]];
        int tap[RT_MAX_RANK] = {0};
        for (bool more = !outside; more;) {
            size_t off = 0;
            double w = dy[i];
            for (int d = 0; d < rank; d++) {
                size_t at = od[d] * (size_t)ax[d].taps + (size_t)tap[d];
                off += ax[d].off[at];
                w *= ax[d].w[at];
            }
            dx[off] += (float)w;
            int d = rank - 1;
            while (d >= 0 && ++tap[d] == ax[d].taps)
                tap[d--] = 0;
            more = d >= 0;
        }
        for (int d = rank - 1; d >= 0 && ++od[d] == ydims[d]; d--)   /* the next output index */
            od[d] = 0;
    }
}
