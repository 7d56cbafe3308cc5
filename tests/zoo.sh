#!/bin/sh
# zoo.sh - `make test-zoo`'s comparison: every model exported by models/export.py, at every opset of its
# io.json, compiled with `onnxtune compile --infer --batch B` and run on input_K.npy; each output must be
# within relative L2 error ZOO_TOL (1e-4) of PyTorch's output_K.npy. It needs no Python: io.json is read
# with awk, and tests/tool_npycmp.c compares. It exports nothing (models/export.py does).
#
#   ONNXTUNE=build/onnxtune tests/zoo.sh build/zoo [MODEL...]
#
# Environment: ONNXTUNE (default build/onnxtune), NPYCMP (default tool_npycmp next to $ONNXTUNE),
# ZOO_TOL (1e-4), ZOO_WORK (programs and outputs; default ZOO_DIR/.zoo-run), ZOO_THREADS (passed to
# PROG as --threads; default: PROG's own default). Exit 1 if any model fails, 2 on a usage error.
set -u

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
    echo "usage: ONNXTUNE=build/onnxtune tests/zoo.sh ZOO_DIR [MODEL...]   (ZOO_DIR from models/export.py)" >&2
    exit 2
fi
ZOO=$1
shift
ONNXTUNE=${ONNXTUNE:-build/onnxtune}
NPYCMP=${NPYCMP:-$(dirname "$ONNXTUNE")/tool_npycmp}
TOL=${ZOO_TOL:-1e-4}
WORK=${ZOO_WORK:-$ZOO/.zoo-run}
for exe in "$ONNXTUNE" "$NPYCMP"; do
    if [ ! -x "$exe" ]; then
        echo "zoo.sh: $exe is not an executable (build first: cmake --build build)" >&2
        exit 2
    fi
done
mkdir -p "$WORK" || exit 2

# io.json flattened to "path<TAB>value" lines: models_by_opset.13, sets.0.batch, input_names.0, inputs.image
flatten_json() {
    awk 'function ws() { while (substr(s, i, 1) ~ /[ \t\r\n]/) i++ }
         function str(   o, c) {
             if (substr(s, i, 1) != "\"") bad()
             i++; o = ""
             while ((c = substr(s, i, 1)) != "\"") {
                 if (i > n) bad()
                 if (c == "\\") { i++; c = substr(s, i, 1) }
                 o = o c; i++
             }
             i++; return o
         }
         function val(path,   c, k, idx) {
             ws(); c = substr(s, i, 1)
             if (c == "{" || c == "[") {
                 i++; ws(); idx = 0
                 if (substr(s, i, 1) == (c == "{" ? "}" : "]")) { i++; return }
                 while (1) {
                     ws()
                     if (c == "{") { k = str(); ws(); if (substr(s, i, 1) != ":") bad(); i++ }
                     else k = idx++
                     val(path == "" ? k : path "." k)
                     ws(); if (i > n) bad()
                     if (substr(s, i++, 1) != ",") return
                 }
             }
             if (c == "\"") { print path "\t" str(); return }
             if (!match(substr(s, i), /^[^,}\] \t\r\n]+/)) bad()
             print path "\t" substr(s, i, RLENGTH); i += RLENGTH
         }
         function bad() { print "zoo.sh: " FILENAME ": not JSON this script understands" > "/dev/stderr"; exit 1 }
         { s = s $0 "\n" }
         END { n = length(s); i = 1; val("") }' "$1"
}

# The value at one flattened path (empty if absent).
json_get() {
    awk -F '\t' -v k="$2" '$1 == k { print substr($0, length(k) + 2); exit }' "$1"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

if [ $# -gt 0 ]; then
    models=$*
else
    models=$(for d in "$ZOO"/*/; do [ -f "$d/io.json" ] && basename "$d"; done)
fi

if [ -z "$models" ]; then
    echo "zoo.sh: no model folders (with io.json) in $ZOO: run models/export.py --out $ZOO" >&2
    exit 1
fi

passed=0
failed=0
notes=""
printf '%-20s %5s %11s %9s %9s  %s\n' model opset "max rel" "compile s" "forward s" result
for name in $models; do
    dir=$ZOO/$name
    flat=$WORK/$name.io.tsv
    if [ ! -f "$dir/io.json" ] || ! flatten_json "$dir/io.json" >"$flat"; then
        printf '%-20s %5s %11s %9s %9s  %s\n' "$name" - - - - FAIL
        notes="$notes$name: no readable $dir/io.json\n"
        failed=$((failed + 1))
        continue
    fi
    batch=$(json_get "$flat" sets.0.batch)
    opsets=$(awk -F '\t' '$1 ~ /^models_by_opset\./ { sub(/^models_by_opset\./, "", $1); print $1 }' "$flat")
    [ -n "$opsets" ] || opsets=default
    for opset in $opsets; do
        tag=$name@$opset
        model=$(json_get "$flat" "models_by_opset.$opset")
        [ -n "$model" ] || model=$(json_get "$flat" model)
        run=$WORK/$name-$opset
        rm -rf "$run"
        mkdir -p "$run/out"
        result=PASS
        why=""
        maxrel=-
        tc=-
        tf=-
        # compile for the batch of the reference set
        t0=$(now)
        if ! "$ONNXTUNE" compile "$dir/$model" --infer --batch "${batch:-1}" -o "$run/prog" >"$run/compile.log" 2>&1; then
            result=FAIL
            why="compile: $(grep -v '^onnxtune compile: wrote\|batch .* (other batches' "$run/compile.log" | head -n 1)"
        fi
        t1=$(now)
        tc=$(elapsed "$t0" "$t1")
        if [ $result = PASS ]; then
            set --
            k=0
            while :; do
                in=$(json_get "$flat" "input_names.$k")
                [ -n "$in" ] || break
                set -- "$@" --input "$in=$dir/$(json_get "$flat" "inputs.$in")"
                k=$((k + 1))
            done
            [ -n "${ZOO_THREADS:-}" ] && set -- "$@" --threads "$ZOO_THREADS"
            t0=$(now)
            "$run/prog" "$@" --output-dir "$run/out" >"$run/run.log" 2>&1
            rc=$?
            t1=$(now)
            tf=$(elapsed "$t0" "$t1")
            if [ $rc -ne 0 ]; then
                result=FAIL
                why="run: exit $rc: $(head -n 1 "$run/run.log")"
            fi
        fi
        if [ $result = PASS ]; then
            k=0
            maxrel=0
            while :; do
                out=$(json_get "$flat" "output_names.$k")
                [ -n "$out" ] || break
                ref=$dir/$(json_get "$flat" "outputs.$out")
                # PROG names the file after the output, other characters than [A-Za-z0-9._-] as _
                file=$(printf '%s' "$out" | sed 's/[^A-Za-z0-9._-]/_/g')
                line=$("$NPYCMP" "$run/out/$file.npy" "$ref" "$TOL" 2>&1)
                rc=$?
                rel=$(printf '%s\n' "$line" | sed -n 's/^rel_l2=\([^ ]*\).*/\1/p')
                if [ -n "$rel" ]; then
                    maxrel=$(awk -v a="$maxrel" -v b="$rel" 'BEGIN { print (b + 0 > a + 0 || b == "inf" || b == "nan") ? b : a }')
                fi
                if [ $rc -ne 0 ]; then
                    result=FAIL
                    why="${why}output $out: $line; "
                fi
                k=$((k + 1))
            done
            [ $k -gt 0 ] || { result=FAIL; why="io.json names no outputs"; }
            maxrel=$(awk -v a="$maxrel" 'BEGIN { printf "%.2e", a }')
        fi
        printf '%-20s %5s %11s %9s %9s  %s\n' "$name" "$opset" "$maxrel" "$tc" "$tf" "$result"
        if [ $result = PASS ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            notes="$notes$tag: $why\n"
        fi
    done
done
echo "(compile s: onnxtune compile, wall; forward s: one run of PROG, wall, incl. process start, weights and NPY I/O)"
[ -n "$notes" ] && printf 'failures (logs in %s/<model>-<opset>/):\n%b' "$WORK" "$notes"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
