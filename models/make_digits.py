"""make_digits.py - the fine-tuning demo's data and backbone, from sklearn's bundled digits set.

Pretrains a small CNN on digits 0-4 (seeded, CPU, seconds), exports it to
models/digits/digits_cnn.onnx with PyTorch references, and writes digits 5-9 (relabelled 0-4)
as NPY arrays and PNG folders for fine-tuning. Also measures what PyTorch reaches when
fine-tuning on 5-9, as a yardstick for the demo; it does not fine-tune anything that is saved.

Run: /usr/bin/python3 models/make_digits.py
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["5", "6", "7", "8", "9"]
SEED = 0
FT_EPOCHS = 30  # for the PyTorch fine-tuning yardsticks only


class DigitsCNN(nn.Module):
    """features.* is the backbone the demo freezes; classifier is the head it replaces."""

    def __init__(self, classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),   # features.0
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),  # features.2
            nn.MaxPool2d(2), nn.Flatten(),               # [N,32,4,4] -> [N,512]
            nn.Linear(512, 64), nn.ReLU())               # features.6
        self.classifier = nn.Linear(64, classes)

    def forward(self, x):  # x: [N,1,8,8] in [0,1] -> [N,classes] logits
        return self.classifier(self.features(x))


def train(model, x, y, epochs, lr, params=None, batch=32, seed=SEED):
    """Plain Adam on cross-entropy; `params` limits what is trained (default: everything)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return float(loss)


def accuracy(model, x, y):
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def to_png_bytes(img):
    """8-bit grayscale PNG of a [H,W] uint8 array, PIL if present else a minimal zlib writer."""
    try:
        from PIL import Image
        import io
        buf = io.BytesIO()
        Image.fromarray(img, mode="L").save(buf, format="PNG")
        return buf.getvalue()
    except ImportError:
        import struct
        import zlib

        def chunk(tag, data):
            body = tag + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
        h, w = img.shape
        raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))  # filter type 0 per row
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


def write_images(root, split, x, y):
    """x: [n,1,8,8] float in [0,1] -> <root>/<split>/<class>/NNNN.png, value round(255*x)."""
    counts = [0] * len(CLASSES)
    for img, label in zip(x, y):
        d = os.path.join(root, split, CLASSES[label])
        os.makedirs(d, exist_ok=True)
        pix = np.round(img[0] * 255.0).astype(np.uint8)
        with open(os.path.join(d, f"{counts[label]:04d}.png"), "wb") as f:
            f.write(to_png_bytes(pix))
        counts[label] += 1
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "digits"))
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)  # bitwise reproducible training
    out = args.out
    os.makedirs(out, exist_ok=True)

    d = load_digits()
    x_all = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y_all = d.target.astype(np.int64)

    # Pretraining on digits 0-4, with a held-out fifth to measure accuracy.
    lo = y_all < 5
    px_tr, px_te, py_tr, py_te = train_test_split(x_all[lo], y_all[lo], test_size=0.2,
                                                  random_state=SEED, stratify=y_all[lo])
    common.set_seed(SEED)
    model = DigitsCNN()
    t0 = time.time()
    pre_loss = train(model, px_tr, py_tr, epochs=args.epochs, lr=1e-3)
    pre_secs = time.time() - t0
    pre_tr, pre_te = accuracy(model, px_tr, py_tr), accuracy(model, px_te, py_te)
    print(f"pretrain 0-4: {len(px_tr)} train / {len(px_te)} test, {args.epochs} epochs "
          f"{pre_secs:.1f} s, train acc {pre_tr:.4f}, test acc {pre_te:.4f}")

    # Fine-tuning data: digits 5-9 relabelled 0-4, seeded stratified 80/20 split.
    hi = y_all >= 5
    fx_tr, fx_va, fy_tr, fy_va = train_test_split(x_all[hi], y_all[hi] - 5, test_size=0.2,
                                                  random_state=SEED, stratify=y_all[hi])
    for name, a in (("train_x", fx_tr), ("train_y", fy_tr), ("val_x", fx_va), ("val_y", fy_va)):
        common.save_npy(os.path.join(out, name + ".npy"), a)
    n_tr = write_images(os.path.join(out, "images"), "train", fx_tr, fy_tr)
    n_va = write_images(os.path.join(out, "images"), "val", fx_va, fy_va)

    # The backbone with references: the pretrained 0-4 logits on the first val images of 5-9.
    def make_inputs(batch):
        return (torch.from_numpy(fx_va[:batch].copy()),)
    info = common.export_with_refs(model, make_inputs, ["image"], ["logits"], out, [13],
                                   batches=(2, 3), model_file="digits_cnn.onnx")
    print(f"digits_cnn.onnx: {info['sizes'][13]} B, {info['params']} params, "
          f"batch symbolic: {info['symbolic'][13]}")

    # Yardsticks for the demo (not saved): PyTorch's val accuracy on 5-9 before and after
    # fine-tuning a fresh head on the frozen backbone, and after fine-tuning everything.
    zero_shot = accuracy(model, fx_va, fy_va)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    results = []
    for what, trained, lr in (("`classifier` only", ("classifier",), 1e-2),
                              ("`features.6` + `classifier`", ("features.6", "classifier"), 1e-3),
                              ("everything", ("",), 1e-3)):
        model.load_state_dict(state)
        torch.manual_seed(SEED + 1)
        model.classifier.reset_parameters()
        params = []
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(trained))
            if p.requires_grad:
                params.append(p)
        t0 = time.time()
        train(model, fx_tr, fy_tr, epochs=FT_EPOCHS, lr=lr, params=params, seed=SEED + 1)
        for p in model.parameters():
            p.requires_grad_(True)
        results.append((what, lr, accuracy(model, fx_va, fy_va), time.time() - t0))
        print(f"fine-tune {what} on 5-9: lr {lr:g}, val acc {results[-1][2]:.4f}")
    rows = "\n".join(f"| {w} | {lr:g} | {a:.4f} | {t:.1f} |" for w, lr, a, t in results)

    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(f"""# digits: the fine-tuning demo's backbone and data

Made by `/usr/bin/python3 models/make_digits.py` (seeded, deterministic, single CPU thread) from
scikit-learn's bundled `load_digits()` set: 1797 8x8 grayscale images, values 0..16, scaled to
[0,1] float32 as x/16, layout [N,1,8,8].

## Backbone: `digits_cnn.onnx` (opset 13, batch axis "N")

`features` = Conv(1,16,3,p1)-ReLU-Conv(16,32,3,p1)-ReLU-MaxPool(2)-Flatten-Linear(512,64)-ReLU,
`classifier` = Linear(64,5). Graph input `image` [N,1,8,8] float32, output `logits` [N,5].
Initializers keep PyTorch's names: `features.0.weight`, `features.0.bias`, `features.2.*`,
`features.6.*`, `classifier.weight` [5,64], `classifier.bias` [5]. {info['params']} parameters.

Pretrained on digits 0-4 only: {len(px_tr)} training images, {args.epochs} epochs of Adam (lr 1e-3,
batch 32), {pre_secs:.1f} s on one CPU thread. Final training loss {pre_loss:.4f}.

| digits 0-4 | images | accuracy |
|---|---|---|
| train | {len(px_tr)} | {pre_tr:.4f} |
| held-out test | {len(px_te)} | {pre_te:.4f} |

References (see `io.json`): `input_0.npy` = the first 2 images of `val_x.npy`, `output_0.npy` =
PyTorch's logits for them; `input_0_b3.npy`/`output_0_b3.npy` the same for the first 3.

## Fine-tuning data: digits 5-9, labels mapped 5..9 -> 0..4

Seeded stratified 80/20 split (`train_test_split(random_state={SEED})`).

- `train_x.npy` float32 {list(fx_tr.shape)}, `train_y.npy` int64 [{len(fy_tr)}]
- `val_x.npy` float32 {list(fx_va.shape)}, `val_y.npy` int64 [{len(fy_va)}]
- `images/{{train,val}}/<class>/NNNN.png`: the same images as 8x8 8-bit grayscale PNGs, class
  folders "5".."9" (folder k in sorted order = label k), pixel = round(255*x), so pixel/255
  differs from the NPY value by at most 1/510.
  Images per class "5".."9": train {n_tr}, val {n_va}.

## PyTorch yardsticks for the demo (not saved anywhere)

Val accuracy on digits 5-9 of the backbone plus a fresh `classifier` (seed {SEED + 1}), trained
{FT_EPOCHS} epochs with Adam (batch 32) on `train_x`/`train_y`, the rest frozen. The untouched
pretrained model (0-4 head, labels mismatched) scores {zero_shot:.4f}.

| what is trained | lr | val accuracy | seconds |
|---|---|---|---|
{rows}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
