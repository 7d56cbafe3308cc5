#!/bin/sh
# test_train_ort.sh - ONNX Runtime agrees with the trainer: the digits CNN fine-tuned on the image folders
# (models/digits/images) and exported, then run by onnxruntime-node (tests/ort_predict.js) on the validation
# images, must give the logits of `PROG predict` (1e-4, relative to each row's largest), its argmax labels
# exactly, and the accuracy `PROG eval` reports; Python's onnx (when installed) checks the export and reads
# its metadata_props. onnxruntime-node comes from $ONNXTUNE_BUILD/ort or bench/node_modules, else it is
# installed into $ONNXTUNE_BUILD/ort (npm, onnxruntime-node@1.30.0); without npm or network the test is
# skipped (exit 77) with a message. Environment: ONNXTUNE, ONNXTUNE_BUILD (CTest sets both).
set -eu
cd "$(dirname "$0")/.."
: "${ONNXTUNE:?set ONNXTUNE to the onnxtune binary}"
BUILD=${ONNXTUNE_BUILD:-build}
ORT_VERSION=1.30.0

skip() {
    echo "test_train_ort: SKIPPED: $*"
    exit 77
}

TEST=test_train_ort
. tests/ort_node.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/test_train_ort-XXXXXX")
P=$T/digits
I=models/digits/images
"$ONNXTUNE" compile models/digits/digits_cnn.onnx --head linear:5 --loss cross_entropy --optimizer adam \
    --batch 32 --lr 0.01 --seed 1 --opt-level 1 -o "$P" >/dev/null
"$P" --train-dir $I/train --val-dir $I/val --epochs 5 --quiet --export "$T/digits.onnx"
"$P" predict --weights "$T/digits.onnx" --dir $I/val --output "$T/p.npy" --output-labels "$T/l.npy" --quiet
"$P" eval --weights "$T/digits.onnx" --dir $I/val --metrics "$T/eval.jsonl" >/dev/null
node tests/ort_predict.js "$T/digits.onnx" tests/ref/train_data/digits_png_val.npz "$T/p.npy" "$T/l.npy" \
    "$T/eval.jsonl" 1e-4

if /usr/bin/python3 -c "import onnx" 2>/dev/null; then
    /usr/bin/python3 - "$T/digits.onnx" <<'PY'
import json, sys
import onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m)
props = {p.key: p.value for p in m.metadata_props}
classes = json.loads(props["onnxtune.classes"])
pre = json.loads(props["onnxtune.preprocess"])
assert classes == ["5", "6", "7", "8", "9"], classes
assert pre["color"] == "L" and pre["resize"] == [8, 8] and pre["mean"] == [0] and pre["std"] == [1], pre
print("onnx %s: the export passes onnx.checker; metadata_props: classes %s, preprocess %s"
      % (onnx.__version__, classes, pre["torchvision"]))
PY
else
    echo "test_train_ort: Python's onnx is not installed: the metadata check by onnx.load is skipped"
fi
rm -rf "$T"
echo "test_train_ort: ok"
