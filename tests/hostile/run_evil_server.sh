#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_evil_server.sh NAME SERVER FAKE_DIR SHIM_DIR EVIL_SO WORK SEEDS FIRST_SEED PROGRAM...
#
# The shim against a hostile server: for each of SEEDS seeds from
# FIRST_SEED, a vgpu-server on the fake runtime and driver with EVIL_SO
# (evil_send.c) preloaded, so that its sessions corrupt one reply in 4 to 40
# past the handshake, and each PROGRAM run against it once over the socket
# (VGPU_SHM=0).  A program may fail, print wrong results or be stopped after
# 5 s (a corrupted length can leave it waiting for bytes that never come,
# as any silent server can; counted as "waited"), but it must never die by a
# signal or with a sanitizer's report: that fails the test, and the seed,
# program and outputs are kept in WORK/failed-SEED-PROGRAM.*.
set -u
name=$1 server=$2 fake=$3 shim_dir=$4 evil=$5 work=$6 seeds=$7 first=$8
shift 8
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"

[ -f "$evil" ] || { echo "$name: no $evil" >&2; exit 1; }
fresh_work s
runs=0 failed=0 waited=0 errors=0 clean=0
seed=$first
while [ "$seed" -lt $((first + seeds)) ]; do
    rm -f "$sock"
    # one reply in 4, 16, 28 or 40 corrupted: early failures and deep ones
    server_wrap="env LD_PRELOAD=$evil VGPU_EVIL_SEED=$seed VGPU_EVIL_EVERY=$((4 + seed % 4 * 12))"
    start_server "$fake" --listen "unix:$sock" --cache-dir "$work/cache" --log-level error
    for p in "$@"; do
        n=${p##*/}
        env -u LD_PRELOAD VGPU_SHM=0 VGPU_SERVER="unix:$sock" LD_LIBRARY_PATH="$shim_dir" \
            timeout -s KILL 5 "$p" >"$work/out" 2>"$work/err" </dev/null
        rc=$?
        runs=$((runs + 1))
        if [ "$rc" -eq 137 ]; then
            waited=$((waited + 1))
        elif [ "$rc" -gt 128 ] || grep -q 'Sanitizer\|runtime error:' "$work/err"; then
            failed=$((failed + 1))
            cp "$work/out" "$work/failed-$seed-$n.out"
            cp "$work/err" "$work/failed-$seed-$n.err"
            echo "$name: seed $seed, $n: exit $rc" >&2
            tail -n 15 "$work/err" >&2
        elif [ "$rc" -ne 0 ]; then
            errors=$((errors + 1))
        else
            clean=$((clean + 1))
        fi
    done
    stop_server
    seed=$((seed + 1))
done
echo "$name: $runs runs against a corrupting server: $clean ended 0, $errors ended with an error, $waited stopped after 5 s, $failed crashed"
[ "$failed" -eq 0 ] || exit 1
# a server that corrupted nothing would prove nothing
[ $((errors + waited)) -gt 0 ] || { echo "$name: no run saw a corrupted reply" >&2; exit 1; }
echo "$name: passed"
