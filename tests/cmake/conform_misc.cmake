# conform_misc.cmake - `onnxtune conform` on tests/conform_misc/ (made by tests/ref/make_misc_cases.py):
# the paths of the quantization, signal, image, misc and preview.training ops that the ONNX backend
# data does not reach. Every case must PASS.
add_test(NAME conform_misc COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/conform_misc.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(conform_misc PROPERTIES ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>" TIMEOUT 300)
