#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# A client that dies while its host callback is due (its main thread in
# cuStreamSynchronize on that stream, so the session's thread waits in the
# driver for the callback) leaves nothing behind: the trampoline sees the
# socket hang up and returns, the stream goes on, the session ends within
# 5 s, and the server serves the next client (the same program, whole).
#   run_died.sh NAME PROGRAM SHIM_DIR SERVER_BIN VGPUCTL FAKE_DIR WORKDIR EXPECTED
# Exit: 0 pass, 1 fail.
set -u
if [ $# -ne 8 ]; then
    echo "usage: run_died.sh NAME PROGRAM SHIM_DIR SERVER_BIN VGPUCTL FAKE_DIR WORKDIR EXPECTED" >&2
    exit 1
fi
name=$1 program=$2 shim_dir=$3 server=$4 vgpuctl=$5 fake_dir=$6 work=$7 expected=$8
fail() {
    echo "$name: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-died.XXXXXX")
server_pid=
trap 'stop_server' EXIT
start_server "$fake_dir" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
VGPU_TEST_CALLBACK_DIE=1 VGPU_SERVER=unix:$sock VGPU_LOG=info LD_LIBRARY_PATH=$shim_dir \
    timeout 30 "$program" >"$work/died.out" 2>"$work/died.err"
rc=$?
[ "$rc" = 3 ] || fail "the program ended with status $rc, not 3 (from its callback): $(tail -n 3 "$work/died.out" "$work/died.err")"
i=0
while :; do
    "$vgpuctl" --admin "$sock.admin" --json >"$work/after.json" 2>&1
    grep -q '"sessions":\[\]' "$work/after.json" && break
    [ "$i" -lt 50 ] || fail "a session is still there 5 s after its client died in a callback: $(cat "$work/after.json")"
    sleep 0.1
    i=$((i + 1))
done
kill -0 "$server_pid" 2>/dev/null || fail "the server died"
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir timeout 60 "$program" >"$work/next.out" 2>"$work/next.err" ||
    fail "the server does not serve the next client: $(tail -n 3 "$work/next.out" "$work/next.err")"
diff -u "$expected" "$work/next.out" || fail "the next client's output differs from $expected"
echo "$name: the session ended $((i * 100)) ms after its client died in a callback; the server serves on"
exit 0
