#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Isolation test: a session can use, read, write or free only what it
# created.  One vgpu-server; client A (iso_owner) creates a buffer, stream,
# event, kernel and variable and publishes their values; client B tries each
# of them, once as a CUDA program through the shim (iso_intruder) and once
# as raw frames past the shim (iso_intruder_raw, with a module of its own
# from RAW_FATBIN); then A checks that it saw
# no effect and that everything of its own still works.
#
#   run_isolation.sh [--require-gpu] [--fake-runtime DIR] NAME OWNER INTRUDER RAW
#                    RAW_FATBIN SHIM_DIR SERVER_BIN WORKDIR EXPECTED_DIR
#
#   --fake-runtime DIR  run the server on the fake libcudart.so.13 in DIR
#                       (tests/fakecuda); then also check that a call whose
#                       function the runtime lacks is answered
#                       cudaErrorNotSupported, and that no unchecked guest
#                       value reached the runtime ("fakecuda: refused")
#   --require-gpu       exit 77 (skipped) without an NVIDIA GPU
#
# Every output must match EXPECTED_DIR/{owner,intruder,raw,missing}.txt
# (compare_expected in iso_lib.sh: "CALL -> A|B" accepts either status).
# The server must stay up, log no sanitizer report, and stop cleanly.
# Exit: 0 pass, 1 fail, 77 skipped.  Everything goes under WORKDIR.
set -u
fake_dir=
require_gpu=0
while [ $# -gt 0 ]; do
    case "$1" in
    --require-gpu) require_gpu=1; shift ;;
    --fake-runtime) fake_dir=$2; shift 2 ;;
    -*) echo "run_isolation.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
if [ $# -ne 9 ]; then
    echo "usage: run_isolation.sh [--require-gpu] [--fake-runtime DIR] NAME OWNER INTRUDER RAW" \
         "RAW_FATBIN SHIM_DIR SERVER_BIN WORKDIR EXPECTED_DIR" >&2
    exit 1
fi
name=$1 owner=$2 intruder=$3 raw=$4 raw_fatbin=$5 shim_dir=$6 server=$7 work=$8 expected=$9
# shellcheck source-path=SCRIPTDIR source=iso_lib.sh
. "$(dirname "$0")/iso_lib.sh"

if [ "$require_gpu" = 1 ] && ! gpu_present; then
    echo "$name: no NVIDIA GPU on this machine, skipped"
    exit 77
fi
for f in "$owner" "$intruder" "$raw" "$server"; do
    [ -x "$f" ] || fail "$f is missing; build it first"
done
[ -f "$shim_dir/libcudart.so.13" ] || fail "no shim in $shim_dir; build it first"
[ -f "$raw_fatbin" ] || fail "$raw_fatbin is missing; build it first"
rm -rf "$work"
mkdir -p "$work/cache" || fail "cannot create $work"
chmod 700 "$work/cache" || fail "cannot chmod $work/cache"
work=$(cd "$work" && pwd -P)
pick_socket vgpu.sock

server_pid=
owner_pid=
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    [ -z "$owner_pid" ] || kill "$owner_pid" 2>/dev/null
    stop_server
    [ -z "$sockdir" ] || rm -rf "$sockdir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

start_server "$fake_dir" --listen "unix:$sock,vm_id=7,pool=A,priority=high" \
    --admin "$sock.admin" --cache-dir "$work/cache" --log-level info

problems=
client "$owner" "$work" >"$work/owner.out" 2>"$work/owner.err" &
owner_pid=$!
wait_file "$work/owner.vals" 30 "$owner_pid" ||
    problems="$problems the owner published no owner.vals;"
# vgpuctl sees the owner's session: its identity and what it holds
vgpuctl=$(dirname "$server")/vgpuctl
if [ -z "$problems" ] && [ -x "$vgpuctl" ]; then
    "$vgpuctl" --admin "$sock.admin" --json >"$work/vgpuctl.json" 2>&1 ||
        problems="$problems vgpuctl failed;"
    python3 - "$work/vgpuctl.json" >"$work/vgpuctl.check" 2>&1 <<'PY' ||
import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["sessions"] if x["vm_id"] == 7]
assert len(s) == 1, "one session of vm 7, got %r" % d["sessions"]
s = s[0]
assert (s["pool"], s["priority"]) == ("A", "high"), s
assert s["device_memory"] > 0 and s["streams"] >= 1 and s["calls"] > 0, s
assert s["client"] == "iso_owner", s
assert any(p["pool"] == "A" for p in d["pools"]), d["pools"]
PY
        problems="$problems vgpuctl --json does not show the owner's session ($(tail -n 1 "$work/vgpuctl.check"));"
    "$vgpuctl" --admin "$sock.admin" >"$work/vgpuctl.txt" 2>&1 ||
        problems="$problems vgpuctl (text) failed;"
fi
if [ -z "$problems" ]; then
    client "$intruder" "$work" >"$work/intruder.out" 2>"$work/intruder.err"
    rc=$?
    [ "$rc" = 0 ] || problems="$problems iso_intruder exited with status $rc;"
    timeout 60 "$raw" "$sock" "$work" "$raw_fatbin" >"$work/raw.out" 2>"$work/raw.err"
    rc=$?
    [ "$rc" = 0 ] || problems="$problems iso_intruder_raw exited with status $rc;"
fi
: >"$work/intruders.done"
wait "$owner_pid"
rc=$?
owner_pid=
[ "$rc" = 0 ] || problems="$problems iso_owner exited with status $rc;"

outputs="owner intruder raw"
if [ -n "$fake_dir" ]; then
    timeout 60 "$raw" "$sock" --missing >"$work/missing.out" 2>"$work/missing.err" ||
        problems="$problems iso_intruder_raw --missing failed;"
    outputs="$outputs missing"
fi
for o in $outputs; do
    [ -f "$work/$o.out" ] || continue
    compare_expected "$expected/$o.txt" "$work/$o.out" >"$work/$o.diff" ||
        problems="$problems $o.out differs from expected/$o.txt;"
done
kill -0 "$server_pid" 2>/dev/null || problems="$problems the server died;"
stop_server
check_server_log

if [ -z "$problems" ]; then
    echo "$name: every intrusion refused, the owner saw no effect"
    cat "$work/intruder.out" "$work/raw.out" "$work/owner.out"
    exit 0
fi
{
    echo "$name: FAILED:$problems"
    for o in $outputs; do
        if [ -s "$work/$o.diff" ]; then
            echo "----- $o.out against expected/$o.txt -----"
            cat "$work/$o.diff"
        fi
        if [ -s "$work/$o.err" ]; then
            echo "----- $o stderr -----"
            cat "$work/$o.err"
        fi
    done
    echo "----- owner.out -----"
    cat "$work/owner.out" 2>/dev/null
    echo "----- server log (last 40 lines) -----"
    tail -n 40 "$work/server.log"
} >&2
exit 1
