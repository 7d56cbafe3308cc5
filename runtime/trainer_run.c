/* trainer_run.c - the training loop of trainer_main: epochs of shuffled batches, the optimizer steps, the
 * NaN/Inf stop, validation and metrics. The data, parameters and generated functions come ready from
 * trainer.c; this file decides only what runs when. */
#define _POSIX_C_SOURCE 200809L
#include "trainer_priv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int train(Trainer *t, Data *tr, Data *val, Buffers *b, FILE *metrics)
{
    const TrainProgram *p = t->p;
    const Options *o = &t->o;
    size_t batch = (size_t)o->batch, n = tr->n;
    int64_t per_epoch = (int64_t)(o->drop_last ? n / batch : (n + batch - 1) / batch);
    if (per_epoch == 0)
        return tr_fail(t, "--drop-last with %zu training samples and batch %zu leaves no batch", n, batch);
    int64_t total = per_epoch * o->epochs, step = 0;
    bool cross_entropy = p->loss == TRAIN_LOSS_CROSS_ENTROPY, any_buffer = false;
    size_t buffer_bytes = 0;
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].kind == TRAIN_PARAM_BUFFER) {
            any_buffer = true;
            buffer_bytes = p->params[i].offset + p->params[i].nbytes > buffer_bytes
                               ? p->params[i].offset + p->params[i].nbytes : buffer_bytes;
        }
    /* the step updates BatchNormalization running statistics before its loss is known: keep a copy */
    unsigned char *saved = any_buffer ? malloc(buffer_bytes) : NULL;
    size_t *order = malloc(n * sizeof *order);
    if ((any_buffer && !saved) || !order) {
        free(saved);
        free(order);
        return tr_fail(t, "out of memory");
    }
    if (!o->quiet) {
        printf("%s: training %s on %zu samples, batch %zu", t->prog, p->model ? p->model : "the model", n, batch);
        if (n % batch && !o->drop_last)
            printf(" (last %zu)", n % batch);
        printf(", %lld epochs = %lld steps, %s, lr %g%s", (long long)o->epochs, (long long)total,
               tr_optim_name(p->optimizer), o->lr,
               o->schedule == SCHED_COSINE ? " cosine" : o->schedule == SCHED_STEP ? " step" : "");
        if (val->n)
            printf("; validating on %zu", val->n);
        printf("\n");
        fflush(stdout);
    }
    int rc = 0;
    double start = tr_seconds();
    for (int64_t e = 1; e <= o->epochs && !rc; e++) {
        memcpy(order, tr->rows, n * sizeof *order);
        if (o->shuffle)
            tr_shuffle(order, n, ((uint64_t)o->seed << 20) + (uint64_t)e);
        double epoch_loss = 0, t0 = tr_seconds();
        size_t epoch_rows = 0, correct = 0;
        for (int64_t i = 0; i < per_epoch; i++) {
            size_t at = (size_t)i * batch, rows = n - at < batch ? n - at : batch;
            tr_gather(t, b, tr, order + at, rows);
            b->lr = tr_lr_at(o, step, total, per_epoch);
            b->step = ++step;
            b->seed[0] = o->seed;
            b->seed[1] = step;
            if (saved)
                for (int k = 0; k < p->nparams; k++)
                    if (p->params[k].kind == TRAIN_PARAM_BUFFER)
                        memcpy(saved + p->params[k].offset, b->params + p->params[k].offset, p->params[k].nbytes);
            rt_set_batch_rows(rows);
            p->train.run(b->in_train, b->out_train, b->ws_train);
            if (!isfinite(b->loss)) {
                if (saved)
                    for (int k = 0; k < p->nparams; k++)
                        if (p->params[k].kind == TRAIN_PARAM_BUFFER)
                            memcpy(b->params + p->params[k].offset, saved + p->params[k].offset, p->params[k].nbytes);
                tr_fail(t, "the loss is %s at step %lld (epoch %lld, batch %lld of %lld): training stopped; the weights "
                     "after step %lld are kept%s", isnan(b->loss) ? "NaN" : "infinite", (long long)step, (long long)e,
                     (long long)i + 1, (long long)per_epoch, (long long)step - 1,
                     o->export_path ? " and exported" : "");
                rc = 1;
                break;
            }
            p->train.update(b->in_train, b->out_train, b->ws_train);
            epoch_loss += (double)b->loss * (double)rows;
            epoch_rows += rows;
            if (cross_entropy)
                correct += tr_count_correct(t, b, rows);
            if (metrics) {
                char lb[40], rb[40];
                fprintf(metrics, "{\"epoch\":%lld,\"step\":%lld,\"loss\":%s,\"lr\":%s", (long long)e,
                        (long long)step, tr_shortest(lb, sizeof lb, b->loss, true), tr_shortest(rb, sizeof rb, b->lr, false));
                if (p->clipping)    /* the total gradient norm before clipping */
                    fprintf(metrics, ",\"grad_norm\":%s", tr_shortest(lb, sizeof lb, b->grad_norm, true));
                fprintf(metrics, "}\n");
            }
        }
        if (rc)
            break;
        double dt = tr_seconds() - t0;
        if (!o->quiet) {
            printf("epoch %lld/%lld: train loss %.4f", (long long)e, (long long)o->epochs, epoch_loss / (double)epoch_rows);
            if (cross_entropy)
                printf(" accuracy %.4f", (double)correct / (double)epoch_rows);
        }
        if (val->n) {
            EvalResult r = tr_evaluate(t, b, val, batch);
            if (!o->quiet) {
                printf(" | val loss %.4f", r.loss);
                if (cross_entropy)
                    printf(" accuracy %.4f", r.accuracy);
            }
            if (metrics) {
                fprintf(metrics, "{\"epoch\":%lld,\"split\":\"val\",\"loss\":%.9g", (long long)e, r.loss);
                if (cross_entropy)
                    fprintf(metrics, ",\"accuracy\":%.9g", r.accuracy);
                fprintf(metrics, ",\"samples\":%zu}\n", val->n);
            }
        }
        if (!o->quiet) {
            printf(" | %.0f samples/s\n", dt > 0 ? (double)epoch_rows / dt : 0.0);
            fflush(stdout);
        }
        if (metrics)
            fflush(metrics);
    }
    if (!rc && !o->quiet)
        printf("%s: %lld steps in %.1f s\n", t->prog, (long long)step, tr_seconds() - start);
    free(saved);
    free(order);
    return rc;
}

int tr_run(Trainer *t, Data *tr, Data *val, Buffers *b)
{
    const Options *o = &t->o;
    FILE *metrics = NULL;
    if (o->metrics && !(metrics = fopen(o->metrics, "w")))
        return tr_fail(t, "--metrics %s: cannot write: %s", o->metrics, strerror(errno));
    int rc = train(t, tr, val, b, metrics);
    if (metrics && fclose(metrics) != 0 && !rc)
        rc = tr_fail(t, "--metrics %s: write failed", o->metrics);
    /* after a NaN/Inf stop too: the parameters are those of the last good step */
    if (o->export_path) {
        int erc = tr_export_model(t, b->params, o->export_path);
        if (!erc && !o->quiet)
            printf("%s: exported %s\n", t->prog, o->export_path);
        rc = rc ? rc : erc;
    }
    return rc;
}
