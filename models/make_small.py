"""make_small.py - the small example models committed under models/<name>/, with PyTorch references.

Each model is randomly initialised with a fixed seed, exported with a symbolic batch axis "N",
and saved with inputs and PyTorch's eval-mode outputs at batch 2 (batch 4 for mlp;
input_K.npy/output_K.npy) and batch 3 (*_b3.npy). It trains nothing: the trained digits
backbone is make_digits.py's.

Run: /usr/bin/python3 models/make_small.py [--only mlp,cnn,...]
"""
import argparse
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_BYTES = 300 * 1024


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):  # x: [N,16] -> [N,10]
        return self.fc2(self.relu(self.fc1(x)))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(16, 10)

    def forward(self, x):  # x: [N,1,8,8] -> [N,10]
        return self.classifier(self.features(x))


class TextTransformer(nn.Module):
    """Token ids -> embedding -> TransformerEncoder -> mean over the sequence -> logits."""

    def __init__(self, vocab=50, d_model=16, nhead=2, ff=32, layers=2, classes=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=ff, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.classifier = nn.Linear(d_model, classes)

    def forward(self, tokens):  # tokens: [N,T] int64 -> [N,classes]
        return self.classifier(self.encoder(self.embedding(tokens)).mean(dim=1))


class RNNClassifier(nn.Module):
    """Token ids -> embedding -> LSTM/GRU -> last hidden state -> logits."""

    def __init__(self, cell, vocab=30, emb=8, hidden=12, classes=3):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](emb, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, tokens):  # tokens: [N,T] int64 -> [N,classes]
        _, h = self.rnn(self.embedding(tokens))
        if isinstance(h, tuple):  # LSTM returns (h_n, c_n)
            h = h[0]
        return self.classifier(h[-1])  # h: [layers,N,hidden]


def float_inputs(shape, seed, scale=1.0, shift=0.0):
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        return (torch.randn((batch,) + tuple(shape), generator=g) * scale + shift,)
    return make


def token_inputs(seq, vocab, seed):
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        return (torch.randint(0, vocab, (batch, seq), generator=g, dtype=torch.int64),)
    return make


def build_mlp():
    common.set_seed(1)
    return MLP(), float_inputs((16,), 1), ["x"], ["logits"], [13], (4, 3)


def build_cnn():
    common.set_seed(2)
    m = SmallCNN()
    common.make_params_distinct(m)
    # Non-trivial BN affine parameters and running stats, so the BN node actually matters.
    with torch.no_grad():
        for bn in (m.features[1], m.features[5]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.2)
    calib = float_inputs((1, 8, 8), 99, scale=2.0, shift=0.5)
    common.calibrate_batchnorm(m, lambda: calib(8)[0])
    return m, float_inputs((1, 8, 8), 2, scale=2.0, shift=0.5), ["image"], ["logits"], [13], (2, 3)


def build_transformer():
    common.set_seed(3)
    return TextTransformer(), token_inputs(7, 50, 3), ["tokens"], ["logits"], [17, 13], (2, 3)


def build_rnn(cell, seed):
    common.set_seed(seed)
    return RNNClassifier(cell), token_inputs(5, 30, seed), ["tokens"], ["logits"], [13], (2, 3)


MODELS = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "transformer": build_transformer,
    "lstm": lambda: build_rnn("lstm", 4),
    "gru": lambda: build_rnn("gru", 5),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--out", default=HERE, help="parent directory (default: models/)")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    failed = []
    for name in names:
        if name not in MODELS:
            print(f"{name}: unknown model (have {', '.join(MODELS)})")
            failed.append(name)
            continue
        model, make_inputs, in_names, out_names, opsets, batches = MODELS[name]()
        common.make_params_distinct(model)
        model.eval()
        outdir = os.path.join(args.out, name)
        common.clean_refs(outdir)
        info = common.export_with_refs(model, make_inputs, in_names, out_names, outdir, opsets,
                                       batches=batches)
        for opset, err in info["errors"].items():
            print(f"{name}: opset {opset} does not export: {err}")
        kept = list(info["files"])
        if not kept:
            failed.append(name)
            continue
        for opset in kept:
            size = info["sizes"][opset]
            sym = info["symbolic"].get(opset)
            print(f"{name:12s} opset {opset}  {info['files'][opset]:22s} {size:8d} B  "
                  f"params {info['params']:6d}  batch symbolic: {sym}")
            if size > MAX_BYTES:
                print(f"{name}: model is {size} bytes, over the {MAX_BYTES} limit")
                failed.append(name)
            if not sym:
                print(f"{name}: opset {opset} graph depends on the batch size")
                failed.append(name)
    if failed:
        print("FAILED:", ", ".join(sorted(set(failed))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
