#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The main job: build vgpu, start a vgpu-server on a private socket and run a
# CUDA program through the shim, then stop the server.  Without arguments it
# runs the vector_add example.  On a machine without a GPU the program gets
# the same CUDA errors it would get natively.
#   scripts/run.sh [PROGRAM [ARGS...]]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build/main
"$top/scripts/setup-deps.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
[ $# -gt 0 ] || set -- "$build/examples/vector_add"

dir=$(mktemp -d /tmp/vgpu-run.XXXXXX)
"$build/server/vgpu-server" --listen "unix:$dir/vgpu.sock" --cache-dir "$dir/cache" \
    --log-level "${VGPU_SERVER_LOG:-warn}" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
i=0
while [ ! -S "$dir/vgpu.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "vgpu: running $* through the shim ($build/shim) and vgpu-server (unix:$dir/vgpu.sock)" >&2
rc=0
VGPU_SERVER="unix:$dir/vgpu.sock" LD_LIBRARY_PATH="$build/shim" "$@" || rc=$?
exit $rc
