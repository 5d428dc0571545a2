#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The VM's memory limit over virtual memory management and memory pools:
# vgpu-server on the fake driver, with a listener of vm 42 that may hold
# 7 MiB of device memory, allocate nothing on a capturing stream, create at
# most 16 memory pools and set no release threshold above its limit;
# `vmm_fill limit` through vgpu's libcuda.so.1 must print EXPECTED, and the
# server must log the refusals naming the VM.
#   run_vmm_limit.sh PROGRAM SHIM_DIR SERVER_BIN FAKE_DIR WORKDIR EXPECTED
# Exit: 0 pass, 1 fail.
set -u
[ $# -eq 6 ] || { echo "usage: run_vmm_limit.sh PROGRAM SHIM_DIR SERVER_BIN FAKE_DIR WORKDIR EXPECTED" >&2; exit 1; }
program=$1 shim_dir=$2 server=$3 fake_dir=$4 work=$5 expected=$6
fail() {
    echo "vmm_limit: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-vmm.XXXXXX")
server_pid=
trap 'stop_server' EXIT
cat >"$work/vgpu.conf" <<CONF
[listen tenant]
address = unix:$sock
vm_id = 42

[vm 42]
memory = 7M
CONF
start_server "$fake_dir" --config "$work/vgpu.conf" --cache-dir "$work/cache" --log-level info
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 60 "$program" limit \
    >"$work/out.txt" 2>"$work/shim.log"
rc=$?
problems=
[ "$rc" = 0 ] || problems="$problems exit status $rc;"
diff -u "$expected" "$work/out.txt" >"$work/out.diff" || problems="$problems output differs from $expected;"
grep 'vm 42' "$work/server.log" | grep -q 'memory limit' ||
    problems="$problems no server log line with 'vm 42' and 'memory limit';"
grep 'vm 42' "$work/server.log" | grep -q 'capturing stream refused' ||
    problems="$problems no server log line refusing an allocation on a capturing stream;"
grep 'vm 42' "$work/server.log" | grep -q 'at most 16 memory pools' ||
    problems="$problems no server log line naming the cap of 16 memory pools;"
kill -0 "$server_pid" 2>/dev/null || problems="$problems the server died;"
if grep -q 'fakecuda: refused' "$work/server.log"; then
    problems="$problems a guest value got past the server's checks (fakecuda: refused in server.log);"
fi
if [ -n "$problems" ]; then
    echo "vmm_limit: FAILED:$problems"
    cat "$work/out.diff" "$work/shim.log"
    exit 1
fi
echo "vmm_limit: cuMemCreate and pool allocations count against vm 42's memory limit"
exit 0
