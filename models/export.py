"""export.py - exports the model zoo (torchvision CNNs, a small ViT, text models) to build/zoo/.

Random weights with a fixed seed (no downloads), BN running stats calibrated on random data,
eval mode. Each model goes to <out>/<name>/ with model.onnx (first opset), model_opset<K>.onnx
(the others), io.json, input_0.npy (batch 2) and output_0.npy (PyTorch's output, the reference).
The zoo is big and NOT committed. One model failing is reported and the rest still run.

Run: /usr/bin/python3 models/export.py [--out DIR] [--only resnet18,lstm] [--opset 13,17]
"""
import argparse
import os
import sys
import time
import traceback

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from make_small import RNNClassifier, TextTransformer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TV = torchvision.models


def image_inputs(size, seed):
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        return (torch.randn((batch, 3, size, size), generator=g),)
    return make


def token_inputs(seq, vocab, seed):
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        return (torch.randint(0, vocab, (batch, seq), generator=g, dtype=torch.int64),)
    return make


def tv(builder, **kw):
    """A torchvision ImageNet classifier, random init, input [N,3,224,224]."""
    return lambda: (builder(weights=None, **kw), image_inputs(224, 7), ["image"], ["logits"])


def vit_small():
    m = TV.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                             hidden_dim=32, mlp_dim=64, num_classes=10)
    return m, image_inputs(32, 8), ["image"], ["logits"]


def text_transformer():
    m = TextTransformer(vocab=1000, d_model=64, nhead=4, ff=128, layers=2, classes=4)
    return m, token_inputs(32, 1000, 9), ["tokens"], ["logits"]


def rnn(cell):
    m = RNNClassifier(cell, vocab=1000, emb=32, hidden=64, classes=5)
    return lambda: (m, token_inputs(20, 1000, 10), ["tokens"], ["logits"])


ZOO = {
    "resnet18": tv(TV.resnet18),
    "mobilenet_v2": tv(TV.mobilenet_v2),
    "mobilenet_v3_small": tv(TV.mobilenet_v3_small),
    "squeezenet1_1": tv(TV.squeezenet1_1),
    "shufflenet_v2_x0_5": tv(TV.shufflenet_v2_x0_5),
    "efficientnet_b0": tv(TV.efficientnet_b0),
    "densenet121": tv(TV.densenet121),
    "googlenet": tv(TV.googlenet, aux_logits=False, init_weights=True),
    "convnext_tiny": tv(TV.convnext_tiny),
    "vit_small": vit_small,
    "text_transformer": text_transformer,
    "lstm_classifier": rnn("lstm"),
    "gru_classifier": rnn("gru"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(REPO, "build", "zoo"))
    ap.add_argument("--only", default="", help="comma-separated names: " + ",".join(ZOO))
    ap.add_argument("--opset", default="13,17", help="comma-separated opsets (first: model.onnx)")
    ap.add_argument("--fuse-bn", action="store_true",
                    help="let the exporter fold BatchNormalization into Conv (default: keep BN)")
    ap.add_argument("--no-batch-check", action="store_true",
                    help="skip re-tracing at batch 3 to check the batch axis is symbolic")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(ZOO)
    opsets = [int(s) for s in args.opset.split(",") if s]
    torch.set_num_threads(os.cpu_count() or 1)

    rows, failed = [], []
    for name in names:
        if name not in ZOO:
            print(f"{name}: unknown model (have {', '.join(ZOO)})", flush=True)
            failed.append(name)
            continue
        print(f"== {name}", flush=True)
        try:
            common.set_seed(1234)
            model, make_inputs, in_names, out_names = ZOO[name]()
            common.make_params_distinct(model, seed=1234)
            common.calibrate_batchnorm(model, lambda: make_inputs(4)[0] * 1.5 + 0.2, steps=2)
            outdir = os.path.join(args.out, name)
            common.clean_refs(outdir)
            info = common.export_with_refs(model, make_inputs, in_names, out_names, outdir,
                                           opsets, batches=(2,), keep_bn=not args.fuse_bn,
                                           check_batch=not args.no_batch_check)
        except Exception:
            print(f"{name}: FAILED\n{traceback.format_exc()}", flush=True)
            failed.append(name)
            continue
        for opset in opsets:
            if opset in info["errors"]:
                print(f"{name}: opset {opset} FAILED: {info['errors'][opset]}", flush=True)
                failed.append(f"{name}@{opset}")
                rows.append((name, opset, info["params"], None, None, None))
                continue
            sym = info["symbolic"].get(opset)
            if sym is False:
                print(f"{name}: opset {opset}: the graph depends on the batch size", flush=True)
                failed.append(f"{name}@{opset}")
            rows.append((name, opset, info["params"], info["sizes"][opset],
                         info["seconds"][opset], sym))
        del model

    print()
    print(f"{'model':20s} {'opset':>5s} {'params':>11s} {'onnx MB':>9s} {'export s':>9s}  batch N")
    for name, opset, params, size, secs, sym in rows:
        if size is None:
            print(f"{name:20s} {opset:5d} {params:11,d} {'FAILED':>9s}")
            continue
        symtxt = {True: "symbolic", False: "BAKED IN", None: "unchecked"}[sym]
        print(f"{name:20s} {opset:5d} {params:11,d} {size / 1e6:9.2f} {secs:9.2f}  {symtxt}")
    if failed:
        print("FAILED:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
