#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# A client that dies with requests in flight leaves nothing behind: the
# busy client (shared regions, the queue pair, copies and launches in
# a loop) is killed with SIGKILL; its session must be gone from vgpuctl and
# its process ended within 5 s, and the server must go on serving.
#   run_killed.sh NAME BUSY_CLIENT PROBE_PROGRAM SHIM_DIR SERVER_BIN VGPUCTL FAKE_DIR WORKDIR
# Exit: 0 pass, 1 fail.
set -u
if [ $# -ne 8 ]; then
    echo "usage: run_killed.sh NAME BUSY PROBE SHIM_DIR SERVER_BIN VGPUCTL FAKE_DIR WORKDIR" >&2
    exit 1
fi
name=$1 busy=$2 probe=$3 shim_dir=$4 server=$5 vgpuctl=$6 fake_dir=$7 work=$8
fail() {
    echo "$name: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-killed.XXXXXX")
server_pid=
client_pid=
trap '[ -z "$client_pid" ] || kill -KILL "$client_pid" 2>/dev/null; stop_server' EXIT
start_server "$fake_dir" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
VGPU_SERVER=unix:$sock VGPU_LOG=info LD_LIBRARY_PATH=$shim_dir "$busy" >"$work/busy.out" 2>"$work/busy.err" &
client_pid=$!
i=0
until grep -q ready "$work/busy.out" 2>/dev/null; do
    kill -0 "$client_pid" 2>/dev/null || fail "the busy client ended early: $(tail -n 2 "$work/busy.err")"
    [ "$i" -lt 100 ] || fail "the busy client was not ready after 10 s"
    sleep 0.1
    i=$((i + 1))
done
grep -q "shared-memory queue pair" "$work/busy.err" || fail "the busy client has no queue pair"
sleep 0.3                                   # requests in flight
"$vgpuctl" --admin "$sock.admin" --json >"$work/before.json" || fail "vgpuctl failed"
session=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["sessions"]; print(s[0]["pid"] if len(s)==1 and s[0]["device_memory"]>0 else "")' "$work/before.json")
[ -n "$session" ] || fail "vgpuctl does not show the busy client's session: $(cat "$work/before.json")"
kill -KILL "$client_pid"
wait "$client_pid" 2>/dev/null
client_pid=
i=0
while :; do
    "$vgpuctl" --admin "$sock.admin" --json >"$work/after.json" 2>&1
    if grep -q '"sessions":\[\]' "$work/after.json" && ! kill -0 "$session" 2>/dev/null; then
        break
    fi
    [ "$i" -lt 50 ] || fail "session $session still there 5 s after its client was killed: $(cat "$work/after.json")"
    sleep 0.1
    i=$((i + 1))
done
kill -0 "$server_pid" 2>/dev/null || fail "the server died"
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir "$probe" >"$work/probe.out" 2>&1 ||
    fail "the server does not serve the next client: $(tail -n 3 "$work/probe.out")"
echo "$name: session $session ended $((i * 100)) ms after its client was killed; the server serves on"
exit 0
