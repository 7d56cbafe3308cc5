#!/usr/bin/python3
"""make_textcls.py - the text-classification demo's encoder and data (models/textcls/).

A BERT-style encoder (HuggingFace's module names: embeddings.*, encoder.layer.K.attention.self.query,
...) pretrained on a synthetic token task and exported with torch.onnx.export, inputs input_ids and
attention_mask; plus the data of a second, sequence-level task to fine-tune it on:

  pretraining (per token): does this token occur elsewhere in the sequence? 2 classes per token, the
      model's output logits [N,T,2] (a token classifier, replaced by onnxtune's --head).
  fine-tuning (per sequence): how many distinct tokens repeat: none, one, two or more? 3 classes.

Sequences: token 1 (a [CLS]-like start) then 7..31 tokens from 2..63, padded with 0 to T = 32;
attention_mask 1 on the tokens. Seeded, single CPU thread; reruns give the same files.
Run: /usr/bin/python3 models/make_textcls.py   (about a minute)
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
from make_small import BertEmbeddings, BertEncoder, pool_hidden  # noqa: E402

OUT = os.path.join(HERE, "textcls")
VOCAB, T, D, HEADS, FF, LAYERS = 64, 32, 64, 4, 128, 2


class TextEncoder(nn.Module):
    """BertModel's shape in small: embeddings (word, position, LayerNorm), 2 post-LN layers with an
    additive mask (1 - attention_mask) * -10000, and the pretraining task's token classifier."""

    def __init__(self):
        super().__init__()
        self.embeddings = BertEmbeddings(VOCAB, D, T)
        self.encoder = BertEncoder(D, HEADS, FF, LAYERS)
        self.classifier = nn.Linear(D, 2)
        self.pool = None  # the PyTorch yardstick's fine-tuning: pooled hidden states, new classifier

    def forward(self, input_ids, attention_mask):
        ext = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        h = self.encoder(self.embeddings(input_ids), ext)
        if self.pool is not None:
            h = pool_hidden(h, attention_mask, self.pool)
        return self.classifier(h)


def sequences(n, g, repeats):
    """n padded sequences; repeats(i) -> how many distinct tokens to repeat in sequence i."""
    ids = torch.zeros(n, T, dtype=torch.int64)
    mask = torch.zeros(n, T, dtype=torch.int64)
    for i in range(n):
        length = int(torch.randint(8, T + 1, (1,), generator=g))
        body = torch.randperm(VOCAB - 2, generator=g)[:length - 1] + 2  # distinct tokens
        k = repeats(i)   # tokens 0..k-1 copied to k distinct later places: k repeated tokens
        dst = torch.randperm(length - 1 - k, generator=g)[:k] + k
        body[dst] = body[:k].clone()
        ids[i, 0] = 1
        ids[i, 1:length] = body
        mask[i, :length] = 1
    return ids, mask


def token_labels(ids, mask):
    """1 where the token occurs elsewhere among the sequence's tokens (the start token never)."""
    same = (ids[:, :, None] == ids[:, None, :]) & (mask[:, None, :] == 1)
    count = same.sum(2) - 1
    return ((count > 0) & (mask == 1) & (ids > 1)).long()


def seq_labels(ids, mask):
    """0, 1 or 2: distinct tokens that repeat (2: two or more)."""
    out = []
    for row, m in zip(ids, mask):
        toks = row[(m == 1) & (row > 1)].tolist()
        rep = sum(1 for t in set(toks) if toks.count(t) > 1)
        out.append(min(rep, 2))
    return torch.tensor(out, dtype=torch.int64)


def pretrain(model, g):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    model.train()
    for step in range(1500):
        ids, mask = sequences(64, g, lambda i: int(torch.randint(0, 4, (1,), generator=g)))
        y = token_labels(ids, mask)
        z = model(ids, mask)
        loss = F.cross_entropy(z[mask == 1], y[mask == 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 300 == 0 or step == 1499:
            print(f"pretrain step {step}: loss {float(loss):.4f}", flush=True)
    model.eval()
    ids, mask = sequences(1000, g, lambda i: int(torch.randint(0, 4, (1,), generator=g)))
    with torch.no_grad():
        pred = model(ids, mask).argmax(2)
    y = token_labels(ids, mask)
    return float((pred == y)[mask == 1].float().mean())


def finetune_yardstick(model, data, pool, epochs, lr):
    """PyTorch doing what demo.sh asks of onnxtune: last layer + a new Linear(64, 3) on pooled
    hidden states, AdamW, batch 32, shuffled; returns the validation accuracy per epoch."""
    import copy
    m = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    m.pool, m.classifier = pool, nn.Linear(D, 3)
    for name, p in m.named_parameters():
        p.requires_grad_(name.startswith("encoder.layer.1.") or name.startswith("classifier."))
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    (xi, xm, y), (vi, vm, vy) = data
    accs = []
    for _ in range(epochs):
        m.train()
        perm = torch.randperm(len(y), generator=g)
        for at in range(0, len(y), 32):
            b = perm[at:at + 32]
            loss = F.cross_entropy(m(xi[b], xm[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            accs.append(float((m(vi, vm).argmax(1) == vy).float().mean()))
    return accs


def main():
    torch.set_num_threads(1)
    common.set_seed(11)
    g = torch.Generator().manual_seed(11)
    model = TextEncoder()
    acc = pretrain(model, g)
    print(f"pretraining task, 1000 new sequences: token accuracy {acc:.4f}")
    os.makedirs(OUT, exist_ok=True)

    def make_inputs(batch):
        return sequences(batch, torch.Generator().manual_seed(100 + batch), lambda i: i % 3)
    common.clean_refs(OUT)
    info = common.export_with_refs(model, make_inputs, ["input_ids", "attention_mask"], ["logits"], OUT,
                                   [17], batches=(2,))
    if info["errors"]:
        raise SystemExit(f"export failed: {info['errors']}")

    # the fine-tuning task: balanced classes 0, 1, 2
    dg = torch.Generator().manual_seed(12)
    splits = {}
    for name, n in (("train", 1500), ("val", 300)):
        ids, mask = sequences(n, dg, lambda i: [0, 1, 2 + int(torch.randint(0, 2, (1,), generator=dg))][i % 3])
        y = seq_labels(ids, mask)
        splits[name] = (ids, mask, y)
        np.savez_compressed(os.path.join(OUT, f"{name}.npz"), input_ids=ids.numpy(),
                            attention_mask=mask.numpy(), y=y.numpy())
        if name == "val":   # also one .npy per input, for --x NAME=FILE.npy
            for k, v in (("input_ids", ids), ("attention_mask", mask), ("y", y)):
                np.save(os.path.join(OUT, f"val_{k}.npy"), v.numpy())
        print(f"{name}.npz: {n} sequences, classes {torch.bincount(y, minlength=3).tolist()}")
    ref = {"pretraining_token_accuracy": acc}
    for pool in ("mean", "cls"):
        accs = finetune_yardstick(model, (splits["train"], splits["val"]), pool, 20, 3e-3)
        ref[f"pytorch_val_accuracy_{pool}"] = accs
        print(f"PyTorch yardstick, --pool {pool}: val accuracy by epoch "
              + " ".join(f"{a:.3f}" for a in accs))
    with open(os.path.join(OUT, "yardstick.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
