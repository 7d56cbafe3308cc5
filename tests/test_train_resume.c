/* test_train_resume.c - training programs never lose work: a run stopped after an epoch, mid-epoch
 * (--max-steps), by SIGKILL at random moments, by SIGINT or SIGTERM, then resumed, gives the uninterrupted
 * run's metrics file, plot and export byte for byte (so every loss to the last bit), with dropout, Adam
 * state and BatchNormalization buffers in play; a checkpoint is never seen half-written; checkpoints of
 * another program, corrupt ones and mismatched data are refused; a diverging run keeps its last good
 * checkpoint; `onnxtune train` prints its own command line to resume. Needs $ONNXTUNE (CTest sets it). */
#include "train_tool.h"

#include <dirent.h>

static const char *mlp_x = "tests/ref/train/mlp_sgd/x.npy", *mlp_y = "tests/ref/train/mlp_sgd/y.npy";

/* prog with the data and options every run of a case shares */
static void base_args(TtArgv *a, const char *prog, const char *x, const char *y)
{
    a->n = 0;
    tt_pushv(a, prog, "--train-x", x, "--train-y", y, "--val-split", "0.25", "--seed", "3", "--quiet", NULL);
}

/* One program, three ways to 3 epochs: straight; 1 epoch then --resume; stops by --max-steps at steps 3
 * (in epoch 1: no epoch in the plot's history yet), 6 (after a --checkpoint-every 3 save) and 9, each
 * resumed, then to the end. */
static void equivalence(const char *name, const char *prog, const char *x, const char *y, const char *lr,
                        int64_t steps_per_epoch)
{
    TtArgv a;
    const char *um = tt_path("%s_u.jsonl", name), *ue = tt_path("%s_u.onnx", name), *up = tt_path("%s_u.svg", name);
    base_args(&a, prog, x, y);
    tt_pushv(&a, "--lr", lr, "--epochs", "3", "--metrics", um, "--export", ue, "--plot", up, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "%s: the uninterrupted run exited %d: %s", name, rc, tt_err);
    CHECK_EQ_INT(tt_step_lines(um, NULL), 3 * steps_per_epoch);

    /* after epoch 1 */
    const char *am = tt_path("%s_a.jsonl", name), *ae = tt_path("%s_a.onnx", name), *ap = tt_path("%s_a.svg", name);
    const char *ac = tt_path("%s_a.ckpt", name);
    base_args(&a, prog, x, y);
    tt_pushv(&a, "--lr", lr, "--epochs", "1", "--metrics", am, "--plot", ap, "--checkpoint", ac, NULL);
    rc = tt_run(&a);
    CHECK_MSG(rc == 0 && tt_exists(ac), "%s: the 1-epoch run exited %d: %s", name, rc, tt_err);
    base_args(&a, prog, x, y);
    tt_pushv(&a, "--lr", lr, "--epochs", "3", "--metrics", am, "--plot", ap, "--export", ae, "--resume", ac, NULL);
    rc = tt_run(&a);
    CHECK_MSG(rc == 0, "%s: resuming after epoch 1 exited %d: %s", name, rc, tt_err);
    CHECK_MSG(tt_same(um, am), "%s: metrics after resuming at an epoch's end differ from the uninterrupted run's",
              name);
    CHECK_MSG(tt_same(ue, ae), "%s: the export after resuming at an epoch's end differs", name);
    CHECK_MSG(tt_same(up, ap), "%s: the plot after resuming at an epoch's end differs", name);

    /* mid-epoch, twice */
    const char *bm = tt_path("%s_b.jsonl", name), *be = tt_path("%s_b.onnx", name), *bp = tt_path("%s_b.svg", name);
    const char *bc = tt_path("%s_b.ckpt", name);
    base_args(&a, prog, x, y);
    tt_pushv(&a, "--lr", lr, "--epochs", "3", "--metrics", bm, "--plot", bp, "--checkpoint", bc, "--max-steps", "3",
             NULL);
    rc = tt_run(&a);
    CHECK_MSG(rc == 0 && strstr(tt_out, "resume with: ") && strstr(tt_out, "--resume"),
              "%s: --max-steps 3 exited %d without saying how to resume: %s%s", name, rc, tt_out, tt_err);
    CHECK_EQ_INT(tt_step_lines(bm, NULL), 3);
    base_args(&a, prog, x, y);
    tt_pushv(&a, "--lr", lr, "--epochs", "3", "--metrics", bm, "--plot", bp, "--resume", bc, "--checkpoint-every", "3",
             "--max-steps", "6", NULL);
    rc = tt_run(&a);
    CHECK_MSG(rc == 0, "%s: resuming to step 6 exited %d: %s", name, rc, tt_err);
    CHECK_EQ_INT(tt_step_lines(bm, NULL), 6);
    base_args(&a, prog, x, y);
    tt_pushv(&a, "--lr", lr, "--epochs", "3", "--metrics", bm, "--plot", bp, "--resume", bc, "--max-steps", "9", NULL);
    rc = tt_run(&a);
    CHECK_MSG(rc == 0, "%s: resuming to step 9 exited %d: %s", name, rc, tt_err);
    CHECK_EQ_INT(tt_step_lines(bm, NULL), 9);
    base_args(&a, prog, x, y);
    tt_pushv(&a, "--lr", lr, "--epochs", "3", "--metrics", bm, "--plot", bp, "--export", be, "--resume", bc, NULL);
    rc = tt_run(&a);
    CHECK_MSG(rc == 0, "%s: resuming mid-epoch exited %d: %s", name, rc, tt_err);
    CHECK_MSG(tt_same(um, bm), "%s: metrics after resuming mid-epoch differ from the uninterrupted run's", name);
    CHECK_MSG(tt_same(ue, be), "%s: the export after resuming mid-epoch differs", name);
    CHECK_MSG(tt_same(up, bp), "%s: the plot after resuming mid-epoch differs", name);
    printf("%-10s resume after epoch 1, at steps 3, 6 and 9: metrics, export and plot identical\n", name);
}

/* Checkpoint files left half-written: PATH.tmp.PID in the folder. */
static int count_temporaries(const char *base)
{
    DIR *d = opendir(tt_dir);
    int n = 0;
    size_t len = strlen(base);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, base, len) == 0 && strncmp(e->d_name + len, ".tmp.", 5) == 0;
    if (d)
        closedir(d);
    return n;
}

static char long_epochs[32] = "300";   /* main sets it so that a run saving every step lasts ~0.6 s */
static int64_t long_steps = 1200;

static void long_args(TtArgv *a, const char *prog)
{
    base_args(a, prog, mlp_x, mlp_y);
    tt_pushv(a, "--lr", "0.05", "--epochs", long_epochs, NULL);
}

/* SIGKILL at random moments of a run saving every step: whenever the checkpoint exists it reads back
 * whole; resuming each time ends where the uninterrupted run ends. */
static void random_kills(const char *prog, const char *ref_metrics, const char *ref_export)
{
    const char *km = tt_path("k.jsonl"), *ke = tt_path("k.onnx"), *kc = tt_path("k.ckpt");
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    tt_rand_state = seed;
    int kills = 0, mid_run = 0, present = 0, corrupt = 0;
    double t_first = 0;
    for (int round = 0; round < 8; round++) {
        TtArgv a;
        long_args(&a, prog);
        tt_pushv(&a, "--metrics", km, "--export", ke, "--checkpoint", kc, "--checkpoint-every", "1", NULL);
        if (tt_exists(kc))
            tt_pushv(&a, "--resume", kc, NULL);
        else
            remove(km); /* a fresh run rewrites it: the steps counted below are this run's */
        size_t done = tt_step_lines(km, NULL), left = done < (size_t)long_steps ? (size_t)long_steps - done : 0;
        double t0 = tt_now();
        pid_t pid = tt_spawn(&a);
        /* the first run measures how long a whole run lasts; later kills land anywhere in it */
        if (round == 0) {
            int rc = tt_wait(pid);
            t_first = tt_now() - t0;
            CHECK_MSG(rc == 0, "the run to be killed exited %d: %s", rc, tt_err);
            CHECK_MSG(tt_same(km, ref_metrics) && tt_same(ke, ref_export), "with --checkpoint-every 1 the run differs");
            remove(kc);
            continue;
        }
        /* somewhere in the first half of what is left: a step count drawn at random, then a random moment
         * within that step (kills land inside checkpoint writes too). Counted in steps, not seconds: a delay
         * from the first run's duration overshot the whole run when the load dropped, and every later round
         * resumed a finished run. */
        size_t target = done + (size_t)((double)left * 0.5 * (double)(tt_rand() % 1000) / 1000.0);
        for (double tw = tt_now(); tt_step_lines(km, NULL) < target && tt_now() - tw < 120;)
            tt_sleep(0.005);
        tt_sleep(t_first / (double)long_steps * (double)(tt_rand() % 1000) / 1000.0);
        int alive = kill(pid, 0) == 0;
        kill(pid, SIGKILL);
        int rc = tt_wait(pid);
        kills++;
        mid_run += rc == -SIGKILL && alive;
        CHECK_MSG(rc == -SIGKILL || rc == 0, "round %d: the run exited %d: %s", round, rc, tt_err);
        if (tt_exists(kc)) {
            present++;
            Checkpoint c;
            char err[1024];
            CkptStatus st = ckpt_read(kc, NULL, &c, err, sizeof err);
            corrupt += st != CKPT_OK;
            CHECK_MSG(st == CKPT_OK, "round %d: the checkpoint after SIGKILL does not read: %s", round, err);
            ckpt_free(&c);
        }
    }
    TtArgv a;
    long_args(&a, prog);
    tt_pushv(&a, "--metrics", km, "--export", ke, "--checkpoint", kc, "--checkpoint-every", "1", NULL);
    if (tt_exists(kc))
        tt_pushv(&a, "--resume", kc, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "the last resume exited %d: %s", rc, tt_err);
    CHECK_MSG(tt_same(km, ref_metrics), "after %d SIGKILLs and resumes the metrics differ from the uninterrupted run's",
              kills);
    CHECK_MSG(tt_same(ke, ref_export), "after %d SIGKILLs and resumes the export differs", kills);
    CHECK_MSG(count_temporaries("k.ckpt") == 0, "temporary checkpoint files are left behind");
    CHECK_MSG(mid_run >= 3, "only %d of %d SIGKILLs landed mid-run (a run lasts %.2f s)", mid_run, kills, t_first);
    printf("SIGKILL    %d kills (%d mid-run, checkpoint present after %d, corrupt %d; seed %llu; a run %.2f s): "
           "metrics and export identical\n", kills, mid_run, present, corrupt, (unsigned long long)seed, t_first);
}

/* SIGINT / SIGTERM mid-run: a checkpoint next to the export (no --checkpoint given), the documented exit
 * status, a resume command that, run by the shell, completes the run exactly. */
static void stop_signal(int sig, const char *ref_metrics, const char *ref_export, const char *prog)
{
    const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    const char *sm = tt_path("s%d.jsonl", sig), *se = tt_path("s%d.onnx", sig), *sc = tt_path("s%d.onnx.ckpt", sig);
    TtArgv a;
    long_args(&a, prog);
    /* --checkpoint-every 1 without --checkpoint saves to the default place (and slows the run down enough to be
     * interrupted) */
    tt_pushv(&a, "--metrics", sm, "--export", se, "--checkpoint-every", "1", NULL);
    pid_t pid = tt_spawn(&a);
    /* a few steps in (by the metrics, not by time: a loaded machine stretches start-up, an idle one can end
     * a calibrated run within a fixed delay) */
    bool started = tt_wait_for_file(sm, 120);
    for (double tw = tt_now(); started && tt_step_lines(sm, NULL) < 3 && tt_now() - tw < 120;)
        tt_sleep(0.005);
    kill(pid, sig);
    int rc = tt_wait(pid);
    int want = 128 + sig;
    CHECK_MSG(started && rc == want, "%s: exit %d (want %d): %s", name, rc, want, tt_err);
    CHECK_MSG(strstr(tt_err, "interrupted by") && tt_exists(sc), "%s: no checkpoint at %s: %s", name, sc, tt_err);
    CHECK_MSG(!tt_exists(se), "%s: an interrupted run exported", name);
    const char *line = strstr(tt_err, "resume with: ");
    char cmd[4096] = "";
    if (line) {
        line += strlen("resume with: ");
        size_t len = strcspn(line, "\n");
        snprintf(cmd, sizeof cmd, "%.*s", (int)len, line);
    }
    CHECK_MSG(cmd[0] && strstr(cmd, "--resume"), "%s: no resume command in: %s", name, tt_err);
    if (!cmd[0])
        return;
    size_t steps = tt_step_lines(sm, NULL);
    TtArgv sh = {.n = 0};
    tt_pushv(&sh, "/bin/sh", "-c", cmd, NULL);
    rc = tt_run(&sh);
    CHECK_MSG(rc == 0, "%s: the printed resume command exited %d: %s", name, rc, tt_err);
    CHECK_MSG(tt_same(sm, ref_metrics), "%s: metrics after resuming differ from the uninterrupted run's", name);
    CHECK_MSG(tt_same(se, ref_export), "%s: the export after resuming differs", name);
    printf("%-10s exit %d after %zu steps, checkpoint %s, the printed command resumes: identical\n", name, want, steps,
           strrchr(sc, '/') + 1);
}

/* Checkpoints that do not belong: another program, another compiled batch, damaged files, other data. */
static void refusals(const char *prog, const char *other, const char *other_batch)
{
    const char *rc_path = tt_path("r.ckpt"), *bad = tt_path("bad.ckpt");
    TtArgv a;
    base_args(&a, prog, mlp_x, mlp_y);
    tt_pushv(&a, "--epochs", "1", "--checkpoint", rc_path, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0 && tt_exists(rc_path), "making a checkpoint exited %d: %s", rc, tt_err);
    tt_expect("another head", 1, "checkpoint of another model or compiled program", other, "--train-x", mlp_x,
              "--train-y", mlp_y, "--val-split", "0.25", "--seed", "3", "--resume", rc_path, NULL);
    tt_expect("another compiled batch", 1, "checkpoint of another model or compiled program", other_batch,
              "--train-x", mlp_x, "--train-y", mlp_y, "--val-split", "0.25", "--seed", "3", "--batch", "8",
              "--resume", rc_path, NULL);
    /* the same identity where the weights are read (ckpt_program_identity): eval takes train's checkpoint and
     * the programs that refuse to resume from it refuse to evaluate it too */
    tt_expect("eval of train's checkpoint", 0, NULL, prog, "eval", "--x", mlp_x, "--y", mlp_y, "--checkpoint", rc_path,
              NULL);
    tt_expect("eval: another head", 1, "checkpoint of another model or compiled program", other, "eval", "--x", mlp_x,
              "--y", mlp_y, "--checkpoint", rc_path, NULL);
    tt_expect("eval: another compiled batch", 1, "checkpoint of another model or compiled program", other_batch,
              "eval", "--x", mlp_x, "--y", mlp_y, "--checkpoint", rc_path, NULL);
    tt_expect("other data order", 1, "resuming needs the same data", prog, "--train-x", mlp_x, "--train-y", mlp_y,
              "--val-split", "0.25", "--seed", "4", "--resume", rc_path, NULL);
    tt_expect("another batch", 1, "resuming needs the same data", prog, "--train-x", mlp_x, "--train-y", mlp_y,
              "--val-split", "0.25", "--seed", "3", "--batch", "4", "--resume", rc_path, NULL);
    size_t len;
    char *bytes = tt_read(rc_path, &len);
    if (!bytes)
        return;
    bytes[len / 2] ^= 0x40;
    FILE *f = fopen(bad, "wb");
    CHECK(f && fwrite(bytes, 1, len, f) == len);
    if (f)
        fclose(f);
    tt_expect("a flipped bit", 1, "CRC mismatch", prog, "--train-x", mlp_x, "--train-y", mlp_y, "--val-split", "0.25",
              "--seed", "3", "--resume", bad, NULL);
    bytes[len / 2] ^= 0x40;
    f = fopen(bad, "wb");
    CHECK(f && fwrite(bytes, 1, len - 100, f) == len - 100);
    if (f)
        fclose(f);
    tt_expect("a truncated file", 1, "truncated", prog, "--train-x", mlp_x, "--train-y", mlp_y, "--val-split", "0.25",
              "--seed", "3", "--resume", bad, NULL);
    tt_expect("no file", 1, "cannot open", prog, "--train-x", mlp_x, "--train-y", mlp_y, "--resume", tt_path("none"),
              NULL);
    free(bytes);
    printf("refused    another head, another compiled batch (also by eval, which takes train's own), other --seed, "
           "other --batch, a flipped bit, truncated\n");
}

/* A diverging run keeps the last good checkpoint: the one of the step before the NaN loss, bitwise the
 * checkpoint of a run stopped there; and weights that turn infinite are never saved over a good one. */
static void divergence(const char *prog)
{
    NpyArray xa, ya;
    char err[512];
    if (npy_read(mlp_x, &xa, err, sizeof err) != NPY_OK || npy_read(mlp_y, &ya, err, sizeof err) != NPY_OK) {
        CHECK_MSG(false, "%s", err);
        return;
    }
    const char *x8 = tt_path("x8.npy"), *y8 = tt_path("y8.npy");
    size_t xd[2] = {8, 16}, yd = 8;     /* one batch: a step per epoch */
    tt_write_npy(x8, RT_FLOAT, 2, xd, xa.data);
    tt_write_npy(y8, RT_INT64, 1, &yd, ya.data);
    npy_free(&xa);
    npy_free(&ya);
    const char *nc = tt_path("n.ckpt"), *nc1 = tt_path("n1.ckpt");
    int rc = tt_expect("diverging", 1, "training stopped", prog, "--train-x", x8, "--train-y", y8, "--epochs", "20",
                       "--lr", "1e6", "--checkpoint", nc, "--checkpoint-every", "1", "--quiet", NULL);
    const char *at = strstr(tt_err, "at step ");
    long bad_step = at ? strtol(at + 8, NULL, 10) : 0;
    CHECK_MSG(rc == 1 && bad_step >= 2 && strstr(tt_err, "the last checkpoint is"), "no step named: %s", tt_err);
    if (bad_step >= 2) {
        char epochs[32];
        snprintf(epochs, sizeof epochs, "%ld", bad_step - 1);
        tt_expect("stopped before", 0, NULL, prog, "--train-x", x8, "--train-y", y8, "--epochs", epochs, "--lr", "1e6",
                  "--checkpoint", nc1, "--quiet", NULL);
        CHECK_MSG(tt_same(nc, nc1), "the checkpoint kept after the NaN at step %ld is not the one of step %ld",
                  bad_step, bad_step - 1);
    }
    /* infinite weights: two good epochs, then lr 1e300 makes the weights infinite at the next step */
    const char *wc = tt_path("w.ckpt"), *wc0 = tt_path("w0.ckpt");
    tt_expect("two good epochs", 0, NULL, prog, "--train-x", x8, "--train-y", y8, "--epochs", "2", "--lr", "0.1",
              "--checkpoint", wc, "--quiet", NULL);
    tt_copy(wc, wc0);
    tt_expect("infinite weights", 1, "the weights are not finite after step 3", prog, "--train-x", x8, "--train-y", y8,
              "--epochs", "5", "--lr", "1e300", "--resume", wc, "--checkpoint-every", "1", "--quiet", "--export",
              tt_path("w.onnx"), NULL);
    CHECK_MSG(tt_same(wc, wc0), "infinite weights were saved over the good checkpoint");
    CHECK_MSG(!tt_exists(tt_path("w.onnx")), "infinite weights were exported");
    printf("NaN        the loss NaN at step %ld: the checkpoint of step %ld is kept; infinite weights never saved\n",
           bad_step, bad_step - 1);
}

/* Through `onnxtune train`: the resume command printed is onnxtune's own command line, and it resumes. */
static void train_command(void)
{
    static char cache[600];
    snprintf(cache, sizeof cache, "ONNXTUNE_CACHE=%s/cache", tt_dir);
    putenv(cache);
    const char *m = tt_path("t.jsonl"), *mu = tt_path("tu.jsonl"), *c = tt_path("t.ckpt");
    TtArgv a = {.n = 0};
    tt_pushv(&a, tt_onnxtune, "train", "models/mlp/model.onnx", "--train", "*", "--head", "none", "--momentum", "0.9",
             "--batch", "8", "--train-x", mlp_x, "--train-y", mlp_y, "--epochs", "3", "--lr", "0.1", "--quiet", NULL);
    int na = a.n;
    tt_pushv(&a, "--metrics", mu, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "onnxtune train exited %d: %s", rc, tt_err);
    a.n = na;
    tt_pushv(&a, "--metrics", m, "--checkpoint", c, "--max-steps", "7", NULL);
    rc = tt_run(&a);
    const char *line = strstr(tt_out, "resume with: ");
    char cmd[4096] = "";
    if (line)
        snprintf(cmd, sizeof cmd, "%.*s", (int)strcspn(line + 13, "\n"), line + 13);
    char want[600];
    snprintf(want, sizeof want, "%s train models/mlp/model.onnx --train '*' ", tt_onnxtune);
    CHECK_MSG(rc == 0 && strncmp(cmd, want, strlen(want)) == 0, "onnxtune train --max-steps: exit %d, resume "
              "command '%s' (want it to start '%s')", rc, cmd, want);
    TtArgv sh = {.n = 0};
    tt_pushv(&sh, "/bin/sh", "-c", cmd, NULL);
    rc = cmd[0] ? tt_run(&sh) : -1;
    CHECK_MSG(rc == 0 && tt_same(m, mu), "onnxtune train's resume command exited %d; metrics %s", rc,
              tt_same(m, mu) ? "equal" : "differ");
    /* Ctrl-C reaches the program under onnxtune train too: a checkpoint, 130, onnxtune's command */
    a.n = na;
    tt_pushv(&a, "--metrics", tt_path("ti.jsonl"), "--epochs", "1000000", "--checkpoint", tt_path("ti.ckpt"), NULL);
    pid_t pid = tt_spawn(&a);
    bool started = tt_wait_for_file(tt_path("ti.jsonl"), 120); /* onnxtune train may compile first */
    tt_sleep(0.1);
    kill(pid, SIGINT);
    rc = tt_wait(pid);
    CHECK_MSG(started && rc == 130 && strstr(tt_err, "resume with: ") && strstr(tt_err, want),
              "SIGINT to onnxtune train: exit %d (want 130), stderr: %s", rc, tt_err);
    printf("train      onnxtune train prints its own command to resume; resumed: identical; SIGINT: 130\n");
}

int main(void)
{
    if (!tt_setup("test_train_resume"))
        return 1;
    double t0 = tt_now();
    const char *sgd = tt_path("mlp_sgd"), *drop = tt_path("mlp_drop"), *bn = tt_path("cnn_bn");
    const char *other = tt_path("mlp_head10"), *other_batch = tt_path("mlp_sgd16");
    bool ok = tt_compile(sgd, "models/mlp/model.onnx", "--train", "*", "--head", "none", "--optimizer", "sgd",
                         "--momentum", "0.9", "--batch", "8", NULL);
    ok &= tt_compile(drop, "models/mlp/model.onnx", "--train", "*", "--head", "mlp:24,10", "--head-dropout", "0.3",
                     "--optimizer", "adam", "--batch", "8", NULL);
    ok &= tt_compile(bn, "models/cnn/model.onnx", "--train", "*", "--bn-train", "--head", "none", "--optimizer",
                     "adamw", "--batch", "4", NULL);
    ok &= tt_compile(other, "models/mlp/model.onnx", "--head", "linear:10", "--optimizer", "sgd", "--momentum", "0.9",
                     "--batch", "8", NULL);
    ok &= tt_compile(other_batch, "models/mlp/model.onnx", "--train", "*", "--head", "none", "--optimizer", "sgd",
                     "--momentum", "0.9", "--batch", "16", NULL);
    if (!ok)
        return test_summary("test_train_resume");

    /* 20 images 1x8x8 for the CNN with BatchNormalization (train 15: batches 4,4,4,3) */
    float cx[20 * 64];
    int64_t cy[20];
    for (size_t i = 0; i < 20 * 64; i++)
        cx[i] = tt_uniform();
    for (size_t i = 0; i < 20; i++)
        cy[i] = (int64_t)(tt_rand() % 10);
    size_t cxd[4] = {20, 1, 8, 8}, cyd = 20;
    const char *cxp = tt_path("cnn_x.npy"), *cyp = tt_path("cnn_y.npy");
    tt_write_npy(cxp, RT_FLOAT, 4, cxd, cx);
    tt_write_npy(cyp, RT_INT64, 1, &cyd, cy);

    /* 36 samples, 27 train in batches 8,8,8,3 */
    equivalence("sgd", sgd, mlp_x, mlp_y, "0.1", 4);
    equivalence("dropout", drop, mlp_x, mlp_y, "0.01", 4);
    equivalence("bn", bn, cxp, cyp, "0.01", 4);

    /* how long do 50 epochs take, saving every step? */
    const char *ref_m = tt_path("ref.jsonl"), *ref_e = tt_path("ref.onnx");
    TtArgv a;
    snprintf(long_epochs, sizeof long_epochs, "50");
    long_args(&a, sgd);
    tt_pushv(&a, "--checkpoint-every", "1", "--checkpoint", tt_path("calibrate.ckpt"), NULL);
    double tc = tt_now();
    CHECK_MSG(tt_run(&a) == 0, "calibration: %s", tt_err);
    tc = tt_now() - tc;
    int64_t epochs = (int64_t)(50 * 0.6 / (tc > 1e-3 ? tc : 1e-3));
    epochs = epochs < 200 ? 200 : epochs > 5000 ? 5000 : epochs;
    snprintf(long_epochs, sizeof long_epochs, "%lld", (long long)epochs);
    long_steps = 4 * epochs;
    long_args(&a, sgd);
    tt_pushv(&a, "--metrics", ref_m, "--export", ref_e, NULL);
    int rc = tt_run(&a);
    CHECK_MSG(rc == 0, "the reference run exited %d: %s", rc, tt_err);
    random_kills(sgd, ref_m, ref_e);
    stop_signal(SIGINT, ref_m, ref_e, sgd);
    stop_signal(SIGTERM, ref_m, ref_e, sgd);
    refusals(sgd, other, other_batch);
    divergence(sgd);
    train_command();
    printf("(%.1f s)\n", tt_now() - t0);
    tt_cleanup();
    return test_summary("test_train_resume");
}
