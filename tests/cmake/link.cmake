# link.cmake - what generated programs link: an inference program and a conformance shared object
# need no image library or zlib; a training program does (image folders, .npz).
add_test(NAME link_lines COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/link.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(link_lines PROPERTIES ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>" TIMEOUT 300)
