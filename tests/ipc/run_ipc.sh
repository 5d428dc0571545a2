#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_ipc.sh NAME SERVER FAKE_DIR SHIM_DIR IPC WORK EXPECTED_DIR
#
# With FAKE_DIR empty the server runs on the machine's CUDA driver (skipped,
# status 77, without a GPU); the outputs are the same.
#
# One vgpu-server on the fake runtime and driver with two listeners, VM 1
# and VM 2.  The exporter and the importer are processes of VM 1; the
# intruder, of VM 2, tries the same handles while the exporter still has
# them published, and must open nothing.  Each process's output is
# compared with EXPECTED_DIR/<role>.txt.
set -u
name=$1 server=$2 fake=$3 shim_dir=$4 ipc=$5 work=$6 expected=$7
server_pid=
# shellcheck source-path=SCRIPTDIR source=../lib/server.sh
. "$(dirname "$0")/../lib/server.sh"
if [ -z "$fake" ] && ! { nvidia-smi -L >/dev/null 2>&1 || [ -e /dev/nvidia0 ]; }; then
    echo "$name: no GPU here, skipped"
    exit 77
fi

fresh_work s1
mkdir -p "$work/x"
sock2=${sock%1}2
VGPU_FAKE_IPC_DIR=$work/x
export VGPU_FAKE_IPC_DIR
start_server "$fake" --listen "unix:$sock,vm_id=1" --listen "unix:$sock2,vm_id=2" \
    --cache-dir "$work/cache" --log-level info

run() {
    env -u LD_PRELOAD VGPU_SERVER="unix:$1" LD_LIBRARY_PATH="$shim_dir" timeout 60 "$ipc" "$2" "$work"
}
run "$sock" export >"$work/exporter.txt" 2>"$work/exporter.err" &
exporter=$!
i=0
while [ ! -e "$work/handle" ] && [ "$i" -lt 300 ] && kill -0 "$exporter" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
run "$sock2" intrude >"$work/intruder.txt" 2>"$work/intruder.err"
VGPU_TEST_REFUSALS=1 run "$sock" import >"$work/importer.txt" 2>"$work/importer.err"
wait "$exporter"
bad=0
for role in exporter importer intruder; do
    if ! diff -u "$expected/$role.txt" "$work/$role.txt"; then
        echo "$name: the $role's output differs (stderr: $work/$role.err)" >&2
        cat "$work/$role.err" >&2
        bad=1
    fi
done
stop_server
if ! grep -q 'cuIpcOpenMemHandle refused: the handle was not exported by a live process of this VM' \
        "$work/server.log"; then
    echo "$name: the server did not log its refusal of the other VM's open" >&2
    bad=1
fi
if ls "$work/x"/vgpu-fake-ipc.* >/dev/null 2>&1; then
    echo "$name: exported files left behind: $(ls "$work/x")" >&2
    bad=1
fi
[ "$bad" -eq 0 ] && echo "$name: passed"
exit "$bad"
