#!/bin/sh
# conform.sh - the ONNX backend test cases through `onnxtune conform` (tests/cmake/conform.cmake).
# Fails when a case FAILs, or when a case listed in tests/conform_passing.txt no longer passes.
# Passes with a message when the test data is not there. `conform.sh --update` rewrites the list.
# Env: ONNXTUNE (the binary), ONNX_TESTS_DIR (default ../shared/onnx-tests); cwd = the repo root.
root=${ONNX_TESTS_DIR:-../shared/onnx-tests}
list=tests/conform_passing.txt
if [ ! -d "$root/node" ]; then
    echo "conform: $root/node not found: nothing to run (set ONNX_TESTS_DIR)"
    exit 0
fi
out=$(mktemp) || exit 1
trap 'rm -f "$out" "$out.pass"' EXIT
start=$(date +%s)
"$ONNXTUNE" conform "$root/node" "$root/pytorch-operator" "$root/simple" > "$out"
rc=$?
echo "conform: $(tail -n 1 "$out") in $(( $(date +%s) - start )) s"
grep '^FAIL ' "$out"
grep '^PASS ' "$out" | cut -d' ' -f2 | sort > "$out.pass"
if [ "$1" = "--update" ]; then
    cp "$out.pass" "$list"
    echo "conform: wrote $(wc -l < "$list") passing cases to $list"
    exit 0
fi
lost=$(sort "$list" | comm -23 - "$out.pass")
if [ -n "$lost" ]; then
    echo "conform: cases in $list that no longer pass:"
    for c in $lost; do grep " $c\( \|\$\)" "$out" || echo "MISSING $c"; done
    exit 1
fi
new=$(comm -13 "$list" "$out.pass" | wc -l)
[ "$new" -gt 0 ] && echo "conform: $new cases pass that $list does not list yet (tests/cmake/conform.sh --update)"
[ "$rc" -eq 0 ] || echo "conform: onnxtune conform exited $rc"
exit $rc
