/* test_train_select.c - model selection in training programs: --early-stop stops PATIENCE epochs after
 * the best validation score (loss, or accuracy with --monitor accuracy) and exports the best epoch's
 * weights (bitwise those of a run stopped at that epoch, also when resumed from the stopped run's
 * checkpoint); --cv K over --lr/--weight-decay lists picks the learning rate that learns a linearly
 * separable problem over one that cannot, prints the table (a fold's score equal to a run on that fold
 * made by hand, so folds start from the same weights and fresh optimizer state), trains with the choice,
 * and a resumed run keeps the choice. Needs $ONNXTUNE (CTest sets it). */
#include "train_tool.h"

/* y = argmax(x W) over 10 classes, a `noise` fraction of labels replaced at random. */
static void make_data(const char *xp, const char *yp, size_t n, const float *w, double noise)
{
    float *x = malloc(n * 16 * sizeof *x);
    int64_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        float best = -INFINITY;
        for (size_t k = 0; k < 16; k++)
            x[i * 16 + k] = tt_uniform();
        for (int64_t c = 0; c < 10; c++) {
            float s = 0;
            for (size_t k = 0; k < 16; k++)
                s += x[i * 16 + k] * w[k * 10 + (size_t)c];
            if (s > best) {
                best = s;
                y[i] = c;
            }
        }
        if ((double)(tt_rand() % 1000) < noise * 1000)
            y[i] = (int64_t)(tt_rand() % 10);
    }
    size_t xd[2] = {n, 16};
    tt_write_npy(xp, RT_FLOAT, 2, xd, x);
    tt_write_npy(yp, RT_INT64, 1, &n, y);
    free(x);
    free(y);
}

/* The best epoch as the trainer counts it: the first strictly better score (lower loss, higher accuracy). */
static size_t best_epoch(const double *score, size_t n, bool higher)
{
    size_t best = 0;
    for (size_t e = 1; e < n; e++)
        if (higher ? score[e] > score[best] : score[e] < score[best])
            best = e;
    return best + 1;
}

static void early_stop(const char *prog, const char *monitor)
{
    const char *x = tt_path("es_x.npy"), *y = tt_path("es_y.npy"), *vx = tt_path("es_vx.npy"),
               *vy = tt_path("es_vy.npy");
    float w[160];
    tt_rand_state = 7;
    for (size_t i = 0; i < 160; i++)
        w[i] = tt_uniform();
    make_data(x, y, 48, w, 0.5);     /* noisy labels to overfit */
    make_data(vx, vy, 40, w, 0.0);
    const char *m = tt_path("es_%s.jsonl", monitor), *e = tt_path("es_%s.onnx", monitor);
    const char *c = tt_path("es_%s.ckpt", monitor);
    int rc = tt_expect("--early-stop", 0, NULL, prog, "--train-x", x, "--train-y", y, "--val-x", vx, "--val-y", vy,
                       "--lr", "0.1", "--epochs", "40", "--early-stop", "3", "--monitor", monitor, "--metrics", m,
                       "--export", e, "--checkpoint", c, NULL);
    if (rc)
        return;
    bool acc = strcmp(monitor, "accuracy") == 0;
    double loss[64], accuracy[64];
    size_t epochs = tt_val_lines(m, loss, accuracy, 64);
    size_t k = best_epoch(acc ? accuracy : loss, epochs, acc);
    CHECK_MSG(epochs == k + 3 && epochs < 40, "--monitor %s: ran %zu epochs, best %zu: want best + 3 < 40", monitor,
              epochs, k);
    CHECK_MSG(k >= 2, "--monitor %s: the best epoch is %zu: the case does not test much", monitor, k);
    char want[96];
    snprintf(want, sizeof want, "best epoch %zu (by val %s)", k, monitor);
    CHECK_MSG(strstr(tt_out, want) && strstr(tt_out, "early stopping"), "the summary lacks '%s':\n%s", want, tt_out);
    snprintf(want, sizeof want, "restored the weights of epoch %zu", k);
    CHECK_MSG(strstr(tt_out, want), "no '%s' in:\n%s", want, tt_out);
    /* the export is epoch k's model: a run of k epochs exports the same bytes; the last epoch's differs */
    char ks[16], ls[16];
    snprintf(ks, sizeof ks, "%zu", k);
    snprintf(ls, sizeof ls, "%zu", epochs);
    const char *ek = tt_path("es_%s_k.onnx", monitor), *el = tt_path("es_%s_last.onnx", monitor);
    tt_expect("k epochs", 0, NULL, prog, "--train-x", x, "--train-y", y, "--val-x", vx, "--val-y", vy, "--lr", "0.1",
              "--epochs", ks, "--export", ek, "--quiet", NULL);
    tt_expect("all epochs", 0, NULL, prog, "--train-x", x, "--train-y", y, "--val-x", vx, "--val-y", vy, "--lr", "0.1",
              "--epochs", ls, "--export", el, "--quiet", NULL);
    CHECK_MSG(tt_same(e, ek), "--monitor %s: the export is not the best epoch's (%zu) model", monitor, k);
    CHECK_MSG(!tt_same(e, el), "--monitor %s: the best epoch's model equals the last one's", monitor);
    /* the stopped run's checkpoint keeps the best weights: resuming it only exports them */
    const char *er = tt_path("es_%s_resumed.onnx", monitor);
    tt_expect("resume a stopped run", 0, NULL, prog, "--train-x", x, "--train-y", y, "--val-x", vx, "--val-y", vy,
              "--lr", "0.1", "--epochs", "40", "--early-stop", "3", "--monitor", monitor, "--export", er, "--resume",
              c, "--quiet", NULL);
    CHECK_MSG(tt_same(er, ek), "--monitor %s: resuming the stopped run does not export the best epoch", monitor);
    printf("early stop --monitor %-8s best epoch %zu of %zu run: export = a %zu-epoch run's, also after --resume\n",
           monitor, k, epochs, k);
}

/* The trainer's fold rule (trainer_select.c), written again: positions shuffled with splitmix64 from
 * state seed * 2^20 + 2^20 - 1, fold f validates positions [f n / k, (f + 1) n / k). */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void write_fold(const float *x, const int64_t *y, size_t n, uint64_t seed, size_t k, size_t f,
                       const char *tx, const char *ty, const char *vx, const char *vy)
{
    size_t perm[256];
    bool val[256] = {false};
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    uint64_t st = (seed << 20) + (1u << 20) - 1;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)(splitmix(&st) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = f * n / k; i < (f + 1) * n / k; i++)
        val[perm[i]] = true;
    float fx[2][256 * 16];
    int64_t fy[2][256];
    size_t cnt[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        int s = val[i];
        memcpy(fx[s] + cnt[s] * 16, x + i * 16, 16 * sizeof *x);
        fy[s][cnt[s]++] = y[i];
    }
    size_t d0[2] = {cnt[0], 16}, d1[2] = {cnt[1], 16};
    tt_write_npy(tx, RT_FLOAT, 2, d0, fx[0]);
    tt_write_npy(ty, RT_INT64, 1, &cnt[0], fy[0]);
    tt_write_npy(vx, RT_FLOAT, 2, d1, fx[1]);
    tt_write_npy(vy, RT_INT64, 1, &cnt[1], fy[1]);
}

/* The table row of lr (its first word), split into words; the count. */
static int table_row(const char *out, const char *lr, const char *wd, char words[16][32])
{
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        int n = 0, used;
        const char *s = line;
        while (n < 16 && *s != '\n' && *s && sscanf(s, "%31s%n", words[n], &used) == 1) {
            n++;
            s += used;
            while (*s == ' ')
                s++;
        }
        if (n >= 2 && strcmp(words[0], lr) == 0 && strcmp(words[1], wd) == 0)
            return n;
    }
    return 0;
}

static void cross_validation(const char *prog)
{
    enum { N = 60 };
    float x[N * 16], w[16];
    int64_t y[N];
    tt_rand_state = 99;
    for (size_t k = 0; k < 16; k++)
        w[k] = tt_uniform();
    for (size_t i = 0; i < N; i++) {
        float s = 0;
        for (size_t k = 0; k < 16; k++)
            s += (x[i * 16 + k] = tt_uniform()) * w[k];
        y[i] = s > 0;       /* linearly separable: classes 0 and 1 */
    }
    const char *xp = tt_path("cv_x.npy"), *yp = tt_path("cv_y.npy"), *m = tt_path("cv.jsonl");
    size_t xd[2] = {N, 16}, n = N;
    tt_write_npy(xp, RT_FLOAT, 2, xd, x);
    tt_write_npy(yp, RT_INT64, 1, &n, y);
    int rc = tt_expect("--cv", 0, NULL, prog, "--train-x", xp, "--train-y", yp, "--cv", "3", "--lr", "1e-06,0.1",
                       "--weight-decay", "0,0.001", "--epochs", "5", "--seed", "5", "--metrics", m, NULL);
    if (rc)
        return;
    static char table[sizeof tt_out];
    memcpy(table, tt_out, sizeof table);
    char words[16][32];
    double mean[2][2];
    const char *lrs[2] = {"1e-06", "0.1"}, *wds[2] = {"0", "0.001"};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            int nw = table_row(table, lrs[i], wds[j], words);
            CHECK_MSG(nw == 7, "no table row for lr %s weight_decay %s (3 folds, mean, std) in:\n%s", lrs[i], wds[j],
                      table);
            mean[i][j] = nw == 7 ? strtod(words[5], NULL) : NAN;
        }
    CHECK_MSG(mean[1][0] < mean[0][0] - 0.2 && mean[1][1] < mean[0][1] - 0.2,
              "lr 0.1 (mean val loss %g, %g) does not beat lr 1e-6 (%g, %g)", mean[1][0], mean[1][1], mean[0][0],
              mean[0][1]);
    CHECK_MSG(strstr(table, "selected --lr 0.1 --weight-decay"), "lr 0.1 not selected:\n%s", table);
    double lr = NAN;
    size_t steps = tt_step_lines(m, &lr);
    CHECK_MSG(steps == 40 && lr == 0.1, "the final run: %zu steps (want 5 epochs of 60 samples in 8s: 40), lr %g "
              "(want 0.1)", steps, lr);
    /* fold 3 of lr 0.1, weight decay 0.001 (the last one run) by hand */
    const char *tx = tt_path("f_tx.npy"), *ty = tt_path("f_ty.npy"), *vx = tt_path("f_vx.npy"), *vy = tt_path("f_vy.npy");
    const char *fm = tt_path("fold.jsonl");
    write_fold(x, y, N, 5, 3, 2, tx, ty, vx, vy);
    tt_expect("fold 3 by hand", 0, NULL, prog, "--train-x", tx, "--train-y", ty, "--val-x", vx, "--val-y", vy, "--lr",
              "0.1", "--weight-decay", "0.001", "--epochs", "5", "--seed", "5", "--metrics", fm, "--quiet", NULL);
    double vl[8], va[8];
    size_t nv = tt_val_lines(fm, vl, va, 8);
    char cell[32] = "";
    if (nv == 5)
        snprintf(cell, sizeof cell, "%.6g", vl[4]);
    int nw = table_row(table, "0.1", "0.001", words);
    CHECK_MSG(nv == 5 && nw == 7 && strcmp(words[4], cell) == 0,
              "fold 3 of lr 0.1 scored %s in the table, %s when trained by hand", nw == 7 ? words[4] : "?", cell);
    printf("cv         --cv 3, lr 1e-06 vs 0.1 x weight decay 0, 0.001: mean val loss %.4g/%.4g vs %.4g/%.4g, "
           "selected 0.1; fold 3 = a run by hand (%s)\n", mean[0][0], mean[0][1], mean[1][0], mean[1][1], cell);

    /* interrupted after the selection, resumed with the same command: no second selection, same run */
    const char *rm = tt_path("cv_r.jsonl"), *rc_path = tt_path("cv_r.ckpt");
    tt_expect("--cv --max-steps", 0, NULL, prog, "--train-x", xp, "--train-y", yp, "--cv", "3", "--lr", "1e-06,0.1",
              "--weight-decay", "0,0.001", "--epochs", "5", "--seed", "5", "--metrics", rm, "--checkpoint", rc_path,
              "--max-steps", "13", NULL);
    tt_expect("--cv --resume", 0, NULL, prog, "--train-x", xp, "--train-y", yp, "--cv", "3", "--lr", "1e-06,0.1",
              "--weight-decay", "0,0.001", "--epochs", "5", "--seed", "5", "--metrics", rm, "--resume", rc_path, NULL);
    CHECK_MSG(strstr(tt_out, "selection stands") && !strstr(tt_out, "fold 1"),
              "a resumed --cv run selected again:\n%s", tt_out);
    CHECK_MSG(tt_same(rm, m), "the resumed --cv run's metrics differ from the straight one's");
}

/* SIGINT during the selection: nothing to save, exit 130, said so. */
static void interrupted(const char *prog)
{
    TtArgv a = {.n = 0};
    tt_pushv(&a, prog, "--train-x", "tests/ref/train/mlp_sgd/x.npy", "--train-y", "tests/ref/train/mlp_sgd/y.npy",
             "--cv", "3", "--lr", "0.1,0.01", "--epochs", "1000000", NULL);
    pid_t pid = tt_spawn(&a);
    bool started = tt_wait_for_file(tt_path("stdout.txt"), 10);
    tt_sleep(0.2);
    kill(pid, SIGINT);
    int rc = tt_wait(pid);
    CHECK_MSG(started && rc == 130 && strstr(tt_err, "interrupted during the cross-validation"),
              "SIGINT during --cv: exit %d (want 130): %s", rc, tt_err);
}

static void usage_errors(const char *prog)
{
    const char *x = "tests/ref/train/mlp_sgd/x.npy", *y = "tests/ref/train/mlp_sgd/y.npy";
    tt_expect("lists without --cv", 2, "add --cv K", prog, "--train-x", x, "--train-y", y, "--lr", "0.1,0.2", NULL);
    tt_expect("bad list", 2, "--lr wants a number >= 0 or a list", prog, "--train-x", x, "--train-y", y, "--lr",
              "0.1,,0.2", "--cv", "2", NULL);
    tt_expect("--cv 1", 2, "--cv wants a number of folds >= 2", prog, "--train-x", x, "--train-y", y, "--cv", "1",
              NULL);
    tt_expect("--cv above N", 2, "needs at least 40 training samples", prog, "--train-x", x, "--train-y", y, "--cv",
              "40", NULL);
    tt_expect("--early-stop without validation", 2, "--early-stop needs validation data", prog, "--train-x", x,
              "--train-y", y, "--early-stop", "2", NULL);
    tt_expect("--monitor", 2, "loss or accuracy", prog, "--train-x", x, "--train-y", y, "--monitor", "f1", NULL);
    /* a single value after a list: the last one wins, no --cv needed */
    tt_expect("list then value", 0, NULL, prog, "--train-x", x, "--train-y", y, "--lr", "0.1,0.2", "--lr", "0.1",
              "--epochs", "1", "--quiet", NULL);
}

int main(void)
{
    if (!tt_setup("test_train_select"))
        return 1;
    double t0 = tt_now();
    const char *prog = tt_path("mlp_sgd");
    if (!tt_compile(prog, "models/mlp/model.onnx", "--train", "*", "--head", "none", "--optimizer", "sgd", "--momentum",
                    "0.9", "--batch", "8", NULL))
        return test_summary("test_train_select");
    early_stop(prog, "loss");
    early_stop(prog, "accuracy");
    cross_validation(prog);
    interrupted(prog);
    usage_errors(prog);
    printf("(%.1f s)\n", tt_now() - t0);
    tt_cleanup();
    return test_summary("test_train_select");
}
