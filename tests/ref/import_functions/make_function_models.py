#!/usr/bin/python3
"""make_function_models.py - exports one PyTorch model twice: with its two Block modules as ONNX
model-local functions (export_modules_as_functions) and plainly. tests/test_import_pytorch.c checks
that the importer's inlining of the first gives the second. Run with /usr/bin/python3 (PyTorch 1.13);
the two small .onnx files are committed.
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.ln = torch.nn.LayerNorm(8)

    def forward(self, x):
        return torch.relu(self.ln(self.fc(x))) + x


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.b1, self.b2 = Block(), Block()
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.b2(self.b1(x)))


def main():
    torch.manual_seed(0)
    net, x = Net().eval(), torch.randn(2, 8)
    torch.onnx.export(net, x, os.path.join(HERE, "functions.onnx"), opset_version=15,
                      export_modules_as_functions={Block})
    torch.onnx.export(net, x, os.path.join(HERE, "plain.onnx"), opset_version=15)


if __name__ == "__main__":
    main()
