#!/usr/bin/python3
"""make_seeds.py - writes the fuzzer's seed corpus (tests/fuzz/corpus/): small valid models that
between them use every construct the importer maps (attribute kinds, tensor encodings, subgraphs,
functions, sparse tensors, non-tensor types, old IR versions), so mutations start from deep inside
the format. The malformed corpus (tests/malformed/) is the other half of the seeds.
Run with /usr/bin/python3 (needs python3-onnx); the output is committed.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
F = TensorProto.FLOAT


def save(name, graph, opset=17, ir=8, functions=(), extra_opsets=()):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] + list(extra_opsets),
                          functions=list(functions))
    m.ir_version = ir
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(m.SerializeToString())


def vi(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1)

    # an MLP: raw_data and float_data initializers, a symbolic batch dim, value_info
    w1 = numpy_helper.from_array(rng.standard_normal((4, 3), dtype=np.float32), "w1")
    b1 = helper.make_tensor("b1", F, [3], [0.1, 0.2, 0.3])
    g = helper.make_graph([helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc", alpha=1.0, transB=0),
                           helper.make_node("Relu", ["h"], ["y"])],
                          "mlp", [vi("x", ["N", 4])], [vi("y", ["N", 3])], [w1, b1],
                          value_info=[vi("h", ["N", 3])])
    save("mlp.onnx", g)

    # every attribute kind on a custom-domain node
    t = helper.make_tensor("t", F, [2], [1.0, 2.0])
    sub = helper.make_graph([helper.make_node("Neg", ["x"], ["nx"])], "sub", [], [vi("nx", None)])
    sp = helper.make_sparse_tensor(helper.make_tensor("v", F, [1], [5.0]),
                                   helper.make_tensor("i", TensorProto.INT64, [1], [2]), [4])
    node = helper.make_node("Custom", ["x"], ["y"], domain="my.domain", f=1.5, i=3, s=b"a\x00b",
                            t=t, g=sub, floats=[1.0, 2.0], ints=[1, -2], strings=[b"x", b""],
                            tensors=[t, t], graphs=[sub], sparse_tensor=sp, sparse_tensors=[sp],
                            tp=helper.make_tensor_type_proto(F, [2]),
                            tps=[helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.INT64, None))])
    save("attrs.onnx", helper.make_graph([node], "attrs", [vi("x", [2])], [vi("y", None)]),
         extra_opsets=[helper.make_opsetid("my.domain", 1)])

    # control flow: If branches and a Loop body reading outer values, Scan
    then_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [], [vi("t", [2])])
    else_g = helper.make_graph([], "else", [], [vi("x", [2])])
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"]),
                              helper.make_node("Add", ["acc", "r"], ["acc_out"])], "body",
                             [vi("i", [], TensorProto.INT64), vi("c", [], TensorProto.BOOL), vi("acc", [2])],
                             [vi("c_out", [], TensorProto.BOOL), vi("acc_out", [2])])
    scan_body = helper.make_graph([helper.make_node("Add", ["s", "e"], ["s_out"]),
                                   helper.make_node("Identity", ["s_out"], ["e_out"])], "scan",
                                  [vi("s", [2]), vi("e", [2])], [vi("s_out", [2]), vi("e_out", [2])])
    trip = helper.make_tensor("trip", TensorProto.INT64, [], [3])
    g = helper.make_graph([helper.make_node("If", ["cond"], ["r"], then_branch=then_g, else_branch=else_g),
                           helper.make_node("Loop", ["trip", "", "x"], ["final"], body=body),
                           helper.make_node("Scan", ["x", "seq"], ["sum", "scanned"], body=scan_body,
                                            num_scan_inputs=1)],
                          "control", [vi("cond", [], TensorProto.BOOL), vi("x", [2]), vi("seq", [3, 2])],
                          [vi("final", [2]), vi("sum", [2]), vi("scanned", [3, 2])], [trip])
    save("control.onnx", g)

    # model-local functions: attribute references, nested calls
    scale_add = helper.make_function(
        "local", "ScaleAdd", ["x", "b"], ["y"],
        [helper.make_node("Constant", [], ["a"]), helper.make_node("Mul", ["x", "a"], ["t"]), helper.make_node("Add", ["t", "b"], ["y"])],
        [helper.make_opsetid("", 17)], attributes=["alpha"])
    ref = onnx.AttributeProto()
    ref.name, ref.ref_attr_name, ref.type = "value_float", "alpha", onnx.AttributeProto.FLOAT
    scale_add.node[0].attribute.append(ref)
    twice = helper.make_function(
        "local", "Twice", ["x"], ["z"],
        [helper.make_node("ScaleAdd", ["x", "x"], ["h"], domain="local"),
         helper.make_node("ScaleAdd", ["h", "x"], ["z"], domain="local")],
        [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], attributes=["k"])
    for n in twice.node:
        r = onnx.AttributeProto()
        r.name, r.ref_attr_name, r.type = "alpha", "k", onnx.AttributeProto.FLOAT
        n.attribute.append(r)
    g = helper.make_graph([helper.make_node("ScaleAdd", ["x", "x"], ["y1"], domain="local", alpha=2.0),
                           helper.make_node("Twice", ["y1"], ["y2"], domain="local", k=3.0)],
                          "functions", [vi("x", [2])], [vi("y2", [2])])
    save("functions.onnx", g, functions=[scale_add, twice], extra_opsets=[helper.make_opsetid("local", 1)])

    # sparse initializer (2-D indices), Constant forms, strings, every element type in typed fields
    sp2 = helper.make_sparse_tensor(helper.make_tensor("sp", F, [2], [1.0, 2.0]),
                                    helper.make_tensor("spi", TensorProto.INT64, [2, 2], [0, 1, 1, 0]), [2, 2])
    inits = [helper.make_tensor("str", TensorProto.STRING, [2], [b"ab", b"c\x00d"])]
    for name, dt, vals in [("i8", TensorProto.INT8, [-1, 2]), ("u8", TensorProto.UINT8, [0, 255]),
                           ("i16", TensorProto.INT16, [-3, 4]), ("u16", TensorProto.UINT16, [5, 6]),
                           ("i32", TensorProto.INT32, [7, -8]), ("i64", TensorProto.INT64, [9, -10]),
                           ("u32", TensorProto.UINT32, [11, 12]), ("u64", TensorProto.UINT64, [13, 14]),
                           ("b", TensorProto.BOOL, [True, False]), ("f16", TensorProto.FLOAT16, [1.0, 0.5]),
                           ("bf16", TensorProto.BFLOAT16, [1.0, 2.0]), ("f64", TensorProto.DOUBLE, [0.1, 0.2]),
                           ("c64", TensorProto.COMPLEX64, [1 + 2j, 3 - 4j])]:
        inits.append(helper.make_tensor(name, dt, [2], vals))
    consts = [helper.make_node("Constant", [], ["c%d" % i], **{k: v})
              for i, (k, v) in enumerate([("value", helper.make_tensor("v", F, [1], [1.0])), ("value_float", 2.0),
                                          ("value_floats", [1.0, 2.0]), ("value_int", 3), ("value_ints", [4, 5]),
                                          ("value_string", "s"), ("value_strings", ["a", "b"]),
                                          ("sparse_value", sp)])]
    g = helper.make_graph(consts + [helper.make_node("Identity", ["sp"], ["y"])], "data", [],
                          [vi("y", [2, 2])] + [onnx.ValueInfoProto(name="c%d" % i) for i in range(8)], inits)
    g.sparse_initializer.append(sp2)
    save("data.onnx", g)

    # non-tensor types: sequences, optionals, maps
    seq = helper.make_tensor_sequence_value_info("seq", F, None)
    opt = helper.make_value_info("opt", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [2])))
    map_type = onnx.TypeProto()
    map_type.map_type.key_type = TensorProto.INT64
    map_type.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(F, []))
    mp = helper.make_value_info("map", map_type)
    g = helper.make_graph([helper.make_node("SequenceLength", ["seq"], ["n"]),
                           helper.make_node("OptionalHasElement", ["opt"], ["has"])],
                          "types", [seq, opt, mp], [vi("n", [], TensorProto.INT64), vi("has", [], TensorProto.BOOL)])
    save("types.onnx", g)

    # IR 3, opset 8: every initializer is also a graph input
    w = numpy_helper.from_array(rng.standard_normal((1, 1, 3, 3), dtype=np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "old",
                          [vi("x", [1, 1, 4, 4]), vi("w", [1, 1, 3, 3])], [vi("y", [1, 1, 4, 4])], [w])
    save("ir3.onnx", g, opset=8, ir=3)
    # external data in w.bin, the 64-byte file the harness keeps in its data folder
    x = TensorProto()
    x.name, x.data_type, x.data_location = "w", F, TensorProto.EXTERNAL
    x.dims.extend([2, 2])
    for k, v in (("location", "w.bin"), ("offset", "16"), ("length", "16")):
        e = x.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "ext", [], [vi("y", [2, 2])], [x])
    save("external.onnx", g)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
