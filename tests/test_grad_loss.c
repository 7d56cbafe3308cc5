/* test_grad_loss.c - gradient checks (tests/gradcheck.h) of ONNX's loss ops, NegativeLogLikelihoodLoss and
 * SoftmaxCrossEntropyLoss (every reduction, weight, ignore_index, N-d, SCE's log_prob output), and of the
 * rules of ConvTranspose, Resize, LpPool, LRN and Mod: finite differences in float32 with the
 * gradcheck.h tolerances, and PyTorch's gradients from tests/ref/make_grad_loss_ref.py (the same graphs
 * built from the ONNX spelling in torch_refs). GRADCHECK_VERBOSE=1 prints every parameter's numbers.
 */
#include "test.h"

#include "gradcheck.h"
#include "program.h"

#define IN(...) ((Value *[]){__VA_ARGS__})
#define I64(...) ((const int64_t[]){__VA_ARGS__})

/* ---- losses, finite differences ---- */

/* <op>(x [xdims] trainable, target ints [tdims], weight [C] when wdims) with attrs; both outputs of SCE
 * when log_prob. */
static void loss_case(GradCheck *s, const char *op, const char *label, const char *xdims, const char *tdims,
                      const int64_t *target, const char *wdims, const char *attrs, bool log_prob)
{
    GcCase *c = gc_case(s, op, label);
    Value *x = gc_param(c, "x", xdims, -2, 2);
    Value *t = gc_ints(c, tdims, target);
    Value *w = wdims ? gc_data(c, "w", wdims, 0.5, 2) : NULL;
    Node *n = gc_node(c, op, w ? 3 : 2, IN(x, t, w), log_prob ? 2 : 1, attrs);
    if (n)
        gc_check(c, log_prob ? 2 : 1, n->outputs);
}

static void loss_fd_cases(GradCheck *s)
{
    const int64_t t4[] = {0, 3, 2, 4}, t_nd[] = {0, 2, 1, 1, 3, 0, 2, 2, 1, 0, 3, 3};
    loss_case(s, "NegativeLogLikelihoodLoss", "mean", "4,5", "4", t4, NULL, NULL, false);
    loss_case(s, "NegativeLogLikelihoodLoss", "sum, weight", "4,5", "4", t4, "5", "reduction='sum'", false);
    loss_case(s, "NegativeLogLikelihoodLoss", "none, N-d, ignore_index", "2,4,3,2", "2,3,2", t_nd, NULL,
              "reduction='none' ignore_index=2", false);
    loss_case(s, "NegativeLogLikelihoodLoss", "mean, N-d, weight, ignore_index", "2,4,3,2", "2,3,2", t_nd, "4",
              "ignore_index=3", false);
    loss_case(s, "SoftmaxCrossEntropyLoss", "mean", "4,5", "4", t4, NULL, NULL, false);
    loss_case(s, "SoftmaxCrossEntropyLoss", "sum, weight", "4,5", "4", t4, "5", "reduction='sum'", false);
    loss_case(s, "SoftmaxCrossEntropyLoss", "none, N-d, ignore_index", "2,4,3,2", "2,3,2", t_nd, NULL,
              "reduction='none' ignore_index=0", false);
    loss_case(s, "SoftmaxCrossEntropyLoss", "mean, N-d, weight, ignore_index, log_prob", "2,4,3,2", "2,3,2", t_nd,
              "4", "ignore_index=1", true);
    const int64_t neg[] = {-1, 3, -1, 4};
    loss_case(s, "SoftmaxCrossEntropyLoss", "mean, negative ignore_index", "4,5", "4", neg, NULL, "ignore_index=-1",
              false);
}

/* ---- the remaining rules, finite differences ---- */

/* Mod(a [3,4], b [4]) fmod=1 with a / b kept in the middle of (k, k+1), away from the jumps. */
static void mod_case(GradCheck *s)
{
    GcCase *c = gc_case(s, "Mod", "fmod=1, broadcast b, both trainable");
    Value *a = gc_param(c, "a", "3,4", -5, 5), *b = gc_param(c, "b", "4", 0.8, 2);
    float *av = gc_values(c, a), *bv = gc_values(c, b);
    for (int i = 0; av && bv && i < 12; i++) {
        if (i % 2)
            bv[i % 4] = -fabsf(bv[i % 4]);
        double q = av[i] / bv[i % 4];
        av[i] = (float)((floor(q) + 0.5) * bv[i % 4]);
    }
    Value *y = gc_op(c, "Mod", 2, IN(a, b), "fmod=1");
    gc_check(c, 1, &y);
}

/* One op on one trainable input x [xdims] (values in [lo, hi]) with attrs. */
static GcCase *op_case(GradCheck *s, const char *op, const char *label, const char *xdims, double lo, double hi,
                       const char *attrs)
{
    GcCase *c = gc_case(s, op, label);
    Value *x = gc_param(c, "x", xdims, lo, hi);
    Value *y = gc_op(c, op, 1, &x, attrs);
    gc_check(c, 1, &y);
    return c;
}

/* Resize(x [xdims], roi absent, scales or sizes) with attrs. */
static void resize_case(GradCheck *s, const char *label, const char *xdims, const float *scales,
                        const int64_t *sizes, int rank, const char *attrs)
{
    GcCase *c = gc_case(s, "Resize", label);
    Value *x = gc_param(c, "x", xdims, -2, 2), *sc = NULL, *sz = NULL;
    char dims[8];
    snprintf(dims, sizeof dims, "%d", rank);
    if (scales && (sc = gc_data(c, "scales", dims, 0, 0)))
        memcpy(sc->init->data, scales, (size_t)rank * sizeof *scales);
    if (sizes)
        sz = gc_ints(c, dims, sizes);
    Value *y = gc_op(c, "Resize", sizes ? 4 : 3, IN(x, NULL, sc, sz), attrs);
    gc_check(c, 1, &y);
}

/* ConvTranspose(x, w, b?) with x, w (and b) trainable. */
static void conv_transpose_case(GradCheck *s, const char *label, const char *xd, const char *wd, const char *bd,
                                const char *attrs)
{
    GcCase *c = gc_case(s, "ConvTranspose", label);
    Value *x = gc_param(c, "x", xd, -1, 1), *w = gc_param(c, "w", wd, -1, 1);
    Value *b = bd ? gc_param(c, "b", bd, -1, 1) : NULL;
    Value *y = gc_op(c, "ConvTranspose", b ? 3 : 2, IN(x, w, b), attrs);
    gc_check(c, 1, &y);
}

static void rest_fd_cases(GradCheck *s)
{
    conv_transpose_case(s, "3x3, bias", "2,3,4,4", "3,2,3,3", "2", NULL);
    conv_transpose_case(s, "stride 2, pads, output_padding, group 2", "1,4,3,3", "4,3,3,3", "6",
                        "strides=[2,2] pads=[1,1,1,1] output_padding=[1,1] group=2");
    conv_transpose_case(s, "1-D, dilation 2, stride 3", "2,2,5", "2,3,3", NULL, "strides=[3] dilations=[2]");
    conv_transpose_case(s, "auto_pad SAME_UPPER, stride 2", "1,2,3,3", "2,2,2,2", "2",
                        "strides=[2,2] auto_pad='SAME_UPPER'");
    conv_transpose_case(s, "output_shape within the full output", "1,2,3,4", "2,1,2,3", NULL,
                        "strides=[2,2] output_shape=[5,8]");
    conv_transpose_case(s, "output_shape past the full output, bias", "1,2,3,4", "2,1,2,3", "1",
                        "strides=[2,2] output_shape=[7,10]");
    const float up[] = {1, 1, 2, 3}, down[] = {1, 1, 0.6f, 0.5f};
    resize_case(s, "nearest, asymmetric floor, scales 2x3", "1,2,3,4", up, NULL, 4,
                "mode='nearest' coordinate_transformation_mode='asymmetric' nearest_mode='floor'");
    resize_case(s, "nearest, half_pixel round_prefer_floor, down", "2,1,5,6", down, NULL, 4, "mode='nearest'");
    resize_case(s, "linear, half_pixel, sizes 5x7", "2,2,3,4", NULL, I64(2, 2, 5, 7), 4, "mode='linear'");
    resize_case(s, "linear, align_corners, 1-D", "1,2,4", NULL, I64(1, 2, 9), 3,
                "mode='linear' coordinate_transformation_mode='align_corners'");
    resize_case(s, "linear, pytorch_half_pixel, down", "1,2,6,5", down, NULL, 4,
                "mode='linear' coordinate_transformation_mode='pytorch_half_pixel'");
    resize_case(s, "cubic, half_pixel, exclude_outside", "1,1,4,4", up, NULL, 4, "mode='cubic' exclude_outside=1");
    mod_case(s);
    op_case(s, "LRN", "size 3", "2,5,3,2", -2, 2, "size=3 alpha=0.5 beta=0.75 bias=1.0");
    op_case(s, "LRN", "size 4 (window 1 before, 2 after), 1-D", "2,6,4", -2, 2, "size=4 alpha=0.3 beta=0.6 bias=2.0");
    GcCase *c = op_case(s, "LRN", "size 1, default alpha/beta/bias, atol 1e-5", "1,3,2,2", -2, 2, "size=1");
    if (c)
        c->atol = 1e-5; /* y ~ x: one direction's derivative cancels to 1e-3, float32 noise is ~1e-6 */
    op_case(s, "LpPool", "p=2, 2x2 stride 2", "2,3,4,6", -2, 2, "p=2 kernel_shape=[2,2] strides=[2,2]");
    op_case(s, "LpPool", "p=1, overlapping, pads", "1,2,5,4", 0.2, 2,
            "p=1 kernel_shape=[3,2] strides=[1,1] pads=[1,0,1,1]");
    op_case(s, "LpPool", "p=3, 1-D, dilated", "2,2,9", -2, 2, "p=3 kernel_shape=[3] dilations=[2]");
    op_case(s, "GlobalLpPool", "p=2", "2,3,3,2", -2, 2, "p=2");
    op_case(s, "GlobalLpPool", "p=4, 1-D", "1,2,5", -2, 2, "p=4");
}

/* ---- PyTorch references ---- */

#define GRAD_LOSS_REF "tests/ref/grad_loss"
#define MAX_IN 4
#define MAX_OUT 2

typedef struct TorchRef {
    const char *name, *op, *attrs;
    unsigned trains;        /* bit k: input k trains */
    int nout;
    bool no_fd;             /* jumps near the inputs: the reference only */
} TorchRef;

/* The script's calls in ONNX spelling (Resize's scales/sizes inputs are built in torch_case). */
static const TorchRef torch_refs[] = {
    {"sce_mean_weight_ii", "SoftmaxCrossEntropyLoss", "ignore_index=2", 1, 1, false},
    {"sce_nd_none", "SoftmaxCrossEntropyLoss", "reduction='none'", 1, 1, false},
    {"sce_sum_ii_log_prob", "SoftmaxCrossEntropyLoss", "reduction='sum' ignore_index=-1", 1, 2, false},
    {"nll_mean_weight_nd", "NegativeLogLikelihoodLoss", NULL, 1, 1, false},
    {"nll_sum_ii", "NegativeLogLikelihoodLoss", "reduction='sum' ignore_index=0", 1, 1, false},
    {"fmod_bcast", "Mod", "fmod=1", 3, 1, true},
    {"conv_transpose_s2_group", "ConvTranspose", "strides=[2,2] pads=[1,1,1,1] output_padding=[1,1] group=2", 7, 1,
     false},
    {"conv_transpose_1d_dilated", "ConvTranspose", "dilations=[2]", 3, 1, false},
    {"resize_nearest_up", "Resize", "mode='nearest' coordinate_transformation_mode='asymmetric' nearest_mode='floor'",
     1, 1, false},
    {"resize_nearest_down", "Resize", "mode='nearest' coordinate_transformation_mode='asymmetric' nearest_mode='floor'",
     1, 1, false},
    {"resize_bilinear", "Resize", "mode='linear' coordinate_transformation_mode='pytorch_half_pixel'", 1, 1, false},
    {"resize_bilinear_align_corners", "Resize", "mode='linear' coordinate_transformation_mode='align_corners'", 1, 1,
     false},
    {"lppool_p2", "LpPool", "p=2 kernel_shape=[2,2] strides=[2,2]", 1, 1, false},
    {"lppool_p3_1d", "LpPool", "p=3 kernel_shape=[3] strides=[1]", 1, 1, false},
    {"lrn_size3", "LRN", "size=3 alpha=0.02 beta=0.75 bias=1.5", 1, 1, false},
};

static bool load_ref(const char *cs, const char *name, NpyArray *a, bool quiet)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/%s/%s.npy", GRAD_LOSS_REF, cs, name);
    if (quiet && access(path, R_OK) != 0)
        return false;
    if (npy_read(path, a, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "  %s\n", err);
        return false;
    }
    return true;
}

static const char *ref_dims(const NpyArray *a, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%zu", i ? "," : "", a->dims[i]);
    return buf;
}

static void torch_case(GradCheck *s, const TorchRef *t)
{
    NpyArray in[MAX_IN] = {{0}}, want[MAX_IN] = {{0}}, r[MAX_OUT] = {{0}};
    char name[16], dims[64], label[96];
    int nin = 0;
    bool ok = true;
    for (int k = 0; ok && k < t->nout; k++) {
        snprintf(name, sizeof name, "r%d", k);
        ok = load_ref(t->name, name, &r[k], false);
    }
    for (; ok && nin < MAX_IN; nin++) {
        snprintf(name, sizeof name, "in%d", nin);
        if (!load_ref(t->name, name, &in[nin], true))
            break;
        snprintf(name, sizeof name, "grad%d", nin);
        if (t->trains >> nin & 1)
            ok = load_ref(t->name, name, &want[nin], false);
    }
    CHECK_MSG(ok && nin > 0, "%s: reference files missing (run tests/ref/make_grad_loss_ref.py)", t->name);
    snprintf(label, sizeof label, "torch %s", t->name);
    GcCase *c = ok && nin > 0 ? gc_case(s, t->op, label) : NULL;
    Value *v[MAX_IN] = {NULL};
    for (int k = 0; c && k < nin; k++) {
        snprintf(name, sizeof name, "in%d", k);
        const char *dm = ref_dims(&in[k], dims, sizeof dims);
        if (in[k].dtype == RT_INT64) {
            v[k] = gc_ints(c, dm, in[k].data);
        } else if (t->trains >> k & 1) {
            v[k] = gc_param(c, name, dm, 0, 0);
            gc_set(c, v[k], in[k].data, in[k].numel);
        } else if ((v[k] = gc_data(c, name, dm, 0, 0))) {
            memcpy(v[k]->init->data, in[k].data, in[k].nbytes);
        }
    }
    NpyArray y0 = {0};
    if (c && strcmp(t->op, "Resize") == 0) {    /* F.interpolate's output size as Resize's sizes input */
        int64_t sizes[8];
        if (load_ref(t->name, "y0", &y0, false) && y0.rank <= 8) {
            for (int k = 0; k < y0.rank; k++)
                sizes[k] = (int64_t)y0.dims[k];
            snprintf(dims, sizeof dims, "%d", y0.rank);
            v[1] = NULL;
            v[2] = NULL;
            v[3] = gc_ints(c, dims, sizes);
            nin = 4;
        }
        npy_free(&y0);
    }
    Node *n = c ? gc_node(c, t->op, nin, v, t->nout, t->attrs) : NULL;
    if (n) {
        gc_check(c, t->nout, n->outputs);
        c->no_fd = t->no_fd;
        for (int k = 0; k < t->nout; k++)
            gc_set_r(c, k, r[k].data, r[k].numel);
        for (int k = 0; k < nin; k++)
            if (t->trains >> k & 1)
                gc_expect_grad(c, v[k], want[k].data, want[k].numel, 1e-5);
    }
    for (int k = 0; k < MAX_OUT; k++)
        npy_free(&r[k]);
    for (int k = 0; k < MAX_IN; k++)
        npy_free(&in[k]), npy_free(&want[k]);
}

static void torch_cases(GradCheck *s)
{
    for (size_t i = 0; i < sizeof torch_refs / sizeof torch_refs[0]; i++)
        torch_case(s, &torch_refs[i]);
}

int main(void)
{
    GradCheck *s = gc_new("grad_loss");
    CHECK(s != NULL);
    if (!s)
        return test_summary("test_grad_loss");
    loss_fd_cases(s);
    rest_fd_cases(s);
    torch_cases(s);
    int failures = gc_run(s);
    CHECK_EQ_INT(failures, 0);
    return test_summary("test_grad_loss");
}
