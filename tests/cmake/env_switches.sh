#!/bin/sh
# env_switches.sh - every environment variable the compiler reads (importer/, ir/, codegen/) is either
# in codegen_env_vars (codegen/driver.c: program caches key on them) or one that does not change what
# is built (TMPDIR). A switch missing from the list would let `onnxtune run`/`train` reuse a program
# built with another setting.
set -u
cd "${1:-.}" || exit 1
fail=0
for var in $(grep -rhoE --include=*.c 'getenv\("[A-Za-z_0-9]+"\)' importer ir codegen | sed 's/getenv("\(.*\)")/\1/' | sort -u); do
  case $var in TMPDIR) continue ;; esac
  if ! sed -n '/codegen_env_vars\[\] = {/,/};/p' codegen/driver.c | grep -q "\"$var\""; then
    echo "FAIL: $var is read by the compiler but not in codegen_env_vars (codegen/driver.c)"
    fail=1
  fi
done
[ $fail = 0 ] && echo "env switches: every variable the compiler reads is in the cache key"
exit $fail
