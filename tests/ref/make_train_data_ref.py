#!/usr/bin/python3
"""make_train_data_ref.py - references for tests/test_train_data.c (the trainer's data, evaluation and export
options), written to tests/ref/train_data/. Deterministic; run with Debian's /usr/bin/python3 (PIL 9.4,
numpy 1.24, onnx 1.12):

    /usr/bin/python3 tests/ref/make_train_data_ref.py

- digits_png_train.npz, digits_png_val.npz (np.savez_compressed: deflated members, keys x and y):
  models/digits/images/{train,val} read as torchvision's ImageFolder + PIL + ToTensor would (classes =
  sorted folder names, files sorted, convert("L"), pixel / 255 as float32, [N,1,8,8]). Training on the
  image folders must give exactly the losses of training on these arrays.
- digits_val.npz (np.savez: stored members): models/digits/val_x.npy and val_y.npy as x and y.
- linear8.onnx: logits = x @ I + 0 (Gemm, 8 features, 8 classes), input "x" [N,8], output "logits".
- topk_x.npy / topk_y.npy and topk.json: inputs whose logits are themselves, with accuracy, top-5 and
  the confusion matrix worked out here (argmax = first maximum; a label's rank counts the classes
  scoring higher and the tied ones of lower index).
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(ROOT))
OUT = os.path.join(ROOT, "train_data")


def image_folder(path):
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    xs, ys = [], []
    for k, c in enumerate(classes):
        for name in sorted(os.listdir(os.path.join(path, c))):
            with Image.open(os.path.join(path, c, name)) as im:
                a = np.asarray(im.convert("L"), dtype=np.uint8)
            xs.append((a.astype(np.float32) / np.float32(255))[None])
            ys.append(k)
    return np.stack(xs).astype(np.float32), np.array(ys, dtype=np.int64), classes


def main():
    os.makedirs(OUT, exist_ok=True)
    images = os.path.join(REPO, "models", "digits", "images")
    xt, yt, ct = image_folder(os.path.join(images, "train"))
    xv, yv, cv = image_folder(os.path.join(images, "val"))
    assert ct == cv == ["5", "6", "7", "8", "9"], (ct, cv)
    assert xt.shape == (716, 1, 8, 8) and xv.shape == (180, 1, 8, 8)
    np.savez_compressed(os.path.join(OUT, "digits_png_train.npz"), x=xt, y=yt)
    np.savez_compressed(os.path.join(OUT, "digits_png_val.npz"), x=xv, y=yv)
    digits = os.path.join(REPO, "models", "digits")
    np.savez(os.path.join(OUT, "digits_val.npz"), x=np.load(os.path.join(digits, "val_x.npy")),
             y=np.load(os.path.join(digits, "val_y.npy")))

    w = np.eye(8, dtype=np.float32)
    b = np.zeros(8, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["logits"], transB=1)], "linear8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor("fc.weight", TensorProto.FLOAT, [8, 8], w.flatten()),
         helper.make_tensor("fc.bias", TensorProto.FLOAT, [8], b)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_train_data_ref")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, "linear8.onnx"))

    rng = np.random.RandomState(5)
    n, k = 37, 8
    x = rng.randint(-3, 4, size=(n, k)).astype(np.float32)     # small integers: many ties
    y = rng.randint(0, k, size=n).astype(np.int64)
    x[0] = 0
    y[0] = 6                                                  # all tied: rank 6, argmax 0
    x[1] = np.arange(k)
    y[1] = 2                                                  # rank 5: outside the top 5
    x[2] = np.arange(k)
    y[2] = 3                                                  # rank 4: inside
    argmax = x.argmax(1)                                      # numpy: the first maximum
    rank = np.array([(x[i] > x[i, y[i]]).sum() + (x[i, :y[i]] == x[i, y[i]]).sum() for i in range(n)])
    conf = np.zeros((k, k), dtype=np.int64)
    for i in range(n):
        conf[y[i], argmax[i]] += 1
    z = x.astype(np.float64)
    p = z - z.max(1, keepdims=True)
    loss = float(np.mean(np.log(np.exp(p).sum(1)) - p[np.arange(n), y]))
    np.save(os.path.join(OUT, "topk_x.npy"), x)
    np.save(os.path.join(OUT, "topk_y.npy"), y)
    with open(os.path.join(OUT, "topk.json"), "w") as f:
        json.dump({"samples": n, "accuracy": float((argmax == y).mean()), "top5": float((rank < 5).mean()),
                   "loss": loss, "confusion": conf.tolist()}, f, indent=1)
        f.write("\n")
    print("wrote", OUT, "accuracy", (argmax == y).mean(), "top5", (rank < 5).mean())


if __name__ == "__main__":
    main()
