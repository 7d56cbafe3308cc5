/* kernels.h - the one public header of onnxtune's kernels: the math that generated programs call.
 *
 * Kernels take raw pointers and sizes, never allocate (callers pass any scratch space, sized by the
 * matching *_workspace function), and never fail: codegen has checked shapes at compile time.
 * Tensors are dense, C order. They depend on BLAS and OpenMP only: nothing here reads files or knows
 * the training program (data/ and program/ do). Each banner names the file that implements the kernels
 * below it. */
#ifndef ONNXTUNE_KERNELS_H
#define ONNXTUNE_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ======================================================================== kernels/settings.c */

/* Thread count for OpenBLAS and the OpenMP kernels (<= 0: leave the defaults). */
void rt_set_threads(int n);

/* Whether a kernel with an AVX2+FMA body should use it: the CPU has both and the environment variable
 * `env` (ONNXTUNE_DW_ISA, ONNXTUNE_ERF_ISA) does not say "generic", which tests use to force the other path. */
bool rt_use_avx2(const char *env);

/* Two more run-time settings that kernels read; programs that never set them (inference, tests) get
 * every row and the compiled hyperparameters.
 *
 * Valid rows of the current batch. A short batch runs padded to the compiled batch B (padding rows
 * repeat the batch's first row); the ops that mix rows (the losses, BatchNormalization on batch
 * statistics and their backward ops) read only the first rt_batch_rows(B) rows and write zero gradient
 * rows for the padding, so a padded step equals a step on the short batch. rows 0: every row. */
void rt_set_batch_rows(size_t rows);
size_t rt_batch_rows(size_t compiled);

/* Samples apart: a training program's frozen prefix runs over whole batches of `samples` and a sample's
 * results must be the same bits at any place in a batch, beside any other samples
 * (program/trainer_features.c). While set (0: not), the kernels that would put the rows of several
 * samples into one BLAS product (Gemm, MatMul, conv.c's batch fold), where a row's rounding may depend
 * on its place, make one product per sample instead, all of the same shape. */
void rt_set_samples_apart(size_t samples);
size_t rt_samples_apart(void);

/* Optimizer hyperparameters given on the training program's command line. Emitters of the updates print
 * rt_hyper(RT_HYPER_X, compiled value): the compiled value unless the program set another. */
typedef enum {
    RT_HYPER_MOMENTUM = 0,
    RT_HYPER_DAMPENING,
    RT_HYPER_NESTEROV,      /* 0 or 1 */
    RT_HYPER_WEIGHT_DECAY,
    RT_HYPER_BETA1,
    RT_HYPER_BETA2,
    RT_HYPER_EPS,
    RT_HYPER_MAX_NORM,      /* --grad-clip */
    RT_HYPER_COUNT
} RtHyper;
void rt_set_hyper(RtHyper h, double value);
double rt_hyper(RtHyper h, double compiled);

/* ======================================================================== kernels/gemm.c */

/* Gemm (ONNX 13): y = alpha * op(a) @ op(b) + beta * c.
 *   y [M,N];  a [M,K], or [K,M] when trans_a;  b [K,N], or [N,K] when trans_b.
 *   c: NULL (no C input), or unidirectionally broadcast to [M,N], described by c_rows (1 or M) and
 *      c_cols (1 or N): scalar or [1] -> 1,1; [N] or [1,N] -> 1,N; [M,1] -> M,1; [M,N] -> M,N.
 * y must not alias a or b; it may alias c only when c is [M,N]. Sizes must fit in an int (cblas). */
void gemm_forward(float *y, const float *a, const float *b, const float *c,
                  size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                  float alpha, float beta, size_t c_rows, size_t c_cols);

/* MatMul (ONNX 13, numpy.matmul semantics): y[batch..., M, N] = a[batch..., M, K] @ b[batch..., K, N].
 *   A 1-D a is read as [1,K] (M = 1) and a 1-D b as [K,1] (N = 1): y's memory is the same, only its
 *   shape drops that dim.  The broadcast batch dims of y are batch_dims[0..batch_rank); a_strides[i]
 *   and b_strides[i] are the element strides of a and b along batch dim i, 0 where that operand is
 *   broadcast or lacks the dim (matmul_batch_strides computes all three).  batch_rank 0: one product.
 * When b is shared by all batches and a is dense, the batch folds into M (one sgemm). */
void matmul_forward(float *y, const float *a, const float *b, size_t m, size_t n, size_t k,
                    size_t batch_rank, const size_t *batch_dims,
                    const size_t *a_strides, const size_t *b_strides);

/* float64 twins of gemm_forward and matmul_forward (cblas_dgemm; matmul without the batch fold). */
void gemm_forward_f64(double *y, const double *a, const double *b, const double *c,
                      size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                      double alpha, double beta, size_t c_rows, size_t c_cols);
void matmul_forward_f64(double *y, const double *a, const double *b, size_t m, size_t n, size_t k,
                        size_t batch_rank, const size_t *batch_dims,
                        const size_t *a_strides, const size_t *b_strides);

/* Numpy broadcasting of MatMul batch dims, for codegen: a_batch[a_rank] and b_batch[b_rank] are the
 * dims of a and b before their last two (right-aligned against each other).  Writes
 * max(a_rank, b_rank) entries to batch_dims, a_strides and b_strides for matmul_forward and returns
 * that rank, or (size_t)-1 if the dims do not broadcast. */
size_t matmul_batch_strides(size_t a_rank, const size_t *a_batch, size_t b_rank, const size_t *b_batch,
                            size_t m, size_t n, size_t k,
                            size_t *batch_dims, size_t *a_strides, size_t *b_strides);

/* ======================================================================== kernels/conv.c */

#define RT_MAX_SPATIAL 3

/* The spatial geometry of a Conv, ConvTranspose or pooling window (nd = 1, 2 or 3 spatial dims).
 * Codegen resolves auto_pad, ceil_mode, output_padding and output_shape into `out` and the pads.
 * A stride or dilation of 0 is read as 1. */
typedef struct SpatialWindow {
    size_t nd;                         /* number of spatial dims, 1..RT_MAX_SPATIAL */
    size_t in[RT_MAX_SPATIAL];         /* X's spatial dims */
    size_t out[RT_MAX_SPATIAL];        /* Y's spatial dims */
    size_t kernel[RT_MAX_SPATIAL];     /* kernel_shape */
    size_t stride[RT_MAX_SPATIAL];     /* strides */
    size_t dilation[RT_MAX_SPATIAL];   /* dilations */
    size_t pad_begin[RT_MAX_SPATIAL];  /* pads[0..nd) */
    size_t pad_end[RT_MAX_SPATIAL];    /* pads[nd..2nd): only AveragePool with count_include_pad reads them */
} SpatialWindow;

/* Conv (ONNX 11): y[N, C_out, out...] = conv(x[N, C_in, in...], w[C_out, C_in/group, kernel...])
 *   + bias[C_out] (bias may be NULL).  3x3 stride-1 convs run on Winograd where conv_wino_forward() takes
 *   them (kernels/conv_wino.c); the rest on oneDNN when conv_dnnl() takes it (kernels/conv_dnnl.c,
 *   which picks per geometry), else on these paths: C_in/group == 1 (depthwise, any channel multiplier) is
 *   a direct loop; small outputs (< 128 positions) with N > 1 fold the batch into one sgemm per group;
 *   1x1 stride-1 unpadded kernels are one sgemm per image and group; anything else is im2col into
 *   the workspace and one sgemm per image and group.
 * workspace: conv_forward_workspace() bytes (0 for depthwise and unfolded 1x1: NULL is fine). */
size_t conv_forward_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                              const SpatialWindow *win);
void conv_forward(float *y, const float *x, const float *w, const float *bias,
                  size_t n, size_t c_in, size_t c_out, size_t group,
                  const SpatialWindow *win, float *workspace);

/* Which build of the depthwise kernels (kernels/conv_dw.c) this process runs: "avx2" (AVX2+FMA, chosen by
 * cpuid) or "generic" (baseline x86-64, or ONNXTUNE_DW_ISA=generic in the environment). */
const char *conv_depthwise_isa(void);

/* ConvTranspose (ONNX 11): y[N, C_out, out...] from x[N, C_in, in...], w[C_in, C_out/group, kernel...],
 *   bias[C_out] or NULL.  win->in is X's spatial shape, win->out Y's; each input position i feeds
 *   output o = i*stride - pad_begin + k*dilation when 0 <= o < out.  sgemm + col2im per image and group.
 * workspace: conv_transpose_forward_workspace() bytes (0 for 1x1 stride-1 unpadded kernels). */
size_t conv_transpose_forward_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                        const SpatialWindow *win);
void conv_transpose_forward(float *y, const float *x, const float *w, const float *bias,
                            size_t n, size_t c_in, size_t c_out, size_t group,
                            const SpatialWindow *win, float *workspace);

/* Conv backward (onnxtune.ConvGradInput / ConvGradWeight), for conv_forward's geometry and sizes:
 *   conv_backward_input:  dx[N, C_in, in...] = dLoss/dx from dy[N, C_out, out...], w[C_out, C_in/group, kernel...]
 *   conv_backward_weight: dw[C_out, C_in/group, kernel...] = dLoss/dw from dy and x[N, C_in, in...]
 * Both write their output (no accumulation) and are deterministic.  dx: Winograd first where
 * conv_wino_backward_input() takes it; oneDNN first as for conv_forward,
 * else paths as conv_forward's: depthwise
 * direct (no workspace); small outputs with N > 1 fold the batch into one sgemm per group; 1x1
 * stride-1 unpadded kernels skip im2col/col2im; else per image im2col (dw) or col2im (dx).
 * The bias gradient is a ReduceSum of dy over N and the spatial dims (done in the IR). */
size_t conv_backward_input_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                     const SpatialWindow *win);
void conv_backward_input(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                         size_t group, const SpatialWindow *win, float *workspace);
size_t conv_backward_weight_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                      const SpatialWindow *win);
void conv_backward_weight(float *dw, const float *dy, const float *x, size_t n, size_t c_in, size_t c_out,
                          size_t group, const SpatialWindow *win, float *workspace);

/* ======================================================================== kernels/conv_dnnl.c */

/* An activation fused into a forward conv: y = act(conv + bias). */
typedef enum {
    CONV_ACT_NONE,  /* y as is */
    CONV_ACT_RELU,  /* max(y, 0) */
    CONV_ACT_CLIP,  /* min(max(y, lo), hi), e.g. ReLU6 */
} ConvActKind;
typedef struct ConvAct {
    ConvActKind kind;
    float lo, hi;   /* CONV_ACT_CLIP's bounds */
} ConvAct;

typedef enum {
    CONV_DNNL_FORWARD,          /* out = y, a = x, b = w, bias */
    CONV_DNNL_BACKWARD_INPUT,   /* out = dx, a = dy, b = w */
    CONV_DNNL_BACKWARD_WEIGHT,  /* out = dw, a = dy, b = x */
} ConvDnnlDir;

/* The conv kernels above on oneDNN when the build has it (ONNXTUNE_HAVE_DNNL) and the environment
 * does not say ONNXTUNE_DNNL=0: conv.c calls these first and runs its own path when they return false
 * (no oneDNN, a geometry or a first-call set-up it could not do). Primitives are cached per geometry,
 * direction, activation and thread count; the first call of each allocates. Not for concurrent calls. */
bool conv_dnnl_enabled(void);
bool conv_dnnl(ConvDnnlDir dir, float *out, const float *a, const float *b, const float *bias, size_t n,
               size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act);
/* conv_dnnl's forward with y = act(conv + bias + sum): oneDNN's sum post-op (y or its blocked copy
 * holds sum first). sum has y's shape and may be y itself. */
bool conv_dnnl_forward_sum(float *y, const float *x, const float *w, const float *bias, const float *sum, size_t n,
                           size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act);

/* What the compiler fused into a forward Conv (ir/pass_fuse.c), applied in this order to conv + bias:
 *   an inference-mode BatchNormalization folded into the weights and bias per call (bn_scale NULL: none):
 *     w' = w * s, b' = (bias - mean) * s + beta with s = scale / sqrt(var + eps), as PyTorch's fuse does;
 *   sum: a residual of y's shape added (NULL: none); then act. */
typedef struct ConvEpilogue {
    const float *bn_scale, *bn_bias, *bn_mean, *bn_var;
    float bn_eps;
    const float *sum;
    ConvAct act;
} ConvEpilogue;

/* conv_forward with ep applied: one oneDNN primitive with post-ops where conv_dnnl takes the geometry,
 * else conv_forward and one pass for sum and act. y must not overlap x, w or sum.
 * workspace: conv_forward_fused_workspace() bytes (has_bn: room for the folded weights and bias). */
size_t conv_forward_fused_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                                    const SpatialWindow *win, bool has_bn);
void conv_forward_fused(float *y, const float *x, const float *w, const float *bias,
                        size_t n, size_t c_in, size_t c_out, size_t group,
                        const SpatialWindow *win, const ConvEpilogue *ep, float *workspace);

/* Where a forward conv's tensors live (ORed into `layout`): plain NCHW, or oneDNN's blocked nChw8c
 * (x[n][c/8][h][w][c%8], the same bytes when C % 8 == 0; 2-D convs only), which the compiler keeps
 * between layers (codegen/layout.c) so that consecutive convs need no reorders. */
enum {
    CONV_X_BLOCKED = 1,
    CONV_Y_BLOCKED = 2,
    CONV_SUM_BLOCKED = 4,
    /* not a layout: w and bias are the program's constants (never written, never moved), so oneDNN's
     * reordered copy of w is made on the first call and kept (one copy of each conv's weights) */
    CONV_W_CONST = 8,
};
/* conv_forward_fused (ep NULL: conv_forward) with x, y and ep->sum in the layouts `layout` says.
 * oneDNN reads and writes the blocked ones directly; where it declines (no oneDNN, ONNXTUNE_DNNL=0, a
 * parallel region, a failed set-up) the plain path runs on plain copies (allocated per call; the
 * process aborts with a message if that allocation fails). workspace as conv_forward_fused's. */
void conv_forward_layout(float *y, const float *x, const float *w, const float *bias, size_t n, size_t c_in,
                         size_t c_out, size_t group, const SpatialWindow *win, const ConvEpilogue *ep,
                         unsigned layout, float *workspace);
/* conv_dnnl_forward_sum with `layout` (CONV_*_BLOCKED) for x, y and sum. */
bool conv_dnnl_forward_layout(float *y, const float *x, const float *w, const float *bias, const float *sum,
                              size_t n, size_t c_in, size_t c_out, size_t group, const SpatialWindow *win,
                              const ConvAct *act, unsigned layout);

/* ======================================================================== kernels/conv_wino.c */

/* Winograd F(2x2,3x3) forward conv, tried by conv.c before oneDNN: y = act(conv(x, w) + bias + sum)
 * (bias, sum, act may be NULL) with x, y and sum in the layouts `layout` says (CONV_*_BLOCKED; plain
 * ones go through nChw8c copies), U = G w G^T cached when CONV_W_CONST. Takes 2-D 3x3 kernels, stride
 * and dilation 1, pad_begin <= 2, group 1, C_in and C_out multiples of 8, on a CPU with AVX2+FMA, where
 * bench/README.md measured it faster than oneDNN (ONNXTUNE_WINOGRAD=force: every geometry that fits;
 * =0, off or generic: never); returns false for the rest. Deterministic: the same bits for any thread
 * count and any place of a sample in the batch. Keeps its tile buffers, U of non-constant weights and
 * plain tensors' nChw8c copies between calls (grow-only; fresh ones inside a parallel region; aborts
 * with a message when out of memory). */
bool conv_wino_forward(float *y, const float *x, const float *w, const float *bias, const float *sum, size_t n,
                       size_t c_in, size_t c_out, size_t group, const SpatialWindow *win, const ConvAct *act,
                       unsigned layout);
/* conv_backward_input's dx on the same code (a 3x3 stride-1 conv of dy with w transposed and flipped),
 * plain NCHW tensors, U computed per call; the same conditions with C_in and C_out swapped and at least
 * 128 output tiles (ONNXTUNE_WINOGRAD=force: any), else false. */
bool conv_wino_backward_input(float *dx, const float *dy, const float *w, size_t n, size_t c_in, size_t c_out,
                              size_t group, const SpatialWindow *win);

/* ======================================================================== kernels/blocked.c */

/* nChw8c (C % 8 == 0) <-> NCHW of x[n, c, spatial]; dst and src must not overlap. */
void layout_to_blocked(float *dst, const float *src, size_t n, size_t c, size_t spatial);
void layout_from_blocked(float *dst, const float *src, size_t n, size_t c, size_t spatial);
/* maxpool_forward (no indices, 2-D windows) with x and y both nChw8c; the same values. */
void maxpool_forward_blocked(float *y, const float *x, size_t n, size_t c, const SpatialWindow *win);
/* global_avgpool_forward of an nChw8c x into a plain y[N, C]; the same values (the same sums). */
void global_avgpool_forward_blocked(float *y, const float *x, size_t n, size_t c, size_t spatial);
/* batchnorm_forward (inference) with x and y both nChw8c; the same values. */
void batchnorm_forward_blocked(float *y, const float *x, const float *scale, const float *bias, const float *mean,
                               const float *var, size_t n, size_t c, size_t spatial, float epsilon);

/* ======================================================================== kernels/pool.c */

/* MaxPool (ONNX 12): y[N, C, out...] = max of x[N, C, in...] over each window; padding never wins.
 *   indices: NULL, or int64 [N, C, out...]: the flat index into x, (n*C + c) * prod(in) + row-major
 *   position in the plane (storage_order 0), of the first maximum in window order.  A window that
 *   sees no input gives -inf and index -1. */
void maxpool_forward(float *y, int64_t *indices, const float *x, size_t n, size_t c,
                     const SpatialWindow *win);

/* MaxPool storage_order 1: rewrites indices[count] from maxpool_forward in place so that the
 * position within each plane is column-major (the first spatial dim varies fastest). */
void maxpool_indices_column_major(int64_t *indices, size_t count, const SpatialWindow *win);

/* AveragePool (ONNX 19): y[N, C, out...] = mean of x[N, C, in...] over each window.  The divisor
 * counts the window's taps inside x, or with count_include_pad those inside x extended by
 * pad_begin/pad_end (taps past the end pads, possible with ceil_mode, are never counted). */
void avgpool_forward(float *y, const float *x, size_t n, size_t c, const SpatialWindow *win,
                     bool count_include_pad);

/* LpPool (ONNX 18): y[N, C, out...] = (sum over the window of |x|^p)^(1/p), pads count as 0.
 * GlobalLpPool is lppool_forward with kernel = in and out = 1. */
void lppool_forward(float *y, const float *x, size_t n, size_t c, const SpatialWindow *win, float p);
/* Its backward (onnxtune.LpPoolGrad): dx[N, C, in...] from dy[N, C, out...] and x, recomputing each
 * window's sum; 0 for a window whose output is 0. Writes dx. */
void lppool_backward(float *dx, const float *dy, const float *x, size_t n, size_t c, const SpatialWindow *win,
                     float p);

/* GlobalAveragePool / GlobalMaxPool (ONNX 1): y[N, C] (1... spatial) from x[N, C, spatial]. */
void global_avgpool_forward(float *y, const float *x, size_t n, size_t c, size_t spatial);
void global_maxpool_forward(float *y, const float *x, size_t n, size_t c, size_t spatial);

/* MaxPool backward (onnxtune.MaxPoolGrad): dx[N, C, in...] gets each dy[N, C, out...] at the first
 * maximum of its window, recomputed from x exactly as maxpool_forward chooses it (PyTorch's tie rule);
 * overlapping windows add up. GlobalMaxPool is the window kernel = in, out = 1. */
void maxpool_backward(float *dx, const float *dy, const float *x, size_t n, size_t c,
                      const SpatialWindow *win);

/* AveragePool backward (onnxtune.AveragePoolGrad): dx[N, C, in...] = sum over the windows holding
 * each position of dy / (avgpool_forward's divisor for that window). */
void avgpool_backward(float *dx, const float *dy, size_t n, size_t c, const SpatialWindow *win,
                      bool count_include_pad);

/* ======================================================================== kernels/norm.c */

/* BatchNormalization (ONNX 15, inference): y = (x - mean) / sqrt(var + epsilon) * scale + bias.
 *   x, y [N, C, spatial]; scale, bias, mean, var [C]. */
void batchnorm_forward(float *y, const float *x, const float *scale, const float *bias,
                       const float *mean, const float *var, size_t n, size_t c, size_t spatial,
                       float epsilon);

/* InstanceNormalization (ONNX 6): each x[n, c, :] is normalised by its own mean and (biased)
 * variance, then y = xhat * scale[c] + bias[c].  x, y [N, C, spatial]; scale, bias [C]. */
void instancenorm_forward(float *y, const float *x, const float *scale, const float *bias,
                          size_t n, size_t c, size_t spatial, float epsilon);

/* LayerNormalization (ONNX 17): x viewed as [rows, cols] with cols = prod(x.shape[axis:]); each row
 *   is normalised by its mean and (biased) variance, y = xhat * scale + bias.
 *   scale [cols]; bias [cols] or NULL; mean, inv_std_dev: NULL or [rows] (ONNX Mean, InvStdDev). */
void layernorm_forward(float *y, float *mean, float *inv_std_dev, const float *x,
                       const float *scale, const float *bias, size_t rows, size_t cols,
                       float epsilon);

/* LRN (ONNX 13): y = x / (bias + alpha/size * sum of x^2 over channels
 *   [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta.  x, y [N, C, spatial]. */
void lrn_forward(float *y, const float *x, size_t n, size_t c, size_t spatial, size_t size,
                 float alpha, float beta, float bias);
/* Its backward (onnxtune.LRNGrad): dx from dy and x, all [N, C, spatial]; writes dx. */
void lrn_backward(float *dx, const float *dy, const float *x, size_t n, size_t c, size_t spatial, size_t size,
                  float alpha, float beta, float bias);

/* BatchNormalization training forward (ONNX 15 training_mode=1): per channel the batch mean and
 *   biased variance over N and spatial normalise, y = xhat * scale + bias, and
 *   running_mean_out = momentum * running_mean + (1 - momentum) * batch_mean,
 *   running_var_out  = momentum * running_var  + (1 - momentum) * batch_var,
 *   batch_var biased (ONNX's reference) or, with `unbiased`, times m / (m - 1), m = N * spatial
 *   (PyTorch's training; ONNX momentum 0.9 is torch's momentum 0.1).
 *   x, y [N, C, spatial]; scale, bias, running_* [C]. running_*_out: NULL (not wanted) or [C], and
 *   may be running_mean/running_var themselves (updated in place). */
void batchnorm_train_forward(float *y, float *running_mean_out, float *running_var_out, const float *x,
                             const float *scale, const float *bias, const float *running_mean,
                             const float *running_var, size_t n, size_t c, size_t spatial, float epsilon,
                             float momentum, bool unbiased);

/* BatchNormalization backward (onnxtune.BatchNormalizationGrad); dy, x, dx [N, C, spatial], the rest [C].
 *   training: the batch statistics are recomputed from x (as batchnorm_train_forward has them) and
 *     dx = scale * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)); mean and var are not read.
 *   inference: frozen statistics mean, var: dx = dy * scale * inv_std (x is not read, and may be
 *     NULL, when dscale and dbias are NULL too).
 *   dscale = sum(dy * xhat), dbias = sum(dy) over N and spatial.  NULL outputs are skipped. */
void batchnorm_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x,
                        const float *scale, const float *mean, const float *var, size_t n, size_t c,
                        size_t spatial, float epsilon, bool training);

/* batchnorm_backward of an activation's backward: dy is first masked as ReluGrad / ClipGrad with the
 * activation's input t would (kind 1 Relu: kept where t > 0; kind 2 Clip: where lo <= t <= hi; else
 * +0), results bit-identical to that pair of kernels, without writing the masked dy (ir/pass_fuse.c
 * fuses them). am NULL or kind 0: plain batchnorm_backward. t [N, C, spatial], the BN's output; in
 * inference mode t may be NULL: recomputed from x as batchnorm_forward computed it (mean, var, scale
 * and bias, the BN's [C] bias: the same bits), so the BN's output need not be kept. */
typedef struct BnActMask {
    const float *t;
    int kind;
    float lo, hi;
    const float *bias;
} BnActMask;
/* batchnorm_forward then Relu (kind 1: v > 0 ? v : 0) or Clip (kind 2) in the same pass, the same bits
 * as the two ops (ir/pass_fuse.c). */
void batchnorm_forward_act(float *y, const float *x, const float *scale, const float *bias, const float *mean,
                           const float *var, size_t n, size_t c, size_t spatial, float epsilon, int kind, float lo,
                           float hi);
void batchnorm_act_backward(float *dx, float *dscale, float *dbias, const float *dy, const BnActMask *am,
                            const float *x, const float *scale, const float *mean, const float *var, size_t n,
                            size_t c, size_t spatial, float epsilon, bool training);

/* InstanceNormalization backward (onnxtune.InstanceNormalizationGrad): statistics per (n, c) row
 *   recomputed from x; dx as the training BatchNormalization per row; dscale, dbias [C] summed over N.
 *   NULL outputs are skipped. */
void instancenorm_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x,
                           const float *scale, size_t n, size_t c, size_t spatial, float epsilon);

/* LayerNormalization backward (onnxtune.LayerNormalizationGrad): x, dy, dx [rows, cols]; scale,
 *   dscale, dbias [cols]; mean, inv_std_dev [rows] as layernorm_forward wrote them.
 *   dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * scale;
 *   dscale = sum over rows of dy * xhat, dbias = sum over rows of dy.  NULL outputs are skipped. */
void layernorm_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x,
                        const float *scale, const float *mean, const float *inv_std_dev, size_t rows,
                        size_t cols);

/* Dropout in training (onnxtune.Dropout, onnxtune.DropoutGrad): element i of x[n] is kept when a
 *   counter-based uniform draw u(seed[0], seed[1], stream, i) in [0, 1) is >= ratio (splitmix64;
 *   seed = {seed, step} from the training program, stream tells the Dropout nodes apart), then
 *   y = keep ? x / (1 - ratio) : 0 (ratio >= 1: all 0) and mask[i] = keep (mask NULL: not wanted).
 *   The same (seed, step, stream) always gives the same mask, so dropout_backward recomputes it:
 *   dx = keep ? dy / (1 - ratio) : 0. */
void dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float ratio, const int64_t *seed,
                     uint64_t stream);
void dropout_backward(float *dx, const float *dy, size_t n, float ratio, const int64_t *seed,
                      uint64_t stream);

/* ======================================================================== kernels/softmax.c */

/* Softmax, LogSoftmax, Hardmax (ONNX 13) along one axis: x, y [outer, axis, inner].  For the
 * opset < 13 versions (coerced to 2-D) codegen passes axis = prod(shape[axis:]), inner = 1.
 * Hardmax puts 1 at the first maximum. */
void softmax_forward(float *y, const float *x, size_t outer, size_t axis, size_t inner);
void logsoftmax_forward(float *y, const float *x, size_t outer, size_t axis, size_t inner);
void hardmax_forward(float *y, const float *x, size_t outer, size_t axis, size_t inner);
/* Backward, float32: Softmax dx = y * (dy - sum_axis(dy * y)); LogSoftmax dx = dy - exp(y) * sum_axis(dy)
 * (y: the forward output). dx, dy, y [outer, axis, inner]; sums in double; dx may be dy. */
void softmax_backward(float *dx, const float *dy, const float *y, size_t outer, size_t axis, size_t inner);
void logsoftmax_backward(float *dx, const float *dy, const float *y, size_t outer, size_t axis, size_t inner);

/* ======================================================================== kernels/reduce.c */

typedef enum ReduceKind {
    REDUCE_SUM,        /* ReduceSum */
    REDUCE_MEAN,       /* ReduceMean */
    REDUCE_MAX,        /* ReduceMax */
    REDUCE_MIN,        /* ReduceMin */
    REDUCE_PROD,       /* ReduceProd */
    REDUCE_L1,         /* ReduceL1: sum |x| */
    REDUCE_L2,         /* ReduceL2: sqrt(sum x^2) */
    REDUCE_LOG_SUM,    /* ReduceLogSum: log(sum x) */
    REDUCE_LOG_SUM_EXP, /* ReduceLogSumExp: log(sum exp x), computed stably */
    REDUCE_SUM_SQUARE, /* ReduceSumSquare: sum x^2 */
} ReduceKind;

/* Reduce* (ONNX 18): x has dims[rank]; bit i of axes_mask set means dim i is reduced.  y holds the
 * kept dims in order (keepdims does not change the memory).  Sums accumulate in double in a fixed
 * order.  An empty reduction gives the identity (0, 1, -inf, +inf; NaN for Mean).  rank <= 32;
 * codegen handles noop_with_empty_axes (a copy). */
void reduce_forward(float *y, const float *x, ReduceKind kind, size_t rank, const size_t *dims,
                    uint32_t axes_mask);
void reduce_forward_f64(double *y, const double *x, ReduceKind kind, size_t rank, const size_t *dims,
                        uint32_t axes_mask);

/* ArgMax / ArgMin (ONNX 13): y[outer, inner] (keepdims does not change memory) = index along axis
 * of the first (or with select_last_index the last) extreme of x[outer, axis, inner]. */
void argmax_forward(int64_t *y, const float *x, size_t outer, size_t axis, size_t inner,
                    bool select_last_index);
void argmin_forward(int64_t *y, const float *x, size_t outer, size_t axis, size_t inner,
                    bool select_last_index);

/* ======================================================================== kernels/rnn.c */

typedef enum RnnActivationKind {
    RNN_ACT_DEFAULT,           /* the op's default for this slot (LSTM f,g,h: Sigmoid, Tanh, Tanh; */
                               /* GRU f,g: Sigmoid, Tanh; RNN f: Tanh) */
    RNN_ACT_SIGMOID,
    RNN_ACT_TANH,
    RNN_ACT_RELU,
    RNN_ACT_AFFINE,            /* alpha*x + beta */
    RNN_ACT_LEAKY_RELU,        /* alpha: slope */
    RNN_ACT_THRESHOLDED_RELU,  /* x if x > alpha else 0 */
    RNN_ACT_SCALED_TANH,       /* alpha*tanh(beta*x) */
    RNN_ACT_HARD_SIGMOID,      /* max(0, min(1, alpha*x + beta)) */
    RNN_ACT_ELU,               /* x if x >= 0 else alpha*(exp(x) - 1) */
    RNN_ACT_SOFTSIGN,          /* x / (1 + |x|) */
    RNN_ACT_SOFTPLUS,          /* log(1 + exp(x)) */
} RnnActivationKind;

/* One activation with its activation_alpha/activation_beta (codegen fills the ONNX defaults). */
typedef struct RnnActivation {
    RnnActivationKind kind;
    float alpha, beta;
} RnnActivation;

typedef enum RnnDirection {
    RNN_FORWARD,        /* "forward" */
    RNN_REVERSE,        /* "reverse" */
    RNN_BIDIRECTIONAL,  /* "bidirectional": num_directions = 2, forward first */
} RnnDirection;

/* Attributes and sizes shared by LSTM, GRU and RNN.  A zeroed struct plus sizes is the ONNX default. */
typedef struct RnnParams {
    size_t seq_length, batch, input_size, hidden_size;
    RnnDirection direction;
    int layout;                /* 0: X [seq, batch, input]; 1: X [batch, seq, input] */
    float clip;                /* > 0: clip every gate's pre-activation to [-clip, clip] */
    bool input_forget;         /* LSTM: couple the gates, f = 1 - i */
    bool linear_before_reset;  /* GRU */
    RnnActivation act[6];      /* activations: LSTM 3, GRU 2, RNN 1 per direction, forward's first */
} RnnParams;

/* Shapes (D = num_directions, H = hidden_size, layout 0 / layout 1):
 *   x  [seq, batch, input] / [batch, seq, input]
 *   y  [seq, D, batch, H]  / [batch, seq, D, H]     (NULL: not wanted)
 *   y_h, y_c, initial_h, initial_c  [D, batch, H] / [batch, D, H]   (NULL: not wanted / zeros)
 *   sequence_lens: NULL (all seq) or int32 [batch]; steps past a sequence's length leave its state
 *   alone and write zeros to y, the reverse direction starts at the sequence's last valid step.
 *   The input projection of all steps is one sgemm; each step is one sgemm on the hidden state. */

/* LSTM (ONNX 14): w [D, 4H, input], r [D, 4H, H], b [D, 8H] or NULL, peephole [D, 3H] or NULL;
 * gate order i, o, f, c (peepholes i, o, f). */
size_t lstm_forward_workspace(const RnnParams *params);
void lstm_forward(float *y, float *y_h, float *y_c, const float *x, const float *w, const float *r,
                  const float *b, const int32_t *sequence_lens, const float *initial_h,
                  const float *initial_c, const float *peephole, const RnnParams *params,
                  float *workspace);

/* GRU (ONNX 14): w [D, 3H, input], r [D, 3H, H], b [D, 6H] or NULL; gate order z, r, h. */
size_t gru_forward_workspace(const RnnParams *params);
void gru_forward(float *y, float *y_h, const float *x, const float *w, const float *r,
                 const float *b, const int32_t *sequence_lens, const float *initial_h,
                 const RnnParams *params, float *workspace);

/* RNN (ONNX 14): w [D, H, input], r [D, H, H], b [D, 2H] or NULL. */
size_t rnn_forward_workspace(const RnnParams *params);
void rnn_forward(float *y, float *y_h, const float *x, const float *w, const float *r,
                 const float *b, const int32_t *sequence_lens, const float *initial_h,
                 const RnnParams *params, float *workspace);

/* Training: the *_forward_train variants also fill `saved` [D, seq, batch, K*H] (float), per direction,
 * step (in time order) and batch row the record the backward reads (zeros past a sequence's length):
 *   LSTM  K = 7: pre-activations i, o, f, c (before clip), h_prev, c_prev, c_new     (no peepholes)
 *   GRU   K = 5: pre-activations z, r, h, Rh h_prev + Rbh (linear_before_reset, else 0), h_prev
 *   RNN   K = 2: pre-activation, h_prev
 * The *_backward kernels (backpropagation through time) take the output gradients dy, dy_h, dy_c (each
 * NULL when none flows) and write dx, dw, dr, db [D, 2*G*H] (Wb then Rb), d_initial_h, d_initial_c in
 * the shapes of the forward's inputs; a NULL gradient pointer is not computed. Their workspace is
 * *_backward_workspace bytes. */
#define LSTM_SAVED 7
#define GRU_SAVED 5
#define RNN_SAVED 2
void lstm_forward_train(float *y, float *y_h, float *y_c, float *saved, const float *x, const float *w,
                        const float *r, const float *b, const int32_t *sequence_lens, const float *initial_h,
                        const float *initial_c, const RnnParams *params, float *workspace);
void gru_forward_train(float *y, float *y_h, float *saved, const float *x, const float *w, const float *r,
                       const float *b, const int32_t *sequence_lens, const float *initial_h,
                       const RnnParams *params, float *workspace);
void rnn_forward_train(float *y, float *y_h, float *saved, const float *x, const float *w, const float *r,
                       const float *b, const int32_t *sequence_lens, const float *initial_h,
                       const RnnParams *params, float *workspace);
size_t lstm_backward_workspace(const RnnParams *params);
size_t gru_backward_workspace(const RnnParams *params);
size_t rnn_backward_workspace(const RnnParams *params);
void lstm_backward(float *dx, float *dw, float *dr, float *db, float *d_initial_h, float *d_initial_c,
                   const float *dy, const float *dy_h, const float *dy_c, const float *x, const float *w,
                   const float *r, const int32_t *sequence_lens, const float *saved, const RnnParams *params,
                   float *workspace);
void gru_backward(float *dx, float *dw, float *dr, float *db, float *d_initial_h, const float *dy,
                  const float *dy_h, const float *x, const float *w, const float *r,
                  const int32_t *sequence_lens, const float *saved, const RnnParams *params, float *workspace);
void rnn_backward(float *dx, float *dw, float *dr, float *db, float *d_initial_h, const float *dy,
                  const float *dy_h, const float *x, const float *w, const float *r,
                  const int32_t *sequence_lens, const float *saved, const RnnParams *params, float *workspace);

/* ======================================================================== kernels/erf.c */

/* float32 erf, max abs error about 1e-7 against double erf; NaN stays NaN. y may be x. */
void erf_f32(float *y, const float *x, size_t n);
/* Exact (erf) Gelu forward, and its backward dx = dy * Gelu'(x); outputs may alias inputs. */
void gelu_erf_f32(float *y, const float *x, size_t n);
void gelu_erf_backward_f32(float *dx, const float *dy, const float *x, size_t n);
/* y[i] = exp(x[i] - mx) (x[i] <= mx: Softmax's max-subtracted rows; erf.c's vector exp), returns the sum. */
double exp_sub_f32(float *y, const float *x, float mx, size_t n);
/* Erf's gradient dx = dy * 2/sqrt(pi) * exp(-x^2) (AVX2 build: a vector exp of about 1 ulp). */
void erf_backward_f32(float *dx, const float *dy, const float *x, size_t n);
/* Which build erf_f32 runs: "avx2" (AVX2+FMA, by cpuid) or "generic" (or ONNXTUNE_ERF_ISA=generic). */
const char *erf_f32_isa(void);

/* ======================================================================== kernels/elementwise.c */

/* Element types, numbered like ONNX's TensorProto.DataType (the runtime does not include ir.h).
 * Half types are stored as their uint16_t bit patterns; bool is one uint8_t, 0 or 1. */
typedef enum {
    RT_UNDEFINED = 0,
    RT_FLOAT = 1,
    RT_UINT8 = 2,
    RT_INT8 = 3,
    RT_UINT16 = 4,
    RT_INT16 = 5,
    RT_INT32 = 6,
    RT_INT64 = 7,
    RT_BOOL = 9,      /* uint8_t, 0 or 1 */
    RT_FLOAT16 = 10,  /* IEEE binary16 bits */
    RT_DOUBLE = 11,
    RT_UINT32 = 12,
    RT_UINT64 = 13,
    RT_BFLOAT16 = 16, /* upper 16 bits of a float32 */
} RtDType;

#define RT_MAX_RANK 8   /* kernels taking a rank accept 0..RT_MAX_RANK */

size_t rt_dtype_size(RtDType dt);      /* bytes per element; 0 for codes the runtime does not handle */
const char *rt_dtype_name(RtDType dt); /* "float32", "int64", ... ; "?" for unknown codes */
/* Half conversions, round to nearest even (NaN stays a quiet NaN, overflow gives inf). */
float rt_half_to_float(uint16_t h);
uint16_t rt_float_to_half(float f);
uint16_t rt_double_to_half(double d);   /* rounds once (no double rounding through float) */
float rt_bfloat16_to_float(uint16_t h);
uint16_t rt_float_to_bfloat16(float f);
uint16_t rt_double_to_bfloat16(double d);

/* Broadcast strides (in elements) of an operand of shape xdims[xrank] read as shape ydims[yrank]
 * under ONNX multidirectional broadcasting (dims aligned on the right): 0 on broadcast dims.
 * xstrides has yrank entries. The compiler calls this at code generation time. */
void rt_broadcast_strides(int yrank, const size_t *ydims, int xrank, const size_t *xdims,
                          size_t *xstrides);

/* Unary ops. alpha/beta carry the attributes named on each row (ir/unary.def maps each ONNX op, with
 * its attribute defaults, to one of these). float16/bfloat16 tensors are computed by codegen through
 * Cast to float. */
typedef enum {
    UNARY_ABS,              /* float, double, all ints (unsigned: identity) */
    UNARY_NEG,              /* float, double, signed ints (wraps: -INT_MIN = INT_MIN) */
    UNARY_SIGN,             /* float, double, all ints; sign(NaN) = NaN */
    UNARY_RELU,             /* float, double, signed ints */
    UNARY_RECIPROCAL,       /* float/double only from here to UNARY_SHRINK */
    UNARY_FLOOR,
    UNARY_CEIL,
    UNARY_ROUND,            /* half to even */
    UNARY_SQRT,
    UNARY_EXP,
    UNARY_LOG,
    UNARY_SIN,
    UNARY_COS,
    UNARY_TAN,
    UNARY_ASIN,
    UNARY_ACOS,
    UNARY_ATAN,
    UNARY_SINH,
    UNARY_COSH,
    UNARY_ASINH,
    UNARY_ACOSH,
    UNARY_ATANH,
    UNARY_ERF,
    UNARY_SIGMOID,
    UNARY_TANH,
    UNARY_SOFTPLUS,         /* log(1 + exp(x)), computed without overflow */
    UNARY_SOFTSIGN,         /* x / (1 + |x|) */
    UNARY_LEAKY_RELU,       /* alpha */
    UNARY_ELU,              /* alpha */
    UNARY_SELU,             /* alpha, beta = gamma */
    UNARY_CELU,             /* alpha */
    UNARY_HARD_SIGMOID,     /* alpha, beta: max(0, min(1, alpha*x + beta)) */
    UNARY_HARD_SWISH,       /* x * max(0, min(1, x/6 + 1/2)) */
    UNARY_THRESHOLDED_RELU, /* alpha: x > alpha ? x : 0 */
    UNARY_MISH,             /* x * tanh(softplus(x)) */
    UNARY_GELU,             /* alpha 0: x/2 (1 + erf(x/sqrt 2)); else x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    UNARY_SHRINK,           /* alpha = bias, beta = lambd */
    UNARY_NOT,              /* bool only */
    UNARY_BITWISE_NOT,      /* ints only */
    UNARY_COUNT
} UnaryOp;

bool unary_supports(UnaryOp op, RtDType dt);   /* codegen asks this; unsupported pairs are no-ops */
/* y[n], x[n] of dtype dt; y may be x (in place). Constant folding calls it too (RT_DOUBLE, RT_INT64). */
void unary_forward(UnaryOp op, RtDType dt, void *y, const void *x, size_t n, float alpha, float beta);

/* Clip-6/11/12/13: y = min(max(x, *lo), *hi); lo/hi point at one element of dt, or are NULL for
 * no bound (NaN stays NaN). Any numeric dt except the half types. y[n], x[n]; y may be x. */
void clip_forward(RtDType dt, void *y, const void *x, size_t n, const void *lo, const void *hi);

/* IsNaN, IsInf. x[n] of dt in {FLOAT, DOUBLE, FLOAT16, BFLOAT16}; y[n] bool. */
void isnan_forward(RtDType dt, uint8_t *y, const void *x, size_t n);
void isinf_forward(RtDType dt, uint8_t *y, const void *x, size_t n, bool detect_negative,
                   bool detect_positive);

/* Binary ops. Comparisons and logical ops write bool (see binary_output_dtype). */
typedef enum {
    BINARY_ADD,             /* ints wrap around */
    BINARY_SUB,
    BINARY_MUL,
    BINARY_DIV,             /* ints truncate toward zero; int x/0 gives 0 */
    BINARY_POW,             /* a and b of the same dtype (codegen casts the exponent); int a^-n -> 0 unless |a|==1 */
    BINARY_MOD,             /* Mod fmod=0: result has the sign of the divisor (Python); int x%0 gives 0 */
    BINARY_FMOD,            /* Mod fmod=1: sign of the dividend (C fmod / %) */
    BINARY_MIN,             /* Min/Max propagate NaN */
    BINARY_MAX,
    BINARY_PRELU,           /* a < 0 ? a*b : a (b is the slope, broadcast to a) */
    BINARY_EQUAL,           /* -> bool; any dtype including bool */
    BINARY_LESS,            /* -> bool; numeric dtypes */
    BINARY_LESS_EQUAL,
    BINARY_GREATER,
    BINARY_GREATER_EQUAL,
    BINARY_AND,             /* bool only -> bool */
    BINARY_OR,
    BINARY_XOR,
    BINARY_SHIFT_LEFT,      /* BitShift, unsigned ints; a shift >= the width gives 0 */
    BINARY_SHIFT_RIGHT,
    BINARY_BITWISE_AND,     /* ints and bool */
    BINARY_BITWISE_OR,
    BINARY_BITWISE_XOR,
    BINARY_COUNT
} BinaryOp;

/* Dtypes: FLOAT DOUBLE INT8..INT64 UINT8..UINT64 BOOL as allowed per row above (no half types). */
bool binary_supports(BinaryOp op, RtDType dt);
RtDType binary_output_dtype(BinaryOp op, RtDType dt);
/* Add Sub Mul Div Pow Mod Min Max PRelu Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor
 * BitShift BitwiseAnd/Or/Xor with broadcasting (variadic Sum/Min/Max/Mean are chains of these).
 * y: ydims[rank] of binary_output_dtype(op, dt), dense. a, b: dtype dt, element (i0..ir-1) read at
 * sum(i_k * astrides[k]) (strides in elements, 0 on broadcast dims: see rt_broadcast_strides).
 * rank 0 is a scalar op. y may be a or b when that operand is not broadcast. */
void binary_forward(BinaryOp op, RtDType dt, void *y, const void *a, const void *b, int rank,
                    const size_t *ydims, const size_t *astrides, const size_t *bstrides);

/* Where: y = cond ? a : b with three-way broadcasting (cond: bool; a, b, y: any dtype of
 * `elsize` bytes). Shapes/strides as in binary_forward. */
void where_forward(size_t elsize, void *y, const uint8_t *cond, const void *a, const void *b, int rank,
                   const size_t *ydims, const size_t *cstrides, const size_t *astrides,
                   const size_t *bstrides);

/* Expand (and any broadcast copy): y[ydims] = x read with xstrides (0 on broadcast dims). */
void expand_forward(size_t elsize, void *y, const void *x, int rank, const size_t *ydims,
                    const size_t *xstrides);

/* Cast / CastLike between all RtDType codes. float -> int truncates toward zero and saturates
 * (NaN -> 0); -> bool is x != 0; -> FLOAT16/BFLOAT16 rounds to nearest even. x[n], y[n]. */
bool cast_supports(RtDType to, RtDType from);
void cast_forward(RtDType to, void *y, RtDType from, const void *x, size_t n);

/* Backward of the unary activations, float32: dx[i] = dy[i] * f'(at x[i]). t is the forward input X,
 * or the forward output Y for the ops unary_backward_reads_output() names (Sigmoid, Tanh, Sqrt,
 * Reciprocal, Relu: X > 0 exactly where Y > 0, and Y lets Relu run in place and its input die, as
 * PyTorch's inplace ReLU saves only its result). alpha/beta as in unary_forward. Derivatives at kinks follow PyTorch: Relu, LeakyRelu,
 * Elu, Selu, Celu, ThresholdedRelu take the x <= threshold side; Abs'(0) = 0; HardSigmoid passes only
 * strictly inside its linear part; HardSwish'(x) = (2x+3)/6 on [-3, 3) (torch 1.13). dx may be dy or t.
 * The ops are those ir/unary.def marks FUSED_X or FUSED_Y; others are no-ops (unary_backward_supports
 * false). */
bool unary_backward_supports(UnaryOp op);
bool unary_backward_reads_output(UnaryOp op);
void unary_backward(UnaryOp op, float *dx, const float *dy, const float *t, size_t n, float alpha,
                    float beta);

/* Clip backward, float32: dx = dy where lo <= x <= hi (torch.clamp's inclusive mask), else 0; lo/hi
 * NULL: no bound. dx may be dy. */
void clip_backward(float *dx, const float *dy, const float *x, size_t n, const float *lo, const float *hi);

/* ======================================================================== kernels/movement.c */

/* Data movement. Kernels that only copy take the element size in bytes (any dtype); kernels that
 * compute take an RtDType. Index tensors are int64 or int32 (index_dt = RT_INT64 or RT_INT32);
 * negative indices count from the end. An index still out of range after that (codegen cannot
 * always prove it) reads as zero / is skipped, never faults. Outputs must not overlap inputs unless
 * a kernel says so. Reshape, Flatten, Squeeze, Unsqueeze and Identity are views and have no kernel;
 * NonZero and Unique have data-dependent shapes: none. */

/* Transpose: y = x permuted, y dim i = x dim perm[i]. x: xdims[rank] (rank <= RT_MAX_RANK). */
void transpose_forward(size_t elsize, void *y, const void *x, int rank, const size_t *xdims,
                       const int *perm);

/* Concat: xs[k]: [outer, axis_dims[k], inner] -> y: [outer, sum(axis_dims), inner]. */
void concat_forward(size_t elsize, void *y, int n_inputs, const void *const *xs, const size_t *axis_dims,
                    size_t outer, size_t inner);
/* Split: x: [outer, sum(axis_dims), inner] -> ys[k]: [outer, axis_dims[k], inner]. */
void split_forward(size_t elsize, void *const *ys, int n_outputs, const size_t *axis_dims, const void *x,
                   size_t outer, size_t inner);

/* Slice-13 resolved per dim: y[i0..] = x[starts[0] + i0*steps[0], ...]; codegen clamps starts/ends
 * as ONNX says and passes every dim (start 0, step 1, ydim = xdim for unsliced ones). Steps may be
 * negative, never 0. x: xdims[rank], y: ydims[rank]. */
void slice_forward(size_t elsize, void *y, const void *x, int rank, const size_t *xdims,
                   const int64_t *starts, const int64_t *steps, const size_t *ydims);

/* Gather: x: [outer, axis_dim, inner], indices: [n_indices] (any shape, flattened),
 * y: [outer, n_indices, inner]. */
void gather_forward(size_t elsize, void *y, const void *x, size_t outer, size_t axis_dim, size_t inner,
                    RtDType index_dt, const void *indices, size_t n_indices);

/* GatherElements: x: xdims[rank], indices and y: idims[rank]; y[i] = x[i with i[axis] = indices[i]]. */
void gather_elements_forward(size_t elsize, void *y, const void *x, const size_t *xdims, int rank, int axis,
                             RtDType index_dt, const void *indices, const size_t *idims);

/* GatherND with batch_dims: x: [batch, index_dims[0..k-1], slice] (the dims after batch_dims,
 * flattened), indices: [batch, n_tuples, k], y: [batch, n_tuples, slice]. */
void gather_nd_forward(size_t elsize, void *y, const void *x, size_t batch, int k, const size_t *index_dims,
                       size_t slice, RtDType index_dt, const void *indices, size_t n_tuples);

/* Reduction of ScatterElements-16/18 and ScatterND-16/18. */
typedef enum {
    SCATTER_NONE,   /* overwrite; with duplicate indices the last update wins */
    SCATTER_ADD,
    SCATTER_MUL,
    SCATTER_MAX,
    SCATTER_MIN,
} ScatterReduction;

/* ScatterElements (and Scatter-9/11): y = x, then y[i with i[axis] = indices[i]] (op)= updates[i].
 * x, y: xdims[rank] (y may be x); indices, updates: idims[rank]. dt: numeric or bool (NONE only). */
void scatter_elements_forward(RtDType dt, void *y, const void *x, const size_t *xdims, int rank, int axis,
                              RtDType index_dt, const void *indices, const void *updates,
                              const size_t *idims, ScatterReduction red);

/* ScatterND: x, y: [index_dims[0..k-1], slice] (y may be x); indices: [n_tuples, k];
 * updates: [n_tuples, slice]. Tuples are applied in order. */
void scatter_nd_forward(RtDType dt, void *y, const void *x, int k, const size_t *index_dims, size_t slice,
                        RtDType index_dt, const void *indices, const void *updates, size_t n_tuples,
                        ScatterReduction red);

typedef enum {
    PAD_CONSTANT,   /* fill with *value */
    PAD_REFLECT,    /* mirror without repeating the edge (NumPy 'reflect'); a dim of 1 repeats it */
    PAD_EDGE,       /* repeat the edge */
    PAD_WRAP,       /* Pad-19 'wrap': periodic */
} PadMode;

/* Pad-2/11/13: y dim d = xdims[d] + pads_begin[d] + pads_end[d]; negative pads crop.
 * y[i] = x[i - pads_begin] inside x, else per mode. value: one element (elsize bytes) for
 * PAD_CONSTANT, may be NULL for zero. */
void pad_forward(size_t elsize, void *y, const size_t *ydims, const void *x, const size_t *xdims, int rank,
                 const int64_t *pads_begin, PadMode mode, const void *value);

/* Pad backward, float32 (any mode): dx [xdims] = 0, then each dy [ydims] element added to the x element
 * pad_forward copied it from (constant padding: none); reflect/edge/wrap read some x elements several
 * times and their gradients add up. */
void pad_backward(float *dx, const size_t *xdims, const float *dy, const size_t *ydims, int rank,
                  const int64_t *pads_begin, PadMode mode);

/* Slice backward, float32: dx [xdims] = 0, then dx[starts[d] + i_d*steps[d]] = dy[i] (ydims, starts and
 * steps resolved as for slice_forward; a slice never repeats an element). */
void slice_backward(float *dx, const float *dy, int rank, const size_t *xdims, const int64_t *starts,
                    const int64_t *steps, const size_t *ydims);

/* Gather backward, float32 (the embedding gradient): dx [outer, axis_dim, inner] = 0, then
 * dx[o, indices[j], :] += dy[o, j, :] in index order, so repeated indices add up deterministically.
 * Out-of-range indices are skipped as in gather_forward. */
void gather_backward(float *dx, const float *dy, size_t outer, size_t axis_dim, size_t inner, RtDType index_dt,
                     const void *indices, size_t n_indices);

/* Tile: y dim d = xdims[d] * repeats[d]. */
void tile_forward(size_t elsize, void *y, const void *x, const size_t *xdims, int rank, const size_t *repeats);

/* DepthToSpace: x: [n, c, h, w] -> y: [n, c/(b*b), h*b, w*b]; crd: CRD mode, else DCR (default). */
void depth_to_space_forward(size_t elsize, void *y, const void *x, size_t n, size_t c, size_t h, size_t w,
                            size_t b, bool crd);
/* SpaceToDepth: x: [n, c, h, w] -> y: [n, c*b*b, h/b, w/b]. */
void space_to_depth_forward(size_t elsize, void *y, const void *x, size_t n, size_t c, size_t h, size_t w,
                            size_t b);

/* Trilu: x, y: [batch, rows, cols] (y may be x); upper keeps j - i >= k, lower keeps j - i <= k, rest 0. */
void trilu_forward(size_t elsize, void *y, const void *x, size_t batch, size_t rows, size_t cols, int64_t k,
                   bool upper);

/* CumSum: x, y: [outer, axis_dim, inner] (y must not alias x); dt: FLOAT DOUBLE INT32 INT64 UINT32 UINT64. */
void cumsum_forward(RtDType dt, void *y, const void *x, size_t outer, size_t axis_dim, size_t inner,
                    bool exclusive, bool reverse);

/* OneHot: indices: [outer, inner] of any numeric index_dt (floats truncate) -> y: [outer, depth,
 * inner] of dt; values: {off, on} of dt. Index i < 0 counts from depth; out of range: all off. */
void onehot_forward(RtDType dt, void *y, RtDType index_dt, const void *indices, size_t outer, size_t depth,
                    size_t inner, const void *values);

/* Range: y[i] = start + i * delta, i < n; start, delta point at one element of dt
 * (FLOAT DOUBLE INT16 INT32 INT64). */
void range_forward(RtDType dt, void *y, const void *start, const void *delta, size_t n);

/* EyeLike: y: [rows, cols] of dt, 1 where j - i == k, else 0. */
void eyelike_forward(RtDType dt, void *y, size_t rows, size_t cols, int64_t k);

/* Compress: keeps the slices i of x: [outer, axis_dim, inner] with i < cond_len and cond[i] != 0,
 * writing y: [outer, count, inner]; returns count (the codegen knows it when cond is constant). */
size_t compress_forward(size_t elsize, void *y, const void *x, size_t outer, size_t axis_dim, size_t inner,
                        const uint8_t *cond, size_t cond_len);

/* TopK: x: [outer, axis_dim, inner] of dt (numeric) -> values: [outer, k, inner] of dt and
 * indices: [outer, k, inner] int64; sorted by value (largest: descending), ties by lower index,
 * NaN counts as larger than everything. Always sorted. work: topk_workspace(axis_dim) bytes. */
size_t topk_workspace(size_t axis_dim);
void topk_forward(RtDType dt, void *values, int64_t *indices, const void *x, size_t outer, size_t axis_dim,
                  size_t inner, size_t k, bool largest, void *work);

/* ======================================================================== kernels/resize.c */

/* Resize-11/13/18/19 (no antialias), float32. Codegen resolves scales or sizes into ydims and one
 * scale per axis (scales[d] = ydims[d] / xdims[d] when sizes were given), as the ONNX reference
 * does; "length_resized" below is scales[d] * xdims[d]. Upsample-7/9 maps to ASYMMETRIC with
 * NEAREST_FLOOR (nearest) or linear. Every axis is resized by the same rule (N and C usually have
 * scale 1, which copies them). Values outside the input are taken from the edge. */
typedef enum {
    RESIZE_NEAREST,
    RESIZE_LINEAR,              /* bilinear/trilinear/...: separable, 2 taps per resized axis */
    RESIZE_CUBIC,               /* 4 taps per axis, cubic_coeff_a */
} ResizeMode;

typedef enum {
    RESIZE_HALF_PIXEL,          /* (x + 0.5) / scale - 0.5 (the ONNX default) */
    RESIZE_PYTORCH_HALF_PIXEL,  /* same, but 0 when length_resized <= 1 */
    RESIZE_ALIGN_CORNERS,       /* x * (in - 1) / (length_resized - 1), 0 when length_resized == 1 */
    RESIZE_ASYMMETRIC,          /* x / scale */
    RESIZE_TF_HALF_PIXEL_FOR_NN,/* (x + 0.5) / scale */
    RESIZE_TF_CROP_AND_RESIZE,  /* roi-relative; outside the input: extrapolation_value */
    RESIZE_HALF_PIXEL_SYMMETRIC,/* Resize-19: half_pixel re-centred */
} ResizeCoord;

typedef enum {
    RESIZE_ROUND_PREFER_FLOOR,  /* the ONNX default */
    RESIZE_ROUND_PREFER_CEIL,
    RESIZE_FLOOR,
    RESIZE_CEIL,
} ResizeNearestMode;

typedef struct ResizeParams {
    ResizeMode mode;
    ResizeCoord coord;
    ResizeNearestMode nearest;  /* RESIZE_NEAREST only */
    float cubic_coeff_a;        /* RESIZE_CUBIC only; ONNX default -0.75 */
    bool exclude_outside;       /* linear/cubic: zero the taps outside the input, renormalise (nearest: ignored) */
    float extrapolation_value;  /* tf_crop_and_resize only */
    const float *roi;           /* [2*rank]: starts then ends (normalised); tf_crop_and_resize only */
} ResizeParams;

/* Bytes of scratch resize_forward needs (per-axis tap tables). */
size_t resize_workspace(int rank, const size_t *ydims, const ResizeParams *p);
/* x: xdims[rank] -> y: ydims[rank]; scales[rank]; work: resize_workspace() bytes, 8-aligned. */
void resize_forward(float *y, const size_t *ydims, const float *x, const size_t *xdims, int rank,
                    const double *scales, const ResizeParams *p, void *work);
/* Its backward (onnxtune.ResizeGrad): dx [xdims] from dy [ydims], the same parameters and workspace
 * (resize_workspace of ydims); writes dx. */
void resize_backward(float *dx, const size_t *xdims, const float *dy, const size_t *ydims, int rank,
                     const double *scales, const ResizeParams *p, void *work);

/* ======================================================================== kernels/loss.c */

/* Training losses, PyTorch's formulas with mean reduction (float32 in, double accumulation, fixed
 * order). Forward writes the scalar *loss; backward WRITES d loss_total / d x = dloss * d loss / d x
 * (dloss: the scalar upstream gradient). An empty batch gives a NaN loss and writes nothing. */

/* nn.CrossEntropyLoss(label_smoothing=eps): logits [n, c], target int64 [n] class indices,
 *   loss = mean_i[(1-eps) * -log p[i, y_i] + eps/c * sum_j -log p[i, j]],  p = softmax(logits[i]);
 *   dlogits[i, j] = (p[i, j] - (1-eps) * [j == y_i] - eps/c) * dloss / n.
 * A target outside [0, c) contributes only its smoothing term (programs check targets first). */
size_t cross_entropy_check_targets(const int64_t *target, size_t n, size_t c); /* first bad index, or n */
void cross_entropy_forward(float *loss, const float *logits, const int64_t *target, size_t n, size_t c,
                           float label_smoothing);
void cross_entropy_backward(float *dlogits, const float *dloss, const float *logits, const int64_t *target,
                            size_t n, size_t c, float label_smoothing);

/* nn.MSELoss: mean (x - t)^2, dx = 2 (x - t) dloss / n.  x, target, dx [n]. */
void mse_loss_forward(float *loss, const float *x, const float *target, size_t n);
void mse_loss_backward(float *dx, const float *dloss, const float *x, const float *target, size_t n);
/* nn.L1Loss: mean |x - t|, dx = sign(x - t) dloss / n (0 where x == t). */
void l1_loss_forward(float *loss, const float *x, const float *target, size_t n);
void l1_loss_backward(float *dx, const float *dloss, const float *x, const float *target, size_t n);
/* nn.BCEWithLogitsLoss: mean[max(x, 0) - x t + log(1 + exp(-|x|))], dx = (sigmoid(x) - t) dloss / n. */
void bce_with_logits_forward(float *loss, const float *x, const float *target, size_t n);
void bce_with_logits_backward(float *dx, const float *dloss, const float *x, const float *target, size_t n);

/* ONNX NegativeLogLikelihoodLoss-13 and SoftmaxCrossEntropyLoss-13 (nn.NLLLoss, nn.CrossEntropyLoss with
 * weight, ignore_index and reduction): input [n, c, inner] (inner = d1 * ... * dk), target int64 or int32
 * [n, inner], weight [c] or NULL (all 1). Position i = (b, j) has loss l_i = -w[t_i] * x[b, t_i, j]
 * (NLL; SCE first takes log_softmax over c), 0 with weight 0 where t_i == ignore_index. reduction none
 * writes l [n, inner]; sum writes sum_i l_i; mean sum_i l_i / sum_i w[t_i] (NaN when every position is
 * ignored, as PyTorch). A target outside [0, c) that is not ignored gives a NaN loss there (PyTorch
 * raises) and no gradient. Backward WRITES dx [n, c, inner] from dloss (the shape of the loss). */
typedef enum { NLL_NONE = 0, NLL_SUM, NLL_MEAN } NllReduction;
typedef struct NllParams {
    size_t n, c, inner;
    int reduction;              /* NllReduction */
    bool has_ignore;
    int64_t ignore_index;
    bool target_int32;          /* target is int32, else int64 */
} NllParams;
void nll_loss_forward(float *loss, const float *x, const void *target, const float *weight, const NllParams *p);
void nll_loss_backward(float *dx, const float *dloss, const void *target, const float *weight, const NllParams *p);
/* log_prob [n, c, inner] (NULL: not wanted) = log_softmax(x) over c. */
void softmax_cross_entropy_forward(float *loss, float *log_prob, const float *x, const void *target,
                                   const float *weight, const NllParams *p);
/* dx = g_i * w[t_i] * (softmax(x) - onehot(t_i)) over c, g_i the upstream gradient of position i. */
void softmax_cross_entropy_backward(float *dx, const float *dloss, const float *x, const void *target,
                                    const float *weight, const NllParams *p);

/* ======================================================================== kernels/optim.c */

/* Optimizer steps of torch 1.13 (torch.optim, single-tensor CPU path), in place on float32 param[n] and
 * state[n]; grad[n] is read only. step is the 1-based number of this step; lr the learning rate of
 * this step. grad_scale: NULL, or clip_grad_norm's scale, applied to grad first (grad.mul_(coef)).
 * Hyperparameters are doubles (torch's are Python floats) and rounded to float where torch does. */

/* SGD: g = grad + wd*p;  if momentum: buf = (step 1 ? g : momentum*buf + (1-dampening)*g),
 *      g = nesterov ? g + momentum*buf : buf;  p = p - lr*g.
 * momentum_buffer: NULL when momentum is 0. */
void sgd_update(float *param, const float *grad, float *momentum_buffer, size_t n, double lr, int64_t step,
                double momentum, double dampening, bool nesterov, double weight_decay, const float *grad_scale);

/* Adam (decoupled false): g = grad + wd*p.  AdamW (decoupled true): p = p*(1 - lr*wd).  Then
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
 *   denom = sqrt(v)/sqrt(1 - b2^t) + eps;  p = p - (lr/(1 - b1^t)) * m/denom.
 * exp_avg (m) and exp_avg_sq (v) start at zero. */
void adam_update(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, size_t n, double lr,
                 int64_t step, double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                 const float *grad_scale);

/* clip_grad_norm_(max_norm): total = L2 norm of the per-tensor L2 norms of grads[k][sizes[k]] (k < count),
 * *total_norm = total, *scale = min(max_norm / (total + 1e-6), 1) (NaN stays NaN). The gradients are not
 * touched: the update kernels take scale as grad_scale. */
void clip_grad_norm(float *scale, float *total_norm, const float *const *grads, const size_t *sizes,
                    size_t count, double max_norm);

/* ======================================================================== kernels/optim_onnx.c */

/* The ONNX training ops of ai.onnx.preview.training (opset 1), one tensor x[n] per call, as the ONNX
 * reference computes them. r: the learning rate, t: the step count (scalars read at run time); the
 * outputs are new tensors (the inputs are not changed). g' = norm_coefficient * x + g throughout. */
/* Adagrad: r' = r / (1 + t decay); h_new = h + g'^2; x_new = x - r' g' / (sqrt(h_new) + eps). */
void onnx_adagrad(float *x_new, float *h_new, const float *r, const int64_t *t, const float *x, const float *g,
                  const float *h, size_t n, float decay_factor, float epsilon, float norm_coefficient);
/* Adam: v_new = alpha v + (1 - alpha) g'; h_new = beta h + (1 - beta) g'^2;
 * r' = t > 0 ? r sqrt(1 - beta^t) / (1 - alpha^t) : r; x_new = (1 - norm_post) (x - r' v_new / (sqrt(h_new) + eps)). */
void onnx_adam(float *x_new, float *v_new, float *h_new, const float *r, const int64_t *t, const float *x,
               const float *g, const float *v, const float *h, size_t n, float alpha, float beta, float epsilon,
               float norm_coefficient, float norm_coefficient_post);
/* Momentum: b = t > 0 ? beta : 1; v_new = alpha v + b g'; x_new = x - r v_new, or with nesterov
 * x_new = x - r (g' + alpha v_new). */
void onnx_momentum(float *x_new, float *v_new, const float *r, const int64_t *t, const float *x, const float *g,
                   const float *v, size_t n, float alpha, float beta, float norm_coefficient, bool nesterov);

/* ======================================================================== kernels/signal.c */

/* Signal ops of opset 17 in float32, computed in double. Complex values are (real, imaginary) pairs. */
typedef enum {
    WINDOW_HANN,            /* 0.5 - 0.5 cos(2 pi i / N) */
    WINDOW_HAMMING,         /* 25/46 - 21/46 cos(2 pi i / N) */
    WINDOW_BLACKMAN,        /* 0.42 - 0.5 cos(2 pi i / N) + 0.08 cos(4 pi i / N) */
} WindowKind;
/* y[size]; N = size when periodic, else size - 1. */
void window_forward(WindowKind kind, float *y, size_t size, bool periodic);
/* DFT along one axis: x [outer, n_in, inner, xc] (xc 1: real, 2: complex), y [outer, n_out, inner, 2] with
 * y[k] = scale sum_{j < min(n_in, n_fft)} x[j] e^(-+2 pi i j k / n_fft) for k < n_out (n_out = n_fft, or
 * n_fft/2 + 1 one-sided); inverse: the + sign and scale 1/n_fft. */
void dft_forward(float *y, const float *x, size_t outer, size_t n_in, size_t inner, size_t xc, size_t n_fft,
                 size_t n_out, bool inverse);
/* STFT: signal x [batch, length, xc], y [batch, frames, n_out, 2]: frame f is x[f*step .. f*step + flen)
 * times window[flen] (NULL: ones), transformed as dft_forward with n_fft = flen. */
void stft_forward(float *y, const float *x, const float *window, size_t batch, size_t length, size_t xc,
                  size_t step, size_t flen, size_t frames, size_t n_out);
/* MelWeightMatrix: y [dft_length/2 + 1, bins], triangular filters as the ONNX reference computes them
 * (bins + 2 mel points; edges floored to DFT bins of (dft_length + 1) * hz / sample_rate). */
void mel_weight_matrix_forward(float *y, size_t bins, size_t dft_length, double sample_rate, double lower_hz,
                               double upper_hz);

/* ======================================================================== kernels/image.c */

/* GridSample-16 (torch.nn.functional.grid_sample, 2-D): x [n, c, h, w], grid [n, oh, ow, 2] (x then y,
 * -1..1), y [n, c, oh, ow]. mode 0 bilinear, 1 nearest (round half to even), 2 bicubic (A = -0.75);
 * padding 0 zeros, 1 border, 2 reflection. */
void gridsample_forward(float *y, const float *x, const float *grid, size_t n, size_t c, size_t h, size_t w,
                        size_t oh, size_t ow, int mode, int padding, bool align_corners);
/* RoiAlign-16: x [n, c, h, w], rois [r, 4] (x1, y1, x2, y2), batch [r] -> y [r, c, oh, ow]. Each bin
 * averages (or, max_mode, takes the max of) sampling x sampling bilinear samples (sampling 0: ceil(roi
 * size / bins)); half_pixel shifts the roi by -0.5 and does not force it to at least 1 pixel. */
void roialign_forward(float *y, const float *x, const float *rois, const int64_t *batch, size_t n, size_t c,
                      size_t h, size_t w, size_t r, size_t oh, size_t ow, size_t sampling, float spatial_scale,
                      bool half_pixel, bool max_mode);
/* MaxUnpool-11: y[ydims] = 0, then x[i] goes where index[i] points for i < nx. Indices are flat into the
 * default unpooled shape idims (MaxPool's input); an output_shape ydims larger than that keeps their
 * coordinates (the extra rows and columns stay 0). Indices outside idims or ydims are skipped. */
void maxunpool_forward(float *y, const size_t *ydims, const float *x, const int64_t *index, size_t nx,
                       const size_t *idims, size_t rank);

/* ======================================================================== kernels/misc.c */

/* ReverseSequence-10: x [d0, d1, rest] of es-byte elements; batch on axis batch_axis (0 or 1), time on
 * the other; y[b, t] = x[b, lens[b] - 1 - t] for t < lens[b] (lens clamped to the time dim), else x[b, t]. */
void reverse_sequence_forward(void *y, const void *x, const int64_t *lens, size_t d0, size_t d1, size_t rest,
                              size_t es, int batch_axis);
/* Det: y[batch] = det(x[batch, m, m]), LU with partial pivoting in double. */
void det_forward(float *y, const float *x, size_t batch, size_t m);
/* TfIdfVectorizer-9 on int32/int64 rows x[rows, c] -> y[rows, width]. The pool holds the n-grams by
 * length: those of length n + 1 start at pool[starts[n]] (nstarts lengths), the k-th of them all maps to
 * y column index[k]. Counted: n-grams of lengths min_n..max_n whose items are skip + 1 apart, skip in
 * 0..max_skip (1-grams once). mode 0 TF (counts), 1 IDF (weight when counted), 2 TFIDF (count * weight);
 * weights[k] (NULL: 1) per pool n-gram. */
void tfidf_forward(float *y, RtDType xt, const void *x, size_t rows, size_t c, const int64_t *pool,
                   size_t npool, const int64_t *starts, size_t nstarts, const int64_t *index, const float *weights,
                   size_t width, size_t min_n, size_t max_n, size_t max_skip, int mode);

/* ======================================================================== kernels/quant.c */

/* Quantization (ONNX opsets 10-13). Quantized tensors are RT_UINT8 or RT_INT8 (RT_INT32 where said);
 * zero points are NULL (0) or of the quantized type; scales float32. Rounding is half to even and
 * results saturate to the type's range. Per-axis parameters: element i of x[n] uses scale[(i / inner)
 * % nscale] (nscale 1: per tensor). */
/* QuantizeLinear: y = saturate(rint(x / scale) + zp). */
void quantize_linear_forward(RtDType yt, void *y, const float *x, const float *scale, const void *zp, size_t n,
                             size_t nscale, size_t inner);
/* DequantizeLinear: y = (x - zp) * scale; x may be RT_INT32 (zp then NULL). */
void dequantize_linear_forward(RtDType xt, float *y, const void *x, const float *scale, const void *zp, size_t n,
                               size_t nscale, size_t inner);
/* DynamicQuantizeLinear: uint8 y[n], *scale = (max(0, max x) - min(0, min x)) / 255,
 * *zp = saturate(rint(-min(0, min x) / scale)), y = saturate(rint(x / scale) + zp). */
void dynamic_quantize_linear_forward(uint8_t *y, float *scale, uint8_t *zp, const float *x, size_t n);
/* MatMulInteger: y[t, i, j] (int32) = sum_l (a[aoff[t] + i*k + l] - azp) (b[boff[t] + l*n + j] - bzp) for
 * t < batch (aoff, boff: element offsets of each product's operands, broadcast batch dims resolved);
 * azp per row (azp_n == m) or scalar, bzp per column (bzp_n == n) or scalar. */
void matmul_integer_forward(int32_t *y, RtDType at, const void *a, const void *azp, size_t azp_n, RtDType bt,
                            const void *b, const void *bzp, size_t bzp_n, size_t batch, const size_t *aoff,
                            const size_t *boff, size_t m, size_t k, size_t n);
/* QLinearMatMul: acc as matmul_integer_forward, then y = saturate(rint(acc * a_scale * b_scale / y_scale)
 * + yzp); a_scale per row or scalar (as_n), b_scale per column or scalar (bs_n). acc: int32 scratch
 * [batch, m, n]. */
void qlinear_matmul_forward(RtDType yt, void *y, int32_t *acc, RtDType at, const void *a, const float *a_scale,
                            size_t as_n, const void *azp, size_t azp_n, RtDType bt, const void *b, const float *b_scale,
                            size_t bs_n, const void *bzp, size_t bzp_n, const float *y_scale, const void *yzp,
                            size_t batch, const size_t *aoff, const size_t *boff, size_t m, size_t k, size_t n);
/* ConvInteger: y[N, C_out, out...] (int32) = conv(x - xzp, w - wzp) (padding contributes 0);
 * wzp per output channel (wzp_n == c_out) or scalar. Direct loops. */
void conv_integer_forward(int32_t *y, RtDType xt, const void *x, const void *xzp, RtDType wt, const void *w,
                          const void *wzp, size_t wzp_n, size_t n, size_t c_in, size_t c_out, size_t group,
                          const SpatialWindow *win);
/* QLinearConv: acc = conv_integer + bias[C_out] (int32, may be NULL), then per output channel c
 * y = saturate(rint(acc * x_scale * w_scale[c] / y_scale) + yzp) (ws_n: 1 or c_out). acc: int32 scratch
 * of y's size. */
void qlinear_conv_forward(RtDType yt, void *y, int32_t *acc, RtDType xt, const void *x, const float *x_scale,
                          const void *xzp, RtDType wt, const void *w, const float *w_scale, size_t ws_n,
                          const void *wzp, size_t wzp_n, const float *y_scale, const void *yzp, const int32_t *bias,
                          size_t n, size_t c_in, size_t c_out, size_t group, const SpatialWindow *win);

#endif
