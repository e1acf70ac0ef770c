# Fails if client/mlp_avx2.cc's object defines an external symbol that another
# translation unit could also define (a weak or global symbol outside the renamed Eigen
# namespace): the linker keeps one copy of such a symbol for the whole program, and the
# AVX2 copy would crash baseline CPUs.
#   cmake -DNM=<nm> -DOBJECTS=<object files> -P check_avx2_symbols.cmake
execute_process(COMMAND "${NM}" --defined-only ${OBJECTS}
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${OBJECTS}")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(checked 0)
set(bad "")
foreach(line IN LISTS lines)
  # "<address> <type> <mangled name>": upper-case types and u, v, w are external.
  if(line MATCHES "^[0-9a-f]* ([A-Zuvw]) (.+)$")
    set(name "${CMAKE_MATCH_2}")
    math(EXPR checked "${checked} + 1")
    if(name MATCHES "18tessera_avx2_Eigen" OR
       name STREQUAL "_ZN7tessera6client8internal14Avx2MlpKernelsEv" OR
       name STREQUAL "DW.ref.__gxx_personality_v0")
      continue()
    endif()
    list(APPEND bad "${name}")
  endif()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "shared symbols compiled for AVX2:\n  ${bad}")
endif()
if(checked EQUAL 0)
  message(FATAL_ERROR "no external symbols found; is ${OBJECTS} the AVX2 kernel?")
endif()
message(STATUS "${checked} external symbols, all private to the AVX2 kernel")
