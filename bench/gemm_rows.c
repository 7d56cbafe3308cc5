/* gemm_rows.c - does OpenBLAS round a row of a product by its place? One [16 T, K] @ [K, N] sgemm against
 * 16 products of T rows each (the rows a sample owns, contiguous), and 16 strided products (lda = 16 K: a
 * sample's rows after a Transpose to [T, N, D]) against the same rows gathered. The feature cache needs
 * a sample's features independent of its neighbours (bench/README.md, "ViT: GELU fusion ..."). Build:
 *   gcc -O2 bench/gemm_rows.c -lopenblas -o /tmp/gemm_rows && OPENBLAS_NUM_THREADS=1 /tmp/gemm_rows 65 192 576 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: gemm_rows T K N\n");
        return 2;
    }
    int S = 16, T = atoi(argv[1]), K = atoi(argv[2]), N = atoi(argv[3]), M = S * T;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N),
          *d = malloc(sizeof(float) * M * N), *e = malloc(sizeof(float) * M * N);
    srand(1);
    for (int i = 0; i < M * K; i++) a[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < K * N; i++) b[i] = rand() / (float)RAND_MAX - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, a, K, b, N, 0, c, N);
    for (int s = 0; s < S; s++)   /* rows s*T.. contiguous */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, K, 1, a + (size_t)s * T * K, K, b, N, 0, d + (size_t)s * T * N, N);
    for (int s = 0; s < S; s++)   /* rows t*S+s: strided */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, K, 1, a + (size_t)s * K, S * K, b, N, 0, e + (size_t)s * N, S * N);
    int nd = 0, ne = 0;
    for (int i = 0; i < M * N; i++)
        nd += c[i] != d[i];
    float *a2 = malloc(sizeof(float) * M * K), *f = malloc(sizeof(float) * M * N);
    for (int s = 0; s < S; s++) for (int t = 0; t < T; t++) memcpy(a2 + ((size_t)s * T + t) * K, a + ((size_t)t * S + s) * K, K * 4);
    for (int s = 0; s < S; s++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, K, 1, a2 + (size_t)s * T * K, K, b, N, 0, f + (size_t)s * T * N, N);
    for (int s = 0; s < S; s++) for (int t = 0; t < T; t++) for (int j = 0; j < N; j++)
        ne += e[((size_t)t * S + s) * N + j] != f[((size_t)s * T + t) * N + j];
    printf("T=%d K=%d N=%d: one M=%d product vs per-sample: %d of %d differ; strided vs gathered per-sample: %d differ\n", T, K, N, M, nd, M * N, ne);
    return 0;
}
