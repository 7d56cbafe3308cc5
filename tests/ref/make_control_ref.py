#!/usr/bin/python3
"""make_control_ref.py - PyTorch references for control flow (If, Loop): small modules compiled with
torch.jit.script (a data-dependent `if`, `for` and `while` loops, a nested `if`), exported with
torch.onnx.export (branches of different output shapes too), and written as ONNX backend-style cases to tests/control_cases/<case>/ (model.onnx +
test_data_set_*/ with PyTorch's outputs; the data sets take every branch and loop count). Also:
  tests/ref/control/if_grad_<then|else>/  the IfNet gradients of sum(y * R) for x, R and the weights
                                         (in*.npy, r.npy, y.npy, grad_<name>.npy), checked by
                                         tests/test_control_grad.c next to finite differences;
  tests/ref/control/train/               a fine-tuning run of a classifier with an If (SGD, momentum,
                                         cross entropy; the data's batches take both branches): x.npy,
                                         y.npy, losses.npy, w_<initializer>.npy (trained), checked by
                                         tests/test_control_run.c;
  tests/ref/control/dropout_if.onnx      a Dropout inside a branch (refused for fine-tuning).
Deterministic (one thread); run with /usr/bin/python3 (torch 1.13, onnx 1.12)."""
import os
import shutil
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CASES = os.path.join(ROOT, "control_cases")
REF = os.path.join(ROOT, "ref", "control")
torch.set_num_threads(1)
warnings.filterwarnings("ignore")


class IfNet(torch.nn.Module):
    """y = relu(a(x)) when the batch sums to more than 0, else 2 tanh(b(x))."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 3)
        self.b = torch.nn.Linear(4, 3)

    def forward(self, x):
        if x.sum() > 0:
            y = torch.relu(self.a(x))
        else:
            y = torch.tanh(self.b(x)) * 2.0
        return y


class NestedIfNet(torch.nn.Module):
    """Three ways out: an if inside the then branch, reading x and a weight from outside."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-1, 1, 12).reshape(3, 4))

    def forward(self, x):
        if x.sum() > 0:
            if x.max() > 1.5:
                y = x @ self.w.t() + 1.0
            else:
                y = torch.sigmoid(x @ self.w.t())
        else:
            y = (x * x) @ self.w.t()
        return y


class ShapeIfNet(torch.nn.Module):
    """Branches giving different shapes ([N,2] or [N,4]); what follows brings them to one."""

    def forward(self, x):
        if x.sum() > 0:
            h = x[:, :2] * 3.0
        else:
            h = x
        return h.mean(dim=1) + 1.0


class LoopNet(torch.nn.Module):
    """A for loop of n (an input) iterations, one of 3 (unrolled), then a while loop on the data."""

    def forward(self, x, n):
        y = x
        for i in range(int(n)):
            y = y * 0.5 + float(i)
        for j in range(3):
            y = y + 0.125 * j
        k = 0
        while bool(y.abs().sum() < 50.0) and k < 20:
            y = y * 1.5 + 0.25
            k += 1
        return y


class DropoutIfNet(torch.nn.Module):
    """Dropout inside a branch: exported in training mode, it must be refused for fine-tuning."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        if x.sum() > 0:
            y = self.drop(self.lin(x))
        else:
            y = self.lin(x)
        return y


def export(module, args, names, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(torch.jit.script(module), args, path, input_names=names, output_names=["y"], opset_version=13)


def write_case(name, module, names, sets):
    d = os.path.join(CASES, name)
    export(module, tuple(torch.from_numpy(a) for a in sets[0]), names, os.path.join(d, "model.onnx"))
    for k, ins in enumerate(sets):
        sd = os.path.join(d, "test_data_set_%d" % k)
        os.makedirs(sd, exist_ok=True)
        with torch.no_grad():
            y = module(*[torch.from_numpy(a) for a in ins]).numpy()
        for i, (n, a) in enumerate(zip(names, ins)):
            open(os.path.join(sd, "input_%d.pb" % i), "wb").write(numpy_helper.from_array(a, n).SerializeToString())
        open(os.path.join(sd, "output_0.pb"), "wb").write(numpy_helper.from_array(y, "y").SerializeToString())


def signed(rng, shape, sign, scale=1.0):
    return (sign * np.abs(rng.standard_normal(shape)) * scale).astype(np.float32)


def grad_ref(net, x, name, rng):
    d = os.path.join(REF, name)
    os.makedirs(d, exist_ok=True)
    xt = torch.from_numpy(x).requires_grad_(True)
    y = net(xt)
    r = rng.uniform(-1, 1, y.shape).astype(np.float32)
    net.zero_grad()
    (y * torch.from_numpy(r)).sum().backward()
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "r.npy"), r)
    np.save(os.path.join(d, "y.npy"), y.detach().numpy())
    np.save(os.path.join(d, "grad_x.npy"), xt.grad.numpy())
    for pname, p in net.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)   # the branch not taken: none
        np.save(os.path.join(d, "grad_%s.npy" % pname), g.numpy())


class IfClassifier(torch.nn.Module):
    """The fine-tuning model: 6 features -> 3 classes, by one of two heads chosen by the batch's mean."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(6, 8)
        self.pos = torch.nn.Linear(8, 3)
        self.neg = torch.nn.Linear(8, 3)

    def forward(self, x):
        h = torch.tanh(self.body(x))
        if x.mean() > 0:
            y = self.pos(h)
        else:
            y = self.neg(torch.relu(h)) * 0.5
        return y


def train_ref(rng):
    d = os.path.join(REF, "train")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(3)
    net = IfClassifier()
    export(net, (torch.zeros(4, 6),), ["x"], os.path.join(d, "model.onnx"))
    # batches of 4 whose mean sign alternates, so both branches train
    xs = []
    for b in range(6):
        xs.append(signed(rng, (4, 6), 1 if b % 2 == 0 else -1, 0.8) + rng.standard_normal((4, 6)).astype(np.float32) * 0.3)
    x = np.concatenate(xs).astype(np.float32)
    y = rng.integers(0, 3, len(x)).astype(np.int64)
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "y.npy"), y)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses, branches = [], []
    for epoch in range(2):
        for b in range(len(x) // 4):
            xb, yb = torch.from_numpy(x[4 * b:4 * b + 4]), torch.from_numpy(y[4 * b:4 * b + 4])
            branches.append(int(xb.mean() > 0))
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert 0 < sum(branches) < len(branches)
    np.save(os.path.join(d, "losses.npy"), np.array(losses, np.float32))
    for pname, p in net.named_parameters():  # the trained weights, by initializer name
        np.save(os.path.join(d, "w_%s.npy" % pname), p.detach().numpy())


def main():
    shutil.rmtree(CASES, ignore_errors=True)
    shutil.rmtree(REF, ignore_errors=True)
    rng = np.random.default_rng(12)
    torch.manual_seed(0)
    ifnet = IfNet()
    write_case("if_linear", ifnet, ["x"], [(signed(rng, (2, 4), 1),), (signed(rng, (2, 4), -1),),
                                           (signed(rng, (2, 4), 1, 0.1),)])
    nested = NestedIfNet()
    write_case("if_nested", nested, ["x"], [(signed(rng, (2, 4), 1, 2.0) + 0.2,), (signed(rng, (2, 4), 1, 0.2),),
                                            (signed(rng, (2, 4), -1),)])
    write_case("if_shapes", ShapeIfNet(), ["x"], [(signed(rng, (2, 4), 1),), (signed(rng, (2, 4), -1),)])
    n = lambda k: np.array(k, np.int64)
    write_case("loop_for_while", LoopNet(), ["x", "n"],
               [(signed(rng, (2, 4), 1), n(0)), (signed(rng, (2, 4), 1, 3.0), n(3)),
                (signed(rng, (2, 4), -1, 10.0), n(1)), (signed(rng, (2, 4), 1, 0.01), n(5))])
    while True:  # relu's inputs away from its kink (finite differences) and some of them positive
        x = signed(rng, (2, 4), 1) + 0.1
        with torch.no_grad():
            pre = ifnet.a(torch.from_numpy(x))
        if pre.abs().min() > 0.1 and (pre > 0).sum() >= 3:
            break
    grad_ref(ifnet, x, "if_grad_then", rng)
    grad_ref(ifnet, signed(rng, (2, 4), -1) - 0.1, "if_grad_else", rng)
    train_ref(rng)
    torch.onnx.export(torch.jit.script(DropoutIfNet().train()), (torch.zeros(4, 4),), os.path.join(REF, "dropout_if.onnx"),
                      input_names=["x"], output_names=["y"], opset_version=13, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE)


if __name__ == "__main__":
    main()
