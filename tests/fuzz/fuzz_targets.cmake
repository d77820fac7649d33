# outpost_fuzz_target(NAME SOURCE src LIBS libs... [CORPUS dir])
#
# With OUTPOST_FUZZ (the `fuzz` preset, clang): a libFuzzer executable `NAME`
#   (run: build/fuzz/tests/fuzz/NAME tests/fuzz/corpus/NAME, plus -dict=tests/fuzz/NAME.dict
#   where there is one).
# Otherwise: `NAME_replay`, the same source linked with replay_main.cpp, registered as a ctest
#   that feeds every corpus file through the target once (so asan/ubsan builds cover the corpus).
function(outpost_fuzz_target name)
  cmake_parse_arguments(F "" "SOURCE;CORPUS" "LIBS" ${ARGN})
  if(NOT F_CORPUS)
    set(F_CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${name})
  endif()
  if(OUTPOST_FUZZ)
    add_executable(${name} ${F_SOURCE})
    target_compile_options(${name} PRIVATE ${OUTPOST_WARNINGS} -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
  else()
    add_executable(${name}_replay ${F_SOURCE} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/replay_main.cpp)
    target_compile_options(${name}_replay PRIVATE ${OUTPOST_WARNINGS})
    target_link_libraries(${name}_replay PRIVATE ${F_LIBS})
    add_test(NAME fuzz_replay.${name} COMMAND ${name}_replay ${F_CORPUS})
    set_tests_properties(fuzz_replay.${name} PROPERTIES LABELS "unit;fuzz")
  endif()
endfunction()
