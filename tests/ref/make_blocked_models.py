#!/usr/bin/python3
"""make_blocked_models.py - the small CNNs tests/test_blocked.c compiles with and without the blocked
layout (codegen/layout.c) and compares with PyTorch: tests/blocked/<name>.onnx, <name>_x.npy (input,
batch 2) and <name>_y.npy (PyTorch's output). resnet: residual blocks, MaxPool, a downsample, an
unfused Sigmoid/Add/Mul on conv outputs, GlobalAveragePool. mobilenet: depthwise convs, ReLU6 (Clip),
an inverted residual. odd: channel counts that are not multiples of 8 next to ones that are, and a
conv output that is also a graph output. Run with /usr/bin/python3 (torch 1.13); deterministic."""
import os

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "blocked")


def cbr(cin, cout, k=3, s=1, groups=1, act=nn.ReLU):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class Block(nn.Module):
    def __init__(self, cin, cout, s):
        super().__init__()
        self.a, self.b = cbr(cin, cout, 3, s), cbr(cout, cout, 3, 1, act=None)
        self.down = cbr(cin, cout, 1, s, act=None) if s != 1 or cin != cout else None

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + (self.down(x) if self.down else x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.pool = cbr(3, 16, 3, 2), nn.MaxPool2d(3, 2, 1)
        self.l1, self.l2 = Block(16, 16, 1), Block(16, 32, 2)
        self.c1, self.c2 = nn.Conv2d(32, 32, 3, 1, 1), nn.Conv2d(32, 32, 1)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = self.l2(self.l1(self.pool(self.stem(x))))
        x = (torch.relu(self.c1(x)) + torch.sigmoid(self.c2(x))) * 0.5   # elementwise on blocked values
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Inverted(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        h = cin * t
        self.body = nn.Sequential(cbr(cin, h, 1, act=nn.ReLU6), cbr(h, h, 3, s, groups=h, act=nn.ReLU6),
                                  cbr(h, cout, 1, act=None))
        self.res = s == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.res else self.body(x)


class MobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(cbr(3, 16, 3, 2, act=nn.ReLU6), Inverted(16, 16, 1, 3), Inverted(16, 24, 2, 6),
                               Inverted(24, 24, 1, 4), cbr(24, 64, 1, act=nn.ReLU6))
        self.fc = nn.Linear(64, 5)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.f(x), 1), 1))


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.pool, self.b = cbr(3, 12), nn.MaxPool2d(2), cbr(12, 20)
        self.c, self.d, self.e = cbr(20, 16), cbr(16, 16), cbr(16, 24)

    def forward(self, x):
        f = self.d(self.c(self.b(self.pool(self.a(x)))))
        return f, nn.functional.adaptive_avg_pool2d(self.e(f), 1)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for name, model, outs in (("resnet", ResNet(), ["y"]), ("mobilenet", MobileNet(), ["y"]),
                              ("odd", Odd(), ["f", "y"])):
        model.eval()
        for m in model.modules():   # BN statistics that are not the identity
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        x = torch.randn(2, 3, 32, 32)
        path = os.path.join(OUT, name + ".onnx")
        torch.onnx.export(model, (x,), path, input_names=["x"], output_names=outs, opset_version=13,
                          dynamic_axes={"x": {0: "N"}, **{o: {0: "N"} for o in outs}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        with torch.no_grad():
            ys = model(x)
        ys = ys if isinstance(ys, tuple) else (ys,)
        np.save(os.path.join(OUT, name + "_x.npy"), x.numpy())
        for o, y in zip(outs, ys):
            np.save(os.path.join(OUT, f"{name}_{o}.npy"), y.numpy())


if __name__ == "__main__":
    main()
