# Gives every symbol that client/mlp_avx2.cc's object defines, except its one entry point,
# a name no other object file can have ("tessera_avx2.<name>"). Inline
# functions and template instantiations (std::max<float>, std::exp(float), Eigen's, and
# whatever an unoptimised Debug build does not inline) are emitted as weak COMDAT
# definitions; the linker keeps one copy per name for the whole program, and if it kept
# the AVX2 copy, baseline code would run AVX2 instructions (SIGILL on CPUs without AVX2).
# Renaming a COMDAT group's signature symbol renames the group, so the AVX2 copies are
# never merged with, or chosen instead of, the baseline ones; local symbols are renamed
# too, because some groups are named by one (GCC's C5/D5 constructor and destructor
# groups, whose signature is local while their C1/C2 members are weak). Undefined symbols (libc,
# libstdc++, operator new) are baseline code and stay as they are.
#   cmake -DNM=<nm> -DOBJCOPY=<objcopy> -DINPUT=<object> -DOUTPUT=<object> -P this file
set(entry_point "_ZN7tessera6client8internal14Avx2MlpKernelsEv")
execute_process(COMMAND "${NM}" --defined-only "${INPUT}"
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${INPUT}")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(renames "")
set(found_entry_point FALSE)
foreach(line IN LISTS lines)
  # "<address> <type> <name>"
  if(line MATCHES "^[0-9a-f]* ([A-Za-z]) (.+)$")
    set(name "${CMAKE_MATCH_2}")
    if(name STREQUAL entry_point)
      set(found_entry_point TRUE)
    else()
      string(APPEND renames "${name} tessera_avx2.${name}\n")
    endif()
  endif()
endforeach()
if(NOT found_entry_point)
  message(FATAL_ERROR "${INPUT} does not define ${entry_point}")
endif()
file(WRITE "${OUTPUT}.renames" "${renames}")
execute_process(COMMAND "${OBJCOPY}" "--redefine-syms=${OUTPUT}.renames" "${INPUT}" "${OUTPUT}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${OBJCOPY} failed on ${INPUT}")
endif()
