#!/bin/sh
# bench_import.sh [MB] - time and peak memory of importing a ~100 MB model, with its weights
# embedded (raw_data) and in an external data file. Compiles tests/ref/import_time.c with the
# importer and IR sources (-O2) into /tmp; the models go to /tmp/onnxtune_big (made once).
set -eu
cd "$(dirname "$0")/../.."
MB=${1:-100}
OUT=/tmp/onnxtune_big
mkdir -p "$OUT/gen"
cp /usr/include/onnx/onnx.proto "$OUT/gen/onnx.proto"
protoc-c --proto_path="$OUT/gen" --c_out="$OUT/gen" "$OUT/gen/onnx.proto"
${CC:-cc} -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iir -Iimporter -I"$OUT/gen" \
    tests/ref/import_time.c importer/*.c ir/*.c "$OUT/gen/onnx.pb-c.c" -lprotobuf-c -lm -o "$OUT/import_time"
[ -f "$OUT/big.onnx" ] || /usr/bin/python3 tests/ref/make_big_model.py "$OUT" "$MB"
for f in big.onnx big_ext.onnx; do
    /usr/bin/time -f "  peak RSS %M kB, wall %e s, cpu %U s user + %S s sys" "$OUT/import_time" "$OUT/$f"
done
