#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Per-VM limits: vgpu-server started with a config file whose listener
# belongs to vm 42, which may hold 64 MiB of device memory and 4 streams.
# One client goes up to each limit, over it by every allocating or
# stream-creating call (each must fail with cudaErrorMemoryAllocation and
# log "vm 42 ... memory limit" / "vm 42 ... stream limit"), and back under
# after a free or a destroy; then two clients of the VM at once share the
# limits, and what a client held comes back when its process ends.
#
#   run_limits.sh [--require-gpu] [--fake-runtime DIR] NAME LIMITS_BIN SHIM_DIR
#                 SERVER_BIN WORKDIR EXPECTED_DIR
#
# Options as in run_isolation.sh.  Outputs must match
# EXPECTED_DIR/limits_{solo,holder,sharer}.txt.  Exit: 0 pass, 1 fail,
# 77 skipped.  Everything goes under WORKDIR (vgpu.conf, server.log, *.out).
set -u
fake_dir=
require_gpu=0
while [ $# -gt 0 ]; do
    case "$1" in
    --require-gpu) require_gpu=1; shift ;;
    --fake-runtime) fake_dir=$2; shift 2 ;;
    -*) echo "run_limits.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
if [ $# -ne 6 ]; then
    echo "usage: run_limits.sh [--require-gpu] [--fake-runtime DIR] NAME LIMITS_BIN SHIM_DIR" \
         "SERVER_BIN WORKDIR EXPECTED_DIR" >&2
    exit 1
fi
name=$1 limits=$2 shim_dir=$3 server=$4 work=$5 expected=$6
# shellcheck source-path=SCRIPTDIR source=iso_lib.sh
. "$(dirname "$0")/iso_lib.sh"

if [ "$require_gpu" = 1 ] && ! gpu_present; then
    echo "$name: no NVIDIA GPU on this machine, skipped"
    exit 77
fi
for f in "$limits" "$server"; do
    [ -x "$f" ] || fail "$f is missing; build it first"
done
[ -f "$shim_dir/libcudart.so.13" ] || fail "no shim in $shim_dir; build it first"
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd -P)
pick_socket tenant.sock

server_pid=
holder_pid=
sharer_pid=
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    [ -z "$holder_pid" ] || kill "$holder_pid" 2>/dev/null
    [ -z "$sharer_pid" ] || kill "$sharer_pid" 2>/dev/null
    stop_server
    [ -z "$sockdir" ] || rm -rf "$sockdir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

cat >"$work/vgpu.conf" <<EOF
[listen tenant]
address = unix:$sock
vm_id = 42
pool = A
priority = low

[vm 42]
memory = 64M      ; device memory bytes the VM may hold (K/M/G suffixes)
streams = 4       ; streams it may hold at once
EOF
start_server "$fake_dir" --config "$work/vgpu.conf" --log-level info

problems=
client "$limits" solo "$work" >"$work/limits_solo.out" 2>"$work/limits_solo.err" ||
    problems="$problems iso_limits solo failed;"
# the refusals are logged, naming the VM and the limit
grep 'vm 42' "$work/server.log" | grep -q 'memory limit' ||
    problems="$problems no server log line with 'vm 42' and 'memory limit';"
grep 'vm 42' "$work/server.log" | grep -q 'stream limit' ||
    problems="$problems no server log line with 'vm 42' and 'stream limit';"
# ... and told to the program, naming the limit
grep -q '^vgpu: an allocation of .* refused: this VM may hold 67108864 bytes' "$work/limits_solo.err" ||
    problems="$problems no line on the program's stderr naming the VM's memory limit;"

client "$limits" holder "$work" >"$work/limits_holder.out" 2>"$work/limits_holder.err" &
holder_pid=$!
client "$limits" sharer "$work" >"$work/limits_sharer.out" 2>"$work/limits_sharer.err" &
sharer_pid=$!
wait "$holder_pid" || problems="$problems iso_limits holder failed;"
holder_pid=
: >"$work/holder.gone"
wait "$sharer_pid" || problems="$problems iso_limits sharer failed;"
sharer_pid=

for o in limits_solo limits_holder limits_sharer; do
    compare_expected "$expected/$o.txt" "$work/$o.out" >"$work/$o.diff" ||
        problems="$problems $o.out differs from expected/$o.txt;"
done
kill -0 "$server_pid" 2>/dev/null || problems="$problems the server died;"
stop_server
check_server_log

if [ -z "$problems" ]; then
    echo "$name: vm 42's memory and stream limits hold, shared by its processes"
    cat "$work/limits_solo.out" "$work/limits_holder.out" "$work/limits_sharer.out"
    exit 0
fi
{
    echo "$name: FAILED:$problems"
    for o in limits_solo limits_holder limits_sharer; do
        if [ -s "$work/$o.diff" ]; then
            echo "----- $o.out against expected/$o.txt -----"
            cat "$work/$o.diff"
        fi
        if [ -s "$work/$o.err" ]; then
            echo "----- $o stderr -----"
            cat "$work/$o.err"
        fi
    done
    echo "----- server log (last 40 lines) -----"
    tail -n 40 "$work/server.log"
} >&2
exit 1
