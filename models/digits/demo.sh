#!/bin/sh
# demo.sh - the bundled fine-tuning demo (`make demo` calls it from the repository root): the digits CNN
# pretrained on digits 0-4 gets a new 5-class head (backbone frozen) and is fine-tuned on digits 5-9,
# with the validation accuracy after every epoch, then exported as ONNX. Settings as the PyTorch
# yardstick tests/ref/digits_demo_ref.py (Adam, lr 0.01, batch 32, 30 epochs, seed 1).
# Environment: ONNXTUNE (default build/onnxtune), OUT (default build), EPOCHS (default 30).
set -eu
cd "$(dirname "$0")/../.."
ONNXTUNE=${ONNXTUNE:-build/onnxtune}
OUT=${OUT:-build}
EPOCHS=${EPOCHS:-30}
D=models/digits

echo "== compile: $D/digits_cnn.onnx, backbone frozen, new head linear:5, cross-entropy, Adam"
"$ONNXTUNE" compile "$D/digits_cnn.onnx" --head linear:5 --loss cross_entropy --optimizer adam \
    --batch 32 --epochs "$EPOCHS" --lr 0.01 --seed 1 -o "$OUT/digits_trainer"

echo "== fine-tune on digits 5-9 ($D/train_*.npy), validate on $D/val_*.npy"
"$OUT/digits_trainer" --train-x "$D/train_x.npy" --train-y "$D/train_y.npy" \
    --val-x "$D/val_x.npy" --val-y "$D/val_y.npy" \
    --metrics "$OUT/digits_metrics.jsonl" --export "$OUT/digits_finetuned.onnx"

echo "== the exported model, run by onnxtune on the validation images"
"$ONNXTUNE" run "$OUT/digits_finetuned.onnx" --input "image=$D/val_x.npy" --output-dir "$OUT/digits_val_out"
echo "logits of the 180 validation images: $OUT/digits_val_out/; PyTorch's number for these settings:"
echo "  /usr/bin/python3 tests/ref/digits_demo_ref.py"
