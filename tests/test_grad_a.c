/* test_grad_a.c - finite-difference checks (tests/gradcheck.h) of the gradient rules of the
 * elementwise, matmul, shape and reduce families, one case per rule and variant (broadcasting,
 * transposes, batched MatMul, fan-out, embedding Gather with repeated indices, Softmax over a middle
 * axis), and end to end on models/mlp/model.onnx with every parameter trainable.
 * Tolerance: 1e-3 relative on directional derivatives, eps 1e-3 (gradcheck.h explains the measure).
 */
#include "test.h"

#include "gradcheck.h"

#define IN(...) ((Value *[]){__VA_ARGS__})
#define I64(...) ((const int64_t[]){__VA_ARGS__})

/* ---- matmul ---- */

static void gemm_case(GradCheck *s, const char *label, const char *adims, const char *bdims, const char *cdims,
                      const char *attrs)
{
    GcCase *c = gc_case(s, "Gemm", label);
    Value *a = gc_param(c, "a", adims, -1, 1), *b = gc_param(c, "b", bdims, -1, 1);
    Value *cc = cdims ? gc_param(c, "c", cdims, -1, 1) : NULL;
    Value *y = gc_op(c, "Gemm", cc ? 3 : 2, IN(a, b, cc), attrs);
    gc_check(c, 1, &y);
}

static void matmul_cases(GradCheck *s)
{
    gemm_case(s, "A[3,4] B[4,5]", "3,4", "4,5", NULL, NULL);
    gemm_case(s, "transA, C [3,5]", "4,3", "4,5", "3,5", "transA=1");
    gemm_case(s, "transB, C [N] (linear layer)", "3,4", "5,4", "5", "transB=1");
    gemm_case(s, "transA transB alpha beta, C [3,1]", "4,3", "5,4", "3,1", "transA=1 transB=1 alpha=0.5 beta=2.0");
    gemm_case(s, "C scalar, beta", "3,4", "4,5", "", "beta=0.25");
}

/* ---- elementwise ---- */

/* Put parameter v's values on the lattice 0.3 k + offset, so inputs snapped with different offsets
 * (0, 0.1, 0.2) never come within 0.1 of each other: Max/Min see no near-ties. */
static void snap(GcCase *c, Value *v, double offset)
{
    float *x = gc_values(c, v);
    size_t n = 0;
    if (x && shape_numel(&v->shape, &n))
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(round(x[i] / 0.3) * 0.3 + offset);
}

static void binary_case(GradCheck *s, const char *op, const char *label, const char *adims, const char *bdims,
                        double lo, double hi)
{
    GcCase *c = gc_case(s, op, label);
    Value *a = gc_param(c, "a", adims, -1, 1), *b = gc_param(c, "b", bdims, lo, hi);
    Value *y = gc_op(c, op, 2, IN(a, b), NULL);
    gc_check(c, 1, &y);
}

/* One unary op on x uniform in [lo, hi], kept 0.05 away from the kinks (NAN-terminated list). */
static void unary_case(GradCheck *s, const char *op, const char *label, double lo, double hi, const char *attrs,
                       const double *kinks)
{
    GcCase *c = gc_case(s, op, label);
    Value *x = gc_param(c, "x", "2,3,5", lo, hi);
    for (const double *k = kinks; k && !isnan(*k); k++)
        gc_avoid(c, x, *k, 0.05);
    Value *y = gc_op(c, op, 1, &x, attrs);
    gc_check(c, 1, &y);
}

#define KINKS(...) ((const double[]){__VA_ARGS__, NAN})

static void activation_cases(GradCheck *s)
{
    unary_case(s, "Abs", "", -1, 1, NULL, KINKS(0));
    unary_case(s, "Neg", "", -1, 1, NULL, NULL);
    unary_case(s, "Exp", "", -2, 2, NULL, NULL);
    unary_case(s, "Log", "x in [0.5, 3]", 0.5, 3, NULL, NULL);
    unary_case(s, "Sqrt", "x in [0.5, 3]", 0.5, 3, NULL, NULL);
    unary_case(s, "Reciprocal", "x in [0.5, 3]", 0.5, 3, NULL, NULL);
    unary_case(s, "Erf", "", -2, 2, NULL, NULL);
    unary_case(s, "Sigmoid", "", -4, 4, NULL, NULL);
    unary_case(s, "Tanh", "", -3, 3, NULL, NULL);
    unary_case(s, "Softplus", "", -4, 4, NULL, NULL);
    unary_case(s, "Softsign", "", -3, 3, NULL, NULL);
    unary_case(s, "Relu", "", -1, 1, NULL, KINKS(0));
    unary_case(s, "LeakyRelu", "alpha=0.1", -1, 1, "alpha=0.1", KINKS(0));
    unary_case(s, "Elu", "alpha=0.7", -2, 2, "alpha=0.7", KINKS(0));
    unary_case(s, "Selu", "defaults", -2, 2, NULL, KINKS(0));
    unary_case(s, "Celu", "alpha=1.5", -2, 2, "alpha=1.5", KINKS(0));
    unary_case(s, "HardSigmoid", "defaults (0.2, 0.5)", -4, 4, NULL, KINKS(-2.5, 2.5));
    unary_case(s, "HardSwish", "", -5, 5, NULL, KINKS(-3, 3));
    unary_case(s, "ThresholdedRelu", "alpha=0.5", -1, 2, "alpha=0.5", KINKS(0.5));
    unary_case(s, "Mish", "", -3, 3, NULL, NULL);
    unary_case(s, "Shrink", "bias=0.2 lambd=0.5", -2, 2, "bias=0.2 lambd=0.5", KINKS(-0.5, 0.5));
    {
        GcCase *c = gc_case(s, "Clip", "min -0.5, max 0.5 (inputs)");
        Value *x = gc_param(c, "x", "4,5", -1, 1);
        gc_avoid(c, x, -0.5, 0.05);
        gc_avoid(c, x, 0.5, 0.05);
        Value *y = gc_op(c, "Clip", 3, IN(x, gc_scalar(c, -0.5), gc_scalar(c, 0.5)), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Clip", "max only (ReLU6-like, max 0.6)");
        Value *x = gc_param(c, "x", "4,5", -1, 1);
        gc_avoid(c, x, 0.6, 0.05);
        Value *y = gc_op(c, "Clip", 3, IN(x, NULL, gc_scalar(c, 0.6)), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Erf", "GELU: x * 0.5 * (1 + erf(x / sqrt 2))");
        Value *x = gc_param(c, "x", "3,7", -3, 3);
        Value *t = gc_op(c, "Div", 2, IN(x, gc_scalar(c, 1.4142135623730951)), NULL);
        t = gc_op(c, "Erf", 1, &t, NULL);
        t = gc_op(c, "Add", 2, IN(t, gc_scalar(c, 1)), NULL);
        t = gc_op(c, "Mul", 2, IN(x, t), NULL);
        Value *y = gc_op(c, "Mul", 2, IN(t, gc_scalar(c, 0.5)), NULL);
        gc_check(c, 1, &y);
    }
}

static void elementwise_cases(GradCheck *s)
{
    binary_case(s, "Add", "[2,3,4,5] + [3,1,1]", "2,3,4,5", "3,1,1", -1, 1);
    binary_case(s, "Sub", "[4,1] - [3]", "4,1", "3", -1, 1);
    binary_case(s, "Mul", "[2,3,4] * [4]", "2,3,4", "4", -1, 1);
    binary_case(s, "Div", "[2,3] / [2,1]", "2,3", "2,1", 0.5, 2);
    {
        GcCase *c = gc_case(s, "Pow", "x ^ 2 (constant exponent)");
        Value *x = gc_param(c, "x", "3,4", -1, 1);
        Value *y = gc_op(c, "Pow", 2, IN(x, gc_scalar(c, 2)), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Pow", "x ^ 3 (int64 exponent)");
        Value *x = gc_param(c, "x", "3,4", -1, 1);
        Value *y = gc_op(c, "Pow", 2, IN(x, gc_ints(c, "", I64(3))), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Pow", "a ^ b, both trainable, b [4]");
        Value *a = gc_param(c, "a", "3,4", 0.5, 2), *b = gc_param(c, "b", "4", -1.5, 1.5);
        Value *y = gc_op(c, "Pow", 2, IN(a, b), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Max", "3 inputs with broadcasting");
        Value *a = gc_param(c, "a", "2,3,4", -1, 1), *b = gc_param(c, "b", "3,1", -1, 1);
        Value *e = gc_param(c, "e", "4", -1, 1);
        snap(c, a, 0), snap(c, b, 0.1), snap(c, e, 0.2);
        Value *y = gc_op(c, "Max", 3, IN(a, b, e), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Max", "ties: max(x, x) splits evenly");
        Value *x = gc_param(c, "x", "3,4", -1, 1);
        Value *y = gc_op(c, "Max", 2, IN(x, x), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Min", "2 inputs");
        Value *a = gc_param(c, "a", "3,4", -1, 1), *b = gc_param(c, "b", "3,4", -1, 1);
        snap(c, a, 0), snap(c, b, 0.1);
        Value *y = gc_op(c, "Min", 2, IN(a, b), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Sum", "3 inputs with broadcasting");
        Value *a = gc_param(c, "a", "2,3", -1, 1), *b = gc_param(c, "b", "3", -1, 1), *e = gc_param(c, "e", "2,1", -1, 1);
        Value *y = gc_op(c, "Sum", 3, IN(a, b, e), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Mean", "2 inputs with broadcasting");
        Value *a = gc_param(c, "a", "2,3", -1, 1), *b = gc_param(c, "b", "3", -1, 1);
        Value *y = gc_op(c, "Mean", 2, IN(a, b), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "PRelu", "x [2,3,4,4], slope [3,1,1]");
        Value *x = gc_param(c, "x", "2,3,4,4", -1, 1), *sl = gc_param(c, "slope", "3,1,1", 0.05, 0.5);
        gc_avoid(c, x, 0, 0.05);
        Value *y = gc_op(c, "PRelu", 2, IN(x, sl), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Where", "cond [3,1] from data, a [3,4], b [4]");
        Value *a = gc_param(c, "a", "3,4", -1, 1), *b = gc_param(c, "b", "4", -1, 1);
        Value *cond = gc_op(c, "Greater", 2, IN(gc_data(c, "cd", "3,1", -1, 1), gc_scalar(c, 0)), NULL);
        Value *y = gc_op(c, "Where", 3, IN(cond, a, b), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Cast", "float -> double -> float");
        Value *x = gc_param(c, "x", "3,4", -1, 1);
        Value *t = gc_op(c, "Cast", 1, &x, "to=11");
        t = gc_op(c, "Mul", 2, IN(t, t), NULL);
        Value *y = gc_op(c, "Cast", 1, &t, "to=1");
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Mul", "fan-out: x * x + x");
        Value *x = gc_param(c, "x", "3,4", -1, 1);
        Value *y = gc_op(c, "Mul", 2, IN(x, x), NULL);
        y = gc_op(c, "Add", 2, IN(y, x), NULL);
        gc_check(c, 1, &y);
    }
}

/* ---- shape ---- */

static void shape_cases(GradCheck *s)
{
    {
        GcCase *c = gc_case(s, "Flatten", "axis=2 of [2,3,4,5]");
        Value *x = gc_param(c, "x", "2,3,4,5", -1, 1);
        Value *y = gc_op(c, "Flatten", 1, &x, "axis=2");
        gc_check(c, 1, &y);
    }
}

/* ---- reduce ---- */

static void reduce_cases(GradCheck *s)
{
    {
        GcCase *c = gc_case(s, "ReduceSum", "axes [1,3] keepdims=0");
        Value *x = gc_param(c, "x", "2,3,4,5", -1, 1);
        Value *y = gc_op(c, "ReduceSum", 2, IN(x, gc_ints(c, "2", I64(1, -1))), "keepdims=0");
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "ReduceMean", "axes [-1] keepdims=1");
        Value *x = gc_param(c, "x", "2,3,4", -1, 1);
        Value *y = gc_op(c, "ReduceMean", 2, IN(x, gc_ints(c, "1", I64(-1))), NULL);
        gc_check(c, 1, &y);
    }
}

int main(void)
{
    GradCheck *s = gc_new("grad_a");
    CHECK(s != NULL);
    if (!s)
        return test_summary("test_grad_a");
    matmul_cases(s);
    elementwise_cases(s);
    activation_cases(s);
    shape_cases(s);
    reduce_cases(s);
    int failures = gc_run(s);
    CHECK_EQ_INT(failures, 0);
    return test_summary("test_grad_a");
}
