#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_crashed.sh NAME SERVER FAKE_DIR SHIM_DIR VICTIM WORK
#
# A session process dies under a call (the fake driver writes through a null
# pointer when told to: VGPU_FAKE_DIE_ON_MEMSET) while another program's
# session runs beside it.  The dying session's program gets
# cudaErrorNoDevice within a second and ends; the server logs the signal;
# the other program runs on untouched, its device memory the only memory
# vgpuctl still shows; the dead session leaves no process (not even a
# zombie) behind; and a new program is served afterwards.
set -u
name=$1 server=$2 fake=$3 shim_dir=$4 victim=$5 work=$6
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
# shellcheck source=victims.sh
. "$(dirname "$0")/victims.sh"

fresh_work s
ctl=$(dirname "$server")/vgpuctl
fail() {
    echo "$name: $*" >&2
    for f in dying other; do
        echo "--- $f" >&2
        cat "$work/$f.out" "$work/$f.err" >&2 2>/dev/null
    done
    tail -n 20 "$work/server.log" >&2
    exit 1
}
# the fake dies under a cudaMemset of 4093 bytes, which only the "die" program asks
VGPU_FAKE_DIE_ON_MEMSET=4093
# a sanitized server's session must die by the signal too, not by ASan's report and exit(1)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0
export VGPU_FAKE_DIE_ON_MEMSET ASAN_OPTIONS
start_server "$fake" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
client() {
    env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" timeout 60 "$victim" "$@"
}
client >"$work/other.out" 2>"$work/other.err" &
other=$!
ready other
other_session=$(pgrep -P "$server_pid")
[ -n "$other_session" ] || fail "no session for the other program"
# the dying program starts only once the other holds its memory
mkfifo "$work/go"
(read -r _ <"$work/go"; exec env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" \
    timeout 60 "$victim" die) >"$work/dying.out" 2>"$work/dying.err" &
dying=$!
echo go >"$work/go"
ends_ok "$dying" 50 "the program whose driver died"
grep -q '^the call its driver died under: cudaErrorNoDevice (under a second)$' "$work/dying.out" ||
    fail "the call under which the session died did not fail with cudaErrorNoDevice within a second"
grep -q 'lost the connection to vgpu-server' "$work/dying.err" ||
    fail "the dying program's stderr does not say it lost the connection"
# the server reaped it (no zombie: pgrep lists zombies too), and said why it ended
i=0
while [ "$(pgrep -P "$server_pid" | wc -l)" -ne 1 ]; do
    [ "$i" -lt 20 ] || fail "the dead session is still a child of the server: $(ps -o pid,stat,cmd --ppid "$server_pid")"
    sleep 0.1
    i=$((i + 1))
done
[ "$(pgrep -P "$server_pid")" = "$other_session" ] || fail "the other program's session changed"
grep -q 'ended by signal 11 (Segmentation fault)' "$work/server.log" ||
    fail "the server did not log the session's end by SIGSEGV"
# the other program runs on, and only its memory is held
kill -0 "$other" 2>/dev/null || fail "the other program ended"
sleep 0.3
grep -q '^error' "$work/other.out" && fail "the other program saw an error"
"$ctl" --admin "$sock.admin" --json >"$work/ctl.json" || fail "vgpuctl failed"
sessions=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["sessions"]))' "$work/ctl.json")
mem=$(python3 -c 'import json,sys; print(sum(s["device_memory"] for s in json.load(open(sys.argv[1]))["sessions"]))' "$work/ctl.json")
[ "$sessions" -eq 1 ] && [ "$mem" -eq 4096 ] ||
    fail "vgpuctl shows $sessions sessions holding $mem bytes (want 1 holding 4096): $(cat "$work/ctl.json")"
# a new program is served
client once >"$work/again.out" 2>"$work/again.err" ||
    fail "a program after the crash failed: $(cat "$work/again.out" "$work/again.err")"
kill "$other" 2>/dev/null
wait "$other" 2>/dev/null
echo "$name: $(grep '^the call' "$work/dying.out"); $(grep -o 'ended by signal.*' "$work/server.log" | head -n 1)"
echo "$name: passed"
