#!/bin/sh
# demo.sh - the bundled fine-tuning demo (`make demo` calls it from the repository root): the digits CNN
# pretrained on digits 0-4 gets a new 5-class head (backbone frozen) and is fine-tuned on digits 5-9 read
# from image folders (images/{train,val}/<class>/*.png, as torchvision's ImageFolder keeps them), with a
# progress bar (plain lines when not on a terminal), the validation accuracy after every epoch and the
# loss and accuracy curves as an SVG; the export (class names and preprocessing in its metadata) is
# evaluated again with its confusion matrix, asked for predictions and run by `onnxtune run`. Settings as the
# PyTorch yardstick `tests/ref/digits_demo_ref.py --images` (Adam, lr 0.01, batch 32, 30 epochs, seed 1).
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

echo "== fine-tune on the PNG folders $D/images/train (digits 5-9, a folder per class), validate on $D/images/val"
echo "   (8x8 grey PNGs: the model's input [N,1,8,8] decides grey and 8x8; pixels / 255, no normalisation)"
"$OUT/digits_trainer" --train-dir "$D/images/train" --val-dir "$D/images/val" \
    --metrics "$OUT/digits_metrics.jsonl" --plot "$OUT/digits_curves.svg" --export "$OUT/digits_finetuned.onnx"

echo "== the export, evaluated and asked for predictions (the class names come from its metadata)"
"$OUT/digits_trainer" eval --weights "$OUT/digits_finetuned.onnx" --dir "$D/images/val" --confusion
"$OUT/digits_trainer" predict --weights "$OUT/digits_finetuned.onnx" --dir "$D/images/val" \
    --output "$OUT/digits_val_logits.npy" --output-labels "$OUT/digits_val_labels.npy"

echo "== the export run by onnxtune on the validation arrays"
"$ONNXTUNE" run "$OUT/digits_finetuned.onnx" --input "image=$D/val_x.npy" --output-dir "$OUT/digits_val_out"
echo "curves: $OUT/digits_curves.svg; metrics: $OUT/digits_metrics.jsonl; PyTorch's number for these settings:"
echo "  /usr/bin/python3 tests/ref/digits_demo_ref.py --images"
