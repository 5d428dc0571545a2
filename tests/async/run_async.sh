#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Asynchronous calls in batches: async_errors through the shim against a
# vgpu-server on the fake runtime (tests/fakecuda) must print EXPECTED, and
# the shim's debug log must show at least MIN_QUEUED calls that were queued
# rather than sent one by one, and a line matching SHIM_LOG_PATTERN (when
# given).
#   run_async.sh NAME PROGRAM SHIM_DIR SERVER_BIN FAKE_DIR WORKDIR EXPECTED
#                MIN_QUEUED [SHIM_LOG_PATTERN]
# Exit: 0 pass, 1 fail.
set -u
if [ $# -ne 8 ] && [ $# -ne 9 ]; then
    echo "usage: run_async.sh NAME PROGRAM SHIM_DIR SERVER_BIN FAKE_DIR WORKDIR EXPECTED MIN_QUEUED [PATTERN]" >&2
    exit 1
fi
name=$1 program=$2 shim_dir=$3 server=$4 fake_dir=$5 work=$6 expected=$7 min_queued=$8
pattern=${9:-}
fail() {
    echo "$name: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-async.XXXXXX")
server_pid=
trap 'stop_server' EXIT
start_server "$fake_dir" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
VGPU_SERVER=unix:$sock VGPU_LOG=debug LD_LIBRARY_PATH=$shim_dir timeout 60 "$program" \
    >"$work/out.txt" 2>"$work/shim.log"
rc=$?
problems=
[ "$rc" = 0 ] || problems="$problems exit status $rc;"
diff -u "$expected" "$work/out.txt" >"$work/out.diff" || problems="$problems output differs from $expected;"
queued=$(grep -c ' queued$' "$work/shim.log")
[ "$queued" -ge "$min_queued" ] ||
    problems="$problems only $queued calls were queued (expected at least $min_queued);"
# the carrier this run was meant to use
if [ "${VGPU_SHM:-1}" = 0 ]; then
    ! grep -q 'shared-memory queue pair' "$work/shim.log" ||
        problems="$problems the queue pair was used with VGPU_SHM=0;"
else
    grep -q 'shared-memory queue pair' "$work/shim.log" ||
        problems="$problems the shared-memory queue pair was not set up;"
fi
if [ -n "$pattern" ] && ! grep -q -- "$pattern" "$work/shim.log"; then
    problems="$problems no line matching '$pattern' in the shim's log;"
fi
kill -0 "$server_pid" 2>/dev/null || problems="$problems the server died;"
if grep -q 'fakecuda: refused' "$work/server.log"; then
    problems="$problems a guest value got past the server's checks (fakecuda: refused in server.log);"
fi
if [ -n "$problems" ]; then
    echo "$name: FAILED:$problems"
    cat "$work/out.diff"
    exit 1
fi
echo "$name: output as expected; $queued calls queued"
exit 0
