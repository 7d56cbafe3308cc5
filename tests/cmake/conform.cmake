# conform.cmake - `onnxtune conform` over the ONNX backend test data ($ONNX_TESTS_DIR, default
# ../shared/onnx-tests: node, pytorch-operator, simple). Fails on any FAIL and on any case of
# tests/conform_passing.txt that no longer passes; passes with a message when the data is absent.
# About 40 s on 2 cores.
add_test(NAME conform COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/conform.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(conform PROPERTIES
  ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>"
  LABELS "onnx-tests"
  TIMEOUT 1200)
