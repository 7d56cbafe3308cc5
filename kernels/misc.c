/* misc.c - kernels of ops that fit no other family: ReverseSequence (a copy by element size, any dtype),
 * TfIdfVectorizer (n-grams matched against the pool one by one) and Det (LU with partial pivoting in
 * double, one small matrix at a time; no workspace beyond the stack, so m is at most DET_MAX_M). */
#include "kernels.h"

#include <math.h>
#include <string.h>

void reverse_sequence_forward(void *y, const void *x, const int64_t *lens, size_t d0, size_t d1, size_t rest,
                              size_t es, int batch_axis)
{
    size_t nt = batch_axis == 0 ? d1 : d0;
    for (size_t i = 0; i < d0; i++)
        for (size_t j = 0; j < d1; j++) {
            size_t b = batch_axis == 0 ? i : j, t = batch_axis == 0 ? j : i;
            int64_t len = lens[b] < 0 ? 0 : lens[b] > (int64_t)nt ? (int64_t)nt : lens[b];
            size_t src = t < (size_t)len ? (size_t)len - 1 - t : t;
            size_t si = batch_axis == 0 ? i : src, sj = batch_axis == 0 ? src : j;
            memcpy((char *)y + (i * d1 + j) * rest * es, (const char *)x + (si * d1 + sj) * rest * es, rest * es);
        }
}

#define DET_MAX_M 64

void det_forward(float *y, const float *x, size_t batch, size_t m)
{
    double a[DET_MAX_M * DET_MAX_M];
    for (size_t b = 0; b < batch; b++) {
        if (m > DET_MAX_M) {
            y[b] = NAN;
            continue;
        }
        for (size_t i = 0; i < m * m; i++)
            a[i] = x[b * m * m + i];
        double det = 1;
        for (size_t c = 0; c < m && det != 0; c++) {
            size_t p = c;
            for (size_t r = c + 1; r < m; r++)
                if (fabs(a[r * m + c]) > fabs(a[p * m + c]))
                    p = r;
            if (a[p * m + c] == 0) {
                det = 0;
                break;
            }
            if (p != c) {
                for (size_t k = 0; k < m; k++) {
                    double t = a[c * m + k];
                    a[c * m + k] = a[p * m + k];
                    a[p * m + k] = t;
                }
                det = -det;
            }
            det *= a[c * m + c];
            for (size_t r = c + 1; r < m; r++) {
                double f = a[r * m + c] / a[c * m + c];
                for (size_t k = c; k < m; k++)
                    a[r * m + k] -= f * a[c * m + k];
            }
        }
        y[b] = (float)det;
    }
}

static int64_t tf_get(RtDType t, const void *x, size_t i)
{
    return t == RT_INT32 ? ((const int32_t *)x)[i] : ((const int64_t *)x)[i];
}

void tfidf_forward(float *y, RtDType xt, const void *x, size_t rows, size_t c, const int64_t *pool,
                   size_t npool, const int64_t *starts, size_t nstarts, const int64_t *index, const float *weights,
                   size_t width, size_t min_n, size_t max_n, size_t max_skip, int mode)
{
    memset(y, 0, rows * width * sizeof *y);
    for (size_t r = 0; r < rows; r++) {
        float *out = y + r * width;
        for (size_t n = min_n; n <= max_n && n <= nstarts; n++) {
            /* the pool's n-grams of length n: items [first, last), k0 the number of n-grams before them */
            size_t first = (size_t)starts[n - 1], last = n < nstarts ? (size_t)starts[n] : npool, k0 = 0;
            for (size_t m = 1; m < n; m++)
                k0 += ((m < nstarts ? (size_t)starts[m] : npool) - (size_t)starts[m - 1]) / m;
            for (size_t skip = 0; skip <= (n == 1 ? 0 : max_skip); skip++)
                for (size_t i = 0; i + (n - 1) * (skip + 1) < c; i++)
                    for (size_t p = first; p + n <= last; p += n) {
                        size_t j = 0;
                        while (j < n && tf_get(xt, x, r * c + i + j * (skip + 1)) == pool[p + j])
                            j++;
                        if (j == n) {
                            size_t k = k0 + (p - first) / n;
                            if ((size_t)index[k] < width)
                                out[index[k]] += 1;
                            break;
                        }
                    }
        }
        if (mode == 0)
            continue;
        /* IDF and TFIDF weigh each pool n-gram's column */
        size_t total = 0;
        for (size_t m = 1; m <= nstarts; m++)
            total += ((m < nstarts ? (size_t)starts[m] : npool) - (size_t)starts[m - 1]) / m;
        for (size_t k = 0; k < total; k++) {
            size_t col = (size_t)index[k];
            float w = weights ? weights[k] : 1;
            if (col < width && out[col] > 0)
                out[col] = mode == 1 ? w : out[col] * w;
        }
    }
}
