#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_storm.sh NAME SERVER FAKE_DIR STORM WORK CALLS SEED API_SPEC...
#
# Starts vgpu-server on the fake runtime and driver, runs handler_storm
# against it (CALLS hostile calls of every hand-written handler, SEED), and
# fails when a call got no result, or the server's log shows a sanitizer
# report or a session that died of a signal.
set -u
name=$1 server=$2 fake=$3 storm=$4 work=$5 calls=$6 seed=$7
shift 7
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"

fresh_work s
start_server "$fake" --listen "unix:$sock" --cache-dir "$work/cache" --log-level info
timeout 600 "$storm" "$sock" "$calls" "$seed" "$@" >"$work/out" 2>"$work/err"
rc=$?
cat "$work/out"
cat "$work/err"
stop_server
if [ "$rc" -ne 0 ]; then
    tail -n 40 "$work/server.log" >&2
    echo "$name: handler_storm failed (status $rc)" >&2
    exit 1
fi
if grep -n 'AddressSanitizer\|runtime error:\|LeakSanitizer\|killed by signal\|died of signal' \
        "$work/server.log" >&2; then
    echo "$name: the server's log shows a sanitizer report or a dead session (above)" >&2
    exit 1
fi
echo "$name: passed"
