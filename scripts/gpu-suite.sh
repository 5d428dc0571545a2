#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The differential programs of tests/ on a GPU host (never run by CI), with a
# bundle from gpu-bundle.sh: each one natively and through vgpu (run_diff.sh;
# --driver for the programs that reach vgpu's libcuda.so.1), the IPC and
# isolation scripts on the real driver, then the framework scripts and the
# count of calls per training step.  One line per check in OUTDIR/suite.txt,
# the logs in OUTDIR/logs.tar.gz.
#   scripts/gpu-suite.sh BUNDLE OUTDIR [--no-frameworks]
set -u
frameworks=${3:-} summary=suite.txt
# shellcheck source=gpu-host.sh
. "$(dirname "$0")/gpu-host.sh"
work=$(mktemp -d /tmp/vgpu-suite.XXXXXX)
say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1)"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
b=$bundle/tests srv=$bundle/bin/vgpu-server shim=$bundle/shim
pass=0 fail=0
check() {   # check NAME COMMAND...
    local name=$1 rc s
    shift
    s=$(date +%s%N)
    timeout 120 "$@" > "$out/$name.log" 2>&1
    rc=$?
    s=$(( ($(date +%s%N) - s) / 1000000 ))
    if [ $rc -eq 0 ]; then pass=$((pass + 1)); say "$name: ok ($s ms)"
    else fail=$((fail + 1)); say "$name: FAILED, exit $rc ($s ms)"; tail -n 25 "$out/$name.log" | sed 's/^/    /' >> "$summary"
    fi
}
for p in devout managed mapped rt_graph rt_hostnode rt_library arrays batch_copies callbacks \
         vgpu_async_errors async_errors shared_copies ring_stress pools vgpu_stream_order vgpu_rdc; do
    [ -x "$b/$p" ] || continue
    check "$p" "$here/tests/e2e/run_diff.sh" --require-gpu "$p" "$b/$p" "$shim" "$srv" "$work/$p"
done
for p in devout_static callbacks_static drv_fill drv_graph drv_notify static_fill static_graph vmm_fill \
         drv_managed static_managed lib_blas lib_fft lib_rand lib_sparse lib_solver nvml_query; do
    [ -x "$b/$p" ] || continue
    check "$p" "$here/tests/e2e/run_diff.sh" --driver --require-gpu "$p" "$b/$p" "$shim" "$srv" "$work/$p"
done
check ipc "$here/tests/ipc/run_ipc.sh" ipc_gpu "$srv" "" "$shim" "$b/ipc" "$work/ipc" "$here/tests/ipc/expected"
check isolation "$here/tests/isolation/run_isolation.sh" --require-gpu isolation_gpu "$b/iso_owner" \
    "$b/iso_intruder" "$b/iso_intruder_raw" "$b/raw_kernel.fatbin" "$shim" "$srv" "$work/iso" \
    "$here/tests/isolation/expected"
check isolation_limits "$here/tests/isolation/run_limits.sh" --require-gpu isolation_limits_gpu \
    "$b/iso_limits" "$shim" "$srv" "$work/limits" "$here/tests/isolation/expected"
say "differential: $pass passed, $fail failed"
if [ "$frameworks" != --no-frameworks ]; then
    timeout 300 "$here/tests/gpu/frameworks/run.sh" "$shim" "$srv" "$work/fw" > "$out/frameworks.log" 2>&1
    say "frameworks (torch_basics, torch_decode, cupy_basics): exit $?"
    timeout 120 "$here/bench/frameworks/count_calls.sh" "$shim" "$srv" "$work/calls" > "$out/calls.txt" 2>&1
    say "calls per training step (bench/frameworks/count_calls.sh): exit $?"
fi
tar -czf "$out/logs.tar.gz" -C "$out" --exclude suite.txt --exclude logs.tar.gz . 2>/dev/null
find "$out" -name '*.log' -delete
rm -rf "$work"
