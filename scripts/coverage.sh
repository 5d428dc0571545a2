#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The main job until the shim and server land: install, build vgpu-codegen,
# run it over the installed CUDA headers and print what it remotes.
set -eu
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
cmake -S . -B build/main -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/main --target coverage -j"$(nproc)"
