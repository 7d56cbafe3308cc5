# ops_doc.cmake - docs/ops.md against the op table (tests/cmake/ops_doc.sh): fails when the file is
# stale, or when an op has neither a passing conformance case nor a test named in
# tests/ops_without_conformance.txt. Under a second; the counts need $ONNX_TESTS_DIR (see the script).
add_test(NAME ops_doc COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/ops_doc.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(ops_doc PROPERTIES ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>" TIMEOUT 300)
