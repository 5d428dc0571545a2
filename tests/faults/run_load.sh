#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_load.sh NAME SERVER FAKE_DIR SHIM_DIR CLIENT WORK CLIENTS CALLS
#
# CLIENTS programs at once against one vgpu-server on the fake runtime,
# CALLS round trips each (tests/faults/load_client.cu): every one must end
# "ok" (no reply lost, misrouted or wrong), every session must be gone 5 s
# after the last client, and the server's main process must not grow by
# more than 4 MiB (its memory stays flat however many sessions came and
# went).  Prints the calls, the time and the main process's memory.
set -u
name=$1 server=$2 fake=$3 shim_dir=$4 client=$5 work=$6 clients=$7 calls=$8
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"

fresh_work s
fail() {
    echo "$name: $*" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
}
rss() {
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}
start_server "$fake" --listen "unix:$sock,sessions=$((clients + 8))" --cache-dir "$work/cache" \
    --log-level warn
# one client first, so what the first session makes the parent hold is counted before
env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" "$client" 4 >/dev/null 2>&1
before=$(rss "$server_pid")
start=$(date +%s)
i=0
pids=
while [ "$i" -lt "$clients" ]; do
    env -u LD_PRELOAD VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" timeout 600 "$client" \
        "$calls" >"$work/c$i.out" 2>"$work/c$i.err" &
    pids="$pids $!"
    i=$((i + 1))
done
for p in $pids; do
    wait "$p"            # the clients only: the server is a job of this shell too
done
secs=$(($(date +%s) - start))
ok=$(cat "$work"/c*.out | grep -c "^ok $calls\$")
if [ "$ok" -ne "$clients" ]; then
    grep -L "^ok $calls\$" "$work"/c*.out | head -n 3 | while read -r f; do
        echo "$f: $(cat "$f" "${f%.out}.err" | head -n 3)" >&2
    done
    fail "$ok of $clients clients ended ok"
fi
i=0
while [ -n "$(pgrep -P "$server_pid")" ]; do
    [ "$i" -lt 50 ] || fail "sessions still run 5 s after the last client: $(pgrep -P "$server_pid" | tr '\n' ' ')"
    sleep 0.1
    i=$((i + 1))
done
after=$(rss "$server_pid")
echo "$name: $clients clients x $calls calls in ${secs} s, all ok; server main process ${before} KiB before, ${after} KiB after"
[ $((after - before)) -le 4096 ] || fail "the server's main process grew by $((after - before)) KiB"
echo "$name: passed"
