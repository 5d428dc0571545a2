#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A program calling an unsupported function twice through the shim gets
# cudaErrorNotSupported both times and one message naming the function.
#   unsupported_check.sh PROGRAM SHIM_DIR SERVER WORKDIR
set -u
prog=$1 shim=$2 server=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
"$server" --listen "unix:$work/s.sock" --cache-dir "$work/cache" 2>"$work/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
i=0
while [ ! -S "$work/s.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
VGPU_SERVER="unix:$work/s.sock" LD_LIBRARY_PATH="$shim" "$prog" >"$work/out" 2>"$work/err"
rc=$?
cat "$work/out" "$work/err"
[ $rc -eq 0 ] || { echo "FAIL: exit status $rc"; exit 1; }
[ "$(grep -c '^cudaImportExternalMemory: cudaErrorNotSupported$' "$work/out")" -eq 2 ] ||
    { echo "FAIL: both calls must return cudaErrorNotSupported"; exit 1; }
[ "$(grep -c 'cudaImportExternalMemory is not supported by vgpu (external memory and semaphores (OS handles) cannot cross the VM boundary)' "$work/err")" -eq 1 ] ||
    { echo "FAIL: the reason must be printed exactly once"; exit 1; }
echo "ok"
