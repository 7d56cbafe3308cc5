/* gemm.c - Gemm and MatMul forward kernels on cblas_sgemm (float32, row-major), plus float64 twins
 * on cblas_dgemm. They only arrange the calls: bias broadcast, batch loops and the fold of a shared
 * right operand into one big product. No packing of our own and no small-matrix kernels. */
#include "kernels.h"

#include <cblas.h>
#include <string.h>

/* y[M,N] = alpha * op(a) @ op(b) + beta_y * y, with k == 0 handled (BLAS may not touch y then). */
static void sgemm_rowmajor(float *y, const float *a, const float *b, size_t m, size_t n, size_t k,
                           bool trans_a, bool trans_b, float alpha, float beta_y, size_t ldy)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                y[i * ldy + j] = beta_y == 0.0f ? 0.0f : beta_y * y[i * ldy + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)(trans_a ? m : k), b, (int)(trans_b ? k : n),
                beta_y, y, (int)ldy);
}

/* sgemm_rowmajor with ldy n, one product per sample while rt_samples_apart() says so and the rows are
 * whole samples' (m a multiple of it, a's rows contiguous): a row's bits then never depend on its place. */
static void sgemm_rowmajor_apart(float *y, const float *a, const float *b, size_t m, size_t n, size_t k,
                                 bool trans_a, bool trans_b, float alpha, float beta_y)
{
    size_t s = rt_samples_apart();
    if (s < 2 || trans_a || m % s || m == 0) {
        sgemm_rowmajor(y, a, b, m, n, k, trans_a, trans_b, alpha, beta_y, n);
        return;
    }
    size_t r = m / s;
    for (size_t i = 0; i < s; i++)
        sgemm_rowmajor(y + i * r * n, a + i * r * k, b, r, n, k, false, trans_b, alpha, beta_y, n);
}

void gemm_forward(float *y, const float *a, const float *b, const float *c,
                  size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                  float alpha, float beta, size_t c_rows, size_t c_cols)
{
    float beta_y = 0.0f;
    if (c && beta != 0.0f) {
        /* Broadcast beta*C into y first, then let sgemm accumulate onto it. */
        for (size_t i = 0; i < m; i++) {
            const float *crow = c + (c_rows == 1 ? 0 : i) * c_cols;
            float *yrow = y + i * n;
            if (c_cols == 1)
                for (size_t j = 0; j < n; j++)
                    yrow[j] = beta * crow[0];
            else
                for (size_t j = 0; j < n; j++)
                    yrow[j] = beta * crow[j];
        }
        beta_y = 1.0f;
    }
    sgemm_rowmajor_apart(y, a, b, m, n, k, trans_a, trans_b, alpha, beta_y);
}

void matmul_forward(float *y, const float *a, const float *b, size_t m, size_t n, size_t k,
                    size_t batch_rank, const size_t *batch_dims,
                    const size_t *a_strides, const size_t *b_strides)
{
    size_t batch = 1;
    for (size_t i = 0; i < batch_rank; i++)
        batch *= batch_dims[i];
    if (batch == 0 || m == 0 || n == 0)
        return;

    /* b shared by every batch and a dense in batch order: y[batch*M, N] = a[batch*M, K] @ b. */
    bool b_shared = true, a_dense = true;
    size_t dense = m * k;
    for (size_t i = batch_rank; i-- > 0;) {
        if (batch_dims[i] == 1)
            continue;
        if (b_strides[i] != 0)
            b_shared = false;
        if (a_strides[i] != dense)
            a_dense = false;
        dense *= batch_dims[i];
    }
    if (b_shared && a_dense) {
        sgemm_rowmajor_apart(y, a, b, batch * m, n, k, false, false, 1.0f, 0.0f);
        return;
    }

    for (size_t t = 0; t < batch; t++) {
        size_t rest = t, a_off = 0, b_off = 0;
        for (size_t i = batch_rank; i-- > 0;) {
            size_t coord = rest % batch_dims[i];
            rest /= batch_dims[i];
            a_off += coord * a_strides[i];
            b_off += coord * b_strides[i];
        }
        sgemm_rowmajor(y + t * m * n, a + a_off, b + b_off, m, n, k, false, false, 1.0f, 0.0f, n);
    }
}

/* ---- float64: the same arrangements on dgemm */

static void dgemm_rowmajor(double *y, const double *a, const double *b, size_t m, size_t n, size_t k,
                           bool trans_a, bool trans_b, double alpha, double beta_y, size_t ldy)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                y[i * ldy + j] = beta_y == 0.0 ? 0.0 : beta_y * y[i * ldy + j];
        return;
    }
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)(trans_a ? m : k), b, (int)(trans_b ? k : n),
                beta_y, y, (int)ldy);
}

void gemm_forward_f64(double *y, const double *a, const double *b, const double *c,
                      size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                      double alpha, double beta, size_t c_rows, size_t c_cols)
{
    double beta_y = 0.0;
    if (c && beta != 0.0) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                y[i * n + j] = beta * c[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
        beta_y = 1.0;
    }
    dgemm_rowmajor(y, a, b, m, n, k, trans_a, trans_b, alpha, beta_y, n);
}

void matmul_forward_f64(double *y, const double *a, const double *b, size_t m, size_t n, size_t k,
                        size_t batch_rank, const size_t *batch_dims,
                        const size_t *a_strides, const size_t *b_strides)
{
    size_t batch = 1;
    for (size_t i = 0; i < batch_rank; i++)
        batch *= batch_dims[i];
    for (size_t t = 0; t < batch; t++) {
        size_t rest = t, a_off = 0, b_off = 0;
        for (size_t i = batch_rank; i-- > 0;) {
            size_t coord = rest % batch_dims[i];
            rest /= batch_dims[i];
            a_off += coord * a_strides[i];
            b_off += coord * b_strides[i];
        }
        dgemm_rowmajor(y + t * m * n, a + a_off, b + b_off, m, n, k, false, false, 1.0, 0.0, n);
    }
}

size_t matmul_batch_strides(size_t a_rank, const size_t *a_batch, size_t b_rank, const size_t *b_batch,
                            size_t m, size_t n, size_t k,
                            size_t *batch_dims, size_t *a_strides, size_t *b_strides)
{
    size_t rank = a_rank > b_rank ? a_rank : b_rank;
    size_t a_step = m * k, b_step = k * n;
    for (size_t i = rank; i-- > 0;) {
        /* Right-align: dim i of the result is dim i - (rank - x_rank) of operand x, or 1 if missing. */
        size_t ad = i + a_rank >= rank ? a_batch[i + a_rank - rank] : 1;
        size_t bd = i + b_rank >= rank ? b_batch[i + b_rank - rank] : 1;
        if (ad != bd && ad != 1 && bd != 1)
            return (size_t)-1;
        batch_dims[i] = ad == 1 ? bd : ad;
        a_strides[i] = ad == 1 ? 0 : a_step;
        b_strides[i] = bd == 1 ? 0 : b_step;
        a_step *= ad;
        b_step *= bd;
    }
    return rank;
}
