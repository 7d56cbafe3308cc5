# The fuzz corpora replayed as ordinary tests (no libFuzzer needed): every seed, malformed file and
# regression input must be read or refused cleanly. Under ONNXTUNE_SANITIZE these run with ASan/UBSan.
# Fuzzing itself is tests/fuzz/run.sh (clang + libFuzzer), which configures a build with
# -DONNXTUNE_FUZZ=ON and the sanitizer flags: then each harness is also built as a libFuzzer binary.
add_executable(fuzz_import_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_import.c)
target_compile_definitions(fuzz_import_replay PRIVATE FUZZ_REPLAY_MAIN)
target_link_libraries(fuzz_import_replay PRIVATE onnxtune_core)
add_test(NAME fuzz_import_replay COMMAND fuzz_import_replay tests/fuzz/corpus tests/malformed
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})

option(ONNXTUNE_FUZZ "Also build the libFuzzer binaries (clang, with -fsanitize=fuzzer-no-link in CMAKE_C_FLAGS)" OFF)
if(ONNXTUNE_FUZZ)
  add_executable(fuzz_import ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_import.c)
  target_link_libraries(fuzz_import PRIVATE onnxtune_core)
  target_link_options(fuzz_import PRIVATE -fsanitize=fuzzer)
endif()

# The readers of data and program files: harness tests/fuzz/fuzz_<name>.c, corpus tests/fuzz/corpus_<name>/.
foreach(pair npy:onnxtune_data npz:onnxtune_data image:onnxtune_data checkpoint:onnxtune_program
             weights:onnxtune_program lora:onnxtune_program)
  string(REPLACE ":" ";" pair ${pair})
  list(GET pair 0 name)
  list(GET pair 1 lib)
  add_executable(fuzz_${name}_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.c)
  target_link_libraries(fuzz_${name}_replay PRIVATE ${lib})
  add_test(NAME fuzz_${name}_replay COMMAND fuzz_${name}_replay tests/fuzz/corpus_${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  if(ONNXTUNE_FUZZ)
    add_executable(fuzz_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c)
    target_link_libraries(fuzz_${name} PRIVATE ${lib})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()
