/* signal.c - the signal ops of opset 17: window functions, DFT (a direct O(N^2) transform per line,
 * exact for any length; these ops are rare in models onnxtune fine-tunes), STFT on top of it, and
 * MelWeightMatrix. float32 tensors, double arithmetic. */
#include "kernels.h"

#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void window_forward(WindowKind kind, float *y, size_t size, bool periodic)
{
    double n = periodic ? (double)size : (double)size - 1;
    for (size_t i = 0; i < size; i++) {
        double c = n > 0 ? cos(2 * M_PI * (double)i / n) : 1, v;
        switch (kind) {
        case WINDOW_HANN: v = 0.5 - 0.5 * c; break;
        case WINDOW_HAMMING: v = 25.0 / 46.0 - 21.0 / 46.0 * c; break;
        default: v = 0.42 - 0.5 * c + 0.08 * (n > 0 ? cos(4 * M_PI * (double)i / n) : 1); break;
        }
        y[i] = (float)v;
    }
}

/* One line: x at stride xs (elements between samples), xc components; y at stride ys, pairs. */
static void dft_line(float *y, size_t ys, const float *x, size_t xs, size_t xc, const float *window, size_t n_in,
                     size_t n_fft, size_t n_out, bool inverse)
{
    size_t m = n_in < n_fft ? n_in : n_fft;
    double sign = inverse ? 1 : -1, scale = inverse ? 1.0 / (double)n_fft : 1;
    for (size_t k = 0; k < n_out; k++) {
        double re = 0, im = 0;
        for (size_t j = 0; j < m; j++) {
            double w = window ? window[j] : 1;
            double xr = x[j * xs] * w, xi = xc == 2 ? x[j * xs + 1] * w : 0;
            double a = sign * 2 * M_PI * (double)((j * k) % n_fft) / (double)n_fft, c = cos(a), s = sin(a);
            re += xr * c - xi * s;
            im += xr * s + xi * c;
        }
        y[k * ys] = (float)(re * scale);
        y[k * ys + 1] = (float)(im * scale);
    }
}

void dft_forward(float *y, const float *x, size_t outer, size_t n_in, size_t inner, size_t xc, size_t n_fft,
                 size_t n_out, bool inverse)
{
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++)
            dft_line(y + (o * n_out * inner + i) * 2, inner * 2, x + (o * n_in * inner + i) * xc, inner * xc, xc,
                     NULL, n_in, n_fft, n_out, inverse);
}

void stft_forward(float *y, const float *x, const float *window, size_t batch, size_t length, size_t xc,
                  size_t step, size_t flen, size_t frames, size_t n_out)
{
    for (size_t b = 0; b < batch; b++)
        for (size_t f = 0; f < frames; f++)
            dft_line(y + (b * frames + f) * n_out * 2, 2, x + (b * length + f * step) * xc, xc, xc, window, flen,
                     flen, n_out, false);
}

void mel_weight_matrix_forward(float *y, size_t bins, size_t dft_length, double sample_rate, double lower_hz,
                               double upper_hz)
{
    size_t rows = dft_length / 2 + 1;
    memset(y, 0, rows * bins * sizeof *y);
    if (!(sample_rate > 0))
        return; /* no frequency maps to a bin */
    double lo = 2595 * log10(1 + lower_hz / 700), hi = 2595 * log10(1 + upper_hz / 700);
    double step = (hi - lo) / (double)(bins + 2); /* sic: the reference spaces bins + 2 points over bins + 2 steps */
    for (size_t i = 0; i < bins; i++) {
        long long p[3];
        for (int e = 0; e < 3; e++) {
            double hz = 700 * (pow(10, ((double)(i + (size_t)e) * step + lo) / 2595) - 1);
            double bin = floor((double)(dft_length + 1) * hz / sample_rate);
            p[e] = bin > -1e15 && bin < 1e15 ? (long long)bin : -1; /* NaN or absurd: outside every row */
        }
        long long up = p[1] - p[0], down = p[2] - p[1];
        if (up == 0) {
            if (p[1] >= 0 && (size_t)p[1] < rows)
                y[(size_t)p[1] * bins + i] = 1;
        } else
            for (long long j = p[0]; j <= p[1]; j++)
                if (j >= 0 && (size_t)j < rows)
                    y[(size_t)j * bins + i] = (float)((double)(j - p[0]) / (double)up);
        for (long long j = p[1]; down > 0 && j < p[2]; j++)
            if (j >= 0 && (size_t)j < rows)
                y[(size_t)j * bins + i] = (float)((double)(p[2] - j) / (double)down);
    }
}
