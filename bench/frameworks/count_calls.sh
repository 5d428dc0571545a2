#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Counts, per training step, the calls that step_calls.py makes through vgpu:
# answered by the server ("sync"), queued, answered from the shim's cache,
# and stream synchronizes answered by the shim after a copy to the host had
# waited for their stream ("drained").  A fresh vgpu-server on a unix
# socket; the client has vgpu's libcuda.so.1 and NVML only.
#   count_calls.sh SHIM_DIR SERVER_BIN WORKDIR [STEPS]
set -u
shim=$1 server=$2 work=$3 steps=${4:-20}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=server.sh
. "$here/server.sh"
VGPU_LOG=debug VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$work/lib python3 "$here/step_calls.py" \
    "$steps" > /dev/null 2> "$work/calls.log"
rc=$?
kill $pid 2>/dev/null; wait $pid 2>/dev/null
[ $rc -eq 0 ] || { echo "step_calls.py failed ($rc)"; tail -n 20 "$work/calls.log"; exit 1; }
awk -v steps="$steps" '
    /^=== begin/ { model = $3; on = 1; next }
    /^=== end/ { on = 0; next }
    on && /^vgpu: / {
        name = $2; sub(/:$/, "", name)
        if ($0 ~ / queued$/) kind = "queued"
        else if ($0 ~ /\(cached\)$/) kind = "cached"
        else if ($0 ~ /\(drained\)$/) kind = "drained"
        else if ($0 ~ /\(queued\) ->/) next
        else if ($3 == "->") kind = "sync"
        else next
        n[model " " kind " " name]++; t[model " " kind]++
    }
    END {
        for (k in t) printf "%s per step: %.1f\n", k, t[k] / steps
        for (k in n) if (n[k] / steps >= 0.5) printf "  %s %.1f\n", k, n[k] / steps
    }' "$work/calls.log" | sort
