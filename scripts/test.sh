#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Installs dependencies, then builds and runs the whole test suite in three
# configurations: gcc (which also builds QEMU with the vgpu-stub device and
# fetches the guest kernel), clang with ASan+UBSan (reusing that QEMU and
# kernel, so the sanitized server also serves the device and guest tests),
# the Debian packages with lintian, and the libFuzzer smoke run of the frame
# decoder.  Exits non-zero on the
# first failure.
set -eu
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
jobs=$(nproc)

echo "== gcc build and tests"
CC=gcc cmake -S . -B build/gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build/gcc -j"$jobs"
(cd build/gcc && ctest --output-on-failure -j"$jobs")

echo "== clang + ASan/UBSan build and tests"
CC=clang cmake -S . -B build/clang-asan -DCMAKE_BUILD_TYPE=Debug -DVGPU_SANITIZE=ON \
    -DVGPU_QEMU=OFF -DVGPU_QEMU_BINARY="$PWD/build/gcc/qemu/qemu-system-x86_64" \
    -DVGPU_VM_KERNEL="$PWD/build/gcc/tests/vm/kernel/vmlinux"
cmake --build build/clang-asan -j"$jobs"
(cd build/clang-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --output-on-failure -j"$jobs")

echo "== Debian packages (dpkg-buildpackage, lintian)"
scripts/build-debs.sh build/debs

echo "== libFuzzer smoke run of the frame decoder"
CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DVGPU_FUZZ=ON -DVGPU_BUILD_TESTS=OFF
cmake --build build/fuzz -j"$jobs"
(cd build/fuzz && ctest --output-on-failure -L fuzz)

echo "== all tests passed"
