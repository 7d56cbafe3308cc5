#!/bin/sh
# one_writer.sh - files are replaced in one place: common/file.c's atomic write (temporary, fsync,
# rename, fsync of the folder). A rename() or fsync() anywhere else in our C sources is another
# atomic-write routine with its own durability, and fails this test. The one exception: tools/cache.c
# renames the C compiler's output into the program cache (a cache entry, rebuilt when missing).
set -u
cd "${1:-.}" || exit 1
hits=$(grep -rnE --include=*.c '(^|[^_a-z])(rename|renameat|fsync|fdatasync)\(' \
         importer ir codegen kernels data program tools | grep -v '^tools/cache\.c:')
if [ -n "$hits" ]; then
  echo "FAIL: files written outside common/file.c's atomic write (use atomic_write / atomic_file_*):"
  echo "$hits"
  exit 1
fi
echo "one writer: every file replacement goes through common/file.c"
