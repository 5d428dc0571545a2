#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_killed.sh NAME HOW SERVER FAKE_DIR SHIM_DIR VICTIM WORK
#
# The server is killed with SIGKILL under a running program: HOW is
# "parent" (the server's main process alone) or "group" (its whole process
# group).  Within a second every session process is gone (none is left
# orphaned, serving a client no server knows), and the program's next call
# fails (cudaErrorNoDevice) within a second instead of hanging; the
# client's stderr says it lost the connection to the server.  A server
# started again on the same socket then serves a new program.  VGPU_SHM decides the
# carrier (the shared-memory queue pair, or the socket alone with 0).
set -u
name=$1 how=$2 server=$3 fake=$4 shim_dir=$5 victim=$6 work=$7
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
# shellcheck source=victims.sh
. "$(dirname "$0")/victims.sh"

fresh_work s
# A process that still runs (a zombie waiting for its reaper does not).
alive() {
    [ -r "/proc/$1/stat" ] && ! awk '{ sub(/^.*\) /, ""); exit $1 == "Z" ? 0 : 1 }' "/proc/$1/stat"
}
fail() {
    echo "$name: $*" >&2
    cat "$work/victim.out" "$work/victim.err" >&2 2>/dev/null
    tail -n 20 "$work/server.log" >&2
    exit 1
}
# "group": a process group of its own, to kill as a whole
[ "$how" = group ] && server_wrap=setsid
start_server "$fake" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" timeout 60 "$victim" \
    >"$work/victim.out" 2>"$work/victim.err" &
victim_pid=$!
ready victim
sessions=$(pgrep -P "$server_pid")
[ -n "$sessions" ] || fail "no session process under the server"
if [ "$how" = group ]; then
    kill -KILL "-$server_pid"
else
    kill -KILL "$server_pid"
fi
wait "$server_pid" 2>/dev/null
server_pid=
# every session gone within a second
i=0
for s in $sessions; do
    while alive "$s"; do
        [ "$i" -lt 10 ] || fail "session $s still runs a second after the server was killed"
        sleep 0.1
        i=$((i + 1))
    done
done
# the program got its error within a second or two of its next call, and ended
ends_ok "$victim_pid" 30 "the program, the server killed,"
grep -q '^error: cudaErrorNoDevice (the call took under a second)$' "$work/victim.out" ||
    fail "the program's failing call did not fail with cudaErrorNoDevice within a second"
grep -q 'lost the connection to vgpu-server' "$work/victim.err" ||
    fail "the program's stderr does not say it lost the connection to the server"
# a server started again on the same socket serves a new program (the dead one's socket
# file removed first, so that start_server waits for the new one's)
rm -f "$sock"
start_server "$fake" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" timeout 60 "$victim" once \
    >"$work/again.out" 2>"$work/again.err" ||
    fail "a program after the restart failed: $(cat "$work/again.out" "$work/again.err")"
echo "$name: $(grep '^error' "$work/victim.out"); stderr: $(head -n 1 "$work/victim.err")"
echo "$name: passed"
