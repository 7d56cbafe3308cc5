/* misc.c - kernels of ops that fit no other family: ReverseSequence (a copy by element size, any dtype)
 * and Det (LU with partial pivoting in double, one small matrix at a time; no workspace beyond the
 * stack, so m is at most DET_MAX_M). */
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
