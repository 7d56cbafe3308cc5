/* rnn.c - LSTM, GRU and RNN (ONNX 14) forward: directions, layouts, sequence_lens, initial states,
 * peepholes, clip and the ONNX activation functions. Per direction, one sgemm projects the inputs of
 * all steps; each step is one sgemm on the hidden state plus a gate loop per batch row.
 * Backward (and keeping the gate activations it needs) is not here yet. */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* The sizes every helper needs; D is num_directions. */
typedef struct RnnDims {
    size_t seq, batch, input, H, D;
    int layout;
} RnnDims;

static RnnDims rnn_dims(const RnnParams *p)
{
    RnnDims r = {p->seq_length, p->batch, p->input_size, p->hidden_size,
                 p->direction == RNN_BIDIRECTIONAL ? 2 : 1, p->layout};
    return r;
}

/* Row of x (and of the projected inputs) holding step t of batch row b. */
static size_t x_row(const RnnDims *r, size_t t, size_t b)
{
    return r->layout ? b * r->seq + t : t * r->batch + b;
}

/* Offset of y[t, d, b, :] (layout 0) or y[b, t, d, :] (layout 1). */
static size_t y_offset(const RnnDims *r, size_t t, size_t d, size_t b)
{
    return (r->layout ? (b * r->seq + t) * r->D + d : (t * r->D + d) * r->batch + b) * r->H;
}

/* Offset of a state tensor's [d, b, :] (layout 0) or [b, d, :] (layout 1). */
static size_t state_offset(const RnnDims *r, size_t d, size_t b)
{
    return (r->layout ? b * r->D + d : d * r->batch + b) * r->H;
}

static size_t seq_len(const RnnDims *r, const int32_t *lens, size_t b)
{
    if (!lens)
        return r->seq;
    if (lens[b] <= 0)
        return 0;
    return (size_t)lens[b] < r->seq ? (size_t)lens[b] : r->seq;
}

static float act_apply(RnnActivation a, float x)
{
    switch (a.kind) {
    case RNN_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case RNN_ACT_TANH: return tanhf(x);
    case RNN_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case RNN_ACT_AFFINE: return a.alpha * x + a.beta;
    case RNN_ACT_LEAKY_RELU: return x >= 0.0f ? x : a.alpha * x;
    case RNN_ACT_THRESHOLDED_RELU: return x > a.alpha ? x : 0.0f;
    case RNN_ACT_SCALED_TANH: return a.alpha * tanhf(a.beta * x);
    case RNN_ACT_HARD_SIGMOID: {
        float v = a.alpha * x + a.beta;
        return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    case RNN_ACT_ELU: return x >= 0.0f ? x : a.alpha * (expf(x) - 1.0f);
    case RNN_ACT_SOFTSIGN: return x / (1.0f + fabsf(x));
    case RNN_ACT_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
    default: return x;
    }
}

/* Activation j of direction d, with RNN_ACT_DEFAULT resolved to `dflt`. */
static RnnActivation act_get(const RnnParams *p, size_t per_dir, size_t d, size_t j,
                             RnnActivationKind dflt)
{
    RnnActivation a = p->act[d * per_dir + j];
    if (a.kind == RNN_ACT_DEFAULT)
        a.kind = dflt;
    return a;
}

static inline float clip_to(float v, float clip)
{
    if (clip > 0.0f)
        v = v < -clip ? -clip : v > clip ? clip : v;
    return v;
}

/* xw[rows, G*H] = x[rows, input] @ w_d[G*H, input]^T + bias (bias[G*H] or NULL). */
static void project_inputs(float *xw, const float *x, const float *w_d, const float *bias,
                           size_t rows, size_t gh, size_t input)
{
    if (rows == 0 || gh == 0)
        return;
    if (input == 0)
        memset(xw, 0, rows * gh * sizeof(float));
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)gh, (int)input, 1.0f,
                    x, (int)input, w_d, (int)input, 0.0f, xw, (int)gh);
    if (bias) {
        #pragma omp parallel for schedule(static) if (rows * gh > 65536)
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < gh; j++)
                xw[i * gh + j] += bias[j];
    }
}

/* gates[batch, n] (row stride ldc) = h[batch, k] @ r[n, k]^T. */
static void recur(float *gates, size_t ldc, const float *h, const float *r, size_t batch, size_t n,
                  size_t k)
{
    if (batch == 0 || n == 0)
        return;
    if (k == 0) {
        for (size_t b = 0; b < batch; b++)
            memset(gates + b * ldc, 0, n * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)n, (int)k, 1.0f, h, (int)k,
                r, (int)k, 0.0f, gates, (int)ldc);
}

static void load_state(float *s, const float *init, const RnnDims *r, size_t d)
{
    for (size_t b = 0; b < r->batch; b++) {
        if (init)
            memcpy(s + b * r->H, init + state_offset(r, d, b), r->H * sizeof(float));
        else
            memset(s + b * r->H, 0, r->H * sizeof(float));
    }
}

static void store_state(float *out, const float *s, const RnnDims *r, size_t d)
{
    if (!out)
        return;
    for (size_t b = 0; b < r->batch; b++)
        memcpy(out + state_offset(r, d, b), s + b * r->H, r->H * sizeof(float));
}

/* Combined input and recurrence bias of direction d for the first `n` of `g` gates (NULL if no B). */
static void bias_sum(float *dst, const float *b_d, size_t gh, size_t n)
{
    for (size_t j = 0; j < n; j++)
        dst[j] = b_d[j] + b_d[gh + j];
}

size_t lstm_forward_workspace(const RnnParams *params)
{
    RnnDims r = rnn_dims(params);
    size_t gh = 4 * r.H;
    return (r.seq * r.batch * gh + r.batch * gh + 2 * r.batch * r.H + gh) * sizeof(float);
}

void lstm_forward(float *y, float *y_h, float *y_c, const float *x, const float *w, const float *r,
                  const float *b, const int32_t *sequence_lens, const float *initial_h,
                  const float *initial_c, const float *peephole, const RnnParams *params,
                  float *workspace)
{
    RnnDims dm = rnn_dims(params);
    size_t H = dm.H, gh = 4 * H;
    float *xw = workspace, *gates = xw + dm.seq * dm.batch * gh, *h = gates + dm.batch * gh;
    float *c = h + dm.batch * H, *bias = c + dm.batch * H;
    for (size_t d = 0; d < dm.D; d++) {
        bool reverse = params->direction == RNN_REVERSE || d == 1;
        RnnActivation af = act_get(params, 3, d, 0, RNN_ACT_SIGMOID);
        RnnActivation ag = act_get(params, 3, d, 1, RNN_ACT_TANH);
        RnnActivation ah = act_get(params, 3, d, 2, RNN_ACT_TANH);
        const float *p_d = peephole ? peephole + d * 3 * H : NULL;
        if (b)
            bias_sum(bias, b + d * 2 * gh, gh, gh);
        project_inputs(xw, x, w + d * gh * dm.input, b ? bias : NULL, dm.seq * dm.batch, gh, dm.input);
        load_state(h, initial_h, &dm, d);
        load_state(c, initial_c, &dm, d);
        for (size_t s = 0; s < dm.seq; s++) {
            size_t t = reverse ? dm.seq - 1 - s : s;
            recur(gates, gh, h, r + d * gh * H, dm.batch, gh, H);
            #pragma omp parallel for schedule(static) if (dm.batch * gh > 8192)
            for (size_t bi = 0; bi < dm.batch; bi++) {
                float *hb = h + bi * H, *cb = c + bi * H, *gb = gates + bi * gh;
                float *yb = y ? y + y_offset(&dm, t, d, bi) : NULL;
                if (t >= seq_len(&dm, sequence_lens, bi)) {
                    if (yb)
                        memset(yb, 0, H * sizeof(float));
                    continue;
                }
                const float *xb = xw + x_row(&dm, t, bi) * gh;
                for (size_t j = 0; j < H; j++) {
                    /* gate order i, o, f, c; peepholes i, o, f */
                    float c_prev = cb[j];
                    float gi = xb[j] + gb[j], go = xb[H + j] + gb[H + j];
                    float gf = xb[2 * H + j] + gb[2 * H + j], gc = xb[3 * H + j] + gb[3 * H + j];
                    if (p_d) {
                        gi += p_d[j] * c_prev;
                        gf += p_d[2 * H + j] * c_prev;
                    }
                    float it = act_apply(af, clip_to(gi, params->clip));
                    float ft = params->input_forget ? 1.0f - it : act_apply(af, clip_to(gf, params->clip));
                    float ct = act_apply(ag, clip_to(gc, params->clip));
                    float c_new = ft * c_prev + it * ct;
                    if (p_d)
                        go += p_d[H + j] * c_new;
                    float ot = act_apply(af, clip_to(go, params->clip));
                    cb[j] = c_new;
                    hb[j] = ot * act_apply(ah, c_new);
                }
                if (yb)
                    memcpy(yb, hb, H * sizeof(float));
            }
        }
        store_state(y_h, h, &dm, d);
        store_state(y_c, c, &dm, d);
    }
}

size_t gru_forward_workspace(const RnnParams *params)
{
    RnnDims r = rnn_dims(params);
    size_t gh = 3 * r.H;
    return (r.seq * r.batch * gh + r.batch * gh + 2 * r.batch * r.H + gh) * sizeof(float);
}

void gru_forward(float *y, float *y_h, const float *x, const float *w, const float *r,
                 const float *b, const int32_t *sequence_lens, const float *initial_h,
                 const RnnParams *params, float *workspace)
{
    RnnDims dm = rnn_dims(params);
    size_t H = dm.H, gh = 3 * H;
    bool lbr = params->linear_before_reset;
    float *xw = workspace, *gates = xw + dm.seq * dm.batch * gh, *h = gates + dm.batch * gh;
    float *rh = h + dm.batch * H, *bias = rh + dm.batch * H;
    for (size_t d = 0; d < dm.D; d++) {
        bool reverse = params->direction == RNN_REVERSE || d == 1;
        RnnActivation af = act_get(params, 2, d, 0, RNN_ACT_SIGMOID);
        RnnActivation ag = act_get(params, 2, d, 1, RNN_ACT_TANH);
        const float *r_d = r + d * gh * H;
        const float *rbh = b && lbr ? b + d * 2 * gh + gh + 2 * H : NULL; /* Rbh, applied inside r*() */
        if (b) {
            /* Wb + Rb for z and r; for h Wbh, plus Rbh unless linear_before_reset. */
            const float *b_d = b + d * 2 * gh;
            bias_sum(bias, b_d, gh, lbr ? 2 * H : gh);
            if (lbr)
                memcpy(bias + 2 * H, b_d + 2 * H, H * sizeof(float));
        }
        project_inputs(xw, x, w + d * gh * dm.input, b ? bias : NULL, dm.seq * dm.batch, gh, dm.input);
        load_state(h, initial_h, &dm, d);
        for (size_t s = 0; s < dm.seq; s++) {
            size_t t = reverse ? dm.seq - 1 - s : s;
            /* linear_before_reset: all three recurrences at once; otherwise z, r now and h after r. */
            recur(gates, gh, h, r_d, dm.batch, lbr ? gh : 2 * H, H);
            if (!lbr) {
                #pragma omp parallel for schedule(static) if (dm.batch * gh > 8192)
                for (size_t bi = 0; bi < dm.batch; bi++) {
                    const float *xb = xw + x_row(&dm, t, bi) * gh;
                    float *gb = gates + bi * gh;
                    for (size_t j = 0; j < H; j++) {
                        float rt = act_apply(af, clip_to(xb[H + j] + gb[H + j], params->clip));
                        rh[bi * H + j] = rt * h[bi * H + j];
                    }
                }
                recur(gates + 2 * H, gh, rh, r_d + 2 * H * H, dm.batch, H, H);
            }
            #pragma omp parallel for schedule(static) if (dm.batch * gh > 8192)
            for (size_t bi = 0; bi < dm.batch; bi++) {
                float *hb = h + bi * H, *gb = gates + bi * gh;
                float *yb = y ? y + y_offset(&dm, t, d, bi) : NULL;
                if (t >= seq_len(&dm, sequence_lens, bi)) {
                    if (yb)
                        memset(yb, 0, H * sizeof(float));
                    continue;
                }
                const float *xb = xw + x_row(&dm, t, bi) * gh;
                for (size_t j = 0; j < H; j++) {
                    float zt = act_apply(af, clip_to(xb[j] + gb[j], params->clip));
                    float pre;
                    if (lbr) {
                        float rt = act_apply(af, clip_to(xb[H + j] + gb[H + j], params->clip));
                        pre = xb[2 * H + j] + rt * (gb[2 * H + j] + (rbh ? rbh[j] : 0.0f));
                    } else {
                        pre = xb[2 * H + j] + gb[2 * H + j];
                    }
                    float ht = act_apply(ag, clip_to(pre, params->clip));
                    hb[j] = (1.0f - zt) * ht + zt * hb[j];
                }
                if (yb)
                    memcpy(yb, hb, H * sizeof(float));
            }
        }
        store_state(y_h, h, &dm, d);
    }
}

size_t rnn_forward_workspace(const RnnParams *params)
{
    RnnDims r = rnn_dims(params);
    return (r.seq * r.batch * r.H + 2 * r.batch * r.H + r.H) * sizeof(float);
}

void rnn_forward(float *y, float *y_h, const float *x, const float *w, const float *r,
                 const float *b, const int32_t *sequence_lens, const float *initial_h,
                 const RnnParams *params, float *workspace)
{
    RnnDims dm = rnn_dims(params);
    size_t H = dm.H;
    float *xw = workspace, *gates = xw + dm.seq * dm.batch * H, *h = gates + dm.batch * H;
    float *bias = h + dm.batch * H;
    for (size_t d = 0; d < dm.D; d++) {
        bool reverse = params->direction == RNN_REVERSE || d == 1;
        RnnActivation af = act_get(params, 1, d, 0, RNN_ACT_TANH);
        if (b)
            bias_sum(bias, b + d * 2 * H, H, H);
        project_inputs(xw, x, w + d * H * dm.input, b ? bias : NULL, dm.seq * dm.batch, H, dm.input);
        load_state(h, initial_h, &dm, d);
        for (size_t s = 0; s < dm.seq; s++) {
            size_t t = reverse ? dm.seq - 1 - s : s;
            recur(gates, H, h, r + d * H * H, dm.batch, H, H);
            #pragma omp parallel for schedule(static) if (dm.batch * H > 8192)
            for (size_t bi = 0; bi < dm.batch; bi++) {
                float *hb = h + bi * H, *gb = gates + bi * H;
                float *yb = y ? y + y_offset(&dm, t, d, bi) : NULL;
                if (t >= seq_len(&dm, sequence_lens, bi)) {
                    if (yb)
                        memset(yb, 0, H * sizeof(float));
                    continue;
                }
                const float *xb = xw + x_row(&dm, t, bi) * H;
                for (size_t j = 0; j < H; j++)
                    hb[j] = act_apply(af, clip_to(xb[j] + gb[j], params->clip));
                if (yb)
                    memcpy(yb, hb, H * sizeof(float));
            }
        }
        store_state(y_h, h, &dm, d);
    }
}
