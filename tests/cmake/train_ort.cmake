# train_ort.cmake - test_train_ort: an export of the digits fine-tuning run in ONNX Runtime (onnxruntime-node,
# installed by the script into the build's ort/ when missing) agrees with the trainer's predict and eval.
# Skipped (exit 77) with a message when node/npm or the network are unavailable.
add_test(NAME test_train_ort COMMAND sh ${CMAKE_SOURCE_DIR}/tests/test_train_ort.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_train_ort PROPERTIES
  ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>;ONNXTUNE_BUILD=${CMAKE_BINARY_DIR}"
  SKIP_RETURN_CODE 77
  RESOURCE_LOCK onnxruntime_node
  TIMEOUT 600)
