#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Copies what a run on a GPU host needs out of a build directory into one
# folder: vgpu-server, the shim (with libprotobuf-c.so.1 beside it, for hosts
# that lack the package), the examples and the GPU test programs, and under
# src/ the fault scripts that need no checkout beside the bundle (gpu-soak.sh,
# run_session_died.sh and what they source), at their paths in the repository.
#   scripts/gpu-bundle.sh BUILD_DIR BUNDLE_DIR
set -eu
build=$1 out=$2
rm -rf "$out"
mkdir -p "$out/bin" "$out/shim" "$out/examples" "$out/tests" "$out/bench"
cp "$build/server/vgpu-server" "$build/server/vgpuctl" "$out/bin/"
cp "$build/bench/sched_bench" "$build/bench/transport_bench" "$build/bench/vgpu_bench" \
    "$build/bench/vgpu_bench_static" "$build/bench/libvgpu_prof.so" "$out/bench/"
cp "$build/shim/libcudart.so.13" "$build/shim/libcuda.so.1" "$out/shim/"
[ -f "$build/shim/libnvidia-ml.so.1" ] && cp "$build/shim/libnvidia-ml.so.1" "$out/shim/"
# the driver tracer (tests/tools/etbl_trace.c), under the real driver's name in a folder of its own
if [ -f "$build/tests/tools/etbl-trace/libcuda.so.1" ]; then
    mkdir -p "$out/trace" && cp "$build/tests/tools/etbl-trace/libcuda.so.1" "$out/trace/"
fi
pbc=$(ldd "$build/shim/libcudart.so.13" | awk '/libprotobuf-c.so.1/ {print $3}')
cp "$pbc" "$out/shim/libprotobuf-c.so.1"
for f in "$build"/examples/*; do
    [ -x "$f" ] && [ -f "$f" ] && cp "$f" "$out/examples/"
done
cp "$build"/tests/gpu/vgpu_* "$out/tests/"
cp "$build/tests/driver/drv_fill" "$build/tests/driver/static_fill" "$out/tests/"
for f in "$build"/tests/driver/vmm_fill "$build"/tests/driver/drv_graph "$build"/tests/driver/drv_notify "$build"/tests/driver/static_graph "$build"/tests/nvml/nvml_query \
         "$build"/tests/callbacks/callbacks "$build"/tests/callbacks/callbacks_static \
         "$build"/tests/libs/lib_*; do
    [ -x "$f" ] && [ -f "$f" ] && cp "$f" "$out/tests/"
done
# issue 14's differential programs (tests/devout, managed, rtgraph, arrays, ipc)
for f in devout/devout devout/devout_static managed/managed managed/mapped managed/drv_managed managed/static_managed rtgraph/rt_graph \
         rtgraph/rt_hostnode rtgraph/rt_library arrays/arrays arrays/batch_copies ipc/ipc; do
    [ -x "$build/tests/$f" ] && cp "$build/tests/$f" "$out/tests/"
done
cp "$build"/tests/isolation/iso_* "$build/tests/isolation/raw_kernel.fatbin" "$build/tests/async/async_errors" "$build/tests/async/shared_copies" "$build/tests/async/ring_stress" "$build/tests/async/pools" "$out/tests/"
repo=$(cd "$(dirname "$0")/.." && pwd)
for f in scripts/gpu-host.sh scripts/gpu-faults.sh scripts/gpu-soak.sh tests/gpu/run_session_died.sh; do
    mkdir -p "$out/src/$(dirname "$f")" && cp "$repo/$f" "$out/src/$f"
done
du -sh "$out"
