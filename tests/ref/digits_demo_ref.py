"""digits_demo_ref.py - what PyTorch reaches with the settings of models/digits/demo.sh, the yardstick
for `make demo` ("within one point of PyTorch doing the same").

The demo fine-tunes models/digits/digits_cnn.onnx on digits 5-9: backbone frozen, a new head
Linear(64, 5), cross-entropy, Adam lr 0.01, batch 32 (last batch 12), 30 epochs, seed 1, validation on
val_x/val_y after every epoch. Two PyTorch runs of that recipe:
  replica: the head initialised and the data shuffled exactly as onnxtune does (splitmix64 head init of
           ir/pass_head.c, Fisher-Yates shuffles of program/trainer.c), so the two runs see the same
           numbers in the same order and should agree to float rounding;
  native:  torch's own init (nn.Linear after torch.manual_seed(seed)) and shuffling (torch.randperm
           with a Generator seeded `seed`): how far another draw of the same recipe lands.
Prints the validation accuracy per epoch of both and the final ones. Nothing is written.
--images: the data as the demo reads it, models/digits/images/{train,val} through torchvision's
ImageFolder with Grayscale(), Resize((8, 8)), ToTensor() (the trainer's defaults for an [N,1,8,8] input),
instead of train_x.npy/val_x.npy (x/16; the PNGs hold round(255 x), so inputs differ by up to 1/510).

Run: /usr/bin/python3 tests/ref/digits_demo_ref.py [--epochs 30] [--lr 0.01] [--batch 32] [--seed 1] [--images]
"""
import argparse
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO, "models", "digits")
MASK64 = (1 << 64) - 1


def splitmix64(state):
    """One draw; returns (value, new state) (Steele, Lea, Flood 2014; as ir/pass_head.c)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31), state


def onnxtune_linear_init(out_f, in_f, seed):
    """pass_head's nn.Linear-like init: weight (row-major) then bias from one stream,
    u = (r >> 40) * 2^-24, value = float32((2u - 1) * bound), bound = 1/sqrt(in)."""
    bound = 1.0 / math.sqrt(in_f)
    state = seed
    vals = []
    for _ in range(out_f * in_f + out_f):
        r, state = splitmix64(state)
        u = (r >> 40) * 2.0 ** -24
        vals.append((2.0 * u - 1.0) * bound)
    v = np.array(vals, dtype=np.float32)
    return v[:out_f * in_f].reshape(out_f, in_f), v[out_f * in_f:]


def onnxtune_shuffle(n, seed, epoch):
    """program/trainer.c: Fisher-Yates, j = splitmix64() % (i + 1), stream seeded seed * 2^20 + epoch."""
    order = list(range(n))
    state = ((seed << 20) + epoch) & MASK64
    for i in range(n - 1, 0, -1):
        r, state = splitmix64(state)
        j = r % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


class Backbone(nn.Module):
    """models/make_digits.py's DigitsCNN.features, weights from the ONNX file."""

    def __init__(self, inits):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 64), nn.ReLU())
        with torch.no_grad():
            for name, p in self.features.named_parameters():
                p.copy_(torch.from_numpy(inits["features." + name]))
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self.features(x)


def image_folder(path):
    """x float32 [N,1,8,8], y int64 [N] as ImageFolder + Grayscale + Resize((8, 8)) + ToTensor give them."""
    from torchvision import datasets, transforms
    ds = datasets.ImageFolder(path, transforms.Compose([transforms.Grayscale(), transforms.Resize((8, 8)),
                                                        transforms.ToTensor()]))
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs).numpy(), np.array(ys, dtype=np.int64)


def run(backbone, head, x, y, vx, vy, args, order_of_epoch):
    opt = torch.optim.Adam(head.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt, vxt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(vx)
    with torch.no_grad():
        feats, vfeats = backbone(xt), backbone(vxt)   # frozen: the same features every epoch
    accs = []
    for e in range(1, args.epochs + 1):
        order = torch.as_tensor(order_of_epoch(e))
        for i in range(0, len(xt), args.batch):
            idx = order[i:i + args.batch]
            opt.zero_grad()
            loss = loss_fn(head(feats[idx]), yt[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            accs.append(float((head(vfeats).argmax(1).numpy() == vy).mean()))
    return accs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--images", action="store_true", help="read models/digits/images as ImageFolder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = onnx.load(os.path.join(DIGITS, "digits_cnn.onnx"))
    inits = {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}
    x, y = np.load(os.path.join(DIGITS, "train_x.npy")), np.load(os.path.join(DIGITS, "train_y.npy"))
    vx, vy = np.load(os.path.join(DIGITS, "val_x.npy")), np.load(os.path.join(DIGITS, "val_y.npy"))
    if args.images:
        x, y = image_folder(os.path.join(DIGITS, "images", "train"))
        vx, vy = image_folder(os.path.join(DIGITS, "images", "val"))
    backbone = Backbone(inits).eval()

    head = nn.Linear(64, 5)
    w, b = onnxtune_linear_init(5, 64, args.seed)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w))
        head.bias.copy_(torch.from_numpy(b))
    replica = run(backbone, head, x, y, vx, vy, args, lambda e: onnxtune_shuffle(len(x), args.seed, e))

    torch.manual_seed(args.seed)
    head = nn.Linear(64, 5)
    g = torch.Generator().manual_seed(args.seed)
    native = run(backbone, head, x, y, vx, vy, args, lambda e: torch.randperm(len(x), generator=g).tolist())

    print("epoch  replica  native   (val accuracy, %d images)" % len(vy))
    for e in range(args.epochs):
        print("%5d  %.4f   %.4f" % (e + 1, replica[e], native[e]))
    print("PyTorch after %d epochs: replica %.4f, native %.4f" % (args.epochs, replica[-1], native[-1]))


if __name__ == "__main__":
    sys.exit(main())
