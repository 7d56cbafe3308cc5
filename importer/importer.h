/* importer.h - the public face of importer/: ONNX files in, IR out.
 *
 * The importer maps a ModelProto onto the IR (ir/ir.h) and copies nothing it can adopt: tensor
 * bytes move from protobuf-c's buffers into the model's arena. It does not canonicalise or infer
 * shapes: that is ir/pass_canon.c and ir/pass_shapes.c.
 */
#ifndef ONNXTUNE_IMPORTER_H
#define ONNXTUNE_IMPORTER_H

#include "ir.h"

/* ======================================================================== importer/import.c */

/* Read and import an ONNX model file. External data is resolved relative to the model's folder.
 * On failure *out is NULL and d says what and where (file, node, field). */
Status onnx_import_file(const char *path, Model **out, Diag *d) MUST_CHECK;
/* Same from bytes in memory (for the fuzzer and tests); `dir` resolves external data (NULL: refuse it). */
Status onnx_import_bytes(const void *buf, size_t len, const char *dir, Model **out, Diag *d) MUST_CHECK;

/* Read one serialized TensorProto file (the ONNX backend tests' input_K.pb / output_K.pb). */
Status onnx_read_tensor_file(const char *path, Arena *a, Tensor **out, char **name, Diag *d) MUST_CHECK;

#endif
