/* loss.c - the training losses (PyTorch's, mean reduction), forward and backward side by side. Sums run
 * in double in a fixed order, so a loss is deterministic and exact to float rounding. Float32 only; the
 * backward kernels write (not accumulate) their gradient, as the IR's backward ops are SSA values. */
#include "kernels.h"

#include <math.h>

/* log(sum_c exp(x[c])) of one row, in double, shifted by the row's max. */
static double row_logsumexp(const float *x, size_t c)
{
    double m = -INFINITY;
    for (size_t j = 0; j < c; j++)
        if (x[j] > m)
            m = x[j];
    if (isinf(m))
        return m;
    double s = 0;
    for (size_t j = 0; j < c; j++)
        s += exp((double)x[j] - m);
    return m + log(s);
}

size_t cross_entropy_check_targets(const int64_t *target, size_t n, size_t c)
{
    for (size_t i = 0; i < n; i++)
        if (target[i] < 0 || (uint64_t)target[i] >= c)
            return i;
    return n;
}

void cross_entropy_forward(float *loss, const float *logits, const int64_t *target, size_t n, size_t c,
                           float label_smoothing)
{
    double eps = label_smoothing, total = 0;
    for (size_t i = 0; i < n; i++) {
        const float *x = logits + i * c;
        double lse = row_logsumexp(x, c), sum_x = 0;
        for (size_t j = 0; j < c; j++)
            sum_x += x[j];
        double nll = target[i] >= 0 && (uint64_t)target[i] < c ? lse - x[target[i]] : 0;
        /* sum_c -log p[c] = C * lse - sum_c x[c] */
        total += (1 - eps) * nll + (eps > 0 ? eps / (double)c * ((double)c * lse - sum_x) : 0);
    }
    *loss = n ? (float)(total / (double)n) : NAN;
}

void cross_entropy_backward(float *dlogits, const float *dloss, const float *logits, const int64_t *target,
                            size_t n, size_t c, float label_smoothing)
{
    double eps = label_smoothing, scale = n ? (double)*dloss / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        const float *x = logits + i * c;
        float *dx = dlogits + i * c;
        double lse = row_logsumexp(x, c);
        for (size_t j = 0; j < c; j++) {
            double want = eps / (double)c + ((int64_t)j == target[i] ? 1 - eps : 0);
            dx[j] = (float)((exp((double)x[j] - lse) - want) * scale);
        }
    }
}

void mse_loss_forward(float *loss, const float *x, const float *target, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)x[i] - target[i];
        s += e * e;
    }
    *loss = n ? (float)(s / (double)n) : NAN;
}

void mse_loss_backward(float *dx, const float *dloss, const float *x, const float *target, size_t n)
{
    double scale = n ? 2.0 * *dloss / (double)n : 0;
    for (size_t i = 0; i < n; i++)
        dx[i] = (float)(((double)x[i] - target[i]) * scale);
}

void l1_loss_forward(float *loss, const float *x, const float *target, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)x[i] - target[i]);
    *loss = n ? (float)(s / (double)n) : NAN;
}

/* d|e|/de = sign(e), 0 at e = 0 (as torch's sgn) */
void l1_loss_backward(float *dx, const float *dloss, const float *x, const float *target, size_t n)
{
    double scale = n ? (double)*dloss / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)x[i] - target[i];
        dx[i] = (float)((e > 0 ? scale : e < 0 ? -scale : 0));
    }
}

/* max(x,0) - x*t + log(1 + exp(-|x|)): never overflows, exact where log1p is */
void bce_with_logits_forward(float *loss, const float *x, const float *target, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        s += (v > 0 ? v : 0) - v * target[i] + log1p(exp(-fabs(v)));
    }
    *loss = n ? (float)(s / (double)n) : NAN;
}

/* d/dx = sigmoid(x) - t */
void bce_with_logits_backward(float *dx, const float *dloss, const float *x, const float *target, size_t n)
{
    double scale = n ? (double)*dloss / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i], e = exp(-fabs(v));
        double sig = v >= 0 ? 1 / (1 + e) : e / (1 + e);
        dx[i] = (float)((sig - target[i]) * scale);
    }
}

/* ---- ONNX NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (kernels.h says what they compute) ---- */

/* The class of position i; -1 when ignored, -2 when out of range. */
static int64_t nll_class(const void *target, const NllParams *p, size_t i)
{
    int64_t y = p->target_int32 ? ((const int32_t *)target)[i] : ((const int64_t *)target)[i];
    if (p->has_ignore && y == p->ignore_index)
        return -1;
    return y >= 0 && (uint64_t)y < p->c ? y : -2;
}

static double nll_weight(const float *weight, int64_t y)
{
    return y < 0 ? 0 : weight ? weight[y] : 1;
}

/* log(sum_k exp(x[k * stride])) over c classes, in double, shifted by the max. */
static double strided_logsumexp(const float *x, size_t c, size_t stride)
{
    double m = -INFINITY, s = 0;
    for (size_t k = 0; k < c; k++)
        if (x[k * stride] > m)
            m = x[k * stride];
    if (isinf(m))
        return m;
    for (size_t k = 0; k < c; k++)
        s += exp((double)x[k * stride] - m);
    return m + log(s);
}

/* Shared by both forwards: with `softmax`, x are scores and log_prob (optional) receives log_softmax. */
static void nll_forward_any(float *loss, float *log_prob, const float *x, const void *target, const float *weight,
                            const NllParams *p, bool softmax)
{
    size_t c = p->c, inner = p->inner;
    double total = 0, wsum = 0;
    for (size_t b = 0; b < p->n; b++)
        for (size_t j = 0; j < inner; j++) {
            size_t i = b * inner + j, base = b * c * inner + j;
            double lse = softmax ? strided_logsumexp(x + base, c, inner) : 0;
            if (log_prob)
                for (size_t k = 0; k < c; k++)
                    log_prob[base + k * inner] = (float)((double)x[base + k * inner] - lse);
            int64_t y = nll_class(target, p, i);
            double w = nll_weight(weight, y);
            double l = y == -2 ? NAN : y < 0 ? 0 : -w * ((double)x[base + (size_t)y * inner] - lse);
            wsum += w;
            if (p->reduction == NLL_NONE)
                loss[i] = (float)l;
            else
                total += l;
        }
    if (p->reduction == NLL_SUM)
        *loss = (float)total;
    else if (p->reduction == NLL_MEAN)
        *loss = (float)(total / wsum);
}

/* The upstream gradient of position i: dloss[i] (none), *dloss (sum), *dloss / sum_i w[t_i] (mean). */
static double nll_upstream(const float *dloss, double mean_scale, const NllParams *p, size_t i)
{
    return p->reduction == NLL_NONE ? dloss[i] : p->reduction == NLL_SUM ? dloss[0] : mean_scale;
}

static double nll_mean_scale(const float *dloss, const void *target, const float *weight, const NllParams *p)
{
    if (p->reduction != NLL_MEAN)
        return 0;
    double wsum = 0;
    for (size_t i = 0; i < p->n * p->inner; i++)
        wsum += nll_weight(weight, nll_class(target, p, i));
    return (double)dloss[0] / wsum;
}

void nll_loss_forward(float *loss, const float *x, const void *target, const float *weight, const NllParams *p)
{
    nll_forward_any(loss, NULL, x, target, weight, p, false);
}

void nll_loss_backward(float *dx, const float *dloss, const void *target, const float *weight, const NllParams *p)
{
    size_t c = p->c, inner = p->inner;
    double mean_scale = nll_mean_scale(dloss, target, weight, p);
    for (size_t i = 0; i < p->n * c * inner; i++)
        dx[i] = 0;
    for (size_t b = 0; b < p->n; b++)
        for (size_t j = 0; j < inner; j++) {
            size_t i = b * inner + j;
            int64_t y = nll_class(target, p, i);
            if (y >= 0)
                dx[b * c * inner + (size_t)y * inner + j] =
                    (float)(-nll_upstream(dloss, mean_scale, p, i) * nll_weight(weight, y));
        }
}

void softmax_cross_entropy_forward(float *loss, float *log_prob, const float *x, const void *target,
                                   const float *weight, const NllParams *p)
{
    nll_forward_any(loss, log_prob, x, target, weight, p, true);
}

void softmax_cross_entropy_backward(float *dx, const float *dloss, const float *x, const void *target,
                                    const float *weight, const NllParams *p)
{
    size_t c = p->c, inner = p->inner;
    double mean_scale = nll_mean_scale(dloss, target, weight, p);
    for (size_t b = 0; b < p->n; b++)
        for (size_t j = 0; j < inner; j++) {
            size_t i = b * inner + j, base = b * c * inner + j;
            int64_t y = nll_class(target, p, i);
            double g = y < 0 ? 0 : nll_upstream(dloss, mean_scale, p, i) * nll_weight(weight, y);
            double lse = g != 0 ? strided_logsumexp(x + base, c, inner) : 0;
            for (size_t k = 0; k < c; k++) {
                size_t at = base + k * inner;
                dx[at] = g != 0 ? (float)(g * (exp((double)x[at] - lse) - ((int64_t)k == y))) : 0.0f;
            }
        }
}
