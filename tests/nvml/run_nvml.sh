#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# NVML through vgpu against a vgpu-server on the fake runtime: nvml_test (a
# cmocka program linked with vgpu's libnvidia-ml.so.1 and libcudart.so.13)
# runs MODE against a server that has the fake NVML in NVML_DIR, or none
# when NVML_DIR is "-".  The server's listener belongs to vm 7, which may
# hold 256 MiB of device memory (nvmlDeviceGetMemoryInfo's total).
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
server_pid=
extra_libs=
[ "$nvml_dir" = - ] || extra_libs=$nvml_dir
trap 'stop_server' EXIT
cat >"$work/vgpu.conf" <<CONF
[listen tenant]
address = unix:$sock
vm_id = 7

[vm 7]
memory = 256M
CONF
start_server "$fake_dir" --config "$work/vgpu.conf" --cache-dir "$work/cache" --log-level info
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 60 "$program" "$mode" \
    >"$work/out.txt" 2>"$work/shim.log"
rc=$?
cat "$work/out.txt"
problems=
[ "$rc" = 0 ] || problems="$problems exit status $rc;"
kill -0 "$server_pid" 2>/dev/null || problems="$problems the server died;"
if [ -n "$problems" ]; then
    echo "$name: FAILED:$problems"
    tail -n 30 "$work/shim.log" "$work/server.log"
    exit 1
fi
echo "$name: passed"
