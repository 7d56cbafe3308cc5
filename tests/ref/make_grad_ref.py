#!/usr/bin/python3
"""make_grad_ref.py - PyTorch's gradients for a few small conv, BatchNormalization (training) and pool
cases, for tests/test_grad_b.c to compare onnxtune's backward pass with. Each case runs the op on fixed
random inputs, takes the loss L = sum(Y * R) for a fixed random R, and saves the inputs, R, Y and the
gradients of L. It does not export models (the test builds each one-node graph itself).

Run from the repo root:  /usr/bin/python3 tests/ref/make_grad_ref.py
Output: tests/ref/grad/<case>/{in<k>,r,y,grad<k>}.npy (float32), grad<k> = dL/d(input k) for the
inputs that train; bn_train also running_mean.npy and running_var.npy (the updated statistics).
The attributes of each case are written in the C test next to its name (keep the two in step).
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "ref", "grad")


def save(case, name, t):
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, name + ".npy"), t.detach().numpy().astype(np.float32))


def run(case, fn, inputs, trains, extra=None):
    """inputs: tensors (float64 for exact references); trains: indices that get gradients."""
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
    if extra:
        extra(case)


gen = torch.Generator().manual_seed(20240611)


def randn(*shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


# Conv: stride 2, pads 1, bias.  ONNX: strides=[2,2] pads=[1,1,1,1]
run("conv_s2p1", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
    [randn(2, 3, 7, 7), randn(4, 3, 3, 3), randn(4)], [0, 1, 2])
# Depthwise conv (MobileNet): group 4, pads 1.  ONNX: group=4 pads=[1,1,1,1]
run("conv_depthwise", lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=4),
    [randn(2, 4, 6, 6), randn(4, 1, 3, 3), randn(4)], [0, 1, 2])
# Grouped, dilated conv without bias.  ONNX: group=2 dilations=[2,2] pads=[2,2,2,2]
run("conv_group_dilated", lambda x, w: F.conv2d(x, w, None, padding=2, dilation=2, groups=2),
    [randn(1, 4, 8, 8), randn(6, 2, 3, 3)], [0, 1])

# BatchNorm2d in training mode: batch statistics, running stats updated with momentum 0.1 (ONNX 0.9),
# the running var from the unbiased batch variance.  ONNX: epsilon=1e-5 momentum=0.9 training_mode=1
bn_stats = [randn(3) * 0.1, 1 + randn(3).abs()]


def bn_train(x, w, b, rm, rv):
    bn_train.rm, bn_train.rv = rm.detach().clone(), rv.detach().clone()
    return F.batch_norm(x, bn_train.rm, bn_train.rv, w, b, training=True, momentum=0.1, eps=1e-5)


def bn_extra(case):
    save(case, "running_mean", bn_train.rm)
    save(case, "running_var", bn_train.rv)


run("bn_train", bn_train, [randn(4, 3, 5, 5) * 2 + 1, 1 + 0.2 * randn(3), randn(3)] + bn_stats, [0, 1, 2],
    bn_extra)

# MaxPool with many ties (small integers): PyTorch routes the gradient to the first maximum.
# ONNX: kernel_shape=[3,3] strides=[2,2] pads=[1,1,1,1] ceil_mode=1
ties = torch.randint(0, 4, (2, 2, 7, 7), generator=gen).to(torch.float64)
run("maxpool_ties", lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [ties], [0])
# AveragePool, ceil_mode with count_include_pad.  ONNX: kernel_shape=[3,3] strides=[2,2] pads=[1,1,1,1]
# ceil_mode=1 count_include_pad=1
run("avgpool_ceil_pad", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
    [randn(1, 2, 8, 8)], [0])
print("wrote", OUT)
