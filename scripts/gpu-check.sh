#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The GPU host's half of the checks (never run by CI): with a bundle made by
# gpu-bundle.sh, on a host with a GPU and the CUDA 13 runtime,
#   1. every example and the -rdc program, natively and through vgpu: same
#      stdout, same exit status, and the native run succeeds;
#   2. vector_add with the shim loaded by LD_PRELOAD;
#   3. the fatbin cache: a second run uploads no image;
#   4. a client killed with SIGKILL during a large copy: the server stays up
#      and the session's device memory is freed (cudaMemGetInfo);
#   5. wall time of vector_add natively and through vgpu.
# Writes logs and summary.txt into OUTDIR.
#   scripts/gpu-check.sh BUNDLE OUTDIR
set -u
summary=summary.txt
# shellcheck source=gpu-host.sh
. "$(dirname "$0")/gpu-host.sh"
work=$(mktemp -d /tmp/vgpu-gpu.XXXXXX)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1
say "gpu: $(cat "$out/gpu.txt")"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# 1 and 2: differential runs; driver-API and static-runtime programs on vgpu's libcuda.so.1
pass=0 fail=0
for bin in "$bundle"/examples/* "$bundle/tests/vgpu_rdc" "$bundle/tests/drv_fill" \
    "$bundle/tests/static_fill"; do
    name=$(basename "$bin")
    driver=
    case $name in drv_*|*_static|static_*) driver=--driver ;; esac
    if "$here/tests/e2e/run_diff.sh" $driver --require-gpu "$name" "$bin" "$bundle/shim" \
        "$bundle/bin/vgpu-server" "$work/$name" >> "$out/e2e.log" 2>&1; then
        pass=$((pass + 1)); say "e2e $name: same output, exit 0"
    else
        fail=$((fail + 1)); say "e2e $name: FAILED (see e2e.log)"
    fi
done
if "$here/tests/e2e/run_diff.sh" --preload --require-gpu vector_add_preload \
    "$bundle/examples/vector_add" "$bundle/shim" "$bundle/bin/vgpu-server" \
    "$work/preload" >> "$out/e2e.log" 2>&1; then
    pass=$((pass + 1)); say "e2e vector_add (LD_PRELOAD): same output, exit 0"
else
    fail=$((fail + 1)); say "e2e vector_add (LD_PRELOAD): FAILED"
fi
say "differential: $pass passed, $fail failed"

# a server for the checks below
sock=$work/s.sock cache=$work/cache
"$bundle/bin/vgpu-server" --listen "unix:$sock" --cache-dir "$cache" --log-level info \
    2> "$out/server.log" &
srv=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
vg() { VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$bundle/shim "$@"; }

# 3: fatbin cache
vg "$bundle/examples/vector_add" > "$out/vector_add.vgpu1.out" 2>&1
n1=$(grep -c "fatbin image received" "$out/server.log")
vg "$bundle/examples/vector_add" > "$out/vector_add.vgpu2.out" 2>&1
n2=$(grep -c "fatbin image received" "$out/server.log")
hits=$(grep -c "fatbin image from the cache" "$out/server.log")
say "fatbin cache: first run uploaded $n1 image(s); second run uploaded $((n2 - n1)), found $hits in the cache"

# 4: SIGKILL during a large copy
free0=$(vg "$bundle/tests/vgpu_meminfo" | awk '{print $2}')
# env execs the program, so $! is the client itself
env VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$bundle/shim" "$bundle/tests/vgpu_memhog" 8 \
    > "$work/hog.out" 2>&1 &
hog=$!
for _ in $(seq 100); do grep -q copying "$work/hog.out" 2>/dev/null && break; sleep 0.1; done
sleep 1
free1=$(vg "$bundle/tests/vgpu_meminfo" | awk '{print $2}')
sessions_before=$(pgrep -c -P $srv)
kill -9 $hog; wait $hog 2>/dev/null
killed=$(date +%s%N)
for _ in $(seq 100); do
    free2=$(vg "$bundle/tests/vgpu_meminfo" | awk '{print $2}')
    [ "$free2" -ge $((free0 - 64)) ] 2>/dev/null && break
    sleep 0.1
done
ms=$(( ($(date +%s%N) - killed) / 1000000 ))
alive=no; kill -0 $srv 2>/dev/null && alive=yes
say "killed client: free MiB before $free0, while holding 8 GiB $free1, after SIGKILL $free2 (within $ms ms); server alive: $alive; sessions before/after: $sessions_before/$(pgrep -c -P $srv)"
cat "$work/hog.out" > "$out/memhog.out"

# 5: wall time
t() { local s e; s=$(date +%s%N); "$@" > /dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
for i in 1 2 3; do
    tn=$(t "$bundle/examples/vector_add"); tv=$(t vg "$bundle/examples/vector_add")
    say "vector_add wall ms: native $tn, vgpu $tv"
done
kill -TERM $srv; wait $srv
say "server exit status after SIGTERM: $?"
rm -rf "$work"
