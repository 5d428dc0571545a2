# SPDX-License-Identifier: Apache-2.0
#
# Runs a libFuzzer target for a bounded number of runs from a fresh working
# corpus (so that every smoke run starts from the same seeds), with crash
# artifacts written next to it. Invoked by ctest:
#   cmake -DFUZZER=... -DSEEDS=... -DWORK=... -DDICT=... -DRUNS=... -P run_smoke.cmake
# Optional: -DREGRESSIONS=DIR (inputs that found bugs, run first like the
# seeds), -DEXTRA=OPTION (one more libFuzzer option).
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
          ${EXTRA} ${WORK}/corpus ${SEEDS} ${REGRESSIONS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); reproducer in ${WORK}/artifacts/")
endif()
