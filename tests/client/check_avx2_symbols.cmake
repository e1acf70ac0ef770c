# Fails if the AVX2 kernel's object as it goes into tessera_client (client/mlp_avx2.cc,
# renamed by client/privatize_avx2_symbols.cmake) defines an external symbol that another
# translation unit could also define: the linker keeps one copy of such a symbol for the
# whole program, and the AVX2 copy would crash baseline CPUs. Allowed: the entry point and
# names under the "tessera_avx2." prefix, which no other object can have.
# The COMDAT groups' names (readelf -g) must be private too: the linker keeps one group
# per name.
#   cmake -DNM=<nm> -DREADELF=<readelf> -DOBJECTS=<object files> -P check_avx2_symbols.cmake
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
    if(name MATCHES "^tessera_avx2\\." OR
       name STREQUAL "_ZN7tessera6client8internal14Avx2MlpKernelsEv")
      continue()
    endif()
    list(APPEND bad "${name}")
  endif()
endforeach()
execute_process(COMMAND "${READELF}" -g -W ${OBJECTS} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${READELF} failed on ${OBJECTS}")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(groups 0)
foreach(line IN LISTS lines)
  # "COMDAT group section [    2] `.group' [<signature>] contains 2 sections:"
  if(line MATCHES "^COMDAT group section .* \\[([^]]+)\\] contains")
    math(EXPR groups "${groups} + 1")
    if(NOT CMAKE_MATCH_1 MATCHES "^tessera_avx2\\.")
      list(APPEND bad "COMDAT group ${CMAKE_MATCH_1}")
    endif()
  endif()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "shared symbols compiled for AVX2:\n  ${bad}")
endif()
if(checked EQUAL 0)
  message(FATAL_ERROR "no external symbols found; is ${OBJECTS} the AVX2 kernel?")
endif()
message(STATUS "${checked} external symbols and ${groups} COMDAT groups, all private to the AVX2 kernel")
