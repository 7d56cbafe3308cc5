#!/usr/bin/python3
"""make_big_model.py OUTDIR [MB] - writes a large MLP for measuring the importer's time and memory.

OUTDIR/big.onnx holds its weights in raw_data; OUTDIR/big_ext.onnx (+ big_ext.bin) is the same model
with every weight in one external data file. About MB megabytes of float32 weights (default 100),
in 1024x1024 layers. Not committed: write OUTDIR under /tmp.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/onnxtune_big"
    mb = float(sys.argv[2]) if len(sys.argv) > 2 else 100.0
    os.makedirs(out, exist_ok=True)
    width = 1024
    layers = max(1, -(-int(mb * 2**20) // (4 * (width * width + width))))
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        w = rng.standard_normal((width, width), dtype=np.float32) * 0.03
        b = rng.standard_normal(width, dtype=np.float32) * 0.01
        inits += [numpy_helper.from_array(w, "layer%d.weight" % i), numpy_helper.from_array(b, "layer%d.bias" % i)]
        nodes += [helper.make_node("MatMul", [prev, "layer%d.weight" % i], ["mm%d" % i], name="mm%d" % i),
                  helper.make_node("Add", ["mm%d" % i, "layer%d.bias" % i], ["add%d" % i], name="add%d" % i),
                  helper.make_node("Relu", ["add%d" % i], ["h%d" % i], name="relu%d" % i)]
        prev = "h%d" % i
    g = helper.make_graph(nodes, "big_mlp",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", width])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(m, os.path.join(out, "big.onnx"))
    onnx.save_model(m, os.path.join(out, "big_ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="big_ext.bin", size_threshold=0)
    for f in ("big.onnx", "big_ext.onnx", "big_ext.bin"):
        print("%-14s %8.1f MB" % (f, os.path.getsize(os.path.join(out, f)) / 2**20))
    print("%d layers, %d initializers" % (layers, len(inits)))


if __name__ == "__main__":
    main()
