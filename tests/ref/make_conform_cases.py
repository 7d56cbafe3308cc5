#!/usr/bin/python3
"""make_conform_cases.py - a few ONNX backend-style test cases (model.onnx + test_data_set_*/) for
tests/test_codegen_conform.c, written to tests/conform_cases/: two data sets of different shapes,
a shape input whose values differ per data set, exact integer outputs, an expected output that is
deliberately wrong (must FAIL), an unknown op (must be UNSUPPORTED), Gelu-20, which the ONNX 1.12
backend data predates, and sequences and optionals where the ONNX data has no case (Optional, positions
only known at run time, SplitToSequence with a scalar split, a sequence input and output, a sequence
carried through a run-time Loop). Deterministic; run with /usr/bin/python3 (onnx 1.12, numpy)."""
import math
import os
import shutil
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conform_cases")


def case(name, nodes, inputs, outputs, sets, check=True, opset=13):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    g = helper.make_graph(nodes, name, inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_conform_cases.py")
    if check:
        onnx.checker.check_model(m)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for k, (ins, outs) in enumerate(sets):
        sd = os.path.join(d, "test_data_set_%d" % k)
        os.makedirs(sd, exist_ok=True)
        for i, (n, a) in enumerate(ins):
            open(os.path.join(sd, "input_%d.pb" % i), "wb").write(proto(a, n).SerializeToString())
        for i, (n, a) in enumerate(outs):
            open(os.path.join(sd, "output_%d.pb" % i), "wb").write(proto(a, n).SerializeToString())


def proto(a, name):
    """A TensorProto, or for a list a SequenceProto of its arrays."""
    return numpy_helper.from_list(a, name) if isinstance(a, list) else numpy_helper.from_array(a, name)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rng = np.random.default_rng(7)
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    vi = helper.make_tensor_value_info

    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    case("relu_two_sets", [helper.make_node("Relu", ["x"], ["y"])], [vi("x", f, ["N", 3])], [vi("y", f, ["N", 3])],
         [([("x", a)], [("y", np.maximum(a, 0))]), ([("x", b)], [("y", np.maximum(b, 0))])])

    x = np.arange(6, dtype=np.float32)
    case("reshape_by_input", [helper.make_node("Reshape", ["x", "shape"], ["y"])],
         [vi("x", f, [6]), vi("shape", i64, [2])], [vi("y", f, ["a", "b"])],
         [([("x", x), ("shape", np.array([3, 2], np.int64))], [("y", x.reshape(3, 2))]),
          ([("x", x + 1), ("shape", np.array([2, 3], np.int64))], [("y", (x + 1).reshape(2, 3))])])

    p = np.array([[3, -4], [1 << 40, 7]], np.int64)
    q = np.array([5, -(1 << 20)], np.int64)
    case("int64_mul", [helper.make_node("Mul", ["p", "q"], ["r"])], [vi("p", i64, [2, 2]), vi("q", i64, [2])],
         [vi("r", i64, [2, 2])], [([("p", p), ("q", q)], [("r", p * q)])])

    u = rng.standard_normal((3,)).astype(np.float32)
    v = rng.standard_normal((3,)).astype(np.float32)
    case("wrong_output", [helper.make_node("Add", ["u", "v"], ["w"])], [vi("u", f, [3]), vi("v", f, [3])],
         [vi("w", f, [3])], [([("u", u), ("v", v)], [("w", u + v + 1)])])

    case("unknown_op", [helper.make_node("NoSuchOp", ["x"], ["y"])], [vi("x", f, [2])], [vi("y", f, [2])],
         [([("x", np.ones(2, np.float32))], [("y", np.ones(2, np.float32))])], check=False)

    # Gelu-20 (newer than onnx 1.12, so unchecked), both forms of torch.nn.GELU, in float64 from the float32 input
    g = np.linspace(-4, 4, 24).astype(np.float32).reshape(2, 12)
    gd = g.astype(np.float64)
    erf = np.vectorize(math.erf)
    case("gelu", [helper.make_node("Gelu", ["x"], ["y"])], [vi("x", f, [2, 12])], [vi("y", f, [2, 12])],
         [([("x", g)], [("y", (0.5 * gd * (1 + erf(gd / math.sqrt(2)))).astype(np.float32))])],
         check=False, opset=20)
    k = math.sqrt(2 / math.pi)
    case("gelu_tanh", [helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")], [vi("x", f, [2, 12])],
         [vi("y", f, [2, 12])],
         [([("x", g)], [("y", (0.5 * gd * (1 + np.tanh(k * (gd + 0.044715 * gd ** 3)))).astype(np.float32))])],
         check=False, opset=20)

    sequences(rng)

    # SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss in float64 (the ONNX 1.12 data has float32 only),
    # int64 and int32 labels, references in float64 (F.cross_entropy / F.nll_loss semantics)
    d, i32 = TensorProto.DOUBLE, TensorProto.INT32
    sx = rng.standard_normal((3, 4, 2))
    sy = np.array([[0, 3], [-1, 2], [1, -1]], np.int64)
    sw = np.array([1.0, 0.5, 2.0, 1.5])
    lse = np.log(np.exp(sx).sum(axis=1, keepdims=True))
    lp = sx - lse
    keep = sy != -1
    pick = np.take_along_axis(lp, np.where(keep, sy, 0)[:, None, :], axis=1)[:, 0, :]
    wt = np.where(keep, sw[np.where(keep, sy, 0)], 0)
    case("sce_double", [helper.make_node("SoftmaxCrossEntropyLoss", ["x", "y", "w"], ["z", "log_prob"],
                                         ignore_index=-1)],
         [vi("x", d, [3, 4, 2]), vi("y", i64, [3, 2]), vi("w", d, [4])], [vi("z", d, []), vi("log_prob", d, [3, 4, 2])],
         [([("x", sx), ("y", sy), ("w", sw)], [("z", np.array(-(wt * pick).sum() / wt.sum())), ("log_prob", lp)])])
    ny = np.array([[3, 0], [2, 2], [1, 0]], np.int32)
    npick = np.take_along_axis(sx, ny[:, None, :].astype(np.int64), axis=1)[:, 0, :]
    case("nll_double_int32", [helper.make_node("NegativeLogLikelihoodLoss", ["x", "y"], ["z"], reduction="sum")],
         [vi("x", d, [3, 4, 2]), vi("y", i32, [3, 2])], [vi("z", d, [])],
         [([("x", sx), ("y", ny)], [("z", np.array(-npick.sum()))])])


def sequences(rng):
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    vi, node = helper.make_tensor_value_info, helper.make_node
    seq_vi = helper.make_tensor_sequence_value_info

    # a sequence carried through a Loop run at run time (trip count an input, beyond unrolling): element 0
    # gains the iteration number and element 1 of the initial sequence (read from outside the body) each
    # time, element 1 passes through
    seq_tp = helper.make_sequence_type_proto(helper.make_tensor_type_proto(f, [2]))
    zero = numpy_helper.from_array(np.array(0, np.int64))
    body = helper.make_graph([
        node("Cast", ["i"], ["fi"], to=f), node("Constant", [], ["zero"], value=zero),
        node("SequenceAt", ["s_in", "zero"], ["e0"]), node("Add", ["e0", "fi"], ["e0i"]),
        node("Constant", [], ["one"], value=numpy_helper.from_array(np.array(1, np.int64))),
        node("SequenceAt", ["s0", "one"], ["outer"]), node("Add", ["e0i", "outer"], ["e0n"]),
        node("SequenceErase", ["s_in", "zero"], ["s1"]), node("SequenceInsert", ["s1", "e0n", "zero"], ["s_out"]),
        node("Identity", ["c"], ["c_out"])], "body",
        [vi("i", i64, []), vi("c", TensorProto.BOOL, []), helper.make_value_info("s_in", seq_tp)],
        [vi("c_out", TensorProto.BOOL, []), helper.make_value_info("s_out", seq_tp)])
    own = np.random.default_rng(12)  # its own, so the cases after it keep their data
    a, b, trips = own.standard_normal(2).astype(np.float32), own.standard_normal(2).astype(np.float32), 70
    y = (a.astype(np.float64) + trips * (trips - 1) / 2 + trips * b.astype(np.float64)).astype(np.float32)
    case("loop_carried_sequence",
         [node("SequenceConstruct", ["a", "b"], ["s0"]), node("Loop", ["M", "", "s0"], ["sf"], body=body),
          node("Constant", [], ["zero"], value=zero), node("SequenceAt", ["sf", "zero"], ["y"]),
          node("ConcatFromSequence", ["sf"], ["z"], axis=0)],
         [vi("M", i64, []), vi("a", f, [2]), vi("b", f, [2])], [vi("y", f, [2]), vi("z", f, [4])],
         [([("M", np.array(trips, np.int64)), ("a", a), ("b", b)], [("y", y), ("z", np.concatenate([y, b]))])],
         opset=16)

    # Optional(x) -> OptionalGetElement, OptionalHasElement on it (true) and on an empty Optional (false)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    case("optional", [node("Optional", ["x"], ["ox"]), node("OptionalGetElement", ["ox"], ["gx"]),
                      node("Relu", ["gx"], ["y"]), node("OptionalHasElement", ["ox"], ["has"]),
                      node("Optional", [], ["none"], type=helper.make_tensor_type_proto(f, None)),
                      node("OptionalHasElement", ["none"], ["has_none"])],
         [vi("x", f, [2, 3])], [vi("y", f, [2, 3]), vi("has", TensorProto.BOOL, []),
                                vi("has_none", TensorProto.BOOL, [])],
         [([("x", x)], [("y", np.maximum(x, 0)), ("has", np.array(True)), ("has_none", np.array(False))])],
         opset=16)

    # positions known only at run time (one element shape), two data sets with other positions (negative
    # too) sharing one compiled form; a sequence input and output
    def run(elems, t, ins, era, at):
        s = list(elems)
        s.insert(ins if ins >= 0 else ins + len(s), t)
        del s[era]
        return s, s[at], np.concatenate(s, axis=1)
    elems = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    t = rng.standard_normal((2, 3)).astype(np.float32)
    sets = []
    for ins, era, at in ((1, 0, -1), (-3, 2, 1)):
        s, e, c = run(elems, t, ins, era, at)
        sets.append(([("seq", elems), ("t", t), ("ins", np.array(ins, np.int64)), ("era", np.array(era, np.int64)),
                      ("at", np.array(at, np.int64))], [("out", s), ("e", e), ("c", c)]))
    case("sequence_positions", [node("SequenceInsert", ["seq", "t", "ins"], ["s1"]),
                                node("SequenceErase", ["s1", "era"], ["out"]),
                                node("SequenceAt", ["out", "at"], ["e"]),
                                node("ConcatFromSequence", ["out"], ["c"], axis=1)],
         [seq_vi("seq", f, [2, 3]), vi("t", f, [2, 3]), vi("ins", i64, []), vi("era", i64, []),
          vi("at", i64, [])], [seq_vi("out", f, [2, 3]), vi("e", f, [2, 3]), vi("c", f, [2, 9])], sets)

    # SplitToSequence with a scalar split (the last piece smaller), stacked back with new_axis
    x = rng.standard_normal((5, 2)).astype(np.float32)
    pieces = [x[0:2], x[2:4], x[4:5]]
    case("split_to_sequence_scalar",
         [node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2, np.int64))),
          node("SplitToSequence", ["x", "two"], ["s"]), node("SequenceLength", ["s"], ["n"]),
          node("SequenceAt", ["s", "last"], ["tail"]),
          node("SplitToSequence", ["x"], ["rows"], axis=0, keepdims=0),
          node("ConcatFromSequence", ["rows"], ["stacked"], axis=1, new_axis=1)],
         [vi("x", f, [5, 2]), vi("last", i64, [])],
         [seq_vi("s", f, [None, 2]), vi("n", i64, []), vi("tail", f, [1, 2]), vi("stacked", f, [2, 5])],
         [([("x", x), ("last", np.array(-1, np.int64))],
           [("s", pieces), ("n", np.array(3, np.int64)), ("tail", pieces[-1]), ("stacked", x.T)])])


if __name__ == "__main__":
    main()
