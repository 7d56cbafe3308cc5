#!/usr/bin/python3
"""make_codegen_models.py - the tiny ONNX models tests/test_codegen.c compiles (tests/codegen/*.onnx):
a 0-d input next to a batched one, an output that does not grow with the batch, and a symbolic dim
that only an example input fixes. Run with /usr/bin/python3 (onnx 1.12); the output is deterministic."""
import os
import onnx
from onnx import helper, TensorProto

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen")


def save(name, nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_codegen_models.py")
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    f = TensorProto.FLOAT
    # y[N,3] = x[N,3] * s[]  (s is a 0-d input shared by every chunk)
    save("scalar_mul", [helper.make_node("Mul", ["x", "s"], ["y"], name="/scale/Mul")],
         [helper.make_tensor_value_info("x", f, ["N", 3]), helper.make_tensor_value_info("s", f, [])],
         [helper.make_tensor_value_info("y", f, ["N", 3])])
    # y[3] = sum over the batch of x[N,3]: cannot run in chunks
    save("batch_sum", [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0, name="/sum/ReduceSum")],
         [helper.make_tensor_value_info("x", f, ["N", 3])], [helper.make_tensor_value_info("y", f, [3])],
         [helper.make_tensor("axes", TensorProto.INT64, [1], [0])])
    # y[N,seq] = relu(x[N,seq]): seq is fixed only by an example input
    save("symbolic_seq", [helper.make_node("Relu", ["x"], ["y"], name="/act/Relu")],
         [helper.make_tensor_value_info("x", f, ["N", "seq"])], [helper.make_tensor_value_info("y", f, ["N", "seq"])])


if __name__ == "__main__":
    main()
