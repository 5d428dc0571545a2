#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# NVML through vgpu against a vgpu-server on the fake runtime: nvml_test (a
# cmocka program linked with vgpu's libnvidia-ml.so.1 and libcudart.so.13)
# runs MODE against a server that has the fake NVML in NVML_DIR, or none
# when NVML_DIR is "-".  The server's listener belongs to vm 7, which may
# hold 256 MiB of device memory (nvmlDeviceGetMemoryInfo's total).  While the
# test runs, two more processes (nvml_test hold) hold device memory on the
# same GPU: a peer in vm 7 (32 MiB; its memory and process are the
# tenant's, and show) and one of vm 8, another tenant, on a second listener
# (96 MiB; must not show).  Their pids reach the test in VGPU_TEST_PEER_PID
# and VGPU_TEST_OTHER_PID.
#   run_nvml.sh NAME TEST_BIN SHIM_DIR SERVER_BIN FAKE_DIR NVML_DIR WORKDIR MODE
# Exit: 0 pass, 1 fail.
set -u
if [ $# -ne 8 ]; then
    echo "usage: run_nvml.sh NAME TEST_BIN SHIM_DIR SERVER_BIN FAKE_DIR NVML_DIR WORKDIR MODE" >&2
    exit 1
fi
name=$1 program=$2 shim_dir=$3 server=$4 fake_dir=$5 nvml_dir=$6 work=$7 mode=$8
fail() {
    echo "$name: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-nvml.XXXXXX")
other=$sock.other
server_pid=
holders=
extra_libs=
[ "$nvml_dir" = - ] || extra_libs=$nvml_dir
cleanup() {
    for p in $holders; do kill "$p" 2>/dev/null; done
    for p in $holders; do wait "$p" 2>/dev/null; done
    stop_server
    rm -f "$work"/*.in
}
trap cleanup EXIT
cat >"$work/vgpu.conf" <<CONF
[listen tenant]
address = unix:$sock
vm_id = 7

[listen other]
address = unix:$other
vm_id = 8

[vm 7]
memory = 256M
CONF
start_server "$fake_dir" --config "$work/vgpu.conf" --cache-dir "$work/cache" --log-level info

# hold TAG SOCKET MIB: a process holding MIB MiB through SOCKET until its
# stdin (a fifo kept open on fd 3, 4, ...) closes; prints its pid.
fd=3
hold() {
    mkfifo "$work/$1.in" || fail "mkfifo failed"
    VGPU_SERVER=unix:$2 LD_LIBRARY_PATH=$shim_dir timeout 90 "$program" hold "$3" \
        <"$work/$1.in" >"$work/$1.out" 2>"$work/$1.err" &
    holders="$holders $!"
    eval "exec $fd>\"\$work/$1.in\""
    fd=$((fd + 1))
    i=0
    until grep -q holding "$work/$1.out" 2>/dev/null; do
        [ "$i" -lt 100 ] || fail "$1 did not start holding memory in 10 s: $(cat "$work/$1.err")"
        sleep 0.1
        i=$((i + 1))
    done
}
hold peer "$sock" 32
hold other "$other" 96
VGPU_TEST_PEER_PID=$(awk '{ print $2 }' "$work/peer.out")
VGPU_TEST_OTHER_PID=$(awk '{ print $2 }' "$work/other.out")
export VGPU_TEST_PEER_PID VGPU_TEST_OTHER_PID
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 60 "$program" "$mode" \
    >"$work/out.txt" 2>"$work/shim.log"
rc=$?
problems=
exec 3>&- 4>&-
for p in $holders; do wait "$p" || problems="$problems a holding process failed;"; done
holders=
cat "$work/out.txt"

[ "$rc" = 0 ] || problems="$problems exit status $rc;"
# vm 8 has no memory limit: the device's total, used and free (the fake's 80 GiB, 1.5 GiB used)
if [ "$mode" = fake ] &&
    ! grep -qx 'memory total 85899345920 used 1610612736 free 84288733184' "$work/other.out"; then
    problems="$problems vm 8 (no limit) was not told the device's used and free memory;"
fi
kill -0 "$server_pid" 2>/dev/null || problems="$problems the server died;"
if [ -n "$problems" ]; then
    echo "$name: FAILED:$problems"
    tail -n 30 "$work/shim.log" "$work/server.log"
    exit 1
fi
echo "$name: passed"
