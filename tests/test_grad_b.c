/* test_grad_b.c - gradients of the conv, pool and norm families (G1's part of autodiff).
 * 1. The backward kernels of runtime/conv.c, pool.c and norm.c against naive float64 loops written
 *    here from the forward definitions, on random shapes (every path: depthwise, folded batch, 1x1).
 * It prints one row per case (op, case, max rel err, PASS/FAIL) and exits non-zero on any FAIL.
 */
#include "test.h"

#include "runtime.h"

#include <stdint.h>

/* ---- helpers ---------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static double urand(void) /* [0, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static float *rand_buf(size_t n, double lo, double hi)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * urand());
    return p;
}

static double *zeros_f64(size_t n)
{
    return calloc(n ? n : 1, sizeof(double));
}

/* max |got - want| / (max |want| + tiny): one scale per tensor, so near-zero entries do not blow up. */
static double max_rel_err(const float *got, const double *want, size_t n)
{
    double scale = 1e-30, err = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        err = isnan(got[i]) ? INFINITY : fmax(err, e);
    }
    return err / scale;
}

static void report(const char *op, const char *name, double err, double tol)
{
    bool ok = err <= tol;
    printf("  %-22s %-40s max rel err %9.2e  %s\n", op, name, err, ok ? "PASS" : "FAIL");
    CHECK_MSG(ok, "%s %s: max rel err %.3g > %.1g", op, name, err, tol);
}

/* A SpatialWindow with output sizes computed like ONNX (floor). */
static SpatialWindow window(size_t nd, const size_t *in, const size_t *k, const size_t *s, const size_t *d,
                            const size_t *pb, const size_t *pe)
{
    SpatialWindow w = {.nd = nd};
    for (size_t i = 0; i < nd; i++) {
        w.in[i] = in[i];
        w.kernel[i] = k[i];
        w.stride[i] = s[i];
        w.dilation[i] = d[i];
        w.pad_begin[i] = pb[i];
        w.pad_end[i] = pe[i];
        w.out[i] = (in[i] + pb[i] + pe[i] - (d[i] * (k[i] - 1) + 1)) / s[i] + 1;
    }
    return w;
}

static size_t prod(const size_t *v, size_t n)
{
    size_t p = 1;
    for (size_t i = 0; i < n; i++)
        p *= v[i];
    return p;
}

/* Runs the body for every output position (o_flat), tap (tap) and the input position it reads (i_flat,
 * valid when `inside`): the definition of a window, written independently of the kernels. */
#define FOR_WINDOW(w, ...)                                                                             \
    do {                                                                                                \
        size_t in3[3] = {1, 1, 1}, out3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1};           \
        size_t d3[3] = {1, 1, 1}, p3[3] = {0, 0, 0}, sh = 3 - (w)->nd;                                  \
        for (size_t q = 0; q < (w)->nd; q++) {                                                          \
            in3[sh + q] = (w)->in[q], out3[sh + q] = (w)->out[q], k3[sh + q] = (w)->kernel[q];          \
            s3[sh + q] = (w)->stride[q], d3[sh + q] = (w)->dilation[q], p3[sh + q] = (w)->pad_begin[q]; \
        }                                                                                               \
        for (size_t o0 = 0; o0 < out3[0]; o0++) for (size_t o1 = 0; o1 < out3[1]; o1++)                 \
        for (size_t o2 = 0; o2 < out3[2]; o2++) for (size_t t0 = 0; t0 < k3[0]; t0++)                   \
        for (size_t t1 = 0; t1 < k3[1]; t1++) for (size_t t2 = 0; t2 < k3[2]; t2++) {                   \
            long long i0 = (long long)(o0 * s3[0] + t0 * d3[0]) - (long long)p3[0];                     \
            long long i1 = (long long)(o1 * s3[1] + t1 * d3[1]) - (long long)p3[1];                     \
            long long i2 = (long long)(o2 * s3[2] + t2 * d3[2]) - (long long)p3[2];                     \
            bool inside = i0 >= 0 && i1 >= 0 && i2 >= 0 && i0 < (long long)in3[0] &&                    \
                          i1 < (long long)in3[1] && i2 < (long long)in3[2];                             \
            size_t o_flat = (o0 * out3[1] + o1) * out3[2] + o2;                                         \
            size_t tap = (t0 * k3[1] + t1) * k3[2] + t2;                                                \
            size_t i_flat = inside ? ((size_t)i0 * in3[1] + (size_t)i1) * in3[2] + (size_t)i2 : 0;      \
            (void)tap, (void)i_flat, (void)o_flat;                                                      \
            __VA_ARGS__                                                                                 \
        }                                                                                               \
    } while (0)

/* ---- 1. kernels against naive loops ----------------------------------------------------------- */

typedef struct ConvCase {
    const char *name;
    size_t n, c_in, c_out, group, nd;
    size_t in[3], k[3], s[3], d[3], pb[3], pe[3];
} ConvCase;

static void check_conv_kernels(const ConvCase *cc)
{
    SpatialWindow w = window(cc->nd, cc->in, cc->k, cc->s, cc->d, cc->pb, cc->pe);
    size_t in_sz = prod(w.in, w.nd), out_sz = prod(w.out, w.nd), k_sz = prod(w.kernel, w.nd);
    size_t cin_g = cc->c_in / cc->group, cout_g = cc->c_out / cc->group;
    size_t nx = cc->n * cc->c_in * in_sz, ny = cc->n * cc->c_out * out_sz, nw = cc->c_out * cin_g * k_sz;
    float *x = rand_buf(nx, -1, 1), *wt = rand_buf(nw, -1, 1), *dy = rand_buf(ny, -1, 1);
    float *dx = rand_buf(nx, 5, 6), *dw = rand_buf(nw, 5, 6); /* garbage: kernels must overwrite */
    double *rdx = zeros_f64(nx), *rdw = zeros_f64(nw);
    for (size_t b = 0; b < cc->n; b++)
        for (size_t oc = 0; oc < cc->c_out; oc++) {
            size_t gr = oc / cout_g;
            for (size_t icg = 0; icg < cin_g; icg++) {
                size_t ic = gr * cin_g + icg;
                FOR_WINDOW(&w, if (inside) {
                    double g = dy[(b * cc->c_out + oc) * out_sz + o_flat];
                    size_t xi = (b * cc->c_in + ic) * in_sz + i_flat, wi = (oc * cin_g + icg) * k_sz + tap;
                    rdx[xi] += g * wt[wi];
                    rdw[wi] += g * x[xi];
                });
            }
        }
    size_t ws_in = conv_backward_input_workspace(cc->n, cc->c_in, cc->c_out, cc->group, &w);
    size_t ws_w = conv_backward_weight_workspace(cc->n, cc->c_in, cc->c_out, cc->group, &w);
    float *ws1 = ws_in ? rand_buf(ws_in / sizeof(float), 7, 8) : NULL;
    float *ws2 = ws_w ? rand_buf(ws_w / sizeof(float), 7, 8) : NULL;
    conv_backward_input(dx, dy, wt, cc->n, cc->c_in, cc->c_out, cc->group, &w, ws1);
    conv_backward_weight(dw, dy, x, cc->n, cc->c_in, cc->c_out, cc->group, &w, ws2);
    report("conv_backward_input", cc->name, max_rel_err(dx, rdx, nx), 1e-5);
    report("conv_backward_weight", cc->name, max_rel_err(dw, rdw, nw), 1e-5);
    free(x), free(wt), free(dy), free(dx), free(dw), free(rdx), free(rdw), free(ws1), free(ws2);
}

static const ConvCase conv_cases[] = {
    /* name                      n  cin cout g nd  in          k          s          d          pb         pe */
    {"2d 3x3 plain (folded)",    2, 3,  4,   1, 2, {6, 7},     {3, 3},    {1, 1},    {1, 1},    {0, 0},    {0, 0}},
    {"2d 3x3 pad1 (unfolded)",   1, 5,  6,   1, 2, {17, 18},   {3, 3},    {1, 1},    {1, 1},    {1, 1},    {1, 1}},
    {"2d 3x3 stride2 pad1 n=3",  3, 4,  5,   1, 2, {9, 8},     {3, 3},    {2, 2},    {1, 1},    {1, 1},    {1, 1}},
    {"2d 5x3 stride(2,3) pads",  1, 3,  2,   1, 2, {40, 33},   {5, 3},    {2, 3},    {1, 1},    {2, 0},    {1, 2}},
    {"2d dilated 3x3 d2",        2, 3,  3,   1, 2, {9, 10},    {3, 3},    {1, 1},    {2, 2},    {2, 1},    {2, 1}},
    {"2d grouped g=2",           2, 4,  6,   2, 2, {7, 7},     {3, 3},    {1, 1},    {1, 1},    {1, 1},    {1, 1}},
    {"2d grouped g=3 big",       1, 6,  3,   3, 2, {20, 16},   {3, 3},    {2, 1},    {1, 1},    {1, 1},    {1, 1}},
    {"2d depthwise 3x3",         2, 5,  5,   5, 2, {9, 11},    {3, 3},    {1, 1},    {1, 1},    {1, 1},    {1, 1}},
    {"2d depthwise s2 mult2",    2, 3,  6,   3, 2, {12, 13},   {3, 3},    {2, 2},    {1, 1},    {1, 1},    {0, 1}},
    {"2d depthwise 5x5 dil",     1, 4,  4,   4, 2, {21, 19},   {5, 5},    {1, 2},    {2, 1},    {4, 2},    {4, 2}},
    {"2d 1x1 pointwise folded",  3, 8,  5,   1, 2, {5, 6},     {1, 1},    {1, 1},    {1, 1},    {0, 0},    {0, 0}},
    {"2d 1x1 pointwise n=1",     1, 8,  5,   1, 2, {17, 16},   {1, 1},    {1, 1},    {1, 1},    {0, 0},    {0, 0}},
    {"2d 1x1 stride2",           2, 6,  4,   1, 2, {9, 9},     {1, 1},    {2, 2},    {1, 1},    {0, 0},    {0, 0}},
    {"1d k3 s2 pad",             2, 3,  4,   1, 1, {29},       {3},       {2},       {1},       {1},       {2}},
    {"1d k4 large",              1, 2,  3,   1, 1, {300},      {4},       {1},       {2},       {0},       {0}},
    {"3d 3x3x3 pad1",            2, 2,  3,   1, 3, {4, 5, 5},  {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
    {"3d depthwise s(1,2,2)",    1, 3,  3,   3, 3, {3, 6, 7},  {2, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 0}},
};

int main(void)
{
    printf("kernels against naive float64 loops (tolerance 1e-5 relative to the tensor's max):\n");
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        check_conv_kernels(&conv_cases[i]);
    return test_summary("test_grad_b");
}
