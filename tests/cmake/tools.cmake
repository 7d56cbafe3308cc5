# tools.cmake - helper programs used by test scripts (not CTest cases themselves).
# tool_npycmp: relative L2 error of two NPY files, for tests/zoo.sh (make test-zoo).
add_executable(tool_npycmp ${CMAKE_SOURCE_DIR}/tests/tool_npycmp.c)
target_link_libraries(tool_npycmp PRIVATE m)
