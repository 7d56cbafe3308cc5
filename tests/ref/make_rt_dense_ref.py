#!/usr/bin/python3
"""make_rt_dense_ref.py - reference data for the dense runtime kernels (tests/test_rt_dense.c).

1. PyTorch: tests/ref/rt_dense/<case>.<tensor>.npy, float32 or int64 arrays in ONNX layouts (weights
   reordered to ONNX gate orders, MaxPool indices flattened over N*C*spatial). Every case has a
   <case>.params.npy (int64) whose fields the test reads in the order written here.
2. ONNX backend node cases of the dense ops: tests/ref/rt_dense/onnx/manifest.txt plus
   <case>/{in<k>,out<k>}.npy, in the manifest format of tests/ref/make_rt_ref.py
   ("NAME OP inputs=a,,c outputs=y,z attr=v ..."; an empty name is an absent optional tensor).
   float64 tensors (the ReduceLogSumExp cases) are stored as float32: the kernels are float32.
Run from anywhere with /usr/bin/python3 (Debian's torch and onnx); the outputs are committed.
Usage: make_rt_dense_ref.py [ONNX_NODE_TESTS_DIR]
"""
import os
import re
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rt_dense")
ONNX_OUT = os.path.join(OUT, "onnx")

# ONNX node cases (whole directory names) checked by test_rt_dense. The pooling cases on 32x32 and
# 32^3 inputs are left out for size; the 5x5 "precomputed" ones cover the same attributes.
ONNX_CASES = [
    r"test_gemm_.*", r"test_matmul_[234]d", r"test_basic_conv_.*", r"test_conv_with_.*",
    r"test_convtranspose(_.*)?", r"test_averagepool_(1d_default|2d_ceil|2d_precomputed_.*)",
    r"test_maxpool_(1d_default|2d_ceil|2d_dilations|2d_precomputed_.*|2d_same_lower|with_argmax_.*)",
    r"test_global(average|max)pool(_precomputed)?", r"test_batchnorm_(epsilon|example)",
    r"test_instancenorm_.*", r"test_layer_normalization_.*(?<!expanded)", r"test_lrn(_default)?",
    r"test_(log)?softmax_(?!.*expanded).*", r"test_hardmax_.*", r"test_reduce_.*(?<!expanded)",
    r"test_arg(max|min)_.*", r"test_(lstm|gru|simple_rnn|rnn)_.*",
]
torch.manual_seed(1234)
torch.set_num_threads(1)


def save(case, name, t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    assert a.dtype in (np.float32, np.int64), a.dtype
    np.save(os.path.join(OUT, f"{case}.{name}.npy"), np.ascontiguousarray(a))


def rnd(*shape):
    return torch.rand(*shape) * 2 - 1


def pad_input(x, pb, pe, value=0.0):
    """F.pad wants the last dim first: (last_begin, last_end, ...)."""
    spec = []
    for b, e in zip(reversed(pb), reversed(pe)):
        spec += [b, e]
    return F.pad(x, spec, value=value)


def conv_case(case, x_shape, c_out, kernel, group, stride, pb, pe, dil, bias=True):
    nd = len(kernel)
    x = rnd(*x_shape)
    w = rnd(c_out, x_shape[1] // group, *kernel) * 0.5
    b = rnd(c_out) if bias else None
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    y = fn(pad_input(x, pb, pe), w, b, stride=stride, dilation=dil, groups=group)
    save(case, "x", x)
    save(case, "w", w)
    if bias:
        save(case, "b", b)
    save(case, "y", y)
    save(case, "params", np.array([nd, group, *kernel, *stride, *dil, *pb, *pe], np.int64))


def conv_transpose_case(case, x_shape, c_out, kernel, group, stride, pad, out_pad, dil):
    nd = len(kernel)
    x = rnd(*x_shape)
    w = rnd(x_shape[1], c_out // group, *kernel) * 0.5
    b = rnd(c_out)
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    y = fn(x, w, b, stride=stride, padding=pad, output_padding=out_pad, groups=group, dilation=dil)
    save(case, "x", x)
    save(case, "w", w)
    save(case, "b", b)
    save(case, "y", y)
    # Y's spatial shape already includes output_padding; the kernel only needs the begin pads.
    save(case, "params", np.array([nd, group, *kernel, *stride, *dil, *pad, *pad], np.int64))


def maxpool_case(case, x_shape, kernel, stride, pad, dil, ceil):
    nd = len(kernel)
    x = rnd(*x_shape)
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
    y, idx = fn(x, kernel, stride, pad, dil, ceil_mode=ceil, return_indices=True)
    n, c = x_shape[:2]
    plane = int(np.prod(x_shape[2:]))
    offs = (torch.arange(n * c).reshape([n, c] + [1] * nd)) * plane
    save(case, "x", x)
    save(case, "y", y)
    save(case, "indices", (idx + offs).to(torch.int64))
    save(case, "params", np.array([nd, 0, *kernel, *stride, *dil, *pad, *pad], np.int64))


def avgpool_case(case, x_shape, kernel, stride, pad, ceil, include_pad):
    nd = len(kernel)
    x = rnd(*x_shape)
    fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    y = fn(x, kernel, stride, pad, ceil_mode=ceil, count_include_pad=include_pad)
    save(case, "x", x)
    save(case, "y", y)
    save(case, "params", np.array([nd, int(include_pad), *kernel, *stride, *([1] * nd), *pad, *pad],
                                  np.int64))


def lppool_case(case, x_shape, kernel, stride, p):
    nd = len(kernel)
    x = rnd(*x_shape).abs()  # torch's LPPool does not take |x|; ONNX does
    fn = {1: F.lp_pool1d, 2: F.lp_pool2d}[nd]
    y = fn(x, p, kernel[0], stride[0]) if nd == 1 else fn(x, p, kernel, stride)
    save(case, "x", x)
    save(case, "y", y)
    save(case, "params", np.array([nd, p, *kernel, *stride, *([1] * nd), *([0] * nd), *([0] * nd)],
                                  np.int64))


def onnx_gates(t, order, hidden):
    """Reorder the gate blocks of dim 0 (PyTorch order) into ONNX order given as block indices."""
    blocks = t.split(hidden, dim=0)
    return torch.cat([blocks[i] for i in order], dim=0)


def rnn_family_case(case, kind, seq, batch, inp, hidden, lens, bidir, with_init):
    D = 2 if bidir else 1
    mod = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](
        inp, hidden, bidirectional=bidir)
    # ONNX order from PyTorch order: LSTM ifgo -> iofc, GRU rzn -> zrh, RNN as is.
    order = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}[kind]
    x = rnd(seq, batch, inp)
    h0 = rnd(D, batch, hidden) if with_init else torch.zeros(D, batch, hidden)
    c0 = rnd(D, batch, hidden) if with_init else torch.zeros(D, batch, hidden)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lens), enforce_sorted=False)
    with torch.no_grad():
        if kind == "lstm":
            out, (hn, cn) = mod(packed, (h0, c0))
        else:
            out, hn = mod(packed, h0)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=seq)  # [seq, batch, D*H]
    y = y.reshape(seq, batch, D, hidden).permute(0, 2, 1, 3)              # ONNX [seq, D, batch, H]
    ws, rs, bs = [], [], []
    for sfx in ["", "_reverse"][:D]:
        ws.append(onnx_gates(getattr(mod, "weight_ih_l0" + sfx), order, hidden))
        rs.append(onnx_gates(getattr(mod, "weight_hh_l0" + sfx), order, hidden))
        bs.append(torch.cat([onnx_gates(getattr(mod, "bias_ih_l0" + sfx), order, hidden),
                             onnx_gates(getattr(mod, "bias_hh_l0" + sfx), order, hidden)]))
    save(case, "x", x)
    save(case, "w", torch.stack(ws))
    save(case, "r", torch.stack(rs))
    save(case, "b", torch.stack(bs))
    save(case, "initial_h", h0)
    if kind == "lstm":
        save(case, "initial_c", c0)
        save(case, "y_c", cn)
    save(case, "y", y)
    save(case, "y_h", hn)
    save(case, "sequence_lens", np.array(lens, np.int64))
    save(case, "params", np.array([D], np.int64))


def norm_cases():
    x = rnd(2, 5, 4, 3)
    scale, bias, mean, var = rnd(5), rnd(5), rnd(5), torch.rand(5) + 0.1
    save("batchnorm", "x", x)
    for name, t in [("scale", scale), ("bias", bias), ("mean", mean), ("var", var)]:
        save("batchnorm", name, t)
    save("batchnorm", "y", F.batch_norm(x, mean, var, scale, bias, training=False, eps=1e-3))
    save("batchnorm", "params", np.array([1000], np.int64))  # epsilon * 1e6

    x = rnd(3, 4, 7, 5) * 3 + 1
    save("instancenorm", "x", x)
    save("instancenorm", "scale", scale[:4])
    save("instancenorm", "bias", bias[:4])
    save("instancenorm", "y", F.instance_norm(x, weight=scale[:4], bias=bias[:4], eps=1e-5))
    save("instancenorm", "params", np.array([10], np.int64))

    x = rnd(3, 4, 10) * 2 + 0.5
    g, b = rnd(4, 10), rnd(4, 10)
    y = F.layer_norm(x, (4, 10), g, b, eps=1e-5)
    xd = x.double().reshape(3, 40)
    save("layernorm", "x", x)
    save("layernorm", "scale", g)
    save("layernorm", "bias", b)
    save("layernorm", "y", y)
    save("layernorm", "mean", xd.mean(1))
    save("layernorm", "inv_std_dev", 1 / torch.sqrt(xd.var(1, unbiased=False) + 1e-5))
    save("layernorm", "params", np.array([10], np.int64))

    x = rnd(2, 7, 3, 4)
    save("lrn", "x", x)
    save("lrn", "y", F.local_response_norm(x, 5, alpha=1e-2, beta=0.75, k=2.0))
    save("lrn", "params", np.array([5], np.int64))  # size; alpha 1e-2, beta 0.75, bias 2 fixed


def attr_text(a):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, float):
        return repr(float(np.float32(v)))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return ",".join(repr(float(np.float32(x))) if isinstance(x, float)
                        else x.decode() if isinstance(x, bytes) else str(x) for x in v)
    raise ValueError(f"attribute {a.name}: unsupported type")


def export_onnx_cases(src):
    pats = [re.compile(p + r"\Z") for p in ONNX_CASES]
    lines = []
    for name in sorted(os.listdir(src)):
        if not any(p.match(name) for p in pats):
            continue
        model = onnx.load(os.path.join(src, name, "model.onnx"))
        node = model.graph.node[0]
        if len(model.graph.node) != 1:
            continue
        d = os.path.join(ONNX_OUT, name)
        os.makedirs(d, exist_ok=True)
        data = os.path.join(src, name, "test_data_set_0")
        # The test data sets list the present inputs/outputs in order; absent ones have empty names.
        k_in = 0
        for k, nm in enumerate(node.input):
            if nm:
                t = numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"input_{k_in}.pb")))
                t = t.astype(np.float32) if t.dtype == np.float64 else t
                np.save(os.path.join(d, f"in{k}.npy"), t)
                k_in += 1
        k_out = 0
        for k, nm in enumerate(node.output):
            if nm:
                t = numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"output_{k_out}.pb")))
                t = t.astype(np.float32) if t.dtype == np.float64 else t
                np.save(os.path.join(d, f"out{k}.npy"), t)
                k_out += 1
        attrs = " ".join(f"{a.name}={attr_text(a)}" for a in node.attribute)
        lines.append(f"{name} {node.op_type} inputs={','.join(node.input)} outputs={','.join(node.output)}"
                     + (" " + attrs if attrs else ""))
    with open(os.path.join(ONNX_OUT, "manifest.txt"), "w") as f:
        f.write(f"# made by tests/ref/make_rt_dense_ref.py from the ONNX {onnx.__version__} backend node tests\n")
        f.write("\n".join(lines) + "\n")
    return len(lines)


def main():
    import shutil
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npy"):
            os.remove(os.path.join(OUT, f))
    shutil.rmtree(ONNX_OUT, ignore_errors=True)
    os.makedirs(ONNX_OUT)
    src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/onnx-tests/node"
    print(f"{export_onnx_cases(src)} ONNX node cases from {src}")
    conv_case("conv1d", (2, 4, 15), 6, [3], 2, [2], [1], [2], [2])
    conv_case("conv2d", (1, 6, 9, 8), 4, [3, 3], 2, [2, 1], [1, 0], [2, 1], [1, 1])
    conv_case("conv2d_dilated", (2, 3, 11, 10), 5, [3, 2], 1, [1, 2], [2, 1], [2, 1], [2, 3], False)
    conv_case("conv2d_depthwise", (2, 8, 10, 10), 8, [3, 3], 8, [2, 2], [1, 1], [1, 1], [1, 1])
    conv_case("conv2d_depthwise_mult", (1, 4, 9, 7), 8, [3, 3], 4, [1, 1], [1, 1], [1, 1], [1, 1])
    conv_case("conv2d_1x1", (2, 16, 7, 7), 8, [1, 1], 1, [1, 1], [0, 0], [0, 0], [1, 1])
    conv_case("conv3d", (1, 3, 6, 7, 5), 4, [3, 2, 3], 1, [1, 2, 1], [1, 0, 1], [1, 1, 1], [1, 1, 2])
    conv_transpose_case("convtranspose1d", (2, 3, 7), 4, [3], 1, [2], [1], [1], [1])
    conv_transpose_case("convtranspose2d", (1, 4, 5, 6), 6, [3, 3], 2, [2, 2], [1, 0], [1, 1], [2, 1])
    conv_transpose_case("convtranspose3d", (1, 2, 3, 4, 3), 3, [2, 3, 2], 1, [2, 1, 2], [0, 1, 1],
                        [1, 0, 0], [1, 1, 1])
    maxpool_case("maxpool1d", (2, 3, 17), [3], [2], [1], [1], False)
    maxpool_case("maxpool2d_ceil", (2, 3, 9, 10), [3, 3], [2, 2], [1, 1], [1, 1], True)
    maxpool_case("maxpool2d_dilated", (1, 2, 12, 11), [2, 3], [1, 2], [1, 1], [2, 2], False)
    maxpool_case("maxpool3d", (1, 2, 5, 6, 7), [2, 3, 2], [2, 2, 1], [0, 1, 1], [1, 1, 1], True)
    avgpool_case("avgpool1d", (2, 2, 13), [4], [3], [2], True, True)
    avgpool_case("avgpool2d_pad", (2, 3, 9, 10), [3, 3], [2, 2], [1, 1], True, True)
    avgpool_case("avgpool2d_nopad", (2, 3, 9, 10), [3, 3], [2, 2], [1, 1], True, False)
    avgpool_case("avgpool3d", (1, 2, 5, 6, 7), [2, 3, 3], [2, 2, 2], [1, 1, 0], False, True)
    lppool_case("lppool2d_p2", (2, 3, 8, 9), [3, 2], [2, 2], 2)
    lppool_case("lppool1d_p3", (2, 3, 11), [3], [2], 3)
    rnn_family_case("lstm_bidir", "lstm", 5, 3, 4, 6, [5, 2, 4], True, True)
    rnn_family_case("lstm_fwd", "lstm", 4, 2, 3, 5, [4, 4], False, False)
    rnn_family_case("gru_bidir", "gru", 5, 3, 4, 6, [3, 5, 1], True, True)
    rnn_family_case("rnn_bidir", "rnn", 4, 3, 3, 5, [4, 1, 3], True, True)
    norm_cases()
    sizes = [os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs]
    print(f"wrote {len(sizes)} files, {sum(sizes)} bytes under {OUT}")


if __name__ == "__main__":
    main()
