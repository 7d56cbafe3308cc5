#!/bin/sh
# one_copy.sh - one copy of each of common/'s pieces (a code-level check; test_common tests the pieces):
#   - files are replaced in one place, common/file.c's atomic write (temporary, fsync, rename, fsync of
#     the folder): a rename() or fsync() elsewhere is another atomic-write routine with its own
#     durability. The one exception: tools/cache.c renames the C compiler's output into the program
#     cache (a cache entry, rebuilt when missing);
#   - CRC-32 is common/crc32.c's (no table of the polynomial, no zlib crc32() elsewhere);
#   - JSON strings are escaped by common/json.c only (no \u00XX escaping elsewhere);
#   - protobuf varints are written by common/buf.c only (no "| 0x80" continuation bits elsewhere).
set -u
cd "${1:-.}" || exit 1
dirs="importer ir codegen kernels data program tools"
fail=0
check() {   # what, pattern, allowed (a grep -v pattern of file:line prefixes)
  hits=$(grep -rnE --include=*.c "$2" $dirs | grep -vE "${3:-^$}")
  if [ -n "$hits" ]; then
    echo "FAIL: $1:"
    printf '%s\n' "$hits"
    fail=1
  fi
}
check "files written without common/file.c's atomic write" '(^|[^_a-z])(rename|renameat|fsync|fdatasync)\(' '^tools/cache\.c:'
check "a CRC-32 besides common/crc32.c's" '0xEDB88320|(^|[^_a-z])crc32\('
check "a JSON string escaper besides common/json.c's" 'u%04'
check "a varint writer besides common/buf.c's" '\| *0x80\)|0x80 : 0'
[ $fail = 0 ] && echo "one copy: atomic write, CRC-32, JSON escaping and varints only in common/"
exit $fail
