#!/usr/bin/python3
"""make_stream_ref.py - recurrent models exported with their state as an explicit input and output, for
streaming with --state (tests/test_stream.c), written to tests/ref/stream/:

  gru.onnx   nn.GRU(3, 5), batch_first=False: (x [T,2,3], h0 [1,2,5]) -> (y [T,2,5], hn [1,2,5]);
             gru_dynbatch.onnx the same with the batch dynamic too
  lstm.onnx  nn.LSTM(3, 4, num_layers=2, batch_first=True):
             (x [2,T,3], h0 [2,2,4], c0 [2,2,4]) -> (y [2,T,4], hn [2,2,4], cn [2,2,4])

T is a dynamic axis. split.onnx (SplitToSequence, a sequence output) checks that programs refuse
sequence outputs. x.npy has 12 steps; h0.npy (and c0.npy) a random initial state. The references are
PyTorch's outputs for the whole sequence at once, from the given state (`*_h0`) and from zeros, i.e. the
module called without a state (`*_zero`). Deterministic (seeded, one thread); run with /usr/bin/python3
(torch 1.13)."""
import os
import numpy as np
import onnx
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream")


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a.detach().numpy().astype(np.float32)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    T = 12

    gru = torch.nn.GRU(3, 5).eval()
    x = torch.randn(T, 2, 3)
    h0 = torch.randn(1, 2, 5)
    torch.onnx.export(gru, (x, h0), os.path.join(OUT, "gru.onnx"), input_names=["x", "h0"],
                      output_names=["y", "hn"], dynamic_axes={"x": {0: "T"}, "y": {0: "T"}}, opset_version=14)
    save("gru_x", x)
    save("gru_x4", x[:4])               # one chunk: fixes T when compiling a program for chunks of 4
    save("gru_h0", h0)
    with torch.no_grad():
        y, hn = gru(x, h0)
        save("gru_y_h0", y)
        save("gru_hn_h0", hn)
        y, hn = gru(x)                  # PyTorch's default state: zeros
        save("gru_y_zero", y)
        save("gru_hn_zero", hn)
    # the same GRU with a dynamic batch: h0 [1,batch,5] takes its batch from x when it has no file
    torch.onnx.export(gru, (x, h0), os.path.join(OUT, "gru_dynbatch.onnx"), input_names=["x", "h0"],
                      output_names=["y", "hn"], opset_version=14,
                      dynamic_axes={"x": {0: "T", 1: "batch"}, "h0": {1: "batch"}, "y": {0: "T", 1: "batch"},
                                    "hn": {1: "batch"}})

    lstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True).eval()
    x = torch.randn(2, T, 3)
    h0, c0 = torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    torch.onnx.export(lstm, (x, (h0, c0)), os.path.join(OUT, "lstm.onnx"), input_names=["x", "h0", "c0"],
                      output_names=["y", "hn", "cn"], dynamic_axes={"x": {1: "T"}, "y": {1: "T"}},
                      opset_version=14)
    save("lstm_x", x)
    save("lstm_x3", x[:, :3])
    save("lstm_h0", h0)
    save("lstm_c0", c0)
    with torch.no_grad():
        y, (hn, cn) = lstm(x, (h0, c0))
        save("lstm_y_h0", y)
        save("lstm_hn_h0", hn)
        save("lstm_cn_h0", cn)

    # a sequence output: inference programs take and write tensors only, and must say so
    from onnx import helper, TensorProto
    g = helper.make_graph([helper.make_node("SplitToSequence", ["x"], ["pieces"], axis=0)], "split",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 2])],
                          [helper.make_tensor_sequence_value_info("pieces", TensorProto.FLOAT, [1, 2])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(OUT, "split.onnx"))


if __name__ == "__main__":
    main()
