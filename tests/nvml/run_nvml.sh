#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# NVML through vgpu against a vgpu-server on the fake runtime: nvml_test (a
# cmocka program linked with vgpu's libnvidia-ml.so.1 and libcudart.so.13)
# runs MODE against a server that has the fake NVML in NVML_DIR, or none
# when NVML_DIR is "-".  The server's listener belongs to vm 7, which may
# hold 256 MiB of device memory (nvmlDeviceGetMemoryInfo's total); a second
# listener belongs to vm 8, another tenant, whose process (nvml_test hold)
# holds 96 MiB on the same GPU while the test runs and must not show.
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
holder_pid=
extra_libs=
[ "$nvml_dir" = - ] || extra_libs=$nvml_dir
cleanup() {
    [ -z "$holder_pid" ] || kill "$holder_pid" 2>/dev/null
    [ -z "$holder_pid" ] || wait "$holder_pid" 2>/dev/null
    stop_server
    rm -f "$work/hold.in"
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
# the other tenant: holds its memory until its stdin (a fifo we keep open) closes
mkfifo "$work/hold.in" || fail "mkfifo failed"
VGPU_SERVER=unix:$other LD_LIBRARY_PATH=$shim_dir timeout 90 "$program" hold \
    <"$work/hold.in" >"$work/hold.out" 2>"$work/hold.err" &
holder_pid=$!
exec 3>"$work/hold.in"
i=0
until grep -q holding "$work/hold.out" 2>/dev/null; do
    kill -0 "$holder_pid" 2>/dev/null || fail "the other tenant's process failed: $(cat "$work/hold.err")"
    [ "$i" -lt 100 ] || fail "the other tenant's process did not start holding memory in 10 s"
    sleep 0.1
    i=$((i + 1))
done
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 60 "$program" "$mode" \
    >"$work/out.txt" 2>"$work/shim.log"
rc=$?
problems=
exec 3>&-
wait "$holder_pid" || problems="the other tenant's process failed;"
holder_pid=
cat "$work/out.txt"

[ "$rc" = 0 ] || problems="$problems exit status $rc;"
kill -0 "$server_pid" 2>/dev/null || problems="$problems the server died;"
if [ -n "$problems" ]; then
    echo "$name: FAILED:$problems"
    tail -n 30 "$work/shim.log" "$work/server.log"
    exit 1
fi
echo "$name: passed"
