#!/bin/sh
# test_stream_ort.sh - issue 12: a model with a nested If carrying recurrent state runs in chunks and matches
# ONNX Runtime. The scripted VAD of tests/ref/make_stream_if_ref.py (a Loop over time holding an If on a flag
# input and, inside, an If on its own score; state h0 -> hn) runs in chunks of 4 with the state fed back, flag
# on and off, in ONNX Runtime (tests/ort_stream.js, onnxruntime-node, the same chunking) and must give
# PyTorch's outputs over all 16 steps (1e-5) and those of `onnxtune run --state hn=h0 --chunk 4` and of the
# compiled inference program (1e-5). onnxruntime-node comes from $ONNXTUNE_BUILD/ort or bench/node_modules,
# else it is installed into $ONNXTUNE_BUILD/ort (npm, onnxruntime-node@1.30.0); without node, npm or network
# the test is skipped (exit 77) with a message. Environment: ONNXTUNE, ONNXTUNE_BUILD (CTest sets both).
set -eu
cd "$(dirname "$0")/.."
: "${ONNXTUNE:?set ONNXTUNE to the onnxtune binary}"
BUILD=${ONNXTUNE_BUILD:-build}
ORT_VERSION=1.30.0

skip() {
    echo "test_stream_ort: SKIPPED: $*"
    exit 77
}

TEST=test_stream_ort
. tests/ort_node.sh

R=tests/ref/stream
T=$(mktemp -d "${TMPDIR:-/tmp}/test_stream_ort-XXXXXX")
"$ONNXTUNE" compile $R/vad.onnx --infer --batch 4 -o "$T/vad4" --werror >/dev/null
for f in on off; do
    IN="--input x=$R/vad_x.npy --input flag=$R/vad_flag_$f.npy --input h0=$R/vad_h0.npy --state hn=h0"
    # shellcheck disable=SC2086
    ONNXTUNE_CACHE="$T/cache" "$ONNXTUNE" run $R/vad.onnx $IN --chunk 4 --output-dir "$T/run_$f" >/dev/null
    # shellcheck disable=SC2086
    "$T/vad4" $IN --output-dir "$T/prog_$f" >/dev/null
    ARGS="x=$R/vad_x.npy flag=$R/vad_flag_$f.npy h0=$R/vad_h0.npy state:hn=h0"
    for ref in "$R/vad_y_$f.npy $R/vad_hn_$f.npy pytorch" "$T/run_$f/y.npy $T/run_$f/hn.npy onnxtune-run" \
               "$T/prog_$f/y.npy $T/prog_$f/hn.npy program"; do
        set -- $ref
        echo "test_stream_ort: flag $f, ONNX Runtime vs $3:"
        # shellcheck disable=SC2086
        node tests/ort_stream.js $R/vad.onnx 4 1e-5 $ARGS "check:y=$1" "check:hn=$2"
    done
done
rm -rf "$T"
echo "test_stream_ort: ok"
