# The importer's fuzz corpus replayed as an ordinary test (no libFuzzer needed): every seed and
# malformed model must import or fail cleanly. Under ONNXTUNE_SANITIZE this runs with ASan/UBSan.
# Fuzzing itself is tests/fuzz/run.sh (clang + libFuzzer).
add_executable(fuzz_import_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_import.c)
target_compile_definitions(fuzz_import_replay PRIVATE FUZZ_REPLAY_MAIN)
target_link_libraries(fuzz_import_replay PRIVATE onnxtune_core)
add_test(NAME fuzz_import_replay COMMAND fuzz_import_replay tests/fuzz/corpus tests/malformed
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
