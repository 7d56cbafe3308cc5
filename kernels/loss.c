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
