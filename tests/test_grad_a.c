/* test_grad_a.c - finite-difference checks (tests/gradcheck.h) of the gradient rules of the
 * elementwise, matmul, shape and reduce families, one case per rule and variant (broadcasting,
 * transposes, batched MatMul, fan-out, embedding Gather with repeated indices, Softmax over a middle
 * axis, Einsum), and end to end on models/mlp, models/transformer and the transformer families (bert,
 * gpt2, distilbert, vit) with every parameter trainable; and that frozen inputs get no backward nodes. Tolerance: 1e-3 relative on directional derivatives, eps 2e-2
 * unless a case says otherwise (gradcheck.h explains the measure). GRADCHECK_VERBOSE=1 prints every
 * parameter's numbers, GRADCHECK_KEEP=1 keeps the generated C.
 */
#include "test.h"

#include "gradcheck.h"
#include "program.h"

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

static void matmul_case(GradCheck *s, const char *label, const char *adims, const char *bdims)
{
    GcCase *c = gc_case(s, "MatMul", label);
    Value *a = gc_param(c, "a", adims, -1, 1), *b = gc_param(c, "b", bdims, -1, 1);
    Value *y = gc_op(c, "MatMul", 2, IN(a, b), NULL);
    gc_check(c, 1, &y);
}

/* Einsum: every input is a parameter (bdims NULL: one input). */
static void einsum_case(GradCheck *s, const char *label, const char *adims, const char *bdims, const char *attrs)
{
    GcCase *c = gc_case(s, "Einsum", label);
    Value *a = gc_param(c, "a", adims, -1, 1), *b = bdims ? gc_param(c, "b", bdims, -1, 1) : NULL;
    Value *y = gc_op(c, "Einsum", b ? 2 : 1, IN(a, b), attrs);
    gc_check(c, 1, &y);
}

static void matmul_cases(GradCheck *s)
{
    gemm_case(s, "A[3,4] B[4,5]", "3,4", "4,5", NULL, NULL);
    gemm_case(s, "transA, C [3,5]", "4,3", "4,5", "3,5", "transA=1");
    gemm_case(s, "transB, C [N] (linear layer)", "3,4", "5,4", "5", "transB=1");
    gemm_case(s, "transA transB alpha beta, C [3,1]", "4,3", "5,4", "3,1", "transA=1 transB=1 alpha=0.5 beta=2.0");
    gemm_case(s, "C scalar, beta", "3,4", "4,5", "", "beta=0.25");
    matmul_case(s, "[3,4] @ [4,5]", "3,4", "4,5");
    matmul_case(s, "[2,3,4] @ W[4,5] (batch folds into M)", "2,3,4", "4,5");
    matmul_case(s, "[2,1,3,4] @ [3,4,5] (batch broadcast)", "2,1,3,4", "3,4,5");
    matmul_case(s, "[3,4] @ [2,4,5] (A broadcast)", "3,4", "2,4,5");
    matmul_case(s, "[4] @ [2,4,5] (1-D A)", "4", "2,4,5");
    matmul_case(s, "[2,3,4] @ [4] (1-D B)", "2,3,4", "4");
    matmul_case(s, "[4] @ [4] (dot)", "4", "4");
    matmul_case(s, "[4] @ [4,5] (1-D A, 2-D B)", "4", "4,5");
    {
        GcCase *c = gc_case(s, "MatMul", "attention: Q @ K^T, frozen K");
        Value *q = gc_param(c, "q", "2,3,5,4", -1, 1);
        Value *k = gc_data(c, "k", "2,3,6,4", -1, 1);
        Value *kt = gc_op(c, "Transpose", 1, &k, "perm=[0,1,3,2]");
        Value *y = gc_op(c, "MatMul", 2, IN(q, kt), NULL);
        gc_check(c, 1, &y);
    }
    einsum_case(s, "ntd,nsd->nts (attention scores)", "2,3,4", "2,5,4", "equation='ntd,nsd->nts'");
    einsum_case(s, "bij,bjk->bik", "2,3,4", "2,4,5", "equation='bij,bjk->bik'");
    einsum_case(s, "ij,jk (implicit output ik)", "3,4", "4,5", "equation='ij,jk'");
    einsum_case(s, "ij->ji (one input)", "3,4", NULL, "equation='ij->ji'");
    einsum_case(s, "ij,k->ik (j summed over A alone)", "3,4", "5", "equation='ij,k->ik'");
    einsum_case(s, "ij,ij-> (full contraction)", "3,4", "3,4", "equation='ij,ij->'");
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
    unary_case(s, "Gelu", "", -3, 3, NULL, NULL);
    unary_case(s, "Shrink", "bias=0.2 lambd=0.5", -2, 2, "bias=0.2 lambd=0.5", KINKS(-0.5, 0.5));
    /* piecewise constant: dX = 0. Y = f(x) * x + f(x) checks both that zero and the product's x path;
     * x kept 0.05 from the jumps (integers; Round: halves) */
    static const char *const steps[] = {"Sign", "Floor", "Ceil", "Round"};
    for (size_t i = 0; i < 4; i++) {
        GcCase *c = gc_case(s, steps[i], "Y = f(x) * x + f(x)");
        Value *x = gc_param(c, "x", "3,5", -2.4, 2.4);
        for (double k = -3; k <= 3; k += i == 3 ? 1 : 0.5)
            gc_avoid(c, x, i == 3 ? k + 0.5 : k, 0.05);
        Value *f = gc_op(c, steps[i], 1, &x, NULL);
        Value *y = gc_op(c, "Add", 2, IN(gc_op(c, "Mul", 2, IN(f, x), NULL), f), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Floor", "only path to the loss: gradient exactly 0");
        Value *x = gc_param(c, "x", "4", -2.4, 2.4);
        for (double k = -3; k <= 3; k += 1)
            gc_avoid(c, x, k, 0.05);
        Value *y = gc_op(c, "Floor", 1, &x, NULL);
        if (c)
            c->atol = 1e-6;
        gc_check(c, 1, &y);
    }
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

/* One op with one trainable input x and constant other inputs. */
static void shape_case(GradCheck *s, const char *op, const char *label, const char *xdims, int nin, Value *const *rest,
                       const char *attrs, GcCase *c)
{
    (void)s;
    Value *x = gc_param(c, "x", xdims, -1, 1);
    Value *in[8] = {x};
    for (int i = 1; i < nin; i++)
        in[i] = rest[i - 1];
    Value *y = gc_op(c, op, nin, in, attrs);
    (void)label;
    gc_check(c, 1, &y);
}

#define SHAPE_CASE(op, label, xdims, attrs, ...) do { \
        GcCase *c_ = gc_case(s, op, label); \
        Value *rest_[] = {NULL, __VA_ARGS__}; \
        shape_case(s, op, label, xdims, (int)(sizeof rest_ / sizeof rest_[0]), rest_ + 1, attrs, c_); \
    } while (0)
#define C_ (c_)

static void shape_cases(GradCheck *s)
{
    SHAPE_CASE("Transpose", "perm [2,0,3,1]", "2,3,4,5", "perm=[2,0,3,1]");
    SHAPE_CASE("Reshape", "[2,3,4] -> [4,-1]", "2,3,4", NULL, gc_ints(C_, "2", I64(4, -1)));
    SHAPE_CASE("Squeeze", "axes [1]", "3,1,4", NULL, gc_ints(C_, "1", I64(1)));
    SHAPE_CASE("Unsqueeze", "axes [0,3]", "3,4", NULL, gc_ints(C_, "2", I64(0, 3)));
    SHAPE_CASE("Identity", "", "3,4", NULL);
    SHAPE_CASE("Expand", "[3,1] -> [2,3,4]", "3,1", NULL, gc_ints(C_, "3", I64(2, 3, 4)));
    SHAPE_CASE("Tile", "repeats [2,1,3]", "2,3,2", NULL, gc_ints(C_, "3", I64(2, 1, 3)));
    SHAPE_CASE("Slice", "unit steps, axes [1,2], negative end", "3,5,6", NULL, gc_ints(C_, "2", I64(1, 1)),
               gc_ints(C_, "2", I64(4, -1)), gc_ints(C_, "2", I64(1, 2)));
    SHAPE_CASE("Slice", "steps [2,-1] (negative), clamped ends", "5,6,3", NULL, gc_ints(C_, "2", I64(0, -2)),
               gc_ints(C_, "2", I64(100, -100)), gc_ints(C_, "2", I64(0, 1)), gc_ints(C_, "2", I64(2, -1)));
    SHAPE_CASE("Slice", "x[:, 0:1] (ViT class token)", "2,5,4", NULL, gc_ints(C_, "1", I64(0)), gc_ints(C_, "1", I64(1)),
               gc_ints(C_, "1", I64(1)));
    SHAPE_CASE("Pad", "constant, pads [0,1,2, 1,0,1]", "2,3,4", NULL, gc_ints(C_, "6", I64(0, 1, 2, 1, 0, 1)));
    SHAPE_CASE("Pad", "negative pads crop, value 0.5", "3,5", NULL, gc_ints(C_, "4", I64(-1, 2, 1, -2)),
               gc_scalar(C_, 0.5));
    SHAPE_CASE("Pad", "reflect, pads [1,2, 2,3]", "3,4", "mode='reflect'", gc_ints(C_, "4", I64(1, 2, 2, 3)));
    SHAPE_CASE("Pad", "reflect, 3-D, crop and pad", "2,3,5", "mode='reflect'",
               gc_ints(C_, "6", I64(0, 2, -1, 1, 0, 4)));
    SHAPE_CASE("Pad", "edge, pads [2,0,1, 0,3,2]", "2,3,4", "mode='edge'", gc_ints(C_, "6", I64(2, 0, 1, 0, 3, 2)));
    SHAPE_CASE("Gather", "activations, axis 1, indices [2,2]", "3,5,4", "axis=1", gc_ints(C_, "2,2", I64(4, 0, -1, 2)));
    SHAPE_CASE("Gather", "scalar index axis 1 (class token)", "2,5,4", "axis=1", gc_ints(C_, "", I64(0)));
    {
        GcCase *c = gc_case(s, "Gather", "embedding [10,6], tokens [2,5] with repeats");
        Value *w = gc_param(c, "embedding", "10,6", -1, 1);
        Value *tok = gc_ints(c, "2,5", I64(3, 7, 3, 0, 9, 7, 7, 1, 3, 2));
        Value *y = gc_op(c, "Gather", 2, IN(w, tok), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Concat", "axis 1, three inputs, one frozen");
        Value *a = gc_param(c, "a", "2,3,4", -1, 1), *b = gc_data(c, "b", "2,1,4", -1, 1);
        Value *e = gc_param(c, "e", "2,2,4", -1, 1);
        Value *y = gc_op(c, "Concat", 3, IN(a, b, e), "axis=1");
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Concat", "axis -1, same value twice");
        Value *a = gc_param(c, "a", "3,2", -1, 1);
        Value *y = gc_op(c, "Concat", 2, IN(a, a), "axis=-1");
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "Split", "sizes [1,3,2] on axis 1, one output unused");
        Value *x = gc_param(c, "x", "2,6,3", -1, 1);
        Node *sp = gc_node(c, "Split", 2, IN(x, gc_ints(c, "3", I64(1, 3, 2))), 3, "axis=1");
        gc_check(c, 2, sp ? IN(sp->outputs[0], sp->outputs[2]) : IN(NULL, NULL));
    }
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
    SHAPE_CASE("Softmax", "middle axis of [2,5,3]", "2,5,3", "axis=1");
    SHAPE_CASE("Softmax", "last axis", "4,7", NULL);
    SHAPE_CASE("LogSoftmax", "last axis", "4,7", NULL);
    SHAPE_CASE("LogSoftmax", "axis 0 of [5,2,3]", "5,2,3", "axis=0");
    SHAPE_CASE("ReduceMax", "axes [1] keepdims=1", "3,4,5", NULL, gc_ints(C_, "1", I64(1)));
    SHAPE_CASE("ReduceMin", "all axes keepdims=0", "3,4", "keepdims=0");
    SHAPE_CASE("ReduceL2", "axes [-1]", "3,4", "keepdims=0", gc_ints(C_, "1", I64(-1)));
    SHAPE_CASE("ReduceSumSquare", "axes [0,2]", "3,4,2", NULL, gc_ints(C_, "2", I64(0, 2)));
    SHAPE_CASE("ReduceLogSumExp", "axes [1]", "3,4", NULL, gc_ints(C_, "1", I64(1)));
    {
        GcCase *c = gc_case(s, "ReduceMax", "ties: max over [x, x] splits evenly");
        Value *x = gc_param(c, "x", "3,1,4", -1, 1);
        Value *xx = gc_op(c, "Concat", 2, IN(x, x), "axis=1");
        Value *y = gc_op(c, "ReduceMax", 2, IN(xx, gc_ints(c, "1", I64(1))), NULL);
        gc_check(c, 1, &y);
    }
    {
        GcCase *c = gc_case(s, "ReduceL1", "axes [1]");
        Value *x = gc_param(c, "x", "3,4", -1, 1);
        gc_avoid(c, x, 0, 0.05);
        Value *y = gc_op(c, "ReduceL1", 2, IN(x, gc_ints(c, "1", I64(1))), NULL);
        gc_check(c, 1, &y);
    }
    {
        /* LayerNorm as older exporters decompose it: every step is a rule of this file */
        GcCase *c = gc_case(s, "ReduceMean", "decomposed LayerNorm over the last axis");
        Value *x = gc_param(c, "x", "2,3,8", -2, 2);
        Value *gamma = gc_param(c, "gamma", "8", 0.5, 1.5), *beta = gc_param(c, "beta", "8", -1, 1);
        Value *ax = gc_ints(c, "1", I64(-1));
        Value *mu = gc_op(c, "ReduceMean", 2, IN(x, ax), NULL);
        Value *xc = gc_op(c, "Sub", 2, IN(x, mu), NULL);
        Value *sq = gc_op(c, "Pow", 2, IN(xc, gc_scalar(c, 2)), NULL);
        Value *var = gc_op(c, "ReduceMean", 2, IN(sq, ax), NULL);
        Value *den = gc_op(c, "Sqrt", 1, IN(gc_op(c, "Add", 2, IN(var, gc_scalar(c, 1e-5)), NULL)), NULL);
        Value *xn = gc_op(c, "Div", 2, IN(xc, den), NULL);
        Value *y = gc_op(c, "Add", 2, IN(gc_op(c, "Mul", 2, IN(xn, gamma), NULL), beta), NULL);
        gc_check(c, 1, &y);
    }
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
    {
        GcCase *c = gc_case(s, "ReduceProd", "axes [1] keepdims=0, x in +-[0.5, 1.5]");
        Value *x = gc_param(c, "x", "3,4,2", 0.5, 1.5);
        float *v = gc_values(c, x);
        for (size_t i = 0; v && i < 24; i += 3)
            v[i] = -v[i];
        Value *y = gc_op(c, "ReduceProd", 2, IN(x, gc_ints(c, "1", I64(1))), "keepdims=0");
        gc_check(c, 1, &y);
    }
    {
        /* exact zeros: one in a group (its gradient is the product of the others), two in another (all 0),
         * none in the rest; finite differences see the same (the product is linear in each element) */
        GcCase *c = gc_case(s, "ReduceProd", "axis 1, zeros: one in a row, two in another");
        Value *x = gc_param(c, "x", "4,3", 0.5, 1.5);
        float *v = gc_values(c, x);
        if (v)
            v[1] = 0, v[6] = 0, v[8] = 0;
        Value *y = gc_op(c, "ReduceProd", 2, IN(x, gc_ints(c, "1", I64(1))), NULL);
        gc_check(c, 1, &y);
    }
}

/* ---- end to end ---- */

/* models/mlp (Gemm, Relu, Gemm) at batch 4 with every parameter trainable: the gradients of
 * L = ReduceSum(logits * R) against finite differences. */
static void model_cases(GradCheck *s)
{
    Model *m = NULL;
    Diag d;
    diag_init(&d, "models/mlp/model.onnx");
    if (codegen_load("models/mlp/model.onnx", NULL, 0, 4, &m, &d) != ST_OK) {
        diag_print(&d, stderr);
        CHECK_MSG(false, "cannot load models/mlp/model.onnx");
        return;
    }
    Value *logits = m->graph->noutputs ? m->graph->outputs[0] : NULL;
    GcCase *c = gc_case_model(s, "model", "models/mlp: all parameters, batch 4", m);
    gc_train_initializers(c);
    CHECK_EQ_INT(c->nparams, 4);
    gc_data_inputs(c, -1, 1);
    /* Finite differences must not straddle a ReLU kink: a step of eps along a +-1 direction moves the
     * ReLU input z[i,j] = x[i] . fc1.weight[j] + fc1.bias[j] by at most eps * (1 + sum_k |x[i,k]|), so
     * rows of x are redrawn until every |z[i,j]| exceeds 1.5 times that (eps 5e-3: large enough that
     * float32 rounding of the logits stays far below the tolerance). */
    c->eps = 5e-3;
    Value *x = graph_find(m->graph, "x"), *w1 = graph_find(m->graph, "fc1.weight"), *b1 = graph_find(m->graph, "fc1.bias");
    const float *w = gc_values(c, w1), *b = gc_values(c, b1);
    CHECK(x && x->init && w && b);
    if (!x || !x->init || !w || !b)
        return;
    unsigned seed = 12345;
    for (int i = 0; i < 4; i++) {
        bool ok = false;
        for (int tries = 0; tries < 100000 && !ok; tries++) {
            double reach = 1, margin = INFINITY;
            for (int k = 0; k < 16; k++)
                reach += fabs(tensor_get_f64(x->init, (size_t)(i * 16 + k)));
            for (int j = 0; j < 32; j++) {
                double z = b[j];
                for (int k = 0; k < 16; k++)
                    z += tensor_get_f64(x->init, (size_t)(i * 16 + k)) * w[j * 16 + k];
                margin = fmin(margin, fabs(z));
            }
            ok = margin > 1.5 * c->eps * reach;
            for (int k = 0; !ok && k < 16; k++)
                tensor_set_f64(x->init, (size_t)(i * 16 + k), gc_uniform(&seed, -1, 1));
        }
        CHECK_MSG(ok, "no row of data keeps the ReLU inputs away from 0");
    }
    gc_check(c, 1, &logits);
}

/* models/transformer (opset 13 export: LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div, attention
 * with MatMul/Softmax/Transpose/Reshape/Slice, embedding Gather) at batch 2, every parameter trainable.
 * Its feed-forward ReLUs are swapped for Softplus: with ~900 ReLU inputs, steps along random directions
 * of every weight always straddle some kinks, which finite differences cannot follow (Relu's own rule is
 * checked above). Every other node is the exported graph's. */
static void transformer_case(GradCheck *s)
{
    Model *m = NULL;
    Diag d;
    diag_init(&d, "models/transformer/model_opset13.onnx");
    if (codegen_load("models/transformer/model_opset13.onnx", NULL, 0, 2, &m, &d) != ST_OK) {
        diag_print(&d, stderr);
        CHECK_MSG(false, "cannot load models/transformer/model_opset13.onnx");
        return;
    }
    Value *logits = m->graph->noutputs ? m->graph->outputs[0] : NULL;
    int relus = 0;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (strcmp(m->graph->nodes[i]->op_type, "Relu") == 0) {
            CHECK(node_set_op(m->graph, m->graph->nodes[i], "Softplus", &d) == ST_OK);
            relus++;
        }
    CHECK_EQ_INT(relus, 2);
    GcCase *c = gc_case_model(s, "model", "models/transformer (Relu->Softplus), batch 2", m);
    gc_train_initializers(c);
    Value *emb = NULL; /* the table the tokens index */
    for (size_t i = 0; i < m->graph->nnodes; i++) {
        Node *n = m->graph->nodes[i];
        if (strcmp(n->op_type, "Gather") == 0 && n->ninputs == 2 && strcmp(n->inputs[1]->name, "tokens") == 0)
            emb = n->inputs[0];
    }
    CHECK(emb != NULL);
    gc_int_input(c, "tokens", 0, emb ? emb->shape.dim[0] : 1);
    gc_check(c, 1, &logits);
}

/* The transformer families of models/ (make_small.py) at batch 2, every parameter trainable:
 *   bert: embeddings, LayerNorm, attention with an additive mask computed in the graph from
 *     input_ids == 0 through Equal/Where, exact GELU through Erf;
 *   gpt2: fused qkv Split, causal Where, tanh GELU through Pow/Tanh, positions from Range;
 *   distilbert: masked_fill through Equal/Not/Expand/Where, a ReLU head (swapped for Softplus: finite
 *     differences cannot follow a kink);
 *   vit (torchvision): Conv patches, class token Concat, position Add, MultiheadAttention.
 * The opset 17 exports use LayerNormalization, the opset 13 ones decompose it into ReduceMean, Sub,
 * Pow, Sqrt, Div. Token ids are drawn from [0, 6): about one in six is padding. eps > 0: the finite
 * difference step (ViT's position embedding curves enough that 2e-2 is 1e-3 off; with 1e-2 the worst is 4e-4). */
static void family_case(GradCheck *s, const char *path, const char *label, double eps)
{
    Model *m = NULL;
    Diag d;
    diag_init(&d, path);
    if (codegen_load(path, NULL, 0, 2, &m, &d) != ST_OK) {
        diag_print(&d, stderr);
        CHECK_MSG(false, "cannot load %s", path);
        return;
    }
    Value *logits = m->graph->noutputs ? m->graph->outputs[0] : NULL;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (strcmp(m->graph->nodes[i]->op_type, "Relu") == 0)
            CHECK(node_set_op(m->graph, m->graph->nodes[i], "Softplus", &d) == ST_OK);
    bool tokens = graph_find_local(m->graph, "input_ids") != NULL;
    GcCase *c = gc_case_model(s, "model", label, m);
    /* the key biases' gradients are exactly 0 (softmax ignores a per-query constant) and the others are
     * 1e-2..1e-1, where finite differences carry ~1e-5 of float32 noise: accept 5e-5 absolute */
    if (c)
        c->atol = 5e-5;
    if (c && eps > 0)
        c->eps = eps;
    gc_train_initializers(c);
    if (tokens)
        gc_int_input(c, "input_ids", 0, 6);
    else
        gc_data_inputs(c, -1, 1);
    gc_check(c, 1, &logits);
}

/* ---- against PyTorch where finite differences cannot decide (tests/ref/make_grad_a_ref.py) ---- */

#define GRAD_A_REF "tests/ref/grad_a"

typedef struct TorchRef {
    const char *name, *op, *attrs;
    unsigned trains;        /* bit k: input k trains */
    bool kinks;             /* inputs on kinks or ties: no finite differences */
} TorchRef;

/* The script's calls in ONNX spelling (Clip's bounds, GELU's graph and PRelu's slope shape are built in
 * torch_case). */
static const TorchRef torch_refs[] = {
    {"max_ties", "Max", NULL, 3, true},
    {"min_bcast_ties", "Min", NULL, 3, true},
    {"amax_ties", "ReduceMax", NULL, 1, true},
    {"amin_all", "ReduceMin", "keepdims=0", 1, true},
    {"relu_zero", "Relu", NULL, 1, true},
    {"leaky_relu_zero", "LeakyRelu", "alpha=0.1", 1, true},
    {"elu_zero", "Elu", "alpha=0.7", 1, true},
    {"selu_zero", "Selu", NULL, 1, true},
    {"abs_zero", "Abs", NULL, 1, true},
    {"clamp_bounds", "Clip", NULL, 1, true},
    {"hardswish_kinks", "HardSwish", NULL, 1, true},
    {"hardsigmoid_kinks", "HardSigmoid", "alpha=0.16666667 beta=0.5", 1, true},
    {"prelu_zero", "PRelu", NULL, 3, true},
    {"softmax_mid", "Softmax", "axis=1", 1, false},
    {"log_softmax", "LogSoftmax", "axis=-1", 1, false},
    {"gelu_erf", "Erf", NULL, 1, false},
    {"embedding_repeats", "Gather", NULL, 1, false},
};

static bool load_ref(const char *cs, const char *name, NpyArray *a)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/%s/%s.npy", GRAD_A_REF, cs, name);
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
    NpyArray in[2] = {{0}}, want[2] = {{0}}, r = {0};
    int nin = strcmp(t->name, "max_ties") == 0 || strcmp(t->name, "min_bcast_ties") == 0 ||
              strcmp(t->name, "prelu_zero") == 0 || strcmp(t->name, "embedding_repeats") == 0 ? 2 : 1;
    bool ok = load_ref(t->name, "r", &r);
    char name[16], dims[64], label[96];
    for (int k = 0; ok && k < nin; k++) {
        snprintf(name, sizeof name, "in%d", k);
        ok = load_ref(t->name, name, &in[k]);
        snprintf(name, sizeof name, "grad%d", k);
        if (ok && (t->trains >> k & 1))
            ok = load_ref(t->name, name, &want[k]);
    }
    CHECK_MSG(ok, "%s: reference files missing (run tests/ref/make_grad_a_ref.py)", t->name);
    snprintf(label, sizeof label, "torch %s", t->name);
    GcCase *c = ok ? gc_case(s, t->op, label) : NULL;
    Value *v[2] = {NULL, NULL}, *y = NULL;
    for (int k = 0; c && k < nin; k++) {
        snprintf(name, sizeof name, "in%d", k);
        const char *dm = ref_dims(&in[k], dims, sizeof dims);
        if (k == 1 && strcmp(t->name, "prelu_zero") == 0)
            dm = "3,1,1"; /* torch's per-channel slope [C] is ONNX's [C,1,1] */
        if (in[k].dtype == RT_INT64) {
            v[k] = gc_ints(c, dm, in[k].data);
        } else if (t->trains >> k & 1) {
            v[k] = gc_param(c, name, dm, 0, 0);
            gc_set(c, v[k], in[k].data, in[k].numel);
        } else if ((v[k] = gc_data(c, name, dm, 0, 0))) {
            memcpy(v[k]->init->data, in[k].data, in[k].nbytes);
        }
    }
    if (!c) {
        /* nothing to build */
    } else if (strcmp(t->name, "clamp_bounds") == 0) {
        y = gc_op(c, "Clip", 3, IN(v[0], gc_scalar(c, -0.5), gc_scalar(c, 0.5)), NULL);
    } else if (strcmp(t->name, "amax_ties") == 0) {
        y = gc_op(c, "ReduceMax", 2, IN(v[0], gc_ints(c, "1", I64(1))), NULL);
    } else if (strcmp(t->name, "gelu_erf") == 0) {
        Value *e = gc_op(c, "Div", 2, IN(v[0], gc_scalar(c, 1.4142135623730951)), NULL);
        e = gc_op(c, "Add", 2, IN(gc_op(c, "Erf", 1, &e, NULL), gc_scalar(c, 1)), NULL);
        y = gc_op(c, "Mul", 2, IN(gc_op(c, "Mul", 2, IN(v[0], e), NULL), gc_scalar(c, 0.5)), NULL);
    } else {
        y = gc_op(c, t->op, nin, v, t->attrs);
    }
    if (c) {
        gc_check(c, 1, &y);
        gc_set_r(c, 0, r.data, r.numel);
        c->no_fd = t->kinks;
        for (int k = 0; k < nin; k++)
            if (t->trains >> k & 1)
                gc_expect_grad(c, v[k], want[k].data, want[k].numel, 1e-5);
    }
    npy_free(&r);
    for (int k = 0; k < 2; k++)
        npy_free(&in[k]), npy_free(&want[k]);
}

static void torch_cases(GradCheck *s)
{
    for (size_t i = 0; i < sizeof torch_refs / sizeof torch_refs[0]; i++)
        torch_case(s, &torch_refs[i]);
}

/* ---- frozen parts cost nothing ---- */

/* Backward nodes of op `op` after autodiff of L = ReduceSum(Relu(x0) @ W^T + b) (Gemm, transB) with the
 * inputs marked trainable as given. */
static int backward_count(bool x_trains, bool w_trains, bool b_trains, const char *op)
{
    Model *m = model_new();
    Graph *g = m ? graph_new(m->arena, "frozen", NULL) : NULL;
    Diag d;
    diag_init(&d, NULL);
    if (!g)
        return -1;
    m->graph = g;
    Shape sx = shape_make(2, I64(4, 3)), sw = shape_make(2, I64(5, 3)), sb = shape_make(1, I64(5));
    Value *x = graph_const(g, "x", DT_FLOAT, &sx, &d), *w = graph_const(g, "w", DT_FLOAT, &sw, &d);
    Value *b = graph_const(g, "b", DT_FLOAT, &sb, &d);
    int count = -1;
    if (!x || !w || !b)
        goto done;
    x->trainable = x_trains, w->trainable = w_trains, b->trainable = b_trains;
    Node *r = graph_add_node1(g, "Relu", "relu", 1, &x, "h", &d);
    Node *gm = r ? graph_add_node1(g, "Gemm", "fc", 3, IN(r->outputs[0], w, b), "y", &d) : NULL;
    Node *l = gm ? graph_add_node1(g, "ReduceSum", "loss", 1, &gm->outputs[0], "loss", &d) : NULL;
    Gradients gr;
    if (!l || node_set_attr_int(g, gm, "transB", 1, &d) || node_set_attr_int(g, l, "keepdims", 0, &d) ||
        infer_node(g, r, &d) || infer_node(g, gm, &d) || infer_node(g, l, &d) ||
        pass_autodiff(g, l->outputs[0], &gr, &d)) {
        diag_print(&d, stderr);
        goto done;
    }
    count = 0;
    for (size_t i = 0; i < g->nnodes; i++)
        count += g->nodes[i]->phase == PHASE_BACKWARD && strcmp(g->nodes[i]->op_type, op) == 0;
done:
    model_free(m);
    return count;
}

/* ReluGrad reads the Relu's output (the same mask as its input's), so the input dies at the Relu and
 * the Relu can run in place over it: a training graph keeps one tensor per BN + ReLU for the backward,
 * not two. */
static void relu_grad_reads_output(void)
{
    Model *m = model_new();
    Graph *g = m ? graph_new(m->arena, "relu", NULL) : NULL;
    Diag d;
    diag_init(&d, NULL);
    CHECK(g != NULL);
    if (!g)
        return;
    m->graph = g;
    Shape sx = shape_make(2, I64(4, 3));
    Value *x = graph_const(g, "x", DT_FLOAT, &sx, &d);
    CHECK(x != NULL);
    x->trainable = true;
    Node *r = graph_add_node1(g, "Relu", "relu", 1, &x, "h", &d);
    Node *l = r ? graph_add_node1(g, "ReduceSum", "loss", 1, &r->outputs[0], "loss", &d) : NULL;
    Gradients gr;
    bool ok = l && !node_set_attr_int(g, l, "keepdims", 0, &d) && !infer_node(g, r, &d) && !infer_node(g, l, &d) &&
              !pass_autodiff(g, l->outputs[0], &gr, &d);
    CHECK_MSG(ok, "%s", d.msg);
    int grads = 0;
    for (size_t i = 0; ok && i < g->nnodes; i++)
        if (strcmp(g->nodes[i]->op_type, "ReluGrad") == 0) {
            grads++;
            CHECK(g->nodes[i]->inputs[1] == r->outputs[0]);
        }
    CHECK_EQ_INT(grads, ok ? 1 : 0);
    model_free(m);
}

static void frozen_checks(void)
{
    CHECK_EQ_INT(backward_count(false, true, false, "Gemm"), 1);       /* dW only */
    CHECK_EQ_INT(backward_count(false, true, false, "ReluGrad"), 0);   /* nothing before the layer */
    CHECK_EQ_INT(backward_count(false, false, true, "Gemm"), 0);       /* db: a ReduceSum, no product */
    CHECK_EQ_INT(backward_count(false, false, true, "ReduceSum"), 1);
    CHECK_EQ_INT(backward_count(true, false, false, "Gemm"), 1);       /* dx only, then through Relu */
    CHECK_EQ_INT(backward_count(true, false, false, "ReluGrad"), 1);
    CHECK_EQ_INT(backward_count(true, true, true, "Gemm"), 2);
}

int main(void)
{
    GradCheck *s = gc_new("grad_a");
    frozen_checks();
    relu_grad_reads_output();
    CHECK(s != NULL);
    if (!s)
        return test_summary("test_grad_a");
    matmul_cases(s);
    elementwise_cases(s);
    activation_cases(s);
    shape_cases(s);
    reduce_cases(s);
    model_cases(s);
    transformer_case(s);
    family_case(s, "models/bert/model.onnx", "models/bert (opset 17), batch 2", 0);
    family_case(s, "models/bert/model_opset13.onnx", "models/bert (opset 13, LayerNorm decomposed), batch 2", 0);
    family_case(s, "models/gpt2/model.onnx", "models/gpt2 (opset 17), batch 2", 0);
    family_case(s, "models/gpt2/model_opset13.onnx", "models/gpt2 (opset 13), batch 2", 0);
    family_case(s, "models/distilbert/model.onnx", "models/distilbert (opset 17, Relu->Softplus), batch 2", 0);
    family_case(s, "models/vit/model.onnx", "models/vit (opset 17), batch 2, eps 1e-2", 1e-2);
    family_case(s, "models/vit/model_opset13.onnx", "models/vit (opset 13), batch 2, eps 1e-2", 1e-2);
    torch_cases(s);
    int failures = gc_run(s);
    CHECK_EQ_INT(failures, 0);
    return test_summary("test_grad_a");
}
