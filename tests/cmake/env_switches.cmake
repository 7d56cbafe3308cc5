# env_switches.cmake - the environment variables the compiler reads are all in the program caches' key
# (a code-level check; test_codegen checks the key itself with ONNXTUNE_NO_FUSE).
add_test(NAME env_switches COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cmake/env_switches.sh ${CMAKE_SOURCE_DIR})
