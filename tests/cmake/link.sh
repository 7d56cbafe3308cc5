#!/bin/sh
# link.sh - checks with ldd what generated programs depend on: the inference program must not load
# libjpeg, libpng or zlib (kernels, npy.o and infer_main.o only); the training program must (data/).
set -u
ONNXTUNE=${ONNXTUNE:-build/onnxtune}
dir=$(mktemp -d "${TMPDIR:-/tmp}/onnxtune-link.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
fail=0
image_libs='libjpeg|libpng|libz\.'

"$ONNXTUNE" compile models/digits/digits_cnn.onnx --infer --batch 4 -o "$dir/infer" || { echo "FAIL: compile --infer"; exit 1; }
if ldd "$dir/infer" | grep -E "$image_libs"; then
  echo "FAIL: the inference program loads an image library or zlib"; fail=1
fi
ldd "$dir/infer" | grep -q openblas || { echo "FAIL: the inference program does not load OpenBLAS"; fail=1; }
# it still runs: NPY in, NPY out
"$ONNXTUNE" dump models/digits/digits_cnn.onnx >/dev/null || fail=1
"$dir/infer" --input image=models/digits/val_x.npy --output-dir "$dir/out" >/dev/null || { echo "FAIL: the inference program did not run"; fail=1; }
[ -f "$dir/out/logits.npy" ] || { echo "FAIL: no logits.npy"; fail=1; }

"$ONNXTUNE" compile models/digits/digits_cnn.onnx --head linear:5 --batch 8 -o "$dir/train" || { echo "FAIL: compile (training)"; exit 1; }
for lib in libjpeg libpng libz; do
  ldd "$dir/train" | grep -q "$lib" || { echo "FAIL: the training program does not load $lib"; fail=1; }
done
[ $fail = 0 ] && echo "link lines: inference program without image libraries or zlib, training program with them"
exit $fail
