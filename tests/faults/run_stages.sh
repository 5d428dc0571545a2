#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Clients killed with SIGKILL at each stage of their work leave nothing
# behind: in the handshake (a raw client that sent part of a frame's
# header), mid-copy (8 MiB copies both ways in a loop), with a stream
# capture open, and holding an instantiated, launched graph.  After each,
# within 5 s: no session process of the server left, vgpuctl shows no
# session and no device memory held, and the server's main process has
# the open files it had before the client (sessions' fds, regions' memfds
# and sockets all closed); at the end the server still serves a program.
#   run_stages.sh NAME SERVER_BIN VGPUCTL FAKE_DIR SHIM_DIR STAGE_CLIENT WORKDIR
# Exit: 0 pass, 1 fail.
set -u
if [ $# -ne 7 ]; then
    echo "usage: run_stages.sh NAME SERVER_BIN VGPUCTL FAKE_DIR SHIM_DIR STAGE_CLIENT WORKDIR" >&2
    exit 1
fi
name=$1 server=$2 vgpuctl=$3 fake_dir=$4 shim_dir=$5 client=$6 work=$7
fail() {
    echo "$name: $*" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/vgpu-stages.XXXXXX")
server_pid=
client_pid=
trap '[ -z "$client_pid" ] || kill -KILL "$client_pid" 2>/dev/null; stop_server' EXIT
start_server "$fake_dir" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
fds() { ls "/proc/$server_pid/fd" 2>/dev/null | wc -l; }
children() { pgrep -P "$server_pid" | tr '\n' ' '; }
fds_before=$(fds)

# wait_ready FILE: until the client printed "ready" (10 s at most)
wait_ready() {
    i=0
    until grep -q ready "$1" 2>/dev/null; do
        kill -0 "$client_pid" 2>/dev/null || fail "$stage: the client ended early: $(tail -n 2 "$work/$stage.err")"
        [ "$i" -lt 100 ] || fail "$stage: the client was not ready after 10 s"
        sleep 0.1
        i=$((i + 1))
    done
}

for stage in handshake copy capture graph; do
    if [ "$stage" = handshake ]; then
        # a frame header's first bytes, and no more
        python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.send(b"VGPU\x01\x00")
print("ready", flush=True)
time.sleep(60)' "$sock" >"$work/$stage.out" 2>"$work/$stage.err" &
        client_pid=$!
        wait_ready "$work/$stage.out"
        i=0
        while [ -z "$(children)" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        [ -n "$(children)" ] || fail "handshake: no session process for the raw client"
    else
        VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir "$client" "$stage" \
            >"$work/$stage.out" 2>"$work/$stage.err" &
        client_pid=$!
        wait_ready "$work/$stage.out"
        [ "$stage" != copy ] || sleep 0.3    # copies under way
        "$vgpuctl" --admin "$sock.admin" --json >"$work/$stage.before.json" || fail "$stage: vgpuctl failed"
        python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))["sessions"]
sys.exit(0 if len(s) == 1 and s[0]["device_memory"] > 0 else 1)' "$work/$stage.before.json" ||
            fail "$stage: vgpuctl does not show the client's session holding memory: $(cat "$work/$stage.before.json")"
    fi
    kill -KILL "$client_pid"
    wait "$client_pid" 2>/dev/null
    client_pid=
    i=0
    while :; do
        "$vgpuctl" --admin "$sock.admin" --json >"$work/$stage.after.json" 2>&1
        left=$(children)
        if [ -z "$left" ] && grep -q '"sessions":\[\]' "$work/$stage.after.json" &&
            [ "$(fds)" -eq "$fds_before" ]; then
            break
        fi
        [ "$i" -lt 50 ] || fail "$stage: 5 s after the kill: session processes '$left', $(fds) open files in the server (had $fds_before), vgpuctl: $(cat "$work/$stage.after.json")"
        sleep 0.1
        i=$((i + 1))
    done
    echo "$name: killed at $stage: nothing left after $((i * 100)) ms"
done
kill -0 "$server_pid" 2>/dev/null || fail "the server died"
VGPU_SERVER=unix:$sock LD_LIBRARY_PATH=$shim_dir "$client" probe >"$work/probe.out" 2>&1 ||
    fail "the server does not serve the next client: $(tail -n 3 "$work/probe.out")"
echo "$name: every stage left nothing behind; the server serves on"
exit 0
