#!/bin/sh
# bench_import.sh [BUILD_DIR] [MB] - time and peak memory of importing a ~100 MB model, with its
# weights embedded (raw_data) and in an external data file. Builds tests/ref/import_time.c against
# BUILD_DIR's libraries (default build-import); the models go to /tmp/onnxtune_big.
set -e
cd "$(dirname "$0")/../.."
B=${1:-build-import}
MB=${2:-100}
OUT=/tmp/onnxtune_big
cmake --build "$B" --target onnxtune_core >/dev/null
cc -O2 -Iir -Iimporter tests/ref/import_time.c "$B/libonnxtune_core.a" "$B/libonnx_proto.a" \
   "$B/libonnxtune_rt.a" -lprotobuf-c -lopenblas -lm -fopenmp -o "$OUT.import_time"
[ -f "$OUT/big.onnx" ] || /usr/bin/python3 tests/ref/make_big_model.py "$OUT" "$MB"
for f in big.onnx big_ext.onnx; do
    /usr/bin/time -f "  peak RSS %M kB, wall %e s" "$OUT.import_time" "$OUT/$f"
done
