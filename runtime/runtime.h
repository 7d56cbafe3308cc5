/* runtime.h - the one public header of onnxtune's runtime: the kernels that generated programs call.
 *
 * Kernels take raw pointers and sizes, never allocate (callers pass any scratch space, sized by the
 * matching *_workspace function), and never fail: codegen has checked shapes at compile time.
 * Tensors are dense, C order. Each banner names the file that implements the kernels below it.
 */
#ifndef ONNXTUNE_RUNTIME_H
#define ONNXTUNE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ======================================================================== runtime/threads.c */

/* Thread count for OpenBLAS and the OpenMP kernels (<= 0: leave the defaults). */
void rt_set_threads(int n);

/* ======================================================================== runtime/gemm.c */

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

/* ======================================================================== runtime/conv.c */

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
 *   + bias[C_out] (bias may be NULL).  Paths: C_in/group == 1 (depthwise, any channel multiplier) is
 *   a direct loop; small outputs (< 128 positions) with N > 1 fold the batch into one sgemm per group;
 *   1x1 stride-1 unpadded kernels are one sgemm per image and group; anything else is im2col into
 *   the workspace and one sgemm per image and group.
 * workspace: conv_forward_workspace() bytes (0 for depthwise and unfolded 1x1: NULL is fine). */
size_t conv_forward_workspace(size_t n, size_t c_in, size_t c_out, size_t group,
                              const SpatialWindow *win);
void conv_forward(float *y, const float *x, const float *w, const float *bias,
                  size_t n, size_t c_in, size_t c_out, size_t group,
                  const SpatialWindow *win, float *workspace);

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
 * Both write their output (no accumulation) and are deterministic.  Paths as conv_forward: depthwise
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

/* ======================================================================== runtime/pool.c */

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

/* ======================================================================== runtime/norm.c */

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

/* ======================================================================== runtime/softmax.c */

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

/* ======================================================================== runtime/reduce.c */

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

/* ======================================================================== runtime/rnn.c */

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

/* ======================================================================== runtime/elementwise.c */

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
 * Reciprocal). alpha/beta as in unary_forward. Derivatives at kinks follow PyTorch: Relu, LeakyRelu,
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

/* ======================================================================== runtime/movement.c */

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

/* ======================================================================== runtime/resize.c */

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

/* ======================================================================== runtime/loss.c */

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

/* ======================================================================== runtime/optim.c */

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

/* ======================================================================== runtime/npy.c */

/* NumPy .npy files (format 1.0, 2.0, 3.0), C order, little-endian; dtypes float16/32/64,
 * int8/16/32/64, uint8/16/32/64, bool. Unlike the kernels these can fail: they return an NpyStatus
 * and write a one-line message naming the file and the fault into err[errlen] (err may be NULL). */
typedef enum {
    NPY_OK = 0,
    NPY_EIO,            /* open/read/write/rename failed (errno text in the message) */
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
/* Write via PATH.tmp + rename, so readers never see half a file. dims[rank], data C order. */
NpyStatus npy_write(const char *path, RtDType dt, int rank, const size_t *dims, const void *data, char *err,
                    size_t errlen);
const char *npy_status_name(NpyStatus st);

/* ======================================================================== runtime/checkpoint.c */

/* Checkpoints: a header (magic, format version, the writer's fingerprint and description) and named
 * sections, each with its length and CRC32. ckpt_write writes PATH.tmp.PID in PATH's directory, fsyncs
 * it, renames it over PATH and fsyncs the directory, so PATH is always absent, the old checkpoint or the
 * new one; it first removes PATH.tmp.PID files of processes that no longer exist (killed mid-write).
 * ckpt_read validates everything (truncation, CRCs, magic, version, fingerprint) before returning.
 * Section data is stored as given, in host byte order (little-endian hosts only). Like npy.c these can
 * fail: a CkptStatus and a one-line message naming the file in err[errlen] (err may be NULL). */
typedef enum {
    CKPT_OK = 0,
    CKPT_EIO,           /* open/read/write/fsync/rename failed (errno text in the message) */
    CKPT_EFORMAT,       /* not a checkpoint, truncated, a CRC mismatch, a malformed section */
    CKPT_EVERSION,      /* a checkpoint of another format version */
    CKPT_EMISMATCH,     /* written by another model or compiled program: the fingerprints differ */
    CKPT_EMISSING,      /* ckpt_get: no such section, or one of another size */
    CKPT_EINVAL,        /* ckpt_write: an empty, too long or duplicate section name; too many sections */
    CKPT_ENOMEM,        /* allocation failed */
} CkptStatus;

#define CKPT_VERSION 1
#define CKPT_MAX_NAME 255           /* bytes of a section name */
#define CKPT_MAX_SECTIONS 65536
#define CKPT_MAX_DESCRIPTION 4096   /* bytes of the writer's description */

typedef struct CkptSection {
    const char *name;           /* unique, 1..CKPT_MAX_NAME bytes */
    const void *data;           /* size bytes (NULL when size is 0) */
    size_t size;
} CkptSection;

/* Who wrote a checkpoint. The fingerprint decides whether a program may resume from it; the description
 * (e.g. "mlp.onnx compiled with --head linear:10") only makes the refusal readable. */
typedef struct CkptIdentity {
    uint64_t fingerprint;
    const char *description;    /* may be NULL */
} CkptIdentity;

CkptStatus ckpt_write(const char *path, const CkptIdentity *id, const CkptSection *sections, size_t count,
                      char *err, size_t errlen);

typedef struct Checkpoint {
    CkptIdentity id;            /* as written (description owned) */
    size_t count;
    CkptSection *sections;      /* in file order; data points into buf_, 8-byte aligned */
    char *path_;                /* private: for messages */
    void *buf_;                 /* private: the whole file */
} Checkpoint;

/* Read and validate path. expect: the reading program's identity, refused (CKPT_EMISMATCH, naming both
 * descriptions and fingerprints) when the fingerprints differ; NULL accepts any writer. */
CkptStatus ckpt_read(const char *path, const CkptIdentity *expect, Checkpoint *out, char *err, size_t errlen);
/* The same from a checkpoint image in memory (copied; name is used in messages). For tests and fuzzing. */
CkptStatus ckpt_parse(const void *data, size_t len, const char *name, const CkptIdentity *expect, Checkpoint *out,
                      char *err, size_t errlen);
const CkptSection *ckpt_find(const Checkpoint *c, const char *name);   /* NULL: no such section */
/* Copy section name into dst[size]; CKPT_EMISSING when it is absent or not exactly size bytes. */
CkptStatus ckpt_get(const Checkpoint *c, const char *name, void *dst, size_t size, char *err, size_t errlen);
void ckpt_free(Checkpoint *c);     /* safe on a zeroed or failed Checkpoint */
const char *ckpt_status_name(CkptStatus st);

/* CRC-32 as zlib's crc32(): crc32_update(0, "123456789", 9) == 0xCBF43926; chain by passing the last value. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t n);
/* FNV-1a 64: ckpt_hash64(CKPT_HASH_INIT, ...), chainable, for fingerprints. */
#define CKPT_HASH_INIT 0xcbf29ce484222325ull
uint64_t ckpt_hash64(uint64_t h, const void *data, size_t n);
/* A training program's fingerprint: its loss, optimizer (and momentum buffer), X/target/logits types and
 * dims without the batch, every parameter table row (name, kind, dtype, shape, size, offset) and a CRC of
 * the initial parameter buffer. The compiled batch is left out: it does not change the buffers. */
struct TrainProgram;
uint64_t ckpt_program_fingerprint(const struct TrainProgram *p);

/* Atomic replacement of a file, streamed: open writes PATH.tmp.PID (after removing stale temporaries, as
 * above), commit fsyncs, renames over PATH and fsyncs the directory; abort removes the temporary. Commit
 * and a failed open or write leave the AtomicFile closed; after a failed write call abort. */
typedef struct AtomicFile {
    int fd;                     /* -1: closed */
    char *path, *tmp;
} AtomicFile;
CkptStatus atomic_file_open(AtomicFile *f, const char *path, char *err, size_t errlen);
CkptStatus atomic_file_write(AtomicFile *f, const void *data, size_t n, char *err, size_t errlen);
CkptStatus atomic_file_commit(AtomicFile *f, char *err, size_t errlen);
void atomic_file_abort(AtomicFile *f);

/* SIGINT/SIGTERM for "finish the step, write a checkpoint, exit with a message on how to resume".
 * install: the first signal sets a flag (and writes message, if any, to stderr at once); a second
 * SIGINT or SIGTERM before restore exits at once with status 128 + signal (a checkpoint being written
 * then is abandoned: its temporary is removed by the next write, the previous checkpoint stays).
 * pending: the first signal's number, 0 if none; the trainer polls it after each step. restore puts the
 * previous handlers back and clears the flag. message must stay valid while installed. */
void stop_signal_install(const char *message);
int stop_signal_pending(void);
void stop_signal_restore(void);

/* ======================================================================== runtime/progress.c */

/* What a training run shows. On a terminal (PROGRESS_AUTO: stdout is a tty and TERM is not "dumb") one
 * bar line redrawn in place with CR, at most once per redraw_interval:
 *   epoch 2/10 [#######.......] 150/300 loss 0.4321 1234.5 samples/s ETA 0:01:23
 * otherwise plain lines "epoch 2/10 step 150/300 loss ... ETA ..." every log_interval seconds and/or
 * every log_every steps. Both print one line per epoch and a summary. loss is the running mean of the
 * epoch (weighted by samples), samples/s the epoch's, ETA the run's mean time per step (validation
 * included) times the steps left. Tests inject the clock and force the mode. */
typedef enum { PROGRESS_AUTO = 0, PROGRESS_TTY, PROGRESS_PLAIN } ProgressMode;

typedef struct Progress {
    FILE *out;                  /* NULL: silent (still counts) */
    bool tty;                   /* bar mode */
    int width;                  /* bar mode: terminal columns (TIOCGWINSZ, else 80) */
    double redraw_interval;     /* bar mode: seconds between redraws (0.1) */
    double log_interval;        /* plain mode: seconds between step lines (30; <= 0: never by time) */
    int64_t log_every;          /* plain mode: also a step line every this many steps (0: never) */
    double (*clock)(void *ctx); /* seconds, monotonic; NULL: CLOCK_MONOTONIC */
    void *clock_ctx;
    int64_t epochs, steps_per_epoch;    /* of the run; 0: unknown (no bar, no ETA) */
    /* state, read-only for callers */
    int64_t epoch, step;        /* current epoch (from 1); steps done in it, resumed ones included */
    int64_t run_steps, epochs_done;     /* by this process */
    bool in_epoch;              /* begun and not yet ended */
    size_t run_samples, epoch_samples;
    double loss_sum, loss_weight;       /* this epoch: sum of loss * samples, sum of samples */
    double last_train_loss;     /* the last finished epoch's */
    double t_run, t_epoch, t_step, t_shown, train_time;
    size_t shown;               /* bar mode: characters on screen */
} Progress;

/* Validation (or training) metrics of an epoch; NaN: not measured. Accuracies are fractions. */
typedef struct ProgressEval {
    double loss, accuracy, top5;
} ProgressEval;

typedef struct ProgressSummary {
    int64_t best_epoch;         /* 0: none */
    ProgressEval best;          /* its validation metrics */
    const char *monitor;        /* how "best" was chosen, e.g. "val loss"; NULL: not said */
    const char *stop_reason;    /* NULL: the run finished its epochs */
    const char *export_path, *checkpoint_path, *plot_path, *metrics_path;   /* NULL: not written */
    size_t peak_rss;            /* bytes; 0: measure (getrusage) */
} ProgressSummary;

/* out FILE (stdout usually); epochs and steps_per_epoch of the whole run. Set clock, intervals, width after. */
void progress_init(Progress *p, FILE *out, ProgressMode mode, int64_t epochs, int64_t steps_per_epoch);
/* steps_done: steps of this epoch already done (a resumed run), else 0. */
void progress_begin_epoch(Progress *p, int64_t epoch, int64_t steps_done);
void progress_step(Progress *p, double loss, size_t nsamples);
/* train: NULL, or the epoch's train accuracy/top-5 (a NaN loss means the running mean); val: NULL if none. */
void progress_end_epoch(Progress *p, const ProgressEval *train, const ProgressEval *val);
/* Bar mode: erase the bar so a message can be printed; the next step redraws it. */
void progress_clear(Progress *p);
/* Lines: totals and throughput, peak memory, the stop reason, the best epoch, where files went. */
void progress_summary(Progress *p, const ProgressSummary *s);
size_t progress_peak_rss(void);     /* bytes (getrusage ru_maxrss); 0 if unknown */

/* ======================================================================== runtime/plot.c */

/* `--plot FILE.svg`: two panels sharing an epoch axis, loss (train per step, its smoothed curve, val per
 * epoch) and accuracy (val and train per epoch), with 1-2-5 ticks and a legend. NaN/Inf points are
 * skipped (lines break there); empty, one-point and constant series draw. The history is what a
 * checkpoint keeps (plot_history_save/load) so a resumed run's plot continues. */
typedef struct PlotPoint {
    double x, y;                /* x: epoch position, epoch - 1 + step_in_epoch / steps_per_epoch */
} PlotPoint;
typedef struct PlotEpoch {
    double epoch;               /* its x: the epoch number */
    double train_loss, val_loss, train_accuracy, val_accuracy;  /* accuracies as fractions; NaN: none */
} PlotEpoch;
typedef struct PlotHistory {
    PlotPoint *steps;           /* training loss per step */
    size_t nsteps, cap_steps_;
    PlotEpoch *epochs;
    size_t nepochs, cap_epochs_;
} PlotHistory;

void plot_history_init(PlotHistory *h);
bool plot_history_add_step(PlotHistory *h, double epoch_pos, double loss);   /* false: out of memory */
bool plot_history_add_epoch(PlotHistory *h, const PlotEpoch *e);
void plot_history_free(PlotHistory *h);
/* A malloc'd blob for a checkpoint section (*len bytes), and back (false: malformed or out of memory). */
void *plot_history_save(const PlotHistory *h, size_t *len);
bool plot_history_load(PlotHistory *h, const void *data, size_t len);

/* The SVG document (malloc'd, *len bytes; NULL: out of memory); title is XML-escaped. */
char *plot_svg(const PlotHistory *h, const char *title, size_t *len);
/* plot_svg written atomically (atomic_file_*: a viewer never sees half a file). */
CkptStatus plot_write_svg(const char *path, const PlotHistory *h, const char *title, char *err, size_t errlen);

/* An axis for [lo, hi] with about `ticks` intervals: step is 1, 2 or 5 x 10^k, lo and hi are multiples
 * of it covering the data; a constant widens to +-10% (+-1 around 0); non-finite input gives [0, 1]. */
typedef struct PlotAxis {
    double lo, hi, step;
} PlotAxis;
PlotAxis plot_axis(double lo, double hi, int ticks);

/* ======================================================================== runtime/image.c */

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

/* ======================================================================== runtime/dataset.c */

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
    struct DatasetImpl *impl_;  /* private */
} Dataset;

DatasetStatus dataset_open_arrays(Dataset *ds, const char *x_path, const char *y_path, const DatasetOptions *o,
                                  char *err, size_t errlen);   /* y_path NULL: x_path is an .npz */
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

/* ======================================================================== runtime/trainer.c */

/* The generic half of a training program. `onnxtune compile` (without --infer) generates the model's
 * parts (codegen/train_program.c): the step, update and evaluation functions, the parameter table, the
 * export template and the compile-time defaults, and a main() that calls trainer_main. trainer_main does
 * the rest: options, NPY data and its checks, shuffling, batching, the learning-rate schedule,
 * validation, metrics and export. Kernels see two run-time settings through the calls below; programs
 * that never set them (inference, tests) get every row and the compiled hyperparameters. */

/* Valid rows of the current batch. A short batch runs padded to the compiled batch B (padding rows
 * repeat the batch's first row); the ops that mix rows (the losses, BatchNormalization on batch
 * statistics and their backward ops) read only the first rt_batch_rows(B) rows and write zero gradient
 * rows for the padding, so a padded step equals a step on the short batch. rows 0: every row. */
void rt_set_batch_rows(size_t rows);
size_t rt_batch_rows(size_t compiled);

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

typedef enum { TRAIN_LOSS_CROSS_ENTROPY = 0, TRAIN_LOSS_MSE, TRAIN_LOSS_L1, TRAIN_LOSS_BCE_WITH_LOGITS } TrainLoss;
typedef enum { TRAIN_OPTIM_SGD = 0, TRAIN_OPTIM_ADAM, TRAIN_OPTIM_ADAMW } TrainOptim;

/* What lives in the program's parameter buffer (one mutable buffer, 64-byte aligned entries). */
typedef enum {
    TRAIN_PARAM_TRAINABLE = 0,  /* updated by the optimizer */
    TRAIN_PARAM_FROZEN,         /* a float initializer that does not train (replaceable with --init) */
    TRAIN_PARAM_BUFFER,         /* BatchNormalization running statistics the step updates (--bn-train) */
    TRAIN_PARAM_STATE,          /* optimizer state (momentum buffer, Adam moments): zero at the start */
} TrainParamKind;

typedef struct TrainParam {
    const char *name;           /* the initializer's name; "<param>.<state key>" for optimizer state */
    int kind;                   /* TrainParamKind */
    int dtype;                  /* RtDType */
    int rank;
    int64_t dims[RT_MAX_RANK];
    size_t nbytes;
    size_t offset;              /* in TrainProgram.init and in the parameter buffer */
    int64_t export_offset;      /* byte offset of its raw data in the export template; -1: not exported */
} TrainParam;

/* One runtime input of a generated function: what the trainer passes there. */
typedef enum { TRAIN_IN_X = 0, TRAIN_IN_TARGET, TRAIN_IN_LR, TRAIN_IN_STEP, TRAIN_IN_SEED, TRAIN_IN_PARAM } TrainInKind;
typedef struct TrainSlot {
    int kind;                   /* TrainInKind */
    int param;                  /* TRAIN_IN_PARAM: index into TrainProgram.params */
} TrainSlot;
typedef enum { TRAIN_OUT_LOGITS = 0, TRAIN_OUT_LOSS, TRAIN_OUT_GRAD_NORM } TrainOutKind;

/* A generated graph: inputs[i] / outputs[i] say what the i-th runtime input / output is. x: X's layout
 * [B, ...] (dtype, dims; dims[0] = B), target: the loss's target, lr: double [], step: int64 [] (1 at
 * the first step), seed: int64 [2] {seed, step} for Dropout; logits [B, ...], loss float [],
 * grad_norm float [] (the total gradient norm before clipping). */
typedef void (*TrainFn)(void *const *inputs, void *const *outputs, void *workspace);
typedef struct TrainGraph {
    TrainFn run;                /* training: forward, loss and backward; evaluation: forward and loss */
    TrainFn update;             /* training: gradient clipping and the optimizer update; NULL for evaluation */
    int ninputs, noutputs;
    const TrainSlot *inputs;
    const int *outputs;         /* TrainOutKind per output */
    size_t workspace_bytes;     /* shared by run and update: the gradients stay in it between the two */
} TrainGraph;

typedef struct TrainTensor {
    int dtype;                  /* RtDType */
    int rank;
    int64_t dims[RT_MAX_RANK];
} TrainTensor;

typedef struct TrainProgram {
    const char *model;          /* the ONNX file it was compiled from (its base name) */
    const char *compiled_with;  /* the compile options, for --help */
    int64_t batch;              /* the compiled batch B: the largest training batch */
    TrainTensor x, target, logits;
    int loss;                   /* TrainLoss */
    int optimizer;              /* TrainOptim */
    double hyper[RT_HYPER_COUNT]; /* the compiled hyperparameters */
    bool momentum_buffer;       /* SGD compiled with momentum (so --momentum can change it, not switch it on) */
    bool clipping;              /* compiled with --grad-clip (so it can be changed, not switched on) */
    TrainGraph train, eval;
    int nparams;
    const TrainParam *params;
    const unsigned char *init;  /* initial contents of the parameter buffer, params_bytes long */
    size_t params_bytes;
    const unsigned char *export_template; /* the fine-tuned model as ONNX with the initial weights */
    size_t export_bytes;
    int ndefaults;
    const char *const *defaults; /* compile-time defaults of the program's options, parsed before argv */
} TrainProgram;

/* Everything but the model: returns the exit status (0 trained, 1 failed, 2 usage). */
int trainer_main(int argc, char **argv, const TrainProgram *p);

#endif
