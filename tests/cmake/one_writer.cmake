# one_writer.cmake - no atomic-write routine outside common/file.c (a code-level check).
add_test(NAME one_writer COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/one_writer.sh ${CMAKE_SOURCE_DIR})
