#!/usr/bin/python3
"""make_rt_ref.py - turns a handful of ONNX backend node cases into small .npy files plus a manifest,
so the runtime kernel tests (tests/test_rt_*.c) can check kernels against real ONNX data without the
importer; also writes the NumPy-made fixtures of tests/test_npy.c. It does not run any model.

Run from the repo root:  /usr/bin/python3 tests/ref/make_rt_ref.py [ONNX_NODE_TESTS_DIR]
Output: tests/ref/rt/manifest.txt and tests/ref/rt/<case>/{in<k>,out<k>}.npy, tests/ref/rt/npy/*.npy.

Manifest line: NAME OP inputs=A,,C outputs=Y [attr=value ...]. An empty input name means the optional
input is absent (no in<k>.npy). ints/floats attributes are comma-separated. BFLOAT16 tensors are stored
as their uint16 bits.
"""
import os
import re
import sys

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "ref", "rt")

# Case name patterns (regular expressions matched against the whole directory name).
CASES = [
    r"test_resize_.*", r"test_upsample_nearest",
    r"test_(constant|edge|reflect)_pad",
    r"test_gather_(0|1|2d_indices|negative_indices)", r"test_gather_elements_.*", r"test_gathernd_.*",
    r"test_scatter_elements_.*", r"test_scatternd.*",
    r"test_cast_(FLOAT|DOUBLE|FLOAT16|BFLOAT16)_to_(FLOAT|DOUBLE|FLOAT16|BFLOAT16)",
    r"test_mod_.*", r"test_bitshift_.*", r"test_pow_types_(int32_int32|int64_int64)", r"test_div_uint8",
    r"test_where_(long_)?example", r"test_expand_dim_(changed|unchanged)",
    r"test_(and|or|xor)(2d|_bcast4v3d)", r"test_(equal|less|greater)(_bcast)?", r"test_prelu_.*",
    r"test_(min|max)_(int8|uint8|int64|float64)", r"test_clip(_.*)?", r"test_not_2d",
    r"test_isinf(_negative|_positive)?", r"test_isnan",
    r"test_(abs|neg|reciprocal|floor|ceil|round|sqrt|exp|log|sin|cos|tan|asin|acos|atan|sinh|cosh|asinh"
    r"|acosh|atanh|sign|relu|sigmoid|tanh|softplus|softsign|mish|hardswish)",
    r"test_(leakyrelu|elu|selu|celu|hardsigmoid|thresholdedrelu)(_default)?", r"test_shrink_(hard|soft)",
    r"test_depthtospace_.*", r"test_spacetodepth_example", r"test_tri[lu].*", r"test_cumsum_.*",
    r"test_onehot_.*", r"test_top_k.*", r"test_slice(_neg_steps|_negative_axes|_default_steps)?", r"test_tile_precomputed",
    r"test_transpose_all_permutations_.*", r"test_compress_.*", r"test_range_(float|int32)_type_\w+delta",
    r"test_eyelike_.*", r"test_concat_3d_axis_negative_1", r"test_split_variable_parts_2d",
]


def attr_text(a):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, float):
        return repr(float(np.float32(v)))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return ",".join(repr(float(np.float32(x))) if isinstance(x, float) else str(x) for x in v)
    return None   # tensors and graphs: not needed by these cases


def to_numpy(path):
    t = onnx.load_tensor(path)
    arr = numpy_helper.to_array(t)
    if t.data_type == onnx.TensorProto.BFLOAT16:
        arr = arr.astype(np.uint16)
    return np.ascontiguousarray(arr)


def bfloat16_rne(x):
    """float32 -> bfloat16 bits, round to nearest even (NaN kept quiet)."""
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((b[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def export_case(src, name, lines):
    model = onnx.load(os.path.join(src, name, "model.onnx"))
    node = model.graph.node[0]
    if len(model.graph.node) != 1:
        return
    data = os.path.join(src, name, "test_data_set_0")
    dst = os.path.join(OUT, name)
    os.makedirs(dst, exist_ok=True)
    k_in = 0
    for k, nm in enumerate(node.input):
        if nm:
            np.save(os.path.join(dst, f"in{k}.npy"), to_numpy(os.path.join(data, f"input_{k_in}.pb")))
            k_in += 1
    for k in range(len(node.output)):
        np.save(os.path.join(dst, f"out{k}.npy"), to_numpy(os.path.join(data, f"output_{k}.pb")))
    if name == "test_cast_FLOAT_to_BFLOAT16":
        # ONNX 1.12's expected output truncates; the spec (and ORT) round to nearest even, as we do.
        np.save(os.path.join(dst, "out0_rne.npy"), bfloat16_rne(np.load(os.path.join(dst, "in0.npy"))))
    attrs = []
    for a in node.attribute:
        t = attr_text(a)
        if t is not None:
            assert " " not in t and "=" not in t, (name, a.name, t)
            attrs.append(f"{a.name}={t}")
    ins = ",".join(node.input)
    outs = ",".join(node.output)
    lines.append(" ".join([name, node.op_type, f"inputs={ins}", f"outputs={outs}"] + attrs))


def write_npy_fixtures():
    d = os.path.join(OUT, "npy")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    arrays = {
        "f32_2x3": rng.standard_normal((2, 3)).astype(np.float32),
        "f64_4": rng.standard_normal(4),
        "f16_3x2": rng.standard_normal((3, 2)).astype(np.float16),
        "i8_5": np.array([-128, -1, 0, 1, 127], np.int8),
        "i16_2x2": np.array([[-32768, -2], [3, 32767]], np.int16),
        "i32_3": np.array([-2**31, 0, 2**31 - 1], np.int32),
        "i64_2x1x2": np.array([[[-2**63, -1]], [[0, 2**63 - 1]]], np.int64),
        "u8_2x2": np.array([[0, 1], [254, 255]], np.uint8),
        "u16_3": np.array([0, 1, 65535], np.uint16),
        "u32_2": np.array([0, 2**32 - 1], np.uint32),
        "u64_2": np.array([0, 2**64 - 1], np.uint64),
        "bool_2x3": np.array([[True, False, True], [False, False, True]]),
        "f32_scalar": np.array(3.5, np.float32),
        "f32_empty_0x3": np.zeros((0, 3), np.float32),
        "f32_rank8": np.arange(256, dtype=np.float32).reshape((2,) * 8),
    }
    for stem, a in arrays.items():
        np.save(os.path.join(d, stem + ".npy"), a)
    a = arrays["f32_2x3"]
    for ver in [(2, 0), (3, 0)]:
        with open(os.path.join(d, f"f32_2x3_v{ver[0]}.npy"), "wb") as f:
            np.lib.format.write_array(f, a, version=ver)
    np.save(os.path.join(d, "fortran_2x3.npy"), np.asfortranarray(a))
    np.save(os.path.join(d, "bigendian_f4.npy"), a.astype(">f4"))
    np.save(os.path.join(d, "complex64.npy"), a.astype(np.complex64))
    np.save(os.path.join(d, "rank9.npy"), np.zeros((1,) * 9, np.float32))
    np.save(os.path.join(d, "structured.npy"), np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/onnx-tests/node"
    pats = [re.compile(p + r"\Z") for p in CASES]
    lines = []
    for name in sorted(os.listdir(src)):
        if any(p.match(name) for p in pats):
            export_case(src, name, lines)
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("# made by tests/ref/make_rt_ref.py from the ONNX %s backend node tests\n" % onnx.__version__)
        f.write("\n".join(lines) + "\n")
    write_npy_fixtures()
    print(f"{len(lines)} cases -> {OUT}")


if __name__ == "__main__":
    main()
