# stream_ort.cmake - test_stream_ort (issue 12): a scripted model with a nested If carrying recurrent state, run
# in chunks, agrees with ONNX Runtime run chunk by chunk (onnxruntime-node, installed by the script into the
# build's ort/ when missing) and with PyTorch. Skipped (exit 77) with a message without node/npm or network.
add_test(NAME test_stream_ort COMMAND sh ${CMAKE_SOURCE_DIR}/tests/test_stream_ort.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_stream_ort PROPERTIES
  ENVIRONMENT "ONNXTUNE=$<TARGET_FILE:onnxtune>;ONNXTUNE_BUILD=${CMAKE_BINARY_DIR}"
  SKIP_RETURN_CODE 77
  RESOURCE_LOCK onnxruntime_node
  TIMEOUT 600)
