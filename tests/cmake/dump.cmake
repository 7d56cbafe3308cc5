# dump.cmake - `onnxtune dump` in text, --json and --dot over every ONNX backend test model
# ($ONNX_TESTS_DIR, default ../shared/onnx-tests): each run must give well-formed output or fail with
# one clean line, never crash (a few seconds).
add_test(NAME dump_onnx_tests COMMAND test_dump --sweep WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(dump_onnx_tests PROPERTIES
  ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>"
  LABELS "onnx-tests"
  TIMEOUT 1800
  SKIP_RETURN_CODE 77)
