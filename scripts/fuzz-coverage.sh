#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# clang's source-based coverage of what the fuzzers' corpora reach in
# server/ and wire/: each fuzzer of a coverage build runs its corpus once
# (libFuzzer's -runs=0), the profiles are merged, and llvm-cov reports the
# lines, functions and regions reached, file by file and in all.  A long
# run's corpora (docs/reliability.md) are what to give it.
#   scripts/fuzz-coverage.sh COVBUILD OUTDIR FUZZER:CORPUS_DIR...
# COVBUILD is configured as
#   CC=clang cmake -S . -B COVBUILD -DVGPU_FUZZ=ON -DVGPU_BUILD_TESTS=OFF \
#       -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping"
# and built with the fuzzers named.  OUTDIR/coverage.txt gets the report.
set -eu
[ $# -ge 3 ] || { echo "usage: fuzz-coverage.sh COVBUILD OUTDIR FUZZER:CORPUS_DIR..." >&2; exit 2; }
for tool in llvm-profdata llvm-cov; do
    command -v "$tool" >/dev/null ||
        { echo "fuzz-coverage: no $tool (Debian's llvm package has it: apt-get install llvm)" >&2; exit 1; }
done
build=$(cd "$1" && pwd)
out=$2
shift 2
mkdir -p "$out"
rm -f "$out"/*.profraw
objects=""
for spec in "$@"; do
    fuzzer=${spec%%:*} corpus=${spec#*:}
    bin=$build/fuzz/$fuzzer
    [ -x "$bin" ] || { echo "fuzz-coverage: no $bin (build it in $build)" >&2; exit 1; }
    [ -d "$corpus" ] || { echo "fuzz-coverage: no corpus directory $corpus" >&2; exit 1; }
    echo "fuzz-coverage: $fuzzer over $(find "$corpus" -type f | wc -l) inputs of $corpus"
    # the fake runtime's refusals go to stderr: kept out of the way
    LLVM_PROFILE_FILE="$out/$fuzzer.profraw" "$bin" -runs=0 -timeout=60 "$corpus" \
        > "$out/$fuzzer.log" 2>&1 || { echo "fuzz-coverage: $fuzzer failed, see $out/$fuzzer.log" >&2; exit 1; }
    if [ -z "$objects" ]; then objects=$bin; else objects="$objects -object=$bin"; fi
done
llvm-profdata merge -sparse -o "$out/all.profdata" "$out"/*.profraw
src=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2086
llvm-cov report -instr-profile="$out/all.profdata" $objects \
    -ignore-filename-regex='(/tests/|/fuzz/|/gen/|\.pb-c\.c$|/usr/)' \
    > "$out/coverage.txt"
sed "s|$src/||" "$out/coverage.txt" > "$out/coverage.tmp" && mv "$out/coverage.tmp" "$out/coverage.txt"
tail -n 1 "$out/coverage.txt"
