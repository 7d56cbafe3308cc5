#!/bin/sh
# conform_misc.sh - every case of tests/conform_misc/ must PASS (tests/cmake/conform_misc.cmake).
# Env: ONNXTUNE (the binary); cwd = the repo root.
out=$("$ONNXTUNE" conform tests/conform_misc) || { echo "$out"; exit 1; }
echo "$out" | tail -n 1
n=$(echo "$out" | grep -c '^PASS ')
want=$(ls -d tests/conform_misc/*/ | wc -l)
if [ "$n" -ne "$want" ] || echo "$out" | grep -q '^\(FAIL\|UNSUPPORTED\) '; then
    echo "$out" | grep -v '^PASS '
    echo "conform_misc: $n of $want cases passed"
    exit 1
fi
