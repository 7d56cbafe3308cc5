# dnnl.cmake - with oneDNN in the build, the conv kernel tests run twice: as test_rt_dense / test_grad_b
# (convs on oneDNN) and here with ONNXTUNE_DNNL=0, so that conv.c's own paths, the fallback whenever
# oneDNN is absent or declines a geometry, stay checked against the same reference loops.
if(ONNXTUNE_DNNL)
  foreach(name test_rt_dense test_grad_b)
    add_test(NAME ${name}_no_dnnl COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(${name}_no_dnnl PROPERTIES
      ENVIRONMENT "ONNXTUNE_DNNL=0;ONNXTUNE=$<TARGET_FILE:onnxtune>;ONNXTUNE_BUILD=${CMAKE_BINARY_DIR}")
  endforeach()
endif()
