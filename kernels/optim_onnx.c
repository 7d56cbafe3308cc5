/* optim_onnx.c - the ONNX training ops Adagrad, Adam and Momentum (ai.onnx.preview.training-1) as
 * plain forward kernels: one step on the tensors given, computed in double like the ONNX reference's
 * numpy (whose scalar hyperparameters are Python floats). Not used by onnxtune's own training loop,
 * which follows torch.optim (kernels/optim.c). */
#include "kernels.h"

#include <math.h>

void onnx_adagrad(float *x_new, float *h_new, const float *r, const int64_t *t, const float *x, const float *g,
                  const float *h, size_t n, float decay_factor, float epsilon, float norm_coefficient)
{
    double lr = (double)*r / (1.0 + (double)*t * decay_factor);
    for (size_t i = 0; i < n; i++) {
        double gr = (double)norm_coefficient * x[i] + g[i];
        double hn = (double)h[i] + gr * gr;
        h_new[i] = (float)hn;
        x_new[i] = (float)(x[i] - lr * gr / (sqrt(hn) + epsilon));
    }
}

void onnx_adam(float *x_new, float *v_new, float *h_new, const float *r, const int64_t *t, const float *x,
               const float *g, const float *v, const float *h, size_t n, float alpha, float beta, float epsilon,
               float norm_coefficient, float norm_coefficient_post)
{
    double lr = *r;
    if (*t > 0)
        lr = lr * sqrt(1.0 - pow(beta, (double)*t)) / (1.0 - pow(alpha, (double)*t));
    for (size_t i = 0; i < n; i++) {
        double gr = (double)norm_coefficient * x[i] + g[i];
        double vn = (double)alpha * v[i] + (1.0 - alpha) * gr;
        double hn = (double)beta * h[i] + (1.0 - beta) * gr * gr;
        v_new[i] = (float)vn;
        h_new[i] = (float)hn;
        x_new[i] = (float)((1.0 - norm_coefficient_post) * (x[i] - lr * vn / (sqrt(hn) + epsilon)));
    }
}

void onnx_momentum(float *x_new, float *v_new, const float *r, const int64_t *t, const float *x, const float *g,
                   const float *v, size_t n, float alpha, float beta, float norm_coefficient, bool nesterov)
{
    double b = *t > 0 ? beta : 1.0;
    for (size_t i = 0; i < n; i++) {
        double gr = (double)norm_coefficient * x[i] + g[i];
        double vn = (double)alpha * v[i] + b * gr;
        v_new[i] = (float)vn;
        x_new[i] = (float)(x[i] - *r * (nesterov ? gr + alpha * vn : vn));
    }
}
