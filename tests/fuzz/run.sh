#!/bin/sh
# run.sh [SECONDS] - fuzz the importer: builds tests/fuzz/fuzz_import.c with clang (libFuzzer,
# AddressSanitizer, UndefinedBehaviorSanitizer) against importer/, ir/ and common/, replays the seed corpus
# (tests/fuzz/corpus and tests/malformed), then fuzzes for SECONDS (default 60; 0 = replay only).
# Work files (generated protobuf code, the binary, new inputs, crashes) go to $FUZZ_WORK
# (default /tmp/onnxtune_fuzz); a crash leaves its input in $FUZZ_WORK/artifacts/.
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-60}
W=${FUZZ_WORK:-/tmp/onnxtune_fuzz}
CLANG=${CLANG:-clang}
mkdir -p "$W/gen" "$W/corpus" "$W/artifacts"
cp /usr/include/onnx/onnx.proto "$W/gen/onnx.proto"
protoc-c --proto_path="$W/gen" --c_out="$W/gen" "$W/gen/onnx.proto"
echo "building $W/fuzz_import"
$CLANG -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter \
    -Iir -Iimporter -Icommon -I"$W/gen" tests/fuzz/fuzz_import.c importer/*.c ir/*.c common/*.c \
    "$W/gen/onnx.pb-c.c" -lprotobuf-c -lm -pthread -o "$W/fuzz_import"
OPTS="-timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -max_len=65536 -artifact_prefix=$W/artifacts/"
echo "replaying the corpus"
"$W/fuzz_import" $OPTS -runs=0 tests/fuzz/corpus tests/malformed
[ "$SECS" -gt 0 ] || exit 0
echo "fuzzing for $SECS s (new inputs in $W/corpus)"
"$W/fuzz_import" $OPTS -max_total_time="$SECS" -print_final_stats=1 -dict=tests/fuzz/onnx.dict \
    "$W/corpus" tests/fuzz/corpus tests/malformed
