#!/bin/sh
# ops_doc.sh - docs/ops.md cannot drift from the op table (tests/cmake/ops_doc.cmake). Fails when
#  1. docs/ops.md differs from what `onnxtune ops --markdown --conform-list tests/conform_passing.txt
#     --cases $ONNX_TESTS_DIR` prints now; without the ONNX test data only the op, domain, family,
#     opset, forward and backward columns are compared (the conformance counts need the models);
#  2. a row has no passing conformance case and is not in tests/ops_without_conformance.txt, or an
#     entry there is not a row, has a passing case after all, or its test file lacks its WORD.
# `ops_doc.sh --update` rewrites docs/ops.md. Env: ONNXTUNE (the binary, default build/onnxtune),
# ONNX_TESTS_DIR (default ../shared/onnx-tests); cwd = the repo root.
tool=${ONNXTUNE:-build/onnxtune}
root=${ONNX_TESTS_DIR:-../shared/onnx-tests}
doc=docs/ops.md
allow=tests/ops_without_conformance.txt
regen="$tool ops --markdown --conform-list tests/conform_passing.txt --cases $root > $doc"
new=$(mktemp) || exit 1
trap 'rm -f "$new" "$new.a" "$new.b" "$new.rows"' EXIT

if [ -d "$root/node" ]; then
    "$tool" ops --markdown --conform-list tests/conform_passing.txt --cases "$root" > "$new" || exit 1
    if [ "$1" = "--update" ]; then
        cp "$new" "$doc" && echo "ops_doc: wrote $doc" && exit 0
        exit 1
    fi
    if ! diff -u "$doc" "$new" > "$new.a"; then
        echo "ops_doc: $doc is stale (first lines of the diff, committed -> now):"
        head -n 40 "$new.a"
        echo "ops_doc: regenerate it:  $regen"
        exit 1
    fi
    table=$new
else
    if [ "$1" = "--update" ]; then
        echo "ops_doc: $root/node not found: cannot count conformance cases (set ONNX_TESTS_DIR)"
        exit 1
    fi
    echo "ops_doc: $root/node not found: comparing the op table's columns only (set ONNX_TESTS_DIR)"
    "$tool" ops --markdown > "$new" || exit 1
    # the rows' first six columns: op | domain | family | opset | forward | backward
    cols='/^\| op \|/ { on = 1; next } on && /^\|-/ { next } on && /^\|/ { print $2 "|" $3 "|" $4 "|" $5 "|" $6 "|" $7 } on && !/^\|/ { on = 0 }'
    awk -F' *\\| *' "$cols" "$doc" > "$new.a"
    awk -F' *\\| *' "$cols" "$new" > "$new.b"
    if ! diff -u "$new.a" "$new.b" > "$new.rows"; then
        echo "ops_doc: $doc's op table is stale (committed -> now):"
        head -n 40 "$new.rows"
        echo "ops_doc: regenerate it (needs the ONNX test data):  $regen"
        exit 1
    fi
    table=$doc
fi

# Rows as "KEY COUNT": KEY is the op (ai.onnx) or onnxtune.OP; COUNT the passing cases ('-': none).
awk -F' *\\| *' '/^\| op \|/ { on = 1; next } on && /^\|-/ { next }
    on && /^\|/ { print ($3 == "ai.onnx" ? "" : $3 ".") $2, $(NF - 1) } on && !/^\|/ { on = 0 }' "$table" > "$new.rows"
if [ ! -s "$new.rows" ] || [ "$(awk '{ print NF }' "$new.rows" | sort -u)" != 2 ]; then
    echo "ops_doc: could not read the op table (with a conformance column) from $table"
    exit 1
fi

fail=0
# every row without a passing case needs an entry
for key in $(awk '$2 == "-" { print $1 }' "$new.rows"); do
    if ! grep -q "^$key[[:space:]]" "$allow"; then
        echo "ops_doc: $key: no passing conformance case and no entry in $allow (name the test that checks it)"
        fail=1
    fi
done
# every entry: a row without a passing case, a test file that mentions its word, a reason
grep -v '^[[:space:]]*\(#\|$\)' "$allow" > "$new.a"
while read -r key file word reason; do
    count=$(awk -v k="$key" '$1 == k { print $2 }' "$new.rows")
    if [ -z "$count" ]; then
        echo "ops_doc: $allow: $key is not a row of the op table"
        fail=1
    elif [ "$count" != "-" ]; then
        echo "ops_doc: $allow: $key has $count passing conformance cases now: remove its entry"
        fail=1
    fi
    if [ -z "$reason" ]; then
        echo "ops_doc: $allow: $key: expected OP TEST_FILE WORD REASON"
        fail=1
    elif [ ! -f "$file" ]; then
        echo "ops_doc: $allow: $key: test file $file not found"
        fail=1
    elif ! grep -qw -- "$word" "$file"; then
        echo "ops_doc: $allow: $key: $file does not mention $word"
        fail=1
    fi
done < "$new.a"
dups=$(awk '{ print $1 }' "$new.a" | sort | uniq -d)
if [ -n "$dups" ]; then
    echo "ops_doc: $allow lists these more than once:" $dups
    fail=1
fi
[ "$fail" -eq 0 ] && echo "ops_doc: $doc is up to date; $(awk '$2 != "-"' "$new.rows" | wc -l) ops have passing conformance cases, $(wc -l < "$new.a") are checked by the tests $allow names"
exit $fail
