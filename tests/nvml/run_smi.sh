#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# vgpu-smi host-direct against a server on the fake runtime and fake NVML:
# vm 7 limited to 256 MiB, one of its processes holding 32 MiB (nvml_test
# hold).  vgpu-smi must find no device, name the server, load vgpu's NVML
# and show this VM's share, its use and its processes; -l and bad options
# are checked too.
#   run_smi.sh SMI NVML_TEST SHIM_DIR SERVER FAKE_DIR NVML_DIR WORK
set -u
smi=$1 program=$2 shim_dir=$3 server=$4 fake_dir=$5 nvml_dir=$6 work=$7
name=vgpu_smi
fail() {
    echo "$name: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-smi.XXXXXX")
server_pid=
holder=
extra_libs=$nvml_dir
cleanup() {
    exec 3>&-
    [ -n "$holder" ] && wait "$holder" 2>/dev/null
    stop_server
    rm -f "$work/hold.in" "$sock"
}
trap cleanup EXIT
cat >"$work/vgpu.conf" <<CONF
[listen tenant]
address = unix:$sock
vm_id = 7

[vm 7]
memory = 256M
CONF
start_server "$fake_dir" --config "$work/vgpu.conf" --cache-dir "$work/cache" --log-level info
mkfifo "$work/hold.in" || fail "mkfifo failed"
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 60 "$program" hold 32 \
    <"$work/hold.in" >"$work/hold.out" 2>"$work/hold.err" &
holder=$!
exec 3>"$work/hold.in"
i=0
until grep -q holding "$work/hold.out" 2>/dev/null; do
    [ "$i" -lt 100 ] || fail "the holder did not start in 10 s: $(cat "$work/hold.err")"
    sleep 0.1
    i=$((i + 1))
done
pid=$(awk '/holding/ { print $2 }' "$work/hold.out")
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 30 "$smi" >"$work/smi.out" 2>"$work/smi.err" ||
    fail "vgpu-smi exited $?: $(cat "$work/smi.err")"
for want in "no vgpu-stub device in this machine" \
            "CUDA programs here use vgpu-server at unix:$sock (VGPU_SERVER)" \
            "NVML: $shim_dir/libnvidia-ml.so.1 (vgpu's)" \
            "vgpu-server: reachable, vgpu-server $(cd "$(dirname "$0")/../.." && sed -n 's/^project(vgpu VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)" \
            "GPU 0: vgpu fake device" \
            "  memory 32 MiB used of 256 MiB (this VM's share)" \
            "    pid $pid, 512 MiB"; do
    grep -qxF "$want" "$work/smi.out" || fail "no line '$want' in: $(cat "$work/smi.out")"
done
# with the server gone, vgpu-smi says so plainly
stop_server
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 30 "$smi" >"$work/down.out" 2>"$work/down.err"
grep -q "^vgpu-server: not reachable (Driver Not Loaded; the library's line on stderr says why)\$" \
    "$work/down.out" || fail "no 'not reachable' line with the server down: $(cat "$work/down.out")"
grep -q "cannot reach vgpu-server at unix:$sock" "$work/down.err" ||
    fail "the library did not say why: $(cat "$work/down.err")"
# --no-gpu asks nothing of NVML; -l prints again; bad input is refused
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir "$smi" --no-gpu >"$work/nogpu.out" 2>&1 ||
    fail "vgpu-smi --no-gpu failed"
grep -q NVML "$work/nogpu.out" && fail "--no-gpu loaded NVML"
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 3 "$smi" -l 1 --no-gpu >"$work/loop.out" 2>&1
[ "$(grep -c '^vgpu-smi ' "$work/loop.out")" -ge 2 ] || fail "-l 1 printed once in 3 s"
"$smi" -l 0 >/dev/null 2>&1 && fail "-l 0 was taken"
"$smi" extra >/dev/null 2>&1 && fail "an argument was taken"
echo "$name: ok"
