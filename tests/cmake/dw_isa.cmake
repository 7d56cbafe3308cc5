# dw_isa.cmake - kernels/conv_dw.c has a generic and an AVX2+FMA build of the depthwise convs, chosen by
# cpuid; ONNXTUNE_DW_ISA forces one. The conv kernel tests run on conv.c's own paths (ONNXTUNE_DNNL=0,
# where oneDNN would otherwise take the small test shapes) with each build, whatever the machine picks.
foreach(isa generic avx2)
  foreach(name test_rt_dense test_grad_b)
    add_test(NAME ${name}_dw_${isa} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(${name}_dw_${isa} PROPERTIES
      ENVIRONMENT "ONNXTUNE_DW_ISA=${isa};ONNXTUNE_DNNL=0;ONNXTUNE=$<TARGET_FILE:onnxtune>;ONNXTUNE_BUILD=${CMAKE_BINARY_DIR}")
  endforeach()
endforeach()
