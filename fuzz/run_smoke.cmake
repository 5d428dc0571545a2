# SPDX-License-Identifier: Apache-2.0
#
# Runs a libFuzzer target for a bounded number of runs from a fresh working
# corpus (so that every smoke run starts from the same seeds), with crash
# artifacts written next to it. Invoked by ctest:
#   cmake -DFUZZER=... -DSEEDS=... -DWORK=... -DDICT=... -DRUNS=... -P run_smoke.cmake
foreach(var FUZZER SEEDS WORK DICT RUNS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_smoke.cmake: -D${var}= is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
execute_process(
  COMMAND ${FUZZER} -runs=${RUNS} -max_len=4096 -max_total_time=240 -seed=1
          -dict=${DICT} -artifact_prefix=${WORK}/artifacts/
          ${WORK}/corpus ${SEEDS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); reproducer in ${WORK}/artifacts/")
endif()
