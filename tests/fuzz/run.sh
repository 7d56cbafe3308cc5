#!/bin/sh
# run.sh [SECONDS [HARNESS...]] - fuzz the readers of untrusted bytes with libFuzzer under
# AddressSanitizer + UndefinedBehaviorSanitizer: builds every harness (tests/fuzz/fuzz_<name>.c) with
# clang in a CMake build configured with -DONNXTUNE_FUZZ=ON, replays each one's seeds (importer:
# tests/fuzz/corpus and tests/malformed; others: tests/fuzz/corpus_<name>), then fuzzes each for
# SECONDS (default 30; 0 = replay only). HARNESS: import npy npz image checkpoint weights lora (default all;
# tests/fuzz/README.md says what each one reads).
# Work files (the build, new inputs per harness, crashes) go to $FUZZ_WORK (default build-fuzz/ in
# this checkout, so two checkouts never share a CMake cache);
# a crash leaves its input in $FUZZ_WORK/artifacts/<name>/ and stops the script with status 1.
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-30}
[ $# -gt 0 ] && shift
HARNESSES=${*:-import npy npz image checkpoint weights lora}
W=${FUZZ_WORK:-$PWD/build-fuzz}
CLANG=${CLANG:-clang}
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$W"
# A build configured from another checkout is of no use here (CMake refuses it): start it afresh.
if [ -f "$W/build/CMakeCache.txt" ] &&
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD" "$W/build/CMakeCache.txt"; then
    rm -rf "$W/build"
fi
echo "building the harnesses in $W/build"
cmake -S . -B "$W/build" -DCMAKE_C_COMPILER="$CLANG" -DCMAKE_BUILD_TYPE=Debug -DONNXTUNE_FUZZ=ON \
    -DCMAKE_C_FLAGS="-O1 $SAN" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
targets=""
for h in $HARNESSES; do targets="$targets fuzz_$h"; done
cmake --build "$W/build" -j"${JOBS:-2}" --target $targets >/dev/null

for h in $HARNESSES; do
    case $h in
    import) seeds="tests/fuzz/corpus tests/malformed"; extra="-max_len=65536 -dict=tests/fuzz/onnx.dict" ;;
    image) seeds=tests/fuzz/corpus_$h; extra="-max_len=65536" ;;  # see timeout below
    weights|lora) seeds=tests/fuzz/corpus_$h; extra="-max_len=4096 -close_fd_mask=2" ;;  # refusals go to stderr
    *) seeds=tests/fuzz/corpus_$h; extra="-max_len=16384" ;;
    esac
    mkdir -p "$W/corpus/$h" "$W/artifacts/$h"
    # A tiny progressive JPEG may declare ~100 Mpixel: valid, and 2-4 s to decode natively, over 10 s under
    # ASan (tests/fuzz/README.md). A slow decode is not a bug; the image harness's limit is 60 s.
    timeout=10
    [ "$h" = image ] && timeout=60
    OPTS="-timeout=$timeout -rss_limit_mb=2560 -malloc_limit_mb=2048 -artifact_prefix=$W/artifacts/$h/"
    echo "== $h: replaying $seeds"
    "$W/build/fuzz_$h" $OPTS -runs=0 $seeds
    [ "$SECS" -gt 0 ] || continue
    echo "== $h: fuzzing for $SECS s (new inputs in $W/corpus/$h)"
    "$W/build/fuzz_$h" $OPTS $extra -max_total_time="$SECS" -print_final_stats=1 "$W/corpus/$h" $seeds
done
