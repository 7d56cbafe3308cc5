/* runtime.h - the one public header of onnxtune's runtime: the kernels that generated programs call.
 *
 * Kernels take raw pointers and sizes, never allocate (callers pass any scratch space, sized by the
 * matching *_workspace function), and never fail: codegen has checked shapes at compile time.
 * Tensors are dense, C order. Each banner names the file that implements the kernels below it.
 */
#ifndef ONNXTUNE_RUNTIME_H
#define ONNXTUNE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ======================================================================== runtime/threads.c */

/* Thread count for OpenBLAS and the OpenMP kernels (<= 0: leave the defaults). */
void rt_set_threads(int n);

#endif
