# SPDX-License-Identifier: Apache-2.0
#
# Sourced by run.sh and count_calls.sh, with shim, server and work set:
# $work/lib gets vgpu's libcuda.so.1 and NVML alone (not the runtime shim,
# which would stand in for the frameworks' own libcudart), and a fresh
# vgpu-server listens on $sock; $pid is its process.
mkdir -p "$work/lib" && work=$(cd "$work" && pwd)
for l in libcuda.so.1 libnvidia-ml.so.1 libprotobuf-c.so.1; do
    [ -e "$shim/$l" ] && ln -sf "$(cd "$shim" && pwd)/$l" "$work/lib/$l"
done
sock=$work/vgpu.sock
rm -f "$sock"
"$server" --listen "unix:$sock" --cache-dir "$work/cache" --log-level warn 2> "$work/server.log" &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
