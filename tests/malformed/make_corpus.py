#!/usr/bin/python3
"""make_corpus.py - writes the malformed-model corpus of tests/malformed/ and its EXPECTED list.

Each file is something the importer must refuse with a clear message: bytes that are not ONNX,
truncated or corrupted protobuf, and well-formed models that break ONNX rules. EXPECTED holds
`file<TAB>substring of the error message`; tests/test_import_malformed.c checks both.
Run with /usr/bin/python3 (it needs python3-onnx); the output is committed, so only rerun it to
change the corpus.
"""
import os
import struct
import sys
import zlib

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []  # (file name, expected substring)


def write(name, data, expect):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    cases.append((name, expect))


def model(nodes, inputs, outputs, inits=(), opset=17, ir=8, **kw):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], **kw)
    m.ir_version = ir
    return m


def vi(name, shape=(4,), t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, list(shape) if shape is not None else None)


def raw_tensor(name, dims, nbytes, t=TensorProto.FLOAT):
    x = TensorProto()
    x.name = name
    x.data_type = t
    x.dims.extend(dims)
    x.raw_data = bytes(nbytes)
    return x


def valid_model():
    w = helper.make_tensor("W", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    return model([helper.make_node("Add", ["X", "W"], ["Y"], name="add"),
                  helper.make_node("Relu", ["Y"], ["Z"], name="relu")],
                 [vi("X")], [vi("Z")], [w])


def field_offset(buf, field):
    """Byte offset of the first top-level field `field` (tag start) and its payload bounds."""
    p = 0
    while p < len(buf):
        start = p
        tag, p = varint(buf, p)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            _, p = varint(buf, p)
        elif wt == 2:
            n, p = varint(buf, p)
            if num == field:
                return start, p, p + n
            p += n
        elif wt == 1:
            p += 8
        elif wt == 5:
            p += 4
        else:
            raise ValueError("unexpected wire type")
    raise ValueError("field not found")


def varint(buf, p):
    v, shift = 0, 0
    while True:
        b = buf[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, p


def png():
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def main():
    for name in os.listdir(HERE):
        if name not in ("make_corpus.py",):
            os.remove(os.path.join(HERE, name))

    # --- not ONNX at all
    write("empty.onnx", b"", "empty file")
    write("text.onnx", b"This is a text file, not an ONNX model.\nIt has two lines.\n", "not an ONNX model")
    write("image.png", png(), "not an ONNX model")
    write("zeros.onnx", bytes(64), "not an ONNX model")
    write("tensor_not_model.onnx", helper.make_tensor("t", TensorProto.FLOAT, [2], [1.0, 2.0]).SerializeToString(),
          "not an ONNX model")

    # --- truncated and corrupted protobuf
    good = valid_model().SerializeToString()
    gstart, gpay, gend = field_offset(good, 7)
    for k, cut in enumerate([gpay + 1, (gpay + gend) // 2, gend - 1]):
        write("truncated_%d.onnx" % k, good[:cut], "truncated or corrupt field")
    bad = bytearray(good)
    bad[gstart] = (7 << 3) | 7  # graph tag with wire type 7, which does not exist
    write("bad_wire_type.onnx", bytes(bad), "not a valid protobuf")
    bad = bytearray(good)
    bad[gstart + 1] = (bad[gstart + 1] + 100) & 0x7F  # graph length past the end (one-byte varint)
    write("bad_length.onnx", bytes(bad), "truncated or corrupt field")
    bad = bytearray(good)
    for i in range(gpay, gpay + 4):  # the graph's first field header smashed
        bad[i] = 0xFF
    write("flipped_bytes.onnx", bytes(bad), "truncated or corrupt field")

    # --- well-formed protobuf, broken model
    m = onnx.ModelProto()
    m.ir_version = 8
    m.opset_import.add().version = 17
    write("no_graph.onnx", m.SerializeToString(), "ModelProto.graph is missing")
    m = valid_model()
    m.ClearField("ir_version")
    write("no_ir_version.onnx", m.SerializeToString(), "ir_version is missing")
    m = valid_model()
    m.ir_version = 2
    m.ClearField("opset_import")
    write("ir2_no_opset.onnx", m.SerializeToString(), "without opset_import")
    m = valid_model()
    m.opset_import[0].domain = "com.example"
    write("no_default_opset.onnx", m.SerializeToString(), "no version for the default domain")

    write("cycle.onnx", model([helper.make_node("Add", ["X", "B"], ["A"], name="first"),
                               helper.make_node("Relu", ["A"], ["B"], name="second")],
                              [vi("X")], [vi("B")]).SerializeToString(), "has a cycle")
    write("self_loop.onnx", model([helper.make_node("Add", ["X", "A"], ["A"], name="self")],
                                  [vi("X")], [vi("A")]).SerializeToString(), "has a cycle")
    write("duplicate_name.onnx", model([helper.make_node("Relu", ["X"], ["A"], name="one"),
                                        helper.make_node("Neg", ["X"], ["A"], name="two")],
                                       [vi("X")], [vi("A")]).SerializeToString(),
          "value 'A' is defined twice")
    write("duplicate_input.onnx", model([helper.make_node("Relu", ["X"], ["A"])],
                                        [vi("X"), vi("X")], [vi("A")]).SerializeToString(),
          "graph input 'X': value 'X' is defined twice")
    write("undefined_input.onnx", model([helper.make_node("Add", ["X", "ghost"], ["A"], name="add")],
                                        [vi("X")], [vi("A")]).SerializeToString(),
          "input 1 'ghost' is not defined")
    write("output_not_computed.onnx", model([helper.make_node("Relu", ["X"], ["A"])],
                                            [vi("X")], [vi("Q")]).SerializeToString(),
          "'Q' is not computed")
    write("empty_op_type.onnx", model([helper.make_node("", ["X"], ["A"], name="nop")],
                                      [vi("X")], [vi("A")]).SerializeToString(), "op_type is empty")

    # --- tensors
    def init_model(t):
        return model([helper.make_node("Identity", [t.name], ["out"])], [], [vi("out", None)], [t])
    write("overflow_dim.onnx", init_model(raw_tensor("huge", [1 << 40, 1 << 40], 4)).SerializeToString(),
          "initializer 'huge': dims overflow")
    write("overflow_bytes.onnx", init_model(raw_tensor("huge", [1 << 62], 4)).SerializeToString(),
          "initializer 'huge': dims overflow")
    write("negative_dim.onnx", init_model(raw_tensor("neg", [-1, 4], 16)).SerializeToString(),
          "initializer 'neg': dims[0] is negative")
    write("rank9_initializer.onnx", init_model(raw_tensor("r9", [1] * 9, 4)).SerializeToString(),
          "more than the IR's limit of 8")
    write("rank9_input.onnx", model([helper.make_node("Relu", ["X"], ["A"])], [vi("X", [1] * 9)],
                                    [vi("A", None)]).SerializeToString(), "graph input 'X': shape has rank 9")
    write("raw_size_mismatch.onnx", init_model(raw_tensor("w", [4], 15)).SerializeToString(),
          "initializer 'w': raw_data has 15 bytes, expected 16")
    t = helper.make_tensor("w", TensorProto.FLOAT, [5], [1.0, 2.0, 3.0, 4.0, 5.0])
    t.dims[0] = 4
    write("float_data_mismatch.onnx", init_model(t).SerializeToString(),
          "initializer 'w': float_data has 5 values, expected 4")
    t = raw_tensor("w", [4], 16)
    t.data_type = 99
    write("unknown_dtype.onnx", init_model(t).SerializeToString(), "data_type 99")
    t = raw_tensor("w", [4], 16)
    t.data_type = 0
    write("undefined_dtype.onnx", init_model(t).SerializeToString(), "data_type is missing")
    t = raw_tensor("", [4], 16)
    write("unnamed_initializer.onnx", model([], [], [], [t]).SerializeToString(), "initializer 0 has no name")

    # --- external data (ext_data.bin holds 16 bytes)
    with open(os.path.join(HERE, "ext_data.bin"), "wb") as f:
        f.write(bytes(range(16)))

    def ext(location, offset=None, length=None, dims=(4,)):
        x = TensorProto()
        x.name = "w_ext"
        x.data_type = TensorProto.FLOAT
        x.dims.extend(dims)
        x.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            if v is not None:
                e = x.external_data.add()
                e.key, e.value = k, v
        return init_model(x).SerializeToString()
    write("ext_absolute.onnx", ext("/etc/passwd"), "initializer 'w_ext': external_data location '/etc/passwd' is an absolute path")
    write("ext_escape.onnx", ext("../malformed/../../CMakeLists.txt"), "outside the model's folder")
    write("ext_missing.onnx", ext("no_such_file.bin"), "location 'no_such_file.bin': cannot open")
    write("ext_past_end.onnx", ext("ext_data.bin", offset="8"), "offset 8 + length 16 is past the end")
    write("ext_offset_past_end.onnx", ext("ext_data.bin", offset="17"), "offset 17 is past the end")
    write("ext_bad_offset.onnx", ext("ext_data.bin", offset="-1"), "offset '-1' is not a non-negative integer")
    write("ext_length_mismatch.onnx", ext("ext_data.bin", length="12"), "length 12 does not match")

    # --- nesting and functions
    inner = helper.make_graph([], "leaf", [], [])
    for _ in range(40):
        inner = helper.make_graph([helper.make_node("If", ["c"], [], then_branch=inner)],
                                  "nest", [], [])
    m = helper.make_model(inner, opset_imports=[helper.make_opsetid("", 17)])
    write("deep_nesting.onnx", m.SerializeToString(), "nested more than")

    f = helper.make_function("local", "Loop1", ["x"], ["y"],
                             [helper.make_node("Loop1", ["x"], ["y"], domain="local")],
                             [helper.make_opsetid("", 17)])
    m = model([helper.make_node("Loop1", ["X"], ["Y"], domain="local", name="call")], [vi("X")], [vi("Y")])
    m.opset_import.add().domain = "local"
    m.opset_import[-1].version = 1
    m.functions.append(f)
    write("recursive_function.onnx", m.SerializeToString(), "function 'Loop1' calls itself")

    with open(os.path.join(HERE, "EXPECTED"), "w") as f:
        f.write("# file<TAB>substring of the importer's error message (made by make_corpus.py)\n")
        for name, expect in cases:
            f.write("%s\t%s\n" % (name, expect))
    print("wrote %d cases to %s" % (len(cases), HERE))


if __name__ == "__main__":
    sys.exit(main())
