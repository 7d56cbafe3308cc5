# demo.cmake - `make demo`'s script (models/digits/demo.sh) runs through, 2 epochs, and writes what it says.
add_test(NAME demo COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/demo.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(demo PROPERTIES ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>" TIMEOUT 300)
