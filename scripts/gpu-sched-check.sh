#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The GPU host's checks of scheduling and isolation (never run by CI): with
# a bundle made by gpu-bundle.sh,
#   1. the isolation tests on the real runtime (tests/isolation);
#   2. the per-VM limits on the real runtime;
#   3. bench/sched_bench.sh: priority latency, class split, fairness.
# Writes logs and summary.txt into OUTDIR.
#   scripts/gpu-sched-check.sh BUNDLE OUTDIR
set -u
summary=summary.txt
# shellcheck source=gpu-host.sh
. "$(dirname "$0")/gpu-host.sh"
work=$(mktemp -d /tmp/vgpu-sched.XXXXXX)
t=$bundle/tests

say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1)"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if "$here/tests/isolation/run_isolation.sh" --require-gpu isolation_gpu "$t/iso_owner" \
    "$t/iso_intruder" "$t/iso_intruder_raw" "$t/raw_kernel.fatbin" "$bundle/shim" \
    "$bundle/bin/vgpu-server" "$work/iso" "$here/tests/isolation/expected" > "$out/isolation.log" 2>&1
then say "isolation_gpu: passed"; else say "isolation_gpu: FAILED (isolation.log)"; fi
if "$here/tests/isolation/run_limits.sh" --require-gpu isolation_limits_gpu "$t/iso_limits" \
    "$bundle/shim" "$bundle/bin/vgpu-server" "$work/limits" "$here/tests/isolation/expected" \
    > "$out/limits.log" 2>&1
then say "isolation_limits_gpu: passed"; else say "isolation_limits_gpu: FAILED (limits.log)"; fi
cp -r "$work/iso" "$out/iso-work" 2>/dev/null
"$here/bench/sched_bench.sh" "$bundle" "$work/sched" > "$out/sched_bench.log" 2>&1
say "sched_bench: exit $?"
cp "$work/sched/sched_summary.md" "$out/" 2>/dev/null
cp "$work"/sched/*.vgpuctl.* "$out/" 2>/dev/null
tar czf "$out/sched-raw.tgz" -C "$work" sched 2>/dev/null
cat "$out/sched_summary.md" >> "$summary" 2>/dev/null
rm -rf "$work"
