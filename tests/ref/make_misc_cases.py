#!/usr/bin/python3
"""make_misc_cases.py - ONNX backend-style cases (model.onnx + test_data_set_*/) in tests/conform_misc/
for the paths of the quantization, signal, image and misc ops that the ONNX 1.12 backend data does
not reach: int8 and per-channel quantization, broadcast integer products, one-sided and padded DFTs,
complex STFT, float64 windows, multi-channel GridSample against torch.nn.functional.grid_sample, the
preview.training optimizers after step 0 (ONNX's own reference functions), TfIdfVectorizer's IDF and
TFIDF modes, Det of singular and 3x3 matrices, Unique over an axis unsorted, ReverseSequence in 3-D.
CTest conform_misc runs `onnxtune conform` on them: every case must PASS. Deterministic; run with
/usr/bin/python3 (onnx 1.12, numpy, torch 1.13)."""
import os
import shutil
import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto
from onnx.backend.test.case.node.adam import apply_adam
from onnx.backend.test.case.node.adagrad import apply_adagrad
from onnx.backend.test.case.node.momentum import apply_momentum, apply_nesterov

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conform_misc")
vi = helper.make_tensor_value_info
F, D, I64, I32, U8, I8 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT32, TensorProto.UINT8, TensorProto.INT8


def case(name, node, ins, outs, opset=17, domain="", inits=()):
    """ins/outs: (name, array) pairs; graph inputs and outputs are typed from the arrays."""
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    ty = lambda a: onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype]
    g = helper.make_graph([node], name, [vi(n, ty(a), a.shape) for n, a in ins], [vi(n, ty(a), a.shape) for n, a in outs],
                          initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    m = helper.make_model(g, opset_imports=ops, producer_name="make_misc_cases.py")
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for kind, pairs in (("input", ins), ("output", outs)):
        for i, (n, a) in enumerate(pairs):
            with open(os.path.join(d, "test_data_set_0", "%s_%d.pb" % (kind, i)), "wb") as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())


def sat(v, dt):
    info = np.iinfo(dt)
    return np.clip(v, info.min, info.max).astype(dt)


def quant(rng):
    # QuantizeLinear int8 per axis 1 (round half to even, saturation)
    x = (rng.standard_normal((2, 3, 4)) * 40).astype(np.float32)
    x[0, 0, :2] = [2.5, -3.5]                     # exact halves
    s = np.array([0.5, 1.0, 0.25], np.float32)
    z = np.array([-3, 0, 5], np.int8)
    y = sat(np.rint(x / s[None, :, None]) + z[None, :, None], np.int8)
    case("quantizelinear_int8_axis", helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1),
         [("x", x), ("s", s), ("z", z)], [("y", y)], opset=13)
    # DequantizeLinear of int32 without a zero point
    q = np.array([-7, 0, 3, 1 << 20, -(1 << 24)], np.int32)
    sc = np.array(0.125, np.float32)
    case("dequantizelinear_int32", helper.make_node("DequantizeLinear", ["q", "s"], ["y"]), [("q", q), ("s", sc)],
         [("y", (q.astype(np.float32) * sc).astype(np.float32))], opset=13)
    # MatMulInteger int8 with broadcast batch dims, per-row and per-column zero points
    a = rng.integers(-128, 128, (2, 1, 3, 4)).astype(np.int8)
    b = rng.integers(-128, 128, (3, 4, 5)).astype(np.int8)
    az = np.array([1, -2, 3], np.int8)
    bz = np.array([0, 4, -5, 6, -7], np.int8)
    ya = a.astype(np.int32) - az.astype(np.int32)[:, None]
    yb = b.astype(np.int32) - bz.astype(np.int32)[None, :]
    case("matmulinteger_int8_broadcast", helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"]),
         [("a", a), ("b", b), ("az", az), ("bz", bz)], [("y", np.matmul(ya, yb).astype(np.int32))], opset=13)
    # QLinearConv: uint8 x, int8 w with per-channel scales, int32 bias, pads 1, stride 2, group 1
    x = rng.integers(0, 256, (1, 2, 5, 5)).astype(np.uint8)
    w = rng.integers(-128, 128, (3, 2, 3, 3)).astype(np.int8)
    xs, xz = np.float32(0.02), np.uint8(128)
    ws = np.array([0.01, 0.005, 0.02], np.float32)
    wz = np.zeros(3, np.int8)
    ys, yz = np.float32(0.5), np.uint8(100)
    bias = np.array([100, -2000, 3000], np.int32)
    xp = np.pad(x.astype(np.int32) - int(xz), ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = np.zeros((1, 3, 3, 3), np.int32)
    for o in range(3):
        for i in range(3):
            for j in range(3):
                acc[0, o, i, j] = np.sum(xp[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * w[o].astype(np.int32))
    acc += bias[None, :, None, None]
    mult = (xs * ws) / ys                         # float32, in the order the kernel computes it
    y = sat(np.rint(acc.astype(np.float32) * mult[None, :, None, None]) + int(yz), np.uint8)
    case("qlinearconv_per_channel", helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                                                     ["y"], pads=[1, 1, 1, 1], strides=[2, 2]),
         [("x", x), ("xs", np.array(xs)), ("xz", np.array(xz)), ("w", w), ("ws", ws), ("wz", wz), ("ys", np.array(ys)),
          ("yz", np.array(yz)), ("b", bias)], [("y", y)], opset=13)


def signal(rng):
    x = rng.standard_normal((2, 10, 3, 1)).astype(np.float32)
    r = np.fft.rfft(x[..., 0].astype(np.float64), n=12, axis=1)
    case("dft_onesided_padded", helper.make_node("DFT", ["x", "n"], ["y"], axis=1, onesided=1),
         [("x", x)], [("y", np.stack([r.real, r.imag], -1).astype(np.float32))], inits=[("n", np.array(12, np.int64))])
    c = rng.standard_normal((1, 4, 10, 2)).astype(np.float32)
    z = np.fft.ifft(c[..., 0].astype(np.float64) + 1j * c[..., 1], n=8, axis=2)
    case("dft_inverse_truncated", helper.make_node("DFT", ["x", "n"], ["y"], axis=-2, inverse=1),
         [("x", c)], [("y", np.stack([z.real, z.imag], -1).astype(np.float32))], inits=[("n", np.array(8, np.int64))])
    s = rng.standard_normal((2, 40, 2)).astype(np.float32)
    win = np.hanning(8).astype(np.float32)
    frames = (40 - 8) // 5 + 1
    out = np.zeros((2, frames, 8, 2), np.float32)
    for b in range(2):
        for f in range(frames):
            seg = (s[b, f * 5:f * 5 + 8, 0].astype(np.float64) + 1j * s[b, f * 5:f * 5 + 8, 1]) * win
            z = np.fft.fft(seg)
            out[b, f] = np.stack([z.real, z.imag], -1)
    case("stft_complex_twosided", helper.make_node("STFT", ["x", "step", "w"], ["y"], onesided=0),
         [("x", s), ("w", win)], [("y", out)], inits=[("step", np.array(5, np.int64))])
    for op, fn in (("HannWindow", torch.hann_window), ("BlackmanWindow", torch.blackman_window)):
        case(op.lower() + "_float64", helper.make_node(op, ["n"], ["y"], output_datatype=D),
             [], [("y", fn(9, periodic=True, dtype=torch.float64).numpy())], inits=[("n", np.array(9, np.int32))])


def image(rng):
    x = torch.from_numpy(rng.standard_normal((2, 3, 5, 4)).astype(np.float32))
    grid = torch.from_numpy(rng.uniform(-1.3, 1.3, (2, 3, 6, 2)).astype(np.float32))
    for mode, pad, align in (("bicubic", "border", 1), ("nearest", "reflection", 1), ("bilinear", "reflection", 0),
                             ("bicubic", "zeros", 0)):
        y = torch.nn.functional.grid_sample(x.double(), grid.double(), mode=mode, padding_mode=pad,
                                            align_corners=bool(align))
        case("gridsample_%s_%s_%d" % (mode, pad, align),
             helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=pad, align_corners=align),
             [("x", x.numpy()), ("g", grid.numpy())], [("y", y.float().numpy())], opset=16)


def training():
    r, t = np.array(0.1, np.float32), np.array(3, np.int64)
    x = np.array([1.0, -2.0, 0.5], np.float32)
    g = np.array([-1.0, 0.25, 3.0], np.float32)
    v = np.array([2.0, -1.0, 0.0], np.float32)
    h = np.array([0.5, 1.0, 2.0], np.float32)
    xn, vn, hn = apply_adam(r, t, x, g, v, h, 0.001, 0.01, 0.9, 0.99, 1e-3)
    dom = "ai.onnx.preview.training"
    case("adam_step3", helper.make_node("Adam", ["r", "t", "x", "g", "v", "h"], ["xn", "vn", "hn"], domain=dom,
                                        alpha=0.9, beta=0.99, epsilon=1e-3, norm_coefficient=0.001,
                                        norm_coefficient_post=0.01),
         [("r", r), ("t", t), ("x", x), ("g", g), ("v", v), ("h", h)],
         [("xn", xn.astype(np.float32)), ("vn", vn.astype(np.float32)), ("hn", hn.astype(np.float32))], domain=dom)
    xn, hn = apply_adagrad(r, t, x, g, h, 0.01, 1e-5, 0.1)
    case("adagrad_step3", helper.make_node("Adagrad", ["r", "t", "x", "g", "h"], ["xn", "hn"], domain=dom,
                                           decay_factor=0.1, epsilon=1e-5, norm_coefficient=0.01),
         [("r", r), ("t", t), ("x", x), ("g", g), ("h", h)],
         [("xn", xn.astype(np.float32)), ("hn", hn.astype(np.float32))], domain=dom)
    xn, vn = apply_nesterov(r, t, x, g, v, 0.01, 0.9, 0.5)
    case("nesterov_step3", helper.make_node("Momentum", ["r", "t", "x", "g", "v"], ["xn", "vn"], domain=dom,
                                            alpha=0.9, beta=0.5, mode="nesterov", norm_coefficient=0.01),
         [("r", r), ("t", t), ("x", x), ("g", g), ("v", v)],
         [("xn", xn.astype(np.float32)), ("vn", vn.astype(np.float32))], domain=dom)
    xn, vn = apply_momentum(r, np.array(0, np.int64), x, g, v, 0.01, 0.9, 0.5)
    case("momentum_step0", helper.make_node("Momentum", ["r", "t", "x", "g", "v"], ["xn", "vn"], domain=dom,
                                            alpha=0.9, beta=0.5, mode="standard", norm_coefficient=0.01),
         [("r", r), ("t", np.array(0, np.int64)), ("x", x), ("g", g), ("v", v)],
         [("xn", xn.astype(np.float32)), ("vn", vn.astype(np.float32))], domain=dom)


def misc(rng):
    # TfIdfVectorizer on int64: unigrams 1, 2, 3 and the bigram (1, 2); x has 1 and 2 twice each, 3 once,
    # and the bigram (1, 2) twice, so TF = [2, 2, 1, 2] in the columns ngram_indexes names
    x = np.array([[1, 2, 1, 2, 3], [3, 3, 7, 2, 1]], np.int64)
    tf = np.array([[2, 2, 1, 2], [1, 1, 2, 0]], np.float32)
    w = np.array([0.5, 2.0, 3.0, 4.0], np.float32)
    idx = [3, 0, 1, 2]                                     # pool n-gram k goes to column idx[k]
    cols = lambda m: m[:, np.argsort(idx)]
    for mode, want in (("IDF", (tf > 0) * w), ("TFIDF", tf * w)):
        case("tfidf_%s" % mode.lower(), helper.make_node("TfIdfVectorizer", ["x"], ["y"], mode=mode, min_gram_length=1,
                                                         max_gram_length=2, max_skip_count=0, ngram_counts=[0, 3],
                                                         ngram_indexes=idx, pool_int64s=[1, 2, 3, 1, 2], weights=list(w)),
             [("x", x)], [("y", cols(want.astype(np.float32)))], opset=13)
    m = rng.standard_normal((4, 3, 3)).astype(np.float32)
    m[1, 2] = m[1, 0] * 2                                  # singular
    case("det_3x3", helper.make_node("Det", ["x"], ["y"]), [("x", m)],
         [("y", np.linalg.det(m.astype(np.float64)).astype(np.float32))], opset=13)
    u = np.array([[3, 1, 3, 2, 1], [0, 5, 0, 4, 5]], np.int64)
    cols_u, first, inv, counts = np.unique(u, axis=1, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first)                              # sorted=0: order of first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    case("unique_axis1_unsorted", helper.make_node("Unique", ["x"], ["y", "i", "inv", "c"], axis=1, sorted=0),
         [("x", u)], [("y", cols_u[:, order]), ("i", first[order].astype(np.int64)),
                      ("inv", rank[inv.reshape(-1)].astype(np.int64)), ("c", counts[order].astype(np.int64))], opset=13)
    s = np.arange(4 * 3 * 2, dtype=np.int32).reshape(4, 3, 2)
    lens = np.array([4, 0, 2], np.int64)
    y = s.copy()
    for b in range(3):
        y[:lens[b], b] = s[:lens[b], b][::-1]
    case("reversesequence_3d", helper.make_node("ReverseSequence", ["x", "l"], ["y"], batch_axis=1, time_axis=0),
         [("x", s), ("l", lens)], [("y", y)], opset=13)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rng = np.random.default_rng(12)
    quant(rng)
    signal(rng)
    image(rng)
    training()
    misc(rng)


if __name__ == "__main__":
    main()
