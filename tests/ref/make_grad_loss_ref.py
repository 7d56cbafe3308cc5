#!/usr/bin/python3
"""make_grad_loss_ref.py - PyTorch's gradients for tests/test_grad_loss.c: the ONNX loss ops
(NegativeLogLikelihoodLoss as F.nll_loss, SoftmaxCrossEntropyLoss as F.cross_entropy, with weight,
ignore_index, reduction, N-d inputs and the log_prob output) and ConvTranspose, Resize (nearest, linear),
LpPool, LRN and Mod (torch.fmod).

Each case runs on fixed inputs in float64 and takes L = sum_k sum(Y_k * R_k) for fixed random R_k; it saves
    tests/ref/grad_loss/<case>/in<k>.npy (float32, or int64 for class indices), r<k>.npy, y<k>.npy,
    grad<k>.npy = dL/d(input k) for the inputs that train (float32, computed in float64).
The ONNX spelling of each case lives in the C test next to its name (keep the two in step).

Run from the repo root:  /usr/bin/python3 tests/ref/make_grad_loss_ref.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "ref", "grad_loss")

gen = torch.Generator().manual_seed(20261207)


def save(case, name, t):
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    a = t.detach().numpy()
    np.save(os.path.join(d, name + ".npy"), a if a.dtype == np.int64 else a.astype(np.float32))


def run(case, fn, inputs, trains):
    """inputs: float64 tensors (int64 for indices); trains: indices of the inputs that get gradients;
    fn returns one tensor or a tuple of them."""
    ts = [t.clone().requires_grad_(k in trains) for k, t in enumerate(inputs)]
    ys = fn(*ts)
    ys = ys if isinstance(ys, tuple) else (ys,)
    total = 0
    for k, y in enumerate(ys):
        r = torch.randn(y.shape, generator=gen, dtype=torch.float64)
        total = total + (y * r).sum()
        save(case, "r%d" % k, r)
        save(case, "y%d" % k, y)
    total.backward()
    for k, t in enumerate(inputs):
        save(case, "in%d" % k, t)
    for k in trains:
        save(case, "grad%d" % k, ts[k].grad)


def randn(*shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def classes(c, *shape):
    return torch.randint(0, c, shape, generator=gen)


def uniform(lo, hi, *shape):
    return lo + (hi - lo) * torch.rand(*shape, generator=gen, dtype=torch.float64)


# ---- losses: ONNX op (attributes) in the comment ----
t = classes(5, 4)
t[1] = 2
# SoftmaxCrossEntropyLoss(x, t, w) ignore_index=2 (reduction mean)
run("sce_mean_weight_ii", lambda x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=2),
    [randn(4, 5), t, uniform(0.5, 2, 5)], [0])
# SoftmaxCrossEntropyLoss(x, t) reduction=none, N-d
run("sce_nd_none", lambda x, t: F.cross_entropy(x, t, reduction="none"), [randn(2, 4, 3, 2), classes(4, 2, 3, 2)], [0])
t = classes(4, 3, 5)
t[0, 1] = -1
t[2, 3] = -1
# SoftmaxCrossEntropyLoss(x, t) reduction=sum ignore_index=-1, both outputs (loss, log_prob)
run("sce_sum_ii_log_prob",
    lambda x, t: (F.cross_entropy(x, t, reduction="sum", ignore_index=-1), F.log_softmax(x, dim=1)),
    [randn(3, 4, 5), t], [0])
# NegativeLogLikelihoodLoss(x, t, w) reduction=mean, N-d
run("nll_mean_weight_nd", lambda x, t, w: F.nll_loss(x, t, weight=w), [randn(2, 3, 4), classes(3, 2, 4),
                                                                      uniform(0.5, 2, 3)], [0])
t = classes(4, 5)
t[2] = 0
# NegativeLogLikelihoodLoss(x, t) reduction=sum ignore_index=0
run("nll_sum_ii", lambda x, t: F.nll_loss(x, t, reduction="sum", ignore_index=0), [randn(5, 4), t], [0])

# ---- the remaining gradient rules ----
# ConvTranspose(x, w, b) strides=[2,2] pads=[1,1,1,1] output_padding=[1,1] group=2
run("conv_transpose_s2_group",
    lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
    [randn(2, 4, 3, 3), randn(4, 3, 3, 3), randn(6)], [0, 1, 2])
# ConvTranspose(x, w) dilations=[2] (1-D)
run("conv_transpose_1d_dilated", lambda x, w: F.conv_transpose1d(x, w, dilation=2), [randn(1, 2, 5), randn(2, 3, 3)],
    [0, 1])
# Resize(x, scales=[1,1,2,3]) mode=nearest coordinate_transformation_mode=asymmetric nearest_mode=floor
run("resize_nearest_up", lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest"), [randn(1, 2, 3, 4)], [0])
# Resize(x, sizes=[1,2,2,3]) mode=nearest coordinate_transformation_mode=asymmetric nearest_mode=floor
run("resize_nearest_down", lambda x: F.interpolate(x, size=(2, 3), mode="nearest"), [randn(1, 2, 5, 7)], [0])
# Resize(x, sizes=[2,2,5,7]) mode=linear coordinate_transformation_mode=pytorch_half_pixel
run("resize_bilinear", lambda x: F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False),
    [randn(2, 2, 3, 4)], [0])
# Resize(x, sizes=[1,2,4,7]) mode=linear coordinate_transformation_mode=align_corners
run("resize_bilinear_align_corners", lambda x: F.interpolate(x, size=(4, 7), mode="bilinear", align_corners=True),
    [randn(1, 2, 3, 4)], [0])
# LpPool(x) p=2 kernel_shape=[2,2] strides=[2,2]
run("lppool_p2", lambda x: F.lp_pool2d(x, 2, 2, stride=2), [randn(2, 3, 4, 6)], [0])
# LpPool(x) p=3 kernel_shape=[3] strides=[1] (positive x: torch's x^p is ONNX's |x|^p there)
run("lppool_p3_1d", lambda x: F.lp_pool1d(x, 3, 3, stride=1), [uniform(0.2, 2, 1, 2, 7)], [0])
# LRN(x) size=3 alpha=0.02 beta=0.75 bias=1.5 (odd size: torch and ONNX place the window alike)
run("lrn_size3", lambda x: F.local_response_norm(x, 3, alpha=0.02, beta=0.75, k=1.5), [randn(2, 6, 3, 3)], [0])
# Mod(a, b) fmod=1
a = uniform(-5, 5, 3, 4)
b = uniform(0.7, 2, 4) * torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
run("fmod_bcast", torch.fmod, [a, b], [0, 1])
