# lora_ort.cmake - test_lora_ort: a LoRA fine-tuning's merged export in ONNX Runtime agrees with the trainer's
# predict and eval. Skipped (exit 77) with a message when node/npm or the network are unavailable.
add_test(NAME test_lora_ort COMMAND sh ${CMAKE_SOURCE_DIR}/tests/test_lora_ort.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_lora_ort PROPERTIES
  ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>;ONNXTUNE_BUILD=${CMAKE_BINARY_DIR}"
  SKIP_RETURN_CODE 77
  RESOURCE_LOCK onnxruntime_node
  TIMEOUT 600)
