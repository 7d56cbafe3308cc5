#!/usr/bin/python3
"""make_loss_model_ref.py - training cases for `--loss model`: small PyTorch models that compute their own
loss (F.cross_entropy with class weights and ignored labels; x - logsumexp(x) + F.nll_loss with reduction sum),
exported with torch.onnx.export (SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss nodes, the labels a
second graph input), then trained in PyTorch for a few steps. Each case is written as a
tests/ref/train/<case>/ fixture in make_train_ref.py's format (case.json, model.onnx, x.npy, y.npy,
expected/), so tests/test_train_e2e.c compiles it with `--loss model`, trains it and compares the per-step
losses and the exported weights with PyTorch's.

Run from the repo root:  /usr/bin/python3 tests/ref/make_loss_model_ref.py
(then make_train_ref.py's index, or this script's, lists the case)
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "ref", "train")
SAMPLES, BATCH, EPOCHS, FEATURES, CLASSES = 36, 8, 2, 8, 5


class Net(nn.Module):
    """Linear-ReLU-Linear whose forward(x, y) returns the loss."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(FEATURES, 16)
        self.fc2 = nn.Linear(16, CLASSES)
        self.register_buffer("class_weight", torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0]))

    def forward(self, x, y):
        logits = self.fc2(F.relu(self.fc1(x)))
        if self.kind == "sce":
            return F.cross_entropy(logits, y, weight=self.class_weight, ignore_index=-100)
        # not F.log_softmax: the exporter would fuse it with nll_loss into SoftmaxCrossEntropyLoss
        return F.nll_loss(logits - torch.logsumexp(logits, 1, keepdim=True), y, reduction="sum")


def make_case(name, kind, optimizer, lr, desc):
    torch.manual_seed(7 if kind == "sce" else 8)
    net = Net(kind)
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "expected"), exist_ok=True)
    model = os.path.join(d, "model.onnx")
    x = torch.randn(SAMPLES, FEATURES)
    y = torch.randint(0, CLASSES, (SAMPLES,))
    if kind == "sce":
        y[[3, 17, 33]] = -100   # ignored, as nn.CrossEntropyLoss's default ignore_index
    torch.onnx.export(net, (x[:BATCH], y[:BATCH]), model, input_names=["x", "y"], output_names=["loss"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=13)
    np.save(os.path.join(d, "x.npy"), x.numpy())
    np.save(os.path.join(d, "y.npy"), y.numpy())

    # train in float64 (the reference), from the exported float32 weights
    ref = Net(kind).double()
    ref.load_state_dict({k: v.double() for k, v in net.state_dict().items()})
    params = [ref.fc1.weight, ref.fc1.bias, ref.fc2.weight, ref.fc2.bias]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9) if optimizer == "sgd" else torch.optim.Adam(params, lr=lr)
    losses, sizes = [], []
    for _ in range(EPOCHS):
        for i0 in range(0, SAMPLES, BATCH):
            xb, yb = x[i0:i0 + BATCH].double(), y[i0:i0 + BATCH]
            opt.zero_grad()
            loss = ref(xb, yb)
            loss.backward()
            opt.step()
            losses.append(float(loss))
            sizes.append(len(yb))
    expected = {}
    for pname in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]:
        path = os.path.join("tests", "ref", "train", name, "expected", pname + ".npy")
        np.save(os.path.join(ROOT, path), dict(ref.named_parameters())[pname].detach().float().numpy())
        expected[pname] = path
    rel = os.path.join("tests", "ref", "train", name)
    case = {
        "case": name,
        "description": desc,
        "model": os.path.join(rel, "model.onnx"),
        "compile_args": ["--train", "*", "--head", "none", "--loss", "model", "--optimizer", optimizer] +
                        (["--momentum", "0.9"] if optimizer == "sgd" else []) +
                        ["--weight-decay", "0.0", "--lr-schedule", "constant"],
        "run_args": ["--train-x", os.path.join(rel, "x.npy"), "--train-y", os.path.join(rel, "y.npy"),
                     "--epochs", str(EPOCHS), "--batch", str(BATCH), "--lr", repr(lr), "--seed", "0",
                     "--no-shuffle"],
        "options": {"batch": BATCH},
        "cut": "/Relu_output_0",
        "trainable": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
        "bn_train_region": [],
        "init": {},
        "removed_initializers": [],
        "samples": SAMPLES, "batch": BATCH, "epochs": EPOCHS,
        "steps": len(losses), "batch_sizes": sizes,
        "losses": losses, "lrs": [lr] * len(losses),
        "expected": expected, "expected_buffers": {},
        "tolerance": {"loss_rel": 1e-4, "weight_rel": 1e-4, "weight_metric": "max"},
    }
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")


make_case("model_sce_sgd", "sce", "sgd", 0.1,
          "--loss model: F.cross_entropy(weight, ignore_index -100) inside the model, SGD momentum 0.9")
make_case("model_nll_adam", "nll", "adam", 0.01,
          "--loss model: x - logsumexp(x) + F.nll_loss(reduction sum) inside the model, Adam")
names = sorted(n for n in os.listdir(OUT) if os.path.isfile(os.path.join(OUT, n, "case.json")))
with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump({"cases": names}, f, indent=1)
    f.write("\n")
