#!/usr/bin/python3
"""make_stream_if_ref.py - issue 12's model: a voice-activity-detector-like GRU cell scripted with
torch.jit.script, whose loop over time holds a nested `if` (taken by a flag input, then by the model's own
score of its state), exported with its state as an explicit input and output (Loop with If inside), for
tests/test_stream.c and tests/test_stream_ort.sh. Written to tests/ref/stream/:

  vad.onnx   (x [T,1,4], flag bool [], h0 [1,6]) -> (y [T,1,1] scores, hn [1,6]); T dynamic
  vad_x.npy  16 steps; vad_h0.npy a random state; vad_y_on.npy, vad_hn_on.npy PyTorch's outputs over all
             16 steps at once with flag true; vad_y_off.npy, vad_hn_off.npy with flag false

Deterministic (seeded, one thread); run with /usr/bin/python3 (torch 1.13)."""
import os
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream")


class Vad(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wx = torch.nn.Linear(4, 18)     # a GRU cell by hand (aten::gru_cell does not export)
        self.wh = torch.nn.Linear(6, 18)
        self.head = torch.nn.Linear(6, 1)
        self.alt = torch.nn.Linear(6, 6)

    def forward(self, x, flag, h):
        y = torch.zeros(x.size(0), x.size(1), 1)
        for t in range(x.size(0)):
            gx, gh = self.wx(x[t]), self.wh(h)
            r = torch.sigmoid(gx[:, 0:6] + gh[:, 0:6])
            z = torch.sigmoid(gx[:, 6:12] + gh[:, 6:12])
            n = torch.tanh(gx[:, 12:18] + r * gh[:, 12:18])
            h = (1 - z) * n + z * h
            if bool(flag):
                score = self.head(h).sum()
                if bool(score > 0):          # speech: refresh the state
                    h = torch.tanh(self.alt(h))
                else:                        # silence: let it decay
                    h = h * 0.5
            y[t] = torch.sigmoid(self.head(h))
        return y, h


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a.detach().numpy()))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    m = torch.jit.script(Vad().eval())
    x = torch.randn(16, 1, 4) * 2
    h0 = torch.randn(1, 6)
    on = torch.tensor(True)
    torch.onnx.export(m, (x, on, h0), os.path.join(OUT, "vad.onnx"), input_names=["x", "flag", "h0"],
                      output_names=["y", "hn"], dynamic_axes={"x": {0: "T"}, "y": {0: "T"}}, opset_version=14)
    save("vad_x", x)
    save("vad_h0", h0)
    with torch.no_grad():
        # both inner branches must be taken with the flag on, or the test would not check the inner If
        v, h, signs = m, h0, set()
        for t in range(x.size(0)):
            gx, gh = v.wx(x[t]), v.wh(h)
            r = torch.sigmoid(gx[:, 0:6] + gh[:, 0:6])
            z = torch.sigmoid(gx[:, 6:12] + gh[:, 6:12])
            h = (1 - z) * torch.tanh(gx[:, 12:18] + r * gh[:, 12:18]) + z * h
            up = bool(v.head(h).sum() > 0)
            signs.add(up)
            h = torch.tanh(v.alt(h)) if up else h * 0.5
        assert signs == {True, False}, signs
        for name, f in (("on", True), ("off", False)):
            y, hn = m(x, torch.tensor(f), h0)
            save("vad_y_" + name, y)
            save("vad_hn_" + name, hn)
            np.save(os.path.join(OUT, "vad_flag_%s.npy" % name), np.array(f))


if __name__ == "__main__":
    main()
