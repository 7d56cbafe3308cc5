/* optim.c - optimizer steps as torch 1.13's single-tensor torch.optim code does them on CPU float32:
 * the same formulas in the same order, scalars rounded to float where torch rounds them, bias
 * corrections in double. They update parameters and state in place and never allocate. Not here: the
 * learning-rate schedule (the training program computes lr) and fused/foreach variants. */
#include "kernels.h"

#include <math.h>

void sgd_update(float *param, const float *grad, float *momentum_buffer, size_t n, double lr, int64_t step,
                double momentum, double dampening, bool nesterov, double weight_decay, const float *grad_scale)
{
    const float wd = (float)weight_decay, mom = (float)momentum, keep = (float)(1 - dampening);
    const float neg_lr = (float)-lr;
    const bool use_buf = momentum != 0 && momentum_buffer;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (grad_scale)
            g *= *grad_scale;                           /* clip_grad_norm_: grad.mul_(coef) */
        if (weight_decay != 0)
            g = g + wd * param[i];                      /* d_p = d_p.add(param, alpha=wd) */
        if (use_buf) {
            float b = step <= 1 ? g : momentum_buffer[i] * mom + keep * g; /* clone at the first step */
            momentum_buffer[i] = b;
            g = nesterov ? g + mom * b : b;
        }
        param[i] = param[i] + neg_lr * g;               /* param.add_(d_p, alpha=-lr) */
    }
}

void adam_update(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, size_t n, double lr,
                 int64_t step, double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                 const float *grad_scale)
{
    const double t = (double)(step < 1 ? 1 : step);
    const double bias_correction1 = 1 - pow(beta1, t), bias_correction2 = 1 - pow(beta2, t);
    const float neg_step_size = (float)-(lr / bias_correction1);
    const float bc2_sqrt = (float)sqrt(bias_correction2);
    const float b1 = (float)beta1, one_b1 = (float)(1 - beta1), b2 = (float)beta2, one_b2 = (float)(1 - beta2);
    const float epsf = (float)eps, wd = (float)weight_decay, decay = (float)(1 - lr * weight_decay);
    for (size_t i = 0; i < n; i++) {
        float g = grad[i], p = param[i];
        if (grad_scale)
            g *= *grad_scale;
        if (decoupled)
            p = p * decay;                              /* AdamW: param.mul_(1 - lr*wd) */
        else if (weight_decay != 0)
            g = g + wd * p;                             /* Adam: grad.add(param, alpha=wd) */
        float m = exp_avg[i] * b1 + one_b1 * g;         /* exp_avg.mul_(b1).add_(grad, alpha=1-b1) */
        float v = exp_avg_sq[i] * b2 + one_b2 * g * g;  /* exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) */
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        float denom = sqrtf(v) / bc2_sqrt + epsf;       /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
        param[i] = p + neg_step_size * m / denom;       /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    }
}

void clip_grad_norm(float *scale, float *total_norm, const float *const *grads, const size_t *sizes,
                    size_t count, double max_norm)
{
    /* torch.norm(torch.stack([torch.norm(g) for g in grads])): per-tensor norms rounded to float */
    double sum = 0;
    for (size_t k = 0; k < count; k++) {
        double s = 0;
        for (size_t i = 0; i < sizes[k]; i++)
            s += (double)grads[k][i] * grads[k][i];
        double norm = (float)sqrt(s);
        sum += norm * norm;
    }
    float total = (float)sqrt(sum);
    /* clip_coef = max_norm / (total + 1e-6), which torch computes as reciprocal(total + 1e-6) * max_norm */
    float coef = (1.0f / (total + 1e-6f)) * (float)max_norm;
    *total_norm = total;
    *scale = coef > 1.0f ? 1.0f : coef;              /* clamp(max=1): NaN stays NaN */
}
