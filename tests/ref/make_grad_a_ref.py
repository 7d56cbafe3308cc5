#!/usr/bin/python3
"""make_grad_a_ref.py - PyTorch's gradients where finite differences cannot decide: inputs sitting exactly
on kinks (Relu/LeakyRelu/Elu/Selu/Abs/PRelu at 0, Clip at its bounds, HardSigmoid/HardSwish at +-3) and
exact ties (Max/Min, ReduceMax/ReduceMin), plus a few smooth ops as a second opinion (Softmax over a
middle axis, LogSoftmax, GELU through erf, embedding with repeated indices). tests/test_grad_a.c builds
each case as the ONNX op(s) PyTorch exports and compares onnxtune's gradients with these.

Each case runs on fixed inputs (on a grid of quarters where ties or kinks are wanted, so float32 holds
them exactly), takes L = sum(Y * R) for a fixed random R, and saves
    tests/ref/grad_a/<case>/in<k>.npy (float32, or int64 for indices), r.npy, y.npy,
    grad<k>.npy = dL/d(input k) for the inputs that train (float32, computed in float64).
The ONNX spelling of each case lives in the C test next to its name (keep the two in step).

Run from the repo root:  /usr/bin/python3 tests/ref/make_grad_a_ref.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "ref", "grad_a")

gen = torch.Generator().manual_seed(20240612)


def save(case, name, t):
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    a = t.detach().numpy()
    np.save(os.path.join(d, name + ".npy"), a if a.dtype == np.int64 else a.astype(np.float32))


def run(case, fn, inputs, trains):
    """inputs: float64 tensors (int64 for indices); trains: indices of the inputs that get gradients."""
    ts = [t.clone().requires_grad_(k in trains) for k, t in enumerate(inputs)]
    y = fn(*ts)
    r = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    (y * r).sum().backward()
    for k, t in enumerate(inputs):
        save(case, "in%d" % k, t)
    save(case, "r", r)
    save(case, "y", y)
    for k in trains:
        save(case, "grad%d" % k, ts[k].grad)


def grid(*shape, lo=-8, hi=8):
    """Quarters in [lo/4, hi/4]: many exact ties and zeros."""
    return torch.randint(lo, hi + 1, shape, generator=gen).to(torch.float64) / 4


def randn(*shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def with_values(x, values):
    """x with its first entries replaced by values (the kinks under test)."""
    x = x.clone().flatten()
    x[: len(values)] = torch.tensor(values, dtype=torch.float64)
    return x


# ties and kinks: ONNX op (attributes) in the comment
a = grid(3, 4)
b = grid(3, 4)
b.view(-1)[:6] = a.view(-1)[:6]
run("max_ties", torch.maximum, [a, b], [0, 1])                         # Max(a, b)
run("min_bcast_ties", torch.minimum, [grid(3, 4), grid(4)], [0, 1])    # Min(a, b)
run("amax_ties", lambda x: torch.amax(x, dim=1, keepdim=True), [grid(2, 5, 3, lo=-2, hi=2)], [0])  # ReduceMax axes=[1]
run("amin_all", lambda x: torch.amin(x), [grid(3, 4, lo=-1, hi=1)], [0])  # ReduceMin keepdims=0
run("relu_zero", F.relu, [grid(3, 5)], [0])                            # Relu
run("leaky_relu_zero", lambda x: F.leaky_relu(x, 0.1), [grid(3, 5)], [0])  # LeakyRelu alpha=0.1
run("elu_zero", lambda x: F.elu(x, 0.7), [grid(3, 5)], [0])            # Elu alpha=0.7
run("selu_zero", F.selu, [grid(3, 5)], [0])                            # Selu
run("abs_zero", torch.abs, [grid(3, 5)], [0])                          # Abs
run("clamp_bounds", lambda x: torch.clamp(x, -0.5, 0.5), [grid(3, 5)], [0])  # Clip(x, -0.5, 0.5)
run("hardswish_kinks", F.hardswish, [with_values(grid(20, lo=-16, hi=16), [-3, 3, 0]).reshape(4, 5)], [0])
run("hardsigmoid_kinks", F.hardsigmoid,                                # HardSigmoid alpha=1/6 beta=0.5
    [with_values(grid(20, lo=-16, hi=16), [-3, 3, 0]).reshape(4, 5)], [0])
run("prelu_zero", F.prelu, [grid(2, 3, 2, 2), randn(3).abs() / 4], [0, 1])  # PRelu(x, slope [3,1,1])
# smooth ops, a second opinion
run("softmax_mid", lambda x: F.softmax(x, dim=1), [randn(2, 5, 3)], [0])  # Softmax axis=1
run("log_softmax", lambda x: F.log_softmax(x, dim=-1), [randn(3, 6)], [0])  # LogSoftmax axis=-1
run("gelu_erf", F.gelu, [randn(3, 7)], [0])                            # x * 0.5 * (1 + Erf(x / sqrt 2))
run("embedding_repeats", lambda w, i: F.embedding(i, w),               # Gather(w, i) axis=0
    [randn(10, 6), torch.tensor([[3, 7, 3, 0, 9], [7, 7, 1, 3, 2]])], [0])
