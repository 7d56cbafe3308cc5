#!/bin/sh
# test_lora_ort.sh - ONNX Runtime runs a LoRA fine-tuning's merged export like the trainer: the digits CNN
# with LoRA adapters on its two 3x3 convs and its hidden Linear (Gemm), dropout on their input, and a new
# head, trained on the image folders (models/digits/images) and exported (adapters merged into the weights:
# standard ONNX), then run by onnxruntime-node (tests/ort_predict.js) on the validation images, must give
# the logits of `PROG predict` (1e-4, relative to each row's largest), its argmax labels exactly, and the
# accuracy `PROG eval` reports; the same for the ViT with adapters on its attention and MLP weights (MatMul,
# Gemm); the --export-adapters file loads in ONNX Runtime too, with peft's shapes.
# onnxruntime-node as in tests/test_train_ort.sh (skipped, exit 77, without node/npm or network).
# Environment: ONNXTUNE, ONNXTUNE_BUILD (CTest sets both).
set -eu
cd "$(dirname "$0")/.."
: "${ONNXTUNE:?set ONNXTUNE to the onnxtune binary}"
BUILD=${ONNXTUNE_BUILD:-build}
ORT_VERSION=1.30.0

skip() {
    echo "test_lora_ort: SKIPPED: $*"
    exit 77
}

TEST=test_lora_ort
. tests/ort_node.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/test_lora_ort-XXXXXX")
P=$T/digits
I=models/digits/images
"$ONNXTUNE" compile models/digits/digits_cnn.onnx --lora 'features.*.weight' --lora-rank 4 --lora-alpha 8 \
    --lora-dropout 0.1 --head linear:5 --optimizer adam --batch 32 --seed 1 --opt-level 1 -o "$P" >/dev/null
"$P" --train-dir $I/train --val-dir $I/val --epochs 3 --lr 0.01 --quiet --export "$T/digits.onnx" \
    --export-adapters "$T/adapters.onnx"
"$P" predict --weights "$T/digits.onnx" --dir $I/val --output "$T/p.npy" --output-labels "$T/l.npy" --quiet
"$P" eval --weights "$T/digits.onnx" --dir $I/val --metrics "$T/eval.jsonl" >/dev/null
node tests/ort_predict.js "$T/digits.onnx" tests/ref/train_data/digits_png_val.npz "$T/p.npy" "$T/l.npy" \
    "$T/eval.jsonl" 1e-4
# ViT: adapters on the fused q/k/v (MatMul, weight stored transposed), out_proj (Gemm) and mlp.0 (MatMul)
V=tests/ref/train/vit_lora_sgd
"$ONNXTUNE" compile models/vit/model.onnx --lora '*in_proj_weight' --lora '*out_proj.weight' --lora '*mlp.0.weight' \
    --lora-rank 4 --head linear:4 --momentum 0.9 --batch 4 --opt-level 1 -o "$T/vit" >/dev/null
"$T/vit" --train-x $V/x.npy --train-y $V/y.npy --epochs 3 --lr 0.05 --quiet --export "$T/vit.onnx"
"$T/vit" predict --weights "$T/vit.onnx" --x $V/x.npy --output "$T/vp.npy" --output-labels "$T/vl.npy" --quiet
"$T/vit" eval --weights "$T/vit.onnx" --x $V/x.npy --y $V/y.npy --metrics "$T/veval.jsonl" >/dev/null
node tests/ort_predict.js "$T/vit.onnx" "$V/x.npy,$V/y.npy" "$T/vp.npy" "$T/vl.npy" "$T/veval.jsonl" 1e-4

# the adapters file loads too: its initializers are its outputs (A and B of the convs and the Linear, the head)
node -e '
const ort = require("onnxruntime-node");
ort.InferenceSession.create(process.argv[1]).then((s) => s.run({})).then((o) => {
    const names = Object.keys(o).sort().join(" ");
    const want = "features.0.weight.lora_A features.0.weight.lora_B features.2.weight.lora_A " +
                 "features.2.weight.lora_B features.6.weight.lora_A features.6.weight.lora_B head.bias head.weight";
    const a = o["features.2.weight.lora_A"].dims.join("x"), b = o["features.2.weight.lora_B"].dims.join("x");
    console.log(`ort: adapters file: ${names} (features.2: A ${a}, B ${b})`);
    if (names !== want || a !== "4x16x3x3" || b !== "32x4x1x1") process.exit(1);
}).catch((e) => { console.error(`adapters file: ${e.message}`); process.exit(1); });
' "$T/adapters.onnx"
if /usr/bin/python3 -c "import onnx" 2>/dev/null; then
    /usr/bin/python3 - "$T/digits.onnx" "$T/adapters.onnx" <<'PY'
import json, sys
import onnx
for path in sys.argv[1:]:
    onnx.checker.check_model(onnx.load(path), full_check=True)
cfg = json.loads({p.key: p.value for p in onnx.load(sys.argv[2]).metadata_props}["onnxtune.lora"])
assert cfg["r"] == 4 and cfg["lora_alpha"] == 8 and cfg["lora_dropout"] == 0.1, cfg
print("onnx %s: the merged export and the adapters file pass onnx.checker; adapter config %s" % (onnx.__version__, cfg))
PY
else
    echo "test_lora_ort: Python's onnx is not installed: the onnx.checker check is skipped"
fi
rm -rf "$T"
echo "test_lora_ort: ok"
