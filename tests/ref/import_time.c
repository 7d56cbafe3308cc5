/* import_time.c - imports ONNX files and prints the wall time of each import (for
 * tests/ref/bench_import.sh, which also reads the peak RSS). Not a test: it checks nothing.
 */
#include "importer.h"

#include <time.h>

int main(int argc, char **argv)
{
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct timespec t0, t1;
        Diag d;
        Model *m;
        diag_init(&d, argv[i]);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        Status st = onnx_import_file(argv[i], &m, &d);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (st) {
            diag_print(&d, stderr);
            status = 1;
            continue;
        }
        size_t bytes = 0;
        for (size_t k = 0; k < m->graph->nvalues; k++)
            if (m->graph->values[k]->init)
                bytes += m->graph->values[k]->init->nbytes;
        printf("%s: %.3f s, %zu nodes, %.1f MB of weights\n", argv[i],
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
               m->graph->nnodes, (double)bytes / (1 << 20));
        model_free(m);
    }
    return status;
}
