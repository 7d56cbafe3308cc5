# erf_isa.cmake - kernels/erf.c has a generic and an AVX2+FMA build of erf_f32, chosen by cpuid;
# ONNXTUNE_ERF_ISA forces one. The elementwise kernel tests run with each build, whatever the machine picks.
foreach(isa generic avx2)
  add_test(NAME test_rt_elementwise_erf_${isa} COMMAND test_rt_elementwise WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_rt_elementwise_erf_${isa} PROPERTIES ENVIRONMENT "ONNXTUNE_ERF_ISA=${isa}")
endforeach()
