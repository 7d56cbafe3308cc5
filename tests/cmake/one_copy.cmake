# one_copy.cmake - one copy of common/'s pieces: no atomic write, CRC-32, JSON escaper or varint writer
# of their own outside common/ (a code-level check).
add_test(NAME one_copy COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/one_copy.sh ${CMAKE_SOURCE_DIR})
