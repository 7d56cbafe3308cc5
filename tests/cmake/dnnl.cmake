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

# oneDNN picks its kernels by cpuid; DNNL_MAX_CPU_ISA caps the choice, so the conv kernel tests also run
# on its SSE4.1 and AVX2 code paths whatever the machine has (test_rt_dense itself takes the best ISA,
# AVX-512 where the CPU has it).
if(ONNXTUNE_DNNL)
  foreach(isa SSE41 AVX2)
    string(TOLOWER ${isa} lower)
    add_test(NAME test_rt_dense_isa_${lower} COMMAND test_rt_dense WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(test_rt_dense_isa_${lower} PROPERTIES
      ENVIRONMENT "DNNL_MAX_CPU_ISA=${isa};ONNXTUNE=$<TARGET_FILE:onnxtune>;ONNXTUNE_BUILD=${CMAKE_BINARY_DIR}")
  endforeach()
endif()

# test_blocked on oneDNN's SSE4.1 kernels too: the blocked layout must stay right whatever format the
# primitives pick there (conv_dnnl reorders where it differs from nChw8c).
if(ONNXTUNE_DNNL)
  add_test(NAME test_blocked_isa_sse41 COMMAND test_blocked WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_blocked_isa_sse41 PROPERTIES
    ENVIRONMENT "DNNL_MAX_CPU_ISA=SSE41;ONNXTUNE=$<TARGET_FILE:onnxtune>;ONNXTUNE_BUILD=${CMAKE_BINARY_DIR}")
endif()
