#!/bin/sh
# demo.sh (test) - `make demo`'s script runs through (2 epochs here) and leaves every file it announces:
# the trainer, metrics with a validation line per epoch, the SVG curves, the export, the predictions and
# the export's outputs from `onnxtune run`. Environment: ONNXTUNE (CTest sets it).
set -eu
cd "$(dirname "$0")/../.."
OUT=$(mktemp -d "${TMPDIR:-/tmp}/test_demo-XXXXXX")
ONNXTUNE=$ONNXTUNE OUT=$OUT EPOCHS=2 sh models/digits/demo.sh >"$OUT/log.txt" 2>&1 || {
    cat "$OUT/log.txt"
    echo "demo: models/digits/demo.sh failed (log above; files in $OUT)"
    exit 1
}
for f in digits_trainer digits_metrics.jsonl digits_curves.svg digits_finetuned.onnx digits_val_logits.npy \
         digits_val_labels.npy digits_val_out/logits.npy; do
    [ -s "$OUT/$f" ] || { cat "$OUT/log.txt"; echo "demo: $OUT/$f is missing or empty"; exit 1; }
done
vals=$(grep -c '"split":"val"' "$OUT/digits_metrics.jsonl")
[ "$vals" -eq 2 ] || { echo "demo: $vals validation lines, want 2"; exit 1; }
grep -q 'images in 5 classes (5 6 7 8 9)' "$OUT/log.txt" || { cat "$OUT/log.txt"; echo "demo: no image folder line"; exit 1; }
grep -q 'confusion matrix of models/digits/images/val' "$OUT/log.txt" || { echo "demo: eval printed no matrix"; exit 1; }
rm -rf "$OUT"
echo "demo: ok"
