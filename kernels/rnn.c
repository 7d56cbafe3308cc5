/* rnn.c - LSTM, GRU and RNN (ONNX 14) forward: directions, layouts, sequence_lens, initial states,
 * peepholes, clip and the ONNX activation functions. Per direction, one sgemm projects the inputs of
 * all steps; each step is one sgemm on the hidden state plus a gate loop per batch row. The training
 * forward also keeps each step's pre-activations and states; the backward is backpropagation through
 * time over them (no peepholes, no input_forget: PyTorch exports neither). */
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

/* Record of direction d, step t, batch row b in a training forward's `saved` [D, seq, batch, K*H]. */
static size_t saved_offset(const RnnDims *r, size_t d, size_t t, size_t b)
{
    return (d * r->seq + t) * r->batch + b;
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

/* The forward of LSTM; saved (or NULL) gets what lstm_backward reads (kernels.h). */
static void lstm_run(float *y, float *y_h, float *y_c, float *saved, const float *x, const float *w,
                     const float *r, const float *b, const int32_t *sequence_lens, const float *initial_h,
                     const float *initial_c, const float *peephole, const RnnParams *params, float *workspace)
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
                float *sv = saved ? saved + saved_offset(&dm, d, t, bi) * LSTM_SAVED * H : NULL;
                if (t >= seq_len(&dm, sequence_lens, bi)) {
                    if (yb)
                        memset(yb, 0, H * sizeof(float));
                    if (sv)
                        memset(sv, 0, LSTM_SAVED * H * sizeof(float));
                    continue;
                }
                const float *xb = xw + x_row(&dm, t, bi) * gh;
                if (sv) { /* pre-activations i, o, f, c, then h_prev, c_prev (c_new below) */
                    for (size_t j = 0; j < gh; j++)
                        sv[j] = xb[j] + gb[j];
                    memcpy(sv + gh, hb, H * sizeof(float));
                    memcpy(sv + gh + H, cb, H * sizeof(float));
                }
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
                if (sv)
                    memcpy(sv + gh + 2 * H, cb, H * sizeof(float));
                if (yb)
                    memcpy(yb, hb, H * sizeof(float));
            }
        }
        store_state(y_h, h, &dm, d);
        store_state(y_c, c, &dm, d);
    }
}

void lstm_forward(float *y, float *y_h, float *y_c, const float *x, const float *w, const float *r,
                  const float *b, const int32_t *sequence_lens, const float *initial_h,
                  const float *initial_c, const float *peephole, const RnnParams *params,
                  float *workspace)
{
    lstm_run(y, y_h, y_c, NULL, x, w, r, b, sequence_lens, initial_h, initial_c, peephole, params, workspace);
}

void lstm_forward_train(float *y, float *y_h, float *y_c, float *saved, const float *x, const float *w,
                        const float *r, const float *b, const int32_t *sequence_lens, const float *initial_h,
                        const float *initial_c, const RnnParams *params, float *workspace)
{
    lstm_run(y, y_h, y_c, saved, x, w, r, b, sequence_lens, initial_h, initial_c, NULL, params, workspace);
}

size_t gru_forward_workspace(const RnnParams *params)
{
    RnnDims r = rnn_dims(params);
    size_t gh = 3 * r.H;
    return (r.seq * r.batch * gh + r.batch * gh + 2 * r.batch * r.H + gh) * sizeof(float);
}

/* The forward of GRU; saved (or NULL) gets what gru_backward reads (kernels.h). */
static void gru_run(float *y, float *y_h, float *saved, const float *x, const float *w, const float *r,
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
                float *sv = saved ? saved + saved_offset(&dm, d, t, bi) * GRU_SAVED * H : NULL;
                if (t >= seq_len(&dm, sequence_lens, bi)) {
                    if (yb)
                        memset(yb, 0, H * sizeof(float));
                    if (sv)
                        memset(sv, 0, GRU_SAVED * H * sizeof(float));
                    continue;
                }
                const float *xb = xw + x_row(&dm, t, bi) * gh;
                for (size_t j = 0; j < H; j++) {
                    float zt = act_apply(af, clip_to(xb[j] + gb[j], params->clip));
                    float pre, rec = 0.0f;
                    if (lbr) {
                        float rt = act_apply(af, clip_to(xb[H + j] + gb[H + j], params->clip));
                        rec = gb[2 * H + j] + (rbh ? rbh[j] : 0.0f);
                        pre = xb[2 * H + j] + rt * rec;
                    } else {
                        pre = xb[2 * H + j] + gb[2 * H + j];
                    }
                    if (sv) { /* pre-activations z, r, h, then Rh h_prev + Rbh (linear_before_reset), h_prev */
                        sv[j] = xb[j] + gb[j];
                        sv[H + j] = xb[H + j] + gb[H + j];
                        sv[2 * H + j] = pre;
                        sv[3 * H + j] = rec;
                        sv[4 * H + j] = hb[j];
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

void gru_forward(float *y, float *y_h, const float *x, const float *w, const float *r,
                 const float *b, const int32_t *sequence_lens, const float *initial_h,
                 const RnnParams *params, float *workspace)
{
    gru_run(y, y_h, NULL, x, w, r, b, sequence_lens, initial_h, params, workspace);
}

void gru_forward_train(float *y, float *y_h, float *saved, const float *x, const float *w, const float *r,
                       const float *b, const int32_t *sequence_lens, const float *initial_h,
                       const RnnParams *params, float *workspace)
{
    gru_run(y, y_h, saved, x, w, r, b, sequence_lens, initial_h, params, workspace);
}

size_t rnn_forward_workspace(const RnnParams *params)
{
    RnnDims r = rnn_dims(params);
    return (r.seq * r.batch * r.H + 2 * r.batch * r.H + r.H) * sizeof(float);
}

/* The forward of RNN; saved (or NULL) gets what rnn_backward reads (kernels.h). */
static void rnn_run(float *y, float *y_h, float *saved, const float *x, const float *w, const float *r,
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
                float *sv = saved ? saved + saved_offset(&dm, d, t, bi) * RNN_SAVED * H : NULL;
                if (t >= seq_len(&dm, sequence_lens, bi)) {
                    if (yb)
                        memset(yb, 0, H * sizeof(float));
                    if (sv)
                        memset(sv, 0, RNN_SAVED * H * sizeof(float));
                    continue;
                }
                const float *xb = xw + x_row(&dm, t, bi) * H;
                if (sv) { /* pre-activation, then h_prev */
                    for (size_t j = 0; j < H; j++)
                        sv[j] = xb[j] + gb[j];
                    memcpy(sv + H, hb, H * sizeof(float));
                }
                for (size_t j = 0; j < H; j++)
                    hb[j] = act_apply(af, clip_to(xb[j] + gb[j], params->clip));
                if (yb)
                    memcpy(yb, hb, H * sizeof(float));
            }
        }
        store_state(y_h, h, &dm, d);
    }
}

void rnn_forward(float *y, float *y_h, const float *x, const float *w, const float *r,
                 const float *b, const int32_t *sequence_lens, const float *initial_h,
                 const RnnParams *params, float *workspace)
{
    rnn_run(y, y_h, NULL, x, w, r, b, sequence_lens, initial_h, params, workspace);
}

void rnn_forward_train(float *y, float *y_h, float *saved, const float *x, const float *w, const float *r,
                       const float *b, const int32_t *sequence_lens, const float *initial_h,
                       const RnnParams *params, float *workspace)
{
    rnn_run(y, y_h, saved, x, w, r, b, sequence_lens, initial_h, params, workspace);
}

/* ======================================================================== backward */

/* d act(x) / dx at x (the pre-activation after clipping). */
static float act_deriv(RnnActivation a, float x)
{
    switch (a.kind) {
    case RNN_ACT_SIGMOID: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f - s);
    }
    case RNN_ACT_TANH: {
        float t = tanhf(x);
        return 1.0f - t * t;
    }
    case RNN_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case RNN_ACT_AFFINE: return a.alpha;
    case RNN_ACT_LEAKY_RELU: return x >= 0.0f ? 1.0f : a.alpha;
    case RNN_ACT_THRESHOLDED_RELU: return x > a.alpha ? 1.0f : 0.0f;
    case RNN_ACT_SCALED_TANH: {
        float t = tanhf(a.beta * x);
        return a.alpha * a.beta * (1.0f - t * t);
    }
    case RNN_ACT_HARD_SIGMOID: {
        float v = a.alpha * x + a.beta;
        return v > 0.0f && v < 1.0f ? a.alpha : 0.0f;
    }
    case RNN_ACT_ELU: return x >= 0.0f ? 1.0f : a.alpha * expf(x);
    case RNN_ACT_SOFTSIGN: {
        float q = 1.0f + fabsf(x);
        return 1.0f / (q * q);
    }
    case RNN_ACT_SOFTPLUS: return 1.0f / (1.0f + expf(-x));
    default: return 1.0f;
    }
}

/* Activation of pre-activation p and its derivative with respect to p: clip has derivative 0 outside
 * [-clip, clip] (torch.clamp's convention at the bounds: 1). */
static float act_fwd_bwd(RnnActivation a, float p, float clip, float *deriv)
{
    float q = clip_to(p, clip);
    *deriv = clip > 0.0f && (p < -clip || p > clip) ? 0.0f : act_deriv(a, q);
    return act_apply(a, q);
}

/* Which cell a backward runs. */
typedef enum { CELL_LSTM, CELL_GRU, CELL_RNN } CellKind;

/* Scratch of one backward: per direction, dxw [seq*batch, G*H] (gradient of the input projections),
 * dgr [batch, G*H] (of the recurrences of one step), dh, dc, hp, dpre, drh [batch, H]. */
static size_t backward_workspace(const RnnParams *p, size_t gates)
{
    RnnDims r = rnn_dims(p);
    size_t gh = gates * r.H;
    return (r.seq * r.batch * gh + r.batch * gh + 5 * r.batch * r.H) * sizeof(float);
}

size_t lstm_backward_workspace(const RnnParams *params)
{
    return backward_workspace(params, 4);
}

size_t gru_backward_workspace(const RnnParams *params)
{
    return backward_workspace(params, 3);
}

size_t rnn_backward_workspace(const RnnParams *params)
{
    return backward_workspace(params, 1);
}

/* out[j] += sum over rows of m[rows, n] */
static void add_colsum(float *out, const float *m, size_t rows, size_t n)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < n; j++)
            out[j] += m[i * n + j];
}

/* c[m, n] (+)= op(a) @ op(b) with row-major sizes; skipped when any size is 0. */
static void gemm(bool ta, bool tb, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                 size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        if (beta == 0.0f)
            for (size_t i = 0; i < m; i++)
                memset(c + i * ldc, 0, n * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, 1.0f, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* Backpropagation through time over the records of a training forward, for all three cells:
 *   per direction, from its last processed step to its first, the cell's backward turns dh (and dc)
 *   into the gradients of the gate pre-activations: dxw (the input projections X W^T + Wb) and dgr
 *   (the recurrences h_prev R^T + Rb); then dh_prev = direct part + dgr @ R, dR += dgr^T @ h_prev.
 *   After the steps: dX += dxw @ W, dW = dxw^T @ X, dWb = colsum(dxw), dRb = colsum(dgr) over steps.
 * Steps past a sequence's length pass dh and dc through unchanged (their state was not updated). */
static void backward_run(CellKind kind, float *dx, float *dw, float *dr, float *db, float *d_initial_h,
                         float *d_initial_c, const float *dy, const float *dy_h, const float *dy_c,
                         const float *x, const float *w, const float *r, const int32_t *sequence_lens,
                         const float *saved, const RnnParams *params, float *workspace)
{
    RnnDims dm = rnn_dims(params);
    size_t H = dm.H, G = kind == CELL_LSTM ? 4 : kind == CELL_GRU ? 3 : 1, gh = G * H;
    size_t K = kind == CELL_LSTM ? LSTM_SAVED : kind == CELL_GRU ? GRU_SAVED : RNN_SAVED;
    size_t rows = dm.seq * dm.batch, isz = dm.input;
    bool lbr = params->linear_before_reset;
    float clip = params->clip;
    float *dxw = workspace, *dgr = dxw + rows * gh, *dh = dgr + dm.batch * gh, *dc = dh + dm.batch * H;
    float *hp = dc + dm.batch * H, *dpre = hp + dm.batch * H, *drh = dpre + dm.batch * H;
    if (dx)
        memset(dx, 0, rows * isz * sizeof(float));
    if (db)
        memset(db, 0, dm.D * 2 * gh * sizeof(float));
    for (size_t d = 0; d < dm.D; d++) {
        bool reverse = params->direction == RNN_REVERSE || d == 1;
        size_t nact = kind == CELL_LSTM ? 3 : kind == CELL_GRU ? 2 : 1;
        RnnActivation af = act_get(params, nact, d, 0, kind == CELL_RNN ? RNN_ACT_TANH : RNN_ACT_SIGMOID);
        RnnActivation ag = act_get(params, nact, d, nact > 1 ? 1 : 0, RNN_ACT_TANH);
        RnnActivation ah = act_get(params, nact, d, nact > 2 ? 2 : 0, RNN_ACT_TANH);
        const float *r_d = r + d * gh * H;
        float *dr_d = dr ? dr + d * gh * H : NULL, *drb = db ? db + d * 2 * gh + gh : NULL;
        if (dr_d)
            memset(dr_d, 0, gh * H * sizeof(float));
        memset(dxw, 0, rows * gh * sizeof(float));
        for (size_t b = 0; b < dm.batch; b++) {
            for (size_t j = 0; j < H; j++) {
                dh[b * H + j] = dy_h ? dy_h[state_offset(&dm, d, b) + j] : 0.0f;
                dc[b * H + j] = dy_c ? dy_c[state_offset(&dm, d, b) + j] : 0.0f;
            }
        }
        for (size_t s = dm.seq; s-- > 0;) {
            size_t t = reverse ? dm.seq - 1 - s : s;
            memset(dgr, 0, dm.batch * gh * sizeof(float));
            memset(hp, 0, dm.batch * H * sizeof(float));
            memset(dpre, 0, dm.batch * H * sizeof(float));
            #pragma omp parallel for schedule(static) if (dm.batch * gh > 8192)
            for (size_t b = 0; b < dm.batch; b++) {
                if (t >= seq_len(&dm, sequence_lens, b))
                    continue;
                const float *sv = saved + saved_offset(&dm, d, t, b) * K * H;
                float *dhb = dh + b * H, *dcb = dc + b * H, *gx = dxw + x_row(&dm, t, b) * gh;
                float *gr = dgr + b * gh;
                if (dy) {
                    const float *dyb = dy + y_offset(&dm, t, d, b);
                    for (size_t j = 0; j < H; j++)
                        dhb[j] += dyb[j];
                }
                if (kind == CELL_LSTM) {
                    const float *hprev = sv + gh, *cprev = sv + gh + H, *cnew = sv + gh + 2 * H;
                    memcpy(hp + b * H, hprev, H * sizeof(float));
                    for (size_t j = 0; j < H; j++) {
                        float di_, do_, df_, dg_, dhc;
                        float it = act_fwd_bwd(af, sv[j], clip, &di_);
                        float ot = act_fwd_bwd(af, sv[H + j], clip, &do_);
                        float ft = act_fwd_bwd(af, sv[2 * H + j], clip, &df_);
                        float gt = act_fwd_bwd(ag, sv[3 * H + j], clip, &dg_);
                        float hc = act_fwd_bwd(ah, cnew[j], 0.0f, &dhc);
                        /* c_new = f * c_prev + i * g; h = o * h(c_new) */
                        float dct = dcb[j] + dhb[j] * ot * dhc;
                        gx[j] = dct * gt * di_;
                        gx[H + j] = dhb[j] * hc * do_;
                        gx[2 * H + j] = dct * cprev[j] * df_;
                        gx[3 * H + j] = dct * it * dg_;
                        dcb[j] = dct * ft;
                        dhb[j] = 0.0f;
                    }
                    memcpy(gr, gx, gh * sizeof(float));
                } else if (kind == CELL_GRU) {
                    const float *hprev = sv + 4 * H;
                    memcpy(hp + b * H, hprev, H * sizeof(float));
                    for (size_t j = 0; j < H; j++) {
                        float dz_, dr_, dn_;
                        float zt = act_fwd_bwd(af, sv[j], clip, &dz_);
                        float rt = act_fwd_bwd(af, sv[H + j], clip, &dr_);
                        float nt = act_fwd_bwd(ag, sv[2 * H + j], clip, &dn_);
                        /* h = (1 - z) * n + z * h_prev */
                        float dpn = dhb[j] * (1.0f - zt) * dn_;
                        gx[j] = dhb[j] * (hprev[j] - nt) * dz_;
                        gx[2 * H + j] = dpn;
                        gr[j] = gx[j];
                        if (lbr) { /* n = g(xw_n + r * (Rn h_prev + Rbn)) */
                            gx[H + j] = dpn * sv[3 * H + j] * dr_;
                            gr[H + j] = gx[H + j];
                            gr[2 * H + j] = dpn * rt;
                        } else { /* n = g(xw_n + Rn (r * h_prev) + Rbn): r's part after drh below */
                            dpre[b * H + j] = dpn;
                            hp[b * H + j] = hprev[j];
                        }
                        dhb[j] *= zt;
                    }
                } else {
                    memcpy(hp + b * H, sv + H, H * sizeof(float));
                    for (size_t j = 0; j < H; j++) {
                        float da;
                        act_fwd_bwd(af, sv[j], clip, &da);
                        gx[j] = gr[j] = dhb[j] * da;
                        dhb[j] = 0.0f;
                    }
                }
            }
            if (kind == CELL_GRU && !lbr) {
                /* drh = dpn @ Rn; dRn += dpn^T @ (r * h_prev); dr = drh * h_prev; dh_prev += drh * r */
                const float *rn = r_d + 2 * H * H;
                gemm(false, false, dm.batch, H, H, dpre, H, rn, H, 0.0f, drh, H);
                for (size_t b = 0; b < dm.batch; b++) {
                    if (t >= seq_len(&dm, sequence_lens, b))
                        continue;
                    const float *sv = saved + saved_offset(&dm, d, t, b) * K * H;
                    float *gx = dxw + x_row(&dm, t, b) * gh, *gr = dgr + b * gh;
                    for (size_t j = 0; j < H; j++) {
                        float dr_;
                        float rt = act_fwd_bwd(af, sv[H + j], clip, &dr_);
                        gx[H + j] = gr[H + j] = drh[b * H + j] * sv[4 * H + j] * dr_;
                        dh[b * H + j] += drh[b * H + j] * rt;
                        drh[b * H + j] = rt * sv[4 * H + j]; /* now r * h_prev */
                    }
                }
                if (dr_d)
                    gemm(true, false, H, H, dm.batch, dpre, H, drh, H, 1.0f, dr_d + 2 * H * H, H);
                if (drb)
                    add_colsum(drb + 2 * H, dpre, dm.batch, H);
            }
            gemm(false, false, dm.batch, H, gh, dgr, gh, r_d, H, 1.0f, dh, H);
            if (dr_d)
                gemm(true, false, gh, H, dm.batch, dgr, gh, hp, H, 1.0f, dr_d, H);
            if (drb)
                add_colsum(drb, dgr, dm.batch, gh);
        }
        if (dx)
            gemm(false, false, rows, isz, gh, dxw, gh, w + d * gh * isz, isz, 1.0f, dx, isz);
        if (dw)
            gemm(true, false, gh, isz, rows, dxw, gh, x, isz, 0.0f, dw + d * gh * isz, isz);
        if (db)
            add_colsum(db + d * 2 * gh, dxw, rows, gh);
        for (size_t b = 0; b < dm.batch; b++) {
            if (d_initial_h)
                memcpy(d_initial_h + state_offset(&dm, d, b), dh + b * H, H * sizeof(float));
            if (d_initial_c && kind == CELL_LSTM)
                memcpy(d_initial_c + state_offset(&dm, d, b), dc + b * H, H * sizeof(float));
        }
    }
}

void lstm_backward(float *dx, float *dw, float *dr, float *db, float *d_initial_h, float *d_initial_c,
                   const float *dy, const float *dy_h, const float *dy_c, const float *x, const float *w,
                   const float *r, const int32_t *sequence_lens, const float *saved, const RnnParams *params,
                   float *workspace)
{
    backward_run(CELL_LSTM, dx, dw, dr, db, d_initial_h, d_initial_c, dy, dy_h, dy_c, x, w, r, sequence_lens,
                 saved, params, workspace);
}

void gru_backward(float *dx, float *dw, float *dr, float *db, float *d_initial_h, const float *dy,
                  const float *dy_h, const float *x, const float *w, const float *r,
                  const int32_t *sequence_lens, const float *saved, const RnnParams *params, float *workspace)
{
    backward_run(CELL_GRU, dx, dw, dr, db, d_initial_h, NULL, dy, dy_h, NULL, x, w, r, sequence_lens, saved,
                 params, workspace);
}

void rnn_backward(float *dx, float *dw, float *dr, float *db, float *d_initial_h, const float *dy,
                  const float *dy_h, const float *x, const float *w, const float *r,
                  const int32_t *sequence_lens, const float *saved, const RnnParams *params, float *workspace)
{
    backward_run(CELL_RNN, dx, dw, dr, db, d_initial_h, NULL, dy, dy_h, NULL, x, w, r, sequence_lens, saved,
                 params, workspace);
}
