/* trainer_select.c - hyper-parameter selection by K-fold cross-validation: `--cv K` with lists for --lr and
 * --weight-decay (`--lr 0.1,0.01,0.001`) trains every combination on K-1 folds and validates on the
 * remaining one, K times, prints the table and keeps the combination with the best mean validation score
 * (val loss, or accuracy with --monitor accuracy) for the real run on all the training data.
 * Folds: the training samples' positions 0..N-1 are shuffled once with the seeded generator of the epochs
 * (state seed * 2^20 + 2^20 - 1, a stream no epoch uses) and cut into K contiguous pieces of N/K (fold f
 * validates positions [f N / K, (f+1) N / K) of that permutation); both sides keep the data's order. Every
 * fold starts from the same weights (the program's initial ones with --init applied) and fresh optimizer
 * state, with the run's other options (epochs, batch, shuffling, --early-stop: the best epoch's score).
 * It does not search other hyper-parameters, and it does not save its progress: an interrupted selection
 * starts again. */
#define _POSIX_C_SOURCE 200809L
#include "program_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CV_STREAM ((1u << 20) - 1)  /* epochs are at most 1000000 < 2^20 - 1 */
#define MAX_VALUES 64

int tr_select_option(Trainer *t, const char *name, const char *v)
{
    if (strcmp(name, "--cv") != 0)
        return 2;
    if (!tr_parse_i64(v, 2, 1000000, &t->o.cv_folds)) {
        fprintf(stderr, "%s: --cv wants a number of folds >= 2, not '%s'\n", t->prog, v);
        return 2;
    }
    return 0;
}

int tr_select_list(Trainer *t, const char *name, const char *v)
{
    bool lr = strcmp(name, "--lr") == 0;
    double *dst = lr ? t->o.lrs : t->o.wds;
    size_t *count = lr ? &t->o.nlrs : &t->o.nwds;
    *count = 0;
    if (!strchr(v, ','))
        return -1;      /* one value: trainer.c takes it (and the last one given wins) */
    size_t n = 0;
    const char *s = v;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char word[64];
        double f;
        if (len == 0 || len >= sizeof word || n == MAX_VALUES)
            goto bad;
        memcpy(word, s, len);
        word[len] = '\0';
        if (!tr_parse_f64(word, &f) || f < 0)
            goto bad;
        dst[n++] = f;
        if (!comma)
            break;
        s = comma + 1;
    }
    *count = n;
    if (lr)
        t->o.lr = dst[0];
    else
        rt_set_hyper(RT_HYPER_WEIGHT_DECAY, dst[0]);
    return 0;
bad:
    fprintf(stderr, "%s: %s wants a number >= 0 or a list of at most %d of them separated by commas, not '%s'\n",
            t->prog, name, MAX_VALUES, v);
    return 2;
}

/* A view of tr with other rows: the samples stay tr's; it loads through its own prefetcher (tr_data_free
 * closes that and frees nothing else). */
static Data view(const Data *tr, size_t *rows, size_t n)
{
    Data v = *tr;
    v.rows = rows;
    v.n = n;
    v.owns_rows = false;
    v.owns_ds = false;
    v.names = NULL;
    v.nnames = 0;
    v.pf = NULL;
    return v;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int tr_select(Trainer *t, Data *tr, Buffers *b)
{
    Options *o = &t->o;
    const TrainProgram *p = t->p;
    size_t k = (size_t)o->cv_folds, n = tr->n;
    if (k > n) {
        fprintf(stderr, "%s: --cv %zu needs at least %zu training samples (there are %zu)\n", t->prog, k, k, n);
        return 2;
    }
    double wd_now = rt_hyper(RT_HYPER_WEIGHT_DECAY, p->hyper[RT_HYPER_WEIGHT_DECAY]), lr_now = o->lr;
    const double *lrs = o->nlrs ? o->lrs : &lr_now, *wds = o->nwds ? o->wds : &wd_now;
    size_t nl = o->nlrs ? o->nlrs : 1, nw = o->nwds ? o->nwds : 1, combos = nl * nw;
    size_t *perm = malloc(n * sizeof *perm), *vrows = malloc(n * sizeof *vrows), *trows = malloc(n * sizeof *trows);
    unsigned char *init = malloc(p->params_bytes ? p->params_bytes : 1);
    double *scores = malloc(combos * k * sizeof *scores), *means = malloc(combos * sizeof *means);
    int64_t *diverged = calloc(combos * k, sizeof *diverged);
    int rc = 0;
    if (!perm || !vrows || !trows || !init || !scores || !means || !diverged) {
        rc = tr_fail(t, "out of memory");
        goto out;
    }
    memcpy(init, b->params, p->params_bytes);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    tr_shuffle(perm, n, ((uint64_t)o->seed << 20) + CV_STREAM);
    const char *what = o->monitor_accuracy ? "val accuracy" : "val loss";
    if (!o->quiet) {
        printf("%s: cross-validation, %zu folds of %zu training samples, %zu combination%s, %lld epoch%s each; "
               "%s%s:\n", t->prog, k, n, combos, combos == 1 ? "" : "s", (long long)o->epochs,
               o->epochs == 1 ? "" : "s", what, o->patience ? " of the best epoch" : " after the last epoch");
        printf("%12s %12s", "lr", "weight_decay");
        for (size_t f = 0; f < k; f++) {
            char head[32];
            snprintf(head, sizeof head, "fold %zu", f + 1);
            printf("  %11s", head);
        }
        printf(" %12s %12s\n", "mean", "std");
        fflush(stdout);
    }
    for (size_t c = 0; c < combos; c++) {
        double lr = lrs[c / nw], wd = wds[c % nw];
        o->lr = lr;
        rt_set_hyper(RT_HYPER_WEIGHT_DECAY, wd);
        for (size_t f = 0; f < k; f++) {
            size_t lo = f * n / k, hi = (f + 1) * n / k, nv = 0, nt = 0;
            for (size_t i = 0; i < n; i++)
                if (i >= lo && i < hi)
                    vrows[nv++] = perm[i];
            qsort(vrows, nv, sizeof *vrows, cmp_size);
            for (size_t i = 0, j = 0; i < n; i++) {     /* the positions not validating, ascending */
                if (j < nv && vrows[j] == i)
                    j++;
                else
                    trows[nt++] = i;
            }
            for (size_t i = 0; i < nv; i++)
                vrows[i] = tr->rows[vrows[i]];
            for (size_t i = 0; i < nt; i++)
                trows[i] = tr->rows[trows[i]];
            Data ft = view(tr, trows, nt), fv = view(tr, vrows, nv);
            EvalResult e = {0};
            memcpy(b->params, init, p->params_bytes);
            rc = tr_fit_fold(t, &ft, &fv, b, &e, &diverged[c * k + f]);
            tr_data_free(&ft);
            tr_data_free(&fv);
            if (rc >= 128) {
                fprintf(stderr, "%s: interrupted during the cross-validation (nothing is saved: it starts again when "
                        "run again)\n", t->prog);
                goto out;
            }
            if (rc == 1)
                goto out;
            rc = 0;
            scores[c * k + f] = diverged[c * k + f] ? NAN : o->monitor_accuracy ? e.accuracy : e.loss;
        }
        double sum = 0, sq = 0;
        for (size_t f = 0; f < k; f++)
            sum += scores[c * k + f];
        means[c] = sum / (double)k;
        for (size_t f = 0; f < k; f++)
            sq += (scores[c * k + f] - means[c]) * (scores[c * k + f] - means[c]);
        if (!o->quiet) {
            printf("%12g %12g", lr, wd);
            for (size_t f = 0; f < k; f++) {
                if (diverged[c * k + f])
                    printf("  %11s", "diverged");
                else
                    printf("  %11.6g", scores[c * k + f]);
            }
            printf(" %12.6g %12.6g\n", means[c], k > 1 ? sqrt(sq / (double)(k - 1)) : 0.0);
            fflush(stdout);
        }
    }
    size_t best = combos;
    for (size_t c = 0; c < combos; c++)
        if (isfinite(means[c]) && (best == combos || (o->monitor_accuracy ? means[c] > means[best]
                                                                          : means[c] < means[best])))
            best = c;
    if (best == combos) {
        rc = tr_fail(t, "--cv: every combination diverged or failed to validate: nothing to choose");
        goto out;
    }
    o->lr = lrs[best / nw];
    rt_set_hyper(RT_HYPER_WEIGHT_DECAY, wds[best % nw]);
    memcpy(b->params, init, p->params_bytes);
    if (!o->quiet) {
        printf("%s: selected --lr %g --weight-decay %g (mean %s %.6g over %zu folds); training on all %zu samples\n",
               t->prog, o->lr, wds[best % nw], what, means[best], k, n);
        fflush(stdout);
    }
out:
    if (rc && init)
        memcpy(b->params, init, p->params_bytes);
    free(perm);
    free(vrows);
    free(trows);
    free(init);
    free(scores);
    free(means);
    free(diverged);
    return rc;
}
