"""common.py - helpers shared by make_small.py, make_digits.py and export.py.

Exports a PyTorch module to ONNX with a symbolic batch axis "N", writes the inputs and
PyTorch's own outputs as NPY files next to it and an io.json naming them. PyTorch's outputs
are the reference; nothing here runs the ONNX model.
"""
import io
import json
import os
import time
import warnings

import numpy as np
import onnx
import torch

BATCH_AXIS = "N"


def set_seed(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def calibrate_batchnorm(model, make_input, steps=4):
    """Give BatchNorm layers non-trivial running stats: a few train-mode forwards, then eval.
    Running stats become the plain average over the steps (momentum None), whatever momentum
    the model uses, so they match the data even for momentum 0.01 (EfficientNet, MobileNetV3)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if bns:
        saved = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        with torch.no_grad():
            for _ in range(steps):
                model(make_input())
        for bn, mom in zip(bns, saved):
            bn.momentum = mom
    model.eval()


def make_params_distinct(model, seed=0):
    """Perturb parameters that are constant (BN/LayerNorm ones and zeros, zero biases) or equal
    to an earlier one (nn.TransformerEncoder deep-copies its layer). torch.onnx.export merges
    initializers with equal values into one plus Identity nodes, which would tie parameters
    together in the exported model and make reference checks blind to mixed-up weights."""
    g = torch.Generator().manual_seed(seed)
    seen = set()
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1 and bool(p.min() == p.max()):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            elif p.detach().numpy().tobytes() in seen:
                std = float(p.std()) if p.numel() > 1 else 0.1
                p.copy_(torch.randn(p.shape, generator=g) * std)
            seen.add(p.detach().numpy().tobytes())


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def _to_numpy(t):
    a = t.detach().cpu().numpy()
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def run_torch(model, inputs):
    """inputs: tuple of tensors -> list of float32/int64 numpy outputs (eval, no grad)."""
    with torch.no_grad():
        out = model(*inputs)
    if isinstance(out, torch.Tensor):
        out = (out,)
    return [_to_numpy(o) for o in out]


def onnx_export(model, inputs, input_names, output_names, opset, keep_bn=True):
    """Export to ONNX bytes. Batch axis 0 of every input and output is the symbol "N".

    keep_bn: export with TrainingMode.PRESERVE on an eval-mode model, so BatchNormalization
    nodes (eval semantics, running stats as initializers) stay in the graph instead of being
    folded into the preceding Conv by the EVAL-mode peephole. A fine-tuning compiler should
    see them.
    """
    assert not model.training
    dyn = {name: {0: BATCH_AXIS} for name in list(input_names) + list(output_names)}
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    f = io.BytesIO()
    with warnings.catch_warnings():
        # PRESERVE mode warns about constant folding even for eval-mode models; harmless here.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(inputs), f, export_params=True, opset_version=opset,
                          do_constant_folding=True, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dyn, training=mode)
    return f.getvalue()


def check_onnx(data, input_names, output_names):
    """onnx.checker (full, with strict shape inference) plus our own expectations. Raises."""
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m, full_check=True)
    init = {t.name for t in m.graph.initializer}
    got_in = [v.name for v in m.graph.input if v.name not in init]
    got_out = [v.name for v in m.graph.output]
    if got_in != list(input_names) or got_out != list(output_names):
        raise RuntimeError(f"io names {got_in} -> {got_out}, "
                           f"expected {input_names} -> {output_names}")
    tied = [n.output[0] for n in m.graph.node if n.op_type == "Identity" and n.input[0] in init]
    if tied:
        raise RuntimeError(f"exporter tied equal-valued initializers via Identity: {tied[:4]}")
    for v in list(m.graph.input[:len(got_in)]) + list(m.graph.output):
        d0 = v.type.tensor_type.shape.dim[0]
        if d0.dim_param != BATCH_AXIS:
            raise RuntimeError(f"{v.name}: batch axis is {d0}, expected dim_param '{BATCH_AXIS}'")
    return m


def _graph_fingerprint(data):
    """The graph without io shapes and value_info: equal fingerprints mean equal computation."""
    m = onnx.load_from_string(data)
    g = m.graph
    del g.value_info[:]
    for v in list(g.input) + list(g.output):
        v.type.tensor_type.ClearField("shape")
    return g.SerializeToString()


def batch_is_symbolic(model, make_inputs, input_names, output_names, opset, keep_bn=True):
    """Trace once at batch 2 and once at batch 3: if any constant depended on the batch size
    (a baked-in Reshape target, an initial state of fixed shape), the two graphs would differ."""
    a = onnx_export(model, make_inputs(2), input_names, output_names, opset, keep_bn)
    b = onnx_export(model, make_inputs(3), input_names, output_names, opset, keep_bn)
    return _graph_fingerprint(a) == _graph_fingerprint(b)


def clean_refs(outdir):
    """Remove what export_with_refs writes (model*.onnx, input_*/output_*.npy, io.json) so a
    rerun leaves no stale variant behind. Other files in outdir are left alone."""
    if not os.path.isdir(outdir):
        return
    for fn in os.listdir(outdir):
        if ((fn.startswith("model") and fn.endswith(".onnx")) or fn == "io.json"
                or (fn.startswith(("input_", "output_")) and fn.endswith(".npy"))):
            os.remove(os.path.join(outdir, fn))


def save_npy(path, array):
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def write_io_json(outdir, model_files, input_names, output_names, sets, extra=None):
    """io.json: which file holds which graph input/output.

    model_files: {opset: file name}; "model" is the first one.
    sets: list of (batch, {input name: file}, {output name: file}); the first set is also
    given as the top-level "inputs"/"outputs" maps. File input_K/output_K is the K-th graph
    input/output, as in the ONNX backend test data.
    """
    first = sets[0]
    doc = {
        "model": next(iter(model_files.values())),
        "models_by_opset": {str(k): v for k, v in model_files.items()},
        "input_names": list(input_names),
        "output_names": list(output_names),
        "batch_axis": {"dim": 0, "name": BATCH_AXIS},
        "inputs": first[1],
        "outputs": first[2],
        "sets": [{"batch": b, "inputs": i, "outputs": o} for b, i, o in sets],
    }
    if extra:
        doc.update(extra)
    with open(os.path.join(outdir, "io.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def export_with_refs(model, make_inputs, input_names, output_names, outdir, opsets,
                     batches=(2, 3), model_file="model.onnx", keep_bn=True, check_batch=True,
                     extra=None):
    """Export `model` (eval mode) for each opset, save inputs/outputs for each batch size.

    make_inputs(batch) -> tuple of tensors (deterministic for a given batch).
    Files: model_file for the first opset that exports, "<stem>_opset<K>.onnx" for the others;
    input_K.npy / output_K.npy for batches[0], input_K_b<B>.npy / output_K_b<B>.npy for the
    others. An opset that fails to export or check is recorded in "errors" and skipped; no
    reference data is written when none succeeds.
    Returns a dict: files, sizes, seconds, symbolic (batch 2 and 3 traces give the same
    graph), errors, params -- each but params keyed by opset.
    """
    os.makedirs(outdir, exist_ok=True)
    model.eval()
    stem, ext = os.path.splitext(model_file)
    info = {"files": {}, "sizes": {}, "seconds": {}, "symbolic": {}, "errors": {},
            "params": count_params(model)}
    for opset in opsets:
        name = model_file if not info["files"] else f"{stem}_opset{opset}{ext}"
        t0 = time.time()
        try:
            data = onnx_export(model, make_inputs(batches[0]), input_names, output_names, opset,
                               keep_bn)
            info["seconds"][opset] = time.time() - t0
            check_onnx(data, input_names, output_names)
            if check_batch:
                info["symbolic"][opset] = batch_is_symbolic(model, make_inputs, input_names,
                                                            output_names, opset, keep_bn)
        except Exception as e:  # one opset failing must not stop the others
            info["errors"][opset] = f"{type(e).__name__}: {str(e).strip()[:2000]}"
            continue
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        info["files"][opset] = name
        info["sizes"][opset] = len(data)
    if not info["files"]:
        return info
    sets = []
    for j, b in enumerate(batches):
        suffix = "" if j == 0 else f"_b{b}"
        inputs = make_inputs(b)
        outputs = run_torch(model, inputs)
        imap, omap = {}, {}
        for i, (n, t) in enumerate(zip(input_names, inputs)):
            fn = f"input_{i}{suffix}.npy"
            save_npy(os.path.join(outdir, fn), _to_numpy(t))
            imap[n] = fn
        for i, (n, a) in enumerate(zip(output_names, outputs)):
            fn = f"output_{i}{suffix}.npy"
            save_npy(os.path.join(outdir, fn), a)
            omap[n] = fn
        sets.append((b, imap, omap))
    write_io_json(outdir, info["files"], input_names, output_names, sets, extra)
    return info
